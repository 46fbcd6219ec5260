/* Probes (--probe): at a report, the PROBE block computes each SG module's prediction, the
 * true gradient and the bootstrapped target at its layer on the probe batch, updating nothing;
 * this compares them (docs/semantics.md, "Probes"). */
#include <math.h>
#include <stdlib.h>

#include "dnic/program.h"

static double at(const void *v, dnic_dtype t, size_t i)
{
    return t == DNIC_F64 ? ((const double *)v)[i] : (double)((const float *)v)[i];
}

void dnic_probe(dnic_program *p, void **ptrs, const dnic_dataset *d, double *out)
{
    int probe = -1;
    for (int b = 0; b < p->nblocks; b++)
        if (p->blocks[b].phase == DNIC_PHASE_PROBE)
            probe = b;
    for (int i = 0; i < p->nsg * DNIC_PROBE_COUNT; i++)
        out[i] = (double)NAN;
    if (probe < 0 || !p->probe || d->n < p->batch)
        return;
    /* the probe batch: the first rows, whatever the shuffle, read as the steps read theirs (a
     * dataset of bytes is scaled row by row) */
    void *xb = malloc((size_t)p->batch * (size_t)d->inputs * dnic_dtype_size(p->dtype));
    if (!xb)
        return;
    dnic_dataset_rows(d, xb, NULL, 0, p->batch);
    void *x = ptrs[p->x], *y = ptrs[p->y];
    ptrs[p->x] = xb;
    ptrs[p->y] = d->y;
    p->blocks[probe].fn(ptrs);
    ptrs[p->x] = x;
    ptrs[p->y] = y;
    free(xb);
    for (int s = 0; s < p->nsg; s++) {
        const int *buf = &p->probe[3 * s];
        if (buf[0] < 0)
            continue;
        size_t n = (size_t)p->bufs[buf[0]].rows * (size_t)p->bufs[buf[0]].cols;
        double dot = 0, ss = 0, tt = 0, dboot = 0, dtrue = 0;
        for (size_t i = 0; i < n; i++) {
            double g = at(ptrs[buf[0]], p->dtype, i), t = at(ptrs[buf[1]], p->dtype, i), bt = at(ptrs[buf[2]], p->dtype, i);
            dot += g * t;
            ss += g * g;
            tt += t * t;
            dboot += fabs(g - bt);
            dtrue += fabs(g - t);
        }
        double *o = &out[s * DNIC_PROBE_COUNT];
        o[DNIC_PROBE_COS] = ss > 0 && tt > 0 ? dot / (sqrt(ss) * sqrt(tt)) : (double)NAN;
        o[DNIC_PROBE_NORM] = tt > 0 ? sqrt(ss) / sqrt(tt) : (double)NAN;
        o[DNIC_PROBE_SG_BOOT] = dboot;
        o[DNIC_PROBE_SG_TRUE] = dtrue;
    }
}
