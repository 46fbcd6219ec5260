/* safetensors tests: the exact bytes dnic writes, round trips, and the reader's rejection of
 * every kind of malformed or hostile file with a message naming the file and the field. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "safetensors.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dnic-st-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

static char *path(const char *name)
{
    static char buf[128];
    snprintf(buf, sizeof buf, "%s/%s", dir, name);
    return buf;
}

/* Writes a file: the 8-byte length of `header`, the header, then `data` (ndata bytes). */
static void raw(const char *p, const char *header, uint64_t declared, const void *data, size_t ndata)
{
    FILE *f = fopen(p, "wb");
    cr_assert_not_null(f);
    unsigned char le[8];
    for (int b = 0; b < 8; b++)
        le[b] = (unsigned char)(declared >> (8 * b));
    fwrite(le, 1, 8, f);
    fwrite(header, 1, strlen(header), f);
    if (ndata)
        fwrite(data, 1, ndata, f);
    fclose(f);
}

static void expect_error(const char *p, const char *msg)
{
    dnic_st_file f;
    char err[512] = "";
    cr_assert_neq(dnic_st_read(&f, p, err, sizeof err), DNIC_OK, "accepted; wanted '%s'", msg);
    cr_assert_str_eq(err, msg);
}

TestSuite(safetensors, .init = setup, .fini = teardown);

Test(safetensors, writes_the_documented_bytes)
{
    double w[2] = {1.5, -2};
    float b[1] = {0.25f};
    dnic_st_tensor t[2] = {{"a.weight", DNIC_F64, 2, {1, 2}, w}, {"a.bias", DNIC_F32, 1, {1}, b}};
    char err[256];
    cr_assert_eq(dnic_st_write(path("t.st"), t, 2, err, sizeof err), DNIC_OK, "%s", err);
    FILE *f = fopen(path("t.st"), "rb");
    unsigned char buf[512];
    size_t n = fread(buf, 1, sizeof buf, f);
    fclose(f);
    /* the checksums (16 hex digits, '-', 16 more) are checked by the tests below */
    const char *hdr = "{\"__metadata__\":{\"checksum\":\"################-################\",\"format\":\"dnic\"},"
                      "\"a.weight\":{\"dtype\":\"F64\",\"shape\":[1,2],\"data_offsets\":[0,16]},"
                      "\"a.bias\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}";
    size_t hl = strlen(hdr), padded = (hl + 7) / 8 * 8;
    cr_assert_eq(n, 8 + padded + 20);
    cr_assert_eq(buf[0], (unsigned char)padded);
    cr_assert_eq(buf[1], 0);
    for (size_t i = 0; i < hl; i++)
        if (hdr[i] == '#')
            cr_assert(strchr("0123456789abcdef-", buf[8 + i]), "%.*s", (int)padded, buf + 8);
        else
            cr_assert_eq(buf[8 + i], (unsigned char)hdr[i], "%.*s", (int)padded, buf + 8);
    for (size_t i = hl; i < padded; i++)
        cr_assert_eq(buf[8 + i], ' ');
    cr_assert_eq(memcmp(buf + 8 + padded, w, 16), 0);
    cr_assert_eq(memcmp(buf + 8 + padded + 16, b, 4), 0);
    cr_assert_eq(access(path("t.st.tmp"), F_OK), -1, "no temporary left behind");
}

Test(safetensors, round_trip)
{
    double w[6] = {1, 2, 3, 4, 5, 6};
    dnic_st_tensor t = {"w", DNIC_F64, 2, {2, 3}, w};
    char err[256];
    cr_assert_eq(dnic_st_write(path("r.st"), &t, 1, err, sizeof err), DNIC_OK);
    dnic_st_file f;
    cr_assert_eq(dnic_st_read(&f, path("r.st"), err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_eq(f.n, 1);
    const dnic_st_tensor *g = dnic_st_find(&f, "w");
    cr_assert_not_null(g);
    cr_assert_eq(g->shape[0], 2);
    cr_assert_eq(g->shape[1], 3);
    cr_assert_eq(memcmp(g->data, w, sizeof w), 0);
    dnic_st_close(&f);
}

Test(safetensors, write_failure_leaves_nothing)
{
    double w = 1;
    dnic_st_tensor t = {"w", DNIC_F64, 1, {1}, &w};
    char err[256];
    cr_assert_neq(dnic_st_write(path("no/such/dir/w.st"), &t, 1, err, sizeof err), DNIC_OK);
    cr_assert(strstr(err, "cannot write '"), "%s", err);
}

Test(safetensors, rejects_malformed_files)
{
    char want[512];
    const char *p = path("bad.st");
    FILE *f = fopen(p, "wb");
    fwrite("abc", 1, 3, f);
    fclose(f);
    snprintf(want, sizeof want, "%s: truncated: 3 bytes, shorter than the 8-byte header length", p);
    expect_error(p, want);

    raw(p, "{}", 1ull << 40, NULL, 0);
    snprintf(want, sizeof want, "%s: header length 1099511627776 is larger than the 104857600-byte limit", p);
    expect_error(p, want);

    raw(p, "{}", 100, NULL, 0);
    snprintf(want, sizeof want, "%s: truncated: the header needs 100 bytes but the file has 2 after the length", p);
    expect_error(p, want);

    const char *h = "{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,16]}}";
    raw(p, h, strlen(h), "12345678", 8);
    snprintf(want, sizeof want, "%s: tensor 'w': data_offsets [0,16] are outside the 8 data bytes", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F64\",\"shape\":[2],\"data_offsets\":[0,8]}}";
    raw(p, h, strlen(h), "1234567812345678", 16);
    snprintf(want, sizeof want, "%s: tensor 'w': data_offsets cover 8 bytes but the shape needs 16", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"I8\",\"shape\":[1],\"data_offsets\":[0,1]}}";
    raw(p, h, strlen(h), "1", 1);
    snprintf(want, sizeof want, "%s: tensor 'w': dtype I8 is not supported (F32 or F64)", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: tensor 'w' appears twice", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1,1,1],\"data_offsets\":[0,4]}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: tensor 'w': 3 dimensions (dnic reads 1 or 2)", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: tensor 'w': missing data_offsets", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: malformed header: number too large", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,4]}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: tensor 'w': dimension 4294967296 is too large", p);
    expect_error(p, want);

    h = "[1]";
    raw(p, h, strlen(h), NULL, 0);
    snprintf(want, sizeof want, "%s: malformed header: expected '{' at the start of the header at header byte 0", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}} x";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: malformed header: bytes after the closing '}'", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: malformed header: expected '}' closing a tensor at header byte %zu", p, strlen(h));
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: tensor 'w': data_offsets [4,0] are outside the 4 data bytes", p);
    expect_error(p, want);

    h = "{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"x\":1}}";
    raw(p, h, strlen(h), "1234", 4);
    snprintf(want, sizeof want, "%s: tensor 'w': unknown field 'x'", p);
    expect_error(p, want);

    snprintf(want, sizeof want, "cannot open '%s': No such file or directory", path("none.st"));
    expect_error(path("none.st"), want);
}

/* A bit flipped anywhere in a file dnic wrote is "the file is corrupted" with the byte range
 * (the length and the header, or the data), except in the few bytes that say the file has
 * checksums: a flip there leaves a file read without them, whose data is then still whole. */
Test(safetensors, every_flipped_bit_is_corruption)
{
    double w[6] = {1, 2, 3, 4, 5, 6};
    float b[3] = {0.5f, -1, 2};
    dnic_st_tensor t[2] = {{"h.weight", DNIC_F64, 2, {2, 3}, w}, {"h.bias", DNIC_F32, 1, {3}, b}};
    char err[512];
    cr_assert_eq(dnic_st_write(path("c.st"), t, 2, err, sizeof err), DNIC_OK, "%s", err);
    FILE *f = fopen(path("c.st"), "rb");
    unsigned char orig[1024];
    size_t n = fread(orig, 1, sizeof orig, f);
    fclose(f);
    size_t hlen = orig[0] | (size_t)orig[1] << 8, prefix_end = 8 + strlen("{\"__metadata__\":{\"checksum\":\"");
    char header_msg[256], data_msg[256];
    snprintf(header_msg, sizeof header_msg,
             "%s: the file is corrupted: bytes 0-%zu (the length and the header) do not match their checksum", path("c.st"),
             hlen + 7);
    snprintf(data_msg, sizeof data_msg, "%s: the file is corrupted: bytes %zu-%zu (the tensors' data) do not match their checksum",
             path("c.st"), hlen + 8, n - 1);
    int read_plain = 0;
    for (size_t i = 0; i < n; i++)
        for (int bit = 0; bit < 8; bit += 3) {
            unsigned char buf[1024];
            memcpy(buf, orig, n);
            buf[i] ^= (unsigned char)(1 << bit);
            FILE *o = fopen(path("c.st"), "wb");
            fwrite(buf, 1, n, o);
            fclose(o);
            dnic_st_file g;
            err[0] = '\0';
            dnic_status st = dnic_st_read(&g, path("c.st"), err, sizeof err);
            if (i >= 8 && i < prefix_end) {
                /* not a dnic file with checksums any more: refused, or read whole */
                if (st == DNIC_OK) {
                    read_plain++;
                    cr_assert_eq(memcmp(dnic_st_find(&g, "h.weight")->data, w, sizeof w), 0);
                    cr_assert_eq(memcmp(dnic_st_find(&g, "h.bias")->data, b, sizeof b), 0);
                    dnic_st_close(&g);
                }
                continue;
            }
            cr_assert_neq(st, DNIC_OK, "byte %zu bit %d: accepted", i, bit);
            if (i < 8 && strstr(err, "corrupted") && (strstr(err, "header length (bytes 0-7)") || strstr(err, "(the length")))
                continue; /* a range from the damaged length itself, or a length past the end of the file */
            if (i >= prefix_end && i <= prefix_end + 33 && strstr(err, "its checksums (bytes 37-70) are not 32 hex digits"))
                continue; /* a checksum's digit no longer a digit */
            cr_assert_str_eq(err, i < 8 + hlen ? header_msg : data_msg, "byte %zu bit %d", i, bit);
        }
    cr_assert_gt(read_plain, 0, "the flips in the checksum's key were all refused: the exemption is not needed");
}

Test(safetensors, a_truncated_length_says_so)
{
    double w[2] = {1, 2};
    dnic_st_tensor t = {"w", DNIC_F64, 1, {2}, w};
    char err[512], want[512];
    cr_assert_eq(dnic_st_write(path("t.st"), &t, 1, err, sizeof err), DNIC_OK, "%s", err);
    FILE *f = fopen(path("t.st"), "r+b");
    fputc(0xff, f); /* the length's low byte */
    fclose(f);
    dnic_st_file g;
    cr_assert_neq(dnic_st_read_as(&g, path("t.st"), "checkpoint", err, sizeof err), DNIC_OK);
    snprintf(want, sizeof want, "%s: the checkpoint is truncated or corrupted: its header length (bytes 0-7) is 255, "
             "past the end of the file (160 bytes)", path("t.st"));
    cr_assert_str_eq(err, want);
}

/* A weights file whose values are not numbers is refused, with the value's place. */
Test(safetensors, nan_weights_are_refused_with_their_place)
{
    static const dnic_buffer_desc bufs[1] = {{"h.weight", DNIC_BUF_PARAM, DNIC_F32, 2, 3, DNIC_DRAW_NONE, 0, 0, -1}};
    dnic_program p = {.bufs = bufs, .nbufs = 1, .dtype = DNIC_F32, .batch = 1};
    cr_assert_eq(dnic_program_alloc(&p), DNIC_OK);
    float w[6] = {1, 2, 3, 4, 0, 6};
    w[4] = -(float)INFINITY;
    dnic_st_tensor t = {"h.weight", DNIC_F32, 2, {2, 3}, w};
    char err[512], want[512];
    cr_assert_eq(dnic_st_write(path("n.st"), &t, 1, err, sizeof err), DNIC_OK, "%s", err);
    cr_assert_neq(dnic_program_load(&p, path("n.st"), err, sizeof err), DNIC_OK);
    FILE *f = fopen(path("n.st"), "rb");
    unsigned char le[8];
    cr_assert_eq(fread(le, 1, 8, f), 8);
    fclose(f);
    size_t at = 8 + le[0] + 4 * 4;
    snprintf(want, sizeof want, "%s: tensor 'h.weight' holds -inf at [1,1] (bytes %zu-%zu): weights must be finite", path("n.st"),
             at, at + 3);
    cr_assert_str_eq(err, want);
    dnic_program_free(&p);
}
