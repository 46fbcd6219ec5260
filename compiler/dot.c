/* --emit-dot: a Graphviz picture of the layers, the SG modules and what feeds them. */
#include "dnic.h"

void dnic_emit_dot(const dnic_model *m, FILE *out)
{
    fprintf(out, "digraph \"%s\" {\n  rankdir=LR;\n  node [fontname=\"Helvetica\"];\n", m->name);
    fprintf(out, "  input [shape=box, style=rounded, label=\"input\\n%d\"];\n", m->data.inputs);
    fprintf(out, "  labels [shape=box, style=rounded, label=\"labels\\n%d\"];\n", m->data.labels);
    for (int i = 0; i < m->nlayers; i++) {
        const dnic_layer *l = &m->layers[i];
        fprintf(out, "  \"%s\" [shape=box, label=\"%s\\ndense %d -> %d\\n%s%s\"];\n", l->name, l->name, l->in, l->out,
                dnic_act_name(l->act), l->bias ? "" : ", no bias");
        fprintf(out, "  \"%s\" -> \"%s\";\n", i == 0 ? "input" : m->layers[i - 1].name, l->name);
    }
    const dnic_layer *o = &m->layers[m->nlayers - 1];
    fprintf(out, "  loss [shape=ellipse, label=\"loss\"];\n  \"%s\" -> loss;\n  labels -> loss;\n", o->name);
    for (int s = 0; s < m->nsgs; s++) {
        const dnic_sg *sg = &m->sgs[s];
        fprintf(out, "  \"sg_%s\" [shape=diamond, label=\"SG %s\\n%s\"];\n", sg->name, sg->name,
                sg->nhidden ? "mlp" : "linear");
        for (int p = 0; p < sg->nparts; p++) {
            const char *from = sg->parts[p] == DNIC_SG_OUTPUT ? sg->name : dnic_sg_part_name(sg->parts[p]);
            fprintf(out, "  \"%s\" -> \"sg_%s\" [style=dashed];\n", from, sg->name);
        }
        fprintf(out, "  \"sg_%s\" -> \"%s\" [color=blue, label=\"synthetic gradient\"];\n", sg->name, sg->name);
    }
    fprintf(out, "}\n");
}
