/* `dnic --run` (and --emit-llvm / -S without it): JIT-compiles the IR, then one training
 * session: the data and the initial weights from the model's seed (data first, then
 * parameters, as the seeds draw them), the scheduler, the files asked for and the summary. */
#include <stdlib.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include "cli.h"
#include "codegen.h"
#include "dist.h"
#include "safetensors.h"

const char *cli_cache_dir(dnic_arena *a)
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

dnic_program cli_describe_program(dnic_arena *a, const dnic_model *m, const dnic_ir *ir)
{
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
    int *sg_acc = dnic_alloc(a, (size_t)(nsg > 0 ? nsg : 1) * sizeof *sg_acc);
    for (int s = 0; s < nsg; s++)
        sg_acc[s] = ir->sg_acc_first + s;
    p.sg_acc = sg_acc;
    p.nsg = nsg;
    p.probe = ir->probe;
    p.stage_hold = ir->stage_hold;
    for (int i = 0; ir->nstages > 1 && i < m->nlayers; i++)
        p.unlocked |= m->layers[i].input_sg >= 0;
    dnic_block_desc *blocks = dnic_alloc(a, (size_t)(ir->nblocks > 0 ? ir->nblocks : 1) * sizeof *blocks);
    for (int b = 0; b < ir->nblocks; b++)
        blocks[b] = (dnic_block_desc){ir->blocks[b].name, ir->blocks[b].stage, ir->blocks[b].phase, NULL,
                                      dnic_ir_block_acc(ir, b), dnic_ir_block_cost(ir, b), dnic_ir_block_reads(ir, b),
                                      ir->blocks[b].waits, ir->blocks[b].nwaits};
    p.blocks = blocks;
    return p;
}

dnic_eval_kind cli_eval_kind(const dnic_model *m)
{
    return m->loss == DNIC_LOSS_SOFTMAX_CE  ? DNIC_EVAL_SOFTMAX_CE
           : m->loss == DNIC_LOSS_SIGMOID_CE ? DNIC_EVAL_SIGMOID_CE
                                             : DNIC_EVAL_SQUARED;
}

/* The scheduler's options: the model's training settings and the command line's. */
static dnic_train_opts train_options(const dnic_model *m, const dnic_ir *ir, const dnic_options *o,
                                     const dnic_dataset *test, const dnic_dataset *val, volatile int *interrupted)
{
    return (dnic_train_opts){
        .epochs = m->train.epochs,
        .steps = m->train.steps,
        .report_every = m->train.report_every,
        .progress = o->progress >= 0 ? o->progress : isatty(STDERR_FILENO),
        .progress_sum = m->report_sum,
        .lag = m->train.lag,
        .schedule = o->schedule,
        .threads = o->threads,
        .shuffle = m->train.shuffle,
        .seed = m->train.seed,
        .update_prob = m->train.update_prob,
        .warmup = m->train.warmup,
        .test = test->n > 0 ? test : NULL,
        .validation = val->n > 0 ? val : NULL,
        .eval = cli_eval_kind(m),
        .checkpoint = o->checkpoint,
        .checkpoint_every = o->checkpoint_every,
        .resume = o->resume,
        .fingerprint = cli_fingerprint(ir),
        .interrupt = interrupted,
        /* for tests: an interrupt at a known step instead of a signal's unknown one */
        .interrupt_at = getenv("DNIC_TEST_INTERRUPT_AT") ? atoll(getenv("DNIC_TEST_INTERRUPT_AT")) : 0,
        .save_best = o->save_best ? o->save_best : m->train.keep_best,
        .patience = m->train.patience,
        .probe = ir->probe != NULL,
    };
}

/* How training ended, as an exit status (after a diagnostic when it failed). */
static int train_outcome(dnic_diag *d, const dnic_model *m, const dnic_options *o, const dnic_train_result *res,
                         int examples)
{
    switch (res->status) {
    case DNIC_OK:
        return DNIC_EXIT_OK;
    case DNIC_ERR_NONFINITE:
        dnic_error(d, (dnic_span){0}, "training diverged at step %lld (epoch %lld): %s holds NaN or infinity",
                   res->bad_step + 1, res->bad_step / (examples / m->train.batch), res->bad_buffer);
        dnic_note(d, (dnic_span){0}, "try a smaller learning rate (train.lr = %g)", m->train.lr);
        return DNIC_EXIT_USER;
    case DNIC_ERR_INTERRUPTED:
        fprintf(stderr, "dnic: interrupted after step %lld%s%s\n", res->steps,
                res->checkpointed ? "; the checkpoint is in " : "", res->checkpointed ? o->checkpoint : "");
        return 130;
    case DNIC_ERR_IO:
        dnic_error(d, (dnic_span){0}, "%s", res->error);
        return DNIC_EXIT_USER;
    default:
        dnic_error(d, (dnic_span){0}, "training failed (status %d)", (int)res->status);
        return DNIC_EXIT_USER;
    }
}

/* The --set texts, one a line, as a checkpoint keeps them (in `a`). */
static const char *joined_overrides(dnic_arena *a, const dnic_options *o)
{
    const char *s = "";
    for (int i = 0; i < o->noverrides; i++)
        s = dnic_sprintf(a, "%s%s\n", s, o->overrides[i]);
    return s;
}

/* Under mpirun: whether the stages run on the job's ranks (false after a diagnostic in *ok). */
static bool over_mpi(dnic_diag *d, const dnic_options *o, bool *ok)
{
    struct dnic_comm *c = cli_mpi_comm();
    *ok = true;
    if (!c || o->action != DNIC_ACTION_RUN)
        return false;
    if (o->schedule == DNIC_SCHED_MPI || (o->schedule == DNIC_SCHED_AUTO && c->size > 1))
        return true;
    if (c->size > 1) {
        dnic_error(d, (dnic_span){0}, "--schedule %s: under mpirun with %d ranks the stages run on the ranks "
                   "(--schedule mpi, or auto)", o->schedule == DNIC_SCHED_SEQUENTIAL ? "sequential" : "pipeline",
                   c->size);
        *ok = false;
    }
    return false;
}

/* What a training session holds at one length of a curriculum (the whole run without one). */
typedef struct session {
    dnic_arena *a;             /* the model and IR of a length after the first (else NULL) */
    const dnic_model *m;
    const dnic_ir *ir;
    dnic_program p;
    dnic_jit *jit;
    dnic_dataset ds, test, val;
} session;

/* The curriculum's next length: the model checked and compiled again, its data drawn, every
 * parameter and optimiser state carried over from s, which then becomes the new length's. */
static bool lengthen(dnic_diag *d, cli_curriculum *cur, const char *cache, dnic_arena *a, dnic_rng *rng, session *s,
                     dnic_jit_times *jt, cli_data_times *dt)
{
    session n = {.a = dnic_arena_new()};
    dnic_jit_times t = {0};
    cli_data_times nt = {0};
    int L = cur->length;
    bool ok = cli_curriculum_next(cur, d, n.a, &n.m, &n.ir);
    if (ok) {
        n.p = cli_describe_program(a, n.m, n.ir);
        ok = (n.jit = dnic_jit_compile(n.ir, &n.p, NULL, NULL, NULL, cache, &t)) != NULL;
    }
    if (ok && dnic_program_alloc(&n.p) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "out of memory allocating the model's buffers");
        ok = false;
    }
    ok = ok && cli_make_data(d, n.m, rng, &n.ds, &n.test, &n.val, cache, &nt) &&
         cli_carry_state(d, s->m, &n.p, &s->p, L);
    session *gone = ok ? s : &n; /* the old length's, or what was made of the new one */
    dnic_dataset_free(&gone->ds);
    dnic_dataset_free(&gone->test);
    dnic_program_free(&gone->p);
    dnic_jit_free(gone->jit);
    if (gone->a)
        dnic_arena_free(gone->a);
    if (ok) {
        *s = n;
        jt->total_ms += t.total_ms;
        jt->codegen_ms += t.codegen_ms;
        jt->optimize_ms += t.optimize_ms;
        jt->machine_ms += t.machine_ms;
        jt->parts += t.parts;
        jt->cached += t.cached;
        dt->ms += nt.ms;
        dt->cpu_ms += nt.cpu_ms;
        dt->cached += nt.cached;
    }
    return ok;
}

/* The curriculum's closing line. */
static void print_curriculum(const cli_curriculum *cur)
{
    if (cur->solved > 0)
        printf("# curriculum: longest length solved %d at step %lld (test: %.4g wrong bits per sequence); "
               "length %d at the end (max_length = %d)\n", cur->solved, cur->at, cur->errors, cur->length,
               cur->max_length);
    else
        printf("# curriculum: no length solved (length %d: never under %g wrong bits per test sequence)\n",
               cur->length, cur->threshold);
}

int dnic_run(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *opts, cli_curriculum *cur)
{
    bool mpi_ok, mpi = over_mpi(d, opts, &mpi_ok);
    if (!mpi_ok)
        return DNIC_EXIT_USER;
    if (ir->replicas > 1 && opts->action == DNIC_ACTION_RUN && !mpi) {
        dnic_error(d, (dnic_span){0}, "--replicas %d: the replicas are processes of an MPI job: mpirun -np %d dnic ... "
                   "(or a multiple of %d, for several ranks a replica)", ir->replicas, ir->replicas, ir->replicas);
        return DNIC_EXIT_USER;
    }
    bool unlocked = false;
    for (int i = 0; ir->nstages > 1 && i < m->nlayers; i++)
        unlocked |= m->layers[i].input_sg >= 0;
    if (mpi && unlocked) {
        dnic_error(d, (dnic_span){0}, "a synthetic input (sg NAME.input) lets a stage run before the one it reads: "
                   "dnic runs it on threads, not over MPI ranks (--schedule mpi)");
        return DNIC_EXIT_USER;
    }
    if (mpi && ir->nstages > 1 && m->train.warmup > 0) {
        dnic_error(d, (dnic_span){0}, "train.warmup backpropagates through every stage in one process: it does not run "
                   "over MPI ranks (--schedule mpi); run it with threads, or without warmup");
        return DNIC_EXIT_USER;
    }
    /* only rank 0 writes files, draws progress and reports; the others train their stages */
    dnic_options quiet = *opts;
    if (mpi && cli_mpi_rank() > 0) {
        quiet.save_weights = quiet.save_init = quiet.export_data = quiet.log_csv = quiet.save_predictions = NULL;
        quiet.plot_svg = quiet.save_best = quiet.emit_llvm = quiet.emit_asm = NULL;
        if (ir->replicas <= 1) /* replicas: every first rank of one takes the checkpoints, only rank 0 writes */
            quiet.checkpoint = NULL;
        quiet.progress = 0;
    }
    const dnic_options *o = &quiet;
    if (!cli_outputs_writable(d, o) || (o->action == DNIC_ACTION_RUN && !cli_writable(d, m->train.keep_best)))
        return DNIC_EXIT_USER;
    /* a checkpoint keeps the model and its settings: --resume alone needs them, and a resume
     * with a model file names each setting that differs */
    char *settings = cli_settings(m);
    if (o->action == DNIC_ACTION_RUN && o->resume && !cli_resume_check(d, o->resume, settings)) {
        free(settings);
        return DNIC_EXIT_USER;
    }
    /* a checkpoint of a curriculum run continues at its length: the model there */
    session s = {.m = m, .ir = ir};
    if (cur && o->action == DNIC_ACTION_RUN && o->resume) {
        s.a = dnic_arena_new();
        if (!cli_curriculum_resume(cur, d, o->resume, s.a, &s.m, &s.ir)) {
            dnic_arena_free(s.a);
            free(settings);
            return DNIC_EXIT_USER;
        }
        m = s.m;
        ir = s.ir;
    }
    dnic_arena *a = dnic_arena_new();
    s.p = cli_describe_program(a, m, ir);
    /* from here on an interrupt stops at the first step boundary, saving a checkpoint */
    volatile int *interrupted = o->action == DNIC_ACTION_RUN ? cli_catch_interrupts() : NULL;
    dnic_jit_times jt = {0};
    /* the predict block is compiled only for a run that scores a test or validation set or
     * writes predictions (about a fifth of a model's code); -S and --emit-llvm show every block */
    bool *only = NULL;
    if (o->action == DNIC_ACTION_RUN && !o->emit_llvm && !o->emit_asm && !m->data.test_x && !m->data.test_examples &&
        !(m->data.validation > 0) &&
        !o->save_predictions) {
        only = dnic_alloc(a, (size_t)ir->nblocks + 1);
        for (int b = 0; b < ir->nblocks; b++)
            only[b] = ir->blocks[b].phase != DNIC_PHASE_PREDICT;
    }
    const char *cache = o->no_cache ? NULL : cli_cache_dir(a);
    s.jit = dnic_jit_compile(ir, &s.p, only, o->emit_llvm, o->emit_asm, cache, &jt);
    if (!s.jit || o->action != DNIC_ACTION_RUN) {
        bool compiled = s.jit != NULL;
        dnic_jit_free(s.jit);
        if (s.a)
            dnic_arena_free(s.a);
        dnic_arena_free(a);
        free(settings);
        return compiled ? DNIC_EXIT_OK : DNIC_EXIT_INTERNAL;
    }
#ifdef __GLIBC__
    /* the compiler's memory, freed, goes back to the system before the data set arrives (the
     * compile threads' malloc arenas keep it otherwise): the run's peak RSS is then the
     * larger of the two, not their sum */
    malloc_trim(0);
#endif
    int rc = DNIC_EXIT_USER;
    dnic_rng rng;
    dnic_rng_seed(&rng, m->train.seed);
    if (dnic_program_alloc(&s.p) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "out of memory allocating the model's buffers");
        goto out;
    }
    cli_data_times dt = {0};
    if (!cli_make_data(d, m, &rng, &s.ds, &s.test, &s.val, cache, &dt))
        goto out;
    dnic_program_init_params(&s.p, &rng);
    char err[512];
    if (o->load_weights && dnic_program_load(&s.p, o->load_weights, err, sizeof err) != DNIC_OK) {
        dnic_error(d, (dnic_span){0}, "%s", err);
        goto out;
    }
    if (o->save_init && !cli_save_weights(d, &s.p, o->save_init))
        goto out;
    if (o->export_data && !cli_export_data(d, &s.ds, o->export_data))
        goto out;

    dnic_train_opts to = train_options(m, ir, o, &s.test, &s.val, interrupted);
    if (cur) {
        to.stop_if = cli_curriculum_met;
        to.stop_user = cur;
        if (o->resume) { /* where the length began, and where it ended if it was solved */
            to.first_step = cur->origin;
            to.cut_at = cur->solved == cur->length ? cur->at : 0;
        }
    }
    dnic_dist dist;
    if (mpi) {
        if (!cli_dist_layout(a, d, ir, &s.p, o, &dist))
            goto out;
        if (!cli_mpi_ready(true, DNIC_EXIT_OK)) /* every rank compiled and has its data */
            goto out;
        if (ir->replicas > 1 && !cli_mpi_replicate(ir->replicas))
            goto out;
        to.dist = &dist;
    }
    /* a curriculum's state as of the step a checkpoint is taken at (cur->text follows it) */
    static const char *const text_names[] = {"dnic.model_path", "dnic.model", "dnic.overrides", "dnic.settings",
                                             "dnic.curriculum"};
    const char *texts[] = {m->src->name, m->src->text, joined_overrides(a, o), settings ? settings : "",
                           cur ? cur->text : ""};
    to.text_names = text_names;
    to.texts = texts;
    to.ntexts = cur ? 5 : 4;
    dnic_sched_plan plan;
    dnic_plan_schedule(&s.p, &to, &plan);
    if (o->schedule == DNIC_SCHED_PIPELINE && plan.schedule != DNIC_SCHED_PIPELINE)
        fprintf(stderr, "dnic: note: %s\n", plan.why);
    if (o->schedule == DNIC_SCHED_PIPELINE && plan.schedule == DNIC_SCHED_PIPELINE && m->train.lag == 0)
        dnic_warning(d, (dnic_span){0},
                     "train.lag = 0: in a pipeline each stage waits every step for the stages after it "
                     "(its SG targets), so stages take turns instead of overlapping; train.lag = 1 lets "
                     "them overlap (it changes the numbers)");
    /* a sequential run gives the cores to the large matrix products instead (codegen.c) */
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    dnic_parallel_set_threads(plan.schedule == DNIC_SCHED_PIPELINE ? 1
                              : o->threads > 0                   ? o->threads
                              : plan.schedule == DNIC_SCHED_MPI  ? 1 /* the ranks share the cores */
                                                                 : (int)(cores > 0 ? cores : 1));
    cli_log log;
    if (!cli_log_open(&log, d, m, s.p.nsg, o->log_csv, o->plot_svg, s.val.n > 0, s.test.n > 0))
        goto out;
    dnic_train_result res;
    cli_reporter rp = {.m = m, .log = &log, .d = d};
    dnic_train(&s.p, &s.ds, &to, cli_print_report, &rp, &res);
    /* a curriculum: each length its test score solves goes on at the next, from that step */
    double seconds = 0;
    long long steps_run = 0;
    while (cur && res.status == DNIC_OK && res.cut && cur->length < cur->max_length && res.steps < cur->budget) {
        printf("# length %d -> %d at step %lld (test: %.4g wrong bits per sequence < curriculum = %g)\n", cur->length,
               cur->length + 1, res.steps, cur->errors, cur->threshold);
        fflush(stdout);
        seconds += res.seconds;
        steps_run += res.steps_run;
        long long at = res.steps;
        if (!lengthen(d, cur, cache, a, &rng, &s, &jt, &dt)) {
            res.status = DNIC_ERR_ARG;
            break;
        }
        rp.m = s.m;
        rp.elapsed_before = seconds;
        to.test = s.test.n > 0 ? &s.test : NULL;
        to.validation = s.val.n > 0 ? &s.val : NULL;
        to.first_step = at;
        to.fingerprint = cli_fingerprint(s.ir); /* a checkpoint from here on is of the model at this length */
        to.resume = NULL;
        to.cut_at = 0;
        dnic_train(&s.p, &s.ds, &to, cli_print_report, &rp, &res);
    }
    res.seconds += seconds;
    res.steps_run += steps_run;
    bool logged = !log.f || cli_log_finish(&log, d, m, o->plot_svg, o->plot_time, res.status);
    if (!logged && res.status == DNIC_OK)
        goto out;
    if (res.status == DNIC_ERR_ARG && cur && d->errors > 0) /* lengthen said why */
        goto out;
    rc = train_outcome(d, s.m, o, &res, s.ds.n);
    /* an interrupted run still writes what was asked for, as of its last completed step */
    bool stopped = res.status == DNIC_ERR_INTERRUPTED;
    if (rc != DNIC_EXIT_OK && !stopped)
        goto out;
    if (stopped && logged) {
        if (o->log_csv)
            fprintf(stderr, "dnic: wrote the log to %s\n", o->log_csv);
        if (o->plot_svg)
            fprintf(stderr, "dnic: wrote the plot to %s\n", o->plot_svg);
    }
    if (res.best_saved)
        fprintf(stderr, "dnic: the best weights (%s loss %.6g at %s %lld) are in %s\n",
                s.val.n > 0 ? "validation" : "test", res.best_loss, m->train.epochs ? "epoch" : "step", res.best_iter, to.save_best);
    if (res.stopped_early)
        fprintf(stderr, "dnic: stopped early after step %lld: no better %s loss in %lld reports (train.patience)\n",
                res.steps, s.val.n > 0 ? "validation" : "test", m->train.patience);
    if ((o->save_weights && !cli_save_weights(d, &s.p, o->save_weights)) ||
        (o->save_predictions && !cli_save_predictions(d, &s.p, &s.ds, o->save_predictions))) {
        rc = DNIC_EXIT_USER;
    } else if (stopped) {
        if (o->save_weights)
            fprintf(stderr, "dnic: wrote the weights after step %lld to %s\n", res.steps, o->save_weights);
        if (o->save_predictions)
            fprintf(stderr, "dnic: wrote the predictions after step %lld to %s\n", res.steps, o->save_predictions);
    } else {
        if (cur)
            print_curriculum(cur);
        cli_print_summary(s.m, s.ir, &res, &jt, &dt, &plan);
    }
out:
    free(settings);
    dnic_dataset_free(&s.ds);
    dnic_dataset_free(&s.test);
    dnic_program_free(&s.p);
    dnic_jit_free(s.jit);
    if (s.a)
        dnic_arena_free(s.a);
    dnic_arena_free(a);
    return rc;
}
