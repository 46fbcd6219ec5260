/* MT19937 plus NumPy's legacy transforms (random_sample, legacy_gauss, random_interval),
   kept operation-for-operation identical so the doubles match numpy exactly. */
#include "rng.h"

#include <math.h>

enum { MT_N = 624, MT_M = 397 };

#define MT_MATRIX_A 0x9908b0dfU
#define MT_UPPER 0x80000000U
#define MT_LOWER 0x7fffffffU

void dnic_rng_seed(dnic_rng *r, uint32_t seed)
{
    r->mt[0] = seed;
    for (int i = 1; i < MT_N; i++) {
        uint32_t prev = r->mt[i - 1];
        /* uint32_t arithmetic wraps mod 2^32, as init_genrand requires. */
        r->mt[i] = 1812433253U * (prev ^ (prev >> 30)) + (uint32_t)i;
    }
    r->mti = MT_N;
    /* np.random.seed also forgets a pending second normal. */
    r->has_gauss = 0;
    r->gauss = 0.0;
}

static uint32_t mt_twist(uint32_t a, uint32_t b, uint32_t c)
{
    uint32_t y = (a & MT_UPPER) | (b & MT_LOWER);
    return c ^ (y >> 1) ^ ((y & 1U) ? MT_MATRIX_A : 0U);
}

static void mt_regenerate(dnic_rng *r)
{
    int k;
    for (k = 0; k < MT_N - MT_M; k++)
        r->mt[k] = mt_twist(r->mt[k], r->mt[k + 1], r->mt[k + MT_M]);
    for (; k < MT_N - 1; k++)
        r->mt[k] = mt_twist(r->mt[k], r->mt[k + 1], r->mt[k + MT_M - MT_N]);
    r->mt[MT_N - 1] = mt_twist(r->mt[MT_N - 1], r->mt[0], r->mt[MT_M - 1]);
    r->mti = 0;
}

uint32_t dnic_rng_next32(dnic_rng *r)
{
    /* mti outside 0..623 (including a garbage value) means the block must be regenerated. */
    if (r->mti < 0 || r->mti >= MT_N)
        mt_regenerate(r);
    uint32_t y = r->mt[r->mti++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680U;
    y ^= (y << 15) & 0xefc60000U;
    y ^= y >> 18;
    return y;
}

double dnic_rng_rand(dnic_rng *r)
{
    /* numpy: (a * 2^26 + b) / 2^53 with a = 27 high bits, b = 26 high bits; a drawn first. */
    uint32_t a = dnic_rng_next32(r) >> 5;
    uint32_t b = dnic_rng_next32(r) >> 6;
    return ((double)a * 67108864.0 + (double)b) / 9007199254740992.0;
}

double dnic_rng_randn(dnic_rng *r)
{
    if (r->has_gauss) {
        double g = r->gauss;
        r->has_gauss = 0;
        r->gauss = 0.0;
        return g;
    }
    double x1, x2, r2;
    do {
        x1 = 2.0 * dnic_rng_rand(r) - 1.0;
        x2 = 2.0 * dnic_rng_rand(r) - 1.0;
        r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1.0 || r2 == 0.0);
    /* Same grouping as numpy's legacy_gauss: sqrt((-2*log(r2)) / r2). */
    double f = sqrt(-2.0 * log(r2) / r2);
    r->gauss = f * x1;
    r->has_gauss = 1;
    return f * x2;
}

void dnic_rng_fill_rand(dnic_rng *r, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = dnic_rng_rand(r);
}

void dnic_rng_fill_randn(dnic_rng *r, double *out, size_t n)
{
    for (size_t i = 0; i < n; i++)
        out[i] = dnic_rng_randn(r);
}

uint64_t dnic_rng_below(dnic_rng *r, uint64_t n)
{
    if (n <= 1)
        return 0;
    uint64_t max = n - 1;
    /* Smallest all-ones mask covering max: each masked draw is accepted with probability > 1/2,
       and accepted values are uniform on [0, max]. */
    uint64_t mask = max;
    mask |= mask >> 1;
    mask |= mask >> 2;
    mask |= mask >> 4;
    mask |= mask >> 8;
    mask |= mask >> 16;
    mask |= mask >> 32;
    uint64_t v;
    if (max <= 0xffffffffU) {
        do
            v = dnic_rng_next32(r) & mask;
        while (v > max);
    } else {
        do {
            /* numpy's mt19937_next64: the first output is the high word. */
            uint64_t hi = dnic_rng_next32(r);
            uint64_t lo = dnic_rng_next32(r);
            v = ((hi << 32) | lo) & mask;
        } while (v > max);
    }
    return v;
}
