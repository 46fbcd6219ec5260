/* The run's CSV log (--log): a header naming the columns, one row per report line, written to
 * a temporary file renamed into place at the end; --plot draws its chart from this log. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli.h"
#include "plot.h"

/* Opens a temporary for the CSV log and writes its header. */
static FILE *open_log(dnic_diag *d, const dnic_model *m, const char *path, int nsg, bool val, bool test,
                      dnic_atomic_file *out)
{
    char err[512];
    if (dnic_atomic_open(out, path, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        return NULL;
    }
    FILE *f = out->f;
    fprintf(f, "iter,step,loss");
    for (int s = 0; s < nsg; s++)
        fprintf(f, ",%s.sg_loss", m->sgs[s].name);
    if (m->train.probe)
        cli_probe_log_header(f, m);
    fprintf(f, "%s%s,elapsed_s\n", val ? ",val_loss,val_accuracy" : "", test ? ",test_loss,test_accuracy" : "");
    return f;
}

/* Moves the log into place (keep = false removes it). */
static bool close_log(dnic_diag *d, dnic_atomic_file *out, bool keep)
{
    char err[512];
    if (!keep) {
        dnic_atomic_discard(out);
        return false;
    }
    if (dnic_atomic_commit(out, err, sizeof err) == DNIC_OK)
        return true;
    dnic_error(d, (dnic_span){0}, "%s", err);
    return false;
}

bool cli_log_open(cli_log *l, dnic_diag *d, const dnic_model *m, int nsg, const char *log_csv, const char *plot_svg,
                  bool val, bool test)
{
    *l = (cli_log){.path = log_csv, .val = val, .test = test, .m = m};
    /* --plot draws from the log: a temporary one when no --log was asked for */
    if (plot_svg && !l->path) {
        strcpy(l->plot_tmp, "/tmp/dnic-plot-XXXXXX.csv");
        int fd = mkstemps(l->plot_tmp, 4);
        if (fd < 0) {
            dnic_error(d, (dnic_span){0}, "cannot make a temporary log for --plot: %s", strerror(errno));
            return false;
        }
        close(fd);
        l->path = l->plot_tmp;
    }
    return !l->path || (l->f = open_log(d, m, l->path, nsg, val, test, &l->out)) != NULL;
}

void cli_log_row(cli_log *l, const dnic_report *r)
{
    l->rows++;
    if (!l->f)
        return;
    fprintf(l->f, "%lld,%lld,%.17g", r->iter, r->step, r->loss);
    for (int s = 0; s < r->nsg; s++)
        fprintf(l->f, ",%.17g", r->sg_loss[s]);
    if (r->probe)
        cli_probe_log_row(l->f, l->m, r);
    if (l->val)
        fprintf(l->f, ",%.17g,%.17g", r->val_loss, r->val_accuracy);
    if (l->test)
        fprintf(l->f, ",%.17g,%.17g", r->test_loss, r->test_accuracy);
    fprintf(l->f, ",%.6f\n", r->elapsed);
}

bool cli_log_finish(cli_log *l, dnic_diag *d, const dnic_model *m, const char *plot_svg, bool plot_time,
                    dnic_status status)
{
    /* the log of a diverged or interrupted run is kept: it shows what happened up to there */
    bool logged = close_log(d, &l->out, status == DNIC_OK || status == DNIC_ERR_NONFINITE || status == DNIC_ERR_INTERRUPTED);
    l->f = NULL;
    bool plotted = !plot_svg || !logged;
    if (!plotted && l->rows == 0)
        dnic_error(d, (dnic_span){0}, "--plot: the run printed no report line to draw (report_every = %lld)",
                   m->train.report_every);
    else if (!plotted)
        plotted = dnic_plot_x(&l->path, (const char *const[]){m->name}, 1, plot_svg,
                              plot_time ? DNIC_PLOT_X_TIME : DNIC_PLOT_X_STEP) == 0;
    if (l->path == l->plot_tmp)
        unlink(l->plot_tmp);
    return logged && plotted;
}
