/* The compiler's pipeline in one function: load -> parse -> overrides -> check -> build IR ->
 * verify -> (dumps) -> JIT and train, evaluate or predict, or an object.  It lives in cli/, not compiler/: it reads
 * the command's options and ends in the command's run or -c; compiler/ is only libraries. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "open_regular.h"

/* The model's source: its file, or with --resume and no file, the model text the checkpoint
 * keeps.  *with gets the --set flags to apply: the checkpoint's first, then this command's. */
static const dnic_source *model_source(dnic_arena *a, dnic_diag *d, const dnic_options *o, dnic_options *with)
{
    *with = *o;
    if (o->path)
        return dnic_source_load(a, d, o->path);
    const char *why;
    FILE *f = dnic_open_regular(o->resume, &why);
    if (!f) {
        dnic_error(d, (dnic_span){0}, "cannot open checkpoint '%s': %s", o->resume, why);
        return NULL;
    }
    fclose(f);
    char err[512];
    char *path = cli_checkpoint_text(o->resume, "dnic.model_path", err, sizeof err), *text = NULL, *sets = NULL;
    if (!path && err[0]) {
        dnic_error(d, (dnic_span){0}, "%s", err); /* the file itself is damaged or not safetensors */
        return NULL;
    }
    if (!path || !(text = cli_checkpoint_text(o->resume, "dnic.model", err, sizeof err)) ||
        !(sets = cli_checkpoint_text(o->resume, "dnic.overrides", err, sizeof err))) {
        dnic_error(d, (dnic_span){0}, "%s: no model in this file (not a dnic checkpoint, or one made before dnic kept "
                   "the model); name the model file: dnic FILE.dni --run --resume %s", o->resume, o->resume);
        free(path);
        free(text);
        free(sets);
        return NULL;
    }
    int nsaved = 0;
    for (const char *l = sets; *l; l++)
        nsaved += *l == '\n';
    const char **all = dnic_alloc(a, (size_t)(nsaved + o->noverrides + 1) * sizeof *all);
    int n = 0;
    for (char *l = sets, *e; (e = strchr(l, '\n')); l = e + 1)
        all[n++] = dnic_sprintf(a, "%.*s", (int)(e - l), l);
    for (int i = 0; i < o->noverrides; i++)
        all[n++] = o->overrides[i];
    with->overrides = all;
    with->noverrides = n;
    const dnic_source *src = dnic_source_from_string(a, dnic_strdup(a, path), dnic_strdup(a, text));
    free(path);
    free(text);
    free(sets);
    return src;
}

/* A curriculum changes the model as the run goes: what needs one model throughout refuses it
 * (false after a diagnostic). */
static bool curriculum_flags_ok(dnic_diag *d, const dnic_options *o)
{
    const char *flag = o->replicas > 1 ? "--replicas"
                       : o->schedule == DNIC_SCHED_PIPELINE ? "--schedule pipeline"
                       : o->schedule == DNIC_SCHED_MPI || cli_mpi_comm() ? "a run over MPI ranks"
                                                                        : NULL;
    if (!flag || o->action != DNIC_ACTION_RUN)
        return true;
    dnic_error(d, (dnic_span){0}, "%s: the data's curriculum compiles the model again at each new length, and %s "
               "needs one model for the whole run", flag, flag);
    dnic_note(d, (dnic_span){0}, "train without the curriculum (one length a run), or without %s", flag);
    return false;
}

int dnic_compile(const dnic_options *opts)
{
    dnic_arena *a = dnic_arena_new();
    dnic_diag d;
    dnic_diag_init(&d, stderr);
    int rc = DNIC_EXIT_USER;

    dnic_options with;
    const dnic_source *src = model_source(a, &d, opts, &with);
    const dnic_options *o = &with;
    dnic_ast *ast = src ? dnic_parse(a, &d, src) : NULL;
    /* every override is applied or reported, then the file is checked: all mistakes at once */
    bool overrides_ok = true;
    for (int i = 0; ast && i < o->noverrides; i++)
        overrides_ok &= dnic_apply_override(a, &d, ast, o->overrides[i]);
    if (ast && o->dump_ast)
        dnic_ast_dump(ast, stdout);
    /* -c and --predict need only the widths the data block declares, not the data */
    unsigned check = o->action == DNIC_ACTION_OBJECT || o->action == DNIC_ACTION_PREDICT ? DNIC_CHECK_TEXT
                                                                                          : DNIC_CHECK_OPEN_DATA;
    dnic_model *m = ast ? dnic_check(a, &d, ast, check) : NULL;
    if (!overrides_ok || (m && check == DNIC_CHECK_OPEN_DATA && !cli_check_data_widths(&d, m)))
        m = NULL;
    if (m && o->probe) { /* the PROBE block is built only when asked for */
        if (cli_probe_check(&d, m))
            m->train.probe = true;
        else
            m = NULL;
    }
    if (m && o->action == DNIC_ACTION_OBJECT) /* NAME_predict_state's block */
        m->train.stream = true;
    dnic_ir *ir = NULL;
    if (m && o->replicas > 1) { /* data parallelism: the program of one replica */
        char why[512];
        if (o->action == DNIC_ACTION_OBJECT || o->action == DNIC_ACTION_EVAL || o->action == DNIC_ACTION_PREDICT)
            dnic_error(&d, (dnic_span){0}, "--replicas %d: only training (--run, or --check) splits batches over "
                       "replicas", o->replicas);
        else if (!(ir = dnic_ir_build_replica(a, m, o->replicas, why, sizeof why)))
            dnic_error(&d, (dnic_span){0}, "--replicas %d: %s", o->replicas, why);
    } else if (m) {
        ir = dnic_ir_build(a, m);
    }
    if (ir && !dnic_ir_verify(ir, stderr)) {
        rc = DNIC_EXIT_INTERNAL;
        goto out;
    }
    if (!ir)
        goto out;
    if (o->dump_ir)
        dnic_ir_print(ir, stdout);
    if (o->emit_dot)
        dnic_emit_dot(m, stdout);
    /* the copy tasks' curriculum: the model must keep its parameters as the length grows */
    cli_curriculum cur, *curriculum = NULL;
    if (m->data.curriculum > 0 && (o->action == DNIC_ACTION_RUN || o->action == DNIC_ACTION_CHECK)) {
        cli_curriculum_init(&cur, a, ast, m);
        if (!curriculum_flags_ok(&d, o) || !cli_curriculum_check(&cur, &d, m, ir))
            goto out;
        curriculum = o->action == DNIC_ACTION_RUN ? &cur : NULL;
    }
    rc = DNIC_EXIT_OK;
    if (o->action == DNIC_ACTION_OBJECT)
        rc = dnic_object(&d, m, ir, o);
    else if (o->action == DNIC_ACTION_EVAL)
        rc = dnic_eval(&d, m, ir, o);
    else if (o->action == DNIC_ACTION_PREDICT)
        rc = dnic_predict(&d, m, ir, o);
    else if (o->action == DNIC_ACTION_RUN || o->emit_llvm || o->emit_asm)
        rc = dnic_run(&d, m, ir, o, curriculum);
    else if (!o->dump_ast && !o->dump_ir && !o->emit_dot)
        cli_print_model_summary(a, src->name, m, ir);
out:
    if (d.errors > 0 && rc == DNIC_EXIT_OK)
        rc = DNIC_EXIT_USER;
    if (d.errors > 1)
        fprintf(stderr, "%d errors generated.\n", d.errors);
    dnic_arena_free(a);
    return rc;
}
