/* --check's model summary: the `FILE: ok: ...` line, then a table like Keras's model.summary()
 * (per layer and SG module: kind, output width, parameters, flops per step, stage) and the
 * totals; a DNI model also gets the flops per step of the same model trained by backprop. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "layers.h"

/* The row an IR buffer belongs to, by its name ("h1.weight" -> layer h1, "h1.sg.pred" -> h1's
 * SG module, "h.state.h2.sg.pred" -> the module at h's truncation boundaries, "loss.error" ->
 * the loss): 3i for layer i, 3i+1 for its SG module, 3i+2 for its boundaries' module or its
 * synthetic input's (a dense layer has no boundaries, an rnn no synthetic input), 3n for
 * the loss, 3n+1 for anything else.  The longest layer name that prefixes it wins. */
static int row_of(const dnic_model *m, const char *name)
{
    int n = m->nlayers, best = -1;
    size_t blen = 0;
    for (int i = 0; i < n; i++) {
        size_t len = strlen(m->layers[i].name);
        if (len > blen && !strncmp(name, m->layers[i].name, len) && name[len] == '.') {
            best = i;
            blen = len;
        }
    }
    if (best >= 0)
        return 3 * best + (!strncmp(name + blen, ".sg.", 4)                                            ? 1
                           : !strncmp(name + blen, ".state.", 7) || !strncmp(name + blen, ".input.", 7) ? 2
                                                                                                        : 0);
    return !strncmp(name, "loss.", 5) ? 3 * n : 3 * n + 1;
}

/* The row an op's cost goes to: that of the first parameter it reads or writes (a layer's
 * backward message reads its weights), else that of the buffer it writes. */
static int op_row(const dnic_ir *ir, const dnic_ir_op *o)
{
    if (ir->bufs[o->dst].kind == DNIC_BUF_PARAM)
        return row_of(ir->model, ir->bufs[o->dst].name);
    for (int s = 0; s < o->nsrc; s++)
        if (o->src[s] >= 0 && ir->bufs[o->src[s]].kind == DNIC_BUF_PARAM)
            return row_of(ir->model, ir->bufs[o->src[s]].name);
    return row_of(ir->model, ir->bufs[o->dst].name);
}

/* Flops per training step (not the inference blocks), per row into flops[] when not NULL. */
static double step_flops(const dnic_ir *ir, double *flops)
{
    double total = 0;
    for (int b = 0; b < ir->nblocks; b++) {
        const dnic_ir_block *blk = &ir->blocks[b];
        if (!DNIC_PHASE_TRAINS(blk->phase))
            continue;
        for (int i = 0; i < blk->nops; i++) {
            double f = dnic_op_table[blk->ops[i].op].flops(ir, &blk->ops[i]);
            total += f;
            if (flops)
                flops[op_row(ir, &blk->ops[i])] += f;
        }
    }
    return total;
}

static const char *const LOSS_NAMES[] = {"squared_error", "softmax_cross_entropy", "sigmoid_cross_entropy"};

void cli_print_model_summary(dnic_arena *a, const char *path, const dnic_model *m, const dnic_ir *ir)
{
    bool dni = m->train.mode == DNIC_MODE_DNI && m->nsgs > 0;
    int nsg = dni ? m->nsgs : 0, n = m->nlayers, nrows = 3 * n + 2;
    printf("%s: ok: model %s, %d layer%s, %d SG module%s, %d stage%s, %s\n", path, m->name, n, n == 1 ? "" : "s", nsg,
           nsg == 1 ? "" : "s", ir->nstages, ir->nstages == 1 ? "" : "s", nsg ? "dni" : "backprop");
    double *flops = calloc((size_t)nrows, sizeof *flops);
    long long *params = calloc((size_t)nrows, sizeof *params);
    if (!flops || !params) {
        free(flops);
        free(params);
        return;
    }
    double total = step_flops(ir, flops);
    long long nparams = 0;
    for (int i = 0; i < ir->nbufs; i++)
        if (ir->bufs[i].kind == DNIC_BUF_PARAM) {
            long long k = (long long)ir->bufs[i].rows * ir->bufs[i].cols;
            params[row_of(m, ir->bufs[i].name)] += k;
            nparams += k;
        }
    printf("  %-16s %-24s %7s %11s %11s %6s\n", "layer", "kind", "output", "parameters", "flops/step", "stage");
    for (int i = 0; i < n; i++) {
        const dnic_layer *l = &m->layers[i];
        int stage = dni ? l->stage : 0;
        printf("  %-16s %-24s %7d %11lld %11.3g %6d\n", l->name, l->kind->name, l->out, params[3 * i], flops[3 * i],
               stage);
        for (int k = 1; dni && k <= 2; k++) {
            int s = k == 1 ? l->sg : l->state_sg >= 0 ? l->state_sg : l->input_sg;
            if (s < 0)
                continue;
            const dnic_sg *sg = &m->sgs[s];
            char name[64], kind[64];
            snprintf(name, sizeof name, "%s.sg", sg->name);
            int at = snprintf(kind, sizeof kind, "sg %s(", sg->nhidden ? "mlp" : "linear");
            for (int p = 0; p < sg->nparts && at < (int)sizeof kind; p++)
                at += snprintf(kind + at, sizeof kind - (size_t)at, "%s%s", p ? "+" : "", dnic_sg_part_name(sg->parts[p]));
            if (at < (int)sizeof kind)
                snprintf(kind + at, sizeof kind - (size_t)at, ")");
            int width = sg->input ? m->layers[l->src[0]].out : k == 2 ? l->kind->state_width(l) : l->out;
            printf("  %-16s %-24s %7d %11lld %11.3g %6d\n", name, kind, width, params[3 * i + k], flops[3 * i + k],
                   stage);
        }
    }
    printf("  %-16s %-24s %7d %11lld %11.3g %6d\n", "loss", LOSS_NAMES[m->loss], m->layers[m->out].out, params[3 * n],
           flops[3 * n], dni ? m->layers[m->out].stage : 0);
    if (flops[3 * n + 1] > 0 || params[3 * n + 1] > 0)
        printf("  %-16s %-24s %7s %11lld %11.3g %6s\n", "other", "", "", params[3 * n + 1], flops[3 * n + 1], "");
    printf("  total: %lld parameters, %.3g flops per step (%s, batch %d)\n", nparams, total, dni ? "dni" : "backprop",
           ir->batch);
    double copies, truecost = dni ? dnic_ir_true_cost(ir, -1, &copies) : 0;
    if (truecost > 0) { /* target = true or mix past a later SG module: counted in its row above */
        printf("  true gradients: %.3g flops per step (", truecost);
        for (int s = 0, k = 0; s < m->nsgs; s++) {
            double f = dnic_ir_true_cost(ir, s, NULL);
            if (f > 0)
                printf("%s%s.sg %.3g", k++ ? ", " : "", m->sgs[s].name, f);
        }
        printf(": the later layers' backward pass, updating nothing), %.3g weights copied for it per step\n", copies);
    }
    if (dni) {
        /* the same model trained by backprop: its IR built once more, stages and SG modules unused */
        dnic_model bm = *m;
        bm.train.mode = DNIC_MODE_BACKPROP;
        bm.nstages = 1;
        bm.layers = dnic_alloc(a, (size_t)n * sizeof *bm.layers);
        memcpy(bm.layers, m->layers, (size_t)n * sizeof *bm.layers);
        for (int i = 0; i < n; i++)
            bm.layers[i].stage = 0;
        dnic_ir *bir = dnic_ir_build(a, &bm);
        if (bir) {
            double bp = step_flops(bir, NULL);
            long long bparams = 0;
            for (int i = 0; i < bir->nbufs; i++)
                if (bir->bufs[i].kind == DNIC_BUF_PARAM)
                    bparams += (long long)bir->bufs[i].rows * bir->bufs[i].cols;
            printf("  backprop: %lld parameters, %.3g flops per step (dni does %.2fx as many)\n", bparams, bp, total / bp);
        }
    }
    if (m->data.curriculum > 0) /* the shapes above are the first length's */
        printf("  curriculum: length %d, then up to %d, 1 longer each time the test set has under %g wrong bits per "
               "sequence (the flops above are length %d's)\n", m->data.length, m->data.max_length, m->data.curriculum,
               m->data.length);
    free(flops);
    free(params);
}
