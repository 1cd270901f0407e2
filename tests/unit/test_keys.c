/*
 * test_keys.c - every key the C side builds is spelt as docs/PROTOCOL.md's
 * key table spells it, and cache keys split back into task and hex.
 */
#include "mapq_test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_keys.h"
#include "mapq_redis.h"

#define EXEC "0123456789ab"
#define HEX  "00112233445566778899aabbccddeeff"

/* Checks a built key against the expected spelling; frees it first, so
 * a failure leaks nothing. */
static void
expect(char *got, const char *want)
{
    bool same;

    assert_non_null(got);
    same = strcmp(got, want) == 0;
    if (!same)
        print_error("got '%s', want '%s'\n", got, want);
    free(got);
    assert_true(same);
}

static int
setup_argv(void **state)
{
    struct mapq_argv *a = malloc(sizeof(*a));

    if (a == NULL)
        return -1;
    mapq_argv_init(a);
    *state = a;
    return 0;
}

static int
teardown_argv(void **state)
{
    mapq_argv_release(*state);
    free(*state);
    return 0;
}

static void
test_keys_execution_keys(void **state)
{
    (void)state;
    expect(mapq_key_exec("mapq", EXEC), "mapq:x:" EXEC);
    expect(mapq_key_execs("mapq"), "mapq:execs");
    expect(mapq_key_submitted("mapq"), "mapq:submitted");
    expect(mapq_key_owners("mapq"), "mapq:owners");
    expect(mapq_key_bodies("mapq", EXEC), "mapq:b:" EXEC);
    expect(mapq_key_log("mapq", EXEC), "mapq:log:" EXEC);
    expect(mapq_key_pages("mapq", EXEC), "mapq:pg:" EXEC);
}

static void
test_keys_node_and_epoch_numbers(void **state)
{
    (void)state;
    expect(mapq_key_results("mapq", EXEC, 0), "mapq:r:" EXEC ":0");
    expect(mapq_key_results("mapq", EXEC, 12), "mapq:r:" EXEC ":12");
    expect(mapq_key_events("mapq", EXEC, 0), "mapq:ev:" EXEC ":0");
    expect(mapq_key_events("mapq", EXEC, 9000000000LL),
           "mapq:ev:" EXEC ":9000000000");
}

static void
test_keys_agent_and_scheduler_keys(void **state)
{
    (void)state;
    expect(mapq_key_bell("mapq", "gpu", "nc"), "mapq:bell:gpu:nc");
    expect(mapq_key_bell("mapq", "default", "ip"), "mapq:bell:default:ip");
    expect(mapq_key_agents("mapq"), "mapq:agents");
    expect(mapq_key_agent("mapq", "host-42"), "mapq:agent:host-42");
    expect(mapq_key_wake("mapq", EXEC), "mapq:wake:" EXEC);
    expect(mapq_key_live("mapq", EXEC, 2, 17, 3), "mapq:live:" EXEC ":2/17/3");
    expect(mapq_key_follow("mapq"), "mapq:follow");
}

static void
test_keys_cache_keys_and_patterns(void **state)
{
    (void)state;
    expect(mapq_key_cache("mapq", "fetch", HEX), "mapq:c:fetch:" HEX);
    expect(mapq_key_cache("mapq", "*", "*"), "mapq:c:*:*");
    expect(mapq_key_cache("mapq", "fetch", "*"), "mapq:c:fetch:*");
    expect(mapq_key_all("mapq"), "mapq:*");
}

static void
test_keys_blob_keys(void **state)
{
    (void)state;
    expect(mapq_key_blob("mapq", HEX HEX), "mapq:blob:" HEX HEX);
    expect(mapq_key_blob_tmp("mapq", "0123456789abcdef"),
           "mapq:blobtmp:0123456789abcdef");
    expect(mapq_key_blob("tenant7", HEX HEX), "tenant7:blob:" HEX HEX);
}

static void
test_keys_namespace_is_the_prefix(void **state)
{
    (void)state;
    expect(mapq_key_exec("a:b c", EXEC), "a:b c:x:" EXEC);
    expect(mapq_key_submitted(""), ":submitted");
    expect(mapq_key_all("tenant7"), "tenant7:*");
}

static void
test_keys_cache_split_gives_task_and_hex(void **state)
{
    const char *task, *hex;
    size_t tlen;

    (void)state;
    assert_true(
        mapq_key_cache_split("mapq", "mapq:c:fetch:" HEX, &task, &tlen, &hex));
    assert_int_equal(tlen, 5);
    assert_memory_equal(task, "fetch", 5);
    assert_string_equal(hex, HEX);
    /* A task name may hold colons: the hex key follows the last one. */
    assert_true(
        mapq_key_cache_split("ns", "ns:c:a:b:" HEX, &task, &tlen, &hex));
    assert_int_equal(tlen, 3);
    assert_memory_equal(task, "a:b", 3);
    assert_string_equal(hex, HEX);
}

static void
test_keys_cache_split_refuses_short_keys(void **state)
{
    const char *task, *hex;
    size_t tlen;

    (void)state;
    assert_false(mapq_key_cache_split("mapq", "mapq:c:", &task, &tlen, &hex));
    assert_false(mapq_key_cache_split("mapq", "mapq:c:x", &task, &tlen, &hex));
    assert_false(mapq_key_cache_split("mapq", "mapq", &task, &tlen, &hex));
}

static void
test_keys_add_appends_and_takes_the_key(void **state)
{
    struct mapq_argv *a = *state;

    mapq_argv_add(a, "HGET");
    mapq_key_add(a, mapq_key_exec("mapq", EXEC));
    assert_int_equal(a->argc, 2);
    assert_int_equal(a->lens[1], strlen("mapq:x:" EXEC));
    assert_memory_equal(a->argv[1], "mapq:x:" EXEC, a->lens[1]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keys_execution_keys),
        cmocka_unit_test(test_keys_node_and_epoch_numbers),
        cmocka_unit_test(test_keys_agent_and_scheduler_keys),
        cmocka_unit_test(test_keys_cache_keys_and_patterns),
        cmocka_unit_test(test_keys_blob_keys),
        cmocka_unit_test(test_keys_namespace_is_the_prefix),
        cmocka_unit_test(test_keys_cache_split_gives_task_and_hex),
        cmocka_unit_test(test_keys_cache_split_refuses_short_keys),
        cmocka_unit_test_setup_teardown(test_keys_add_appends_and_takes_the_key,
                                        setup_argv, teardown_argv),
    };

    return cmocka_run_group_tests_name("keys", tests, NULL, NULL);
}
