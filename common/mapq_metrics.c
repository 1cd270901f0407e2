/*
 * mapq_metrics.c - a registry of labelled metrics and its text exposition
 * (https://prometheus.io/docs/instrumenting/exposition_formats/).
 *
 * Each metric keeps its series in an array searched by label values: a
 * process has tens of series per metric, and a scrape every few seconds.
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_log.h"
#include "mapq_metrics.h"

static const char *const other_values[MAPQ_METRICS_LABELS_MAX] = {
    "_other", "_other", "_other", "_other"};

struct series {
    char *values[MAPQ_METRICS_LABELS_MAX]; /* owned */
    double value;     /* counter, gauge; histogram: the sum */
    uint64_t *counts; /* histogram: per bucket, not cumulative; the last
                         is +Inf (owned) */
    uint64_t count;   /* histogram: observations */
};

struct mapq_metric {
    char *name, *help;
    enum mapq_metric_type type;
    char *labels[MAPQ_METRICS_LABELS_MAX];
    size_t nlabels;
    double *buckets; /* histogram upper bounds, +Inf not included */
    size_t nbuckets;
    struct series *series;
    size_t nseries, cap;
};

struct mapq_metrics {
    struct mapq_metric **metrics;
    size_t n;
};

struct mapq_metrics *
mapq_metrics_new(void)
{
    return mapq_xcalloc(1, sizeof(struct mapq_metrics));
}

static void
series_release(const struct mapq_metric *f, struct series *s)
{
    size_t j;

    for (j = 0; j < f->nlabels; j++)
        free(s->values[j]);
    free(s->counts);
}

void
mapq_metrics_clear(struct mapq_metric *f)
{
    size_t k;

    for (k = 0; k < f->nseries; k++)
        series_release(f, &f->series[k]);
    f->nseries = 0;
}

static void
metric_free(struct mapq_metric *f)
{
    size_t j;

    mapq_metrics_clear(f);
    free(f->series);
    for (j = 0; j < f->nlabels; j++)
        free(f->labels[j]);
    free(f->buckets);
    free(f->name);
    free(f->help);
    free(f);
}

void
mapq_metrics_free(struct mapq_metrics *m)
{
    size_t k;

    if (m == NULL)
        return;
    for (k = 0; k < m->n; k++)
        metric_free(m->metrics[k]);
    free(m->metrics);
    free(m);
}

struct mapq_metric *
mapq_metrics_declare(struct mapq_metrics *m, const char *name, const char *help,
                     enum mapq_metric_type type, const char *const *labels,
                     const double *buckets, size_t nbuckets)
{
    struct mapq_metric *f = mapq_xcalloc(1, sizeof(*f));

    mapq_assert((type == MAPQ_METRIC_HISTOGRAM) == (nbuckets > 0));
    f->name = mapq_xstrdup(name);
    f->help = mapq_xstrdup(help);
    f->type = type;
    while (labels != NULL && labels[f->nlabels] != NULL) {
        mapq_assert(f->nlabels < MAPQ_METRICS_LABELS_MAX);
        f->labels[f->nlabels] = mapq_xstrdup(labels[f->nlabels]);
        f->nlabels++;
    }
    if (nbuckets > 0) {
        f->buckets = mapq_xcalloc(nbuckets, sizeof(double));
        memcpy(f->buckets, buckets, nbuckets * sizeof(double));
        f->nbuckets = nbuckets;
    }
    m->metrics =
        mapq_xrealloc(m->metrics, (m->n + 1) * sizeof(struct mapq_metric *));
    m->metrics[m->n++] = f;
    return f;
}

static bool
series_is(const struct mapq_metric *f, const struct series *s,
          const char *const *values)
{
    size_t j;

    for (j = 0; j < f->nlabels; j++)
        if (strcmp(s->values[j], values[j]) != 0)
            return false;
    return true;
}

/* The series of values, made if new (the "_other" one past the cap). */
static struct series *
series_get(struct mapq_metric *f, const char *const *values)
{
    struct series *s;
    size_t k, j;

    for (k = 0; k < f->nseries; k++)
        if (series_is(f, &f->series[k], values))
            return &f->series[k];
    if (f->nseries >= MAPQ_METRICS_SERIES_MAX - 1 && f->nlabels > 0 &&
        values != other_values)
        return series_get(f, other_values);
    if (f->nseries == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 8;
        f->series = mapq_xrealloc(f->series, f->cap * sizeof(*f->series));
    }
    s = &f->series[f->nseries++];
    memset(s, 0, sizeof(*s));
    for (j = 0; j < f->nlabels; j++)
        s->values[j] = mapq_xstrdup(values[j]);
    if (f->type == MAPQ_METRIC_HISTOGRAM)
        s->counts = mapq_xcalloc(f->nbuckets + 1, sizeof(uint64_t));
    return s;
}

void
mapq_metrics_add(struct mapq_metric *f, const char *const *values, double v)
{
    mapq_assert(f->type != MAPQ_METRIC_HISTOGRAM);
    mapq_assert(f->type == MAPQ_METRIC_GAUGE || v >= 0);
    series_get(f, values)->value += v;
}

void
mapq_metrics_set(struct mapq_metric *f, const char *const *values, double v)
{
    mapq_assert(f->type == MAPQ_METRIC_GAUGE);
    series_get(f, values)->value = v;
}

void
mapq_metrics_observe(struct mapq_metric *f, const char *const *values, double v)
{
    struct series *s;
    size_t b = 0;

    mapq_assert(f->type == MAPQ_METRIC_HISTOGRAM);
    s = series_get(f, values);
    while (b < f->nbuckets && v > f->buckets[b])
        b++;
    s->counts[b]++;
    s->count++;
    s->value += v;
}

/* ---- exposition --------------------------------------------------------- */

static void
put_number(struct mapq_buf *out, double v)
{
    if (isinf(v))
        mapq_buf_appendstr(out, v > 0 ? "+Inf" : "-Inf");
    else if (isnan(v))
        mapq_buf_appendstr(out, "NaN");
    else if (v == floor(v) && fabs(v) < 9007199254740992.0)
        mapq_buf_printf(out, "%.0f", v);
    else
        mapq_buf_printf(out, "%.15g", v);
}

/* A label value or help text: backslash and newline escaped, and in label
 * values the double quote too. */
static void
put_escaped(struct mapq_buf *out, const char *s, bool quote)
{
    for (; *s != '\0'; s++) {
        if (*s == '\\')
            mapq_buf_appendstr(out, "\\\\");
        else if (*s == '\n')
            mapq_buf_appendstr(out, "\\n");
        else if (*s == '"' && quote)
            mapq_buf_appendstr(out, "\\\"");
        else
            mapq_buf_append(out, s, 1);
    }
}

/* "{a="x",b="y"}", with le="bound" last when le is not NULL; nothing
 * when there are no labels at all. */
static void
put_labels(struct mapq_buf *out, const struct mapq_metric *f,
           const struct series *s, const char *le)
{
    size_t j;

    if (f->nlabels == 0 && le == NULL)
        return;
    mapq_buf_appendstr(out, "{");
    for (j = 0; j < f->nlabels; j++) {
        mapq_buf_printf(out, "%s%s=\"", j ? "," : "", f->labels[j]);
        put_escaped(out, s->values[j], true);
        mapq_buf_appendstr(out, "\"");
    }
    if (le != NULL)
        mapq_buf_printf(out, "%sle=\"%s\"", f->nlabels ? "," : "", le);
    mapq_buf_appendstr(out, "}");
}

static void
put_histogram(struct mapq_buf *out, const struct mapq_metric *f,
              const struct series *s)
{
    struct mapq_buf le = MAPQ_BUF_INIT;
    uint64_t below = 0;
    size_t b;

    for (b = 0; b <= f->nbuckets; b++) {
        below += s->counts[b];
        mapq_buf_reset(&le);
        if (b < f->nbuckets)
            put_number(&le, f->buckets[b]);
        else
            mapq_buf_appendstr(&le, "+Inf");
        mapq_buf_printf(out, "%s_bucket", f->name);
        put_labels(out, f, s, le.data);
        mapq_buf_printf(out, " %llu\n", (unsigned long long)below);
    }
    mapq_buf_printf(out, "%s_sum", f->name);
    put_labels(out, f, s, NULL);
    mapq_buf_appendstr(out, " ");
    put_number(out, s->value);
    mapq_buf_printf(out, "\n%s_count", f->name);
    put_labels(out, f, s, NULL);
    mapq_buf_printf(out, " %llu\n", (unsigned long long)s->count);
    mapq_buf_release(&le);
}

void
mapq_metrics_render(const struct mapq_metrics *m, struct mapq_buf *out)
{
    static const char *const types[] = {"counter", "gauge", "histogram"};
    size_t k, i;

    for (k = 0; k < m->n; k++) {
        const struct mapq_metric *f = m->metrics[k];

        mapq_buf_printf(out, "# HELP %s ", f->name);
        put_escaped(out, f->help, false);
        mapq_buf_printf(out, "\n# TYPE %s %s\n", f->name, types[f->type]);
        for (i = 0; i < f->nseries; i++) {
            const struct series *s = &f->series[i];

            if (f->type == MAPQ_METRIC_HISTOGRAM) {
                put_histogram(out, f, s);
                continue;
            }
            mapq_buf_appendstr(out, f->name);
            put_labels(out, f, s, NULL);
            mapq_buf_appendstr(out, " ");
            put_number(out, s->value);
            mapq_buf_appendstr(out, "\n");
        }
    }
}
