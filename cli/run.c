/* `dnic --run`: JIT-compiles the IR, makes the data and the initial weights from the model's
 * seed (data first, then parameters, as the seeds draw them), trains with the scheduler and
 * prints report lines in the seeds' format and a summary. */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "binadd.h"
#include "dataset_files.h"
#include "codegen.h"
#include "cli.h"
#include "plot.h"
#include "report.h"
#include "rng.h"
#include "safetensors.h"

typedef struct reporter {
    const dnic_model *m;
    FILE *log;                 /* --log: a temporary file renamed into place at the end */
    bool test, val;            /* the log has test / validation columns */
    long long rows;            /* report lines printed */
} reporter;

/* Iter:999 Loss:380.142015668 Synthetic Loss:1694.16764408 [h1:... h2:...] */
static void print_report(void *user, const dnic_report *r)
{
    reporter *rp = user;
    const dnic_model *m = rp->m;
    rp->rows++;
    char num[64];
    dnic_format_py2(num, sizeof num, r->loss);
    printf("Iter:%lld Loss:%s", r->iter, num);
    if (r->nsg > 0) {
        int shown = m->train.report_sg >= 0 ? m->train.report_sg : r->nsg - 1;
        dnic_format_py2(num, sizeof num, r->sg_loss[shown]);
        printf(" Synthetic Loss:%s", num);
        if (m->train.report_sg < 0 && r->nsg > 1) {
            printf(" [");
            for (int s = 0; s < r->nsg; s++) {
                dnic_format_py2(num, sizeof num, r->sg_loss[s]);
                printf("%s%s:%s", s ? " " : "", m->sgs[s].name, num);
            }
            printf("]");
        }
    }
    if (r->has_validation)
        printf(" Validation loss:%.6g accuracy:%.2f%%", r->val_loss, 100 * r->val_accuracy);
    if (r->has_test)
        printf(" Test loss:%.6g accuracy:%.2f%%", r->test_loss, 100 * r->test_accuracy);
    putchar('\n');
    fflush(stdout);
    if (rp->log) {
        fprintf(rp->log, "%lld,%lld,%.17g", r->iter, r->step, r->loss);
        for (int s = 0; s < r->nsg; s++)
            fprintf(rp->log, ",%.17g", r->sg_loss[s]);
        if (rp->val)
            fprintf(rp->log, ",%.17g,%.17g", r->val_loss, r->val_accuracy);
        if (rp->test)
            fprintf(rp->log, ",%.17g,%.17g", r->test_loss, r->test_accuracy);
        fprintf(rp->log, ",%.6f\n", r->elapsed);
    }
}

/* Opens `path`.tmp for the CSV log and writes its header. */
static FILE *open_log(dnic_diag *d, const dnic_model *m, const char *path, int nsg, bool val, bool test, char **tmp)
{
    *tmp = malloc(strlen(path) + 8);
    if (!*tmp)
        return NULL;
    sprintf(*tmp, "%s.tmp", path);
    FILE *f = fopen(*tmp, "w");
    if (!f) {
        dnic_error(d, (dnic_span){0}, "cannot write '%s': %s", path, strerror(errno));
        free(*tmp);
        *tmp = NULL;
        return NULL;
    }
    fprintf(f, "iter,step,loss");
    for (int s = 0; s < nsg; s++)
        fprintf(f, ",%s.sg_loss", m->sgs[s].name);
    fprintf(f, "%s%s,elapsed_s\n", val ? ",val_loss,val_accuracy" : "", test ? ",test_loss,test_accuracy" : "");
    return f;
}

/* Closes the log and moves it into place (keep = false removes it). */
static bool close_log(dnic_diag *d, FILE *f, const char *tmp, const char *path, bool keep)
{
    bool ok = fflush(f) == 0 && fsync(fileno(f)) == 0;
    ok = fclose(f) == 0 && ok;
    if (keep && ok && rename(tmp, path) == 0)
        return true;
    if (keep)
        dnic_error(d, (dnic_span){0}, "cannot write '%s': %s", path, strerror(errno));
    unlink(tmp);
    return false;
}

/* --export-data: the training set as the model sees it, in its dtype. */
static bool export_data(dnic_diag *d, const dnic_dataset *ds, const char *path)
{
    dnic_st_tensor t[2] = {
        {"x", ds->dtype, 2, {ds->n, ds->inputs}, ds->x},
        {"y", ds->dtype, 2, {ds->n, ds->labels}, ds->y},
    };
    char err[512];
    if (dnic_st_write(path, t, 2, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        return false;
    }
    return true;
}

/* --save-predictions: the trained model's outputs for the training inputs. */
static bool save_predictions(dnic_diag *d, dnic_program *p, const dnic_dataset *ds, const char *path)
{
    size_t es = dnic_dtype_size(ds->dtype), out = (size_t)p->bufs[p->out].cols;
    void *xpad = calloc((size_t)p->batch * (size_t)ds->inputs, es), *y = calloc((size_t)ds->n * out, es);
    bool ok = xpad && y;
    if (ok) {
        dnic_program_predict(p, xpad, ds->x, y, ds->n);
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

static bool save_weights(dnic_diag *d, const dnic_program *p, const char *path)
{
    char err[512];
    if (dnic_program_save(p, path, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        return false;
    }
    return true;
}

/* Builds the training set the model declares (and its test set, when it has one), drawing
 * the built-in data from `rng` unless the data block has its own seed. */
static bool make_data(dnic_diag *d, const dnic_model *m, dnic_rng *rng, dnic_dataset *ds, dnic_dataset *test)
{
    const dnic_data_spec *s = &m->data;
    char err[768];
    dnic_data_opts lo = {.scale = s->scale, .one_hot = s->one_hot, .inputs = s->inputs, .labels = s->labels,
                         .dtype = m->train.dtype, .label_column = s->label_column, .label_index = s->label_index};
    if (s->kind == DNIC_DATA_IDX || s->kind == DNIC_DATA_CSV) {
        bool idx = s->kind == DNIC_DATA_IDX;
        if ((idx ? dnic_load_idx(ds, s->train_x, s->train_y, &lo, err, sizeof err)
                 : dnic_load_csv(ds, s->train_x, &lo, err, sizeof err)) != DNIC_OK) {
            dnic_error(d, (dnic_span){0}, "%s", err);
            return false;
        }
        if (s->test_x && (idx ? dnic_load_idx(test, s->test_x, s->test_y, &lo, err, sizeof err)
                              : dnic_load_csv(test, s->test_x, &lo, err, sizeof err)) != DNIC_OK) {
            dnic_error(d, (dnic_span){0}, "%s", err);
            return false;
        }
        /* limit: the first N examples (the arrays keep their size; only n shrinks) */
        if (s->limit && s->limit < ds->n)
            ds->n = s->limit;
        if (s->test_limit && s->test_limit < test->n)
            test->n = s->test_limit;
        return true;
    }
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

/* Fails early, before any training, when an output file's directory cannot be written. */
static bool writable(dnic_diag *d, const char *path)
{
    if (!path)
        return true;
    char *dir = strdup(path);
    if (!dir)
        return false;
    char *slash = strrchr(dir, '/');
    const char *where = slash ? (slash == dir ? "/" : (*slash = '\0', dir)) : ".";
    bool ok = access(where, W_OK) == 0;
    if (!ok)
        dnic_error(d, (dnic_span){0}, "cannot write '%s': %s", path, strerror(errno));
    free(dir);
    return ok;
}

/* SIGINT/SIGTERM: the first asks training to stop at the next step boundary (saving the
 * checkpoint); a second exits at once (files are written atomically, so none is corrupted). */
static volatile int interrupted;

static void on_signal(int sig)
{
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    interrupted = 1;
}

/* A model's identity for checkpoints: FNV-1a of its IR's text (shapes, ops, rates). */
static uint64_t fingerprint(const dnic_ir *ir)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return 0;
    dnic_ir_print(ir, f);
    fclose(f);
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ull;
    free(buf);
    return h;
}

/* Where compiled code is cached: $DNIC_CACHE_DIR, else $XDG_CACHE_HOME/dnic, else
 * $HOME/.cache/dnic; NULL (no cache) when none of them is set. */
static const char *cache_dir(dnic_arena *a)
{
    const char *d = getenv("DNIC_CACHE_DIR");
    if (d && *d)
        return d;
    d = getenv("XDG_CACHE_HOME");
    if (d && *d == '/')
        return dnic_sprintf(a, "%s/dnic", d);
    d = getenv("HOME");
    if (d && *d == '/')
        return dnic_sprintf(a, "%s/.cache/dnic", d);
    return NULL;
}

int dnic_run(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o)
{
    if (!(writable(d, o->emit_llvm) & writable(d, o->emit_asm)))
        return DNIC_EXIT_USER;
    if (o->action == DNIC_ACTION_RUN && !(writable(d, o->save_weights) & writable(d, o->save_init) &
                                          writable(d, o->export_data) & writable(d, o->log_csv) &
                                          writable(d, o->save_predictions) & writable(d, o->plot_svg) &
                                          writable(d, o->checkpoint)))
        return DNIC_EXIT_USER;
    dnic_program p = {
        .bufs = ir->bufs,
        .nbufs = ir->nbufs,
        .nblocks = ir->nblocks,
        .dtype = ir->dtype,
        .batch = ir->batch,
        .x = ir->x,
        .y = ir->y,
        .out = ir->out,
        .loss_acc = ir->loss_acc,
        .nstages = ir->nstages,
        .nslots = m->train.lag + 2, /* the training slots and one for evaluating while training */
    };
    int nsg = ir->sg_acc_first >= 0 ? m->nsgs : 0;
    int sg_acc[nsg > 0 ? nsg : 1];
    for (int s = 0; s < nsg; s++)
        sg_acc[s] = ir->sg_acc_first + s;
    p.sg_acc = sg_acc;
    p.nsg = nsg;
    dnic_block_desc blocks[ir->nblocks];
    for (int b = 0; b < ir->nblocks; b++)
        blocks[b] = (dnic_block_desc){ir->blocks[b].name, ir->blocks[b].stage, ir->blocks[b].phase, NULL,
                                      dnic_ir_block_acc(ir, b), dnic_ir_block_cost(ir, b), dnic_ir_block_reads(ir, b)};
    p.blocks = blocks;

    /* from here on an interrupt stops at the first step boundary, saving a checkpoint */
    interrupted = 0;
    if (o->action == DNIC_ACTION_RUN) {
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
    }
    dnic_jit_times jt = {0};
    dnic_arena *ca = dnic_arena_new();
    dnic_jit *jit = dnic_jit_compile(ir, &p, o->emit_llvm, o->emit_asm, o->no_cache ? NULL : cache_dir(ca), &jt);
    dnic_arena_free(ca);
    if (!jit)
        return DNIC_EXIT_INTERNAL;
    if (o->action != DNIC_ACTION_RUN) {
        dnic_jit_free(jit);
        return DNIC_EXIT_OK;
    }
    int rc = DNIC_EXIT_USER;
    dnic_dataset ds = {0}, test = {0}, val = {0};
    dnic_rng rng;
    dnic_rng_seed(&rng, m->train.seed);
    if (dnic_program_alloc(&p) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "out of memory allocating the model's buffers");
        goto out;
    }
    if (!make_data(d, m, &rng, &ds, &test))
        goto out;
    if (m->data.validation > 0) {
        /* the last examples are held out: a view into the training set's arrays */
        int nv = (int)(ds.n * m->data.validation);
        size_t es = dnic_dtype_size(ds.dtype);
        val = (dnic_dataset){nv, ds.inputs, ds.labels, ds.dtype,
                             (char *)ds.x + (size_t)(ds.n - nv) * (size_t)ds.inputs * es,
                             (char *)ds.y + (size_t)(ds.n - nv) * (size_t)ds.labels * es};
        ds.n -= nv;
    }
    if (ds.n < m->train.batch) {
        dnic_error(d, m->data.span, "the data has %d examples, fewer than one batch of %d", ds.n, m->train.batch);
        goto out;
    }
    dnic_program_init_params(&p, &rng);
    char err[512];
    if (o->load_weights && dnic_program_load(&p, o->load_weights, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        goto out;
    }
    if (o->save_init && !save_weights(d, &p, o->save_init))
        goto out;
    if (o->export_data && !export_data(d, &ds, o->export_data))
        goto out;

    dnic_train_opts to = {
        .epochs = m->train.epochs,
        .steps = m->train.steps,
        .report_every = m->train.report_every,
        .progress = o->progress >= 0 ? o->progress : isatty(STDERR_FILENO),
        .lag = m->train.lag,
        .schedule = o->schedule,
        .threads = o->threads,
        .shuffle = m->train.shuffle,
        .seed = m->train.seed,
        .test = test.n > 0 ? &test : NULL,
        .validation = val.n > 0 ? &val : NULL,
        .eval = m->loss == DNIC_LOSS_SOFTMAX_CE ? DNIC_EVAL_SOFTMAX_CE
              : m->loss == DNIC_LOSS_SIGMOID_CE ? DNIC_EVAL_SIGMOID_CE : DNIC_EVAL_SQUARED,
        .checkpoint = o->checkpoint,
        .checkpoint_every = o->checkpoint_every,
        .resume = o->resume,
        .fingerprint = fingerprint(ir),
        .interrupt = &interrupted,
        /* for tests: an interrupt at a known step instead of a signal's unknown one */
        .interrupt_at = getenv("DNIC_TEST_INTERRUPT_AT") ? atoll(getenv("DNIC_TEST_INTERRUPT_AT")) : 0,
    };
    dnic_sched_plan plan;
    dnic_plan_schedule(&p, &to, &plan);
    if (o->schedule == DNIC_SCHED_PIPELINE && plan.schedule != DNIC_SCHED_PIPELINE)
        fprintf(stderr, "dnic: note: %s\n", plan.why);
    /* a sequential run gives the cores to the large matrix products instead (codegen.c) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    dnic_parallel_set_threads(plan.schedule == DNIC_SCHED_PIPELINE ? 1
                              : o->threads > 0                   ? o->threads
                                                                 : (int)(cores > 0 ? cores : 1));
    reporter rp = {m, NULL, test.n > 0, val.n > 0, 0};
    char *log_tmp = NULL;
    /* --plot draws from the log: a temporary one when no --log was asked for */
    char plot_log[] = "/tmp/dnic-plot-XXXXXX.csv";
    const char *log_path = o->log_csv;
    if (o->plot_svg && !log_path) {
        int fd = mkstemps(plot_log, 4);
        if (fd < 0) {
            dnic_error(d, (dnic_span){0}, "cannot make a temporary log for --plot: %s", strerror(errno));
            goto out;
        }
        close(fd);
        log_path = plot_log;
    }
    if (log_path && !(rp.log = open_log(d, m, log_path, nsg, rp.val, rp.test, &log_tmp)))
        goto out;
    dnic_train_result res;
    dnic_train(&p, &ds, &to, print_report, &rp, &res);
    if (rp.log) {
        /* the log of a diverged or interrupted run is kept: it shows what happened up to there */
        bool logged = close_log(d, rp.log, log_tmp, log_path,
                                res.status == DNIC_OK || res.status == DNIC_ERR_NONFINITE ||
                                    res.status == DNIC_ERR_INTERRUPTED);
        free(log_tmp);
        bool plotted = !o->plot_svg || !logged;
        if (!plotted && rp.rows == 0)
            dnic_error(d, (dnic_span){0}, "--plot: the run printed no report line to draw (report_every = %lld)",
                       m->train.report_every);
        else if (!plotted)
            plotted = dnic_plot(&log_path, (const char *const[]){m->name}, 1, o->plot_svg) == 0;
        if (log_path == plot_log)
            unlink(plot_log);
        if ((!logged || !plotted) && res.status == DNIC_OK)
            goto out;
    }
    if (res.status == DNIC_ERR_NONFINITE) {
        dnic_error(d, (dnic_span){0}, "training diverged at step %lld (epoch %lld): %s holds NaN or infinity",
                   res.bad_step + 1, res.bad_step / (ds.n / m->train.batch), res.bad_buffer);
        dnic_note(d, (dnic_span){0}, "try a smaller learning rate (train.lr = %g)", m->train.lr);
        goto out;
    }
    if (res.status == DNIC_ERR_INTERRUPTED) {
        fprintf(stderr, "dnic: interrupted after step %lld%s%s\n", res.bad_step + 1,
                res.checkpointed ? "; the checkpoint is in " : "", res.checkpointed ? o->checkpoint : "");
        rc = 130;
        goto out;
    }
    if (res.status == DNIC_ERR_IO) {
        dnic_error(d, (dnic_span){0}, "%s", res.error);
        goto out;
    }
    if (res.status != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "training failed (status %d)", (int)res.status);
        goto out;
    }
    if (o->save_weights && !save_weights(d, &p, o->save_weights))
        goto out;
    if (o->save_predictions && !save_predictions(d, &p, &ds, o->save_predictions))
        goto out;
    char cached[64] = "", kernels[64] = "";
    if (dnic_parallel_threads() > 1)
        snprintf(kernels, sizeof kernels, "; kernels on %d threads", dnic_parallel_threads());
    if (jt.cached > 0)
        snprintf(cached, sizeof cached, "; %d of %d parts from the cache", jt.cached, jt.parts);
    printf("# %s: %lld steps in %.3f s (%.0f steps/s); compile %.1f ms (%d thread%s: IR %.1f, optimise %.1f, "
           "machine code %.1f ms of CPU%s)%s; %s\n",
           m->name, res.steps, res.seconds, (double)res.steps / (res.seconds > 0 ? res.seconds : 1e-9), jt.total_ms,
           jt.threads, jt.threads == 1 ? "" : "s", jt.codegen_ms, jt.optimize_ms, jt.machine_ms, cached, kernels,
           plan.schedule == DNIC_SCHED_PIPELINE ? plan.why : "sequential");
    rc = DNIC_EXIT_OK;
out:
    dnic_dataset_free(&ds);
    dnic_dataset_free(&test);
    dnic_program_free(&p);
    dnic_jit_free(jit);
    return rc;
}

int dnic_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o)
{
    dnic_arena *a = dnic_arena_new();
    dnic_emit_opts e = {.out_path = o->out_path, .header_path = o->header_path, .prefix = o->prefix, .cpu = o->cpu,
                        .triple = o->target};
    if (!e.prefix)
        e.prefix = m->name;
    int rc = DNIC_EXIT_USER;
    if (!dnic_is_name(e.prefix, strlen(e.prefix))) {
        dnic_error(d, (dnic_span){0}, "--prefix '%s' is not a C identifier", e.prefix);
        goto out;
    }
    if (!e.out_path) {
        /* model.dni -> model.o in the current directory, as cc -c does */
        const char *base = strrchr(m->src->name, '/');
        base = base ? base + 1 : m->src->name;
        size_t n = strlen(base);
        if (n > 4 && !strcmp(base + n - 4, ".dni"))
            n -= 4;
        e.out_path = dnic_sprintf(a, "%.*s.o", (int)n, base);
    }
    if (!e.header_path) {
        size_t n = strlen(e.out_path);
        if (n > 2 && !strcmp(e.out_path + n - 2, ".o"))
            n -= 2;
        e.header_path = dnic_sprintf(a, "%.*s.h", (int)n, e.out_path);
    }
    if (!strcmp(e.header_path, e.out_path)) {
        dnic_error(d, (dnic_span){0}, "the header and the object would both be '%s'; use --header PATH", e.out_path);
        goto out;
    }
    if (!writable(d, e.out_path) || !writable(d, e.header_path))
        goto out;
    rc = dnic_emit_object(d, m, ir, &e);
out:
    dnic_arena_free(a);
    return rc;
}
