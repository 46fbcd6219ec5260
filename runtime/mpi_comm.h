/* The MPI transport (mpi_comm.c): what the dnic command calls to start and end an MPI job, to
 * agree that every rank is ready, and the dnic_comm the scheduler sends stage buffers through.
 * Only the dnic command links it (libdnicmpi.a); libdnic never includes mpi.h.
 *
 * Usage sketch (cli/distribute.c):
 *     if (dnic_mpi_launched()) dnic_mpi_start(&argc, &argv);    before anything is printed
 *     ... ok = the rank compiled and loaded its data ...
 *     if (!dnic_mpi_agree(ok, rc, &rc)) return rc;                 rank 0 names a failed rank
 *     dnic_train(... opts.dist->comm = dnic_mpi_comm() ...);
 *     dnic_mpi_finish(); */
#ifndef DNIC_MPI_COMM_H
#define DNIC_MPI_COMM_H

#include <stdbool.h>

#include "dist.h"

/* Whether mpirun (or another Open MPI launcher) started this process. */
bool dnic_mpi_launched(void);
/* MPI_Init; on ranks other than 0, standard output is dropped and standard error kept aside
 * (rank 0 prints it when that rank fails before training).  False, after a message, on failure. */
bool dnic_mpi_start(int *argc, char ***argv);
/* The transport once started, else NULL. */
dnic_comm *dnic_mpi_comm(void);
/* Every rank says whether it is ready to train (its status rc when not).  Returns true when
 * all are; otherwise rank 0 prints the first failed rank's messages, each line prefixed with
 * `dnic: rank R: `, and *status is the exit status rank 0 should end with (0 on other ranks).
 * Only the first call agrees; later calls return true. */
bool dnic_mpi_agree(bool ok, int rc, int *status);
bool dnic_mpi_agreed(void);
/* --replicas R (every rank, once all agreed): the job's W ranks become R pipelines of W/R
 * ranks, replica q on ranks q*W/R ..; the transport's rank and size become those within the
 * pipeline, and its sum adds over the ranks of the other pipelines that run the same stages. */
bool dnic_mpi_replicate(int R);
/* MPI_Finalize (pending requests are dropped first). */
void dnic_mpi_finish(void);

#endif
