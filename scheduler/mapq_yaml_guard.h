/*
 * mapq_yaml_guard.h - refusing YAML that would be too costly to load,
 * before it is loaded.
 *
 * libyaml's document loader builds the whole graph of a file before anyone
 * can look at it, and deep nesting makes it slow (hundreds of kilobytes of
 * "[[[[..." take tens of seconds) and large in memory. This pass reads the
 * same text as a stream of parser events, which costs little per event,
 * and stops at the first event past a limit, naming where it is.
 */
#ifndef MAPQ_YAML_GUARD_H
#define MAPQ_YAML_GUARD_H

#include <stddef.h>

#include "mapq_err.h"

/* Nesting of sequences and mappings; workflows need a handful of levels and
 * values at most 32 (msgpack-c's limit), so this leaves room for both. */
#define MAPQ_YAML_MAX_DEPTH 64
/* Scalars, sequences, mappings and aliases in one document: enough for a
 * list of a million elements as an input. */
#define MAPQ_YAML_MAX_NODES 1200000

/*
 * Reads text (len bytes) as YAML events. Returns MAPQ_OK when no nesting is
 * deeper than MAPQ_YAML_MAX_DEPTH and the document has at most
 * MAPQ_YAML_MAX_NODES nodes, or when the text is not valid YAML (the
 * loader reports that, with its own words). Otherwise returns MAPQ_ETOOBIG
 * with the reason in msg (mlen bytes) and its 1-based line and column.
 * Borrows text; allocates only libyaml's parser state.
 */
enum mapq_err mapq_yaml_guard_check(const char *text, size_t len, char *msg,
                                    size_t mlen, int *line, int *col);

#endif
