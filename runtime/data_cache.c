/* The decoded-data cache (data_cache.h).  An entry is `DNICDAT1`, the key (16 bytes), the
 * data's length (8 bytes, little endian), the hash of the data (8 bytes), then the data: the
 * source's decompressed bytes, as gzread gives them. */
#include <errno.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>

#include "data_cache.h"
#include "open_regular.h"

static const char MAGIC[8] = {'D', 'N', 'I', 'C', 'D', 'A', 'T', '1'};
enum { HEADER = 8 + 16 + 8 + 8 };
static const uint64_t SEED_A = 0x452821e638d01377ULL, SEED_B = 0xbe5466cf34e90c6cULL;

bool dnic_data_cache_init(dnic_data_cache *c, const char *dir, const char *path, FILE *gz, const struct stat *st)
{
    memset(c, 0, sizeof *c);
    /* the gzip trailer: the CRC-32 and the length (mod 2^32) of the data, as the file declares them */
    unsigned char trailer[8];
    long at = ftell(gz);
    bool ok = at >= 0 && st->st_size >= 18 && fseek(gz, -8, SEEK_END) == 0 && fread(trailer, 1, 8, gz) == 8;
    if (at < 0 || fseek(gz, at, SEEK_SET) != 0 || !ok)
        return false;
    char id[256];
    snprintf(id, sizeof id, "%llu %llu %lld %lld.%09ld", (unsigned long long)st->st_dev, (unsigned long long)st->st_ino,
             (long long)st->st_size, (long long)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
    dnic_hash h;
    dnic_hash_init(&h, SEED_A, SEED_B);
    const char *fields[] = {"dnic data cache 1", path, id};
    for (int i = 0; i < 3; i++)
        dnic_hash_add(&h, fields[i], strlen(fields[i]) + 1); /* the NUL separates fields */
    dnic_hash_add(&h, trailer, sizeof trailer);
    dnic_hash_end128(&h, c->key);
    size_t n = strlen(dir) + 1 + 32 + 6;
    if (!(c->path = malloc(n)))
        return false;
    int w = snprintf(c->path, n, "%s/", dir);
    for (int i = 0; i < 16; i++)
        w += snprintf(c->path + w, n - (size_t)w, "%02x", c->key[i]);
    snprintf(c->path + w, n - (size_t)w, ".data");
    return true;
}

bool dnic_data_cache_open(dnic_data_cache *c, char *why, size_t whylen)
{
    why[0] = '\0';
    const char *e;
    FILE *f = dnic_open_regular(c->path, &e); /* a FIFO planted in the cache must not hang us */
    struct stat st;
    if (!f) {
        if (lstat(c->path, &st) == 0) /* there, but not a file to read */
            snprintf(why, whylen, "%s", e);
        return false;
    }
    unsigned char hdr[HEADER];
    size_t got = fread(hdr, 1, HEADER, f);
    if (got < HEADER)
        snprintf(why, whylen, "%zu bytes, shorter than its %d-byte header", got, HEADER);
    else if (memcmp(hdr, MAGIC, 8) != 0)
        snprintf(why, whylen, "not an entry of this cache (wrong magic)");
    else if (memcmp(hdr + 8, c->key, 16) != 0)
        snprintf(why, whylen, "its key is not its name's");
    else if (fstat(fileno(f), &st) != 0 || (uint64_t)st.st_size < HEADER ||
             (uint64_t)st.st_size - HEADER != dnic_get_le64(hdr + 24))
        snprintf(why, whylen, "its header declares %llu bytes of data but it holds %lld",
                 (unsigned long long)dnic_get_le64(hdr + 24), (long long)st.st_size - HEADER);
    /* nothing in the entry is believed before the hash of all its data checks out */
    dnic_hash h;
    dnic_hash_init(&h, SEED_A, SEED_B);
    uint64_t left = why[0] ? 0 : dnic_get_le64(hdr + 24);
    unsigned char *buf = left ? malloc(1 << 20) : NULL;
    if (left && !buf)
        snprintf(why, whylen, "out of memory");
    while (!why[0] && left > 0) {
        size_t k = left < (1 << 20) ? (size_t)left : (size_t)1 << 20;
        if (fread(buf, 1, k, f) != k) {
            snprintf(why, whylen, "read error: %s", ferror(f) ? strerror(errno) : "the file shrank");
            break;
        }
        dnic_hash_add(&h, buf, k);
        left -= k;
    }
    free(buf);
    if (!why[0] && dnic_hash_end64(&h) != dnic_get_le64(hdr + 32))
        snprintf(why, whylen, "its data does not match its checksum");
    if (why[0] || fseek(f, HEADER, SEEK_SET) != 0) {
        if (!why[0])
            snprintf(why, whylen, "cannot seek: %s", strerror(errno));
        fclose(f);
        return false;
    }
    c->f = f;
    c->len = dnic_get_le64(hdr + 24);
    return true;
}

bool dnic_data_cache_begin(dnic_data_cache *c, char *why, size_t whylen)
{
    char *dir = strdup(c->path);
    if (!dir) {
        snprintf(why, whylen, "out of memory");
        return false;
    }
    *strrchr(dir, '/') = '\0';
    bool ok = dnic_make_dirs(dir);
    if (!ok)
        snprintf(why, whylen, "cannot create '%s': %s", dir, strerror(errno));
    free(dir);
    if (!ok || dnic_atomic_open(&c->w, c->path, why, whylen) != DNIC_OK)
        return false;
    unsigned char hdr[HEADER] = {0}; /* the length and the hash are written at the end */
    memcpy(hdr, MAGIC, 8);
    memcpy(hdr + 8, c->key, 16);
    fwrite(hdr, 1, HEADER, c->w.f); /* a short write shows in the stream's error flag at commit */
    dnic_hash_init(&c->h, SEED_A, SEED_B);
    c->writing = true;
    c->wlen = 0;
    return true;
}

void dnic_data_cache_put(dnic_data_cache *c, const void *p, size_t n)
{
    if (!c->writing)
        return;
    fwrite(p, 1, n, c->w.f);
    dnic_hash_add(&c->h, p, n);
    c->wlen += n;
}

bool dnic_data_cache_commit(dnic_data_cache *c, char *why, size_t whylen)
{
    if (!c->writing)
        return false;
    c->writing = false;
    unsigned char tail[16];
    dnic_put_le64(tail, c->wlen);
    dnic_put_le64(tail + 8, dnic_hash_end64(&c->h));
    if (fseek(c->w.f, 24, SEEK_SET) != 0 || fwrite(tail, 1, sizeof tail, c->w.f) != sizeof tail) {
        snprintf(why, whylen, "cannot write '%s': %s", c->path, strerror(errno));
        dnic_atomic_discard(&c->w);
        return false;
    }
    return dnic_atomic_commit(&c->w, why, whylen) == DNIC_OK;
}

void dnic_data_cache_free(dnic_data_cache *c)
{
    if (c->f)
        fclose(c->f);
    if (c->writing)
        dnic_atomic_discard(&c->w);
    free(c->path);
    memset(c, 0, sizeof *c);
}
