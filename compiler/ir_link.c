/* Stage boundaries, by def/use: the temporaries each training block imports (reads before it
 * writes them, so another block wrote them in the same step) and exports (writes for another
 * block to read), and the stages whose step it must wait for.  The scheduler waits on exactly
 * these, and a distributed run would send exactly these. */
#include <string.h>

#include "dnic.h"

/* Appends id to the set l[0..*n) (kept in buffer order) unless it is there. */
static void add_sorted(int *l, int *n, int id)
{
    int i = 0;
    while (i < *n && l[i] < id)
        i++;
    if (i < *n && l[i] == id)
        return;
    memmove(l + i + 1, l + i, (size_t)(*n - i) * sizeof *l);
    l[i] = id;
    (*n)++;
}

static int *copy(dnic_arena *a, const int *l, int n)
{
    int *c = dnic_alloc(a, (size_t)(n + 1) * sizeof *c);
    memcpy(c, l, (size_t)n * sizeof *c);
    return c;
}

void dnic_ir_link(dnic_arena *a, dnic_ir *ir)
{
    int nb = ir->nbufs, n = ir->nblocks;
    int *writer = dnic_alloc(a, (size_t)(nb + 1) * sizeof *writer); /* the training block writing each temp */
    bool *written = dnic_alloc(a, (size_t)(nb + 1) * sizeof *written);
    int *imp = dnic_alloc(a, (size_t)(nb + 1) * sizeof *imp);
    for (int i = 0; i < nb; i++)
        writer[i] = -1;
    for (int b = 0; b < n; b++) {
        const dnic_ir_block *blk = &ir->blocks[b];
        if (!DNIC_PHASE_TRAINS(blk->phase))
            continue;
        for (int k = 0; k < blk->nops; k++) {
            int r[12], w[12], nr, nw;
            dnic_op_uses(&blk->ops[k], r, &nr, w, &nw);
            for (int j = 0; j < nw; j++)
                if (ir->bufs[w[j]].kind == DNIC_BUF_TEMP) {
                    DNIC_ASSERT(writer[w[j]] < 0 || writer[w[j]] == b); /* one block writes a temporary */
                    writer[w[j]] = b;
                }
        }
    }
    int *nexp = dnic_alloc(a, (size_t)(n + 1) * sizeof *nexp);
    int **exp = dnic_alloc(a, (size_t)(n + 1) * sizeof *exp);
    for (int b = 0; b < n; b++)
        exp[b] = dnic_alloc(a, (size_t)(nb + 1) * sizeof **exp);
    for (int b = 0; b < n; b++) {
        dnic_ir_block *blk = &ir->blocks[b];
        if (!DNIC_PHASE_TRAINS(blk->phase))
            continue;
        memset(written, 0, (size_t)nb * sizeof *written);
        int nimp = 0, waits[64], nwaits = 0;
        for (int k = 0; k < blk->nops; k++) {
            int r[12], w[12], nr, nw;
            dnic_op_uses(&blk->ops[k], r, &nr, w, &nw);
            for (int j = 0; j < nr; j++) {
                int id = r[j];
                if (ir->bufs[id].kind != DNIC_BUF_TEMP || written[id] || writer[id] == b || writer[id] < 0)
                    continue;
                add_sorted(imp, &nimp, id);
                add_sorted(exp[writer[id]], &nexp[writer[id]], id);
                int st = ir->blocks[writer[id]].stage;
                if (st != blk->stage && nwaits < 64)
                    add_sorted(waits, &nwaits, st);
            }
            for (int j = 0; j < nw; j++)
                written[w[j]] = true;
        }
        blk->imports = copy(a, imp, nimp);
        blk->nimports = nimp;
        blk->waits = copy(a, waits, nwaits);
        blk->nwaits = nwaits;
    }
    for (int b = 0; b < n; b++) {
        ir->blocks[b].exports = copy(a, exp[b], nexp[b]);
        ir->blocks[b].nexports = nexp[b];
    }
}
