/* libFuzzer harness for the LLVM-free front end: the input is a .dni file (each `#set ` line an
 * override), run through parse -> override -> check -> IR build -> verify -> print; an IR
 * verification failure is a compiler bug and aborts. */
#include <stdlib.h>
#include <string.h>

#include "dnic.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static FILE *devnull;
    if (!devnull && !(devnull = fopen("/dev/null", "w")))
        abort();
    char *text = malloc(size + 1);
    if (!text)
        return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    dnic_arena *a = dnic_arena_new();
    dnic_diag d;
    dnic_diag_init(&d, devnull);
    const dnic_source *src = dnic_source_from_string(a, "fuzz.dni", text);
    dnic_ast *ast = dnic_parse(a, &d, src);
    /* every line starting with "#set " is an override, like `--set` on the command line */
    for (const char *line = src->text; ast && line && *line;) {
        const char *nl = strchr(line, '\n');
        if (strncmp(line, "#set ", 5) == 0) {
            size_t n = (nl ? (size_t)(nl - line) : strlen(line)) - 5;
            if (!dnic_apply_override(a, &d, ast, dnic_strndup(a, line + 5, n)))
                ast = NULL;
        }
        line = nl ? nl + 1 : NULL;
    }
    if (ast)
        dnic_ast_dump(ast, devnull);
    const dnic_model *m = ast ? dnic_check(a, &d, ast, DNIC_CHECK_OPEN_DATA) : NULL;
    if (m) {
        dnic_ir *ir = dnic_ir_build(a, m);
        if (!dnic_ir_verify(ir, stderr))
            abort();
        dnic_ir_print(ir, devnull);
        dnic_emit_dot(m, devnull);
    }
    dnic_arena_free(a);
    free(text);
    return 0;
}
