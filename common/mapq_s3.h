/*
 * mapq_s3.h - the S3 store: blobs as objects of an S3-compatible bucket
 * (--store s3://BUCKET[/PREFIX]; docs/ARCHITECTURE.md, "Files and
 * directories", "Stores").
 *
 * A blob is the object PREFIX/sha256/<hex> of BUCKET, named by the URI
 * "s3://BUCKET/PREFIX/sha256/<hex>#<name>", the fragment keeping the name
 * of the file it came from. It is written by one PutObject, which S3 makes
 * whole or absent, with the content's SHA-256 in x-amz-content-sha256 (S3
 * refuses a body that hashes otherwise), and skipped when HeadObject finds
 * it; it is read by GetObject, every byte hashed and checked.
 *
 * Requests are signed with AWS Signature Version 4 through libcurl, from
 * the environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and
 * AWS_SESSION_TOKEN when set), the region from AWS_REGION or
 * AWS_DEFAULT_REGION (us-east-1), the endpoint from MAPQ_S3_ENDPOINT (e.g.
 * http://127.0.0.1:9000 for a server of one's own; default
 * https://s3.REGION.amazonaws.com), addressed path-style
 * (ENDPOINT/BUCKET/KEY). Every call blocks: it is for a transfer thread or
 * a command before its loop. Nothing here logs.
 */
#ifndef MAPQ_S3_H
#define MAPQ_S3_H

#include <stdbool.h>

#include "mapq_blob.h"
#include "mapq_err.h"
#include "mapq_store.h"

/* Whether uri begins with s3://. Borrows uri. */
bool mapq_s3_is_uri(const char *uri);

/*
 * Stores the regular file at path in st (an S3 store) and fills ref; its
 * URI keeps name when usable. The file is hashed first and nothing is
 * sent when the object exists; otherwise it is read again as it is sent,
 * and an object whose upload hashed otherwise (the file changed) is
 * deleted and refused.
 *
 * Returns MAPQ_OK; what mapq_blob_hash_file() returns for path; MAPQ_EINVAL
 * "no S3 credentials..." when the environment has none; MAPQ_EIO naming
 * the object's URL and the reason (an HTTP status, libcurl's words), or
 * "'<path>' changed while read". Borrows everything.
 */
enum mapq_err mapq_s3_put(const struct mapq_store *st, const char *path,
                          const char *name, struct mapq_blob_ref *ref,
                          char *err);

/*
 * Writes the object ref names (ref->uri an s3:// URI) to dest, as
 * mapq_http_get() writes a body: through a temporary file, checked against
 * ref's sha256 and size. Which buckets may be read is the caller's to
 * decide. Returns what mapq_http_get() returns, MAPQ_EINVAL for a URI
 * that is no object of a bucket, or for no credentials. Borrows everything.
 */
enum mapq_err mapq_s3_get(const struct mapq_blob_ref *ref, const char *dest,
                          char *err);

#endif
