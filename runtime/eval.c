/* Inference over a whole dataset and its score: the predict block run a batch at a time (the
 * last batch padded), the loss per example and the fraction of examples right. */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dnic/program.h"

void dnic_program_predict_set(dnic_program *p, void **ptrs, void *xpad, const dnic_dataset *d, void *y)
{
    int predict = -1;
    for (int b = 0; b < p->nblocks; b++)
        if (p->blocks[b].phase == DNIC_PHASE_PREDICT)
            predict = b;
    if (predict < 0 || d->n <= 0)
        return;
    size_t es = dnic_dtype_size(p->dtype);
    size_t in = (size_t)p->bufs[p->x].cols, out = (size_t)p->bufs[p->out].cols, B = (size_t)p->batch;
    ptrs[p->x] = xpad;
    for (size_t r = 0; r < (size_t)d->n; r += B) {
        size_t rows = (size_t)d->n - r < B ? (size_t)d->n - r : B;
        memset(xpad, 0, B * in * es);
        dnic_dataset_rows(d, xpad, NULL, r, (int)rows);
        p->blocks[predict].fn(ptrs);
        memcpy((char *)y + r * out * es, ptrs[p->out], rows * out * es);
    }
}

void dnic_program_predict_in(dnic_program *p, void **ptrs, void *xpad, const void *x, void *y, int n)
{
    /* x is rows in the program's dtype: a dataset view of them (never freed through it) */
    dnic_dataset d = {n, p->bufs[p->x].cols, 0, p->dtype, (void *)(uintptr_t)x, NULL, false, 1};
    dnic_program_predict_set(p, ptrs, xpad, &d, y);
}

void dnic_program_predict(dnic_program *p, void *xpad, const void *x, void *y, int n)
{
    dnic_program_predict_in(p, p->ptrs, xpad, x, y, n);
}

static double at(const void *v, dnic_dtype t, size_t i)
{
    return t == DNIC_F64 ? ((const double *)v)[i] : (double)((const float *)v)[i];
}

dnic_status dnic_evaluate(dnic_program *p, void **ptrs, const dnic_dataset *d, dnic_eval_kind kind, double *loss,
                          double *accuracy, double *errors)
{
    size_t es = dnic_dtype_size(p->dtype), w = (size_t)d->labels, n = (size_t)d->n;
    void *xpad = calloc((size_t)p->batch * (size_t)d->inputs, es), *y = malloc(n * w * es + 1);
    if (!xpad || !y) {
        free(xpad);
        free(y);
        return DNIC_ERR_NOMEM;
    }
    dnic_program_predict_set(p, ptrs, xpad, d, y);
    double total = 0;
    size_t right = 0, wrong = 0;
    for (size_t i = 0; i < n; i++) {
        size_t best = 0, want = 0;
        bool all = true;
        for (size_t j = 0; j < w; j++) {
            double o = at(y, p->dtype, i * w + j), t = at(d->y, d->dtype, i * w + j);
            if (kind == DNIC_EVAL_SQUARED) {
                total += 0.5 * (o - t) * (o - t);
            } else {
                double po = o > 1e-300 ? o : 1e-300, qo = 1 - o > 1e-300 ? 1 - o : 1e-300;
                total -= t * log(po);
                if (kind == DNIC_EVAL_SIGMOID_CE)
                    total -= (1 - t) * log(qo);
            }
            if (o > at(y, p->dtype, i * w + best))
                best = j;
            if (t > at(d->y, d->dtype, i * w + want))
                want = j;
            bool same = (o > 0.5) == (t > 0.5);
            all &= same;
            wrong += !same;
        }
        right += kind == DNIC_EVAL_SOFTMAX_CE ? best == want : all;
    }
    *loss = n ? total / (double)n : 0;
    *accuracy = n ? (double)right / (double)n : 0;
    if (errors)
        *errors = n ? (double)wrong / (double)n : 0;
    free(xpad);
    free(y);
    return DNIC_OK;
}
