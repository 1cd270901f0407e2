/*
 * test_agent.c - the agent's pure parts, without Redis: the claim decision
 * (how many subtasks of each kind to ask for, which doorbells to wait on,
 * when a kind runs dry, the pause while resources are short), the table
 * of a job's slot states, the outbox (batching, putting a refused batch
 * back in front), and the counting of declared resources with the CPUs
 * they are pinned to.
 */
#include "mapq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_int.h"

/* ---- claim decision ---------------------------------------------------- */

static struct agent_claim_plan
plan(int slots, int running, int waiting, int batch, bool dry_cmd,
     bool dry_plugin)
{
    struct agent_claim_view v = {slots, running, waiting,    0,     0,
                                 batch, dry_cmd, dry_plugin, false, false};
    struct agent_claim_plan p;

    agent_claim_plan(&v, &p);
    return p;
}

static void
test_agent_claim_idle_asks_for_everything(void **state)
{
    struct agent_claim_plan p = plan(4, 0, 0, 8, false, false);

    (void)state;
    assert_int_equal(p.ncmd, 4);
    assert_int_equal(p.nplugin, 8);
    /* Something can be claimed: no doorbell wait. */
    assert_false(p.wait_plugin);
    assert_false(p.wait_cmd);
}

static void
test_agent_claim_counts_running_and_waiting(void **state)
{
    struct agent_claim_plan p = plan(4, 1, 2, 8, false, false);

    (void)state;
    assert_int_equal(p.ncmd, 1);
    assert_int_equal(p.nplugin, 8);
    /* As many jobs waiting as a plugin batch: no plugin subtasks. */
    p = plan(4, 0, 8, 8, false, false);
    assert_int_equal(p.nplugin, 0);
    assert_int_equal(p.ncmd, 0);
    assert_true(p.wait_plugin);
    assert_false(p.wait_cmd);
}

static void
test_agent_claim_full_slots_plugins_only(void **state)
{
    struct agent_claim_plan p = plan(2, 2, 0, 4, false, false);

    (void)state;
    assert_int_equal(p.ncmd, 0);
    assert_int_equal(p.nplugin, 4);
    assert_false(p.wait_plugin);
    assert_false(p.wait_cmd);
    /* More jobs than slots (a plugin batch waits for its spec): never a
     * negative count. */
    p = plan(2, 2, 3, 4, false, false);
    assert_int_equal(p.ncmd, 0);
    assert_int_equal(p.nplugin, 4);
}

static void
test_agent_claim_dry_kinds_left_out(void **state)
{
    struct agent_claim_plan p = plan(4, 0, 0, 8, true, false);

    (void)state;
    /* Command lists dry: plugins are claimed, both doorbells waited on
     * (the command one while a slot is free). */
    assert_int_equal(p.ncmd, 0);
    assert_int_equal(p.nplugin, 8);
    assert_true(p.wait_plugin);
    assert_true(p.wait_cmd);
    p = plan(4, 0, 0, 8, false, true);
    assert_int_equal(p.ncmd, 4);
    assert_int_equal(p.nplugin, 0);
    assert_true(p.wait_plugin);
    assert_true(p.wait_cmd);
    /* Both dry and every slot busy: plugin doorbells only. */
    p = plan(4, 4, 0, 8, true, true);
    assert_int_equal(p.ncmd, 0);
    assert_int_equal(p.nplugin, 0);
    assert_true(p.wait_plugin);
    assert_false(p.wait_cmd);
}

static void
test_agent_claim_paused_takes_no_command(void **state)
{
    struct agent_claim_view v = {4, 1, 0, 0, 8, 16, false, false, true, false};
    struct agent_claim_plan p;

    (void)state;
    /* Resources short: free slots and a prefetch hold, yet no command is
     * asked for or waited on; plugins still are. */
    agent_claim_plan(&v, &p);
    assert_int_equal(p.ncmd, 0);
    assert_int_equal(p.prefetch, 0);
    assert_int_equal(p.nplugin, 16);
    assert_false(p.wait_cmd);
    v.cmd_paused = false;
    agent_claim_plan(&v, &p);
    assert_int_equal(p.ncmd, 3);
}

/* The plan of an agent holding up to hold command subtasks (prefetch). */
static struct agent_claim_plan
plan_hold(int slots, int running, int queued, int hold)
{
    struct agent_claim_view v = {slots, running, 0,     queued, hold,
                                 0,     false,   false, false,  false};
    struct agent_claim_plan p;

    agent_claim_plan(&v, &p);
    return p;
}

static void
test_agent_claim_prefetch_fills_the_hold(void **state)
{
    struct agent_claim_plan p;

    (void)state;
    /* Idle: a subtask per slot now, and the rest of the hold. */
    p = plan_hold(4, 0, 0, 16);
    assert_int_equal(p.ncmd, 4);
    assert_int_equal(p.prefetch, 16 - 4);
    assert_false(p.wait_cmd);
    /* A slot free and nothing queued for it: claimed at once, with
     * whatever the hold lacks. */
    p = plan_hold(4, 3, 0, 16);
    assert_int_equal(p.ncmd, 1);
    assert_int_equal(p.prefetch, 16 - 4);
    /* Every slot busy, a few used up from the prefetch: no call for so
     * little (each finished subtask would cost a call). */
    p = plan_hold(4, 4, 16 - 4 - 1, 16);
    assert_int_equal(p.ncmd, 0);
    assert_int_equal(p.prefetch, 0);
    /* A whole batch used up: topped up again. */
    p = plan_hold(4, 4, 16 - 4 - FLUSH_BATCH(16), 16);
    assert_int_equal(p.prefetch, FLUSH_BATCH(16));
    /* Finished attempts that go anyway take what the hold lacks along,
     * however little: one call instead of two. */
    {
        struct agent_claim_view v = {4, 4,     16 - 4 - 1, 0,     16,
                                     0, false, false,      false, true};

        agent_claim_plan(&v, &p);
        assert_int_equal(p.ncmd, 0);
        assert_int_equal(p.prefetch, 1);
        v.dry_cmd = true;
        agent_claim_plan(&v, &p);
        assert_int_equal(p.prefetch, 0);
    }
    /* Without prefetch (long commands), never more than the slots. */
    p = plan_hold(4, 2, 0, 0);
    assert_int_equal(p.ncmd, 2);
    assert_int_equal(p.prefetch, 0);
    /* Queued subtasks count as held: they fill the free slots. */
    p = plan_hold(4, 2, 2, 0);
    assert_int_equal(p.ncmd, 0);
}

static void
test_agent_claim_depth_from_batch_or_durations(void **state)
{
    (void)state;
    /* Unknown or slow: one per slot, no prefetch. */
    assert_int_equal(agent_claim_depth(0, -1), 1);
    assert_int_equal(agent_claim_depth(0, PREFETCH_SHORT_US), 1);
    /* Short: about BATCH_WINDOW_US of work, within the bounds. */
    assert_int_equal(agent_claim_depth(0, 4000), BATCH_WINDOW_US / 4000);
    assert_int_equal(agent_claim_depth(0, BATCH_WINDOW_US), BATCH_AUTO_MIN);
    assert_int_equal(agent_claim_depth(0, 50), BATCH_AUTO_MAX);
    assert_int_equal(agent_claim_depth(0, 0), BATCH_AUTO_MAX);
    /* The node's batch wins, whatever was seen. */
    assert_int_equal(agent_claim_depth(5, -1), 5);
    assert_int_equal(agent_claim_depth(1, 50), 1);
    assert_int_equal(agent_claim_depth(200, 60000), 200);
}

static void
test_agent_claim_defers_unless_a_short_list_waits(void **state)
{
    (void)state;
    /* Long lists: results wait for a batch, however few are queued. */
    assert_true(agent_claim_defers(16, 8, 0, false, 1));
    assert_true(agent_claim_defers(64, 4, 60, false, FLUSH_BATCH(64) - 1));
    /* A batch is ready: it goes. */
    assert_false(agent_claim_defers(64, 4, 60, false, FLUSH_BATCH(64)));
    /* A short list, each busy slot with its next subtask here (the end of
     * a map): they wait. */
    assert_true(agent_claim_defers(64, 4, 4, true, 1));
    /* A short list the prefetch no longer covers (a concurrency window):
     * whoever waits for these results hears now. */
    assert_false(agent_claim_defers(64, 4, 3, true, 1));
    assert_false(agent_claim_defers(64, 3, 0, true, 1));
    /* Nothing runs, or no prefetch: nothing to wait for. */
    assert_false(agent_claim_defers(64, 0, 10, false, 1));
    assert_false(agent_claim_defers(0, 4, 4, false, 1));
}

static void
test_agent_claim_short_reply_dries(void **state)
{
    (void)state;
    assert_true(agent_claim_dries(4, 4, 2, 7, 7));
    assert_true(agent_claim_dries(4, 4, 0, 0, 0));
    /* Got all it asked for: more may be there. */
    assert_false(agent_claim_dries(4, 4, 4, 7, 7));
    assert_false(agent_claim_dries(0, 0, 0, 7, 7));
    /* A bell rang while the claim was in flight: that work came later. */
    assert_false(agent_claim_dries(4, 4, 2, 8, 7));
    /* Prefetch cut short (Redis gives a part of a list it shares): work
     * is left; none at all, or free slots left unfilled: dry. */
    assert_false(agent_claim_dries(1, 33, 15, 7, 7));
    assert_false(agent_claim_dries(0, 32, 1, 7, 7));
    assert_true(agent_claim_dries(1, 33, 1, 7, 7));
    assert_true(agent_claim_dries(0, 32, 0, 7, 7));
    assert_true(agent_claim_dries(2, 34, 1, 7, 7));
}

/* ---- keys -------------------------------------------------------------- */

/* A spec entry's key, and a sealed body's name, at the largest numbers. */
static void
test_agent_job_key_written(void **state)
{
    struct mapq_ref r = {
        .exec = "0123456789ab", .k = UINT32_MAX, .index = UINT64_MAX};
    char key[AGENT_KEY_LEN];

    (void)state;
    assert_int_equal(agent_job_key(&r, false, key), 23);
    assert_string_equal(key, "0123456789ab/4294967295");
    assert_int_equal(agent_job_key(&r, true, key), 44);
    assert_string_equal(key, "0123456789ab/4294967295/18446744073709551615");
    r.k = 0;
    r.index = 10;
    agent_job_key(&r, true, key);
    assert_string_equal(key, "0123456789ab/0/10");
}

/* ---- slot states ------------------------------------------------------- */

static void
test_agent_slot_states_legal_moves(void **state)
{
    static const enum job_state waits[] = {JOB_SPEC, JOB_RESERVE};
    size_t i;

    (void)state;
    assert_true(agent_job_state_legal(JOB_NEW, JOB_SPEC));
    assert_true(agent_job_state_legal(JOB_NEW, JOB_DONE));
    for (i = 0; i < 2; i++) {
        assert_true(agent_job_state_legal(waits[i], JOB_RUN));
        assert_true(agent_job_state_legal(waits[i], waits[i] + 1));
        assert_true(agent_job_state_legal(waits[i], waits[i] + 2));
        assert_true(agent_job_state_legal(waits[i], JOB_DONE));
        /* Stopped or lost while waiting: it only ever leaves. */
        assert_false(agent_job_state_legal(waits[i] + 1, JOB_RUN));
        assert_false(agent_job_state_legal(waits[i] + 2, JOB_RUN));
        assert_true(agent_job_state_legal(waits[i] + 1, JOB_DONE));
        assert_true(agent_job_state_legal(waits[i] + 2, JOB_DONE));
    }
    assert_true(agent_job_state_legal(JOB_SPEC, JOB_RESERVE));
    assert_false(agent_job_state_legal(JOB_RESERVE, JOB_SPEC));
    assert_true(agent_job_state_legal(JOB_RUN, JOB_RUN_INTERRUPTED));
    assert_true(agent_job_state_legal(JOB_RUN_INTERRUPTED, JOB_RUN_STOPPED));
    assert_true(agent_job_state_legal(JOB_RUN_INTERRUPTED, JOB_RUN_LOST));
    /* Stopped wins over interrupted: never back. */
    assert_false(agent_job_state_legal(JOB_RUN_STOPPED, JOB_RUN_INTERRUPTED));
    assert_false(agent_job_state_legal(JOB_RUN_LOST, JOB_RUN_STOPPED));
    assert_false(agent_job_state_legal(JOB_NEW, JOB_RUN));
    assert_false(agent_job_state_legal(JOB_SPEC, JOB_RUN_INTERRUPTED));
}

static void
test_agent_slot_states_done_is_final(void **state)
{
    int s;

    (void)state;
    for (s = 0; s < JOB_NSTATES; s++) {
        assert_false(agent_job_state_legal(JOB_DONE, (enum job_state)s));
        /* No state stays put, and every state but done can end. */
        assert_false(
            agent_job_state_legal((enum job_state)s, (enum job_state)s));
        if (s != JOB_DONE)
            assert_true(agent_job_state_legal((enum job_state)s, JOB_DONE));
        /* Nothing goes back to new. */
        assert_false(agent_job_state_legal((enum job_state)s, JOB_NEW));
        assert_string_not_equal(agent_job_state_name((enum job_state)s), "?");
    }
    assert_false(agent_job_state_legal(JOB_NSTATES, JOB_DONE));
    assert_string_equal(agent_job_state_name(JOB_NSTATES), "?");
}

/* ---- outbox ------------------------------------------------------------ */

struct outbox_fixture {
    struct mapq_argv outbox, sending;
    struct mapq_argv fake; /* views with made-up lengths */
};

static int
outbox_setup(void **state)
{
    struct outbox_fixture *f = calloc(1, sizeof(*f));

    if (f == NULL)
        return -1;
    mapq_argv_init(&f->outbox);
    mapq_argv_init(&f->sending);
    mapq_argv_init(&f->fake);
    *state = f;
    return 0;
}

static int
outbox_teardown(void **state)
{
    struct outbox_fixture *f = *state;

    mapq_argv_release(&f->outbox);
    mapq_argv_release(&f->sending);
    mapq_argv_release(&f->fake);
    free(f);
    return 0;
}

/* Appends entry name: DONE_FIELDS arguments "name.0" ... "name.7". */
static void
add_entry(struct mapq_argv *a, const char *name)
{
    int j;

    for (j = 0; j < DONE_FIELDS; j++)
        mapq_argv_addf(a, "%s.%d", name, j);
}

/* The entry names in a, in order, joined with ','. */
static void
entry_names(const struct mapq_argv *a, char *buf, size_t len)
{
    size_t n = 0;
    int j;

    buf[0] = '\0';
    for (j = 0; j < a->argc; j += DONE_FIELDS)
        n += (size_t)snprintf(buf + n, len - n, "%s%.*s", j ? "," : "",
                              (int)(strchr(a->argv[j], '.') - a->argv[j]),
                              a->argv[j]);
}

static void
test_agent_outbox_batch_whole_entries(void **state)
{
    struct outbox_fixture *f = *state;
    char name[16];
    int i;

    assert_int_equal(agent_outbox_batch_len(&f->outbox), 0);
    add_entry(&f->outbox, "a");
    add_entry(&f->outbox, "b");
    add_entry(&f->outbox, "c");
    assert_int_equal(agent_outbox_batch_len(&f->outbox), 3 * DONE_FIELDS);
    /* At most DONE_BATCH_MAX entries per call. */
    for (i = 3; i < DONE_BATCH_MAX + 5; i++) {
        snprintf(name, sizeof(name), "e%d", i);
        add_entry(&f->outbox, name);
    }
    assert_int_equal(agent_outbox_batch_len(&f->outbox),
                     DONE_BATCH_MAX * DONE_FIELDS);
}

static void
test_agent_outbox_batch_bytes_capped(void **state)
{
    struct outbox_fixture *f = *state;
    int i;

    /* Three entries of 40 MB each (lengths only: batch_len reads no
     * bytes): one per call, and one even when it alone is over the cap. */
    for (i = 0; i < 3; i++)
        add_entry(&f->fake, "x");
    for (i = 0; i < 3; i++)
        f->fake.lens[i * DONE_FIELDS + 4] = 40u * 1024 * 1024;
    assert_int_equal(agent_outbox_batch_len(&f->fake), DONE_FIELDS);
    f->fake.lens[4] = 100u * 1024 * 1024;
    assert_int_equal(agent_outbox_batch_len(&f->fake), DONE_FIELDS);
    /* Small ones fill up to the cap. */
    f->fake.lens[4] = 10u * 1024 * 1024;
    f->fake.lens[DONE_FIELDS + 4] = 10u * 1024 * 1024;
    assert_int_equal(agent_outbox_batch_len(&f->fake), 3 * DONE_FIELDS);
}

static void
test_agent_outbox_take_and_put_back(void **state)
{
    struct outbox_fixture *f = *state;
    char names[256];

    add_entry(&f->outbox, "a");
    add_entry(&f->outbox, "b");
    add_entry(&f->outbox, "c");
    agent_outbox_take(&f->outbox, &f->sending, 2 * DONE_FIELDS);
    entry_names(&f->sending, names, sizeof(names));
    assert_string_equal(names, "a,b");
    entry_names(&f->outbox, names, sizeof(names));
    assert_string_equal(names, "c");
    assert_int_equal(f->outbox.lens[0], strlen("c.0"));
    /* Finished while the call was in flight. */
    add_entry(&f->outbox, "d");
    /* The call was refused: its batch goes back in front, in order. */
    agent_outbox_putback(&f->outbox, &f->sending);
    assert_int_equal(f->sending.argc, 0);
    entry_names(&f->outbox, names, sizeof(names));
    assert_string_equal(names, "a,b,c,d");
    assert_string_equal(f->outbox.argv[DONE_FIELDS + 7], "b.7");
    /* Sent again: the same batch. */
    agent_outbox_take(&f->outbox, &f->sending,
                      agent_outbox_batch_len(&f->outbox));
    entry_names(&f->sending, names, sizeof(names));
    assert_string_equal(names, "a,b,c,d");
    assert_int_equal(f->outbox.argc, 0);
}

static void
test_agent_outbox_put_back_empty(void **state)
{
    struct outbox_fixture *f = *state;
    char names[64];

    add_entry(&f->outbox, "a");
    agent_outbox_putback(&f->outbox, &f->sending);
    entry_names(&f->outbox, names, sizeof(names));
    assert_string_equal(names, "a");
    agent_outbox_take(&f->outbox, &f->sending, DONE_FIELDS);
    agent_outbox_putback(&f->outbox, &f->sending);
    entry_names(&f->outbox, names, sizeof(names));
    assert_string_equal(names, "a");
    assert_int_equal(f->sending.argc, 0);
}

/* ---- resources ---------------------------------------------------------- */

#define GIB (INT64_C(1) << 30)

static void
test_agent_res_fits_what_is_free(void **state)
{
    static const int allowed[] = {0, 1, 2, 3};
    struct agent_res r;
    struct job_res a = {0}, b = {0};

    (void)state;
    agent_res_init(&r, 4000, 8 * GIB, allowed, 4);
    assert_true(agent_res_fits(&r, 4000, 8 * GIB));
    assert_false(agent_res_fits(&r, 4001, 0));
    assert_false(agent_res_fits(&r, 0, 8 * GIB + 1));
    agent_res_take(&r, 3000, 6 * GIB, &a);
    assert_true(agent_res_fits(&r, 1000, 2 * GIB));
    assert_false(agent_res_fits(&r, 1500, 0));
    assert_false(agent_res_fits(&r, 0, 3 * GIB));
    /* Undeclared resources always fit: slots bound those. */
    assert_true(agent_res_fits(&r, 0, 0));
    assert_true(agent_res_ever_fits(&r, 4000, 8 * GIB));
    assert_false(agent_res_ever_fits(&r, 5000, 0));
    agent_res_take(&r, 1000, 2 * GIB, &b);
    assert_false(agent_res_fits(&r, 1, 0));
    agent_res_give(&r, &a);
    assert_true(agent_res_fits(&r, 3000, 6 * GIB));
    assert_int_equal(a.cpu_milli, 0);
    assert_null(a.cpus);
    agent_res_give(&r, &b);
    assert_int_equal(r.cpu_used, 0);
    assert_int_equal(r.mem_used, 0);
    agent_res_release(&r);
}

static void
test_agent_res_pins_least_loaded_cpus(void **state)
{
    static const int allowed[] = {2, 5, 7, 9, 11};
    struct agent_res r;
    struct job_res a = {0}, b = {0}, c = {0}, d = {0};

    (void)state;
    /* 3 CPUs of the 5 allowed: the pool is the first three. */
    agent_res_init(&r, 3000, GIB, allowed, 5);
    assert_int_equal(r.npool, 3);
    agent_res_take(&r, 2000, 0, &a);
    assert_int_equal(a.ncpus, 2);
    assert_int_equal(a.cpus[0], 2);
    assert_int_equal(a.cpus[1], 5);
    /* Half a CPU takes a whole one: the free one. */
    agent_res_take(&r, 500, 0, &b);
    assert_int_equal(b.ncpus, 1);
    assert_int_equal(b.cpus[0], 7);
    /* Another half shares the least loaded (the lowest of equals). */
    agent_res_take(&r, 500, 0, &c);
    assert_int_equal(c.ncpus, 1);
    assert_int_equal(c.cpus[0], 2);
    agent_res_give(&r, &a);
    /* No CPU declared: not pinned. */
    agent_res_take(&r, 0, 0, &d);
    assert_int_equal(d.ncpus, 0);
    assert_null(d.cpus);
    agent_res_give(&r, &d);
    agent_res_give(&r, &b);
    agent_res_give(&r, &c);
    assert_int_equal(r.load[0] + r.load[1] + r.load[2], 0);
    agent_res_release(&r);
    /* More CPUs than the agent may use: counted, never pinned. */
    agent_res_init(&r, 8000, GIB, allowed, 5);
    assert_int_equal(r.npool, 0);
    agent_res_take(&r, 2000, 0, &a);
    assert_int_equal(a.ncpus, 0);
    assert_false(agent_res_fits(&r, 6001, 0));
    agent_res_give(&r, &a);
    agent_res_release(&r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_agent_job_key_written),
        cmocka_unit_test(test_agent_claim_idle_asks_for_everything),
        cmocka_unit_test(test_agent_claim_counts_running_and_waiting),
        cmocka_unit_test(test_agent_claim_full_slots_plugins_only),
        cmocka_unit_test(test_agent_claim_dry_kinds_left_out),
        cmocka_unit_test(test_agent_claim_prefetch_fills_the_hold),
        cmocka_unit_test(test_agent_claim_paused_takes_no_command),
        cmocka_unit_test(test_agent_res_fits_what_is_free),
        cmocka_unit_test(test_agent_res_pins_least_loaded_cpus),
        cmocka_unit_test(test_agent_claim_depth_from_batch_or_durations),
        cmocka_unit_test(test_agent_claim_short_reply_dries),
        cmocka_unit_test(test_agent_claim_defers_unless_a_short_list_waits),
        cmocka_unit_test(test_agent_slot_states_legal_moves),
        cmocka_unit_test(test_agent_slot_states_done_is_final),
        cmocka_unit_test_setup_teardown(test_agent_outbox_batch_whole_entries,
                                        outbox_setup, outbox_teardown),
        cmocka_unit_test_setup_teardown(test_agent_outbox_batch_bytes_capped,
                                        outbox_setup, outbox_teardown),
        cmocka_unit_test_setup_teardown(test_agent_outbox_take_and_put_back,
                                        outbox_setup, outbox_teardown),
        cmocka_unit_test_setup_teardown(test_agent_outbox_put_back_empty,
                                        outbox_setup, outbox_teardown),
    };

    return cmocka_run_group_tests_name("agent", tests, NULL, NULL);
}
