/*
 * main.c - the mapq command line: main() parses the options (cli_opts.c),
 * finds the subcommand's entry (cli_table.c), calls its function and exits
 * with the status it returns (enum mapq_exit, SPEC section 6). It never
 * runs a command itself, and refuses --json for a command that prints no
 * JSON document (mapq scheduler, a service).
 */
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "mapq_log.h"

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
    if (o.json && !(e->flags & MAPQ_CMD_JSON)) {
        fprintf(stderr,
                "mapq %s: takes no --json (its logs are JSON lines with "
                "--log-format json)\n",
                o.cmd);
        return MAPQ_EXIT_USAGE;
    }
    return e->fn(&o);
}
