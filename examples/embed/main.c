/* Uses a model compiled by `dnic seed_dni.dni -c -o seed_dni.o`: trains it on the seed's
 * binary-addition data, saves and reloads the weights, and predicts.  Build:
 *     dnic examples/seed_dni.dni -c -o seed_dni.o
 *     cc -std=c11 examples/embed/main.c seed_dni.o $(pkg-config --cflags --libs dnic) -o embed
 *     ./embed STEPS WEIGHTS.safetensors
 * It prints each step's loss and, at the end, the predictions for the first rows. */
#include <stdio.h>
#include <stdlib.h>

#include "binadd.h" /* the runtime's copy of the seeds' data generator */
#include "seed_dni.h"

enum { BITS = 8, EXAMPLES = 100 };

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: %s STEPS WEIGHTS.safetensors\n", argv[0]);
        return 2;
    }
    int steps = atoi(argv[1]);
    /* the same data dnic --run makes: np.random.seed(1), then the generator's draws */
    static double x[EXAMPLES * seed_dni_INPUT_SIZE], y[EXAMPLES * seed_dni_LABEL_SIZE];
    dnic_rng rng;
    dnic_rng_seed(&rng, 1);
    if (dnic_binadd_generate(&rng, BITS, EXAMPLES, x, y) != 0)
        return 1;

    seed_dni *m = seed_dni_create(); /* its weights skip the data's draws, as --run does */
    if (!m)
        return 1;
    int batches = EXAMPLES / seed_dni_BATCH;
    for (int s = 0; s < steps; s++) {
        int b = s % batches;
        double loss = seed_dni_train_step(m, x + b * seed_dni_BATCH * seed_dni_INPUT_SIZE,
                                          y + b * seed_dni_BATCH * seed_dni_LABEL_SIZE);
        printf("step %d loss %.17g\n", s, loss);
    }
    if (seed_dni_save(m, argv[2]) != 0) {
        fprintf(stderr, "save: %s\n", seed_dni_error(m));
        return 1;
    }
    seed_dni_free(m);

    /* a fresh model with the saved weights predicts what the trained one would */
    m = seed_dni_create();
    if (!m || seed_dni_load(m, argv[2]) != 0) {
        fprintf(stderr, "load: %s\n", m ? seed_dni_error(m) : "out of memory");
        return 1;
    }
    double out[3 * seed_dni_OUTPUT_SIZE];
    seed_dni_predict(m, x, out, 3); /* any number of rows, not only a batch */
    for (int r = 0; r < 3; r++) {
        printf("predict %d:", r);
        for (int c = 0; c < seed_dni_OUTPUT_SIZE; c++)
            printf(" %.17g", out[r * seed_dni_OUTPUT_SIZE + c]);
        printf("\n");
    }
    if (seed_dni_load(m, "no-such-file.safetensors") == 0)
        return 1;
    printf("a missing file: %s\n", seed_dni_error(m));
    seed_dni_free(m);
    return 0;
}
