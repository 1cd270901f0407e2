/*
 * mapq_json_read.c - JSON text read by yajl as a stream of events, for
 * mapq_json_to_msgpack() (one value) and mapq_json_read_members() (an
 * object, member by member).
 *
 * Owns struct reader: it checks the text and hands each value's events to
 * a conversion (mapq_json_conv.c), which never holds more than one list
 * element as a tree, so no value is ever whole in memory unless it is no
 * list. yajl accepts more than a JSON reader should: overlong and
 * surrogate UTF-8, lone surrogate escapes (it turns them into "?"), any
 * depth, duplicate keys, any integer, a token cut short after the value.
 * Those are refused here, so that the text read is the language of
 * jansson's json_loadb() with JSON_DECODE_ANY, JSON_REJECT_DUPLICATES and
 * JSON_ALLOW_NUL, in jansson's words where it has some. yajl gets the
 * whole text in one call, so the end of the token an event comes from is
 * yajl_get_bytes_consumed(), and lines and columns are counted in the
 * text, forward only. Pure: no I/O, no logging.
 */
#include "mapq_json.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yajl/yajl_parse.h>

#include "mapq_alloc.h"
#include "mapq_json_int.h"
#include "mapq_value.h"

/* jansson's parser refuses documents nested deeper. */
#define PARSE_MAX_DEPTH 2048
/* How much text is read between two ops->consumed calls. */
#define CONSUMED_STEP (4u * 1024 * 1024)

/* A token up to this long is quoted in a message, as jansson does. */
#define NEAR_MAX 20

enum rd_state {
    RD_VALUE,   /* mapq_json_to_msgpack(): every event goes to conv */
    RD_TOP,     /* mapq_json_read_members(), before the first event */
    RD_MEMBERS, /* in the object, between members */
    RD_MEMBER,  /* in a member's value: its events go to conv */
    RD_OTHER,   /* the top value is no object: only read */
    RD_END,     /* the object has ended */
};

struct reader {
    yajl_handle h;
    const char *text;
    size_t len;
    bool finishing;  /* in yajl_complete_parse(): offsets are not the text's */
    size_t depth;    /* open arrays and objects */
    size_t last_end; /* end of the last token an event came from */
    enum rd_state state;
    struct mapq_json_conv conv;
    /* a JSON error a callback found */
    size_t fail_at;
    char why[MAPQ_ERR_LEN];
    /* lines and columns, counted forward from the last place asked for */
    size_t cur_off;
    int cur_line, cur_col;
    /* text before it was reported consumed (ops->consumed) */
    size_t consumed;
    /* mapq_json_read_members() */
    const struct mapq_json_member_ops *ops;
    void *arg;
    json_t *seen;              /* the member names so far */
    struct mapq_json_member m; /* the member being read */
    char *name;                /* m.name (owned) */
};

/* Line and column of the character at off. */
static struct mapq_json_pos
pos_of(struct reader *r, size_t off)
{
    struct mapq_json_pos p;
    size_t i;

    if (off < r->cur_off) {
        r->cur_off = 0;
        r->cur_line = 1;
        r->cur_col = 0;
    }
    for (i = r->cur_off; i < off && i < r->len; i++) {
        if (r->text[i] == '\n') {
            r->cur_line++;
            r->cur_col = 0;
        } else if (((unsigned char)r->text[i] & 0xc0) != 0x80) {
            r->cur_col++; /* the first byte of a character */
        }
    }
    r->cur_off = i;
    p.line = r->cur_line;
    p.col = r->cur_col + 1;
    return p;
}

/* Offset just past the token the current event comes from. A number at
 * the very end is only known to end in yajl_complete_parse(). */
static size_t
tok_end(struct reader *r)
{
    size_t end = r->finishing ? r->len : yajl_get_bytes_consumed(r->h);

    r->last_end = end;
    return end;
}

/* Records a JSON error at off, found by a callback; returns 0, which stops
 * yajl. */
static int __attribute__((format(printf, 3, 4)))
rd_fail(struct reader *r, size_t off, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(r->why, sizeof(r->why), fmt, ap);
    va_end(ap);
    r->fail_at = off;
    return 0;
}

/* The same for the token text[start..end), which is quoted when short, as
 * jansson does: "duplicate object key near '\"a\"'". */
static int
rd_fail_near(struct reader *r, size_t start, size_t end, const char *what)
{
    int n = end - start <= NEAR_MAX ? (int)(end - start) : 0;

    return rd_fail(r, end - 1, "%s%s%.*s%s", what, n ? " near '" : "", n,
                   r->text + start, n ? "'" : "");
}

/* Offset of the quote that opens the string whose closing quote is at q:
 * the first quote before it that no odd run of backslashes escapes. */
static size_t
string_start(const char *t, size_t q)
{
    size_t i = q, bs;

    for (;;) {
        mapq_assert(i > 0); /* yajl has read an opening quote */
        i--;
        if (t[i] != '"')
            continue;
        bs = 0;
        while (bs < i && t[i - 1 - bs] == '\\')
            bs++;
        if (bs % 2 == 0)
            return i;
    }
}

/* The value of the 4 hex digits at s (yajl checked them). */
static unsigned
hex4(const char *s)
{
    unsigned v = 0;
    int i;

    for (i = 0; i < 4; i++) {
        char ch = s[i];

        v = v * 16 + (unsigned)(ch >= 'a'   ? ch - 'a' + 10
                                : ch >= 'A' ? ch - 'A' + 10
                                            : ch - '0');
    }
    return v;
}

/* Refuses a \u escape of the string token text[start..end) that is half a
 * surrogate pair alone (yajl would make it "?"), in jansson's words. */
static bool
escapes_ok(struct reader *r, size_t start, size_t end)
{
    const char *t = r->text;
    unsigned hi, lo;
    size_t i;
    char what[48];

    for (i = start + 1; i + 1 < end; i++) {
        if (t[i] != '\\')
            continue;
        i++; /* the escaped character */
        if (t[i] != 'u')
            continue;
        hi = hex4(t + i + 1);
        i += 4;
        if (hi < 0xd800 || hi > 0xdfff)
            continue;
        if (hi <= 0xdbff && i + 2 < end && t[i + 1] == '\\' &&
            t[i + 2] == 'u') {
            lo = hex4(t + i + 3);
            if (lo >= 0xdc00 && lo <= 0xdfff) {
                i += 6;
                continue;
            }
            snprintf(what, sizeof(what), "invalid Unicode '\\u%04X\\u%04X'", hi,
                     lo);
        } else {
            snprintf(what, sizeof(what), "invalid Unicode '\\u%04X'", hi);
        }
        rd_fail_near(r, start, end, what);
        return false;
    }
    return true;
}

/* Checks the string token that just ended; *start is where it begins. */
static bool
string_ok(struct reader *r, size_t *start)
{
    size_t end = tok_end(r);

    mapq_assert(!r->finishing && end > 0 && r->text[end - 1] == '"');
    *start = string_start(r->text, end - 1);
    return escapes_ok(r, *start, end);
}

/* The conversion a value event goes to: a top value that is no object is
 * only read. */
static struct mapq_json_conv *
rd_conv(struct reader *r)
{
    if (r->state == RD_TOP) {
        r->state = RD_OTHER;
        mapq_json_conv_start(&r->conv, NULL, NULL);
    }
    return &r->conv;
}

/* A member's value has ended: the caller hears how it went. */
static void
member_done(struct reader *r)
{
    struct mapq_json_conv *c = &r->conv;
    struct mapq_json_pos where;
    enum mapq_err rc;

    r->state = RD_MEMBERS;
    if (c->out == NULL)
        return; /* skipped */
    r->m.paged = c->paged;
    r->m.count = c->count;
    rc = mapq_json_conv_finish(c);
    where = pos_of(r, rc == MAPQ_OK ? c->at : c->err_at);
    r->ops->done(r->arg, &r->m, rc, rc == MAPQ_OK ? "" : c->msg, &where);
}

/* Tells the caller the text before off is read, every CONSUMED_STEP. */
static void
rd_consumed(struct reader *r, size_t off)
{
    if (r->ops == NULL || r->ops->consumed == NULL ||
        off < r->consumed + CONSUMED_STEP)
        return;
    r->consumed = off;
    r->ops->consumed(r->arg, off);
}

/* After a value event: reports a member whose value has ended. */
static int
rd_after(struct reader *r)
{
    if (r->state == RD_MEMBER && r->conv.done)
        member_done(r);
    if (!r->finishing)
        rd_consumed(r, r->last_end);
    return 1;
}

/* A page of the list a member's value is: to the caller. */
static enum mapq_err
member_page(void *arg, const char *elems, size_t len, uint32_t count, char *err)
{
    struct reader *r = arg;

    return r->ops->page(r->arg, &r->m, elems, len, count, err);
}

/* A member's key, at text[start..end): the caller says where its value
 * goes. */
static int
member_start(struct reader *r, const char *key, size_t len, size_t start,
             size_t end)
{
    const struct mapq_type *type = NULL;
    struct mapq_buf *out;
    int rc;

    if (json_object_getn(r->seen, key, len) != NULL)
        return rd_fail_near(r, start, end, "duplicate object key");
    rc = json_object_setn_new_nocheck(r->seen, key, len, json_null());
    mapq_assert(rc == 0);
    free(r->name);
    r->name = mapq_xstrndup(key, len);
    r->m.name = r->name;
    r->m.len = len;
    r->m.pos = pos_of(r, start);
    r->m.paged = false;
    r->m.count = 0;
    out = r->ops->member(r->arg, &r->m, &type);
    mapq_json_conv_start(&r->conv, type, out);
    if (out != NULL && r->ops->page != NULL && r->ops->page_len > 0)
        mapq_json_conv_pages(&r->conv, r->ops->page_len, member_page, r);
    r->state = RD_MEMBER;
    return 1;
}

static int
rd_null(void *ctx)
{
    struct reader *r = ctx;

    mapq_json_conv_scalar(rd_conv(r), json_null(), tok_end(r) - 4);
    return rd_after(r);
}

static int
rd_boolean(void *ctx, int value)
{
    struct reader *r = ctx;

    mapq_json_conv_scalar(rd_conv(r), json_boolean(value),
                          tok_end(r) - (value ? 4 : 5));
    return rd_after(r);
}

/* A number, read as jansson does: an integer unless it has a fraction or
 * an exponent, and refused when it does not fit. */
static int
rd_number(void *ctx, const char *s, size_t len)
{
    struct reader *r = ctx;
    size_t end = tok_end(r), start = end - len;
    char small[64], *num = len < sizeof(small) ? small : mapq_xmalloc(len + 1);
    bool real =
        memchr(s, '.', len) || memchr(s, 'e', len) || memchr(s, 'E', len);
    const char *bad = NULL;
    long long i = 0;
    double d = 0;

    memcpy(num, s, len);
    num[len] = '\0';
    errno = 0;
    if (!real) {
        i = strtoll(num, NULL, 10);
        if (errno == ERANGE)
            bad = i < 0 ? "too big negative integer" : "too big integer";
    } else {
        d = strtod(num, NULL);
        if (errno == ERANGE && isinf(d))
            bad = "real number overflow";
    }
    if (num != small)
        free(num);
    /* In yajl_complete_parse() s is no longer in the text, but it was
     * the text's last token. */
    if (bad != NULL)
        return rd_fail_near(r, start, end, bad);
    mapq_json_conv_scalar(rd_conv(r), real ? json_real(d) : json_integer(i),
                          start);
    return rd_after(r);
}

static int
rd_string(void *ctx, const unsigned char *s, size_t len)
{
    struct reader *r = ctx;
    size_t start;

    if (!string_ok(r, &start))
        return 0;
    /* The text is UTF-8 (checked first) and its escapes are characters, so
     * s is UTF-8; "\u0000" makes a NUL byte, which a str may hold. */
    mapq_json_conv_scalar(rd_conv(r),
                          json_stringn_nocheck((const char *)s, len), start);
    return rd_after(r);
}

static int
rd_key(void *ctx, const unsigned char *s, size_t len)
{
    struct reader *r = ctx;
    const char *key = (const char *)s;
    size_t start, end;

    if (!string_ok(r, &start))
        return 0;
    end = r->last_end;
    if (len > 0 && memchr(key, '\0', len) != NULL)
        return rd_fail_near(r, start, end,
                            "NUL byte in object key not supported");
    if (r->state == RD_MEMBERS)
        return member_start(r, key, len, start, end);
    if (!mapq_json_conv_key(&r->conv, key, len))
        return rd_fail_near(r, start, end, "duplicate object key");
    return 1;
}

/* An array or object opens: refused past jansson's depth. */
static int
rd_open(struct reader *r, bool array)
{
    size_t at = tok_end(r) - 1;

    if (++r->depth > PARSE_MAX_DEPTH)
        return rd_fail_near(r, at, at + 1, "maximum parsing depth reached");
    if (r->state == RD_TOP && !array) {
        r->state = RD_MEMBERS;
        return 1;
    }
    mapq_json_conv_open(rd_conv(r), array, at);
    return 1;
}

static int
rd_close(struct reader *r)
{
    tok_end(r);
    r->depth--;
    if (r->state == RD_MEMBERS) {
        r->state = RD_END;
        return 1;
    }
    mapq_json_conv_close(&r->conv);
    return rd_after(r);
}

static int
rd_start_map(void *ctx)
{
    return rd_open(ctx, false);
}

static int
rd_end_map(void *ctx)
{
    return rd_close(ctx);
}

static int
rd_start_array(void *ctx)
{
    return rd_open(ctx, true);
}

static int
rd_end_array(void *ctx)
{
    return rd_close(ctx);
}

static const yajl_callbacks callbacks = {
    .yajl_null = rd_null,
    .yajl_boolean = rd_boolean,
    .yajl_number = rd_number,
    .yajl_string = rd_string,
    .yajl_start_map = rd_start_map,
    .yajl_map_key = rd_key,
    .yajl_end_map = rd_end_map,
    .yajl_start_array = rd_start_array,
    .yajl_end_array = rd_end_array,
};

/* yajl allocates through mapq's allocator, which aborts on failure. */
static void *
ya_malloc(void *ctx, size_t n)
{
    (void)ctx;
    return mapq_xmalloc(n);
}

static void *
ya_realloc(void *ctx, void *p, size_t n)
{
    (void)ctx;
    return mapq_xrealloc(p, n);
}

static void
ya_free(void *ctx, void *p)
{
    (void)ctx;
    free(p);
}

static void
rd_init(struct reader *r, const char *text, size_t len, enum rd_state state)
{
    yajl_alloc_funcs afs = {ya_malloc, ya_realloc, ya_free, NULL};

    memset(r, 0, sizeof(*r));
    r->text = text != NULL ? text : "";
    r->len = text != NULL ? len : 0;
    r->state = state;
    r->cur_line = 1;
    r->h = yajl_alloc(&callbacks, &afs, r);
    mapq_assert(r->h != NULL);
}

static void
rd_release(struct reader *r)
{
    yajl_free(r->h);
    mapq_json_conv_release(&r->conv);
    json_decref(r->seen);
    free(r->name);
}

/* " near 'c'" for the character at off, a control character as \xNN. */
static void
near_char(const struct reader *r, size_t off, char *buf, size_t size)
{
    unsigned char c = (unsigned char)r->text[off];
    size_t n = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;

    if (n > r->len - off)
        n = r->len - off;

    if (c < 0x20 || c == 0x7f)
        snprintf(buf, size, " near '\\x%02x'", c);
    else
        snprintf(buf, size, " near '%.*s'", (int)n, r->text + off);
}

/* First offset at or after off that is not white space; len if none. */
static size_t
skip_space(const struct reader *r, size_t off)
{
    while (off < r->len && strchr(" \t\r\n", r->text[off]) != NULL)
        off++;
    return off;
}

/*
 * Words and place for an error yajl found. Most are found just past the
 * token at fault. "after ..." (a value followed by what cannot follow it)
 * and "trailing garbage" name the first token after the last value.
 */
static void
yajl_failure(struct reader *r, struct mapq_json_pos *pos, char *why)
{
    unsigned char *s = yajl_get_error(r->h, 0, NULL, 0);
    const char *msg = (const char *)s, *colon = strstr(msg, ": ");
    size_t off = r->finishing ? r->len : yajl_get_bytes_consumed(r->h), n;
    char near[16] = "";

    if (colon != NULL)
        msg = colon + 2; /* past "parse error" or "lexical error" */
    n = strcspn(msg, "\n");
    if (n > 0 && msg[n - 1] == '.')
        n--;
    if (r->finishing && n == 13 && strncmp(msg, "premature EOF", n) == 0) {
        *pos = pos_of(r, r->len > 0 ? r->len - 1 : 0);
        mapq_err_set(why, MAPQ_EINVAL, "premature end of input");
        yajl_free_error(r->h, s);
        return;
    }
    if (n == 16 && strncmp(msg, "trailing garbage", n) == 0) {
        msg = "end of input expected"; /* after the value */
        n = strlen(msg);
        off = skip_space(r, r->last_end);
    } else if (strncmp(msg, "after ", 6) == 0) {
        off = skip_space(r, r->last_end);
    } else {
        off = off > 0 ? off - 1 : 0;
    }
    if (off >= r->len)
        off = r->len > 0 ? r->len - 1 : 0;
    if (off < r->len)
        near_char(r, off, near, sizeof(near));
    *pos = pos_of(r, off);
    mapq_err_set(why, MAPQ_EINVAL, "%.*s%s", (int)n, msg, near);
    yajl_free_error(r->h, s);
}

/*
 * Runs yajl over the text: MAPQ_OK, or MAPQ_EINVAL with the reason in why
 * and its place in *pos. The text is checked to be UTF-8 first (yajl's own
 * check lets overlong forms and surrogates through), and yajl reads only
 * the valid part, so that an error before the bad byte is the one told.
 */
/* The length of the text's valid UTF-8 prefix, read CONSUMED_STEP at a
 * time (a character cut by a step's end is read with the next). */
static size_t
utf8_good(struct reader *r)
{
    size_t off = 0, step, good;

    while (off < r->len) {
        step = r->len - off < CONSUMED_STEP ? r->len - off : CONSUMED_STEP;
        good = mapq_type_utf8_prefix(r->text + off, step);
        if (good < step && (off + step == r->len || good + 4 <= step)) {
            off += good;
            break;
        }
        off += good;
        rd_consumed(r, off);
    }
    /* The parse reads the text again from its start. */
    r->consumed = 0;
    return off;
}

static enum mapq_err
rd_run(struct reader *r, struct mapq_json_pos *pos, char *why)
{
    size_t good = utf8_good(r), tail;
    char near[16];
    yajl_status st;

    st = yajl_parse(r->h, (const unsigned char *)r->text, good);
    if (st == yajl_status_ok && good == r->len) {
        r->finishing = true;
        st = yajl_complete_parse(r->h);
    }
    if (st == yajl_status_client_canceled) {
        *pos = pos_of(r, r->fail_at);
        return mapq_err_set(why, MAPQ_EINVAL, "%s", r->why);
    }
    if (st != yajl_status_ok) {
        yajl_failure(r, pos, why);
        return MAPQ_EINVAL;
    }
    /* yajl lets a token cut short after the value through ("1 \"ab"). */
    tail = skip_space(r, r->last_end);
    if (good == r->len && tail < r->len) {
        near_char(r, tail, near, sizeof(near));
        *pos = pos_of(r, tail);
        return mapq_err_set(why, MAPQ_EINVAL, "end of input expected%s", near);
    }
    if (good < r->len) {
        *pos = pos_of(r, good);
        return mapq_err_set(
            why, MAPQ_EINVAL,
            "text is not valid UTF-8: unable to decode byte 0x%02x",
            (unsigned char)r->text[good]);
    }
    return MAPQ_OK;
}

enum mapq_err
mapq_json_to_msgpack(const char *text, size_t len, const struct mapq_type *type,
                     struct mapq_buf *out, char *err)
{
    struct reader r;
    struct mapq_json_pos pos;
    char why[MAPQ_ERR_LEN];
    enum mapq_err rc;

    rd_init(&r, text, len, RD_VALUE);
    mapq_json_conv_start(&r.conv, type, out);
    rc = rd_run(&r, &pos, why);
    if (rc != MAPQ_OK) {
        mapq_json_conv_abort(&r.conv);
        mapq_err_set(err, rc, "invalid JSON at line %d, column %d: %s",
                     pos.line, pos.col, why);
    } else {
        rc = mapq_json_conv_finish(&r.conv);
        if (rc != MAPQ_OK)
            mapq_err_set(err, rc, "%s", r.conv.msg);
    }
    rd_release(&r);
    return rc;
}

/* A reader of members (state RD_TOP, or RD_MEMBERS for one value). */
static void
rd_init_members(struct reader *r, const char *text, size_t len,
                enum rd_state state, const struct mapq_json_member_ops *ops,
                void *arg)
{
    rd_init(r, text, len, state);
    r->ops = ops;
    r->arg = arg;
    r->seen = json_object();
    mapq_assert(r->seen != NULL);
}

enum mapq_err
mapq_json_read_members(const char *text, size_t len,
                       const struct mapq_json_member_ops *ops, void *arg,
                       struct mapq_json_pos *pos, char *err)
{
    struct reader r;
    enum mapq_err rc;

    rd_init_members(&r, text, len, RD_TOP, ops, arg);
    rc = rd_run(&r, pos, err);
    if (rc != MAPQ_OK && r.state == RD_MEMBER) {
        mapq_json_conv_abort(&r.conv);
    } else if (rc == MAPQ_OK && r.state == RD_OTHER) {
        *pos = pos_of(&r, r.conv.at);
        rc = mapq_err_set(err, MAPQ_ETYPE, "not a JSON object");
    }
    rd_release(&r);
    return rc;
}

enum mapq_err
mapq_json_read_value(const char *text, size_t len, const char *name,
                     const struct mapq_json_member_ops *ops, void *arg,
                     struct mapq_json_pos *pos, char *err)
{
    struct reader r;
    enum mapq_err rc;

    /* As if the text were the value of the one member of an object. */
    rd_init_members(&r, text, len, RD_MEMBERS, ops, arg);
    member_start(&r, name, strlen(name), 0, 0);
    rc = rd_run(&r, pos, err);
    if (rc != MAPQ_OK && r.state == RD_MEMBER)
        mapq_json_conv_abort(&r.conv);
    rd_release(&r);
    return rc;
}
