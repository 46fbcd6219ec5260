/* The dnic command: `dnic plot ...` overlays logged runs; anything else is a model file and
 * options (options.c), for the pipeline (driver.c) or, with --vary, several runs of it. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "plot.h"

/* dnic plot A.csv [B.csv ...] -o F.svg: overlays the curves of several runs' logs. */
static int plot_command(int argc, char **argv)
{
    const char **csv = calloc((size_t)argc + 1, sizeof *csv);
    const char *out = NULL;
    int n = 0, rc = DNIC_EXIT_USER;
    if (!csv)
        return DNIC_EXIT_INTERNAL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs("usage: dnic plot LOG.csv [LOG.csv ...] -o CHART.svg\n"
                  "\n"
                  "Overlays the curves of several runs' --log files in one SVG chart.\n"
                  "\n"
                  "  -o CHART.svg         the chart to write\n"
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
    rc = dnic_plot(csv, NULL, n, out) == 0 ? DNIC_EXIT_OK : DNIC_EXIT_USER;
out:
    free(csv);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && !strcmp(argv[1], "plot"))
        return plot_command(argc - 2, argv + 2);
    dnic_options o;
    int rc;
    if (cli_parse_options(argc, argv, &o, &rc))
        rc = o.nvary ? dnic_vary(&o) : dnic_compile(&o);
    free(o.overrides);
    return rc;
}
