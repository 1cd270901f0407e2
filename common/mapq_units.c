/*
 * mapq_units.c - parsing durations and sizes written by people.
 *
 * Pure and strict: the whole string must match, there is no white space, no
 * sign and no exponent, and every overflow of int64 is an error rather than
 * a wrap. A fraction in a duration is rounded to the nearest millisecond
 * ("1.5s" is 1500, "0.4ms" is 0).
 */
#include "mapq_units.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

/* Digits of a fraction kept; later ones are below a millisecond. */
#define FRAC_DIGITS 9

static bool
is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads digits at *p into *v; false on overflow or when there are none. */
static bool
read_uint(const char **p, int64_t *v, bool *overflow)
{
    const char *s = *p;
    int64_t n = 0;

    *overflow = false;
    while (is_digit(*s)) {
        int d = *s - '0';

        if (n > (INT64_MAX - d) / 10)
            *overflow = true;
        else
            n = n * 10 + d;
        s++;
    }
    if (s == *p)
        return false;
    *p = s;
    *v = n;
    return !*overflow;
}

/* Milliseconds per unit suffix, or 0 when suffix is not a unit. */
static int64_t
duration_unit(const char *suffix)
{
    if (strcmp(suffix, "") == 0 || strcmp(suffix, "s") == 0)
        return 1000;
    if (strcmp(suffix, "ms") == 0)
        return 1;
    if (strcmp(suffix, "m") == 0)
        return 60 * 1000;
    if (strcmp(suffix, "h") == 0)
        return 60 * 60 * 1000;
    return 0;
}

enum mapq_err
mapq_duration_parse(const char *s, int64_t *ms, char *err)
{
    const char *p = s;
    int64_t whole, unit, frac = 0, den = 1, frac_ms;
    bool overflow;

    if (*p == '-')
        return mapq_err_set(err, MAPQ_EINVAL,
                            "duration '%s' must not be negative", s);
    if (!read_uint(&p, &whole, &overflow)) {
        if (overflow)
            return mapq_err_set(err, MAPQ_EINVAL, "duration '%s' is too large",
                                s);
        goto bad;
    }
    if (*p == '.') {
        p++;
        if (!is_digit(*p))
            goto bad;
        for (; is_digit(*p); p++) {
            if (den < 1000000000) {
                frac = frac * 10 + (*p - '0');
                den *= 10;
            }
        }
    }
    unit = duration_unit(p);
    if (unit == 0)
        goto bad;
    /* frac < den <= 1e9 and unit <= 3.6e6: the product fits in int64. */
    frac_ms = (frac * unit + den / 2) / den;
    if (whole > (INT64_MAX - frac_ms) / unit)
        return mapq_err_set(err, MAPQ_EINVAL, "duration '%s' is too large", s);
    *ms = whole * unit + frac_ms;
    return MAPQ_OK;
bad:
    return mapq_err_set(err, MAPQ_EINVAL,
                        "invalid duration '%s' (expected a number and a unit: "
                        "500ms, 30s, 10m, 2h)",
                        s);
}

/* Bytes per size suffix, or 0 when suffix is not a size unit. */
static int64_t
size_unit(const char *suffix)
{
    static const struct {
        const char *name;
        int64_t mult;
    } units[] = {
        {"", 1},
        {"K", 1000},
        {"M", 1000 * 1000},
        {"G", 1000 * 1000 * 1000},
        {"T", (int64_t)1000 * 1000 * 1000 * 1000},
        {"Ki", 1024},
        {"Mi", 1024 * 1024},
        {"Gi", 1024 * 1024 * 1024},
        {"Ti", (int64_t)1024 * 1024 * 1024 * 1024},
    };
    size_t i;

    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strcmp(suffix, units[i].name) == 0)
            return units[i].mult;
    return 0;
}

enum mapq_err
mapq_size_parse(const char *s, int64_t *bytes, char *err)
{
    const char *p = s;
    int64_t n, unit;
    bool overflow;

    if (*p == '-')
        return mapq_err_set(err, MAPQ_EINVAL, "size '%s' must not be negative",
                            s);
    if (!read_uint(&p, &n, &overflow)) {
        if (overflow)
            return mapq_err_set(err, MAPQ_EINVAL, "size '%s' is too large", s);
        goto bad;
    }
    unit = size_unit(p);
    if (unit == 0)
        goto bad;
    if (n > INT64_MAX / unit)
        return mapq_err_set(err, MAPQ_EINVAL, "size '%s' is too large", s);
    *bytes = n * unit;
    return MAPQ_OK;
bad:
    return mapq_err_set(err, MAPQ_EINVAL,
                        "invalid size '%s' (expected a whole number of bytes "
                        "with an optional unit: 512Mi, 2Gi, 100M)",
                        s);
}

char *
mapq_size_format(int64_t bytes, char *buf, size_t len)
{
    static const char *const units[] = {"KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)bytes;
    int u = -1;

    while (v >= 1024 && u < 4) {
        v /= 1024;
        u++;
    }
    if (u < 0)
        snprintf(buf, len, "%lld bytes", (long long)bytes);
    else if (v < 10 && v != (double)(int64_t)v)
        snprintf(buf, len, "%.1f %s", v, units[u]);
    else
        snprintf(buf, len, "%.0f %s", v, units[u]);
    return buf;
}
