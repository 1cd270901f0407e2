/*
 * mapq_worker.h - one persistent worker process of a command task and the
 * worker line protocol it speaks (SPEC section 9).
 *
 * A worker keeps one process of the task's argv alive and sends it one
 * subtask at a time as one JSON line on its stdin:
 *
 *   {"inputs":{...},"execution":ID,"node":NAME,"index":N,"attempt":N,
 *    "checkpoint":PATH,"deadline_ms":N|null}
 *
 * then reads one line back on its stdout: {"output": VALUE} or
 * {"error": VALUE} (a str is the message; any other value is written as
 * JSON), exactly one of the two in one JSON object; other keys are
 * ignored. stderr written since the previous reply is the subtask's log.
 *
 * The process is started lazily by the first mapq_worker_send() (and by
 * the first send after it died) in its own process group and in a fresh
 * working directory from the spec's dirs, handed back for removal when
 * that process is gone; its environment is the agent's (without the MAPQ_*
 * variables mapq sets for commands and without the agent's Redis URL), plus
 * MAPQ_WORKER=1 and the spec's additions. A process that dies, writes a
 * line that is not a reply or one over the cap, outlives its timeout or
 * is killed fails only the subtask it was on; the next send starts a new
 * one. An {"error"} reply fails the subtask and keeps the process.
 *
 * Everything runs on the caller's libevent loop and nothing blocks it.
 * The done callback always comes from a deferred event, never from inside
 * mapq_worker_send(), mapq_worker_kill() or mapq_worker_reaped().
 *
 * Child exits: the owner of SIGCHLD reaps with waitpid(-1) (the agent's
 * mapq_cmd_reap()) and passes every pid that is not a command's to
 * mapq_worker_reaped(). Without that hook a worker still notices its
 * process's death (stdout EOF plus a waitpid on its own pid, polled while
 * it dies), but an exit status taken by another reaper is lost: the
 * subtask then fails with "worker exited without replying". The process
 * must ignore SIGPIPE (the agent does), as a worker that closed its stdin
 * makes writes fail with EPIPE.
 */
#ifndef MAPQ_WORKER_H
#define MAPQ_WORKER_H

#include <event2/event.h>
#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "mapq_cmd.h"
#include "mapq_err.h"
#include "mapq_type.h"

/* How much a reply line may exceed output_max: JSON text is longer than
 * the msgpack value it carries, and the line holds an error message. */
#define MAPQ_WORKER_LINE_SLACK (64 * 1024)

/* What to run. Copied by mapq_worker_new(): nothing is borrowed after. */
struct mapq_worker_spec {
    char *const *argv; /* argc entries; no placeholders: a worker's argv is
                          fixed */
    size_t argc;
    char *const *env; /* envc "NAME=VALUE" entries added to the environment
                         (they replace inherited ones of the same name) */
    size_t envc;
    struct mapq_workdirs *dirs;     /* gives and removes the working
                                       directories; outlives the worker */
    int64_t mem_bytes;              /* RLIMIT_AS of the process when > 0 */
    const struct mapq_type *output; /* NULL: no output expected */
    size_t output_max; /* cap on the output value's bytes; 0: MAPQ_VALUE_MAX.
                          A reply line longer than output_max +
                          MAPQ_WORKER_LINE_SLACK is not a reply. */
};

/* One subtask. Borrowed for the mapq_worker_send() call only. */
struct mapq_worker_job {
    const msgpack_object *inputs; /* a map, or NULL for no inputs */
    const char *execution;
    const char *node;
    uint64_t index;
    uint32_t attempt;
    const char *checkpoint_in; /* previous checkpoint bytes or NULL */
    size_t checkpoint_len;
    int64_t timeout_ms; /* 0 = none; also sent as "deadline_ms" (wall clock
                           ms since the epoch when it passes) */
};

struct mapq_worker;

/*
 * Called once per sent job with the result (borrowed for the call), in the
 * same struct as a command attempt's:
 *   SUCCEEDED  the reply's output, converted to msgpack and checked against
 *              the spec's output type (nil when the spec has none);
 *   FAILED     the {"error"} text; or the output's conversion or type error
 *              ("output: expected int, got str"); or the process's end:
 *              "worker exited with status N", "worker killed by signal N
 *              (SIGX)", "worker exited without replying", "worker wrote a
 *              line that is not a reply: ...", "worker wrote a reply line
 *              over the size cap (N bytes)", "command not found: NAME";
 *   TIMED_OUT  the timeout passed; the process group was killed;
 *   KILLED     mapq_worker_kill() was called while the job ran.
 * stderr_tail holds the last MAPQ_CMD_STDERR_TAIL bytes the process wrote
 * to stderr since the previous reply (so stderr written between jobs goes
 * to the next one), checkpoint the file at the job's "checkpoint" path
 * when it exists. exit_status and term_signal describe the process only
 * when the job ended with it (else -1 and 0); duration_ms runs from the
 * send to the reply or to the end of the job. After a reply the process
 * keeps serving; after any other end it is gone. The callback may call
 * mapq_worker_send() again, or mapq_worker_free(w) as its last statement.
 */
typedef void mapq_worker_done_fn(struct mapq_worker *w,
                                 const struct mapq_cmd_result *res, void *arg);

/*
 * Creates a worker on base (borrowed; it must outlive the worker); spec is
 * copied. Starts no process: the first mapq_worker_send() does. Caller
 * frees with mapq_worker_free(). Never NULL.
 */
struct mapq_worker *mapq_worker_new(struct event_base *base,
                                    const struct mapq_worker_spec *spec);

/*
 * Sends job to the worker's process, starting one first when none runs.
 * One job at a time: the worker must not be busy (asserted). Returns
 * MAPQ_OK, after which done(w, res, arg) is called exactly once from the
 * loop (unless the worker is freed first); or MAPQ_EIO with err set when
 * this host could not start the process or prepare the job (no working
 * directory, no pipe, no process), and then done is never called. A
 * command that does not exist, or inputs that cannot be written as JSON,
 * are not errors here: the job ends FAILED.
 */
enum mapq_err mapq_worker_send(struct mapq_worker *w,
                               const struct mapq_worker_job *job,
                               mapq_worker_done_fn *done, void *arg, char *err);

/* True from a successful mapq_worker_send() until its done callback. */
bool mapq_worker_busy(const struct mapq_worker *w);

/*
 * Sends sig to the process's whole group. A job that is running ends
 * KILLED ("killed by signal 15 (SIGTERM)") once the process is gone, from
 * the loop; a reply it still writes is ignored. With no job running, only
 * the signal is sent. No effect without a process.
 */
void mapq_worker_kill(struct mapq_worker *w, int sig);

/* The process's pid, which is also its process group; -1 when none. */
pid_t mapq_worker_pid(const struct mapq_worker *w);

/* Its working directory (borrowed, lives as long as w), or NULL. */
const char *mapq_worker_dir(const struct mapq_worker *w);

/*
 * Closes the process's stdin, kills its group with SIGKILL and removes its
 * working directory, then frees the worker; NULL-safe. A pending done
 * callback is not called. The exited process is left for the SIGCHLD
 * owner to reap.
 */
void mapq_worker_free(struct mapq_worker *w);

/*
 * Tells the workers that pid exited with wait status status (as waitpid()
 * returned it). Returns true when pid was a worker's process, false for
 * any other pid. Call from the SIGCHLD reaper on the loop, for every pid
 * it reaped that is not a command's.
 */
bool mapq_worker_reaped(pid_t pid, int status);

#endif
