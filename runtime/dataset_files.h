/* Loading data sets from files: IDX (the MNIST format) and CSV, into a dnic_dataset in the
 * model's dtype.  Every length in a file is checked against the bytes that are really there
 * before it is used, and every failure names the file and the place: IDX errors name the field
 * or the record (records are counted from 0, as numpy indexes them), CSV errors are
 * `path:ROW:COL: message` with ROW the 1-based file line and COL the 1-based field.
 *
 *     dnic_data_opts o = {.scale = 1.0 / 255, .one_hot = 10, .inputs = 784, .labels = 10, .dtype = DNIC_F32};
 *     dnic_dataset d;
 *     char err[512];
 *     if (dnic_load_idx(&d, "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", &o, err, sizeof err))
 *         fprintf(stderr, "%s\n", err);
 *     else { ...; dnic_dataset_free(&d); }
 */
#ifndef DNIC_DATASET_FILES_H
#define DNIC_DATASET_FILES_H

#include <stdbool.h>
#include <stddef.h>

#include "dnic/program.h"

typedef struct dnic_data_opts {
    double scale;                /* inputs are multiplied by this (1 = as stored) */
    int one_hot;                 /* > 0: labels are class numbers 0..one_hot-1, one-hot encoded;
                                    0: labels are used as values */
    int inputs, labels;          /* the widths the model declares: checked against the file
                                    (0: take whatever the file holds) */
    dnic_dtype dtype;            /* what the dataset is stored in */
    const char *label_column;    /* csv: the label column by header name... */
    int label_index;             /* ...or by 0-based index when label_column is NULL */
    bool labels_optional;        /* csv: a file with exactly `inputs` columns has no labels
                                    (the dataset's labels is 0) */
    bool keep_bytes;             /* idx: images of type 0x08 (ubyte) stay bytes (x_bytes), scaled
                                    when a batch is read: a quarter of float32's memory */
    const char *cache_dir;       /* idx: where gzip files' decoded copies are kept (runtime/
                                    data_cache.h), or NULL: every load inflates the file */
    char *note;                  /* with cache_dir: set to what the cache could not do (an entry
                                    found damaged and rebuilt, or not written), else ""; notelen
                                    bytes, or NULL */
    size_t notelen;
    int *cache_hits;             /* with cache_dir: incremented for each file read from the cache
                                    (or NULL) */
} dnic_data_opts;

/* IDX files, plain or gzip-compressed (told apart by the gzip magic, not the name).
 * images: magic 0x00000803 (ubyte, [n, rows, cols]) or any IDX type -- 0x08 ubyte, 0x09 byte,
 * 0x0B short, 0x0C int, 0x0D float, 0x0E double -- with at least 1 dimension: n = dimension 0,
 * the width is the product of the others.  labels: 1-D (one value, or one class number when
 * one_hot > 0, per record), or 2-D [n, labels] when one_hot == 0.  Values must be finite in
 * `o->dtype` after scaling; at most 2^31 - 1 values per file.  On failure *out is empty
 * (nothing to free), err says why and the status is DNIC_ERR_IO (DNIC_ERR_NOMEM when memory
 * runs out, DNIC_ERR_ARG for options out of range: negative widths or one_hot, a non-finite
 * scale). */
/* labels == NULL: the images alone, a dataset whose labels is 0. */
dnic_status dnic_load_idx(dnic_dataset *out, const char *images, const char *labels, const dnic_data_opts *o,
                          char *err, size_t errlen);

/* What --check reads of a data file, from its header alone: the values per record of an IDX
 * images file (the product of its dimensions after the first), or the columns of a CSV file's
 * header row.  0 when the header cannot be read or is not valid (the loader then says why). */
size_t dnic_idx_width(const char *path, char *err, size_t errlen); /* 0 with err set when the header is bad */
size_t dnic_csv_columns(const char *path);

/* CSV (plain or gzip): a header row of column names, then one record per line.  Every cell
 * but the header's is a number (strtod reads all of it, spaces around it allowed; finite);
 * the label column is named by o->label_column or o->label_index, every other column is an
 * input, in file order.  Fields may be double-quoted ("" is a quote inside one) but may not
 * span lines; CRLF line ends are accepted; empty lines at the end are ignored. */
dnic_status dnic_load_csv(dnic_dataset *out, const char *path, const dnic_data_opts *o, char *err, size_t errlen);

#endif
