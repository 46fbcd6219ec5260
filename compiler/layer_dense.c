/* The dense layer: out = act(x . W + b), or with norm = batch, Linear -> batch normalisation
 * -> activation as in the paper's networks (docs/semantics.md, "Batch normalisation"). */
#include <stdio.h>
#include <string.h>

#include "layers.h"

/* layer NAME = dense(SOURCE, WIDTH) { activation bias init bias_init norm norm_momentum norm_eps lr steps } */
static const char *const SETTINGS[] = {"activation", "bias", "init", "bias_init", "norm", "norm_momentum", "norm_eps",
                                       "lr", "steps", NULL};

static void check(dnic_checker *c, const dnic_decl *d, dnic_layer *l)
{
    dnic_dense_cfg *cfg = dnic_alloc(dnic_checker_arena(c), sizeof *cfg);
    l->cfg = cfg;
    cfg->bias = true;
    cfg->w_init = (dnic_init){DNIC_INIT_XAVIER_UNIFORM, 1, 0};
    cfg->b_init = (dnic_init){DNIC_INIT_ZEROS, 1, 0};
    cfg->norm_momentum = 0.1;
    cfg->norm_eps = 1e-5;
    const dnic_arg *w = d->call->args.v[d->call->args.n - 1];
    dnic_setting ws = {.key = "width", .value = w->value};
    dnic_check_int(c, &ws, 1, 1 << 20, &cfg->width);
    cfg->steps = 1;
    const dnic_setting *s;
    if ((s = dnic_setting_find(d, "activation")))
        dnic_check_act(c, s, &l->act);
    static const char *const norms[] = {"none", "batch"};
    if ((s = dnic_setting_find(d, "norm"))) {
        int v = dnic_check_enum(c, s, norms, 2);
        cfg->batchnorm = v == 1;
    }
    if (cfg->batchnorm && l->act == DNIC_ACT_SOFTMAX)
        dnic_error(dnic_checker_diag(c), dnic_setting_find(d, "activation")->value->span,
                   "softmax does not follow norm = batch: normalise the layers before the output layer");
    if ((s = dnic_setting_find(d, "bias")))
        dnic_check_bool(c, s, &cfg->bias);
    else if (cfg->batchnorm)
        cfg->bias = false; /* the normalisation's shift does a bias's job */
    if (cfg->batchnorm && cfg->bias && s)
        dnic_error(dnic_checker_diag(c), s->value->span,
                   "a layer with norm = batch has no bias: the normalisation's shift takes its place");
    if ((s = dnic_setting_find(d, "init")))
        dnic_check_init(c, s, &cfg->w_init);
    if ((s = dnic_setting_find(d, "lr")))
        dnic_check_real(c, s, 0, true, 1e6, &cfg->lr);
    if ((s = dnic_setting_find(d, "bias_init"))) {
        if (!cfg->bias)
            dnic_error(dnic_checker_diag(c), s->key_span, "bias_init is set but layer '%s' has %s", d->name,
                       cfg->batchnorm ? "norm = batch" : "bias = false");
        dnic_check_init(c, s, &cfg->b_init);
    }
    const char *const bn_keys[] = {"norm_momentum", "norm_eps"};
    for (int k = 0; k < 2; k++)
        if ((s = dnic_setting_find(d, bn_keys[k]))) {
            if (!cfg->batchnorm)
                dnic_error(dnic_checker_diag(c), s->key_span, "'%s' is a setting of norm = batch", bn_keys[k]);
            else if (k == 0)
                dnic_check_real(c, s, 0, true, 1, &cfg->norm_momentum);
            else
                dnic_check_real(c, s, 0, true, 1, &cfg->norm_eps);
        }
    if ((s = dnic_setting_find(d, "steps")) && dnic_check_int(c, s, 1, 4096, &cfg->steps) && cfg->steps > 1) {
        if (cfg->batchnorm)
            dnic_error(dnic_checker_diag(c), s->key_span, "a layer with norm = batch cannot take steps: its "
                       "statistics would mix the steps");
        else if (l->act == DNIC_ACT_SOFTMAX)
            dnic_error(dnic_checker_diag(c), s->key_span, "softmax over steps is not supported: a softmax would "
                       "normalise across all %d steps together; use sigmoid per output", cfg->steps);
    }
    l->out = cfg->width * cfg->steps;
}

static bool shape(dnic_checker *c, const dnic_decl *d, dnic_layer *l, const int *src_width)
{
    dnic_dense_cfg *cfg = l->cfg;
    /* after a layer whose per-step outputs the copy data's length gives, one step each */
    const dnic_model *m = dnic_checker_model(c);
    int from = l->src[0] >= 0 ? m->layers[l->src[0]].derived_steps : 0;
    const dnic_setting *s = dnic_setting_find(d, "steps");
    if (from > 0 && s && m->data.curriculum > 0) {
        dnic_error(dnic_checker_diag(c), s->key_span, "steps of '%s' would be wrong once the curriculum lengthens "
                   "the sequences: remove it (it is then the outputs of '%s')", d->name, m->layers[l->src[0]].name);
    } else if (from > 0 && !s) {
        if (from > 1 && cfg->batchnorm)
            dnic_error(dnic_checker_diag(c), dnic_decl_arg_span(d, 0), "a layer with norm = batch cannot read the "
                       "%d steps of '%s' one at a time: its statistics would mix the steps", from,
                       m->layers[l->src[0]].name);
        else if (from > 1 && l->act == DNIC_ACT_SOFTMAX)
            dnic_error(dnic_checker_diag(c), dnic_decl_arg_span(d, 0), "softmax over steps is not supported: '%s' "
                       "reads the %d steps of '%s' one at a time; use sigmoid per output", d->name, from,
                       m->layers[l->src[0]].name);
        l->derived_steps = cfg->steps = from;
        l->out = cfg->width * cfg->steps;
    }
    if (src_width[0] % cfg->steps) {
        dnic_error(dnic_checker_diag(c), dnic_decl_arg_span(d, 0),
                   "dense '%s' applies itself to %d steps of its source, but the source's width %d is not a multiple "
                   "of %d", d->name, cfg->steps, src_width[0], cfg->steps);
        return false;
    }
    cfg->in = src_width[0] / cfg->steps;
    return true;
}

/* Its parameters' buffers while the IR is built. */
typedef struct dense_ir {
    dnic_unit u;                    /* the linear part (u.out: the pre-normalisation z with BN) */
    int gamma, beta, mean, var;     /* norm = batch */
    int z, xhat, batch_mean, batch_var;
    int *x, *y;                     /* steps = N: each step's input and output */
    int wt, gw, gb;                 /* ... W^T for the messages, the gradients of W and b */
} dense_ir;

static void params(dnic_builder *b, dnic_layer_ir *L)
{
    dnic_arena *a = dnic_builder_arena(b);
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    dense_ir *st = dnic_alloc(a, sizeof *st);
    L->st = st;
    int W = cfg->width;
    st->u.name = l->name;
    st->u.act = cfg->batchnorm ? DNIC_ACT_LINEAR : l->act;
    st->u.lr = cfg->lr > 0 ? cfg->lr : dnic_builder_model(b)->train.lr;
    st->u.w = dnic_build_param(b, dnic_sprintf(a, "%s.weight", l->name), cfg->in, W, cfg->w_init, cfg->in, W);
    st->u.b = cfg->bias ? dnic_build_param(b, dnic_sprintf(a, "%s.bias", l->name), 1, W, cfg->b_init, cfg->in, W) : -1;
    st->u.grad_in = -1;
    st->u.frozen = !l->trainable;
    st->wt = st->gw = st->gb = -1;
    if (cfg->batchnorm) {
        st->gamma = dnic_build_const_param(b, dnic_sprintf(a, "%s.gamma", l->name), 1, l->out, 1);
        st->beta = dnic_build_const_param(b, dnic_sprintf(a, "%s.beta", l->name), 1, l->out, 0);
        st->mean = dnic_build_const_param(b, dnic_sprintf(a, "%s.running_mean", l->name), 1, l->out, 0);
        st->var = dnic_build_const_param(b, dnic_sprintf(a, "%s.running_var", l->name), 1, l->out, 1);
    }
}

/* steps = N: y_t = act(x_t . W + b) for steps k0..k1-1, x_t the step's columns of the source,
 * each y_t placed in its columns of the output.  A training step runs all N at once, or (a
 * recurrent layer's outputs spanning its truncation chunks) chunk by chunk. */
static void forward_range(dnic_builder *b, dnic_layer_ir *L, int k0, int k1)
{
    dense_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    dnic_arena *a = dnic_builder_arena(b);
    int B = dnic_builder_batch(b);
    if (!st->x) {
        st->x = dnic_alloc(a, (size_t)cfg->steps * sizeof *st->x);
        st->y = dnic_alloc(a, (size_t)cfg->steps * sizeof *st->y);
        for (int t = 0; t < cfg->steps; t++) {
            st->x[t] = dnic_build_temp(b, dnic_sprintf(a, "%s.x%d", l->name, t + 1), B, cfg->in);
            st->y[t] = dnic_build_temp(b, dnic_sprintf(a, "%s.y%d", l->name, t + 1), B, cfg->width);
        }
    }
    for (int t = k0; t < k1; t++) {
        dnic_build_op(b, DNIC_OP_SLICE, st->x[t], L->in[0], -1, -1)->off = t * cfg->in;
        dnic_build_op(b, DNIC_OP_DENSE, st->y[t], st->x[t], st->u.w, st->u.b)->act = l->act;
        dnic_build_op(b, DNIC_OP_PLACE, L->out, st->y[t], -1, -1)->off = t * cfg->width;
    }
}

/* Steps k0..k1-1 backward, given g[t - k0] w.r.t. each step's output (w.r.t. its
 * pre-activation when g_is_delta): one gradient of W (and b) summed over those steps, from
 * their inputs and deltas stacked (step k0's rows first); their updates; and, when gsrc is not
 * NULL, each step's message to the source in gsrc[t - k0], before or after the updates as
 * train.backward_message says. */
static void backward_range(dnic_builder *b, dnic_layer_ir *L, const int *g, bool g_is_delta, int k0, int k1,
                           int *gsrc)
{
    dense_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    const dnic_unit *u = &st->u;
    dnic_arena *a = dnic_builder_arena(b);
    int B = dnic_builder_batch(b), n = k1 - k0, W = cfg->width;
    int *dz = dnic_alloc(a, (size_t)n * sizeof *dz);
    for (int t = k0; t < k1; t++)
        dz[t - k0] = dnic_build_delta(b, dnic_sprintf(a, "%s.y%d", l->name, t + 1), l->act, st->y[t], g[t - k0],
                                      g_is_delta);
    if (st->wt < 0) {
        st->wt = dnic_build_temp(b, dnic_sprintf(a, "%s.weight.t", l->name), W, cfg->in);
        st->gw = dnic_build_temp(b, dnic_sprintf(a, "%s.weight.grad", l->name), cfg->in, W);
        st->gb = u->b >= 0 ? dnic_build_temp(b, dnic_sprintf(a, "%s.bias.grad", l->name), 1, W) : -1;
    }
    bool after = dnic_builder_model(b)->train.message == DNIC_MSG_AFTER_UPDATE;
    for (int pass = 0; pass < 2; pass++) {
        if (pass == (after ? 1 : 0)) {
            for (int t = k0; gsrc && t < k1; t++) {
                gsrc[t - k0] = dnic_build_temp(b, dnic_sprintf(a, "%s.source.grad%d", l->name, t + 1), B, cfg->in);
                dnic_ir_op *o = dnic_build_op(b, DNIC_OP_MATMUL_NT, gsrc[t - k0], dz[t - k0], u->w, -1);
                o->scratch = st->wt;
                o->scratch_ready = t > k0;
            }
            continue;
        }
        if (u->frozen)
            continue;
        int xs = st->x[k0], ds = dz[0];
        if (n > 1) {
            const char *pfx = k0 == 0 && k1 == cfg->steps ? l->name : dnic_sprintf(a, "%s.steps%d", l->name, k0 + 1);
            xs = dnic_build_temp(b, dnic_sprintf(a, "%s.steps.x", pfx), n * B, cfg->in);
            ds = dnic_build_temp(b, dnic_sprintf(a, "%s.steps.delta", pfx), n * B, W);
            for (int t = k0; t < k1; t++) {
                dnic_build_op(b, DNIC_OP_STACK, xs, st->x[t], -1, -1)->off = (t - k0) * B;
                dnic_build_op(b, DNIC_OP_STACK, ds, dz[t - k0], -1, -1)->off = (t - k0) * B;
            }
        }
        dnic_build_op(b, DNIC_OP_GRAD_W, st->gw, xs, ds, -1);
        dnic_build_update(b, DNIC_OP_UPDATE, u->w, st->gw, -1, u->lr);
        if (u->b >= 0) { /* the bias's gradient is a batch mean, summed over the steps */
            dnic_build_op(b, DNIC_OP_GRAD_W, st->gb, -1, ds, -1);
            dnic_build_update(b, DNIC_OP_UPDATE, u->b, st->gb, -1, u->lr)->grad_div = B;
        }
    }
}

/* All N steps at once, from g w.r.t. the whole output: each step's part, and the messages
 * placed in their columns of the source's gradient. */
static void steps_backward(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta)
{
    dense_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    dnic_arena *a = dnic_builder_arena(b);
    int B = dnic_builder_batch(b), N = cfg->steps;
    int *gt = dnic_alloc(a, (size_t)N * sizeof *gt), *src = dnic_alloc(a, (size_t)N * sizeof *src);
    for (int t = 0; t < N; t++) {
        gt[t] = dnic_build_temp(b, dnic_sprintf(a, "%s.grad%d", l->name, t + 1), B, cfg->width);
        dnic_build_op(b, DNIC_OP_SLICE, gt[t], g, -1, -1)->off = t * cfg->width;
    }
    backward_range(b, L, gt, g_is_delta, 0, N, st->u.grad_in >= 0 ? src : NULL);
    for (int t = 0; st->u.grad_in >= 0 && t < N; t++)
        dnic_build_op(b, DNIC_OP_PLACE, st->u.grad_in, src[t], -1, -1)->off = t * cfg->in;
}

/* Linear -> BN -> act: z = x . W; xhat = (z - mean) / sqrt(var + eps) with the batch's
 * statistics in training (which also move the running averages) and the running averages for
 * inference; out = act(xhat * gamma + beta). */
static void forward(dnic_builder *b, dnic_layer_ir *L, bool train)
{
    dense_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    st->u.in = L->in[0];
    if (cfg->steps > 1) {
        forward_range(b, L, 0, cfg->steps);
        return;
    }
    if (!cfg->batchnorm) {
        st->u.out = L->out;
        dnic_build_unit_forward(b, &st->u);
        return;
    }
    dnic_arena *a = dnic_builder_arena(b);
    int B = dnic_builder_batch(b), N = l->out;
    if (!st->z) {
        st->z = dnic_build_temp(b, dnic_sprintf(a, "%s.z", l->name), B, N);
        st->xhat = dnic_build_temp(b, dnic_sprintf(a, "%s.xhat", l->name), B, N);
        st->batch_mean = dnic_build_temp(b, dnic_sprintf(a, "%s.batch_mean", l->name), 1, N);
        st->batch_var = dnic_build_temp(b, dnic_sprintf(a, "%s.batch_var", l->name), 1, N);
    }
    st->u.out = st->z;
    dnic_build_unit_forward(b, &st->u);
    int mean = st->mean, var = st->var;
    if (train) {
        mean = st->batch_mean;
        var = st->batch_var;
        dnic_build_op(b, DNIC_OP_BN_MEAN, mean, st->z, -1, -1);
        dnic_build_op(b, DNIC_OP_BN_VAR, var, st->z, mean, -1);
    }
    dnic_build_op(b, DNIC_OP_BN_NORM, st->xhat, st->z, mean, var)->eps = cfg->norm_eps;
    dnic_build_op(b, DNIC_OP_AFFINE, L->out, st->xhat, st->gamma, st->beta)->act = l->act;
    if (train) {
        dnic_ir_op *o = dnic_build_op(b, DNIC_OP_BN_RUNNING, st->mean, st->batch_mean, -1, -1);
        o->momentum = cfg->norm_momentum;
        o->scale = 1;
        o = dnic_build_op(b, DNIC_OP_BN_RUNNING, st->var, st->batch_var, -1, -1);
        o->momentum = cfg->norm_momentum;
        o->scale = B > 1 ? (double)B / (B - 1) : 1; /* the running variance is unbiased */
    }
}

/* With norm = batch: dy from g through the activation; gamma and beta's gradients (batch
 * sums) and dz through the normalisation, both with gamma before its update; then the
 * weight's update and the message, as a plain dense layer. */
static void backward(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta, int *grad)
{
    dense_ir *st = L->st;
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    st->u.grad_in = grad[0] >= 0 ? (grad[0] = dnic_build_grad(b, L, 0)) : -1;
    if (cfg->steps > 1) {
        steps_backward(b, L, g, g_is_delta);
        return;
    }
    int dz = dnic_build_delta(b, l->name, l->act, L->out, g, g_is_delta);
    if (cfg->batchnorm) {
        dnic_arena *a = dnic_builder_arena(b);
        int B = dnic_builder_batch(b), N = l->out;
        int dp = dnic_build_temp(b, dnic_sprintf(a, "%s.dparams", l->name), 2, N);
        dnic_build_op(b, DNIC_OP_BN_DPARAMS, dp, dz, st->xhat, -1);
        int dx = dnic_build_temp(b, dnic_sprintf(a, "%s.z.delta", l->name), B, N);
        int gamma = dnic_build_param_used(b, st->gamma, !l->trainable); /* before its update */
        dnic_ir_op *o = dnic_build_op(b, DNIC_OP_BN_GRAD, dx, dz, st->xhat, st->batch_var);
        o->src[3] = gamma;
        o->src[4] = dp;
        o->eps = cfg->norm_eps;
        if (l->trainable) {
            dnic_build_update(b, DNIC_OP_UPDATE, st->gamma, dp, -1, st->u.lr)->off = 0;
            dnic_build_update(b, DNIC_OP_UPDATE, st->beta, dp, -1, st->u.lr)->off = 1;
        }
        dz = dx;
    }
    dnic_build_unit_update(b, &st->u, dz);
}

static void describe(const dnic_layer *l, char *buf, size_t n)
{
    const dnic_dense_cfg *cfg = l->cfg;
    char steps[32] = "";
    if (cfg->steps > 1)
        snprintf(steps, sizeof steps, " on each of %d steps", cfg->steps);
    snprintf(buf, n, "dense %d -> %d%s%s", cfg->in, cfg->width, steps,
             cfg->batchnorm ? ", batch norm" : cfg->bias ? "" : ", no bias");
}

const dnic_layer_kind dnic_layer_dense = {
    .name = "dense",
    .usage = "dense(source, width)",
    .min_src = 1,
    .max_src = 1,
    .extra_args = 1,
    .has_params = true,
    .softmax_ok = true,
    .settings = SETTINGS,
    .check = check,
    .shape = shape,
    .params = params,
    .forward = forward,
    .backward = backward,
    .describe = describe,
    .forward_range = forward_range,
    .backward_range = backward_range,
};
