/*
 * mapq/plugin.h - the public ABI for mapq plugin tasks.
 *
 * A plugin is a shared library that mapq-agent loads with dlopen(). It
 * defines MAPQ_PLUGIN_DEFINE() once and one or more task functions of type
 * mapq_plugin_fn, named by the workflow's `plugin: {library, symbol}`.
 *
 * The agent calls a task function once per subtask, on the agent's event
 * loop thread, so a function must be short (plugin tasks are meant for tiny,
 * high-volume work; use a command task for anything long). It must be
 * reentrant across calls and must not keep pointers from one call to the
 * next.
 *
 * Values are msgpack. `input` is a map from input name to value, exactly as
 * the workflow declares the task's inputs. A function reports its output
 * with call->set_output() (one msgpack value that matches the task's declared
 * output type) and returns MAPQ_PLUGIN_OK, or reports a user error with
 * call->set_error() and returns MAPQ_PLUGIN_ERROR; user errors are retried
 * while the task's `retries` last. Checkpoints: call->checkpoint holds the
 * previous attempt's checkpoint (NULL when there is none) and
 * call->save_checkpoint() replaces it.
 *
 * Versioning: MAPQ_PLUGIN_ABI_VERSION changes whenever this structure or the
 * calling contract changes incompatibly; the agent refuses a library built
 * against another version, with a clear error on each of its subtasks.
 */
#ifndef MAPQ_PLUGIN_H
#define MAPQ_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#define MAPQ_PLUGIN_ABI_VERSION 1

enum mapq_plugin_status {
    MAPQ_PLUGIN_OK = 0,    /* success; output set (or null) */
    MAPQ_PLUGIN_ERROR = 1, /* user error; message set with set_error */
};

struct mapq_plugin_call {
    uint32_t abi_version; /* MAPQ_PLUGIN_ABI_VERSION of the agent */

    const char *execution; /* execution id */
    const char *node;      /* node name */
    uint64_t index;        /* element index within the map (0 for a task) */
    uint32_t attempt;      /* 1 for the first attempt */

    const char *input; /* msgpack map of inputs; valid during the call */
    size_t input_len;

    const char *checkpoint; /* previous checkpoint bytes, or NULL */
    size_t checkpoint_len;

    /* Sets the output to one msgpack value (copied). Returns 0, or -1 when
     * the value is malformed or over the size cap. */
    int (*set_output)(const struct mapq_plugin_call *call, const char *msgpack,
                      size_t len);
    /* Sets the one-line user error message (copied). */
    void (*set_error)(const struct mapq_plugin_call *call, const char *message);
    /* Replaces the saved checkpoint (copied). Returns 0, or -1 over the
     * checkpoint size cap. */
    int (*save_checkpoint)(const struct mapq_plugin_call *call,
                           const void *data, size_t len);

    void *agent_private; /* owned by the agent; do not touch */
};

/* A plugin task function. */
typedef int mapq_plugin_fn(const struct mapq_plugin_call *call);

/* Put MAPQ_PLUGIN_DEFINE(); once in a plugin's source. */
#define MAPQ_PLUGIN_DEFINE() \
    const uint32_t mapq_plugin_abi_version = MAPQ_PLUGIN_ABI_VERSION

#endif
