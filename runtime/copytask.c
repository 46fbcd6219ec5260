/* Copy and Repeat Copy sequences.
 *
 * Copy (repeats = 0), bits b, length L: 2L + 1 steps of b + 1 inputs.  Steps 0..L-1 hold the
 * random vectors v_0..v_{L-1} (the last input 0), step L the delimiter (1 in the last input,
 * the bits 0), steps L+1..2L are blank; the labels are v_0..v_{L-1}, for the last L steps.
 *
 * Repeat Copy (repeats = R >= 1): L + 1 + R L + 1 steps of b + 2 inputs.  Steps 0..L-1 hold
 * the vectors, step L the delimiter (input b) and R (input b + 1), the rest are blank; the
 * labels, for the last R L + 1 steps, are b + 1 wide: the vectors R times over (the last label
 * 0), then the end marker (the bits 0, the last label 1). */
#include "copytask.h"

#include <stddef.h>
#include <string.h>

int dnic_copy_generate(dnic_rng *r, int bits, int length, int repeats, int examples, double *x, double *y)
{
    dnic_copy_shape s;
    if (dnic_copy_shape_of(bits, length, repeats, &s) != 0 || examples < 1 || !r || !x || !y)
        return -1;
    size_t xrow = (size_t)s.steps * (size_t)s.step_inputs, yrow = (size_t)s.outputs * (size_t)s.step_labels;
    for (int e = 0; e < examples; e++) {
        double *xe = x + (size_t)e * xrow, *ye = y + (size_t)e * yrow;
        memset(xe, 0, xrow * sizeof *xe);
        memset(ye, 0, yrow * sizeof *ye);
        for (int t = 0; t < length; t++)
            for (int i = 0; i < bits; i++)
                xe[(size_t)t * (size_t)s.step_inputs + (size_t)i] = dnic_rng_rand(r) < 0.5 ? 1.0 : 0.0;
        double *delim = xe + (size_t)length * (size_t)s.step_inputs;
        delim[bits] = 1.0;
        if (repeats)
            delim[bits + 1] = (double)repeats;
        int copies = repeats ? repeats : 1;
        for (int k = 0; k < copies; k++)
            for (int t = 0; t < length; t++)
                memcpy(ye + ((size_t)k * (size_t)length + (size_t)t) * (size_t)s.step_labels,
                       xe + (size_t)t * (size_t)s.step_inputs, (size_t)bits * sizeof *ye);
        if (repeats)
            ye[yrow - 1] = 1.0;
    }
    return 0;
}
