/*
 * mapq_workflow.h - a parsed and validated workflow file (SPEC section 1).
 *
 * mapq_workflow_parse() reads YAML (or JSON, as YAML flow style) with
 * libyaml, builds this model and validates all of it before returning; a
 * workflow that comes back non-NULL is ready to run. The model is plain
 * data: documented structs, owned by the struct mapq_workflow and freed with
 * it. Values (defaults, literal bindings) are msgpack bytes already
 * converted to the declared type of what they feed.
 *
 * Decisions the SPEC leaves open:
 * - Names of inputs, tasks, task inputs, nodes and outputs match
 *   [A-Za-z_][A-Za-z0-9_]* (they become MAPQ_IN_<name>); the workflow name
 *   matches [a-z0-9_-]+. A node may not be called "inputs".
 * - References ($inputs.NAME, $NODE; $$x is the string "$x") are
 *   recognised only as the whole value of an `over`/`with` entry or of
 *   `output`, in any quoting. Inside literal lists and dicts, and in input
 *   defaults, a '$' is plain text.
 * - YAML scalars follow the 1.2 core schema (quoted scalars are strings),
 *   directed by the declared type: under str a plain scalar is the text as
 *   written ("123", "true"; null only under str?), under float an int
 *   becomes a float, under bytes the text is base64 (padding optional,
 *   white space ignored); any takes the natural mapping. Explicit tags are
 *   ignored. Dict keys must be strings and unique.
 * - Caps: a value nests at most 32 containers deep (what msgpack-c can
 *   unpack; an alias cycle hits this), one parse converts at most 1,200,000
 *   value nodes in total (alias bombs), a value is at most MAPQ_VALUE_MAX
 *   bytes of msgpack (a long list of a JSON inputs file is paged instead:
 *   mapq_workflow_bind_inputs_paged()). A workflow file is at most
 *   MAPQ_WORKFLOW_FILE_MAX bytes and a YAML inputs file, a JSON one that
 *   is no regular file, or an --input @FILE at most 64 MiB: data
 *   belongs in inputs, and the cap keeps the check of any workflow file
 *   well under a second. Before a document is built its events are
 *   counted (mapq_yaml_guard.h): nesting, values, anchors and alias
 *   lookups are capped there, so costly YAML is refused cheaply.
 * - Files are read as YAML, except inputs files and @FILE values whose
 *   name ends in ".json" (any case): those are read by yajl, streamed,
 *   with JSON's rules (surrogate-pair escapes, no YAML extras) and then
 *   typed as YAML values are.
 * - In `command`, "{name}" with name an identifier is a placeholder and
 *   must name an input of the task; every other '{' is literal text (there
 *   is no escape). A placeholder inside the script a shell runs (`sh -c
 *   SCRIPT` and kin, mapq_shell.h) is refused unless the task sets
 *   `shell_placeholders: raw` (default `refuse`): its text would run as
 *   shell code, where "$MAPQ_IN_name" stays data.
 * - A plugin `library` containing '/' is resolved against the workflow
 *   file's directory and stored absolute; a bare name is kept for the
 *   agent's plugin path.
 * - Node overrides replace the task's value whole: `resources: {cpu: 1}`
 *   leaves mem unset, `cache: false` drops version and ttl
 *   (cache_serialize stays the task's).
 * - min_success_ratio, min_successes, run_all and `over` are map-node only;
 *   concurrency is accepted on task nodes, where it has no effect.
 *
 * Problems are one line each, "FILE:LINE:COL: message" (1-based), sorted by
 * position; every problem found is reported, not just the first, up to 50
 * lines and then one "FILE: N more problems not shown". "Did you mean"
 * hints are worked out for the first 50 problems found only, and names are
 * looked up through sorted indexes, so that no part of the check costs
 * more than about n log n in the size of the file.
 */
#ifndef MAPQ_WORKFLOW_H
#define MAPQ_WORKFLOW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"
#include "mapq_type.h"

struct mapq_pos {
    int line; /* 1-based; 0 when unknown */
    int col;  /* 1-based */
};

/* A name and the position of what it names, in an index sorted by name
 * (mapq_workflow_find_*()): lookups are binary searches. */
struct mapq_name_ref {
    const char *name; /* borrowed from the entry it indexes */
    size_t len;
    size_t idx; /* the entry's position */
};

/* A typed name: a workflow input or a task input. */
struct mapq_param {
    char *name;
    struct mapq_type *type;
    /* Workflow inputs that hold files: what a value binds to before its
     * files are stored (mapq_type_file_paths(type): a file may be given
     * as a local path). NULL: type. Owned. */
    struct mapq_type *given;
    bool has_default;      /* workflow inputs only */
    struct mapq_buf value; /* the default, msgpack, when has_default */
    struct mapq_pos pos;   /* of the name */
};

enum mapq_task_kind {
    MAPQ_TASK_COMMAND,
    MAPQ_TASK_PLUGIN,
};

/*
 * The settings a node may override (SPEC section 1 "Overrides"): retries,
 * timeout, interruptible, cache, resources, queue. A node's effective
 * settings are the task's with the node's overrides applied.
 */
struct mapq_task_opts {
    int retries;        /* user retries; attempts = retries + 1 */
    int64_t timeout_ms; /* per attempt; 0 = none */
    bool interruptible;
    bool cache;           /* cache: {version, ttl} given */
    char *cache_version;  /* "" when cache is off or no version given */
    int64_t cache_ttl_ms; /* 0 = no expiry */
    bool cache_serialize;
    double cpu;                 /* resources.cpu; 0 = unset */
    int64_t mem_bytes;          /* resources.mem; 0 = unset */
    char *queue;                /* default "default" */
    int64_t backoff_initial_ms; /* retry_backoff; 0 = no backoff */
    int64_t backoff_max_ms;     /* default: 10 minutes, or initial if longer */
    double backoff_factor;      /* default 2 (0 when there is no backoff) */
};

struct mapq_task_def {
    char *name;
    struct mapq_param *inputs; /* declaration order */
    size_t ninputs;
    struct mapq_type *output; /* NULL: the task has no output */
    enum mapq_task_kind kind;
    /* command: NULL-terminated, argc entries; {name} placeholders are left
     * in, each naming one of inputs */
    char **argv;
    size_t argc;
    char *plugin_library; /* plugin: absolute, or a bare name */
    char *plugin_symbol;
    bool output_text; /* output_format: text (output must be str) */
    bool worker;      /* worker: true (command tasks): a persistent process
                         per agent slot speaks the worker line protocol */
    struct mapq_task_opts opts;
    struct mapq_pos pos;
    struct mapq_name_ref *input_index; /* inputs by name; NULL: none built */
};

enum mapq_ref_kind {
    MAPQ_REF_LITERAL, /* a value written in the file */
    MAPQ_REF_INPUT,   /* $inputs.NAME */
    MAPQ_REF_NODE,    /* $NODE, or $NODE.MEMBER */
};

/* One input of a node: `over` or `with` entry, or one workflow output. */
struct mapq_binding {
    /* task input name; for workflow outputs the output name, NULL for the
     * single unnamed `output: $ref` */
    char *param;
    enum mapq_ref_kind kind;
    char *ref;     /* input or node name; NULL for literals */
    size_t target; /* index into wf->inputs or wf->nodes; 0 for literals */
    /* $NODE.MEMBER: the member of the node's record output (of each
     * element, for a map node: a list of them); NULL for the whole
     * output. member_type is what the reference holds. Both owned. */
    char *member;
    struct mapq_type *member_type;
    struct mapq_buf literal; /* msgpack, converted to the param's type (for
                                `over`, to list of it); empty for refs */
    struct mapq_pos pos;     /* of the value */
};

struct mapq_node {
    char *name;
    bool is_map;               /* `map:` (true) or `task:` (false) */
    size_t task;               /* index into wf->tasks */
    struct mapq_binding *over; /* map nodes: mapped inputs, zipped */
    size_t nover;
    struct mapq_binding *with; /* bound inputs */
    size_t nwith;
    int64_t concurrency; /* 0 = unlimited */
    int64_t batch;       /* subtasks a slot takes per claim; 0 = automatic */
    double min_success_ratio; /* default 1.0 */
    int64_t min_successes;    /* -1 = unset; wins over the ratio */
    bool run_all;
    int system_retries;         /* node, else workflow, else 3 */
    int interruptible_failures; /* default system_retries - 1 */
    struct mapq_task_opts opts; /* effective: task's plus overrides */
    /*
     * A task node outputs the task's T. A map node outputs list[T], or
     * list[T?] whenever min_success_ratio < 1 or min_successes is set at
     * all: failed subtasks may leave nulls, and N is not known until run
     * time, so the rule is conservative. NULL when the task has no output.
     */
    struct mapq_type *output_type;
    size_t *deps; /* distinct nodes this one references, first use first */
    size_t ndeps;
    struct mapq_pos pos; /* of the name */
};

struct mapq_workflow {
    char *name;
    char *file; /* as given to mapq_workflow_parse() */
    struct mapq_param *inputs;
    size_t ninputs;
    struct mapq_task_def *tasks;
    size_t ntasks;
    struct mapq_node *nodes; /* file order */
    size_t nnodes;
    size_t *order;      /* nnodes indices: a topological order of nodes */
    bool output_is_map; /* `output: {name: ref, ...}` */
    struct mapq_binding *outputs; /* one (unnamed) or several; references
                                     only (kind INPUT or NODE) */
    size_t noutputs;              /* 0: the workflow has no output */
    int system_retries;           /* workflow-level default, 3 */
    int64_t retention_ms; /* how long it stays in Redis once ended; 0: the
                             driver's (--retention) */
    /* inputs, tasks and nodes sorted by name, built by the parse (NULL: a
     * lookup searches the array) */
    struct mapq_name_ref *input_index;
    struct mapq_name_ref *task_index;
    struct mapq_name_ref *node_index;
};

/*
 * Parses and validates the workflow in text (len bytes); file names it in
 * messages, and its directory anchors relative plugin libraries (NULL:
 * "<workflow>" and the current directory). On success returns the workflow
 * (caller frees with mapq_workflow_free()). On failure returns NULL and
 * appends one line per problem to errors, each "FILE:LINE:COL: message\n",
 * sorted by position. YAML syntax errors carry libyaml's problem mark.
 */
struct mapq_workflow *mapq_workflow_parse(const char *text, size_t len,
                                          const char *file,
                                          struct mapq_buf *errors);

/* The largest workflow file mapq_workflow_read_file() accepts. */
#define MAPQ_WORKFLOW_FILE_MAX (8u * 1024 * 1024)

/*
 * Reads the workflow file path into out, which it initialises; the caller
 * releases it with mapq_buf_release() (also after a failure). A regular
 * file larger than MAPQ_WORKFLOW_FILE_MAX is refused before it is read,
 * anything else when the cap is reached. Returns MAPQ_OK, MAPQ_EIO or
 * MAPQ_ETOOBIG with "cannot read 'PATH': REASON" in err.
 */
enum mapq_err mapq_workflow_read_file(const char *path, struct mapq_buf *out,
                                      char *err);

/*
 * Reads path with mapq_workflow_read_file() and calls
 * mapq_workflow_parse(); a read failure is one line,
 * "cannot read 'PATH': REASON\n".
 */
struct mapq_workflow *mapq_workflow_load(const char *path,
                                         struct mapq_buf *errors);

/* NULL-safe. */
void mapq_workflow_free(struct mapq_workflow *wf);

/* Index of the named node/task/input, or -1. */
long mapq_workflow_find_node(const struct mapq_workflow *wf, const char *name);
long mapq_workflow_find_task(const struct mapq_workflow *wf, const char *name);
long mapq_workflow_find_input(const struct mapq_workflow *wf, const char *name);
/* The index of task t's input name (len bytes), or -1. */
long mapq_workflow_find_param(const struct mapq_task_def *t, const char *name,
                              size_t len);

/*
 * Resolves the workflow's inputs into one msgpack map (name -> value, every
 * declared input present, in declaration order) appended to out. assigns
 * are "NAME=VALUE" strings from --input (VALUE is YAML/JSON text, or @FILE
 * to read it from a file; naming an input twice is an error); inputs_file,
 * if not NULL, is a YAML/JSON mapping of inputs (--inputs). --input wins
 * over --inputs, which wins over defaults. Each VALUE is converted to the
 * input's declared type as in a workflow file. Then, for every map node,
 * the `over` lists whose lengths are now known (workflow inputs and
 * literals) must agree. Problems are appended to errors one per line, in
 * the order found: "--input NAME: message" for --input values,
 * "FILE:LINE:COL: message" in the --inputs file, and, at the workflow
 * file's positions, "input 'x' is required; pass --input x=VALUE" and
 * "input lists have different lengths: 'a' has 5, 'b' has 4". The return
 * is MAPQ_EINVAL then, and out is left unchanged.
 */
enum mapq_err mapq_workflow_bind_inputs(
    const struct mapq_workflow *wf, const char *const *assigns, size_t nassigns,
    const char *inputs_file, struct mapq_buf *out, struct mapq_buf *errors);

struct mapq_spool;

/*
 * Where the long lists of a JSON inputs file go while it is read
 * (docs/PROTOCOL.md "Paged lists"): a list input of more than
 * MAPQ_PAGED_MIN elements (or 4 MiB) goes into spool a page at a time, and
 * its bound value is a reference to list "i:<name>" of execution exec,
 * whose P:pg mapq_exec_create() fills from the spool. spool NULL: the pages
 * are checked and dropped (mapq validate).
 */
struct mapq_bind_pages {
    const char *exec;         /* borrowed */
    struct mapq_spool *spool; /* borrowed; may be NULL */
};

/* mapq_workflow_bind_inputs(), with long lists paged as pages (borrowed)
 * says; pages NULL: every value is bound whole. */
enum mapq_err mapq_workflow_bind_inputs_paged(
    const struct mapq_workflow *wf, const char *const *assigns, size_t nassigns,
    const char *inputs_file, const struct mapq_bind_pages *pages,
    struct mapq_buf *out, struct mapq_buf *errors);

/*
 * Converts YAML text (one document holding one value) to msgpack of type
 * `type` (NULL: the natural mapping), appended to out. Plain scalars are
 * resolved with the declared type in mind: under str, `123` is the string
 * "123"; under bytes a string is taken as base64. Empty text is "" under
 * str and null otherwise. Used for --input values. where names the source
 * in messages: err gets "WHERE: [2]: expected int, got \"x\"" or "WHERE:
 * LINE:COL: invalid YAML: ...". Returns MAPQ_EINVAL (syntax), MAPQ_ETYPE
 * (does not fit type) or MAPQ_ETOOBIG (over a cap); out is unchanged then.
 */
enum mapq_err mapq_workflow_yaml_value(const char *text, size_t len,
                                       const struct mapq_type *type,
                                       const char *where, struct mapq_buf *out,
                                       char *err);

#endif
