/*
 * mapq_workflow.h - a parsed and validated workflow file (SPEC section 1).
 *
 * mapq_workflow_parse() reads YAML (or JSON, as YAML flow style) with
 * libyaml, builds this model and validates all of it before returning; a
 * workflow that comes back non-NULL is ready to run. The model is plain
 * data: documented structs, owned by the struct mapq_workflow and freed with
 * it. Values (defaults, literal bindings) are msgpack bytes already
 * converted to the declared type of what they feed.
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

/* A typed name: a workflow input or a task input. */
struct mapq_param {
    char *name;
    struct mapq_type *type;
    bool has_default;      /* workflow inputs only */
    struct mapq_buf value; /* the default, msgpack, when has_default */
    struct mapq_pos pos;
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
    int64_t backoff_max_ms;
    double backoff_factor;
};

struct mapq_task_def {
    char *name;
    struct mapq_param *inputs; /* declaration order */
    size_t ninputs;
    struct mapq_type *output; /* NULL: the task has no output */
    enum mapq_task_kind kind;
    char **argv; /* command: NULL-terminated, argc entries */
    size_t argc;
    char *plugin_library; /* plugin */
    char *plugin_symbol;
    bool output_text; /* output_format: text (output must be str) */
    struct mapq_task_opts opts;
    struct mapq_pos pos;
};

enum mapq_ref_kind {
    MAPQ_REF_LITERAL, /* a value written in the file */
    MAPQ_REF_INPUT,   /* $inputs.NAME */
    MAPQ_REF_NODE,    /* $NODE */
};

/* One input of a node: `over` or `with` entry, or one workflow output. */
struct mapq_binding {
    char *param; /* task input name (output name for workflow outputs) */
    enum mapq_ref_kind kind;
    char *ref;               /* input or node name; NULL for literals */
    size_t target;           /* index into wf->inputs or wf->nodes */
    struct mapq_buf literal; /* msgpack, converted to the param's type (for
                                `over`, to list of it) */
    struct mapq_pos pos;
};

struct mapq_node {
    char *name;
    bool is_map;               /* `map:` (true) or `task:` (false) */
    size_t task;               /* index into wf->tasks */
    struct mapq_binding *over; /* map nodes: mapped inputs, zipped */
    size_t nover;
    struct mapq_binding *with; /* bound inputs */
    size_t nwith;
    int64_t concurrency;      /* 0 = unlimited */
    double min_success_ratio; /* default 1.0 */
    int64_t min_successes;    /* -1 = unset; wins over the ratio */
    bool run_all;
    int system_retries;            /* node, else workflow, else 3 */
    int interruptible_failures;    /* default system_retries - 1 */
    struct mapq_task_opts opts;    /* effective: task's plus overrides */
    struct mapq_type *output_type; /* T, list[T], list[T?]; NULL if none */
    size_t *deps;                  /* indices of nodes this one references */
    size_t ndeps;
    struct mapq_pos pos;
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
    struct mapq_binding *outputs; /* one (unnamed) or several */
    size_t noutputs;
    int system_retries; /* workflow-level default, 3 */
};

/*
 * Parses and validates the workflow in text (len bytes); file names it in
 * messages. On success returns the workflow (caller frees with
 * mapq_workflow_free()). On failure returns NULL and appends one line per
 * problem to errors, each "FILE:LINE:COL: message\n".
 */
struct mapq_workflow *mapq_workflow_parse(const char *text, size_t len,
                                          const char *file,
                                          struct mapq_buf *errors);

/* Reads path and calls mapq_workflow_parse(); a read failure is one line. */
struct mapq_workflow *mapq_workflow_load(const char *path,
                                         struct mapq_buf *errors);

/* NULL-safe. */
void mapq_workflow_free(struct mapq_workflow *wf);

/* Index of the named node/task/input, or -1. */
long mapq_workflow_find_node(const struct mapq_workflow *wf, const char *name);
long mapq_workflow_find_task(const struct mapq_workflow *wf, const char *name);
long mapq_workflow_find_input(const struct mapq_workflow *wf, const char *name);

/*
 * Resolves the workflow's inputs into one msgpack map (name -> value, every
 * declared input present) appended to out. assigns are "NAME=VALUE" strings
 * from --input (VALUE is YAML/JSON text, or @FILE to read it from a file);
 * inputs_file, if not NULL, is a YAML/JSON mapping of inputs (--inputs).
 * --input wins over --inputs, which wins over defaults. Each VALUE is
 * converted to the input's declared type. Then every map node whose `over`
 * lists all come from workflow inputs or literals has its zip lengths
 * checked. Problems (unknown input, wrong type, missing required input,
 * different lengths) are appended to errors one per line; the return is
 * MAPQ_EINVAL then.
 */
enum mapq_err mapq_workflow_bind_inputs(
    const struct mapq_workflow *wf, const char *const *assigns, size_t nassigns,
    const char *inputs_file, struct mapq_buf *out, struct mapq_buf *errors);

/*
 * Converts YAML text (one document holding one value) to msgpack of type
 * `type` (NULL: the natural mapping), appended to out. Plain scalars are
 * resolved with the declared type in mind: under str, `123` is the string
 * "123"; under bytes a string is taken as base64. Used for --input values.
 * where names the source in messages ("--input data").
 */
enum mapq_err mapq_workflow_yaml_value(const char *text, size_t len,
                                       const struct mapq_type *type,
                                       const char *where, struct mapq_buf *out,
                                       char *err);

#endif
