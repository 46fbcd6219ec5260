/* The checker: resolves names, checks every setting's value and the shapes of the chain,
 * and builds the checked model.  It reports every error it finds, each at its span. */
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "copytask.h"
#include "layers.h"

struct dnic_checker {
    dnic_arena *a;
    dnic_diag *d;
    const dnic_ast *ast;
    unsigned flags;     /* dnic_check_flags */
    dnic_vec decls;     /* the AST's declarations with `repeat` expanded */
    dnic_model *m;
    const dnic_decl *data, *loss, *train;
    bool reserved_name; /* a layer has a reserved name: its graph would only repeat the error */
    bool loss_unknown;  /* the loss's name was reported: what follows from its kind would mislead */
    dnic_vec alias_from, alias_to; /* a repeated layer's name stands for its last copy */
};
typedef struct dnic_checker checker;

static const dnic_span NOSPAN;

/* ---- small helpers ------------------------------------------------------------------------ */

static const char *expr_desc(checker *c, const dnic_expr *e)
{
    switch (e->kind) {
    case EXPR_NUM: return "a number";
    case EXPR_STR: return "a string";
    case EXPR_NAME: return dnic_sprintf(c->a, "name '%s'", e->str);
    case EXPR_CALL: return dnic_sprintf(c->a, "call '%s(...)'", e->str);
    case EXPR_LIST: return "a list";
    case EXPR_BINARY: case EXPR_NEG: return "an expression";
    }
    return "?";
}

/* The span of a call's name: `dense` in dense(input, 4). */
static dnic_span callee_span(const dnic_expr *call)
{
    dnic_span sp = call->span;
    sp.end_line = sp.line;
    sp.end_col = sp.col + (int)strlen(call->str);
    return sp;
}

/* Suggests the closest of `names` to `got`, as a note at `sp`. */
static void suggest(checker *c, dnic_span sp, const char *got, const char *const *names, int n)
{
    const char *best = dnic_did_you_mean(got, names, n);
    if (best)
        dnic_note(c->d, sp, "did you mean '%s'?", best);
}

/* Evaluates a constant arithmetic expression; `what` names it in messages ("lr").  The depth
 * is bounded so that `1+1+...+1` in a 16 MiB file cannot overflow the stack. */
static bool eval_num_at(checker *c, const dnic_expr *e, const char *what, int depth, double *out)
{
    double l, r;
    if (depth > 1000) {
        dnic_error(c->d, e->span, "the expression for %s is nested too deeply", what);
        return false;
    }
    switch (e->kind) {
    case EXPR_NUM:
        *out = e->num;
        return true;
    case EXPR_NEG:
        if (!eval_num_at(c, e->lhs, what, depth + 1, &l))
            return false;
        *out = -l;
        return true;
    case EXPR_BINARY:
        if (!eval_num_at(c, e->lhs, what, depth + 1, &l) || !eval_num_at(c, e->rhs, what, depth + 1, &r))
            return false;
        switch (e->op) {
        case '+': *out = l + r; break;
        case '-': *out = l - r; break;
        case '*': *out = l * r; break;
        default:
            if (r == 0) {
                dnic_error(c->d, e->rhs->span, "division by zero in %s", what);
                return false;
            }
            *out = l / r;
        }
        if (!isfinite(*out)) {
            dnic_error(c->d, e->span, "%s is not a finite number", what);
            return false;
        }
        return true;
    default:
        dnic_error(c->d, e->span, "%s must be a number, found %s", what, expr_desc(c, e));
        return false;
    }
}

static bool eval_num(checker *c, const dnic_expr *e, const char *what, double *out)
{
    return eval_num_at(c, e, what, 0, out);
}

static bool is_int_expr(const dnic_expr *e)
{
    if (e->kind == EXPR_NUM)
        return e->is_int;
    if (e->kind == EXPR_NEG)
        return is_int_expr(e->lhs);
    return false;
}

static bool get_real(checker *c, const dnic_setting *s, double lo, bool lo_open, double hi, double *out)
{
    double v;
    if (!eval_num(c, s->value, s->key, &v))
        return false;
    if (lo_open ? !(v > lo) : !(v >= lo)) {
        dnic_error(c->d, s->value->span, "%s must be %s %g, not %g", s->key, lo_open ? "greater than" : "at least", lo, v);
        return false;
    }
    if (v > hi) {
        dnic_error(c->d, s->value->span, "%s must be at most %g, not %g", s->key, hi, v);
        return false;
    }
    *out = v;
    return true;
}

static bool get_int(checker *c, const dnic_setting *s, long long lo, long long hi, long long *out)
{
    double v;
    if (!eval_num(c, s->value, s->key, &v))
        return false;
    if (v == floor(v) && (s->value->kind == EXPR_NUM || s->value->kind == EXPR_NEG) && !is_int_expr(s->value)) {
        /* 4.0 and 1e3 are whole, but a count is written as one: 4, 1000 */
        dnic_error(c->d, s->value->span, "%s must be written as a whole number, without '.' or an exponent", s->key);
        return false;
    }
    if (v != floor(v)) {
        dnic_error(c->d, s->value->span, "%s must be a whole number, not %g", s->key, v);
        return false;
    }
    if (v < (double)lo || v > (double)hi) {
        dnic_error(c->d, s->value->span, "%s must be between %lld and %lld, not %.15g", s->key, lo, hi, v);
        return false;
    }
    *out = (long long)v;
    return true;
}

static bool get_int32(checker *c, const dnic_setting *s, int lo, int hi, int *out)
{
    long long v;
    if (!get_int(c, s, lo, hi, &v))
        return false;
    *out = (int)v;
    return true;
}

/* A name from a closed set; returns its index or -1 after reporting. */
static int get_enum(checker *c, const dnic_setting *s, const char *const *names, int n)
{
    if (s->value->kind != EXPR_NAME) {
        /* "dtype must be float32 or float64, found a string" */
        char buf[256] = "";
        for (int i = 0, k = 0; i < n; i++)
            if (names[i]) {
                int rest = 0;
                for (int j = i + 1; j < n; j++)
                    rest += names[j] != NULL;
                strncat(buf, k++ == 0 ? "" : rest ? ", " : " or ", sizeof buf - strlen(buf) - 1);
                strncat(buf, names[i], sizeof buf - strlen(buf) - 1);
            }
        dnic_error(c->d, s->value->span, "%s must be %s, found %s", s->key, buf, expr_desc(c, s->value));
        return -1;
    }
    for (int i = 0; i < n; i++)
        if (names[i] && strcmp(names[i], s->value->str) == 0)
            return i;
    dnic_error(c->d, s->value->span, "unknown %s '%s'", s->key, s->value->str);
    if (dnic_did_you_mean(s->value->str, names, n)) {
        suggest(c, s->value->span, s->value->str, names, n);
        return -1;
    }
    char buf[256] = "";
    for (int i = 0; i < n; i++)
        if (names[i]) {
            strncat(buf, i ? ", " : "", sizeof buf - strlen(buf) - 1);
            strncat(buf, names[i], sizeof buf - strlen(buf) - 1);
        }
    dnic_note(c->d, NOSPAN, "%s is one of: %s", s->key, buf);
    return -1;
}

static bool get_bool(checker *c, const dnic_setting *s, bool *out)
{
    if (s->value->kind == EXPR_NAME && (!strcmp(s->value->str, "true") || !strcmp(s->value->str, "false"))) {
        *out = s->value->str[0] == 't';
        return true;
    }
    dnic_error(c->d, s->value->span, "%s must be true or false, found %s", s->key, expr_desc(c, s->value));
    return false;
}

static const char *get_string(checker *c, const dnic_setting *s)
{
    if (s->value->kind != EXPR_STR) {
        dnic_error(c->d, s->value->span, "%s must be a string in double quotes, found %s", s->key, expr_desc(c, s->value));
        return NULL;
    }
    if (!s->value->str[0]) {
        dnic_error(c->d, s->value->span, "%s must not be empty", s->key);
        return NULL;
    }
    return s->value->str;
}

/* ---- settings tables ---------------------------------------------------------------------- */

/* The names other frameworks give to dnic's settings, for "did you mean": a misspelling is
 * found by edit distance, but `learning_rate` is nowhere near `lr`. */
static const char *const SYNONYMS[][2] = {
    {"learning_rate", "lr"},   {"learningrate", "lr"},    {"eta", "lr"},           {"batch_size", "batch"},
    {"batchsize", "batch"},    {"bs", "batch"},           {"num_epochs", "epochs"}, {"n_epochs", "epochs"},
    {"max_epochs", "epochs"},  {"nb_epoch", "epochs"},    {"num_steps", "steps"},  {"max_steps", "steps"},
    {"iterations", "steps"},   {"optimiser", "optimizer"}, {"optim", "optimizer"}, {"solver", "optimizer"},
    {"epsilon", "eps"},        {"beta_1", "beta1"},       {"beta_2", "beta2"},     {"random_seed", "seed"},
    {"log_every", "report_every"}, {"print_every", "report_every"}, {"precision", "dtype"},
    {"act", "activation"},     {"use_bias", "bias"},      {"initializer", "init"}, {"initialiser", "init"},
    {"kernel_initializer", "init"}, {"bias_initializer", "bias_init"},
};

/* The setting of `keys` that `name` means in another framework's words, or NULL. */
static const char *synonym(const char *name, const char *const *keys, int n)
{
    for (size_t i = 0; i < sizeof SYNONYMS / sizeof SYNONYMS[0]; i++)
        if (!strcmp(SYNONYMS[i][0], name))
            for (int k = 0; k < n; k++)
                if (keys[k] && !strcmp(keys[k], SYNONYMS[i][1]))
                    return keys[k];
    return NULL;
}

static const char *const TRAIN_KEYS[] = {"mode", "batch", "lr", "epochs", "steps", "report_every", "seed",
                                         "dtype", "optimizer", "backward_message", "report_sg", "lag",
                                         "momentum", "beta1", "beta2", "eps", "shuffle", "patience", "keep_best", "grad",
                                         "unroll",
                                         "update_prob", "warmup"};
enum { NTRAIN_KEYS = sizeof TRAIN_KEYS / sizeof TRAIN_KEYS[0] };
static const char *const DATA_KEYS[] = {"bits", "examples", "seed", "inputs", "labels", "validation",
                                        "train_images", "train_labels", "test_images", "test_labels",
                                        "scale", "one_hot", "limit", "test_limit", "train", "test", "label", "classes"};

const char *dnic_key_block(const char *name, const char **key)
{
    const char *syn;
    for (int i = 0; i < NTRAIN_KEYS; i++)
        if (!strcmp(TRAIN_KEYS[i], name))
            return *key = TRAIN_KEYS[i], "train";
    if ((syn = synonym(name, TRAIN_KEYS, NTRAIN_KEYS)))
        return *key = syn, "train";
    for (size_t i = 0; i < sizeof DATA_KEYS / sizeof DATA_KEYS[0]; i++)
        if (!strcmp(DATA_KEYS[i], name) && strcmp(name, "train") && strcmp(name, "test"))
            return *key = DATA_KEYS[i], "data";
    return NULL;
}

/* `width = 512` in a layer: the width is an argument of the call, which an override cannot
 * change.  Reports it and returns true when `s` is such a setting. */
static bool width_setting(checker *c, const dnic_decl *d, const dnic_setting *s)
{
    static const char *const widths[] = {"width", "units", "size", "out_features", "output_size"};
    const dnic_layer_kind *k = d->kind == DECL_LAYER && d->call ? dnic_layer_kind_find(d->call->str) : NULL;
    bool is_width = false;
    for (size_t i = 0; i < sizeof widths / sizeof widths[0]; i++)
        is_width |= !strcmp(widths[i], s->key);
    if (!k || !k->extra_args || !is_width)
        return false;
    dnic_error(c->d, s->key_span, "'%s' is not a setting: the width of layer '%s' is an argument of its call, %s",
               s->key, d->name, k->usage);
    if (s->overridden)
        dnic_note(c->d, d->call->span, "--set cannot change a call; change the width here in the model file");
    else
        dnic_note(c->d, d->call->span, "change the width here");
    return true;
}

/* Looks up `key` in a block, reporting unknown and duplicate keys once per block; returns the
 * number of unknown keys. */
static int check_keys(checker *c, const dnic_decl *d, const char *const *keys, int n, const char *what)
{
    int unknown = 0;
    for (int i = 0; i < d->settings.n; i++) {
        const dnic_setting *s = d->settings.v[i];
        bool known = false;
        for (int k = 0; k < n; k++)
            known |= strcmp(keys[k], s->key) == 0;
        if (!known) {
            unknown++;
            if (width_setting(c, d, s))
                continue;
            dnic_error(c->d, s->key_span, "unknown setting '%s' in %s", s->key, what);
            const char *syn = synonym(s->key, keys, n);
            if (syn) {
                dnic_note(c->d, s->key_span, "did you mean '%s'?", syn);
            } else if (dnic_did_you_mean(s->key, keys, n)) {
                suggest(c, s->key_span, s->key, keys, n);
            } else {
                char buf[512] = "";
                for (int k = 0; k < n; k++) {
                    strncat(buf, k ? ", " : "", sizeof buf - strlen(buf) - 1);
                    strncat(buf, keys[k], sizeof buf - strlen(buf) - 1);
                }
                dnic_note(c->d, NOSPAN, "the settings of %s are: %s", what, buf);
            }
            continue;
        }
        for (int j = 0; j < i; j++) {
            const dnic_setting *p = d->settings.v[j];
            if (strcmp(p->key, s->key) == 0) {
                dnic_error(c->d, s->key_span, "'%s' is set twice in %s", s->key, what);
                dnic_note(c->d, p->key_span, "first set here");
                break;
            }
        }
    }
    return unknown;
}

/* The setting `key` of a block, or NULL (an override replaces the setting in place). */
static const dnic_setting *find(const dnic_decl *d, const char *key)
{
    if (!d)
        return NULL;
    for (int i = 0; i < d->settings.n; i++) {
        const dnic_setting *s = d->settings.v[i];
        if (strcmp(s->key, key) == 0)
            return s;
    }
    return NULL;
}

/* Whether block `d` sets `key` under another framework's name (learning_rate for lr), which
 * check_keys reported: saying that the block lacks `key` as well would repeat it. */
static bool set_by_synonym(const dnic_decl *d, const char *key)
{
    for (int i = 0; i < d->settings.n; i++)
        if (synonym(((const dnic_setting *)d->settings.v[i])->key, &key, 1))
            return true;
    return false;
}

static const dnic_setting *require(checker *c, const dnic_decl *d, const char *key, const char *what)
{
    const dnic_setting *s = find(d, key);
    if (!s && !set_by_synonym(d, key))
        dnic_error(c->d, d->span, "%s needs '%s'", what, key);
    return s;
}

/* ---- initialisers ------------------------------------------------------------------------- */

/* init: zeros | xavier_normal | xavier_uniform | he_normal | he_uniform
 *     | (randn | rand) [* NUM] [(+|-) NUM]      as the seeds write randn * 2 - 1 */
static bool get_init(checker *c, const dnic_setting *s, dnic_init *out)
{
    static const char *const named[] = {"zeros", "xavier_normal", "xavier_uniform", "he_normal", "he_uniform", "randn", "rand"};
    static const dnic_init_kind kinds[] = {DNIC_INIT_ZEROS, DNIC_INIT_XAVIER_NORMAL, DNIC_INIT_XAVIER_UNIFORM,
                                           DNIC_INIT_HE_NORMAL, DNIC_INIT_HE_UNIFORM, DNIC_INIT_RANDN, DNIC_INIT_RAND};
    /* the shape first, then the name, then the constants: `0.2 * randn` is not a scale of 0.2 */
    const dnic_expr *e = s->value, *shift_e = NULL, *scale_e = NULL;
    if (e->kind == EXPR_BINARY && (e->op == '+' || e->op == '-')) {
        shift_e = e;
        e = e->lhs;
    }
    if (e->kind == EXPR_BINARY && e->op == '*') {
        scale_e = e;
        e = e->lhs;
    }
    if (e->kind != EXPR_NAME) {
        dnic_error(c->d, e->span, "%s must be an initialiser such as 'randn * 0.2 - 0.1' or 'xavier_uniform', found %s",
                   s->key, expr_desc(c, e));
        return false;
    }
    int k = -1;
    for (int i = 0; i < (int)(sizeof named / sizeof named[0]); i++)
        if (strcmp(named[i], e->str) == 0)
            k = i;
    if (k < 0) {
        dnic_error(c->d, e->span, "unknown initialiser '%s'", e->str);
        suggest(c, e->span, e->str, named, (int)(sizeof named / sizeof named[0]));
        return false;
    }
    if (kinds[k] != DNIC_INIT_RANDN && kinds[k] != DNIC_INIT_RAND && e != s->value) {
        dnic_error(c->d, s->value->span, "only randn and rand can be scaled and shifted, not '%s'", e->str);
        return false;
    }
    double shift = 0, scale = 1;
    if (shift_e && !eval_num(c, shift_e->rhs, dnic_sprintf(c->a, "the shift of %s", s->key), &shift))
        return false;
    if (shift_e && shift_e->op == '-')
        shift = -shift;
    if (scale_e && !eval_num(c, scale_e->rhs, dnic_sprintf(c->a, "the scale of %s", s->key), &scale))
        return false;
    *out = (dnic_init){kinds[k], scale, shift};
    return true;
}

/* ---- declarations ------------------------------------------------------------------------- */

static const char *const DATA_KINDS[] = {"binary_addition", "idx", "csv", "copy", "repeat_copy"};
enum { NDATA_KINDS = sizeof DATA_KINDS / sizeof DATA_KINDS[0] };

/* A data path as the run will open it: a relative path written in the model file is relative
 * to the model file's directory (so a model and its data move together); one typed in --set
 * is relative to the current directory, like any other command-line path. */
static const char *resolve_path(checker *c, const dnic_setting *s, const char *p)
{
    if (p[0] == '/' || s->value->span.src != c->ast->src || !c->ast->src)
        return p;
    const char *model = c->ast->src->name, *slash = strrchr(model, '/');
    if (!slash)
        return p;
    return dnic_sprintf(c->a, "%.*s/%s", (int)(slash - model), model, p);
}

static void check_file(checker *c, const dnic_setting *s, const char **out)
{
    const char *p = get_string(c, s);
    if (!p)
        return;
    p = resolve_path(c, s, p);
    if (!(c->flags & DNIC_CHECK_OPEN_DATA)) {
        *out = p;
        return;
    }
    struct stat st;
    FILE *f = NULL;
    if (stat(p, &st) != 0 || (S_ISREG(st.st_mode) && !(f = fopen(p, "rb")))) {
        char *why = dnic_strdup(c->a, strerror(errno));
        why[0] = (char)tolower((unsigned char)why[0]);
        dnic_error(c->d, s->value->span, "cannot open data file '%s': %s", p, why);
        return;
    }
    if (!f) {
        dnic_error(c->d, s->value->span, "data file '%s' is not a regular file", p);
        return;
    }
    fclose(f);
    *out = p;
}

/* classes = [c0, c1, ...]: the examples of these class numbers only, labelled 0, 1, ... in the
 * list's order (one_hot, if set, counts them) */
static void check_classes(checker *c, const dnic_setting *s, dnic_data_spec *ds)
{
    const dnic_expr *e = s->value;
    if (e->kind != EXPR_LIST || e->args.n < 2 || e->args.n > 1000) {
        dnic_error(c->d, e->span, "classes must be a list of 2 to 1000 class numbers, e.g. classes = [0, 1]");
        return;
    }
    int *v = dnic_alloc(c->a, (size_t)e->args.n * sizeof *v);
    for (int i = 0; i < e->args.n; i++) {
        dnic_setting one = {.key = "a class number", .value = e->args.v[i]};
        if (!get_int32(c, &one, 0, 1000000, &v[i]))
            return;
        for (int j = 0; j < i; j++)
            if (v[j] == v[i]) {
                dnic_error(c->d, one.value->span, "class %d is listed twice", v[i]);
                return;
            }
    }
    ds->classes = v;
    ds->nclasses = e->args.n;
    const dnic_setting *oh = find(c->data, "one_hot");
    if (oh && oh->value->kind == EXPR_NUM && oh->value->num != ds->nclasses)
        dnic_error(c->d, oh->value->span, "one_hot = %g, but classes lists %d classes", oh->value->num, ds->nclasses);
}

/* "copy with bits = 8, length = 5" (for messages) */
static const char *copy_desc(checker *c, const dnic_data_spec *ds)
{
    if (ds->kind == DNIC_DATA_COPY)
        return dnic_sprintf(c->a, "copy with bits = %d, length = %d", ds->bits, ds->length);
    return dnic_sprintf(c->a, "repeat_copy with bits = %d, length = %d, repeats = %d", ds->bits, ds->length,
                        ds->repeats);
}

/* curriculum = E  max_length = M: the length grows by 1 whenever the test set's mean wrong
 * bits per sequence fall below E, up to M.  The widths then change during the run: the data's
 * own (inputs, labels) and the recurrent layers' steps must not be written. */
static void check_curriculum(checker *c, const dnic_decl *d, dnic_data_spec *ds, const char *what)
{
    const dnic_setting *s = find(d, "curriculum"), *mx = find(d, "max_length");
    if (mx && !s) {
        dnic_error(c->d, mx->key_span, "max_length is the longest length of a curriculum, but %s has no curriculum",
                   what);
        dnic_note(c->d, NOSPAN, "curriculum = 0.15 lengthens the sequences when the test set's mean wrong bits per "
                  "sequence fall below 0.15");
    }
    if (!s || !get_real(c, s, 0, true, 1e6, &ds->curriculum)) {
        ds->curriculum = 0;
        return;
    }
    if (!find(d, "test_examples"))
        dnic_error(c->d, s->key_span, "curriculum = %g is checked on the test set, but %s has no test_examples",
                   ds->curriculum, what);
    for (int i = 0; i < 2; i++) {
        const char *key = i ? "labels" : "inputs";
        const dnic_setting *w = find(d, key);
        if (w)
            dnic_error(c->d, w->key_span, "%s is the width at one length, but a curriculum changes the length: "
                       "remove %s", key, key);
    }
    dnic_copy_shape cs;
    ds->max_length = 1000;
    while (ds->max_length > 1 && (dnic_copy_shape_of(ds->bits ? ds->bits : 1, ds->max_length, ds->repeats, &cs) ||
                                  cs.steps > 4096))
        ds->max_length--; /* the longest a recurrent layer takes (4096 steps) */
    long long v;
    if (mx && get_int(c, mx, 1, 1000, &v)) {
        if (ds->length && v < ds->length)
            dnic_error(c->d, mx->value->span, "max_length = %lld is shorter than length = %d", v, ds->length);
        else if (v > ds->max_length)
            dnic_error(c->d, mx->value->span, "max_length = %lld gives sequences longer than the 4096 steps a "
                       "recurrent layer takes: at most %d", v, ds->max_length);
        ds->max_length = (int)v;
    }
    if (ds->length > ds->max_length)
        ds->max_length = ds->length; /* reported above, or length itself is too long */
}

/* data copy / data repeat_copy: the generated sequence tasks (runtime/copytask.c).  They always
 * have their own random stream (seed, default 1), so the weights draw the same numbers with
 * any data. */
static void check_copy(checker *c, const dnic_decl *d, dnic_data_spec *ds)
{
    bool rep = ds->kind == DNIC_DATA_REPEAT_COPY;
    const char *what = rep ? "data repeat_copy" : "data copy";
    static const char *const keys[] = {"bits", "length", "examples", "test_examples", "seed", "inputs", "labels",
                                       "validation", "curriculum", "max_length", "repeats"};
    check_keys(c, d, keys, rep ? 11 : 10, what);
    const dnic_setting *s;
    if ((s = require(c, d, "bits", what)))
        get_int32(c, s, 1, 64, &ds->bits);
    if ((s = require(c, d, "length", what)))
        get_int32(c, s, 1, 1000, &ds->length);
    if (rep && (s = require(c, d, "repeats", what)))
        get_int32(c, s, 1, 100, &ds->repeats);
    if ((s = require(c, d, "examples", what)))
        get_int32(c, s, 1, 10000000, &ds->examples);
    if ((s = find(d, "test_examples")))
        get_int32(c, s, 1, 10000000, &ds->test_examples);
    ds->has_seed = true;
    ds->seed = 1;
    long long v;
    if ((s = find(d, "seed")) && get_int(c, s, 0, 4294967295LL, &v))
        ds->seed = (uint32_t)v;
    if (rep && !ds->repeats)
        ds->length = 0; /* unknown: no width is blamed on it */
    check_curriculum(c, d, ds, what);
}

static void check_data(checker *c, const dnic_decl *d)
{
    dnic_data_spec *ds = &c->m->data;
    ds->span = d->span;
    ds->scale = 1;
    int kind = -1;
    for (int i = 0; i < NDATA_KINDS; i++)
        if (strcmp(d->name, DATA_KINDS[i]) == 0)
            kind = i;
    if (kind < 0) {
        dnic_error(c->d, d->name_span, "unknown data source '%s'", d->name);
        suggest(c, d->name_span, d->name, DATA_KINDS, NDATA_KINDS);
        dnic_note(c->d, NOSPAN, "data sources are binary_addition, idx, csv, copy and repeat_copy");
        return;
    }
    ds->kind = (dnic_data_kind)kind;
    const dnic_setting *s;
    if (ds->kind == DNIC_DATA_BINADD) {
        static const char *const keys[] = {"bits", "examples", "seed", "inputs", "labels", "validation"};
        check_keys(c, d, keys, 6, "data binary_addition");
        if ((s = require(c, d, "bits", "data binary_addition")))
            get_int32(c, s, 1, 30, &ds->bits);
        if ((s = require(c, d, "examples", "data binary_addition")))
            get_int32(c, s, 1, 10000000, &ds->examples);
        if ((s = find(d, "seed"))) {
            long long v;
            if (get_int(c, s, 0, 4294967295LL, &v)) {
                ds->has_seed = true;
                ds->seed = (uint32_t)v;
            }
        }
    } else if (ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY) {
        check_copy(c, d, ds);
    } else if (ds->kind == DNIC_DATA_IDX) {
        static const char *const keys[] = {"train_images", "train_labels", "test_images", "test_labels",
                                           "scale", "one_hot", "inputs", "labels", "limit", "test_limit",
                                           "validation", "classes"};
        check_keys(c, d, keys, (int)(sizeof keys / sizeof keys[0]), "data idx");
        if ((s = require(c, d, "train_images", "data idx")))
            check_file(c, s, &ds->train_x);
        if ((s = require(c, d, "train_labels", "data idx")))
            check_file(c, s, &ds->train_y);
        if ((s = find(d, "test_images")))
            check_file(c, s, &ds->test_x);
        if ((s = find(d, "test_labels")))
            check_file(c, s, &ds->test_y);
        if (!find(d, "test_images") != !find(d, "test_labels"))
            dnic_error(c->d, d->span, "data idx needs both test_images and test_labels, or neither");
    } else {
        static const char *const keys[] = {"train", "test", "label", "scale", "one_hot", "inputs", "labels",
                                           "limit", "test_limit", "validation", "classes"};
        check_keys(c, d, keys, (int)(sizeof keys / sizeof keys[0]), "data csv");
        if ((s = require(c, d, "train", "data csv")))
            check_file(c, s, &ds->train_x);
        if ((s = find(d, "test")))
            check_file(c, s, &ds->test_x);
        if ((s = require(c, d, "label", "data csv"))) {
            if (s->value->kind == EXPR_STR)
                ds->label_column = get_string(c, s);
            else if (s->value->kind == EXPR_NAME || s->value->kind == EXPR_LIST || s->value->kind == EXPR_CALL)
                dnic_error(c->d, s->value->span,
                           "label must be a column's name in double quotes or its index from 0, found %s",
                           expr_desc(c, s->value));
            else
                get_int32(c, s, 0, 1000000, &ds->label_index);
        }
    }
    bool generated = ds->kind == DNIC_DATA_BINADD || ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY;
    if (ds->kind != DNIC_DATA_COPY && ds->kind != DNIC_DATA_REPEAT_COPY && (s = find(d, "curriculum")))
        dnic_note(c->d, s->key_span, "a curriculum lengthens the sequences of data copy and data repeat_copy; "
                  "data %s has no length", d->name);
    if (!generated) { /* the generators have none of these: check_keys said so */
        if ((s = find(d, "scale")))
            get_real(c, s, 0, true, 1e30, &ds->scale);
        if ((s = find(d, "one_hot")))
            get_int32(c, s, 2, 1000000, &ds->one_hot);
        if ((s = find(d, "limit")))
            get_int32(c, s, 1, 1 << 30, &ds->limit);
        if ((s = find(d, "classes")))
            check_classes(c, s, ds);
        if ((s = find(d, "test_limit")) && get_int32(c, s, 1, 1 << 30, &ds->test_limit) &&
            !find(d, ds->kind == DNIC_DATA_IDX ? "test_images" : "test"))
            dnic_error(c->d, s->key_span, "test_limit limits the test set, but data %s has none", d->name);
    }
    if ((s = find(d, "validation")) && get_real(c, s, 0, true, 0.9, &ds->validation) && generated &&
        ds->examples && (int)(ds->examples * ds->validation) < 1)
        dnic_error(c->d, s->value->span, "validation = %g holds out no example of %d", ds->validation, ds->examples);
    /* the copy tasks' widths follow from their settings: given, they are checked */
    bool copy = ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY;
    dnic_copy_shape cs;
    if (copy && ds->length && dnic_copy_shape_of(ds->bits, ds->length, ds->repeats, &cs) == 0) {
        ds->inputs = cs.steps * cs.step_inputs;
        ds->labels = cs.outputs * cs.step_labels;
    }
    const dnic_setting *in = copy ? find(d, "inputs") : require(c, d, "inputs", dnic_sprintf(c->a, "data %s", d->name));
    const dnic_setting *lab = copy ? find(d, "labels") : require(c, d, "labels", dnic_sprintf(c->a, "data %s", d->name));
    if (in)
        ds->inputs_span = in->value->span;
    if (in && get_int32(c, in, 1, 1 << 24, &ds->inputs) && ds->kind == DNIC_DATA_BINADD && ds->bits &&
        ds->inputs != 2 * ds->bits) {
        dnic_error(c->d, in->value->span, "inputs = %d, but binary_addition with bits = %d gives %d inputs",
                   ds->inputs, ds->bits, 2 * ds->bits);
        ds->inputs = 0; /* unknown: the layers are not blamed for it too */
    }
    if (in && ds->inputs && (ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY) && ds->length &&
        dnic_copy_shape_of(ds->bits, ds->length, ds->repeats, &cs) == 0 && ds->inputs != cs.steps * cs.step_inputs) {
        dnic_error(c->d, in->value->span, "inputs = %d, but %s gives %d steps of %d inputs: inputs = %d", ds->inputs,
                   copy_desc(c, ds), cs.steps, cs.step_inputs, cs.steps * cs.step_inputs);
        ds->inputs = 0;
    }
    if (lab && get_int32(c, lab, 1, 1 << 24, &ds->labels) && ds->labels &&
        (ds->kind == DNIC_DATA_COPY || ds->kind == DNIC_DATA_REPEAT_COPY) && ds->length &&
        dnic_copy_shape_of(ds->bits, ds->length, ds->repeats, &cs) == 0 && ds->labels != cs.outputs * cs.step_labels) {
        dnic_error(c->d, lab->value->span, "labels = %d, but %s labels its last %d steps with %d each: labels = %d",
                   ds->labels, copy_desc(c, ds), cs.outputs, cs.step_labels, cs.outputs * cs.step_labels);
        ds->labels = 0;
    }
    if (lab && ds->labels) {
        if (ds->kind == DNIC_DATA_BINADD && ds->bits && ds->labels != ds->bits) {
            dnic_error(c->d, lab->value->span, "labels = %d, but binary_addition with bits = %d gives %d labels",
                       ds->labels, ds->bits, ds->bits);
            ds->labels = 0;
        }
        if (ds->nclasses && !ds->one_hot && ds->labels != 1) {
            dnic_error(c->d, lab->value->span, "labels = %d, but with classes and no one_hot a label is the class's "
                       "position in the list: labels = 1", ds->labels);
            ds->labels = 0;
        }
        if (ds->one_hot && ds->labels && ds->labels != ds->one_hot) {
            dnic_error(c->d, lab->value->span, "labels = %d, but one_hot = %d gives %d labels", ds->labels,
                       ds->one_hot, ds->one_hot);
            ds->labels = 0;
        }
    }
}

static const char *const ACT_NAMES[] = {
#define X(e, s) s,
    DNIC_ACTIVATIONS(X)
#undef X
};

const char *dnic_act_name(dnic_act a)
{
    DNIC_ASSERT((unsigned)a < DNIC_ACT_COUNT);
    return ACT_NAMES[a];
}

static bool is_reserved(const char *name)
{
    return strcmp(name, "input") == 0 || strcmp(name, "labels") == 0 || strcmp(name, "output") == 0;
}

/* layer NAME = KIND(SOURCE, ... [, WIDTH]) { the kind's settings } */
static void check_layer(checker *c, const dnic_decl *d, dnic_layer *l, const char **srcname, dnic_span *srcspan)
{
    l->name = d->name;
    l->span = d->name_span;
    l->sg = -1;
    l->state_sg = -1;
    l->input_sg = -1;
    l->act = DNIC_ACT_LINEAR;
    l->nsrc = 0;
    l->trainable = true;
    l->outputs = 1;
    if (is_reserved(d->name)) {
        dnic_error(c->d, d->name_span, "'%s' is reserved and cannot name a layer", d->name);
        c->reserved_name = true;
    }
    const dnic_expr *call = d->call;
    const dnic_layer_kind *k = dnic_layer_kind_find(call->str);
    if (!k) {
        dnic_error(c->d, callee_span(call), "unknown layer type '%s'", call->str);
        suggest(c, callee_span(call), call->str, dnic_layer_kind_names, dnic_layer_kind_count);
        char buf[256] = "";
        for (int i = 0; i < dnic_layer_kind_count; i++) {
            strncat(buf, i ? ", " : "", sizeof buf - strlen(buf) - 1);
            strncat(buf, dnic_layer_kind_names[i], sizeof buf - strlen(buf) - 1);
        }
        dnic_note(c->d, NOSPAN, "layer types: %s", buf);
        return;
    }
    l->kind = k;
    int n = call->args.n, nsrc = n - k->extra_args;
    if (nsrc < k->min_src || nsrc > k->max_src) {
        if (k->extra_args)
            dnic_error(c->d, call->span, "%s takes %d arguments (%s), not %d", k->name, k->min_src + k->extra_args,
                       strchr(k->usage, '(') ? dnic_strndup(c->a, strchr(k->usage, '(') + 1, strlen(strchr(k->usage, '(')) - 2) : "",
                       n);
        else
            dnic_error(c->d, call->span, "%s takes %d to %d sources, not %d", k->name, k->min_src, k->max_src, n);
        l->kind = NULL;
        return;
    }
    bool ok = true;
    for (int i = 0; i < n; i++) {
        const dnic_arg *arg = call->args.v[i];
        if (arg->name) {
            dnic_error(c->d, arg->name_span, "%s takes positional arguments: %s", k->name, k->usage);
            ok = false;
            break;
        }
    }
    l->src = dnic_alloc(c->a, (size_t)(nsrc + 1) * sizeof *l->src);
    for (int i = 0; ok && i < nsrc; i++) {
        const dnic_arg *arg = call->args.v[i];
        if (arg->value->kind != EXPR_NAME) {
            dnic_error(c->d, arg->value->span, "the source of a layer must be 'input' or a layer's name, found %s",
                       expr_desc(c, arg->value));
            if (arg->value->kind == EXPR_BINARY && arg->value->op == '+')
                dnic_note(c->d, NOSPAN, "to merge layers, make a layer of them: add(a, b) or concat(a, b)");
            ok = false;
            continue;
        }
        srcname[i] = arg->value->str;
        srcspan[i] = arg->value->span;
    }
    l->nsrc = ok ? nsrc : 0;
    /* every kind's settings, then the ones any layer has */
    static const char *const common[] = {"repeat", "trainable"};
    int nkeys = 0;
    while (k->settings[nkeys])
        nkeys++;
    const char **keys = dnic_alloc(c->a, (size_t)(nkeys + 2) * sizeof *keys);
    memcpy(keys, k->settings, (size_t)nkeys * sizeof *keys);
    keys[nkeys++] = common[0];
    keys[nkeys++] = common[1];
    check_keys(c, d, keys, nkeys, dnic_sprintf(c->a, "layer '%s'", d->name));
    const dnic_setting *s = find(d, "trainable");
    if (s && get_bool(c, s, &l->trainable) && !l->trainable && !k->has_params)
        dnic_error(c->d, s->key_span, "layer '%s' has no parameters: trainable = false means nothing for %s", d->name,
                   k->name);
    if (k->check)
        k->check(c, d, l);
    if (!ok)
        l->kind = NULL; /* its graph is not checked: the sources are wrong */
}

static int layer_index(const dnic_model *m, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(m->layers[i].name, name) == 0)
            return i;
    return -1;
}

static const char **layer_names(checker *c, int n, bool with_input)
{
    const char **names = dnic_alloc(c->a, (size_t)(n + 1) * sizeof *names);
    for (int i = 0; i < n; i++)
        names[i] = c->m->layers[i].name;
    names[n] = with_input ? "input" : NULL;
    return names;
}

const char *dnic_sg_part_name(dnic_sg_part p)
{
    static const char *const names[] = {"output", "labels", "input"};
    return names[p];
}

int dnic_sg_part_width(const dnic_model *m, const dnic_sg *sg, dnic_sg_part p)
{
    switch (p) {
    case DNIC_SG_OUTPUT: { /* sg NAME.state reads the carried state */
        const dnic_layer *l = &m->layers[sg->layer];
        return sg->state && l->kind->state_width ? l->kind->state_width(l) : l->out;
    }
    case DNIC_SG_LABELS: return m->data.labels;
    case DNIC_SG_INPUT: return m->data.inputs;
    }
    return 0;
}

/* input = output | labels | input | a '+' of them (a concatenation, in order) */
static bool sg_parts(checker *c, dnic_sg *sg, const dnic_expr *e, const dnic_expr *whole, int depth)
{
    if (depth > 3) { /* five parts or more (four has a repeat, reported as such) */
        dnic_error(c->d, whole->span, "an SG input has at most 3 parts: output, labels and input");
        return false;
    }
    if (e->kind == EXPR_BINARY && e->op == '+')
        return sg_parts(c, sg, e->lhs, whole, depth + 1) && sg_parts(c, sg, e->rhs, whole, depth + 1);
    static const char *const names[] = {"output", "labels", "input"};
    if (e->kind != EXPR_NAME) {
        dnic_error(c->d, e->span, "an SG input is output, labels, input or a '+' of them, found %s", expr_desc(c, e));
        return false;
    }
    for (int p = 0; p < 3; p++) {
        if (strcmp(e->str, names[p]) != 0)
            continue;
        for (int i = 0; i < sg->nparts; i++)
            if (sg->parts[i] == (dnic_sg_part)p) {
                dnic_error(c->d, e->span, "'%s' appears twice in the SG input", e->str);
                return false;
            }
        sg->parts[sg->nparts++] = (dnic_sg_part)p;
        return true;
    }
    dnic_error(c->d, e->span, "unknown SG input '%s'", e->str);
    suggest(c, e->span, e->str, names, 3);
    dnic_note(c->d, NOSPAN, "an SG input is output, labels, input or a '+' of them, e.g. output + labels");
    return false;
}

/* sg LAYER { ... scale clip head }: what the layer receives from the module's output */
static void check_sg_head(checker *c, const dnic_decl *d, dnic_sg *sg)
{
    static const char *const heads[] = {"linear", "sigmoid"};
    const dnic_setting *s;
    if ((s = find(d, "scale")))
        get_real(c, s, 0, true, 1e6, &sg->scale);
    if ((s = find(d, "clip")))
        get_real(c, s, 0, true, 1e30, &sg->clip);
    if ((s = find(d, "head"))) {
        sg->head_sigmoid = get_enum(c, s, heads, 2) == 1;
        sg->head_span = s->value->span;
    }
}

/* sg LAYER { input form hidden activation init bias_init lr target lambda hidden_init bias scale clip head } */
static void check_sg(checker *c, const dnic_decl *d, dnic_sg *sg, int nlayers)
{
    static const char *const keys[] = {"input", "form", "hidden", "activation", "init", "bias_init", "lr", "target",
                                       "hidden_init", "bias", "lambda",
                                       "scale", "clip", "head"};
    sg->name = d->name;
    sg->span = d->name_span;
    /* sg NAME.state: the module at a recurrent layer's truncation boundaries */
    const char *dot = strchr(d->name, '.');
    const char *lname = dot ? dnic_strndup(c->a, d->name, (size_t)(dot - d->name)) : d->name;
    sg->state = dot && strcmp(dot + 1, "state") == 0;
    sg->input = dot && strcmp(dot + 1, "input") == 0;
    if (dot && !sg->state && !sg->input) {
        dnic_span sp = d->name_span;
        sp.col += (int)(dot - d->name) + 1;
        dnic_error(c->d, sp,
                   "'%s' is not a part of a layer an SG module can attach to: write sg %s, sg %s.state or sg %s.input",
                   dot + 1, lname, lname, lname);
    }
    /* an unknown part is reported alone: the module attaches to nothing */
    sg->layer = dot && !sg->state && !sg->input ? -2 : layer_index(c->m, nlayers, lname);
    sg->bias = true;
    sg->hidden_act = DNIC_ACT_RELU;
    sg->w_init = sg->b_init = (dnic_init){DNIC_INIT_ZEROS, 1, 0};
    sg->hidden_init = (dnic_init){DNIC_INIT_HE_UNIFORM, 1, 0};
    sg->lr = -1;
    sg->scale = 1;
    if (sg->layer == -1) {
        dnic_span sp = d->name_span;
        sp.end_col = sp.col + (int)strlen(lname);
        dnic_error(c->d, sp, "sg names layer '%s', which is not defined", lname);
        suggest(c, sp, lname, layer_names(c, nlayers, false), nlayers);
    }
    int unknown = check_keys(c, d, keys, (int)(sizeof keys / sizeof keys[0]), dnic_sprintf(c->a, "sg '%s'", d->name));
    const dnic_setting *s;
    /* a synthetic input reads the model's input and predicts, so the gradient's settings are not its */
    static const char *const not_input[] = {"input", "target", "scale", "clip", "head"};
    for (int k = 0; sg->input && k < 5; k++)
        if ((s = find(d, not_input[k])))
            dnic_error(c->d, s->key_span, "'%s' is not a setting of sg %s, which predicts the layer's input from the "
                       "model's input", not_input[k], d->name);
    if (sg->input)
        sg->parts[sg->nparts++] = DNIC_SG_INPUT;
    else if ((s = find(d, "input")))
        sg_parts(c, sg, s->value, s->value, 0);
    else
        sg->parts[sg->nparts++] = DNIC_SG_OUTPUT;
    /* form = 0 linear, 1 mlp, -1 unknown: a bad or misspelled form says nothing of the others */
    int form = 0;
    static const char *const forms[] = {"linear", "mlp"};
    if ((s = find(d, "form")))
        form = get_enum(c, s, forms, 2);
    else if (unknown > 0)
        form = -1;
    const dnic_setting *h = find(d, "hidden");
    if (form == 1 && !h)
        dnic_error(c->d, s->value->span, "an mlp SG module needs 'hidden', e.g. hidden = [64]");
    if (h && form == 0)
        dnic_error(c->d, h->key_span, "'hidden' needs form = mlp");
    if (h && form == 1) {
        if (h->value->kind != EXPR_LIST || h->value->args.n == 0 || h->value->args.n > 8)
            dnic_error(c->d, h->value->span, "hidden must be a list of 1 to 8 widths, e.g. [64, 64]");
        else
            for (int i = 0; i < h->value->args.n; i++) {
                dnic_setting ws = {.key = "a hidden width", .value = h->value->args.v[i]};
                if (get_int32(c, &ws, 1, 1 << 20, &sg->hidden[i]))
                    sg->nhidden++;
            }
    }
    if ((s = find(d, "activation"))) {
        if (form == 0)
            dnic_error(c->d, s->key_span, "'activation' sets an mlp SG module's hidden activation; this module is linear");
        int v = get_enum(c, s, ACT_NAMES, DNIC_ACT_COUNT);
        if (v == DNIC_ACT_SOFTMAX)
            dnic_error(c->d, s->value->span, "softmax is only for an output layer");
        else if (v >= 0)
            sg->hidden_act = (dnic_act)v;
    }
    if ((s = find(d, "init")))
        get_init(c, s, &sg->w_init);
    if ((s = find(d, "hidden_init"))) {
        if (form == 0)
            dnic_error(c->d, s->key_span, "'hidden_init' initialises an mlp SG module's hidden units; this module is linear");
        get_init(c, s, &sg->hidden_init);
    }
    if ((s = find(d, "bias")))
        get_bool(c, s, &sg->bias);
    if ((s = find(d, "bias_init"))) {
        if (!sg->bias)
            dnic_error(c->d, s->key_span, "bias_init is set but sg '%s' has bias = false", d->name);
        get_init(c, s, &sg->b_init);
    }
    if ((s = find(d, "lr")))
        get_real(c, s, 0, true, 1e6, &sg->lr);
    if (sg->input)
        return;
    check_sg_head(c, d, sg);
    static const char *const targets[] = {"bootstrap", "true", "mix"};
    const dnic_setting *t = find(d, "target");
    int target = t ? get_enum(c, t, targets, 3) : DNIC_TARGET_BOOTSTRAP;
    sg->target = target < 0 ? DNIC_TARGET_BOOTSTRAP : (dnic_sg_target)target;
    sg->lambda = sg->target == DNIC_TARGET_TRUE ? 1 : 0;
    if ((s = find(d, "lambda"))) {
        if (target == DNIC_TARGET_MIX)
            get_real(c, s, 0, false, 1, &sg->lambda);
        else if (target >= 0)
            dnic_error(c->d, s->key_span, "'lambda' is a setting of target = mix");
    } else if (target == DNIC_TARGET_MIX) {
        dnic_error(c->d, t->value->span, "target = mix needs 'lambda', the true gradient's weight, e.g. lambda = 0.5");
    }
}

static void check_loss(checker *c, const dnic_decl *d, const char **out_name, dnic_span *out_span)
{
    static const char *const kinds[] = {"squared_error", "softmax_cross_entropy", "sigmoid_cross_entropy"};
    static const char *const keys[] = {"report", "report_per"};
    static const char *const reports[] = {"abs_error", "abs_delta", "loss"};
    static const char *const pers[] = {"example", "sum"};
    const dnic_expr *call = d->call;
    int k = -1;
    for (int i = 0; i < 3; i++)
        if (strcmp(call->str, kinds[i]) == 0)
            k = i;
    if (k < 0) {
        dnic_error(c->d, callee_span(call), "unknown loss '%s'", call->str);
        suggest(c, callee_span(call), call->str, kinds, 3);
        dnic_note(c->d, NOSPAN, "losses: squared_error, softmax_cross_entropy, sigmoid_cross_entropy");
        c->loss_unknown = true;
    } else {
        c->m->loss = (dnic_loss_kind)k;
    }
    if (call->args.n != 2) {
        dnic_error(c->d, call->span, "%s takes 2 arguments (output layer, labels), not %d", call->str, call->args.n);
    } else {
        const dnic_arg *o = call->args.v[0], *y = call->args.v[1];
        if (o->name || o->value->kind != EXPR_NAME)
            dnic_error(c->d, o->value->span, "the first argument of a loss is the output layer's name");
        else {
            *out_name = o->value->str;
            *out_span = o->value->span;
        }
        if (y->name || y->value->kind != EXPR_NAME || strcmp(y->value->str, "labels") != 0)
            dnic_error(c->d, y->value->span, "the second argument of a loss is 'labels'");
    }
    check_keys(c, d, keys, 2, "loss");
    const dnic_setting *s;
    c->m->report = DNIC_REPORT_LOSS;
    if ((s = find(d, "report"))) {
        int v = get_enum(c, s, reports, 3);
        if (v >= 0)
            c->m->report = (dnic_report_kind)v;
    }
    /* the seeds' kinds print the seeds' sums; the loss itself its mean per example */
    c->m->report_sum = c->m->report != DNIC_REPORT_LOSS;
    if ((s = find(d, "report_per"))) {
        int v = get_enum(c, s, pers, 2);
        if (v >= 0)
            c->m->report_sum = v == 1;
    }
}

static void check_train(checker *c, const dnic_decl *d, const char **report_sg, dnic_span *report_sg_span)
{
    const char *const *keys = TRAIN_KEYS;
    dnic_train_spec *t = &c->m->train;
    t->dtype = DNIC_F32;
    t->report_sg = -1;
    t->opt = (dnic_opt_spec){DNIC_OPT_SGD, 0.9, 0.9, 0.999, 1e-8};
    check_keys(c, d, keys, NTRAIN_KEYS, "train");
    const dnic_setting *s;
    static const char *const modes[] = {"dni", "backprop"};
    if ((s = find(d, "mode"))) {
        int v = get_enum(c, s, modes, 2);
        if (v >= 0)
            t->mode = (dnic_mode)v;
    }
    if ((s = require(c, d, "batch", "train")))
        get_int32(c, s, 1, 1 << 20, &t->batch);
    if ((s = require(c, d, "lr", "train")))
        get_real(c, s, 0, true, 1e6, &t->lr);
    const dnic_setting *ep = find(d, "epochs"), *st = find(d, "steps");
    if (ep && st)
        dnic_error(c->d, st->key_span, "set either epochs or steps, not both");
    else if (!ep && !st) {
        if (!set_by_synonym(d, "epochs") && !set_by_synonym(d, "steps"))
            dnic_error(c->d, d->span, "train needs 'epochs' or 'steps'");
    } else if (ep)
        get_int(c, ep, 1, 1LL << 40, &t->epochs);
    else
        get_int(c, st, 1, 1LL << 40, &t->steps);
    long long total = t->epochs ? t->epochs : t->steps;
    t->report_every = total >= 10 ? total / 10 : 1;
    if ((s = find(d, "lag")))
        get_int32(c, s, 0, 7, &t->lag);
    if ((s = find(d, "shuffle")))
        get_bool(c, s, &t->shuffle);
    /* patience counts reports whose validation (else test) loss is not the best yet */
    if ((s = find(d, "patience")) && get_int(c, s, 1, 1LL << 40, &t->patience) && c->m->data.validation <= 0 &&
        !c->m->data.test_x)
        dnic_error(c->d, s->key_span, "train.patience needs a validation or test set to watch (data.validation = "
                   "0.1 holds out a tenth of the training set)");
    /* keep_best is a path like the data's: relative to the model file when written there */
    if ((s = find(d, "keep_best")) && (t->keep_best = get_string(c, s)) != NULL) {
        t->keep_best = resolve_path(c, s, t->keep_best);
        if (c->m->data.validation <= 0 && !c->m->data.test_x)
            dnic_error(c->d, s->key_span, "train.keep_best needs a validation or test set to watch (data.validation = "
                       "0.1 holds out a tenth of the training set)");
    }
    if ((s = find(d, "report_every")) && get_int(c, s, 1, 1LL << 40, &t->report_every) && total > 0 &&
        t->report_every > total)
        dnic_warning(c->d, s->value->span, "report_every = %lld is longer than the run's %lld %s: no report line will be "
                     "printed", t->report_every, total, t->epochs ? "epochs" : "steps");
    if ((s = find(d, "seed"))) {
        long long v;
        if (get_int(c, s, 0, 4294967295LL, &v))
            t->seed = (uint32_t)v;
    }
    static const char *const dtypes[] = {"float32", "float64"};
    if ((s = find(d, "dtype"))) {
        int v = get_enum(c, s, dtypes, 2);
        if (v >= 0)
            t->dtype = v ? DNIC_F64 : DNIC_F32;
    }
    static const char *const opts[] = {"sgd", "momentum", "adam"};
    bool opt_known = true; /* a bad optimizer says nothing of its settings */
    if ((s = find(d, "optimizer"))) {
        int v = get_enum(c, s, opts, 3);
        if (v >= 0)
            t->opt.kind = (dnic_optimizer)v;
        opt_known = v >= 0;
    }
    /* each optimiser's own settings, refused with another optimiser rather than ignored */
    static const char *const hyper[] = {"momentum", "beta1", "beta2", "eps"};
    double *dst[] = {&t->opt.momentum, &t->opt.beta1, &t->opt.beta2, &t->opt.eps};
    for (int h = 0; h < 4; h++) {
        if (!(s = find(d, hyper[h])))
            continue;
        bool fits = h == 0 ? t->opt.kind == DNIC_OPT_MOMENTUM : t->opt.kind == DNIC_OPT_ADAM;
        double v;
        if (!opt_known)
            continue;
        if (!fits)
            dnic_error(c->d, s->key_span, "'%s' is a setting of optimizer = %s", hyper[h], h == 0 ? "momentum" : "adam");
        else if (h == 3)
            get_real(c, s, 0, true, 1, dst[h]);
        else if (get_real(c, s, 0, false, 1e300, &v)) {
            if (v >= 1)
                dnic_error(c->d, s->value->span, "%s must be less than 1, not %g", hyper[h], v);
            else
                *dst[h] = v;
        }
    }
    if ((s = find(d, "unroll")))
        get_int32(c, s, 1, 4096, &t->unroll);
    if ((s = find(d, "warmup")))
        get_int(c, s, 1, 1LL << 40, &t->warmup);
    t->update_prob = -1;
    if ((s = find(d, "update_prob")) && get_real(c, s, 0, false, 1, &t->update_prob) == false)
        t->update_prob = -1;
    static const char *const grads[] = {"sum", "mean"};
    if ((s = find(d, "grad"))) {
        int v = get_enum(c, s, grads, 2);
        if (v >= 0)
            t->grad_mean = v == 1;
    }
    static const char *const orders[] = {"before_update", "after_update"};
    if ((s = find(d, "backward_message"))) {
        int v = get_enum(c, s, orders, 2);
        if (v >= 0)
            t->message = (dnic_message_order)v;
    }
    if ((s = find(d, "report_sg"))) {
        if (s->value->kind != EXPR_NAME)
            dnic_error(c->d, s->value->span, "report_sg must name a layer with an SG module, or be 'all'");
        else if (strcmp(s->value->str, "all") != 0) {
            *report_sg = s->value->str;
            *report_sg_span = s->value->span;
        }
    }
}

/* ---- the model ---------------------------------------------------------------------------- */

/* ---- the API layer kinds check with -------------------------------------------------------- */

dnic_diag *dnic_checker_diag(dnic_checker *c)
{
    return c->d;
}

dnic_arena *dnic_checker_arena(dnic_checker *c)
{
    return c->a;
}

const dnic_model *dnic_checker_model(dnic_checker *c)
{
    return c->m;
}

const dnic_setting *dnic_setting_find(const dnic_decl *d, const char *key)
{
    return find(d, key);
}

bool dnic_check_int(dnic_checker *c, const dnic_setting *s, int lo, int hi, int *out)
{
    return get_int32(c, s, lo, hi, out);
}

bool dnic_check_real(dnic_checker *c, const dnic_setting *s, double lo, bool lo_open, double hi, double *out)
{
    return get_real(c, s, lo, lo_open, hi, out);
}

bool dnic_check_bool(dnic_checker *c, const dnic_setting *s, bool *out)
{
    return get_bool(c, s, out);
}

int dnic_check_enum(dnic_checker *c, const dnic_setting *s, const char *const *names, int n)
{
    return get_enum(c, s, names, n);
}

bool dnic_check_init(dnic_checker *c, const dnic_setting *s, dnic_init *out)
{
    return get_init(c, s, out);
}

bool dnic_check_act(dnic_checker *c, const dnic_setting *s, dnic_act *out)
{
    int v = get_enum(c, s, ACT_NAMES, DNIC_ACT_COUNT);
    if (v < 0)
        return false;
    *out = (dnic_act)v;
    return true;
}

dnic_span dnic_decl_arg_span(const dnic_decl *d, int i)
{
    if (d->call && i < d->call->args.n)
        return ((const dnic_arg *)d->call->args.v[i])->value->span;
    return d->name_span;
}

/* ---- the model ---------------------------------------------------------------------------- */

/* The declaration of layer `name` (after repeat's expansion), or NULL. */
static const dnic_decl *layer_decl(checker *c, const char *name)
{
    for (int i = 0; i < c->decls.n; i++) {
        const dnic_decl *d = c->decls.v[i];
        if (d->kind == DECL_LAYER && strcmp(d->name, name) == 0)
            return d;
    }
    return NULL;
}

/* Whether layer `l`'s activation is one dnic knows.  An unknown one was reported and the layer
 * left linear: an error about the loss's activation would only repeat it, misleadingly. */
static bool act_known(checker *c, const dnic_layer *l)
{
    const dnic_decl *d = layer_decl(c, l->name);
    const dnic_setting *s = d ? find(d, "activation") : NULL;
    if (!s)
        return true;
    if (s->value->kind != EXPR_NAME)
        return false;
    for (int i = 0; i < DNIC_ACT_COUNT; i++)
        if (ACT_NAMES[i] && !strcmp(ACT_NAMES[i], s->value->str))
            return true;
    return false;
}

static const char *resolve(checker *c, const char *name);

/* The names a misspelled source of layer `i` may have meant: neither `i` nor a layer reading
 * it (a cycle), nor the loss's layer `out_name` (the output feeds no layer), and 'input'. */
static const char **source_names(checker *c, int n, int i, const char ***srcname, const char *out_name)
{
    dnic_model *m = c->m;
    bool *reads = dnic_alloc(c->a, (size_t)(n + 1) * sizeof *reads);
    reads[i] = true;
    for (bool more = true; more;) {
        more = false;
        for (int j = 0; j < n; j++)
            for (int k = 0; !reads[j] && m->layers[j].kind && k < m->layers[j].nsrc; k++) {
                int s = layer_index(m, n, resolve(c, srcname[j][k]));
                if (s >= 0 && reads[s])
                    more = reads[j] = true;
            }
    }
    const char **names = dnic_alloc(c->a, (size_t)(n + 1) * sizeof *names);
    for (int j = 0; j < n; j++)
        names[j] = reads[j] || (out_name && !strcmp(m->layers[j].name, out_name)) ? NULL : m->layers[j].name;
    names[n] = "input";
    return names;
}

/* The span of a layer's setting's value, or of its last argument (key NULL: a dense layer's
 * width), for messages about the checked layer; the layer's name when the model does not
 * spell it out. */
static dnic_span layer_span(checker *c, const dnic_layer *l, const char *key)
{
    const dnic_decl *d = layer_decl(c, l->name);
    if (!d)
        return l->span;
    const dnic_setting *s = key ? find(d, key) : NULL;
    if (s)
        return s->value->span;
    if (!key && d->call->args.n > 0 && l->kind && l->kind->extra_args)
        return dnic_decl_arg_span(d, d->call->args.n - 1);
    return l->span;
}

/* A recurrent layer's outputs = N (N > 1): not on the output layer (the loss would hand it
 * each step's delta, which the recurrence's gradient must join before the activation).  When
 * they reach back past its last truncation chunk, the per-step layers after it run chunk by
 * chunk with it (l->chunked; check_chain checks them). */
static void check_outputs(checker *c, const dnic_model *m, dnic_layer *l, bool is_out)
{
    if (l->outputs == 1)
        return;
    if (is_out) {
        dnic_error(c->d, layer_span(c, l, "outputs"), "the output layer '%s' cannot output %d states: put a dense "
                   "layer with steps = %d after it, e.g. dense(%s, %d) { steps = %d }", l->name, l->outputs,
                   l->outputs, l->name, m->data.labels > 0 && m->data.labels % l->outputs == 0
                   ? m->data.labels / l->outputs : 1, l->outputs);
        return;
    }
    l->chunked = l->kind->last_chunk && l->outputs > l->kind->last_chunk(l, m);
}

/* A layer whose outputs span its truncation chunks: what reads it is a chain of per-step
 * layers down to the output layer, each with steps = its outputs and read by the next alone,
 * none with an SG module in dni mode (they learn chunk by chunk from the loss), and it has no
 * SG module on its output either. */
static void check_chain(checker *c, const dnic_model *m, int r)
{
    const dnic_layer *l = &m->layers[r];
    bool dni = m->train.mode == DNIC_MODE_DNI;
    if (dni && l->sg >= 0) {
        dnic_error(c->d, m->sgs[l->sg].span, "sg %s: the outputs of '%s' span its truncation chunks, and the layers "
                   "after it learn from them chunk by chunk: a module on its output has no place; sg %s.state "
                   "predicts at the chunks' boundaries", l->name, l->name, l->name);
        return;
    }
    for (int cur = r; cur != m->out;) {
        int next = -1;
        for (int j = 0; j < m->nlayers; j++)
            for (int k = 0; k < m->layers[j].nsrc; k++) {
                if (m->layers[j].src[k] != cur)
                    continue;
                const dnic_layer *rd = &m->layers[j];
                const dnic_dense_cfg *dc = rd->kind->forward_range ? rd->cfg : NULL;
                if (next >= 0 || rd->nsrc != 1 || !dc || dc->steps != l->outputs) {
                    dnic_error(c->d, layer_span(c, rd, NULL), "layer '%s' reads '%s', but the %d outputs of '%s' "
                               "span its truncation chunks: only one dense layer with steps = %d may read it, and "
                               "one such layer each, down to the output layer", rd->name, m->layers[cur].name,
                               l->outputs, l->name, l->outputs);
                    dnic_note(c->d, NOSPAN, "or choose an unroll whose last chunk holds all %d output steps "
                              "(unroll = steps does)", l->outputs);
                    return;
                }
                if (dni && rd->sg >= 0) {
                    dnic_error(c->d, m->sgs[rd->sg].span, "sg %s: '%s' learns chunk by chunk with '%s', whose outputs "
                               "span its truncation chunks: it takes no SG module", rd->name, rd->name, l->name);
                    return;
                }
                next = j;
            }
        if (next < 0) /* unused: reported as such */
            return;
        cur = next;
    }
}

static const dnic_decl *unique(checker *c, dnic_decl_kind k)
{
    const dnic_decl *first = NULL;
    for (int i = 0; i < c->ast->decls.n; i++) {
        const dnic_decl *d = c->ast->decls.v[i];
        if (d->kind != k)
            continue;
        if (first) {
            dnic_error(c->d, d->span, "a model has one '%s' declaration", dnic_decl_kind_name(k));
            dnic_note(c->d, first->span, "the first is here");
        } else {
            first = d;
        }
    }
    if (!first)
        dnic_error(c->d, c->ast->model_span, "model '%s' has no '%s' declaration", c->ast->model, dnic_decl_kind_name(k));
    return first;
}

/* A name that a repeated layer's name stands for: its last copy. */
static const char *resolve(checker *c, const char *name)
{
    for (int i = 0; i < c->alias_from.n; i++)
        if (strcmp(c->alias_from.v[i], name) == 0)
            return c->alias_to.v[i];
    return name;
}

/* `repeat = N` on a layer makes N copies NAME_1 .. NAME_N, each reading the one before (the
 * first reads the layer's source); elsewhere NAME means NAME_N, and `sg NAME` gives every copy
 * an SG module. */
static void expand_repeats(checker *c)
{
    dnic_vec sgs_of = {0}; /* the repeated layers' names, for their sg declarations */
    dnic_vec counts = {0};
    for (int i = 0; i < c->ast->decls.n; i++) {
        dnic_decl *d = c->ast->decls.v[i];
        const dnic_setting *r = d->kind == DECL_LAYER ? find(d, "repeat") : NULL;
        int n = 0;
        if (!r || !get_int32(c, r, 1, 1000, &n)) {
            dnic_vec_push(c->a, &c->decls, d);
            continue;
        }
        if (d->call->args.n < 1) {
            dnic_vec_push(c->a, &c->decls, d);
            continue;
        }
        for (int k = 1; k <= n; k++) {
            dnic_decl *copy = dnic_alloc(c->a, sizeof *copy);
            *copy = *d;
            copy->name = dnic_sprintf(c->a, "%s_%d", d->name, k);
            memset(&copy->settings, 0, sizeof copy->settings);
            for (int j = 0; j < d->settings.n; j++)
                if (strcmp(((dnic_setting *)d->settings.v[j])->key, "repeat") != 0)
                    dnic_vec_push(c->a, &copy->settings, d->settings.v[j]);
            if (k > 1) {
                dnic_expr *call = dnic_alloc(c->a, sizeof *call);
                *call = *d->call;
                memset(&call->args, 0, sizeof call->args);
                const dnic_arg *first = d->call->args.v[0];
                dnic_arg *src = dnic_alloc(c->a, sizeof *src);
                src->value = dnic_expr_new(c->a, EXPR_NAME, first->value->span);
                src->value->str = dnic_sprintf(c->a, "%s_%d", d->name, k - 1);
                dnic_vec_push(c->a, &call->args, src);
                for (int j = 1; j < d->call->args.n; j++)
                    dnic_vec_push(c->a, &call->args, d->call->args.v[j]);
                copy->call = call;
            }
            dnic_vec_push(c->a, &c->decls, copy);
        }
        dnic_vec_push(c->a, &c->alias_from, dnic_strdup(c->a, d->name));
        dnic_vec_push(c->a, &c->alias_to, dnic_sprintf(c->a, "%s_%d", d->name, n));
        dnic_vec_push(c->a, &sgs_of, dnic_strdup(c->a, d->name));
        dnic_vec_push(c->a, &counts, (void *)(intptr_t)n);
    }
    /* sg NAME on a repeated layer: one for each copy, in place of the one */
    dnic_vec out = {0};
    for (int i = 0; i < c->decls.n; i++) {
        dnic_decl *d = c->decls.v[i];
        int n = 0;
        for (int j = 0; d->kind == DECL_SG && j < sgs_of.n; j++)
            if (strcmp(sgs_of.v[j], d->name) == 0)
                n = (int)(intptr_t)counts.v[j];
        if (!n) {
            dnic_vec_push(c->a, &out, d);
            continue;
        }
        for (int k = 1; k <= n; k++) {
            dnic_decl *copy = dnic_alloc(c->a, sizeof *copy);
            *copy = *d;
            copy->name = dnic_sprintf(c->a, "%s_%d", d->name, k);
            dnic_vec_push(c->a, &out, copy);
        }
    }
    c->decls = out;
}

/* Reports a cycle among the layers still in `left` (each has a source there): follows
 * sources from the first such layer until one repeats, then names the cycle the way the data
 * flows (a -> b when b reads a), at the smallest member's source in the cycle. */
static void report_cycle(checker *c, const dnic_layer *ls, int n, const bool *left, const dnic_span *const *srcspan)
{
    int start = 0;
    while (start < n && !left[start])
        start++;
    int seen[n], path[n + 1], len = 0, k = start;
    for (int i = 0; i < n; i++)
        seen[i] = -1;
    while (seen[k] < 0) {
        seen[k] = len;
        path[len++] = k;
        int next = -1;
        for (int a = 0; a < ls[k].nsrc && next < 0; a++)
            if (ls[k].src[a] >= 0 && left[ls[k].src[a]])
                next = ls[k].src[a];
        DNIC_ASSERT(next >= 0);
        k = next;
    }
    int *cyc = path + seen[k], clen = len - seen[k]; /* cyc[i + 1] is a source of cyc[i] */
    int m = 0;
    for (int i = 1; i < clen; i++)
        if (cyc[i] < cyc[m])
            m = i;
    char buf[512] = "";
    for (int i = 0; i <= clen; i++) { /* from cyc[m] the way the data flows: cyc[i - 1] reads cyc[i] */
        int idx = cyc[(m + clen - i) % clen];
        strncat(buf, ls[idx].name, sizeof buf - strlen(buf) - 1);
        if (i < clen)
            strncat(buf, " -> ", sizeof buf - strlen(buf) - 1);
    }
    int first = cyc[m], from = cyc[(m + 1) % clen], arg = 0;
    while (arg < ls[first].nsrc && ls[first].src[arg] != from)
        arg++;
    dnic_error(c->d, srcspan[first][arg], "layers form a cycle: %s", buf);
}

/* Sorts the layers into topological order (Kahn's, ties in declaration order), remapping
 * their sources; false after reporting a cycle. */
static bool sort_layers(checker *c, dnic_layer *ls, int n, const dnic_span **srcspan, int *out)
{
    int indeg[n > 0 ? n : 1], order[n > 0 ? n : 1], pos[n > 0 ? n : 1];
    bool left[n > 0 ? n : 1];
    for (int i = 0; i < n; i++) {
        indeg[i] = 0;
        left[i] = true;
        for (int a = 0; a < ls[i].nsrc; a++)
            indeg[i] += ls[i].src[a] >= 0;
    }
    int len = 0;
    while (len < n) {
        int next = -1;
        for (int i = 0; i < n && next < 0; i++)
            if (left[i] && indeg[i] == 0)
                next = i;
        if (next < 0) {
            report_cycle(c, ls, n, left, srcspan);
            return false;
        }
        left[next] = false;
        order[len++] = next;
        for (int i = 0; i < n; i++)
            for (int a = 0; a < ls[i].nsrc; a++)
                indeg[i] -= ls[i].src[a] == next;
    }
    dnic_layer tmp[n > 0 ? n : 1];
    const dnic_span *sp[n > 0 ? n : 1];
    for (int k = 0; k < n; k++) {
        pos[order[k]] = k;
        tmp[k] = ls[order[k]];
        sp[k] = srcspan[order[k]];
    }
    for (int k = 0; k < n; k++) {
        ls[k] = tmp[k];
        srcspan[k] = sp[k];
        for (int a = 0; a < ls[k].nsrc; a++)
            if (ls[k].src[a] >= 0)
                ls[k].src[a] = pos[ls[k].src[a]];
    }
    *out = pos[*out];
    return true;
}

/* Every layer must lead to the loss's layer, which nothing else reads. */
static bool check_reach(checker *c, const dnic_layer *ls, int n, int out, dnic_span out_span)
{
    int consumers[n > 0 ? n : 1];
    memset(consumers, 0, sizeof consumers);
    for (int i = 0; i < n; i++)
        for (int a = 0; a < ls[i].nsrc; a++)
            if (ls[i].src[a] >= 0)
                consumers[ls[i].src[a]]++;
    if (consumers[out]) {
        int reader = -1, sinks = 0, sink = -1;
        for (int i = 0; i < n; i++) {
            for (int a = 0; a < ls[i].nsrc && reader < 0; a++)
                if (ls[i].src[a] == out)
                    reader = i;
            if (!consumers[i])
                sinks++, sink = i;
        }
        if (sinks == 1)
            dnic_error(c->d, out_span, "the loss reads layer '%s', but '%s' feeds '%s'; the loss reads the last layer, '%s'",
                       ls[out].name, ls[out].name, ls[reader].name, ls[sink].name);
        else
            dnic_error(c->d, out_span, "the loss reads layer '%s', but '%s' feeds '%s'; the loss reads a layer that no "
                       "layer reads", ls[out].name, ls[out].name, ls[reader].name);
        return false;
    }
    bool ok = true;
    for (int i = 0; i < n; i++)
        if (!consumers[i] && i != out) {
            dnic_error(c->d, ls[i].span, "layer '%s' is not used: no layer reads it, and the loss reads '%s'", ls[i].name,
                       ls[out].name);
            ok = false;
        }
    return ok;
}

static int root(const int *comp, int x)
{
    while (comp[x] != x)
        x = comp[x];
    return x;
}

/* The stages of a DNI model: layers joined by an edge without an SG module train together;
 * an SG module's layer ends its stage, and the layers that read it start others.  Stages are
 * numbered in an order in which each comes after the stages it reads (ties by their first
 * layer), so the loss's is last.  Reports a consumer joined to its SG layer's own stage, and
 * stages that read each other. */
static bool assign_stages(checker *c, dnic_model *m, const dnic_span *const *srcspan)
{
    int n = m->nlayers;
    dnic_layer *ls = m->layers;
    int comp[n > 0 ? n : 1];
    for (int i = 0; i < n; i++)
        comp[i] = i;
    /* union-find without ranks: a few hundred layers at most */
#define ROOT(x) root(comp, (x))
    for (int i = 0; i < n; i++)
        for (int a = 0; a < ls[i].nsrc; a++) {
            int s = ls[i].src[a];
            if (s >= 0 && ls[s].sg < 0) {
                int x = ROOT(i), y = ROOT(s);
                if (x != y)
                    comp[x > y ? x : y] = x < y ? x : y;
            }
        }
    bool ok = true;
    for (int i = 0; i < n; i++)
        for (int a = 0; a < ls[i].nsrc; a++) {
            int s = ls[i].src[a];
            if (s >= 0 && ls[s].sg >= 0 && ROOT(s) == ROOT(i)) {
                dnic_error(c->d, srcspan[i][a],
                           "layer '%s' reads '%s' past its SG module, but is in the same stage as '%s' by another path",
                           ls[i].name, ls[s].name, ls[s].name);
                dnic_note(c->d, NOSPAN, "an SG module's layer must separate the layers before it from those after it");
                ok = false;
            }
        }
    if (!ok)
        return false;
    /* number the stages: Kahn's over the components */
    int stage[n > 0 ? n : 1], nst = 0;
    for (int i = 0; i < n; i++)
        stage[i] = -1;
    for (;;) {
        int pick = -1;
        for (int i = 0; i < n && pick < 0; i++) {
            int r = ROOT(i);
            if (stage[r] >= 0)
                continue;
            bool ready = true;
            for (int j = 0; j < n && ready; j++)
                if (ROOT(j) == r)
                    for (int a = 0; a < ls[j].nsrc; a++) {
                        int s = ls[j].src[a];
                        if (s >= 0 && ROOT(s) != r && stage[ROOT(s)] < 0)
                            ready = false;
                    }
            if (ready)
                pick = r;
        }
        if (pick < 0)
            break;
        stage[pick] = nst++;
    }
    for (int i = 0; i < n; i++)
        if (stage[ROOT(i)] < 0) {
            dnic_error(c->d, ls[i].span, "the stages around layer '%s' read each other: SG modules split the graph into "
                       "stages that must run one after another", ls[i].name);
            return false;
        }
    for (int i = 0; i < n; i++)
        ls[i].stage = stage[ROOT(i)];
#undef ROOT
    m->nstages = nst;
    return true;
}

dnic_model *dnic_check(dnic_arena *a, dnic_diag *d, const dnic_ast *ast, unsigned flags)
{
    checker cc = {.a = a, .d = d, .ast = ast, .flags = flags}, *c = &cc;
    int errors0 = d->errors;
    dnic_model *m = dnic_alloc(a, sizeof *m);
    c->m = m;
    m->name = ast->model;
    m->src = ast->src;
    m->out = -1;
    m->nstages = 1;

    c->data = unique(c, DECL_DATA);
    c->loss = unique(c, DECL_LOSS);
    c->train = unique(c, DECL_TRAIN);
    if (c->data)
        check_data(c, c->data);
    expand_repeats(c);

    /* layers, in declaration order for now */
    int nl = 0;
    for (int i = 0; i < c->decls.n; i++)
        nl += ((dnic_decl *)c->decls.v[i])->kind == DECL_LAYER;
    m->layers = dnic_alloc(a, (size_t)(nl + 1) * sizeof *m->layers);
    const char ***srcname = dnic_alloc(a, (size_t)(nl + 1) * sizeof *srcname);
    const dnic_span **srcspan = dnic_alloc(a, (size_t)(nl + 1) * sizeof *srcspan);
    int n = 0;
    for (int i = 0; i < c->decls.n; i++) {
        const dnic_decl *dd = c->decls.v[i];
        if (dd->kind != DECL_LAYER)
            continue;
        int prev = layer_index(m, n, dd->name);
        if (prev >= 0) {
            dnic_error(d, dd->name_span, "layer '%s' is defined twice", dd->name);
            dnic_note(d, m->layers[prev].span, "first defined here");
            continue;
        }
        srcname[n] = dnic_alloc(a, (size_t)(dd->call->args.n + 1) * sizeof **srcname);
        dnic_span *sp = dnic_alloc(a, (size_t)(dd->call->args.n + 1) * sizeof *sp);
        srcspan[n] = sp;
        check_layer(c, dd, &m->layers[n], srcname[n], sp);
        n++;
    }
    m->nlayers = n;
    if (n == 0)
        dnic_error(d, ast->model_span, "model '%s' has no layers", ast->model);

    /* resolve sources */
    bool resolved = true;
    const dnic_arg *loss_arg = c->loss && c->loss->call->args.n ? c->loss->call->args.v[0] : NULL;
    const char *loss_out = loss_arg && loss_arg->value->kind == EXPR_NAME ? loss_arg->value->str : NULL;
    for (int i = 0; i < n; i++) {
        dnic_layer *l = &m->layers[i];
        if (!l->kind) {
            resolved = false;
            continue;
        }
        for (int k = 0; k < l->nsrc; k++) {
            const char *name = srcname[i][k];
            l->src[k] = -1;
            if (strcmp(name, "input") == 0)
                continue;
            l->src[k] = layer_index(m, n, resolve(c, name));
            if (l->src[k] < 0) {
                dnic_error(d, srcspan[i][k], "layer '%s' is not defined", name);
                suggest(c, srcspan[i][k], name, source_names(c, n, i, srcname, loss_out), n + 1);
                resolved = false;
            } else if (l->src[k] == i) {
                dnic_error(d, srcspan[i][k], "layer '%s' reads its own output", name);
                resolved = false;
            }
        }
    }

    /* the loss names the output layer */
    const char *out_name = NULL;
    dnic_span out_span = NOSPAN;
    if (c->loss)
        check_loss(c, c->loss, &out_name, &out_span);
    int out = -1;
    if (out_name && n > 0) {
        out = layer_index(m, n, resolve(c, out_name));
        if (out < 0) {
            dnic_error(d, out_span, "the loss reads layer '%s', which is not defined", out_name);
            suggest(c, out_span, out_name, layer_names(c, n, false), n);
        }
    }

    const char *report_sg = NULL;
    dnic_span report_sg_span = NOSPAN;
    if (c->train)
        check_train(c, c->train, &report_sg, &report_sg_span);

    if (resolved && out >= 0 && !c->reserved_name)
        resolved = sort_layers(c, m->layers, n, srcspan, &out) && check_reach(c, m->layers, n, out, out_span);
    else
        resolved = false;
    m->out = out;

    /* widths, in topological order */
    if (resolved) {
        for (int i = 0; i < n; i++) {
            dnic_layer *l = &m->layers[i];
            int w[DNIC_MAX_LAYER_SRC];
            bool known = true;
            for (int k = 0; k < l->nsrc; k++) {
                w[k] = l->src[k] < 0 ? m->data.inputs : m->layers[l->src[k]].out;
                known &= w[k] > 0;
            }
            if (known && !l->kind->shape(c, layer_decl(c, l->name), l, w))
                l->out = 0;
            if (l->act == DNIC_ACT_SOFTMAX && i != out) {
                int reader = -1;
                for (int j = 0; j < n && reader < 0; j++)
                    for (int k = 0; k < m->layers[j].nsrc; k++)
                        if (m->layers[j].src[k] == i)
                            reader = j;
                dnic_error(d, layer_span(c, l, "activation"), "softmax is only for the output layer; '%s' feeds '%s'", l->name,
                           m->layers[reader].name);
            } else if (l->act == DNIC_ACT_SOFTMAX && !l->kind->softmax_ok) {
                dnic_error(d, layer_span(c, l, "activation"), "softmax is for a dense output layer, not %s", l->kind->name);
            }
        }
        for (int i = 0; i < n; i++)
            check_outputs(c, m, &m->layers[i], i == out);
        dnic_layer *o = &m->layers[out];
        if (o->act == DNIC_ACT_SOFTMAX && o->out == 1) /* its output is always 1: nothing to learn */
            dnic_error(d, layer_span(c, o, "activation"), "softmax needs at least 2 units, but layer '%s' is 1 wide; use sigmoid",
                       o->name);
        if (m->data.labels && o->out && o->out != m->data.labels) {
            dnic_error(d, layer_span(c, o, NULL), "the output layer '%s' is %d wide, but the labels are %d wide", o->name,
                       o->out, m->data.labels);
            const dnic_setting *lab = find(c->data, "labels");
            if (lab)
                dnic_note(d, lab->value->span, "the labels' width is declared here");
        }
        /* an unknown loss or activation was reported; what follows from it would mislead */
        bool known = !c->loss_unknown && act_known(c, o);
        if (known && m->loss == DNIC_LOSS_SOFTMAX_CE && o->act != DNIC_ACT_SOFTMAX)
            dnic_error(d, c->loss->call->span, "softmax_cross_entropy needs the output layer '%s' to use softmax, not %s",
                       o->name, dnic_act_name(o->act));
        if (known && m->loss == DNIC_LOSS_SIGMOID_CE && o->act != DNIC_ACT_SIGMOID)
            dnic_error(d, c->loss->call->span, "sigmoid_cross_entropy needs the output layer '%s' to use sigmoid, not %s",
                       o->name, dnic_act_name(o->act));
        if (known && m->loss == DNIC_LOSS_SQUARED && o->act == DNIC_ACT_SOFTMAX)
            dnic_error(d, c->loss->call->span, "a softmax output layer needs softmax_cross_entropy, not squared_error");
    }

    /* SG modules, attached in layer order */
    int ns = 0;
    for (int i = 0; i < c->decls.n; i++)
        ns += ((dnic_decl *)c->decls.v[i])->kind == DECL_SG;
    dnic_sg *sgs = dnic_alloc(a, (size_t)(ns + 1) * sizeof *sgs);
    const dnic_decl **sgdecl = dnic_alloc(a, (size_t)(ns + 1) * sizeof *sgdecl);
    int k = 0;
    for (int i = 0; i < c->decls.n; i++) {
        const dnic_decl *dd = c->decls.v[i];
        if (dd->kind != DECL_SG)
            continue;
        bool dup = false;
        for (int j = 0; j < k; j++)
            if (strcmp(sgdecl[j]->name, dd->name) == 0) {
                dnic_error(d, dd->name_span, "layer '%s' has two SG modules", dd->name);
                dnic_note(d, sgdecl[j]->name_span, "the first is here");
                dup = true;
            }
        if (dup)
            continue;
        sgdecl[k] = dd;
        check_sg(c, dd, &sgs[k], n);
        k++;
    }
    if (resolved) {
        m->sgs = dnic_alloc(a, (size_t)(k + 1) * sizeof *m->sgs);
        for (int li = 0; li < n; li++)
            for (int j = 0; j < k; j++) {
                size_t ln = strlen(m->layers[li].name);
                if (sgs[j].layer < 0 || strncmp(m->layers[li].name, sgs[j].name, ln) != 0 ||
                    (sgs[j].name[ln] != 0 && sgs[j].name[ln] != '.'))
                    continue;
                dnic_sg *sg = &m->sgs[m->nsgs];
                *sg = sgs[j];
                sg->layer = li;
                if (sg->state) {
                    const dnic_layer *l = &m->layers[li];
                    int nb = l->kind->boundaries ? l->kind->boundaries(l, m) : -1;
                    if (nb < 0) {
                        dnic_error(d, sg->span, "layer '%s' is a %s layer, which carries no state: sg %s needs a "
                                   "recurrent layer (rnn)", l->name, l->kind->name, sg->name);
                        continue;
                    }
                    /* backprop mode leaves it unused; so does a curriculum until a sequence spans chunks */
                    if (nb == 0 && m->train.mode == DNIC_MODE_DNI && !(m->data.curriculum > 0 && l->derived_steps)) {
                        dnic_error(d, sg->span, "sg %s predicts the gradient at the truncation boundaries of '%s', "
                                   "but it is unrolled over its whole sequence: it has none", sg->name, l->name);
                        dnic_note(d, NOSPAN, "set unroll (train.unroll or the layer's) shorter than its steps");
                        continue;
                    }
                    if (sg->target != DNIC_TARGET_BOOTSTRAP)
                        dnic_error(d, find(sgdecl[j], "target")->value->span,
                                   "target = %s is not known at a truncation boundary: the later chunks have not "
                                   "run; sg %s learns from a bootstrapped target",
                                   sg->target == DNIC_TARGET_TRUE ? "true" : "mix", sg->name);
                    if (sg->lr < 0)
                        sg->lr = m->train.lr;
                    for (int p = 0; p < sg->nparts; p++)
                        sg->in_width += dnic_sg_part_width(m, sg, sg->parts[p]);
                    m->layers[li].state_sg = m->nsgs++;
                    continue;
                }
                if (sg->input) { /* a synthetic input: the layer's one source, predicted from x */
                    const dnic_layer *l = &m->layers[li];
                    int src = l->nsrc == 1 ? l->src[0] : -1;
                    if (strcmp(l->kind->name, "dense") != 0) {
                        dnic_error(d, sg->span, "sg %s needs a dense layer: '%s' is a %s layer", sg->name, l->name,
                                   l->kind->name);
                        continue;
                    }
                    if (src < 0) {
                        dnic_error(d, sg->span, "sg %s would predict the model's input, which '%s' reads as it is: a "
                                   "synthetic input stands in for another layer's output", sg->name, l->name);
                        continue;
                    }
                    if (m->train.mode == DNIC_MODE_DNI && m->layers[src].sg < 0) {
                        dnic_error(d, sg->span, "sg %s lets '%s' run before '%s' has, but they are in one stage: '%s' "
                                   "must end its stage (sg %s)", sg->name, l->name, m->layers[src].name,
                                   m->layers[src].name, m->layers[src].name);
                        continue;
                    }
                    if (sg->lr < 0)
                        sg->lr = m->train.lr;
                    sg->in_width = dnic_sg_part_width(m, sg, DNIC_SG_INPUT);
                    m->layers[li].input_sg = m->nsgs++;
                    continue;
                }
                if (li == out) {
                    dnic_error(d, sg->span, "layer '%s' is the output layer: it learns from the loss, not an SG module",
                               sg->name);
                    continue;
                }
                if (sg->lr < 0)
                    sg->lr = m->train.lr;
                for (int p = 0; p < sg->nparts; p++)
                    sg->in_width += dnic_sg_part_width(m, sg, sg->parts[p]);
                m->layers[li].sg = m->nsgs++;
            }
        for (int s = 0; s < m->nsgs; s++) {
            /* a sigmoid head predicts sigmoid(a) - y: the module is as wide as the labels */
            const dnic_sg *sg = &m->sgs[s];
            int w = dnic_sg_part_width(m, sg, DNIC_SG_OUTPUT);
            if (sg->head_sigmoid && sg->state)
                dnic_error(d, sg->head_span, "head = sigmoid predicts sigmoid(a) - labels, a gradient at the output "
                           "for a log loss; sg %s predicts the gradient w.r.t. a carried state, which is not that",
                           sg->name);
            else if (sg->head_sigmoid && m->data.labels > 0 && w != m->data.labels)
                dnic_error(d, sg->head_span, "head = sigmoid predicts sigmoid(a) - labels, so sg %s must be as wide "
                           "as the labels (%d), not %d", sg->name, m->data.labels, w);
        }
        for (int s = 0; s < m->nsgs; s++) {
            int j = 0;
            while (strcmp(sgdecl[j]->name, m->sgs[s].name) != 0)
                j++;
            if (m->sgs[s].target == DNIC_TARGET_BOOTSTRAP || m->train.mode != DNIC_MODE_DNI || m->sgs[s].state)
                continue;
            /* the true gradient is backpropagated through the layers after this one that a later
             * SG module cuts off from the loss (ir_build.c); a recurrent layer's backward pass
             * updates its weights chunk by chunk, so no true gradient goes through one */
            int li = m->sgs[s].layer, bad = -1;
            bool down[n], cut[n];
            for (int i = 0; i < n; i++) {
                down[i] = false;
                for (int q = 0; q < m->layers[i].nsrc; q++)
                    down[i] |= m->layers[i].src[q] == li || (m->layers[i].src[q] >= 0 && down[m->layers[i].src[q]]);
            }
            for (int i = n - 1; i >= 0; i--) { /* cut: an SG module at it or after it */
                cut[i] = m->layers[i].sg >= 0;
                for (int q = i + 1; q < n; q++)
                    for (int r = 0; r < m->layers[q].nsrc; r++)
                        cut[i] |= m->layers[q].src[r] == i && cut[q];
            }
            for (int i = 0; i < n && bad < 0; i++)
                if (down[i] && cut[i] && m->layers[i].kind->boundaries)
                    bad = i;
            if (bad >= 0)
                dnic_error(d, find(sgdecl[j], "target")->value->span,
                           "target = %s needs the true gradient at '%s' through layer '%s', an %s layer: dnic "
                           "backpropagates a true gradient past an SG module only through dense, add and concat layers",
                           m->sgs[s].target == DNIC_TARGET_TRUE ? "true" : "mix", m->sgs[s].name, m->layers[bad].name,
                           m->layers[bad].kind->name);
        }
        for (int i = 0; i < n; i++)
            if (m->layers[i].chunked)
                check_chain(c, m, i);
        if (m->train.mode == DNIC_MODE_DNI && m->nsgs > DNIC_MAX_SGS)
            dnic_error(d, m->sgs[DNIC_MAX_SGS].span, "a model has at most %d SG modules (the scheduler runs %d stages); "
                       "this is the %dth", DNIC_MAX_SGS, DNIC_MAX_SGS + 1, DNIC_MAX_SGS + 1);
        else if (m->train.mode == DNIC_MODE_DNI && m->nsgs > 0 && d->errors == errors0)
            assign_stages(c, m, srcspan);
    }
    if (report_sg && resolved) {
        int found = -1;
        const char **names = dnic_alloc(a, (size_t)(m->nsgs + 1) * sizeof *names);
        for (int j = 0; j < m->nsgs; j++) {
            names[j] = m->sgs[j].name;
            if (strcmp(names[j], resolve(c, report_sg)) == 0)
                found = j;
        }
        if (found < 0) {
            dnic_error(d, report_sg_span, "report_sg names '%s', which has no SG module", report_sg);
            suggest(c, report_sg_span, report_sg, names, m->nsgs);
        }
        m->train.report_sg = found;
    }

    /* cross checks on the training settings */
    const dnic_setting *ws = c->train && m->train.warmup > 0 ? find(c->train, "warmup") : NULL;
    if (ws && resolved && (m->train.mode != DNIC_MODE_DNI || m->nsgs == 0))
        dnic_error(d, ws->value->span, "warmup trains the SG modules while the layers learn by backpropagation: it "
                   "needs mode = dni and an SG module");
    for (int s = 0; ws && resolved && m->train.mode == DNIC_MODE_DNI && s < m->nsgs; s++)
        if (m->sgs[s].state || m->sgs[s].input) {
            dnic_error(d, ws->value->span, "warmup is not supported with sg %s yet (%s)", m->sgs[s].name,
                       m->sgs[s].state ? "a recurrent layer's truncation boundaries" : "a synthetic input");
            break;
        }
    for (int i = 0; ws && resolved && m->train.mode == DNIC_MODE_DNI && i < m->nlayers; i++)
        if (m->layers[i].chunked) {
            dnic_error(d, ws->value->span, "warmup is not supported yet with '%s', whose outputs span its truncation "
                       "chunks (the layers after it learn chunk by chunk)", m->layers[i].name);
            break;
        }
    if (c->train && c->data && m->train.batch > 0 && m->data.kind == DNIC_DATA_BINADD && m->data.examples > 0 &&
        m->train.batch > m->data.examples)
        dnic_error(d, find(c->train, "batch")->value->span, "batch %d is larger than the %d training examples",
                   m->train.batch, m->data.examples);
    return d->errors == errors0 ? m : NULL;
}
