/*
 * mapq_value.c - strict unpacking, canonical encoding and hashing of
 * msgpack values.
 *
 * Every value read goes through one pre-walk (check_lengths) before
 * msgpack-c sees it: each declared length is checked against the bytes
 * there and the caps, and nesting against MAPQ_VALUE_MAX_DEPTH, so nothing
 * read from Redis or a task can make msgpack-c allocate more than a small
 * multiple of the input's size. Canonical encoding recurses once per
 * nesting level, so its depth is bounded too.
 */
#include "mapq_value.h"

#include <inttypes.h>
#include <openssl/evp.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_hex.h"
#include "mapq_type.h"

/* Reads an n-byte big-endian length at p. */
static uint64_t
be_len(const unsigned char *p, int n)
{
    uint64_t v = 0;
    int i;

    for (i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/*
 * What the msgpack header byte b is followed by: hdr bytes of length
 * (lenb of them, at p + 1 + skip), then a payload of fixed or read length;
 * for containers, the number of elements it declares. Returns -1 for the
 * one byte msgpack never uses (0xc1).
 */
static int
header_shape(unsigned char b, int *lenb, int *skip, uint64_t *fixed,
             int *elems_per)
{
    static const unsigned char fixed_sizes[] = {
        [0xca - 0xca] = 4, [0xcb - 0xca] = 8, [0xcc - 0xca] = 1,
        [0xcd - 0xca] = 2, [0xce - 0xca] = 4, [0xcf - 0xca] = 8,
        [0xd0 - 0xca] = 1, [0xd1 - 0xca] = 2, [0xd2 - 0xca] = 4,
        [0xd3 - 0xca] = 8, [0xd4 - 0xca] = 2, [0xd5 - 0xca] = 3,
        [0xd6 - 0xca] = 5, [0xd7 - 0xca] = 9, [0xd8 - 0xca] = 17};

    *lenb = 0;
    *skip = 0;
    *fixed = 0;
    *elems_per = 0;
    if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
        return 0;
    if (b >= 0x80 && b <= 0x9f) { /* fixmap, fixarray */
        *fixed = b & 0x0f;
        *elems_per = b <= 0x8f ? 2 : 1;
        return 0;
    }
    if (b >= 0xa0 && b <= 0xbf) { /* fixstr */
        *fixed = b & 0x1f;
        return 0;
    }
    switch (b) {
    case 0xc4:
    case 0xd9:
        *lenb = 1;
        return 0; /* bin8, str8 */
    case 0xc5:
    case 0xda:
        *lenb = 2;
        return 0; /* bin16, str16 */
    case 0xc6:
    case 0xdb:
        *lenb = 4;
        return 0; /* bin32, str32 */
    case 0xc7:
        *lenb = 1;
        *skip = 1;
        return 0; /* ext8 */
    case 0xc8:
        *lenb = 2;
        *skip = 1;
        return 0; /* ext16 */
    case 0xc9:
        *lenb = 4;
        *skip = 1;
        return 0; /* ext32 */
    case 0xdc:
        *lenb = 2;
        *elems_per = 1;
        return 0; /* array16 */
    case 0xdd:
        *lenb = 4;
        *elems_per = 1;
        return 0; /* array32 */
    case 0xde:
        *lenb = 2;
        *elems_per = 2;
        return 0; /* map16 */
    case 0xdf:
        *lenb = 4;
        *elems_per = 2;
        return 0; /* map32 */
    default:
        break;
    }
    if (b >= 0xca && b <= 0xd8) {
        *fixed = fixed_sizes[b - 0xca];
        return 0;
    }
    return -1;
}

/*
 * Checks, without allocating, that the first msgpack value in data could
 * be there: every string, binary and extension fits in the bytes left and
 * under MAPQ_VALUE_MAX, every container declares no more elements than
 * bytes remain (each takes at least one) nor more than MAPQ_VALUE_MAX
 * objects (a map entry is two), and containers nest at most
 * MAPQ_VALUE_MAX_DEPTH deep. msgpack-c allocates for a container's
 * declared size before reading its elements, so without this a 5-byte
 * header would ask for gigabytes. Iterative: left[d] counts the elements
 * still to read at depth d, pending their sum.
 */
static enum mapq_err
check_lengths(const unsigned char *p, size_t len, size_t *end, char *err)
{
    uint64_t left[MAPQ_VALUE_MAX_DEPTH + 1], pending = 1, n, fixed;
    size_t off = 0;
    int lenb, skip, per, depth = 0;

    left[0] = 1;
    while (pending > 0) {
        while (left[depth] == 0)
            depth--;
        if (off >= len)
            return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
        left[depth]--;
        pending--;
        if (header_shape(p[off], &lenb, &skip, &fixed, &per) != 0)
            return mapq_err_set(err, MAPQ_EPROTO, "malformed msgpack value");
        off++;
        if ((size_t)(lenb + skip) > len - off)
            return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
        n = lenb > 0 ? be_len(p + off, lenb) : fixed;
        off += (size_t)(lenb + skip);
        if (per == 0) {
            /* Declaring more than the input holds is a truncated value,
             * whatever the header asks for. */
            if (n > len - off)
                return mapq_err_set(err, MAPQ_EPROTO,
                                    "truncated msgpack value");
            if (n > MAPQ_VALUE_MAX)
                return mapq_err_set(err, MAPQ_ETOOBIG,
                                    "msgpack str, bin or ext of %" PRIu64
                                    " bytes is over the %u MiB cap",
                                    n, MAPQ_VALUE_MAX >> 20);
            off += (size_t)n;
            continue;
        }
        if (depth == MAPQ_VALUE_MAX_DEPTH)
            return mapq_err_set(err, MAPQ_EPROTO,
                                "msgpack value nested more than %d deep",
                                MAPQ_VALUE_MAX_DEPTH);
        /* The same for elements: each takes at least one byte. */
        n *= (uint64_t)per;
        pending += n;
        if (pending > len - off)
            return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
        if (n > MAPQ_VALUE_MAX)
            return mapq_err_set(err, MAPQ_ETOOBIG,
                                "msgpack array or map of %" PRIu64
                                " objects is over the cap of %u",
                                n, MAPQ_VALUE_MAX);
        left[++depth] = n;
    }
    *end = off;
    return MAPQ_OK;
}

/* check_lengths() of the value at data + off: it may be handed to
 * msgpack-c. */
static enum mapq_err
precheck(const char *data, size_t len, size_t off, char *err)
{
    size_t end;

    if (off >= len)
        return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
    return check_lengths((const unsigned char *)data + off, len - off, &end,
                         err);
}

/* What msgpack-c's answer ret means (EXTRA_BYTES: the next objects). */
static enum mapq_err
unpacked(msgpack_unpack_return ret, char *err)
{
    if (ret == MSGPACK_UNPACK_CONTINUE)
        return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "out of memory unpacking a msgpack value");
    if (ret != MSGPACK_UNPACK_SUCCESS && ret != MSGPACK_UNPACK_EXTRA_BYTES)
        return mapq_err_set(err, MAPQ_EPROTO, "malformed msgpack value");
    return MAPQ_OK;
}

/* precheck(), then msgpack-c, at data + *off; advances *off. */
static enum mapq_err
unpack_at(const char *data, size_t len, size_t *off, msgpack_unpacked *u,
          char *err)
{
    enum mapq_err rc = precheck(data, len, *off, err);

    if (rc != MAPQ_OK)
        return rc;
    return unpacked(msgpack_unpack_next(u, data, len, off), err);
}

enum mapq_err
mapq_value_unpack_next(const char *data, size_t len, size_t *off,
                       msgpack_unpacked *u, char *err)
{
    size_t at = *off;
    enum mapq_err rc = unpack_at(data, len, &at, u, err);

    if (rc == MAPQ_OK)
        *off = at;
    return rc;
}

enum mapq_err
mapq_value_unpack_zone(const char *data, size_t len, size_t *off,
                       msgpack_zone *zone, msgpack_object *o, char *err)
{
    size_t at = *off;
    enum mapq_err rc = precheck(data, len, at, err);

    if (rc == MAPQ_OK)
        rc = unpacked(msgpack_unpack(data, len, &at, zone, o), err);
    if (rc == MAPQ_OK)
        *off = at;
    return rc;
}

enum mapq_err
mapq_value_unpack(const char *data, size_t len, msgpack_unpacked *u, char *err)
{
    size_t off = 0;
    enum mapq_err rc = unpack_at(data, len, &off, u, err);

    if (rc != MAPQ_OK)
        return rc;
    if (off != len)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "%zu trailing bytes after msgpack value",
                            len - off);
    return MAPQ_OK;
}

enum mapq_err
mapq_value_skip(const char *data, size_t len, size_t *off, char *err)
{
    size_t end;
    enum mapq_err rc;

    if (*off >= len)
        return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
    rc = check_lengths((const unsigned char *)data + *off, len - *off, &end,
                       err);
    if (rc == MAPQ_OK)
        *off += end;
    return rc;
}

/* The str at data + *off: its bytes and length; advances *off past it.
 * False when there is no whole str there. */
static bool
str_at(const char *data, size_t len, size_t *off, const char **s, size_t *n)
{
    const unsigned char *p = (const unsigned char *)data + *off;
    int lenb, skip, per;
    uint64_t fixed, sl;

    if (*off >= len || header_shape(p[0], &lenb, &skip, &fixed, &per) != 0)
        return false;
    if (!((p[0] >= 0xa0 && p[0] <= 0xbf) || (p[0] >= 0xd9 && p[0] <= 0xdb)))
        return false;
    if ((size_t)lenb + 1 > len - *off)
        return false;
    sl = lenb > 0 ? be_len(p + 1, lenb) : fixed;
    if (sl > len - *off - 1 - (size_t)lenb)
        return false;
    *s = data + *off + 1 + lenb;
    *n = (size_t)sl;
    *off += 1 + (size_t)lenb + (size_t)sl;
    return true;
}

bool
mapq_value_map_header(const char *data, size_t len, uint32_t *n, size_t *hlen)
{
    const unsigned char *d = (const unsigned char *)data;

    /* The format's three map headers: fixmap, map 16, map 32. */
    if (len >= 1 && (d[0] & 0xf0) == 0x80) {
        *n = d[0] & 0x0f;
        *hlen = 1;
    } else if (len >= 3 && d[0] == 0xde) {
        *n = (uint32_t)be_len(d + 1, 2);
        *hlen = 3;
    } else if (len >= 5 && d[0] == 0xdf) {
        *n = (uint32_t)be_len(d + 1, 4);
        *hlen = 5;
    } else {
        return false;
    }
    return true;
}

bool
mapq_value_map_find(const char *data, size_t len, const char *name,
                    const char **v, size_t *vlen)
{
    size_t off, at, klen, nlen = strlen(name);
    const char *key;
    char err[MAPQ_ERR_LEN];
    uint32_t n, i;

    if (!mapq_value_map_header(data, len, &n, &off))
        return false;
    for (i = 0; i < n; i++) {
        if (!str_at(data, len, &off, &key, &klen))
            return false;
        at = off;
        if (mapq_value_skip(data, len, &off, err) != MAPQ_OK)
            return false;
        if (klen == nlen && memcmp(key, name, nlen) == 0) {
            *v = data + at;
            *vlen = off - at;
            return true;
        }
    }
    return false;
}

bool
mapq_value_array_header(const char *data, size_t len, uint32_t *n, size_t *hlen)
{
    const unsigned char *d = (const unsigned char *)data;

    /* The format's three array headers: fixarray, array 16, array 32. */
    if (len >= 1 && (d[0] & 0xf0) == 0x90) {
        *n = d[0] & 0x0f;
        *hlen = 1;
    } else if (len >= 3 && d[0] == 0xdc) {
        *n = (uint32_t)d[1] << 8 | d[2];
        *hlen = 3;
    } else if (len >= 5 && d[0] == 0xdd) {
        *n = (uint32_t)d[1] << 24 | (uint32_t)d[2] << 16 | (uint32_t)d[3] << 8 |
             d[4];
        *hlen = 5;
    } else {
        return false;
    }
    return true;
}

/* Checks the value at data + *off and steps over it: a list element by
 * element. */
static enum mapq_err
check_one(const char *data, size_t len, size_t *off, msgpack_unpacked *u,
          char *err)
{
    enum mapq_err rc = MAPQ_OK;
    uint32_t n, i;
    size_t hlen;

    if (*off >= len ||
        !mapq_value_array_header(data + *off, len - *off, &n, &hlen))
        return mapq_value_unpack_next(data, len, off, u, err);
    *off += hlen;
    for (i = 0; i < n && rc == MAPQ_OK; i++)
        rc = mapq_value_unpack_next(data, len, off, u, err);
    return rc;
}

enum mapq_err
mapq_value_check(const char *data, size_t len, char *err)
{
    msgpack_unpacked u;
    enum mapq_err rc = MAPQ_OK;
    uint32_t n, i;
    size_t off = 0;

    msgpack_unpacked_init(&u);
    if (!mapq_value_map_header(data, len, &n, &off)) {
        rc = check_one(data, len, &off, &u, err);
    } else {
        /* A map's values too: inputs are a map of lists. */
        for (i = 0; i < n && rc == MAPQ_OK; i++) {
            rc = mapq_value_unpack_next(data, len, &off, &u, err);
            if (rc == MAPQ_OK)
                rc = check_one(data, len, &off, &u, err);
        }
    }
    if (rc == MAPQ_OK && off != len)
        rc = mapq_err_set(err, MAPQ_EPROTO,
                          "%zu trailing bytes after msgpack value", len - off);
    msgpack_unpacked_destroy(&u);
    return rc;
}

void
mapq_value_packer_init(msgpack_packer *pk, struct mapq_buf *b)
{
    msgpack_packer_init(pk, b, mapq_buf_msgpack_write);
}

void
mapq_value_pack_str(msgpack_packer *pk, const char *s)
{
    size_t n = strlen(s);

    msgpack_pack_str(pk, n);
    msgpack_pack_str_body(pk, s, n);
}

void
mapq_value_pack_fileref(msgpack_packer *pk, const char *uri, const char *sha256,
                        int64_t size, int64_t files)
{
    msgpack_pack_map(pk, files >= 0 ? 4 : 3);
    if (files >= 0) {
        mapq_value_pack_str(pk, "files");
        msgpack_pack_int64(pk, files);
    }
    mapq_value_pack_str(pk, "sha256");
    mapq_value_pack_str(pk, sha256);
    mapq_value_pack_str(pk, "size");
    msgpack_pack_int64(pk, size);
    mapq_value_pack_str(pk, "uri");
    mapq_value_pack_str(pk, uri);
}

struct keyed {
    struct mapq_buf key; /* canonical key bytes */
    const msgpack_object *val;
    const struct mapq_type *type; /* val's; NULL: any */
};

static int
keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    size_t n = x->key.len < y->key.len ? x->key.len : y->key.len;
    int c = memcmp(x->key.data, y->key.data, n);

    if (c != 0)
        return c;
    return (x->key.len > y->key.len) - (x->key.len < y->key.len);
}

static enum mapq_err canonical_into(const msgpack_object *o,
                                    const struct mapq_type *t,
                                    msgpack_packer *pk, struct mapq_buf *out);

/* The type of the value under key k of a map of type t; NULL: any. */
static const struct mapq_type *
value_type(const struct mapq_type *t, const msgpack_object *k)
{
    if (t == NULL)
        return NULL;
    if (t->kind == MAPQ_T_DICT)
        return t->elem;
    if (t->kind == MAPQ_T_RECORD && k->type == MSGPACK_OBJECT_STR)
        return mapq_type_member(t, k->via.str.ptr, k->via.str.size);
    return NULL;
}

static enum mapq_err
canonical_map(const msgpack_object *o, const struct mapq_type *t,
              msgpack_packer *pk, struct mapq_buf *out)
{
    uint32_t n = o->via.map.size, i;
    struct keyed *ks = mapq_xcalloc(n ? n : 1, sizeof(*ks));
    enum mapq_err rc = MAPQ_OK;
    msgpack_packer kpk;

    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        mapq_buf_init(&ks[i].key, 0);
        mapq_value_packer_init(&kpk, &ks[i].key);
        rc = canonical_into(&o->via.map.ptr[i].key, NULL, &kpk, &ks[i].key);
        ks[i].val = &o->via.map.ptr[i].val;
        ks[i].type = value_type(t, &o->via.map.ptr[i].key);
    }
    if (rc == MAPQ_OK) {
        qsort(ks, n, sizeof(*ks), keyed_cmp);
        if (msgpack_pack_map(pk, n) != 0)
            rc = MAPQ_ETOOBIG;
        for (i = 0; i < n && rc == MAPQ_OK; i++) {
            rc = mapq_buf_append(out, ks[i].key.data, ks[i].key.len);
            if (rc == MAPQ_OK)
                rc = canonical_into(ks[i].val, ks[i].type, pk, out);
        }
    }
    for (i = 0; i < n; i++)
        mapq_buf_release(&ks[i].key);
    free(ks);
    return rc;
}

/*
 * Writes file reference o (a map) as [sha256, size]: its content, not
 * where it is. A map without a str sha256 and an int size is written whole.
 */
static enum mapq_err
canonical_file(const msgpack_object *o, msgpack_packer *pk,
               struct mapq_buf *out)
{
    const msgpack_object *sha = mapq_value_map_get(o, "sha256");
    const msgpack_object *size = mapq_value_map_get(o, "size");

    if (sha == NULL || sha->type != MSGPACK_OBJECT_STR || size == NULL ||
        (size->type != MSGPACK_OBJECT_POSITIVE_INTEGER &&
         size->type != MSGPACK_OBJECT_NEGATIVE_INTEGER))
        return canonical_map(o, NULL, pk, out);
    if (msgpack_pack_array(pk, 2) != 0 || msgpack_pack_object(pk, *sha) != 0 ||
        msgpack_pack_object(pk, *size) != 0)
        return MAPQ_ETOOBIG;
    return MAPQ_OK;
}

/* Writes o canonically; t (NULL: any) says where files are. */
static enum mapq_err
canonical_into(const msgpack_object *o, const struct mapq_type *t,
               msgpack_packer *pk, struct mapq_buf *out)
{
    const struct mapq_type *et;
    uint32_t i;
    enum mapq_err rc = MAPQ_OK;

    /* The packer reports a capped buffer only through its return value, so
     * every pack call is checked, headers of empty containers included. */
    switch (o->type) {
    case MSGPACK_OBJECT_FLOAT32:
    case MSGPACK_OBJECT_FLOAT64:
        if (msgpack_pack_double(pk, o->via.f64) != 0)
            return MAPQ_ETOOBIG;
        return MAPQ_OK;
    case MSGPACK_OBJECT_ARRAY:
        et = t != NULL && t->kind == MAPQ_T_LIST ? t->elem : NULL;
        if (msgpack_pack_array(pk, o->via.array.size) != 0)
            return MAPQ_ETOOBIG;
        for (i = 0; i < o->via.array.size && rc == MAPQ_OK; i++)
            rc = canonical_into(&o->via.array.ptr[i], et, pk, out);
        return rc;
    case MSGPACK_OBJECT_MAP:
        /* A dir's sha256 and size are its manifest's, which names every
         * file's content, mode and path. */
        if (t != NULL && (t->kind == MAPQ_T_FILE || t->kind == MAPQ_T_DIR))
            return canonical_file(o, pk, out);
        return canonical_map(o, t, pk, out);
    default:
        if (msgpack_pack_object(pk, *o) != 0)
            return MAPQ_ETOOBIG;
        return MAPQ_OK;
    }
}

enum mapq_err
mapq_value_canonical(const msgpack_object *o, struct mapq_buf *out)
{
    msgpack_packer pk;

    mapq_value_packer_init(&pk, out);
    return canonical_into(o, NULL, &pk, out);
}

enum mapq_err
mapq_value_canonical_typed(const msgpack_object *o, const struct mapq_type *t,
                           struct mapq_buf *out)
{
    msgpack_packer pk;

    mapq_value_packer_init(&pk, out);
    return canonical_into(o, t, &pk, out);
}

void
mapq_value_hash(const void *data, size_t len, unsigned char key[MAPQ_KEY_LEN])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;

    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    memcpy(key, md, MAPQ_KEY_LEN);
}

void
mapq_value_key_hex(const unsigned char key[MAPQ_KEY_LEN],
                   char hex[2 * MAPQ_KEY_LEN + 1])
{
    mapq_hex_encode(key, MAPQ_KEY_LEN, hex);
}

const msgpack_object *
mapq_value_map_get(const msgpack_object *o, const char *name)
{
    uint32_t i;

    if (o == NULL || o->type != MSGPACK_OBJECT_MAP)
        return NULL;
    for (i = 0; i < o->via.map.size; i++)
        if (mapq_value_str_eq(&o->via.map.ptr[i].key, name))
            return &o->via.map.ptr[i].val;
    return NULL;
}

int
mapq_value_str_eq(const msgpack_object *o, const char *s)
{
    size_t n = strlen(s);

    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == n &&
           memcmp(o->via.str.ptr, s, n) == 0;
}
