/*
 * cmd_status.c - mapq status EXEC and mapq watch EXEC: the state of an
 * execution and of its nodes, read from its record once (status) or again
 * each second until it ends (watch). Nothing is written.
 */
#include <msgpack.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "mapq_proto.h"
#include "mapq_value.h"

/* Prints the state of execution o->target and of its nodes, counts by
 * phase (JSON with --json), to out. */
static void
print_status(redisContext *c, const struct mapq_cli_opts *o, const char *state,
             FILE *out)
{
    char field[32];
    redisReply *nn, *name, *p;
    long k, nodes;
    int ph;

    nn = mapq_cli_hget(c, o, "nodes");
    nodes =
        nn && nn->type == REDIS_REPLY_STRING ? strtol(nn->str, NULL, 10) : 0;
    if (o->json)
        fprintf(out, "{\"execution\":\"%s\",\"status\":\"%s\",\"nodes\":{",
                o->target, state);
    else
        fprintf(out, "execution %s: %s\n", o->target, state);
    for (k = 0; k < nodes; k++) {
        msgpack_unpacked u;
        char err[MAPQ_ERR_LEN];

        snprintf(field, sizeof(field), "node:%ld", k);
        name = mapq_cli_hget(c, o, field);
        snprintf(field, sizeof(field), "p:%ld", k);
        p = mapq_cli_hget(c, o, field);
        msgpack_unpacked_init(&u);
        if (name != NULL && name->type == REDIS_REPLY_STRING && p != NULL &&
            p->type == REDIS_REPLY_STRING &&
            mapq_value_unpack(p->str, p->len, &u, err) == MAPQ_OK &&
            u.data.type == MSGPACK_OBJECT_ARRAY &&
            u.data.via.array.size == 2 + MAPQ_PHASE_COUNT) {
            const msgpack_object *a = u.data.via.array.ptr;

            if (o->json)
                fprintf(out, "%s\"%s\":{\"state\":\"%.*s\",\"total\":%llu",
                        k ? "," : "", name->str, (int)a[0].via.str.size,
                        a[0].via.str.ptr, (unsigned long long)a[1].via.u64);
            else
                fprintf(out, "  %-20s %-10.*s total %llu", name->str,
                        (int)a[0].via.str.size, a[0].via.str.ptr,
                        (unsigned long long)a[1].via.u64);
            for (ph = 0; ph < MAPQ_PHASE_COUNT; ph++) {
                if (o->json)
                    fprintf(out, ",\"%s\":%llu", mapq_phase_name(ph),
                            (unsigned long long)a[2 + ph].via.u64);
                else if (a[2 + ph].via.u64 > 0)
                    fprintf(out, "  %s %llu", mapq_phase_name(ph),
                            (unsigned long long)a[2 + ph].via.u64);
            }
            fputs(o->json ? "}" : "\n", out);
        } else if (name != NULL && name->type == REDIS_REPLY_STRING &&
                   !o->json) {
            fprintf(out, "  %-20s waiting\n", name->str);
        }
        msgpack_unpacked_destroy(&u);
        if (name != NULL)
            freeReplyObject(name);
        if (p != NULL)
            freeReplyObject(p);
    }
    if (o->json)
        fputs("}}\n", out);
    if (nn != NULL)
        freeReplyObject(nn);
}

static int
cmd_status(struct mapq_cli_opts *o)
{
    char state[32];
    int rc;
    redisContext *c = mapq_cli_open_exec(o, state, sizeof(state), &rc);

    if (c == NULL)
        return rc;
    print_status(c, o, state, stdout);
    redisFree(c);
    return MAPQ_EXIT_OK;
}

static bool
state_ended(const char *state)
{
    return strcmp(state, "succeeded") == 0 || strcmp(state, "failed") == 0 ||
           strcmp(state, "cancelled") == 0;
}

/*
 * mapq watch: the status, printed again whenever it changes (redrawn in
 * place on a terminal), until the execution ends. Exits like mapq run: 0
 * when it succeeded, 1 otherwise.
 */
static int
cmd_watch(struct mapq_cli_opts *o)
{
    struct mapq_redis_url url;
    redisContext *c = mapq_cli_connect(o, &url);
    struct timespec second = {1, 0};
    char state[32], *text = NULL, *shown = NULL;
    bool tty = isatty(1) != 0;
    size_t len = 0, lines = 0, i;
    FILE *mem;

    if (c == NULL)
        return MAPQ_EXIT_INFRA;
    for (;;) {
        int rc = mapq_cli_exec_state(c, &url, o, state, sizeof(state));

        if (rc != MAPQ_EXIT_OK) {
            free(shown);
            redisFree(c);
            return rc;
        }
        mem = open_memstream(&text, &len);
        print_status(c, o, state, mem);
        fclose(mem);
        if (shown == NULL || strcmp(shown, text) != 0) {
            if (tty && lines > 0)
                printf("\033[%zuA\033[J", lines);
            fputs(text, stdout);
            fflush(stdout);
            for (lines = 0, i = 0; text[i] != '\0'; i++)
                lines += text[i] == '\n';
            free(shown);
            shown = text;
        } else {
            free(text);
        }
        text = NULL;
        if (state_ended(state))
            break;
        nanosleep(&second, NULL);
    }
    free(shown);
    redisFree(c);
    return strcmp(state, "succeeded") == 0 ? MAPQ_EXIT_OK : MAPQ_EXIT_FAILED;
}

const struct mapq_cmd_entry mapq_cmd_status_entry = {
    .name = "status",
    .usage = "status EXEC [--json]",
    .operands = MAPQ_CMD_EXEC,
    .fn = cmd_status,
};

const struct mapq_cmd_entry mapq_cmd_watch_entry = {
    .name = "watch",
    .usage = "watch EXEC",
    .operands = MAPQ_CMD_EXEC,
    .flags = MAPQ_CMD_USAGE_SAME_LINE,
    .fn = cmd_watch,
};
