/* tests/e2e/stream.sh's program: a model of S steps (prefix `a`) and the same model of 2S steps
 * (prefix `b`), with the same weights.  Feeding a_predict_state a sequence of 2S steps in two
 * halves, the state carried from the first to the second, must give b_predict's outputs on the
 * whole sequence, and the state b_predict_state leaves; zero states must give a_predict's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "a.h"
#include "b.h"

#if a_INPUT_SIZE * 2 != b_INPUT_SIZE || a_STATE_SIZE != b_STATE_SIZE || a_OUTPUT_SIZE != b_OUTPUT_SIZE
#error "b must be a with twice the steps"
#endif

enum { N = 7, IN = a_INPUT_SIZE, OUT = a_OUTPUT_SIZE, S = a_STATE_SIZE };
typedef __typeof__(a_train_step(NULL, NULL, NULL)) real;

static unsigned long long lcg = 12345;
static real uniform(void)
{
    lcg = lcg * 6364136223846793005ULL + 1442695040888963407ULL;
    return (real)((double)(lcg >> 11) / 9007199254740992.0 * 2 - 1);
}

/* Values equal as numbers (a zero's sign aside); prints the first difference. */
static int same(const char *what, const real *u, const real *v, int n)
{
    for (int i = 0; i < n; i++)
        if (u[i] != v[i]) {
            printf("%s: differ at %d: %.17g against %.17g\n", what, i, (double)u[i], (double)v[i]);
            return 0;
        }
    printf("%s: equal (%d values)\n", what, n);
    return 1;
}

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    a *ma = a_create();
    b *mb = b_create();
    if (!ma || !mb)
        return 2;
    /* a few training steps, so that the weights are not the initial draws */
    real x[a_BATCH * IN], y[a_BATCH * a_LABEL_SIZE];
    for (int s = 0; s < 5; s++) {
        for (int i = 0; i < a_BATCH * IN; i++)
            x[i] = uniform();
        for (int i = 0; i < a_BATCH * a_LABEL_SIZE; i++)
            y[i] = uniform() > 0 ? 1 : 0;
        a_train_step(ma, x, y);
    }
    if (a_save(ma, argv[1]) != 0 || b_load(mb, argv[1]) != 0) {
        printf("weights: %s %s\n", a_error(ma), b_error(mb));
        return 1;
    }
    static real xl[N * 2 * IN], x1[N * IN], x2[N * IN];
    static real ya[N * OUT], yz[N * OUT], yb[N * OUT], sa[N * S], sb[N * S];
    for (int i = 0; i < N * 2 * IN; i++)
        xl[i] = uniform();
    for (int r = 0; r < N; r++) { /* the halves of each long row */
        memcpy(x1 + r * IN, xl + r * 2 * IN, sizeof(real) * IN);
        memcpy(x2 + r * IN, xl + r * 2 * IN + IN, sizeof(real) * IN);
    }
    int ok = 1;
    a_predict(ma, x1, ya, N);
    a_predict_state(ma, x1, yz, N, sa); /* sa is zero (static) */
    ok &= same("zero states: predict_state equals predict", ya, yz, N * OUT);
    a_predict_state(ma, x2, ya, N, sa);
    b_predict(mb, xl, yb, N);
    ok &= same("two halves with the state carried equal the whole sequence", ya, yb, N * OUT);
    b_predict_state(mb, xl, yb, N, sb);
    ok &= same("and leave the whole sequence's last state", sa, sb, N * S);
    real nz = 0;
    for (int i = 0; i < N * S; i++)
        nz += sa[i] != 0;
    printf("nonzero state values: %g of %d\n", (double)nz, N * S);
    ok &= nz == N * S;
    a_free(ma);
    b_free(mb);
    return ok ? 0 : 1;
}
