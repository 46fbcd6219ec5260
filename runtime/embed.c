/* The runtime of emitted objects: rebuilds a program from the description text the compiler
 * embedded, initialises it from the model's seed exactly as `dnic --run` does, and runs
 * training steps and batched inference with the object's block functions. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dnic/embed.h"
#include "rng.h"
#include "safetensors.h"

struct dnic_rt {
    dnic_program p;
    dnic_buffer_desc *bufs;
    dnic_block_desc *blocks;
    int *sg_acc;
    int *state_in, *state_out, nstates; /* the STREAM block's carried states, in layer order */
    int stream;           /* that block, or -1 */
    char *names;          /* every name, NUL-separated */
    void *xpad, *ypad;    /* one batch of scratch for predict */
    char *err;            /* the last error (heap: dnic_rt_save takes a const model) */
};

enum { ERRLEN = 512 };

void dnic_rt_free(dnic_rt *m)
{
    if (!m)
        return;
    dnic_program_free(&m->p);
    free(m->bufs);
    free(m->blocks);
    free(m->sg_acc);
    free(m->state_in);
    free(m->state_out);
    free(m->names);
    free(m->xpad);
    free(m->ypad);
    free(m->err);
    free(m);
}

/* Copies the next whitespace-separated word of *s into the names area. */
static char *word(const char **s, char **names)
{
    while (**s == ' ')
        (*s)++;
    size_t n = strcspn(*s, " \n");
    if (n == 0)
        return NULL;
    char *w = *names;
    memcpy(w, *s, n);
    w[n] = '\0';
    *names += n + 1;
    *s += n;
    return w;
}

static bool parse(dnic_rt *m, const char *desc, const dnic_block_fn *fns, int nfns, uint32_t *seed, long *skip)
{
    int nbufs = 0, nblocks = 0, nsg = 0, nstates = 0;
    for (const char *l = desc; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l)) {
        nbufs += !strncmp(l, "buf ", 4);
        nblocks += !strncmp(l, "block ", 6);
        nsg += !strncmp(l, "sg ", 3);
        nstates += !strncmp(l, "state ", 6);
    }
    if (nblocks != nfns || nbufs == 0)
        return false;
    m->bufs = calloc((size_t)nbufs, sizeof *m->bufs);
    m->blocks = calloc((size_t)nblocks, sizeof *m->blocks);
    m->sg_acc = calloc((size_t)nsg + 1, sizeof *m->sg_acc);
    m->state_in = calloc((size_t)nstates + 1, sizeof *m->state_in);
    m->state_out = calloc((size_t)nstates + 1, sizeof *m->state_out);
    m->names = malloc(strlen(desc) + 1);
    if (!m->bufs || !m->blocks || !m->sg_acc || !m->state_in || !m->state_out || !m->names)
        return false;
    char *names = m->names;
    int ib = 0, ik = 0, is = 0, dtype = 0;
    m->stream = -1;
    for (const char *l = desc; *l;) {
        const char *end = strchr(l, '\n');
        if (!end)
            end = l + strlen(l);
        const char *s = l;
        if (!strncmp(l, "buf ", 4)) {
            s += 4;
            dnic_buffer_desc *b = &m->bufs[ib++];
            b->name = word(&s, &names);
            int kind, draw, order;
            if (!b->name || sscanf(s, " %d %d %d %d %la %la %d", &kind, &b->rows, &b->cols, &draw, &b->scale, &b->shift,
                                   &order) != 7)
                return false;
            b->kind = (dnic_buf_kind)kind;
            b->draw = (dnic_draw)draw;
            b->init_order = order;
            b->dtype = b->kind == DNIC_BUF_ACC ? DNIC_F64 : (dnic_dtype)dtype;
        } else if (!strncmp(l, "block ", 6)) {
            s += 6;
            dnic_block_desc *b = &m->blocks[ik];
            b->name = word(&s, &names);
            int phase;
            if (!b->name || sscanf(s, " %d %d %d", &b->stage, &phase, &b->acc) != 3)
                return false;
            b->phase = (dnic_block_phase)phase;
            if (b->phase == DNIC_PHASE_STREAM)
                m->stream = ik;
            b->fn = fns[ik++];
        } else if (!strncmp(l, "sg ", 3)) {
            if (sscanf(l + 3, " %d", &m->sg_acc[is++]) != 1)
                return false;
        } else if (!strncmp(l, "state ", 6)) {
            if (sscanf(l + 6, " %d %d", &m->state_in[m->nstates], &m->state_out[m->nstates]) != 2)
                return false;
            m->nstates++;
        } else if (sscanf(l, "dnic-model 1 %d %d %u %ld %d %d %d %d %d", &dtype, &m->p.batch, seed, skip, &m->p.x,
                          &m->p.y, &m->p.out, &m->p.loss_acc, &m->p.nstages) != 9) {
            return false;
        }
        l = *end ? end + 1 : end;
    }
    m->p.bufs = m->bufs;
    m->p.nbufs = nbufs;
    m->p.blocks = m->blocks;
    m->p.nblocks = nblocks;
    m->p.dtype = (dnic_dtype)dtype;
    m->p.sg_acc = m->sg_acc;
    m->p.nsg = nsg;
    for (int i = 0; i < nbufs; i++)
        if (m->bufs[i].rows <= 0 || m->bufs[i].cols <= 0)
            return false;
    for (int i = 0; i < m->nstates; i++)
        if (m->state_in[i] < 0 || m->state_in[i] >= nbufs || m->state_out[i] < 0 || m->state_out[i] >= nbufs ||
            m->bufs[m->state_in[i]].cols != m->bufs[m->state_out[i]].cols || m->stream < 0)
            return false;
    return m->p.x >= 0 && m->p.x < nbufs && m->p.y >= 0 && m->p.y < nbufs && m->p.out >= 0 && m->p.out < nbufs &&
           m->p.loss_acc >= 0 && m->p.loss_acc < nbufs && m->p.batch > 0;
}

dnic_rt *dnic_rt_create(const char *desc, const dnic_block_fn *fns, int nfns)
{
    dnic_rt *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    uint32_t seed = 0;
    long skip = 0;
    m->err = calloc(1, ERRLEN);
    if (!m->err || !parse(m, desc, fns, nfns, &seed, &skip) || dnic_program_alloc(&m->p) != DNIC_OK) {
        dnic_rt_free(m);
        return NULL;
    }
    size_t es = dnic_dtype_size(m->p.dtype);
    m->xpad = calloc((size_t)m->p.batch * (size_t)m->bufs[m->p.x].cols, es);
    m->ypad = calloc((size_t)m->p.batch * (size_t)m->bufs[m->p.y].cols, es);
    if (!m->xpad || !m->ypad) {
        dnic_rt_free(m);
        return NULL;
    }
    /* the seeds draw the data first from the same stream: skip those draws */
    dnic_rng rng;
    dnic_rng_seed(&rng, seed);
    for (long i = 0; i < skip; i++)
        dnic_rng_rand(&rng);
    dnic_program_init_params(&m->p, &rng);
    m->p.ptrs[m->p.x] = m->xpad;
    m->p.ptrs[m->p.y] = m->ypad;
    return m;
}

/* A NULL model or path from the calling program is refused, not dereferenced. */
int dnic_rt_load(dnic_rt *m, const char *path)
{
    if (!m)
        return 1;
    if (!path || !*path) {
        snprintf(m->err, ERRLEN, "load: no file name given");
        return 1;
    }
    return dnic_program_load(&m->p, path, m->err, ERRLEN) != DNIC_OK;
}

int dnic_rt_save(const dnic_rt *m, const char *path)
{
    if (!m)
        return 1;
    if (!path || !*path) {
        snprintf(m->err, ERRLEN, "save: no file name given");
        return 1;
    }
    return dnic_program_save(&m->p, path, m->err, ERRLEN) != DNIC_OK;
}

const char *dnic_rt_error(const dnic_rt *m)
{
    return m ? m->err : "no model (NULL)";
}

dnic_program *dnic_rt_program(dnic_rt *m)
{
    return &m->p;
}

double dnic_rt_train_step(dnic_rt *m, const void *x, const void *y)
{
    dnic_program_zero_accs(&m->p);
    dnic_program_step(&m->p, x, y);
    return *(double *)m->p.ptrs[m->p.loss_acc];
}

void dnic_rt_predict(dnic_rt *m, const void *x, void *y, int n)
{
    dnic_program_predict(&m->p, m->xpad, x, y, n);
}

/* Copies the carried states of rows r..r+rows-1 between the caller's state rows (each the
 * layers' states side by side) and the buffers (in: into `bufs`, else out of them). */
static void move_states(dnic_rt *m, const int *bufs, void *state, size_t r, size_t rows, bool in)
{
    size_t es = dnic_dtype_size(m->p.dtype), S = (size_t)dnic_rt_state_size(m), off = 0;
    for (int k = 0; k < m->nstates; k++) {
        size_t w = (size_t)m->bufs[bufs[k]].cols;
        char *buf = m->p.ptrs[bufs[k]];
        for (size_t i = 0; i < rows; i++) {
            char *row = (char *)state + ((r + i) * S + off) * es;
            if (in)
                memcpy(buf + i * w * es, row, w * es);
            else
                memcpy(row, buf + i * w * es, w * es);
        }
        off += w;
    }
}

int dnic_rt_state_size(const dnic_rt *m)
{
    int S = 0;
    for (int k = 0; k < m->nstates; k++)
        S += m->bufs[m->state_in[k]].cols;
    return S;
}

void dnic_rt_predict_state(dnic_rt *m, const void *x, void *y, int n, void *state)
{
    if (m->stream < 0 || n <= 0)
        return;
    size_t es = dnic_dtype_size(m->p.dtype), B = (size_t)m->p.batch;
    size_t in = (size_t)m->bufs[m->p.x].cols, out = (size_t)m->bufs[m->p.out].cols;
    for (size_t r = 0; r < (size_t)n; r += B) {
        size_t rows = (size_t)n - r < B ? (size_t)n - r : B;
        memset(m->xpad, 0, B * in * es);
        memcpy(m->xpad, (const char *)x + r * in * es, rows * in * es);
        for (int k = 0; k < m->nstates; k++) /* the padding rows start from zero */
            memset(m->p.ptrs[m->state_in[k]], 0, B * (size_t)m->bufs[m->state_in[k]].cols * es);
        move_states(m, m->state_in, state, r, rows, true);
        m->p.ptrs[m->p.x] = m->xpad;
        m->p.blocks[m->stream].fn(m->p.ptrs);
        memcpy((char *)y + r * out * es, m->p.ptrs[m->p.out], rows * out * es);
        move_states(m, m->state_out, state, r, rows, false);
    }
}
