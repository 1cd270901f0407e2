/*
 * mapq_err.h - error codes shared by every module.
 *
 * Functions that can fail return an enum mapq_err (MAPQ_OK is 0). When the
 * reason needs words, they also fill a caller-provided char err[MAPQ_ERR_LEN].
 * common/ never logs or exits: the caller logs once.
 */
#ifndef MAPQ_ERR_H
#define MAPQ_ERR_H

#include <stddef.h>

#define MAPQ_ERR_LEN 512

enum mapq_err {
    MAPQ_OK = 0,
    MAPQ_EINVAL,    /* bad argument or bad input */
    MAPQ_EPROTO,    /* malformed message or reply */
    MAPQ_ETOOBIG,   /* over a documented size cap */
    MAPQ_EIO,       /* system call failed */
    MAPQ_EREDIS,    /* redis unreachable or replied with an error */
    MAPQ_ETIMEDOUT, /* a deadline passed */
    MAPQ_ENOENT,    /* no such thing */
    MAPQ_ETYPE,     /* value does not match its declared type */
    MAPQ_ESEAL,     /* unsigned, or not signed with our secret */
};

/* Returns a static lowercase description of err. */
const char *mapq_strerror(enum mapq_err err);

/*
 * Formats into err (MAPQ_ERR_LEN bytes) like snprintf and returns code, so
 * that a failing path reads: return mapq_err_set(err, MAPQ_EINVAL, "...").
 * err may be NULL.
 */
enum mapq_err mapq_err_set(char *err, enum mapq_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
