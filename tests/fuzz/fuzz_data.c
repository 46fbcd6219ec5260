/* libFuzzer harness for the data loaders (runtime/dataset_files.c).  Input layout:
 *     byte 0      options: bit 0 scale 1/255, bit 1 one_hot (3, or 10 with bit 5), bit 2 float64,
 *                 bit 3 the CSV label by the name "label" (else by index, bits 6-7),
 *                 bit 4 declared widths inputs = 4, labels = one_hot or 1 (else unchecked)
 *     bytes 1-2   split point s (little-endian), at most the payload's length
 *     bytes 3..   the payload
 * The payload goes to one temporary file (read as CSV, and as IDX images and labels at once);
 * payload[0, s) and payload[s, end) go to two more, read as an IDX images and labels pair.
 * Files starting with the gzip magic are read as gzip, so gzip seeds reach the stream code.
 * Every dataset loaded is freed; ASan's leak check covers the error paths.  Build and run:
 *     clang -std=c11 -D_POSIX_C_SOURCE=200809L -g -O1 -fsanitize=fuzzer,address,undefined -Iinclude -Iruntime \
 *         tests/fuzz/fuzz_data.c runtime/dataset_files.c runtime/program.c runtime/rng.c runtime/report.c \
 *         -lz -lm -o fuzz_data && ./fuzz_data -max_total_time=300 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dataset_files.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char dir[64], whole[96], images[96], labels[96];

static void cleanup(void)
{
    unlink(whole);
    unlink(images);
    unlink(labels);
    rmdir(dir);
}

static void put(const char *path, const uint8_t *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (n && fwrite(p, 1, n, f) != n)
        abort();
    if (fclose(f) != 0)
        abort();
}

static void check(dnic_status st, dnic_dataset *d, const char *err)
{
    if (st == DNIC_OK) {
        /* a loaded dataset is whole: touch its last values */
        if (d->n <= 0 || d->inputs <= 0 || d->labels <= 0 || !d->x || !d->y)
            abort();
        size_t es = dnic_dtype_size(d->dtype);
        volatile unsigned char sink = ((unsigned char *)d->x)[(size_t)d->n * (size_t)d->inputs * es - 1];
        sink = ((unsigned char *)d->y)[(size_t)d->n * (size_t)d->labels * es - 1];
        (void)sink;
        dnic_dataset_free(d);
    } else {
        /* a failure leaves nothing to free and says why */
        if (d->x || d->y || !err[0])
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!dir[0]) {
        /* $TMPDIR, else memory (/dev/shm) rather than a disk: three files are written per input */
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp || strlen(tmp) > 32)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(dir, sizeof dir, "%s/dnic-fuzz-data-XXXXXX", tmp);
        if (!mkdtemp(dir))
            abort();
        snprintf(whole, sizeof whole, "%s/whole", dir);
        snprintf(images, sizeof images, "%s/images", dir);
        snprintf(labels, sizeof labels, "%s/labels", dir);
        atexit(cleanup);
    }
    if (size < 3)
        return 0;
    uint8_t ctl = data[0];
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (split > size)
        split = size;
    int one_hot = ctl & 2 ? (ctl & 32 ? 10 : 3) : 0;
    dnic_data_opts o = {
        .scale = ctl & 1 ? 1.0 / 255 : 1,
        .one_hot = one_hot,
        .inputs = ctl & 16 ? 4 : 0,
        .labels = ctl & 16 ? (one_hot ? one_hot : 1) : 0,
        .dtype = ctl & 4 ? DNIC_F64 : DNIC_F32,
        .label_column = ctl & 8 ? "label" : NULL,
        .label_index = ctl >> 6,
    };

    dnic_dataset d;
    char err[512];
    put(whole, data, size);
    err[0] = '\0';
    check(dnic_load_csv(&d, whole, &o, err, sizeof err), &d, err);
    err[0] = '\0';
    check(dnic_load_idx(&d, whole, whole, &o, err, sizeof err), &d, err);

    put(images, data, split);
    put(labels, data + split, size - split);
    err[0] = '\0';
    check(dnic_load_idx(&d, images, labels, &o, err, sizeof err), &d, err);
    return 0;
}
