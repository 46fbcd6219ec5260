/* The MPI transport: dnic_comm over Open MPI point-to-point calls on a communicator of its own,
 * the start-up agreement, and the job's start and end.  Linked only into the dnic command. */
#include <errno.h>
#include <fcntl.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mpi_comm.h"

enum { TEXT_MAX = 16384 };

/* DNIC_MPI_DELAY_US=N (to measure the cost model against a slower link, docs/scheduler.md): a
 * stage buffer (tag below DNIC_DIST_BUF_TAGS) leaves N microseconds after the scheduler sent
 * it, as over a link of that latency; the first test or progress call after then posts it. */
struct later {
    double due;
    const void *buf;
    size_t n;
    int to, tag;
};

static struct {
    dnic_comm c;
    MPI_Comm world;     /* the whole job (start-up agreement) */
    MPI_Comm comm;      /* this process's pipeline: the whole job, or one replica's ranks */
    MPI_Comm rcomm;     /* --replicas: the ranks that run the same stages, in replica order */
    void *sums;         /* --replicas: every replica's gradient, gathered */
    size_t nsums;
    struct later *later; /* per request: a send held back by DNIC_MPI_DELAY_US (due 0: none) */
    double delay;       /* DNIC_MPI_DELAY_US, in seconds */
    MPI_Request *req;   /* the request pool: MPI_REQUEST_NULL marks a free entry */
    int nreq;
    int real_stderr;    /* rank 0: 2; others: a copy of the stderr they were started with */
    int kept;           /* other ranks: the file their stderr goes to until they fail or finish */
    bool started, agreed;
} M = {.real_stderr = 2, .kept = -1};

bool dnic_mpi_launched(void)
{
    return getenv("OMPI_COMM_WORLD_SIZE") != NULL || getenv("PMIX_RANK") != NULL;
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void say(dnic_comm *c, const char *text)
{
    (void)c;
    size_t n = strlen(text);
    while (n > 0) {
        ssize_t w = write(M.real_stderr, text, n);
        if (w <= 0 && errno != EINTR)
            return;
        if (w > 0) {
            text += w;
            n -= (size_t)w;
        }
    }
}

static int new_request(void)
{
    for (int i = 0; i < M.nreq; i++)
        if (M.req[i] == MPI_REQUEST_NULL && M.later[i].due == 0)
            return i;
    int n = M.nreq ? 2 * M.nreq : 64;
    MPI_Request *r = realloc(M.req, (size_t)n * sizeof *r);
    if (r)
        M.req = r;
    struct later *l = r ? realloc(M.later, (size_t)n * sizeof *l) : NULL;
    if (!l)
        return -1;
    for (int i = M.nreq; i < n; i++) {
        r[i] = MPI_REQUEST_NULL;
        l[i].due = 0;
    }
    M.later = l;
    int first = M.nreq;
    M.nreq = n;
    return first;
}

/* Posts the held-back send i once it is due; false while it is not. */
static bool post_due(int i, double now)
{
    struct later *l = &M.later[i];
    if (l->due == 0)
        return true;
    if (now < l->due)
        return false;
    l->due = 0;
    if (MPI_Isend(l->buf, (int)l->n, MPI_BYTE, l->to, l->tag, M.comm, &M.req[i]) != MPI_SUCCESS)
        M.req[i] = MPI_REQUEST_NULL; /* reported by the next test as done; the receiver times out */
    return true;
}

static int isend(dnic_comm *c, const void *buf, size_t n, int to, int tag)
{
    (void)c;
    int i = new_request();
    if (i >= 0 && n <= (size_t)1 << 30 && M.delay > 0 && tag < DNIC_DIST_BUF_TAGS) {
        M.later[i] = (struct later){now_s() + M.delay, buf, n, to, tag};
        return i;
    }
    if (i < 0 || n > (size_t)1 << 30 ||
        MPI_Isend(buf, (int)n, MPI_BYTE, to, tag, M.comm, &M.req[i]) != MPI_SUCCESS)
        return -1;
    return i;
}

static int irecv(dnic_comm *c, void *buf, size_t n, int from, int tag)
{
    (void)c;
    int i = new_request();
    if (i < 0 || n > (size_t)1 << 30 ||
        MPI_Irecv(buf, (int)n, MPI_BYTE, from, tag, M.comm, &M.req[i]) != MPI_SUCCESS)
        return -1;
    return i;
}

static int test(dnic_comm *c, int i)
{
    (void)c;
    if (i < 0 || i >= M.nreq)
        return -1;
    if (M.delay > 0) { /* a rank waiting for a message still lets its own held-back sends go */
        double now = now_s();
        for (int j = 0; j < M.nreq; j++)
            post_due(j, now);
        if (M.later[i].due > 0)
            return 0;
    }
    if (M.req[i] == MPI_REQUEST_NULL)
        return 1;
    int done = 0;
    if (MPI_Test(&M.req[i], &done, MPI_STATUS_IGNORE) != MPI_SUCCESS)
        return -1;
    return done ? 1 : 0;
}

static void progress(dnic_comm *c)
{
    (void)c;
    if (M.delay > 0) {
        double now = now_s();
        for (int i = 0; i < M.nreq; i++)
            post_due(i, now);
    }
    int flag;
    MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, M.comm, &flag, MPI_STATUS_IGNORE);
}

static void cancel_all(dnic_comm *c)
{
    (void)c;
    for (int i = 0; i < M.nreq; i++)
        M.later[i].due = 0;
    for (int i = 0; i < M.nreq; i++)
        if (M.req[i] != MPI_REQUEST_NULL) {
            MPI_Cancel(&M.req[i]);
            MPI_Request_free(&M.req[i]);
        }
}

static void job_abort(dnic_comm *c, const char *why, int status)
{
    say(c, why);
    MPI_Abort(MPI_COMM_WORLD, status);
    _exit(status);
}

static void wait_or_abort(MPI_Request *r, const char *what);

/* The gradients of every replica gathered in replica order, then added in that order: the sum
 * does not depend on which replica is faster, and every replica gets the same bits. */
static void replica_sum(dnic_comm *c, void *buf, size_t n, bool f64)
{
    size_t es = f64 ? sizeof(double) : sizeof(float), bytes = n * es, R = (size_t)c->replicas;
    if (bytes > (size_t)1 << 30) {
        job_abort(c, "dnic: a gradient of more than 1 GiB cannot be summed over the replicas\n", 2);
    }
    if (M.nsums < bytes * R) {
        free(M.sums);
        M.sums = malloc(bytes * R);
        M.nsums = M.sums ? bytes * R : 0;
        if (!M.sums)
            job_abort(c, "dnic: out of memory summing gradients over the replicas\n", 2);
    }
    MPI_Request r;
    if (MPI_Iallgather(buf, (int)bytes, MPI_BYTE, M.sums, (int)bytes, MPI_BYTE, M.rcomm, &r) != MPI_SUCCESS)
        job_abort(c, "dnic: summing gradients over the replicas failed (MPI_Iallgather)\n", 2);
    wait_or_abort(&r, "summing gradients over the replicas");
    if (f64) {
        const double *g = M.sums;
        double *out = buf;
        for (size_t i = 0; i < n; i++) {
            double v = g[i];
            for (size_t q = 1; q < R; q++)
                v += g[q * n + i];
            out[i] = v;
        }
    } else {
        const float *g = M.sums;
        float *out = buf;
        for (size_t i = 0; i < n; i++) {
            float v = g[i];
            for (size_t q = 1; q < R; q++)
                v += g[q * n + i];
            out[i] = v;
        }
    }
}

static void replica_gather(dnic_comm *c, const void *mine, size_t n, void *all)
{
    if (n > (size_t)1 << 30)
        job_abort(c, "dnic: a replica's state of more than 1 GiB cannot be gathered for a checkpoint\n", 2);
    MPI_Request r;
    if (MPI_Igather(mine, (int)n, MPI_BYTE, all, (int)n, MPI_BYTE, 0, M.rcomm, &r) != MPI_SUCCESS)
        job_abort(c, "dnic: gathering the replicas' state failed (MPI_Igather)\n", 2);
    wait_or_abort(&r, "gathering the replicas' state for a checkpoint");
}

static bool replica_any(dnic_comm *c, bool mine)
{
    int in = mine, out = 0;
    MPI_Request r;
    if (MPI_Iallreduce(&in, &out, 1, MPI_INT, MPI_MAX, M.rcomm, &r) != MPI_SUCCESS)
        job_abort(c, "dnic: the replicas could not agree (MPI_Iallreduce)\n", 2);
    wait_or_abort(&r, "agreeing with the other replicas whether to stop");
    return out != 0;
}

bool dnic_mpi_replicate(int R)
{
    int w = M.c.world_rank, W;
    MPI_Comm_size(M.world, &W);
    if (R <= 1)
        return true;
    int K = W / R;
    if (MPI_Comm_split(M.world, w / K, w % K, &M.comm) != MPI_SUCCESS ||
        MPI_Comm_split(M.world, w % K, w / K, &M.rcomm) != MPI_SUCCESS) {
        fprintf(stderr, "dnic: error: MPI_Comm_split failed\n");
        return false;
    }
    MPI_Comm_set_errhandler(M.comm, MPI_ERRORS_RETURN);
    MPI_Comm_set_errhandler(M.rcomm, MPI_ERRORS_RETURN);
    M.c.rank = w % K;
    M.c.size = K;
    M.c.replica = w / K;
    M.c.replicas = R;
    M.c.sum = replica_sum;
    M.c.gather = replica_gather;
    M.c.any = replica_any;
    return true;
}

bool dnic_mpi_start(int *argc, char ***argv)
{
    int provided;
    if (MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS) {
        fprintf(stderr, "dnic: error: MPI_Init failed\n");
        return false;
    }
    MPI_Comm_dup(MPI_COMM_WORLD, &M.world);
    MPI_Comm_set_errhandler(M.world, MPI_ERRORS_RETURN);
    M.comm = M.world;
    M.rcomm = MPI_COMM_NULL;
    MPI_Comm_rank(M.world, &M.c.rank);
    MPI_Comm_size(M.world, &M.c.size);
    M.c.world_rank = M.c.rank;
    M.c.replicas = 1;
    const char *t = getenv("DNIC_MPI_TIMEOUT");
    M.c.timeout = t && atof(t) > 0 ? atof(t) : 300;
    const char *delay = getenv("DNIC_MPI_DELAY_US");
    M.delay = delay && atof(delay) > 0 ? atof(delay) * 1e-6 : 0;
    M.c.isend = isend;
    M.c.irecv = irecv;
    M.c.test = test;
    M.c.cancel_all = cancel_all;
    M.c.abort = job_abort;
    M.c.say = say;
    M.c.progress = progress;
    M.started = true;
    if (M.c.rank > 0) { /* one rank prints: the others' output goes nowhere, their errors aside */
        fflush(stdout);
        fflush(stderr);
        FILE *kept = tmpfile();
        int null = open("/dev/null", O_WRONLY);
        M.real_stderr = dup(2);
        if (kept && null >= 0 && M.real_stderr >= 0) {
            M.kept = dup(fileno(kept));
            dup2(fileno(kept), 2);
            dup2(null, 1);
        } else {
            M.real_stderr = 2;
        }
        if (null >= 0)
            close(null);
        if (kept)
            fclose(kept);
    }
    return true;
}

dnic_comm *dnic_mpi_comm(void)
{
    return M.started ? &M.c : NULL;
}

bool dnic_mpi_agreed(void)
{
    return M.agreed;
}

/* Waits for request i, or stops the job after the timeout. */
static void wait_or_abort(MPI_Request *r, const char *what)
{
    double start = now_s();
    for (int spin = 0;; spin++) {
        int done = 0;
        MPI_Test(r, &done, MPI_STATUS_IGNORE);
        if (done)
            return;
        if (now_s() - start > M.c.timeout) {
            char why[256];
            snprintf(why, sizeof why, "dnic: rank %d: %s: not every rank got there within %g s (DNIC_MPI_TIMEOUT); "
                     "stopping the job\n", M.c.rank, what, M.c.timeout);
            job_abort(&M.c, why, 2);
        }
        if (spin > 1000)
            nanosleep(&(struct timespec){0, 200000}, NULL);
    }
}

bool dnic_mpi_agree(bool ok, int rc, int *status)
{
    *status = 0;
    if (!M.started || M.agreed)
        return true;
    M.agreed = true;
    int mine = ok ? M.c.size : M.c.rank, bad;
    MPI_Request r;
    MPI_Iallreduce(&mine, &bad, 1, MPI_INT, MPI_MIN, M.world, &r);
    wait_or_abort(&r, "before training");
    if (bad == M.c.size)
        return true;
    /* the first rank that failed tells rank 0 its status and what it printed */
    enum { TAG = 32000 };
    if (bad != 0 && M.c.rank == bad) {
        char text[TEXT_MAX + 16];
        ssize_t n = M.kept >= 0 ? pread(M.kept, text + sizeof(int), TEXT_MAX, 0) : 0;
        memcpy(text, &rc, sizeof(int));
        MPI_Send(text, (int)sizeof(int) + (int)(n > 0 ? n : 0), MPI_BYTE, 0, TAG, M.world);
    } else if (bad != 0 && M.c.rank == 0) {
        char text[TEXT_MAX + 16];
        MPI_Status st;
        int n = 0;
        MPI_Recv(text, (int)sizeof text - 1, MPI_BYTE, bad, TAG, M.world, &st);
        MPI_Get_count(&st, MPI_BYTE, &n);
        memcpy(status, text, sizeof(int));
        text[n > (int)sizeof(int) ? n : (int)sizeof(int)] = '\0';
        for (char *l = text + sizeof(int), *e; *l; l = e + 1) {
            e = strchr(l, '\n');
            fprintf(stderr, "dnic: rank %d: %.*s\n", bad, e ? (int)(e - l) : (int)strlen(l), l);
            if (!e)
                break;
        }
        if (n <= (int)sizeof(int))
            fprintf(stderr, "dnic: rank %d failed before training (status %d)\n", bad, *status);
        if (*status == 0)
            *status = 1;
    } else if (M.c.rank == 0) {
        *status = rc;
    }
    return false;
}

void dnic_mpi_finish(void)
{
    if (!M.started)
        return;
    cancel_all(&M.c);
    free(M.req);
    M.req = NULL;
    free(M.later);
    M.later = NULL;
    M.nreq = 0;
    if (M.comm != M.world)
        MPI_Comm_free(&M.comm);
    if (M.rcomm != MPI_COMM_NULL)
        MPI_Comm_free(&M.rcomm);
    MPI_Comm_free(&M.world);
    free(M.sums);
    M.sums = NULL;
    MPI_Finalize();
    M.started = false;
}
