/*
 * mapq_argv.c - argument vectors for Redis commands.
 */
#include "mapq_argv.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"

void
mapq_argv_init(struct mapq_argv *a)
{
    memset(a, 0, sizeof(*a));
}

void
mapq_argv_reset(struct mapq_argv *a)
{
    int i;

    for (i = 0; i < a->argc; i++)
        free(a->owned[i]);
    a->argc = 0;
}

void
mapq_argv_release(struct mapq_argv *a)
{
    mapq_argv_reset(a);
    free(a->argv);
    free(a->lens);
    free(a->owned);
    mapq_argv_init(a);
}

void
mapq_argv_addlen(struct mapq_argv *a, const void *p, size_t n)
{
    if (a->argc == a->cap) {
        a->cap = a->cap ? a->cap * 2 : 16;
        a->argv = mapq_xrealloc(a->argv, (size_t)a->cap * sizeof(*a->argv));
        a->lens = mapq_xrealloc(a->lens, (size_t)a->cap * sizeof(*a->lens));
        a->owned = mapq_xrealloc(a->owned, (size_t)a->cap * sizeof(*a->owned));
    }
    /* Terminated too, so that argv[0] can be printed as a name. */
    a->owned[a->argc] = mapq_xstrndup(p, n);
    a->argv[a->argc] = a->owned[a->argc];
    a->lens[a->argc] = n;
    a->argc++;
}

void
mapq_argv_add(struct mapq_argv *a, const char *s)
{
    mapq_argv_addlen(a, s, strlen(s));
}

void
mapq_argv_addf(struct mapq_argv *a, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    mapq_assert(n >= 0 && (size_t)n < sizeof(buf));
    mapq_argv_addlen(a, buf, (size_t)n);
}
