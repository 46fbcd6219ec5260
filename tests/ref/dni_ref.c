/* Deliberately naive float64 reference of the seed's DNI and backprop steps. Every loop keeps
   numpy's (netlib-BLAS) order of operations so results can be compared bit for bit. */
#include "dni_ref.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* C = A.dot(B), A m x k, B k x n. Each element sums its k products in order from 0.0, as
   reference dgemm does (so does numpy linked against netlib BLAS). */
static void mm_nn(const double *a, const double *b, double *c, int m, int k, int n)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += a[(size_t)i * k + p] * b[(size_t)p * n + j];
            c[(size_t)i * n + j] = s;
        }
}

/* C = A.T.dot(B), A k x m, B k x n. */
static void mm_tn(const double *a, const double *b, double *c, int m, int k, int n)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += a[(size_t)p * m + i] * b[(size_t)p * n + j];
            c[(size_t)i * n + j] = s;
        }
}

/* C = A.dot(B.T), A m x k, B n x k. */
static void mm_nt(const double *a, const double *b, double *c, int m, int k, int n)
{
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            double s = 0.0;
            for (int p = 0; p < k; p++)
                s += a[(size_t)i * k + p] * b[(size_t)j * k + p];
            c[(size_t)i * n + j] = s;
        }
}

double dni_ref_np_sum(const double *a, size_t n)
{
    if (n < 8) {
        double s = 0.0;
        for (size_t i = 0; i < n; i++)
            s += a[i];
        return s;
    }
    if (n <= 128) {
        double r[8];
        size_t i;
        for (int j = 0; j < 8; j++)
            r[j] = a[j];
        for (i = 8; i < n - n % 8; i += 8)
            for (int j = 0; j < 8; j++)
                r[j] += a[i + j];
        double s = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for (; i < n; i++)
            s += a[i];
        return s;
    }
    /* Split near the middle on a multiple of 8, as numpy does. */
    size_t n2 = n / 2;
    n2 -= n2 % 8;
    return dni_ref_np_sum(a, n2) + dni_ref_np_sum(a + n2, n - n2);
}

/* out = sigmoid(in.dot(W) + b) with numpy's grouping 1 / (1 + exp(-x)). */
static void forward(const dni_ref_net *n, int l, const double *in)
{
    int k = n->widths[l], m = n->widths[l + 1];
    double *o = n->out[l];
    mm_nn(in, n->w[l], o, n->batch, k, m);
    for (int i = 0; i < n->batch; i++)
        for (int j = 0; j < m; j++) {
            double v = o[(size_t)i * m + j];
            if (n->b[l] != NULL)
                v = v + n->b[l][j];
            o[(size_t)i * m + j] = 1.0 / (1.0 + exp(-v));
        }
}

/* p -= np.average(g, axis=0) * alpha: column sums row by row, then / rows, then * alpha. */
static void sub_avg(double *p, const double *g, int rows, int cols, double alpha)
{
    for (int j = 0; j < cols; j++) {
        double s = 0.0;
        for (int i = 0; i < rows; i++)
            s += g[(size_t)i * cols + j];
        p[j] = p[j] - (s / (double)rows) * alpha;
    }
}

/* W -= a.T.dot(g) * alpha, a rows x k, g rows x m; uses n->tmp. */
static void sub_outer(dni_ref_net *n, double *w, const double *a, const double *g, int rows, int k,
                      int m)
{
    mm_tn(a, g, n->tmp, k, rows, m);
    for (size_t i = 0; i < (size_t)k * m; i++)
        w[i] = w[i] - n->tmp[i] * n->alpha;
}

static void free_all(dni_ref_net *n)
{
    for (int l = 0; l < DNI_REF_MAX_LAYERS; l++) {
        free(n->w[l]);
        free(n->b[l]);
        free(n->sg_w[l]);
        free(n->sg_b[l]);
        free(n->out[l]);
        free(n->sg[l]);
        free(n->grad[l]);
        free(n->back[l]);
        free(n->sg_delta[l]);
    }
    free(n->tmp);
    memset(n, 0, sizeof *n);
}

int dni_ref_create(dni_ref_net *n, int nlayers, const int *widths, int batch, int has_bias,
                   int sg_from_labels, double alpha)
{
    if (n == NULL)
        return -1;
    memset(n, 0, sizeof *n);
    if (widths == NULL || nlayers < 1 || nlayers > DNI_REF_MAX_LAYERS || batch < 1)
        return -1;
    size_t maxw = 0;
    for (int l = 0; l <= nlayers; l++) {
        if (widths[l] < 1)
            return -1;
        if ((size_t)widths[l] > maxw)
            maxw = (size_t)widths[l];
    }
    n->nlayers = nlayers;
    memcpy(n->widths, widths, (size_t)(nlayers + 1) * sizeof *widths);
    n->batch = batch;
    n->has_bias = has_bias != 0;
    n->sg_from_labels = sg_from_labels != 0;
    n->alpha = alpha;
    int ok = 1;
    for (int l = 0; l < nlayers; l++) {
        size_t in = (size_t)widths[l], out = (size_t)widths[l + 1];
        n->sg_in[l] = n->sg_from_labels ? widths[nlayers] : widths[l + 1];
        n->w[l] = calloc(in * out, sizeof(double));
        n->b[l] = n->has_bias ? calloc(out, sizeof(double)) : NULL;
        n->sg_w[l] = calloc((size_t)n->sg_in[l] * out, sizeof(double));
        n->sg_b[l] = calloc(out, sizeof(double));
        n->out[l] = calloc((size_t)batch * out, sizeof(double));
        n->sg[l] = calloc((size_t)batch * out, sizeof(double));
        n->grad[l] = calloc((size_t)batch * out, sizeof(double));
        n->back[l] = calloc((size_t)batch * in, sizeof(double));
        n->sg_delta[l] = calloc((size_t)batch * out, sizeof(double));
        ok = ok && n->w[l] && (n->b[l] || !n->has_bias) && n->sg_w[l] && n->sg_b[l] && n->out[l] &&
             n->sg[l] && n->grad[l] && n->back[l] && n->sg_delta[l];
    }
    /* tmp holds a weight-shaped product (in x out) or a batch x width difference. */
    size_t tmpn = maxw * maxw > (size_t)batch * maxw ? maxw * maxw : (size_t)batch * maxw;
    n->tmp = calloc(tmpn, sizeof(double));
    if (!ok || n->tmp == NULL) {
        free_all(n);
        return -1;
    }
    return 0;
}

void dni_ref_destroy(dni_ref_net *n)
{
    if (n != NULL)
        free_all(n);
}

/* p[i] = randn()*scale - shift for i in 0..cnt, numpy's (randn(...) * scale) - shift. */
static void draw(dnic_rng *r, double *p, size_t cnt, double scale, double shift)
{
    for (size_t i = 0; i < cnt; i++)
        p[i] = dnic_rng_randn(r) * scale - shift;
}

void dni_ref_init_dni(dni_ref_net *n, dnic_rng *r, double w_scale, double w_shift,
                      double sg_scale, double sg_shift)
{
    for (int l = 0; l < n->nlayers; l++) {
        size_t in = (size_t)n->widths[l], out = (size_t)n->widths[l + 1];
        draw(r, n->w[l], in * out, w_scale, w_shift);
        if (n->has_bias)
            draw(r, n->b[l], out, w_scale, w_shift);
        draw(r, n->sg_w[l], (size_t)n->sg_in[l] * out, sg_scale, sg_shift);
        draw(r, n->sg_b[l], out, sg_scale, sg_shift);
    }
}

void dni_ref_init_bp(dni_ref_net *n, dnic_rng *r, double scale, double shift)
{
    for (int l = 0; l < n->nlayers; l++) {
        size_t in = (size_t)n->widths[l], out = (size_t)n->widths[l + 1];
        draw(r, n->w[l], in * out, scale, shift);
        if (n->has_bias)
            draw(r, n->b[l], out, scale, shift);
    }
}

/* Sum|a-b| over cnt elements: np.sum(np.abs(a - b)). Uses n->tmp. */
static double sum_abs_diff(dni_ref_net *n, const double *a, const double *b, size_t cnt)
{
    for (size_t i = 0; i < cnt; i++)
        n->tmp[i] = fabs(a[i] - b[i]);
    return dni_ref_np_sum(n->tmp, cnt);
}

void dni_ref_dni_step(dni_ref_net *n, const double *x, const double *y, double *loss,
                      double *sg_loss)
{
    const int L = n->nlayers, B = n->batch;
    const double *in = x;
    /* forward_and_synthetic_update on every layer but the last. */
    for (int l = 0; l < L - 1; l++) {
        int k = n->widths[l], m = n->widths[l + 1];
        const double *sgin = n->sg_from_labels ? y : n->out[l];
        forward(n, l, in);
        mm_nn(sgin, n->sg_w[l], n->sg[l], B, n->sg_in[l], m);
        for (int i = 0; i < B; i++)
            for (int j = 0; j < m; j++) {
                size_t e = (size_t)i * m + j;
                n->sg[l][e] = n->sg[l][e] + n->sg_b[l][j];
                double o = n->out[l][e];
                /* synthetic_gradient * nonlin_deriv(output), deriv = out * (1 - out) */
                n->grad[l][e] = n->sg[l][e] * (o * (1.0 - o));
            }
        sub_outer(n, n->w[l], in, n->grad[l], B, k, m);
        if (n->b[l] != NULL)
            sub_avg(n->b[l], n->grad[l], B, m, n->alpha);
        /* The message down uses the weights just updated, as the seed does. */
        mm_nt(n->grad[l], n->w[l], n->back[l], B, m, k);
        in = n->out[l];
    }
    /* Last layer: plain forward, then normal_update with true gradient out - y. */
    int l = L - 1, k = n->widths[l], m = n->widths[l + 1];
    forward(n, l, in);
    size_t cnt = (size_t)B * m;
    for (size_t e = 0; e < cnt; e++)
        n->tmp[e] = n->out[l][e] - y[e];
    for (size_t e = 0; e < cnt; e++) {
        double o = n->out[l][e];
        n->grad[l][e] = n->tmp[e] * (o * (1.0 - o));
    }
    for (size_t e = 0; e < cnt; e++)
        n->tmp[e] = fabs(n->tmp[e]);
    *loss = dni_ref_np_sum(n->tmp, cnt);
    sub_outer(n, n->w[l], in, n->grad[l], B, k, m);
    if (n->b[l] != NULL)
        sub_avg(n->b[l], n->grad[l], B, m, n->alpha);
    mm_nt(n->grad[l], n->w[l], n->back[l], B, m, k);

    /* update_synthetic_weights from the second-to-last layer down; layer i's target is the
       message layer i+1 sent down. */
    *sg_loss = 0.0;
    for (l = L - 2; l >= 0; l--) {
        m = n->widths[l + 1];
        cnt = (size_t)B * m;
        const double *target = n->back[l + 1];
        if (l == L - 2)
            *sg_loss = sum_abs_diff(n, target, n->sg[l], cnt);
        double *delta = n->sg_delta[l];
        for (size_t e = 0; e < cnt; e++)
            delta[e] = n->sg[l][e] - target[e];
        const double *sgin = n->sg_from_labels ? y : n->out[l];
        sub_outer(n, n->sg_w[l], sgin, delta, B, n->sg_in[l], m);
        sub_avg(n->sg_b[l], delta, B, m, n->alpha);
    }
}

double dni_ref_bp_step(dni_ref_net *n, const double *x, const double *y)
{
    const int L = n->nlayers, B = n->batch;
    for (int l = 0; l < L; l++)
        forward(n, l, l == 0 ? x : n->out[l - 1]);
    /* layer_L_delta = (out - y) * out * (1 - out), left to right. */
    int m = n->widths[L];
    size_t cnt = (size_t)B * m;
    for (size_t e = 0; e < cnt; e++) {
        double o = n->out[L - 1][e];
        n->grad[L - 1][e] = (o - y[e]) * o * (1.0 - o);
    }
    /* delta_l = delta_{l+1}.dot(W_{l+1}.T) * out_l * (1 - out_l), with the old weights. */
    for (int l = L - 2; l >= 0; l--) {
        int k = n->widths[l + 1];
        mm_nt(n->grad[l + 1], n->w[l + 1], n->grad[l], B, n->widths[l + 2], k);
        for (size_t e = 0; e < (size_t)B * k; e++) {
            double o = n->out[l][e];
            n->grad[l][e] = n->grad[l][e] * o * (1.0 - o);
        }
    }
    for (int l = 0; l < L; l++) {
        const double *in = l == 0 ? x : n->out[l - 1];
        sub_outer(n, n->w[l], in, n->grad[l], B, n->widths[l], n->widths[l + 1]);
        if (n->b[l] != NULL)
            sub_avg(n->b[l], n->grad[l], B, n->widths[l + 1], n->alpha);
    }
    for (size_t e = 0; e < cnt; e++)
        n->tmp[e] = fabs(n->grad[L - 1][e]);
    return dni_ref_np_sum(n->tmp, cnt);
}
