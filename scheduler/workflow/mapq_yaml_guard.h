/*
 * mapq_yaml_guard.h - loading a YAML document with limits checked while it
 * is read, so that YAML too costly to load is refused before it is built.
 *
 * libyaml's document loader (yaml_parser_load) builds the whole graph of a
 * file before anyone can look at it: deep nesting made it slow (400 KB of
 * "[[[[..." took 38 s) and large in memory, and its anchor lookups grow
 * with the square of their number. This loader builds the same document
 * from the parser's events itself, counting as they arrive, and stops at
 * the first event past a limit, naming where it is.
 */
#ifndef MAPQ_YAML_GUARD_H
#define MAPQ_YAML_GUARD_H

#include <stddef.h>
#include <yaml.h>

#include "mapq_err.h"

/* Nesting of sequences and mappings; workflows need a handful of levels and
 * values at most 32 (msgpack-c's limit), so this leaves room for both. */
#define MAPQ_YAML_MAX_DEPTH 64
/* Scalars, sequences, mappings and aliases in one document: enough for a
 * list of a million elements as an input. */
#define MAPQ_YAML_MAX_NODES 1200000
/* Anchors (&name) in one document. libyaml's loader checks each new anchor
 * against all earlier ones and looks each alias (*name) up the same way,
 * so its cost grows with anchors times (anchors + aliases): 50,000 anchors
 * took seconds. */
#define MAPQ_YAML_MAX_ANCHORS 1000
/* Those comparisons in one document: each anchor and each alias counts the
 * anchors before it. 10 million take tens of milliseconds; a million aliases
 * of one anchor still fit. */
#define MAPQ_YAML_MAX_LOOKUPS 10000000

/*
 * Loads the one YAML document of the text parser was set up with into doc,
 * as yaml_parser_load() would, with the limits above checked on each event
 * as it arrives: nothing past a limit is built. Returns MAPQ_OK with doc
 * initialised (no root node for an empty stream; the caller deletes it with
 * yaml_document_delete()); MAPQ_EPROTO when libyaml's parser failed (its
 * fields say why and where); MAPQ_ETOOBIG past a limit, or MAPQ_EINVAL
 * for an undefined alias, a duplicate anchor or a second document, each
 * with the reason in msg (mlen bytes) and its 1-based line and column. On
 * failure doc is not initialised. Borrows parser, which the caller deletes.
 */
enum mapq_err mapq_yaml_guard_load(yaml_parser_t *parser, yaml_document_t *doc,
                                   char *msg, size_t mlen, int *line, int *col);

#endif
