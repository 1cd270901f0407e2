/*
 * workflow.c - reading a workflow file into the validated model of
 * mapq_workflow.h, and binding its inputs: the controller of
 * scheduler/workflow/.
 *
 * Owns the parse context (struct ctx) and the inputs binding (struct
 * wf_bind). A parse walks the document one section at a time, in the
 * order each needs the last: inputs, tasks, nodes, then each node's
 * bindings and its zip check, the output and the order of nodes. Every
 * problem is recorded with its position instead of stopping at the
 * first; they are sorted and written out at the end, and the model is
 * handed out only when there are none. Never logs.
 */
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_value.h"
#include "wf_int.h"

#define DEFAULT_SYSTEM_RETRIES 3

enum {
    WF_NAME,
    WF_INPUTS,
    WF_TASKS,
    WF_NODES,
    WF_OUTPUT,
    WF_SYSRETRIES,
    WF_RETENTION,
    WF_N
};
static const char *const top_fields[WF_N] = {
    "name",   "inputs",         "tasks",    "nodes",
    "output", "system_retries", "retention"};

static void
parse_name(struct ctx *c, yaml_node_t *v)
{
    char d[96];

    if (v->type != YAML_SCALAR_NODE || strlen(stext(v)) != slen(v) ||
        !wf_valid_word(stext(v), "_-", false)) {
        wf_perr(c, v,
                "'name' must be a workflow name matching [a-z0-9_-]+, got %s",
                wf_describe(v, d, sizeof(d)));
        return;
    }
    c->wf->name = mapq_xstrdup(stext(v));
}

static void
parse_root(struct ctx *c, yaml_node_t *root)
{
    struct mapq_workflow *wf = c->wf;
    struct fields f;
    size_t i;

    if (!wf_expect_map(c, root,
                       "a workflow must be a mapping with 'name', 'tasks' and "
                       "'nodes'"))
        return;
    wf_get_fields(c, root, top_fields, WF_N, &f, "at the top level");
    if (f.val[WF_NAME] == NULL)
        wf_perr(c, root, "missing required key 'name'");
    else
        parse_name(c, f.val[WF_NAME]);
    if (f.val[WF_SYSRETRIES] != NULL)
        wf_get_small(c, f.val[WF_SYSRETRIES], "system_retries",
                     &wf->system_retries);
    if (f.val[WF_RETENTION] != NULL &&
        wf_get_duration(c, f.val[WF_RETENTION], "retention",
                        &wf->retention_ms) &&
        wf->retention_ms < 1000) {
        wf_perr(c, f.val[WF_RETENTION], "'retention' must be 1s or more");
    }
    if (f.val[WF_INPUTS] != NULL)
        wf_parse_inputs(c, f.val[WF_INPUTS]);
    wf->input_index =
        wf_index_names(wf->inputs, wf->ninputs, sizeof(*wf->inputs));
    if (f.val[WF_TASKS] != NULL)
        wf_parse_tasks(c, f.val[WF_TASKS]);
    wf->task_index = wf_index_names(wf->tasks, wf->ntasks, sizeof(*wf->tasks));
    if (f.val[WF_NODES] != NULL)
        wf_parse_nodes(c, f.val[WF_NODES]);
    wf->node_index = wf_index_names(wf->nodes, wf->nnodes, sizeof(*wf->nodes));
    for (i = 0; i < wf->nnodes; i++) {
        wf_node_bindings(c, i);
        wf_zip_check(&c->probs, c->file, &wf->nodes[i], NULL);
    }
    if (f.val[WF_OUTPUT] != NULL)
        wf_parse_output(c, f.val[WF_OUTPUT]);
    wf_topo_order(c);
}

struct mapq_workflow *
mapq_workflow_parse(const char *text, size_t len, const char *file,
                    struct mapq_buf *errors)
{
    struct ctx c;
    yaml_document_t doc;
    yaml_node_t *root;
    struct mapq_workflow *wf = NULL;
    char msg[MSG_MAX];
    int line = 1, col = 1;

    memset(&c, 0, sizeof(c));
    c.file = file != NULL ? file : "<workflow>";
    if (!wf_load_doc(text != NULL ? text : "", len, &doc, msg, sizeof(msg),
                     &line, &col)) {
        wf_prob_add(&c.probs, c.file, line, col, "%s", msg);
        goto out_flush;
    }
    wf = mapq_xcalloc(1, sizeof(*wf));
    wf->file = mapq_xstrdup(c.file);
    wf->system_retries = DEFAULT_SYSTEM_RETRIES;
    c.wf = wf;
    c.doc = &doc;
    root = yaml_document_get_root_node(&doc);
    if (root == NULL)
        wf_prob_add(&c.probs, c.file, 1, 1, "empty workflow file");
    else
        parse_root(&c, root);
    yaml_document_delete(&doc);
    free(c.ni);
    free(c.task_out_bad);
    if (c.probs.n > 0) {
        mapq_workflow_free(wf);
        wf = NULL;
    }
out_flush:
    wf_prob_flush(&c.probs, true, errors);
    return wf;
}

struct mapq_workflow *
mapq_workflow_load(const char *path, struct mapq_buf *errors)
{
    struct mapq_buf text;
    struct mapq_workflow *wf = NULL;
    char err[MAPQ_ERR_LEN];

    if (mapq_workflow_read_file(path, &text, err) != MAPQ_OK)
        mapq_buf_printf(errors, "%s\n", err);
    else
        wf = mapq_workflow_parse(text.data != NULL ? text.data : "", text.len,
                                 path, errors);
    mapq_buf_release(&text);
    return wf;
}

/* Inputs given neither by --input nor by --inputs take their default, or
 * are reported as required. */
static void
bind_defaults(struct wf_bind *bd)
{
    const struct mapq_workflow *wf = bd->wf;
    const struct mapq_param *p;
    size_t i;

    for (i = 0; i < wf->ninputs; i++) {
        p = &wf->inputs[i];
        if (bd->state[i] != WF_IN_UNSET)
            continue;
        if (p->has_default) {
            mapq_buf_append(&bd->vals[i], p->value.data, p->value.len);
            wf_input_set(bd, i, WF_IN_DEFAULT);
        } else {
            wf_prob_add(&bd->probs, wf->file, p->pos.line, p->pos.col,
                        "input '%s' is required; pass --input %s=VALUE",
                        p->name, p->name);
        }
    }
}

enum mapq_err
mapq_workflow_bind_inputs(const struct mapq_workflow *wf,
                          const char *const *assigns, size_t nassigns,
                          const char *inputs_file, struct mapq_buf *out,
                          struct mapq_buf *errors)
{
    return mapq_workflow_bind_inputs_paged(wf, assigns, nassigns, inputs_file,
                                           NULL, out, errors);
}

enum mapq_err
mapq_workflow_bind_inputs_paged(const struct mapq_workflow *wf,
                                const char *const *assigns, size_t nassigns,
                                const char *inputs_file,
                                const struct mapq_bind_pages *pages,
                                struct mapq_buf *out, struct mapq_buf *errors)
{
    struct wf_bind bd;
    size_t i, n = wf->ninputs ? wf->ninputs : 1;
    enum mapq_err rc = MAPQ_OK;

    memset(&bd, 0, sizeof(bd));
    bd.wf = wf;
    bd.pages = pages;
    bd.vals = mapq_xcalloc(n, sizeof(*bd.vals));
    bd.state = mapq_xcalloc(n, sizeof(*bd.state));
    for (i = 0; i < wf->ninputs; i++)
        mapq_buf_init(&bd.vals[i], MAPQ_VALUE_MAX);
    for (i = 0; i < nassigns; i++)
        wf_bind_assign(&bd, assigns[i]);
    if (inputs_file != NULL)
        wf_bind_file(&bd, inputs_file);
    bind_defaults(&bd);
    for (i = 0; i < wf->nnodes; i++)
        wf_zip_check(&bd.probs, wf->file, &wf->nodes[i], &bd);
    if (bd.probs.n == 0 && wf_bind_pack(&bd, out) != MAPQ_OK)
        wf_prob_add(&bd.probs, NULL, 0, 0, "inputs are too large");
    if (bd.probs.n > 0)
        rc = MAPQ_EINVAL;
    wf_prob_flush(&bd.probs, false, errors);
    for (i = 0; i < wf->ninputs; i++)
        mapq_buf_release(&bd.vals[i]);
    free(bd.state);
    free(bd.vals);
    return rc;
}
