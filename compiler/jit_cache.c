/* The JIT's object cache: compiled parts kept on disk under a 128-bit hash of everything
 * that determines their machine code (the LLVM module's bitcode, the target, the pipeline, the
 * LLVM version), so that running a model again skips optimisation and instruction selection.
 *
 * A file is `DNICOBJ1`, the key (16 bytes), the object's length (8 bytes, little endian), a
 * hash of the object (8 bytes) and the object.  Anything that does not check out is a miss,
 * and the part is compiled and the file replaced.  Files are written to a temporary name and
 * renamed (runtime/atomic_file.c), so a reader never sees half of one. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "codegen.h"
#include "hash.h"
#include "open_regular.h"

static const char MAGIC[8] = {'D', 'N', 'I', 'C', 'O', 'B', 'J', '1'};
enum { HEADER = 8 + 16 + 8 + 8, MAX_OBJECT = 256 << 20 };

void dnic_jit_cache_key(const char *const *fields, int n, const void *blob, size_t len, unsigned char key[16])
{
    dnic_hash h;
    dnic_hash_init(&h, 0x9e3779b97f4a7c15ULL, 0x6a09e667f3bcc909ULL);
    for (int i = 0; i < n; i++)
        dnic_hash_add(&h, fields[i], strlen(fields[i]) + 1); /* the NUL separates fields */
    unsigned char n8[8];
    dnic_put_le64(n8, len); /* the blob's length, so that no two (fields, blob) hash alike */
    dnic_hash_add(&h, n8, sizeof n8);
    dnic_hash_add(&h, blob, len);
    dnic_hash_end128(&h, key);
}

static uint64_t object_hash(const void *p, size_t n)
{
    return dnic_hash64(p, n, 0x243f6a8885a308d3ULL, 0x13198a2e03707344ULL);
}

static char *path_for(const char *dir, const unsigned char key[16])
{
    size_t n = strlen(dir) + 1 + 32 + 3;
    char *path = malloc(n + 1);
    DNIC_ASSERT(path != NULL);
    int at = snprintf(path, n + 1, "%s/", dir);
    for (int i = 0; i < 16; i++)
        at += snprintf(path + at, n + 1 - (size_t)at, "%02x", key[i]);
    snprintf(path + at, n + 1 - (size_t)at, ".o");
    return path;
}

LLVMMemoryBufferRef dnic_jit_cache_load(const char *dir, const unsigned char key[16])
{
    char *path = path_for(dir, key);
    const char *why;
    FILE *f = dnic_open_regular(path, &why); /* a FIFO planted in the cache must not hang us */
    free(path);
    if (!f)
        return NULL;
    unsigned char hdr[HEADER];
    LLVMMemoryBufferRef buf = NULL;
    if (fread(hdr, 1, HEADER, f) == HEADER && !memcmp(hdr, MAGIC, 8) && !memcmp(hdr + 8, key, 16)) {
        uint64_t n = dnic_get_le64(hdr + 24);
        char *obj = n > 0 && n <= MAX_OBJECT ? malloc((size_t)n) : NULL;
        if (obj && fread(obj, 1, (size_t)n, f) == n && fgetc(f) == EOF && object_hash(obj, (size_t)n) == dnic_get_le64(hdr + 32))
            buf = LLVMCreateMemoryBufferWithMemoryRangeCopy(obj, (size_t)n, "dnic-cached-object");
        free(obj);
    }
    fclose(f);
    return buf;
}

bool dnic_jit_cache_store(const char *dir, const unsigned char key[16], const void *obj, size_t n, char *why,
                          size_t whylen)
{
    if (!dnic_make_dirs(dir)) {
        snprintf(why, whylen, "cannot create '%s': %s", dir, strerror(errno));
        return false;
    }
    char *path = path_for(dir, key);
    unsigned char hdr[HEADER];
    memcpy(hdr, MAGIC, 8);
    memcpy(hdr + 8, key, 16);
    dnic_put_le64(hdr + 24, n);
    dnic_put_le64(hdr + 32, object_hash(obj, n));
    dnic_atomic_file a;
    dnic_status s = dnic_atomic_open(&a, path, why, whylen);
    if (s == DNIC_OK) {
        fwrite(hdr, 1, HEADER, a.f);
        fwrite(obj, 1, n, a.f); /* a short write shows in the stream's error flag at commit */
        s = dnic_atomic_commit(&a, why, whylen);
    }
    free(path);
    return s == DNIC_OK;
}
