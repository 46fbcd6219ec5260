/* The add merge: out = act(a + b + ...), summed left to right; every source gets the same
 * gradient. */
#include "layers.h"

/* layer NAME = add(A, B, ...) { activation } */
static const char *const SETTINGS[] = {"activation", NULL};

static void check(dnic_checker *c, const dnic_decl *d, dnic_layer *l)
{
    const dnic_setting *s = dnic_setting_find(d, "activation");
    if (s)
        dnic_check_act(c, s, &l->act);
}

static bool shape(dnic_checker *c, const dnic_decl *d, dnic_layer *l, const int *src_width)
{
    l->out = src_width[0];
    for (int i = 1; i < l->nsrc; i++)
        if (src_width[i] != src_width[0]) {
            const dnic_arg *a0 = d->call->args.v[0], *ai = d->call->args.v[i];
            dnic_error(dnic_checker_diag(c), dnic_decl_arg_span(d, i),
                       "add needs sources of one width, but '%s' is %d wide and '%s' is %d", a0->value->str,
                       src_width[0], ai->value->str, src_width[i]);
            dnic_note(dnic_checker_diag(c), (dnic_span){0}, "concat(...) joins sources of different widths side by side");
            return false;
        }
    return true;
}

/* ((s0 + s1) + s2) + ...: the partial sums in temporaries, the activation on the last. */
static void forward(dnic_builder *b, dnic_layer_ir *L, bool train)
{
    (void)train;
    const dnic_layer *l = L->l;
    int acc = L->in[0];
    for (int i = 1; i < l->nsrc; i++) {
        bool last = i == l->nsrc - 1;
        int dst = last ? L->out
                       : dnic_build_temp(b, dnic_sprintf(dnic_builder_arena(b), "%s.sum%d", l->name, i),
                                         dnic_builder_batch(b), l->out);
        dnic_build_op(b, DNIC_OP_ADD, dst, acc, L->in[i], -1)->act = last ? l->act : DNIC_ACT_LINEAR;
        acc = dst;
    }
}

static void backward(dnic_builder *b, dnic_layer_ir *L, int g, bool g_is_delta, int *grad)
{
    int dz = dnic_build_delta(b, L->l->name, L->l->act, L->out, g, g_is_delta);
    for (int i = 0; i < L->l->nsrc; i++)
        if (grad[i] >= 0)
            grad[i] = dz;
}

const dnic_layer_kind dnic_layer_add = {
    .name = "add",
    .usage = "add(source, source, ...)",
    .min_src = 2,
    .max_src = DNIC_MAX_LAYER_SRC,
    .settings = SETTINGS,
    .check = check,
    .shape = shape,

    .forward = forward,
    .backward = backward,
};
