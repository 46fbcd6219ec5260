/* Code generation: each IR block becomes one LLVM function `void block(ptr bufs)` that calls
 * one always-inlined function per op.  Op functions take their buffers as noalias pointers,
 * so after inlining LLVM knows that outputs do not overlap inputs; every loop bound is a
 * constant.  Floating point is strict (no fast-math flags): results follow the order of
 * operations in docs/semantics.md. */
#include <string.h>

#include "codegen.h"

typedef struct cg {
    LLVMContextRef C;
    LLVMModuleRef M;
    LLVMBuilderRef B;
    LLVMTypeRef T, f64, i64, i32, i1, ptr, vd;
    LLVMValueRef fn;            /* the function being built */
    const dnic_ir *ir;
    const char *cpu, *features;
    dnic_arena *a;
} cg;

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

/* for (iv = 0; iv < n; iv++) { ... loop_end } */
static LLVMValueRef loop_begin(cg *g, loop *l, long long n)
{
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(g->B);
    l->head = LLVMAppendBasicBlockInContext(g->C, g->fn, "loop");
    LLVMBasicBlockRef body = LLVMAppendBasicBlockInContext(g->C, g->fn, "body");
    l->exit = LLVMAppendBasicBlockInContext(g->C, g->fn, "done");
    LLVMBuildBr(g->B, l->head);
    LLVMPositionBuilderAtEnd(g->B, l->head);
    l->iv = LLVMBuildPhi(g->B, g->i64, "i");
    LLVMValueRef zero = ci(g, 0);
    LLVMAddIncoming(l->iv, &zero, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(g->B, LLVMIntSLT, l->iv, ci(g, n), "");
    LLVMBuildCondBr(g->B, more, body, l->exit);
    LLVMPositionBuilderAtEnd(g->B, body);
    return l->iv;
}

static void loop_end(cg *g, loop *l)
{
    LLVMValueRef next = LLVMBuildNSWAdd(g->B, l->iv, ci(g, 1), "");
    LLVMBasicBlockRef latch = LLVMGetInsertBlock(g->B);
    LLVMAddIncoming(l->iv, &next, &latch, 1);
    LLVMBuildBr(g->B, l->head);
    LLVMPositionBuilderAtEnd(g->B, l->exit);
}

/* A scalar variable in the entry block (promoted to a register by SROA). */
static LLVMValueRef var(cg *g, LLVMTypeRef t, LLVMValueRef init)
{
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(g->C);
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(g->fn);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first)
        LLVMPositionBuilderBefore(eb, first);
    else
        LLVMPositionBuilderAtEnd(eb, entry);
    LLVMValueRef p = LLVMBuildAlloca(eb, t, "");
    LLVMDisposeBuilder(eb);
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

/* Calls a math function: an LLVM intrinsic when there is one, else libm. */
static LLVMValueRef math1(cg *g, const char *base, LLVMTypeRef t, LLVMValueRef x)
{
    bool is64 = t == g->f64;
    const char *name;
    if (strcmp(base, "exp") == 0)
        name = is64 ? "llvm.exp.f64" : "llvm.exp.f32";
    else if (strcmp(base, "log") == 0)
        name = is64 ? "llvm.log.f64" : "llvm.log.f32";
    else if (strcmp(base, "fabs") == 0)
        name = is64 ? "llvm.fabs.f64" : "llvm.fabs.f32";
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

/* act(v) for an elementwise activation (softmax is done per row by the caller). */
static LLVMValueRef act_fwd(cg *g, dnic_act act, LLVMValueRef v)
{
    LLVMTypeRef T = g->T;
    switch (act) {
    case DNIC_ACT_SIGMOID: /* 1 / (1 + exp(-v)), as the seeds */
        return LLVMBuildFDiv(g->B, cf(g, T, 1), fadd(g, cf(g, T, 1), math1(g, "exp", T, LLVMBuildFNeg(g->B, v, ""))), "");
    case DNIC_ACT_TANH:
        return math1(g, "tanh", T, v);
    case DNIC_ACT_RELU:
        return LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, v, cf(g, T, 0), ""), v, cf(g, T, 0), "");
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

/* ---- ops -------------------------------------------------------------------------------- */

typedef struct opctx {
    cg *g;
    const dnic_ir_op *o;
    LLVMValueRef dst, s[3];
    const dnic_buffer_desc *D, *S[3];
} opctx;

/* dst[B,N] = act(x[B,K] . W[K,N] + b): row by row, the dot products accumulated from zero in
 * k order, then the bias added (x.dot(W) + bias, as the seeds). */
static void gen_dense(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, N = c->D->cols, K = c->S[1]->rows;
    loop li, ln, lk, ln2, ln3;
    LLVMValueRef i = loop_begin(g, &li, Bn);
    LLVMValueRef n = loop_begin(g, &ln, N);
    st(g, T, cf(g, T, 0), c->dst, ix(g, i, N, n));
    loop_end(g, &ln);
    LLVMValueRef k = loop_begin(g, &lk, K);
    LLVMValueRef xv = ld(g, T, c->s[0], ix(g, i, K, k));
    n = loop_begin(g, &ln2, N);
    LLVMValueRef di = ix(g, i, N, n);
    st(g, T, fadd(g, ld(g, T, c->dst, di), fmul(g, xv, ld(g, T, c->s[1], ix(g, k, N, n)))), c->dst, di);
    loop_end(g, &ln2);
    loop_end(g, &lk);
    if (c->o->act == DNIC_ACT_SOFTMAX) {
        /* add the bias, subtract the row's max, exponentiate, normalise */
        LLVMValueRef mx = var(g, T, cf(g, T, -__builtin_inf()));
        n = loop_begin(g, &ln3, N);
        di = ix(g, i, N, n);
        LLVMValueRef v = ld(g, T, c->dst, di);
        if (c->s[2])
            v = fadd(g, v, ld(g, T, c->s[2], n));
        st(g, T, v, c->dst, di);
        LLVMValueRef m = get(g, T, mx);
        set(g, LLVMBuildSelect(g->B, LLVMBuildFCmp(g->B, LLVMRealOGT, v, m, ""), v, m, ""), mx);
        loop_end(g, &ln3);
        LLVMValueRef sum = var(g, T, cf(g, T, 0));
        loop le;
        n = loop_begin(g, &le, N);
        di = ix(g, i, N, n);
        LLVMValueRef e = math1(g, "exp", T, fsub(g, ld(g, T, c->dst, di), get(g, T, mx)));
        st(g, T, e, c->dst, di);
        set(g, fadd(g, get(g, T, sum), e), sum);
        loop_end(g, &le);
        loop lnorm;
        n = loop_begin(g, &lnorm, N);
        di = ix(g, i, N, n);
        st(g, T, LLVMBuildFDiv(g->B, ld(g, T, c->dst, di), get(g, T, sum), ""), c->dst, di);
        loop_end(g, &lnorm);
    } else {
        n = loop_begin(g, &ln3, N);
        di = ix(g, i, N, n);
        LLVMValueRef v = ld(g, T, c->dst, di);
        if (c->s[2])
            v = fadd(g, v, ld(g, T, c->s[2], n));
        st(g, T, act_fwd(g, c->o->act, v), c->dst, di);
        loop_end(g, &ln3);
    }
    loop_end(g, &li);
}

static void gen_concat(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, W = c->D->cols, off = 0;
    for (int p = 0; p < 3; p++) {
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

/* Elementwise over all rows*cols: dst = f(s0[e], s1[e]). */
static void gen_elementwise(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    loop l;
    LLVMValueRef e = loop_begin(g, &l, (long long)c->D->rows * c->D->cols);
    LLVMValueRef a = ld(g, T, c->s[0], e), b = ld(g, T, c->s[1], e), v;
    if (c->o->op == DNIC_OP_SUB)
        v = fsub(g, a, b);
    else /* ACT_GRAD: g * act'(y) */
        v = fmul(g, a, act_deriv(g, c->o->act, b));
    st(g, T, v, c->dst, e);
    loop_end(g, &l);
}

/* dst[B,K] = d[B,N] . W[K,N]^T */
static void gen_matmul_nt(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int Bn = c->D->rows, K = c->D->cols, N = c->S[0]->cols;
    loop li, lk, ln;
    LLVMValueRef i = loop_begin(g, &li, Bn);
    LLVMValueRef k = loop_begin(g, &lk, K);
    LLVMValueRef acc = var(g, T, cf(g, T, 0));
    LLVMValueRef n = loop_begin(g, &ln, N);
    set(g, fadd(g, get(g, T, acc), fmul(g, ld(g, T, c->s[0], ix(g, i, N, n)), ld(g, T, c->s[1], ix(g, k, N, n)))), acc);
    loop_end(g, &ln);
    st(g, T, get(g, T, acc), c->dst, ix(g, i, K, k));
    loop_end(g, &lk);
    loop_end(g, &li);
}

/* W[K,N] -= (x[B,K]^T . d[B,N]) * lr: the batch sum first, then the scale, as the seeds. */
static void gen_sgd_w(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int K = c->D->rows, N = c->D->cols, Bn = c->S[0]->rows;
    loop lk, ln, li;
    LLVMValueRef k = loop_begin(g, &lk, K);
    LLVMValueRef n = loop_begin(g, &ln, N);
    LLVMValueRef acc = var(g, T, cf(g, T, 0));
    LLVMValueRef i = loop_begin(g, &li, Bn);
    set(g, fadd(g, get(g, T, acc), fmul(g, ld(g, T, c->s[0], ix(g, i, K, k)), ld(g, T, c->s[1], ix(g, i, N, n)))), acc);
    loop_end(g, &li);
    LLVMValueRef wi = ix(g, k, N, n);
    st(g, T, fsub(g, ld(g, T, c->dst, wi), fmul(g, get(g, T, acc), cf(g, T, c->o->lr))), c->dst, wi);
    loop_end(g, &ln);
    loop_end(g, &lk);
}

/* b[N] -= (sum_rows(d) / B) * lr: np.average over the batch, then the scale. */
static void gen_sgd_b(opctx *c)
{
    cg *g = c->g;
    LLVMTypeRef T = g->T;
    int N = c->D->cols, Bn = c->S[0]->rows;
    loop ln, li;
    LLVMValueRef n = loop_begin(g, &ln, N);
    LLVMValueRef acc = var(g, T, cf(g, T, 0));
    LLVMValueRef i = loop_begin(g, &li, Bn);
    set(g, fadd(g, get(g, T, acc), ld(g, T, c->s[0], ix(g, i, N, n))), acc);
    loop_end(g, &li);
    LLVMValueRef mean = LLVMBuildFDiv(g->B, get(g, T, acc), cf(g, T, Bn), "");
    st(g, T, fsub(g, ld(g, T, c->dst, n), fmul(g, mean, cf(g, T, c->o->lr))), c->dst, n);
    loop_end(g, &ln);
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

/* One op as an internal function over noalias buffers, inlined into its block. */
static LLVMValueRef gen_op(cg *g, const dnic_ir_op *o, const char *name)
{
    LLVMTypeRef params[4] = {g->ptr, g->ptr, g->ptr, g->ptr};
    LLVMTypeRef fty = LLVMFunctionType(g->vd, params, 4, 0);
    LLVMValueRef fn = LLVMAddFunction(g->M, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    add_target_attrs(g, fn);
    add_attr(g, fn, (int)LLVMAttributeFunctionIndex, "alwaysinline");
    for (int p = 1; p <= 4; p++) {
        add_attr(g, fn, p, "noalias");
        add_attr(g, fn, p, "nocapture");
    }
    LLVMValueRef saved = g->fn;
    g->fn = fn;
    LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(g->C, fn, "entry");
    LLVMPositionBuilderAtEnd(g->B, entry);
    opctx c = {.g = g, .o = o, .dst = LLVMGetParam(fn, 0), .D = &g->ir->bufs[o->dst]};
    for (int s = 0; s < 3; s++)
        if (o->src[s] >= 0) {
            c.s[s] = LLVMGetParam(fn, (unsigned)s + 1);
            c.S[s] = &g->ir->bufs[o->src[s]];
        }
    switch (o->op) {
    case DNIC_OP_DENSE: gen_dense(&c); break;
    case DNIC_OP_CONCAT: gen_concat(&c); break;
    case DNIC_OP_ACT_GRAD:
    case DNIC_OP_SUB: gen_elementwise(&c); break;
    case DNIC_OP_MATMUL_NT: gen_matmul_nt(&c); break;
    case DNIC_OP_SGD_W: gen_sgd_w(&c); break;
    case DNIC_OP_SGD_B: gen_sgd_b(&c); break;
    case DNIC_OP_ABS_SUM: gen_abs_sum(&c); break;
    case DNIC_OP_LOSS_SUM: gen_loss_sum(&c); break;
    case DNIC_OP_COUNT: DNIC_ASSERT(!"bad op");
    }
    LLVMBuildRetVoid(g->B);
    g->fn = saved;
    return fn;
}

char *dnic_block_symbol(dnic_arena *a, const char *prefix, int i)
{
    return dnic_sprintf(a, "%s_block%d", prefix, i);
}

LLVMModuleRef dnic_codegen(LLVMContextRef ctx, const dnic_ir *ir, const char *prefix, const char *cpu,
                           const char *features)
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
    for (int b = 0; b < ir->nblocks; b++) {
        const dnic_ir_block *blk = &ir->blocks[b];
        LLVMValueRef *opfn = dnic_alloc(g->a, (size_t)(blk->nops + 1) * sizeof *opfn);
        for (int i = 0; i < blk->nops; i++)
            opfn[i] = gen_op(g, &blk->ops[i], dnic_sprintf(g->a, "%s_b%d_op%d_%s", prefix, b, i, dnic_op_name(blk->ops[i].op)));
        LLVMTypeRef fty = LLVMFunctionType(g->vd, &g->ptr, 1, 0);
        LLVMValueRef fn = LLVMAddFunction(g->M, dnic_block_symbol(g->a, prefix, b), fty);
        add_target_attrs(g, fn);
        g->fn = fn;
        LLVMPositionBuilderAtEnd(g->B, LLVMAppendBasicBlockInContext(ctx, fn, "entry"));
        LLVMValueRef bufs = LLVMGetParam(fn, 0);
        LLVMTypeRef opty = LLVMFunctionType(g->vd, (LLVMTypeRef[]){g->ptr, g->ptr, g->ptr, g->ptr}, 4, 0);
        for (int i = 0; i < blk->nops; i++) {
            const dnic_ir_op *o = &blk->ops[i];
            LLVMValueRef args[4];
            args[0] = ld(g, g->ptr, bufs, ci(g, o->dst));
            for (int s = 0; s < 3; s++)
                args[s + 1] = o->src[s] >= 0 ? ld(g, g->ptr, bufs, ci(g, o->src[s])) : LLVMConstPointerNull(g->ptr);
            LLVMBuildCall2(g->B, opty, opfn[i], args, 4, "");
        }
        LLVMBuildRetVoid(g->B);
    }
    LLVMDisposeBuilder(g->B);
    dnic_arena_free(g->a);
    return g->M;
}
