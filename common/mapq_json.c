/*
 * mapq_json.c - converting values between msgpack and JSON (jansson).
 *
 * msgpack -> JSON goes through a jansson tree: msgpack -> json_t -> text,
 * so no JSON is quoted by hand. One shape skips the tree: a small map of
 * names to null, booleans, integers and strings of printable ASCII
 * without '"' or '\\' (a command's inputs, mostly), whose text needs no
 * quoting and is written directly, byte for byte as jansson writes it
 * (unit.json compares the two). JSON -> msgpack: mapq_json_read.c reads
 * the text with yajl and builds jansson trees of at most one value (or
 * one element of a list) at a time, which mapq_json_pack() here packs
 * toward a type; every conversion rule lives in this file. Errors name the
 * path of the offending element ("[2][\"k\"]: ..."). Pure: no I/O, no
 * logging.
 *
 * Floats are written with the fewest of 15, 16 or 17 significant digits
 * that read back as the same double for every float of the value (one
 * JSON_REAL_PRECISION applies to a whole dump), so 0.1 prints as 0.1 and
 * every float still round-trips.
 */
#include "mapq_json.h"

#include <jansson.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_argv.h"
#include "mapq_json_int.h"
#include "mapq_value.h"

size_t
mapq_json_walk_index(struct mapq_json_walk *w, uint32_t i)
{
    size_t base = strlen(w->path);

    snprintf(w->path + base, sizeof(w->path) - base, "[%u]", i);
    return base;
}

/* Appends "[\"key\"]" (at most 40 bytes of the key, always valid UTF-8)
 * to the path. */
static size_t
path_key(struct mapq_json_walk *w, const char *key, size_t len)
{
    return mapq_type_path_key(w->path, sizeof(w->path), key, len);
}

enum mapq_err
mapq_json_walk_fail(struct mapq_json_walk *w, enum mapq_err code,
                    const char *msg)
{
    return mapq_err_set(w->err, code, "%s%s%s", w->path,
                        w->path[0] != '\0' ? ": " : "", msg);
}

/* True when printing d with prec significant digits reads back as d. */
static int
float_round_trips(double d, int prec)
{
    char buf[64];

    snprintf(buf, sizeof(buf), "%.*g", prec, d);
    return strtod(buf, NULL) == d;
}

static void
note_float(struct mapq_json_walk *w, double d)
{
    while (w->precision < 17 && !float_round_trips(d, w->precision))
        w->precision++;
}

/* ---- msgpack -> JSON ---- */

static json_t *to_json(const msgpack_object *o, struct mapq_json_walk *w,
                       int depth);

static json_t *
bin_to_json(const msgpack_object *o, struct mapq_json_walk *w)
{
    uint32_t n = o->via.bin.size;
    unsigned char *b64;
    json_t *j;
    int len;

    if (n > (uint32_t)(INT_MAX / 4) * 3) {
        mapq_json_walk_fail(w, MAPQ_ETOOBIG,
                            "bytes value too large for base64");
        return NULL;
    }
    b64 = mapq_xmalloc((size_t)(n + 2) / 3 * 4 + 1);
    len = EVP_EncodeBlock(b64, (const unsigned char *)o->via.bin.ptr, (int)n);
    j = json_stringn_nocheck((const char *)b64, (size_t)len);
    free(b64);
    return j;
}

static json_t *
str_to_json(const msgpack_object *o, struct mapq_json_walk *w)
{
    size_t good;
    char msg[80];

    /* An empty str may come with a NULL pointer, which jansson refuses. */
    if (o->via.str.size == 0)
        return json_string("");
    good = mapq_type_utf8_prefix(o->via.str.ptr, o->via.str.size);
    if (good < o->via.str.size) {
        snprintf(msg, sizeof(msg),
                 "string is not valid UTF-8 (byte 0x%02x at offset %zu)",
                 (unsigned char)o->via.str.ptr[good], good);
        mapq_json_walk_fail(w, MAPQ_EINVAL, msg);
        return NULL;
    }
    /* Checked above; NUL bytes are kept (json_stringn allows them). */
    return json_stringn_nocheck(o->via.str.ptr, o->via.str.size);
}

static json_t *
float_to_json(const msgpack_object *o, struct mapq_json_walk *w)
{
    double d = o->via.f64;

    if (isnan(d) || isinf(d)) {
        mapq_json_walk_fail(w, MAPQ_EINVAL,
                            isnan(d)
                                ? "float NaN cannot be written as JSON"
                                : "float infinity cannot be written as JSON");
        return NULL;
    }
    note_float(w, d);
    return json_real(d);
}

static json_t *
uint_to_json(const msgpack_object *o, struct mapq_json_walk *w)
{
    char msg[96];

    if (o->via.u64 > (uint64_t)INT64_MAX) {
        snprintf(msg, sizeof(msg), "integer out of range: %llu",
                 (unsigned long long)o->via.u64);
        mapq_json_walk_fail(w, MAPQ_EINVAL, msg);
        return NULL;
    }
    return json_integer((json_int_t)o->via.u64);
}

static json_t *
array_to_json(const msgpack_object *o, struct mapq_json_walk *w, int depth)
{
    json_t *arr = json_array(), *elem;
    uint32_t i;
    size_t base;

    for (i = 0; i < o->via.array.size; i++) {
        base = mapq_json_walk_index(w, i);
        elem = to_json(&o->via.array.ptr[i], w, depth + 1);
        if (elem == NULL) {
            json_decref(arr);
            return NULL;
        }
        w->path[base] = '\0';
        json_array_append_new(arr, elem);
    }
    return arr;
}

static json_t *
map_to_json(const msgpack_object *o, struct mapq_json_walk *w, int depth)
{
    json_t *obj = json_object(), *val;
    const msgpack_object_kv *kv;
    const char *key;
    uint32_t i;
    size_t base;
    char msg[64];

    for (i = 0; i < o->via.map.size; i++) {
        kv = &o->via.map.ptr[i];
        if (kv->key.type != MSGPACK_OBJECT_STR) {
            snprintf(msg, sizeof(msg), "dict keys must be str, got %s",
                     mapq_type_describe(&kv->key));
            goto out_free_obj;
        }
        /* An empty key may have no pointer, which jansson refuses. */
        key = kv->key.via.str.size != 0 ? kv->key.via.str.ptr : "";
        base = path_key(w, key, kv->key.via.str.size);
        if (mapq_type_utf8_prefix(key, kv->key.via.str.size) <
            kv->key.via.str.size) {
            snprintf(msg, sizeof(msg), "dict key is not valid UTF-8");
            goto out_free_obj;
        }
        /* JSON readers (jansson among them) refuse NUL in keys. */
        if (memchr(key, '\0', kv->key.via.str.size) != NULL) {
            snprintf(msg, sizeof(msg), "dict key holds a NUL byte");
            goto out_free_obj;
        }
        if (json_object_getn(obj, key, kv->key.via.str.size) != NULL) {
            snprintf(msg, sizeof(msg), "duplicate dict key");
            goto out_free_obj;
        }
        val = to_json(&kv->val, w, depth + 1);
        if (val == NULL) {
            json_decref(obj);
            return NULL;
        }
        /* The key was checked above. */
        if (json_object_setn_new_nocheck(obj, key, kv->key.via.str.size, val) !=
            0) {
            snprintf(msg, sizeof(msg), "cannot add the dict key");
            goto out_free_obj;
        }
        w->path[base] = '\0';
    }
    return obj;
out_free_obj:
    mapq_json_walk_fail(w, MAPQ_EINVAL, msg);
    json_decref(obj);
    return NULL;
}

/* Builds the jansson tree of o; NULL with w->err set on failure. */
static json_t *
to_json(const msgpack_object *o, struct mapq_json_walk *w, int depth)
{
    if (depth >= MAPQ_JSON_MAX_DEPTH &&
        (o->type == MSGPACK_OBJECT_ARRAY || o->type == MSGPACK_OBJECT_MAP)) {
        mapq_json_walk_fail(w, MAPQ_EINVAL,
                            "value nested more than 32 levels deep");
        return NULL;
    }
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return json_null();
    case MSGPACK_OBJECT_BOOLEAN:
        return json_boolean(o->via.boolean);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return uint_to_json(o, w);
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return json_integer((json_int_t)o->via.i64);
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return float_to_json(o, w);
    case MSGPACK_OBJECT_STR:
        return str_to_json(o, w);
    case MSGPACK_OBJECT_BIN:
        return bin_to_json(o, w);
    case MSGPACK_OBJECT_ARRAY:
        return array_to_json(o, w, depth);
    case MSGPACK_OBJECT_MAP:
        return map_to_json(o, w, depth);
    case MSGPACK_OBJECT_EXT:
        break;
    }
    mapq_json_walk_fail(w, MAPQ_EINVAL, "ext values cannot be written as JSON");
    return NULL;
}

static int
dump_cb(const char *buffer, size_t size, void *data)
{
    return mapq_buf_append(data, buffer, size) == MAPQ_OK ? 0 : -1;
}

void
mapq_json_truncate(struct mapq_buf *out, size_t len)
{
    out->len = len;
    if (out->data != NULL)
        out->data[len] = '\0';
}

/* Whether k is a name: 1 to FLAT_NAME_MAX bytes of [A-Za-z0-9_-]. */
#define FLAT_NAME_MAX 64
static bool
flat_name(const msgpack_object *k)
{
    uint32_t i, n = k->via.str.size;

    if (k->type != MSGPACK_OBJECT_STR || n == 0 || n > FLAT_NAME_MAX)
        return false;
    for (i = 0; i < n; i++) {
        char c = k->via.str.ptr[i];

        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* Whether v's JSON text is written as it is: null, a boolean, an integer
 * in JSON's range, or a string of printable ASCII without '"' or '\'. */
static bool
flat_value(const msgpack_object *v)
{
    uint32_t i;

    switch (v->type) {
    case MSGPACK_OBJECT_NIL:
    case MSGPACK_OBJECT_BOOLEAN:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return true;
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return v->via.u64 <= (uint64_t)INT64_MAX;
    case MSGPACK_OBJECT_STR:
        for (i = 0; i < v->via.str.size; i++) {
            char c = v->via.str.ptr[i];

            if (c < 0x20 || c > 0x7e || c == '"' || c == '\\')
                return false;
        }
        return true;
    default:
        return false;
    }
}

/* Whether o is a map of the flat shape (see the file's header): at most
 * FLAT_MAX entries, named, no name twice, values written as they are. */
#define FLAT_MAX 16
static bool
flat_map(const msgpack_object *o)
{
    const msgpack_object_kv *kv;
    uint32_t i, j, n;

    if (o->type != MSGPACK_OBJECT_MAP || o->via.map.size > FLAT_MAX)
        return false;
    kv = o->via.map.ptr;
    n = o->via.map.size;
    for (i = 0; i < n; i++) {
        if (!flat_name(&kv[i].key) || !flat_value(&kv[i].val))
            return false;
        for (j = 0; j < i; j++)
            if (kv[j].key.via.str.size == kv[i].key.via.str.size &&
                memcmp(kv[j].key.via.str.ptr, kv[i].key.via.str.ptr,
                       kv[i].key.via.str.size) == 0)
                return false;
    }
    return true;
}

/* Appends v (flat_value()) as JSON text to out. */
static enum mapq_err
flat_append(struct mapq_buf *out, const msgpack_object *v)
{
    char num[MAPQ_ARGV_DIGITS + 1];

    switch (v->type) {
    case MSGPACK_OBJECT_NIL:
        return mapq_buf_append(out, "null", 4);
    case MSGPACK_OBJECT_BOOLEAN:
        return v->via.boolean ? mapq_buf_append(out, "true", 4)
                              : mapq_buf_append(out, "false", 5);
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        return mapq_buf_append(out, num, mapq_argv_digits(num, v->via.u64));
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return mapq_buf_append(out, num, mapq_argv_sdigits(num, v->via.i64));
    default:
        mapq_assert(v->type == MSGPACK_OBJECT_STR);
        if (mapq_buf_append(out, "\"", 1) != MAPQ_OK ||
            (v->via.str.size > 0 &&
             mapq_buf_append(out, v->via.str.ptr, v->via.str.size) != MAPQ_OK))
            return MAPQ_ETOOBIG;
        return mapq_buf_append(out, "\"", 1);
    }
}

/* Appends o (flat_map()) as compact JSON text to out. */
static enum mapq_err
flat_write(const msgpack_object *o, struct mapq_buf *out)
{
    const msgpack_object_kv *kv = o->via.map.ptr;
    uint32_t i;
    enum mapq_err rc = mapq_buf_append(out, "{", 1);

    for (i = 0; rc == MAPQ_OK && i < o->via.map.size; i++) {
        if (i > 0)
            rc = mapq_buf_append(out, ",", 1);
        if (rc == MAPQ_OK)
            rc = mapq_buf_append(out, "\"", 1);
        if (rc == MAPQ_OK)
            rc = mapq_buf_append(out, kv[i].key.via.str.ptr,
                                 kv[i].key.via.str.size);
        if (rc == MAPQ_OK)
            rc = mapq_buf_append(out, "\":", 2);
        if (rc == MAPQ_OK)
            rc = flat_append(out, &kv[i].val);
    }
    return rc == MAPQ_OK ? mapq_buf_append(out, "}", 1) : rc;
}

enum mapq_err
mapq_json_from_msgpack(const msgpack_object *o, struct mapq_buf *out, int flags,
                       char *err)
{
    struct mapq_json_walk w = {.path = "", .precision = 15, .err = err};
    size_t before = out->len;
    size_t jflags;
    json_t *j;
    int rc;

    if (!(flags & MAPQ_JSON_PRETTY) && flat_map(o)) {
        if (flat_write(o, out) == MAPQ_OK)
            return MAPQ_OK;
        mapq_json_truncate(out, before);
        return mapq_err_set(err, MAPQ_ETOOBIG,
                            "JSON text over the size cap (%zu bytes)",
                            out->max);
    }
    j = to_json(o, &w, 0);
    if (j == NULL)
        return MAPQ_EINVAL;
    jflags = JSON_ENCODE_ANY | JSON_REAL_PRECISION(w.precision);
    jflags |= (flags & MAPQ_JSON_PRETTY) ? JSON_INDENT(2) : JSON_COMPACT;
    rc = json_dump_callback(j, dump_cb, out, jflags);
    json_decref(j);
    if (rc != 0) {
        mapq_json_truncate(out, before);
        return mapq_err_set(err, MAPQ_ETOOBIG,
                            "JSON text over the size cap (%zu bytes)",
                            out->max);
    }
    return MAPQ_OK;
}

enum mapq_err
mapq_json_from_bytes(const char *data, size_t len, struct mapq_buf *out,
                     int flags, char *err)
{
    msgpack_unpacked u;
    enum mapq_err rc;

    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(data, len, &u, err);
    if (rc == MAPQ_OK)
        rc = mapq_json_from_msgpack(&u.data, out, flags, err);
    msgpack_unpacked_destroy(&u);
    return rc;
}

/* One pass over the n elements after the header (at off): checks each
 * (out NULL), or writes each with w->precision digits. */
static enum mapq_err
write_elements(const char *data, size_t len, size_t off, uint32_t n,
               struct mapq_json_walk *w, FILE *out)
{
    msgpack_unpacked u;
    enum mapq_err rc = MAPQ_OK;
    size_t flags = JSON_ENCODE_ANY | JSON_COMPACT;
    uint32_t i;
    json_t *j;

    msgpack_unpacked_init(&u);
    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        size_t base = mapq_json_walk_index(w, i);

        rc = mapq_value_unpack_next(data, len, &off, &u, w->err);
        if (rc != MAPQ_OK)
            break;
        j = to_json(&u.data, w, 1);
        w->path[base] = '\0';
        if (j == NULL) {
            rc = MAPQ_EINVAL;
            break;
        }
        if (out != NULL &&
            ((i > 0 && fputc(',', out) == EOF) ||
             json_dumpf(j, out, flags | JSON_REAL_PRECISION(w->precision)) !=
                 0))
            rc = mapq_err_set(w->err, MAPQ_EIO, "cannot write the output");
        json_decref(j);
    }
    if (rc == MAPQ_OK && out == NULL && off != len)
        rc = mapq_err_set(w->err, MAPQ_EPROTO,
                          "%zu trailing bytes after msgpack value", len - off);
    msgpack_unpacked_destroy(&u);
    return rc;
}

enum mapq_err
mapq_json_write(const char *data, size_t len, FILE *out, char *err)
{
    struct mapq_json_walk w = {.path = "", .precision = 15, .err = err};
    struct mapq_buf text = MAPQ_BUF_INIT;
    enum mapq_err rc;
    uint32_t n;
    size_t hlen;

    if (!mapq_value_array_header(data, len, &n, &hlen)) {
        rc = mapq_json_from_bytes(data, len, &text, 0, err);
        if (rc == MAPQ_OK && fprintf(out, "%s\n", text.data) < 0)
            rc = mapq_err_set(err, MAPQ_EIO, "cannot write the output");
        mapq_buf_release(&text);
        return rc;
    }
    rc = write_elements(data, len, hlen, n, &w, NULL);
    if (rc != MAPQ_OK)
        return rc;
    if (fputc('[', out) == EOF)
        return mapq_err_set(err, MAPQ_EIO, "cannot write the output");
    rc = write_elements(data, len, hlen, n, &w, out);
    if (rc == MAPQ_OK && fputs("]\n", out) == EOF)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write the output");
    return rc;
}

/* ---- JSON -> msgpack ---- */

enum mapq_err
mapq_json_packed(struct mapq_json_walk *w, int rc)
{
    char msg[64];

    if (rc == 0)
        return MAPQ_OK;
    snprintf(msg, sizeof(msg), "value over the size cap (%zu bytes)", w->max);
    return mapq_json_walk_fail(w, MAPQ_ETOOBIG, msg);
}

static int
is_b64(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
           (c >= '0' && c <= '9') || c == '+' || c == '/';
}

/* Strict standard base64 (padded, no white space) into *out (caller frees);
 * returns the decoded length or -1. */
static long
b64_decode(const char *s, size_t n, unsigned char **out)
{
    size_t i, pad = 0;
    int len;

    if (n % 4 != 0 || n > INT_MAX)
        return -1;
    if (n > 0 && s[n - 1] == '=')
        pad = (n > 1 && s[n - 2] == '=') ? 2 : 1;
    for (i = 0; i < n - pad; i++)
        if (!is_b64((unsigned char)s[i]))
            return -1;
    *out = mapq_xmalloc(n / 4 * 3 + 1);
    len = EVP_DecodeBlock(*out, (const unsigned char *)s, (int)n);
    if (len < 0 || (size_t)len < pad) {
        free(*out);
        *out = NULL;
        return -1;
    }
    /* EVP_DecodeBlock counts the padding as zero bytes. */
    return (long)len - (long)pad;
}

static enum mapq_err
pack_string(json_t *j, const struct mapq_type *t, msgpack_packer *pk,
            struct mapq_json_walk *w)
{
    const char *s = json_string_value(j);
    size_t n = json_string_length(j);
    unsigned char *bin = NULL;
    long len;
    int rc;

    if (t == NULL || t->kind != MAPQ_T_BYTES) {
        rc = msgpack_pack_str(pk, n);
        if (rc == 0)
            rc = msgpack_pack_str_body(pk, s, n);
        return mapq_json_packed(w, rc);
    }
    len = b64_decode(s, n, &bin);
    if (len < 0)
        return mapq_json_walk_fail(
            w, MAPQ_ETYPE,
            "expected bytes as base64, got a string that is not "
            "valid base64");
    rc = msgpack_pack_bin(pk, (size_t)len);
    if (rc == 0)
        rc = msgpack_pack_bin_body(pk, bin, (size_t)len);
    free(bin);
    return mapq_json_packed(w, rc);
}

/* Element type of a list or dict type; NULL (natural) otherwise. */
static const struct mapq_type *
elem_type(const struct mapq_type *t, enum mapq_type_kind kind)
{
    return (t != NULL && t->kind == kind) ? t->elem : NULL;
}

static enum mapq_err
pack_array(json_t *j, const struct mapq_type *t, msgpack_packer *pk,
           struct mapq_json_walk *w, int depth)
{
    const struct mapq_type *et = elem_type(t, MAPQ_T_LIST);
    size_t i, n = json_array_size(j), base;
    enum mapq_err rc;

    if (n > UINT32_MAX)
        return mapq_json_walk_fail(w, MAPQ_ETOOBIG, "list too long");
    rc = mapq_json_packed(w, msgpack_pack_array(pk, n));
    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        base = mapq_json_walk_index(w, (uint32_t)i);
        rc = mapq_json_pack(json_array_get(j, i), et, pk, w, depth + 1);
        if (rc == MAPQ_OK)
            w->path[base] = '\0';
    }
    return rc;
}

static enum mapq_err
pack_object(json_t *j, const struct mapq_type *t, msgpack_packer *pk,
            struct mapq_json_walk *w, int depth)
{
    const struct mapq_type *et = elem_type(t, MAPQ_T_DICT);
    const char *key;
    size_t klen, base;
    void *it;
    enum mapq_err rc;

    if (json_object_size(j) > UINT32_MAX)
        return mapq_json_walk_fail(w, MAPQ_ETOOBIG, "dict too large");
    rc = mapq_json_packed(w, msgpack_pack_map(pk, json_object_size(j)));
    /* jansson keeps insertion order, so keys come out as written. */
    it = json_object_iter(j);
    while (it != NULL && rc == MAPQ_OK) {
        key = json_object_iter_key(it);
        klen = json_object_iter_key_len(it);
        rc = mapq_json_packed(w, msgpack_pack_str(pk, klen));
        if (rc == MAPQ_OK)
            rc = mapq_json_packed(w, msgpack_pack_str_body(pk, key, klen));
        base = path_key(w, key, klen);
        /* A record's members are packed as their types say; whether the
         * members are right is mapq_type_check()'s to say. */
        if (rc == MAPQ_OK)
            rc = mapq_json_pack(json_object_iter_value(it),
                                t != NULL && t->kind == MAPQ_T_RECORD
                                    ? mapq_type_member(t, key, klen)
                                    : et,
                                pk, w, depth + 1);
        if (rc == MAPQ_OK)
            w->path[base] = '\0';
        it = json_object_iter_next(j, it);
    }
    return rc;
}

enum mapq_err
mapq_json_pack(json_t *j, const struct mapq_type *t, msgpack_packer *pk,
               struct mapq_json_walk *w, int depth)
{
    if (depth >= MAPQ_JSON_MAX_DEPTH && (json_is_array(j) || json_is_object(j)))
        return mapq_json_walk_fail(w, MAPQ_EINVAL,
                                   "value nested more than 32 levels deep");
    switch (json_typeof(j)) {
    case JSON_OBJECT:
        return pack_object(j, t, pk, w, depth);
    case JSON_ARRAY:
        return pack_array(j, t, pk, w, depth);
    case JSON_STRING:
        return pack_string(j, t, pk, w);
    case JSON_INTEGER:
        if (t != NULL && t->kind == MAPQ_T_FLOAT)
            return mapq_json_packed(
                w, msgpack_pack_double(pk, (double)json_integer_value(j)));
        return mapq_json_packed(w,
                                msgpack_pack_int64(pk, json_integer_value(j)));
    case JSON_REAL:
        return mapq_json_packed(w, msgpack_pack_double(pk, json_real_value(j)));
    case JSON_TRUE:
        return mapq_json_packed(w, msgpack_pack_true(pk));
    case JSON_FALSE:
        return mapq_json_packed(w, msgpack_pack_false(pk));
    case JSON_NULL:
        break;
    }
    return mapq_json_packed(w, msgpack_pack_nil(pk));
}

void
mapq_json_append_text(struct mapq_buf *out, const char *text, size_t len)
{
    struct mapq_buf clean = MAPQ_BUF_INIT;
    size_t off = 0, good;
    json_t *j;
    char *dumped;

    /* Valid runs are copied, each bad byte is replaced. */
    while (off < len) {
        good = mapq_type_utf8_prefix(text + off, len - off);
        mapq_buf_append(&clean, text + off, good);
        off += good;
        if (off < len) {
            mapq_buf_append(&clean, "\xef\xbf\xbd", 3);
            off++;
        }
    }
    j = json_stringn_nocheck(clean.len > 0 ? clean.data : "", clean.len);
    dumped = j != NULL ? json_dumps(j, JSON_ENCODE_ANY) : NULL;
    if (dumped != NULL)
        mapq_buf_append(out, dumped, strlen(dumped));
    else
        mapq_buf_append(out, "\"\"", 2);
    free(dumped);
    json_decref(j);
    mapq_buf_release(&clean);
}
