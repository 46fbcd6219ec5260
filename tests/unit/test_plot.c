/* dnic_plot tests: real-format logs become a well-formed SVG with one polyline per run per
 * panel, and every malformed log is rejected with its exact message and nothing written. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plot.h"

static char dir[64];

static void setup(void)
{
    snprintf(dir, sizeof dir, "/tmp/dnic-plot-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void teardown(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(plot, .init = setup, .fini = teardown);

/* A path in the test directory (a few may be live at once). */
static const char *path(const char *name)
{
    static char buf[8][256];
    static int next;
    char *b = buf[next++ % 8];
    snprintf(b, 256, "%s/%s", dir, name);
    return b;
}

static const char *put(const char *name, const char *text)
{
    const char *p = path(name);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    cr_assert_eq(fclose(f), 0);
    return p;
}

static char *slurp(const char *p)
{
    FILE *f = fopen(p, "r");
    cr_assert_not_null(f, "cannot open %s", p);
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *s = malloc((size_t)n + 1);
    cr_assert_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = 0;
    fclose(f);
    return s;
}

/* Runs dnic_plot with stderr captured into *err (malloc'd). */
static int plot(const char *const *paths, const char *const *labels, int n, const char *svg, char **err)
{
    const char *ep = path("stderr.txt");
    fflush(stderr);
    int saved = dup(2), fd = open(ep, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    cr_assert(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);
    int rc = dnic_plot(paths, labels, n, svg);
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    *err = slurp(ep);
    unlink(ep);
    return rc;
}

/* The files in the test directory other than the .csv inputs, space-separated. */
static char *others(void)
{
    static char buf[1024];
    buf[0] = 0;
    DIR *d = opendir(dir);
    cr_assert_not_null(d);
    struct dirent *e;
    while ((e = readdir(d))) {
        size_t n = strlen(e->d_name);
        if (e->d_name[0] == '.' || (n > 4 && !strcmp(e->d_name + n - 4, ".csv")))
            continue;
        strncat(buf, e->d_name, sizeof buf - strlen(buf) - 2);
        strcat(buf, " ");
    }
    closedir(d);
    return buf;
}

/* ---- a minimal XML well-formedness check ------------------------------------------------- */

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_' ||
           c == ':' || c == '.';
}

/* Character data or an attribute value from s up to `stop`: no '<', entities well formed. */
static const char *chars(const char *s, char stop, const char **why)
{
    for (; *s && *s != stop; s++) {
        if (*s == '<' && stop != '<') {
            *why = "'<' in an attribute value";
            return NULL;
        }
        if (*s == '&') {
            static const char *const ents[] = {"&amp;", "&lt;", "&gt;", "&quot;", "&apos;"};
            bool ok = false;
            for (int k = 0; k < 5 && !ok; k++)
                ok = !strncmp(s, ents[k], strlen(ents[k]));
            if (!ok && s[1] == '#') {
                const char *t = s + 2 + (s[2] == 'x');
                while ((*t >= '0' && *t <= '9') || (s[2] == 'x' && ((*t >= 'a' && *t <= 'f') || (*t >= 'A' && *t <= 'F'))))
                    t++;
                ok = *t == ';' && t > s + 2 + (s[2] == 'x');
            }
            if (!ok) {
                *why = "bad entity reference";
                return NULL;
            }
        }
        if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t' && *s != '\r') {
            *why = "control character";
            return NULL;
        }
    }
    return s;
}

/* NULL if `x` is well-formed XML with one root element, else why not. */
static const char *xml_problem(const char *x)
{
    static char why_buf[200];
    const char *why = NULL, *s = x;
    const char *stack[64];
    size_t len[64];
    int depth = 0, roots = 0;
    if (!strncmp(s, "<?xml", 5)) {
        s = strstr(s, "?>");
        if (!s)
            return "unterminated XML declaration";
        s += 2;
    }
    while (*s) {
        if (*s != '<') {
            const char *t = chars(s, '<', &why);
            if (!t)
                return why;
            for (const char *u = s; u < t; u++)
                if (depth == 0 && *u != ' ' && *u != '\n' && *u != '\t' && *u != '\r')
                    return "text outside the root element";
            s = t;
            continue;
        }
        if (!strncmp(s, "<!--", 4)) {
            s = strstr(s + 4, "-->");
            if (!s)
                return "unterminated comment";
            s += 3;
            continue;
        }
        bool close = s[1] == '/';
        const char *n = s + 1 + close, *e = n;
        while (name_char(*e))
            e++;
        if (e == n)
            return "tag without a name";
        if (close) {
            while (*e == ' ' || *e == '\n')
                e++;
            if (*e != '>')
                return "junk in a closing tag";
            if (!depth || len[depth - 1] != (size_t)(e - n) || strncmp(stack[depth - 1], n, len[depth - 1])) {
                snprintf(why_buf, sizeof why_buf, "mismatched </%.*s>", (int)(e - n), n);
                return why_buf;
            }
            depth--;
            s = e + 1;
            continue;
        }
        if (depth == 0 && roots++)
            return "more than one root element";
        const char *a = e;
        for (;;) {
            const char *b = a;
            while (*a == ' ' || *a == '\n' || *a == '\t')
                a++;
            if (*a == '>' || (a[0] == '/' && a[1] == '>'))
                break;
            if (a == b)
                return "attribute not separated by blanks";
            if (!name_char(*a))
                return "bad attribute name";
            while (name_char(*a))
                a++;
            if (*a != '=' || (a[1] != '"' && a[1] != '\''))
                return "attribute without a quoted value";
            char q = a[1];
            const char *v = chars(a + 2, q, &why);
            if (!v)
                return why;
            if (*v != q)
                return "unterminated attribute value";
            a = v + 1;
        }
        if (*a == '/')
            s = a + 2;
        else {
            if (depth == 64)
                return "too deep";
            stack[depth] = n;
            len[depth++] = (size_t)(e - n);
            s = a + 1;
        }
    }
    if (depth)
        return "unclosed element";
    return roots == 1 ? NULL : "no root element";
}

static void assert_well_formed(const char *svg_path)
{
    char *x = slurp(svg_path);
    const char *why = xml_problem(x);
    cr_assert_null(why, "%s is not well-formed XML: %s", svg_path, why ? why : "");
    free(x);
    if (system("command -v xmllint >/dev/null 2>&1") == 0) {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "xmllint --noout '%s'", svg_path);
        cr_assert_eq(system(cmd), 0, "xmllint rejects %s", svg_path);
    }
}

Test(plot, xml_checker_self_test)
{
    cr_assert_null(xml_problem("<?xml version=\"1.0\"?>\n<a x=\"1 &amp; 2\"><b/><!-- c --><c y='&#60;'>t&lt;</c></a>\n"));
    static const char *const bad[] = {"<a><b></a></b>", "<a>", "<a></a><b/>", "<a x=1/>", "<a x=\"<\"/>",
                                      "<a>&nbsp;</a>", "<a>x & y</a>", "<a x=\"1\"y=\"2\"/>", "text<a/>", ""};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
        cr_assert_not_null(xml_problem(bad[i]), "accepted %s", bad[i]);
}

/* ---- reading the SVG -------------------------------------------------------------------- */

static int count(const char *s, const char *end, const char *what)
{
    int n = 0;
    for (const char *p = s; (p = strstr(p, what)) && (!end || p < end); p++)
        n++;
    return n;
}

/* The text of panel k (0-based), up to the next panel or the end; NULL if there is none. */
static const char *panel(const char *svg, int k, const char **end)
{
    const char *p = svg;
    for (int i = 0; i <= k; i++) {
        p = strstr(p + (i > 0), "<g class=\"panel\"");
        if (!p)
            return NULL;
    }
    *end = strstr(p + 1, "<g class=\"panel\"");
    if (!*end)
        *end = p + strlen(p);
    return p;
}

/* The point counts of the polylines of run `run` in [s, end), into pts; returns how many. */
static int polylines(const char *s, const char *end, int run, int *pts, int max)
{
    char tag[64];
    snprintf(tag, sizeof tag, "<polyline data-run=\"%d\"", run);
    int n = 0;
    for (const char *p = s; (p = strstr(p, tag)) && p < end; p++) {
        const char *q = strstr(p, "points=\"");
        cr_assert_not_null(q);
        q += 8;
        int k = 1;
        for (; *q != '"'; q++) {
            k += *q == ' ';
            cr_assert(*q == ' ' || *q == ',' || *q == '.' || *q == '-' || (*q >= '0' && *q <= '9'), "bad point list");
        }
        if (n < max)
            pts[n] = k;
        n++;
    }
    return n;
}

/* ---- logs ------------------------------------------------------------------------------- */

/* What `dnic examples/seed_dni.dni --run --log` and seed_dni_labels.dni write. */
static const char seed_dni[] =
    "iter,step,loss,h1.sg_loss,h2.sg_loss,elapsed_s\n"
    "999,10000,380.14201566792997,137.55446553107507,1694.1676440807901,1.014497\n"
    "1999,20000,367.20398421660303,72.886198066053183,1717.4623998337165,1.891747\n"
    "2999,30000,361.26537581632539,79.798579055182927,1735.5358743740878,2.681658\n"
    "3999,40000,357.19035326366912,111.12022289091711,1715.1865826817354,3.635058\n"
    "4999,50000,351.92433411243076,173.39989534212174,1749.4841829366292,4.638677\n"
    "5999,60000,344.62926609160627,105.44721748267806,1723.4037634071731,5.534918\n"
    "6999,70000,342.9408724619538,83.80256560741789,1734.035349081129,6.331346\n"
    "7999,80000,338.07420623610523,88.00808010243,1720.0410997946983,7.183217\n"
    "8999,90000,326.15140702188557,124.82558206217043,1636.6775054640948,7.893844\n"
    "9999,100000,324.91268806163419,154.00517018344638,1633.2735692510951,8.536145\n";
static const char seed_dni_labels[] =
    "iter,step,loss,h1.sg_loss,h2.sg_loss,elapsed_s\n"
    "999,10000,247.89470366856409,779.07723439779988,698.10135890663139,0.622646\n"
    "1999,20000,193.1177014772818,541.33230864768734,631.35674191783835,1.323563\n"
    "2999,30000,161.82430539738283,399.54422381683537,510.2763502838319,1.949250\n"
    "3999,40000,146.08688954145094,382.25294300599609,511.18827091078111,2.514367\n"
    "4999,50000,133.49781356949362,386.04717339549899,530.61090720654818,3.137322\n"
    "5999,60000,126.51159674688689,342.86742493750603,503.65008250413302,3.609818\n"
    "6999,70000,121.08479606570521,334.55668301000088,509.85089826274481,4.009213\n"
    "7999,80000,116.77766600147699,318.2142270258442,492.81279535816554,4.409456\n"
    "8999,90000,112.68901687061629,308.46054001934641,443.26891864220983,4.786237\n"
    "9999,100000,108.09164954346613,320.72320321345319,485.94928705541213,5.242082\n";

Test(plot, two_real_logs)
{
    const char *paths[2] = {put("seed_dni.csv", seed_dni), put("seed_dni_labels.csv", seed_dni_labels)};
    const char *svg_path = path("out.svg");
    char *err;
    cr_assert_eq(plot(paths, NULL, 2, svg_path, &err), 0, "%s", err);
    cr_assert_str_empty(err);
    free(err);
    cr_assert_str_eq(others(), "out.svg ", "left behind: %s", others());
    assert_well_formed(svg_path);
    char *svg = slurp(svg_path);
    cr_assert(strstr(svg, "<svg xmlns=\"http://www.w3.org/2000/svg\""));
    cr_assert(strstr(svg, "width=\"900\""));
    /* the legend names both runs, the base names without .csv */
    cr_assert(strstr(svg, ">seed_dni</text>"));
    cr_assert(strstr(svg, ">seed_dni_labels</text>"));
    /* panels: loss, then the SG losses; nothing else (iter, step, elapsed_s are axes) */
    cr_assert_eq(count(svg, NULL, "<g class=\"panel\""), 2);
    const char *end = NULL, *p = panel(svg, 0, &end);
    cr_assert(strstr(p, "data-column=\"loss\"") == p + strlen("<g class=\"panel\" "));
    cr_assert_eq(count(p, end, "<polyline"), 2);
    cr_assert_eq(count(p, end, "(log scale)"), 0);
    int pts[4];
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(polylines(p, end, r, pts, 4), 1, "run %d", r);
        cr_assert_eq(pts[0], 10);
    }
    p = panel(svg, 1, &end);
    cr_assert(strstr(p, "synthetic gradient losses"));
    cr_assert(strstr(p, ">h1</text>") && strstr(p, ">h2</text>"));
    cr_assert_eq(count(p, end, "<polyline"), 4);
    for (int r = 0; r < 2; r++) {
        cr_assert_eq(polylines(p, end, r, pts, 4), 2, "run %d: one polyline per SG module", r);
        cr_assert_eq(pts[0], 10);
        cr_assert_eq(pts[1], 10);
    }
    /* round ticks: 0, 20k .. 100k on x; 100 .. 400 on the loss axis */
    cr_assert(strstr(svg, ">20k</text>") && strstr(svg, ">100k</text>"));
    cr_assert(strstr(svg, ">100</text>") && strstr(svg, ">400</text>"));
    free(svg);
}

Test(plot, labels_are_escaped_and_output_replaced)
{
    const char *paths[2] = {put("a.csv", seed_dni), put("b.csv", seed_dni_labels)};
    const char *labels[2] = {"lr<0.1 & \"fast\"", NULL};
    const char *svg_path = put("out.svg", "old");
    char *err;
    cr_assert_eq(plot(paths, labels, 2, svg_path, &err), 0, "%s", err);
    free(err);
    assert_well_formed(svg_path);
    char *svg = slurp(svg_path);
    cr_assert(strstr(svg, ">lr&lt;0.1 &amp; &quot;fast&quot;</text>"));
    cr_assert(strstr(svg, ">b</text>"));
    cr_assert_str_eq(others(), "out.svg ", "left behind: %s", others());
    free(svg);
}

Test(plot, extra_columns_gaps_and_log_scale)
{
    /* test_loss: a nan breaks the line; test_accuracy: empty cells are skipped; loss spans
     * more than 2 decades; CRLF line ends and a blank line are accepted. */
    const char *paths[1] = {put("gaps.csv", "iter,step,loss,h1.sg_loss,elapsed_s,test_loss,test_accuracy\r\n"
                                            "0,100,1000,5,0.1,900,\r\n"
                                            "1,200,100,4,0.2,nan,0.5\r\n"
                                            "\r\n"
                                            "2,300,10,3,0.3,90,\r\n"
                                            "3,400,1,2,0.4,80,0.75\r\n"
                                            "4,500,0.5,1,0.5,-nan,0.875\r\n")};
    const char *svg_path = path("g.svg");
    char *err;
    cr_assert_eq(plot(paths, NULL, 1, svg_path, &err), 0, "%s", err);
    free(err);
    assert_well_formed(svg_path);
    char *svg = slurp(svg_path);
    cr_assert_eq(count(svg, NULL, "<g class=\"panel\""), 4);
    const char *end = NULL, *p = panel(svg, 0, &end);
    int pts[4];
    cr_assert(strstr(p, "data-column=\"loss\""));
    cr_assert_eq(count(p, end, "(log scale)"), 1);
    cr_assert_eq(polylines(p, end, 0, pts, 4), 1);
    cr_assert_eq(pts[0], 5);
    cr_assert(strstr(p, ">1000</text>") && strstr(p, ">0.1</text>"));
    p = panel(svg, 1, &end);
    cr_assert(strstr(p, "synthetic gradient loss"));
    cr_assert_eq(count(p, end, "(log scale)"), 0);
    p = panel(svg, 2, &end);
    cr_assert(strstr(p, "data-column=\"test_loss\""));
    cr_assert_eq(polylines(p, end, 0, pts, 4), 1, "the lone first point is a dot, then 90, 80");
    cr_assert_eq(pts[0], 2);
    cr_assert_eq(count(p, end, "<circle"), 1);
    p = panel(svg, 3, &end);
    cr_assert(strstr(p, "data-column=\"test_accuracy\""));
    cr_assert_eq(polylines(p, end, 0, pts, 4), 1);
    cr_assert_eq(pts[0], 3);
    free(svg);
}

Test(plot, long_log_is_thinned)
{
    const char *p = path("long.csv");
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fprintf(f, "iter,step,loss,elapsed_s\n");
    for (int i = 0; i < 50000; i++)
        fprintf(f, "%d,%d,%g,%g\n", i, i + 1, 1.0 + (i % 7) * 0.1 + 1000.0 / (i + 1), i * 0.001);
    fclose(f);
    const char *paths[1] = {p};
    char *err;
    cr_assert_eq(plot(paths, NULL, 1, path("long.svg"), &err), 0, "%s", err);
    free(err);
    assert_well_formed(path("long.svg"));
    char *svg = slurp(path("long.svg"));
    const char *end = NULL, *q = panel(svg, 0, &end);
    int pts[1];
    cr_assert_eq(polylines(q, end, 0, pts, 1), 1);
    cr_assert(pts[0] > 800 && pts[0] <= 4 * 900, "%d points", pts[0]);
    free(svg);
}

/* ---- malformed logs --------------------------------------------------------------------- */

/* Plots a good log and then `text`: fails with exactly `msg` (LINE: message) naming the bad
 * file, leaves an existing output alone and writes nothing else. */
static void expect_error(const char *text, const char *msg)
{
    const char *good = put("good.csv", seed_dni), *bad = put("bad.csv", text);
    const char *svg_path = put("out.svg", "old");
    const char *paths[2] = {good, bad};
    char *err, want[512];
    cr_assert_neq(plot(paths, NULL, 2, svg_path, &err), 0);
    snprintf(want, sizeof want, "dnic: error: %s:%s\n", bad, msg);
    cr_assert_str_eq(err, want);
    free(err);
    char *old = slurp(svg_path);
    cr_assert_str_eq(old, "old");
    free(old);
    cr_assert_str_eq(others(), "out.svg ", "left behind: %s", others());
}

Test(plot, empty_file) { expect_error("", "1: missing header: the file is empty"); }
Test(plot, blank_file) { expect_error("\n \n", "1: missing header: the file is empty"); }
Test(plot, header_missing)
{
    expect_error("999,10000,1.5,0.1\n1999,20000,1.2,0.2\n", "1: missing header: the first line holds numbers, not column names");
}
Test(plot, no_step_column) { expect_error("iter,loss\n1,2\n", "1: no 'step' column in the header"); }
Test(plot, empty_column_name) { expect_error("iter,,step\n1,2,3\n", "1: empty column name (field 2)"); }
Test(plot, duplicate_column) { expect_error("step,loss,loss\n1,2,3\n", "1: duplicate column 'loss'"); }
Test(plot, too_few_fields)
{
    expect_error("iter,step,loss,elapsed_s\n1,10,0.5,0.1\n2,20,0.4\n", "3: expected 4 fields, found 3");
}
Test(plot, too_many_fields)
{
    expect_error("iter,step,loss,elapsed_s\n1,10,0.5,0.1,7\n", "2: expected 4 fields, found 5");
}
Test(plot, non_numeric_cell)
{
    expect_error("iter,step,loss,elapsed_s\n1,10,0.5,0.1\n2,20,abc,0.2\n", "3: field 3 ('loss') is not a number: 'abc'");
}
Test(plot, trailing_junk_in_cell)
{
    expect_error("iter,step,loss,elapsed_s\n1,10,0.5x,0.1\n", "2: field 3 ('loss') is not a number: '0.5x'");
}
Test(plot, step_not_finite)
{
    expect_error("iter,step,loss,elapsed_s\n1,nan,0.5,0.1\n", "2: field 2 ('step') must be a finite number, found 'nan'");
}
Test(plot, step_empty)
{
    expect_error("iter,step,loss,elapsed_s\n1,,0.5,0.1\n", "2: field 2 ('step') must be a finite number, found ''");
}
Test(plot, no_rows) { expect_error("iter,step,loss,elapsed_s\n", "2: no data rows"); }
Test(plot, no_rows_blank_tail) { expect_error("iter,step,loss,elapsed_s\n\n\n", "4: no data rows"); }

Test(plot, missing_file)
{
    const char *paths[1] = {path("nope.csv")};
    char *err, want[512];
    cr_assert_neq(plot(paths, NULL, 1, path("out.svg"), &err), 0);
    snprintf(want, sizeof want, "dnic: error: %s: cannot read: No such file or directory\n", paths[0]);
    cr_assert_str_eq(err, want);
    free(err);
    cr_assert_str_eq(others(), "");
}

Test(plot, no_logs)
{
    char *err;
    cr_assert_neq(plot(NULL, NULL, 0, path("out.svg"), &err), 0);
    cr_assert_str_eq(err, "dnic: error: no logs to plot\n");
    free(err);
    cr_assert_str_eq(others(), "");
}

Test(plot, unwritable_output)
{
    const char *paths[1] = {put("a.csv", seed_dni)};
    char *err, want[512];
    const char *svg_path = path("no/such/dir/out.svg");
    cr_assert_neq(plot(paths, NULL, 1, svg_path, &err), 0);
    snprintf(want, sizeof want, "dnic: error: cannot write '%s': No such file or directory\n", svg_path);
    cr_assert_str_eq(err, want);
    free(err);
    cr_assert_str_eq(others(), "");
}
