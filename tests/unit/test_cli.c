/*
 * test_cli.c - the mapq command line without Redis: the operands each kind
 * of command takes, and the state table of a followed execution (mapq run)
 * with the callbacks that move it.
 *
 * Also the summary --json prints of an execution (cli_json.c), and mapq
 * run's progress lines at every terminal width (cli_progress.c).
 *
 * The command line is a program, not a library, so its files are compiled
 * into this test; cli_table.c (the table) is replaced by the two
 * stubs below, and the run has no driver: the tests stay on the paths
 * that do not ask it.
 */
#include "mapq_test.h"

#include <stdio.h>
#include <string.h>

#include "../../scheduler/cli/cli_files.c"
#include "../../scheduler/cli/cli_json.c"
#include "../../scheduler/cli/cli_opts.c"
#include "../../scheduler/cli/cli_pages.c"
#include "../../scheduler/cli/cli_progress.c"
#include "../../scheduler/cli/cli_util.c"
#include "../../scheduler/cli/cmd_run.c"

const struct mapq_cmd_entry *
mapq_cli_find(const char *name)
{
    return strcmp(name, "run") == 0 ? &mapq_cmd_run_entry : NULL;
}

void
mapq_cli_usage(FILE *out)
{
    fputs("usage\n", out);
}

/* Parses the operands in words (separated by spaces, at most 8) of a
 * command taking what; argv points into a static copy of words. */
static int
operands(struct mapq_cli_opts *o, enum mapq_cmd_operands what,
         const char *words)
{
    static char copy[256];
    static char *argv[8];
    char *p;
    int argc = 0;

    snprintf(copy, sizeof(copy), "%s", words);
    for (p = copy; *p != '\0' && argc < 8;) {
        argv[argc++] = p;
        p += strcspn(p, " ");
        if (*p == ' ')
            *p++ = '\0';
    }
    memset(o, 0, sizeof(*o));
    o->cmd = "test";
    return parse_operands(o, what, argc, argv, 0);
}

static void
test_cli_operands_one_target(void **state)
{
    struct mapq_cli_opts o;

    (void)state;
    assert_int_equal(operands(&o, MAPQ_CMD_EXEC, "a"), 0);
    assert_string_equal(o.target, "a");
    assert_int_equal(operands(&o, MAPQ_CMD_WORKFLOW, "a"), 0);
    assert_string_equal(o.target, "a");
    assert_int_equal(operands(&o, MAPQ_CMD_EXEC, ""), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_EXEC, "a b"), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_WORKFLOW, "a b"), -1);
}

static void
test_cli_operands_none(void **state)
{
    struct mapq_cli_opts o;

    (void)state;
    assert_int_equal(operands(&o, MAPQ_CMD_NONE, ""), 0);
    assert_int_equal(operands(&o, MAPQ_CMD_NONE, "extra"), -1);
}

static void
test_cli_operands_logs(void **state)
{
    struct mapq_cli_opts o;

    (void)state;
    assert_int_equal(operands(&o, MAPQ_CMD_LOGS, "x1 node"), 0);
    assert_string_equal(o.target, "x1");
    assert_string_equal(o.node, "node");
    assert_null(o.index);
    assert_int_equal(operands(&o, MAPQ_CMD_LOGS, "x1 node 7"), 0);
    assert_string_equal(o.index, "7");
    assert_int_equal(operands(&o, MAPQ_CMD_LOGS, "x1"), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_LOGS, "x1 node 7 more"), -1);
}

static void
test_cli_operands_cache(void **state)
{
    struct mapq_cli_opts o;

    (void)state;
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "rm k1 k2"), 0);
    assert_string_equal(o.target, "rm");
    assert_int_equal(o.nkeys, 2);
    assert_string_equal(o.keys[1], "k2");
    /* rm needs keys; ls and clear take none. */
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "rm"), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "ls"), 0);
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "clear"), 0);
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "ls k1"), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "clear k1"), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, "list"), -1);
    assert_int_equal(operands(&o, MAPQ_CMD_CACHE, ""), -1);
}

/* Runs mapq_cli_parse() on "mapq run w.yaml" and one more option. */
static int
parse_run_with(struct mapq_cli_opts *o, const char *opt)
{
    static char argv0[] = "mapq", cmd[] = "run", file[] = "w.yaml";
    static char copy[64];
    char *argv[] = {argv0, cmd, file, copy, NULL};
    const struct mapq_cmd_entry *e;

    snprintf(copy, sizeof(copy), "%s", opt);
    memset(o, 0, sizeof(*o));
    return mapq_cli_parse(4, argv, o, &e);
}

static void
test_cli_priority_is_1_to_100(void **state)
{
    struct mapq_cli_opts o;

    (void)state;
    assert_int_equal(parse_run_with(&o, "--priority=30"), 0);
    assert_int_equal(o.priority, 30);
    assert_string_equal(o.target, "w.yaml");
    assert_int_equal(parse_run_with(&o, "--priority=100"), 0);
    assert_int_equal(o.priority, 100);
    assert_int_equal(parse_run_with(&o, "--priority=0"), -1);
    assert_int_equal(parse_run_with(&o, "--priority=101"), -1);
    assert_int_equal(parse_run_with(&o, "--priority=ten"), -1);
    assert_int_equal(parse_run_with(&o, "--priority="), -1);
    /* Unset: 0, which the execution record leaves out (the default). */
    assert_int_equal(parse_run_with(&o, "--quiet"), 0);
    assert_int_equal(o.priority, 0);
}

static void
test_cli_run_state_table(void **state)
{
    int s;

    (void)state;
    for (s = 0; s < RUN_NSTATES; s++) {
        /* Nothing goes back to driving, stays put or leaves stopped. */
        assert_false(legal[s][RUN_DRIVING]);
        assert_false(legal[s][s]);
        assert_false(legal[RUN_STOPPED][s]);
    }
    /* Every other state leads to stopped. */
    assert_true(legal[RUN_CANCELLING][RUN_STOPPED]);
    assert_true(legal[RUN_FINISHING][RUN_STOPPED]);
    /* The loop stops only once the execution ended or was cancelled. */
    assert_false(legal[RUN_DRIVING][RUN_STOPPED]);
    assert_true(legal[RUN_DRIVING][RUN_FINISHING]);
    assert_true(legal[RUN_DRIVING][RUN_CANCELLING]);
    assert_true(legal[RUN_FINISHING][RUN_CANCELLING]);
    assert_false(legal[RUN_CANCELLING][RUN_FINISHING]);
}

/* A followed execution with a loop of its own and no driver. */
static int
run_setup(void **state)
{
    struct run *r = mapq_xcalloc(1, sizeof(*r));

    r->base = event_base_new();
    *state = r;
    return r->base != NULL ? 0 : -1;
}

static int
run_teardown(void **state)
{
    struct run *r = *state;

    event_base_free(r->base);
    free(r);
    return 0;
}

/* Whether the loop of r was told to stop: one pass of it says. */
static bool
told_to_stop(struct run *r)
{
    event_base_loop(r->base, EVLOOP_NONBLOCK);
    return event_base_got_exit(r->base) != 0;
}

static void
test_cli_run_second_ctrl_c_stops(void **state)
{
    struct run *r = *state;

    run_set_state(r, RUN_CANCELLING);
    interrupt_cb(-1, EV_SIGNAL, r);
    assert_int_equal(r->state, RUN_STOPPED);
    assert_int_equal(r->exit_code, MAPQ_EXIT_CANCELLED);
    assert_true(told_to_stop(r));
    /* A third one, in the same pass of the loop, changes nothing. */
    interrupt_cb(-1, EV_SIGNAL, r);
    assert_int_equal(r->state, RUN_STOPPED);
}

static void
test_cli_run_cancel_answer_stops(void **state)
{
    struct run *r = *state;

    run_set_state(r, RUN_CANCELLING);
    cancelled_cb(true, NULL, r);
    assert_int_equal(r->state, RUN_STOPPED);
    assert_true(told_to_stop(r));
    /* An answer after a second Ctrl-C stopped the loop is ignored. */
    cancelled_cb(true, NULL, r);
    assert_int_equal(r->state, RUN_STOPPED);
}

static void
test_cli_run_idle_driver_stops_finishing(void **state)
{
    struct run *r = *state;

    /* While it runs, an idle driver does not stop the loop. */
    idle_cb(r);
    assert_int_equal(r->state, RUN_DRIVING);
    assert_false(told_to_stop(r));
    run_set_state(r, RUN_FINISHING);
    idle_cb(r);
    assert_int_equal(r->state, RUN_STOPPED);
    assert_true(told_to_stop(r));
}

static void
test_cli_run_cancel_outlives_end_of_wait(void **state)
{
    struct run *r = *state;

    /* Once Ctrl-C sent the cancel, only its answer (or a second Ctrl-C)
     * stops the loop. */
    run_set_state(r, RUN_FINISHING);
    run_set_state(r, RUN_CANCELLING);
    finish_cb(-1, EV_TIMEOUT, r);
    idle_cb(r);
    assert_int_equal(r->state, RUN_CANCELLING);
    assert_false(told_to_stop(r));
}

/* ---- an output written as JSON (mapq_cli_write_output) --------------- */

/* mapq_cli_write_output() of (data, len) into text (NUL-terminated), with
 * no Redis: any page it would read fails. */
static enum mapq_err
write_output(const struct mapq_buf *v, char *text, size_t size, char *err)
{
    FILE *f = fmemopen(text, size, "w");
    enum mapq_err rc;

    assert_non_null(f);
    memset(text, 0, size);
    rc = mapq_cli_write_output(NULL, "ns", v->data, v->len, 0, NULL, err);
    if (rc == MAPQ_OK)
        rc = mapq_cli_write_output(NULL, "ns", v->data, v->len, 0, f, err);
    fclose(f);
    return rc;
}

static void
test_cli_write_output_maps(void **state)
{
    struct mapq_buf v = MAPQ_BUF_INIT;
    struct mapq_pages_ref ref = {
        .exec = "e1", .list = "o:0", .n = 70000, .page_len = 1000};
    msgpack_packer pk;
    char text[256], err[MAPQ_ERR_LEN];

    (void)state;
    /* A map without paged lists: written whole, as before. */
    mapq_value_packer_init(&pk, &v);
    msgpack_pack_map(&pk, 2);
    mapq_value_pack_str(&pk, "a");
    msgpack_pack_array(&pk, 2);
    msgpack_pack_int(&pk, 1);
    msgpack_pack_int(&pk, 2);
    mapq_value_pack_str(&pk, "b");
    mapq_value_pack_str(&pk, "x");
    assert_int_equal(write_output(&v, text, sizeof(text), err), MAPQ_OK);
    assert_string_equal(text, "{\"a\":[1,2],\"b\":\"x\"}");
    /* A paged list among its values is read from Redis: none here. */
    mapq_buf_reset(&v);
    msgpack_pack_map(&pk, 2);
    mapq_value_pack_str(&pk, "b");
    mapq_value_pack_str(&pk, "x");
    mapq_value_pack_str(&pk, "xs");
    mapq_pages_ref_pack(&pk, &ref);
    assert_int_equal(write_output(&v, text, sizeof(text), err), MAPQ_EREDIS);
    assert_non_null(strstr(err, "cannot read the pages of o:0"));
    assert_string_equal(text, "");
    /* Keys are checked as JSON checks them before any page is read: an
     * int key, a key twice. */
    mapq_buf_reset(&v);
    msgpack_pack_map(&pk, 2);
    msgpack_pack_int(&pk, 1);
    mapq_value_pack_str(&pk, "x");
    mapq_value_pack_str(&pk, "xs");
    mapq_pages_ref_pack(&pk, &ref);
    assert_int_equal(write_output(&v, text, sizeof(text), err), MAPQ_EINVAL);
    assert_non_null(strstr(err, "dict keys must be str"));
    mapq_buf_reset(&v);
    msgpack_pack_map(&pk, 2);
    mapq_value_pack_str(&pk, "xs");
    mapq_pages_ref_pack(&pk, &ref);
    mapq_value_pack_str(&pk, "xs");
    mapq_value_pack_str(&pk, "x");
    assert_int_equal(write_output(&v, text, sizeof(text), err), MAPQ_EINVAL);
    assert_string_equal(text, "");
    mapq_buf_release(&v);
}

/* ---- the summary of --json (mapq_cli_write_summary) ------------------ */

/* The summary s written as text (NUL-terminated), parsed back. */
static json_t *
summary_json(const struct mapq_cli_summary *s, char *text, size_t size)
{
    FILE *f = fmemopen(text, size, "w");
    char err[MAPQ_ERR_LEN];
    json_t *doc;

    assert_non_null(f);
    memset(text, 0, size);
    assert_int_equal(mapq_cli_write_summary(NULL, "ns", s, NULL, err), MAPQ_OK);
    assert_int_equal(mapq_cli_write_summary(NULL, "ns", s, f, err), MAPQ_OK);
    fclose(f);
    /* One line: the document and a newline. */
    assert_ptr_equal(strchr(text, '\n'), text + strlen(text) - 1);
    doc = json_loads(text, 0, NULL);
    assert_non_null(doc);
    return doc;
}

static void
test_cli_summary_members(void **state)
{
    static const char *const keys[] = {
        "execution",   "workflow",    "status", "created_ms",
        "finished_ms", "duration_ms", "nodes",  "output"};
    struct mapq_node_progress nodes[2] = {
        {.name = "a", .state = "succeeded", .total = 3},
        {.name = "b \"q\"\xff", .state = "waiting", .total = 0}};
    struct mapq_buf v = MAPQ_BUF_INIT;
    struct mapq_cli_summary s = {.execution = "0123456789ab",
                                 .workflow = "w",
                                 .status = "succeeded",
                                 .created_ms = 1000,
                                 .finished_ms = -1,
                                 .duration_ms = 5,
                                 .nodes = nodes,
                                 .nnodes = 2};
    msgpack_packer pk;
    char text[2048];
    const char *key;
    json_t *doc, *n, *counts, *val;
    size_t i = 0;
    int ph;

    (void)state;
    nodes[0].counts[MAPQ_PHASE_SUCCEEDED] = 2;
    nodes[0].counts[MAPQ_PHASE_TIMED_OUT] = 1;
    mapq_value_packer_init(&pk, &v);
    msgpack_pack_array(&pk, 1);
    msgpack_pack_int(&pk, 7);
    s.output = v.data;
    s.output_len = v.len;
    doc = summary_json(&s, text, sizeof(text));
    /* Every member, in the documented order; output last. */
    json_object_foreach(doc, key, val)
    {
        assert_true(i < sizeof(keys) / sizeof(keys[0]));
        assert_string_equal(key, keys[i++]);
    }
    assert_int_equal(i, sizeof(keys) / sizeof(keys[0]));
    assert_true(json_is_null(json_object_get(doc, "finished_ms")));
    assert_int_equal(json_integer_value(json_object_get(doc, "created_ms")),
                     1000);
    assert_int_equal(
        json_integer_value(json_array_get(json_object_get(doc, "output"), 0)),
        7);
    /* Nodes: a list in order, every phase counted by its JSON name. */
    n = json_array_get(json_object_get(doc, "nodes"), 0);
    assert_string_equal(json_string_value(json_object_get(n, "name")), "a");
    assert_int_equal(json_integer_value(json_object_get(n, "total")), 3);
    counts = json_object_get(n, "counts");
    assert_int_equal(json_object_size(counts), MAPQ_PHASE_COUNT);
    for (ph = 0; ph < MAPQ_PHASE_COUNT; ph++)
        assert_non_null(json_object_get(counts, mapq_cli_phase_key(ph)));
    assert_int_equal(json_integer_value(json_object_get(counts, "timed_out")),
                     1);
    assert_int_equal(json_integer_value(json_object_get(counts, "succeeded")),
                     2);
    /* A name with a quote and a byte that is not UTF-8: escaped, U+FFFD. */
    n = json_array_get(json_object_get(doc, "nodes"), 1);
    assert_string_equal(json_string_value(json_object_get(n, "name")),
                        "b \"q\"\xef\xbf\xbd");
    assert_null(json_object_get(doc, "error"));
    json_decref(doc);
    /* A failure: an error, no output. */
    s.status = "failed";
    s.output = NULL;
    s.error = "node 'a' failed: \t\"x\"";
    doc = summary_json(&s, text, sizeof(text));
    assert_string_equal(json_string_value(json_object_get(doc, "error")),
                        s.error);
    assert_null(json_object_get(doc, "output"));
    json_decref(doc);
    mapq_buf_release(&v);
}

/* ---- mapq run's progress lines (mapq_cli_progress_line) -------------- */

/* A node of 6: 3 succeeded, 1 failed, 2 held by agents. */
static void
node6(struct mapq_node_progress *p, const char *name)
{
    memset(p, 0, sizeof(*p));
    p->name = name;
    p->state = "running";
    p->total = 6;
    p->counts[MAPQ_PHASE_SUCCEEDED] = 3;
    p->counts[MAPQ_PHASE_FAILED] = 1;
    p->counts[MAPQ_PHASE_RUNNING] = 2;
}

/* The line of p at width, checked to fit in it. */
static const char *
line_at(const struct mapq_node_progress *p, int width)
{
    static char line[512];
    size_t len = mapq_cli_progress_line(p, width, line, sizeof(line));

    assert_int_equal(len, strlen(line));
    assert_true(len <= (size_t)(width > 0 ? width : 0));
    assert_null(strchr(line, '\n'));
    return line;
}

static void
test_cli_progress_line_figures_by_width(void **state)
{
    struct mapq_node_progress p;

    (void)state;
    node6(&p, "anomalies");
    /* Room for everything: the name's column, a full bar, every field. */
    assert_string_equal(line_at(&p, 200),
                        "anomalies        [################........] 3/6  "
                        "running 2  failed 1  cached 0  running");
    /* 80: the bar gives up room first; every field stays. */
    assert_string_equal(line_at(&p, 80),
                        "anomalies        [###########......] 3/6  running "
                        "2  failed 1  cached 0  running");
    /* 40: short labels, every figure. */
    assert_string_equal(line_at(&p, 40),
                        "anomalies        [###..] 3/6 r:2 f:1 c:0");
    /* 20: the name cut, no bar; done/total, running and failed stay. */
    assert_string_equal(line_at(&p, 20), "anomal.. 3/6 r:2 f:1");
}

/* Where the name before end in line was cut (its ".."), or 999. */
static long
cut_at(const char *line, const char *end)
{
    const char *c;

    for (c = line; c + 1 < end; c++)
        if (c[0] == '.' && c[1] == '.')
            return c - line;
    return 999;
}

static void
test_cli_progress_line_never_wider(void **state)
{
    static const char *const names[] = {
        "a", "exactly_16_chars", "a_node_name_much_longer_than_the_column"};
    struct mapq_node_progress p;
    const char *line, *open, *close;
    size_t i;
    int w, big;

    (void)state;
    for (big = 0; big < 2; big++)
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            node6(&p, names[i]);
            if (big) {
                p.total = 12345678901ULL;
                p.counts[MAPQ_PHASE_SUCCEEDED] = 9876543210ULL;
                p.counts[MAPQ_PHASE_RUNNING] = 1234567;
                p.counts[MAPQ_PHASE_CACHED] = 7654321;
            }
            for (w = -1; w <= 240; w++) {
                line = line_at(&p, w);
                /* done/total goes last: it is there whenever it fits
                 * beside the name cut as short as it goes (4 and ".."). */
                if (w >= (strlen(names[i]) < 6 ? (int)strlen(names[i]) : 6) +
                             (big ? 23 : 4))
                    assert_non_null(strstr(line, big ? "/12345678901" : "/6"));
                /* The bar shrank as far as it goes before the name was
                 * cut below its column of 16 (to 14 and ".."). */
                open = strchr(line, '[');
                close = strchr(line, ']');
                if (open != NULL && cut_at(line, open) < 14)
                    assert_int_equal(close - open - 1, 5);
            }
        }
    /* A long name is cut to its column even when there is room. */
    node6(&p, names[2]);
    assert_true(strncmp(line_at(&p, 200), "a_node_name_mu.. [", 18) == 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cli_operands_one_target),
        cmocka_unit_test(test_cli_operands_none),
        cmocka_unit_test(test_cli_operands_logs),
        cmocka_unit_test(test_cli_operands_cache),
        cmocka_unit_test(test_cli_priority_is_1_to_100),
        cmocka_unit_test(test_cli_run_state_table),
        cmocka_unit_test(test_cli_write_output_maps),
        cmocka_unit_test(test_cli_summary_members),
        cmocka_unit_test(test_cli_progress_line_figures_by_width),
        cmocka_unit_test(test_cli_progress_line_never_wider),
        cmocka_unit_test_setup_teardown(test_cli_run_second_ctrl_c_stops,
                                        run_setup, run_teardown),
        cmocka_unit_test_setup_teardown(test_cli_run_cancel_answer_stops,
                                        run_setup, run_teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_run_idle_driver_stops_finishing, run_setup, run_teardown),
        cmocka_unit_test_setup_teardown(
            test_cli_run_cancel_outlives_end_of_wait, run_setup, run_teardown),
    };

    return cmocka_run_group_tests_name("cli", tests, NULL, NULL);
}
