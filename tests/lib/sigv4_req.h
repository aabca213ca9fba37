/* sigv4_req.h: parse the raw HTTP/1.1 requests (.req files) of the AWS SigV4 test suite. */
#pragma once

#include <stddef.h>

#include "aws/sigv4.h"
#include "util.h"

/* A parsed .req file. Owns every string; `request` points into them and stays valid until
 * sigv4_req_free(). */
typedef struct SigV4Req {
        SigV4Request request;
        char *method, *path, *query;    /* query NULL when the target has no '?' */
        SigV4Header *headers;           /* names/values owned here */
        char *body;
        size_t body_len;
} SigV4Req;

/* Parse data[0..len). The request line is split at the first and the last space (the path may
 * hold raw spaces); header lines are "Name:value"; lines starting with a space or tab continue
 * the previous value (obsolete folding, joined with one space); a blank line starts the body.
 * LF or CRLF line ends. Returns 0, -EINVAL with *ret_error set (caller frees; may be NULL), or
 * -ENOMEM. Caller frees *ret with sigv4_req_free(). */
int sigv4_req_parse(const char *data, size_t len, SigV4Req **ret, char **ret_error);
SigV4Req *sigv4_req_free(SigV4Req *r);
DEFINE_TRIVIAL_CLEANUP_FUNC(SigV4Req *, sigv4_req_free);

/* The value of the first header called name (case-insensitive), or NULL. Borrowed from r. */
const char *sigv4_req_header(const SigV4Req *r, const char *name);
