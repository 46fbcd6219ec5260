/* bench/load_data.c: the CPU time and peak RSS of loading Fashion-MNIST (the training and the
 * test set, as examples/fashion_*.dni read them) with dnic's IDX loader, nothing else: the
 * measurement behind docs/benchmarks.md's data-loading rows.
 *
 *     gcc -O2 -Iruntime -Iinclude bench/load_data.c libdnic.a -lz -ldeflate -lm -lpthread -o /tmp/load_data
 *     /tmp/load_data [--floats] [--cache DIR]
 *
 * --floats keeps the pixels as float32 (the loader's behaviour before they were kept as bytes);
 * --cache DIR reads and writes the data cache there (the first run fills it). */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>

#include "dataset_files.h"

static double cpu_ms(void)
{
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return (double)(r.ru_utime.tv_sec + r.ru_stime.tv_sec) * 1e3 + (double)(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e3;
}

int main(int argc, char **argv)
{
    const char *dir = "/usr/share/datasets/fashion-mnist", *cache = NULL;
    bool floats = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--floats"))
            floats = true;
        else if (!strcmp(argv[i], "--cache") && i + 1 < argc)
            cache = argv[++i];
        else {
            fprintf(stderr, "usage: %s [--floats] [--cache DIR]\n", argv[0]);
            return 2;
        }
    }
    char f[4][256], err[512], note[1024] = "";
    const char *names[4] = {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                            "t10k-labels-idx1-ubyte.gz"};
    for (int i = 0; i < 4; i++)
        snprintf(f[i], sizeof f[i], "%s/%s", dir, names[i]);
    int hits = 0;
    dnic_data_opts o = {.scale = 1.0 / 255, .one_hot = 10, .inputs = 784, .labels = 10, .dtype = DNIC_F32,
                        .keep_bytes = !floats, .cache_dir = cache, .note = note, .notelen = sizeof note,
                        .cache_hits = &hits};
    dnic_dataset train, test;
    double t0 = cpu_ms();
    if (dnic_load_idx(&train, f[0], f[1], &o, err, sizeof err) != DNIC_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    if (note[0])
        fprintf(stderr, "note: %s\n", note);
    if (dnic_load_idx(&test, f[2], f[3], &o, err, sizeof err) != DNIC_OK) {
        fprintf(stderr, "%s\n", err);
        return 1;
    }
    double t1 = cpu_ms();
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    if (note[0])
        fprintf(stderr, "note: %s\n", note);
    printf("loaded %d + %d images (%s) in %.1f ms of CPU; %d files from the cache; peak RSS %.1f MB\n", train.n, test.n,
           floats ? "float32" : "bytes", t1 - t0, hits, (double)r.ru_maxrss / 1024);
    dnic_dataset_free(&train);
    dnic_dataset_free(&test);
    return 0;
}
