/* The back end that the JIT (jit.c) and `-c` (emit.c) share: the target and its TargetMachine,
 * the module from dnic_codegen, its verification, the one pass pipeline, --emit-llvm / -S and
 * the object in memory.  A dnic_backend is one thread's; nothing in it is shared. */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Target.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "atomic_file.h"
#include "codegen.h"
#include "config.h"

/* The one pass pipeline, for the JIT and for -c alike, so that an emitted object is optimised
 * exactly as the code `dnic --run` trains with.  dnic's generated code is already blocked and
 * vectorised where it matters, so the full default<O3> (about 60 passes, which -c ran until
 * the back ends were merged) buys nothing over inlining the ops, cleaning up, hoisting
 * invariants and vectorising the elementwise loops, at a third of the time; the seed model
 * trained as fast (docs/benchmarks.md, "Compile time and startup").  Without the loop
 * vectoriser training took 35% longer. */
const char dnic_backend_pipeline[] = "always-inline,function(sroa,early-cse<memssa>,instcombine<no-verify-fixpoint>,"
                                     "simplifycfg,loop-mssa(licm),loop-rotate,indvars,loop-vectorize,"
                                     "instcombine<no-verify-fixpoint>,simplifycfg)";

/* The TargetMachine's settings, as the object cache's key names them.  The small code model
 * is what LLVMCodeModelDefault gives on x86-64 and AArch64 outside a JIT; with PIC, the JIT
 * links such objects anywhere (calls out go through the GOT/PLT). */
const char dnic_backend_machine[] = "O3 PIC small";
enum { LEVEL = LLVMCodeGenLevelAggressive, RELOC = LLVMRelocPIC, CODE_MODEL = LLVMCodeModelSmall };

double dnic_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The one place LLVM's messages become dnic's: "<what>: <message>" into msg (n bytes), and
 * the message (an LLVMDisposeMessage string, may be NULL) disposed.  Returns false. */
__attribute__((format(printf, 4, 5))) static bool fail(char *msg, size_t n, char *llvm_msg, const char *what, ...)
{
    va_list ap;
    va_start(ap, what);
    int k = vsnprintf(msg, n, what, ap);
    va_end(ap);
    if (k >= 0 && (size_t)k < n)
        snprintf(msg + k, n - (size_t)k, ": %s", llvm_msg ? llvm_msg : "unknown error");
    LLVMDisposeMessage(llvm_msg);
    return false;
}

bool dnic_llvm_ok(LLVMErrorRef err, const char *what, char *msg, size_t n)
{
    if (!err)
        return true;
    char *m = LLVMGetErrorMessage(err); /* consumes err; m is not an LLVMDisposeMessage string */
    fail(msg, n, LLVMCreateMessage(m), "%s", what);
    LLVMDisposeErrorMessage(m);
    return false;
}

static void init_targets(bool all)
{
    if (!all) {
        LLVMInitializeNativeTarget();
        LLVMInitializeNativeAsmPrinter();
        return;
    }
#if DNIC_STATIC_LLVM /* the targets configure linked */
    LLVMInitializeX86TargetInfo();
    LLVMInitializeX86Target();
    LLVMInitializeX86TargetMC();
    LLVMInitializeX86AsmPrinter();
    LLVMInitializeAArch64TargetInfo();
    LLVMInitializeAArch64Target();
    LLVMInitializeAArch64TargetMC();
    LLVMInitializeAArch64AsmPrinter();
#else
    LLVMInitializeAllTargetInfos();
    LLVMInitializeAllTargets();
    LLVMInitializeAllTargetMCs();
    LLVMInitializeAllAsmPrinters();
#endif
}

/* Makes code for CPU t->cpu once, in a child process: LLVM reports a CPU it does not know on
 * stderr and carries on without one, and then aborts the process where the target needs a
 * feature (x86-64's 64-bit mode) that no CPU gives.  So the child's stderr goes to a pipe, and
 * anything it wrote, or its dying, means that the CPU cannot be compiled for; false with
 * LLVM's first line in msg. */
bool dnic_target_cpu_ok(const dnic_target *t, char *msg, size_t n)
{
    int fd[2];
    if (pipe(fd) != 0)
        return true; /* no way to ask: LLVM's own message will show */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fd[1], 2);
        close(fd[0]);
        LLVMTargetMachineRef tm = LLVMCreateTargetMachine(t->target, t->triple, t->cpu, t->features,
                                                          LLVMCodeGenLevelNone, LLVMRelocPIC, LLVMCodeModelSmall);
        LLVMContextRef ctx = LLVMContextCreate();
        LLVMModuleRef mod = LLVMModuleCreateWithNameInContext("cpu", ctx);
        LLVMSetTarget(mod, t->triple);
        LLVMValueRef f = LLVMAddFunction(mod, "f", LLVMFunctionType(LLVMVoidTypeInContext(ctx), NULL, 0, 0));
        LLVMBuilderRef b = LLVMCreateBuilderInContext(ctx);
        LLVMPositionBuilderAtEnd(b, LLVMAppendBasicBlockInContext(ctx, f, "entry"));
        LLVMBuildRetVoid(b);
        char *err = NULL;
        LLVMMemoryBufferRef obj = NULL;
        bool bad = !tm || LLVMTargetMachineEmitToMemoryBuffer(tm, mod, LLVMObjectFile, &err, &obj);
        _exit(bad ? 1 : 0);
    }
    close(fd[1]);
    char out[512] = "";
    size_t got = 0;
    ssize_t k;
    while (pid > 0 && got < sizeof out - 1 && (k = read(fd[0], out + got, sizeof out - 1 - got)) > 0)
        got += (size_t)k; /* the first 511 bytes: LLVM's first line is in them */
    if (pid > 0)
        while (read(fd[0], (char[64]){0}, 64) > 0) /* the rest, so that the child never blocks */
            ;
    close(fd[0]);
    int status = 0;
    if (pid < 0 || waitpid(pid, &status, 0) != pid)
        return true;
    out[got] = '\0';
    out[strcspn(out, "\n")] = '\0';
    char *say = strncmp(out, "LLVM ERROR: ", 12) == 0 ? out + 12 : out, *tail = strstr(say, " (ignoring processor)");
    if (tail)
        *tail = '\0'; /* dnic does not ignore it */
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && got == 0)
        return true;
    snprintf(msg, n, "cannot compile for CPU '%s' on '%s': %s (llc-19 -mtriple=%s -mcpu=help lists the CPUs)", t->cpu,
             t->triple, got ? say : "LLVM stopped", t->triple);
    return false;
}

bool dnic_target_init(dnic_target *t, const char *triple, const char *cpu, char *msg, size_t n)
{
    init_targets(triple != NULL);
    *t = (dnic_target){
        .triple = triple ? LLVMNormalizeTargetTriple(triple) : LLVMGetDefaultTargetTriple(),
        .cpu = cpu ? LLVMCreateMessage(cpu) : LLVMGetHostCPUName(),
        .features = cpu ? LLVMCreateMessage("") : LLVMGetHostCPUFeatures(),
    };
    char *err = NULL;
    if (LLVMGetTargetFromTriple(t->triple, &t->target, &err))
        return fail(msg, n, err, "unknown target '%s'", t->triple);
    return true;
}

void dnic_target_free(dnic_target *t)
{
    LLVMDisposeMessage(t->triple);
    LLVMDisposeMessage(t->cpu);
    LLVMDisposeMessage(t->features);
    *t = (dnic_target){0};
}

bool dnic_backend_build(dnic_backend *b, const dnic_target *t, const dnic_ir *ir, const char *prefix, const bool *want,
                        dnic_backend_extend *extend, void *arg)
{
    *b = (dnic_backend){0};
    b->tm = LLVMCreateTargetMachine(t->target, t->triple, t->cpu, t->features, (LLVMCodeGenOptLevel)LEVEL,
                                    (LLVMRelocMode)RELOC, (LLVMCodeModel)CODE_MODEL);
    if (!b->tm) {
        snprintf(b->msg, sizeof b->msg, "cannot make code for CPU '%s' on '%s'", t->cpu, t->triple);
        return false;
    }
    b->ctx = LLVMContextCreate();
    b->mod = dnic_codegen(b->ctx, ir, prefix, t->cpu, t->features, want); /* named, and its source file, `prefix` */
    LLVMSetTarget(b->mod, t->triple);
    LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(b->tm);
    LLVMSetModuleDataLayout(b->mod, dl);
    LLVMDisposeTargetData(dl);
    if (extend)
        extend(b->mod, arg);
    char *err = NULL;
    if (LLVMVerifyModule(b->mod, LLVMReturnStatusAction, &err)) { /* dnic's bug, not the user's */
        fprintf(stderr, "%s\n", err);
        dnic_die(__FILE__, __LINE__, "the generated LLVM module is invalid");
    }
    LLVMDisposeMessage(err);
    return true;
}

/* Writes n bytes to path crash-safely (runtime/atomic_file.c); false with the reason in b->msg. */
static bool write_bytes(dnic_backend *b, const char *path, const char *bytes, size_t n)
{
    dnic_atomic_file a;
    dnic_status s = dnic_atomic_open(&a, path, b->msg, sizeof b->msg);
    if (s == DNIC_OK) {
        fwrite(bytes, 1, n, a.f); /* a short write shows in the stream's error flag at commit */
        s = dnic_atomic_commit(&a, b->msg, sizeof b->msg);
    }
    return s == DNIC_OK;
}

static bool write_text(dnic_backend *b, const char *emit_llvm, const char *emit_asm)
{
    char *err = NULL;
    if (emit_llvm) {
        char *text = LLVMPrintModuleToString(b->mod);
        bool ok = write_bytes(b, emit_llvm, text, strlen(text));
        LLVMDisposeMessage(text);
        if (!ok)
            return false;
    }
    if (emit_asm) { /* instruction selection changes the IR, so a clone is emitted */
        LLVMModuleRef clone = LLVMCloneModule(b->mod);
        LLVMMemoryBufferRef asm_buf = NULL;
        bool bad = LLVMTargetMachineEmitToMemoryBuffer(b->tm, clone, LLVMAssemblyFile, &err, &asm_buf);
        LLVMDisposeModule(clone);
        if (bad)
            return fail(b->msg, sizeof b->msg, err, "cannot write assembly to '%s'", emit_asm);
        bool ok = write_bytes(b, emit_asm, LLVMGetBufferStart(asm_buf), LLVMGetBufferSize(asm_buf));
        LLVMDisposeMemoryBuffer(asm_buf);
        if (!ok)
            return false;
    }
    return true;
}

bool dnic_backend_finish(dnic_backend *b, const char *emit_llvm, const char *emit_asm)
{
    double t0 = dnic_now_ms();
    LLVMPassBuilderOptionsRef opts = LLVMCreatePassBuilderOptions();
    LLVMPassBuilderOptionsSetLoopVectorization(opts, 1);
    bool ok = dnic_llvm_ok(LLVMRunPasses(b->mod, dnic_backend_pipeline, b->tm, opts), "optimising the generated code",
                           b->msg, sizeof b->msg);
    LLVMDisposePassBuilderOptions(opts);
    double t1 = dnic_now_ms();
    char *err = NULL;
    if (ok && write_text(b, emit_llvm, emit_asm) &&
        LLVMTargetMachineEmitToMemoryBuffer(b->tm, b->mod, LLVMObjectFile, &err, &b->obj)) {
        b->obj = NULL;
        ok = fail(b->msg, sizeof b->msg, err, "compiling the generated code");
    }
    b->optimize_ms = t1 - t0;
    b->machine_ms = dnic_now_ms() - t1;
    return ok && b->obj;
}

void dnic_backend_free(dnic_backend *b)
{
    if (b->obj)
        LLVMDisposeMemoryBuffer(b->obj);
    if (b->mod)
        LLVMDisposeModule(b->mod);
    if (b->ctx)
        LLVMContextDispose(b->ctx);
    if (b->tm)
        LLVMDisposeTargetMachine(b->tm);
    b->obj = NULL, b->mod = NULL, b->ctx = NULL, b->tm = NULL;
}
