#include "mapq_test.h"

/*
 * test_cmd.c - command attempts with real /bin/sh processes on a real
 * event loop: inputs (stdin, environment, placeholders), outputs, errors,
 * timeouts, kills, checkpoints and the working directory.
 *
 * The loop reaps through a SIGCHLD evsignal calling mapq_cmd_reap(), as the
 * agent does. The test process is a child subreaper, so that grandchildren
 * orphaned by a killed shell are reaped here and can be seen to be gone.
 * Every wait is bounded by a deadline timer.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <ftw.h>
#include <limits.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_cmd.h"
#include "mapq_json.h"
#include "mapq_proc.h"
#include "mapq_value.h"

#define MAX_ARGS      8
#define WAIT_S        10
#define GONE_POLL_MS  20
#define GONE_POLLS    250
#define BIG_INPUT_LEN (2u * 1024 * 1024)

/* A copy of one result, taken in the done callback. */
struct got {
    enum mapq_cmd_status status;
    char error[512];
    struct mapq_buf output, stderr_tail, checkpoint;
    bool has_checkpoint;
    int exit_status, term_signal;
    int64_t duration_ms;
};

struct fx {
    struct event_base *base;
    struct event *sigchld;
    struct event *deadline;
    bool expired;
    char workroot[PATH_MAX];
    struct mapq_workdirs *dirs;
    char *argv[MAX_ARGS];
    struct mapq_cmd_spec spec;
    struct mapq_cmd_ctx ctx;
    struct mapq_type *type;
    struct mapq_buf inputs; /* msgpack map packed by the test */
    msgpack_packer pk;
    msgpack_unpacked u;
    struct mapq_cmd *cmd;     /* running, or NULL */
    struct mapq_cmd *more[3]; /* more running at once */
    int ndone;
    struct got got[4];
    struct mapq_buf text; /* scratch: rendered JSON, file contents */
    char *big;
    char *saved_path; /* PATH before a test changed it */
    char err[MAPQ_ERR_LEN];
};

/* ---- fixture ---------------------------------------------------------- */

static void
sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    (void)sig;
    (void)what;
    (void)arg;
    mapq_cmd_reap(NULL);
}

static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fx *f = arg;

    (void)fd;
    (void)what;
    f->expired = true;
    event_base_loopbreak(f->base);
}

static int
group_setup(void **state)
{
    (void)state;
    signal(SIGPIPE, SIG_IGN); /* as the agent does */
    prctl(PR_SET_CHILD_SUBREAPER, 1);
    return 0;
}

static int
setup(void **state)
{
    struct fx *f = mapq_xcalloc(1, sizeof(*f));
    char tmpl[] = "/tmp/mapq-test-cmd-XXXXXX";
    int i;

    *state = f;
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->workroot) == NULL)
        return -1;
    f->base = event_base_new();
    f->sigchld = evsignal_new(f->base, SIGCHLD, sigchld_cb, NULL);
    event_add(f->sigchld, NULL);
    f->deadline = evtimer_new(f->base, deadline_cb, f);
    mapq_buf_init(&f->inputs, 0);
    mapq_value_packer_init(&f->pk, &f->inputs);
    msgpack_unpacked_init(&f->u);
    mapq_buf_init(&f->text, 0);
    for (i = 0; i < 4; i++) {
        mapq_buf_init(&f->got[i].output, 0);
        mapq_buf_init(&f->got[i].stderr_tail, 0);
        mapq_buf_init(&f->got[i].checkpoint, 0);
    }
    f->spec.argv = f->argv;
    f->ctx.execution = "exec-1";
    f->ctx.node = "node-a";
    f->ctx.index = 7;
    f->ctx.attempt = 2;
    f->dirs = mapq_workdirs_new(f->workroot, 0, f->err);
    if (f->dirs == NULL)
        return -1;
    f->ctx.dirs = f->dirs;
    return 0;
}

static int
rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    remove(path);
    return 0;
}

static int
teardown(void **state)
{
    struct fx *f = *state;
    int i;

    mapq_cmd_free(f->cmd);
    for (i = 0; i < 3; i++)
        mapq_cmd_free(f->more[i]);
    for (i = 0; i < MAX_ARGS; i++)
        free(f->argv[i]);
    for (i = 0; i < 4; i++) {
        mapq_buf_release(&f->got[i].output);
        mapq_buf_release(&f->got[i].stderr_tail);
        mapq_buf_release(&f->got[i].checkpoint);
    }
    mapq_buf_release(&f->text);
    mapq_buf_release(&f->inputs);
    msgpack_unpacked_destroy(&f->u);
    mapq_type_free(f->type);
    free(f->big);
    if (f->deadline != NULL)
        event_free(f->deadline);
    if (f->sigchld != NULL)
        event_free(f->sigchld);
    if (f->base != NULL)
        event_base_free(f->base);
    mapq_workdirs_free(f->dirs);
    if (f->workroot[0] != '\0')
        nftw(f->workroot, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    if (f->saved_path != NULL)
        setenv("PATH", f->saved_path, 1);
    free(f->saved_path);
    mapq_proc_forget(NULL);
    unsetenv("MAPQ_TEST_INHERITED");
    unsetenv("MAPQ_IN_stale");
    unsetenv("MAPQ_REDIS_URL");
    unsetenv("MAPQ_TEST_REDIS_URL");
    unsetenv("MAPQ_NAMESPACE");
    free(f);
    return 0;
}

/* ---- helpers ---------------------------------------------------------- */

static void
copy_buf(struct mapq_buf *dst, const struct mapq_buf *src)
{
    mapq_buf_reset(dst);
    mapq_buf_append(dst, src->data ? src->data : "", src->len);
}

/* Copies the result; no asserts here, since they would jump out of the
 * loop. Frees cmd as its last statement, as the agent does. */
static void
done_cb(struct mapq_cmd *cmd, const struct mapq_cmd_result *res, void *arg)
{
    struct fx *f = arg;
    struct got *g = &f->got[f->ndone < 4 ? f->ndone : 3];
    int i;

    g->status = res->status;
    snprintf(g->error, sizeof(g->error), "%s", res->error);
    copy_buf(&g->output, &res->output);
    copy_buf(&g->stderr_tail, &res->stderr_tail);
    copy_buf(&g->checkpoint, &res->checkpoint);
    g->has_checkpoint = res->has_checkpoint;
    g->exit_status = res->exit_status;
    g->term_signal = res->term_signal;
    g->duration_ms = res->duration_ms;
    f->ndone++;
    if (f->cmd == cmd)
        f->cmd = NULL;
    for (i = 0; i < 3; i++)
        if (f->more[i] == cmd)
            f->more[i] = NULL;
    mapq_cmd_free(cmd);
}

/* argv = sh -c SCRIPT sh [ARG1], sh found on PATH. */
static void
set_sh(struct fx *f, const char *script, const char *arg1)
{
    const char *v[] = {"sh", "-c", script, "sh", arg1};
    size_t i, n = arg1 != NULL ? 5 : 4;

    for (i = 0; i < MAX_ARGS; i++) {
        free(f->argv[i]);
        f->argv[i] = i < n ? mapq_xstrdup(v[i]) : NULL;
    }
    f->spec.argc = n;
}

static void
set_output(struct fx *f, const char *type)
{
    mapq_type_free(f->type);
    f->type = type != NULL ? mapq_type_parse(type, f->err) : NULL;
    f->spec.output = f->type;
}

/* Starts f->spec with the inputs packed so far (none: an empty map). */
static void
start(struct fx *f)
{
    int before = f->ndone;

    if (f->inputs.len == 0)
        msgpack_pack_map(&f->pk, 0);
    assert_int_equal(
        mapq_value_unpack(f->inputs.data, f->inputs.len, &f->u, f->err),
        MAPQ_OK);
    f->cmd = mapq_cmd_start(f->base, &f->spec, &f->ctx, &f->u.data, done_cb, f,
                            f->err);
    assert_non_null(f->cmd);
    /* Never from inside mapq_cmd_start(). */
    assert_int_equal(f->ndone, before);
}

/* Runs the loop until want results arrived, at most WAIT_S seconds. */
static void
wait_done(struct fx *f, int want)
{
    struct timeval tv = {WAIT_S, 0};

    event_add(f->deadline, &tv);
    while (f->ndone < want && !f->expired)
        event_base_loop(f->base, EVLOOP_ONCE);
    event_del(f->deadline);
    assert_false(f->expired);
    assert_int_equal(f->ndone, want);
}

/* Starts and waits for the next result. */
static struct got *
run(struct fx *f)
{
    int n = f->ndone;

    start(f);
    wait_done(f, n + 1);
    return &f->got[n];
}

/* The output of g rendered as JSON. */
static const char *
output_json(struct fx *f, const struct got *g)
{
    mapq_buf_reset(&f->text);
    assert_int_equal(mapq_json_from_bytes(g->output.data, g->output.len,
                                          &f->text, 0, f->err),
                     MAPQ_OK);
    return f->text.data;
}

/* The output of g, which must be a str, as a C string. */
static const char *
output_str(struct fx *f, const struct got *g)
{
    const msgpack_object *o;

    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(
        mapq_value_unpack(g->output.data, g->output.len, &f->u, f->err),
        MAPQ_OK);
    o = &f->u.data;
    assert_int_equal(o->type, MSGPACK_OBJECT_STR);
    mapq_buf_reset(&f->text);
    mapq_buf_append(&f->text, o->via.str.ptr, o->via.str.size);
    return f->text.data;
}

/* True once pid no longer exists, polling the loop (which reaps). */
static bool
wait_gone(struct fx *f, pid_t pid)
{
    struct timeval tv = {0, GONE_POLL_MS * 1000};
    int i;

    for (i = 0; i < GONE_POLLS; i++) {
        if (kill(pid, 0) != 0 && errno == ESRCH)
            return true;
        event_base_loopexit(f->base, &tv);
        event_base_dispatch(f->base);
    }
    return false;
}

/* Number of entries in the workroot. */
static int
count_entries(struct fx *f)
{
    DIR *d = opendir(f->workroot);
    struct dirent *e;
    int n = 0;

    if (d == NULL)
        return -1;
    for (e = readdir(d); e != NULL; e = readdir(d))
        if (strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0)
            n++;
    closedir(d);
    return n;
}

/* Number of entries in the workroot once it is empty, or after
 * GONE_POLLS polls: directories are removed by mapq_workdirs' thread,
 * soon after their command is done. */
static int
workroot_entries(struct fx *f)
{
    struct timespec ts = {0, GONE_POLL_MS * 1000000L};
    int i, n = count_entries(f);

    for (i = 0; i < GONE_POLLS && n > 0; i++) {
        nanosleep(&ts, NULL);
        n = count_entries(f);
    }
    return n;
}

static pid_t
read_pid(const char *path)
{
    FILE *fp = fopen(path, "r");
    long pid = 0;

    if (fp != NULL) {
        if (fscanf(fp, "%ld", &pid) != 1)
            pid = 0;
        fclose(fp);
    }
    return (pid_t)pid;
}

/* ---- outputs ---------------------------------------------------------- */

static void
test_cmd_stdout_json_output(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo '{\"a\": [1, 2.5]}'", NULL);
    set_output(f, "dict[list[float]]");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(g->error, "");
    assert_int_equal(g->exit_status, 0);
    assert_int_equal(g->term_signal, 0);
    assert_string_equal(output_json(f, g), "{\"a\":[1.0,2.5]}");
}

static void
test_cmd_output_file_wins_over_stdout(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo 1; echo 2 > \"$MAPQ_OUTPUT\"", NULL);
    set_output(f, "int");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g), "2");
}

static void
test_cmd_output_text_trimmed(void **state)
{
    struct fx *f = *state;

    set_sh(f, "printf '  hello world \\n\\n'", NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    assert_string_equal(output_str(f, run(f)), "hello world");
}

static void
test_cmd_no_output_declared_ignores_stdout(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo 'not json {'", NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(g->output.len, 1);
    assert_int_equal((unsigned char)g->output.data[0], 0xc0); /* nil */
}

/* Nobody reads the stdout of a task without an output: it goes to
 * /dev/null, so that even a lot of it neither blocks the child nor costs
 * the agent a read. */
static void
test_cmd_no_output_declared_stdout_is_null(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f,
           "head -c 1000000 /dev/zero; "
           "if [ /dev/stdout -ef /dev/null ]; then echo null >&2; fi",
           NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(g->stderr_tail.data, "null\n");
}

static void
test_cmd_invalid_json_output(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo '{\"a\":'", NULL);
    set_output(f, "dict[int]");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "output is not valid JSON: line 1, column 6: "
                                  "premature end of input");
    assert_int_equal(g->output.len, 0);
}

static void
test_cmd_wrong_output_type(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo '\"x\"'", NULL);
    set_output(f, "int");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "output: expected int, got str");
    set_sh(f, "echo '[1, \"x\"]'", NULL);
    set_output(f, "list[int]");
    g = run(f);
    assert_string_equal(g->error, "output[1]: expected int, got str");
}

static void
test_cmd_no_output_when_declared(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo '  '", NULL);
    set_output(f, "list[int]");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "no output: the task declares list[int] but "
                                  "wrote nothing to $MAPQ_OUTPUT or stdout");
}

static void
test_cmd_output_over_cap(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo '\"0123456789012345678901234567890\"'", NULL);
    set_output(f, "str");
    f->spec.output_max = 16;
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "output over the size cap (16 bytes)");
}

/* ---- inputs ----------------------------------------------------------- */

static void
test_cmd_stdin_json_content(void **state)
{
    struct fx *f = *state;
    struct got *g;

    msgpack_pack_map(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "a");
    msgpack_pack_int(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "b");
    mapq_value_pack_str(&f->pk, "x y");
    mapq_value_pack_str(&f->pk, "c");
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_true(&f->pk);
    msgpack_pack_nil(&f->pk);
    set_sh(f, "cat", NULL);
    set_output(f, "any");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g),
                        "{\"a\":1,\"b\":\"x y\",\"c\":[true,null]}");
}

static void
test_cmd_env_inputs_each_kind(void **state)
{
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 11);
    mapq_value_pack_str(&f->pk, "s");
    mapq_value_pack_str(&f->pk, "hello world");
    mapq_value_pack_str(&f->pk, "i");
    msgpack_pack_int(&f->pk, -42);
    mapq_value_pack_str(&f->pk, "j");
    msgpack_pack_int64(&f->pk, INT64_MIN);
    mapq_value_pack_str(&f->pk, "p");
    msgpack_pack_int(&f->pk, 7);
    mapq_value_pack_str(&f->pk, "m");
    msgpack_pack_uint64(&f->pk, (uint64_t)INT64_MAX);
    mapq_value_pack_str(&f->pk, "f");
    msgpack_pack_double(&f->pk, 1.5);
    mapq_value_pack_str(&f->pk, "b");
    msgpack_pack_true(&f->pk);
    mapq_value_pack_str(&f->pk, "n");
    msgpack_pack_nil(&f->pk);
    mapq_value_pack_str(&f->pk, "l");
    msgpack_pack_array(&f->pk, 2);
    msgpack_pack_int(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "a");
    mapq_value_pack_str(&f->pk, "d");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "k");
    msgpack_pack_double(&f->pk, 2.0);
    mapq_value_pack_str(&f->pk, "y");
    msgpack_pack_bin(&f->pk, 2);
    msgpack_pack_bin_body(&f->pk, "hi", 2);
    set_sh(f,
           "printf '%s|' \"$MAPQ_IN_s\" \"$MAPQ_IN_i\" \"$MAPQ_IN_j\" "
           "\"$MAPQ_IN_p\" "
           "\"$MAPQ_IN_m\" \"$MAPQ_IN_f\" "
           "\"$MAPQ_IN_b\" \"$MAPQ_IN_n\" \"${MAPQ_IN_n+set}\" "
           "\"$MAPQ_IN_l\" \"$MAPQ_IN_d\" \"$MAPQ_IN_y\"",
           NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    assert_string_equal(output_str(f, run(f)),
                        "hello world|-42|-9223372036854775808|7|"
                        "9223372036854775807|1.5|true||set|"
                        "[1,\"a\"]|{\"k\":2.0}|"
                        "\"aGk=\"|");
}

static void
test_cmd_env_identity_and_paths(void **state)
{
    struct fx *f = *state;

    setenv("MAPQ_TEST_INHERITED", "yes", 1);
    setenv("MAPQ_IN_stale", "from the agent", 1);
    set_sh(f,
           "printf '%s|' \"$MAPQ_EXECUTION\" \"$MAPQ_NODE\" \"$MAPQ_INDEX\" "
           "\"$MAPQ_ATTEMPT\" \"$MAPQ_TEST_INHERITED\" "
           "\"${MAPQ_IN_stale-unset}\"; "
           "test -e \"$MAPQ_OUTPUT\" && printf 'exists|' || printf "
           "'absent|'; "
           "test \"$(dirname \"$MAPQ_OUTPUT\")\" = \"$(pwd -P)\" && "
           "printf 'output in cwd|'; "
           "test \"$(dirname \"$MAPQ_CHECKPOINT\")\" = \"$(pwd -P)\" && "
           "printf 'checkpoint in cwd|'",
           NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    assert_string_equal(output_str(f, run(f)),
                        "exec-1|node-a|7|2|yes|unset|absent|output in cwd|"
                        "checkpoint in cwd|");
}

/* A task inherits the agent's environment but nothing of its Redis
 * connection: no URL (it holds the password), no namespace. */
static void
test_cmd_env_hides_redis_url(void **state)
{
    struct fx *f = *state;

    setenv("MAPQ_TEST_INHERITED", "yes", 1);
    setenv("MAPQ_REDIS_URL", "redis://:hunter2@127.0.0.1:6379", 1);
    setenv("MAPQ_TEST_REDIS_URL", "redis://:hunter2@127.0.0.1:6379", 1);
    setenv("MAPQ_NAMESPACE", "ns", 1);
    set_sh(f,
           "printf '%s|%s|%s|%s' \"$MAPQ_TEST_INHERITED\" "
           "\"${MAPQ_REDIS_URL-unset}\" \"${MAPQ_TEST_REDIS_URL-unset}\" "
           "\"${MAPQ_NAMESPACE-unset}\"; env | grep -c hunter2 || true",
           NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    assert_string_equal(output_str(f, run(f)), "yes|unset|unset|unset0");
}

static void
test_cmd_placeholders_replaced(void **state)
{
    struct fx *f = *state;

    msgpack_pack_map(&f->pk, 3);
    mapq_value_pack_str(&f->pk, "s");
    mapq_value_pack_str(&f->pk, "a b");
    mapq_value_pack_str(&f->pk, "i");
    msgpack_pack_int(&f->pk, 7);
    mapq_value_pack_str(&f->pk, "l");
    msgpack_pack_array(&f->pk, 1);
    msgpack_pack_double(&f->pk, 0.5);
    set_sh(f, "printf '%s|' \"$@\"", "{s}");
    f->argv[5] = mapq_xstrdup("n={i}, {unknown} {l}");
    f->argv[6] = mapq_xstrdup("{{s}} {s");
    f->spec.argc = 7;
    set_output(f, "str");
    f->spec.output_text = true;
    assert_string_equal(output_str(f, run(f)),
                        "a b|n=7, {unknown} [0.5]|{a b} {s|");
}

static void
test_cmd_large_input_on_stdin(void **state)
{
    struct fx *f = *state;
    char want[64];

    /* Over the pipe buffer and over the environment limit. */
    f->big = mapq_xmalloc(BIG_INPUT_LEN);
    memset(f->big, 'x', BIG_INPUT_LEN);
    msgpack_pack_map(&f->pk, 2);
    mapq_value_pack_str(&f->pk, "big");
    msgpack_pack_str(&f->pk, BIG_INPUT_LEN);
    msgpack_pack_str_body(&f->pk, f->big, BIG_INPUT_LEN);
    mapq_value_pack_str(&f->pk, "small");
    msgpack_pack_int(&f->pk, 5);
    set_sh(f,
           "n=$(wc -c | tr -d ' '); "
           "printf '%s|%s|%s' \"$n\" \"${MAPQ_IN_big-unset}\" "
           "\"$MAPQ_IN_small\"",
           NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    /* {"big":"xxx...","small":5} */
    snprintf(want, sizeof(want), "%u|unset|5", BIG_INPUT_LEN + 20);
    assert_string_equal(output_str(f, run(f)), want);
}

/* Runs with input x = UINT64_MAX, in a list of one when nested, which no
 * JSON can hold: the attempt fails with want, after starting nothing. */
static void
assert_input_out_of_range(struct fx *f, bool nested, const char *want)
{
    struct got *g;

    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "x");
    if (nested)
        msgpack_pack_array(&f->pk, 1);
    msgpack_pack_uint64(&f->pk, UINT64_MAX);
    set_sh(f, "true", NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, want);
    assert_int_equal(workroot_entries(f), 0);
}

static void
test_cmd_bad_input_fails_async(void **state)
{
    assert_input_out_of_range(*state, true,
                              "input 'x'[0]: integer out of range: "
                              "18446744073709551615");
}

/* The same integer as the input itself, not inside a list. */
static void
test_cmd_bad_scalar_input_fails(void **state)
{
    assert_input_out_of_range(*state, false,
                              "input 'x': integer out of range: "
                              "18446744073709551615");
}

/* ---- process setup ---------------------------------------------------- */

/*
 * What the shell reports about its own process: it leads its own group,
 * no standard signal is ignored (the test ignores SIGPIPE, as the agent
 * does), and no descriptor above 2 is another copy of its stdin, stdout
 * or stderr pipes (they are close-on-exec). Its blocked signals are read
 * by grep started directly, since a shell unblocks every signal when it
 * starts.
 */
static const char child_probe[] =
    "pg=$(cut -d' ' -f5 /proc/$$/stat); "
    "[ \"$pg\" = \"$$\" ] && printf 'leader|'; "
    "ign=$(sed -n 's/^SigIgn:[[:space:]]*//p' /proc/$$/status); "
    "printf 'ign=%d|' $((0x$ign & 0x7fffffff)); "
    "t0=$(readlink /proc/$$/fd/0); t1=$(readlink /proc/$$/fd/1); "
    "t2=$(readlink /proc/$$/fd/2); "
    "for p in /proc/$$/fd/*; do n=${p##*/}; [ \"$n\" -gt 2 ] || continue; "
    "t=$(readlink \"$p\"); case \"$t\" in \"$t0\"|\"$t1\"|\"$t2\") "
    "printf 'leak %s|' \"$n\";; esac; done; printf done";
static const char child_want[] = "leader|ign=0|done";

/* argv = grep ^SigBlk: /proc/self/status: the child's own blocked set. */
static void
set_mask_probe(struct fx *f)
{
    const char *v[] = {"grep", "^SigBlk:", "/proc/self/status"};
    size_t i;

    for (i = 0; i < MAX_ARGS; i++) {
        free(f->argv[i]);
        f->argv[i] = i < 3 ? mapq_xstrdup(v[i]) : NULL;
    }
    f->spec.argc = 3;
}

static void
test_cmd_child_process_setup(void **state)
{
    struct fx *f = *state;
    sigset_t block, old;
    int limited;

    /* Signals blocked in the agent (it blocks SIGCHLD to read it from a
     * signalfd; this test's loop takes SIGCHLD through a handler, so it
     * blocks others) must not stay blocked in the child. */
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    sigprocmask(SIG_BLOCK, &block, &old);
    set_output(f, "str");
    f->spec.output_text = true;
    /* Without, then with a memory limit. */
    for (limited = 0; limited < 2; limited++) {
        f->spec.mem_bytes = limited ? 256 * 1024 * 1024 : 0;
        set_sh(f, child_probe, NULL);
        assert_string_equal(output_str(f, run(f)), child_want);
        set_mask_probe(f);
        assert_string_equal(output_str(f, run(f)), "SigBlk:\t0000000000000000");
    }
    sigprocmask(SIG_SETMASK, &old, NULL);
}

/* ---- working directory ------------------------------------------------ */

static void
test_cmd_fresh_working_dir(void **state)
{
    struct fx *f = *state;
    char first[PATH_MAX], prefix[PATH_MAX + 8];
    struct stat sb;
    const char *second;

    /* The directory is empty at start: pwd, then a listing of nothing. */
    set_sh(f, "pwd -P; ls -A", NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    snprintf(first, sizeof(first), "%s", output_str(f, run(f)));
    second = output_str(f, run(f));
    snprintf(prefix, sizeof(prefix), "%s/mapq-", f->workroot);
    assert_int_equal(strncmp(first, prefix, strlen(prefix)), 0);
    assert_int_equal(strncmp(second, prefix, strlen(prefix)), 0);
    assert_null(strchr(first, '\n'));
    assert_string_not_equal(first, second);
    assert_int_equal(workroot_entries(f), 0);
    assert_int_equal(stat(first, &sb), -1);
    assert_int_equal(errno, ENOENT);
    assert_int_equal(stat(second, &sb), -1);
}

static void
test_cmd_working_dir_removed_with_contents(void **state)
{
    struct fx *f = *state;
    struct got *g;

    /* Nested files, a symlink out of the directory and a directory the
     * task made unreadable. */
    set_sh(f,
           "mkdir -p a/b/c && echo x > a/b/c/f && ln -s / root && "
           "mkdir locked && touch locked/f && chmod 000 locked && "
           "echo \"$PWD\"",
           NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(workroot_entries(f), 0);
}

/* ---- failures --------------------------------------------------------- */

static void
test_cmd_exit_status_keeps_stderr(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "echo '[1]'; echo oops >&2; exit 3", NULL);
    set_output(f, "list[int]");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "exit status 3");
    assert_int_equal(g->exit_status, 3);
    assert_int_equal(g->term_signal, 0);
    assert_string_equal(g->stderr_tail.data, "oops\n");
    assert_int_equal(g->output.len, 0);
    assert_false(g->has_checkpoint);
}

static void
test_cmd_killed_by_signal(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "kill -9 $$", NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "killed by signal 9 (SIGKILL)");
    assert_int_equal(g->exit_status, -1);
    assert_int_equal(g->term_signal, 9);
}

static void
test_cmd_stderr_tail_truncated(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f,
           "head -c 300000 /dev/zero | tr '\\0' a >&2; printf END >&2; "
           "exit 1",
           NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_int_equal(g->stderr_tail.len, MAPQ_CMD_STDERR_TAIL);
    assert_int_equal(g->stderr_tail.data[0], 'a');
    assert_string_equal(g->stderr_tail.data + MAPQ_CMD_STDERR_TAIL - 6,
                        "aaaEND");
}

static void
test_cmd_command_not_found(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "unused", NULL);
    free(f->argv[0]);
    f->argv[0] = mapq_xstrdup("mapq-no-such-command");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "command not found: mapq-no-such-command");
    assert_int_equal(g->exit_status, -1);
    /* The same with a memory limit. */
    free(f->argv[0]);
    f->argv[0] = mapq_xstrdup("/nonexistent/mapq-no-such-command");
    f->spec.mem_bytes = 256 * 1024 * 1024;
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error,
                        "command not found: /nonexistent/mapq-no-such-command");
    assert_int_equal(workroot_entries(f), 0);
}

static char probe_stack[16 * 1024] __attribute__((aligned(16)));
static volatile int probe_seen;

/* Not instrumented: ASan warns at a call that does not return (_exit)
 * from a stack it did not make. */
__attribute__((no_sanitize("address"))) static int
probe_child(void *arg)
{
    (void)arg;
    probe_seen = 1;
    _exit(0);
}

/* Whether a child started as mapq_proc_spawn() starts one (clone() with
 * CLONE_VM | CLONE_VFORK) runs on our memory; not under valgrind, which
 * runs it as a fork. */
static bool
clone_shares_memory(void)
{
    pid_t pid;

    probe_seen = 0;
    pid = clone(probe_child, probe_stack + sizeof(probe_stack),
                CLONE_VM | CLONE_VFORK | SIGCHLD, NULL);
    assert_true(pid > 0);
    assert_int_equal(waitpid(pid, NULL, 0), pid);
    return probe_seen == 1;
}

/* Spawns path in dir, with a memory limit of mem bytes (0: none) and
 * pinned to CPU cpu (-1: not pinned); returns what the spawn returned. A
 * child that started is waited for and must have failed (its setup or
 * exec failed after the spawn returned, as under valgrind: 127, or
 * valgrind's own status). */
static int
spawn_failing(const char *path, const char *dir, int64_t mem, int cpu)
{
    char x[] = "x", *argv[] = {x, NULL}, *envp[] = {NULL};
    struct mapq_proc_child c = {path,      argv, envp, dir,
                                {0, 1, 2}, mem,  &cpu, cpu >= 0 ? 1 : 0};
    pid_t pid = -1;
    int e, status;

    e = mapq_proc_spawn(&c, &pid);
    if (e == 0) {
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_not_equal(WEXITSTATUS(status), 0);
    }
    return e;
}

/* The spawn returns the child's exec error, its chdir's, a memory limit
 * it may not set and CPUs it may not run on, and leaves no child behind;
 * where the child does not run on our memory, it fails instead. */
static void
test_cmd_spawn_returns_exec_errors(void **state)
{
    bool shares = clone_shares_memory();
    int64_t mem = 256 * 1024 * 1024;
    cpu_set_t mine;
    int cpu = 0;

    (void)state;
    assert_int_equal(sched_getaffinity(0, sizeof(mine), &mine), 0);
    while (!CPU_ISSET(cpu, &mine))
        cpu++;
    assert_int_equal(spawn_failing("/nonexistent/mapq-x", "/", 0, -1),
                     shares ? ENOENT : 0);
    assert_int_equal(spawn_failing("/nonexistent/mapq-x", "/", mem, cpu),
                     shares ? ENOENT : 0);
    assert_int_equal(spawn_failing("/bin/true", "/nonexistent", 0, -1),
                     shares ? ENOENT : 0);
    assert_int_equal(spawn_failing("/", "/", 0, -1), shares ? EACCES : 0);
    /* No CPU of the machine has that id. */
    assert_int_equal(spawn_failing("/bin/true", "/", 0, CPU_SETSIZE - 1),
                     shares ? EINVAL : 0);
    assert_int_equal(waitpid(-1, NULL, WNOHANG), -1);
    assert_int_equal(errno, ECHILD);
}

/* Makes dir under the work root and an executable tool in it that exits
 * 0; writes the tool's path into tool (PATH_MAX + 32 bytes). */
static void
make_tool(struct fx *f, const char *dir, char *tool)
{
    char d[PATH_MAX + 8];
    FILE *fp;

    snprintf(d, sizeof(d), "%s/%s", f->workroot, dir);
    assert_int_equal(mkdir(d, 0700), 0);
    snprintf(tool, PATH_MAX + 32, "%s/mapq-test-tool", d);
    fp = fopen(tool, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\nexit 0\n", fp);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(tool, 0755), 0);
}

/* A program found in a directory of PATH, or named by an absolute path,
 * is remembered and answered unchecked until forgotten; one not found is
 * not remembered, a search without memory neither reads nor fills it,
 * and another PATH forgets them all. */
static void
test_cmd_program_found_is_remembered(void **state)
{
    struct fx *f = *state;
    char one[PATH_MAX + 32], two[PATH_MAX + 32], path[3 * PATH_MAX];
    char *p = NULL;
    bool rem = true;

    make_tool(f, "one", one);
    make_tool(f, "two", two);
    assert_int_equal(unlink(two), 0);
    f->saved_path = mapq_xstrdup(getenv("PATH"));
    snprintf(path, sizeof(path), "%s/one:%s/two:%s", f->workroot, f->workroot,
             f->saved_path);
    setenv("PATH", path, 1);
    assert_int_equal(mapq_proc_find("mapq-test-tool", "/", &p, &rem), 0);
    assert_false(rem);
    assert_string_equal(p, one);
    free(p);
    assert_int_equal(mapq_proc_find("mapq-test-tool", "/", &p, &rem), 0);
    assert_true(rem);
    assert_string_equal(p, one);
    free(p);
    /* Moved: still answered from memory, unchecked, until forgotten. */
    assert_int_equal(rename(one, two), 0);
    assert_int_equal(mapq_proc_find("mapq-test-tool", "/", &p, &rem), 0);
    assert_true(rem);
    assert_string_equal(p, one);
    free(p);
    mapq_proc_forget("mapq-test-tool");
    assert_int_equal(mapq_proc_find("mapq-test-tool", "/", &p, &rem), 0);
    assert_false(rem);
    assert_string_equal(p, two);
    free(p);
    /* Not found: not remembered. */
    assert_int_equal(mapq_proc_find("mapq-no-such-tool", "/", &p, &rem),
                     ENOENT);
    assert_int_equal(mapq_proc_find("mapq-no-such-tool", "/", &p, &rem),
                     ENOENT);
    assert_false(rem);
    assert_null(p);
    /* An absolute path is remembered too; a search without memory is
     * always made. */
    assert_int_equal(mapq_proc_find(two, "/", &p, &rem), 0);
    free(p);
    assert_int_equal(mapq_proc_find(two, "/", &p, &rem), 0);
    assert_true(rem);
    free(p);
    assert_int_equal(unlink(two), 0);
    assert_int_equal(mapq_proc_find(two, "/", &p, NULL), ENOENT);
    assert_int_equal(mapq_proc_find("mapq-test-tool", "/", &p, NULL), ENOENT);
    /* Another PATH: everything found is forgotten. */
    make_tool(f, "three", one);
    snprintf(path, sizeof(path), "%s/three:%s", f->workroot, f->saved_path);
    setenv("PATH", path, 1);
    assert_int_equal(mapq_proc_find("mapq-test-tool", "/", &p, &rem), 0);
    assert_false(rem);
    assert_string_equal(p, one);
    free(p);
}

static void
test_cmd_not_executable(void **state)
{
    struct fx *f = *state;
    char path[PATH_MAX + 16], want[PATH_MAX + 64];
    FILE *fp;
    struct got *g;

    snprintf(path, sizeof(path), "%s/not-executable", f->workroot);
    fp = fopen(path, "w");
    assert_non_null(fp);
    fputs("#!/bin/sh\n", fp);
    fclose(fp);
    set_sh(f, "unused", NULL);
    free(f->argv[0]);
    f->argv[0] = mapq_xstrdup(path);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    snprintf(want, sizeof(want), "cannot execute '%s': Permission denied",
             path);
    assert_string_equal(g->error, want);
}

static void
test_cmd_memory_limit(void **state)
{
    struct fx *f = *state;
    struct got *g;

    f->spec.mem_bytes = 32 * 1024 * 1024;
    set_sh(f, "echo 5", NULL);
    set_output(f, "int");
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g), "5");
    set_sh(f, "x=$(head -c 100000000 /dev/zero | tr '\\0' a); echo 1", NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_non_null(strstr(g->error, " (memory limit 33554432 bytes)"));
}

static void
test_cmd_timeout_kills_process_group(void **state)
{
    struct fx *f = *state;
    char pidfile[PATH_MAX + 16];
    struct got *g;
    pid_t pid;

    snprintf(pidfile, sizeof(pidfile), "%s/grandchild.pid", f->workroot);
    set_sh(f, "sleep 100 & echo $! > \"$1\"; wait", pidfile);
    f->spec.timeout_ms = 300;
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_TIMED_OUT);
    assert_string_equal(g->error, "timed out after 0.3s");
    assert_int_equal(g->term_signal, SIGKILL);
    assert_true(g->duration_ms >= 300);
    pid = read_pid(pidfile);
    assert_true(pid > 0);
    assert_true(wait_gone(f, pid));
}

static void
test_cmd_kill(void **state)
{
    struct fx *f = *state;
    struct got *g;
    pid_t pid;

    set_sh(f, "sleep 100", NULL);
    start(f);
    pid = mapq_cmd_pid(f->cmd);
    assert_true(pid > 0);
    mapq_cmd_kill(f->cmd, SIGTERM);
    assert_int_equal(f->ndone, 0); /* never from inside mapq_cmd_kill() */
    wait_done(f, 1);
    g = &f->got[0];
    assert_int_equal(g->status, MAPQ_CMD_KILLED);
    assert_string_equal(g->error, "killed by signal 15 (SIGTERM)");
    assert_true(wait_gone(f, pid));
}

static void
test_cmd_free_while_running(void **state)
{
    struct fx *f = *state;
    pid_t pid;

    set_sh(f, "sleep 100", NULL);
    start(f);
    pid = mapq_cmd_pid(f->cmd);
    mapq_cmd_free(f->cmd);
    f->cmd = NULL;
    assert_int_equal(workroot_entries(f), 0);
    assert_true(wait_gone(f, pid));
    assert_int_equal(f->ndone, 0);
}

/* ---- checkpoints ------------------------------------------------------ */

static void
test_cmd_concurrent_commands(void **state)
{
    struct fx *f = *state;
    char script[64];
    int i, seen = 0;

    /* They finish in reverse order of starting. */
    set_output(f, "int");
    msgpack_pack_map(&f->pk, 0);
    assert_int_equal(
        mapq_value_unpack(f->inputs.data, f->inputs.len, &f->u, f->err),
        MAPQ_OK);
    for (i = 0; i < 3; i++) {
        snprintf(script, sizeof(script), "sleep 0.%d; echo %d", 60 - 25 * i, i);
        set_sh(f, script, NULL);
        f->more[i] = mapq_cmd_start(f->base, &f->spec, &f->ctx, &f->u.data,
                                    done_cb, f, f->err);
        assert_non_null(f->more[i]);
    }
    wait_done(f, 3);
    for (i = 0; i < 3; i++) {
        assert_int_equal(f->got[i].status, MAPQ_CMD_SUCCEEDED);
        seen |= 1 << (int)strtol(output_json(f, &f->got[i]), NULL, 10);
    }
    assert_int_equal(seen, 7);
    assert_string_equal(output_json(f, &f->got[0]), "2");
    assert_int_equal(workroot_entries(f), 0);
}

static void
test_cmd_checkpoint_round_trip(void **state)
{
    struct fx *f = *state;
    struct got *g;

    f->ctx.checkpoint_in = "state-1";
    f->ctx.checkpoint_len = 7;
    set_sh(f, "cat \"$MAPQ_CHECKPOINT\"; printf state-2 > \"$MAPQ_CHECKPOINT\"",
           NULL);
    set_output(f, "str");
    f->spec.output_text = true;
    g = run(f);
    assert_string_equal(output_str(f, g), "state-1");
    assert_true(g->has_checkpoint);
    assert_int_equal(g->checkpoint.len, 7);
    assert_memory_equal(g->checkpoint.data, "state-2", 7);
}

static void
test_cmd_checkpoint_kept_on_failure(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_sh(f, "printf partial > \"$MAPQ_CHECKPOINT\"; exit 1", NULL);
    g = run(f);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_true(g->has_checkpoint);
    assert_string_equal(g->checkpoint.data, "partial");
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_cmd_stdout_json_output),
        T(test_cmd_output_file_wins_over_stdout),
        T(test_cmd_output_text_trimmed),
        T(test_cmd_no_output_declared_ignores_stdout),
        T(test_cmd_no_output_declared_stdout_is_null),
        T(test_cmd_invalid_json_output),
        T(test_cmd_wrong_output_type),
        T(test_cmd_no_output_when_declared),
        T(test_cmd_output_over_cap),
        T(test_cmd_stdin_json_content),
        T(test_cmd_env_inputs_each_kind),
        T(test_cmd_env_identity_and_paths),
        T(test_cmd_env_hides_redis_url),
        T(test_cmd_placeholders_replaced),
        T(test_cmd_large_input_on_stdin),
        T(test_cmd_bad_input_fails_async),
        T(test_cmd_bad_scalar_input_fails),
        T(test_cmd_child_process_setup),
        T(test_cmd_fresh_working_dir),
        T(test_cmd_working_dir_removed_with_contents),
        T(test_cmd_exit_status_keeps_stderr),
        T(test_cmd_killed_by_signal),
        T(test_cmd_stderr_tail_truncated),
        T(test_cmd_command_not_found),
        T(test_cmd_spawn_returns_exec_errors),
        T(test_cmd_program_found_is_remembered),
        T(test_cmd_not_executable),
        T(test_cmd_memory_limit),
        T(test_cmd_timeout_kills_process_group),
        T(test_cmd_kill),
        T(test_cmd_free_while_running),
        T(test_cmd_concurrent_commands),
        T(test_cmd_checkpoint_round_trip),
        T(test_cmd_checkpoint_kept_on_failure),
#undef T
    };

    return cmocka_run_group_tests_name("cmd", tests, group_setup, NULL);
}
