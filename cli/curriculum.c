/* The copy tasks' curriculum inside one run (docs/semantics.md, "Curriculum"): the test score
 * that ends a length, the model checked and lowered again at the next length, and the
 * parameters and optimiser state carried over to it by name.  cli/run.c drives it. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

void cli_curriculum_init(cli_curriculum *c, dnic_arena *a, dnic_ast *ast, const dnic_model *m)
{
    *c = (cli_curriculum){.a = a, .ast = ast, .length = m->data.length, .threshold = m->data.curriculum,
                          .max_length = m->data.max_length, .errors = -1};
}

int cli_curriculum_met(void *user, const dnic_report *r)
{
    cli_curriculum *c = user;
    if (!r->has_test || !(r->test_errors < c->threshold))
        return 0;
    c->solved = c->length; /* lengths only grow: the latest solved is the longest */
    c->errors = r->test_errors;
    c->at = r->step;
    return 1;
}

/* The model with data.length = L, checked and lowered in `in` (the AST's override is in c->a). */
static bool model_at(cli_curriculum *c, dnic_diag *d, dnic_arena *in, int L, const dnic_model **m, const dnic_ir **ir)
{
    char set[48];
    snprintf(set, sizeof set, "data.length=%d", L);
    dnic_model *nm = dnic_apply_override(c->a, d, c->ast, set) ? dnic_check(in, d, c->ast, DNIC_CHECK_OPEN_DATA) : NULL;
    dnic_ir *nir = nm ? dnic_ir_build(in, nm) : NULL;
    if (!nir || !dnic_ir_verify(nir, stderr))
        return false;
    *m = nm;
    *ir = nir;
    return true;
}

/* Whether buffer b is carried from one length to the next. */
static bool carried(const dnic_buffer_desc *b)
{
    return b->kind == DNIC_BUF_PARAM || b->kind == DNIC_BUF_STATE;
}

/* Every carried buffer of `from` has one of the same name, kind and shape in `to` and the other
 * way round, but for optimiser state that only `to` has (an SG module's at truncation
 * boundaries the longer sequences have first: zero, as it starts); else a diagnostic at the
 * data block naming the first that does not. */
static bool same_state(dnic_diag *d, const dnic_model *m, const dnic_buffer_desc *from, int nfrom,
                       const dnic_buffer_desc *to, int nto, int L)
{
    for (int pass = 0; pass < 2; pass++) {
        const dnic_buffer_desc *x = pass ? to : from, *y = pass ? from : to;
        int nx = pass ? nto : nfrom, ny = pass ? nfrom : nto;
        for (int i = 0; i < nx; i++) {
            if (!carried(&x[i]))
                continue;
            int j = 0;
            while (j < ny && strcmp(y[j].name, x[i].name) != 0)
                j++;
            if (j == ny && pass && x[i].kind == DNIC_BUF_STATE)
                continue;
            if (j < ny && y[j].kind == x[i].kind && y[j].rows == x[i].rows && y[j].cols == x[i].cols &&
                y[j].dtype == x[i].dtype)
                continue;
            const dnic_buffer_desc *other = j < ny ? &y[j] : NULL; /* at the other length */
            const dnic_buffer_desc *a = pass ? other : &x[i], *b = pass ? &x[i] : other;
            if (a && b)
                dnic_error(d, m->data.span, "a curriculum carries every parameter from one length to the next, but "
                           "'%s' is [%d,%d] at length %d and [%d,%d] at length %d", x[i].name, a->rows, a->cols, L,
                           b->rows, b->cols, L + 1);
            else
                dnic_error(d, m->data.span, "a curriculum carries every parameter from one length to the next, but "
                           "'%s' exists at length %d only", x[i].name, pass ? L + 1 : L);
            dnic_note(d, (dnic_span){0}, "the weights' shapes must not depend on the length: read the data with a "
                      "recurrent layer (rnn, lstm) and condition SG modules on output only");
            return false;
        }
    }
    return true;
}

bool cli_curriculum_check(cli_curriculum *c, dnic_diag *d, const dnic_model *m, const dnic_ir *ir)
{
    if (c->length >= c->max_length)
        return true;
    dnic_arena *in = dnic_arena_new();
    const dnic_model *nm;
    const dnic_ir *nir;
    bool checked = model_at(c, d, in, c->length + 1, &nm, &nir);
    if (!checked)
        dnic_note(d, m->data.span, "the errors above are the model's at length %d, where the curriculum goes next",
                  c->length + 1);
    bool ok = checked && same_state(d, m, ir->bufs, ir->nbufs, nir->bufs, nir->nbufs, c->length);
    char set[48]; /* the AST back at the run's length */
    snprintf(set, sizeof set, "data.length=%d", c->length);
    dnic_apply_override(c->a, d, c->ast, set);
    dnic_arena_free(in);
    return ok;
}

bool cli_curriculum_next(cli_curriculum *c, dnic_diag *d, dnic_arena *in, const dnic_model **m, const dnic_ir **ir)
{
    if (!model_at(c, d, in, c->length + 1, m, ir))
        return false;
    c->length++;
    return true;
}

bool cli_carry_state(dnic_diag *d, const dnic_model *m, dnic_program *to, const dnic_program *from, int L)
{
    if (!same_state(d, m, from->bufs, from->nbufs, to->bufs, to->nbufs, L))
        return false;
    for (int i = 0; i < from->nbufs; i++) {
        const dnic_buffer_desc *b = &from->bufs[i];
        if (carried(b))
            memcpy(to->ptrs[dnic_program_find(to, b->name)], from->ptrs[i],
                   (size_t)b->rows * (size_t)b->cols * dnic_dtype_size(b->dtype));
    }
    return true;
}
