/*
 * mapq_buf.c - growable, optionally capped byte buffer.
 */
#include "mapq_buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"

void
mapq_buf_init(struct mapq_buf *b, size_t max)
{
    b->data = NULL;
    b->len = 0;
    b->cap = 0;
    b->max = max;
}

void
mapq_buf_release(struct mapq_buf *b)
{
    free(b->data);
    mapq_buf_init(b, b->max);
}

void
mapq_buf_reset(struct mapq_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

static enum mapq_err
grow(struct mapq_buf *b, size_t extra)
{
    size_t want, ncap;

    if (extra > ((size_t)-1) / 2 - b->len)
        return MAPQ_ETOOBIG;
    want = b->len + extra;
    if (b->max != 0 && want > b->max)
        return MAPQ_ETOOBIG;
    if (want <= b->cap && b->data != NULL)
        return MAPQ_OK;
    ncap = b->cap ? b->cap : 64;
    while (ncap < want)
        ncap *= 2;
    b->data = mapq_xrealloc(b->data, ncap + 1);
    b->cap = ncap;
    return MAPQ_OK;
}

enum mapq_err
mapq_buf_append(struct mapq_buf *b, const void *p, size_t n)
{
    enum mapq_err rc = grow(b, n);

    if (rc != MAPQ_OK)
        return rc;
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return MAPQ_OK;
}

enum mapq_err
mapq_buf_appendstr(struct mapq_buf *b, const char *s)
{
    return mapq_buf_append(b, s, strlen(s));
}

enum mapq_err
mapq_buf_printf(struct mapq_buf *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    enum mapq_err rc;

    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return MAPQ_EINVAL;
    rc = grow(b, (size_t)n);
    if (rc != MAPQ_OK)
        return rc;
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return MAPQ_OK;
}

void
mapq_buf_keep_tail(struct mapq_buf *b, size_t max)
{
    size_t skip, i;

    if (b->len <= max)
        return;
    skip = b->len - max;
    for (i = 0; i < 3 && skip < b->len &&
                ((unsigned char)b->data[skip] & 0xC0) == 0x80;
         i++)
        skip++;
    memmove(b->data, b->data + skip, b->len - skip);
    b->len -= skip;
    b->data[b->len] = '\0';
}

char *
mapq_buf_detach(struct mapq_buf *b, size_t *len)
{
    char *p;

    if (b->data == NULL)
        grow(b, 0);
    p = b->data;
    if (len != NULL)
        *len = b->len;
    mapq_buf_init(b, b->max);
    return p;
}

int
mapq_buf_msgpack_write(void *data, const char *buf, size_t len)
{
    return mapq_buf_append(data, buf, len) == MAPQ_OK ? 0 : -1;
}
