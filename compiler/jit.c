/* The JIT: splits the program's blocks into parts balanced by cost, and on one thread per
 * part (up to the machine's cores) builds, verifies and optimises each part's module in its
 * own LLVM context and compiles it to an object in memory; meanwhile the calling thread
 * creates the ORC LLJIT, which then links the objects and hands back each block's address. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen.h"
#include "config.h"

enum { MAX_PARTS = 8 };

struct dnic_jit {
    LLVMOrcLLJITRef lljit;
};

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The one place LLVM errors are turned into messages: copies, prints and disposes. */
static bool llvm_ok(LLVMErrorRef err, const char *what)
{
    if (!err)
        return true;
    char *msg = LLVMGetErrorMessage(err); /* consumes err */
    fprintf(stderr, "dnic: error: %s: %s\n", what, msg);
    LLVMDisposeErrorMessage(msg);
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

/* What every part shares: the target, and where --emit-llvm / -S go (one part then). */
typedef struct target {
    const dnic_ir *ir;
    LLVMTargetRef target;
    const char *triple, *cpu, *features;
    const char *emit_llvm, *emit_asm;
    const char *cache_dir; /* NULL: no object cache */
    char llvm_version[32];
} target;

typedef struct part {
    const target *t;
    bool *want; /* which blocks this part compiles */
    double cost;
    LLVMMemoryBufferRef obj; /* out: the compiled object */
    char msg[512];           /* out: why not, when obj is NULL */
    bool cached;             /* out: obj came from the cache */
    char warn[512];          /* out: why the object could not be cached ("" if it was) */
    double codegen_ms, optimize_ms, machine_ms;
} part;

/* The optimisation pipeline.  dnic's generated code is already blocked and vectorised where it
 * matters, so the full default<O3> (about 60 passes) buys nothing over inlining the ops,
 * cleaning up, hoisting invariants and vectorising the elementwise loops, at a third of the
 * time (docs/benchmarks.md). */
static const char PIPELINE[] = "always-inline,function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,simplifycfg,"
                               "loop-mssa(licm),loop-rotate,indvars,loop-vectorize,instcombine<no-verify-fixpoint>,simplifycfg)";

static bool write_file(part *p, LLVMTargetMachineRef tm, LLVMModuleRef m)
{
    const target *t = p->t;
    char *err = NULL;
    if (t->emit_llvm && LLVMPrintModuleToFile(m, t->emit_llvm, &err)) {
        snprintf(p->msg, sizeof p->msg, "cannot write '%s': %s", t->emit_llvm, err ? err : "unknown error");
        LLVMDisposeMessage(err);
        return false;
    }
    if (t->emit_asm) { /* codegen changes the IR, so a clone is emitted */
        LLVMModuleRef clone = LLVMCloneModule(m);
        bool bad = LLVMTargetMachineEmitToFile(tm, clone, t->emit_asm, LLVMAssemblyFile, &err);
        LLVMDisposeModule(clone);
        if (bad) {
            snprintf(p->msg, sizeof p->msg, "cannot write assembly to '%s': %s", t->emit_asm,
                     err ? err : "unknown error");
            LLVMDisposeMessage(err);
            return false;
        }
    }
    return true;
}

static void *compile_part(void *arg)
{
    part *p = arg;
    const target *t = p->t;
    double t0 = now_ms();
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef mod = dnic_codegen(ctx, t->ir, "dnic", t->cpu, t->features, p->want);
    LLVMSetTarget(mod, t->triple);
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t->target, t->triple, t->cpu, t->features,
                                                      LLVMCodeGenLevelAggressive, LLVMRelocPIC, LLVMCodeModelSmall);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(tm);
    LLVMSetModuleDataLayout(mod, dl);
    LLVMDisposeTargetData(dl);
    char *verr = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &verr)) {
        fprintf(stderr, "dnic: internal error: the generated LLVM module is invalid:\n%s\n", verr);
        exit(2);
    }
    LLVMDisposeMessage(verr);
    unsigned char key[16];
    bool cache = t->cache_dir && !t->emit_llvm && !t->emit_asm;
    if (cache) {
        char *text = LLVMPrintModuleToString(mod);
        const char *fields[] = {"dnic object cache 1", PACKAGE_VERSION, t->llvm_version, t->triple, t->cpu,
                                t->features, PIPELINE, "O3 PIC small", text};
        dnic_jit_cache_key(fields, (int)(sizeof fields / sizeof fields[0]), key);
        LLVMDisposeMessage(text);
        p->obj = dnic_jit_cache_load(t->cache_dir, key);
        p->cached = p->obj != NULL;
    }
    double t1 = now_ms();
    if (p->cached) {
        LLVMDisposeModule(mod);
        LLVMDisposeTargetMachine(tm);
        LLVMContextDispose(ctx);
        p->codegen_ms = t1 - t0;
        return NULL;
    }
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMErrorRef e = LLVMRunPasses(mod, PIPELINE, tm, opts);
    LLVMDisposePassBuilderOptions(opts);
    if (e) {
        char *msg = LLVMGetErrorMessage(e);
        snprintf(p->msg, sizeof p->msg, "optimising the generated code: %s", msg);
        LLVMDisposeErrorMessage(msg);
    }
    double t2 = now_ms();
    if (!e && write_file(p, tm, mod)) {
        char *err = NULL;
        if (LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &err, &p->obj)) {
            snprintf(p->msg, sizeof p->msg, "compiling the generated code: %s", err ? err : "unknown error");
            LLVMDisposeMessage(err);
            p->obj = NULL;
        }
    }
    if (cache && p->obj)
        dnic_jit_cache_store(t->cache_dir, key, LLVMGetBufferStart(p->obj), LLVMGetBufferSize(p->obj), p->warn,
                             sizeof p->warn);
    LLVMDisposeModule(mod);
    LLVMDisposeTargetMachine(tm);
    LLVMContextDispose(ctx);
    p->codegen_ms = t1 - t0;
    p->optimize_ms = t2 - t1;
    p->machine_ms = now_ms() - t2;
    return NULL;
}

/* Deals the blocks, dearest first, each to the part with the least cost so far. */
static int plan_parts(dnic_arena *a, const dnic_ir *ir, const target *t, part *parts, int want_parts)
{
    int n = ir->nblocks < want_parts ? ir->nblocks : want_parts;
    if (n < 1)
        n = 1;
    for (int i = 0; i < n; i++)
        parts[i] = (part){.t = t, .want = dnic_alloc(a, (size_t)ir->nblocks + 1)};
    bool *done = dnic_alloc(a, (size_t)ir->nblocks + 1);
    for (int k = 0; k < ir->nblocks; k++) {
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

dnic_jit *dnic_jit_compile(const dnic_ir *ir, dnic_program *prog, const char *emit_llvm, const char *emit_asm,
                           const char *cache_dir, dnic_jit_times *times)
{
    double t0 = now_ms();
    dnic_arena *a = dnic_arena_new();
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    char *triple = LLVMGetDefaultTargetTriple(), *cpu = LLVMGetHostCPUName(), *features = LLVMGetHostCPUFeatures();
    target t = {.ir = ir, .triple = triple, .cpu = cpu, .features = features, .emit_llvm = emit_llvm,
                .emit_asm = emit_asm, .cache_dir = cache_dir};
    unsigned major, minor, patch;
    LLVMGetVersion(&major, &minor, &patch);
    snprintf(t.llvm_version, sizeof t.llvm_version, "%u.%u.%u", major, minor, patch);
    char *err = NULL;
    dnic_jit *j = NULL;
    if (LLVMGetTargetFromTriple(triple, &t.target, &err)) {
        fprintf(stderr, "dnic: error: no LLVM target for %s: %s\n", triple, err);
        LLVMDisposeMessage(err);
        goto out;
    }
    part parts[MAX_PARTS];
    pthread_t tid[MAX_PARTS];
    bool started[MAX_PARTS] = {0};
    int n = plan_parts(a, ir, &t, parts, compile_threads(emit_llvm, emit_asm));
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
        LLVMOrcCSymbolMapPair sym = {
            LLVMOrcLLJITMangleAndIntern(j->lljit, "dnic_parallel_for"),
            {(LLVMOrcExecutorAddress)(uintptr_t)dnic_parallel_for,
             {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}};
        ok = llvm_ok(LLVMOrcJITDylibDefine(jd, LLVMOrcAbsoluteSymbols(&sym, 1)), "defining the runtime's symbols");
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
        LLVMOrcExecutorAddress addr = 0;
        ok = llvm_ok(LLVMOrcLLJITLookup(j->lljit, &addr, dnic_block_symbol(a, "dnic", b)), "linking the generated code");
        if (ok) /* the JIT hands back an address; the block ABI is dnic_block_fn */
            prog->blocks[b].fn = (dnic_block_fn)(uintptr_t)addr;
    }
    if (times) {
        *times = (dnic_jit_times){.total_ms = now_ms() - t0, .threads = n, .parts = n};
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
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);
    return j;
}
