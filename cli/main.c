/* The dnic command: reads the flags and runs the pipeline (driver.c). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "cli.h"
#include "plot.h"

static void usage(FILE *out)
{
    fputs("usage: dnic FILE.dni [options]\n"
          "\n"
          "Compiles a model described in a .dni file and trains it with synthetic gradients\n"
          "(Decoupled Neural Interfaces) or backpropagation.\n"
          "\n"
          "actions (default: --check):\n"
          "  --check              parse and check the model, print a one-line summary\n"
          "  --run                compile it with the JIT and train it, printing report lines\n"
          "  --dump-ast           print the syntax tree\n"
          "  --dump-ir            print the training step's IR\n"
          "  --emit-dot           print a Graphviz picture of layers and SG modules\n"
          "  --emit-llvm FILE     write the optimised LLVM module as text\n"
          "  -S FILE              write the generated assembly\n"
          "  -c                   write an object file and a C header to link the model into\n"
          "                       any program (docs/embedding.md)\n"
          "\n"
          "object files (-c):\n"
          "  -o FILE              the object (default: the model file's name with .o)\n"
          "  --header FILE        the header (default: the object's name with .h)\n"
          "  --prefix NAME        the symbols' prefix (default: the model's name)\n"
          "  --cpu NAME           the CPU to compile for (default: x86-64-v3, i.e. AVX2 and FMA;\n"
          "                       'native': this machine's)\n"
          "  --target TRIPLE      the target triple (default: this machine's)\n"
          "\n"
          "options:\n"
          "  --set KEY=VALUE      override a setting, e.g. --set train.lr=0.05,\n"
          "                       --set sg.h1.input=labels (keys: data.K, train.K, loss.K,\n"
          "                       layer.NAME.K, sg.NAME.K); may be repeated\n"
          "  --load-weights FILE  start from the weights in FILE (safetensors) instead of\n"
          "                       the model's initialisers\n"
          "  --save-init FILE     write the weights before the first step (safetensors)\n"
          "  --save-weights FILE  write the trained weights (safetensors)\n"
          "  --export-data FILE   write the training data as dnic sees it (x, y)\n"
          "  --save-predictions FILE\n"
          "                       write the trained model's outputs for the training inputs\n"
          "                       (y_pred)\n"
          "  --log FILE.csv       write one row per report: iter, step, loss, each SG\n"
          "                       module's synthetic loss, elapsed seconds\n"
          "  --schedule auto|sequential|pipeline\n"
          "                       run stages one after another, or each on its own thread\n"
          "                       (default auto: the planner decides; docs/scheduler.md)\n"
          "  --threads N          threads for the pipeline, or in a sequential run for the\n"
          "                       large matrix products (default: the number of cores)\n"
          "  --plot FILE.svg      draw the loss (and accuracy) curves of the run\n"
          "  --vary KEY=V1,V2,... train one variant per value (each an extra --set) and\n"
          "                       compare them in a table (and one --plot chart)\n"
          "  --checkpoint FILE    save the whole training state to FILE (at the end, every\n"
          "                       --checkpoint-every N epochs, and on SIGINT/SIGTERM)\n"
          "  --resume FILE        continue from a checkpoint, exactly where it stopped\n"
          "  --no-cache           compile without the object cache (default: compiled code is\n"
          "                       kept in $DNIC_CACHE_DIR, else $XDG_CACHE_HOME/dnic, else\n"
          "                       ~/.cache/dnic, and reused when nothing changed)\n"
          "  --progress, --no-progress\n"
          "                       draw a progress line on stderr (default: on a terminal)\n"
          "  -h, --help           show this help\n"
          "  --version            show the version\n"
          "\n"
          "       dnic plot LOG.csv [LOG.csv ...] -o CHART.svg\n"
          "                       overlay the curves of several runs' --log files\n"
          "\n"
          "The language is described in docs/language.md.\n",
          out);
}

static int bad_flag(const char *fmt, const char *arg)
{
    fprintf(stderr, "dnic: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'dnic --help' for the options)\n");
    return DNIC_EXIT_USER;
}

/* dnic plot A.csv [B.csv ...] -o F.svg: overlays the curves of several runs' logs. */
static int plot_command(int argc, char **argv)
{
    const char **csv = calloc((size_t)argc + 1, sizeof *csv);
    const char *out = NULL;
    int n = 0, rc = DNIC_EXIT_USER;
    if (!csv)
        return DNIC_EXIT_INTERNAL;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "-o")) {
            if (i + 1 >= argc) {
                rc = bad_flag("%s needs a value", "-o");
                goto out;
            }
            out = argv[++i];
        } else if (argv[i][0] == '-') {
            rc = bad_flag("unknown option '%s' for dnic plot (dnic plot LOG.csv... -o CHART.svg)", argv[i]);
            goto out;
        } else {
            csv[n++] = argv[i];
        }
    }
    if (!n || !out) {
        rc = bad_flag("%s", "dnic plot LOG.csv [LOG.csv ...] -o CHART.svg");
        goto out;
    }
    rc = dnic_plot(csv, NULL, n, out) == 0 ? DNIC_EXIT_OK : DNIC_EXIT_USER;
out:
    free(csv);
    return rc;
}

int main(int argc, char **argv)
{
    static const char *const flags[] = {"--check", "--run", "--dump-ast", "--dump-ir", "--emit-dot", "--emit-llvm",
                                        "--set", "--progress", "--no-progress", "--no-cache", "--help", "--version",
                                        "--save-weights", "--load-weights", "--save-init", "--export-data", "--log",
                                        "--header", "--prefix", "--cpu", "--target", "--save-predictions",
                                        "--schedule", "--threads", "--plot",
                                        "--checkpoint", "--checkpoint-every", "--resume", "--vary"};
    if (argc >= 2 && !strcmp(argv[1], "plot"))
        return plot_command(argc - 2, argv + 2);
    dnic_options o = {.progress = -1, .action = DNIC_ACTION_CHECK};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    if (!sets)
        return DNIC_EXIT_INTERNAL;
    o.overrides = sets;
    int rc;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        static const char *const valued[] = {"--emit-llvm", "-S", "--set", "--save-weights", "--load-weights",
                                             "--save-init", "--export-data", "--log", "-o", "--header",
                                             "--prefix", "--cpu", "--target", "--save-predictions", "--schedule",
                                             "--threads", "--plot", "--checkpoint", "--checkpoint-every",
                                             "--resume", "--vary"};
        bool takes_value = false;
        for (size_t k = 0; k < sizeof valued / sizeof valued[0]; k++)
            takes_value |= !strcmp(a, valued[k]);
        const char *val = NULL;
        if (takes_value) {
            if (i + 1 >= argc) {
                rc = bad_flag("%s needs a value", a);
                goto out;
            }
            val = argv[++i];
        } else if (!strncmp(a, "--set=", 6)) {
            sets[o.noverrides++] = a + 6;
            continue;
        }
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            usage(stdout);
            rc = DNIC_EXIT_OK;
            goto out;
        } else if (!strcmp(a, "--version")) {
            printf("dnic %s (LLVM 19)\n", PACKAGE_VERSION);
            rc = DNIC_EXIT_OK;
            goto out;
        } else if (!strcmp(a, "--check")) {
            o.action = DNIC_ACTION_CHECK;
        } else if (!strcmp(a, "--run")) {
            o.action = DNIC_ACTION_RUN;
        } else if (!strcmp(a, "--dump-ast")) {
            o.dump_ast = true;
        } else if (!strcmp(a, "--dump-ir")) {
            o.dump_ir = true;
        } else if (!strcmp(a, "--emit-dot")) {
            o.emit_dot = true;
        } else if (!strcmp(a, "--emit-llvm")) {
            o.emit_llvm = val;
        } else if (!strcmp(a, "-S")) {
            o.emit_asm = val;
        } else if (!strcmp(a, "--set")) {
            sets[o.noverrides++] = val;
        } else if (!strcmp(a, "-c")) {
            o.action = DNIC_ACTION_OBJECT;
        } else if (!strcmp(a, "-o")) {
            o.out_path = val;
        } else if (!strcmp(a, "--header")) {
            o.header_path = val;
        } else if (!strcmp(a, "--prefix")) {
            o.prefix = val;
        } else if (!strcmp(a, "--cpu")) {
            o.cpu = val;
        } else if (!strcmp(a, "--target")) {
            o.target = val;
        } else if (!strcmp(a, "--save-weights")) {
            o.save_weights = val;
        } else if (!strcmp(a, "--load-weights")) {
            o.load_weights = val;
        } else if (!strcmp(a, "--save-init")) {
            o.save_init = val;
        } else if (!strcmp(a, "--schedule")) {
            if (!strcmp(val, "auto"))
                o.schedule = DNIC_SCHED_AUTO;
            else if (!strcmp(val, "sequential"))
                o.schedule = DNIC_SCHED_SEQUENTIAL;
            else if (!strcmp(val, "pipeline"))
                o.schedule = DNIC_SCHED_PIPELINE;
            else {
                rc = bad_flag("--schedule is auto, sequential or pipeline, not '%s'", val);
                goto out;
            }
        } else if (!strcmp(a, "--threads")) {
            char *end;
            long n = strtol(val, &end, 10);
            if (*val == '\0' || *end != '\0' || n < 1 || n > 64) {
                rc = bad_flag("--threads is a number from 1 to 64, not '%s'", val);
                goto out;
            }
            o.threads = (int)n;
        } else if (!strcmp(a, "--vary")) {
            o.vary = val;
        } else if (!strcmp(a, "--checkpoint")) {
            o.checkpoint = val;
        } else if (!strcmp(a, "--resume")) {
            o.resume = val;
        } else if (!strcmp(a, "--checkpoint-every")) {
            char *end;
            long long n = strtoll(val, &end, 10);
            if (*val == '\0' || *end != '\0' || n < 1) {
                rc = bad_flag("--checkpoint-every is a positive number of epochs (steps for a model counting steps), not '%s'",
                              val);
                goto out;
            }
            o.checkpoint_every = n;
        } else if (!strcmp(a, "--plot")) {
            o.plot_svg = val;
        } else if (!strcmp(a, "--save-predictions")) {
            o.save_predictions = val;
        } else if (!strcmp(a, "--export-data")) {
            o.export_data = val;
        } else if (!strcmp(a, "--log")) {
            o.log_csv = val;
        } else if (!strcmp(a, "--progress")) {
            o.progress = 1;
        } else if (!strcmp(a, "--no-progress")) {
            o.progress = 0;
        } else if (!strcmp(a, "--no-cache")) {
            o.no_cache = true;
        } else if (a[0] == '-' && a[1]) {
            const char *best = dnic_did_you_mean(a, flags, (int)(sizeof flags / sizeof flags[0]));
            fprintf(stderr, "dnic: error: unknown option '%s'", a);
            if (best)
                fprintf(stderr, " (did you mean '%s'?)", best);
            fprintf(stderr, "\n(run 'dnic --help' for the options)\n");
            rc = DNIC_EXIT_USER;
            goto out;
        } else if (o.path) {
            rc = bad_flag("one model file at a time ('%s' is a second)", a);
            goto out;
        } else {
            o.path = a;
        }
    }
    const char *needs_run = o.save_weights ? "--save-weights" : o.load_weights ? "--load-weights" : o.save_init ? "--save-init"
                          : o.export_data ? "--export-data" : o.log_csv ? "--log"
                          : o.save_predictions ? "--save-predictions" : o.plot_svg ? "--plot"
                          : o.checkpoint ? "--checkpoint" : o.resume ? "--resume" : o.vary ? "--vary" : NULL;
    if (needs_run && o.action != DNIC_ACTION_RUN) {
        rc = bad_flag("%s works with --run", needs_run);
        goto out;
    }
    const char *needs_c = o.out_path ? "-o" : o.header_path ? "--header" : o.prefix ? "--prefix" : o.cpu ? "--cpu"
                        : o.target ? "--target" : NULL;
    if (needs_c && o.action != DNIC_ACTION_OBJECT) {
        rc = bad_flag("%s works with -c", needs_c);
        goto out;
    }
    if (o.checkpoint_every && !o.checkpoint) {
        rc = bad_flag("%s", "--checkpoint-every needs --checkpoint FILE");
        goto out;
    }
    if (!o.path) {
        rc = bad_flag("%s", "no model file given: dnic FILE.dni [--check | --run | ...]");
        goto out;
    }
    if (o.vary && (o.log_csv || o.save_weights || o.checkpoint || o.resume)) {
        rc = bad_flag("%s", "--vary runs several models: --log, --save-weights, --checkpoint and --resume would mix them");
        goto out;
    }
    rc = o.vary ? dnic_vary(&o, o.vary) : dnic_compile(&o);
out:
    free(sets);
    return rc;
}
