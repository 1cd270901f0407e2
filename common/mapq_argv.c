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

size_t
mapq_argv_digits(char *buf, uint64_t v)
{
    char tmp[MAPQ_ARGV_DIGITS];
    size_t i = sizeof(tmp);

    do {
        tmp[--i] = (char)('0' + v % 10);
        v /= 10;
    } while (v > 0);
    memcpy(buf, tmp + i, sizeof(tmp) - i);
    return sizeof(tmp) - i;
}

size_t
mapq_argv_sdigits(char *buf, int64_t v)
{
    if (v >= 0)
        return mapq_argv_digits(buf, (uint64_t)v);
    buf[0] = '-';
    /* -v as unsigned, which INT64_MIN has too */
    return 1 + mapq_argv_digits(buf + 1, 0 - (uint64_t)v);
}

void
mapq_argv_addint(struct mapq_argv *a, int64_t v)
{
    char buf[MAPQ_ARGV_DIGITS + 1];

    mapq_argv_addlen(a, buf, mapq_argv_sdigits(buf, v));
}

/* Writes "<lead><n>\r\n" at p; returns the end. */
static char *
put_count(char *p, char lead, size_t n)
{
    *p++ = lead;
    p += mapq_argv_digits(p, n);
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Made without hiredis's printf-style formatter, which cost an agent about
 * 9,000 instructions per command subtask. */
char *
mapq_argv_resp(int argc, const char **argv, const size_t *argvlen, size_t *len)
{
    size_t n = 32, a;
    char *s, *p;
    int i;

    for (i = 0; i < argc; i++)
        n += (argvlen ? argvlen[i] : strlen(argv[i])) + 32;
    s = p = mapq_xmalloc(n);
    p = put_count(p, '*', (size_t)argc);
    for (i = 0; i < argc; i++) {
        a = argvlen ? argvlen[i] : strlen(argv[i]);
        p = put_count(p, '$', a);
        memcpy(p, argv[i], a);
        p += a;
        *p++ = '\r';
        *p++ = '\n';
    }
    *len = (size_t)(p - s);
    *p = '\0';
    return s;
}
