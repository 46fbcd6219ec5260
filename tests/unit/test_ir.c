/* IR builder and verifier tests: block order, draw order, message order and the verifier's
 * rejection of broken programs. */
#include <criterion/criterion.h>

#include "testutil.h"

#define SEED_LIKE TU_MODEL_HEAD \
    "layer h1 = dense(input, 6) { activation = sigmoid init = randn * 2 - 1 bias_init = randn * 2 - 1 }\n" \
    "layer h2 = dense(h1, 5) { activation = sigmoid }\n" \
    "layer out = dense(h2, 4) { activation = sigmoid }\n" \
    "sg h1 { init = randn * 0 }\nsg h2 { }\n"

static int find_buf(const dnic_ir *ir, const char *name)
{
    for (int i = 0; i < ir->nbufs; i++)
        if (!strcmp(ir->bufs[i].name, name))
            return i;
    return -1;
}

/* Index of the first op in block `b` writing buffer `name` with op `op`, or -1. */
static int op_at(const dnic_ir *ir, int b, dnic_op op, const char *name)
{
    int id = find_buf(ir, name);
    for (int i = 0; i < ir->blocks[b].nops; i++)
        if (ir->blocks[b].ops[i].op == op && ir->blocks[b].ops[i].dst == id)
            return i;
    return -1;
}

Test(ir, dni_blocks_follow_the_seed_order)
{
    tu t;
    tu_run(&t, SEED_LIKE TU_MODEL_TAIL, true);
    cr_assert_not_null(t.ir, "%s", tu_errors(&t));
    cr_assert(dnic_ir_verify(t.ir, stderr));
    const char *names[] = {"h1.step", "h2.step", "out.step", "h2.sg_update", "h1.sg_update", "predict"};
    int stages[] = {0, 1, 2, 1, 0, 0};
    cr_assert_eq(t.ir->nblocks, 6);
    cr_assert_eq(t.ir->nstages, 3);
    cr_assert_eq(t.ir->blocks[5].phase, DNIC_PHASE_PREDICT);
    cr_assert_eq(t.ir->blocks[5].nops, 3, "predict is the forward pass alone");
    for (int b = 0; b < 6; b++) {
        cr_assert_str_eq(t.ir->blocks[b].name, names[b]);
        cr_assert_eq(t.ir->blocks[b].stage, stages[b]);
    }
    /* the first stage sends no message; the second sends h1.grad, the SG target of h1 */
    cr_assert_eq(op_at(t.ir, 0, DNIC_OP_MATMUL_NT, "h1.grad"), -1);
    cr_assert_neq(op_at(t.ir, 1, DNIC_OP_MATMUL_NT, "h1.grad"), -1);
    cr_assert_neq(op_at(t.ir, 2, DNIC_OP_MATMUL_NT, "h2.grad"), -1);
    tu_free(&t);
}

Test(ir, draw_order_is_construction_order)
{
    tu t;
    tu_run(&t, SEED_LIKE TU_MODEL_TAIL, true);
    cr_assert_not_null(t.ir, "%s", tu_errors(&t));
    const char *order[] = {"h1.weight", "h1.bias", "h1.sg.weight", "h1.sg.bias", "h2.weight",
                           "h2.bias", "h2.sg.weight", "h2.sg.bias", "out.weight", "out.bias"};
    for (int i = 0; i < 10; i++) {
        int b = find_buf(t.ir, order[i]);
        cr_assert_geq(b, 0, "%s", order[i]);
        cr_assert_eq(t.ir->bufs[b].init_order, i, "%s", order[i]);
    }
    int w = find_buf(t.ir, "h1.weight");
    cr_assert_eq(t.ir->bufs[w].draw, DNIC_DRAW_RANDN);
    cr_assert_float_eq(t.ir->bufs[w].scale, 2, 0);
    cr_assert_float_eq(t.ir->bufs[w].shift, -1, 0);
    int sgw = find_buf(t.ir, "h1.sg.weight");
    cr_assert_eq(t.ir->bufs[sgw].draw, DNIC_DRAW_RANDN, "randn * 0 still draws");
    cr_assert_eq(t.ir->bufs[find_buf(t.ir, "h2.sg.weight")].draw, DNIC_DRAW_NONE, "zeros draws nothing");
    /* Xavier uniform on h2 (6 -> 5): rand * 2L - L with L = sqrt(6 / 11) */
    int h2 = find_buf(t.ir, "h2.weight");
    cr_assert_eq(t.ir->bufs[h2].draw, DNIC_DRAW_RAND);
    cr_assert_float_eq(t.ir->bufs[h2].shift, -0.7385489458759964, 1e-15);
    tu_free(&t);
}

Test(ir, message_order_before_and_after_update)
{
    for (int after = 0; after < 2; after++) {
        tu t;
        tu_run(&t, SEED_LIKE TU_MODEL_TAIL, false);
        cr_assert_not_null(t.ast);
        if (after)
            cr_assert(dnic_apply_override(t.a, &t.d, t.ast, "train.backward_message=after_update"));
        t.m = dnic_check(t.a, &t.d, t.ast, DNIC_CHECK_OPEN_DATA);
        cr_assert_not_null(t.m, "%s", tu_errors(&t));
        t.ir = dnic_ir_build(t.a, t.m);
        cr_assert(dnic_ir_verify(t.ir, stderr));
        int msg = op_at(t.ir, 1, DNIC_OP_MATMUL_NT, "h1.grad");
        int upd = op_at(t.ir, 1, DNIC_OP_SGD_W, "h2.weight");
        cr_assert(after ? msg > upd : msg < upd, "after=%d msg=%d upd=%d", after, msg, upd);
        tu_free(&t);
    }
}

Test(ir, backprop_is_one_stage)
{
    tu t;
    tu_run(&t, SEED_LIKE "loss squared_error(out, labels)\n"
                         "train { mode = backprop batch = 5 lr = 0.1 epochs = 1 }\n", true);
    cr_assert_not_null(t.ir, "%s", tu_errors(&t));
    cr_assert(dnic_ir_verify(t.ir, stderr));
    cr_assert_eq(t.ir->nblocks, 2, "one training block and predict");
    cr_assert_eq(t.ir->nstages, 1);
    cr_assert_eq(t.ir->sg_acc_first, -1);
    cr_assert_eq(find_buf(t.ir, "h1.sg.weight"), -1, "backprop ignores SG modules");
    /* every layer updates; only the first sends no message */
    cr_assert_neq(op_at(t.ir, 0, DNIC_OP_SGD_W, "h1.weight"), -1);
    cr_assert_neq(op_at(t.ir, 0, DNIC_OP_MATMUL_NT, "h1.grad"), -1);
    tu_free(&t);
}

Test(ir, mlp_sg_module_and_concat)
{
    tu t;
    tu_run(&t, SEED_LIKE "sg out { }\n" TU_MODEL_TAIL, true);
    cr_assert_null(t.m);
    tu_free(&t);
    tu_run(&t, TU_MODEL_HEAD "layer h1 = dense(input, 6)\nlayer out = dense(h1, 4)\n"
                             "sg h1 { input = output + labels form = mlp hidden = [7, 3] activation = tanh }\n"
               TU_MODEL_TAIL, true);
    cr_assert_not_null(t.ir, "%s", tu_errors(&t));
    cr_assert(dnic_ir_verify(t.ir, stderr));
    int in = find_buf(t.ir, "h1.sg.in");
    cr_assert_geq(in, 0);
    cr_assert_eq(t.ir->bufs[in].cols, 10);
    cr_assert_eq(t.ir->bufs[find_buf(t.ir, "h1.sg.0.weight")].rows, 10);
    cr_assert_eq(t.ir->bufs[find_buf(t.ir, "h1.sg.1.weight")].cols, 3);
    cr_assert_eq(t.ir->bufs[find_buf(t.ir, "h1.sg.2.weight")].cols, 6);
    tu_free(&t);
}

/* The verifier must reject what the builder never makes. */
Test(ir, verifier_rejects_broken_programs)
{
    tu t;
    tu_run(&t, SEED_LIKE TU_MODEL_TAIL, true);
    cr_assert_not_null(t.ir);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    dnic_ir_op *first = &t.ir->blocks[0].ops[0]; /* h1.out = dense x, h1.weight, h1.bias */
    dnic_ir_op saved = *first;
    first->src[1] = find_buf(t.ir, "h2.weight"); /* [6,5]: wrong shape for x [5,8] */
    cr_assert(!dnic_ir_verify(t.ir, f));
    *first = saved;
    first->src[0] = find_buf(t.ir, "h2.out"); /* read before written */
    cr_assert(!dnic_ir_verify(t.ir, f));
    *first = saved;
    first->dst = find_buf(t.ir, "x"); /* writes the input */
    cr_assert(!dnic_ir_verify(t.ir, f));
    *first = saved;
    cr_assert(dnic_ir_verify(t.ir, f));
    fclose(f);
    cr_assert(strstr(buf, "h2.out is read before it is written"), "%s", buf);
    free(buf);
    tu_free(&t);
}

/* Stage boundaries: each training block imports what it reads from other blocks, waits for
 * the stages it imports from, and the verifier rejects a block whose lists are not so. */
Test(ir, blocks_import_export_and_wait)
{
    tu t;
    tu_run(&t, SEED_LIKE TU_MODEL_TAIL, true);
    cr_assert_not_null(t.ir, "%s", tu_errors(&t));
    dnic_ir *ir = t.ir;
    /* seed-like: stages h1 | h2 | out; h2's step reads h1.out, h1's SG update reads h1.grad */
    dnic_ir_block *h2 = &ir->blocks[1], *sgu = NULL;
    for (int b = 0; b < ir->nblocks; b++)
        if (!strcmp(ir->blocks[b].name, "h1.sg_update"))
            sgu = &ir->blocks[b];
    cr_assert_not_null(sgu);
    cr_assert_str_eq(h2->name, "h2.step");
    cr_assert_eq(h2->nimports, 1);
    cr_assert_eq(h2->imports[0], find_buf(ir, "h1.out"));
    cr_assert_eq(h2->nwaits, 1);
    cr_assert_eq(h2->waits[0], 0);
    bool exports_grad = false;
    for (int i = 0; i < h2->nexports; i++)
        exports_grad |= h2->exports[i] == find_buf(ir, "h1.grad");
    cr_assert(exports_grad, "h2.step sends h1's SG module its target");
    cr_assert_eq(sgu->nwaits, 1);
    cr_assert_eq(sgu->waits[0], 1, "h1's SG update waits for the stage that sends its target");

    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    h2->nwaits = 0; /* imports h1.out without waiting for stage 0 */
    cr_assert(!dnic_ir_verify(ir, f));
    h2->nwaits = 1;
    sgu->nwaits = 0; /* imports h1.grad without waiting for stage 1 */
    cr_assert(!dnic_ir_verify(ir, f));
    sgu->nwaits = 1;
    h2->nimports = 0; /* reads h1.out without importing it */
    cr_assert(!dnic_ir_verify(ir, f));
    h2->nimports = 1;
    cr_assert(dnic_ir_verify(ir, f));
    fclose(f);
    cr_assert(strstr(buf, "imports h1.out from stage 0 without waiting for it"), "%s", buf);
    cr_assert(strstr(buf, "imports h1.grad from stage 1 without waiting for it"), "%s", buf);
    cr_assert(strstr(buf, "h1.out is read before it is written"), "%s", buf);
    free(buf);
    tu_free(&t);
}

/* A layer read by several others gets the sum of their gradients in edge order: readers in
 * layer order, then their sources in order (docs/semantics.md, "Graphs"). */
Test(ir, gradients_from_several_readers_are_summed_in_edge_order)
{
    tu t;
    tu_run(&t, TU_MODEL_HEAD "layer h1 = dense(input, 6) { activation = tanh }\n"
                             "layer j = concat(h1, h1)\n"
                             "layer a = dense(h1, 12)\n"
                             "layer r = add(j, a)\n"
                             "layer out = dense(r, 4)\n"
                             "loss squared_error(out, labels)\n"
                             "train { mode = backprop batch = 5 lr = 0.1 epochs = 3 }\n", true);
    cr_assert_not_null(t.ir, "%s", tu_errors(&t));
    const dnic_ir *ir = t.ir;
    int s1 = find_buf(ir, "h1.grad.sum1"), g = find_buf(ir, "h1.grad");
    cr_assert(s1 >= 0 && g >= 0);
    const dnic_ir_block *blk = &ir->blocks[0];
    const dnic_ir_op *o1 = NULL, *o2 = NULL, *next = NULL;
    for (int i = 0; i < blk->nops; i++) {
        if (blk->ops[i].dst == s1)
            o1 = &blk->ops[i];
        if (blk->ops[i].dst == g) {
            o2 = &blk->ops[i];
            next = i + 1 < blk->nops ? &blk->ops[i + 1] : NULL;
        }
    }
    cr_assert(o1 && o2 && next);
    /* j (layer 1) reads h1 twice, then a (layer 2): (j.0 + j.1) + a.0 */
    cr_assert_eq(o1->op, DNIC_OP_ADD);
    cr_assert_eq(o1->src[0], find_buf(ir, "h1.grad.j.0"));
    cr_assert_eq(o1->src[1], find_buf(ir, "h1.grad.j.1"));
    cr_assert_eq(o2->op, DNIC_OP_ADD);
    cr_assert_eq(o2->src[0], s1);
    cr_assert_eq(o2->src[1], find_buf(ir, "h1.grad.a.0"));
    cr_assert_eq(next->op, DNIC_OP_ACT_GRAD, "h1's own backward pass starts from the sum");
    cr_assert_eq(next->src[0], g);
    tu_free(&t);
}

/* Recurrent layers: the messages of a chunk share one transposed copy of W_hh, made by the
 * first; the verifier refuses one that finds it ready after W_hh's update, or in a scratch
 * holding another weight; every chunk's update of a weight shares its optimiser state. */
Test(ir, recurrent_chunks_share_transposes_and_optimiser_state)
{
    tu t;
    tu_run(&t,
           TU_MODEL_HEAD "layer h = lstm(input, 5) { steps = 4  unroll = 2 }\n"
                         "layer out = dense(h, 4) { activation = sigmoid }\n"
                         "sg h.state { }\n"
                         "loss squared_error(out, labels)\n"
                         "train { batch = 5 lr = 0.1 epochs = 3 optimizer = adam }\n",
           true);
    cr_assert_not_null(t.ir);
    int whh = find_buf(t.ir, "h.weight_hh"), wt = find_buf(t.ir, "h.weight_hh.t");
    cr_assert(whh >= 0 && wt >= 0);
    int made = 0, ready = 0, updates = 0, state = -1, first_ready = -1, blk = 0;
    const dnic_ir_block *b = &t.ir->blocks[blk];
    for (int i = 0; i < b->nops; i++) {
        const dnic_ir_op *o = &b->ops[i];
        if (o->op == DNIC_OP_MATMUL_NT && o->src[1] == whh) {
            ready += o->scratch_ready;
            made += !o->scratch_ready;
            if (o->scratch_ready && first_ready < 0)
                first_ready = i;
        }
        if (o->op == DNIC_OP_UPDATE && o->dst == whh) {
            updates++;
            cr_assert(state < 0 || o->state[0] == state, "each chunk's update of W_hh has its own Adam state");
            state = o->state[0];
        }
    }
    /* 2 chunks of 2 steps: the first chunk's message within it and the boundary target; the
     * last chunk's message within it, each chunk making its copy once */
    cr_assert_eq(updates, 2);
    cr_assert_eq(made, 2, "%d messages made W_hh^T", made);
    cr_assert_eq(ready, 1, "%d messages reused it", ready);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cr_assert(dnic_ir_verify(t.ir, f));
    dnic_ir_op *o = &t.ir->blocks[blk].ops[first_ready];
    /* an update of W_hh just before the reusing message makes the copy stale */
    dnic_ir_op *prev = &t.ir->blocks[blk].ops[first_ready - 1], saved = *prev;
    prev->op = DNIC_OP_UPDATE;
    prev->dst = whh;
    prev->src[0] = find_buf(t.ir, "h.weight_hh.grad");
    prev->src[1] = prev->src[2] = -1;
    prev->lr = 0.1;
    prev->opt = o->opt;
    prev->opt.kind = DNIC_OPT_SGD;
    prev->state[0] = prev->state[1] = prev->state[2] = -1;
    prev->scratch = -1;
    cr_assert(!dnic_ir_verify(t.ir, f));
    *prev = saved;
    int wih = find_buf(t.ir, "h.weight_ih"); /* a message of W_ih cannot find W_hh^T ready */
    o->src[1] = wih;
    cr_assert(!dnic_ir_verify(t.ir, f));
    o->src[1] = whh;
    /* two buffers with one name */
    const char *name = t.ir->bufs[wt].name;
    t.ir->bufs[wt].name = t.ir->bufs[whh].name;
    cr_assert(!dnic_ir_verify(t.ir, f));
    t.ir->bufs[wt].name = name;
    cr_assert(dnic_ir_verify(t.ir, f));
    fclose(f);
    cr_assert(strstr(buf, "h.weight_hh was updated since its transposed copy was made"), "%s", buf);
    cr_assert(strstr(buf, "two buffers are called h.weight_hh"), "%s", buf);
    free(buf);
    tu_free(&t);
}
