/*
 * agent_int.h - what the files of the agent share: its structs, limits,
 * the job (slot) state, and the calls between the controller and its
 * leaves.
 *
 * mapq_agent.c is the controller: it owns struct mapq_agent, every job and
 * its state, every event, and decides what happens next; its second file,
 * mapq_agent_step.c, makes the agent's one call to Redis. The leaves do one
 * thing each and report back to it: agent_claim.c (claims and doorbells),
 * agent_job.c (a job's data and what its attempt records),
 * agent_plugin_run.c (plugin calls), agent_specs.c (the task spec cache),
 * agent_reserve.c (cache_serialize reservations), agent_lease.c (renewals,
 * reaping, the agent's entry), agent_resources.c (--cpus and --mem: what
 * running commands declared, the CPUs they are pinned to), agent_outbox.c (the
 * results' outbox), agent_workers.c (persistent workers) and agent_retry.c
 * (backoff after refused calls). Leaves read the agent's state but never change
 * a job's state and never call each other. Only files of agent/ include this.
 */
#ifndef MAPQ_AGENT_INT_H
#define MAPQ_AGENT_INT_H

#include <msgpack.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>
#include <sys/time.h>

#include "mapq_agent.h"
#include "mapq_buf.h"
#include "mapq_cmd.h"
#include "mapq_plugin_host.h"
#include "mapq_proto.h"
#include "mapq_redis.h"
#include "mapq_retry.h"
#include "mapq_workdirs.h"
#include "mapq_worker.h"
#include "mapq_xfer.h"

#define SPEC_CACHE_MAX     128
#define CALL_TIMEOUT_MS    10000
#define BELL_BLOCK_S       15 /* a bell lost with a crashed agent costs this */
#define IDLE_BEAT_MS       5000 /* heartbeat of an agent that holds nothing */
#define DONE_BATCH_MAX     1000
#define DONE_BATCH_BYTES   (64 * 1024 * 1024)
#define EXIT_DEADLINE_MS   5000
#define DONE_FIELDS        8     /* arguments of one attempt in mapq1_done */
#define UNREACHABLE_MS     10000 /* warn this often while redis is away */
#define LOG_TAIL_MAX       2048  /* stderr bytes kept in an attempt's log */
#define RETRY_MIN_MS       100   /* first wait after a Redis error reply */
#define RETRY_MAX_MS       2000  /* longest wait between tries */
#define WORKDIRS_AHEAD_MAX 64    /* empty working directories made ahead */
/* Prefetch and batches: while the commands an agent runs are of tasks
 * whose subtasks took less than PREFETCH_SHORT_US on average here, each
 * slot holds a batch of them (agent_claim_depth(): the node's batch: N, or
 * about BATCH_WINDOW_US of work), so that a finished slot starts the next
 * at once; finished attempts are reported in batches of FLUSH_BATCH(hold),
 * waiting at most FLUSH_DEFER_MS (agent_claim_defers()). Each call that
 * finds Redis idle costs it far more than a call that finds it busy
 * (docs/SCALING.md, "Wake-ups"), so the batches are sized to make an
 * agent whose slots are fed call about every FLUSH_DEFER_MS, not more. */
#define PREFETCH_SHORT_US 1000000
#define BATCH_WINDOW_US   100000
#define BATCH_AUTO_MIN    2
#define BATCH_AUTO_MAX    64
#define FLUSH_DEFER_MS    50
#define FLUSH_BATCH(hold) ((hold) / 2 > 1 ? (hold) / 2 : 1)
/* A task that declares more resources than the agent has: command claims
 * pause this long after it is handed back, so a larger agent takes it;
 * whether any live agent could is asked again after UNFIT_RECHECK_MS. */
#define CPU_IDS_MAX      1024 /* CPUs an agent pins commands to, at most */
#define UNFIT_PAUSE_MS   1000
#define UNFIT_RECHECK_MS 10000

/*
 * A job's slot state: where it is (waiting for its task spec, waiting for
 * its file inputs, waiting for its cache key's reservation, running its
 * command) and what ended it
 * early (its execution ended: STOPPED, its lease was lost: LOST, the drain
 * killed it: INTERRUPTED). Changed only by job_set_state() in agent.c,
 * which asserts the move is in the table of agent_job_state_legal().
 */
enum job_state {
    JOB_NEW,             /* claimed, not in a slot yet */
    JOB_SPEC,            /* waiting for its task spec */
    JOB_SPEC_STOPPED,    /* ... and its execution ended meanwhile */
    JOB_SPEC_LOST,       /* ... and it lost its lease meanwhile */
    JOB_QUEUED,          /* prefetched: waits for a free slot */
    JOB_RESERVE,         /* cache_serialize: asking for its key */
    JOB_RESERVE_STOPPED, /* ... and its execution ended meanwhile */
    JOB_RESERVE_LOST,    /* ... and it lost its lease meanwhile */
    JOB_FETCH,           /* its file inputs are being fetched */
    JOB_FETCH_STOPPED,   /* ... and its execution ended meanwhile */
    JOB_FETCH_LOST,      /* ... and it lost its lease meanwhile */
    JOB_RUN,             /* its command runs */
    JOB_RUN_INTERRUPTED, /* killed by the drain: handed back */
    JOB_RUN_STOPPED,     /* killed, its execution ended: ABORTED */
    JOB_RUN_LOST,        /* killed, its lease lost: nothing recorded */
    JOB_UPLOAD,          /* succeeded: its output's files are being stored */
    JOB_DONE,            /* left its slot: recorded or dropped */
    JOB_NSTATES
};

/* Room for agent_job_key()'s text with its NUL. */
#define AGENT_KEY_LEN 96

struct spec_entry {
    char key[AGENT_KEY_LEN]; /* "<exec>/<k>" */
    struct mapq_taskspec *spec;
    char error[MAPQ_ERR_LEN]; /* set when the spec could not be used */
    bool security;            /* a security error: unsigned, or not allowed */
    mapq_plugin_fn *fn;       /* plugin tasks: looked up on first use */
    int64_t avg_us;           /* its commands' mean run time (moving), -1:
                                 none finished yet */
    int nheld;                /* its jobs running or prefetched (kept by
                                 job_set_state) */
    bool fetching;
    /* Its resources exceed this agent's: whether any live agent has them
     * (mapq1_fits). unfit says why none does; empty: one does, or not
     * asked yet (fit_checked_ms 0). */
    bool fit_asking;
    int64_t fit_checked_ms;
    char unfit[MAPQ_ERR_LEN];
    LIST_ENTRY(spec_entry) entry;
};

/* What a running command declared and took (agent_res_take()). */
struct job_res {
    int64_t cpu_milli, mem_bytes;
    int *cpus; /* CPU ids it is pinned to (owned), ncpus of them */
    int ncpus;
};

/* What the agent has for commands (--cpus, --mem) and what the running
 * ones declared; the CPUs that declared ones are pinned to. */
struct agent_res {
    int64_t cpu_milli, mem_bytes; /* capacity */
    int64_t cpu_used, mem_used;   /* declared by running commands */
    int *pool; /* CPU ids (owned), npool of them; none: no pinning */
    int *load; /* per pool entry: commands pinned to it */
    int npool;
};

struct job {
    struct mapq_agent *a;
    char *ref;
    struct mapq_ref r;
    char *body; /* owned copy; body_u points into it */
    size_t bodylen;
    msgpack_unpacked body_u;
    const msgpack_object *inputs;
    const char *field; /* subtask key, points into body */
    size_t fieldlen;
    struct spec_entry *spec;
    struct mapq_cmd *cmd;        /* while its command runs (JOB_RUN*) */
    struct agent_worker *worker; /* ... or its worker runs it (owned) */
    struct plugin_child *child;  /* ... or a child calls its plugin (owned) */
    enum job_state state;
    /* Its reservation request failed: ask again (on the retry timer or on
     * reconnect). A note about the request, not about the slot. */
    bool reserve_due;
    int64_t started_ms;
    const struct mapq_cmd_result *res; /* while its command's end is handled */
    char *ckpt_in; /* the previous attempt's checkpoint (owned), or NULL */
    size_t ckpt_in_len;
    const struct mapq_buf *ckpt_out; /* this attempt's, while it is recorded */
    struct job_res held;             /* while it runs (JOB_RUN*) */
    bool live_followed; /* mapq logs -f follows it (agent_live.c) */
    bool claim_counted; /* agent_metrics_claimed() counted it */
    uint64_t live_sent; /* stderr bytes sent for it so far */
    /* Its file inputs (agent_files.c): the directory they are fetched into
     * (owned, from a->dirs), the request while they come, and the inputs
     * the task sees, with local paths in place of references (inputs then
     * points into files_u). */
    char *files_dir;
    struct mapq_xfer_req *files_req;
    struct mapq_buf files_inputs;
    msgpack_unpacked files_u;
    bool files_ready;
    /* Its output's files, while they are stored (JOB_UPLOAD): the request,
     * the output with the paths its task gave, and what its command's end
     * left for the record (owned; job->res points to it then); once
     * stored, the raw SHA-256 of the blobs its record holds (field b). */
    struct mapq_xfer_req *store_req;
    struct mapq_buf store_value;
    struct mapq_buf store_held;
    struct mapq_cmd_result *kept;
    TAILQ_ENTRY(job) entry;
};

TAILQ_HEAD(job_list, job);

/* What one finished attempt records: one entry of mapq1_done. */
struct job_end {
    char kind;              /* T terminal, U user retry, S system retry, I
                               interrupted; 0: nothing to record */
    int phase;              /* MAPQ_PHASE_* */
    struct mapq_buf record; /* the record (len 0: none) */
    char *target;           /* owned; NULL: none */
    char *error;            /* owned; NULL: it did not fail */
};

#define JOB_END_NONE                    \
    {                                   \
        0, 0, MAPQ_BUF_INIT, NULL, NULL \
    }

enum bell_kind { BELL_PLUGIN, BELL_CMD, NBELLS };

/* The doorbells of one kind of list: command ('c') or plugin ('p'). */
struct bell {
    struct mapq_agent *a;
    struct mapq_redis *conn; /* blocks in BLPOP on this kind's doorbells */
    char kind;               /* 'c' or 'p' */
    bool inflight;           /* a BLPOP is pending */
    /* The last claim got less of this kind than it asked for, and no
     * prefetch: its lists are empty (or too short to share) until their
     * doorbell rings, so claims leave it out. */
    bool dry;
    /* The last claim that asked for any got less than it asked: its lists
     * are short, and whoever fills them (a concurrency window) may be
     * waiting for this agent's results (agent_claim_defers()). */
    bool cut;
    int asked;     /* by the claim in flight */
    int for_slots; /* of which for free slots (the rest is prefetch) */
    /* Bells heard; a claim's short reply makes the kind dry only if no bell
     * rang while it was in flight (that work came later). */
    unsigned heard, heard_at_claim;
};

struct mapq_agent {
    struct event_base *base;
    const struct agent_ops *ops; /* the controller's, for the leaves */
    struct mapq_agent_config cfg;
    char *ns, *name, *workroot;
    struct mapq_workdirs *dirs; /* working directories under workroot */
    struct mapq_xfer *xfer;     /* file transfers; NULL until the first */
    char **queues;
    struct mapq_redis *cmd;    /* functions */
    struct bell bells[NBELLS]; /* doorbell waits, one connection each */
    struct mapq_plugin_host *plugins;
    struct job_list jobs; /* waiting for spec or reservation, or running */
    int running_cmds;     /* jobs in JOB_RUN* (kept by job_set_state) */
    int waiting;          /* jobs in JOB_SPEC* and JOB_RESERVE* (same) */
    int queued;           /* jobs in JOB_QUEUED (same) */
    LIST_HEAD(, spec_entry) specs;
    int nspecs;
    int nheld_specs; /* entries of specs with nheld > 0 (same) */
    TAILQ_HEAD(, agent_worker) idle_workers; /* least recently used first */
    int nidle;
    bool step_inflight;       /* a mapq1_step call is pending */
    bool promote_due;         /* a delayed retry this agent parked is due */
    bool promote_sent;        /* ... and the step in flight promotes */
    bool prefetch_paused;     /* a prefetched subtask went back: none until a
                                 slot frees */
    struct agent_res res;     /* --cpus, --mem and what running commands
                                 declared */
    bool admit_paused;        /* a subtask's resources did not fit: no command
                                 claims until a command ends (or admit_ev) */
    struct event *admit_ev;   /* ends admit_paused when nothing runs */
    int64_t sending_delay_ms; /* shortest retry delay in a->sending, or 0 */
    bool stopping;
    bool leaving;              /* drained: unregistering, then the loop ends */
    struct mapq_argv outbox;   /* done arguments (DONE_FIELDS per entry) */
    struct mapq_argv sending;  /* the entries of the done call in flight */
    struct event *step_ev;     /* zero-timeout: call mapq1_step */
    struct event *defer_ev;    /* end of an outbox flush's deferral */
    struct event *promote_ev;  /* a delayed retry becomes due */
    struct event *renew_ev;    /* lease renewal */
    int64_t last_beat_ms;      /* when the last renewal was sent */
    bool reap_due;             /* idle: reap with the next heartbeat */
    bool look_due;             /* idle: a bell timed out; look at next beat */
    struct event *reap_ev;     /* opportunistic reaping */
    struct event *grace_ev;    /* end of drain grace */
    struct event *deadline_ev; /* exit even if redis is gone */
    struct event *watch_ev;    /* says so while redis stays unreachable */
    /* Redis error replies (OOM, BUSY, NOPERM, ...): each path waits out a
     * jittered backoff before it tries again, and says so once per cause.
     * Renewals and reaps have their own ticks, which are their retries. */
    struct mapq_retry step_retry, renew_retry, reap_retry;
    struct mapq_retry spec_retry, reserve_retry, register_retry;
    struct event *step_retry_ev;     /* steps (and doorbells) resume */
    struct event *spec_retry_ev;     /* task specs are fetched again */
    struct event *reserve_retry_ev;  /* reservations are asked again */
    struct event *register_retry_ev; /* the agent's entry is written again */
    struct agent_metrics *metrics;   /* --metrics; NULL: none */
};

/* ---- job state: what each state means to the leaves ---- */

static inline bool
job_waits_spec(const struct job *job)
{
    return job->state == JOB_SPEC || job->state == JOB_SPEC_STOPPED ||
           job->state == JOB_SPEC_LOST;
}

static inline bool
job_waits_reserve(const struct job *job)
{
    return job->state == JOB_RESERVE || job->state == JOB_RESERVE_STOPPED ||
           job->state == JOB_RESERVE_LOST;
}

static inline bool
job_waits_fetch(const struct job *job)
{
    return job->state == JOB_FETCH || job->state == JOB_FETCH_STOPPED ||
           job->state == JOB_FETCH_LOST;
}

static inline bool
job_running(const struct job *job)
{
    return job->state >= JOB_RUN && job->state <= JOB_UPLOAD;
}

/* Its execution ended: never run it, or record it ABORTED. */
static inline bool
job_stopped(const struct job *job)
{
    return job->state == JOB_SPEC_STOPPED || job->state == JOB_FETCH_STOPPED ||
           job->state == JOB_RESERVE_STOPPED || job->state == JOB_RUN_STOPPED;
}

/* Its lease was lost: another attempt owns the result. */
static inline bool
job_lost(const struct job *job)
{
    return job->state == JOB_SPEC_LOST || job->state == JOB_FETCH_LOST ||
           job->state == JOB_RESERVE_LOST || job->state == JOB_RUN_LOST;
}

/* ---- time ---- */

static inline int64_t
agent_now_ms(void)
{
    struct timeval tv;

    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static inline void
agent_ms_to_tv(int64_t ms, struct timeval *tv)
{
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* ---- what the leaves report to the controller ---- */

enum reserve_verdict {
    RESERVE_RUN,       /* the key is this attempt's: run it */
    RESERVE_CACHED,    /* the key has a result now: record it */
    RESERVE_PASS,      /* "wait" (parked until the holder ends), "lost" */
    RESERVE_MALFORMED, /* not a reply mapq1_reserve gives */
};

/*
 * The controller (mapq_agent.c) sets a->ops; leaves report through it and
 * never name the controller's functions, so that no leaf depends on the
 * controller that calls it.
 */
struct agent_ops {
    /* A claim reply held this subtask; ref, body and ckpt (a str, or
     * false) are borrowed from it. */
    void (*claimed)(struct mapq_agent *a, const msgpack_object *ref,
                    const msgpack_object *body, const msgpack_object *ckpt);
    /* Something may be claimed now (a bell rang, a doorbell connection
     * came up). */
    void (*wake)(struct mapq_agent *a);
    /* Entry e got its task spec, or the reason there is none. */
    void (*spec_ready)(struct mapq_agent *a, struct spec_entry *e);
    /* The reservation of job (in JOB_RESERVE*) was answered; cached (len
     * bytes, borrowed) is the record with RESERVE_CACHED, text the
     * verdict. */
    void (*reserved)(struct job *job, enum reserve_verdict v, const char *text,
                     const char *cached, size_t len);
    /* The file inputs of job (in JOB_FETCH*) are here (rc MAPQ_OK), or
     * could not be fetched: err says which and why. */
    void (*fetched)(struct job *job, enum mapq_err rc, const char *err);
    /* The files of job's output (in JOB_UPLOAD, or ended meanwhile) are
     * stored: value (borrowed) is the output with their references; else
     * rc and err say why not. */
    void (*stored)(struct job *job, enum mapq_err rc, const char *err,
                   const struct mapq_buf *value);
    /* A renewal said that the job with this ref lost its lease, or
     * (stopped) that its execution ended. */
    void (*lease_ended)(struct mapq_agent *a, const char *ref, bool stopped);
    /* A renewal said that someone follows the stderr of the job with this
     * ref (mapq logs -f). */
    void (*followed)(struct mapq_agent *a, const char *ref);
    /* The agent's entry is gone: the loop may end. */
    void (*left)(struct mapq_agent *a);
};

/* ---- the controller: mapq_agent.c and mapq_agent_step.c ---- */

/* mapq_agent.c: the controller's answers to the leaves; agent_new.c sets
 * a->ops to it. */
extern const struct agent_ops agent_controller_ops;

/* mapq_agent.c: asks again for the reservations whose requests failed (on
 * the retry timer, and on reconnect). */
void agent_reserve_resend(struct mapq_agent *a);

/* mapq_agent.c: the shutdown timers (a->grace_ev, a->deadline_ev): the
 * grace period ended, then the deadline to record what ran. */
void agent_grace_cb(evutil_socket_t fd, short what, void *arg);
void agent_deadline_cb(evutil_socket_t fd, short what, void *arg);

/* mapq_agent.c: starts prefetched jobs, oldest first, while slots are
 * free. */
void agent_fill_slots(struct mapq_agent *a);

/* mapq_agent.c: exits once drained, leaving the list of live agents on the
 * way; nothing while running. */
void agent_check_exit(struct mapq_agent *a);

/* mapq_agent_step.c: how many subtasks of e's task a slot holds (1: no
 * prefetch); e may be NULL. */
int agent_task_depth(const struct spec_entry *e);

/* mapq_agent_step.c: calls mapq1_step on the next loop pass, so that what
 * several events ask for goes in one call. */
void agent_step_soon(struct mapq_agent *a);

/* mapq_agent_step.c: the agent's step events (arg: the agent): the next
 * loop pass, the end of a deferred flush, a delayed retry becoming due. */
void agent_step_ev_cb(evutil_socket_t fd, short what, void *arg);
void agent_defer_cb(evutil_socket_t fd, short what, void *arg);
void agent_promote_cb(evutil_socket_t fd, short what, void *arg);

/* ---- agent_claim.c ---- */

/* What a claim asks for, from the agent's slots: hold is how many command
 * subtasks it keeps with prefetch (0: none beyond its slots). */
struct agent_claim_view {
    int slots, running, waiting, queued, hold, plugin_batch;
    bool dry_cmd, dry_plugin;
    bool cmd_paused; /* resources: no command claims for now */
    bool flushing;   /* finished attempts go with this call anyway */
};

struct agent_claim_plan {
    int ncmd, nplugin;          /* subtasks of each kind to ask for */
    int prefetch;               /* command subtasks more, if lists are long */
    bool wait_plugin, wait_cmd; /* doorbells to wait on */
};

/* How many subtasks of a task a slot holds: the node's batch (> 0), else
 * from the mean run time of its subtasks here (avg_us, -1: none yet): 1
 * (no prefetch) for unknown or slow ones, else BATCH_WINDOW_US of work,
 * between BATCH_AUTO_MIN and BATCH_AUTO_MAX. Pure. */
int agent_claim_depth(int batch, int64_t avg_us);

/* The claim decision: pure, no Redis. */
void agent_claim_plan(const struct agent_claim_view *v,
                      struct agent_claim_plan *p);

/* Whether a claim that asked for asked (for_slots of them for free slots,
 * the rest prefetch) and got got makes the kind dry: when it got less and
 * no prefetch, and no bell rang since (heard == heard_at_claim). */
bool agent_claim_dries(int for_slots, int asked, int got, unsigned heard,
                       unsigned heard_at_claim);

/* Whether finished attempts (finished of them, not yet sent) may wait for
 * more to go in one call, short of FLUSH_BATCH(hold) (hold: how many
 * command subtasks the agent holds, 0: no prefetch) while commands run:
 * while the lists are long (the last claim got all it asked: cut false),
 * or while the prefetch still feeds every busy slot, queued subtasks for
 * running ones. Otherwise (a concurrency window, whose next push waits for
 * these results) they go at once. Pure. */
bool agent_claim_defers(int hold, int running, int queued, bool cut,
                        int finished);

/* Appends the claim's arguments of mapq1_step (ncmd nplugin prefetch
 * flags nqueues queue...) to cmd, with flag 'd' when promote and 'g' when
 * groups (agent_outbox_encode's arguments follow), and notes what was
 * asked. */
void agent_claim_args(struct mapq_agent *a, const struct agent_claim_plan *p,
                      bool promote, bool groups, struct mapq_argv *cmd);

/* Hands each subtask of a step reply's claimed array (borrowed; NULL: the
 * call failed) to ops->claimed and marks the kinds that came back short
 * as dry. */
void agent_claim_reply(struct mapq_agent *a, const msgpack_object *claimed);

/* Waits on the doorbells the plan names (BLPOP on their connections). */
void agent_claim_wait(struct mapq_agent *a, const struct agent_claim_plan *p);

/* With the heartbeat: when a bell of the idle agent timed out since the
 * last one (look_due), forgets which kinds were dry and wakes the
 * controller to claim, which also covers a bell lost with a crashed
 * agent. */
void agent_claim_look(struct mapq_agent *a);

/* A doorbell connection r went up or down. */
void agent_claim_conn(struct mapq_agent *a, struct mapq_redis *r, bool up);

/* The agent stops claiming (a->stopping): closes the doorbell connections
 * for good, so that no ring goes to an agent that will not claim. */
void agent_claim_stop(struct mapq_agent *a);

/* ---- agent_files.c ---- */

/* Whether job's task takes files that are not fetched yet. */
bool agent_files_wanted(const struct job *job);

/* Starts fetching job's file inputs on the transfer thread (made on first
 * use) into a directory of its own; ops->fetched reports the end. Until
 * then job->inputs holds local paths where the references were. Returns
 * MAPQ_OK, else nothing started and err says why: MAPQ_ETYPE for a value
 * that is no file reference (a user error), anything else a failure of
 * this host. */
enum mapq_err agent_files_fetch(struct job *job, char *err);

/* Stops waiting for job's files: ops->fetched will not be called. Returns
 * whether a fetch was under way. */
bool agent_files_cancel(struct job *job);

/* Whether job's output holds files, which are stored before it is
 * recorded. */
bool agent_files_output(const struct job *job);

/*
 * Starts storing the files of job's successful output (res, borrowed; its
 * command ran in dir): each path the output gives where its type says file,
 * relative to dir or absolute, must be a regular file inside dir (or one of
 * the job's fetched inputs); it is linked into the job's directory at once,
 * so dir may go, and stored on the transfer thread; ops->stored reports the
 * end. Keeps what the record needs of res. Returns MAPQ_OK, or a user
 * error (MAPQ_ETYPE, MAPQ_ENOENT, MAPQ_EINVAL) with err naming the path.
 */
enum mapq_err agent_files_store(struct job *job,
                                const struct mapq_cmd_result *res,
                                const char *dir, char *err);

/* Cancels job's fetch and hands its directory back; from agent_job_free(). */
void agent_files_release(struct job *job);

/* ---- agent_allow.c ---- */

/* Whether the program or plugin library of s lies under a directory of
 * --allow-exec (always, without one); else false with err saying so
 * (MAPQ_ERR_LEN bytes, "security: ..."). */
bool agent_allow_spec(const struct mapq_agent_config *cfg,
                      const struct mapq_taskspec *s, char *err);

/* ---- agent_job.c ---- */

/* A claimed subtask in JOB_NEW (caller frees with agent_job_free()). When
 * its ref or body did not parse, or its body is not signed with the
 * agent's secret, why (MAPQ_ERR_LEN bytes) says so ("corrupt subtask
 * message", "security: ..."), else it is empty. Borrows its arguments. */
struct job *agent_job_new(struct mapq_agent *a, const msgpack_object *ref,
                          const msgpack_object *body,
                          const msgpack_object *ckpt, char *why);

/* Frees job and its command (killed if running); NULL-safe. */
void agent_job_free(struct job *job);

/* Writes r's "<exec>/<k>" into key (AGENT_KEY_LEN bytes), followed by
 * "/<index>" when index; returns its length, the NUL not counted. */
size_t agent_job_key(const struct mapq_ref *r, bool index, char *key);

/* The job with this ref in a slot, or NULL. */
struct job *agent_job_find(struct mapq_agent *a, const char *ref);

/* One attempt per cache key at a time: cache_serialize without
 * overwrite, for a subtask with a key. */
bool agent_job_needs_reservation(const struct job *job);

/* Whether from -> to is a legal move of a job's state; the name of a
 * state, for messages. */
bool agent_job_state_legal(enum job_state from, enum job_state to);
const char *agent_job_state_name(enum job_state s);

/* Starts job's command; done runs once from the loop. NULL with err set
 * when nothing could be started on this host. */
struct mapq_cmd *agent_job_command(struct job *job, mapq_cmd_done_fn *done,
                                   char *err);

/* What an attempt records (end is released with agent_job_end_release()):
 * a success with value; a failure (retried while the task's retries last,
 * unless final); a command's result; a hand back after an interruption;
 * a system retry (the attempt was lost on this host); the record a
 * reservation found cached. Borrowed arguments are copied. */
void agent_job_succeeded(const struct job *job, const struct mapq_buf *value,
                         struct job_end *end);
void agent_job_failed(const struct job *job, int phase, const char *error,
                      const struct mapq_buf *tail, bool final,
                      struct job_end *end);
void agent_job_ran(const struct job *job, const struct mapq_cmd_result *res,
                   struct job_end *end);
void agent_job_interrupted(const struct job *job, struct job_end *end);
void agent_job_requeued(const struct job *job, char kind, const char *error,
                        struct job_end *end);
void agent_job_cached(const struct job *job, const char *rec, size_t len,
                      struct job_end *end);
void agent_job_end_release(struct job_end *end);

/* ---- agent_live.c ---- */

/* Sends the stderr job's command wrote since the last send to its live
 * key: from the running command, or with res (its end) the rest. */
void agent_live_send(struct job *job, const struct mapq_cmd_result *res);

/* ---- agent_metrics.c ---- */

/* Serves the agent's metrics on addr (cfg.metrics_addr), read through
 * a->cmd. Returns them (free with agent_metrics_free() after a->cmd), or
 * NULL with err set when it cannot listen there. */
struct agent_metrics *agent_metrics_new(struct mapq_agent *a, const char *addr,
                                        char *err);
void agent_metrics_free(struct agent_metrics *am);
/* A claimed subtask, counted once by node and queue: when its node is
 * known (its spec came, or cannot), or else when it ends; and how an
 * attempt ended, as job_leave() records it. am may be NULL (no
 * --metrics). */
void agent_metrics_claimed(struct agent_metrics *am, struct job *job);
void agent_metrics_ended(struct agent_metrics *am, struct job *job,
                         const struct job_end *end);
/* n results Redis refused (fencing): counted apart, since each was
 * already counted by how its attempt ended here. */
void agent_metrics_refused(struct agent_metrics *am, int n);

/* ---- agent_plugin_run.c ---- */

/* Calls job's plugin (looked up once per spec) on the loop and fills out,
 * which the caller releases; a lookup failure or an output of the wrong
 * type is a MAPQ_PLUGIN_ERROR. */
void agent_plugin_run(struct job *job, struct mapq_plugin_outcome *out);

/* How a plugin call in a child ended. */
enum agent_plugin_end {
    AGENT_PLUGIN_DONE,      /* out holds its outcome */
    AGENT_PLUGIN_CRASHED,   /* the child died before it wrote the outcome */
    AGENT_PLUGIN_TIMED_OUT, /* the task's timeout passed: killed */
    AGENT_PLUGIN_KILLED,    /* agent_plugin_kill() */
};

/* Called once from the loop when job's child ended; out is borrowed. */
typedef void agent_plugin_done_fn(struct job *job, enum agent_plugin_end how,
                                  const struct mapq_plugin_outcome *out);

/* Calls job's plugin in a forked child, so that a crash costs only this
 * attempt, read from the loop under the task's timeout: job->child holds
 * it and done follows. False when it did not start: out (released by the
 * caller) holds a lookup error (MAPQ_PLUGIN_ERROR), else the fork
 * failed. */
bool agent_plugin_start(struct job *job, agent_plugin_done_fn *done,
                        struct mapq_plugin_outcome *out);

/* Kills job's child, if any; done still follows (KILLED). */
void agent_plugin_kill(struct job *job);

/* Checks out's output against job's declared type (a mismatch becomes a
 * MAPQ_PLUGIN_ERROR). */
void agent_plugin_check(const struct job *job, struct mapq_plugin_outcome *out);

/* Frees a child (killed if it still runs); NULL-safe. */
void agent_plugin_child_free(struct plugin_child *ch);

/* ---- agent_specs.c ---- */

/* The cache entry of job's task spec, created empty if missing. */
struct spec_entry *agent_spec_get(struct mapq_agent *a, const struct job *job);

/* Fetches e's spec (HGET); the reply goes to ops->spec_ready. */
void agent_spec_fetch(struct mapq_agent *a, struct spec_entry *e,
                      const struct job *job);

/* Fetches again the specs that jobs wait for and that failed. */
void agent_spec_refetch(struct mapq_agent *a);

/* Frees every entry. */
void agent_specs_release(struct mapq_agent *a);

/* ---- agent_reserve.c ---- */

/* Asks for job's key (mapq1_reserve); the answer goes to
 * ops->reserved, a failure marks it reserve_due. */
void agent_reserve_send(struct job *job);

/* ---- agent_lease.c ---- */

void agent_lease_renew(struct mapq_agent *a);
void agent_lease_reap(struct mapq_agent *a);
/* The renewal tick: renews (which is the heartbeat) at every tick while
 * the agent holds jobs, every IDLE_BEAT_MS when it holds none, with a reap
 * that came due meanwhile. Returns whether it renewed. */
bool agent_lease_beat(struct mapq_agent *a, int64_t now);
/* The reap tick: reaps now, or with the next heartbeat when idle. */
void agent_lease_reap_tick(struct mapq_agent *a);
void agent_lease_register(struct mapq_agent *a);
/* Leaves the list of live agents; ops->left follows. */
void agent_lease_leave(struct mapq_agent *a);

/* ---- agent_outbox.c ---- */

/* Appends job's finished attempt (end->kind != 0). */
void agent_outbox_add(struct mapq_agent *a, const struct job *job,
                      const struct job_end *end);

/* Moves the next batch of the outbox to a->sending and appends its
 * entries to cmd as agent_outbox_encode() does (the caller sets flag g);
 * returns how many entries, and sets *delay_ms to the shortest
 * retry_backoff delay among them (0: none). */
int agent_outbox_args(struct mapq_agent *a, struct mapq_argv *cmd,
                      int64_t *delay_ms);

/* The step call that carried a->sending ended: refused (borrowed) is its
 * array of refused refs, each logged, or NULL when the call failed and
 * the batch goes back in front of the outbox. Returns how many were
 * refused. */
int agent_outbox_reply(struct mapq_agent *a, const msgpack_object *refused);

/* Entries of the outbox and the batch in flight, pure (no Redis): how
 * many arguments the next done call takes; moving n of them to sending;
 * putting sending back in front of the outbox. */
int agent_outbox_batch_len(const struct mapq_argv *outbox);
/* Appends the entries of sending (borrowed) to cmd as mapq1_step's flag g
 * takes them: the number of groups, the groups of first-attempt successes
 * (one per execution, node and logging, with distinct result fields; with
 * pages, small attempt records go in log pages, which revision
 * MAPQ_FUNCTIONS_LOG_PAGES of the functions takes), then every other entry as
 * it is. */
void agent_outbox_encode(const struct mapq_argv *sending, bool pages,
                         struct mapq_argv *cmd);
void agent_outbox_take(struct mapq_argv *outbox, struct mapq_argv *sending,
                       int n);
void agent_outbox_putback(struct mapq_argv *outbox, struct mapq_argv *sending);

/* ---- agent_workers.c ---- */

struct agent_worker;

/* Runs job (a worker: true task's, in JOB_RUN) on an idle worker of its
 * node or a new one, which job->worker then holds; done runs once from
 * the loop. MAPQ_EIO with err set when this host could not start one. */
enum mapq_err agent_worker_start(struct job *job, mapq_worker_done_fn *done,
                                 char *err);

/* Sends sig to the process group of job's worker, if it has one. */
void agent_worker_kill(struct job *job, int sig);

/* Takes back a worker whose job ended (aw may be NULL): kept idle for the
 * next subtask of its node, at most one per slot; ended when the agent is
 * stopping. */
void agent_worker_give(struct mapq_agent *a, struct agent_worker *aw);

/* Ends a worker (its process group killed); NULL-safe. */
void agent_worker_drop(struct agent_worker *aw);

/* Ends the idle workers of execution exec (it ended). */
void agent_workers_end_exec(struct mapq_agent *a, const char *exec);

/* Ends the workers idle for cfg.worker_idle_ms or more at now_ms. */
void agent_workers_expire(struct mapq_agent *a, int64_t now_ms);

/* Ends every idle worker. */
void agent_workers_release(struct mapq_agent *a);

/* ---- agent_resources.c ---- */

/* Writes the ids of the CPUs this process may run on (at most max) to ids;
 * returns how many. */
int agent_res_cpus_allowed(int *ids, int max);

/* Sets r up with the agent's capacity; the first whole CPUs of allowed
 * (nallowed ids) become the pool that declared commands are pinned to,
 * when the capacity's whole CPUs are that many or fewer. Pure. */
void agent_res_init(struct agent_res *r, int64_t cpu_milli, int64_t mem_bytes,
                    const int *allowed, int nallowed);
void agent_res_release(struct agent_res *r);

/* Whether cpu_milli and mem_bytes fit in what is free now; in the
 * capacity at all. Pure. */
bool agent_res_fits(const struct agent_res *r, int64_t cpu_milli,
                    int64_t mem_bytes);
bool agent_res_ever_fits(const struct agent_res *r, int64_t cpu_milli,
                         int64_t mem_bytes);

/* Counts a command's declared resources as used and, with a pool, picks
 * the least loaded ceil(cpu) of its CPUs for it (jr, empty before);
 * agent_res_give() gives them back and empties jr. Pure. */
void agent_res_take(struct agent_res *r, int64_t cpu_milli, int64_t mem_bytes,
                    struct job_res *jr);
void agent_res_give(struct agent_res *r, struct job_res *jr);

/* Asks Redis whether any live agent could take e's task (mapq1_fits),
 * unless a question is pending; the answer goes to e->unfit. */
void agent_res_ask(struct mapq_agent *a, struct spec_entry *e);

/* ---- agent_retry.c ---- */

/* The text of a failed reply: Redis's error, or why there was none. */
const char *agent_failure_text(const redisReply *reply, const char *why);

/* Counts a failure of path and arms ev (NULL: the path's own tick) to try
 * again after the backoff; each cause logged once. */
void agent_retry_later(struct mapq_retry *r, struct event *ev, const char *path,
                       const char *text);

/* Records a success of path; says so when it had been failing. */
void agent_retry_done(struct mapq_retry *r, const char *path);

#endif
