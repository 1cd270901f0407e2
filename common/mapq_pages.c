/*
 * mapq_pages.c - paged lists: references and pages checked, never read
 * from or written to Redis here.
 */
#include "mapq_pages.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "mapq_value.h"

void
mapq_pages_ref_pack(msgpack_packer *pk, const struct mapq_pages_ref *r)
{
    msgpack_sbuffer sb;
    msgpack_packer in;

    msgpack_sbuffer_init(&sb);
    msgpack_packer_init(&in, &sb, msgpack_sbuffer_write);
    msgpack_pack_array(&in, 4);
    mapq_value_pack_str(&in, r->exec);
    mapq_value_pack_str(&in, r->list);
    msgpack_pack_uint64(&in, r->n);
    msgpack_pack_uint32(&in, r->page_len);
    msgpack_pack_ext(pk, sb.size, MAPQ_EXT_PAGES);
    msgpack_pack_ext_body(pk, sb.data, sb.size);
    msgpack_sbuffer_destroy(&sb);
}

bool
mapq_pages_is_ref(const msgpack_object *o)
{
    return o->type == MSGPACK_OBJECT_EXT && o->via.ext.type == MAPQ_EXT_PAGES;
}

/* Copies str o into out (len bytes with the NUL): false if it does not
 * fit or is empty. */
static bool
copy_str(const msgpack_object *o, char *out, size_t len)
{
    if (o->type != MSGPACK_OBJECT_STR || o->via.str.size == 0 ||
        o->via.str.size >= len ||
        memchr(o->via.str.ptr, '\0', o->via.str.size) != NULL)
        return false;
    memcpy(out, o->via.str.ptr, o->via.str.size);
    out[o->via.str.size] = '\0';
    return true;
}

bool
mapq_pages_ref_read(const char *data, size_t len, struct mapq_pages_ref *r)
{
    msgpack_unpacked u, in;
    const msgpack_object *a;
    char err[MAPQ_ERR_LEN];
    bool ok = false;

    /* Cheap refusal first: most values are no ext at all (ext 8, 16 and
     * 32 are 0xc7-0xc9, fixext 0xd4-0xd8). */
    if (len < 3 ||
        !(((unsigned char)data[0] >= 0xc7 && (unsigned char)data[0] <= 0xc9) ||
          ((unsigned char)data[0] >= 0xd4 && (unsigned char)data[0] <= 0xd8)))
        return false;
    msgpack_unpacked_init(&u);
    msgpack_unpacked_init(&in);
    if (mapq_value_unpack(data, len, &u, err) != MAPQ_OK ||
        !mapq_pages_is_ref(&u.data))
        goto out;
    if (mapq_value_unpack(u.data.via.ext.ptr, u.data.via.ext.size, &in, err) !=
            MAPQ_OK ||
        in.data.type != MSGPACK_OBJECT_ARRAY || in.data.via.array.size != 4)
        goto out;
    a = in.data.via.array.ptr;
    ok = copy_str(&a[0], r->exec, sizeof(r->exec)) &&
         copy_str(&a[1], r->list, sizeof(r->list)) &&
         a[2].type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
         a[3].type == MSGPACK_OBJECT_POSITIVE_INTEGER && a[3].via.u64 > 0 &&
         a[3].via.u64 <= UINT32_MAX;
    if (ok) {
        r->n = a[2].via.u64;
        r->page_len = (uint32_t)a[3].via.u64;
    }
out:
    msgpack_unpacked_destroy(&in);
    msgpack_unpacked_destroy(&u);
    return ok;
}

uint64_t
mapq_pages_count(const struct mapq_pages_ref *r)
{
    return (r->n + r->page_len - 1) / r->page_len;
}

void
mapq_pages_field(const struct mapq_pages_ref *r, uint64_t p, char *out,
                 size_t len)
{
    snprintf(out, len, "%s/%" PRIu64, r->list, p);
}

enum mapq_err
mapq_pages_append(const struct mapq_pages_ref *r, uint64_t p, const char *data,
                  size_t len, struct mapq_buf *out, char *err)
{
    uint64_t want;
    uint32_t n;
    size_t hlen;
    enum mapq_err rc;

    if (p >= mapq_pages_count(r))
        return mapq_err_set(err, MAPQ_EPROTO, "no page %" PRIu64 " in %s", p,
                            r->list);
    want = p + 1 < mapq_pages_count(r) ? r->page_len : r->n - p * r->page_len;
    if (data == NULL || !mapq_value_array_header(data, len, &n, &hlen) ||
        n != want)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "page %" PRIu64 " of %s is missing or is not a "
                            "list of %" PRIu64 " elements",
                            p, r->list, want);
    rc = mapq_value_check(data, len, err);
    if (rc != MAPQ_OK)
        return rc;
    if (mapq_buf_append(out, data + hlen, len - hlen) != MAPQ_OK)
        return mapq_err_set(err, MAPQ_ETOOBIG, "list %s is over the cap",
                            r->list);
    return MAPQ_OK;
}
