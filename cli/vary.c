/* --vary KEY=V1,V2,...: trains one variant per value (each an extra --set), then prints a
 * table comparing them (final loss, test accuracy, time) and, with --plot, one chart. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"

/* The last row of a --log file: its loss, test accuracy (NaN when absent) and elapsed time. */
static bool last_row(const char *path, double *loss, double *acc, double *secs)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    char header[4096], line[4096], last[4096] = "";
    bool ok = fgets(header, sizeof header, f) != NULL;
    while (ok && fgets(line, sizeof line, f))
        strcpy(last, line);
    fclose(f);
    if (!ok || !last[0])
        return false;
    *acc = __builtin_nan("");
    char *hs = header, *vs = last, *hsave = NULL, *vsave = NULL;
    for (char *h = strtok_r(hs, ",\n", &hsave), *v = strtok_r(vs, ",\n", &vsave); h && v;
         h = strtok_r(NULL, ",\n", &hsave), v = strtok_r(NULL, ",\n", &vsave)) {
        if (!strcmp(h, "loss"))
            *loss = strtod(v, NULL);
        else if (!strcmp(h, "test_accuracy"))
            *acc = strtod(v, NULL);
        else if (!strcmp(h, "elapsed_s"))
            *secs = strtod(v, NULL);
    }
    return true;
}

int dnic_vary(const dnic_options *base, const char *spec)
{
    const char *eq = strchr(spec, '=');
    if (!eq || eq == spec || !eq[1]) {
        fprintf(stderr, "dnic: error: --vary is KEY=V1,V2,..., e.g. --vary sg.h1.input=output,labels\n");
        return DNIC_EXIT_USER;
    }
    char *values = strdup(eq + 1);
    int n = 1;
    for (const char *c = values; *c; c++)
        n += *c == ',';
    const char **sets = calloc((size_t)base->noverrides + 2, sizeof *sets);
    char **logs = calloc((size_t)n, sizeof *logs), **labels = calloc((size_t)n, sizeof *labels);
    int *rcs = calloc((size_t)n, sizeof *rcs);
    if (!values || !sets || !logs || !labels || !rcs) {
        free(values);
        free(sets);
        free(logs);
        free(labels);
        free(rcs);
        return DNIC_EXIT_INTERNAL;
    }
    memcpy(sets, base->overrides, (size_t)base->noverrides * sizeof *sets);
    int rc = DNIC_EXIT_OK, i = 0;
    char *save = NULL;
    for (char *v = strtok_r(values, ",", &save); v; v = strtok_r(NULL, ",", &save), i++) {
        size_t len = (size_t)(eq - spec) + strlen(v) + 2;
        labels[i] = malloc(len);
        logs[i] = malloc(64);
        if (!labels[i] || !logs[i]) {
            rc = DNIC_EXIT_INTERNAL;
            break;
        }
        snprintf(labels[i], len, "%.*s=%s", (int)(eq - spec), spec, v);
        snprintf(logs[i], 64, "/tmp/dnic-vary-XXXXXX");
        int fd = mkstemp(logs[i]);
        if (fd < 0) {
            rc = DNIC_EXIT_INTERNAL;
            break;
        }
        close(fd);
        printf("== %s\n", labels[i]);
        fflush(stdout);
        dnic_options o = *base;
        sets[base->noverrides] = labels[i];
        o.overrides = sets;
        o.noverrides = base->noverrides + 1;
        o.vary = NULL;
        o.log_csv = logs[i];
        o.plot_svg = NULL;
        rcs[i] = dnic_compile(&o);
        if (rcs[i] != DNIC_EXIT_OK && rc == DNIC_EXIT_OK)
            rc = rcs[i];
    }
    n = i;
    printf("\n%-40s %16s %14s %10s\n", "variant", "final loss", "test accuracy", "seconds");
    for (i = 0; i < n; i++) {
        double loss = 0, acc = 0, secs = 0;
        if (rcs[i] == DNIC_EXIT_OK && last_row(logs[i], &loss, &acc, &secs)) {
            char a[32];
            if (acc == acc)
                snprintf(a, sizeof a, "%.2f%%", 100 * acc);
            else
                snprintf(a, sizeof a, "-");
            printf("%-40s %16.10g %14s %10.2f\n", labels[i], loss, a, secs);
        } else {
            printf("%-40s %16s %14s %10s\n", labels[i], "failed", "-", "-");
        }
    }
    if (base->plot_svg && rc == DNIC_EXIT_OK &&
        dnic_plot_x((const char *const *)logs, (const char *const *)labels, n, base->plot_svg,
                    base->plot_time ? DNIC_PLOT_X_TIME : DNIC_PLOT_X_STEP) != 0)
        rc = DNIC_EXIT_USER;
    for (i = 0; i < n; i++) {
        if (logs[i])
            unlink(logs[i]);
        free(logs[i]);
        free(labels[i]);
    }
    free(values);
    free(sets);
    free(logs);
    free(labels);
    free(rcs);
    return rc;
}
