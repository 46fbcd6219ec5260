/* bench/divider.c: the vector divider's throughput, for docs/benchmarks.md ("Why the 1-thread
 * Fashion targets are out of reach").  Adam's update (docs/semantics.md) takes three divisions
 * and a square root per parameter, in that order, so their throughput bounds its cost.
 *
 *     cc -O2 -march=native bench/divider.c -o /tmp/divider && /tmp/divider
 *
 * Eight independent chains of divisions (then of square roots) of the widest float vectors the
 * compiler targets: with eight in flight, the time per instruction is the unit's throughput,
 * not its latency. */
#include <immintrin.h>
#include <stdio.h>
#include <time.h>

#if defined(__AVX512F__)
typedef __m512 vec;
#define LANES 16
#define SET1 _mm512_set1_ps
#define DIV _mm512_div_ps
#define SQRT _mm512_sqrt_ps
#define ADD _mm512_add_ps
#define STORE _mm512_storeu_ps
#elif defined(__AVX__)
typedef __m256 vec;
#define LANES 8
#define SET1 _mm256_set1_ps
#define DIV _mm256_div_ps
#define SQRT _mm256_sqrt_ps
#define ADD _mm256_add_ps
#define STORE _mm256_storeu_ps
#else
#error "needs AVX or AVX-512 (cc -march=native on such a CPU)"
#endif

enum { CHAINS = 8 };

static double seconds(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* keeps the chains in registers and their results live, without adding instructions */
#define KEEP(a) __asm__ volatile("" : "+x"(a[0]), "+x"(a[1]), "+x"(a[2]), "+x"(a[3]), "+x"(a[4]), "+x"(a[5]), "+x"(a[6]), "+x"(a[7]))

int main(void)
{
    vec a[CHAINS], d = SET1(1.0001f), sum = SET1(0.0f);
    for (int i = 0; i < CHAINS; i++)
        a[i] = SET1(1.0f + (float)i);
    const long n = 20000000;
    double t0 = seconds();
    for (long k = 0; k < n; k++) {
        for (int i = 0; i < CHAINS; i++)
            a[i] = DIV(a[i], d);
        KEEP(a);
    }
    double t1 = seconds();
    for (long k = 0; k < n; k++) {
        for (int i = 0; i < CHAINS; i++)
            a[i] = SQRT(a[i]);
        KEEP(a);
    }
    double t2 = seconds();
    for (int i = 0; i < CHAINS; i++)
        sum = ADD(sum, a[i]);
    float out[LANES];
    STORE(out, sum);
    double per = 1e9 / ((double)n * CHAINS);
    printf("%d-wide float division: %.2f ns per instruction, %.3f ns per float\n", LANES, (t1 - t0) * per,
           (t1 - t0) * per / LANES);
    printf("%d-wide float square root: %.2f ns per instruction, %.3f ns per float\n", LANES, (t2 - t1) * per,
           (t2 - t1) * per / LANES);
    printf("(checksum %g)\n", (double)out[0]);
    return 0;
}
