/* The scheduler.  A training step is, per stage k, a STEP task (forward, synthetic or true
 * gradient, update, messages) and, for each SG module that ends the stage, an SG_UPDATE task
 * that needs the messages the stages after it send at that step.  With lag d, the SG updates
 * of step t are applied just before stage k starts step t+1+d (docs/semantics.md).
 *
 * The sequential schedule runs, for t = 0, 1, ...: for each stage k, its SG_UPDATEs(t-1-d)
 * then STEP_k(t).  The pipeline runs the same tasks, each stage on one thread (contiguous
 * stages share a thread when there are more stages than threads), waiting only for the data a
 * task reads: the STEP tasks of step t of the stages its block imports from (the block's
 * `waits`; a chain's STEP_k waits for STEP_{k-1}, its SG_UPDATE_k for STEP_{k+1}).  Every temporary has
 * d+1 slots (step t uses slot t mod (d+1)), which is what keeps step t's activations alive
 * until its SG update.  Each task computes what it computes in the sequential order, so both
 * schedules give the same numbers bit for bit, whatever the threads' timing. */
#include <math.h>
#include <stdarg.h>
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
#include "safetensors.h"

enum { RING = 64, MAX_STAGES = 64, MAX_SGU = MAX_STAGES };

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
/* A sequential run splits its large matrix products over the cores (dnic_parallel_for), which
 * balances perfectly; the planner pipelines only when its stages balance nearly as well: the
 * busiest thread has at most 1/0.9 of an even share.  Measured on 2 cores: fashion_dni's three
 * unequal stages ran 1.46x slower pipelined, wide_dni's even ones as fast (docs/benchmarks.md). */
#define PIPELINE_MIN_BALANCE 0.9

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
                 : "one stage: sequential");
    } else if (S > MAX_STAGES) {
        snprintf(plan->why, sizeof plan->why, "more than %d stages: running sequentially", MAX_STAGES);
    } else if (o->schedule == DNIC_SCHED_SEQUENTIAL) {
        snprintf(plan->why, sizeof plan->why, "as asked: sequential");
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
    double balance = pre[S] / (T * best[T][S]);
    if (plan->schedule == DNIC_SCHED_PIPELINE && o->schedule == DNIC_SCHED_AUTO && balance < PIPELINE_MIN_BALANCE) {
        plan->schedule = DNIC_SCHED_SEQUENTIAL;
        plan->threads = T = 1;
        snprintf(plan->why, sizeof plan->why,
                 "%d stages balance to %.0f%% on %d threads, splitting the products is faster: sequential", S,
                 100 * balance, threads);
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
    int step_block;             /* block index */
    int sgu[MAX_SGU];           /* its SG modules' SG_UPDATE blocks, in block order */
    int sgu_sg[MAX_SGU];        /* and each one's SG module (index into p->sg_acc) */
    int nsgu;
    void **ptrs[8];             /* this stage's own pointer arrays, one per slot */
    void *xb[8], *yb[8];        /* shuffled batches gathered for this stage, one per slot */
    order ord[2];               /* [0]: for STEP tasks, [1]: for SG_UPDATE tasks */
    _Atomic long long steps_done, sgus_done;
    _Atomic long long iter;     /* the iteration this stage's thread has announced */
} stage;

typedef struct pass_total {
    double loss;
    double sg[MAX_STAGES];      /* by SG module */
    int has_test;
    double test_loss, test_accuracy;
    double val_loss, val_accuracy;
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
    _Atomic long long evals_done; /* evaluations done, counting evaluated passes in order */
    void **eval_ptrs;             /* a slot of its own for inference while training runs */
    _Atomic long long released;   /* stage threads may run iterations up to this one */
    long long start;              /* the first iteration (after a resume) */
    long long next_ckpt;          /* the next iteration a checkpoint is taken after, or -1 */
    long long ckpt_len;           /* iterations between checkpoints */
    long long stop_at;            /* interrupted: the iteration to stop after, or -1 */
    long long handled;            /* the last iteration whose events have been handled */
    bool interrupted;
    bool early;                   /* patience ran out: stopping at stop_at */
    long long since_best;         /* evaluations since the best one */
    dnic_train_result *res;
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

/* A loss of step t is not finite: record the first such step and stop every stage. */
static void diverged(run *r, long long t)
{
    long long none = -1;
    atomic_compare_exchange_strong(&r->bad_step, &none, t);
    atomic_store(&r->stop, 1);
    wake(r);
}

/* Waits until the STEP tasks of step t that block b imports from have run. */
static void wait_imports(run *r, int k, int b, long long t)
{
    const dnic_block_desc *bd = &r->p->blocks[b];
    if (!bd->waits) { /* a chain */
        int from = bd->phase == DNIC_PHASE_STEP ? k - 1 : k + 1;
        if (from >= 0 && from < r->S)
            wait_ge(r, &r->st[from].steps_done, t + 1);
        return;
    }
    for (int i = 0; i < bd->nwaits; i++)
        wait_ge(r, &r->st[bd->waits[i]].steps_done, t + 1);
}

/* The SG modules of stage k learn from the targets of step ts. */
static void do_sgu(run *r, int k, long long ts)
{
    stage *s = &r->st[k];
    for (int i = 0; i < s->nsgu; i++) {
        if (r->threaded)
            wait_imports(r, k, s->sgu[i], ts);
        if (atomic_load(&r->stop))
            return;
        double v = run_task(r, k, s->sgu[i], ts);
        if (!isfinite(v)) { /* the SG module diverged: its synthetic loss is NaN or infinite */
            diverged(r, ts);
            return;
        }
        slot_of(r, pass_of(r, ts))->sg[s->sgu_sg[i]] += v;
    }
    publish(r, &s->sgus_done, ts + 1);
}

static void do_step(run *r, int k, long long t)
{
    stage *s = &r->st[k];
    if (r->threaded)
        wait_imports(r, k, s->step_block, t);
    if (atomic_load(&r->stop))
        return;
    double v = run_task(r, k, s->step_block, t);
    if (k == r->S - 1) {
        if (!isfinite(v)) {
            diverged(r, t);
            return;
        }
        slot_of(r, pass_of(r, t))->loss += v;
    }
    publish(r, &s->steps_done, t + 1);
}

/* Stages first..last-1, through every step and the lagged SG updates that follow.  Before an
 * iteration a thread announces it, then waits while the caller holds the gate below it (to
 * evaluate, checkpoint or stop at an iteration boundary). */
static void run_stages(run *r, int first, int last)
{
    for (long long t = r->start; t < r->total + r->lag + 1 && !atomic_load(&r->stop); t++) {
        for (int k = first; k < last; k++)
            atomic_store(&r->st[k].iter, t);
        wait_ge(r, &r->released, t);
        for (int k = first; k < last && !atomic_load(&r->stop); k++) {
            long long ts = t - 1 - r->lag;
            if (ts >= 0 && ts < r->total && r->st[k].nsgu > 0)
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
        if (r->st[k].nsgu > 0 && atomic_load(&r->st[k].sgus_done) < end)
            return false;
    return true;
}

static bool reported_pass(const run *r, long long P)
{
    return r->by_epoch ? (P + 1) % r->o->report_every == 0 : true;
}

/* The progress line after `step` steps: the loss so far in the current pass, summed or (by
 * default) divided by the examples it covers, so that it does not rise through a pass. */
static void progress(const run *r, double t0, long long step)
{
    long long total = r->total, P = step ? (step - 1) / r->pass_len : 0;
    double loss = r->ring[P % RING].loss;
    long long seen = (step - P * r->pass_len) * r->p->batch;
    if (!r->o->progress_sum && seen > 0)
        loss /= (double)seen;
    double el = now_s() - t0, rate = (double)step / (el > 0 ? el : 1e-9);
    double eta = (double)(total - step) / (rate > 0 ? rate : 1);
    fprintf(stderr, "\r\033[K%5.1f%%  step %lld/%lld  %.0f steps/s  ETA %.0fs  loss %.6g%s",
            100.0 * (double)step / (double)total, step, total, rate, eta, loss,
            r->o->progress_sum ? " (sum)" : "");
    fflush(stderr);
}

static long long last_iteration(const run *r)
{
    return r->total + r->lag;
}

/* The passes the test set is scored at are the reported ones; the score is taken once every
 * stage has finished iteration gate(P) of the sequential schedule, which is P's last step.
 * Prediction reads only the layers' weights, which SG updates never write, so the lagged SG
 * updates for P's steps need not be waited for; and waiting for them would be wrong: the
 * iteration that applies them also takes the next pass's first step. */
static long long gate_of(const run *r, long long P)
{
    long long end = (P + 1) * r->pass_len;
    if (end > r->total)
        end = r->total;
    return end - 1;
}

/* The n-th evaluated pass (passes are evaluated when reported). */
static long long eval_pass(const run *r, long long n)
{
    return r->by_epoch ? (n + 1) * r->o->report_every - 1 : n;
}

static bool eval_wanted(const run *r, long long n)
{
    return (r->o->test || r->o->validation) && eval_pass(r, n) < r->npasses;
}

/* Every stage has finished iteration g of the sequential schedule. */
static bool iteration_done(run *r, long long g)
{
    for (int k = 0; k < r->S; k++) {
        long long steps = g + 1 < r->total ? g + 1 : r->total;
        if (atomic_load(&r->st[k].steps_done) < steps)
            return false;
        long long sgus = g - r->lag < r->total ? g - r->lag : r->total;
        if (r->st[k].nsgu > 0 && sgus > 0 && atomic_load(&r->st[k].sgus_done) < sgus)
            return false;
    }
    return true;
}

/* After the evaluation of pass P at its gate g (the weights are P's last step's): saves them
 * when the score is the best yet, and when patience runs out stops once P is complete (its
 * lagged SG updates applied, so that its report line is printed). */
static void keep_best(run *r, long long g, long long P, double score)
{
    const dnic_train_opts *o = r->o;
    dnic_train_result *res = r->res;
    if (!o->save_best && o->patience <= 0)
        return;
    if (isfinite(score) && (res->best_iter < 0 || score < res->best_loss)) {
        res->best_iter = r->by_epoch ? P : (P + 1) * r->pass_len - 1;
        res->best_loss = score;
        r->since_best = 0;
        if (o->save_best && !res->error[0])
            res->best_saved = dnic_program_save(r->p, o->save_best, res->error, sizeof res->error) == DNIC_OK;
        return;
    }
    if (o->patience > 0 && ++r->since_best >= o->patience && !r->early && r->stop_at < 0) {
        long long at = g + (r->p->nsg > 0 ? 1 + r->lag : 0); /* SG updates close the pass later */
        r->early = true;
        r->stop_at = at < last_iteration(r) ? at : last_iteration(r);
    }
}

/* Scores the test set for the next evaluated pass if its gate is iteration g. */
static void evaluate_at(run *r, long long g)
{
    long long n = atomic_load(&r->evals_done);
    if (!eval_wanted(r, n) || gate_of(r, eval_pass(r, n)) != g)
        return;
    pass_total *pt = &r->ring[eval_pass(r, n) % RING];
    pt->test_loss = pt->test_accuracy = pt->val_loss = pt->val_accuracy = NAN;
    if (r->o->test)
        dnic_evaluate(r->p, r->eval_ptrs, r->o->test, r->o->eval, &pt->test_loss, &pt->test_accuracy);
    if (r->o->validation)
        dnic_evaluate(r->p, r->eval_ptrs, r->o->validation, r->o->eval, &pt->val_loss, &pt->val_accuracy);
    pt->has_test = 1;
    keep_best(r, g, eval_pass(r, n), r->o->validation ? pt->val_loss : pt->test_loss);
    publish(r, &r->evals_done, n + 1);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

enum { CKPT_VERSION = 2, NCOUNTERS = 12 };

static uint64_t fnv(uint64_t h, const void *data, size_t n)
{
    const unsigned char *b = data;
    for (size_t i = 0; i < n; i++)
        h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* A text as a float64 tensor of its bytes (with a NUL, zero-padded to whole elements); the
 * caller frees t->data. */
static bool text_tensor(dnic_st_tensor *t, const char *name, const char *text)
{
    size_t len = strlen(text) + 1, n = (len + 7) / 8;
    double *v = calloc(n, sizeof *v);
    if (!v)
        return false;
    memcpy(v, text, len);
    *t = (dnic_st_tensor){name, DNIC_F64, 1, {(int64_t)n}, v};
    return true;
}

/* The texts' checksum, as they are in a file or about to be written (NULL: missing). */
static uint64_t texts_sum(uint64_t sum, const dnic_st_tensor *const *t, int n)
{
    for (int i = 0; i < n; i++)
        sum = t[i] ? fnv(sum, t[i]->data, (size_t)t[i]->shape[0] * sizeof(double)) : sum;
    return sum;
}


/* The tensors of a checkpoint: parameters and optimiser state by name, every temporary of
 * every slot as NAME@SLOT (step t's activations wait there for its lagged SG update), then the
 * counters and the pass totals.  `names` holds the generated names. */
static int ckpt_tensors(run *r, dnic_st_tensor *t, char *names, double *counters, double *ring)
{
    dnic_program *p = r->p;
    int n = 0;
    for (int i = 0; i < p->nbufs; i++) {
        const dnic_buffer_desc *b = &p->bufs[i];
        if (b->kind == DNIC_BUF_PARAM || b->kind == DNIC_BUF_STATE)
            t[n++] = (dnic_st_tensor){b->name, b->dtype, 2, {b->rows, b->cols}, p->ptrs[i]};
        else if (b->kind == DNIC_BUF_TEMP)
            for (int sl = 0; sl < r->slots; sl++) {
                sprintf(names, "%s@%d", b->name, sl);
                t[n++] = (dnic_st_tensor){names, b->dtype, 2, {b->rows, b->cols}, p->slot_ptrs[sl][i]};
                names += strlen(names) + 1;
            }
    }
    t[n++] = (dnic_st_tensor){"dnic.counters", DNIC_F64, 1, {NCOUNTERS}, counters};
    t[n++] = (dnic_st_tensor){"dnic.passes", DNIC_F64, 2, {RING, MAX_STAGES + 6}, ring};
    return n;
}

static size_t names_len(const dnic_program *p, int slots)
{
    size_t n = 1;
    for (int i = 0; i < p->nbufs; i++)
        n += (strlen(p->bufs[i].name) + 8) * (size_t)slots;
    return n;
}

static void ring_out(run *r, double *ring)
{
    for (int i = 0; i < RING; i++) {
        double *row = ring + (size_t)i * (MAX_STAGES + 6);
        row[0] = r->ring[i].loss;
        memcpy(row + 1, r->ring[i].sg, sizeof r->ring[i].sg);
        row[MAX_STAGES + 1] = r->ring[i].has_test;
        row[MAX_STAGES + 2] = r->ring[i].test_loss;
        row[MAX_STAGES + 3] = r->ring[i].test_accuracy;
        row[MAX_STAGES + 4] = r->ring[i].val_loss;
        row[MAX_STAGES + 5] = r->ring[i].val_accuracy;
    }
}

/* Saves the state after iteration g (every stage has finished it and waits). */
static bool save_checkpoint(run *r, long long g)
{
    dnic_program *p = r->p;
    size_t nt = (size_t)p->nbufs * (size_t)r->slots + 4 + 8;
    dnic_st_tensor *t = malloc(nt * sizeof *t);
    char *names = malloc(names_len(p, r->slots));
    double *ring = malloc(sizeof(double) * RING * (MAX_STAGES + 6));
    double counters[NCOUNTERS] = {0};
    if (!t || !names || !ring) {
        free(t);
        free(names);
        free(ring);
        snprintf(r->res->error, sizeof r->res->error, "%s: out of memory", r->o->checkpoint);
        return false;
    }
    ring_out(r, ring);
    /* the texts first: the state's bytes stay at the same place from the end of the file */
    const int nx = r->o->ntexts;
    const dnic_st_tensor *xs[8] = {0};
    int made = 0;
    while (made < nx && text_tensor(&t[made], r->o->text_names[made], r->o->texts[made])) {
        xs[made] = &t[made];
        made++;
    }
    if (made < nx)
        snprintf(r->res->error, sizeof r->res->error, "%s: out of memory", r->o->checkpoint);
    dnic_st_tensor *st = t + nx;
    int n = ckpt_tensors(r, st, names, counters, ring);
    uint64_t sum = 0xcbf29ce484222325ull;
    for (int i = 0; i < n - 2; i++)
        sum = fnv(sum, st[i].data, (size_t)st[i].shape[0] * (size_t)st[i].shape[1] * dnic_dtype_size(st[i].dtype));
    sum = fnv(sum, ring, sizeof(double) * RING * (MAX_STAGES + 6));
    sum = texts_sum(sum, xs, made);
    double c[NCOUNTERS] = {CKPT_VERSION, (double)g, (double)atomic_load(&r->evals_done), (double)atomic_load(&r->reported),
                           (double)(r->o->fingerprint >> 32), (double)(r->o->fingerprint & 0xffffffffu),
                           (double)r->d->n, r->lag, r->slots, r->S, (double)(sum >> 32), (double)(sum & 0xffffffffu)};
    memcpy(counters, c, sizeof c);
    bool ok = made == nx && dnic_st_write(r->o->checkpoint, t, nx + n, r->res->error, sizeof r->res->error) == DNIC_OK;
    r->res->checkpointed |= ok;
    for (int i = 0; i < made; i++)
        free((void *)(uintptr_t)t[i].data);
    free(t);
    free(names);
    free(ring);
    return ok;
}

__attribute__((format(printf, 3, 4))) static bool resume_fail(run *r, dnic_st_file *f, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(r->res->error, sizeof r->res->error, "%s: ", r->o->resume);
    vsnprintf(r->res->error + n, sizeof r->res->error - (size_t)n, fmt, ap);
    va_end(ap);
    dnic_st_close(f);
    return false;
}

/* Restores a checkpoint, checking it belongs to this model, data and lag, and that its bytes
 * are the ones that were saved. */
static bool load_checkpoint(run *r)
{
    dnic_program *p = r->p;
    dnic_st_file f;
    if (dnic_st_read_as(&f, r->o->resume, "checkpoint", r->res->error, sizeof r->res->error) != DNIC_OK)
        return false;
    const dnic_st_tensor *ct = dnic_st_find(&f, "dnic.counters"), *rt = dnic_st_find(&f, "dnic.passes");
    if (!ct || ct->dtype != DNIC_F64 || ct->ndim != 1 || ct->shape[0] != NCOUNTERS || !rt || rt->dtype != DNIC_F64 ||
        rt->ndim != 2 || rt->shape[0] != RING || rt->shape[1] != MAX_STAGES + 6)
        return resume_fail(r, &f, "not a dnic checkpoint (dnic.counters or dnic.passes missing or malformed)");
    double c[NCOUNTERS];
    memcpy(c, ct->data, sizeof c);
    if (c[0] != CKPT_VERSION) { /* a format dnic wrote is a small whole number; anything else is damage */
        size_t at = (size_t)((const unsigned char *)ct->data - f.bytes);
        if (c[0] >= 1 && c[0] < CKPT_VERSION && c[0] == (int)c[0])
            return resume_fail(r, &f, "checkpoint format %d, this dnic reads %d", (int)c[0], CKPT_VERSION);
        return resume_fail(r, &f, "the checkpoint is corrupted: its format (dnic.counters[0], bytes %zu-%zu) reads %.17g",
                           at, at + 7, c[0]);
    }
    uint64_t fp = (uint64_t)c[4] << 32 | (uint64_t)c[5];
    if (fp != r->o->fingerprint)
        return resume_fail(r, &f, "the checkpoint belongs to another model (its layers or SG modules differ from this one's)");
    if ((int)c[6] != r->d->n || (int)c[7] != r->lag || (int)c[8] != r->slots || (int)c[9] != r->S)
        return resume_fail(r, &f, "the checkpoint was made with %g examples, lag %g; this run has %d examples, lag %d", c[6],
                           c[7], r->d->n, r->lag);
    long long g = (long long)c[1];
    if (g < 0 || g + 1 >= r->total + r->lag + 1)
        return resume_fail(r, &f, "the checkpoint is at iteration %lld, past this run's %lld steps", g, r->total);
    size_t nt = (size_t)p->nbufs * (size_t)r->slots + 4;
    dnic_st_tensor *want = malloc(nt * sizeof *want);
    char *names = malloc(names_len(p, r->slots));
    double counters[NCOUNTERS], ringbuf[1];
    if (!want || !names) {
        free(want);
        free(names);
        return resume_fail(r, &f, "out of memory");
    }
    int n = ckpt_tensors(r, want, names, counters, ringbuf);
    uint64_t sum = 0xcbf29ce484222325ull;
    bool ok = true;
    for (int i = 0; i < n - 2 && ok; i++) {
        const dnic_st_tensor *got = dnic_st_find(&f, want[i].name);
        if (!got || got->dtype != want[i].dtype || got->ndim != 2 || got->shape[0] != want[i].shape[0] ||
            got->shape[1] != want[i].shape[1])
            ok = resume_fail(r, &f, "tensor '%s' is missing or has another dtype or shape", want[i].name);
        else
            sum = fnv(sum, got->data, (size_t)got->shape[0] * (size_t)got->shape[1] * dnic_dtype_size(got->dtype));
    }
    if (ok) {
        sum = fnv(sum, rt->data, sizeof(double) * RING * (MAX_STAGES + 6));
        const dnic_st_tensor *xs[8] = {0};
        for (int i = 0; i < r->o->ntexts; i++)
            xs[i] = dnic_st_find(&f, r->o->text_names[i]);
        sum = texts_sum(sum, xs, r->o->ntexts);
        if (sum != ((uint64_t)c[10] << 32 | (uint64_t)c[11]))
            ok = resume_fail(r, &f, "the checkpoint is corrupted (its checksum does not match its contents)");
    }
    if (ok) {
        for (int i = 0; i < n - 2; i++)
            memcpy((void *)(uintptr_t)want[i].data, dnic_st_find(&f, want[i].name)->data,
                   (size_t)want[i].shape[0] * (size_t)want[i].shape[1] * dnic_dtype_size(want[i].dtype));
        for (int i = 0; i < RING; i++) {
            double row[MAX_STAGES + 6]; /* copied: a file's offsets need not be aligned */
            memcpy(row, (const unsigned char *)rt->data + sizeof row * (size_t)i, sizeof row);
            r->ring[i].loss = row[0];
            memcpy(r->ring[i].sg, row + 1, sizeof r->ring[i].sg);
            r->ring[i].has_test = row[MAX_STAGES + 1] != 0;
            r->ring[i].test_loss = row[MAX_STAGES + 2];
            r->ring[i].test_accuracy = row[MAX_STAGES + 3];
            r->ring[i].val_loss = row[MAX_STAGES + 4];
            r->ring[i].val_accuracy = row[MAX_STAGES + 5];
        }
        r->start = g + 1;
        for (int k = 0; k < r->S; k++) {
            long long steps = g + 1 < r->total ? g + 1 : r->total, sgus = g - r->lag;
            atomic_store(&r->st[k].steps_done, steps);
            atomic_store(&r->st[k].sgus_done, sgus < 0 ? 0 : sgus > r->total ? r->total : sgus);
        }
        atomic_store(&r->evals_done, (long long)c[2]);
        atomic_store(&r->reported, (long long)c[3]);
        dnic_st_close(&f);
    }
    free(want);
    free(names);
    return ok;
}

/* ---- gates: the iterations after which the caller acts ------------------------------------ */

/* The next iteration at whose end something must happen: an evaluation, a checkpoint, an
 * interrupt's stop, or the end. */
static long long next_event(run *r)
{
    long long e = last_iteration(r), n = atomic_load(&r->evals_done);
    if (eval_wanted(r, n) && gate_of(r, eval_pass(r, n)) < e)
        e = gate_of(r, eval_pass(r, n));
    if (r->next_ckpt >= 0 && r->next_ckpt < e)
        e = r->next_ckpt;
    if (r->stop_at >= 0 && r->stop_at < e)
        e = r->stop_at;
    /* the final checkpoint is taken after the last step, before the lagged SG updates that
     * close the run: a longer run resumed from it takes exactly the same path */
    if (r->o->checkpoint && r->total - 1 > r->handled && r->total - 1 < e)
        e = r->total - 1;
    return e;
}

/* Does what is due after iteration g; returns false when training must stop. */
static bool handle_events(run *r, long long g)
{
    r->handled = g;
    evaluate_at(r, g);
    if (r->res->error[0]) { /* --save-best could not be written */
        atomic_store(&r->stop, 1);
        wake(r);
        return false;
    }
    bool end = g == r->total - 1, stop = g == r->stop_at;
    if (r->o->checkpoint && (g == r->next_ckpt || end || stop)) {
        if (!save_checkpoint(r, g)) {
            atomic_store(&r->stop, 1);
            wake(r);
            return false;
        }
    }
    if (g == r->next_ckpt)
        r->next_ckpt += r->ckpt_len;
    if (stop && (!r->early || g < last_iteration(r))) {
        r->interrupted = !r->early;
        r->res->stopped_early = r->early;
        atomic_store(&r->stop, 1);
        wake(r);
        return false;
    }
    return true;
}

/* Reports every pass that has completed; returns the number of passes handled so far. */
static long long report_ready(run *r, long long next, dnic_report_fn report, void *user, double t0)
{
    dnic_program *p = r->p;
    double sg[MAX_STAGES];
    while (next < r->npasses && pass_complete(r, next) &&
           !((r->o->test || r->o->validation) && reported_pass(r, next) && !r->ring[next % RING].has_test)) {
        pass_total *pt = &r->ring[next % RING];
        if (reported_pass(r, next)) {
            for (int s = 0; s < p->nsg; s++)
                sg[s] = pt->sg[s];
            if (r->o->progress)
                fprintf(stderr, "\r\033[K");
            dnic_report rep = {
                .iter = r->by_epoch ? next : (next + 1) * r->pass_len - 1,
                .step = (next + 1) * r->pass_len < r->total ? (next + 1) * r->pass_len : r->total,
                .loss = pt->loss,
                .examples = ((next + 1) * r->pass_len < r->total ? r->pass_len : r->total - next * r->pass_len) *
                            p->batch,
                .sg_loss = sg,
                .nsg = p->nsg,
                .elapsed = now_s() - t0,
                .has_test = pt->has_test && r->o->test,
                .test_loss = pt->test_loss,
                .test_accuracy = pt->test_accuracy,
                .has_validation = pt->has_test && r->o->validation,
                .val_loss = pt->val_loss,
                .val_accuracy = pt->val_accuracy,
            };
            report(user, &rep);
        }
        memset(pt, 0, sizeof *pt);
        next++;
        publish(r, &r->reported, next);
    }
    return next;
}

/* ---- dnic_train's phases: set up, resume, run (one thread or a pipeline), finish ----------- */

/* Each stage's pointer arrays, and its gathered batches and epoch orders when shuffling. */
static dnic_status alloc_stages(run *r)
{
    dnic_program *p = r->p;
    const dnic_dataset *d = r->d;
    const dnic_train_opts *o = r->o;
    dnic_status status = DNIC_OK;
    size_t es = dnic_dtype_size(d->dtype);
    for (int k = 0; k < r->S; k++) {
        stage *s = &r->st[k];
        s->step_block = -1;
        s->nsgu = 0;
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
    return status;
}

/* Gives each stage its step block, its SG-update block and its SG module; false when a block's
 * stage is out of range or a stage has no step block. */
static bool map_blocks(run *r)
{
    dnic_program *p = r->p;
    bool ok = true;
    for (int b = 0; b < p->nblocks; b++) {
        const dnic_block_desc *bd = &p->blocks[b];
        if (bd->stage < 0 || bd->stage >= r->S)
            ok = false;
        else if (bd->phase == DNIC_PHASE_STEP)
            r->st[bd->stage].step_block = b;
        else if (bd->phase == DNIC_PHASE_SG_UPDATE) {
            stage *st = &r->st[bd->stage];
            int sg = -1;
            for (int s = 0; s < p->nsg; s++)
                if (p->sg_acc[s] == bd->acc)
                    sg = s;
            if (sg < 0 || st->nsgu == MAX_SGU)
                ok = false;
            else {
                st->sgu[st->nsgu] = b;
                st->sgu_sg[st->nsgu++] = sg;
            }
        }
    }
    for (int k = 0; k < r->S; k++) {
        if (r->st[k].step_block < 0)
            ok = false;
    }
    return ok;
}

/* Sizes the run (steps, passes), allocates what its stages own and checks the program and
 * the evaluation sets against it.  The run is finish_run's to free whatever this returns. */
static dnic_status setup_run(run *r, dnic_program *p, const dnic_dataset *d, const dnic_train_opts *o, int S,
                             long long per_epoch, dnic_train_result *res)
{
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
    r->res = res;
    atomic_store(&r->bad_step, -1);
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->cv, NULL);
    dnic_status status = alloc_stages(r);
    const dnic_dataset *sets[2] = {o->test, o->validation};
    for (int i = 0; i < 2; i++)
        if (sets[i] && (sets[i]->inputs != d->inputs || sets[i]->labels != d->labels || sets[i]->dtype != d->dtype))
            status = DNIC_ERR_ARG;
    if (o->test || o->validation) {
        /* inference uses the slot after the training slots when there is one */
        r->eval_ptrs = p->nslots > r->slots ? p->slot_ptrs[r->slots] : p->slot_ptrs[0];
        if (p->nslots <= r->slots && S > 1)
            status = DNIC_ERR_ARG;
    }
    if (!map_blocks(r))
        status = DNIC_ERR_ARG;
    return status;
}

/* When checkpoints are due, and, with o->resume, the state a checkpoint left: the run then
 * starts at the iteration after it. */
static dnic_status resume_run(run *r, dnic_status status)
{
    const dnic_train_opts *o = r->o;
    r->stop_at = -1;
    r->next_ckpt = -1;
    if (o->checkpoint && o->checkpoint_every > 0) {
        r->ckpt_len = o->checkpoint_every * (r->by_epoch ? r->per_epoch : 1);
        r->next_ckpt = r->ckpt_len - 1;
    }
    if (status == DNIC_OK && o->resume && !load_checkpoint(r))
        status = DNIC_ERR_IO;
    while (r->next_ckpt >= 0 && r->next_ckpt < r->start)
        r->next_ckpt += r->ckpt_len;
    r->handled = r->start - 1;
    return status;
}

/* The sequential executor: every stage of iteration t on the calling thread, in order, with
 * the reports, events and progress line in between. */
static void run_sequential(run *r, dnic_report_fn report, void *user, double t0)
{
    const dnic_train_opts *o = r->o;
    double next_draw = t0 + 0.25;
    long long next = atomic_load(&r->reported);
    for (long long t = r->start; t <= last_iteration(r) && !atomic_load(&r->stop); t++) {
        for (int k = 0; k < r->S && !atomic_load(&r->stop); k++) {
            long long ts = t - 1 - r->lag;
            if (ts >= 0 && ts < r->total && r->st[k].nsgu > 0)
                do_sgu(r, k, ts);
            if (t < r->total)
                do_step(r, k, t);
        }
        if (atomic_load(&r->stop))
            break;
        if (((o->interrupt && *o->interrupt) || (o->interrupt_at > 0 && t + 1 >= o->interrupt_at)) && r->stop_at < 0)
            r->stop_at = t;
        if (t == next_event(r) && !handle_events(r, t)) {
            report_ready(r, next, report, user, t0);
            break;
        }
        next = report_ready(r, next, report, user, t0);
        if (o->progress && (t & 255) == 0 && now_s() >= next_draw && t < r->total) {
            progress(r, t0, t + 1);
            next_draw = now_s() + 0.25;
        }
    }
}

/* Interrupted while the stage threads run: stops them at the furthest iteration any thread has
 * announced (Dekker-style: a thread announces, then checks the gate; we lower the gate, then
 * look).  Returns the new gate, r->stop_at. */
static long long stop_threads(run *r, long long gate)
{
    long long at;
    do {
        at = r->start;
        for (int k = 0; k < r->S; k++)
            if (atomic_load(&r->st[k].iter) > at)
                at = atomic_load(&r->st[k].iter);
        r->stop_at = at < gate ? at : gate;
        atomic_store(&r->released, r->stop_at);
        gate = r->stop_at;
        for (int k = 0; k < r->S; k++)
            if (atomic_load(&r->st[k].iter) > at)
                at = atomic_load(&r->st[k].iter);
    } while (at > gate && (gate = at));
    publish(r, &r->released, r->stop_at);
    return r->stop_at;
}

/* The pipeline's calling thread while the stage threads run: reports and acts at the gates,
 * waking on progress or every quarter second. */
static void supervise(run *r, dnic_report_fn report, void *user, double t0)
{
    const dnic_train_opts *o = r->o;
    int S = r->S;
    long long next = atomic_load(&r->reported);
    double next_draw = t0 + 0.25;
    while (!atomic_load(&r->stop)) {
        next = report_ready(r, next, report, user, t0);
        long long gate = atomic_load(&r->released);
        if (((o->interrupt && *o->interrupt) ||
             (o->interrupt_at > 0 && atomic_load(&r->st[S - 1].steps_done) >= o->interrupt_at)) &&
            r->stop_at < 0)
            gate = stop_threads(r, gate);
        if (iteration_done(r, gate)) {
            if (!handle_events(r, gate) || gate == last_iteration(r)) {
                next = report_ready(r, next, report, user, t0);
                break;
            }
            publish(r, &r->released, next_event(r));
            continue;
        }
        pthread_mutex_lock(&r->mu);
        atomic_fetch_add(&r->waiters, 1);
        if (!pass_complete(r, next) && !iteration_done(r, gate) && !atomic_load(&r->stop)) {
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
            progress(r, t0, done);
            next_draw = now_s() + 0.25;
        }
    }
}

/* The pipeline executor: the plan's threads each run their stages (run_stages) while the
 * calling thread supervises; DNIC_ERR_NOMEM when a thread could not be started. */
static dnic_status run_pipeline(run *r, const dnic_sched_plan *plan, dnic_report_fn report, void *user, double t0)
{
    dnic_status status = DNIC_OK;
    r->threaded = true;
    atomic_store(&r->released, next_event(r));
    for (int k = 0; k < r->S; k++)
        atomic_store(&r->st[k].iter, r->start);
    worker w[MAX_STAGES];
    int started = 0;
    for (int i = 0; i < plan->threads; i++) {
        w[i] = (worker){r, plan->first_stage[i], plan->first_stage[i + 1], 0};
        if (pthread_create(&w[i].th, NULL, worker_main, &w[i]) != 0) {
            atomic_store(&r->stop, 1);
            status = DNIC_ERR_NOMEM;
            break;
        }
        started++;
    }
    supervise(r, report, user, t0);
    for (int i = 0; i < started; i++)
        pthread_join(w[i].th, NULL);
    return status;
}

/* The run's result (how it ended, the steps done, the time) into r->res, then frees the run. */
static dnic_status finish_run(run *r, dnic_status status, double t0)
{
    dnic_program *p = r->p;
    dnic_train_result *res = r->res;
    int S = r->S;
    if (r->o->progress)
        fprintf(stderr, "\r\033[K");
    long long bad = atomic_load(&r->bad_step);
    if (status == DNIC_OK && r->res->error[0])
        status = DNIC_ERR_IO;
    else if (status == DNIC_OK && r->interrupted)
        status = DNIC_ERR_INTERRUPTED;
    if (status == DNIC_OK && bad >= 0) {
        int b = first_nonfinite(p);
        status = DNIC_ERR_NONFINITE;
        res->bad_step = bad;
        res->bad_buffer = b >= 0 ? p->bufs[b].name : p->bufs[p->loss_acc].name;
    }
    res->steps = status == DNIC_OK && !r->early ? r->total : atomic_load(&r->st[S - 1].steps_done);
    res->steps_run = res->steps - (r->start < res->steps ? r->start : res->steps);
    if (status == DNIC_ERR_INTERRUPTED)
        res->bad_step = r->stop_at;
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

dnic_status dnic_train(dnic_program *p, const dnic_dataset *d, const dnic_train_opts *o, dnic_report_fn report,
                       void *user, dnic_train_result *res)
{
    memset(res, 0, sizeof *res);
    res->best_iter = -1;
    long long per_epoch = d->n / p->batch;
    int S = p->nstages > 0 ? p->nstages : 1;
    if (per_epoch < 1 || (o->epochs > 0) == (o->steps > 0) || o->report_every < 1 || o->lag < 0 ||
        p->nslots < o->lag + 1 || o->lag + 1 > 8 || S > MAX_STAGES || p->nsg > MAX_STAGES || o->ntexts < 0 ||
        o->ntexts > 8)
        return res->status = DNIC_ERR_ARG;
    run *r = calloc(1, sizeof *r);
    if (!r)
        return res->status = DNIC_ERR_NOMEM;
    dnic_status status = setup_run(r, p, d, o, S, per_epoch, res);
    dnic_sched_plan plan;
    dnic_plan_schedule(p, o, &plan);
    double t0 = now_s();
    status = resume_run(r, status);
    if (status == DNIC_OK && plan.schedule == DNIC_SCHED_SEQUENTIAL)
        run_sequential(r, report, user, t0);
    else if (status == DNIC_OK)
        status = run_pipeline(r, &plan, report, user, t0);
    return finish_run(r, status, t0);
}
