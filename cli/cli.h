/* The dnic command's internal header and its index, one section per file:
 * main -> options -> driver (the pipeline) -> run (a training session: data, report_print, log,
 * outputs, checkpoint), eval (--eval, --predict: trained weights, no training code), object
 * (-c) or summary (--check); vary runs the pipeline once per variant; distribute starts, lays
 * out and ends a run over MPI ranks. */
#ifndef DNIC_CLI_H
#define DNIC_CLI_H

#include "atomic_file.h"
#include "dnic.h"
#include "rng.h"

typedef enum dnic_action {
    DNIC_ACTION_CHECK,
    DNIC_ACTION_RUN,
    DNIC_ACTION_OBJECT,
    DNIC_ACTION_EVAL,    /* --eval: score --load-weights on the model's test and validation sets */
    DNIC_ACTION_PREDICT, /* --predict DATA: the outputs for DATA's inputs, to -o or stdout */
} dnic_action;

/* What the command line asked for.  The strings point into argv; `overrides` is the parser's. */
typedef struct dnic_options {
    const char *path;
    const char **overrides;  /* --set texts, in order */
    int noverrides;
    dnic_action action;
    bool dump_ast, dump_ir, emit_dot;
    const char *emit_llvm, *emit_asm;
    const char *out_path, *header_path, *prefix, *cpu, *target; /* -c (out_path: --predict's too) */
    const char *predict;     /* --predict: the data file */
    const char *save_weights, *load_weights, *save_init, *export_data, *log_csv, *save_predictions;
    const char *plot_svg;    /* --plot: the run's curves */
    const char *save_best;   /* --save-best: the weights with the lowest validation (else test) loss */
    bool plot_time;          /* --plot-x time: against wall time, not steps */
    const char *checkpoint, *resume;
    const char *vary[8];     /* --vary KEY=V1,V2,...: each one an axis of the grid */
    int nvary;
    long long checkpoint_every;
    int progress;            /* -1: when stderr is a terminal */
    dnic_schedule schedule;  /* --schedule */
    int threads;             /* --threads (0: the number of cores) */
    bool no_cache;           /* --no-cache: always compile, never read or write the object cache */
    const char *placement;   /* --placement N0,N1,...: each MPI rank's number of stages */
    int replicas;            /* --replicas R (0: not given, one copy of each stage) */
    bool probe;              /* --probe: at every report, how close each SG module is to the true gradient */
} dnic_options;

/* ---- options.c: the option table, the parser, the rules between options, --help ---------- */
/* Reads argv into *o (o->overrides is allocated: the caller frees it).  Returns true to go
 * on; false, with the exit status in *rc, after --help, --version or a reported mistake. */
bool cli_parse_options(int argc, char **argv, dnic_options *o, int *rc);
/* `dnic: error: ` fmt (with arg) and a pointer to --help; returns DNIC_EXIT_USER. */
int cli_bad_flag(const char *fmt, const char *arg);

/* ---- driver.c: the pipeline ------------------------------------------------------------- */
/* Load, parse, apply the overrides, check, build and verify the IR, dump what was asked, then
 * run or write an object.  Returns an exit status. */
int dnic_compile(const dnic_options *o);

/* ---- probe.c: --probe ---------------------------------------------------------------------- */
/* Whether the model can be probed (DNI mode with SG modules, no recurrent layer for the true
 * gradient to go through); false after a diagnostic naming --probe. */
bool cli_probe_check(dnic_diag *d, const dnic_model *m);
/* The report line's probe part, ` Probe:[NAME cos=.. norm=.. boot=.. true=..] ...`. */
void cli_probe_print(FILE *out, const dnic_model *m, const dnic_report *r, bool sum);
/* The log's probe columns: their names, and a row's values. */
void cli_probe_log_header(FILE *out, const dnic_model *m);
void cli_probe_log_row(FILE *out, const dnic_model *m, const dnic_report *r);

/* ---- summary.c: what --check prints ----------------------------------------------------- */
/* The `FILE: ok: model M, N layers, K SG modules, S stages, MODE` line, then per layer and SG
 * module its kind, output width, parameters, flops per step and stage, and the totals (for a
 * DNI model also those of the same model trained by backprop, from a second IR built in a). */
void cli_print_model_summary(dnic_arena *a, const char *path, const dnic_model *m, const dnic_ir *ir);

/* ---- vary.c ----------------------------------------------------------------------------- */
/* --vary: one run per point of the grid the --vary options span (their values' product), then
 * a comparison table; a failed variant is reported and the others still run. */
int dnic_vary(const dnic_options *o);

/* ---- curriculum.c: the copy tasks' curriculum within one run ------------------------------ */
/* Where a curriculum run is (data copy/repeat_copy with `curriculum`). */
typedef struct cli_curriculum {
    dnic_arena *a;           /* the AST's arena (its overrides of data.length go there) */
    dnic_ast *ast;
    int length, max_length;  /* the length being trained, and the last one */
    double threshold;        /* the data's curriculum: wrong bits per test sequence */
    int solved;              /* the longest length whose test score fell below it (0: none) */
    double errors;           /* the score that solved it */
    long long at;            /* ... and the step it was reached at */
    long long origin;        /* the step the current length began at (0 at the first) */
    int first_length;        /* the data's length: where the run began */
    long long per_pass;      /* a length begins at a multiple of these steps (first_step's rule) */
    long long budget;        /* the steps of the whole run (train.steps, or epochs' steps) */
    char text[256];          /* the state above as a checkpoint keeps it (dnic.curriculum) */
} cli_curriculum;
void cli_curriculum_init(cli_curriculum *c, dnic_arena *a, dnic_ast *ast, const dnic_model *m);
/* A dnic_train_opts.stop_if (user: the cli_curriculum): whether the test score of the report
 * r falls below the threshold (the length is then solved). */
int cli_curriculum_met(void *user, const dnic_report *r);
/* Before a run (and --check): the model at the next length has the same parameters and
 * optimiser state, by name and shape; false after a diagnostic at the data block. */
bool cli_curriculum_check(cli_curriculum *c, dnic_diag *d, const dnic_model *m, const dnic_ir *ir);
/* The model at the next length, checked, lowered and verified in the arena `in`; false after
 * its diagnostics. */
bool cli_curriculum_next(cli_curriculum *c, dnic_diag *d, dnic_arena *in, const dnic_model **m, const dnic_ir **ir);
/* Resuming checkpoint `ckpt` of a curriculum run: its dnic.curriculum state, validated, goes
 * into c, and the model at its length is checked and lowered in the arena `in`; false after a
 * diagnostic naming the file and field. */
bool cli_curriculum_resume(cli_curriculum *c, dnic_diag *d, const char *ckpt, dnic_arena *in, const dnic_model **m,
                           const dnic_ir **ir);
/* Copies every parameter and optimiser state buffer of `from` (the model at length L, m) to the
 * buffer of the same name in `to`; false after a diagnostic when they do not match. */
bool cli_carry_state(dnic_diag *d, const dnic_model *m, dnic_program *to, const dnic_program *from, int L);

/* ---- run.c: a training session ---------------------------------------------------------- */
/* Compiles the IR, builds the data and trains, printing report lines and a summary.  With a
 * curriculum (cur, else NULL) the session goes on at each next length the test score earns. */
int dnic_run(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o, cli_curriculum *cur);

/* Where compiled code is cached: $DNIC_CACHE_DIR, else $XDG_CACHE_HOME/dnic, else
 * $HOME/.cache/dnic; NULL (no cache) when none of them is set. */
const char *cli_cache_dir(dnic_arena *a);
/* The program the IR describes, for the JIT to fill in and the runtime to run; its arrays
 * live in `a`. */
dnic_program cli_describe_program(dnic_arena *a, const dnic_model *m, const dnic_ir *ir);
/* How the model's loss scores a data set. */
dnic_eval_kind cli_eval_kind(const dnic_model *m);

/* ---- eval.c: --eval and --predict --------------------------------------------------------- */
/* Both JIT-compile only the predict block and run it on --load-weights; they return an exit
 * status. */
int dnic_eval(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o);
int dnic_predict(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o);

/* ---- data.c ----------------------------------------------------------------------------- */
/* The training, test and validation sets the model declares (built-in data is drawn from
 * `rng` unless the data block has its own seed; validation is a view into the training
 * set's arrays).  IDX gzip files are decoded through the data cache in cache_dir (NULL: none).
 * False after a diagnostic; train and test are the caller's to free. */
typedef struct cli_data_times {
    double ms, cpu_ms; /* wall time, and this thread's CPU time */
    int cached;        /* files read from the data cache */
} cli_data_times;
bool cli_make_data(dnic_diag *d, const dnic_model *m, dnic_rng *rng, dnic_dataset *train, dnic_dataset *test,
                   dnic_dataset *val, const char *cache_dir, cli_data_times *t);

/* --check and --run: the declared `inputs` against the data files' headers (IDX dimensions,
 * CSV columns), read without the data; false after a diagnostic at the `inputs` setting. */
bool cli_check_data_widths(dnic_diag *d, const dnic_model *m);

/* ---- log.c: --log, and the log --plot draws from ----------------------------------------- */
typedef struct cli_log {
    FILE *f;               /* NULL: nothing is logged; else out.f */
    dnic_atomic_file out;  /* the log is written to a temporary, renamed into place at the end */
    const char *path;      /* --log, or plot_tmp */
    char plot_tmp[32];     /* a temporary log when --plot is asked for without --log */
    bool val, test;        /* the log has validation / test columns */
    long long rows;
    const dnic_model *m;
} cli_log;
/* Opens the log a run writes (none without --log or --plot); false after a diagnostic. */
bool cli_log_open(cli_log *l, dnic_diag *d, const dnic_model *m, int nsg, const char *log_csv, const char *plot_svg,
                  bool val, bool test);
void cli_log_row(cli_log *l, const dnic_report *r);
/* Closes the log (kept when the run got somewhere) and draws --plot from it; false when the
 * log or the chart could not be written. */
bool cli_log_finish(cli_log *l, dnic_diag *d, const dnic_model *m, const char *plot_svg, bool plot_time,
                    dnic_status status);

/* ---- report_print.c ---------------------------------------------------------------------- */
typedef struct cli_reporter {
    const dnic_model *m;
    cli_log *log;
    dnic_diag *d;              /* the training warnings go here */
    long long lines;           /* report lines printed so far */
    double last_loss;          /* the previous line's loss (sum) per example */
    bool warned_chance, warned_still; /* each training warning is given once per run */
    double elapsed_before;     /* a curriculum: the training seconds of the lengths before this one */
} cli_reporter;
/* A dnic_report_fn (user: a cli_reporter): the report line in the seeds' format, and the log's row. */
void cli_print_report(void *user, const dnic_report *r);
struct dnic_jit_times;
/* The closing `# model: N steps in ...` line. */
void cli_print_summary(const dnic_model *m, const dnic_ir *ir, const dnic_train_result *res,
                       const struct dnic_jit_times *jt, const cli_data_times *dt, const dnic_sched_plan *plan);

/* ---- outputs.c: the files a run writes besides the log ------------------------------------ */
/* Fails early, before any compiling or training, when an output file's directory cannot be
 * written (NULL: nothing to write). */
bool cli_writable(dnic_diag *d, const char *path);
/* Every output file of `o` that dnic_run would write (a diagnostic for each that cannot be). */
bool cli_outputs_writable(dnic_diag *d, const dnic_options *o);
bool cli_save_weights(dnic_diag *d, const dnic_program *p, const char *path);
/* --export-data: the training set as the model sees it, in its dtype. */
bool cli_export_data(dnic_diag *d, const dnic_dataset *ds, const char *path);
/* --save-predictions: the trained model's outputs for the training inputs. */
bool cli_save_predictions(dnic_diag *d, dnic_program *p, const dnic_dataset *ds, const char *path);

/* ---- checkpoint.c: what --checkpoint and --resume need from the command ------------------- */
/* A model's identity for checkpoints: FNV-1a of its IR's text (shapes, ops), without the
 * learning rates (they may change on resume). */
uint64_t cli_fingerprint(const dnic_ir *ir);
/* The checked model's data and train settings as "key = value" lines (malloc'd), which a
 * checkpoint keeps as its dnic.settings text. */
char *cli_settings(const dnic_model *m);
/* A text a checkpoint keeps (dnic.model, dnic.model_path, dnic.overrides, dnic.settings),
 * malloc'd; NULL when the file has none. */
char *cli_checkpoint_text(const char *path, const char *name, char *err, size_t errlen);
/* The shortest text that reads back as v exactly ("%.Ng"), into buf; returns buf. */
const char *cli_real(char *buf, size_t n, double v);
/* The value of `key` in a settings text ("key = value" lines), copied into v; false if absent. */
bool cli_setting_of(const char *text, const char *key, char *v, size_t n);
/* Resuming checkpoint `ckpt` with the settings `now`: a note for each setting that differs
 * and may (epochs, steps, lr, report_every, patience), an error naming each other one; false
 * after an error. */
bool cli_resume_check(dnic_diag *d, const char *ckpt, const char *now);
/* Clears the flag and catches SIGINT/SIGTERM: the first sets the flag (training stops at the
 * next step boundary, saving the checkpoint), a second exits at once.  Returns the flag. */
volatile int *cli_catch_interrupts(void);

/* ---- distribute.c: runs over MPI ranks (mpirun -np K dnic M.dni --run) ------------------- */
struct dnic_comm;
struct dnic_dist;
/* Starts MPI when mpirun launched this process or `asked` (--schedule mpi); false after a
 * message (MPI failed, or this dnic was built without it). */
bool cli_mpi_begin(int *argc, char ***argv, bool asked);
/* The job's transport once started, else NULL; this process's rank (0 without MPI). */
struct dnic_comm *cli_mpi_comm(void);
/* --replicas R, once every rank is ready: the job becomes R pipelines (false after a message). */
bool cli_mpi_replicate(int replicas);
int cli_mpi_rank(void);
/* Before training: every rank says it is ready, or its exit status; false when some rank is
 * not (rank 0 has printed that rank's messages).  Only the first call agrees. */
bool cli_mpi_ready(bool ok, int rc);
/* Ends the job: a rank that has not agreed yet says it stopped with rc; returns the process's
 * exit status (rank 0: the job's; other ranks: 0). */
int cli_mpi_end(int rc);
/* Where the stages run (--placement, else balanced contiguous groups) and what crosses between
 * them, from the IR; false after a diagnostic.  Arrays live in `a`. */
bool cli_dist_layout(dnic_arena *a, dnic_diag *d, const dnic_ir *ir, const dnic_program *p, const dnic_options *o,
                     struct dnic_dist *dist);

/* ---- object.c ----------------------------------------------------------------------------- */
/* -c: the object and header; fills in the default paths and prefix. */
int dnic_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o);

#endif
