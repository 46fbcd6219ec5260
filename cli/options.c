/* The dnic command's options: one table, from which the parser, the rules between options
 * (what needs --run, -c or another option, what excludes what) and `dnic --help` are derived. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "config.h"

/* How an option's argument (or its presence) lands in dnic_options. */
typedef enum opt_kind {
    OPT_ACTION,  /* o->action = value (and with an argument, the const char * at `field` = it) */
    OPT_TRUE,    /* the bool at `field` = true */
    OPT_INT,     /* the int at `field` = value */
    OPT_STRING,  /* the const char * at `field` = the argument */
    OPT_SET,     /* the argument is appended to o->overrides */
    OPT_PARSED,  /* parse(o, argument); when it fails, `bad` is the message */
    OPT_HELP,
    OPT_VERSION,
} opt_kind;

typedef enum opt_section {
    SEC_ACTIONS,
    SEC_OBJECT,
    SEC_MODEL,
    SEC_RUN,
    SEC_RUNNING,
    SEC_OTHER,
} opt_section;

static const char *const section_titles[] = {
    [SEC_ACTIONS] = "actions (default: --check):",
    [SEC_OBJECT] = "object files (with -c):",
    [SEC_MODEL] = "the model:",
    [SEC_RUN] = "a run's files and variants (with --run):",
    [SEC_RUNNING] = "how it runs:",
    [SEC_OTHER] = "",
};

typedef struct cli_option {
    const char *name;     /* as typed: "--run", "-c" */
    const char *alias;    /* another spelling ("-h"), or NULL */
    const char *arg;      /* the argument's name in --help; NULL: the option takes none */
    opt_section section;
    const char *help;     /* '\n' starts another line */
    opt_kind kind;
    size_t field;         /* offsetof(dnic_options, ...) for OPT_TRUE, OPT_INT, OPT_STRING */
    int value;            /* for OPT_ACTION and OPT_INT */
    bool (*parse)(dnic_options *o, const char *arg);
    const char *bad;      /* printf format (the argument) for a value parse refuses */
    bool joined;          /* also accepted as NAME=ARG */
    /* the option this one works with: for an action, that it is the action chosen; "A|B": either */
    const char *needs;
    /* options that cannot go with this one, and why (`NAME WHY: A, B and C would mix them`) */
    const char *excludes[5];
    const char *excludes_why;
} cli_option;

static bool parse_schedule(dnic_options *o, const char *v)
{
    if (!strcmp(v, "auto"))
        o->schedule = DNIC_SCHED_AUTO;
    else if (!strcmp(v, "sequential"))
        o->schedule = DNIC_SCHED_SEQUENTIAL;
    else if (!strcmp(v, "pipeline"))
        o->schedule = DNIC_SCHED_PIPELINE;
    else if (!strcmp(v, "mpi"))
        o->schedule = DNIC_SCHED_MPI;
    else
        return false;
    return true;
}

static bool parse_plot_x(dnic_options *o, const char *v)
{
    if (strcmp(v, "step") && strcmp(v, "time"))
        return false;
    o->plot_time = !strcmp(v, "time");
    return true;
}

static bool parse_threads(dnic_options *o, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > 64)
        return false;
    o->threads = (int)n;
    return true;
}

static bool parse_replicas(dnic_options *o, const char *v)
{
    char *end;
    long n = strtol(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1 || n > 64)
        return false;
    o->replicas = (int)n;
    return true;
}

static bool parse_vary(dnic_options *o, const char *v)
{
    const char *eq = strchr(v, '=');
    if (!eq || eq == v || !eq[1] || o->nvary == (int)(sizeof o->vary / sizeof *o->vary))
        return false;
    o->vary[o->nvary++] = v;
    return true;
}

static bool parse_every(dnic_options *o, const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    if (*v == '\0' || *end != '\0' || n < 1)
        return false;
    o->checkpoint_every = n;
    return true;
}

#define FIELD(f) .field = offsetof(dnic_options, f)

/* In --help's order.  The order also decides which option a broken rule names when several
 * break it: the first in the table. */
static const cli_option options[] = {
    {"--check", NULL, NULL, SEC_ACTIONS, "parse and check the model, print its summary (per layer:\nwidth, parameters, flops per step, stage; the totals)", OPT_ACTION,
     .value = DNIC_ACTION_CHECK},
    {"--run", NULL, NULL, SEC_ACTIONS, "compile it with the JIT and train it, printing report lines\nand a summary",
     OPT_ACTION, .value = DNIC_ACTION_RUN},
    {"-c", NULL, NULL, SEC_ACTIONS,
     "write an object file and a C header to link the model into\nany program (docs/embedding.md)", OPT_ACTION,
     .value = DNIC_ACTION_OBJECT},
    {"--eval", NULL, NULL, SEC_ACTIONS,
     "score the weights of --load-weights on the model's test and\nvalidation sets (loss, accuracy, per class); compiles\n"
     "only the forward pass",
     OPT_ACTION, .value = DNIC_ACTION_EVAL, .needs = "--load-weights"},
    {"--predict", NULL, "DATA", SEC_ACTIONS,
     "write the outputs of --load-weights for DATA's inputs (a\nCSV file with the model's input columns, labels optional,\n"
     "or an IDX images file) to -o FILE (.csv or .safetensors;\ndefault: CSV on stdout)",
     OPT_ACTION, FIELD(predict), .value = DNIC_ACTION_PREDICT, .needs = "--load-weights"},
    {"--dump-ast", NULL, NULL, SEC_ACTIONS, "print the syntax tree", OPT_TRUE, FIELD(dump_ast)},
    {"--dump-ir", NULL, NULL, SEC_ACTIONS, "print the training step's IR", OPT_TRUE, FIELD(dump_ir)},
    {"--emit-dot", NULL, NULL, SEC_ACTIONS, "print a Graphviz picture of layers and SG modules", OPT_TRUE,
     FIELD(emit_dot)},
    {"--emit-llvm", NULL, "FILE", SEC_ACTIONS, "write the optimised LLVM module as text", OPT_STRING,
     FIELD(emit_llvm)},
    {"-S", NULL, "FILE", SEC_ACTIONS, "write the generated assembly", OPT_STRING, FIELD(emit_asm)},

    {"-o", NULL, "FILE", SEC_OBJECT,
     "the object (default: the model file's name with .o); with\n--predict, the predictions' file", OPT_STRING,
     FIELD(out_path), .needs = "-c|--predict"},
    {"--header", NULL, "FILE", SEC_OBJECT, "the header (default: the object's name with .h)", OPT_STRING,
     FIELD(header_path), .needs = "-c"},
    {"--prefix", NULL, "NAME", SEC_OBJECT, "the symbols' prefix (default: the model's name)", OPT_STRING,
     FIELD(prefix), .needs = "-c"},
    {"--cpu", NULL, "NAME", SEC_OBJECT,
     "the CPU to compile for (default: x86-64-v3, i.e. AVX2 and FMA,\non x86-64, else the target's generic CPU; 'native': this\nmachine's)", OPT_STRING,
     FIELD(cpu), .needs = "-c"},
    {"--target", NULL, "TRIPLE", SEC_OBJECT, "the target triple (default: this machine's)", OPT_STRING,
     FIELD(target), .needs = "-c"},

    {"--set", NULL, "KEY=VALUE", SEC_MODEL,
     "override a setting, e.g. --set train.lr=0.05,\n--set sg.h1.input=labels (keys: data.K, train.K, loss.K,\n"
     "layer.NAME.K, sg.NAME.K); may be repeated; --set=KEY=VALUE\nworks too",
     OPT_SET, .joined = true},

    {"--save-weights", NULL, "FILE", SEC_RUN, "write the trained weights (safetensors)", OPT_STRING,
     FIELD(save_weights), .needs = "--run"},
    {"--save-best", NULL, "FILE", SEC_RUN,
     "write the weights at each report whose validation loss\n(test loss without a validation set) is the lowest yet",
     OPT_STRING, FIELD(save_best), .needs = "--run"},
    {"--load-weights", NULL, "FILE", SEC_RUN,
     "start from the weights in FILE (safetensors) instead of\nthe model's initialisers (also for --eval, --predict)",
     OPT_STRING, FIELD(load_weights), .needs = "--run|--eval|--predict"},
    {"--save-init", NULL, "FILE", SEC_RUN, "write the weights before the first step (safetensors)", OPT_STRING,
     FIELD(save_init), .needs = "--run"},
    {"--export-data", NULL, "FILE", SEC_RUN, "write the training data as dnic sees it (x, y)", OPT_STRING,
     FIELD(export_data), .needs = "--run"},
    {"--log", NULL, "FILE.csv", SEC_RUN,
     "write one row per report: iter, step, loss, each SG\nmodule's synthetic loss, elapsed seconds", OPT_STRING,
     FIELD(log_csv), .needs = "--run"},
    {"--save-predictions", NULL, "FILE", SEC_RUN,
     "write the trained model's outputs for the training inputs\n(y_pred)", OPT_STRING, FIELD(save_predictions),
     .needs = "--run"},
    {"--plot", NULL, "FILE.svg", SEC_RUN, "draw the loss (and accuracy) curves of the run", OPT_STRING,
     FIELD(plot_svg), .needs = "--run"},
    {"--plot-x", NULL, "step|time", SEC_RUN, "the chart's x axis: steps (the default) or wall time", OPT_PARSED,
     .parse = parse_plot_x, .bad = "--plot-x is step or time, not '%s'", .needs = "--plot"},
    {"--checkpoint", NULL, "FILE", SEC_RUN,
     "save the whole training state to FILE (at the end, every\n--checkpoint-every N epochs, and on SIGINT/SIGTERM)",
     OPT_STRING, FIELD(checkpoint), .needs = "--run"},
    {"--checkpoint-every", NULL, "N", SEC_RUN,
     "save the checkpoint every N epochs too (steps for a model\ncounting steps)", OPT_PARSED,
     .parse = parse_every,
     .bad = "--checkpoint-every is a positive number of epochs (steps for a model counting steps), not '%s'",
     .needs = "--checkpoint"},
    {"--resume", NULL, "FILE", SEC_RUN, "continue from a checkpoint, exactly where it stopped (no\nmodel file: the checkpoint's model and --set flags)",
     OPT_STRING,
     FIELD(resume), .needs = "--run"},
    {"--vary", NULL, "KEY=V1,V2,...", SEC_RUN,
     "train one variant per value (each an extra --set) and\ncompare them in a table (and one --plot chart); several\n"
     "--vary make a grid; --log F writes one log per variant",
     OPT_PARSED, .parse = parse_vary,
     .bad = "--vary is KEY=V1,V2,... (at most 8 of them), e.g. --vary sg.h1.input=output,labels, not '%s'",
     .needs = "--run",
     .excludes = {"--save-weights", "--save-best", "--checkpoint", "--resume"}, .excludes_why = "runs several models"},

    {"--schedule", NULL, "auto|sequential|pipeline|mpi", SEC_RUNNING,
     "run stages one after another, each on its own thread, or\non the ranks of an MPI job (mpirun -np K dnic ...; "
     "auto\nchooses mpi there); default auto: the planner decides\n(docs/scheduler.md)",
     OPT_PARSED, .parse = parse_schedule, .bad = "--schedule is auto, sequential, pipeline or mpi, not '%s'"},
    {"--placement", NULL, "N0,N1,...", SEC_RUNNING,
     "under MPI, the number of stages each rank runs, in order\n(default: contiguous groups balanced by the cost model)",
     OPT_STRING, FIELD(placement), .needs = "--run"},
    {"--replicas", NULL, "R", SEC_RUNNING,
     "under MPI, split each batch over R copies of every stage\n(R x the ranks one copy takes = the job's ranks) and sum\n"
     "their gradients; --check says whether the model splits",
     OPT_PARSED, .parse = parse_replicas, .bad = "--replicas is a number from 1 to 64, not '%s'",
     .excludes = {"--vary"}, .excludes_why = "runs several models"},
    {"--threads", NULL, "N", SEC_RUNNING,
     "threads (1 to 64) for the pipeline, or in a sequential run\nfor the large matrix products (default: the number of\n"
     "cores)",
     OPT_PARSED, .parse = parse_threads, .bad = "--threads is a number from 1 to 64, not '%s'"},
    {"--no-cache", NULL, NULL, SEC_RUNNING,
     "compile without the object cache, and inflate gzip data files\nwithout the data cache (default: "
     "compiled code and decoded\ndata are kept in $DNIC_CACHE_DIR, else $XDG_CACHE_HOME/dnic,\nelse "
     "~/.cache/dnic, and reused when nothing changed)",
     OPT_TRUE, FIELD(no_cache)},
    {"--probe", NULL, NULL, SEC_RUNNING,
     "at every report, compare each SG module's prediction with the\ntrue gradient on the first batch "
     "(cosine, norm ratio, synthetic\nlosses), in the report line, --log and --plot; changes no number",
     OPT_TRUE, FIELD(probe), .needs = "--run"},
    {"--progress", NULL, NULL, SEC_RUNNING, "draw a progress line on stderr (default: when stderr is a\nterminal)",
     OPT_INT, FIELD(progress), .value = 1},
    {"--no-progress", NULL, NULL, SEC_RUNNING, "draw no progress line", OPT_INT, FIELD(progress), .value = 0},

    {"--help", "-h", NULL, SEC_OTHER, "show this help", .kind = OPT_HELP},
    {"--version", NULL, NULL, SEC_OTHER, "show the version", .kind = OPT_VERSION},
};
enum { NOPTIONS = sizeof options / sizeof options[0] };

/* --help: the table, section by section, and the plot command. */
static void usage(FILE *out)
{
    fputs("usage: dnic FILE.dni [options]\n"
          "       dnic plot [--x step|time] LOG.csv [LOG.csv ...] -o CHART.svg\n"
          "\n"
          "Compiles a model described in a .dni file and trains it with synthetic gradients\n"
          "(Decoupled Neural Interfaces) or backpropagation.\n",
          out);
    for (int i = 0; i < NOPTIONS; i++) {
        const cli_option *op = &options[i];
        if (i == 0 || op->section != options[i - 1].section)
            fprintf(out, "\n%s%s", section_titles[op->section], *section_titles[op->section] ? "\n" : "");
        char left[64];
        snprintf(left, sizeof left, "%s%s%s%s%s", op->alias ? op->alias : "", op->alias ? ", " : "", op->name,
                 op->arg ? " " : "", op->arg ? op->arg : "");
        /* a long name puts its help on the next line */
        fprintf(out, "  %-20s%s", left, strlen(left) > 20 ? "\n" : " ");
        for (const char *h = op->help, *nl; *h; h = nl + 1) {
            nl = strchr(h, '\n');
            int n = nl ? (int)(nl - h) : (int)strlen(h);
            fprintf(out, "%*s%.*s\n", h == op->help && strlen(left) <= 20 ? 0 : 23, "", n, h);
            if (!nl)
                break;
        }
    }
    fputs("\n"
          "dnic plot [--x step|time] LOG.csv [LOG.csv ...] -o CHART.svg\n"
          "                       overlay the curves of several runs' --log files, against\n"
          "                       their steps or (--x time) their wall time\n"
          "\n"
          "The language is described in docs/language.md (installed under share/doc/dnic);\n"
          "the manual page is dnic(1).\n",
          out);
}

int cli_bad_flag(const char *fmt, const char *arg)
{
    fprintf(stderr, "dnic: error: ");
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run 'dnic --help' for the options)\n");
    return DNIC_EXIT_USER;
}

/* The option `a` names, and its joined argument (NAME=ARG) if any. */
static const cli_option *find_option(const char *a, const char **joined)
{
    *joined = NULL;
    for (int i = 0; i < NOPTIONS; i++) {
        const cli_option *op = &options[i];
        size_t n = strlen(op->name);
        if (!strcmp(a, op->name) || (op->alias && !strcmp(a, op->alias)))
            return op;
        if (op->joined && !strncmp(a, op->name, n) && a[n] == '=') {
            *joined = a + n + 1;
            return op;
        }
    }
    return NULL;
}

/* --epochs 5: a setting's name used as a flag; says which --set it means. */
static bool setting_as_flag(const char *a, const char *next)
{
    char name[64];
    size_t n = strcspn(a + 2, "=");
    if (strncmp(a, "--", 2) || n == 0 || n >= sizeof name)
        return false;
    for (size_t i = 0; i < n; i++)
        name[i] = a[2 + i] == '-' ? '_' : a[2 + i];
    name[n] = '\0';
    const char *key, *block = dnic_key_block(name, &key);
    if (!block)
        return false;
    const char *v = a[2 + n] == '=' ? a + 3 + n : next && next[0] != '-' ? next : "VALUE";
    fprintf(stderr, "dnic: error: unknown option '%s': settings are changed with --set, e.g. --set %s.%s=%s\n"
                    "(run 'dnic --help' for the options)\n",
            a, block, key, v);
    return true;
}

/* --set train.lr = 0.1: the shell made three arguments of it. */
static bool set_split(const char *val, const char *next, const char *after)
{
    const char *eq = strchr(val, '=');
    const char *value = NULL;
    if (!eq && next && next[0] == '=')
        value = next[1] ? next + 1 : after ? after : "VALUE";
    else if (eq && !eq[1] && !strchr(val, ' ') && next && next[0] != '-')
        value = next;
    if (!value)
        return false;
    int klen = eq ? (int)(eq - val) : (int)strlen(val);
    fprintf(stderr, "dnic: error: --set takes KEY=VALUE as one argument, with no spaces around '=': "
                    "--set %.*s=%s\n(run 'dnic --help' for the options)\n",
            klen, val, value);
    return true;
}

static int unknown_option(const char *a, const char *next)
{
    if (setting_as_flag(a, next))
        return DNIC_EXIT_USER;
    const char *names[NOPTIONS];
    int n = 0;
    for (int i = 0; i < NOPTIONS; i++)
        if (!strncmp(options[i].name, "--", 2))
            names[n++] = options[i].name;
    const char *best = dnic_did_you_mean(a, names, n);
    fprintf(stderr, "dnic: error: unknown option '%s'", a);
    if (best)
        fprintf(stderr, " (did you mean '%s'?)", best);
    fprintf(stderr, "\n(run 'dnic --help' for the options)\n");
    return DNIC_EXIT_USER;
}

static const cli_option *option_named(const char *name)
{
    for (int i = 0; i < NOPTIONS; i++)
        if (!strcmp(options[i].name, name))
            return &options[i];
    DNIC_ASSERT(!"an option's rule names an option the table has");
    return NULL;
}

/* Whether the option called `name` (the first `len` bytes) is met: the action chosen, or given. */
static bool option_met(const dnic_options *o, const bool *given, const char *name, size_t len)
{
    for (int i = 0; i < NOPTIONS; i++)
        if (strlen(options[i].name) == len && !strncmp(options[i].name, name, len))
            return options[i].kind == OPT_ACTION ? o->action == (dnic_action)options[i].value : given[i];
    DNIC_ASSERT(!"an option's rule names an option the table has");
    return false;
}

/* Whether any of `needs`'s alternatives ("A|B|C") is met. */
static bool needs_met(const dnic_options *o, const bool *given, const char *needs)
{
    for (const char *p = needs;; p++) {
        size_t n = strcspn(p, "|");
        if (option_met(o, given, p, n))
            return true;
        p += n;
        if (!*p)
            return false;
    }
}

/* The rules between options, in table order: every option whose `needs` is not met (all those
 * needing the first such option, then the next; an option needing one of several is placed by
 * the first), then the exclusions. */
static int check_rules(const dnic_options *o, const bool *given)
{
    for (int t = 0; t < NOPTIONS; t++) {
        const cli_option *target = &options[t];
        size_t tn = strlen(target->name);
        for (int i = 0; i < NOPTIONS; i++) {
            const char *needs = options[i].needs;
            if (!given[i] || !needs || strncmp(needs, target->name, tn) || (needs[tn] && needs[tn] != '|') ||
                needs_met(o, given, needs))
                continue;
            if (target->kind == OPT_ACTION) {
                fprintf(stderr, "dnic: error: %s works with ", options[i].name);
                /* "-c", "-c or --predict", "--run, --eval or --predict" */
                for (const char *p = needs;;) {
                    size_t n = strcspn(p, "|");
                    fprintf(stderr, "%.*s", (int)n, p);
                    p += n;
                    if (!*p)
                        break;
                    p++;
                    fputs(strchr(p, '|') ? ", " : " or ", stderr);
                }
                fputc('\n', stderr);
            } else {
                fprintf(stderr, "dnic: error: %s needs %s %s\n", options[i].name, target->name, target->arg);
            }
            fprintf(stderr, "(run 'dnic --help' for the options)\n");
            return DNIC_EXIT_USER;
        }
    }
    if (!o->path && !o->resume) /* --resume alone reads the model from the checkpoint */
        return cli_bad_flag("%s", "no model file given: dnic FILE.dni [--check | --run | ...]");
    for (int i = 0; i < NOPTIONS; i++) {
        const cli_option *op = &options[i];
        bool clash = false;
        for (int k = 0; given[i] && k < 5 && op->excludes[k]; k++)
            clash |= given[option_named(op->excludes[k]) - options];
        if (!clash)
            continue;
        fprintf(stderr, "dnic: error: %s %s: ", op->name, op->excludes_why);
        for (int k = 0; k < 5 && op->excludes[k]; k++)
            fprintf(stderr, "%s%s", k == 0 ? "" : k + 1 < 4 && op->excludes[k + 1] ? ", " : " and ", op->excludes[k]);
        fprintf(stderr, " would mix them\n(run 'dnic --help' for the options)\n");
        return DNIC_EXIT_USER;
    }
    return -1;
}

bool cli_parse_options(int argc, char **argv, dnic_options *o, int *rc)
{
    *o = (dnic_options){.progress = -1, .action = DNIC_ACTION_CHECK};
    const char **sets = calloc((size_t)argc + 1, sizeof *sets);
    o->overrides = sets;
    if (!sets) {
        *rc = DNIC_EXIT_INTERNAL;
        return false;
    }
    bool given[NOPTIONS] = {0};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *val;
        const cli_option *op = find_option(a, &val);
        if (!op) {
            if (a[0] == '-' && a[1])
                *rc = unknown_option(a, i + 1 < argc ? argv[i + 1] : NULL);
            else if (o->path)
                *rc = cli_bad_flag("one model file at a time ('%s' is a second)", a);
            else {
                o->path = a;
                continue;
            }
            return false;
        }
        if (op->arg && !val) {
            if (i + 1 >= argc) {
                *rc = cli_bad_flag("%s needs a value", a);
                return false;
            }
            val = argv[++i];
        }
        given[op - options] = true;
        char *field = (char *)o + op->field;
        switch (op->kind) {
        case OPT_ACTION:
            o->action = (dnic_action)op->value;
            if (op->arg)
                *(const char **)field = val;
            break;
        case OPT_TRUE:
            *(bool *)field = true;
            break;
        case OPT_INT:
            *(int *)field = op->value;
            break;
        case OPT_STRING:
            *(const char **)field = val;
            break;
        case OPT_SET:
            if (set_split(val, i + 1 < argc ? argv[i + 1] : NULL, i + 2 < argc ? argv[i + 2] : NULL)) {
                *rc = DNIC_EXIT_USER;
                return false;
            }
            sets[o->noverrides++] = val;
            break;
        case OPT_PARSED:
            if (!op->parse(o, val)) {
                *rc = cli_bad_flag(op->bad, val);
                return false;
            }
            break;
        case OPT_HELP:
            usage(stdout);
            *rc = DNIC_EXIT_OK;
            return false;
        case OPT_VERSION:
#ifdef DNIC_HAVE_MPI
            printf("dnic %s (LLVM 19, MPI)\n", PACKAGE_VERSION);
#else
            printf("dnic %s (LLVM 19)\n", PACKAGE_VERSION);
#endif
            *rc = DNIC_EXIT_OK;
            return false;
        }
    }
    *rc = check_rules(o, given);
    return *rc < 0;
}
