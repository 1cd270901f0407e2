/*
 * cli.h - what the files of the mapq command line share: the parsed
 * options, the exit statuses, the command entry each cmd_<name>.c exports,
 * and the few helpers every command uses (cli_util.c).
 *
 * main.c runs main(), cli_table.c owns the table of commands; cli_opts.c reads
 * argv into a struct mapq_cli_opts; each cmd_<name>.c runs one subcommand and
 * returns its exit status to main(). No file outside scheduler/cli/ includes
 * this header.
 */
#ifndef MAPQ_CLI_H
#define MAPQ_CLI_H

#include <hiredis/hiredis.h>
#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "mapq_buf.h"
#include "mapq_driver.h"
#include "mapq_redis.h"
#include "mapq_store.h"
#include "mapq_workflow.h"

/* Exit statuses (SPEC section 6). */
enum mapq_exit {
    MAPQ_EXIT_OK = 0,          /* succeeded */
    MAPQ_EXIT_FAILED = 1,      /* the execution failed, or no such one */
    MAPQ_EXIT_USAGE = 2,       /* usage or validation error */
    MAPQ_EXIT_INFRA = 3,       /* Redis unreachable, infrastructure error */
    MAPQ_EXIT_CANCELLED = 130, /* cancelled by Ctrl-C */
};

#define MAPQ_CLI_MAX_ASSIGNS 256

/*
 * The options and operands of one command line. Every string is borrowed
 * from argv or the environment, except redis, which main() replaces with
 * a copy that lives as long as the process (see cli_opts.c).
 */
struct mapq_cli_opts {
    const char *cmd;
    const char *target; /* workflow file or execution id */
    const char *assigns[MAPQ_CLI_MAX_ASSIGNS];
    size_t nassigns;
    const char *inputs_file;
    const char *redis;
    const char *ns;
    const char *node;
    const char *index;         /* mapq logs: one subtask, or NULL for all */
    const char *task;          /* mapq cache --task */
    const char *fetch_dir;     /* mapq result --fetch DIR, or NULL */
    const char *metrics;       /* mapq scheduler --metrics HOST:PORT */
    long long retention_ms;    /* run, scheduler --retention; 0: default */
    const char *http;          /* mapq scheduler --http HOST:PORT */
    const char *secret_file;   /* --secret-file or MAPQ_SECRET_FILE; NULL */
    const char *password_file; /* --redis-password-file, or NULL */
    bool durable;              /* --durable: writes wait for a replica */
    const char *const *keys;   /* mapq cache rm: the keys (in argv) */
    size_t nkeys;
    int agents;
    int lease_ms; /* owner lease of the executions this process drives */
    int priority; /* --priority: share of a queue's slots; 0: the default */
    bool json, quiet;
    bool follow; /* mapq logs -f */
    bool overwrite_cache;
    struct mapq_store store; /* --store or MAPQ_STORE: where a run's files go
                                (run, submit); redis by default */
    bool store_set;          /* store was given (recover keeps the first
                                run's otherwise) */
    int64_t store_max;       /* --store-max: the embedded store's cap */
};

/* What a command takes after its options, checked by cli_opts.c. */
enum mapq_cmd_operands {
    MAPQ_CMD_NONE,     /* nothing */
    MAPQ_CMD_WORKFLOW, /* one workflow file */
    MAPQ_CMD_EXEC,     /* one execution id */
    MAPQ_CMD_LOGS,     /* EXEC NODE [INDEX] */
    MAPQ_CMD_CACHE,    /* ls|rm|clear, then the keys of rm */
};

enum mapq_cmd_flags {
    /* The usage of the command follows the previous one on its line. */
    MAPQ_CMD_USAGE_SAME_LINE = 1 << 0,
    /* It takes --json: one JSON document on stdout (docs/JSON.md). main()
     * refuses --json for a command without it. */
    MAPQ_CMD_JSON = 1 << 1,
};

/* Runs the command on the parsed options (borrowed); returns the exit
 * status of the process. */
typedef int mapq_cmd_fn(struct mapq_cli_opts *o);

/* One subcommand: each cmd_<name>.c exports mapq_cmd_<name>_entry. */
struct mapq_cmd_entry {
    const char *name;
    const char *usage; /* its synopsis after "mapq "; may hold line breaks */
    enum mapq_cmd_operands operands;
    int flags; /* enum mapq_cmd_flags */
    mapq_cmd_fn *fn;
};

extern const struct mapq_cmd_entry mapq_cmd_run_entry;
extern const struct mapq_cmd_entry mapq_cmd_submit_entry;
extern const struct mapq_cmd_entry mapq_cmd_scheduler_entry;
extern const struct mapq_cmd_entry mapq_cmd_status_entry;
extern const struct mapq_cmd_entry mapq_cmd_watch_entry;
extern const struct mapq_cmd_entry mapq_cmd_result_entry;
extern const struct mapq_cmd_entry mapq_cmd_cancel_entry;
extern const struct mapq_cmd_entry mapq_cmd_recover_entry;
extern const struct mapq_cmd_entry mapq_cmd_logs_entry;
extern const struct mapq_cmd_entry mapq_cmd_agents_entry;
extern const struct mapq_cmd_entry mapq_cmd_cache_entry;
extern const struct mapq_cmd_entry mapq_cmd_validate_entry;
extern const struct mapq_cmd_entry mapq_cmd_ls_entry;
extern const struct mapq_cmd_entry mapq_cmd_rm_entry;
extern const struct mapq_cmd_entry mapq_cmd_gc_entry;
extern const struct mapq_cmd_entry mapq_cmd_setup_entry;

/* ---- cli_table.c: the table ------------------------------------------- */

/* The entry of command name, or NULL when there is none. */
const struct mapq_cmd_entry *mapq_cli_find(const char *name);

/* Writes the usage text (every command of the table, then the common
 * options) to out. */
void mapq_cli_usage(FILE *out);

/* ---- cli_opts.c: the command line ------------------------------------- */

/*
 * Fills o (zeroed by the caller) from argv and the environment, and *entry
 * with the command's entry (NULL for an unknown command, which the caller
 * refuses). Returns 0, 1 after printing the usage for --help, or -1 after
 * reporting what is wrong. o keeps pointers into argv.
 */
int mapq_cli_parse(int argc, char **argv, struct mapq_cli_opts *o,
                   const struct mapq_cmd_entry **entry);

/*
 * Hides the Redis password of o->redis from other users: o->redis becomes
 * a copy owned by cli_opts.c for the life of the process, and the password
 * is overwritten in argv and MAPQ_REDIS_URL. Call once, after parsing.
 */
void mapq_cli_hide_password(struct mapq_cli_opts *o, int argc, char **argv);

/* ---- cli_files.c: files named by inputs -------------------------------- */

/*
 * Stores the files that the inputs of wf (msgpack map of name to value,
 * rewritten in place) name by local path where a type says file, in
 * o->store (the embedded store of namespace o->ns on c, at most
 * o->store_max bytes a file, or a shared directory), and puts their
 * references in place of the paths. Every blob of the embedded store the
 * inputs name, stored or given as a reference (which must still be
 * there), is held for execution exec, still to be created
 * (mapq_blob_hold() with MAPQ_BLOB_GRACE_MS), and its raw SHA-256 appended
 * to held. Prints a problem once, naming the input and element
 * ("$inputs.images[3]: no such file: img/3.png"); returns the exit
 * status. Borrows c, o, wf and exec.
 */
int mapq_cli_store_files(redisContext *c, const struct mapq_cli_opts *o,
                         const struct mapq_workflow *wf, const char *exec,
                         struct mapq_buf *inputs, struct mapq_buf *held);

/*
 * Writes every file the value (msgpack, len bytes) refers to, each
 * reference found by its shape ({uri, sha256, size}) whose URI names a
 * blob of the embedded store or a local file (file://),
 * into directory dir (made if missing) under the name its URI keeps (a
 * second file of one name gets "<n>-" before it), each checked against
 * its hash. Prints a problem once, or how many it wrote; returns the exit
 * status. Borrows everything.
 */
int mapq_cli_fetch_files(redisContext *c, const char *ns, const char *data,
                         size_t len, const char *dir);

/* ---- cli_util.c: shared steps ----------------------------------------- */

/*
 * Reads, validates and binds the inputs of workflow o->target: *wf (caller
 * frees with mapq_workflow_free()), *text (caller frees) and the bound
 * inputs appended to inputs, long lists paged as pages (borrowed) says.
 * Prints the problems; returns the exit status.
 */
int mapq_cli_load_workflow(const struct mapq_cli_opts *o,
                           struct mapq_workflow **wf, char **text,
                           size_t *textlen, const struct mapq_bind_pages *pages,
                           struct mapq_buf *inputs);

/* Connects to Redis at url_s (parsed into url); NULL after saying why.
 * Caller frees with redisFree(). */
/* Reads o->secret_file, if any, into *seal (caller frees with
 * mapq_seal_free(); NULL without a secret). Returns MAPQ_EXIT_OK, or
 * MAPQ_EXIT_USAGE after saying why on stderr. */
struct mapq_seal;
int mapq_cli_seal(const struct mapq_cli_opts *o, struct mapq_seal **seal);
/* Connects to url_s; with o, its password comes from o's password file
 * or MAPQ_REDIS_PASSWORD as mapq_redis_url_password() says (o NULL: the
 * URL alone, as for the private Redis of mapq run). */
redisContext *mapq_cli_connect_url(const char *url_s,
                                   const struct mapq_cli_opts *o,
                                   struct mapq_redis_url *url);

/* Connects to the shared Redis of o (--redis, MAPQ_REDIS_URL, or the
 * local default) for the commands that read or change executions. */
redisContext *mapq_cli_connect(const struct mapq_cli_opts *o,
                               struct mapq_redis_url *url);

/* Prints a value (msgpack, borrowed) as JSON with flags (mapq_json.h),
 * compact JSON element by element (mapq_json_write()); one that cannot be
 * is an error before anything is printed, never dropped silently:
 * MAPQ_EXIT_FAILED. */
int mapq_cli_print_value(const char *data, size_t len, int flags);

/*
 * cli_pages.c: appends the elements of pages [from, from + count) of the
 * paged list ref (of namespace ns, on c) to out, each a msgpack value,
 * without an array header; MAPQ_EREDIS or MAPQ_EPROTO saying which page
 * is missing or bad. Borrows everything.
 */
struct mapq_pages_ref;
enum mapq_err mapq_cli_read_pages(redisContext *c, const char *ns,
                                  const struct mapq_pages_ref *ref,
                                  uint64_t from, uint64_t count,
                                  struct mapq_buf *out, char *err);

/*
 * cli_pages.c: writes an output (data, len) to out as JSON, compact or
 * indented (flags: MAPQ_JSON_PRETTY) as jansson writes it, without a
 * newline, reading the paged lists it holds (the whole output, or values
 * of a map) from c (borrowed) under namespace ns page by page, never
 * whole. With out NULL, only checks that it can be written, so that a
 * caller knows before writing anything. MAPQ_EREDIS when a read fails,
 * MAPQ_EPROTO when a page is missing or bad, MAPQ_EINVAL with the
 * element's path when a value is no JSON, MAPQ_EIO when out fails; err
 * says which.
 */
enum mapq_err mapq_cli_write_output(redisContext *c, const char *ns,
                                    const char *data, size_t len, int flags,
                                    FILE *out, char *err);

/*
 * Prints an output as mapq_cli_print_value() does, reading the paged lists
 * it holds from c: they go to stdout page by page (checked whole first),
 * never held. Returns the exit status (MAPQ_EXIT_INFRA when Redis fails).
 */
int mapq_cli_print_output(redisContext *c, const char *ns, const char *data,
                          size_t len, int flags);

/* HGET of field in the record of execution o->target; the reply, or NULL
 * on a connection error. Caller frees with freeReplyObject(). */
redisReply *mapq_cli_hget(redisContext *c, const struct mapq_cli_opts *o,
                          const char *field);

/*
 * Reads the state of execution o->target into state (len bytes). Returns
 * MAPQ_EXIT_OK, or after saying why MAPQ_EXIT_FAILED (no such execution)
 * or MAPQ_EXIT_INFRA (Redis refused the read, e.g. NOPERM for an ACL user,
 * or is unreachable).
 */
int mapq_cli_exec_state(redisContext *c, const struct mapq_redis_url *url,
                        const struct mapq_cli_opts *o, char *state, size_t len);

/*
 * Connects (mapq_cli_connect()) and reads the state of execution
 * o->target into state (len bytes). Returns the connection (caller frees
 * with redisFree()), or NULL after saying why, with the exit status in *rc.
 */
redisContext *mapq_cli_open_exec(const struct mapq_cli_opts *o, char *state,
                                 size_t len, int *rc);

/* Reads something from Redis for a command and prints it; on failure
 * fills err. */
typedef enum mapq_err
mapq_cli_read_fn(redisContext *c, const struct mapq_cli_opts *o, char *err);

/*
 * Connects, runs fn, and says why it failed as "mapq <command>: <err>".
 * Returns what fn returned, or MAPQ_EREDIS when the connection failed
 * (already said).
 */
enum mapq_err mapq_cli_read(const struct mapq_cli_opts *o,
                            mapq_cli_read_fn *fn);

/* ---- cli_json.c: the documents of --json (docs/JSON.md) ---------------- */

/*
 * An execution's summary: what run, recover, status and each line of watch
 * print. Every pointer is borrowed for the call.
 */
struct mapq_cli_summary {
    const char *execution;
    const char *workflow; /* its name; NULL: null */
    const char *status;   /* submitted, running, succeeded, failed,
                             cancelled */
    int64_t created_ms;   /* ms since the epoch; < 0: null */
    int64_t finished_ms;  /* < 0: null (not ended) */
    int64_t duration_ms;  /* < 0: null */
    const struct mapq_node_progress *nodes;
    size_t nnodes;
    const char *output; /* msgpack; NULL: no "output" member */
    size_t output_len;
    const char *error; /* NULL: no "error" member */
};

/*
 * Writes summary s as one line of compact JSON to out, its output last,
 * the paged lists it holds read from c (borrowed) under ns page by page.
 * With out NULL, only checks that the output can be written, so that a
 * caller knows before anything is: call it so first. Errors as
 * mapq_cli_write_output() has them (MAPQ_EIO when out fails), err saying
 * which.
 */
enum mapq_err mapq_cli_write_summary(redisContext *c, const char *ns,
                                     const struct mapq_cli_summary *s,
                                     FILE *out, char *err);

/* A JSON string of text (len bytes, borrowed), bytes that are not UTF-8
 * made U+FFFD; never NULL. Caller owns the reference. */
json_t *mapq_cli_json_text(const char *s, size_t len);

/* mapq_cli_json_text() of a NUL-terminated s (borrowed), or null for
 * NULL. */
json_t *mapq_cli_json_str(const char *s);

/* Prints doc (takes the reference) compact on one line of stdout.
 * Returns MAPQ_EXIT_OK, or MAPQ_EXIT_INFRA after saying stdout failed. */
int mapq_cli_print_json(json_t *doc);

/* The JSON name of a phase: "queued", ..., "timed_out" (static). */
const char *mapq_cli_phase_key(int phase);

/* ---- cli_progress.c: mapq run's progress lines ------------------------- */

/*
 * Lays out the progress line of node p (borrowed) for a terminal width
 * columns wide, into buf (size bytes, NUL-terminated; no newline, no
 * escape sequence): "name [####....] done/total  running R  failed F
 * cached C  state", done counting succeeded, cached and recovered subtasks
 * and failed the failed, timed out and aborted ones. When that is wider
 * than width, the bar shrinks (to 5), then the name is cut (to 4
 * characters and ".."), then the state goes, the labels shorten
 * ("r:R f:F c:C"), the bar goes, then cached, failed and running. Returns
 * the line's length, which is never more than width (nor size - 1): names
 * are ASCII, one column each.
 */
size_t mapq_cli_progress_line(const struct mapq_node_progress *p, int width,
                              char *buf, size_t size);

/* The columns of the terminal on fd: its size (TIOCGWINSZ), else
 * $COLUMNS, else 80. */
int mapq_cli_term_width(int fd);

/* The rows of the terminal on fd: its size, else $LINES, else 24. */
int mapq_cli_term_rows(int fd);

#endif
