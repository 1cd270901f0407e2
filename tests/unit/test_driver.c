/*
 * test_driver.c - the driver's pure parts, without Redis: the window
 * arithmetic of a node (how many subtasks to push given what is in flight,
 * the concurrency and what is left; ends; the threshold) and the table of
 * an execution's legal state changes, and when a node's next events may
 * wait.
 */
#include "mapq_test.h"

#include <stdlib.h>
#include <string.h>

#include "driver_int.h"

/* A running node of n subtasks, none pushed yet. */
struct fixture {
    struct node_run nr;
};

static struct fixture *
node_new(uint64_t n, uint64_t need)
{
    struct fixture *f = calloc(1, sizeof(*f));

    f->nr.state = NODE_RUNNING;
    f->nr.n = n;
    f->nr.need = need;
    f->nr.phases = malloc((n + 1) / 2 + 1);
    memset(f->nr.phases, PH_PENDING * 17, (n + 1) / 2 + 1);
    return f;
}

static int
setup_ten(void **state)
{
    *state = node_new(10, 10);
    return 0;
}

static int
setup_hundred(void **state)
{
    *state = node_new(100, 80);
    return 0;
}

static int
teardown(void **state)
{
    struct fixture *f = *state;

    free(f->nr.phases);
    free(f);
    return 0;
}

static void
test_driver_window_limit(void **state)
{
    (void)state;
    assert_int_equal(drv_window_limit(0), UNLIMITED_WINDOW);
    assert_int_equal(drv_window_limit(-1), UNLIMITED_WINDOW);
    assert_int_equal(drv_window_limit(1), 1);
    assert_int_equal(drv_window_limit(250), 250);
}

static void
test_driver_window_need(void **state)
{
    (void)state;
    /* min_successes wins over the ratio, capped at n. */
    assert_int_equal(drv_window_need(3, 1.0, 10), 3);
    assert_int_equal(drv_window_need(0, 1.0, 10), 0);
    assert_int_equal(drv_window_need(50, 1.0, 10), 10);
    /* The ratio rounds up, with no float noise: 0.3 of 10 is 3. */
    assert_int_equal(drv_window_need(-1, 1.0, 10), 10);
    assert_int_equal(drv_window_need(-1, 0.5, 5), 3);
    assert_int_equal(drv_window_need(-1, 0.3, 10), 3);
    assert_int_equal(drv_window_need(-1, 0.0, 10), 0);
    assert_int_equal(drv_window_need(-1, 1.0, 0), 0);
}

static void
test_driver_window_takes_up_to_concurrency(void **state)
{
    struct fixture *f = *state;
    uint64_t idx[BATCH];

    assert_int_equal(drv_window_take(&f->nr, 3, UINT64_MAX, idx, BATCH), 3);
    assert_int_equal(idx[0], 0);
    assert_int_equal(idx[2], 2);
    assert_int_equal(f->nr.inflight, 3);
    assert_int_equal(phase_get(&f->nr, 1), MAPQ_PHASE_QUEUED);
    /* Full: nothing more until a slot frees. */
    assert_int_equal(drv_window_take(&f->nr, 3, UINT64_MAX, idx, BATCH), 0);
    assert_true(drv_window_apply(&f->nr, 1, MAPQ_PHASE_SUCCEEDED));
    assert_int_equal(f->nr.inflight, 2);
    assert_int_equal(f->nr.finished, 1);
    assert_int_equal(drv_window_take(&f->nr, 3, UINT64_MAX, idx, BATCH), 1);
    assert_int_equal(idx[0], 3);
    /* Nothing at or past end is taken (the pages read stop there). */
    assert_int_equal(drv_window_take(&f->nr, UNLIMITED_WINDOW, 6, idx, BATCH),
                     2);
    assert_int_equal(idx[1], 5);
    assert_int_equal(f->nr.next, 6);
    /* A larger window takes the rest, no more than max per call. */
    assert_int_equal(
        drv_window_take(&f->nr, UNLIMITED_WINDOW, UINT64_MAX, idx, 2), 2);
    assert_int_equal(
        drv_window_take(&f->nr, UNLIMITED_WINDOW, UINT64_MAX, idx, 4), 2);
    assert_int_equal(idx[1], 9);
    assert_int_equal(
        drv_window_take(&f->nr, UNLIMITED_WINDOW, UINT64_MAX, idx, 4), 0);
    assert_int_equal(f->nr.inflight, 9);
}

static void
test_driver_window_skips_what_a_reconcile_found(void **state)
{
    struct fixture *f = *state;
    uint64_t idx[BATCH];

    /* A scan found 0 finished and 1 in flight: only the others go. */
    phase_set(&f->nr, 0, MAPQ_PHASE_SUCCEEDED);
    phase_set(&f->nr, 1, MAPQ_PHASE_QUEUED);
    f->nr.inflight = 1;
    f->nr.finished = 1;
    assert_int_equal(drv_window_take(&f->nr, 3, UINT64_MAX, idx, BATCH), 2);
    assert_int_equal(idx[0], 2);
    assert_int_equal(idx[1], 3);
    assert_int_equal(f->nr.inflight, 3);
}

static void
test_driver_window_takes_nothing_unless_running(void **state)
{
    struct fixture *f = *state;
    uint64_t idx[BATCH];

    f->nr.scanning = true;
    assert_int_equal(drv_window_take(&f->nr, 3, UINT64_MAX, idx, BATCH), 0);
    f->nr.scanning = false;
    f->nr.state = NODE_ASSEMBLING;
    assert_int_equal(drv_window_take(&f->nr, 3, UINT64_MAX, idx, BATCH), 0);
    assert_int_equal(f->nr.next, 0);
    /* Nor are its events counted. */
    assert_false(drv_window_apply(&f->nr, 0, MAPQ_PHASE_SUCCEEDED));
}

static void
test_driver_window_apply_counts_once(void **state)
{
    struct fixture *f = *state;
    uint64_t idx[BATCH];

    drv_window_take(&f->nr, 2, UINT64_MAX, idx, BATCH);
    assert_true(drv_window_apply(&f->nr, 0, MAPQ_PHASE_FAILED));
    /* Repeated, or out of range: nothing changes. */
    assert_false(drv_window_apply(&f->nr, 0, MAPQ_PHASE_SUCCEEDED));
    assert_false(drv_window_apply(&f->nr, 10, MAPQ_PHASE_SUCCEEDED));
    assert_int_equal(f->nr.counts[MAPQ_PHASE_FAILED], 1);
    assert_int_equal(f->nr.counts[MAPQ_PHASE_SUCCEEDED], 0);
    assert_int_equal(f->nr.finished, 1);
    assert_int_equal(f->nr.inflight, 1);
    assert_true(f->nr.touched);
    /* A subtask never pushed here (seen before a reconcile did) and a
     * follower hold no slot: their end frees none. */
    assert_true(drv_window_apply(&f->nr, 5, MAPQ_PHASE_SUCCEEDED));
    assert_int_equal(f->nr.inflight, 1);
    phase_set(&f->nr, 1, PH_FOLLOWING);
    f->nr.inflight--;
    assert_true(drv_window_apply(&f->nr, 1, MAPQ_PHASE_CACHED));
    assert_int_equal(f->nr.inflight, 0);
    assert_int_equal(f->nr.finished, 3);
}

/* 100 subtasks through a window of 7: never more than 7 in flight, each
 * pushed once, all finished at the end. */
static void
test_driver_window_runs_everything_once(void **state)
{
    struct fixture *f = *state;
    uint64_t idx[BATCH], pushed[100] = {0}, queue[200];
    size_t head = 0, tail = 0, n, j;

    for (;;) {
        n = drv_window_take(&f->nr, 7, UINT64_MAX, idx, BATCH);
        for (j = 0; j < n; j++) {
            pushed[idx[j]]++;
            queue[tail++] = idx[j];
        }
        assert_true(f->nr.inflight <= 7);
        if (head == tail)
            break;
        assert_true(
            drv_window_apply(&f->nr, queue[head++], MAPQ_PHASE_SUCCEEDED));
    }
    for (j = 0; j < 100; j++)
        assert_int_equal(pushed[j], 1);
    assert_int_equal(f->nr.finished, 100);
    assert_int_equal(f->nr.inflight, 0);
    assert_int_equal(f->nr.counts[MAPQ_PHASE_SUCCEEDED], 100);
}

/* need 80 of 100: hopeless once 21 failed, unless run_all. */
static void
test_driver_window_threshold(void **state)
{
    struct fixture *f = *state;
    uint64_t idx[BATCH], i;

    drv_window_take(&f->nr, UNLIMITED_WINDOW, UINT64_MAX, idx, BATCH);
    for (i = 0; i < 20; i++)
        drv_window_apply(&f->nr, i, MAPQ_PHASE_FAILED);
    drv_window_apply(&f->nr, 20, MAPQ_PHASE_CACHED);
    drv_window_apply(&f->nr, 21, MAPQ_PHASE_RECOVERED);
    assert_false(drv_window_hopeless(&f->nr, false));
    drv_window_apply(&f->nr, 22, MAPQ_PHASE_TIMED_OUT);
    assert_true(drv_window_hopeless(&f->nr, false));
    assert_false(drv_window_hopeless(&f->nr, true));
    drv_window_abort(&f->nr);
    assert_int_equal(f->nr.finished, 100);
    assert_int_equal(f->nr.inflight, 0);
    assert_int_equal(f->nr.next, 100);
    assert_int_equal(f->nr.counts[MAPQ_PHASE_ABORTED], 77);
    assert_int_equal(phase_get(&f->nr, 22), MAPQ_PHASE_TIMED_OUT);
    assert_int_equal(phase_get(&f->nr, 99), MAPQ_PHASE_ABORTED);
    /* Everything finished: nothing left to abort. */
    assert_false(drv_window_hopeless(&f->nr, false));
}

/* Finishes subtasks [from, to) of a node. */
static void
finish(struct node_run *nr, uint64_t from, uint64_t to)
{
    uint64_t i;

    for (i = from; i < to; i++)
        assert_true(drv_window_apply(nr, i, MAPQ_PHASE_SUCCEEDED));
}

/* Reads one pace apart: what one pace finished at the last read, k, sets
 * how near the end is. The events may wait while more than 2k are in
 * flight and nothing waits to be pushed. */
static void
test_driver_window_flowing_while_its_end_is_far(void **state)
{
    struct fixture *f = *state;
    struct node_run *nr = &f->nr;
    uint64_t idx[BATCH];
    int64_t t0 = 1000000;

    assert_int_equal(drv_window_take(nr, 50, UINT64_MAX, idx, BATCH), 50);
    finish(nr, 0, 10);
    drv_window_read(nr, t0);
    assert_false(drv_window_flowing(nr)); /* one read: no rate yet */
    finish(nr, 10, 15);
    drv_window_read(nr, t0 + EVENT_PACE_MS);
    assert_int_equal(nr->inflight, 35);
    assert_false(drv_window_flowing(nr)); /* 50 are still to push */
    drv_window_take(nr, UNLIMITED_WINDOW, UINT64_MAX, idx, BATCH);
    assert_int_equal(nr->inflight, 85);
    assert_true(drv_window_flowing(nr)); /* 85 > 2 x 5 */
    nr->scanning = true;
    assert_false(drv_window_flowing(nr));
    nr->scanning = false;
    finish(nr, 15, 60);
    drv_window_read(nr, t0 + 2 * EVENT_PACE_MS);
    assert_int_equal(nr->inflight, 40);
    assert_false(drv_window_flowing(nr)); /* 40 <= 2 x 45: near the end */
    finish(nr, 60, 70);
    drv_window_read(nr, t0 + 4 * EVENT_PACE_MS);
    assert_true(drv_window_flowing(nr)); /* 10 in two paces: 30 > 2 x 5 */
    nr->state = NODE_ASSEMBLING;
    assert_false(drv_window_flowing(nr));
}

static void
test_driver_state_live_states_may_end(void **state)
{
    int s;

    (void)state;
    for (s = EXEC_PENDING; s <= EXEC_DRIVING; s++) {
        assert_true(drv_exec_legal[s][EXEC_ENDED]);
        assert_true(drv_exec_legal[s][EXEC_DETACHED]);
        assert_false(drv_exec_legal[s][EXEC_FINISH_WAIT]);
    }
}

static void
test_driver_state_ended_is_final(void **state)
{
    int s;

    (void)state;
    for (s = 0; s < EXEC_STATE_COUNT; s++) {
        /* Detached goes nowhere; ended only waits for its final write. */
        assert_false(drv_exec_legal[EXEC_DETACHED][s]);
        assert_int_equal(drv_exec_legal[EXEC_ENDED][s], s == EXEC_FINISH_WAIT);
        assert_int_equal(drv_exec_legal[EXEC_FINISH_WAIT][s], s == EXEC_ENDED);
        /* Nothing moves to itself. */
        assert_false(drv_exec_legal[s][s]);
    }
}

static void
test_driver_state_driving_needs_ownership(void **state)
{
    int s;

    (void)state;
    /* Only an own reply makes an execution ours (driving or reconciling),
     * and only a reconcile's end turns reconciling into driving. */
    for (s = 0; s < EXEC_STATE_COUNT; s++) {
        assert_int_equal(drv_exec_legal[s][EXEC_RECONCILING], s == EXEC_OWNING);
        assert_int_equal(drv_exec_legal[s][EXEC_DRIVING],
                         s == EXEC_OWNING || s == EXEC_RECONCILING);
        assert_int_equal(drv_exec_legal[s][EXEC_OWNING], s == EXEC_PENDING);
    }
    /* A reconnect or a lost own reply sends it back to PENDING. */
    assert_true(drv_exec_legal[EXEC_OWNING][EXEC_PENDING]);
    assert_true(drv_exec_legal[EXEC_RECONCILING][EXEC_PENDING]);
    assert_true(drv_exec_legal[EXEC_DRIVING][EXEC_PENDING]);
    assert_false(drv_exec_legal[EXEC_ENDED][EXEC_PENDING]);
}

static void
test_driver_state_failing_goes_through_the_marker(void **state)
{
    int s;

    (void)state;
    /* An owned execution starts failing (ABORTING), reaches FAILING only
     * past its end marker, and ends from there; both stay owned. */
    for (s = 0; s < EXEC_STATE_COUNT; s++) {
        assert_int_equal(drv_exec_legal[s][EXEC_ABORTING],
                         s == EXEC_RECONCILING || s == EXEC_DRIVING);
        assert_int_equal(drv_exec_legal[s][EXEC_FAILING], s == EXEC_ABORTING);
    }
    assert_false(drv_exec_legal[EXEC_ABORTING][EXEC_ENDED]);
    assert_true(drv_exec_legal[EXEC_FAILING][EXEC_ENDED]);
    assert_true(drv_exec_legal[EXEC_ABORTING][EXEC_PENDING]);
    assert_true(drv_exec_legal[EXEC_FAILING][EXEC_PENDING]);
    assert_true(drv_exec_legal[EXEC_ABORTING][EXEC_DETACHED]);
    assert_false(drv_exec_legal[EXEC_FAILING][EXEC_DRIVING]);
}

static void
test_driver_state_names(void **state)
{
    int s, t;

    (void)state;
    assert_string_equal(drv_exec_state_name(EXEC_PENDING), "pending");
    assert_string_equal(drv_exec_state_name(EXEC_FINISH_WAIT), "finish-wait");
    for (s = 0; s < EXEC_STATE_COUNT; s++)
        for (t = s + 1; t < EXEC_STATE_COUNT; t++)
            assert_string_not_equal(drv_exec_state_name(s),
                                    drv_exec_state_name(t));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_driver_window_limit),
        cmocka_unit_test(test_driver_window_need),
        cmocka_unit_test_setup_teardown(
            test_driver_window_takes_up_to_concurrency, setup_ten, teardown),
        cmocka_unit_test_setup_teardown(
            test_driver_window_skips_what_a_reconcile_found, setup_ten,
            teardown),
        cmocka_unit_test_setup_teardown(
            test_driver_window_takes_nothing_unless_running, setup_ten,
            teardown),
        cmocka_unit_test_setup_teardown(test_driver_window_apply_counts_once,
                                        setup_ten, teardown),
        cmocka_unit_test_setup_teardown(test_driver_window_runs_everything_once,
                                        setup_hundred, teardown),
        cmocka_unit_test_setup_teardown(test_driver_window_threshold,
                                        setup_hundred, teardown),
        cmocka_unit_test_setup_teardown(
            test_driver_window_flowing_while_its_end_is_far, setup_hundred,
            teardown),
        cmocka_unit_test(test_driver_state_live_states_may_end),
        cmocka_unit_test(test_driver_state_ended_is_final),
        cmocka_unit_test(test_driver_state_driving_needs_ownership),
        cmocka_unit_test(test_driver_state_failing_goes_through_the_marker),
        cmocka_unit_test(test_driver_state_names),
    };

    return cmocka_run_group_tests_name("driver", tests, NULL, NULL);
}
