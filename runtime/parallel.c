/* The kernel thread pool behind dnic_parallel_for (include/dnic/program.h).
 *
 * Workers wait for a new generation of work: they spin for a while (a training step issues
 * its matrix products back to back, so the next one usually comes within microseconds), then
 * sleep on a condition variable.  The caller takes part 0 itself and waits until every worker
 * has finished its part.  Parts are fixed by the thread count, not by timing. */
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "dnic/program.h"

enum { MAX_THREADS = 64, SPINS = 20000 };

typedef struct pool {
    pthread_mutex_t busy; /* held by the caller of a dnic_parallel_for that uses the pool */
    pthread_mutex_t lock; /* with wake: the sleeping workers' side */
    pthread_cond_t wake;
    int wanted;           /* dnic_parallel_set_threads, the caller included */
    int threads;          /* the threads that share a call: the caller and started workers */
    int started;          /* workers running (started at the first call that needs them) */
    _Atomic long long generation;
    _Atomic int pending;  /* workers that have not finished the current generation */
    dnic_range_fn fn;
    void *ctx;
    long long n;
    pthread_t tid[MAX_THREADS];
} pool;

static pool P = {.busy = PTHREAD_MUTEX_INITIALIZER, .lock = PTHREAD_MUTEX_INITIALIZER,
                 .wake = PTHREAD_COND_INITIALIZER, .wanted = 1, .threads = 1};

static void run_part(int part, int parts)
{
    long long lo = P.n * part / parts, hi = P.n * (part + 1) / parts;
    if (lo < hi)
        P.fn(P.ctx, lo, hi);
}

static void *worker(void *arg)
{
    int id = (int)(intptr_t)arg; /* 1.. */
    long long seen = 0;
    for (;;) {
        long long g;
        for (int i = 0; (g = atomic_load(&P.generation)) == seen && i < SPINS; i++)
            sched_yield();
        if (g == seen) {
            pthread_mutex_lock(&P.lock);
            while ((g = atomic_load(&P.generation)) == seen)
                pthread_cond_wait(&P.wake, &P.lock);
            pthread_mutex_unlock(&P.lock);
        }
        seen = g;
        if (id < P.threads)
            run_part(id, P.threads);
        atomic_fetch_sub(&P.pending, 1);
    }
    return NULL;
}

void dnic_parallel_set_threads(int n)
{
    pthread_mutex_lock(&P.busy);
    P.wanted = n < 1 ? 1 : n > MAX_THREADS ? MAX_THREADS : n;
    P.threads = P.wanted < P.started + 1 ? P.wanted : P.started + 1;
    pthread_mutex_unlock(&P.busy);
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
    P.threads = P.wanted < P.started + 1 ? P.wanted : P.started + 1;
}

int dnic_parallel_threads(void)
{
    return P.wanted;
}

void dnic_parallel_for(dnic_range_fn fn, void *ctx, long long n)
{
    if (n <= 0)
        return;
    if (n == 1 || pthread_mutex_trylock(&P.busy) != 0) {
        fn(ctx, 0, n);
        return;
    }
    start_workers();
    if (P.threads == 1) {
        pthread_mutex_unlock(&P.busy);
        fn(ctx, 0, n);
        return;
    }
    int parts = P.threads;
    P.fn = fn;
    P.ctx = ctx;
    P.n = n;
    atomic_store(&P.pending, P.started); /* every started worker answers each generation */
    pthread_mutex_lock(&P.lock);
    atomic_fetch_add(&P.generation, 1);
    pthread_cond_broadcast(&P.wake);
    pthread_mutex_unlock(&P.lock);
    run_part(0, parts);
    while (atomic_load(&P.pending) > 0)
        ;
    pthread_mutex_unlock(&P.busy);
}
