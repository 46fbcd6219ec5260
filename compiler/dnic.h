/* The compiler's shared internal header and its architecture index, one section per file:
 * arena -> diag -> ast (+ parser) -> override -> check -> ir_build -> ir_verify -> ir_print/dot.
 * The LLVM half (codegen, jit) has its own header so that this one stays LLVM-free. */
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
typedef enum dnic_data_kind { DNIC_DATA_BINADD, DNIC_DATA_IDX, DNIC_DATA_CSV } dnic_data_kind;

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
    dnic_init w_init, b_init;
    double lr;
} dnic_sg;

typedef struct dnic_layer {
    const char *name;
    dnic_span span;
    int src;                   /* index of the source layer, -1 for the model input */
    int in, out;               /* widths */
    dnic_act act;
    bool bias;
    dnic_init w_init, b_init;
    int sg;                    /* index into model.sgs, -1 if none */
} dnic_layer;

typedef struct dnic_data_spec {
    dnic_data_kind kind;
    dnic_span span;
    int bits, examples;        /* binary addition */
    bool has_seed;             /* the generator has its own stream */
    uint32_t seed;
    /* idx: images and labels files; csv: train_x and test_x are the files */
    const char *train_x, *train_y, *test_x, *test_y;
    const char *label_column;  /* csv: by name, or NULL to use label_index */
    int label_index;
    double scale;              /* inputs are multiplied by this (1 = as stored) */
    int one_hot;               /* > 0: labels are class numbers, one-hot over this many */
    int inputs, labels;        /* declared widths */
    int limit, test_limit;     /* files: use only the first N examples (0: all) */
    double validation;         /* the fraction of the training set held out for validation */
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
    dnic_opt_spec opt;
    bool shuffle;              /* a new seeded order of examples every epoch */
} dnic_train_spec;

typedef struct dnic_model {
    const char *name;
    const dnic_source *src;
    dnic_data_spec data;
    dnic_layer *layers;        /* in chain order: layers[0] reads the input */
    int nlayers;
    dnic_sg *sgs;              /* in layer order */
    int nsgs;
    dnic_loss_kind loss;
    dnic_report_kind report;
    dnic_train_spec train;
} dnic_model;

/* Returns NULL after reporting every error found. */
dnic_model *dnic_check(dnic_arena *a, dnic_diag *d, const dnic_ast *ast);
int dnic_sg_part_width(const dnic_model *m, const dnic_sg *sg, dnic_sg_part p);
const char *dnic_sg_part_name(dnic_sg_part p);

/* ---- ir_build.c: the training step as a program of tensor ops --------------------------- */
/* Buffers are 2-D row-major tensors [rows, cols]; ops read and write whole buffers.  Ops are
 * grouped into blocks (a stage's forward+update phase, or its SG-module update phase); the
 * runtime runs blocks, the code generator turns each block into one function. */
typedef enum dnic_op {
#define DNIC_OP(e, name, nsrc) DNIC_OP_##e,
#include "ir_ops.def"
#undef DNIC_OP
    DNIC_OP_COUNT
} dnic_op;

typedef struct dnic_ir_op {
    dnic_op op;
    int dst;          /* buffer written (or updated in place) */
    int src[4];       /* buffers read; -1 when unused */
    int nsrc;
    dnic_act act;     /* DENSE, ACT_GRAD */
    double lr;        /* SGD_W, SGD_B */
    bool accumulate;  /* ABS_SUM: add to dst instead of overwriting */
    int scratch;      /* a TEMP buffer written then read by the op, else -1: MATMUL_NT: W^T;
                         SGD_W: x^T where dnic_sgd_w_transposes */
    dnic_opt_spec opt;/* SGD_W, SGD_B: the update rule */
    int state[3];     /* its STATE buffers: momentum: velocity; adam: m, v, step count; else -1 */
} dnic_ir_op;

typedef struct dnic_ir_block {
    const char *name;  /* e.g. "h1.forward", "h1.sg_update" */
    int stage;
    dnic_block_phase phase;
    dnic_ir_op *ops;
    int nops, cap;
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
} dnic_ir;

const char *dnic_op_name(dnic_op op);
int dnic_op_nsrc(dnic_op op);
dnic_ir *dnic_ir_build(dnic_arena *a, const dnic_model *m);
/* The accumulator block b adds to (-1: none) and its estimated floating-point operations. */
int dnic_ir_block_acc(const dnic_ir *ir, int b);
/* DNIC_READS_X | DNIC_READS_Y for the batch inputs block b reads. */
int dnic_ir_block_reads(const dnic_ir *ir, int b);
double dnic_ir_block_cost(const dnic_ir *ir, int b);
/* Whether the update of a [rows, *] weight at this batch reads its input x through a
 * transposed copy (the op's scratch buffer): when x's rows would alias in the L1 cache. */
bool dnic_sgd_w_transposes(int rows, int batch, dnic_dtype t);
/* Checks shapes, def-before-use and buffer kinds; returns false after reporting to stderr
 * (a failure is a compiler bug, not a user error). */
bool dnic_ir_verify(const dnic_ir *ir, FILE *err);
void dnic_ir_print(const dnic_ir *ir, FILE *out);
void dnic_emit_dot(const dnic_model *m, FILE *out);

#endif
