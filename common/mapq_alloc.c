/*
 * mapq_alloc.c - aborting allocation wrappers and the always-on assert.
 */
#include "mapq_alloc.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static _Noreturn void
oom(size_t size)
{
    fprintf(stderr, "mapq: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
mapq_xmalloc(size_t size)
{
    void *p = malloc(size ? size : 1);

    if (p == NULL)
        oom(size);
    return p;
}

void *
mapq_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);

    if (p == NULL)
        oom(nmemb * size);
    return p;
}

void *
mapq_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);

    if (p == NULL)
        oom(size);
    return p;
}

char *
mapq_xstrdup(const char *s)
{
    return mapq_xmemdup(s, strlen(s) + 1);
}

char *
mapq_xstrndup(const char *s, size_t n)
{
    char *p = mapq_xmalloc(n + 1);

    if (n > 0) /* s may be NULL then: msgpack's empty str */
        memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void *
mapq_xmemdup(const void *p, size_t n)
{
    void *q = mapq_xmalloc(n);

    if (n > 0)
        memcpy(q, p, n);
    return q;
}

char *
mapq_xasprintf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *s;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    mapq_assert(n >= 0);
    s = mapq_xmalloc((size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(s, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return s;
}

void
mapq_assert_fail(const char *expr, const char *file, int line)
{
    fprintf(stderr, "mapq: %s:%d: assertion failed: %s\n", file, line, expr);
    abort();
}
