/*
 * mapq_metrics.h - counters, gauges and histograms with labels, written out
 * in Prometheus's text exposition format (version 0.0.4).
 *
 * A registry owns its metrics and their series. A metric is declared once
 * with the names of its labels and used through the pointer returned; a
 * series is made on the first use of its label values. A metric holds at
 * most MAPQ_METRICS_SERIES_MAX series: past that, values go to one series
 * whose labels all read "_other", so a process that sees ever new node
 * names keeps bounded memory. One loop owns a registry (no locking).
 */
#ifndef MAPQ_METRICS_H
#define MAPQ_METRICS_H

#include <stddef.h>

#include "mapq_buf.h"

#define MAPQ_METRICS_SERIES_MAX 1000
#define MAPQ_METRICS_LABELS_MAX 4

enum mapq_metric_type {
    MAPQ_METRIC_COUNTER,
    MAPQ_METRIC_GAUGE,
    MAPQ_METRIC_HISTOGRAM,
};

struct mapq_metrics;
struct mapq_metric;

/* Returns an empty registry; free with mapq_metrics_free(). */
struct mapq_metrics *mapq_metrics_new(void);
/* Frees the registry and every metric declared in it; NULL is a no-op. */
void mapq_metrics_free(struct mapq_metrics *m);

/*
 * Declares a metric. name and help are copied; labels is a NULL-terminated
 * list of at most MAPQ_METRICS_LABELS_MAX label names (copied; NULL: none).
 * A histogram takes nbuckets ascending upper bounds (copied; +Inf is
 * added), others none. Metrics are written in the order declared. The
 * registry owns the returned metric.
 */
struct mapq_metric *
mapq_metrics_declare(struct mapq_metrics *m, const char *name, const char *help,
                     enum mapq_metric_type type, const char *const *labels,
                     const double *buckets, size_t nbuckets);

/*
 * values: one label value per label name of the metric (borrowed; NULL
 * when it has none). mapq_metrics_add() adds v (counters: v >= 0),
 * mapq_metrics_set() sets a gauge, mapq_metrics_observe() counts v in a
 * histogram.
 */
void mapq_metrics_add(struct mapq_metric *f, const char *const *values,
                      double v);
void mapq_metrics_set(struct mapq_metric *f, const char *const *values,
                      double v);
void mapq_metrics_observe(struct mapq_metric *f, const char *const *values,
                          double v);
/* Drops every series of f: a gauge about to be set anew from a fresh
 * reading, so that label values no longer seen disappear. */
void mapq_metrics_clear(struct mapq_metric *f);

/* Appends the exposition of every metric to out. */
void mapq_metrics_render(const struct mapq_metrics *m, struct mapq_buf *out);

#endif
