/* Data parallelism (--replicas R): the program one of R replicas runs.  Each replica trains on
 * rows r*B/R .. (r+1)*B/R - 1 of every batch (runtime/sched.c), so the model is built at batch
 * B/R; then every update that fuses its gradient's product into the parameter (SGD_W, SGD_B)
 * is split into the gradient (GRAD_W into a buffer of its own), its sum over the replicas
 * (REDUCE, a call of dnic_replica_sum) and the update rule (UPDATE), in the same place of the
 * block, so that a message sent after the updates (train.backward_message) still reads the
 * updated weights.  A gradient other ops computed (recurrent layers) is summed before its
 * first update.  Divisors that make a batch sum a mean (the bias; train.grad = mean) are the
 * whole batch's, B, not B/R: every replica then applies the same update to the same weights.
 *
 * docs/scheduler.md says what this computes against one process: the same sums, added in
 * another order. */
#include <stdio.h>
#include <string.h>

#include "dnic.h"

typedef struct rewriter {
    dnic_arena *a;
    dnic_ir *ir;
    dnic_ir_op *ops;
    int n, cap;
    bool *summed;    /* per buffer: summed since an op of this block last wrote it */
    int *grads;      /* per parameter: the gradient buffers made for it so far */
} rewriter;

static dnic_ir_op *put(rewriter *w, const dnic_ir_op *proto)
{
    if (w->n == w->cap) {
        int cap = w->cap ? 2 * w->cap : 16;
        dnic_ir_op *n = dnic_alloc(w->a, (size_t)cap * sizeof *n);
        if (w->n)
            memcpy(n, w->ops, (size_t)w->n * sizeof *n);
        w->ops = n;
        w->cap = cap;
    }
    dnic_ir_op *o = &w->ops[w->n++];
    *o = *proto;
    return o;
}

/* An op of kind op writing dst, with no sources, scratch or state yet. */
static dnic_ir_op *put_new(rewriter *w, dnic_op op, int dst)
{
    dnic_ir_op o;
    memset(&o, 0, sizeof o);
    o.op = op;
    o.dst = dst;
    for (int i = 0; i < DNIC_MAX_SRC; i++)
        o.src[i] = -1;
    o.nsrc = dnic_op_nsrc(op);
    o.act = DNIC_ACT_LINEAR;
    o.scratch = -1;
    o.hold = -1;
    o.state[0] = o.state[1] = o.state[2] = -1;
    return put(w, &o);
}

static void reduce(rewriter *w, int g, bool truegrad)
{
    if (w->summed[g])
        return;
    dnic_ir_op *o = put_new(w, DNIC_OP_REDUCE, g);
    o->accumulate = true; /* reads what it writes */
    o->truegrad = truegrad;
    w->summed[g] = true;
}

/* update (SGD_W, SGD_B or UPDATE) of its parameter from gradient g, summed first. */
static void update_from(rewriter *w, const dnic_ir_op *u, int g, int grad_div)
{
    reduce(w, g, u->truegrad);
    dnic_ir_op *o = put_new(w, DNIC_OP_UPDATE, u->dst);
    o->truegrad = u->truegrad;
    o->src[0] = g;
    o->off = u->op == DNIC_OP_UPDATE ? u->off : 0;
    o->lr = u->lr;
    o->opt = u->opt;
    memcpy(o->state, u->state, sizeof o->state);
    o->grad_div = grad_div;
    o->hold = u->hold; /* train.update_prob: every replica holds the same steps (the gradient is summed anyway) */
}

static void rewrite_block(rewriter *w, dnic_ir_block *blk)
{
    dnic_ir *ir = w->ir;
    int R = ir->replicas;
    w->ops = NULL;
    w->n = w->cap = 0;
    /* every new buffer is one op's gradient: at most nops of them */
    w->summed = dnic_alloc(w->a, (size_t)(ir->nbufs + blk->nops) * sizeof *w->summed);
    for (int i = 0; i < blk->nops; i++) {
        const dnic_ir_op *o = &blk->ops[i];
        if (o->op == DNIC_OP_SGD_W || o->op == DNIC_OP_SGD_B) {
            const dnic_buffer_desc *p = &ir->bufs[o->dst];
            /* a parameter updated several times (a module of a recurrent layer's chunks) gets a
             * gradient buffer for each update: .replica_grad, .replica_grad.1, ... */
            int nth = w->grads[o->dst]++;
            const char *name = nth ? dnic_sprintf(w->a, "%s.replica_grad.%d", p->name, nth)
                                   : dnic_sprintf(w->a, "%s.replica_grad", p->name);
            int g = dnic_ir_add_buf(w->a, ir, name, DNIC_BUF_TEMP, p->rows, p->cols);
            dnic_ir_op *gw = put_new(w, DNIC_OP_GRAD_W, g);
            gw->truegrad = o->truegrad;
            bool bias = o->op == DNIC_OP_SGD_B;
            gw->src[0] = bias ? -1 : o->src[0];
            gw->src[1] = bias ? o->src[0] : o->src[1];
            /* SGD_B takes the batch mean; SGD_W the sum, or the mean with train.grad = mean */
            update_from(w, o, g, bias ? ir->batch * R : o->grad_div * R);
        } else if (o->op == DNIC_OP_UPDATE) {
            update_from(w, o, o->src[0], o->grad_div * R);
        } else {
            put(w, o);
            int rd[12], wr[12], nr, nw; /* a gradient written again (the next chunk's) is summed again */
            dnic_op_uses(o, rd, &nr, wr, &nw);
            for (int j = 0; j < nw; j++)
                w->summed[wr[j]] = false;
        }
    }
    blk->ops = w->ops;
    blk->nops = w->n;
    blk->cap = w->cap;
}

dnic_ir *dnic_ir_build_replica(dnic_arena *a, const dnic_model *m, int R, char *why, size_t n)
{
    if (m->train.batch % R != 0) {
        snprintf(why, n, "train.batch = %d does not split into %d equal parts: make the batch a multiple of %d, or "
                 "use another number of replicas", m->train.batch, R, R);
        return NULL;
    }
    dnic_model *part = dnic_alloc(a, sizeof *part);
    *part = *m;
    part->train.batch = m->train.batch / R;
    dnic_ir *ir = dnic_ir_build(a, part);
    for (int b = 0; b < ir->nblocks; b++)
        for (int i = 0; i < ir->blocks[b].nops; i++)
            if (ir->blocks[b].ops[i].op == DNIC_OP_BN_MEAN) {
                const char *name = ir->bufs[ir->blocks[b].ops[i].dst].name;
                const char *dot = strchr(name, '.');
                snprintf(why, n, "layer '%.*s' normalises over the batch (norm = batch): each replica would see only "
                         "its part of the batch; train it without --replicas", dot ? (int)(dot - name) : (int)strlen(name),
                         name);
                return NULL;
            }
    ir->replicas = R;
    rewriter w = {.a = a, .ir = ir};
    w.grads = dnic_alloc(a, (size_t)ir->nbufs * sizeof *w.grads); /* parameters come first: no new one */
    for (int b = 0; b < ir->nblocks; b++)
        if (ir->blocks[b].phase != DNIC_PHASE_PREDICT)
            rewrite_block(&w, &ir->blocks[b]);
    dnic_ir_link(a, ir);
    return ir;
}
