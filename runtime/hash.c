/* The hash of runtime/hash.h: murmur3-style lanes over little-endian 8-byte words. */
#include <string.h>

#include "hash.h"

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

/* The little-endian 8-byte word at p: one load where the machine is little-endian (the byte
 * loop it replaces, not inlined, was most of the time of hashing a 47 MB data cache entry). */
static inline uint64_t load_word(const unsigned char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    uint64_t w;
    memcpy(&w, p, 8);
    return w;
#else
    uint64_t w = 0;
    for (int j = 0; j < 8; j++)
        w |= (uint64_t)p[j] << (8 * j);
    return w;
#endif
}

static inline void mix(uint64_t *h1, uint64_t *h2, uint64_t w)
{
    *h1 = rotl(*h1 ^ (w * 0x87c37b91114253d5ULL), 31) * 0x4cf5ad432745937fULL + *h2;
    *h2 = rotl(*h2 ^ (w * 0x4cf5ad432745937fULL), 33) * 0x87c37b91114253d5ULL + *h1;
}

static void word(dnic_hash *h, const unsigned char *p)
{
    mix(&h->h1, &h->h2, load_word(p));
}

void dnic_hash_init(dnic_hash *h, uint64_t seed1, uint64_t seed2)
{
    *h = (dnic_hash){.h1 = seed1, .h2 = seed2};
}

void dnic_hash_add(dnic_hash *h, const void *data, size_t n)
{
    const unsigned char *p = data;
    h->len += n;
    while (n > 0 && h->npart > 0) {
        h->part[h->npart++] = *p++;
        n--;
        if (h->npart == 8) {
            word(h, h->part);
            h->npart = 0;
        }
    }
    if (h->npart > 0) /* all of p went into the unfinished word, which must stay (tests/unit/test_hash.c) */
        return;
    uint64_t h1 = h->h1, h2 = h->h2; /* in registers through the bulk */
    for (; n >= 8; p += 8, n -= 8)
        mix(&h1, &h2, load_word(p));
    h->h1 = h1, h->h2 = h2;
    memcpy(h->part, p, n);
    h->npart = (int)n;
}

static void finish(dnic_hash *h)
{
    if (h->npart) {
        memset(h->part + h->npart, 0, (size_t)(8 - h->npart));
        word(h, h->part);
        h->npart = 0;
    }
}

uint64_t dnic_hash_end64(dnic_hash *h)
{
    finish(h);
    return fmix(h->h1 ^ h->len) ^ fmix(h->h2);
}

void dnic_hash_end128(dnic_hash *h, unsigned char out[16])
{
    finish(h);
    uint64_t a = fmix(h->h1 ^ h->len), b = fmix(h->h2 + a);
    a += b;
    for (int i = 0; i < 8; i++) {
        out[i] = (unsigned char)(a >> (8 * i));
        out[8 + i] = (unsigned char)(b >> (8 * i));
    }
}

uint64_t dnic_hash64(const void *p, size_t n, uint64_t seed1, uint64_t seed2)
{
    dnic_hash h;
    dnic_hash_init(&h, seed1, seed2);
    dnic_hash_add(&h, p, n);
    return dnic_hash_end64(&h);
}
