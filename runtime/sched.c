/* The scheduler.  A training step is, per stage k, a STEP task (forward, synthetic or true
 * gradient, update, message) and, for a stage ending in an SG module, an SG_UPDATE task that
 * needs the message stage k+1 sends at that step.  With lag d, the SG update of step t is
 * applied just before stage k starts step t+1+d (docs/semantics.md).
 *
 * The sequential schedule runs, for t = 0, 1, ...: for each stage k, SG_UPDATE_k(t-1-d) then
 * STEP_k(t).  The pipeline runs the same tasks, each stage on one thread (contiguous stages
 * share a thread when there are more stages than threads), waiting only for the data a task
 * reads: STEP_k(t) for STEP_{k-1}(t), SG_UPDATE_k(t) for STEP_{k+1}(t).  Every temporary has
 * d+1 slots (step t uses slot t mod (d+1)), which is what keeps step t's activations alive
 * until its SG update.  Each task computes what it computes in the sequential order, so both
 * schedules give the same numbers bit for bit, whatever the threads' timing. */
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dnic/program.h"

enum { RING = 64, MAX_STAGES = 64 };

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

/* ---- planning ---------------------------------------------------------------------------- */

/* Below this many floating-point operations per step a pipeline's hand-offs (a few hundred
 * nanoseconds each) cost more than the overlap saves: the planner keeps such models
 * sequential (docs/benchmarks.md has the measurements behind the number). */
#define PIPELINE_MIN_COST 2e6

void dnic_plan_schedule(const dnic_program *p, const dnic_train_opts *o, dnic_sched_plan *plan)
{
    memset(plan, 0, sizeof *plan);
    int S = p->nstages > 0 ? p->nstages : 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = o->threads > 0 ? o->threads : (int)(cores > 0 ? cores : 1);
    if (threads > S)
        threads = S;
    if (threads > MAX_STAGES)
        threads = MAX_STAGES;
    double cost[MAX_STAGES] = {0}, total = 0;
    for (int b = 0; b < p->nblocks; b++)
        if (p->blocks[b].phase != DNIC_PHASE_PREDICT && p->blocks[b].stage < MAX_STAGES) {
            cost[p->blocks[b].stage] += p->blocks[b].cost;
            total += p->blocks[b].cost;
        }
    plan->schedule = DNIC_SCHED_SEQUENTIAL;
    plan->threads = 1;
    if (S == 1) {
        snprintf(plan->why, sizeof plan->why, "%s", o->schedule == DNIC_SCHED_PIPELINE
                 ? "backpropagation is locked (one stage): running sequentially"
                 : "one stage");
    } else if (S > MAX_STAGES) {
        snprintf(plan->why, sizeof plan->why, "more than %d stages: running sequentially", MAX_STAGES);
    } else if (o->schedule == DNIC_SCHED_SEQUENTIAL) {
        snprintf(plan->why, sizeof plan->why, "sequential, as asked");
    } else if (threads < 2) {
        snprintf(plan->why, sizeof plan->why, "one thread: running sequentially");
    } else if (o->schedule == DNIC_SCHED_AUTO && total < PIPELINE_MIN_COST) {
        snprintf(plan->why, sizeof plan->why, "%.2g flops per step are too few to pay for hand-offs: sequential", total);
    } else {
        plan->schedule = DNIC_SCHED_PIPELINE;
        plan->threads = threads;
    }
    /* contiguous groups of stages minimising the largest group's cost (linear partition) */
    int T = plan->threads;
    double best[MAX_STAGES + 1][MAX_STAGES + 1];
    int cut[MAX_STAGES + 1][MAX_STAGES + 1];
    double pre[MAX_STAGES + 1] = {0};
    for (int k = 0; k < S; k++)
        pre[k + 1] = pre[k] + cost[k] + 1; /* +1: every stage costs something */
    for (int n = 0; n <= S; n++)
        best[1][n] = pre[n];
    for (int t = 2; t <= T; t++)
        for (int n = 0; n <= S; n++) {
            best[t][n] = best[t - 1][n];
            cut[t][n] = n;
            for (int j = 0; j < n; j++) {
                double v = best[t - 1][j] > pre[n] - pre[j] ? best[t - 1][j] : pre[n] - pre[j];
                if (v < best[t][n]) {
                    best[t][n] = v;
                    cut[t][n] = j;
                }
            }
        }
    int end = S;
    plan->first_stage[T] = S;
    for (int t = T; t >= 1; t--) {
        int j = t == 1 ? 0 : cut[t][end];
        plan->first_stage[t - 1] = j;
        end = j;
    }
    if (plan->schedule == DNIC_SCHED_PIPELINE)
        snprintf(plan->why, sizeof plan->why, "pipeline: %d stages on %d threads, %.2g flops per step", S, T, total);
}

/* ---- the run ------------------------------------------------------------------------------ */

typedef struct stage {
    int step_block, sgu_block;  /* block indices (-1: none) */
    int sg;                     /* index of its SG module among p->sg_acc, or -1 */
    void **ptrs[8];             /* this stage's own pointer arrays, one per slot */
    _Atomic long long steps_done, sgus_done;
} stage;

typedef struct pass_total {
    double loss;
    double sg[MAX_STAGES];
} pass_total;

typedef struct run {
    dnic_program *p;
    const dnic_dataset *d;
    const dnic_train_opts *o;
    int S, lag, slots;
    long long per_epoch, total, pass_len, npasses;
    bool by_epoch;
    stage st[MAX_STAGES];
    pass_total ring[RING];
    _Atomic long long reported;  /* passes reported and cleared */
    _Atomic int stop;
    _Atomic long long bad_step;  /* first step whose loss was not finite, or -1 */
    _Atomic int waiters;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool threaded;
} run;

static long long pass_of(const run *r, long long t)
{
    return t / r->pass_len;
}

static void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* Waits until *c >= v (or the run stops): spins briefly, then sleeps on the condition. */
static void wait_ge(run *r, _Atomic long long *c, long long v)
{
    for (int spin = 0; spin < 4000; spin++) {
        if (atomic_load(c) >= v || atomic_load(&r->stop))
            return;
        cpu_relax();
    }
    pthread_mutex_lock(&r->mu);
    atomic_fetch_add(&r->waiters, 1);
    while (atomic_load(c) < v && !atomic_load(&r->stop))
        pthread_cond_wait(&r->cv, &r->mu);
    atomic_fetch_sub(&r->waiters, 1);
    pthread_mutex_unlock(&r->mu);
}

static void wake(run *r)
{
    if (atomic_load(&r->waiters) > 0) {
        pthread_mutex_lock(&r->mu);
        pthread_cond_broadcast(&r->cv);
        pthread_mutex_unlock(&r->mu);
    }
}

static void publish(run *r, _Atomic long long *c, long long v)
{
    atomic_store(c, v);
    if (r->threaded)
        wake(r);
}

/* Runs one task of stage k for step t in its slot and returns what it added to its
 * accumulator (the accumulator is zeroed first, so every step's share is exact). */
static double run_task(run *r, int k, int block, long long t)
{
    dnic_program *p = r->p;
    void **ptrs = r->st[k].ptrs[t % r->slots];
    long long row = t % r->per_epoch * p->batch;
    size_t es = dnic_dtype_size(r->d->dtype);
    ptrs[p->x] = (char *)r->d->x + (size_t)row * (size_t)r->d->inputs * es;
    ptrs[p->y] = (char *)r->d->y + (size_t)row * (size_t)r->d->labels * es;
    int acc = p->blocks[block].acc;
    if (acc >= 0)
        *(double *)ptrs[acc] = 0;
    p->blocks[block].fn(ptrs);
    return acc >= 0 ? *(double *)ptrs[acc] : 0;
}

/* The ring slot of pass P, once the reporter has freed it (backpressure on a slow reporter). */
static pass_total *slot_of(run *r, long long P)
{
    if (r->threaded)
        wait_ge(r, &r->reported, P - RING + 1);
    return &r->ring[P % RING];
}

static void do_sgu(run *r, int k, long long ts)
{
    stage *s = &r->st[k];
    if (r->threaded)
        wait_ge(r, &r->st[k + 1].steps_done, ts + 1);
    if (atomic_load(&r->stop))
        return;
    double v = run_task(r, k, s->sgu_block, ts);
    slot_of(r, pass_of(r, ts))->sg[k] += v;
    publish(r, &s->sgus_done, ts + 1);
}

static void do_step(run *r, int k, long long t)
{
    stage *s = &r->st[k];
    if (r->threaded && k > 0)
        wait_ge(r, &r->st[k - 1].steps_done, t + 1);
    if (atomic_load(&r->stop))
        return;
    double v = run_task(r, k, s->step_block, t);
    if (k == r->S - 1) {
        if (!isfinite(v)) {
            long long none = -1;
            atomic_compare_exchange_strong(&r->bad_step, &none, t);
            atomic_store(&r->stop, 1);
            wake(r);
            return;
        }
        slot_of(r, pass_of(r, t))->loss += v;
    }
    publish(r, &s->steps_done, t + 1);
}

/* Stages first..last-1, through every step and the lagged SG updates that follow. */
static void run_stages(run *r, int first, int last)
{
    for (long long t = 0; t < r->total + r->lag + 1 && !atomic_load(&r->stop); t++)
        for (int k = first; k < last && !atomic_load(&r->stop); k++) {
            long long ts = t - 1 - r->lag;
            if (ts >= 0 && ts < r->total && r->st[k].sgu_block >= 0)
                do_sgu(r, k, ts);
            if (t < r->total)
                do_step(r, k, t);
        }
}

typedef struct worker {
    run *r;
    int first, last;
    pthread_t th;
} worker;

static void *worker_main(void *arg)
{
    worker *w = arg;
    run_stages(w->r, w->first, w->last);
    return NULL;
}

/* Pass P is complete when the last stage has stepped through it and every SG module has
 * applied its update for its last step. */
static bool pass_complete(run *r, long long P)
{
    long long end = (P + 1) * r->pass_len;
    if (end > r->total)
        end = r->total;
    if (atomic_load(&r->st[r->S - 1].steps_done) < end)
        return false;
    for (int k = 0; k < r->S; k++)
        if (r->st[k].sgu_block >= 0 && atomic_load(&r->st[k].sgus_done) < end)
            return false;
    return true;
}

static bool reported_pass(const run *r, long long P)
{
    return r->by_epoch ? (P + 1) % r->o->report_every == 0 : true;
}

static void progress(double t0, long long step, long long total, double loss)
{
    double el = now_s() - t0, rate = (double)step / (el > 0 ? el : 1e-9);
    double eta = (double)(total - step) / (rate > 0 ? rate : 1);
    fprintf(stderr, "\r\033[K%5.1f%%  step %lld/%lld  %.0f steps/s  ETA %.0fs  loss %.6g",
            100.0 * (double)step / (double)total, step, total, rate, eta, loss);
    fflush(stderr);
}

/* Reports every pass that has completed; returns the number of passes handled so far. */
static long long report_ready(run *r, long long next, dnic_report_fn report, void *user, double t0)
{
    dnic_program *p = r->p;
    double sg[MAX_STAGES];
    while (next < r->npasses && pass_complete(r, next)) {
        pass_total *pt = &r->ring[next % RING];
        if (reported_pass(r, next)) {
            for (int s = 0; s < p->nsg; s++)
                sg[s] = 0;
            for (int k = 0; k < r->S; k++)
                if (r->st[k].sg >= 0)
                    sg[r->st[k].sg] = pt->sg[k];
            if (r->o->progress)
                fprintf(stderr, "\r\033[K");
            dnic_report rep = {
                .iter = r->by_epoch ? next : (next + 1) * r->pass_len - 1,
                .step = (next + 1) * r->pass_len < r->total ? (next + 1) * r->pass_len : r->total,
                .loss = pt->loss,
                .sg_loss = sg,
                .nsg = p->nsg,
                .elapsed = now_s() - t0,
            };
            report(user, &rep);
        }
        memset(pt, 0, sizeof *pt);
        next++;
        publish(r, &r->reported, next);
    }
    return next;
}

dnic_status dnic_train(dnic_program *p, const dnic_dataset *d, const dnic_train_opts *o, dnic_report_fn report,
                       void *user, dnic_train_result *res)
{
    memset(res, 0, sizeof *res);
    long long per_epoch = d->n / p->batch;
    int S = p->nstages > 0 ? p->nstages : 1;
    if (per_epoch < 1 || (o->epochs > 0) == (o->steps > 0) || o->report_every < 1 || o->lag < 0 ||
        p->nslots < o->lag + 1 || o->lag + 1 > 8 || S > MAX_STAGES)
        return res->status = DNIC_ERR_ARG;
    run *r = calloc(1, sizeof *r);
    if (!r)
        return res->status = DNIC_ERR_NOMEM;
    r->p = p;
    r->d = d;
    r->o = o;
    r->S = S;
    r->lag = o->lag;
    r->slots = o->lag + 1;
    r->per_epoch = per_epoch;
    r->by_epoch = o->epochs > 0;
    r->total = r->by_epoch ? o->epochs * per_epoch : o->steps;
    r->pass_len = r->by_epoch ? per_epoch : o->report_every;
    r->npasses = (r->total + r->pass_len - 1) / r->pass_len;
    atomic_store(&r->bad_step, -1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    dnic_status status = DNIC_OK;
    for (int k = 0; k < S; k++) {
        stage *s = &r->st[k];
        s->step_block = s->sgu_block = s->sg = -1;
        for (int sl = 0; sl < r->slots; sl++) {
            s->ptrs[sl] = malloc(((size_t)p->nbufs + 1) * sizeof *s->ptrs[sl]);
            if (!s->ptrs[sl])
                status = DNIC_ERR_NOMEM;
            else
                memcpy(s->ptrs[sl], p->slot_ptrs[sl], (size_t)p->nbufs * sizeof *s->ptrs[sl]);
        }
    }
    for (int b = 0; b < p->nblocks; b++) {
        const dnic_block_desc *bd = &p->blocks[b];
        if (bd->stage < 0 || bd->stage >= S)
            status = DNIC_ERR_ARG;
        else if (bd->phase == DNIC_PHASE_STEP)
            r->st[bd->stage].step_block = b;
        else if (bd->phase == DNIC_PHASE_SG_UPDATE) {
            r->st[bd->stage].sgu_block = b;
            for (int s = 0; s < p->nsg; s++)
                if (p->sg_acc[s] == bd->acc)
                    r->st[bd->stage].sg = s;
        }
    }
    for (int k = 0; k < S; k++)
        if (r->st[k].step_block < 0)
            status = DNIC_ERR_ARG;
    dnic_sched_plan plan;
    dnic_plan_schedule(p, o, &plan);
    double t0 = now_s();
    if (status == DNIC_OK && plan.schedule == DNIC_SCHED_SEQUENTIAL) {
        long long next = 0;
        double next_draw = t0 + 0.25;
        for (long long t = 0; t < r->total + r->lag + 1 && !atomic_load(&r->stop); t++) {
            for (int k = 0; k < S && !atomic_load(&r->stop); k++) {
                long long ts = t - 1 - r->lag;
                if (ts >= 0 && ts < r->total && r->st[k].sgu_block >= 0)
                    do_sgu(r, k, ts);
                if (t < r->total)
                    do_step(r, k, t);
            }
            next = report_ready(r, next, report, user, t0);
            if (o->progress && (t & 255) == 0 && now_s() >= next_draw && t < r->total) {
                progress(t0, t + 1, r->total, r->ring[pass_of(r, t) % RING].loss);
                next_draw = now_s() + 0.25;
            }
        }
    } else if (status == DNIC_OK) {
        r->threaded = true;
        worker w[MAX_STAGES];
        int started = 0;
        for (int i = 0; i < plan.threads; i++) {
            w[i] = (worker){r, plan.first_stage[i], plan.first_stage[i + 1], 0};
            if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
                atomic_store(&r->stop, 1);
                status = DNIC_ERR_NOMEM;
                break;
            }
            started++;
        }
        /* the calling thread reports, waking on progress or every quarter second */
        long long next = 0;
        double next_draw = t0 + 0.25;
        while (next < r->npasses && !atomic_load(&r->stop)) {
            next = report_ready(r, next, report, user, t0);
            if (next >= r->npasses)
                break;
            pthread_mutex_lock(&r->mu);
            atomic_fetch_add(&r->waiters, 1);
            if (!pass_complete(r, next) && !atomic_load(&r->stop)) {
                struct timespec ts;
                clock_gettime(CLOCK_REALTIME, &ts);
                ts.tv_nsec += 250000000;
                if (ts.tv_nsec >= 1000000000) {
                    ts.tv_sec++;
                    ts.tv_nsec -= 1000000000;
                }
                pthread_cond_timedwait(&r->cv, &r->mu, &ts);
            }
            atomic_fetch_sub(&r->waiters, 1);
            pthread_mutex_unlock(&r->mu);
            if (o->progress && now_s() >= next_draw) {
                long long done = atomic_load(&r->st[S - 1].steps_done);
                progress(t0, done, r->total, r->ring[pass_of(r, done ? done - 1 : 0) % RING].loss);
                next_draw = now_s() + 0.25;
            }
        }
        for (int i = 0; i < started; i++)
            pthread_join(w[i].th, NULL);
    }
    if (o->progress)
        fprintf(stderr, "\r\033[K");
    long long bad = atomic_load(&r->bad_step);
    if (status == DNIC_OK && bad >= 0) {
        int b = first_nonfinite(p);
        status = DNIC_ERR_NONFINITE;
        res->bad_step = bad;
        res->bad_buffer = b >= 0 ? p->bufs[b].name : p->bufs[p->loss_acc].name;
    }
    res->steps = status == DNIC_OK ? r->total : atomic_load(&r->st[S - 1].steps_done);
    res->seconds = now_s() - t0;
    res->status = status;
    for (int k = 0; k < S; k++)
        for (int sl = 0; sl < r->slots; sl++)
            free(r->st[k].ptrs[sl]);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return status;
}
