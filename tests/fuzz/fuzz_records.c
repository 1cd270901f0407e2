/*
 * fuzz_records.c - the readers of the records mapq keeps in Redis, as the
 * scheduler and the agent call them (common/mapq_record.h): the bytes are
 * read as a claim reply (each subtask's ref parsed, its body unpacked and
 * read), a result record, a stream of attempt records (an attempt log), a
 * log page and an event entry. Every field handed back must lie inside the
 * unpacked object or the input (ASan checks the reads below).
 */
#include <msgpack.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_proto.h"
#include "mapq_record.h"
#include "mapq_value.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reads every byte of a str or bin, so that ASan sees a bad pointer. */
static volatile unsigned sink;

static void
touch(const char *p, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        sink += (unsigned char)p[i];
}

static void
touch_str(const msgpack_object *o)
{
    if (o != NULL && o->type == MSGPACK_OBJECT_STR)
        touch(o->via.str.ptr, o->via.str.size);
}

static void
read_body(const msgpack_object *b)
{
    msgpack_unpacked u;
    struct mapq_body body;
    char err[MAPQ_ERR_LEN];

    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(b->via.str.ptr, b->via.str.size, &u, err) ==
            MAPQ_OK &&
        mapq_record_body(&u.data, &body, err) == MAPQ_OK) {
        if (body.inputs->type != MSGPACK_OBJECT_MAP)
            abort();
        touch(body.key, body.keylen);
    }
    msgpack_unpacked_destroy(&u);
}

static void
read_claim(const msgpack_object *o)
{
    struct mapq_claimed c;
    struct mapq_ref ref;
    enum mapq_claim_entry kind;
    uint32_t pos = 0;

    while ((kind = mapq_record_claim_next(o, &pos, &c)) != MAPQ_CLAIM_END) {
        if (kind == MAPQ_CLAIM_FOREIGN)
            touch_str(c.ref);
        if (kind != MAPQ_CLAIM_SUBTASK)
            continue;
        if (c.ref->type != MSGPACK_OBJECT_STR ||
            c.body->type != MSGPACK_OBJECT_STR)
            abort();
        if (mapq_ref_parse(c.ref->via.str.ptr, c.ref->via.str.size, &ref) ==
            MAPQ_OK)
            mapq_ref_attempt(&ref);
        read_body(c.body);
        touch_str(c.ckpt);
    }
}

static void
read_result(const msgpack_object *o)
{
    struct mapq_result r;

    mapq_record_result(o, &r);
    if (r.ok != (r.value != NULL) || (r.ok && !mapq_record_phase_ok(r.phase)))
        abort();
    if (r.error != NULL)
        touch(r.error, r.error_len);
    if (r.log != NULL)
        touch(r.log, r.log_len);
}

static void
read_log(const char *data, size_t size)
{
    msgpack_unpacked u;
    struct mapq_attempt a;
    char err[MAPQ_ERR_LEN];
    size_t off = 0;

    msgpack_unpacked_init(&u);
    while (off < size &&
           mapq_value_unpack_next(data, size, &off, &u, err) == MAPQ_OK) {
        mapq_record_attempt(&u.data, &a);
        touch_str(a.agent);
        touch_str(a.error);
        touch_str(a.tail);
        mapq_phase_name((int)a.phase);
    }
    msgpack_unpacked_destroy(&u);
}

/* The bytes as a log page: each record handed back lies inside the input,
 * and a walk moves forward and ends. */
static void
read_page(const char *data, size_t size)
{
    struct mapq_buf one;
    size_t off = 0, last = 0, n;
    uint64_t index, first = 0;
    const char *p;
    bool any = false;

    while (mapq_record_page_next(data, size, &off, &index, &p, &n)) {
        if (p < data + last || n == 0 || p + n != data + off || off > size)
            abort();
        touch(p, n);
        if (!any)
            first = index;
        any = true;
        last = off;
    }
    if (off > size)
        abort();
    mapq_buf_init(&one, 0);
    if (any)
        mapq_record_page_take(data, size, first, &one);
    if (any != (one.len > 0))
        abort();
    mapq_buf_release(&one);
}

static void
event_cb(const struct mapq_event *ev, void *arg)
{
    uint64_t nnodes = *(const uint64_t *)arg;

    if (ev->node >= nnodes || !mapq_record_phase_final(ev->phase))
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *d = (const char *)data;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    uint64_t nnodes = size > 0 ? data[0] % 8 : 0;
    uint32_t bad;

    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(d, size, &u, err) == MAPQ_OK) {
        read_claim(&u.data);
        read_result(&u.data);
    }
    msgpack_unpacked_destroy(&u);
    read_log(d, size);
    read_page(d, size);
    mapq_record_events(d, size, nnodes, event_cb, &nnodes, &bad);
    return 0;
}
