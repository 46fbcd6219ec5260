/* Builds the training step's IR from the checked model: buffers for parameters, activations,
 * gradients and messages, and the ops of each stage's blocks in the order of
 * docs/semantics.md (the seeds' order for DNI, ordinary backpropagation otherwise). */
#include <math.h>
#include <string.h>

#include "layers.h"

/* A gradient w.r.t. a layer's output, sent by one consumer edge (layer `from`, its source
 * `arg`); a layer's gradient is the sum of those it receives, in edge order. */
typedef struct contrib {
    int from, arg;
    int buf;
} contrib;

struct dnic_builder {
    dnic_arena *a;
    dnic_ir *ir;
    const dnic_model *m;
    dnic_ir_block *blk;
    int init_order;
    bool dni;              /* DNI mode with SG modules: stages end at SG modules */
    bool whole;            /* the warm-up block: one backward pass through the whole graph */
    bool reuse;            /* ... which computes the step's buffers again: a TEMP buffer of a name
                              the IR has already is that buffer */
    dnic_layer_ir *L;      /* per layer */
    bool *wants;           /* per layer: its backward pass has work (parameters to train, or a
                              gradient to send to a source that wants one) */
    int *nneed;            /* per layer: how many consumer edges send it a gradient */
    contrib **got;         /* per layer: the gradients received so far (nneed[i] slots) */
    int *ngot;
    struct sgmod *sgs;     /* per SG module */
    dnic_vec learns;       /* pending: what truncation boundaries' modules learn after the step */
    dnic_vec opt_states;   /* optstate*: each updated parameter's optimiser state, made once */
    bool *chained;         /* per layer: a per-step layer that a recurrent layer runs chunk by chunk */
    dnic_vec xt_scratch;   /* optstate*: each weight's x^T scratch for sgd_w (state[0]), made once */
    /* true gradients past SG modules (target = true or mix; docs/semantics.md, "Targets") */
    bool *cut;             /* per layer: it or a layer after it has an SG module, so the gradient
                              its step gives it is not the loss's */
    bool *keep;            /* per layer: a true gradient is backpropagated through it after its step,
                              so its step keeps the weights its message used (dnic_build_param_used) */
    bool keeping;          /* the layer being built is one of those */
    dnic_vec kept;         /* kept*: each kept parameter and its copy */
    const char *shadow;    /* building a true gradient's backward pass: its temporaries' prefix */
    bool *chain;           /* ... the layers it sends gradients to */
    contrib **sgot;        /* ... and the gradients they received so far in it */
    int *nsgot;
    dnic_ir_op dummy;      /* what an update in a true gradient's pass returns (none is built) */
    bool probing;          /* building the PROBE block: it writes no parameter, statistic or
                              accumulator, and reads the parameters themselves */
};

/* A parameter's value as one step's message used it, copied for a true gradient's pass. */
typedef struct kept {
    int param;
    int copy;
} kept;

/* A parameter's optimiser state buffers, shared by all its updates (a recurrent layer updates
 * its weights once per chunk). */
typedef struct optstate {
    int param;
    int state[3];
} optstate;

/* One truncation boundary's lesson: its module's use (prediction) and the target it gets. */
typedef struct learn {
    int sg;
    struct sgmod *use;
    int target;
    const char *pfx;
} learn;
typedef struct dnic_builder builder;
typedef dnic_unit unit;

static int add_buf(builder *b, const char *name, dnic_buf_kind kind, int rows, int cols)
{
    dnic_ir *ir = b->ir;
    for (int i = 0; b->reuse && kind == DNIC_BUF_TEMP && i < ir->nbufs; i++)
        if (ir->bufs[i].kind == DNIC_BUF_TEMP && strcmp(ir->bufs[i].name, name) == 0) {
            DNIC_ASSERT(ir->bufs[i].rows == rows && ir->bufs[i].cols == cols);
            return i;
        }
    if (ir->nbufs == ir->capbufs) {
        int cap = ir->capbufs ? ir->capbufs * 2 : 32;
        dnic_buffer_desc *nb = dnic_alloc(b->a, (size_t)cap * sizeof *nb);
        if (ir->nbufs)
            memcpy(nb, ir->bufs, (size_t)ir->nbufs * sizeof *nb);
        ir->bufs = nb;
        ir->capbufs = cap;
    }
    dnic_buffer_desc *d = &ir->bufs[ir->nbufs];
    if (b->shadow && kind == DNIC_BUF_TEMP) /* a true gradient's pass has its own temporaries */
        name = dnic_sprintf(b->a, "%s%s", b->shadow, name);
    d->name = name;
    d->kind = kind;
    d->dtype = kind == DNIC_BUF_ACC ? DNIC_F64 : ir->dtype;
    d->rows = rows;
    d->cols = cols;
    d->init_order = -1;
    return ir->nbufs++;
}

int dnic_ir_add_buf(dnic_arena *a, dnic_ir *ir, const char *name, dnic_buf_kind kind, int rows, int cols)
{
    builder bb = {.a = a, .ir = ir};
    return add_buf(&bb, name, kind, rows, cols);
}

/* A parameter and its initialiser; fan_in/fan_out size the Xavier and He scales. */
static int add_param(builder *b, const char *name, int rows, int cols, dnic_init init, int fan_in, int fan_out)
{
    int id = add_buf(b, name, DNIC_BUF_PARAM, rows, cols);
    dnic_buffer_desc *d = &b->ir->bufs[id];
    d->scale = init.scale;
    d->shift = init.shift;
    switch (init.kind) {
    case DNIC_INIT_ZEROS:
        d->draw = DNIC_DRAW_NONE;
        d->scale = 0;
        d->shift = 0;
        break;
    case DNIC_INIT_RANDN: d->draw = DNIC_DRAW_RANDN; break;
    case DNIC_INIT_RAND: d->draw = DNIC_DRAW_RAND; break;
    case DNIC_INIT_XAVIER_NORMAL:
        d->draw = DNIC_DRAW_RANDN;
        d->scale = sqrt(2.0 / (fan_in + fan_out));
        d->shift = 0;
        break;
    case DNIC_INIT_HE_NORMAL:
        d->draw = DNIC_DRAW_RANDN;
        d->scale = sqrt(2.0 / fan_in);
        d->shift = 0;
        break;
    case DNIC_INIT_XAVIER_UNIFORM:
    case DNIC_INIT_HE_UNIFORM: {
        double limit = init.kind == DNIC_INIT_HE_UNIFORM ? sqrt(6.0 / fan_in) : sqrt(6.0 / (fan_in + fan_out));
        d->draw = DNIC_DRAW_RAND; /* uniform on [-limit, limit) */
        d->scale = 2 * limit;
        d->shift = -limit;
        break;
    }
    }
    d->init_order = b->init_order++;
    return id;
}

static void begin_block(builder *b, const char *name, int stage, dnic_block_phase phase)
{
    dnic_ir *ir = b->ir;
    if (ir->nblocks == ir->capblocks) {
        int cap = ir->capblocks ? ir->capblocks * 2 : 8;
        dnic_ir_block *nb = dnic_alloc(b->a, (size_t)cap * sizeof *nb);
        if (ir->nblocks)
            memcpy(nb, ir->blocks, (size_t)ir->nblocks * sizeof *nb);
        ir->blocks = nb;
        ir->capblocks = cap;
    }
    b->blk = &ir->blocks[ir->nblocks++];
    memset(b->blk, 0, sizeof *b->blk);
    b->blk->name = name;
    b->blk->stage = stage;
    b->blk->phase = phase;
}

static dnic_ir_op *emit(builder *b, dnic_op op, int dst, int s0, int s1, int s2)
{
    dnic_ir_block *blk = b->blk;
    dnic_dst_role role = dnic_op_table[op].dst;
    if (b->probing && role != DNIC_DST_TEMP) { /* a probe changes nothing training reads */
        memset(&b->dummy, 0, sizeof b->dummy);
        return &b->dummy;
    }
    if (blk->nops == blk->cap) {
        int cap = blk->cap ? blk->cap * 2 : 16;
        dnic_ir_op *n = dnic_alloc(b->a, (size_t)cap * sizeof *n);
        if (blk->nops)
            memcpy(n, blk->ops, (size_t)blk->nops * sizeof *n);
        blk->ops = n;
        blk->cap = cap;
    }
    dnic_ir_op *o = &blk->ops[blk->nops++];
    memset(o, 0, sizeof *o);
    o->op = op;
    o->dst = dst;
    o->src[0] = s0;
    o->src[1] = s1;
    o->src[2] = s2;
    for (int i = 3; i < DNIC_MAX_SRC; i++)
        o->src[i] = -1;
    o->nsrc = dnic_op_nsrc(op);
    o->act = DNIC_ACT_LINEAR;
    o->scratch = -1;
    o->state[0] = o->state[1] = o->state[2] = -1;
    o->truegrad = b->shadow != NULL;
    o->hold = -1;
    return o;
}

static const char *bname(builder *b, int id)
{
    return b->ir->bufs[id].name;
}

static int rows_of(builder *b, int id)
{
    return b->ir->bufs[id].rows;
}

static int cols_of(builder *b, int id)
{
    return b->ir->bufs[id].cols;
}

void dnic_build_unit_forward(dnic_builder *b, const dnic_unit *u)
{
    emit(b, DNIC_OP_DENSE, u->out, u->in, u->w, u->b)->act = u->act;
}

static void forward(builder *b, const unit *u)
{
    dnic_build_unit_forward(b, u);
}

/* A weight update reads A(m, k) = x[k, m], k a row of x apart: every k of a tile's loop loads
 * another cache line.  When x's rows are a multiple of 512 bytes, those lines fall into at most
 * 8 of the 64 sets of a 32 KiB, 8-way L1 data cache, and past 8 of them (the batch) they evict
 * one another before the next row tile can reuse them; then reading x^T along its rows is well
 * worth the copy (bench/gemm.dni, a 1024x1024 update at batch 256: 10.6 ms before, 5.8 ms
 * after; its 1024x30 update too: a step 7 % faster; docs/benchmarks.md).  The copy is now x
 * packed per register tile of rows (codegen.c's pack_a_blocks), each tile's part one stream. */
bool dnic_sgd_w_transposes(int rows, int batch, dnic_dtype t)
{
    enum { ALIASING_STRIDE = 512, L1_WAYS = 8 };
    return batch > L1_WAYS && rows * (t == DNIC_F64 ? 8 : 4) % ALIASING_STRIDE == 0;
}

/* An update of parameter `param` with the model's optimiser and its state buffers. */
dnic_ir_op *dnic_build_update(dnic_builder *b, dnic_op op, int param, int s0, int s1, double lr)
{
    if (b->shadow) { /* a true gradient's pass updates nothing */
        memset(&b->dummy, 0, sizeof b->dummy);
        return &b->dummy;
    }
    const dnic_opt_spec *opt = &b->m->train.opt;
    dnic_ir_op *o = emit(b, op, param, s0, s1, -1);
    o->lr = lr;
    o->opt = *opt;
    /* train.grad = mean: the batch sums (weights, gamma, beta) become means, as the bias is */
    if (b->m->train.grad_mean && op != DNIC_OP_SGD_B)
        o->grad_div = b->ir->batch;
    for (int i = 0; i < b->opt_states.n; i++) {
        const optstate *os = b->opt_states.v[i];
        if (os->param == param) {
            memcpy(o->state, os->state, sizeof o->state);
            return o;
        }
    }
    const dnic_buffer_desc *p = &b->ir->bufs[param];
    const char *pn = p->name;
    int rows = p->rows, cols = p->cols;
    optstate *os = dnic_alloc(b->a, sizeof *os);
    os->param = param;
    dnic_vec_push(b->a, &b->opt_states, os);
    if (opt->kind == DNIC_OPT_MOMENTUM) {
        o->state[0] = add_buf(b, dnic_sprintf(b->a, "%s.velocity", pn), DNIC_BUF_STATE, rows, cols);
    } else if (opt->kind == DNIC_OPT_ADAM) {
        o->state[0] = add_buf(b, dnic_sprintf(b->a, "%s.adam_m", pn), DNIC_BUF_STATE, rows, cols);
        o->state[1] = add_buf(b, dnic_sprintf(b->a, "%s.adam_v", pn), DNIC_BUF_STATE, rows, cols);
        o->state[2] = add_buf(b, dnic_sprintf(b->a, "%s.adam_t", pn), DNIC_BUF_STATE, 1, 1);
        b->ir->bufs[o->state[2]].dtype = DNIC_F64;
    }
    memcpy(os->state, o->state, sizeof os->state);
    return o;
}

int dnic_build_param_used(dnic_builder *b, int param, bool frozen)
{
    if (b->probing) /* nothing runs alongside a probe: the parameters are as they are */
        return param;
    if (b->shadow) {
        for (int i = 0; i < b->kept.n; i++)
            if (((kept *)b->kept.v[i])->param == param)
                return ((kept *)b->kept.v[i])->copy;
        DNIC_ASSERT(frozen); /* nothing writes it: it may be read from any block */
        return param;
    }
    if (!b->keeping || frozen)
        return param;
    const dnic_buffer_desc *p = &b->ir->bufs[param];
    kept *k = dnic_alloc(b->a, sizeof *k);
    k->param = param;
    k->copy = add_buf(b, dnic_sprintf(b->a, "%s.used", p->name), DNIC_BUF_TEMP, p->rows, p->cols);
    emit(b, DNIC_OP_SLICE, k->copy, param, -1, -1)->truegrad = true; /* all its columns, linear: a copy */
    dnic_vec_push(b->a, &b->kept, k);
    return param;
}

/* The backward message grad_in = dz . W^T, through a transposed copy of W so that the
 * product reads both operands contiguously.  A true gradient's pass reads the copy of W that
 * the step's message used.  One copy buffer per weight (and pass): a truncation boundaries'
 * module sends a message through its weights once per boundary, each time copying W^T afresh
 * (the module learns in between). */
static void message(builder *b, const unit *u, int dz)
{
    const dnic_buffer_desc *w = &b->ir->bufs[u->w];
    int wused = dnic_build_param_used(b, u->w, u->frozen);
    const char *name = dnic_sprintf(b->a, "%s.t", w->name);
    const char *full = b->shadow ? dnic_sprintf(b->a, "%s%s", b->shadow, name) : name; /* as add_buf names it */
    int t = -1;
    for (int i = 0; i < b->ir->nbufs && t < 0; i++)
        if (b->ir->bufs[i].kind == DNIC_BUF_TEMP && strcmp(b->ir->bufs[i].name, full) == 0)
            t = i;
    if (t < 0)
        t = add_buf(b, name, DNIC_BUF_TEMP, w->cols, w->rows);
    emit(b, DNIC_OP_MATMUL_NT, u->grad_in, dz, wused, -1)->scratch = t;
}


/* The updates of dense unit u and its message to grad_in, given dz w.r.t. its pre-activation:
 * the message before the updates, or after them (train.backward_message). */
void dnic_build_unit_update(dnic_builder *b, const dnic_unit *u, int dz)
{
    bool after = b->m->train.message == DNIC_MSG_AFTER_UPDATE;
    if (b->shadow) {
        if (u->grad_in >= 0)
            message(b, u, dz);
        return;
    }
    if (!after && u->grad_in >= 0)
        message(b, u, dz);
    if (u->frozen) {
        if (after && u->grad_in >= 0)
            message(b, u, dz);
        return;
    }
    const dnic_buffer_desc *w = &b->ir->bufs[u->w];
    dnic_ir_op *o = dnic_build_update(b, DNIC_OP_SGD_W, u->w, u->in, dz, u->lr);
    if (dnic_sgd_w_transposes(w->rows, b->ir->batch, b->ir->dtype)) {
        /* one scratch per weight: a truncation boundaries' module updates its weight once per
         * boundary */
        for (int i = 0; i < b->xt_scratch.n && o->scratch < 0; i++)
            if (((const optstate *)b->xt_scratch.v[i])->param == u->w)
                o->scratch = ((const optstate *)b->xt_scratch.v[i])->state[0];
        if (o->scratch < 0) {
            optstate *xs = dnic_alloc(b->a, sizeof *xs);
            xs->param = u->w;
            xs->state[0] = o->scratch =
                add_buf(b, dnic_sprintf(b->a, "%s.input.t", w->name), DNIC_BUF_TEMP, w->rows, b->ir->batch);
            dnic_vec_push(b->a, &b->xt_scratch, xs);
        }
    }
    if (u->b >= 0)
        dnic_build_update(b, DNIC_OP_SGD_B, u->b, dz, -1, u->lr);
    if (after && u->grad_in >= 0)
        message(b, u, dz);
}

int dnic_build_delta(dnic_builder *b, const char *name, dnic_act act, int out, int g, bool g_is_delta)
{
    if (g_is_delta || act == DNIC_ACT_LINEAR)
        return g;
    int dz = add_buf(b, dnic_sprintf(b->a, "%s.delta", name), DNIC_BUF_TEMP, rows_of(b, g), cols_of(b, g));
    emit(b, DNIC_OP_ACT_GRAD, dz, g, out, -1)->act = act;
    return dz;
}

/* Backpropagates `g` (the gradient w.r.t. the last unit's output; when g_is_delta it is
 * already w.r.t. its pre-activation) through units[n-1..0], updating each unit's parameters
 * and sending each unit's message to grad_in. */
static void backward(builder *b, const unit *units, int n, int g, bool g_is_delta)
{
    for (int i = n - 1; i >= 0; i--) {
        const unit *u = &units[i];
        int dz = dnic_build_delta(b, u->name, u->act, u->out, g, g_is_delta && i == n - 1);
        dnic_build_unit_update(b, u, dz);
        g = u->grad_in;
    }
}

/* ---- what layer kinds build with ------------------------------------------------------------ */

dnic_arena *dnic_builder_arena(dnic_builder *b)
{
    return b->a;
}

const dnic_model *dnic_builder_model(dnic_builder *b)
{
    return b->m;
}

int dnic_builder_batch(dnic_builder *b)
{
    return b->ir->batch;
}

int dnic_build_temp(dnic_builder *b, const char *name, int rows, int cols)
{
    return add_buf(b, name, DNIC_BUF_TEMP, rows, cols);
}

int dnic_build_param(dnic_builder *b, const char *name, int rows, int cols, dnic_init init, int fan_in, int fan_out)
{
    return add_param(b, name, rows, cols, init, fan_in, fan_out);
}

int dnic_build_const_param(dnic_builder *b, const char *name, int rows, int cols, double value)
{
    int id = add_param(b, name, rows, cols, (dnic_init){DNIC_INIT_ZEROS, 0, 0}, 1, 1);
    b->ir->bufs[id].shift = value;
    return id;
}

dnic_ir_op *dnic_build_op(dnic_builder *b, dnic_op op, int dst, int s0, int s1, int s2)
{
    return emit(b, op, dst, s0, s1, s2);
}

/* Consumer edges that send their source a gradient: within a stage, and into a layer with an
 * SG module from the next stages (its target); never into the model's input. */
static bool edge_needs_grad(const builder *b, const dnic_layer *consumer, int arg)
{
    int s = consumer->src[arg];
    if (s < 0)
        return false;
    if (b->whole)
        return b->wants[s];
    if (b->dni && b->m->layers[s].sg >= 0)
        return true;
    return b->m->layers[s].stage == consumer->stage && b->wants[s];
}

int dnic_build_grad(dnic_builder *b, const dnic_layer_ir *L, int i)
{
    int s = L->l->src[i];
    DNIC_ASSERT(s >= 0);
    const dnic_layer *src = &b->m->layers[s];
    const char *name = b->nneed[s] == 1 ? dnic_sprintf(b->a, "%s.grad", src->name)
                                        : dnic_sprintf(b->a, "%s.grad.%s.%d", src->name, L->l->name, i);
    return add_buf(b, name, DNIC_BUF_TEMP, b->ir->batch, src->out);
}

/* The sum of the gradients c[0..n) sent to layer s, in edge order (consumers in layer order,
 * then their sources in order); one alone is used as it is. */
static int sum_contribs(builder *b, int s, contrib *c, int n)
{
    const dnic_layer *l = &b->m->layers[s];
    for (int i = 1; i < n; i++) /* insertion sort: a handful of edges */
        for (int j = i; j > 0 && (c[j].from < c[j - 1].from || (c[j].from == c[j - 1].from && c[j].arg < c[j - 1].arg)); j--) {
            contrib t = c[j];
            c[j] = c[j - 1];
            c[j - 1] = t;
        }
    int g = c[0].buf;
    for (int i = 1; i < n; i++) {
        int sum = add_buf(b, i == n - 1 ? dnic_sprintf(b->a, "%s.grad", l->name) : dnic_sprintf(b->a, "%s.grad.sum%d", l->name, i),
                          DNIC_BUF_TEMP, b->ir->batch, l->out);
        emit(b, DNIC_OP_ADD, sum, g, c[i].buf, -1);
        g = sum;
    }
    return g;
}

/* Layer s's gradient: the sum of what its consumer edges sent. */
static int gradient_of(builder *b, int s)
{
    DNIC_ASSERT(b->ngot[s] == b->nneed[s] && b->nneed[s] > 0);
    return sum_contribs(b, s, b->got[s], b->ngot[s]);
}

/* Runs layer L's backward pass from g and files the gradients it sends its sources. */
static void layer_backward(builder *b, dnic_layer_ir *L, int g, bool g_is_delta)
{
    const dnic_layer *l = L->l;
    int grad[DNIC_MAX_LAYER_SRC];
    for (int i = 0; i < l->nsrc; i++)
        grad[i] = (b->shadow ? l->src[i] >= 0 && b->chain[l->src[i]] : edge_needs_grad(b, l, i)) ? 0 : -1;
    b->keeping = !b->shadow && b->keep[L->index];
    l->kind->backward(b, L, g, g_is_delta, grad);
    b->keeping = false;
    for (int i = 0; i < l->nsrc; i++) {
        if (grad[i] < 0)
            continue;
        int s = l->src[i];
        if (b->shadow) {
            b->sgot[s][b->nsgot[s]++] = (contrib){L->index, i, grad[i]};
            continue;
        }
        DNIC_ASSERT(b->ngot[s] < b->nneed[s]);
        b->got[s][b->ngot[s]++] = (contrib){L->index, i, grad[i]};
    }
}

/* ---- SG modules ------------------------------------------------------------------------------ */

/* An SG module: its parameters (created in construction order right after its layer's),
 * its input, and its dense units; a module at a recurrent layer's truncation boundaries has a
 * copy of this per boundary, its input and prediction that boundary's. */
typedef struct sgmod {
    const dnic_sg *sg;
    int in;          /* the SG input buffer */
    int pred;        /* the synthetic gradient ghat, what the module regresses on its target */
    int applied;     /* what the layer receives: clip(scale * ghat), or pred itself */
    int acc;         /* synthetic-loss accumulator */
    unit units[9];
    int nunits;
} sgmod;

/* What a module predicts: the gradient w.r.t. its layer's output, or (sg NAME.state) w.r.t.
 * the state its layer carries between steps. */
static int sg_width(const dnic_model *m, const dnic_sg *sg)
{
    const dnic_layer *l = &m->layers[sg->layer];
    return sg->state ? l->kind->state_width(l) : sg->input ? m->layers[l->src[0]].out : l->out;
}

/* Its units' names and hidden outputs, for the module or one use of it: "PFX.sg[.i]". */
static void name_sg_units(builder *b, sgmod *s, const char *pfx)
{
    for (int i = 0; i < s->nunits; i++) {
        unit *u = &s->units[i];
        u->name = s->sg->nhidden ? dnic_sprintf(b->a, "%s.sg.%d", pfx, i) : dnic_sprintf(b->a, "%s.sg", pfx);
        u->out = i == s->nunits - 1 ? -1
                                    : add_buf(b, dnic_sprintf(b->a, "%s.out", u->name), DNIC_BUF_TEMP, b->ir->batch,
                                              s->sg->hidden[i]);
    }
}

static void build_sg_params(builder *b, sgmod *s, const dnic_sg *sg)
{
    const dnic_model *m = b->m;
    s->sg = sg;
    s->nunits = sg->nhidden + 1;
    int width = sg->in_width;
    for (int i = 0; i < s->nunits; i++) {
        bool last = i == s->nunits - 1;
        int outw = last ? sg_width(m, sg) : sg->hidden[i];
        const char *pfx = sg->nhidden ? dnic_sprintf(b->a, "%s.sg.%d", sg->name, i) : dnic_sprintf(b->a, "%s.sg", sg->name);
        unit *u = &s->units[i];
        u->w = add_param(b, dnic_sprintf(b->a, "%s.weight", pfx), width, outw, last ? sg->w_init : sg->hidden_init, width,
                         outw);
        u->b = sg->bias ? add_param(b, dnic_sprintf(b->a, "%s.bias", pfx), 1, outw, sg->b_init, width, outw) : -1;
        u->act = !last ? sg->hidden_act : sg->head_sigmoid ? DNIC_ACT_SIGMOID : DNIC_ACT_LINEAR;
        u->lr = sg->lr;
        width = outw;
    }
    if (!sg->state) /* a module at a truncation boundary names each use's buffers */
        name_sg_units(b, s, sg->name);
}

/* The SG input (a concatenation when it has several parts) and the prediction, in buffers
 * named PFX.sg.*. */
static void build_sg_predict(builder *b, sgmod *s, int layer_out, const char *pfx)
{
    const dnic_sg *sg = s->sg;
    int parts[3];
    for (int p = 0; p < sg->nparts; p++)
        parts[p] = sg->parts[p] == DNIC_SG_OUTPUT ? layer_out : sg->parts[p] == DNIC_SG_LABELS ? b->ir->y : b->ir->x;
    if (sg->nparts == 1) {
        s->in = parts[0];
    } else {
        s->in = add_buf(b, dnic_sprintf(b->a, "%s.sg.in", pfx), DNIC_BUF_TEMP, b->ir->batch, sg->in_width);
        emit(b, DNIC_OP_CONCAT, s->in, parts[0], parts[1], sg->nparts > 2 ? parts[2] : -1);
    }
    s->pred = add_buf(b, dnic_sprintf(b->a, "%s.sg.pred", pfx), DNIC_BUF_TEMP, b->ir->batch, sg_width(b->m, sg));
    /* head = sigmoid: the last unit's sigmoid(a), then ghat = sigmoid(a) - y */
    int sigm = sg->head_sigmoid ? add_buf(b, dnic_sprintf(b->a, "%s.sg.sigmoid", pfx), DNIC_BUF_TEMP, b->ir->batch,
                                          sg_width(b->m, sg))
                                : -1;
    int in = s->in;
    for (int i = 0; i < s->nunits; i++) {
        unit *u = &s->units[i];
        u->in = in;
        if (i == s->nunits - 1)
            u->out = sigm >= 0 ? sigm : s->pred;
        u->grad_in = i > 0 ? add_buf(b, dnic_sprintf(b->a, "%s.grad", bname(b, in)), DNIC_BUF_TEMP, b->ir->batch,
                                     cols_of(b, in))
                           : -1;
        forward(b, u);
        in = u->out;
    }
    if (sigm >= 0)
        emit(b, DNIC_OP_SUB, s->pred, sigm, b->ir->y, -1);
    s->applied = s->pred;
    if (sg->scale != 1 || sg->clip > 0) {
        s->applied = add_buf(b, dnic_sprintf(b->a, "%s.sg.applied", pfx), DNIC_BUF_TEMP, b->ir->batch, sg_width(b->m, sg));
        dnic_ir_op *o = emit(b, DNIC_OP_SCALE_CLIP, s->applied, s->pred, -1, -1);
        o->scale = sg->scale;
        o->clip = sg->clip;
    }
}

/* The SG module regresses its prediction toward a target. */
static void build_sg_learn(builder *b, sgmod *s, int target, const char *pfx)
{
    int delta = add_buf(b, dnic_sprintf(b->a, "%s.sg.delta", pfx), DNIC_BUF_TEMP, b->ir->batch, sg_width(b->m, s->sg));
    emit(b, DNIC_OP_SUB, delta, s->pred, target, -1);
    emit(b, DNIC_OP_ABS_SUM, s->acc, delta, -1, -1)->accumulate = true;
    /* through the sigmoid head's derivative, sigmoid(a)(1 - sigmoid(a)), when it has one */
    if (s->sg->head_sigmoid) {
        const unit *last = &s->units[s->nunits - 1];
        delta = dnic_build_delta(b, bname(b, last->out), DNIC_ACT_SIGMOID, last->out, delta, false);
    }
    backward(b, s->units, s->nunits, delta, true);
}

/* The true gradient at layer k: each layer after it that an SG module cuts off from the loss
 * gets the sum of the true gradients its readers send (the step's messages from readers that
 * nothing cuts off, those of this pass from the others), in reverse layer order, and
 * backpropagates it with the weights its step's message used, updating nothing; k gets the
 * sum of what its readers send. */
static int true_gradient(builder *b, int k)
{
    const dnic_model *m = b->m;
    int n = m->nlayers;
    b->shadow = dnic_sprintf(b->a, "%s.sg.true:", m->layers[k].name);
    for (int i = 0; i < n; i++) {
        b->chain[i] = i == k;
        for (int q = 0; q < m->layers[i].nsrc; q++)
            b->chain[i] |= m->layers[i].src[q] >= 0 && b->chain[m->layers[i].src[q]] && i > k;
        b->nsgot[i] = 0;
    }
    int g = -1;
    for (int i = n - 1; i >= k; i--) {
        if (!b->chain[i] || (!b->cut[i] && i != k))
            continue;
        /* the gradients sent to it: readers in layer order, sources in order */
        contrib *c = dnic_alloc(b->a, (size_t)(b->nneed[i] + 1) * sizeof *c);
        int nc = 0;
        for (int j = 0; j < b->ngot[i]; j++) {
            const contrib *e = &b->got[i][j];
            if (!b->cut[e->from])
                c[nc++] = *e;
        }
        for (int j = 0; j < b->nsgot[i]; j++)
            c[nc++] = b->sgot[i][j];
        DNIC_ASSERT(nc == b->nneed[i] && nc > 0);
        g = sum_contribs(b, i, c, nc);
        if (i > k)
            layer_backward(b, &b->L[i], g, false);
    }
    b->shadow = NULL;
    return g;
}

/* A module on a layer's output learns from the gradient its layer's consumers sent back
 * (bootstrap), from the true gradient, or from lambda * true + (1 - lambda) * bootstrap.  When
 * no reader of its layer is cut off from the loss the two are the same: the step's messages. */
static void build_sg_update(builder *b, sgmod *s)
{
    const dnic_sg *sg = s->sg;
    int k = sg->layer;
    bool cut_readers = false;
    for (int j = 0; j < b->ngot[k]; j++)
        cut_readers |= b->cut[b->got[k][j].from];
    int target;
    if (sg->target == DNIC_TARGET_BOOTSTRAP || !cut_readers) {
        target = gradient_of(b, k);
    } else if (sg->target == DNIC_TARGET_TRUE) {
        target = true_gradient(b, k);
    } else {
        int t = true_gradient(b, k), boot = gradient_of(b, k);
        target = add_buf(b, dnic_sprintf(b->a, "%s.sg.target", sg->name), DNIC_BUF_TEMP, b->ir->batch, b->m->layers[k].out);
        emit(b, DNIC_OP_MIX, target, t, boot, -1)->scale = sg->lambda;
    }
    build_sg_learn(b, s, target, sg->name);
}

/* ---- what recurrent kinds build their truncation boundaries with ---------------------------- */

int dnic_build_sg_predict(dnic_builder *b, int sg, int in, const char *pfx, void **use)
{
    sgmod *u = dnic_alloc(b->a, sizeof *u);
    *u = b->sgs[sg];
    name_sg_units(b, u, pfx);
    build_sg_predict(b, u, in, pfx);
    *use = u;
    return u->applied;
}

void dnic_build_sg_learn(dnic_builder *b, void *use, int target, const char *pfx)
{
    learn *l = dnic_alloc(b->a, sizeof *l);
    *l = (learn){((sgmod *)use)->sg - b->m->sgs, use, target, pfx};
    dnic_vec_push(b->a, &b->learns, l);
}

bool dnic_build_wants_grad(dnic_builder *b, const dnic_layer_ir *L, int i)
{
    return edge_needs_grad(b, L->l, i);
}

/* ---- the step -------------------------------------------------------------------------------- */

static int build_loss(builder *b, const dnic_layer_ir *L, bool *is_delta);

/* One backward pass of the PROBE block, from the loss's gradient g (is_delta) through every
 * layer after an SG module, updating nothing: at a layer with an SG module its gradient is
 * the sum of what its readers sent (true) or its prediction pred[] (bootstrap).  Sets at[k]
 * to what each SG module's layer received. */
static void probe_pass(builder *b, const char *pfx, const bool *traversed, int g, bool is_delta, const int *pred,
                       int *at)
{
    const dnic_model *m = b->m;
    int n = m->nlayers;
    b->shadow = pfx;
    int *sum = dnic_alloc(b->a, (size_t)(n + 1) * sizeof *sum); /* what each layer received, once summed */
    for (int i = 0; i < n; i++) {
        b->nsgot[i] = 0;
        sum[i] = -1;
    }
    for (int i = n - 1; i >= 0; i--) {
        if (!traversed[i])
            continue;
        if (i != m->out) {
            DNIC_ASSERT(b->nsgot[i] > 0);
            sum[i] = sum_contribs(b, i, b->sgot[i], b->nsgot[i]);
        }
        int gi = i == m->out ? g : pred && m->layers[i].sg >= 0 ? pred[m->layers[i].sg] : sum[i];
        layer_backward(b, &b->L[i], gi, i == m->out && is_delta);
    }
    for (int s = 0; s < m->nsgs; s++) {
        int k = m->sgs[s].layer;
        at[s] = m->sgs[s].state ? -1 : sum[k] >= 0 ? sum[k] : sum_contribs(b, k, b->sgot[k], b->nsgot[k]);
    }
    b->shadow = NULL;
}

/* The PROBE block (--probe): the forward pass on the probe batch with the weights as they are
 * (batch statistics, moving nothing), each SG module's prediction, the loss's gradient, then
 * two backward passes updating nothing: one of the true gradient, one as a step would
 * bootstrap from the predictions.  The runtime compares them per module. */
static void build_probe(builder *b)
{
    const dnic_model *m = b->m;
    dnic_ir *ir = b->ir;
    int n = m->nlayers;
    begin_block(b, "probe", 0, DNIC_PHASE_PROBE);
    b->probing = true;
    b->shadow = "probe:"; /* the block's own temporaries */
    for (int i = 0; i < n; i++) /* a recurrent layer's training pass learns chunk by chunk: its plain one */
        m->layers[i].kind->forward(b, &b->L[i], !m->layers[i].kind->boundaries);
    ir->probe = dnic_alloc(b->a, (size_t)(3 * m->nsgs + 1) * sizeof *ir->probe);
    int *pred = dnic_alloc(b->a, (size_t)(m->nsgs + 1) * sizeof *pred);
    for (int s = 0; s < m->nsgs; s++) {
        pred[s] = -1;
        if (!m->sgs[s].state) {
            void *use;
            pred[s] = dnic_build_sg_predict(b, s, b->L[m->sgs[s].layer].out, m->sgs[s].name, &use);
        }
    }
    /* the layers after an SG module, and those with one, get gradients */
    bool *traversed = dnic_alloc(b->a, (size_t)(n + 1) * sizeof *traversed);
    for (int i = 0; i < n; i++) {
        for (int q = 0; q < m->layers[i].nsrc; q++) {
            int src = m->layers[i].src[q];
            traversed[i] |= src >= 0 && (traversed[src] || m->layers[src].sg >= 0);
        }
        b->chain[i] = traversed[i] || m->layers[i].sg >= 0;
    }
    bool is_delta = false;
    int g = build_loss(b, &b->L[m->out], &is_delta);
    int *t = dnic_alloc(b->a, (size_t)(m->nsgs + 1) * sizeof *t), *boot = dnic_alloc(b->a, (size_t)(m->nsgs + 1) * sizeof *boot);
    probe_pass(b, "probe:true:", traversed, g, is_delta, NULL, t);
    probe_pass(b, "probe:boot:", traversed, g, is_delta, pred, boot);
    for (int s = 0; s < m->nsgs; s++) {
        ir->probe[3 * s] = pred[s];
        ir->probe[3 * s + 1] = t[s];
        ir->probe[3 * s + 2] = boot[s];
    }
    b->probing = false;
}

/* The loss at the output layer's activations: the report's accumulation and the gradient to
 * start backpropagation from (w.r.t. the pre-activation for cross-entropy with its matching
 * output, *is_delta). */
static int build_loss_of(builder *b, const dnic_layer *l, int out, int y, const char *pfx, bool *is_delta)
{
    const dnic_model *m = b->m;
    dnic_ir *ir = b->ir;
    int err = add_buf(b, dnic_sprintf(b->a, "%s.error", pfx), DNIC_BUF_TEMP, ir->batch, cols_of(b, out));
    emit(b, DNIC_OP_SUB, err, out, y, -1);
    if (m->report == DNIC_REPORT_ABS_ERROR)
        emit(b, DNIC_OP_ABS_SUM, ir->loss_acc, err, -1, -1)->accumulate = true;
    else if (m->report == DNIC_REPORT_LOSS)
        emit(b, DNIC_OP_LOSS_SUM, ir->loss_acc, out, y, -1)->act = m->loss == DNIC_LOSS_SQUARED ? DNIC_ACT_LINEAR : l->act;
    int g = err;
    /* cross-entropy with its matching output: dL/dz = p - y */
    *is_delta = m->loss != DNIC_LOSS_SQUARED;
    if (m->report == DNIC_REPORT_ABS_DELTA) {
        g = dnic_build_delta(b, l == &m->layers[m->out] && !strcmp(pfx, "loss") ? l->name : pfx, l->act, out, err,
                             *is_delta);
        *is_delta = true;
        emit(b, DNIC_OP_ABS_SUM, ir->loss_acc, g, -1, -1)->accumulate = true;
    }
    return g;
}

static int build_loss(builder *b, const dnic_layer_ir *L, bool *is_delta)
{
    return build_loss_of(b, L->l, L->out, b->ir->y, "loss", is_delta);
}

/* The per-step layers recurrent layer r's outputs feed, in order, down to the output layer:
 * each reads the one before (the checker made it so). */
static int chain_of(const builder *b, int r, int *chain)
{
    const dnic_model *m = b->m;
    int n = 0;
    for (int cur = r; cur != m->out;) {
        int next = -1;
        for (int j = 0; j < m->nlayers && next < 0; j++)
            if (m->layers[j].nsrc == 1 && m->layers[j].src[0] == cur)
                next = j;
        DNIC_ASSERT(next >= 0);
        chain[n++] = cur = next;
    }
    return n;
}

void dnic_build_chain_steps(dnic_builder *b, dnic_layer_ir *R, int k0, int k1, int *g)
{
    const dnic_model *m = b->m;
    int *chain = dnic_alloc(b->a, (size_t)m->nlayers * sizeof *chain), n = chain_of(b, R->index, chain);
    for (int j = 0; j < n; j++)
        m->layers[chain[j]].kind->forward_range(b, &b->L[chain[j]], k0, k1);
    /* the loss of steps k0..k1-1: those columns of the output and the labels */
    const dnic_layer *o = &m->layers[m->out];
    int w = o->out / R->l->outputs, B = b->ir->batch;
    const char *pfx = dnic_sprintf(b->a, "loss.steps%d", k0 + 1);
    int out = add_buf(b, dnic_sprintf(b->a, "%s.out", pfx), DNIC_BUF_TEMP, B, (k1 - k0) * w);
    int y = add_buf(b, dnic_sprintf(b->a, "%s.labels", pfx), DNIC_BUF_TEMP, B, (k1 - k0) * w);
    emit(b, DNIC_OP_SLICE, out, b->L[m->out].out, -1, -1)->off = k0 * w;
    emit(b, DNIC_OP_SLICE, y, b->ir->y, -1, -1)->off = k0 * w;
    bool is_delta;
    int err = build_loss_of(b, o, out, y, pfx, &is_delta);
    int *gs = dnic_alloc(b->a, (size_t)(k1 - k0) * sizeof *gs);
    for (int k = k0; k < k1; k++) {
        gs[k - k0] = add_buf(b, dnic_sprintf(b->a, "%s.grad%d", o->name, k + 1), DNIC_BUF_TEMP, B, w);
        emit(b, DNIC_OP_SLICE, gs[k - k0], err, -1, -1)->off = (k - k0) * w;
    }
    /* backward along the chain; the first sends R its gradient when R wants one */
    for (int j = n - 1; j >= 0; j--) {
        const dnic_layer *l = &m->layers[chain[j]];
        int *src = j > 0 || edge_needs_grad(b, l, 0) ? dnic_alloc(b->a, (size_t)(k1 - k0) * sizeof *src) : NULL;
        l->kind->backward_range(b, &b->L[chain[j]], gs, is_delta && j == n - 1, k0, k1, src);
        gs = src;
    }
    for (int k = k0; k < k1; k++)
        g[k - k0] = gs ? gs[k - k0] : -1;
}

/* Stage k's step: its layers' forward passes in layer order, its SG modules' predictions, the
 * loss where the stage has the output layer, then every layer's backward pass in reverse
 * layer order, each from its synthetic gradient, the loss's or the sum its consumers sent. */
static void build_stage(builder *b, int k, sgmod *sgs)
{
    const dnic_model *m = b->m;
    int last = -1;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].stage == k)
            last = i;
    DNIC_ASSERT(last >= 0);
    begin_block(b, dnic_sprintf(b->a, "%s.step", m->layers[last].name), k, DNIC_PHASE_STEP);
    for (int i = 0; i <= last; i++) {
        if (m->layers[i].stage != k || b->chained[i])
            continue;
        /* sg NAME.input: the layer reads its input predicted from x, not its source's output */
        int si = b->dni ? m->layers[i].input_sg : -1;
        if (si >= 0) {
            build_sg_predict(b, &sgs[si], -1, m->sgs[si].name);
            b->L[i].in[0] = sgs[si].pred;
        }
        m->layers[i].kind->forward(b, &b->L[i], true);
        if (si >= 0) /* the backward pass and the predict block read what the forward pass kept */
            b->L[i].in[0] = b->L[m->layers[i].src[0]].out;
    }
    for (int i = 0; i <= last; i++)
        if (m->layers[i].stage == k && b->dni && m->layers[i].sg >= 0)
            build_sg_predict(b, &sgs[m->layers[i].sg], b->L[i].out, m->sgs[m->layers[i].sg].name);
    for (int i = last; i >= 0; i--) {
        const dnic_layer *l = &m->layers[i];
        if (l->stage != k || b->chained[i])
            continue;
        int g;
        bool is_delta = false;
        if (l->chunked)
            g = -1; /* it learnt chunk by chunk with the layers after it */
        else if (b->dni && l->sg >= 0)
            g = sgs[l->sg].applied;
        else if (i == m->out)
            g = build_loss(b, &b->L[i], &is_delta);
        else if (b->nneed[i] == 0)
            continue; /* nothing up to it trains: no gradient comes here */
        else
            g = gradient_of(b, i);
        layer_backward(b, &b->L[i], g, is_delta);
    }
    /* train.update_prob: the stage's updates are skipped in a step the runtime holds it */
    if (m->train.update_prob >= 0) {
        int hold = add_buf(b, dnic_sprintf(b->a, "%s.hold", b->blk->name), DNIC_BUF_TEMP, 1, 1);
        b->ir->stage_hold[k] = hold;
        for (int i = 0; i < b->blk->nops; i++)
            if (dnic_op_table[b->blk->ops[i].op].dst == DNIC_DST_UPDATE)
                b->blk->ops[i].hold = hold;
    }
}

/* Which layers receive gradients, from how many consumer edges: not those with nothing to do
 * with one (frozen layers that read only the input or such layers). */
static void plan_gradients(builder *b)
{
    const dnic_model *m = b->m;
    dnic_arena *a = b->a;
    int n = m->nlayers;
    b->wants = dnic_alloc(a, (size_t)n * sizeof *b->wants);
    for (int i = 0; i < n; i++) {
        const dnic_layer *l = &m->layers[i];
        b->wants[i] = l->trainable && l->kind->has_params;
        for (int k = 0; k < l->nsrc; k++)
            b->wants[i] |= edge_needs_grad(b, l, k);
    }
    b->nneed = dnic_alloc(a, (size_t)n * sizeof *b->nneed);
    b->ngot = dnic_alloc(a, (size_t)n * sizeof *b->ngot);
    b->got = dnic_alloc(a, (size_t)n * sizeof *b->got);
    for (int i = 0; i < n; i++)
        for (int k = 0; k < m->layers[i].nsrc; k++)
            if (edge_needs_grad(b, &m->layers[i], k))
                b->nneed[m->layers[i].src[k]]++;
    for (int i = 0; i < n; i++)
        b->got[i] = dnic_alloc(a, (size_t)(b->nneed[i] + 1) * sizeof *b->got[i]);
}

/* train.warmup: one step of backpropagation through the whole graph (every layer learns from
 * its true gradient, as in backprop mode) in which the SG modules predict, then learn from the
 * true gradient at their layers, nearest the loss first.  It computes the DNI step's buffers
 * again, under their names, and the runtime runs it alone in place of the step's blocks. */
static void build_warmup(builder *b, sgmod *sgs)
{
    const dnic_model *m = b->m;
    int n = m->nlayers;
    b->whole = b->reuse = true;
    bool dni = b->dni;
    b->dni = false;
    plan_gradients(b);
    begin_block(b, "warmup", b->ir->nstages - 1, DNIC_PHASE_WARMUP);
    for (int i = 0; i < n; i++)
        m->layers[i].kind->forward(b, &b->L[i], true);
    for (int i = 0; i < n; i++)
        if (m->layers[i].sg >= 0)
            build_sg_predict(b, &sgs[m->layers[i].sg], b->L[i].out, m->sgs[m->layers[i].sg].name);
    int *g = dnic_alloc(b->a, (size_t)n * sizeof *g);
    for (int i = n - 1; i >= 0; i--) {
        bool is_delta = false;
        g[i] = -1;
        if (i == m->out)
            g[i] = build_loss(b, &b->L[i], &is_delta);
        else if (b->nneed[i] > 0)
            g[i] = gradient_of(b, i);
        if (g[i] >= 0)
            layer_backward(b, &b->L[i], g[i], is_delta);
    }
    for (int s = m->nsgs - 1; s >= 0; s--) {
        DNIC_ASSERT(!m->sgs[s].state && g[m->sgs[s].layer] >= 0);
        build_sg_learn(b, &sgs[s], g[m->sgs[s].layer], m->sgs[s].name);
    }
    b->dni = dni;
    b->whole = b->reuse = false;
}

/* The STREAM block (objects of models whose layers carry state): the forward pass again, each
 * such layer starting from the state in a buffer of its own and leaving its last one in another. */
static void build_stream(builder *b)
{
    const dnic_model *m = b->m;
    dnic_ir *ir = b->ir;
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        n += m->layers[i].kind->forward_stream != NULL;
    if (n == 0)
        return;
    ir->state_in = dnic_alloc(b->a, (size_t)n * sizeof *ir->state_in);
    ir->state_out = dnic_alloc(b->a, (size_t)n * sizeof *ir->state_out);
    begin_block(b, "predict_state", 0, DNIC_PHASE_STREAM);
    for (int i = 0; i < m->nlayers; i++) {
        const dnic_layer_kind *k = m->layers[i].kind;
        if (!k->forward_stream) {
            k->forward(b, &b->L[i], false);
            continue;
        }
        ir->state_in[ir->nstates] = k->forward_stream(b, &b->L[i], &ir->state_out[ir->nstates]);
        ir->nstates++;
    }
    /* the states it starts from are the caller's to write: its imports (in buffer order) */
    b->blk->imports = ir->state_in;
    b->blk->nimports = ir->nstates;
}

dnic_ir *dnic_ir_build(dnic_arena *a, const dnic_model *m)
{
    dnic_ir *ir = dnic_alloc(a, sizeof *ir);
    builder bb = {.a = a, .ir = ir, .m = m}, *b = &bb;
    ir->model = m;
    ir->dtype = m->train.dtype;
    ir->batch = m->train.batch;
    int B = ir->batch, n = m->nlayers;
    b->dni = m->train.mode == DNIC_MODE_DNI && m->nsgs > 0;

    ir->x = add_buf(b, "x", DNIC_BUF_INPUT, B, m->data.inputs);
    ir->y = add_buf(b, "y", DNIC_BUF_LABELS, B, m->data.labels);
    ir->loss_acc = add_buf(b, "loss.sum", DNIC_BUF_ACC, 1, 1);
    ir->sg_acc_first = -1;

    /* parameters in construction order: each layer's, then its SG module's */
    b->L = dnic_alloc(a, (size_t)n * sizeof *b->L);
    sgmod *sgs = dnic_alloc(a, (size_t)(m->nsgs + 1) * sizeof *sgs);
    b->sgs = sgs;
    for (int i = 0; i < n; i++) {
        dnic_layer_ir *L = &b->L[i];
        L->l = &m->layers[i];
        L->index = i;
        if (m->layers[i].kind->params)
            m->layers[i].kind->params(b, L);
        if (b->dni && m->layers[i].sg >= 0)
            build_sg_params(b, &sgs[m->layers[i].sg], &m->sgs[m->layers[i].sg]);
        if (b->dni && m->layers[i].state_sg >= 0)
            build_sg_params(b, &sgs[m->layers[i].state_sg], &m->sgs[m->layers[i].state_sg]);
        if (b->dni && m->layers[i].input_sg >= 0)
            build_sg_params(b, &sgs[m->layers[i].input_sg], &m->sgs[m->layers[i].input_sg]);
    }
    for (int i = 0; i < n; i++) {
        dnic_layer_ir *L = &b->L[i];
        for (int k = 0; k < L->l->nsrc; k++)
            L->in[k] = L->l->src[k] < 0 ? ir->x : b->L[L->l->src[k]].out;
        L->out = add_buf(b, dnic_sprintf(a, "%s.out", L->l->name), DNIC_BUF_TEMP, B, L->l->out);
    }
    if (b->dni)
        for (int s = 0; s < m->nsgs; s++) {
            int acc = add_buf(b, dnic_sprintf(a, "%s.sg.loss", m->sgs[s].name), DNIC_BUF_ACC, 1, 1);
            if (s == 0)
                ir->sg_acc_first = acc;
            sgs[s].acc = acc;
        }
    plan_gradients(b);
    /* true gradients: the layers that an SG module cuts off from the loss, and those of them that
     * a true gradient goes through after their step (after an SG module with target = true or
     * mix) */
    b->cut = dnic_alloc(a, (size_t)(n + 1) * sizeof *b->cut);
    b->keep = dnic_alloc(a, (size_t)(n + 1) * sizeof *b->keep);
    b->chain = dnic_alloc(a, (size_t)(n + 1) * sizeof *b->chain);
    b->nsgot = dnic_alloc(a, (size_t)(n + 1) * sizeof *b->nsgot);
    b->sgot = dnic_alloc(a, (size_t)(n + 1) * sizeof *b->sgot);
    for (int i = n - 1; i >= 0 && b->dni; i--) {
        b->cut[i] = m->layers[i].sg >= 0;
        for (int q = i + 1; q < n; q++)
            for (int r = 0; r < m->layers[q].nsrc; r++)
                b->cut[i] |= m->layers[q].src[r] == i && b->cut[q];
    }
    for (int s = 0; s < m->nsgs && b->dni; s++) {
        if (m->sgs[s].target == DNIC_TARGET_BOOTSTRAP || m->sgs[s].state)
            continue;
        bool *down = dnic_alloc(a, (size_t)(n + 1) * sizeof *down);
        for (int i = m->sgs[s].layer + 1; i < n; i++)
            for (int q = 0; q < m->layers[i].nsrc; q++) {
                int src = m->layers[i].src[q];
                down[i] |= src == m->sgs[s].layer || (src >= 0 && down[src]);
            }
        for (int i = 0; i < n; i++)
            b->keep[i] |= down[i] && b->cut[i];
    }
    for (int i = 0; i < n; i++)
        b->sgot[i] = dnic_alloc(a, (size_t)(b->nneed[i] + 1) * sizeof *b->sgot[i]);
    b->chained = dnic_alloc(a, (size_t)n * sizeof *b->chained);
    int *chain = dnic_alloc(a, (size_t)n * sizeof *chain);
    for (int i = 0; i < n; i++)
        if (m->layers[i].chunked)
            for (int j = 0, nc = chain_of(b, i, chain); j < nc; j++)
                b->chained[chain[j]] = true;

    ir->nstages = b->dni ? m->nstages : 1;
    if (m->train.update_prob >= 0)
        ir->stage_hold = dnic_alloc(a, (size_t)ir->nstages * sizeof *ir->stage_hold);
    for (int k = 0; k < ir->nstages; k++)
        build_stage(b, k, sgs);
    /* SG modules learn once their targets have arrived, nearest the loss first (the seeds'
     * order; any order gives the same numbers, since each touches only its own module) */
    for (int s = m->nsgs - 1; s >= 0 && b->dni; s--) {
        const dnic_layer *l = &m->layers[m->sgs[s].layer];
        begin_block(b, dnic_sprintf(a, "%s.sg_update", m->sgs[s].name), l->stage, DNIC_PHASE_SG_UPDATE);
        if (m->sgs[s].input) { /* a synthetic input learns from the real one */
            build_sg_learn(b, &sgs[s], b->L[l->src[0]].out, m->sgs[s].name);
            continue;
        }
        if (!m->sgs[s].state) {
            build_sg_update(b, &sgs[s]);
            continue;
        }
        /* a module at truncation boundaries: from each boundary's target in the step's order */
        for (int i = 0; i < b->learns.n; i++) {
            learn *le = b->learns.v[i];
            if (le->sg == s)
                build_sg_learn(b, le->use, le->target, le->pfx);
        }
    }
    if (b->dni && m->train.warmup > 0)
        build_warmup(b, sgs);
    if (m->train.probe && b->dni)
        build_probe(b);
    /* inference: the forward pass alone */
    begin_block(b, "predict", 0, DNIC_PHASE_PREDICT);
    for (int i = 0; i < n; i++)
        m->layers[i].kind->forward(b, &b->L[i], false);
    ir->out = b->L[m->out].out;
    if (m->train.stream)
        build_stream(b);
    dnic_ir_link(a, ir);
    return ir;
}

int dnic_ir_block_acc(const dnic_ir *ir, int b)
{
    const dnic_ir_block *blk = &ir->blocks[b];
    for (int i = 0; i < blk->nops; i++)
        if (dnic_op_table[blk->ops[i].op].dst == DNIC_DST_ACC)
            return blk->ops[i].dst;
    return -1;
}

double dnic_ir_block_cost(const dnic_ir *ir, int b)
{
    const dnic_ir_block *blk = &ir->blocks[b];
    double cost = 0;
    for (int i = 0; i < blk->nops; i++)
        cost += dnic_op_table[blk->ops[i].op].flops(ir, &blk->ops[i]);
    return cost;
}

double dnic_ir_true_cost(const dnic_ir *ir, int sg, double *copies)
{
    double cost = 0, copy = 0;
    for (int b = 0; b < ir->nblocks; b++) {
        const dnic_ir_block *blk = &ir->blocks[b];
        if (!DNIC_PHASE_TRAINS(blk->phase))
            continue;
        /* a module's true gradient is built in its sg_update block, "NAME.sg_update" */
        size_t len = sg >= 0 ? strlen(ir->model->sgs[sg].name) : 0;
        bool mine = sg < 0 || (blk->phase == DNIC_PHASE_SG_UPDATE && !strncmp(blk->name, ir->model->sgs[sg].name, len) &&
                               !strcmp(blk->name + len, ".sg_update"));
        for (int i = 0; i < blk->nops; i++) {
            const dnic_ir_op *o = &blk->ops[i];
            if (!o->truegrad)
                continue;
            double f = dnic_op_table[o->op].flops(ir, o);
            if (blk->phase == DNIC_PHASE_STEP)
                copy += f;
            else if (mine)
                cost += f;
        }
    }
    if (copies)
        *copies = copy;
    return cost;
}

int dnic_ir_block_reads(const dnic_ir *ir, int b)
{
    const dnic_ir_block *blk = &ir->blocks[b];
    int reads = 0;
    for (int i = 0; i < blk->nops; i++)
        for (int k = 0; k < DNIC_MAX_SRC; k++) {
            reads |= blk->ops[i].src[k] == ir->x ? DNIC_READS_X : 0;
            reads |= blk->ops[i].src[k] == ir->y ? DNIC_READS_Y : 0;
        }
    return reads;
}
