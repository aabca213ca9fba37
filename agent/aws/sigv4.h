/* sigv4.h: AWS Signature Version 4 (AWS4-HMAC-SHA256) request signing; pure, no I/O. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "util.h"

#define SIGV4_KEY_SIZE 32        /* HMAC-SHA256 output: the derived signing key */
#define SIGV4_AMZ_DATE_SIZE 17   /* "20150830T123600Z" + NUL */

/* One header to sign. Names are matched case-insensitively; a name may repeat, and the
 * values of a repeated name are joined with "," in the order given. */
typedef struct SigV4Header {
        const char *name;
        const char *value;
} SigV4Header;

/* Everything borrowed; nothing is copied past the call. */
typedef struct SigV4Request {
        const char *method;          /* "POST", used as given */
        const char *path;            /* as on the request line (already %-encoded for the wire);
                                      * normalised (".", "..", "//") and URI-encoded once more,
                                      * as SigV4 requires for every service except S3 */
        const char *query;           /* after '?'; NULL or "" for none. %XX is decoded and
                                      * re-encoded, so encoded and raw forms sign the same */
        const SigV4Header *headers;  /* every header to sign, including host and x-amz-date */
        size_t n_headers;
        const void *payload;         /* may be NULL when payload_len is 0 */
        size_t payload_len;
} SigV4Request;

typedef struct SigV4Credentials {
        const char *access_key_id;
        const char *secret_access_key;
        const char *session_token;   /* NULL for long-term keys */
} SigV4Credentials;

typedef struct SigV4Scope {
        const char *region;          /* "us-east-1" */
        const char *service;         /* "events" */
        const char *amz_date;        /* "20150830T123600Z", the same as the x-amz-date header */
} SigV4Scope;

/* A reusable signer: holds the fetched digest/MAC implementations and caches the derived
 * signing key for (secret, date, region, service), so signing many requests a day costs the
 * payload and canonical-request hashes and one HMAC each (plus a SHA-256 of the secret, which
 * notices a rotated secret without keeping a copy). Not thread-safe; one per thread. */
typedef struct SigV4Signer SigV4Signer;

/* Returns 0 or -ENOMEM/-EIO (libcrypto). Caller owns *ret and frees it with sigv4_signer_free(). */
int sigv4_signer_new(SigV4Signer **ret);
/* Wipes the cached key. Accepts NULL; returns NULL. */
SigV4Signer *sigv4_signer_free(SigV4Signer *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SigV4Signer *, sigv4_signer_free);

/* The Authorization header value for req. A session token in creds that is not already among
 * the request headers is signed as "x-amz-security-token": the caller must send that header
 * too. Returns 0, -EINVAL on a malformed request/scope, -ENOMEM, -EIO. Caller frees *ret. */
int sigv4_signer_authorization(SigV4Signer *s, const SigV4Request *req, const SigV4Credentials *creds,
                               const SigV4Scope *scope, char **ret);

/* Stateless conveniences (each builds and drops a signer; fine for tests and tools). */
int sigv4_authorization(const SigV4Request *req, const SigV4Credentials *creds, const SigV4Scope *scope,
                        char **ret);
/* The canonical request; session_token_to_add (may be NULL) is signed as x-amz-security-token
 * unless the request already has that header. Caller frees *ret. */
int sigv4_canonical_request(const SigV4Request *req, const char *session_token_to_add, char **ret);
/* The string to sign for a canonical request. Caller frees *ret. */
int sigv4_string_to_sign(const SigV4Scope *scope, const char *canonical_request, char **ret);

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4" + secret, date8), region), service), "aws4_request").
 * date8 is "YYYYMMDD". The caller should secure_zero() the key when done. */
int sigv4_derive_key(const char *secret_access_key, const char *date8, const char *region,
                     const char *service, uint8_t ret_key[static SIGV4_KEY_SIZE]);

/* Format t (UTC) as "YYYYMMDDTHHMMSSZ". Returns 0, or -ERANGE for a year outside 0..9999. */
int sigv4_format_amz_date(time_t t, char buf[static SIGV4_AMZ_DATE_SIZE]);
