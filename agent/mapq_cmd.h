/*
 * mapq_cmd.h - running one attempt of a command task (SPEC section 2).
 *
 * mapq_cmd_start() takes a fresh working directory, spawns argv in its
 * own process group with inputs on stdin (a JSON object), in MAPQ_IN_<name>
 * variables and in {name} placeholders, and watches it on the caller's
 * libevent loop. When the process has exited and its stdout and stderr are
 * closed, the done callback runs once with the result: the output value
 * read from $MAPQ_OUTPUT or stdout and checked against the declared type,
 * or a one-line error. The working directory is handed back for removal
 * (mapq_workdirs.h) when the command is freed, after the callback. Nothing here
 * blocks the loop.
 *
 * Child exits are delivered by the owner of SIGCHLD: the agent's SIGCHLD
 * callback on the loop (a signalfd) calls mapq_cmd_reap(), which waits for
 * every exited child and completes the matching commands.
 */
#ifndef MAPQ_CMD_H
#define MAPQ_CMD_H

#include <event2/event.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_type.h"
#include "mapq_workdirs.h"

/* How much of stderr is kept, from the end. */
#define MAPQ_CMD_STDERR_TAIL (64 * 1024)

/* What to run. Read during mapq_cmd_start() only, except output, which is
 * borrowed until the done callback. */
struct mapq_cmd_spec {
    char *const *argv; /* argc entries, may hold {name} placeholders */
    size_t argc;
    const struct mapq_type *output; /* NULL: no output expected */
    bool output_text;               /* take trimmed stdout as the str */
    int64_t timeout_ms;             /* 0 = none */
    int64_t mem_bytes;              /* RLIMIT_AS when > 0 */
    const int *cpus;   /* CPU ids to pin the command to (ncpus, copied) */
    size_t ncpus;      /* 0: no pinning */
    size_t output_max; /* cap on the output value's bytes */
};

/* Identity of the attempt, exported as MAPQ_* variables. Borrowed. */
struct mapq_cmd_ctx {
    const char *execution;
    const char *node;
    uint64_t index;
    uint32_t attempt;
    struct mapq_workdirs *dirs; /* gives the fresh working directory and
                                   removes it; must outlive the command */
    const char *checkpoint_in;  /* previous checkpoint bytes or NULL */
    size_t checkpoint_len;
};

enum mapq_cmd_status {
    MAPQ_CMD_SUCCEEDED, /* exit 0 and a valid output */
    MAPQ_CMD_FAILED,    /* user error: exit status, signal, bad output */
    MAPQ_CMD_TIMED_OUT, /* timeout_ms passed; the process group was killed */
    MAPQ_CMD_KILLED,    /* mapq_cmd_kill() was called */
    MAPQ_CMD_SYSERR,    /* could not start (no such binary is FAILED) */
};

struct mapq_cmd_result {
    enum mapq_cmd_status status;
    struct mapq_buf output;      /* msgpack value when SUCCEEDED (nil when
                                    the task has no output) */
    char error[512];             /* one line when not SUCCEEDED */
    struct mapq_buf stderr_tail; /* last MAPQ_CMD_STDERR_TAIL bytes */
    uint64_t stderr_total;       /* bytes written to stderr in all */
    struct mapq_buf checkpoint;  /* $MAPQ_CHECKPOINT contents at the end */
    bool has_checkpoint;
    int exit_status; /* -1 when killed by a signal or never started */
    int term_signal; /* 0 when exited */
    int64_t duration_ms;
};

struct mapq_cmd;

/* Called once per command. res is borrowed for the call; the callback may
 * call mapq_cmd_free(cmd) as its last statement. */
typedef void mapq_cmd_done_fn(struct mapq_cmd *cmd,
                              const struct mapq_cmd_result *res, void *arg);

/*
 * Starts one attempt. inputs is the msgpack map of the task's inputs
 * (borrowed for the call only; NULL is no inputs). Returns the command
 * (freed with mapq_cmd_free() after or from the done callback), or NULL
 * with err set when nothing could be started at all (no working directory,
 * no process). A binary that does not exist is not a start failure: the
 * command completes with MAPQ_CMD_FAILED and "command not found: NAME".
 * Neither are inputs that cannot be passed (not expressible as JSON, or a
 * NUL byte in a text): MAPQ_CMD_FAILED with "input 'x': ...". An input
 * whose MAPQ_IN_<name> string would pass Linux's 128 KiB limit per
 * environment string is left out of the environment (it is still on stdin
 * and in {name} placeholders, where exec may refuse it: FAILED).
 */
struct mapq_cmd *mapq_cmd_start(struct event_base *base,
                                const struct mapq_cmd_spec *spec,
                                const struct mapq_cmd_ctx *ctx,
                                const msgpack_object *inputs,
                                mapq_cmd_done_fn *done, void *arg, char *err);

/*
 * The stderr of the running command from byte offset from (counted from its
 * start) on, as far as it is still held: *p and *n (borrowed until the loop
 * turns), and in *skipped the bytes after from that are no longer held.
 */
void mapq_cmd_stderr_since(const struct mapq_cmd *cmd, uint64_t from,
                           const char **p, size_t *n, uint64_t *skipped);

/* Sends sig to the command's whole process group; its status becomes
 * MAPQ_CMD_KILLED ("killed by signal 15 (SIGTERM)") unless its process
 * had already exited. The done callback still comes from the loop. */
void mapq_cmd_kill(struct mapq_cmd *cmd, int sig);

/* The child's pid, which is also its process group; -1 if none started. */
pid_t mapq_cmd_pid(const struct mapq_cmd *cmd);

/* The attempt's working directory (borrowed), valid until the command is
 * freed: a done callback may still read what the task left there. */
const char *mapq_cmd_dir(const struct mapq_cmd *cmd);

/* Kills a still-running command's process group and frees it; NULL-safe.
 * The done callback is not called. */
void mapq_cmd_free(struct mapq_cmd *cmd);

/*
 * Reads the checkpoint file at path (borrowed; NULL: the task has none)
 * into res->checkpoint, setting res->has_checkpoint, whatever the outcome;
 * kept only under MAPQ_VALUE_MAX. A file there that cannot be read is
 * said in res->error unless res succeeded (no retry will need it). For
 * commands and persistent workers alike.
 */
void mapq_cmd_result_checkpoint(struct mapq_cmd_result *res, const char *path);

/* What the reaper does with a child that is not a command's: its pid and
 * wait status. */
typedef void mapq_cmd_other_fn(pid_t pid, int status);

/* Reaps every exited child (waitpid WNOHANG loop), completes the matching
 * commands and hands any other child to other (NULL: ignored). Call from
 * the SIGCHLD callback on the loop. */
void mapq_cmd_reap(mapq_cmd_other_fn *other);

#endif
