/* The op table's rules (ir_ops.def): each op's operand shapes, its cost, and what it reads and
 * writes.  The verifier, the printer, the cost model and the stage planner look ops up here. */
#include <stdarg.h>
#include <stdio.h>

#include "dnic.h"

static const dnic_buffer_desc *B(const dnic_ir *ir, int id)
{
    return &ir->bufs[id];
}

/* Whether buffer id is [rows, cols]; else the reason goes to why. */
static bool want(const dnic_ir *ir, int id, int rows, int cols, char *why, size_t n)
{
    const dnic_buffer_desc *b = B(ir, id);
    if (b->rows == rows && b->cols == cols)
        return true;
    snprintf(why, n, "%s is [%d,%d], expected [%d,%d]", b->name, b->rows, b->cols, rows, cols);
    return false;
}

__attribute__((format(printf, 3, 4))) static bool say(char *why, size_t n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, n, fmt, ap);
    va_end(ap);
    return false;
}

static bool no_scratch(const dnic_ir_op *o, char *why, size_t n)
{
    return o->scratch < 0 || say(why, n, "takes no scratch buffer");
}

/* A TEMP scratch buffer of [rows, cols]. */
static bool scratch(const dnic_ir *ir, const dnic_ir_op *o, int rows, int cols, const char *what, char *why, size_t n)
{
    if (o->scratch < 0 || o->scratch >= ir->nbufs || B(ir, o->scratch)->kind != DNIC_BUF_TEMP)
        return say(why, n, "needs a temporary scratch buffer for %s", what);
    return want(ir, o->scratch, rows, cols, why, n);
}

static double elems(const dnic_ir *ir, int id)
{
    return (double)B(ir, id)->rows * B(ir, id)->cols;
}

/* ---- shape rules ---------------------------------------------------------------------------- */

static bool shape_dense(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const int *s = o->src;
    int K = B(ir, s[1])->rows, N = B(ir, s[1])->cols;
    return want(ir, s[0], ir->batch, K, why, n) && want(ir, o->dst, ir->batch, N, why, n) &&
           (s[2] < 0 || want(ir, s[2], 1, N, why, n)) && no_scratch(o, why, n);
}

static bool shape_concat(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    int w = 0, parts = 0;
    for (int i = 0; i < DNIC_MAX_SRC; i++)
        if (o->src[i] >= 0) {
            if (!want(ir, o->src[i], ir->batch, B(ir, o->src[i])->cols, why, n))
                return false;
            w += B(ir, o->src[i])->cols;
            parts++;
        }
    if (parts < 2)
        return say(why, n, "concatenates %d buffer", parts);
    return want(ir, o->dst, ir->batch, w, why, n) && no_scratch(o, why, n);
}

static bool shape_slice(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst);
    if (o->off < 0 || o->off + d->cols > B(ir, o->src[0])->cols)
        return say(why, n, "columns %d..%d are outside %s", o->off, o->off + d->cols, B(ir, o->src[0])->name);
    return want(ir, o->src[0], d->rows, B(ir, o->src[0])->cols, why, n) && no_scratch(o, why, n);
}

static bool shape_place(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst), *s = B(ir, o->src[0]);
    if (o->off < 0 || o->off + s->cols > d->cols)
        return say(why, n, "columns %d..%d are outside %s", o->off, o->off + s->cols, d->name);
    return want(ir, o->src[0], d->rows, s->cols, why, n) && no_scratch(o, why, n);
}

/* Elementwise over two buffers of dst's shape. */
static bool shape_same2(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst);
    return want(ir, o->src[0], d->rows, d->cols, why, n) && want(ir, o->src[1], d->rows, d->cols, why, n) &&
           no_scratch(o, why, n);
}

/* Elementwise over one buffer of dst's shape. */
static bool shape_same1(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst);
    return want(ir, o->src[0], d->rows, d->cols, why, n) && no_scratch(o, why, n);
}

static bool shape_matmul_nt(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const int *s = o->src;
    int K = B(ir, s[1])->rows, N = B(ir, s[1])->cols;
    return want(ir, s[0], ir->batch, N, why, n) && want(ir, o->dst, ir->batch, K, why, n) &&
           scratch(ir, o, N, K, "W^T", why, n);
}

static bool shape_sgd_w(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst);
    if (!want(ir, o->src[0], ir->batch, d->rows, why, n) || !want(ir, o->src[1], ir->batch, d->cols, why, n))
        return false;
    if (dnic_sgd_w_transposes(d->rows, ir->batch, ir->dtype) != (o->scratch >= 0))
        return say(why, n, "has a scratch buffer for x^T exactly when dnic_sgd_w_transposes");
    return o->scratch < 0 || scratch(ir, o, d->rows, ir->batch, "x^T", why, n);
}

static bool shape_sgd_b(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst);
    return want(ir, o->src[0], ir->batch, d->cols, why, n) && want(ir, o->dst, 1, d->cols, why, n) &&
           no_scratch(o, why, n);
}

static bool shape_update(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst), *g = B(ir, o->src[0]);
    if (g->cols != d->cols || o->off < 0 || o->off + d->rows > g->rows)
        return say(why, n, "rows %d..%d of %s [%d,%d] are not a gradient for %s [%d,%d]", o->off, o->off + d->rows,
                   g->name, g->rows, g->cols, d->name, d->rows, d->cols);
    return no_scratch(o, why, n);
}

/* GRAD_W: dst[K,N] from s0[R,K] and the first R rows of s1[>=R,N] (s0 = -1: dst[1,N], column
 * sums of s1). */
static bool shape_grad_w(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst), *g = B(ir, o->src[1]);
    if (g->cols != d->cols)
        return say(why, n, "%s has %d columns, %s %d", g->name, g->cols, d->name, d->cols);
    if (o->src[0] < 0)
        return want(ir, o->dst, 1, d->cols, why, n) && no_scratch(o, why, n);
    const dnic_buffer_desc *x = B(ir, o->src[0]);
    if (x->rows > g->rows)
        return say(why, n, "%s has %d rows, more than %s's %d", x->name, x->rows, g->name, g->rows);
    return want(ir, o->dst, x->cols, d->cols, why, n) && no_scratch(o, why, n);
}

/* REDUCE: any temporary, summed in place over the replicas. */
static bool shape_reduce(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    (void)ir;
    return no_scratch(o, why, n);
}

static bool shape_stack(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    const dnic_buffer_desc *d = B(ir, o->dst), *s = B(ir, o->src[0]);
    if (s->cols != d->cols || o->off < 0 || o->off + s->rows > d->rows)
        return say(why, n, "%s [%d,%d] does not fit at row %d of %s [%d,%d]", s->name, s->rows, s->cols, o->off, d->name,
                   d->rows, d->cols);
    return no_scratch(o, why, n);
}

static bool shape_abs_sum(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    return want(ir, o->dst, 1, 1, why, n) && no_scratch(o, why, n);
}

static bool shape_loss_sum(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    return want(ir, o->dst, 1, 1, why, n) &&
           want(ir, o->src[1], B(ir, o->src[0])->rows, B(ir, o->src[0])->cols, why, n) && no_scratch(o, why, n);
}

/* BN_MEAN, BN_VAR: a [1,N] statistic of s0's columns (BN_VAR around the mean s1). */
static bool shape_col_stat(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    int N = B(ir, o->dst)->cols;
    return want(ir, o->dst, 1, N, why, n) && want(ir, o->src[0], ir->batch, N, why, n) &&
           (o->op != DNIC_OP_BN_VAR || want(ir, o->src[1], 1, N, why, n)) && no_scratch(o, why, n);
}

/* BN_NORM, AFFINE: dst and s0 [B,N], then two rows of [1,N]. */
static bool shape_rowwise(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    int N = B(ir, o->dst)->cols;
    return want(ir, o->dst, ir->batch, N, why, n) && want(ir, o->src[0], ir->batch, N, why, n) &&
           want(ir, o->src[1], 1, N, why, n) && want(ir, o->src[2], 1, N, why, n) && no_scratch(o, why, n);
}

static bool shape_running(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    int N = B(ir, o->dst)->cols;
    if (!(o->momentum > 0 && o->momentum <= 1 && o->scale > 0))
        return say(why, n, "momentum %g or scale %g is out of range", o->momentum, o->scale);
    return want(ir, o->dst, 1, N, why, n) && want(ir, o->src[0], 1, N, why, n) && no_scratch(o, why, n);
}

static bool shape_dparams(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    int N = B(ir, o->dst)->cols;
    return want(ir, o->dst, 2, N, why, n) && want(ir, o->src[0], ir->batch, N, why, n) &&
           want(ir, o->src[1], ir->batch, N, why, n) && no_scratch(o, why, n);
}

static bool shape_bn_grad(const dnic_ir *ir, const dnic_ir_op *o, char *why, size_t n)
{
    int N = B(ir, o->dst)->cols, Bn = ir->batch;
    return want(ir, o->dst, Bn, N, why, n) && want(ir, o->src[0], Bn, N, why, n) && want(ir, o->src[1], Bn, N, why, n) &&
           want(ir, o->src[2], 1, N, why, n) && want(ir, o->src[3], 1, N, why, n) &&
           want(ir, o->src[4], 2, N, why, n) && no_scratch(o, why, n);
}

/* ---- costs ---------------------------------------------------------------------------------- */

static double flops_dense(const dnic_ir *ir, const dnic_ir_op *o)
{
    return 2 * elems(ir, o->dst) * B(ir, o->src[1])->rows;
}

static double flops_matmul_nt(const dnic_ir *ir, const dnic_ir_op *o)
{
    return 2 * elems(ir, o->dst) * B(ir, o->src[0])->cols;
}

static double flops_sgd_w(const dnic_ir *ir, const dnic_ir_op *o)
{
    return 2 * elems(ir, o->dst) * ir->batch;
}

static double flops_grad_w(const dnic_ir *ir, const dnic_ir_op *o)
{
    return (o->src[0] < 0 ? 1 : 2) * elems(ir, o->dst) * B(ir, o->src[o->src[0] < 0 ? 1 : 0])->rows;
}

static double flops_sgd_b(const dnic_ir *ir, const dnic_ir_op *o)
{
    return elems(ir, o->dst) * ir->batch;
}

/* everything else does a few operations per element of its first source (or its dst) */
static double flops_elementwise(const dnic_ir *ir, const dnic_ir_op *o)
{
    return o->src[0] >= 0 ? elems(ir, o->src[0]) : elems(ir, o->dst);
}

#define flops_concat flops_elementwise
#define flops_slice flops_elementwise
#define flops_place flops_elementwise
#define flops_stack flops_elementwise
#define flops_same2 flops_elementwise
#define flops_same1 flops_elementwise
#define flops_update flops_elementwise
#define flops_abs_sum flops_elementwise
#define flops_loss_sum flops_elementwise
#define flops_col_stat flops_elementwise
#define flops_rowwise flops_elementwise
#define flops_running flops_elementwise
#define flops_dparams flops_elementwise
#define flops_bn_grad flops_elementwise
#define flops_reduce flops_elementwise

const dnic_op_info dnic_op_table[DNIC_OP_COUNT] = {
#define DNIC_OP(e, nm, ns, opt, d, at, rule) \
    [DNIC_OP_##e] = {nm, ns, opt, DNIC_DST_##d, (at), shape_##rule, flops_##rule},
#define ACT DNIC_ATTR_ACT
#define LR DNIC_ATTR_LR
#define LOSS DNIC_ATTR_LOSS
#define OFF DNIC_ATTR_OFF
#define EPS DNIC_ATTR_EPS
#define MOMENTUM DNIC_ATTR_MOMENTUM
#define LAMBDA DNIC_ATTR_LAMBDA
#define CLIP DNIC_ATTR_CLIP
#include "ir_ops.def"
#undef ACT
#undef LR
#undef LOSS
#undef OFF
#undef EPS
#undef MOMENTUM
#undef LAMBDA
#undef CLIP
#undef DNIC_OP
};

/* one line of ir_ops.def per enum value: the table has no hole */
static const char *const OP_NAMES[] = {
#define DNIC_OP(e, nm, ns, opt, d, at, rule) nm,
#include "ir_ops.def"
#undef DNIC_OP
};
_Static_assert(sizeof OP_NAMES / sizeof OP_NAMES[0] == DNIC_OP_COUNT, "op table and enum disagree");
_Static_assert(DNIC_MAX_SRC <= 5, "codegen passes at most 5 sources");

const char *dnic_op_name(dnic_op op)
{
    DNIC_ASSERT((unsigned)op < DNIC_OP_COUNT);
    return dnic_op_table[op].name;
}

int dnic_op_nsrc(dnic_op op)
{
    DNIC_ASSERT((unsigned)op < DNIC_OP_COUNT);
    return dnic_op_table[op].nsrc;
}

void dnic_op_uses(const dnic_ir_op *o, int *reads, int *nr, int *writes, int *nw)
{
    const dnic_op_info *info = &dnic_op_table[o->op];
    *nr = *nw = 0;
    for (int i = 0; i < DNIC_MAX_SRC; i++)
        if (o->src[i] >= 0)
            reads[(*nr)++] = o->src[i];
    /* updates and accumulations read what they write (and a temporary summed into) */
    if ((info->dst == DNIC_DST_TEMP && o->accumulate) ||
        (info->dst != DNIC_DST_TEMP && !(info->dst == DNIC_DST_ACC && !o->accumulate && o->op == DNIC_OP_ABS_SUM)))
        reads[(*nr)++] = o->dst;
    for (int i = 0; i < 3; i++)
        if (o->state[i] >= 0) {
            reads[(*nr)++] = o->state[i];
            writes[(*nw)++] = o->state[i];
        }
    writes[(*nw)++] = o->dst;
    if (o->scratch >= 0 && o->scratch_ready)
        reads[(*nr)++] = o->scratch;
    else if (o->scratch >= 0)
        writes[(*nw)++] = o->scratch;
}

double dnic_op_bytes(const dnic_ir *ir, const dnic_ir_op *o)
{
    int r[12], w[12], nr, nw;
    dnic_op_uses(o, r, &nr, w, &nw);
    double bytes = 0;
    for (int i = 0; i < nr; i++)
        bytes += elems(ir, r[i]) * (B(ir, r[i])->dtype == DNIC_F64 ? 8.0 : 4.0);
    for (int i = 0; i < nw; i++)
        bytes += elems(ir, w[i]) * (B(ir, w[i])->dtype == DNIC_F64 ? 8.0 : 4.0);
    return bytes;
}
