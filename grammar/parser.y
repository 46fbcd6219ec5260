/* The .dni grammar.  A pure parser over a reentrant scanner; actions only build the AST
 * (compiler/ast.c), meaning lives in the checker.  Every value is arena-owned, so no
 * %destructor is needed: dropping a value on error recovery leaks nothing. */
%code requires {
#include "dnic.h"
#ifndef YY_TYPEDEF_YY_SCANNER_T
#define YY_TYPEDEF_YY_SCANNER_T
typedef void *yyscan_t;
#endif
typedef struct dnic_parse_ctx {
    dnic_arena *arena;
    dnic_diag *diag;
    const dnic_source *src;
    int start_token;           /* returned by the first yylex call */
    int line, col;             /* scanner position */
    int tok_line, tok_col;     /* the end of the last token (not blank or comment) */
    size_t pos;                /* scanner position as a byte offset into src->text */
    char tok_first, prev_first; /* the first character of the last token and the one before */
    int depth;                 /* '{' not yet closed */
    bool value_mode;           /* parsing an override's value, not a file */
    const char *last_text;     /* the text of the last token, for messages */
    const char *prev_text;     /* and of the token before it */
    dnic_ast *ast;             /* result of a file parse */
    dnic_expr *value;          /* result of a value parse */
} dnic_parse_ctx;
#define YYLTYPE dnic_span
#define YYLTYPE_IS_DECLARED 1
#define YYLTYPE_IS_TRIVIAL 0 /* a struct with a pointer: no {1,1,1,1} initialiser */
#define YYLLOC_DEFAULT(Cur, Rhs, N) do {                                          \
        if (N) { (Cur) = dnic_span_join(YYRHSLOC(Rhs, 1), YYRHSLOC(Rhs, N)); }    \
        else { (Cur) = YYRHSLOC(Rhs, 0); (Cur).line = (Cur).end_line;             \
               (Cur).col = (Cur).end_col; }                                       \
    } while (0)
}

%code provides {
int yylex(YYSTYPE *lval, YYLTYPE *lloc, yyscan_t scanner);
void yyerror(YYLTYPE *lloc, yyscan_t scanner, dnic_parse_ctx *ctx, const char *msg);
}

%code {
#include <string.h>
#define A (ctx->arena)
static dnic_decl *new_decl(dnic_parse_ctx *ctx, dnic_decl_kind k, dnic_span sp)
{
    dnic_decl *d = dnic_alloc(ctx->arena, sizeof *d);
    d->kind = k;
    d->span = sp;
    return d;
}
static dnic_expr *binary(dnic_parse_ctx *ctx, char op, dnic_expr *l, dnic_expr *r, dnic_span sp)
{
    dnic_expr *e = dnic_expr_new(ctx->arena, EXPR_BINARY, sp);
    e->op = op;
    e->lhs = l;
    e->rhs = r;
    return e;
}
}

%define api.pure full
%define parse.error custom
%locations
%expect 0
%param {yyscan_t scanner}
%parse-param {dnic_parse_ctx *ctx}

%union {
    double num;
    char *str;
    dnic_expr *expr;
    dnic_decl *decl;
    dnic_setting *setting;
    dnic_arg *arg;
    dnic_vec vec;
}

%token START_FILE START_VALUE
%token KW_MODEL "'model'" KW_DATA "'data'" KW_LAYER "'layer'" KW_SG "'sg'"
%token KW_LOSS "'loss'" KW_TRAIN "'train'"
%token <str> IDENT "name"
%token <str> STRING "string"
%token <num> INT "integer"
%token <num> FLOAT "number"

%type <decl> decl
%type <vec> decls settings block opt_block args list_items
%type <setting> setting
%type <expr> expr term unary primary call
%type <arg> arg

%start start

%%

start
    : START_FILE file
    | START_VALUE expr         { ctx->value = $2; }
    ;

/* file: 'model' NAME decl* */
file
    : KW_MODEL IDENT decls {
        dnic_ast *ast = dnic_alloc(A, sizeof *ast);
        ast->src = ctx->src;
        ast->model = $2;
        ast->model_span = @2;
        ast->decls = $3;
        ctx->ast = ast;
      }
    ;

decls
    : %empty                   { memset(&$$, 0, sizeof $$); }
    | decls decl               { $$ = $1; if ($2) dnic_vec_push(A, &$$, $2); }
    ;

/* decl: 'data' NAME block | 'layer' NAME '=' call block? | 'sg' NAME ('.' 'state')? block? | 'loss' call block?
 *     | 'train' block */
decl
    : KW_DATA IDENT block {
        $$ = new_decl(ctx, DECL_DATA, @1);
        $$->name = $2; $$->name_span = @2; $$->settings = $3;
      }
    | KW_LAYER IDENT '=' call opt_block {
        $$ = new_decl(ctx, DECL_LAYER, @1);
        $$->name = $2; $$->name_span = @2; $$->call = $4; $$->settings = $5;
      }
    | KW_SG IDENT opt_block {
        $$ = new_decl(ctx, DECL_SG, @1);
        $$->name = $2; $$->name_span = @2; $$->settings = $3;
      }
    | KW_SG IDENT '.' IDENT opt_block {
        $$ = new_decl(ctx, DECL_SG, @1);
        $$->name = dnic_sprintf(A, "%s.%s", $2, $4); $$->name_span = dnic_span_join(@2, @4); $$->settings = $5;
      }
    | KW_LOSS call opt_block   { $$ = new_decl(ctx, DECL_LOSS, @1); $$->call = $2; $$->settings = $3; }
    | KW_TRAIN block           { $$ = new_decl(ctx, DECL_TRAIN, @1); $$->settings = $2; }
    | error '}'                { $$ = NULL; }
    ;

opt_block
    : %empty                   { memset(&$$, 0, sizeof $$); }
    | block
    ;

block
    : '{' settings '}'         { $$ = $2; }
    ;

settings
    : %empty                   { memset(&$$, 0, sizeof $$); }
    | settings setting         { $$ = $1; dnic_vec_push(A, &$$, $2); }
    ;

/* setting: NAME '=' expr (in a block the scanner makes `train =` a NAME: data csv { train = ... }) */
setting
    : IDENT '=' expr {
        $$ = dnic_alloc(A, sizeof *$$);
        $$->key = $1; $$->key_span = @1; $$->value = $3;
      }
    ;

/* expr: sums of products; '+' also concatenates SG inputs (output + labels) */
expr
    : term
    | expr '+' term            { $$ = binary(ctx, '+', $1, $3, @$); }
    | expr '-' term            { $$ = binary(ctx, '-', $1, $3, @$); }
    ;

term
    : unary
    | term '*' unary           { $$ = binary(ctx, '*', $1, $3, @$); }
    | term '/' unary           { $$ = binary(ctx, '/', $1, $3, @$); }
    ;

unary
    : primary
    | '-' unary                { $$ = dnic_expr_new(A, EXPR_NEG, @$); $$->lhs = $2; }
    ;

primary
    : INT                      { $$ = dnic_expr_new(A, EXPR_NUM, @1); $$->num = $1; $$->is_int = true; }
    | FLOAT                    { $$ = dnic_expr_new(A, EXPR_NUM, @1); $$->num = $1; }
    | STRING                   { $$ = dnic_expr_new(A, EXPR_STR, @1); $$->str = $1; }
    | IDENT                    { $$ = dnic_expr_new(A, EXPR_NAME, @1); $$->str = $1; }
    | call
    | '(' expr ')'             { $$ = $2; }
    | '[' list_items ']'       { $$ = dnic_expr_new(A, EXPR_LIST, @$); $$->args = $2; }
    ;

/* call: NAME '(' (arg (',' arg)*)? ')' where arg is expr or NAME '=' expr */
call
    : IDENT '(' ')'            { $$ = dnic_expr_new(A, EXPR_CALL, @$); $$->str = $1; }
    | IDENT '(' args ')'       { $$ = dnic_expr_new(A, EXPR_CALL, @$); $$->str = $1; $$->args = $3; }
    ;

args
    : arg                      { memset(&$$, 0, sizeof $$); dnic_vec_push(A, &$$, $1); }
    | args ',' arg             { $$ = $1; dnic_vec_push(A, &$$, $3); }
    ;

arg
    : expr                     { $$ = dnic_alloc(A, sizeof *$$); $$->value = $1; }
    | IDENT '=' expr {
        $$ = dnic_alloc(A, sizeof *$$);
        $$->name = $1; $$->name_span = @1; $$->value = $3;
      }
    ;

list_items
    : %empty                   { memset(&$$, 0, sizeof $$); }
    | expr                     { memset(&$$, 0, sizeof $$); dnic_vec_push(A, &$$, $1); }
    | list_items ',' expr      { $$ = $1; dnic_vec_push(A, &$$, $3); }
    ;

%%

static bool is_keyword(yysymbol_kind_t k)
{
    return k == YYSYMBOL_KW_MODEL || k == YYSYMBOL_KW_DATA || k == YYSYMBOL_KW_LAYER || k == YYSYMBOL_KW_SG ||
           k == YYSYMBOL_KW_LOSS || k == YYSYMBOL_KW_TRAIN;
}

/* Names a token the way a user reads it: keywords quoted, names with their text. */
static const char *token_desc(dnic_parse_ctx *ctx, yysymbol_kind_t k, bool with_text)
{
    if (k == YYSYMBOL_YYEOF)
        return ctx->value_mode ? "end of the value" : "end of file";
    if (with_text && ctx->last_text) {
        if (k == YYSYMBOL_IDENT)
            return dnic_sprintf(ctx->arena, "name '%s'", ctx->last_text);
        if (k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT)
            return dnic_sprintf(ctx->arena, "number %s", ctx->last_text);
        if (k == YYSYMBOL_STRING)
            return dnic_sprintf(ctx->arena, "string %s", ctx->last_text);
    }
    const char *n = yysymbol_name(k);
    if (n[0] == '"') /* bison quotes aliases: "'model'" -> 'model' */
        return dnic_strndup(ctx->arena, n + 1, strlen(n) - 2);
    return n;
}

/* The tokens that start a value; when all are expected the message says "a value". */
static bool starts_value(yysymbol_kind_t k)
{
    const char *n = yysymbol_name(k);
    return k == YYSYMBOL_INT || k == YYSYMBOL_FLOAT || k == YYSYMBOL_STRING || k == YYSYMBOL_IDENT ||
           !strcmp(n, "'('") || !strcmp(n, "'['") || !strcmp(n, "'-'");
}

static int yyreport_syntax_error(const yypcontext_t *pctx, yyscan_t scanner, dnic_parse_ctx *ctx)
{
    (void)scanner;
    yysymbol_kind_t expected[YYNTOKENS];
    int n = yypcontext_expected_tokens(pctx, expected, YYNTOKENS);
    yysymbol_kind_t got = yypcontext_token(pctx);
    /* Say it the way the user writes it: keywords that may name a setting go without saying
     * when a name is expected, and the seven tokens that start a value are "a value". */
    bool name = false;
    int nvalue = 0;
    for (int i = 0; i < n; i++) {
        name |= expected[i] == YYSYMBOL_IDENT;
        nvalue += starts_value(expected[i]);
    }
    const char *list[YYNTOKENS];
    int nlist = 0;
    if (nvalue == 7)
        list[nlist++] = "a value";
    for (int i = 0; i < n; i++) {
        if ((nvalue == 7 && starts_value(expected[i])) || (name && is_keyword(expected[i])))
            continue;
        list[nlist++] = token_desc(ctx, expected[i], false);
    }
    char buf[512];
    bool top = false; /* between declarations */
    for (int i = 0; i < n; i++)
        top |= expected[i] == YYSYMBOL_KW_DATA;
    if (got == YYSYMBOL_KW_MODEL && top) {
        dnic_error(ctx->diag, *yypcontext_location(pctx), "a model file has one 'model NAME' line");
        return 0;
    }
    int len = snprintf(buf, sizeof buf, "unexpected %s", token_desc(ctx, got, true));
    if (nlist > 0 && nlist <= 6) {
        for (int i = 0; i < nlist && len < (int)sizeof buf; i++)
            len += snprintf(buf + len, sizeof buf - (size_t)len, "%s%s",
                            i == 0 ? ", expected " : i == nlist - 1 ? " or " : ", ", list[i]);
        /* settings have no separators: `bits 4` and `input = output labels` miss an '=' */
        const char *p = ctx->prev_text;
        bool after_name = p && ((p[0] >= 'a' && p[0] <= 'z') || (p[0] >= 'A' && p[0] <= 'Z') || p[0] == '_');
        if (nlist == 1 && !strcmp(list[0], "'='") && after_name && len < (int)sizeof buf)
            snprintf(buf + len, sizeof buf - (size_t)len, " after '%s'", p);
    }
    dnic_error(ctx->diag, *yypcontext_location(pctx), "%s", buf);
    bool brace = false;
    for (int i = 0; i < n; i++)
        brace |= !strcmp(yysymbol_name(expected[i]), "'}'");
    if (nlist == 1 && !strcmp(list[0], "'model'"))
        dnic_note(ctx->diag, (dnic_span){0}, "a model file starts with 'model NAME'");
    else if (got == YYSYMBOL_IDENT && top && ctx->last_text) {
        /* layr h = dense(...): a misspelled keyword */
        static const char *const kws[] = {"data", "layer", "sg", "loss", "train"};
        const char *best = dnic_did_you_mean(ctx->last_text, kws, 5);
        if (best)
            dnic_note(ctx->diag, *yypcontext_location(pctx), "did you mean '%s'?", best);
    } else if (!strcmp(yysymbol_name(got), "','") && brace && name)
        dnic_note(ctx->diag, (dnic_span){0}, "settings are written 'key = value', separated by blanks or newlines, "
                                             "not commas");
    else if (is_keyword(got) && name) {
        if (brace)
            dnic_note(ctx->diag, (dnic_span){0}, "is the block before this '%s' missing its '}'?", ctx->last_text);
        else
            dnic_note(ctx->diag, (dnic_span){0}, "'%s' is a keyword: it cannot be a name here", ctx->last_text);
    }
    return 0;
}

void yyerror(YYLTYPE *lloc, yyscan_t scanner, dnic_parse_ctx *ctx, const char *msg)
{
    (void)scanner;
    if (!strcmp(msg, "memory exhausted")) /* the parser's stack: ((((...)))) */
        msg = "the expression is nested too deeply";
    dnic_error(ctx->diag, *lloc, "%s", msg);
}
