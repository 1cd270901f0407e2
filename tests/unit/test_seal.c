/*
 * test_seal.c - signed messages (common/mapq_seal.c): a sealed message
 * opens with the same secret for the same kind and id, and with nothing
 * else: not unsigned, not altered by a byte, not moved to another
 * subtask, node or execution, not with another secret; the MAC is the
 * HMAC-SHA256 docs/PROTOCOL.md describes (checked against openssl's own
 * HMAC); an agent without a secret takes both forms; secret files that
 * are too short, missing or too long are refused.
 */
#include "mapq_test.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapq_buf.h"
#include "mapq_seal.h"

#define SECRET "0123456789abcdef-secret"

struct sealfx {
    char dir[64];
    char path[128];
    struct mapq_seal *seal;
    struct mapq_buf out;
};

/* Writes text to the fixture's secret file. */
static void
write_secret(struct sealfx *f, const char *text)
{
    FILE *fp = fopen(f->path, "w");

    assert_non_null(fp);
    fputs(text, fp);
    fclose(fp);
}

static int
setup(void **state)
{
    struct sealfx *f = calloc(1, sizeof(*f));
    char err[MAPQ_ERR_LEN];

    if (f == NULL)
        return -1;
    snprintf(f->dir, sizeof(f->dir), "/tmp/mapq-seal-XXXXXX");
    if (mkdtemp(f->dir) == NULL)
        return -1;
    snprintf(f->path, sizeof(f->path), "%s/secret", f->dir);
    write_secret(f, SECRET "\n");
    f->seal = mapq_seal_load(f->path, err);
    mapq_buf_init(&f->out, 0);
    *state = f;
    return f->seal != NULL ? 0 : -1;
}

static int
teardown(void **state)
{
    struct sealfx *f = *state;

    mapq_seal_free(f->seal);
    mapq_buf_release(&f->out);
    unlink(f->path);
    rmdir(f->dir);
    free(f);
    return 0;
}

/* Opens out for kind and id with seal; the payload must be msg. */
static enum mapq_err
open_as(const struct mapq_seal *seal, const struct mapq_buf *out,
        const char *kind, const char *id, const char *msg)
{
    char err[MAPQ_ERR_LEN];
    const char *p;
    size_t n;
    enum mapq_err rc =
        mapq_seal_open(seal, kind, id, out->data, out->len, &p, &n, err);

    if (rc == MAPQ_OK) {
        assert_int_equal(n, strlen(msg));
        assert_memory_equal(p, msg, n);
    } else {
        assert_non_null(strstr(err, kind));
    }
    return rc;
}

static void
test_seal_opens_only_where_it_was_made(void **state)
{
    struct sealfx *f = *state;
    char err[MAPQ_ERR_LEN];
    struct mapq_seal *other;

    mapq_seal_wrap(f->seal, "body", "0123456789ab/0/7", "payload", 7, &f->out);
    assert_int_equal(f->out.len, MAPQ_SEAL_HEAD_LEN + 7);
    assert_int_equal(
        open_as(f->seal, &f->out, "body", "0123456789ab/0/7", "payload"),
        MAPQ_OK);
    /* Moved to another element, node or execution, or read as a spec. */
    assert_int_equal(
        open_as(f->seal, &f->out, "body", "0123456789ab/0/8", "payload"),
        MAPQ_ESEAL);
    assert_int_equal(
        open_as(f->seal, &f->out, "body", "0123456789ab/1/7", "payload"),
        MAPQ_ESEAL);
    assert_int_equal(
        open_as(f->seal, &f->out, "body", "ba9876543210/0/7", "payload"),
        MAPQ_ESEAL);
    assert_int_equal(
        open_as(f->seal, &f->out, "spec", "0123456789ab/0/7", "payload"),
        MAPQ_ESEAL);
    /* One byte altered, in the message or in the MAC. */
    f->out.data[f->out.len - 1] ^= 1;
    assert_int_equal(
        open_as(f->seal, &f->out, "body", "0123456789ab/0/7", "payload"),
        MAPQ_ESEAL);
    f->out.data[f->out.len - 1] ^= 1;
    f->out.data[5] ^= 0x40;
    assert_int_equal(
        open_as(f->seal, &f->out, "body", "0123456789ab/0/7", "payload"),
        MAPQ_ESEAL);
    f->out.data[5] ^= 0x40;
    /* Another secret. */
    write_secret(f, "another secret, long enough");
    other = mapq_seal_load(f->path, err);
    assert_non_null(other);
    assert_int_equal(
        open_as(other, &f->out, "body", "0123456789ab/0/7", "payload"),
        MAPQ_ESEAL);
    mapq_seal_free(other);
}

static void
test_seal_unsigned_is_refused_and_no_secret_takes_both(void **state)
{
    struct sealfx *f = *state;
    struct mapq_buf plain = MAPQ_BUF_INIT;

    mapq_buf_append(&plain, "\x81\xa1i\x01", 4);
    assert_int_equal(open_as(f->seal, &plain, "body", "e/0/0", "\x81\xa1i\x01"),
                     MAPQ_ESEAL);
    /* Without a secret: an unsealed message as it is, a sealed one with
     * its seal skipped. */
    assert_int_equal(open_as(NULL, &plain, "body", "e/0/0", "\x81\xa1i\x01"),
                     MAPQ_OK);
    mapq_seal_wrap(f->seal, "spec", "e/0", "spec", 4, &f->out);
    assert_int_equal(open_as(NULL, &f->out, "spec", "e/0", "spec"), MAPQ_OK);
    mapq_buf_release(&plain);
}

/* The MAC is HMAC-SHA256(secret, "mapq1 KIND ID\n" MESSAGE), as
 * docs/PROTOCOL.md says, after the two bytes c4 20. */
static void
test_seal_is_the_documented_hmac(void **state)
{
    struct sealfx *f = *state;
    static const char input[] = "mapq1 spec 0123456789ab/3\nhello";
    unsigned char want[32];
    unsigned int n = 0;

    mapq_seal_wrap(f->seal, "spec", "0123456789ab/3", "hello", 5, &f->out);
    HMAC(EVP_sha256(), SECRET, (int)strlen(SECRET),
         (const unsigned char *)input, strlen(input), want, &n);
    assert_int_equal(n, 32);
    assert_int_equal((unsigned char)f->out.data[0], 0xc4);
    assert_int_equal((unsigned char)f->out.data[1], 32);
    assert_memory_equal(f->out.data + 2, want, 32);
    assert_memory_equal(f->out.data + MAPQ_SEAL_HEAD_LEN, "hello", 5);
}

static void
test_seal_secret_files_refused(void **state)
{
    struct sealfx *f = *state;
    char err[MAPQ_ERR_LEN], big[5000];

    write_secret(f, "too short\n");
    assert_null(mapq_seal_load(f->path, err));
    assert_non_null(strstr(err, "at least 16"));
    memset(big, 'x', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    write_secret(f, big);
    assert_null(mapq_seal_load(f->path, err));
    assert_non_null(strstr(err, "secret file"));
    assert_null(mapq_seal_load("/nonexistent/secret", err));
    assert_non_null(strstr(err, "/nonexistent/secret"));
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_seal_opens_only_where_it_was_made),
        T(test_seal_unsigned_is_refused_and_no_secret_takes_both),
        T(test_seal_is_the_documented_hmac),
        T(test_seal_secret_files_refused),
    };
#undef T

    return cmocka_run_group_tests_name("seal", tests, NULL, NULL);
}
