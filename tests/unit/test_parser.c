/* Parser tests: the AST's shape, operator grouping, and syntax errors with what was expected. */
#include <criterion/criterion.h>

#include "testutil.h"

static char *dump(tu *t)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dnic_ast_dump(t->ast, f);
    fclose(f);
    return buf;
}

Test(parser, declarations_in_order)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer h = dense(input, 3) { activation = tanh }\n"
                             "sg h { input = output + labels }\n" TU_MODEL_TAIL, false);
    cr_assert_not_null(t.ast, "%s", tu_errors(&t));
    cr_assert_str_eq(t.ast->model, "m");
    cr_assert_eq(t.ast->decls.n, 5);
    dnic_decl_kind kinds[] = {DECL_DATA, DECL_LAYER, DECL_SG, DECL_LOSS, DECL_TRAIN};
    for (int i = 0; i < 5; i++)
        cr_assert_eq(((dnic_decl *)t.ast->decls.v[i])->kind, kinds[i], "decl %d", i);
    const dnic_decl *layer = t.ast->decls.v[1];
    cr_assert_str_eq(layer->name, "h");
    cr_assert_str_eq(layer->call->str, "dense");
    cr_assert_eq(layer->call->args.n, 2);
    tu_free(&t);
}

Test(parser, precedence_and_grouping)
{
    tu t;
    tu_run(&t, "model m\nlayer a = dense(input, 2) { init = randn * 2 - 1 bias_init = -(1 + 2) * 3 / 4 }\n", false);
    cr_assert_not_null(t.ast, "%s", tu_errors(&t));
    char *d = dump(&t);
    cr_assert(strstr(d, "  init = ((randn * 2) - 1)  @2:29\n"), "%s", d);
    cr_assert(strstr(d, "  bias_init = (((-(1 + 2)) * 3) / 4)  @2:50\n"), "%s", d);
    free(d);
    tu_free(&t);
}

Test(parser, calls_lists_and_named_arguments)
{
    tu t;
    tu_run(&t, "model m\nsg h { hidden = [64, 32] }\nloss f(a, b = \"x\", g())\n", false);
    cr_assert_not_null(t.ast, "%s", tu_errors(&t));
    char *d = dump(&t);
    cr_assert(strstr(d, "  hidden = [64, 32]"), "%s", d);
    cr_assert(strstr(d, "loss f(a, b=\"x\", g())  @3:1"), "%s", d);
    free(d);
    tu_free(&t);
}

Test(parser, syntax_error_says_what_was_expected)
{
    tu t;
    tu_run(&t, "model m\nlayer h dense(input, 3)\n", false);
    cr_assert_null(t.ast);
    cr_assert(strstr(tu_errors(&t), "t.dni:2:9: error: unexpected name 'dense', expected '='"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(parser, end_of_file)
{
    tu t;
    tu_run(&t, "model m\ntrain { lr = 1\n", false);
    cr_assert_null(t.ast);
    cr_assert(strstr(tu_errors(&t), "error: unexpected end of file"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(parser, missing_model_line)
{
    tu t;
    tu_run(&t, "train { lr = 1 }\n", false);
    cr_assert_null(t.ast);
    cr_assert(strstr(tu_errors(&t), "t.dni:1:1: error: unexpected 'train', expected 'model'"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(parser, recovers_to_report_several_errors)
{
    tu t;
    tu_run(&t, "model m\ntrain { lr 1 }\ndata x { a = = }\n", false);
    cr_assert_null(t.ast);
    cr_assert_eq(t.d.errors, 2, "%s", tu_errors(&t));
    tu_free(&t);
}

Test(parser, value_parse_keeps_columns)
{
    dnic_arena *a = dnic_arena_new();
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dnic_diag d;
    dnic_diag_init(&d, f);
    const dnic_source *src = dnic_source_from_string(a, "--set", "sg.h1.input=output + labels");
    dnic_expr *e = dnic_parse_value(a, &d, src, 12);
    cr_assert_not_null(e);
    cr_assert_eq(e->kind, EXPR_BINARY);
    cr_assert_eq(e->span.col, 13);
    cr_assert_eq(e->rhs->span.col, 22);
    fclose(f);
    free(buf);
    dnic_arena_free(a);
}
