/*
 * wf_fields.c - reading one field of a workflow file: names, numbers,
 * durations, sizes, types and literal values, each checked and reported
 * at its position.
 *
 * Every reader takes the parse context and adds at most a problem or two
 * to it; none keeps anything. What it returns is the caller's.
 */
#include <limits.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_units.h"
#include "mapq_value.h"
#include "wf_int.h"

/* Length of the identifier [A-Za-z_][A-Za-z0-9_]* at s; 0 if none. */
size_t
wf_ident_len(const char *s)
{
    size_t n = 0;

    if (!is_alpha_(s[0]))
        return 0;
    while (is_alpha_(s[n]) || is_digit(s[n]))
        n++;
    return n;
}

bool
wf_valid_ident(const char *s)
{
    size_t n = wf_ident_len(s);

    return n > 0 && s[n] == '\0';
}

/* True when s is non-empty and every character is in [a-z0-9] or extra. */
bool
wf_valid_word(const char *s, const char *extra, bool upper)
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

void __attribute__((format(printf, 3, 4)))
wf_perr(struct ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    va_list ap;
    struct mapq_pos p = pos_of(n);

    va_start(ap, fmt);
    wf_prob_vadd(&c->probs, c->file, p.line, p.col, fmt, ap);
    va_end(ap);
}

/*
 * Converts literal v to type t, appending to out; on failure reports one
 * problem "SUBJECT: message" at the offending node and empties out.
 */
bool
wf_conv_literal(struct ctx *c, yaml_node_t *v, const struct mapq_type *t,
                struct mapq_buf *out, const char *subject)
{
    struct conv cv;
    msgpack_packer pk;
    enum mapq_err rc;
    struct mapq_pos p;

    wf_conv_init(&cv, c->doc, &c->budget, v->start_mark);
    mapq_value_packer_init(&pk, out);
    rc = wf_conv_value(&cv, v, t, 0, &pk);
    if (rc == MAPQ_OK)
        return true;
    mapq_buf_reset(out);
    /* One alias bomb is one problem, not one per literal after it. */
    if (c->budget > CONV_MAX_NODES && c->budget_told)
        return false;
    c->budget_told = c->budget > CONV_MAX_NODES;
    p = pos_of_mark(cv.mark);
    wf_prob_add(&c->probs, c->file, p.line, p.col, "%s: %s", subject, cv.msg);
    return false;
}

/* Like wf_conv_literal for a string that is not a node's own text ($$x). */
bool
wf_conv_string(struct ctx *c, yaml_node_t *v, const char *s,
               const struct mapq_type *t, struct mapq_buf *out,
               const char *subject)
{
    struct conv cv;
    msgpack_packer pk;

    wf_conv_init(&cv, c->doc, &c->budget, v->start_mark);
    mapq_value_packer_init(&pk, out);
    if (wf_conv_scalar(&cv, v->start_mark, s, strlen(s), false, t, &pk) ==
        MAPQ_OK)
        return true;
    mapq_buf_reset(out);
    wf_perr(c, v, "%s: %s", subject, cv.msg);
    return false;
}

/* ---- fixed-schema mappings --------------------------------------------- */

/*
 * Sorts the pairs of map into f by the key names[i]; reports unknown keys
 * (with a suggestion), duplicate keys and non-string keys. where reads
 * like "in task 'x'".
 */
void
wf_get_fields(struct ctx *c, yaml_node_t *map, const char *const *names,
              size_t n, struct fields *f, const char *where)
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
            wf_perr(c, k, "keys must be strings, got %s %s",
                    wf_describe(k, d, sizeof(d)), where);
            continue;
        }
        for (i = 0; i < n; i++)
            if (strlen(names[i]) == slen(k) && strcmp(stext(k), names[i]) == 0)
                break;
        if (i == n)
            wf_perr(c, k, "unknown key '%s' %s%s", stext(k), where,
                    c->probs.n < PROBLEMS_SHOWN
                        ? wf_suggest(stext(k), names, n, hint, sizeof(hint))
                        : "");
        else if (f->key[i] != NULL)
            wf_perr(c, k, "duplicate key '%s' %s", stext(k), where);
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
bool *
wf_check_keys(struct ctx *c, yaml_node_t *map)
{
    size_t n = npairs(map), i;
    bool *skip = mapq_xcalloc(n ? n : 1, sizeof(*skip));
    yaml_node_t *k;
    char d[96];

    wf_mark_dups(c->doc, map, skip);
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (k->type != YAML_SCALAR_NODE) {
            wf_perr(c, k, "keys must be names, got %s",
                    wf_describe(k, d, sizeof(d)));
            skip[i] = true;
        } else if (skip[i]) {
            wf_perr(c, k, "duplicate key '%s'", stext(k));
        }
    }
    return skip;
}

bool
wf_expect_map(struct ctx *c, yaml_node_t *v, const char *what)
{
    char d[96];

    if (v->type == YAML_MAPPING_NODE)
        return true;
    wf_perr(c, v, "%s, got %s", what, wf_describe(v, d, sizeof(d)));
    return false;
}

/* Reports a name that does not match [A-Za-z_][A-Za-z0-9_]*. */
bool
wf_check_ident(struct ctx *c, yaml_node_t *k, const char *what)
{
    if (strlen(stext(k)) == slen(k) && wf_valid_ident(stext(k)))
        return true;
    wf_perr(c, k,
            "invalid %s name '%s' (names must match [A-Za-z_][A-Za-z0-9_]*)",
            what, stext(k));
    return false;
}

/* ---- scalar fields ----------------------------------------------------- */

bool
wf_get_int(struct ctx *c, yaml_node_t *v, const char *key, int64_t min,
           int64_t max, int64_t *out)
{
    struct scal s;
    char d[96];

    if (v->type == YAML_SCALAR_NODE) {
        wf_resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_INT && s.i >= min && s.i <= max) {
            *out = s.i;
            return true;
        }
        if ((s.kind == SK_INT && s.i > max) || s.kind == SK_UINT ||
            (s.kind == SK_RANGE && stext(v)[0] != '-')) {
            wf_perr(c, v, "'%s' is too large (at most %lld), got %s", key,
                    (long long)max, wf_describe(v, d, sizeof(d)));
            return false;
        }
    }
    if (min == 0)
        wf_perr(c, v, "'%s' must be a non-negative integer, got %s", key,
                wf_describe(v, d, sizeof(d)));
    else
        wf_perr(c, v, "'%s' must be an integer >= %lld, got %s", key,
                (long long)min, wf_describe(v, d, sizeof(d)));
    return false;
}

/* Like wf_get_int, into an int. */
bool
wf_get_small(struct ctx *c, yaml_node_t *v, const char *key, int *out)
{
    int64_t x;

    if (!wf_get_int(c, v, key, 0, INT_MAX, &x))
        return false;
    *out = (int)x;
    return true;
}

bool
wf_get_bool(struct ctx *c, yaml_node_t *v, const char *key, bool *out)
{
    struct scal s;
    char d[96];

    if (v->type == YAML_SCALAR_NODE) {
        wf_resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_BOOL) {
            *out = s.b;
            return true;
        }
    }
    wf_perr(c, v, "'%s' must be true or false, got %s", key,
            wf_describe(v, d, sizeof(d)));
    return false;
}

/* A finite number (int or float) in [lo, hi], or (lo, hi] if lo_open. */
bool
wf_get_real(struct ctx *c, yaml_node_t *v, const char *key, double lo,
            bool lo_open, double hi, const char *expect, double *out)
{
    struct scal s;
    double x = NAN;
    char d[96];

    if (v->type == YAML_SCALAR_NODE) {
        wf_resolve(stext(v), slen(v), is_plain(v), &s);
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
    wf_perr(c, v, "'%s' must be %s, got %s", key, expect,
            wf_describe(v, d, sizeof(d)));
    return false;
}

/* Any scalar, as written; a copy the caller frees. */
char *
wf_get_string(struct ctx *c, yaml_node_t *v, const char *key, bool nonempty)
{
    char d[96];

    if (v->type != YAML_SCALAR_NODE) {
        wf_perr(c, v, "'%s' must be a string, got %s", key,
                wf_describe(v, d, sizeof(d)));
        return NULL;
    }
    if (strlen(stext(v)) != slen(v)) {
        wf_perr(c, v, "'%s' must not contain NUL bytes", key);
        return NULL;
    }
    if (nonempty && slen(v) == 0) {
        wf_perr(c, v, "'%s' must not be empty", key);
        return NULL;
    }
    return mapq_xstrdup(stext(v));
}

bool
wf_get_duration(struct ctx *c, yaml_node_t *v, const char *key, int64_t *ms)
{
    char d[96];

    if (v->type == YAML_SCALAR_NODE &&
        mapq_duration_parse(stext(v), ms, NULL) == MAPQ_OK)
        return true;
    wf_perr(c, v,
            "'%s' must be a duration such as 500ms, 30s, 1m30s or 2h, got %s",
            key, wf_describe(v, d, sizeof(d)));
    return false;
}

bool
wf_get_size(struct ctx *c, yaml_node_t *v, const char *key, int64_t *bytes)
{
    char d[96];

    if (v->type == YAML_SCALAR_NODE &&
        mapq_size_parse(stext(v), bytes, NULL) == MAPQ_OK)
        return true;
    wf_perr(c, v, "'%s' must be a size such as 512MiB, 4Gi or 100M, got %s",
            key, wf_describe(v, d, sizeof(d)));
    return false;
}

static struct mapq_type *get_type_at(struct ctx *c, yaml_node_t *v,
                                     const char *what, int depth);

/* A record written as a YAML mapping of member names to types. */
static struct mapq_type *
get_record(struct ctx *c, yaml_node_t *v, const char *what, int depth)
{
    size_t n = npairs(v), i;
    struct mapq_member *m;
    struct mapq_type *t;
    char err[MAPQ_ERR_LEN], d[96];
    bool ok = true;

    if (n == 0 || n > MAPQ_TYPE_MEMBERS_MAX) {
        wf_perr(c, v, "%s: a record has 1 to %d members, not %zu", what,
                MAPQ_TYPE_MEMBERS_MAX, n);
        return NULL;
    }
    m = mapq_xcalloc(n, sizeof(*m));
    for (i = 0; i < n; i++) {
        yaml_node_t *k = node_of(c->doc, v->data.mapping.pairs.start[i].key);

        if (k->type != YAML_SCALAR_NODE) {
            wf_perr(c, k, "%s: a member's name must be a string, got %s", what,
                    wf_describe(k, d, sizeof(d)));
            ok = false;
            m[i].name = mapq_xstrdup("");
            continue;
        }
        m[i].name = mapq_xstrdup(stext(k));
        m[i].type = get_type_at(
            c, node_of(c->doc, v->data.mapping.pairs.start[i].value), what,
            depth + 1);
        ok = ok && m[i].type != NULL;
    }
    if (!ok) {
        for (i = 0; i < n; i++) {
            free(m[i].name);
            mapq_type_free(m[i].type);
        }
        free(m);
        return NULL;
    }
    t = mapq_type_record(m, n, false, err);
    if (t == NULL)
        wf_perr(c, v, "%s: %s", what, err);
    return t;
}

static struct mapq_type *
get_type_at(struct ctx *c, yaml_node_t *v, const char *what, int depth)
{
    char err[MAPQ_ERR_LEN], d[96];
    struct mapq_type *t;

    if (v->type == YAML_MAPPING_NODE && depth < 32)
        return get_record(c, v, what, depth);
    if (v->type != YAML_SCALAR_NODE) {
        wf_perr(c, v,
                "%s must be a type such as int, \"list[int]\" or {name: "
                "str, size: int}, got %s",
                what, wf_describe(v, d, sizeof(d)));
        return NULL;
    }
    t = mapq_type_parse(stext(v), err);
    if (t == NULL)
        wf_perr(c, v, "%s: %s", what, err);
    return t;
}

/* Parses the type at v: a type string, or a mapping of member names to
 * types for a record; NULL (reported) on failure. */
struct mapq_type *
wf_get_type(struct ctx *c, yaml_node_t *v, const char *what)
{
    return get_type_at(c, v, what, 0);
}
