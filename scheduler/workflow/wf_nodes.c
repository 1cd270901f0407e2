/*
 * wf_nodes.c - the `nodes` section and the workflow's `output`: each
 * node's task and settings, its `over` and `with` bindings, the
 * references in them ($inputs.NAME, $NODE) and the type checks of what
 * they bind.
 *
 * Fills c->wf->nodes (with each node's deps and effective settings),
 * c->ni and c->wf->outputs. Literal bindings are converted here to the
 * type of the input they feed; the lengths of zipped lists are checked by
 * wf_zip.c, and the order of nodes by wf_graph.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_taskspec.h"
#include "mapq_value.h"
#include "wf_int.h"

/* ---- nodes: settings --------------------------------------------------- */

enum {
    NF_MAP,
    NF_TASK,
    NF_OVER,
    NF_WITH,
    NF_CONCURRENCY,
    NF_MIN_SUCCESS_RATIO,
    NF_MIN_SUCCESSES,
    NF_RUN_ALL,
    NF_SYSTEM_RETRIES,
    NF_INTERRUPTIBLE_FAILURES,
    NF_RETRIES,
    NF_TIMEOUT,
    NF_INTERRUPTIBLE,
    NF_CACHE,
    NF_RESOURCES,
    NF_QUEUE,
    NF_BATCH,
    NF_N
};
static const char *const node_fields[NF_N] = {"map",
                                              "task",
                                              "over",
                                              "with",
                                              "concurrency",
                                              "min_success_ratio",
                                              "min_successes",
                                              "run_all",
                                              "system_retries",
                                              "interruptible_failures",
                                              "retries",
                                              "timeout",
                                              "interruptible",
                                              "cache",
                                              "resources",
                                              "queue",
                                              "batch"};

/* Finds the node's task from `map:` or `task:`. */
static void
node_task(struct ctx *c, size_t i, const struct fields *f)
{
    struct mapq_node *n = &c->wf->nodes[i];
    yaml_node_t *tv;
    long t;
    char hint[MSG_MAX / 2];

    if (f->val[NF_MAP] != NULL && f->val[NF_TASK] != NULL) {
        wf_perr(c, f->key[NF_TASK],
                "node '%s' has both 'map' and 'task'; give exactly one",
                n->name);
        return;
    }
    if (f->val[NF_MAP] == NULL && f->val[NF_TASK] == NULL) {
        wf_perr(c, c->ni[i].key, "node '%s' needs 'map: TASK' or 'task: TASK'",
                n->name);
        return;
    }
    n->is_map = f->val[NF_MAP] != NULL;
    tv = n->is_map ? f->val[NF_MAP] : f->val[NF_TASK];
    if (!wf_is_string(tv)) {
        wf_perr(c, tv, "'%s' must name a task, got %s",
                n->is_map ? "map" : "task",
                wf_describe(tv, hint, sizeof(hint)));
        return;
    }
    t = mapq_workflow_find_task(c->wf, stext(tv));
    if (t < 0) {
        wf_perr(c, tv, "unknown task '%s'%s", stext(tv),
                wf_hint_names(&c->probs, stext(tv), c->wf->tasks, c->wf->ntasks,
                              sizeof(*c->wf->tasks), "tasks", hint,
                              sizeof(hint)));
        return;
    }
    n->task = (size_t)t;
    c->ni[i].task_ok = true;
}

/* min_success_ratio, min_successes, run_all, over: map nodes only. */
static bool
map_only(struct ctx *c, const struct mapq_node *n, const struct fields *f,
         int field)
{
    if (f->val[field] == NULL)
        return false;
    if (n->is_map || (f->val[NF_MAP] == NULL && f->val[NF_TASK] == NULL))
        return true;
    wf_perr(c, f->key[field],
            "'%s' is only allowed in map nodes; node '%s' is a task node",
            node_fields[field], n->name);
    return false;
}

static void
node_map_settings(struct ctx *c, struct mapq_node *n, const struct fields *f)
{
    if (f->val[NF_CONCURRENCY] != NULL)
        wf_get_int(c, f->val[NF_CONCURRENCY], "concurrency", 1, INT64_MAX,
                   &n->concurrency);
    if (map_only(c, n, f, NF_BATCH))
        wf_get_int(c, f->val[NF_BATCH], "batch", 1, MAPQ_BATCH_MAX, &n->batch);
    if (map_only(c, n, f, NF_MIN_SUCCESS_RATIO))
        wf_get_real(c, f->val[NF_MIN_SUCCESS_RATIO], "min_success_ratio", 0,
                    false, 1, "a number between 0 and 1",
                    &n->min_success_ratio);
    if (map_only(c, n, f, NF_MIN_SUCCESSES))
        wf_get_int(c, f->val[NF_MIN_SUCCESSES], "min_successes", 0, INT64_MAX,
                   &n->min_successes);
    if (map_only(c, n, f, NF_RUN_ALL))
        wf_get_bool(c, f->val[NF_RUN_ALL], "run_all", &n->run_all);
    if (f->val[NF_SYSTEM_RETRIES] != NULL)
        wf_get_small(c, f->val[NF_SYSTEM_RETRIES], "system_retries",
                     &n->system_retries);
    n->interruptible_failures =
        n->system_retries > 0 ? n->system_retries - 1 : 0;
    if (f->val[NF_INTERRUPTIBLE_FAILURES] != NULL)
        wf_get_small(c, f->val[NF_INTERRUPTIBLE_FAILURES],
                     "interruptible_failures", &n->interruptible_failures);
}

/* T for a task node; list[T], or list[T?] when failures may leave nulls. */
static void
node_output_type(struct ctx *c, struct mapq_node *n)
{
    const struct mapq_type *out = c->wf->tasks[n->task].output;
    struct mapq_type *elem;

    if (out == NULL)
        return;
    if (!n->is_map) {
        n->output_type = mapq_type_dup(out);
        return;
    }
    elem = mapq_type_dup(out);
    if (n->min_success_ratio < 1.0 || n->min_successes >= 0)
        elem->optional = true;
    n->output_type = mapq_type_new(MAPQ_T_LIST, false, elem);
}

static void
parse_node(struct ctx *c, size_t i, yaml_node_t *k, yaml_node_t *v)
{
    struct mapq_node *n = &c->wf->nodes[i];
    struct fields f;
    char where[256], owner[256];

    n->name = mapq_xstrdup(stext(k));
    n->pos = pos_of(k);
    n->min_success_ratio = 1.0;
    n->min_successes = -1;
    n->system_retries = c->wf->system_retries;
    c->ni[i].key = k;
    if (v->type != YAML_MAPPING_NODE) {
        wf_perr(c, v,
                "node '%s' must be a mapping with 'map' or 'task', got %s",
                n->name, wf_describe(v, where, sizeof(where)));
        wf_opts_init(&n->opts);
        return;
    }
    snprintf(where, sizeof(where), "in node '%s'", n->name);
    wf_get_fields(c, v, node_fields, NF_N, &f, where);
    node_task(c, i, &f);
    if (c->ni[i].task_ok)
        wf_opts_copy(&n->opts, &c->wf->tasks[n->task].opts);
    else
        wf_opts_init(&n->opts);
    snprintf(owner, sizeof(owner), "node '%s'", n->name);
    wf_parse_overridable(
        c,
        &(struct opt_nodes){f.val[NF_RETRIES], f.val[NF_TIMEOUT],
                            f.val[NF_INTERRUPTIBLE], f.val[NF_CACHE],
                            f.val[NF_RESOURCES], f.val[NF_QUEUE]},
        &n->opts, owner);
    node_map_settings(c, n, &f);
    if (map_only(c, n, &f, NF_OVER)) {
        c->ni[i].over = f.val[NF_OVER];
        c->ni[i].over_key = f.key[NF_OVER];
    }
    c->ni[i].with = f.val[NF_WITH];
    if (c->ni[i].task_ok)
        node_output_type(c, n);
}

void
wf_parse_nodes(struct ctx *c, yaml_node_t *map)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (!wf_expect_map(c, map, "'nodes' must be a mapping of name to node"))
        return;
    n = npairs(map);
    skip = wf_check_keys(c, map);
    wf->nodes = mapq_xcalloc(n ? n : 1, sizeof(*wf->nodes));
    c->ni = mapq_xcalloc(n ? n : 1, sizeof(*c->ni));
    for (i = 0; i < n; i++) {
        k = cnode(c, map->data.mapping.pairs.start[i].key);
        if (skip[i] || !wf_check_ident(c, k, "node"))
            continue;
        if (strcmp(stext(k), "inputs") == 0) {
            wf_perr(c, k,
                    "node name 'inputs' is reserved ($inputs.NAME names "
                    "workflow inputs)");
            continue;
        }
        parse_node(c, wf->nnodes, k,
                   cnode(c, map->data.mapping.pairs.start[i].value));
        wf->nnodes++;
    }
    free(skip);
}

/* ---- nodes: bindings --------------------------------------------------- */

/* True for a string scalar starting with '$': a reference, or $$ escape. */
static bool
is_ref(const yaml_node_t *v)
{
    return wf_is_string(v) && stext(v)[0] == '$';
}

/* Whether s is NODE or NODE.MEMBER, both identifiers. */
static bool
node_ref_ok(const char *s)
{
    size_t n = wf_ident_len(s);

    return n > 0 &&
           (s[n] == '\0' || (s[n] == '.' && wf_valid_ident(s + n + 1)));
}

/* Resolves $inputs.NAME, $NODE or $NODE.MEMBER at v into b; false
 * (reported) if bad. */
static bool
resolve_ref(struct ctx *c, yaml_node_t *v, struct mapq_binding *b)
{
    const struct mapq_workflow *wf = c->wf;
    const char *s = stext(v) + 1;
    char hint[MSG_MAX / 2];
    long k;

    if (strncmp(s, "inputs.", 7) == 0 && wf_valid_ident(s + 7)) {
        k = mapq_workflow_find_input(wf, s + 7);
        if (k < 0) {
            wf_perr(c, v, "unknown input '%s'%s", s + 7,
                    wf_hint_names(&c->probs, s + 7, wf->inputs, wf->ninputs,
                                  sizeof(*wf->inputs), "inputs", hint,
                                  sizeof(hint)));
            return false;
        }
        b->kind = MAPQ_REF_INPUT;
        b->ref = mapq_xstrdup(s + 7);
    } else if (node_ref_ok(s) &&
               !(wf_ident_len(s) == 6 && strncmp(s, "inputs", 6) == 0)) {
        size_t n = wf_ident_len(s);

        b->ref = mapq_xstrndup(s, n);
        k = mapq_workflow_find_node(wf, b->ref);
        if (k < 0) {
            wf_perr(c, v, "unknown node '%s'%s", b->ref,
                    c->probs.n < PROBLEMS_SHOWN
                        ? wf_suggest_in(b->ref, wf->nodes, wf->nnodes,
                                        sizeof(*wf->nodes), hint, sizeof(hint))
                        : "");
            return false;
        }
        b->kind = MAPQ_REF_NODE;
        if (s[n] == '.')
            b->member = mapq_xstrdup(s + n + 1);
    } else {
        wf_perr(c, v,
                "malformed reference '%s' (expected $inputs.NAME, $NODE or "
                "$NODE.OUTPUT; write $$ for a literal $)",
                stext(v));
        return false;
    }
    b->target = (size_t)k;
    return true;
}

static void
add_dep(struct mapq_node *n, size_t j)
{
    size_t i;

    for (i = 0; i < n->ndeps; i++)
        if (n->deps[i] == j)
            return;
    n->deps = mapq_xrealloc(n->deps, (n->ndeps + 1) * sizeof(*n->deps));
    n->deps[n->ndeps++] = j;
}

/*
 * The type of $NODE.MEMBER, given the node's output type out: the
 * member's type for a record, a list of it for a list of records (a map
 * node), optional where the record may be null. NULL (reported) when out
 * has no such member.
 */
static struct mapq_type *
member_type(struct ctx *c, yaml_node_t *v, const struct mapq_node *src,
            const struct mapq_type *out, const char *member)
{
    const struct mapq_type *rec = out->kind == MAPQ_T_LIST ? out->elem : out;
    const struct mapq_type *mt = mapq_type_member(rec, member, strlen(member));
    struct mapq_type *t;
    char tn[256];

    if (mt == NULL) {
        wf_perr(c, v, "node '%s' has no output '%s' (its output is %s)",
                src->name, member, fmt_type(out, tn, sizeof(tn)));
        return NULL;
    }
    t = mapq_type_dup(mt);
    if (rec->optional && t->kind != MAPQ_T_ANY)
        t->optional = true; /* a null record has a null member */
    if (out->kind == MAPQ_T_LIST)
        t = mapq_type_new(MAPQ_T_LIST, out->optional, t);
    return t;
}

/* The type of what reference b names; NULL when unknown (or reported). */
static const struct mapq_type *
ref_type(struct ctx *c, yaml_node_t *v, struct mapq_binding *b)
{
    const struct mapq_node *src;

    if (b->kind == MAPQ_REF_INPUT)
        return c->wf->inputs[b->target].type;
    src = &c->wf->nodes[b->target];
    if (!c->ni[b->target].task_ok || c->task_out_bad[src->task])
        return NULL;
    if (src->output_type == NULL) {
        wf_perr(c, v, "node '%s' has no output (task '%s' declares none)",
                src->name, c->wf->tasks[src->task].name);
        return NULL;
    }
    if (b->member == NULL)
        return src->output_type;
    if (b->member_type == NULL)
        b->member_type = member_type(c, v, src, src->output_type, b->member);
    return b->member_type;
}

/* Not a list, dict, record or any: int, float, bool, str, bytes (optional
 * or not). */
static bool
is_scalar_type(const struct mapq_type *t)
{
    return t->kind != MAPQ_T_LIST && t->kind != MAPQ_T_DICT &&
           t->kind != MAPQ_T_RECORD && t->kind != MAPQ_T_ANY;
}

static void
list_to_scalar(struct ctx *c, const struct mapq_node *n, yaml_node_t *v,
               const struct mapq_param *p)
{
    char tn[128];

    wf_perr(c, v, "binding a list to scalar parameter '%s' (%s); %s", p->name,
            fmt_type(p->type, tn, sizeof(tn)),
            n->is_map ? "map over it with 'over' instead"
                      : "use a map node and map over it with 'over' instead");
}

static void
check_with_type(struct ctx *c, const struct mapq_node *n, yaml_node_t *v,
                const struct mapq_param *p, const struct mapq_type *src)
{
    char a[128], b[128];

    if (mapq_type_is_list(src) && is_scalar_type(p->type))
        list_to_scalar(c, n, v, p);
    else if (!mapq_type_assignable(src, p->type))
        wf_perr(c, v, "cannot bind %s (%s) to parameter '%s' (%s)", stext(v),
                fmt_type(src, a, sizeof(a)), p->name,
                fmt_type(p->type, b, sizeof(b)));
}

static void
check_over_type(struct ctx *c, yaml_node_t *v, const struct mapq_param *p,
                const struct mapq_type *src)
{
    char a[128], b[128];

    if (src->kind == MAPQ_T_ANY)
        return;
    if (!mapq_type_is_list(src))
        wf_perr(c, v, "cannot map over %s: it is %s, not a list", stext(v),
                fmt_type(src, a, sizeof(a)));
    else if (src->optional)
        wf_perr(c, v, "cannot map over %s: it is %s and may be null", stext(v),
                fmt_type(src, a, sizeof(a)));
    else if (!mapq_type_assignable(wf_child_type(src), p->type))
        wf_perr(c, v, "cannot map %s (%s) over parameter '%s' (%s)", stext(v),
                fmt_type(src, a, sizeof(a)), p->name,
                fmt_type(p->type, b, sizeof(b)));
}

/* Fills b from value v bound to task input p of node i. */
static void
make_binding(struct ctx *c, size_t i, const struct mapq_param *p,
             yaml_node_t *v, bool over, struct mapq_binding *b)
{
    struct mapq_node *n = &c->wf->nodes[i];
    struct mapq_type lt = {.kind = MAPQ_T_LIST, .elem = p->type};
    const struct mapq_type *src;
    char subject[256];

    b->param = mapq_xstrdup(p->name);
    b->kind = MAPQ_REF_LITERAL;
    b->pos = pos_of(v);
    mapq_buf_init(&b->literal, MAPQ_VALUE_MAX);
    snprintf(subject, sizeof(subject), "'%s'", p->name);
    if (is_ref(v) && stext(v)[1] != '$') {
        if (!resolve_ref(c, v, b))
            return;
        if (b->kind == MAPQ_REF_NODE)
            add_dep(n, b->target);
        src = ref_type(c, v, b);
        if (src == NULL || p->type == NULL)
            return;
        if (over)
            check_over_type(c, v, p, src);
        else
            check_with_type(c, n, v, p, src);
        return;
    }
    if (p->type == NULL)
        return;
    if (is_ref(v))
        wf_conv_string(c, v, stext(v) + 1, over ? &lt : p->type, &b->literal,
                       subject);
    else if (!over && v->type == YAML_SEQUENCE_NODE && is_scalar_type(p->type))
        list_to_scalar(c, n, v, p);
    else
        wf_conv_literal(c, v, over ? &lt : p->type, &b->literal, subject);
}

/* Binds the entries of an `over` or `with` mapping of node i. */
static void
bind_map(struct ctx *c, size_t i, yaml_node_t *map, bool over, char *bound)
{
    struct mapq_node *n = &c->wf->nodes[i];
    const struct mapq_task_def *t = &c->wf->tasks[n->task];
    struct mapq_binding *arr;
    size_t *cnt = over ? &n->nover : &n->nwith;
    size_t j, np;
    bool *skip;
    yaml_node_t *k;
    long idx;
    char hint[MSG_MAX / 2];

    if (!wf_expect_map(c, map,
                       over
                           ? "'over' must be a mapping of task input to list"
                           : "'with' must be a mapping of task input to value"))
        return;
    np = npairs(map);
    skip = wf_check_keys(c, map);
    arr = mapq_xcalloc(np ? np : 1, sizeof(*arr));
    if (over)
        n->over = arr;
    else
        n->with = arr;
    for (j = 0; j < np; j++) {
        k = cnode(c, map->data.mapping.pairs.start[j].key);
        if (skip[j])
            continue;
        idx = mapq_workflow_find_param(t, stext(k), slen(k));
        if (idx < 0) {
            wf_perr(c, k, "task '%s' has no input '%s'%s", t->name, stext(k),
                    wf_hint_names(&c->probs, stext(k), t->inputs, t->ninputs,
                                  sizeof(*t->inputs), "inputs", hint,
                                  sizeof(hint)));
            continue;
        }
        if (bound[idx]) {
            wf_perr(c, k,
                    "input '%s' of task '%s' is bound twice, in 'over' and in "
                    "'with'",
                    stext(k), t->name);
            continue;
        }
        bound[idx] = 1;
        make_binding(c, i, &t->inputs[idx],
                     cnode(c, map->data.mapping.pairs.start[j].value), over,
                     &arr[(*cnt)++]);
    }
    free(skip);
}

void
wf_node_bindings(struct ctx *c, size_t i)
{
    struct mapq_node *n = &c->wf->nodes[i];
    const struct nodeinfo *ni = &c->ni[i];
    const struct mapq_task_def *t;
    char *bound;
    size_t j;

    if (!ni->task_ok)
        return;
    t = &c->wf->tasks[n->task];
    bound = mapq_xcalloc(t->ninputs ? t->ninputs : 1, 1);
    if (ni->over != NULL)
        bind_map(c, i, ni->over, true, bound);
    if (ni->with != NULL)
        bind_map(c, i, ni->with, false, bound);
    for (j = 0; j < t->ninputs; j++)
        if (!bound[j])
            wf_perr(c, ni->key,
                    "input '%s' of task '%s' is not bound in node '%s'; add it "
                    "to %s",
                    t->inputs[j].name, t->name, n->name,
                    n->is_map ? "'over' or 'with'" : "'with'");
    free(bound);
    if (n->is_map &&
        (ni->over == NULL ||
         (ni->over->type == YAML_MAPPING_NODE && npairs(ni->over) == 0)))
        wf_perr(c, ni->over_key ? ni->over_key : ni->key,
                "map node '%s' needs at least one 'over' entry (a list to map "
                "over)",
                n->name);
}

/* ---- workflow output ---------------------------------------------------- */

static void
output_ref(struct ctx *c, yaml_node_t *v, struct mapq_binding *b,
           const char *name)
{
    char d[96];

    b->param = name != NULL ? mapq_xstrdup(name) : NULL;
    b->kind = MAPQ_REF_LITERAL;
    b->pos = pos_of(v);
    mapq_buf_init(&b->literal, 0);
    if (!is_ref(v) || stext(v)[1] == '$') {
        wf_perr(c, v,
                "'output' must be a reference such as $NODE or $inputs.NAME, "
                "got %s",
                wf_describe(v, d, sizeof(d)));
        return;
    }
    if (resolve_ref(c, v, b) && b->kind == MAPQ_REF_NODE)
        ref_type(c, v, b);
}

void
wf_parse_output(struct ctx *c, yaml_node_t *v)
{
    struct mapq_workflow *wf = c->wf;
    bool *skip;
    size_t i, n;
    yaml_node_t *k;

    if (v->type != YAML_MAPPING_NODE) {
        wf->outputs = mapq_xcalloc(1, sizeof(*wf->outputs));
        wf->noutputs = 1;
        output_ref(c, v, &wf->outputs[0], NULL);
        return;
    }
    wf->output_is_map = true;
    n = npairs(v);
    skip = wf_check_keys(c, v);
    wf->outputs = mapq_xcalloc(n ? n : 1, sizeof(*wf->outputs));
    for (i = 0; i < n; i++) {
        k = cnode(c, v->data.mapping.pairs.start[i].key);
        if (skip[i] || !wf_check_ident(c, k, "output"))
            continue;
        output_ref(c, cnode(c, v->data.mapping.pairs.start[i].value),
                   &wf->outputs[wf->noutputs++], stext(k));
    }
    free(skip);
}
