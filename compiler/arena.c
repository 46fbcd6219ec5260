/* Arena allocation for compile-time data: the AST, the checked model, the IR and their
 * strings all live in one arena that is freed at once (QBE pools, ggml contexts). */
#include <stdlib.h>
#include <string.h>

#include "dnic.h"

enum { CHUNK_MIN = 64 * 1024 };

typedef struct chunk {
    struct chunk *next;
    size_t used, size;
    max_align_t data[];
} chunk;

struct dnic_arena {
    chunk *head;
};

void dnic_die(const char *file, int line, const char *what)
{
    fprintf(stderr, "dnic: internal error at %s:%d: %s\n", file, line, what);
    fflush(stderr);
    exit(2);
}

dnic_arena *dnic_arena_new(void)
{
    dnic_arena *a = calloc(1, sizeof *a);
    DNIC_ASSERT(a != NULL);
    return a;
}

void dnic_arena_free(dnic_arena *a)
{
    if (!a)
        return;
    for (chunk *c = a->head, *next; c; c = next) {
        next = c->next;
        free(c);
    }
    free(a);
}

void *dnic_alloc(dnic_arena *a, size_t n)
{
    size_t align = sizeof(max_align_t);
    n = (n + align - 1) / align * align;
    if (!a->head || a->head->size - a->head->used < n) {
        size_t size = n > CHUNK_MIN ? n : CHUNK_MIN;
        chunk *c = malloc(sizeof *c + size);
        DNIC_ASSERT(c != NULL);
        c->next = a->head;
        c->used = 0;
        c->size = size;
        a->head = c;
    }
    void *p = (char *)a->head->data + a->head->used;
    a->head->used += n;
    memset(p, 0, n);
    return p;
}

char *dnic_strndup(dnic_arena *a, const char *s, size_t n)
{
    char *p = dnic_alloc(a, n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *dnic_strdup(dnic_arena *a, const char *s)
{
    return dnic_strndup(a, s, strlen(s));
}

char *dnic_sprintf(dnic_arena *a, const char *fmt, ...)
{
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    DNIC_ASSERT(n >= 0);
    char *p = dnic_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

void dnic_vec_push(dnic_arena *a, dnic_vec *vec, void *p)
{
    if (vec->n == vec->cap) {
        int cap = vec->cap ? vec->cap * 2 : 8;
        void **v = dnic_alloc(a, (size_t)cap * sizeof *v);
        if (vec->n)
            memcpy(v, vec->v, (size_t)vec->n * sizeof *v);
        vec->v = v;
        vec->cap = cap;
    }
    vec->v[vec->n++] = p;
}
