/* What --checkpoint and --resume need from the command (the scheduler saves and loads): the
 * model's fingerprint, and SIGINT/SIGTERM turned into a stop at the next step boundary. */
#include <signal.h>
#include <stdlib.h>

#include "cli.h"

/* The first signal asks training to stop at the next step boundary (saving the checkpoint);
 * a second exits at once (files are written atomically, so none is corrupted). */
static volatile int interrupted;

static void on_signal(int sig)
{
    if (interrupted) {
        signal(sig, SIG_DFL);
        raise(sig);
    }
    interrupted = 1;
}

volatile int *cli_catch_interrupts(void)
{
    interrupted = 0;
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
    uint64_t h = 0xcbf29ce484222325ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)buf[i]) * 0x100000001b3ull;
    free(buf);
    return h;
}
