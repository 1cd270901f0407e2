/*
 * mapq_http_get.h - reading file values from http:// and https:// URIs
 * (docs/ARCHITECTURE.md, "Files and directories"): read-only inputs,
 * hashed as they arrive.
 *
 * A workflow input of type file may be given as such a URI. mapq run
 * reads it once to learn its SHA-256 and size, and the reference keeps the
 * URI; an agent reads it again into the attempt's directory and refuses
 * content that hashes otherwise (the server changed it since). Nothing is
 * ever written to such a URI.
 *
 * Through libcurl: redirects followed (at most 5, to http or https only),
 * an HTTP status of 400 or more an error, a connection given 10 s and a
 * transfer that moves nothing for 30 s cut. CURL_CA_BUNDLE, when set, names
 * the certificates that https is checked against (as for the curl
 * command); otherwise the system's. Every call blocks: it is for a
 * transfer thread or a command before its loop. Nothing here logs.
 */
#ifndef MAPQ_HTTP_GET_H
#define MAPQ_HTTP_GET_H

#include <curl/curl.h>
#include <stdbool.h>
#include <stdint.h>

#include "mapq_blob.h"
#include "mapq_err.h"

/* How a request is signed: AWS Signature Version 4, for S3 (mapq_s3.h).
 * Borrowed strings. */
struct mapq_http_auth {
    const char *sigv4;   /* libcurl's CURLOPT_AWS_SIGV4: "aws:amz:REGION:s3" */
    const char *userpwd; /* "<access key id>:<secret access key>" */
    const char *token;   /* a session token (x-amz-security-token), or NULL */
};

/* Whether uri begins with http:// or https://. Borrows uri. */
bool mapq_http_get_is_url(const char *uri);

/*
 * A libcurl easy handle for url with the options of every request here
 * (above), signed with auth when not NULL, its x-amz-content-sha256 being
 * content_sha256 (hex; NULL: the empty body's): the headers it adds go to
 * *headers, which the caller frees (curl_slist_free_all()) after the
 * request, with the handle (curl_easy_cleanup()). libcurl's reason for a
 * failure is written into why (CURL_ERROR_SIZE bytes). NULL with err set
 * when libcurl cannot be set up. Borrows everything until the cleanup.
 */
CURL *mapq_http_handle(const char *url, const struct mapq_http_auth *auth,
                       const char *content_sha256, struct curl_slist **headers,
                       char *why, char *err);

/*
 * Reads url, signed with auth (NULL: not). With dest, writes the body to a new
 * file beside it (dest.tmp.<random>, mode 0644) and renames it to dest once
 * whole, and refuses a body that is not what want (not NULL) says: its sha256
 * and size (want->uri names it in messages). Without dest the body is only
 * hashed. Fills hex and *size with what arrived.
 *
 * Returns MAPQ_OK; MAPQ_ENOENT "<url>: HTTP 404" and the like for a status
 * of 400 or more; MAPQ_EPROTO "content of <uri> does not match its
 * sha256/size"; MAPQ_EIO naming the URL and libcurl's reason, or the
 * temporary file. On failure dest is untouched. Borrows everything.
 */
enum mapq_err mapq_http_get(const char *url, const struct mapq_http_auth *auth,
                            const char *dest, const struct mapq_blob_ref *want,
                            char hex[MAPQ_BLOB_HEX_LEN + 1], int64_t *size,
                            char *err);

#endif
