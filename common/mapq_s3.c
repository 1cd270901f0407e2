/*
 * mapq_s3.c - blobs as objects of an S3-compatible bucket (see mapq_s3.h).
 *
 * Owns the object layout (PREFIX/sha256/<hex>), the s3:// URIs that name
 * objects, and what the environment says about endpoint, region and
 * credentials. HeadObject, PutObject and DeleteObject are its own libcurl
 * requests; GetObject is mapq_http_get() signed. Blocking; never logs.
 */
#include "mapq_s3.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_hex.h"
#include "mapq_http_get.h"

#define S3_SCHEME "s3://"

/* What the environment says: where, and who signs. */
struct s3_env {
    char endpoint[512]; /* without a trailing '/' */
    char sigv4[96];
    char userpwd[512];
    struct mapq_http_auth auth;
};

bool
mapq_s3_is_uri(const char *uri)
{
    return strncmp(uri, S3_SCHEME, strlen(S3_SCHEME)) == 0;
}

/* A variable of the environment, or NULL when unset or empty. */
static const char *
env(const char *name)
{
    const char *v = getenv(name);

    return v != NULL && *v != '\0' ? v : NULL;
}

static enum mapq_err
env_load(struct s3_env *e, char *err)
{
    const char *key = env("AWS_ACCESS_KEY_ID");
    const char *secret = env("AWS_SECRET_ACCESS_KEY");
    const char *region = env("AWS_REGION");
    const char *endpoint = env("MAPQ_S3_ENDPOINT");
    size_t n;

    if (region == NULL)
        region = env("AWS_DEFAULT_REGION");
    if (region == NULL)
        region = "us-east-1";
    if (key == NULL || secret == NULL)
        return mapq_err_set(err, MAPQ_EINVAL,
                            "no S3 credentials: set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY");
    if (endpoint != NULL)
        snprintf(e->endpoint, sizeof(e->endpoint), "%s", endpoint);
    else
        snprintf(e->endpoint, sizeof(e->endpoint),
                 "https://s3.%s.amazonaws.com", region);
    n = strlen(e->endpoint);
    while (n > 0 && e->endpoint[n - 1] == '/')
        e->endpoint[--n] = '\0';
    snprintf(e->sigv4, sizeof(e->sigv4), "aws:amz:%s:s3", region);
    snprintf(e->userpwd, sizeof(e->userpwd), "%s:%s", key, secret);
    e->auth.sigv4 = e->sigv4;
    e->auth.userpwd = e->userpwd;
    e->auth.token = env("AWS_SESSION_TOKEN");
    return MAPQ_OK;
}

/* Bodies of answers other than GetObject's (an error's XML) are not read. */
static size_t
discard(char *p, size_t one, size_t n, void *arg)
{
    (void)p;
    (void)one;
    (void)arg;
    return n;
}

/* One request without a body to read: method "HEAD" or "DELETE"; fills
 * *status. */
static enum mapq_err
request(const struct s3_env *e, const char *url, const char *method,
        long *status, char *err)
{
    struct curl_slist *headers = NULL;
    char why[CURL_ERROR_SIZE];
    enum mapq_err rc = MAPQ_OK;
    CURLcode cc;
    CURL *h;

    h = mapq_http_handle(url, &e->auth, NULL, &headers, why, err);
    if (h == NULL)
        return MAPQ_EIO;
    if (strcmp(method, "HEAD") == 0)
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    else
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, method);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    cc = curl_easy_perform(h);
    *status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, status);
    if (cc != CURLE_OK)
        rc = mapq_err_set(err, MAPQ_EIO, "%s: %s", url,
                          why[0] != '\0' ? why : curl_easy_strerror(cc));
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return rc;
}

/* The file being sent, hashed as libcurl reads it. */
struct upload {
    int fd;
    EVP_MD_CTX *md;
    int rerr; /* errno of a failed read, else 0 */
};

static size_t
on_read(char *p, size_t one, size_t n, void *arg)
{
    struct upload *u = arg;
    ssize_t r;

    do
        r = read(u->fd, p, one * n);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        u->rerr = errno;
        return CURL_READFUNC_ABORT;
    }
    EVP_DigestUpdate(u->md, p, (size_t)r);
    return (size_t)r;
}

/* PutObject of the file at path (size bytes, hashing to hex) to url; the
 * object is deleted again when what was sent hashed otherwise. */
static enum mapq_err
put_object(const struct s3_env *e, const char *url, const char *path,
           const char *hex, int64_t size, char *err)
{
    struct upload u = {-1, NULL, 0};
    struct curl_slist *headers = NULL;
    char why[CURL_ERROR_SIZE], sent[MAPQ_BLOB_HEX_LEN + 1];
    char ignored[MAPQ_ERR_LEN];
    unsigned char d[EVP_MAX_MD_SIZE];
    enum mapq_err rc = MAPQ_OK;
    unsigned int dn = 0;
    long status = 0;
    CURLcode cc;
    CURL *h;

    u.fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (u.fd < 0)
        return mapq_err_set(err, MAPQ_EIO, "cannot open '%s': %s", path,
                            strerror(errno));
    h = mapq_http_handle(url, &e->auth, hex, &headers, why, err);
    if (h == NULL) {
        close(u.fd);
        return MAPQ_EIO;
    }
    u.md = EVP_MD_CTX_new();
    mapq_assert(u.md != NULL &&
                EVP_DigestInit_ex(u.md, EVP_sha256(), NULL) == 1);
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(h, CURLOPT_READDATA, &u);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)size);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    mapq_assert(EVP_DigestFinal_ex(u.md, d, &dn) == 1 && dn * 2 == 64);
    mapq_hex_encode(d, dn, sent);
    if (u.rerr != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot read '%s': %s", path,
                          strerror(u.rerr));
    else if (cc != CURLE_OK)
        rc = mapq_err_set(err, MAPQ_EIO, "%s: %s", url,
                          why[0] != '\0' ? why : curl_easy_strerror(cc));
    else if (status < 200 || status >= 300)
        rc = mapq_err_set(err, MAPQ_EIO, "%s: HTTP %ld", url, status);
    else if (strcmp(sent, hex) != 0) {
        /* S3 itself refuses it (the header says another hash); a server
         * that does not check may have kept it. */
        request(e, url, "DELETE", &status, ignored);
        rc = mapq_err_set(err, MAPQ_EIO, "'%s' changed while read", path);
    }
    EVP_MD_CTX_free(u.md);
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    close(u.fd);
    return rc;
}

enum mapq_err
mapq_s3_put(const struct mapq_store *st, const char *path, const char *name,
            struct mapq_blob_ref *ref, char *err)
{
    char hex[MAPQ_BLOB_HEX_LEN + 1];
    struct s3_env e;
    enum mapq_err rc;
    char *key, *url;
    int64_t size;
    long status;

    mapq_assert(st->kind == MAPQ_STORE_S3);
    rc = mapq_blob_hash_file(path, hex, &size, err);
    if (rc != MAPQ_OK)
        return rc;
    rc = env_load(&e, err);
    if (rc != MAPQ_OK)
        return rc;
    key = mapq_xasprintf("%s%ssha256/%s", st->dir, st->dir[0] ? "/" : "", hex);
    url = mapq_xasprintf("%s/%s/%s", e.endpoint, st->bucket, key);
    rc = request(&e, url, "HEAD", &status, err);
    if (rc == MAPQ_OK && status != 200 && status != 404)
        rc = mapq_err_set(err, MAPQ_EIO, "%s: HTTP %ld", url, status);
    if (rc == MAPQ_OK && status == 404)
        rc = put_object(&e, url, path, hex, size, err);
    if (rc == MAPQ_OK) {
        if (name != NULL && mapq_blob_name_ok(name))
            snprintf(ref->uri, sizeof(ref->uri), S3_SCHEME "%s/%s#%s",
                     st->bucket, key, name);
        else
            snprintf(ref->uri, sizeof(ref->uri), S3_SCHEME "%s/%s", st->bucket,
                     key);
        memcpy(ref->sha256, hex, sizeof(hex));
        ref->size = size;
    }
    free(url);
    free(key);
    return rc;
}

enum mapq_err
mapq_s3_get(const struct mapq_blob_ref *ref, const char *dest, char *err)
{
    const char *b = ref->uri + strlen(S3_SCHEME), *slash;
    char hex[MAPQ_BLOB_HEX_LEN + 1];
    struct s3_env e;
    enum mapq_err rc;
    size_t n;
    int64_t size;
    char *url;

    slash = mapq_s3_is_uri(ref->uri) ? strchr(b, '/') : NULL;
    n = strcspn(b, "#");
    /* A key is sent as it is: nothing that would be read as a query. */
    if (slash == NULL || slash == b || (size_t)(slash - b) + 1 >= n ||
        strcspn(b, "?% ") < n)
        return mapq_err_set(err, MAPQ_EINVAL, "'%s' is no object of a bucket",
                            ref->uri);
    rc = env_load(&e, err);
    if (rc != MAPQ_OK)
        return rc;
    url = mapq_xasprintf("%s/%.*s", e.endpoint, (int)n, b);
    rc = mapq_http_get(url, &e.auth, dest, ref, hex, &size, err);
    free(url);
    return rc;
}
