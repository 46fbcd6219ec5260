/* The layer kinds and what they are built with.  A kind is one file (layer_dense.c,
 * layer_add.c, layer_concat.c) defining a dnic_layer_kind, plus its line in layers.def; the
 * checker (check.c) and the IR builder (ir_build.c) reach it only through this table.
 * docs/language.md, "Adding a layer kind", walks through one. */
#ifndef DNIC_LAYERS_H
#define DNIC_LAYERS_H

#include "dnic.h"

enum { DNIC_MAX_LAYER_SRC = 5 };

/* ---- ir_build.c: what kinds build the IR with ------------------------------------------- */
typedef struct dnic_builder dnic_builder;

/* One layer while the IR is built: its buffers, and its kind's own build state. */
typedef struct dnic_layer_ir {
    const dnic_layer *l;
    int index;                   /* in model.layers */
    int in[DNIC_MAX_LAYER_SRC];  /* its sources' outputs (the input buffer for the model input) */
    int out;                     /* its output, "<name>.out" */
    void *st;                    /* the kind's: its parameters' buffers */
} dnic_layer_ir;

/* A dense unit (a dense layer, or one layer of an SG module's MLP) as the builder lowers it. */
typedef struct dnic_unit {
    int w, b;        /* parameters (b = -1 without bias) */
    int in, out;     /* buffers */
    int grad_in;     /* where the gradient w.r.t. `in` goes (-1: not needed) */
    const char *name;
    dnic_act act;
    double lr;
    bool frozen;     /* its parameters are not updated (the message is still sent) */
} dnic_unit;

dnic_arena *dnic_builder_arena(dnic_builder *b);
const dnic_model *dnic_builder_model(dnic_builder *b);
int dnic_builder_batch(dnic_builder *b);
/* A temporary [rows, cols] buffer. */
int dnic_build_temp(dnic_builder *b, const char *name, int rows, int cols);
/* A parameter drawn from the seeded stream in construction order; fan_in/fan_out size Xavier
 * and He initialisers. */
int dnic_build_param(dnic_builder *b, const char *name, int rows, int cols, dnic_init init, int fan_in, int fan_out);
/* A parameter that starts at `value` everywhere (it draws nothing). */
int dnic_build_const_param(dnic_builder *b, const char *name, int rows, int cols, double value);
/* Appends an op to the current block (further sources and attributes are set on the result). */
dnic_ir_op *dnic_build_op(dnic_builder *b, dnic_op op, int dst, int s0, int s1, int s2);
/* An update of `param` by the model's optimiser at the model's learning rate, with its state
 * buffers. */
dnic_ir_op *dnic_build_update(dnic_builder *b, dnic_op op, int param, int s0, int s1, double lr);
/* A buffer for the gradient w.r.t. layer L's source i, named for what it is. */
int dnic_build_grad(dnic_builder *b, const dnic_layer_ir *L, int i);
/* The weight and bias updates and the backward message of dense unit u, given the gradient
 * dz w.r.t. its pre-activation, in the model's message order (docs/semantics.md). */
void dnic_build_unit_update(dnic_builder *b, const dnic_unit *u, int dz);
void dnic_build_unit_forward(dnic_builder *b, const dnic_unit *u);
/* dz: the gradient w.r.t. the pre-activation of a unit with activation act and output out,
 * given g w.r.t. its output (g itself when g_is_delta or the activation is linear). */
int dnic_build_delta(dnic_builder *b, const char *name, dnic_act act, int out, int g, bool g_is_delta);
/* The parameter `param` as the layer's message reads it.  A step whose layer a true gradient
 * goes through later (target = true or mix) copies it here, before or after its update as the
 * message order says; that pass reads the copy.  A frozen parameter is read as it is. */
int dnic_build_param_used(dnic_builder *b, int param, bool frozen);
/* Whether layer L's backward pass must send a gradient to its source i. */
bool dnic_build_wants_grad(dnic_builder *b, const dnic_layer_ir *L, int i);
/* Truncation boundaries (recurrent kinds): one use of SG module `sg` on the carried state `in`,
 * its buffers named PFX.sg.*; returns the prediction, and the use for dnic_build_sg_learn,
 * which regresses that prediction toward `target` (and adds to the module's synthetic loss). */
int dnic_build_sg_predict(dnic_builder *b, int sg, int in, const char *pfx, void **use);
void dnic_build_sg_learn(dnic_builder *b, void *use, int target, const char *pfx);
/* A recurrent layer R whose outputs span its truncation chunks (R->l->chunked), at a chunk with
 * output steps k0..k1-1: the forward passes of the per-step layers after it (a chain down to
 * the output layer, checked), the loss of those steps, and their backward passes with their
 * updates; leaves in g[k - k0] the gradient w.r.t. R's output step k. */
void dnic_build_chain_steps(dnic_builder *b, dnic_layer_ir *R, int k0, int k1, int *g);

/* ---- layers.c: the table of kinds -------------------------------------------------------- */
typedef struct dnic_layer_kind {
    const char *name;
    const char *usage;            /* how it is written, for messages: "dense(source, width)" */
    int min_src, max_src;         /* its sources: the first positional arguments */
    int extra_args;               /* positional arguments after the sources (dense: the width) */
    bool has_params;              /* it has parameters to train */
    bool softmax_ok;              /* as the output layer it may use softmax */
    const char *const *settings;  /* the settings it accepts, NULL-terminated */
    /* Checks its extra arguments and settings into l (l->act, l->cfg; l->out if it knows it);
     * NULL when it has neither. */
    void (*check)(dnic_checker *c, const dnic_decl *d, dnic_layer *l);
    /* Given its sources' widths, sets l->out; reports a mismatch and returns false. */
    bool (*shape)(dnic_checker *c, const dnic_decl *d, dnic_layer *l, const int *src_width);
    /* Creates its parameters, in the seeded draw order (NULL: it has none). */
    void (*params)(dnic_builder *b, dnic_layer_ir *L);
    /* Emits the ops computing L->out from L->in: for a training step, or for inference. */
    void (*forward)(dnic_builder *b, dnic_layer_ir *L, bool train);
    /* Given g, the gradient w.r.t. its output (w.r.t. its pre-activation when g_is_delta),
     * emits its updates and, for each source i with grad[i] >= 0 on entry, sets grad[i] to
     * the buffer holding the gradient w.r.t. that source (dnic_build_grad, or one it has). */
    void (*backward)(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta, int *grad);
    /* What --emit-dot shows of it after its name, e.g. "dense 16 -> 64, batch norm" (NULL:
     * "KIND -> WIDTH"). */
    void (*describe)(const dnic_layer *l, char *buf, size_t n);
    /* Recurrent kinds: the truncation boundaries of one sequence, where `sg NAME.state`
     * predicts the gradient w.r.t. the carried state (NULL: the kind carries no state). */
    int (*boundaries)(const dnic_layer *l, const dnic_model *m);
    /* ... and the steps of its last truncation chunk (outputs = N reaching back past them make
     * the layer chunked) ... */
    int (*last_chunk)(const dnic_layer *l, const dnic_model *m);
    /* ... and the width of that state (what `sg NAME.state` reads and predicts). */
    int (*state_width)(const dnic_layer *l);
    /* ... and the forward pass of the STREAM block, from the state in the buffer it makes and
     * returns, leaving the last step's state in the buffer *out. */
    int (*forward_stream)(dnic_builder *b, dnic_layer_ir *L, int *out);
    /* Per-step kinds (dense with steps = N; NULL: not one): the forward pass of steps k0..k1-1
     * only, and their backward pass from g[t - k0], w.r.t. each step's output (its
     * pre-activation when g_is_delta), leaving in gsrc[t - k0] (when not NULL) the gradient
     * w.r.t. each step's input.  A recurrent layer whose outputs span its truncation chunks
     * runs the chain of these after it chunk by chunk (dnic_build_chain_steps). */
    void (*forward_range)(dnic_builder *b, dnic_layer_ir *L, int k0, int k1);
    void (*backward_range)(dnic_builder *b, dnic_layer_ir *L, const int *g, bool g_is_delta, int k0, int k1,
                           int *gsrc);
} dnic_layer_kind;

#define DNIC_LAYER(name) extern const dnic_layer_kind dnic_layer_##name;
#include "layers.def"
#undef DNIC_LAYER

/* The kind called `name`, or NULL; dnic_layer_kind_names lists them for hints. */
const dnic_layer_kind *dnic_layer_kind_find(const char *name);
extern const char *const dnic_layer_kind_names[];
extern const int dnic_layer_kind_count;

/* A dense layer's own settings (layer_dense.c). */
typedef struct dnic_dense_cfg {
    int in;                    /* its source's width */
    bool bias;
    dnic_init w_init, b_init;
    bool batchnorm;            /* norm = batch: Linear -> BN -> activation */
    double norm_momentum;      /* the batch statistics' weight in the running averages */
    double norm_eps;
    double lr;                 /* its own learning rate (0: train.lr) */
    int width;                 /* one step's width (the width argument) */
    int steps;                 /* steps = N: the same layer on each of N equal parts of its source */
} dnic_dense_cfg;

/* A recurrent layer's own settings (layer_rnn.c: rnn and lstm). */
typedef struct dnic_rnn_cfg {
    bool lstm;
    int in;                    /* the width of one step's input */
    int steps;                 /* the sequence's length */
    int hidden;                /* the state's width (the width argument) */
    int outputs;               /* its output: the last `outputs` states side by side */
    bool repeat;               /* input = repeat: every step reads the whole source (seed 003) */
    int unroll;                /* truncation length; 0: train.unroll, else the whole sequence */
    bool bias;
    dnic_init w_init, u_init, b_init;
    double lr;                 /* its own learning rate (0: train.lr) */
} dnic_rnn_cfg;

#endif
