/* The decoded-data cache: the decompressed bytes of a gzip data file, kept in the object cache's
 * directory so that the next run reads them instead of inflating the file again.  An entry is
 * keyed by the source's identity (its path, device, inode, size and modification time, and the
 * CRC-32 and length its gzip trailer declares) and holds a checksum of its content: nothing is
 * believed until the checksum over all its bytes checks out, and an entry that does not is
 * reported, decoded again from the source and replaced.  Entries are written through
 * runtime/atomic_file.c, so a reader never sees half of one.
 *
 *     dnic_data_cache c;
 *     if (dnic_data_cache_init(&c, dir, path, gz_file, &st)) {
 *         if (dnic_data_cache_open(&c, why, sizeof why)) { read c.len bytes from c.f }
 *         else { dnic_data_cache_begin(&c, ...); dnic_data_cache_put(&c, bytes, n)...;
 *                dnic_data_cache_commit(&c, ...) }
 *     }
 *     dnic_data_cache_free(&c);
 */
#ifndef DNIC_DATA_CACHE_H
#define DNIC_DATA_CACHE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/stat.h>

#include "atomic_file.h"
#include "hash.h"

/* Owns path, f and the writer until dnic_data_cache_free. */
typedef struct dnic_data_cache {
    char *path;              /* the entry's file: DIR/<key in hex>.data */
    unsigned char key[16];
    FILE *f;                 /* reading: the entry, at its first byte of data */
    uint64_t len;            /* reading: the data's length */
    dnic_hash h;             /* writing: the checksum of the bytes so far */
    dnic_atomic_file w;      /* writing */
    bool writing;
    uint64_t wlen;
} dnic_data_cache;

/* The entry of the gzip file `path` (open as gz, with stat st) in directory dir; false, and no
 * cache, when the file's gzip trailer cannot be read.  Leaves gz's position where it was. */
bool dnic_data_cache_init(dnic_data_cache *c, const char *dir, const char *path, FILE *gz, const struct stat *st);
/* Opens the entry for reading: true with c->f at its data (c->len bytes) once the checksum of
 * all of them has checked out; false when there is none (why is "") or it does not check out
 * (why says how). */
bool dnic_data_cache_open(dnic_data_cache *c, char *why, size_t whylen);
/* Writing a new entry: begin, put every decoded byte, commit (false with why when it could not
 * be written); dnic_data_cache_free discards an entry not committed. */
bool dnic_data_cache_begin(dnic_data_cache *c, char *why, size_t whylen);
void dnic_data_cache_put(dnic_data_cache *c, const void *p, size_t n);
bool dnic_data_cache_commit(dnic_data_cache *c, char *why, size_t whylen);
void dnic_data_cache_free(dnic_data_cache *c);

#endif
