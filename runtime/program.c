/* Programs and datasets: one allocation for every buffer, planned once before training, and
 * the seeded initialisation of parameters in the model's draw order. */
#define _DEFAULT_SOURCE /* madvise's MADV_HUGEPAGE (Linux) */
#include <math.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sys/mman.h>

#include "dnic/program.h"
#include "rng.h"

enum { ALIGN = 64 }; /* a cache line, and enough for any vector width */

/* Buffers of at least HUGE_MIN bytes in all are asked for in 2 MiB pages (Linux's transparent
 * huge pages, where the system leaves them to madvise): the kernels read matrices a row at a
 * time, thousands of 4 KiB pages apart, and with small pages the translations no longer fit
 * the TLB. numpy does the same for its arrays of 4 MiB and more. */
#define HUGE_PAGE ((size_t)2 << 20)
#define HUGE_MIN ((size_t)4 << 20)

void *dnic_alloc_pages(size_t total)
{
    size_t align = total < HUGE_MIN ? ALIGN : HUGE_PAGE, size = (total + align - 1) / align * align;
    void *m = aligned_alloc(align, size);
#ifdef MADV_HUGEPAGE
    if (m && align == HUGE_PAGE)
        madvise(m, size, MADV_HUGEPAGE); /* only advice */
#endif
    return m;
}

size_t dnic_dtype_size(dnic_dtype t)
{
    return t == DNIC_F64 ? 8 : 4;
}

static size_t buf_bytes(const dnic_buffer_desc *b)
{
    size_t n = (size_t)b->rows * (size_t)b->cols * dnic_dtype_size(b->dtype);
    return (n + ALIGN - 1) / ALIGN * ALIGN;
}

dnic_status dnic_program_alloc(dnic_program *p)
{
    int slots = p->nslots > 0 ? p->nslots : 1;
    p->nslots = slots;
    size_t total = 0;
    for (int i = 0; i < p->nbufs; i++) {
        dnic_buf_kind k = p->bufs[i].kind;
        if (k != DNIC_BUF_INPUT && k != DNIC_BUF_LABELS)
            total += buf_bytes(&p->bufs[i]) * (k == DNIC_BUF_TEMP ? (size_t)slots : 1);
    }
    p->slot_ptrs = calloc((size_t)slots, sizeof *p->slot_ptrs);
    bool ok = p->slot_ptrs != NULL;
    for (int s = 0; ok && s < slots; s++)
        ok = (p->slot_ptrs[s] = calloc((size_t)p->nbufs + 1, sizeof **p->slot_ptrs)) != NULL;
    p->mem = ok && total ? dnic_alloc_pages(total) : NULL;
    if (!ok || (total && !p->mem)) {
        dnic_program_free(p);
        return DNIC_ERR_NOMEM;
    }
    memset(p->mem, 0, total);
    char *m = p->mem;
    for (int i = 0; i < p->nbufs; i++) {
        dnic_buf_kind k = p->bufs[i].kind;
        if (k == DNIC_BUF_INPUT || k == DNIC_BUF_LABELS)
            continue;
        for (int s = 0; s < slots; s++) {
            p->slot_ptrs[s][i] = m;
            if (k == DNIC_BUF_TEMP || s == slots - 1)
                m += buf_bytes(&p->bufs[i]);
        }
    }
    p->ptrs = p->slot_ptrs[0];
    return DNIC_OK;
}

void dnic_program_free(dnic_program *p)
{
    free(p->mem);
    for (int s = 0; p->slot_ptrs && s < p->nslots; s++)
        free(p->slot_ptrs[s]);
    free(p->slot_ptrs);
    p->mem = NULL;
    p->ptrs = NULL;
    p->slot_ptrs = NULL;
}

int dnic_program_find(const dnic_program *p, const char *name)
{
    for (int i = 0; i < p->nbufs; i++)
        if (strcmp(p->bufs[i].name, name) == 0)
            return i;
    return -1;
}

void dnic_program_init_params(dnic_program *p, dnic_rng *rng)
{
    for (int order = 0;; order++) {
        int i = 0;
        while (i < p->nbufs && !(p->bufs[i].kind == DNIC_BUF_PARAM && p->bufs[i].init_order == order))
            i++;
        if (i == p->nbufs)
            return;
        const dnic_buffer_desc *b = &p->bufs[i];
        size_t n = (size_t)b->rows * (size_t)b->cols;
        for (size_t k = 0; k < n; k++) {
            double v = b->shift;
            if (b->draw == DNIC_DRAW_RANDN)
                v = dnic_rng_randn(rng) * b->scale + b->shift;
            else if (b->draw == DNIC_DRAW_RAND)
                v = dnic_rng_rand(rng) * b->scale + b->shift;
            if (b->dtype == DNIC_F64)
                ((double *)p->ptrs[i])[k] = v;
            else
                ((float *)p->ptrs[i])[k] = (float)v;
        }
    }
}

dnic_status dnic_dataset_from_f64(dnic_dataset *d, dnic_dtype dtype, int n, int inputs, int labels, const double *x,
                                  const double *y)
{
    memset(d, 0, sizeof *d);
    size_t es = dnic_dtype_size(dtype);
    size_t nx = (size_t)n * (size_t)inputs, ny = (size_t)n * (size_t)labels;
    d->x = dnic_alloc_pages(nx * es + 1); /* batches gather rows from all over it */
    d->y = malloc(ny * es + 1);
    if (!d->x || !d->y) {
        dnic_dataset_free(d);
        return DNIC_ERR_NOMEM;
    }
    d->n = n;
    d->inputs = inputs;
    d->labels = labels;
    d->dtype = dtype;
    if (dtype == DNIC_F64) {
        memcpy(d->x, x, nx * es);
        memcpy(d->y, y, ny * es);
    } else {
        for (size_t i = 0; i < nx; i++)
            ((float *)d->x)[i] = (float)x[i];
        for (size_t i = 0; i < ny; i++)
            ((float *)d->y)[i] = (float)y[i];
    }
    return DNIC_OK;
}

size_t dnic_dataset_x_size(const dnic_dataset *d)
{
    return d->x_bytes ? 1 : dnic_dtype_size(d->dtype);
}

void dnic_dataset_rows(const dnic_dataset *d, void *dst, const int *rows, size_t first, int count)
{
    size_t w = (size_t)d->inputs;
    if (!d->x_bytes) {
        size_t row = w * dnic_dtype_size(d->dtype);
        for (int i = 0; i < count; i++)
            memcpy((char *)dst + (size_t)i * row, (const char *)d->x + (rows ? (size_t)rows[i] : first + (size_t)i) * row,
                   row);
        return;
    }
    /* the loader's conversion, value by value: float64 product, then rounded to the dtype */
    double v64[256];
    float v32[256];
    for (int b = 0; b < 256; b++) {
        v64[b] = (double)b * d->x_scale;
        v32[b] = (float)v64[b];
    }
    for (int i = 0; i < count; i++) {
        const unsigned char *s = (const unsigned char *)d->x + (rows ? (size_t)rows[i] : first + (size_t)i) * w;
        if (d->dtype == DNIC_F64) {
            double *o = (double *)dst + (size_t)i * w;
            for (size_t j = 0; j < w; j++)
                o[j] = v64[s[j]];
        } else {
            float *o = (float *)dst + (size_t)i * w;
            for (size_t j = 0; j < w; j++)
                o[j] = v32[s[j]];
        }
    }
}

void dnic_dataset_free(dnic_dataset *d)
{
    free(d->x);
    free(d->y);
    d->x = d->y = NULL;
}
