/* The IR verifier: every op's operands exist, have the roles and shapes its op-table entry
 * requires (ir_ops.c), temporaries are written before they are read, every block's imports and
 * exports are what its def/use says, and no two buffers share a name.  A failure is a compiler
 * bug, reported with the block and op. */
#include <stdlib.h>
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
    if (!v->blk) {
        fprintf(v->err, "dnic: IR verification failed: ");
    } else if (v->opi >= 0) {
        const dnic_ir_op *o = &v->blk->ops[v->opi];
        fprintf(v->err, "dnic: IR verification failed in block %s, op %d (%s): ", v->blk->name, v->opi,
                dnic_op_name(o->op));
    } else {
        fprintf(v->err, "dnic: IR verification failed in block %s: ", v->blk->name);
    }
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

/* The kind of buffer each role of dst may be. */
static bool dst_kind_fits(dnic_dst_role r, dnic_buf_kind k)
{
    switch (r) {
    case DNIC_DST_TEMP: return k == DNIC_BUF_TEMP;
    case DNIC_DST_UPDATE:
    case DNIC_DST_STAT: return k == DNIC_BUF_PARAM;
    case DNIC_DST_ACC: return k == DNIC_BUF_ACC;
    }
    return false;
}

/* A message that reuses W^T from its scratch: the last op of the block that wrote that scratch
 * copied the same W into it, and nothing has updated W since. */
static void check_ready_scratch(verifier *v, const dnic_ir_op *o)
{
    if (o->op != DNIC_OP_MATMUL_NT || o->scratch < 0) {
        fail(v, "only a message with a scratch W^T may find it ready");
        return;
    }
    for (int k = v->opi - 1; k >= 0; k--) {
        const dnic_ir_op *p = &v->blk->ops[k];
        if (p->dst == o->src[1]) {
            fail(v, "%s was updated since its transposed copy was made", B(v, o->src[1])->name);
            return;
        }
        if (p->scratch == o->scratch && !p->scratch_ready) {
            if (p->op != DNIC_OP_MATMUL_NT || p->src[1] != o->src[1])
                fail(v, "%s does not hold %s transposed", B(v, o->scratch)->name, B(v, o->src[1])->name);
            return;
        }
    }
    fail(v, "%s is read before it is written", B(v, o->scratch)->name);
}

/* Operand indices and roles; defined[] marks what this block has written so far, imported[]
 * what it may read from other blocks. */
static void check_op(verifier *v, const dnic_ir_op *o, bool *defined, const bool *imported)
{
    int nb = v->ir->nbufs;
    if ((unsigned)o->op >= DNIC_OP_COUNT) {
        fail(v, "bad op %d", (int)o->op);
        return;
    }
    const dnic_op_info *info = &dnic_op_table[o->op];
    if (o->dst < 0 || o->dst >= nb) {
        fail(v, "destination %d out of range", o->dst);
        return;
    }
    for (int i = 0; i < DNIC_MAX_SRC; i++) {
        int s = o->src[i];
        if (i < info->nsrc && !(info->optional >> i & 1) && s < 0) {
            fail(v, "source %d is missing", i);
            return;
        }
        if (s >= nb || (i >= info->nsrc && s >= 0)) {
            fail(v, "source %d is out of range", i);
            return;
        }
        if (s >= 0 && B(v, s)->kind == DNIC_BUF_TEMP && !defined[s] && !imported[s])
            fail(v, "%s is read before it is written", B(v, s)->name);
    }
    if (o->scratch >= nb || o->state[0] >= nb || o->state[1] >= nb || o->state[2] >= nb) {
        fail(v, "a scratch or state buffer is out of range");
        return;
    }
    const dnic_buffer_desc *d = B(v, o->dst);
    if (!dst_kind_fits(info->dst, d->kind))
        fail(v, "%s (kind %d) cannot be written by this op", d->name, (int)d->kind);
    if (info->dst != DNIC_DST_ACC && d->dtype != v->ir->dtype)
        fail(v, "%s has the wrong dtype", d->name);
    char why[256];
    if (!info->shape(v->ir, o, why, sizeof why))
        fail(v, "%s", why);
    bool updates = info->dst == DNIC_DST_UPDATE;
    /* a hold buffer is set by the runtime, never written by an op: a TEMP [1,1] */
    if (o->hold >= nb || (o->hold >= 0 && (!updates || B(v, o->hold)->kind != DNIC_BUF_TEMP ||
                                           B(v, o->hold)->rows != 1 || B(v, o->hold)->cols != 1)))
        fail(v, "a hold buffer is out of range, not a TEMP [1,1], or on an op that updates nothing");
    for (int i = 0; i < 3; i++) {
        int st = o->state[i];
        bool needed = updates && ((o->opt.kind == DNIC_OPT_MOMENTUM && i == 0) || (o->opt.kind == DNIC_OPT_ADAM));
        if (needed != (st >= 0))
            fail(v, "state buffer %d %s", i, needed ? "is missing" : "is not expected");
        else if (st >= 0 && B(v, st)->kind != DNIC_BUF_STATE)
            fail(v, "state buffer %d is not a STATE buffer", i);
        else if (st >= 0 && i < 2 && (B(v, st)->rows != d->rows || B(v, st)->cols != d->cols))
            fail(v, "state buffer %s is not the shape of %s", B(v, st)->name, d->name);
        else if (st >= 0 && i == 2 && (B(v, st)->rows != 1 || B(v, st)->cols != 1))
            fail(v, "state buffer %s is not [1,1]", B(v, st)->name);
    }
    if (updates && !(o->lr > 0))
        fail(v, "learning rate %g is not positive", o->lr);
    if (o->scratch_ready)
        check_ready_scratch(v, o);
    defined[o->dst] = true;
    if (o->scratch >= 0)
        defined[o->scratch] = true;
}

/* Whether id is in the sorted list l[0..n). */
static bool listed(const int *l, int n, int id)
{
    for (int i = 0; i < n; i++)
        if (l[i] == id)
            return true;
    return false;
}

/* Imports and exports: a block imports only temporaries that another training block exports
 * (or, the STREAM block, the carried states its caller writes), exports only what it writes,
 * and what it exports is imported somewhere. */
static void check_links(verifier *v)
{
    const dnic_ir *ir = v->ir;
    v->opi = -1;
    for (int b = 0; b < ir->nblocks; b++) {
        const dnic_ir_block *blk = v->blk = &ir->blocks[b];
        for (int i = 0; i < blk->nimports; i++) {
            int id = blk->imports[i], from = -1;
            if (blk->phase == DNIC_PHASE_STREAM && listed(ir->state_in, ir->nstates, id))
                continue;
            for (int c = 0; c < ir->nblocks; c++)
                if (c != b && listed(ir->blocks[c].exports, ir->blocks[c].nexports, id))
                    from = c;
            if (from < 0)
                fail(v, "imports %s, which no other block exports", B(v, id)->name);
            else if (ir->blocks[from].stage != blk->stage && !listed(blk->waits, blk->nwaits, ir->blocks[from].stage))
                fail(v, "imports %s from stage %d without waiting for it", B(v, id)->name, ir->blocks[from].stage);
        }
        for (int i = 0; i < blk->nexports; i++) {
            int id = blk->exports[i];
            bool written = false, read = false;
            for (int k = 0; k < blk->nops; k++)
                written |= blk->ops[k].dst == id || blk->ops[k].scratch == id;
            for (int c = 0; c < ir->nblocks; c++)
                read |= c != b && listed(ir->blocks[c].imports, ir->blocks[c].nimports, id);
            if (!written || !read)
                fail(v, "exports %s, which it %s", B(v, id)->name, written ? "no block imports" : "does not write");
        }
    }
}

static int by_name(const void *a, const void *b)
{
    return strcmp((*(const dnic_buffer_desc *const *)a)->name, (*(const dnic_buffer_desc *const *)b)->name);
}

/* Buffer names are unique: weights files, checkpoints and the object's API name them. */
static void check_names(verifier *v)
{
    const dnic_ir *ir = v->ir;
    const dnic_buffer_desc **d = malloc((size_t)(ir->nbufs + 1) * sizeof *d);
    if (!d)
        return;
    for (int i = 0; i < ir->nbufs; i++)
        d[i] = &ir->bufs[i];
    qsort(d, (size_t)ir->nbufs, sizeof *d, by_name);
    v->blk = NULL;
    for (int i = 1; i < ir->nbufs; i++)
        if (strcmp(d[i - 1]->name, d[i]->name) == 0)
            fail(v, "two buffers are called %s", d[i]->name);
    free(d);
}

bool dnic_ir_verify(const dnic_ir *ir, FILE *err)
{
    verifier vv = {.ir = ir, .err = err, .ok = true}, *v = &vv;
    int n = ir->nbufs > 0 ? ir->nbufs : 1;
    bool defined[n], imported[n];
    for (int b = 0; b < ir->nblocks; b++) {
        v->blk = &ir->blocks[b];
        v->opi = -1;
        if (v->blk->stage < 0 || v->blk->stage >= ir->nstages)
            fail(v, "stage %d of %d", v->blk->stage, ir->nstages);
        memset(defined, 0, sizeof defined);
        memset(imported, 0, sizeof imported);
        for (int i = 0; i < v->blk->nimports; i++)
            if (v->blk->imports[i] >= 0 && v->blk->imports[i] < ir->nbufs)
                imported[v->blk->imports[i]] = true;
        for (v->opi = 0; v->opi < v->blk->nops; v->opi++)
            check_op(v, &v->blk->ops[v->opi], defined, imported);
    }
    if (v->ok)
        check_links(v);
    check_names(v);
    return v->ok;
}
