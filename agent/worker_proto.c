/*
 * worker_proto.c - the worker line protocol and what a job amounts to: the
 * request line written to the process, the reply line read back (its
 * output converted to msgpack and checked against the declared type, or
 * its error), the messages of a job that ended with its process, and the
 * job's stderr and checkpoint (SPEC section 9).
 *
 * Reads the struct mapq_worker that mapq_worker.c owns (taking only its
 * stderr buffer) and the checkpoint file in the working directory; the
 * result it fills belongs to the caller. Never touches the loop or the
 * process. JSON is never parsed or quoted by hand: jansson and mapq_json
 * do it.
 *
 * Files and durations go through the helpers command attempts use too
 * (mapq_fs, mapq_proc); take_stderr() follows cmd_result.c's, which works
 * on a struct mapq_cmd.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "mapq_fs.h"
#include "mapq_json.h"
#include "mapq_proc.h"
#include "mapq_value.h"
#include "worker_int.h"

/* How much of a line that is not a reply its message quotes. */
#define EXCERPT_MAX 120

/* ---- text ------------------------------------------------------------- */

/* Bytes of the UTF-8 sequence that s (n > 0 bytes) starts with; 0 when it
 * does not start with a valid one. */
static size_t
utf8_len(const char *s, size_t n)
{
    unsigned char c = (unsigned char)s[0];
    size_t len = c < 0x80 ? 1 : c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;

    if (len > n)
        return 0;
    return mapq_type_utf8_prefix(s, len) == len ? len : 0;
}

/*
 * Appends text (n bytes) to the C string in dst (cap bytes with its NUL)
 * as one line of valid UTF-8: control characters become spaces, bytes
 * that are not UTF-8 become '?', and at most max bytes of text are taken,
 * cut on a character boundary. Returns true when all of it fitted.
 */
static bool
put_text(char *dst, size_t cap, const char *s, size_t n, size_t max)
{
    size_t at = strlen(dst), i = 0, len, step;
    unsigned char c;

    while (i < n) {
        c = (unsigned char)s[i];
        len = utf8_len(s + i, n - i);
        step = len ? len : 1;
        if (at + step >= cap || i + step > max)
            break;
        if (len == 0) {
            dst[at++] = '?';
        } else if (c < 0x20 || c == 0x7F) {
            dst[at++] = ' ';
        } else {
            memcpy(dst + at, s + i, len);
            at += len;
        }
        i += step;
    }
    dst[at] = '\0';
    return i == n;
}

/* Writes "killed by signal 9 (SIGKILL)" into buf. */
static void
format_signal(char *buf, size_t len, const char *prefix, int sig)
{
    const char *name = sigabbrev_np(sig);

    if (name != NULL)
        snprintf(buf, len, "%skilled by signal %d (SIG%s)", prefix, sig, name);
    else
        snprintf(buf, len, "%skilled by signal %d", prefix, sig);
}

/* ---- files ------------------------------------------------------------ */

enum mapq_err
worker_ckpt_prepare(const struct mapq_worker *w, const char *ckpt, size_t len,
                    char *err)
{
    if (unlink(w->ckpt_path) != 0 && errno != ENOENT)
        return mapq_err_set(err, MAPQ_EIO, "cannot remove checkpoint '%s': %s",
                            w->ckpt_path, strerror(errno));
    if (ckpt != NULL && mapq_fs_write_new(w->ckpt_path, ckpt, len) != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot write checkpoint '%s': %s",
                            w->ckpt_path, strerror(errno));
    return MAPQ_OK;
}

/* ---- the request line ------------------------------------------------- */

/* Appends "inputs" text: the map as JSON; why set when it cannot be. */
static enum mapq_err
put_inputs(const msgpack_object *inputs, struct mapq_buf *out, char *why)
{
    char e[MAPQ_ERR_LEN];

    if (inputs == NULL)
        return mapq_buf_appendstr(out, "{}");
    if (inputs->type != MSGPACK_OBJECT_MAP)
        return mapq_err_set(why, MAPQ_EINVAL, "inputs are not a dict");
    if (mapq_json_from_msgpack(inputs, out, 0, e) != MAPQ_OK)
        return mapq_err_set(why, MAPQ_EINVAL, "inputs%s%s",
                            e[0] == '[' ? "" : ": ", e);
    return MAPQ_OK;
}

enum mapq_err
worker_line_head(const struct mapq_worker_job *job, struct mapq_buf *out,
                 char *why)
{
    const char *exec = job->execution ? job->execution : "";
    const char *node = job->node ? job->node : "";

    /* Compact JSON has no raw newline: the line ends only where we end
     * it. */
    mapq_buf_appendstr(out, "{\"inputs\":");
    if (put_inputs(job->inputs, out, why) != MAPQ_OK)
        return MAPQ_EINVAL;
    mapq_buf_appendstr(out, ",\"execution\":");
    mapq_json_append_text(out, exec, strlen(exec));
    mapq_buf_appendstr(out, ",\"node\":");
    mapq_json_append_text(out, node, strlen(node));
    mapq_buf_printf(out, ",\"index\":%" PRIu64 ",\"attempt\":%" PRIu32,
                    job->index, job->attempt);
    return MAPQ_OK;
}

void
worker_line_tail(const struct mapq_worker *w, int64_t deadline_ms,
                 struct mapq_buf *out)
{
    mapq_buf_appendstr(out, ",\"checkpoint\":");
    mapq_json_append_text(out, w->ckpt_path, strlen(w->ckpt_path));
    if (deadline_ms > 0)
        mapq_buf_printf(out, ",\"deadline_ms\":%" PRId64 "}\n", deadline_ms);
    else
        mapq_buf_appendstr(out, ",\"deadline_ms\":null}\n");
}

/* ---- the reply -------------------------------------------------------- */

void
worker_result_init(const struct mapq_worker *w, struct mapq_cmd_result *res)
{
    memset(res, 0, sizeof(*res));
    mapq_buf_init(&res->output, w->output_max);
    mapq_buf_init(&res->stderr_tail, 0);
    mapq_buf_init(&res->checkpoint, MAPQ_VALUE_MAX);
    res->exit_status = -1;
}

/* Sets why to the message of a line that is not a reply. */
static void
not_a_reply(const char *line, size_t len, char *why)
{
    size_t n;
    bool all;

    snprintf(why, MAPQ_ERR_LEN, "worker wrote a line that is not a reply: '");
    all = put_text(why, MAPQ_ERR_LEN - 8, line, len, EXCERPT_MAX);
    n = strlen(why);
    snprintf(why + n, MAPQ_ERR_LEN - n, "%s'", all ? "" : "...");
}

static int
dump_cb(const char *buffer, size_t size, void *data)
{
    return mapq_buf_append(data, buffer, size) == MAPQ_OK ? 0 : -1;
}

/* {"error": e}: a str is the message, anything else its JSON. */
static void
error_reply(json_t *e, struct mapq_cmd_result *res)
{
    struct mapq_buf text = MAPQ_BUF_INIT;
    const char *s = json_string_value(e);
    size_t n = json_string_length(e);

    if (s == NULL) {
        json_dump_callback(e, dump_cb, &text, JSON_ENCODE_ANY | JSON_COMPACT);
        s = text.data ? text.data : "";
        n = text.len;
    }
    res->status = MAPQ_CMD_FAILED;
    res->error[0] = '\0';
    put_text(res->error, sizeof(res->error), s, n, sizeof(res->error));
    if (res->error[0] == '\0')
        snprintf(res->error, sizeof(res->error),
                 "worker replied with an empty error");
    mapq_buf_release(&text);
}

/* {"output": v}: v converted toward the declared type and checked. The
 * value is written back to text first, as mapq_json converts from text;
 * 17 digits keep every float exact. */
static void
output_reply(const struct mapq_worker *w, json_t *v,
             struct mapq_cmd_result *res)
{
    static const char json_prefix[] = "invalid JSON at ";
    struct mapq_buf text = MAPQ_BUF_INIT;
    char err[MAPQ_ERR_LEN];
    msgpack_packer pk;
    enum mapq_err rc;

    res->status = MAPQ_CMD_FAILED;
    if (w->otype == NULL) {
        mapq_value_packer_init(&pk, &res->output);
        msgpack_pack_nil(&pk);
        res->status = MAPQ_CMD_SUCCEEDED;
        return;
    }
    json_dump_callback(v, dump_cb, &text,
                       JSON_ENCODE_ANY | JSON_COMPACT |
                           JSON_REAL_PRECISION(17));
    rc = mapq_json_to_msgpack(text.data ? text.data : "", text.len, w->otype,
                              &res->output, err);
    mapq_buf_release(&text);
    if (rc == MAPQ_OK)
        res->status = MAPQ_CMD_SUCCEEDED;
    else if (rc == MAPQ_ETOOBIG)
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", w->output_max);
    else if (strncmp(err, json_prefix, sizeof(json_prefix) - 1) == 0)
        snprintf(res->error, sizeof(res->error),
                 "output is not valid JSON: %.400s",
                 err + sizeof(json_prefix) - 1);
    else
        snprintf(res->error, sizeof(res->error), "output%s%.400s",
                 err[0] == '[' ? "" : ": ", err);
}

bool
worker_reply_read(const struct mapq_worker *w, const char *line, size_t len,
                  struct mapq_cmd_result *res, char *why)
{
    json_error_t jerr;
    json_t *j, *out, *e;

    j = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    out = json_is_object(j) ? json_object_get(j, "output") : NULL;
    e = json_is_object(j) ? json_object_get(j, "error") : NULL;
    if ((out == NULL) == (e == NULL)) {
        not_a_reply(line, len, why);
        json_decref(j);
        return false;
    }
    if (e != NULL)
        error_reply(e, res);
    else
        output_reply(w, out, res);
    json_decref(j);
    return true;
}

/* ---- a job that ended with its process -------------------------------- */

/* Appends the memory limit to a failure that it may explain. */
static void
note_mem(const struct mapq_worker *w, struct mapq_cmd_result *res)
{
    size_t n = strlen(res->error);

    if (w->mem_bytes > 0)
        snprintf(res->error + n, sizeof(res->error) - n,
                 " (memory limit %" PRId64 " bytes)", w->mem_bytes);
}

void
worker_result_ended(const struct mapq_worker *w, struct mapq_cmd_result *res)
{
    char secs[32];

    if (w->status_known && WIFEXITED(w->wstatus))
        res->exit_status = WEXITSTATUS(w->wstatus);
    if (w->status_known && WIFSIGNALED(w->wstatus))
        res->term_signal = WTERMSIG(w->wstatus);
    res->status = MAPQ_CMD_FAILED;
    if (w->killed) {
        res->status = MAPQ_CMD_KILLED;
        format_signal(res->error, sizeof(res->error), "", w->kill_sig);
    } else if (w->timed_out) {
        res->status = MAPQ_CMD_TIMED_OUT;
        mapq_proc_secs_text(secs, sizeof(secs), w->timeout_ms);
        snprintf(res->error, sizeof(res->error), "timed out after %s", secs);
    } else if (w->garbage) {
        snprintf(res->error, sizeof(res->error), "%s", w->why);
    } else if (!w->status_known) {
        snprintf(res->error, sizeof(res->error),
                 "worker exited without replying");
    } else if (WIFSIGNALED(w->wstatus)) {
        format_signal(res->error, sizeof(res->error), "worker ",
                      WTERMSIG(w->wstatus));
        note_mem(w, res);
    } else {
        snprintf(res->error, sizeof(res->error), "worker exited with status %d",
                 WEXITSTATUS(w->wstatus));
        note_mem(w, res);
    }
}

/* ---- stderr and checkpoint -------------------------------------------- */

/* The last MAPQ_CMD_STDERR_TAIL bytes, starting on a UTF-8 boundary. */
static void
take_stderr(struct mapq_worker *w, struct mapq_cmd_result *res)
{
    mapq_buf_keep_tail(&w->err, MAPQ_CMD_STDERR_TAIL);
    mapq_buf_release(&res->stderr_tail);
    res->stderr_tail = w->err;
    mapq_buf_init(&w->err, 0);
}

/* The checkpoint file (see mapq_cmd_result_checkpoint()), then removed so
 * that the next job starts without it. */
static void
take_checkpoint(const struct mapq_worker *w, struct mapq_cmd_result *res)
{
    if (w->ckpt_path == NULL)
        return;
    mapq_cmd_result_checkpoint(res, w->ckpt_path);
    unlink(w->ckpt_path);
}

void
worker_result_finish(struct mapq_worker *w, struct mapq_cmd_result *res)
{
    res->duration_ms = w->duration_ms;
    take_stderr(w, res);
    take_checkpoint(w, res);
    if (res->status != MAPQ_CMD_SUCCEEDED)
        mapq_buf_release(&res->output);
}
