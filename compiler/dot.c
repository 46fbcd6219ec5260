/* --emit-dot: a Graphviz picture of the layer graph, its stages (one box each, in DNI mode),
 * the SG modules and what feeds them. */
#include "dnic.h"
#include "layers.h"

static void node(const dnic_layer *l, FILE *out)
{
    char what[128];
    if (l->kind->describe)
        l->kind->describe(l, what, sizeof what);
    else
        snprintf(what, sizeof what, "%s -> %d", l->kind->name, l->out);
    fprintf(out, "    \"%s\" [shape=box, label=\"%s\\n%s\\n%s%s\"];\n", l->name, l->name, what, dnic_act_name(l->act),
            l->trainable ? "" : ", frozen");
}

void dnic_emit_dot(const dnic_model *m, FILE *out)
{
    bool dni = m->train.mode == DNIC_MODE_DNI && m->nsgs > 0;
    fprintf(out, "digraph \"%s\" {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n", m->name);
    fprintf(out, "  input [shape=box, style=rounded, label=\"input\\n%d\"];\n", m->data.inputs);
    fprintf(out, "  labels [shape=box, style=rounded, label=\"labels\\n%d\"];\n", m->data.labels);
    for (int k = 0; k < (dni ? m->nstages : 1); k++) {
        if (dni)
            fprintf(out, "  subgraph \"cluster_stage%d\" {\n    label=\"stage %d\";\n    style=dashed;\n", k, k);
        for (int i = 0; i < m->nlayers; i++)
            if (!dni || m->layers[i].stage == k)
                node(&m->layers[i], out);
        if (dni)
            fprintf(out, "  }\n");
    }
    for (int i = 0; i < m->nlayers; i++) {
        const dnic_layer *l = &m->layers[i];
        for (int k = 0; k < l->nsrc; k++)
            fprintf(out, "  \"%s\" -> \"%s\";\n", l->src[k] < 0 ? "input" : m->layers[l->src[k]].name, l->name);
    }
    const dnic_layer *o = &m->layers[m->out];
    fprintf(out, "  loss [shape=ellipse, label=\"loss\"];\n  \"%s\" -> loss;\n  labels -> loss;\n", o->name);
    for (int s = 0; s < m->nsgs; s++) {
        const dnic_sg *sg = &m->sgs[s];
        fprintf(out, "  \"sg_%s\" [shape=diamond, label=\"SG %s\\n%s\"];\n", sg->name, sg->name,
                sg->nhidden ? "mlp" : "linear");
        /* sg NAME.state reads and predicts at its layer's truncation boundaries */
        const char *layer = m->layers[sg->layer].name, *extra = sg->state ? ", label=\"state\"" : "";
        for (int p = 0; p < sg->nparts; p++) {
            const char *from = sg->parts[p] == DNIC_SG_OUTPUT ? layer : dnic_sg_part_name(sg->parts[p]);
            fprintf(out, "  \"%s\" -> \"sg_%s\" [style=dashed%s];\n", from, sg->name,
                    sg->parts[p] == DNIC_SG_OUTPUT ? extra : "");
        }
        fprintf(out, "  \"sg_%s\" -> \"%s\" [color=blue, label=\"synthetic %s%s\"];\n", sg->name, layer,
                sg->input ? "input" : "gradient", sg->state ? " (boundaries)" : "");
    }
    fprintf(out, "}\n");
}
