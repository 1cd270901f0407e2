/*
 * drv_errors.c - the errors of a node's failed subtasks, grouped by message
 * into index ranges ("0-3,7: exit status 1; 5: timed out") as the
 * assembly reads their records in index order.
 *
 * Owns the error groups of a node_run. Pure: sends nothing, changes no
 * state but the groups and asm_ok.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "driver_int.h"
#include "mapq_alloc.h"
#include "mapq_record.h"
#include "mapq_value.h"

/* Adds failed index i, with message msg, to its group. */
static void
note_error(struct node_run *nr, uint64_t i, const char *msg, size_t len)
{
    struct err_group *g;
    size_t k;

    for (k = 0; k < nr->ngroups; k++)
        if (strlen(nr->groups[k].msg) == len &&
            memcmp(nr->groups[k].msg, msg, len) == 0)
            break;
    if (k == nr->ngroups) {
        if (k == ERROR_GROUPS_MAX) {
            nr->ungrouped++;
            return;
        }
        g = &nr->groups[nr->ngroups++];
        g->msg = mapq_xstrndup(msg, len);
        mapq_buf_init(&g->ranges, 0);
        g->start = g->last = i;
        return;
    }
    g = &nr->groups[k];
    if (i == g->last + 1) {
        g->last = i;
        return;
    }
    mapq_buf_printf(&g->ranges, "%s%llu", g->ranges.len ? "," : "",
                    (unsigned long long)g->start);
    if (g->last != g->start)
        mapq_buf_printf(&g->ranges, "-%llu", (unsigned long long)g->last);
    g->start = g->last = i;
}

/* Counts subtask i in asm_ok when its record says it succeeded. */
void
drv_take_record(struct node_run *nr, uint64_t i, const redisReply *rec,
                msgpack_packer *pk)
{
    msgpack_unpacked u;
    struct mapq_result res;
    char err[MAPQ_ERR_LEN], msg[1200];
    const char *lp;
    size_t ln;

    msgpack_unpacked_init(&u);
    if (phase_get(nr, i) == MAPQ_PHASE_ABORTED) {
        msgpack_pack_nil(pk); /* not an error of its own */
        goto out;
    }
    if (rec->type != REDIS_REPLY_STRING ||
        mapq_value_unpack(rec->str, rec->len, &u, err) != MAPQ_OK) {
        msgpack_pack_nil(pk);
        note_error(nr, i, "no result recorded", 18);
        goto out;
    }
    mapq_record_result(&u.data, &res);
    if (res.ok) {
        msgpack_pack_object(pk, *res.value);
        nr->asm_ok++;
        goto out;
    }
    msgpack_pack_nil(pk);
    snprintf(msg, sizeof(msg), "%.*s",
             res.error != NULL ? (int)res.error_len : 7,
             res.error != NULL ? res.error : "failed");
    if (res.log != NULL) {
        mapq_record_last_line(res.log, res.log_len, &lp, &ln);
        if (ln > 0)
            snprintf(msg + strlen(msg), sizeof(msg) - strlen(msg), ": %.*s",
                     (int)(ln > 300 ? 300 : ln), lp);
    }
    note_error(nr, i, msg, strlen(msg));
out:
    msgpack_unpacked_destroy(&u);
}

void
drv_summarize_errors(const struct node_run *nr, struct mapq_buf *out)
{
    const struct err_group *g;
    size_t k;

    for (k = 0; k < nr->ngroups; k++) {
        g = &nr->groups[k];
        mapq_buf_printf(out, "%s%s%s%llu", k ? "; " : "",
                        g->ranges.len ? g->ranges.data : "",
                        g->ranges.len ? "," : "", (unsigned long long)g->start);
        if (g->last != g->start)
            mapq_buf_printf(out, "-%llu", (unsigned long long)g->last);
        mapq_buf_printf(out, ": %s", g->msg);
    }
    if (nr->ungrouped > 0)
        mapq_buf_printf(out, "; %llu more with other errors",
                        (unsigned long long)nr->ungrouped);
}
