/* Plain float64 reference of seed 001's training steps (DNI with linear synthetic-gradient
   modules, and the backprop baseline), kept in numpy's operation order so JIT-compiled kernels
   can be checked against it bit for bit. Bitwise equal to the numpy code when numpy uses netlib
   BLAS and libm's exp; numpy >= 1.22 on AVX512F CPUs has its own exp (off by 1 ulp on ~1/4 of
   inputs) unless run with NPY_DISABLE_CPU_FEATURES="AVX512F ...". */
#ifndef DNI_REF_H
#define DNI_REF_H

#include <stddef.h>

#include "rng.h" /* runtime/ */

#define DNI_REF_MAX_LAYERS 16

/* A chain of dense sigmoid layers. Layer i maps widths[i] -> widths[i+1]; every matrix is
   row-major. All arrays are owned by the net (dni_ref_create/dni_ref_destroy). */
typedef struct dni_ref_net {
    int nlayers;                         /* L, 1..DNI_REF_MAX_LAYERS */
    int widths[DNI_REF_MAX_LAYERS + 1];  /* widths[0] = input width, widths[L] = label width */
    int batch;                           /* rows per step */
    int has_bias;
    int sg_from_labels; /* 0: SG module input = layer output (seed 001);
                           1: SG module input = batch_y (the blog's label-conditioned variant) */
    double alpha;

    /* Parameters. */
    double *w[DNI_REF_MAX_LAYERS];    /* widths[i] x widths[i+1] */
    double *b[DNI_REF_MAX_LAYERS];    /* widths[i+1]; NULL when !has_bias */
    int sg_in[DNI_REF_MAX_LAYERS];    /* widths[i+1], or widths[L] when sg_from_labels */
    double *sg_w[DNI_REF_MAX_LAYERS]; /* sg_in[i] x widths[i+1]; the last layer's exists (the seed
                                         draws it) but is never used */
    double *sg_b[DNI_REF_MAX_LAYERS]; /* widths[i+1] */

    /* Values of the last step, each batch x width, left for inspection by tests. */
    double *out[DNI_REF_MAX_LAYERS];  /* layer output (sigmoid) */
    double *sg[DNI_REF_MAX_LAYERS];   /* DNI: synthetic gradient prediction (not for the last) */
    double *grad[DNI_REF_MAX_LAYERS]; /* DNI: sg*out*(1-out), last layer: (out-y)*out*(1-out);
                                         backprop: the layer's delta */
    double *back[DNI_REF_MAX_LAYERS]; /* DNI: grad.dot(W_new.T), batch x widths[i]: the target
                                         for layer i-1's SG module */
    double *sg_delta[DNI_REF_MAX_LAYERS]; /* DNI: sg - target (synthetic_gradient_delta) */
    double *tmp;                      /* scratch: max(width*width, batch*width) doubles */
} dni_ref_net;

/* Allocates a net with zeroed parameters. widths has nlayers+1 entries, all >= 1.
   Returns 0, or -1 on bad arguments or allocation failure (then *n holds nothing to free). */
int dni_ref_create(dni_ref_net *n, int nlayers, const int *widths, int batch, int has_bias,
                   int sg_from_labels, double alpha);
void dni_ref_destroy(dni_ref_net *n);

/* Draws the parameters as the seed's DNI constructors do, layer after layer (last included):
   w = randn(in,out)*w_scale - w_shift, then (with biases) b = randn(out)*w_scale - w_shift,
   then sg_w = randn(sg_in,out)*sg_scale - sg_shift, sg_b = randn(out)*sg_scale - sg_shift.
   Seed 001 DNI: (2, 1, 0, 0). */
void dni_ref_init_dni(dni_ref_net *n, dnic_rng *r, double w_scale, double w_shift,
                      double sg_scale, double sg_shift);
/* Draws as the backprop baseline does: per layer w = randn(in,out)*scale - shift, then (with
   biases, not in the seed) b likewise. SG modules are left alone. Seed 001: (0.2, 0.1). */
void dni_ref_init_bp(dni_ref_net *n, dnic_rng *r, double scale, double shift);

/* One DNI step on one batch (x: batch x widths[0], y: batch x widths[L]), as the seed's loop
   body: forward_and_synthetic_update on layers 0..L-2, forward of the last layer, its
   normal_update with out-y, then update_synthetic_weights from layer L-2 down to 0.
   *loss = sum|out-y|; *sg_loss = sum|target - prediction| of SG module L-2 (0 when L == 1). */
void dni_ref_dni_step(dni_ref_net *n, const double *x, const double *y, double *loss,
                      double *sg_loss);

/* One backprop step as the seed's baseline: deltas with the old weights, then all updates.
   Returns sum|last delta| where last delta = (out-y)*out*(1-out). */
double dni_ref_bp_step(dni_ref_net *n, const double *x, const double *y);

/* np.sum of a contiguous float64 array: numpy's pairwise summation (8 accumulators up to 128
   elements, halving above), which is what np.sum(np.abs(delta)) does. */
double dni_ref_np_sum(const double *a, size_t n);

#endif
