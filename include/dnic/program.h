/* The one source of truth for what generated code and the runtime share: buffer and block
 * descriptors, the kernel signature, and the runtime's program and training API.
 *
 * Usage sketch (what `dnic --run` does after code generation):
 *     dnic_program p;  dnic_program_init(&p, bufs, nbufs, blocks, nblocks, dtype, batch);
 *     for each block b: p.blocks[b].fn = <JIT-compiled function>;
 *     dnic_program_alloc(&p);  dnic_program_init_params(&p, &rng);
 *     dnic_train(&p, &data, &opts, &report);   ...   dnic_program_free(&p);
 */
#ifndef DNIC_PROGRAM_H
#define DNIC_PROGRAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum dnic_dtype { DNIC_F32, DNIC_F64 } dnic_dtype;

typedef enum dnic_status {
    DNIC_OK = 0,
    DNIC_ERR_NOMEM,
    DNIC_ERR_NONFINITE, /* NaN or Inf in a loss or weight */
    DNIC_ERR_ARG,
    DNIC_ERR_IO,
    DNIC_ERR_INTERRUPTED, /* stopped by *interrupt (after saving the checkpoint, if asked) */
} dnic_status;

typedef enum dnic_buf_kind {
    DNIC_BUF_INPUT,  /* the batch's x rows (points into the dataset) */
    DNIC_BUF_LABELS, /* the batch's y rows */
    DNIC_BUF_PARAM,  /* weights and biases: initialised, saved, updated in place */
    DNIC_BUF_TEMP,   /* activations, gradients and messages of one step */
    DNIC_BUF_ACC,    /* float64 [1,1] loss accumulators, zeroed by the runtime */
    DNIC_BUF_STATE,  /* optimiser state (zero at the start): kept by checkpoints, not weights files */
} dnic_buf_kind;

/* How a parameter is initialised: value = draw * scale + shift, where draw is a numpy-legacy
 * randn or rand draw (DNIC_DRAW_NONE: value = shift, no draws). */
typedef enum dnic_draw { DNIC_DRAW_NONE, DNIC_DRAW_RANDN, DNIC_DRAW_RAND } dnic_draw;

typedef struct dnic_buffer_desc {
    const char *name;   /* stable: "h1.weight", "h1.sg.bias", "h1.out", ... */
    dnic_buf_kind kind;
    dnic_dtype dtype;   /* ACC buffers are always DNIC_F64 */
    int rows, cols;
    dnic_draw draw;     /* PARAM only */
    double scale, shift;
    int init_order;     /* PARAM: position in the seeded draw order, -1 for none */
} dnic_buffer_desc;

typedef enum dnic_block_phase {
    DNIC_PHASE_STEP,      /* forward, synthetic or true gradient, update, message */
    DNIC_PHASE_SG_UPDATE, /* the SG module regresses toward the target that arrived */
    DNIC_PHASE_PREDICT,   /* inference only: the forward pass, never run by training */
    DNIC_PHASE_PROBE,     /* at a report (--probe): the true gradient at each SG module on the
                             probe batch, updating nothing; never run by training */
    DNIC_PHASE_WARMUP,    /* train.warmup: a whole step by backpropagation, run alone, in place
                             of the others, in the first steps */
    DNIC_PHASE_STREAM,    /* objects of models with recurrent layers: the forward pass from the
                             carried states in their buffers, leaving the last states in others */
} dnic_block_phase;

/* Whether a block of this phase is part of the training step (STEP, SG_UPDATE). */
#define DNIC_PHASE_TRAINS(ph) ((ph) < DNIC_PHASE_PREDICT)

/* Every generated block has this signature: bufs[i] is the memory of buffer i. */
typedef void (*dnic_block_fn)(void *const *bufs);

/* Generated code splits a large matrix product's column panels across threads through
 * dnic_parallel_for: fn(ctx, lo, hi) is called on contiguous parts of [0, n) that together
 * cover it once, on the calling thread and the pool's; it returns when all are done.  Each
 * part computes its own outputs, so the results do not depend on the number of threads or on
 * which thread runs which part (parts go to whichever thread claims them first).
 * The pool has 1 thread (everything runs on the caller) until dnic_parallel_set_threads;
 * a call made while another thread is using the pool runs on the caller alone. */
typedef void (*dnic_range_fn)(void *ctx, long long lo, long long hi);
void dnic_parallel_for(dnic_range_fn fn, void *ctx, long long n);
void dnic_parallel_set_threads(int n); /* 1..64, the caller included */
int dnic_parallel_threads(void);
long long dnic_parallel_splits(void); /* calls so far that split their range over the pool */
/* A function the caller of dnic_parallel_for runs before a large product and between its parts
 * (NULL: none).  A run over MPI makes its messages progress there: Open MPI moves a large
 * message only while the sending and receiving processes are inside an MPI call. */
void dnic_parallel_set_progress(void (*hook)(void));
/* Helpers: n threads outside the pool (a pipeline's stage threads) that run parts of the
 * current call while they wait for something else, by calling dnic_parallel_help; a call then
 * splits its range for 1 + n threads, and after publishing its parts calls wake(arg), so that
 * a helper asleep on its own condition can look.  n = 0 (and wake NULL): none. */
void dnic_parallel_set_helpers(int n, void (*wake)(void *), void *arg);
/* Whether a call's parts are waiting for a thread (only with helpers), and runs them until
 * none is left unclaimed; true if it ran any. */
bool dnic_parallel_helpable(void);
bool dnic_parallel_help(void);
/* Programs built for a data-parallel run (dnic --replicas R under mpirun, docs/scheduler.md)
 * call this to replace a gradient of n elements (float64 when is_f64, else float32) by its sum
 * over the replicas; the run's transport does it, in a fixed order (runtime/replica.c).  With
 * no run over replicas in progress it leaves buf as it is. */
void dnic_replica_sum(void *buf, long long n, int is_f64);

typedef struct dnic_block_desc {
    const char *name;
    int stage;
    dnic_block_phase phase;
    dnic_block_fn fn;
    int acc;           /* the accumulator the block adds to, or -1 */
    double cost;       /* estimated floating-point operations per run, for placing stages */
    int reads;         /* DNIC_READS_X | DNIC_READS_Y: which of the batch's inputs it reads */
    /* The stages whose STEP block of the same step must have run before this block's (its
     * imports come from them).  waits == NULL: a chain, STEP_k waits for STEP_{k-1} and
     * SG_UPDATE_k for STEP_{k+1}. */
    const int *waits;
    int nwaits;
} dnic_block_desc;

enum { DNIC_READS_X = 1, DNIC_READS_Y = 2 };

/* Ownership: a program owns `mem` and `ptrs`; descriptors are borrowed and must outlive it. */
typedef struct dnic_program {
    const dnic_buffer_desc *bufs;
    int nbufs;
    dnic_block_desc *blocks;
    int nblocks;
    dnic_dtype dtype;
    int batch;
    int x, y;              /* input and label buffers */
    int out;               /* the output layer's activations (what predict returns) */
    int loss_acc;          /* accumulator behind the report's Loss */
    const int *sg_acc;     /* one accumulator per SG module */
    const char *const *sg_names;
    int nsg;
    const int *probe;      /* with a PROBE block: per SG module its prediction, true gradient and
                              bootstrapped target there (3 buffers each); else NULL */
    int nstages;
    /* train.update_prob: per stage, the TEMP [1,1] buffer that holds its step's updates when set
     * to 1 (the runtime sets it before each step), or NULL; zero, as allocated, updates */
    const int *stage_hold;
    /* some stage reads a synthetic input (sg NAME.input), not the stage before it: each
     * iteration runs every SG update before any step, and a step waits for every stage's SG
     * updates of the step whose slot it reuses (sched.c) */
    int unlocked;
    int nslots;            /* copies of every temporary: 1 + the schedule's lag (set before alloc) */
    void **ptrs;           /* ptrs[i]: buffer i's memory (slot 0) */
    void ***slot_ptrs;     /* slot_ptrs[s][i]: buffer i in slot s (parameters are shared) */
    void *mem;             /* one allocation for every owned buffer */
} dnic_program;

size_t dnic_dtype_size(dnic_dtype t);
/* Allocates every buffer but the input and labels (which point into the dataset). */
dnic_status dnic_program_alloc(dnic_program *p);
void dnic_program_free(dnic_program *p);
/* Index of the buffer called `name`, or -1. */
int dnic_program_find(const dnic_program *p, const char *name);

/* ---- data ------------------------------------------------------------------------------- */
/* A dataset in the model's dtype, rows of x and y back to back.  Owns x and y.  x may hold
 * bytes instead (x_bytes, the pixels of an IDX ubyte file kept as they are stored: a quarter
 * of float32's memory): value = (dtype)(byte * x_scale), computed in float64 when a batch is
 * assembled, which gives exactly the values converting the whole file would give.  Read rows
 * of x through dnic_dataset_rows, which works for both. */
typedef struct dnic_dataset {
    int n, inputs, labels;
    dnic_dtype dtype;
    void *x, *y;
    bool x_bytes;     /* x is unsigned bytes, scaled by x_scale on reading */
    double x_scale;
} dnic_dataset;

/* The bytes of one element of x as stored (1 when x_bytes, else the dtype's size). */
size_t dnic_dataset_x_size(const dnic_dataset *d);
/* Copies `count` rows of x, in dtype, to dst: rows[i] when rows is not NULL, else rows
 * first, first + 1, ... */
void dnic_dataset_rows(const dnic_dataset *d, void *dst, const int *rows, size_t first, int count);

/* Memory for a large array (a dataset's, the program's buffers): 64-byte aligned, and in 2 MiB
 * pages (transparent huge pages, advised) from 4 MiB on; freed with free().  NULL when out of
 * memory. */
void *dnic_alloc_pages(size_t bytes);

/* Takes float64 rows and stores them in `dtype`; returns DNIC_ERR_NOMEM on failure. */
dnic_status dnic_dataset_from_f64(dnic_dataset *d, dnic_dtype dtype, int n, int inputs, int labels, const double *x,
                                  const double *y);
void dnic_dataset_free(dnic_dataset *d);

/* ---- initialisation --------------------------------------------------------------------- */
struct dnic_rng;
/* Draws every parameter in init_order from the stream: value = draw * scale + shift, computed
 * in float64 as numpy does and stored in the program's dtype. */
void dnic_program_init_params(dnic_program *p, struct dnic_rng *rng);

/* ---- training (sched.c) ----------------------------------------------------------------- */
/* DNIC_SCHED_MPI: the stages are spread over the ranks of an MPI job (dnic_train_opts.dist) */
typedef enum dnic_schedule { DNIC_SCHED_AUTO, DNIC_SCHED_SEQUENTIAL, DNIC_SCHED_PIPELINE, DNIC_SCHED_MPI } dnic_schedule;

/* Test-set scoring: the loss per example, and accuracy as the class with the largest output
 * (softmax) or as every output rounded to the label (sigmoid and squared error). */
typedef enum dnic_eval_kind { DNIC_EVAL_SQUARED, DNIC_EVAL_SOFTMAX_CE, DNIC_EVAL_SIGMOID_CE } dnic_eval_kind;

struct dnic_report;
typedef struct dnic_train_opts {
    long long epochs, steps;    /* exactly one is > 0; an epoch is floor(n / batch) steps */
    long long report_every;     /* in epochs, or in steps when steps > 0 */
    int progress;               /* draw a progress line on stderr */
    int progress_sum;           /* its loss is the pass's running sum; else the mean per example */
    int lag;                    /* d: the SG target of step t is applied before step t+1+d */
    dnic_schedule schedule;     /* AUTO: the planner decides (dnic_plan_schedule) */
    int threads;                /* pipeline threads (0: the number of cores) */
    int shuffle;                /* visit the examples in a new seeded order every epoch */
    uint32_t seed;              /* the shuffle's seed, and the update mask's */
    long long warmup;           /* with a DNIC_PHASE_WARMUP block: the first steps run it alone */
    double update_prob;         /* with p->stage_hold: each stage updates in a step with this
                                 * probability, drawn from a stream seeded by (seed, step) */
    const struct dnic_dataset *test; /* evaluated at every reported pass, or NULL */
    const struct dnic_dataset *validation; /* likewise: examples held out of training, or NULL */
    dnic_eval_kind eval;        /* how to score the test set */
    const char *checkpoint;     /* where to save the whole training state, or NULL */
    long long checkpoint_every; /* in epochs (steps when steps > 0); 0: only at the end or on interrupt */
    const char *resume;         /* a checkpoint to continue from, or NULL */
    uint64_t fingerprint;       /* identifies the model a checkpoint belongs to */
    volatile int *interrupt;    /* set (by a signal handler) to stop at the next step boundary */
    long long interrupt_at;     /* tests: behave as if interrupted once this many steps are done */
    const char *save_best;      /* at each evaluation whose validation loss (the test loss without a
                                 * validation set) is the lowest yet, the weights are saved here; or NULL */
    long long patience;         /* > 0: stop after this many evaluations in a row without improvement */
    /* texts a checkpoint keeps besides the state (the command's model and settings): text i
     * as a float64 tensor named text_names[i] holding its bytes and a NUL, zero-padded */
    const char *const *text_names, *const *texts;
    int ntexts;
    /* a run over several processes (runtime/dist.h: the transport and where the stages go), or
     * NULL; every process calls dnic_train alike, and only rank 0 reports and checkpoints */
    const struct dnic_dist *dist;
    int probe;                  /* at every report, run the PROBE block on the probe batch (the
                                 * first `batch` training examples) and report what it found */
    /* A curriculum (docs/semantics.md, "Curriculum"): after each evaluation of the test set,
     * stop_if(stop_user, r) with the pass's scores (r->step, r->has_test, r->test_*); when it
     * returns nonzero the run ends after that pass, its lagged SG updates applied, as a run
     * whose last step it was would (res->cut; at the last step, only res->cut).  Only the
     * sequential schedule; NULL: never. */
    int (*stop_if)(void *user, const struct dnic_report *r);
    void *stop_user;
    /* > 0: this call continues a run whose steps before first_step were taken by an earlier
     * call (on another program: the curriculum's previous length), every SG update of them
     * applied: the steps are numbered from first_step (a multiple of the pass length), and the
     * data set is read from its first example at first_step, as a run's at step 0.  With
     * `resume` it names where the checkpoint's length began (the checkpoint gives the steps) */
    long long first_step;
    /* > 0, with `resume`: stop_if ended the checkpointed run after step cut_at (the length was
     * solved there); the resumed run ends there too, as that one did (res->cut) */
    long long cut_at;
} dnic_train_opts;

/* What the scheduler will do for these options: the schedule, the threads, and for a pipeline
 * the first stage of each thread (stage_of_thread[0..threads]).  `why` explains the choice. */
typedef struct dnic_sched_plan {
    dnic_schedule schedule;
    int threads;
    int first_stage[65];
    char why[160];
} dnic_sched_plan;
void dnic_plan_schedule(const dnic_program *p, const dnic_train_opts *o, dnic_sched_plan *plan);
/* Contiguous groups of stages for `groups` threads or processes, the busiest group with the
 * least estimated work (a linear partition): group g runs stages first_stage[g] ..
 * first_stage[g+1]-1 (first_stage has groups + 1 entries; 1 <= groups <= 64). */
void dnic_plan_groups(const dnic_program *p, int groups, int *first_stage);

typedef struct dnic_report {
    long long iter;             /* the epoch (or step) index the report closes, from 0 */
    long long step;             /* steps done so far */
    double loss;                /* summed over the report's pass */
    long long examples;         /* the examples that loss and sg_loss sum over (steps x batch) */
    const double *sg_loss;      /* one per SG module */
    int nsg;
    double elapsed;             /* seconds since training began */
    int has_test;               /* test_loss, test_accuracy and test_errors are set */
    double test_loss;           /* mean loss per test example */
    double test_accuracy;       /* fraction of test examples right */
    double test_errors;         /* outputs on the wrong side of 0.5 per test example */
    int has_validation;         /* the same for the validation set */
    double val_loss, val_accuracy;
    /* probes (dnic_train_opts.probe), or NULL: per SG module 4 values, DNIC_PROBE_* */
    const double *probe;
} dnic_report;
/* What a probe measures at an SG module on the probe batch, as the whole [batch, width]
 * matrices: cos(synthetic, true gradient), |synthetic| / |true|, sum |synthetic - bootstrapped
 * target| and sum |synthetic - true gradient| (float64). */
enum { DNIC_PROBE_COS, DNIC_PROBE_NORM, DNIC_PROBE_SG_BOOT, DNIC_PROBE_SG_TRUE, DNIC_PROBE_COUNT };

typedef void (*dnic_report_fn)(void *user, const dnic_report *r);

typedef struct dnic_train_result {
    long long steps;
    double seconds;
    dnic_status status;
    long long bad_step;         /* DNIC_ERR_NONFINITE: the step, and the first bad buffer */
    const char *bad_buffer;
    char error[512];            /* DNIC_ERR_IO: what went wrong with a checkpoint */
    int checkpointed;           /* a checkpoint was written */
    long long steps_run;        /* the steps this call took (steps minus a resumed checkpoint's) */
    long long best_iter;        /* save_best / patience: the report (epoch or step index) with the
                                 * lowest loss, -1 if none; and that loss */
    double best_loss;
    int best_saved;             /* save_best was written */
    int stopped_early;          /* patience ran out: status is DNIC_OK, steps < the run's */
    int cut;                    /* stop_if ended the run after `steps` steps (status DNIC_OK) */
} dnic_train_result;

/* One step on one batch: points the input and labels at x and y and runs the training
 * blocks in plan order. */
void dnic_program_step(dnic_program *p, const void *x, const void *y);
/* The model's outputs for n rows of x, a batch at a time through `xpad` (one batch of the
 * input's size; the last batch is padded with zeros). */
void dnic_program_predict(dnic_program *p, void *xpad, const void *x, void *y, int n);
/* The same through pointer array `ptrs` (a slot of its own while training runs). */
void dnic_program_predict_in(dnic_program *p, void **ptrs, void *xpad, const void *x, void *y, int n);
/* The outputs for every row of d (whatever its x's storage), as dnic_program_predict_in. */
void dnic_program_predict_set(dnic_program *p, void **ptrs, void *xpad, const struct dnic_dataset *d, void *y);
/* Scores the model on a dataset: mean loss per example and the fraction right; and when
 * errors is not NULL, the mean number of outputs per example on the wrong side of 0.5 (the
 * copy tasks' wrong bits per sequence). */
dnic_status dnic_evaluate(dnic_program *p, void **ptrs, const struct dnic_dataset *d, dnic_eval_kind kind, double *loss,
                          double *accuracy, double *errors);
/* Runs the PROBE block through `ptrs` (a slot of its own while training runs) on the probe
 * batch, the first `batch` rows of d, and writes DNIC_PROBE_COUNT values per SG module to out
 * (NaN for a module the probe does not measure: one at truncation boundaries). */
void dnic_probe(dnic_program *p, void **ptrs, const struct dnic_dataset *d, double *out);
/* Whether stage k updates in step t (from 0) with train.update_prob = p, train.seed = seed. */
int dnic_stage_updates(uint32_t seed, long long t, int k, double p);
/* Zeroes every float64 accumulator. */
void dnic_program_zero_accs(dnic_program *p);

dnic_status dnic_train(dnic_program *p, const dnic_dataset *d, const dnic_train_opts *o, dnic_report_fn report,
                       void *user, dnic_train_result *res);

#endif
