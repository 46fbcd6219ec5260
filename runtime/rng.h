/* Random stream that reproduces NumPy's legacy np.random.seed()/RandomState draws bit for bit,
   so dnic runs can be compared with the numpy seed notebooks. */
#ifndef DNIC_RNG_H
#define DNIC_RNG_H

#include <stddef.h>
#include <stdint.h>

/* Plain data (no pointers) so that a checkpoint can save and restore it with a memcpy. */
typedef struct dnic_rng {
    uint32_t mt[624]; /* MT19937 state words */
    int mti;          /* index of the next word to temper; 624 means "regenerate first" */
    int has_gauss;    /* legacy_gauss makes normals in pairs and keeps the second one here */
    double gauss;
} dnic_rng;

/* = np.random.seed(seed): MT19937 init_genrand, and the cached normal is dropped. */
void dnic_rng_seed(dnic_rng *r, uint32_t seed);
/* One raw MT19937 output. */
uint32_t dnic_rng_next32(dnic_rng *r);
/* = one np.random.rand() draw: a 53-bit double in [0,1) built from two outputs. */
double dnic_rng_rand(dnic_rng *r);
/* = one legacy np.random.randn() draw (polar Box-Muller, second value cached). */
double dnic_rng_randn(dnic_rng *r);
/* = np.random.rand(n) / np.random.randn(n) written to out[0..n). */
void dnic_rng_fill_rand(dnic_rng *r, double *out, size_t n);
void dnic_rng_fill_randn(dnic_rng *r, double *out, size_t n);
/* Uniform integer in [0,n) by masked rejection (unbiased); draws exactly as NumPy's legacy
   random_interval(n-1), i.e. as RandomState.shuffle does for index n-1. n <= 1 returns 0
   without drawing (as random_interval(0) does). */
uint64_t dnic_rng_below(dnic_rng *r, uint64_t n);

#endif
