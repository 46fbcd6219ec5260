/* Training-log charts: reads the CSV logs `--log` writes and draws them as one SVG, a panel per
 * logged quantity, a polyline per run.  Everything is parsed before anything is written, and
 * the picture goes to a temporary file that is renamed into place. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "atomic_file.h"
#include "open_regular.h"
#include "plot.h"

/* ---- reading the logs ------------------------------------------------------------------- */

typedef struct plot_run {
    const char *path;
    char *label;
    const char *x; /* the x column: "step", or "elapsed_s" for wall time */
    char **names;  /* ncols column names */
    int ncols, step; /* step: the index of column x */
    double *cells; /* nrows x ncols: values, PLOT_GAP or PLOT_EMPTY */
    int nrows, cap;
} plot_run;

static void run_free(plot_run *r)
{
    for (int c = 0; c < r->ncols; c++)
        free(r->names[c]);
    free(r->names);
    free(r->cells);
    free(r->label);
}

static void log_error(const char *path, int line, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "dnic: error: %s:%d: ", path, line);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

static void oom(void)
{
    fprintf(stderr, "dnic: error: out of memory\n");
}

/* A cell quoted in a message: at most 40 bytes, control characters as '?'.  The last two
 * answers stay valid. */
static const char *shown(const char *s)
{
    static char bufs[2][48];
    static int next;
    char *buf = bufs[next++ & 1];
    size_t n = 0;
    for (; s[n] && n < 40; n++)
        buf[n] = (unsigned char)s[n] < 0x20 || s[n] == 0x7f ? '?' : s[n];
    buf[n] = 0;
    if (s[n])
        strcpy(buf + n, "...");
    return buf;
}

static char *dup_str(const char *s, size_t n)
{
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* Splits `s` at commas in place, trimming blanks; returns the field count or -1 (no memory). */
static int split(char *s, char ***fields, int *cap)
{
    int n = 0;
    for (;;) {
        char *end = strchr(s, ',');
        if (end)
            *end = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        size_t len = strlen(s);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t'))
            s[--len] = 0;
        if (n == *cap) {
            int nc = *cap ? 2 * *cap : 16;
            char **nf = realloc(*fields, (size_t)nc * sizeof *nf);
            if (!nf)
                return -1;
            *fields = nf;
            *cap = nc;
        }
        (*fields)[n++] = s;
        if (!end)
            return n;
        s = end + 1;
    }
}

/* Cells hold a finite value, PLOT_GAP (nan or inf: the line breaks there) or PLOT_EMPTY (an
 * empty cell: not measured at that row, e.g. a test metric logged every few reports; the line
 * goes on from the previous value to the next). */
#define PLOT_GAP ((double)NAN)
#define PLOT_EMPTY ((double)INFINITY)

/* A cell's value: true with *v set, false if the text is not a number. */
static bool parse_cell(const char *s, double *v)
{
    if (!*s) {
        *v = PLOT_EMPTY;
        return true;
    }
    char *end;
    double d = strtod(s, &end);
    if (end == s || *end)
        return false;
    *v = isfinite(d) ? d : PLOT_GAP;
    return true;
}

static bool is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t')
            return false;
    return true;
}

static bool parse_header(plot_run *r, char **f, int nf, int line)
{
    for (int c = 0; c < nf; c++) {
        double v;
        if (*f[c] && parse_cell(f[c], &v) && isfinite(v)) {
            log_error(r->path, line, "missing header: the first line holds numbers, not column names");
            return false;
        }
    }
    r->names = calloc((size_t)nf, sizeof *r->names);
    if (!r->names) {
        oom();
        return false;
    }
    r->step = -1;
    for (int c = 0; c < nf; c++) {
        if (!*f[c]) {
            log_error(r->path, line, "empty column name (field %d)", c + 1);
            return false;
        }
        for (int p = 0; p < c; p++)
            if (!strcmp(r->names[p], f[c])) {
                log_error(r->path, line, "duplicate column '%s'", shown(f[c]));
                return false;
            }
        if (!(r->names[c] = dup_str(f[c], strlen(f[c])))) {
            oom();
            return false;
        }
        r->ncols = c + 1;
        if (!strcmp(f[c], r->x))
            r->step = c;
    }
    if (r->step < 0) {
        log_error(r->path, line, "no '%s' column in the header", r->x);
        return false;
    }
    return true;
}

static bool parse_row(plot_run *r, char **f, int nf, int line)
{
    if (nf != r->ncols) {
        log_error(r->path, line, "expected %d fields, found %d", r->ncols, nf);
        return false;
    }
    if (r->nrows == r->cap) {
        int nc = r->cap ? 2 * r->cap : 64;
        double *cells = realloc(r->cells, (size_t)nc * (size_t)r->ncols * sizeof *cells);
        if (!cells) {
            oom();
            return false;
        }
        r->cells = cells;
        r->cap = nc;
    }
    double *row = r->cells + (size_t)r->nrows * (size_t)r->ncols;
    for (int c = 0; c < nf; c++) {
        if (!parse_cell(f[c], &row[c])) {
            log_error(r->path, line, "field %d ('%s') is not a number: '%s'", c + 1, shown(r->names[c]), shown(f[c]));
            return false;
        }
        if (c == r->step && !isfinite(row[c])) {
            log_error(r->path, line, "field %d ('%s') must be a finite number, found '%s'", c + 1, r->x, shown(f[c]));
            return false;
        }
    }
    r->nrows++;
    return true;
}

static bool read_log(plot_run *r)
{
    const char *why;
    FILE *f = dnic_open_regular(r->path, &why);
    if (!f) {
        fprintf(stderr, "dnic: error: %s: cannot read: %s\n", r->path, why);
        return false;
    }
    char *line = NULL, **fields = NULL;
    size_t lcap = 0;
    int fcap = 0, lineno = 0;
    bool ok = false, have_header = false;
    ssize_t len;
    while ((len = getline(&line, &lcap, f)) >= 0) {
        lineno++;
        len = (ssize_t)strlen(line); /* a NUL byte ends the line */
        while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
            line[--len] = 0;
        char *s = line;
        if (lineno == 1 && !strncmp(s, "\xEF\xBB\xBF", 3))
            s += 3; /* a UTF-8 byte order mark */
        if (is_blank(s))
            continue;
        int nf = split(s, &fields, &fcap);
        if (nf < 0) {
            oom();
            goto out;
        }
        if (!have_header) {
            if (!parse_header(r, fields, nf, lineno))
                goto out;
            have_header = true;
        } else if (!parse_row(r, fields, nf, lineno))
            goto out;
    }
    if (ferror(f)) {
        fprintf(stderr, "dnic: error: %s: cannot read: %s\n", r->path, strerror(errno));
        goto out;
    }
    if (!have_header)
        log_error(r->path, 1, "missing header: the file is empty");
    else if (!r->nrows)
        log_error(r->path, lineno + 1, "no data rows");
    else
        ok = true;
out:
    free(line);
    free(fields);
    fclose(f);
    return ok;
}

/* The legend's name for a run: the file's base name without ".csv". */
static char *default_label(const char *path)
{
    const char *b = strrchr(path, '/');
    b = b && b[1] ? b + 1 : path;
    size_t n = strlen(b);
    while (n > 1 && b[n - 1] == '/')
        n--;
    if (n > 4 && b[n - 4] == '.' && (b[n - 3] | 0x20) == 'c' && (b[n - 2] | 0x20) == 's' && (b[n - 1] | 0x20) == 'v')
        n -= 4;
    return dup_str(b, n);
}

/* ---- panels and axes -------------------------------------------------------------------- */

typedef struct plot_series {
    int run, col, key; /* key: the SG module's marker, -1 outside the SG panel */
} plot_series;

/* Columns drawn together, one panel per suffix: the modules' synthetic losses, and --probe's
 * measures of each module (the modules told apart by marker shapes). */
static const struct {
    const char *suffix, *title;
} GROUPS[] = {
    {".sg_loss", "synthetic gradient loss"},
    {".probe_cos", "probe: cosine of the synthetic and the true gradient"},
    {".probe_norm", "probe: |synthetic| / |true gradient|"},
    {".probe_sg_boot", "probe: synthetic loss against the bootstrapped target"},
    {".probe_sg_true", "probe: synthetic loss against the true gradient"},
};
enum { NGROUPS = sizeof GROUPS / sizeof GROUPS[0] };

typedef struct plot_panel {
    const char *col; /* the column, or the first SG column for the SG panel */
    int sg;          /* 1 + its index in GROUPS for a panel of a group of columns, else 0 */
    plot_series *s;
    int ns, scap;
    const char **keys; /* SG panel: the modules' column names */
    int nkeys;
} plot_panel;

typedef struct plot_axis {
    double lo, hi;
    bool log;
    int nt, nminor;
    double t[64], minor[128], step;
} plot_axis;

static bool ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n > m && !strcmp(s + n - m, suffix);
}

static bool is_axis_column(const char *name)
{
    return !strcmp(name, "iter") || !strcmp(name, "step") || !strcmp(name, "elapsed_s");
}

static double nice_round(double x)
{
    double e = floor(log10(x)), f = x / pow(10, e);
    return (f < 1.5 ? 1 : f < 3 ? 2 : f < 7 ? 5 : 10) * pow(10, e);
}

static void linear_axis(plot_axis *a, double lo, double hi)
{
    if (!(hi > lo)) {
        double d = lo == 0 ? 1 : fabs(lo) * 0.1;
        lo -= d;
        hi += d;
    }
    a->log = false;
    a->nminor = 0;
    a->step = nice_round((hi - lo) / 5);
    double k0 = floor(lo / a->step + 1e-9), k1 = ceil(hi / a->step - 1e-9);
    if (!isfinite(a->step) || !(a->step > 0) || k1 - k0 > 60 || !(k1 > k0)) {
        a->lo = lo;
        a->hi = hi;
        a->t[0] = lo;
        a->t[1] = hi;
        a->nt = 2;
        a->step = hi - lo;
        return;
    }
    a->nt = 0;
    for (double k = k0; k <= k1; k++) {
        double t = k * a->step;
        a->t[a->nt++] = fabs(t) < a->step * 1e-9 ? 0 : t;
    }
    a->lo = a->t[0];
    a->hi = a->t[a->nt - 1];
}

static void log_axis(plot_axis *a, double lo, double hi)
{
    a->log = true;
    int e0 = (int)floor(log10(lo) + 1e-9), e1 = (int)ceil(log10(hi) - 1e-9);
    int every = (e1 - e0 + 7) / 8;
    if (every < 1)
        every = 1;
    e0 = (int)floor((double)e0 / every) * every;
    e1 = (int)ceil((double)e1 / every) * every;
    a->lo = pow(10, e0);
    a->hi = pow(10, e1);
    a->step = every;
    a->nt = a->nminor = 0;
    for (int e = e0; e <= e1 && a->nt < 64; e += every) {
        a->t[a->nt++] = pow(10, e);
        for (int m = 2; every == 1 && e1 - e0 <= 6 && e < e1 && m <= 9; m++)
            a->minor[a->nminor++] = m * pow(10, e);
    }
}

/* Where v falls on the axis, 0 (lo) to 1 (hi). */
static double axis_frac(const plot_axis *a, double v)
{
    double f = a->log ? (log10(v) - log10(a->lo)) / (log10(a->hi) - log10(a->lo)) : (v - a->lo) / (a->hi - a->lo);
    return isfinite(f) ? (f < -10 ? -10 : f > 10 ? 10 : f) : 0;
}

/* A tick label: 20k, 1.5M, 0.25, 1e-5. */
static void tick_label(char *buf, size_t n, const plot_axis *a, double v)
{
    if (a->log) {
        int e = (int)lround(log10(v));
        if (e >= -4 && e <= 5)
            snprintf(buf, n, "%g", v);
        else
            snprintf(buf, n, "1e%d", e);
        return;
    }
    double big = fmax(fabs(a->lo), fabs(a->hi));
    static const char suffix[] = "kMGT";
    if (!isfinite(big) || !isfinite(a->step) || !(a->step > 0))
        snprintf(buf, n, "%.3g", v);
    else if (big >= 1e4 && a->step >= 100 && big < 1e15) {
        int s = big >= 1e12 ? 3 : big >= 1e9 ? 2 : big >= 1e6 ? 1 : 0;
        double div = pow(1000, s + 1), st = a->step / div;
        int dec = st >= 1 ? 0 : (int)ceil(-log10(st) - 1e-9);
        if (v == 0)
            snprintf(buf, n, "0");
        else
            snprintf(buf, n, "%.*f%c", dec, v / div, suffix[s]);
    } else if (big >= 1e6 || a->step < 1e-4) {
        int sig = (int)floor(log10(big)) - (int)floor(log10(a->step)) + 1;
        snprintf(buf, n, "%.*g", sig < 1 ? 1 : sig > 17 ? 17 : sig, v);
    } else {
        int dec = a->step >= 1 ? 0 : (int)ceil(-log10(a->step) - 1e-9);
        snprintf(buf, n, "%.*f", dec, v);
    }
}

/* ---- SVG -------------------------------------------------------------------------------- */

enum {
    W = 900,             /* picture width */
    ML = 76, MR = 24,    /* plot area margins */
    PW = W - ML - MR,    /* plot area width */
    PH = 190,            /* plot area height */
    PANEL_TOP = 30,      /* title line above the plot area */
    PANEL_H = PANEL_TOP + PH + 26,
    PANEL_GAP = 16,
    LEGEND_ROW = 20,
    MAX_POINTS = 4 * PW, /* a longer stretch of a series is thinned to its per-pixel extremes */
};

static const char *const colours[8] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                       "#9467bd", "#8c564b", "#e377c2", "#17becf"};
static const char *const dashes[4] = {NULL, "7 4", "2 3", "9 3 2 3"};

/* Writes text as XML character data: escapes markup, replaces control characters and bytes
 * that are not UTF-8 with '?'. */
static void xml_text(FILE *o, const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + n;
    while (p < end) {
        unsigned c = *p;
        int len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 && c >= 0xC2 ? 2 : (c & 0xF0) == 0xE0 ? 3
                               : (c & 0xF8) == 0xF0 && c <= 0xF4 ? 4 : 0;
        bool valid = len > 0 && end - p >= len;
        for (int i = 1; valid && i < len; i++)
            valid = (p[i] & 0xC0) == 0x80;
        if (valid && len == 3)
            valid = !(c == 0xE0 && p[1] < 0xA0) && !(c == 0xED && p[1] >= 0xA0) && !(c == 0xEF && p[1] == 0xBF && p[2] >= 0xBE);
        if (valid && len == 4)
            valid = !(c == 0xF0 && p[1] < 0x90) && !(c == 0xF4 && p[1] >= 0x90);
        if (!valid || (c < 0x20 && c != '\t') || c == 0x7f) {
            fputc('?', o);
            p++;
            continue;
        }
        switch (c) {
        case '&': fputs("&amp;", o); break;
        case '<': fputs("&lt;", o); break;
        case '>': fputs("&gt;", o); break;
        case '"': fputs("&quot;", o); break;
        case '\'': fputs("&apos;", o); break;
        default: fwrite(p, 1, (size_t)len, o);
        }
        p += len;
    }
}

static void xml_str(FILE *o, const char *s)
{
    xml_text(o, s, strlen(s));
}

/* The rough width in pixels of text at 12 px. */
static double text_width(const char *s)
{
    int n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return 6.8 * n;
}

static void stroke_style(FILE *o, int run)
{
    fprintf(o, " stroke=\"%s\"", colours[run % 8]);
    const char *d = dashes[(run / 8) % 4];
    if (d)
        fprintf(o, " stroke-dasharray=\"%s\"", d);
}

/* A marker: circle, square, triangle, diamond, inverted triangle, cross. */
static void marker(FILE *o, int key, double x, double y, const char *colour)
{
    const char *style = "fill=\"#fff\" stroke-width=\"1.4\"";
    switch (key % 6) {
    case 0: fprintf(o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.4\" %s stroke=\"%s\"/>\n", x, y, style, colour); break;
    case 1:
        fprintf(o, "<rect x=\"%.1f\" y=\"%.1f\" width=\"6.4\" height=\"6.4\" %s stroke=\"%s\"/>\n", x - 3.2, y - 3.2, style,
                colour);
        break;
    case 2:
        fprintf(o, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" %s stroke=\"%s\"/>\n", x, y - 4.2, x + 4, y + 3,
                x - 4, y + 3, style, colour);
        break;
    case 3:
        fprintf(o, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f %.1f,%.1f\" %s stroke=\"%s\"/>\n", x, y - 4.4, x + 4.4,
                y, x, y + 4.4, x - 4.4, y, style, colour);
        break;
    case 4:
        fprintf(o, "<polygon points=\"%.1f,%.1f %.1f,%.1f %.1f,%.1f\" %s stroke=\"%s\"/>\n", x, y + 4.2, x + 4, y - 3,
                x - 4, y - 3, style, colour);
        break;
    default:
        fprintf(o, "<path d=\"M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f\" fill=\"none\" stroke-width=\"1.6\" stroke=\"%s\"/>\n",
                x - 3.5, y - 3.5, x + 3.5, y + 3.5, x - 3.5, y + 3.5, x + 3.5, y - 3.5, colour);
    }
}

typedef struct plot_ctx {
    FILE *o;
    const plot_run *runs;
    int n;
    plot_axis x;
    const char *xlabel;
    double *px, *py; /* scratch: room for the longest run's points */
} plot_ctx;

/* One stretch of a series without gaps, the n points (px[i], py[i]), as a polyline (a dot if
 * it is one point); a stretch longer than MAX_POINTS keeps, per pixel column, its first,
 * lowest, highest and last points. */
static void segment(const plot_ctx *c, const plot_series *s, const double *px, const double *py, int n)
{
    const plot_run *r = &c->runs[s->run];
    if (n == 1) {
        fprintf(c->o, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\" fill=\"%s\"/>\n", px[0], py[0], colours[s->run % 8]);
        return;
    }
    fprintf(c->o, "<polyline data-run=\"%d\" fill=\"none\" stroke-width=\"1.8\" stroke-linejoin=\"round\"", s->run);
    stroke_style(c->o, s->run);
    fputs(" points=\"", c->o);
    const char *sep = "";
    for (int i = 0; i < n;) {
        int j = i + 1;
        if (n > MAX_POINTS)
            while (j < n && floor(px[j]) == floor(px[i]))
                j++;
        /* [i, j) share a pixel column (or j = i + 1) */
        int lo = i, hi = i;
        for (int k = i + 1; k < j; k++) {
            lo = py[k] < py[lo] ? k : lo;
            hi = py[k] > py[hi] ? k : hi;
        }
        int keep[4] = {i, lo < hi ? lo : hi, lo < hi ? hi : lo, j - 1};
        for (int k = 0; k < 4; k++)
            if (k == 0 || keep[k] != keep[k - 1]) {
                fprintf(c->o, "%s%.1f,%.1f", sep, px[keep[k]], py[keep[k]]);
                sep = " ";
            }
        i = j;
    }
    fputs("\"><title>", c->o);
    xml_str(c->o, r->label);
    fputs(": ", c->o);
    xml_str(c->o, r->names[s->col]);
    fputs("</title></polyline>\n", c->o);
}

/* Draws a series: its stretches between gaps, empty cells skipped.  px, py: scratch space
 * for r->nrows points. */
static void series(const plot_ctx *c, const plot_series *s, const plot_axis *y, double top, double *px, double *py)
{
    const plot_run *r = &c->runs[s->run];
    int n = 0;
    for (int i = 0; i <= r->nrows; i++) {
        double v = i < r->nrows ? r->cells[(size_t)i * r->ncols + s->col] : PLOT_GAP;
        if (isfinite(v)) {
            px[n] = ML + axis_frac(&c->x, r->cells[(size_t)i * r->ncols + r->step]) * PW;
            py[n++] = top + PH - axis_frac(y, v) * PH;
        } else if (isnan(v)) {
            if (n)
                segment(c, s, px, py, n);
            n = 0;
        }
    }
}

static void draw_panel(const plot_ctx *c, const plot_panel *p, double top, bool last_panel)
{
    FILE *o = c->o;
    /* the y range over every finite value */
    double lo = (double)INFINITY, hi = -(double)INFINITY;
    for (int k = 0; k < p->ns; k++) {
        const plot_run *r = &c->runs[p->s[k].run];
        for (int i = 0; i < r->nrows; i++) {
            double v = r->cells[(size_t)i * r->ncols + p->s[k].col];
            if (isfinite(v)) {
                lo = fmin(lo, v);
                hi = fmax(hi, v);
            }
        }
    }
    bool empty = lo > hi;
    plot_axis y;
    if (empty)
        linear_axis(&y, 0, 1);
    else if (lo > 0 && hi / lo > 100)
        log_axis(&y, lo, hi);
    else
        linear_axis(&y, lo, hi);

    fputs("<g class=\"panel\" data-column=\"", o);
    if (p->sg)
        fputc('*', o);
    xml_str(o, p->sg ? GROUPS[p->sg - 1].suffix : p->col);
    fputs("\">\n", o);
    /* title, with the SG modules' marker key on the right */
    fprintf(o, "<text x=\"%d\" y=\"%.1f\" font-size=\"14\" font-weight=\"bold\" fill=\"#222\">", ML, top + 18);
    if (p->sg == 1)
        fputs(p->nkeys > 1 ? "synthetic gradient losses" : "synthetic gradient loss", o);
    else if (p->sg)
        fputs(GROUPS[p->sg - 1].title, o);
    else
        xml_str(o, p->col);
    if (y.log)
        fputs("<tspan dx=\"8\" font-size=\"11\" font-weight=\"normal\" fill=\"#777\">(log scale)</tspan>", o);
    fputs("</text>\n", o);
    if (p->sg) {
        double kx = W - MR;
        for (int k = p->nkeys - 1; k >= 0; k--) {
            size_t len = strlen(p->keys[k]) - strlen(GROUPS[p->sg - 1].suffix);
            char tmp[64];
            snprintf(tmp, sizeof tmp, "%.*s", (int)(len < 60 ? len : 60), p->keys[k]);
            kx -= text_width(tmp);
            fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" fill=\"#444\">", kx, top + 18);
            xml_text(o, p->keys[k], len);
            fputs("</text>\n", o);
            kx -= 10;
            if (p->nkeys > 1)
                marker(o, k, kx, top + 14, "#444");
            kx -= 18;
        }
    }
    double pt = top + PANEL_TOP;
    fprintf(o, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"#fcfcfc\" stroke=\"none\"/>\n", ML, pt, PW, PH);
    /* grid lines and tick labels */
    for (int k = 0; k < y.nminor; k++) {
        double py = pt + PH - axis_frac(&y, y.minor[k]) * PH;
        fprintf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#f0f0f0\"/>\n", ML, py, ML + PW, py);
    }
    char buf[64];
    for (int k = 0; k < y.nt; k++) {
        double py = pt + PH - axis_frac(&y, y.t[k]) * PH;
        fprintf(o, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", ML, py, ML + PW, py);
        tick_label(buf, sizeof buf, &y, y.t[k]);
        fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"end\" font-size=\"11\" fill=\"#555\">%s</text>\n", ML - 6,
                py + 4, buf);
    }
    for (int k = 0; k < c->x.nt; k++) {
        double px = ML + axis_frac(&c->x, c->x.t[k]) * PW;
        fprintf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#dddddd\"/>\n", px, pt, px, pt + PH);
        tick_label(buf, sizeof buf, &c->x, c->x.t[k]);
        fprintf(o, "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" font-size=\"11\" fill=\"#555\">%s</text>\n", px,
                pt + PH + 15, buf);
    }
    fprintf(o, "<rect x=\"%d\" y=\"%.1f\" width=\"%d\" height=\"%d\" fill=\"none\" stroke=\"#888\"/>\n", ML, pt, PW, PH);
    if (last_panel)
        fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#333\">%s</text>\n", ML + PW / 2,
                pt + PH + 32, c->xlabel);
    if (empty)
        fprintf(o, "<text x=\"%d\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#999\">no finite values</text>\n",
                ML + PW / 2, pt + PH / 2);
    /* the series: polylines, then the SG modules' markers on top */
    for (int k = 0; k < p->ns; k++)
        series(c, &p->s[k], &y, pt, c->px, c->py);
    for (int k = 0; p->nkeys > 1 && k < p->ns; k++) {
        const plot_series *s = &p->s[k];
        const plot_run *r = &c->runs[s->run];
        enum { MARKS = 8 };
        for (int m = 0; m < MARKS && m < r->nrows; m++) {
            double at = r->nrows <= MARKS ? m : (m + (s->key + 1.0) / (p->nkeys + 1.0)) * r->nrows / MARKS;
            int i = (int)at;
            if (i >= r->nrows)
                i = r->nrows - 1;
            double v = r->cells[(size_t)i * r->ncols + s->col];
            if (!isfinite(v))
                continue;
            marker(o, s->key, ML + axis_frac(&c->x, r->cells[(size_t)i * r->ncols + r->step]) * PW,
                   pt + PH - axis_frac(&y, v) * PH, colours[s->run % 8]);
        }
    }
    fputs("</g>\n", o);
}

/* Lays out the legend from y = top; returns its height (and draws it if o). */
static int legend(FILE *o, const plot_run *runs, int n, double top)
{
    double x = ML;
    int rows = 1;
    for (int i = 0; i < n; i++) {
        double w = 30 + text_width(runs[i].label) + 20;
        if (x + w > W - MR && x > ML) {
            x = ML;
            rows++;
        }
        if (o) {
            double y = top + (rows - 1) * LEGEND_ROW;
            fprintf(o, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke-width=\"2.5\"", x, y + 10, x + 24,
                    y + 10);
            stroke_style(o, i);
            fprintf(o, "/>\n<text x=\"%.1f\" y=\"%.1f\" fill=\"#222\">", x + 30, y + 14);
            xml_str(o, runs[i].label);
            fputs("</text>\n", o);
        }
        x += w;
    }
    return rows * LEGEND_ROW;
}

static bool add_series(plot_panel *p, plot_series s)
{
    if (p->ns == p->scap) {
        int nc = p->scap ? 2 * p->scap : 8;
        plot_series *ns = realloc(p->s, (size_t)nc * sizeof *ns);
        if (!ns)
            return false;
        p->s = ns;
        p->scap = nc;
    }
    p->s[p->ns++] = s;
    return true;
}

/* Groups the runs' columns into panels (*out, *nalloc of them zeroed then filled); returns
 * the count, or -1 (no memory). */
static int build_panels(const plot_run *runs, int n, plot_panel **out, int *nalloc)
{
    int np = 0, total = 0;
    for (int i = 0; i < n; i++)
        total += runs[i].ncols;
    plot_panel *p = calloc((size_t)total + 1, sizeof *p);
    if (!p)
        return -1;
    *out = p;
    *nalloc = total + 1;
    for (int i = 0; i < n; i++)
        for (int c = 0; c < runs[i].ncols; c++) {
            const char *name = runs[i].names[c];
            if (is_axis_column(name))
                continue;
            int sg = 0;
            for (int g = 0; g < NGROUPS && !sg; g++)
                sg = ends_with(name, GROUPS[g].suffix) ? g + 1 : 0;
            int k = 0;
            while (k < np && (sg ? p[k].sg != sg : p[k].sg || strcmp(p[k].col, name)))
                k++;
            if (k == np) {
                p[np].col = name;
                p[np].sg = sg;
                if (sg && !(p[np].keys = calloc((size_t)total, sizeof *p[np].keys)))
                    return -1;
                np++;
            }
            plot_series s = {i, c, -1};
            if (sg) {
                int key = 0;
                while (key < p[k].nkeys && strcmp(p[k].keys[key], name))
                    key++;
                if (key == p[k].nkeys)
                    p[k].keys[p[k].nkeys++] = name;
                s.key = key;
            }
            if (!add_series(&p[k], s))
                return -1;
        }
    return np;
}

static void write_svg(FILE *o, const plot_run *runs, int n, const plot_panel *p, int np, double *scratch, int maxrows)
{
    plot_ctx c = {.o = o, .runs = runs, .n = n, .px = scratch, .py = scratch + maxrows,
                  .xlabel = n > 0 && !strcmp(runs[0].x, "elapsed_s") ? "wall time (s)" : "step"};
    double xlo = (double)INFINITY, xhi = -(double)INFINITY;
    for (int i = 0; i < n; i++)
        for (int r = 0; r < runs[i].nrows; r++) {
            double v = runs[i].cells[(size_t)r * runs[i].ncols + runs[i].step];
            xlo = fmin(xlo, v);
            xhi = fmax(xhi, v);
        }
    linear_axis(&c.x, xlo, xhi);
    double legend_top = 40;
    int lh = legend(NULL, runs, n, legend_top);
    double panels_top = legend_top + lh + 10;
    int h = (int)ceil(panels_top + (np ? np : 1) * (PANEL_H + PANEL_GAP) + 20);

    fprintf(o, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
               "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"%d\" height=\"%d\" "
               "viewBox=\"0 0 %d %d\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"12\">\n",
            W, h, W, h);
    fputs("<title>Training curves: ", o);
    for (int i = 0; i < n; i++) {
        xml_str(o, runs[i].label);
        fputs(i + 1 < n ? ", " : "", o);
    }
    fputs("</title>\n", o);
    fprintf(o, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"#ffffff\"/>\n", W, h);
    fprintf(o, "<text x=\"%d\" y=\"26\" font-size=\"17\" font-weight=\"bold\" fill=\"#111\">Training curves</text>\n", ML);
    fputs("<g class=\"legend\">\n", o);
    legend(o, runs, n, legend_top);
    fputs("</g>\n", o);
    for (int k = 0; k < np; k++)
        draw_panel(&c, &p[k], panels_top + k * (PANEL_H + PANEL_GAP), k == np - 1);
    if (!np)
        fprintf(o, "<text x=\"%d\" y=\"%.1f\" fill=\"#999\">no columns to plot</text>\n", ML, panels_top + 40);
    fputs("</svg>\n", o);
}

/* ---- entry point ------------------------------------------------------------------------ */

static bool write_atomically(const char *svg_path, const plot_run *runs, int n, const plot_panel *p, int np,
                             double *scratch, int maxrows)
{
    char err[512];
    dnic_atomic_file a;
    dnic_status s = dnic_atomic_open(&a, svg_path, err, sizeof err);
    if (s == DNIC_OK) {
        write_svg(a.f, runs, n, p, np, scratch, maxrows);
        s = dnic_atomic_commit(&a, err, sizeof err);
    }
    if (s != DNIC_OK)
        fprintf(stderr, "dnic: error: %s\n", err);
    return s == DNIC_OK;
}

int dnic_plot(const char *const *csv_paths, const char *const *labels, int n, const char *svg_path)
{
    return dnic_plot_x(csv_paths, labels, n, svg_path, DNIC_PLOT_X_STEP);
}

int dnic_plot_x(const char *const *csv_paths, const char *const *labels, int n, const char *svg_path, dnic_plot_xaxis x)
{
    if (n <= 0) {
        fprintf(stderr, "dnic: error: no logs to plot\n");
        return 1;
    }
    plot_run *runs = calloc((size_t)n, sizeof *runs);
    plot_panel *panels = NULL;
    double *scratch = NULL;
    int np = 0, nalloc = 0, rc = 1;
    if (!runs) {
        oom();
        return 1;
    }
    for (int i = 0; i < n; i++) {
        runs[i].path = csv_paths[i];
        runs[i].x = x == DNIC_PLOT_X_TIME ? "elapsed_s" : "step";
        runs[i].label = labels && labels[i] ? dup_str(labels[i], strlen(labels[i])) : default_label(csv_paths[i]);
        if (!runs[i].label) {
            oom();
            goto out;
        }
        if (!read_log(&runs[i]))
            goto out;
    }
    np = build_panels(runs, n, &panels, &nalloc);
    if (np < 0) {
        oom();
        goto out;
    }
    int maxrows = 0;
    for (int i = 0; i < n; i++)
        maxrows = runs[i].nrows > maxrows ? runs[i].nrows : maxrows;
    scratch = malloc(2 * (size_t)maxrows * sizeof *scratch);
    if (!scratch) {
        oom();
        goto out;
    }
    if (write_atomically(svg_path, runs, n, panels, np, scratch, maxrows))
        rc = 0;
out:
    for (int k = 0; k < nalloc; k++) {
        free(panels[k].s);
        free(panels[k].keys);
    }
    free(panels);
    free(scratch);
    for (int i = 0; i < n; i++)
        run_free(&runs[i]);
    free(runs);
    return rc;
}
