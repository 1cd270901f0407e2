/*
 * mapq_value.c - strict unpacking, canonical encoding and hashing of
 * msgpack values.
 *
 * Canonical encoding recurses once per nesting level; msgpack-c's unpacker
 * refuses objects nested deeper than its fixed stack, so depth is bounded.
 */
#include "mapq_value.h"

#include <openssl/evp.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"

enum mapq_err
mapq_value_unpack(const char *data, size_t len, msgpack_unpacked *u, char *err)
{
    size_t off = 0;
    msgpack_unpack_return ret;

    ret = msgpack_unpack_next(u, data, len, &off);
    if (ret == MSGPACK_UNPACK_CONTINUE)
        return mapq_err_set(err, MAPQ_EPROTO, "truncated msgpack value");
    /* msgpack-c reports a container nested deeper than its fixed stack the
     * same way as a failed allocation, which in practice means a header
     * declaring more elements than memory can hold. */
    if (ret == MSGPACK_UNPACK_NOMEM_ERROR)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "msgpack value nested too deeply or too large");
    if (ret != MSGPACK_UNPACK_SUCCESS)
        return mapq_err_set(err, MAPQ_EPROTO, "malformed msgpack value");
    if (off != len)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "%zu trailing bytes after msgpack value",
                            len - off);
    return MAPQ_OK;
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

struct keyed {
    struct mapq_buf key; /* canonical key bytes */
    const msgpack_object *val;
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

static enum mapq_err canonical_into(const msgpack_object *o, msgpack_packer *pk,
                                    struct mapq_buf *out);

static enum mapq_err
canonical_map(const msgpack_object *o, msgpack_packer *pk, struct mapq_buf *out)
{
    uint32_t n = o->via.map.size, i;
    struct keyed *ks = mapq_xcalloc(n ? n : 1, sizeof(*ks));
    enum mapq_err rc = MAPQ_OK;
    msgpack_packer kpk;

    for (i = 0; i < n && rc == MAPQ_OK; i++) {
        mapq_buf_init(&ks[i].key, 0);
        mapq_value_packer_init(&kpk, &ks[i].key);
        rc = canonical_into(&o->via.map.ptr[i].key, &kpk, &ks[i].key);
        ks[i].val = &o->via.map.ptr[i].val;
    }
    if (rc == MAPQ_OK) {
        qsort(ks, n, sizeof(*ks), keyed_cmp);
        if (msgpack_pack_map(pk, n) != 0)
            rc = MAPQ_ETOOBIG;
        for (i = 0; i < n && rc == MAPQ_OK; i++) {
            rc = mapq_buf_append(out, ks[i].key.data, ks[i].key.len);
            if (rc == MAPQ_OK)
                rc = canonical_into(ks[i].val, pk, out);
        }
    }
    for (i = 0; i < n; i++)
        mapq_buf_release(&ks[i].key);
    free(ks);
    return rc;
}

static enum mapq_err
canonical_into(const msgpack_object *o, msgpack_packer *pk,
               struct mapq_buf *out)
{
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
        if (msgpack_pack_array(pk, o->via.array.size) != 0)
            return MAPQ_ETOOBIG;
        for (i = 0; i < o->via.array.size && rc == MAPQ_OK; i++)
            rc = canonical_into(&o->via.array.ptr[i], pk, out);
        return rc;
    case MSGPACK_OBJECT_MAP:
        return canonical_map(o, pk, out);
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
    return canonical_into(o, &pk, out);
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
    static const char digits[] = "0123456789abcdef";
    int i;

    for (i = 0; i < MAPQ_KEY_LEN; i++) {
        hex[2 * i] = digits[key[i] >> 4];
        hex[2 * i + 1] = digits[key[i] & 15];
    }
    hex[2 * MAPQ_KEY_LEN] = '\0';
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
