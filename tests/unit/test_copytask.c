/* dnic_copy_generate against the layout of docs/language.md ("data copy and data repeat_copy"),
   drawn by Debian's numpy (/usr/bin/python3) from the same MT19937 stream: for each example,
   v = (np.random.rand(length, bits) < 0.5), then the layout built around v by hand. */
#include <criterion/criterion.h>
#include <string.h>

#include "copytask.h"
#include "rng.h"

/* A matrix of small non-negative integers as a string of digits ('?' for anything else). */
static void digits(char *buf, const double *m, size_t n)
{
    for (size_t i = 0; i < n; i++)
        buf[i] = m[i] >= 0 && m[i] <= 9 && m[i] == (int)m[i] ? (char)('0' + (int)m[i]) : '?';
    buf[n] = '\0';
}

/* np.random.seed(7): two Copy examples of bits = 3, length = 2; the stream's next rand() after */
Test(copytask, copy_seed7)
{
    dnic_copy_shape s;
    cr_assert_eq(dnic_copy_shape_of(3, 2, 0, &s), 0);
    cr_expect_eq(s.steps, 5);
    cr_expect_eq(s.step_inputs, 4);
    cr_expect_eq(s.outputs, 2);
    cr_expect_eq(s.step_labels, 3);
    double x[40], y[12];
    char buf[64];
    dnic_rng r;
    dnic_rng_seed(&r, 7);
    cr_assert_eq(dnic_copy_generate(&r, 3, 2, 0, 2, x, y), 0);
    digits(buf, x, 20);
    cr_expect_str_eq(buf, "10100000000100000000");
    digits(buf, x + 20, 20);
    cr_expect_str_eq(buf, "01101000000100000000");
    digits(buf, y, 6);
    cr_expect_str_eq(buf, "101000");
    digits(buf, y + 6, 6);
    cr_expect_str_eq(buf, "011100");
    cr_expect_float_eq(dnic_rng_rand(&r), 0.3809411331485384, 1e-16);
}

/* np.random.seed(7): one Repeat Copy example of bits = 2, length = 2, repeats = 2: the count in
   the delimiter step, the vectors twice, then the end marker */
Test(copytask, repeat_copy_seed7)
{
    dnic_copy_shape s;
    cr_assert_eq(dnic_copy_shape_of(2, 2, 2, &s), 0);
    cr_expect_eq(s.steps, 8);
    cr_expect_eq(s.step_inputs, 4);
    cr_expect_eq(s.outputs, 5);
    cr_expect_eq(s.step_labels, 3);
    double x[32], y[15];
    char buf[64];
    dnic_rng r;
    dnic_rng_seed(&r, 7);
    cr_assert_eq(dnic_copy_generate(&r, 2, 2, 2, 1, x, y), 0);
    digits(buf, x, 32);
    cr_expect_str_eq(buf, "10001000001200000000000000000000");
    digits(buf, y, 15);
    cr_expect_str_eq(buf, "100100100100001");
    cr_expect_float_eq(dnic_rng_rand(&r), 0.9779895119966027, 1e-16);
}

Test(copytask, bad_arguments_draw_nothing)
{
    dnic_copy_shape s;
    double x[8], y[8];
    dnic_rng r, r0;
    dnic_rng_seed(&r, 1);
    r0 = r;
    cr_expect_eq(dnic_copy_shape_of(0, 2, 0, &s), -1);
    cr_expect_eq(dnic_copy_shape_of(65, 2, 0, &s), -1);
    cr_expect_eq(dnic_copy_shape_of(8, 0, 0, &s), -1);
    cr_expect_eq(dnic_copy_shape_of(8, 1001, 0, &s), -1);
    cr_expect_eq(dnic_copy_shape_of(8, 2, 101, &s), -1);
    cr_expect_eq(dnic_copy_shape_of(8, 2, -1, &s), -1);
    cr_expect_eq(dnic_copy_shape_of(8, 2, 0, NULL), -1);
    cr_expect_eq(dnic_copy_generate(&r, 1, 1, 0, 0, x, y), -1);
    cr_expect_eq(dnic_copy_generate(NULL, 1, 1, 0, 1, x, y), -1);
    cr_expect_eq(dnic_copy_generate(&r, 1, 1, 0, 1, NULL, y), -1);
    cr_expect_eq(dnic_copy_generate(&r, 1, 1, 0, 1, x, NULL), -1);
    cr_expect_eq(memcmp(&r, &r0, sizeof r), 0);
}
