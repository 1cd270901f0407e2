/*
 * mapq_record.c - reading claim replies, subtask bodies, result and attempt
 * records and event entries.
 *
 * Owns the shapes of those records as their readers see them; writers are
 * the Lua functions and the agent's outbox (docs/PROTOCOL.md). Never
 * allocates beyond msgpack's unpacking, never logs.
 */
#include "mapq_record.h"

#include <inttypes.h>
#include <stdio.h>

#include "mapq_proto.h"
#include "mapq_value.h"

enum mapq_claim_entry
mapq_record_claim_next(const msgpack_object *reply, uint32_t *pos,
                       struct mapq_claimed *out)
{
    const msgpack_object *e;

    if (reply->type != MSGPACK_OBJECT_ARRAY || *pos >= reply->via.array.size ||
        reply->via.array.size - *pos < 3)
        return MAPQ_CLAIM_END;
    e = &reply->via.array.ptr[*pos];
    *pos += 3;
    out->ref = &e[0];
    out->body = &e[1];
    out->ckpt = &e[2];
    if (e[0].type == MSGPACK_OBJECT_STR && e[1].type == MSGPACK_OBJECT_BOOLEAN)
        return MAPQ_CLAIM_FOREIGN;
    if (e[0].type != MSGPACK_OBJECT_STR || e[1].type != MSGPACK_OBJECT_STR)
        return MAPQ_CLAIM_BAD;
    return MAPQ_CLAIM_SUBTASK;
}

enum mapq_err
mapq_record_body(const msgpack_object *o, struct mapq_body *out, char *err)
{
    const msgpack_object *in = mapq_value_map_get(o, "in");
    const msgpack_object *h = mapq_value_map_get(o, "h");

    if (in == NULL || in->type != MSGPACK_OBJECT_MAP || h == NULL ||
        h->type != MSGPACK_OBJECT_BIN)
        return mapq_err_set(err, MAPQ_EPROTO,
                            "subtask body lacks its inputs or key");
    out->inputs = in;
    out->key = h->via.bin.ptr;
    out->keylen = h->via.bin.size;
    return MAPQ_OK;
}

bool
mapq_record_phase_ok(int phase)
{
    return phase == MAPQ_PHASE_SUCCEEDED || phase == MAPQ_PHASE_CACHED ||
           phase == MAPQ_PHASE_RECOVERED;
}

bool
mapq_record_phase_final(int phase)
{
    return phase >= MAPQ_PHASE_SUCCEEDED && phase < MAPQ_PHASE_COUNT;
}

/* The int at key k of map m, or dflt when absent or not an int. */
static int64_t
get_int(const msgpack_object *m, const char *k, int64_t dflt)
{
    const msgpack_object *o = mapq_value_map_get(m, k);

    if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER &&
        o->via.u64 <= (uint64_t)INT64_MAX)
        return (int64_t)o->via.u64;
    if (o != NULL && o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        return o->via.i64;
    return dflt;
}

/* The str at key k of map m, or NULL. */
static const msgpack_object *
get_str(const msgpack_object *m, const char *k)
{
    const msgpack_object *o = mapq_value_map_get(m, k);

    return o != NULL && o->type == MSGPACK_OBJECT_STR ? o : NULL;
}

void
mapq_record_result(const msgpack_object *o, struct mapq_result *out)
{
    int64_t p = get_int(o, "p", -1);
    const msgpack_object *e = get_str(o, "e"), *l = get_str(o, "l");

    out->phase = p >= 0 && p < MAPQ_PHASE_COUNT ? (int)p : -1;
    out->value = mapq_value_map_get(o, "v");
    out->ok = mapq_record_phase_ok(out->phase) && out->value != NULL;
    if (!out->ok)
        out->value = NULL;
    out->error = e != NULL ? e->via.str.ptr : NULL;
    out->error_len = e != NULL ? e->via.str.size : 0;
    out->log = l != NULL ? l->via.str.ptr : NULL;
    out->log_len = l != NULL ? l->via.str.size : 0;
    out->attempt = get_int(o, "a", 0);
}

void
mapq_record_attempt(const msgpack_object *o, struct mapq_attempt *out)
{
    const msgpack_object *k = get_str(o, "k");

    out->number = get_int(o, "a", 0);
    out->started = get_int(o, "t", -1);
    out->duration = get_int(o, "d", -1);
    out->exit_status = get_int(o, "x", -1);
    out->signal = get_int(o, "sig", 0);
    out->phase = get_int(o, "p", -1);
    out->agent = get_str(o, "ag");
    out->error = get_str(o, "e");
    out->tail = get_str(o, "l");
    out->kind = k != NULL && k->via.str.size == 1 ? k->via.str.ptr[0] : 'T';
}

size_t
mapq_record_page_field(char *buf, uint32_t k, uint64_t index)
{
    int n = snprintf(buf, MAPQ_LOG_FIELD_LEN, "%" PRIu32 "/p%" PRIu64, k,
                     index / MAPQ_LOG_PAGE);

    return (size_t)n;
}

bool
mapq_record_is_page_field(const char *field, size_t len)
{
    size_t i = 0;

    while (i < len && field[i] >= '0' && field[i] <= '9')
        i++;
    return i > 0 && i + 2 < len && field[i] == '/' && field[i + 1] == 'p' &&
           field[i + 2] >= '0' && field[i + 2] <= '9';
}

bool
mapq_record_page_next(const char *data, size_t len, size_t *off,
                      uint64_t *index, const char **p, size_t *n)
{
    msgpack_unpacked u;
    const msgpack_object *i;
    char err[MAPQ_ERR_LEN];
    size_t start;
    bool found = false;

    msgpack_unpacked_init(&u);
    while (!found && *off < len) {
        start = *off;
        if (mapq_value_unpack_next(data, len, off, &u, err) != MAPQ_OK)
            break; /* *off stays at the record that cannot be read */
        i = u.data.type == MSGPACK_OBJECT_MAP ? mapq_value_map_get(&u.data, "i")
                                              : NULL;
        if (i == NULL || i->type != MSGPACK_OBJECT_POSITIVE_INTEGER)
            continue;
        *index = i->via.u64;
        *p = data + start;
        *n = *off - start;
        found = true;
    }
    msgpack_unpacked_destroy(&u);
    return found;
}

void
mapq_record_page_take(const char *data, size_t len, uint64_t index,
                      struct mapq_buf *out)
{
    size_t off = 0, n;
    uint64_t i;
    const char *p;

    while (mapq_record_page_next(data, len, &off, &i, &p, &n))
        if (i == index)
            mapq_buf_append(out, p, n);
}

bool
mapq_record_is_end(const char *data, size_t len)
{
    return len == MAPQ_EVENT_END_LEN &&
           memcmp(data, MAPQ_EVENT_END, MAPQ_EVENT_END_LEN) == 0;
}

enum mapq_err
mapq_record_events(const char *data, size_t len, uint64_t nnodes,
                   mapq_record_event_fn *fn, void *arg, uint32_t *bad)
{
    msgpack_unpacked u;
    const msgpack_object *a;
    struct mapq_event ev;
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc = MAPQ_EPROTO;
    uint32_t j, n;

    *bad = 0;
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(data, len, &u, err) != MAPQ_OK ||
        u.data.type != MSGPACK_OBJECT_ARRAY || u.data.via.array.size % 3 != 0)
        goto out;
    a = u.data.via.array.ptr;
    n = u.data.via.array.size;
    for (j = 0; j < n; j += 3) {
        const msgpack_object *e = &a[j];

        if (e[0].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            e[1].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            e[2].type != MSGPACK_OBJECT_POSITIVE_INTEGER ||
            e[0].via.u64 >= nnodes || e[2].via.u64 >= MAPQ_PHASE_COUNT ||
            !mapq_record_phase_final((int)e[2].via.u64)) {
            (*bad)++;
            continue;
        }
        ev.node = e[0].via.u64;
        ev.index = e[1].via.u64;
        ev.phase = (int)e[2].via.u64;
        fn(&ev, arg);
    }
    rc = *bad == 0 ? MAPQ_OK : MAPQ_EPROTO;
out:
    msgpack_unpacked_destroy(&u);
    return rc;
}

void
mapq_record_last_line(const char *s, size_t len, const char **p, size_t *n)
{
    const char *e = s + len, *b;

    while (e > s && (e[-1] == '\n' || e[-1] == ' ' || e[-1] == '\r'))
        e--;
    b = e;
    while (b > s && b[-1] != '\n')
        b--;
    *p = b;
    *n = (size_t)(e - b);
}
