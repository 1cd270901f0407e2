/*
 * mapq_units.c - parsing durations and sizes written by people.
 *
 * Pure and strict: the whole string must match, there is no white space, no
 * sign and no exponent, and every overflow of int64 is an error rather than
 * a wrap. A fraction in a duration is rounded to the nearest millisecond
 * ("1.5s" is 1500, "0.4ms" is 0); a size must come to whole bytes.
 */
#include "mapq_units.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

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

/* The units of a duration, largest first: a compound duration ("1h30m",
 * "1m30.5s") names each at most once, in this order. */
static const struct {
    const char *name;
    int64_t ms;
} duration_units[] = {
    {"d", 24 * 60 * 60 * 1000},
    {"h", 60 * 60 * 1000},
    {"m", 60 * 1000},
    {"s", 1000},
    {"ms", 1},
};

#define NDURATION_UNITS (sizeof(duration_units) / sizeof(duration_units[0]))

/* Reads an optional fraction (".25") at *p as frac / den in lowest terms
 * of ten, den <= 1e9; *cut tells whether a non-zero digit past the ninth
 * was dropped. False when the point has no digit after it. */
static bool
read_frac(const char **p, int64_t *frac, int64_t *den, bool *cut)
{
    const char *s = *p;

    *frac = 0;
    *den = 1;
    *cut = false;
    if (*s != '.')
        return true;
    s++;
    if (!is_digit(*s))
        return false;
    for (; is_digit(*s); s++) {
        if (*den < 1000000000) {
            *frac = *frac * 10 + (*s - '0');
            *den *= 10;
        } else if (*s != '0') {
            *cut = true;
        }
    }
    while (*den > 1 && *frac % 10 == 0) {
        *frac /= 10;
        *den /= 10;
    }
    *p = s;
    return true;
}

static int64_t
gcd(int64_t a, int64_t b)
{
    while (b != 0) {
        int64_t t = a % b;

        a = b;
        b = t;
    }
    return a;
}

/* The index of the unit at *p among those from first on (advancing *p
 * past it), or -1; the longest name that matches wins ("ms" over "m"). */
static int
read_duration_unit(const char **p, size_t first)
{
    size_t i, best = NDURATION_UNITS, len = 0;

    for (i = first; i < NDURATION_UNITS; i++) {
        size_t n = strlen(duration_units[i].name);

        if (strncmp(*p, duration_units[i].name, n) == 0 && n > len) {
            best = i;
            len = n;
        }
    }
    if (best == NDURATION_UNITS)
        return -1;
    *p += len;
    return (int)best;
}

enum mapq_err
mapq_duration_parse(const char *s, int64_t *ms, char *err)
{
    const char *p = s;
    int64_t total = 0;
    size_t next = 0;
    bool overflow;

    if (*p == '-')
        return mapq_err_set(err, MAPQ_EINVAL,
                            "duration '%s' must not be negative", s);
    do {
        int64_t whole, frac, den, unit, part;
        bool cut;
        int u;

        if (!read_uint(&p, &whole, &overflow)) {
            if (overflow)
                goto too_large;
            goto bad;
        }
        if (!read_frac(&p, &frac, &den, &cut))
            goto bad;
        if (*p == '\0' && next == 0) {
            unit = 1000; /* a bare number: seconds */
        } else {
            u = read_duration_unit(&p, next);
            if (u < 0)
                goto bad;
            unit = duration_units[u].ms;
            next = (size_t)u + 1;
        }
        /* frac < den <= 1e9 and unit <= 8.64e7: the product fits. */
        part = (frac * unit + den / 2) / den;
        if (whole > (INT64_MAX - part) / unit ||
            whole * unit + part > INT64_MAX - total)
            goto too_large;
        total += whole * unit + part;
    } while (*p != '\0');
    *ms = total;
    return MAPQ_OK;
too_large:
    return mapq_err_set(err, MAPQ_EINVAL, "duration '%s' is too large", s);
bad:
    return mapq_err_set(err, MAPQ_EINVAL,
                        "invalid duration '%s' (expected a number and a unit, "
                        "or several largest first: 500ms, 30s, 1m30s, 2h, 3d)",
                        s);
}

/* Bytes per size suffix ("Gi", "GiB", "G", "GB", "k", "B", ""), or 0 when
 * suffix is not a size unit. */
static int64_t
size_unit(const char *suffix)
{
    static const struct {
        const char *name;
        int64_t mult;
    } units[] = {
        {"", 1},
        {"K", 1000},
        {"k", 1000},
        {"M", 1000 * 1000},
        {"G", 1000 * 1000 * 1000},
        {"T", (int64_t)1000 * 1000 * 1000 * 1000},
        {"Ki", 1024},
        {"Mi", 1024 * 1024},
        {"Gi", 1024 * 1024 * 1024},
        {"Ti", (int64_t)1024 * 1024 * 1024 * 1024},
    };
    size_t i, n = strlen(suffix);

    /* A trailing B (bytes) changes nothing: "4GiB" is "4Gi", "512B" 512. */
    if (n > 0 && suffix[n - 1] == 'B')
        n--;
    for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
        if (strlen(units[i].name) == n &&
            strncmp(suffix, units[i].name, n) == 0)
            return units[i].mult;
    return 0;
}

enum mapq_err
mapq_size_parse(const char *s, int64_t *bytes, char *err)
{
    const char *p = s;
    int64_t n, unit, frac, den, g;
    bool overflow, cut;

    if (*p == '-')
        return mapq_err_set(err, MAPQ_EINVAL, "size '%s' must not be negative",
                            s);
    if (!read_uint(&p, &n, &overflow)) {
        if (overflow)
            return mapq_err_set(err, MAPQ_EINVAL, "size '%s' is too large", s);
        goto bad;
    }
    if (!read_frac(&p, &frac, &den, &cut))
        goto bad;
    unit = size_unit(p);
    if (unit == 0)
        goto bad;
    /* A fraction must come to whole bytes ("1.5Gi", "0.5K"; not "1.5" or
     * "1.0001K"): frac * unit / den is whole when frac is a multiple of
     * den / gcd(unit, den). Every product stays under unit. */
    g = gcd(unit, den);
    if (cut || frac % (den / g) != 0)
        return mapq_err_set(err, MAPQ_EINVAL,
                            "size '%s' is not a whole number of bytes", s);
    frac = frac / (den / g) * (unit / g);
    if (n > (INT64_MAX - frac) / unit)
        return mapq_err_set(err, MAPQ_EINVAL, "size '%s' is too large", s);
    *bytes = n * unit + frac;
    return MAPQ_OK;
bad:
    return mapq_err_set(err, MAPQ_EINVAL,
                        "invalid size '%s' (expected a number of bytes and an "
                        "optional unit: 512MiB, 4Gi, 100M, 1.5G)",
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
