/* What the scheduler needs to run a model's stages in several processes: a few message-passing
 * calls (a transport) and where the stages go (a layout).  The dnic command fills the transport
 * in with MPI (runtime/mpi.c, linked only into the command); libdnic itself never includes
 * mpi.h, and the objects `dnic -c` writes never need it.
 *
 * Usage sketch (cli/distribute.c):
 *     dnic_comm *c = dnic_mpi_comm();                  the transport, or NULL without MPI
 *     dnic_dist dist = {.comm = c, .first_stage = cut, .imports = ..., .owner = ...};
 *     opts.dist = &dist;  dnic_train(&p, &data, &opts, report, user, &res);
 * Every rank calls dnic_train with the same program, data and options; rank 0 reports. */
#ifndef DNIC_DIST_H
#define DNIC_DIST_H

#include <stdbool.h>
#include <stddef.h>

/* Message tags below this are stage buffers (one tag per buffer); the scheduler's own messages
 * (releases, report sums, gates) use tags above it. */
enum { DNIC_DIST_BUF_TAGS = 30000 };

/* Message passing between the ranks 0..size-1 of one job.  Requests are small integers owned
 * by the transport; a finished request is freed by the test that reports it. */
typedef struct dnic_comm {
    int rank, size;
    double timeout;  /* seconds a rank waits for a message before it stops the job */
    /* start sending / receiving n bytes; return a request, or -1 on failure */
    int (*isend)(struct dnic_comm *c, const void *buf, size_t n, int to, int tag);
    int (*irecv)(struct dnic_comm *c, void *buf, size_t n, int from, int tag);
    /* 1: the request is done (and freed), 0: not yet, -1: it failed */
    int (*test)(struct dnic_comm *c, int req);
    /* drop every request still pending (at the end of a run that stopped on an error) */
    void (*cancel_all)(struct dnic_comm *c);
    /* ends every process of the job with this status, after `why` is printed; does not return */
    void (*abort)(struct dnic_comm *c, const char *why, int status);
    /* the process's standard error (other ranks' stderr is kept for the start-up agreement) */
    void (*say)(struct dnic_comm *c, const char *text);
    /* lets pending transfers move (called between and inside large products) */
    void (*progress)(struct dnic_comm *c);
    /* data parallelism (--replicas): this process is replica `replica` of `replicas` copies of
     * the pipeline (rank and size above are within its pipeline); sum replaces buf (n float64
     * or float32 elements) by its sum over the replicas, added in replica order: ((g0 + g1) +
     * g2) + ..., the same bits on every replica */
    int replica, replicas;
    int world_rank;  /* the rank in the whole job (rank 0 writes the files) */
    void (*sum)(struct dnic_comm *c, void *buf, size_t n, bool f64);
    /* the n bytes at mine of every replica into all (replica 0's; NULL on the others), in
     * replica order: replica 0 writes a checkpoint of every replica's temporaries */
    void (*gather)(struct dnic_comm *c, const void *mine, size_t n, void *all);
    /* whether any replica says yes (the supervisors agree on an interrupt at the same point) */
    bool (*any)(struct dnic_comm *c, bool mine);
} dnic_comm;

/* The transport dnic_replica_sum (include/dnic/program.h) sums through, or NULL (replica.c). */
void dnic_replica_use(dnic_comm *c);

/* Where a model's stages run and what crosses between them.  All arrays are borrowed. */
typedef struct dnic_dist {
    dnic_comm *comm;
    const int *first_stage;     /* [size + 1]: rank r runs stages first_stage[r] .. first_stage[r+1]-1 */
    /* per block: the temporaries it imports (another block wrote them in the same step) and
     * exports (writes for another block), as compiler/ir_link.c computed them */
    const int *const *imports, *nimports;
    const int *const *exports, *nexports;
    const int *owner;           /* per buffer: the stage whose blocks write it, or -1 (nobody does) */
    int window;                 /* how many iterations ahead of rank 0 a rank may run (0: the default) */
    /* tests: this rank raises SIGKILL (kill) or stops answering (hang) before this step */
    long long test_kill_at, test_hang_at;
} dnic_dist;

#endif
