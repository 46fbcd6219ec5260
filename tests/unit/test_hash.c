/* runtime/hash.c against a plain reference written here from its description (two 64-bit
 * multiply-rotate lanes over little-endian 8-byte words, zero-padded, then the avalanche): the
 * same 64- and 128-bit results for every length, alignment and split into calls.  The cache
 * files and the weights files store these hashes, so a faster hash.c must not change them. */
#include <criterion/criterion.h>
#include <stdint.h>
#include <string.h>

#include "hash.h"

typedef struct ref {
    uint64_t h1, h2, len;
    unsigned char buf[1 << 16];
    size_t n;
} ref;

static uint64_t rotl(uint64_t x, int r)
{
    return (x << r) | (x >> (64 - r));
}

static uint64_t fmix(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ULL;
    k ^= k >> 33;
    return k;
}

/* The reference keeps every byte and hashes them at the end, one word at a time. */
static void ref_lanes(ref *r)
{
    size_t words = (r->n + 7) / 8;
    memset(r->buf + r->n, 0, words * 8 - r->n);
    for (size_t i = 0; i < words; i++) {
        uint64_t w = 0;
        for (int j = 0; j < 8; j++)
            w |= (uint64_t)r->buf[8 * i + (size_t)j] << (8 * j);
        r->h1 = rotl(r->h1 ^ (w * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL + r->h2;
        r->h2 = rotl(r->h2 ^ (w * 0x4cf5ad432745937fULL), 33) * 0x87c37b91114253d5ULL + r->h1;
    }
    r->len = r->n;
}

static uint64_t next(uint64_t *s)
{
    *s = *s * 6364136223846793005ULL + 1442695040888963407ULL;
    return *s >> 33;
}

Test(hash, same_as_reference_for_every_split)
{
    static unsigned char data[(1 << 16) + 8];
    uint64_t s = 42;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)next(&s);
    for (int t = 0; t < 2000; t++) {
        size_t n = t < 200 ? (size_t)t : (size_t)(next(&s) % (1 << 16)), off = (size_t)t % 8;
        uint64_t a = next(&s), b = next(&s);
        static ref r;
        r = (ref){.h1 = a, .h2 = b, .n = n};
        memcpy(r.buf, data + off, n);
        ref_lanes(&r);
        dnic_hash h;
        dnic_hash_init(&h, a, b);
        for (size_t at = 0; at < n;) { /* pieces of 1 to 13 bytes, or up to 5000 */
            size_t k = 1 + (size_t)next(&s) % (t % 2 ? 13 : 5000);
            k = k > n - at ? n - at : k;
            dnic_hash_add(&h, data + off + at, k);
            at += k;
        }
        if (t % 2) {
            uint64_t want = fmix(r.h1 ^ r.len) ^ fmix(r.h2);
            cr_assert_eq(dnic_hash_end64(&h), want, "64-bit hash of %zu bytes at offset %zu", n, off);
            cr_assert_eq(dnic_hash64(data + off, n, a, b), want, "one call, %zu bytes", n);
        } else {
            uint64_t x = fmix(r.h1 ^ r.len), y = fmix(r.h2 + x);
            x += y;
            unsigned char want[16], got[16];
            for (int i = 0; i < 8; i++) {
                want[i] = (unsigned char)(x >> (8 * i));
                want[8 + i] = (unsigned char)(y >> (8 * i));
            }
            dnic_hash_end128(&h, got);
            cr_assert(memcmp(got, want, 16) == 0, "128-bit hash of %zu bytes at offset %zu", n, off);
        }
    }
}
