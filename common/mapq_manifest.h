/*
 * mapq_manifest.h - the content of a value of type dir: a manifest, one
 * line per regular file under the directory, sorted by path (bytewise,
 * strcmp order):
 *
 *     <sha256> <size> <mode> <path>\n
 *
 * sha256 is 64 lowercase hex digits (of the file's content); size its
 * decimal byte count (no sign, no leading zeros but "0" itself); mode
 * exactly 0755 (an execute bit was set) or 0644; path relative to the
 * directory, '/'-separated, UTF-8, of non-empty components that are not
 * "." or "..", holding no NUL and no newline, not starting or ending with
 * '/', at most MAPQ_MANIFEST_PATH_MAX bytes. A directory value holds no
 * symlinks, devices, FIFOs or sockets; empty directories are not
 * recorded; at most MAPQ_MANIFEST_FILES_MAX files. The empty manifest (no
 * files) is the empty text.
 *
 * Nothing here hashes files or logs; scanning blocks on the file system.
 */
#ifndef MAPQ_MANIFEST_H
#define MAPQ_MANIFEST_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mapq_buf.h"
#include "mapq_err.h"

#define MAPQ_MANIFEST_PATH_MAX  4096
#define MAPQ_MANIFEST_FILES_MAX 100000
#define MAPQ_MANIFEST_READ_MAX  (256LL << 20) /* a manifest read whole */

struct mapq_manifest_entry {
    char *path;      /* relative path; owned */
    char sha256[65]; /* lowercase hex, "" until known */
    int64_t size;    /* bytes; -1 until known */
    bool exec;       /* mode 0755, else 0644 */
};

/* Invariant: entries[0..n) sorted by path, paths unique; entries is NULL
 * when n == 0. Embedded: fill with mapq_manifest_scan() or
 * mapq_manifest_parse(), free with mapq_manifest_release(). */
struct mapq_manifest {
    struct mapq_manifest_entry *entries; /* owned, sorted by path */
    size_t n;
};

/*
 * Lists the regular files under the directory dir, recursively, into *m
 * (overwritten, not released first): sorted by path, sha256 "" and size -1
 * (the caller hashes them), exec from st_mode & 0111. Refuses (MAPQ_EINVAL,
 * err naming the full path, e.g. "'/x/d/link': a symlink; a dir value
 * holds only regular files and directories") symlinks, devices, FIFOs and
 * sockets, and a name holding a newline or not valid UTF-8 (shown with
 * such bytes as \xNN); more than MAPQ_MANIFEST_FILES_MAX files, or a path
 * (of a file or a directory) over MAPQ_MANIFEST_PATH_MAX bytes, is
 * MAPQ_ETOOBIG. dir itself missing: MAPQ_ENOENT "no such directory:
 * <dir>"; not a directory (a symlink to one included): MAPQ_EINVAL
 * "'<dir>' is not a directory"; unreadable: MAPQ_EIO naming the path and
 * strerror. Never follows a symlink below dir: every step is an openat()
 * (O_NOFOLLOW | O_DIRECTORY) or fstatat() relative to its parent, one
 * descriptor open per level. On failure *m is empty. Borrows dir.
 */
enum mapq_err mapq_manifest_scan(const char *dir, struct mapq_manifest *m,
                                 char *err);

/*
 * Appends m's text to out; every entry must have its sha256 and size
 * (asserted). out should be uncapped: an append refused by its cap is
 * asserted too. Borrows m.
 */
void mapq_manifest_format(const struct mapq_manifest *m, struct mapq_buf *out);

/*
 * Parses the manifest text data (len bytes) strictly into *m (overwritten,
 * not released first): every rule above, lines sorted and paths unique, no
 * path below another that is a file, the text ends with '\n' unless empty.
 * Any violation is MAPQ_EPROTO with err naming the line ("manifest line 3:
 * ..."); on failure *m is empty. Borrows data.
 */
enum mapq_err mapq_manifest_parse(const char *data, size_t len,
                                  struct mapq_manifest *m, char *err);

/* Frees the entries and empties *m (entries NULL, n 0); m->entries may be
 * NULL. */
void mapq_manifest_release(struct mapq_manifest *m);

/* Whether path (len bytes) is a valid manifest path (the rules above).
 * Borrows path. */
bool mapq_manifest_path_ok(const char *path, size_t len);

#endif
