/* The compiler's pipeline in one function: load -> parse -> overrides -> check -> build IR ->
 * verify -> (dumps) -> JIT and train, evaluate or predict, or an object.  It lives in cli/, not compiler/: it reads
 * the command's options and ends in the command's run or -c; compiler/ is only libraries. */
#include <stdlib.h>

#include "cli.h"

/* --check's line: "model.dni: ok: model m, 4 layers, 2 SG modules, 3 stages, dni" */
static void print_summary(const char *path, const dnic_model *m, const dnic_ir *ir)
{
    int nsg = m->train.mode == DNIC_MODE_DNI ? m->nsgs : 0;
    printf("%s: ok: model %s, %d layer%s, %d SG module%s, %d stage%s, %s\n", path, m->name, m->nlayers,
           m->nlayers == 1 ? "" : "s", nsg, nsg == 1 ? "" : "s", ir->nstages, ir->nstages == 1 ? "" : "s",
           nsg ? "dni" : "backprop");
}

int dnic_compile(const dnic_options *o)
{
    dnic_arena *a = dnic_arena_new();
    dnic_diag d;
    dnic_diag_init(&d, stderr);
    int rc = DNIC_EXIT_USER;

    const dnic_source *src = dnic_source_load(a, &d, o->path);
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
    const dnic_model *m = ast ? dnic_check(a, &d, ast, check) : NULL;
    if (!overrides_ok)
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
        print_summary(src->name, m, ir);
out:
    if (d.errors > 0 && rc == DNIC_EXIT_OK)
        rc = DNIC_EXIT_USER;
    if (d.errors > 1)
        fprintf(stderr, "%d errors generated.\n", d.errors);
    dnic_arena_free(a);
    return rc;
}
