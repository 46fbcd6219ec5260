/* Reading and writing safetensors files, with a small JSON reader that accepts exactly the
 * header shape the format defines and checks every length and offset before using it. */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "safetensors.h"
#include "atomic_file.h"
#include "hash.h"
#include "open_regular.h"
#include "report.h"

enum { MAX_HEADER = 100 * 1024 * 1024, MAX_TENSORS = 100000 };

/* dnic's files open with their checksums: the header's (over the length and the header, these
 * 16 digits read as zeros) and the data's, in hex: {"__metadata__":{"checksum":"H-D",... */
static const char SUM_PREFIX[] = "{\"__metadata__\":{\"checksum\":\"";
enum { SUM_LEN = 16 + 1 + 16 };
static const uint64_t SUM_SEED_HEADER = 0x5d1c0ffee0ddf00dULL, SUM_SEED_DATA = 0x2545f4914f6cdd1dULL,
                      SUM_SEED_B = 0x9e3779b97f4a7c15ULL;


static const char *dtype_name(dnic_dtype t)
{
    return t == DNIC_F64 ? "F64" : "F32";
}

/* ---- writing ---------------------------------------------------------------------------- */

static size_t tensor_bytes(const dnic_st_tensor *t)
{
    size_t n = dnic_dtype_size(t->dtype);
    for (int d = 0; d < t->ndim; d++)
        n *= (size_t)t->shape[d];
    return n;
}

/* The names dnic writes are plain; anything needing a JSON escape is refused. */
static bool plain_name(const char *s)
{
    for (; *s; s++)
        if (*s == '"' || *s == '\\' || (unsigned char)*s < 32)
            return false;
    return true;
}

dnic_status dnic_st_write(const char *path, const dnic_st_tensor *t, int n, char *err, size_t errlen)
{
    /* the header */
    size_t cap = 192, len = 0;
    for (int i = 0; i < n; i++)
        cap += strlen(t[i].name) + 128;
    char *hdr = malloc(cap + 8);
    if (!hdr)
        return dnic_io_error(err, errlen, "%s: out of memory", path);
    /* the data's checksum now; the header's once the header is whole (its digits zero until then) */
    dnic_hash dh;
    dnic_hash_init(&dh, SUM_SEED_DATA, SUM_SEED_B);
    for (int i = 0; i < n; i++)
        dnic_hash_add(&dh, t[i].data, tensor_bytes(&t[i]));
    len += (size_t)snprintf(hdr + len, cap - len, "%s%016d-%016" PRIx64 "\",\"format\":\"dnic\"}", SUM_PREFIX, 0,
                            dnic_hash_end64(&dh));
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        if (!plain_name(t[i].name)) {
            free(hdr);
            return dnic_io_error(err, errlen, "%s: tensor name '%s' cannot be written", path, t[i].name);
        }
        size_t sz = tensor_bytes(&t[i]);
        len += (size_t)snprintf(hdr + len, cap - len, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[", t[i].name,
                                dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++)
            len += (size_t)snprintf(hdr + len, cap - len, "%s%" PRId64, d ? "," : "", t[i].shape[d]);
        len += (size_t)snprintf(hdr + len, cap - len, "],\"data_offsets\":[%zu,%zu]}", off, off + sz);
        off += sz;
    }
    len += (size_t)snprintf(hdr + len, cap - len, "}");
    while (len % 8)
        hdr[len++] = ' ';
    unsigned char le[8];
    for (int b = 0; b < 8; b++)
        le[b] = (unsigned char)((uint64_t)len >> (8 * b));
    dnic_hash hh;
    dnic_hash_init(&hh, SUM_SEED_HEADER, SUM_SEED_B);
    dnic_hash_add(&hh, le, 8);
    dnic_hash_add(&hh, hdr, len);
    char digits[17];
    snprintf(digits, sizeof digits, "%016" PRIx64, dnic_hash_end64(&hh));
    memcpy(hdr + strlen(SUM_PREFIX), digits, 16);

    /* a temporary file beside the target, then fsync and rename */
    dnic_atomic_file a;
    dnic_status s = dnic_atomic_open(&a, path, err, errlen);
    if (s != DNIC_OK) {
        free(hdr);
        return s;
    }
    bool ok = fwrite(le, 1, 8, a.f) == 8 && fwrite(hdr, 1, len, a.f) == len;
    for (int i = 0; i < n && ok; i++)
        ok = fwrite(t[i].data, 1, tensor_bytes(&t[i]), a.f) == tensor_bytes(&t[i]);
    free(hdr);
    if (!ok) {
        s = dnic_io_error(err, errlen, "cannot write '%s': %s", path, strerror(errno ? errno : EIO));
        dnic_atomic_discard(&a);
        return s;
    }
    return dnic_atomic_commit(&a, err, errlen);
}

/* ---- reading ---------------------------------------------------------------------------- */

typedef struct jr {
    const char *p, *end, *start;
    const char *path;
    char *err;
    size_t errlen;
    bool failed;
} jr;

__attribute__((format(printf, 2, 3))) static bool jfail(jr *j, const char *fmt, ...)
{
    if (j->failed)
        return false;
    j->failed = true;
    char msg[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    dnic_io_error(j->err, j->errlen, "%s: %s", j->path, msg);
    return false;
}

static void ws(jr *j)
{
    while (j->p < j->end && (*j->p == ' ' || *j->p == '\t' || *j->p == '\n' || *j->p == '\r'))
        j->p++;
}

static bool expect(jr *j, char c, const char *where)
{
    ws(j);
    if (j->p >= j->end || *j->p != c)
        return jfail(j, "malformed header: expected '%c' %s at header byte %td", c, where, j->p - j->start);
    j->p++;
    return true;
}

/* A JSON string without escapes other than the simple ones; copied into out (NUL-ended). */
static bool jstring(jr *j, char *out, size_t cap)
{
    if (!expect(j, '"', "(a string)"))
        return false;
    size_t n = 0;
    while (j->p < j->end && *j->p != '"') {
        char c = *j->p++;
        if (c == '\\') {
            if (j->p >= j->end)
                break;
            c = *j->p++;
            if (c == 'n')
                c = '\n';
            else if (c == 't')
                c = '\t';
            else if (c != '"' && c != '\\' && c != '/')
                return jfail(j, "malformed header: unsupported escape '\\%c'", c);
        } else if ((unsigned char)c < 32) {
            return jfail(j, "malformed header: control character in a string");
        }
        if (n + 1 >= cap)
            return jfail(j, "malformed header: a string is longer than %zu bytes", cap - 1);
        out[n++] = c;
    }
    if (j->p >= j->end)
        return jfail(j, "malformed header: unterminated string");
    j->p++;
    out[n] = '\0';
    return true;
}

static bool jint(jr *j, int64_t *v)
{
    ws(j);
    const char *s = j->p;
    int64_t x = 0;
    while (j->p < j->end && *j->p >= '0' && *j->p <= '9') {
        if (x > (INT64_MAX - 9) / 10)
            return jfail(j, "malformed header: number too large");
        x = x * 10 + (*j->p++ - '0');
    }
    if (j->p == s)
        return jfail(j, "malformed header: expected a non-negative integer");
    *v = x;
    return true;
}

/* [int, int, ...] with at most `max` entries. */
static bool jints(jr *j, int64_t *v, int max, int *n, const char *what, const char *tensor)
{
    if (!expect(j, '[', what))
        return false;
    *n = 0;
    ws(j);
    if (j->p < j->end && *j->p == ']') {
        j->p++;
        return true;
    }
    for (;;) {
        if (*n == max)
            return jfail(j, "tensor '%s': %s has more than %d entries", tensor, what, max);
        if (!jint(j, &v[(*n)++]))
            return false;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        return expect(j, ']', what);
    }
}

/* Skips the __metadata__ object: {"key": "value", ...}. */
static bool skip_metadata(jr *j)
{
    char buf[4096];
    if (!expect(j, '{', "after \"__metadata__\""))
        return false;
    ws(j);
    if (j->p < j->end && *j->p == '}') {
        j->p++;
        return true;
    }
    for (;;) {
        if (!jstring(j, buf, sizeof buf) || !expect(j, ':', "in __metadata__") || !jstring(j, buf, sizeof buf))
            return false;
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        return expect(j, '}', "closing __metadata__");
    }
}

void dnic_st_close(dnic_st_file *f)
{
    free(f->t);
    free(f->bytes);
    free(f->names);
    memset(f, 0, sizeof *f);
}

static bool parse_tensor(jr *j, dnic_st_tensor *t, const char *name, size_t data_size)
{
    char key[64], val[64];
    bool have_dtype = false, have_shape = false, have_off = false;
    int64_t shape[8], off[2];
    int nshape = 0, noff = 0;
    if (!expect(j, '{', "opening a tensor"))
        return false;
    for (;;) {
        if (!jstring(j, key, sizeof key) || !expect(j, ':', "after a key"))
            return false;
        if (!strcmp(key, "dtype")) {
            if (!jstring(j, val, sizeof val))
                return false;
            if (!strcmp(val, "F64"))
                t->dtype = DNIC_F64;
            else if (!strcmp(val, "F32"))
                t->dtype = DNIC_F32;
            else
                return jfail(j, "tensor '%s': dtype %s is not supported (F32 or F64)", name, val);
            have_dtype = true;
        } else if (!strcmp(key, "shape")) {
            if (!jints(j, shape, 8, &nshape, "shape", name))
                return false;
            have_shape = true;
        } else if (!strcmp(key, "data_offsets")) {
            if (!jints(j, off, 2, &noff, "data_offsets", name))
                return false;
            if (noff != 2)
                return jfail(j, "tensor '%s': data_offsets needs 2 entries", name);
            have_off = true;
        } else {
            return jfail(j, "tensor '%s': unknown field '%s'", name, key);
        }
        ws(j);
        if (j->p < j->end && *j->p == ',') {
            j->p++;
            continue;
        }
        if (!expect(j, '}', "closing a tensor"))
            return false;
        break;
    }
    if (!have_dtype || !have_shape || !have_off)
        return jfail(j, "tensor '%s': missing %s", name, !have_dtype ? "dtype" : !have_shape ? "shape" : "data_offsets");
    if (nshape < 1 || nshape > 2)
        return jfail(j, "tensor '%s': %d dimensions (dnic reads 1 or 2)", name, nshape);
    uint64_t count = 1;
    for (int d = 0; d < nshape; d++) {
        if (shape[d] > (int64_t)1 << 31)
            return jfail(j, "tensor '%s': dimension %" PRId64 " is too large", name, shape[d]);
        count *= (uint64_t)shape[d];
        t->shape[d] = shape[d];
    }
    t->ndim = nshape;
    if (off[0] > off[1] || (uint64_t)off[1] > data_size)
        return jfail(j, "tensor '%s': data_offsets [%" PRId64 ",%" PRId64 "] are outside the %zu data bytes", name, off[0],
                     off[1], data_size);
    if ((uint64_t)(off[1] - off[0]) != count * dnic_dtype_size(t->dtype))
        return jfail(j, "tensor '%s': data_offsets cover %" PRId64 " bytes but the shape needs %" PRIu64, name,
                     off[1] - off[0], count * dnic_dtype_size(t->dtype));
    t->data = (const void *)(uintptr_t)off[0]; /* rebased once the header is parsed */
    return true;
}

/* A tensor's byte range in the data, for the overlap check. */
typedef struct span {
    size_t begin, end;
    int i;
} span;

static int by_begin(const void *a, const void *b)
{
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : x->i - y->i;
}

/* No two tensors share bytes (sorted by where they begin, none may begin before an earlier one ends). */
static bool no_overlap(jr *j, const dnic_st_file *f)
{
    span *s = malloc(((size_t)f->n + 1) * sizeof *s);
    if (!s)
        return jfail(j, "out of memory");
    for (int i = 0; i < f->n; i++)
        s[i] = (span){(size_t)(uintptr_t)f->t[i].data, (size_t)(uintptr_t)f->t[i].data + tensor_bytes(&f->t[i]), i};
    qsort(s, (size_t)f->n, sizeof *s, by_begin);
    bool ok = true;
    int far = -1; /* the tensor that reaches furthest so far */
    for (int k = 0; ok && k < f->n; k++) {
        if (far >= 0 && s[k].begin < s[far].end && s[k].end > s[k].begin)
            ok = jfail(j, "tensor '%s': data_offsets [%zu,%zu] overlap those of tensor '%s' [%zu,%zu]", f->t[s[k].i].name,
                       s[k].begin, s[k].end, f->t[s[far].i].name, s[far].begin, s[far].end);
        if (far < 0 || s[k].end > s[far].end)
            far = k;
    }
    free(s);
    return ok;
}

/* The 16 hex digits at p as a number; false if they are not 16 lowercase hex digits. */
static bool hex16(const unsigned char *p, uint64_t *v)
{
    *v = 0;
    for (int i = 0; i < 16; i++) {
        int d = p[i] >= '0' && p[i] <= '9' ? p[i] - '0' : p[i] >= 'a' && p[i] <= 'f' ? p[i] - 'a' + 10 : -1;
        if (d < 0)
            return false;
        *v = *v << 4 | (uint64_t)d;
    }
    return true;
}

/* Whether the file opens with dnic's checksums: 1 (*hsum and *dsum are then the sums it holds),
 * 0 (it does not), -1 (it says it does but they are damaged). */
static int has_checksums(const unsigned char *b, size_t size, uint64_t *hsum, uint64_t *dsum)
{
    size_t p = 8 + strlen(SUM_PREFIX);
    if (size < p || memcmp(b + 8, SUM_PREFIX, p - 8))
        return 0;
    return size >= p + SUM_LEN + 1 && hex16(b + p, hsum) && b[p + 16] == '-' && hex16(b + p + 17, dsum) &&
                   b[p + SUM_LEN] == '"'
               ? 1
               : -1;
}

/* The checksum of the length and the header, its own 16 digits read as zeros. */
static uint64_t header_sum(unsigned char *b, size_t hlen)
{
    unsigned char keep[16], *digits = b + 8 + strlen(SUM_PREFIX);
    memcpy(keep, digits, 16);
    memset(digits, '0', 16);
    uint64_t h = dnic_hash64(b, 8 + hlen, SUM_SEED_HEADER, SUM_SEED_B);
    memcpy(digits, keep, 16);
    return h;
}

bool dnic_st_sign(unsigned char *b, size_t size)
{
    uint64_t hsum, dsum, hlen = 0;
    for (int i = 7; i >= 0; i--)
        hlen = hlen << 8 | (size >= 8 ? b[i] : 0);
    if (!has_checksums(b, size, &hsum, &dsum) || size < 8 + strlen(SUM_PREFIX) + SUM_LEN + 1 || hlen > size - 8 ||
        hlen < strlen(SUM_PREFIX) + SUM_LEN + 1)
        return false;
    char digits[17];
    unsigned char *at = b + 8 + strlen(SUM_PREFIX);
    at[16] = '-';
    at[SUM_LEN] = '"';
    snprintf(digits, sizeof digits, "%016" PRIx64, dnic_hash64(b + 8 + hlen, size - 8 - (size_t)hlen, SUM_SEED_DATA, SUM_SEED_B));
    memcpy(at + 17, digits, 16);
    snprintf(digits, sizeof digits, "%016" PRIx64, header_sum(b, (size_t)hlen));
    memcpy(at, digits, 16);
    return true;
}

dnic_status dnic_st_read(dnic_st_file *f, const char *path, char *err, size_t errlen)
{
    return dnic_st_read_as(f, path, "file", err, errlen);
}

dnic_status dnic_st_read_as(dnic_st_file *f, const char *path, const char *kind, char *err, size_t errlen)
{
    memset(f, 0, sizeof *f);
    const char *why;
    FILE *fp = dnic_open_regular(path, &why);
    if (!fp)
        return dnic_io_error(err, errlen, "cannot open '%s': %s", path, why);
    struct stat st;
    if (fstat(fileno(fp), &st) != 0) {
        fclose(fp);
        return dnic_io_error(err, errlen, "cannot open '%s': %s", path, strerror(errno));
    }
    size_t size = (size_t)st.st_size;
    unsigned char *bytes = malloc(size + 1);
    if (!bytes) {
        fclose(fp);
        return dnic_io_error(err, errlen, "%s: out of memory reading %zu bytes", path, size);
    }
    size_t got = fread(bytes, 1, size, fp);
    fclose(fp);
    if (got != size) {
        free(bytes);
        return dnic_io_error(err, errlen, "%s: cannot read the file", path);
    }
    f->bytes = bytes;
    f->size = size;
    if (size < 8) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: truncated: %zu bytes, shorter than the 8-byte header length", path, size);
    }
    uint64_t hlen = 0, hsum = 0, dsum = 0;
    for (int b = 7; b >= 0; b--)
        hlen = hlen << 8 | bytes[b];
    /* a file with checksums is checked before anything in it is believed */
    int summed = has_checksums(bytes, size, &hsum, &dsum);
    if (summed < 0) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: the %s is corrupted: its checksums (bytes %zu-%zu) are not %d hex digits", path,
                             kind, 8 + strlen(SUM_PREFIX), 8 + strlen(SUM_PREFIX) + SUM_LEN, 32);
    }
    if (summed && (hlen > size - 8 || hlen < strlen(SUM_PREFIX) + SUM_LEN)) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: the %s is %s: its header length (bytes 0-7) is %" PRIu64 ", %s (%zu bytes)",
                             path, kind, hlen > size - 8 ? "truncated or corrupted" : "corrupted", hlen,
                             hlen > size - 8 ? "past the end of the file" : "too short for its checksums", size);
    }
    if (summed && header_sum(bytes, (size_t)hlen) != hsum) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: the %s is corrupted: bytes 0-%" PRIu64 " (the length and the header) do not "
                             "match their checksum", path, kind, hlen + 7);
    }
    if (hlen > MAX_HEADER) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: header length %" PRIu64 " is larger than the %d-byte limit", path, hlen, MAX_HEADER);
    }
    if (hlen > size - 8) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: truncated: the header needs %" PRIu64 " bytes but the file has %zu after the length",
                    path, hlen, size - 8);
    }
    size_t data_size = size - 8 - (size_t)hlen;
    jr j = {(const char *)bytes + 8, (const char *)bytes + 8 + hlen, (const char *)bytes + 8, path, err, errlen, false};
    f->names = malloc((size_t)hlen + 1);
    f->t = calloc(1, sizeof *f->t);
    size_t names_used = 0;
    int cap = 1;
    if (!f->names || !f->t) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: out of memory", path);
    }
    bool ok = expect(&j, '{', "at the start of the header");
    ws(&j);
    bool empty = ok && j.p < j.end && *j.p == '}';
    if (empty)
        j.p++;
    while (ok && !empty) {
        char *name = f->names + names_used;
        ok = jstring(&j, name, (size_t)hlen + 1 - names_used) && expect(&j, ':', "after a tensor name");
        if (!ok)
            break;
        names_used += strlen(name) + 1;
        if (!strcmp(name, "__metadata__")) {
            ok = skip_metadata(&j);
        } else {
            for (int i = 0; i < f->n; i++)
                if (!strcmp(f->t[i].name, name)) {
                    ok = jfail(&j, "tensor '%s' appears twice", name);
                    break;
                }
            if (ok && f->n == MAX_TENSORS)
                ok = jfail(&j, "more than %d tensors", MAX_TENSORS);
            if (ok && f->n == cap) {
                dnic_st_tensor *nt = realloc(f->t, (size_t)cap * 2 * sizeof *nt);
                if (!nt)
                    ok = jfail(&j, "out of memory");
                else {
                    f->t = nt;
                    cap *= 2;
                }
            }
            if (ok) {
                memset(&f->t[f->n], 0, sizeof f->t[f->n]);
                f->t[f->n].name = name;
                ok = parse_tensor(&j, &f->t[f->n], name, data_size);
                f->n += ok;
            }
        }
        if (!ok)
            break;
        ws(&j);
        if (j.p < j.end && *j.p == ',') {
            j.p++;
            continue;
        }
        ok = expect(&j, '}', "closing the header");
        break;
    }
    if (ok) {
        ws(&j);
        if (j.p != j.end)
            ok = jfail(&j, "malformed header: bytes after the closing '}'");
    }
    if (!ok) {
        dnic_st_close(f);
        return DNIC_ERR_IO;
    }
    if (ok)
        ok = no_overlap(&j, f);
    if (!ok) {
        dnic_st_close(f);
        return DNIC_ERR_IO;
    }
    const unsigned char *data = bytes + 8 + hlen;
    if (summed && dnic_hash64(data, data_size, SUM_SEED_DATA, SUM_SEED_B) != dsum) {
        dnic_st_close(f);
        return dnic_io_error(err, errlen, "%s: the %s is corrupted: bytes %" PRIu64 "-%zu (the tensors' data) do not match "
                             "their checksum", path, kind, hlen + 8, size - 1);
    }
    for (int i = 0; i < f->n; i++)
        f->t[i].data = data + (uintptr_t)f->t[i].data;
    return DNIC_OK;
}

const dnic_st_tensor *dnic_st_find(const dnic_st_file *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (!strcmp(f->t[i].name, name))
            return &f->t[i];
    return NULL;
}

/* ---- programs --------------------------------------------------------------------------- */

int dnic_program_params(const dnic_program *p, dnic_st_tensor *out)
{
    int n = 0;
    for (int i = 0; i < p->nbufs; i++) {
        const dnic_buffer_desc *b = &p->bufs[i];
        if (b->kind != DNIC_BUF_PARAM)
            continue;
        /* biases are 1-D, as numpy's np.random.randn(out) */
        bool bias = b->rows == 1 && strlen(b->name) > 5 && !strcmp(b->name + strlen(b->name) - 5, ".bias");
        out[n++] = (dnic_st_tensor){b->name, b->dtype, bias ? 1 : 2, {bias ? b->cols : b->rows, b->cols}, p->ptrs[i]};
    }
    return n;
}

dnic_status dnic_program_save(const dnic_program *p, const char *path, char *err, size_t errlen)
{
    dnic_st_tensor *t = malloc(((size_t)p->nbufs + 1) * sizeof *t);
    if (!t)
        return dnic_io_error(err, errlen, "%s: out of memory", path);
    int n = dnic_program_params(p, t);
    dnic_status s = dnic_st_write(path, t, n, err, errlen);
    free(t);
    return s;
}

static void shape_str(char *buf, size_t n, const dnic_st_tensor *t)
{
    if (t->ndim == 1)
        snprintf(buf, n, "[%" PRId64 "]", t->shape[0]);
    else
        snprintf(buf, n, "[%" PRId64 ",%" PRId64 "]", t->shape[0], t->shape[1]);
}

/* Weights must be numbers: a NaN or an infinity is named with its place in the tensor and file. */
static dnic_status finite_values(const dnic_st_file *f, const dnic_st_tensor *t, const char *path, char *err, size_t errlen)
{
    size_t es = dnic_dtype_size(t->dtype), cols = t->ndim == 2 ? (size_t)t->shape[1] : 1, n = (size_t)t->shape[0] * cols;
    for (size_t k = 0; k < n; k++) {
        /* memcpy: a hostile file's offsets need not be aligned */
        double v;
        float v32;
        if (t->dtype == DNIC_F64)
            memcpy(&v, (const unsigned char *)t->data + k * es, es);
        else {
            memcpy(&v32, (const unsigned char *)t->data + k * es, es);
            v = (double)v32;
        }
        if (isfinite(v))
            continue;
        size_t at = (size_t)((const unsigned char *)t->data - f->bytes) + k * es;
        char where[64];
        if (t->ndim == 2)
            snprintf(where, sizeof where, "[%zu,%zu]", k / cols, k % cols);
        else
            snprintf(where, sizeof where, "[%zu]", k);
        return dnic_io_error(err, errlen, "%s: tensor '%s' holds %s at %s (bytes %zu-%zu): weights must be finite", path,
                             t->name, isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf", where, at, at + es - 1);
    }
    return DNIC_OK;
}

dnic_status dnic_program_load(dnic_program *p, const char *path, char *err, size_t errlen)
{
    dnic_st_file f;
    dnic_status s = dnic_st_read_as(&f, path, "weights file", err, errlen);
    if (s != DNIC_OK)
        return s;
    dnic_st_tensor *want = malloc(((size_t)p->nbufs + 1) * sizeof *want);
    if (!want) {
        dnic_st_close(&f);
        return dnic_io_error(err, errlen, "%s: out of memory", path);
    }
    int n = dnic_program_params(p, want);
    s = DNIC_OK;
    /* check everything before changing anything */
    for (int i = 0; i < n && s == DNIC_OK; i++) {
        const dnic_st_tensor *got = dnic_st_find(&f, want[i].name);
        char a[64], b[64];
        if (!got) {
            s = dnic_io_error(err, errlen, "%s: tensor '%s' is missing", path, want[i].name);
        } else if (got->dtype != want[i].dtype) {
            s = dnic_io_error(err, errlen, "%s: tensor '%s' is %s but the model is trained in %s", path, want[i].name,
                     dtype_name(got->dtype), dtype_name(want[i].dtype));
        } else if (got->ndim != want[i].ndim || got->shape[0] != want[i].shape[0] ||
                   (got->ndim == 2 && got->shape[1] != want[i].shape[1])) {
            shape_str(a, sizeof a, got);
            shape_str(b, sizeof b, &want[i]);
            s = dnic_io_error(err, errlen, "%s: tensor '%s' has shape %s but the model's is %s", path, want[i].name, a, b);
        }
    }
    for (int i = 0; i < n && s == DNIC_OK; i++)
        s = finite_values(&f, dnic_st_find(&f, want[i].name), path, err, errlen);
    for (int i = 0; i < f.n && s == DNIC_OK; i++) {
        bool known = false;
        for (int k = 0; k < n; k++)
            known |= !strcmp(f.t[i].name, want[k].name);
        if (!known)
            s = dnic_io_error(err, errlen, "%s: tensor '%s' is not a parameter of this model", path, f.t[i].name);
    }
    if (s == DNIC_OK)
        for (int i = 0; i < n; i++) {
            const dnic_st_tensor *got = dnic_st_find(&f, want[i].name);
            memcpy((void *)(uintptr_t)want[i].data, got->data, tensor_bytes(got));
        }
    free(want);
    dnic_st_close(&f);
    return s;
}
