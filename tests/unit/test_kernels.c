/* Kernel tests for the LLVM half (codegen.c + jit.c), in three parts:
 *
 *  1. every op of ir_ops.def (all 19, each activation, loss and variant: 49 ops in four blocks
 *     of one hand-built IR per dtype and shape), JIT-compiled and run on seeded random inputs,
 *     for widths 1, 3, 8, 17, 33, 100 and 257 in the batch, K and N dimensions (the cube
 *     diagonal plus non-square shapes), in float32 and float64, against two references
 *     written here:
 *       - an obvious long double kernel, within the tolerances below;
 *       - a same-order kernel in the model's dtype that follows the floating-point order
 *         docs/semantics.md and ir_ops.def's comments promise, which the generated code must
 *         match exactly;
 *  2. a gradient check: one backprop step of real models (front end -> IR -> JIT) changes every
 *     weight by -lr dL/dW and every bias by -lr (1/B) dL/db, with dL/dθ from fourth-order
 *     central finite differences of a plain C forward pass; then (2b) graphs with add, concat
 *     and batch normalisation, whose gamma, beta and running averages are checked too;
 *  3. the seed-like DNI model (and its label-conditioned variant, and backprop) against the
 *     float64 C reference of the seeds in tests/ref/dni_ref.c, over five steps.
 * The sanity tests show that every comparison of part 1 and the dni_ref one report a planted
 * mismatch.
 *
 * The error measure is normwise per buffer (buf_err):
 *     err = max_i |got_i - ref_i| / max(1, max_i |ref_i|)
 * i.e. the largest absolute error relative to the buffer's largest magnitude, with buffers
 * whose values are all below 1 compared absolutely; NaN or infinity on either side is an
 * infinite error.  Bounds: float32 buffers 1e-5, float64 buffers 1e-12, the float64 [1,1]
 * accumulators (float64 in both dtypes) 1e-12, dnic vs dni_ref 1e-12.  The gradient check uses
 * max_i |Δ_i - Δexp_i| / max_i |Δexp_i| <= 1e-7 per parameter (relative to the update's size,
 * since updates are small).  `--verbose` logs the errors observed, to show the margins. */
#include <criterion/criterion.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "binadd.h"
#include "codegen.h"
#include "dist.h"
#include "layers.h"
#include "rng.h"
#include "testutil.h"

#include "../ref/dni_ref.h"

#define TOL_F32 1e-5
#define TOL_F64 1e-12
#define TOL_ACC 1e-12
#define TOL_GRAD 1e-7
#define TOL_REF 1e-12

/* ---- the error measure ------------------------------------------------------------------ */

/* max |got - ref| / max(1, max |ref|); INFINITY when anything is NaN or infinite. */
static double buf_err(const double *got, const long double *ref, size_t n)
{
    long double maxerr = 0, maxref = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(got[i]) || !isfinite(ref[i]))
            return INFINITY;
        long double e = fabsl((long double)got[i] - ref[i]);
        if (e > maxerr)
            maxerr = e;
        if (fabsl(ref[i]) > maxref)
            maxref = fabsl(ref[i]);
    }
    return (double)(maxerr / (maxref > 1 ? maxref : 1));
}

/* The same for a float64 reference. */
static double buf_err_d(const double *got, const double *ref, size_t n)
{
    long double *r = malloc((n ? n : 1) * sizeof *r);
    cr_assert_not_null(r);
    for (size_t i = 0; i < n; i++)
        r[i] = ref[i];
    double e = buf_err(got, r, n);
    free(r);
    return e;
}

/* ---- JIT-compiled programs -------------------------------------------------------------- */

typedef struct jprog {
    const dnic_ir *ir;
    dnic_program p;
    dnic_block_desc *blocks;
    dnic_jit *jit;
} jprog;

/* JIT-compiles every block of `ir` and allocates its buffers (all zero). */
static void jprog_make(jprog *j, const dnic_ir *ir)
{
    memset(j, 0, sizeof *j);
    j->ir = ir;
    j->blocks = calloc((size_t)ir->nblocks + 1, sizeof *j->blocks);
    cr_assert_not_null(j->blocks);
    for (int b = 0; b < ir->nblocks; b++)
        j->blocks[b] = (dnic_block_desc){.name = ir->blocks[b].name, .stage = ir->blocks[b].stage,
                                         .phase = ir->blocks[b].phase};
    j->p = (dnic_program){
        .bufs = ir->bufs,
        .nbufs = ir->nbufs,
        .blocks = j->blocks,
        .nblocks = ir->nblocks,
        .dtype = ir->dtype,
        .batch = ir->batch,
        .x = ir->x,
        .y = ir->y,
        .loss_acc = ir->loss_acc,
    };
    j->jit = dnic_jit_compile(ir, &j->p, NULL, NULL, NULL, NULL, NULL);
    cr_assert_not_null(j->jit, "the JIT failed");
    for (int b = 0; b < ir->nblocks; b++)
        cr_assert_not_null(j->p.blocks[b].fn, "block %d has no function", b);
    cr_assert_eq(dnic_program_alloc(&j->p), DNIC_OK);
}

/* One training step: every block in plan order but the inference-only ones. */
static void jprog_run(jprog *j)
{
    for (int b = 0; b < j->p.nblocks; b++)
        if (j->p.blocks[b].phase != DNIC_PHASE_PREDICT)
            j->p.blocks[b].fn(j->p.ptrs);
}

static void jprog_free(jprog *j)
{
    dnic_program_free(&j->p);
    dnic_jit_free(j->jit);
    free(j->blocks);
}

static size_t nel(const jprog *j, int buf)
{
    return (size_t)j->p.bufs[buf].rows * (size_t)j->p.bufs[buf].cols;
}

static double getv(const jprog *j, int buf, size_t i)
{
    if (j->p.bufs[buf].dtype == DNIC_F64)
        return ((const double *)j->p.ptrs[buf])[i];
    return (double)((const float *)j->p.ptrs[buf])[i];
}

/* Stores v rounded to the buffer's dtype. */
static void setv(jprog *j, int buf, size_t i, double v)
{
    if (j->p.bufs[buf].dtype == DNIC_F64)
        ((double *)j->p.ptrs[buf])[i] = v;
    else
        ((float *)j->p.ptrs[buf])[i] = (float)v;
}

/* A malloc'd float64 copy of a buffer (exact for float32). */
static double *copy_d(const jprog *j, int buf)
{
    size_t n = nel(j, buf);
    double *v = malloc((n ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = getv(j, buf, i);
    return v;
}

static long double *copy_ld(const jprog *j, int buf)
{
    size_t n = nel(j, buf);
    long double *v = malloc((n ? n : 1) * sizeof *v);
    cr_assert_not_null(v);
    for (size_t i = 0; i < n; i++)
        v[i] = getv(j, buf, i);
    return v;
}

static int find_buf(const dnic_ir *ir, const char *name)
{
    for (int i = 0; i < ir->nbufs; i++)
        if (!strcmp(ir->bufs[i].name, name))
            return i;
    return -1;
}

/* Uniform in [lo, hi). */
static double unif(dnic_rng *r, double lo, double hi)
{
    return lo + (hi - lo) * dnic_rng_rand(r);
}

/* ---- part 1: hand-built IR, one op at a time --------------------------------------------- */

static dnic_ir *kir_new(dnic_arena *a, dnic_dtype t, int batch, int maxbufs, int maxblocks)
{
    dnic_ir *ir = dnic_alloc(a, sizeof *ir);
    ir->dtype = t;
    ir->batch = batch;
    ir->bufs = dnic_alloc(a, (size_t)maxbufs * sizeof *ir->bufs);
    ir->capbufs = maxbufs;
    ir->blocks = dnic_alloc(a, (size_t)maxblocks * sizeof *ir->blocks);
    ir->capblocks = maxblocks;
    ir->nstages = 1;
    ir->x = ir->y = ir->loss_acc = ir->sg_acc_first = -1;
    return ir;
}

static int kbuf(dnic_arena *a, dnic_ir *ir, const char *name, dnic_buf_kind kind, int rows, int cols)
{
    cr_assert_lt(ir->nbufs, ir->capbufs);
    dnic_buffer_desc *d = &ir->bufs[ir->nbufs];
    d->name = dnic_strdup(a, name);
    d->kind = kind;
    d->dtype = kind == DNIC_BUF_ACC ? DNIC_F64 : ir->dtype;
    d->rows = rows;
    d->cols = cols;
    d->init_order = -1;
    return ir->nbufs++;
}

static dnic_ir_block *kblock(dnic_arena *a, dnic_ir *ir, const char *name, int maxops)
{
    cr_assert_lt(ir->nblocks, ir->capblocks);
    dnic_ir_block *b = &ir->blocks[ir->nblocks++];
    b->name = name;
    b->stage = 0;
    b->phase = DNIC_PHASE_STEP;
    b->ops = dnic_alloc(a, (size_t)maxops * sizeof *b->ops);
    b->cap = maxops;
    return b;
}

static dnic_ir_op *kop(dnic_ir_block *b, dnic_op op, int dst, int s0, int s1, int s2)
{
    cr_assert_lt(b->nops, b->cap);
    dnic_ir_op *o = &b->ops[b->nops++];
    o->op = op;
    o->dst = dst;
    o->src[0] = s0;
    o->src[1] = s1;
    o->src[2] = s2;
    for (int i = 3; i < DNIC_MAX_SRC; i++)
        o->src[i] = -1;
    o->nsrc = dnic_op_nsrc(op);
    o->act = DNIC_ACT_LINEAR;
    o->scratch = -1;
    o->state[0] = o->state[1] = o->state[2] = -1;
    o->hold = -1;
    return o;
}

static long double act_ref(dnic_act a, long double z)
{
    switch (a) {
    case DNIC_ACT_SIGMOID: return 1.0L / (1.0L + expl(-z));
    case DNIC_ACT_TANH: return tanhl(z);
    case DNIC_ACT_RELU: return z > 0 ? z : 0;
    default: return z;
    }
}

/* act'(z) from the activation's output y (docs/semantics.md). */
static long double deriv_ref(dnic_act a, long double y)
{
    switch (a) {
    case DNIC_ACT_SIGMOID: return y * (1 - y);
    case DNIC_ACT_TANH: return 1 - y * y;
    case DNIC_ACT_RELU: return y > 0 ? 1 : 0;
    default: return 1;
    }
}

typedef struct shape {
    int B, K, N;
} shape;

enum { MAXCHECKS = 136 };

typedef struct check {
    const char *name;
    double err, tol;
    bool exact; /* err counts the elements that differ from the same-order reference */
} check;

typedef struct suite_result {
    check c[MAXCHECKS];
    int n;
} suite_result;

static void record(suite_result *r, const char *name, double err, double tol)
{
    cr_assert_lt(r->n, MAXCHECKS);
    r->c[r->n++] = (check){name, err, tol, false};
}

/* The transport of a run of two replicas that hold the same gradient: REDUCE (a call of
 * dnic_replica_sum) must pass the buffer, its element count and dtype, and keep the sum, which is
 * exactly twice the buffer. */
static size_t fake_n;
static int fake_f64 = -1;

static void fake_sum(dnic_comm *c, void *buf, size_t n, bool f64)
{
    (void)c;
    fake_n = n;
    fake_f64 = f64;
    for (size_t i = 0; i < n; i++) {
        if (f64)
            ((double *)buf)[i] *= 2;
        else
            ((float *)buf)[i] *= 2;
    }
}

static void record_exact(suite_result *r, const char *name, double ndiff)
{
    cr_assert_lt(r->n, MAXCHECKS);
    r->c[r->n++] = (check){name, ndiff, 0, true};
}

/* the elementwise activations, for ACT_GRAD, ADD and AFFINE */
static const dnic_act ELEM_ACTS[4] = {DNIC_ACT_SIGMOID, DNIC_ACT_TANH, DNIC_ACT_RELU, DNIC_ACT_LINEAR};
static const char *const DENSE_NAMES[DNIC_ACT_COUNT][2] = {
    {"dense sigmoid", "dense sigmoid+bias"}, {"dense tanh", "dense tanh+bias"}, {"dense relu", "dense relu+bias"},
    {"dense linear", "dense linear+bias"},   {"dense softmax", "dense softmax+bias"},
};
static const char *const ACT_GRAD_NAMES[4] = {"act_grad sigmoid", "act_grad tanh", "act_grad relu", "act_grad linear"};
static const char *const ADD_NAMES[4] = {"add sigmoid", "add tanh", "add relu", "add linear"};
static const char *const AFFINE_NAMES[4] = {"affine sigmoid", "affine tanh", "affine relu", "affine linear"};
static const char *const CONCAT_NAMES[4] = {"concat 2", "concat 3", "concat 4", "concat 5"};
static const char *const SLICE_NAMES[4] = {"slice x", "slice g", "slice inner", "slice last"};
static const char *const RUNNING_NAMES[2] = {"bn_running mean", "bn_running var"};
static const char *const SLICE_ACT_NAMES[2] = {"slice g sigmoid", "slice g tanh"};
static const char *const UPDATE_NAMES[2] = {"update gamma (row 0)", "update beta (row 1)"};
static const char *const ACC_NAMES[5] = {"abs_sum", "abs_sum accumulate", "loss_sum squared", "loss_sum softmax ce",
                                         "loss_sum sigmoid ce"};

/* ---- the same-order reference ----------------------------------------------------------
 * codegen.c promises strict floating point in a fixed order (docs/semantics.md, "Floating
 * point"): dot products summed from zero in index order, then the bias; sigmoid as
 * 1 / (1 + exp(-z)); the batch mean as sum / B; no contraction into FMAs.  This second reference
 * follows that order in the model's dtype, so the kernels must match it exactly (==).  Float32
 * arithmetic is emulated in double with a rounding after every operation, which is exact for
 * +, -, *, / (53 >= 2*24 + 2 bits); exp and tanh call expf and tanhf as the generated code does. */
static double rnd(dnic_dtype t, double v)
{
    return t == DNIC_F32 ? (double)(float)v : v;
}

static double exp_t(dnic_dtype t, double v)
{
    return t == DNIC_F32 ? (double)expf((float)v) : exp(v);
}

/* The float32 vector exp of codegen.c's vexpf, operation for operation in float (ISO C mode:
 * no contraction), for the elements the activation pass handles 8 at a time. */
static double vexpf_ref(double xd)
{
    float x = (float)xd;
    x = -87.33654475f > x ? -87.33654475f : x;
    x = x < 88.72283905f ? x : 88.72283905f;
    float fx = floorf(x * (float)1.44269504088896341 + 0.5f);
    float z = x - fx * 0.693359375f;
    z = z - fx * (float)-2.12194440e-4;
    static const float c[] = {1.9875691500e-4f, 1.3981999507e-3f, 8.3334519073e-3f, 4.1665795894e-2f,
                              1.6666665459e-1f, 5.0000001201e-1f};
    float y = c[0];
    for (int i = 1; i < 6; i++)
        y = y * z + c[i];
    y = y * (z * z) + z + 1.0f;
    int e = (int)fx;
    return (double)(y * (e >= 128 ? INFINITY : ldexpf(1.0f, e)));
}

/* The float32 vector tanh of codegen.c's vtanhf, operation for operation in float: Cephes'
 * polynomial below |x| = 0.625, else 1 - 2 / (e^{2|x|} + 1) with x's sign. */
static double vtanhf_ref(double xd)
{
    float x = (float)xd, ax = fabsf(x);
    float e = (float)vexpf_ref((double)(ax + ax));
    float big = 1.0f - 2.0f / (e + 1.0f);
    if (x < 0.0f)
        big = -big;
    static const double c[] = {-5.70498872745e-3, 2.06390887954e-2, -5.37397155531e-2, 1.33314422036e-1,
                               -3.33332819422e-1};
    float z = x * x, p = (float)c[0];
    for (int i = 1; i < 5; i++)
        p = p * z + (float)c[i];
    float small = p * z * x + x;
    return (double)(ax < 0.625f ? small : big);
}

static double act_t(dnic_dtype t, dnic_act a, double v)
{
    switch (a) {
    case DNIC_ACT_SIGMOID: return rnd(t, 1 / rnd(t, 1 + exp_t(t, -v)));
    case DNIC_ACT_TANH: return t == DNIC_F32 ? (double)tanhf((float)v) : tanh(v);
    case DNIC_ACT_RELU: return v > 0 ? v : 0;
    default: return v;
    }
}

/* gen_act_pass's act(v) for element e of a buffer of n elements: the float32 sigmoid and tanh
 * run over whole 8-float vectors with the vector exp and tanh (at either vector width), and over
 * the rest with libm's. */
static double act_pass_t(dnic_dtype t, dnic_act a, double v, size_t e, size_t n)
{
    if (t == DNIC_F32 && a == DNIC_ACT_SIGMOID && e < n / 8 * 8)
        return rnd(t, 1 / rnd(t, 1 + vexpf_ref(-v)));
    if (t == DNIC_F32 && a == DNIC_ACT_TANH && e < n / 8 * 8)
        return vtanhf_ref(v);
    return act_t(t, a, v);
}

static double sqrt_t(dnic_dtype t, double v)
{
    return t == DNIC_F32 ? (double)sqrtf((float)v) : sqrt(v);
}

/* g * act'(y): δ = g ⊙ f'(h) with f' computed first (docs/semantics.md), so the sigmoid's is
 * g * (y * (1 - y)), the DNI seed's grouping */
static double act_grad_t(dnic_dtype t, dnic_act a, double g, double y)
{
    switch (a) {
    case DNIC_ACT_SIGMOID: return rnd(t, g * rnd(t, y * rnd(t, 1 - y)));
    case DNIC_ACT_TANH: return rnd(t, g * rnd(t, 1 - rnd(t, y * y)));
    case DNIC_ACT_RELU: return g * (y > 0 ? 1 : 0);
    default: return g;
    }
}

/* Counts the elements of `buf` that differ from ref (== comparison, so -0 equals +0). */
static double count_diff(const jprog *j, int buf, const double *ref)
{
    double bad = 0;
    for (size_t i = 0; i < nel(j, buf); i++)
        bad += !(getv(j, buf, i) == ref[i]);
    return bad;
}

/* The sanity test's planted mismatches, in element n/2: 10 * tol * max(1, max|ref|) added to
 * the long double reference, one unit in the last place (of the buffer's dtype) to the
 * same-order one. */
static void plant_ref(long double *ref, size_t n, double tol)
{
    long double mx = 0;
    for (size_t e = 0; e < n; e++)
        mx = fabsl(ref[e]) > mx ? fabsl(ref[e]) : mx;
    ref[n / 2] += 10 * (long double)tol * (mx > 1 ? mx : 1);
}

static void plant_exact(double *e, size_t n, dnic_dtype bt)
{
    e[n / 2] = bt == DNIC_F64 ? nextafter(e[n / 2], INFINITY) : (double)nextafterf((float)e[n / 2], INFINITY);
}

/* Whether `name` is in the NULL-terminated list (NULL: none). */
static bool listed_name(const char *const *list, const char *name)
{
    for (; list && *list; list++)
        if (!strcmp(*list, name))
            return true;
    return false;
}

/* Builds one IR holding every op of ir_ops.def (four blocks), runs it once on seeded random
 * inputs and compares every written buffer with both references.  An op that reads another's
 * result (SLICE reads concat 3; the batch normalisation ops read BN_MEAN's, BN_VAR's, BN_NORM's
 * and BN_DPARAMS's) is compared given the values it read, so that each check is of one op.
 * plant (the sanity test; NULL-terminated, or NULL) names the checks whose two references get
 * a planted mismatch (plant_ref, plant_exact). */
static suite_result run_suite(dnic_dtype t, shape sh, uint32_t seed, const char *const *plant)
{
    const int B = sh.B, K = sh.K, N = sh.N;
    const double lr = 0.37;
    /* batch normalisation as layer_dense.c sets it: the running variance unbiased */
    const double eps = 1e-5, mom = 0.1, vscale = B > 1 ? (double)B / (B - 1) : 1;
    const double tol = t == DNIC_F64 ? TOL_F64 : TOL_F32;
    dnic_arena *a = dnic_arena_new();
    dnic_ir *ir = kir_new(a, t, B, 128, 5);
    /* inputs: PARAM so that they are allocated and count as defined for the verifier */
    int X = kbuf(a, ir, "X", DNIC_BUF_PARAM, B, K), W = kbuf(a, ir, "W", DNIC_BUF_PARAM, K, N);
    int bias = kbuf(a, ir, "b", DNIC_BUF_PARAM, 1, N), G = kbuf(a, ir, "G", DNIC_BUF_PARAM, B, N);
    int A = kbuf(a, ir, "A", DNIC_BUF_PARAM, B, N), Y = kbuf(a, ir, "Y", DNIC_BUF_PARAM, B, N);
    int P = kbuf(a, ir, "P", DNIC_BUF_PARAM, B, N);
    int Wu = kbuf(a, ir, "Wu", DNIC_BUF_PARAM, K, N), Bu = kbuf(a, ir, "Bu", DNIC_BUF_PARAM, 1, N);
    int Wm = kbuf(a, ir, "Wm", DNIC_BUF_PARAM, K, N); /* Wu's values, updated with train.grad = mean */
    /* a bias so large that exp overflows unless softmax subtracts the row's maximum */
    int bshift = kbuf(a, ir, "bshift", DNIC_BUF_PARAM, 1, N);
    const double shift = t == DNIC_F64 ? 800 : 90;
    int dense[DNIC_ACT_COUNT][2], ag[4], addb[4], cat[4], sl[4], aff[4];
    dnic_ir_block *fwd = kblock(a, ir, "fwd", 32);
    for (int act = 0; act < DNIC_ACT_COUNT; act++)
        for (int hb = 0; hb < 2; hb++) {
            dense[act][hb] = kbuf(a, ir, DENSE_NAMES[act][hb], DNIC_BUF_TEMP, B, N);
            kop(fwd, DNIC_OP_DENSE, dense[act][hb], X, W, hb ? bias : -1)->act = (dnic_act)act;
        }
    int dshift = kbuf(a, ir, "dense softmax+shifted bias", DNIC_BUF_TEMP, B, N);
    kop(fwd, DNIC_OP_DENSE, dshift, X, W, bshift)->act = DNIC_ACT_SOFTMAX;
    /* CONCAT of 2 to 5 sources: [X | G | A | Y | P] cut after `parts` */
    const int catsrc[5] = {X, G, A, Y, P};
    for (int c = 0; c < 4; c++) {
        cat[c] = kbuf(a, ir, CONCAT_NAMES[c], DNIC_BUF_TEMP, B, K + (c + 1) * N);
        dnic_ir_op *o = kop(fwd, DNIC_OP_CONCAT, cat[c], X, G, -1);
        for (int s = 2; s < c + 2; s++)
            o->src[s] = catsrc[s];
    }
    /* SLICE of concat 3 = [X | G | A]: X back, G back, all but the first and last columns, the
     * last column */
    const int sl_off[4] = {0, K, 1, K + 2 * N - 1}, sl_w[4] = {K, N, K + 2 * N - 2, 1};
    for (int s = 0; s < 4; s++) {
        sl[s] = kbuf(a, ir, SLICE_NAMES[s], DNIC_BUF_TEMP, B, sl_w[s]);
        kop(fwd, DNIC_OP_SLICE, sl[s], cat[1], -1, -1)->off = sl_off[s];
    }
    /* and G back out of it through an activation, as an lstm takes its gates out of z */
    int slact[2];
    for (int s = 0; s < 2; s++) {
        slact[s] = kbuf(a, ir, SLICE_ACT_NAMES[s], DNIC_BUF_TEMP, B, N);
        dnic_ir_op *o = kop(fwd, DNIC_OP_SLICE, slact[s], cat[1], -1, -1);
        o->off = K;
        o->act = s ? DNIC_ACT_TANH : DNIC_ACT_SIGMOID;
    }
    for (int i = 0; i < 4; i++) {
        addb[i] = kbuf(a, ir, ADD_NAMES[i], DNIC_BUF_TEMP, B, N);
        kop(fwd, DNIC_OP_ADD, addb[i], G, A, -1)->act = ELEM_ACTS[i];
    }
    dnic_ir_block *bwd = kblock(a, ir, "bwd", 24);
    for (int i = 0; i < 4; i++) {
        ag[i] = kbuf(a, ir, ACT_GRAD_NAMES[i], DNIC_BUF_TEMP, B, N);
        kop(bwd, DNIC_OP_ACT_GRAD, ag[i], G, A, -1)->act = ELEM_ACTS[i];
    }
    int sub = kbuf(a, ir, "sub", DNIC_BUF_TEMP, B, N);
    kop(bwd, DNIC_OP_SUB, sub, G, A, -1);
    /* an SG's head: G in [-1, 1] scaled by 0.7 and bounded by 0.5, so both bounds and the
     * inside are hit */
    int scl = kbuf(a, ir, "scale_clip", DNIC_BUF_TEMP, B, N);
    dnic_ir_op *sco = kop(bwd, DNIC_OP_SCALE_CLIP, scl, G, -1, -1);
    sco->scale = 0.7;
    sco->clip = 0.5;
    int mnt = kbuf(a, ir, "matmul_nt", DNIC_BUF_TEMP, B, K);
    /* as ir_build.c makes it: with a TEMP scratch buffer for W^T */
    kop(bwd, DNIC_OP_MATMUL_NT, mnt, G, W, -1)->scratch = kbuf(a, ir, "W.t", DNIC_BUF_TEMP, N, K);
    dnic_ir_op *sw = kop(bwd, DNIC_OP_SGD_W, Wu, X, G, -1); /* and, where it reads x^T, one for that */
    sw->lr = lr;
    if (dnic_sgd_w_transposes(K, B, t))
        sw->scratch = kbuf(a, ir, "X.t", DNIC_BUF_TEMP, K, B);
    dnic_ir_op *swm = kop(bwd, DNIC_OP_SGD_W, Wm, X, G, -1); /* train.grad = mean: the sum / B, then lr */
    swm->lr = lr;
    swm->grad_div = B;
    if (dnic_sgd_w_transposes(K, B, t))
        swm->scratch = kbuf(a, ir, "X.t mean", DNIC_BUF_TEMP, K, B);
    kop(bwd, DNIC_OP_SGD_B, Bu, G, -1, -1)->lr = lr;
    /* the message times relu'(X), after the updates, as a layer's backward pass has it */
    int mntg = kbuf(a, ir, "matmul_nt act_grad", DNIC_BUF_TEMP, B, K);
    kop(bwd, DNIC_OP_ACT_GRAD, mntg, mnt, X, -1)->act = DNIC_ACT_RELU;
    /* a recurrent chunk's gradients: GRAD_W of X^T.G, then += X^T.A; column sums of G; the
     * update of a whole matrix (Wr) from one; PLACE of X and G into [X | G] */
    int gw = kbuf(a, ir, "grad_w", DNIC_BUF_TEMP, K, N), gcol = kbuf(a, ir, "grad_w ones", DNIC_BUF_TEMP, 1, N);
    int Wr = kbuf(a, ir, "Wr", DNIC_BUF_PARAM, K, N), plc = kbuf(a, ir, "place", DNIC_BUF_TEMP, B, K + N);
    dnic_ir_block *rec = kblock(a, ir, "rec", 16);
    kop(rec, DNIC_OP_GRAD_W, gw, X, G, -1);
    int gw1 = kbuf(a, ir, "grad_w first", DNIC_BUF_TEMP, K, N);
    kop(rec, DNIC_OP_GRAD_W, gw1, X, G, -1);
    kop(rec, DNIC_OP_GRAD_W, gw, X, A, -1)->accumulate = true;
    kop(rec, DNIC_OP_GRAD_W, gcol, -1, G, -1);
    /* REDUCE: the column sums again, then summed over (fake) replicas, test_replica_sum below */
    int gsum = kbuf(a, ir, "reduce", DNIC_BUF_TEMP, 1, N);
    kop(rec, DNIC_OP_GRAD_W, gsum, -1, G, -1);
    kop(rec, DNIC_OP_REDUCE, gsum, -1, -1, -1)->accumulate = true;
    kop(rec, DNIC_OP_UPDATE, Wr, gw, -1, -1)->lr = lr;
    kop(rec, DNIC_OP_PLACE, plc, G, -1, -1)->off = K;
    kop(rec, DNIC_OP_PLACE, plc, X, -1, -1)->off = 0;
    /* a chunk's steps stacked: [G; A], then GRAD_W of X^T and its first B rows (G), and the
     * column sums of all 2B rows */
    int stk = kbuf(a, ir, "stack", DNIC_BUF_TEMP, 2 * B, N), gwr = kbuf(a, ir, "grad_w first rows", DNIC_BUF_TEMP, K, N);
    int gcs = kbuf(a, ir, "grad_w ones stacked", DNIC_BUF_TEMP, 1, N);
    kop(rec, DNIC_OP_STACK, stk, G, -1, -1)->off = 0;
    kop(rec, DNIC_OP_STACK, stk, A, -1, -1)->off = B;
    kop(rec, DNIC_OP_GRAD_W, gwr, X, stk, -1);
    kop(rec, DNIC_OP_GRAD_W, gcs, -1, stk, -1);
    /* an lstm's elementwise work: MUL (SLICEs with an activation are in fwd) */
    int mul = kbuf(a, ir, "mul", DNIC_BUF_TEMP, B, N);
    kop(rec, DNIC_OP_MUL, mul, G, A, -1);
    /* an SG target = mix: G * lambda + A * (1 - lambda) */
    const double lam = 0.3;
    int mixb = kbuf(a, ir, "mix", DNIC_BUF_TEMP, B, N);
    kop(rec, DNIC_OP_MIX, mixb, G, A, -1)->scale = lam;
    dnic_ir_block *acc = kblock(a, ir, "acc", 8);
    int abs1 = kbuf(a, ir, ACC_NAMES[0], DNIC_BUF_ACC, 1, 1), abs2 = kbuf(a, ir, ACC_NAMES[1], DNIC_BUF_ACC, 1, 1);
    int lsq = kbuf(a, ir, ACC_NAMES[2], DNIC_BUF_ACC, 1, 1), lsce = kbuf(a, ir, ACC_NAMES[3], DNIC_BUF_ACC, 1, 1);
    int lbce = kbuf(a, ir, ACC_NAMES[4], DNIC_BUF_ACC, 1, 1);
    kop(acc, DNIC_OP_ABS_SUM, abs1, G, -1, -1)->accumulate = false;
    kop(acc, DNIC_OP_ABS_SUM, abs2, A, -1, -1)->accumulate = true;
    kop(acc, DNIC_OP_LOSS_SUM, lsq, A, Y, -1)->act = DNIC_ACT_LINEAR;
    kop(acc, DNIC_OP_LOSS_SUM, lsce, P, Y, -1)->act = DNIC_ACT_SOFTMAX;
    kop(acc, DNIC_OP_LOSS_SUM, lbce, P, Y, -1)->act = DNIC_ACT_SIGMOID;
    /* batch normalisation as layer_dense.c builds it, on Z, with G as dL/dy: the statistics,
     * x-hat, the scale and shift, the running averages, the backward pass, then the updates of
     * gamma and beta from BN_DPARAMS's rows */
    int Z = kbuf(a, ir, "Z", DNIC_BUF_PARAM, B, N), gam = kbuf(a, ir, "gamma", DNIC_BUF_PARAM, 1, N);
    int bet = kbuf(a, ir, "beta", DNIC_BUF_PARAM, 1, N);
    int run[2] = {kbuf(a, ir, "running_mean", DNIC_BUF_PARAM, 1, N), kbuf(a, ir, "running_var", DNIC_BUF_PARAM, 1, N)};
    dnic_ir_block *bn = kblock(a, ir, "bn", 16);
    int mean = kbuf(a, ir, "bn_mean", DNIC_BUF_TEMP, 1, N), var = kbuf(a, ir, "bn_var", DNIC_BUF_TEMP, 1, N);
    kop(bn, DNIC_OP_BN_MEAN, mean, Z, -1, -1);
    kop(bn, DNIC_OP_BN_VAR, var, Z, mean, -1);
    int xhat = kbuf(a, ir, "bn_norm", DNIC_BUF_TEMP, B, N);
    kop(bn, DNIC_OP_BN_NORM, xhat, Z, mean, var)->eps = eps;
    for (int i = 0; i < 4; i++) {
        aff[i] = kbuf(a, ir, AFFINE_NAMES[i], DNIC_BUF_TEMP, B, N);
        kop(bn, DNIC_OP_AFFINE, aff[i], xhat, gam, bet)->act = ELEM_ACTS[i];
    }
    for (int s = 0; s < 2; s++) {
        dnic_ir_op *o = kop(bn, DNIC_OP_BN_RUNNING, run[s], s ? var : mean, -1, -1);
        o->momentum = mom;
        o->scale = s ? vscale : 1;
    }
    int dp = kbuf(a, ir, "bn_dparams", DNIC_BUF_TEMP, 2, N), bng = kbuf(a, ir, "bn_grad", DNIC_BUF_TEMP, B, N);
    kop(bn, DNIC_OP_BN_DPARAMS, dp, G, xhat, -1);
    dnic_ir_op *bgo = kop(bn, DNIC_OP_BN_GRAD, bng, G, xhat, var);
    bgo->src[3] = gam;
    bgo->src[4] = dp;
    bgo->eps = eps;
    for (int s = 0; s < 2; s++) {
        dnic_ir_op *o = kop(bn, DNIC_OP_UPDATE, s ? bet : gam, dp, -1, -1);
        o->lr = lr;
        o->off = s;
    }
    /* every op of the table is here */
    bool seen[DNIC_OP_COUNT] = {false};
    for (int bi = 0; bi < ir->nblocks; bi++)
        for (int oi = 0; oi < ir->blocks[bi].nops; oi++)
            seen[ir->blocks[bi].ops[oi].op] = true;
    for (int op = 0; op < DNIC_OP_COUNT; op++)
        cr_assert(seen[op], "part 1 does not test %s", dnic_op_name((dnic_op)op));
    char *vbuf = NULL;
    size_t vlen = 0;
    FILE *vf = open_memstream(&vbuf, &vlen);
    bool verified = dnic_ir_verify(ir, vf);
    fclose(vf);
    cr_assert(verified, "the hand-built IR does not verify: %s", vbuf);
    free(vbuf);

    jprog j;
    jprog_make(&j, ir);
    dnic_rng r;
    dnic_rng_seed(&r, seed);
    double wscale = sqrt(3.0 / K); /* keeps x.W of order 1 whatever K is */
    for (size_t i = 0; i < nel(&j, X); i++)
        setv(&j, X, i, unif(&r, -1, 1));
    for (size_t i = 0; i < nel(&j, W); i++)
        setv(&j, W, i, unif(&r, -1, 1) * wscale);
    for (size_t i = 0; i < (size_t)N; i++) {
        setv(&j, bias, i, unif(&r, -1, 1));
        setv(&j, Bu, i, unif(&r, -1, 1));
        setv(&j, bshift, i, shift + unif(&r, -1, 1));
    }
    for (size_t i = 0; i < nel(&j, Wu); i++)
        setv(&j, Wu, i, unif(&r, -1, 1));
    for (size_t i = 0; i < nel(&j, Wu); i++)
        setv(&j, Wm, i, getv(&j, Wu, i));
    for (size_t i = 0; i < nel(&j, G); i++) {
        setv(&j, G, i, unif(&r, -1, 1));
        setv(&j, A, i, i % 7 == 3 ? 0.0 : unif(&r, -1, 1)); /* relu' at exactly 0 */
        /* labels in [0,1] with exact 0s and 1s; probabilities likewise (clamped logs) */
        setv(&j, Y, i, i % 5 == 0 ? 0.0 : i % 5 == 1 ? 1.0 : unif(&r, 0, 1));
        setv(&j, P, i, i % 6 == 2 ? 0.0 : i % 6 == 4 ? 1.0 : unif(&r, 0, 1));
        double zv = unif(&r, -2, 3); /* one constant column: a variance of rounding errors */
        setv(&j, Z, i, N > 1 && i % (size_t)N == (size_t)N / 2 ? 0.7 : zv);
    }
    for (size_t i = 0; i < (size_t)N; i++) {
        setv(&j, gam, i, unif(&r, 0.5, 1.5));
        setv(&j, bet, i, unif(&r, -0.5, 0.5));
        setv(&j, run[0], i, unif(&r, -1, 1));
        setv(&j, run[1], i, unif(&r, 0.5, 2));
    }
    for (size_t i = 0; i < nel(&j, Wr); i++)
        setv(&j, Wr, i, unif(&r, -1, 1));
    const double init_acc[5] = {123.25, 7.5, 1.5, 0.25, -2.0};
    const int accs[5] = {abs1, abs2, lsq, lsce, lbce};
    for (int i = 0; i < 5; i++)
        setv(&j, accs[i], 0, init_acc[i]);

    long double *x = copy_ld(&j, X), *w = copy_ld(&j, W), *b = copy_ld(&j, bias), *g = copy_ld(&j, G);
    long double *av = copy_ld(&j, A), *y = copy_ld(&j, Y), *p = copy_ld(&j, P);
    long double *wu = copy_ld(&j, Wu), *bu = copy_ld(&j, Bu), *bs = copy_ld(&j, bshift);
    double *bsd = copy_d(&j, bshift), *xd = copy_d(&j, X), *wd = copy_d(&j, W), *bd = copy_d(&j, bias), *gd = copy_d(&j, G);
    double *ad = copy_d(&j, A), *yd = copy_d(&j, Y), *pd = copy_d(&j, P), *wud = copy_d(&j, Wu), *bud = copy_d(&j, Bu);
    double *zd = copy_d(&j, Z), *gamd = copy_d(&j, gam), *betd = copy_d(&j, bet);
    double *rund[2] = {copy_d(&j, run[0]), copy_d(&j, run[1])};
    double *wrd = copy_d(&j, Wr);
    dnic_comm two = {.replicas = 2, .sum = fake_sum};
    dnic_replica_use(&two);
    jprog_run(&j);
    dnic_replica_use(NULL);
    double *gwd = copy_d(&j, gw), *gw1d = copy_d(&j, gw1); /* what UPDATE and the += read */
    /* the values the batch normalisation ops read from each other (float64 holds them exactly) */
    double *meand = copy_d(&j, mean), *vard = copy_d(&j, var), *xhatd = copy_d(&j, xhat), *dpd = copy_d(&j, dp);

    suite_result res = {0};
    size_t BN = (size_t)B * N;
    const size_t maxn = (size_t)B * (K + 4 * N) + (size_t)K * N + 1; /* the largest buffer and more */
    long double *ref = malloc(maxn * sizeof *ref);
    long double *z = malloc((BN + 1) * sizeof *z);
    cr_assert(ref && z);
#define COMPARE(buf, name, n, tl)                                                                                   \
    do {                                                                                                            \
        cr_assert_eq(nel(&j, buf), (size_t)(n), "%s", name);                                                       \
        if (listed_name(plant, name))                                                                               \
            plant_ref(ref, n, tl);                                                                                  \
        double *got_ = copy_d(&j, buf);                                                                             \
        record(&res, name, buf_err(got_, ref, n), tl);                                                              \
        free(got_);                                                                                                 \
    } while (0)

    /* DENSE: z = x.W (exact in long double), then bias, then the activation */
    for (int i = 0; i < B; i++)
        for (int n = 0; n < N; n++) {
            long double s = 0;
            for (int k = 0; k < K; k++)
                s += x[(size_t)i * K + k] * w[(size_t)k * N + n];
            z[(size_t)i * N + n] = s;
        }
    for (int act = 0; act < DNIC_ACT_COUNT; act++)
        for (int hb = 0; hb < 2; hb++) {
            for (int i = 0; i < B; i++) {
                long double *row = ref + (size_t)i * N, mx = -INFINITY, sum = 0;
                for (int n = 0; n < N; n++) {
                    row[n] = z[(size_t)i * N + n] + (hb ? b[n] : 0);
                    if (row[n] > mx)
                        mx = row[n];
                }
                if (act == DNIC_ACT_SOFTMAX) {
                    for (int n = 0; n < N; n++)
                        sum += row[n] = expl(row[n] - mx);
                    for (int n = 0; n < N; n++)
                        row[n] /= sum;
                } else {
                    for (int n = 0; n < N; n++)
                        row[n] = act_ref((dnic_act)act, row[n]);
                }
            }
            COMPARE(dense[act][hb], DENSE_NAMES[act][hb], BN, tol);
        }
    for (int i = 0; i < B; i++) {
        long double *row = ref + (size_t)i * N, mx = -INFINITY, sum = 0;
        for (int n = 0; n < N; n++) {
            row[n] = z[(size_t)i * N + n] + bs[n];
            mx = row[n] > mx ? row[n] : mx;
        }
        for (int n = 0; n < N; n++)
            sum += row[n] = expl(row[n] - mx);
        for (int n = 0; n < N; n++)
            row[n] /= sum;
    }
    COMPARE(dshift, "dense softmax+shifted bias", BN, tol);
    /* CONCAT: row i of [X | G | A | Y | P] cut after `parts` sources */
    const long double *const catv[5] = {x, g, av, y, p};
    for (int parts = 2; parts <= 5; parts++) {
        int cw = K + (parts - 1) * N;
        for (int i = 0; i < B; i++)
            for (int c = 0; c < cw; c++)
                ref[(size_t)i * cw + c] = c < K ? x[(size_t)i * K + c] : catv[1 + (c - K) / N][(size_t)i * N + (c - K) % N];
        COMPARE(cat[parts - 2], CONCAT_NAMES[parts - 2], (size_t)B * cw, tol);
    }
    /* SLICE: columns off .. off+w of [X | G | A] */
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < B; i++)
            for (int c = 0; c < sl_w[s]; c++) {
                int cc = sl_off[s] + c;
                ref[(size_t)i * sl_w[s] + c] = cc < K ? x[(size_t)i * K + cc] : catv[1 + (cc - K) / N][(size_t)i * N + (cc - K) % N];
            }
        COMPARE(sl[s], SLICE_NAMES[s], (size_t)B * sl_w[s], tol);
    }
    /* ADD: act(G + A) */
    for (int a4 = 0; a4 < 4; a4++) {
        for (size_t e = 0; e < BN; e++)
            ref[e] = act_ref(ELEM_ACTS[a4], g[e] + av[e]);
        COMPARE(addb[a4], ADD_NAMES[a4], BN, tol);
    }
    /* ACT_GRAD, SUB */
    for (int a4 = 0; a4 < 4; a4++) {
        for (size_t e = 0; e < BN; e++)
            ref[e] = g[e] * deriv_ref(ELEM_ACTS[a4], av[e]);
        COMPARE(ag[a4], ACT_GRAD_NAMES[a4], BN, tol);
    }
    for (size_t e = 0; e < BN; e++)
        ref[e] = g[e] - av[e];
    COMPARE(sub, "sub", BN, tol);
    for (size_t e = 0; e < BN; e++) {
        long double v = g[e] * 0.7L;
        ref[e] = v > 0.5L ? 0.5L : v < -0.5L ? -0.5L : v;
    }
    COMPARE(scl, "scale_clip", BN, tol);
    /* MATMUL_NT: [B,K] = G[B,N] . W[K,N]^T */
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) {
            long double s = 0;
            for (int n = 0; n < N; n++)
                s += g[(size_t)i * N + n] * w[(size_t)k * N + n];
            ref[(size_t)i * K + k] = s;
        }
    COMPARE(mnt, "matmul_nt", (size_t)B * K, tol);
    for (size_t e = 0; e < (size_t)B * K; e++)
        ref[e] *= deriv_ref(DNIC_ACT_RELU, x[e]);
    COMPARE(mntg, "matmul_nt act_grad", (size_t)B * K, tol);
    /* SGD_W: Wu -= (X^T . G) * lr;  SGD_B: Bu -= mean_rows(G) * lr.  lr as the kernel has it. */
    long double lrt = t == DNIC_F64 ? (long double)lr : (long double)(float)lr;
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            long double s = 0;
            for (int i = 0; i < B; i++)
                s += x[(size_t)i * K + k] * g[(size_t)i * N + n];
            ref[(size_t)k * N + n] = wu[(size_t)k * N + n] - s * lrt;
        }
    COMPARE(Wu, "sgd_w", (size_t)K * N, tol);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            long double s = 0;
            for (int i = 0; i < B; i++)
                s += x[(size_t)i * K + k] * g[(size_t)i * N + n];
            ref[(size_t)k * N + n] = wu[(size_t)k * N + n] - s / B * lrt;
        }
    COMPARE(Wm, "sgd_w grad=mean", (size_t)K * N, tol);
    for (int n = 0; n < N; n++) {
        long double s = 0;
        for (int i = 0; i < B; i++)
            s += g[(size_t)i * N + n];
        ref[n] = bu[n] - s / B * lrt;
    }
    COMPARE(Bu, "sgd_b", (size_t)N, tol);
    /* accumulators, in float64 whatever the dtype */
    long double sa = 0, sb = init_acc[1], sq = init_acc[2], sce = init_acc[3], bce = init_acc[4];
    const long double tiny = 1e-300;
    for (size_t e = 0; e < BN; e++) {
        sa += fabsl(g[e]);
        sb += fabsl(av[e]);
        long double d = av[e] - y[e];
        sq += 0.5L * d * d;
        long double pp = p[e] > tiny ? p[e] : tiny, q = 1 - p[e] > tiny ? 1 - p[e] : tiny;
        sce += -y[e] * logl(pp);
        bce += -(y[e] * logl(pp) + (1 - y[e]) * logl(q));
    }
    const long double accref[5] = {sa, sb, sq, sce, bce};
    for (int i = 0; i < 5; i++) {
        ref[0] = accref[i];
        COMPARE(accs[i], ACC_NAMES[i], 1, TOL_ACC);
    }
    /* batch normalisation, each op given what it read: BN_MEAN and BN_VAR sum over the batch */
    for (int n = 0; n < N; n++) {
        long double s = 0;
        for (int i = 0; i < B; i++)
            s += zd[(size_t)i * N + n];
        ref[n] = s / B;
    }
    COMPARE(mean, "bn_mean", (size_t)N, tol);
    for (int n = 0; n < N; n++) {
        long double s = 0;
        for (int i = 0; i < B; i++) {
            long double d = (long double)zd[(size_t)i * N + n] - meand[n];
            s += d * d;
        }
        ref[n] = s / B;
    }
    COMPARE(var, "bn_var", (size_t)N, tol);
    for (size_t e = 0; e < BN; e++)
        ref[e] = ((long double)zd[e] - meand[e % N]) / sqrtl((long double)vard[e % N] + eps);
    COMPARE(xhat, "bn_norm", BN, tol);
    for (int a4 = 0; a4 < 4; a4++) {
        for (size_t e = 0; e < BN; e++)
            ref[e] = act_ref(ELEM_ACTS[a4], (long double)xhatd[e] * gamd[e % N] + betd[e % N]);
        COMPARE(aff[a4], AFFINE_NAMES[a4], BN, tol);
    }
    for (int s = 0; s < 2; s++) {
        for (int n = 0; n < N; n++)
            ref[n] = (1 - (long double)mom) * rund[s][n] + (long double)mom * ((s ? vscale : 1) * (long double)(s ? vard : meand)[n]);
        COMPARE(run[s], RUNNING_NAMES[s], (size_t)N, tol);
    }
    for (int n = 0; n < N; n++) {
        long double dg = 0, db = 0;
        for (int i = 0; i < B; i++) {
            dg += (long double)gd[(size_t)i * N + n] * xhatd[(size_t)i * N + n];
            db += gd[(size_t)i * N + n];
        }
        ref[n] = dg;
        ref[N + n] = db;
    }
    COMPARE(dp, "bn_dparams", 2 * (size_t)N, tol);
    for (size_t e = 0; e < BN; e++) {
        size_t n = e % N;
        ref[e] = ((B * (long double)gd[e] - dpd[N + n]) - (long double)xhatd[e] * dpd[n]) *
                 (gamd[n] / sqrtl((long double)vard[n] + eps) / B);
    }
    COMPARE(bng, "bn_grad", BN, tol);
    /* UPDATE: gamma -= dgamma * lr, beta -= dbeta * lr (BN_DPARAMS's rows 0 and 1) */
    for (int s = 0; s < 2; s++) {
        for (int n = 0; n < N; n++)
            ref[n] = (s ? betd : gamd)[n] - dpd[(size_t)s * N + n] * lrt;
        COMPARE(s ? bet : gam, UPDATE_NAMES[s], (size_t)N, tol);
    }
    /* GRAD_W: X^T.G, the sum with X^T.A, G's column sums; UPDATE: Wr -= grad_w * lr; PLACE */
    for (int acc2 = 0; acc2 < 2; acc2++) {
        for (int k = 0; k < K; k++)
            for (int n = 0; n < N; n++) {
                long double s1 = 0;
                for (int i = 0; i < B; i++)
                    s1 += x[(size_t)i * K + k] * (g[(size_t)i * N + n] + (acc2 ? av[(size_t)i * N + n] : 0));
                ref[(size_t)k * N + n] = s1;
            }
        COMPARE(acc2 ? gw : gw1, acc2 ? "grad_w accumulate" : "grad_w first", (size_t)K * N, tol);
    }
    for (int n = 0; n < N; n++) {
        ref[n] = 0;
        for (int i = 0; i < B; i++)
            ref[n] += g[(size_t)i * N + n];
    }
    COMPARE(gcol, "grad_w ones", (size_t)N, tol);
    double reduce_diff = fake_n == (size_t)N && fake_f64 == (t == DNIC_F64) ? 0 : (double)N;
    for (int n = 0; n < N; n++) /* exact in either pass: doubling rounds nothing */
        reduce_diff += getv(&j, gsum, (size_t)n) != 2 * getv(&j, gcol, (size_t)n);
    record_exact(&res, "reduce (two replicas)", reduce_diff);
    for (size_t e2 = 0; e2 < (size_t)K * N; e2++)
        ref[e2] = wrd[e2] - gwd[e2] * lrt;
    COMPARE(Wr, "update matrix", (size_t)K * N, tol);
    for (int i = 0; i < B; i++)
        for (int c = 0; c < K + N; c++)
            ref[(size_t)i * (K + N) + c] = c < K ? x[(size_t)i * K + c] : g[(size_t)i * N + c - K];
    COMPARE(plc, "place", (size_t)B * (K + N), tol);
    for (size_t e2 = 0; e2 < 2 * BN; e2++)
        ref[e2] = e2 < BN ? g[e2] : av[e2 - BN];
    COMPARE(stk, "stack", 2 * BN, tol);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            long double s1 = 0;
            for (int i = 0; i < B; i++)
                s1 += x[(size_t)i * K + k] * g[(size_t)i * N + n];
            ref[(size_t)k * N + n] = s1;
        }
    COMPARE(gwr, "grad_w first rows", (size_t)K * N, tol);
    for (int n = 0; n < N; n++) {
        ref[n] = 0;
        for (int i = 0; i < B; i++)
            ref[n] += g[(size_t)i * N + n] + av[(size_t)i * N + n];
    }
    COMPARE(gcs, "grad_w ones stacked", (size_t)N, tol);
    for (size_t e2 = 0; e2 < BN; e2++)
        ref[e2] = g[e2] * av[e2];
    COMPARE(mul, "mul", BN, tol);
    for (size_t e2 = 0; e2 < BN; e2++)
        ref[e2] = (long double)g[e2] * lam + (long double)av[e2] * (1 - (long double)lam);
    COMPARE(mixb, "mix", BN, tol);
    for (int s2 = 0; s2 < 2; s2++) {
        for (size_t e2 = 0; e2 < BN; e2++)
            ref[e2] = act_ref(s2 ? DNIC_ACT_TANH : DNIC_ACT_SIGMOID, g[e2]);
        COMPARE(slact[s2], SLICE_ACT_NAMES[s2], BN, tol);
    }
#undef COMPARE

    /* the same-order reference: every element equal.  The float32 sigmoid runs over whole
     * 8-float vectors with the vector exp (at either vector width), and over the rest with
     * libm's (act_pass_t). */
    double *e = malloc(maxn * sizeof *e);
    cr_assert_not_null(e);
#define EXACT(buf, name, ev)                                                                                        \
    do {                                                                                                            \
        if (listed_name(plant, name))                                                                               \
            plant_exact(ev, nel(&j, buf), j.p.bufs[buf].dtype);                                                     \
        record_exact(&res, name, count_diff(&j, buf, ev));                                                          \
    } while (0)
    for (int act = 0; act < DNIC_ACT_COUNT; act++)
        for (int hb = 0; hb < 2; hb++) {
            for (int i = 0; i < B; i++) {
                double *row = e + (size_t)i * N, mx = -INFINITY, sum = 0;
                for (int n = 0; n < N; n++) {
                    double acc_ = 0;
                    for (int k = 0; k < K; k++)
                        acc_ = rnd(t, acc_ + rnd(t, xd[(size_t)i * K + k] * wd[(size_t)k * N + n]));
                    row[n] = hb ? rnd(t, acc_ + bd[n]) : acc_;
                    mx = row[n] > mx ? row[n] : mx;
                }
                for (int n = 0; n < N; n++)
                    if (act == DNIC_ACT_SOFTMAX)
                        sum = rnd(t, sum + (row[n] = exp_t(t, rnd(t, row[n] - mx))));
                    else
                        row[n] = act_pass_t(t, (dnic_act)act, row[n], (size_t)i * N + n, BN);
                if (act == DNIC_ACT_SOFTMAX)
                    for (int n = 0; n < N; n++)
                        row[n] = rnd(t, row[n] / sum);
            }
            EXACT(dense[act][hb], DENSE_NAMES[act][hb], e);
        }
    for (int i = 0; i < B; i++) {
        double *row = e + (size_t)i * N, mx = -INFINITY, sum = 0;
        for (int n = 0; n < N; n++) {
            double acc_ = 0;
            for (int k = 0; k < K; k++)
                acc_ = rnd(t, acc_ + rnd(t, xd[(size_t)i * K + k] * wd[(size_t)k * N + n]));
            row[n] = rnd(t, acc_ + bsd[n]);
            mx = row[n] > mx ? row[n] : mx;
        }
        for (int n = 0; n < N; n++)
            sum = rnd(t, sum + (row[n] = exp_t(t, rnd(t, row[n] - mx))));
        for (int n = 0; n < N; n++)
            row[n] = rnd(t, row[n] / sum);
    }
    EXACT(dshift, "dense softmax+shifted bias", e);
    const double *const catd[5] = {xd, gd, ad, yd, pd};
    for (int parts = 2; parts <= 5; parts++) {
        int wdt = K + (parts - 1) * N;
        for (int i = 0; i < B; i++)
            for (int c = 0; c < wdt; c++)
                e[(size_t)i * wdt + c] = c < K ? xd[(size_t)i * K + c] : catd[1 + (c - K) / N][(size_t)i * N + (c - K) % N];
        EXACT(cat[parts - 2], CONCAT_NAMES[parts - 2], e);
    }
    for (int s = 0; s < 4; s++) {
        for (int i = 0; i < B; i++)
            for (int c = 0; c < sl_w[s]; c++) {
                int cc = sl_off[s] + c;
                e[(size_t)i * sl_w[s] + c] = cc < K ? xd[(size_t)i * K + cc] : catd[1 + (cc - K) / N][(size_t)i * N + (cc - K) % N];
            }
        EXACT(sl[s], SLICE_NAMES[s], e);
    }
    for (int a4 = 0; a4 < 4; a4++) { /* the sum, then gen_act_pass over the whole buffer */
        for (size_t k = 0; k < BN; k++)
            e[k] = act_pass_t(t, ELEM_ACTS[a4], rnd(t, gd[k] + ad[k]), k, BN);
        EXACT(addb[a4], ADD_NAMES[a4], e);
    }
    for (int a4 = 0; a4 < 4; a4++) {
        for (size_t k = 0; k < BN; k++)
            e[k] = act_grad_t(t, ELEM_ACTS[a4], gd[k], ad[k]);
        EXACT(ag[a4], ACT_GRAD_NAMES[a4], e);
    }
    for (size_t k = 0; k < BN; k++)
        e[k] = rnd(t, gd[k] - ad[k]);
    EXACT(sub, "sub", e);
    for (size_t k = 0; k < BN; k++) {
        double v = rnd(t, gd[k] * rnd(t, 0.7)), c5 = rnd(t, 0.5);
        e[k] = v > c5 ? c5 : v < -c5 ? -c5 : v;
    }
    EXACT(scl, "scale_clip", e);
    for (int i = 0; i < B; i++)
        for (int k = 0; k < K; k++) {
            double acc_ = 0;
            for (int n = 0; n < N; n++)
                acc_ = rnd(t, acc_ + rnd(t, gd[(size_t)i * N + n] * wd[(size_t)k * N + n]));
            e[(size_t)i * K + k] = acc_;
        }
    EXACT(mnt, "matmul_nt", e);
    for (size_t k = 0; k < (size_t)B * K; k++)
        e[k] = act_grad_t(t, DNIC_ACT_RELU, e[k], xd[k]);
    EXACT(mntg, "matmul_nt act_grad", e);
    double lrd = rnd(t, lr);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            double acc_ = 0;
            for (int i = 0; i < B; i++)
                acc_ = rnd(t, acc_ + rnd(t, xd[(size_t)i * K + k] * gd[(size_t)i * N + n]));
            e[(size_t)k * N + n] = rnd(t, wud[(size_t)k * N + n] - rnd(t, acc_ * lrd));
        }
    EXACT(Wu, "sgd_w", e);
    /* train.grad = mean: the sum divided by B (exact in the dtype) and rounded, then times lr */
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            double acc_ = 0;
            for (int i = 0; i < B; i++)
                acc_ = rnd(t, acc_ + rnd(t, xd[(size_t)i * K + k] * gd[(size_t)i * N + n]));
            e[(size_t)k * N + n] = rnd(t, wud[(size_t)k * N + n] - rnd(t, rnd(t, acc_ / B) * lrd));
        }
    EXACT(Wm, "sgd_w grad=mean", e);
    for (int n = 0; n < N; n++) {
        double acc_ = 0;
        for (int i = 0; i < B; i++)
            acc_ = rnd(t, acc_ + gd[(size_t)i * N + n]);
        e[n] = rnd(t, bud[n] - rnd(t, rnd(t, acc_ / B) * lrd));
    }
    EXACT(Bu, "sgd_b", e);
    double ea[5] = {0, init_acc[1], init_acc[2], init_acc[3], init_acc[4]};
    for (size_t k = 0; k < BN; k++) {
        ea[0] += fabs(gd[k]);
        ea[1] += fabs(ad[k]);
        double d = ad[k] - yd[k];
        ea[2] += 0.5 * (d * d);
        double pp = pd[k] > 1e-300 ? pd[k] : 1e-300, q = 1 - pd[k] > 1e-300 ? 1 - pd[k] : 1e-300;
        ea[3] += -(yd[k] * log(pp));
        ea[4] += -(yd[k] * log(pp)) - (1 - yd[k]) * log(q);
    }
    for (int i = 0; i < 5; i++)
        EXACT(accs[i], ACC_NAMES[i], &ea[i]);
    /* batch normalisation: sums over rows in order from zero, then / B */
    for (int n = 0; n < N; n++) {
        double acc_ = 0;
        for (int i = 0; i < B; i++)
            acc_ = rnd(t, acc_ + zd[(size_t)i * N + n]);
        e[n] = rnd(t, acc_ / B);
    }
    EXACT(mean, "bn_mean", e);
    for (int n = 0; n < N; n++) {
        double acc_ = 0;
        for (int i = 0; i < B; i++) {
            double d = rnd(t, zd[(size_t)i * N + n] - meand[n]);
            acc_ = rnd(t, acc_ + rnd(t, d * d));
        }
        e[n] = rnd(t, acc_ / B);
    }
    EXACT(var, "bn_var", e);
    /* istd = 1 / sqrt(var + eps) in the dtype, eps rounded to it; then (x - mean) * istd */
    double *istd = malloc((size_t)N * sizeof *istd);
    cr_assert_not_null(istd);
    for (int n = 0; n < N; n++)
        istd[n] = rnd(t, 1 / sqrt_t(t, rnd(t, vard[n] + rnd(t, eps))));
    for (size_t k = 0; k < BN; k++)
        e[k] = rnd(t, rnd(t, zd[k] - meand[k % N]) * istd[k % N]);
    EXACT(xhat, "bn_norm", e);
    for (int a4 = 0; a4 < 4; a4++) { /* x * gamma + beta, then gen_act_pass */
        for (size_t k = 0; k < BN; k++)
            e[k] = act_pass_t(t, ELEM_ACTS[a4], rnd(t, rnd(t, xhatd[k] * gamd[k % N]) + betd[k % N]), k, BN);
        EXACT(aff[a4], AFFINE_NAMES[a4], e);
    }
    /* (1 - momentum) * r + momentum * (scale * s), the constants rounded to the dtype */
    for (int s = 0; s < 2; s++) {
        const double *st = s ? vard : meand;
        for (int n = 0; n < N; n++)
            e[n] = rnd(t, rnd(t, rnd(t, 1 - mom) * rund[s][n]) + rnd(t, rnd(t, mom) * rnd(t, rnd(t, s ? vscale : 1) * st[n])));
        EXACT(run[s], RUNNING_NAMES[s], e);
    }
    for (int n = 0; n < N; n++) {
        double dg = 0, db = 0;
        for (int i = 0; i < B; i++) {
            dg = rnd(t, dg + rnd(t, gd[(size_t)i * N + n] * xhatd[(size_t)i * N + n]));
            db = rnd(t, db + gd[(size_t)i * N + n]);
        }
        e[n] = dg;
        e[N + n] = db;
    }
    EXACT(dp, "bn_dparams", e);
    /* k = (gamma * istd) / B; ((B * g - dbeta) - xhat * dgamma) * k */
    for (int n = 0; n < N; n++)
        istd[n] = rnd(t, rnd(t, gamd[n] * istd[n]) / B);
    for (size_t k = 0; k < BN; k++) {
        size_t n = k % N;
        double d = rnd(t, rnd(t, (double)B * gd[k]) - dpd[N + n]);
        e[k] = rnd(t, rnd(t, d - rnd(t, xhatd[k] * dpd[n])) * istd[n]);
    }
    EXACT(bng, "bn_grad", e);
    for (int s = 0; s < 2; s++) {
        for (int n = 0; n < N; n++)
            e[n] = rnd(t, (s ? betd : gamd)[n] - rnd(t, dpd[(size_t)s * N + n] * lrd));
        EXACT(s ? bet : gam, UPDATE_NAMES[s], e);
    }
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            double s1 = 0, s2 = 0;
            for (int i = 0; i < B; i++) {
                s1 = rnd(t, s1 + rnd(t, xd[(size_t)i * K + k] * gd[(size_t)i * N + n]));
                s2 = rnd(t, s2 + rnd(t, xd[(size_t)i * K + k] * ad[(size_t)i * N + n]));
            }
            e[(size_t)k * N + n] = s1;
        }
    EXACT(gw1, "grad_w first", e);
    for (int k = 0; k < K; k++)
        for (int n = 0; n < N; n++) {
            double s2 = 0;
            for (int i = 0; i < B; i++)
                s2 = rnd(t, s2 + rnd(t, xd[(size_t)i * K + k] * ad[(size_t)i * N + n]));
            e[(size_t)k * N + n] = rnd(t, gw1d[(size_t)k * N + n] + s2);
        }
    EXACT(gw, "grad_w accumulate", e);
    for (int n = 0; n < N; n++) {
        double s1 = 0;
        for (int i = 0; i < B; i++)
            s1 = rnd(t, s1 + gd[(size_t)i * N + n]);
        e[n] = s1;
    }
    EXACT(gcol, "grad_w ones", e);
    record_exact(&res, "reduce (two replicas), same order", reduce_diff);
    for (size_t k = 0; k < (size_t)K * N; k++)
        e[k] = rnd(t, wrd[k] - rnd(t, gwd[k] * lrd));
    EXACT(Wr, "update matrix", e);
    for (int i = 0; i < B; i++)
        for (int c = 0; c < K + N; c++)
            e[(size_t)i * (K + N) + c] = c < K ? xd[(size_t)i * K + c] : gd[(size_t)i * N + c - K];
    EXACT(plc, "place", e);
    for (size_t k = 0; k < 2 * BN; k++)
        e[k] = k < BN ? gd[k] : ad[k - BN];
    EXACT(stk, "stack", e);
    EXACT(gwr, "grad_w first rows", gw1d); /* X^T G, summed as grad_w first */
    for (int n = 0; n < N; n++) {
        double s1 = 0; /* G's rows, then A's, in order */
        for (int i = 0; i < B; i++)
            s1 = rnd(t, s1 + gd[(size_t)i * N + n]);
        for (int i = 0; i < B; i++)
            s1 = rnd(t, s1 + ad[(size_t)i * N + n]);
        e[n] = s1;
    }
    EXACT(gcs, "grad_w ones stacked", e);
    for (size_t k = 0; k < BN; k++)
        e[k] = rnd(t, gd[k] * ad[k]);
    EXACT(mul, "mul", e);
    for (size_t k = 0; k < BN; k++) /* lambda and 1 - lambda rounded to the dtype, then two products and a sum */
        e[k] = rnd(t, rnd(t, gd[k] * rnd(t, lam)) + rnd(t, ad[k] * rnd(t, 1 - lam)));
    EXACT(mixb, "mix", e);
    for (int s2 = 0; s2 < 2; s2++) { /* the copy, then gen_act_pass over the whole buffer */
        for (size_t k = 0; k < BN; k++)
            e[k] = act_pass_t(t, s2 ? DNIC_ACT_TANH : DNIC_ACT_SIGMOID, gd[k], k, BN);
        EXACT(slact[s2], SLICE_ACT_NAMES[s2], e);
    }
#undef EXACT
    free(wrd);
    free(gwd);
    free(gw1d);
    free(istd);
    free(e);
    free(zd);
    free(gamd);
    free(betd);
    free(rund[0]);
    free(rund[1]);
    free(meand);
    free(vard);
    free(xhatd);
    free(dpd);
    free(bsd);
    free(xd);
    free(wd);
    free(bd);
    free(gd);
    free(ad);
    free(yd);
    free(pd);
    free(wud);
    free(bud);
    free(ref);
    free(z);
    free(x);
    free(w);
    free(b);
    free(g);
    free(av);
    free(y);
    free(p);
    free(wu);
    free(bu);
    free(bs);
    jprog_free(&j);
    dnic_arena_free(a);
    return res;
}

static const int WIDTHS[7] = {1, 3, 8, 17, 33, 100, 257};

/* Non-square shapes catch transposed indices that square ones hide; together with the cube
 * diagonal every width appears in every dimension. */
static const shape MIXED[] = {
    {1, 257, 3}, {3, 1, 257}, {257, 3, 1}, {8, 100, 17}, {17, 8, 100}, {100, 17, 8}, {33, 257, 1}, {257, 1, 33},
    /* large enough that every product packs B (codegen.c), with rows and columns left over:
     * the dense and sgd_w panels read B's rows, matmul_nt's read W's columns */
    {101, 120, 90},
    /* sgd_w reads x through its transposed copy: x's rows are 512 (float32) or 1024 bytes */
    {70, 128, 130},
    /* and so does an sgd_w too small to pack */
    {17, 128, 8},
    /* packed, with odd sizes everywhere and over 1e6 flops (the ISA's tile, codegen.c's
     * with_tile): 45 rows (7 tiles of 6 and 3 rows), matmul_nt's last panel of W's columns
     * 123 % W wide and K = 95, both not multiples of the 8 x 8 squares its transposed packing
     * moves in registers */
    {45, 123, 95},
};

static void expect_suite(dnic_dtype t, shape sh, uint32_t seed)
{
    suite_result r = run_suite(t, sh, seed, NULL);
    /* dense, concat, slice, add, act_grad, sub, matmul_nt, sgd_w (by sum and by mean), sgd_b,
     * update, the accumulators, bn_mean, bn_var, bn_norm, affine, bn_running, bn_dparams, bn_grad,
     * grad_w (first, accumulated, column sums), update of a matrix, place, mul, slice with an
     * activation, stack, grad_w over a stack (its first rows, its column sums), mix, scale_clip, reduce,
     * act_grad of matmul_nt's product */
    cr_expect_eq(r.n, 2 * (11 + 4 + 4 + 4 + 4 + 1 + 1 + 1 + 2 + 1 + 2 + 5 + 1 + 1 + 1 + 4 + 2 + 1 + 1 + 3 + 1 + 1 + 1 + 2 + 1 + 2 + 1 + 1 + 1),
                 "every op is checked, against both references");
    const char *dt = t == DNIC_F64 ? "float64" : "float32";
    int worst = 0;
    for (int i = 0; i < r.n; i++) {
        if (r.c[i].exact) {
            cr_expect(r.c[i].err == 0, "%s %s B=%d K=%d N=%d: %.0f elements differ from the same-order reference", dt,
                      r.c[i].name, sh.B, sh.K, sh.N, r.c[i].err);
            continue;
        }
        cr_expect(r.c[i].err <= r.c[i].tol, "%s %s B=%d K=%d N=%d: error %.3g > %.3g", dt, r.c[i].name, sh.B, sh.K,
                  sh.N, r.c[i].err, r.c[i].tol);
        if (r.c[i].err / r.c[i].tol > r.c[worst].err / r.c[worst].tol)
            worst = i;
    }
    /* shown with --verbose: how much room the bounds leave */
    cr_log_info("%s B=%d K=%d N=%d: largest error/bound %.3g (%s, %.3g)", dt, sh.B,
                sh.K, sh.N, r.c[worst].err / r.c[worst].tol, r.c[worst].name, r.c[worst].err);
}

static void diagonal(dnic_dtype t, int from, int to)
{
    for (int i = from; i < to; i++)
        expect_suite(t, (shape){WIDTHS[i], WIDTHS[i], WIDTHS[i]}, 1000u + (uint32_t)i);
}

static void mixed(dnic_dtype t, int from, int to)
{
    for (int i = from; i < to; i++)
        expect_suite(t, MIXED[i], 2000u + (uint32_t)i);
}

Test(kernels, f64_small_cubes) { diagonal(DNIC_F64, 0, 5); }
Test(kernels, f64_large_cubes) { diagonal(DNIC_F64, 5, 7); }
Test(kernels, f64_mixed_a) { mixed(DNIC_F64, 0, 4); }
Test(kernels, f64_mixed_b) { mixed(DNIC_F64, 4, 8); }
Test(kernels, f32_small_cubes) { diagonal(DNIC_F32, 0, 5); }
Test(kernels, f32_large_cubes) { diagonal(DNIC_F32, 5, 7); }
Test(kernels, f32_mixed_a) { mixed(DNIC_F32, 0, 4); }
Test(kernels, f32_mixed_b) { mixed(DNIC_F32, 4, 8); }
Test(kernels, f32_packed) { mixed(DNIC_F32, 8, 10); }
Test(kernels, f64_packed) { mixed(DNIC_F64, 8, 10); }
Test(kernels, f32_transposed) { mixed(DNIC_F32, 10, 11); }
Test(kernels, f64_transposed) { mixed(DNIC_F64, 10, 11); }
Test(kernels, f32_odd_packed) { mixed(DNIC_F32, 11, 12); }
Test(kernels, f64_odd_packed) { mixed(DNIC_F64, 11, 12); }
/* the same products with their panels split over 3 threads (dnic_parallel_for): chunks of
 * a few panels, run by whichever thread claims them, and the same exact results */
Test(kernels, f32_packed_threads)
{
    dnic_parallel_set_threads(3);
    mixed(DNIC_F32, 8, 9);
}
Test(kernels, f64_packed_threads)
{
    dnic_parallel_set_threads(3);
    mixed(DNIC_F64, 8, 9);
}

/* Both vector widths, whatever this CPU would get (dnic_vector_bits), and both register tiles
 * (choose_tile: 6 x 4 vectors with AVX-512's 32 registers, 6 x 2 with AVX2's 16), whatever its
 * registers: the small shapes, where most columns are left over from whole tiles, and the
 * packed ones. */
static void at_width(int bits, int regs, dnic_dtype t, int from, int to)
{
#if defined(__x86_64__)
    if ((bits == 512 || regs == 32) && !__builtin_cpu_supports("avx512f"))
        cr_skip_test("this CPU has no AVX-512");
#else
    cr_skip_test("the vector widths are x86's");
#endif
    dnic_codegen_force_vector_bits(bits);
    dnic_codegen_force_vector_regs(regs);
    mixed(t, from, to);
}
Test(kernels, f32_256_bit) { at_width(256, 0, DNIC_F32, 0, 12); }
Test(kernels, f64_256_bit) { at_width(256, 0, DNIC_F64, 0, 12); }
Test(kernels, f32_512_bit) { at_width(512, 0, DNIC_F32, 0, 12); }
Test(kernels, f64_512_bit) { at_width(512, 0, DNIC_F64, 0, 12); }
Test(kernels, f32_256_bit_avx2_tiles) { at_width(256, 16, DNIC_F32, 0, 12); }
Test(kernels, f64_256_bit_avx2_tiles) { at_width(256, 16, DNIC_F64, 0, 12); }
Test(kernels, f32_256_bit_avx512_tiles) { at_width(256, 32, DNIC_F32, 0, 12); }
Test(kernels, f64_256_bit_avx512_tiles) { at_width(256, 32, DNIC_F64, 0, 12); }

/* The comparisons can fail: in every check of part 1, a reference off by 10x the bound in one
 * element is reported, and so is one unit in the last place of a same-order reference.  Half
 * of the checks are planted at a time (alternate ones), and exactly those fail. */
static void planted(dnic_dtype t)
{
    const char *dt = t == DNIC_F64 ? "float64" : "float32";
    const shape sh = {17, 8, 33};
    suite_result all = run_suite(t, sh, 77, NULL);
    const char *names[MAXCHECKS + 1];
    int nn = 0;
    for (int i = 0; i < all.n; i++)
        if (!all.c[i].exact) /* each name once: its two checks are planted together */
            names[nn++] = all.c[i].name;
    for (int half = 0; half < 2; half++) {
        const char *plant[MAXCHECKS + 1];
        int np = 0;
        for (int k = half; k < nn; k += 2)
            plant[np++] = names[k];
        plant[np] = NULL;
        suite_result r = run_suite(t, sh, 77, plant);
        cr_assert_eq(r.n, all.n);
        for (int i = 0; i < r.n; i++) {
            bool fails = !(r.c[i].err <= r.c[i].tol), want = listed_name(plant, r.c[i].name);
            const char *how = r.c[i].exact ? "same-order" : "long double";
            cr_expect_eq(fails, want, "%s %s (%s): %s", dt, r.c[i].name, how,
                         want ? "the planted mismatch goes unnoticed" : "fails, but nothing was planted there");
            if (want && r.c[i].exact)
                cr_expect_eq(r.c[i].err, 1, "%s %s: one element differs, not %.0f", dt, r.c[i].name, r.c[i].err);
            else if (want)
                cr_expect_gt(r.c[i].err, 5 * r.c[i].tol, "%s %s", dt, r.c[i].name);
        }
    }
}

Test(sanity, f32_comparisons_detect_mismatch) { planted(DNIC_F32); }
Test(sanity, f64_comparisons_detect_mismatch) { planted(DNIC_F64); }

/* buf_err itself: an error just above the float64 bound is reported, and NaN and infinity are
 * infinite errors. */
Test(sanity, error_measure)
{
    double got[3] = {0.5, -2, 4};
    long double ref[3] = {0.5L, -2.0L, 4.0L};
    cr_expect_eq(buf_err(got, ref, 3), 0);
    ref[2] = 4 * (1 + 4e-12L);
    cr_expect_gt(buf_err(got, ref, 3), TOL_F64);
    ref[2] = 4;
    got[1] = NAN;
    cr_expect_eq(buf_err(got, ref, 3), INFINITY);
    got[1] = -2;
    ref[0] = INFINITY;
    cr_expect_eq(buf_err(got, ref, 3), INFINITY);
}

/* ---- parts 2 and 3: real models from the front end ----------------------------------------- */

typedef struct model_run {
    tu t;
    jprog j;
} model_run;

static void model_make(model_run *mr, const char *text)
{
    tu_run(&mr->t, text, true);
    cr_assert_not_null(mr->t.ir, "the model does not build:\n%s", tu_errors(&mr->t));
    cr_assert(dnic_ir_verify(mr->t.ir, stderr));
    jprog_make(&mr->j, mr->t.ir);
}

static void model_free(model_run *mr)
{
    jprog_free(&mr->j);
    tu_free(&mr->t);
}

static int buf_of(const model_run *mr, const char *fmt, const char *layer)
{
    char name[128];
    snprintf(name, sizeof name, fmt, layer);
    int b = find_buf(mr->t.ir, name);
    cr_assert_geq(b, 0, "no buffer %s", name);
    return b;
}

static double *param(model_run *mr, const char *fmt, const char *layer)
{
    return mr->j.p.ptrs[buf_of(mr, fmt, layer)];
}

static void zero_accs(model_run *mr)
{
    for (int i = 0; i < mr->j.p.nbufs; i++)
        if (mr->j.p.bufs[i].kind == DNIC_BUF_ACC)
            *(double *)mr->j.p.ptrs[i] = 0;
}

/* ---- part 2: gradient check ----------------------------------------------------------- */

enum { GC_MAXL = 4 };

/* The loss of a float64 model on one batch, computed plainly: L = sum over the batch of
 * 0.5 (out - y)^2, -y log p (softmax) or -(y log p + (1 - y) log(1 - p)) (sigmoid). */
static double chain_loss(const dnic_model *m, double *const *w, double *const *b, const double *x, const double *y,
                         int B)
{
    double h[2][64 * 16];
    const double *in = x;
    for (int l = 0; l < m->nlayers; l++) {
        const dnic_layer *ly = &m->layers[l];
        const dnic_dense_cfg *dc = ly->cfg;
        double *o = h[l % 2];
        cr_assert_leq(B * ly->out, 64 * 16);
        for (int i = 0; i < B; i++) {
            double mx = -INFINITY, sum = 0;
            for (int n = 0; n < ly->out; n++) {
                double s = 0;
                for (int k = 0; k < dc->in; k++)
                    s += in[i * dc->in + k] * w[l][k * ly->out + n];
                if (b[l])
                    s += b[l][n];
                o[i * ly->out + n] = s;
                mx = s > mx ? s : mx;
            }
            for (int n = 0; n < ly->out; n++) {
                double *v = &o[i * ly->out + n];
                switch (ly->act) {
                case DNIC_ACT_SIGMOID: *v = 1 / (1 + exp(-*v)); break;
                case DNIC_ACT_TANH: *v = tanh(*v); break;
                case DNIC_ACT_RELU: *v = *v > 0 ? *v : 0; break;
                case DNIC_ACT_SOFTMAX: sum += *v = exp(*v - mx); break;
                default: break;
                }
            }
            if (ly->act == DNIC_ACT_SOFTMAX)
                for (int n = 0; n < ly->out; n++)
                    o[i * ly->out + n] /= sum;
        }
        in = o;
    }
    double L = 0;
    for (int e = 0; e < B * m->data.labels; e++) {
        double o = in[e], t = y[e];
        if (m->loss == DNIC_LOSS_SQUARED)
            L += 0.5 * (o - t) * (o - t);
        else if (m->loss == DNIC_LOSS_SOFTMAX_CE)
            L -= t * log(o);
        else
            L -= t * log(o) + (1 - t) * log(1 - o);
    }
    return L;
}

/* One backprop step of the model in `text` (float64, backprop mode) against finite differences:
 * every weight must move by -lr dL/dW, every bias by -lr (1/B) dL/db. */
static void gradient_check(const char *text, uint32_t seed)
{
    model_run mr;
    model_make(&mr, text);
    const dnic_model *m = mr.t.m;
    const int B = m->train.batch, L = m->nlayers;
    const double lr = m->train.lr;
    cr_assert_eq(m->train.dtype, DNIC_F64);
    cr_assert_leq(L, GC_MAXL);
    dnic_rng r;
    dnic_rng_seed(&r, seed);
    double *w0[GC_MAXL] = {0}, *b0[GC_MAXL] = {0}, *wd[GC_MAXL] = {0}, *bd[GC_MAXL] = {0};
    for (int l = 0; l < L; l++) {
        const dnic_layer *ly = &m->layers[l];
        const dnic_dense_cfg *dc = ly->cfg;
        size_t nw = (size_t)dc->in * ly->out;
        wd[l] = param(&mr, "%s.weight", ly->name);
        w0[l] = malloc(nw * sizeof *w0[l]);
        for (size_t e = 0; e < nw; e++)
            w0[l][e] = wd[l][e] = unif(&r, -1, 1) * sqrt(3.0 / dc->in);
        if (dc->bias) {
            bd[l] = param(&mr, "%s.bias", ly->name);
            b0[l] = malloc((size_t)ly->out * sizeof *b0[l]);
            for (int n = 0; n < ly->out; n++)
                b0[l][n] = bd[l][n] = unif(&r, -0.5, 0.5);
        }
    }
    int nx = B * m->data.inputs, ny = B * m->data.labels;
    double *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
    for (int e = 0; e < nx; e++)
        x[e] = unif(&r, -1, 1);
    for (int i = 0; i < B; i++)
        for (int n = 0; n < m->data.labels; n++)
            y[i * m->data.labels + n] = m->loss == DNIC_LOSS_SOFTMAX_CE ? (double)(n == i % m->data.labels)
                                                                         : unif(&r, 0, 1);
    mr.j.p.ptrs[mr.t.ir->x] = x;
    mr.j.p.ptrs[mr.t.ir->y] = y;
    jprog_run(&mr.j);

    /* fourth-order central differences, h = 1e-4: truncation ~h^4, rounding ~1e-16 L / h */
    const double h = 1e-4;
    for (int l = 0; l < L; l++) {
        const dnic_layer *ly = &m->layers[l];
        const dnic_dense_cfg *dc = ly->cfg;
        for (int isb = 0; isb < 2; isb++) {
            double *p0 = isb ? b0[l] : w0[l], *pd = isb ? bd[l] : wd[l];
            if (!p0)
                continue;
            size_t np = isb ? (size_t)ly->out : (size_t)dc->in * ly->out;
            double maxexp = 0, maxdiff = 0, maxsum = 0;
            for (size_t e = 0; e < np; e++) {
                double v = p0[e], f[4];
                const double steps[4] = {-2 * h, -h, h, 2 * h};
                for (int s = 0; s < 4; s++) {
                    p0[e] = v + steps[s];
                    f[s] = chain_loss(m, w0, b0, x, y, B);
                }
                p0[e] = v;
                double grad = (8 * (f[2] - f[1]) - (f[3] - f[0])) / (12 * h);
                double expect = -lr * grad / (isb ? B : 1);
                double delta = pd[e] - v;
                maxexp = fmax(maxexp, fabs(expect));
                maxdiff = fmax(maxdiff, fabs(delta - expect));
                maxsum = fmax(maxsum, fabs(delta + lr * grad)); /* the other convention */
            }
            cr_expect_gt(maxexp, 1e-6, "%s.%s: the step changes it", ly->name, isb ? "bias" : "weight");
            cr_expect_leq(maxdiff, TOL_GRAD * maxexp, "%s %s.%s: max |Δ - (-lr dL/dθ%s)| = %.3g, max |Δ| = %.3g", m->name,
                          ly->name, isb ? "bias" : "weight", isb ? " / B" : "", maxdiff, maxexp);
            cr_log_info("%s %s.%s: max |Δ - Δexpected| / max |Δexpected| = %.3g", m->name, ly->name,
                        isb ? "bias" : "weight", maxdiff / maxexp);
            if (isb && B > 1)
                cr_expect_gt(maxsum, 0.1 * maxexp, "the bias check tells the batch mean from the batch sum");
        }
    }
    for (int l = 0; l < L; l++) {
        free(w0[l]);
        free(b0[l]);
    }
    free(x);
    free(y);
    model_free(&mr);
}

#define GC_HEAD \
    "model gc\n" \
    "data binary_addition { bits = 4 examples = 20 inputs = 8 labels = 4 }\n"
#define GC_TRAIN "train { mode = backprop batch = 5 lr = 0.1 steps = 1 dtype = float64 }\n"

/* 8 -> 7 (tanh) -> 4 (sigmoid), squared error, biases on */
Test(gradcheck, tanh_sigmoid_squared_error)
{
    gradient_check(GC_HEAD "layer h = dense(input, 7) { activation = tanh }\n"
                           "layer out = dense(h, 4) { activation = sigmoid }\n"
                           "loss squared_error(out, labels)\n" GC_TRAIN,
                   11);
}

/* a deeper chain through a linear layer (no act_grad op) and one without bias */
Test(gradcheck, tanh_linear_sigmoid_squared_error)
{
    gradient_check(GC_HEAD "layer h1 = dense(input, 7) { activation = tanh }\n"
                           "layer h2 = dense(h1, 6) { activation = linear }\n"
                           "layer h3 = dense(h2, 5) { activation = sigmoid  bias = false }\n"
                           "layer out = dense(h3, 4) { activation = sigmoid }\n"
                           "loss squared_error(out, labels)\n" GC_TRAIN,
                   12);
}

/* the cross-entropy losses, whose output delta p - y the IR uses directly */
Test(gradcheck, softmax_cross_entropy)
{
    gradient_check(GC_HEAD "layer h = dense(input, 7) { activation = tanh }\n"
                           "layer out = dense(h, 4) { activation = softmax }\n"
                           "loss softmax_cross_entropy(out, labels)\n" GC_TRAIN,
                   13);
}

Test(gradcheck, sigmoid_cross_entropy)
{
    gradient_check(GC_HEAD "layer h = dense(input, 7) { activation = tanh }\n"
                           "layer out = dense(h, 4) { activation = sigmoid }\n"
                           "loss sigmoid_cross_entropy(out, labels)\n" GC_TRAIN,
                   14);
}

/* ---- part 2b: graphs and batch normalisation against finite differences ------------------ */

/* A layer's parameters for graph_loss: NULL where it has none. */
typedef struct gparams {
    double *w, *b, *gamma, *beta, *wh; /* rnn: w = weight_ih, wh = weight_hh */
} gparams;

enum { GG_MAXL = 8, GG_MAXW = 32 };

static long double act1(dnic_act a, long double v)
{
    switch (a) {
    case DNIC_ACT_SIGMOID: return 1 / (1 + expl(-v));
    case DNIC_ACT_TANH: return tanhl(v);
    case DNIC_ACT_RELU: return v > 0 ? v : 0;
    default: return v;
    }
}

/* The summed loss of a graph of dense (with or without batch normalisation, in training mode:
 * the batch's mean and biased variance), add and concat layers, written from the definitions in
 * docs/semantics.md, in long double, independent of the IR.  means/vars receive each BN
 * layer's batch statistics when not NULL. */
static double graph_loss(const dnic_model *m, const gparams *P, const double *x, const double *y, int B,
                         double (*means)[GG_MAXW], double (*vars)[GG_MAXW])
{
    static long double h[GG_MAXL][8 * GG_MAXW * 2];
    cr_assert_leq(m->nlayers, GG_MAXL);
    for (int l = 0; l < m->nlayers; l++) {
        const dnic_layer *ly = &m->layers[l];
        int N = ly->out;
        long double *o = h[l];
        cr_assert_leq(B * N, 8 * GG_MAXW * 2);
        int w[DNIC_MAX_LAYER_SRC];
        for (int k = 0; k < ly->nsrc; k++)
            w[k] = ly->src[k] < 0 ? m->data.inputs : m->layers[ly->src[k]].out;
#define SRC(k, i, j) (ly->src[k] < 0 ? (long double)x[(i) * w[k] + (j)] : h[ly->src[k]][(i) * w[k] + (j)])
        if (ly->kind == &dnic_layer_dense) { /* steps = S: the same weights on each step's columns */
            const dnic_dense_cfg *dc = ly->cfg;
            int W = dc->width;
            for (int i = 0; i < B; i++)
                for (int t = 0; t < dc->steps; t++)
                    for (int n = 0; n < W; n++) {
                        long double s = 0;
                        for (int k = 0; k < dc->in; k++)
                            s += SRC(0, i, t * dc->in + k) * P[l].w[k * W + n];
                        o[i * N + t * W + n] = s + (P[l].b ? P[l].b[n] : 0);
                    }
            if (dc->batchnorm)
                for (int n = 0; n < N; n++) {
                    long double mu = 0, var = 0;
                    for (int i = 0; i < B; i++)
                        mu += o[i * N + n];
                    mu /= B;
                    for (int i = 0; i < B; i++)
                        var += (o[i * N + n] - mu) * (o[i * N + n] - mu);
                    var /= B;
                    if (means) {
                        means[l][n] = (double)mu;
                        vars[l][n] = (double)var;
                    }
                    for (int i = 0; i < B; i++)
                        o[i * N + n] = (o[i * N + n] - mu) / sqrtl(var + dc->norm_eps) * P[l].gamma[n] + P[l].beta[n];
                }
        } else if (ly->kind == &dnic_layer_rnn || ly->kind == &dnic_layer_lstm) {
            /* z_t = x_t W_ih + b + h_{t-1} W_hh, h_{-1} = 0.  rnn: o holds the output steps' z
             * (the activation follows below, as for every kind).  lstm: gates i, f, g, o of z_t,
             * c_t = f c_{t-1} + i g, h_t = o tanh(c_t); o holds the output steps' h (its
             * activation is linear).  outputs = K: the last K steps side by side. */
            const dnic_rnn_cfg *rc = ly->cfg;
            int H = rc->hidden, G = rc->lstm ? 4 * H : H, first = rc->steps - rc->outputs;
            static long double last[8 * GG_MAXW * 2];
            static long double hs[8 * GG_MAXW * 2], cs[8 * GG_MAXW * 2], z[8 * GG_MAXW * 8];
            for (int t = 0; t < rc->steps; t++) {
                for (int i = 0; i < B; i++)
                    for (int n = 0; n < G; n++) {
                        long double s = P[l].b ? P[l].b[n] : 0;
                        for (int k = 0; k < rc->in; k++)
                            s += SRC(0, i, rc->repeat ? k : t * rc->in + k) * P[l].w[k * G + n];
                        for (int j = 0; t > 0 && j < H; j++)
                            s += hs[i * H + j] * P[l].wh[j * G + n];
                        z[i * G + n] = s;
                    }
                for (int e = 0; e < B * H; e++) {
                    int i = e / H, n = e % H;
                    if (!rc->lstm) {
                        last[e] = z[i * G + n];
                        hs[e] = act1(ly->act, last[e]);
                        continue;
                    }
                    long double ig = act1(DNIC_ACT_SIGMOID, z[i * G + n]), fg = act1(DNIC_ACT_SIGMOID, z[i * G + H + n]);
                    long double gg = tanhl(z[i * G + 2 * H + n]), og = act1(DNIC_ACT_SIGMOID, z[i * G + 3 * H + n]);
                    cs[e] = (t > 0 ? fg * cs[e] : 0) + ig * gg;
                    hs[e] = last[e] = og * tanhl(cs[e]);
                }
                for (int e = 0; t >= first && e < B * H; e++)
                    o[e / H * N + (t - first) * H + e % H] = last[e];
            }
        } else if (ly->kind == &dnic_layer_add) {
            for (int e = 0; e < B * N; e++) {
                long double s = 0;
                for (int k = 0; k < ly->nsrc; k++)
                    s += SRC(k, e / N, e % N);
                o[e] = s;
            }
        } else {
            cr_assert_eq(ly->kind, &dnic_layer_concat);
            for (int i = 0, off = 0; i < B; i++, off = 0)
                for (int k = 0; k < ly->nsrc; k++)
                    for (int j = 0; j < w[k]; j++)
                        o[i * N + off++] = SRC(k, i, j);
        }
#undef SRC
        for (int i = 0; i < B; i++) {
            long double mx = -INFINITY, sum = 0;
            for (int n = 0; n < N; n++)
                mx = o[i * N + n] > mx ? o[i * N + n] : mx;
            for (int n = 0; n < N; n++) {
                long double *v = &o[i * N + n];
                if (ly->act == DNIC_ACT_SOFTMAX)
                    sum += *v = expl(*v - mx);
                else
                    *v = act1(ly->act, *v);
            }
            if (ly->act == DNIC_ACT_SOFTMAX)
                for (int n = 0; n < N; n++)
                    o[i * N + n] /= sum;
        }
    }
    const long double *out = h[m->out];
    long double L = 0;
    for (int e = 0; e < B * m->data.labels; e++) {
        long double o = out[e], t = y[e];
        if (m->loss == DNIC_LOSS_SQUARED)
            L += 0.5L * (o - t) * (o - t);
        else if (m->loss == DNIC_LOSS_SOFTMAX_CE)
            L -= t * logl(o);
        else
            L -= t * logl(o) + (1 - t) * logl(1 - o);
    }
    return (double)L;
}

/* One backprop step (float64, SGD) of a graph model against finite differences of
 * graph_loss: weights and batch normalisation's gamma and beta move by -lr dL/dθ, biases by
 * -lr (1/B) dL/db; the running averages move toward the batch's statistics. */
static void graph_gradient_check(const char *text, uint32_t seed)
{
    model_run mr;
    model_make(&mr, text);
    const dnic_model *m = mr.t.m;
    const int B = m->train.batch, L = m->nlayers;
    const double lr = m->train.lr, h = 1e-4;
    cr_assert_eq(m->train.dtype, DNIC_F64);
    cr_assert_leq(L, GG_MAXL);
    dnic_rng r;
    dnic_rng_seed(&r, seed);
    gparams P[GG_MAXL] = {{0}}, D[GG_MAXL] = {{0}};
    static const char *const what[5] = {"weight", "bias", "gamma", "beta", "weight_hh"};
    size_t nel_of[GG_MAXL][5] = {{0}};
    for (int l = 0; l < L; l++) {
        const dnic_layer *ly = &m->layers[l];
        int in, N = ly->out, G = N;
        bool has[5] = {false};
        if (ly->kind == &dnic_layer_dense) {
            const dnic_dense_cfg *dc = ly->cfg;
            in = dc->in;
            N = G = dc->width;
            has[0] = true, has[1] = dc->bias, has[2] = has[3] = dc->batchnorm;
        } else if (ly->kind == &dnic_layer_rnn || ly->kind == &dnic_layer_lstm) {
            const dnic_rnn_cfg *rc = ly->cfg;
            in = rc->in;
            N = rc->hidden;
            G = rc->lstm ? 4 * N : N;
            has[0] = has[4] = true, has[1] = rc->bias;
        } else {
            continue;
        }
        const size_t sz[5] = {(size_t)in * G, (size_t)G, (size_t)N, (size_t)N, (size_t)N * G};
        double **pp[5] = {&P[l].w, &P[l].b, &P[l].gamma, &P[l].beta, &P[l].wh};
        double **dd[5] = {&D[l].w, &D[l].b, &D[l].gamma, &D[l].beta, &D[l].wh};
        for (int q = 0; q < 5; q++) {
            if (!has[q])
                continue;
            nel_of[l][q] = sz[q];
            char fmt[32];
            snprintf(fmt, sizeof fmt, "%%s.%s", q == 0 && ly->kind != &dnic_layer_dense ? "weight_ih" : what[q]);
            *dd[q] = param(&mr, fmt, ly->name);
            *pp[q] = malloc(nel_of[l][q] * sizeof **pp[q]);
            for (size_t e = 0; e < nel_of[l][q]; e++)
                (*pp[q])[e] = (*dd[q])[e] = q == 0 ? unif(&r, -1, 1) * sqrt(3.0 / in)
                                          : q == 4 ? unif(&r, -1, 1) * sqrt(3.0 / N)
                                          : q == 2 ? unif(&r, 0.7, 1.3) : unif(&r, -0.5, 0.5);
        }
    }
    int nx = B * m->data.inputs, ny = B * m->data.labels;
    double *x = malloc((size_t)nx * sizeof *x), *y = malloc((size_t)ny * sizeof *y);
    for (int e = 0; e < nx; e++)
        x[e] = unif(&r, -1, 1);
    for (int i = 0; i < B; i++)
        for (int n = 0; n < m->data.labels; n++)
            y[i * m->data.labels + n] = m->loss == DNIC_LOSS_SOFTMAX_CE ? (double)(n == i % m->data.labels) : unif(&r, 0, 1);
    for (int l = 0; l < L; l++) /* running averages from 0.5 and 2: the step moves them */
        if (m->layers[l].kind == &dnic_layer_dense && ((const dnic_dense_cfg *)m->layers[l].cfg)->batchnorm)
            for (int n = 0; n < m->layers[l].out; n++) {
                param(&mr, "%s.running_mean", m->layers[l].name)[n] = 0.5;
                param(&mr, "%s.running_var", m->layers[l].name)[n] = 2;
            }
    mr.j.p.ptrs[mr.t.ir->x] = x;
    mr.j.p.ptrs[mr.t.ir->y] = y;
    jprog_run(&mr.j);

    static double means[GG_MAXL][GG_MAXW], vars[GG_MAXL][GG_MAXW];
    graph_loss(m, P, x, y, B, means, vars);
    int checked = 0;
    for (int l = 0; l < L; l++) {
        const dnic_layer *ly = &m->layers[l];
        double *p0s[5] = {P[l].w, P[l].b, P[l].gamma, P[l].beta, P[l].wh};
        double *pds[5] = {D[l].w, D[l].b, D[l].gamma, D[l].beta, D[l].wh};
        for (int q = 0; q < 5; q++) {
            double *p0 = p0s[q], *pd = pds[q];
            if (!p0)
                continue;
            size_t np = nel_of[l][q];
            double maxexp = 0, maxdiff = 0;
            for (size_t e = 0; e < np; e++) {
                double v = p0[e], f[4];
                const double steps[4] = {-2 * h, -h, h, 2 * h};
                for (int st = 0; st < 4; st++) {
                    p0[e] = v + steps[st];
                    f[st] = graph_loss(m, P, x, y, B, NULL, NULL);
                }
                p0[e] = v;
                double grad = (8 * (f[2] - f[1]) - (f[3] - f[0])) / (12 * h);
                double expect = -lr * grad / (q == 1 ? B : 1);
                maxexp = fmax(maxexp, fabs(expect));
                maxdiff = fmax(maxdiff, fabs(pd[e] - v - expect));
            }
            cr_expect_gt(maxexp, 1e-7, "%s.%s: the step changes it", ly->name, what[q]);
            cr_expect_leq(maxdiff, TOL_GRAD * maxexp, "%s %s.%s: max |Δ - Δexpected| = %.3g, max |Δexpected| = %.3g",
                          m->name, ly->name, what[q], maxdiff, maxexp);
            cr_log_info("%s %s.%s: max |Δ - Δexpected| / max |Δexpected| = %.3g", m->name, ly->name, what[q],
                        maxdiff / maxexp);
            checked++;
        }
        const dnic_dense_cfg *dc = ly->kind == &dnic_layer_dense ? ly->cfg : NULL;
        if (dc && dc->batchnorm) { /* running = (1 - m) * running + m * batch statistic (the variance unbiased) */
            const double *rm = param(&mr, "%s.running_mean", ly->name), *rv = param(&mr, "%s.running_var", ly->name);
            double mom = dc->norm_momentum;
            for (int n = 0; n < ly->out; n++) {
                cr_expect_float_eq(rm[n], (1 - mom) * 0.5 + mom * means[l][n], 1e-12);
                double want = (1 - mom) * 2 + mom * vars[l][n] * B / (B - 1);
                cr_expect_float_eq(rv[n], want, 1e-12 * want, "%s.running_var[%d] = %.17g, want %.17g", ly->name, n, rv[n], want);
            }
        }
    }
    cr_expect_gt(checked, 0);
    for (int l = 0; l < L; l++) {
        free(P[l].w);
        free(P[l].b);
        free(P[l].gamma);
        free(P[l].beta);
        free(P[l].wh);
    }
    free(x);
    free(y);
    model_free(&mr);
}

/* Linear -> BN -> tanh, twice, then a plain sigmoid output */
Test(gradcheck, batchnorm_chain)
{
    graph_gradient_check(GC_HEAD "layer h1 = dense(input, 7) { activation = tanh  norm = batch }\n"
                                 "layer h2 = dense(h1, 6) { activation = relu  norm = batch }\n"
                                 "layer out = dense(h2, 4) { activation = sigmoid }\n"
                                 "loss squared_error(out, labels)\n" GC_TRAIN,
                         21);
}

/* a skip connection (add), two layers reading one (their gradients summed), a concat merge,
 * and a layer reading the input twice over */
Test(gradcheck, residual_and_concat)
{
    graph_gradient_check(GC_HEAD "layer h1 = dense(input, 6) { activation = tanh }\n"
                                 "layer h2 = dense(h1, 6) { activation = tanh  norm = batch }\n"
                                 "layer r = add(h2, h1) { activation = sigmoid }\n"
                                 "layer side = dense(input, 3) { activation = tanh }\n"
                                 "layer j = concat(r, side, h1)\n"
                                 "layer out = dense(j, 4) { activation = softmax }\n"
                                 "loss softmax_cross_entropy(out, labels)\n" GC_TRAIN,
                         22);
}

/* recurrent layers, fully unrolled (one chunk: backprop through every step): one reading a
 * dense layer's output in steps of 2 (its gradient placed per step), then one reading the
 * first's last state at every step (input = repeat, its gradient summed over the steps) */
Test(gradcheck, rnn_split_and_repeat)
{
    graph_gradient_check(GC_HEAD "layer e = dense(input, 6) { activation = tanh }\n"
                                 "layer h = rnn(e, 5) { steps = 3 }\n"
                                 "layer h2 = rnn(h, 4) { steps = 2  input = repeat  activation = sigmoid }\n"
                                 "layer out = dense(h2, 4) { activation = sigmoid }\n"
                                 "loss squared_error(out, labels)\n" GC_TRAIN,
                         23);
}

/* an lstm reading a dense layer's output in 3 steps of 2, and one reading its last state at
 * every step, then a sigmoid output */
Test(gradcheck, lstm_split_and_repeat)
{
    graph_gradient_check(GC_HEAD "layer e = dense(input, 6) { activation = tanh }\n"
                                 "layer h = lstm(e, 4) { steps = 3 }\n"
                                 "layer h2 = lstm(h, 3) { steps = 2  input = repeat }\n"
                                 "layer out = dense(h2, 4) { activation = sigmoid }\n"
                                 "loss squared_error(out, labels)\n" GC_TRAIN,
                         24);
}

/* per-step outputs: an rnn's last 2 of 4 states (the input in steps of 2), a dense layer on
 * each of them, and another on each of 2 steps of that, with sigmoid cross-entropy: each step's
 * gradient joins the recurrence's at its own step, the weights' gradients sum over the steps */
Test(gradcheck, rnn_outputs_and_dense_steps)
{
    graph_gradient_check(GC_HEAD "layer h = rnn(input, 5) { steps = 4  outputs = 2 }\n"
                                 "layer e = dense(h, 3) { steps = 2  activation = tanh }\n"
                                 "layer out = dense(e, 2) { steps = 2  activation = sigmoid }\n"
                                 "loss sigmoid_cross_entropy(out, labels)\n" GC_TRAIN,
                         25);
}

/* the same for an lstm reading a dense layer, all its steps out, one dense layer on each,
 * squared error */
Test(gradcheck, lstm_outputs_and_dense_steps)
{
    graph_gradient_check(GC_HEAD "layer e = dense(input, 4) { activation = tanh }\n"
                                 "layer h = lstm(e, 3) { steps = 2  outputs = 2 }\n"
                                 "layer out = dense(h, 2) { steps = 2  activation = sigmoid }\n"
                                 "loss squared_error(out, labels)\n" GC_TRAIN,
                         26);
}

/* ---- part 3: against the seeds' C reference ----------------------------------------------- */

static const char *const LAYERS[3] = {"h1", "h2", "out"};

typedef struct refcase {
    int h1, h2;        /* hidden widths; 16 inputs, 8 labels */
    bool dni;          /* else backprop */
    bool labels;       /* SG input = labels */
    bool bias;
    bool swap_order;   /* the other backward_message than dni_ref's (DNI: after, backprop: before) */
    double lr;
} refcase;

typedef struct refpair {
    model_run mr;
    dni_ref_net net;
    double *x, *y;     /* 5 batches of 10 */
    refcase c;
} refpair;

enum { REF_BATCH = 10, REF_STEPS = 5 };

static void refpair_make(refpair *rp, refcase c, uint32_t seed)
{
    memset(rp, 0, sizeof *rp);
    rp->c = c;
    char text[2048];
    const char *sgin = c.labels ? "labels" : "output", *bias = c.bias ? "true" : "false";
    snprintf(text, sizeof text,
             "model ref\n"
             "data binary_addition { bits = 8 examples = 50 inputs = 16 labels = 8 }\n"
             "layer h1 = dense(input, %d) { activation = sigmoid  bias = %s }\n"
             "layer h2 = dense(h1, %d) { activation = sigmoid  bias = %s }\n"
             "layer out = dense(h2, 8) { activation = sigmoid  bias = %s }\n"
             "%s%s%s%s%s"
             "loss squared_error(out, labels) { report = %s }\n"
             "train { mode = %s batch = %d lr = %.17g steps = %d dtype = float64 backward_message = %s }\n",
             c.h1, bias, c.h2, bias, bias, c.dni ? "sg h1 { input = " : "", c.dni ? sgin : "",
             c.dni ? " }\nsg h2 { input = " : "", c.dni ? sgin : "", c.dni ? " }\n" : "",
             c.dni ? "abs_error" : "abs_delta", c.dni ? "dni" : "backprop", REF_BATCH, c.lr, REF_STEPS,
             c.dni != c.swap_order ? "after_update" : "before_update");
    model_make(&rp->mr, text);
    const int widths[4] = {16, c.h1, c.h2, 8};
    cr_assert_eq(dni_ref_create(&rp->net, 3, widths, REF_BATCH, c.bias, c.labels, c.lr), 0);
    /* the same random parameters in both, SG modules included */
    dnic_rng r;
    dnic_rng_seed(&r, seed);
    for (int l = 0; l < 3; l++) {
        size_t in = (size_t)widths[l], out = (size_t)widths[l + 1];
        double *w = param(&rp->mr, "%s.weight", LAYERS[l]);
        for (size_t e = 0; e < in * out; e++)
            w[e] = rp->net.w[l][e] = dnic_rng_randn(&r);
        if (c.bias) {
            double *b = param(&rp->mr, "%s.bias", LAYERS[l]);
            for (size_t e = 0; e < out; e++)
                b[e] = rp->net.b[l][e] = dnic_rng_randn(&r);
        }
        if (c.dni && l < 2) {
            double *sw = param(&rp->mr, "%s.sg.weight", LAYERS[l]), *sb = param(&rp->mr, "%s.sg.bias", LAYERS[l]);
            cr_assert_eq(rp->mr.j.p.bufs[buf_of(&rp->mr, "%s.sg.weight", LAYERS[l])].rows, rp->net.sg_in[l]);
            for (size_t e = 0; e < (size_t)rp->net.sg_in[l] * out; e++)
                sw[e] = rp->net.sg_w[l][e] = dnic_rng_randn(&r) * 0.5;
            for (size_t e = 0; e < out; e++)
                sb[e] = rp->net.sg_b[l][e] = dnic_rng_randn(&r) * 0.5;
        }
    }
    rp->x = malloc(REF_STEPS * REF_BATCH * 16 * sizeof *rp->x);
    rp->y = malloc(REF_STEPS * REF_BATCH * 8 * sizeof *rp->y);
    cr_assert(rp->x && rp->y);
    cr_assert_eq(dnic_binadd_generate(&r, 8, REF_STEPS * REF_BATCH, rp->x, rp->y), 0);
}

static void refpair_free(refpair *rp)
{
    free(rp->x);
    free(rp->y);
    dni_ref_destroy(&rp->net);
    model_free(&rp->mr);
}

typedef struct ref_checks {
    check c[24];
    char names[24][40];
    int n;
    size_t values, unequal; /* how many compared values are not bit-identical (informational) */
} ref_checks;

/* Compares the dnic buffer "<layer><suffix>" with a reference array of n values. */
static void ref_check(ref_checks *rc, refpair *rp, int l, const char *suffix, const double *ref, size_t n)
{
    cr_assert_lt(rc->n, 24);
    char *name = rc->names[rc->n];
    snprintf(name, sizeof rc->names[0], "%s%s", LAYERS[l], suffix);
    int b = buf_of(&rp->mr, "%s", name);
    cr_assert_eq(nel(&rp->mr.j, b), n, "%s has %zu values, the reference %zu", name, nel(&rp->mr.j, b), n);
    rc->c[rc->n++] = (check){name, buf_err_d(rp->mr.j.p.ptrs[b], ref, n), TOL_REF, false};
    const double *got = rp->mr.j.p.ptrs[b];
    for (size_t i = 0; i < n; i++)
        rc->unequal += !(got[i] == ref[i]);
    rc->values += n;
}

static void ref_check_acc(ref_checks *rc, refpair *rp, const char *name, double ref)
{
    cr_assert_lt(rc->n, 24);
    double got = *(double *)rp->mr.j.p.ptrs[buf_of(&rp->mr, "%s", name)];
    rc->c[rc->n++] = (check){name, buf_err_d(&got, &ref, 1), TOL_REF, false};
    rc->unequal += !(got == ref);
    rc->values++;
}

/* Runs step `s` in both; returns the largest error over every parameter, the loss sums, the
 * SG predictions and the messages, and (when report) expects each to be within TOL_REF. */
static double refpair_step(refpair *rp, int s, bool report)
{
    const double *bx = rp->x + (size_t)s * REF_BATCH * 16, *by = rp->y + (size_t)s * REF_BATCH * 8;
    dnic_program *p = &rp->mr.j.p;
    p->ptrs[rp->mr.t.ir->x] = (void *)(uintptr_t)bx; /* read-only: the IR never writes x or y */
    p->ptrs[rp->mr.t.ir->y] = (void *)(uintptr_t)by;
    zero_accs(&rp->mr);
    jprog_run(&rp->mr.j);
    double loss, sg_loss = 0;
    dni_ref_net *net = &rp->net;
    if (rp->c.dni)
        dni_ref_dni_step(net, bx, by, &loss, &sg_loss);
    else
        loss = dni_ref_bp_step(net, bx, by);

    ref_checks rc = {.n = 0};
    for (int l = 0; l < 3; l++) {
        size_t out = (size_t)net->widths[l + 1];
        ref_check(&rc, rp, l, ".weight", net->w[l], (size_t)net->widths[l] * out);
        if (rp->c.bias)
            ref_check(&rc, rp, l, ".bias", net->b[l], out);
        if (rp->c.dni && l < 2) {
            ref_check(&rc, rp, l, ".sg.weight", net->sg_w[l], (size_t)net->sg_in[l] * out);
            ref_check(&rc, rp, l, ".sg.bias", net->sg_b[l], out);
            ref_check(&rc, rp, l, ".sg.pred", net->sg[l], REF_BATCH * out);
            /* the message layer l+1 sent down: layer l's SG target */
            ref_check(&rc, rp, l, ".grad", net->back[l + 1], REF_BATCH * out);
        }
    }
    ref_check_acc(&rc, rp, "loss.sum", loss);
    if (rp->c.dni) {
        ref_check_acc(&rc, rp, "h2.sg.loss", sg_loss);
        double h1sg = 0;
        for (size_t e = 0; e < (size_t)REF_BATCH * net->widths[1]; e++)
            h1sg += fabs(net->sg_delta[0][e]);
        ref_check_acc(&rc, rp, "h1.sg.loss", h1sg);
    }
    double worst = 0;
    for (int i = 0; i < rc.n; i++)
        worst = fmax(worst, rc.c[i].err);
    if (report)
        cr_log_info("%s%s %d-%d step %d: largest error %.3g; %zu of %zu values differ from dni_ref in some bit",
                    rp->c.dni ? "dni" : "backprop", rp->c.labels ? " labels" : "", rp->c.h1, rp->c.h2, s, worst,
                    rc.unequal, rc.values);
    for (int i = 0; i < rc.n; i++) {
        if (report)
            cr_expect(rc.c[i].err <= rc.c[i].tol, "%s%s %d-%d step %d: %s error %.3g > %.3g",
                      rp->c.dni ? "dni" : "backprop", rp->c.labels ? " labels" : "", rp->c.h1, rp->c.h2, s,
                      rc.c[i].name, rc.c[i].err, rc.c[i].tol);
    }
    return worst;
}

static void ref_compare(refcase c, uint32_t seed)
{
    refpair rp;
    refpair_make(&rp, c, seed);
    for (int s = 0; s < REF_STEPS; s++)
        refpair_step(&rp, s, true);
    refpair_free(&rp);
}

Test(dni_ref, dni_16_12_9_8)
{
    ref_compare((refcase){12, 9, true, false, true, false, 0.01}, 21);
}

Test(dni_ref, dni_seed_16_64_32_8)
{
    ref_compare((refcase){64, 32, true, false, true, false, 0.01}, 22);
}

Test(dni_ref, dni_labels_16_12_9_8)
{
    ref_compare((refcase){12, 9, true, true, true, false, 0.01}, 23);
}

Test(dni_ref, dni_labels_seed_16_64_32_8)
{
    ref_compare((refcase){64, 32, true, true, true, false, 0.01}, 24);
}

Test(dni_ref, backprop_bias_16_12_9_8)
{
    ref_compare((refcase){12, 9, false, false, true, false, 0.1}, 25);
}

Test(dni_ref, backprop_seed_16_128_64_8)
{
    ref_compare((refcase){128, 64, false, false, false, false, 0.1}, 26);
}

/* The comparison with dni_ref can fail: a 1e-9 change to one reference weight is reported, and
 * so is the other message order (dni_ref sends messages after the update). */
Test(sanity, dni_ref_comparison_detects_mismatch)
{
    refpair rp;
    refpair_make(&rp, (refcase){12, 9, true, false, true, false, 0.01}, 31);
    cr_expect_leq(refpair_step(&rp, 0, false), TOL_REF);
    rp.net.w[1][5] *= 1 + 1e-9;
    double e = refpair_step(&rp, 1, false);
    cr_expect_gt(e, TOL_REF, "a perturbed reference weight goes unnoticed (error %.3g)", e);
    refpair_free(&rp);

    refpair_make(&rp, (refcase){12, 9, true, false, true, true, 0.01}, 31);
    e = refpair_step(&rp, 0, false);
    cr_expect_gt(e, 1e-6, "before_update vs the seeds' after_update: error %.3g", e);
    refpair_free(&rp);
}

/* ---- code size -------------------------------------------------------------------------------- */

/* The functions with a body in a freshly generated module (before any optimisation). */
static int module_functions(const char *text)
{
    tu t;
    tu_run(&t, text, true);
    cr_assert_not_null(t.ir, "the model does not build:\n%s", tu_errors(&t));
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = dnic_codegen(ctx, t.ir, "m", NULL, NULL, NULL);
    int n = 0;
    for (LLVMValueRef f = LLVMGetFirstFunction(m); f; f = LLVMGetNextFunction(f))
        n += LLVMCountBasicBlocks(f) > 0;
    LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
    tu_free(&t);
    return n;
}

static int ir_ops(const char *text)
{
    tu t;
    tu_run(&t, text, true);
    cr_assert_not_null(t.ir);
    int n = 0;
    for (int b = 0; b < t.ir->nblocks; b++)
        n += t.ir->blocks[b].nops;
    tu_free(&t);
    return n;
}

/* A recurrent layer's steps repeat their ops: a long sequence compiles each kind of op once, so
 * the module grows with the distinct ops, not with the steps; a small feed-forward program gets
 * a function per op (each inlined into its block). */
Test(codegen, repeated_ops_share_functions)
{
    const char *rnn = TU_MODEL_HEAD "layer h = rnn(input, 8) { steps = 100  input = repeat  unroll = 10 }\n"
                                    "layer out = dense(h, 4) { activation = sigmoid }\n"
                                    "sg h.state { }\n" TU_MODEL_TAIL;
    int ops = ir_ops(rnn), fns = module_functions(rnn);
    cr_assert_gt(ops, 600, "%d ops", ops);
    cr_assert_lt(fns, 120, "%d functions for %d ops", fns, ops);
    const char *ff = TU_MODEL_HEAD "layer h1 = dense(input, 6) { activation = sigmoid }\n"
                                   "layer out = dense(h1, 4) { activation = sigmoid }\n" TU_MODEL_TAIL;
    ops = ir_ops(ff);
    fns = module_functions(ff);
    cr_assert_gt(fns, ops, "%d functions for %d ops: one per op, and the blocks'", fns, ops);
}
