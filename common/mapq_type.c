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

/* Spelled words by kind; a record, spelled with braces, has none. */
static const char *const kind_names[] = {
    [MAPQ_T_INT] = "int",   [MAPQ_T_FLOAT] = "float", [MAPQ_T_BOOL] = "bool",
    [MAPQ_T_STR] = "str",   [MAPQ_T_BYTES] = "bytes", [MAPQ_T_ANY] = "any",
    [MAPQ_T_LIST] = "list", [MAPQ_T_DICT] = "dict",   [MAPQ_T_RECORD] = NULL,
    [MAPQ_T_FILE] = "file", [MAPQ_T_DIR] = "dir"};
#define NWORDS (sizeof(kind_names) / sizeof(kind_names[0]))

/* A file's members and a dir's, sorted by name; FILE_FILES... index them
 * (a file has no "files"). */
static const char *const file_members[] = {"files", "sha256", "size", "uri"};
enum { FILE_FILES, FILE_SHA256, FILE_SIZE, FILE_URI, NFILE_MEMBERS };

/* What a list or dict built with a NULL elem holds: any. */
static const struct mapq_type any_type = {.kind = MAPQ_T_ANY};

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

static void
members_free(struct mapq_member *m, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        free(m[i].name);
        mapq_type_free(m[i].type);
    }
    free(m);
}

void
mapq_type_free(struct mapq_type *t)
{
    if (t == NULL)
        return;
    mapq_type_free(t->elem);
    members_free(t->members, t->nmembers);
    free(t);
}

static int
member_cmp(const void *a, const void *b)
{
    return strcmp(((const struct mapq_member *)a)->name,
                  ((const struct mapq_member *)b)->name);
}

/* Whether name is [A-Za-z_][A-Za-z0-9_]* of at most MAPQ_TYPE_NAME_MAX. */
static bool
member_name_ok(const char *name)
{
    size_t n = strlen(name);

    return n > 0 && n <= MAPQ_TYPE_NAME_MAX &&
           strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789_") == n &&
           !(name[0] >= '0' && name[0] <= '9');
}

struct mapq_type *
mapq_type_record(struct mapq_member *members, size_t n, bool optional,
                 char *err)
{
    struct mapq_type *t;
    size_t i;

    if (n == 0 || n > MAPQ_TYPE_MEMBERS_MAX) {
        mapq_err_set(err, MAPQ_EINVAL, "a record has 1 to %d members, not %zu",
                     MAPQ_TYPE_MEMBERS_MAX, n);
        goto fail;
    }
    for (i = 0; i < n; i++)
        if (!member_name_ok(members[i].name)) {
            mapq_err_set(err, MAPQ_EINVAL,
                         "bad member name '%.*s' (letters, digits and _, "
                         "not first a digit, at most %d)",
                         MAPQ_TYPE_NAME_MAX, members[i].name,
                         MAPQ_TYPE_NAME_MAX);
            goto fail;
        }
    qsort(members, n, sizeof(*members), member_cmp);
    for (i = 1; i < n; i++)
        if (strcmp(members[i - 1].name, members[i].name) == 0) {
            mapq_err_set(err, MAPQ_EINVAL, "member '%s' declared twice",
                         members[i].name);
            goto fail;
        }
    t = mapq_type_new(MAPQ_T_RECORD, optional, NULL);
    t->members = members;
    t->nmembers = n;
    return t;
fail:
    members_free(members, n);
    return NULL;
}

/* The position of record t's member name (len bytes), or -1. */
static long
member_index(const struct mapq_type *t, const char *name, size_t len)
{
    size_t lo = 0, hi = t->nmembers, mid, mlen;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        mlen = strlen(t->members[mid].name);
        c = memcmp(t->members[mid].name, name, mlen < len ? mlen : len);
        if (c == 0)
            c = mlen < len ? -1 : mlen > len;
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

const struct mapq_type *
mapq_type_member(const struct mapq_type *t, const char *name, size_t len)
{
    long j;

    if (t == NULL || t->kind != MAPQ_T_RECORD)
        return NULL;
    j = member_index(t, name, len);
    return j < 0 ? NULL : t->members[j].type;
}

struct mapq_type *
mapq_type_dup(const struct mapq_type *t)
{
    struct mapq_type *d;
    size_t i;

    if (t == NULL)
        return NULL;
    d = mapq_type_new(t->kind, t->optional, mapq_type_dup(t->elem));
    if (t->nmembers > 0) {
        d->members = mapq_xcalloc(t->nmembers, sizeof(*d->members));
        d->nmembers = t->nmembers;
        for (i = 0; i < t->nmembers; i++) {
            d->members[i].name = mapq_xstrdup(t->members[i].name);
            d->members[i].type = mapq_type_dup(t->members[i].type);
        }
    }
    return d;
}

struct mapq_type *
mapq_type_file_paths(const struct mapq_type *t)
{
    struct mapq_type *d;
    size_t i;

    if (!mapq_type_has_file(t))
        return NULL;
    if (t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR)
        return mapq_type_new(MAPQ_T_ANY, t->optional, NULL);
    d = mapq_type_dup(t);
    if (d->elem != NULL && mapq_type_has_file(d->elem)) {
        mapq_type_free(d->elem);
        d->elem = mapq_type_file_paths(t->elem);
    }
    for (i = 0; i < d->nmembers; i++) {
        if (!mapq_type_has_file(d->members[i].type))
            continue;
        mapq_type_free(d->members[i].type);
        d->members[i].type = mapq_type_file_paths(t->members[i].type);
    }
    return d;
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
        mapq_err_set(
            err, MAPQ_EINVAL,
            "unknown type '%s' (expected int, float, bool, str, "
            "bytes, any, file, list[T], dict[T], {name: T, ...} or T?)",
            whole);
    else
        mapq_err_set(err, MAPQ_EINVAL,
                     "unknown type '%.*s' in '%s' (expected int, float, "
                     "bool, str, bytes, any, file, list[T], dict[T], {name: T, "
                     "...} or T?)",
                     (int)n, p, whole);
}

static struct mapq_type *parse_at(const char **p, int depth, const char *whole,
                                  char *err);

/* Parses the members of a record at *p (past its '{') and its '}'; NULL
 * and err on failure. */
static struct mapq_type *
parse_record(const char **p, int depth, const char *whole, char *err)
{
    struct mapq_member *m = NULL;
    struct mapq_type *t;
    char sub[MAPQ_ERR_LEN];
    size_t n = 0, len;

    for (;;) {
        skip_space(p);
        len = strspn(*p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789_");
        if (len == 0 || n == MAPQ_TYPE_MEMBERS_MAX ||
            len > MAPQ_TYPE_NAME_MAX) {
            if (n == MAPQ_TYPE_MEMBERS_MAX)
                mapq_err_set(err, MAPQ_EINVAL,
                             "a record has at most %d members, in type '%s'",
                             MAPQ_TYPE_MEMBERS_MAX, whole);
            else
                mapq_err_set(err, MAPQ_EINVAL,
                             "malformed type '%s' (a record is {name: T, "
                             "...})",
                             whole);
            goto fail;
        }
        m = mapq_xrealloc(m, (n + 1) * sizeof(*m));
        m[n].name = mapq_xstrndup(*p, len);
        m[n].type = NULL;
        n++;
        *p += len;
        skip_space(p);
        if (**p != ':') {
            mapq_err_set(err, MAPQ_EINVAL,
                         "malformed type '%s' (a record is {name: T, ...})",
                         whole);
            goto fail;
        }
        (*p)++;
        m[n - 1].type = parse_at(p, depth + 1, whole, err);
        if (m[n - 1].type == NULL)
            goto fail;
        skip_space(p);
        if (**p == '}')
            break;
        if (**p != ',') {
            mapq_err_set(err, MAPQ_EINVAL,
                         "malformed type '%s' (a record is {name: T, ...})",
                         whole);
            goto fail;
        }
        (*p)++;
    }
    (*p)++;
    t = mapq_type_record(m, n, false, sub);
    if (t == NULL)
        mapq_err_set(err, MAPQ_EINVAL, "type '%s': %s", whole, sub);
    return t;
fail:
    members_free(m, n);
    return NULL;
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
    if (**p == '{') {
        (*p)++;
        t = parse_record(p, depth, whole, err);
        if (t == NULL)
            return NULL;
        goto optional;
    }
    n = strspn(*p, "abcdefghijklmnopqrstuvwxyz");
    for (k = 0; k < (int)NWORDS; k++)
        if (kind_names[k] != NULL && strlen(kind_names[k]) == n &&
            strncmp(*p, kind_names[k], n) == 0)
            break;
    if (n == 0 || k == (int)NWORDS) {
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
optional:
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
    size_t i;
    int n;

    if (t->kind == MAPQ_T_RECORD) {
        for (i = 0; i < t->nmembers; i++) {
            n = snprintf(buf + *off, len - *off, "%s%s: ", i ? ", " : "{",
                         t->members[i].name);
            advance(off, n, len);
            format_into(t->members[i].type, buf, len, off);
        }
        n = snprintf(buf + *off, len - *off, "}%s", t->optional ? "?" : "");
    } else if (t->kind == MAPQ_T_LIST || t->kind == MAPQ_T_DICT) {
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

char *
mapq_type_format_alloc(const struct mapq_type *t)
{
    size_t len = 256;
    char *buf = NULL;

    /* A spelling that fills the buffer may have been cut: try a larger. */
    do {
        len *= 2;
        buf = mapq_xrealloc(buf, len);
        mapq_type_format(t, buf, len);
    } while (strlen(buf) == len - 1);
    return buf;
}

bool
mapq_type_equal(const struct mapq_type *a, const struct mapq_type *b)
{
    size_t i;

    if (a == NULL || b == NULL)
        return a == b;
    if (a->kind != b->kind || a->optional != b->optional ||
        !mapq_type_equal(a->elem, b->elem) || a->nmembers != b->nmembers)
        return false;
    for (i = 0; i < a->nmembers; i++)
        if (strcmp(a->members[i].name, b->members[i].name) != 0 ||
            !mapq_type_equal(a->members[i].type, b->members[i].type))
            return false;
    return true;
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
    if (src->kind == MAPQ_T_RECORD) {
        size_t i;

        if (src->nmembers != dst->nmembers)
            return false;
        for (i = 0; i < src->nmembers; i++)
            if (strcmp(src->members[i].name, dst->members[i].name) != 0 ||
                !mapq_type_assignable(src->members[i].type,
                                      dst->members[i].type))
                return false;
    }
    return true;
}

bool
mapq_type_is_list(const struct mapq_type *t)
{
    return t->kind == MAPQ_T_LIST;
}

bool
mapq_type_has_file(const struct mapq_type *t)
{
    size_t i;

    if (t == NULL)
        return false;
    if (t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR)
        return true;
    for (i = 0; i < t->nmembers; i++)
        if (mapq_type_has_file(t->members[i].type))
            return true;
    return mapq_type_has_file(t->elem);
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
    /* "[\"", up to PATH_KEY_MAX bytes shown 4 bytes each, "\"]", NUL. */
    char piece[PATH_KEY_MAX * 4 + 5];
    size_t base = strlen(path), i = 0, o = 2, c, n;

    piece[0] = '[';
    piece[1] = '"';
    while (i < klen && i < PATH_KEY_MAX) {
        c = utf8_char(k + i, klen - i);
        if (c == 0 || k[i] < 0x20 || k[i] == 0x7f) {
            snprintf(piece + o, sizeof(piece) - o, "\\x%02x", k[i]);
            o += 4;
            i++;
            continue;
        }
        if (i + c > PATH_KEY_MAX)
            break;
        memcpy(piece + o, k + i, c);
        o += c;
        i += c;
    }
    piece[o++] = '"';
    piece[o++] = ']';
    if (base < plen) {
        n = o < plen - base - 1 ? o : plen - base - 1;
        memcpy(path + base, piece, n);
        /* A full path may have cut a character. */
        path[base + mapq_type_utf8_prefix(path + base, n)] = '\0';
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
    case MAPQ_T_RECORD:
    case MAPQ_T_FILE:
    case MAPQ_T_DIR:
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

/* For a record: whether member j of t was seen (a bit per member). */
#define SEEN_WORDS ((MAPQ_TYPE_MEMBERS_MAX + 63) / 64)

static enum mapq_err check_at(const struct mapq_type *t,
                              const msgpack_object *o, char *path, size_t plen,
                              int depth, char *err);

/* Checks the entries of map o against t: str keys, values of t's elem. */
static enum mapq_err
check_map(const struct mapq_type *t, const msgpack_object *o, char *path,
          size_t plen, int depth, char *err)
{
    size_t base = strlen(path);
    uint64_t seen[SEEN_WORDS] = {0};
    char tname[160];
    const struct mapq_type *vt;
    uint32_t i;
    size_t j;
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
        vt = child_of(t);
        if (t->kind == MAPQ_T_RECORD) {
            long at = member_index(t, k->via.str.ptr, k->via.str.size);

            if (at < 0)
                return mapq_err_set(err, MAPQ_ETYPE, "%s: not a member of %s",
                                    path,
                                    mapq_type_format(t, tname, sizeof(tname)));
            j = (size_t)at;
            vt = t->members[j].type;
            if (seen[j / 64] & (UINT64_C(1) << (j % 64)))
                return mapq_err_set(err, MAPQ_ETYPE, "%s: member given twice",
                                    path);
            seen[j / 64] |= UINT64_C(1) << (j % 64);
        }
        rc = check_at(vt, &o->via.map.ptr[i].val, path, plen, depth + 1, err);
        if (rc != MAPQ_OK)
            return rc;
    }
    path[base] = '\0';
    for (j = 0; t->kind == MAPQ_T_RECORD && j < t->nmembers; j++)
        if (!(seen[j / 64] & (UINT64_C(1) << (j % 64))))
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%smissing member '%s' of %s", path,
                                base ? ": " : "", t->members[j].name,
                                mapq_type_format(t, tname, sizeof(tname)));
    return MAPQ_OK;
}

/* Whether s (n bytes) is MAPQ_TYPE_SHA256_HEX lowercase hex digits. */
static bool
sha256_hex_ok(const char *s, size_t n)
{
    size_t i;

    if (n != MAPQ_TYPE_SHA256_HEX)
        return false;
    for (i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

/* Checks v, the value of member j of a file, at path. */
static enum mapq_err
check_file_member(size_t j, const msgpack_object *v, const char *path,
                  char *err)
{
    bool str = v->type == MSGPACK_OBJECT_STR;

    switch (j) {
    case FILE_FILES:
    case FILE_SIZE:
        if (v->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
            v->type != MSGPACK_OBJECT_NEGATIVE_INTEGER)
            return mapq_err_set(err, MAPQ_ETYPE, "%s: expected int, got %s",
                                path, mapq_type_describe(v));
        if (v->type == MSGPACK_OBJECT_NEGATIVE_INTEGER && v->via.i64 < 0)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s: expected an int >= 0, got %" PRId64, path,
                                v->via.i64);
        break;
    case FILE_SHA256:
        if (!str)
            return mapq_err_set(err, MAPQ_ETYPE, "%s: expected str, got %s",
                                path, mapq_type_describe(v));
        if (!sha256_hex_ok(v->via.str.ptr, v->via.str.size))
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s: expected %d lowercase hex digits", path,
                                MAPQ_TYPE_SHA256_HEX);
        break;
    default: /* FILE_URI */
        if (!str)
            return mapq_err_set(err, MAPQ_ETYPE, "%s: expected str, got %s",
                                path, mapq_type_describe(v));
        if (v->via.str.size == 0)
            return mapq_err_set(err, MAPQ_ETYPE, "%s: URI is empty", path);
        if (v->via.str.size > MAPQ_TYPE_URI_MAX)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s: URI of %" PRIu32
                                " bytes is over the %d-byte cap",
                                path, v->via.str.size, MAPQ_TYPE_URI_MAX);
        if (memchr(v->via.str.ptr, '\0', v->via.str.size) != NULL)
            return mapq_err_set(err, MAPQ_ETYPE, "%s: URI holds a NUL byte",
                                path);
        break;
    }
    /* A size past INT64_MAX, a URI that is not UTF-8. */
    return check_representable(v, path, err);
}

/*
 * Checks map o against file (or dir): each of its members once, no other,
 * each of its shape. Reports as a record's check does, the type named
 * "file" (or "dir").
 */
static enum mapq_err
check_file(const msgpack_object *o, bool dir, char *path, size_t plen,
           char *err)
{
    const char *what = dir ? "dir" : "file";
    size_t base = strlen(path), j;
    bool seen[NFILE_MEMBERS] = {false};
    enum mapq_err rc;
    uint32_t i;

    for (i = 0; i < o->via.map.size; i++) {
        const msgpack_object *k = &o->via.map.ptr[i].key;

        if (k->type != MSGPACK_OBJECT_STR)
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%sdict keys must be str, got %s", path,
                                base ? ": " : "", mapq_type_describe(k));
        path[base] = '\0';
        mapq_type_path_key(path, plen, k->via.str.ptr, k->via.str.size);
        for (j = 0; j < NFILE_MEMBERS; j++)
            if (strlen(file_members[j]) == k->via.str.size &&
                memcmp(file_members[j], k->via.str.ptr, k->via.str.size) == 0)
                break;
        if (j == NFILE_MEMBERS || (j == FILE_FILES && !dir))
            return mapq_err_set(err, MAPQ_ETYPE, "%s: not a member of %s", path,
                                what);
        if (seen[j])
            return mapq_err_set(err, MAPQ_ETYPE, "%s: member given twice",
                                path);
        seen[j] = true;
        rc = check_file_member(j, &o->via.map.ptr[i].val, path, err);
        if (rc != MAPQ_OK)
            return rc;
    }
    path[base] = '\0';
    for (j = dir ? 0 : FILE_FILES + 1; j < NFILE_MEMBERS; j++)
        if (!seen[j])
            return mapq_err_set(err, MAPQ_ETYPE,
                                "%s%smissing member '%s' of %s", path,
                                base ? ": " : "", file_members[j], what);
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
    if (t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR)
        return check_file(o, t->kind == MAPQ_T_DIR, path, plen, err);
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
