/*
 * cmd_result.c - what a finished command attempt amounts to: its status
 * and one-line error, the output value read from $MAPQ_OUTPUT or stdout
 * and checked against the declared type, the checkpoint it left and the
 * tail of its stderr (SPEC section 2).
 *
 * Reads the struct mapq_cmd that mapq_cmd.c owns (taking only its stderr
 * buffer) and small files in the working directory; the result it fills
 * belongs to the caller. Never touches the loop or the process.
 */
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "cmd_int.h"
#include "mapq_fs.h"
#include "mapq_json.h"
#include "mapq_proc.h"
#include "mapq_value.h"

/* ---- messages --------------------------------------------------------- */

static const char *
signal_name(int sig)
{
    switch (sig) {
    case SIGHUP:
        return "SIGHUP";
    case SIGINT:
        return "SIGINT";
    case SIGQUIT:
        return "SIGQUIT";
    case SIGILL:
        return "SIGILL";
    case SIGTRAP:
        return "SIGTRAP";
    case SIGABRT:
        return "SIGABRT";
    case SIGBUS:
        return "SIGBUS";
    case SIGFPE:
        return "SIGFPE";
    case SIGKILL:
        return "SIGKILL";
    case SIGUSR1:
        return "SIGUSR1";
    case SIGSEGV:
        return "SIGSEGV";
    case SIGUSR2:
        return "SIGUSR2";
    case SIGPIPE:
        return "SIGPIPE";
    case SIGALRM:
        return "SIGALRM";
    case SIGTERM:
        return "SIGTERM";
    case SIGXCPU:
        return "SIGXCPU";
    case SIGXFSZ:
        return "SIGXFSZ";
    case SIGSYS:
        return "SIGSYS";
    }
    return NULL;
}

/* Writes "killed by signal 9 (SIGKILL)" into buf. */
static void
format_signal(char *buf, size_t len, int sig)
{
    const char *name = signal_name(sig);

    if (name != NULL)
        snprintf(buf, len, "killed by signal %d (%s)", sig, name);
    else
        snprintf(buf, len, "killed by signal %d", sig);
}

/* ---- files ------------------------------------------------------------ */

/* ---- completion ------------------------------------------------------- */

/* Appends the memory limit to a failure that it may explain. */
static void
note_mem(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    size_t n = strlen(res->error);

    if (cmd->mem_bytes > 0)
        snprintf(res->error + n, sizeof(res->error) - n,
                 " (memory limit %" PRId64 " bytes)", cmd->mem_bytes);
}

static bool
is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' ||
           c == '\f';
}

/* Sets status and error from how the process ended; true when it exited
 * 0 and the output is to be read. */
static bool
classify(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    char secs[32];

    res->status = MAPQ_CMD_FAILED;
    if (cmd->early) {
        res->status = cmd->early_status;
        snprintf(res->error, sizeof(res->error), "%s", cmd->early_error);
        return false;
    }
    if (cmd->killed) {
        res->status = MAPQ_CMD_KILLED;
        format_signal(res->error, sizeof(res->error), cmd->kill_sig);
        return false;
    }
    if (cmd->timed_out) {
        res->status = MAPQ_CMD_TIMED_OUT;
        mapq_proc_secs_text(secs, sizeof(secs), cmd->timeout_ms);
        snprintf(res->error, sizeof(res->error), "timed out after %s", secs);
        return false;
    }
    if (WIFSIGNALED(cmd->wstatus)) {
        format_signal(res->error, sizeof(res->error), WTERMSIG(cmd->wstatus));
    } else if (res->exit_status != 0) {
        snprintf(res->error, sizeof(res->error), "exit status %d",
                 res->exit_status);
    } else {
        return true;
    }
    note_mem(cmd, res);
    return false;
}

static void
set_error(struct mapq_cmd_result *res, enum mapq_cmd_status status,
          const char *prefix, const char *msg)
{
    res->status = status;
    snprintf(res->error, sizeof(res->error), "%.100s%.400s", prefix, msg);
}

/* Parses JSON output text into res->output against the declared type. */
static void
parse_output(const struct mapq_cmd *cmd, const char *text, size_t len,
             struct mapq_cmd_result *res)
{
    static const char json_prefix[] = "invalid JSON at ";
    char err[MAPQ_ERR_LEN];
    enum mapq_err rc;

    rc = mapq_json_to_msgpack(text, len, cmd->otype, &res->output, err);
    if (rc == MAPQ_OK) {
        res->status = MAPQ_CMD_SUCCEEDED;
    } else if (rc == MAPQ_ETOOBIG) {
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", cmd->output_max);
    } else if (strncmp(err, json_prefix, sizeof(json_prefix) - 1) == 0) {
        set_error(res, MAPQ_CMD_FAILED,
                  "output is not valid JSON: ", err + sizeof(json_prefix) - 1);
    } else {
        set_error(res, MAPQ_CMD_FAILED,
                  err[0] == '[' ? "output" : "output: ", err);
    }
}

/* output_text: the trimmed stdout as a str, checked against the type. */
static void
text_output(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    const char *p = cmd->out.data ? cmd->out.data : "";
    size_t n = cmd->out.len;
    char err[MAPQ_ERR_LEN];
    msgpack_packer pk;
    msgpack_unpacked u;
    json_t *check;

    while (n > 0 && is_space(*p)) {
        p++;
        n--;
    }
    while (n > 0 && is_space(p[n - 1]))
        n--;
    /* jansson refuses text that is not UTF-8, as JSON readers would. */
    check = json_stringn(p, n);
    if (check == NULL) {
        set_error(res, MAPQ_CMD_FAILED, "", "output is not valid UTF-8 text");
        return;
    }
    json_decref(check);
    mapq_value_packer_init(&pk, &res->output);
    if (msgpack_pack_str(&pk, n) != 0 ||
        msgpack_pack_str_body(&pk, p, n) != 0) {
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", cmd->output_max);
        return;
    }
    msgpack_unpacked_init(&u);
    if (mapq_value_unpack(res->output.data, res->output.len, &u, err) ==
            MAPQ_OK &&
        mapq_type_check(cmd->otype, &u.data, err) == MAPQ_OK)
        res->status = MAPQ_CMD_SUCCEEDED;
    else
        set_error(res, MAPQ_CMD_FAILED, "output: ", err);
    msgpack_unpacked_destroy(&u);
}

static bool
blank(const char *p, size_t n)
{
    while (n > 0 && is_space(p[n - 1]))
        n--;
    return n == 0;
}

/* Exit 0: the output from $MAPQ_OUTPUT, or stdout. */
static void
read_output(const struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    struct mapq_buf file;
    char err[MAPQ_ERR_LEN], tname[128];
    enum mapq_err rc;

    if (cmd->otype == NULL) {
        msgpack_packer pk;

        mapq_value_packer_init(&pk, &res->output);
        msgpack_pack_nil(&pk);
        res->status = MAPQ_CMD_SUCCEEDED;
        return;
    }
    mapq_buf_init(&file, cmd->output_max);
    rc = mapq_fs_read_file(cmd->output_path, &file, err);
    /* The file wins when it exists; then stdout does not matter. */
    if (rc == MAPQ_ETOOBIG || (rc == MAPQ_ENOENT && cmd->out_over))
        snprintf(res->error, sizeof(res->error),
                 "output over the size cap (%zu bytes)", cmd->output_max);
    else if (rc == MAPQ_EIO)
        set_error(res, MAPQ_CMD_FAILED, "cannot read $MAPQ_OUTPUT: ", err);
    else if (rc == MAPQ_OK && blank(file.data ? file.data : "", file.len))
        set_error(res, MAPQ_CMD_FAILED, "",
                  "output is not valid JSON: $MAPQ_OUTPUT is empty");
    else if (rc == MAPQ_OK)
        parse_output(cmd, file.data, file.len, res);
    else if (cmd->output_text)
        text_output(cmd, res);
    else if (blank(cmd->out.data ? cmd->out.data : "", cmd->out.len))
        snprintf(res->error, sizeof(res->error),
                 "no output: the task declares %s but wrote nothing to "
                 "$MAPQ_OUTPUT or stdout",
                 mapq_type_format(cmd->otype, tname, sizeof(tname)));
    else
        parse_output(cmd, cmd->out.data, cmd->out.len, res);
    mapq_buf_release(&file);
}

void
mapq_cmd_result_checkpoint(struct mapq_cmd_result *res, const char *path)
{
    char err[MAPQ_ERR_LEN];
    size_t n;
    enum mapq_err rc;

    if (path == NULL)
        return;
    rc = mapq_fs_read_file(path, &res->checkpoint, err);
    res->has_checkpoint = rc == MAPQ_OK;
    if (rc == MAPQ_OK || rc == MAPQ_ENOENT)
        return;
    mapq_buf_release(&res->checkpoint);
    if (res->status == MAPQ_CMD_SUCCEEDED)
        return; /* no retry will need it */
    n = strlen(res->error);
    if (rc == MAPQ_ETOOBIG)
        snprintf(res->error + n, sizeof(res->error) - n,
                 "; checkpoint over the size cap (%u bytes), not kept",
                 MAPQ_VALUE_MAX);
    else
        snprintf(res->error + n, sizeof(res->error) - n,
                 "; cannot read checkpoint: %s", err);
}

/* The last MAPQ_CMD_STDERR_TAIL bytes, starting on a UTF-8 boundary. */
static void
take_stderr(struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    mapq_buf_keep_tail(&cmd->err, MAPQ_CMD_STDERR_TAIL);
    res->stderr_tail = cmd->err;
    res->stderr_total = cmd->err_total;
    mapq_buf_init(&cmd->err, 0);
}

void
cmd_result_build(struct mapq_cmd *cmd, struct mapq_cmd_result *res)
{
    memset(res, 0, sizeof(*res));
    mapq_buf_init(&res->output, cmd->output_max);
    mapq_buf_init(&res->checkpoint, MAPQ_VALUE_MAX);
    res->exit_status = -1;
    res->duration_ms = cmd->duration_ms;
    if (cmd->reaped && WIFEXITED(cmd->wstatus))
        res->exit_status = WEXITSTATUS(cmd->wstatus);
    if (cmd->reaped && WIFSIGNALED(cmd->wstatus))
        res->term_signal = WTERMSIG(cmd->wstatus);
    take_stderr(cmd, res);
    if (classify(cmd, res))
        read_output(cmd, res);
    mapq_cmd_result_checkpoint(res, cmd->checkpoint_path);
    if (res->status != MAPQ_CMD_SUCCEEDED)
        mapq_buf_release(&res->output);
}

void
cmd_result_release(struct mapq_cmd_result *res)
{
    mapq_buf_release(&res->output);
    mapq_buf_release(&res->stderr_tail);
    mapq_buf_release(&res->checkpoint);
}
