/*
 * mapq_seal.h - signed messages: what the scheduler writes for agents to
 * run (task specs and subtask bodies) carries an HMAC-SHA256 made with a
 * secret the scheduler and the agents share, so that whoever can write to
 * Redis cannot make an agent run anything the scheduler did not sign.
 *
 * A sealed message is the msgpack bin 8 of the 32-byte MAC (bytes c4 20)
 * followed by the message itself. The MAC covers, with no separator but
 * those shown, "mapq1 " KIND " " ID "\n" MESSAGE: KIND is "spec" or
 * "body", ID "<exec>/<k>" for a task spec and "<exec>/<k>/<index>" for a
 * subtask's body, so that a message moved to another execution, node or
 * element no longer opens (docs/PROTOCOL.md, "Signatures").
 *
 * struct mapq_seal is opaque and holds the secret; mapq_seal_load() makes
 * it, mapq_seal_free() wipes and frees it. Pure: no logging, no Redis.
 */
#ifndef MAPQ_SEAL_H
#define MAPQ_SEAL_H

#include <stdbool.h>
#include <stddef.h>

#include "mapq_buf.h"
#include "mapq_err.h"

#define MAPQ_SEAL_MAC_LEN  32
#define MAPQ_SEAL_HEAD_LEN (2 + MAPQ_SEAL_MAC_LEN)
/* A secret shorter than this is refused: it could be guessed. */
#define MAPQ_SEAL_MIN_SECRET 16

struct mapq_seal;

/*
 * Reads the secret from the file at path (one trailing newline ignored; at
 * least MAPQ_SEAL_MIN_SECRET bytes). Returns the seal (caller frees with
 * mapq_seal_free()) or NULL with err set.
 */
struct mapq_seal *mapq_seal_load(const char *path, char *err);

/* Wipes the secret and frees s. NULL-safe. */
void mapq_seal_free(struct mapq_seal *s);

/*
 * Appends to out the message (msg, len bytes, borrowed) sealed for kind
 * ("spec" or "body") and id (see above). s must not be NULL.
 */
void mapq_seal_wrap(const struct mapq_seal *s, const char *kind, const char *id,
                    const char *msg, size_t len, struct mapq_buf *out);

/*
 * Opens a message read from Redis (data, len bytes, borrowed): *msg and
 * *mlen are set to the message inside it (pointing into data). With s,
 * the message must be sealed with s's secret for kind and id, else
 * MAPQ_ESEAL with err saying which (unsigned, or a MAC that does not
 * match: forged, altered, or moved from another subtask). Without s (no
 * secret), a seal is skipped unchecked and an unsealed message taken as
 * it is. Returns MAPQ_OK or MAPQ_ESEAL.
 */
enum mapq_err mapq_seal_open(const struct mapq_seal *s, const char *kind,
                             const char *id, const char *data, size_t len,
                             const char **msg, size_t *mlen, char *err);

#endif
