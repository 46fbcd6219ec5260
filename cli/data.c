/* The data a run trains on: the model's built-in, IDX or CSV data, cut to its limits, with
 * the validation examples held out; drawn before the weights, as the seeds draw them. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "binadd.h"
#include "copytask.h"
#include "cli.h"
#include "dataset_files.h"

bool cli_check_data_widths(dnic_diag *d, const dnic_model *m)
{
    const dnic_data_spec *s = &m->data;
    if ((s->kind != DNIC_DATA_IDX && s->kind != DNIC_DATA_CSV) || s->inputs <= 0)
        return true;
    const char *files[2] = {s->train_x, s->test_x};
    for (int i = 0; i < 2; i++) {
        if (!files[i])
            continue;
        if (s->kind == DNIC_DATA_IDX) {
            char err[512];
            size_t w = dnic_idx_width(files[i], err, sizeof err);
            if (!w && err[0]) { /* --check reports a broken header as --run would */
                dnic_error(d, (dnic_span){0}, "%s", err);
                return false;
            }
            if (w && w != (size_t)s->inputs) {
                dnic_error(d, s->inputs_span, "inputs = %d, but %s has %zu inputs per example",
                           s->inputs, files[i], w);
                return false;
            }
        } else {
            size_t cols = dnic_csv_columns(files[i]);
            if (cols >= 2 && cols - 1 != (size_t)s->inputs) {
                dnic_error(d, s->inputs_span, "inputs = %d, but %s has %zu inputs per example (columns besides the label)",
                           s->inputs, files[i], cols - 1);
                return false;
            }
        }
    }
    return true;
}

/* classes = [...]: keeps the examples whose label is one of the classes (in file order), each
 * relabelled with its class's position in the list, one-hot over the list with one_hot.  ds
 * was loaded with one class number per example; its inputs are moved up in place (no copy of
 * the data set), its labels rewritten in a new array. */
static bool select_classes(dnic_diag *d, const dnic_data_spec *s, const char *file, dnic_dataset *ds)
{
    size_t es = dnic_dtype_size(ds->dtype), row = (size_t)ds->inputs * dnic_dataset_x_size(ds);
    int w = s->one_hot ? s->one_hot : 1, n = 0;
    char *y = calloc((size_t)ds->n * (size_t)w + 1, es);
    if (!y) {
        dnic_error(d, (dnic_span){0}, "out of memory selecting the classes of %s", file);
        return false;
    }
    for (int i = 0; i < ds->n; i++) {
        const char *lab = (const char *)ds->y + (size_t)i * es;
        double c = ds->dtype == DNIC_F64 ? *(const double *)lab : (double)*(const float *)lab;
        int k = 0;
        while (k < s->nclasses && s->classes[k] != c)
            k++;
        if (k == s->nclasses)
            continue;
        if (n != i)
            memmove((char *)ds->x + (size_t)n * row, (const char *)ds->x + (size_t)i * row, row);
        size_t at = (size_t)n * (size_t)w + (size_t)(s->one_hot ? k : 0);
        double v = s->one_hot ? 1 : k;
        if (ds->dtype == DNIC_F64)
            ((double *)y)[at] = v;
        else
            ((float *)y)[at] = (float)v;
        n++;
    }
    free(ds->y);
    ds->y = y;
    ds->labels = w;
    ds->n = n;
    if (n == 0) {
        dnic_error(d, (dnic_span){0}, "%s: no example is of the classes the model lists", file);
        return false;
    }
    return true;
}

/* n copy or repeat_copy sequences from r into ds. */
static bool copy_set(dnic_diag *d, const dnic_model *m, dnic_rng *r, int n, dnic_dataset *ds)
{
    const dnic_data_spec *s = &m->data;
    size_t nx = (size_t)n * (size_t)s->inputs, ny = (size_t)n * (size_t)s->labels;
    double *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
    bool ok = x && y && dnic_copy_generate(r, s->bits, s->length, s->repeats, n, x, y) == 0 &&
              dnic_dataset_from_f64(ds, m->train.dtype, n, s->inputs, s->labels, x, y) == DNIC_OK;
    if (!ok)
        dnic_error(d, s->span, "out of memory making %d sequences", n);
    free(x);
    free(y);
    return ok;
}

/* The training sequences, then the test sequences, from the data's own stream. */
static bool make_copy(dnic_diag *d, const dnic_model *m, dnic_dataset *ds, dnic_dataset *test)
{
    dnic_rng r;
    dnic_rng_seed(&r, m->data.seed);
    return copy_set(d, m, &r, m->data.examples, ds) &&
           (!m->data.test_examples || copy_set(d, m, &r, m->data.test_examples, test));
}

/* Builds the training set the model declares (and its test set, when it has one), drawing
 * the built-in data from `rng` unless the data block has its own seed. */
static bool make_data(dnic_diag *d, const dnic_model *m, dnic_rng *rng, dnic_dataset *ds, dnic_dataset *test,
                      const char *cache_dir, int *hits)
{
    const dnic_data_spec *s = &m->data;
    char err[768], note[1100];
    dnic_data_opts lo = {.scale = s->scale, .one_hot = s->one_hot, .inputs = s->inputs, .labels = s->labels,
                         .dtype = m->train.dtype, .label_column = s->label_column, .label_index = s->label_index,
                         .keep_bytes = true /* pixels scaled per batch: a quarter of the memory */,
                         .cache_dir = cache_dir, .note = note, .notelen = sizeof note, .cache_hits = hits};
    if (s->nclasses) { /* class numbers as they are, selected below */
        lo.one_hot = 0;
        lo.labels = 1;
    }
    if (s->kind == DNIC_DATA_IDX || s->kind == DNIC_DATA_CSV) {
        bool idx = s->kind == DNIC_DATA_IDX;
        note[0] = '\0';
        if ((idx ? dnic_load_idx(ds, s->train_x, s->train_y, &lo, err, sizeof err)
                 : dnic_load_csv(ds, s->train_x, &lo, err, sizeof err)) != DNIC_OK) {
            dnic_error(d, (dnic_span){0}, "%s", err);
            return false;
        }
        if (note[0])
            fprintf(stderr, "dnic: note: %s\n", note);
        char said[sizeof note];
        memcpy(said, note, sizeof note);
        note[0] = '\0';
        if (s->test_x && (idx ? dnic_load_idx(test, s->test_x, s->test_y, &lo, err, sizeof err)
                              : dnic_load_csv(test, s->test_x, &lo, err, sizeof err)) != DNIC_OK) {
            dnic_error(d, (dnic_span){0}, "%s", err);
            return false;
        }
        if (note[0] && strcmp(note, said) != 0) /* the test set may be the same files */
            fprintf(stderr, "dnic: note: %s\n", note);
        if (s->nclasses && (!select_classes(d, s, s->train_x, ds) || (s->test_x && !select_classes(d, s, s->test_x, test))))
            return false;
        /* limit: the first N examples (the arrays keep their size; only n shrinks) */
        if (s->limit && s->limit < ds->n)
            ds->n = s->limit;
        if (s->test_limit && s->test_limit < test->n)
            test->n = s->test_limit;
        return true;
    }
    if (s->kind == DNIC_DATA_COPY || s->kind == DNIC_DATA_REPEAT_COPY)
        return make_copy(d, m, ds, test);
    size_t nx = (size_t)s->examples * (size_t)s->inputs, ny = (size_t)s->examples * (size_t)s->labels;
    double *x = malloc(nx * sizeof *x), *y = malloc(ny * sizeof *y);
    dnic_rng own;
    if (s->has_seed)
        dnic_rng_seed(&own, s->seed);
    bool ok = x && y && dnic_binadd_generate(s->has_seed ? &own : rng, s->bits, s->examples, x, y) == 0 &&
              dnic_dataset_from_f64(ds, m->train.dtype, s->examples, s->inputs, s->labels, x, y) == DNIC_OK;
    if (!ok)
        dnic_error(d, s->span, "out of memory making %d examples", s->examples);
    free(x);
    free(y);
    return ok;
}

static double wall_ms(clockid_t c)
{
    struct timespec ts;
    clock_gettime(c, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

bool cli_make_data(dnic_diag *d, const dnic_model *m, dnic_rng *rng, dnic_dataset *ds, dnic_dataset *test,
                   dnic_dataset *val, const char *cache_dir, cli_data_times *t)
{
    double w0 = wall_ms(CLOCK_MONOTONIC), c0 = wall_ms(CLOCK_THREAD_CPUTIME_ID);
    int hits = 0;
    bool ok = make_data(d, m, rng, ds, test, cache_dir, &hits);
    if (t)
        *t = (cli_data_times){wall_ms(CLOCK_MONOTONIC) - w0, wall_ms(CLOCK_THREAD_CPUTIME_ID) - c0, hits};
    if (!ok)
        return false;
    if (m->data.validation > 0) {
        /* the last examples are held out: a view into the training set's arrays */
        int nv = (int)(ds->n * m->data.validation);
        size_t es = dnic_dtype_size(ds->dtype), xs = dnic_dataset_x_size(ds);
        *val = (dnic_dataset){nv, ds->inputs, ds->labels, ds->dtype,
                              (char *)ds->x + (size_t)(ds->n - nv) * (size_t)ds->inputs * xs,
                              (char *)ds->y + (size_t)(ds->n - nv) * (size_t)ds->labels * es, ds->x_bytes, ds->x_scale};
        ds->n -= nv;
    }
    if (ds->n < m->train.batch) {
        dnic_error(d, m->data.span, "the data has %d examples, fewer than one batch of %d", ds->n, m->train.batch);
        return false;
    }
    return true;
}
