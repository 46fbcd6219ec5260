/* `dnic --eval` and `dnic --predict DATA`: trained weights (--load-weights) on data, with only
 * the predict block JIT-compiled (no training code): the loss and accuracy of the model's data
 * sets with a per-class table, or the outputs for a file's inputs as CSV or safetensors. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "codegen.h"
#include "dataset_files.h"
#include "safetensors.h"

/* A model ready to predict: its program with the weights loaded, and the JIT behind it. */
typedef struct predictor {
    dnic_arena *a;
    dnic_program p;
    dnic_jit *jit;
} predictor;

static void predictor_free(predictor *pr)
{
    dnic_program_free(&pr->p);
    dnic_jit_free(pr->jit);
    dnic_arena_free(pr->a);
}

/* Compiles the predict block alone, allocates the buffers and loads --load-weights; false after
 * a diagnostic (the predictor is then freed). */
static bool predictor_init(predictor *pr, dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o)
{
    pr->a = dnic_arena_new();
    pr->p = cli_describe_program(pr->a, m, ir);
    pr->jit = NULL;
    bool *only = dnic_alloc(pr->a, (size_t)ir->nblocks + 1);
    for (int b = 0; b < ir->nblocks; b++)
        only[b] = ir->blocks[b].phase == DNIC_PHASE_PREDICT;
    pr->jit = dnic_jit_compile(ir, &pr->p, only, o->emit_llvm, o->emit_asm, o->no_cache ? NULL : cli_cache_dir(pr->a),
                               NULL);
    char err[512];
    bool ok = pr->jit != NULL;
    if (ok && dnic_program_alloc(&pr->p) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "out of memory allocating the model's buffers");
        ok = false;
    }
    if (ok && dnic_program_load(&pr->p, o->load_weights, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        ok = false;
    }
    if (!ok) {
        predictor_free(pr);
        return false;
    }
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    dnic_parallel_set_threads(o->threads > 0 ? o->threads : (int)(cores > 0 ? cores : 1));
    return true;
}

static double value_at(const void *v, dnic_dtype t, size_t i)
{
    return t == DNIC_F64 ? ((const double *)v)[i] : (double)((const float *)v)[i];
}

static size_t argmax(const void *v, dnic_dtype t, size_t row, size_t w)
{
    size_t best = 0;
    for (size_t j = 1; j < w; j++)
        if (value_at(v, t, row * w + j) > value_at(v, t, row * w + best))
            best = j;
    return best;
}

/* The per-class table of one set: for softmax the examples of each class (by label) and the
 * fraction predicted as it; otherwise, per output, the fraction rounded to its label. */
static bool print_classes(dnic_diag *d, predictor *pr, const dnic_model *m, const dnic_dataset *ds, const char *set)
{
    size_t es = dnic_dtype_size(ds->dtype), w = (size_t)ds->labels, n = (size_t)ds->n;
    void *xpad = calloc((size_t)pr->p.batch * (size_t)ds->inputs, es), *y = malloc(n * w * es + 1);
    long long *count = calloc(w + 1, sizeof *count), *right = calloc(w + 1, sizeof *right);
    bool ok = xpad && y && count && right;
    if (!ok) {
        dnic_error(d, (dnic_span){0}, "out of memory predicting %d rows", ds->n);
    } else {
        dnic_program_predict_set(&pr->p, pr->p.ptrs, xpad, ds, y);
        bool softmax = cli_eval_kind(m) == DNIC_EVAL_SOFTMAX_CE;
        for (size_t i = 0; i < n; i++) {
            if (softmax) {
                size_t want = argmax(ds->y, ds->dtype, i, w);
                count[want]++;
                right[want] += argmax(y, ds->dtype, i, w) == want;
                continue;
            }
            for (size_t j = 0; j < w; j++) {
                count[j]++;
                right[j] += (value_at(y, ds->dtype, i * w + j) > 0.5) == (value_at(ds->y, ds->dtype, i * w + j) > 0.5);
            }
        }
        printf("\n%s set, per %s:\n%-8s %10s %10s %9s\n", set, softmax ? "class" : "output",
               softmax ? "class" : "output", "examples", "right", "accuracy");
        for (size_t j = 0; j < w; j++)
            printf("%-8zu %10lld %10lld %8.2f%%\n", j, count[j], right[j],
                   count[j] ? 100.0 * (double)right[j] / (double)count[j] : 0.0);
    }
    free(xpad);
    free(y);
    free(count);
    free(right);
    return ok;
}

int dnic_eval(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o)
{
    predictor pr;
    if (!predictor_init(&pr, d, m, ir, o))
        return DNIC_EXIT_USER;
    int rc = DNIC_EXIT_USER;
    dnic_dataset ds = {0}, test = {0}, val = {0};
    dnic_rng rng; /* the run's stream: built-in data is drawn first, as --run draws it */
    dnic_rng_seed(&rng, m->train.seed);
    if (!cli_make_data(d, m, &rng, &ds, &test, &val, o->no_cache ? NULL : cli_cache_dir(pr.a), NULL))
        goto out;
    const struct {
        const char *name;
        const dnic_dataset *ds;
    } sets[] = {{"training", &ds}, {"validation", &val}, {"test", &test}};
    printf("%s: weights %s\n%-10s %10s %14s %9s\n", m->src->name, o->load_weights, "set", "examples", "loss",
           "accuracy");
    const char *last = NULL;
    const dnic_dataset *last_ds = NULL;
    for (int s = 0; s < 3; s++) {
        if (sets[s].ds->n <= 0)
            continue;
        double loss, acc;
        if (dnic_evaluate(&pr.p, pr.p.ptrs, sets[s].ds, cli_eval_kind(m), &loss, &acc, NULL) != DNIC_OK) {
            dnic_error(d, (dnic_span){0}, "out of memory evaluating the %s set", sets[s].name);
            goto out;
        }
        /* the loss and accuracy as a run's report line prints its test and validation scores */
        printf("%-10s %10d %14.6g %8.2f%%\n", sets[s].name, sets[s].ds->n, loss, 100 * acc);
        last = sets[s].name;
        last_ds = sets[s].ds;
    }
    if (last_ds && !print_classes(d, &pr, m, last_ds, last))
        goto out;
    rc = DNIC_EXIT_OK;
out:
    dnic_dataset_free(&ds);
    dnic_dataset_free(&test);
    predictor_free(&pr);
    return rc;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), k = strlen(suffix);
    return n >= k && !strcmp(s + n - k, suffix);
}

/* --predict's input: a CSV file (by its name, or when the model reads CSV and the name does not
 * say IDX) with the model's input columns and optionally its label column; else IDX images. */
static bool read_inputs(dnic_diag *d, const dnic_model *m, const dnic_program *p, const char *path, dnic_dataset *ds)
{
    const dnic_data_spec *s = &m->data;
    bool csv = ends_with(path, ".csv") || ends_with(path, ".csv.gz") ||
               (s->kind == DNIC_DATA_CSV && !strstr(path, ".idx") && !strstr(path, "-ubyte"));
    bool files = s->kind == DNIC_DATA_IDX || s->kind == DNIC_DATA_CSV;
    dnic_data_opts lo = {
        .scale = files ? s->scale : 1,
        .one_hot = files ? s->one_hot : 0,
        .inputs = p->bufs[p->x].cols,
        .labels = 0, /* labels, when the file has them, are read and ignored */
        .dtype = m->train.dtype,
        .label_column = s->kind == DNIC_DATA_CSV ? s->label_column : NULL,
        .label_index = s->kind == DNIC_DATA_CSV ? s->label_index : p->bufs[p->x].cols,
        .labels_optional = true,
    };
    char err[768];
    if ((csv ? dnic_load_csv(ds, path, &lo, err, sizeof err) : dnic_load_idx(ds, path, NULL, &lo, err, sizeof err)) !=
        DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        return false;
    }
    return true;
}

/* The predictions as CSV: a header y0,y1,... then one row per example, each value with the
 * digits that read back exactly (%.9g for float32, %.17g for float64). */
static bool write_csv(FILE *f, const void *y, dnic_dtype t, int n, int w)
{
    for (int j = 0; j < w; j++)
        fprintf(f, "%sy%d", j ? "," : "", j);
    fputc('\n', f);
    for (size_t i = 0; i < (size_t)n; i++)
        for (size_t j = 0; j < (size_t)w; j++)
            fprintf(f, t == DNIC_F64 ? "%.17g%s" : "%.9g%s", value_at(y, t, i * (size_t)w + j),
                    j + 1 < (size_t)w ? "," : "\n");
    return !ferror(f);
}

/* Writes the CSV to path through a temporary file renamed into place (as every output is). */
static bool write_csv_file(dnic_diag *d, const char *path, const void *y, dnic_dtype t, int n, int w)
{
    char err[512];
    dnic_atomic_file a;
    dnic_status s = dnic_atomic_open(&a, path, err, sizeof err);
    if (s == DNIC_OK) {
        write_csv(a.f, y, t, n, w); /* a write error shows in the stream's error flag at commit */
        s = dnic_atomic_commit(&a, err, sizeof err);
    }
    if (s != DNIC_OK)
        dnic_error(d, (dnic_span){0}, "%s", err);
    return s == DNIC_OK;
}

int dnic_predict(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o)
{
    const char *out = o->out_path;
    bool st = out && (ends_with(out, ".safetensors") || ends_with(out, ".st"));
    if (out && !st && !ends_with(out, ".csv")) {
        dnic_error(d, (dnic_span){0}, "--predict writes .csv or .safetensors (.st), not '%s'", out);
        return DNIC_EXIT_USER;
    }
    if (!cli_writable(d, out))
        return DNIC_EXIT_USER;
    predictor pr;
    if (!predictor_init(&pr, d, m, ir, o))
        return DNIC_EXIT_USER;
    int rc = DNIC_EXIT_USER;
    dnic_dataset ds = {0};
    void *xpad = NULL, *y = NULL;
    if (!read_inputs(d, m, &pr.p, o->predict, &ds))
        goto out;
    size_t es = dnic_dtype_size(ds.dtype);
    int w = pr.p.bufs[pr.p.out].cols;
    xpad = calloc((size_t)pr.p.batch * (size_t)ds.inputs, es);
    y = calloc((size_t)ds.n * (size_t)w + 1, es);
    if (!xpad || !y) {
        dnic_error(d, (dnic_span){0}, "out of memory predicting %d rows", ds.n);
        goto out;
    }
    dnic_program_predict_set(&pr.p, pr.p.ptrs, xpad, &ds, y);
    char err[512];
    if (st) {
        dnic_st_tensor t = {"y_pred", ds.dtype, 2, {ds.n, w}, y};
        if (dnic_st_write(out, &t, 1, err, sizeof err) != DNIC_OK) {
            dnic_error(d, (dnic_span){0}, "%s", err);
            goto out;
        }
    } else if (out ? !write_csv_file(d, out, y, ds.dtype, ds.n, w) : !write_csv(stdout, y, ds.dtype, ds.n, w)) {
        goto out;
    }
    rc = DNIC_EXIT_OK;
out:
    free(xpad);
    free(y);
    dnic_dataset_free(&ds);
    predictor_free(&pr);
    return rc;
}
