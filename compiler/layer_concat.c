/* The concat merge: out = [a | b | ...], the sources side by side in order; each source's
 * gradient is its slice of the output's. */
#include "layers.h"

/* layer NAME = concat(A, B, ...) (no settings) */
static const char *const SETTINGS[] = {NULL};

static bool shape(dnic_checker *c, const dnic_decl *d, dnic_layer *l, const int *src_width)
{
    (void)c;
    (void)d;
    l->out = 0;
    for (int i = 0; i < l->nsrc; i++)
        l->out += src_width[i];
    return true;
}

static void forward(dnic_builder *b, dnic_layer_ir *L, bool train)
{
    (void)train;
    dnic_ir_op *o = dnic_build_op(b, DNIC_OP_CONCAT, L->out, L->in[0], L->in[1], -1);
    for (int i = 2; i < L->l->nsrc; i++)
        o->src[i] = L->in[i];
}

static void backward(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta, int *grad)
{
    (void)g_is_delta; /* linear: the gradient w.r.t. the output is the one w.r.t. its "pre-activation" */
    const dnic_model *m = dnic_builder_model(b);
    int off = 0;
    for (int i = 0; i < L->l->nsrc; i++) {
        int s = L->l->src[i];
        int w = s < 0 ? m->data.inputs : m->layers[s].out;
        if (grad[i] >= 0) {
            grad[i] = dnic_build_grad(b, L, i);
            dnic_build_op(b, DNIC_OP_SLICE, grad[i], g, -1, -1)->off = off;
        }
        off += w;
    }
}

const dnic_layer_kind dnic_layer_concat = {
    .name = "concat",
    .usage = "concat(source, source, ...)",
    .min_src = 2,
    .max_src = DNIC_MAX_LAYER_SRC,
    .settings = SETTINGS,
    .shape = shape,
    .forward = forward,
    .backward = backward,
};
