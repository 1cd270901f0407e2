/*
 * mapq_log.c - timestamped log lines on stderr; the only global in common/.
 */
#include "mapq_log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum mapq_log_level mapq_log_threshold = MAPQ_LOG_INFO;
static const char *log_component = "mapq";

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "silent"};

void
mapq_log_init(const char *component, enum mapq_log_level level)
{
    log_component = component;
    mapq_log_threshold = level;
}

void
mapq_log_write(enum mapq_log_level level, const char *file, int line,
               int errnum, const char *fmt, ...)
{
    char msg[2048], stamp[32];
    struct timeval tv;
    struct tm tm;
    const char *base = strrchr(file, '/');
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    fprintf(stderr, "%s.%03ldZ %s[%ld] %s %s:%d %s%s%s\n", stamp,
            (long)(tv.tv_usec / 1000), log_component, (long)getpid(),
            level_names[level], base ? base + 1 : file, line, msg,
            errnum ? ": " : "", errnum ? strerror(errnum) : "");
}
