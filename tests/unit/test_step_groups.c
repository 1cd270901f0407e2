/*
 * test_step_groups.c - mapq1_step's groups (flag g) against a real
 * redis-server, with the arguments made by the agent's own encoder
 * (agent_outbox_encode): first-attempt successes of a node recorded as
 * done records them, the fallback to entries when a lease was lost or a
 * result is already there, other entries beside the groups, and the
 * per-subtask hashes made hash tables when they are created.
 *
 * fixture_redis.c starts the group's redis-server and gives each test a
 * namespace of its own.
 */
#include "mapq_test.h"

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"
#include "fixture_redis.h"
#include "mapq_err.h"
#include "mapq_record.h"
#include "mapq_redis.h"
#include "mapq_value.h"

/* One outbox entry (DONE_FIELDS arguments), as agent_outbox_add makes it. */
static void
add_entry(struct mapq_argv *s, const char *ref, const char *kind,
          const char *phase, const char *field, const char *record,
          const char *log)
{
    mapq_argv_add(s, ref);
    mapq_argv_add(s, kind);
    mapq_argv_add(s, phase);
    mapq_argv_add(s, field);
    mapq_argv_add(s, record);
    mapq_argv_add(s, "");
    mapq_argv_add(s, log);
    mapq_argv_add(s, "");
}

/*
 * Sends the entries of sending with mapq1_step's flag g (claiming ncmd
 * more; with pages, small attempt records in log pages) and returns the
 * number of groups the encoder made; the reply stays in f->u.
 * step_groups() sends them without pages.
 */
static int
step_groups_as(struct fx *f, const struct mapq_argv *sending, const char *ncmd,
               bool pages)
{
    struct mapq_argv cmd;
    int groups;

    mapq_argv_init(&cmd);
    mapq_argv_add(&cmd, "FCALL");
    mapq_argv_add(&cmd, "mapq1_step");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, f->ns);
    mapq_argv_add(&cmd, "agent-1");
    mapq_argv_add(&cmd, "60000");
    mapq_argv_add(&cmd, ncmd);
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, "0");
    mapq_argv_add(&cmd, "g");
    mapq_argv_add(&cmd, "1");
    mapq_argv_add(&cmd, "q");
    agent_outbox_encode(sending, pages, &cmd);
    groups = atoi(cmd.argv[12]);
    if (f->reply != NULL)
        freeReplyObject(f->reply);
    f->reply = redisCommandArgv(f->c, cmd.argc, cmd.argv, cmd.lens);
    mapq_argv_release(&cmd);
    (void)fx_step_reply(f);
    return groups;
}

static int
step_groups(struct fx *f, const struct mapq_argv *sending, const char *ncmd)
{
    return step_groups_as(f, sending, ncmd, false);
}

/* Finishes refs[0..n) as first-attempt successes (field "key<i>", record
 * "rec<i>", log "log<i>") with flag g; returns the number of groups. */
static int
finish_all(struct fx *f, char refs[][64], int n)
{
    struct mapq_argv s;
    char field[16], record[16], log[16];
    int i, groups;

    mapq_argv_init(&s);
    for (i = 0; i < n; i++) {
        snprintf(field, sizeof(field), "key%d", i);
        snprintf(record, sizeof(record), "rec%d", i);
        snprintf(log, sizeof(log), "log%d", i);
        add_entry(&s, refs[i], "T", "3", field, record, log);
    }
    groups = step_groups(f, &s, "0");
    mapq_argv_release(&s);
    return groups;
}

/* How many refs the last step refused (an empty Lua table packs as a map). */
static uint32_t
refused_count(struct fx *f)
{
    const msgpack_object *r = &f->u.data.via.array.ptr[1];

    return r->type == MSGPACK_OBJECT_ARRAY ? r->via.array.size : 0;
}

/* Claims n subtasks of EXEC's node 0 and fills refs[i] with the i-th. */
static void
claim(struct fx *f, int n, char refs[][64])
{
    char count[8];
    int i;

    snprintf(count, sizeof(count), "%d", n);
    assert_int_equal(fx_step(f, count, "0", "", NULL), n);
    for (i = 0; i < n; i++)
        fx_stepped(f, (uint32_t)i, refs[i], 64);
}

/* The (index, phase) pairs of every event entry of EXEC, as index * 10 +
 * phase in out (at most max); returns how many. */
static int
events(struct fx *f, int *out, int max)
{
    redisReply *r;
    size_t e;
    int n = 0;

    r = redisCommand(f->c, "LRANGE %s 0 -1", fx_key(f, "ev:" EXEC ":0"));
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    for (e = 0; e < r->elements; e++) {
        msgpack_unpacked u;
        char err[MAPQ_ERR_LEN];
        uint32_t j;

        msgpack_unpacked_init(&u);
        assert_int_equal(
            mapq_value_unpack(r->element[e]->str, r->element[e]->len, &u, err),
            MAPQ_OK);
        assert_int_equal(u.data.type, MSGPACK_OBJECT_ARRAY);
        for (j = 0; j + 2 < u.data.via.array.size && n < max; j += 3)
            out[n++] = (int)(u.data.via.array.ptr[j + 1].via.u64 * 10 +
                             u.data.via.array.ptr[j + 2].via.u64);
        msgpack_unpacked_destroy(&u);
    }
    freeReplyObject(r);
    return n;
}

static const char *
hget(struct fx *f, const char *key, const char *field)
{
    fx_run(f, "HGET", key, field, NULL);
    return f->reply->type == REDIS_REPLY_STRING ? f->reply->str : "(nil)";
}

/* ---- tests ------------------------------------------------------------- */

static void
test_step_groups_record_results_logs_and_events(void **state)
{
    struct fx *f = *state;
    char refs[4][64];
    int ev[8], n, i;

    fx_push(f, 4, "nc");
    claim(f, 4, refs);
    assert_string_equal(hget(f, fx_key(f, "x:" EXEC), "h:0"), "4");
    assert_int_equal(finish_all(f, refs, 4), 1);
    assert_int_equal(refused_count(f), 0);
    /* The group's leases leave the node's held count at once. */
    assert_string_equal(hget(f, fx_key(f, "x:" EXEC), "h:0"), "0");
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 4);
    assert_string_equal(hget(f, fx_key(f, "r:" EXEC ":0"), "key2"), "rec2");
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "log:" EXEC), NULL), 4);
    assert_string_equal(hget(f, fx_key(f, "log:" EXEC), "0/3"), "log3");
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "b:" EXEC), NULL), 0);
    assert_int_equal(fx_leased(f), 0);
    n = events(f, ev, 8);
    assert_int_equal(n, 4);
    for (i = 0; i < 4; i++)
        assert_int_equal(ev[i], i * 10 + 3);
}

static void
test_step_groups_fall_back_when_a_lease_was_lost(void **state)
{
    struct fx *f = *state;
    char refs[3][64];
    const msgpack_object *r;
    int ev[8];

    fx_push(f, 3, "nc");
    claim(f, 3, refs);
    /* Reaped meanwhile: its result must be refused, the others kept. */
    fx_run(f, "HDEL", fx_key(f, "lease:agent-1"), refs[1], NULL);
    assert_int_equal(finish_all(f, refs, 3), 1);
    assert_int_equal(refused_count(f), 1);
    r = &f->u.data.via.array.ptr[1].via.array.ptr[0];
    assert_int_equal(r->via.str.size, strlen(refs[1]));
    assert_memory_equal(r->via.str.ptr, refs[1], strlen(refs[1]));
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 2);
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "r:" EXEC ":0"), "key1", NULL), 0);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "b:" EXEC), NULL), 1);
    assert_int_equal(events(f, ev, 8), 2);
    assert_int_equal(ev[0], 3);
    assert_int_equal(ev[1], 23);
}

static void
test_step_groups_keep_the_first_result(void **state)
{
    struct fx *f = *state;
    char refs[2][64];
    int ev[8];

    fx_push(f, 2, "nc");
    claim(f, 2, refs);
    fx_run(f, "HSET", fx_key(f, "r:" EXEC ":0"), "key1", "first", NULL);
    assert_int_equal(finish_all(f, refs, 2), 1);
    assert_int_equal(refused_count(f), 0);
    assert_string_equal(hget(f, fx_key(f, "r:" EXEC ":0"), "key1"), "first");
    assert_string_equal(hget(f, fx_key(f, "r:" EXEC ":0"), "key0"), "rec0");
    assert_int_equal(events(f, ev, 8), 2);
    assert_int_equal(fx_leased(f), 0);
}

static void
test_step_groups_leave_other_entries_as_they_are(void **state)
{
    struct fx *f = *state;
    char refs[5][64];
    struct mapq_argv s;
    int ev[8], n;

    fx_push(f, 5, "nc");
    claim(f, 5, refs);
    mapq_argv_init(&s);
    add_entry(&s, refs[0], "T", "3", "key0", "rec0", "log0");
    /* A failure with retries left, a final failure, and two subtasks of
     * equal inputs (one field): groups hold distinct fields only, so the
     * first recorded wins as it would entry by entry. */
    add_entry(&s, refs[1], "U", "2", "key1", "", "log1");
    add_entry(&s, refs[2], "T", "6", "key2", "fail2", "log2");
    add_entry(&s, refs[3], "T", "3", "same", "rec3", "log3");
    add_entry(&s, refs[4], "T", "3", "same", "rec4", "log4");
    assert_int_equal(step_groups(f, &s, "0"), 2);
    mapq_argv_release(&s);
    assert_int_equal(refused_count(f), 0);
    assert_string_equal(hget(f, fx_key(f, "r:" EXEC ":0"), "same"), "rec3");
    assert_string_equal(hget(f, fx_key(f, "r:" EXEC ":0"), "key2"), "fail2");
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "r:" EXEC ":0"), "key1", NULL), 0);
    /* The retry is queued as the next attempt, its body kept. */
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:nc:" EXEC), NULL), 1);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "b:" EXEC), NULL), 1);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "log:" EXEC), NULL), 5);
    n = events(f, ev, 8);
    assert_int_equal(n, 4);
    assert_int_equal(fx_leased(f), 0);
}

static void
test_step_groups_say_an_execution_ended(void **state)
{
    struct fx *f = *state;
    char refs[2][64];
    const msgpack_object *ended;
    int ev[4];

    fx_push(f, 2, "nc");
    claim(f, 2, refs);
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "failed", NULL);
    assert_int_equal(finish_all(f, refs, 2), 1);
    ended = &f->u.data.via.array.ptr[3];
    assert_int_equal(ended->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(ended->via.array.size, 1);
    assert_int_equal(events(f, ev, 4), 0);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 2);
}

/* The element index that ref names. */
static uint64_t
index_of(const char *ref)
{
    const char *p = strchr(strchr(ref, '/') + 1, '/') + 1;

    return strtoull(p, NULL, 10);
}

/* An attempt record as the agent packs it (a, i, ag, k, p), into b. */
static void
pack_record(struct mapq_buf *b, uint64_t index)
{
    msgpack_packer pk;

    mapq_value_packer_init(&pk, b);
    msgpack_pack_map(&pk, 5);
    mapq_value_pack_str(&pk, "a");
    msgpack_pack_int(&pk, 1);
    mapq_value_pack_str(&pk, "i");
    msgpack_pack_uint64(&pk, index);
    mapq_value_pack_str(&pk, "ag");
    mapq_value_pack_str(&pk, "agent-1");
    mapq_value_pack_str(&pk, "k");
    mapq_value_pack_str(&pk, "T");
    mapq_value_pack_str(&pk, "p");
    msgpack_pack_int(&pk, 3);
}

/* Finishes refs[from..to) as first-attempt successes (field "key<i>",
 * record "rec<i>") with their attempt records in log pages; returns the
 * number of groups. */
static int
finish_paged(struct fx *f, char refs[][64], int from, int to)
{
    struct mapq_argv s;
    struct mapq_buf log;
    char field[16], record[16];
    int i, groups;

    mapq_argv_init(&s);
    mapq_buf_init(&log, 0);
    for (i = from; i < to; i++) {
        snprintf(field, sizeof(field), "key%d", i);
        snprintf(record, sizeof(record), "rec%d", i);
        mapq_buf_reset(&log);
        pack_record(&log, index_of(refs[i]));
        mapq_argv_add(&s, refs[i]);
        mapq_argv_add(&s, "T");
        mapq_argv_add(&s, "3");
        mapq_argv_add(&s, field);
        mapq_argv_add(&s, record);
        mapq_argv_add(&s, "");
        mapq_argv_addlen(&s, log.data, log.len); /* bytes: it holds NULs */
        mapq_argv_add(&s, "");
    }
    groups = step_groups_as(f, &s, "0", true);
    mapq_buf_release(&log);
    mapq_argv_release(&s);
    return groups;
}

/* The element indices of the records in page field of EXEC's log, in
 * order, into out (at most max); returns how many, -1 when no page. */
static int
page_indices(struct fx *f, const char *field, uint64_t *out, int max)
{
    size_t off = 0, n;
    uint64_t index;
    const char *p;
    int got = 0;

    fx_run(f, "HGET", fx_key(f, "log:" EXEC), field, NULL);
    if (f->reply->type != REDIS_REPLY_STRING)
        return -1;
    while (got < max && mapq_record_page_next(f->reply->str, f->reply->len,
                                              &off, &index, &p, &n))
        out[got++] = index;
    return got;
}

/* The int at key k of the attempt record in field of EXEC's log; -1 when
 * the field or the key is missing. */
static int64_t
logged_int(struct fx *f, const char *field, const char *k)
{
    msgpack_unpacked u;
    const msgpack_object *o;
    char err[MAPQ_ERR_LEN];
    int64_t v = -1;

    fx_run(f, "HGET", fx_key(f, "log:" EXEC), field, NULL);
    if (f->reply->type != REDIS_REPLY_STRING)
        return -1;
    msgpack_unpacked_init(&u);
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, &u, err),
                     MAPQ_OK);
    o = mapq_value_map_get(&u.data, k);
    if (o != NULL && o->type == MSGPACK_OBJECT_POSITIVE_INTEGER)
        v = (int64_t)o->via.u64;
    msgpack_unpacked_destroy(&u);
    return v;
}

static void
test_step_groups_log_pages_fill_across_calls(void **state)
{
    struct fx *f = *state;
    char refs[70][64], field[32];
    uint64_t got[80];
    int i, n, first;

    fx_push(f, FX_PUSH_MAX, "nc");
    fx_push_more(f, FX_PUSH_MAX, 70);
    claim(f, 70, refs);
    assert_int_equal(finish_paged(f, refs, 0, 40), 1);
    assert_int_equal(finish_paged(f, refs, 40, 70), 1);
    assert_int_equal(refused_count(f), 0);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL),
                     70);
    /* A page per MAPQ_LOG_PAGE elements, none per subtask; the page of
     * element 40, filled by both calls, holds its elements in order. */
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "log:" EXEC), NULL),
                     (70 + MAPQ_LOG_PAGE - 1) / MAPQ_LOG_PAGE);
    snprintf(field, sizeof(field), "0/p%d", 40 / MAPQ_LOG_PAGE);
    n = page_indices(f, field, got, 80);
    first = 40 / MAPQ_LOG_PAGE * MAPQ_LOG_PAGE;
    assert_int_equal(n,
                     first + MAPQ_LOG_PAGE <= 70 ? MAPQ_LOG_PAGE : 70 - first);
    for (i = 0; i < n; i++)
        assert_int_equal(got[i], index_of(refs[first + i]));
    snprintf(field, sizeof(field), "0/p%d", 69 / MAPQ_LOG_PAGE);
    n = page_indices(f, field, got, 80);
    assert_int_equal(n, 70 - 69 / MAPQ_LOG_PAGE * MAPQ_LOG_PAGE);
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "log:" EXEC), "0/5", NULL), 0);
    assert_int_equal(fx_leased(f), 0);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "b:" EXEC), NULL), 0);
}

static void
test_step_groups_pages_fall_back_per_subtask(void **state)
{
    struct fx *f = *state;
    char refs[3][64], field[32];

    fx_push(f, 3, "nc");
    claim(f, 3, refs);
    fx_run(f, "HDEL", fx_key(f, "lease:agent-1"), refs[1], NULL);
    assert_int_equal(finish_paged(f, refs, 0, 3), 1);
    assert_int_equal(refused_count(f), 1);
    /* Finished entry by entry: each kept record under its own field (its
     * element index still in it), none for the refused one, no page. */
    snprintf(field, sizeof(field), "0/%llu",
             (unsigned long long)index_of(refs[0]));
    assert_int_equal(logged_int(f, field, "i"), (int64_t)index_of(refs[0]));
    assert_int_equal(logged_int(f, field, "a"), 1);
    snprintf(field, sizeof(field), "0/%llu",
             (unsigned long long)index_of(refs[1]));
    assert_int_equal(logged_int(f, field, "a"), -1);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "log:" EXEC), NULL), 2);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 2);
}

static void
test_step_groups_pages_of_an_aborted_execution(void **state)
{
    struct fx *f = *state;
    char refs[2][64], field[32];

    fx_push(f, 2, "nc");
    claim(f, 2, refs);
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "aborted", "1", NULL);
    assert_int_equal(finish_paged(f, refs, 0, 2), 1);
    /* Each record says ABORTED, as its result does, under its own field. */
    snprintf(field, sizeof(field), "0/%llu",
             (unsigned long long)index_of(refs[1]));
    assert_int_equal(logged_int(f, field, "p"), 8);
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "log:" EXEC), "0/p0", NULL), 0);
}

/* A step sent again after it wrote its pages and results but failed
 * before its leases ended (a write the Redis user may not make fails the
 * same way each time) finishes entry by entry: the attempts its pages
 * hold are not logged a second time, under their own fields. */
static void
test_step_groups_pages_sent_again(void **state)
{
    struct fx *f = *state;
    char refs[3][64], field[32];
    uint64_t got[8];
    int i;

    fx_push(f, 3, "nc");
    claim(f, 3, refs);
    assert_int_equal(finish_paged(f, refs, 0, 3), 1);
    /* What the failed call left: its leases. */
    for (i = 0; i < 3; i++)
        fx_run(f, "HSET", fx_key(f, "lease:agent-1"), refs[i], "99999999999999",
               NULL);
    assert_int_equal(finish_paged(f, refs, 0, 3), 1);
    assert_int_equal(refused_count(f), 0);
    assert_int_equal(fx_leased(f), 0);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 3);
    /* One page, each element in it once; nothing under an own field. */
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "log:" EXEC), NULL), 1);
    snprintf(field, sizeof(field), "0/p%d", 0);
    assert_int_equal(page_indices(f, field, got, 8), 3);
    for (i = 0; i < 3; i++)
        assert_int_equal(got[i], index_of(refs[i]));
}

/* mapq1_step with flag g and the group arguments given (NULL-ended);
 * asserts an error reply naming what, and that the leases and results are
 * as they were. */
static void
assert_refused_groups(struct fx *f, const char *what, ...)
{
    const char *argv[32] = {"FCALL",   "mapq1_step", "0", f->ns,
                            "agent-1", "60000",      "0", "0",
                            "0",       "g",          "1", "q"};
    size_t lens[32];
    int argc = 12, i;
    va_list ap;

    va_start(ap, what);
    while (argc < 32 && (argv[argc] = va_arg(ap, const char *)) != NULL)
        argc++;
    va_end(ap);
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    if (f->reply != NULL)
        freeReplyObject(f->reply);
    f->reply = redisCommandArgv(f->c, argc, argv, lens);
    assert_non_null(f->reply);
    assert_int_equal(f->reply->type, REDIS_REPLY_ERROR);
    assert_non_null(strstr(f->reply->str, what));
    assert_int_equal(fx_leased(f), 2);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "r:" EXEC ":0"), NULL),
                     0);
}

static void
test_step_groups_refuse_malformed_groups(void **state)
{
    struct fx *f = *state;
    char refs[2][64];

    fx_push(f, 2, "nc");
    claim(f, 2, refs);
    /* A count that is no count, a group of no entries, a group longer
     * than the call: one clear error, nothing written. */
    assert_refused_groups(f, "bad group count", "x", NULL);
    assert_refused_groups(f, "bad group count", "-1", NULL);
    assert_refused_groups(f, "bad group size", "1", EXEC, "0", "0", "0", "",
                          NULL);
    assert_refused_groups(f, "group past the arguments", "1", EXEC, "0", "2",
                          "0", "", refs[0], refs[1], "key0", "key1", "rec0",
                          NULL);
    /* Log pages: none, more than members, or past the call. */
    assert_refused_groups(f, "bad page count", "1", EXEC, "0", "1", "p", "",
                          refs[0], "key0", "rec0", "0/0", "0", NULL);
    assert_refused_groups(f, "bad page count", "1", EXEC, "0", "1", "p", "",
                          refs[0], "key0", "rec0", "0/0", "2", "0/p0", "0/p1",
                          "x", "y", NULL);
    assert_refused_groups(f, "group past the arguments", "1", EXEC, "0", "1",
                          "p", "", refs[0], "key0", "rec0", "0/0", "1", "0/p0",
                          NULL);
}

static void
test_step_groups_tables_from_the_start(void **state)
{
    struct fx *f = *state;
    char refs[2][64];

    /* A push of 64 or more makes P:b a table; a smaller one (a window's
     * refill) leaves it a listpack, cheap while it stays small. */
    fx_push_exec(f, "fedcba987654", 2, "np");
    fx_run(f, "OBJECT", "ENCODING", fx_key(f, "b:fedcba987654"), NULL);
    assert_string_equal(f->reply->str, "listpack");
    fx_push(f, FX_PUSH_MAX, "nc");
    fx_run(f, "OBJECT", "ENCODING", fx_key(f, "b:" EXEC), NULL);
    assert_string_equal(f->reply->str, "hashtable");
    /* An agent's leases are a table from the first claim, holding only
     * them. */
    claim(f, 2, refs);
    fx_run(f, "OBJECT", "ENCODING", fx_key(f, "lease:agent-1"), NULL);
    assert_string_equal(f->reply->str, "hashtable");
    assert_int_equal(fx_leased(f), 2);
    finish_all(f, refs, 2);
    fx_run(f, "OBJECT", "ENCODING", fx_key(f, "r:" EXEC ":0"), NULL);
    assert_string_equal(f->reply->str, "hashtable");
    fx_run(f, "OBJECT", "ENCODING", fx_key(f, "log:" EXEC), NULL);
    assert_string_equal(f->reply->str, "hashtable");
    /* The field that made them so is gone. */
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 2);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "log:" EXEC), NULL), 2);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_step_groups_record_results_logs_and_events),
        T(test_step_groups_fall_back_when_a_lease_was_lost),
        T(test_step_groups_keep_the_first_result),
        T(test_step_groups_leave_other_entries_as_they_are),
        T(test_step_groups_say_an_execution_ended),
        T(test_step_groups_refuse_malformed_groups),
        T(test_step_groups_tables_from_the_start),
        T(test_step_groups_log_pages_fill_across_calls),
        T(test_step_groups_pages_fall_back_per_subtask),
        T(test_step_groups_pages_of_an_aborted_execution),
        T(test_step_groups_pages_sent_again),
    };
#undef T

    return cmocka_run_group_tests_name("step_groups", tests, fx_group_setup,
                                       fx_group_teardown);
}
