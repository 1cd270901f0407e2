/*
 * fuzz_json.c - a task's output (JSON text) converted to msgpack under a
 * declared type, and the result written back as JSON; the same text read
 * as an inputs file, member by member.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "mapq_buf.h"
#include "mapq_json.h"
#include "mapq_type.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct mapq_type *types[4];

/* Members of an inputs file: each converted toward one of the types, in
 * turn, into one capped buffer; every third one skipped. */
struct members {
    struct mapq_buf buf;
    size_t n;
};

static struct mapq_buf *
member(void *arg, const struct mapq_json_member *m,
       const struct mapq_type **type)
{
    struct members *ms = arg;

    (void)m;
    ms->n++;
    if (ms->n % 3 == 0)
        return NULL;
    *type = types[ms->n % 4];
    return &ms->buf;
}

static void
member_done(void *arg, const struct mapq_json_member *m, enum mapq_err rc,
            const char *err, const struct mapq_json_pos *where)
{
    (void)arg;
    (void)m;
    /* A failure says why and where; a success says nothing. */
    if ((rc == MAPQ_OK) != (err[0] == '\0') || where->line < 1 ||
        where->col < 1)
        abort();
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct mapq_json_member_ops ops = {.member = member,
                                                    .done = member_done};
    struct mapq_buf mp = MAPQ_BUF_INIT, back = MAPQ_BUF_INIT;
    struct members ms = {MAPQ_BUF_INIT, 0};
    struct mapq_json_pos pos;
    char err[MAPQ_ERR_LEN];
    size_t i;

    if (types[1] == NULL) {
        types[1] = mapq_type_parse("list[float]", err);
        types[2] = mapq_type_parse("dict[bytes?]", err);
        types[3] = mapq_type_parse("list[list[int]]", err);
    }
    mapq_buf_init(&ms.buf, 1 << 20);
    mapq_json_read_members((const char *)data, size, &ops, &ms, &pos, err);
    mapq_buf_release(&ms.buf);
    for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
        mapq_buf_init(&mp, 1 << 20);
        if (mapq_json_to_msgpack((const char *)data, size, types[i], &mp,
                                 err) == MAPQ_OK)
            mapq_json_from_bytes(mp.data, mp.len, &back, 0, err);
        mapq_buf_release(&mp);
        mapq_buf_release(&back);
    }
    return 0;
}
