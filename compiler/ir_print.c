/* The stable text form of the IR (--dump-ir), tested with goldens. */
#include "dnic.h"

static const char *kind_name(dnic_buf_kind k)
{
    static const char *const n[] = {"input", "labels", "param", "temp", "acc", "state"};
    return n[k];
}

void dnic_ir_print(const dnic_ir *ir, FILE *out)
{
    fprintf(out, "ir %s dtype=%s batch=%d stages=%d\n", ir->model->name, ir->dtype == DNIC_F64 ? "float64" : "float32",
            ir->batch, ir->nstages);
    for (int i = 0; i < ir->nbufs; i++) {
        const dnic_buffer_desc *b = &ir->bufs[i];
        fprintf(out, "  buffer %-20s %-6s [%d,%d]", b->name, kind_name(b->kind), b->rows, b->cols);
        if (b->kind == DNIC_BUF_PARAM) {
            if (b->draw == DNIC_DRAW_NONE)
                fprintf(out, " init zeros");
            else
                fprintf(out, " init %s*%.17g%+.17g", b->draw == DNIC_DRAW_RANDN ? "randn" : "rand", b->scale, b->shift);
            fprintf(out, " order %d", b->init_order);
        }
        fputc('\n', out);
    }
    for (int bi = 0; bi < ir->nblocks; bi++) {
        const dnic_ir_block *blk = &ir->blocks[bi];
        fprintf(out, "block %s stage=%d phase=%s\n", blk->name, blk->stage,
                blk->phase == DNIC_PHASE_STEP ? "step" : blk->phase == DNIC_PHASE_SG_UPDATE ? "sg_update" : "predict");
        for (int i = 0; i < blk->nops; i++) {
            const dnic_ir_op *o = &blk->ops[i];
            fprintf(out, "  %s %s", ir->bufs[o->dst].name,
                    o->op == DNIC_OP_SGD_W || o->op == DNIC_OP_SGD_B ? "-=" : o->accumulate ? "+=" : "=");
            fprintf(out, " %s", dnic_op_name(o->op));
            for (int s = 0; s < 4; s++)
                if (o->src[s] >= 0)
                    fprintf(out, "%s %s", s ? "," : "", ir->bufs[o->src[s]].name);
            if (o->op == DNIC_OP_DENSE || o->op == DNIC_OP_ACT_GRAD)
                fprintf(out, " act=%s", dnic_act_name(o->act));
            if (o->scratch >= 0)
                fprintf(out, " scratch=%s", ir->bufs[o->scratch].name);
            if (o->op == DNIC_OP_LOSS_SUM)
                fprintf(out, " loss=%s", o->act == DNIC_ACT_LINEAR ? "squared" : o->act == DNIC_ACT_SOFTMAX ? "softmax_ce" : "sigmoid_ce");
            if (o->op == DNIC_OP_SGD_W || o->op == DNIC_OP_SGD_B) {
                fprintf(out, " lr=%.17g", o->lr);
                if (o->opt.kind == DNIC_OPT_MOMENTUM)
                    fprintf(out, " momentum=%.17g velocity=%s", o->opt.momentum, ir->bufs[o->state[0]].name);
                else if (o->opt.kind == DNIC_OPT_ADAM)
                    fprintf(out, " adam(beta1=%.17g, beta2=%.17g, eps=%.17g)", o->opt.beta1, o->opt.beta2, o->opt.eps);
            }
            fputc('\n', out);
        }
    }
}
