/* The recurrent layers, rnn and lstm: over `steps` time steps from a zero state, the output the
 * last state h_T.  rnn: h_t = act(x_t . W_ih + b + h_{t-1} . W_hh).  lstm: z_t = x_t . W_ih + b
 * + h_{t-1} . W_hh holds the gates i, f, g, o (PyTorch's order), c_t = f c_{t-1} + i g,
 * h_t = o tanh(c_t).  A training step sees whole sequences; truncated BPTT cuts each into
 * chunks of `unroll` steps, each chunk updating the weights from its own gradient as soon as
 * it has one: from `sg NAME.state`, the SG module at the chunk's end boundary (the last chunk:
 * from the layer's consumers).  docs/semantics.md, "Recurrent layers", gives the equations in
 * the order built here. */
#include <stdio.h>
#include <string.h>

#include "copytask.h"
#include "layers.h"

/* layer NAME = rnn(SOURCE, WIDTH) { steps input activation bias init recurrent_init bias_init unroll lr outputs },
 * and lstm alike without activation (its gates have theirs) */
static const char *const SETTINGS[] = {"steps", "input", "activation", "bias", "init", "recurrent_init", "bias_init",
                                       "unroll", "lr", "outputs", NULL};
static const char *const LSTM_SETTINGS[] = {"steps", "input", "bias", "init", "recurrent_init", "bias_init", "unroll",
                                            "lr", "outputs", NULL};

static void check_kind(dnic_checker *c, const dnic_decl *d, dnic_layer *l, bool lstm)
{
    dnic_rnn_cfg *cfg = dnic_alloc(dnic_checker_arena(c), sizeof *cfg);
    dnic_diag *diag = dnic_checker_diag(c);
    l->cfg = cfg;
    cfg->lstm = lstm;
    l->act = lstm ? DNIC_ACT_LINEAR : DNIC_ACT_TANH;
    cfg->bias = true;
    cfg->w_init = (dnic_init){DNIC_INIT_XAVIER_UNIFORM, 1, 0};
    cfg->b_init = (dnic_init){DNIC_INIT_ZEROS, 1, 0};
    const dnic_arg *w = d->call->args.v[d->call->args.n - 1];
    dnic_setting ws = {.key = "width", .value = w->value};
    dnic_check_int(c, &ws, 1, 1 << 20, &cfg->hidden);
    cfg->outputs = 1;
    static const char *const inputs[] = {"split", "repeat"};
    const dnic_setting *s;
    if ((s = dnic_setting_find(d, "input")))
        cfg->repeat = dnic_check_enum(c, s, inputs, 2) == 1;
    /* reading copy data step by step, the sequence's steps and labelled steps are the data's */
    const dnic_data_spec *ds = &dnic_checker_model(c)->data;
    const dnic_expr *src = d->call->args.n > 1 ? ((const dnic_arg *)d->call->args.v[0])->value : NULL;
    bool from_copy = (ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY) && !cfg->repeat && src &&
                     src->kind == EXPR_NAME && strcmp(src->str, "input") == 0;
    static const char *const derived[] = {"steps", "outputs"};
    for (int i = 0; i < 2 && from_copy && ds->curriculum > 0; i++)
        if ((s = dnic_setting_find(d, derived[i])))
            dnic_error(diag, s->key_span, "%s of '%s' would be wrong once the curriculum lengthens the sequences: "
                       "remove it (it is then the data's: %s)", derived[i], d->name,
                       i ? "the labelled steps" : "the sequence's steps");
    dnic_copy_shape cs;
    s = dnic_setting_find(d, "steps");
    if (!s && from_copy && ds->length && dnic_copy_shape_of(ds->bits, ds->length, ds->repeats, &cs) == 0) {
        cfg->steps = cs.steps;
        if (!dnic_setting_find(d, "outputs"))
            l->derived_steps = cfg->outputs = cs.outputs;
        if (cs.steps > 4096) /* the widths stay the data's: the layers after it are not blamed */
            dnic_error(diag, d->call->span, "%s '%s' reads the data's sequences of %d steps, more than the 4096 it "
                       "takes", d->call->str, d->name, cs.steps);
    } else if (!s) {
        dnic_error(diag, d->call->span, "%s '%s' needs 'steps', the length of its sequences, e.g. steps = 28",
                   d->call->str, d->name);
        cfg->steps = 1;
    } else if (!dnic_check_int(c, s, 1, 4096, &cfg->steps)) {
        cfg->steps = 1;
    }
    if ((s = dnic_setting_find(d, "activation"))) {
        dnic_check_act(c, s, &l->act);
        if (l->act == DNIC_ACT_SOFTMAX) { /* reported here alone, not as an output layer's */
            dnic_error(diag, s->value->span, "an rnn's state cannot use softmax: put a dense layer after it");
            l->act = DNIC_ACT_TANH;
        }
    }
    if ((s = dnic_setting_find(d, "bias")))
        dnic_check_bool(c, s, &cfg->bias);
    if ((s = dnic_setting_find(d, "init")))
        dnic_check_init(c, s, &cfg->w_init);
    cfg->u_init = cfg->w_init;
    if ((s = dnic_setting_find(d, "recurrent_init")))
        dnic_check_init(c, s, &cfg->u_init);
    if ((s = dnic_setting_find(d, "bias_init"))) {
        if (!cfg->bias)
            dnic_error(diag, s->key_span, "bias_init is set but layer '%s' has bias = false", d->name);
        dnic_check_init(c, s, &cfg->b_init);
    }
    if ((s = dnic_setting_find(d, "lr")))
        dnic_check_real(c, s, 0, true, 1e6, &cfg->lr);
    if ((s = dnic_setting_find(d, "unroll")) && dnic_check_int(c, s, 1, 4096, &cfg->unroll) &&
        cfg->unroll > cfg->steps && !(from_copy && ds->curriculum > 0)) { /* a curriculum: the whole sequence */
        dnic_error(diag, s->value->span, "unroll = %d is longer than the sequence of %s '%s' (steps = %d)", cfg->unroll,
                   l->kind->name, d->name, cfg->steps);
        cfg->unroll = 0;
    }
    if ((s = dnic_setting_find(d, "outputs")) && dnic_check_int(c, s, 1, 4096, &cfg->outputs) &&
        cfg->outputs > cfg->steps) {
        dnic_error(diag, s->value->span, "outputs = %d, but %s '%s' has %d steps", cfg->outputs, l->kind->name,
                   d->name, cfg->steps);
        cfg->outputs = 1;
    }
    l->out = cfg->hidden * cfg->outputs;
    l->outputs = cfg->outputs;
}

static void check_rnn(dnic_checker *c, const dnic_decl *d, dnic_layer *l)
{
    check_kind(c, d, l, false);
}

static void check_lstm(dnic_checker *c, const dnic_decl *d, dnic_layer *l)
{
    check_kind(c, d, l, true);
}

static bool shape(dnic_checker *c, const dnic_decl *d, dnic_layer *l, const int *src_width)
{
    dnic_rnn_cfg *cfg = l->cfg;
    if (cfg->repeat) {
        cfg->in = src_width[0];
        return true;
    }
    if (src_width[0] % cfg->steps) {
        dnic_error(dnic_checker_diag(c), dnic_decl_arg_span(d, 0),
                   "%s '%s' splits its source of width %d into %d steps, which does not divide it", l->kind->name,
                   d->name, src_width[0], cfg->steps);
        dnic_note(dnic_checker_diag(c), dnic_setting_find(d, "steps")->value->span,
                  "give steps a divisor of %d, or write input = repeat to read the whole source at every step",
                  src_width[0]);
        return false;
    }
    cfg->in = src_width[0] / cfg->steps;
    return true;
}

static int unroll_of(const dnic_layer *l, const dnic_model *m)
{
    const dnic_rnn_cfg *cfg = l->cfg;
    int T = cfg->unroll ? cfg->unroll : m->train.unroll ? m->train.unroll : cfg->steps;
    return T < cfg->steps ? T : cfg->steps;
}

static int boundaries(const dnic_layer *l, const dnic_model *m)
{
    int T = unroll_of(l, m), L = ((const dnic_rnn_cfg *)l->cfg)->steps;
    return (L + T - 1) / T - 1;
}

static int last_chunk(const dnic_layer *l, const dnic_model *m)
{
    return ((const dnic_rnn_cfg *)l->cfg)->steps - boundaries(l, m) * unroll_of(l, m);
}

/* What it carries from step to step: h (rnn), [h | c] (lstm). */
static int state_width(const dnic_layer *l)
{
    const dnic_rnn_cfg *cfg = l->cfg;
    return cfg->lstm ? 2 * cfg->hidden : cfg->hidden;
}

/* Its buffers while the IR is built (-1 or NULL until built). */
typedef struct rnn_ir {
    int G;                      /* the gates' width: H (rnn), 4H (lstm) */
    int wih, whh, b;            /* parameters (b = -1 without bias) */
    int *h;                     /* h[t]: the state after step t (the last one is the output) */
    int *c, *tc;                /* lstm: the cell c[t] and tanh(c[t]) */
    int *fc, *ig;               /* lstm: f c[t-1] and i g, the cell's two terms */
    int *gate[4];               /* lstm: i, f, g, o of step t */
    int *x;                     /* x[t]: step t's input */
    int *xw, *hw, *z;           /* x[t] . W_ih + b, h[t-1] . W_hh, and (lstm) their sum */
    int gih, ghh, gb;           /* the chunk's gradients */
    int dx;                     /* the gradient w.r.t. the source, summed over steps */
    int wih_t, whh_t;           /* scratch: the weights transposed for messages */
    int h0, c0;                 /* the state before step 0 (the STREAM block), or -1: zero */
    int T, nchunks;
    void *use;                  /* the SG module's use at the previous chunk's end */
} rnn_ir;

static int *steps_of(dnic_arena *a, int n)
{
    int *v = dnic_alloc(a, (size_t)n * sizeof *v);
    for (int t = 0; t < n; t++)
        v[t] = -1;
    return v;
}

static void params(dnic_builder *b, dnic_layer_ir *L)
{
    dnic_arena *a = dnic_builder_arena(b);
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    rnn_ir *st = dnic_alloc(a, sizeof *st);
    L->st = st;
    int H = cfg->hidden, G = st->G = cfg->lstm ? 4 * H : H;
    st->wih = dnic_build_param(b, dnic_sprintf(a, "%s.weight_ih", l->name), cfg->in, G, cfg->w_init, cfg->in, G);
    st->whh = dnic_build_param(b, dnic_sprintf(a, "%s.weight_hh", l->name), H, G, cfg->u_init, H, G);
    st->b = cfg->bias ? dnic_build_param(b, dnic_sprintf(a, "%s.bias", l->name), 1, G, cfg->b_init, cfg->in, G) : -1;
    st->gih = st->ghh = st->gb = st->dx = st->wih_t = st->whh_t = -1;
    st->h0 = st->c0 = -1;
}

static int temp(dnic_builder *b, const dnic_layer *l, const char *what, int t, int cols)
{
    return dnic_build_temp(b, dnic_sprintf(dnic_builder_arena(b), "%s.%s%d", l->name, what, t + 1), dnic_builder_batch(b),
                           cols);
}

/* The buffers every step has, once: the states (the last is the layer's output) and the
 * steps' inputs (slices of the source, or the source itself). */
static void step_buffers(dnic_builder *b, dnic_layer_ir *L)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    if (st->h)
        return;
    dnic_arena *a = dnic_builder_arena(b);
    int n = cfg->steps;
    st->h = steps_of(a, n);
    st->x = steps_of(a, n);
    st->xw = steps_of(a, n);
    st->hw = steps_of(a, n);
    st->z = steps_of(a, n);
    st->c = steps_of(a, n);
    st->tc = steps_of(a, n);
    st->fc = steps_of(a, n);
    st->ig = steps_of(a, n);
    for (int k = 0; k < 4; k++)
        st->gate[k] = steps_of(a, n);
    for (int t = 0; t < n; t++) {
        st->h[t] = t == n - 1 && cfg->outputs == 1 ? L->out : temp(b, l, "h", t, cfg->hidden);
        st->x[t] = cfg->repeat || n == 1 ? L->in[0] : temp(b, l, "x", t, cfg->in);
    }
    const dnic_model *m = dnic_builder_model(b);
    st->T = unroll_of(l, m);
    st->nchunks = boundaries(l, m) + 1;
}

static dnic_ir_op *op(dnic_builder *b, dnic_op o, int dst, int s0, int s1)
{
    return dnic_build_op(b, o, dst, s0, s1, -1);
}

/* dst = (lazily made) temp NAME<t> */
static int lazy(dnic_builder *b, const dnic_layer *l, int *v, const char *what, int t, int cols)
{
    if (*v < 0)
        *v = temp(b, l, what, t, cols);
    return *v;
}

/* The lstm's step t from z_t: the gates, the cell and the state. */
static void lstm_cell(dnic_builder *b, dnic_layer_ir *L, int t, int z)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    int H = ((const dnic_rnn_cfg *)l->cfg)->hidden;
    static const char *const names[4] = {"i", "f", "g", "o"};
    for (int k = 0; k < 4; k++) {
        if (k == 1 && t == 0 && st->c0 < 0)
            continue; /* c_0 = 0: nothing to forget */
        int gk = lazy(b, l, &st->gate[k][t], names[k], t, H);
        dnic_ir_op *o = op(b, DNIC_OP_SLICE, gk, z, -1);
        o->off = k * H;
        o->act = k == 2 ? DNIC_ACT_TANH : DNIC_ACT_SIGMOID;
    }
    int c = lazy(b, l, &st->c[t], "c", t, H), i = st->gate[0][t], g = st->gate[2][t];
    if (t == 0 && st->c0 < 0) {
        op(b, DNIC_OP_MUL, c, i, g);
    } else {
        int fc = lazy(b, l, &st->fc[t], "fc", t, H);
        op(b, DNIC_OP_MUL, fc, st->gate[1][t], t > 0 ? st->c[t - 1] : st->c0);
        int ig = lazy(b, l, &st->ig[t], "ig", t, H);
        op(b, DNIC_OP_MUL, ig, i, g);
        op(b, DNIC_OP_ADD, c, fc, ig);
    }
    int tc = lazy(b, l, &st->tc[t], "tanh_c", t, H);
    op(b, DNIC_OP_SLICE, tc, c, -1)->act = DNIC_ACT_TANH;
    op(b, DNIC_OP_MUL, st->h[t], st->gate[3][t], tc);
}

/* Steps t0..t1-1 from the state after t0-1 (before the first step: zero, or h0 and c0). */
static void forward_steps(dnic_builder *b, dnic_layer_ir *L, int t0, int t1)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    for (int t = t0; t < t1; t++) {
        if (st->x[t] != L->in[0])
            op(b, DNIC_OP_SLICE, st->x[t], L->in[0], -1)->off = t * cfg->in;
        /* input = repeat: x . W_ih + b once per chunk (the weights change only between chunks) */
        bool zero = t == 0 && st->h0 < 0; /* from the zero state: no h . W_hh */
        int first = !cfg->repeat ? t : t0 == 0 && !cfg->lstm && st->h0 < 0 ? 1 : t0;
        if (zero && !cfg->lstm) {
            dnic_build_op(b, DNIC_OP_DENSE, st->h[t], st->x[t], st->wih, st->b)->act = l->act;
            continue;
        }
        int xw = lazy(b, l, &st->xw[first], "xw", first, st->G);
        if (t == first)
            dnic_build_op(b, DNIC_OP_DENSE, xw, st->x[t], st->wih, st->b);
        int z = xw;
        if (!zero) {
            int hw = lazy(b, l, &st->hw[t], "hw", t, st->G);
            dnic_build_op(b, DNIC_OP_DENSE, hw, t > 0 ? st->h[t - 1] : st->h0, st->whh, -1);
            z = cfg->lstm ? lazy(b, l, &st->z[t], "z", t, st->G) : st->h[t];
            op(b, DNIC_OP_ADD, z, xw, hw)->act = cfg->lstm ? DNIC_ACT_LINEAR : l->act;
        }
        if (cfg->lstm)
            lstm_cell(b, L, t, z);
    }
}

/* outputs = N: the states of steps t0..t1-1 among the last N, in their columns of the output. */
static void place_outputs(dnic_builder *b, dnic_layer_ir *L, int t0, int t1)
{
    const dnic_rnn_cfg *cfg = L->l->cfg;
    rnn_ir *st = L->st;
    int first = cfg->steps - cfg->outputs;
    for (int t = t0 > first ? t0 : first; cfg->outputs > 1 && t < t1; t++)
        op(b, DNIC_OP_PLACE, L->out, st->h[t], -1)->off = (t - first) * cfg->hidden;
}

/* dst = s . W^T (a message), through W's transposed copy wt; *ready: wt already holds W^T (an
 * earlier message made it, and W has not changed since).  Set false whenever W is updated. */
static void message(dnic_builder *b, int dst, int s, int w, int wt, bool *ready)
{
    dnic_ir_op *o = dnic_build_op(b, DNIC_OP_MATMUL_NT, dst, s, w, -1);
    o->scratch = wt;
    o->scratch_ready = *ready;
    *ready = true;
}

/* The lstm's dz_t [B,4H] from gh (w.r.t. h_t) and *gc (w.r.t. c_t from the step after, or -1);
 * leaves in *gc the gradient w.r.t. c_{t-1} when want_prev (and t > 0). */
static int lstm_delta(dnic_builder *b, dnic_layer_ir *L, int t, int gh, int *gc, bool want_prev)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    int H = ((const dnic_rnn_cfg *)l->cfg)->hidden;
    int i = st->gate[0][t], f = st->gate[1][t], g = st->gate[2][t], o = st->gate[3][t], tc = st->tc[t];
    int d_o = temp(b, l, "o.grad", t, H), dz_o = temp(b, l, "o.delta", t, H);
    op(b, DNIC_OP_MUL, d_o, gh, tc);
    op(b, DNIC_OP_ACT_GRAD, dz_o, d_o, o)->act = DNIC_ACT_SIGMOID;
    int gho = temp(b, l, "h.o", t, H), dc = temp(b, l, "c.grad", t, H);
    op(b, DNIC_OP_MUL, gho, gh, o);
    op(b, DNIC_OP_ACT_GRAD, dc, gho, tc)->act = DNIC_ACT_TANH;
    if (*gc >= 0) {
        int sum = temp(b, l, "c.grad.sum", t, H);
        op(b, DNIC_OP_ADD, sum, dc, *gc);
        dc = sum;
    }
    int d_i = temp(b, l, "i.grad", t, H), dz_i = temp(b, l, "i.delta", t, H);
    op(b, DNIC_OP_MUL, d_i, dc, g);
    op(b, DNIC_OP_ACT_GRAD, dz_i, d_i, i)->act = DNIC_ACT_SIGMOID;
    int d_g = temp(b, l, "g.grad", t, H), dz_g = temp(b, l, "g.delta", t, H);
    op(b, DNIC_OP_MUL, d_g, dc, i);
    op(b, DNIC_OP_ACT_GRAD, dz_g, d_g, g)->act = DNIC_ACT_TANH;
    int dz_f = temp(b, l, "f.delta", t, H);
    if (t > 0) {
        int d_f = temp(b, l, "f.grad", t, H);
        op(b, DNIC_OP_MUL, d_f, dc, st->c[t - 1]);
        op(b, DNIC_OP_ACT_GRAD, dz_f, d_f, f)->act = DNIC_ACT_SIGMOID;
    } else {
        op(b, DNIC_OP_SUB, dz_f, dc, dc); /* c_0 = 0: f has no gradient (a zero, exactly) */
    }
    int dz = temp(b, l, "z.delta", t, 4 * H);
    dnic_ir_op *cat = op(b, DNIC_OP_CONCAT, dz, dz_i, dz_f);
    cat->src[2] = dz_g;
    cat->src[3] = dz_o;
    *gc = -1;
    if (want_prev && t > 0) {
        *gc = temp(b, l, "c.grad.", t - 1, H);
        op(b, DNIC_OP_MUL, *gc, dc, f);
    }
    return dz;
}

/* A carried state's gradient: w.r.t. h, and (lstm) w.r.t. c, or -1. */
typedef struct sgrad {
    int h, c;
} sgrad;

/* Backpropagates g (w.r.t. the state after step t1-1; g.h w.r.t. its pre-activation when
 * g_is_delta; with outputs = N, gout[k] w.r.t. output step k joins it at its step, where not -1)
 * through steps t1-1..t0: every step's dz, the chunk's weight gradients summed over
 * its steps, the updates, and the messages: to the source (into st->dx) and, when want_prev,
 * to the state after step t0-1, the target of the boundary before the chunk (returned).  The
 * messages out of the chunk go before or after the updates as train.backward_message says;
 * those within it always use the weights the forward pass used. */
static sgrad backward_steps(dnic_builder *b, dnic_layer_ir *L, int t0, int t1, sgrad g, const int *gout,
                            bool g_is_delta, bool want_prev, bool want_dx)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    const dnic_model *m = dnic_builder_model(b);
    dnic_arena *a = dnic_builder_arena(b);
    int H = cfg->hidden, G = st->G, Bn = dnic_builder_batch(b);
    bool train = l->trainable;
    double lr = cfg->lr > 0 ? cfg->lr : m->train.lr;
    if (st->whh_t < 0) {
        st->whh_t = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_hh.t", l->name), G, H);
        st->wih_t = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_ih.t", l->name), G, cfg->in);
    }
    if (train && st->gih < 0) {
        st->gih = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_ih.grad", l->name), cfg->in, G);
        st->ghh = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_hh.grad", l->name), H, G);
        st->gb = cfg->bias ? dnic_build_temp(b, dnic_sprintf(a, "%s.bias.grad", l->name), 1, G) : -1;
    }
    DNIC_ASSERT(!(cfg->lstm && g_is_delta)); /* an lstm is linear: no loss hands it a delta */
    int *dz = dnic_alloc(a, (size_t)(t1 - t0) * sizeof *dz);
    /* the chunk's gradients as one product each over its steps stacked, last step first: the
     * x_t, h_{t-1} and dz_t of step t at rows (t1-1-t)*B (a chunk of one step reads them as
     * they are) */
    int n = t1 - t0, nh = t0 == 0 ? n - 1 : n;
    int xs = -1, hs = -1, dzs = -1;
    if (train && n > 1) {
        const char *pfx = dnic_sprintf(a, "%s.chunk%d", l->name, t0 + 1);
        xs = dnic_build_temp(b, dnic_sprintf(a, "%s.x", pfx), n * Bn, cfg->in);
        hs = nh ? dnic_build_temp(b, dnic_sprintf(a, "%s.h", pfx), nh * Bn, H) : -1;
        dzs = dnic_build_temp(b, dnic_sprintf(a, "%s.delta", pfx), n * Bn, G);
    }
    int gh = g.h, gc = g.c;
    bool hh_ready = false; /* W_hh^T is made by the chunk's first message and kept until its update */
    int first_out = cfg->steps - cfg->outputs;
    for (int t = t1 - 1; t >= t0; t--) {
        if (gout && t >= first_out && gout[t - first_out] >= 0) { /* the output's part, beside the next step's */
            int part = gout[t - first_out];
            if (gh >= 0) {
                int sum = temp(b, l, "h.grad.sum.h", t, H);
                op(b, DNIC_OP_ADD, sum, gh, part);
                part = sum;
            }
            gh = part;
        }
        int d = dz[t - t0] = cfg->lstm ? lstm_delta(b, L, t, gh, &gc, want_prev || t > t0)
                                       : dnic_build_delta(b, dnic_sprintf(a, "%s.h%d", l->name, t + 1), l->act,
                                                          st->h[t], gh, g_is_delta && t == t1 - 1);
        if (dzs >= 0) {
            int row = (t1 - 1 - t) * Bn;
            op(b, DNIC_OP_STACK, xs, st->x[t], -1)->off = row;
            op(b, DNIC_OP_STACK, dzs, d, -1)->off = row;
            if (t > 0)
                op(b, DNIC_OP_STACK, hs, st->h[t - 1], -1)->off = row;
        }
        if (t > t0) {
            gh = dnic_build_temp(b, dnic_sprintf(a, "%s.h%d.grad", l->name, t), Bn, H);
            message(b, gh, d, st->whh, st->whh_t, &hh_ready);
        }
    }
    if (train) {
        int d = dzs >= 0 ? dzs : dz[0];
        op(b, DNIC_OP_GRAD_W, st->gih, dzs >= 0 ? xs : st->x[t0], d);
        if (st->gb >= 0)
            op(b, DNIC_OP_GRAD_W, st->gb, -1, d);
        if (nh) /* the dz rows of the steps that read a state come first */
            op(b, DNIC_OP_GRAD_W, st->ghh, dzs >= 0 ? hs : st->h[t0 - 1], d);
    }
    bool after = m->train.message == DNIC_MSG_AFTER_UPDATE;
    sgrad prev = {-1, -1};
    bool ih_ready = false;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == (after ? 0 : 1)) {
            if (!train)
                continue;
            dnic_build_update(b, DNIC_OP_UPDATE, st->wih, st->gih, -1, lr);
            if (nh) /* a chunk of the first step alone never reads a state */
                dnic_build_update(b, DNIC_OP_UPDATE, st->whh, st->ghh, -1, lr);
            if (st->gb >= 0) /* the bias's gradient is a batch mean, as a dense layer's */
                dnic_build_update(b, DNIC_OP_UPDATE, st->b, st->gb, -1, lr)->grad_div = Bn;
            hh_ready = ih_ready = false;
            continue;
        }
        if (want_prev && t0 > 0) {
            prev.h = dnic_build_temp(b, dnic_sprintf(a, "%s.h%d.grad", l->name, t0), Bn, H);
            message(b, prev.h, dz[0], st->whh, st->whh_t, &hh_ready);
            prev.c = gc;
        }
        for (int t = t1 - 1; want_dx && t >= t0; t--) {
            /* the source's gradient: each step's part in its columns (input = split), or the
             * sum over the steps (input = repeat) */
            bool first = st->dx < 0;
            if (first && !cfg->repeat)
                st->dx = dnic_build_grad(b, L, 0);
            int part = temp(b, l, "source.grad.h", t, cfg->in);
            message(b, part, dz[t - t0], st->wih, st->wih_t, &ih_ready);
            if (!cfg->repeat) {
                op(b, DNIC_OP_PLACE, st->dx, part, -1)->off = t * cfg->in;
            } else if (first) {
                st->dx = part;
            } else { /* a new sum each time: an op's operands never alias */
                int sum = temp(b, l, "source.grad.sum.h", t, cfg->in);
                op(b, DNIC_OP_ADD, sum, st->dx, part);
                st->dx = sum;
            }
        }
    }
    return prev;
}

/* The carried state after step t as one buffer: h (rnn), [h | c] (lstm). */
static int state_at(dnic_builder *b, dnic_layer_ir *L, int t)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    if (!((const dnic_rnn_cfg *)l->cfg)->lstm)
        return st->h[t];
    int s = temp(b, l, "state", t, 2 * ((const dnic_rnn_cfg *)l->cfg)->hidden);
    op(b, DNIC_OP_CONCAT, s, st->h[t], st->c[t]);
    return s;
}

/* A state gradient as one buffer (the target of a boundary's SG module). */
static int sgrad_buf(dnic_builder *b, dnic_layer_ir *L, sgrad g, int t)
{
    const dnic_layer *l = L->l;
    if (g.c < 0)
        return g.h;
    int s = temp(b, l, "state.grad", t, 2 * ((const dnic_rnn_cfg *)l->cfg)->hidden);
    op(b, DNIC_OP_CONCAT, s, g.h, g.c);
    return s;
}

/* The SG module's prediction at the boundary after step t (its use in *use), as the gradient
 * w.r.t. the state there. */
static sgrad predict_boundary(dnic_builder *b, dnic_layer_ir *L, int t, void **use)
{
    const dnic_layer *l = L->l;
    int H = ((const dnic_rnn_cfg *)l->cfg)->hidden;
    const char *pfx = dnic_sprintf(dnic_builder_arena(b), "%s.state.h%d", l->name, t + 1);
    int pred = dnic_build_sg_predict(b, l->state_sg, state_at(b, L, t), pfx, use);
    sgrad g = {pred, -1};
    if (((const dnic_rnn_cfg *)l->cfg)->lstm) { /* the prediction is [dL/dh | dL/dc] */
        g.h = temp(b, l, "state.sg.h", t, H);
        g.c = temp(b, l, "state.sg.c", t, H);
        op(b, DNIC_OP_SLICE, g.h, pred, -1);
        op(b, DNIC_OP_SLICE, g.c, pred, -1)->off = H;
    }
    return g;
}

/* Outputs spanning the truncation chunks: each chunk forward, then the per-step layers after
 * the layer on the chunk's output steps, their loss and backward passes and updates
 * (dnic_build_chain_steps), then the chunk backward from those steps' gradients and, before
 * the last chunk, the SG module's prediction at its end; its updates, and the target it sends
 * the boundary before it.  A chunk with neither (no output step, no module) only runs
 * forward. */
static void forward_chunked(dnic_builder *b, dnic_layer_ir *L)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    const dnic_model *m = dnic_builder_model(b);
    dnic_arena *a = dnic_builder_arena(b);
    bool sg = m->train.mode == DNIC_MODE_DNI && l->state_sg >= 0;
    bool want_dx = dnic_build_wants_grad(b, L, 0);
    int first = cfg->steps - cfg->outputs;
    int *gout = dnic_alloc(a, (size_t)cfg->outputs * sizeof *gout);
    for (int k = 0; k < cfg->outputs; k++)
        gout[k] = -1;
    bool prev_sg = false; /* the boundary before this chunk has a prediction to learn */
    for (int c = 0; c < st->nchunks; c++) {
        bool last = c == st->nchunks - 1;
        int t0 = c * st->T, t1 = last ? cfg->steps : t0 + st->T;
        forward_steps(b, L, t0, t1);
        place_outputs(b, L, t0, t1);
        int k0 = (t0 > first ? t0 : first) - first, k1 = t1 - first;
        if (k1 > k0)
            dnic_build_chain_steps(b, L, k0, k1, gout + k0);
        void *use = NULL;
        sgrad g = {-1, -1};
        if (sg && !last)
            g = predict_boundary(b, L, t1 - 1, &use);
        if (k1 > k0 || g.h >= 0) {
            sgrad target = backward_steps(b, L, t0, t1, g, gout, false, prev_sg, want_dx);
            if (prev_sg)
                dnic_build_sg_learn(b, st->use, sgrad_buf(b, L, target, t0 - 1),
                                    dnic_sprintf(a, "%s.state.h%d", l->name, t0));
        }
        st->use = use;
        prev_sg = use != NULL;
    }
}

/* Training: the chunks before the last, each forward, then (with `sg NAME.state` in DNI mode)
 * backward from the SG module's prediction at its end, its updates, and the target that chunk
 * sends the previous boundary; then the last chunk's forward pass.  Without the module, no
 * gradient reaches the chunks before the last (truncated BPTT).  Inference: every step. */
static void forward(dnic_builder *b, dnic_layer_ir *L, bool train)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    step_buffers(b, L);
    if (!train) {
        forward_steps(b, L, 0, cfg->steps);
        place_outputs(b, L, 0, cfg->steps);
        return;
    }
    if (l->chunked) {
        forward_chunked(b, L);
        return;
    }
    const dnic_model *m = dnic_builder_model(b);
    bool sg = m->train.mode == DNIC_MODE_DNI && l->state_sg >= 0;
    bool want_dx = dnic_build_wants_grad(b, L, 0);
    dnic_arena *a = dnic_builder_arena(b);
    for (int c = 0; c < st->nchunks; c++) {
        int t0 = c * st->T, t1 = c == st->nchunks - 1 ? cfg->steps : t0 + st->T;
        forward_steps(b, L, t0, t1);
        if (c == st->nchunks - 1 || !sg)
            continue;
        void *use;
        sgrad g = predict_boundary(b, L, t1 - 1, &use);
        sgrad target = backward_steps(b, L, t0, t1, g, NULL, false, c > 0, want_dx);
        if (c > 0)
            dnic_build_sg_learn(b, st->use, sgrad_buf(b, L, target, t0 - 1),
                                dnic_sprintf(a, "%s.state.h%d", l->name, t0));
        st->use = use;
    }
    place_outputs(b, L, 0, cfg->steps);
}

/* The last chunk, from the consumers' gradient; then the last boundary's SG module's target. */
static void backward(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta, int *grad)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    const dnic_model *m = dnic_builder_model(b);
    bool sg = m->train.mode == DNIC_MODE_DNI && l->state_sg >= 0;
    int t0 = (st->nchunks - 1) * st->T;
    if (l->chunked) { /* done chunk by chunk in the forward pass */
        if (grad[0] >= 0)
            grad[0] = st->dx;
        return;
    }
    bool seq = cfg->outputs > 1; /* within the last chunk */
    int *gout = NULL;
    if (seq) { /* each output step's part of g */
        gout = dnic_alloc(dnic_builder_arena(b), (size_t)cfg->outputs * sizeof *gout);
        for (int k = 0; k < cfg->outputs; k++) {
            gout[k] = temp(b, l, "out.grad.h", cfg->steps - cfg->outputs + k, cfg->hidden);
            op(b, DNIC_OP_SLICE, gout[k], g, -1)->off = k * cfg->hidden;
        }
    }
    sgrad target = backward_steps(b, L, t0, cfg->steps, (sgrad){seq ? -1 : g, -1}, gout, g_is_delta && !seq,
                                  sg && st->nchunks > 1, grad[0] >= 0);
    if (sg && st->nchunks > 1)
        dnic_build_sg_learn(b, st->use, sgrad_buf(b, L, target, t0 - 1),
                            dnic_sprintf(dnic_builder_arena(b), "%s.state.h%d", l->name, t0));
    if (grad[0] >= 0)
        grad[0] = st->dx;
}

static void describe(const dnic_layer *l, char *buf, size_t n)
{
    const dnic_rnn_cfg *cfg = l->cfg;
    char outs[48] = "";
    if (cfg->outputs > 1)
        snprintf(outs, sizeof outs, ", the last %d states out", cfg->outputs);
    snprintf(buf, n, "%s %d -> %d, %d steps%s%s", l->kind->name, cfg->in, cfg->hidden, cfg->steps, outs,
             cfg->bias ? "" : ", no bias");
}

/* The STREAM block: every step from the state in NAME.state.in ([h | c] for an lstm), made
 * here; returns it, and in *out the buffer that holds the last step's state. */
static int forward_stream(dnic_builder *b, dnic_layer_ir *L, int *out)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    dnic_arena *a = dnic_builder_arena(b);
    int B = dnic_builder_batch(b), H = cfg->hidden;
    int in = dnic_build_temp(b, dnic_sprintf(a, "%s.state.in", l->name), B, state_width(l));
    step_buffers(b, L);
    st->h0 = in;
    if (cfg->lstm) {
        st->h0 = dnic_build_temp(b, dnic_sprintf(a, "%s.h0", l->name), B, H);
        st->c0 = dnic_build_temp(b, dnic_sprintf(a, "%s.c0", l->name), B, H);
        op(b, DNIC_OP_SLICE, st->h0, in, -1)->off = 0;
        op(b, DNIC_OP_SLICE, st->c0, in, -1)->off = H;
    }
    forward_steps(b, L, 0, cfg->steps);
    place_outputs(b, L, 0, cfg->steps);
    *out = state_at(b, L, cfg->steps - 1);
    st->h0 = st->c0 = -1;
    return in;
}

/* The two kinds differ in their settings and their check; the rest is shared. */
#define RECURRENT_KIND(NAME, SETS, CHECK)                                                                            \
    const dnic_layer_kind dnic_layer_##NAME = {                                                                      \
        .name = #NAME,                                                                                               \
        .usage = #NAME "(source, width)",                                                                            \
        .min_src = 1,                                                                                                \
        .max_src = 1,                                                                                                \
        .extra_args = 1,                                                                                             \
        .has_params = true,                                                                                          \
        .softmax_ok = false,                                                                                         \
        .settings = SETS,                                                                                            \
        .check = CHECK,                                                                                              \
        .shape = shape,                                                                                              \
        .params = params,                                                                                            \
        .forward = forward,                                                                                          \
        .backward = backward,                                                                                        \
        .describe = describe,                                                                                        \
        .boundaries = boundaries,                                                                                    \
        .last_chunk = last_chunk,                                                                                    \
        .state_width = state_width,                                                                                  \
        .forward_stream = forward_stream,                                                                            \
    };
RECURRENT_KIND(rnn, SETTINGS, check_rnn)
RECURRENT_KIND(lstm, LSTM_SETTINGS, check_lstm)
