/* The JIT: splits the program's blocks into parts balanced by cost and hands each part to the
 * back end (backend.c) on its own thread (up to the machine's cores), or takes its object from
 * the cache; meanwhile the calling thread creates the ORC LLJIT, which then links the objects
 * and hands back each block's address. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <llvm-c/BitWriter.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include "codegen.h"
#include "config.h"

enum { MAX_PARTS = 8 };

struct dnic_jit {
    LLVMOrcLLJITRef lljit;
};

/* LLJIT's errors, printed. */
static bool llvm_ok(LLVMErrorRef err, const char *what)
{
    char msg[512];
    if (dnic_llvm_ok(err, what, msg, sizeof msg))
        return true;
    fprintf(stderr, "dnic: error: %s\n", msg);
    return false;
}

void dnic_jit_free(dnic_jit *j)
{
    if (!j)
        return;
    if (j->lljit)
        llvm_ok(LLVMOrcDisposeLLJIT(j->lljit), "shutting down the JIT");
    free(j);
}

/* What every part shares: the host target, and where --emit-llvm / -S go (one part then). */
typedef struct shared {
    const dnic_ir *ir;
    dnic_target target;
    const char *emit_llvm, *emit_asm;
    const char *cache_dir; /* NULL: no object cache */
    char llvm_version[32];
} shared;

typedef struct part {
    const shared *t;
    bool *want; /* which blocks this part compiles */
    double cost;
    LLVMMemoryBufferRef obj; /* out: the compiled object */
    char msg[512];           /* out: why not, when obj is NULL */
    bool cached;             /* out: obj came from the cache */
    char warn[512];          /* out: why the object could not be cached ("" if it was) */
    double codegen_ms, optimize_ms, machine_ms;
} part;

static void *compile_part(void *arg)
{
    part *p = arg;
    const shared *t = p->t;
    double t0 = dnic_now_ms();
    dnic_backend b;
    bool ok = dnic_backend_build(&b, &t->target, t->ir, "dnic", p->want, NULL, NULL);
    unsigned char key[16];
    bool cache = ok && t->cache_dir && !t->emit_llvm && !t->emit_asm;
    if (cache) { /* the key is over the module before the passes, which the key names: its bitcode,
                  * which LLVM writes 3-4 times faster than the module's text (a warm start's
                  * largest part after building the module) */
        LLVMMemoryBufferRef bc = LLVMWriteBitcodeToMemoryBuffer(b.mod);
        const char *fields[] = {"dnic object cache 2", PACKAGE_VERSION, t->llvm_version, t->target.triple,
                                t->target.cpu, t->target.features, dnic_backend_pipeline, dnic_backend_machine};
        dnic_jit_cache_key(fields, (int)(sizeof fields / sizeof fields[0]), LLVMGetBufferStart(bc), LLVMGetBufferSize(bc),
                           key);
        LLVMDisposeMemoryBuffer(bc);
        p->obj = dnic_jit_cache_load(t->cache_dir, key);
        p->cached = p->obj != NULL;
    }
    p->codegen_ms = dnic_now_ms() - t0;
    if (ok && !p->cached && dnic_backend_finish(&b, t->emit_llvm, t->emit_asm)) {
        p->obj = b.obj;
        b.obj = NULL; /* the part owns the object now */
        if (cache)
            dnic_jit_cache_store(t->cache_dir, key, LLVMGetBufferStart(p->obj), LLVMGetBufferSize(p->obj), p->warn,
                                 sizeof p->warn);
    }
    if (!p->obj)
        snprintf(p->msg, sizeof p->msg, "%s", b.msg);
    p->optimize_ms = b.optimize_ms;
    p->machine_ms = b.machine_ms;
    dnic_backend_free(&b);
    return NULL;
}

/* Deals the blocks, dearest first, each to the part with the least cost so far. */
static int plan_parts(dnic_arena *a, const dnic_ir *ir, const shared *t, part *parts, int want_parts, const bool *only)
{
    int nwanted = 0;
    for (int b = 0; b < ir->nblocks; b++)
        nwanted += !only || only[b];
    int n = nwanted < want_parts ? nwanted : want_parts;
    if (n < 1)
        n = 1;
    for (int i = 0; i < n; i++)
        parts[i] = (part){.t = t, .want = dnic_alloc(a, (size_t)ir->nblocks + 1)};
    bool *done = dnic_alloc(a, (size_t)ir->nblocks + 1);
    for (int b = 0; b < ir->nblocks; b++)
        done[b] = only && !only[b]; /* a block not asked for is never dealt */
    for (int k = 0; k < nwanted; k++) {
        int best = -1;
        for (int b = 0; b < ir->nblocks; b++)
            if (!done[b] && (best < 0 || dnic_ir_block_cost(ir, b) > dnic_ir_block_cost(ir, best)))
                best = b;
        int to = 0;
        for (int i = 1; i < n; i++)
            if (parts[i].cost < parts[to].cost)
                to = i;
        done[best] = parts[to].want[best] = true;
        parts[to].cost += dnic_ir_block_cost(ir, best) + 1; /* + 1: every block costs something */
    }
    return n;
}

static int compile_threads(const char *emit_llvm, const char *emit_asm)
{
    if (emit_llvm || emit_asm) /* one module, so one file */
        return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    return cores < 1 ? 1 : cores > MAX_PARTS ? MAX_PARTS : (int)cores;
}

dnic_jit *dnic_jit_compile(const dnic_ir *ir, dnic_program *prog, const bool *only, const char *emit_llvm,
                           const char *emit_asm, const char *cache_dir, dnic_jit_times *times)
{
    double t0 = dnic_now_ms();
    dnic_arena *a = dnic_arena_new();
    shared t = {.ir = ir, .emit_llvm = emit_llvm, .emit_asm = emit_asm, .cache_dir = cache_dir};
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    snprintf(t.llvm_version, sizeof t.llvm_version, "%u.%u.%u", major, minor, patch);
    char msg[512];
    dnic_jit *j = NULL;
    if (!dnic_target_init(&t.target, NULL, NULL, msg, sizeof msg)) {
        fprintf(stderr, "dnic: error: %s\n", msg);
        goto out;
    }
    part parts[MAX_PARTS];
    pthread_t tid[MAX_PARTS];
    bool started[MAX_PARTS] = {0};
    int n = plan_parts(a, ir, &t, parts, compile_threads(emit_llvm, emit_asm), only);
    for (int i = 1; i < n; i++)
        started[i] = pthread_create(&tid[i], NULL, compile_part, &parts[i]) == 0;
    for (int i = 1; i < n; i++)
        if (!started[i]) /* no thread to be had: compile it here */
            compile_part(&parts[i]);
    j = calloc(1, sizeof *j);
    DNIC_ASSERT(j != NULL);
    bool ok = llvm_ok(LLVMOrcCreateLLJIT(&j->lljit, NULL), "creating the JIT");
    compile_part(&parts[0]);
    for (int i = 1; i < n; i++)
        if (started[i])
            pthread_join(tid[i], NULL);
    LLVMOrcJITDylibRef jd = ok ? LLVMOrcLLJITGetMainJITDylib(j->lljit) : NULL;
    if (ok) { /* let generated code call libm (exp, tanh, log) from this process */
        LLVMOrcDefinitionGeneratorRef gen = NULL;
        ok = llvm_ok(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit),
                                                                          NULL, NULL),
                     "creating the JIT's symbol generator");
        if (ok)
            LLVMOrcJITDylibAddGenerator(jd, gen); /* jd owns gen now */
    }
    if (ok) { /* the kernel thread pool, from this process's runtime */
        LLVMJITSymbolFlags fl = {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0};
        LLVMOrcCSymbolMapPair sym[2] = {
            {LLVMOrcLLJITMangleAndIntern(j->lljit, "dnic_parallel_for"),
             {(LLVMOrcExecutorAddress)(uintptr_t)dnic_parallel_for, fl}},
            {LLVMOrcLLJITMangleAndIntern(j->lljit, "dnic_replica_sum"),
             {(LLVMOrcExecutorAddress)(uintptr_t)dnic_replica_sum, fl}}};
        ok = llvm_ok(LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(sym, 2)), "defining the runtime's symbols");
    }
    for (int i = 0; i < n; i++) {
        if (parts[i].warn[0] && (i == 0 || !parts[i - 1].warn[0]))
            fprintf(stderr, "dnic: warning: not caching the compiled code: %s (--no-cache turns the cache off)\n",
                    parts[i].warn);
        if (!parts[i].obj) {
            if (ok)
                fprintf(stderr, "dnic: error: %s\n", parts[i].msg);
            ok = false;
            continue;
        }
        if (ok) /* consumes the buffer */
            ok = llvm_ok(LLVMOrcLLJITAddObjectFile(j->lljit, jd, parts[i].obj), "adding code to the JIT");
        else
            LLVMDisposeMemoryBuffer(parts[i].obj);
    }
    for (int b = 0; b < prog->nblocks && ok; b++) {
        if (only && !only[b])
            continue;
        LLVMOrcExecutorAddress addr = 0;
        ok = llvm_ok(LLVMOrcLLJITLookup(j->lljit, &addr, dnic_block_symbol(a, "dnic", b)), "linking the generated code");
        if (ok) /* the JIT hands back an address; the block ABI is dnic_block_fn */
            prog->blocks[b].fn = (dnic_block_fn)(uintptr_t)addr;
    }
    if (times) {
        *times = (dnic_jit_times){.total_ms = dnic_now_ms() - t0, .threads = n, .parts = n};
        for (int i = 0; i < n; i++) {
            times->cached += parts[i].cached;
            times->codegen_ms += parts[i].codegen_ms;
            times->optimize_ms += parts[i].optimize_ms;
            times->machine_ms += parts[i].machine_ms;
        }
    }
    if (!ok) {
        dnic_jit_free(j);
        j = NULL;
    }
out:
    dnic_arena_free(a);
    dnic_target_free(&t.target);
    return j;
}
