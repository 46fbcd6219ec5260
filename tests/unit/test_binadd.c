/* dnic_binadd_generate must reproduce the seeds' numpy generate_dataset; expected values were
   produced by Debian's numpy 1.24 (/usr/bin/python3) running the seed's generate_dataset. */
#include <criterion/criterion.h>
#include <string.h>

#include "binadd.h"
#include "rng.h"

/* Row `row` of a (rows x cols) 0/1 matrix as a string of '0'/'1' ('?' for anything else). */
static void row_str(char *buf, const double *m, int cols, int row)
{
    for (int j = 0; j < cols; j++) {
        double v = m[(size_t)row * cols + j];
        buf[j] = v == 0.0 ? '0' : v == 1.0 ? '1' : '?';
    }
    buf[cols] = '\0';
}

/* Position-weighted checksum, the C side of numpy's
   int((a * np.arange(1, a.size + 1).reshape(a.shape)).sum()) */
static long long checksum(const double *a, size_t n)
{
    long long s = 0;
    for (size_t i = 0; i < n; i++)
        s += (long long)a[i] * (long long)(i + 1);
    return s;
}

static long long plain_sum(const double *a, size_t n)
{
    long long s = 0;
    for (size_t i = 0; i < n; i++)
        s += (long long)a[i];
    return s;
}

/* np.random.seed(1); x, y = generate_dataset(output_dim=8, num_examples=100)
   rows 0, 1, 50, 99 as ''.join(str(int(v)) for v in row); checksums and sums as above;
   then np.random.rand() == 0.9501761192470797 (the stream after the 200 draws). */
Test(binadd, seed1_bits8_examples100)
{
    static double x[100 * 16], y[100 * 8];
    dnic_rng r;
    char buf[64];
    dnic_rng_seed(&r, 1);
    cr_assert_eq(dnic_binadd_generate(&r, 8, 100, x, y), 0);

    static const struct { int row; const char *x, *y; } spots[] = {
        {0, "0011010100101001", "01011110"},
        {1, "0101110001000011", "10011111"},
        {50, "0000001000001001", "00001011"},
        {99, "0100111001111001", "11000111"},
    };
    for (size_t i = 0; i < sizeof spots / sizeof spots[0]; i++) {
        row_str(buf, x, 16, spots[i].row);
        cr_expect_str_eq(buf, spots[i].x, "x row %d", spots[i].row);
        row_str(buf, y, 8, spots[i].row);
        cr_expect_str_eq(buf, spots[i].y, "y row %d", spots[i].row);
    }
    cr_expect_eq(checksum(x, 100 * 16), 536217LL);
    cr_expect_eq(checksum(y, 100 * 8), 161258LL);
    cr_expect_eq(plain_sum(x, 100 * 16), 668LL);
    cr_expect_eq(plain_sum(y, 100 * 8), 401LL);
    cr_expect(dnic_rng_rand(&r) == 0.9501761192470797, "stream position after generate");
}

/* Every y row must be the sum of the two operands in x (also catches bit-order mistakes that a
   symmetric checksum could miss). */
Test(binadd, y_is_sum_of_operands)
{
    static double x[100 * 16], y[100 * 8];
    dnic_rng r;
    dnic_rng_seed(&r, 1);
    cr_assert_eq(dnic_binadd_generate(&r, 8, 100, x, y), 0);
    for (int i = 0; i < 100; i++) {
        unsigned a = 0, b = 0, s = 0;
        for (int j = 0; j < 8; j++) {
            a = a * 2 + (unsigned)x[i * 16 + j];
            b = b * 2 + (unsigned)x[i * 16 + 8 + j];
            s = s * 2 + (unsigned)y[i * 8 + j];
        }
        cr_expect_lt(a, 128u);
        cr_expect_lt(b, 128u);
        cr_expect_eq(a + b, s, "row %d", i);
    }
}

/* np.random.seed(1); x, y = generate_dataset(output_dim=1, num_examples=5): all zeros (the
   operands are floor(rand * 2**0) = 0), yet 10 draws are made:
   np.random.rand() afterwards == 0.4191945144032948. */
Test(binadd, bits1_edge)
{
    double x[5 * 2], y[5];
    for (int i = 0; i < 10; i++)
        x[i] = 7.0;
    for (int i = 0; i < 5; i++)
        y[i] = 7.0;
    dnic_rng r;
    dnic_rng_seed(&r, 1);
    cr_assert_eq(dnic_binadd_generate(&r, 1, 5, x, y), 0);
    for (int i = 0; i < 10; i++)
        cr_expect(x[i] == 0.0, "x[%d] = %g", i, x[i]);
    for (int i = 0; i < 5; i++)
        cr_expect(y[i] == 0.0, "y[%d] = %g", i, y[i]);
    cr_expect(dnic_rng_rand(&r) == 0.4191945144032948, "stream position after generate");
}

/* np.random.seed(1); x, y = generate_dataset(output_dim=30, num_examples=4): all rows, the
   checksums 15083 / 3798, and np.random.rand() afterwards == 0.39676747423066994. */
Test(binadd, bits30_edge)
{
    static const char *wx[4] = {
        "001101010110000011111010000111000100101100100011100101101000",
        "010111000011001110010111110011000010111101000111000000010001",
        "000000000000001110111111011100000101111101011101011111111001",
        "001001101011001011010101011011001011000011101101010101011110",
    };
    static const char *wy[4] = {
        "010010000010100111011111101111",
        "011010000000010101011000000100",
        "000101111101101100011111010101",
        "010100101110111000101010111001",
    };
    double x[4 * 60], y[4 * 30];
    char buf[64];
    dnic_rng r;
    dnic_rng_seed(&r, 1);
    cr_assert_eq(dnic_binadd_generate(&r, 30, 4, x, y), 0);
    for (int i = 0; i < 4; i++) {
        row_str(buf, x, 60, i);
        cr_expect_str_eq(buf, wx[i], "x row %d", i);
        row_str(buf, y, 30, i);
        cr_expect_str_eq(buf, wy[i], "y row %d", i);
    }
    cr_expect_eq(checksum(x, 4 * 60), 15083LL);
    cr_expect_eq(checksum(y, 4 * 30), 3798LL);
    cr_expect(dnic_rng_rand(&r) == 0.39676747423066994, "stream position after generate");
}

/* Invalid arguments: -1, and neither the stream nor the buffers are touched. */
Test(binadd, invalid_arguments)
{
    static const struct { int bits, examples; } bad[] = {
        {0, 10}, {-1, 10}, {31, 10}, {64, 10}, {8, 0}, {8, -3},
    };
    double x[4 * 62], y[4 * 31];
    dnic_rng r, before;
    dnic_rng_seed(&r, 1);
    memcpy(&before, &r, sizeof r);
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        x[i] = 5.0;
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        y[i] = 5.0;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        cr_expect_eq(dnic_binadd_generate(&r, bad[i].bits, bad[i].examples, x, y), -1,
                     "bits %d examples %d", bad[i].bits, bad[i].examples);
    cr_expect_eq(dnic_binadd_generate(NULL, 8, 4, x, y), -1);
    cr_expect_eq(dnic_binadd_generate(&r, 8, 4, NULL, y), -1);
    cr_expect_eq(dnic_binadd_generate(&r, 8, 4, x, NULL), -1);
    cr_expect(memcmp(&r, &before, sizeof r) == 0, "rng state changed");
    for (size_t i = 0; i < sizeof x / sizeof x[0]; i++)
        cr_expect(x[i] == 5.0, "x[%zu] written", i);
    for (size_t i = 0; i < sizeof y / sizeof y[0]; i++)
        cr_expect(y[i] == 5.0, "y[%zu] written", i);
}
