/* libFuzzer harness for the checkpoint reader: dnic_train resuming (--resume) from the input,
 * a small one-stage program with a parameter, optimiser state and a temporary whose block
 * does nothing.  The input is an option byte (bit 0: make the checksums right) and the file.
 * The resume must succeed or fail with a message; nothing else.  With
 * $DNIC_FUZZ_SEEDS set, LLVMFuzzerInitialize writes a checkpoint of this program there. */
#include "dnic/program.h"
#include "fuzz_common.h"
#include "safetensors.h"

enum { X, Y, W, M, OUT, LOSS, NBUFS };
static const dnic_buffer_desc bufs[NBUFS] = {
    [X] = {"x", DNIC_BUF_INPUT, DNIC_F64, 2, 3, DNIC_DRAW_NONE, 0, 0, -1},
    [Y] = {"y", DNIC_BUF_LABELS, DNIC_F64, 2, 2, DNIC_DRAW_NONE, 0, 0, -1},
    [W] = {"h.weight", DNIC_BUF_PARAM, DNIC_F64, 3, 2, DNIC_DRAW_RANDN, 1, 0, 0},
    [M] = {"h.weight.m", DNIC_BUF_STATE, DNIC_F64, 3, 2, DNIC_DRAW_NONE, 0, 0, -1},
    [OUT] = {"h.out", DNIC_BUF_TEMP, DNIC_F64, 2, 2, DNIC_DRAW_NONE, 0, 0, -1},
    [LOSS] = {"loss", DNIC_BUF_ACC, DNIC_F64, 1, 1, DNIC_DRAW_NONE, 0, 0, -1},
};

static void step(void *const *b)
{
    ((double *)b[LOSS])[0] += 1; /* a loss to report */
}

static dnic_program prog;
static dnic_dataset data;

static void no_report(void *user, const dnic_report *r)
{
    (void)user;
    (void)r;
}

static dnic_status train(const char *checkpoint, const char *resume, char *err, size_t errlen)
{
    static const char *const text_names[] = {"dnic.model"}, *const texts[] = {"model fuzz\n"};
    dnic_train_opts o = {
        .epochs = 3,
        .report_every = 1,
        .schedule = DNIC_SCHED_SEQUENTIAL,
        .threads = 1,
        .checkpoint = checkpoint,
        .resume = resume,
        .fingerprint = 0x5eed,
        .text_names = text_names,
        .texts = texts,
        .ntexts = 1,
    };
    dnic_train_result res;
    memset(&res, 0, sizeof res);
    dnic_status s = dnic_train(&prog, &data, &o, no_report, NULL, &res);
    snprintf(err, errlen, "%s", res.error);
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    static dnic_block_desc blocks[1] = {{"step", 0, DNIC_PHASE_STEP, step, LOSS, 1, DNIC_READS_X | DNIC_READS_Y, NULL, 0}};
    static const int sg_acc[1] = {0};
    prog = (dnic_program){.bufs = bufs, .nbufs = NBUFS, .blocks = blocks, .nblocks = 1, .dtype = DNIC_F64, .batch = 2,
                          .x = X, .y = Y, .out = OUT, .loss_acc = LOSS, .sg_acc = sg_acc, .nsg = 0, .nstages = 1,
                          .nslots = 1};
    if (dnic_program_alloc(&prog) != DNIC_OK)
        abort();
    double x[12] = {0}, y[8] = {0};
    if (dnic_dataset_from_f64(&data, DNIC_F64, 4, 3, 2, x, y) != DNIC_OK)
        abort();
    char err[512];
    if (train(fuzz_path("seed.st"), NULL, err, sizeof err) != DNIC_OK) {
        fprintf(stderr, "fuzz_checkpoint: cannot make the seed: %s\n", err);
        abort();
    }
    fuzz_keep_seed(fuzz_path("seed.st"), "checkpoint.st", 1);
    fuzz_keep_seed(fuzz_path("seed.st"), "checkpoint_unsigned.st", 0);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *d, size_t size)
{
    const char *path = fuzz_path("c.st");
    size_t n;
    unsigned char *file = fuzz_file_bytes(d, size, &n, dnic_st_sign);
    fuzz_put(path, file, n);
    free(file);
    char err[512] = "";
    dnic_status s = train(NULL, path, err, sizeof err);
    if (s != DNIC_OK && (s != DNIC_ERR_IO || !err[0])) {
        fprintf(stderr, "fuzz_checkpoint: status %d without a message: '%s'\n", (int)s, err);
        abort();
    }
    return 0;
}
