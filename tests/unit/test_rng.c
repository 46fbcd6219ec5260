/* dnic_rng must draw exactly what NumPy's legacy RandomState draws; every expected value below
   was produced by Debian's numpy 1.24 (/usr/bin/python3), never by this code. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "rng.h"

/* Doubles are compared for exact equality: the point is bitwise agreement with numpy. The
   literals are Python repr() output, which round-trips exactly. */
#define EXPECT_EXACT(got, want) \
    cr_expect((got) == (want), "%s: got %.17g, want %.17g", #got, (double)(got), (double)(want))

/* The MT19937 reference value everyone quotes for the default seed 5489.
   np.random.RandomState(5489).randint(0, 2**32, size=3, dtype=np.uint32) */
Test(rng, next32_seed_5489)
{
    dnic_rng r;
    dnic_rng_seed(&r, 5489);
    cr_expect_eq(dnic_rng_next32(&r), 3499211612U);
    cr_expect_eq(dnic_rng_next32(&r), 581869302U);
    cr_expect_eq(dnic_rng_next32(&r), 3890346734U);
}

struct first_draws {
    uint32_t seed;
    uint32_t next32[5];
    double rand[5];
    double randn[5];
};

/* For s in (0, 1, 4294967295), each line from a fresh R = np.random.RandomState(s):
   R.randint(0, 2**32, size=5, dtype=np.uint32); R.rand(5); R.randn(5) */
static const struct first_draws firsts[] = {
    {0U,
     {2357136044U, 2546248239U, 3071714933U, 3626093760U, 2588848963U},
     {0.5488135039273248, 0.7151893663724195, 0.6027633760716439, 0.5448831829968969,
      0.4236547993389047},
     {1.764052345967664, 0.4001572083672233, 0.9787379841057392, 2.240893199201458,
      1.8675579901499675}},
    {1U,
     {1791095845U, 4282876139U, 3093770124U, 4005303368U, 491263U},
     {0.417022004702574, 0.7203244934421581, 0.00011437481734488664, 0.30233257263183977,
      0.14675589081711304},
     {1.6243453636632417, -0.6117564136500754, -0.5281717522634557, -1.0729686221561705,
      0.8654076293246785}},
    {4294967295U,
     {419326371U, 479346978U, 3918654476U, 2416749639U, 3388880820U},
     {0.0976320289940138, 0.9123828453026218, 0.78903530185164, 0.7800035981134678,
      0.01793967398674523},
     {0.6484086742306527, 0.6693235306338161, -1.0805437227474493, 0.2845010447986309,
      0.11388773652167104}},
};

Test(rng, first_draws_of_seeds)
{
    for (size_t s = 0; s < sizeof firsts / sizeof firsts[0]; s++) {
        const struct first_draws *f = &firsts[s];
        dnic_rng r;
        dnic_rng_seed(&r, f->seed);
        for (int i = 0; i < 5; i++)
            cr_expect_eq(dnic_rng_next32(&r), f->next32[i], "seed %u next32[%d]", f->seed, i);
        dnic_rng_seed(&r, f->seed);
        for (int i = 0; i < 5; i++)
            EXPECT_EXACT(dnic_rng_rand(&r), f->rand[i]);
        dnic_rng_seed(&r, f->seed);
        for (int i = 0; i < 5; i++)
            EXPECT_EXACT(dnic_rng_randn(&r), f->randn[i]);
    }
}

/* np.random.seed(2); a = np.random.randn(3); b = np.random.rand(2); c = np.random.randn(3)
   randn(3) makes two pairs and leaves the fourth normal cached; rand(2) must not touch the
   cache, so c[0] is that cached value. */
static const double inter_a[3] = {-0.4167578474054706, -0.056266827226329474, -2.136196095668454};
static const double inter_b[2] = {0.42036780208748903, 0.3303348210038741};
static const double inter_c[3] = {1.6402708084049886, 0.5028814171580428, -1.2452880866072316};

Test(rng, randn_cache_survives_rand_and_separate_calls)
{
    dnic_rng r;
    double a[3], b[2], c[3];
    dnic_rng_seed(&r, 2);
    dnic_rng_fill_randn(&r, a, 3);
    dnic_rng_fill_rand(&r, b, 2);
    dnic_rng_fill_randn(&r, c, 3);
    for (int i = 0; i < 3; i++)
        EXPECT_EXACT(a[i], inter_a[i]);
    for (int i = 0; i < 2; i++)
        EXPECT_EXACT(b[i], inter_b[i]);
    for (int i = 0; i < 3; i++)
        EXPECT_EXACT(c[i], inter_c[i]);

    /* Same stream through single calls: np.random.seed(2); [np.random.randn() for _ in
       range(3)]; np.random.rand(); np.random.randn() gives inter_a, inter_b[0], inter_c[0]. */
    dnic_rng_seed(&r, 2);
    for (int i = 0; i < 3; i++)
        EXPECT_EXACT(dnic_rng_randn(&r), inter_a[i]);
    EXPECT_EXACT(dnic_rng_rand(&r), inter_b[0]);
    EXPECT_EXACT(dnic_rng_randn(&r), inter_c[0]);
}

Test(rng, seed_drops_cached_normal)
{
    dnic_rng r;
    dnic_rng_seed(&r, 2);
    (void)dnic_rng_randn(&r); /* leaves a cached normal */
    cr_assert(r.has_gauss);
    dnic_rng_seed(&r, 2);
    cr_expect(!r.has_gauss);
    EXPECT_EXACT(dnic_rng_randn(&r), inter_a[0]);
}

/* g = np.random.RandomState(1234); v = g.rand(2000): each rand takes two words, so v[312] is
   the first draw after the 624-word block is regenerated. */
Test(rng, rand_past_state_regeneration)
{
    dnic_rng r;
    static double v[2000];
    dnic_rng_seed(&r, 1234);
    dnic_rng_fill_rand(&r, v, 2000);
    EXPECT_EXACT(v[0], 0.1915194503788923);
    EXPECT_EXACT(v[311], 0.17590426942327275);
    EXPECT_EXACT(v[312], 0.07069617875044265);
    EXPECT_EXACT(v[313], 0.15762308631249733);
    EXPECT_EXACT(v[1000], 0.40110640866052494);
    EXPECT_EXACT(v[1999], 0.8795647581708362);
}

/* w = np.random.RandomState(1234).randint(0, 2**32, size=1500, dtype=np.uint32)
   int(w.astype(np.uint64).sum()) == 3250219563907; w[623], w[624], w[1499] */
Test(rng, next32_past_state_regeneration)
{
    dnic_rng r;
    uint64_t sum = 0;
    uint32_t w623 = 0, w624 = 0, w1499 = 0;
    dnic_rng_seed(&r, 1234);
    for (int i = 0; i < 1500; i++) {
        uint32_t w = dnic_rng_next32(&r);
        sum += w;
        if (i == 623)
            w623 = w;
        if (i == 624)
            w624 = w;
        if (i == 1499)
            w1499 = w;
    }
    cr_expect_eq(sum, UINT64_C(3250219563907));
    cr_expect_eq(w623, 1664263489U);
    cr_expect_eq(w624, 303637765U);
    cr_expect_eq(w1499, 285014764U);
}

/* g = np.random.RandomState(99); n = g.randn(1301); n[0], n[623], n[624], n[1300]; then
   g.randn() once more (1301 is odd, so that one comes from the cache). */
Test(rng, randn_long_and_odd_fill)
{
    dnic_rng r;
    static double n[1301];
    dnic_rng_seed(&r, 99);
    dnic_rng_fill_randn(&r, n, 1301);
    EXPECT_EXACT(n[0], -0.14235884270194815);
    EXPECT_EXACT(n[623], 1.985862024059665);
    EXPECT_EXACT(n[624], 0.2626368612669365);
    EXPECT_EXACT(n[1300], -2.078358588659766);
    cr_expect(r.has_gauss);
    EXPECT_EXACT(dnic_rng_randn(&r), 0.8627191859323307);
}

/* The struct is plain data: a copy taken mid-stream (here with a cached normal and a
   partly used block) continues exactly like the original. */
Test(rng, copy_resumes_stream)
{
    dnic_rng r, saved;
    dnic_rng_seed(&r, 7);
    for (int i = 0; i < 700; i++)
        (void)dnic_rng_next32(&r);
    (void)dnic_rng_randn(&r);
    memcpy(&saved, &r, sizeof r);
    double a[5], b[5];
    dnic_rng_fill_randn(&r, a, 5);
    dnic_rng_fill_randn(&saved, b, 5);
    for (int i = 0; i < 5; i++)
        EXPECT_EXACT(a[i], b[i]);
}

/* a = np.arange(10); np.random.RandomState(3).shuffle(a) -> [5, 4, 1, 2, 9, 6, 7, 0, 3, 8].
   Legacy shuffle swaps a[i] with a[random_interval(i)] for i = n-1 down to 1. */
static void shuffle(dnic_rng *r, long *a, size_t n)
{
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t)dnic_rng_below(r, (uint64_t)i + 1);
        long t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

Test(rng, below_matches_numpy_shuffle)
{
    static const long want10[10] = {5, 4, 1, 2, 9, 6, 7, 0, 3, 8};
    long a[10];
    dnic_rng r;
    for (long i = 0; i < 10; i++)
        a[i] = i;
    dnic_rng_seed(&r, 3);
    shuffle(&r, a, 10);
    for (int i = 0; i < 10; i++)
        cr_expect_eq(a[i], want10[i], "a[%d]", i);

    /* a = np.arange(1000); np.random.RandomState(3).shuffle(a); list(a[:8]) and
       int((a * np.arange(1000)).sum()) == 254166528 */
    static const long want1000[8] = {642, 762, 909, 199, 586, 797, 652, 755};
    static long b[1000];
    for (long i = 0; i < 1000; i++)
        b[i] = i;
    dnic_rng_seed(&r, 3);
    shuffle(&r, b, 1000);
    long long ck = 0;
    for (long i = 0; i < 1000; i++)
        ck += (long long)b[i] * i;
    for (int i = 0; i < 8; i++)
        cr_expect_eq(b[i], want1000[i], "b[%d]", i);
    cr_expect_eq(ck, 254166528LL);
}

/* Legacy randint uses the same masked rejection, so it gives the expected values:
   np.random.RandomState(7).randint(0, N, size=k, dtype=...) for each N below. */
Test(rng, below_matches_numpy_randint)
{
    dnic_rng r;
    /* N = 1000, int64 */
    static const uint64_t w1000[6] = {175, 196, 537, 502, 579, 211};
    dnic_rng_seed(&r, 7);
    for (int i = 0; i < 6; i++)
        cr_expect_eq(dnic_rng_below(&r, 1000), w1000[i]);
    /* N = 2**32, int64: one full 32-bit word per draw */
    static const uint64_t w32[3] = {327741615U, 976413892U, 3349725721U};
    dnic_rng_seed(&r, 7);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(dnic_rng_below(&r, UINT64_C(1) << 32), w32[i]);
    /* N = 2**40, int64: 64-bit draws, first word high */
    static const uint64_t w40[4] = {UINT64_C(752595690692), UINT64_C(108744157686),
                                    UINT64_C(291964244179), UINT64_C(650496783975)};
    dnic_rng_seed(&r, 7);
    for (int i = 0; i < 4; i++)
        cr_expect_eq(dnic_rng_below(&r, UINT64_C(1) << 40), w40[i]);
    /* N = 2**63 + 5, uint64: full 64-bit mask, rejection is frequent */
    static const uint64_t w63[3] = {UINT64_C(1407639518939636932), UINT64_C(8087222774582268115),
                                    UINT64_C(1329108821600893482)};
    dnic_rng_seed(&r, 7);
    for (int i = 0; i < 3; i++)
        cr_expect_eq(dnic_rng_below(&r, (UINT64_C(1) << 63) + 5), w63[i]);
}

Test(rng, below_degenerate_bounds_draw_nothing)
{
    dnic_rng r;
    dnic_rng_seed(&r, 5489);
    cr_expect_eq(dnic_rng_below(&r, 1), 0);
    cr_expect_eq(dnic_rng_below(&r, 0), 0);
    /* Still the first word of the stream (see next32_seed_5489). */
    cr_expect_eq(dnic_rng_next32(&r), 3499211612U);
}

/* Statistical sanity for a bound that is not a power of two: every value is hit and stays
   below n. 60000 draws over 6 values; each count is ~10000 +- 100 (sd), so 9000..11000 is a
   10-sigma band. */
Test(rng, below_is_in_range_and_spread)
{
    dnic_rng r;
    long count[6] = {0};
    dnic_rng_seed(&r, 42);
    for (int i = 0; i < 60000; i++) {
        uint64_t v = dnic_rng_below(&r, 6);
        cr_assert_lt(v, 6);
        count[v]++;
    }
    for (int i = 0; i < 6; i++)
        cr_expect(count[i] > 9000 && count[i] < 11000, "count[%d] = %ld", i, count[i]);
}
