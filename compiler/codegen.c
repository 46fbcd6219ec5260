/* Code generation: each IR block becomes one LLVM function `void block(ptr bufs)` that calls
 * one always-inlined function per op.  Op functions take their buffers as noalias pointers,
 * so after inlining LLVM knows that outputs do not overlap inputs; every loop bound is a
 * constant.  Floating point is strict (no fast-math flags): results follow the order of
 * operations in docs/semantics.md. */
#include <stdlib.h>
#include <string.h>

#include <llvm-c/DebugInfo.h>

#include "codegen.h"

typedef struct cg {
    LLVMContextRef C;
    LLVMModuleRef M;
    LLVMBuilderRef B;
    LLVMTypeRef T, f64, i64, i32, i1, ptr, vd;
    int lanes;                  /* elements of T in one vector register */
    int mr, nrv;                /* the register tile of products: rows by vectors (choose_tile) */
    LLVMValueRef tilebuf, tilebuf_fn; /* tile_buffer's, and the function it is in */
    int lanes256;               /* ... in 256 bits (gen_act_pass) */
    bool novec;                 /* the loops being built must not be vectorised */
    LLVMValueRef mask;          /* vload and vstore of mask_lanes elements touch only the lanes set in it */
    int mask_lanes;
    LLVMValueRef fn;            /* the function being built */
    const dnic_ir *ir;
    const char *cpu, *features;
    dnic_arena *a;
} cg;

static void add_target_attrs(cg *g, LLVMValueRef fn);

typedef struct loop {
    LLVMBasicBlockRef head, exit;
    LLVMValueRef iv;
} loop;

/* ---- small builders --------------------------------------------------------------------- */

static LLVMValueRef ci(cg *g, long long v)
{
    return LLVMConstInt(g->i64, (unsigned long long)v, 1);
}

static LLVMValueRef cf(cg *g, LLVMTypeRef t, double v)
{
    return LLVMConstReal(t, v);
}

static LLVMValueRef at(cg *g, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildInBoundsGEP2(g->B, t, base, &idx, 1, "");
}

static LLVMValueRef ld(cg *g, LLVMTypeRef t, LLVMValueRef base, LLVMValueRef idx)
{
    return LLVMBuildLoad2(g->B, t, at(g, t, base, idx), "");
}

static void st(cg *g, LLVMTypeRef t, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx)
{
    LLVMBuildStore(g->B, v, at(g, t, base, idx));
}

/* idx = i * cols + j */
static LLVMValueRef ix(cg *g, LLVMValueRef i, long long cols, LLVMValueRef j)
{
    return LLVMBuildAdd(g->B, LLVMBuildMul(g->B, i, ci(g, cols), ""), j, "");
}

/* for (iv = lo; iv < hi; iv++) { ... loop_end } */
static LLVMValueRef loop_over(cg *g, loop *l, LLVMValueRef lo, LLVMValueRef hi)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
    l->head = LLVMAppendBasicBlockInContext(g->C, g->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->C, g->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(g->C, g->fn, "done");
    LLVMBuildBr(g->B, l->head);
    LLVMPositionBuilderAtEnd(g->B, l->head);
    l->iv = LLVMBuildPhi(g->B, g->i64, "i");
    LLVMAddIncoming(l->iv, &lo, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(g->B, LLVMIntSLT, l->iv, hi, "");
    LLVMBuildCondBr(g->B, more, body, l->exit);
    LLVMPositionBuilderAtEnd(g->B, body);
    return l->iv;
}

/* for (iv = 0; iv < n; iv++) { ... loop_end } */
static LLVMValueRef loop_begin(cg *g, loop *l, long long n)
{
    return loop_over(g, l, ci(g, 0), ci(g, n));
}

/* Marks a loop's back edge "do not unroll": the loops are already blocked for registers, and
 * fully unrolling constant-trip loops would multiply compile time for little gain. */
static void no_unroll(cg *g, LLVMValueRef backedge)
{
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(g->C, NULL, 0);
    LLVMMetadataRef name = LLVMMDStringInContext2(g->C, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef ops[3] = {tmp, LLVMMDNodeInContext2(g->C, &name, 1), NULL};
    unsigned n = 2;
    if (g->novec) {
        /* a strided copy: vectorised it becomes scatters, slower than scalar moves */
        LLVMMetadataRef kv[2] = {LLVMMDStringInContext2(g->C, "llvm.loop.vectorize.enable", 26),
                                 LLVMValueAsMetadata(LLVMConstInt(g->i1, 0, 0))};
        ops[n++] = LLVMMDNodeInContext2(g->C, kv, 2);
    }
    LLVMMetadataRef id = LLVMMDNodeInContext2(g->C, ops, n);
    LLVMMetadataReplaceAllUsesWith(tmp, id);
    LLVMSetMetadata(backedge, LLVMGetMDKindIDInContext(g->C, "llvm.loop", 9), LLVMMetadataAsValue(g->C, id));
}

static void loop_end(cg *g, loop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(g->B, l->iv, ci(g, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->B);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    no_unroll(g, LLVMBuildBr(g->B, l->head));
    LLVMPositionBuilderAtEnd(g->B, l->exit);
}

/* An alloca in the function's entry block, where LLVM expects static allocations. */
static LLVMValueRef entry_alloca(cg *g, LLVMTypeRef t, const char *name)
{
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(g->C);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(g->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(eb, first);
    else
        LLVMPositionBuilderAtEnd(eb, entry);
    LLVMValueRef p = LLVMBuildAlloca(eb, t, name);
    LLVMDisposeBuilder(eb);
    return p;
}

/* A scalar variable in the entry block (promoted to a register by SROA). */
static LLVMValueRef var(cg *g, LLVMTypeRef t, LLVMValueRef init)
{
    LLVMValueRef p = entry_alloca(g, t, "");
    LLVMBuildStore(g->B, init, p);
    return p;
}

static LLVMValueRef get(cg *g, LLVMTypeRef t, LLVMValueRef v)
{
    return LLVMBuildLoad2(g->B, t, v, "");
}

static void set(cg *g, LLVMValueRef v, LLVMValueRef p)
{
    LLVMBuildStore(g->B, v, p);
}

/* A constant like v: a scalar, or a vector of v's width. */
static LLVMValueRef cl(cg *g, LLVMValueRef like, double x)
{
    LLVMTypeRef t = LLVMTypeOf(like);
    if (LLVMGetTypeKind(t) != LLVMVectorTypeKind)
        return LLVMConstReal(t, x);
    unsigned n = LLVMGetVectorSize(t);
    LLVMValueRef e[16];
    DNIC_ASSERT(n <= 16);
    for (unsigned i = 0; i < n; i++)
        e[i] = LLVMConstReal(LLVMGetElementType(t), x);
    return LLVMConstVector(e, n);
}

/* Calls a math function on a scalar or a vector: an LLVM intrinsic when there is one, else
 * libm, lane by lane. */
static LLVMValueRef math1(cg *g, const char *base, LLVMTypeRef t, LLVMValueRef x)
{
    if (LLVMGetTypeKind(t) == LLVMVectorTypeKind) {
        unsigned n = LLVMGetVectorSize(t);
        LLVMTypeRef et = LLVMGetElementType(t);
        if (strcmp(base, "exp") == 0 || strcmp(base, "log") == 0 || strcmp(base, "fabs") == 0 || strcmp(base, "sqrt") == 0) {
            const char *name = dnic_sprintf(g->a, "llvm.%s.v%u%s", base, n, et == g->f64 ? "f64" : "f32");
            LLVMTypeRef fty = LLVMFunctionType(t, &t, 1, 0);
            LLVMValueRef f = LLVMGetNamedFunction(g->M, name);
            if (!f)
                f = LLVMAddFunction(g->M, name, fty);
            return LLVMBuildCall2(g->B, fty, f, &x, 1, "");
        }
        LLVMValueRef r = LLVMGetUndef(t);
        for (unsigned i = 0; i < n; i++) {
            LLVMValueRef lane = LLVMConstInt(g->i32, i, 0);
            LLVMValueRef e = math1(g, base, et, LLVMBuildExtractElement(g->B, x, lane, ""));
            r = LLVMBuildInsertElement(g->B, r, e, lane, "");
        }
        return r;
    }
    bool is64 = t == g->f64;
    const char *name;
    if (strcmp(base, "exp") == 0)
        name = is64 ? "llvm.exp.f64" : "llvm.exp.f32";
    else if (strcmp(base, "log") == 0)
        name = is64 ? "llvm.log.f64" : "llvm.log.f32";
    else if (strcmp(base, "fabs") == 0)
        name = is64 ? "llvm.fabs.f64" : "llvm.fabs.f32";
    else if (strcmp(base, "sqrt") == 0)
        name = is64 ? "llvm.sqrt.f64" : "llvm.sqrt.f32";
    else
        name = is64 ? base : dnic_sprintf(g->a, "%sf", base);
    LLVMTypeRef fty = LLVMFunctionType(t, &t, 1, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->M, name);
    if (!f) {
        f = LLVMAddFunction(g->M, name, fty);
        if (strncmp(name, "llvm.", 5) != 0) {
            /* libm's tanh neither writes memory nor depends on it (no errno for tanh) */
            LLVMAttributeRef ro = LLVMCreateEnumAttribute(g->C, LLVMGetEnumAttributeKindForName("nounwind", 8), 0);
            LLVMAddAttributeAtIndex(f, LLVMAttributeFunctionIndex, ro);
        }
    }
    return LLVMBuildCall2(g->B, fty, f, &x, 1, "");
}

static LLVMValueRef fmul(cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFMul(g->B, a, b, "");
}

static LLVMValueRef fadd(cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFAdd(g->B, a, b, "");
}

static LLVMValueRef fsub(cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildFSub(g->B, a, b, "");
}

/* ---- activations ------------------------------------------------------------------------ */

static LLVMValueRef fmax_(cg *g, LLVMValueRef a, LLVMValueRef b)
{
    return LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, a, b, ""), a, b, "");
}

/* exp of a float32 vector without a libm call per lane: x = n ln2 + r, then e^r by Cephes'
 * expf polynomial and 2^n from the exponent bits (within 2 ulp of expf).  Past 88.7 the result
 * is infinity; below -87.3 it stops at 2^-126 (sigmoid's 1 / (1 + e^-v) needs no more). */
static LLVMValueRef vexpf(cg *g, LLVMValueRef x)
{
    LLVMTypeRef vt = LLVMTypeOf(x);
    unsigned n = LLVMGetVectorSize(vt);
    LLVMTypeRef it = LLVMVectorType(g->i32, n);
    x = fmax_(g, cl(g, x, -87.33654475), x);
    x = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOLT, x, cl(g, x, 88.72283905), ""), x, cl(g, x, 88.72283905), "");
    LLVMValueRef fx = fadd(g, fmul(g, x, cl(g, x, 1.44269504088896341)), cl(g, x, 0.5));
    const char *floor_name = dnic_sprintf(g->a, "llvm.floor.v%uf32", n);
    LLVMTypeRef fty = LLVMFunctionType(vt, &vt, 1, 0);
    LLVMValueRef fl = LLVMGetNamedFunction(g->M, floor_name);
    if (!fl)
        fl = LLVMAddFunction(g->M, floor_name, fty);
    fx = LLVMBuildCall2(g->B, fty, fl, &fx, 1, "");
    LLVMValueRef z = fsub(g, x, fmul(g, fx, cl(g, x, 0.693359375)));
    z = fsub(g, z, fmul(g, fx, cl(g, x, -2.12194440e-4)));
    static const double c[] = {1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1,
                               5.0000001201e-1};
    LLVMValueRef y = cl(g, x, c[0]);
    for (int i = 1; i < 6; i++)
        y = fadd(g, fmul(g, y, z), cl(g, x, c[i]));
    y = fadd(g, fadd(g, fmul(g, y, fmul(g, z, z)), z), cl(g, x, 1));
    LLVMValueRef k127[16], k23[16];
    DNIC_ASSERT(n <= 16);
    for (unsigned i = 0; i < n; i++) {
        k127[i] = LLVMConstInt(g->i32, 127, 0);
        k23[i] = LLVMConstInt(g->i32, 23, 0);
    }
    LLVMValueRef e = LLVMBuildFPToSI(g->B, fx, it, "");
    e = LLVMBuildShl(g->B, LLVMBuildAdd(g->B, e, LLVMConstVector(k127, n), ""), LLVMConstVector(k23, n), "");
    return fmul(g, y, LLVMBuildBitCast(g->B, e, vt, ""));
}

/* tanh of a float32 vector without a libm call per lane (glibc's tanhf goes through expm1f: a
 * fifth of an LSTM's step went there): Cephes' tanhf, an odd polynomial for |x| < 0.625, else
 * 1 - 2 / (e^{2|x|} + 1) from vexpf with x's sign (within 2 ulp of tanhf; past |x| = 44.4 the
 * exp is infinite and the result +-1). */
static LLVMValueRef vtanhf(cg *g, LLVMValueRef x)
{
    LLVMTypeRef vt = LLVMTypeOf(x);
    const char *fabs_name = dnic_sprintf(g->a, "llvm.fabs.v%uf32", LLVMGetVectorSize(vt));
    LLVMTypeRef fty = LLVMFunctionType(vt, &vt, 1, 0);
    LLVMValueRef fa = LLVMGetNamedFunction(g->M, fabs_name);
    if (!fa)
        fa = LLVMAddFunction(g->M, fabs_name, fty);
    LLVMValueRef ax = LLVMBuildCall2(g->B, fty, fa, &x, 1, "");
    LLVMValueRef e = vexpf(g, fadd(g, ax, ax));
    LLVMValueRef big = fsub(g, cl(g, x, 1), LLVMBuildFDiv(g->B, cl(g, x, 2), fadd(g, e, cl(g, x, 1)), ""));
    big = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOLT, x, cl(g, x, 0), ""), LLVMBuildFNeg(g->B, big, ""), big, "");
    static const double c[] = {-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
                               -3.33332819422e-1};
    LLVMValueRef z = fmul(g, x, x), p = cl(g, x, c[0]);
    for (int i = 1; i < 5; i++)
        p = fadd(g, fmul(g, p, z), cl(g, x, c[i]));
    LLVMValueRef small = fadd(g, fmul(g, fmul(g, p, z), x), x);
    return LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOLT, ax, cl(g, x, 0.625), ""), small, big, "");
}

/* tanh: libm's in float64 and for scalars; the vector polynomial for float32 vectors. */
static LLVMValueRef act_tanh(cg *g, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    if (LLVMGetTypeKind(t) == LLVMVectorTypeKind && LLVMGetElementType(t) != g->f64)
        return vtanhf(g, x);
    return math1(g, "tanh", t, x);
}

/* exp for the sigmoid: libm's exp in float64 (the seeds' numbers depend on it) and for scalars;
 * the vector polynomial for float32 vectors (docs/semantics.md, Floating point). */
static LLVMValueRef act_exp(cg *g, LLVMValueRef x)
{
    LLVMTypeRef t = LLVMTypeOf(x);
    if (LLVMGetTypeKind(t) == LLVMVectorTypeKind && LLVMGetElementType(t) != g->f64)
        return vexpf(g, x);
    return math1(g, "exp", t, x);
}

/* act(v) for an elementwise activation (softmax is done per row by the caller). */
static LLVMValueRef act_fwd(cg *g, dnic_act act, LLVMValueRef v)
{
    switch (act) {
    case DNIC_ACT_SIGMOID: /* 1 / (1 + exp(-v)), as the seeds */
        return LLVMBuildFDiv(g->B, cl(g, v, 1), fadd(g, cl(g, v, 1), act_exp(g, LLVMBuildFNeg(g->B, v, ""))), "");
    case DNIC_ACT_TANH:
        return act_tanh(g, v);
    case DNIC_ACT_RELU:
        return LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, v, cl(g, v, 0), ""), v, cl(g, v, 0), "");
    case DNIC_ACT_LINEAR:
    case DNIC_ACT_SOFTMAX:
    case DNIC_ACT_COUNT:
        break;
    }
    return v;
}

/* act'(z) written in terms of the activation's output y. */
static LLVMValueRef act_deriv(cg *g, dnic_act act, LLVMValueRef y)
{
    LLVMTypeRef T = g->T;
    switch (act) {
    case DNIC_ACT_SIGMOID: /* out * (1 - out), as the seeds' sigmoid_out2deriv */
        return fmul(g, y, fsub(g, cf(g, T, 1), y));
    case DNIC_ACT_TANH:
        return fsub(g, cf(g, T, 1), fmul(g, y, y));
    case DNIC_ACT_RELU:
        return LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, y, cf(g, T, 0), ""), cf(g, T, 1), cf(g, T, 0), "");
    default:
        return cf(g, T, 1);
    }
}

/* ---- a register-blocked matrix product --------------------------------------------------- */

/* C[M,N] = sum over k < K, in k order from zero, of A(m,k) * B(k,n), where
 * A(m,k) = a[m*sam + k*sak] (a == NULL: A = 1) and B(k,n) = b[k*sbk + n*sbn].  Each tile of
 * MR rows by NR vectors keeps its sums in registers across the k loop (MR x NR per ISA:
 * choose_tile, with_tile); columns beyond the last whole vector are done one at a time.  Every C element is still the same ordered sum of
 * separately rounded products (fmul then fadd, never a fused fma), so results are those of
 * the plain loops in docs/semantics.md, however the loops around the tiles are arranged.
 * `epi` stores each finished vector (lanes wide) of row m starting at column n.
 *
 * When B is larger than the L1 cache, the product runs a panel of W = NR vectors of columns at
 * a time: the panel is first copied (packed) into a contiguous [K, W] array on the stack, then
 * every tile of rows reads it from there.  B's rows can be thousands of elements apart, so
 * unpacked, a tile's k loop touches a new cache line per k, all mapping to the same few cache
 * sets, and every row tile streams all of B again from L3; packed, a panel is read
 * sequentially and stays in L2 while all of A's row tiles pass over it. */
typedef struct opctx opctx;
struct opctx {
    cg *g;
    const dnic_ir_op *o;
    LLVMValueRef dst, s[DNIC_MAX_SRC], scr, state[3];
    const dnic_buffer_desc *D, *S[DNIC_MAX_SRC], *SCR;
    LLVMValueRef c1, c2; /* adam: the bias corrections 1 - beta^t of this update, in T */
};

typedef void (*gemm_epi)(opctx *c, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int lanes);

typedef struct gemm {
    int M, N, K;
    LLVMValueRef a, b;
    long long sam, sak, sbk, sbn;
    gemm_epi epi;
    int mr, nrv; /* its register tile (with_tile) */
    bool ablocks; /* A packed in row blocks (pack_a_blocks): a is the packed copy, sam and sak unused */
} gemm;

enum { MR_MAX = 6, NRV_MAX = 4 }; /* the largest register tile (choose_tile) */
enum {
    PACK_MIN_ROWS = 4,          /* pack B for at least this many rows of A */
    PACK_MIN_BYTES = 32 << 10,  /* pack B when it is larger than this (an L1 data cache) */
    PACK_MAX_BYTES = 512 << 10, /* and a [K, W] panel fits in this much stack */
};
/* A packed product of at least this many flops splits its panels across the kernel threads
 * (dnic_parallel_for; about 30 us of work on one core, against a few us to hand it out). */
#define PARALLEL_MIN_FLOPS 2e6
/* Products of at least this many flops get the ISA's register tile (with_tile). */
#define TILE_MIN_FLOPS 1e6

static LLVMTypeRef vec_type(cg *g, int lanes)
{
    return lanes == 1 ? g->T : LLVMVectorType(g->T, (unsigned)lanes);
}

static unsigned t_align(cg *g)
{
    return (unsigned)LLVMABISizeOfType(LLVMGetModuleDataLayout(g->M), g->T);
}

/* llvm.masked.load or .store (`what`) of vectors vt, declared in the module. */
static LLVMValueRef masked_fn(cg *g, const char *what, LLVMTypeRef vt, LLVMTypeRef *fty)
{
    LLVMTypeRef over[2] = {vt, g->ptr};
    unsigned id = LLVMLookupIntrinsicID(what, strlen(what));
    *fty = LLVMIntrinsicGetType(g->C, id, over, 2);
    return LLVMGetIntrinsicDeclaration(g->M, id, over, 2);
}

static bool is_masked(cg *g, int lanes)
{
    return g->mask && lanes == g->mask_lanes;
}

/* Loads `lanes` contiguous elements at base[idx] (under g->mask: only its lanes, the others 0). */
static LLVMValueRef vload(cg *g, LLVMValueRef base, LLVMValueRef idx, int lanes)
{
    LLVMTypeRef vt = vec_type(g, lanes);
    if (is_masked(g, lanes)) {
        LLVMTypeRef fty;
        LLVMValueRef f = masked_fn(g, "llvm.masked.load", vt, &fty);
        LLVMValueRef args[4] = {at(g, g->T, base, idx), LLVMConstInt(g->i32, t_align(g), 0), g->mask, LLVMConstNull(vt)};
        return LLVMBuildCall2(g->B, fty, f, args, 4, "");
    }
    LLVMValueRef v = LLVMBuildLoad2(g->B, vt, at(g, g->T, base, idx), "");
    LLVMSetAlignment(v, t_align(g));
    return v;
}

static void vstore(cg *g, LLVMValueRef v, LLVMValueRef base, LLVMValueRef idx, int lanes)
{
    if (is_masked(g, lanes)) {
        LLVMTypeRef fty;
        LLVMValueRef f = masked_fn(g, "llvm.masked.store", vec_type(g, lanes), &fty);
        LLVMValueRef args[4] = {v, at(g, g->T, base, idx), LLVMConstInt(g->i32, t_align(g), 0), g->mask};
        LLVMBuildCall2(g->B, fty, f, args, 4, "");
        return;
    }
    LLVMValueRef s = LLVMBuildStore(g->B, v, at(g, g->T, base, idx));
    LLVMSetAlignment(s, t_align(g));
}

static LLVMValueRef splat(cg *g, LLVMValueRef x, int lanes)
{
    if (lanes == 1)
        return x;
    LLVMTypeRef vt = vec_type(g, lanes);
    LLVMValueRef v = LLVMBuildInsertElement(g->B, LLVMGetUndef(vt), x, LLVMConstInt(g->i32, 0, 0), "");
    return LLVMBuildShuffleVector(g->B, v, LLVMGetUndef(vt), LLVMConstNull(LLVMVectorType(g->i32, (unsigned)lanes)), "");
}

static LLVMValueRef gemm_a(cg *g, const gemm *p, LLVMValueRef m, LLVMValueRef k)
{
    if (!p->a)
        return cf(g, g->T, 1);
    LLVMValueRef idx = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, m, ci(g, p->sam), ""), LLVMBuildMul(g->B, k, ci(g, p->sak), ""), "");
    return ld(g, g->T, p->a, idx);
}

/* A packed per tile of rows (pack_a_blocks): the rows m0..m0+mr of a tile (m0 a multiple of
 * the tile's mr rows) as [K][mr] at m0 * K, the rows left over after the last whole tile
 * likewise, so that a tile reads its A as one stream, the mr elements of step k side by side.
 * The index of row m0 at step k; the tile's rows follow it. */
static LLVMValueRef ablock_row(cg *g, const gemm *p, LLVMValueRef m0, LLVMValueRef k)
{
    int full = p->M / p->mr * p->mr, w = p->mr;
    LLVMValueRef base = LLVMBuildMul(g->B, m0, ci(g, p->K), "");
    if (LLVMIsConstant(m0) && LLVMConstIntGetSExtValue(m0) >= full) /* the rows left over */
        w = p->M - full;
    return LLVMBuildAdd(g->B, base, LLVMBuildMul(g->B, k, ci(g, w), ""), "");
}

/* Where a tile reads B: vector v of row k is at bb[k*bsk + bn + v*lanes] (B itself, with
 * bsk = sbk and unit column stride, or a packed panel). */
typedef struct bsrc {
    LLVMValueRef bb, bn;
    long long bsk;
} bsrc;

enum { EPI_INLINE = 8 }; /* tiles of up to this many accumulators store them in place (gemm_tile) */

/* A buffer for one tile's accumulators, [MR_MAX][NRV_MAX] vectors, in the function's entry
 * block (one per function). */
static LLVMValueRef tile_buffer(cg *g)
{
    if (g->tilebuf_fn != g->fn) {
        g->tilebuf = entry_alloca(g, LLVMArrayType2(g->T, (unsigned long long)MR_MAX * NRV_MAX * g->lanes), "tile");
        LLVMSetAlignment(g->tilebuf, 64);
        g->tilebuf_fn = g->fn;
    }
    return g->tilebuf;
}

/* One tile: rows m0..m0+mr, columns n0.. as nv vectors of `lanes`.  The k loop is built by
 * hand so that the accumulators are phis of its header. */
static void gemm_tile(cg *g, opctx *c, const gemm *p, LLVMValueRef m0, LLVMValueRef n0, int mr, int nv, int lanes,
                      bsrc src)
{
    LLVMTypeRef vt = vec_type(g, lanes);
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
    LLVMBasicBlockRef head = LLVMAppendBasicBlockInContext(g->C, g->fn, "k");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->C, g->fn, "kbody");
    LLVMBasicBlockRef exit = LLVMAppendBasicBlockInContext(g->C, g->fn, "kdone");
    LLVMBuildBr(g->B, head);
    LLVMPositionBuilderAtEnd(g->B, head);
    LLVMValueRef k = LLVMBuildPhi(g->B, g->i64, "k"), zero_i = ci(g, 0), zero = LLVMConstNull(vt);
    LLVMAddIncoming(k, &zero_i, &pre, 1);
    LLVMValueRef acc[MR_MAX][NRV_MAX], next[MR_MAX][NRV_MAX];
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++) {
            acc[r][v] = LLVMBuildPhi(g->B, vt, "acc");
            LLVMAddIncoming(acc[r][v], &zero, &pre, 1);
        }
    LLVMBuildCondBr(g->B, LLVMBuildICmp(g->B, LLVMIntSLT, k, ci(g, p->K), ""), body, exit);
    LLVMPositionBuilderAtEnd(g->B, body);
    LLVMValueRef bv[NRV_MAX];
    LLVMValueRef brow = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, k, ci(g, src.bsk), ""), src.bn, "");
    for (int v = 0; v < nv; v++)
        bv[v] = vload(g, src.bb, LLVMBuildAdd(g->B, brow, ci(g, (long long)v * lanes), ""), lanes);
    LLVMValueRef arow = p->ablocks ? ablock_row(g, p, m0, k) : NULL;
    for (int r = 0; r < mr; r++) {
        LLVMValueRef a = arow ? ld(g, g->T, p->a, LLVMBuildAdd(g->B, arow, ci(g, r), ""))
                              : gemm_a(g, p, LLVMBuildAdd(g->B, m0, ci(g, r), ""), k);
        LLVMValueRef av = splat(g, a, lanes);
        for (int v = 0; v < nv; v++)
            next[r][v] = fadd(g, acc[r][v], fmul(g, av, bv[v]));
    }
    LLVMValueRef knext = LLVMBuildNSWAdd(g->B, k, ci(g, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->B);
    LLVMAddIncoming(k, &knext, &latch, 1);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            LLVMAddIncoming(acc[r][v], &next[r][v], &latch, 1);
    no_unroll(g, LLVMBuildBr(g->B, head));
    LLVMPositionBuilderAtEnd(g->B, exit);
    if (mr * nv <= EPI_INLINE) {
        for (int r = 0; r < mr; r++)
            for (int v = 0; v < nv; v++)
                p->epi(c, LLVMBuildAdd(g->B, m0, ci(g, r), ""), LLVMBuildAdd(g->B, n0, ci(g, (long long)v * lanes), ""),
                       acc[r][v], lanes);
        return;
    }
    /* a larger tile goes through a buffer, its epilogue in a loop over the rows: the code of
     * nv epilogues rather than mr * nv (an update rule's is long) */
    LLVMValueRef buf = tile_buffer(g);
    for (int r = 0; r < mr; r++)
        for (int v = 0; v < nv; v++)
            vstore(g, acc[r][v], buf, ci(g, (long long)(r * NRV_MAX + v) * lanes), lanes);
    loop lr;
    LLVMValueRef r = loop_begin(g, &lr, mr);
    for (int v = 0; v < nv; v++) {
        LLVMValueRef at_ = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, r, ci(g, (long long)NRV_MAX * lanes), ""),
                                        ci(g, (long long)v * lanes), "");
        p->epi(c, LLVMBuildAdd(g->B, m0, r, ""), LLVMBuildAdd(g->B, n0, ci(g, (long long)v * lanes), ""),
               vload(g, buf, at_, lanes), lanes);
    }
    loop_end(g, &lr);
}

/* All rows for columns n0.. as nv vectors of `lanes`: whole tiles of MR rows, then the rest. */
static void gemm_column(cg *g, opctx *c, const gemm *p, LLVMValueRef n0, int nv, int lanes, bsrc src)
{
    int MR = p->mr, full = p->M / MR, rest = p->M % MR;
    if (full > 0) {
        loop lm;
        LLVMValueRef t = loop_begin(g, &lm, full);
        gemm_tile(g, c, p, LLVMBuildMul(g->B, t, ci(g, MR), ""), n0, MR, nv, lanes, src);
        loop_end(g, &lm);
    }
    if (rest > 0)
        gemm_tile(g, c, p, ci(g, (long long)full * MR), n0, rest, nv, lanes, src);
}

static void transpose_ld(cg *g, LLVMValueRef from, long long fs, int rows, int cols, LLVMValueRef to, long long ts);

/* The last n < g->lanes columns of a product go in one vector tile under a mask (vload,
 * vstore): a 256-bit vector when n fits in one, else a full one.  Its lanes are computed as
 * the whole vectors' are, in the same k order, so the sums are the same bits as one column
 * at a time; the masked lanes read nothing and store nothing.  AVX-512 masks the loads and
 * stores, AVX uses vmaskmov, and other targets a load or store per lane (the mask is a
 * constant).  Sets g->mask (none when n fills the vector); the caller clears it after the
 * tile.  Returns the vector's lanes. */
static int begin_mask(cg *g, int n)
{
    int w = n <= g->lanes256 ? g->lanes256 : g->lanes;
    DNIC_ASSERT(n > 0 && n <= w && w <= 16);
    g->mask = NULL; /* a whole vector needs none */
    if (n == w)
        return w;
    LLVMValueRef bits[16];
    for (int i = 0; i < w; i++)
        bits[i] = LLVMConstInt(g->i1, i < n, 0);
    g->mask = LLVMConstVector(bits, (unsigned)w);
    g->mask_lanes = w;
    return w;
}

/* Copies columns n0..n0+w of B into panel[k*W + j] (W = the panel's width). */
static void pack_panel(cg *g, const gemm *p, LLVMValueRef panel, LLVMValueRef n0, int w, int W)
{
    loop lk, lj;
    if (p->sbn == 1 && w % g->lanes == 0) { /* whole vectors along B's rows */
        LLVMValueRef k = loop_begin(g, &lk, p->K);
        LLVMValueRef from = LLVMBuildAdd(g->B, LLVMBuildMul(g->B, k, ci(g, p->sbk), ""), n0, "");
        for (int v = 0; v < w; v += g->lanes)
            vstore(g, vload(g, p->b, LLVMBuildAdd(g->B, from, ci(g, v), ""), g->lanes), panel,
                   ix(g, k, W, ci(g, v)), g->lanes);
        loop_end(g, &lk);
        return;
    }
    if (p->sbk == 1) { /* B's columns are contiguous (a transposed view): squares transposed in registers */
        transpose_ld(g, at(g, g->T, p->b, LLVMBuildMul(g->B, n0, ci(g, p->sbn), "")), p->sbn, w, p->K, panel, W);
        return;
    }
    /* one column at a time, down the column */
    g->novec = true;
    LLVMValueRef j = loop_begin(g, &lj, w);
    LLVMValueRef col = LLVMBuildMul(g->B, LLVMBuildAdd(g->B, n0, j, ""), ci(g, p->sbn), "");
    LLVMValueRef k = loop_begin(g, &lk, p->K);
    LLVMValueRef v = ld(g, g->T, p->b, LLVMBuildAdd(g->B, LLVMBuildMul(g->B, k, ci(g, p->sbk), ""), col, ""));
    st(g, g->T, v, panel, ix(g, k, W, j));
    loop_end(g, &lk);
    loop_end(g, &lj);
    g->novec = false;
}

/* p with its register tile: the ISA's (choose_tile) for products of at least TILE_MIN_FLOPS,
 * 4 rows by 2 vectors below, where speed matters less than the code of a tile's 24
 * accumulators (and its rows left over) would cost to compile. */
static gemm with_tile(cg *g, const gemm *p)
{
    gemm q = *p;
    bool big = 2.0 * p->M * p->N * p->K >= TILE_MIN_FLOPS;
    q.mr = big ? g->mr : 4;
    q.nrv = big ? g->nrv : 2;
    return q;
}

static long long tsize(cg *g)
{
    return (long long)LLVMABISizeOfType(LLVMGetModuleDataLayout(g->M), g->T);
}

static bool gemm_packs(cg *g, const gemm *p)
{
    long long W = (long long)with_tile(g, p).nrv * g->lanes;
    return p->b && p->M >= PACK_MIN_ROWS && (long long)p->K * p->N * tsize(g) > PACK_MIN_BYTES &&
           (long long)p->K * W * tsize(g) <= PACK_MAX_BYTES;
}

/* A [K, W] array in the op function's entry block (the inliner adds lifetime markers, so the
 * panels of different ops can share stack). */
static LLVMValueRef panel_alloca(cg *g, long long n)
{
    LLVMValueRef a = entry_alloca(g, LLVMArrayType2(g->T, (unsigned long long)n), "panel");
    LLVMSetAlignment(a, 64);
    return a;
}

/* Panels lo..hi of a packed product, each packed and then swept by every row tile. */
static void gemm_panels(cg *g, opctx *c, const gemm *p, LLVMValueRef lo, LLVMValueRef hi)
{
    int W = g->lanes * p->nrv;
    LLVMValueRef panel = panel_alloca(g, (long long)p->K * W);
    loop ln;
    LLVMValueRef n0 = LLVMBuildMul(g->B, loop_over(g, &ln, lo, hi), ci(g, W), "");
    pack_panel(g, p, panel, n0, W, W);
    gemm_column(g, c, p, n0, p->nrv, g->lanes, (bsrc){panel, ci(g, 0), W});
    loop_end(g, &ln);
}

enum { CTX_PTRS = 10 }; /* dst, s[3], state[3], a, b, and the float [2] of c1, c2 */

/* The panels of a large product as a function of its own, `void f(ptr ctx, i64 lo, i64 hi)`,
 * handed to dnic_parallel_for: ctx holds the op's pointers and Adam's corrections. */
static void gemm_parallel(cg *g, opctx *c, const gemm *p, int panels)
{
    LLVMValueRef vals[CTX_PTRS] = {c->dst, c->s[0], c->s[1], c->s[2], c->state[0], c->state[1], c->state[2], p->a, p->b};
    LLVMTypeRef pa = LLVMArrayType2(g->ptr, CTX_PTRS), ta = LLVMArrayType2(g->T, 2);
    LLVMValueRef ctx = entry_alloca(g, pa, "ctx"), cs = entry_alloca(g, ta, "corr");
    st(g, g->T, c->c1 ? c->c1 : cf(g, g->T, 1), cs, ci(g, 0));
    st(g, g->T, c->c2 ? c->c2 : cf(g, g->T, 1), cs, ci(g, 1));
    vals[9] = cs;
    for (int i = 0; i < CTX_PTRS; i++)
        st(g, g->ptr, vals[i] ? vals[i] : LLVMConstPointerNull(g->ptr), ctx, ci(g, i));

    LLVMTypeRef params[3] = {g->ptr, g->i64, g->i64};
    LLVMTypeRef fty = LLVMFunctionType(g->vd, params, 3, 0);
    LLVMValueRef fn = LLVMAddFunction(g->M, dnic_sprintf(g->a, "%s_panels", LLVMGetValueName(g->fn)), fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_target_attrs(g, fn);
    LLVMValueRef saved_fn = g->fn;
    LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(g->B);
    g->fn = fn;
    LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(g->C, fn, "entry"));
    LLVMValueRef in = LLVMGetParam(fn, 0), v[CTX_PTRS];
    for (int i = 0; i < CTX_PTRS; i++)
        v[i] = vals[i] || i == 9 ? ld(g, g->ptr, in, ci(g, i)) : NULL;
    opctx oc = *c;
    oc.dst = v[0];
    for (int i = 0; i < 3; i++) {
        oc.s[i] = v[1 + i];
        oc.state[i] = v[4 + i];
    }
    if (c->c1) {
        oc.c1 = ld(g, g->T, v[9], ci(g, 0));
        oc.c2 = ld(g, g->T, v[9], ci(g, 1));
    }
    gemm q = *p;
    q.a = v[7];
    q.b = v[8];
    gemm_panels(g, &oc, &q, LLVMGetParam(fn, 1), LLVMGetParam(fn, 2));
    LLVMBuildRetVoid(g->B);
    g->fn = saved_fn;
    LLVMPositionBuilderAtEnd(g->B, saved_bb);

    LLVMTypeRef pargs[3] = {g->ptr, g->ptr, g->i64};
    LLVMTypeRef pty = LLVMFunctionType(g->vd, pargs, 3, 0);
    LLVMValueRef pf = LLVMGetNamedFunction(g->M, "dnic_parallel_for");
    if (!pf)
        pf = LLVMAddFunction(g->M, "dnic_parallel_for", pty);
    LLVMValueRef args[3] = {fn, ctx, ci(g, panels)};
    LLVMBuildCall2(g->B, pty, pf, args, 3, "");
}

static void gen_gemm_packed(cg *g, opctx *c, const gemm *p)
{
    int lanes = g->lanes, W = lanes * p->nrv;
    int full = p->N / W, rest = p->N % W;
    if (full >= 2 && 2.0 * p->M * p->N * p->K >= PARALLEL_MIN_FLOPS)
        gemm_parallel(g, c, p, full);
    else if (full > 0)
        gemm_panels(g, c, p, ci(g, 0), ci(g, full));
    if (rest == 0)
        return;
    LLVMValueRef panel = panel_alloca(g, (long long)p->K * W);
    int n = full * W;
    pack_panel(g, p, panel, ci(g, n), rest, W);
    int j = 0;
    if (rest >= lanes) { /* the whole vectors left, in one tile */
        gemm_column(g, c, p, ci(g, n), rest / lanes, lanes, (bsrc){panel, ci(g, 0), W});
        j = rest / lanes * lanes;
    }
    if (j < rest) { /* the columns left, as one vector of which only they are loaded and stored */
        int w = begin_mask(g, rest - j);
        gemm_column(g, c, p, ci(g, n + j), 1, w, (bsrc){panel, ci(g, j), W});
        g->mask = NULL;
    }
}

/* Unpacked (B fits in L1): for each tile of rows, all columns, in whole tiles, then the whole
 * vectors left in one tile, a half vector, then single columns. */
static void gemm_rows(cg *g, opctx *c, const gemm *p, LLVMValueRef m0, int mr)
{
    int lanes = g->lanes, step = lanes * p->nrv;
    int full = p->N / step, rest = p->N % step;
    bsrc src = {p->b, NULL, p->sbk};
    if (full > 0) {
        loop ln;
        src.bn = LLVMBuildMul(g->B, loop_begin(g, &ln, full), ci(g, step), "");
        gemm_tile(g, c, p, m0, src.bn, mr, p->nrv, lanes, src);
        loop_end(g, &ln);
    }
    int n = full * step;
    if (rest >= lanes) { /* the whole vectors left, in one tile */
        src.bn = ci(g, n);
        gemm_tile(g, c, p, m0, src.bn, mr, rest / lanes, lanes, src);
        n += rest / lanes * lanes;
        rest %= lanes;
    }
    if (rest > 0) { /* the columns left, as one vector of which only they are loaded and stored */
        src.bn = ci(g, n);
        int w = begin_mask(g, rest);
        gemm_tile(g, c, p, m0, src.bn, mr, 1, w, src);
        g->mask = NULL;
    }
}

static void gen_gemm(cg *g, opctx *c, const gemm *p0)
{
    gemm q = with_tile(g, p0), *p = &q;
    if (gemm_packs(g, p)) {
        gen_gemm_packed(g, c, p);
        return;
    }
    DNIC_ASSERT(p->sbn == 1);
    int MR = p->mr, full = p->M / MR, rest = p->M % MR;
    if (full > 0) {
        loop lm;
        LLVMValueRef t = loop_begin(g, &lm, full);
        gemm_rows(g, c, p, LLVMBuildMul(g->B, t, ci(g, MR), ""), MR);
        loop_end(g, &lm);
    }
    if (rest > 0)
        gemm_rows(g, c, p, ci(g, (long long)full * MR), rest);
}

/* ---- ops -------------------------------------------------------------------------------- */


/* dst[B,N] = act(x[B,K] . W[K,N] + b): the products summed from zero in k order, then the
 * bias added (x.dot(W) + bias, as the seeds), then the activation. */

/* relu is applied in the product's epilogue, as each element's sum is stored (a comparison and
 * a select: the same at any vector width, and short code); the activations with an exp run as
 * a pass afterwards (gen_act_pass). */
static bool act_in_epilogue(dnic_act act)
{
    return act == DNIC_ACT_RELU;
}

static void dense_epi(opctx *c, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int lanes)
{
    cg *g = c->g;
    if (c->s[2])
        v = fadd(g, v, vload(g, c->s[2], n, lanes));
    if (act_in_epilogue(c->o->act))
        v = act_fwd(g, c->o->act, v);
    vstore(g, v, c->dst, ix(g, m, c->D->cols, n), lanes);
}

/* dst = act(dst) over the whole buffer, a vector at a time: one call site per op keeps the
 * code small (the activation is not repeated in every tile's epilogue).  With 512-bit vectors,
 * a 256-bit one follows if 8 float32s are left, so that the same elements get the vector exp
 * (act_exp) at either width and float32 results do not depend on the CPU. */
static void gen_act_pass(opctx *c)
{
    cg *g = c->g;
    long long n = (long long)c->D->rows * c->D->cols;
    int lanes = g->lanes, half = g->lanes / 2;
    if (n / lanes > 0) {
        loop l;
        LLVMValueRef i = LLVMBuildMul(g->B, loop_begin(g, &l, n / lanes), ci(g, lanes), "");
        vstore(g, act_fwd(g, c->o->act, vload(g, c->dst, i, lanes)), c->dst, i, lanes);
        loop_end(g, &l);
    }
    long long done = n / lanes * lanes;
    if (lanes == g->lanes256 * 2 && n - done >= half) {
        vstore(g, act_fwd(g, c->o->act, vload(g, c->dst, ci(g, done), half)), c->dst, ci(g, done), half);
        done += half;
    }
    for (long long i = done; i < n; i++)
        st(g, g->T, act_fwd(g, c->o->act, ld(g, g->T, c->dst, ci(g, i))), c->dst, ci(g, i));
}

static void gen_dense(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, N = c->D->cols, K = c->S[1]->rows;
    gemm p = {Bn, N, K, c->s[0], c->s[1], K, 1, N, 1, dense_epi, 0, 0, false};
    gen_gemm(g, c, &p);
    if (c->o->act != DNIC_ACT_SOFTMAX) {
        if (c->o->act != DNIC_ACT_LINEAR && !act_in_epilogue(c->o->act))
            gen_act_pass(c);
        return;
    }
    /* softmax per row: subtract the row's max, exponentiate, normalise */
    loop li, ln, le, lnorm;
    LLVMValueRef i = loop_begin(g, &li, Bn);
    LLVMValueRef mx = var(g, T, cf(g, T, -__builtin_inf()));
    LLVMValueRef n = loop_begin(g, &ln, N);
    LLVMValueRef v = ld(g, T, c->dst, ix(g, i, N, n)), mv = get(g, T, mx);
    set(g, LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, v, mv, ""), v, mv, ""), mx);
    loop_end(g, &ln);
    LLVMValueRef sum = var(g, T, cf(g, T, 0));
    n = loop_begin(g, &le, N);
    LLVMValueRef di = ix(g, i, N, n);
    LLVMValueRef e = math1(g, "exp", T, fsub(g, ld(g, T, c->dst, di), get(g, T, mx)));
    st(g, T, e, c->dst, di);
    set(g, fadd(g, get(g, T, sum), e), sum);
    loop_end(g, &le);
    n = loop_begin(g, &lnorm, N);
    di = ix(g, i, N, n);
    st(g, T, LLVMBuildFDiv(g->B, ld(g, T, c->dst, di), get(g, T, sum), ""), c->dst, di);
    loop_end(g, &lnorm);
    loop_end(g, &li);
}

static void gen_concat(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, W = c->D->cols, off = 0;
    for (int p = 0; p < DNIC_MAX_SRC; p++) {
        if (!c->s[p])
            continue;
        int w = c->S[p]->cols;
        loop li, lj;
        LLVMValueRef i = loop_begin(g, &li, Bn);
        LLVMValueRef j = loop_begin(g, &lj, w);
        LLVMValueRef v = ld(g, T, c->s[p], ix(g, i, w, j));
        st(g, T, v, c->dst, ix(g, i, W, LLVMBuildAdd(g->B, j, ci(g, off), "")));
        loop_end(g, &lj);
        loop_end(g, &li);
        off += w;
    }
}

/* Elementwise over all rows*cols: dst = f(s0[e], s1[e]) for SUB, ACT_GRAD and ADD (whose
 * activation then runs over dst as DENSE's does). */
static void gen_same2(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    loop l;
    LLVMValueRef e = loop_begin(g, &l, (long long)c->D->rows * c->D->cols);
    LLVMValueRef a = ld(g, T, c->s[0], e), b = ld(g, T, c->s[1], e), v;
    if (c->o->op == DNIC_OP_SUB)
        v = fsub(g, a, b);
    else if (c->o->op == DNIC_OP_MUL)
        v = fmul(g, a, b);
    else if (c->o->op == DNIC_OP_ADD)
        v = fadd(g, a, b);
    else if (c->o->op == DNIC_OP_MIX) /* a * lambda + b * (1 - lambda), the constants in the dtype */
        v = fadd(g, fmul(g, a, cf(g, T, c->o->scale)), fmul(g, b, cf(g, T, 1 - c->o->scale)));
    else /* ACT_GRAD: g * act'(y) */
        v = fmul(g, a, act_deriv(g, c->o->act, b));
    st(g, T, v, c->dst, e);
    loop_end(g, &l);
    if (c->o->op == DNIC_OP_ADD && c->o->act != DNIC_ACT_LINEAR) {
        DNIC_ASSERT(c->o->act != DNIC_ACT_SOFTMAX);
        gen_act_pass(c);
    }
}

/* dst = min(max(s0 * scale, -clip), clip), the constants rounded to T; a NaN stays a NaN (both
 * comparisons are false), so that a diverging SG module is still noticed. */
static void gen_same1(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    loop l;
    LLVMValueRef e = loop_begin(g, &l, (long long)c->D->rows * c->D->cols);
    LLVMValueRef v = ld(g, T, c->s[0], e);
    if (c->o->scale != 1)
        v = fmul(g, v, cf(g, T, c->o->scale));
    if (c->o->clip > 0) {
        LLVMValueRef hi = cf(g, T, c->o->clip), lo = cf(g, T, -c->o->clip);
        v = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, v, hi, ""), hi, v, "");
        v = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOLT, v, lo, ""), lo, v, "");
    }
    st(g, T, v, c->dst, e);
    loop_end(g, &l);
}

/* dst[B,w] = act(s0[B, off .. off+w)): the copy, then gen_act_pass as DENSE's */
static void gen_slice(opctx *c)
{
    cg *g = c->g;
    int w = c->D->cols, W = c->S[0]->cols;
    loop li, lj;
    LLVMValueRef i = loop_begin(g, &li, c->D->rows);
    LLVMValueRef j = loop_begin(g, &lj, w);
    st(g, g->T, ld(g, g->T, c->s[0], ix(g, i, W, LLVMBuildAdd(g->B, j, ci(g, c->o->off), ""))), c->dst, ix(g, i, w, j));
    loop_end(g, &lj);
    loop_end(g, &li);
    if (c->o->act != DNIC_ACT_LINEAR) {
        DNIC_ASSERT(c->o->act != DNIC_ACT_SOFTMAX);
        gen_act_pass(c);
    }
}

/* dst[off .. off+R, :] = s0[R, :]: the other rows are left as they are */
static void gen_stack(opctx *c)
{
    cg *g = c->g;
    loop l;
    LLVMValueRef e = loop_begin(g, &l, (long long)c->S[0]->rows * c->S[0]->cols);
    st(g, g->T, ld(g, g->T, c->s[0], e), c->dst, LLVMBuildAdd(g->B, e, ci(g, (long long)c->o->off * c->D->cols), ""));
    loop_end(g, &l);
}

/* dst[B, off .. off+w) = s0[B,w]: the other columns are left as they are */
static void gen_place(opctx *c)
{
    cg *g = c->g;
    int w = c->S[0]->cols, W = c->D->cols;
    loop li, lj;
    LLVMValueRef i = loop_begin(g, &li, c->D->rows);
    LLVMValueRef j = loop_begin(g, &lj, w);
    st(g, g->T, ld(g, g->T, c->s[0], ix(g, i, w, j)), c->dst, ix(g, i, W, LLVMBuildAdd(g->B, j, ci(g, c->o->off), "")));
    loop_end(g, &lj);
    loop_end(g, &li);
}

/* A per-column array of N elements on the stack. */
static LLVMValueRef column_alloca(cg *g, int n)
{
    LLVMValueRef a = entry_alloca(g, LLVMArrayType2(g->T, (unsigned long long)n), "col");
    LLVMSetAlignment(a, 64);
    return a;
}

/* out[j] = 1 / sqrt(var[j] + eps) for the N columns. */
static void inv_std(opctx *c, LLVMValueRef var_, LLVMValueRef out, int N)
{
    cg *g = c->g;
    loop l;
    LLVMValueRef j = loop_begin(g, &l, N);
    LLVMValueRef v = fadd(g, ld(g, g->T, var_, j), cf(g, g->T, c->o->eps));
    st(g, g->T, LLVMBuildFDiv(g->B, cf(g, g->T, 1), math1(g, "sqrt", g->T, v), ""), out, j);
    loop_end(g, &l);
}

/* BN_MEAN: dst[j] = (sum over rows in order of s0[b,j]) / B;
 * BN_VAR:  dst[j] = (sum over rows in order of (s0[b,j] - s1[j])^2) / B. */
static void gen_col_stat(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->S[0]->rows, N = c->D->cols;
    loop lz, lb, lj, ld_;
    LLVMValueRef j = loop_begin(g, &lz, N);
    st(g, T, cf(g, T, 0), c->dst, j);
    loop_end(g, &lz);
    LLVMValueRef b = loop_begin(g, &lb, Bn);
    j = loop_begin(g, &lj, N);
    LLVMValueRef x = ld(g, T, c->s[0], ix(g, b, N, j));
    if (c->o->op == DNIC_OP_BN_VAR) {
        LLVMValueRef d = fsub(g, x, ld(g, T, c->s[1], j));
        x = fmul(g, d, d);
    }
    st(g, T, fadd(g, ld(g, T, c->dst, j), x), c->dst, j);
    loop_end(g, &lj);
    loop_end(g, &lb);
    j = loop_begin(g, &ld_, N);
    st(g, T, LLVMBuildFDiv(g->B, ld(g, T, c->dst, j), cf(g, T, Bn), ""), c->dst, j);
    loop_end(g, &ld_);
}

/* BN_NORM: dst[b,j] = (s0[b,j] - s1[j]) * istd[j], istd = 1 / sqrt(s2 + eps);
 * AFFINE:  dst[b,j] = act(s0[b,j] * s1[j] + s2[j]). */
static void gen_rowwise(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, N = c->D->cols;
    bool norm = c->o->op == DNIC_OP_BN_NORM;
    LLVMValueRef is = NULL;
    if (norm) {
        is = column_alloca(g, N);
        inv_std(c, c->s[2], is, N);
    }
    loop lb, lj;
    LLVMValueRef b = loop_begin(g, &lb, Bn);
    LLVMValueRef j = loop_begin(g, &lj, N), e = ix(g, b, N, j);
    LLVMValueRef x = ld(g, T, c->s[0], e), v;
    if (norm)
        v = fmul(g, fsub(g, x, ld(g, T, c->s[1], j)), ld(g, T, is, j));
    else
        v = fadd(g, fmul(g, x, ld(g, T, c->s[1], j)), ld(g, T, c->s[2], j));
    st(g, T, v, c->dst, e);
    loop_end(g, &lj);
    loop_end(g, &lb);
    if (!norm && c->o->act != DNIC_ACT_LINEAR) {
        DNIC_ASSERT(c->o->act != DNIC_ACT_SOFTMAX);
        gen_act_pass(c);
    }
}

/* dst[j] = (1 - momentum) * dst[j] + momentum * (scale * s0[j]), the constants rounded to T. */
static void gen_running(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    loop l;
    LLVMValueRef j = loop_begin(g, &l, c->D->cols);
    LLVMValueRef keep = fmul(g, cf(g, T, 1 - c->o->momentum), ld(g, T, c->dst, j));
    LLVMValueRef add = fmul(g, cf(g, T, c->o->momentum), fmul(g, cf(g, T, c->o->scale), ld(g, T, c->s[0], j)));
    st(g, T, fadd(g, keep, add), c->dst, j);
    loop_end(g, &l);
}

/* dst[0,j] = sum over rows in order of s0[b,j] * s1[b,j]; dst[1,j] = of s0[b,j]. */
static void gen_dparams(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->S[0]->rows, N = c->D->cols;
    loop lz, lb, lj;
    LLVMValueRef j = loop_begin(g, &lz, 2 * N);
    st(g, T, cf(g, T, 0), c->dst, j);
    loop_end(g, &lz);
    LLVMValueRef b = loop_begin(g, &lb, Bn);
    j = loop_begin(g, &lj, N);
    LLVMValueRef e = ix(g, b, N, j), gv = ld(g, T, c->s[0], e), jn = LLVMBuildAdd(g->B, j, ci(g, N), "");
    st(g, T, fadd(g, ld(g, T, c->dst, j), fmul(g, gv, ld(g, T, c->s[1], e))), c->dst, j);
    st(g, T, fadd(g, ld(g, T, c->dst, jn), gv), c->dst, jn);
    loop_end(g, &lj);
    loop_end(g, &lb);
}

/* dst[b,j] = ((B * g - dbeta[j]) - xhat * dgamma[j]) * k[j], k = gamma * istd / B. */
static void gen_bn_grad(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, N = c->D->cols;
    LLVMValueRef k = column_alloca(g, N);
    inv_std(c, c->s[2], k, N);
    loop lk, lb, lj;
    LLVMValueRef j = loop_begin(g, &lk, N);
    st(g, T, LLVMBuildFDiv(g->B, fmul(g, ld(g, T, c->s[3], j), ld(g, T, k, j)), cf(g, T, Bn), ""), k, j);
    loop_end(g, &lk);
    LLVMValueRef b = loop_begin(g, &lb, Bn);
    j = loop_begin(g, &lj, N);
    LLVMValueRef e = ix(g, b, N, j);
    LLVMValueRef t = fsub(g, fmul(g, cf(g, T, Bn), ld(g, T, c->s[0], e)), ld(g, T, c->s[4], LLVMBuildAdd(g->B, j, ci(g, N), "")));
    t = fsub(g, t, fmul(g, ld(g, T, c->s[1], e), ld(g, T, c->s[4], j)));
    st(g, T, fmul(g, t, ld(g, T, k, j)), c->dst, e);
    loop_end(g, &lj);
    loop_end(g, &lb);
}

/* to[c * ts + r] = from[r * fs + c] over rows r_lo..r_hi and columns c_lo..c_hi, an element
 * at a time. */
static void transpose_scalar(cg *g, LLVMValueRef from, long long fs, LLVMValueRef to, long long ts, int r_lo,
                             int r_hi, int c_lo, int c_hi)
{
    if (r_lo >= r_hi || c_lo >= c_hi)
        return;
    loop lr, lc;
    LLVMValueRef r = LLVMBuildAdd(g->B, ci(g, r_lo), loop_begin(g, &lr, r_hi - r_lo), "");
    LLVMValueRef c = LLVMBuildAdd(g->B, ci(g, c_lo), loop_begin(g, &lc, c_hi - c_lo), "");
    st(g, g->T, ld(g, g->T, from, ix(g, r, fs, c)), to, ix(g, c, ts, r));
    loop_end(g, &lc);
    loop_end(g, &lr);
}

/* shuffle(a, b) by the mask idx[0..n) (indices into a's lanes, then b's). */
static LLVMValueRef shuf(cg *g, LLVMValueRef a, LLVMValueRef b, const int *idx, int n)
{
    LLVMValueRef m[8];
    for (int i = 0; i < n; i++)
        m[i] = LLVMConstInt(g->i32, (unsigned)idx[i], 0);
    return LLVMBuildShuffleVector(g->B, a, b, LLVMConstVector(m, (unsigned)n), "");
}

/* out[j] = column j of the L x L square whose rows are v[0..L), L = a 256-bit vector of T.
 * Shuffles within 128-bit halves first, then across them, as the x86 shuffle units like:
 * 8 x 8 float32 in 24 shuffles (pairs interleaved, then quads, then halves), 4 x 4 float64 in
 * 8 (pairs, then halves), where moving each element on its own took an insert per element. */
static void transpose_regs(cg *g, const LLVMValueRef *v, int L, LLVMValueRef *out)
{
    LLVMValueRef t[8], u[8];
    if (L == 8) {
        static const int lo[8] = {0, 8, 1, 9, 4, 12, 5, 13}, hi[8] = {2, 10, 3, 11, 6, 14, 7, 15};
        static const int q0[8] = {0, 1, 8, 9, 4, 5, 12, 13}, q1[8] = {2, 3, 10, 11, 6, 7, 14, 15};
        static const int h0[8] = {0, 1, 2, 3, 8, 9, 10, 11}, h1[8] = {4, 5, 6, 7, 12, 13, 14, 15};
        for (int i = 0; i < 8; i += 2) { /* t[i], t[i+1]: rows i and i+1 interleaved, low and high pairs */
            t[i] = shuf(g, v[i], v[i + 1], lo, 8);
            t[i + 1] = shuf(g, v[i], v[i + 1], hi, 8);
        }
        for (int i = 0; i < 8; i += 4) /* u[i+c]: columns c and c+4 of rows i..i+3 */
            for (int c = 0; c < 2; c++) {
                u[i + 2 * c] = shuf(g, t[i + c], t[i + 2 + c], q0, 8);
                u[i + 2 * c + 1] = shuf(g, t[i + c], t[i + 2 + c], q1, 8);
            }
        for (int c = 0; c < 4; c++) {
            out[c] = shuf(g, u[c], u[4 + c], h0, 8);
            out[c + 4] = shuf(g, u[c], u[4 + c], h1, 8);
        }
        return;
    }
    DNIC_ASSERT(L == 4);
    static const int lo[4] = {0, 4, 2, 6}, hi[4] = {1, 5, 3, 7}, h0[4] = {0, 1, 4, 5}, h1[4] = {2, 3, 6, 7};
    for (int i = 0; i < 4; i += 2) {
        t[i] = shuf(g, v[i], v[i + 1], lo, 4);
        t[i + 1] = shuf(g, v[i], v[i + 1], hi, 4);
    }
    for (int c = 0; c < 2; c++) {
        out[c] = shuf(g, t[c], t[2 + c], h0, 4);
        out[c + 2] = shuf(g, t[c], t[2 + c], h1, 4);
    }
}

/* to[c * ts + r] = from[r * fs + c] for r < rows, c < cols (a transposed copy between arrays
 * whose rows are fs and ts elements apart): squares of L x L elements (L: a 256-bit vector) are
 * loaded as L vectors, transposed in registers and stored as L vectors; the edges an element
 * at a time. */
static void transpose_ld(cg *g, LLVMValueRef from, long long fs, int rows, int cols, LLVMValueRef to, long long ts)
{
    int L = g->lanes256, R = rows / L * L, C = cols / L * L;
    bool novec = g->novec;
    g->novec = true;
    if (R > 0 && C > 0) {
        loop lr, lc;
        LLVMValueRef r0 = LLVMBuildMul(g->B, loop_begin(g, &lr, R / L), ci(g, L), "");
        LLVMValueRef c0 = LLVMBuildMul(g->B, loop_begin(g, &lc, C / L), ci(g, L), "");
        LLVMValueRef v[8], out[8];
        for (int i = 0; i < L; i++)
            v[i] = vload(g, from, ix(g, LLVMBuildAdd(g->B, r0, ci(g, i), ""), fs, c0), L);
        transpose_regs(g, v, L, out);
        for (int j = 0; j < L; j++)
            vstore(g, out[j], to, ix(g, LLVMBuildAdd(g->B, c0, ci(g, j), ""), ts, r0), L);
        loop_end(g, &lc);
        loop_end(g, &lr);
    }
    transpose_scalar(g, from, fs, to, ts, 0, R, C, cols);
    transpose_scalar(g, from, fs, to, ts, R, rows, 0, cols);
    g->novec = novec;
}

/* to[cols, rows] = from[rows, cols]^T. */
static void transpose(cg *g, LLVMValueRef from, int rows, int cols, LLVMValueRef to)
{
    transpose_ld(g, from, cols, rows, cols, to, rows);
}

/* dst[B,K] = d[B,N] . W[K,N]^T; each sum runs over n in order from zero.  When the product
 * packs B it packs straight from W's rows (8 x 8 squares transposed in registers); otherwise W^T is first copied to the scratch buffer
 * so that both operands are read along rows (unless an earlier message of the same W made that
 * copy: scratch_ready). */
static void store_epi(opctx *c, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int lanes)
{
    vstore(c->g, v, c->dst, ix(c->g, m, c->D->cols, n), lanes);
}

static void gen_matmul_nt(opctx *c)
{
    cg *g = c->g;
    int Bn = c->D->rows, K = c->D->cols, N = c->S[0]->cols;
    gemm p = {Bn, K, N, c->s[0], c->s[1], N, 1, 1, N, store_epi, 0, 0, false}; /* B(n, k) = W[k, n] */
    if (gemm_packs(g, &p)) {
        gen_gemm(g, c, &p);
        return;
    }
    LLVMValueRef wt = c->scr; /* the scratch buffer, [N,K] */
    if (!c->o->scratch_ready)
        transpose(g, c->s[1], K, N, wt);
    gemm q = {Bn, K, N, c->s[0], wt, N, 1, K, 1, store_epi, 0, 0, false};
    gen_gemm(g, c, &q);
}

/* Applies the update rule to parameter elements idx.. with gradient g (lanes wide), first
 * divided by B with train.grad = mean (grad_div; the bias's epilogue has divided it already):
 * sgd: p -= g * lr (the seeds); momentum: v = momentum * v + g, p -= lr * v;
 * adam: m = b1 m + (1 - b1) g, v = b2 v + (1 - b2) g^2, p -= lr (m / c1) / (sqrt(v / c2) + eps). */
static void apply_update(opctx *c, LLVMValueRef idx, LLVMValueRef g, int lanes)
{
    cg *gg = c->g;
    const dnic_opt_spec *opt = &c->o->opt;
    LLVMValueRef p = vload(gg, c->dst, idx, lanes), step;
    if (c->o->grad_div > 0)
        g = LLVMBuildFDiv(gg->B, g, cl(gg, g, c->o->grad_div), "");
    if (opt->kind == DNIC_OPT_SGD) {
        step = fmul(gg, g, cl(gg, g, c->o->lr));
    } else if (opt->kind == DNIC_OPT_MOMENTUM) {
        LLVMValueRef v = fadd(gg, fmul(gg, cl(gg, g, opt->momentum), vload(gg, c->state[0], idx, lanes)), g);
        vstore(gg, v, c->state[0], idx, lanes);
        step = fmul(gg, cl(gg, g, c->o->lr), v);
    } else {
        LLVMValueRef m = fadd(gg, fmul(gg, cl(gg, g, opt->beta1), vload(gg, c->state[0], idx, lanes)),
                              fmul(gg, cl(gg, g, 1 - opt->beta1), g));
        LLVMValueRef v = fadd(gg, fmul(gg, cl(gg, g, opt->beta2), vload(gg, c->state[1], idx, lanes)),
                              fmul(gg, cl(gg, g, 1 - opt->beta2), fmul(gg, g, g)));
        vstore(gg, m, c->state[0], idx, lanes);
        vstore(gg, v, c->state[1], idx, lanes);
        LLVMValueRef mhat = LLVMBuildFDiv(gg->B, m, splat(gg, c->c1, lanes), "");
        LLVMValueRef vhat = LLVMBuildFDiv(gg->B, v, splat(gg, c->c2, lanes), "");
        LLVMValueRef den = fadd(gg, math1(gg, "sqrt", LLVMTypeOf(vhat), vhat), cl(gg, g, opt->eps));
        step = fmul(gg, cl(gg, g, c->o->lr), LLVMBuildFDiv(gg->B, mhat, den, ""));
    }
    vstore(gg, fsub(gg, p, step), c->dst, idx, lanes);
}

/* Adam counts its updates in a float64 [1,1] state buffer: t += 1, then c = 1 - beta^t. */
static void adam_prologue(opctx *c)
{
    cg *g = c->g;
    if (c->o->opt.kind != DNIC_OPT_ADAM)
        return;
    LLVMValueRef t = fadd(g, ld(g, g->f64, c->state[2], ci(g, 0)), cf(g, g->f64, 1));
    st(g, g->f64, t, c->state[2], ci(g, 0));
    LLVMTypeRef args[2] = {g->f64, g->f64};
    LLVMTypeRef fty = LLVMFunctionType(g->f64, args, 2, 0);
    LLVMValueRef pw = LLVMGetNamedFunction(g->M, "llvm.pow.f64");
    if (!pw)
        pw = LLVMAddFunction(g->M, "llvm.pow.f64", fty);
    LLVMValueRef a1[2] = {cf(g, g->f64, c->o->opt.beta1), t}, a2[2] = {cf(g, g->f64, c->o->opt.beta2), t};
    LLVMValueRef c1 = fsub(g, cf(g, g->f64, 1), LLVMBuildCall2(g->B, fty, pw, a1, 2, ""));
    LLVMValueRef c2 = fsub(g, cf(g, g->f64, 1), LLVMBuildCall2(g->B, fty, pw, a2, 2, ""));
    c->c1 = g->T == g->f64 ? c1 : LLVMBuildFPTrunc(g->B, c1, g->T, "");
    c->c2 = g->T == g->f64 ? c2 : LLVMBuildFPTrunc(g->B, c2, g->T, "");
}

/* W[K,N] -= (x[B,K]^T . d[B,N]) * lr: the batch sum first, then the scale, as the seeds. */
static void sgd_w_epi(opctx *c, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int lanes)
{
    apply_update(c, ix(c->g, m, c->D->cols, n), v, lanes);
}

/* Tile t's mr (or w) elements of row k of x, copied to its stream as one short vector. */
static void pack_a_chunk(cg *g, LLVMValueRef x, int rows, int cols, LLVMValueRef m0, LLVMValueRef k, int w,
                         LLVMValueRef to)
{
    vstore(g, vload(g, x, ix(g, k, cols, m0), w), to,
           LLVMBuildAdd(g->B, LLVMBuildMul(g->B, m0, ci(g, rows), ""), LLVMBuildMul(g->B, k, ci(g, w), ""), ""), w);
}

enum { PACK_A_GROUP = 8 }; /* tiles packed together: 48 columns of x, 3 cache lines of float32 */

/* to = x[rows, cols] packed per tile of mr columns (ablock_row): for each tile, its mr
 * elements of every row of x in turn, moved as one short vector, where a transposed copy
 * (transpose) moves 8 x 8 squares through registers.  Groups of PACK_A_GROUP tiles go down
 * x together, so that each line of x is read once and the copy writes to few streams. */
static void pack_a_blocks(cg *g, LLVMValueRef x, int rows, int cols, int mr, LLVMValueRef to)
{
    int full = cols / mr, last = cols % mr, groups = full / PACK_A_GROUP;
    bool novec = g->novec;
    g->novec = true;
    loop lg, lk, lt;
    if (groups > 0) {
        LLVMValueRef m0 = LLVMBuildMul(g->B, loop_begin(g, &lg, groups), ci(g, (long long)PACK_A_GROUP * mr), "");
        LLVMValueRef k = loop_begin(g, &lk, rows);
        for (int t = 0; t < PACK_A_GROUP; t++)
            pack_a_chunk(g, x, rows, cols, LLVMBuildAdd(g->B, m0, ci(g, (long long)t * mr), ""), k, mr, to);
        loop_end(g, &lk);
        loop_end(g, &lg);
    }
    if (full > groups * PACK_A_GROUP) {
        LLVMValueRef t = LLVMBuildAdd(g->B, loop_begin(g, &lt, full - groups * PACK_A_GROUP), ci(g, groups * PACK_A_GROUP), "");
        LLVMValueRef k = loop_begin(g, &lk, rows);
        pack_a_chunk(g, x, rows, cols, LLVMBuildMul(g->B, t, ci(g, mr), ""), k, mr, to);
        loop_end(g, &lk);
        loop_end(g, &lt);
    }
    if (last > 0) {
        LLVMValueRef k = loop_begin(g, &lk, rows);
        pack_a_chunk(g, x, rows, cols, ci(g, (long long)full * mr), k, last, to);
        loop_end(g, &lk);
    }
    g->novec = novec;
}

static void gen_sgd_w(opctx *c)
{
    int K = c->D->rows, N = c->D->cols, Bn = c->S[0]->rows;
    adam_prologue(c);
    gemm p = {K, N, Bn, c->s[0], c->s[1], 1, K, N, 1, sgd_w_epi, 0, 0, false};
    if (c->o->scratch >= 0) { /* x packed in blocks of its columns (dnic_sgd_w_transposes) */
        pack_a_blocks(c->g, c->s[0], Bn, K, with_tile(c->g, &p).mr, c->scr);
        p.a = c->scr;
        p.ablocks = true;
    }
    gen_gemm(c->g, c, &p);
}

/* b[N] -= (sum_rows(d) / B) * lr: np.average over the batch, then the scale.  The row sum is
 * the matrix product of a row of ones with d (1 * x is exact). */
static void sgd_b_epi(opctx *c, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int lanes)
{
    cg *g = c->g;
    (void)m;
    apply_update(c, n, LLVMBuildFDiv(g->B, v, cl(g, v, c->S[0]->rows), ""), lanes);
}

static void gen_sgd_b(opctx *c)
{
    int N = c->D->cols, Bn = c->S[0]->rows;
    adam_prologue(c);
    gemm p = {1, N, Bn, NULL, c->s[0], 0, 0, N, 1, sgd_b_epi, 0, 0, false};
    gen_gemm(c->g, c, &p);
}

/* p[j] -= update(s0[off, j]): a gradient that other ops computed (batch normalisation's
 * scale and shift), through the same update rule as the weights. */
static void gen_update(opctx *c)
{
    cg *g = c->g;
    int N = c->D->cols;
    adam_prologue(c);
    loop l;
    LLVMValueRef j = loop_begin(g, &l, (long long)c->D->rows * N);
    apply_update(c, j, ld(g, g->T, c->s[0], LLVMBuildAdd(g->B, j, ci(g, (long long)c->o->off * N), "")), 1);
    loop_end(g, &l);
}

/* dst[m,n] = (dst[m,n] +) sum over rows k of x[k,m] * d[k,n]: a weight's gradient kept for an
 * update after several steps (a recurrent layer's chunk); the rows in order, as SGD_W. */
static void grad_w_epi(opctx *c, LLVMValueRef m, LLVMValueRef n, LLVMValueRef v, int lanes)
{
    cg *g = c->g;
    LLVMValueRef idx = ix(g, m, c->D->cols, n);
    if (c->o->accumulate)
        v = fadd(g, vload(g, c->dst, idx, lanes), v);
    vstore(g, v, c->dst, idx, lanes);
}

/* dst = its sum over the replicas of a data-parallel run: the runtime's dnic_replica_sum
 * (runtime/replica.c), which the transport does in a fixed order. */
static void gen_reduce(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef args[3] = {g->ptr, g->i64, g->i32};
    LLVMTypeRef ty = LLVMFunctionType(g->vd, args, 3, 0);
    LLVMValueRef f = LLVMGetNamedFunction(g->M, "dnic_replica_sum");
    if (!f)
        f = LLVMAddFunction(g->M, "dnic_replica_sum", ty);
    LLVMValueRef v[3] = {c->dst, ci(g, (long long)c->D->rows * c->D->cols),
                         LLVMConstInt(g->i32, g->T == g->f64, 0)};
    LLVMBuildCall2(g->B, ty, f, v, 3, "");
}

static void gen_grad_w(opctx *c)
{
    int K = c->D->rows, N = c->D->cols, Bn = c->S[c->s[0] ? 0 : 1]->rows;
    gemm p = {K, N, Bn, c->s[0], c->s[1], 1, K, N, 1, grad_w_epi, 0, 0, false};
    if (!c->s[0]) /* column sums: a row of ones times d */
        p = (gemm){1, N, Bn, NULL, c->s[1], 0, 0, N, 1, grad_w_epi, 0, 0, false};
    gen_gemm(c->g, c, &p);
}

static LLVMValueRef to_f64(cg *g, LLVMValueRef v)
{
    return g->T == g->f64 ? v : LLVMBuildFPExt(g->B, v, g->f64, "");
}

/* acc (+)= sum |s0| in float64. */
static void gen_abs_sum(opctx *c)
{
    cg *g = c->g;
    LLVMValueRef acc = var(g, g->f64, c->o->accumulate ? ld(g, g->f64, c->dst, ci(g, 0)) : cf(g, g->f64, 0));
    loop l;
    LLVMValueRef e = loop_begin(g, &l, (long long)c->S[0]->rows * c->S[0]->cols);
    LLVMValueRef v = to_f64(g, math1(g, "fabs", g->T, ld(g, g->T, c->s[0], e)));
    set(g, fadd(g, get(g, g->f64, acc), v), acc);
    loop_end(g, &l);
    st(g, g->f64, get(g, g->f64, acc), c->dst, ci(g, 0));
}

/* acc += sum of the loss over the batch, in float64: squared error 0.5 (o - y)^2; softmax
 * cross-entropy -y log p; sigmoid cross-entropy -(y log p + (1 - y) log(1 - p)). */
static void gen_loss_sum(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef D = g->f64;
    LLVMValueRef acc = var(g, D, ld(g, D, c->dst, ci(g, 0)));
    loop l;
    LLVMValueRef e = loop_begin(g, &l, (long long)c->S[0]->rows * c->S[0]->cols);
    LLVMValueRef o = to_f64(g, ld(g, g->T, c->s[0], e)), y = to_f64(g, ld(g, g->T, c->s[1], e)), v;
    LLVMValueRef tiny = cf(g, D, 1e-300);
    if (c->o->act == DNIC_ACT_LINEAR) {
        LLVMValueRef d = fsub(g, o, y);
        v = fmul(g, cf(g, D, 0.5), fmul(g, d, d));
    } else {
        LLVMValueRef p = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, o, tiny, ""), o, tiny, "");
        v = LLVMBuildFNeg(g->B, fmul(g, y, math1(g, "log", D, p)), "");
        if (c->o->act == DNIC_ACT_SIGMOID) {
            LLVMValueRef q = fsub(g, cf(g, D, 1), o);
            q = LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, q, tiny, ""), q, tiny, "");
            v = fsub(g, v, fmul(g, fsub(g, cf(g, D, 1), y), math1(g, "log", D, q)));
        }
    }
    set(g, fadd(g, get(g, D, acc), v), acc);
    loop_end(g, &l);
    st(g, D, get(g, D, acc), c->dst, ci(g, 0));
}

/* ---- functions -------------------------------------------------------------------------- */

static void add_attr(cg *g, LLVMValueRef fn, int idx, const char *name)
{
    unsigned kind = LLVMGetEnumAttributeKindForName(name, strlen(name));
    DNIC_ASSERT(kind != 0);
    LLVMAddAttributeAtIndex(fn, (unsigned)idx, LLVMCreateEnumAttribute(g->C, kind, 0));
}

static void add_target_attrs(cg *g, LLVMValueRef fn)
{
    if (g->cpu && *g->cpu)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(g->C, "target-cpu", 10, g->cpu, (unsigned)strlen(g->cpu)));
    if (g->features && *g->features)
        LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                                LLVMCreateStringAttribute(g->C, "target-features", 15, g->features,
                                                          (unsigned)strlen(g->features)));
    add_attr(g, fn, (int)LLVMAttributeFunctionIndex, "nounwind");
}

/* An op function's arguments: dst, the sources, the scratch buffer, three optimiser states. */
enum { ARG_SRC = 1, ARG_SCRATCH = ARG_SRC + DNIC_MAX_SRC, ARG_STATE, OP_ARGS = ARG_STATE + 3 };

/* The lowering of each op, by the rule its line in ir_ops.def names. */
typedef void (*gen_fn)(opctx *c);
static const gen_fn GEN[DNIC_OP_COUNT] = {
#define DNIC_OP(e, nm, ns, opt, d, at, rule) [DNIC_OP_##e] = gen_##rule,
#include "ir_ops.def"
#undef DNIC_OP
};

/* One op as an internal function over noalias buffers, inlined into its block. */
/* Everything an op's code depends on, as text: its kind and attributes and its operands'
 * shapes and types, not which buffers they are.  In a program of SHARE_MIN_OPS ops or more (in
 * all its blocks, whichever part of it is being compiled),
 * ops with the same key share one function: a recurrent layer's steps repeat the same ops, and
 * compiling each once keeps compile time from growing with the sequence's length (an rnn of 32
 * over 100 steps: 18.6 s to 0.9 s).  Smaller programs, the feed-forward ones, compile every op
 * into its block as before. */
enum { SHARE_MIN_OPS = 256 };

static char *op_key(cg *g, const dnic_ir_op *o)
{
    const dnic_buffer_desc *bufs = g->ir->bufs;
    char *k = dnic_sprintf(g->a, "%d/%d/%a/%d/%a/%a/%a/%a/%d/%d/%d/%d/%a/%a/%a/%a", (int)o->op, (int)o->act, o->lr,
                           (int)o->opt.kind, o->opt.momentum, o->opt.beta1, o->opt.beta2, o->opt.eps, o->grad_div,
                           (int)o->accumulate, (int)o->scratch_ready, o->off, o->eps, o->momentum, o->scale, o->clip);
    int ids[1 + DNIC_MAX_SRC + 4] = {o->dst};
    for (int i = 0; i < DNIC_MAX_SRC; i++)
        ids[1 + i] = o->src[i];
    ids[1 + DNIC_MAX_SRC] = o->scratch;
    for (int i = 0; i < 3; i++)
        ids[2 + DNIC_MAX_SRC + i] = o->state[i];
    for (size_t i = 0; i < sizeof ids / sizeof *ids; i++)
        k = ids[i] < 0 ? dnic_sprintf(g->a, "%s|-", k)
                       : dnic_sprintf(g->a, "%s|%dx%d:%d", k, bufs[ids[i]].rows, bufs[ids[i]].cols, (int)bufs[ids[i]].dtype);
    return k;
}

/* An op's function; `inline` for one called once (the block's code is then as if written in
 * place), left to LLVM's inliner when several calls share it. */
static LLVMValueRef gen_op(cg *g, const dnic_ir_op *o, const char *name, bool inline_it)
{
    LLVMTypeRef params[OP_ARGS];
    for (int i = 0; i < OP_ARGS; i++)
        params[i] = g->ptr;
    LLVMTypeRef fty = LLVMFunctionType(g->vd, params, OP_ARGS, 0);
    LLVMValueRef fn = LLVMAddFunction(g->M, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_target_attrs(g, fn);
    if (inline_it)
        add_attr(g, fn, (int)LLVMAttributeFunctionIndex, "alwaysinline");
    for (int p = 1; p <= OP_ARGS; p++) {
        add_attr(g, fn, p, "noalias");
        add_attr(g, fn, p, "nocapture");
    }
    LLVMValueRef saved = g->fn;
    g->fn = fn;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->C, fn, "entry");
    LLVMPositionBuilderAtEnd(g->B, entry);
    opctx c = {.g = g, .o = o, .dst = LLVMGetParam(fn, 0), .D = &g->ir->bufs[o->dst]};
    for (int s = 0; s < DNIC_MAX_SRC; s++)
        if (o->src[s] >= 0) {
            c.s[s] = LLVMGetParam(fn, (unsigned)(ARG_SRC + s));
            c.S[s] = &g->ir->bufs[o->src[s]];
        }
    if (o->scratch >= 0) {
        c.scr = LLVMGetParam(fn, ARG_SCRATCH);
        c.SCR = &g->ir->bufs[o->scratch];
    }
    for (int i = 0; i < 3; i++)
        if (o->state[i] >= 0)
            c.state[i] = LLVMGetParam(fn, (unsigned)(ARG_STATE + i));
    DNIC_ASSERT((unsigned)o->op < DNIC_OP_COUNT);
    GEN[o->op](&c);
    LLVMBuildRetVoid(g->B);
    g->fn = saved;
    return fn;
}

/* Whether the comma-separated LLVM feature list turns feature `name` on (sign '+', "+name")
 * or off (sign '-', "-name"). */
static bool feature_is(const char *features, char sign, const char *name)
{
    size_t n = strlen(name);
    for (const char *f = features; f && *f;) {
        const char *end = strchr(f, ',');
        size_t len = end ? (size_t)(end - f) : strlen(f);
        if (len == n + 1 && f[0] == sign && memcmp(f + 1, name, n) == 0)
            return true;
        f = end ? end + 1 : f + len;
    }
    return false;
}

/* CPUs whose 512-bit units are full width, measured faster with 512-bit kernels
 * (docs/benchmarks.md).  Zen 4 splits 512-bit operations in two halves and measured no faster;
 * Intel's server cores are unmeasured and may lower their clock for 512-bit code. */
static const char *const FULL_WIDTH_512[] = {"znver5"};

int dnic_vector_bits(const char *cpu, const char *features)
{
    /* the host's features say -avx512f when a virtual machine hides AVX-512 from its guest */
    if (!cpu || feature_is(features, '-', "avx512f"))
        return 256;
    for (size_t i = 0; i < sizeof FULL_WIDTH_512 / sizeof *FULL_WIDTH_512; i++)
        if (strcmp(cpu, FULL_WIDTH_512[i]) == 0)
            return 512;
    return 256;
}

static int forced_regs; /* dnic_codegen_force_vector_regs */

/* The register tile of the products (gemm_tile), from the vector registers of the ISA that
 * the code is for: with AVX-512 (32 registers; at 256 bits also AVX-512VL), 6 rows by 4 vectors,
 * 24 accumulators, a vector of B and the broadcast of A left; with AVX2's 16, 6 rows by 2
 * vectors, 12 accumulators, 2 vectors of B, A's broadcast and one product.  Per step of k a
 * tile loads nrv vectors of B and broadcasts mr elements of A for mr * nrv products and sums:
 * 10 loads for 24 (AVX-512) or 8 for 12 (AVX2), where the earlier 4 x 2 everywhere had 6 for 8.
 * The tile does not change any sum's order (each element's k loop is the same), so results are
 * the same bit for bit on every CPU.  Measured in docs/benchmarks.md ("Register tiles per ISA"). */
static void choose_tile(cg *g, int bits)
{
    bool regs32 = bits == 512 || (feature_is(g->features, '+', "avx512vl") && !feature_is(g->features, '-', "avx512f"));
    if (forced_regs)
        regs32 = forced_regs == 32;
    g->mr = 6;
    g->nrv = regs32 ? 4 : 2;
    DNIC_ASSERT(g->mr <= MR_MAX && g->nrv <= NRV_MAX);
}

void dnic_codegen_force_vector_regs(int regs)
{
    DNIC_ASSERT(regs == 0 || regs == 16 || regs == 32);
    forced_regs = regs;
}

static int forced_vector_bits;

void dnic_codegen_force_vector_bits(int bits)
{
    DNIC_ASSERT(bits == 0 || bits == 256 || bits == 512);
    forced_vector_bits = bits;
}

char *dnic_block_symbol(dnic_arena *a, const char *prefix, int i)
{
    return dnic_sprintf(a, "%s_block%d", prefix, i);
}

LLVMModuleRef dnic_codegen(LLVMContextRef ctx, const dnic_ir *ir, const char *prefix, const char *cpu,
                           const char *features, const bool *want)
{
    cg gg = {.C = ctx, .ir = ir, .cpu = cpu, .features = features}, *g = &gg;
    g->a = dnic_arena_new();
    g->M = LLVMModuleCreateWithNameInContext(prefix, ctx);
    g->B = LLVMCreateBuilderInContext(ctx);
    g->f64 = LLVMDoubleTypeInContext(ctx);
    g->T = ir->dtype == DNIC_F64 ? g->f64 : LLVMFloatTypeInContext(ctx);
    g->i64 = LLVMInt64TypeInContext(ctx);
    g->i32 = LLVMInt32TypeInContext(ctx);
    g->i1 = LLVMInt1TypeInContext(ctx);
    g->ptr = LLVMPointerTypeInContext(ctx, 0);
    g->vd = LLVMVoidTypeInContext(ctx);
    int bits = forced_vector_bits ? forced_vector_bits : dnic_vector_bits(cpu, features);
    g->lanes = bits / (ir->dtype == DNIC_F64 ? 64 : 32);
    g->lanes256 = 256 / (ir->dtype == DNIC_F64 ? 64 : 32);
    choose_tile(g, bits);
    /* each op's key, and how many ops of the wanted blocks share it */
    dnic_vec keys = {0}, fns = {0};
    int *uses = NULL, nkeys = 0;
    char ***opkey = dnic_alloc(g->a, (size_t)(ir->nblocks + 1) * sizeof *opkey);
    for (int pass = 0; pass < 2; pass++)
        for (int b = 0; b < ir->nblocks; b++) {
            if (want && !want[b])
                continue;
            const dnic_ir_block *blk = &ir->blocks[b];
            if (pass == 0)
                opkey[b] = dnic_alloc(g->a, (size_t)(blk->nops + 1) * sizeof **opkey);
            for (int i = 0; i < blk->nops; i++) {
                if (pass == 0) {
                    opkey[b][i] = op_key(g, &blk->ops[i]);
                    continue;
                }
                int k = 0;
                while (k < nkeys && strcmp(keys.v[k], opkey[b][i]) != 0)
                    k++;
                if (k == nkeys) {
                    dnic_vec_push(g->a, &keys, opkey[b][i]);
                    dnic_vec_push(g->a, &fns, NULL);
                    nkeys++;
                }
                opkey[b][i] = keys.v[k]; /* one pointer per distinct key */
            }
        }
    uses = dnic_alloc(g->a, (size_t)(nkeys + 1) * sizeof *uses);
    int nops = 0; /* the whole program's, so that every part of it compiles alike */
    for (int b = 0; b < ir->nblocks; b++) {
        nops += ir->blocks[b].nops;
        for (int i = 0; (!want || want[b]) && i < ir->blocks[b].nops; i++)
            for (int k = 0; k < nkeys; k++)
                uses[k] += keys.v[k] == opkey[b][i];
    }
    bool share = nops >= SHARE_MIN_OPS;
    for (int b = 0; b < ir->nblocks; b++) {
        if (want && !want[b])
            continue;
        const dnic_ir_block *blk = &ir->blocks[b];
        LLVMValueRef *opfn = dnic_alloc(g->a, (size_t)(blk->nops + 1) * sizeof *opfn);
        for (int i = 0; i < blk->nops; i++) {
            int k = 0;
            while (keys.v[k] != opkey[b][i])
                k++;
            const char *name = dnic_sprintf(g->a, "%s_b%d_op%d_%s", prefix, b, i, dnic_op_name(blk->ops[i].op));
            if (!share)
                opfn[i] = gen_op(g, &blk->ops[i], name, true);
            else if (!fns.v[k])
                opfn[i] = fns.v[k] = gen_op(g, &blk->ops[i], name, uses[k] == 1);
            else
                opfn[i] = fns.v[k];
        }
        LLVMTypeRef fty = LLVMFunctionType(g->vd, &g->ptr, 1, 0);
        LLVMValueRef fn = LLVMAddFunction(g->M, dnic_block_symbol(g->a, prefix, b), fty);
        add_target_attrs(g, fn);
        g->fn = fn;
        LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
        LLVMValueRef bufs = LLVMGetParam(fn, 0);
        LLVMTypeRef opargs[OP_ARGS];
        for (int i = 0; i < OP_ARGS; i++)
            opargs[i] = g->ptr;
        LLVMTypeRef opty = LLVMFunctionType(g->vd, opargs, OP_ARGS, 0);
        for (int i = 0; i < blk->nops; i++) {
            const dnic_ir_op *o = &blk->ops[i];
            LLVMValueRef args[OP_ARGS];
            args[0] = ld(g, g->ptr, bufs, ci(g, o->dst));
            for (int s = 0; s < DNIC_MAX_SRC; s++)
                args[ARG_SRC + s] = o->src[s] >= 0 ? ld(g, g->ptr, bufs, ci(g, o->src[s])) : LLVMConstPointerNull(g->ptr);
            args[ARG_SCRATCH] = o->scratch >= 0 ? ld(g, g->ptr, bufs, ci(g, o->scratch)) : LLVMConstPointerNull(g->ptr);
            for (int k = 0; k < 3; k++)
                args[ARG_STATE + k] =
                    o->state[k] >= 0 ? ld(g, g->ptr, bufs, ci(g, o->state[k])) : LLVMConstPointerNull(g->ptr);
            /* a held update (train.update_prob): skipped when the hold buffer's element is not 0 */
            LLVMBasicBlockRef after = NULL;
            if (o->hold >= 0) {
                LLVMValueRef hp = ld(g, g->ptr, bufs, ci(g, o->hold));
                LLVMValueRef held = LLVMBuildFCmp(g->B, LLVMRealUNE, ld(g, g->T, hp, ci(g, 0)), cf(g, g->T, 0), "");
                LLVMBasicBlockRef run = LLVMAppendBasicBlockInContext(ctx, fn, "update");
                after = LLVMAppendBasicBlockInContext(ctx, fn, "next");
                LLVMBuildCondBr(g->B, held, after, run);
                LLVMPositionBuilderAtEnd(g->B, run);
            }
            LLVMBuildCall2(g->B, opty, opfn[i], args, OP_ARGS, "");
            if (after) {
                LLVMBuildBr(g->B, after);
                LLVMPositionBuilderAtEnd(g->B, after);
            }
        }
        LLVMBuildRetVoid(g->B);
    }
    LLVMDisposeBuilder(g->B);
    dnic_arena_free(g->a);
    return g->M;
}
