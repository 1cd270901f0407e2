/*
 * wf_problems.c - the problems a check finds, and the hints in them.
 *
 * Owns struct problems: each problem is one line with its position, kept
 * until wf_prob_flush() sorts and writes them out, past PROBLEMS_SHOWN
 * only as a count. Hints ("did you mean") are worked out for the first
 * PROBLEMS_SHOWN problems only, so that a file of many problems costs no
 * pass over all names per problem. Never reads the YAML document.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "wf_int.h"

void __attribute__((format(printf, 5, 0)))
wf_prob_vadd(struct problems *ps, const char *file, int line, int col,
             const char *fmt, va_list ap)
{
    char msg[MSG_MAX];
    struct problem *p;
    char *q;

    vsnprintf(msg, sizeof(msg), fmt, ap);
    /* One problem is one line, whatever the file's keys contain. */
    for (q = msg; *q != '\0'; q++)
        if ((unsigned char)*q < 0x20 || *q == 0x7f)
            *q = ' ';
    if (ps->n == ps->cap) {
        ps->cap = ps->cap ? 2 * ps->cap : 16;
        ps->v = mapq_xrealloc(ps->v, ps->cap * sizeof(*ps->v));
    }
    p = &ps->v[ps->n];
    p->file = file;
    p->line = line;
    p->col = col;
    p->seq = ps->n;
    p->msg = mapq_xstrdup(msg);
    ps->n++;
}

void __attribute__((format(printf, 5, 6)))
wf_prob_add(struct problems *ps, const char *file, int line, int col,
            const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    wf_prob_vadd(ps, file, line, col, fmt, ap);
    va_end(ap);
}

static int
prob_cmp(const void *a, const void *b)
{
    const struct problem *x = a, *y = b;

    if (x->line != y->line)
        return x->line < y->line ? -1 : 1;
    if (x->col != y->col)
        return x->col < y->col ? -1 : 1;
    return (x->seq > y->seq) - (x->seq < y->seq);
}

/*
 * Writes the problems to errors (sorted by position if sort) and frees.
 * Past PROBLEMS_SHOWN one line counts the rest: a file of a million
 * unknown keys is not a million lines of output.
 */
void
wf_prob_flush(struct problems *ps, bool sort, struct mapq_buf *errors)
{
    size_t i;
    const struct problem *p;

    if (sort && ps->n > 1)
        qsort(ps->v, ps->n, sizeof(*ps->v), prob_cmp);
    for (i = 0; i < ps->n; i++) {
        p = &ps->v[i];
        if (i >= PROBLEMS_SHOWN) {
            free(p->msg);
            continue;
        }
        if (p->file != NULL && p->line > 0)
            mapq_buf_printf(errors, "%s:%d:%d: %s\n", p->file, p->line, p->col,
                            p->msg);
        else if (p->file != NULL)
            mapq_buf_printf(errors, "%s: %s\n", p->file, p->msg);
        else
            mapq_buf_printf(errors, "%s\n", p->msg);
        free(p->msg);
    }
    if (ps->n > PROBLEMS_SHOWN && ps->v[0].file != NULL)
        mapq_buf_printf(errors, "%s: %zu more problems not shown\n",
                        ps->v[0].file, ps->n - PROBLEMS_SHOWN);
    else if (ps->n > PROBLEMS_SHOWN)
        mapq_buf_printf(errors, "%zu more problems not shown\n",
                        ps->n - PROBLEMS_SHOWN);
    free(ps->v);
    ps->v = NULL;
    ps->n = ps->cap = 0;
}

/* Optimal string alignment distance, or SIZE_MAX for long strings. */
static size_t
edit_distance(const char *a, const char *b)
{
    size_t d[EDIT_MAX + 1][EDIT_MAX + 1];
    size_t la = strlen(a), lb = strlen(b), i, j, v;

    if (la > EDIT_MAX || lb > EDIT_MAX)
        return SIZE_MAX;
    for (i = 0; i <= la; i++)
        d[i][0] = i;
    for (j = 0; j <= lb; j++)
        d[0][j] = j;
    for (i = 1; i <= la; i++) {
        for (j = 1; j <= lb; j++) {
            v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
            if (d[i - 1][j] + 1 < v)
                v = d[i - 1][j] + 1;
            if (d[i][j - 1] + 1 < v)
                v = d[i][j - 1] + 1;
            if (i > 1 && j > 1 && a[i - 1] == b[j - 2] &&
                a[i - 2] == b[j - 1] && d[i - 2][j - 2] + 1 < v)
                v = d[i - 2][j - 2] + 1;
            d[i][j] = v;
        }
    }
    return d[la][lb];
}

/* Writes " (did you mean 'X'?)" for the closest candidate, or "". */
const char *
wf_suggest(const char *name, const char *const *cands, size_t n, char *buf,
           size_t len)
{
    size_t i, best = SIZE_MAX, dist, bi = 0;

    buf[0] = '\0';
    for (i = 0; i < n; i++) {
        if (cands[i] == NULL)
            continue;
        dist = edit_distance(name, cands[i]);
        if (dist < best) {
            best = dist;
            bi = i;
        }
    }
    if (best <= 2 && best < strlen(name))
        snprintf(buf, len, " (did you mean '%s'?)", cands[bi]);
    return buf;
}

/* Writes "a, b, c" into buf, truncated. */
const char *
wf_join_names(const char *const *names, size_t n, char *buf, size_t len)
{
    size_t i, off = 0;
    int w;

    buf[0] = '\0';
    for (i = 0; i < n && off + 1 < len; i++) {
        w = snprintf(buf + off, len - off, "%s%s", i ? ", " : "", names[i]);
        if (w < 0 || (size_t)w >= len - off)
            break;
        off += (size_t)w;
    }
    return buf;
}

/*
 * Returns the names of n structs of size bytes at arr, whose first member
 * is their char *name (true of mapq_param, mapq_task_def and mapq_node).
 * Caller frees the array with free().
 */
const char **
wf_names_of(const void *arr, size_t n, size_t size)
{
    const char **v = mapq_xcalloc(n ? n : 1, sizeof(*v));
    size_t i;

    for (i = 0; i < n; i++)
        memcpy(&v[i], (const char *)arr + i * size, sizeof(v[i]));
    return v;
}

/* wf_suggest() among the names of n structs of size bytes at arr. */
const char *
wf_suggest_in(const char *name, const void *arr, size_t n, size_t size,
              char *buf, size_t len)
{
    const char **names = wf_names_of(arr, n, size);

    wf_suggest(name, names, n, buf, len);
    free(names);
    return buf;
}

/*
 * " (did you mean 'x'?)" if one is close, else " (WHAT: a, b)"; "" once
 * ps holds PROBLEMS_SHOWN problems. A hint costs a pass over all the names,
 * and a file of many problems must not cost one pass per problem.
 */
const char *
wf_hint_names(const struct problems *ps, const char *name, const void *arr,
              size_t n, size_t size, const char *what, char *buf, size_t len)
{
    const char **names;
    char list[MSG_MAX / 2];

    buf[0] = '\0';
    if (ps->n >= PROBLEMS_SHOWN)
        return buf;
    names = wf_names_of(arr, n, size);
    wf_suggest(name, names, n, buf, len);
    if (buf[0] == '\0' && n > 0)
        snprintf(buf, len, " (%s: %s)", what,
                 wf_join_names(names, n, list, sizeof(list)));
    free(names);
    return buf;
}
