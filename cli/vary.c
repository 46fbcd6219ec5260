/* --vary KEY=V1,V2,... (repeated: a grid, every combination of the values): trains one variant
 * per point (each value an extra --set), then prints a table comparing them (final loss, test
 * accuracy, time) and, with --plot, one chart.  A failed variant is reported and the others
 * run; with --log F each variant's log is F with the variant's name before the extension. */
#include <ctype.h>
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

enum { MAX_VARIANTS = 256 };

/* One --vary: its key and its values, split on the commas that are outside [...] and "...". */
typedef struct axis {
    char *text;        /* a copy of the spec, cut into the values */
    const char *key;
    size_t keylen;
    char **values;
    int n;
} axis;

static bool axis_split(axis *ax, const char *spec)
{
    const char *eq = strchr(spec, '=');
    ax->key = spec;
    ax->keylen = (size_t)(eq - spec);
    ax->text = strdup(eq + 1);
    ax->values = calloc(strlen(eq + 1) + 1, sizeof *ax->values);
    if (!ax->text || !ax->values)
        return false;
    int depth = 0;
    bool quoted = false;
    ax->values[ax->n++] = ax->text;
    for (char *c = ax->text; *c; c++) {
        if (*c == '"')
            quoted = !quoted;
        else if (!quoted && *c == '[')
            depth++;
        else if (!quoted && *c == ']' && depth > 0)
            depth--;
        else if (!quoted && !depth && *c == ',') {
            *c = '\0';
            ax->values[ax->n++] = c + 1;
        }
    }
    return true;
}

/* --log F for the variant called `label`: F with the label (its unsafe characters as '_')
 * before F's extension. */
static char *variant_log(const char *log, const char *label)
{
    const char *slash = strrchr(log, '/'), *dot = strrchr(log, '.');
    size_t stem = dot && (!slash || dot > slash) ? (size_t)(dot - log) : strlen(log);
    size_t len = strlen(log) + strlen(label) + 2;
    char *p = malloc(len);
    if (!p)
        return NULL;
    int at = snprintf(p, len, "%.*s-", (int)stem, log);
    for (const char *c = label; *c; c++)
        p[at++] = (isalnum((unsigned char)*c) || strchr("=.+-", *c)) ? *c : '_';
    snprintf(p + at, len - (size_t)at, "%s", log + stem);
    return p;
}

int dnic_vary(const dnic_options *base)
{
    axis axes[8] = {{0}};
    int nax = base->nvary, n = 1, rc = DNIC_EXIT_OK;
    for (int k = 0; k < nax; k++) {
        if (!axis_split(&axes[k], base->vary[k])) {
            rc = DNIC_EXIT_INTERNAL;
            goto free_axes;
        }
        n *= axes[k].n;
        if (n > MAX_VARIANTS) {
            fprintf(stderr, "dnic: error: the --vary options make more than %d variants\n", MAX_VARIANTS);
            rc = DNIC_EXIT_USER;
            goto free_axes;
        }
    }
    const char **sets = calloc((size_t)base->noverrides + (size_t)nax + 1, sizeof *sets);
    char **logs = calloc((size_t)n, sizeof *logs), **labels = calloc((size_t)n, sizeof *labels);
    char **assigns = calloc((size_t)n * (size_t)nax, sizeof *assigns);
    int *rcs = calloc((size_t)n, sizeof *rcs);
    bool *tmp = calloc((size_t)n, sizeof *tmp);
    if (!sets || !logs || !labels || !assigns || !rcs || !tmp) {
        rc = DNIC_EXIT_INTERNAL;
        goto out;
    }
    memcpy(sets, base->overrides, (size_t)base->noverrides * sizeof *sets);
    int failed = 0;
    for (int i = 0; i < n; i++) {
        /* variant i: the first axis varies slowest */
        size_t len = 1;
        for (int k = 0, rest = i, stride = n; k < nax; k++) {
            stride /= axes[k].n;
            const char *v = axes[k].values[rest / stride];
            rest %= stride;
            size_t alen = axes[k].keylen + strlen(v) + 2;
            char **as = &assigns[i * nax + k];
            if (!(*as = malloc(alen))) {
                rc = DNIC_EXIT_INTERNAL;
                goto out;
            }
            snprintf(*as, alen, "%.*s=%s", (int)axes[k].keylen, axes[k].key, v);
            sets[base->noverrides + k] = *as;
            len += alen;
        }
        if (!(labels[i] = malloc(len))) {
            rc = DNIC_EXIT_INTERNAL;
            goto out;
        }
        labels[i][0] = '\0';
        for (int k = 0; k < nax; k++)
            strcat(strcat(labels[i], k ? " " : ""), assigns[i * nax + k]);
        if (base->log_csv) {
            logs[i] = variant_log(base->log_csv, labels[i]);
        } else if ((logs[i] = malloc(64))) {
            snprintf(logs[i], 64, "/tmp/dnic-vary-XXXXXX");
            int fd = mkstemp(logs[i]);
            if (fd < 0) {
                rc = DNIC_EXIT_INTERNAL;
                goto out;
            }
            close(fd);
            tmp[i] = true;
        }
        if (!logs[i]) {
            rc = DNIC_EXIT_INTERNAL;
            goto out;
        }
        printf("== %s\n", labels[i]);
        fflush(stdout);
        dnic_options o = *base;
        o.overrides = sets;
        o.noverrides = base->noverrides + nax;
        o.nvary = 0;
        o.log_csv = logs[i];
        o.plot_svg = NULL;
        rcs[i] = dnic_compile(&o);
        fflush(stdout);
        if (rcs[i] != DNIC_EXIT_OK) {
            fprintf(stderr, "dnic: variant %s failed; going on with the others\n", labels[i]);
            failed++;
            if (rc == DNIC_EXIT_OK)
                rc = rcs[i];
        }
    }
    printf("\n%-40s %16s %14s %10s\n", "variant", "final loss", "test accuracy", "seconds");
    const char **plot_logs = calloc((size_t)n, sizeof *plot_logs), **plot_labels = calloc((size_t)n, sizeof *plot_labels);
    int nplot = 0;
    for (int i = 0; i < n; i++) {
        double loss = 0, acc = 0, secs = 0;
        if (rcs[i] == DNIC_EXIT_OK && last_row(logs[i], &loss, &acc, &secs)) {
            char a[32];
            if (acc == acc)
                snprintf(a, sizeof a, "%.2f%%", 100 * acc);
            else
                snprintf(a, sizeof a, "-");
            printf("%-40s %16.10g %14s %10.2f\n", labels[i], loss, a, secs);
            if (plot_logs && plot_labels) {
                plot_logs[nplot] = logs[i];
                plot_labels[nplot++] = labels[i];
            }
        } else {
            printf("%-40s %16s %14s %10s\n", labels[i], "failed", "-", "-");
        }
    }
    fflush(stdout);
    if (base->plot_svg && nplot > 0 &&
        dnic_plot_x(plot_logs, plot_labels, nplot, base->plot_svg, base->plot_time ? DNIC_PLOT_X_TIME : DNIC_PLOT_X_STEP) != 0 &&
        rc == DNIC_EXIT_OK)
        rc = DNIC_EXIT_USER;
    free(plot_logs);
    free(plot_labels);
    if (failed)
        fprintf(stderr, "dnic: error: %d of %d variants failed\n", failed, n);
out:
    for (int i = 0; i < n && logs && labels; i++) {
        if (logs[i] && tmp && tmp[i])
            unlink(logs[i]);
        free(logs[i]);
        free(labels[i]);
        for (int k = 0; assigns && k < nax; k++)
            free(assigns[i * nax + k]);
    }
    free(sets);
    free(logs);
    free(labels);
    free(assigns);
    free(rcs);
    free(tmp);
free_axes:
    for (int k = 0; k < nax; k++) {
        free(axes[k].text);
        free(axes[k].values);
    }
    return rc;
}
