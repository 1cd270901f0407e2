/*
 * test_workflow.c - workflow files: the model a valid file builds, every
 * validation error with its exact FILE:LINE:COL line, YAML scalar
 * resolution, alias guards, input binding and the shipped examples.
 */
#include "mapq_test.h"

#include <glob.h>
#include <limits.h>
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_buf.h"
#include "mapq_type.h"
#include "mapq_value.h"
#include "mapq_workflow.h"

#define MAX_FILES 8

struct fx {
    struct mapq_workflow *wf;
    struct mapq_buf errors;
    struct mapq_buf out;
    struct mapq_buf text;
    char hex[4096];
    char dir[64];
    char files[MAX_FILES][PATH_MAX];
    size_t nfiles;
    glob_t g;
    bool globbed;
};

static int
setup(void **state)
{
    struct fx *fx = calloc(1, sizeof(*fx));

    if (fx == NULL)
        return -1;
    mapq_buf_init(&fx->errors, 0);
    mapq_buf_init(&fx->out, 0);
    mapq_buf_init(&fx->text, 0);
    snprintf(fx->dir, sizeof(fx->dir), "/tmp/mapq-test-wf-XXXXXX");
    if (mkdtemp(fx->dir) == NULL) {
        free(fx);
        return -1;
    }
    *state = fx;
    return 0;
}

static int
teardown(void **state)
{
    struct fx *fx = *state;
    size_t i;

    mapq_workflow_free(fx->wf);
    mapq_buf_release(&fx->errors);
    mapq_buf_release(&fx->out);
    mapq_buf_release(&fx->text);
    for (i = 0; i < fx->nfiles; i++)
        unlink(fx->files[i]);
    rmdir(fx->dir);
    if (fx->globbed)
        globfree(&fx->g);
    free(fx);
    return 0;
}

/* Parses text as "wf.yaml" into fx->wf (NULL on failure). */
static struct mapq_workflow *
parse(struct fx *fx, const char *text)
{
    mapq_workflow_free(fx->wf);
    mapq_buf_reset(&fx->errors);
    fx->wf = mapq_workflow_parse(text, strlen(text), "wf.yaml", &fx->errors);
    return fx->wf;
}

static struct mapq_workflow *
parse_ok(struct fx *fx, const char *text)
{
    if (parse(fx, text) == NULL)
        fail_msg("unexpected errors:\n%s", fx->errors.data);
    return fx->wf;
}

/* The parse fails with exactly the lines in want. */
static void
parse_fails(struct fx *fx, const char *text, const char *want)
{
    assert_null(parse(fx, text));
    assert_string_equal(fx->errors.data, want);
}

/* Lowercase hex of len bytes at p, in fx->hex. */
static const char *
hex(struct fx *fx, const void *p, size_t len)
{
    const unsigned char *b = p;
    size_t i;

    assert_true(2 * len < sizeof(fx->hex));
    for (i = 0; i < len; i++)
        snprintf(fx->hex + 2 * i, 3, "%02x", b[i]);
    fx->hex[2 * len] = '\0';
    return fx->hex;
}

static const char *
hexbuf(struct fx *fx, const struct mapq_buf *b)
{
    return hex(fx, b->data, b->len);
}

/* Writes content to DIR/name and returns the path; teardown removes it. */
static const char *
write_file(struct fx *fx, const char *name, const char *content)
{
    char *path;
    FILE *f;

    assert_true(fx->nfiles < MAX_FILES);
    path = fx->files[fx->nfiles++];
    snprintf(path, PATH_MAX, "%s/%s", fx->dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(content, f);
    fclose(f);
    return path;
}

/* Writes {"a": [S, S]} to name in the test's directory, S a string of n
 * bytes; returns its path. */
static const char *
big_list_file(struct fx *fx, const char *name, size_t n)
{
    char *path, *s = mapq_xmalloc(n + 1);
    FILE *f;

    memset(s, 'x', n);
    s[n] = '\0';
    assert_true(fx->nfiles < MAX_FILES);
    path = fx->files[fx->nfiles++];
    snprintf(path, PATH_MAX, "%s/%s", fx->dir, name);
    f = fopen(path, "w");
    assert_non_null(f);
    fprintf(f, "{\"a\": [\"%s\", \"%s\"]}", s, s);
    fclose(f);
    free(s);
    return path;
}

/* Converts YAML text with the type spelled ts (NULL: natural) into out. */
static enum mapq_err
value(struct fx *fx, const char *text, const char *ts, char *err)
{
    struct mapq_type *t = NULL;
    enum mapq_err rc;

    if (ts != NULL) {
        t = mapq_type_parse(ts, err);
        assert_non_null(t);
    }
    mapq_buf_reset(&fx->out);
    rc = mapq_workflow_yaml_value(text, strlen(text), t, "--input v", &fx->out,
                                  err);
    mapq_type_free(t);
    return rc;
}

/* The hex of text converted to type ts, which must succeed. */
static const char *
value_hex(struct fx *fx, const char *text, const char *ts)
{
    char err[MAPQ_ERR_LEN] = "";

    if (value(fx, text, ts, err) != MAPQ_OK)
        fail_msg("'%s' as %s: %s", text, ts ? ts : "natural", err);
    return hexbuf(fx, &fx->out);
}

static void
value_fails(struct fx *fx, const char *text, const char *ts, const char *want)
{
    char err[MAPQ_ERR_LEN] = "";

    assert_int_not_equal(value(fx, text, ts, err), MAPQ_OK);
    assert_string_equal(err, want);
}

static void
assert_type(const struct mapq_type *t, const char *want)
{
    char buf[128];

    assert_string_equal(mapq_type_format(t, buf, sizeof(buf)), want);
}

/* Binds inputs to fx->wf into fx->out; the errors go to fx->errors. */
static enum mapq_err
bind_in(struct fx *fx, const char *const *assigns, size_t n, const char *file)
{
    mapq_buf_reset(&fx->out);
    mapq_buf_reset(&fx->errors);
    return mapq_workflow_bind_inputs(fx->wf, assigns, n, file, &fx->out,
                                     &fx->errors);
}

/* Lines 1-14 of most workflows below; nodes follow from line 15. */
#define BASE                                              \
    "name: t\n"                                           \
    "inputs:\n"                                           \
    "  data: {type: \"list[int]\", default: [1, 2, 3]}\n" \
    "  threshold: {type: int, default: 11}\n"             \
    "tasks:\n"                                            \
    "  detect:\n"                                         \
    "    inputs: {data_point: int, threshold: int}\n"     \
    "    output: bool\n"                                  \
    "    command: [sh, -c, 'echo true']\n"                \
    "  count:\n"                                          \
    "    inputs: {flags: \"list[bool]\"}\n"               \
    "    output: int\n"                                   \
    "    command: [sh, -c, 'echo 1']\n"                   \
    "nodes:\n"

/* A valid map node, lines 15-18. */
#define DETECT_ALL                           \
    "  detect_all:\n"                        \
    "    map: detect\n"                      \
    "    over: {data_point: $inputs.data}\n" \
    "    with: {threshold: $inputs.threshold}\n"

/* A task with one int input and an int output, for short workflows. */
#define INC_TASK             \
    "  inc:\n"               \
    "    inputs: {x: int}\n" \
    "    output: int\n"      \
    "    command: [x]\n"

/* ---- the model --------------------------------------------------------- */

/* Loads examples/NAME from the source tree into fx->wf. */
static const struct mapq_workflow *
load_example(struct fx *fx, const char *name, char *path, size_t len)
{
    const char *src = getenv("MAPQ_SOURCE_DIR");

    assert_non_null(src);
    snprintf(path, len, "%s/examples/%s", src, name);
    fx->wf = mapq_workflow_load(path, &fx->errors);
    if (fx->wf == NULL)
        fail_msg("%s", fx->errors.data);
    return fx->wf;
}

static void
test_workflow_model_spec_inputs_and_tasks(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;
    const struct mapq_task_def *t;
    char path[PATH_MAX];

    wf = load_example(fx, "anomalies.yaml", path, sizeof(path));
    assert_string_equal(wf->name, "anomalies");
    assert_string_equal(wf->file, path);
    assert_int_equal(wf->system_retries, 3);
    assert_int_equal(wf->ninputs, 2);
    assert_string_equal(wf->inputs[0].name, "data");
    assert_type(wf->inputs[0].type, "list[int]");
    assert_true(wf->inputs[0].has_default);
    assert_string_equal(hexbuf(fx, &wf->inputs[0].value),
                        "9a0a0c0b0a0d0c640b0c0a");
    assert_int_equal(wf->inputs[0].pos.line, 5);
    assert_int_equal(wf->inputs[0].pos.col, 3);
    assert_string_equal(wf->inputs[1].name, "threshold");
    assert_string_equal(hexbuf(fx, &wf->inputs[1].value), "0b");

    assert_int_equal(wf->ntasks, 2);
    t = &wf->tasks[0];
    assert_string_equal(t->name, "detect");
    assert_int_equal(t->kind, MAPQ_TASK_COMMAND);
    assert_int_equal(t->ninputs, 2);
    assert_string_equal(t->inputs[0].name, "data_point");
    assert_type(t->inputs[0].type, "int");
    assert_string_equal(t->inputs[1].name, "threshold");
    assert_type(t->output, "bool");
    assert_int_equal(t->argc, 3);
    assert_string_equal(t->argv[0], "sh");
    assert_string_equal(t->argv[1], "-c");
    assert_null(t->argv[3]);
    assert_false(t->output_text);
    assert_string_equal(t->opts.queue, "default");
    assert_string_equal(t->opts.cache_version, "");
    assert_type(wf->tasks[1].inputs[0].type, "list[bool?]");
}

static void
test_workflow_model_spec_nodes(void **state)
{
    struct fx *fx = *state;
    const struct mapq_node *n;
    char path[PATH_MAX];

    n = &load_example(fx, "anomalies.yaml", path, sizeof(path))->nodes[0];
    assert_int_equal(fx->wf->nnodes, 2);
    assert_string_equal(n->name, "detect_all");
    assert_true(n->is_map);
    assert_int_equal(n->task, 0);
    assert_int_equal(n->nover, 1);
    assert_string_equal(n->over[0].param, "data_point");
    assert_int_equal(n->over[0].kind, MAPQ_REF_INPUT);
    assert_string_equal(n->over[0].ref, "data");
    assert_int_equal(n->over[0].target, 0);
    assert_int_equal(n->over[0].pos.line, 19);
    assert_int_equal(n->over[0].pos.col, 24);
    assert_int_equal(n->nwith, 1);
    assert_string_equal(n->with[0].param, "threshold");
    assert_int_equal(n->with[0].kind, MAPQ_REF_INPUT);
    assert_int_equal(n->with[0].target, 1);
    assert_int_equal(n->concurrency, 2);
    assert_true(n->min_success_ratio == 0.75);
    assert_int_equal(n->min_successes, -1);
    assert_false(n->run_all);
    assert_int_equal(n->system_retries, 3);
    assert_int_equal(n->interruptible_failures, 2);
    assert_type(n->output_type, "list[bool?]");
    assert_int_equal(n->ndeps, 0);

    n = &fx->wf->nodes[1];
    assert_string_equal(n->name, "total");
    assert_false(n->is_map);
    assert_int_equal(n->task, 1);
    assert_int_equal(n->nover, 0);
    assert_int_equal(n->with[0].kind, MAPQ_REF_NODE);
    assert_string_equal(n->with[0].ref, "detect_all");
    assert_int_equal(n->with[0].target, 0);
    assert_int_equal(n->concurrency, 0);
    assert_type(n->output_type, "int");
    assert_int_equal(n->ndeps, 1);
    assert_int_equal(n->deps[0], 0);
}

static void
test_workflow_model_spec_order_and_output(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;
    char path[PATH_MAX];

    wf = load_example(fx, "anomalies.yaml", path, sizeof(path));
    assert_int_equal(wf->order[0], 0);
    assert_int_equal(wf->order[1], 1);
    assert_false(wf->output_is_map);
    assert_int_equal(wf->noutputs, 1);
    assert_null(wf->outputs[0].param);
    assert_int_equal(wf->outputs[0].kind, MAPQ_REF_NODE);
    assert_string_equal(wf->outputs[0].ref, "total");
    assert_int_equal(wf->outputs[0].target, 1);
}

static void
test_workflow_model_opts_and_overrides(void **state)
{
    struct fx *fx = *state;
    const struct mapq_task_opts *o;

    parse_ok(fx, "name: t\n"
                 "tasks:\n"
                 "  work:\n"
                 "    inputs: {x: int}\n"
                 "    command: [x]\n"
                 "    retries: 2\n"
                 "    timeout: 30s\n"
                 "    interruptible: true\n"
                 "    cache: {version: 1, ttl: 1h}\n"
                 "    cache_serialize: true\n"
                 "    resources: {cpu: 2, mem: 512Mi}\n"
                 "    queue: gpu.big\n"
                 "    retry_backoff: {initial: 1s, factor: 3}\n"
                 "nodes:\n"
                 "  plain:\n"
                 "    map: work\n"
                 "    over: {x: [1]}\n"
                 "  tuned:\n"
                 "    map: work\n"
                 "    over: {x: [1]}\n"
                 "    retries: 5\n"
                 "    timeout: 500ms\n"
                 "    interruptible: false\n"
                 "    cache: false\n"
                 "    resources: {cpu: 0.5}\n"
                 "    queue: other\n");
    o = &fx->wf->tasks[0].opts;
    assert_int_equal(o->retries, 2);
    assert_int_equal(o->timeout_ms, 30000);
    assert_true(o->interruptible);
    assert_true(o->cache);
    assert_string_equal(o->cache_version, "1");
    assert_int_equal(o->cache_ttl_ms, 3600000);
    assert_true(o->cache_serialize);
    assert_true(o->cpu == 2.0);
    assert_int_equal(o->mem_bytes, 512 * 1024 * 1024);
    assert_string_equal(o->queue, "gpu.big");
    assert_int_equal(o->backoff_initial_ms, 1000);
    assert_int_equal(o->backoff_max_ms, 600000);
    assert_true(o->backoff_factor == 3.0);

    /* No overrides: the task's settings, as copies. */
    o = &fx->wf->nodes[0].opts;
    assert_int_equal(o->retries, 2);
    assert_true(o->cache);
    assert_string_equal(o->cache_version, "1");
    assert_ptr_not_equal(o->queue, fx->wf->tasks[0].opts.queue);
    assert_string_equal(o->queue, "gpu.big");

    /* Overrides replace whole values; the rest is the task's. */
    o = &fx->wf->nodes[1].opts;
    assert_int_equal(o->retries, 5);
    assert_int_equal(o->timeout_ms, 500);
    assert_false(o->interruptible);
    assert_false(o->cache);
    assert_string_equal(o->cache_version, "");
    assert_int_equal(o->cache_ttl_ms, 0);
    assert_true(o->cache_serialize);
    assert_true(o->cpu == 0.5);
    assert_int_equal(o->mem_bytes, 0);
    assert_string_equal(o->queue, "other");
    assert_int_equal(o->backoff_initial_ms, 1000);
}

static void
test_workflow_model_task_defaults(void **state)
{
    struct fx *fx = *state;
    const struct mapq_task_opts *o;

    parse_ok(fx, "name: t\n"
                 "tasks:\n"
                 "  work:\n"
                 "    command: [x]\n"
                 "    cache: true\n"
                 "    retry_backoff: {initial: 20m}\n"
                 "nodes:\n"
                 "  once:\n"
                 "    task: work\n");
    assert_int_equal(fx->wf->tasks[0].ninputs, 0);
    assert_null(fx->wf->tasks[0].output);
    o = &fx->wf->tasks[0].opts;
    assert_int_equal(o->retries, 0);
    assert_int_equal(o->timeout_ms, 0);
    assert_false(o->interruptible);
    assert_true(o->cache);
    assert_string_equal(o->cache_version, "");
    assert_false(o->cache_serialize);
    assert_true(o->cpu == 0);
    assert_string_equal(o->queue, "default");
    assert_true(o->backoff_factor == 2.0);
    /* max defaults to 10 minutes, or initial when that is longer. */
    assert_int_equal(o->backoff_max_ms, 20 * 60000);
    assert_null(fx->wf->nodes[0].output_type);
    assert_int_equal(fx->wf->noutputs, 0);
}

static void
test_workflow_model_literal_bytes(void **state)
{
    struct fx *fx = *state;
    const struct mapq_node *n;

    parse_ok(fx, "name: t\n"
                 "tasks:\n"
                 "  all:\n"
                 "    inputs: {i: int, f: float, s: str, b: bytes, o: bool,\n"
                 "             e: str, d: \"dict[int]\", l: \"list[str]\",\n"
                 "             n: \"int?\"}\n"
                 "    command: [x]\n"
                 "nodes:\n"
                 "  n:\n"
                 "    map: all\n"
                 "    over: {l: [[a], [1, true]], i: [11, 0x10]}\n"
                 "    with: {f: 6, s: 123, b: aGk=, o: true, e: $$HOME,\n"
                 "           d: {a: 1}, n: ~}\n");
    n = &fx->wf->nodes[0];
    assert_int_equal(n->nover, 2);
    assert_string_equal(n->over[0].param, "l");
    assert_int_equal(n->over[0].kind, MAPQ_REF_LITERAL);
    assert_null(n->over[0].ref);
    /* list of list[str]: plain scalars taken as written. */
    assert_string_equal(hexbuf(fx, &n->over[0].literal),
                        "9291a16192a131a474727565");
    assert_string_equal(hexbuf(fx, &n->over[1].literal), "920b10");
    assert_int_equal(n->nwith, 7);
    assert_string_equal(hexbuf(fx, &n->with[0].literal), "cb4018000000000000");
    assert_string_equal(hexbuf(fx, &n->with[1].literal), "a3313233");
    assert_string_equal(hexbuf(fx, &n->with[2].literal), "c4026869");
    assert_string_equal(hexbuf(fx, &n->with[3].literal), "c3");
    assert_string_equal(hexbuf(fx, &n->with[4].literal), "a524484f4d45");
    assert_string_equal(hexbuf(fx, &n->with[5].literal), "81a16101");
    assert_string_equal(hexbuf(fx, &n->with[6].literal), "c0");
}

static void
test_workflow_model_output_types(void **state)
{
    struct fx *fx = *state;

    parse_ok(fx, "name: t\n"
                 "tasks:\n" INC_TASK "  maybe:\n"
                 "    inputs: {x: int}\n"
                 "    output: int?\n"
                 "    command: [x]\n"
                 "nodes:\n"
                 "  all:\n"
                 "    map: inc\n"
                 "    over: {x: [1]}\n"
                 "  ratio:\n"
                 "    map: inc\n"
                 "    over: {x: [1]}\n"
                 "    min_success_ratio: 0.5\n"
                 "  count:\n"
                 "    map: inc\n"
                 "    over: {x: [1]}\n"
                 "    min_successes: 1\n"
                 "  full_ratio:\n"
                 "    map: inc\n"
                 "    over: {x: [1]}\n"
                 "    min_success_ratio: 1\n"
                 "  once:\n"
                 "    task: inc\n"
                 "    with: {x: 1}\n"
                 "  opt:\n"
                 "    map: maybe\n"
                 "    over: {x: [1]}\n");
    assert_type(fx->wf->nodes[0].output_type, "list[int]");
    assert_type(fx->wf->nodes[1].output_type, "list[int?]");
    assert_type(fx->wf->nodes[2].output_type, "list[int?]");
    assert_int_equal(fx->wf->nodes[2].min_successes, 1);
    assert_type(fx->wf->nodes[3].output_type, "list[int]");
    assert_type(fx->wf->nodes[4].output_type, "int");
    assert_type(fx->wf->nodes[5].output_type, "list[int?]");
}

static void
test_workflow_model_order_and_deps(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;

    /* d needs c and b, c needs a, b needs a: declared consumers first. */
    wf = parse_ok(fx, "name: t\n"
                      "tasks:\n" INC_TASK "  add:\n"
                      "    inputs: {x: int, y: int}\n"
                      "    output: int\n"
                      "    command: [x]\n"
                      "nodes:\n"
                      "  d: {task: add, with: {x: $c, y: $b}}\n"
                      "  c: {task: inc, with: {x: $a}}\n"
                      "  b: {task: add, with: {x: $a, y: $a}}\n"
                      "  a: {task: inc, with: {x: 1}}\n");
    assert_int_equal(wf->nodes[0].ndeps, 2);
    assert_int_equal(wf->nodes[0].deps[0], 1);
    assert_int_equal(wf->nodes[0].deps[1], 2);
    assert_int_equal(wf->nodes[2].ndeps, 1); /* $a twice is one dep */
    assert_int_equal(wf->nodes[3].ndeps, 0);
    assert_int_equal(wf->order[0], 3);
    assert_int_equal(wf->order[1], 1);
    assert_int_equal(wf->order[2], 2);
    assert_int_equal(wf->order[3], 0);
}

static void
test_workflow_model_output_map(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;

    wf = parse_ok(fx, BASE DETECT_ALL "output:\n"
                                      "  flags: $detect_all\n"
                                      "  limit: $inputs.threshold\n");
    assert_true(wf->output_is_map);
    assert_int_equal(wf->noutputs, 2);
    assert_string_equal(wf->outputs[0].param, "flags");
    assert_int_equal(wf->outputs[0].kind, MAPQ_REF_NODE);
    assert_int_equal(wf->outputs[0].target, 0);
    assert_string_equal(wf->outputs[1].param, "limit");
    assert_int_equal(wf->outputs[1].kind, MAPQ_REF_INPUT);
    assert_int_equal(wf->outputs[1].target, 1);
    assert_int_equal(wf->outputs[1].pos.line, 21);
    assert_int_equal(wf->outputs[1].pos.col, 10);
}

static void
test_workflow_model_plugin_library_path(void **state)
{
    static const char text[] =
        "name: t\n"
        "tasks:\n"
        "  rel:\n"
        "    plugin: {library: ./plugins/sq.so, symbol: square}\n"
        "  bare:\n"
        "    plugin: {library: sq.so, symbol: square}\n"
        "  abs:\n"
        "    plugin: {library: /opt/sq.so, symbol: square}\n";
    struct fx *fx = *state;
    char file[PATH_MAX], real[PATH_MAX], want[PATH_MAX + 32];

    snprintf(file, sizeof(file), "%s/wf.yaml", fx->dir);
    assert_non_null(realpath(fx->dir, real));
    snprintf(want, sizeof(want), "%s/plugins/sq.so", real);
    fx->wf = mapq_workflow_parse(text, strlen(text), file, &fx->errors);
    assert_non_null(fx->wf);
    assert_int_equal(fx->wf->tasks[0].kind, MAPQ_TASK_PLUGIN);
    assert_string_equal(fx->wf->tasks[0].plugin_library, want);
    assert_string_equal(fx->wf->tasks[0].plugin_symbol, "square");
    assert_null(fx->wf->tasks[0].argv);
    assert_string_equal(fx->wf->tasks[1].plugin_library, "sq.so");
    assert_string_equal(fx->wf->tasks[2].plugin_library, "/opt/sq.so");
}

static void
test_workflow_model_system_retries(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;

    wf = parse_ok(fx, "name: t\n"
                      "system_retries: 5\n"
                      "tasks:\n" INC_TASK "nodes:\n"
                      "  a: {map: inc, over: {x: [1]}}\n"
                      "  b: {map: inc, over: {x: [1]}, system_retries: 0}\n"
                      "  c: {map: inc, over: {x: [1]}, system_retries: 2,\n"
                      "      interruptible_failures: 7}\n");
    assert_int_equal(wf->system_retries, 5);
    assert_int_equal(wf->nodes[0].system_retries, 5);
    assert_int_equal(wf->nodes[0].interruptible_failures, 4);
    assert_int_equal(wf->nodes[1].system_retries, 0);
    assert_int_equal(wf->nodes[1].interruptible_failures, 0);
    assert_int_equal(wf->nodes[2].system_retries, 2);
    assert_int_equal(wf->nodes[2].interruptible_failures, 7);
}

static void
test_workflow_model_placeholders(void **state)
{
    struct fx *fx = *state;

    /* {x} names an input; {"a": 1}, {} and {1} are literal text. */
    parse_ok(fx,
             "name: t\n"
             "tasks:\n"
             "  t:\n"
             "    inputs: {x: int}\n"
             "    shell_placeholders: raw\n"
             "    command: [sh, -c, 'echo {x} {\"a\": 1} {} {1}', \"{x}\"]\n"
             "nodes:\n"
             "  n: {map: t, over: {x: [1]}}\n");
    assert_string_equal(fx->wf->tasks[0].argv[2], "echo {x} {\"a\": 1} {} {1}");
}

/* A workflow whose task t runs COMMAND (a flow sequence) with EXTRA task
 * lines, mapped over x. */
#define SHELL_WF(COMMAND, EXTRA)                                \
    "name: t\n"                                                 \
    "tasks:\n"                                                  \
    "  t:\n"                                                    \
    "    inputs: {x: str}\n" EXTRA "    command: " COMMAND "\n" \
    "nodes:\n"                                                  \
    "  n: {map: t, over: {x: [a]}}\n"

static void
test_workflow_shell_placeholders_refused(void **state)
{
    static const char *const commands[] = {
        "[sh, -c, 'echo {x}']",
        "[/bin/bash, -c, 'echo {x}']",
        "[bash, -euc, 'echo {x}', bash]",
        "[sh, -e, -c, 'echo {x}']",
        "[bash, -o, pipefail, -c, 'echo {x}']",
        "[env, A=1, dash, -c, 'echo {x}']",
        "[/usr/bin/env, -i, zsh, -c, 'echo {x}']",
        "[busybox, sh, -c, 'echo {x}']",
        "[env, -S, 'sh -c \"echo {x}\"']",
        "[env, '-Ssh -c {x}']",
        "[env, --split-string, 'prog {x}']",
    };
    struct fx *fx = *state;
    size_t i;

    for (i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
        char text[512];

        snprintf(text, sizeof(text), SHELL_WF("%s", ""), commands[i]);
        assert_null(parse(fx, text));
        assert_non_null(
            strstr(fx->errors.data, "placeholder '{x}' is inside the script"));
        assert_non_null(strstr(fx->errors.data, "\"$MAPQ_IN_x\""));
        assert_non_null(strstr(fx->errors.data, "shell_placeholders: raw"));
    }
    parse_fails(fx, SHELL_WF("[sh, -c, 'echo {x}']", ""),
                "wf.yaml:5:23: placeholder '{x}' is inside the script that "
                "'sh' runs, where its text would run as shell code; write "
                "\"$MAPQ_IN_x\" in the script instead (quoted), or set "
                "'shell_placeholders: raw' in task 't' if its inputs are "
                "trusted\n");
    /* The message names the shell, behind env too. */
    parse(fx, SHELL_WF("[env, LC_ALL=C, bash, -c, 'echo {x}']", ""));
    assert_non_null(strstr(fx->errors.data, "the script that 'bash' runs"));
    parse(fx, SHELL_WF("[env, -S, 'sh -c {x}']", ""));
    assert_non_null(strstr(fx->errors.data, "the script that 'env' runs"));
}

static void
test_workflow_shell_placeholders_allowed(void **state)
{
    struct fx *fx = *state;

    /* Outside a shell's script a placeholder stays one argument. */
    parse_ok(fx, SHELL_WF("[echo, '{x}']", ""));
    parse_ok(fx, SHELL_WF("[sh, -c, 'echo \"$1\"', sh, '{x}']", ""));
    parse_ok(fx, SHELL_WF("[sh, script.sh, '{x}']", ""));
    parse_ok(fx, SHELL_WF("[python3, -c, 'print(1)', '{x}']", ""));
    /* The safe form, and the text of braces that name no input. */
    parse_ok(fx, SHELL_WF("[sh, -c, 'echo \"$MAPQ_IN_x\" {} {1}']", ""));
    /* The task says its inputs are trusted. */
    parse_ok(fx,
             SHELL_WF("[sh, -c, 'echo {x}']", "    shell_placeholders: raw\n"));
    parse_ok(fx, SHELL_WF("[sh, -c, 'echo \"$MAPQ_IN_x\"']",
                          "    shell_placeholders: refuse\n"));
    parse_fails(
        fx, SHELL_WF("[sh, -c, 'echo {x}']", "    shell_placeholders: yes\n"),
        "wf.yaml:5:25: 'shell_placeholders' must be 'refuse' or "
        "'raw', got \"yes\"\n");
}

/* Nesting past the limit is refused while reading, long before a 400 KB
 * document would have been built. */
static void
test_workflow_yaml_too_deep_refused_early(void **state)
{
    struct fx *fx = *state;
    size_t i, n = 200000;
    char *text = mapq_xmalloc(2 * n + 1);

    for (i = 0; i < n; i++) {
        text[i] = '[';
        text[n + i] = ']';
    }
    text[2 * n] = '\0';
    mapq_buf_reset(&fx->text);
    mapq_buf_append(&fx->text, text, 2 * n);
    free(text);
    parse_fails(fx, fx->text.data,
                "wf.yaml:1:65: YAML nested more than 64 levels deep\n");
}

static void
test_workflow_yaml_too_many_values_refused(void **state)
{
    struct fx *fx = *state;
    size_t i;

    mapq_buf_reset(&fx->text);
    mapq_buf_append(&fx->text, "xs: [", 5);
    for (i = 0; i < 1300000; i++)
        mapq_buf_append(&fx->text, "1,", 2);
    mapq_buf_append(&fx->text, "1]\n", 3);
    assert_null(parse(fx, fx->text.data));
    assert_non_null(
        strstr(fx->errors.data, "YAML document has more than 1200000 values"));
}

static size_t
count_lines(const char *s)
{
    size_t n = 0;

    for (; *s != '\0'; s++)
        n += *s == '\n';
    return n;
}

/* The anchors of a flow list of n anchored scalars and then m aliases of
 * the last one, as the default of an input, in fx->text. */
static void
anchors_text(struct fx *fx, size_t n, size_t m)
{
    size_t i;

    mapq_buf_reset(&fx->text);
    mapq_buf_printf(&fx->text, "name: t\ninputs:\n  x: {type: any, default: [");
    for (i = 0; i < n; i++)
        mapq_buf_printf(&fx->text, "&a%zu %zu, ", i, i);
    for (i = 0; i < m; i++)
        mapq_buf_printf(&fx->text, "*a%zu, ", n - 1);
    mapq_buf_printf(&fx->text, "0]}\n"
                               "tasks:\n  t: {command: [echo]}\n"
                               "nodes:\n  n: {task: t}\n");
}

/*
 * libyaml's loader compares each anchor and alias with every anchor before
 * it: 50,000 anchors took seconds. The counts are capped on the event
 * stream, before the document is built; many aliases of a few anchors stay
 * cheap and are accepted.
 */
static void
test_workflow_yaml_anchors_capped(void **state)
{
    struct fx *fx = *state;

    anchors_text(fx, 1000, 10);
    parse_ok(fx, fx->text.data);
    anchors_text(fx, 1001, 0);
    parse_fails(fx, fx->text.data,
                "wf.yaml:3:10808: YAML document has more than 1000 anchors "
                "(&name)\n");
    anchors_text(fx, 100, 100000);
    assert_null(parse(fx, fx->text.data));
    assert_non_null(strstr(fx->errors.data,
                           "YAML document has too many aliases (*name) for its "
                           "100 anchors: more than 10000000 alias lookups\n"));
    assert_int_equal(count_lines(fx->errors.data), 1);
    anchors_text(fx, 1, 200000);
    parse_ok(fx, fx->text.data);
}

/* A file of many problems prints 50 and counts the rest. */
static void
test_workflow_problems_capped(void **state)
{
    struct fx *fx = *state;
    size_t i;

    mapq_buf_reset(&fx->text);
    for (i = 0; i < 1000; i++)
        mapq_buf_printf(&fx->text, "k%zu: 1\n", i);
    assert_null(parse(fx, fx->text.data));
    assert_int_equal(count_lines(fx->errors.data), 51);
    assert_non_null(strstr(fx->errors.data,
                           "wf.yaml:49:1: unknown key 'k48' at the top level\n"
                           "wf.yaml: 951 more problems not shown\n"));
}

/* A workflow file over the cap is refused by its size, before it is read;
 * a stream with no size (a device) when the cap is reached. */
static void
test_workflow_load_file_capped(void **state)
{
    struct fx *fx = *state;
    const char *file = write_file(fx, "big.yaml", "");
    char want[PATH_MAX + 64];

    assert_int_equal(truncate(file, MAPQ_WORKFLOW_FILE_MAX + 1), 0);
    assert_null(mapq_workflow_load(file, &fx->errors));
    snprintf(want, sizeof(want), "cannot read '%s': larger than 8 MiB\n", file);
    assert_string_equal(fx->errors.data, want);
    mapq_buf_reset(&fx->errors);
    assert_null(mapq_workflow_load("/dev/zero", &fx->errors));
    assert_string_equal(fx->errors.data,
                        "cannot read '/dev/zero': larger than 8 MiB\n");
    /* At the cap exactly, the file is read (and then parsed). */
    mapq_buf_reset(&fx->errors);
    assert_int_equal(truncate(file, MAPQ_WORKFLOW_FILE_MAX), 0);
    assert_int_equal(mapq_workflow_read_file(file, &fx->out, want), MAPQ_OK);
    assert_int_equal(fx->out.len, MAPQ_WORKFLOW_FILE_MAX);
    mapq_buf_release(&fx->out);
}

static void
test_workflow_model_find(void **state)
{
    struct fx *fx = *state;

    parse_ok(fx, BASE DETECT_ALL);
    assert_int_equal(mapq_workflow_find_node(fx->wf, "detect_all"), 0);
    assert_int_equal(mapq_workflow_find_node(fx->wf, "nope"), -1);
    assert_int_equal(mapq_workflow_find_task(fx->wf, "count"), 1);
    assert_int_equal(mapq_workflow_find_task(fx->wf, "nope"), -1);
    assert_int_equal(mapq_workflow_find_input(fx->wf, "threshold"), 1);
    assert_int_equal(mapq_workflow_find_input(fx->wf, "nope"), -1);
}

/* Lookups by name go through sorted indexes: with thousands of names each
 * finds its own entry, and names that are prefixes of others stay apart. */
static void
test_workflow_model_find_many(void **state)
{
    struct fx *fx = *state;
    const struct mapq_task_def *t;
    char name[32];
    size_t i, n = 3000;

    mapq_buf_reset(&fx->text);
    mapq_buf_printf(&fx->text, "name: t\ninputs:\n");
    for (i = 0; i < n; i++)
        mapq_buf_printf(&fx->text, "  i%zu: {type: int, default: %zu}\n", i, i);
    mapq_buf_printf(&fx->text, "tasks:\n  big:\n    inputs: {");
    for (i = 0; i < n; i++)
        mapq_buf_printf(&fx->text, "%sx%zu: int", i ? ", " : "", i);
    mapq_buf_printf(&fx->text, "}\n    command: [echo, '{x%zu}', '{x1}']\n",
                    n - 1);
    for (i = 0; i < n; i++)
        mapq_buf_printf(&fx->text, "  t%zu: {inputs: {x: int}, command: [x]}\n",
                        i);
    mapq_buf_printf(&fx->text, "nodes:\n");
    for (i = 0; i < n; i++)
        mapq_buf_printf(&fx->text,
                        "  n%zu: {task: t%zu, with: {x: $inputs.i%zu}}\n", i,
                        n - 1 - i, n - 1 - i);
    parse_ok(fx, fx->text.data);
    for (i = 0; i < n; i++) {
        snprintf(name, sizeof(name), "t%zu", i);
        assert_int_equal(mapq_workflow_find_task(fx->wf, name), i + 1);
        snprintf(name, sizeof(name), "n%zu", i);
        assert_int_equal(mapq_workflow_find_node(fx->wf, name), i);
        snprintf(name, sizeof(name), "i%zu", i);
        assert_int_equal(mapq_workflow_find_input(fx->wf, name), i);
        assert_int_equal(fx->wf->nodes[i].task, n - i);
        assert_string_equal(fx->wf->nodes[i].with[0].ref,
                            fx->wf->inputs[n - 1 - i].name);
    }
    assert_int_equal(mapq_workflow_find_task(fx->wf, "big"), 0);
    assert_int_equal(mapq_workflow_find_task(fx->wf, "t"), -1);
    assert_int_equal(mapq_workflow_find_task(fx->wf, "t30000"), -1);
    assert_int_equal(mapq_workflow_find_node(fx->wf, ""), -1);
    assert_int_equal(mapq_workflow_find_input(fx->wf, "i"), -1);
    t = &fx->wf->tasks[0];
    assert_int_equal(t->ninputs, n);
    assert_non_null(t->input_index);
    /* A placeholder naming no input is still found out among many. */
    mapq_buf_reset(&fx->text);
    mapq_buf_printf(&fx->text, "name: t\ntasks:\n  big:\n    inputs: {");
    for (i = 0; i < n; i++)
        mapq_buf_printf(&fx->text, "%sx%zu: int", i ? ", " : "", i);
    mapq_buf_printf(&fx->text,
                    "}\n    command: [echo, '{x%zu}']\n"
                    "nodes:\n  n: {task: big}\n",
                    n);
    assert_null(parse(fx, fx->text.data));
    assert_non_null(strstr(fx->errors.data,
                           "placeholder '{x3000}' names no input of task "
                           "'big' (did you mean 'x300'?)"));
}

static void
test_workflow_examples_parse(void **state)
{
    struct fx *fx = *state;
    const char *src = getenv("MAPQ_SOURCE_DIR");
    char pattern[PATH_MAX];
    size_t i;

    assert_non_null(src);
    snprintf(pattern, sizeof(pattern), "%s/examples/*.yaml", src);
    assert_int_equal(glob(pattern, 0, NULL, &fx->g), 0);
    fx->globbed = true;
    assert_true(fx->g.gl_pathc >= 7);
    for (i = 0; i < fx->g.gl_pathc; i++) {
        mapq_workflow_free(fx->wf);
        mapq_buf_reset(&fx->errors);
        fx->wf = mapq_workflow_load(fx->g.gl_pathv[i], &fx->errors);
        if (fx->wf == NULL)
            fail_msg("%s", fx->errors.data);
        if (bind_in(fx, NULL, 0, NULL) != MAPQ_OK)
            fail_msg("%s", fx->errors.data);
    }
}

static void
test_workflow_load_missing_file(void **state)
{
    struct fx *fx = *state;

    assert_null(mapq_workflow_load("/nonexistent/wf.yaml", &fx->errors));
    assert_string_equal(fx->errors.data,
                        "cannot read '/nonexistent/wf.yaml': No such file or "
                        "directory\n");
}

/* ---- structure errors -------------------------------------------------- */

static void
test_workflow_error_unknown_key_suggests(void **state)
{
    parse_fails(*state, BASE DETECT_ALL "    concurency: 2\n",
                "wf.yaml:19:5: unknown key 'concurency' in node 'detect_all' "
                "(did you mean 'concurrency'?)\n");
}

static void
test_workflow_error_unknown_key_everywhere(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx, "name: t\nnodse: {}\ncolour: red\n",
                "wf.yaml:2:1: unknown key 'nodse' at the top level (did you "
                "mean 'nodes'?)\n"
                "wf.yaml:3:1: unknown key 'colour' at the top level\n");
    parse_fails(fx,
                "name: t\n"
                "inputs: {x: {type: int, defualt: 1}}\n"
                "tasks:\n"
                "  t:\n"
                "    comand: [x]\n"
                "    command: [x]\n"
                "    cache: {verison: a}\n"
                "    resources: {cpus: 1}\n"
                "    plugn: {}\n",
                "wf.yaml:2:25: unknown key 'defualt' in input 'x' (did you "
                "mean 'default'?)\n"
                "wf.yaml:5:5: unknown key 'comand' in task 't' (did you mean "
                "'command'?)\n"
                "wf.yaml:7:13: unknown key 'verison' in 'cache' of task 't' "
                "(did you mean 'version'?)\n"
                "wf.yaml:8:17: unknown key 'cpus' in 'resources' of task 't' "
                "(did you mean 'cpu'?)\n"
                "wf.yaml:9:5: unknown key 'plugn' in task 't' (did you mean "
                "'plugin'?)\n");
}

static void
test_workflow_error_duplicate_key(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx, "name: t\nname: u\n",
                "wf.yaml:2:1: duplicate key 'name' at the top level\n");
    parse_fails(fx, BASE DETECT_ALL DETECT_ALL,
                "wf.yaml:19:3: duplicate key 'detect_all'\n");
}

static void
test_workflow_error_non_string_key(void **state)
{
    parse_fails(*state, "name: t\n? [a]\n: 1\n",
                "wf.yaml:2:3: keys must be strings, got a list at the top "
                "level\n");
}

static void
test_workflow_error_wrong_type_names_expected(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  t:\n"
                "    command: [x]\n"
                "    retries: three\n"
                "    interruptible: \"true\"\n"
                "    timeout: [1s]\n"
                "  u:\n"
                "    command: [x]\n"
                "    retries: -1\n"
                "    timeout: 5parsecs\n"
                "    interruptible: yes\n",
                "wf.yaml:5:14: 'retries' must be a non-negative integer, got "
                "\"three\"\n"
                "wf.yaml:6:20: 'interruptible' must be true or false, got "
                "\"true\"\n"
                "wf.yaml:7:14: 'timeout' must be a duration such as 500ms, "
                "30s, 1m30s or 2h, got a list\n"
                "wf.yaml:10:14: 'retries' must be a non-negative integer, got "
                "-1\n"
                "wf.yaml:11:14: 'timeout' must be a duration such as 500ms, "
                "30s, 1m30s or 2h, got \"5parsecs\"\n"
                "wf.yaml:12:20: 'interruptible' must be true or false, got "
                "\"yes\"\n");
}

static void
test_workflow_error_yaml_syntax(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx, "name: t\ntasks: [\n",
                "wf.yaml:3:1: invalid YAML: did not find expected node "
                "content (while parsing a flow node at 3:1)\n");
    parse_fails(fx, "name: t\ntasks: a: b\n",
                "wf.yaml:2:9: invalid YAML: mapping values are not allowed "
                "in this context\n");
    parse_fails(fx, "name: *nope\n",
                "wf.yaml:1:7: invalid YAML: found undefined alias\n");
}

static void
test_workflow_error_empty_or_many_documents(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx, "# nothing here\n", "wf.yaml:1:1: empty workflow file\n");
    parse_fails(fx, "name: a\n---\nname: b\n",
                "wf.yaml:2:1: more than one YAML document (expected one)\n");
    parse_fails(fx, "[1, 2]\n",
                "wf.yaml:1:1: a workflow must be a mapping with 'name', "
                "'tasks' and 'nodes', got a list\n");
}

static void
test_workflow_error_name(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx, "tasks: {}\n",
                "wf.yaml:1:1: missing required key 'name'\n");
    parse_fails(fx, "name: My Flow\n",
                "wf.yaml:1:7: 'name' must be a workflow name matching "
                "[a-z0-9_-]+, got \"My Flow\"\n");
}

static void
test_workflow_error_invalid_identifier(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs: {my-input: int}\n"
                "tasks:\n"
                "  9t: {command: [x]}\n"
                "nodes:\n"
                "  a.b: {task: x}\n",
                "wf.yaml:2:10: invalid input name 'my-input' (names must "
                "match [A-Za-z_][A-Za-z0-9_]*)\n"
                "wf.yaml:4:3: invalid task name '9t' (names must match "
                "[A-Za-z_][A-Za-z0-9_]*)\n"
                "wf.yaml:6:3: invalid node name 'a.b' (names must match "
                "[A-Za-z_][A-Za-z0-9_]*)\n");
}

static void
test_workflow_error_reserved_node_name(void **state)
{
    parse_fails(*state,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  inputs: {task: inc, with: {x: 1}}\n",
                "wf.yaml:8:3: node name 'inputs' is reserved ($inputs.NAME "
                "names workflow inputs)\n");
}

static void
test_workflow_error_unknown_task(void **state)
{
    parse_fails(*state,
                BASE "  a: {map: detct, over: {x: [1]}}\n"
                     "  b: {task: zzz}\n",
                "wf.yaml:15:12: unknown task 'detct' (did you mean "
                "'detect'?)\n"
                "wf.yaml:16:13: unknown task 'zzz' (tasks: detect, count)\n");
}

static void
test_workflow_error_map_or_task(void **state)
{
    parse_fails(*state,
                BASE "  a: {map: detect, task: detect}\n"
                     "  b: {with: {}}\n",
                "wf.yaml:15:20: node 'a' has both 'map' and 'task'; give "
                "exactly one\n"
                "wf.yaml:16:3: node 'b' needs 'map: TASK' or 'task: TASK'\n");
}

/* ---- references -------------------------------------------------------- */

static void
test_workflow_error_unknown_node(void **state)
{
    parse_fails(*state,
                BASE "  n:\n"
                     "    task: detect\n"
                     "    with: {data_point: 1, threshold: $nope}\n",
                "wf.yaml:17:38: unknown node 'nope'\n");
}

static void
test_workflow_error_unknown_input(void **state)
{
    parse_fails(*state,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.dta}\n"
                     "    with: {threshold: $inputs.zzz}\n",
                "wf.yaml:17:24: unknown input 'dta' (did you mean 'data'?)\n"
                "wf.yaml:18:23: unknown input 'zzz' (inputs: data, "
                "threshold)\n");
}

static void
test_workflow_error_malformed_reference(void **state)
{
    parse_fails(*state,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.}\n"
                     "    with: {threshold: \"$a.b.c\"}\n",
                "wf.yaml:17:24: malformed reference '$inputs.' (expected "
                "$inputs.NAME, $NODE or $NODE.OUTPUT; write $$ for a literal "
                "$)\n"
                "wf.yaml:18:23: malformed reference '$a.b.c' (expected "
                "$inputs.NAME, $NODE or $NODE.OUTPUT; write $$ for a literal "
                "$)\n");
}

static void
test_workflow_error_node_without_output(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n" INC_TASK "  quiet: {command: [x]}\n"
                "nodes:\n"
                "  q: {task: quiet}\n"
                "  n: {task: inc, with: {x: $q}}\n"
                "output: $q\n",
                "wf.yaml:10:28: node 'q' has no output (task 'quiet' declares "
                "none)\n"
                "wf.yaml:11:9: node 'q' has no output (task 'quiet' declares "
                "none)\n");
}

static void
test_workflow_error_output_not_reference(void **state)
{
    parse_fails(*state, BASE DETECT_ALL "output: 5\n",
                "wf.yaml:19:9: 'output' must be a reference such as $NODE or "
                "$inputs.NAME, got 5\n");
}

static void
test_workflow_error_cycle(void **state)
{
    struct fx *fx = *state;

    /* c only depends on the cycle: it is not part of it. */
    parse_fails(fx,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  c: {task: inc, with: {x: $a}}\n"
                "  b: {task: inc, with: {x: $a}}\n"
                "  a: {task: inc, with: {x: $b}}\n",
                "wf.yaml:9:3: cycle: b -> a -> b\n");
    parse_fails(fx,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  a: {task: inc, with: {x: $a}}\n"
                "  b: {task: inc, with: {x: $d}}\n"
                "  c: {task: inc, with: {x: $b}}\n"
                "  d: {task: inc, with: {x: $c}}\n",
                "wf.yaml:8:3: cycle: a -> a\n"
                "wf.yaml:9:3: cycle: b -> d -> c -> b\n");
}

/* ---- bindings and types ------------------------------------------------ */

static void
test_workflow_error_list_to_scalar(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.data}\n"
                     "    with: {threshold: $inputs.data}\n",
                "wf.yaml:18:23: binding a list to scalar parameter "
                "'threshold' (int); map over it with 'over' instead\n");
    parse_fails(fx,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.data}\n"
                     "    with: {threshold: [1, 2]}\n",
                "wf.yaml:18:23: binding a list to scalar parameter "
                "'threshold' (int); map over it with 'over' instead\n");
}

static void
test_workflow_error_optional_list_into_list(void **state)
{
    parse_fails(*state,
                BASE DETECT_ALL "    min_success_ratio: 0.5\n"
                                "  total:\n"
                                "    task: count\n"
                                "    with: {flags: $detect_all}\n",
                "wf.yaml:22:19: cannot bind $detect_all (list[bool?]) to "
                "parameter 'flags' (list[bool])\n");
}

static void
test_workflow_error_with_type_mismatch(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs: {s: str}\n"
                "tasks:\n" INC_TASK "nodes:\n"
                "  n: {task: inc, with: {x: $inputs.s}}\n"
                "  m: {task: inc, with: {x: abc}}\n",
                "wf.yaml:9:28: cannot bind $inputs.s (str) to parameter 'x' "
                "(int)\n"
                "wf.yaml:10:28: 'x': expected int, got \"abc\"\n");
}

static void
test_workflow_error_over_not_list(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.threshold}\n"
                     "    with: {threshold: 1}\n",
                "wf.yaml:17:24: cannot map over $inputs.threshold: it is int, "
                "not a list\n");
    parse_fails(fx,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: 5}\n"
                     "    with: {threshold: 1}\n",
                "wf.yaml:17:24: 'data_point': expected list[int], got 5\n");
}

static void
test_workflow_error_over_element_type(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs: {names: \"list[str]\", maybe: \"list[int?]\"}\n"
                "tasks:\n" INC_TASK "nodes:\n"
                "  a: {map: inc, over: {x: $inputs.names}}\n"
                "  b: {map: inc, over: {x: $inputs.maybe}}\n",
                "wf.yaml:9:27: cannot map $inputs.names (list[str]) over "
                "parameter 'x' (int)\n"
                "wf.yaml:10:27: cannot map $inputs.maybe (list[int?]) over "
                "parameter 'x' (int)\n");
}

static void
test_workflow_error_unbound_param(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.data}\n",
                "wf.yaml:15:3: input 'threshold' of task 'detect' is not "
                "bound in node 'n'; add it to 'over' or 'with'\n");
    parse_fails(fx, BASE "  n: {task: count}\n",
                "wf.yaml:15:3: input 'flags' of task 'count' is not bound in "
                "node 'n'; add it to 'with'\n");
}

static void
test_workflow_error_bound_twice(void **state)
{
    parse_fails(*state,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.data}\n"
                     "    with: {threshold: 1, data_point: 2}\n",
                "wf.yaml:18:26: input 'data_point' of task 'detect' is bound "
                "twice, in 'over' and in 'with'\n");
}

static void
test_workflow_error_unknown_param(void **state)
{
    parse_fails(*state,
                BASE "  n:\n"
                     "    map: detect\n"
                     "    over: {data_point: $inputs.data}\n"
                     "    with: {treshold: 1, zzz: 2}\n",
                "wf.yaml:15:3: input 'threshold' of task 'detect' is not "
                "bound in node 'n'; add it to 'over' or 'with'\n"
                "wf.yaml:18:12: task 'detect' has no input 'treshold' (did "
                "you mean 'threshold'?)\n"
                "wf.yaml:18:25: task 'detect' has no input 'zzz' (inputs: "
                "data_point, threshold)\n");
}

static void
test_workflow_error_map_without_over(void **state)
{
    struct fx *fx = *state;

    parse_fails(fx,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  n: {map: inc, with: {x: 1}}\n",
                "wf.yaml:8:3: map node 'n' needs at least one 'over' entry "
                "(a list to map over)\n");
    parse_fails(fx,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  n: {map: inc, over: {}, with: {x: 1}}\n",
                "wf.yaml:8:17: map node 'n' needs at least one 'over' entry "
                "(a list to map over)\n");
}

static void
test_workflow_error_task_node_with_over(void **state)
{
    parse_fails(*state,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  n: {task: inc, over: {x: [1]}}\n",
                "wf.yaml:8:3: input 'x' of task 'inc' is not bound in node "
                "'n'; add it to 'with'\n"
                "wf.yaml:8:18: 'over' is only allowed in map nodes; node 'n' "
                "is a task node\n");
}

static void
test_workflow_error_map_only_settings(void **state)
{
    parse_fails(*state,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  n:\n"
                "    task: inc\n"
                "    with: {x: 1}\n"
                "    min_success_ratio: 0.5\n"
                "    min_successes: 1\n"
                "    run_all: true\n",
                "wf.yaml:11:5: 'min_success_ratio' is only allowed in map "
                "nodes; node 'n' is a task node\n"
                "wf.yaml:12:5: 'min_successes' is only allowed in map nodes; "
                "node 'n' is a task node\n"
                "wf.yaml:13:5: 'run_all' is only allowed in map nodes; node "
                "'n' is a task node\n");
}

static void
test_workflow_error_zip_literal_lengths(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  add:\n"
                "    inputs: {a: int, b: int}\n"
                "    command: [x]\n"
                "nodes:\n"
                "  n:\n"
                "    map: add\n"
                "    over: {a: [1, 2, 3, 4, 5], b: [1, 2, 3, 4]}\n",
                "wf.yaml:9:35: input lists have different lengths: 'a' has "
                "5, 'b' has 4\n");
}

static void
test_workflow_error_node_settings_ranges(void **state)
{
    parse_fails(*state,
                "name: t\ntasks:\n" INC_TASK "nodes:\n"
                "  n:\n"
                "    map: inc\n"
                "    over: {x: [1]}\n"
                "    concurrency: 0\n"
                "    min_success_ratio: 1.5\n"
                "    min_successes: -1\n"
                "    run_all: 1\n"
                "    system_retries: 99999999999\n"
                "    interruptible_failures: -2\n",
                "wf.yaml:11:18: 'concurrency' must be an integer >= 1, got "
                "0\n"
                "wf.yaml:12:24: 'min_success_ratio' must be a number between 0 "
                "and 1, got 1.5\n"
                "wf.yaml:13:20: 'min_successes' must be a non-negative "
                "integer, got -1\n"
                "wf.yaml:14:14: 'run_all' must be true or false, got 1\n"
                "wf.yaml:15:21: 'system_retries' is too large (at most "
                "2147483647), got 99999999999\n"
                "wf.yaml:16:29: 'interruptible_failures' must be a "
                "non-negative integer, got -2\n");
}

/* ---- tasks ------------------------------------------------------------- */

static void
test_workflow_error_command_or_plugin(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  both:\n"
                "    command: [x]\n"
                "    plugin: {library: a.so, symbol: f}\n"
                "  neither:\n"
                "    inputs: {}\n"
                "  half:\n"
                "    plugin: {library: a.so}\n",
                "wf.yaml:5:5: task 'both' has both 'command' and 'plugin'; "
                "give exactly one\n"
                "wf.yaml:6:3: task 'neither' needs 'command' or 'plugin'\n"
                "wf.yaml:9:5: 'plugin' of task 'half' needs 'symbol'\n");
}

static void
test_workflow_error_plugin_outputs_files(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  one:\n"
                "    plugin: {library: a.so, symbol: f}\n"
                "    output: file\n"
                "  many:\n"
                "    plugin: {library: a.so, symbol: f}\n"
                "    outputs: {n: int, trees: \"list[dir]\"}\n",
                "wf.yaml:5:13: task 'one': a plugin cannot output files: it "
                "runs on the agent's event loop, for small in-process work; "
                "a command or worker task can\n"
                "wf.yaml:8:14: task 'many': a plugin cannot output files: it "
                "runs on the agent's event loop, for small in-process work; "
                "a command or worker task can\n");
}

static void
test_workflow_error_command_shape(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  a: {command: echo hi}\n"
                "  b: {command: []}\n"
                "  c: {command: [x, [y]]}\n",
                "wf.yaml:3:16: 'command' must be a non-empty list of strings "
                "(an argv, e.g. [sh, -c, \"...\"]), got \"echo hi\"\n"
                "wf.yaml:4:16: 'command' must be a non-empty list of strings "
                "(an argv, e.g. [sh, -c, \"...\"]), got a list\n"
                "wf.yaml:5:20: 'command' entries must be strings, got a "
                "list\n");
}

static void
test_workflow_error_placeholder(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  t:\n"
                "    inputs: {image: str}\n"
                "    command: [convert, \"{imge}\", \"{out}.png\"]\n",
                "wf.yaml:5:24: placeholder '{imge}' names no input of task "
                "'t' (did you mean 'image'?)\n"
                "wf.yaml:5:34: placeholder '{out}' names no input of task 't' "
                "(inputs: image)\n");
}

static void
test_workflow_error_output_format(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  a: {command: [x], output: str, output_format: json}\n"
                "  b: {command: [x], output: int, output_format: text}\n"
                "  c: {command: [x], output_format: text}\n",
                "wf.yaml:3:49: 'output_format' must be 'text', got \"json\"\n"
                "wf.yaml:4:49: 'output_format: text' needs 'output: str', got "
                "int\n"
                "wf.yaml:5:36: 'output_format: text' needs 'output: str', got "
                "no output\n");
}

static void
test_workflow_worker_and_batch(void **state)
{
    struct fx *fx = *state;
    struct mapq_workflow *wf;

    wf = parse_ok(fx, "name: t\n"
                      "inputs: {xs: {type: \"list[int]\"}}\n"
                      "tasks:\n"
                      "  sq:\n"
                      "    inputs: {x: int}\n"
                      "    output: int\n"
                      "    worker: true\n"
                      "    command: [python3, -m, mapq_worker, \"m:sq\"]\n"
                      "nodes:\n"
                      "  n: {map: sq, over: {x: $inputs.xs}, batch: 50}\n"
                      "output: $n\n");
    assert_true(wf->tasks[0].worker);
    assert_int_equal(wf->nodes[0].batch, 50);
}

static void
test_workflow_error_worker_and_batch(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  a: {plugin: {library: l.so, symbol: f}, worker: true}\n"
                "  b: {inputs: {x: int}, command: [w, \"{x}\"], worker: true}\n"
                "  c: {command: [w], output: str, output_format: text, "
                "worker: true}\n"
                "  d: {command: [w], worker: maybe}\n"
                "nodes:\n"
                "  m: {map: d, over: {}, batch: 0}\n"
                "  k: {task: d, batch: 5}\n",
                "wf.yaml:3:43: 'worker' applies to command tasks only\n"
                "wf.yaml:4:46: 'worker: true' runs one process for many "
                "subtasks, so its command cannot hold the placeholder '{x}': "
                "each subtask's inputs come on its request line "
                "(docs/PROTOCOL.md)\n"
                "wf.yaml:5:34: 'output_format: text' does not apply to "
                "'worker: true': a worker's output is the JSON value of its "
                "reply line\n"
                "wf.yaml:6:29: 'worker' must be true or false, got "
                "\"maybe\"\n"
                "wf.yaml:8:15: map node 'm' needs at least one 'over' entry "
                "(a list to map over)\n"
                "wf.yaml:8:32: 'batch' must be an integer >= 1, got 0\n"
                "wf.yaml:9:16: 'batch' is only allowed in map nodes; node 'k' "
                "is a task node\n");
}

static void
test_workflow_error_cache(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  a: {command: [x], cache: maybe}\n"
                "  b: {command: [x], cache: {ttl: soon}}\n"
                "  c: {command: [x], cache_serialize: true}\n"
                "  d: {command: [x], cache: {ttl: 900000h}}\n",
                "wf.yaml:3:28: 'cache' must be true, false or {version: STR, "
                "ttl: DURATION}, got \"maybe\"\n"
                "wf.yaml:4:34: 'ttl' must be a duration such as 500ms, 30s, "
                "1m30s or 2h, got \"soon\"\n"
                "wf.yaml:5:21: 'cache_serialize' needs 'cache' to be "
                "enabled\n"
                "wf.yaml:6:34: 'ttl' is at most 100 years (876000h), got "
                "900000h\n");
}

static void
test_workflow_error_resources_and_queue(void **state)
{
    parse_fails(
        *state,
        "name: t\n"
        "tasks:\n"
        "  a: {command: [x], resources: {cpu: 0, mem: lots}}\n"
        "  b: {command: [x], resources: 2}\n"
        "  c: {command: [x], queue: \"a b\"}\n"
        "  d: {command: [x], resources: {cpu: .inf, mem: -1}}\n",
        "wf.yaml:3:38: 'cpu' must be a number greater than 0 and at most "
        "1000000, got 0\n"
        "wf.yaml:3:46: 'mem' must be a size such as 512MiB, 4Gi or "
        "100M, got \"lots\"\n"
        "wf.yaml:4:32: 'resources' must be a mapping like {cpu: 2, "
        "mem: 512Mi}, got 2\n"
        "wf.yaml:5:28: 'queue' must be a name matching "
        "[A-Za-z0-9_.-]+, got \"a b\"\n"
        "wf.yaml:6:38: 'cpu' must be a number greater than 0 and at most "
        "1000000, got "
        ".inf\n"
        "wf.yaml:6:49: 'mem' must be a size such as 512MiB, 4Gi or "
        "100M, got -1\n");
}

static void
test_workflow_error_retry_backoff(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "tasks:\n"
                "  a: {command: [x], retry_backoff: {initial: 10s, max: 1s}}\n"
                "  b: {command: [x], retry_backoff: {max: 1s}}\n"
                "  c: {command: [x], retry_backoff: {initial: 1s, factor: "
                "0.5}}\n",
                "wf.yaml:3:56: 'max' must not be less than 'initial'\n"
                "wf.yaml:4:21: 'retry_backoff' of task 'b' needs 'initial'\n"
                "wf.yaml:5:58: 'factor' must be a number >= 1, got 0.5\n");
}

static void
test_workflow_error_bad_type(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs: {x: {default: 1}, y: \"list[\"}\n"
                "tasks:\n"
                "  t:\n"
                "    inputs: {a: \"lst[int]\"}\n"
                "    output: [int]\n"
                "    command: [x]\n",
                "wf.yaml:2:10: input 'x' needs a 'type'\n"
                "wf.yaml:2:30: type of input 'y': malformed type 'list['\n"
                "wf.yaml:5:17: type of input 'a' of task 't': unknown type "
                "'lst' in 'lst[int]' (expected int, float, bool, str, bytes, "
                "any, file, list[T], dict[T], {name: T, ...} or T?)\n"
                "wf.yaml:6:13: 'output' of task 't' must be a type such as "
                "int, \"list[int]\" or {name: str, size: int}, got a list\n");
}

/* ---- literal values ---------------------------------------------------- */

static void
test_workflow_error_default_type(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs:\n"
                "  data: {type: \"list[int]\", default: [1, 2, x]}\n"
                "  n: {type: int, default: null}\n"
                "  f: {type: float, default: \"1.5\"}\n",
                "wf.yaml:3:45: default of 'data': [2]: expected int, got "
                "\"x\"\n"
                "wf.yaml:4:27: default of 'n': expected int, got null\n"
                "wf.yaml:5:29: default of 'f': expected float, got \"1.5\"\n");
}

static void
test_workflow_error_literal_dict_keys(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs:\n"
                "  a: {type: \"dict[int]\", default: {1: 2}}\n"
                "  b: {type: \"dict[int]\", default: {k: 1, k: 2}}\n"
                "  c: {type: any, default: [{x: {true: 1}}]}\n",
                "wf.yaml:3:36: default of 'a': dict keys must be strings, got "
                "1\n"
                "wf.yaml:4:42: default of 'b': duplicate key 'k'\n"
                "wf.yaml:5:33: default of 'c': [0][\"x\"]: dict keys must be "
                "strings, got true\n");
}

static void
test_workflow_error_alias_bomb(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs:\n"
                "  x:\n"
                "    type: any\n"
                "    default:\n"
                "      a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n"
                "      b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\n"
                "      c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\n"
                "      d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
                "      e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]\n"
                "      f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]\n"
                "      g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]\n"
                "      h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]\n"
                "      i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h, *h]\n"
                "  y: {type: any, default: *i}\n",
                "wf.yaml:6:7: default of 'x': value too large: more than "
                "1200000 values once aliases are expanded\n");
}

static void
test_workflow_error_alias_cycle(void **state)
{
    parse_fails(*state,
                "name: t\n"
                "inputs:\n"
                "  x: {type: any, default: &a [1, *a]}\n",
                "wf.yaml:3:27: default of 'x': value nested more than 32 "
                "levels deep\n");
}

static void
test_workflow_literal_depth_limit(void **state)
{
    struct fx *fx = *state;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    size_t i;
    enum mapq_err rc;

    /* 32 nested lists still unpack with msgpack-c; 33 would not. */
    mapq_buf_reset(&fx->text);
    mapq_buf_appendstr(&fx->text, "name: t\ninputs:\n  x: {type: any, "
                                  "default: ");
    for (i = 0; i < 32; i++)
        mapq_buf_appendstr(&fx->text, "[");
    for (i = 0; i < 32; i++)
        mapq_buf_appendstr(&fx->text, "]");
    mapq_buf_appendstr(&fx->text, "}\n");
    parse_ok(fx, fx->text.data);
    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(fx->wf->inputs[0].value.data,
                           fx->wf->inputs[0].value.len, &u, err);
    msgpack_unpacked_destroy(&u);
    assert_int_equal(rc, MAPQ_OK);

    mapq_buf_reset(&fx->text);
    mapq_buf_appendstr(&fx->text, "name: t\ninputs:\n  x: {type: any, "
                                  "default: ");
    for (i = 0; i < 33; i++)
        mapq_buf_appendstr(&fx->text, "[");
    for (i = 0; i < 33; i++)
        mapq_buf_appendstr(&fx->text, "]");
    mapq_buf_appendstr(&fx->text, "}\n");
    parse_fails(fx, fx->text.data,
                "wf.yaml:3:59: default of 'x': value nested more than 32 "
                "levels deep\n");
}

static void
test_workflow_errors_all_reported_sorted(void **state)
{
    /* Found in the order output, tasks, nodes; reported by position. */
    parse_fails(*state,
                "output: 5\n"
                "name: t\n"
                "tasks:\n" INC_TASK "    retries: x\n"
                "nodes:\n"
                "  n: {map: inc, over: {x: [1]}, colour: red}\n",
                "wf.yaml:1:9: 'output' must be a reference such as $NODE or "
                "$inputs.NAME, got 5\n"
                "wf.yaml:8:14: 'retries' must be a non-negative integer, got "
                "\"x\"\n"
                "wf.yaml:10:33: unknown key 'colour' in node 'n'\n");
}

/* ---- scalar resolution (mapq_workflow_yaml_value) ---------------------- */

static void
test_workflow_scalar_core_schema(void **state)
{
    struct fx *fx = *state;

    assert_string_equal(value_hex(fx, "~", NULL), "c0");
    assert_string_equal(value_hex(fx, "null", NULL), "c0");
    assert_string_equal(value_hex(fx, "Null", NULL), "c0");
    assert_string_equal(value_hex(fx, "NULL", NULL), "c0");
    assert_string_equal(value_hex(fx, "", NULL), "c0");
    assert_string_equal(value_hex(fx, "true", NULL), "c3");
    assert_string_equal(value_hex(fx, "True", NULL), "c3");
    assert_string_equal(value_hex(fx, "FALSE", NULL), "c2");
    assert_string_equal(value_hex(fx, "yes", NULL), "a3796573");
    assert_string_equal(value_hex(fx, "-5", NULL), "fb");
    assert_string_equal(value_hex(fx, "+7", NULL), "07");
    assert_string_equal(value_hex(fx, "007", NULL), "07");
    assert_string_equal(value_hex(fx, "0x1F", NULL), "1f");
    assert_string_equal(value_hex(fx, "0o17", NULL), "0f");
    assert_string_equal(value_hex(fx, "-9223372036854775808", NULL),
                        "d38000000000000000");
    assert_string_equal(value_hex(fx, "1.5", NULL), "cb3ff8000000000000");
    assert_string_equal(value_hex(fx, "1e3", NULL), "cb408f400000000000");
    assert_string_equal(value_hex(fx, "-.5", NULL), "cbbfe0000000000000");
    assert_string_equal(value_hex(fx, "2.", NULL), "cb4000000000000000");
    /* What JSON cannot carry is no value: ints past INT64_MAX, NaN and
     * infinities (also a float literal too large for a double). */
    value_fails(fx, "9223372036854775808", NULL,
                "--input v: integer 9223372036854775808 is out of range "
                "(ints are signed 64-bit)");
    value_fails(fx, ".inf", NULL,
                "--input v: float .inf is not a value mapq can carry: JSON "
                "has no NaN or infinity");
    value_fails(fx, "-.Inf", "float",
                "--input v: float -.Inf is not a value mapq can carry: JSON "
                "has no NaN or infinity");
    value_fails(fx, ".NaN", "any",
                "--input v: float .NaN is not a value mapq can carry: JSON "
                "has no NaN or infinity");
    value_fails(fx, "1e999", "float",
                "--input v: float 1e999 is not a value mapq can carry: JSON "
                "has no NaN or infinity");
    /* Not numbers in the core schema: strings. */
    assert_string_equal(value_hex(fx, "0b11", NULL), "a430623131");
    assert_string_equal(value_hex(fx, "1_000", NULL), "a5315f303030");
    assert_string_equal(value_hex(fx, "e3", NULL), "a26533");
    /* Quoted scalars are strings. */
    assert_string_equal(value_hex(fx, "'5'", NULL), "a135");
    assert_string_equal(value_hex(fx, "\"true\"", NULL), "a474727565");
    assert_string_equal(value_hex(fx, "\"\"", NULL), "a0");
    /* JSON as flow YAML. */
    assert_string_equal(value_hex(fx, "{\"a\": [1, null]}", NULL),
                        "81a1619201c0");
}

static void
test_workflow_scalar_type_directed(void **state)
{
    struct fx *fx = *state;

    /* str takes a plain scalar as written. */
    assert_string_equal(value_hex(fx, "123", "str"), "a3313233");
    assert_string_equal(value_hex(fx, "true", "str"), "a474727565");
    assert_string_equal(value_hex(fx, "null", "str"), "a46e756c6c");
    assert_string_equal(value_hex(fx, "1.50", "str"), "a4312e3530");
    assert_string_equal(value_hex(fx, "null", "str?"), "c0");
    assert_string_equal(value_hex(fx, "[1, x]", "list[str]"), "92a131a178");
    /* float takes ints, as floats. */
    assert_string_equal(value_hex(fx, "5", "float"), "cb4014000000000000");
    assert_string_equal(value_hex(fx, "[1, 2.5]", "list[float]"),
                        "92cb3ff0000000000000cb4004000000000000");
    /* any and optional types use the natural mapping. */
    assert_string_equal(value_hex(fx, "[1, a, ~]", "list[any]"), "9301a161c0");
    assert_string_equal(value_hex(fx, "~", "list[int]?"), "c0");
    value_fails(fx, "1.0", "int", "--input v: expected int, got 1.0");
    value_fails(fx, "yes", "bool", "--input v: expected bool, got \"yes\"");
    value_fails(fx, "~", "int", "--input v: expected int, got null");
    value_fails(fx, "[1]", "int", "--input v: expected int, got a list");
    value_fails(fx, "{a: 1}", "list[int]",
                "--input v: expected list[int], got a dict");
    value_fails(fx, "{a: [1, x]}", "dict[list[int]]",
                "--input v: [\"a\"][1]: expected int, got \"x\"");
}

static void
test_workflow_scalar_bytes_base64(void **state)
{
    struct fx *fx = *state;

    assert_string_equal(value_hex(fx, "aGk=", "bytes"), "c4026869");
    assert_string_equal(value_hex(fx, "aGk", "bytes"), "c4026869");
    assert_string_equal(value_hex(fx, "'aGVs bG8='", "bytes"),
                        "c40568656c6c6f");
    assert_string_equal(value_hex(fx, "''", "bytes"), "c400");
    assert_string_equal(value_hex(fx, "AAAA", "bytes"), "c403000000");
    value_fails(fx, "a!==", "bytes",
                "--input v: expected bytes (base64), got \"a!==\"");
    value_fails(fx, "abcde", "bytes",
                "--input v: expected bytes (base64), got \"abcde\"");
    value_fails(fx, "~", "bytes",
                "--input v: expected bytes (base64), got "
                "null");
}

static void
test_workflow_scalar_errors(void **state)
{
    struct fx *fx = *state;
    char err[MAPQ_ERR_LEN];

    value_fails(
        fx, "99999999999999999999", NULL,
        "--input v: integer 99999999999999999999 is out of range (ints are "
        "signed 64-bit)");
    value_fails(fx, "[1, 2", "list[int]",
                "--input v: 2:1: invalid YAML: did not find expected ',' or "
                "']' (while parsing a flow sequence at 1:1)");
    value_fails(fx, "a\n---\nb\n", NULL,
                "--input v: 2:1: more than one YAML document (expected one)");
    assert_int_equal(value(fx, "[1, x]", "list[int]", err), MAPQ_ETYPE);
    assert_int_equal(value(fx, "[", NULL, err), MAPQ_EINVAL);
    /* Huge floats under float are fine; only ints have a range. */
    assert_string_equal(value_hex(fx, "99999999999999999999", "float"),
                        "cb4415af1d78b58c40");
}

static void
test_workflow_scalar_empty_value(void **state)
{
    struct fx *fx = *state;

    /* An empty --input value: "" for str, null otherwise. */
    assert_string_equal(value_hex(fx, "", "str"), "a0");
    assert_string_equal(value_hex(fx, "", "int?"), "c0");
    value_fails(fx, "", "int", "--input v: expected int, got null");
}

/* ---- binding inputs ---------------------------------------------------- */

/* Lines 1-10; node n maps inc over zip of a and b. */
#define BIND_WF                                                      \
    "name: t\n"                                                      \
    "inputs:\n"                                                      \
    "  a: \"list[int]\"\n"                                           \
    "  b: {type: \"list[int]\", default: [1, 2]}\n"                  \
    "  s: {type: str, default: x}\n"                                 \
    "tasks:\n"                                                       \
    "  add:\n"                                                       \
    "    inputs: {x: int, y: int, s: str}\n"                         \
    "    command: [x]\n"                                             \
    "nodes:\n"                                                       \
    "  n: {map: add, over: {x: $inputs.a, y: $inputs.b}, with: {s: " \
    "$inputs.s}}\n"

static void
test_workflow_bind_defaults(void **state)
{
    struct fx *fx = *state;

    parse_ok(fx, BASE DETECT_ALL);
    assert_int_equal(bind_in(fx, NULL, 0, NULL), MAPQ_OK);
    /* {data: [1, 2, 3], threshold: 11}, in declaration order. */
    assert_string_equal(hexbuf(fx, &fx->out),
                        "82a46461746193010203a97468726573686f6c640b");
    assert_string_equal(fx->errors.data == NULL ? "" : fx->errors.data, "");
}

static void
test_workflow_bind_precedence(void **state)
{
    struct fx *fx = *state;
    const char *file;
    const char *assigns[] = {"a=[5, 6]"};

    parse_ok(fx, BIND_WF);
    file = write_file(fx, "in.yaml", "a: [1, 1]\nb: [2, 2]\n");
    assert_int_equal(bind_in(fx, assigns, 1, file), MAPQ_OK);
    /* a from --input, b from the file, s from its default. */
    assert_string_equal(hexbuf(fx, &fx->out), "83a1619205"
                                              "06a1629202"
                                              "02a173a178");
}

static void
test_workflow_bind_at_file(void **state)
{
    struct fx *fx = *state;
    char assign[PATH_MAX + 8];
    const char *assigns[] = {assign, "b=[7, 8]", "s=123"};

    parse_ok(fx, BIND_WF);
    snprintf(assign, sizeof(assign), "a=@%s",
             write_file(fx, "a.json", "[3, 4]\n"));
    assert_int_equal(bind_in(fx, assigns, 3, NULL), MAPQ_OK);
    assert_string_equal(hexbuf(fx, &fx->out), "83a1619203"
                                              "04a1629207"
                                              "08a173a3313233");
}

static void
test_workflow_bind_wrong_type(void **state)
{
    struct fx *fx = *state;
    char assign[PATH_MAX + 8];
    const char *assigns[] = {"a=[1, x]", assign};

    parse_ok(fx, BIND_WF);
    snprintf(assign, sizeof(assign), "b=@%s",
             write_file(fx, "b.json", "{\"k\": 1}"));
    assert_int_equal(bind_in(fx, assigns, 2, NULL), MAPQ_EINVAL);
    snprintf(assign, sizeof(assign),
             "--input a: [1]: expected int, got \"x\"\n"
             "--input b: %s/b.json: expected list[int], got dict\n",
             fx->dir);
    assert_string_equal(fx->errors.data, assign);
    assert_int_equal(fx->out.len, 0);
}

static void
test_workflow_bind_missing_required(void **state)
{
    struct fx *fx = *state;

    parse_ok(fx, BIND_WF);
    assert_int_equal(bind_in(fx, NULL, 0, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data,
                        "wf.yaml:3:3: input 'a' is required; pass --input "
                        "a=VALUE\n");
}

static void
test_workflow_bind_unknown_input(void **state)
{
    struct fx *fx = *state;
    const char *assigns[] = {"nope=1", "a=[1, 2]"};

    parse_ok(fx, BIND_WF);
    assert_int_equal(bind_in(fx, assigns, 2, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data, "--input nope: no such workflow "
                                         "input (inputs: a, b, s)\n");
    parse_ok(fx, "name: t\ntasks:\n" INC_TASK);
    assert_int_equal(bind_in(fx, assigns, 1, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data,
                        "--input nope: no such workflow input (the workflow "
                        "has no inputs)\n");
}

static void
test_workflow_bind_malformed_assign(void **state)
{
    struct fx *fx = *state;
    const char *assigns[] = {"a", "=1", "a=[1, 2]", "a=[3, 4]",
                             "s=@/nonexistent/x"};

    parse_ok(fx, BIND_WF);
    assert_int_equal(bind_in(fx, assigns, 5, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data,
                        "--input a: expected NAME=VALUE\n"
                        "--input =1: expected NAME=VALUE\n"
                        "--input a: given more than once\n"
                        "--input s: cannot read '/nonexistent/x': No such file "
                        "or directory\n");
}

static void
test_workflow_bind_inputs_file_errors(void **state)
{
    struct fx *fx = *state;
    char want[2 * PATH_MAX];
    const char *file;

    parse_ok(fx, BIND_WF);
    file = write_file(fx, "in.yaml",
                      "a: [1, 2]\n"
                      "zzz: 1\n"
                      "b: [1, two]\n"
                      "a: [3, 4]\n");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    snprintf(want, sizeof(want),
             "%s:2:1: no such workflow input 'zzz' (inputs: a, b, s)\n"
             "%s:3:8: 'b': [1]: expected int, got \"two\"\n"
             "%s:4:1: duplicate key 'a'\n",
             file, file, file);
    assert_string_equal(fx->errors.data, want);

    file = write_file(fx, "list.yaml", "- 1\n");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    snprintf(want, sizeof(want),
             "%s:1:1: an inputs file must be a mapping of input name to "
             "value, got a list\n"
             "wf.yaml:3:3: input 'a' is required; pass --input a=VALUE\n",
             file);
    assert_string_equal(fx->errors.data, want);
}

/* A .json inputs file is read with JSON's rules: the surrogate pair that
 * JSON writers use for characters beyond the BMP, \u0000 in a str. */
static void
test_workflow_bind_inputs_json_file(void **state)
{
    struct fx *fx = *state;
    char want[2 * PATH_MAX], assign[PATH_MAX + 8];
    const char *assigns[] = {assign};
    const char *file;

    parse_ok(fx, BIND_WF);
    file = write_file(fx, "in.json",
                      "{\"a\": [1, -2], \"s\": \"\\ud83d\\ude00\\u0000!\"}");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_OK);
    /* {a: [1, -2], b: [1, 2], s: "\xf0\x9f\x98\x80\0!"} */
    assert_string_equal(hexbuf(fx, &fx->out), "83a1619201fe"
                                              "a1629201"
                                              "02a173a6f09f988000"
                                              "21");
    /* The same text read as YAML is refused by YAML's rules. */
    file = write_file(fx, "in.yaml", "{\"s\": \"\\ud83d\\ude00\"}");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    /* --input NAME=@FILE.json too. */
    snprintf(assign, sizeof(assign), "s=@%s",
             write_file(fx, "s.json", "\"\\ud83d\\ude00\""));
    file = write_file(fx, "a.json", "{\"a\": [5, 6]}");
    assert_int_equal(bind_in(fx, assigns, 1, file), MAPQ_OK);
    assert_string_equal(hexbuf(fx, &fx->out), "83a161920506"
                                              "a1629201"
                                              "02a173a4f09f9880");
    /* Errors name the file, the input, and where: the element that does
     * not convert, the unknown key. */
    file = write_file(fx, "bad.json", "{\"a\": [1, \"two\"], \"zzz\": 1}");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    snprintf(want, sizeof(want),
             "%s:1:11: 'a': [1]: expected int, got str\n"
             "%s:1:19: no such workflow input 'zzz' (inputs: a, b, s)\n",
             file, file);
    assert_string_equal(fx->errors.data, want);
    file = write_file(fx, "list.json", "\n [1]");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    snprintf(want, sizeof(want),
             "%s:2:2: an inputs file must be a JSON object of input name to "
             "value\n"
             "wf.yaml:3:3: input 'a' is required; pass --input a=VALUE\n",
             file);
    assert_string_equal(fx->errors.data, want);
    file = write_file(fx, "trunc.json", "{\"a\": [1");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    assert_non_null(strstr(fx->errors.data, "trunc.json:1:8: invalid JSON:"));
}

/* A JSON inputs file is read member by member: a name twice is an error,
 * --input still wins, a value over the cap is told where it was met. */
static void
test_workflow_bind_inputs_json_members(void **state)
{
    struct fx *fx = *state;
    char want[2 * PATH_MAX];
    const char *assigns[] = {"a=[5, 6]"};
    const char *file;

    parse_ok(fx, BIND_WF);
    /* A name given twice is an error, at the second one. */
    file = write_file(fx, "dup.json", "{\"a\": [1, 2],\n \"a\": [2]}");
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    snprintf(want, sizeof(want),
             "%s:2:4: invalid JSON: duplicate object key near '\"a\"'\n", file);
    assert_string_equal(fx->errors.data, want);
    /* --input wins over the file: its value there is not even read. */
    file = write_file(fx, "both.json", "{\"a\": [1, \"x\"], \"b\": [3, 4]}");
    assert_int_equal(bind_in(fx, assigns, 1, file), MAPQ_OK);
    assert_string_equal(hexbuf(fx, &fx->out), "83a161920506"
                                              "a1629203"
                                              "04a173a178");
    /* A value over the cap, worded as for YAML values, at the element
     * where the cap was met. */
    file = big_list_file(fx, "big.json", MAPQ_VALUE_MAX / 2);
    assert_int_equal(bind_in(fx, NULL, 0, file), MAPQ_EINVAL);
    snprintf(want, sizeof(want),
             "%s:1:%d: 'a': value is larger than the 16 MiB cap\n", file,
             (int)(MAPQ_VALUE_MAX / 2 + 12));
    assert_string_equal(fx->errors.data, want);
}

static void
test_workflow_bind_zip_lengths(void **state)
{
    struct fx *fx = *state;
    const char *assigns[] = {"a=[1, 2, 3]"};

    parse_ok(fx, BIND_WF);
    assert_int_equal(bind_in(fx, assigns, 1, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data,
                        "wf.yaml:11:41: input lists have different lengths: "
                        "'x' has 3, 'y' has 2\n");
}

static void
test_workflow_bind_zip_with_literal(void **state)
{
    struct fx *fx = *state;
    const char *assigns[] = {"a=[1, 2, 3]"};

    parse_ok(fx, "name: t\n"
                 "inputs: {a: \"list[int]\", v: any}\n"
                 "tasks:\n"
                 "  add:\n"
                 "    inputs: {x: int, y: int}\n"
                 "    command: [x]\n"
                 "nodes:\n"
                 "  n: {map: add, over: {y: [1, 2], x: $inputs.a}}\n"
                 "  m: {map: add, over: {x: $inputs.v, y: [1]}}\n");
    assert_int_equal(bind_in(fx, assigns, 1, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data,
                        "wf.yaml:2:26: input 'v' is required; pass --input "
                        "v=VALUE\n"
                        "wf.yaml:8:38: input lists have different lengths: "
                        "'y' has 2, 'x' has 3\n");
    assigns[0] = "v=5";
    assert_int_equal(bind_in(fx, assigns, 1, NULL), MAPQ_EINVAL);
    assert_string_equal(fx->errors.data,
                        "wf.yaml:2:10: input 'a' is required; pass --input "
                        "a=VALUE\n"
                        "wf.yaml:9:27: cannot map over $inputs.v: its value is "
                        "not a list\n");
}

static void
test_workflow_record_types(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;

    /* A record as a YAML mapping of member types, or as a type string. */
    wf = parse_ok(fx, "name: w\n"
                      "inputs:\n"
                      "  p: {type: {x: int, y: float}, default: {y: 2, x: 1}}\n"
                      "tasks:\n"
                      "  t:\n"
                      "    inputs: {p: \"{x: int, y: float}\"}\n"
                      "    output: {sum: float, parts: \"list[int]\"}\n"
                      "    command: [sh, -c, 'true']\n"
                      "nodes:\n"
                      "  n: {task: t, with: {p: $inputs.p}}\n"
                      "output: $n\n");
    assert_type(wf->inputs[0].type, "{x: int, y: float}");
    assert_type(wf->tasks[0].output, "{parts: list[int], sum: float}");
    /* The default as written, y converted to the member's float. */
    assert_string_equal(hexbuf(fx, &wf->inputs[0].value),
                        "82a179cb4000000000000000a17801");
    /* Values: members converted by their types, exactly the members. */
    assert_string_equal(value_hex(fx, "{a: 1}", "{a: float}"),
                        "81a161cb3ff0000000000000");
    value_fails(fx, "{a: 1, b: 2}", "{a: int}",
                "--input v: unknown member 'b' of {a: int}");
    value_fails(fx, "{b: 1}", "{a: int, b: int}",
                "--input v: missing member 'a' of {a: int, b: int}");
    value_fails(fx, "[1]", "{a: int}",
                "--input v: expected {a: int}, got a list");
    /* Bad record types are reported where they are written. */
    parse_fails(
        fx,
        "name: w\n"
        "tasks:\n"
        "  t:\n"
        "    inputs: {p: {x: int, x: str}}\n"
        "    command: [sh, -c, 'true']\n"
        "nodes:\n"
        "  n: {task: t, with: {p: {x: 1}}}\n",
        "wf.yaml:4:17: type of input 'p' of task 't': member 'x' declared "
        "twice\n");
}

/* Tasks with named outputs, then "nodes:" to follow. */
#define NAMED_HEAD                                        \
    "name: w\n"                                           \
    "inputs: {xs: {type: \"list[int]\", default: [1]}}\n" \
    "tasks:\n"                                            \
    "  s:\n"                                              \
    "    inputs: {x: int}\n"                              \
    "    outputs: {sq: int, tag: str?}\n"                 \
    "    command: [sh, -c, 'true']\n"                     \
    "  sum:\n"                                            \
    "    inputs: {v: \"list[int]\"}\n"                    \
    "    output: int\n"                                   \
    "    command: [sh, -c, 'true']\n"                     \
    "nodes:\n"

static void
test_workflow_named_outputs(void **state)
{
    struct fx *fx = *state;
    const struct mapq_workflow *wf;

    /* outputs: is a record output; $NODE.NAME takes one member, a list of
     * it from a map node. */
    wf = parse_ok(fx, NAMED_HEAD "  m: {map: s, over: {x: $inputs.xs}}\n"
                                 "  t: {task: sum, with: {v: $m.sq}}\n"
                                 "output: {tags: $m.tag, total: $t}\n");
    assert_type(wf->tasks[0].output, "{sq: int, tag: str?}");
    assert_string_equal(wf->nodes[1].with[0].ref, "m");
    assert_string_equal(wf->nodes[1].with[0].member, "sq");
    assert_type(wf->nodes[1].with[0].member_type, "list[int]");
    assert_string_equal(wf->outputs[0].member, "tag");
    assert_type(wf->outputs[0].member_type, "list[str?]");
    assert_null(wf->outputs[1].member);
    assert_int_equal(wf->nodes[1].ndeps, 1);

    /* A member that is not there; a map node that may leave nulls gives a
     * list of optional members; a node whose output is no record. */
    parse_fails(fx,
                NAMED_HEAD "  m: {map: s, over: {x: $inputs.xs}, "
                           "min_success_ratio: 0.5}\n"
                           "  t: {task: sum, with: {v: $m.sq}}\n"
                           "  u: {task: sum, with: {v: $m.count}}\n"
                           "  w: {task: sum, with: {v: $t.x}}\n",
                "wf.yaml:14:28: cannot bind $m.sq (list[int?]) to "
                "parameter 'v' (list[int])\n"
                "wf.yaml:15:28: node 'm' has no output 'count' (its "
                "output is list[{sq: int, tag: str?}?])\n"
                "wf.yaml:16:28: node 't' has no output 'x' (its output "
                "is int)\n");
    /* output and outputs together; outputs that is no mapping. */
    parse_fails(fx,
                "name: w\n"
                "tasks:\n"
                "  s:\n"
                "    output: int\n"
                "    outputs: {a: int}\n"
                "    command: [sh, -c, 'true']\n"
                "  r:\n"
                "    outputs: int\n"
                "    command: [sh, -c, 'true']\n"
                "nodes:\n"
                "  n: {task: s}\n",
                "wf.yaml:5:5: task 's' has 'output' and 'outputs': give one "
                "(several named outputs are 'outputs: {name: type, ...}')\n"
                "wf.yaml:8:14: 'outputs' of task 'r' must be a mapping of "
                "names to types, such as {count: int, names: "
                "\"list[str]\"}\n");
    parse_fails(fx,
                "name: w\n"
                "tasks:\n"
                "  s: {output: int, command: [x]}\n"
                "nodes:\n"
                "  n: {task: s}\n"
                "output: $n.a.b\n",
                "wf.yaml:6:9: malformed reference '$n.a.b' (expected "
                "$inputs.NAME, $NODE or $NODE.OUTPUT; write $$ for a literal "
                "$)\n");
}

int
main(void)
{
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_workflow_model_spec_inputs_and_tasks),
        T(test_workflow_model_spec_nodes),
        T(test_workflow_model_spec_order_and_output),
        T(test_workflow_model_opts_and_overrides),
        T(test_workflow_model_task_defaults),
        T(test_workflow_model_literal_bytes),
        T(test_workflow_model_output_types),
        T(test_workflow_record_types),
        T(test_workflow_named_outputs),
        T(test_workflow_model_order_and_deps),
        T(test_workflow_model_output_map),
        T(test_workflow_model_plugin_library_path),
        T(test_workflow_model_system_retries),
        T(test_workflow_model_placeholders),
        T(test_workflow_shell_placeholders_refused),
        T(test_workflow_shell_placeholders_allowed),
        T(test_workflow_yaml_anchors_capped),
        T(test_workflow_problems_capped),
        T(test_workflow_load_file_capped),
        T(test_workflow_model_find_many),
        T(test_workflow_yaml_too_deep_refused_early),
        T(test_workflow_yaml_too_many_values_refused),
        T(test_workflow_model_find),
        T(test_workflow_examples_parse),
        T(test_workflow_load_missing_file),
        T(test_workflow_error_unknown_key_suggests),
        T(test_workflow_error_unknown_key_everywhere),
        T(test_workflow_error_duplicate_key),
        T(test_workflow_error_non_string_key),
        T(test_workflow_error_wrong_type_names_expected),
        T(test_workflow_error_yaml_syntax),
        T(test_workflow_error_empty_or_many_documents),
        T(test_workflow_error_name),
        T(test_workflow_error_invalid_identifier),
        T(test_workflow_error_reserved_node_name),
        T(test_workflow_error_unknown_task),
        T(test_workflow_error_map_or_task),
        T(test_workflow_error_unknown_node),
        T(test_workflow_error_unknown_input),
        T(test_workflow_error_malformed_reference),
        T(test_workflow_error_node_without_output),
        T(test_workflow_error_output_not_reference),
        T(test_workflow_error_cycle),
        T(test_workflow_error_list_to_scalar),
        T(test_workflow_error_optional_list_into_list),
        T(test_workflow_error_with_type_mismatch),
        T(test_workflow_error_over_not_list),
        T(test_workflow_error_over_element_type),
        T(test_workflow_error_unbound_param),
        T(test_workflow_error_bound_twice),
        T(test_workflow_error_unknown_param),
        T(test_workflow_error_map_without_over),
        T(test_workflow_error_task_node_with_over),
        T(test_workflow_error_map_only_settings),
        T(test_workflow_error_zip_literal_lengths),
        T(test_workflow_error_node_settings_ranges),
        T(test_workflow_error_command_or_plugin),
        T(test_workflow_error_plugin_outputs_files),
        T(test_workflow_error_command_shape),
        T(test_workflow_error_placeholder),
        T(test_workflow_worker_and_batch),
        T(test_workflow_error_worker_and_batch),
        T(test_workflow_error_output_format),
        T(test_workflow_error_cache),
        T(test_workflow_error_resources_and_queue),
        T(test_workflow_error_retry_backoff),
        T(test_workflow_error_bad_type),
        T(test_workflow_error_default_type),
        T(test_workflow_error_literal_dict_keys),
        T(test_workflow_error_alias_bomb),
        T(test_workflow_error_alias_cycle),
        T(test_workflow_literal_depth_limit),
        T(test_workflow_errors_all_reported_sorted),
        T(test_workflow_scalar_core_schema),
        T(test_workflow_scalar_type_directed),
        T(test_workflow_scalar_bytes_base64),
        T(test_workflow_scalar_errors),
        T(test_workflow_scalar_empty_value),
        T(test_workflow_bind_defaults),
        T(test_workflow_bind_precedence),
        T(test_workflow_bind_at_file),
        T(test_workflow_bind_wrong_type),
        T(test_workflow_bind_missing_required),
        T(test_workflow_bind_unknown_input),
        T(test_workflow_bind_malformed_assign),
        T(test_workflow_bind_inputs_file_errors),
        T(test_workflow_bind_inputs_json_file),
        T(test_workflow_bind_inputs_json_members),
        T(test_workflow_bind_zip_lengths),
        T(test_workflow_bind_zip_with_literal),
    };
#undef T

    return cmocka_run_group_tests_name("workflow", tests, NULL, NULL);
}
