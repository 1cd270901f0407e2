/*
 * cmd_validate.c - mapq validate WORKFLOW: reads, checks and binds the
 * inputs of a workflow without Redis, and says whether it is valid; with
 * --json, its name, tasks and nodes on stdout (docs/JSON.md). Problems go
 * to stderr either way, one line each.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

/* --json: {"file", "workflow", "tasks": [name...], "nodes": [{"name",
 * "task", "map"}...]} of wf, read from file. */
static int
print_valid(const char *file, const struct mapq_workflow *wf)
{
    json_t *doc = json_object(), *tasks = json_array(), *nodes = json_array();
    size_t k;

    json_object_set_new(doc, "file", mapq_cli_json_str(file));
    json_object_set_new(doc, "workflow", mapq_cli_json_str(wf->name));
    for (k = 0; k < wf->ntasks; k++)
        json_array_append_new(tasks, mapq_cli_json_str(wf->tasks[k].name));
    json_object_set_new(doc, "tasks", tasks);
    for (k = 0; k < wf->nnodes; k++) {
        json_t *n = json_object();

        json_object_set_new(n, "name", mapq_cli_json_str(wf->nodes[k].name));
        json_object_set_new(
            n, "task", mapq_cli_json_str(wf->tasks[wf->nodes[k].task].name));
        json_object_set_new(n, "map", json_boolean(wf->nodes[k].is_map));
        json_array_append_new(nodes, n);
    }
    json_object_set_new(doc, "nodes", nodes);
    return mapq_cli_print_json(doc);
}

static int
cmd_validate(struct mapq_cli_opts *o)
{
    /* Long lists are checked a page at a time and dropped. */
    static const struct mapq_bind_pages drop = {.exec = "-", .spool = NULL};
    struct mapq_workflow *wf = NULL;
    struct mapq_buf inputs = MAPQ_BUF_INIT;
    char *text = NULL;
    size_t len;
    int rc = mapq_cli_load_workflow(o, &wf, &text, &len, &drop, &inputs);

    if (rc == MAPQ_EXIT_OK && o->json)
        rc = print_valid(o->target, wf);
    else if (rc == MAPQ_EXIT_OK)
        printf("%s: workflow '%s' is valid (%zu tasks, %zu nodes)\n", o->target,
               wf->name, wf->ntasks, wf->nnodes);
    mapq_workflow_free(wf);
    mapq_buf_release(&inputs);
    free(text);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_validate_entry = {
    .name = "validate",
    .usage = "validate WORKFLOW [--input N=V]... [--inputs FILE] [--json]",
    .operands = MAPQ_CMD_WORKFLOW,
    .flags = MAPQ_CMD_JSON,
    .fn = cmd_validate,
};
