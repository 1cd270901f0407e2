/*
 * worker_int.h - what the files of the worker share: struct mapq_worker
 * and the calls between mapq_worker.c (the controller) and its leaves.
 *
 * mapq_worker.c owns a worker's process and job life cycles and registers
 * every event; worker_spawn.c starts the process, worker_proto.c speaks
 * the line protocol (the request line, the reply) and builds results. The
 * leaves return to the controller; they do not call each other. Only
 * agent/mapq_worker.c and its leaves include this.
 */
#ifndef MAPQ_WORKER_INT_H
#define MAPQ_WORKER_INT_H

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <time.h>
#include <unistd.h>

#include "mapq_buf.h"
#include "mapq_workdirs.h"
#include "mapq_worker.h"

#define WORKER_CKPT_FILE  ".mapq_checkpoint"
#define WORKER_READ_CHUNK 65536

enum { WPIPE_IN, WPIPE_OUT, WPIPE_ERR, WNPIPES };

/*
 * The process: NONE -> UP (spawned) -> DYING (killed with SIGKILL, or its
 * stdout closed, or reaped) -> NONE once it is reaped and its pipes are at
 * EOF (or past the drain limit). A send while DYING drops it: DYING ->
 * NONE at once.
 */
enum worker_proc { WPROC_NONE, WPROC_UP, WPROC_DYING, WPROC_NSTATES };

/*
 * The job: NONE -> SENT (its line is being written, its reply awaited) ->
 * DONE (the reply came; result built, done callback pending) -> NONE. A
 * job whose process must end first goes SENT -> ENDING -> DONE when the
 * process is gone. A job that could not be sent at all goes NONE -> DONE.
 */
enum worker_job { WJOB_NONE, WJOB_SENT, WJOB_ENDING, WJOB_DONE, WJOB_NSTATES };

struct mapq_worker {
    LIST_ENTRY(mapq_worker) entry; /* in live while live is set */
    struct event_base *base;
    /* the spec, owned copies */
    char **argv; /* NULL-terminated */
    char **env;  /* NULL-terminated additions */
    size_t envc;
    struct mapq_workdirs *dirs; /* borrowed from the spec */
    int64_t mem_bytes;
    struct mapq_type *otype; /* NULL: no output */
    size_t output_max;
    char *name; /* argv[0], for messages */
    /* the process */
    enum worker_proc proc;
    pid_t pid;         /* -1 when NONE */
    bool live;         /* pid not reaped yet, in live */
    bool reaped;       /* its exit was seen (wstatus may be unknown) */
    bool status_known; /* wstatus holds its wait status */
    int wstatus;
    char *path;      /* argv[0] as exec takes it */
    char *dir;       /* its working directory, NULL when none */
    char *ckpt_path; /* dir/WORKER_CKPT_FILE */
    int fd[WNPIPES]; /* parent ends, -1 when closed */
    struct event *ev[WNPIPES];
    struct event *watch; /* while DYING: polls waitpid, then drain limit */
    struct mapq_buf in;  /* stdin bytes not written yet from in_off */
    size_t in_off;
    bool in_started;      /* a byte of the job's request was written */
    struct mapq_buf line; /* stdout since the last reply, capped */
    struct mapq_buf err;  /* stderr since the last reply, tail */
    /* the job */
    enum worker_job job;
    bool timed_out, killed, garbage; /* why an ENDING job ends */
    int kill_sig;
    char why[MAPQ_ERR_LEN]; /* the garbage, or why a job could not run */
    int64_t timeout_ms;
    /* What a job's request is rebuilt from when its process ended cleanly
     * before taking it (resent once to a new process). */
    struct mapq_buf head; /* the request line up to its checkpoint */
    struct mapq_buf ckpt; /* its checkpoint_in bytes */
    bool has_ckpt, resent, epipe;
    int64_t deadline_ms; /* 0: none */
    struct timespec t0;
    int64_t duration_ms;
    struct event *timer;        /* the job's timeout */
    struct event *finish;       /* deferred done callback */
    struct mapq_cmd_result res; /* built when the job ended (DONE) */
    mapq_worker_done_fn *done;
    void *arg;
};

/* How worker_spawn() ended. */
enum worker_spawned {
    WORKER_SPAWNED,    /* the process runs: watch it */
    WORKER_UNRUNNABLE, /* the command's own fault (why set): job FAILED */
    WORKER_SPAWN_FAIL, /* this host cannot start anything (err set) */
};

/* ---- worker_spawn.c ---- */

/*
 * Takes w's working directory and starts its process in its own process
 * group, with the parent pipe ends in w->fd (stdin's write end and the
 * read ends non-blocking). On WORKER_UNRUNNABLE and WORKER_SPAWN_FAIL no
 * process runs; w->dir may be set and is the caller's to hand back.
 */
enum worker_spawned worker_spawn(struct mapq_worker *w, char *why, char *err);

/* Closes *fd when open and sets it to -1. */
void worker_close_fd(int *fd);

/* Writes the one-line reason exec of w's command failed with errno e. */
static inline void
worker_exec_error(const struct mapq_worker *w, int e, char *buf, size_t len)
{
    if (e == ENOENT || e == ENOTDIR)
        snprintf(buf, len, "command not found: %s", w->name);
    else
        snprintf(buf, len, "cannot execute '%s': %s", w->name, strerror(e));
}

/* ---- worker_proto.c ---- */

/*
 * Appends the head of job's request line to out: everything before its
 * checkpoint path, which depends on the process. Inputs that cannot be
 * written as JSON are MAPQ_EINVAL with a one-line reason in why.
 */
enum mapq_err worker_line_head(const struct mapq_worker_job *job,
                               struct mapq_buf *out, char *why);

/* Appends the rest of a request line after its head: w's checkpoint path,
 * the deadline (0: null) and the newline. */
void worker_line_tail(const struct mapq_worker *w, int64_t deadline_ms,
                      struct mapq_buf *out);

/* Removes the checkpoint file of the last job, then writes ckpt (len
 * bytes) when it is not NULL. MAPQ_EIO with err set on failure. */
enum mapq_err worker_ckpt_prepare(const struct mapq_worker *w, const char *ckpt,
                                  size_t len, char *err);

/* Empties res (caller releases with cmd_result_release()). */
void worker_result_init(const struct mapq_worker *w,
                        struct mapq_cmd_result *res);

/*
 * Reads the reply line (len bytes, without its newline) into res: status,
 * error, output. Returns false, with why set, when the line is not a reply.
 */
bool worker_reply_read(const struct mapq_worker *w, const char *line,
                       size_t len, struct mapq_cmd_result *res, char *why);

/* Sets res's status, error, exit status and signal for a job that ended
 * with its process (w's flags, why, wstatus and exec status). */
void worker_result_ended(const struct mapq_worker *w,
                         struct mapq_cmd_result *res);

/* Completes res: the duration, w's stderr since the last reply (taken:
 * w->err is left empty) and the checkpoint file (read, then removed). */
void worker_result_finish(struct mapq_worker *w, struct mapq_cmd_result *res);

/* ---- cmd_result.c (the command runner's, non-static) ---- */

void cmd_result_release(struct mapq_cmd_result *res);

#endif
