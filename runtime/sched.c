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
#include "rng.h"

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

/* An epoch's order of examples, cached per stage and task kind (the two may be in different
 * epochs at once). */
typedef struct order {
    long long epoch;
    int *perm;
} order;

typedef struct stage {
    int step_block, sgu_block;  /* block indices (-1: none) */
    int sg;                     /* index of its SG module among p->sg_acc, or -1 */
    void **ptrs[8];             /* this stage's own pointer arrays, one per slot */
    void *xb[8], *yb[8];        /* shuffled batches gathered for this stage, one per slot */
    order ord[2];               /* [0]: for STEP tasks, [1]: for SG_UPDATE tasks */
    _Atomic long long steps_done, sgus_done;
} stage;

typedef struct pass_total {
    double loss;
    double sg[MAX_STAGES];
    int has_test;
    double test_loss, test_accuracy;
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
    bool has_sgu;
    _Atomic long long evals_done; /* evaluations done, counting evaluated passes in order */
    void **eval_ptrs;             /* a slot of its own for inference while training runs */
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

/* 64-bit mixing (splitmix64) to seed each epoch's shuffle from (seed, epoch). */
static uint32_t mix(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return (uint32_t)((z ^ (z >> 31)) >> 16);
}

/* The order of examples in epoch e: a Fisher-Yates shuffle (numpy's) from a stream of its own,
 * so that any stage can compute any epoch's order without sharing state. */
static const int *epoch_order(run *r, order *o, long long e)
{
    if (o->epoch == e)
        return o->perm;
    dnic_rng rng;
    dnic_rng_seed(&rng, mix((uint64_t)r->o->seed << 32 ^ (uint64_t)e));
    int n = r->d->n;
    for (int i = 0; i < n; i++)
        o->perm[i] = i;
    for (int i = n - 1; i > 0; i--) {
        int j = (int)dnic_rng_below(&rng, (uint64_t)i + 1), tmp = o->perm[i];
        o->perm[i] = o->perm[j];
        o->perm[j] = tmp;
    }
    o->epoch = e;
    return o->perm;
}

/* Copies the batch's rows, in the epoch's order, into dst. */
static void gather(void *dst, const void *src, const int *rows, int B, size_t width)
{
    for (int i = 0; i < B; i++)
        memcpy((char *)dst + (size_t)i * width, (const char *)src + (size_t)rows[i] * width, width);
}

/* Runs one task of stage k for step t in its slot and returns what it added to its
 * accumulator (the accumulator is zeroed first, so every step's share is exact). */
static double run_task(run *r, int k, int block, long long t)
{
    dnic_program *p = r->p;
    int slot = (int)(t % r->slots);
    void **ptrs = r->st[k].ptrs[slot];
    long long row = t % r->per_epoch * p->batch;
    size_t es = dnic_dtype_size(r->d->dtype);
    size_t xw = (size_t)r->d->inputs * es, yw = (size_t)r->d->labels * es;
    int reads = p->blocks[block].reads;
    if (!r->o->shuffle) {
        ptrs[p->x] = (char *)r->d->x + (size_t)row * xw;
        ptrs[p->y] = (char *)r->d->y + (size_t)row * yw;
    } else if (reads) {
        stage *s = &r->st[k];
        const int *perm = epoch_order(r, &s->ord[p->blocks[block].phase != DNIC_PHASE_STEP], t / r->per_epoch) + row;
        if (reads & DNIC_READS_X)
            gather(ptrs[p->x] = s->xb[slot], r->d->x, perm, p->batch, xw);
        if (reads & DNIC_READS_Y)
            gather(ptrs[p->y] = s->yb[slot], r->d->y, perm, p->batch, yw);
    }
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

static void eval_barrier(run *r, long long t);

/* Stages first..last-1, through every step and the lagged SG updates that follow. */
static void run_stages(run *r, int first, int last)
{
    for (long long t = 0; t < r->total + r->lag + 1 && !atomic_load(&r->stop); t++) {
        eval_barrier(r, t);
        for (int k = first; k < last && !atomic_load(&r->stop); k++) {
            long long ts = t - 1 - r->lag;
            if (ts >= 0 && ts < r->total && r->st[k].sgu_block >= 0)
                do_sgu(r, k, ts);
            if (t < r->total)
                do_step(r, k, t);
        }
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

/* The passes the test set is scored at are the reported ones; the score is taken once the
 * sequential schedule has finished iteration gate(P): the last step of P plus, when SG modules
 * lag, the iterations that apply their updates for P's steps. */
static long long gate_of(const run *r, long long P)
{
    long long end = (P + 1) * r->pass_len;
    if (end > r->total)
        end = r->total;
    return end - 1 + (r->has_sgu ? r->lag + 1 : 0);
}

/* The n-th evaluated pass (passes are evaluated when reported). */
static long long eval_pass(const run *r, long long n)
{
    return r->by_epoch ? (n + 1) * r->o->report_every - 1 : n;
}

static bool eval_wanted(const run *r, long long n)
{
    return r->o->test && eval_pass(r, n) < r->npasses;
}

/* Every stage has finished iteration g of the sequential schedule. */
static bool iteration_done(run *r, long long g)
{
    for (int k = 0; k < r->S; k++) {
        long long steps = g + 1 < r->total ? g + 1 : r->total;
        if (atomic_load(&r->st[k].steps_done) < steps)
            return false;
        long long sgus = g - r->lag < r->total ? g - r->lag : r->total;
        if (r->st[k].sgu_block >= 0 && sgus > 0 && atomic_load(&r->st[k].sgus_done) < sgus)
            return false;
    }
    return true;
}

/* Scores the test set for the next evaluated pass if its gate has been reached. */
static void evaluate_ready(run *r)
{
    long long n = atomic_load(&r->evals_done);
    if (!eval_wanted(r, n) || !iteration_done(r, gate_of(r, eval_pass(r, n))))
        return;
    pass_total *pt = &r->ring[eval_pass(r, n) % RING];
    double loss = NAN, acc = NAN;
    dnic_evaluate(r->p, r->eval_ptrs, r->o->test, r->o->eval, &loss, &acc);
    pt->has_test = 1;
    pt->test_loss = loss;
    pt->test_accuracy = acc;
    publish(r, &r->evals_done, n + 1);
}

/* A stage waits before iteration t while an evaluation gated before t is still to be done. */
static void eval_barrier(run *r, long long t)
{
    long long n = atomic_load(&r->evals_done);
    if (eval_wanted(r, n) && t > gate_of(r, eval_pass(r, n))) {
        if (r->threaded)
            wait_ge(r, &r->evals_done, n + 1);
    }
}

/* Reports every pass that has completed; returns the number of passes handled so far. */
static long long report_ready(run *r, long long next, dnic_report_fn report, void *user, double t0)
{
    dnic_program *p = r->p;
    double sg[MAX_STAGES];
    while (next < r->npasses && pass_complete(r, next) &&
           !(r->o->test && reported_pass(r, next) && !r->ring[next % RING].has_test)) {
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
                .has_test = pt->has_test,
                .test_loss = pt->test_loss,
                .test_accuracy = pt->test_accuracy,
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
    size_t es = dnic_dtype_size(d->dtype);
    for (int k = 0; k < S; k++) {
        stage *s = &r->st[k];
        s->step_block = s->sgu_block = s->sg = -1;
        for (int sl = 0; sl < r->slots; sl++) {
            s->ptrs[sl] = malloc(((size_t)p->nbufs + 1) * sizeof *s->ptrs[sl]);
            if (!s->ptrs[sl])
                status = DNIC_ERR_NOMEM;
            else
                memcpy(s->ptrs[sl], p->slot_ptrs[sl], (size_t)p->nbufs * sizeof *s->ptrs[sl]);
            if (o->shuffle) {
                s->xb[sl] = malloc((size_t)p->batch * (size_t)d->inputs * es);
                s->yb[sl] = malloc((size_t)p->batch * (size_t)d->labels * es);
                if (!s->xb[sl] || !s->yb[sl])
                    status = DNIC_ERR_NOMEM;
            }
        }
        for (int w = 0; w < 2 && o->shuffle; w++) {
            s->ord[w].epoch = -1;
            if (!(s->ord[w].perm = malloc((size_t)d->n * sizeof *s->ord[w].perm)))
                status = DNIC_ERR_NOMEM;
        }
    }
    if (o->test) {
        /* inference uses the slot after the training slots when there is one */
        r->eval_ptrs = p->nslots > r->slots ? p->slot_ptrs[r->slots] : p->slot_ptrs[0];
        if (p->nslots <= r->slots && S > 1)
            status = DNIC_ERR_ARG;
        if (o->test->inputs != d->inputs || o->test->labels != d->labels || o->test->dtype != d->dtype)
            status = DNIC_ERR_ARG;
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
    for (int k = 0; k < S; k++) {
        if (r->st[k].step_block < 0)
            status = DNIC_ERR_ARG;
        r->has_sgu |= r->st[k].sgu_block >= 0;
    }
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
            evaluate_ready(r);
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
            evaluate_ready(r);
            next = report_ready(r, next, report, user, t0);
            if (next >= r->npasses)
                break;
            pthread_mutex_lock(&r->mu);
            atomic_fetch_add(&r->waiters, 1);
            long long ne = atomic_load(&r->evals_done);
            bool eval_ready = eval_wanted(r, ne) && iteration_done(r, gate_of(r, eval_pass(r, ne)));
            if (!pass_complete(r, next) && !eval_ready && !atomic_load(&r->stop)) {
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
    for (int k = 0; k < S; k++) {
        for (int sl = 0; sl < r->slots; sl++) {
            free(r->st[k].ptrs[sl]);
            free(r->st[k].xb[sl]);
            free(r->st[k].yb[sl]);
        }
        free(r->st[k].ord[0].perm);
        free(r->st[k].ord[1].perm);
    }
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->cv);
    free(r);
    return status;
}
