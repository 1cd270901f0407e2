/*
 * drv_bind.c - a node's inputs: bindings resolved and checked into its
 * parameters, and the canonical inputs and key of each subtask.
 *
 * Owns the params, literals and iface of a node_run (node_reset() in
 * driver.c frees them). Never sends anything: a binding that does not
 * check is returned as a message for the controller to fail with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_value.h"

const msgpack_object *
drv_resolve(struct exec *x, const struct mapq_binding *b, msgpack_unpacked *lit)
{
    char err[MAPQ_ERR_LEN];

    switch (b->kind) {
    case MAPQ_REF_LITERAL:
        if (mapq_value_unpack(b->literal.data, b->literal.len, lit, err) !=
            MAPQ_OK)
            return NULL;
        return &lit->data;
    case MAPQ_REF_INPUT:
        return mapq_value_map_get(&x->inputs_u.data, b->ref);
    case MAPQ_REF_NODE: {
        struct node_run *nr = &x->nodes[b->target];

        if (!nr->output_unpacked &&
            mapq_value_unpack(nr->output.data, nr->output.len, &nr->output_u,
                              err) != MAPQ_OK)
            return NULL;
        nr->output_unpacked = true;
        return &nr->output_u.data;
    }
    }
    return NULL;
}

static int
param_cmp(const void *a, const void *b)
{
    const struct param_src *x = a, *y = b;

    return strcmp(x->name, y->name);
}

static const struct mapq_param *
task_param(const struct mapq_task_def *t, const char *name)
{
    size_t i;

    for (i = 0; i < t->ninputs; i++)
        if (strcmp(t->inputs[i].name, name) == 0)
            return &t->inputs[i];
    return NULL;
}

static void
build_iface(struct node_run *nr, const struct mapq_task_def *t)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    char tb[256];
    size_t i;

    for (i = 0; i < nr->nparams; i++)
        mapq_buf_printf(&b, "%s%s:%s", i ? "," : "", nr->params[i].name,
                        mapq_type_format(nr->params[i].type, tb, sizeof(tb)));
    mapq_buf_printf(&b, "->%s",
                    t->output ? mapq_type_format(t->output, tb, sizeof(tb))
                              : "none");
    nr->iface = mapq_buf_detach(&b, NULL);
}

/* Resolves and checks one binding into nr->params[j]; -1 with why. */
static int
bind_param(struct exec *x, size_t k, const struct mapq_binding *b, bool over,
           size_t j, char *why)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    const struct mapq_task_def *t = &x->wf->tasks[n->task];
    struct node_run *nr = &x->nodes[k];
    struct param_src *ps = &nr->params[j];
    const struct mapq_param *p = task_param(t, b->param);
    const msgpack_object *v = drv_resolve(x, b, &nr->literals[j]);
    /* A literal was converted to the parameter's type (a list of it for
     * 'over') by the workflow's parse: it is not checked again. Inputs
     * and node outputs are, as they come from Redis and may be 'any'. */
    bool checked = b->kind == MAPQ_REF_LITERAL;
    char err[MAPQ_ERR_LEN];
    uint32_t i;

    if (p == NULL || v == NULL) {
        snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s' has no value",
                 n->name, b->param);
        return -1;
    }
    ps->name = p->name;
    ps->type = p->type;
    mapq_buf_init(&ps->bound, 0);
    if (over) {
        mapq_assert(!checked || v->type == MSGPACK_OBJECT_ARRAY);
        if (v->type != MSGPACK_OBJECT_ARRAY) {
            snprintf(why, EXEC_ERROR_LEN,
                     "node '%s': 'over' input '%s' is not a list (%s)", n->name,
                     b->param, mapq_type_describe(v));
            return -1;
        }
        for (i = 0; !checked && i < v->via.array.size; i++)
            if (mapq_type_check(p->type, &v->via.array.ptr[i], err) !=
                MAPQ_OK) {
                snprintf(why, EXEC_ERROR_LEN,
                         "node '%s': input '%s' element %u: %s", n->name,
                         b->param, i, err);
                return -1;
            }
        ps->list = v;
        return 0;
    }
    if (!checked && mapq_type_check(p->type, v, err) != MAPQ_OK) {
        snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s': %s", n->name,
                 b->param, err);
        return -1;
    }
    mapq_value_canonical(v, &ps->bound);
    return 0;
}

int
drv_bind_node(struct exec *x, size_t k, char *why)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    struct node_run *nr = &x->nodes[k];
    size_t j, nb = n->nover + n->nwith;
    const char *first = NULL;
    uint64_t len = 0;

    nr->nparams = nb;
    nr->params = mapq_xcalloc(nb + 1, sizeof(*nr->params));
    nr->literals = mapq_xcalloc(nb + 1, sizeof(*nr->literals));
    for (j = 0; j < nb; j++)
        msgpack_unpacked_init(&nr->literals[j]);
    for (j = 0; j < n->nover; j++) {
        if (bind_param(x, k, &n->over[j], true, j, why) != 0)
            return -1;
        if (first != NULL && nr->params[j].list->via.array.size != len) {
            snprintf(why, EXEC_ERROR_LEN,
                     "node '%s': input lists have different lengths: '%s' "
                     "has %llu, '%s' has %u",
                     n->name, first, (unsigned long long)len, n->over[j].param,
                     nr->params[j].list->via.array.size);
            return -1;
        }
        first = n->over[j].param;
        len = nr->params[j].list->via.array.size;
    }
    for (j = 0; j < n->nwith; j++)
        if (bind_param(x, k, &n->with[j], false, n->nover + j, why) != 0)
            return -1;
    qsort(nr->params, nb, sizeof(*nr->params), param_cmp);
    nr->n = n->is_map ? len : 1;
    build_iface(nr, &x->wf->tasks[n->task]);
    return 0;
}

void
drv_subtask_inputs(const struct node_run *nr, uint64_t i, struct mapq_buf *out)
{
    msgpack_packer pk;
    size_t j;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, (uint32_t)nr->nparams);
    for (j = 0; j < nr->nparams; j++) {
        const struct param_src *ps = &nr->params[j];

        mapq_value_pack_str(&pk, ps->name);
        if (ps->list != NULL)
            mapq_value_canonical(&ps->list->via.array.ptr[i], out);
        else
            mapq_buf_append(out, ps->bound.data, ps->bound.len);
    }
}

/*
 * The subtask key: hash of [task, cache version, interface, inputs, scope]
 * where scope is nil for cached tasks and [exec, node, index] otherwise, so
 * uncached subtasks never share results.
 */
void
drv_subtask_key_in(const struct exec *x, const char *exec_id, size_t k,
                   uint64_t i, const char *in, size_t inlen,
                   unsigned char key[MAPQ_KEY_LEN])
{
    const struct mapq_node *n = &x->wf->nodes[k];
    const struct node_run *nr = &x->nodes[k];
    struct mapq_buf m = MAPQ_BUF_INIT;
    msgpack_packer pk;

    mapq_value_packer_init(&pk, &m);
    msgpack_pack_array(&pk, 5);
    mapq_value_pack_str(&pk, x->wf->tasks[n->task].name);
    mapq_value_pack_str(&pk, n->opts.cache && n->opts.cache_version
                                 ? n->opts.cache_version
                                 : "");
    mapq_value_pack_str(&pk, nr->iface);
    mapq_buf_append(&m, in, inlen);
    if (n->opts.cache) {
        msgpack_pack_nil(&pk);
    } else {
        msgpack_pack_array(&pk, 3);
        mapq_value_pack_str(&pk, exec_id);
        mapq_value_pack_str(&pk, n->name);
        msgpack_pack_uint64(&pk, i);
    }
    mapq_value_hash(m.data, m.len, key);
    mapq_buf_release(&m);
}

void
drv_subtask_key(const struct exec *x, size_t k, uint64_t i, const char *in,
                size_t inlen, unsigned char key[MAPQ_KEY_LEN])
{
    drv_subtask_key_in(x, x->id, k, i, in, inlen, key);
}
