/* dnic_replica_sum: what a program built for --replicas calls to sum a gradient over the
 * replicas (ir_replicas.c puts the calls in).  The run over MPI names the transport that does
 * it (dnic_replica_use, from sched.c); the transport sums in replica order, so every replica
 * gets the same bits whatever the timing (runtime/mpi_comm.c). */
#include <stdatomic.h>

#include "dist.h"
#include "dnic/program.h"

static dnic_comm *_Atomic replica_comm;

void dnic_replica_use(dnic_comm *c)
{
    atomic_store(&replica_comm, c);
}

void dnic_replica_sum(void *buf, long long n, int is_f64)
{
    dnic_comm *c = atomic_load(&replica_comm);
    if (c && c->replicas > 1)
        c->sum(c, buf, (size_t)n, is_f64 != 0);
}
