/* The LLVM half of the compiler, one section per file: codegen (IR -> LLVM module) -> backend
 * (TargetMachine, verify, the one pass pipeline, object) -> jit (+ jit_cache) or emit (-c).
 * Only files that include this header talk to llvm-c. */
#ifndef DNIC_CODEGEN_H
#define DNIC_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/Error.h>
#include <llvm-c/TargetMachine.h>

#include "dnic.h"

/* ---- codegen.c ---------------------------------------------------------------------------- */
/* The symbol of block i: "<prefix>_block<i>". */
char *dnic_block_symbol(dnic_arena *a, const char *prefix, int i);

/* Builds a module with one function per IR block.  Shapes, the batch size and learning
 * rates are constants in the code.  The module belongs to `ctx`. */
LLVMModuleRef dnic_codegen(LLVMContextRef ctx, const dnic_ir *ir, const char *prefix, const char *cpu,
                           const char *features, const bool *want);

/* The width in bits of the vectors dnic's kernels are written in for `cpu` with `features`
 * (LLVM's names): 512 on CPUs with AVX-512 that run 512-bit operations at full width, else
 * 256.  The results are the same bit for bit either way. */
int dnic_vector_bits(const char *cpu, const char *features);

/* For tests: later dnic_codegen calls use `bits` (256 or 512) whatever the CPU; 0 undoes it. */
void dnic_codegen_force_vector_bits(int bits);

/* For tests: later dnic_codegen calls choose their register tiles for `regs` vector registers
 * (16: AVX2's, 32: AVX-512's) whatever the CPU; 0 undoes it.  Results are the same either way. */
void dnic_codegen_force_vector_regs(int regs);

/* ---- backend.c: the back end the JIT and -c share ------------------------------------- *
 *
 *     dnic_target t;                      // once; triple NULL: the host's, cpu NULL: the host's
 *     if (!dnic_target_init(&t, triple, cpu, msg, sizeof msg)) ...
 *     dnic_backend b;                     // per module, so per thread
 *     if (dnic_backend_build(&b, &t, ir, prefix, want, extend, arg)   // codegen, extend, verify
 *         && dnic_backend_finish(&b, emit_llvm, emit_asm))            // passes, files, object
 *         use(b.obj), b.obj = NULL;       // else b.msg says why
 *     dnic_backend_free(&b);
 *     dnic_target_free(&t);
 */
typedef struct dnic_target {
    LLVMTargetRef target;
    char *triple, *cpu, *features; /* owned (LLVMDisposeMessage strings) */
} dnic_target;

/* Initialises LLVM's targets (only the native one for the host's triple) and picks the
 * target for `triple` (NULL: the host's) and `cpu` with no extra features (NULL: the host's
 * CPU and features).  False with the reason in msg; dnic_target_free either way. */
bool dnic_target_init(dnic_target *t, const char *triple, const char *cpu, char *msg, size_t n);
/* Whether LLVM can make code for t's CPU (one the user named: LLVM ignores a name it does not
 * know, with a warning, and aborts where the target then lacks a feature it needs); false
 * with the reason, naming the CPU and the target, in msg.  Runs LLVM in a child process. */
bool dnic_target_cpu_ok(const dnic_target *t, char *msg, size_t n);
void dnic_target_free(dnic_target *t);

/* One module on its way to an object.  Ownership: everything in it is the struct's, freed by
 * dnic_backend_free, except `obj` once the caller takes it (and sets it NULL). */
typedef struct dnic_backend {
    LLVMTargetMachineRef tm;  /* the project's settings: -O3 codegen, PIC, small code model */
    LLVMContextRef ctx;       /* its own, so that threads share nothing */
    LLVMModuleRef mod;        /* in ctx */
    LLVMMemoryBufferRef obj;  /* out of dnic_backend_finish */
    double optimize_ms, machine_ms; /* of dnic_backend_finish: the passes; files and object */
    char msg[512];            /* why the last step failed */
} dnic_backend;

/* Adds to the module before it is verified (emit.c's exported wrappers). */
typedef void dnic_backend_extend(LLVMModuleRef mod, void *arg);

/* Builds the module of the blocks `want` selects (NULL: all) with symbols "<prefix>_...",
 * for t's triple, CPU and data layout; calls extend (if not NULL); verifies the module (an
 * invalid one is dnic's bug: it aborts).  False with b->msg when there is no TargetMachine. */
bool dnic_backend_build(dnic_backend *b, const dnic_target *t, const dnic_ir *ir, const char *prefix, const bool *want,
                        dnic_backend_extend *extend, void *arg);
/* Runs dnic_backend_pipeline, writes the optimised module as text to emit_llvm and as
 * assembly to emit_asm (each when not NULL) and compiles b->obj.  False with b->msg. */
bool dnic_backend_finish(dnic_backend *b, const char *emit_llvm, const char *emit_asm);
void dnic_backend_free(dnic_backend *b);

/* The pass pipeline and the TargetMachine's settings, for keys of compiled code. */
extern const char dnic_backend_pipeline[], dnic_backend_machine[];

/* The one helper for LLVM errors: true when err is NULL, otherwise "what: LLVM's message" into
 * msg (n bytes), err consumed, false. */
bool dnic_llvm_ok(LLVMErrorRef err, const char *what, char *msg, size_t n);

/* Milliseconds on a monotonic clock, for the compile times. */
double dnic_now_ms(void);

/* ---- jit.c -------------------------------------------------------------------------------- */
typedef struct dnic_jit dnic_jit;

typedef struct dnic_jit_times {
    double total_ms;                            /* wall time of dnic_jit_compile */
    double codegen_ms, optimize_ms, machine_ms; /* CPU time of each phase, summed over threads */
    int threads;
    int parts, cached; /* modules compiled, and how many of them came from the object cache */
} dnic_jit_times;

/* Compiles the IR for the host CPU and fills prog->blocks[i].fn for the blocks `only` selects
 * (NULL: all; the others' fn stay NULL).  Returns NULL after printing the reason.  emit_llvm /
 * emit_asm, when not NULL, receive the optimised module as text or assembly. */
dnic_jit *dnic_jit_compile(const dnic_ir *ir, dnic_program *prog, const bool *only, const char *emit_llvm,
                           const char *emit_asm, const char *cache_dir, dnic_jit_times *times);

/* The object cache (jit_cache.c): a key over NUL-separated fields and then `len` bytes of
 * `blob` (the module's bitcode); a cached object or NULL; storing reports why not in `why`. */
void dnic_jit_cache_key(const char *const *fields, int n, const void *blob, size_t len, unsigned char key[16]);
LLVMMemoryBufferRef dnic_jit_cache_load(const char *dir, const unsigned char key[16]);
bool dnic_jit_cache_store(const char *dir, const unsigned char key[16], const void *obj, size_t n, char *why,
                          size_t whylen);
void dnic_jit_free(dnic_jit *j);

/* ---- emit.c ------------------------------------------------------------------------------ */
typedef struct dnic_emit_opts {
    const char *out_path, *header_path, *prefix;
    const char *cpu;    /* NULL: x86-64-v3; "native": the host */
    const char *triple; /* NULL: the host's */
} dnic_emit_opts;

/* Writes the object and its header (emit.c); returns an exit status. */
int dnic_emit_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_emit_opts *o);

#endif
