/* dnic_parallel_for (runtime/parallel.c) when a pool thread is late: it covers every index
 * exactly once, and the caller does the share of a thread that is not running instead of
 * waiting for it. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <criterion/criterion.h>
#include <pthread.h>
#include <sched.h>
#include <stdbool.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "dnic/program.h"

enum { N = 64 };

typedef struct cover {
    pthread_t caller;
    _Atomic int hits[N];
    _Atomic int by_pool;     /* indices run by a pool thread */
    _Atomic int pool_naps;   /* the pool thread sleeps in its first part only */
    bool slow_caller;
} cover;

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void mark(void *ctx, long long lo, long long hi)
{
    cover *c = ctx;
    if (pthread_equal(pthread_self(), c->caller)) {
        if (c->slow_caller)
            usleep(2000); /* leave the pool thread time to wake and take a part */
    } else {
        if (atomic_fetch_add(&c->pool_naps, 1) == 0)
            usleep(200 * 1000); /* a partner descheduled in the middle of its part */
        atomic_fetch_add(&c->by_pool, (int)(hi - lo));
    }
    for (long long i = lo; i < hi; i++)
        atomic_fetch_add(&c->hits[i], 1);
}

static void expect_once(cover *c)
{
    for (int i = 0; i < N; i++)
        cr_expect_eq(atomic_load(&c->hits[i]), 1, "index %d ran %d times", i, atomic_load(&c->hits[i]));
}

/* the pool thread sleeps 200 ms in the first part it takes: the caller runs all the others */
Test(parallel, sleeping_partner)
{
    dnic_parallel_set_threads(2);
    static cover c;
    c.caller = pthread_self();
    c.slow_caller = true;
    double t0 = now();
    dnic_parallel_for(mark, &c, N);
    double s = now() - t0;
    expect_once(&c);
    cr_expect_geq(atomic_load(&c.pool_naps), 1, "the pool thread took no part");
    cr_expect_geq(s, 0.2, "returned after %.3f s, before the pool thread's part was done", s);
    cr_expect_lt(atomic_load(&c.by_pool), N / 2, "the pool thread ran %d of %d indices while asleep",
                 atomic_load(&c.by_pool), N);
    /* and the pool still works afterwards */
    static cover d;
    d.caller = pthread_self();
    atomic_store(&d.pool_naps, 1);
    for (int r = 0; r < 100; r++) {
        for (int i = 0; i < N; i++)
            atomic_store(&d.hits[i], 0);
        dnic_parallel_for(mark, &d, N);
        expect_once(&d);
    }
}

/* Two threads on one core: the pool thread runs only when the caller gives the core up.  Many
 * small calls must still finish promptly (a caller spinning for its partner would hold the core
 * for a whole time slice per call). */
Test(parallel, one_core)
{
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(sched_getcpu(), &one);
    cr_assert_eq(sched_setaffinity(0, sizeof one, &one), 0);
    dnic_parallel_set_threads(2);
    static cover c;
    c.caller = pthread_self();
    atomic_store(&c.pool_naps, 1);
    double t0 = now();
    for (int r = 0; r < 2000; r++) {
        for (int i = 0; i < N; i++)
            atomic_store(&c.hits[i], 0);
        dnic_parallel_for(mark, &c, N);
        expect_once(&c);
    }
    double s = now() - t0;
    cr_expect_lt(s, 2.0, "2000 calls took %.3f s", s);
    cr_log_info("2000 calls on one core: %.3f s, %d indices by the pool thread", s, atomic_load(&c.by_pool));
}

/* A helper: a thread outside the pool (a pipeline's stage thread) that runs parts while it waits
 * for something else, woken by the pool when a call publishes parts. */
typedef struct helping {
    cover c;
    _Atomic int parts, wakes, stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
} helping;

static helping H = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

static void count_part(void *ctx, long long lo, long long hi)
{
    atomic_fetch_add(&H.parts, 1);
    mark(ctx, lo, hi);
}

static void woken(void *arg)
{
    cr_assert_eq(arg, &H);
    pthread_mutex_lock(&H.mu);
    atomic_fetch_add(&H.wakes, 1);
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
}

/* sleeps until woken, then helps, as the scheduler's wait does */
static void *helper_main(void *arg)
{
    (void)arg;
    pthread_mutex_lock(&H.mu);
    while (!atomic_load(&H.stop)) {
        if (dnic_parallel_helpable()) {
            pthread_mutex_unlock(&H.mu);
            dnic_parallel_help();
            pthread_mutex_lock(&H.mu);
            continue;
        }
        pthread_cond_wait(&H.cv, &H.mu);
    }
    pthread_mutex_unlock(&H.mu);
    return NULL;
}

Test(parallel, helpers)
{
    dnic_parallel_set_threads(1);
    dnic_parallel_set_helpers(1, woken, &H);
    H.c.caller = pthread_self();
    atomic_store(&H.c.pool_naps, 1);
    pthread_t th;
    cr_assert_eq(pthread_create(&th, NULL, helper_main, NULL), 0);
    for (int r = 0; r < 500; r++) {
        for (int i = 0; i < N; i++)
            atomic_store(&H.c.hits[i], 0);
        atomic_store(&H.parts, 0);
        dnic_parallel_for(count_part, &H.c, N);
        expect_once(&H.c);
        /* split for the caller and its helper, 4 parts each, whoever runs them */
        cr_expect_eq(atomic_load(&H.parts), 8, "call %d: %d parts", r, atomic_load(&H.parts));
    }
    cr_expect_eq(atomic_load(&H.wakes), 500, "the helper was woken %d times for 500 calls", atomic_load(&H.wakes));
    cr_log_info("500 calls: %d of %d indices by the helper", atomic_load(&H.c.by_pool), 500 * N);
    /* without helpers a call runs whole on its caller, and wakes nobody */
    dnic_parallel_set_helpers(0, NULL, NULL);
    for (int i = 0; i < N; i++)
        atomic_store(&H.c.hits[i], 0);
    atomic_store(&H.parts, 0);
    dnic_parallel_for(count_part, &H.c, N);
    expect_once(&H.c);
    cr_expect_eq(atomic_load(&H.parts), 1);
    cr_expect_eq(atomic_load(&H.wakes), 500);
    cr_expect(!dnic_parallel_help(), "help with no helpers configured ran a part");
    pthread_mutex_lock(&H.mu);
    atomic_store(&H.stop, 1);
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
    pthread_join(th, NULL);
}
