/* The sequential scheduler: runs the program's blocks in plan order for every batch, zeroes
 * and reads the loss accumulators at report boundaries, and stops on a non-finite loss.
 * Stages talk only through their message buffers, so a concurrent scheduler can run the
 * same blocks on other threads. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnic/program.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void dnic_program_zero_accs(dnic_program *p)
{
    for (int i = 0; i < p->nbufs; i++)
        if (p->bufs[i].kind == DNIC_BUF_ACC)
            *(double *)p->ptrs[i] = 0;
}

/* The first parameter (else accumulator) holding NaN or Inf, or -1. */
static int first_nonfinite(const dnic_program *p)
{
    for (int pass = 0; pass < 2; pass++)
    for (int i = 0; i < p->nbufs; i++) {
        const dnic_buffer_desc *b = &p->bufs[i];
        if (b->kind != (pass == 0 ? DNIC_BUF_PARAM : DNIC_BUF_ACC))
            continue;
        size_t n = (size_t)b->rows * (size_t)b->cols;
        for (size_t k = 0; k < n; k++) {
            double v = b->dtype == DNIC_F64 ? ((const double *)p->ptrs[i])[k] : (double)((const float *)p->ptrs[i])[k];
            if (!isfinite(v))
                return i;
        }
    }
    return -1;
}

static void progress(double t0, long long step, long long total, double loss_so_far)
{
    double el = now_s() - t0, rate = step / (el > 0 ? el : 1e-9);
    double eta = (double)(total - step) / (rate > 0 ? rate : 1);
    fprintf(stderr, "\r\033[K%5.1f%%  step %lld/%lld  %.0f steps/s  ETA %.0fs  loss %.6g", 100.0 * (double)step / (double)total,
            step, total, rate, eta, loss_so_far);
    fflush(stderr);
}

void dnic_program_step(dnic_program *p, const void *x, const void *y)
{
    /* blocks only read the input and labels: the const is dropped to fit the one bufs array */
    p->ptrs[p->x] = (void *)(uintptr_t)x;
    p->ptrs[p->y] = (void *)(uintptr_t)y;
    for (int b = 0; b < p->nblocks; b++)
        if (p->blocks[b].phase != DNIC_PHASE_PREDICT)
            p->blocks[b].fn(p->ptrs);
}

void dnic_program_predict(dnic_program *p, void *xpad, const void *x, void *y, int n)
{
    int predict = -1;
    for (int b = 0; b < p->nblocks; b++)
        if (p->blocks[b].phase == DNIC_PHASE_PREDICT)
            predict = b;
    if (predict < 0 || n <= 0)
        return;
    size_t es = dnic_dtype_size(p->dtype);
    size_t in = (size_t)p->bufs[p->x].cols, out = (size_t)p->bufs[p->out].cols, B = (size_t)p->batch;
    p->ptrs[p->x] = xpad;
    for (size_t r = 0; r < (size_t)n; r += B) {
        size_t rows = (size_t)n - r < B ? (size_t)n - r : B;
        memset(xpad, 0, B * in * es);
        memcpy(xpad, (const char *)x + r * in * es, rows * in * es);
        p->blocks[predict].fn(p->ptrs);
        memcpy((char *)y + r * out * es, p->ptrs[p->out], rows * out * es);
    }
}

dnic_status dnic_train(dnic_program *p, const dnic_dataset *d, const dnic_train_opts *o, dnic_report_fn report,
                       void *user, dnic_train_result *res)
{
    memset(res, 0, sizeof *res);
    int B = p->batch;
    long long per_epoch = d->n / B;
    if (per_epoch < 1 || (o->epochs > 0) == (o->steps > 0) || o->report_every < 1)
        return res->status = DNIC_ERR_ARG;
    bool by_epoch = o->epochs > 0;
    long long total = by_epoch ? o->epochs * per_epoch : o->steps;
    size_t es = dnic_dtype_size(d->dtype);
    double sg[p->nsg > 0 ? p->nsg : 1];
    double t0 = now_s(), next_draw = t0 + 0.25;
    dnic_program_zero_accs(p);
    for (long long step = 0; step < total; step++) {
        long long in_epoch = step % per_epoch;
        if (by_epoch && in_epoch == 0)
            dnic_program_zero_accs(p);
        dnic_program_step(p, (const char *)d->x + (size_t)in_epoch * (size_t)B * (size_t)d->inputs * es,
                          (const char *)d->y + (size_t)in_epoch * (size_t)B * (size_t)d->labels * es);
        double loss = *(double *)p->ptrs[p->loss_acc];
        if (!isfinite(loss)) {
            int bad = first_nonfinite(p);
            res->status = DNIC_ERR_NONFINITE;
            res->bad_step = step;
            res->bad_buffer = bad >= 0 ? p->bufs[bad].name : p->bufs[p->loss_acc].name;
            break;
        }
        bool closes = by_epoch ? in_epoch == per_epoch - 1 && ((step / per_epoch) + 1) % o->report_every == 0
                               : (step + 1) % o->report_every == 0;
        if (closes) {
            if (o->progress)
                fprintf(stderr, "\r\033[K");
            for (int s = 0; s < p->nsg; s++)
                sg[s] = *(double *)p->ptrs[p->sg_acc[s]];
            dnic_report r = {
                .iter = by_epoch ? step / per_epoch : step,
                .step = step + 1,
                .loss = loss,
                .sg_loss = sg,
                .nsg = p->nsg,
                .elapsed = now_s() - t0,
            };
            report(user, &r);
            if (!by_epoch)
                dnic_program_zero_accs(p);
        }
        if (o->progress && (step & 255) == 0) {
            double t = now_s();
            if (t >= next_draw) {
                progress(t0, step + 1, total, loss);
                next_draw = t + 0.25;
            }
        }
        res->steps = step + 1;
    }
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    res->seconds = now_s() - t0;
    return res->status;
}
