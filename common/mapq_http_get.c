/*
 * mapq_http_get.c - file values read from http(s):// URIs, through
 * libcurl's easy interface (see mapq_http_get.h).
 *
 * Owns the one libcurl setup of the process (curl_global_init, once) and
 * the options every read uses. A body is hashed as it arrives and written
 * to a temporary file, renamed only once it is whole and what it should
 * be. Blocking; never logs.
 */
#include "mapq_http_get.h"

#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mapq_alloc.h"
#include "mapq_hex.h"

#define CONNECT_S  10L
#define STALL_S    30L /* a transfer below 1 byte/s this long is cut */
#define REDIRECTS  5L
#define USER_AGENT "mapq"
#define RND_BYTES  8

/* One read in progress. */
struct get {
    EVP_MD_CTX *md;
    int fd;          /* the temporary file, or -1: hash only */
    const char *tmp; /* its name */
    int64_t size;    /* bytes arrived */
    int64_t cap;     /* more than this fails (want's size), or -1 */
    int werr;        /* errno of a failed write, else 0 */
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc;

static void
curl_init(void)
{
    curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

bool
mapq_http_get_is_url(const char *uri)
{
    return strncasecmp(uri, "http://", 7) == 0 ||
           strncasecmp(uri, "https://", 8) == 0;
}

/* libcurl's write callback: hashes and keeps the piece; a short count
 * stops the transfer. */
static size_t
on_body(char *p, size_t one, size_t n, void *arg)
{
    struct get *g = arg;
    size_t off = 0;
    ssize_t w;

    (void)one; /* always 1 */
    g->size += (int64_t)n;
    if (g->cap >= 0 && g->size > g->cap)
        return 0; /* longer than it should be: no use reading on */
    EVP_DigestUpdate(g->md, p, n);
    while (g->fd >= 0 && off < n) {
        w = write(g->fd, p + off, n - off);
        if (w < 0 && errno == EINTR)
            continue;
        if (w < 0) {
            g->werr = errno;
            return 0;
        }
        off += (size_t)w;
    }
    return n;
}

/* The SHA-256 of an empty body: a signed request without one says so. */
#define EMPTY_SHA256 \
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

CURL *
mapq_http_handle(const char *url, const struct mapq_http_auth *auth,
                 const char *content_sha256, struct curl_slist **headers,
                 char *why, char *err)
{
    const char *ca = getenv("CURL_CA_BUNDLE");
    char line[160];
    CURL *h;

    pthread_once(&curl_once, curl_init);
    if (curl_init_rc != CURLE_OK) {
        mapq_err_set(err, MAPQ_EIO, "%s: cannot set up libcurl: %s", url,
                     curl_easy_strerror(curl_init_rc));
        return NULL;
    }
    h = curl_easy_init();
    if (h == NULL) {
        mapq_err_set(err, MAPQ_EIO, "%s: cannot set up libcurl", url);
        return NULL;
    }
    why[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 1L);
    curl_easy_setopt(h, CURLOPT_MAXREDIRS, REDIRECTS);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, CONNECT_S);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, STALL_S);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L); /* threads: no SIGALRM */
    curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, why);
    if (ca != NULL && *ca != '\0')
        curl_easy_setopt(h, CURLOPT_CAINFO, ca);
    if (auth != NULL) {
        curl_easy_setopt(h, CURLOPT_AWS_SIGV4, auth->sigv4);
        curl_easy_setopt(h, CURLOPT_USERPWD, auth->userpwd);
        /* S3 asks for the body's hash, and checks the body against it. */
        snprintf(line, sizeof(line), "x-amz-content-sha256: %s",
                 content_sha256 != NULL ? content_sha256 : EMPTY_SHA256);
        *headers = curl_slist_append(*headers, line);
        if (auth->token != NULL && *auth->token != '\0') {
            char *tok = mapq_xasprintf("x-amz-security-token: %s", auth->token);

            *headers = curl_slist_append(*headers, tok);
            free(tok);
        }
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, *headers);
    }
    return h;
}

/* Runs the transfer of url into g; MAPQ_OK or an error naming url. */
static enum mapq_err
transfer(const char *url, const struct mapq_http_auth *auth, struct get *g,
         char *err)
{
    char why[CURL_ERROR_SIZE] = "";
    struct curl_slist *headers = NULL;
    enum mapq_err rc = MAPQ_OK;
    long status = 0;
    CURLcode cc;
    CURL *h;

    h = mapq_http_handle(url, auth, NULL, &headers, why, err);
    if (h == NULL)
        return MAPQ_EIO;
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, g);
    cc = curl_easy_perform(h);
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (cc == CURLE_OK && status >= 400)
        rc = mapq_err_set(err, MAPQ_ENOENT, "%s: HTTP %ld", url, status);
    else if (cc == CURLE_WRITE_ERROR && g->werr != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write '%s': %s", g->tmp,
                          strerror(g->werr));
    else if (cc == CURLE_WRITE_ERROR)
        rc = MAPQ_EPROTO; /* longer than want says: the caller's message */
    else if (cc != CURLE_OK)
        rc = mapq_err_set(err, MAPQ_EIO, "%s: %s", url,
                          why[0] != '\0' ? why : curl_easy_strerror(cc));
    curl_easy_cleanup(h);
    curl_slist_free_all(headers);
    return rc;
}

enum mapq_err
mapq_http_get(const char *url, const struct mapq_http_auth *auth,
              const char *dest, const struct mapq_blob_ref *want,
              char hex[MAPQ_BLOB_HEX_LEN + 1], int64_t *size, char *err)
{
    struct get g = {NULL, -1, NULL, 0, want != NULL ? want->size : -1, 0};
    unsigned char d[EVP_MAX_MD_SIZE], rnd[RND_BYTES];
    char rhex[2 * RND_BYTES + 1];
    unsigned int dn = 0;
    enum mapq_err rc;
    char *tmp = NULL;

    g.md = EVP_MD_CTX_new();
    mapq_assert(g.md != NULL &&
                EVP_DigestInit_ex(g.md, EVP_sha256(), NULL) == 1);
    if (dest != NULL) {
        if (RAND_bytes(rnd, sizeof(rnd)) != 1) {
            rc = mapq_err_set(err, MAPQ_EIO, "cannot draw random bytes");
            goto out;
        }
        mapq_hex_encode(rnd, sizeof(rnd), rhex);
        tmp = mapq_xasprintf("%s.tmp.%s", dest, rhex);
        g.tmp = tmp;
        g.fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC,
                    0644);
        if (g.fd < 0 || fchmod(g.fd, 0644) != 0) {
            rc = mapq_err_set(err, MAPQ_EIO, "cannot create '%s': %s", tmp,
                              strerror(errno));
            goto out;
        }
    }
    rc = transfer(url, auth, &g, err);
    mapq_assert(EVP_DigestFinal_ex(g.md, d, &dn) == 1 && dn * 2 == 64);
    mapq_hex_encode(d, dn, hex);
    *size = g.size;
    if (want != NULL && (rc == MAPQ_EPROTO ||
                         (rc == MAPQ_OK && (g.size != want->size ||
                                            strcmp(hex, want->sha256) != 0))))
        rc = mapq_err_set(err, MAPQ_EPROTO,
                          "content of %s does not match its sha256/size",
                          want->uri);
    if (g.fd >= 0 && close(g.fd) != 0 && rc == MAPQ_OK)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot write '%s': %s", tmp,
                          strerror(errno));
    g.fd = -1;
    if (rc == MAPQ_OK && dest != NULL && rename(tmp, dest) != 0)
        rc = mapq_err_set(err, MAPQ_EIO, "cannot rename '%s' to '%s': %s", tmp,
                          dest, strerror(errno));
out:
    if (g.fd >= 0)
        close(g.fd);
    if (tmp != NULL && rc != MAPQ_OK)
        unlink(tmp);
    free(tmp);
    EVP_MD_CTX_free(g.md);
    return rc;
}
