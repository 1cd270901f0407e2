/*
 * cmd_validate.c - mapq validate WORKFLOW: reads, checks and binds the
 * inputs of a workflow without Redis, and says whether it is valid.
 */
#include <stdio.h>
#include <stdlib.h>

#include "cli.h"

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

    if (rc == MAPQ_EXIT_OK)
        printf("%s: workflow '%s' is valid (%zu tasks, %zu nodes)\n", o->target,
               wf->name, wf->ntasks, wf->nnodes);
    mapq_workflow_free(wf);
    mapq_buf_release(&inputs);
    free(text);
    return rc;
}

const struct mapq_cmd_entry mapq_cmd_validate_entry = {
    .name = "validate",
    .usage = "validate WORKFLOW [--input N=V]... [--inputs FILE]",
    .operands = MAPQ_CMD_WORKFLOW,
    .fn = cmd_validate,
};
