/*
 * bench_python.h - mapq-bench's Python figures: the modules persistent
 * workers import, and Celery's rate for the same function on the same
 * Redis (when Celery is installed).
 */
#ifndef MAPQ_BENCH_PYTHON_H
#define MAPQ_BENCH_PYTHON_H

#include <stddef.h>

/*
 * Creates a temporary directory (its path into dir, len bytes) holding
 * the module mapq_bench_fn (square(x)) and Celery's script, and puts it
 * and the project's Python helper on PYTHONPATH, for the agents started
 * after. 0, or -1 with the reason on stderr. Remove with
 * bench_python_cleanup().
 */
int bench_python_prepare(char *dir, size_t len);

/*
 * Runs n square tasks through Celery (prefork, conc processes) on the
 * Redis at url (borrowed), from the first send to the last result: 0 and
 * the rate in *rate; 1 when Celery or its Redis client is not installed;
 * -1 when it failed.
 */
int bench_python_celery(const char *dir, const char *url, long n, int conc,
                        double *rate);

/* Removes the directory made by bench_python_prepare(); "" or NULL: no-op. */
void bench_python_cleanup(const char *dir);

#endif
