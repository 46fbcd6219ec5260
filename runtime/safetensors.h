/* safetensors files: what numpy and PyTorch users read (`safetensors.numpy.load_file`).
 * Layout: u64 little-endian header length N, N bytes of JSON header (padded with spaces to a
 * multiple of 8), then the tensors' bytes back to back.  Writes are atomic; reads check every
 * length and offset against the file before touching data.
 *
 *     dnic_st_tensor t[] = {{"h1.weight", DNIC_F64, 2, {16, 64}, w}};
 *     char err[256];
 *     if (dnic_st_write("w.safetensors", t, 1, err, sizeof err) != DNIC_OK) puts(err);
 *     dnic_st_file f;
 *     if (dnic_st_read(&f, "w.safetensors", err, sizeof err) == DNIC_OK) { ...; dnic_st_close(&f); }
 */
#ifndef DNIC_SAFETENSORS_H
#define DNIC_SAFETENSORS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dnic/program.h"

typedef struct dnic_st_tensor {
    const char *name;
    dnic_dtype dtype;
    int ndim;             /* 1 or 2 */
    int64_t shape[2];
    const void *data;     /* write: the values; read: points into the file's bytes */
} dnic_st_tensor;

/* Ownership: a dnic_st_file owns its bytes, names and tensor array (dnic_st_close frees). */
typedef struct dnic_st_file {
    dnic_st_tensor *t;
    int n;
    unsigned char *bytes;
    size_t size;
    char *names;
} dnic_st_file;

/* Writes `n` tensors to `path` atomically: a temporary file in the same directory, fsync,
 * rename.  On failure nothing is left behind and err says why. */
dnic_status dnic_st_write(const char *path, const dnic_st_tensor *t, int n, char *err, size_t errlen);

/* Reads and validates a whole file.  On failure err names the file and the field or tensor.
 * Files dnic writes carry checksums of their header and their data (in __metadata__), checked
 * first: a changed byte anywhere is "the file is corrupted" with the byte range.  Files without
 * them (other writers, older dnic) are read with the other checks alone.  _as names the file's
 * kind in those messages ("the checkpoint is corrupted"). */
dnic_status dnic_st_read(dnic_st_file *f, const char *path, char *err, size_t errlen);
dnic_status dnic_st_read_as(dnic_st_file *f, const char *path, const char *kind, char *err, size_t errlen);
void dnic_st_close(dnic_st_file *f);
/* Rewrites the checksums of a whole file in memory after an edit (the fuzzers use it to reach
 * past them); false if it has none or its length is out of range. */
bool dnic_st_sign(unsigned char *file, size_t size);
const dnic_st_tensor *dnic_st_find(const dnic_st_file *f, const char *name);

/* The parameters of a program as tensors: "<layer>.weight" [in,out], "<layer>.bias" [out].
 * `out` has room for p->nbufs entries; returns how many were filled. */
int dnic_program_params(const dnic_program *p, dnic_st_tensor *out);
/* Saves the program's parameters; loads them back, checking that the file holds exactly the
 * model's parameters with their dtype and shape. */
dnic_status dnic_program_save(const dnic_program *p, const char *path, char *err, size_t errlen);
dnic_status dnic_program_load(dnic_program *p, const char *path, char *err, size_t errlen);

#endif
