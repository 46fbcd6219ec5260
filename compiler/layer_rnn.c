/* The recurrent layer: h_t = act(x_t . W_ih + h_{t-1} . W_hh + b) over `steps` time steps,
 * h_0 = 0, its output the last state.  A training step sees whole sequences; truncated BPTT
 * cuts each into chunks of `unroll` steps, each chunk updating the weights from its own
 * gradient as soon as it has one: from `sg NAME.state`, the SG module at the chunk's end
 * boundary (the last chunk: from the layer's consumers).  docs/semantics.md, "Recurrent
 * layers", gives the equations in the order built here. */
#include <stdio.h>
#include <string.h>

#include "layers.h"

/* layer NAME = rnn(SOURCE, WIDTH) { steps input activation bias init recurrent_init bias_init unroll lr } */
static const char *const SETTINGS[] = {"steps", "input", "activation", "bias", "init", "recurrent_init", "bias_init",
                                       "unroll", "lr", NULL};

static void check(dnic_checker *c, const dnic_decl *d, dnic_layer *l)
{
    dnic_rnn_cfg *cfg = dnic_alloc(dnic_checker_arena(c), sizeof *cfg);
    dnic_diag *diag = dnic_checker_diag(c);
    l->cfg = cfg;
    l->act = DNIC_ACT_TANH;
    cfg->bias = true;
    cfg->w_init = (dnic_init){DNIC_INIT_XAVIER_UNIFORM, 1, 0};
    cfg->b_init = (dnic_init){DNIC_INIT_ZEROS, 1, 0};
    const dnic_arg *w = d->call->args.v[d->call->args.n - 1];
    dnic_setting ws = {.key = "width", .value = w->value};
    dnic_check_int(c, &ws, 1, 1 << 20, &l->out);
    const dnic_setting *s = dnic_setting_find(d, "steps");
    if (!s) {
        dnic_error(diag, d->call->span, "rnn '%s' needs 'steps', the length of its sequences, e.g. steps = 28", d->name);
        cfg->steps = 1;
    } else if (!dnic_check_int(c, s, 1, 4096, &cfg->steps)) {
        cfg->steps = 1;
    }
    static const char *const inputs[] = {"split", "repeat"};
    if ((s = dnic_setting_find(d, "input")))
        cfg->repeat = dnic_check_enum(c, s, inputs, 2) == 1;
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
        cfg->unroll > cfg->steps) {
        dnic_error(diag, s->value->span, "unroll = %d is longer than the sequence of rnn '%s' (steps = %d)", cfg->unroll,
                   d->name, cfg->steps);
        cfg->unroll = 0;
    }
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
                   "rnn '%s' splits its source of width %d into %d steps, which does not divide it", d->name,
                   src_width[0], cfg->steps);
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

/* Its buffers while the IR is built. */
typedef struct rnn_ir {
    int wih, whh, b;            /* parameters (b = -1 without bias) */
    int *h;                     /* h[t]: the state after step t (the last one is the output) */
    int *x;                     /* x[t]: step t's input */
    int *xw, *hw;               /* x[t] . W_ih + b and h[t-1] . W_hh (-1 until built) */
    int gih, ghh, gb;           /* the chunk's gradients (-1 until needed) */
    int dx;                     /* the gradient w.r.t. the source, summed over steps (-1: none yet) */
    int wih_t, whh_t;           /* scratch: the weights transposed for messages */
    int T, nchunks;
    void *use;                  /* the SG module's use at the previous chunk's end */
} rnn_ir;

static void params(dnic_builder *b, dnic_layer_ir *L)
{
    dnic_arena *a = dnic_builder_arena(b);
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    rnn_ir *st = dnic_alloc(a, sizeof *st);
    L->st = st;
    int H = l->out;
    st->wih = dnic_build_param(b, dnic_sprintf(a, "%s.weight_ih", l->name), cfg->in, H, cfg->w_init, cfg->in, H);
    st->whh = dnic_build_param(b, dnic_sprintf(a, "%s.weight_hh", l->name), H, H, cfg->u_init, H, H);
    st->b = cfg->bias ? dnic_build_param(b, dnic_sprintf(a, "%s.bias", l->name), 1, H, cfg->b_init, cfg->in, H) : -1;
    st->gih = st->ghh = st->gb = st->dx = st->wih_t = st->whh_t = -1;
}

static int temp(dnic_builder *b, const dnic_layer *l, const char *what, int t, int cols)
{
    return dnic_build_temp(b, dnic_sprintf(dnic_builder_arena(b), "%s.%s%d", l->name, what, t + 1), dnic_builder_batch(b),
                           cols);
}

/* The buffers of every step, once: the states (the last is the layer's output) and the
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
    st->h = dnic_alloc(a, (size_t)n * sizeof *st->h);
    st->x = dnic_alloc(a, (size_t)n * sizeof *st->x);
    st->xw = dnic_alloc(a, (size_t)n * sizeof *st->xw);
    st->hw = dnic_alloc(a, (size_t)n * sizeof *st->hw);
    for (int t = 0; t < n; t++) {
        st->h[t] = t == n - 1 ? L->out : temp(b, l, "h", t, l->out);
        st->x[t] = cfg->repeat || n == 1 ? L->in[0] : temp(b, l, "x", t, cfg->in);
        st->xw[t] = st->hw[t] = -1;
    }
    const dnic_model *m = dnic_builder_model(b);
    st->T = unroll_of(l, m);
    st->nchunks = boundaries(l, m) + 1;
}

/* Steps t0..t1-1: h_t = act(x_t . W_ih + b + h_{t-1} . W_hh), the first step of a sequence
 * without the recurrent product (h_0 = 0). */
static void forward_steps(dnic_builder *b, dnic_layer_ir *L, int t0, int t1)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    int H = l->out;
    for (int t = t0; t < t1; t++) {
        if (st->x[t] != L->in[0])
            dnic_build_op(b, DNIC_OP_SLICE, st->x[t], L->in[0], -1, -1)->off = t * cfg->in;
        if (t == 0) {
            dnic_build_op(b, DNIC_OP_DENSE, st->h[t], st->x[t], st->wih, st->b)->act = l->act;
            continue;
        }
        /* input = repeat: x . W_ih + b once per chunk (the weights change only between chunks) */
        int first = cfg->repeat ? (t0 > 1 ? t0 : 1) : t;
        if (st->xw[first] < 0)
            st->xw[first] = temp(b, l, "xw", first, H);
        if (st->hw[t] < 0)
            st->hw[t] = temp(b, l, "hw", t, H);
        if (t == first)
            dnic_build_op(b, DNIC_OP_DENSE, st->xw[t], st->x[t], st->wih, st->b);
        dnic_build_op(b, DNIC_OP_DENSE, st->hw[t], st->h[t - 1], st->whh, -1);
        dnic_build_op(b, DNIC_OP_ADD, st->h[t], st->xw[first], st->hw[t], -1)->act = l->act;
    }
}

/* dst = s . W^T (a message), through W's transposed copy wt. */
static void message(dnic_builder *b, int dst, int s, int w, int wt)
{
    dnic_build_op(b, DNIC_OP_MATMUL_NT, dst, s, w, -1)->scratch = wt;
}

/* Backpropagates g (w.r.t. h[t1-1]; w.r.t. its pre-activation when g_is_delta) through steps
 * t1-1..t0: every step's dz, the chunk's weight gradients summed over its steps, the
 * updates, and the messages: to the source (summed into st->dx, input = repeat) and, when
 * want_prev, to h[t0-1], the target of the boundary before the chunk (returned, else -1).
 * The messages out of the chunk go before or after the updates as train.backward_message
 * says; those within it always use the weights the forward pass used. */
static int backward_steps(dnic_builder *b, dnic_layer_ir *L, int t0, int t1, int g, bool g_is_delta, bool want_prev,
                          bool want_dx)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    const dnic_model *m = dnic_builder_model(b);
    dnic_arena *a = dnic_builder_arena(b);
    int H = l->out, Bn = dnic_builder_batch(b);
    bool train = l->trainable;
    double lr = cfg->lr > 0 ? cfg->lr : m->train.lr;
    if (st->whh_t < 0) {
        st->whh_t = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_hh.t", l->name), H, H);
        st->wih_t = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_ih.t", l->name), H, cfg->in);
    }
    if (train && st->gih < 0) {
        st->gih = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_ih.grad", l->name), cfg->in, H);
        st->ghh = dnic_build_temp(b, dnic_sprintf(a, "%s.weight_hh.grad", l->name), H, H);
        st->gb = cfg->bias ? dnic_build_temp(b, dnic_sprintf(a, "%s.bias.grad", l->name), 1, H) : -1;
    }
    int *dz = dnic_alloc(a, (size_t)(t1 - t0) * sizeof *dz);
    bool first_hh = true;
    for (int t = t1 - 1; t >= t0; t--) {
        int d = dz[t - t0] = dnic_build_delta(b, dnic_sprintf(a, "%s.h%d", l->name, t + 1), l->act, st->h[t], g,
                                              g_is_delta && t == t1 - 1);
        if (train) {
            bool acc = t != t1 - 1;
            dnic_build_op(b, DNIC_OP_GRAD_W, st->gih, st->x[t], d, -1)->accumulate = acc;
            if (st->gb >= 0)
                dnic_build_op(b, DNIC_OP_GRAD_W, st->gb, -1, d, -1)->accumulate = acc;
            if (t > 0) {
                dnic_build_op(b, DNIC_OP_GRAD_W, st->ghh, st->h[t - 1], d, -1)->accumulate = !first_hh;
                first_hh = false;
            }
        }
        if (t > t0) {
            g = dnic_build_temp(b, dnic_sprintf(a, "%s.h%d.grad", l->name, t), Bn, H);
            message(b, g, d, st->whh, st->whh_t);
        }
    }
    bool after = m->train.message == DNIC_MSG_AFTER_UPDATE;
    int prev = -1;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == (after ? 0 : 1) && train) {
            dnic_build_update(b, DNIC_OP_UPDATE, st->wih, st->gih, -1, lr);
            if (!first_hh) /* a chunk of the first step alone never reads a state */
                dnic_build_update(b, DNIC_OP_UPDATE, st->whh, st->ghh, -1, lr);
            if (st->gb >= 0) /* the bias's gradient is a batch mean, as a dense layer's */
                dnic_build_update(b, DNIC_OP_UPDATE, st->b, st->gb, -1, lr)->grad_div = Bn;
            continue;
        }
        if (pass == (after ? 0 : 1))
            continue;
        if (want_prev && t0 > 0) {
            prev = dnic_build_temp(b, dnic_sprintf(a, "%s.h%d.grad", l->name, t0), Bn, H);
            message(b, prev, dz[0], st->whh, st->whh_t);
        }
        for (int t = t1 - 1; want_dx && t >= t0; t--) {
            /* the source's gradient: each step's part in its columns (input = split), or the
             * sum over the steps (input = repeat) */
            bool first = st->dx < 0;
            if (first)
                st->dx = dnic_build_grad(b, L, 0);
            int part = cfg->repeat && first ? st->dx : temp(b, l, "source.grad.h", t, cfg->in);
            message(b, part, dz[t - t0], st->wih, st->wih_t);
            if (!cfg->repeat)
                dnic_build_op(b, DNIC_OP_PLACE, st->dx, part, -1, -1)->off = t * cfg->in;
            else if (!first)
                dnic_build_op(b, DNIC_OP_ADD, st->dx, st->dx, part, -1);
        }
    }
    return prev;
}

/* Training: the chunks before the last, each forward, then (with `sg NAME.state` in DNI mode)
 * backward from the SG module's prediction at its end, its updates, and the module's learning
 * from the target that chunk sent the previous boundary; then the last chunk's forward pass.
 * Without the module, no gradient reaches the chunks before the last (truncated BPTT).
 * Inference: every step. */
static void forward(dnic_builder *b, dnic_layer_ir *L, bool train)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    step_buffers(b, L);
    if (!train) {
        forward_steps(b, L, 0, cfg->steps);
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
        const char *pfx = dnic_sprintf(a, "%s.state.h%d", l->name, t1);
        void *use;
        int pred = dnic_build_sg_predict(b, l->state_sg, st->h[t1 - 1], pfx, &use);
        int target = backward_steps(b, L, t0, t1, pred, false, c > 0, want_dx);
        if (c > 0)
            dnic_build_sg_learn(b, st->use, target, dnic_sprintf(a, "%s.state.h%d", l->name, t0));
        st->use = use;
    }
}

/* The last chunk, from the consumers' gradient; then the last boundary's SG module learns. */
static void backward(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta, int *grad)
{
    rnn_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_rnn_cfg *cfg = l->cfg;
    const dnic_model *m = dnic_builder_model(b);
    bool sg = m->train.mode == DNIC_MODE_DNI && l->state_sg >= 0;
    int t0 = (st->nchunks - 1) * st->T;
    int target = backward_steps(b, L, t0, cfg->steps, g, g_is_delta, sg && st->nchunks > 1, grad[0] >= 0);
    if (sg && st->nchunks > 1)
        dnic_build_sg_learn(b, st->use, target, dnic_sprintf(dnic_builder_arena(b), "%s.state.h%d", l->name, t0));
    if (grad[0] >= 0)
        grad[0] = st->dx;
}

static void describe(const dnic_layer *l, char *buf, size_t n)
{
    const dnic_rnn_cfg *cfg = l->cfg;
    snprintf(buf, n, "rnn %d -> %d, %d steps%s", cfg->in, l->out, cfg->steps, cfg->bias ? "" : ", no bias");
}

const dnic_layer_kind dnic_layer_rnn = {
    .name = "rnn",
    .usage = "rnn(source, width)",
    .min_src = 1,
    .max_src = 1,
    .extra_args = 1,
    .has_params = true,
    .softmax_ok = false,
    .settings = SETTINGS,
    .check = check,
    .shape = shape,
    .params = params,
    .forward = forward,
    .backward = backward,
    .describe = describe,
    .boundaries = boundaries,
};
