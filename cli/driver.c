/* The compiler's pipeline in one function: load -> parse -> overrides -> check -> build IR ->
 * verify -> (dumps) -> JIT and train, evaluate or predict, or an object.  It lives in cli/, not compiler/: it reads
 * the command's options and ends in the command's run or -c; compiler/ is only libraries. */
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int dnic_compile(const dnic_options *o)
{
    dnic_arena *a = dnic_arena_new();
    dnic_diag d;
    dnic_diag_init(&d, stderr);
    int rc = DNIC_EXIT_USER;

    /* --resume without a model file: the model text and --set flags the checkpoint keeps */
    char *saved_path = NULL, *saved_model = NULL, *saved_sets = NULL;
    const dnic_source *src = NULL;
    if (o->path) {
        src = dnic_source_load(a, &d, o->path);
    } else if ((saved_path = cli_checkpoint_text(o->resume, "dnic.model_path")) &&
               (saved_model = cli_checkpoint_text(o->resume, "dnic.model")) &&
               (saved_sets = cli_checkpoint_text(o->resume, "dnic.overrides"))) {
        src = dnic_source_from_string(a, saved_path, saved_model);
    } else {
        dnic_error(&d, (dnic_span){0}, "%s: no model in this file (not a dnic checkpoint, or one made before dnic kept "
                   "the model); name the model file: dnic FILE.dni --run --resume %s", o->resume, o->resume);
    }
    dnic_ast *ast = src ? dnic_parse(a, &d, src) : NULL;
    /* every override is applied or reported, then the file is checked: all mistakes at once */
    /* the checkpoint's --set flags come first, this command's after them (and both are kept) */
    dnic_options with = *o;
    int nsaved = 0;
    for (const char *l = saved_sets; l && *l; l++)
        nsaved += *l == '\n';
    const char **sets = dnic_alloc(a, (size_t)(nsaved + o->noverrides + 1) * sizeof *sets);
    int nsets = 0;
    for (char *l = saved_sets, *e; l && (e = strchr(l, '\n')); l = e + 1)
        sets[nsets++] = dnic_sprintf(a, "%.*s", (int)(e - l), l);
    for (int i = 0; i < o->noverrides; i++)
        sets[nsets++] = o->overrides[i];
    with.overrides = sets;
    with.noverrides = nsets;
    o = &with;
    bool overrides_ok = true;
    for (int i = 0; ast && i < o->noverrides; i++)
        overrides_ok &= dnic_apply_override(a, &d, ast, o->overrides[i]);
    if (ast && o->dump_ast)
        dnic_ast_dump(ast, stdout);
    /* -c and --predict need only the widths the data block declares, not the data */
    unsigned check = o->action == DNIC_ACTION_OBJECT || o->action == DNIC_ACTION_PREDICT ? DNIC_CHECK_TEXT
                                                                                          : DNIC_CHECK_OPEN_DATA;
    const dnic_model *m = ast ? dnic_check(a, &d, ast, check) : NULL;
    if (!overrides_ok || (m && check == DNIC_CHECK_OPEN_DATA && !cli_check_data_widths(&d, m)))
        m = NULL;
    dnic_ir *ir = m ? dnic_ir_build(a, m) : NULL;
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
    rc = DNIC_EXIT_OK;
    if (o->action == DNIC_ACTION_OBJECT)
        rc = dnic_object(&d, m, ir, o);
    else if (o->action == DNIC_ACTION_EVAL)
        rc = dnic_eval(&d, m, ir, o);
    else if (o->action == DNIC_ACTION_PREDICT)
        rc = dnic_predict(&d, m, ir, o);
    else if (o->action == DNIC_ACTION_RUN || o->emit_llvm || o->emit_asm)
        rc = dnic_run(&d, m, ir, o);
    else if (!o->dump_ast && !o->dump_ir && !o->emit_dot)
        cli_print_model_summary(a, src->name, m, ir);
out:
    if (d.errors > 0 && rc == DNIC_EXIT_OK)
        rc = DNIC_EXIT_USER;
    if (d.errors > 1)
        fprintf(stderr, "%d errors generated.\n", d.errors);
    dnic_arena_free(a);
    free(saved_path);
    free(saved_model);
    free(saved_sets);
    return rc;
}
