/*
 * mapq_manifest.c - dir values: a directory listed into a manifest, and
 * manifest text written and read back (see mapq_manifest.h).
 *
 * Owns the manifest's text format and the rules of what a directory value
 * may hold. A scan never follows a symbolic link below the directory it is
 * given: each step is an openat()/fstatat() relative to the descriptor of
 * the parent, so a link swapped in cannot lead it elsewhere. Hashing the
 * files is the caller's. Blocking file system calls only; never logs.
 */
#include "mapq_manifest.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_type.h"

#define DIR_FLAGS  (O_RDONLY | O_NOFOLLOW | O_DIRECTORY | O_CLOEXEC)
#define SHA256_LEN 64
#define SHOW_MAX   300 /* bytes of a path an error message shows, the tail */
#define ONLY_FILES "a dir value holds only regular files and directories"
#define STR(x)     STR_(x)
#define STR_(x)    #x

/* A scan in progress: rel is the path (relative to dir) of the directory
 * being read, "" for dir itself. */
struct scan {
    const char *dir;
    char rel[MAPQ_MANIFEST_PATH_MAX + 1];
    size_t rlen;
    struct mapq_manifest *m;
    size_t cap; /* entries allocated in m */
    char *err;
};

static enum mapq_err walk(struct scan *s, int fd);

/* ---- scanning ------------------------------------------------------- */

/* Appends s (n bytes) to b with control characters and bytes that are not
 * UTF-8 written as \xNN, so that an error message is one line of text. */
static void
append_shown(struct mapq_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, c;

    while (i < n) {
        c = u[i] >= 0xf0 ? 4 : u[i] >= 0xe0 ? 3 : u[i] >= 0xc0 ? 2 : 1;
        if (c > n - i || mapq_type_utf8_prefix(s + i, c) != c || u[i] < 0x20 ||
            u[i] == 0x7f) {
            mapq_buf_printf(b, "\\x%02x", u[i]);
            i++;
            continue;
        }
        mapq_buf_append(b, s + i, c);
        i += c;
    }
}

/* Fails the scan with code and "<pre>'<path>': <what>", path being the
 * full path of name in the directory being read (of that directory when
 * name is NULL), escaped and cut to its last SHOW_MAX bytes. */
static enum mapq_err
fail(const struct scan *s, const char *name, enum mapq_err code,
     const char *pre, const char *what)
{
    struct mapq_buf b = MAPQ_BUF_INIT;
    size_t start = 0;
    enum mapq_err rc;

    append_shown(&b, s->dir, strlen(s->dir));
    if (s->rlen > 0) {
        mapq_buf_appendstr(&b, b.data[b.len - 1] == '/' ? "" : "/");
        append_shown(&b, s->rel, s->rlen);
    }
    if (name != NULL) {
        mapq_buf_appendstr(&b, b.data[b.len - 1] == '/' ? "" : "/");
        append_shown(&b, name, strlen(name));
    }
    if (b.len > SHOW_MAX) {
        start = b.len - SHOW_MAX;
        while ((b.data[start] & 0xc0) == 0x80)
            start++;
    }
    rc = mapq_err_set(s->err, code, "%s'%s%s': %s", pre, start > 0 ? "..." : "",
                      b.data + start, what);
    mapq_buf_release(&b);
    return rc;
}

/* What a file of mode is, when neither regular nor a directory. */
static const char *
kind(mode_t mode)
{
    if (S_ISLNK(mode))
        return "a symlink; " ONLY_FILES;
    if (S_ISFIFO(mode))
        return "a FIFO; " ONLY_FILES;
    if (S_ISSOCK(mode))
        return "a socket; " ONLY_FILES;
    if (S_ISCHR(mode) || S_ISBLK(mode))
        return "a device; " ONLY_FILES;
    return "of an unknown file type; " ONLY_FILES;
}

/* Lists the regular file name (lstat st) of the directory being read. */
static enum mapq_err
add_file(struct scan *s, const char *name, const struct stat *st)
{
    struct mapq_manifest_entry *e;

    if (s->m->n == MAPQ_MANIFEST_FILES_MAX)
        return fail(s, name, MAPQ_ETOOBIG, "",
                    "more than " STR(MAPQ_MANIFEST_FILES_MAX) " files");
    if (s->m->n == s->cap) {
        s->cap = s->cap == 0 ? 64 : 2 * s->cap;
        s->m->entries =
            mapq_xrealloc(s->m->entries, s->cap * sizeof(*s->m->entries));
    }
    e = &s->m->entries[s->m->n++];
    e->path = mapq_xasprintf("%s%s%s", s->rel, s->rlen > 0 ? "/" : "", name);
    e->sha256[0] = '\0';
    e->size = -1;
    e->exec = (st->st_mode & 0111) != 0;
    return MAPQ_OK;
}

/* Lists name, an entry of the directory being read (open as dfd): checks
 * its name and type, descends into a directory. */
static enum mapq_err
visit(struct scan *s, int dfd, const char *name)
{
    size_t nlen = strlen(name), saved = s->rlen;
    enum mapq_err rc;
    struct stat st;
    int fd;

    if (memchr(name, '\n', nlen) != NULL)
        return fail(s, name, MAPQ_EINVAL, "", "a name holding a newline");
    if (mapq_type_utf8_prefix(name, nlen) != nlen)
        return fail(s, name, MAPQ_EINVAL, "", "a name that is not valid UTF-8");
    if (saved + (saved > 0) + nlen > MAPQ_MANIFEST_PATH_MAX)
        return fail(s, name, MAPQ_ETOOBIG, "",
                    "a path over " STR(MAPQ_MANIFEST_PATH_MAX) " bytes");
    if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) != 0)
        return fail(s, name, MAPQ_EIO, "cannot stat ", strerror(errno));
    if (S_ISREG(st.st_mode))
        return add_file(s, name, &st);
    if (!S_ISDIR(st.st_mode))
        return fail(s, name, MAPQ_EINVAL, "", kind(st.st_mode));
    fd = openat(dfd, name, DIR_FLAGS);
    if (fd < 0)
        return fail(s, name, MAPQ_EIO, "cannot open ", strerror(errno));
    if (saved > 0)
        s->rel[s->rlen++] = '/';
    memcpy(s->rel + s->rlen, name, nlen + 1);
    s->rlen += nlen;
    rc = walk(s, fd);
    s->rlen = saved;
    s->rel[saved] = '\0';
    return rc;
}

/* Lists the directory being read, open as fd (which this closes). */
static enum mapq_err
walk(struct scan *s, int fd)
{
    enum mapq_err rc = MAPQ_OK;
    struct dirent *d;
    DIR *dp;

    dp = fdopendir(fd);
    if (dp == NULL) {
        rc = fail(s, NULL, MAPQ_EIO, "cannot read directory ", strerror(errno));
        close(fd);
        return rc;
    }
    for (;;) {
        errno = 0;
        d = readdir(dp);
        if (d == NULL && errno != 0)
            rc = fail(s, NULL, MAPQ_EIO, "cannot read directory ",
                      strerror(errno));
        if (d == NULL)
            break;
        if (strcmp(d->d_name, ".") == 0 || strcmp(d->d_name, "..") == 0)
            continue;
        rc = visit(s, dirfd(dp), d->d_name);
        if (rc != MAPQ_OK)
            break;
    }
    closedir(dp);
    return rc;
}

static int
by_path(const void *a, const void *b)
{
    return strcmp(((const struct mapq_manifest_entry *)a)->path,
                  ((const struct mapq_manifest_entry *)b)->path);
}

enum mapq_err
mapq_manifest_scan(const char *dir, struct mapq_manifest *m, char *err)
{
    struct scan s = {.dir = dir, .m = m, .err = err};
    enum mapq_err rc;
    struct stat st;
    int fd = -1, e;

    m->entries = NULL;
    m->n = 0;
    e = lstat(dir, &st) != 0 ? errno : !S_ISDIR(st.st_mode) ? ENOTDIR : 0;
    if (e == 0) {
        fd = open(dir, DIR_FLAGS);
        e = fd < 0 ? errno : 0; /* ENOTDIR, ELOOP: dir changed since */
    }
    if (e == ENOENT)
        return mapq_err_set(err, MAPQ_ENOENT, "no such directory: %s", dir);
    if (e == ENOTDIR || e == ELOOP)
        return mapq_err_set(err, MAPQ_EINVAL, "'%s' is not a directory", dir);
    if (e != 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot open '%s': %s", dir,
                            strerror(e));
    rc = walk(&s, fd);
    if (rc != MAPQ_OK) {
        mapq_manifest_release(m);
        return rc;
    }
    /* Listed directory by directory; "a/b" must still follow "a.b". */
    if (m->n > 1)
        qsort(m->entries, m->n, sizeof(*m->entries), by_path);
    return MAPQ_OK;
}

/* ---- text ----------------------------------------------------------- */

void
mapq_manifest_format(const struct mapq_manifest *m, struct mapq_buf *out)
{
    const struct mapq_manifest_entry *e;
    enum mapq_err rc;
    size_t i;

    for (i = 0; i < m->n; i++) {
        e = &m->entries[i];
        mapq_assert(strlen(e->sha256) == SHA256_LEN && e->size >= 0);
        rc = mapq_buf_printf(out, "%s %" PRId64 " %s %s\n", e->sha256, e->size,
                             e->exec ? "0755" : "0644", e->path);
        mapq_assert(rc == MAPQ_OK);
    }
}

/* Reads the n bytes at p as a size: decimal, no sign, no leading zero but
 * "0" itself, within int64_t. */
static bool
parse_size(const char *p, size_t n, int64_t *size)
{
    int64_t v = 0, d;
    size_t i;

    if (n == 0 || (n > 1 && p[0] == '0'))
        return false;
    for (i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        d = p[i] - '0';
        if (v > (INT64_MAX - d) / 10)
            return false;
        v = 10 * v + d;
    }
    *size = v;
    return true;
}

/* Parses one line (n bytes, without its '\n') into *e, whose path the
 * caller then owns; returns NULL, or what is wrong with the line. */
static const char *
parse_line(const char *p, size_t n, struct mapq_manifest_entry *e)
{
    const char *sp;
    size_t i;

    if (n < SHA256_LEN + 1 || p[SHA256_LEN] != ' ')
        return "expected 64 hex digits of sha256, then a space";
    for (i = 0; i < SHA256_LEN; i++) {
        if (!((p[i] >= '0' && p[i] <= '9') || (p[i] >= 'a' && p[i] <= 'f')))
            return "sha256 is not 64 lowercase hex digits";
    }
    memcpy(e->sha256, p, SHA256_LEN);
    e->sha256[SHA256_LEN] = '\0';
    p += SHA256_LEN + 1;
    n -= SHA256_LEN + 1;
    sp = memchr(p, ' ', n);
    if (sp == NULL || !parse_size(p, (size_t)(sp - p), &e->size))
        return "size is not a byte count (decimal, no sign or leading zero)";
    n -= (size_t)(sp - p) + 1;
    p = sp + 1;
    if (n < 4 || (memcmp(p, "0755", 4) != 0 && memcmp(p, "0644", 4) != 0) ||
        (n > 4 && p[4] != ' '))
        return "mode is neither 0755 nor 0644";
    if (n == 4)
        return "no path after the mode";
    e->exec = p[1] == '7';
    if (!mapq_manifest_path_ok(p + 5, n - 5))
        return "bad path (relative, UTF-8, no empty, \".\" or \"..\" part)";
    e->path = mapq_xstrndup(p + 5, n - 5);
    return NULL;
}

/* Index of the entry among m's first n whose path is the first klen bytes
 * of key, or -1. */
static long
find(const struct mapq_manifest *m, size_t n, const char *key, size_t klen)
{
    size_t lo = 0, hi = n, mid;
    int c;

    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strncmp(m->entries[mid].path, key, klen);
        if (c == 0 && m->entries[mid].path[klen] != '\0')
            c = 1;
        if (c == 0)
            return (long)mid;
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return -1;
}

enum mapq_err
mapq_manifest_parse(const char *data, size_t len, struct mapq_manifest *m,
                    char *err)
{
    const char *p = data, *end = data + len, *nl, *why = NULL;
    struct mapq_manifest_entry e;
    size_t line = 0, cap = 0, i, k;
    long f = -1;
    int c;

    m->entries = NULL;
    m->n = 0;
    while (p < end) {
        line++;
        nl = memchr(p, '\n', (size_t)(end - p));
        if (nl == NULL)
            why = "the text does not end with a newline";
        else if (m->n == MAPQ_MANIFEST_FILES_MAX)
            why = "more than " STR(MAPQ_MANIFEST_FILES_MAX) " files";
        else
            why = parse_line(p, (size_t)(nl - p), &e);
        if (why != NULL)
            break;
        c = m->n > 0 ? strcmp(m->entries[m->n - 1].path, e.path) : -1;
        if (c >= 0) {
            why = c == 0 ? "duplicate path" : "path out of order (bytewise)";
            free(e.path);
            break;
        }
        if (m->n == cap) {
            cap = cap == 0 ? 64 : 2 * cap;
            m->entries = mapq_xrealloc(m->entries, cap * sizeof(*m->entries));
        }
        m->entries[m->n++] = e;
        p = nl + 1;
    }
    /* A file "a" and a file "a/b" cannot both be in one directory. */
    for (i = 0; i < m->n && why == NULL; i++) {
        for (k = 0; m->entries[i].path[k] != '\0' && f < 0; k++) {
            if (m->entries[i].path[k] == '/')
                f = find(m, i, m->entries[i].path, k);
        }
        if (f >= 0) {
            line = i + 1;
            why = "path below another that is a file";
        }
    }
    if (why == NULL)
        return MAPQ_OK;
    mapq_manifest_release(m);
    return mapq_err_set(err, MAPQ_EPROTO, "manifest line %zu: %s", line, why);
}

void
mapq_manifest_release(struct mapq_manifest *m)
{
    size_t i;

    for (i = 0; i < m->n; i++)
        free(m->entries[i].path);
    free(m->entries);
    m->entries = NULL;
    m->n = 0;
}

bool
mapq_manifest_path_ok(const char *path, size_t len)
{
    size_t i = 0, start;

    if (len == 0 || len > MAPQ_MANIFEST_PATH_MAX ||
        memchr(path, '\0', len) != NULL || memchr(path, '\n', len) != NULL ||
        mapq_type_utf8_prefix(path, len) != len)
        return false;
    while (i <= len) {
        start = i;
        while (i < len && path[i] != '/')
            i++;
        if (i == start || (i - start == 1 && path[start] == '.') ||
            (i - start == 2 && path[start] == '.' && path[start + 1] == '.'))
            return false;
        i++; /* past the '/', or past the end */
    }
    return true;
}
