/*
 * cli.c - the mapq command line: main() and the table that maps each
 * subcommand to the cmd_<name>.c that runs it.
 *
 * Owns the table and the usage text made from it. It never runs a command
 * itself: main() parses (cli_opts.c), finds the entry, calls its function
 * and exits with the status it returns (enum mapq_exit, SPEC section 6).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mapq_log.h"

/* In the order of the usage text. */
static const struct mapq_cmd_entry *const table[] = {
    &mapq_cmd_run_entry,    &mapq_cmd_submit_entry,  &mapq_cmd_scheduler_entry,
    &mapq_cmd_status_entry, &mapq_cmd_watch_entry,   &mapq_cmd_result_entry,
    &mapq_cmd_cancel_entry, &mapq_cmd_recover_entry, &mapq_cmd_logs_entry,
    &mapq_cmd_agents_entry, &mapq_cmd_cache_entry,   &mapq_cmd_validate_entry,
};

static const char common_usage[] =
    "Common: --namespace NS (or MAPQ_NAMESPACE), --redis URL (or "
    "MAPQ_REDIS_URL),\n"
    "        -v for debug logs. Without a Redis URL, `run` starts a private\n"
    "        redis-server and --agents local agents (default: CPUs).\n"
    "        --lease: how long executions this process drives wait, should\n"
    "        it die, before a `mapq scheduler` takes them over (10s).\n";

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

int
main(int argc, char **argv)
{
    const struct mapq_cmd_entry *e = NULL;
    struct mapq_cli_opts o;
    int rc;

    memset(&o, 0, sizeof(o));
    mapq_log_init("mapq", MAPQ_LOG_WARN);
    signal(SIGPIPE, SIG_IGN);
    rc = mapq_cli_parse(argc, argv, &o, &e);
    if (rc != 0)
        return rc > 0 ? MAPQ_EXIT_OK : MAPQ_EXIT_USAGE;
    mapq_cli_hide_password(&o, argc, argv);
    if (e == NULL) {
        fprintf(stderr, "mapq: unknown command '%s'\n", o.cmd);
        mapq_cli_usage(stderr);
        return MAPQ_EXIT_USAGE;
    }
    return e->fn(&o);
}
