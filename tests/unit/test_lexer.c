/* Lexer tests: tokens, spans and lexical errors, seen through the parser's AST and messages. */
#include <criterion/criterion.h>

#include "testutil.h"

Test(lexer, numbers_and_spans)
{
    tu t;
    tu_run(&t, "model m\ntrain {\n  lr = 1.5e-2 batch = 10 x = .5 y = \"a\\tb\\\"\" }\n", false);
    cr_assert_not_null(t.ast, "%s", tu_errors(&t));
    const dnic_decl *d = t.ast->decls.v[0];
    cr_assert_eq(d->settings.n, 4);
    const dnic_setting *lr = d->settings.v[0], *batch = d->settings.v[1], *x = d->settings.v[2], *y = d->settings.v[3];
    cr_assert_eq(lr->key_span.line, 3);
    cr_assert_eq(lr->key_span.col, 3);
    cr_assert_eq(lr->value->span.col, 8);
    cr_assert_eq(lr->value->span.end_col, 14);
    cr_assert_float_eq(lr->value->num, 0.015, 1e-18);
    cr_assert(!lr->value->is_int);
    cr_assert(batch->value->is_int);
    cr_assert_float_eq(x->value->num, 0.5, 0);
    cr_assert_str_eq(y->value->str, "a\tb\"");
    tu_free(&t);
}

Test(lexer, comments_are_skipped)
{
    tu t;
    tu_run(&t, "# head\nmodel m # trailing\n# only a comment\ntrain { } # end", false);
    cr_assert_not_null(t.ast, "%s", tu_errors(&t));
    cr_assert_eq(t.ast->decls.n, 1);
    tu_free(&t);
}

Test(lexer, bad_character)
{
    tu t;
    tu_run(&t, "model m\ntrain { lr = 0.1 $ }\n", false);
    cr_assert_null(t.ast);
    cr_assert(strstr(tu_errors(&t), "t.dni:2:18: error: unexpected character '$'"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(lexer, invalid_numbers)
{
    const char *cases[][2] = {
        {"model m\ntrain { lr = 1.2.3 }\n", "t.dni:2:14: error: invalid number '1.2.3'"},
        {"model m\ntrain { lr = 12abc }\n", "t.dni:2:14: error: invalid number '12abc'"},
        {"model m\ntrain { lr = 1e999 }\n", "t.dni:2:14: error: number '1e999' is out of range"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tu t;
        tu_run(&t, cases[i][0], false);
        cr_assert_null(t.ast);
        cr_assert(strstr(tu_errors(&t), cases[i][1]), "case %zu: %s", i, tu_errors(&t));
        tu_free(&t);
    }
}

Test(lexer, unterminated_string)
{
    tu t;
    tu_run(&t, "model m\ndata csv { train = \"abc\n}\n", false);
    cr_assert_null(t.ast);
    cr_assert(strstr(tu_errors(&t), "t.dni:2:20: error: unterminated string"), "%s", tu_errors(&t));
    tu_free(&t);
}

Test(lexer, caret_marks_the_span)
{
    tu t;
    tu_run(&t, "model m\ntrain { lr = 12abc }\n", false);
    const char *e = tu_errors(&t);
    cr_assert(strstr(e, "    2 | train { lr = 12abc }\n      |              ^~~~~\n"), "%s", e);
    tu_free(&t);
}
