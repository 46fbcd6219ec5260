/* Loading IDX and CSV data sets.  Both read through one small source type that is either a
 * plain file (whose length bounds every allocation before it is made) or a gzip stream (whose
 * buffers grow only as decompressed data really arrives), so a hostile header can neither
 * make the loader read out of bounds nor allocate more than the data it holds. */
#define _DEFAULT_SOURCE /* madvise's MADV_DONTNEED */
#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <zlib.h>

#ifdef HAVE_CONFIG_H /* the build's: DNIC_HAVE_LIBDEFLATE (tests/fuzz/run.sh defines it itself) */
#include "config.h"
#endif
#if DNIC_HAVE_LIBDEFLATE
#include <libdeflate.h>
#endif
#include "data_cache.h"
#include "dataset_files.h"
#include "open_regular.h"
#include "report.h"

enum {
    CHUNK = 1 << 15,          /* values decoded at a time */
    GZ_FIRST = 1 << 20,       /* a gzip stream's first allocation, in values */
    MAX_VALUES = INT_MAX,     /* per file and per dataset array */
};


static dnic_status nomem(char *err, size_t errlen, const char *path)
{
    dnic_io_error(err, errlen, "%s: out of memory", path);
    return DNIC_ERR_NOMEM;
}

static const char *dtype_name(dnic_dtype t)
{
    return t == DNIC_F64 ? "float64" : "float32";
}

static dnic_status check_opts(const dnic_data_opts *o, char *err, size_t errlen)
{
    if (!o || o->one_hot < 0 || o->inputs < 0 || o->labels < 0 || (o->dtype != DNIC_F32 && o->dtype != DNIC_F64) ||
        !isfinite(o->scale)) {
        dnic_io_error(err, errlen, "invalid data options");
        return DNIC_ERR_ARG;
    }
    return DNIC_OK;
}

/* True when x, stored in dtype t, is a finite number. */
static bool fits(double x, dnic_dtype t)
{
    return isfinite(x) && (t == DNIC_F64 || fabs(x) <= (double)FLT_MAX);
}

static void store(void *buf, dnic_dtype t, size_t i, double x)
{
    if (t == DNIC_F64)
        ((double *)buf)[i] = x;
    else
        ((float *)buf)[i] = (float)x;
}

/* Grows *buf (elements of es bytes, *cap of them) to hold `need`, at most `total`; new space
 * is zeroed when `zero`.  Growth doubles, so a stream costs O(total) copies at most. */
static bool reserve(void **buf, size_t *cap, size_t need, size_t total, size_t es, bool zero)
{
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap : 1;
    while (nc < need)
        nc = nc > SIZE_MAX / 4 ? need : nc * 2;
    if (nc > total)
        nc = total;
    if (nc < need)
        return false;
    /* a whole array at once (a plain file's length is known): in large pages, which cost a
     * 512th of the page faults */
    void *q = !*buf && nc == total ? dnic_alloc_pages(nc * es + 1) : realloc(*buf, nc * es + 1);
    if (!q)
        return false;
    if (zero)
        memset((char *)q + *cap * es, 0, (nc - *cap) * es);
    *buf = q;
    *cap = nc;
    return true;
}

/* ---- sources: a plain file or a gzip stream --------------------------------------------- */

typedef struct src {
    const char *path;
    FILE *f;
    gzFile gz;
    bool inflated;            /* a gzip file inflated whole (libdeflate): */
    unsigned char *mem;       /* its bytes (NULL once the loader took them), */
    size_t mem_len, mem_at;   /* how many, and how far they were read, */
    size_t mem_cap;           /* and the buffer's size */
    long long size;           /* plain: the file's length; gzip: -1 */
    bool bad;                 /* a read failed (rather than the data ending) */
    char why[128];            /* ...and why */
    /* a gzip file with a cache directory: f reads the entry of its decoded bytes (cached), or
     * the bytes inflated are written to a new entry, committed once all were read and checked */
    dnic_data_cache cache;
    bool cached;
    char note[512];           /* what the cache could not do, for dnic_data_opts.note */
} src;

/* A gzip file's decoded copy from the cache, when there is a good one; else starts writing one
 * (an entry that is there but does not check out is a note, and is replaced). */
static void src_use_cache(src *s, const char *dir, FILE *gz, const struct stat *st)
{
    if (!dnic_data_cache_init(&s->cache, dir, s->path, gz, st))
        return;
    char why[256];
    if (dnic_data_cache_open(&s->cache, why, sizeof why)) {
        s->f = s->cache.f; /* the source owns the entry's stream now */
        s->cache.f = NULL;
        s->size = (long long)s->cache.len;
        s->cached = true;
        return;
    }
    if (why[0])
        snprintf(s->note, sizeof s->note, "the data cache's copy of '%s' (%s) is damaged: %s; decoding the file again",
                 s->path, s->cache.path, why);
    size_t at = strlen(s->note);
    if (!dnic_data_cache_begin(&s->cache, why, sizeof why))
        snprintf(s->note + at, sizeof s->note - at, "%snot caching the decoded data of '%s': %s", at ? "; " : "", s->path,
                 why);
}

#if DNIC_HAVE_LIBDEFLATE
/* A gzip stream of which `at` bytes were read, and whose data should be `len` bytes (the header
 * said so): the rest inflated at once by libdeflate, about twice as fast as zlib's stream, when
 * the file is one gzip member whose trailer declares that length (mod 2^32) and whose data
 * match it and its CRC-32.  Otherwise (damage, a different length, several members, no memory)
 * nothing changes, and zlib's stream goes on, whose messages say what is wrong where.  A header
 * and trailer that lie alike make this reserve up to deflate's 1032:1 of the file's size, but
 * touch no more memory than the data the file holds and its compressed bytes.
 *
 * In place, to hold no more memory than the data: the compressed bytes are read into the end of
 * the buffer the data are inflated into, past a margin.  The output overtakes input not yet
 * read only if the rest of the stream is larger than the data it holds by more than the margin;
 * zlib's deflate never makes it so (it stores a block that would grow: 5 bytes per 64 KiB, and
 * on Fashion-MNIST's files the data written minus the input read ends within 5 bytes of its
 * largest value).  A stream from elsewhere that does makes the inflate read bytes it wrote,
 * which is damage to the stream that its CRC-32 and length reveal as they reveal any (zlib's
 * guarantee, no weaker), and zlib reads the file instead. */
static void src_inflate_rest(src *s, size_t at, size_t len)
{
    enum { MAX_RATIO = 1032 }; /* deflate's largest expansion: 258 bytes from 2 bits */
    if (!s->gz || at > len)
        return;
    const char *why;
    FILE *f = dnic_open_regular(s->path, &why);
    struct stat st;
    if (!f || fstat(fileno(f), &st) != 0 || st.st_size < 18 || (uint64_t)st.st_size > SIZE_MAX / MAX_RATIO ||
        len > (size_t)st.st_size * MAX_RATIO) {
        if (f)
            fclose(f);
        return;
    }
    size_t n = (size_t)st.st_size, cap = (len > n ? len : n) + (n >> 10) + ((size_t)1 << 16);
    unsigned char *out = dnic_alloc_pages(cap), *in = out ? out + cap - n : NULL;
    if (out) { /* the huge page holding the data's end in small pages: the margin is given back */
        const uintptr_t page = 4096, huge = (uintptr_t)2 << 20;
        uintptr_t lo = ((uintptr_t)out + len) / huge * huge, first = ((uintptr_t)out + page - 1) / page * page;
        lo = lo < first ? first : lo;
        madvise((void *)lo, (uintptr_t)out + cap - lo, MADV_NOHUGEPAGE); /* only advice */
    }
    bool ok = in && fread(in, 1, n, f) == n;
    fclose(f);
    uint32_t isize = ok ? (uint32_t)in[n - 4] | (uint32_t)in[n - 3] << 8 | (uint32_t)in[n - 2] << 16 |
                              (uint32_t)in[n - 1] << 24
                        : 0;
    ok = ok && isize == (uint32_t)len;
    struct libdeflate_decompressor *d = ok ? libdeflate_alloc_decompressor() : NULL;
    size_t used = 0, got = 0;
    ok = d && libdeflate_gzip_decompress_ex(d, in, n, out, len, &used, &got) == LIBDEFLATE_SUCCESS && used == n &&
         got == len;
    if (d)
        libdeflate_free_decompressor(d);
    if (!ok) {
        free(out);
        return;
    }
    gzclose(s->gz);
    s->gz = NULL;
    s->inflated = true;
    s->mem = out;
    s->mem_len = len;
    s->mem_at = at;
    s->mem_cap = cap;
    dnic_data_cache_put(&s->cache, out + at, len - at); /* committed once the loader has checked them */
}
#endif

/* cache_dir: a gzip file's decoded bytes come from (or go to) the data cache there. */
static dnic_status src_open(src *s, const char *path, const char *cache_dir, char *err, size_t errlen)
{
    memset(s, 0, sizeof *s);
    s->path = path;
    s->size = -1;
    const char *why;
    FILE *f = dnic_open_regular(path, &why);
    if (!f && !strcmp(why, "not a regular file"))
        return dnic_io_error(err, errlen, "%s: not a regular file", path);
    if (!f)
        return dnic_io_error(err, errlen, "cannot open '%s': %s", path, why);
    struct stat st;
    if (fstat(fileno(f), &st) != 0) {
        fclose(f);
        return dnic_io_error(err, errlen, "cannot open '%s': %s", path, strerror(errno));
    }
    unsigned char m[2];
    bool gz = fread(m, 1, 2, f) == 2 && m[0] == 0x1f && m[1] == 0x8b;
    if (!gz) {
        rewind(f);
        s->f = f;
        s->size = (long long)st.st_size;
        return DNIC_OK;
    }
    if (cache_dir) {
        src_use_cache(s, cache_dir, f, &st);
        if (s->cached) {
            fclose(f);
            return DNIC_OK;
        }
    }
    fclose(f);
    s->gz = gzopen(path, "rb");
    if (!s->gz) {
        int e = errno;
        dnic_data_cache_free(&s->cache); /* an entry begun is discarded */
        return dnic_io_error(err, errlen, "cannot open '%s': %s", path, e ? strerror(e) : "out of memory");
    }
    gzbuffer(s->gz, 1 << 17);
    return DNIC_OK;
}

static void src_close(src *s)
{
    if (s->f)
        fclose(s->f);
    if (s->gz)
        gzclose(s->gz);
    free(s->mem);
    dnic_data_cache_free(&s->cache); /* an entry not committed is discarded */
    s->f = NULL;
    s->gz = NULL;
    s->mem = NULL;
}

/* Reads up to n bytes; fewer means the data ended or, with s->bad set, a read failed. */
static size_t src_read(src *s, void *buf, size_t n)
{
    if (s->f) {
        size_t got = fread(buf, 1, n, s->f);
        if (got < n && ferror(s->f)) {
            s->bad = true;
            snprintf(s->why, sizeof s->why, "read error: %s", strerror(errno));
        }
        return got;
    }
    if (s->inflated) {
        if (!s->mem)
            return 0;
        size_t k = s->mem_len - s->mem_at < n ? s->mem_len - s->mem_at : n;
        memcpy(buf, s->mem + s->mem_at, k);
        s->mem_at += k;
        return k;
    }
    size_t got = 0;
    while (got < n) {
        unsigned want = n - got > (1u << 30) ? 1u << 30 : (unsigned)(n - got);
        int r = gzread(s->gz, (char *)buf + got, want);
        if (r <= 0)
            break;
        dnic_data_cache_put(&s->cache, (char *)buf + got, (size_t)r);
        got += (size_t)r;
    }
    int e = Z_OK;
    const char *m = gzerror(s->gz, &e);
    /* Z_BUF_ERROR: the compressed stream ends early, which is the data ending early */
    if (e != Z_OK && e != Z_BUF_ERROR) {
        /* zlib's message is "path: what" */
        size_t pl = strlen(s->path);
        if (m && strncmp(m, s->path, pl) == 0 && strncmp(m + pl, ": ", 2) == 0)
            m += pl + 2;
        s->bad = true;
        /* where in the compressed file: zlib reads ahead, so it is where the damage was found */
        long long at = (long long)gzoffset(s->gz);
        if (m && !strcmp(m, "incorrect data check"))
            snprintf(s->why, sizeof s->why, "corrupt gzip data: the CRC-32 in its trailer does not match the data");
        else
            snprintf(s->why, sizeof s->why, "corrupt gzip data (%s) by compressed byte %lld",
                     e == Z_ERRNO ? strerror(errno) : (m && *m) ? m : "zlib error", at);
    }
    return got;
}

/* ---- IDX -------------------------------------------------------------------------------- */

typedef struct idx {
    src s;
    bool labels;              /* the labels file (else the images file) */
    int type, es, ndims;
    uint32_t magic;
    size_t n, width;          /* records, and values per record */
    long long hdr;            /* header bytes */
} idx;

static int idx_size(int type)
{
    switch (type) {
    case 0x08:
    case 0x09:
        return 1;
    case 0x0B:
        return 2;
    case 0x0C:
    case 0x0D:
        return 4;
    case 0x0E:
        return 8;
    default:
        return 0;
    }
}

static const char *unit(const idx *f)
{
    return f->labels ? "label" : "image";
}

static uint32_t be32(const unsigned char *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Big-endian values of an IDX type to float64. */
static void decode(const unsigned char *p, int type, size_t k, double *v)
{
    switch (type) {
    case 0x08:
        for (size_t i = 0; i < k; i++)
            v[i] = p[i];
        break;
    case 0x09:
        for (size_t i = 0; i < k; i++)
            v[i] = (int)p[i] - (p[i] & 0x80 ? 256 : 0);
        break;
    case 0x0B:
        for (size_t i = 0; i < k; i++) {
            long u = (long)p[2 * i] << 8 | p[2 * i + 1];
            v[i] = (double)(u >= 0x8000 ? u - 0x10000 : u);
        }
        break;
    case 0x0C:
        for (size_t i = 0; i < k; i++) {
            int64_t u = be32(p + 4 * i);
            v[i] = (double)(u >= 0x80000000LL ? u - 0x100000000LL : u);
        }
        break;
    case 0x0D:
        for (size_t i = 0; i < k; i++) {
            uint32_t u = be32(p + 4 * i);
            float x;
            memcpy(&x, &u, sizeof x);
            v[i] = (double)x;
        }
        break;
    default: /* 0x0E */
        for (size_t i = 0; i < k; i++) {
            uint64_t u = (uint64_t)be32(p + 8 * i) << 32 | be32(p + 8 * i + 4);
            double x;
            memcpy(&x, &u, sizeof x);
            v[i] = x;
        }
        break;
    }
}

static const char *const ANY_IDX = "2 zero bytes, a type 0x08, 0x09, 0x0B, 0x0C, 0x0D or 0x0E and";

/* Opens an IDX file and reads its header. */
static dnic_status idx_open(idx *f, const char *path, bool labels, const dnic_data_opts *o, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    f->labels = labels;
    dnic_status st = src_open(&f->s, path, o->cache_dir, err, errlen);
    if (st != DNIC_OK)
        return st;
    if (f->s.cached && o->cache_hits)
        (*o->cache_hits)++;
    unsigned char m[4];
    size_t got = src_read(&f->s, m, 4);
    if (f->s.bad)
        st = dnic_io_error(err, errlen, "%s: %s (reading the header)", path, f->s.why);
    else if (got < 4)
        st = dnic_io_error(err, errlen, "%s: truncated: %zu bytes, shorter than the 4-byte magic number", path, got);
    if (st != DNIC_OK) {
        src_close(&f->s);
        return st;
    }
    f->magic = be32(m);
    f->type = m[2];
    f->es = idx_size(m[2]);
    f->ndims = m[3];
    const char *want = labels ? "0x00000801 for labels" : "0x00000803 for images";
    if (m[0] || m[1] || !f->es || f->ndims < 1)
        st = dnic_io_error(err, errlen, "%s: wrong magic 0x%08" PRIX32 " (expected %s: %s %s)", path, f->magic, want, ANY_IDX,
                  labels ? "1 dimension, or 2 when one_hot is 0" : "1 or more dimensions");
    else if (!labels && f->ndims == 1 && o->inputs > 1)
        st = dnic_io_error(err, errlen,
                  "%s: wrong magic 0x%08" PRIX32 " (expected %s: a 1-dimension file is 1 wide but the model declares "
                  "inputs = %d)",
                  path, f->magic, want, o->inputs);
    else if (labels && f->ndims > 2)
        st = dnic_io_error(err, errlen, "%s: wrong magic 0x%08" PRIX32 " (expected %s: 1 dimension, or 2 when one_hot is 0)", path,
                  f->magic, want);
    else if (labels && f->ndims == 2 && o->one_hot > 0)
        st = dnic_io_error(err, errlen,
                  "%s: wrong magic 0x%08" PRIX32 " (expected %s: with one_hot = %d a label is one class number, so the "
                  "file has 1 dimension)",
                  path, f->magic, want, o->one_hot);
    if (st != DNIC_OK) {
        src_close(&f->s);
        return st;
    }

    unsigned char d[4 * 255];
    got = src_read(&f->s, d, (size_t)f->ndims * 4);
    if (f->s.bad || got < (size_t)f->ndims * 4) {
        if (f->s.bad)
            dnic_io_error(err, errlen, "%s: %s (reading the header)", path, f->s.why);
        else
            dnic_io_error(err, errlen, "%s: truncated header: %zu of its %d dimensions", path, got / 4, f->ndims);
        src_close(&f->s);
        return DNIC_ERR_IO;
    }
    f->hdr = 4 + 4LL * f->ndims;
    uint64_t total = 1;
    bool big = false;
    for (int i = 0; i < f->ndims; i++) {
        total *= be32(d + 4 * i); /* <= 2^31 * 2^32: no overflow before the check */
        if (total > MAX_VALUES) {
            big = true;
            break;
        }
    }
    if (big) {
        char dims[160];
        size_t len = 0;
        for (int i = 0; i < f->ndims && len < sizeof dims - 40; i++)
            len += (size_t)snprintf(dims + len, sizeof dims - len, "%s%" PRIu32, i ? " x " : "", be32(d + 4 * i));
        if (len >= sizeof dims - 40)
            snprintf(dims + len, sizeof dims - len, " x ...");
        src_close(&f->s);
        return dnic_io_error(err, errlen, "%s: the dimensions %s hold more than the %d values dnic reads from a file", path, dims,
                    MAX_VALUES);
    }
    f->n = be32(d);
    f->width = 1;
    for (int i = 1; i < f->ndims; i++)
        f->width *= be32(d + 4 * i);
    if (f->n == 0)
        st = dnic_io_error(err, errlen, "%s: the file holds no %ss (dimension 0 is 0)", path, unit(f));
    else if (f->width == 0)
        st = dnic_io_error(err, errlen, "%s: %ss are 0 wide (a dimension is 0)", path, unit(f));
    if (st == DNIC_OK && f->s.size >= 0) {
        /* a plain file: its length must be exactly what the header declares */
        long long data = f->s.size - f->hdr, need = (long long)(f->n * f->width) * f->es;
        if (data < need)
            st = dnic_io_error(err, errlen, "%s: truncated at %s %lld of %zu", path, unit(f),
                      data / ((long long)f->width * f->es), f->n);
        else if (data > need)
            st = dnic_io_error(err, errlen, "%s: %lld bytes after the %zu %ss the header declares", path, data - need, f->n,
                      unit(f));
    }
    if (st != DNIC_OK)
        src_close(&f->s);
    return st;
}

size_t dnic_idx_width(const char *path, char *err, size_t errlen)
{
    idx f;
    dnic_data_opts o = {0};
    if (errlen)
        err[0] = '\0';
    if (idx_open(&f, path, false, &o, err, errlen) != DNIC_OK)
        return 0;
    size_t w = f.width;
    src_close(&f.s);
    return w;
}

/* The pages of a buffer of `size` bytes past its first `used` go back to the system, so that an
 * array inflated in place holds no more memory than its data (src_inflate_rest kept them out of
 * huge pages: khugepaged would fill them again).  Only whole pages inside the buffer. */
static void give_back_tail(unsigned char *p, size_t used, size_t size)
{
    const uintptr_t page = 4096;
    uintptr_t lo = ((uintptr_t)p + used + page - 1) / page * page, hi = ((uintptr_t)p + size) / page * page;
    if (hi > lo)
        madvise((void *)lo, hi - lo, MADV_DONTNEED);
}

/* Reads the records of f into *outp, in o->dtype: each value (times `scale`), or, with
 * one_hot > 0, the one-hot row of each class number.  bytes: the values of a ubyte file as
 * stored, one byte each (still checked to be finite when scaled). */
static dnic_status idx_read(idx *f, const dnic_data_opts *o, int one_hot, double scale, bool bytes, void **outp,
                            char *err, size_t errlen)
{
    const char *path = f->s.path;
    size_t total = f->n * f->width;
    size_t outw = one_hot > 0 ? (size_t)one_hot : f->width;
    size_t outtotal = f->n * outw, es = bytes ? 1 : dnic_dtype_size(o->dtype);
    size_t cap = 0, done = 0;
    void *out = NULL;
    unsigned char *raw = malloc((size_t)CHUNK * 8);
    double *v = malloc((size_t)CHUNK * sizeof *v);
    dnic_status st = DNIC_OK;
#if DNIC_HAVE_LIBDEFLATE
    src_inflate_rest(&f->s, (size_t)f->hdr, (size_t)f->hdr + total * (size_t)f->es);
#endif
    /* ubyte values: each of the 256 scaled once (as the loop below would), and when all of them
     * fit the dtype, the values need no check: copied, or looked up */
    double byte_value[256];
    bool fast = f->type == 0x08 && one_hot <= 0;
    for (int b = 0; fast && b < 256; b++) {
        byte_value[b] = (double)b * scale;
        fast = fits(byte_value[b], o->dtype);
    }
    if (fast && bytes && f->s.mem && f->s.mem_len - f->s.mem_at == total) {
        /* the bytes as stored, all of them inflated already: they become the array (moved
         * down over the header), with no second copy of them in memory */
        memmove(f->s.mem, f->s.mem + f->s.mem_at, total);
        give_back_tail(f->s.mem, total, f->s.mem_cap);
        out = f->s.mem;
        cap = done = total;
        f->s.mem = NULL;
    }
    /* the whole array at once when the data are known to be there: a plain file's length was
     * checked against the header, and a file inflated whole holds what the header declares */
    bool known = f->s.size >= 0 || f->s.inflated;
    if (!raw || !v ||
        (!out && !reserve(&out, &cap, known ? outtotal : (outtotal < GZ_FIRST ? outtotal : GZ_FIRST), outtotal, es,
                          one_hot > 0)))
        st = nomem(err, errlen, path);
    while (st == DNIC_OK && done < total) {
        size_t k = total - done < CHUNK ? total - done : CHUNK;
        size_t got = src_read(&f->s, raw, k * (size_t)f->es), kv = got / (size_t)f->es;
        if (!fast)
            decode(raw, f->type, kv, v);
        /* one-hot labels are 1-D: a value is a record of outw outputs */
        if (!reserve(&out, &cap, one_hot > 0 ? (done + kv) * outw : done + kv, outtotal, es, one_hot > 0)) {
            dnic_io_error(err, errlen, "%s: out of memory holding %zu of its %zu values", path, done, total);
            st = DNIC_ERR_NOMEM;
            break;
        }
        if (one_hot > 0) {
            for (size_t i = 0; i < kv; i++) {
                double c = v[i];
                if (c != floor(c) || c < 0 || c >= one_hot) {
                    st = dnic_io_error(err, errlen, "%s: label %.17g at record %zu %s for one_hot = %d", path, c, done + i,
                              c == floor(c) ? "is out of range" : "is not a class number", one_hot);
                    break;
                }
                store(out, o->dtype, (done + i) * outw + (size_t)c, 1);
            }
        } else if (fast && bytes) {
            memcpy((unsigned char *)out + done, raw, kv);
        } else if (fast && o->dtype == DNIC_F32) {
            for (size_t i = 0; i < kv; i++)
                ((float *)out)[done + i] = (float)byte_value[raw[i]];
        } else if (fast) {
            for (size_t i = 0; i < kv; i++)
                ((double *)out)[done + i] = byte_value[raw[i]];
        } else {
            for (size_t i = 0; i < kv; i++) {
                double x = v[i] * scale;
                if (!fits(x, o->dtype)) {
                    if (scale != 1)
                        st = dnic_io_error(err, errlen, "%s: value %.17g at %s %zu, element %zu, times scale %g is not finite in %s",
                                  path, v[i], unit(f), (done + i) / f->width, (done + i) % f->width, scale,
                                  dtype_name(o->dtype));
                    else
                        st = dnic_io_error(err, errlen, "%s: value %.17g at %s %zu, element %zu is not finite in %s", path, v[i],
                                  unit(f), (done + i) / f->width, (done + i) % f->width, dtype_name(o->dtype));
                    break;
                }
                if (bytes)
                    ((unsigned char *)out)[done + i] = raw[i];
                else
                    store(out, o->dtype, done + i, x);
            }
        }
        if (st != DNIC_OK)
            break;
        done += kv;
        if (got < k * (size_t)f->es) {
            if (f->s.bad)
                st = dnic_io_error(err, errlen, "%s: %s at %s %zu of %zu", path, f->s.why, unit(f), done / f->width, f->n);
            else
                st = dnic_io_error(err, errlen, "%s: truncated at %s %zu of %zu", path, unit(f), done / f->width, f->n);
        }
    }
    if (st == DNIC_OK && (f->s.gz || f->s.inflated)) {
        /* the stream must end here, and its checksum must hold */
        unsigned char extra;
        if (src_read(&f->s, &extra, 1) == 1)
            st = dnic_io_error(err, errlen, "%s: more data after the %zu %ss the header declares", path, f->n, unit(f));
        else if (f->s.bad)
            st = dnic_io_error(err, errlen, "%s: %s after the last %s", path, f->s.why, unit(f));
        /* the whole stream was read and its CRC-32 checked: its bytes may be cached */
        char why[256];
        size_t at = strlen(f->s.note);
        if (st == DNIC_OK && f->s.cache.writing && !dnic_data_cache_commit(&f->s.cache, why, sizeof why))
            snprintf(f->s.note + at, sizeof f->s.note - at, "%snot caching the decoded data of '%s': %s", at ? "; " : "",
                     path, why);
    }
    free(raw);
    free(v);
    if (st != DNIC_OK) {
        free(out);
        return st;
    }
    *outp = out;
    return DNIC_OK;
}

/* The cache's notes of the files read, for the caller (o->note). */
static void pass_notes(const dnic_data_opts *o, const idx *a, const idx *b)
{
    if (!o->note || !o->notelen)
        return;
    const char *x = a ? a->s.note : "", *y = b ? b->s.note : "";
    snprintf(o->note, o->notelen, "%s%s%s", x, x[0] && y[0] ? "; " : "", y);
}

dnic_status dnic_load_idx(dnic_dataset *out, const char *images, const char *labels, const dnic_data_opts *o,
                          char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    dnic_status st = check_opts(o, err, errlen);
    if (st != DNIC_OK)
        return st;
    pass_notes(o, NULL, NULL);
    idx im, lb;
    if ((st = idx_open(&im, images, false, o, err, errlen)) != DNIC_OK)
        return st;
    if (o->inputs > 0 && im.width != (size_t)o->inputs) {
        src_close(&im.s);
        return dnic_io_error(err, errlen, "%s: images are %zu wide but the model declares inputs = %d", images, im.width,
                    o->inputs);
    }
    bool bytes = o->keep_bytes && im.type == 0x08;
    if (!labels) { /* images only: a dataset with no labels */
        st = idx_read(&im, o, 0, o->scale, bytes, &out->x, err, errlen);
        src_close(&im.s);
        pass_notes(o, &im, NULL);
        if (st == DNIC_OK && !(out->y = calloc(1, 1)))
            st = nomem(err, errlen, images);
        if (st != DNIC_OK) {
            dnic_dataset_free(out);
            memset(out, 0, sizeof *out);
            return st;
        }
        *out = (dnic_dataset){(int)im.n, (int)im.width, 0, o->dtype, out->x, out->y, bytes, o->scale};
        return DNIC_OK;
    }
    if ((st = idx_open(&lb, labels, true, o, err, errlen)) != DNIC_OK) {
        src_close(&im.s);
        return st;
    }
    size_t lw = o->one_hot > 0 ? (size_t)o->one_hot : lb.width;
    if (im.n != lb.n)
        st = dnic_io_error(err, errlen, "%s: %zu images but %s has %zu labels", images, im.n, labels, lb.n);
    else if (o->labels > 0 && lw != (size_t)o->labels && o->one_hot > 0)
        st = dnic_io_error(err, errlen, "%s: one_hot = %d gives %d labels but the model declares labels = %d", labels, o->one_hot,
                  o->one_hot, o->labels);
    else if (o->labels > 0 && lw != (size_t)o->labels)
        st = dnic_io_error(err, errlen, "%s: labels are %zu wide but the model declares labels = %d", labels, lw, o->labels);
    else if (lb.n > MAX_VALUES / lw)
        st = dnic_io_error(err, errlen, "%s: %zu labels one-hot over %d classes are more than %d values", labels, lb.n,
                  o->one_hot, MAX_VALUES);
    if (st == DNIC_OK)
        st = idx_read(&im, o, 0, o->scale, bytes, &out->x, err, errlen);
    if (st == DNIC_OK)
        st = idx_read(&lb, o, o->one_hot, 1, false, &out->y, err, errlen);
    src_close(&im.s);
    src_close(&lb.s);
    pass_notes(o, &im, &lb);
    if (st != DNIC_OK) {
        dnic_dataset_free(out);
        memset(out, 0, sizeof *out);
        return st;
    }
    out->n = (int)im.n;
    out->inputs = (int)im.width;
    out->labels = (int)lw;
    out->dtype = o->dtype;
    out->x_bytes = bytes;
    out->x_scale = o->scale;
    return DNIC_OK;
}

/* ---- CSV -------------------------------------------------------------------------------- */

typedef struct field {
    const char *p;            /* the text (inside the quotes, "" still doubled, when quoted) */
    size_t n;
    bool quoted;
} field;

typedef struct csv {
    const char *path;
    char *err;
    size_t errlen;
    field *f;
    size_t nf, fcap;
    char *tmp;                /* one field's text, unescaped and NUL-ended */
    size_t tcap;
} csv;

static bool blank(const char *p, const char *e)
{
    for (; p < e; p++)
        if (*p != ' ' && *p != '\t' && *p != '\r' && *p != '\n')
            return false;
    return true;
}

static const char *skip_ws(const char *p, const char *e)
{
    while (p < e && (*p == ' ' || *p == '\t'))
        p++;
    return p;
}

/* Reads a whole file (decompressed when gzip). */
static dnic_status read_all(const char *path, char **outp, size_t *lenp, char *err, size_t errlen)
{
    src s;
    dnic_status st = src_open(&s, path, NULL, err, errlen);
    if (st != DNIC_OK)
        return st;
    size_t cap = s.size >= 0 ? (size_t)s.size : (size_t)1 << 16, len = 0;
    char *buf = malloc(cap + 1);
    if (!buf) {
        src_close(&s);
        return nomem(err, errlen, path);
    }
    for (;;) {
        if (len == cap && s.gz) {
            char *nb = cap < SIZE_MAX / 4 ? realloc(buf, cap * 2 + 1) : NULL;
            if (!nb) { /* a gzip bomb, or a file too big for this machine: say how far it got */
                free(buf);
                src_close(&s);
                return dnic_io_error(err, errlen, "%s: out of memory holding its text after %zu bytes (uncompressed)", path,
                                     len);
            }
            buf = nb;
            cap *= 2;
        }
        size_t want = cap - len, got = src_read(&s, buf + len, want);
        len += got;
        if (s.bad) {
            free(buf);
            st = dnic_io_error(err, errlen, "%s: %s", path, s.why);
            src_close(&s);
            return st;
        }
        if (got < want || (s.f && len == cap))
            break;
    }
    src_close(&s);
    buf[len] = '\0';
    *outp = buf;
    *lenp = len;
    return DNIC_OK;
}

/* Splits the line [p, e) into c->f; false (with the message) on a malformed quoted field. */
static bool split(csv *c, const char *p, const char *e, long long row)
{
    c->nf = 0;
    for (;;) {
        if (c->nf == c->fcap) {
            size_t nc = c->fcap ? c->fcap * 2 : 16;
            field *nf = realloc(c->f, nc * sizeof *nf);
            if (!nf) {
                dnic_io_error(c->err, c->errlen, "%s: out of memory", c->path);
                return false;
            }
            c->f = nf;
            c->fcap = nc;
        }
        field *f = &c->f[c->nf++];
        const char *q = skip_ws(p, e);
        if (q < e && *q == '"') {
            const char *s = ++q;
            for (;;) {
                if (q >= e) {
                    dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: a quoted field is not closed before the end of the line",
                         c->path, row, c->nf);
                    return false;
                }
                if (*q == '"') {
                    if (q + 1 < e && q[1] == '"') {
                        q += 2;
                        continue;
                    }
                    break;
                }
                q++;
            }
            *f = (field){s, (size_t)(q - s), true};
            q = skip_ws(q + 1, e);
            if (q < e && *q != ',') {
                dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: unexpected '%c' after a closing quote", c->path, row, c->nf, *q);
                return false;
            }
            p = q;
        } else {
            const char *comma = memchr(p, ',', (size_t)(e - p));
            const char *end = comma ? comma : e;
            *f = (field){p, (size_t)(end - p), false};
            p = end;
        }
        if (p >= e)
            return true;
        p++; /* the comma */
    }
}

/* The text of field i, unescaped and trimmed of spaces, in c->tmp (NUL-ended); its length. */
static size_t text(csv *c, size_t i)
{
    const field *f = &c->f[i];
    size_t n = 0;
    for (size_t k = 0; k < f->n; k++) {
        c->tmp[n++] = f->p[k];
        if (f->quoted && f->p[k] == '"')
            k++; /* "" is one quote */
    }
    c->tmp[n] = '\0';
    if (!f->quoted) {
        const char *s = skip_ws(c->tmp, c->tmp + n);
        while (n > (size_t)(s - c->tmp) && (c->tmp[n - 1] == ' ' || c->tmp[n - 1] == '\t'))
            n--;
        n -= (size_t)(s - c->tmp);
        memmove(c->tmp, s, n);
        c->tmp[n] = '\0';
    }
    return n;
}

/* Cell (row, i) as a number in *v; false (with the message) when it is not one. */
static bool number(csv *c, long long row, size_t i, double *v)
{
    size_t n = text(c, i);
    if (c->f[i].quoted) { /* spaces inside the quotes, too */
        const char *s = skip_ws(c->tmp, c->tmp + n);
        while (n > (size_t)(s - c->tmp) && (c->tmp[n - 1] == ' ' || c->tmp[n - 1] == '\t'))
            n--;
        n -= (size_t)(s - c->tmp);
        memmove(c->tmp, s, n);
        c->tmp[n] = '\0';
    }
    if (n == 0) {
        dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: empty cell, expected a number", c->path, row, i + 1);
        return false;
    }
    /* a byte no number has (a NUL, a control or non-ASCII byte) is named by its value, not printed */
    for (size_t k = 0; k < n; k++) {
        unsigned char b = (unsigned char)c->tmp[k];
        if (b < 32 || b > 126) {
            dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: byte 0x%02x in a cell, expected a number", c->path, row, i + 1, b);
            return false;
        }
    }
    char *end;
    *v = strtod(c->tmp, &end);
    int shown = n > 40 ? 40 : (int)n;
    const char *more = n > 40 ? "..." : "";
    if (end != c->tmp + n || strpbrk(c->tmp, "xX")) { /* strtod reads C's hex floats; a data file has decimals */
        dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: '%.*s%s' is not a number", c->path, row, i + 1, shown, c->tmp, more);
        return false;
    }
    if (!isfinite(*v)) {
        dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: '%.*s%s' is not a finite number", c->path, row, i + 1, shown, c->tmp,
             more);
        return false;
    }
    return true;
}

/* "a, b, c" (cut short with ", ..." when long) for the no-such-column message. */
static void column_list(char *buf, size_t cap, char *const *names, size_t n)
{
    size_t len = 0;
    buf[0] = '\0';
    for (size_t i = 0; i < n; i++) {
        size_t w = strlen(names[i]) + 2;
        if (len + w + 8 > cap) {
            snprintf(buf + len, cap - len, "%s...", i ? ", " : "");
            return;
        }
        len += (size_t)snprintf(buf + len, cap - len, "%s%s", i ? ", " : "", names[i]);
    }
}

/* Finds the label column: its index in *lab, or false with the message. */
static bool find_label(csv *c, char *const *names, size_t ncols, const dnic_data_opts *o, size_t *lab)
{
    if (!o->label_column) {
        if (o->label_index < 0 || (size_t)o->label_index >= ncols) {
            dnic_io_error(c->err, c->errlen, "%s: label column %d is out of range: the header has %zu column%s (0..%zu)", c->path,
                 o->label_index, ncols, ncols == 1 ? "" : "s", ncols - 1);
            return false;
        }
        *lab = (size_t)o->label_index;
        return true;
    }
    size_t found = ncols;
    for (size_t i = 0; i < ncols; i++) {
        if (strcmp(names[i], o->label_column) != 0)
            continue;
        if (found < ncols) {
            dnic_io_error(c->err, c->errlen, "%s: column '%s' appears twice (columns %zu and %zu)", c->path, o->label_column, found,
                 i);
            return false;
        }
        found = i;
    }
    if (found == ncols) {
        char list[256];
        column_list(list, sizeof list, names, ncols);
        dnic_io_error(c->err, c->errlen, "%s: no column named '%s' (columns: %s)", c->path, o->label_column, list);
        return false;
    }
    *lab = found;
    return true;
}

static dnic_status csv_parse(csv *c, const char *buf, size_t len, const dnic_data_opts *o, dnic_dataset *out)
{
    const char *path = c->path, *p = buf, *end = buf + len;
    if (len >= 3 && memcmp(p, "\xEF\xBB\xBF", 3) == 0)
        p += 3; /* a UTF-8 byte order mark */
    if (blank(p, end))
        return dnic_io_error(c->err, c->errlen, "%s: empty file, expected a header row of column names", path);

    /* the header */
    const char *nl = memchr(p, '\n', (size_t)(end - p)), *le = nl ? nl : end;
    const char *next = nl ? nl + 1 : end;
    if (le > p && le[-1] == '\r')
        le--;
    if (blank(p, le))
        return dnic_io_error(c->err, c->errlen, "%s:1: the header row is empty", path);
    if (!split(c, p, le, 1))
        return DNIC_ERR_IO;
    size_t ncols = c->nf;
    if (ncols > MAX_VALUES)
        return dnic_io_error(c->err, c->errlen, "%s:1: more than %d columns", path, MAX_VALUES);
    char **names = malloc(ncols * sizeof *names);
    char *store_names = malloc((size_t)(le - p) + ncols + 1);
    if (!names || !store_names) {
        free(names);
        free(store_names);
        return nomem(c->err, c->errlen, path);
    }
    size_t used = 0;
    for (size_t i = 0; i < ncols; i++) {
        size_t n = text(c, i);
        names[i] = store_names + used;
        memcpy(names[i], c->tmp, n + 1);
        used += n + 1;
    }
    /* labels_optional: exactly the model's inputs and no more is a file without labels */
    bool nolabels = o->labels_optional && o->inputs > 0 && ncols == (size_t)o->inputs;
    if (o->labels_optional && o->inputs > 0 && ncols < (size_t)o->inputs) {
        free(names);
        free(store_names);
        return dnic_io_error(c->err, c->errlen, "%s: %zu column%s but the model declares inputs = %d", path, ncols,
                             ncols == 1 ? "" : "s", o->inputs);
    }
    size_t lab = ncols;
    bool ok = nolabels || find_label(c, names, ncols, o, &lab);
    free(names);
    free(store_names);
    if (!ok)
        return DNIC_ERR_IO;
    size_t inputs = nolabels ? ncols : ncols - 1, lw = nolabels ? 0 : o->one_hot > 0 ? (size_t)o->one_hot : 1;
    if (inputs == 0)
        return dnic_io_error(c->err, c->errlen, "%s: the label is the only column, so there are no inputs", path);
    if (o->inputs > 0 && inputs != (size_t)o->inputs)
        return dnic_io_error(c->err, c->errlen, "%s: %zu input column%s but the model declares inputs = %d", path, inputs,
                    inputs == 1 ? "" : "s", o->inputs);
    if (!nolabels && o->labels > 0 && lw != (size_t)o->labels) {
        if (o->one_hot > 0)
            return dnic_io_error(c->err, c->errlen, "%s: one_hot = %d gives %d labels but the model declares labels = %d", path,
                        o->one_hot, o->one_hot, o->labels);
        return dnic_io_error(c->err, c->errlen, "%s: the label column gives 1 label but the model declares labels = %d", path,
                    o->labels);
    }

    /* the records */
    size_t es = dnic_dtype_size(o->dtype), n = 0, xcap = 0, ycap = 0;
    long long row = 1;
    dnic_status st = DNIC_OK;
    for (p = next; p < end && st == DNIC_OK; p = next) {
        row++;
        nl = memchr(p, '\n', (size_t)(end - p));
        le = nl ? nl : end;
        next = nl ? nl + 1 : end;
        if (le > p && le[-1] == '\r')
            le--;
        if (blank(p, le)) {
            if (blank(next, end))
                break;
            st = dnic_io_error(c->err, c->errlen, "%s:%lld: empty line (only empty lines at the end are ignored)", path, row);
            break;
        }
        if (!split(c, p, le, row)) {
            st = DNIC_ERR_IO;
            break;
        }
        if (c->nf != ncols) {
            st = dnic_io_error(c->err, c->errlen, "%s:%lld: %zu field%s, expected %zu", path, row, c->nf, c->nf == 1 ? "" : "s",
                      ncols);
            break;
        }
        if (n + 1 > MAX_VALUES / inputs || (lw && n + 1 > MAX_VALUES / lw)) {
            st = dnic_io_error(c->err, c->errlen, "%s:%lld: more than %d values", path, row, MAX_VALUES);
            break;
        }
        if (!reserve(&out->x, &xcap, (n + 1) * inputs, SIZE_MAX / 16, es, false) ||
            !reserve(&out->y, &ycap, (n + 1) * lw, SIZE_MAX / 16, es, true)) {
            dnic_io_error(c->err, c->errlen, "%s:%lld: out of memory holding %zu rows of values", path, row, n);
            st = DNIC_ERR_NOMEM;
            break;
        }
        size_t j = 0;
        for (size_t i = 0; i < ncols; i++) {
            double v;
            if (!number(c, row, i, &v)) {
                st = DNIC_ERR_IO;
                break;
            }
            if (i != lab) {
                double x = v * o->scale;
                if (!fits(x, o->dtype)) {
                    st = dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: %s times scale %g is not finite in %s", path, row, i + 1,
                              c->tmp, o->scale, dtype_name(o->dtype));
                    break;
                }
                store(out->x, o->dtype, n * inputs + j++, x);
            } else if (o->one_hot > 0) {
                if (v != floor(v) || v < 0 || v >= o->one_hot) {
                    st = dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: label %s %s for one_hot = %d", path, row, i + 1, c->tmp,
                              v == floor(v) ? "is out of range" : "is not a class number", o->one_hot);
                    break;
                }
                store(out->y, o->dtype, n * lw + (size_t)v, 1);
            } else {
                if (!fits(v, o->dtype)) {
                    st = dnic_io_error(c->err, c->errlen, "%s:%lld:%zu: label %s is not finite in %s", path, row, i + 1, c->tmp,
                              dtype_name(o->dtype));
                    break;
                }
                store(out->y, o->dtype, n, v);
            }
        }
        n++;
    }
    if (st == DNIC_OK && n == 0)
        st = dnic_io_error(c->err, c->errlen, "%s: no data rows after the header", path);
    if (st != DNIC_OK)
        return st;
    /* give back what doubling left over (shrinking cannot fail to keep the data) */
    void *q = realloc(out->x, n * inputs * es + 1);
    out->x = q ? q : out->x;
    q = realloc(out->y, n * lw * es + 1);
    out->y = q ? q : out->y;
    out->n = (int)n;
    out->inputs = (int)inputs;
    out->labels = (int)lw;
    out->dtype = o->dtype;
    return DNIC_OK;
}

size_t dnic_csv_columns(const char *path)
{
    src s;
    char err[8], line[1 << 16];
    if (src_open(&s, path, NULL, err, sizeof err) != DNIC_OK)
        return 0;
    size_t got = src_read(&s, line, sizeof line), cols = 1;
    src_close(&s);
    bool quoted = false, ended = false;
    for (size_t i = 0; i < got && !ended; i++) {
        if (line[i] == '"')
            quoted = !quoted;
        else if (line[i] == ',' && !quoted)
            cols++;
        else if (line[i] == '\n' && !quoted)
            ended = true;
    }
    return ended ? cols : 0;
}

dnic_status dnic_load_csv(dnic_dataset *out, const char *path, const dnic_data_opts *o, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    dnic_status st = check_opts(o, err, errlen);
    if (st != DNIC_OK)
        return st;
    char *buf = NULL;
    size_t len = 0;
    if ((st = read_all(path, &buf, &len, err, errlen)) != DNIC_OK)
        return st;
    csv c = {path, err, errlen, NULL, 0, 0, NULL, 0};
    c.tmp = malloc(len + 1); /* any field's text fits */
    if (!c.tmp) {
        dnic_io_error(err, errlen, "%s: out of memory after reading its %zu bytes of text", path, len);
        st = DNIC_ERR_NOMEM;
    } else
        st = csv_parse(&c, buf, len, o, out);
    free(c.tmp);
    free(c.f);
    free(buf);
    if (st != DNIC_OK) {
        dnic_dataset_free(out);
        memset(out, 0, sizeof *out);
    }
    return st;
}
