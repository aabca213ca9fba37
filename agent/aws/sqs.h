/* sqs.h: Amazon SQS over AWS JSON 1.0 (X-Amz-Target AmazonSQS.<Operation>): request bodies, ReceiveMessage answers, queue URL templates. */
#pragma once

#include "util.h"

#define SQS_CONTENT_TYPE           "application/x-amz-json-1.0"
#define SQS_TARGET_RECEIVE_MESSAGE "AmazonSQS.ReceiveMessage"
#define SQS_TARGET_DELETE_MESSAGE  "AmazonSQS.DeleteMessage"
#define SQS_TARGET_CHANGE_VISIBILITY "AmazonSQS.ChangeMessageVisibility"

#define SQS_MAX_MESSAGES             10    /* ReceiveMessage's MaxNumberOfMessages */
#define SQS_MAX_WAIT_TIME_S          20    /* long polling */
#define SQS_MAX_VISIBILITY_TIMEOUT_S 43200 /* 12 hours */
#define SQS_MAX_MESSAGE_BYTES        (1024 * 1024) /* body and message attributes together, since 2025 */

/* The request bodies, NUL-terminated JSON; caller frees *ret. -EINVAL for an empty queue URL
 * or receipt handle or a number out of SQS's range (max_messages 1..10, wait_time_s 0..20,
 * timeouts 0..43200), -ENOMEM.
 * ReceiveMessage asks for the system attributes ApproximateReceiveCount, SentTimestamp and
 * SenderId (as MessageSystemAttributeNames: AttributeNames is deprecated) and for every
 * message attribute. */
int sqs_receive_body(const char *queue_url, unsigned max_messages, unsigned wait_time_s, unsigned visibility_timeout_s,
                     char **ret);
int sqs_delete_body(const char *queue_url, const char *receipt_handle, char **ret);
int sqs_change_visibility_body(const char *queue_url, const char *receipt_handle, unsigned timeout_s, char **ret);

/* The most bytes a ReceiveMessage answer for max_messages (1..10) can take: every message of
 * SQS's maximum size, escaped in the worst way JSON allows for the characters SQS accepts
 * (U+0080..U+07FF as \uXXXX: 3 bytes per byte), with room for its ids, receipt handle, MD5s
 * and attribute names. About 3 MiB per message. */
size_t sqs_receive_answer_max(unsigned max_messages);

/* A message attribute (MessageAttributes). */
typedef struct SqsMessageAttribute {
        char *name;         /* owned */
        char *data_type;    /* owned: "String", "Number", "Binary" or one of them + ".custom" */
        char *string_value; /* owned; NULL for binary attributes */
} SqsMessageAttribute;

typedef struct SqsMessage {
        char *message_id;          /* owned, never NULL */
        char *receipt_handle;      /* owned, never NULL: opaque, not secret (DeleteMessage needs it) */
        char *body;                /* owned, never NULL, may hold secrets: never log it */
        size_t body_len;
        char *md5_of_body;         /* owned; NULL when SQS sent none */
        bool md5_ok;               /* MD5OfBody was sent and matches body; false: treat as corrupt */
        char *sender_id;           /* owned; NULL when not sent (SenderId) */
        unsigned approximate_receive_count; /* 0 when not sent */
        usec_t sent_timestamp;     /* usec since the epoch; 0 when not sent */
        SqsMessageAttribute *attributes; /* owned */
        size_t n_attributes;
} SqsMessage;

/* Parse the body of a 200 ReceiveMessage answer ({"Messages":[...]}; "{}" is no message).
 * On success *ret (caller frees with sqs_messages_free(); NULL when n is 0) and *ret_n.
 * A body that does not match its MD5OfBody only clears that message's md5_ok. Returns 0;
 * -EBADMSG when the answer is not a ReceiveMessage response (not JSON, a message without
 * MessageId, ReceiptHandle or Body, a malformed system attribute), with *ret_error (if
 * ret_error is not NULL; caller frees) naming what and where but never quoting a body;
 * -EIO when MD5 is unavailable (libcrypto in FIPS mode); -ENOMEM. */
int sqs_parse_receive(const char *body, size_t len, SqsMessage **ret, size_t *ret_n, char **ret_error);

/* Free an array from sqs_parse_receive(); returns NULL. NULL is fine. */
SqsMessage *sqs_messages_free(SqsMessage *messages, size_t n);

/* Fill "{instance_id}", "{region}" and "{account_id}" in a queue URL template (e.g.
 * "https://sqs.{region}.amazonaws.com/{account_id}/heald-{instance_id}"). *ret: caller frees.
 * -EINVAL for an unknown placeholder or a lone '{' or '}'; -ENODATA when the template
 * uses a value that is NULL or empty (not known yet); -ENOMEM. */
int sqs_queue_url_expand(const char *template, const char *instance_id, const char *region, const char *account_id,
                         char **ret);
