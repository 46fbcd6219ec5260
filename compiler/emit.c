/* Object emission (`dnic model.dni -c -o model.o`): adds the model's description for the
 * runtime and exported NAME_* wrappers to the back end's module (backend.c), and writes its
 * object and the header that declares them, each atomically. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "atomic_file.h"
#include "codegen.h"
#include "config.h"

/* The description dnic_rt_create reads (runtime/embed.c): a header line, then one line per
 * buffer, block and SG accumulator.  Doubles are written in hex so they round-trip exactly. */
static char *describe(dnic_arena *a, const dnic_model *m, const dnic_ir *ir)
{
    long skip = m->data.kind == DNIC_DATA_BINADD && !m->data.has_seed ? 2L * m->data.examples : 0;
    char *s = dnic_sprintf(a, "dnic-model 1 %d %d %u %ld %d %d %d %d %d\n", (int)ir->dtype, ir->batch, m->train.seed,
                           skip, ir->x, ir->y, ir->out, ir->loss_acc, ir->nstages);
    for (int i = 0; i < ir->nbufs; i++) {
        const dnic_buffer_desc *b = &ir->bufs[i];
        s = dnic_sprintf(a, "%sbuf %s %d %d %d %d %a %a %d\n", s, b->name, (int)b->kind, b->rows, b->cols, (int)b->draw,
                         b->scale, b->shift, b->init_order);
    }
    for (int i = 0; i < ir->nblocks; i++)
        s = dnic_sprintf(a, "%sblock %s %d %d %d\n", s, ir->blocks[i].name, ir->blocks[i].stage, (int)ir->blocks[i].phase,
                         dnic_ir_block_acc(ir, i));
    for (int i = 0; ir->sg_acc_first >= 0 && i < m->nsgs; i++)
        s = dnic_sprintf(a, "%ssg %d\n", s, ir->sg_acc_first + i);
    for (int i = 0; i < ir->nstates; i++)
        s = dnic_sprintf(a, "%sstate %d %d\n", s, ir->state_in[i], ir->state_out[i]);
    return s;
}

typedef struct wrap {
    const dnic_model *m;
    const dnic_ir *ir;
    const char *prefix;
    dnic_arena *a;
    LLVMContextRef C; /* these three while build_wrappers runs */
    LLVMModuleRef M;
    LLVMBuilderRef B;
} wrap;

static LLVMValueRef declare(wrap *w, const char *name, LLVMTypeRef ty)
{
    LLVMValueRef f = LLVMGetNamedFunction(w->M, name);
    return f ? f : LLVMAddFunction(w->M, name, ty);
}

/* Defines PREFIX_name(params...) { return callee(lead..., params...); } with an optional
 * conversion of the result. */
static void forward_fn(wrap *w, const char *name, LLVMTypeRef ret, LLVMTypeRef *params, int np, const char *callee,
                       LLVMTypeRef cret, LLVMValueRef *lead, int nlead)
{
    LLVMTypeRef fty = LLVMFunctionType(ret, params, (unsigned)np, 0);
    LLVMValueRef fn = LLVMAddFunction(w->M, dnic_sprintf(w->a, "%s_%s", w->prefix, name), fty);
    LLVMSetVisibility(fn, LLVMDefaultVisibility);
    LLVMPositionBuilderAtEnd(w->B, LLVMAppendBasicBlockInContext(w->C, fn, "entry"));
    LLVMTypeRef cparams[8];
    LLVMValueRef args[8];
    int n = 0;
    for (int i = 0; i < nlead; i++) {
        cparams[n] = LLVMTypeOf(lead[i]);
        args[n++] = lead[i];
    }
    for (int i = 0; i < np; i++) {
        cparams[n] = params[i];
        args[n++] = LLVMGetParam(fn, (unsigned)i);
    }
    LLVMTypeRef cty = LLVMFunctionType(cret, cparams, (unsigned)n, 0);
    LLVMValueRef r = LLVMBuildCall2(w->B, cty, declare(w, callee, cty), args, (unsigned)n, "");
    if (LLVMGetTypeKind(ret) == LLVMVoidTypeKind)
        LLVMBuildRetVoid(w->B);
    else if (ret != cret)
        LLVMBuildRet(w->B, LLVMBuildFPTrunc(w->B, r, ret, ""));
    else
        LLVMBuildRet(w->B, r);
}

/* The back end's extend hook (dnic_backend_extend): runs before the module is verified. */
static void build_wrappers(LLVMModuleRef mod, void *arg)
{
    wrap *w = arg;
    const dnic_ir *ir = w->ir;
    w->M = mod;
    w->C = LLVMGetModuleContext(mod);
    w->B = LLVMCreateBuilderInContext(w->C);
    LLVMTypeRef ptr = LLVMPointerTypeInContext(w->C, 0), i32 = LLVMInt32TypeInContext(w->C);
    LLVMTypeRef vd = LLVMVoidTypeInContext(w->C), f64 = LLVMDoubleTypeInContext(w->C);
    LLVMTypeRef T = ir->dtype == DNIC_F64 ? f64 : LLVMFloatTypeInContext(w->C);

    const char *text = describe(w->a, w->m, ir);
    LLVMValueRef desc = LLVMConstStringInContext(w->C, text, (unsigned)strlen(text), 0);
    LLVMValueRef gdesc = LLVMAddGlobal(w->M, LLVMTypeOf(desc), dnic_sprintf(w->a, "%s_desc", w->prefix));
    LLVMSetInitializer(gdesc, desc);
    LLVMSetGlobalConstant(gdesc, 1);
    LLVMSetLinkage(gdesc, LLVMPrivateLinkage);

    LLVMValueRef *fns = dnic_alloc(w->a, (size_t)ir->nblocks * sizeof *fns);
    for (int b = 0; b < ir->nblocks; b++) {
        fns[b] = LLVMGetNamedFunction(w->M, dnic_block_symbol(w->a, w->prefix, b));
        DNIC_ASSERT(fns[b] != NULL);
        LLVMSetLinkage(fns[b], LLVMInternalLinkage);
    }
    LLVMValueRef arr = LLVMConstArray2(ptr, fns, (uint64_t)ir->nblocks);
    LLVMValueRef garr = LLVMAddGlobal(w->M, LLVMTypeOf(arr), dnic_sprintf(w->a, "%s_blocks", w->prefix));
    LLVMSetInitializer(garr, arr);
    LLVMSetGlobalConstant(garr, 1);
    LLVMSetLinkage(garr, LLVMPrivateLinkage);

    LLVMValueRef lead[3] = {gdesc, garr, LLVMConstInt(i32, (unsigned long long)ir->nblocks, 0)};
    forward_fn(w, "create", ptr, NULL, 0, "dnic_rt_create", ptr, lead, 3);
    forward_fn(w, "free", vd, (LLVMTypeRef[]){ptr}, 1, "dnic_rt_free", vd, NULL, 0);
    forward_fn(w, "load", i32, (LLVMTypeRef[]){ptr, ptr}, 2, "dnic_rt_load", i32, NULL, 0);
    forward_fn(w, "save", i32, (LLVMTypeRef[]){ptr, ptr}, 2, "dnic_rt_save", i32, NULL, 0);
    forward_fn(w, "error", ptr, (LLVMTypeRef[]){ptr}, 1, "dnic_rt_error", ptr, NULL, 0);
    forward_fn(w, "predict", vd, (LLVMTypeRef[]){ptr, ptr, ptr, i32}, 4, "dnic_rt_predict", vd, NULL, 0);
    forward_fn(w, "train_step", T, (LLVMTypeRef[]){ptr, ptr, ptr}, 3, "dnic_rt_train_step", f64, NULL, 0);
    if (ir->nstates > 0)
        forward_fn(w, "predict_state", vd, (LLVMTypeRef[]){ptr, ptr, ptr, i32, ptr}, 5, "dnic_rt_predict_state", vd,
                   NULL, 0);
    LLVMDisposeBuilder(w->B);
    w->B = NULL;
}

/* Files are written through runtime/atomic_file.c (a temporary renamed into place); a failure
 * becomes a diagnostic. */
static bool atomic_ok(dnic_diag *d, dnic_status s, const char *err)
{
    if (s != DNIC_OK)
        dnic_error(d, (dnic_span){0}, "%s", err);
    return s == DNIC_OK;
}

static bool write_header(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_emit_opts *o)
{
    const char *P = o->prefix, *T = ir->dtype == DNIC_F64 ? "double" : "float";
    char err[512];
    dnic_atomic_file a;
    if (!atomic_ok(d, dnic_atomic_open(&a, o->header_path, err, sizeof err), err))
        return false;
    FILE *f = a.f;
    char guard[256];
    snprintf(guard, sizeof guard, "%s", P);
    for (char *c = guard; *c; c++)
        if (*c >= 'a' && *c <= 'z')
            *c = (char)(*c - 'a' + 'A');
    int in = ir->bufs[ir->x].cols, out = ir->bufs[ir->out].cols;
    fprintf(f,
            "/* %s.h: model '%s' compiled by dnic %s (do not edit; regenerate with dnic -c).\n"
            " * Link the object with the dnic runtime: cc prog.c %s.o $(pkg-config --cflags --libs dnic)\n"
            " * Values are %s; rows are row-major, %d inputs and %d outputs wide.  The data is the caller's\n"
            " * to prepare: the model's `scale` and `one_hot` settings are not applied here (scale the\n"
            " * inputs and one-hot encode the labels as the data block says before calling).\n"
            " *\n"
            " *     %s *m = %s_create();\n"
            " *     %s loss = %s_train_step(m, x, y);   // x: %s_BATCH rows of inputs, y: of labels\n"
            " *     %s_predict(m, x, out, n);\n"
            " *     if (%s_save(m, \"w.safetensors\") != 0) puts(%s_error(m));\n"
            " *     %s_free(m);\n"
            " */\n"
            "#ifndef %s_H\n#define %s_H\n\n#ifdef __cplusplus\nextern \"C\" {\n#endif\n\n",
            P, m->name, PACKAGE_VERSION, P, T, in, out, P, P, T, P, P, P, P, P, P, guard, guard);
    fprintf(f, "#define %s_INPUT_SIZE %d\n#define %s_OUTPUT_SIZE %d\n#define %s_LABEL_SIZE %d\n", P, in, P, out, P,
            ir->bufs[ir->y].cols);
    fprintf(f, "#define %s_BATCH %d /* the batch size train_step takes */\n\n", P, ir->batch);
    fprintf(f, "typedef struct %s %s;\n\n", P, P);
    fprintf(f, "/* A model with the weights its .dni file's initialisers draw from its seed (%u), exactly\n"
               " * as `dnic --run` starts; NULL when out of memory. */\n%s *%s_create(void);\n\n", m->train.seed, P, P);
    fprintf(f, "/* Frees the model (NULL is fine). */\nvoid %s_free(%s *m);\n\n", P, P);
    fprintf(f, "/* Reads / writes the weights as safetensors, the files of dnic --load-weights and\n"
               " * --save-weights; 0 on success, otherwise non-zero and %s_error says why. A failed load\n"
               " * changes no weight; a save is atomic. */\nint %s_load(%s *m, const char *path);\n"
               "int %s_save(const %s *m, const char *path);\nconst char *%s_error(const %s *m);\n\n",
            P, P, P, P, P, P, P);
    fprintf(f, "/* The outputs for n rows of inputs (x: n * %s_INPUT_SIZE values, y: n * %s_OUTPUT_SIZE). */\n"
               "void %s_predict(%s *m, const %s *x, %s *y, int n);\n\n", P, P, P, P, T, T);
    fprintf(f, "/* One training step on %s_BATCH rows (x: inputs, y: labels), exactly as dnic --run does one;\n"
               " * returns the step's share of the report's Loss: its sum over the batch. */\n%s %s_train_step(%s *m, const %s *x, const %s *y);\n\n",
            P, T, P, P, T, T);
    if (ir->nstates > 0) {
        int S = 0;
        char layout[512] = "";
        for (int i = 0; i < ir->nstates; i++) {
            const dnic_buffer_desc *b = &ir->bufs[ir->state_in[i]];
            size_t len = strlen(layout), dot = strcspn(b->name, ".");
            snprintf(layout + len, sizeof layout - len, "%s%.*s (%d)", i ? ", " : "", (int)dot, b->name, b->cols);
            S += b->cols;
        }
        fprintf(f, "/* The state a sequence carries: %d values per row, each recurrent layer's last state\n"
                   " * ([h | c] for an lstm) side by side: %s. */\n#define %s_STATE_SIZE %d\n\n", S, layout, P, S);
        fprintf(f, "/* %s_predict continuing sequences: row i starts from the state in state[i * %s_STATE_SIZE ..],\n"
                   " * which is overwritten with its state after the row's last step.  Feeding a long sequence\n"
                   " * a row of steps at a time carries it on; zero states give %s_predict's outputs. */\n"
                   "void %s_predict_state(%s *m, const %s *x, %s *y, int n, %s *state);\n\n",
                P, P, P, P, P, T, T, T);
    }
    fprintf(f, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
    return atomic_ok(d, dnic_atomic_commit(&a, err, sizeof err), err);
}

/* The CPU of an object when --cpu is not given: x86-64-v3 (AVX2 and FMA) on x86-64, the
 * target's generic CPU elsewhere. */
static const char *default_cpu(const char *triple)
{
    char *host = triple ? NULL : LLVMGetDefaultTargetTriple();
    bool x86 = strncmp(triple ? triple : host, "x86_64", 6) == 0;
    LLVMDisposeMessage(host);
    return x86 ? "x86-64-v3" : "generic";
}

int dnic_emit_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_emit_opts *o)
{
    bool native = o->cpu && !strcmp(o->cpu, "native");
    const char *cpu = native ? NULL : o->cpu ? o->cpu : default_cpu(o->triple); /* NULL: the host's */
    dnic_target t;
    dnic_backend b = {0};
    char msg[512];
    dnic_atomic_file obj = {0};
    int rc = DNIC_EXIT_USER;
    dnic_arena *a = dnic_arena_new();
    wrap w = {.m = m, .ir = ir, .prefix = o->prefix, .a = a};
    if (!dnic_target_init(&t, o->triple, cpu, msg, sizeof msg) ||
        (o->cpu && !native && !dnic_target_cpu_ok(&t, msg, sizeof msg))) { /* a CPU the user named */
        dnic_error(d, (dnic_span){0}, "%s", msg);
        goto out;
    }
    if (!dnic_backend_build(&b, &t, ir, o->prefix, NULL, build_wrappers, &w)) {
        dnic_error(d, (dnic_span){0}, "%s", b.msg);
        goto out;
    }
    if (!dnic_backend_finish(&b, NULL, NULL)) {
        fprintf(stderr, "dnic: internal error: %s\n", b.msg);
        rc = DNIC_EXIT_INTERNAL;
        goto out;
    }
    if (!atomic_ok(d, dnic_atomic_open(&obj, o->out_path, msg, sizeof msg), msg))
        goto out;
    size_t n = LLVMGetBufferSize(b.obj);
    if (fwrite(LLVMGetBufferStart(b.obj), 1, n, obj.f) != n) {
        dnic_error(d, (dnic_span){0}, "cannot write '%s': %s", o->out_path, strerror(errno));
        goto out;
    }
    /* the header first, so that a new object never stands beside an old header */
    if (atomic_ok(d, dnic_atomic_sync(&obj, msg, sizeof msg), msg) && write_header(d, m, ir, o) &&
        atomic_ok(d, dnic_atomic_commit(&obj, msg, sizeof msg), msg))
        rc = DNIC_EXIT_OK;
out:
    dnic_atomic_discard(&obj);
    dnic_backend_free(&b);
    dnic_target_free(&t);
    dnic_arena_free(a);
    return rc;
}
