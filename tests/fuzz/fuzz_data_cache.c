/* libFuzzer harness for the data cache (runtime/data_cache.c, through dnic_load_idx): the input
 * is the cache's entry for a small gzip IDX images file.  Whatever the entry holds, the load
 * gives the file's own values (having said that the entry was damaged), unless the entry is a
 * whole, well-formed one for this file: its magic, its key, a length that is the rest of the
 * entry (and a hash of that rest: the fuzzer learns to write a matching one from the
 * comparison, so the data need not be the file's); the loader then reads that data with every
 * check of a plain IDX file, and may refuse it.  Never a crash, a leak or a half-loaded set.
 * With $DNIC_FUZZ_SEEDS set, LLVMFuzzerInitialize keeps the real entry there as a seed. */
#include <sys/stat.h>
#include <zlib.h>

#include "data_cache.h"
#include "dataset_files.h"
#include "fuzz_common.h"

static char images[128], labels[128], entry[160];
static unsigned char key[16];
static dnic_dataset want; /* the file's values, loaded without the cache */

static dnic_data_opts opts(char *note, size_t notelen)
{
    return (dnic_data_opts){.scale = 1.0 / 255, .one_hot = 3, .inputs = 4, .labels = 3, .dtype = DNIC_F32,
                            .keep_bytes = true, .cache_dir = fuzz_path(""), .note = note, .notelen = notelen};
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static const unsigned char img[12 + 16] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 2,
                                               0, 1, 2, 255, 10, 20, 30, 40, 128, 64, 32, 16};
    static const unsigned char lab[8 + 3] = {0, 0, 8, 1, 0, 0, 0, 3, 0, 2, 1};
    snprintf(images, sizeof images, "%s", fuzz_path("images.gz"));
    snprintf(labels, sizeof labels, "%s", fuzz_path("labels"));
    gzFile g = gzopen(images, "wb");
    if (!g || gzwrite(g, img, sizeof img) != (int)sizeof img || gzclose(g) != Z_OK)
        abort();
    fuzz_put(labels, lab, sizeof lab);
    /* the entry's name and key, as the loader finds them */
    FILE *f = fopen(images, "rb");
    struct stat st;
    dnic_data_cache c;
    if (!f || fstat(fileno(f), &st) != 0 || !dnic_data_cache_init(&c, fuzz_path(""), images, f, &st))
        abort();
    fclose(f);
    snprintf(entry, sizeof entry, "%s", c.path);
    memcpy(key, c.key, sizeof key);
    dnic_data_cache_free(&c);
    char err[512], note[1024];
    dnic_data_opts o = opts(note, sizeof note);
    o.cache_dir = NULL;
    if (dnic_load_idx(&want, images, labels, &o, err, sizeof err) != DNIC_OK)
        abort();
    /* a cold load writes the real entry: the seed */
    dnic_dataset d;
    o = opts(note, sizeof note);
    if (dnic_load_idx(&d, images, labels, &o, err, sizeof err) != DNIC_OK || access(entry, R_OK) != 0)
        abort();
    dnic_dataset_free(&d);
    fuzz_keep_seed(entry, "entry.data", -1);
    return 0;
}

static uint64_t le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8 * i);
    return v;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_put(entry, data, size);
    char err[512] = "", note[1024] = "";
    dnic_data_opts o = opts(note, sizeof note);
    int hits = 0;
    o.cache_hits = &hits;
    dnic_dataset d;
    dnic_status st = dnic_load_idx(&d, images, labels, &o, err, sizeof err);
    bool whole = size >= 40 && !memcmp(data, "DNICDAT1", 8) && !memcmp(data + 8, key, 16) && le64(data + 24) == size - 40;
    if (hits > 0) { /* the entry was believed: it must be whole (its hash is checked inside) */
        if (!whole || note[0])
            abort();
    } else if (st != DNIC_OK || !note[0] || memcmp(d.x, want.x, 12) || memcmp(d.y, want.y, 3 * 3 * sizeof(float))) {
        /* not believed: said so, and decoded from the file */
        abort();
    }
    if (st == DNIC_OK) {
        dnic_dataset_free(&d);
    } else if (d.x || d.y || !err[0]) {
        abort();
    }
    return 0;
}
