/* libFuzzer harness for the weights readers: dnic_st_read (any safetensors file) and
 * dnic_rt_load, what the objects `dnic -c` emits call (NAME_load), into a small model in
 * float32 and in float64.  The input is the file.  A load that succeeds must leave finite
 * weights; one that fails must leave the weights unchanged and say why.  With
 * $DNIC_FUZZ_SEEDS set, LLVMFuzzerInitialize writes the models' own weights there as seeds. */
#include <math.h>

#include "dnic/embed.h"
#include "fuzz_common.h"
#include "safetensors.h"

/* x [2,3], y [2,2], h.weight [3,2] (randn), h.bias [2], h.out, the loss accumulator */
static const char DESC[] = "dnic-model 1 %d 2 7 0 0 1 4 5 1\n"
                           "buf x 0 2 3 0 0 0 -1\n"
                           "buf y 1 2 2 0 0 0 -1\n"
                           "buf h.weight 2 3 2 1 1 0 0\n"
                           "buf h.bias 2 1 2 0 0 0 -1\n"
                           "buf h.out 3 2 2 0 0 0 -1\n"
                           "buf loss 4 1 1 0 0 0 -1\n"
                           "block predict 0 2 -1\n"
                           "block step 0 0 5\n";

static void nothing(void *const *bufs)
{
    (void)bufs;
}

static dnic_rt *models[2];

static dnic_rt *model(int dtype)
{
    if (!models[dtype]) {
        char desc[sizeof DESC + 8];
        snprintf(desc, sizeof desc, DESC, dtype);
        const dnic_block_fn fns[2] = {nothing, nothing};
        if (!(models[dtype] = dnic_rt_create(desc, fns, 2)))
            abort();
    }
    return models[dtype];
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* the C API's own garbage: no model, no path */
    if (dnic_rt_load(model(0), NULL) == 0 || strcmp(dnic_rt_error(model(0)), "load: no file name given") ||
        dnic_rt_save(model(0), "") == 0 || dnic_rt_load(NULL, "w.st") == 0 || dnic_rt_save(NULL, "w.st") == 0)
        abort();
    for (int t = 0; t < 2; t++) {
        if (dnic_rt_save(model(t), fuzz_path("seed.st")) != 0)
            abort();
        fuzz_keep_seed(fuzz_path("seed.st"), t ? "weights_f64.st" : "weights_f32.st", 1);
        fuzz_keep_seed(fuzz_path("seed.st"), t ? "weights_f64_unsigned.st" : "weights_f32_unsigned.st", 0);
    }
    return 0;
}

/* The weights' bytes, to see that a failed load changed none. */
static size_t snapshot(dnic_rt *m, unsigned char *buf)
{
    dnic_program *p = dnic_rt_program(m);
    size_t n = 0;
    for (int i = 0; i < p->nbufs; i++)
        if (p->bufs[i].kind == DNIC_BUF_PARAM) {
            size_t b = (size_t)p->bufs[i].rows * (size_t)p->bufs[i].cols * dnic_dtype_size(p->dtype);
            memcpy(buf + n, p->ptrs[i], b);
            n += b;
        }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *path = fuzz_path("w.st");
    size_t n;
    unsigned char *file = fuzz_file_bytes(data, size, &n, dnic_st_sign);
    fuzz_put(path, file, n);
    free(file);
    dnic_st_file f;
    char err[512] = "";
    if (dnic_st_read(&f, path, err, sizeof err) == DNIC_OK) {
        /* every tensor lies inside the file */
        for (int i = 0; i < f.n; i++) {
            size_t b = dnic_dtype_size(f.t[i].dtype) * (size_t)f.t[i].shape[0] * (size_t)(f.t[i].ndim == 2 ? f.t[i].shape[1] : 1);
            const unsigned char *p = f.t[i].data;
            if (p < f.bytes || p + b > f.bytes + f.size || dnic_st_find(&f, f.t[i].name) == NULL)
                abort();
        }
        dnic_st_close(&f);
    } else if (!err[0] || f.t || f.bytes) {
        abort();
    }
    for (int t = 0; t < 2; t++) {
        dnic_rt *m = model(t);
        unsigned char before[256], after[256];
        size_t n = snapshot(m, before);
        if (dnic_rt_load(m, path) != 0) {
            if (!dnic_rt_error(m)[0] || snapshot(m, after) != n || memcmp(before, after, n))
                abort();
            continue;
        }
        dnic_program *p = dnic_rt_program(m);
        for (int i = 0; i < p->nbufs; i++)
            if (p->bufs[i].kind == DNIC_BUF_PARAM)
                for (int k = 0; k < p->bufs[i].rows * p->bufs[i].cols; k++)
                    if (!isfinite(t ? ((double *)p->ptrs[i])[k] : ((float *)p->ptrs[i])[k]))
                        abort();
        double x[6] = {0}, y[4];
        dnic_rt_predict(m, x, y, 2);
    }
    return 0;
}
