/*
 * mapq_workflow.c - reading a workflow file into the validated model of
 * mapq_workflow.h, and resolving its inputs.
 *
 * libyaml's document API loads the whole file as a graph of nodes that keep
 * their position. One pass per section walks that graph, builds the model
 * and records every problem with its position instead of stopping at the
 * first; the problems are sorted and written out at the end. Values go from
 * YAML nodes straight to msgpack, directed by the type they feed. Aliases
 * make the graph a DAG (or even a cycle), so value conversion is capped in
 * depth and in total nodes. This file reads the files it is given and never
 * logs.
 */
#include "mapq_workflow.h"

#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>
#include <yaml.h>

#include "mapq_alloc.h"
#include "mapq_json.h"
#include "mapq_shell.h"
#include "mapq_units.h"
#include "mapq_value.h"
#include "mapq_yaml_guard.h"

/* msgpack-c's unpacker refuses containers nested deeper than 32. */
#define CACHE_TTL_MAX_MS       (INT64_C(100) * 365 * 24 * 3600 * 1000)
#define CONV_MAX_DEPTH         32
#define CONV_MAX_NODES         1000000
#define TEXT_MAX               (64u * 1024 * 1024) /* an inputs file */
#define MSG_MAX                2048
#define PROBLEMS_SHOWN         50
#define SHOW_MAX               40
#define EDIT_MAX               32
#define MAX_FIELDS             16
#define BACKOFF_MAX_DEFAULT_MS (10 * 60 * 1000)
#define DEFAULT_SYSTEM_RETRIES 3

/* ---- problems ---------------------------------------------------------- */

struct problem {
    const char *file; /* borrowed; NULL: the message says where */
    int line;         /* 1-based; 0: no position */
    int col;
    size_t seq; /* keeps equal positions in the order found */
    char *msg;
};

struct problems {
    struct problem *v;
    size_t n;
    size_t cap;
};

static void __attribute__((format(printf, 5, 0)))
prob_vadd(struct problems *ps, const char *file, int line, int col,
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

static void __attribute__((format(printf, 5, 6)))
prob_add(struct problems *ps, const char *file, int line, int col,
         const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    prob_vadd(ps, file, line, col, fmt, ap);
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
static void
prob_flush(struct problems *ps, bool sort, struct mapq_buf *errors)
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

/* ---- small helpers ----------------------------------------------------- */

static const struct mapq_type any_type = {MAPQ_T_ANY, false, NULL};

static struct mapq_pos
pos_of_mark(yaml_mark_t m)
{
    struct mapq_pos p;

    p.line = (int)m.line + 1;
    p.col = (int)m.column + 1;
    return p;
}

static struct mapq_pos
pos_of(const yaml_node_t *n)
{
    return pos_of_mark(n->start_mark);
}

static const char *
stext(const yaml_node_t *n)
{
    return (const char *)n->data.scalar.value;
}

static size_t
slen(const yaml_node_t *n)
{
    return n->data.scalar.length;
}

static bool
is_plain(const yaml_node_t *n)
{
    return n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static size_t
npairs(const yaml_node_t *m)
{
    return (size_t)(m->data.mapping.pairs.top - m->data.mapping.pairs.start);
}

static size_t
nitems(const yaml_node_t *s)
{
    return (size_t)(s->data.sequence.items.top - s->data.sequence.items.start);
}

static yaml_node_t *
node_of(yaml_document_t *doc, int id)
{
    return yaml_document_get_node(doc, id);
}

static bool
is_alpha_(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Length of the identifier [A-Za-z_][A-Za-z0-9_]* at s; 0 if none. */
static size_t
ident_len(const char *s)
{
    size_t n = 0;

    if (!is_alpha_(s[0]))
        return 0;
    while (is_alpha_(s[n]) || is_digit(s[n]))
        n++;
    return n;
}

static bool
valid_ident(const char *s)
{
    size_t n = ident_len(s);

    return n > 0 && s[n] == '\0';
}

/* True when s is non-empty and every character is in [a-z0-9] or extra. */
static bool
valid_word(const char *s, const char *extra, bool upper)
{
    const char *p;

    if (*s == '\0')
        return false;
    for (p = s; *p != '\0'; p++) {
        if ((*p >= 'a' && *p <= 'z') || is_digit(*p) ||
            (upper && *p >= 'A' && *p <= 'Z'))
            continue;
        if (strchr(extra, *p) == NULL)
            return false;
    }
    return true;
}

static char *
fmt_type(const struct mapq_type *t, char *buf, size_t len)
{
    return mapq_type_format(t, buf, len);
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
static const char *
suggest(const char *name, const char *const *cands, size_t n, char *buf,
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
static const char *
join_names(const char *const *names, size_t n, char *buf, size_t len)
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
static const char **
names_of(const void *arr, size_t n, size_t size)
{
    const char **v = mapq_xcalloc(n ? n : 1, sizeof(*v));
    size_t i;

    for (i = 0; i < n; i++)
        memcpy(&v[i], (const char *)arr + i * size, sizeof(v[i]));
    return v;
}

/* suggest() among the names of n structs of size bytes at arr. */
static const char *
suggest_in(const char *name, const void *arr, size_t n, size_t size, char *buf,
           size_t len)
{
    const char **names = names_of(arr, n, size);

    suggest(name, names, n, buf, len);
    free(names);
    return buf;
}

/*
 * " (did you mean 'x'?)" if one is close, else " (WHAT: a, b)"; "" once
 * ps holds PROBLEMS_SHOWN problems. A hint costs a pass over all the names,
 * and a file of many problems must not cost one pass per problem.
 */
static const char *
hint_names(const struct problems *ps, const char *name, const void *arr,
           size_t n, size_t size, const char *what, char *buf, size_t len)
{
    const char **names;
    char list[MSG_MAX / 2];

    buf[0] = '\0';
    if (ps->n >= PROBLEMS_SHOWN)
        return buf;
    names = names_of(arr, n, size);
    suggest(name, names, n, buf, len);
    if (buf[0] == '\0' && n > 0)
        snprintf(buf, len, " (%s: %s)", what,
                 join_names(names, n, list, sizeof(list)));
    free(names);
    return buf;
}

/* ---- YAML 1.2 core schema scalars -------------------------------------- */

enum skind { SK_NULL, SK_BOOL, SK_INT, SK_UINT, SK_FLOAT, SK_STR, SK_RANGE };

struct scal {
    enum skind kind;
    bool b;
    int64_t i;
    uint64_t u;
    double d;
};

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
static void
resolve(const char *s, size_t len, bool plain, struct scal *v)
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
static const char *
describe_text(const char *s, size_t len, bool plain, char *buf, size_t blen)
{
    struct scal v;
    size_t n = len;

    resolve(s, len, plain, &v);
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

static const char *
describe(const yaml_node_t *n, char *buf, size_t blen)
{
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return describe_text(stext(n), slen(n), is_plain(n), buf, blen);
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_MAPPING_NODE:
        return "a dict";
    default:
        return "nothing";
    }
}

/* True when n is a string scalar: quoted, or plain and not null/bool/num. */
static bool
is_string(const yaml_node_t *n)
{
    struct scal v;

    if (n->type != YAML_SCALAR_NODE)
        return false;
    resolve(stext(n), slen(n), is_plain(n), &v);
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
static void
mark_dups(yaml_document_t *doc, const yaml_node_t *map, bool *dup)
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

/* ---- converting YAML values to msgpack --------------------------------- */

struct conv {
    yaml_document_t *doc;
    size_t *budget;   /* nodes converted so far, shared by a whole parse */
    yaml_mark_t root; /* where the value starts */
    yaml_mark_t mark; /* where the problem is */
    char path[256];   /* [2]["key"] of the node being converted */
    char msg[MAPQ_ERR_LEN];
};

static void
conv_init(struct conv *cv, yaml_document_t *doc, size_t *budget,
          yaml_mark_t root)
{
    memset(cv, 0, sizeof(*cv));
    cv->doc = doc;
    cv->budget = budget;
    cv->root = root;
    cv->mark = root;
}

static enum mapq_err __attribute__((format(printf, 4, 5)))
cv_fail(struct conv *cv, yaml_mark_t mark, enum mapq_err code, const char *fmt,
        ...)
{
    char m[MAPQ_ERR_LEN];
    size_t off = 0;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(m, sizeof(m), fmt, ap);
    va_end(ap);
    if (cv->path[0] != '\0') {
        off = strlen(cv->path);
        if (off > sizeof(cv->msg) / 2)
            off = sizeof(cv->msg) / 2;
        memcpy(cv->msg, cv->path, off);
        memcpy(cv->msg + off, ": ", 2);
        off += 2;
    }
    snprintf(cv->msg + off, sizeof(cv->msg) - off, "%s", m);
    cv->mark = mark;
    return code;
}

/* Maps a packer's status to the size cap of the buffer behind it. */
static enum mapq_err
packed(struct conv *cv, int rc)
{
    if (rc == 0)
        return MAPQ_OK;
    cv->path[0] = '\0';
    return cv_fail(cv, cv->root, MAPQ_ETOOBIG,
                   "value is larger than the %u MiB cap", MAPQ_VALUE_MAX >> 20);
}

static enum mapq_err
mismatch(struct conv *cv, const yaml_node_t *n, const struct mapq_type *t)
{
    char tn[128], d[96];

    return cv_fail(cv, n->start_mark, MAPQ_ETYPE, "expected %s, got %s",
                   fmt_type(t, tn, sizeof(tn)), describe(n, d, sizeof(d)));
}

static bool
b64_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) ||
           c == '+' || c == '/';
}

/*
 * Decodes standard base64 (white space ignored, padding optional) and
 * packs it as bin. False when s is not base64.
 */
static bool
pack_base64(const char *s, size_t len, msgpack_packer *pk, int *rc)
{
    char *in = mapq_xmalloc(len + 4);
    unsigned char *out;
    size_t n = 0, i, pad = 0;
    int dec;

    for (i = 0; i < len; i++)
        if (!strchr(" \t\r\n", s[i]) || s[i] == '\0')
            in[n++] = s[i];
    while (n > 0 && in[n - 1] == '=' && pad < 2) {
        n--;
        pad++;
    }
    for (i = 0; i < n; i++)
        if (!b64_char(in[i]))
            break;
    if (i < n || n % 4 == 1) {
        free(in);
        return false;
    }
    pad = (4 - n % 4) % 4;
    memset(in + n, '=', pad);
    out = mapq_xmalloc((n + pad) / 4 * 3 + 1);
    dec = EVP_DecodeBlock(out, (const unsigned char *)in, (int)(n + pad));
    free(in);
    if (dec < 0) {
        free(out);
        return false;
    }
    *rc = msgpack_pack_bin(pk, (size_t)dec - pad);
    if (*rc == 0)
        *rc = msgpack_pack_bin_body(pk, out, (size_t)dec - pad);
    free(out);
    return true;
}

static enum mapq_err
pack_text(struct conv *cv, msgpack_packer *pk, const char *s, size_t len)
{
    int rc = msgpack_pack_str(pk, len);

    if (rc == 0)
        rc = msgpack_pack_str_body(pk, s, len);
    return packed(cv, rc);
}

/* Packs d, which JSON must be able to carry: no NaN or infinity. */
static enum mapq_err
pack_float(struct conv *cv, yaml_mark_t mark, msgpack_packer *pk, const char *s,
           double d)
{
    if (!isfinite(d))
        return cv_fail(cv, mark, MAPQ_ETYPE,
                       "float %.*s is not a value mapq can carry: JSON has "
                       "no NaN or infinity",
                       SHOW_MAX, s);
    return packed(cv, msgpack_pack_double(pk, d));
}

/* Packs a resolved scalar with its natural type (for any). */
static enum mapq_err
pack_natural(struct conv *cv, yaml_mark_t mark, msgpack_packer *pk,
             const char *s, size_t len, const struct scal *v)
{
    switch (v->kind) {
    case SK_NULL:
        return packed(cv, msgpack_pack_nil(pk));
    case SK_BOOL:
        return packed(cv,
                      v->b ? msgpack_pack_true(pk) : msgpack_pack_false(pk));
    case SK_INT:
        return packed(cv, msgpack_pack_int64(pk, v->i));
    case SK_FLOAT:
        return pack_float(cv, mark, pk, s, v->d);
    case SK_UINT: /* past INT64_MAX: JSON readers lose it */
    case SK_RANGE:
        return cv_fail(cv, mark, MAPQ_ETYPE,
                       "integer %.*s is out of range (ints are signed 64-bit)",
                       SHOW_MAX, s);
    case SK_STR:
        break;
    }
    return pack_text(cv, pk, s, len);
}

/*
 * Converts one scalar (text s of len bytes, plain or quoted) to type t:
 * str takes a plain scalar as written, float takes ints, bytes decodes
 * base64, any resolves naturally.
 */
static enum mapq_err
conv_scalar(struct conv *cv, yaml_mark_t mark, const char *s, size_t len,
            bool plain, const struct mapq_type *t, msgpack_packer *pk)
{
    struct scal v;
    char tn[128], d[96];
    int rc = 0;

    resolve(s, len, plain, &v);
    if (v.kind == SK_NULL && (t->optional || t->kind == MAPQ_T_ANY))
        return packed(cv, msgpack_pack_nil(pk));
    switch (t->kind) {
    case MAPQ_T_STR:
        return pack_text(cv, pk, s, len);
    case MAPQ_T_ANY:
        return pack_natural(cv, mark, pk, s, len, &v);
    case MAPQ_T_BYTES:
        if (v.kind != SK_NULL && pack_base64(s, len, pk, &rc))
            return packed(cv, rc);
        break;
    case MAPQ_T_INT:
        if (v.kind == SK_INT || v.kind == SK_UINT || v.kind == SK_RANGE)
            return pack_natural(cv, mark, pk, s, len, &v);
        break;
    case MAPQ_T_FLOAT:
        if (v.kind == SK_INT)
            return packed(cv, msgpack_pack_double(pk, (double)v.i));
        if (v.kind == SK_UINT)
            return packed(cv, msgpack_pack_double(pk, (double)v.u));
        if (v.kind == SK_RANGE)
            return pack_float(cv, mark, pk, s, strtod(s, NULL));
        if (v.kind == SK_FLOAT)
            return pack_float(cv, mark, pk, s, v.d);
        break;
    case MAPQ_T_BOOL:
        if (v.kind == SK_BOOL)
            return pack_natural(cv, mark, pk, s, len, &v);
        break;
    case MAPQ_T_LIST:
    case MAPQ_T_DICT:
        break;
    }
    return cv_fail(cv, mark, MAPQ_ETYPE, "expected %s%s, got %s",
                   fmt_type(t, tn, sizeof(tn)),
                   t->kind == MAPQ_T_BYTES ? " (base64)" : "",
                   describe_text(s, len, plain, d, sizeof(d)));
}

/* The position says where; a path 32 levels long would only be noise. */
static enum mapq_err
too_deep(struct conv *cv, const yaml_node_t *n)
{
    cv->path[0] = '\0';
    return cv_fail(cv, n->start_mark, MAPQ_ETOOBIG,
                   "value nested more than %d levels deep", CONV_MAX_DEPTH);
}

static enum mapq_err conv_value(struct conv *cv, yaml_node_t *n,
                                const struct mapq_type *t, int depth,
                                msgpack_packer *pk);

/* Element type of a list or dict type t; any for any. */
static const struct mapq_type *
child_type(const struct mapq_type *t)
{
    if (t->kind == MAPQ_T_ANY || t->elem == NULL)
        return &any_type;
    return t->elem;
}

static enum mapq_err
conv_seq(struct conv *cv, yaml_node_t *n, const struct mapq_type *t, int depth,
         msgpack_packer *pk)
{
    size_t base = strlen(cv->path), i, cnt = nitems(n);
    enum mapq_err rc;

    if (t->kind != MAPQ_T_LIST && t->kind != MAPQ_T_ANY)
        return mismatch(cv, n, t);
    if (depth >= CONV_MAX_DEPTH)
        return too_deep(cv, n);
    rc = packed(cv, msgpack_pack_array(pk, cnt));
    for (i = 0; i < cnt && rc == MAPQ_OK; i++) {
        snprintf(cv->path + base, sizeof(cv->path) - base, "[%zu]", i);
        rc = conv_value(cv, node_of(cv->doc, n->data.sequence.items.start[i]),
                        child_type(t), depth + 1, pk);
    }
    if (rc == MAPQ_OK)
        cv->path[base] = '\0';
    return rc;
}

/* Checks that the keys of dict n are unique strings. */
static enum mapq_err
check_dict_keys(struct conv *cv, yaml_node_t *n)
{
    size_t cnt = npairs(n), i;
    bool *dup = mapq_xcalloc(cnt ? cnt : 1, sizeof(*dup));
    const yaml_node_t *k;
    struct scal v;
    char d[96];
    enum mapq_err rc = MAPQ_OK;

    mark_dups(cv->doc, n, dup);
    for (i = 0; i < cnt && rc == MAPQ_OK; i++) {
        k = node_of(cv->doc, n->data.mapping.pairs.start[i].key);
        if (k->type == YAML_SCALAR_NODE)
            resolve(stext(k), slen(k), is_plain(k), &v);
        if (k->type != YAML_SCALAR_NODE || v.kind != SK_STR)
            rc = cv_fail(cv, k->start_mark, MAPQ_ETYPE,
                         "dict keys must be strings, got %s",
                         describe(k, d, sizeof(d)));
        else if (dup[i])
            rc = cv_fail(cv, k->start_mark, MAPQ_EINVAL, "duplicate key '%s'",
                         stext(k));
    }
    free(dup);
    return rc;
}

static enum mapq_err
conv_map(struct conv *cv, yaml_node_t *n, const struct mapq_type *t, int depth,
         msgpack_packer *pk)
{
    size_t base = strlen(cv->path), i, cnt = npairs(n);
    const yaml_node_pair_t *p;
    const yaml_node_t *k;
    enum mapq_err rc;

    if (t->kind != MAPQ_T_DICT && t->kind != MAPQ_T_ANY)
        return mismatch(cv, n, t);
    if (depth >= CONV_MAX_DEPTH)
        return too_deep(cv, n);
    rc = check_dict_keys(cv, n);
    if (rc == MAPQ_OK)
        rc = packed(cv, msgpack_pack_map(pk, cnt));
    for (i = 0; i < cnt && rc == MAPQ_OK; i++) {
        p = &n->data.mapping.pairs.start[i];
        k = node_of(cv->doc, p->key);
        rc = pack_text(cv, pk, stext(k), slen(k));
        snprintf(cv->path + base, sizeof(cv->path) - base, "[\"%.*s\"]",
                 SHOW_MAX, stext(k));
        if (rc == MAPQ_OK)
            rc = conv_value(cv, node_of(cv->doc, p->value), child_type(t),
                            depth + 1, pk);
    }
    if (rc == MAPQ_OK)
        cv->path[base] = '\0';
    return rc;
}

/* Converts YAML node n to msgpack of type t (NULL: any) into pk. */
static enum mapq_err
conv_value(struct conv *cv, yaml_node_t *n, const struct mapq_type *t,
           int depth, msgpack_packer *pk)
{
    if (t == NULL)
        t = &any_type;
    if (++*cv->budget > CONV_MAX_NODES) {
        cv->path[0] = '\0';
        return cv_fail(cv, cv->root, MAPQ_ETOOBIG,
                       "value too large: more than %d values once aliases "
                       "are expanded",
                       CONV_MAX_NODES);
    }
    switch (n->type) {
    case YAML_SCALAR_NODE:
        return conv_scalar(cv, n->start_mark, stext(n), slen(n), is_plain(n), t,
                           pk);
    case YAML_SEQUENCE_NODE:
        return conv_seq(cv, n, t, depth, pk);
    case YAML_MAPPING_NODE:
        return conv_map(cv, n, t, depth, pk);
    default:
        return cv_fail(cv, n->start_mark, MAPQ_EINVAL, "empty YAML node");
    }
}

/* ---- loading YAML ------------------------------------------------------ */

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
static bool
load_doc(const char *text, size_t len, yaml_document_t *doc, char *msg,
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
static enum mapq_err
read_file(const char *path, size_t max, struct mapq_buf *out, char *err)
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
    return read_file(path, MAPQ_WORKFLOW_FILE_MAX, out, err);
}

/* ---- the parse context ------------------------------------------------- */

struct nodeinfo {
    yaml_node_t *key;  /* the node's name */
    yaml_node_t *over; /* NULL when absent */
    yaml_node_t *over_key;
    yaml_node_t *with;
    bool task_ok; /* its task exists, so its bindings can be checked */
};

struct ctx {
    const char *file;
    yaml_document_t *doc;
    struct problems probs;
    struct mapq_workflow *wf;
    struct nodeinfo *ni; /* one per wf->nodes entry */
    bool *task_out_bad;  /* one per task: its output type failed to parse */
    size_t budget;       /* value nodes converted, against CONV_MAX_NODES */
    bool budget_told;
};

static void __attribute__((format(printf, 3, 4)))
perr(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    struct mapq_pos p = pos_of(n);

    va_start(ap, fmt);
    prob_vadd(&c->probs, c->file, p.line, p.col, fmt, ap);
    va_end(ap);
}

static yaml_node_t *
cnode(struct ctx *c, int id)
{
    return node_of(c->doc, id);
}

/*
 * Converts literal v to type t, appending to out; on failure reports one
 * problem "SUBJECT: message" at the offending node and empties out.
 */
static bool
conv_literal(struct ctx *c, yaml_node_t *v, const struct mapq_type *t,
             struct mapq_buf *out, const char *subject)
{
    struct conv cv;
    msgpack_packer pk;
    enum mapq_err rc;
    struct mapq_pos p;

    conv_init(&cv, c->doc, &c->budget, v->start_mark);
    mapq_value_packer_init(&pk, out);
    rc = conv_value(&cv, v, t, 0, &pk);
    if (rc == MAPQ_OK)
        return true;
    mapq_buf_reset(out);
    /* One alias bomb is one problem, not one per literal after it. */
    if (c->budget > CONV_MAX_NODES && c->budget_told)
        return false;
    c->budget_told = c->budget > CONV_MAX_NODES;
    p = pos_of_mark(cv.mark);
    prob_add(&c->probs, c->file, p.line, p.col, "%s: %s", subject, cv.msg);
    return false;
}

/* Like conv_literal for a string that is not a node's own text ($$x). */
static bool
conv_string(struct ctx *c, yaml_node_t *v, const char *s,
            const struct mapq_type *t, struct mapq_buf *out,
            const char *subject)
{
    struct conv cv;
    msgpack_packer pk;

    conv_init(&cv, c->doc, &c->budget, v->start_mark);
    mapq_value_packer_init(&pk, out);
    if (conv_scalar(&cv, v->start_mark, s, strlen(s), false, t, &pk) == MAPQ_OK)
        return true;
    mapq_buf_reset(out);
    perr(c, v, "%s: %s", subject, cv.msg);
    return false;
}

/* ---- fixed-schema mappings --------------------------------------------- */

struct fields {
    yaml_node_t *key[MAX_FIELDS];
    yaml_node_t *val[MAX_FIELDS];
};

/*
 * Sorts the pairs of map into f by the key names[i]; reports unknown keys
 * (with a suggestion), duplicate keys and non-string keys. where reads
 * like "in task 'x'".
 */
static void
get_fields(struct ctx *c, yaml_node_t *map, const char *const *names, size_t n,
           struct fields *f, const char *where)
{
    yaml_node_pair_t *p;
    yaml_node_t *k;
    size_t i;
    char hint[128], d[96];

    mapq_assert(n <= MAX_FIELDS);
    memset(f, 0, sizeof(*f));
    for (p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        k = cnode(c, p->key);
        if (k->type != YAML_SCALAR_NODE) {
            perr(c, k, "keys must be strings, got %s %s",
                 describe(k, d, sizeof(d)), where);
            continue;
        }
        for (i = 0; i < n; i++)
            if (strlen(names[i]) == slen(k) && strcmp(stext(k), names[i]) == 0)
                break;
        if (i == n)
            perr(c, k, "unknown key '%s' %s%s", stext(k), where,
                 c->probs.n < PROBLEMS_SHOWN
                     ? suggest(stext(k), names, n, hint, sizeof(hint))
                     : "");
        else if (f->key[i] != NULL)
            perr(c, k, "duplicate key '%s' %s", stext(k), where);
        else {
            f->key[i] = k;
            f->val[i] = cnode(c, p->value);
        }
    }
}

/*
 * For a mapping whose keys are names (inputs, tasks, nodes, over, with):
 * reports non-string and duplicate keys and returns which pairs to skip
 * (caller frees).
 */
static bool *
check_keys(struct ctx *c, yaml_node_t *map)
{
    size_t n = npairs(map), i;
    bool *skip = mapq_xcalloc(n ? n : 1, sizeof(*skip));
    yaml_node_t *k;
    char d[96];

    mark_dups(c->doc, map, skip);
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (k->type != YAML_SCALAR_NODE) {
            perr(c, k, "keys must be names, got %s", describe(k, d, sizeof(d)));
            skip[i] = true;
        } else if (skip[i]) {
            perr(c, k, "duplicate key '%s'", stext(k));
        }
    }
    return skip;
}

static bool
expect_map(struct ctx *c, yaml_node_t *v, const char *what)
{
    char d[96];

    if (v->type == YAML_MAPPING_NODE)
        return true;
    perr(c, v, "%s, got %s", what, describe(v, d, sizeof(d)));
    return false;
}

/* Reports a name that does not match [A-Za-z_][A-Za-z0-9_]*. */
static bool
check_ident(struct ctx *c, yaml_node_t *k, const char *what)
{
    if (strlen(stext(k)) == slen(k) && valid_ident(stext(k)))
        return true;
    perr(c, k, "invalid %s name '%s' (names must match [A-Za-z_][A-Za-z0-9_]*)",
         what, stext(k));
    return false;
}

/* ---- scalar fields ----------------------------------------------------- */

static bool
get_int(struct ctx *c, yaml_node_t *v, const char *key, int64_t min,
        int64_t max, int64_t *out)
{
    struct scal s;
    char d[96];

    if (v->type == YAML_SCALAR_NODE) {
        resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_INT && s.i >= min && s.i <= max) {
            *out = s.i;
            return true;
        }
        if ((s.kind == SK_INT && s.i > max) || s.kind == SK_UINT ||
            (s.kind == SK_RANGE && stext(v)[0] != '-')) {
            perr(c, v, "'%s' is too large (at most %lld), got %s", key,
                 (long long)max, describe(v, d, sizeof(d)));
            return false;
        }
    }
    if (min == 0)
        perr(c, v, "'%s' must be a non-negative integer, got %s", key,
             describe(v, d, sizeof(d)));
    else
        perr(c, v, "'%s' must be an integer >= %lld, got %s", key,
             (long long)min, describe(v, d, sizeof(d)));
    return false;
}

/* Like get_int, into an int. */
static bool
get_small(struct ctx *c, yaml_node_t *v, const char *key, int *out)
{
    int64_t x;

    if (!get_int(c, v, key, 0, INT_MAX, &x))
        return false;
    *out = (int)x;
    return true;
}

static bool
get_bool(struct ctx *c, yaml_node_t *v, const char *key, bool *out)
{
    struct scal s;
    char d[96];

    if (v->type == YAML_SCALAR_NODE) {
        resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_BOOL) {
            *out = s.b;
            return true;
        }
    }
    perr(c, v, "'%s' must be true or false, got %s", key,
         describe(v, d, sizeof(d)));
    return false;
}

/* A finite number (int or float) in [lo, hi], or (lo, hi] if lo_open. */
static bool
get_real(struct ctx *c, yaml_node_t *v, const char *key, double lo,
         bool lo_open, double hi, const char *expect, double *out)
{
    struct scal s;
    double x = NAN;
    char d[96];

    if (v->type == YAML_SCALAR_NODE) {
        resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_INT)
            x = (double)s.i;
        else if (s.kind == SK_UINT)
            x = (double)s.u;
        else if (s.kind == SK_FLOAT)
            x = s.d;
    }
    if (isfinite(x) && (lo_open ? x > lo : x >= lo) && x <= hi) {
        *out = x;
        return true;
    }
    perr(c, v, "'%s' must be %s, got %s", key, expect,
         describe(v, d, sizeof(d)));
    return false;
}

/* Any scalar, as written; a copy the caller frees. */
static char *
get_string(struct ctx *c, yaml_node_t *v, const char *key, bool nonempty)
{
    char d[96];

    if (v->type != YAML_SCALAR_NODE) {
        perr(c, v, "'%s' must be a string, got %s", key,
             describe(v, d, sizeof(d)));
        return NULL;
    }
    if (strlen(stext(v)) != slen(v)) {
        perr(c, v, "'%s' must not contain NUL bytes", key);
        return NULL;
    }
    if (nonempty && slen(v) == 0) {
        perr(c, v, "'%s' must not be empty", key);
        return NULL;
    }
    return mapq_xstrdup(stext(v));
}

static bool
get_duration(struct ctx *c, yaml_node_t *v, const char *key, int64_t *ms)
{
    char d[96];

    if (v->type == YAML_SCALAR_NODE &&
        mapq_duration_parse(stext(v), ms, NULL) == MAPQ_OK)
        return true;
    perr(c, v, "'%s' must be a duration such as 500ms, 30s, 10m or 2h, got %s",
         key, describe(v, d, sizeof(d)));
    return false;
}

static bool
get_size(struct ctx *c, yaml_node_t *v, const char *key, int64_t *bytes)
{
    char d[96];

    if (v->type == YAML_SCALAR_NODE &&
        mapq_size_parse(stext(v), bytes, NULL) == MAPQ_OK)
        return true;
    perr(c, v, "'%s' must be a size such as 512Mi, 2Gi or 100M, got %s", key,
         describe(v, d, sizeof(d)));
    return false;
}

/* Parses a type string at v; NULL (reported) on failure. */
static struct mapq_type *
get_type(struct ctx *c, yaml_node_t *v, const char *what)
{
    char err[MAPQ_ERR_LEN], d[96];
    struct mapq_type *t;

    if (v->type != YAML_SCALAR_NODE) {
        perr(c, v, "%s must be a type such as int or \"list[int]\", got %s",
             what, describe(v, d, sizeof(d)));
        return NULL;
    }
    t = mapq_type_parse(stext(v), err);
    if (t == NULL)
        perr(c, v, "%s: %s", what, err);
    return t;
}

/* ---- model lifetime ---------------------------------------------------- */

static void
opts_init(struct mapq_task_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->cache_version = mapq_xstrdup("");
    o->queue = mapq_xstrdup("default");
}

static void
opts_copy(struct mapq_task_opts *dst, const struct mapq_task_opts *src)
{
    *dst = *src;
    dst->cache_version = mapq_xstrdup(src->cache_version);
    dst->queue = mapq_xstrdup(src->queue);
}

static void
opts_release(struct mapq_task_opts *o)
{
    free(o->cache_version);
    free(o->queue);
}

static void
param_release(struct mapq_param *p)
{
    free(p->name);
    mapq_type_free(p->type);
    mapq_buf_release(&p->value);
}

static void
binding_release(struct mapq_binding *b)
{
    free(b->param);
    free(b->ref);
    mapq_buf_release(&b->literal);
}

static void
task_release(struct mapq_task_def *t)
{
    size_t i;

    free(t->name);
    for (i = 0; i < t->ninputs; i++)
        param_release(&t->inputs[i]);
    free(t->inputs);
    mapq_type_free(t->output);
    for (i = 0; i < t->argc; i++)
        free(t->argv[i]);
    free(t->argv);
    free(t->input_index);
    free(t->plugin_library);
    free(t->plugin_symbol);
    opts_release(&t->opts);
}

static void
node_release(struct mapq_node *n)
{
    size_t i;

    free(n->name);
    for (i = 0; i < n->nover; i++)
        binding_release(&n->over[i]);
    free(n->over);
    for (i = 0; i < n->nwith; i++)
        binding_release(&n->with[i]);
    free(n->with);
    opts_release(&n->opts);
    mapq_type_free(n->output_type);
    free(n->deps);
}

void
mapq_workflow_free(struct mapq_workflow *wf)
{
    size_t i;

    if (wf == NULL)
        return;
    free(wf->name);
    free(wf->file);
    for (i = 0; i < wf->ninputs; i++)
        param_release(&wf->inputs[i]);
    free(wf->inputs);
    for (i = 0; i < wf->ntasks; i++)
        task_release(&wf->tasks[i]);
    free(wf->tasks);
    for (i = 0; i < wf->nnodes; i++)
        node_release(&wf->nodes[i]);
    free(wf->nodes);
    free(wf->order);
    for (i = 0; i < wf->noutputs; i++)
        binding_release(&wf->outputs[i]);
    free(wf->outputs);
    free(wf->input_index);
    free(wf->task_index);
    free(wf->node_index);
    free(wf);
}

/* Orders name refs by name, then position: the first of equal names
 * comes first, as a linear search would find it. */
static int
ref_cmp(const void *a, const void *b)
{
    const struct mapq_name_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->name, y->name, n);

    if (r != 0)
        return r;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Compares a key (idx unused) with a ref by name only. */
static int
key_cmp(const void *key, const void *ref)
{
    const struct mapq_name_ref *k = key, *r = ref;
    size_t n = k->len < r->len ? k->len : r->len;
    int c = memcmp(k->name, r->name, n);

    if (c != 0)
        return c;
    return (k->len > r->len) - (k->len < r->len);
}

/*
 * The names of n structs of size bytes at arr (each starting with its
 * char *name), sorted, so that lookups by name cost a binary search: a
 * workflow of 40,000 tasks and nodes took 27 s with linear ones. Caller
 * frees it with free().
 */
static struct mapq_name_ref *
index_names(const void *arr, size_t n, size_t size)
{
    struct mapq_name_ref *v = mapq_xcalloc(n ? n : 1, sizeof(*v));
    const char *name;
    size_t i;

    for (i = 0; i < n; i++) {
        memcpy(&name, (const char *)arr + i * size, sizeof(name));
        v[i].name = name != NULL ? name : "";
        v[i].len = strlen(v[i].name);
        v[i].idx = i;
    }
    qsort(v, n, sizeof(*v), ref_cmp);
    return v;
}

/* The position of name (len bytes) among n structs, or -1: by index when
 * there is one, else by a linear search. */
static long
find_name(const struct mapq_name_ref *index, const void *arr, size_t n,
          size_t size, const char *name, size_t len)
{
    struct mapq_name_ref key = {name, len, 0};
    const struct mapq_name_ref *hit;
    const char *s;
    size_t i;

    if (index == NULL) {
        for (i = 0; i < n; i++) {
            memcpy(&s, (const char *)arr + i * size, sizeof(s));
            if (s != NULL && strlen(s) == len && memcmp(s, name, len) == 0)
                return (long)i;
        }
        return -1;
    }
    hit = bsearch(&key, index, n, sizeof(*index), key_cmp);
    if (hit == NULL)
        return -1;
    while (hit > index && key_cmp(&key, hit - 1) == 0)
        hit--;
    return (long)hit->idx;
}

long
mapq_workflow_find_node(const struct mapq_workflow *wf, const char *name)
{
    return find_name(wf->node_index, wf->nodes, wf->nnodes, sizeof(*wf->nodes),
                     name, strlen(name));
}

long
mapq_workflow_find_task(const struct mapq_workflow *wf, const char *name)
{
    return find_name(wf->task_index, wf->tasks, wf->ntasks, sizeof(*wf->tasks),
                     name, strlen(name));
}

long
mapq_workflow_find_input(const struct mapq_workflow *wf, const char *name)
{
    return find_name(wf->input_index, wf->inputs, wf->ninputs,
                     sizeof(*wf->inputs), name, strlen(name));
}

static long
find_param(const struct mapq_task_def *t, const char *name, size_t len)
{
    return find_name(t->input_index, t->inputs, t->ninputs, sizeof(*t->inputs),
                     name, len);
}

/* ---- workflow inputs --------------------------------------------------- */

enum { IF_TYPE, IF_DEFAULT, IF_N };
static const char *const input_fields[IF_N] = {"type", "default"};

static void
parse_input(struct ctx *c, yaml_node_t *k, yaml_node_t *v, struct mapq_param *p)
{
    struct fields f;
    yaml_node_t *tnode = v, *dnode = NULL;
    char where[256], subject[256];

    p->name = mapq_xstrdup(stext(k));
    p->pos = pos_of(k);
    mapq_buf_init(&p->value, MAPQ_VALUE_MAX);
    snprintf(where, sizeof(where), "in input '%s'", p->name);
    if (v->type == YAML_MAPPING_NODE) {
        get_fields(c, v, input_fields, IF_N, &f, where);
        tnode = f.val[IF_TYPE];
        dnode = f.val[IF_DEFAULT];
        if (tnode == NULL)
            perr(c, k, "input '%s' needs a 'type'", p->name);
    }
    snprintf(where, sizeof(where), "type of input '%s'", p->name);
    if (tnode != NULL)
        p->type = get_type(c, tnode, where);
    if (dnode == NULL || p->type == NULL)
        return;
    snprintf(subject, sizeof(subject), "default of '%s'", p->name);
    p->has_default = conv_literal(c, dnode, p->type, &p->value, subject);
}

static void
parse_inputs(struct ctx *c, yaml_node_t *map)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (!expect_map(c, map, "'inputs' must be a mapping of name to type"))
        return;
    n = npairs(map);
    skip = check_keys(c, map);
    wf->inputs = mapq_xcalloc(n ? n : 1, sizeof(*wf->inputs));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !check_ident(c, k, "input"))
            continue;
        parse_input(c, k, cnode(c, map->data.mapping.pairs.start[i].value),
                    &wf->inputs[wf->ninputs++]);
    }
    free(skip);
}

/* ---- tasks ------------------------------------------------------------- */

enum {
    TF_INPUTS,
    TF_OUTPUT,
    TF_COMMAND,
    TF_PLUGIN,
    TF_OUTPUT_FORMAT,
    TF_RETRIES,
    TF_TIMEOUT,
    TF_INTERRUPTIBLE,
    TF_CACHE,
    TF_CACHE_SERIALIZE,
    TF_RESOURCES,
    TF_QUEUE,
    TF_RETRY_BACKOFF,
    TF_SHELL_PLACEHOLDERS,
    TF_N
};
static const char *const task_fields[TF_N] = {
    "inputs",        "output",
    "command",       "plugin",
    "output_format", "retries",
    "timeout",       "interruptible",
    "cache",         "cache_serialize",
    "resources",     "queue",
    "retry_backoff", "shell_placeholders"};

enum { CF_VERSION, CF_TTL, CF_N };
static const char *const cache_fields[CF_N] = {"version", "ttl"};

enum { RF_CPU, RF_MEM, RF_N };
static const char *const resource_fields[RF_N] = {"cpu", "mem"};

enum { BF_INITIAL, BF_MAX, BF_FACTOR, BF_N };
static const char *const backoff_fields[BF_N] = {"initial", "max", "factor"};

enum { PF_LIBRARY, PF_SYMBOL, PF_N };
static const char *const plugin_fields[PF_N] = {"library", "symbol"};

/* The settings a node may override, as found in a task or a node. */
struct opt_nodes {
    yaml_node_t *retries;
    yaml_node_t *timeout;
    yaml_node_t *interruptible;
    yaml_node_t *cache;
    yaml_node_t *resources;
    yaml_node_t *queue;
};

/* cache: false | true | {version: STR, ttl: DURATION}; owner "task 'x'". */
static void
parse_cache(struct ctx *c, yaml_node_t *v, struct mapq_task_opts *o,
            const char *owner)
{
    struct fields f;
    struct scal s;
    char where[256], d[96], *ver;

    free(o->cache_version);
    o->cache_version = mapq_xstrdup("");
    o->cache_ttl_ms = 0;
    o->cache = false;
    if (v->type == YAML_SCALAR_NODE) {
        resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_BOOL) {
            o->cache = s.b;
            return;
        }
    }
    if (v->type != YAML_MAPPING_NODE) {
        perr(c, v,
             "'cache' must be true, false or {version: STR, ttl: DURATION}, "
             "got %s",
             describe(v, d, sizeof(d)));
        return;
    }
    o->cache = true;
    snprintf(where, sizeof(where), "in 'cache' of %s", owner);
    get_fields(c, v, cache_fields, CF_N, &f, where);
    if (f.val[CF_VERSION] != NULL) {
        ver = get_string(c, f.val[CF_VERSION], "version", false);
        if (ver != NULL) {
            free(o->cache_version);
            o->cache_version = ver;
        }
    }
    if (f.val[CF_TTL] != NULL &&
        get_duration(c, f.val[CF_TTL], "ttl", &o->cache_ttl_ms) &&
        o->cache_ttl_ms > CACHE_TTL_MAX_MS)
        perr(c, f.val[CF_TTL], "'ttl' is at most 100 years (876000h), got %s",
             stext(f.val[CF_TTL]));
}

/* resources: {cpu: number > 0, mem: SIZE}; replaces both. */
static void
parse_resources(struct ctx *c, yaml_node_t *v, struct mapq_task_opts *o,
                const char *owner)
{
    struct fields f;
    char where[256];

    o->cpu = 0;
    o->mem_bytes = 0;
    if (!expect_map(c, v,
                    "'resources' must be a mapping like {cpu: 2, mem: 512Mi}"))
        return;
    snprintf(where, sizeof(where), "in 'resources' of %s", owner);
    get_fields(c, v, resource_fields, RF_N, &f, where);
    if (f.val[RF_CPU] != NULL)
        get_real(c, f.val[RF_CPU], "cpu", 0, true, 1e9,
                 "a number greater than 0", &o->cpu);
    if (f.val[RF_MEM] != NULL)
        get_size(c, f.val[RF_MEM], "mem", &o->mem_bytes);
}

static void
parse_queue(struct ctx *c, yaml_node_t *v, struct mapq_task_opts *o)
{
    char d[96];

    if (v->type == YAML_SCALAR_NODE && strlen(stext(v)) == slen(v) &&
        valid_word(stext(v), "_.-", true)) {
        free(o->queue);
        o->queue = mapq_xstrdup(stext(v));
        return;
    }
    perr(c, v, "'queue' must be a name matching [A-Za-z0-9_.-]+, got %s",
         describe(v, d, sizeof(d)));
}

/* Applies the overridable settings found (non-NULL) in on to o. */
static void
parse_overridable(struct ctx *c, const struct opt_nodes *on,
                  struct mapq_task_opts *o, const char *owner)
{
    int64_t ms;

    if (on->retries != NULL)
        get_small(c, on->retries, "retries", &o->retries);
    if (on->timeout != NULL && get_duration(c, on->timeout, "timeout", &ms))
        o->timeout_ms = ms;
    if (on->interruptible != NULL)
        get_bool(c, on->interruptible, "interruptible", &o->interruptible);
    if (on->cache != NULL)
        parse_cache(c, on->cache, o, owner);
    if (on->resources != NULL)
        parse_resources(c, on->resources, o, owner);
    if (on->queue != NULL)
        parse_queue(c, on->queue, o);
}

static void
parse_backoff(struct ctx *c, yaml_node_t *k, yaml_node_t *v,
              struct mapq_task_opts *o, const char *owner)
{
    struct fields f;
    char where[256];

    if (!expect_map(c, v,
                    "'retry_backoff' must be a mapping like {initial: 1s, "
                    "max: 1m, factor: 2}"))
        return;
    snprintf(where, sizeof(where), "in 'retry_backoff' of %.200s", owner);
    get_fields(c, v, backoff_fields, BF_N, &f, where);
    if (f.val[BF_INITIAL] == NULL) {
        perr(c, k, "'retry_backoff' of %s needs 'initial'", owner);
        return;
    }
    if (!get_duration(c, f.val[BF_INITIAL], "initial", &o->backoff_initial_ms))
        return;
    o->backoff_factor = 2.0;
    if (f.val[BF_FACTOR] != NULL)
        get_real(c, f.val[BF_FACTOR], "factor", 1, false, 1e6, "a number >= 1",
                 &o->backoff_factor);
    o->backoff_max_ms = o->backoff_initial_ms > BACKOFF_MAX_DEFAULT_MS
                            ? o->backoff_initial_ms
                            : BACKOFF_MAX_DEFAULT_MS;
    if (f.val[BF_MAX] == NULL ||
        !get_duration(c, f.val[BF_MAX], "max", &o->backoff_max_ms))
        return;
    if (o->backoff_max_ms < o->backoff_initial_ms)
        perr(c, f.val[BF_MAX], "'max' must not be less than 'initial'");
}

static void
parse_task_inputs(struct ctx *c, yaml_node_t *map, struct mapq_task_def *t)
{
    bool *skip;
    size_t i, n;
    yaml_node_t *k;
    struct mapq_param *p;
    char what[256];

    if (!expect_map(c, map, "'inputs' must be a mapping of name to type"))
        return;
    n = npairs(map);
    skip = check_keys(c, map);
    t->inputs = mapq_xcalloc(n ? n : 1, sizeof(*t->inputs));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !check_ident(c, k, "input"))
            continue;
        p = &t->inputs[t->ninputs++];
        p->name = mapq_xstrdup(stext(k));
        p->pos = pos_of(k);
        mapq_buf_init(&p->value, 0);
        snprintf(what, sizeof(what), "type of input '%s' of task '%s'", p->name,
                 t->name);
        p->type =
            get_type(c, cnode(c, map->data.mapping.pairs.start[i].value), what);
    }
    free(skip);
}

/* Reports {name} placeholders in arg that name no input of t. */
static void
check_placeholders(struct ctx *c, const yaml_node_t *arg,
                   const struct mapq_task_def *t)
{
    const char *p = stext(arg);
    char hint[MSG_MAX / 2], name[EDIT_MAX + 1];
    size_t n;

    for (p = strchr(p, '{'); p != NULL; p = strchr(p, '{')) {
        n = ident_len(p + 1);
        if (n == 0 || p[1 + n] != '}') {
            p++;
            continue;
        }
        if (find_param(t, p + 1, n) < 0) {
            snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
            perr(c, arg, "placeholder '{%.*s}' names no input of task '%s'%s",
                 (int)n, p + 1, t->name,
                 hint_names(&c->probs, name, t->inputs, t->ninputs,
                            sizeof(*t->inputs), "inputs", hint, sizeof(hint)));
        }
        p += n + 2;
    }
}

/*
 * Refuses {name} placeholders inside the script of `sh -c SCRIPT` (and its
 * kin, mapq_shell.h) unless the task says `shell_placeholders: raw`: there
 * the input's text would become shell code. v is the command's sequence.
 */
static void
check_shell_placeholders(struct ctx *c, yaml_node_t *v, yaml_node_t *setting,
                         const struct mapq_task_def *t)
{
    const yaml_node_t *arg;
    const char *p;
    long script;
    size_t n, runner;
    char d[96];

    if (setting != NULL) {
        if (setting->type == YAML_SCALAR_NODE &&
            strcmp(stext(setting), "raw") == 0)
            return;
        if (setting->type != YAML_SCALAR_NODE ||
            strcmp(stext(setting), "refuse") != 0) {
            perr(c, setting,
                 "'shell_placeholders' must be 'refuse' or 'raw', got %s",
                 describe(setting, d, sizeof(d)));
            return;
        }
    }
    script =
        mapq_shell_script_index((const char *const *)t->argv, t->argc, &runner);
    /* argv skips entries that were not strings: then positions differ. */
    if (script < 0 || t->argc != nitems(v))
        return;
    arg = cnode(c, v->data.sequence.items.start[script]);
    for (p = strchr(t->argv[script], '{'); p != NULL; p = strchr(p + 1, '{')) {
        n = ident_len(p + 1);
        if (n == 0 || p[1 + n] != '}' || find_param(t, p + 1, n) < 0)
            continue;
        perr(c, arg,
             "placeholder '{%.*s}' is inside the script that '%s' runs, where "
             "its text would run as shell code; write \"$MAPQ_IN_%.*s\" in "
             "the script instead (quoted), or set 'shell_placeholders: raw' "
             "in task '%s' if its inputs are trusted",
             (int)n, p + 1, t->argv[runner], (int)n, p + 1, t->name);
        return;
    }
}

static void
parse_command(struct ctx *c, yaml_node_t *v, struct mapq_task_def *t)
{
    size_t i, n;
    yaml_node_t *a;
    char d[96];

    if (v->type != YAML_SEQUENCE_NODE || nitems(v) == 0) {
        perr(c, v,
             "'command' must be a non-empty list of strings (an argv, e.g. "
             "[sh, -c, \"...\"]), got %s",
             describe(v, d, sizeof(d)));
        return;
    }
    n = nitems(v);
    t->argv = mapq_xcalloc(n + 1, sizeof(*t->argv));
    for (i = 0; i < n; i++) {
        a = cnode(c, v->data.sequence.items.start[i]);
        if (a->type != YAML_SCALAR_NODE || strlen(stext(a)) != slen(a)) {
            perr(c, a, "'command' entries must be strings, got %s",
                 describe(a, d, sizeof(d)));
            continue;
        }
        check_placeholders(c, a, t);
        t->argv[t->argc++] = mapq_xstrdup(stext(a));
    }
}

/*
 * A library path containing '/' is taken relative to the workflow file's
 * directory and made absolute; a bare name is left to the agent's search.
 */
static char *
resolve_library(const char *file, const char *lib)
{
    char dir[PATH_MAX], real[PATH_MAX], cwd[PATH_MAX];
    const char *slash = strrchr(file, '/');
    size_t n;

    if (strchr(lib, '/') == NULL || lib[0] == '/')
        return mapq_xstrdup(lib);
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    if (realpath(dir, real) == NULL) {
        if (dir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
            snprintf(real, sizeof(real), "%s", dir);
        else if (snprintf(real, sizeof(real), "%s/%s", cwd, dir) < 0)
            real[0] = '\0';
    }
    while (lib[0] == '.' && lib[1] == '/')
        lib += 2;
    n = strlen(real);
    return mapq_xasprintf("%s%s%s", real,
                          n > 0 && real[n - 1] == '/' ? "" : "/", lib);
}

static void
parse_plugin(struct ctx *c, yaml_node_t *k, yaml_node_t *v,
             struct mapq_task_def *t)
{
    struct fields f;
    char where[256], *lib;

    if (!expect_map(c, v,
                    "'plugin' must be a mapping {library: PATH, symbol: NAME}"))
        return;
    snprintf(where, sizeof(where), "in 'plugin' of task '%s'", t->name);
    get_fields(c, v, plugin_fields, PF_N, &f, where);
    if (f.val[PF_LIBRARY] == NULL)
        perr(c, k, "'plugin' of task '%s' needs 'library'", t->name);
    if (f.val[PF_SYMBOL] == NULL)
        perr(c, k, "'plugin' of task '%s' needs 'symbol'", t->name);
    if (f.val[PF_LIBRARY] != NULL) {
        lib = get_string(c, f.val[PF_LIBRARY], "library", true);
        if (lib != NULL)
            t->plugin_library = resolve_library(c->file, lib);
        free(lib);
    }
    if (f.val[PF_SYMBOL] != NULL)
        t->plugin_symbol = get_string(c, f.val[PF_SYMBOL], "symbol", true);
}

/* command or plugin, exactly one. */
static void
parse_body(struct ctx *c, yaml_node_t *k, const struct fields *f,
           struct mapq_task_def *t)
{
    if (f->val[TF_COMMAND] != NULL && f->val[TF_PLUGIN] != NULL) {
        perr(c, f->key[TF_PLUGIN],
             "task '%s' has both 'command' and 'plugin'; give exactly one",
             t->name);
        return;
    }
    if (f->val[TF_COMMAND] != NULL) {
        t->kind = MAPQ_TASK_COMMAND;
        parse_command(c, f->val[TF_COMMAND], t);
    } else if (f->val[TF_PLUGIN] != NULL) {
        t->kind = MAPQ_TASK_PLUGIN;
        parse_plugin(c, f->key[TF_PLUGIN], f->val[TF_PLUGIN], t);
    } else {
        perr(c, k, "task '%s' needs 'command' or 'plugin'", t->name);
    }
}

static void
parse_output_format(struct ctx *c, yaml_node_t *v, struct mapq_task_def *t)
{
    char d[96], tn[128];

    if (v->type != YAML_SCALAR_NODE || strcmp(stext(v), "text") != 0) {
        perr(c, v, "'output_format' must be 'text', got %s",
             describe(v, d, sizeof(d)));
        return;
    }
    if (t->output == NULL || t->output->kind != MAPQ_T_STR) {
        perr(c, v, "'output_format: text' needs 'output: str', got %s",
             t->output ? fmt_type(t->output, tn, sizeof(tn)) : "no output");
        return;
    }
    t->output_text = true;
}

static void
parse_task_fields(struct ctx *c, yaml_node_t *k, const struct fields *f,
                  struct mapq_task_def *t, bool *out_bad)
{
    struct opt_nodes on = {f->val[TF_RETRIES],       f->val[TF_TIMEOUT],
                           f->val[TF_INTERRUPTIBLE], f->val[TF_CACHE],
                           f->val[TF_RESOURCES],     f->val[TF_QUEUE]};
    char owner[256], what[256];

    snprintf(owner, sizeof(owner), "task '%s'", t->name);
    if (f->val[TF_INPUTS] != NULL)
        parse_task_inputs(c, f->val[TF_INPUTS], t);
    t->input_index = index_names(t->inputs, t->ninputs, sizeof(*t->inputs));
    if (f->val[TF_OUTPUT] != NULL) {
        snprintf(what, sizeof(what), "'output' of task '%s'", t->name);
        t->output = get_type(c, f->val[TF_OUTPUT], what);
        *out_bad = t->output == NULL;
    }
    parse_body(c, k, f, t);
    if (t->kind == MAPQ_TASK_COMMAND && t->argv != NULL)
        check_shell_placeholders(c, f->val[TF_COMMAND],
                                 f->val[TF_SHELL_PLACEHOLDERS], t);
    else if (f->val[TF_SHELL_PLACEHOLDERS] != NULL)
        perr(c, f->key[TF_SHELL_PLACEHOLDERS],
             "'shell_placeholders' applies to command tasks only");
    if (f->val[TF_OUTPUT_FORMAT] != NULL && !*out_bad)
        parse_output_format(c, f->val[TF_OUTPUT_FORMAT], t);
    parse_overridable(c, &on, &t->opts, owner);
    if (f->val[TF_CACHE_SERIALIZE] != NULL &&
        get_bool(c, f->val[TF_CACHE_SERIALIZE], "cache_serialize",
                 &t->opts.cache_serialize) &&
        t->opts.cache_serialize && !t->opts.cache)
        perr(c, f->key[TF_CACHE_SERIALIZE],
             "'cache_serialize' needs 'cache' to be enabled");
    if (f->val[TF_RETRY_BACKOFF] != NULL)
        parse_backoff(c, f->key[TF_RETRY_BACKOFF], f->val[TF_RETRY_BACKOFF],
                      &t->opts, owner);
}

static void
parse_task(struct ctx *c, yaml_node_t *k, yaml_node_t *v,
           struct mapq_task_def *t, bool *out_bad)
{
    struct fields f;
    char where[256];

    t->name = mapq_xstrdup(stext(k));
    t->pos = pos_of(k);
    opts_init(&t->opts);
    if (v->type != YAML_MAPPING_NODE) {
        char d[96];

        perr(c, v,
             "task '%s' must be a mapping with 'inputs', 'output' and "
             "'command' or 'plugin', got %s",
             t->name, describe(v, d, sizeof(d)));
        return;
    }
    snprintf(where, sizeof(where), "in task '%s'", t->name);
    get_fields(c, v, task_fields, TF_N, &f, where);
    parse_task_fields(c, k, &f, t, out_bad);
}

static void
parse_tasks(struct ctx *c, yaml_node_t *map)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (!expect_map(c, map, "'tasks' must be a mapping of name to task"))
        return;
    n = npairs(map);
    skip = check_keys(c, map);
    wf->tasks = mapq_xcalloc(n ? n : 1, sizeof(*wf->tasks));
    c->task_out_bad = mapq_xcalloc(n ? n : 1, sizeof(*c->task_out_bad));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !check_ident(c, k, "task"))
            continue;
        parse_task(c, k, cnode(c, map->data.mapping.pairs.start[i].value),
                   &wf->tasks[wf->ntasks], &c->task_out_bad[wf->ntasks]);
        wf->ntasks++;
    }
    free(skip);
}

/* ---- nodes: settings --------------------------------------------------- */

enum {
    NF_MAP,
    NF_TASK,
    NF_OVER,
    NF_WITH,
    NF_CONCURRENCY,
    NF_MIN_SUCCESS_RATIO,
    NF_MIN_SUCCESSES,
    NF_RUN_ALL,
    NF_SYSTEM_RETRIES,
    NF_INTERRUPTIBLE_FAILURES,
    NF_RETRIES,
    NF_TIMEOUT,
    NF_INTERRUPTIBLE,
    NF_CACHE,
    NF_RESOURCES,
    NF_QUEUE,
    NF_N
};
static const char *const node_fields[NF_N] = {"map",
                                              "task",
                                              "over",
                                              "with",
                                              "concurrency",
                                              "min_success_ratio",
                                              "min_successes",
                                              "run_all",
                                              "system_retries",
                                              "interruptible_failures",
                                              "retries",
                                              "timeout",
                                              "interruptible",
                                              "cache",
                                              "resources",
                                              "queue"};

/* Finds the node's task from `map:` or `task:`. */
static void
node_task(struct ctx *c, size_t i, const struct fields *f)
{
    struct mapq_node *n = &c->wf->nodes[i];
    yaml_node_t *tv;
    long t;
    char hint[MSG_MAX / 2];

    if (f->val[NF_MAP] != NULL && f->val[NF_TASK] != NULL) {
        perr(c, f->key[NF_TASK],
             "node '%s' has both 'map' and 'task'; give exactly one", n->name);
        return;
    }
    if (f->val[NF_MAP] == NULL && f->val[NF_TASK] == NULL) {
        perr(c, c->ni[i].key, "node '%s' needs 'map: TASK' or 'task: TASK'",
             n->name);
        return;
    }
    n->is_map = f->val[NF_MAP] != NULL;
    tv = n->is_map ? f->val[NF_MAP] : f->val[NF_TASK];
    if (!is_string(tv)) {
        perr(c, tv, "'%s' must name a task, got %s", n->is_map ? "map" : "task",
             describe(tv, hint, sizeof(hint)));
        return;
    }
    t = mapq_workflow_find_task(c->wf, stext(tv));
    if (t < 0) {
        perr(c, tv, "unknown task '%s'%s", stext(tv),
             hint_names(&c->probs, stext(tv), c->wf->tasks, c->wf->ntasks,
                        sizeof(*c->wf->tasks), "tasks", hint, sizeof(hint)));
        return;
    }
    n->task = (size_t)t;
    c->ni[i].task_ok = true;
}

/* min_success_ratio, min_successes, run_all, over: map nodes only. */
static bool
map_only(struct ctx *c, const struct mapq_node *n, const struct fields *f,
         int field)
{
    if (f->val[field] == NULL)
        return false;
    if (n->is_map || (f->val[NF_MAP] == NULL && f->val[NF_TASK] == NULL))
        return true;
    perr(c, f->key[field],
         "'%s' is only allowed in map nodes; node '%s' is a task node",
         node_fields[field], n->name);
    return false;
}

static void
node_map_settings(struct ctx *c, struct mapq_node *n, const struct fields *f)
{
    if (f->val[NF_CONCURRENCY] != NULL)
        get_int(c, f->val[NF_CONCURRENCY], "concurrency", 1, INT64_MAX,
                &n->concurrency);
    if (map_only(c, n, f, NF_MIN_SUCCESS_RATIO))
        get_real(c, f->val[NF_MIN_SUCCESS_RATIO], "min_success_ratio", 0, false,
                 1, "a number between 0 and 1", &n->min_success_ratio);
    if (map_only(c, n, f, NF_MIN_SUCCESSES))
        get_int(c, f->val[NF_MIN_SUCCESSES], "min_successes", 0, INT64_MAX,
                &n->min_successes);
    if (map_only(c, n, f, NF_RUN_ALL))
        get_bool(c, f->val[NF_RUN_ALL], "run_all", &n->run_all);
    if (f->val[NF_SYSTEM_RETRIES] != NULL)
        get_small(c, f->val[NF_SYSTEM_RETRIES], "system_retries",
                  &n->system_retries);
    n->interruptible_failures =
        n->system_retries > 0 ? n->system_retries - 1 : 0;
    if (f->val[NF_INTERRUPTIBLE_FAILURES] != NULL)
        get_small(c, f->val[NF_INTERRUPTIBLE_FAILURES],
                  "interruptible_failures", &n->interruptible_failures);
}

/* T for a task node; list[T], or list[T?] when failures may leave nulls. */
static void
node_output_type(struct ctx *c, struct mapq_node *n)
{
    const struct mapq_type *out = c->wf->tasks[n->task].output;
    struct mapq_type *elem;

    if (out == NULL)
        return;
    if (!n->is_map) {
        n->output_type = mapq_type_dup(out);
        return;
    }
    elem = mapq_type_dup(out);
    if (n->min_success_ratio < 1.0 || n->min_successes >= 0)
        elem->optional = true;
    n->output_type = mapq_type_new(MAPQ_T_LIST, false, elem);
}

static void
parse_node(struct ctx *c, size_t i, yaml_node_t *k, yaml_node_t *v)
{
    struct mapq_node *n = &c->wf->nodes[i];
    struct fields f;
    char where[256], owner[256];

    n->name = mapq_xstrdup(stext(k));
    n->pos = pos_of(k);
    n->min_success_ratio = 1.0;
    n->min_successes = -1;
    n->system_retries = c->wf->system_retries;
    c->ni[i].key = k;
    if (v->type != YAML_MAPPING_NODE) {
        perr(c, v, "node '%s' must be a mapping with 'map' or 'task', got %s",
             n->name, describe(v, where, sizeof(where)));
        opts_init(&n->opts);
        return;
    }
    snprintf(where, sizeof(where), "in node '%s'", n->name);
    get_fields(c, v, node_fields, NF_N, &f, where);
    node_task(c, i, &f);
    if (c->ni[i].task_ok)
        opts_copy(&n->opts, &c->wf->tasks[n->task].opts);
    else
        opts_init(&n->opts);
    snprintf(owner, sizeof(owner), "node '%s'", n->name);
    parse_overridable(c,
                      &(struct opt_nodes){f.val[NF_RETRIES], f.val[NF_TIMEOUT],
                                          f.val[NF_INTERRUPTIBLE],
                                          f.val[NF_CACHE], f.val[NF_RESOURCES],
                                          f.val[NF_QUEUE]},
                      &n->opts, owner);
    node_map_settings(c, n, &f);
    if (map_only(c, n, &f, NF_OVER)) {
        c->ni[i].over = f.val[NF_OVER];
        c->ni[i].over_key = f.key[NF_OVER];
    }
    c->ni[i].with = f.val[NF_WITH];
    if (c->ni[i].task_ok)
        node_output_type(c, n);
}

static void
parse_nodes(struct ctx *c, yaml_node_t *map)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (!expect_map(c, map, "'nodes' must be a mapping of name to node"))
        return;
    n = npairs(map);
    skip = check_keys(c, map);
    wf->nodes = mapq_xcalloc(n ? n : 1, sizeof(*wf->nodes));
    c->ni = mapq_xcalloc(n ? n : 1, sizeof(*c->ni));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !check_ident(c, k, "node"))
            continue;
        if (strcmp(stext(k), "inputs") == 0) {
            perr(c, k,
                 "node name 'inputs' is reserved ($inputs.NAME names "
                 "workflow inputs)");
            continue;
        }
        parse_node(c, wf->nnodes, k,
                   cnode(c, map->data.mapping.pairs.start[i].value));
        wf->nnodes++;
    }
    free(skip);
}

/* ---- nodes: bindings --------------------------------------------------- */

/* True for a string scalar starting with '$': a reference, or $$ escape. */
static bool
is_ref(const yaml_node_t *v)
{
    return is_string(v) && stext(v)[0] == '$';
}

/* Resolves $inputs.NAME or $NODE at v into b; false (reported) if bad. */
static bool
resolve_ref(struct ctx *c, yaml_node_t *v, struct mapq_binding *b)
{
    const struct mapq_workflow *wf = c->wf;
    const char *s = stext(v) + 1;
    char hint[MSG_MAX / 2];
    long k;

    if (strncmp(s, "inputs.", 7) == 0 && valid_ident(s + 7)) {
        k = mapq_workflow_find_input(wf, s + 7);
        if (k < 0) {
            perr(c, v, "unknown input '%s'%s", s + 7,
                 hint_names(&c->probs, s + 7, wf->inputs, wf->ninputs,
                            sizeof(*wf->inputs), "inputs", hint, sizeof(hint)));
            return false;
        }
        b->kind = MAPQ_REF_INPUT;
        b->ref = mapq_xstrdup(s + 7);
    } else if (valid_ident(s) && strcmp(s, "inputs") != 0) {
        k = mapq_workflow_find_node(wf, s);
        if (k < 0) {
            perr(c, v, "unknown node '%s'%s", s,
                 c->probs.n < PROBLEMS_SHOWN
                     ? suggest_in(s, wf->nodes, wf->nnodes, sizeof(*wf->nodes),
                                  hint, sizeof(hint))
                     : "");
            return false;
        }
        b->kind = MAPQ_REF_NODE;
        b->ref = mapq_xstrdup(s);
    } else {
        perr(c, v,
             "malformed reference '%s' (expected $inputs.NAME or $NODE; "
             "write $$ for a literal $)",
             stext(v));
        return false;
    }
    b->target = (size_t)k;
    return true;
}

static void
add_dep(struct mapq_node *n, size_t j)
{
    size_t i;

    for (i = 0; i < n->ndeps; i++)
        if (n->deps[i] == j)
            return;
    n->deps = mapq_xrealloc(n->deps, (n->ndeps + 1) * sizeof(*n->deps));
    n->deps[n->ndeps++] = j;
}

/* The type of what reference b names; NULL when unknown (or reported). */
static const struct mapq_type *
ref_type(struct ctx *c, yaml_node_t *v, const struct mapq_binding *b)
{
    const struct mapq_node *src;

    if (b->kind == MAPQ_REF_INPUT)
        return c->wf->inputs[b->target].type;
    src = &c->wf->nodes[b->target];
    if (!c->ni[b->target].task_ok || c->task_out_bad[src->task])
        return NULL;
    if (src->output_type == NULL)
        perr(c, v, "node '%s' has no output (task '%s' declares none)",
             src->name, c->wf->tasks[src->task].name);
    return src->output_type;
}

/* Not a list, dict or any: int, float, bool, str, bytes (optional or not). */
static bool
is_scalar_type(const struct mapq_type *t)
{
    return t->kind != MAPQ_T_LIST && t->kind != MAPQ_T_DICT &&
           t->kind != MAPQ_T_ANY;
}

static void
list_to_scalar(struct ctx *c, const struct mapq_node *n, yaml_node_t *v,
               const struct mapq_param *p)
{
    char tn[128];

    perr(c, v, "binding a list to scalar parameter '%s' (%s); %s", p->name,
         fmt_type(p->type, tn, sizeof(tn)),
         n->is_map ? "map over it with 'over' instead"
                   : "use a map node and map over it with 'over' instead");
}

static void
check_with_type(struct ctx *c, const struct mapq_node *n, yaml_node_t *v,
                const struct mapq_param *p, const struct mapq_type *src)
{
    char a[128], b[128];

    if (mapq_type_is_list(src) && is_scalar_type(p->type))
        list_to_scalar(c, n, v, p);
    else if (!mapq_type_assignable(src, p->type))
        perr(c, v, "cannot bind %s (%s) to parameter '%s' (%s)", stext(v),
             fmt_type(src, a, sizeof(a)), p->name,
             fmt_type(p->type, b, sizeof(b)));
}

static void
check_over_type(struct ctx *c, yaml_node_t *v, const struct mapq_param *p,
                const struct mapq_type *src)
{
    char a[128], b[128];

    if (src->kind == MAPQ_T_ANY)
        return;
    if (!mapq_type_is_list(src))
        perr(c, v, "cannot map over %s: it is %s, not a list", stext(v),
             fmt_type(src, a, sizeof(a)));
    else if (src->optional)
        perr(c, v, "cannot map over %s: it is %s and may be null", stext(v),
             fmt_type(src, a, sizeof(a)));
    else if (!mapq_type_assignable(child_type(src), p->type))
        perr(c, v, "cannot map %s (%s) over parameter '%s' (%s)", stext(v),
             fmt_type(src, a, sizeof(a)), p->name,
             fmt_type(p->type, b, sizeof(b)));
}

/* Fills b from value v bound to task input p of node i. */
static void
make_binding(struct ctx *c, size_t i, const struct mapq_param *p,
             yaml_node_t *v, bool over, struct mapq_binding *b)
{
    struct mapq_node *n = &c->wf->nodes[i];
    struct mapq_type lt = {MAPQ_T_LIST, false, p->type};
    const struct mapq_type *src;
    char subject[256];

    b->param = mapq_xstrdup(p->name);
    b->kind = MAPQ_REF_LITERAL;
    b->pos = pos_of(v);
    mapq_buf_init(&b->literal, MAPQ_VALUE_MAX);
    snprintf(subject, sizeof(subject), "'%s'", p->name);
    if (is_ref(v) && stext(v)[1] != '$') {
        if (!resolve_ref(c, v, b))
            return;
        if (b->kind == MAPQ_REF_NODE)
            add_dep(n, b->target);
        src = ref_type(c, v, b);
        if (src == NULL || p->type == NULL)
            return;
        if (over)
            check_over_type(c, v, p, src);
        else
            check_with_type(c, n, v, p, src);
        return;
    }
    if (p->type == NULL)
        return;
    if (is_ref(v))
        conv_string(c, v, stext(v) + 1, over ? &lt : p->type, &b->literal,
                    subject);
    else if (!over && v->type == YAML_SEQUENCE_NODE && is_scalar_type(p->type))
        list_to_scalar(c, n, v, p);
    else
        conv_literal(c, v, over ? &lt : p->type, &b->literal, subject);
}

/* Binds the entries of an `over` or `with` mapping of node i. */
static void
bind_map(struct ctx *c, size_t i, yaml_node_t *map, bool over, char *bound)
{
    struct mapq_node *n = &c->wf->nodes[i];
    const struct mapq_task_def *t = &c->wf->tasks[n->task];
    struct mapq_binding *arr;
    size_t *cnt = over ? &n->nover : &n->nwith;
    size_t j, np;
    bool *skip;
    yaml_node_t *k;
    long idx;
    char hint[MSG_MAX / 2];

    if (!expect_map(c, map,
                    over ? "'over' must be a mapping of task input to list"
                         : "'with' must be a mapping of task input to value"))
        return;
    np = npairs(map);
    skip = check_keys(c, map);
    arr = mapq_xcalloc(np ? np : 1, sizeof(*arr));
    if (over)
        n->over = arr;
    else
        n->with = arr;
    for (j = 0; j < np; j++) {
        k = cnode(c, map->data.mapping.pairs.start[j].key);
        if (skip[j])
            continue;
        idx = find_param(t, stext(k), slen(k));
        if (idx < 0) {
            perr(c, k, "task '%s' has no input '%s'%s", t->name, stext(k),
                 hint_names(&c->probs, stext(k), t->inputs, t->ninputs,
                            sizeof(*t->inputs), "inputs", hint, sizeof(hint)));
            continue;
        }
        if (bound[idx]) {
            perr(c, k,
                 "input '%s' of task '%s' is bound twice, in 'over' and in "
                 "'with'",
                 stext(k), t->name);
            continue;
        }
        bound[idx] = 1;
        make_binding(c, i, &t->inputs[idx],
                     cnode(c, map->data.mapping.pairs.start[j].value), over,
                     &arr[(*cnt)++]);
    }
    free(skip);
}

/* Length of the msgpack array that data starts with; false if none. */
static bool
array_len(const char *data, size_t len, size_t *n)
{
    const unsigned char *p = (const unsigned char *)data;

    if (len >= 1 && (p[0] & 0xf0) == 0x90) {
        *n = p[0] & 0x0f;
        return true;
    }
    if (len >= 3 && p[0] == 0xdc) {
        *n = (size_t)p[1] << 8 | p[2];
        return true;
    }
    if (len >= 5 && p[0] == 0xdd) {
        *n = (size_t)p[1] << 24 | (size_t)p[2] << 16 | (size_t)p[3] << 8 | p[4];
        return true;
    }
    return false;
}

/*
 * Reports the first of n's zipped lists whose length differs from the
 * first known one; lens[j] is SIZE_MAX when over[j]'s length is unknown.
 */
static void
zip_check(struct problems *ps, const char *file, const struct mapq_node *n,
          const size_t *lens)
{
    size_t first = SIZE_MAX, j;

    for (j = 0; j < n->nover; j++) {
        if (lens[j] == SIZE_MAX)
            continue;
        if (first == SIZE_MAX) {
            first = j;
        } else if (lens[j] != lens[first]) {
            prob_add(ps, file, n->over[j].pos.line, n->over[j].pos.col,
                     "input lists have different lengths: '%s' has %zu, "
                     "'%s' has %zu",
                     n->over[first].param, lens[first], n->over[j].param,
                     lens[j]);
            return;
        }
    }
}

static void
literal_zip(struct ctx *c, const struct mapq_node *n)
{
    size_t *lens = mapq_xcalloc(n->nover ? n->nover : 1, sizeof(*lens));
    size_t j;

    for (j = 0; j < n->nover; j++) {
        lens[j] = SIZE_MAX;
        if (n->over[j].kind == MAPQ_REF_LITERAL)
            array_len(n->over[j].literal.data, n->over[j].literal.len,
                      &lens[j]);
    }
    zip_check(&c->probs, c->file, n, lens);
    free(lens);
}

static void
node_bindings(struct ctx *c, size_t i)
{
    struct mapq_node *n = &c->wf->nodes[i];
    const struct nodeinfo *ni = &c->ni[i];
    const struct mapq_task_def *t;
    char *bound;
    size_t j;

    if (!ni->task_ok)
        return;
    t = &c->wf->tasks[n->task];
    bound = mapq_xcalloc(t->ninputs ? t->ninputs : 1, 1);
    if (ni->over != NULL)
        bind_map(c, i, ni->over, true, bound);
    if (ni->with != NULL)
        bind_map(c, i, ni->with, false, bound);
    for (j = 0; j < t->ninputs; j++)
        if (!bound[j])
            perr(c, ni->key,
                 "input '%s' of task '%s' is not bound in node '%s'; add it "
                 "to %s",
                 t->inputs[j].name, t->name, n->name,
                 n->is_map ? "'over' or 'with'" : "'with'");
    free(bound);
    if (n->is_map &&
        (ni->over == NULL ||
         (ni->over->type == YAML_MAPPING_NODE && npairs(ni->over) == 0)))
        perr(c, ni->over_key ? ni->over_key : ni->key,
             "map node '%s' needs at least one 'over' entry (a list to map "
             "over)",
             n->name);
    literal_zip(c, n);
}

/* ---- workflow output, name, order -------------------------------------- */

static void
output_ref(struct ctx *c, yaml_node_t *v, struct mapq_binding *b,
           const char *name)
{
    char d[96];

    b->param = name != NULL ? mapq_xstrdup(name) : NULL;
    b->kind = MAPQ_REF_LITERAL;
    b->pos = pos_of(v);
    mapq_buf_init(&b->literal, 0);
    if (!is_ref(v) || stext(v)[1] == '$') {
        perr(c, v,
             "'output' must be a reference such as $NODE or $inputs.NAME, "
             "got %s",
             describe(v, d, sizeof(d)));
        return;
    }
    if (resolve_ref(c, v, b) && b->kind == MAPQ_REF_NODE)
        ref_type(c, v, b);
}

static void
parse_output(struct ctx *c, yaml_node_t *v)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (v->type != YAML_MAPPING_NODE) {
        wf->outputs = mapq_xcalloc(1, sizeof(*wf->outputs));
        wf->noutputs = 1;
        output_ref(c, v, &wf->outputs[0], NULL);
        return;
    }
    wf->output_is_map = true;
    n = npairs(v);
    skip = check_keys(c, v);
    wf->outputs = mapq_xcalloc(n ? n : 1, sizeof(*wf->outputs));
    for (i = 0; i < n; i++) {
        k = cnode(c, v->data.mapping.pairs.start[i].key);
        if (skip[i] || !check_ident(c, k, "output"))
            continue;
        output_ref(c, cnode(c, v->data.mapping.pairs.start[i].value),
                   &wf->outputs[wf->noutputs++], stext(k));
    }
    free(skip);
}

/* Reports path[0..len-1], each node referencing the next, as a cycle. */
static void
report_cycle(struct ctx *c, const size_t *path, size_t len)
{
    struct mapq_buf b;
    size_t start = 0, j;

    mapq_buf_init(&b, 0);
    for (j = 1; j < len; j++)
        if (path[j] < path[start])
            start = j;
    for (j = 0; j <= len; j++)
        mapq_buf_printf(&b, "%s%s", j ? " -> " : "",
                        c->wf->nodes[path[(start + j) % len]].name);
    perr(c, c->ni[path[start]].key, "cycle: %s", b.data);
    mapq_buf_release(&b);
}

/*
 * Reports each cycle among the nodes a topological sort left undone. Every
 * undone node has an undone dependency, so following them always ends in
 * a cycle; seen[] keeps the walk linear.
 */
static void
find_cycles(struct ctx *c, const bool *done)
{
    const struct mapq_workflow *wf = c->wf;
    size_t n = wf->nnodes, s, u, j, len;
    size_t *onpath = mapq_xmalloc((n ? n : 1) * sizeof(*onpath));
    size_t *path = mapq_xmalloc((n ? n : 1) * sizeof(*path));
    bool *seen = mapq_xcalloc(n ? n : 1, sizeof(*seen));

    for (s = 0; s < n; s++)
        onpath[s] = SIZE_MAX;
    for (s = 0; s < n; s++) {
        if (done[s] || seen[s])
            continue;
        for (len = 0, u = s; !seen[u];) {
            seen[u] = true;
            onpath[u] = len;
            path[len++] = u;
            for (j = 0; done[wf->nodes[u].deps[j]]; j++)
                mapq_assert(j + 1 < wf->nodes[u].ndeps);
            u = wf->nodes[u].deps[j];
        }
        if (onpath[u] != SIZE_MAX)
            report_cycle(c, path + onpath[u], len - onpath[u]);
        for (j = 0; j < len; j++)
            onpath[path[j]] = SIZE_MAX;
    }
    free(seen);
    free(path);
    free(onpath);
}

/* Kahn's algorithm over deps; wf->order gets the nodes, sources first. */
static void
topo_order(struct ctx *c)
{
    struct mapq_workflow *wf = c->wf;
    size_t n = wf->nnodes, i, j, head = 0, tail = 0, nedges = 0, u, v;
    size_t *indeg = mapq_xcalloc(n + 1, sizeof(*indeg));
    size_t *start = mapq_xcalloc(n + 2, sizeof(*start));
    size_t *users, *fill;
    bool *done = mapq_xcalloc(n + 1, sizeof(*done));

    for (i = 0; i < n; i++) {
        indeg[i] = wf->nodes[i].ndeps;
        nedges += wf->nodes[i].ndeps;
        for (j = 0; j < wf->nodes[i].ndeps; j++)
            start[wf->nodes[i].deps[j] + 1]++;
    }
    for (i = 0; i < n; i++)
        start[i + 1] += start[i];
    users = mapq_xcalloc(nedges + 1, sizeof(*users));
    fill = mapq_xmemdup(start, (n + 1) * sizeof(*start));
    for (i = 0; i < n; i++)
        for (j = 0; j < wf->nodes[i].ndeps; j++)
            users[fill[wf->nodes[i].deps[j]]++] = i;
    wf->order = mapq_xcalloc(n + 1, sizeof(*wf->order));
    for (i = 0; i < n; i++)
        if (indeg[i] == 0)
            wf->order[tail++] = i;
    while (head < tail) {
        u = wf->order[head++];
        done[u] = true;
        for (j = start[u]; j < start[u + 1]; j++) {
            v = users[j];
            if (--indeg[v] == 0)
                wf->order[tail++] = v;
        }
    }
    if (tail < n)
        find_cycles(c, done);
    free(fill);
    free(users);
    free(done);
    free(start);
    free(indeg);
}

enum { WF_NAME, WF_INPUTS, WF_TASKS, WF_NODES, WF_OUTPUT, WF_SYSRETRIES, WF_N };
static const char *const top_fields[WF_N] = {
    "name", "inputs", "tasks", "nodes", "output", "system_retries"};

static void
parse_name(struct ctx *c, yaml_node_t *v)
{
    char d[96];

    if (v->type != YAML_SCALAR_NODE || strlen(stext(v)) != slen(v) ||
        !valid_word(stext(v), "_-", false)) {
        perr(c, v,
             "'name' must be a workflow name matching [a-z0-9_-]+, got %s",
             describe(v, d, sizeof(d)));
        return;
    }
    c->wf->name = mapq_xstrdup(stext(v));
}

static void
parse_root(struct ctx *c, yaml_node_t *root)
{
    struct mapq_workflow *wf = c->wf;
    struct fields f;
    size_t i;

    if (!expect_map(c, root,
                    "a workflow must be a mapping with 'name', 'tasks' and "
                    "'nodes'"))
        return;
    get_fields(c, root, top_fields, WF_N, &f, "at the top level");
    if (f.val[WF_NAME] == NULL)
        perr(c, root, "missing required key 'name'");
    else
        parse_name(c, f.val[WF_NAME]);
    if (f.val[WF_SYSRETRIES] != NULL)
        get_small(c, f.val[WF_SYSRETRIES], "system_retries",
                  &wf->system_retries);
    if (f.val[WF_INPUTS] != NULL)
        parse_inputs(c, f.val[WF_INPUTS]);
    wf->input_index = index_names(wf->inputs, wf->ninputs, sizeof(*wf->inputs));
    if (f.val[WF_TASKS] != NULL)
        parse_tasks(c, f.val[WF_TASKS]);
    wf->task_index = index_names(wf->tasks, wf->ntasks, sizeof(*wf->tasks));
    if (f.val[WF_NODES] != NULL)
        parse_nodes(c, f.val[WF_NODES]);
    wf->node_index = index_names(wf->nodes, wf->nnodes, sizeof(*wf->nodes));
    for (i = 0; i < wf->nnodes; i++)
        node_bindings(c, i);
    if (f.val[WF_OUTPUT] != NULL)
        parse_output(c, f.val[WF_OUTPUT]);
    topo_order(c);
}

struct mapq_workflow *
mapq_workflow_parse(const char *text, size_t len, const char *file,
                    struct mapq_buf *errors)
{
    struct ctx c;
    yaml_document_t doc;
    yaml_node_t *root;
    struct mapq_workflow *wf;
    char msg[MSG_MAX];
    int line = 1, col = 1;

    memset(&c, 0, sizeof(c));
    c.file = file != NULL ? file : "<workflow>";
    if (!load_doc(text != NULL ? text : "", len, &doc, msg, sizeof(msg), &line,
                  &col)) {
        prob_add(&c.probs, c.file, line, col, "%s", msg);
        prob_flush(&c.probs, true, errors);
        return NULL;
    }
    wf = mapq_xcalloc(1, sizeof(*wf));
    wf->file = mapq_xstrdup(c.file);
    wf->system_retries = DEFAULT_SYSTEM_RETRIES;
    c.wf = wf;
    c.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        prob_add(&c.probs, c.file, 1, 1, "empty workflow file");
    else
        parse_root(&c, root);
    yaml_document_delete(&doc);
    free(c.ni);
    free(c.task_out_bad);
    if (c.probs.n == 0)
        return wf;
    prob_flush(&c.probs, true, errors);
    mapq_workflow_free(wf);
    return NULL;
}

struct mapq_workflow *
mapq_workflow_load(const char *path, struct mapq_buf *errors)
{
    struct mapq_buf text;
    struct mapq_workflow *wf;
    char err[MAPQ_ERR_LEN];

    if (mapq_workflow_read_file(path, &text, err) != MAPQ_OK) {
        mapq_buf_printf(errors, "%s\n", err);
        return NULL;
    }
    wf = mapq_workflow_parse(text.data != NULL ? text.data : "", text.len, path,
                             errors);
    mapq_buf_release(&text);
    return wf;
}

/* ---- values from the command line -------------------------------------- */

/* Converts the one YAML document in text to type t (NULL: any) into out. */
static enum mapq_err
text_value(const char *text, size_t len, const struct mapq_type *t,
           struct mapq_buf *out, char *msg)
{
    static const yaml_mark_t zero = {0, 0, 0};
    yaml_document_t doc;
    yaml_node_t *root;
    struct conv cv;
    struct mapq_buf tmp;
    msgpack_packer pk;
    size_t budget = 0;
    int line = 1, col = 1;
    char m[MSG_MAX];
    enum mapq_err rc;

    if (!load_doc(text, len, &doc, m, sizeof(m), &line, &col))
        return mapq_err_set(msg, MAPQ_EINVAL, "%d:%d: %s", line, col, m);
    mapq_buf_init(&tmp, MAPQ_VALUE_MAX);
    mapq_value_packer_init(&pk, &tmp);
    root = yaml_document_get_root_node(&doc);
    conv_init(&cv, &doc, &budget, root != NULL ? root->start_mark : zero);
    if (root == NULL)
        rc =
            conv_scalar(&cv, zero, "", 0, true, t != NULL ? t : &any_type, &pk);
    else
        rc = conv_value(&cv, root, t, 0, &pk);
    yaml_document_delete(&doc);
    if (rc != MAPQ_OK)
        mapq_err_set(msg, rc, "%s", cv.msg);
    else if (mapq_buf_append(out, tmp.data, tmp.len) != MAPQ_OK)
        rc = mapq_err_set(msg, MAPQ_ETOOBIG, "value is too large");
    mapq_buf_release(&tmp);
    return rc;
}

enum mapq_err
mapq_workflow_yaml_value(const char *text, size_t len,
                         const struct mapq_type *type, const char *where,
                         struct mapq_buf *out, char *err)
{
    char msg[MAPQ_ERR_LEN];
    enum mapq_err rc = text_value(text, len, type, out, msg);

    if (rc != MAPQ_OK)
        mapq_err_set(err, rc, "%s: %s", where, msg);
    return rc;
}

struct bind {
    const struct mapq_workflow *wf;
    struct problems probs;
    struct mapq_buf *vals; /* per input: its msgpack value when ok[] */
    bool *given;           /* by --input or --inputs, valid or not */
    bool *ok;
};

static void
bind_unknown(struct bind *bd, const char *name)
{
    const struct mapq_workflow *wf = bd->wf;
    const char **names = names_of(wf->inputs, wf->ninputs, sizeof(*wf->inputs));
    char list[MSG_MAX / 2];

    if (wf->ninputs == 0)
        prob_add(&bd->probs, NULL, 0, 0,
                 "--input %s: no such workflow input (the workflow has no "
                 "inputs)",
                 name);
    else
        prob_add(&bd->probs, NULL, 0, 0,
                 "--input %s: no such workflow input (inputs: %s)", name,
                 join_names(names, wf->ninputs, list, sizeof(list)));
    free(names);
}

/* True when path names a JSON file: read with JSON's rules, not YAML's
 * (YAML refuses the surrogate-pair escapes JSON writers use for "😀"). */
static bool
is_json_path(const char *path)
{
    size_t n = strlen(path);

    return n >= 5 && strcasecmp(path + n - 5, ".json") == 0;
}

/* Converts JSON text to type t into out, capped like YAML values. */
static enum mapq_err
json_value(const char *text, size_t len, const struct mapq_type *t,
           struct mapq_buf *out, char *msg)
{
    struct mapq_buf tmp;
    enum mapq_err rc;

    mapq_buf_init(&tmp, MAPQ_VALUE_MAX);
    rc = mapq_json_to_msgpack(text, len, t, &tmp, msg);
    /* Worded as for YAML values, wherever in the value the cap was met. */
    if (rc == MAPQ_ETOOBIG)
        mapq_err_set(msg, rc, "value is larger than the %u MiB cap",
                     MAPQ_VALUE_MAX >> 20);
    if (rc == MAPQ_OK && mapq_buf_append(out, tmp.data, tmp.len) != MAPQ_OK)
        rc = mapq_err_set(msg, MAPQ_ETOOBIG, "value is too large");
    mapq_buf_release(&tmp);
    return rc;
}

/* One --input NAME=VALUE (VALUE may be @FILE). */
static void
bind_assign(struct bind *bd, const char *assign)
{
    const char *eq = strchr(assign, '='), *val;
    char name[256], msg[MAPQ_ERR_LEN];
    struct mapq_buf file;
    long k;
    enum mapq_err rc;

    if (eq == NULL || eq == assign) {
        prob_add(&bd->probs, NULL, 0, 0, "--input %s: expected NAME=VALUE",
                 assign);
        return;
    }
    snprintf(name, sizeof(name), "%.*s", (int)(eq - assign), assign);
    k = mapq_workflow_find_input(bd->wf, name);
    if (k < 0) {
        bind_unknown(bd, name);
        return;
    }
    if (bd->given[k]) {
        prob_add(&bd->probs, NULL, 0, 0, "--input %s: given more than once",
                 name);
        return;
    }
    bd->given[k] = true;
    val = eq + 1;
    if (val[0] != '@') {
        rc = text_value(val, strlen(val), bd->wf->inputs[k].type, &bd->vals[k],
                        msg);
        if (rc != MAPQ_OK)
            prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s", name, msg);
    } else if (read_file(val + 1, TEXT_MAX, &file, msg) != MAPQ_OK) {
        prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s", name, msg);
        return;
    } else {
        rc = (is_json_path(val + 1) ? json_value : text_value)(
            file.data != NULL ? file.data : "", file.len,
            bd->wf->inputs[k].type, &bd->vals[k], msg);
        if (rc != MAPQ_OK)
            prob_add(&bd->probs, NULL, 0, 0, "--input %s: %s: %s", name,
                     val + 1, msg);
        mapq_buf_release(&file);
    }
    bd->ok[k] = rc == MAPQ_OK;
}

/* One entry of an --inputs file. */
static void
bind_entry(struct bind *bd, const char *path, yaml_document_t *doc,
           yaml_node_t *k, yaml_node_t *v, size_t *budget)
{
    struct conv cv;
    msgpack_packer pk;
    struct mapq_pos p = pos_of(k);
    long idx;
    char list[MSG_MAX / 2], d[96];
    const char **names;

    if (k->type != YAML_SCALAR_NODE) {
        prob_add(&bd->probs, path, p.line, p.col,
                 "keys must be input names, got %s", describe(k, d, sizeof(d)));
        return;
    }
    idx = mapq_workflow_find_input(bd->wf, stext(k));
    if (idx < 0) {
        names =
            names_of(bd->wf->inputs, bd->wf->ninputs, sizeof(*bd->wf->inputs));
        prob_add(&bd->probs, path, p.line, p.col,
                 "no such workflow input '%s' (inputs: %s)", stext(k),
                 join_names(names, bd->wf->ninputs, list, sizeof(list)));
        free(names);
        return;
    }
    if (bd->given[idx])
        return; /* --input wins */
    bd->given[idx] = true;
    conv_init(&cv, doc, budget, v->start_mark);
    mapq_value_packer_init(&pk, &bd->vals[idx]);
    if (conv_value(&cv, v, bd->wf->inputs[idx].type, 0, &pk) == MAPQ_OK) {
        bd->ok[idx] = true;
        return;
    }
    p = pos_of_mark(cv.mark);
    prob_add(&bd->probs, path, p.line, p.col, "'%s': %s", stext(k), cv.msg);
}

/* Looks an --inputs key up: its input's index, or -1 with a problem. */
static long
bind_key(struct bind *bd, const char *path, int line, int col, const char *key)
{
    char list[MSG_MAX / 2];
    const char **names;
    long idx = mapq_workflow_find_input(bd->wf, key);

    if (idx >= 0)
        return idx;
    if (bd->probs.n >= PROBLEMS_SHOWN) {
        /* Not shown: spare the list of names. */
        prob_add(&bd->probs, path, line, col, "no such workflow input '%s'",
                 key);
        return -1;
    }
    names = names_of(bd->wf->inputs, bd->wf->ninputs, sizeof(*bd->wf->inputs));
    prob_add(&bd->probs, path, line, col,
             "no such workflow input '%s' (inputs: %s)", key,
             join_names(names, bd->wf->ninputs, list, sizeof(list)));
    free(names);
    return -1;
}

/* An --inputs file ending in .json: a JSON object of input name to value,
 * read by the JSON library. jansson keeps no positions for members, so
 * problems name the input and the path inside its value. */
static void
bind_json_file(struct bind *bd, const char *path, const struct mapq_buf *text)
{
    json_error_t jerr;
    json_t *root, *v;
    const char *key;
    char msg[MAPQ_ERR_LEN], *vt;
    long idx;

    root = json_loadb(text->data != NULL ? text->data : "", text->len,
                      JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (root == NULL) {
        prob_add(&bd->probs, path, jerr.line > 0 ? jerr.line : 1,
                 jerr.column > 0 ? jerr.column : 1, "invalid JSON: %s",
                 jerr.text);
        return;
    }
    if (!json_is_object(root)) {
        prob_add(&bd->probs, path, 1, 1,
                 "an inputs file must be a JSON object of input name to "
                 "value");
        json_decref(root);
        return;
    }
    json_object_foreach(root, key, v)
    {
        idx = bind_key(bd, path, 1, 1, key);
        if (idx < 0 || bd->given[idx])
            continue; /* --input wins */
        bd->given[idx] = true;
        vt = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT |
                               JSON_REAL_PRECISION(17));
        if (json_value(vt, strlen(vt), bd->wf->inputs[idx].type, &bd->vals[idx],
                       msg) == MAPQ_OK)
            bd->ok[idx] = true;
        else
            prob_add(&bd->probs, path, 1, 1, "'%s': %s", key, msg);
        free(vt);
    }
    json_decref(root);
}

/* An --inputs file: a mapping of input name to value. */
static void
bind_file(struct bind *bd, const char *path)
{
    struct mapq_buf text;
    yaml_document_t doc;
    yaml_node_t *root, *k;
    char msg[MSG_MAX], d[96];
    int line = 1, col = 1;
    size_t i, n, budget = 0;
    bool *dup;

    if (read_file(path, TEXT_MAX, &text, msg) != MAPQ_OK) {
        prob_add(&bd->probs, NULL, 0, 0, "--inputs: %s", msg);
        return;
    }
    if (is_json_path(path)) {
        bind_json_file(bd, path, &text);
        mapq_buf_release(&text);
        return;
    }
    if (!load_doc(text.data != NULL ? text.data : "", text.len, &doc, msg,
                  sizeof(msg), &line, &col)) {
        prob_add(&bd->probs, path, line, col, "%s", msg);
        mapq_buf_release(&text);
        return;
    }
    root = yaml_document_get_root_node(&doc);
    if (root != NULL && root->type != YAML_MAPPING_NODE) {
        prob_add(&bd->probs, path, pos_of(root).line, pos_of(root).col,
                 "an inputs file must be a mapping of input name to value, "
                 "got %s",
                 describe(root, d, sizeof(d)));
    } else if (root != NULL) {
        n = npairs(root);
        dup = mapq_xcalloc(n ? n : 1, sizeof(*dup));
        mark_dups(&doc, root, dup);
        for (i = 0; i < n; i++) {
            k = node_of(&doc, root->data.mapping.pairs.start[i].key);
            if (dup[i])
                prob_add(&bd->probs, path, pos_of(k).line, pos_of(k).col,
                         "duplicate key '%s'", stext(k));
            else
                bind_entry(
                    bd, path, &doc, k,
                    node_of(&doc, root->data.mapping.pairs.start[i].value),
                    &budget);
        }
        free(dup);
    }
    yaml_document_delete(&doc);
    mapq_buf_release(&text);
}

/* Zip lengths of map nodes whose lists come from inputs and literals. */
static void
bind_zip(struct bind *bd)
{
    const struct mapq_workflow *wf = bd->wf;
    const struct mapq_node *n;
    const struct mapq_binding *b;
    const struct mapq_buf *val;
    size_t i, j, *lens;

    for (i = 0; i < wf->nnodes; i++) {
        n = &wf->nodes[i];
        lens = mapq_xcalloc(n->nover ? n->nover : 1, sizeof(*lens));
        for (j = 0; j < n->nover; j++) {
            b = &n->over[j];
            lens[j] = SIZE_MAX;
            if (b->kind == MAPQ_REF_LITERAL)
                array_len(b->literal.data, b->literal.len, &lens[j]);
            if (b->kind != MAPQ_REF_INPUT || !bd->ok[b->target])
                continue;
            val = &bd->vals[b->target];
            if (!array_len(val->data, val->len, &lens[j]))
                prob_add(&bd->probs, wf->file, b->pos.line, b->pos.col,
                         "cannot map over $inputs.%s: its value is not a list",
                         b->ref);
        }
        zip_check(&bd->probs, wf->file, n, lens);
        free(lens);
    }
}

/* Packs {name: value} for every input into out. */
static enum mapq_err
bind_pack(struct bind *bd, struct mapq_buf *out)
{
    const struct mapq_workflow *wf = bd->wf;
    struct mapq_buf all;
    msgpack_packer pk;
    size_t k;
    enum mapq_err rc;

    mapq_buf_init(&all, 0);
    mapq_value_packer_init(&pk, &all);
    msgpack_pack_map(&pk, wf->ninputs);
    for (k = 0; k < wf->ninputs; k++) {
        mapq_value_pack_str(&pk, wf->inputs[k].name);
        mapq_buf_append(&all, bd->vals[k].data, bd->vals[k].len);
    }
    rc = mapq_buf_append(out, all.data, all.len);
    mapq_buf_release(&all);
    return rc;
}

enum mapq_err
mapq_workflow_bind_inputs(const struct mapq_workflow *wf,
                          const char *const *assigns, size_t nassigns,
                          const char *inputs_file, struct mapq_buf *out,
                          struct mapq_buf *errors)
{
    struct bind bd;
    const struct mapq_param *p;
    size_t i, n = wf->ninputs ? wf->ninputs : 1;
    enum mapq_err rc = MAPQ_OK;

    memset(&bd, 0, sizeof(bd));
    bd.wf = wf;
    bd.vals = mapq_xcalloc(n, sizeof(*bd.vals));
    bd.given = mapq_xcalloc(n, sizeof(*bd.given));
    bd.ok = mapq_xcalloc(n, sizeof(*bd.ok));
    for (i = 0; i < wf->ninputs; i++)
        mapq_buf_init(&bd.vals[i], MAPQ_VALUE_MAX);
    for (i = 0; i < nassigns; i++)
        bind_assign(&bd, assigns[i]);
    if (inputs_file != NULL)
        bind_file(&bd, inputs_file);
    for (i = 0; i < wf->ninputs; i++) {
        p = &wf->inputs[i];
        if (bd.given[i])
            continue;
        if (p->has_default) {
            mapq_buf_append(&bd.vals[i], p->value.data, p->value.len);
            bd.ok[i] = true;
        } else {
            prob_add(&bd.probs, wf->file, p->pos.line, p->pos.col,
                     "input '%s' is required; pass --input %s=VALUE", p->name,
                     p->name);
        }
    }
    bind_zip(&bd);
    if (bd.probs.n == 0 && bind_pack(&bd, out) != MAPQ_OK)
        prob_add(&bd.probs, NULL, 0, 0, "inputs are too large");
    if (bd.probs.n > 0)
        rc = MAPQ_EINVAL;
    prob_flush(&bd.probs, false, errors);
    for (i = 0; i < wf->ninputs; i++)
        mapq_buf_release(&bd.vals[i]);
    free(bd.ok);
    free(bd.given);
    free(bd.vals);
    return rc;
}
