/*
 * mapq_plugin_host.h - loading plugin libraries and calling task functions.
 *
 * Libraries are opened once and kept for the life of the host. A bare
 * library name (no '/') is searched in MAPQ_PLUGIN_PATH (colon separated),
 * then in the agent's own directory, then by the dynamic loader.
 */
#ifndef MAPQ_PLUGIN_HOST_H
#define MAPQ_PLUGIN_HOST_H

#include <stddef.h>
#include <stdint.h>

#include "mapq/plugin.h"
#include "mapq_buf.h"
#include "mapq_err.h"

struct mapq_plugin_host;

/* self_dir: the agent's executable directory (borrowed, copied). */
struct mapq_plugin_host *mapq_plugin_host_new(const char *self_dir);
void mapq_plugin_host_free(struct mapq_plugin_host *h);

/*
 * Finds library:symbol, loading the library if needed. Returns the function
 * or NULL with a one-line reason in err (not found, wrong ABI version, not
 * defined by the library itself but by one of its dependencies, or the
 * library's mapq_plugin_abi_version variable).
 */
mapq_plugin_fn *mapq_plugin_host_lookup(struct mapq_plugin_host *h,
                                        const char *library, const char *symbol,
                                        char *err);

/* What one call produced. Embedded: init/release. */
struct mapq_plugin_outcome {
    int status;             /* MAPQ_PLUGIN_OK or MAPQ_PLUGIN_ERROR */
    struct mapq_buf output; /* msgpack; nil when the plugin set none */
    char error[512];
    struct mapq_buf checkpoint; /* the last save accepted; a refused save
                                   leaves it unchanged */
    int has_checkpoint;
};

void mapq_plugin_outcome_init(struct mapq_plugin_outcome *o);
void mapq_plugin_outcome_release(struct mapq_plugin_outcome *o);

/*
 * Calls fn once. call carries the identity and input fields (borrowed); its
 * callbacks and agent_private are filled in here. output_max caps the
 * output.
 */
void mapq_plugin_host_call(mapq_plugin_fn *fn, struct mapq_plugin_call *call,
                           size_t output_max, struct mapq_plugin_outcome *out);

#endif
