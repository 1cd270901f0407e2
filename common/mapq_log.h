/*
 * mapq_log.h - the process-wide log sink (stderr).
 *
 * Lines read: ISO time, component[pid], level, file.c:line, message; or,
 * in the JSON format, one object per line with the same fields (time,
 * component, pid, level, file, line, msg). The mapq_log() macro checks the
 * level before evaluating its arguments. Only programs log; library code
 * in common/ returns errors instead.
 */
#ifndef MAPQ_LOG_H
#define MAPQ_LOG_H

enum mapq_log_level {
    MAPQ_LOG_DEBUG = 0,
    MAPQ_LOG_INFO,
    MAPQ_LOG_WARN,
    MAPQ_LOG_ERROR,
    MAPQ_LOG_SILENT,
};

extern enum mapq_log_level mapq_log_threshold;

/* Sets the component name shown on each line (borrowed, must outlive use). */
void mapq_log_init(const char *component, enum mapq_log_level level);

/* Sets the format of the lines from name, "text" (the default) or "json";
 * returns -1 for any other name, changing nothing. */
int mapq_log_set_format(const char *name);

void mapq_log_write(enum mapq_log_level level, const char *file, int line,
                    int errnum, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

#define mapq_log(level, ...)                                             \
    do {                                                                 \
        if ((level) >= mapq_log_threshold)                               \
            mapq_log_write((level), __FILE__, __LINE__, 0, __VA_ARGS__); \
    } while (0)

/* Like mapq_log, appending ": strerror(errnum)"; pass the saved errno. */
#define mapq_log_errno(level, errnum, ...)                        \
    do {                                                          \
        if ((level) >= mapq_log_threshold)                        \
            mapq_log_write((level), __FILE__, __LINE__, (errnum), \
                           __VA_ARGS__);                          \
    } while (0)

#endif
