/* eventbridge.h: EventBridge PutEvents (AWS JSON 1.1, X-Amz-Target AWSEvents.PutEvents): batches, request body, response, and the one way to send them. */
#pragma once

#include "aws/awserror.h"
#include "aws/client.h"
#include "util.h"

#define EVENTBRIDGE_SERVICE           "events" /* the signing name */
#define EVENTBRIDGE_CONTENT_TYPE      "application/x-amz-json-1.1"
#define EVENTBRIDGE_TARGET_PUT_EVENTS "AWSEvents.PutEvents"

#define EVENTBRIDGE_MAX_ENTRIES       10
#define EVENTBRIDGE_MAX_REQUEST_BYTES (256 * 1024) /* PutEvents' limit on the summed entry sizes */
#define EVENTBRIDGE_TIME_SIZE         14           /* what Time counts for, whatever its value */

/* One event to send. All strings are borrowed for the duration of the call only. */
typedef struct EventBridgeEntry {
        const char *source;      /* required, e.g. "heald" */
        const char *detail_type; /* required */
        const char *detail;      /* JSON object text, or NULL for none */
        const char *event_bus;   /* name or ARN; NULL: the account's default bus */
        const char *resource;    /* e.g. the instance ARN; NULL: no Resources */
        usec_t time;             /* when it happened, usec since the epoch; 0: omit (EventBridge uses its receive time) */
} EventBridgeEntry;

/* The size EventBridge charges for an entry ("Calculating Amazon EventBridge PutEvents event
 * entry size"): 14 for Time if present, plus the UTF-8 byte lengths of Source, DetailType,
 * Detail and each resource. EventBusName does not count. */
size_t eventbridge_entry_size(const EventBridgeEntry *e);

typedef struct EventBridgeBatch EventBridgeBatch;

/* A batch accepts up to EVENTBRIDGE_MAX_ENTRIES whose summed entry sizes are at most
 * max_request_bytes (pass EVENTBRIDGE_MAX_REQUEST_BYTES, or less to be conservative).
 * Caller frees with eventbridge_batch_free(). */
int eventbridge_batch_new(size_t max_request_bytes, EventBridgeBatch **ret);
EventBridgeBatch *eventbridge_batch_free(EventBridgeBatch *b);
DEFINE_TRIVIAL_CLEANUP_FUNC(EventBridgeBatch *, eventbridge_batch_free);

/* Add a copy of the entry. Returns 0; -E2BIG: it does not fit this batch (send the batch,
 * then add it to a new one); -EMSGSIZE: it can never fit any batch; -EINVAL: missing
 * source/detail type, or detail is not a JSON object; -EILSEQ: a string is not valid UTF-8
 * (EventBridge would reject the whole request); -ENOMEM. Entries keep the order added. */
int eventbridge_batch_add(EventBridgeBatch *b, const EventBridgeEntry *e);
size_t eventbridge_batch_count(const EventBridgeBatch *b);
size_t eventbridge_batch_size(const EventBridgeBatch *b); /* summed entry sizes */

/* The JSON request body {"Entries":[...]}. *ret_body is NUL-terminated, caller frees.
 * -ENODATA for an empty batch. */
int eventbridge_batch_body(const EventBridgeBatch *b, char **ret_body, size_t *ret_len);

typedef enum EventBridgeEntryStatus {
        EVENTBRIDGE_ENTRY_OK,
        EVENTBRIDGE_ENTRY_RETRY,    /* transient (throttling, internal failure, unknown code): send again later */
        EVENTBRIDGE_ENTRY_REFUSED,  /* not permitted (AccessDenied, NotAuthorized*): an operator must act, then it succeeds */
        EVENTBRIDGE_ENTRY_REJECTED, /* malformed (a known AWS code): sending it again cannot succeed */
} EventBridgeEntryStatus;

typedef struct EventBridgeEntryResult {
        EventBridgeEntryStatus status;
        char error_code[AWS_ERROR_CODE_MAX];       /* "" when OK; escaped, safe to log */
        char error_message[AWS_ERROR_MESSAGE_MAX]; /* "" when OK; escaped, safe to log */
} EventBridgeEntryResult;

/* Parse the body of a 200 PutEvents response for a request of n_sent entries (1..10):
 * results[i] (caller's array of n_sent) says what became of entry i. Returns 0; -EBADMSG
 * when the body is not a PutEvents response, Entries does not have n_sent items, an item
 * has neither EventId nor ErrorCode, or FailedEntryCount disagrees with the items; -EINVAL
 * for a bad n_sent. On failure results is untouched and *ret_error (if ret_error is not
 * NULL; caller frees) says what is wrong. */
int eventbridge_parse_response(const char *body, size_t len, size_t n_sent, EventBridgeEntryResult *results,
                               char **ret_error);

/* Where PutEvents requests go. Borrowed for the call only. */
typedef struct EventBridgeTarget {
        const char *endpoint; /* "https://events.REGION.amazonaws.com" or an override */
        const char *region;
        usec_t timeout;
        size_t max_request_bytes; /* as for eventbridge_batch_new() */
} EventBridgeTarget;

/* Send a PutEvents request body (eventbridge_batch_body()) through aws/client.c; done runs
 * as for aws_call_start(), whose errors this returns (-ENOKEY: no credentials yet). */
int eventbridge_put(AwsClient *aws, const EventBridgeTarget *target, const char *body, size_t body_len, aws_done_fn done,
                    void *userdata, AwsCall **ret);
/* Send one entry in a request of its own (heald send-event, Events Dropped); also the errors
 * of eventbridge_batch_add() for it. */
int eventbridge_put_one(AwsClient *aws, const EventBridgeTarget *target, const EventBridgeEntry *e, aws_done_fn done,
                        void *userdata, AwsCall **ret);
