/*
 * wf_tasks.c - the `tasks` section: each task's inputs, output, command
 * or plugin and settings.
 *
 * Fills c->wf->tasks and c->task_out_bad. A command's {name}
 * placeholders must name inputs of the task, and are refused inside the
 * script a shell runs (mapq_shell.h) unless the task allows them. Knows
 * nothing of nodes.
 */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_shell.h"
#include "wf_int.h"

#define BACKOFF_MAX_DEFAULT_MS (10 * 60 * 1000)

enum {
    TF_INPUTS,
    TF_OUTPUT,
    TF_COMMAND,
    TF_PLUGIN,
    TF_OUTPUT_FORMAT,
    TF_RETRIES,
    TF_TIMEOUT,
    TF_INTERRUPTIBLE,
    TF_CACHE,
    TF_CACHE_SERIALIZE,
    TF_RESOURCES,
    TF_QUEUE,
    TF_RETRY_BACKOFF,
    TF_SHELL_PLACEHOLDERS,
    TF_WORKER,
    TF_OUTPUTS,
    TF_N
};
static const char *const task_fields[TF_N] = {
    "inputs",        "output",
    "command",       "plugin",
    "output_format", "retries",
    "timeout",       "interruptible",
    "cache",         "cache_serialize",
    "resources",     "queue",
    "retry_backoff", "shell_placeholders",
    "worker",        "outputs"};

enum { BF_INITIAL, BF_MAX, BF_FACTOR, BF_N };
static const char *const backoff_fields[BF_N] = {"initial", "max", "factor"};

enum { PF_LIBRARY, PF_SYMBOL, PF_N };
static const char *const plugin_fields[PF_N] = {"library", "symbol"};

static void
parse_backoff(struct ctx *c, yaml_node_t *k, yaml_node_t *v,
              struct mapq_task_opts *o, const char *owner)
{
    struct fields f;
    char where[256];

    if (!wf_expect_map(c, v,
                       "'retry_backoff' must be a mapping like {initial: 1s, "
                       "max: 1m, factor: 2}"))
        return;
    snprintf(where, sizeof(where), "in 'retry_backoff' of %.200s", owner);
    wf_get_fields(c, v, backoff_fields, BF_N, &f, where);
    if (f.val[BF_INITIAL] == NULL) {
        wf_perr(c, k, "'retry_backoff' of %s needs 'initial'", owner);
        return;
    }
    if (!wf_get_duration(c, f.val[BF_INITIAL], "initial",
                         &o->backoff_initial_ms))
        return;
    o->backoff_factor = 2.0;
    if (f.val[BF_FACTOR] != NULL)
        wf_get_real(c, f.val[BF_FACTOR], "factor", 1, false, 1e6,
                    "a number >= 1", &o->backoff_factor);
    o->backoff_max_ms = o->backoff_initial_ms > BACKOFF_MAX_DEFAULT_MS
                            ? o->backoff_initial_ms
                            : BACKOFF_MAX_DEFAULT_MS;
    if (f.val[BF_MAX] == NULL ||
        !wf_get_duration(c, f.val[BF_MAX], "max", &o->backoff_max_ms))
        return;
    if (o->backoff_max_ms < o->backoff_initial_ms)
        wf_perr(c, f.val[BF_MAX], "'max' must not be less than 'initial'");
}

/* The inputs that hold files travel to agents as a record of their types
 * (mapq_taskspec files), within a record's bounds: k names the nth. */
static void
check_file_input(struct ctx *c, yaml_node_t *k, const struct mapq_task_def *t,
                 size_t n)
{
    if (slen(k) > MAPQ_TYPE_NAME_MAX)
        wf_perr(c, k,
                "input '%s' of task '%s' holds files: its name must be at "
                "most %d bytes",
                stext(k), t->name, MAPQ_TYPE_NAME_MAX);
    else if (n == MAPQ_TYPE_MEMBERS_MAX + 1)
        wf_perr(c, k, "task '%s' has more than %d inputs that hold files",
                t->name, MAPQ_TYPE_MEMBERS_MAX);
}

static void
parse_task_inputs(struct ctx *c, yaml_node_t *map, struct mapq_task_def *t)
{
    bool *skip;
    size_t i, n;
    yaml_node_t *k;
    struct mapq_param *p;
    char what[256];
    size_t nfiles = 0;

    if (!wf_expect_map(c, map, "'inputs' must be a mapping of name to type"))
        return;
    n = npairs(map);
    skip = wf_check_keys(c, map);
    t->inputs = mapq_xcalloc(n ? n : 1, sizeof(*t->inputs));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !wf_check_ident(c, k, "input"))
            continue;
        p = &t->inputs[t->ninputs++];
        p->name = mapq_xstrdup(stext(k));
        p->pos = pos_of(k);
        mapq_buf_init(&p->value, 0);
        snprintf(what, sizeof(what), "type of input '%s' of task '%s'", p->name,
                 t->name);
        p->type = wf_get_type(
            c, cnode(c, map->data.mapping.pairs.start[i].value), what);
        if (mapq_type_has_file(p->type))
            check_file_input(c, k, t, ++nfiles);
    }
    free(skip);
}

/* Reports {name} placeholders in arg that name no input of t. */
static void
check_placeholders(struct ctx *c, const yaml_node_t *arg,
                   const struct mapq_task_def *t)
{
    const char *p = stext(arg);
    char hint[MSG_MAX / 2], name[EDIT_MAX + 1];
    size_t n;

    for (p = strchr(p, '{'); p != NULL; p = strchr(p, '{')) {
        n = wf_ident_len(p + 1);
        if (n == 0 || p[1 + n] != '}') {
            p++;
            continue;
        }
        if (mapq_workflow_find_param(t, p + 1, n) < 0) {
            snprintf(name, sizeof(name), "%.*s", (int)n, p + 1);
            wf_perr(c, arg,
                    "placeholder '{%.*s}' names no input of task '%s'%s",
                    (int)n, p + 1, t->name,
                    wf_hint_names(&c->probs, name, t->inputs, t->ninputs,
                                  sizeof(*t->inputs), "inputs", hint,
                                  sizeof(hint)));
        }
        p += n + 2;
    }
}

/*
 * worker: true: one process serves many subtasks, which get their inputs
 * on its request lines, so its argv is fixed: no {name} placeholders, and
 * the output comes from the reply line, so no output_format.
 */
static void
parse_worker(struct ctx *c, const struct fields *f, struct mapq_task_def *t)
{
    size_t i;
    const char *p;

    if (!wf_get_bool(c, f->val[TF_WORKER], "worker", &t->worker) || !t->worker)
        return;
    if (t->kind != MAPQ_TASK_COMMAND) {
        wf_perr(c, f->key[TF_WORKER], "'worker' applies to command tasks only");
        t->worker = false;
        return;
    }
    if (t->output_text)
        wf_perr(c, f->key[TF_OUTPUT_FORMAT],
                "'output_format: text' does not apply to 'worker: true': a "
                "worker's output is the JSON value of its reply line");
    for (i = 0; t->argv != NULL && i < t->argc; i++) {
        for (p = strchr(t->argv[i], '{'); p != NULL; p = strchr(p + 1, '{')) {
            size_t n = wf_ident_len(p + 1);

            if (n > 0 && p[1 + n] == '}' &&
                mapq_workflow_find_param(t, p + 1, n) >= 0) {
                wf_perr(c, f->key[TF_WORKER],
                        "'worker: true' runs one process for many subtasks, "
                        "so its command cannot hold the placeholder "
                        "'{%.*s}': each subtask's inputs come on its request "
                        "line (docs/PROTOCOL.md)",
                        (int)n, p + 1);
                return;
            }
        }
    }
}

/*
 * Refuses {name} placeholders inside the script of `sh -c SCRIPT` (and its
 * kin, mapq_shell.h) unless the task says `shell_placeholders: raw`: there
 * the input's text would become shell code. v is the command's sequence.
 */
static void
check_shell_placeholders(struct ctx *c, yaml_node_t *v, yaml_node_t *setting,
                         const struct mapq_task_def *t)
{
    const yaml_node_t *arg;
    const char *p;
    long script;
    size_t n, runner;
    char d[96];

    if (setting != NULL) {
        if (setting->type == YAML_SCALAR_NODE &&
            strcmp(stext(setting), "raw") == 0)
            return;
        if (setting->type != YAML_SCALAR_NODE ||
            strcmp(stext(setting), "refuse") != 0) {
            wf_perr(c, setting,
                    "'shell_placeholders' must be 'refuse' or 'raw', got %s",
                    wf_describe(setting, d, sizeof(d)));
            return;
        }
    }
    script =
        mapq_shell_script_index((const char *const *)t->argv, t->argc, &runner);
    /* argv skips entries that were not strings: then positions differ. */
    if (script < 0 || t->argc != nitems(v))
        return;
    arg = cnode(c, v->data.sequence.items.start[script]);
    for (p = strchr(t->argv[script], '{'); p != NULL; p = strchr(p + 1, '{')) {
        n = wf_ident_len(p + 1);
        if (n == 0 || p[1 + n] != '}' ||
            mapq_workflow_find_param(t, p + 1, n) < 0)
            continue;
        wf_perr(
            c, arg,
            "placeholder '{%.*s}' is inside the script that '%s' runs, where "
            "its text would run as shell code; write \"$MAPQ_IN_%.*s\" in "
            "the script instead (quoted), or set 'shell_placeholders: raw' "
            "in task '%s' if its inputs are trusted",
            (int)n, p + 1, t->argv[runner], (int)n, p + 1, t->name);
        return;
    }
}

static void
parse_command(struct ctx *c, yaml_node_t *v, struct mapq_task_def *t)
{
    size_t i, n;
    yaml_node_t *a;
    char d[96];

    if (v->type != YAML_SEQUENCE_NODE || nitems(v) == 0) {
        wf_perr(c, v,
                "'command' must be a non-empty list of strings (an argv, e.g. "
                "[sh, -c, \"...\"]), got %s",
                wf_describe(v, d, sizeof(d)));
        return;
    }
    n = nitems(v);
    t->argv = mapq_xcalloc(n + 1, sizeof(*t->argv));
    for (i = 0; i < n; i++) {
        a = cnode(c, v->data.sequence.items.start[i]);
        if (a->type != YAML_SCALAR_NODE || strlen(stext(a)) != slen(a)) {
            wf_perr(c, a, "'command' entries must be strings, got %s",
                    wf_describe(a, d, sizeof(d)));
            continue;
        }
        check_placeholders(c, a, t);
        t->argv[t->argc++] = mapq_xstrdup(stext(a));
    }
}

/*
 * A library path containing '/' is taken relative to the workflow file's
 * directory and made absolute; a bare name is left to the agent's search.
 */
static char *
resolve_library(const char *file, const char *lib)
{
    char dir[PATH_MAX], real[PATH_MAX], cwd[PATH_MAX];
    const char *slash = strrchr(file, '/');
    size_t n;

    if (strchr(lib, '/') == NULL || lib[0] == '/')
        return mapq_xstrdup(lib);
    if (slash == NULL)
        snprintf(dir, sizeof(dir), ".");
    else if (slash == file)
        snprintf(dir, sizeof(dir), "/");
    else
        snprintf(dir, sizeof(dir), "%.*s", (int)(slash - file), file);
    if (realpath(dir, real) == NULL) {
        if (dir[0] == '/' || getcwd(cwd, sizeof(cwd)) == NULL)
            snprintf(real, sizeof(real), "%s", dir);
        else if (snprintf(real, sizeof(real), "%s/%s", cwd, dir) < 0)
            real[0] = '\0';
    }
    while (lib[0] == '.' && lib[1] == '/')
        lib += 2;
    n = strlen(real);
    return mapq_xasprintf("%s%s%s", real,
                          n > 0 && real[n - 1] == '/' ? "" : "/", lib);
}

static void
parse_plugin(struct ctx *c, yaml_node_t *k, yaml_node_t *v,
             struct mapq_task_def *t)
{
    struct fields f;
    char where[256], *lib;

    if (!wf_expect_map(
            c, v, "'plugin' must be a mapping {library: PATH, symbol: NAME}"))
        return;
    snprintf(where, sizeof(where), "in 'plugin' of task '%s'", t->name);
    wf_get_fields(c, v, plugin_fields, PF_N, &f, where);
    if (f.val[PF_LIBRARY] == NULL)
        wf_perr(c, k, "'plugin' of task '%s' needs 'library'", t->name);
    if (f.val[PF_SYMBOL] == NULL)
        wf_perr(c, k, "'plugin' of task '%s' needs 'symbol'", t->name);
    if (f.val[PF_LIBRARY] != NULL) {
        lib = wf_get_string(c, f.val[PF_LIBRARY], "library", true);
        if (lib != NULL)
            t->plugin_library = resolve_library(c->file, lib);
        free(lib);
    }
    if (f.val[PF_SYMBOL] != NULL)
        t->plugin_symbol = wf_get_string(c, f.val[PF_SYMBOL], "symbol", true);
}

/* command or plugin, exactly one. */
static void
parse_body(struct ctx *c, yaml_node_t *k, const struct fields *f,
           struct mapq_task_def *t)
{
    if (f->val[TF_COMMAND] != NULL && f->val[TF_PLUGIN] != NULL) {
        wf_perr(c, f->key[TF_PLUGIN],
                "task '%s' has both 'command' and 'plugin'; give exactly one",
                t->name);
        return;
    }
    if (f->val[TF_COMMAND] != NULL) {
        t->kind = MAPQ_TASK_COMMAND;
        parse_command(c, f->val[TF_COMMAND], t);
    } else if (f->val[TF_PLUGIN] != NULL) {
        t->kind = MAPQ_TASK_PLUGIN;
        parse_plugin(c, f->key[TF_PLUGIN], f->val[TF_PLUGIN], t);
    } else {
        wf_perr(c, k, "task '%s' needs 'command' or 'plugin'", t->name);
    }
}

static void
parse_output_format(struct ctx *c, yaml_node_t *v, struct mapq_task_def *t)
{
    char d[96], tn[128];

    if (v->type != YAML_SCALAR_NODE || strcmp(stext(v), "text") != 0) {
        wf_perr(c, v, "'output_format' must be 'text', got %s",
                wf_describe(v, d, sizeof(d)));
        return;
    }
    if (t->output == NULL || t->output->kind != MAPQ_T_STR) {
        wf_perr(c, v, "'output_format: text' needs 'output: str', got %s",
                t->output ? fmt_type(t->output, tn, sizeof(tn)) : "no output");
        return;
    }
    t->output_text = true;
}

static void
parse_task_fields(struct ctx *c, yaml_node_t *k, const struct fields *f,
                  struct mapq_task_def *t, bool *out_bad)
{
    struct opt_nodes on = {f->val[TF_RETRIES],       f->val[TF_TIMEOUT],
                           f->val[TF_INTERRUPTIBLE], f->val[TF_CACHE],
                           f->val[TF_RESOURCES],     f->val[TF_QUEUE]};
    char owner[256], what[256];

    snprintf(owner, sizeof(owner), "task '%s'", t->name);
    if (f->val[TF_INPUTS] != NULL)
        parse_task_inputs(c, f->val[TF_INPUTS], t);
    t->input_index = wf_index_names(t->inputs, t->ninputs, sizeof(*t->inputs));
    if (f->val[TF_OUTPUT] != NULL && f->val[TF_OUTPUTS] != NULL) {
        wf_perr(c, f->key[TF_OUTPUTS],
                "task '%s' has 'output' and 'outputs': give one (several "
                "named outputs are 'outputs: {name: type, ...}')",
                t->name);
        *out_bad = true;
    } else if (f->val[TF_OUTPUT] != NULL) {
        snprintf(what, sizeof(what), "'output' of task '%s'", t->name);
        t->output = wf_get_type(c, f->val[TF_OUTPUT], what);
        *out_bad = t->output == NULL;
    } else if (f->val[TF_OUTPUTS] != NULL) {
        /* Named outputs are one record output: $NODE.NAME takes one. */
        snprintf(what, sizeof(what), "'outputs' of task '%s'", t->name);
        if (f->val[TF_OUTPUTS]->type != YAML_MAPPING_NODE)
            wf_perr(c, f->val[TF_OUTPUTS],
                    "%s must be a mapping of names to types, such as "
                    "{count: int, names: \"list[str]\"}",
                    what);
        else
            t->output = wf_get_type(c, f->val[TF_OUTPUTS], what);
        *out_bad = t->output == NULL;
    }
    parse_body(c, k, f, t);
    if (t->kind == MAPQ_TASK_PLUGIN && mapq_type_has_file(t->output))
        wf_perr(c, f->val[TF_OUTPUT] ? f->val[TF_OUTPUT] : f->val[TF_OUTPUTS],
                "task '%s': a plugin cannot output files: it runs on the "
                "agent's event loop, for small in-process work; a command "
                "or worker task can",
                t->name);
    if (t->kind == MAPQ_TASK_COMMAND && t->argv != NULL)
        check_shell_placeholders(c, f->val[TF_COMMAND],
                                 f->val[TF_SHELL_PLACEHOLDERS], t);
    else if (f->val[TF_SHELL_PLACEHOLDERS] != NULL)
        wf_perr(c, f->key[TF_SHELL_PLACEHOLDERS],
                "'shell_placeholders' applies to command tasks only");
    if (f->val[TF_OUTPUT_FORMAT] != NULL && !*out_bad)
        parse_output_format(c, f->val[TF_OUTPUT_FORMAT], t);
    if (f->val[TF_WORKER] != NULL)
        parse_worker(c, f, t);
    wf_parse_overridable(c, &on, &t->opts, owner);
    if (f->val[TF_CACHE_SERIALIZE] != NULL &&
        wf_get_bool(c, f->val[TF_CACHE_SERIALIZE], "cache_serialize",
                    &t->opts.cache_serialize) &&
        t->opts.cache_serialize && !t->opts.cache)
        wf_perr(c, f->key[TF_CACHE_SERIALIZE],
                "'cache_serialize' needs 'cache' to be enabled");
    if (f->val[TF_RETRY_BACKOFF] != NULL)
        parse_backoff(c, f->key[TF_RETRY_BACKOFF], f->val[TF_RETRY_BACKOFF],
                      &t->opts, owner);
}

static void
parse_task(struct ctx *c, yaml_node_t *k, yaml_node_t *v,
           struct mapq_task_def *t, bool *out_bad)
{
    struct fields f;
    char where[256];

    t->name = mapq_xstrdup(stext(k));
    t->pos = pos_of(k);
    wf_opts_init(&t->opts);
    if (v->type != YAML_MAPPING_NODE) {
        char d[96];

        wf_perr(c, v,
                "task '%s' must be a mapping with 'inputs', 'output' and "
                "'command' or 'plugin', got %s",
                t->name, wf_describe(v, d, sizeof(d)));
        return;
    }
    snprintf(where, sizeof(where), "in task '%s'", t->name);
    wf_get_fields(c, v, task_fields, TF_N, &f, where);
    parse_task_fields(c, k, &f, t, out_bad);
}

void
wf_parse_tasks(struct ctx *c, yaml_node_t *map)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (!wf_expect_map(c, map, "'tasks' must be a mapping of name to task"))
        return;
    n = npairs(map);
    skip = wf_check_keys(c, map);
    wf->tasks = mapq_xcalloc(n ? n : 1, sizeof(*wf->tasks));
    c->task_out_bad = mapq_xcalloc(n ? n : 1, sizeof(*c->task_out_bad));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !wf_check_ident(c, k, "task"))
            continue;
        parse_task(c, k, cnode(c, map->data.mapping.pairs.start[i].value),
                   &wf->tasks[wf->ntasks], &c->task_out_bad[wf->ntasks]);
        wf->ntasks++;
    }
    free(skip);
}
