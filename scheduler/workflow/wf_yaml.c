/*
 * wf_yaml.c - loading files and YAML documents, and the YAML 1.2 core
 * schema of their scalars.
 *
 * libyaml's document API loads the whole file as a graph of nodes that
 * keep their position; the limits are checked on its events before the
 * graph is built (mapq_yaml_guard.h). Scalars are resolved here (null,
 * bool, int, float or string) and described for messages. Owns nothing
 * past a call: a loaded document belongs to the caller.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mapq_alloc.h"
#include "mapq_yaml_guard.h"
#include "wf_int.h"

/* ---- YAML 1.2 core schema scalars -------------------------------------- */

static bool
str_in(const char *s, size_t len, const char *const *set)
{
    for (; *set != NULL; set++)
        if (strlen(*set) == len && memcmp(s, *set, len) == 0)
            return true;
    return false;
}

/* Counts the leading characters of s (len) that are digits of base. */
static size_t
span_digits(const char *s, size_t len, int base)
{
    size_t n = 0;
    char c;

    for (; n < len; n++) {
        c = s[n];
        if (base == 8 && c >= '0' && c <= '7')
            continue;
        if (base == 10 && is_digit(c))
            continue;
        if (base == 16 &&
            (is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
            continue;
        break;
    }
    return n;
}

/* Core schema int: [-+]?[0-9]+ | 0o[0-7]+ | 0x[0-9a-fA-F]+. */
static bool
resolve_int(const char *s, size_t len, struct scal *v)
{
    const char *p = s;
    size_t n = len;
    bool neg = false;
    int base = 10;
    unsigned long long u;

    if (n > 2 && p[0] == '0' && (p[1] == 'x' || p[1] == 'o')) {
        base = p[1] == 'x' ? 16 : 8;
        p += 2;
        n -= 2;
    } else if (n > 0 && (p[0] == '-' || p[0] == '+')) {
        neg = p[0] == '-';
        p++;
        n--;
    }
    if (n == 0 || span_digits(p, n, base) != n)
        return false;
    errno = 0;
    u = strtoull(p, NULL, base);
    if (errno == ERANGE || (neg && u > (uint64_t)INT64_MAX + 1)) {
        v->kind = SK_RANGE;
    } else if (neg) {
        v->kind = SK_INT;
        v->i = u == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)u;
    } else if (u <= (uint64_t)INT64_MAX) {
        v->kind = SK_INT;
        v->i = (int64_t)u;
    } else {
        v->kind = SK_UINT;
        v->u = u;
    }
    return true;
}

/* Core schema float: [-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?. */
static bool
resolve_float(const char *s, size_t len, struct scal *v)
{
    static const char *const infs[] = {".inf", ".Inf", ".INF", NULL};
    static const char *const nans[] = {".nan", ".NaN", ".NAN", NULL};
    size_t i = 0, n;
    bool sign = len > 0 && (s[0] == '-' || s[0] == '+');

    if (str_in(s + sign, len - sign, infs)) {
        v->kind = SK_FLOAT;
        v->d = s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
        return true;
    }
    if (str_in(s, len, nans)) {
        v->kind = SK_FLOAT;
        v->d = NAN;
        return true;
    }
    i = sign;
    n = span_digits(s + i, len - i, 10);
    i += n;
    if (i < len && s[i] == '.') {
        i++;
        i += span_digits(s + i, len - i, 10);
        if (n == 0 && i == sign + 1u)
            return false;
    } else if (n == 0) {
        return false;
    }
    if (i < len && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        if (i < len && (s[i] == '-' || s[i] == '+'))
            i++;
        n = span_digits(s + i, len - i, 10);
        if (n == 0)
            return false;
        i += n;
    }
    if (i != len)
        return false;
    v->kind = SK_FLOAT;
    v->d = strtod(s, NULL);
    return true;
}

/* Resolves a scalar with the core schema; quoted scalars are strings. */
void
wf_resolve(const char *s, size_t len, bool plain, struct scal *v)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const trues[] = {"true", "True", "TRUE", NULL};
    static const char *const falses[] = {"false", "False", "FALSE", NULL};

    memset(v, 0, sizeof(*v));
    v->kind = SK_STR;
    if (!plain || strlen(s) != len)
        return;
    if (str_in(s, len, nulls)) {
        v->kind = SK_NULL;
    } else if (str_in(s, len, trues) || str_in(s, len, falses)) {
        v->kind = SK_BOOL;
        v->b = str_in(s, len, trues);
    } else if (!resolve_int(s, len, v)) {
        resolve_float(s, len, v);
    }
}

/* How a scalar reads in a message: null, 5, 1.5, true or "quoted". */
const char *
wf_describe_text(const char *s, size_t len, bool plain, char *buf, size_t blen)
{
    struct scal v;
    size_t n = len;

    wf_resolve(s, len, plain, &v);
    if (v.kind == SK_NULL && plain)
        return "null";
    if (n > SHOW_MAX) {
        n = SHOW_MAX;
        while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
            n--;
    }
    snprintf(buf, blen, v.kind == SK_STR ? "\"%.*s%s\"" : "%.*s%s", (int)n, s,
             n < len ? "..." : "");
    return buf;
}

const char *
wf_describe(const yaml_node_t *n, char *buf, size_t blen)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return wf_describe_text(stext(n), slen(n), is_plain(n), buf, blen);
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a dict";
    default:
        return "nothing";
    }
}

/* True when n is a string scalar: quoted, or plain and not null/bool/num. */
bool
wf_is_string(const yaml_node_t *n)
{
    struct scal v;

    if (n->type != YAML_SCALAR_NODE)
        return false;
    wf_resolve(stext(n), slen(n), is_plain(n), &v);
    return v.kind == SK_STR;
}

/* ---- duplicate keys ---------------------------------------------------- */

struct keyref {
    const char *s;
    size_t len;
    size_t idx;
};

static int
keyref_cmp(const void *a, const void *b)
{
    const struct keyref *x = a, *y = b;
    int c;

    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    c = memcmp(x->s, y->s, x->len);
    if (c != 0)
        return c;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/*
 * Sets dup[i] for every pair i of map whose scalar key repeats the key of
 * an earlier pair. Sorting keeps this O(n log n) for big literal dicts.
 */
void
wf_mark_dups(yaml_document_t *doc, const yaml_node_t *map, bool *dup)
{
    size_t n = npairs(map), i, k = 0;
    struct keyref *v = mapq_xcalloc(n ? n : 1, sizeof(*v));
    const yaml_node_t *key;

    for (i = 0; i < n; i++) {
        dup[i] = false;
        key = node_of(doc, map->data.mapping.pairs.start[i].key);
        if (key == NULL || key->type != YAML_SCALAR_NODE)
            continue;
        v[k].s = stext(key);
        v[k].len = slen(key);
        v[k].idx = i;
        k++;
    }
    qsort(v, k, sizeof(*v), keyref_cmp);
    for (i = 1; i < k; i++)
        if (v[i].len == v[i - 1].len &&
            memcmp(v[i].s, v[i - 1].s, v[i].len) == 0)
            dup[v[i].idx] = true;
    free(v);
}

/* ---- loading ----------------------------------------------------------- */

/* 1-based line and column of byte offset off in text. */
static void
offset_pos(const char *text, size_t len, size_t off, int *line, int *col)
{
    size_t i;

    *line = 1;
    *col = 1;
    for (i = 0; i < off && i < len; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

/*
 * Loads the single YAML document in text into doc (caller deletes it with
 * yaml_document_delete()). On failure returns false with a message and its
 * 1-based position; doc is then not initialised.
 */
bool
wf_load_doc(const char *text, size_t len, yaml_document_t *doc, char *msg,
            size_t mlen, int *line, int *col)
{
    yaml_parser_t parser;
    enum mapq_err rc;
    bool ok;

    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    /* Limits are checked as the events arrive, before anything past them
     * is built (mapq_yaml_guard.h). */
    rc = mapq_yaml_guard_load(&parser, doc, msg, mlen, line, col);
    if (rc != MAPQ_OK && rc != MAPQ_EPROTO) {
        yaml_parser_delete(&parser);
        return false;
    }
    ok = rc == MAPQ_OK;
    if (!ok) {
        if (parser.error == YAML_READER_ERROR) {
            offset_pos(text, len, parser.problem_offset, line, col);
        } else {
            *line = (int)parser.problem_mark.line + 1;
            *col = (int)parser.problem_mark.column + 1;
        }
        if (parser.context != NULL)
            snprintf(msg, mlen, "invalid YAML: %s (%s at %d:%d)",
                     parser.problem ? parser.problem : "syntax error",
                     parser.context, (int)parser.context_mark.line + 1,
                     (int)parser.context_mark.column + 1);
        else
            snprintf(msg, mlen, "invalid YAML: %s",
                     parser.problem ? parser.problem : "syntax error");
    }
    yaml_parser_delete(&parser);
    return ok;
}

/*
 * Reads path into out (initialised here; the caller releases it), at most
 * max bytes. A regular file is measured first, so one over the cap is
 * refused without reading it; other files (pipes, devices) are read up to
 * the cap and refused there.
 */
enum mapq_err
wf_read_file(const char *path, size_t max, struct mapq_buf *out, char *err)
{
    char chunk[65536];
    struct stat st;
    FILE *f = fopen(path, "rb");
    enum mapq_err rc = MAPQ_OK;
    size_t n;

    mapq_buf_init(out, max);
    if (f == NULL)
        return mapq_err_set(err, MAPQ_EIO, "cannot read '%s': %s", path,
                            strerror(errno));
    if (fstat(fileno(f), &st) == 0 && S_ISREG(st.st_mode) &&
        (uintmax_t)st.st_size > max) {
        rc = MAPQ_ETOOBIG;
        goto out_close;
    }
    for (;;) {
        n = fread(chunk, 1, sizeof(chunk), f);
        if (n == 0)
            break;
        if (mapq_buf_append(out, chunk, n) != MAPQ_OK) {
            rc = MAPQ_ETOOBIG;
            goto out_close;
        }
    }
    if (ferror(f))
        rc = mapq_err_set(err, MAPQ_EIO, "cannot read '%s': %s", path,
                          strerror(errno));
out_close:
    fclose(f);
    if (rc == MAPQ_ETOOBIG)
        mapq_err_set(err, rc, "cannot read '%s': larger than %zu MiB", path,
                     max >> 20);
    if (rc != MAPQ_OK)
        mapq_buf_release(out);
    return rc;
}

enum mapq_err
mapq_workflow_read_file(const char *path, struct mapq_buf *out, char *err)
{
    return wf_read_file(path, MAPQ_WORKFLOW_FILE_MAX, out, err);
}
