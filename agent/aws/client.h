/* client.h: one signed AWS JSON-protocol request (SigV4), with the clock-skew retry. */
#pragma once

#include "aws/awserror.h"

#include "aws/credentials.h"
#include "io/http.h"

typedef struct AwsClient AwsClient;
typedef struct AwsCall AwsCall;

typedef struct AwsResult {
        int error;            /* 0, or a negative errno: transport failure, -ENOKEY without credentials,
                               * -EMSGSIZE for an answer longer than the call's max_response */
        const char *transport_message; /* for error < 0 */
        long status;          /* HTTP status when error == 0 */
        const char *body;     /* response body, NUL-terminated */
        size_t body_len;
        const AwsError *aws;  /* parsed error when status is not 2xx, else NULL */
} AwsResult;

/* What a call that did not succeed ran into, for a log line or an event: the transport's
 * message (else its errno's), or AWS's "Code: message"; "" for a 2xx answer. Written into buf
 * of AWS_RESULT_DESCRIPTION_SIZE bytes; returns buf. */
#define AWS_RESULT_DESCRIPTION_SIZE (AWS_ERROR_CODE_MAX + 2 + AWS_ERROR_MESSAGE_MAX)
const char *aws_result_describe(const AwsResult *res, char buf[static AWS_RESULT_DESCRIPTION_SIZE]);

/* The result is borrowed until the callback returns; the call is freed after it. */
typedef void (*aws_done_fn)(const AwsResult *result, void *userdata);

typedef struct AwsCallSpec {
        const char *endpoint;     /* "https://events.us-east-1.amazonaws.com" or an override */
        const char *region;
        const char *service;      /* signing name: "events", "sqs", "states" */
        const char *target;       /* X-Amz-Target: "AWSEvents.PutEvents" */
        const char *content_type; /* "application/x-amz-json-1.1" */
        const char *body;
        size_t body_len;
        usec_t timeout;
        size_t max_response;      /* bytes of the answer read; 0: http.c's default (1 MiB). A longer
                                   * answer is an error (-EMSGSIZE), never passed on cut */
} AwsCallSpec;

/* http and creds are borrowed and must outlive the client. */
int aws_client_new(Http *http, Credentials *creds, AwsClient **ret);
AwsClient *aws_client_free(AwsClient *c); /* cancels calls without callbacks */
DEFINE_TRIVIAL_CLEANUP_FUNC(AwsClient *, aws_client_free);

int aws_call_start(AwsClient *c, const AwsCallSpec *spec, aws_done_fn done, void *userdata, AwsCall **ret);
void aws_call_cancel(AwsCall *call);

/* How calls ended, per signing service, since the client was made: what the metrics count. */
typedef enum AwsOutcome {
        AWS_OUTCOME_SUCCESS,
        AWS_OUTCOME_TRANSPORT_ERROR, /* no answer: connection, timeout, too long */
        AWS_OUTCOME_TRANSIENT,       /* throttling, 5xx */
        AWS_OUTCOME_CLOCK_SKEW,
        AWS_OUTCOME_AUTH,
        AWS_OUTCOME_CLIENT,
        _AWS_OUTCOME_MAX,
} AwsOutcome;

#define AWS_SERVICES_MAX 4
typedef struct AwsRequestCounts {
        char service[AWS_SERVICES_MAX][16]; /* "events", "sqs", "states"; others are not counted */
        uint64_t n[AWS_SERVICES_MAX][_AWS_OUTCOME_MAX];
        size_t n_services;
} AwsRequestCounts;

const char *aws_outcome_to_string(AwsOutcome o);
/* Borrowed while the client lives. */
const AwsRequestCounts *aws_client_request_counts(const AwsClient *c);

/* What heald adds to its wall clock when signing (server time minus ours), learnt from
 * a RequestTimeTooSkewed answer's Date header. */
int64_t aws_client_clock_offset(const AwsClient *c);

/* Split "scheme://host[:port][/path]" into the Host header value and the path ("/" when
 * none). Returns -EINVAL for anything else. Caller frees both. */
int aws_endpoint_split(const char *url, char **ret_host, char **ret_path);
