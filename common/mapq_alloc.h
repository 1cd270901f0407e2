/*
 * mapq_alloc.h - allocation that never returns NULL.
 *
 * Out of memory is not a recoverable condition for mapq's processes: these
 * wrappers log one line and abort, so callers carry no NULL checks. Anything
 * whose size is chosen by a peer must be capped before it reaches here.
 */
#ifndef MAPQ_ALLOC_H
#define MAPQ_ALLOC_H

#include <stddef.h>

/* Like malloc/calloc/realloc/strdup/strndup; abort on failure. Caller frees
 * with free(). */
void *mapq_xmalloc(size_t size);
void *mapq_xcalloc(size_t nmemb, size_t size);
void *mapq_xrealloc(void *ptr, size_t size);
char *mapq_xstrdup(const char *s);
char *mapq_xstrndup(const char *s, size_t n);
void *mapq_xmemdup(const void *p, size_t n);

/* Returns a newly allocated formatted string; caller frees with free(). */
char *mapq_xasprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

/* Logs "file:line: assertion failed: expr" and aborts, also in release. */
#define mapq_assert(expr) \
    ((expr) ? (void)0 : mapq_assert_fail(#expr, __FILE__, __LINE__))
_Noreturn void mapq_assert_fail(const char *expr, const char *file, int line);

#endif
