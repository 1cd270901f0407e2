/*
 * test_functions.c - the mapq1 function library (common/mapq_functions.lua)
 * against a real redis-server: push, claim, done, renew and reap, the
 * fencing that refuses a stale attempt, and the scheduler's side: owner
 * leases, adoption, the final write and the reconcile scan.
 *
 * fixture_redis.c starts the group's redis-server and gives each test a
 * namespace of its own; test_fair.c tests how executions share a queue.
 */
#include "mapq_test.h"

#include <hiredis/hiredis.h>
#include <msgpack.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fixture_redis.h"
#include "mapq_alloc.h"
#include "mapq_err.h"
#include "mapq_fs.h"
#include "mapq_redis.h"
#include "mapq_value.h"

/* ---- tests ------------------------------------------------------------- */

static void
test_functions_push_then_claim_leases_in_order(void **state)
{
    struct fx *f = *state;
    char ref[128], body[16];
    uint32_t i;

    fx_push(f, 3, "np");
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "bell:q:np"), NULL), 1);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 3);
    for (i = 0; i < 3; i++) {
        char want[128];

        fx_claimed(f, i, false, ref, sizeof(ref));
        fx_claimed(f, i, true, body, sizeof(body));
        snprintf(want, sizeof(want), EXEC "/0/%u/0/0/0/q/np", i);
        assert_string_equal(ref, want);
        snprintf(want, sizeof(want), "b%u", i);
        assert_string_equal(body, want);
    }
    assert_int_equal(fx_leased(f), 3);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:np:" EXEC), NULL), 0);
    /* The agent's heartbeat is taken with the claim. */
    fx_run(f, "ZSCORE", fx_key(f, "agents"), "agent-1", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
}

/* A push that names each body's field ("<k>/<index>", what schedulers of
 * revision 19 send) queues and stores the same as one of indices, in the
 * same hash, a table from 64 bodies on. */
static void
test_functions_push_of_body_fields(void **state)
{
    struct fx *f = *state;
    const char *argv[8 + 2 * 70];
    char field[70][16], body[70][16], ref[128], got[16];
    size_t lens[8 + 2 * 70];
    int argc = 0, i;

    argv[argc++] = "FCALL";
    argv[argc++] = "mapq1_push";
    argv[argc++] = "0";
    argv[argc++] = f->ns;
    argv[argc++] = EXEC;
    argv[argc++] = "0";
    argv[argc++] = "q";
    argv[argc++] = "nc";
    for (i = 0; i < 70; i++) {
        snprintf(field[i], sizeof(field[i]), "0/%d", i);
        snprintf(body[i], sizeof(body[i]), "b%d", i);
        argv[argc++] = field[i];
        argv[argc++] = body[i];
    }
    for (i = 0; i < argc; i++)
        lens[i] = strlen(argv[i]);
    fx_exec_record(f, EXEC);
    if (f->reply != NULL)
        freeReplyObject(f->reply);
    f->reply = redisCommandArgv(f->c, argc, argv, lens);
    assert_int_equal(f->reply->type, REDIS_REPLY_INTEGER);
    assert_int_equal(f->reply->integer, 70);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "b:" EXEC), NULL), 70);
    fx_run(f, "OBJECT", "ENCODING", fx_key(f, "b:" EXEC), NULL);
    assert_string_equal(f->reply->str, "hashtable");
    fx_run(f, "HGET", fx_key(f, "b:" EXEC), "0/69", NULL);
    assert_string_equal(f->reply->str, "b69");
    /* An older scheduler's push of indices goes on the same list. */
    fx_push_more(f, 70, 71);
    assert_int_equal(fx_claim(f, "60000", "100", "0", "0"), 71);
    for (i = 0; i < 71; i += 35) {
        char want[128];

        fx_claimed(f, (uint32_t)i, false, ref, sizeof(ref));
        fx_claimed(f, (uint32_t)i, true, got, sizeof(got));
        snprintf(want, sizeof(want), EXEC "/0/%d/0/0/0/q/nc", i);
        assert_string_equal(ref, want);
        snprintf(want, sizeof(want), "b%d", i);
        assert_string_equal(got, want);
    }
}

static void
test_functions_claim_takes_only_what_is_asked(void **state)
{
    struct fx *f = *state;

    fx_push(f, 5, "np");
    assert_int_equal(fx_claim(f, "60000", "4", "0", "0"),
                     0); /* commands only */
    assert_int_equal(fx_claim(f, "60000", "0", "2", "0"), 2);
    /* A full pop that leaves work behind keeps the doorbell ringing. */
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "bell:q:np"), NULL), 1);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:np:" EXEC), NULL), 3);
}

static void
test_functions_interruptible_agent_takes_only_interruptible(void **state)
{
    struct fx *f = *state;
    char ref[128];

    fx_push(f, 2, "np");
    fx_run(f, "FCALL", "mapq1_push", "0", f->ns, EXEC, "1", "q", "ip", "0", "x",
           NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "1"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/1/0/0/0/0/q/ip");
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:np:" EXEC), NULL), 2);
}

static void
test_functions_done_records_result_and_one_event(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128], err[MAPQ_ERR_LEN];
    msgpack_unpacked ev;
    const msgpack_object *a;

    fx_push(f, 2, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", r0, "T", "3", "k0",
           "rec0", "", "", "", r1, "T", "6", "k1", "rec1", "", "", "", NULL);
    assert_int_equal(f->reply->elements, 0);
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "k0", NULL);
    assert_string_equal(f->reply->str, "rec0");
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "k1", NULL);
    assert_string_equal(f->reply->str, "rec1");
    assert_int_equal(fx_leased(f), 0);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "b:" EXEC), NULL), 0);
    /* One event entry for the call: [k, index, phase] triples. */
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "ev:" EXEC ":0"), NULL),
                     1);
    fx_run(f, "LPOP", fx_key(f, "ev:" EXEC ":0"), NULL);
    msgpack_unpacked_init(&ev);
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, &ev, err),
                     MAPQ_OK);
    assert_int_equal(ev.data.type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(ev.data.via.array.size, 6);
    a = ev.data.via.array.ptr;
    assert_int_equal(a[0].via.u64, 0);
    assert_int_equal(a[1].via.u64, 0);
    assert_int_equal(a[2].via.u64, 3);
    assert_int_equal(a[3].via.u64, 0);
    assert_int_equal(a[4].via.u64, 1);
    assert_int_equal(a[5].via.u64, 6);
    msgpack_unpacked_destroy(&ev);
}

static void
test_functions_stale_done_is_refused(void **state)
{
    struct fx *f = *state;
    char ref[128];

    fx_push(f, 1, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_int_equal(fx_done1(f, ref, "T", "k", "first", ""), 0);
    /* The same attempt again, and one never leased: both refused. */
    assert_int_equal(fx_done1(f, ref, "T", "k2", "second", ""), 1);
    assert_string_equal(f->reply->element[0]->str, ref);
    assert_int_equal(
        fx_done1(f, EXEC "/0/9/0/0/0/q/np", "T", "k3", "never", ""), 1);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 1);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "ev:" EXEC ":0"), NULL),
                     1);
}

static void
test_functions_first_write_wins(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128], r2[128];

    fx_push(f, 3, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 3);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    fx_claimed(f, 2, false, r2, sizeof(r2));
    /* Equal fields (equal inputs of a cached task) within one batch... */
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", r0, "T", "3",
           "same", "one", "", "", "", r1, "T", "3", "same", "two", "", "", "",
           NULL);
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "same", NULL);
    assert_string_equal(f->reply->str, "one");
    /* ...and across calls. */
    assert_int_equal(fx_done1(f, r2, "T", "same", "three", ""), 0);
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "same", NULL);
    assert_string_equal(f->reply->str, "one");
}

static void
test_functions_retries_count_in_the_ref(void **state)
{
    struct fx *f = *state;
    char ref[128];

    fx_push(f, 1, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_int_equal(fx_done1(f, ref, "U", "", "", "q/np"), 0);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/1/0/0/q/np");
    assert_int_equal(fx_done1(f, ref, "S", "", "", "q/np"), 0);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/1/1/0/q/np");
    /* An interruption counts as a system failure too, and may move the
     * subtask to another class. */
    assert_int_equal(fx_done1(f, ref, "I", "", "", "q/nc"), 0);
    assert_int_equal(fx_claim(f, "60000", "1", "0", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/1/2/1/q/nc");
    /* The body stays until a terminal result. */
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "b:" EXEC), NULL), 1);
}

static void
test_functions_reap_requeues_expired_as_system_failure(void **state)
{
    struct fx *f = *state;
    char ref[128], again[128];
    int i;

    fx_push(f, 1, "np");
    /* A lease of 0 ms has expired by the time reap runs. */
    assert_int_equal(fx_claim(f, "0", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    /* Bounded: the server clock may not have ticked a millisecond yet. */
    for (i = 0; i < 1000; i++) {
        if (fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL) == 1)
            break;
        fx_pause_ms(1);
    }
    assert_true(i < 1000);
    assert_int_equal(fx_leased(f), 0);
    /* The lost attempt is in the subtask's log. */
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "log:" EXEC), "0/0", NULL), 1);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, again, sizeof(again));
    assert_string_equal(again, EXEC "/0/0/0/1/0/q/np");
    /* The lost attempt can no longer record anything. */
    assert_int_equal(fx_done1(f, ref, "T", "k", "late", ""), 1);
    assert_int_equal(fx_done1(f, again, "T", "k", "fresh", ""), 0);
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "k", NULL);
    assert_string_equal(f->reply->str, "fresh");
}

/* Reaps until one attempt was taken back (the server clock may not have
 * ticked a millisecond past a lease of 0 ms yet). */
static void
reap_one(struct fx *f)
{
    int i;

    for (i = 0; i < 1000; i++) {
        if (fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL) == 1)
            return;
        fx_pause_ms(1);
    }
    fail_msg("no lease expired");
}

static void
test_functions_reap_counts_interruptions_and_demotes(void **state)
{
    struct fx *f = *state;
    char ref[128];

    /* A task with interruptible_failures 2 (its spec's intrf). */
    fx_run(f, "EVAL",
           "return redis.call('HSET', KEYS[1], 't:0', "
           "cmsgpack.pack({sysr = 5, intrf = 2}))",
           "1", fx_key(f, "x:" EXEC), NULL);
    fx_push(f, 1, "ic");
    assert_int_equal(fx_claim(f, "0", "1", "0", "1"), 1);
    reap_one(f);
    /* Lost once with an interruptible host: s and i both count it. */
    assert_int_equal(fx_claim(f, "0", "1", "0", "1"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/0/1/1/q/ic");
    reap_one(f);
    /* The second reaches intrf: the next attempt waits for a
     * non-interruptible agent. */
    assert_int_equal(fx_claim(f, "60000", "1", "0", "1"), 0);
    assert_int_equal(fx_claim(f, "60000", "1", "0", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/0/2/2/q/nc");
    /* A non-interruptible list's loss is no interruption. */
    fx_lease_lapse(f);
    reap_one(f);
    assert_int_equal(fx_claim(f, "60000", "1", "0", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/0/3/2/q/nc");
}

static void
test_functions_reap_leaves_live_leases(void **state)
{
    struct fx *f = *state;

    fx_push(f, 2, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "2", "0"), 2);
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL), 0);
    assert_int_equal(fx_leased(f), 2);
}

static void
test_functions_renew_reports_lost_and_stopped(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128];

    fx_push(f, 2, "np");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "2", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    assert_int_equal(fx_done1(f, r1, "T", "k", "v", ""), 0);
    fx_run(f, "FCALL", "mapq1_renew", "0", f->ns, "agent-1", "60000", r0, r1,
           NULL);
    assert_int_equal(f->reply->elements, 2);
    assert_string_equal(f->reply->element[0]->str, r1); /* lost */
    assert_string_equal(f->reply->element[1]->str, "|");
    /* A cancelled execution: its running attempts are to be stopped. */
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "cancelled", NULL);
    fx_run(f, "FCALL", "mapq1_renew", "0", f->ns, "agent-1", "60000", r0, NULL);
    assert_int_equal(f->reply->elements, 2);
    assert_string_equal(f->reply->element[0]->str, "|");
    assert_string_equal(f->reply->element[1]->str, r0);
}

/* Renews as agent-1 with lease_ms lease, listing ref (NULL: none); returns
 * how many refs the reply says were lost. */
static size_t
renew1(struct fx *f, const char *lease, const char *ref)
{
    size_t i;

    if (ref != NULL)
        fx_run(f, "FCALL", "mapq1_renew", "0", f->ns, "agent-1", lease, ref,
               NULL);
    else
        fx_run(f, "FCALL", "mapq1_renew", "0", f->ns, "agent-1", lease, NULL);
    for (i = 0; i < f->reply->elements; i++)
        if (strcmp(f->reply->element[i]->str, "|") == 0)
            break;
    return i;
}

static void
test_functions_renew_takes_back_unlisted_past_deadline(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128], again[128];
    int i;

    fx_push(f, 2, "np");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", NULL);
    /* Leased for 0 ms: at once past their deadline. */
    assert_int_equal(fx_claim(f, "0", "0", "2", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    /* The agent lists r0 only (it never got r1, or an agent of the same
     * name died holding it): r1 is taken back and queued again, r0 kept.
     * Bounded: the server clock may not have ticked a millisecond yet. */
    for (i = 0; i < 1000; i++) {
        assert_int_equal(renew1(f, "60000", r0), 0);
        if (fx_leased(f) == 1)
            break;
        fx_pause_ms(1);
    }
    assert_true(i < 1000);
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "lease:agent-1"), r0, NULL), 1);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, again, sizeof(again));
    assert_string_equal(again, EXEC "/0/1/0/1/0/q/np");
    /* A lease not yet past its deadline is kept though unlisted (the reply
     * that hands it over may still be on its way): only r0 is listed. */
    assert_int_equal(renew1(f, "60000", r0), 0);
    assert_int_equal(fx_leased(f), 2);
    /* An agent that holds nothing leaves P:leases. */
    assert_int_equal(fx_done1(f, r0, "T", "k0", "v", ""), 0);
    assert_int_equal(fx_done1(f, again, "T", "k1", "v", ""), 0);
    assert_int_equal(renew1(f, "60000", NULL), 0);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "leases"), NULL), 0);
}

static void
test_functions_reap_takes_whole_agents(void **state)
{
    struct fx *f = *state;
    int i;

    fx_push(f, 3, "np");
    /* agent-1's deadline passes with two leases; agent-2's is live. */
    assert_int_equal(fx_claim(f, "60000", "0", "2", "0"), 2);
    fx_run(f, "FCALL", "mapq1_claim", "0", f->ns, "agent-2", "60000", "0", "1",
           "0", "q", NULL);
    assert_int_equal(fx_leased(f), 3);
    fx_lease_lapse(f);
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL), 2);
    assert_int_equal(fx_leased(f), 1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "lease:agent-1"), NULL),
                     0);
    fx_run(f, "ZRANGE", fx_key(f, "leases"), "0", "-1", NULL);
    assert_int_equal(f->reply->elements, 1);
    assert_string_equal(f->reply->element[0]->str, "agent-2");
    /* Both queued again as system failures. */
    for (i = 0; i < 2; i++)
        assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 0);
    assert_int_equal(fx_leased(f), 3);
}

static void
test_functions_leases_of_older_revisions_are_honoured(void **state)
{
    struct fx *f = *state;
    static const char r0[] = EXEC "/0/0/0/0/0/q/np";
    static const char r1[] = EXEC "/0/1/0/0/0/q/np";
    static const char r2[] = EXEC "/0/2/0/0/0/q/np";
    char ref[128];

    /* What revision 11 and older left: three attempts claimed (off their
     * list, held), leased in P:inflight, r1 past its deadline; and a
     * first attempt queued as a whole ref. */
    fx_push(f, 4, "np");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", NULL);
    fx_run(f, "LPOP", fx_key(f, "q:q:np:" EXEC), "4", NULL);
    fx_run(f, "RPUSH", fx_key(f, "q:q:np:" EXEC), EXEC "/0/3/0/0/0/q/np", NULL);
    fx_run(f, "HINCRBY", fx_key(f, "x:" EXEC), "h:0", "3", NULL);
    fx_run(f, "ZADD", fx_key(f, "inflight"), "99999999999999", r0, "1", r1,
           "99999999999999", r2, NULL);
    /* A result of a legacy lease is taken, once. */
    assert_int_equal(fx_done1(f, r0, "T", "k0", "v", ""), 0);
    assert_int_equal(fx_done1(f, r0, "T", "k0", "v", ""), 1);
    /* A renewal moves its agent's legacy lease into its hash. */
    fx_run(f, "FCALL", "mapq1_renew", "0", f->ns, "agent-1", "60000", r2, NULL);
    assert_int_equal(f->reply->elements, 1); /* "|": nothing lost */
    assert_int_equal(
        fx_integer(f, "HEXISTS", fx_key(f, "lease:agent-1"), r2, NULL), 1);
    /* The reaper takes back the one past its deadline. */
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL), 1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "inflight"), NULL), 0);
    /* The whole ref and the retry are claimed as they are. */
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 2);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/3/0/0/0/q/np");
    fx_claimed(f, 1, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/1/0/1/0/q/np");
    assert_int_equal(fx_leased(f), 3);
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "h:0", NULL);
    assert_string_equal(f->reply->str, "3");
}

static void
test_functions_claim_drops_refs_without_body(void **state)
{
    struct fx *f = *state;
    char ref[128];
    const msgpack_object *a;

    fx_push(f, 1, "np");
    /* Foreign junk, a forged ref of a real subtask, a ref naming no
     * execution, and one of an ended execution whose bodies are gone. */
    fx_run(f, "HSET", fx_key(f, "x:aaaaaaaaaaaa"), "state", "cancelled", NULL);
    fx_run(f, "RPUSH", fx_key(f, "q:q:np:" EXEC), "not a ref",
           EXEC "/0/0/forged", "fedcba987654/0/0/0/0/0/q/np",
           "aaaaaaaaaaaa/0/0/0/0/0/q/np", NULL);
    /* The subtask comes first, then the foreign ones as [message, false]
     * for the agent to log; the one of the ended execution is dropped
     * without a word. */
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 4);
    a = f->u.data.via.array.ptr;
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/0/0/0/q/np");
    fx_claimed(f, 1, false, ref, sizeof(ref));
    assert_string_equal(ref, "not a ref");
    assert_int_equal(a[4].type, MSGPACK_OBJECT_BOOLEAN);
    fx_claimed(f, 2, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/forged");
    assert_int_equal(a[7].type, MSGPACK_OBJECT_BOOLEAN);
    fx_claimed(f, 3, false, ref, sizeof(ref));
    assert_string_equal(ref, "fedcba987654/0/0/0/0/0/q/np");
    assert_int_equal(a[10].type, MSGPACK_OBJECT_BOOLEAN);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:np:" EXEC), NULL), 0);
    /* Only the real subtask is leased; its body is untouched. */
    assert_int_equal(fx_leased(f), 1);
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "b:" EXEC), NULL), 1);
}

static void
test_functions_done_logs_attempts_and_keyless_records(void **state)
{
    struct fx *f = *state;
    char r0[128], r1[128];

    fx_push(f, 2, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    /* Attempt 1 of subtask 0 is retried, and logged; subtask 1's body was
     * unreadable, so its record has no key. */
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", r0, "U", "6", "",
           "", "q/np", "L1", "", r1, "T", "6", "", "corrupt", "", "L2", "",
           NULL);
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), "#1", NULL);
    assert_string_equal(f->reply->str, "corrupt");
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 1);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", r0, "T", "3", "k0",
           "ok", "", "L3", "", NULL);
    /* Logs append, attempt after attempt. */
    fx_run(f, "HGET", fx_key(f, "log:" EXEC), "0/0", NULL);
    assert_string_equal(f->reply->str, "L1L3");
    fx_run(f, "HGET", fx_key(f, "log:" EXEC), "0/1", NULL);
    assert_string_equal(f->reply->str, "L2");
}

/* Runs FCALL mapq1_own for one execution; returns its verdict. */
static long long
own1(struct fx *f, const char *owner, const char *lease)
{
    fx_run(f, "FCALL", "mapq1_own", "0", f->ns, owner, lease, EXEC, NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(f->reply->elements, 1);
    return f->reply->element[0]->integer;
}

static void
test_functions_own_takes_free_keeps_own_refuses_live_other(void **state)
{
    struct fx *f = *state;

    assert_int_equal(own1(f, "s1", "60000"), -2); /* no such execution */
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "failed", NULL);
    assert_int_equal(own1(f, "s1", "60000"), -1); /* ended */
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "submitted", NULL);
    assert_int_equal(own1(f, "s1", "60000"), 1);
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "state", NULL);
    assert_string_equal(f->reply->str, "running");
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "owner", NULL);
    assert_string_equal(f->reply->str, "s1");
    assert_int_equal(own1(f, "s1", "60000"), 1); /* a renewal */
    assert_int_equal(own1(f, "s2", "60000"), 0); /* s1's lease is live */
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "owner", NULL);
    assert_string_equal(f->reply->str, "s1");
    /* Once it ended, nobody owns it and it leaves P:owners. */
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "cancelled", NULL);
    assert_int_equal(own1(f, "s1", "60000"), -1);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "owners"), NULL), 0);
}

static void
test_functions_adopt_takes_only_expired_running(void **state)
{
    struct fx *f = *state;
    const char *other = "fedcba987654";

    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", "owner", "dead",
           NULL);
    fx_run(f, "HSET", fx_key(f, "x:fedcba987654"), "state", "running", "owner",
           "alive", NULL);
    fx_run(f, "HSET", fx_key(f, "x:aaaaaaaaaaaa"), "state", "failed", NULL);
    /* EXEC's owner stopped renewing long ago; other's lease is live. */
    fx_run(f, "ZADD", fx_key(f, "owners"), "1", EXEC, "1", "aaaaaaaaaaaa",
           "99999999999999", other, NULL);
    fx_run(f, "FCALL", "mapq1_adopt", "0", f->ns, "s2", "60000", "10", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_ARRAY);
    assert_int_equal(f->reply->elements, 1);
    assert_string_equal(f->reply->element[0]->str, EXEC);
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "owner", NULL);
    assert_string_equal(f->reply->str, "s2");
    /* The ended one is forgotten, the live one kept; and the adopted
     * lease is now live, so a second scheduler adopts nothing. */
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "owners"), NULL), 2);
    fx_run(f, "FCALL", "mapq1_adopt", "0", f->ns, "s3", "60000", "10", NULL);
    assert_int_equal(f->reply->elements, 0);
    /* The old owner's renewal now fails. */
    assert_int_equal(own1(f, "dead", "60000"), 0);
}

static void
test_functions_finish_records_once_and_cleans_up(void **state)
{
    struct fx *f = *state;

    fx_push(f, 2, "np");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", "owner", "s1",
           NULL);
    fx_run(f, "ZADD", fx_key(f, "owners"), "99999999999999", EXEC, NULL);
    fx_run(f, "RPUSH", fx_key(f, "ev:" EXEC ":0"), "e", NULL);
    /* Another owner cannot write the end. */
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_finish", "0", f->ns, EXEC,
                                "s2", "succeeded", "output", "v", NULL),
                     -2);
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "state", NULL);
    assert_string_equal(f->reply->str, "running");
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_finish", "0", f->ns, EXEC,
                                "s1", "succeeded", "output", "v", NULL),
                     1);
    fx_run(f, "HMGET", fx_key(f, "x:" EXEC), "state", "output", "finished",
           NULL);
    assert_string_equal(f->reply->element[0]->str, "succeeded");
    assert_string_equal(f->reply->element[1]->str, "v");
    assert_int_equal(f->reply->element[2]->type, REDIS_REPLY_STRING);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "b:" EXEC),
                                fx_key(f, "ev:" EXEC ":0"), NULL),
                     0);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "owners"), NULL), 0);
    /* Written once: a repeat (a lost reply) changes nothing. */
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_finish", "0", f->ns, EXEC,
                                "s1", "failed", "error", "late", NULL),
                     0);
    fx_run(f, "HGET", fx_key(f, "x:" EXEC), "state", NULL);
    assert_string_equal(f->reply->str, "succeeded");
}

static void
test_functions_finish_copies_output_of_a_node(void **state)
{
    struct fx *f = *state;

    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", "owner", "s1",
           NULL);
    /* The node's output is not written yet: nothing is. */
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_finish", "0", f->ns, EXEC,
                                "s1", "succeeded", "output_of", "o:1", NULL),
                     -3);
    fx_run(f, "HMGET", fx_key(f, "x:" EXEC), "state", "output", NULL);
    assert_string_equal(f->reply->element[0]->str, "running");
    assert_int_equal(f->reply->element[1]->type, REDIS_REPLY_NIL);
    /* Once it is, the output is a copy of it, bytes and all. */
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "o:1", "\x93\x01\x02\x03", NULL);
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_finish", "0", f->ns, EXEC,
                                "s1", "succeeded", "output_of", "o:1", NULL),
                     1);
    fx_run(f, "HMGET", fx_key(f, "x:" EXEC), "state", "output", "output_of",
           NULL);
    assert_string_equal(f->reply->element[0]->str, "succeeded");
    assert_int_equal(f->reply->element[1]->len, 4);
    assert_memory_equal(f->reply->element[1]->str, "\x93\x01\x02\x03", 4);
    assert_int_equal(f->reply->element[2]->type, REDIS_REPLY_NIL);
}

static void
test_functions_scan_tells_finished_inflight_and_unpushed(void **state)
{
    struct fx *f = *state;
    char ref[128];
    /* {"p": 3, "v": 1} and {"p": 6, "e": "x"}: records as agents write. */
    static const char ok[] = "\x82\xa1p\x03\xa1v\x01";
    static const char bad[] = "\x82\xa1p\x06\xa1\x65\xa1x";

    fx_push(f, 3, "np"); /* 0, 1, 2 pushed; 3 never */
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, "T", "3", "k0",
           ok, "", "", "", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, "T", "6", "k1",
           bad, "", "", "", NULL);
    fx_run(f, "FCALL", "mapq1_scan", "0", f->ns, EXEC, "0", "0", "k0", "1",
           "k1", "2", "k2", "3", "k3", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    assert_int_equal(f->reply->len, 4);
    assert_int_equal((unsigned char)f->reply->str[0], 3);   /* SUCCEEDED */
    assert_int_equal((unsigned char)f->reply->str[1], 6);   /* FAILED */
    assert_int_equal((unsigned char)f->reply->str[2], 254); /* in flight */
    assert_int_equal((unsigned char)f->reply->str[3], 255); /* never */
}

static void
test_functions_backoff_parks_a_retry_until_due(void **state)
{
    struct fx *f = *state;
    char ref[128];
    int i;

    fx_push(f, 1, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    /* A user retry with a 60 s backoff: parked, not queued. */
    assert_int_equal(fx_done1(f, ref, "U", "", "60000", "q/np"), 0);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "delayed"), NULL), 1);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 0);
    assert_int_equal(
        fx_integer(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL), 0);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "delayed"), NULL), 1);
    /* Once due, a claim moves it to its list and takes it. */
    fx_run(f, "ZADD", fx_key(f, "delayed"), "1", EXEC "/0/0/1/0/0/q/np", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/0/1/0/0/q/np");
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "delayed"), NULL), 0);
    /* A short delay is taken by a reap once due (bounded wait). */
    assert_int_equal(fx_done1(f, ref, "U", "", "1", "q/np"), 0);
    for (i = 0; i < 1000; i++) {
        fx_run(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL);
        if (fx_integer(f, "LLEN", fx_key(f, "q:q:np:" EXEC), NULL) == 1)
            break;
        fx_pause_ms(1);
    }
    assert_true(i < 1000);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "bell:q:np"), NULL), 1);
}

static void
test_functions_push_cached_hits_follows_and_writes(void **state)
{
    struct fx *f = *state;
    char ref[128], err[MAPQ_ERR_LEN];
    msgpack_unpacked ev;
    const msgpack_object *a;
    /* Keys are 16 bytes: "A...", "B..."; B is in the cache. */
    static const char ka[] = "AAAAAAAAAAAAAAAA", kb[] = "BBBBBBBBBBBBBBBB";
    static const char rec[] = "\x82\xa1p\x03\xa1v\x01"; /* {p: 3, v: 1} */

    fx_run(f, "SET", fx_key(f, "c:t:42424242424242424242424242424242"), rec,
           NULL);
    fx_exec_record(f, EXEC);
    fx_exec_record(f, "fedcba987654");
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, EXEC, "0", "q", "np",
           "t", "0", "0", ka, "b0", "1", ka, "b1", "2", kb, "b2", NULL);
    /* Queued, following, done at once. */
    assert_string_equal(f->reply->str, "qfd");
    /* B was answered from the cache at once, as CACHED. */
    fx_run(f, "HGET", fx_key(f, "r:" EXEC ":0"), kb, NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_STRING);
    assert_int_equal((unsigned char)f->reply->str[3], 4);
    fx_run(f, "LPOP", fx_key(f, "ev:" EXEC ":0"), NULL);
    msgpack_unpacked_init(&ev);
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, &ev, err),
                     MAPQ_OK);
    a = ev.data.via.array.ptr;
    assert_int_equal(ev.data.via.array.size, 3);
    assert_int_equal(a[1].via.u64, 2);
    assert_int_equal(a[2].via.u64, 4);
    msgpack_unpacked_destroy(&ev);
    /* A runs once: index 0 leads, index 1 follows. */
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:np:" EXEC), NULL), 1);
    fx_run(f, "HGET", fx_key(f, "f:" EXEC ":0"), ka, NULL);
    assert_string_equal(f->reply->str, "0,1");
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, "T", "3", ka,
           rec, "c:0:t", "", "", NULL);
    /* The success went to the cache; the follower got its event. */
    assert_int_equal(
        fx_integer(f, "EXISTS",
                   fx_key(f, "c:t:41414141414141414141414141414141"), NULL),
        1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "f:" EXEC ":0"), NULL),
                     0);
    fx_run(f, "LPOP", fx_key(f, "ev:" EXEC ":0"), NULL);
    msgpack_unpacked_init(&ev);
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, &ev, err),
                     MAPQ_OK);
    a = ev.data.via.array.ptr;
    assert_int_equal(ev.data.via.array.size, 6);
    assert_int_equal(a[1].via.u64, 0);
    assert_int_equal(a[2].via.u64, 3);
    assert_int_equal(a[4].via.u64, 1);
    assert_int_equal(a[5].via.u64, 4);
    msgpack_unpacked_destroy(&ev);
    /* Overwrite skips the lookup: B is queued this time. */
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, "fedcba987654", "0",
           "q", "np", "t", "1", "0", kb, "b0", NULL);
    assert_string_equal(f->reply->str, "q");
}

static void
test_functions_checkpoint_reaches_the_retry(void **state)
{
    struct fx *f = *state;
    char ref[128];
    const msgpack_object *c;

    fx_push(f, 1, "np");
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    /* A first attempt never has one. */
    assert_int_equal(f->u.data.via.array.ptr[2].type, MSGPACK_OBJECT_BOOLEAN);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, "U", "6", "",
           "", "q/np", "", "step 3", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    c = &f->u.data.via.array.ptr[2];
    assert_int_equal(c->type, MSGPACK_OBJECT_STR);
    assert_int_equal(c->via.str.size, 6);
    assert_memory_equal(c->via.str.ptr, "step 3", 6);
    /* The retry's success drops it. */
    fx_claimed(f, 0, false, ref, sizeof(ref));
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", ref, "T", "3", "k",
           "rec", "", "", "step 9", NULL);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "ck:" EXEC), NULL), 0);
}

/* FCALL mapq1_reserve for ref with key K; returns the verdict. */
static const char *
reserve1(struct fx *f, const char *ref, const char *k)
{
    fx_run(f, "FCALL", "mapq1_reserve", "0", f->ns, ref, k, "60000", "t", NULL);
    assert_int_equal(f->reply->type, REDIS_REPLY_ARRAY);
    return f->reply->element[0]->str;
}

static void
test_functions_reserve_serializes_one_key(void **state)
{
    struct fx *f = *state;
    static const char k[] = "KKKKKKKKKKKKKKKK";
    static const char rec[] = "\x82\xa1p\x03\xa1v\x01";
    char r0[128], r1[128];

    /* Two executions, one subtask each, the same key. */
    fx_exec_record(f, EXEC);
    fx_exec_record(f, "fedcba987654");
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, EXEC, "0", "q", "np",
           "t", "0", "0", k, "b", NULL);
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, "fedcba987654", "0",
           "q", "np", "t", "0", "0", k, "b", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    assert_string_equal(reserve1(f, r0, k), "run");
    assert_string_equal(reserve1(f, r0, k), "run"); /* its own: again */
    /* The other waits, parked off the leases. */
    assert_string_equal(reserve1(f, r1, k), "wait");
    assert_int_equal(fx_leased(f), 1);
    assert_int_equal(
        fx_integer(f, "LLEN", fx_key(f, "cw:4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"),
                   NULL),
        1);
    /* The holder succeeds: the entry is written, the reservation ends and
     * the parked ref is queued again, to find the entry. */
    fx_run(f, "FCALL", "mapq1_done", "0", f->ns, "agent-1", r0, "T", "3", k,
           rec, "cs:0:t", "", "", NULL);
    assert_int_equal(
        fx_integer(f, "EXISTS",
                   fx_key(f, "cr:4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"), NULL),
        0);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 1);
    fx_claimed(f, 0, false, r1, sizeof(r1));
    assert_string_equal(reserve1(f, r1, k), "cached");
    assert_int_equal((unsigned char)f->reply->element[1]->str[3], 4);
    /* A ref no longer leased is told so. */
    assert_string_equal(reserve1(f, EXEC "/0/0/0/0/0/q/np", k), "lost");
}

static void
test_functions_expired_reservation_wakes_the_parked(void **state)
{
    struct fx *f = *state;
    static const char k[] = "KKKKKKKKKKKKKKKK";
    char r0[128], r1[128];

    fx_exec_record(f, EXEC);
    fx_exec_record(f, "fedcba987654");
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, EXEC, "0", "q", "np",
           "t", "0", "0", k, "b", NULL);
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, "fedcba987654", "0",
           "q", "np", "t", "0", "0", k, "b", NULL);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 2);
    fx_claimed(f, 0, false, r0, sizeof(r0));
    fx_claimed(f, 1, false, r1, sizeof(r1));
    assert_string_equal(reserve1(f, r0, k), "run");
    assert_string_equal(reserve1(f, r1, k), "wait");
    /* The holder's agent dies: its reservation expires; a reap queues the
     * parked ref again, and it takes the reservation over. */
    fx_run(f, "DEL", fx_key(f, "cr:4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b"), NULL);
    fx_run(f, "FCALL", "mapq1_reap", "0", f->ns, "100", NULL);
    assert_int_equal(fx_integer(f, "SCARD", fx_key(f, "cwait"), NULL), 0);
    assert_int_equal(fx_claim(f, "60000", "0", "10", "0"), 1);
    fx_claimed(f, 0, false, r1, sizeof(r1));
    assert_string_equal(reserve1(f, r1, k), "run");
}

static void
test_functions_new_owner_new_epoch_for_events(void **state)
{
    struct fx *f = *state;
    char ref[128];

    fx_push(f, 1, "np");
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "running", NULL);
    assert_int_equal(own1(f, "s1", "60000"), 1);
    /* s1 stalls past its lease; s2 takes over with the next epoch. */
    fx_run(f, "ZADD", fx_key(f, "owners"), "1", EXEC, NULL);
    assert_int_equal(own1(f, "s2", "60000"), 2);
    assert_int_equal(own1(f, "s2", "60000"), 2); /* a renewal keeps it */
    assert_int_equal(own1(f, "s1", "60000"), 0);
    /* Events now go to epoch 2's list, which s1 never waits on. */
    assert_int_equal(fx_claim(f, "60000", "0", "1", "0"), 1);
    fx_claimed(f, 0, false, ref, sizeof(ref));
    assert_int_equal(fx_done1(f, ref, "T", "k", "rec", ""), 0);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "ev:" EXEC ":2"), NULL),
                     1);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "ev:" EXEC ":1"), NULL),
                     0);
    /* The end deletes every epoch's list. */
    fx_run(f, "RPUSH", fx_key(f, "ev:" EXEC ":1"), "stale", NULL);
    assert_int_equal(fx_integer(f, "FCALL", "mapq1_finish", "0", f->ns, EXEC,
                                "s2", "succeeded", "output", "v", NULL),
                     1);
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "ev:" EXEC ":1"),
                                fx_key(f, "ev:" EXEC ":2"), NULL),
                     0);
}

static void
test_functions_push_cached_answers_a_leaders_followers(void **state)
{
    struct fx *f = *state;
    char err[MAPQ_ERR_LEN];
    msgpack_unpacked ev;
    static const char ka[] = "AAAAAAAAAAAAAAAA";
    static const char rec[] = "\x82\xa1p\x03\xa1v\x01";

    /* A leader (0) with a follower (1), whose push is made again (after a
     * reconcile) once its key is in the cache: both are answered. */
    fx_run(f, "HSET", fx_key(f, "f:" EXEC ":0"), ka, "0,1", NULL);
    fx_run(f, "SET", fx_key(f, "c:t:41414141414141414141414141414141"), rec,
           NULL);
    fx_exec_record(f, EXEC);
    fx_exec_record(f, "fedcba987654");
    fx_run(f, "FCALL", "mapq1_push_cached", "0", f->ns, EXEC, "0", "q", "np",
           "t", "0", "0", ka, "b0", NULL);
    assert_string_equal(f->reply->str, "d");
    assert_int_equal(fx_integer(f, "EXISTS", fx_key(f, "f:" EXEC ":0"), NULL),
                     0);
    fx_run(f, "LPOP", fx_key(f, "ev:" EXEC ":0"), NULL);
    msgpack_unpacked_init(&ev);
    assert_int_equal(mapq_value_unpack(f->reply->str, f->reply->len, &ev, err),
                     MAPQ_OK);
    assert_int_equal(ev.data.via.array.size, 6);
    assert_int_equal(ev.data.via.array.ptr[1].via.u64, 0);
    assert_int_equal(ev.data.via.array.ptr[4].via.u64, 1);
    assert_int_equal(ev.data.via.array.ptr[5].via.u64, 4);
    msgpack_unpacked_destroy(&ev);
}

static void
test_functions_step_prefetch_leaves_half_for_others(void **state)
{
    struct fx *f = *state;
    char ref[128];

    fx_push(f, 8, "nc");
    fx_push_more(f, 8, 20);
    /* 2 now, and of the 18 left at most half more: 9. */
    assert_int_equal(fx_step(f, "2", "10", "", NULL), 11);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:nc:" EXEC), NULL), 9);
    assert_int_equal(fx_leased(f), 11);
    /* Work is left: the bell stays rung for the next agent. */
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "bell:q:nc"), NULL), 1);
    /* Prefetch alone takes half of what is left while 8 or more are. */
    assert_int_equal(fx_step(f, "0", "10", "", NULL), 4);
    assert_int_equal(fx_step(f, "0", "10", "", NULL), 0);
    assert_int_equal(fx_integer(f, "LLEN", fx_key(f, "q:q:nc:" EXEC), NULL), 5);
    /* Free slots take the rest, oldest first. */
    assert_int_equal(fx_step(f, "5", "10", "", NULL), 5);
    fx_stepped(f, 0, ref, sizeof(ref));
    assert_string_equal(ref, EXEC "/0/15/0/0/0/q/nc");
}

static void
test_functions_step_finishes_then_claims(void **state)
{
    struct fx *f = *state;
    char ref[128], again[128], held[128];
    const msgpack_object *refused;

    fx_push(f, 3, "nc");
    assert_int_equal(fx_step(f, "2", "0", "", NULL), 2);
    fx_stepped(f, 0, ref, sizeof(ref));
    fx_stepped(f, 1, again, sizeof(again));
    {
        const char *const entries[] = {ref, "T", "3",   "key0", "rec0", "",
                                       "",  "",  again, "R",    "0",    "",
                                       "",  "",  "",    "",     NULL};

        /* One finished, one handed back unstarted; then claims 2. */
        assert_int_equal(fx_step(f, "2", "0", "", entries), 2);
    }
    refused = &f->u.data.via.array.ptr[1];
    assert_true(refused->type == MSGPACK_OBJECT_MAP ||
                refused->via.array.size == 0);
    /* The hand back is the same ref, at the head of its list, and costs
     * no budget; the result was recorded. */
    fx_stepped(f, 1, held, sizeof(held));
    {
        char first[128];

        fx_stepped(f, 0, first, sizeof(first));
        assert_string_equal(first, again);
    }
    assert_int_equal(fx_integer(f, "HLEN", fx_key(f, "r:" EXEC ":0"), NULL), 1);
    assert_int_equal(fx_leased(f), 2);
    /* A repeat of the finished entry is refused and changes nothing. */
    {
        const char *const entries[] = {ref, "T", "3", "key0", "other",
                                       "",  "",  "",  NULL};

        assert_int_equal(fx_step(f, "0", "0", "", entries), 0);
    }
    refused = &f->u.data.via.array.ptr[1];
    assert_int_equal(refused->type, MSGPACK_OBJECT_ARRAY);
    assert_int_equal(refused->via.array.size, 1);
    /* Once the execution ended, a step that finishes one of its attempts
     * says so, for the agent to stop the rest at once. */
    fx_run(f, "HSET", fx_key(f, "x:" EXEC), "state", "failed", NULL);
    {
        const char *const entries[] = {held, "T", "6", "key1", "rec1",
                                       "",   "",  "",  NULL};
        const msgpack_object *ended;

        assert_int_equal(fx_step(f, "0", "0", "", entries), 0);
        ended = &f->u.data.via.array.ptr[3];
        assert_int_equal(ended->type, MSGPACK_OBJECT_ARRAY);
        assert_int_equal(ended->via.array.size, 1);
        assert_int_equal(ended->via.array.ptr[0].via.str.size, strlen(EXEC));
    }
}

static void
test_functions_step_promotes_when_asked(void **state)
{
    struct fx *f = *state;
    const msgpack_object *due;

    fx_push(f, 1, "nc");
    assert_int_equal(fx_step(f, "1", "0", "", NULL), 1);
    /* Two delayed retries: one due now, one in about a minute. */
    fx_run(f, "ZADD", fx_key(f, "delayed"), "1", EXEC "/0/0/1/0/0/q/nc", NULL);
    fx_run(f, "ZADD", fx_key(f, "delayed"), "99999999999999",
           EXEC "/0/5/1/0/0/q/nc", NULL);
    fx_run(f, "HSET", fx_key(f, "b:" EXEC), "0/5", "b5", NULL);
    /* Without 'd' the due one stays parked. */
    assert_int_equal(fx_step(f, "1", "0", "", NULL), 0);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "delayed"), NULL), 2);
    due = &f->u.data.via.array.ptr[2];
    assert_int_equal(due->type, MSGPACK_OBJECT_BOOLEAN);
    /* With 'd' it is moved and claimed; due says when the next is. */
    assert_int_equal(fx_step(f, "1", "0", "d", NULL), 1);
    assert_int_equal(fx_integer(f, "ZCARD", fx_key(f, "delayed"), NULL), 1);
    due = &f->u.data.via.array.ptr[2];
    assert_int_equal(due->type, MSGPACK_OBJECT_POSITIVE_INTEGER);
    assert_true(due->via.u64 > 1000000);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        T(test_functions_push_then_claim_leases_in_order),
        T(test_functions_push_of_body_fields),
        T(test_functions_step_prefetch_leaves_half_for_others),
        T(test_functions_step_finishes_then_claims),
        T(test_functions_step_promotes_when_asked),
        T(test_functions_claim_takes_only_what_is_asked),
        T(test_functions_interruptible_agent_takes_only_interruptible),
        T(test_functions_done_records_result_and_one_event),
        T(test_functions_stale_done_is_refused),
        T(test_functions_first_write_wins),
        T(test_functions_retries_count_in_the_ref),
        T(test_functions_reap_requeues_expired_as_system_failure),
        T(test_functions_reap_counts_interruptions_and_demotes),
        T(test_functions_reap_leaves_live_leases),
        T(test_functions_renew_reports_lost_and_stopped),
        T(test_functions_renew_takes_back_unlisted_past_deadline),
        T(test_functions_reap_takes_whole_agents),
        T(test_functions_leases_of_older_revisions_are_honoured),
        T(test_functions_claim_drops_refs_without_body),
        T(test_functions_done_logs_attempts_and_keyless_records),
        T(test_functions_own_takes_free_keeps_own_refuses_live_other),
        T(test_functions_adopt_takes_only_expired_running),
        T(test_functions_new_owner_new_epoch_for_events),
        T(test_functions_finish_records_once_and_cleans_up),
        T(test_functions_finish_copies_output_of_a_node),
        T(test_functions_scan_tells_finished_inflight_and_unpushed),
        T(test_functions_backoff_parks_a_retry_until_due),
        T(test_functions_push_cached_hits_follows_and_writes),
        T(test_functions_push_cached_answers_a_leaders_followers),
        T(test_functions_checkpoint_reaches_the_retry),
        T(test_functions_reserve_serializes_one_key),
        T(test_functions_expired_reservation_wakes_the_parked),
    };
#undef T

    return cmocka_run_group_tests_name("functions", tests, fx_group_setup,
                                       fx_group_teardown);
}
