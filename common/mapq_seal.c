/*
 * mapq_seal.c - HMAC-SHA256 seals on what agents run (see mapq_seal.h).
 *
 * Owns the secret of a struct mapq_seal, wiped when it is freed. The MAC
 * is compared in constant time.
 */
#include "mapq_seal.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapq_alloc.h"
#include "mapq_fs.h"

/* A secret longer than this is refused: it is not a secret file. */
#define SECRET_MAX 4096

struct mapq_seal {
    unsigned char *key;
    size_t len;
    EVP_MAC *hmac; /* fetched once: a fetch per message would cost more
                      than the MAC */
};

struct mapq_seal *
mapq_seal_load(const char *path, char *err)
{
    struct mapq_buf b;
    struct mapq_seal *s = NULL;
    enum mapq_err rc;
    size_t n;

    mapq_buf_init(&b, SECRET_MAX);
    rc = mapq_fs_read_file(path, &b, err);
    if (rc == MAPQ_ENOENT || rc == MAPQ_ETOOBIG)
        mapq_err_set(err, rc, "secret file '%s': %s", path,
                     rc == MAPQ_ENOENT ? "no such file"
                                       : "over 4096 bytes: not a secret");
    if (rc != MAPQ_OK)
        goto out;
    n = b.len;
    if (n > 0 && b.data[n - 1] == '\n')
        n--;
    if (n > 0 && b.data[n - 1] == '\r')
        n--;
    if (n < MAPQ_SEAL_MIN_SECRET) {
        mapq_err_set(err, MAPQ_EINVAL,
                     "secret file '%s' holds %zu bytes: at least %d are needed "
                     "(e.g. head -c 32 /dev/urandom | base64 > FILE)",
                     path, n, MAPQ_SEAL_MIN_SECRET);
        goto out;
    }
    s = mapq_xcalloc(1, sizeof(*s));
    s->key = mapq_xmalloc(n);
    memcpy(s->key, b.data, n);
    s->len = n;
    s->hmac = EVP_MAC_fetch(NULL, "HMAC", NULL);
    mapq_assert(s->hmac != NULL);
out:
    if (b.data != NULL)
        OPENSSL_cleanse(b.data, b.cap);
    mapq_buf_release(&b);
    return s;
}

void
mapq_seal_free(struct mapq_seal *s)
{
    if (s == NULL)
        return;
    OPENSSL_cleanse(s->key, s->len);
    free(s->key);
    EVP_MAC_free(s->hmac);
    free(s);
}

/* The MAC of msg for kind and id, into mac. */
static void
mac_of(const struct mapq_seal *s, const char *kind, const char *id,
       const char *msg, size_t len, unsigned char mac[MAPQ_SEAL_MAC_LEN])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_new(s->hmac);
    OSSL_PARAM params[2];
    char digest[] = "SHA256"; /* the API takes a non-const string */
    size_t got = 0;

    mapq_assert(ctx != NULL);
    params[0] = OSSL_PARAM_construct_utf8_string("digest", digest, 0);
    params[1] = OSSL_PARAM_construct_end();
    mapq_assert(EVP_MAC_init(ctx, s->key, s->len, params) == 1);
    EVP_MAC_update(ctx, (const unsigned char *)"mapq1 ", 6);
    EVP_MAC_update(ctx, (const unsigned char *)kind, strlen(kind));
    EVP_MAC_update(ctx, (const unsigned char *)" ", 1);
    EVP_MAC_update(ctx, (const unsigned char *)id, strlen(id));
    EVP_MAC_update(ctx, (const unsigned char *)"\n", 1);
    EVP_MAC_update(ctx, (const unsigned char *)msg, len);
    mapq_assert(EVP_MAC_final(ctx, mac, &got, MAPQ_SEAL_MAC_LEN) == 1 &&
                got == MAPQ_SEAL_MAC_LEN);
    EVP_MAC_CTX_free(ctx);
}

void
mapq_seal_wrap(const struct mapq_seal *s, const char *kind, const char *id,
               const char *msg, size_t len, struct mapq_buf *out)
{
    unsigned char mac[MAPQ_SEAL_MAC_LEN];
    static const char head[2] = {(char)0xc4, MAPQ_SEAL_MAC_LEN};

    mac_of(s, kind, id, msg, len, mac);
    mapq_buf_append(out, head, sizeof(head));
    mapq_buf_append(out, (const char *)mac, sizeof(mac));
    mapq_buf_append(out, msg, len);
}

enum mapq_err
mapq_seal_open(const struct mapq_seal *s, const char *kind, const char *id,
               const char *data, size_t len, const char **msg, size_t *mlen,
               char *err)
{
    unsigned char mac[MAPQ_SEAL_MAC_LEN];
    bool sealed = len >= MAPQ_SEAL_HEAD_LEN && (unsigned char)data[0] == 0xc4 &&
                  (unsigned char)data[1] == MAPQ_SEAL_MAC_LEN;

    *msg = sealed ? data + MAPQ_SEAL_HEAD_LEN : data;
    *mlen = sealed ? len - MAPQ_SEAL_HEAD_LEN : len;
    if (s == NULL)
        return MAPQ_OK;
    if (!sealed)
        return mapq_err_set(err, MAPQ_ESEAL,
                            "the %s is not signed: this agent runs only what "
                            "a scheduler with its secret signed",
                            kind);
    mac_of(s, kind, id, *msg, *mlen, mac);
    if (CRYPTO_memcmp(mac, data + 2, MAPQ_SEAL_MAC_LEN) != 0)
        return mapq_err_set(err, MAPQ_ESEAL,
                            "the %s's signature does not match: forged, "
                            "altered, moved from another subtask or "
                            "execution, or signed with another secret",
                            kind);
    return MAPQ_OK;
}
