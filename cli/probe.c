/* --probe: which models can be probed, and the probes' part of the report line and of the log
 * (the runtime measures them: runtime/probe.c). */
#include "cli.h"
#include "layers.h"

bool cli_probe_check(dnic_diag *d, const dnic_model *m)
{
    if (m->train.mode != DNIC_MODE_DNI || m->nsgs == 0) {
        dnic_error(d, (dnic_span){0}, "--probe compares SG modules with the true gradient, but model '%s' has none%s",
                   m->name, m->nsgs ? " in train.mode = backprop" : "");
        return false;
    }
    /* the true gradient goes back through every layer after an SG module */
    int n = m->nlayers;
    bool after[n + 1];
    for (int i = 0; i < n; i++) {
        after[i] = false;
        for (int q = 0; q < m->layers[i].nsrc; q++) {
            int s = m->layers[i].src[q];
            after[i] |= s >= 0 && (after[s] || m->layers[s].sg >= 0);
        }
        if (after[i] && m->layers[i].kind->boundaries) {
            dnic_error(d, (dnic_span){0}, "--probe: the true gradient would go through layer '%s', an %s layer after an "
                       "SG module; dnic backpropagates it only through dense, add and concat layers",
                       m->layers[i].name, m->layers[i].kind->name);
            return false;
        }
    }
    return true;
}

/* A synthetic loss as the report shows it: the probe batch's sum, or its mean per example. */
static double per(const dnic_model *m, double v, bool sum)
{
    return sum ? v : v / m->train.batch;
}

void cli_probe_print(FILE *out, const dnic_model *m, const dnic_report *r, bool sum)
{
    fputs(" Probe:", out);
    for (int s = 0; s < r->nsg; s++) {
        const double *v = &r->probe[s * DNIC_PROBE_COUNT];
        if (m->sgs[s].state)
            continue;
        fprintf(out, "%s[%s cos=%.4g norm=%.4g boot=%.4g true=%.4g]", s ? " " : "", m->sgs[s].name, v[DNIC_PROBE_COS],
                v[DNIC_PROBE_NORM], per(m, v[DNIC_PROBE_SG_BOOT], sum), per(m, v[DNIC_PROBE_SG_TRUE], sum));
    }
}

static const char *const COLUMNS[DNIC_PROBE_COUNT] = {"probe_cos", "probe_norm", "probe_sg_boot", "probe_sg_true"};

void cli_probe_log_header(FILE *out, const dnic_model *m)
{
    for (int s = 0; s < m->nsgs; s++)
        for (int k = 0; k < DNIC_PROBE_COUNT && !m->sgs[s].state; k++)
            fprintf(out, ",%s.%s", m->sgs[s].name, COLUMNS[k]);
}

void cli_probe_log_row(FILE *out, const dnic_model *m, const dnic_report *r)
{
    for (int s = 0; s < r->nsg; s++)
        for (int k = 0; k < DNIC_PROBE_COUNT && !m->sgs[s].state; k++) {
            double v = r->probe[s * DNIC_PROBE_COUNT + k];
            fprintf(out, ",%.17g", k >= DNIC_PROBE_SG_BOOT ? per(m, v, m->report_sum) : v);
        }
}
