/* The dnic command: `dnic plot ...` overlays logged runs; anything else is a model file and
 * options (options.c), for the pipeline (driver.c) or, with --vary, several runs of it; under
 * mpirun, every rank runs it (distribute.c). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

/* dnic plot [--x step|time] A.csv [B.csv ...] -o F.svg: overlays the curves of several runs'
 * logs, against their steps or their wall time. */
static int plot_command(int argc, char **argv)
{
    const char **csv = calloc((size_t)argc + 1, sizeof *csv);
    const char *out = NULL;
    int n = 0, rc = DNIC_EXIT_USER;
    dnic_plot_xaxis x = DNIC_PLOT_X_STEP;
    if (!csv)
        return DNIC_EXIT_INTERNAL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs("usage: dnic plot [--x step|time] LOG.csv [LOG.csv ...] -o CHART.svg\n"
                  "\n"
                  "Overlays the curves of several runs' --log files in one SVG chart.\n"
                  "\n"
                  "  -o CHART.svg         the chart to write\n"
                  "  --x step|time        the x axis: steps (the default) or wall time since\n"
                  "                       training began (the logs' elapsed_s)\n"
                  "  -h, --help           show this help\n",
                  stdout);
            rc = DNIC_EXIT_OK;
            goto out;
        }
        if (!strcmp(argv[i], "-o")) {
            if (i + 1 >= argc) {
                rc = cli_bad_flag("%s needs a value", "-o");
                goto out;
            }
            out = argv[++i];
        } else if (!strcmp(argv[i], "--x")) {
            if (i + 1 >= argc || (strcmp(argv[i + 1], "step") && strcmp(argv[i + 1], "time"))) {
                rc = cli_bad_flag("%s", "--x is step or time");
                goto out;
            }
            x = !strcmp(argv[++i], "time") ? DNIC_PLOT_X_TIME : DNIC_PLOT_X_STEP;
        } else if (argv[i][0] == '-') {
            rc = cli_bad_flag("unknown option '%s' for dnic plot (dnic plot LOG.csv... -o CHART.svg)", argv[i]);
            goto out;
        } else {
            csv[n++] = argv[i];
        }
    }
    if (!n || !out) {
        rc = cli_bad_flag("%s", "dnic plot LOG.csv [LOG.csv ...] -o CHART.svg");
        goto out;
    }
    rc = dnic_plot_x(csv, NULL, n, out, x) == 0 ? DNIC_EXIT_OK : DNIC_EXIT_USER;
out:
    free(csv);
    return rc;
}

int main(int argc, char **argv)
{
    /* for tests/e2e/crash.sh: die by SIGKILL at a chosen moment of a chosen file write */
    const char *kill_at = getenv("DNIC_TEST_KILL_AT");
    long commit;
    int stage;
    if (kill_at && sscanf(kill_at, "%ld:%d", &commit, &stage) == 2)
        dnic_atomic_test_kill(commit, stage);
    if (argc >= 2 && !strcmp(argv[1], "plot"))
        return plot_command(argc - 2, argv + 2);
    /* under mpirun, MPI starts before anything is printed: only rank 0 prints (cli/distribute.c) */
    if (!cli_mpi_begin(&argc, &argv, false))
        return DNIC_EXIT_INTERNAL;
    dnic_options o;
    int rc;
    if (cli_parse_options(argc, argv, &o, &rc)) {
        if (o.schedule == DNIC_SCHED_MPI && !cli_mpi_begin(&argc, &argv, true))
            rc = DNIC_EXIT_USER;
        else if (cli_mpi_comm() && o.nvary)
            rc = cli_bad_flag("%s", "--vary runs several models one after another: not under mpirun");
        else if (cli_mpi_rank() > 0 && o.action != DNIC_ACTION_RUN)
            rc = DNIC_EXIT_OK; /* rank 0 checks, dumps or writes the object */
        else
            rc = o.nvary ? dnic_vary(&o) : dnic_compile(&o);
    }
    free(o.overrides);
    return cli_mpi_end(rc);
}
