/*
 * cli_progress.c - the live progress of mapq run, a line per node, laid
 * out to fit the terminal (mapq_cli_progress_line(), pure), and the size
 * of the terminal.
 *
 * The progress is redrawn in place by moving the cursor up a row per line:
 * a line wider than the terminal wraps onto a second row and the redraw
 * then overwrites the wrong rows. So a line gives up room in this order
 * until it fits: the bar shrinks, then the node's name is cut (its end
 * elided as ".."), then fields go, least useful first (the node's state,
 * the labels' long form, the bar, cached, failed, running); done/total
 * goes last. Whatever the width, no line is wider.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>

#include "cli.h"

#define BAR_MAX  24
#define BAR_MIN  5
#define NAME_COL 16 /* names are padded to this width, and cut to it */
#define NAME_MIN 6  /* a cut name keeps 4 characters and ".." */

enum field {
    F_RUNNING = 1 << 0,
    F_FAILED = 1 << 1,
    F_CACHED = 1 << 2,
    F_STATE = 1 << 3,
    F_BAR = 1 << 4,
    F_LONG = 1 << 5, /* "running 2  failed 0", not "r:2 f:0" */
};

/* What a line holds, widest first: the first that fits is drawn. */
static const int levels[] = {
    F_BAR | F_LONG | F_RUNNING | F_FAILED | F_CACHED | F_STATE,
    F_BAR | F_LONG | F_RUNNING | F_FAILED | F_CACHED,
    F_BAR | F_RUNNING | F_FAILED | F_CACHED,
    F_RUNNING | F_FAILED | F_CACHED,
    F_RUNNING | F_FAILED,
    F_RUNNING,
    0,
};

/* The figures of a line. */
struct figures {
    unsigned long long done, total, running, failed, cached;
};

static void
figures_of(const struct mapq_node_progress *p, struct figures *f)
{
    f->done = p->counts[MAPQ_PHASE_SUCCEEDED] + p->counts[MAPQ_PHASE_CACHED] +
              p->counts[MAPQ_PHASE_RECOVERED];
    f->failed = p->counts[MAPQ_PHASE_FAILED] + p->counts[MAPQ_PHASE_TIMED_OUT] +
                p->counts[MAPQ_PHASE_ABORTED];
    f->total = p->total;
    f->running = p->counts[MAPQ_PHASE_RUNNING];
    f->cached = p->counts[MAPQ_PHASE_CACHED];
}

/* The text after the name and bar, for the fields of level; its length. */
static int
tail_text(const struct figures *f, const char *state, int level, char *buf,
          size_t size)
{
    bool lng = level & F_LONG;
    int n;

    n = snprintf(buf, size, " %llu/%llu", f->done, f->total);
    if (level & F_RUNNING)
        n += snprintf(buf + n, size - (size_t)n,
                      lng ? "  running %llu" : " r:%llu", f->running);
    if (level & F_FAILED)
        n += snprintf(buf + n, size - (size_t)n,
                      lng ? "  failed %llu" : " f:%llu", f->failed);
    if (level & F_CACHED)
        n += snprintf(buf + n, size - (size_t)n,
                      lng ? "  cached %llu" : " c:%llu", f->cached);
    if (level & F_STATE)
        n += snprintf(buf + n, size - (size_t)n, "  %s", state);
    return n;
}

/* Writes name into a column w wide at out: padded, or its end elided as
 * ".." when it is longer. */
static void
name_column(const char *name, int w, char *out)
{
    size_t len = strlen(name);

    if (len <= (size_t)w) {
        memcpy(out, name, len);
        memset(out + len, ' ', (size_t)w - len);
    } else {
        memcpy(out, name, (size_t)w - 2);
        memcpy(out + w - 2, "..", 2);
    }
}

/*
 * The widths of the name column and bar for a line whose other parts take
 * tail columns, within width: the bar shrinks before the name is cut.
 * False when even the shortest name does not fit.
 */
static bool
fit(const char *name, int width, int tail, bool bar, int *namew, int *barw)
{
    int natural = (int)strlen(name), least, avail;

    if (natural > NAME_COL)
        natural = NAME_COL;
    least = natural < NAME_MIN ? natural : NAME_MIN;
    avail = width - tail - (bar ? 3 : 0); /* " [" and "]" */
    *barw = 0;
    if (bar && avail - NAME_COL >= BAR_MIN) {
        *namew = NAME_COL;
        *barw = avail - NAME_COL < BAR_MAX ? avail - NAME_COL : BAR_MAX;
    } else if (bar && avail - natural >= BAR_MIN) {
        *namew = natural;
        *barw = avail - natural;
    } else if (bar) {
        *namew = avail - BAR_MIN;
        *barw = BAR_MIN;
    } else {
        *namew = avail >= NAME_COL  ? NAME_COL
                 : avail >= natural ? natural
                                    : avail;
    }
    return *namew >= least && *namew >= 1;
}

size_t
mapq_cli_progress_line(const struct mapq_node_progress *p, int width, char *buf,
                       size_t size)
{
    char line[512], tail[160];
    struct figures f;
    int namew = 0, barw = 0, n, fill;
    size_t k, len;

    figures_of(p, &f);
    for (k = 0; k < sizeof(levels) / sizeof(levels[0]); k++) {
        n = tail_text(&f, p->state, levels[k], tail, sizeof(tail));
        if (fit(p->name, width, n, levels[k] & F_BAR, &namew, &barw))
            break;
    }
    if (k == sizeof(levels) / sizeof(levels[0])) {
        /* Nothing fits: the name and done/total, cut at the width. */
        n = snprintf(line, sizeof(line), "%s %llu/%llu", p->name, f.done,
                     f.total);
        len = width > 0 ? (size_t)width : 0;
        if (len > (size_t)n)
            len = (size_t)n;
    } else {
        name_column(p->name, namew, line);
        len = (size_t)namew;
        if (barw > 0) {
            fill = f.total > 0 ? (int)((f.done + f.failed) *
                                       (unsigned long long)barw / f.total)
                   : strcmp(p->state, "succeeded") == 0 ? barw
                                                        : 0;
            if (fill > barw)
                fill = barw;
            line[len++] = ' ';
            line[len++] = '[';
            memset(line + len, '#', (size_t)fill);
            memset(line + len + fill, '.', (size_t)(barw - fill));
            len += (size_t)barw;
            line[len++] = ']';
        }
        memcpy(line + len, tail, (size_t)n);
        len += (size_t)n;
    }
    if (size == 0)
        return 0;
    if (len > size - 1)
        len = size - 1;
    memcpy(buf, line, len);
    buf[len] = '\0';
    return len;
}

/* ws_col (cols) or ws_row of the terminal on fd, or 0. */
static int
winsize(int fd, bool cols)
{
    struct winsize ws;

    if (ioctl(fd, TIOCGWINSZ, &ws) != 0)
        return 0;
    return cols ? ws.ws_col : ws.ws_row;
}

/* A positive number in environment variable name, or 0. */
static int
env_size(const char *name)
{
    const char *s = getenv(name);
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return 0;
    v = strtol(s, &end, 10);
    return *end == '\0' && v > 0 && v < 100000 ? (int)v : 0;
}

int
mapq_cli_term_width(int fd)
{
    int w = winsize(fd, true);

    if (w <= 0)
        w = env_size("COLUMNS");
    return w > 0 ? w : 80;
}

int
mapq_cli_term_rows(int fd)
{
    int h = winsize(fd, false);

    if (h <= 0)
        h = env_size("LINES");
    return h > 0 ? h : 24;
}
