/* Sources and diagnostics: errors print like clang (file:line:col, the source line, a caret
 * and tildes under the span), are counted, and never stop the checker at the first one. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "dnic.h"

void dnic_diag_init(dnic_diag *d, FILE *out)
{
    memset(d, 0, sizeof *d);
    d->out = out;
    d->max_errors = 20;
}

/* Prints source line `line` of sp.src and the marker under [col, end_col). */
static void show_span(dnic_diag *d, dnic_span sp)
{
    const char *t = sp.src->text, *end = t + sp.src->len;
    for (int l = 1; l < sp.line && t < end; t++)
        if (*t == '\n')
            l++;
    const char *eol = t;
    while (eol < end && *eol != '\n')
        eol++;
    int len = (int)(eol - t);
    if (len > 0 && t[len - 1] == '\r')
        len--;
    /* a long line (a generated or hostile file) is shown as a window of SHOW columns around the
     * span, so that one diagnostic never prints megabytes */
    enum { SHOW = 120 };
    int from = 1, to = len;
    if (len > SHOW) {
        from = sp.col > SHOW / 2 ? sp.col - SHOW / 2 : 1;
        to = from + SHOW - 1;
        if (to > len) {
            to = len;
            from = len - SHOW + 1;
        }
    }
    const char *cut_l = from > 1 ? "..." : "", *cut_r = to < len ? "..." : "";
    fprintf(d->out, "%5d | %s%.*s%s\n      | %s", sp.line, cut_l, to - from + 1, t + from - 1, cut_r, from > 1 ? "   " : "");
    int last = sp.end_line == sp.line ? sp.end_col : len + 1;
    if (last <= sp.col)
        last = sp.col + 1;
    if (last > to + 2)
        last = to + 2;
    for (int c = from; c < last; c++) {
        char ch = c <= len ? t[c - 1] : ' ';
        if (c < sp.col)
            fputc(ch == '\t' ? '\t' : ' ', d->out);
        else
            fputc(c == sp.col ? '^' : '~', d->out);
    }
    fputc('\n', d->out);
}

static void vreport(dnic_diag *d, const char *what, dnic_span sp, const char *fmt, va_list ap)
{
    if (sp.src)
        fprintf(d->out, "%s:%d:%d: %s: ", sp.src->name, sp.line, sp.col, what);
    else
        fprintf(d->out, "dnic: %s: ", what);
    vfprintf(d->out, fmt, ap);
    fputc('\n', d->out);
    if (sp.src && sp.line > 0)
        show_span(d, sp);
}

void dnic_error(dnic_diag *d, dnic_span sp, const char *fmt, ...)
{
    d->errors++;
    if (d->errors > d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, "error", sp, fmt, ap);
    va_end(ap);
    if (d->errors == d->max_errors)
        fprintf(d->out, "dnic: too many errors, stopping here\n");
}

void dnic_warning(dnic_diag *d, dnic_span sp, const char *fmt, ...)
{
    d->warnings++;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, "warning", sp, fmt, ap);
    va_end(ap);
}

void dnic_note(dnic_diag *d, dnic_span sp, const char *fmt, ...)
{
    if (d->errors > d->max_errors)
        return;
    va_list ap;
    va_start(ap, fmt);
    vreport(d, "note", sp, fmt, ap);
    va_end(ap);
}

dnic_span dnic_span_join(dnic_span a, dnic_span b)
{
    dnic_span s = a;
    s.end_line = b.end_line;
    s.end_col = b.end_col;
    return s;
}

/* Edit distance with transpositions counted once (optimal string alignment). */
static int edit_distance(const char *a, const char *b)
{
    int n = (int)strlen(a), m = (int)strlen(b);
    if (n > 64 || m > 64)
        return 1000;
    int dp[65][65];
    for (int i = 0; i <= n; i++)
        dp[i][0] = i;
    for (int j = 0; j <= m; j++)
        dp[0][j] = j;
    for (int i = 1; i <= n; i++)
        for (int j = 1; j <= m; j++) {
            int cost = a[i - 1] != b[j - 1];
            int v = dp[i - 1][j] + 1;
            if (dp[i][j - 1] + 1 < v)
                v = dp[i][j - 1] + 1;
            if (dp[i - 1][j - 1] + cost < v)
                v = dp[i - 1][j - 1] + cost;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && dp[i - 2][j - 2] + 1 < v)
                v = dp[i - 2][j - 2] + 1;
            dp[i][j] = v;
        }
    return dp[n][m];
}

const char *dnic_did_you_mean(const char *name, const char *const *cands, int n)
{
    const char *best = NULL;
    int best_d = 1000;
    int limit = (int)strlen(name) / 3 + 1; /* a third of the name may be wrong */
    if (limit > 3)
        limit = 3;
    for (int i = 0; i < n; i++) {
        if (!cands[i] || strcmp(cands[i], name) == 0)
            continue;
        int dist = edit_distance(name, cands[i]);
        if (dist <= limit && dist < best_d) {
            best = cands[i];
            best_d = dist;
        }
    }
    return best;
}

dnic_source *dnic_source_from_string(dnic_arena *a, const char *name, const char *text)
{
    dnic_source *s = dnic_alloc(a, sizeof *s);
    s->name = dnic_strdup(a, name);
    s->text = dnic_strdup(a, text);
    s->len = strlen(text);
    return s;
}

dnic_source *dnic_source_load(dnic_arena *a, dnic_diag *d, const char *path)
{
    dnic_span none = {0};
    struct stat st;
    if (stat(path, &st) != 0) {
        dnic_error(d, none, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(st.st_mode)) {
        dnic_error(d, none, "'%s' is not a regular file", path);
        return NULL;
    }
    if (st.st_size > 16 * 1024 * 1024) {
        dnic_error(d, none, "'%s' is too large for a model file (%lld bytes; the limit is 16 MiB)",
                   path, (long long)st.st_size);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        dnic_error(d, none, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    size_t cap = (size_t)st.st_size + 1;
    char *buf = dnic_alloc(a, cap);
    size_t n = fread(buf, 1, cap - 1, f);
    bool failed = ferror(f);
    fclose(f);
    if (failed) {
        dnic_error(d, none, "cannot read '%s'", path);
        return NULL;
    }
    buf[n] = '\0';
    dnic_source *s = dnic_alloc(a, sizeof *s);
    s->name = dnic_strdup(a, path);
    s->text = buf;
    s->len = n;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == 0 || (c < 32 && c != '\n' && c != '\t' && c != '\r')) {
            int line = 1, col = 1;
            for (size_t j = 0; j < i; j++, col++)
                if (buf[j] == '\n')
                    line++, col = 0;
            /* at the byte, so that an editor can jump to it */
            dnic_error(d, (dnic_span){s, line, col, line, col + 1}, "'%s' is not a text file (byte 0x%02x)", path, c);
            return NULL;
        }
    }
    return s;
}
