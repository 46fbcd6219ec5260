/* The LLVM half of the compiler: code generation from the IR (codegen.c) and the JIT and
 * object/assembly output (jit.c).  Only files that include this header talk to llvm-c. */
#ifndef DNIC_CODEGEN_H
#define DNIC_CODEGEN_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "dnic.h"

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

typedef struct dnic_jit dnic_jit;

typedef struct dnic_jit_times {
    double total_ms;                            /* wall time of dnic_jit_compile */
    double codegen_ms, optimize_ms, machine_ms; /* CPU time of each phase, summed over threads */
    int threads;
    int parts, cached; /* modules compiled, and how many of them came from the object cache */
} dnic_jit_times;

/* Compiles the IR for the host CPU and fills prog->blocks[i].fn.  Returns NULL after printing
 * the reason.  emit_llvm / emit_asm, when not NULL, receive the optimised module as text or
 * assembly. */
dnic_jit *dnic_jit_compile(const dnic_ir *ir, dnic_program *prog, const char *emit_llvm, const char *emit_asm,
                           const char *cache_dir, dnic_jit_times *times);

/* The object cache (jit_cache.c): a key over NUL-separated fields; a cached object or NULL;
 * storing reports why not in `why`. */
void dnic_jit_cache_key(const char *const *fields, int n, unsigned char key[16]);
LLVMMemoryBufferRef dnic_jit_cache_load(const char *dir, const unsigned char key[16]);
bool dnic_jit_cache_store(const char *dir, const unsigned char key[16], const void *obj, size_t n, char *why,
                          size_t whylen);
void dnic_jit_free(dnic_jit *j);

typedef struct dnic_emit_opts {
    const char *out_path, *header_path, *prefix;
    const char *cpu;    /* NULL: x86-64-v3; "native": the host */
    const char *triple; /* NULL: the host's */
} dnic_emit_opts;

/* Writes the object and its header (emit.c); returns an exit status. */
int dnic_emit_object(dnic_diag *d, const dnic_model *m, const dnic_ir *ir, const dnic_emit_opts *o);

#endif
