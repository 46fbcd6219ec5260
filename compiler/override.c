/* --set KEY=VALUE: command-line overrides, applied to the AST before checking so that an
 * override is checked exactly like the file, with errors pointing into the override's text. */
#include <string.h>

#include "dnic.h"

static const dnic_span NOSPAN;

static dnic_decl *find_decl(dnic_ast *ast, dnic_decl_kind k, const char *name)
{
    for (int i = 0; i < ast->decls.n; i++) {
        dnic_decl *d = ast->decls.v[i];
        if (d->kind == k && (!name || (d->name && strcmp(d->name, name) == 0)))
            return d;
    }
    return NULL;
}

bool dnic_is_name(const char *s, size_t n)
{
    if (n == 0 || !((s[0] >= 'a' && s[0] <= 'z') || (s[0] >= 'A' && s[0] <= 'Z') || s[0] == '_'))
        return false;
    for (size_t i = 1; i < n; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}

bool dnic_apply_override(dnic_arena *a, dnic_diag *d, dnic_ast *ast, const char *text)
{
    const dnic_source *src = dnic_source_from_string(a, "--set", text);
    const char *eq = strchr(text, '=');
    dnic_span whole = {src, 1, 1, 1, (int)strlen(text) + 1};
    if (!eq) {
        dnic_error(d, whole, "an override is KEY=VALUE, e.g. train.batch=20 or sg.h1.input=labels");
        return false;
    }
    /* split the key into up to four dot-separated parts (sg.NAME.state.KEY), none empty (not
     * "=1", "train.=1") */
    const char *part[4];
    size_t len[4];
    int nparts = 0;
    for (const char *p = text;;) {
        const char *dot = memchr(p, '.', (size_t)(eq - p));
        const char *end = dot ? dot : eq;
        if (nparts == 4 || !dnic_is_name(p, (size_t)(end - p))) {
            dnic_span sp = {src, 1, 1, 1, (int)(eq - text) + 1};
            if (eq == text)
                dnic_error(d, sp, "an override needs a key before '=', e.g. train.batch=20");
            else
                dnic_error(d, sp, "malformed override key '%.*s'", (int)(eq - text), text);
            dnic_note(d, NOSPAN, "keys are data.KEY, train.KEY, loss.KEY, layer.NAME.KEY or sg.NAME.KEY");
            return false;
        }
        part[nparts] = p;
        len[nparts++] = (size_t)(end - p);
        if (!dot)
            break;
        p = dot + 1;
    }
    static const char *const blocks[] = {"data", "train", "loss", "layer", "sg"};
    static const dnic_decl_kind kinds[] = {DECL_DATA, DECL_TRAIN, DECL_LOSS, DECL_LAYER, DECL_SG};
    int b = -1;
    for (int i = 0; i < 5; i++)
        if (strlen(blocks[i]) == len[0] && memcmp(blocks[i], part[0], len[0]) == 0)
            b = i;
    dnic_span key0 = {src, 1, 1, 1, 1 + (int)len[0]};
    if (b < 0) {
        char *w = dnic_strndup(a, part[0], len[0]);
        dnic_error(d, key0, "an override key starts with data, train, loss, layer or sg, not '%s'", w);
        const char *best = dnic_did_you_mean(w, blocks, 5);
        if (best)
            dnic_note(d, key0, "did you mean '%s'?", best);
        return false;
    }
    bool named = kinds[b] == DECL_LAYER || kinds[b] == DECL_SG;
    /* sg.NAME.state.KEY: the module at NAME's truncation boundaries; sg.NAME.input.KEY: its
     * synthetic input (both parts are 5 letters long) */
    bool state = kinds[b] == DECL_SG && nparts == 4 && len[2] == 5 &&
                 (memcmp(part[2], "state", 5) == 0 || memcmp(part[2], "input", 5) == 0);
    if (nparts != (named ? 3 : 2) && !state) {
        dnic_span sp = {src, 1, 1, 1, (int)(eq - text) + 1};
        if (kinds[b] == DECL_SG)
            dnic_error(d, sp, "an override of sg is sg.NAME.KEY, or sg.NAME.state.KEY for a recurrent layer's boundaries "
                       "(sg.NAME.input.KEY for its synthetic input)");
        else
            dnic_error(d, sp, named ? "an override of %s is %s.NAME.KEY" : "an override of %s is %s.KEY", blocks[b], blocks[b]);
        return false;
    }
    const char *name = named ? dnic_strndup(a, part[1], state ? len[1] + 6 : len[1]) : NULL;
    dnic_decl *decl = find_decl(ast, kinds[b], name);
    int k = nparts - 1;
    int kcol = (int)(part[k] - text) + 1;
    if (!decl) {
        if (kinds[b] == DECL_SG) {
            /* --set sg.h1.input=labels on a layer with no SG module adds one */
            decl = dnic_alloc(a, sizeof *decl);
            decl->kind = DECL_SG;
            decl->span = key0;
            decl->name = name;
            decl->name_span = (dnic_span){src, 1, (int)(part[1] - text) + 1, 1,
                                          (int)(part[1] - text) + 1 + (int)strlen(name)};
            dnic_vec_push(a, &ast->decls, decl);
        } else if (kinds[b] == DECL_LAYER) {
            dnic_span sp = {src, 1, (int)(part[1] - text) + 1, 1, (int)(part[1] - text) + 1 + (int)len[1]};
            dnic_error(d, sp, "the model has no layer '%s'", name);
            const char **names = dnic_alloc(a, (size_t)(ast->decls.n + 1) * sizeof *names);
            int n = 0;
            for (int i = 0; i < ast->decls.n; i++) {
                const dnic_decl *l = ast->decls.v[i];
                if (l->kind == DECL_LAYER)
                    names[n++] = l->name;
            }
            const char *best = dnic_did_you_mean(name, names, n);
            if (best)
                dnic_note(d, sp, "did you mean '%s'?", best);
            return false;
        } else {
            dnic_error(d, key0, "the model has no '%s' declaration to override", blocks[b]);
            return false;
        }
    }
    if (!eq[1 + strspn(eq + 1, " \t")]) {
        int col = (int)(eq - text) + 1;
        dnic_error(d, (dnic_span){src, 1, col, 1, col + 1}, "the override of '%.*s' has no value after '='",
                   (int)(eq - text), text);
        return false;
    }
    /* the shell ate the quotes of --set data.train_images="x.gz" (or they were never typed) */
    static const char *const paths[] = {"train_images", "train_labels", "test_images", "test_labels", "train", "test"};
    const char *v = eq + 1 + strspn(eq + 1, " \t");
    for (size_t i = 0; kinds[b] == DECL_DATA && *v != '"' && i < sizeof paths / sizeof paths[0]; i++)
        if (strlen(paths[i]) == len[k] && !memcmp(paths[i], part[k], len[k])) {
            int col = (int)(v - text) + 1;
            dnic_error(d, (dnic_span){src, 1, col, 1, (int)strlen(text) + 1},
                       "%s must be a string in double quotes, found %s", paths[i], v);
            dnic_note(d, NOSPAN, "quote it for the shell too: --set '%.*s=\"%s\"'", (int)(eq - text), text, v);
            return false;
        }
    dnic_expr *value = dnic_parse_value(a, d, src, (size_t)(eq + 1 - text));
    if (!value)
        return false;
    dnic_setting *s = dnic_alloc(a, sizeof *s);
    s->key = dnic_strndup(a, part[k], len[k]);
    s->key_span = (dnic_span){src, 1, kcol, 1, kcol + (int)len[k]};
    s->value = value;
    s->overridden = true;
    /* epochs and steps are alternatives: setting one drops the other */
    const char *other = kinds[b] != DECL_TRAIN ? NULL : !strcmp(s->key, "steps") ? "epochs"
                      : !strcmp(s->key, "epochs") ? "steps" : NULL;
    int kept = 0;
    bool replaced = false;
    for (int i = 0; i < decl->settings.n; i++) {
        dnic_setting *old = decl->settings.v[i];
        if (other && !strcmp(old->key, other))
            continue;
        if (!strcmp(old->key, s->key)) {
            if (replaced)
                continue;
            old = s;
            replaced = true;
        }
        decl->settings.v[kept++] = old;
    }
    decl->settings.n = kept;
    if (!replaced)
        dnic_vec_push(a, &decl->settings, s);
    return true;
}
