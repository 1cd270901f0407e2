/*
 * mapq_log.c - timestamped log lines on stderr, as text or JSON; the only
 * globals in common/.
 */
#include "mapq_log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "mapq_buf.h"
#include "mapq_json.h"

enum mapq_log_level mapq_log_threshold = MAPQ_LOG_INFO;
static const char *log_component = "mapq";
static bool log_json;

static const char *const level_names[] = {"debug", "info", "warn", "error",
                                          "silent"};

void
mapq_log_init(const char *component, enum mapq_log_level level)
{
    log_component = component;
    mapq_log_threshold = level;
}

int
mapq_log_set_format(const char *name)
{
    if (strcmp(name, "text") != 0 && strcmp(name, "json") != 0)
        return -1;
    log_json = strcmp(name, "json") == 0;
    return 0;
}

/* One JSON object on one line: the message (any bytes: what is not UTF-8
 * becomes U+FFFD) as a JSON string, written in one call. */
static void
write_json(const char *stamp, long ms, enum mapq_log_level level,
           const char *file, int line, const char *msg)
{
    struct mapq_buf out = MAPQ_BUF_INIT;
    char head[256];
    int n;

    n = snprintf(head, sizeof(head),
                 "{\"time\":\"%s.%03ldZ\",\"component\":", stamp, ms);
    mapq_buf_append(&out, head, (size_t)n);
    mapq_json_append_text(&out, log_component, strlen(log_component));
    n = snprintf(head, sizeof(head),
                 ",\"pid\":%ld,\"level\":\"%s\",\"file\":", (long)getpid(),
                 level_names[level]);
    mapq_buf_append(&out, head, (size_t)n);
    mapq_json_append_text(&out, file, strlen(file));
    n = snprintf(head, sizeof(head), ",\"line\":%d,\"msg\":", line);
    mapq_buf_append(&out, head, (size_t)n);
    mapq_json_append_text(&out, msg, strlen(msg));
    mapq_buf_append(&out, "}\n", 2);
    fwrite(out.data, 1, out.len, stderr);
    mapq_buf_release(&out);
}

void
mapq_log_write(enum mapq_log_level level, const char *file, int line,
               int errnum, const char *fmt, ...)
{
    char msg[2048], stamp[32];
    struct timeval tv;
    struct tm tm;
    const char *base = strrchr(file, '/');
    size_t n;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (errnum != 0) {
        n = strlen(msg);
        snprintf(msg + n, sizeof(msg) - n, ": %s", strerror(errnum));
    }
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
    file = base ? base + 1 : file;
    if (log_json)
        write_json(stamp, (long)(tv.tv_usec / 1000), level, file, line, msg);
    else
        fprintf(stderr, "%s.%03ldZ %s[%ld] %s %s:%d %s\n", stamp,
                (long)(tv.tv_usec / 1000), log_component, (long)getpid(),
                level_names[level], file, line, msg);
}
