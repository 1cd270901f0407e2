/*
 * mapq_buf.h - a growable byte buffer with an optional size cap.
 *
 * Invariants: data is NULL only when cap == 0; len <= cap; when cap > 0,
 * data[len] == '\0' (one byte is always reserved), so text can be used as a
 * C string. max == 0 means no cap; otherwise appends that would make len
 * exceed max fail with MAPQ_ETOOBIG and leave the buffer unchanged.
 * Embedded: mapq_buf_init() / mapq_buf_release().
 */
#ifndef MAPQ_BUF_H
#define MAPQ_BUF_H

#include <stddef.h>

#include "mapq_err.h"

struct mapq_buf {
    char *data;
    size_t len;
    size_t cap; /* allocated bytes, not counting the reserved NUL */
    size_t max; /* 0: unlimited */
};

#define MAPQ_BUF_INIT \
    {                 \
        NULL, 0, 0, 0 \
    }

void mapq_buf_init(struct mapq_buf *b, size_t max);
/* Frees the storage; b may be reused after mapq_buf_init(). */
void mapq_buf_release(struct mapq_buf *b);
/* Empties b, keeping its storage. */
void mapq_buf_reset(struct mapq_buf *b);
enum mapq_err mapq_buf_append(struct mapq_buf *b, const void *p, size_t n);
enum mapq_err mapq_buf_appendstr(struct mapq_buf *b, const char *s);
enum mapq_err mapq_buf_printf(struct mapq_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Drops all but the last max bytes of b (when it holds more), and up to
 * three more so that what stays starts on a UTF-8 boundary: the tail of
 * a log. */
void mapq_buf_keep_tail(struct mapq_buf *b, size_t max);
/* Hands the bytes to the caller (who frees them with free()), leaves b empty.
 * Never returns NULL. */
char *mapq_buf_detach(struct mapq_buf *b, size_t *len);

/* msgpack_packer write callback: data is a struct mapq_buf *. */
int mapq_buf_msgpack_write(void *data, const char *buf, size_t len);

#endif
