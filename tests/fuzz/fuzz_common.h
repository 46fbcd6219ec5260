/* What the loader fuzzers share: a private directory for the files they write each input to
 * (memory-backed when /dev/shm is there), removed at exit.  Header-only: each fuzzer is one
 * C file built by tests/fuzz/run.sh. */
#ifndef DNIC_FUZZ_COMMON_H
#define DNIC_FUZZ_COMMON_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

static char fuzz_dir[64];

static void fuzz_cleanup(void)
{
    char cmd[96];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", fuzz_dir);
    if (fuzz_dir[0] && system(cmd) != 0)
        fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

/* The path of `name` in the fuzzer's directory (made on first use). */
static const char *fuzz_path(const char *name)
{
    static char buf[4][128];
    static int k;
    if (!fuzz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        if (!tmp || !*tmp || strlen(tmp) > 32)
            tmp = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        snprintf(fuzz_dir, sizeof fuzz_dir, "%s/dnic-fuzz-XXXXXX", tmp);
        if (!mkdtemp(fuzz_dir))
            abort();
        atexit(fuzz_cleanup);
    }
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", fuzz_dir, name);
    return buf[k];
}

static void fuzz_put(const char *path, const void *p, size_t n)
{
    FILE *f = fopen(path, "wb");
    if (!f || (n && fwrite(p, 1, n, f) != n) || fclose(f) != 0)
        abort();
}

/* Copies file `from` into the seed directory $DNIC_FUZZ_SEEDS (if set) as `name`, after the
 * byte `lead` when it is 0-255 (the harness's option byte). */
static void fuzz_keep_seed(const char *from, const char *name, int lead)
{
    const char *dir = getenv("DNIC_FUZZ_SEEDS");
    if (!dir)
        return;
    char to[512], buf[65536];
    snprintf(to, sizeof to, "%s/%s", dir, name);
    FILE *in = fopen(from, "rb"), *out = fopen(to, "wb");
    if (!in || !out)
        abort();
    if (lead >= 0)
        fputc(lead, out);
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0)
        fwrite(buf, 1, n, out);
    fclose(in);
    if (fclose(out) != 0)
        abort();
}

/* The input's file bytes, after an option byte whose bit 0 asks for the safetensors checksums
 * to be made right (so that mutations reach the checks behind them): into a malloc'd copy. */
static unsigned char *fuzz_file_bytes(const uint8_t *data, size_t size, size_t *n, bool (*sign)(unsigned char *, size_t))
{
    *n = size ? size - 1 : 0;
    unsigned char *b = malloc(*n + 1);
    if (!b)
        abort();
    if (*n)
        memcpy(b, data + 1, *n);
    if (size && (data[0] & 1))
        sign(b, *n);
    return b;
}

#endif
