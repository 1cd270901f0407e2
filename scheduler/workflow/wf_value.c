/*
 * wf_value.c - converting YAML values to msgpack, directed by the type
 * they feed.
 *
 * A plain scalar is read as the declared type says (under str, 123 is the
 * text "123"; under bytes a string is base64); any takes the natural
 * mapping. Aliases make the document a DAG, or even a cycle, so a
 * conversion is capped in depth and, through the budget its caller
 * shares, in total nodes; the packer's buffer caps the size. A failure
 * leaves its message and position in the struct conv; nothing is
 * reported from here.
 */
#include <math.h>
#include <msgpack.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_value.h"
#include "wf_int.h"

static const struct mapq_type any_type = {.kind = MAPQ_T_ANY};

void
wf_conv_init(struct conv *cv, yaml_document_t *doc, size_t *budget,
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
                   fmt_type(t, tn, sizeof(tn)), wf_describe(n, d, sizeof(d)));
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
enum mapq_err
wf_conv_scalar(struct conv *cv, yaml_mark_t mark, const char *s, size_t len,
               bool plain, const struct mapq_type *t, msgpack_packer *pk)
{
    struct scal v;
    char tn[128], d[96];
    int rc = 0;

    wf_resolve(s, len, plain, &v);
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
    case MAPQ_T_RECORD:
    case MAPQ_T_FILE:
    case MAPQ_T_DIR:
        break;
    }
    return cv_fail(cv, mark, MAPQ_ETYPE, "expected %s%s, got %s",
                   fmt_type(t, tn, sizeof(tn)),
                   t->kind == MAPQ_T_BYTES ? " (base64)" : "",
                   wf_describe_text(s, len, plain, d, sizeof(d)));
}

/* The position says where; a path 32 levels long would only be noise. */
static enum mapq_err
too_deep(struct conv *cv, const yaml_node_t *n)
{
    cv->path[0] = '\0';
    return cv_fail(cv, n->start_mark, MAPQ_ETOOBIG,
                   "value nested more than %d levels deep", CONV_MAX_DEPTH);
}

/* Element type of a list or dict type t; any for any. */
const struct mapq_type *
wf_child_type(const struct mapq_type *t)
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
        rc =
            wf_conv_value(cv, node_of(cv->doc, n->data.sequence.items.start[i]),
                          wf_child_type(t), depth + 1, pk);
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

    wf_mark_dups(cv->doc, n, dup);
    for (i = 0; i < cnt && rc == MAPQ_OK; i++) {
        k = node_of(cv->doc, n->data.mapping.pairs.start[i].key);
        if (k->type == YAML_SCALAR_NODE)
            wf_resolve(stext(k), slen(k), is_plain(k), &v);
        if (k->type != YAML_SCALAR_NODE || v.kind != SK_STR)
            rc = cv_fail(cv, k->start_mark, MAPQ_ETYPE,
                         "dict keys must be strings, got %s",
                         wf_describe(k, d, sizeof(d)));
        else if (dup[i])
            rc = cv_fail(cv, k->start_mark, MAPQ_EINVAL, "duplicate key '%s'",
                         stext(k));
    }
    free(dup);
    return rc;
}

/* Checks that mapping n (its keys unique strings) has exactly the members
 * of record t: an unknown one at its key, a missing one at n. */
static enum mapq_err
check_members(struct conv *cv, yaml_node_t *n, const struct mapq_type *t)
{
    size_t cnt = npairs(n), i, j;
    const yaml_node_t *k;
    char tn[256];

    for (i = 0; i < cnt; i++) {
        k = node_of(cv->doc, n->data.mapping.pairs.start[i].key);
        if (mapq_type_member(t, stext(k), slen(k)) == NULL)
            return cv_fail(cv, k->start_mark, MAPQ_ETYPE,
                           "unknown member '%.*s' of %s", SHOW_MAX, stext(k),
                           fmt_type(t, tn, sizeof(tn)));
    }
    /* The keys are distinct and each a member: fewer means one is missing. */
    for (j = 0; cnt < t->nmembers && j < t->nmembers; j++) {
        for (i = 0; i < cnt; i++) {
            k = node_of(cv->doc, n->data.mapping.pairs.start[i].key);
            if (strcmp(stext(k), t->members[j].name) == 0)
                break;
        }
        if (i == cnt)
            return cv_fail(cv, n->start_mark, MAPQ_ETYPE,
                           "missing member '%s' of %s", t->members[j].name,
                           fmt_type(t, tn, sizeof(tn)));
    }
    return MAPQ_OK;
}

static enum mapq_err
conv_map(struct conv *cv, yaml_node_t *n, const struct mapq_type *t, int depth,
         msgpack_packer *pk)
{
    size_t base = strlen(cv->path), i, cnt = npairs(n);
    const yaml_node_pair_t *p;
    const yaml_node_t *k;
    enum mapq_err rc;

    if (t->kind != MAPQ_T_DICT && t->kind != MAPQ_T_RECORD &&
        t->kind != MAPQ_T_ANY)
        return mismatch(cv, n, t);
    if (depth >= CONV_MAX_DEPTH)
        return too_deep(cv, n);
    rc = check_dict_keys(cv, n);
    if (rc == MAPQ_OK && t->kind == MAPQ_T_RECORD)
        rc = check_members(cv, n, t);
    if (rc == MAPQ_OK)
        rc = packed(cv, msgpack_pack_map(pk, cnt));
    for (i = 0; i < cnt && rc == MAPQ_OK; i++) {
        const struct mapq_type *vt = wf_child_type(t);

        p = &n->data.mapping.pairs.start[i];
        k = node_of(cv->doc, p->key);
        if (t->kind == MAPQ_T_RECORD)
            vt = mapq_type_member(t, stext(k), slen(k));
        rc = pack_text(cv, pk, stext(k), slen(k));
        snprintf(cv->path + base, sizeof(cv->path) - base, "[\"%.*s\"]",
                 SHOW_MAX, stext(k));
        if (rc == MAPQ_OK)
            rc = wf_conv_value(cv, node_of(cv->doc, p->value), vt, depth + 1,
                               pk);
    }
    if (rc == MAPQ_OK)
        cv->path[base] = '\0';
    return rc;
}

/* Converts YAML node n to msgpack of type t (NULL: any) into pk. */
enum mapq_err
wf_conv_value(struct conv *cv, yaml_node_t *n, const struct mapq_type *t,
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
        return wf_conv_scalar(cv, n->start_mark, stext(n), slen(n), is_plain(n),
                              t, pk);
    case YAML_SEQUENCE_NODE:
        return conv_seq(cv, n, t, depth, pk);
    case YAML_MAPPING_NODE:
        return conv_map(cv, n, t, depth, pk);
    default:
        return cv_fail(cv, n->start_mark, MAPQ_EINVAL, "empty YAML node");
    }
}

/* ---- values from the command line -------------------------------------- */

/* Converts the one YAML document in text to type t (NULL: any) into out. */
enum mapq_err
wf_text_value(const char *text, size_t len, const struct mapq_type *t,
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

    if (!wf_load_doc(text, len, &doc, m, sizeof(m), &line, &col))
        return mapq_err_set(msg, MAPQ_EINVAL, "%d:%d: %s", line, col, m);
    mapq_buf_init(&tmp, MAPQ_VALUE_MAX);
    mapq_value_packer_init(&pk, &tmp);
    root = yaml_document_get_root_node(&doc);
    wf_conv_init(&cv, &doc, &budget, root != NULL ? root->start_mark : zero);
    if (root == NULL)
        rc = wf_conv_scalar(&cv, zero, "", 0, true, t != NULL ? t : &any_type,
                            &pk);
    else
        rc = wf_conv_value(&cv, root, t, 0, &pk);
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
    enum mapq_err rc = wf_text_value(text, len, type, out, msg);

    if (rc != MAPQ_OK)
        mapq_err_set(err, rc, "%s: %s", where, msg);
    return rc;
}
