/* The JIT: verifies and optimises the generated module for the host CPU (new pass manager,
 * default<O3>), hands it to ORC LLJIT and looks up each block's function. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen.h"

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

/* Writes the module as assembly for tm (codegen changes the IR, so a clone is emitted). */
static bool write_asm(LLVMTargetMachineRef tm, LLVMModuleRef m, const char *path)
{
    LLVMModuleRef clone = LLVMCloneModule(m);
    char *err = NULL;
    bool ok = !LLVMTargetMachineEmitToFile(tm, clone, path, LLVMAssemblyFile, &err);
    if (!ok)
        fprintf(stderr, "dnic: error: cannot write assembly to '%s': %s\n", path, err ? err : "unknown error");
    LLVMDisposeMessage(err);
    LLVMDisposeModule(clone);
    return ok;
}

dnic_jit *dnic_jit_compile(const dnic_ir *ir, dnic_program *prog, const char *emit_llvm, const char *emit_asm,
                           dnic_jit_times *times)
{
    LLVMInitializeNativeTarget();
    LLVMInitializeNativeAsmPrinter();
    dnic_jit *j = calloc(1, sizeof *j);
    DNIC_ASSERT(j != NULL);
    if (!llvm_ok(LLVMOrcCreateLLJIT(&j->lljit, NULL), "creating the JIT")) {
        free(j);
        return NULL;
    }
    /* let generated code call libm (exp, tanh, log) from this process */
    LLVMOrcDefinitionGeneratorRef gen = NULL;
    if (!llvm_ok(LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(j->lljit), NULL,
                                                                      NULL),
                 "creating the JIT's symbol generator")) {
        dnic_jit_free(j);
        return NULL;
    }
    LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(j->lljit);
    LLVMOrcJITDylibAddGenerator(jd, gen); /* jd owns gen now */

    char *triple = LLVMGetDefaultTargetTriple();
    char *cpu = LLVMGetHostCPUName();
    char *features = LLVMGetHostCPUFeatures();
    LLVMTargetRef target = NULL;
    char *err = NULL;
    if (LLVMGetTargetFromTriple(triple, &target, &err)) {
        fprintf(stderr, "dnic: error: no LLVM target for %s: %s\n", triple, err);
        LLVMDisposeMessage(err);
        LLVMDisposeMessage(triple);
        LLVMDisposeMessage(cpu);
        LLVMDisposeMessage(features);
        dnic_jit_free(j);
        return NULL;
    }
    LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, features, LLVMCodeGenLevelAggressive,
                                                      LLVMRelocDefault, LLVMCodeModelJITDefault);

    double t0 = now_ms();
    LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
    LLVMContextRef ctx = LLVMOrcThreadSafeContextGetContext(tsc);
    LLVMModuleRef mod = dnic_codegen(ctx, ir, "dnic", cpu, features);
    LLVMSetTarget(mod, LLVMOrcLLJITGetTripleString(j->lljit));
    LLVMSetDataLayout(mod, LLVMOrcLLJITGetDataLayoutStr(j->lljit));
    char *verr = NULL;
    if (LLVMVerifyModule(mod, LLVMReturnStatusAction, &verr)) {
        fprintf(stderr, "dnic: internal error: the generated LLVM module is invalid:\n%s\n", verr);
        LLVMDisposeMessage(verr);
        exit(2);
    }
    LLVMDisposeMessage(verr);
    double t1 = now_ms();
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    LLVMPassBuilderOptionsSetSLPVectorization(opts, 1);
    bool ok = llvm_ok(LLVMRunPasses(mod, "default<O3>", tm, opts), "optimising the generated code");
    LLVMDisposePassBuilderOptions(opts);
    double t2 = now_ms();
    if (ok && emit_llvm) {
        char *perr = NULL;
        if (LLVMPrintModuleToFile(mod, emit_llvm, &perr)) {
            fprintf(stderr, "dnic: error: cannot write '%s': %s\n", emit_llvm, perr);
            ok = false;
        }
        LLVMDisposeMessage(perr);
    }
    if (ok && emit_asm)
        ok = write_asm(tm, mod, emit_asm);
    LLVMDisposeTargetMachine(tm);
    LLVMDisposeMessage(triple);
    LLVMDisposeMessage(cpu);
    LLVMDisposeMessage(features);

    LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(mod, tsc); /* tsm owns mod */
    LLVMOrcDisposeThreadSafeContext(tsc); /* the module keeps the context alive */
    if (!ok) {
        LLVMOrcDisposeThreadSafeModule(tsm);
        dnic_jit_free(j);
        return NULL;
    }
    if (!llvm_ok(LLVMOrcLLJITAddLLVMIRModule(j->lljit, jd, tsm), "adding code to the JIT")) { /* consumes tsm */
        dnic_jit_free(j);
        return NULL;
    }
    dnic_arena *a = dnic_arena_new();
    for (int b = 0; b < prog->nblocks && ok; b++) {
        LLVMOrcExecutorAddress addr = 0;
        ok = llvm_ok(LLVMOrcLLJITLookup(j->lljit, &addr, dnic_block_symbol(a, "dnic", b)),
                     "compiling the generated code");
        /* the JIT hands back an address; the block ABI is dnic_block_fn */
        if (ok)
            prog->blocks[b].fn = (dnic_block_fn)(uintptr_t)addr;
    }
    dnic_arena_free(a);
    double t3 = now_ms();
    if (times) {
        times->codegen_ms = t1 - t0;
        times->optimize_ms = t2 - t1;
        times->jit_ms = t3 - t2;
    }
    if (!ok) {
        dnic_jit_free(j);
        return NULL;
    }
    return j;
}
