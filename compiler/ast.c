/* The syntax tree: constructors used by the grammar's actions and the stable --dump-ast
 * text form (tested with goldens). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "dnic.h"

dnic_expr *dnic_expr_new(dnic_arena *a, dnic_expr_kind k, dnic_span sp)
{
    dnic_expr *e = dnic_alloc(a, sizeof *e);
    e->kind = k;
    e->span = sp;
    return e;
}

const char *dnic_decl_kind_name(dnic_decl_kind k)
{
    static const char *const names[] = {"data", "layer", "sg", "loss", "train"};
    DNIC_ASSERT((unsigned)k < sizeof names / sizeof names[0]);
    return names[k];
}

static void print_string(const char *s, FILE *out)
{
    fputc('"', out);
    for (; *s; s++) {
        if (*s == '"' || *s == '\\')
            fprintf(out, "\\%c", *s);
        else if (*s == '\n')
            fputs("\\n", out);
        else if (*s == '\t')
            fputs("\\t", out);
        else
            fputc(*s, out);
    }
    fputc('"', out);
}

/* Prints an expression fully parenthesised, so the dump shows how it was grouped. */
void dnic_expr_print(const dnic_expr *e, FILE *out)
{
    switch (e->kind) {
    case EXPR_NUM:
        if (e->is_int && fabs(e->num) < 1e15)
            fprintf(out, "%.0f", e->num);
        else
            fprintf(out, "%.17g", e->num);
        break;
    case EXPR_STR:
        print_string(e->str, out);
        break;
    case EXPR_NAME:
        fputs(e->str, out);
        break;
    case EXPR_CALL:
        fprintf(out, "%s(", e->str);
        for (int i = 0; i < e->args.n; i++) {
            const dnic_arg *arg = e->args.v[i];
            if (i)
                fputs(", ", out);
            if (arg->name)
                fprintf(out, "%s=", arg->name);
            dnic_expr_print(arg->value, out);
        }
        fputc(')', out);
        break;
    case EXPR_LIST:
        fputc('[', out);
        for (int i = 0; i < e->args.n; i++) {
            if (i)
                fputs(", ", out);
            dnic_expr_print(e->args.v[i], out);
        }
        fputc(']', out);
        break;
    case EXPR_BINARY: {
        /* 1 + 1 + ... + 1 nests to the left as deep as the file is long: walk that chain in a
         * loop, innermost first, so that only the parser-bounded nesting recurses */
        size_t n = 0;
        const dnic_expr *l = e;
        for (; l->kind == EXPR_BINARY; l = l->lhs)
            n++;
        const dnic_expr **chain = malloc(n * sizeof *chain);
        DNIC_ASSERT(chain != NULL);
        size_t i = n;
        for (const dnic_expr *b = e; b->kind == EXPR_BINARY; b = b->lhs)
            chain[--i] = b;
        for (i = 0; i < n; i++)
            fputc('(', out);
        dnic_expr_print(l, out);
        for (i = 0; i < n; i++) {
            fprintf(out, " %c ", chain[i]->op);
            dnic_expr_print(chain[i]->rhs, out);
            fputc(')', out);
        }
        free(chain);
        break;
    }
    case EXPR_NEG:
        fputs("(-", out);
        dnic_expr_print(e->lhs, out);
        fputc(')', out);
        break;
    }
}

void dnic_ast_dump(const dnic_ast *ast, FILE *out)
{
    fprintf(out, "model %s  @%d:%d\n", ast->model, ast->model_span.line, ast->model_span.col);
    for (int i = 0; i < ast->decls.n; i++) {
        const dnic_decl *d = ast->decls.v[i];
        fprintf(out, "%s", dnic_decl_kind_name(d->kind));
        if (d->name)
            fprintf(out, " %s", d->name);
        if (d->call) {
            fputs(d->name ? " = " : " ", out);
            dnic_expr_print(d->call, out);
        }
        fprintf(out, "  @%d:%d\n", d->span.line, d->span.col);
        for (int j = 0; j < d->settings.n; j++) {
            const dnic_setting *s = d->settings.v[j];
            fprintf(out, "  %s = ", s->key);
            dnic_expr_print(s->value, out);
            fprintf(out, "  @%d:%d%s\n", s->key_span.line, s->key_span.col,
                    s->overridden ? "  (--set)" : "");
        }
    }
}
