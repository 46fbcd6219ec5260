/* The stable text form of the IR (--dump-ir), tested with goldens.  An op prints as
 * `dst = name sources attributes`, its attributes those its op-table entry lists. */
#include "dnic.h"

static const char *kind_name(dnic_buf_kind k)
{
    static const char *const n[] = {"input", "labels", "param", "temp", "acc", "state"};
    return n[k];
}

static const char *phase_name(dnic_block_phase p)
{
    return p == DNIC_PHASE_STEP        ? "step"
           : p == DNIC_PHASE_SG_UPDATE ? "sg_update"
           : p == DNIC_PHASE_WARMUP    ? "warmup"
           : p == DNIC_PHASE_PROBE     ? "probe"
           : p == DNIC_PHASE_STREAM    ? "predict_state"
                                       : "predict";
}

static void print_list(const dnic_ir *ir, const char *what, const int *l, int n, FILE *out)
{
    if (n == 0)
        return;
    fprintf(out, "  %s", what);
    for (int i = 0; i < n; i++)
        fprintf(out, "%s %s", i ? "," : "", ir->bufs[l[i]].name);
    fputc('\n', out);
}

static void print_op(const dnic_ir *ir, const dnic_ir_op *o, FILE *out)
{
    const dnic_op_info *info = &dnic_op_table[o->op];
    static const char *const sym[] = {"=", "-=", "+=", "<-"};
    const char *s = info->dst == DNIC_DST_ACC && !o->accumulate ? "=" : o->accumulate ? "+=" : sym[info->dst];
    fprintf(out, "  %s %s %s", ir->bufs[o->dst].name, s, info->name);
    for (int i = 0, k = 0; i < DNIC_MAX_SRC; i++)
        if (o->src[i] >= 0)
            fprintf(out, "%s %s", k++ ? "," : "", ir->bufs[o->src[i]].name);
    if ((info->attrs & DNIC_ATTR_ACT) && !(o->op == DNIC_OP_SLICE && o->act == DNIC_ACT_LINEAR))
        fprintf(out, " act=%s", dnic_act_name(o->act)); /* a slice's only when it has one */
    if (info->attrs & DNIC_ATTR_OFF)
        fprintf(out, " off=%d", o->off);
    if (info->attrs & DNIC_ATTR_EPS)
        fprintf(out, " eps=%.17g", o->eps);
    if (info->attrs & DNIC_ATTR_MOMENTUM)
        fprintf(out, " momentum=%.17g scale=%.17g", o->momentum, o->scale);
    if (info->attrs & DNIC_ATTR_LAMBDA)
        fprintf(out, " lambda=%.17g", o->scale);
    if (info->attrs & DNIC_ATTR_CLIP) {
        fprintf(out, " scale=%.17g", o->scale);
        if (o->clip > 0)
            fprintf(out, " clip=%.17g", o->clip);
    }
    if (o->scratch >= 0)
        fprintf(out, " scratch=%s%s", ir->bufs[o->scratch].name, o->scratch_ready ? " (ready)" : "");
    if (info->attrs & DNIC_ATTR_LOSS)
        fprintf(out, " loss=%s", o->act == DNIC_ACT_LINEAR ? "squared" : o->act == DNIC_ACT_SOFTMAX ? "softmax_ce" : "sigmoid_ce");
    if (info->attrs & DNIC_ATTR_LR) {
        fprintf(out, " lr=%.17g", o->lr);
        if (o->grad_div > 0)
            fprintf(out, " grad=mean(/%d)", o->grad_div);
        if (o->opt.kind == DNIC_OPT_MOMENTUM)
            fprintf(out, " momentum=%.17g velocity=%s", o->opt.momentum, ir->bufs[o->state[0]].name);
        else if (o->opt.kind == DNIC_OPT_ADAM)
            fprintf(out, " adam(beta1=%.17g, beta2=%.17g, eps=%.17g)", o->opt.beta1, o->opt.beta2, o->opt.eps);
    }
    if (o->hold >= 0)
        fprintf(out, " unless %s", ir->bufs[o->hold].name);
    fputc('\n', out);
}

void dnic_ir_print(const dnic_ir *ir, FILE *out)
{
    fprintf(out, "ir %s dtype=%s batch=%d stages=%d", ir->model->name, ir->dtype == DNIC_F64 ? "float64" : "float32",
            ir->batch, ir->nstages);
    if (ir->replicas > 1) /* batch is one replica's part */
        fprintf(out, " replicas=%d", ir->replicas);
    fputc('\n', out);
    for (int i = 0; i < ir->nbufs; i++) {
        const dnic_buffer_desc *b = &ir->bufs[i];
        fprintf(out, "  buffer %-20s %-6s [%d,%d]", b->name, kind_name(b->kind), b->rows, b->cols);
        if (b->kind == DNIC_BUF_PARAM) {
            if (b->draw == DNIC_DRAW_NONE && b->shift == 0)
                fprintf(out, " init zeros");
            else if (b->draw == DNIC_DRAW_NONE)
                fprintf(out, " init %.17g", b->shift);
            else
                fprintf(out, " init %s*%.17g%+.17g", b->draw == DNIC_DRAW_RANDN ? "randn" : "rand", b->scale, b->shift);
            fprintf(out, " order %d", b->init_order);
        }
        fputc('\n', out);
    }
    for (int bi = 0; bi < ir->nblocks; bi++) {
        const dnic_ir_block *blk = &ir->blocks[bi];
        fprintf(out, "block %s stage=%d phase=%s", blk->name, blk->stage, phase_name(blk->phase));
        for (int i = 0; i < blk->nwaits; i++)
            fprintf(out, "%s%d", i ? "," : " waits=", blk->waits[i]);
        /* what true gradients past SG modules (target = true or mix) cost in it */
        int ntrue = 0;
        double ftrue = 0;
        for (int i = 0; i < blk->nops; i++)
            if (blk->ops[i].truegrad && DNIC_PHASE_TRAINS(blk->phase)) {
                ntrue++;
                ftrue += dnic_op_table[blk->ops[i].op].flops(ir, &blk->ops[i]);
            }
        if (ntrue)
            fprintf(out, " true_gradient=%d ops,%.3g flops", ntrue, ftrue);
        fputc('\n', out);
        print_list(ir, "import", blk->imports, blk->nimports, out);
        for (int i = 0; i < blk->nops; i++)
            print_op(ir, &blk->ops[i], out);
        print_list(ir, "export", blk->exports, blk->nexports, out);
    }
}
