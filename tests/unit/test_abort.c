/*
 * test_abort.c - failing an execution in the mapq1 function library
 * (common/mapq_functions.lua) against a real redis-server: mapq1_abort by
 * its owner queues the end marker behind the events of what was recorded
 * before; what ends after it is recorded ABORTED (result record, attempt
 * log and event), while a success still fills the cache; mapq1_cancel
 * queues the marker too, and after the end no event is queued at all.
 * What ends of a deleted execution is not written; what ends of one that
 * ended with a retention expires with it, and nothing of it runs again.
 *
 * fixture_redis.c starts the group's redis-server and gives each test a
 * namespace of its own.
 */
#include "mapq_test.h"

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fixture_redis.h"
#include "mapq_err.h"
#include "mapq_record.h"
#include "mapq_value.h"

/* A result record of phase SUCCEEDED ({"p": 3}) and an attempt's log
 * entry ({"p": 3, "a": 1}), as agents write them. */
#define REC_OK "\x81\xa1p\x03"
#define LOG_OK          \
    "\x82\xa1p\x03\xa1" \
    "a\x01"

/* Finishes one attempt of ref as kind T, phase 3, with field, REC_OK,
 * target and LOG_OK. */
static void
done_ok(struct fx *f, const char *ref, const char *field, const char *target)
{
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, "T", "3",
           field, REC_OK, target, LOG_OK, "", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(f->reply->elements, 0);
}

/* Pops the next event entry of epoch 1 into u; true for the end marker. */
static bool
next_event(struct fx *f, msgpack_unpacked *u)
{
    char err[MAPQ_ERR_LEN];

    fx_run(f, "LPOP", fx_key(f, "ev:" EXEC ":1"), NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    if (mapq_record_is_end(f->reply->str, f->reply->len))
        return true;
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, u, err),
                     MAPQ_OK);
    assert_int_equal(u->data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(u->data.via.array.size, 3);
    return false;
}

/* The phase of the one triple in u. */
static uint64_t
event_phase(const msgpack_unpacked *u)
{
    return u->data.via.array.ptr[2].via.u64;
}

/* The field p, and whether field e names the abort, of the log entry of
 * subtask 0/index. */
static void
log_entry(struct fx *f, const char *index, uint64_t *p, bool *says)
{
    char err[MAPQ_ERR_LEN], field[16];
    msgpack_unpacked u;
    uint32_t j;

    snprintf(field, sizeof(field), "0/%s", index);
    fx_run(f, "HGET", fx_key(f, "log:" EXEC), field, NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    msgpack_unpacked_init(&u);
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, &u, err),
                     MAPQ_OK);
    assert_int_equal(u.data.type, MSGPACK_OBJECT_MAP);
    *p = 99;
    *says = false;
    for (j = 0; j < u.data.via.map.size; j++) {
        const msgpack_object_kv *kv = &u.data.via.map.ptr[j];

        if (kv->key.via.str.size != 1)
            continue;
        if (kv->key.via.str.ptr[0] == 'p')
            *p = kv->val.via.u64;
        if (kv->key.via.str.ptr[0] == 'e' &&
            kv->val.type == MSGPACK_OBJECT_STR) {
            char e[256];

            snprintf(e, sizeof(e), "%.*s", (int)kv->val.via.str.size,
                     kv->val.via.str.ptr);
            *says = strstr(e, "after its execution was aborted") != NULL;
        }
    }
    msgpack_unpacked_destroy(&u);
}

static void
test_abort_marks_what_ends_after_it(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128], r2[128];
    msgpack_unpacked u;
    uint64_t p;
    bool says;

    fx_push(f, 3, "nc");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", "owner", "s1",
           "epoch", "1", NULL);
    assert_int_equal(fx_claim(f, "60000", "3", "0", "0"), 3);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    fx_claimed(f, 2, false, r2, sizeof(r2));
    done_ok(f, r0, "k0", "");

    /* Only the owner aborts; a missing execution is said. */
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_abort", "0", f->ns, EXEC,
                                "s2", "why", NULL),
                     -2);
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_abort", "0", f->ns,
                                "000000000000", "s1", "why", NULL),
                     -1);
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_abort", "0", f->ns, EXEC,
                                "s1", "node 'n' failed", NULL),
                     1);
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "aborted", NULL);
    assert_string_equal(f->reply->str, "node 'n' failed");

    /* Subtask 1 ends after the abort: ABORTED everywhere; subtask 2 (a
     * cached node's) still fills the cache with its success. */
    done_ok(f, r1, "k1", "");
    done_ok(f, r2, "k2", "c:0:tk");
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "k0", NULL);
    assert_memory_equal(f->reply->str, REC_OK, 4);
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "k1", NULL);
    assert_int_equal(f->reply->len, 4);
    assert_memory_equal(f->reply->str, "\x81\xa1p\x08", 4);
    fx_run(f, "GET", fx_key(f, "c:tk:6b32"), NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    assert_memory_equal(f->reply->str, REC_OK, 4);
    log_entry(f, "0", &p, &says);
    assert_int_equal(p, 3);
    assert_false(says);
    log_entry(f, "1", &p, &says);
    assert_int_equal(p, 8);
    assert_true(says);

    /* The events: subtask 0's, the marker, then ABORTED ones. */
    msgpack_unpacked_init(&u);
    assert_false(next_event(f, &u));
    assert_int_equal(event_phase(&u), 3);
    assert_true(next_event(f, &u));
    assert_false(next_event(f, &u));
    assert_int_equal(event_phase(&u), 8);
    assert_false(next_event(f, &u));
    assert_int_equal(event_phase(&u), 8);
    msgpack_unpacked_destroy(&u);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "ev:" EXEC ":1"), NULL),
                     0);
}

static void
test_abort_cancel_queues_the_marker_then_no_event(void **state)
{
    struct fx *f = *state;
    char r0[128];
    msgpack_unpacked u;
    uint64_t p;
    bool says;

    fx_push(f, 1, "nc");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", "owner", "s1",
           "epoch", "1", NULL);
    assert_int_equal(fx_claim(f, "60000", "1", "0", "0"), 1);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_cancel", "0", f->ns, EXEC, NULL), 1);
    /* Once it has ended, abort only says so. */
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_abort", "0", f->ns, EXEC,
                                "s1", "why", NULL),
                     0);
    msgpack_unpacked_init(&u);
    assert_true(next_event(f, &u));
    msgpack_unpacked_destroy(&u);
    done_ok(f, r0, "k0", "");
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "k0", NULL);
    assert_memory_equal(f->reply->str, "\x81\xa1p\x08", 4);
    log_entry(f, "0", &p, &says);
    assert_int_equal(p, 8);
    assert_true(says);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "ev:" EXEC ":1"), NULL),
                     0);
}

static void
test_abort_nothing_made_again_for_a_deleted_execution(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128];

    fx_push(f, 2, "nc");
    assert_int_equal(fx_claim(f, "1", "2", "0", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    /* mapq rm, or its retention ran out, while both ran. */
    fx_run(f, "DEL", fx_key(f, "x:" EXEC), fx_key(f, "b:" EXEC), NULL);
    done_ok(f, r0, "k0", "");
    fx_pause_ms(5); /* r1's lease (1 ms) has expired */
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL), 1);
    assert_int_equal(
        fx_integer(f, "EXISTS", fx_key(f, "x:" EXEC), fx_key(f, "r:" EXEC ":0"),
                   fx_key(f, "log:" EXEC), fx_key(f, "ev:" EXEC ":0"),
                   fx_key(f, "q:q:nc:" EXEC), NULL),
        0);
    assert_int_equal(fx_leased(f), 0);
}

static void
test_abort_late_writes_expire_with_the_execution(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128], at[32];
    long long ttl;

    fx_push(f, 2, "nc");
    assert_int_equal(fx_claim(f, "1", "2", "0", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    /* Ended with a retention of a minute; its results had expired. */
    fx_run(f, "TIME", NULL);
    snprintf(at, sizeof(at), "%lld",
             atoll(f->reply->element[0]->str) * 1000 + 60000);
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "failed", "expires", at,
           NULL);
    done_ok(f, r0, "k0", "");
    ttl = fx_integer(f, "PTTL", fx_key(f, "r:" EXEC ":0"), NULL);
    assert_true(ttl > 0 && ttl <= 61000);
    ttl = fx_integer(f, "PTTL", fx_key(f, "log:" EXEC), NULL);
    assert_true(ttl > 0 && ttl <= 61000);
    /* A lease of it that expires is not run again. */
    fx_pause_ms(5);
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL), 1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "q:q:nc:" EXEC), NULL),
                     0);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_abort_marks_what_ends_after_it),
        T(test_abort_cancel_queues_the_marker_then_no_event),
        T(test_abort_nothing_made_again_for_a_deleted_execution),
        T(test_abort_late_writes_expire_with_the_execution),
    };
#undef T

    return cmocka_run_group_tests_name("abort", tests, fx_group_setup,
                                       fx_group_teardown);
}
