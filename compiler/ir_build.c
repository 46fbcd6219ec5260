/* Builds the training step's IR from the checked model: buffers for parameters, activations,
 * gradients and messages, and the ops of each stage's blocks in the order of
 * docs/semantics.md (the seeds' order for DNI, ordinary backpropagation otherwise). */
#include <math.h>
#include <string.h>

#include "dnic.h"

typedef struct builder {
    dnic_arena *a;
    dnic_ir *ir;
    const dnic_model *m;
    dnic_ir_block *blk;
    int init_order;
} builder;

/* A dense unit of the chain or of an SG module, as backpropagation sees it. */
typedef struct unit {
    int w, b;        /* parameters (b = -1 without bias) */
    int in, out;     /* buffers */
    int grad_in;     /* where the gradient w.r.t. `in` goes (-1: not needed) */
    const char *name;
    dnic_act act;
    double lr;
} unit;

static const char *const OP_NAMES[] = {
#define DNIC_OP(e, name, nsrc) name,
#include "ir_ops.def"
#undef DNIC_OP
};
static const int OP_NSRC[] = {
#define DNIC_OP(e, name, nsrc) nsrc,
#include "ir_ops.def"
#undef DNIC_OP
};
_Static_assert(sizeof OP_NAMES / sizeof OP_NAMES[0] == DNIC_OP_COUNT, "op table and enum disagree");

const char *dnic_op_name(dnic_op op)
{
    DNIC_ASSERT((unsigned)op < DNIC_OP_COUNT);
    return OP_NAMES[op];
}

int dnic_op_nsrc(dnic_op op)
{
    DNIC_ASSERT((unsigned)op < DNIC_OP_COUNT);
    return OP_NSRC[op];
}

static int add_buf(builder *b, const char *name, dnic_buf_kind kind, int rows, int cols)
{
    dnic_ir *ir = b->ir;
    if (ir->nbufs == ir->capbufs) {
        int cap = ir->capbufs ? ir->capbufs * 2 : 32;
        dnic_buffer_desc *nb = dnic_alloc(b->a, (size_t)cap * sizeof *nb);
        if (ir->nbufs)
            memcpy(nb, ir->bufs, (size_t)ir->nbufs * sizeof *nb);
        ir->bufs = nb;
        ir->capbufs = cap;
    }
    dnic_buffer_desc *d = &ir->bufs[ir->nbufs];
    d->name = name;
    d->kind = kind;
    d->dtype = kind == DNIC_BUF_ACC ? DNIC_F64 : ir->dtype;
    d->rows = rows;
    d->cols = cols;
    d->init_order = -1;
    return ir->nbufs++;
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
    o->src[3] = -1;
    o->nsrc = dnic_op_nsrc(op);
    o->act = DNIC_ACT_LINEAR;
    o->scratch = -1;
    o->state[0] = o->state[1] = o->state[2] = -1;
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

static void forward(builder *b, const unit *u)
{
    emit(b, DNIC_OP_DENSE, u->out, u->in, u->w, u->b)->act = u->act;
}

/* A weight update reads A(m, k) = x[k, m], k a row of x apart: every k of a tile's loop loads
 * another cache line.  When x's rows are a multiple of 512 bytes, those lines fall into at most
 * 8 of the 64 sets of a 32 KiB, 8-way L1 data cache, and past 8 of them (the batch) they evict
 * one another before the next row tile can reuse them; then reading x^T along its rows is well
 * worth the copy (bench/gemm.dni, a 1024x1024 update at batch 256: 10.6 ms before, 5.8 ms
 * after; its 1024x30 update too: a step 7 % faster; docs/benchmarks.md). */
bool dnic_sgd_w_transposes(int rows, int batch, dnic_dtype t)
{
    enum { ALIASING_STRIDE = 512, L1_WAYS = 8 };
    return batch > L1_WAYS && rows * (t == DNIC_F64 ? 8 : 4) % ALIASING_STRIDE == 0;
}

/* An update of parameter `param` with the model's optimiser and its state buffers. */
static dnic_ir_op *update(builder *b, dnic_op op, int param, int s0, int s1, double lr)
{
    const dnic_opt_spec *opt = &b->m->train.opt;
    dnic_ir_op *o = emit(b, op, param, s0, s1, -1);
    o->lr = lr;
    o->opt = *opt;
    const dnic_buffer_desc *p = &b->ir->bufs[param];
    const char *pn = p->name;
    int rows = p->rows, cols = p->cols;
    if (opt->kind == DNIC_OPT_MOMENTUM) {
        o->state[0] = add_buf(b, dnic_sprintf(b->a, "%s.velocity", pn), DNIC_BUF_STATE, rows, cols);
    } else if (opt->kind == DNIC_OPT_ADAM) {
        o->state[0] = add_buf(b, dnic_sprintf(b->a, "%s.adam_m", pn), DNIC_BUF_STATE, rows, cols);
        o->state[1] = add_buf(b, dnic_sprintf(b->a, "%s.adam_v", pn), DNIC_BUF_STATE, rows, cols);
        o->state[2] = add_buf(b, dnic_sprintf(b->a, "%s.adam_t", pn), DNIC_BUF_STATE, 1, 1);
        b->ir->bufs[o->state[2]].dtype = DNIC_F64;
    }
    return o;
}

/* The backward message grad_in = dz . W^T, through a transposed copy of W so that the
 * product reads both operands contiguously. */
static void message(builder *b, const unit *u, int dz)
{
    const dnic_buffer_desc *w = &b->ir->bufs[u->w];
    int t = add_buf(b, dnic_sprintf(b->a, "%s.t", w->name), DNIC_BUF_TEMP, w->cols, w->rows);
    emit(b, DNIC_OP_MATMUL_NT, u->grad_in, dz, u->w, -1)->scratch = t;
}

/* Backpropagates `g` (the gradient w.r.t. the last unit's output; when g_is_delta it is
 * already w.r.t. its pre-activation) through units[n-1..0], updating each unit's parameters
 * and sending each unit's message to grad_in in the model's order (before or after the
 * update: docs/semantics.md). */
static void backward(builder *b, const unit *units, int n, int g, bool g_is_delta)
{
    bool after = b->m->train.message == DNIC_MSG_AFTER_UPDATE;
    for (int i = n - 1; i >= 0; i--) {
        const unit *u = &units[i];
        int dz = g;
        if (!(g_is_delta && i == n - 1) && u->act != DNIC_ACT_LINEAR) {
            dz = add_buf(b, dnic_sprintf(b->a, "%s.delta", u->name), DNIC_BUF_TEMP, rows_of(b, g), cols_of(b, g));
            emit(b, DNIC_OP_ACT_GRAD, dz, g, u->out, -1)->act = u->act;
        }
        if (!after && u->grad_in >= 0)
            message(b, u, dz);
        const dnic_buffer_desc *w = &b->ir->bufs[u->w];
        dnic_ir_op *o = update(b, DNIC_OP_SGD_W, u->w, u->in, dz, u->lr);
        if (dnic_sgd_w_transposes(w->rows, b->ir->batch, b->ir->dtype))
            o->scratch = add_buf(b, dnic_sprintf(b->a, "%s.input.t", w->name), DNIC_BUF_TEMP, w->rows, b->ir->batch);
        if (u->b >= 0)
            update(b, DNIC_OP_SGD_B, u->b, dz, -1, u->lr);
        if (after && u->grad_in >= 0)
            message(b, u, dz);
        g = u->grad_in;
    }
}

/* An SG module: its parameters (created in construction order right after its layer's),
 * its input, and its dense units. */
typedef struct sgmod {
    const dnic_sg *sg;
    int in;          /* the SG input buffer */
    int pred;        /* the synthetic gradient */
    int target;      /* the message from the next stage: <layer>.grad */
    int acc;         /* synthetic-loss accumulator */
    unit units[9];
    int nunits;
} sgmod;

static void build_sg_params(builder *b, sgmod *s, const dnic_sg *sg)
{
    const dnic_model *m = b->m;
    const dnic_layer *l = &m->layers[sg->layer];
    int B = b->ir->batch;
    s->sg = sg;
    s->nunits = sg->nhidden + 1;
    int width = sg->in_width;
    for (int i = 0; i < s->nunits; i++) {
        bool last = i == s->nunits - 1;
        int outw = last ? l->out : sg->hidden[i];
        const char *pfx = sg->nhidden ? dnic_sprintf(b->a, "%s.sg.%d", l->name, i) : dnic_sprintf(b->a, "%s.sg", l->name);
        unit *u = &s->units[i];
        u->name = pfx;
        u->w = add_param(b, dnic_sprintf(b->a, "%s.weight", pfx), width, outw, sg->w_init, width, outw);
        u->b = add_param(b, dnic_sprintf(b->a, "%s.bias", pfx), 1, outw, sg->b_init, width, outw);
        u->act = last ? DNIC_ACT_LINEAR : sg->hidden_act;
        u->lr = sg->lr;
        u->out = last ? -1 : add_buf(b, dnic_sprintf(b->a, "%s.out", pfx), DNIC_BUF_TEMP, B, outw);
        width = outw;
    }
}

/* The SG input (a concatenation when it has several parts) and the prediction. */
static void build_sg_predict(builder *b, sgmod *s, int layer_out)
{
    const dnic_sg *sg = s->sg;
    const dnic_layer *l = &b->m->layers[sg->layer];
    int parts[3];
    for (int p = 0; p < sg->nparts; p++)
        parts[p] = sg->parts[p] == DNIC_SG_OUTPUT ? layer_out : sg->parts[p] == DNIC_SG_LABELS ? b->ir->y : b->ir->x;
    if (sg->nparts == 1) {
        s->in = parts[0];
    } else {
        s->in = add_buf(b, dnic_sprintf(b->a, "%s.sg.in", l->name), DNIC_BUF_TEMP, b->ir->batch, sg->in_width);
        emit(b, DNIC_OP_CONCAT, s->in, parts[0], parts[1], sg->nparts > 2 ? parts[2] : -1);
    }
    s->pred = add_buf(b, dnic_sprintf(b->a, "%s.sg.pred", l->name), DNIC_BUF_TEMP, b->ir->batch, l->out);
    int in = s->in;
    for (int i = 0; i < s->nunits; i++) {
        unit *u = &s->units[i];
        u->in = in;
        if (i == s->nunits - 1)
            u->out = s->pred;
        u->grad_in = i > 0 ? add_buf(b, dnic_sprintf(b->a, "%s.grad", bname(b, in)), DNIC_BUF_TEMP, b->ir->batch,
                                     cols_of(b, in))
                           : -1;
        forward(b, u);
        in = u->out;
    }
}

/* The SG module regresses its prediction toward the target that arrived. */
static void build_sg_update(builder *b, sgmod *s)
{
    const dnic_layer *l = &b->m->layers[s->sg->layer];
    int delta = add_buf(b, dnic_sprintf(b->a, "%s.sg.delta", l->name), DNIC_BUF_TEMP, b->ir->batch, l->out);
    emit(b, DNIC_OP_SUB, delta, s->pred, s->target, -1);
    emit(b, DNIC_OP_ABS_SUM, s->acc, delta, -1, -1)->accumulate = true;
    backward(b, s->units, s->nunits, delta, true);
}

dnic_ir *dnic_ir_build(dnic_arena *a, const dnic_model *m)
{
    dnic_ir *ir = dnic_alloc(a, sizeof *ir);
    builder bb = {.a = a, .ir = ir, .m = m}, *b = &bb;
    ir->model = m;
    ir->dtype = m->train.dtype;
    ir->batch = m->train.batch;
    int B = ir->batch, n = m->nlayers;
    bool dni = m->train.mode == DNIC_MODE_DNI && m->nsgs > 0;

    ir->x = add_buf(b, "x", DNIC_BUF_INPUT, B, m->data.inputs);
    ir->y = add_buf(b, "y", DNIC_BUF_LABELS, B, m->data.labels);
    ir->loss_acc = add_buf(b, "loss.sum", DNIC_BUF_ACC, 1, 1);
    ir->sg_acc_first = -1;

    /* parameters in construction order: each layer's weight and bias, then its SG module's */
    unit *units = dnic_alloc(a, (size_t)n * sizeof *units);
    sgmod *sgs = dnic_alloc(a, (size_t)(m->nsgs + 1) * sizeof *sgs);
    for (int i = 0; i < n; i++) {
        const dnic_layer *l = &m->layers[i];
        unit *u = &units[i];
        u->name = l->name;
        u->act = l->act;
        u->lr = m->train.lr;
        u->w = add_param(b, dnic_sprintf(a, "%s.weight", l->name), l->in, l->out, l->w_init, l->in, l->out);
        u->b = l->bias ? add_param(b, dnic_sprintf(a, "%s.bias", l->name), 1, l->out, l->b_init, l->in, l->out) : -1;
        if (dni && l->sg >= 0)
            build_sg_params(b, &sgs[l->sg], &m->sgs[l->sg]);
    }
    for (int i = 0; i < n; i++) {
        units[i].in = i == 0 ? ir->x : units[i - 1].out;
        units[i].out = add_buf(b, dnic_sprintf(a, "%s.out", m->layers[i].name), DNIC_BUF_TEMP, B, m->layers[i].out);
    }
    if (dni)
        for (int s = 0; s < m->nsgs; s++) {
            int acc = add_buf(b, dnic_sprintf(a, "%s.sg.loss", m->sgs[s].name), DNIC_BUF_ACC, 1, 1);
            if (s == 0)
                ir->sg_acc_first = acc;
            sgs[s].acc = acc;
        }
    /* gradient buffers w.r.t. each layer's output (a stage boundary's is the message) */
    for (int i = 0; i + 1 < n; i++)
        units[i + 1].grad_in =
            add_buf(b, dnic_sprintf(a, "%s.grad", m->layers[i].name), DNIC_BUF_TEMP, B, m->layers[i].out);
    units[0].grad_in = -1;
    for (int s = 0; s < m->nsgs && dni; s++)
        sgs[s].target = units[m->sgs[s].layer + 1].grad_in;

    /* stages: a DNI stage ends at a layer with an SG module; backprop is one stage */
    int stage = 0, first = 0;
    for (int i = 0; i < n; i++) {
        const dnic_layer *l = &m->layers[i];
        bool boundary = dni && l->sg >= 0;
        if (!boundary && i != n - 1)
            continue;
        begin_block(b, dnic_sprintf(a, "%s.step", l->name), stage, DNIC_PHASE_STEP);
        for (int j = first; j <= i; j++)
            forward(b, &units[j]);
        int g;
        bool g_is_delta = false;
        if (boundary) {
            build_sg_predict(b, &sgs[l->sg], units[i].out);
            g = sgs[l->sg].pred;
        } else {
            int err = add_buf(b, "loss.error", DNIC_BUF_TEMP, B, l->out);
            emit(b, DNIC_OP_SUB, err, units[i].out, ir->y, -1);
            if (m->report == DNIC_REPORT_ABS_ERROR)
                emit(b, DNIC_OP_ABS_SUM, ir->loss_acc, err, -1, -1)->accumulate = true;
            else if (m->report == DNIC_REPORT_LOSS)
                emit(b, DNIC_OP_LOSS_SUM, ir->loss_acc, units[i].out, ir->y, -1)->act =
                    m->loss == DNIC_LOSS_SQUARED ? DNIC_ACT_LINEAR : l->act;
            g = err;
            /* cross-entropy with its matching output: dL/dz = p - y */
            g_is_delta = m->loss != DNIC_LOSS_SQUARED;
            if (m->report == DNIC_REPORT_ABS_DELTA) {
                if (!g_is_delta && l->act != DNIC_ACT_LINEAR) {
                    int dz = add_buf(b, dnic_sprintf(a, "%s.delta", l->name), DNIC_BUF_TEMP, B, l->out);
                    emit(b, DNIC_OP_ACT_GRAD, dz, err, units[i].out, -1)->act = l->act;
                    g = dz;
                    g_is_delta = true;
                }
                emit(b, DNIC_OP_ABS_SUM, ir->loss_acc, g, -1, -1)->accumulate = true;
            }
        }
        /* the first stage sends no message: nothing reads the input's gradient */
        int saved = units[first].grad_in;
        if (first == 0)
            units[first].grad_in = -1;
        backward(b, &units[first], i - first + 1, g, g_is_delta);
        units[first].grad_in = saved;
        first = i + 1;
        stage++;
    }
    ir->nstages = stage;
    /* SG modules learn once their targets have arrived, nearest the loss first (the seeds'
     * order; any order gives the same numbers, since each touches only its own module) */
    for (int s = m->nsgs - 1; s >= 0 && dni; s--) {
        const dnic_layer *l = &m->layers[m->sgs[s].layer];
        int st = 0;
        for (int i = 0; i < m->sgs[s].layer; i++)
            st += m->layers[i].sg >= 0;
        begin_block(b, dnic_sprintf(a, "%s.sg_update", l->name), st, DNIC_PHASE_SG_UPDATE);
        build_sg_update(b, &sgs[s]);
    }
    /* inference: the chain's forward pass alone */
    begin_block(b, "predict", 0, DNIC_PHASE_PREDICT);
    for (int i = 0; i < n; i++)
        forward(b, &units[i]);
    ir->out = units[n - 1].out;
    return ir;
}

int dnic_ir_block_acc(const dnic_ir *ir, int b)
{
    const dnic_ir_block *blk = &ir->blocks[b];
    for (int i = 0; i < blk->nops; i++)
        if (blk->ops[i].op == DNIC_OP_ABS_SUM || blk->ops[i].op == DNIC_OP_LOSS_SUM)
            return blk->ops[i].dst;
    return -1;
}

double dnic_ir_block_cost(const dnic_ir *ir, int b)
{
    const dnic_ir_block *blk = &ir->blocks[b];
    double cost = 0;
    for (int i = 0; i < blk->nops; i++) {
        const dnic_ir_op *o = &blk->ops[i];
        const dnic_buffer_desc *d = &ir->bufs[o->dst];
        double n = (double)d->rows * d->cols;
        switch (o->op) {
        case DNIC_OP_DENSE: cost += 2 * n * ir->bufs[o->src[1]].rows; break;
        case DNIC_OP_MATMUL_NT: cost += 2 * n * ir->bufs[o->src[0]].cols; break;
        case DNIC_OP_SGD_W: cost += 2 * n * ir->batch; break;
        case DNIC_OP_SGD_B: cost += n * ir->batch; break;
        default: cost += o->nsrc ? (double)ir->bufs[o->src[0]].rows * ir->bufs[o->src[0]].cols : n; break;
        }
    }
    return cost;
}

int dnic_ir_block_reads(const dnic_ir *ir, int b)
{
    const dnic_ir_block *blk = &ir->blocks[b];
    int reads = 0;
    for (int i = 0; i < blk->nops; i++)
        for (int k = 0; k < 4; k++) {
            reads |= blk->ops[i].src[k] == ir->x ? DNIC_READS_X : 0;
            reads |= blk->ops[i].src[k] == ir->y ? DNIC_READS_Y : 0;
        }
    return reads;
}
