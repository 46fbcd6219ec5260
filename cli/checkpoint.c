/* What --checkpoint and --resume need from the command (the scheduler saves and loads): the
 * model's fingerprint, and SIGINT/SIGTERM turned into a stop at the next step boundary. */
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "safetensors.h"

/* The first signal asks training to stop at the next step boundary (saving the checkpoint);
 * a second exits at once (files are written atomically, so none is corrupted). */
static volatile int interrupted;

static bool under_mpi;

static void on_signal(int sig)
{
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    interrupted = 1;
    /* mpirun, told to stop, forwards the signal and no longer reads the ranks' output: a rank
     * must not block writing a report line when it should be saving the checkpoint (lines
     * that cannot go out are dropped; the checkpoint and files are what counts) */
    if (under_mpi)
        for (int fd = 1; fd <= 2; fd++) {
            int fl = fcntl(fd, F_GETFL);
            if (fl >= 0)
                fcntl(fd, F_SETFL, fl | O_NONBLOCK);
        }
}

volatile int *cli_catch_interrupts(void)
{
    interrupted = 0;
    under_mpi = cli_mpi_comm() != NULL;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    return &interrupted;
}

uint64_t cli_fingerprint(const dnic_ir *ir)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return 0;
    dnic_ir_print(ir, f);
    fclose(f);
    /* learning rates (" lr=0.05") may change on resume: they are left out */
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++) {
        if (!strncmp(buf + i, " lr=", 4)) {
            for (i += 4; i < len && buf[i] != ' ' && buf[i] != '\n'; i++)
                continue;
            if (i == len)
                break;
        }
        h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ull;
    }
    free(buf);
    return h;
}

/* Whether a setting may differ between a checkpoint and the run resuming it: only those that
 * change neither the saved state's meaning nor the path already taken. */
static bool safe_to_change(const char *key)
{
    static const char *const safe[] = {"train.epochs", "train.steps", "train.lr", "train.report_every",
                                       "train.patience"};
    for (size_t i = 0; i < sizeof safe / sizeof safe[0]; i++)
        if (!strcmp(key, safe[i]))
            return true;
    return false;
}

const char *cli_real(char *buf, size_t n, double v)
{
    for (int prec = 1; prec <= 17; prec++) {
        snprintf(buf, n, "%.*g", prec, v);
        if (strtod(buf, NULL) == v)
            break;
    }
    return buf;
}

char *cli_settings(const dnic_model *m)
{
    char r1[32], r2[32], r3[32], r4[32];
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    if (!f)
        return NULL;
    const dnic_train_spec *t = &m->train;
    const dnic_data_spec *ds = &m->data;
    static const char *const kinds[] = {"binary_addition", "idx", "csv", "copy", "repeat_copy"},
                             *const opts[] = {"sgd", "momentum", "adam"};
    fprintf(f, "data.kind = %s\n", kinds[ds->kind]);
    fprintf(f, "data.bits = %d\ndata.examples = %d\ndata.seed = %s%u\n", ds->bits, ds->examples,
            ds->has_seed ? "" : "none ", ds->has_seed ? ds->seed : 0);
    if (ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY)
        fprintf(f, "data.length = %d\ndata.repeats = %d\ndata.test_examples = %d\n", ds->length, ds->repeats,
                ds->test_examples);
    if (ds->curriculum > 0)
        fprintf(f, "data.curriculum = %s\ndata.max_length = %d\n", cli_real(r1, sizeof r1, ds->curriculum),
                ds->max_length);
    fprintf(f, "data.train = %s\ndata.train_labels = %s\ndata.test = %s\ndata.test_labels = %s\n",
            ds->train_x ? ds->train_x : "none", ds->train_y ? ds->train_y : "none", ds->test_x ? ds->test_x : "none",
            ds->test_y ? ds->test_y : "none");
    fprintf(f, "data.label = %s\ndata.scale = %s\ndata.one_hot = %d\ndata.inputs = %d\ndata.labels = %d\n",
            ds->label_column ? ds->label_column : "index", cli_real(r1, sizeof r1, ds->scale), ds->one_hot, ds->inputs,
            ds->labels);
    fprintf(f, "data.limit = %d\ndata.test_limit = %d\ndata.validation = %s\n", ds->limit, ds->test_limit,
            cli_real(r1, sizeof r1, ds->validation));
    fprintf(f, "train.mode = %s\ntrain.batch = %d\ntrain.lr = %s\n", t->mode == DNIC_MODE_DNI ? "dni" : "backprop",
            t->batch, cli_real(r1, sizeof r1, t->lr));
    if (t->epochs)
        fprintf(f, "train.epochs = %lld\n", t->epochs);
    else
        fprintf(f, "train.steps = %lld\n", t->steps);
    fprintf(f, "train.report_every = %lld\ntrain.seed = %u\ntrain.dtype = %s\n", t->report_every, t->seed,
            t->dtype == DNIC_F64 ? "float64" : "float32");
    fprintf(f, "train.backward_message = %s\ntrain.lag = %d\ntrain.optimizer = %s\n",
            t->message == DNIC_MSG_AFTER_UPDATE ? "after_update" : "before_update", t->lag, opts[t->opt.kind]);
    fprintf(f, "train.momentum = %s\ntrain.beta1 = %s\ntrain.beta2 = %s\ntrain.eps = %s\n",
            cli_real(r1, sizeof r1, t->opt.momentum), cli_real(r2, sizeof r2, t->opt.beta1),
            cli_real(r3, sizeof r3, t->opt.beta2), cli_real(r4, sizeof r4, t->opt.eps));
    fprintf(f, "train.shuffle = %s\ntrain.patience = %lld\n", t->shuffle ? "true" : "false", t->patience);
    fclose(f);
    return buf;
}

bool cli_setting_of(const char *text, const char *key, char *v, size_t n)
{
    size_t kl = strlen(key);
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL)
        if (!strncmp(l, key, kl) && !strncmp(l + kl, " = ", 3)) {
            const char *e = strchr(l, '\n');
            size_t len = e ? (size_t)(e - l) - kl - 3 : strlen(l + kl + 3);
            snprintf(v, n, "%.*s", (int)len, l + kl + 3);
            return true;
        }
    return false;
}

char *cli_checkpoint_text(const char *path, const char *name, char *err, size_t errlen)
{
    dnic_st_file f;
    if (errlen)
        err[0] = '\0';
    if (dnic_st_read_as(&f, path, "checkpoint", err, errlen) != DNIC_OK)
        return NULL;
    const dnic_st_tensor *t = dnic_st_find(&f, name);
    char *s = NULL;
    if (t && t->dtype == DNIC_F64 && t->ndim == 1 && t->shape[0] > 0) {
        size_t n = (size_t)t->shape[0] * sizeof(double);
        const char *b = t->data;
        if (memchr(b, '\0', n) && (s = malloc(n)))
            memcpy(s, b, n);
    }
    dnic_st_close(&f);
    return s;
}

bool cli_resume_check(dnic_diag *d, const char *ckpt, const char *now)
{
    char err[512];
    char *then = cli_checkpoint_text(ckpt, "dnic.settings", err, sizeof err);
    if (!then || !now) { /* not a checkpoint of this format: the scheduler says so */
        free(then);
        return true;
    }
    int refused = 0;
    char key[128], a[512], b[512];
    /* every key of either side, in the order of the checkpoint's list and then of this run's */
    for (int side = 0; side < 2; side++) {
        const char *text = side ? now : then;
        for (const char *l = text; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
            const char *eq = strstr(l, " = ");
            if (!eq || (size_t)(eq - l) >= sizeof key)
                continue;
            snprintf(key, sizeof key, "%.*s", (int)(eq - l), l);
            bool ha = cli_setting_of(then, key, a, sizeof a), hb = cli_setting_of(now, key, b, sizeof b);
            if ((side == 1 && ha) || (ha && hb && !strcmp(a, b)))
                continue;
            if (!ha)
                snprintf(a, sizeof a, "unset");
            if (!hb)
                snprintf(b, sizeof b, "unset");
            if (safe_to_change(key)) { /* said only for the rate: a longer run is what resuming is for */
                if (!strcmp(key, "train.lr"))
                    fprintf(stderr, "dnic: note: %s: %s in the checkpoint, %s now\n", key, a, b);
            } else {
                dnic_error(d, (dnic_span){0}, "%s: %s: %s in the checkpoint, %s now", ckpt, key, a, b);
                refused++;
            }
        }
    }
    if (refused)
        dnic_note(d, (dnic_span){0},
                  "only train.epochs, train.steps, train.lr, train.report_every and train.patience may change on "
                  "resume; `dnic --resume %s --run` alone uses the checkpoint's model and settings", ckpt);
    free(then);
    return refused == 0;
}
