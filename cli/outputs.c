/* The files a run writes besides its log: weights (--save-init, --save-weights), the data as
 * dnic sees it (--export-data) and predictions (--save-predictions), all safetensors; and the
 * check, before anything runs, that every output's directory can be written. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "safetensors.h"

bool cli_writable(dnic_diag *d, const char *path)
{
    if (!path)
        return true;
    /* a real try (a temporary beside the file, removed at once), not access(): root passes
     * access() on a read-only or full file system, where the write at the end would fail */
    char err[512];
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) { /* the rename at the end would fail */
        dnic_error(d, (dnic_span){0}, "cannot write '%s': Is a directory", path);
        return false;
    }
    dnic_atomic_file a;
    if (dnic_atomic_open(&a, path, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        return false;
    }
    dnic_atomic_discard(&a);
    return true;
}

bool cli_outputs_writable(dnic_diag *d, const dnic_options *o)
{
    /* & rather than &&: every unwritable file is reported */
    if (!(cli_writable(d, o->emit_llvm) & cli_writable(d, o->emit_asm)))
        return false;
    return o->action != DNIC_ACTION_RUN ||
           (cli_writable(d, o->save_weights) & cli_writable(d, o->save_init) & cli_writable(d, o->export_data) &
            cli_writable(d, o->log_csv) & cli_writable(d, o->save_predictions) & cli_writable(d, o->plot_svg) & cli_writable(d, o->save_best) &
            cli_writable(d, o->checkpoint));
}

bool cli_export_data(dnic_diag *d, const dnic_dataset *ds, const char *path)
{
    /* x as the model sees it: pixels kept as bytes are scaled here as a batch would be */
    void *x = ds->x;
    if (ds->x_bytes) {
        x = malloc((size_t)ds->n * (size_t)ds->inputs * dnic_dtype_size(ds->dtype) + 1);
        if (!x) {
            dnic_error(d, (dnic_span){0}, "out of memory exporting %d rows", ds->n);
            return false;
        }
        dnic_dataset_rows(ds, x, NULL, 0, ds->n);
    }
    dnic_st_tensor t[2] = {
        {"x", ds->dtype, 2, {ds->n, ds->inputs}, x},
        {"y", ds->dtype, 2, {ds->n, ds->labels}, ds->y},
    };
    char err[512];
    bool ok = dnic_st_write(path, t, 2, err, sizeof err) == DNIC_OK;
    if (!ok)
        dnic_error(d, (dnic_span){0}, "%s", err);
    if (x != ds->x)
        free(x);
    return ok;
}

bool cli_save_predictions(dnic_diag *d, dnic_program *p, const dnic_dataset *ds, const char *path)
{
    size_t es = dnic_dtype_size(ds->dtype), out = (size_t)p->bufs[p->out].cols;
    void *xpad = calloc((size_t)p->batch * (size_t)ds->inputs, es), *y = calloc((size_t)ds->n * out, es);
    bool ok = xpad && y;
    if (ok) {
        dnic_program_predict_set(p, p->ptrs, xpad, ds, y);
        dnic_st_tensor t = {"y_pred", ds->dtype, 2, {ds->n, (int64_t)out}, y};
        char err[512];
        ok = dnic_st_write(path, &t, 1, err, sizeof err) == DNIC_OK;
        if (!ok)
            dnic_error(d, (dnic_span){0}, "%s", err);
    } else {
        dnic_error(d, (dnic_span){0}, "out of memory predicting %d rows", ds->n);
    }
    free(xpad);
    free(y);
    return ok;
}

bool cli_save_weights(dnic_diag *d, const dnic_program *p, const char *path)
{
    char err[512];
    if (dnic_program_save(p, path, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        return false;
    }
    return true;
}
