/*
 * drv_bind.c - a node's inputs: bindings resolved and checked into its
 * parameters, and the canonical inputs and key of each subtask.
 *
 * Owns the params (and their marks) and iface of a node_run (node_reset() in
 * driver.c frees them). Never sends anything: a binding that does not
 * check is returned as a message for the controller to fail with.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_pages.h"
#include "mapq_value.h"

bool
drv_resolve(const struct exec *x, const struct mapq_binding *b, const char **v,
            size_t *vlen)
{
    const struct node_run *nr;

    switch (b->kind) {
    case MAPQ_REF_LITERAL:
        *v = b->literal.data;
        *vlen = b->literal.len;
        return b->literal.len > 0;
    case MAPQ_REF_INPUT:
        return mapq_value_map_find(x->inputs.data, x->inputs.len, b->ref, v,
                                   vlen);
    case MAPQ_REF_NODE:
        nr = &x->nodes[b->target];
        *v = nr->output.data;
        *vlen = nr->output.len;
        return nr->output.len > 0;
    }
    return false;
}

int
drv_project(const char *v, size_t vlen, const char *member,
            struct mapq_buf *out, char *why, size_t whylen)
{
    msgpack_packer pk;
    char err[MAPQ_ERR_LEN];
    const char *mv;
    size_t mlen, off, start;
    uint32_t n, i;

    mapq_value_packer_init(&pk, out);
    if (!mapq_value_array_header(v, vlen, &n, &off)) {
        if (mapq_value_map_find(v, vlen, member, &mv, &mlen))
            mapq_buf_append(out, mv, mlen);
        else
            msgpack_pack_nil(&pk);
        return 0;
    }
    msgpack_pack_array(&pk, n);
    for (i = 0; i < n; i++) {
        start = off;
        if (mapq_value_skip(v, vlen, &off, err) != MAPQ_OK) {
            snprintf(why, whylen, "[%u]: %s", i, err);
            return -1;
        }
        if (mapq_value_map_find(v + start, off - start, member, &mv, &mlen))
            mapq_buf_append(out, mv, mlen);
        else
            msgpack_pack_nil(&pk);
    }
    return 0;
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
    char *tb;
    size_t i;

    /* Part of the cache key: each type spelled whole. */
    for (i = 0; i < nr->nparams; i++) {
        tb = mapq_type_format_alloc(nr->params[i].type);
        mapq_buf_printf(&b, "%s%s:%s", i ? "," : "", nr->params[i].name, tb);
        free(tb);
        nr->files = nr->files || mapq_type_has_file(nr->params[i].type);
    }
    tb = t->output ? mapq_type_format_alloc(t->output) : NULL;
    mapq_buf_printf(&b, "->%s", tb ? tb : "none");
    free(tb);
    nr->iface = mapq_buf_detach(&b, NULL);
}

/* Reads the 'over' list (v, vlen) into ps: checks each element against
 * ps->type (unless checked) and marks every LIST_MARK-th; -1 with why. */
static int
bind_list(const struct mapq_node *n, const struct mapq_binding *b,
          struct param_src *ps, const char *v, size_t vlen, bool checked,
          char *why)
{
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    size_t off;
    uint32_t cnt, i;
    enum mapq_err rc = MAPQ_OK;

    if (!mapq_value_array_header(v, vlen, &cnt, &off)) {
        mapq_assert(!checked);
        msgpack_unpacked_init(&u);
        if (mapq_value_unpack(v, vlen, &u, err) == MAPQ_OK)
            snprintf(why, EXEC_ERROR_LEN,
                     "node '%s': 'over' input '%s' is not a list (%s)", n->name,
                     b->param, mapq_type_describe(&u.data));
        else
            snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s': %s", n->name,
                     b->param, err);
        msgpack_unpacked_destroy(&u);
        return -1;
    }
    ps->list = v;
    ps->list_len = vlen;
    ps->n = cnt;
    ps->marks = mapq_xcalloc(cnt / LIST_MARK + 1, sizeof(*ps->marks));
    ps->at_off = off;
    msgpack_unpacked_init(&u);
    for (i = 0; i < cnt && rc == MAPQ_OK; i++) {
        if (i % LIST_MARK == 0)
            ps->marks[i / LIST_MARK] = off;
        if (checked) {
            rc = mapq_value_skip(v, vlen, &off, err);
            continue;
        }
        rc = mapq_value_unpack_next(v, vlen, &off, &u, err);
        if (rc == MAPQ_OK)
            rc = mapq_type_check(ps->type, &u.data, err);
    }
    msgpack_unpacked_destroy(&u);
    if (rc != MAPQ_OK) {
        snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s' element %u: %s",
                 n->name, b->param, i - 1, err);
        return -1;
    }
    return 0;
}

/* Resolves and checks one binding into nr->params[j]; -1 with why. */
static int
bind_param(struct exec *x, size_t k, const struct mapq_binding *b, bool over,
           size_t j, char *why)
{
    const struct mapq_node *n = &x->wf->nodes[k];
    const struct mapq_task_def *t = &x->wf->tasks[n->task];
    struct param_src *ps = &x->nodes[k].params[j];
    const struct mapq_param *p = task_param(t, b->param);
    /* A literal was converted to the parameter's type (a list of it for
     * 'over') by the workflow's parse: it is not checked again. Inputs
     * and node outputs are, as they come from Redis and may be 'any'. */
    bool checked = b->kind == MAPQ_REF_LITERAL;
    msgpack_unpacked u;
    char err[MAPQ_ERR_LEN];
    const struct mapq_buf *loaded =
        x->nodes[k].loaded ? &x->nodes[k].loaded[j] : NULL;
    struct mapq_pages_ref ref;
    const char *v;
    size_t vlen;
    enum mapq_err rc;

    if (p == NULL || !drv_resolve(x, b, &v, &vlen)) {
        snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s' has no value",
                 n->name, b->param);
        return -1;
    }
    ps->name = p->name;
    ps->type = p->type;
    mapq_buf_init(&ps->bound, 0);
    mapq_buf_init(&ps->proj, 0);
    if (b->member != NULL && over && mapq_pages_ref_read(v, vlen, &ref)) {
        snprintf(why, EXEC_ERROR_LEN,
                 "node '%s': input '%s': $%s.%s: an output of more than %d "
                 "elements is kept in pages, and mapping over a member of "
                 "it is not supported yet: map over $%s",
                 n->name, b->param, b->ref, b->member, MAPQ_PAGED_MIN, b->ref);
        return -1;
    }
    /* A paged 'over' list is read a few pages at a time, as subtasks
     * reach them; a paged 'with' list was read whole (drv_pages.c). */
    if (mapq_pages_ref_read(v, vlen, &ref) && over) {
        ps->ref = ref;
        ps->n = ref.n;
        ps->pages = mapq_xcalloc(PAGE_SLOTS, sizeof(*ps->pages));
        ps->cur = -1;
        return 0;
    }
    if (mapq_pages_ref_read(v, vlen, &ref)) {
        mapq_assert(loaded != NULL && loaded->len > 0);
        v = loaded->data;
        vlen = loaded->len;
    }
    if (b->member != NULL) {
        char perr[MAPQ_ERR_LEN + 16];

        if (drv_project(v, vlen, b->member, &ps->proj, perr, sizeof(perr)) !=
            0) {
            snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s': %.*s",
                     n->name, b->param, 600, perr);
            return -1;
        }
        v = ps->proj.data;
        vlen = ps->proj.len;
    }
    if (over)
        return bind_list(n, b, ps, v, vlen, checked, why);
    msgpack_unpacked_init(&u);
    rc = mapq_value_unpack(v, vlen, &u, err);
    if (rc == MAPQ_OK && !checked)
        rc = mapq_type_check(p->type, &u.data, err);
    if (rc == MAPQ_OK)
        mapq_value_canonical(&u.data, &ps->bound);
    else
        snprintf(why, EXEC_ERROR_LEN, "node '%s': input '%s': %s", n->name,
                 b->param, err);
    msgpack_unpacked_destroy(&u);
    return rc == MAPQ_OK ? 0 : -1;
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
    for (j = 0; j < n->nover; j++) {
        if (bind_param(x, k, &n->over[j], true, j, why) != 0)
            return -1;
        if (first != NULL && nr->params[j].n != len) {
            snprintf(why, EXEC_ERROR_LEN,
                     "node '%s': input lists have different lengths: '%s' "
                     "has %llu, '%s' has %llu",
                     n->name, first, (unsigned long long)len, n->over[j].param,
                     (unsigned long long)nr->params[j].n);
            return -1;
        }
        first = n->over[j].param;
        len = nr->params[j].n;
    }
    for (j = 0; j < n->nwith; j++)
        if (bind_param(x, k, &n->with[j], false, n->nover + j, why) != 0)
            return -1;
    qsort(nr->params, nb, sizeof(*nr->params), param_cmp);
    nr->n = n->is_map ? len : 1;
    build_iface(nr, &x->wf->tasks[n->task]);
    return 0;
}

/* The offset of element i of ps's list: from the element last reached
 * when i is at most LIST_MARK past it, else from the mark before i. */
static size_t
list_seek(struct param_src *ps, uint64_t i)
{
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    mapq_assert(i < ps->n);
    if (i < ps->at || i - ps->at > LIST_MARK) {
        ps->at = i / LIST_MARK * LIST_MARK;
        ps->at_off = ps->marks[i / LIST_MARK];
    }
    /* The list was read whole when the node was bound: it cannot fail. */
    for (; ps->at < i; ps->at++) {
        rc = mapq_value_skip(ps->list, ps->list_len, &ps->at_off, err);
        mapq_assert(rc == MAPQ_OK);
    }
    return ps->at_off;
}

void
drv_subtask_inputs(struct node_run *nr, uint64_t i, struct mapq_buf *out)
{
    msgpack_packer pk;
    msgpack_object o;
    char err[MAPQ_ERR_LEN];
    const char *data;
    size_t j, len, off;
    enum mapq_err rc;

    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, (uint32_t)nr->nparams);
    /* One zone for every element of the node: no allocation per
     * element (scalars take none from it). */
    if (nr->zone == NULL)
        nr->zone = msgpack_zone_new(MSGPACK_ZONE_CHUNK_SIZE);
    for (j = 0; j < nr->nparams; j++) {
        struct param_src *ps = &nr->params[j];

        mapq_value_pack_str(&pk, ps->name);
        if (ps->list == NULL && ps->pages == NULL) {
            mapq_buf_append(out, ps->bound.data, ps->bound.len);
            continue;
        }
        if (ps->pages != NULL) {
            drv_pages_element(ps, i, &data, &len, &off);
        } else {
            data = ps->list;
            len = ps->list_len;
            off = list_seek(ps, i);
        }
        rc = mapq_value_unpack_zone(data, len, &off, nr->zone, &o, err);
        mapq_assert(rc == MAPQ_OK);
        mapq_value_canonical(&o, out);
        msgpack_zone_clear(nr->zone);
        /* The next subtask usually takes the next element. */
        ps->at = i + 1;
        ps->at_off = off;
    }
}

/* Appends the inputs in (canonical, inlen bytes) of a task with file inputs
 * as its key sees them: each file by its content ([sha256, size]), not by
 * where it is. */
static void
key_inputs(const struct mapq_task_def *t, const char *in, size_t inlen,
           struct mapq_buf *out)
{
    char err[MAPQ_ERR_LEN];
    msgpack_unpacked u;
    msgpack_packer pk;
    uint32_t i;

    msgpack_unpacked_init(&u);
    /* Made by drv_subtask_inputs(): it unpacks. */
    mapq_assert(mapq_value_unpack(in, inlen, &u, err) == MAPQ_OK &&
                u.data.type == MSGPACK_OBJECT_MAP);
    mapq_value_packer_init(&pk, out);
    msgpack_pack_map(&pk, u.data.via.map.size);
    for (i = 0; i < u.data.via.map.size; i++) {
        const msgpack_object_kv *kv = &u.data.via.map.ptr[i];
        long p = mapq_workflow_find_param(t, kv->key.via.str.ptr,
                                          kv->key.via.str.size);

        msgpack_pack_object(&pk, kv->key);
        mapq_value_canonical_typed(&kv->val, p >= 0 ? t->inputs[p].type : NULL,
                                   out);
    }
    msgpack_unpacked_destroy(&u);
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
    if (nr->files)
        key_inputs(&x->wf->tasks[n->task], in, inlen, &m);
    else
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
