/* The seed notebooks' binary-addition data set (generate_dataset), drawn from a dnic_rng so the
   same seed gives the same examples as numpy. */
#ifndef DNIC_BINADD_H
#define DNIC_BINADD_H

#include "rng.h"

/* Draws like the seeds' generate_dataset(output_dim=bits, num_examples=examples): left operands
   floor(rand*2^(bits-1)) for all examples, then right operands likewise; x row = bits of left
   (MSB first, `bits` wide) then bits of right; y row = bits of left+right. Returns 0, or -1 if
   bits is outside 1..30, examples < 1 or a pointer is NULL (then nothing is drawn or written).
   x is examples*2*bits doubles, y examples*bits, row-major. */
int dnic_binadd_generate(dnic_rng *r, int bits, int examples, double *x, double *y);

#endif
