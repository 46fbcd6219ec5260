/* The kernel thread pool behind dnic_parallel_for (include/dnic/program.h).
 *
 * A call cuts [0, n) into a few chunks per thread and publishes them; the caller and the
 * workers claim chunks one at a time from one atomic ticket, so a worker that the OS has not
 * scheduled (a busy machine: another process holds its core) claims nothing and whoever runs
 * does its share.  Waiting is a short spin (a training step issues its products back to back,
 * so the next one usually comes within microseconds), then a sleep on a condition variable: a
 * waiting thread never keeps a core from the thread it waits for for long.  Each chunk computes
 * its own outputs, so who runs it changes no number. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#include "dnic/program.h"

enum {
    MAX_THREADS = 64,
    CHUNKS_PER_THREAD = 4, /* finer than one part per thread: a late thread leaves less behind */
    SPIN_NS = 50000,       /* spin this long (50 us) before sleeping */
};

/* The ticket: generation (bits 32..63), chunks of the call (16..31), next chunk to claim
 * (0..15).  The generation makes a claim on a finished call fail (no ABA). */
#define TICKET(gen, chunks) (((uint64_t)(gen) << 32) | ((uint64_t)(chunks) << 16))
#define T_CHUNKS(t) ((int)(((t) >> 16) & 0xffff))
#define T_NEXT(t) ((int)((t) & 0xffff))

typedef struct pool {
    pthread_mutex_t busy; /* held by the caller of a dnic_parallel_for that uses the pool */
    pthread_mutex_t lock; /* with wake and done_cv: the sleeping side */
    pthread_cond_t wake;  /* workers: a new call */
    pthread_cond_t finished; /* the caller: the last chunk is done */
    int wanted;           /* dnic_parallel_set_threads, the caller included */
    _Atomic int threads;  /* the threads that share a call: the caller and started workers */
    int started;          /* workers running (started at the first call that needs them) */
    _Atomic int helpers;  /* threads outside the pool that help (dnic_parallel_set_helpers) */
    void (*wake_helpers)(void *);
    void *wake_arg;
    _Atomic uint64_t ticket;
    _Atomic int done;     /* chunks finished in the current call */
    _Atomic int caller_asleep;
    _Atomic long long splits; /* calls handed to the pool (dnic_parallel_splits) */
    /* the current call, written by the caller before it publishes the ticket and left alone
     * until every chunk is done: a thread that claimed a chunk may read them */
    dnic_range_fn fn;
    void *ctx;
    long long n;
    pthread_t tid[MAX_THREADS];
} pool;

static pool P = {.busy = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                 .wake = PTHREAD_COND_INITIALIZER, .finished = PTHREAD_COND_INITIALIZER,
                 .wanted = 1, .threads = 1};

static long long now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* Claims and runs chunks of the current call until none is left. */
static void run_chunks(void)
{
    for (;;) {
        uint64_t t = atomic_load(&P.ticket);
        int chunks = T_CHUNKS(t), c = T_NEXT(t);
        if (c >= chunks)
            return;
        if (!atomic_compare_exchange_weak(&P.ticket, &t, t + 1))
            continue;
        long long lo = P.n * c / chunks, hi = P.n * (c + 1) / chunks;
        if (lo < hi)
            P.fn(P.ctx, lo, hi);
        /* the last chunk: wake the caller if it went to sleep (it sets caller_asleep before
         * it looks at done again, so one of the two sees the other) */
        if (atomic_fetch_add(&P.done, 1) + 1 == chunks && atomic_load(&P.caller_asleep)) {
            pthread_mutex_lock(&P.lock);
            pthread_cond_signal(&P.finished);
            pthread_mutex_unlock(&P.lock);
        }
    }
}

static bool claimable(uint64_t t)
{
    return T_NEXT(t) < T_CHUNKS(t);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 1.. */
    for (;;) {
        uint64_t t = atomic_load(&P.ticket);
        if (!claimable(t) || id >= atomic_load(&P.threads)) {
            long long until = now_ns() + SPIN_NS;
            for (int i = 1; !claimable(t = atomic_load(&P.ticket)); i++) {
                cpu_relax();
                if (i % 64 == 0 && now_ns() > until)
                    break;
            }
            if (!claimable(t) || id >= atomic_load(&P.threads)) {
                pthread_mutex_lock(&P.lock);
                while (!claimable(atomic_load(&P.ticket)) || id >= atomic_load(&P.threads))
                    pthread_cond_wait(&P.wake, &P.lock);
                pthread_mutex_unlock(&P.lock);
            }
        }
        run_chunks();
    }
    return NULL;
}

/* With P.busy held: the pool's threads that share a call, the caller and running workers. */
static void set_sharers(void)
{
    atomic_store(&P.threads, P.wanted < P.started + 1 ? P.wanted : P.started + 1);
}

void dnic_parallel_set_threads(int n)
{
    pthread_mutex_lock(&P.busy);
    P.wanted = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    set_sharers();
    pthread_mutex_unlock(&P.busy);
}

void dnic_parallel_set_helpers(int n, void (*wake)(void *), void *arg)
{
    pthread_mutex_lock(&P.busy);
    atomic_store(&P.helpers, n < 0 ? 0 : n > MAX_THREADS ? MAX_THREADS : n);
    P.wake_helpers = n > 0 ? wake : NULL;
    P.wake_arg = arg;
    set_sharers();
    pthread_mutex_unlock(&P.busy);
}

bool dnic_parallel_helpable(void)
{
    return atomic_load(&P.helpers) > 0 && claimable(atomic_load(&P.ticket));
}

bool dnic_parallel_help(void)
{
    if (!dnic_parallel_helpable())
        return false;
    run_chunks();
    return true;
}

/* With P.busy held: starts the workers wanted and not yet running. */
static void start_workers(void)
{
    while (P.started < P.wanted - 1) {
        if (pthread_create(&P.tid[P.started + 1], NULL, worker, (void *)(intptr_t)(P.started + 1)) != 0)
            break; /* fewer threads: still correct */
        pthread_detach(P.tid[P.started + 1]);
        P.started++;
    }
    set_sharers();
}

int dnic_parallel_threads(void)
{
    return P.wanted;
}

long long dnic_parallel_splits(void)
{
    return atomic_load(&P.splits);
}

static void (*_Atomic progress_hook)(void);

void dnic_parallel_set_progress(void (*hook)(void))
{
    atomic_store(&progress_hook, hook);
}

void dnic_parallel_for(dnic_range_fn fn, void *ctx, long long n)
{
    if (n <= 0)
        return;
    if (n == 1 || pthread_mutex_trylock(&P.busy) != 0) {
        fn(ctx, 0, n);
        return;
    }
    void (*hook)(void) = atomic_load(&progress_hook);
    if (hook)
        hook();
    start_workers();
    int threads = atomic_load(&P.threads) + atomic_load(&P.helpers);
    if (threads == 1) {
        pthread_mutex_unlock(&P.busy);
        /* with a progress hook, in parts (each computes its own outputs: the same numbers) */
        long long parts = hook ? (n < CHUNKS_PER_THREAD ? n : CHUNKS_PER_THREAD) : 1;
        for (long long i = 0; i < parts; i++) {
            fn(ctx, n * i / parts, n * (i + 1) / parts);
            if (hook && i + 1 < parts)
                hook();
        }
        return;
    }
    long long chunks = (long long)threads * CHUNKS_PER_THREAD;
    if (chunks > n)
        chunks = n;
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    atomic_store(&P.done, 0);
    atomic_fetch_add(&P.splits, 1);
    uint64_t gen = (atomic_load(&P.ticket) >> 32) + 1;
    pthread_mutex_lock(&P.lock); /* a worker between its last look and its wait must not miss this */
    atomic_store(&P.ticket, TICKET(gen, chunks));
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.lock);
    if (P.wake_helpers)
        P.wake_helpers(P.wake_arg);
    run_chunks();
    /* every chunk is claimed; wait for the ones other threads still run */
    long long until = now_ns() + SPIN_NS;
    for (int i = 1; atomic_load(&P.done) < chunks; i++) {
        cpu_relax();
        if (i % 64 == 0 && now_ns() > until) {
            pthread_mutex_lock(&P.lock);
            atomic_store(&P.caller_asleep, 1);
            while (atomic_load(&P.done) < chunks)
                pthread_cond_wait(&P.finished, &P.lock);
            atomic_store(&P.caller_asleep, 0);
            pthread_mutex_unlock(&P.lock);
        }
    }
    pthread_mutex_unlock(&P.busy);
}
