/*
 * mapq_units.h - durations ("500ms", "30s", "10m", "2h") and sizes
 * ("512Mi", "2Gi", "100M", "1024").
 */
#ifndef MAPQ_UNITS_H
#define MAPQ_UNITS_H

#include <stddef.h>
#include <stdint.h>

#include "mapq_err.h"

/*
 * Parses a duration: a non-negative integer or decimal number followed by
 * ms, s, m or h (a bare number is seconds). Writes milliseconds to *ms.
 * Returns MAPQ_EINVAL with a message in err (may be NULL) otherwise.
 */
enum mapq_err mapq_duration_parse(const char *s, int64_t *ms, char *err);

/*
 * Parses a size: a non-negative integer with an optional suffix K, M, G, T
 * (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024). Writes bytes.
 */
enum mapq_err mapq_size_parse(const char *s, int64_t *bytes, char *err);

/* Writes bytes as people read it ("512 MiB", "3.8 GiB", "100 bytes") into
 * buf (len bytes, 16 are enough); returns buf. */
char *mapq_size_format(int64_t bytes, char *buf, size_t len);

#endif
