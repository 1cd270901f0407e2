/*
 * wf_model.c - the lifetime of the workflow model and its lookups by
 * name.
 *
 * Owns every allocation of struct mapq_workflow (mapq_workflow.h): what
 * the parse builds is freed here, whole. Names are found through sorted
 * indexes, so that no lookup costs more than a binary search. Reads no
 * YAML and reports nothing.
 */
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "wf_int.h"

void
wf_opts_init(struct mapq_task_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->cache_version = mapq_xstrdup("");
    o->queue = mapq_xstrdup("default");
}

void
wf_opts_copy(struct mapq_task_opts *dst, const struct mapq_task_opts *src)
{
    *dst = *src;
    dst->cache_version = mapq_xstrdup(src->cache_version);
    dst->queue = mapq_xstrdup(src->queue);
}

static void
opts_release(struct mapq_task_opts *o)
{
    free(o->cache_version);
    free(o->queue);
}

static void
param_release(struct mapq_param *p)
{
    free(p->name);
    mapq_type_free(p->type);
    mapq_type_free(p->given);
    mapq_buf_release(&p->value);
}

static void
binding_release(struct mapq_binding *b)
{
    free(b->param);
    free(b->ref);
    free(b->member);
    mapq_type_free(b->member_type);
    mapq_buf_release(&b->literal);
}

static void
task_release(struct mapq_task_def *t)
{
    size_t i;

    free(t->name);
    for (i = 0; i < t->ninputs; i++)
        param_release(&t->inputs[i]);
    free(t->inputs);
    mapq_type_free(t->output);
    for (i = 0; i < t->argc; i++)
        free(t->argv[i]);
    free(t->argv);
    free(t->input_index);
    free(t->plugin_library);
    free(t->plugin_symbol);
    opts_release(&t->opts);
}

static void
node_release(struct mapq_node *n)
{
    size_t i;

    free(n->name);
    for (i = 0; i < n->nover; i++)
        binding_release(&n->over[i]);
    free(n->over);
    for (i = 0; i < n->nwith; i++)
        binding_release(&n->with[i]);
    free(n->with);
    opts_release(&n->opts);
    mapq_type_free(n->output_type);
    free(n->deps);
}

void
mapq_workflow_free(struct mapq_workflow *wf)
{
    size_t i;

    if (wf == NULL)
        return;
    free(wf->name);
    free(wf->file);
    for (i = 0; i < wf->ninputs; i++)
        param_release(&wf->inputs[i]);
    free(wf->inputs);
    for (i = 0; i < wf->ntasks; i++)
        task_release(&wf->tasks[i]);
    free(wf->tasks);
    for (i = 0; i < wf->nnodes; i++)
        node_release(&wf->nodes[i]);
    free(wf->nodes);
    free(wf->order);
    for (i = 0; i < wf->noutputs; i++)
        binding_release(&wf->outputs[i]);
    free(wf->outputs);
    free(wf->input_index);
    free(wf->task_index);
    free(wf->node_index);
    free(wf);
}

/* Orders name refs by name, then position: the first of equal names
 * comes first, as a linear search would find it. */
static int
ref_cmp(const void *a, const void *b)
{
    const struct mapq_name_ref *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int r = memcmp(x->name, y->name, n);

    if (r != 0)
        return r;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return (x->idx > y->idx) - (x->idx < y->idx);
}

/* Compares a key (idx unused) with a ref by name only. */
static int
key_cmp(const void *key, const void *ref)
{
    const struct mapq_name_ref *k = key, *r = ref;
    size_t n = k->len < r->len ? k->len : r->len;
    int c = memcmp(k->name, r->name, n);

    if (c != 0)
        return c;
    return (k->len > r->len) - (k->len < r->len);
}

/*
 * The names of n structs of size bytes at arr (each starting with its
 * char *name), sorted, so that lookups by name cost a binary search: a
 * workflow of 40,000 tasks and nodes took 27 s with linear ones. Caller
 * frees it with free().
 */
struct mapq_name_ref *
wf_index_names(const void *arr, size_t n, size_t size)
{
    struct mapq_name_ref *v = mapq_xcalloc(n ? n : 1, sizeof(*v));
    const char *name;
    size_t i;

    for (i = 0; i < n; i++) {
        memcpy(&name, (const char *)arr + i * size, sizeof(name));
        v[i].name = name != NULL ? name : "";
        v[i].len = strlen(v[i].name);
        v[i].idx = i;
    }
    qsort(v, n, sizeof(*v), ref_cmp);
    return v;
}

/* The position of name (len bytes) among n structs, or -1: by index when
 * there is one, else by a linear search. */
static long
find_name(const struct mapq_name_ref *index, const void *arr, size_t n,
          size_t size, const char *name, size_t len)
{
    struct mapq_name_ref key = {name, len, 0};
    const struct mapq_name_ref *hit;
    const char *s;
    size_t i;

    if (index == NULL) {
        for (i = 0; i < n; i++) {
            memcpy(&s, (const char *)arr + i * size, sizeof(s));
            if (s != NULL && strlen(s) == len && memcmp(s, name, len) == 0)
                return (long)i;
        }
        return -1;
    }
    hit = bsearch(&key, index, n, sizeof(*index), key_cmp);
    if (hit == NULL)
        return -1;
    while (hit > index && key_cmp(&key, hit - 1) == 0)
        hit--;
    return (long)hit->idx;
}

long
mapq_workflow_find_node(const struct mapq_workflow *wf, const char *name)
{
    return find_name(wf->node_index, wf->nodes, wf->nnodes, sizeof(*wf->nodes),
                     name, strlen(name));
}

long
mapq_workflow_find_task(const struct mapq_workflow *wf, const char *name)
{
    return find_name(wf->task_index, wf->tasks, wf->ntasks, sizeof(*wf->tasks),
                     name, strlen(name));
}

long
mapq_workflow_find_input(const struct mapq_workflow *wf, const char *name)
{
    return find_name(wf->input_index, wf->inputs, wf->ninputs,
                     sizeof(*wf->inputs), name, strlen(name));
}

long
mapq_workflow_find_param(const struct mapq_task_def *t, const char *name,
                         size_t len)
{
    return find_name(t->input_index, t->inputs, t->ninputs, sizeof(*t->inputs),
                     name, len);
}
