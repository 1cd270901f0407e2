/*
 * cli_table.c - the table that maps each subcommand of mapq to the
 * cmd_<name>.c that runs it, and the usage text made from it.
 *
 * Owns the order and the lookup; it runs nothing.
 */
#include <stdio.h>
#include <string.h>

#include "cli.h"

/* In the order of the usage text. */
static const struct mapq_cmd_entry *const table[] = {
    &mapq_cmd_run_entry,    &mapq_cmd_submit_entry,  &mapq_cmd_scheduler_entry,
    &mapq_cmd_status_entry, &mapq_cmd_watch_entry,   &mapq_cmd_result_entry,
    &mapq_cmd_cancel_entry, &mapq_cmd_recover_entry, &mapq_cmd_logs_entry,
    &mapq_cmd_agents_entry, &mapq_cmd_cache_entry,   &mapq_cmd_validate_entry,
    &mapq_cmd_ls_entry,     &mapq_cmd_rm_entry,      &mapq_cmd_gc_entry,
    &mapq_cmd_setup_entry,
};

static const char common_usage[] =
    "Common: --namespace NS (or MAPQ_NAMESPACE), --redis URL (or "
    "MAPQ_REDIS_URL),\n"
    "        -v for debug logs, --log-format json for a JSON object per log\n"
    "        line. Without a Redis URL, `run` starts a private\n"
    "        redis-server and --agents local agents (default: CPUs).\n"
    "        --lease: how long executions this process drives wait, should\n"
    "        it die, before a `mapq scheduler` takes them over (10s).\n"
    "        --priority N (1-100, default 10): executions sharing a queue\n"
    "        take its free slots in turns, in proportion to their priority.\n"
    "        --retention DUR (run, recover, scheduler): how long an ended\n"
    "        execution stays in Redis unless its workflow says (3d).\n"
    "        Durations: 250ms, 30s, 1m30s, 2h, 3d. mapq --version prints the\n"
    "        version and the Redis protocol it speaks. --json: one JSON\n"
    "        document on stdout, errors still on stderr (docs/JSON.md).\n"
    "        --secret-file PATH (or MAPQ_SECRET_FILE; run, submit, recover,\n"
    "        scheduler): sign task specs and subtasks for agents that have\n"
    "        the same secret (docs/OPERATIONS.md, \"Signed subtasks\").\n"
    "        --redis-password-file PATH: the Redis password, kept out of\n"
    "        argv (or MAPQ_REDIS_PASSWORD, for a URL that has none).\n"
    "        --redis redis+sentinel://H1:26379,H2:26379/NAME[/DB] finds the\n"
    "        primary through Sentinel. --durable: every write waits until\n"
    "        a replica has it (WAIT), so that a failover loses none.\n";

const struct mapq_cmd_entry *
mapq_cli_find(const char *name)
{
    size_t k;

    for (k = 0; k < sizeof(table) / sizeof(table[0]); k++)
        if (strcmp(table[k]->name, name) == 0)
            return table[k];
    return NULL;
}

void
mapq_cli_usage(FILE *out)
{
    const struct mapq_cmd_entry *e;
    size_t k;

    for (k = 0; k < sizeof(table) / sizeof(table[0]); k++) {
        e = table[k];
        if (k == 0)
            fputs("usage: ", out);
        else if (e->flags & MAPQ_CMD_USAGE_SAME_LINE)
            fputs("      ", out);
        else
            fputs("\n       ", out);
        fprintf(out, "mapq %s", e->usage);
    }
    fprintf(out, "\n%s", common_usage);
}
