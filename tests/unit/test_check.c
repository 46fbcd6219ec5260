/* Checker tests: the checked model's contents and the checker's diagnostics. */
#include <criterion/criterion.h>

#include "layers.h"
#include "testutil.h"

/* A dense layer's own settings. */
static const dnic_dense_cfg *dense(const dnic_layer *l)
{
    cr_assert_eq(l->kind, &dnic_layer_dense);
    return l->cfg;
}

#define CHAIN "layer h1 = dense(input, 6) { activation = sigmoid }\n" \
              "layer out = dense(h1, 4) { activation = sigmoid }\n"

Test(check, chain_widths_and_defaults)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD CHAIN "sg h1 { }\n" TU_MODEL_TAIL, true);
    cr_assert_not_null(t.m, "%s", tu_errors(&t));
    cr_assert_eq(t.m->nlayers, 2);
    cr_assert_eq(dense(&t.m->layers[0])->in, 8);
    cr_assert_eq(t.m->layers[0].out, 6);
    cr_assert_eq(dense(&t.m->layers[1])->in, 6);
    cr_assert(dense(&t.m->layers[0])->bias);
    cr_assert_eq(dense(&t.m->layers[0])->w_init.kind, DNIC_INIT_XAVIER_UNIFORM);
    cr_assert_eq(t.m->nstages, 2, "the SG module of h1 ends stage 0");
    cr_assert_eq(t.m->layers[1].stage, 1);
    cr_assert_eq(t.m->nsgs, 1);
    cr_assert_eq(t.m->sgs[0].nparts, 1);
    cr_assert_eq(t.m->sgs[0].parts[0], DNIC_SG_OUTPUT);
    cr_assert_eq(t.m->sgs[0].w_init.kind, DNIC_INIT_ZEROS, "the paper zero-initialises SG modules");
    cr_assert_float_eq(t.m->sgs[0].lr, 0.1, 0, "an SG module learns at the model's rate by default");
    cr_assert_eq(t.m->train.message, DNIC_MSG_BEFORE_UPDATE);
    cr_assert_eq(t.m->train.report_every, 1, "3 epochs report every epoch");
    tu_free(&t);
}

Test(check, layers_are_ordered_along_the_chain)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer out = dense(h1, 4) { activation = sigmoid }\n"
                             "layer h1 = dense(input, 6)\n" TU_MODEL_TAIL, true);
    cr_assert_not_null(t.m, "%s", tu_errors(&t));
    cr_assert_str_eq(t.m->layers[0].name, "h1");
    cr_assert_str_eq(t.m->layers[1].name, "out");
    tu_free(&t);
}

Test(check, sg_input_concatenation_width)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD CHAIN "sg h1 { input = labels + output + input  lr = 0.5 }\n" TU_MODEL_TAIL, true);
    cr_assert_not_null(t.m, "%s", tu_errors(&t));
    const dnic_sg *sg = &t.m->sgs[0];
    cr_assert_eq(sg->nparts, 3);
    cr_assert_eq(sg->parts[0], DNIC_SG_LABELS);
    cr_assert_eq(sg->parts[1], DNIC_SG_OUTPUT);
    cr_assert_eq(sg->parts[2], DNIC_SG_INPUT);
    cr_assert_eq(sg->in_width, 4 + 6 + 8);
    cr_assert_float_eq(sg->lr, 0.5, 0);
    tu_free(&t);
}

Test(check, seed_initialiser_forms)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer h1 = dense(input, 6) { init = randn * 0.2 - 0.1  bias_init = rand * 2 }\n"
                             "layer out = dense(h1, 4) { init = randn * 0 bias = false }\n" TU_MODEL_TAIL, true);
    cr_assert_not_null(t.m, "%s", tu_errors(&t));
    const dnic_dense_cfg *l = dense(&t.m->layers[0]);
    cr_assert_eq(l->w_init.kind, DNIC_INIT_RANDN);
    cr_assert_float_eq(l->w_init.scale, 0.2, 0);
    cr_assert_float_eq(l->w_init.shift, -0.1, 0);
    cr_assert_eq(l->b_init.kind, DNIC_INIT_RAND);
    cr_assert_float_eq(l->b_init.scale, 2, 0);
    cr_assert_float_eq(l->b_init.shift, 0, 0);
    cr_assert_eq(dense(&t.m->layers[1])->w_init.kind, DNIC_INIT_RANDN);
    cr_assert_float_eq(dense(&t.m->layers[1])->w_init.scale, 0, 0);
    cr_assert(!dense(&t.m->layers[1])->bias);
    tu_free(&t);
}

Test(check, undefined_layer_with_suggestion)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer h1 = dense(input, 6)\nlayer out = dense(h2, 4)\n" TU_MODEL_TAIL, true);
    cr_assert_null(t.m);
    const char *e = tu_errors(&t);
    cr_assert(strstr(e, "t.dni:4:19: error: layer 'h2' is not defined\n"), "%s", e);
    cr_assert(strstr(e, "t.dni:4:19: note: did you mean 'h1'?\n"), "%s", e);
    tu_free(&t);
}

Test(check, cycle_is_named)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer a = dense(b, 6)\nlayer b = dense(a, 6)\nlayer out = dense(b, 4)\n" TU_MODEL_TAIL, true);
    cr_assert_null(t.m);
    cr_assert(strstr(tu_errors(&t), "error: layers form a cycle: a -> b -> a"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(check, several_errors_in_one_run)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer h1 = dense(input, 6) { activation = sigmod }\nlayer out = dense(h1, 4)\n"
                             "loss squared_error(out, labels)\n"
                             "train { batch = 0 lr = -1 epochs = 1 }\n", true);
    cr_assert_null(t.m);
    const char *e = tu_errors(&t);
    cr_assert_eq(t.d.errors, 3, "%s", e);
    cr_assert(strstr(e, "error: unknown activation 'sigmod'"), "%s", e);
    cr_assert(strstr(e, "note: did you mean 'sigmoid'?"), "%s", e);
    cr_assert(strstr(e, "error: batch must be between 1 and"), "%s", e);
    cr_assert(strstr(e, "error: lr must be greater than 0, not -1"), "%s", e);
    tu_free(&t);
}

Test(check, sg_on_output_layer)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD CHAIN "sg out { }\n" TU_MODEL_TAIL, true);
    cr_assert_null(t.m);
    cr_assert(strstr(tu_errors(&t), "t.dni:5:4: error: layer 'out' is the output layer"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(check, declared_widths_against_data)
{
    tu t;
    tu_run(&t, "model m\ndata binary_addition { bits = 4 examples = 20 inputs = 7 labels = 4 }\n" CHAIN TU_MODEL_TAIL, true);
    cr_assert_null(t.m);
    cr_assert(strstr(tu_errors(&t), "t.dni:2:56: error: inputs = 7, but binary_addition with bits = 4 gives 8 inputs"),
              "%s", tu_errors(&t));
    tu_free(&t);
}

static dnic_model *with_override(tu *t, const char *text, const char *over)
{
    memset(t, 0, sizeof *t);
    t->a = dnic_arena_new();
    t->err = open_memstream(&t->errbuf, &t->errlen);
    dnic_diag_init(&t->d, t->err);
    t->ast = dnic_parse(t->a, &t->d, dnic_source_from_string(t->a, "t.dni", text));
    cr_assert_not_null(t->ast);
    if (!dnic_apply_override(t->a, &t->d, t->ast, over))
        return NULL;
    return t->m = dnic_check(t->a, &t->d, t->ast, DNIC_CHECK_OPEN_DATA);
}

Test(check, override_replaces_and_adds)
{
    tu t;
    dnic_model *m = with_override(&t, TU_MODEL_HEAD CHAIN "sg h1 { }\n" TU_MODEL_TAIL, "sg.h1.input=labels");
    cr_assert_not_null(m, "%s", tu_errors(&t));
    cr_assert_eq(m->sgs[0].parts[0], DNIC_SG_LABELS);
    tu_free(&t);
    m = with_override(&t, TU_MODEL_HEAD CHAIN TU_MODEL_TAIL, "sg.h1.input=output+labels");
    cr_assert_not_null(m, "%s", tu_errors(&t));
    cr_assert_eq(m->nsgs, 1, "an override on a layer without an SG module adds one");
    cr_assert_eq(m->sgs[0].in_width, 10);
    tu_free(&t);
    m = with_override(&t, TU_MODEL_HEAD CHAIN TU_MODEL_TAIL, "train.batch=4");
    cr_assert_not_null(m, "%s", tu_errors(&t));
    cr_assert_eq(m->train.batch, 4);
    tu_free(&t);
}

Test(check, override_errors_point_into_the_override)
{
    tu t;
    dnic_model *m = with_override(&t, TU_MODEL_HEAD CHAIN TU_MODEL_TAIL, "train.bach=4");
    cr_assert_null(m);
    const char *e = tu_errors(&t);
    cr_assert(strstr(e, "--set:1:7: error: unknown setting 'bach' in train\n"), "%s", e);
    cr_assert(strstr(e, "    1 | train.bach=4\n      |       ^~~~\n"), "%s", e);
    tu_free(&t);
    m = with_override(&t, TU_MODEL_HEAD CHAIN TU_MODEL_TAIL, "train.batch=0");
    cr_assert_null(m);
    cr_assert(strstr(tu_errors(&t), "--set:1:13: error: batch must be between 1 and"), "%s", tu_errors(&t));
    tu_free(&t);
    m = with_override(&t, TU_MODEL_HEAD CHAIN TU_MODEL_TAIL, "trian.batch=0");
    cr_assert_null(m);
    cr_assert(strstr(tu_errors(&t), "--set:1:1: error: an override key starts with data, train, loss, layer or sg, not 'trian'"),
              "%s", tu_errors(&t));
    tu_free(&t);
}
