/*
 * mapq_type.c - parsing, formatting and checking workflow value types.
 *
 * Pure: no I/O. Checking walks the msgpack object once and reports the
 * path of the first mismatch.
 */
#include "mapq_type.h"

#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"

#define TYPE_MAX_DEPTH 32

/* Bytes of a dict key shown in a path. */
#define PATH_KEY_MAX 40

/* Guards the stack against hand-built objects; msgpack-c unpacks <= 32. */
#define VALUE_MAX_DEPTH 64

static const char *const kind_names[] = {"int",   "float", "bool", "str",
                                         "bytes", "any",   "list", "dict"};

/* What a list or dict built with a NULL elem holds: any. */
static const struct mapq_type any_type = {MAPQ_T_ANY, false, NULL};

static const struct mapq_type *
elem_of(const struct mapq_type *t)
{
    return t->elem != NULL ? t->elem : &any_type;
}

struct mapq_type *
mapq_type_new(enum mapq_type_kind kind, bool optional, struct mapq_type *elem)
{
    struct mapq_type *t = mapq_xcalloc(1, sizeof(*t));

    t->kind = kind;
    t->optional = optional;
    t->elem = elem;
    return t;
}

void
mapq_type_free(struct mapq_type *t)
{
    if (t == NULL)
        return;
    mapq_type_free(t->elem);
    free(t);
}

struct mapq_type *
mapq_type_dup(const struct mapq_type *t)
{
    if (t == NULL)
        return NULL;
    return mapq_type_new(t->kind, t->optional, mapq_type_dup(t->elem));
}

static void
skip_space(const char **p)
{
    while (**p == ' ')
        (*p)++;
}

/* Reports the word at p, which names no type, within whole. */
static void
unknown_type(const char *p, const char *whole, char *err)
{
    size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyz"
                         "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");

    if (n == 0)
        mapq_err_set(err, MAPQ_EINVAL, "malformed type '%s'", whole);
    else if (n == strlen(whole))
        mapq_err_set(err, MAPQ_EINVAL,
                     "unknown type '%s' (expected int, float, bool, str, "
                     "bytes, any, list[T], dict[T] or T?)",
                     whole);
    else
        mapq_err_set(err, MAPQ_EINVAL,
                     "unknown type '%.*s' in '%s' (expected int, float, "
                     "bool, str, bytes, any, list[T], dict[T] or T?)",
                     (int)n, p, whole);
}

/* Parses one type at *p, advancing it; NULL and err on failure. */
static struct mapq_type *
parse_at(const char **p, int depth, const char *whole, char *err)
{
    struct mapq_type *t = NULL, *elem = NULL;
    size_t n;
    int k;

    skip_space(p);
    if (depth > TYPE_MAX_DEPTH) {
        mapq_err_set(err, MAPQ_EINVAL, "type '%s' is nested too deeply", whole);
        return NULL;
    }
    n = strspn(*p, "abcdefghijklmnopqrstuvwxyz");
    for (k = 0; k < (int)(sizeof(kind_names) / sizeof(kind_names[0])); k++)
        if (strlen(kind_names[k]) == n && strncmp(*p, kind_names[k], n) == 0)
            break;
    if (n == 0 || k == (int)(sizeof(kind_names) / sizeof(kind_names[0]))) {
        unknown_type(*p, whole, err);
        return NULL;
    }
    *p += n;
    if (k == MAPQ_T_LIST || k == MAPQ_T_DICT) {
        skip_space(p);
        if (**p != '[')
            goto bad;
        (*p)++;
        elem = parse_at(p, depth + 1, whole, err);
        if (elem == NULL)
            return NULL;
        skip_space(p);
        if (**p != ']')
            goto bad;
        (*p)++;
    }
    t = mapq_type_new((enum mapq_type_kind)k, false, elem);
    skip_space(p);
    if (**p == '?') {
        t->optional = true;
        (*p)++;
    }
    return t;
bad:
    mapq_type_free(elem);
    mapq_err_set(err, MAPQ_EINVAL, "malformed type '%s'", whole);
    return NULL;
}

struct mapq_type *
mapq_type_parse(const char *s, char *err)
{
    const char *p = s;
    struct mapq_type *t = parse_at(&p, 0, s, err);

    if (t == NULL)
        return NULL;
    skip_space(&p);
    if (*p != '\0') {
        mapq_type_free(t);
        mapq_err_set(err, MAPQ_EINVAL, "malformed type '%s'", s);
        return NULL;
    }
    return t;
}

/* Advances *off past what snprintf wrote; on truncation, to the end. */
static void
advance(size_t *off, int n, size_t len)
{
    if (n < 0 || (size_t)n >= len - *off)
        *off = len - 1;
    else
        *off += (size_t)n;
}

static void
format_into(const struct mapq_type *t, char *buf, size_t len, size_t *off)
{
    int n;

    if (t->kind == MAPQ_T_LIST || t->kind == MAPQ_T_DICT) {
        n = snprintf(buf + *off, len - *off, "%s[", kind_names[t->kind]);
        advance(off, n, len);
        format_into(elem_of(t), buf, len, off);
        n = snprintf(buf + *off, len - *off, "]%s", t->optional ? "?" : "");
    } else {
        n = snprintf(buf + *off, len - *off, "%s%s", kind_names[t->kind],
                     t->optional ? "?" : "");
    }
    advance(off, n, len);
}

char *
mapq_type_format(const struct mapq_type *t, char *buf, size_t len)
{
    size_t off = 0;

    if (len == 0)
        return buf;
    buf[0] = '\0';
    if (t == NULL)
        snprintf(buf, len, "none");
    else
        format_into(t, buf, len, &off);
    return buf;
}

bool
mapq_type_equal(const struct mapq_type *a, const struct mapq_type *b)
{
    if (a == NULL || b == NULL)
        return a == b;
    return a->kind == b->kind && a->optional == b->optional &&
           mapq_type_equal(a->elem, b->elem);
}

bool
mapq_type_assignable(const struct mapq_type *src, const struct mapq_type *dst)
{
    if (src->kind == MAPQ_T_ANY || dst->kind == MAPQ_T_ANY)
        return true;
    if (src->optional && !dst->optional)
        return false;
    if (src->kind == MAPQ_T_INT && dst->kind == MAPQ_T_FLOAT)
        return true;
    if (src->kind != dst->kind)
        return false;
    if (src->kind == MAPQ_T_LIST || src->kind == MAPQ_T_DICT)
        return mapq_type_assignable(elem_of(src), elem_of(dst));
    return true;
}

bool
mapq_type_is_list(const struct mapq_type *t)
{
    return t->kind == MAPQ_T_LIST;
}

const char *
mapq_type_describe(const msgpack_object *o)
{
    switch (o->type) {
    case MSGPACK_OBJECT_NIL:
        return "null";
    case MSGPACK_OBJECT_BOOLEAN:
        return "bool";
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
    case MSGPACK_OBJECT_NEGATIVE_INTEGER:
        return "int";
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        return "float";
    case MSGPACK_OBJECT_STR:
        return "str";
    case MSGPACK_OBJECT_BIN:
        return "bytes";
    case MSGPACK_OBJECT_ARRAY:
        return "list";
    case MSGPACK_OBJECT_MAP:
        return "dict";
    case MSGPACK_OBJECT_EXT:
        return "ext";
    }
    return "unknown";
}

/* Length of the UTF-8 character at s (n > 0 bytes left), 0 if invalid. */
static size_t
utf8_char(const unsigned char *s, size_t n)
{
    uint32_t cp;
    size_t len, i;

    if (s[0] < 0x80)
        return 1;
    if (s[0] >= 0xc2 && s[0] <= 0xdf) {
        len = 2;
        cp = s[0] & 0x1fu;
    } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
        len = 3;
        cp = s[0] & 0x0fu;
    } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
        len = 4;
        cp = s[0] & 0x07u;
    } else {
        return 0;
    }
    if (n < len)
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (s[i] & 0x3fu);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) ||
        cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

size_t
mapq_type_utf8_prefix(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t off = 0, c;

    while (off < n) {
        /* ASCII runs are the common case. */
        if (u[off] < 0x80) {
            off++;
            continue;
        }
        c = utf8_char(u + off, n - off);
        if (c == 0)
            break;
        off += c;
    }
    return off;
}

size_t
mapq_type_path_key(char *path, size_t plen, const char *key, size_t klen)
{
    const unsigned char *k = (const unsigned char *)key;
    char shown[PATH_KEY_MAX * 4 + 1];
    size_t base = strlen(path), i = 0, o = 0, c;

    while (i < klen && i < PATH_KEY_MAX) {
        c = utf8_char(k + i, klen - i);
        if (c == 0 || k[i] < 0x20 || k[i] == 0x7f) {
            snprintf(shown + o, sizeof(shown) - o, "\\x%02x", k[i]);
            o += 4;
            i++;
            continue;
        }
        if (i + c > PATH_KEY_MAX)
            break;
        memcpy(shown + o, k + i, c);
        o += c;
        i += c;
    }
    shown[o] = '\0';
    if (base < plen) {
        snprintf(path + base, plen - base, "[\"%s\"]", shown);
        /* A full path may have cut a character. */
        path[base + mapq_type_utf8_prefix(path + base, strlen(path + base))] =
            '\0';
    }
    return base;
}

/*
 * Refuses a scalar that fits its type but is no value at all, because JSON
 * cannot carry it (see mapq_type.h); path names where it is.
 */
static enum mapq_err
check_representable(const msgpack_object *o, const char *path, char *err)
{
    const char *sep = path[0] != '\0' ? ": " : "";
    size_t good;

    switch (o->type) {
    case MSGPACK_OBJECT_POSITIVE_INTEGER:
        if (o->via.u64 > (uint64_t)INT64_MAX)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%sinteger out of range: %" PRIu64, path, sep,
                                o->via.u64);
        break;
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (isnan(o->via.f64))
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%sfloat NaN cannot be written as JSON", path,
                                sep);
        if (isinf(o->via.f64))
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%sfloat infinity cannot be written as JSON",
                                path, sep);
        break;
    case MSGPACK_OBJECT_STR:
        good = mapq_type_utf8_prefix(o->via.str.ptr, o->via.str.size);
        if (good < o->via.str.size)
            return mapq_err_set(
                err, MAPQ_ETYPE,
                "%s%sstring is not valid UTF-8 (byte 0x%02x at offset %zu)",
                path, sep, (unsigned char)o->via.str.ptr[good], good);
        break;
    default:
        break;
    }
    return MAPQ_OK;
}

static bool
scalar_fits(enum mapq_type_kind kind, const msgpack_object *o)
{
    switch (kind) {
    case MAPQ_T_INT:
        return o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
               o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    case MAPQ_T_FLOAT:
        return o->type == MSGPACK_OBJECT_FLOAT32 ||
               o->type == MSGPACK_OBJECT_FLOAT64 ||
               o->type == MSGPACK_OBJECT_POSITIVE_INTEGER ||
               o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER;
    case MAPQ_T_BOOL:
        return o->type == MSGPACK_OBJECT_BOOLEAN;
    case MAPQ_T_STR:
        return o->type == MSGPACK_OBJECT_STR;
    case MAPQ_T_BYTES:
        return o->type == MSGPACK_OBJECT_BIN;
    case MAPQ_T_ANY:
        return o->type != MSGPACK_OBJECT_EXT;
    case MAPQ_T_LIST:
        return o->type == MSGPACK_OBJECT_ARRAY;
    case MAPQ_T_DICT:
        return o->type == MSGPACK_OBJECT_MAP;
    }
    return false;
}

/* Element type of t for a list or dict value: any stays any. */
static const struct mapq_type *
child_of(const struct mapq_type *t)
{
    return t->kind == MAPQ_T_ANY ? &any_type : elem_of(t);
}

static enum mapq_err check_at(const struct mapq_type *t,
                              const msgpack_object *o, char *path, size_t plen,
                              int depth, char *err);

/* Checks the entries of map o against t: str keys, values of t's elem. */
static enum mapq_err
check_map(const struct mapq_type *t, const msgpack_object *o, char *path,
          size_t plen, int depth, char *err)
{
    size_t base = strlen(path);
    uint32_t i;
    enum mapq_err rc;

    for (i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;

        if (k->type != MSGPACK_OBJECT_STR)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%sdict keys must be str, got %s", path,
                                base ? ": " : "", mapq_type_describe(k));
        path[base] = '\0';
        mapq_type_path_key(path, plen, k->via.str.ptr, k->via.str.size);
        if (mapq_type_utf8_prefix(k->via.str.ptr, k->via.str.size) <
            k->via.str.size)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s: dict key is not valid UTF-8", path);
        if (k->via.str.size > 0 &&
            memchr(k->via.str.ptr, '\0', k->via.str.size) != NULL)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s: dict key holds a NUL byte", path);
        rc = check_at(child_of(t), &o->via.map.ptr[i].val, path, plen,
                      depth + 1, err);
        if (rc != MAPQ_OK)
            return rc;
    }
    path[base] = '\0';
    return MAPQ_OK;
}

/*
 * Checks o against t, recursing into lists and dicts (also under any, where
 * nested values must still be representable: no ext, str keys only).
 */
static enum mapq_err
check_at(const struct mapq_type *t, const msgpack_object *o, char *path,
         size_t plen, int depth, char *err)
{
    char tname[128];
    size_t base = strlen(path);
    uint32_t i;
    enum mapq_err rc;

    if (depth > VALUE_MAX_DEPTH)
        return mapq_err_set(err, MAPQ_ETYPE,
                            "%s%svalue nested more than %d levels deep", path,
                            base ? ": " : "", VALUE_MAX_DEPTH);
    if (o->type == MSGPACK_OBJECT_NIL) {
        if (t->optional || t->kind == MAPQ_T_ANY)
            return MAPQ_OK;
        return mapq_err_set(err, MAPQ_ETYPE, "%s%sexpected %s, got null", path,
                            base ? ": " : "",
                            mapq_type_format(t, tname, sizeof(tname)));
    }
    if (!scalar_fits(t->kind, o))
        return mapq_err_set(
            err, MAPQ_ETYPE, "%s%sexpected %s, got %s", path, base ? ": " : "",
            mapq_type_format(t, tname, sizeof(tname)), mapq_type_describe(o));
    if (o->type == MSGPACK_OBJECT_MAP)
        return check_map(t, o, path, plen, depth, err);
    if (o->type != MSGPACK_OBJECT_ARRAY)
        return check_representable(o, path, err);
    for (i = 0; i < o->via.array.size; i++) {
        snprintf(path + base, plen - base, "[%u]", i);
        rc = check_at(child_of(t), &o->via.array.ptr[i], path, plen, depth + 1,
                      err);
        if (rc != MAPQ_OK)
            return rc;
    }
    path[base] = '\0';
    return MAPQ_OK;
}

enum mapq_err
mapq_type_check(const struct mapq_type *t, const msgpack_object *o, char *err)
{
    char path[256] = "";

    return check_at(t, o, path, sizeof(path), 0, err);
}
