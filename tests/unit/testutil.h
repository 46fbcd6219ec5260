/* Helpers for the front-end unit tests: run the pipeline on a string, capture diagnostics. */
#ifndef DNIC_TESTUTIL_H
#define DNIC_TESTUTIL_H

#include <stdlib.h>
#include <string.h>

#include "dnic.h"

typedef struct tu {
    dnic_arena *a;
    dnic_diag d;
    char *errbuf;
    size_t errlen;
    FILE *err;
    dnic_ast *ast;
    dnic_model *m;
    dnic_ir *ir;
} tu;

/* Parses (and with check, checks and builds the IR of) `text` named "t.dni". */
static inline void tu_run(tu *t, const char *text, bool check)
{
    memset(t, 0, sizeof *t);
    t->a = dnic_arena_new();
    t->err = open_memstream(&t->errbuf, &t->errlen);
    dnic_diag_init(&t->d, t->err);
    const dnic_source *src = dnic_source_from_string(t->a, "t.dni", text);
    t->ast = dnic_parse(t->a, &t->d, src);
    if (t->ast && check) {
        t->m = dnic_check(t->a, &t->d, t->ast, DNIC_CHECK_OPEN_DATA);
        if (t->m)
            t->ir = dnic_ir_build(t->a, t->m);
    }
    fflush(t->err);
}

static inline const char *tu_errors(tu *t)
{
    fflush(t->err);
    return t->errbuf ? t->errbuf : "";
}

static inline void tu_free(tu *t)
{
    fclose(t->err);
    free(t->errbuf);
    dnic_arena_free(t->a);
}

/* A valid model to edit in tests: the seed DNI network in small. */
#define TU_MODEL_HEAD \
    "model m\n" \
    "data binary_addition { bits = 4 examples = 20 inputs = 8 labels = 4 }\n"
#define TU_MODEL_TAIL \
    "loss squared_error(out, labels) { report = abs_error }\n" \
    "train { batch = 5 lr = 0.1 epochs = 3 seed = 1 dtype = float64 }\n"

#endif
