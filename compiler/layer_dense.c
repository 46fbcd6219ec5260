/* The dense layer: out = act(x . W + b), or with norm = batch, Linear -> batch normalisation
 * -> activation as in the paper's networks (docs/semantics.md, "Batch normalisation"). */
#include <stdio.h>
#include <string.h>

#include "layers.h"

/* layer NAME = dense(SOURCE, WIDTH) { activation bias init bias_init norm norm_momentum norm_eps lr } */
static const char *const SETTINGS[] = {"activation", "bias", "init", "bias_init", "norm", "norm_momentum", "norm_eps",
                                       "lr", NULL};

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
    dnic_check_int(c, &ws, 1, 1 << 20, &l->out);
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
}

static bool shape(dnic_checker *c, const dnic_decl *d, dnic_layer *l, const int *src_width)
{
    (void)c;
    (void)d;
    ((dnic_dense_cfg *)l->cfg)->in = src_width[0];
    return true;
}

/* Its parameters' buffers while the IR is built. */
typedef struct dense_ir {
    dnic_unit u;                    /* the linear part (u.out: the pre-normalisation z with BN) */
    int gamma, beta, mean, var;     /* norm = batch */
    int z, xhat, batch_mean, batch_var;
} dense_ir;

static void params(dnic_builder *b, dnic_layer_ir *L)
{
    dnic_arena *a = dnic_builder_arena(b);
    const dnic_layer *l = L->l;
    const dnic_dense_cfg *cfg = l->cfg;
    dense_ir *st = dnic_alloc(a, sizeof *st);
    L->st = st;
    st->u.name = l->name;
    st->u.act = cfg->batchnorm ? DNIC_ACT_LINEAR : l->act;
    st->u.lr = cfg->lr > 0 ? cfg->lr : dnic_builder_model(b)->train.lr;
    st->u.w = dnic_build_param(b, dnic_sprintf(a, "%s.weight", l->name), cfg->in, l->out, cfg->w_init, cfg->in, l->out);
    st->u.b = cfg->bias ? dnic_build_param(b, dnic_sprintf(a, "%s.bias", l->name), 1, l->out, cfg->b_init, cfg->in, l->out)
                        : -1;
    st->u.grad_in = -1;
    st->u.frozen = !l->trainable;
    if (cfg->batchnorm) {
        st->gamma = dnic_build_const_param(b, dnic_sprintf(a, "%s.gamma", l->name), 1, l->out, 1);
        st->beta = dnic_build_const_param(b, dnic_sprintf(a, "%s.beta", l->name), 1, l->out, 0);
        st->mean = dnic_build_const_param(b, dnic_sprintf(a, "%s.running_mean", l->name), 1, l->out, 0);
        st->var = dnic_build_const_param(b, dnic_sprintf(a, "%s.running_var", l->name), 1, l->out, 1);
    }
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
    snprintf(buf, n, "dense %d -> %d%s", cfg->in, l->out,
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
};
