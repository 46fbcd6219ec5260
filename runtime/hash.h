/* A fast non-cryptographic hash (two 64-bit multiply-rotate lanes over 8-byte words, then an
 * avalanche) for checksums of files and keys of cached code.  Streaming: the result does not
 * depend on how the bytes are split between calls.
 *
 *     dnic_hash h;
 *     dnic_hash_init(&h, DNIC_HASH_SEED_A, DNIC_HASH_SEED_B);
 *     dnic_hash_add(&h, p, n);
 *     uint64_t sum = dnic_hash_end64(&h);
 */
#ifndef DNIC_HASH_H
#define DNIC_HASH_H

#include <stddef.h>
#include <stdint.h>

typedef struct dnic_hash {
    uint64_t h1, h2, len;
    unsigned char part[8]; /* the bytes of an unfinished word */
    int npart;
} dnic_hash;

void dnic_hash_init(dnic_hash *h, uint64_t seed1, uint64_t seed2);
void dnic_hash_add(dnic_hash *h, const void *p, size_t n);
/* The hash of everything added (an unfinished word is zero-padded); h is then spent. */
uint64_t dnic_hash_end64(dnic_hash *h);
void dnic_hash_end128(dnic_hash *h, unsigned char out[16]);
/* One call: the 64-bit hash of n bytes with the given seeds. */
uint64_t dnic_hash64(const void *p, size_t n, uint64_t seed1, uint64_t seed2);

/* A checksum or size as the cache files store it: 8 bytes, little-endian. */
static inline void dnic_put_le64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint64_t dnic_get_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

#endif
