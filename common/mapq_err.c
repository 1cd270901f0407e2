/*
 * mapq_err.c - error strings and the err out-buffer helper.
 */
#include "mapq_err.h"

#include <stdarg.h>
#include <stdio.h>

const char *
mapq_strerror(enum mapq_err err)
{
    switch (err) {
    case MAPQ_OK:
        return "success";
    case MAPQ_EINVAL:
        return "invalid input";
    case MAPQ_EPROTO:
        return "protocol error";
    case MAPQ_ETOOBIG:
        return "value too large";
    case MAPQ_EIO:
        return "i/o error";
    case MAPQ_EREDIS:
        return "redis error";
    case MAPQ_ETIMEDOUT:
        return "timed out";
    case MAPQ_ENOENT:
        return "not found";
    case MAPQ_ETYPE:
        return "type mismatch";
    case MAPQ_ESEAL:
        return "bad or missing signature";
    }
    return "unknown error";
}

enum mapq_err
mapq_err_set(char *err, enum mapq_err code, const char *fmt, ...)
{
    va_list ap;

    if (err != NULL) {
        va_start(ap, fmt);
        vsnprintf(err, MAPQ_ERR_LEN, fmt, ap);
        va_end(ap);
    }
    return code;
}
