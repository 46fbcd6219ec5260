/* `dnic -c`: the default object and header paths (model.dni -> model.o and model.h, as cc -c
 * names them) and prefix (the model's name), checked, then handed to the emitter (emit.c). */
#include <string.h>

#include "cli.h"
#include "codegen.h"

int dnic_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_options *o)
{
    dnic_arena *a = dnic_arena_new();
    dnic_emit_opts e = {.out_path = o->out_path, .header_path = o->header_path, .prefix = o->prefix, .cpu = o->cpu,
                        .triple = o->target};
    if (!e.prefix)
        e.prefix = m->name;
    int rc = DNIC_EXIT_USER;
    if (!dnic_is_name(e.prefix, strlen(e.prefix))) {
        dnic_error(d, (dnic_span){0}, "--prefix '%s' is not a C identifier", e.prefix);
        goto out;
    }
    if (!e.out_path) {
        /* model.dni -> model.o in the current directory, as cc -c does */
        const char *base = strrchr(m->src->name, '/');
        base = base ? base + 1 : m->src->name;
        size_t n = strlen(base);
        if (n > 4 && !strcmp(base + n - 4, ".dni"))
            n -= 4;
        e.out_path = dnic_sprintf(a, "%.*s.o", (int)n, base);
    }
    if (!e.header_path) {
        size_t n = strlen(e.out_path);
        if (n > 2 && !strcmp(e.out_path + n - 2, ".o"))
            n -= 2;
        e.header_path = dnic_sprintf(a, "%.*s.h", (int)n, e.out_path);
    }
    if (!strcmp(e.header_path, e.out_path)) {
        dnic_error(d, (dnic_span){0}, "the header and the object would both be '%s'; use --header PATH", e.out_path);
        goto out;
    }
    if (!cli_writable(d, e.out_path) || !cli_writable(d, e.header_path))
        goto out;
    rc = dnic_emit_object(d, m, ir, &e);
out:
    dnic_arena_free(a);
    return rc;
}
