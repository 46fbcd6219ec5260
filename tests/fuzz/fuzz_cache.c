/* libFuzzer harness for the object cache's reader (compiler/jit_cache.c): the input is a cache
 * entry under the key being looked up.  Anything but a whole entry for that key whose object
 * matches the hash it holds must be a miss (NULL), never a crash or a wrong object.  With
 * $DNIC_FUZZ_SEEDS set, LLVMFuzzerInitialize writes a real entry there as a seed. */
#include "codegen.h"
#include "fuzz_common.h"

static const unsigned char KEY[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const char OBJECT[] = "\177ELF: not a real object, but the cache does not look inside";

static const char *entry(void)
{
    static char path[160];
    snprintf(path, sizeof path, "%s/0102030405060708090a0b0c0d0e0f10.o", fuzz_path(""));
    return path;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    char why[256];
    if (!dnic_jit_cache_store(fuzz_path(""), KEY, OBJECT, sizeof OBJECT, why, sizeof why)) {
        fprintf(stderr, "fuzz_cache: %s\n", why);
        abort();
    }
    fuzz_keep_seed(entry(), "entry.o", -1);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fuzz_put(entry(), data, size);
    LLVMMemoryBufferRef b = dnic_jit_cache_load(fuzz_path(""), KEY);
    if (b) {
        /* a hit is the whole rest of a well-formed entry: the magic, this key, the length, and
         * the object, whose hash the entry holds (the fuzzer learns to write a matching hash
         * from the comparison, so the object need not be the seed's) */
        size_t n = LLVMGetBufferSize(b);
        if (size != 40 + n || memcmp(data, "DNICOBJ1", 8) || memcmp(data + 8, KEY, 16) ||
            memcmp(LLVMGetBufferStart(b), data + 40, n))
            abort();
        LLVMDisposeMemoryBuffer(b);
    }
    return 0;
}

/* jit_cache.c's asserts (compiler/diag.c, not linked here) */
_Noreturn void dnic_die(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: internal error: %s\n", file, line, what);
    abort();
}
