/* IDX and CSV loading: exact values (scaled, one-hot, float32 and float64) from small files
 * written here, plain and gzipped; every malformed or hostile file rejected with a message
 * naming the file and the place; and, when the Debian package dataset-fashion-mnist is
 * installed, the real Fashion-MNIST training set. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include "dataset_files.h"

/* ASan maps terabytes of shadow memory, so an address-space limit cannot be used under it */
#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dnic-df-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

/* dir/name; four live at a time. */
static const char *path(const char *name)
{
    static char buf[4][160];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", dir, name);
    return buf[k];
}

static void put(const char *p, const void *data, size_t n)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    if (n)
        cr_assert_eq(fwrite(data, 1, n, f), n);
    cr_assert_eq(fclose(f), 0);
}

static void put_gz(const char *p, const void *data, size_t n)
{
    gzFile g = gzopen(p, "wb");
    cr_assert_not_null(g);
    if (n)
        cr_assert_eq(gzwrite(g, data, (unsigned)n), (int)n);
    cr_assert_eq(gzclose(g), Z_OK);
}

static void put_str(const char *p, const char *s)
{
    put(p, s, strlen(s));
}

/* Bytes of a whole file. */
static unsigned char *slurp(const char *p, size_t *n)
{
    FILE *f = fopen(p, "rb");
    cr_assert_not_null(f);
    static unsigned char buf[1 << 18];
    *n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    return buf;
}

/* An IDX file in memory: magic 00 00 type ndims, big-endian dims, then `data` (raw bytes). */
typedef struct idxbuf {
    unsigned char b[4096];
    size_t n;
} idxbuf;

static idxbuf idx_make(int type, int ndims, const uint32_t *dims, const void *data, size_t ndata)
{
    idxbuf x = {{0, 0, (unsigned char)type, (unsigned char)ndims}, 4};
    for (int i = 0; i < ndims; i++)
        for (int b = 3; b >= 0; b--)
            x.b[x.n++] = (unsigned char)(dims[i] >> (8 * b));
    cr_assert_leq(x.n + ndata, sizeof x.b);
    if (ndata)
        memcpy(x.b + x.n, data, ndata);
    x.n += ndata;
    return x;
}

static void put_idx(const char *p, idxbuf x)
{
    put(p, x.b, x.n);
}

static void be32put(unsigned char *p, uint32_t v)
{
    for (int b = 0; b < 4; b++)
        p[b] = (unsigned char)(v >> (24 - 8 * b));
}

/* The standard small pair: 3 images of 2x2 ubyte pixels, labels 0 2 1. */
static const unsigned char PIX[12] = {0, 1, 2, 255, 10, 20, 30, 40, 128, 64, 32, 16};
static const unsigned char LAB[3] = {0, 2, 1};
static const uint32_t IMG_DIMS[3] = {3, 2, 2}, LAB_DIMS[1] = {3};

static void put_pair(const char *images, const char *labels, bool gz)
{
    idxbuf im = idx_make(8, 3, IMG_DIMS, PIX, sizeof PIX), lb = idx_make(8, 1, LAB_DIMS, LAB, sizeof LAB);
    if (gz) {
        put_gz(images, im.b, im.n);
        put_gz(labels, lb.b, lb.n);
    } else {
        put_idx(images, im);
        put_idx(labels, lb);
    }
}

static dnic_data_opts opts(double scale, int one_hot, int inputs, int labels, dnic_dtype t)
{
    return (dnic_data_opts){.scale = scale, .one_hot = one_hot, .inputs = inputs, .labels = labels, .dtype = t};
}

static double at(const dnic_dataset *d, const void *buf, size_t i)
{
    return d->dtype == DNIC_F64 ? ((const double *)buf)[i] : (double)((const float *)buf)[i];
}

/* The small pair, loaded with scale 0.5 and one_hot 3: every value. */
static void check_pair(const dnic_dataset *d, dnic_dtype t)
{
    cr_assert_eq(d->n, 3);
    cr_assert_eq(d->inputs, 4);
    cr_assert_eq(d->labels, 3);
    cr_assert_eq(d->dtype, t);
    for (int i = 0; i < 12; i++)
        cr_assert_eq(at(d, d->x, (size_t)i), PIX[i] * 0.5, "x[%d] = %g", i, at(d, d->x, (size_t)i));
    for (int r = 0; r < 3; r++)
        for (int c = 0; c < 3; c++)
            cr_assert_eq(at(d, d->y, (size_t)(r * 3 + c)), c == LAB[r] ? 1.0 : 0.0, "y[%d][%d]", r, c);
}

static void expect_idx(const char *images, const char *labels, dnic_data_opts o, const char *want)
{
    dnic_dataset d;
    char err[512] = "";
    cr_assert_neq(dnic_load_idx(&d, images, labels, &o, err, sizeof err), DNIC_OK, "accepted; wanted '%s'", want);
    cr_assert_str_eq(err, want);
    cr_assert_null(d.x);
    cr_assert_null(d.y);
}

static void expect_csv(const char *p, dnic_data_opts o, const char *want)
{
    dnic_dataset d;
    char err[512] = "";
    cr_assert_neq(dnic_load_csv(&d, p, &o, err, sizeof err), DNIC_OK, "accepted; wanted '%s'", want);
    cr_assert_str_eq(err, want);
    cr_assert_null(d.x);
    cr_assert_null(d.y);
}

/* want is a printf format with one %s (or two) for the path(s) */
#define WANT(buf, ...) snprintf(buf, sizeof buf, __VA_ARGS__)

TestSuite(idx, .init = setup, .fini = teardown);
TestSuite(csv, .init = setup, .fini = teardown);

/* ---- IDX: good files ---------------------------------------------------------------------- */

Test(idx, ubyte_pair_plain_float32)
{
    put_pair(path("im"), path("lb"), false);
    dnic_data_opts o = opts(0.5, 3, 4, 3, DNIC_F32);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("im"), path("lb"), &o, err, sizeof err), DNIC_OK, "%s", err);
    check_pair(&d, DNIC_F32);
    dnic_dataset_free(&d);
}

Test(idx, ubyte_pair_gzip_float64)
{
    put_pair(path("im.gz"), path("lb.gz"), true);
    size_t n;
    const unsigned char *b = slurp(path("im.gz"), &n);
    cr_assert(n > 2 && b[0] == 0x1f && b[1] == 0x8b, "the test wrote gzip");
    dnic_data_opts o = opts(0.5, 3, 4, 3, DNIC_F64);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("im.gz"), path("lb.gz"), &o, err, sizeof err), DNIC_OK, "%s", err);
    check_pair(&d, DNIC_F64);
    dnic_dataset_free(&d);
}

Test(idx, gzip_is_told_by_magic_not_name)
{
    /* gzip named .idx and plain named .gz, mixed in one pair */
    idxbuf im = idx_make(8, 3, IMG_DIMS, PIX, sizeof PIX), lb = idx_make(8, 1, LAB_DIMS, LAB, sizeof LAB);
    put_gz(path("images.idx"), im.b, im.n);
    put_idx(path("labels.gz"), lb);
    dnic_data_opts o = opts(0.5, 3, 4, 3, DNIC_F32);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("images.idx"), path("labels.gz"), &o, err, sizeof err), DNIC_OK, "%s", err);
    check_pair(&d, DNIC_F32);
    dnic_dataset_free(&d);
}

Test(idx, float_images_and_2d_double_labels)
{
    /* 2 images of 3 big-endian float32 values; labels [2,2] float64 used as values */
    const float xs[6] = {1.5f, -2.25f, 0, 1e-3f, 3e38f, -0.5f};
    const double ys[4] = {0.25, -1, 1e300, 7};
    unsigned char raw[24], rawy[32];
    for (int i = 0; i < 6; i++) {
        uint32_t u;
        memcpy(&u, &xs[i], 4);
        be32put(raw + 4 * i, u);
    }
    for (int i = 0; i < 4; i++) {
        uint64_t u;
        memcpy(&u, &ys[i], 8);
        be32put(rawy + 8 * i, (uint32_t)(u >> 32));
        be32put(rawy + 8 * i + 4, (uint32_t)u);
    }
    const uint32_t di[2] = {2, 3}, dl[2] = {2, 2};
    put_idx(path("f.im"), idx_make(0x0D, 2, di, raw, sizeof raw));
    put_idx(path("f.lb"), idx_make(0x0E, 2, dl, rawy, sizeof rawy));
    dnic_data_opts o = opts(2, 0, 3, 2, DNIC_F64);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("f.im"), path("f.lb"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.inputs, 3);
    cr_assert_eq(d.labels, 2);
    for (int i = 0; i < 6; i++)
        cr_assert_eq(((double *)d.x)[i], (double)xs[i] * 2, "x[%d]", i);
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((double *)d.y)[i], ys[i], "y[%d]", i);
    dnic_dataset_free(&d);

    /* in float32, 3e38 scaled by 2 does not fit... */
    o.dtype = DNIC_F32;
    char want[512];
    WANT(want, "%s: value 3.0000000054977558e+38 at image 1, element 1, times scale 2 is not finite in float32",
         path("f.im"));
    expect_idx(path("f.im"), path("f.lb"), o, want);
    /* ...nor does the label 1e300 */
    be32put(raw + 4 * 4, 0x3F800000); /* 1.0f */
    put_idx(path("f.im"), idx_make(0x0D, 2, di, raw, sizeof raw));
    WANT(want, "%s: value 1.0000000000000001e+300 at label 1, element 0 is not finite in float32", path("f.lb"));
    expect_idx(path("f.im"), path("f.lb"), o, want);
}

Test(idx, signed_short_and_int_types)
{
    const unsigned char sb[4] = {0x00, 0x7F, 0x80, 0xFF};                    /* 0 127 -128 -1 */
    const unsigned char sh[8] = {0x00, 0x01, 0x7F, 0xFF, 0x80, 0x00, 0xFF, 0xFE}; /* 1 32767 -32768 -2 */
    const unsigned char in[16] = {0, 0, 0, 5, 0x7F, 0xFF, 0xFF, 0xFF, 0x80, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFD};
    const double want[3][4] = {{0, 127, -128, -1}, {1, 32767, -32768, -2}, {5, 2147483647.0, -2147483648.0, -3}};
    const uint32_t di[2] = {2, 2}, dl[1] = {2};
    const unsigned char lab[2] = {1, 0};
    put_idx(path("l"), idx_make(8, 1, dl, lab, 2));
    const int types[3] = {0x09, 0x0B, 0x0C};
    const unsigned char *data[3] = {sb, sh, in};
    const size_t sizes[3] = {4, 8, 16};
    for (int t = 0; t < 3; t++) {
        put_idx(path("i"), idx_make(types[t], 2, di, data[t], sizes[t]));
        dnic_data_opts o = opts(1, 2, 2, 2, DNIC_F64);
        dnic_dataset d;
        char err[512] = "";
        cr_assert_eq(dnic_load_idx(&d, path("i"), path("l"), &o, err, sizeof err), DNIC_OK, "%s", err);
        for (int i = 0; i < 4; i++)
            cr_assert_eq(((double *)d.x)[i], want[t][i], "type %#x x[%d] = %g", types[t], i, ((double *)d.x)[i]);
        cr_assert_eq(((double *)d.y)[0], 0);
        cr_assert_eq(((double *)d.y)[1], 1);
        cr_assert_eq(((double *)d.y)[2], 1);
        cr_assert_eq(((double *)d.y)[3], 0);
        dnic_dataset_free(&d);
    }
}

Test(idx, one_dimensional_images_and_unchecked_widths)
{
    const uint32_t dn[1] = {3};
    const unsigned char v[3] = {7, 8, 9};
    put_idx(path("i"), idx_make(8, 1, dn, v, 3));
    put_idx(path("l"), idx_make(8, 1, dn, v, 3));
    dnic_data_opts o = opts(1, 0, 1, 1, DNIC_F32);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("i"), path("l"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.inputs, 1);
    cr_assert_eq(d.labels, 1);
    cr_assert_eq(((float *)d.x)[2], 9.0f);
    cr_assert_eq(((float *)d.y)[1], 8.0f);
    dnic_dataset_free(&d);
    /* widths 0: whatever the files hold */
    put_pair(path("im"), path("lb"), false);
    o = opts(1, 0, 0, 0, DNIC_F32);
    cr_assert_eq(dnic_load_idx(&d, path("im"), path("lb"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.inputs, 4);
    cr_assert_eq(d.labels, 1);
    cr_assert_eq(((float *)d.y)[1], 2.0f);
    dnic_dataset_free(&d);
}

/* keep_bytes: a ubyte file stays bytes, and its rows read through dnic_dataset_rows are, bit
 * for bit, the values the converting load gives (and byte * scale computed here in float64);
 * other types are converted as before; a scale that overflows is refused all the same. */
Test(idx, keep_bytes)
{
    unsigned char pix[16 * 20];
    for (int i = 0; i < 16 * 20; i++)
        pix[i] = (unsigned char)(i < 256 ? i : (i * 37) % 256); /* every byte value */
    const uint32_t di[2] = {20, 16}, dl[1] = {20};
    unsigned char lab[20];
    for (int i = 0; i < 20; i++)
        lab[i] = (unsigned char)(i % 3);
    idxbuf im = idx_make(8, 2, di, pix, sizeof pix);
    put_gz(path("b.gz"), im.b, im.n);
    put_idx(path("l"), idx_make(8, 1, dl, lab, sizeof lab));
    const double scales[3] = {1.0 / 255, 0.1, -3.7e-3};
    const int rows[5] = {19, 0, 7, 7, 12};
    for (int t = 0; t < 2; t++)
        for (int k = 0; k < 3; k++) {
            dnic_dtype dt = t ? DNIC_F64 : DNIC_F32;
            dnic_data_opts o = opts(scales[k], 3, 16, 3, dt);
            dnic_dataset full, bytes;
            char err[512] = "";
            cr_assert_eq(dnic_load_idx(&full, path("b.gz"), path("l"), &o, err, sizeof err), DNIC_OK, "%s", err);
            o.keep_bytes = true;
            cr_assert_eq(dnic_load_idx(&bytes, path("b.gz"), path("l"), &o, err, sizeof err), DNIC_OK, "%s", err);
            cr_assert(!full.x_bytes && bytes.x_bytes);
            cr_assert_eq(bytes.x_scale, scales[k]);
            cr_assert_eq(dnic_dataset_x_size(&bytes), 1);
            cr_assert_eq(dnic_dataset_x_size(&full), dnic_dtype_size(dt));
            cr_assert_eq(memcmp(bytes.x, pix, sizeof pix), 0, "the bytes as stored");
            cr_assert_eq(memcmp(bytes.y, full.y, 20 * 3 * dnic_dtype_size(dt)), 0);
            size_t es = dnic_dtype_size(dt), row = 16 * es;
            unsigned char *a = malloc(20 * row), *b = malloc(20 * row);
            cr_assert(a && b);
            dnic_dataset_rows(&bytes, a, NULL, 0, 20);
            cr_assert_eq(memcmp(a, full.x, 20 * row), 0, "all rows, dtype %d, scale %g", t, scales[k]);
            for (int i = 0; i < 16 * 20; i++) {
                double v = (double)pix[i] * scales[k];
                cr_assert(t ? ((double *)a)[i] == v : ((float *)a)[i] == (float)v, "value %d", i);
            }
            dnic_dataset_rows(&bytes, a, rows, 0, 5);
            dnic_dataset_rows(&full, b, rows, 0, 5);
            cr_assert_eq(memcmp(a, b, 5 * row), 0, "gathered rows");
            dnic_dataset_rows(&bytes, a, NULL, 3, 4);
            cr_assert_eq(memcmp(a, (char *)full.x + 3 * row, 4 * row), 0, "rows 3 to 6");
            free(a);
            free(b);
            dnic_dataset_free(&full);
            dnic_dataset_free(&bytes);
        }
    /* signed bytes are not kept as bytes: converted as always */
    put_idx(path("s"), idx_make(9, 2, di, pix, sizeof pix));
    dnic_data_opts o = opts(1, 3, 16, 3, DNIC_F32);
    o.keep_bytes = true;
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("s"), path("l"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert(!d.x_bytes);
    cr_assert_eq(((float *)d.x)[255], -1.0f);
    dnic_dataset_free(&d);
    /* a scale that takes a pixel past float32 is refused as without keep_bytes */
    o = opts(2e36, 3, 16, 3, DNIC_F32);
    o.keep_bytes = true;
    char want[512];
    WANT(want, "%s: value 171 at image 10, element 11, times scale 2e+36 is not finite in float32", path("b.gz"));
    expect_idx(path("b.gz"), path("l"), o, want);
}

/* ---- IDX: bad files ----------------------------------------------------------------------- */

Test(idx, wrong_magic)
{
    char want[512];
    dnic_data_opts o = opts(1, 3, 4, 3, DNIC_F32);
    put_pair(path("im"), path("lb"), false);
    /* the labels given as images, and the images as labels */
    WANT(want,
         "%s: wrong magic 0x00000801 (expected 0x00000803 for images: a 1-dimension file is 1 wide but the model "
         "declares inputs = 4)",
         path("lb"));
    expect_idx(path("lb"), path("lb"), o, want);
    WANT(want, "%s: wrong magic 0x00000803 (expected 0x00000801 for labels: 1 dimension, or 2 when one_hot is 0)",
         path("im"));
    expect_idx(path("im"), path("im"), o, want);
    /* 2-D labels with one_hot */
    const uint32_t d2[2] = {3, 1};
    put_idx(path("l2"), idx_make(8, 2, d2, LAB, 3));
    WANT(want,
         "%s: wrong magic 0x00000802 (expected 0x00000801 for labels: with one_hot = 3 a label is one class number, "
         "so the file has 1 dimension)",
         path("l2"));
    expect_idx(path("im"), path("l2"), o, want);
    /* bad bytes, an unknown type, no dimensions */
    idxbuf x = idx_make(8, 3, IMG_DIMS, PIX, sizeof PIX);
    x.b[0] = 1;
    put_idx(path("bad"), x);
    WANT(want,
         "%s: wrong magic 0x01000803 (expected 0x00000803 for images: 2 zero bytes, a type 0x08, 0x09, 0x0B, 0x0C, "
         "0x0D or 0x0E and 1 or more dimensions)",
         path("bad"));
    expect_idx(path("bad"), path("lb"), o, want);
    x.b[0] = 0;
    x.b[2] = 0x0A;
    put_idx(path("bad"), x);
    WANT(want,
         "%s: wrong magic 0x00000A03 (expected 0x00000803 for images: 2 zero bytes, a type 0x08, 0x09, 0x0B, 0x0C, "
         "0x0D or 0x0E and 1 or more dimensions)",
         path("bad"));
    expect_idx(path("bad"), path("lb"), o, want);
    put(path("bad"), "\0\0\x08\0", 4);
    WANT(want,
         "%s: wrong magic 0x00000800 (expected 0x00000801 for labels: 2 zero bytes, a type 0x08, 0x09, 0x0B, 0x0C, "
         "0x0D or 0x0E and 1 dimension, or 2 when one_hot is 0)",
         path("bad"));
    expect_idx(path("im"), path("bad"), o, want);
    /* text is not IDX either */
    put_str(path("bad"), "label,x\n1,2\n");
    WANT(want,
         "%s: wrong magic 0x6C616265 (expected 0x00000803 for images: 2 zero bytes, a type 0x08, 0x09, 0x0B, 0x0C, "
         "0x0D or 0x0E and 1 or more dimensions)",
         path("bad"));
    expect_idx(path("bad"), path("lb"), o, want);
}

Test(idx, truncated_headers)
{
    char want[512];
    dnic_data_opts o = opts(1, 3, 4, 3, DNIC_F32);
    put_pair(path("im"), path("lb"), false);
    put(path("e"), "", 0);
    WANT(want, "%s: truncated: 0 bytes, shorter than the 4-byte magic number", path("e"));
    expect_idx(path("e"), path("lb"), o, want);
    put(path("e"), "\0\0", 2);
    WANT(want, "%s: truncated: 2 bytes, shorter than the 4-byte magic number", path("e"));
    expect_idx(path("e"), path("lb"), o, want);
    idxbuf x = idx_make(8, 3, IMG_DIMS, NULL, 0);
    put(path("h"), x.b, x.n - 5);
    WANT(want, "%s: truncated header: 1 of its 3 dimensions", path("h"));
    expect_idx(path("h"), path("lb"), o, want);
    put_gz(path("h.gz"), x.b, x.n - 1);
    WANT(want, "%s: truncated header: 2 of its 3 dimensions", path("h.gz"));
    expect_idx(path("h.gz"), path("lb"), o, want);
}

Test(idx, truncated_and_overlong_data)
{
    char want[512];
    dnic_data_opts o = opts(1, 3, 4, 3, DNIC_F32);
    put_pair(path("im"), path("lb"), false);
    idxbuf x = idx_make(8, 3, IMG_DIMS, PIX, sizeof PIX);
    /* plain: told by the file's length before reading */
    put(path("t"), x.b, x.n - 5);
    WANT(want, "%s: truncated at image 1 of 3", path("t"));
    expect_idx(path("t"), path("lb"), o, want);
    /* gzip: found while streaming */
    put_gz(path("t.gz"), x.b, x.n - 5);
    WANT(want, "%s: truncated at image 1 of 3", path("t.gz"));
    expect_idx(path("t.gz"), path("lb"), o, want);
    put_gz(path("t.gz"), x.b, x.n - 12);
    WANT(want, "%s: truncated at image 0 of 3", path("t.gz"));
    expect_idx(path("t.gz"), path("lb"), o, want);
    /* the compressed stream itself cut short */
    size_t n;
    put_gz(path("full.gz"), x.b, x.n);
    unsigned char *b = slurp(path("full.gz"), &n);
    put(path("cut.gz"), b, n - 8 - 6);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_neq(dnic_load_idx(&d, path("cut.gz"), path("lb"), &o, err, sizeof err), DNIC_OK);
    WANT(want, "%s: truncated at image ", path("cut.gz"));
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
    /* labels short */
    idxbuf l = idx_make(8, 1, LAB_DIMS, LAB, 2);
    put_idx(path("l"), l);
    WANT(want, "%s: truncated at label 2 of 3", path("l"));
    expect_idx(path("im"), path("l"), o, want);
    put_gz(path("l.gz"), l.b, l.n);
    WANT(want, "%s: truncated at label 2 of 3", path("l.gz"));
    expect_idx(path("im"), path("l.gz"), o, want);
    /* bytes after the data */
    unsigned char more[64];
    memcpy(more, x.b, x.n);
    memcpy(more + x.n, "xyz", 3);
    put(path("m"), more, x.n + 3);
    WANT(want, "%s: 3 bytes after the 3 images the header declares", path("m"));
    expect_idx(path("m"), path("lb"), o, want);
    put_gz(path("m.gz"), more, x.n + 1);
    WANT(want, "%s: more data after the 3 images the header declares", path("m.gz"));
    expect_idx(path("m.gz"), path("lb"), o, want);
}

Test(idx, corrupt_gzip)
{
    char want[512];
    dnic_data_opts o = opts(1, 3, 4, 3, DNIC_F32);
    put_pair(path("im"), path("lb"), false);
    idxbuf x = idx_make(8, 3, IMG_DIMS, PIX, sizeof PIX);
    put_gz(path("g.gz"), x.b, x.n);
    size_t n;
    unsigned char *b = slurp(path("g.gz"), &n);
    b[n - 8] ^= 0xFF; /* the CRC-32 in the trailer */
    put(path("g.gz"), b, n);
    /* a small stream is inflated whole on the first read, so the check fails there */
    WANT(want, "%s: corrupt gzip data: the CRC-32 in its trailer does not match the data (reading the header)", path("g.gz"));
    expect_idx(path("g.gz"), path("lb"), o, want);
    /* a big one fails where the reader is when the trailer is reached */
    const uint32_t dims[2] = {4000, 784};
    unsigned char *pix = malloc(4000 * 784 + 64);
    for (size_t i = 0; i < 4000 * 784; i++)
        pix[i] = (unsigned char)(i * 2654435761u >> 24);
    idxbuf h = idx_make(8, 2, dims, NULL, 0);
    gzFile g = gzopen(path("big.gz"), "wb");
    gzwrite(g, h.b, (unsigned)h.n);
    gzwrite(g, pix, 4000 * 784);
    gzclose(g);
    FILE *f = fopen(path("big.gz"), "r+b");
    fseek(f, -8, SEEK_END);
    fputc(0, f);
    fputc(0, f);
    fclose(f);
    free(pix);
    dnic_dataset d;
    char err[512] = "";
    o = opts(1, 0, 0, 0, DNIC_F32);
    cr_assert_neq(dnic_load_idx(&d, path("big.gz"), path("big.gz"), &o, err, sizeof err), DNIC_OK);
    WANT(want, "%s: corrupt gzip data: the CRC-32 in its trailer does not match the data at image ", path("big.gz"));
    cr_assert_eq(strncmp(err, want, strlen(want)), 0, "%s", err);
    cr_assert(strstr(err, " of 4000"), "%s", err);
    /* a stored block with a wrong length check: 0x01 then LEN, NLEN that disagree */
    unsigned char bad[32] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3, 0x01, 0x05, 0x00, 0x00, 0x00};
    put(path("s.gz"), bad, 20);
    WANT(want, "%s: corrupt gzip data (invalid stored block lengths) by compressed byte 15 (reading the header)", path("s.gz"));
    expect_idx(path("s.gz"), path("lb"), o, want);
}

Test(idx, counts_and_widths_disagree)
{
    char want[512];
    put_pair(path("im"), path("lb"), false);
    const uint32_t two[1] = {2};
    put_idx(path("l2"), idx_make(8, 1, two, LAB, 2));
    WANT(want, "%s: 3 images but %s has 2 labels", path("im"), path("l2"));
    expect_idx(path("im"), path("l2"), opts(1, 3, 4, 3, DNIC_F32), want);
    WANT(want, "%s: images are 4 wide but the model declares inputs = 3", path("im"));
    expect_idx(path("im"), path("lb"), opts(1, 3, 3, 3, DNIC_F32), want);
    WANT(want, "%s: one_hot = 3 gives 3 labels but the model declares labels = 4", path("lb"));
    expect_idx(path("im"), path("lb"), opts(1, 3, 4, 4, DNIC_F32), want);
    WANT(want, "%s: labels are 1 wide but the model declares labels = 3", path("lb"));
    expect_idx(path("im"), path("lb"), opts(1, 0, 4, 3, DNIC_F32), want);
    const uint32_t d2[2] = {3, 2};
    const unsigned char v[6] = {0};
    put_idx(path("l32"), idx_make(8, 2, d2, v, 6));
    WANT(want, "%s: labels are 2 wide but the model declares labels = 3", path("l32"));
    expect_idx(path("im"), path("l32"), opts(1, 0, 4, 3, DNIC_F32), want);
}

Test(idx, labels_out_of_range)
{
    char want[512];
    put_pair(path("im"), path("lb"), false);
    /* class 11 at record 57 of 60 (a 1-wide image set) */
    unsigned char lab[60] = {0}, pix[60] = {0};
    lab[57] = 11;
    const uint32_t d[1] = {60};
    put_idx(path("i60"), idx_make(8, 1, d, pix, 60));
    put_idx(path("l60"), idx_make(8, 1, d, lab, 60));
    WANT(want, "%s: label 11 at record 57 is out of range for one_hot = 10", path("l60"));
    expect_idx(path("i60"), path("l60"), opts(1, 10, 1, 10, DNIC_F32), want);
    put_idx(path("l"), idx_make(8, 1, LAB_DIMS, LAB, 3));
    WANT(want, "%s: label 2 at record 1 is out of range for one_hot = 2", path("l"));
    expect_idx(path("im"), path("l"), opts(1, 2, 4, 2, DNIC_F32), want);
    /* negative (signed byte) and fractional (float) class numbers */
    const unsigned char neg[3] = {0, 0xFF, 0};
    put_idx(path("n"), idx_make(9, 1, LAB_DIMS, neg, 3));
    WANT(want, "%s: label -1 at record 1 is out of range for one_hot = 3", path("n"));
    expect_idx(path("im"), path("n"), opts(1, 3, 4, 3, DNIC_F32), want);
    unsigned char fl[12] = {0};
    be32put(fl + 8, 0x40200000); /* 2.5f */
    put_idx(path("f"), idx_make(0x0D, 1, LAB_DIMS, fl, 12));
    WANT(want, "%s: label 2.5 at record 2 is not a class number for one_hot = 3", path("f"));
    expect_idx(path("im"), path("f"), opts(1, 3, 4, 3, DNIC_F32), want);
    be32put(fl + 8, 0x7FC00000); /* NaN */
    put_idx(path("f"), idx_make(0x0D, 1, LAB_DIMS, fl, 12));
    WANT(want, "%s: label nan at record 2 is not a class number for one_hot = 3", path("f"));
    expect_idx(path("im"), path("f"), opts(1, 3, 4, 3, DNIC_F32), want);
    be32put(fl + 8, 0x40000000); /* 2.0f is a class */
    put_idx(path("f"), idx_make(0x0D, 1, LAB_DIMS, fl, 12));
    dnic_data_opts o = opts(1, 3, 4, 3, DNIC_F32);
    dnic_dataset ds;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&ds, path("im"), path("f"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(((float *)ds.y)[8], 1.0f);
    dnic_dataset_free(&ds);
}

Test(idx, nonfinite_values)
{
    char want[512];
    put_pair(path("im"), path("lb"), false);
    unsigned char raw[48] = {0};
    be32put(raw + 4 * 6, 0x7F800000); /* +inf at image 1, element 2 */
    put_idx(path("f"), idx_make(0x0D, 3, IMG_DIMS, raw, 48));
    WANT(want, "%s: value inf at image 1, element 2 is not finite in float64", path("f"));
    expect_idx(path("f"), path("lb"), opts(1, 3, 4, 3, DNIC_F64), want);
}

Test(idx, hostile_dimensions)
{
    char want[512];
    dnic_data_opts o = opts(1, 3, 0, 3, DNIC_F32);
    put_pair(path("im"), path("lb"), false);
    const uint32_t huge[3] = {4294967295u, 4294967295u, 4294967295u};
    put_idx(path("h"), idx_make(8, 3, huge, NULL, 0));
    WANT(want,
         "%s: the dimensions 4294967295 x 4294967295 x 4294967295 hold more than the 2147483647 values dnic reads from "
         "a file",
         path("h"));
    expect_idx(path("h"), path("lb"), o, want);
    const uint32_t over[2] = {65536, 32768};
    put_idx(path("h"), idx_make(8, 2, over, NULL, 0));
    WANT(want, "%s: the dimensions 65536 x 32768 hold more than the 2147483647 values dnic reads from a file",
         path("h"));
    expect_idx(path("h"), path("lb"), o, want);
    uint32_t many[40];
    for (int i = 0; i < 40; i++)
        many[i] = 2;
    put_idx(path("h"), idx_make(8, 40, many, NULL, 0));
    char list[256] = "";
    for (int i = 0; i < 31; i++)
        strcat(list, "2 x ");
    WANT(want, "%s: the dimensions %s... hold more than the 2147483647 values dnic reads from a file", path("h"), list);
    expect_idx(path("h"), path("lb"), o, want);
    /* 10^9 labels are fine, but not one-hot over 3 classes; told before any data is read */
    const uint32_t giga[1] = {1000000000u};
    idxbuf g = idx_make(8, 1, giga, "\1\2", 2);
    put_gz(path("g1.gz"), g.b, g.n);
    WANT(want, "%s: 1000000000 labels one-hot over 3 classes are more than 2147483647 values", path("g1.gz"));
    expect_idx(path("g1.gz"), path("g1.gz"), opts(1, 3, 1, 3, DNIC_F32), want);
    const uint32_t zero[3] = {0, 28, 28}, zw[3] = {3, 0, 28};
    put_idx(path("h"), idx_make(8, 3, zero, NULL, 0));
    WANT(want, "%s: the file holds no images (dimension 0 is 0)", path("h"));
    expect_idx(path("h"), path("lb"), o, want);
    put_idx(path("h"), idx_make(8, 3, zw, NULL, 0));
    WANT(want, "%s: images are 0 wide (a dimension is 0)", path("h"));
    expect_idx(path("h"), path("lb"), o, want);
    /* a tiny file claiming 2^31 - 1 doubles (16 GiB): refused from its length, or while streaming */
    const uint32_t most[1] = {2147483647u};
    idxbuf x = idx_make(0x0E, 1, most, "12345678abcdefgh", 16);
    put_idx(path("big"), x);
    put_gz(path("big.gz"), x.b, x.n);
    o = opts(1, 0, 0, 0, DNIC_F64);
#ifndef UNDER_ASAN
    /* a 1 GiB address space proves that no big allocation is made */
    struct rlimit rl = {(rlim_t)1 << 30, (rlim_t)1 << 30};
    cr_assert_eq(setrlimit(RLIMIT_AS, &rl), 0);
#endif
    WANT(want, "%s: truncated at image 2 of 2147483647", path("big"));
    expect_idx(path("big"), path("big"), o, want);
    WANT(want, "%s: truncated at image 2 of 2147483647", path("big.gz"));
    expect_idx(path("big.gz"), path("big.gz"), o, want);
}

Test(idx, files_that_are_not_there)
{
    char want[512];
    put_pair(path("im"), path("lb"), false);
    WANT(want, "cannot open '%s': No such file or directory", path("nope"));
    expect_idx(path("nope"), path("lb"), opts(1, 3, 4, 3, DNIC_F32), want);
    WANT(want, "%s: not a regular file", dir);
    expect_idx(path("im"), dir, opts(1, 3, 4, 3, DNIC_F32), want);
    dnic_data_opts o = opts(1, -1, 4, 3, DNIC_F32);
    dnic_dataset d;
    char err[64];
    cr_assert_eq(dnic_load_idx(&d, path("im"), path("lb"), &o, err, sizeof err), DNIC_ERR_ARG);
}

/* ---- CSV: good files ---------------------------------------------------------------------- */

static dnic_data_opts csv_opts(const char *col, int index, double scale, int one_hot, int inputs, int labels,
                               dnic_dtype t)
{
    return (dnic_data_opts){.scale = scale, .one_hot = one_hot, .inputs = inputs, .labels = labels, .dtype = t,
                            .label_column = col, .label_index = index};
}

/* The small table every good CSV test loads: inputs a b c, a class 0..2, scale 2. */
static void check_table(const dnic_dataset *d)
{
    static const double x[3][3] = {{2, 4, 6}, {-1, 0.5, 2e3}, {0, 0, 0.25}};
    static const int y[3] = {2, 0, 1};
    cr_assert_eq(d->n, 3);
    cr_assert_eq(d->inputs, 3);
    cr_assert_eq(d->labels, 3);
    for (int r = 0; r < 3; r++) {
        for (int c = 0; c < 3; c++)
            cr_assert_eq(at(d, d->x, (size_t)(r * 3 + c)), x[r][c], "x[%d][%d] = %g", r, c,
                         at(d, d->x, (size_t)(r * 3 + c)));
        for (int c = 0; c < 3; c++)
            cr_assert_eq(at(d, d->y, (size_t)(r * 3 + c)), c == y[r] ? 1.0 : 0.0, "y[%d][%d]", r, c);
    }
}

static void load_table(const char *text, dnic_data_opts o)
{
    put_str(path("t.csv"), text);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_csv(&d, path("t.csv"), &o, err, sizeof err), DNIC_OK, "%s", err);
    check_table(&d);
    dnic_dataset_free(&d);
}

Test(csv, label_by_name)
{
    load_table("a,species,b,c\n1,2,2,3\n-0.5,0,0.25,1e3\n0,1,0,0.125\n",
               csv_opts("species", 0, 2, 3, 3, 3, DNIC_F32));
    load_table("a,species,b,c\n1,2,2,3\n-0.5,0,0.25,1e3\n0,1,0,0.125\n",
               csv_opts("species", 0, 2, 3, 3, 3, DNIC_F64));
}

Test(csv, label_by_index)
{
    load_table("a,b,c,y\n1,2,3,2\n-0.5,0.25,1e3,0\n0,0,0.125,1\n", csv_opts(NULL, 3, 2, 3, 3, 3, DNIC_F64));
    load_table("y,a,b,c\n2,1,2,3\n0,-0.5,0.25,1e3\n1,0,0,0.125\n", csv_opts(NULL, 0, 2, 3, 0, 0, DNIC_F32));
}

Test(csv, crlf_spaces_and_trailing_empty_lines)
{
    load_table("a, b ,c,y\r\n1, 2 ,3,2\r\n -0.5,\t0.25,1e3 ,0\r\n0,0,0.125,1\r\n\r\n\n  \n",
               csv_opts("y", 0, 2, 3, 3, 3, DNIC_F32));
    /* no newline at the end at all */
    load_table("a,b,c,y\n1,2,3,2\n-0.5,0.25,1e3,0\n0,0,0.125,1", csv_opts("y", 0, 2, 3, 3, 3, DNIC_F32));
    /* a UTF-8 byte order mark before the header */
    load_table("\xEF\xBB\xBF" "y,a,b,c\n2,1,2,3\n0,-0.5,0.25,1e3\n1,0,0,0.125\n", csv_opts("y", 0, 2, 3, 3, 3, DNIC_F32));
}

Test(csv, quoted_header_and_cells)
{
    const char *t = "\"a, the first\",\"b \"\"2\"\"\",c,\"the \"\"label\"\"\"\n1,2,\"3\",2\n-0.5,0.25,1e3,0\n0,0,\" 0.125 \" ,\"1\"\n";
    load_table(t, csv_opts("the \"label\"", 0, 2, 3, 3, 3, DNIC_F32));
    char want[512];
    WANT(want, "%s: no column named 'b' (columns: a, the first, b \"2\", c, the \"label\")", path("t.csv"));
    expect_csv(path("t.csv"), csv_opts("b", 0, 2, 3, 3, 3, DNIC_F32), want);
}

Test(csv, labels_as_values_and_gzip)
{
    const char *t = "x1,x2,target\n1,2,0.5\n3,4,-7.25\n";
    put_gz(path("v.csv"), t, strlen(t));
    dnic_data_opts o = csv_opts("target", 0, 1, 0, 2, 1, DNIC_F64);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_csv(&d, path("v.csv"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.inputs, 2);
    cr_assert_eq(d.labels, 1);
    const double x[4] = {1, 2, 3, 4}, y[2] = {0.5, -7.25};
    for (int i = 0; i < 4; i++)
        cr_assert_eq(((double *)d.x)[i], x[i]);
    for (int i = 0; i < 2; i++)
        cr_assert_eq(((double *)d.y)[i], y[i]);
    dnic_dataset_free(&d);
}

Test(csv, many_rows_plain_and_gzip)
{
    /* enough rows to make the arrays (and, gzipped, the reader's text buffer) grow several times */
    char p[160];
    snprintf(p, sizeof p, "%s", path("big.csv"));
    FILE *f = fopen(p, "w");
    fprintf(f, "label,a,b\n");
    for (int i = 0; i < 5000; i++)
        fprintf(f, "%d,%d,%d.5\n", i % 7, i, -i);
    fclose(f);
    size_t n;
    unsigned char *b = slurp(p, &n);
    cr_assert_gt(n, 50000);
    /* the rows twice over, 130 kB, gzipped: the gzip reader's buffer grows */
    memcpy(b + n, b + 10, n - 10);
    put_gz(path("big.csv.gz"), b, 2 * n - 10);
    dnic_data_opts o = csv_opts("label", 0, 0.5, 7, 2, 7, DNIC_F32);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_csv(&d, path("big.csv.gz"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 10000);
    for (int i = 0; i < 10000; i++)
        cr_assert_eq(((float *)d.x)[2 * i], (float)(i % 5000 * 0.5));
    dnic_dataset_free(&d);
    /* the gzip trailer's check broken */
    FILE *g = fopen(path("big.csv.gz"), "r+b");
    fseek(g, -6, SEEK_END);
    fputc(0x55, g);
    fclose(g);
    char want[512];
    WANT(want, "%s: corrupt gzip data: the CRC-32 in its trailer does not match the data", path("big.csv.gz"));
    expect_csv(path("big.csv.gz"), o, want);
    cr_assert_eq(dnic_load_csv(&d, p, &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 5000);
    for (int i = 0; i < 5000; i++) {
        cr_assert_eq(((float *)d.x)[2 * i], (float)(i * 0.5));
        cr_assert_eq(((float *)d.x)[2 * i + 1], (float)((-i + (i ? -0.5 : 0.5)) * 0.5), "row %d", i);
        for (int c = 0; c < 7; c++)
            cr_assert_eq(((float *)d.y)[7 * i + c], c == i % 7 ? 1.0f : 0.0f);
    }
    dnic_dataset_free(&d);
}

/* ---- CSV: bad files ----------------------------------------------------------------------- */

/* Writes `text` to bad.csv and expects `fmt` (with the path for %s). */
static void bad_csv(const char *text, dnic_data_opts o, const char *fmt)
{
    char want[512];
    const char *p = path("bad.csv");
    put_str(p, text);
    snprintf(want, sizeof want, fmt, p);
    expect_csv(p, o, want);
}

Test(csv, bad_cells)
{
    dnic_data_opts o = csv_opts("y", 0, 1, 3, 2, 3, DNIC_F32);
    const char *head = "a,b,y\n";
    char t[512];
    /* 'abc' at row 17, column 2 */
    size_t n = (size_t)snprintf(t, sizeof t, "%s", head);
    for (int i = 2; i < 17; i++)
        n += (size_t)snprintf(t + n, sizeof t - n, "1,2,0\n");
    snprintf(t + n, sizeof t - n, "1,abc,0\n");
    bad_csv(t, o, "%s:17:2: 'abc' is not a number");
    bad_csv("a,b,y\n1,2,0\n4,5,\n", o, "%s:3:3: empty cell, expected a number");
    bad_csv("a,b,y\n1,2,0\n4, ,1\n", o, "%s:3:2: empty cell, expected a number");
    bad_csv("a,b,y\n1,2 3,0\n", o, "%s:2:2: '2 3' is not a number");
    bad_csv("a,b,y\n1,0x,0\n", o, "%s:2:2: '0x' is not a number");
    bad_csv("a,b,y\n1,inf,0\n", o, "%s:2:2: 'inf' is not a finite number");
    bad_csv("a,b,y\nnan,1,0\n", o, "%s:2:1: 'nan' is not a finite number");
    bad_csv("a,b,y\n1,1e999,0\n", o, "%s:2:2: '1e999' is not a finite number");
    bad_csv("a,b,y\n1,1e300,0\n", o, "%s:2:2: 1e300 times scale 1 is not finite in float32");
    bad_csv("a,b,y\n1,\"x\"\"y\",0\n", o, "%s:2:2: 'x\"y' is not a number");
    bad_csv("a,b,y\n1,2,0\n1,1234567890123456789012345678901234567890abc,0\n", o,
            "%s:3:2: '1234567890123456789012345678901234567890...' is not a number");
}

Test(csv, bad_rows)
{
    dnic_data_opts o = csv_opts("y", 0, 1, 3, 4, 3, DNIC_F32);
    bad_csv("a,b,c,d,y\n1,2,3,4,0\n1,2,3,4,1\n1,2,3,4,2\n1,2,3,0\n", o, "%s:5: 4 fields, expected 5");
    bad_csv("a,b,c,d,y\n1,2,3,4,0,\n", o, "%s:2: 6 fields, expected 5");
    bad_csv("a,b,c,d,y\n1,2,3,4,0\n\n1,2,3,4,0\n", o, "%s:3: empty line (only empty lines at the end are ignored)");
    bad_csv("a,b,c,d,y\n1,2,\"3,4,0\n", o, "%s:2:3: a quoted field is not closed before the end of the line");
    bad_csv("a,b,c,d,y\n1,2,\"3\"x,4,0\n", o, "%s:2:3: unexpected 'x' after a closing quote");
    bad_csv("a,\"b\nc\",d,y\n", o, "%s:1:2: a quoted field is not closed before the end of the line");
}

Test(csv, bad_labels)
{
    dnic_data_opts o = csv_opts("y", 0, 1, 10, 2, 10, DNIC_F32);
    bad_csv("a,y,b\n1,9,2\n1,10,2\n", o, "%s:3:2: label 10 is out of range for one_hot = 10");
    bad_csv("a,y,b\n1,-1,2\n", o, "%s:2:2: label -1 is out of range for one_hot = 10");
    bad_csv("a,y,b\n1,2.5,2\n", o, "%s:2:2: label 2.5 is not a class number for one_hot = 10");
    o = csv_opts("y", 0, 1, 0, 2, 1, DNIC_F32);
    bad_csv("a,y,b\n1,1e300,2\n", o, "%s:2:2: label 1e300 is not finite in float32");
}

Test(csv, bad_headers_and_columns)
{
    dnic_data_opts o = csv_opts("species", 0, 1, 3, 3, 3, DNIC_F32);
    bad_csv("a,b,c\n1,2,3\n", o, "%s: no column named 'species' (columns: a, b, c)");
    bad_csv("", o, "%s: empty file, expected a header row of column names");
    bad_csv("\n\n", o, "%s: empty file, expected a header row of column names");
    bad_csv("\n1,2\n", o, "%s:1: the header row is empty");
    bad_csv("a,b,c,species\n", o, "%s: no data rows after the header");
    bad_csv("a,b,c,species\n\r\n\n", o, "%s: no data rows after the header");
    bad_csv("species,a,species\n1,2,3\n", o, "%s: column 'species' appears twice (columns 0 and 2)");
    bad_csv("species\n1\n", o, "%s: the label is the only column, so there are no inputs");
    o = csv_opts(NULL, 4, 1, 3, 3, 3, DNIC_F32);
    bad_csv("a,b,c,d\n1,2,3,4\n", o, "%s: label column 4 is out of range: the header has 4 columns (0..3)");
    o = csv_opts(NULL, 0, 1, 3, 2, 3, DNIC_F32);
    bad_csv("y,a,b,c\n1,2,3,4\n", o, "%s: 3 input columns but the model declares inputs = 2");
    o = csv_opts(NULL, 0, 1, 3, 3, 4, DNIC_F32);
    bad_csv("y,a,b,c\n1,2,3,4\n", o, "%s: one_hot = 3 gives 3 labels but the model declares labels = 4");
    o = csv_opts(NULL, 0, 1, 0, 3, 2, DNIC_F32);
    bad_csv("y,a,b,c\n1,2,3,4\n", o, "%s: the label column gives 1 label but the model declares labels = 2");
    /* a long column list is cut short */
    char t[2048] = "";
    size_t n = 0;
    for (int i = 0; i < 100; i++)
        n += (size_t)snprintf(t + n, sizeof t - n, "%scolumn_%d", i ? "," : "", i);
    snprintf(t + n, sizeof t - n, "\n");
    o = csv_opts("nope", 0, 1, 0, 0, 0, DNIC_F32);
    bad_csv(t, o,
            "%s: no column named 'nope' (columns: column_0, column_1, column_2, column_3, column_4, column_5, "
            "column_6, column_7, column_8, column_9, column_10, column_11, column_12, column_13, column_14, column_15, "
            "column_16, column_17, column_18, column_19, column_20, column_21, column_22, ...)");
    WANT(t, "cannot open '%s': No such file or directory", path("none.csv"));
    expect_csv(path("none.csv"), o, t);
}

/* ---- Fashion-MNIST ------------------------------------------------------------------------ */

#ifndef FASHION /* where the Debian package puts it */
#define FASHION "/usr/share/datasets/fashion-mnist"
#endif

Test(idx, fashion_mnist_train, .timeout = 120)
{
    struct stat st;
    if (stat(FASHION "/train-images-idx3-ubyte.gz", &st) != 0)
        cr_skip("%s is not installed (apt-get install dataset-fashion-mnist)", FASHION);
    dnic_data_opts o = opts(1.0 / 255, 10, 784, 10, DNIC_F32);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, FASHION "/train-images-idx3-ubyte.gz", FASHION "/train-labels-idx1-ubyte.gz", &o,
                               err, sizeof err),
                 DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 60000);
    cr_assert_eq(d.inputs, 784);
    cr_assert_eq(d.labels, 10);
    const float *x = d.x, *y = d.y;
    /* every value a pixel / 255 in [0, 1]; the pixel sum, and spot values, as python3's gzip
     * module reads them from the raw bytes (offset 16 + 784 * image + element) */
    unsigned long long sum = 0;
    float lo = 1, hi = 0;
    for (size_t i = 0; i < (size_t)60000 * 784; i++) {
        lo = x[i] < lo ? x[i] : lo;
        hi = x[i] > hi ? x[i] : hi;
        long p = lroundf(x[i] * 255);
        cr_assert(p >= 0 && p <= 255 && x[i] == (float)(p * (1.0 / 255)), "x[%zu] = %g", i, (double)x[i]);
        sum += (unsigned long long)p;
    }
    cr_assert_eq(lo, 0.0f);
    cr_assert_eq(hi, 1.0f);
    cr_assert_eq(sum, 3431114169ull);
    cr_assert_eq(x[350], (float)(222 * (1.0 / 255)));
    cr_assert_eq(x[12345 * 784 + 406], (float)(193 * (1.0 / 255)));
    cr_assert_eq(x[12345 * 784 + 86], (float)(118 * (1.0 / 255)));
    cr_assert_eq(x[59999 * 784 + 556], (float)(42 * (1.0 / 255)));
    /* labels: one-hot, 6000 of each class; the first ten are 9 0 0 3 0 2 7 2 5 5, the last 5 */
    const int first[10] = {9, 0, 0, 3, 0, 2, 7, 2, 5, 5};
    int count[10] = {0};
    for (int r = 0; r < 60000; r++) {
        int cls = -1, ones = 0;
        for (int c = 0; c < 10; c++) {
            cr_assert(y[r * 10 + c] == 0 || y[r * 10 + c] == 1);
            if (y[r * 10 + c] == 1) {
                cls = c;
                ones++;
            }
        }
        cr_assert_eq(ones, 1, "row %d", r);
        count[cls]++;
        if (r < 10)
            cr_assert_eq(cls, first[r], "label %d", r);
        if (r == 59999)
            cr_assert_eq(cls, 5);
    }
    for (int c = 0; c < 10; c++)
        cr_assert_eq(count[c], 6000);
    dnic_dataset_free(&d);

    /* the test set against the training labels: the count check */
    char want[512];
    WANT(want, "%s: 10000 images but %s has 60000 labels", FASHION "/t10k-images-idx3-ubyte.gz",
         FASHION "/train-labels-idx1-ubyte.gz");
    expect_idx(FASHION "/t10k-images-idx3-ubyte.gz", FASHION "/train-labels-idx1-ubyte.gz", o, want);
}

/* ---- without labels (dnic --predict) ------------------------------------------------------ */

Test(nolabels, idx_images_alone)
{
    put_pair(path("im"), path("lb"), false);
    dnic_data_opts o = opts(1, 0, 4, 0, DNIC_F64);
    dnic_dataset d;
    char err[512] = "";
    cr_assert_eq(dnic_load_idx(&d, path("im"), NULL, &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 3);
    cr_assert_eq(d.inputs, 4);
    cr_assert_eq(d.labels, 0);
    for (size_t i = 0; i < 12; i++)
        cr_assert_eq(at(&d, d.x, i), PIX[i]);
    dnic_dataset_free(&d);
}

Test(nolabels, csv_labels_optional)
{
    dnic_data_opts o = csv_opts("y", 0, 1, 3, 3, 0, DNIC_F32);
    o.labels_optional = true;
    dnic_dataset d;
    char err[512] = "";
    put_str(path("t.csv"), "a,b,c\n1,2,3\n4,5,6\n");
    cr_assert_eq(dnic_load_csv(&d, path("t.csv"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.n, 2);
    cr_assert_eq(d.inputs, 3);
    cr_assert_eq(d.labels, 0);
    cr_assert_eq(at(&d, d.x, 5), 6);
    dnic_dataset_free(&d);
    /* with the label column it is read as usual */
    put_str(path("t.csv"), "a,b,y,c\n1,2,0,3\n4,5,2,6\n");
    cr_assert_eq(dnic_load_csv(&d, path("t.csv"), &o, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(d.labels, 3);
    cr_assert_eq(at(&d, d.x, 5), 6);
    cr_assert_eq(at(&d, d.y, 5), 1);
    dnic_dataset_free(&d);
    char want[512];
    WANT(want, "%s: 2 columns but the model declares inputs = 3", path("t.csv"));
    put_str(path("t.csv"), "a,b\n1,2\n");
    expect_csv(path("t.csv"), o, want);
}

/* ---- a gzip file inflated whole (libdeflate, in place) or streamed (zlib) ----------------- */

enum { BIG_N = 2048, BIG_W = 4096 }; /* 8 MiB of pixels: half zeros, then noise */

/* The big images: a 16-byte IDX header, then BIG_N images of BIG_W pixels. */
static unsigned char *big_images(size_t *n)
{
    *n = 16 + (size_t)BIG_N * BIG_W;
    unsigned char *b = calloc(1, *n);
    cr_assert_not_null(b);
    b[2] = 8, b[3] = 3;
    be32put(b + 4, BIG_N), be32put(b + 8, 64), be32put(b + 12, 64);
    uint32_t r = 12345;
    for (size_t i = 16 + *n / 2; i < *n; i++) {
        r = r * 1664525u + 1013904223u;
        b[i] = (unsigned char)(r >> 24);
    }
    return b;
}

/* data as one gzip member written by zlib, appended to p. */
static void append_gz(const char *p, unsigned char *data, size_t n)
{
    z_stream z = {0};
    cr_assert_eq(deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY), Z_OK);
    size_t cap = deflateBound(&z, (uLong)n);
    unsigned char *out = malloc(cap);
    cr_assert_not_null(out);
    z.next_in = data, z.avail_in = (uInt)n, z.next_out = out, z.avail_out = (uInt)cap;
    cr_assert_eq(deflate(&z, Z_FINISH), Z_STREAM_END);
    FILE *f = fopen(p, "ab");
    cr_assert_not_null(f);
    cr_assert_eq(fwrite(out, 1, z.total_out, f), z.total_out);
    cr_assert_eq(fclose(f), 0);
    deflateEnd(&z);
    free(out);
}

/* A deflate bit stream (RFC 1951: bits from the least significant, Huffman codes from their
 * most significant bit). */
typedef struct bitw {
    unsigned char *p;
    size_t n;
    uint64_t acc;
    int k;
} bitw;

static void put_bits(bitw *b, uint32_t v, int k)
{
    b->acc |= (uint64_t)v << b->k;
    for (b->k += k; b->k >= 8; b->k -= 8, b->acc >>= 8)
        b->p[b->n++] = (unsigned char)b->acc;
}

static void put_code(bitw *b, uint32_t code, int len)
{
    uint32_t r = 0;
    for (int i = 0; i < len; i++)
        r |= ((code >> i) & 1) << (len - 1 - i);
    put_bits(b, r, len);
}

/* A literal/length symbol in the fixed Huffman code (RFC 1951 3.2.6). */
static void fixed_symbol(bitw *b, int v)
{
    if (v < 144)
        put_code(b, 0x30 + (uint32_t)v, 8);
    else if (v < 256)
        put_code(b, 0x190 + (uint32_t)v - 144, 9);
    else if (v < 280)
        put_code(b, (uint32_t)v - 256, 7);
    else
        put_code(b, 0xC0 + (uint32_t)v - 280, 8);
}

/* data as a gzip file of one fixed-Huffman block, written here: runs of zeros as matches of
 * 258 at distance 1 (13 bits), every other byte a literal (8 or 9 bits: noise grows by 6%,
 * which zlib's deflate never lets happen: it stores such data). */
static void put_fixed_gz(const char *p, const unsigned char *data, size_t n)
{
    bitw b = {malloc(n * 2 + 64), 0, 0, 0};
    cr_assert_not_null(b.p);
    const unsigned char head[10] = {0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3};
    memcpy(b.p, head, sizeof head);
    b.n = sizeof head;
    put_bits(&b, 1, 1); /* the final block */
    put_bits(&b, 1, 2); /* fixed codes */
    for (size_t i = 0; i < n;) {
        size_t run = 0;
        while (i > 0 && data[i - 1] == 0 && i + run < n && data[i + run] == 0 && run < 258)
            run++;
        if (run == 258) {
            fixed_symbol(&b, 285); /* length 258 */
            put_code(&b, 0, 5);    /* distance 1 */
            i += run;
        } else
            fixed_symbol(&b, data[i++]);
    }
    fixed_symbol(&b, 256);
    put_bits(&b, 0, 7); /* to a byte */
    uint32_t crc = (uint32_t)crc32(0, data, (uInt)n), len = (uint32_t)n;
    for (int i = 0; i < 4; i++)
        b.p[b.n++] = (unsigned char)(crc >> (8 * i));
    for (int i = 0; i < 4; i++)
        b.p[b.n++] = (unsigned char)(len >> (8 * i));
    put(p, b.p, b.n);
    free(b.p);
}

/* The images of p loaded as bytes and as float32: the same as those of the plain file `plain`. */
static void expect_same_images(const char *p, const char *plain)
{
    for (int bytes = 0; bytes < 2; bytes++) {
        dnic_data_opts o = opts(1.0 / 255, 0, 4096, 0, DNIC_F32);
        o.keep_bytes = bytes;
        dnic_dataset want, got;
        char err[512] = "";
        cr_assert_eq(dnic_load_idx(&want, plain, NULL, &o, err, sizeof err), DNIC_OK, "%s", err);
        cr_assert_eq(dnic_load_idx(&got, p, NULL, &o, err, sizeof err), DNIC_OK, "%s: %s", p, err);
        cr_assert_eq(got.n, BIG_N);
        cr_assert_eq(got.x_bytes, bytes);
        size_t size = (size_t)BIG_N * BIG_W * (bytes ? 1 : sizeof(float));
        cr_assert(memcmp(got.x, want.x, size) == 0, "%s: the pixels differ from the plain file's", p);
        dnic_dataset_free(&want);
        dnic_dataset_free(&got);
    }
}

Test(idx, gzip_inflated_whole_or_streamed)
{
    size_t n;
    unsigned char *b = big_images(&n);
    put(path("plain"), b, n);
    /* zlib's: inflated whole */
    append_gz(path("one.gz"), b, n);
    expect_same_images(path("one.gz"), path("plain"));
    /* an empty member, then the data: the last trailer's length is the data's, but the
     * whole-file inflate reads one member: zlib reads on */
    append_gz(path("two.gz"), b, 0);
    append_gz(path("two.gz"), b, n);
    expect_same_images(path("two.gz"), path("plain"));
    /* the data split over two members: the trailer's length is not the data's: zlib */
    append_gz(path("split.gz"), b, n / 3);
    append_gz(path("split.gz"), b + n / 3, n - n / 3);
    expect_same_images(path("split.gz"), path("plain"));
    /* 4 MiB of zeros in 26 KB, then 4 MiB of noise in 4.2 MiB: inflating in place, the output
     * overtakes compressed bytes still to be read, the CRC-32 check fails and zlib reads it */
    put_fixed_gz(path("fixed.gz"), b, n);
    expect_same_images(path("fixed.gz"), path("plain"));
    /* a trailer whose length is not the data's: zlib's message, as before libdeflate: found at
     * the file's end, in the read of the last chunk of 32768 values (images 2040 to 2047) */
    size_t gn;
    FILE *f = fopen(path("one.gz"), "rb");
    cr_assert_not_null(f);
    fseek(f, 0, SEEK_END);
    gn = (size_t)ftell(f);
    rewind(f);
    unsigned char *g = malloc(gn);
    cr_assert_not_null(g);
    cr_assert_eq(fread(g, 1, gn, f), gn);
    fclose(f);
    g[gn - 4] ^= 1;
    put(path("len.gz"), g, gn);
    dnic_data_opts o = opts(1.0 / 255, 0, 4096, 0, DNIC_F32);
    dnic_dataset d;
    char err[512] = "", want[512];
    cr_assert_neq(dnic_load_idx(&d, path("len.gz"), NULL, &o, err, sizeof err), DNIC_OK);
    snprintf(want, sizeof want, "%s: corrupt gzip data (incorrect length check) by compressed byte %zu at image 2040 of 2048",
             path("len.gz"), gn);
    cr_assert_str_eq(err, want);
    free(g);
    free(b);
}
