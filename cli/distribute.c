/* `mpirun -np K dnic M.dni --run`: the command's side of a run over MPI ranks.  Starts and ends
 * the job, agrees before training that every rank is ready (rank 0 names one that is not), and
 * lays the model out: which rank runs which stages (--placement, else contiguous groups balanced
 * by the cost model), what crosses between them (the IR's imports and exports) and which stage
 * writes each buffer.  Without MPI (./configure --without-mpi) it only says so. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"
#include "dist.h"
#ifdef DNIC_HAVE_MPI
#include "mpi_comm.h"

static int agreed_status; /* rank 0: the exit status the agreement before training decided */
#endif

bool cli_mpi_begin(int *argc, char ***argv, bool asked)
{
#ifdef DNIC_HAVE_MPI
    if (dnic_mpi_comm() || (!asked && !dnic_mpi_launched()))
        return true;
    return dnic_mpi_start(argc, argv);
#else
    (void)argc;
    (void)argv;
    const char *size = getenv("OMPI_COMM_WORLD_SIZE");
    if (size && atoi(size) > 1) {
        fprintf(stderr, "dnic: error: mpirun started %s ranks, but this dnic was built without MPI (./configure found "
                        "no Open MPI: install libopenmpi-dev and openmpi-bin, then configure again)\n", size);
        return false;
    }
    if (asked) {
        fprintf(stderr, "dnic: error: --schedule mpi: this dnic was built without MPI (./configure found no Open "
                        "MPI: install libopenmpi-dev and openmpi-bin, then configure again)\n");
        return false;
    }
    return true;
#endif
}

dnic_comm *cli_mpi_comm(void)
{
#ifdef DNIC_HAVE_MPI
    return dnic_mpi_comm();
#else
    return NULL;
#endif
}

int cli_mpi_rank(void)
{
    dnic_comm *c = cli_mpi_comm();
    return c ? c->world_rank : 0;
}

bool cli_mpi_replicate(int replicas)
{
#ifdef DNIC_HAVE_MPI
    return dnic_mpi_replicate(replicas);
#else
    (void)replicas;
    return true;
#endif
}

bool cli_mpi_ready(bool ok, int rc)
{
#ifdef DNIC_HAVE_MPI
    int status = 0;
    bool all = dnic_mpi_agree(ok, rc, &status);
    if (!all && cli_mpi_rank() == 0)
        agreed_status = status;
    return all;
#else
    (void)ok;
    (void)rc;
    return true;
#endif
}

int cli_mpi_end(int rc)
{
#ifdef DNIC_HAVE_MPI
    if (!dnic_mpi_comm())
        return rc;
    cli_mpi_ready(rc == DNIC_EXIT_OK, rc); /* a rank that stopped before training says so here */
    int rank = cli_mpi_rank();
    dnic_mpi_finish();
    if (rank > 0) /* rank 0's status is the job's: it has printed what went wrong where */
        return DNIC_EXIT_OK;
    return agreed_status != 0 ? agreed_status : rc;
#else
    return rc;
#endif
}

/* --placement N0,N1,...: the number of stages of each rank, in order. */
static bool parse_placement(dnic_diag *d, const char *text, int S, int K, int *first)
{
    int n = 0, sum = 0;
    const char *p = text;
    first[0] = 0;
    while (*p) {
        char *end;
        long v = strtol(p, &end, 10);
        if (end == p || v < 1 || v > 64 || (*end && *end != ',') || n == 64) {
            dnic_error(d, (dnic_span){0}, "--placement %s: give each rank's number of stages, at least 1 each, "
                       "separated by commas (e.g. --placement 1,3)", text);
            return false;
        }
        sum += (int)v;
        n++;
        if (n <= K)
            first[n] = sum;
        p = *end ? end + 1 : end;
    }
    if (n != K || sum != S) {
        dnic_error(d, (dnic_span){0}, "--placement %s places %d stages on %d ranks; this job has %d ranks and the "
                   "model %d stages", text, sum, n, K, S);
        return false;
    }
    return true;
}

bool cli_dist_layout(dnic_arena *a, dnic_diag *d, const dnic_ir *ir, const dnic_program *p, const dnic_options *o,
                     dnic_dist *dist)
{
    dnic_comm *c = cli_mpi_comm();
    int S = ir->nstages > 0 ? ir->nstages : 1, R = ir->replicas > 1 ? ir->replicas : 1, K = c->size / R;
    memset(dist, 0, sizeof *dist);
    dist->comm = c;
    if (c->size % R != 0) {
        dnic_error(d, (dnic_span){0}, "--replicas %d: this job has %d ranks, not a multiple of %d (each replica "
                   "takes the same number of ranks: mpirun -np %d for %d ranks a replica)", R, c->size, R, R * S, S);
        return false;
    }
    if (K > S) {
        dnic_error(d, (dnic_span){0}, "this job has %d ranks, but the model has %d stage%s: run it on at most %d "
                   "(mpirun -np %d)", K, S, S == 1 ? "" : "s", S, S);
        if (S == 1)
            dnic_note(d, (dnic_span){0}, "only SG modules cut a model into stages; trained by backprop it is one");
        return false;
    }
    if (S > 64) {
        dnic_error(d, (dnic_span){0}, "the model has %d stages; a run over MPI takes at most 64", S);
        return false;
    }
    int *first = dnic_alloc(a, (size_t)(K + 1) * sizeof *first);
    if (o->placement) {
        if (!parse_placement(d, o->placement, S, K, first))
            return false;
    } else {
        dnic_plan_groups(p, K, first);
    }
    dist->first_stage = first;
    int nb = ir->nblocks;
    const int **imp = dnic_alloc(a, (size_t)(nb + 1) * sizeof *imp), **exp = dnic_alloc(a, (size_t)(nb + 1) * sizeof *exp);
    int *nimp = dnic_alloc(a, (size_t)(nb + 1) * sizeof *nimp), *nexp = dnic_alloc(a, (size_t)(nb + 1) * sizeof *nexp);
    int *owner = dnic_alloc(a, (size_t)(ir->nbufs + 1) * sizeof *owner);
    for (int i = 0; i < ir->nbufs; i++)
        owner[i] = -1;
    for (int b = 0; b < nb; b++) {
        const dnic_ir_block *blk = &ir->blocks[b];
        imp[b] = blk->imports;
        nimp[b] = !DNIC_PHASE_TRAINS(blk->phase) ? 0 : blk->nimports;
        exp[b] = blk->exports;
        nexp[b] = !DNIC_PHASE_TRAINS(blk->phase) ? 0 : blk->nexports;
        if (!DNIC_PHASE_TRAINS(blk->phase))
            continue;
        for (int k = 0; k < blk->nops; k++) {
            int r[12], w[12], nr, nw;
            dnic_op_uses(&blk->ops[k], r, &nr, w, &nw);
            for (int j = 0; j < nw; j++) {
                /* one stage writes each buffer, or its rank could not send rank 0 the only copy */
                DNIC_ASSERT(owner[w[j]] < 0 || owner[w[j]] == blk->stage || ir->bufs[w[j]].kind == DNIC_BUF_ACC);
                owner[w[j]] = blk->stage;
            }
        }
    }
    dist->imports = imp;
    dist->nimports = nimp;
    dist->exports = exp;
    dist->nexports = nexp;
    dist->owner = owner;
    dist->test_kill_at = dist->test_hang_at = -1;
    /* tests: DNIC_TEST_KILL=RANK:STEP (SIGKILL) and DNIC_TEST_HANG=RANK:STEP (never answers) */
    const char *env[2] = {getenv("DNIC_TEST_KILL"), getenv("DNIC_TEST_HANG")};
    for (int i = 0; i < 2; i++) {
        int rank;
        long long step;
        if (env[i] && sscanf(env[i], "%d:%lld", &rank, &step) == 2 && rank == c->rank)
            *(i ? &dist->test_hang_at : &dist->test_kill_at) = step;
    }
    return true;
}
