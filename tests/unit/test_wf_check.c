/*
 * test_wf_check.c - the parts of the workflow check that scheduler/workflow/
 * shares inside itself (wf_int.h): the problem list and its hints, the one
 * zip check of `over` lists with and without bound inputs, the states of
 * an input being bound, and core schema scalars. The whole check is tested
 * through its API in test_workflow.c.
 */
#include "mapq_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wf_int.h"

#define NOVER 3

struct fx {
    struct problems probs;
    struct mapq_buf errors;
    struct mapq_binding over[NOVER];
    struct mapq_node node;
    struct mapq_buf vals[2]; /* two workflow inputs' values */
    enum wf_input_state state[2];
    struct wf_bind bd;
};

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));
    size_t i;

    if (fx == NULL)
        return -1;
    mapq_buf_init(&fx->errors, 0);
    for (i = 0; i < NOVER; i++)
        mapq_buf_init(&fx->over[i].literal, 0);
    for (i = 0; i < 2; i++)
        mapq_buf_init(&fx->vals[i], 0);
    fx->node.over = fx->over;
    fx->bd.vals = fx->vals;
    fx->bd.state = fx->state;
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    size_t i;

    wf_prob_flush(&fx->probs, false, &fx->errors);
    mapq_buf_release(&fx->errors);
    for (i = 0; i < NOVER; i++)
        mapq_buf_release(&fx->over[i].literal);
    for (i = 0; i < 2; i++)
        mapq_buf_release(&fx->vals[i]);
    free(fx);
    return 0;
}

/* Entry j of the node's `over`: param name, at line j + 1, column 5. */
static struct mapq_binding *
over_entry(struct fx *fx, size_t j, const char *param, enum mapq_ref_kind kind)
{
    struct mapq_binding *b = &fx->over[j];

    b->param = (char *)(uintptr_t)param;
    b->kind = kind;
    b->pos.line = (int)j + 1;
    b->pos.col = 5;
    if (fx->node.nover <= j)
        fx->node.nover = j + 1;
    return b;
}

/* A literal list of n small ints (msgpack fixarray). */
static void
over_literal(struct fx *fx, size_t j, const char *param, unsigned n)
{
    struct mapq_binding *b = over_entry(fx, j, param, MAPQ_REF_LITERAL);
    unsigned char v[16];
    unsigned i;

    v[0] = (unsigned char)(0x90 | n);
    for (i = 0; i < n; i++)
        v[1 + i] = (unsigned char)i;
    mapq_buf_append(&b->literal, v, 1 + n);
}

static void
over_input(struct fx *fx, size_t j, const char *param, size_t input)
{
    struct mapq_binding *b = over_entry(fx, j, param, MAPQ_REF_INPUT);

    b->ref = (char *)(uintptr_t)(input == 0 ? "a" : "b");
    b->target = input;
}

static const char *
flushed(struct fx *fx, bool sort)
{
    mapq_buf_reset(&fx->errors);
    wf_prob_flush(&fx->probs, sort, &fx->errors);
    return fx->errors.data != NULL ? fx->errors.data : "";
}

static void
test_wf_check_problems_sorted_by_position_then_order(void **state)
{
    struct fx *fx = *state;

    wf_prob_add(&fx->probs, "f.yaml", 3, 1, "third");
    wf_prob_add(&fx->probs, "f.yaml", 1, 7, "second");
    wf_prob_add(&fx->probs, "f.yaml", 1, 2, "first");
    wf_prob_add(&fx->probs, "f.yaml", 3, 1, "fourth\tline\none");
    assert_string_equal(flushed(fx, true), "f.yaml:1:2: first\n"
                                           "f.yaml:1:7: second\n"
                                           "f.yaml:3:1: third\n"
                                           "f.yaml:3:1: fourth line one\n");
    assert_int_equal(fx->probs.n, 0);
    /* Unsorted: the order found; without a position, or a file. */
    wf_prob_add(&fx->probs, "f.yaml", 9, 9, "b");
    wf_prob_add(&fx->probs, "f.yaml", 0, 0, "a");
    wf_prob_add(&fx->probs, NULL, 0, 0, "--input x: c");
    assert_string_equal(flushed(fx, false), "f.yaml:9:9: b\n"
                                            "f.yaml: a\n"
                                            "--input x: c\n");
}

static void
test_wf_check_problems_capped(void **state)
{
    struct fx *fx = *state;
    const char *out;
    int i;

    for (i = 0; i < PROBLEMS_SHOWN + 7; i++)
        wf_prob_add(&fx->probs, "f.yaml", i + 1, 1, "p%d", i);
    out = flushed(fx, true);
    assert_non_null(strstr(out, "f.yaml:50:1: p49\n"));
    assert_null(strstr(out, "p50"));
    assert_non_null(strstr(out, "f.yaml: 7 more problems not shown\n"));
    for (i = 0; i < PROBLEMS_SHOWN + 1; i++)
        wf_prob_add(&fx->probs, NULL, 0, 0, "p%d", i);
    out = flushed(fx, false);
    assert_non_null(strstr(out, "\n1 more problems not shown\n"));
}

static void
test_wf_check_hints(void **state)
{
    struct fx *fx = *state;
    const char *names[] = {"retries", "timeout", NULL, "queue"};
    struct mapq_param params[2] = {{.name = (char *)(uintptr_t) "alpha"},
                                   {.name = (char *)(uintptr_t) "beta"}};
    char buf[128];
    int i;

    assert_string_equal(wf_suggest("retires", names, 4, buf, sizeof(buf)),
                        " (did you mean 'retries'?)");
    assert_string_equal(wf_suggest("zzzzzz", names, 4, buf, sizeof(buf)), "");
    /* Too far from every name: the names are listed instead. */
    assert_string_equal(wf_hint_names(&fx->probs, "gamma", params, 2,
                                      sizeof(params[0]), "inputs", buf,
                                      sizeof(buf)),
                        " (inputs: alpha, beta)");
    assert_string_equal(
        wf_suggest_in("alpah", params, 2, sizeof(params[0]), buf, sizeof(buf)),
        " (did you mean 'alpha'?)");
    /* Past the problems shown, no hint is worked out. */
    for (i = 0; i < PROBLEMS_SHOWN; i++)
        wf_prob_add(&fx->probs, NULL, 0, 0, "p");
    assert_string_equal(wf_hint_names(&fx->probs, "alpah", params, 2,
                                      sizeof(params[0]), "inputs", buf,
                                      sizeof(buf)),
                        "");
}

static void
test_wf_check_zip_literals_at_parse(void **state)
{
    struct fx *fx = *state;

    over_literal(fx, 0, "x", 3);
    over_input(fx, 1, "y", 0); /* not known while parsing */
    over_literal(fx, 2, "z", 3);
    wf_zip_check(&fx->probs, "f.yaml", &fx->node, NULL);
    assert_int_equal(fx->probs.n, 0);
    mapq_buf_reset(&fx->over[2].literal);
    over_literal(fx, 2, "z", 2);
    wf_zip_check(&fx->probs, "f.yaml", &fx->node, NULL);
    assert_string_equal(flushed(fx, true),
                        "f.yaml:3:5: input lists have different lengths: "
                        "'x' has 3, 'z' has 2\n");
}

static void
test_wf_check_zip_inputs_at_bind(void **state)
{
    struct fx *fx = *state;
    const unsigned char two[] = {0x92, 1, 2}, four[] = {0x94, 1, 2, 3, 4};

    over_input(fx, 0, "x", 0);
    over_literal(fx, 1, "y", 2);
    over_input(fx, 2, "z", 1);
    mapq_buf_append(&fx->vals[0], two, sizeof(two));
    mapq_buf_append(&fx->vals[1], four, sizeof(four));
    /* An input bound with an error is not measured. */
    fx->state[0] = WF_IN_DEFAULT;
    fx->state[1] = WF_IN_INVALID;
    wf_zip_check(&fx->probs, "f.yaml", &fx->node, &fx->bd);
    assert_int_equal(fx->probs.n, 0);
    fx->state[1] = WF_IN_GIVEN;
    wf_zip_check(&fx->probs, "f.yaml", &fx->node, &fx->bd);
    assert_string_equal(flushed(fx, false),
                        "f.yaml:3:5: input lists have different lengths: "
                        "'x' has 2, 'z' has 4\n");
    /* A value of type any that is not a list. */
    mapq_buf_reset(&fx->vals[1]);
    mapq_buf_append(&fx->vals[1], "\x05", 1);
    wf_zip_check(&fx->probs, "f.yaml", &fx->node, &fx->bd);
    assert_string_equal(flushed(fx, false),
                        "f.yaml:3:5: cannot map over $inputs.b: its value is "
                        "not a list\n");
}

static void
test_wf_check_input_states(void **state)
{
    struct fx *fx = *state;
    struct mapq_param inputs[2] = {{.name = (char *)(uintptr_t) "a"},
                                   {.name = (char *)(uintptr_t) "b"}};
    struct mapq_workflow wf = {.inputs = inputs, .ninputs = 2};
    enum wf_input_state from, to;

    /* Only UNSET moves, and only once: to GIVEN, INVALID or DEFAULT. */
    for (from = WF_IN_UNSET; from < WF_IN_NSTATES; from++)
        for (to = WF_IN_UNSET; to < WF_IN_NSTATES; to++)
            assert_int_equal(wf_input_legal(from, to),
                             from == WF_IN_UNSET && to != WF_IN_UNSET);
    assert_false(wf_input_legal(WF_IN_NSTATES, WF_IN_GIVEN));
    fx->bd.wf = &wf;
    wf_input_set(&fx->bd, 0, WF_IN_GIVEN);
    wf_input_set(&fx->bd, 1, WF_IN_INVALID);
    assert_true(wf_input_ok(&fx->bd, 0));
    assert_false(wf_input_ok(&fx->bd, 1));
    fx->state[1] = WF_IN_UNSET;
    wf_input_set(&fx->bd, 1, WF_IN_DEFAULT);
    assert_true(wf_input_ok(&fx->bd, 1));
}

static void
test_wf_check_core_schema_scalars(void **state)
{
    struct scal v;
    char buf[96];

    (void)state;
    wf_resolve("0x1F", 4, true, &v);
    assert_int_equal(v.kind, SK_INT);
    assert_int_equal(v.i, 31);
    wf_resolve("0o17", 4, true, &v);
    assert_int_equal(v.i, 15);
    wf_resolve("-9223372036854775809", 20, true, &v);
    assert_int_equal(v.kind, SK_RANGE);
    wf_resolve("18446744073709551615", 20, true, &v);
    assert_int_equal(v.kind, SK_UINT);
    wf_resolve("1e3", 3, true, &v);
    assert_int_equal(v.kind, SK_FLOAT);
    wf_resolve("-.inf", 5, true, &v);
    assert_int_equal(v.kind, SK_FLOAT);
    wf_resolve("True", 4, true, &v);
    assert_int_equal(v.kind, SK_BOOL);
    assert_true(v.b);
    wf_resolve("~", 1, true, &v);
    assert_int_equal(v.kind, SK_NULL);
    /* Quoted, or not of the core schema: a string. */
    wf_resolve("true", 4, false, &v);
    assert_int_equal(v.kind, SK_STR);
    wf_resolve("yes", 3, true, &v);
    assert_int_equal(v.kind, SK_STR);
    wf_resolve("1_000", 5, true, &v);
    assert_int_equal(v.kind, SK_STR);
    assert_string_equal(wf_describe_text("5", 1, true, buf, sizeof(buf)), "5");
    assert_string_equal(wf_describe_text("5", 1, false, buf, sizeof(buf)),
                        "\"5\"");
    assert_string_equal(wf_describe_text("", 0, true, buf, sizeof(buf)),
                        "null");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(
            test_wf_check_problems_sorted_by_position_then_order, setup,
            teardown),
        cmocka_unit_test_setup_teardown(test_wf_check_problems_capped, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wf_check_hints, setup, teardown),
        cmocka_unit_test_setup_teardown(test_wf_check_zip_literals_at_parse,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(test_wf_check_zip_inputs_at_bind, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wf_check_input_states, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_wf_check_core_schema_scalars,
                                        setup, teardown),
    };

    return cmocka_run_group_tests_name("wf_check", tests, NULL, NULL);
}
