/*
 * wf_opts.c - the settings a node may override (SPEC section 1
 * "Overrides"): retries, timeout, interruptible, cache, resources, queue.
 *
 * Read the same way from a task, which sets them, and from a node, which
 * overrides the task's; each found setting replaces the value in the
 * struct mapq_task_opts it is given, whole.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "wf_int.h"

#define CACHE_TTL_MAX_MS (INT64_C(100) * 365 * 24 * 3600 * 1000)

enum { CF_VERSION, CF_TTL, CF_N };
static const char *const cache_fields[CF_N] = {"version", "ttl"};

enum { RF_CPU, RF_MEM, RF_N };
static const char *const resource_fields[RF_N] = {"cpu", "mem"};

/* cache: false | true | {version: STR, ttl: DURATION}; owner "task 'x'". */
static void
parse_cache(struct ctx *c, yaml_node_t *v, struct mapq_task_opts *o,
            const char *owner)
{
    struct fields f;
    struct scal s;
    char where[256], d[96], *ver;

    free(o->cache_version);
    o->cache_version = mapq_xstrdup("");
    o->cache_ttl_ms = 0;
    o->cache = false;
    if (v->type == YAML_SCALAR_NODE) {
        wf_resolve(stext(v), slen(v), is_plain(v), &s);
        if (s.kind == SK_BOOL) {
            o->cache = s.b;
            return;
        }
    }
    if (v->type != YAML_MAPPING_NODE) {
        wf_perr(c, v,
                "'cache' must be true, false or {version: STR, ttl: DURATION}, "
                "got %s",
                wf_describe(v, d, sizeof(d)));
        return;
    }
    o->cache = true;
    snprintf(where, sizeof(where), "in 'cache' of %s", owner);
    wf_get_fields(c, v, cache_fields, CF_N, &f, where);
    if (f.val[CF_VERSION] != NULL) {
        ver = wf_get_string(c, f.val[CF_VERSION], "version", false);
        if (ver != NULL) {
            free(o->cache_version);
            o->cache_version = ver;
        }
    }
    if (f.val[CF_TTL] != NULL &&
        wf_get_duration(c, f.val[CF_TTL], "ttl", &o->cache_ttl_ms) &&
        o->cache_ttl_ms > CACHE_TTL_MAX_MS)
        wf_perr(c, f.val[CF_TTL],
                "'ttl' is at most 100 years (876000h), got %s",
                stext(f.val[CF_TTL]));
}

/* resources: {cpu: number > 0, mem: SIZE}; replaces both. */
static void
parse_resources(struct ctx *c, yaml_node_t *v, struct mapq_task_opts *o,
                const char *owner)
{
    struct fields f;
    char where[256];

    o->cpu = 0;
    o->mem_bytes = 0;
    if (!wf_expect_map(
            c, v, "'resources' must be a mapping like {cpu: 2, mem: 512Mi}"))
        return;
    snprintf(where, sizeof(where), "in 'resources' of %s", owner);
    wf_get_fields(c, v, resource_fields, RF_N, &f, where);
    if (f.val[RF_CPU] != NULL)
        wf_get_real(c, f.val[RF_CPU], "cpu", 0, true, 1e6,
                    "a number greater than 0 and at most 1000000", &o->cpu);
    if (f.val[RF_MEM] != NULL)
        wf_get_size(c, f.val[RF_MEM], "mem", &o->mem_bytes);
}

static void
parse_queue(struct ctx *c, yaml_node_t *v, struct mapq_task_opts *o)
{
    char d[96];

    if (v->type == YAML_SCALAR_NODE && strlen(stext(v)) == slen(v) &&
        wf_valid_word(stext(v), "_.-", true)) {
        free(o->queue);
        o->queue = mapq_xstrdup(stext(v));
        return;
    }
    wf_perr(c, v, "'queue' must be a name matching [A-Za-z0-9_.-]+, got %s",
            wf_describe(v, d, sizeof(d)));
}

/* Applies the overridable settings found (non-NULL) in on to o. */
void
wf_parse_overridable(struct ctx *c, const struct opt_nodes *on,
                     struct mapq_task_opts *o, const char *owner)
{
    int64_t ms;

    if (on->retries != NULL)
        wf_get_small(c, on->retries, "retries", &o->retries);
    if (on->timeout != NULL && wf_get_duration(c, on->timeout, "timeout", &ms))
        o->timeout_ms = ms;
    if (on->interruptible != NULL)
        wf_get_bool(c, on->interruptible, "interruptible", &o->interruptible);
    if (on->cache != NULL)
        parse_cache(c, on->cache, o, owner);
    if (on->resources != NULL)
        parse_resources(c, on->resources, o, owner);
    if (on->queue != NULL)
        parse_queue(c, on->queue, o);
}
