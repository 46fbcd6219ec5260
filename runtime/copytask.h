/* The Copy and Repeat Copy tasks (Graves et al. 2014, used by the DNI paper's recurrent
   experiments) as fixed-length sequence examples drawn from a dnic_rng.  docs/language.md,
   "data copy and data repeat_copy", gives the layout. */
#ifndef DNIC_COPYTASK_H
#define DNIC_COPYTASK_H

#include "rng.h"

/* The shape of one example: steps in its sequence, inputs per step, outputs (labelled steps)
   and labels per labelled step.  repeats = 0 is Copy, repeats >= 1 Repeat Copy. */
typedef struct dnic_copy_shape {
    int steps, step_inputs, outputs, step_labels;
} dnic_copy_shape;

/* Returns 0 and fills *s, or -1 if bits is outside 1..64, length outside 1..1000 or repeats
   outside 0..100.  (Inline: the checker, which links no runtime, asks it too.) */
static inline int dnic_copy_shape_of(int bits, int length, int repeats, dnic_copy_shape *s)
{
    if (bits < 1 || bits > 64 || length < 1 || length > 1000 || repeats < 0 || repeats > 100 || !s)
        return -1;
    if (repeats == 0)
        *s = (dnic_copy_shape){2 * length + 1, bits + 1, length, bits};
    else
        *s = (dnic_copy_shape){length + 1 + repeats * length + 1, bits + 2, repeats * length + 1, bits + 1};
    return 0;
}

/* Draws `examples` sequences: for each, length x bits uniform random bits (rand() < 0.5), in
   order, one vector after another.  x is examples * steps * step_inputs doubles, y examples *
   outputs * step_labels, row-major, one example per row.  Returns 0, or -1 on a bad argument
   (then nothing is drawn or written). */
int dnic_copy_generate(dnic_rng *r, int bits, int length, int repeats, int examples, double *x, double *y);

#endif
