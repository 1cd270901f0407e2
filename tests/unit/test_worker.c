#include "mapq_test.h"

/*
 * test_worker.c - persistent workers with real /bin/sh scripts on a real
 * event loop: replies, errors, garbage, deaths, timeouts, kills, stderr
 * per job, output types, checkpoints, the environment and the working
 * directory, and freeing a busy worker.
 *
 * The loop reaps through a SIGCHLD evsignal that does what the agent's
 * mapq_cmd_reap() does with the worker hook: every reaped pid goes to
 * mapq_worker_reaped(). One test uses the plain mapq_cmd_reap() instead,
 * so that the worker's own waitpid meets ECHILD. The test process is a
 * child subreaper, so that grandchildren orphaned by a killed shell are
 * reaped here and can be seen to be gone. Every wait is bounded.
 */
#include <dirent.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_cmd.h"
#include "mapq_json.h"
#include "mapq_value.h"
#include "mapq_worker.h"

#define WAIT_S       10
#define GONE_POLL_MS 20
#define GONE_POLLS   250
#define NGOT         8

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
    bool plain_reap;     /* SIGCHLD: mapq_cmd_reap() alone, no worker hook */
    char root[PATH_MAX]; /* scripts and scratch files */
    char workroot[PATH_MAX]; /* root/work */
    struct mapq_workdirs *dirs;
    char script[PATH_MAX + 16];
    char reqlog[PATH_MAX + 16];
    char *argv[1];
    char *env[2];
    struct mapq_worker_spec spec;
    struct mapq_worker_job job;
    struct mapq_type *type;
    struct mapq_buf inputs; /* msgpack map packed by the test */
    msgpack_packer pk;
    msgpack_unpacked u;
    struct mapq_worker *w;
    int ndone;
    struct got got[NGOT];
    struct mapq_buf text; /* scratch */
    char err[MAPQ_ERR_LEN];
};

/* ---- fixture ---------------------------------------------------------- */

static void
worker_reaped(pid_t pid, int status)
{
    (void)mapq_worker_reaped(pid, status);
}

static void
sigchld_cb(evutil_socket_t sig, short what, void *arg)
{
    struct fx *f = arg;

    (void)sig;
    (void)what;
    if (f->plain_reap) {
        mapq_cmd_reap(NULL);
        return;
    }
    /* As the agent does: pids that are no command's go to the workers. */
    mapq_cmd_reap(worker_reaped);
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
    char tmpl[] = "/tmp/mapq-test-worker-XXXXXX";
    int i;

    *state = f;
    if (mkdtemp(tmpl) == NULL || realpath(tmpl, f->root) == NULL)
        return -1;
    snprintf(f->workroot, sizeof(f->workroot), "%.4000s/work", f->root);
    snprintf(f->script, sizeof(f->script), "%s/worker.sh", f->root);
    snprintf(f->reqlog, sizeof(f->reqlog), "%s/requests", f->root);
    if (mkdir(f->workroot, 0700) != 0)
        return -1;
    f->base = event_base_new();
    f->sigchld = evsignal_new(f->base, SIGCHLD, sigchld_cb, f);
    event_add(f->sigchld, NULL);
    f->deadline = evtimer_new(f->base, deadline_cb, f);
    mapq_buf_init(&f->inputs, 0);
    mapq_value_packer_init(&f->pk, &f->inputs);
    msgpack_unpacked_init(&f->u);
    mapq_buf_init(&f->text, 0);
    for (i = 0; i < NGOT; i++) {
        mapq_buf_init(&f->got[i].output, 0);
        mapq_buf_init(&f->got[i].stderr_tail, 0);
        mapq_buf_init(&f->got[i].checkpoint, 0);
    }
    f->argv[0] = f->script;
    f->env[0] = mapq_xasprintf("REQ=%s", f->reqlog);
    f->spec.argv = f->argv;
    f->spec.argc = 1;
    f->spec.env = f->env;
    f->spec.envc = 1;
    f->dirs = mapq_workdirs_new(f->workroot, 0, f->err);
    if (f->dirs == NULL)
        return -1;
    f->spec.dirs = f->dirs;
    f->job.execution = "exec-1";
    f->job.node = "node-a";
    f->job.index = 0;
    f->job.attempt = 2;
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

    mapq_worker_free(f->w);
    for (i = 0; i < NGOT; i++) {
        mapq_buf_release(&f->got[i].output);
        mapq_buf_release(&f->got[i].stderr_tail);
        mapq_buf_release(&f->got[i].checkpoint);
    }
    for (i = 0; i < 2; i++)
        free(f->env[i]);
    mapq_buf_release(&f->text);
    mapq_buf_release(&f->inputs);
    msgpack_unpacked_destroy(&f->u);
    mapq_type_free(f->type);
    if (f->deadline != NULL)
        event_free(f->deadline);
    if (f->sigchld != NULL)
        event_free(f->sigchld);
    if (f->base != NULL)
        event_base_free(f->base);
    mapq_workdirs_free(f->dirs);
    if (f->root[0] != '\0')
        nftw(f->root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    unsetenv("MAPQ_REDIS_URL");
    unsetenv("MAPQ_INDEX");
    unsetenv("MAPQ_TEST_EXTRA");
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
 * loop. */
static void
done_cb(struct mapq_worker *w, const struct mapq_cmd_result *res, void *arg)
{
    struct fx *f = arg;
    struct got *g = &f->got[f->ndone < NGOT ? f->ndone : NGOT - 1];

    (void)w;
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
}

/*
 * Writes the worker script: a loop that reads a request line into $line,
 * sets $i to its index and runs body, which replies. The worker is
 * created with the fixture's spec on first use.
 */
static void
set_worker(struct fx *f, const char *body)
{
    FILE *fp = fopen(f->script, "w");

    assert_non_null(fp);
    fprintf(fp,
            "#!/bin/sh\n"
            "while read -r line; do\n"
            "  i=${line#*'\"index\":'}; i=${i%%%%,*}\n"
            "  %s\n"
            "done\n",
            body);
    assert_int_equal(fclose(fp), 0);
    assert_int_equal(chmod(f->script, 0755), 0);
}

static void
set_output(struct fx *f, const char *type)
{
    mapq_type_free(f->type);
    f->type = type != NULL ? mapq_type_parse(type, f->err) : NULL;
    f->spec.output = f->type;
}

static struct mapq_worker *
worker(struct fx *f)
{
    if (f->w == NULL)
        f->w = mapq_worker_new(f->base, &f->spec);
    return f->w;
}

/* Sends f->job with index, the inputs packed so far (none: an empty map);
 * returns the worker's pid. */
static pid_t
send_job(struct fx *f, uint64_t index)
{
    int before = f->ndone;

    if (f->inputs.len == 0)
        msgpack_pack_map(&f->pk, 0);
    assert_int_equal(
        mapq_value_unpack(f->inputs.data, f->inputs.len, &f->u, f->err),
        MAPQ_OK);
    f->job.inputs = &f->u.data;
    f->job.index = index;
    assert_int_equal(mapq_worker_send(worker(f), &f->job, done_cb, f, f->err),
                     MAPQ_OK);
    assert_true(mapq_worker_busy(f->w));
    /* Never from inside mapq_worker_send(). */
    assert_int_equal(f->ndone, before);
    return mapq_worker_pid(f->w);
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
    assert_false(mapq_worker_busy(f->w));
}

/* Sends job index and waits for its result; *pid gets the worker's pid. */
static struct got *
run(struct fx *f, uint64_t index, pid_t *pid)
{
    int n = f->ndone;
    pid_t p = send_job(f, index);

    if (pid != NULL)
        *pid = p;
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

/* True once the workroot holds want entries, polled up to GONE_POLLS
 * times: directories are removed by mapq_workdirs' thread, soon after
 * their process is gone. */
static bool
workroot_holds(struct fx *f, int want)
{
    struct timespec ts = {0, GONE_POLL_MS * 1000000L};
    int i;

    for (i = 0; i < GONE_POLLS; i++) {
        if (count_entries(f) == want)
            return true;
        nanosleep(&ts, NULL);
    }
    return false;
}

/* The contents of path in f->text. */
static const char *
slurp(struct fx *f, const char *path)
{
    char chunk[4096];
    ssize_t n;
    int fd = open(path, O_RDONLY);

    assert_true(fd >= 0);
    mapq_buf_reset(&f->text);
    while ((n = read(fd, chunk, sizeof(chunk))) > 0)
        mapq_buf_append(&f->text, chunk, (size_t)n);
    close(fd);
    return f->text.data ? f->text.data : "";
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

static bool
starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static bool
ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);

    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ---- replies ---------------------------------------------------------- */

/* Replies with the request's inputs, after logging the request. */
#define ECHO_INPUTS                                            \
    "printf '%s\\n' \"$line\" >> \"$REQ\"; "                   \
    "in=${line#'{\"inputs\":'}; in=${in%%',\"execution\"'*}; " \
    "printf '{\"output\": %s}\\n' \"$in\""

static void
test_worker_reply_output_and_request_line(void **state)
{
    struct fx *f = *state;
    char prefix[PATH_MAX + 256];
    const char *req;
    struct got *g;

    set_worker(f, ECHO_INPUTS);
    set_output(f, "dict[int]");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "x");
    msgpack_pack_int(&f->pk, 3);
    g = run(f, 7, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(g->error, "");
    assert_string_equal(output_json(f, g), "{\"x\":3}");
    assert_int_equal(g->exit_status, -1); /* the process keeps running */
    assert_int_equal(g->term_signal, 0);
    assert_int_equal(g->stderr_tail.len, 0);
    assert_false(g->has_checkpoint);
    snprintf(prefix, sizeof(prefix),
             "{\"inputs\":{\"x\":3},\"execution\":\"exec-1\",\"node\":"
             "\"node-a\",\"index\":7,\"attempt\":2,\"checkpoint\":\"%s/"
             "mapq-",
             f->workroot);
    req = slurp(f, f->reqlog);
    assert_true(starts_with(req, prefix));
    assert_true(ends_with(req, "/.mapq_checkpoint\",\"deadline_ms\":null}\n"));
    assert_true(mapq_worker_pid(f->w) > 0);
}

static void
test_worker_sequential_jobs_same_pid(void **state)
{
    struct fx *f = *state;
    pid_t first = 0, pid;
    struct got *g;
    char want[8];
    int i;

    set_worker(f, "printf '{\"output\": %s}\\n' \"$i\"");
    set_output(f, "int");
    for (i = 0; i < 4; i++) {
        g = run(f, (uint64_t)i, &pid);
        if (i == 0)
            first = pid;
        assert_true(pid > 0);
        assert_int_equal(pid, first);
        assert_int_equal(mapq_worker_pid(f->w), first);
        assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
        snprintf(want, sizeof(want), "%d", i);
        assert_string_equal(output_json(f, g), want);
    }
}

static void
test_worker_deadline_sent(void **state)
{
    struct fx *f = *state;
    struct timespec now;
    int64_t before, after, got;
    struct got *g;

    set_worker(f, "d=${line#*'\"deadline_ms\":'}; d=${d%'}'}; "
                  "printf '{\"output\": %s}\\n' \"$d\"");
    set_output(f, "int");
    f->job.timeout_ms = 60000;
    clock_gettime(CLOCK_REALTIME, &now);
    before = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    g = run(f, 0, NULL);
    clock_gettime(CLOCK_REALTIME, &now);
    after = (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    got = strtoll(output_json(f, g), NULL, 10);
    assert_true(got >= before + 60000);
    assert_true(got <= after + 60000);
}

static void
test_worker_output_converted_to_type(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_worker(f, "echo '{\"output\": [1, 0.1, 1e300]}'");
    set_output(f, "list[float]");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g), "[1.0,0.1,1e300]");
}

static void
test_worker_no_output_type_gives_nil(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_worker(f, "echo '{\"output\": {\"anything\": [1]}}'");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(g->output.len, 1);
    assert_int_equal((unsigned char)g->output.data[0], 0xc0); /* nil */
}

static void
test_worker_error_reply_keeps_process(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1, p2;
    struct got *g;

    set_worker(
        f, "case $i in "
           "0) printf '%s\\n' '{\"error\": \"bad\\nthing\", \"extra\": 1}';; "
           "1) echo '{\"error\": {\"code\": 7}}';; "
           "*) echo '{\"output\": 1}';; esac");
    set_output(f, "int");
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "bad thing");
    assert_int_equal(g->exit_status, -1);
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "{\"code\":7}");
    g = run(f, 2, &p2);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(p1, p0);
    assert_int_equal(p2, p0);
}

/* ---- broken workers --------------------------------------------------- */

static void
test_worker_garbage_restarts(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1, p2;
    struct got *g;

    set_worker(f, "case $i in "
                  "0) echo 'hello world';; "
                  "1) echo '{\"output\": 1, \"error\": \"x\"}';; "
                  "*) echo '{\"output\": 2}';; esac");
    set_output(f, "int");
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error,
                        "worker wrote a line that is not a reply: 'hello "
                        "world'");
    assert_int_equal(g->term_signal, SIGKILL);
    assert_int_equal(mapq_worker_pid(f->w), -1);
    assert_true(wait_gone(f, p0));
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_true(
        starts_with(g->error, "worker wrote a line that is not a reply: "));
    assert_true(p1 > 0);
    assert_int_not_equal(p1, p0);
    g = run(f, 2, &p2);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g), "2");
    assert_int_not_equal(p2, p1);
}

static void
test_worker_exit_mid_job_restarts(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1, p2;
    struct got *g;

    set_worker(f, "case $i in "
                  "1) echo dying >&2; exit 3;; "
                  "*) echo '{\"output\": 1}';; esac");
    set_output(f, "int");
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    g = run(f, 1, &p1);
    assert_int_equal(p1, p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "worker exited with status 3");
    assert_int_equal(g->exit_status, 3);
    assert_string_equal(g->stderr_tail.data, "dying\n");
    g = run(f, 2, &p2);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_not_equal(p2, p0);
}

static void
test_worker_killed_by_signal_mid_job(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_worker(f, "kill -SEGV $$");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "worker killed by signal 11 (SIGSEGV)");
    assert_int_equal(g->term_signal, SIGSEGV);
}

static void
test_worker_status_taken_by_another_reaper(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1;
    struct got *g;

    f->plain_reap = true;
    set_worker(f, "case $i in 0) exit 3;; *) echo '{\"output\": 1}';; esac");
    set_output(f, "int");
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    /* Whichever waitpid came first. */
    assert_true(strcmp(g->error, "worker exited with status 3") == 0 ||
                strcmp(g->error, "worker exited without replying") == 0);
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_not_equal(p1, p0);
}

static void
test_worker_exits_after_reply(void **state)
{
    struct fx *f = *state;
    pid_t pids[5];
    struct got *g;
    int i;

    /* Replying, then exiting at once, is a valid way to recycle. */
    set_worker(f, "echo '{\"output\": 5}'; exit 0");
    set_output(f, "int");
    for (i = 0; i < 5; i++) {
        g = run(f, (uint64_t)i, &pids[i]);
        assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
        assert_string_equal(output_json(f, g), "5");
        if (i > 0)
            assert_int_not_equal(pids[i], pids[i - 1]);
        assert_true(wait_gone(f, pids[i]));
    }
}

/* Jobs chain_cb still sends, one from each done callback. */
static int chain_left;

/* Records like done_cb, then sends the next job from inside the callback,
 * as the agent does when a prefetched subtask waits for the slot. */
static void
chain_cb(struct mapq_worker *w, const struct mapq_cmd_result *res, void *arg)
{
    struct fx *f = arg;

    done_cb(w, res, arg);
    if (chain_left-- > 0) {
        f->job.index++;
        assert_int_equal(mapq_worker_send(w, &f->job, chain_cb, f, f->err),
                         MAPQ_OK);
    }
}

static void
test_worker_exits_after_reply_next_sent_at_once(void **state)
{
    struct fx *f = *state;
    int i;

    /* The next job goes before the exit is seen: the process that ended
     * cleanly without taking it fails nothing, a new one serves it. */
    set_worker(f, "echo '{\"output\": 5}'; exit 0");
    set_output(f, "int");
    chain_left = 3;
    msgpack_pack_map(&f->pk, 0);
    assert_int_equal(
        mapq_value_unpack(f->inputs.data, f->inputs.len, &f->u, f->err),
        MAPQ_OK);
    f->job.inputs = &f->u.data;
    f->job.index = 0;
    assert_int_equal(mapq_worker_send(worker(f), &f->job, chain_cb, f, f->err),
                     MAPQ_OK);
    wait_done(f, 4);
    for (i = 0; i < 4; i++) {
        assert_int_equal(f->got[i].status, MAPQ_CMD_SUCCEEDED);
        assert_string_equal(output_json(f, &f->got[i]), "5");
    }
}

/* Reaps pid without the loop, waiting at most WAIT_S seconds. */
static int
reap_now(pid_t pid)
{
    struct timespec tick = {0, GONE_POLL_MS * 1000000L};
    int i, st = -1;

    for (i = 0; i < WAIT_S * 1000 / GONE_POLL_MS; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return st;
        nanosleep(&tick, NULL);
    }
    return -1;
}

static void
test_worker_reply_read_when_reaped_first(void **state)
{
    struct fx *f = *state;
    struct got *g;
    pid_t pid;
    int st;

    /* The reaper reports the exit before the loop ever saw stdout: the
     * reply still in the pipe must win over the exit. */
    set_worker(f, "echo '{\"output\": 5}'; exit 0");
    set_output(f, "int");
    pid = send_job(f, 0);
    st = reap_now(pid);
    assert_true(st != -1 && WIFEXITED(st) && WEXITSTATUS(st) == 0);
    assert_true(mapq_worker_reaped(pid, st));
    assert_int_equal(f->ndone, 0); /* never from inside the hook */
    assert_false(mapq_worker_reaped(pid, st));
    wait_done(f, 1);
    g = &f->got[0];
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g), "5");
}

static void
test_worker_unsolicited_output_restarts(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1;
    struct got *g;

    set_worker(f, "echo '{\"output\": 1}'; echo '{\"output\": 2}'");
    set_output(f, "int");
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(output_json(f, g), "1");
    assert_true(wait_gone(f, p0));
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_not_equal(p1, p0);
}

static void
test_worker_reply_line_over_cap(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1;
    struct got *g;
    char want[128];

    f->spec.output_max = 16;
    set_worker(f, "case $i in "
                  "0) echo '{\"output\": \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaa\"}';; "
                  "1) head -c 70000 /dev/zero | tr '\\0' a; echo;; "
                  "*) echo '{\"output\": \"ok\"}';; esac");
    set_output(f, "str");
    /* Over output_max but within the line's slack: the value's cap. */
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "output over the size cap (16 bytes)");
    g = run(f, 1, &p1);
    assert_int_equal(p1, p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    snprintf(want, sizeof(want),
             "worker wrote a reply line over the size cap (%d bytes)",
             16 + MAPQ_WORKER_LINE_SLACK);
    assert_string_equal(g->error, want);
    assert_true(wait_gone(f, p0));
    g = run(f, 2, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_not_equal(p1, p0);
}

static void
test_worker_output_type_mismatch(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1;
    struct got *g;

    set_worker(f, "case $i in 0) echo '{\"output\": \"five\"}';; "
                  "*) echo '{\"output\": 5}';; esac");
    set_output(f, "int");
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "output: expected int, got str");
    assert_int_equal(g->output.len, 0);
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(p1, p0); /* a reply: the process keeps serving */
}

static void
test_worker_bad_inputs_fail_the_job(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1;
    struct got *g;

    set_worker(f, "echo '{\"output\": 1}'");
    set_output(f, "int");
    msgpack_pack_map(&f->pk, 1);
    mapq_value_pack_str(&f->pk, "x");
    msgpack_pack_double(&f->pk, NAN);
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_true(starts_with(g->error, "inputs[\"x\"]: "));
    mapq_buf_reset(&f->inputs);
    /* Nothing could be sent, so no process was started for it. */
    assert_int_equal(p0, -1);
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_true(p1 > 0);
}

static void
test_worker_command_not_found(void **state)
{
    struct fx *f = *state;
    struct got *g;

    snprintf(f->script, sizeof(f->script), "/nonexistent/worker");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_string_equal(g->error, "command not found: /nonexistent/worker");
    assert_int_equal(mapq_worker_pid(f->w), -1);
    assert_true(workroot_holds(f, 0));
}

/* ---- time and kills --------------------------------------------------- */

static void
test_worker_timeout_kills_group_and_restarts(void **state)
{
    struct fx *f = *state;
    char body[PATH_MAX + 128];
    pid_t p0, p1, grandchild;
    struct got *g;

    snprintf(body, sizeof(body),
             "case $i in 0) sleep 100 & echo $! > '%s/gc.pid'; wait;; "
             "*) echo '{\"output\": 1}';; esac",
             f->root);
    set_worker(f, body);
    set_output(f, "int");
    f->job.timeout_ms = 300;
    g = run(f, 0, &p0);
    assert_int_equal(g->status, MAPQ_CMD_TIMED_OUT);
    assert_string_equal(g->error, "timed out after 0.3s");
    assert_int_equal(g->term_signal, SIGKILL);
    assert_true(g->duration_ms >= 300);
    snprintf(body, sizeof(body), "%s/gc.pid", f->root);
    grandchild = read_pid(body);
    assert_true(grandchild > 0);
    assert_true(wait_gone(f, grandchild));
    assert_true(wait_gone(f, p0));
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_not_equal(p1, p0);
}

static void
test_worker_kill(void **state)
{
    struct fx *f = *state;
    pid_t p0, p1;
    struct got *g;

    set_worker(f, "case $i in 0) sleep 100;; *) echo '{\"output\": 1}';; "
                  "esac");
    set_output(f, "int");
    p0 = send_job(f, 0);
    assert_true(p0 > 0);
    mapq_worker_kill(f->w, SIGTERM);
    assert_int_equal(f->ndone, 0); /* never from inside mapq_worker_kill() */
    wait_done(f, 1);
    g = &f->got[0];
    assert_int_equal(g->status, MAPQ_CMD_KILLED);
    assert_string_equal(g->error, "killed by signal 15 (SIGTERM)");
    assert_true(wait_gone(f, p0));
    g = run(f, 1, &p1);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_not_equal(p1, p0);
}

static void
test_worker_free_with_job_pending(void **state)
{
    struct fx *f = *state;
    struct timeval tv = {0, 100 * 1000};
    pid_t pid;

    set_worker(f, "sleep 100");
    pid = send_job(f, 0);
    assert_true(pid > 0);
    assert_true(workroot_holds(f, 1));
    mapq_worker_free(f->w);
    f->w = NULL;
    assert_true(workroot_holds(f, 0));
    assert_true(wait_gone(f, pid));
    event_base_loopexit(f->base, &tv);
    event_base_dispatch(f->base);
    assert_int_equal(f->ndone, 0);
}

/* ---- stderr, checkpoint, environment ---------------------------------- */

static void
test_worker_stderr_per_job(void **state)
{
    struct fx *f = *state;
    struct got *g;
    size_t i;

    set_worker(f, "case $i in 2) head -c 200000 /dev/zero | tr '\\0' e >&2;; "
                  "*) echo \"job $i says\" >&2; echo \"and more $i\" >&2;; "
                  "esac; echo '{\"output\": null}'");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_string_equal(g->stderr_tail.data, "job 0 says\nand more 0\n");
    g = run(f, 1, NULL);
    assert_string_equal(g->stderr_tail.data, "job 1 says\nand more 1\n");
    /* Only the tail is kept. */
    g = run(f, 2, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_int_equal(g->stderr_tail.len, MAPQ_CMD_STDERR_TAIL);
    for (i = 0; i < g->stderr_tail.len; i++)
        if (g->stderr_tail.data[i] != 'e')
            fail_msg("stderr byte %zu is %d", i, g->stderr_tail.data[i]);
}

static void
test_worker_checkpoint_per_job(void **state)
{
    struct fx *f = *state;
    struct got *g;

    set_worker(f, "c=${line#*'\"checkpoint\":\"'}; c=${c%%'\"'*}; "
                  "printf def >> \"$c\"; echo '{\"output\": null}'");
    f->job.checkpoint_in = "abc";
    f->job.checkpoint_len = 3;
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    assert_true(g->has_checkpoint);
    assert_string_equal(g->checkpoint.data, "abcdef");
    /* The next job starts without the last one's file. */
    f->job.checkpoint_in = NULL;
    f->job.checkpoint_len = 0;
    g = run(f, 1, NULL);
    assert_true(g->has_checkpoint);
    assert_string_equal(g->checkpoint.data, "def");
}

static void
test_worker_environment_and_directory(void **state)
{
    struct fx *f = *state;
    char prefix[PATH_MAX + 64];
    struct got *g;

    setenv("MAPQ_REDIS_URL", "redis://:secret@host", 1);
    setenv("MAPQ_INDEX", "99", 1);
    setenv("MAPQ_TEST_EXTRA", "inherited", 1); /* the spec's wins */
    f->env[1] = mapq_xstrdup("MAPQ_TEST_EXTRA=yes");
    f->spec.envc = 2;
    set_worker(f, "echo \"$MAPQ_WORKER|$MAPQ_TEST_EXTRA|"
                  "${MAPQ_REDIS_URL-unset}|${MAPQ_INDEX-unset}|$(pwd)\" >&2; "
                  "echo '{\"output\": null}'");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    snprintf(prefix, sizeof(prefix), "1|yes|unset|unset|%s/mapq-", f->workroot);
    assert_true(starts_with(g->stderr_tail.data, prefix));
    assert_true(workroot_holds(f, 1));
    mapq_worker_free(f->w);
    f->w = NULL;
    assert_true(workroot_holds(f, 0));
}

static void
test_worker_memory_limit(void **state)
{
    struct fx *f = *state;
    struct got *g;

    f->spec.mem_bytes = 32 * 1024 * 1024;
    set_worker(f, "case $i in 0) echo '{\"output\": 1}';; "
                  "*) x=$(head -c 100000000 /dev/zero | tr '\\0' a);; esac");
    set_output(f, "int");
    g = run(f, 0, NULL);
    assert_int_equal(g->status, MAPQ_CMD_SUCCEEDED);
    g = run(f, 1, NULL);
    assert_int_equal(g->status, MAPQ_CMD_FAILED);
    assert_true(starts_with(g->error, "worker "));
    assert_true(ends_with(g->error, " (memory limit 33554432 bytes)"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(test_worker_reply_output_and_request_line),
        T(test_worker_sequential_jobs_same_pid),
        T(test_worker_deadline_sent),
        T(test_worker_output_converted_to_type),
        T(test_worker_no_output_type_gives_nil),
        T(test_worker_error_reply_keeps_process),
        T(test_worker_garbage_restarts),
        T(test_worker_exit_mid_job_restarts),
        T(test_worker_killed_by_signal_mid_job),
        T(test_worker_status_taken_by_another_reaper),
        T(test_worker_exits_after_reply),
        T(test_worker_exits_after_reply_next_sent_at_once),
        T(test_worker_reply_read_when_reaped_first),
        T(test_worker_unsolicited_output_restarts),
        T(test_worker_reply_line_over_cap),
        T(test_worker_output_type_mismatch),
        T(test_worker_bad_inputs_fail_the_job),
        T(test_worker_command_not_found),
        T(test_worker_timeout_kills_group_and_restarts),
        T(test_worker_kill),
        T(test_worker_free_with_job_pending),
        T(test_worker_stderr_per_job),
        T(test_worker_checkpoint_per_job),
        T(test_worker_environment_and_directory),
        T(test_worker_memory_limit),
#undef T
    };

    return cmocka_run_group_tests_name("worker", tests, group_setup, NULL);
}
