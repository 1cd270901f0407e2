/*
 * cmd_int.h - what the files of the command runner share: struct mapq_cmd
 * and the calls between mapq_cmd.c (the controller) and its leaves.
 *
 * mapq_cmd.c owns a command's life cycle (start, watch, reap, finish,
 * free) and registers every event; cmd_spawn.c starts the process,
 * cmd_io.c moves bytes through its pipes and cmd_result.c turns what
 * happened into the result. The leaves return to the controller; they do
 * not call each other. Only agent/mapq_cmd.c and its leaves include this.
 */
#ifndef MAPQ_CMD_INT_H
#define MAPQ_CMD_INT_H

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "mapq_cmd.h"
#include "mapq_workdirs.h"

#define OUTPUT_FILE     ".mapq_output"
#define CHECKPOINT_FILE ".mapq_checkpoint"
#define READ_CHUNK      65536

enum { PIPE_IN, PIPE_OUT, PIPE_ERR, NPIPES };

/*
 * Lifecycle: started (in live, pid > 0) -> reaped (out of live, group
 * killed) -> every pipe at EOF -> finishing (finish event active) -> done
 * called. A command that could not run (early) skips to finishing.
 */
struct mapq_cmd {
    LIST_ENTRY(mapq_cmd) entry; /* in live until reaped */
    struct event_base *base;
    const struct mapq_type *otype; /* borrowed from the spec */
    bool output_text;
    size_t output_max;
    int64_t timeout_ms, mem_bytes;
    int *cpus; /* pinned to these CPU ids (ncpus), or NULL */
    size_t ncpus;
    char *name;           /* argv[0], for messages */
    char *path;           /* argv[0] found on PATH, as exec takes it */
    bool path_remembered; /* path was found before, not checked now */
    char *dir;            /* working directory, NULL once handed back to dirs */
    struct mapq_workdirs *dirs; /* borrowed from the context */
    char *output_path, *checkpoint_path;
    pid_t pid;      /* -1 when nothing was started */
    int fd[NPIPES]; /* parent ends, -1 when closed */
    struct event *ev[NPIPES];
    struct event *timer;  /* the timeout, then the drain limit */
    struct event *finish; /* deferred completion */
    struct mapq_buf in;   /* stdin JSON */
    size_t in_off;        /* bytes of in already written */
    struct mapq_buf out;  /* stdout, capped at output_max */
    struct mapq_buf err;  /* stderr, trimmed to the tail */
    uint64_t err_total;   /* stderr bytes read in all */
    int wstatus, kill_sig;
    bool live, reaped, out_over, timed_out, killed, early, finishing;
    enum mapq_cmd_status early_status;
    char early_error[MAPQ_ERR_LEN];
    struct timespec t0;
    int64_t duration_ms;
    mapq_cmd_done_fn *done;
    void *arg;
};

/* How cmd_spawn() ended. */
enum cmd_spawned {
    CMD_SPAWNED,    /* the child runs: watch it */
    CMD_UNRUNNABLE, /* the command's own fault (early_error set): FAILED */
    CMD_SPAWN_FAIL, /* this host cannot start anything (err set) */
};

/* ---- cmd_spawn.c ---- */

/*
 * Prepares cmd's inputs, working directory, argv and environment and
 * starts its child in its own process group, with the parent pipe ends in
 * cmd->fd. spec, ctx and inputs are borrowed for the call.
 */
enum cmd_spawned cmd_spawn(struct mapq_cmd *cmd,
                           const struct mapq_cmd_spec *spec,
                           const struct mapq_cmd_ctx *ctx,
                           const msgpack_object *inputs, char *err);

/* ---- cmd_io.c ---- */

/* Reads what the pipe on fd holds (bounded per call); true once it reached
 * EOF or failed, and is closed. */
bool cmd_io_read(struct mapq_cmd *cmd, evutil_socket_t fd);

/* Writes what stdin takes without blocking; closes it when all is written
 * or the child stopped reading. */
void cmd_io_write(struct mapq_cmd *cmd, evutil_socket_t fd);

/* Closes pipe i and frees its event; a closed pipe is left alone. */
void cmd_io_close(struct mapq_cmd *cmd, int i);

/* ---- cmd_result.c ---- */

/* Fills res (caller releases with cmd_result_release()) from how cmd
 * ended; takes cmd's stderr buffer. */
void cmd_result_build(struct mapq_cmd *cmd, struct mapq_cmd_result *res);

void cmd_result_release(struct mapq_cmd_result *res);

/* ---- shared helpers ---- */

static inline void
cmd_close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

/* Writes the one-line reason exec failed with errno e. */
static inline void
cmd_exec_error(const struct mapq_cmd *cmd, int e, char *buf, size_t len)
{
    if (e == ENOENT || e == ENOTDIR)
        snprintf(buf, len, "command not found: %s", cmd->name);
    else
        snprintf(buf, len, "cannot execute '%s': %s", cmd->name, strerror(e));
}

#endif
