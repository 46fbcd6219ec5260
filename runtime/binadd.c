/* Binary-addition examples drawn exactly as the seeds' numpy generate_dataset draws them. */
#include "binadd.h"

#include <stddef.h>

/* Writes v as `bits` doubles 0/1, most significant bit first (numpy int2vec). */
static void put_bits(double *dst, int bits, uint32_t v)
{
    for (int i = 0; i < bits; i++)
        dst[i] = (double)((v >> (bits - 1 - i)) & 1U);
}

static uint32_t get_bits(const double *src, int bits)
{
    uint32_t v = 0;
    for (int i = 0; i < bits; i++)
        v = (v << 1) | (src[i] != 0.0 ? 1U : 0U);
    return v;
}

int dnic_binadd_generate(dnic_rng *r, int bits, int examples, double *x, double *y)
{
    /* 30 keeps left+right (< 2^bits) inside uint32_t and 2^(bits-1) exact in the product. */
    if (bits < 1 || bits > 30 || examples < 1 || r == NULL || x == NULL || y == NULL)
        return -1;
    const double scale = (double)(1UL << (bits - 1));
    const size_t row = 2 * (size_t)bits;
    /* numpy draws the whole left array before the right one, so the left operands are parked
       in x (as bits) until the right ones exist; no allocation needed. astype('int') truncates
       toward zero, which is floor here because the product is >= 0. */
    for (int i = 0; i < examples; i++)
        put_bits(x + (size_t)i * row, bits, (uint32_t)(dnic_rng_rand(r) * scale));
    for (int i = 0; i < examples; i++) {
        double *xr = x + (size_t)i * row;
        uint32_t right = (uint32_t)(dnic_rng_rand(r) * scale);
        put_bits(xr + bits, bits, right);
        put_bits(y + (size_t)i * (size_t)bits, bits, get_bits(xr, bits) + right);
    }
    return 0;
}
