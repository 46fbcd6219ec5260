/* Reruns seed notebook 001 (DNI model and backprop baseline) with the C reference, printing the
   same ten progress lines so they can be compared with the notebook's printed output. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binadd.h"
#include "dni_ref.h"
#include "rng.h"

enum { BITS = 8, EXAMPLES = 100, BATCH = 10 };

/* Python 2 str(float): repr to 12 significant digits, with ".0" when it would read as an int. */
static void py2_str(char *buf, size_t size, double v)
{
    snprintf(buf, size, "%.12g", v);
    if (strpbrk(buf, ".e") == NULL && strstr(buf, "inf") == NULL && strstr(buf, "nan") == NULL)
        strncat(buf, ".0", size - strlen(buf) - 1);
}

/* Raw float64 parameters in the numpy port's order (per layer: w, b, sg_w, sg_b for DNI; w for
   backprop), for a bitwise comparison with it. */
static int dump(const dni_ref_net *n, int dni, const char *path)
{
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return -1;
    for (int l = 0; l < n->nlayers; l++) {
        size_t in = (size_t)n->widths[l], out = (size_t)n->widths[l + 1];
        fwrite(n->w[l], sizeof(double), in * out, f);
        if (dni) {
            fwrite(n->b[l], sizeof(double), out, f);
            fwrite(n->sg_w[l], sizeof(double), (size_t)n->sg_in[l] * out, f);
            fwrite(n->sg_b[l], sizeof(double), out, f);
        }
    }
    return fclose(f) == 0 ? 0 : -1;
}

static int run(int dni, long iterations, const char *dump_path)
{
    static double x[EXAMPLES * 2 * BITS], y[EXAMPLES * BITS];
    dnic_rng r;
    dni_ref_net net;
    dnic_rng_seed(&r, 1);
    if (dnic_binadd_generate(&r, BITS, EXAMPLES, x, y) != 0)
        return 1;
    if (dni) {
        const int widths[] = {2 * BITS, 64, 32, BITS};
        if (dni_ref_create(&net, 3, widths, BATCH, 1, 0, 0.01) != 0)
            return 1;
        dni_ref_init_dni(&net, &r, 2.0, 1.0, 0.0, 0.0);
    } else {
        const int widths[] = {2 * BITS, 128, 64, BITS};
        if (dni_ref_create(&net, 3, widths, BATCH, 0, 0, 0.1) != 0)
            return 1;
        dni_ref_init_bp(&net, &r, 0.2, 0.1);
    }
    for (long iter = 0; iter < iterations; iter++) {
        /* Python starts both sums at int 0; 0 + v == v for the values seen here. */
        double error = 0.0, synthetic_error = 0.0;
        for (int bi = 0; bi < EXAMPLES / BATCH; bi++) {
            const double *bx = x + (size_t)bi * BATCH * 2 * BITS;
            const double *by = y + (size_t)bi * BATCH * BITS;
            if (dni) {
                double loss, sg_loss;
                dni_ref_dni_step(&net, bx, by, &loss, &sg_loss);
                error += loss;
                synthetic_error += sg_loss;
            } else {
                error += dni_ref_bp_step(&net, bx, by);
            }
        }
        if (iter % 1000 == 999) {
            char e[64], s[64];
            py2_str(e, sizeof e, error);
            if (dni) {
                py2_str(s, sizeof s, synthetic_error);
                printf("Iter:%ld Loss:%s Synthetic Loss:%s\n", iter, e, s);
            } else {
                printf("Iter:%ld Loss:%s\n", iter, e);
            }
            /* All 17 digits too, when dumping, to compare with the numpy port's repr. */
            if (dump_path != NULL)
                fprintf(stderr, "Iter:%ld %.17g %.17g\n", iter, error, synthetic_error);
        }
    }
    int rc = dump_path != NULL ? dump(&net, dni, dump_path) : 0;
    dni_ref_destroy(&net);
    return rc != 0;
}

int main(int argc, char **argv)
{
    long iterations = 10000;
    char *end = NULL;
    if (argc >= 3)
        iterations = strtol(argv[2], &end, 10);
    if (argc < 2 || argc > 4 || (strcmp(argv[1], "dni") != 0 && strcmp(argv[1], "bp") != 0) ||
        iterations < 0 || (end != NULL && *end != '\0')) {
        fprintf(stderr, "usage: %s dni|bp [iterations [params.f64]]\n",
                argc > 0 ? argv[0] : "seed_repro");
        return 2;
    }
    return run(strcmp(argv[1], "dni") == 0, iterations, argc == 4 ? argv[3] : NULL) ? EXIT_FAILURE
                                                                                   : EXIT_SUCCESS;
}
