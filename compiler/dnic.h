/* The compiler's shared internal header and its architecture index, one section per file:
 * arena -> diag -> ast (+ parser) -> override -> check -> ir_build -> ir_verify -> ir_print/dot.
 * The LLVM half (codegen -> backend -> jit or emit) has its own header, codegen.h, so that
 * this one stays LLVM-free. */
#ifndef DNIC_H
#define DNIC_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "dnic/program.h"

/* Broken invariants abort with the C file and line (QBE die, GGML_ASSERT); user mistakes are
 * diagnostics (diag.c). */
#define DNIC_ASSERT(c) ((c) ? (void)0 : dnic_die(__FILE__, __LINE__, #c))
_Noreturn void dnic_die(const char *file, int line, const char *what);

/* ---- arena.c: compile-time memory, freed all at once --------------------------------- */
/* Ownership: everything the front end builds (AST, model, IR, strings) lives in one arena
 * and is freed by dnic_arena_free; nothing in it is freed alone. */
typedef struct dnic_arena dnic_arena;
dnic_arena *dnic_arena_new(void);
void dnic_arena_free(dnic_arena *a);
void *dnic_alloc(dnic_arena *a, size_t n); /* zeroed, aborts on out of memory */
char *dnic_strdup(dnic_arena *a, const char *s);
char *dnic_strndup(dnic_arena *a, const char *s, size_t n);
char *dnic_sprintf(dnic_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Growable arrays of pointers, in the arena. */
typedef struct dnic_vec { void **v; int n, cap; } dnic_vec;
void dnic_vec_push(dnic_arena *a, dnic_vec *vec, void *p);

/* ---- diag.c: sources and clang-style diagnostics --------------------------------------- */
typedef struct dnic_source {
    const char *name; /* as diagnostics show it: the path, or "--set" for an override */
    const char *text; /* NUL-terminated */
    size_t len;
} dnic_source;

/* A source span: 1-based line and column of the first character, and of one past the last
 * (end_col), on lines line..end_line.  src may be NULL for spans with no place. */
typedef struct dnic_span {
    const dnic_source *src;
    int line, col, end_line, end_col;
} dnic_span;

typedef struct dnic_diag {
    FILE *out;
    int errors, warnings;
    int max_errors; /* stop printing after this many (0 = 20) */
} dnic_diag;

/* Exit statuses of the dnic command, also returned by the steps that end it (dnic_emit_object):
 * 0 success, 1 the user's input is wrong, 2 an internal error. */
enum { DNIC_EXIT_OK = 0, DNIC_EXIT_USER = 1, DNIC_EXIT_INTERNAL = 2 };

void dnic_diag_init(dnic_diag *d, FILE *out);
/* `file:line:col: error: msg`, the source line, and ^~~ under the span. */
void dnic_error(dnic_diag *d, dnic_span sp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
void dnic_warning(dnic_diag *d, dnic_span sp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A note attached to the previous diagnostic (no caret when sp.src is NULL). */
void dnic_note(dnic_diag *d, dnic_span sp, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* The closest of `n` candidates to `name` by edit distance, or NULL if none is close. */
const char *dnic_did_you_mean(const char *name, const char *const *cands, int n);
dnic_source *dnic_source_load(dnic_arena *a, dnic_diag *d, const char *path);
dnic_source *dnic_source_from_string(dnic_arena *a, const char *name, const char *text);
dnic_span dnic_span_join(dnic_span a, dnic_span b);

/* ---- ast.c (built by grammar/parser.y): the syntax tree -------------------------------- */
typedef enum dnic_expr_kind {
    EXPR_NUM, EXPR_STR, EXPR_NAME, EXPR_CALL, EXPR_LIST, EXPR_BINARY, EXPR_NEG,
} dnic_expr_kind;

typedef struct dnic_expr dnic_expr;
typedef struct dnic_arg {
    const char *name; /* NULL for a positional argument */
    dnic_span name_span;
    dnic_expr *value;
} dnic_arg;

struct dnic_expr {
    dnic_expr_kind kind;
    dnic_span span;
    double num;       /* EXPR_NUM */
    bool is_int;      /* EXPR_NUM written without '.', 'e' */
    const char *str;  /* EXPR_STR contents, EXPR_NAME / EXPR_CALL name */
    char op;          /* EXPR_BINARY: + - * / */
    dnic_expr *lhs, *rhs; /* EXPR_BINARY; EXPR_NEG uses lhs */
    dnic_vec args;    /* EXPR_CALL: dnic_arg*; EXPR_LIST: dnic_expr* */
};

typedef struct dnic_setting {
    const char *key;
    dnic_span key_span;
    dnic_expr *value;
    bool overridden; /* value came from --set */
} dnic_setting;

typedef enum dnic_decl_kind { DECL_DATA, DECL_LAYER, DECL_SG, DECL_LOSS, DECL_TRAIN } dnic_decl_kind;

typedef struct dnic_decl {
    dnic_decl_kind kind;
    dnic_span span;      /* the keyword */
    const char *name;    /* layer and sg: the layer's name; data: the source kind; else NULL */
    dnic_span name_span;
    dnic_expr *call;     /* layer: dense(...); loss: squared_error(...); else NULL */
    dnic_vec settings;   /* dnic_setting* in source order */
} dnic_decl;

typedef struct dnic_ast {
    const dnic_source *src;
    const char *model;
    dnic_span model_span;
    dnic_vec decls; /* dnic_decl* in source order */
} dnic_ast;

const char *dnic_decl_kind_name(dnic_decl_kind k);
dnic_expr *dnic_expr_new(dnic_arena *a, dnic_expr_kind k, dnic_span sp);
/* Parses src; returns NULL (with diagnostics) on a lexical or syntax error. */
dnic_ast *dnic_parse(dnic_arena *a, dnic_diag *d, const dnic_source *src);
/* Parses an override value such as "output + labels": src->text from byte `offset` on (the
 * text after '='), with columns counted from the start of src so carets line up. */
dnic_expr *dnic_parse_value(dnic_arena *a, dnic_diag *d, const dnic_source *src, size_t offset);
void dnic_ast_dump(const dnic_ast *ast, FILE *out);
void dnic_expr_print(const dnic_expr *e, FILE *out);

/* ---- override.c: --set key=value, applied to the AST before checking -------------------- */
/* Keys: data.K, train.K, loss.K, layer.NAME.K, sg.NAME.K.  Returns false (with a diagnostic
 * naming the override) when the text is malformed or names nothing. */
bool dnic_apply_override(dnic_arena *a, dnic_diag *d, dnic_ast *ast, const char *text);
/* s[0, n) is a name as the language writes one (and a C identifier). */
bool dnic_is_name(const char *s, size_t n);

/* ---- check.c: names, shapes, values -> the checked model -------------------------------- */
/* The block ("train" or "data") with a setting `name` means, and the setting's name in `key`
 * (`learning_rate` is train's `lr`); NULL when no block has it.  For the command's hints. */
const char *dnic_key_block(const char *name, const char **key);
#define DNIC_ACTIVATIONS(X) X(SIGMOID, "sigmoid") X(TANH, "tanh") X(RELU, "relu") \
    X(LINEAR, "linear") X(SOFTMAX, "softmax")
typedef enum dnic_act {
#define X(e, s) DNIC_ACT_##e,
    DNIC_ACTIVATIONS(X)
#undef X
    DNIC_ACT_COUNT
} dnic_act;
const char *dnic_act_name(dnic_act a);

typedef enum dnic_init_kind {
    DNIC_INIT_ZEROS,        /* no draws */
    DNIC_INIT_RANDN,        /* randn * scale + shift (numpy legacy draws) */
    DNIC_INIT_RAND,         /* rand * scale + shift */
    DNIC_INIT_XAVIER_NORMAL, DNIC_INIT_XAVIER_UNIFORM,
    DNIC_INIT_HE_NORMAL, DNIC_INIT_HE_UNIFORM,
} dnic_init_kind;

typedef struct dnic_init {
    dnic_init_kind kind;
    double scale, shift;
} dnic_init;

typedef enum dnic_sg_part { DNIC_SG_OUTPUT, DNIC_SG_LABELS, DNIC_SG_INPUT } dnic_sg_part;
/* An SG module's target: the messages its layer's readers sent (bootstrapped from later
 * modules), the true gradient of the loss, or lambda * true + (1 - lambda) * bootstrap. */
typedef enum dnic_sg_target { DNIC_TARGET_BOOTSTRAP, DNIC_TARGET_TRUE, DNIC_TARGET_MIX } dnic_sg_target;
typedef enum dnic_loss_kind { DNIC_LOSS_SQUARED, DNIC_LOSS_SOFTMAX_CE, DNIC_LOSS_SIGMOID_CE } dnic_loss_kind;
/* What the report line calls "Loss": sum |out - y| (the DNI seed), sum |dL/dz| at the output
 * pre-activation (the backprop seed), or the loss itself summed over examples. */
typedef enum dnic_report_kind { DNIC_REPORT_ABS_ERROR, DNIC_REPORT_ABS_DELTA, DNIC_REPORT_LOSS } dnic_report_kind;
typedef enum dnic_mode { DNIC_MODE_DNI, DNIC_MODE_BACKPROP } dnic_mode;
typedef enum dnic_message_order { DNIC_MSG_BEFORE_UPDATE, DNIC_MSG_AFTER_UPDATE } dnic_message_order;
typedef enum dnic_optimizer { DNIC_OPT_SGD, DNIC_OPT_MOMENTUM, DNIC_OPT_ADAM } dnic_optimizer;

/* The update rule and its settings (docs/semantics.md, "Optimisers"). */
typedef struct dnic_opt_spec {
    dnic_optimizer kind;
    double momentum;           /* momentum: v = momentum * v + g */
    double beta1, beta2, eps;  /* adam */
} dnic_opt_spec;
typedef enum dnic_data_kind {
    DNIC_DATA_BINADD, DNIC_DATA_IDX, DNIC_DATA_CSV, DNIC_DATA_COPY, DNIC_DATA_REPEAT_COPY
} dnic_data_kind;

typedef struct dnic_sg {
    int layer;                 /* index into model.layers */
    const char *name;          /* the layer's name */
    dnic_span span;
    dnic_sg_part parts[3];     /* the SG input: a concatenation, in order */
    int nparts;
    int in_width;              /* sum of the parts' widths */
    int hidden[8];             /* MLP form: hidden widths; nhidden = 0 is the linear form */
    int nhidden;
    dnic_act hidden_act;
    dnic_init w_init, b_init;  /* the last (linear) unit's weights, every unit's biases */
    dnic_init hidden_init;     /* an mlp's hidden units' weights */
    double lr;
    bool bias;                 /* its units have biases (bias = false: none) */
    bool state;                /* `sg NAME.state`: at a recurrent layer's truncation boundaries */
    dnic_sg_target target;     /* what it regresses on (docs/semantics.md, "Targets") */
    double lambda;             /* target = mix: the true gradient's weight, 0..1 */
    bool input;                /* `sg NAME.input`: a synthetic input, the layer's input predicted
                                * from the model's (docs/semantics.md, "Synthetic inputs") */
    /* its output head (docs/semantics.md, "SG output heads"): the layer receives
     * clip(scale * ghat), ghat = a (head = linear) or sigmoid(a) - y (head = sigmoid) */
    bool head_sigmoid;
    double scale;              /* 1: none */
    double clip;               /* > 0: elementwise bound on what the layer receives; 0: none */
    dnic_span head_span;       /* the head's value, for the check against the labels' width */
} dnic_sg;

typedef struct dnic_layer_kind dnic_layer_kind;

/* A layer of the graph.  What only one kind needs lives in `cfg`, the kind's own struct (a
 * dense layer's widths, bias and initialisers: layer_dense.c), never in a field here. */
typedef struct dnic_layer {
    const char *name;
    dnic_span span;
    const dnic_layer_kind *kind;
    int *src;                  /* its sources: layer indices (all earlier), -1 for the model input */
    int nsrc;
    int out;                   /* output width */
    dnic_act act;              /* the activation of its output (linear when the kind has none) */
    void *cfg;                 /* the kind's settings, in the arena */
    int sg;                    /* index into model.sgs, -1 if none */
    int state_sg;              /* recurrent kinds: the module at its truncation boundaries, or -1 */
    int input_sg;              /* `sg NAME.input`: the module that predicts its input from the
                                * model's input (forward unlocking), or -1 */
    int stage;                 /* the stage it trains in (docs/semantics.md, "Stages") */
    bool trainable;            /* false: its parameters keep their initial values */
    int outputs;               /* its output is this many steps' outputs side by side (a recurrent
                                * layer's `outputs`); 1: one */
    bool chunked;              /* those outputs span its truncation chunks: the per-step layers
                                * after it run chunk by chunk with it (docs/semantics.md) */
    /* copy data: a recurrent layer reading the model input without `steps` (and a per-step
     * dense layer after it without its own) takes its steps from the data's length; this is
     * its number of per-step outputs then (0: its steps are written in the file) */
    int derived_steps;
} dnic_layer;

typedef struct dnic_data_spec {
    dnic_data_kind kind;
    dnic_span span;
    int bits, examples;        /* binary addition, copy and repeat_copy */
    int length, repeats;       /* copy and repeat_copy: the vectors per sequence, the copies */
    int test_examples;         /* copy and repeat_copy: the test sequences (0: no test set) */
    double curriculum;         /* copy and repeat_copy: > 0, lengthen when the test set's wrong
                                * bits per sequence fall below this (docs/semantics.md) */
    int max_length;            /* ... up to this length */
    bool has_seed;             /* the generator has its own stream */
    uint32_t seed;
    /* idx: images and labels files; csv: train_x and test_x are the files */
    const char *train_x, *train_y, *test_x, *test_y;
    const char *label_column;  /* csv: by name, or NULL to use label_index */
    int label_index;
    double scale;              /* inputs are multiplied by this (1 = as stored) */
    int one_hot;               /* > 0: labels are class numbers, one-hot over this many */
    int inputs, labels;        /* declared widths */
    dnic_span inputs_span;     /* the value of `inputs`, for messages about the files' widths */
    int limit, test_limit;     /* files: use only the first N examples (0: all) */
    double validation;         /* the fraction of the training set held out for validation */
    int *classes, nclasses;    /* files: keep these class numbers only, relabelled 0.. in order */
} dnic_data_spec;

typedef struct dnic_train_spec {
    dnic_mode mode;
    int batch;
    double lr;
    long long epochs, steps;   /* exactly one is > 0 */
    long long report_every;    /* in epochs, or steps when steps > 0 */
    uint32_t seed;
    dnic_dtype dtype;
    dnic_message_order message;
    int report_sg;             /* SG module whose loss the report line shows; -1 = all */
    int lag;                   /* d: an SG target is applied before step t+1+d (0..7) */
    long long patience;        /* > 0: stop after this many reports without a better validation loss */
    const char *keep_best;     /* the weights of the best validation loss go here (as --save-best), or NULL */
    dnic_opt_spec opt;
    bool shuffle;              /* a new seeded order of examples every epoch */
    bool grad_mean;            /* grad = mean: weight (and gamma/beta) gradients divided by B */
    bool probe;                /* --probe (the command's, not a setting): build the PROBE block */
    bool stream;               /* -c (the command's): build the STREAM block when layers carry state */
    int unroll;                /* truncated BPTT: recurrent layers' chunk length (0: whole sequences) */
    long long warmup;          /* the first steps learn by backpropagation while the SG modules
                                * train (0: none) */
    double update_prob;        /* each stage updates its layers with this probability per step;
                                * < 0: unset (always, and no hold ops in the IR) */
} dnic_train_spec;

typedef struct dnic_model {
    const char *name;
    const dnic_source *src;
    dnic_data_spec data;
    dnic_layer *layers;        /* in topological order (ties in declaration order) */
    int nlayers;
    int out;                   /* the layer the loss reads (the last one) */
    int nstages;               /* 1 in backprop mode */
    dnic_sg *sgs;              /* in layer order */
    int nsgs;
    dnic_loss_kind loss;
    dnic_report_kind report;
    bool report_sum;           /* report_per = sum: the report's sums as they are (the seeds'); else
                                * divided by the examples they cover (loss.report_per = example) */
    dnic_train_spec train;
} dnic_model;

/* What layer kinds check their declarations with (check.c): each reports its own error at the
 * setting's span and returns false (or -1). */
typedef struct dnic_checker dnic_checker;
dnic_diag *dnic_checker_diag(dnic_checker *c);
dnic_arena *dnic_checker_arena(dnic_checker *c);
/* The model as far as it is checked: its data (checked before the layers) and the layers
 * (each one's sources are checked before its shape). */
const dnic_model *dnic_checker_model(dnic_checker *c);
const dnic_setting *dnic_setting_find(const dnic_decl *d, const char *key);
bool dnic_check_int(dnic_checker *c, const dnic_setting *s, int lo, int hi, int *out);
bool dnic_check_real(dnic_checker *c, const dnic_setting *s, double lo, bool lo_open, double hi, double *out);
bool dnic_check_bool(dnic_checker *c, const dnic_setting *s, bool *out);
int dnic_check_enum(dnic_checker *c, const dnic_setting *s, const char *const *names, int n);
bool dnic_check_init(dnic_checker *c, const dnic_setting *s, dnic_init *out);
/* activation = NAME (softmax is checked with the graph: only an output layer has it) */
bool dnic_check_act(dnic_checker *c, const dnic_setting *s, dnic_act *out);
/* The span of a layer's i-th argument (its sources first), for messages about its shape. */
dnic_span dnic_decl_arg_span(const dnic_decl *d, int i);

/* The scheduler runs at most 64 stages (runtime/sched.c), so a model has at most 63 SG modules. */
enum { DNIC_MAX_SGS = 63 };

/* What the checker may do outside the model text. */
typedef enum dnic_check_flags {
    DNIC_CHECK_TEXT = 0,          /* the text only: data files are resolved, never opened (-c) */
    DNIC_CHECK_OPEN_DATA = 1 << 0, /* also open each data file, to report a missing one early */
} dnic_check_flags;

/* Returns NULL after reporting every error found.  A relative data path written in the model
 * file is resolved against the model file's directory, one given by --set against the current
 * directory; the model keeps the resolved paths. */
dnic_model *dnic_check(dnic_arena *a, dnic_diag *d, const dnic_ast *ast, unsigned flags);
int dnic_sg_part_width(const dnic_model *m, const dnic_sg *sg, dnic_sg_part p);
const char *dnic_sg_part_name(dnic_sg_part p);

/* ---- ir_build.c: the training step as a program of tensor ops --------------------------- */
/* Buffers are 2-D row-major tensors [rows, cols]; ops read and write whole buffers.  Ops are
 * grouped into blocks (a stage's forward+update phase, or its SG-module update phase); the
 * runtime runs blocks, the code generator turns each block into one function. */
typedef enum dnic_op {
#define DNIC_OP(e, name, nsrc, optional, dst, attrs, rule) DNIC_OP_##e,
#include "ir_ops.def"
#undef DNIC_OP
    DNIC_OP_COUNT
} dnic_op;

enum { DNIC_MAX_SRC = 5 };

typedef struct dnic_ir_op {
    dnic_op op;
    int dst;          /* buffer written (or updated in place): its role is the table's `dst` */
    int src[DNIC_MAX_SRC]; /* buffers read; -1 when unused */
    int nsrc;
    dnic_act act;     /* DENSE, ADD, AFFINE, ACT_GRAD; LOSS_SUM: the loss (ir_ops.def) */
    double lr;        /* updates */
    int grad_div;     /* SGD_W, UPDATE with train.grad = mean: the gradient is divided by this (B)
                         before the update rule; 0: used as it is (the batch sum) */
    bool accumulate;  /* ABS_SUM: add to dst instead of overwriting */
    int scratch;      /* a TEMP buffer written then read by the op, else -1: MATMUL_NT: W^T;
                         SGD_W: x packed per register tile of W's rows (codegen.c's
                         pack_a_blocks) where dnic_sgd_w_transposes */
    bool scratch_ready; /* MATMUL_NT: an earlier message made the scratch W^T of the same W (a
                         recurrent chunk's steps): it is read, not written */
    dnic_opt_spec opt;/* updates: the update rule */
    int state[3];     /* its STATE buffers: momentum: velocity; adam: m, v, step count; else -1 */
    int off;          /* SLICE: the first column taken; UPDATE: the gradient's row */
    double eps;       /* BN_NORM, BN_GRAD: added to the variance */
    double momentum;  /* BN_RUNNING: the weight of the batch's statistic */
    bool truegrad;    /* part of a true gradient past SG modules (target = true or mix): the
                         later layers' backward pass, or a copy of the weights it reads */
    double scale;     /* BN_RUNNING: the factor on the batch's statistic (B/(B-1): unbiased);
                         MIX: lambda, the weight of s0; SCALE_CLIP: the factor */
    double clip;      /* SCALE_CLIP: the bound (> 0), or 0 for none */
    int hold;         /* updates: a TEMP [1,1] buffer the runtime sets before the block runs; the
                         op is skipped when its first element is not 0 (train.update_prob), or -1 */
} dnic_ir_op;

/* What an op does to its destination. */
typedef enum dnic_dst_role {
    DNIC_DST_TEMP,   /* writes a temporary */
    DNIC_DST_UPDATE, /* updates a parameter in place with the optimiser (and its state buffers) */
    DNIC_DST_ACC,    /* adds to a float64 [1,1] accumulator */
    DNIC_DST_STAT,   /* updates a parameter that is a running statistic, not trained */
} dnic_dst_role;

/* The attributes an op carries, as --dump-ir prints them. */
enum { DNIC_ATTR_ACT = 1, DNIC_ATTR_LR = 2, DNIC_ATTR_LOSS = 4, DNIC_ATTR_OFF = 8, DNIC_ATTR_EPS = 16,
       DNIC_ATTR_MOMENTUM = 32, DNIC_ATTR_LAMBDA = 64, DNIC_ATTR_CLIP = 128 };

typedef struct dnic_ir dnic_ir;

/* An op's entry in the op table (ir_ops.c, from ir_ops.def): everything the verifier, the
 * printer, the cost model and the planner know of it.  Codegen lowers it by `rule`. */
typedef struct dnic_op_info {
    const char *name;
    int nsrc;                /* sources src[0..nsrc) */
    unsigned optional;       /* bit i: src[i] may be -1 */
    dnic_dst_role dst;
    unsigned attrs;
    /* Checks the operands' shapes and scratch buffer; false with the reason in why. */
    bool (*shape)(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n);
    /* Floating-point operations of one run. */
    double (*flops)(const dnic_ir *ir, const dnic_ir_op *o);
} dnic_op_info;

extern const dnic_op_info dnic_op_table[DNIC_OP_COUNT];

typedef struct dnic_ir_block {
    const char *name;  /* e.g. "h1.forward", "h1.sg_update" */
    int stage;
    dnic_block_phase phase;
    dnic_ir_op *ops;
    int nops, cap;
    /* what crosses the block's boundary (dnic_ir_link): the temporaries it reads that another
     * block wrote in the same step (imports) and those it writes that other blocks read
     * (exports); in buffer order */
    int *imports, nimports;
    int *exports, nexports;
    /* the stages whose STEP block of the same step must have run first (other than its own) */
    int *waits, nwaits;
} dnic_ir_block;

typedef struct dnic_ir {
    const dnic_model *model;
    dnic_dtype dtype;
    int batch;
    dnic_buffer_desc *bufs;
    int nbufs, capbufs;
    dnic_ir_block *blocks;
    int nblocks, capblocks;
    int nstages;
    int x, y;             /* the input and label buffers */
    int out;              /* the output layer's activations */
    int loss_acc;         /* f64[1,1] accumulators read by the report */
    int sg_acc_first;     /* model.nsgs consecutive f64[1,1] accumulators, or -1 */
    int *probe;           /* train.probe: per SG module the PROBE block's prediction, true gradient
                             and bootstrapped target (-1 for a module at truncation boundaries) */
    int *stage_hold;      /* per stage: the hold buffer of its step's updates, or NULL (no update_prob) */
    int replicas;         /* > 1: the program of one of this many replicas (dnic_ir_replicate) */
    /* the STREAM block's carried states, one pair per layer that carries state, in layer order:
     * the buffer it starts from and the one it leaves the last state in ([B, state width]) */
    int *state_in, *state_out, nstates;
} dnic_ir;

const char *dnic_op_name(dnic_op op);
int dnic_op_nsrc(dnic_op op);
/* Bytes an op reads and writes, from its operands' shapes. */
double dnic_op_bytes(const dnic_ir *ir, const dnic_ir_op *o);
/* The buffers an op reads (before it writes anything) and those it writes: up to 10 each;
 * returns the counts through *nr, *nw. */
void dnic_op_uses(const dnic_ir_op *o, int *reads, int *nr, int *writes, int *nw);
dnic_ir *dnic_ir_build(dnic_arena *a, const dnic_model *m);
/* A buffer more in ir (a name the arena keeps); returns its index. */
int dnic_ir_add_buf(dnic_arena *a, dnic_ir *ir, const char *name, dnic_buf_kind kind, int rows, int cols);
/* Data parallelism (ir_replicas.c): the program of a model for one of R replicas, each
 * training on its 1/R of every batch: builds m at batch B/R, with every parameter's gradient in
 * a buffer of its own, summed over the replicas (REDUCE) before its update.  NULL, with the
 * reason in why[n], when the model cannot be split so (the batch, batch normalisation). */
dnic_ir *dnic_ir_build_replica(dnic_arena *a, const dnic_model *m, int R, char *why, size_t n);
/* Computes every block's imports, exports and waits by def/use (ir_link.c). */
void dnic_ir_link(dnic_arena *a, dnic_ir *ir);
/* The accumulator block b adds to (-1: none) and its estimated floating-point operations. */
int dnic_ir_block_acc(const dnic_ir *ir, int b);
/* DNIC_READS_X | DNIC_READS_Y for the batch inputs block b reads. */
int dnic_ir_block_reads(const dnic_ir *ir, int b);
double dnic_ir_block_cost(const dnic_ir *ir, int b);
/* Floating-point operations per training step of the ops computing true gradients past SG
 * modules (target = true or mix): those of SG module `sg` (-1: of all of them); `copies`
 * (may be NULL) gets those of the steps' copies of the weights they read. */
double dnic_ir_true_cost(const dnic_ir *ir, int sg, double *copies);
/* Whether the update of a [rows, *] weight at this batch reads its input x through a
 * transposed copy (the op's scratch buffer): when x's rows would alias in the L1 cache. */
bool dnic_sgd_w_transposes(int rows, int batch, dnic_dtype t);
/* Checks shapes, def-before-use and buffer kinds; returns false after reporting to stderr
 * (a failure is a compiler bug, not a user error). */
bool dnic_ir_verify(const dnic_ir *ir, FILE *err);
void dnic_ir_print(const dnic_ir *ir, FILE *out);
void dnic_emit_dot(const dnic_model *m, FILE *out);

#endif
