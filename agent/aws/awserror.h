/* awserror.h: turn a non-2xx AWS response into a code, a message, a class (what to do) and a hint. */
#pragma once

#include "util.h"

typedef enum AwsErrorClass {
        AWS_ERROR_TRANSIENT,  /* throttling, 5xx, unknown: retry with backoff */
        AWS_ERROR_CLOCK_SKEW, /* the signature's time is off: correct the clock offset, retry */
        AWS_ERROR_AUTH,       /* credentials, permissions or a missing bus/queue: an operator must act */
        AWS_ERROR_CLIENT,     /* AWS said (with a known code) the request is invalid: sending it again cannot succeed */
} AwsErrorClass;

#define AWS_ERROR_CODE_MAX    64
#define AWS_ERROR_MESSAGE_MAX 256

typedef struct AwsError {
        long http_status;
        AwsErrorClass error_class;
        char code[AWS_ERROR_CODE_MAX];       /* e.g. "AccessDeniedException"; "HTTP503" when none was sent */
        char message[AWS_ERROR_MESSAGE_MAX]; /* escaped printable ASCII, safe to log; may be "" */
} AwsError;

/* Parse an error response. error_type_header: the x-amzn-ErrorType header value or NULL.
 * Understands AWS JSON 1.0/1.1 bodies ({"__type": "ns#Code", "message": ...}, also "code",
 * "Message"), Query/XML bodies (<ErrorResponse><Error><Code>, <Response><Errors><Error>,
 * moto's auth failures) and anything else (the code becomes "HTTP<status>" and the message
 * the start of the body). body need not be NUL-terminated. Never fails. */
void aws_error_parse(long http_status, const char *error_type_header, const char *body, size_t body_len,
                     AwsError *ret);

/* Classify an error code (with its message, for "Signature expired") and HTTP status.
 * Only a known AWS code is ever CLIENT; an unknown code is AUTH with HTTP 401 or 403 and
 * TRANSIENT otherwise (http_status 0 means unknown: a per-entry error inside a 200 response). */
AwsErrorClass aws_error_classify(long http_status, const char *code, const char *message);

/* One sentence an operator can act on. Static string, never NULL. */
const char *aws_error_hint(const AwsError *e);

/* "transient", "clock-skew", "auth", "client". Static string. */
const char *aws_error_class_to_string(AwsErrorClass c);
