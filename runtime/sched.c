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
#include <signal.h>
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

#include "dist.h"
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
        if (DNIC_PHASE_TRAINS(p->blocks[b].phase))
            p->blocks[b].fn(p->ptrs);
}

/* ---- planning ---------------------------------------------------------------------------- */

/* Below this many floating-point operations per step a pipeline's hand-offs (a few hundred
 * nanoseconds each) cost more than the overlap saves: the planner keeps such models
 * sequential (docs/benchmarks.md has the measurements behind the number). */
#define PIPELINE_MIN_COST 2e6
/* A sequential run splits its large matrix products over the cores (dnic_parallel_for), which
 * balances perfectly; a pipeline's threads run their own stages and, while they wait, parts of
 * the others' large products (wait_ge), which makes up for much of an unequal split.  The
 * planner pipelines when the busiest thread has at most 1/0.7 of an even share.  Measured on 2
 * cores (docs/benchmarks.md): at 82% (fashion_dni) and 75% (residual_dni) the pipeline ran 1.1x
 * faster than the sequential run; before its threads helped, fashion_dni ran 1.46x slower. */
#define PIPELINE_MIN_BALANCE 0.7

/* Contiguous groups of stages for T groups minimising the largest group's cost (a linear
 * partition) into first_stage[0..T]; returns the balance (the total over T times the largest).
 * With `nonempty` every group gets a stage (T <= S): a process with nothing to run is no use. */
static double partition_groups(const double *cost, int S, int T, int *first_stage, bool nonempty)
{
    double best[MAX_STAGES + 1][MAX_STAGES + 1];
    int cut[MAX_STAGES + 1][MAX_STAGES + 1];
    double pre[MAX_STAGES + 1] = {0};
    for (int k = 0; k < S; k++)
        pre[k + 1] = pre[k] + cost[k] + 1; /* +1: every stage costs something */
    for (int n = 0; n <= S; n++)
        best[1][n] = pre[n];
    for (int t = 2; t <= T; t++)
        for (int n = 0; n <= S; n++) {
            best[t][n] = nonempty ? HUGE_VAL : best[t - 1][n];
            cut[t][n] = n;
            for (int j = nonempty ? t - 1 : 0; j < n; j++) {
                double v = best[t - 1][j] > pre[n] - pre[j] ? best[t - 1][j] : pre[n] - pre[j];
                if (v < best[t][n]) {
                    best[t][n] = v;
                    cut[t][n] = j;
                }
            }
        }
    int end = S;
    first_stage[T] = S;
    for (int t = T; t >= 1; t--) {
        int j = t == 1 ? 0 : cut[t][end];
        first_stage[t - 1] = j;
        end = j;
    }
    return pre[S] / (T * best[T][S]);
}

static double partition(const double *cost, int S, int T, int *first_stage)
{
    return partition_groups(cost, S, T, first_stage, false);
}

/* Each stage's estimated floating-point operations per step into cost[]; returns their sum. */
static double stage_costs(const dnic_program *p, double *cost)
{
    double total = 0;
    for (int k = 0; k < MAX_STAGES; k++)
        cost[k] = 0;
    for (int b = 0; b < p->nblocks; b++)
        if (DNIC_PHASE_TRAINS(p->blocks[b].phase) && p->blocks[b].stage >= 0 && p->blocks[b].stage < MAX_STAGES) {
            cost[p->blocks[b].stage] += p->blocks[b].cost;
            total += p->blocks[b].cost;
        }
    return total;
}

void dnic_plan_groups(const dnic_program *p, int groups, int *first_stage)
{
    int S = p->nstages > 0 ? p->nstages : 1;
    double cost[MAX_STAGES];
    stage_costs(p, cost);
    if (S > MAX_STAGES)
        S = MAX_STAGES;
    if (groups > S)
        groups = S;
    partition_groups(cost, S, groups < 1 ? 1 : groups, first_stage, true);
}

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
    double cost[MAX_STAGES];
    double total = stage_costs(p, cost);
    if (o->dist) { /* the ranks of an MPI job: the placement is the caller's (dnic_plan_groups) */
        const dnic_comm *c = o->dist->comm;
        plan->schedule = DNIC_SCHED_MPI;
        plan->threads = 1;
        int n = snprintf(plan->why, sizeof plan->why, "mpi: %d stages on %d rank%s (", S, c->size, c->size == 1 ? "" : "s");
        for (int r = 0; r < c->size && r < MAX_STAGES && n < (int)sizeof plan->why; r++) {
            int a = o->dist->first_stage[r], b = o->dist->first_stage[r + 1] - 1;
            n += a == b ? snprintf(plan->why + n, sizeof plan->why - (size_t)n, "%s%d", r ? " " : "", a)
                        : snprintf(plan->why + n, sizeof plan->why - (size_t)n, "%s%d-%d", r ? " " : "", a, b);
        }
        if (n < (int)sizeof plan->why && c->replicas > 1)
            n += snprintf(plan->why + n, sizeof plan->why - (size_t)n, ") x %d replicas, %.2g flops per step each",
                          c->replicas, total);
        else if (n < (int)sizeof plan->why)
            snprintf(plan->why + n, sizeof plan->why - (size_t)n, "), %.2g flops per step", total);
        return;
    }
    plan->schedule = DNIC_SCHED_SEQUENTIAL;
    plan->threads = 1;
    if (o->stop_if && S > 1) {
        snprintf(plan->why, sizeof plan->why, "a curriculum decides between steps: sequential");
    } else if (S == 1) {
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
    double balance = partition(cost, S < MAX_STAGES ? S : MAX_STAGES, plan->threads, plan->first_stage);
    if (plan->schedule == DNIC_SCHED_PIPELINE && o->schedule == DNIC_SCHED_AUTO && balance < PIPELINE_MIN_BALANCE) {
        plan->schedule = DNIC_SCHED_SEQUENTIAL;
        plan->threads = 1;
        partition(cost, S < MAX_STAGES ? S : MAX_STAGES, 1, plan->first_stage);
        snprintf(plan->why, sizeof plan->why,
                 "%d stages balance to %.0f%% on %d threads, splitting the products is faster: sequential", S,
                 100 * balance, threads);
    }
    int T = plan->threads;
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
    double test_loss, test_accuracy, test_errors;
    double val_loss, val_accuracy;
    double probe[MAX_STAGES * DNIC_PROBE_COUNT]; /* --probe: per SG module, DNIC_PROBE_* */
} pass_total;

typedef struct run {
    dnic_program *p;
    const dnic_dataset *d;
    const dnic_train_opts *o;
    int S, lag, slots;
    int R, replica;               /* data parallelism: this is replica `replica` of R (else 0 of 1) */
    int batch;                    /* the whole batch (R replicas' parts of p->batch rows each) */
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
    long long origin;             /* opts.first_step: the step that reads the data's first example */
    long long next_ckpt;          /* the next iteration a checkpoint is taken after, or -1 */
    long long ckpt_len;           /* iterations between checkpoints */
    long long stop_at;            /* interrupted: the iteration to stop after, or -1 */
    long long handled;            /* the last iteration whose events have been handled */
    bool interrupted;
    int warm_block;               /* train.warmup's block, or -1 */
    long long warm;               /* the steps it replaces the others in: 0 .. warm-1 */
    bool early;                   /* patience ran out: stopping at stop_at */
    long long since_best;         /* evaluations since the best one */
    dnic_train_result *res;
    struct dist_state *ds;        /* a run over several processes (opts.dist), or NULL */
} run;

/* runs over several processes: the section "runs over several processes" below */
static bool dist_before(run *r, int k, int block, long long t);
static void dist_after(run *r, int block, long long t);
static bool dist_pass_complete(run *r, long long P);

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

/* Waits until *c >= v (or the run stops): spins briefly, then sleeps on the condition.  In a
 * pipeline it meanwhile runs parts of another stage's large products (dnic_parallel_help; the
 * pool wakes it when one is published), so that a stage that waits lends its core to a
 * busier one. */
static void wait_ge(run *r, _Atomic long long *c, long long v)
{
    for (int spin = 0; spin < 4000; spin++) {
        if (atomic_load(c) >= v || atomic_load(&r->stop))
            return;
        if (dnic_parallel_help())
            spin = 0;
        else
            cpu_relax();
    }
    pthread_mutex_lock(&r->mu);
    atomic_fetch_add(&r->waiters, 1);
    while (atomic_load(c) < v && !atomic_load(&r->stop)) {
        if (dnic_parallel_helpable()) {
            pthread_mutex_unlock(&r->mu);
            dnic_parallel_help();
            pthread_mutex_lock(&r->mu);
            continue;
        }
        pthread_cond_wait(&r->cv, &r->mu);
    }
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

/* The pool's call to the stage threads that help it: a product's parts are published. */
static void wake_helpers(void *arg)
{
    wake(arg);
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

/* Whether stage k updates its layers in step t (train.update_prob = p): u < p for the (k+1)th
 * rand() draw u of a numpy-legacy stream of its own, seeded by (seed, t), so that any stage
 * computes its own on any thread or rank, and a resumed run the same (docs/semantics.md). */
int dnic_stage_updates(uint32_t seed, long long t, int k, double p)
{
    enum { SALT_HI = 0x75706461u, SALT_LO = 0x74650000u }; /* "update": apart from the shuffle's */
    dnic_rng rng;
    dnic_rng_seed(&rng, mix(((uint64_t)seed << 32 ^ (uint64_t)t) ^ ((uint64_t)SALT_HI << 32 | SALT_LO)));
    double u = 0;
    for (int i = 0; i <= k; i++)
        u = dnic_rng_rand(&rng);
    return u < p;
}

/* Copies the batch's rows, in the epoch's order, into dst. */
static void gather(void *dst, const void *src, const int *rows, int B, size_t width)
{
    for (int i = 0; i < B; i++)
        memcpy((char *)dst + (size_t)i * width, (const char *)src + (size_t)rows[i] * width, width);
}

/* x's rows of the batch into the stage's buffer: those of `perm` (shuffled), else rows
 * `row` on (a dataset of bytes, which the blocks cannot read in place). */
static void *batch_x(run *r, stage *s, int slot, const int *perm, long long row)
{
    dnic_dataset_rows(r->d, s->xb[slot], perm, perm ? 0 : (size_t)row, r->p->batch);
    return s->xb[slot];
}

/* Runs one task of stage k for step t in its slot and returns what it added to its
 * accumulator (the accumulator is zeroed first, so every step's share is exact). */
static double run_task(run *r, int k, int block, long long t)
{
    dnic_program *p = r->p;
    int slot = (int)(t % r->slots);
    void **ptrs = r->st[k].ptrs[slot];
    /* a replica takes its part of the batch: rows replica * p->batch .. of the whole batch */
    long long row = (t - r->origin) % r->per_epoch * r->batch + (long long)r->replica * p->batch;
    size_t es = dnic_dtype_size(r->d->dtype);
    size_t xw = (size_t)r->d->inputs * dnic_dataset_x_size(r->d), yw = (size_t)r->d->labels * es;
    int reads = p->blocks[block].reads;
    if (!r->o->shuffle) {
        ptrs[p->x] = (char *)r->d->x + (size_t)row * xw;
        ptrs[p->y] = (char *)r->d->y + (size_t)row * yw;
        if (r->d->x_bytes && (reads & DNIC_READS_X))
            ptrs[p->x] = batch_x(r, &r->st[k], slot, NULL, row);
    } else if (reads) {
        stage *s = &r->st[k];
        long long epoch = (t - r->origin) / r->per_epoch;
        const int *perm = epoch_order(r, &s->ord[p->blocks[block].phase != DNIC_PHASE_STEP], epoch) + row;
        if (reads & DNIC_READS_X)
            ptrs[p->x] = batch_x(r, s, slot, perm, 0);
        if (reads & DNIC_READS_Y)
            gather(ptrs[p->y] = s->yb[slot], r->d->y, perm, p->batch, yw);
    }
    int acc = p->blocks[block].acc;
    if (acc >= 0)
        *(double *)ptrs[acc] = 0;
    int sk = p->blocks[block].stage;
    if (p->stage_hold && p->blocks[block].phase == DNIC_PHASE_STEP) {
        bool held = !dnic_stage_updates(r->o->seed, t, sk, r->o->update_prob);
        if (p->dtype == DNIC_F64)
            *(double *)ptrs[p->stage_hold[sk]] = held;
        else
            *(float *)ptrs[p->stage_hold[sk]] = held;
    }
    p->blocks[block].fn(ptrs);
    if (acc >= 0 && r->R > 1) /* every replica reports the loss of the whole batch */
        r->o->dist->comm->sum(r->o->dist->comm, ptrs[acc], 1, true);
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

/* Warm-up step t (the last stage's task in place of its step): backpropagation through the
 * whole graph while the other stages wait (their steps before r->warm are empty), with the
 * report's loss and every SG module's synthetic loss. */
static bool warm_step(run *r, long long t)
{
    dnic_program *p = r->p;
    void **ptrs = r->st[r->S - 1].ptrs[t % r->slots];
    for (int s = 0; s < p->nsg; s++)
        *(double *)ptrs[p->sg_acc[s]] = 0;
    *(double *)ptrs[p->loss_acc] = 0;
    run_task(r, r->S - 1, r->warm_block, t);
    pass_total *pt = slot_of(r, pass_of(r, t));
    double loss = *(double *)ptrs[p->loss_acc];
    bool finite = isfinite(loss);
    pt->loss += loss;
    for (int s = 0; s < p->nsg; s++) {
        double v = *(double *)ptrs[p->sg_acc[s]];
        finite &= isfinite(v);
        pt->sg[s] += v;
    }
    if (!finite)
        diverged(r, t);
    return finite;
}

/* The SG modules of stage k learn from the targets of step ts. */
static void do_sgu(run *r, int k, long long ts)
{
    stage *s = &r->st[k];
    if (ts < r->warm) { /* the warm-up step taught them already */
        publish(r, &s->sgus_done, ts + 1);
        return;
    }
    for (int i = 0; i < s->nsgu; i++) {
        if (r->threaded)
            wait_imports(r, k, s->sgu[i], ts);
        if (atomic_load(&r->stop) || (r->ds && !dist_before(r, k, s->sgu[i], ts)))
            return;
        double v = run_task(r, k, s->sgu[i], ts);
        if (!isfinite(v)) { /* the SG module diverged: its synthetic loss is NaN or infinite */
            diverged(r, ts);
            return;
        }
        if (r->ds)
            dist_after(r, s->sgu[i], ts);
        slot_of(r, pass_of(r, ts))->sg[s->sgu_sg[i]] += v;
    }
    publish(r, &s->sgus_done, ts + 1);
}

static void do_step(run *r, int k, long long t)
{
    stage *s = &r->st[k];
    if (t < r->warm) {
        if (k == r->S - 1 && (atomic_load(&r->stop) || !warm_step(r, t)))
            return;
        publish(r, &s->steps_done, t + 1);
        return;
    }
    if (r->threaded && r->warm > 0) /* the first synthetic step waits for the warm-up's last */
        wait_ge(r, &r->st[r->S - 1].steps_done, r->warm);
    /* a stage that does not wait for the one before it (a synthetic input) must not reuse the
     * slot of step t-1-lag before every SG update that reads it is done */
    for (int j = 0; r->threaded && r->p->unlocked && j < r->S; j++)
        if (j != k && r->st[j].nsgu > 0)
            wait_ge(r, &r->st[j].sgus_done, t - r->lag);
    if (r->threaded)
        wait_imports(r, k, s->step_block, t);
    if (atomic_load(&r->stop) || (r->ds && !dist_before(r, k, s->step_block, t)))
        return;
    double v = run_task(r, k, s->step_block, t);
    if (k == r->S - 1) {
        if (!isfinite(v)) {
            diverged(r, t);
            return;
        }
        slot_of(r, pass_of(r, t))->loss += v;
    }
    if (r->ds)
        dist_after(r, s->step_block, t);
    publish(r, &s->steps_done, t + 1);
}

/* Iteration t of stages first..last-1: each stage's SG updates of step t-1-lag, then its step
 * t; with a synthetic input (p->unlocked), every stage's SG updates first, then the steps, so
 * that no step overwrites a slot an SG update of another stage has still to read. */
static void iteration(run *r, int first, int last, long long t)
{
    long long ts = t - 1 - r->lag;
    bool apart = r->p->unlocked;
    for (int k = first; k < last && !atomic_load(&r->stop); k++) {
        if (ts >= r->origin && ts < r->total && r->st[k].nsgu > 0)
            do_sgu(r, k, ts);
        if (!apart && t < r->total)
            do_step(r, k, t);
    }
    for (int k = first; apart && k < last && !atomic_load(&r->stop); k++)
        if (t < r->total)
            do_step(r, k, t);
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
        iteration(r, first, last, t);
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
    if (r->ds)
        return dist_pass_complete(r, P);
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
    long long seen = (step - P * r->pass_len) * r->batch;
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
    return (r->o->test || r->o->validation || r->o->probe) && eval_pass(r, n) < r->npasses;
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
    pt->test_loss = pt->test_accuracy = pt->test_errors = pt->val_loss = pt->val_accuracy = NAN;
    if (r->o->test)
        dnic_evaluate(r->p, r->eval_ptrs, r->o->test, r->o->eval, &pt->test_loss, &pt->test_accuracy,
                      &pt->test_errors);
    if (r->o->validation)
        dnic_evaluate(r->p, r->eval_ptrs, r->o->validation, r->o->eval, &pt->val_loss, &pt->val_accuracy, NULL);
    if (r->o->probe)
        dnic_probe(r->p, r->eval_ptrs, r->d, pt->probe);
    pt->has_test = 1;
    keep_best(r, g, eval_pass(r, n), r->o->validation ? pt->val_loss : pt->test_loss);
    /* the last step's score counts too when it ends a whole pass (a longer run resumed from
     * the checkpoint there then goes on as the longer run would); a shorter last pass is not
     * a report of the longer run */
    if (r->o->stop_if && (g < r->total - 1 || (g + 1) % r->pass_len == 0)) {
        dnic_report rep = {.iter = r->by_epoch ? eval_pass(r, n) : g, .step = g + 1, .has_test = r->o->test != NULL,
                           .test_loss = pt->test_loss, .test_accuracy = pt->test_accuracy,
                           .test_errors = pt->test_errors};
        if (r->o->stop_if(r->o->stop_user, &rep)) { /* the run ends after step g: what follows drains */
            r->total = g + 1;
            r->npasses = (r->total + r->pass_len - 1) / r->pass_len;
            r->res->cut = 1;
        }
    }
    publish(r, &r->evals_done, n + 1);
}

/* ---- checkpoints ---------------------------------------------------------------------------- */

/* format 3 added the wrong bits per test sequence to dnic.passes (the curriculum's score of a
 * report still to print); format 2 files are read with them NaN */
enum { CKPT_VERSION = 3, NCOUNTERS = 12, PASS_COLS = MAX_STAGES + 7 };

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
 * counters and the pass totals.  `names` holds the generated names.  With R replicas (which
 * hold the same parameters, each its own temporaries) the temporaries of replica q > 0 follow
 * as NAME@SLOT/rQ; this process's own are its buffers, the others' are at others + q * the
 * bytes of one replica's (packed in this order, pack_temps), or NULL (data not to be read). */
static int ckpt_tensors(run *r, dnic_st_tensor *t, char *names, double *counters, double *ring, char *others)
{
    dnic_program *p = r->p;
    int n = 0;
    size_t at = 0;
    for (int q = 0; q < r->R; q++)
        for (int i = 0; i < p->nbufs; i++) {
            const dnic_buffer_desc *b = &p->bufs[i];
            size_t bytes = (size_t)b->rows * (size_t)b->cols * dnic_dtype_size(b->dtype);
            if (q == 0 && (b->kind == DNIC_BUF_PARAM || b->kind == DNIC_BUF_STATE))
                t[n++] = (dnic_st_tensor){b->name, b->dtype, 2, {b->rows, b->cols}, p->ptrs[i]};
            else if (b->kind == DNIC_BUF_TEMP)
                for (int sl = 0; sl < r->slots; sl++, at += bytes) {
                    if (q == 0)
                        sprintf(names, "%s@%d", b->name, sl);
                    else
                        sprintf(names, "%s@%d/r%d", b->name, sl, q);
                    void *data = q == r->replica ? p->slot_ptrs[sl][i] : others ? others + at : NULL;
                    t[n++] = (dnic_st_tensor){names, b->dtype, 2, {b->rows, b->cols}, data};
                    names += strlen(names) + 1;
                }
        }
    t[n++] = (dnic_st_tensor){"dnic.counters", DNIC_F64, 1, {NCOUNTERS}, counters};
    t[n++] = (dnic_st_tensor){"dnic.passes", DNIC_F64, 2, {RING, PASS_COLS}, ring};
    return n;
}

static size_t names_len(const dnic_program *p, int slots, int R)
{
    size_t n = 1;
    for (int i = 0; i < p->nbufs; i++)
        n += (strlen(p->bufs[i].name) + 12) * (size_t)slots * (size_t)R;
    return n;
}

/* One replica's temporaries, every slot, in ckpt_tensors' order: their bytes, or packed into
 * out (when out is not NULL). */
static size_t pack_temps(const run *r, char *out)
{
    const dnic_program *p = r->p;
    size_t at = 0;
    for (int i = 0; i < p->nbufs; i++) {
        const dnic_buffer_desc *b = &p->bufs[i];
        size_t bytes = (size_t)b->rows * (size_t)b->cols * dnic_dtype_size(b->dtype);
        if (b->kind == DNIC_BUF_TEMP)
            for (int sl = 0; sl < r->slots; sl++, at += bytes)
                if (out)
                    memcpy(out + at, p->slot_ptrs[sl][i], bytes);
    }
    return at;
}

static void ring_out(run *r, double *ring)
{
    for (int i = 0; i < RING; i++) {
        double *row = ring + (size_t)i * PASS_COLS;
        row[0] = r->ring[i].loss;
        memcpy(row + 1, r->ring[i].sg, sizeof r->ring[i].sg);
        row[MAX_STAGES + 1] = r->ring[i].has_test;
        row[MAX_STAGES + 2] = r->ring[i].test_loss;
        row[MAX_STAGES + 3] = r->ring[i].test_accuracy;
        row[MAX_STAGES + 4] = r->ring[i].val_loss;
        row[MAX_STAGES + 5] = r->ring[i].val_accuracy;
        row[MAX_STAGES + 6] = r->ring[i].test_errors;
    }
}

/* Saves the state after iteration g (every stage has finished it and waits). */
static bool save_checkpoint(run *r, long long g)
{
    dnic_program *p = r->p;
    char *others = NULL;
    if (r->R > 1) { /* replicas: the first one's supervisor gathers every replica's temporaries */
        dnic_comm *c = r->o->dist->comm;
        size_t per = pack_temps(r, NULL);
        char *mine = malloc(per ? per : 1);
        others = r->replica == 0 ? malloc(per * (size_t)r->R + 1) : NULL;
        if (!mine || (r->replica == 0 && !others))
            c->abort(c, "dnic: out of memory gathering the replicas' state for a checkpoint\n", 2);
        pack_temps(r, mine);
        c->gather(c, mine, per, others);
        free(mine);
        if (r->replica != 0) /* the first replica writes the file */
            return true;
    }
    size_t nt = (size_t)p->nbufs * (size_t)r->slots * (size_t)r->R + 4 + 8;
    dnic_st_tensor *t = malloc(nt * sizeof *t);
    char *names = malloc(names_len(p, r->slots, r->R));
    double *ring = malloc(sizeof(double) * RING * PASS_COLS);
    double counters[NCOUNTERS] = {0};
    if (!t || !names || !ring) {
        free(t);
        free(names);
        free(ring);
        free(others);
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
    int n = ckpt_tensors(r, st, names, counters, ring, others);
    uint64_t sum = 0xcbf29ce484222325ull;
    for (int i = 0; i < n - 2; i++)
        sum = fnv(sum, st[i].data, (size_t)st[i].shape[0] * (size_t)st[i].shape[1] * dnic_dtype_size(st[i].dtype));
    sum = fnv(sum, ring, sizeof(double) * RING * PASS_COLS);
    sum = texts_sum(sum, xs, made);
    double c[NCOUNTERS] = {CKPT_VERSION, (double)g, (double)atomic_load(&r->evals_done), (double)atomic_load(&r->reported),
                           (double)(r->o->fingerprint >> 32), (double)(r->o->fingerprint & 0xffffffffu),
                           (double)r->d->n, r->lag, r->slots, r->S, (double)(sum >> 32), (double)(sum & 0xffffffffu)};
    memcpy(counters, c, sizeof c);
    double replicas = r->R; /* named in the message when a resume has another number of them */
    if (r->R > 1)
        st[n++] = (dnic_st_tensor){"dnic.replicas", DNIC_F64, 1, {1}, &replicas};
    bool ok = made == nx && dnic_st_write(r->o->checkpoint, t, nx + n, r->res->error, sizeof r->res->error) == DNIC_OK;
    r->res->checkpointed |= ok;
    for (int i = 0; i < made; i++)
        free((void *)(uintptr_t)t[i].data);
    free(t);
    free(names);
    free(ring);
    free(others);
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
    double c[NCOUNTERS] = {0};
    if (ct && ct->dtype == DNIC_F64 && ct->ndim == 1 && ct->shape[0] == NCOUNTERS)
        memcpy(c, ct->data, sizeof c);
    int cols = ct && c[0] == 2 ? PASS_COLS - 1 : PASS_COLS; /* format 2: no wrong bits */
    if (!ct || ct->dtype != DNIC_F64 || ct->ndim != 1 || ct->shape[0] != NCOUNTERS || !rt || rt->dtype != DNIC_F64 ||
        rt->ndim != 2 || rt->shape[0] != RING || rt->shape[1] != cols)
        return resume_fail(r, &f, "not a dnic checkpoint (dnic.counters or dnic.passes missing or malformed)");
    if (c[0] != CKPT_VERSION && c[0] != 2) { /* a format dnic wrote is a small whole number; anything else is damage */
        size_t at = (size_t)((const unsigned char *)ct->data - f.bytes);
        if (c[0] >= 1 && c[0] < CKPT_VERSION && c[0] == (int)c[0])
            return resume_fail(r, &f, "checkpoint format %d, this dnic reads 2 and %d", (int)c[0], CKPT_VERSION);
        return resume_fail(r, &f, "the checkpoint is corrupted: its format (dnic.counters[0], bytes %zu-%zu) reads %.17g",
                           at, at + 7, c[0]);
    }
    uint64_t fp = (uint64_t)c[4] << 32 | (uint64_t)c[5];
    if (fp != r->o->fingerprint && (r->R > 1 || dnic_st_find(&f, "dnic.replicas")))
        return resume_fail(r, &f, "the checkpoint belongs to another model, or was made with another number of "
                           "--replicas (a replicated run resumes with the replicas it was made with, on any number of "
                           "ranks each)");
    if (fp != r->o->fingerprint)
        return resume_fail(r, &f, "the checkpoint belongs to another model (its layers or SG modules differ from this one's)");
    if ((int)c[6] != r->d->n || (int)c[7] != r->lag || (int)c[8] != r->slots || (int)c[9] != r->S)
        return resume_fail(r, &f, "the checkpoint was made with %g examples, lag %g; this run has %d examples, lag %d", c[6],
                           c[7], r->d->n, r->lag);
    long long g = (long long)c[1];
    if (g < 0 || g + 1 >= r->total + r->lag + 1)
        return resume_fail(r, &f, "the checkpoint is at iteration %lld, past this run's %lld steps", g, r->total);
    size_t nt = (size_t)p->nbufs * (size_t)r->slots * (size_t)r->R + 4;
    dnic_st_tensor *want = malloc(nt * sizeof *want);
    char *names = malloc(names_len(p, r->slots, r->R));
    double counters[NCOUNTERS], ringbuf[1];
    if (!want || !names) {
        free(want);
        free(names);
        return resume_fail(r, &f, "out of memory");
    }
    int n = ckpt_tensors(r, want, names, counters, ringbuf, NULL);
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
        sum = fnv(sum, rt->data, sizeof(double) * RING * (size_t)cols);
        const dnic_st_tensor *xs[8] = {0};
        for (int i = 0; i < r->o->ntexts; i++)
            xs[i] = dnic_st_find(&f, r->o->text_names[i]);
        sum = texts_sum(sum, xs, r->o->ntexts);
        if (sum != ((uint64_t)c[10] << 32 | (uint64_t)c[11]))
            ok = resume_fail(r, &f, "the checkpoint is corrupted (its checksum does not match its contents)");
    }
    if (ok) {
        for (int i = 0; i < n - 2; i++)
            if (want[i].data) /* another replica's temporaries are that replica's to read */
                memcpy((void *)(uintptr_t)want[i].data, dnic_st_find(&f, want[i].name)->data,
                       (size_t)want[i].shape[0] * (size_t)want[i].shape[1] * dnic_dtype_size(want[i].dtype));
        for (int i = 0; i < RING; i++) {
            double row[PASS_COLS]; /* copied: a file's offsets need not be aligned */
            row[PASS_COLS - 1] = NAN;
            memcpy(row, (const unsigned char *)rt->data + sizeof(double) * (size_t)cols * (size_t)i,
                   sizeof(double) * (size_t)cols);
            r->ring[i].loss = row[0];
            memcpy(r->ring[i].sg, row + 1, sizeof r->ring[i].sg);
            r->ring[i].has_test = row[MAX_STAGES + 1] != 0;
            r->ring[i].test_loss = row[MAX_STAGES + 2];
            r->ring[i].test_accuracy = row[MAX_STAGES + 3];
            r->ring[i].val_loss = row[MAX_STAGES + 4];
            r->ring[i].val_accuracy = row[MAX_STAGES + 5];
            r->ring[i].test_errors = row[MAX_STAGES + 6];
        }
        r->start = g + 1;
        for (int k = 0; k < r->S; k++) {
            long long steps = g + 1 < r->total ? g + 1 : r->total, sgus = g - r->lag;
            atomic_store(&r->st[k].steps_done, steps);
            atomic_store(&r->st[k].sgus_done, sgus < 0 ? 0 : sgus > r->total ? r->total : sgus);
        }
        atomic_store(&r->evals_done, (long long)c[2]);
        atomic_store(&r->reported, (long long)c[3]);
        /* the end of a shorter run cut its last pass short and scored it there: a longer run
         * scores that pass at its own end, as an uninterrupted run does */
        long long ne = (long long)c[2], P = ne > 0 ? eval_pass(r, ne - 1) : -1;
        if (P >= 0 && P == pass_of(r, g) && P >= (long long)c[3] && gate_of(r, P) > g) {
            pass_total *pt = &r->ring[P % RING];
            pt->has_test = 0;
            pt->test_loss = pt->test_accuracy = pt->test_errors = pt->val_loss = pt->val_accuracy = NAN;
            atomic_store(&r->evals_done, ne - 1);
        }
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
           !((r->o->test || r->o->validation || r->o->probe) && reported_pass(r, next) &&
             !r->ring[next % RING].has_test)) {
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
                            r->batch,
                .sg_loss = sg,
                .nsg = p->nsg,
                .elapsed = now_s() - t0,
                .has_test = pt->has_test && r->o->test,
                .test_loss = pt->test_loss,
                .test_accuracy = pt->test_accuracy,
                .test_errors = pt->test_errors,
                .has_validation = pt->has_test && r->o->validation,
                .val_loss = pt->val_loss,
                .val_accuracy = pt->val_accuracy,
                .probe = r->o->probe ? pt->probe : NULL,
            };
            report(user, &rep);
        }
        memset(pt, 0, sizeof *pt);
        next++;
        publish(r, &r->reported, next);
    }
    return next;
}

/* ---- runs over several processes (opts.dist, runtime/dist.h) --------------------------------
 * Every rank runs the sequential schedule restricted to its stages.  What a block imports from
 * a stage on another rank arrives as a message (tag: the buffer) just before the block runs,
 * into the slot of its step; what it exports to another rank leaves just after it ran, and the
 * send must be done before the block's next step in the same slot overwrites the buffer.  Each
 * rank takes its tasks in the sequential order, so every wait is for a task that comes earlier
 * in that order: no cycle, whatever the timing.
 *
 * Rank 0 supervises.  It releases iterations to the others (a rank may not start an iteration
 * beyond the release) and marks gates: at a gate (an evaluation, a checkpoint, a stop, the end)
 * every rank sends rank 0 the buffers its stages write and its report sums in progress, so that
 * rank 0 then holds what a sequential run holds at that iteration and acts as it does.  Report
 * sums of a pass go to rank 0 as soon as a rank's stages have finished the pass.  A release is
 * at most `window` iterations ahead, so an interrupt stops every rank at one iteration soon:
 * the release in force when rank 0 learns of it. */

enum { TAG_CTRL = DNIC_DIST_BUF_TAGS + 1, TAG_RELEASE, TAG_PASS, TAG_GATE, MAX_BUF_TAG = DNIC_DIST_BUF_TAGS };
enum { REL_GATE = 1, REL_STOP = 2, REL_ABORT = 4 };
enum { CTRL_INTERRUPT = 1, CTRL_DIVERGED = 2 };
enum { PASS_MSG = MAX_STAGES + 2, PASS_SPREAD = 10, GRING = RING * (MAX_STAGES + 1) };

typedef struct route {
    int buf, peer;
    int from;                       /* the block that writes the buffer */
} route;

typedef struct dist_state {
    const dnic_dist *d;
    dnic_comm *c;
    int me, K, first, last;         /* this rank runs stages first..last-1 */
    int rank_of[MAX_STAGES];        /* the rank of each stage */
    int sg_rank[MAX_STAGES];        /* the rank of each SG module's stage */
    bool *rank_sgu;                 /* [K]: the rank runs SG updates */
    route **recv, **send;           /* per block: what it receives before it runs, sends after */
    int *nrecv, *nsend;
    int **sreq;                     /* per block: nsend * slots send requests (-1: none) */
    int **owned, *nowned;           /* per rank: the buffers its stages write */
    long long window;
    long long done;                 /* the last iteration this rank finished */
    long long rel;                  /* released: iterations up to this one may run */
    long long flags;                /* REL_* for rel */
    long long relbuf[2];            /* ranks > 0: the release being received */
    int relreq;
    long long *relout;              /* rank 0: [K][2] releases being sent */
    int *relsreq;
    long long *ctrlin;              /* rank 0: [K][3] control messages being received */
    int *ctrlreq;
    long long ctrlout[3];           /* ranks > 0: the control message being sent */
    int ctrlsreq;
    long long sent;                 /* ranks > 0: passes sent */
    double *pout;                   /* ranks > 0: [RING][PASS_MSG] pass sums being sent */
    int *preq;
    double *pin;                    /* rank 0: [K][PASS_MSG] pass sums being received */
    int *pinreq;
    long long *got;                 /* rank 0: passes received from each rank */
    double *gring;                  /* the report sums of a gate */
    bool aborted;                   /* rank 0 said to stop */
    bool interrupt_sent, interrupt_seen;
    bool asked;                     /* replicas: this supervisor was asked to stop (dist_supervise) */
    int bad_buf;                    /* rank 0: the buffer another rank found not finite, or -1 */
} dist_state;

__attribute__((format(printf, 2, 3))) static _Noreturn void dist_fatal(run *r, const char *fmt, ...)
{
    char why[512];
    int n = snprintf(why, sizeof why, "dnic: rank %d: ", r->ds->me);
    va_list ap;
    va_start(ap, fmt);
    n += vsnprintf(why + n, sizeof why - (size_t)n, fmt, ap);
    va_end(ap);
    snprintf(why + (n < (int)sizeof why - 2 ? n : (int)sizeof why - 2), 2, "\n");
    r->ds->c->abort(r->ds->c, why, 2);
    abort(); /* not reached: the transport's abort ends the process */
}

static size_t buf_bytes(const dnic_program *p, int i)
{
    return (size_t)p->bufs[i].rows * (size_t)p->bufs[i].cols * dnic_dtype_size(p->bufs[i].dtype);
}

/* A pass's sums are complete on rank q after this iteration (its steps, then its SG updates). */
static long long pass_close(const run *r, long long P, int q)
{
    long long end = (P + 1) * r->pass_len;
    if (end > r->total)
        end = r->total;
    return end - 1 + (r->ds->rank_sgu[q] ? 1 + r->lag : 0);
}

static int dist_isend(run *r, const void *buf, size_t n, int to, int tag)
{
    int q = r->ds->c->isend(r->ds->c, buf, n, to, tag);
    if (q < 0)
        dist_fatal(r, "cannot send %zu bytes to rank %d", n, to);
    return q;
}

static int dist_irecv(run *r, void *buf, size_t n, int from, int tag)
{
    int q = r->ds->c->irecv(r->ds->c, buf, n, from, tag);
    if (q < 0)
        dist_fatal(r, "cannot receive %zu bytes from rank %d", n, from);
    return q;
}

/* Whether request *q is done (-1 stays done); a failed request stops the job. */
static bool dist_done(run *r, int *q, int peer)
{
    if (*q < 0)
        return true;
    int t = r->ds->c->test(r->ds->c, *q);
    if (t < 0)
        dist_fatal(r, "the transfer with rank %d failed", peer);
    if (t)
        *q = -1;
    return t != 0;
}

static void send_releases(run *r);

/* Rank 0 stops every other rank at once (after a divergence or an error). */
static void abort_others(run *r)
{
    dist_state *ds = r->ds;
    if (ds->flags & REL_ABORT)
        return;
    ds->flags |= REL_ABORT;
    send_releases(r);
}

/* Rank 0: a pass's sums from rank j, each field from the rank that adds to it. */
static void merge_pass(run *r, int j, const double *m)
{
    dist_state *ds = r->ds;
    long long P = (long long)m[0];
    pass_total *pt = &r->ring[P % RING];
    if (ds->rank_of[r->S - 1] == j)
        pt->loss = m[1];
    for (int s = 0; s < r->p->nsg; s++)
        if (ds->sg_rank[s] == j)
            pt->sg[s] = m[2 + s];
    ds->got[j] = P + 1;
}

/* Serves what may arrive at any time: releases (ranks > 0); interrupts, divergences and pass
 * sums (rank 0).  Never waits. */
static void dist_poll(run *r)
{
    dist_state *ds = r->ds;
    if (ds->me > 0) {
        while (dist_done(r, &ds->relreq, 0)) {
            ds->rel = ds->relbuf[0];
            ds->flags = ds->relbuf[1];
            if (ds->flags & REL_ABORT) {
                ds->aborted = true;
                atomic_store(&r->stop, 1);
                return;
            }
            ds->relreq = dist_irecv(r, ds->relbuf, sizeof ds->relbuf, 0, TAG_RELEASE);
        }
        return;
    }
    for (int j = 1; j < ds->K; j++) {
        while (dist_done(r, &ds->ctrlreq[j], j)) {
            long long *m = ds->ctrlin + 3 * j;
            if (m[0] == CTRL_INTERRUPT)
                ds->interrupt_seen = true;
            if (m[0] == CTRL_DIVERGED) {
                long long none = -1, t = m[1];
                if (!atomic_compare_exchange_strong(&r->bad_step, &none, t) && t < atomic_load(&r->bad_step))
                    atomic_store(&r->bad_step, t);
                if (atomic_load(&r->bad_step) == t)
                    ds->bad_buf = (int)m[2];
                atomic_store(&r->stop, 1);
                abort_others(r);
            }
            ds->ctrlreq[j] = dist_irecv(r, m, 3 * sizeof *m, j, TAG_CTRL);
        }
        while (dist_done(r, &ds->pinreq[j], j)) {
            merge_pass(r, j, ds->pin + (size_t)j * PASS_MSG);
            ds->pinreq[j] = dist_irecv(r, ds->pin + (size_t)j * PASS_MSG, PASS_MSG * sizeof(double), j, TAG_PASS);
        }
    }
}

/* Waits, serving dist_poll, until cond(r, arg) holds (true) or the run stops (false); stops the
 * whole job when nothing came from `peer` for the transport's timeout. */
static bool dist_until(run *r, bool (*cond)(run *, void *), void *arg, int peer, const char *what, long long step)
{
    double start = 0;
    for (long spin = 0;; spin++) {
        if (cond(r, arg))
            return true;
        dist_poll(r);
        if (atomic_load(&r->stop) && (r->ds->aborted || r->ds->me == 0))
            return false;
        if (cond(r, arg))
            return true;
        if (spin == 64)
            start = now_s();
        if (spin > 64) {
            if (now_s() - start > r->ds->c->timeout) {
                if (step >= 0)
                    dist_fatal(r, "no message from rank %d for %g s (waiting for %s of step %lld); stopping the job",
                               peer, r->ds->c->timeout, what, step + 1);
                dist_fatal(r, "no message from rank %d for %g s (waiting for %s); stopping the job", peer,
                           r->ds->c->timeout, what);
            }
            nanosleep(&(struct timespec){0, spin < 2000 ? 2000 : 100000}, NULL);
        }
    }
}

typedef struct reqs {
    int *q, n, peer;
} reqs;

static bool reqs_done(run *r, void *arg)
{
    reqs *w = arg;
    bool all = true;
    for (int i = 0; i < w->n; i++)
        all &= dist_done(r, &w->q[i], w->peer);
    return all;
}

static bool dist_wait(run *r, int *q, int n, int peer, const char *what, long long step)
{
    reqs w = {q, n, peer};
    return dist_until(r, reqs_done, &w, peer, what, step);
}

/* Rank 0: the release (r->ds->rel, flags) to every other rank. */
static void send_releases(run *r)
{
    dist_state *ds = r->ds;
    for (int j = 1; j < ds->K; j++) {
        /* the previous release to j is a few bytes, sent at once: its buffer is free soon */
        double start = now_s();
        while (!dist_done(r, &ds->relsreq[j], j))
            if (now_s() - start > ds->c->timeout)
                dist_fatal(r, "rank %d took no release for %g s; stopping the job", j, ds->c->timeout);
        ds->relout[2 * j] = ds->rel;
        ds->relout[2 * j + 1] = ds->flags;
        ds->relsreq[j] = dist_isend(r, &ds->relout[2 * j], 2 * sizeof(long long), j, TAG_RELEASE);
    }
}

/* Rank 0: the next release after iteration t: up to the next event (a gate) or `window`. */
static void next_release(run *r, long long t)
{
    dist_state *ds = r->ds;
    long long e = next_event(r), w = t + ds->window;
    ds->rel = e < w ? e : w;
    ds->flags = ds->rel == e ? REL_GATE : 0;
    if (ds->rel == r->stop_at || ds->rel == last_iteration(r))
        ds->flags |= REL_STOP;
    send_releases(r);
}

/* Before block b runs step t on this rank: its imports from other ranks, and the sends of this
 * slot's previous step done (the block is about to overwrite their buffers). */
static bool dist_before(run *r, int k, int b, long long t)
{
    dist_state *ds = r->ds;
    dnic_program *p = r->p;
    int slot = (int)(t % r->slots);
    if (p->blocks[b].phase == DNIC_PHASE_STEP && k == ds->first) {
        if (t == ds->d->test_kill_at)
            raise(SIGKILL);
        while (t == ds->d->test_hang_at)
            pause();
    }
    int q[64], n = 0;
    /* a step before a resumed run's first took place before its checkpoint, which holds its
     * messages: only later steps' come from other ranks */
    for (int i = 0; i < ds->nrecv[b] && t >= r->start; i++) {
        route *rt = &ds->recv[b][i];
        q[n++] = dist_irecv(r, p->slot_ptrs[slot][rt->buf], buf_bytes(p, rt->buf), rt->peer, rt->buf);
        if (n == 64 || i + 1 == ds->nrecv[b]) {
            if (!dist_wait(r, q, n, rt->peer, p->bufs[rt->buf].name, t))
                return false;
            n = 0;
        }
    }
    for (int i = 0; i < ds->nsend[b]; i++) {
        int *sq = &ds->sreq[b][i * r->slots + slot];
        if (!dist_done(r, sq, ds->send[b][i].peer) &&
            !dist_wait(r, sq, 1, ds->send[b][i].peer, p->bufs[ds->send[b][i].buf].name, t - r->slots))
            return false;
    }
    return true;
}

/* After block b ran step t: its exports to the ranks that import them. */
static void dist_after(run *r, int b, long long t)
{
    dist_state *ds = r->ds;
    dnic_program *p = r->p;
    int slot = (int)(t % r->slots);
    for (int i = 0; i < ds->nsend[b]; i++) {
        route *rt = &ds->send[b][i];
        ds->sreq[b][i * r->slots + slot] =
            dist_isend(r, p->slot_ptrs[slot][rt->buf], buf_bytes(p, rt->buf), rt->peer, rt->buf);
    }
    dist_poll(r);
}

static bool dist_pass_complete(run *r, long long P)
{
    dist_state *ds = r->ds;
    if (ds->done < pass_close(r, P, 0))
        return false;
    for (int j = 1; j < ds->K; j++)
        if (ds->got[j] <= P)
            return false;
    return true;
}

/* Ranks > 0: the sums of every pass their stages have finished, to rank 0. */
static bool send_passes(run *r, long long t)
{
    dist_state *ds = r->ds;
    while (ds->sent < r->npasses && pass_close(r, ds->sent, ds->me) <= t) {
        int i = (int)(ds->sent % RING);
        if (!dist_done(r, &ds->preq[i], 0) && !dist_wait(r, &ds->preq[i], 1, 0, "report sums", -1))
            return false;
        double *m = ds->pout + (size_t)i * PASS_MSG;
        pass_total *pt = &r->ring[ds->sent % RING];
        memset(m, 0, PASS_MSG * sizeof *m);
        m[0] = (double)ds->sent;
        m[1] = pt->loss;
        memcpy(m + 2, pt->sg, sizeof pt->sg);
        memset(pt, 0, sizeof *pt);
        ds->preq[i] = dist_isend(r, m, PASS_MSG * sizeof *m, 0, TAG_PASS);
        ds->sent++;
    }
    return true;
}

/* The requests for rank q's state at a gate, sent (q = this rank) or received (rank 0), in
 * one order: the count of passes sent, the report sums, then every buffer its stages write
 * (parameters and optimiser state once, temporaries in every slot). */
static int state_requests(run *r, int q, long long *hdr, int *reqs_out)
{
    dist_state *ds = r->ds;
    dnic_program *p = r->p;
    bool out = q == ds->me;
    int n = 0;
#define XFER(buf, bytes) (out ? dist_isend(r, buf, bytes, 0, TAG_GATE) : dist_irecv(r, buf, bytes, q, TAG_GATE))
    reqs_out[n++] = XFER(hdr, sizeof *hdr);
    reqs_out[n++] = XFER(ds->gring, GRING * sizeof(double));
    for (int i = 0; i < ds->nowned[q]; i++) {
        int b = ds->owned[q][i];
        if (p->bufs[b].kind == DNIC_BUF_TEMP)
            for (int sl = 0; sl < r->slots; sl++)
                reqs_out[n++] = XFER(p->slot_ptrs[sl][b], buf_bytes(p, b));
        else
            reqs_out[n++] = XFER(p->ptrs[b], buf_bytes(p, b));
    }
#undef XFER
    return n;
}

static int state_count(const run *r, int q)
{
    int n = 2;
    for (int i = 0; i < r->ds->nowned[q]; i++)
        n += r->p->bufs[r->ds->owned[q][i]].kind == DNIC_BUF_TEMP ? r->slots : 1;
    return n;
}

typedef struct got_arg {
    int j;
    long long want;
} got_arg;

static bool got_enough(run *r, void *arg)
{
    got_arg *g = arg;
    return r->ds->got[g->j] >= g->want;
}

/* A gate, on ranks > 0: this rank's state to rank 0. */
static bool send_state(run *r)
{
    dist_state *ds = r->ds;
    long long hdr = ds->sent;
    for (int i = 0; i < RING; i++) {
        ds->gring[(size_t)i * (MAX_STAGES + 1)] = r->ring[i].loss;
        memcpy(ds->gring + (size_t)i * (MAX_STAGES + 1) + 1, r->ring[i].sg, sizeof r->ring[i].sg);
    }
    int *q = malloc((size_t)state_count(r, ds->me) * sizeof *q);
    if (!q)
        dist_fatal(r, "out of memory");
    int n = state_requests(r, ds->me, &hdr, q);
    bool ok = dist_wait(r, q, n, 0, "the state sent at a gate", -1);
    free(q);
    return ok;
}

/* A gate, on rank 0: every other rank's state, and the sums of its passes in progress. */
static bool gather_state(run *r)
{
    dist_state *ds = r->ds;
    for (int j = 1; j < ds->K; j++) {
        long long hdr = -1;
        int *q = malloc((size_t)state_count(r, j) * sizeof *q);
        if (!q)
            dist_fatal(r, "out of memory");
        int n = state_requests(r, j, &hdr, q);
        bool ok = dist_wait(r, q, n, j, "the state of a gate", -1);
        free(q);
        got_arg g = {j, hdr};
        if (!ok || !dist_until(r, got_enough, &g, j, "report sums", -1))
            return false;
        for (long long P = hdr; P < hdr + PASS_SPREAD && P < r->npasses; P++) {
            const double *row = ds->gring + (size_t)(P % RING) * (MAX_STAGES + 1);
            double m[PASS_MSG];
            m[0] = (double)P;
            memcpy(m + 1, row, (MAX_STAGES + 1) * sizeof *m);
            long long keep = ds->got[j];
            merge_pass(r, j, m);
            ds->got[j] = keep;
        }
    }
    return true;
}

typedef struct rel_arg {
    long long t;
} rel_arg;

/* Ranks > 0 may start iteration t+1 (or must act at the gate t). */
static bool released_past(run *r, void *arg)
{
    long long t = ((rel_arg *)arg)->t;
    return r->ds->rel > t || (r->ds->rel == t && (r->ds->flags & REL_GATE));
}

static bool released_to(run *r, void *arg)
{
    return r->ds->rel >= ((rel_arg *)arg)->t;
}

static bool is_aborted(run *r, void *arg)
{
    (void)arg;
    return r->ds->aborted;
}

/* The stages of this rank for iteration t, as the sequential executor runs them. */
static void dist_iteration(run *r, long long t)
{
    dist_state *ds = r->ds;
    for (int k = ds->first; k < ds->last && !atomic_load(&r->stop); k++) {
        long long ts = t - 1 - r->lag;
        if (ts >= r->origin && ts < r->total && r->st[k].nsgu > 0)
            do_sgu(r, k, ts);
        if (t < r->total)
            do_step(r, k, t);
    }
}

/* Rank 0's executor: its stages, the reports, and the gates. */
static void dist_supervise(run *r, dnic_report_fn report, void *user, double t0)
{
    dist_state *ds = r->ds;
    const dnic_train_opts *o = r->o;
    long long next = atomic_load(&r->reported);
    double next_draw = t0 + 0.25;
    next_release(r, r->start - 1);
    for (long long t = r->start; !atomic_load(&r->stop); t++) {
        dist_iteration(r, t);
        if (atomic_load(&r->stop))
            break;
        ds->done = t;
        dist_poll(r);
        bool asked = (o->interrupt && *o->interrupt) || ds->interrupt_seen ||
                     (o->interrupt_at > 0 && t + 1 >= o->interrupt_at);
        if (r->R > 1) { /* replicas stop together: their supervisors agree where each extends its release */
            ds->asked |= asked;
            asked = r->stop_at < 0 && (t == ds->rel || (!(ds->flags & REL_GATE) && ds->rel - t < ds->window / 2 + 1)) &&
                    ds->c->any(ds->c, ds->asked);
        }
        if (asked && r->stop_at < 0) { /* every rank can still stop at the release in force */
            r->stop_at = ds->rel;
            ds->flags |= REL_GATE | REL_STOP;
            send_releases(r);
        }
        if (t == ds->rel) {
            bool stop_here = ds->flags & REL_STOP;
            if ((ds->flags & REL_GATE) && !gather_state(r))
                break;
            if ((ds->flags & REL_GATE) && (!handle_events(r, t) || t == last_iteration(r))) {
                if (!stop_here) /* an error at the gate (a checkpoint not written) */
                    abort_others(r);
                next = report_ready(r, next, report, user, t0);
                break;
            }
            next_release(r, t);
        } else if (!(ds->flags & REL_GATE) && ds->rel - t < ds->window / 2 + 1) {
            long long e = next_event(r), w = t + ds->window;
            if ((e < w ? e : w) > ds->rel)
                next_release(r, t);
        }
        next = report_ready(r, next, report, user, t0);
        if (o->progress && (t & 255) == 0 && now_s() >= next_draw && t < r->total) {
            progress(r, t0, t + 1);
            next_draw = now_s() + 0.25;
        }
    }
    if (atomic_load(&r->stop) && atomic_load(&r->bad_step) >= 0)
        abort_others(r);
    if (ds->flags & REL_ABORT) /* the stop must reach every rank before this one finishes */
        for (int j = 1; j < ds->K; j++)
            dist_wait(r, &ds->relsreq[j], 1, j, "the stop", -1);
}

/* The executor of ranks > 0: its stages up to each release, its state at each gate. */
static void dist_follow(run *r)
{
    dist_state *ds = r->ds;
    const dnic_train_opts *o = r->o;
    for (long long t = r->start; !atomic_load(&r->stop); t++) {
        rel_arg a = {t};
        if (!dist_until(r, released_to, &a, 0, "a release", -1))
            break;
        dist_iteration(r, t);
        if (atomic_load(&r->stop))
            break;
        ds->done = t;
        if (!send_passes(r, t))
            break;
        if (o->interrupt && *o->interrupt && !ds->interrupt_sent) {
            ds->interrupt_sent = true;
            ds->ctrlout[0] = CTRL_INTERRUPT;
            ds->ctrlsreq = dist_isend(r, ds->ctrlout, sizeof ds->ctrlout, 0, TAG_CTRL);
        }
        if (t == ds->rel) {
            if (!dist_until(r, released_past, &a, 0, "a release", -1))
                break;
            if (ds->rel == t && (ds->flags & REL_GATE)) {
                /* the next release may arrive while the state goes out: this gate's flags count */
                bool stop = ds->flags & REL_STOP;
                if (!send_state(r) || stop)
                    break;
            }
        }
    }
    long long bad = atomic_load(&r->bad_step);
    if (bad >= 0 && !ds->aborted) { /* a stage of this rank diverged: rank 0 stops the job */
        dist_wait(r, &ds->ctrlsreq, 1, 0, "an interrupt", -1);
        int b = first_nonfinite(r->p);
        ds->ctrlout[0] = CTRL_DIVERGED;
        ds->ctrlout[1] = bad;
        ds->ctrlout[2] = b >= 0 ? b : r->p->loss_acc;
        ds->ctrlsreq = dist_isend(r, ds->ctrlout, sizeof ds->ctrlout, 0, TAG_CTRL);
        dist_until(r, is_aborted, NULL, 0, "the stop after a divergence", -1);
    }
}

/* Routes, ownership and the first messages of a run over several processes. */
static dnic_status dist_setup(run *r)
{
    const dnic_dist *d = r->o->dist;
    dnic_program *p = r->p;
    dist_state *ds = calloc(1, sizeof *ds);
    if (!ds)
        return DNIC_ERR_NOMEM;
    r->ds = ds;
    ds->d = d;
    ds->c = d->comm;
    ds->me = d->comm->rank;
    ds->K = d->comm->size;
    ds->bad_buf = -1;
    int K = ds->K, nb = p->nblocks, S = r->S;
    if (K < 1 || K > S || d->first_stage[0] != 0 || d->first_stage[K] != S || p->nbufs > MAX_BUF_TAG)
        return DNIC_ERR_ARG;
    for (int q = 0; q < K; q++) {
        if (d->first_stage[q + 1] <= d->first_stage[q])
            return DNIC_ERR_ARG;
        for (int k = d->first_stage[q]; k < d->first_stage[q + 1]; k++)
            ds->rank_of[k] = q;
    }
    ds->first = d->first_stage[ds->me];
    ds->last = d->first_stage[ds->me + 1];
    ds->window = d->window > 0 ? d->window : 8; /* an interrupt stops within this many iterations */
    if (ds->window > 32 * r->pass_len) /* no rank more than RING/2 passes ahead of the reports */
        ds->window = 32 * r->pass_len;
    ds->rank_sgu = calloc((size_t)K, sizeof *ds->rank_sgu);
    ds->recv = calloc((size_t)nb, sizeof *ds->recv);
    ds->send = calloc((size_t)nb, sizeof *ds->send);
    ds->nrecv = calloc((size_t)nb, sizeof *ds->nrecv);
    ds->nsend = calloc((size_t)nb, sizeof *ds->nsend);
    ds->sreq = calloc((size_t)nb, sizeof *ds->sreq);
    ds->owned = calloc((size_t)K, sizeof *ds->owned);
    ds->nowned = calloc((size_t)K, sizeof *ds->nowned);
    int *writer = malloc((size_t)p->nbufs * sizeof *writer), *first = malloc((size_t)p->nbufs * sizeof *first);
    ds->gring = calloc(GRING, sizeof *ds->gring);
    if (!ds->rank_sgu || !ds->recv || !ds->send || !ds->nrecv || !ds->nsend || !ds->sreq || !ds->owned ||
        !ds->nowned || !writer || !first || !ds->gring) {
        free(writer);
        free(first);
        return DNIC_ERR_NOMEM;
    }
    for (int k = 0; k < S; k++)
        for (int i = 0; i < r->st[k].nsgu; i++) {
            ds->rank_sgu[ds->rank_of[k]] = true;
            ds->sg_rank[r->st[k].sgu_sg[i]] = ds->rank_of[k];
        }
    /* the writer of every exported temporary; on this rank, the first block (in the order the
     * tasks of one step run: steps by stage, then SG updates by stage) that imports it */
    for (int i = 0; i < p->nbufs; i++)
        writer[i] = first[i] = -1;
    for (int b = 0; b < nb; b++)
        for (int i = 0; d->exports && i < d->nexports[b]; i++)
            writer[d->exports[b][i]] = b;
    dnic_status status = DNIC_OK;
    for (int pass = 0; pass < 2; pass++)
        for (int k = ds->first; k < ds->last; k++) {
            int blocks[MAX_SGU + 1], n = 0;
            if (pass == 0)
                blocks[n++] = r->st[k].step_block;
            else
                for (int i = 0; i < r->st[k].nsgu; i++)
                    blocks[n++] = r->st[k].sgu[i];
            for (int j = 0; j < n; j++) {
                int b = blocks[j];
                for (int i = 0; i < d->nimports[b]; i++) {
                    int id = d->imports[b][i], w = writer[id];
                    if (w < 0 || ds->rank_of[p->blocks[w].stage] == ds->me || first[id] >= 0)
                        continue;
                    first[id] = b;
                    route *nr = realloc(ds->recv[b], (size_t)(ds->nrecv[b] + 1) * sizeof *nr);
                    if (!nr) {
                        status = DNIC_ERR_NOMEM;
                        continue;
                    }
                    ds->recv[b] = nr;
                    nr[ds->nrecv[b]++] = (route){id, ds->rank_of[p->blocks[w].stage], w};
                }
            }
        }
    /* this rank's sends: each export, once to every other rank with a block importing it */
    for (int b = 0; b < nb; b++) {
        if (!DNIC_PHASE_TRAINS(p->blocks[b].phase) || ds->rank_of[p->blocks[b].stage] != ds->me)
            continue;
        for (int i = 0; i < d->nexports[b]; i++) {
            int id = d->exports[b][i];
            for (int q = 0; q < K; q++) {
                bool wants = false;
                for (int c = 0; c < nb && q != ds->me && !wants; c++)
                    if (DNIC_PHASE_TRAINS(p->blocks[c].phase) && ds->rank_of[p->blocks[c].stage] == q)
                        for (int m = 0; m < d->nimports[c]; m++)
                            wants |= d->imports[c][m] == id;
                if (!wants)
                    continue;
                route *ns = realloc(ds->send[b], (size_t)(ds->nsend[b] + 1) * sizeof *ns);
                if (!ns) {
                    status = DNIC_ERR_NOMEM;
                    continue;
                }
                ds->send[b] = ns;
                ns[ds->nsend[b]++] = (route){id, q, b};
            }
        }
        ds->sreq[b] = malloc(((size_t)ds->nsend[b] * (size_t)r->slots + 1) * sizeof **ds->sreq);
        if (!ds->sreq[b])
            status = DNIC_ERR_NOMEM;
        else
            for (int i = 0; i < ds->nsend[b] * r->slots; i++)
                ds->sreq[b][i] = -1;
    }
    /* what each rank sends rank 0 at a gate: the buffers its stages write */
    for (int q = 0; q < K; q++) {
        ds->owned[q] = malloc(((size_t)p->nbufs + 1) * sizeof **ds->owned);
        if (!ds->owned[q]) {
            status = DNIC_ERR_NOMEM;
            continue;
        }
        for (int i = 0; i < p->nbufs; i++) {
            int st = d->owner[i];
            dnic_buf_kind kind = p->bufs[i].kind;
            if (st >= 0 && st < S && ds->rank_of[st] == q &&
                (kind == DNIC_BUF_PARAM || kind == DNIC_BUF_STATE || kind == DNIC_BUF_TEMP))
                ds->owned[q][ds->nowned[q]++] = i;
        }
    }
    free(writer);
    free(first);
    /* the messages that may come at any time */
    ds->relreq = ds->ctrlsreq = -1;
    ds->relsreq = malloc((size_t)K * sizeof *ds->relsreq);
    ds->relout = calloc((size_t)K * 2, sizeof *ds->relout);
    ds->ctrlin = calloc((size_t)K * 3, sizeof *ds->ctrlin);
    ds->ctrlreq = malloc((size_t)K * sizeof *ds->ctrlreq);
    ds->pout = calloc((size_t)RING * PASS_MSG, sizeof *ds->pout);
    ds->preq = malloc(RING * sizeof *ds->preq);
    ds->pin = calloc((size_t)K * PASS_MSG, sizeof *ds->pin);
    ds->pinreq = malloc((size_t)K * sizeof *ds->pinreq);
    ds->got = calloc((size_t)K, sizeof *ds->got);
    if (!ds->relsreq || !ds->relout || !ds->ctrlin || !ds->ctrlreq || !ds->pout || !ds->preq || !ds->pin ||
        !ds->pinreq || !ds->got)
        return DNIC_ERR_NOMEM;
    for (int i = 0; i < RING; i++)
        ds->preq[i] = -1;
    for (int j = 0; j < K; j++)
        ds->relsreq[j] = ds->ctrlreq[j] = ds->pinreq[j] = -1;
    return status;
}

static dnic_comm *progress_comm; /* the transport of the run in progress (one per process) */

static void dist_progress(void)
{
    if (progress_comm && progress_comm->progress)
        progress_comm->progress(progress_comm);
}

/* After setup and resume: the counters a resumed run starts from, and the first receives. */
static void dist_start(run *r)
{
    dist_state *ds = r->ds;
    ds->done = r->start - 1;
    ds->rel = r->start - 1;
    progress_comm = ds->c;
    dnic_parallel_set_progress(dist_progress);
    dnic_replica_use(r->R > 1 ? ds->c : NULL);
    for (long long P = 0; P < r->npasses && pass_close(r, P, ds->me) <= ds->done; P++)
        ds->sent = P + 1;
    for (int j = 1; j < ds->K; j++)
        for (long long P = 0; P < r->npasses && pass_close(r, P, j) <= ds->done; P++)
            ds->got[j] = P + 1;
    if (ds->me > 0) {
        ds->relreq = dist_irecv(r, ds->relbuf, sizeof ds->relbuf, 0, TAG_RELEASE);
        return;
    }
    for (int j = 1; j < ds->K; j++) {
        ds->ctrlreq[j] = dist_irecv(r, ds->ctrlin + 3 * j, 3 * sizeof *ds->ctrlin, j, TAG_CTRL);
        ds->pinreq[j] = dist_irecv(r, ds->pin + (size_t)j * PASS_MSG, PASS_MSG * sizeof(double), j, TAG_PASS);
    }
}

/* Waits for request *q to finish, whatever the run's state (at its end). */
static void dist_finish(run *r, int *q, int peer, const char *what)
{
    double start = now_s();
    for (long spin = 0; !dist_done(r, q, peer); spin++) {
        if (now_s() - start > r->ds->c->timeout)
            dist_fatal(r, "%s with rank %d did not finish within %g s; stopping the job", what, peer, r->ds->c->timeout);
        if (spin > 1000)
            nanosleep(&(struct timespec){0, 100000}, NULL);
    }
}

/* The iteration in which block b runs step s. */
static long long task_iteration(const run *r, int b, long long s)
{
    return r->p->blocks[b].phase == DNIC_PHASE_STEP ? s : s + 1 + r->lag;
}

/* After a run that every rank stopped at gate g before its end (an interrupt, patience): the
 * messages sent in iterations up to g for tasks after g (the backward messages of the last
 * steps, for SG updates that will not run) are received and dropped, and every send of this
 * rank is waited for, so that no transfer outlives the buffers it reads. */
static void dist_drain(run *r, long long g)
{
    dist_state *ds = r->ds;
    dnic_program *p = r->p;
    size_t most = 1;
    for (int i = 0; i < p->nbufs; i++)
        most = buf_bytes(p, i) > most ? buf_bytes(p, i) : most;
    char *scratch = malloc(most);
    if (!scratch)
        dist_fatal(r, "out of memory");
    for (int b = 0; b < p->nblocks; b++)
        for (int i = 0; i < ds->nrecv[b]; i++) {
            route *rt = &ds->recv[b][i];
            for (long long s = g - 1 - r->lag > r->start ? g - 1 - r->lag : r->start; s <= g && s < r->total; s++)
                if (task_iteration(r, rt->from, s) <= g && task_iteration(r, b, s) > g) {
                    int q = dist_irecv(r, scratch, buf_bytes(p, rt->buf), rt->peer, rt->buf);
                    dist_finish(r, &q, rt->peer, p->bufs[rt->buf].name);
                }
        }
    free(scratch);
    for (int b = 0; b < p->nblocks; b++)
        for (int i = 0; i < ds->nsend[b] * r->slots; i++)
            dist_finish(r, &ds->sreq[b][i], ds->send[b][i / r->slots].peer, p->bufs[ds->send[b][i / r->slots].buf].name);
    for (int i = 0; i < RING && ds->me > 0; i++)
        dist_finish(r, &ds->preq[i], 0, "report sums");
    if (ds->me > 0)
        dist_finish(r, &ds->ctrlsreq, 0, "a control message");
    for (int j = 1; j < ds->K && ds->me == 0; j++)
        dist_finish(r, &ds->relsreq[j], j, "a release");
}

/* The executor of a run over several processes. */
static void run_distributed(run *r, dnic_report_fn report, void *user, double t0)
{
    dist_state *ds = r->ds;
    dist_start(r);
    if (ds->me == 0)
        dist_supervise(r, report, user, t0);
    else
        dist_follow(r);
    /* the counters finish_run reads, for the stages of the other ranks too */
    long long steps = ds->done + 1 < r->total ? ds->done + 1 : r->total;
    for (int k = 0; k < r->S; k++)
        if (k < ds->first || k >= ds->last)
            atomic_store(&r->st[k].steps_done, steps);
    if (!ds->aborted && !(ds->flags & REL_ABORT) && atomic_load(&r->bad_step) < 0)
        dist_drain(r, ds->done);
    dnic_parallel_set_progress(NULL);
    dnic_replica_use(NULL);
    progress_comm = NULL;
}

static void dist_free(dist_state *ds, int nblocks)
{
    if (!ds)
        return;
    if (ds->c && (ds->aborted || (ds->flags & REL_ABORT)))
        ds->c->cancel_all(ds->c);
    for (int b = 0; b < nblocks; b++) {
        if (ds->recv)
            free(ds->recv[b]);
        if (ds->send)
            free(ds->send[b]);
        if (ds->sreq)
            free(ds->sreq[b]);
    }
    for (int q = 0; ds->owned && q < ds->K; q++)
        free(ds->owned[q]);
    free(ds->owned);
    free(ds->nowned);
    free(ds->recv);
    free(ds->send);
    free(ds->nrecv);
    free(ds->nsend);
    free(ds->sreq);
    free(ds->rank_sgu);
    free(ds->relsreq);
    free(ds->relout);
    free(ds->ctrlin);
    free(ds->ctrlreq);
    free(ds->pout);
    free(ds->preq);
    free(ds->pin);
    free(ds->pinreq);
    free(ds->got);
    free(ds->gring);
    free(ds);
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
            if (o->shuffle || d->x_bytes) {
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
        else if (bd->phase == DNIC_PHASE_WARMUP)
            r->warm_block = b;
        else if (bd->phase == DNIC_PHASE_SG_UPDATE && bd->acc < 0 && bd->cost == 0)
            continue; /* nothing to learn: sg NAME.state while a curriculum's sequences fit one chunk */
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
    if (o->probe && !p->probe)
        status = DNIC_ERR_ARG;
    if (o->test || o->validation || o->probe) {
        /* inference uses the slot after the training slots when there is one */
        r->eval_ptrs = p->nslots > r->slots ? p->slot_ptrs[r->slots] : p->slot_ptrs[0];
        if (p->nslots <= r->slots && S > 1)
            status = DNIC_ERR_ARG;
    }
    r->warm_block = -1;
    if (!map_blocks(r))
        status = DNIC_ERR_ARG;
    /* train.warmup: its block replaces the others in the first steps (not over MPI ranks: it
     * reads and writes every stage's parameters in one place) */
    r->warm = r->warm_block >= 0 ? (o->warmup < r->total ? o->warmup : r->total) : 0;
    if ((r->warm > 0 || p->unlocked) && o->dist)
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
    if (status == DNIC_OK && o->resume) {
        /* a checkpoint at a curriculum's length: the data from its first example at first_step,
         * and a length solved at cut_at ends there (the checkpoint is at or after its step) */
        r->origin = o->first_step;
        if (r->start < r->origin) {
            snprintf(r->res->error, sizeof r->res->error, "%s: the checkpoint is after step %lld, before its length "
                     "began at step %lld (dnic.curriculum: origin)", o->resume, r->start, r->origin);
            status = DNIC_ERR_IO;
        } else if (o->cut_at > 0 && (o->cut_at > r->total || r->start > o->cut_at + r->lag + 1)) {
            snprintf(r->res->error, sizeof r->res->error, "%s: the checkpoint is after step %lld, but its length "
                     "was solved at step %lld (dnic.curriculum: at)", o->resume, r->start, o->cut_at);
            status = DNIC_ERR_IO;
        } else if (o->cut_at > 0) {
            r->total = o->cut_at;
            r->npasses = (r->total + r->pass_len - 1) / r->pass_len;
            r->res->cut = 1;
            for (int k = 0; k < r->S; k++) {
                if (atomic_load(&r->st[k].steps_done) > r->total)
                    atomic_store(&r->st[k].steps_done, r->total);
                if (atomic_load(&r->st[k].sgus_done) > r->total)
                    atomic_store(&r->st[k].sgus_done, r->total);
            }
        }
    } else if (status == DNIC_OK && o->first_step > 0) { /* every step and SG update before it is done */
        r->start = r->origin = o->first_step;
        for (int k = 0; k < r->S; k++) {
            atomic_store(&r->st[k].steps_done, r->start);
            atomic_store(&r->st[k].sgus_done, r->start);
        }
        long long passes = r->start / r->pass_len, evals = 0;
        while (eval_pass(r, evals) < passes)
            evals++;
        atomic_store(&r->evals_done, evals);
        atomic_store(&r->reported, passes);
    }
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
        iteration(r, 0, r->S, t);
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
    /* a stage thread that waits runs parts of the others' large products */
    dnic_parallel_set_helpers(plan->threads - 1, wake_helpers, r);
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
    dnic_parallel_set_helpers(0, NULL, NULL);
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
        int b = r->ds && r->ds->bad_buf >= 0 ? r->ds->bad_buf : first_nonfinite(p);
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
    dist_free(r->ds, p->nblocks);
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
    int R = o->dist && o->dist->comm->replicas > 1 ? o->dist->comm->replicas : 1;
    long long per_epoch = d->n / ((long long)p->batch * R);
    int S = p->nstages > 0 ? p->nstages : 1;
    if (per_epoch < 1 || (o->epochs > 0) == (o->steps > 0) || o->report_every < 1 || o->lag < 0 ||
        p->nslots < o->lag + 1 || o->lag + 1 > 8 || S > MAX_STAGES || p->nsg > MAX_STAGES || o->ntexts < 0 ||
        o->ntexts > 8 || o->first_step < 0 ||
        (o->first_step > 0 && (o->first_step % (o->epochs > 0 ? per_epoch : o->report_every) != 0 || o->dist ||
                               o->first_step >= (o->epochs > 0 ? o->epochs * per_epoch : o->steps))) ||
        o->cut_at < 0 || (o->cut_at > 0 && (!o->resume || o->cut_at <= o->first_step)) ||
        (o->stop_if && (o->dist || o->schedule == DNIC_SCHED_PIPELINE)))
        return res->status = DNIC_ERR_ARG;
    run *r = calloc(1, sizeof *r);
    if (!r)
        return res->status = DNIC_ERR_NOMEM;
    r->R = R;
    r->replica = R > 1 ? o->dist->comm->replica : 0;
    r->batch = p->batch * R;
    dnic_status status = setup_run(r, p, d, o, S, per_epoch, res);
    dnic_sched_plan plan;
    dnic_plan_schedule(p, o, &plan);
    double t0 = now_s();
    if (status == DNIC_OK && o->dist)
        status = dist_setup(r);
    status = resume_run(r, status);
    if (o->dist && status != DNIC_OK) { /* the other ranks would wait for this one: stop the job */
        char why[700];
        snprintf(why, sizeof why, "dnic: rank %d: cannot start training: %s\n", o->dist->comm->rank,
                 res->error[0] ? res->error : status == DNIC_ERR_NOMEM ? "out of memory" : "the program does not fit the run");
        o->dist->comm->abort(o->dist->comm, why, status == DNIC_ERR_IO ? 1 : 2);
    }
    if (status == DNIC_OK && plan.schedule == DNIC_SCHED_MPI)
        run_distributed(r, report, user, t0);
    else if (status == DNIC_OK && plan.schedule == DNIC_SCHED_SEQUENTIAL)
        run_sequential(r, report, user, t0);
    else if (status == DNIC_OK)
        status = run_pipeline(r, &plan, report, user, t0);
    return finish_run(r, status, t0);
}
