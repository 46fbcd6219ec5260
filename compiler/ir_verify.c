/* The IR verifier: every op's sources and destination exist and have the shapes its table
 * entry requires, temporaries are written before they are read, and only updates write
 * parameters.  A failure is a compiler bug, reported with the block and op. */
#include <string.h>

#include "dnic.h"

typedef struct verifier {
    const dnic_ir *ir;
    FILE *err;
    bool ok;
    const dnic_ir_block *blk;
    int opi;
} verifier;

__attribute__((format(printf, 2, 3))) static void fail(verifier *v, const char *fmt, ...)
{
    const dnic_ir_op *o = &v->blk->ops[v->opi];
    fprintf(v->err, "dnic: IR verification failed in block %s, op %d (%s): ", v->blk->name, v->opi, dnic_op_name(o->op));
    va_list ap;
    va_start(ap, fmt);
    vfprintf(v->err, fmt, ap);
    va_end(ap);
    fputc('\n', v->err);
    v->ok = false;
}

static const dnic_buffer_desc *B(verifier *v, int id)
{
    return &v->ir->bufs[id];
}

static void shape(verifier *v, int id, int rows, int cols)
{
    const dnic_buffer_desc *b = B(v, id);
    if (b->rows != rows || b->cols != cols)
        fail(v, "%s is [%d,%d], expected [%d,%d]", b->name, b->rows, b->cols, rows, cols);
}

static void check_op(verifier *v, const dnic_ir_op *o, bool *defined)
{
    int nb = v->ir->nbufs;
    if (o->dst < 0 || o->dst >= nb) {
        fail(v, "destination %d out of range", o->dst);
        return;
    }
    int need = dnic_op_nsrc(o->op);
    for (int i = 0; i < 4; i++) {
        int s = o->src[i];
        bool optional = (o->op == DNIC_OP_DENSE && i == 2) || (o->op == DNIC_OP_CONCAT && i == 2);
        if (i < need && !optional && s < 0) {
            fail(v, "source %d is missing", i);
            return;
        }
        if (s >= nb || (i >= need && s >= 0)) {
            fail(v, "source %d is out of range", i);
            return;
        }
        if (s >= 0 && !defined[s])
            fail(v, "%s is read before it is written", B(v, s)->name);
    }
    const dnic_buffer_desc *d = B(v, o->dst);
    const int *s = o->src;
    bool updates = o->op == DNIC_OP_SGD_W || o->op == DNIC_OP_SGD_B;
    bool accumulates = o->op == DNIC_OP_ABS_SUM || o->op == DNIC_OP_LOSS_SUM;
    if (updates != (d->kind == DNIC_BUF_PARAM) && !accumulates)
        fail(v, "%s (kind %d) cannot be written by this op", d->name, (int)d->kind);
    if (accumulates && d->kind != DNIC_BUF_ACC)
        fail(v, "%s is not an accumulator", d->name);
    if (!accumulates && d->dtype != v->ir->dtype)
        fail(v, "%s has the wrong dtype", d->name);
    int Bn = v->ir->batch;
    switch (o->op) {
    case DNIC_OP_DENSE:
        shape(v, s[0], Bn, B(v, s[1])->rows);
        shape(v, o->dst, Bn, B(v, s[1])->cols);
        if (s[2] >= 0)
            shape(v, s[2], 1, B(v, s[1])->cols);
        break;
    case DNIC_OP_CONCAT: {
        int w = 0;
        for (int i = 0; i < 3; i++)
            if (s[i] >= 0) {
                shape(v, s[i], Bn, B(v, s[i])->cols);
                w += B(v, s[i])->cols;
            }
        shape(v, o->dst, Bn, w);
        break;
    }
    case DNIC_OP_ACT_GRAD:
    case DNIC_OP_SUB:
        shape(v, s[0], d->rows, d->cols);
        shape(v, s[1], d->rows, d->cols);
        break;
    case DNIC_OP_MATMUL_NT:
        shape(v, s[0], Bn, B(v, s[1])->cols);
        shape(v, o->dst, Bn, B(v, s[1])->rows);
        if (o->scratch < 0 || o->scratch >= v->ir->nbufs || B(v, o->scratch)->kind != DNIC_BUF_TEMP)
            fail(v, "needs a temporary scratch buffer for W^T");
        else
            shape(v, o->scratch, B(v, s[1])->cols, B(v, s[1])->rows);
        break;
    case DNIC_OP_SGD_W:
        shape(v, s[0], Bn, d->rows);
        shape(v, s[1], Bn, d->cols);
        if (dnic_sgd_w_transposes(d->rows, Bn, v->ir->dtype) != (o->scratch >= 0))
            fail(v, "has a scratch buffer for x^T exactly when dnic_sgd_w_transposes");
        else if (o->scratch >= 0 && (o->scratch >= v->ir->nbufs || B(v, o->scratch)->kind != DNIC_BUF_TEMP))
            fail(v, "needs a temporary scratch buffer for x^T");
        else if (o->scratch >= 0)
            shape(v, o->scratch, d->rows, Bn);
        break;
    case DNIC_OP_SGD_B:
        shape(v, s[0], Bn, d->cols);
        shape(v, o->dst, 1, d->cols);
        break;
    case DNIC_OP_ABS_SUM:
        shape(v, o->dst, 1, 1);
        break;
    case DNIC_OP_LOSS_SUM:
        shape(v, o->dst, 1, 1);
        shape(v, s[1], B(v, s[0])->rows, B(v, s[0])->cols);
        break;
    case DNIC_OP_COUNT:
        fail(v, "bad op");
    }
    if (o->op != DNIC_OP_MATMUL_NT && o->op != DNIC_OP_SGD_W && o->scratch != -1)
        fail(v, "only matmul_nt and sgd_w take a scratch buffer");
    for (int i = 0; i < 3; i++) {
        int st = o->state[i];
        bool needed = updates && ((o->opt.kind == DNIC_OPT_MOMENTUM && i == 0) || (o->opt.kind == DNIC_OPT_ADAM));
        if (needed != (st >= 0))
            fail(v, "state buffer %d %s", i, needed ? "is missing" : "is not expected");
        else if (st >= v->ir->nbufs || (st >= 0 && B(v, st)->kind != DNIC_BUF_STATE))
            fail(v, "state buffer %d is not a STATE buffer", i);
        else if (st >= 0 && i < 2)
            shape(v, st, d->rows, d->cols);
        else if (st >= 0)
            shape(v, st, 1, 1);
    }
    if (updates && !(o->lr > 0))
        fail(v, "learning rate %g is not positive", o->lr);
    defined[o->dst] = true;
    if (o->scratch >= 0 && o->scratch < v->ir->nbufs)
        defined[o->scratch] = true;
}

bool dnic_ir_verify(const dnic_ir *ir, FILE *err)
{
    verifier vv = {.ir = ir, .err = err, .ok = true}, *v = &vv;
    bool defined[ir->nbufs > 0 ? ir->nbufs : 1];
    for (int i = 0; i < ir->nbufs; i++)
        defined[i] = ir->bufs[i].kind != DNIC_BUF_TEMP;
    for (int b = 0; b < ir->nblocks; b++) {
        v->blk = &ir->blocks[b];
        if (v->blk->stage < 0 || v->blk->stage >= ir->nstages) {
            v->opi = 0;
            fprintf(err, "dnic: IR verification failed: block %s has stage %d of %d\n", v->blk->name, v->blk->stage,
                    ir->nstages);
            v->ok = false;
        }
        for (v->opi = 0; v->opi < v->blk->nops; v->opi++)
            check_op(v, &v->blk->ops[v->opi], defined);
    }
    return v->ok;
}
