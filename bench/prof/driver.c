/* Profiling driver for bench/profile: trains a model compiled ahead of time by
 * `dnic MODEL.dni -c --cpu native` (the code the JIT runs, but with symbols, so that perf can
 * attribute samples to each block of the training step).  Build (bench/profile does this):
 *     cc -O2 -DMODEL=seed_dni -DBITS=8 -DEXAMPLES=100 -include seed_dni.h driver.c seed_dni.o \
 *        -I include -I include/dnic -I runtime libdnic.a -lm -lpthread
 * Without -DBITS (a model whose data is not binary addition, e.g. Fashion-MNIST) it trains on
 * EXAMPLES rows of its own: inputs uniform in [0, 1) and one label 1 per row (the one-hot
 * labels of a classifier), which costs what the real data costs: the generated code has no
 * branch on a value.
 * Usage: driver STEPS.  Prints the sum of the step losses (so the work cannot be dropped). */
#include <stdio.h>
#include <stdlib.h>

#include "binadd.h"

#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
#define M(x) CAT(MODEL, x)
#define T __typeof__(M(_train_step)((void *)0, (void *)0, (void *)0))

int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 100000;
    enum { IN = M(_INPUT_SIZE), LAB = M(_LABEL_SIZE), B = M(_BATCH) };
    static double xd[EXAMPLES * IN], yd[EXAMPLES * LAB];
    static T x[EXAMPLES * IN], y[EXAMPLES * LAB];
    dnic_rng rng;
    dnic_rng_seed(&rng, 1);
#ifdef BITS
    if (dnic_binadd_generate(&rng, BITS, EXAMPLES, xd, yd) != 0)
        return 1;
#else
    for (int i = 0; i < EXAMPLES * IN; i++)
        xd[i] = dnic_rng_rand(&rng);
    for (int i = 0; i < EXAMPLES; i++)
        yd[i * LAB + (int)(dnic_rng_rand(&rng) * LAB) % LAB] = 1;
#endif
    for (int i = 0; i < EXAMPLES * IN; i++)
        x[i] = (T)xd[i];
    for (int i = 0; i < EXAMPLES * LAB; i++)
        y[i] = (T)yd[i];
    MODEL *m = M(_create)();
    if (!m)
        return 1;
    int batches = EXAMPLES / B;
    double sum = 0;
    for (long s = 0; s < steps; s++) {
        int b = (int)(s % batches);
        sum += M(_train_step)(m, x + b * B * IN, y + b * B * LAB);
    }
    printf("%ld steps, loss sum %.12g\n", steps, sum);
    M(_free)(m);
    return 0;
}
