/*
 * mapq_argv.h - an argument vector for Redis commands: strings and byte
 * strings are copied in, and argv/lens are what hiredis's *Argv calls
 * take. Embedded: init/release; the vector owns its copies.
 */
#ifndef MAPQ_ARGV_H
#define MAPQ_ARGV_H

#include <stddef.h>

struct mapq_argv {
    int argc;
    int cap;
    const char **argv; /* views of owned, for hiredis */
    size_t *lens;
    char **owned;
};

void mapq_argv_init(struct mapq_argv *a);
void mapq_argv_release(struct mapq_argv *a);
/* Drops the arguments, keeping the room. */
void mapq_argv_reset(struct mapq_argv *a);
void mapq_argv_add(struct mapq_argv *a, const char *s);
void mapq_argv_addlen(struct mapq_argv *a, const void *p, size_t n);
/* Adds a formatted argument (under 512 bytes). */
void mapq_argv_addf(struct mapq_argv *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

#endif
