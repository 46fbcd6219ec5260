/* The copy tasks' curriculum inside one run (docs/semantics.md, "Curriculum"): the test score
 * that ends a length, the model checked and lowered again at the next length, and the
 * parameters and optimiser state carried over to it by name.  cli/run.c drives it. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

/* The format of the dnic.curriculum text a checkpoint keeps (docs/files.md). */
enum { STATE_FORMAT = 1 };

/* c's state into c->text, as a checkpoint saved now keeps it. */
static void keep_text(cli_curriculum *c)
{
    char e[32];
    snprintf(c->text, sizeof c->text, "format = %d\nlength = %d\norigin = %lld\nsolved = %d\nat = %lld\n"
             "errors = %s\n", STATE_FORMAT, c->length, c->origin, c->solved, c->at,
             cli_real(e, sizeof e, c->solved ? c->errors : 0.0));
}

void cli_curriculum_init(cli_curriculum *c, dnic_arena *a, dnic_ast *ast, const dnic_model *m)
{
    int batch = m->train.batch > 0 ? m->train.batch : 1;
    long long per_epoch = m->data.examples / batch > 0 ? m->data.examples / batch : 1;
    *c = (cli_curriculum){.a = a, .ast = ast, .length = m->data.length, .threshold = m->data.curriculum,
                          .max_length = m->data.max_length, .errors = -1, .first_length = m->data.length,
                          .per_pass = m->train.epochs ? per_epoch : m->train.report_every,
                          .budget = m->train.epochs ? m->train.epochs * per_epoch : m->train.steps};
    keep_text(c);
}

int cli_curriculum_met(void *user, const dnic_report *r)
{
    cli_curriculum *c = user;
    if (!r->has_test || !(r->test_errors < c->threshold))
        return 0;
    c->solved = c->length; /* lengths only grow: the latest solved is the longest */
    c->errors = r->test_errors;
    c->at = r->step;
    keep_text(c);
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
    c->origin = c->at; /* the new length reads its data from the step after the one that solved the last */
    keep_text(c);
    return true;
}

/* Field `key` of the checkpoint's curriculum text as a whole number in [lo, hi] (else a
 * diagnostic naming the file and field). */
static bool field(dnic_diag *d, const char *ckpt, const char *text, const char *key, long long lo, long long hi,
                  long long *v)
{
    char buf[64], *end;
    if (!cli_setting_of(text, key, buf, sizeof buf)) {
        dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum: '%s' is missing", ckpt, key);
        return false;
    }
    errno = 0;
    long long x = strtoll(buf, &end, 10);
    if (end == buf || *end || errno || x < lo || x > hi) {
        if (hi < LLONG_MAX / 4)
            dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum: %s = %s, not a whole number in %lld..%lld", ckpt, key,
                       buf, lo, hi);
        else
            dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum: %s = %s, not a whole number from %lld on", ckpt, key,
                       buf, lo);
        return false;
    }
    *v = x;
    return true;
}

/* The state the checkpoint's text gives, checked against itself and this model's settings
 * (which cli_resume_check has found equal to the checkpoint's). */
static bool read_state(cli_curriculum *c, dnic_diag *d, const char *ckpt, const char *text)
{
    long long format, length, origin, solved, at;
    char buf[64], *end;
    if (!field(d, ckpt, text, "format", 1, 1000, &format))
        return false;
    if (format != STATE_FORMAT) {
        dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum: format %lld, this dnic reads %d", ckpt, format,
                   STATE_FORMAT);
        return false;
    }
    if (!field(d, ckpt, text, "length", c->first_length, c->max_length, &length) ||
        !field(d, ckpt, text, "origin", 0, LLONG_MAX / 4, &origin) ||
        !field(d, ckpt, text, "solved", 0, length, &solved) || !field(d, ckpt, text, "at", 0, LLONG_MAX / 4, &at))
        return false;
    if (origin >= c->budget) {
        dnic_error(d, (dnic_span){0}, "%s: length %lld began at step %lld (dnic.curriculum: origin), past this run's "
                   "%lld steps", ckpt, length, origin, c->budget);
        return false;
    }
    if (!cli_setting_of(text, "errors", buf, sizeof buf)) {
        dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum: 'errors' is missing", ckpt);
        return false;
    }
    double errors = strtod(buf, &end);
    const char *why = NULL;
    if (end == buf || *end || !(errors >= 0) || (solved && !(errors < c->threshold)))
        why = "errors is the test score that solved the length: at least 0 and under the curriculum's threshold";
    else if (solved && solved < c->first_length)
        why = "solved is 0 (none) or a length from the data's length on";
    else if ((length == c->first_length) != (origin == 0))
        why = "origin is 0 exactly at the first length";
    else if (origin % c->per_pass)
        why = "origin is a step a report ends";
    else if (length > c->first_length && solved < length - 1)
        why = "a length after the first follows one solved (solved is length or length - 1)";
    else if (solved == length - 1 && length > c->first_length && at != origin)
        why = "the length began at the step that solved the last one (at = origin)";
    else if (solved == length && at <= origin)
        why = "the length was solved after it began (at > origin)";
    else if (!solved && at != 0)
        why = "at is 0 when no length is solved";
    if (why) {
        dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum is inconsistent (length = %lld, origin = %lld, "
                   "solved = %lld, at = %lld, errors = %s): %s", ckpt, length, origin, solved, at, buf, why);
        return false;
    }
    c->length = (int)length;
    c->origin = origin;
    c->solved = (int)solved;
    c->at = at;
    c->errors = solved ? errors : -1;
    keep_text(c);
    return true;
}

bool cli_curriculum_resume(cli_curriculum *c, dnic_diag *d, const char *ckpt, dnic_arena *in, const dnic_model **m,
                           const dnic_ir **ir)
{
    char err[512];
    char *text = cli_checkpoint_text(ckpt, "dnic.curriculum", err, sizeof err);
    if (!text) {
        if (err[0])
            dnic_error(d, (dnic_span){0}, "%s", err);
        else
            dnic_error(d, (dnic_span){0}, "%s: dnic.curriculum is missing or not a text: not the checkpoint of a "
                       "curriculum run", ckpt);
        return false;
    }
    bool ok = read_state(c, d, ckpt, text);
    free(text);
    if (!ok)
        return false;
    int L = c->length;
    ok = model_at(c, d, in, L, m, ir);
    if (!ok)
        dnic_note(d, (dnic_span){0}, "the errors above are the model's at length %d, where %s resumes", L, ckpt);
    return ok;
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
