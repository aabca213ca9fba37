/* sqs.c: Amazon SQS over AWS JSON 1.0 (X-Amz-Target AmazonSQS.<Operation>): request bodies, ReceiveMessage answers, queue URL templates. */
#include "aws/sqs.h"

#include <limits.h>
#include <strings.h>

#include <openssl/evp.h>

#include "codec.h"

static int body_print(cJSON *root, char **ret) {
        char *s = cJSON_PrintUnformatted(root);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static int body_new(const char *queue_url, cJSON **ret) {
        if (isempty(queue_url))
                return -EINVAL;

        _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
        if (!root || !cJSON_AddStringToObject(root, "QueueUrl", queue_url))
                return -ENOMEM;
        *ret = TAKE_PTR(root);
        return 0;
}

static int add_string_array(cJSON *root, const char *name, const char *const *items, size_t n) {
        cJSON *array = cJSON_CreateStringArray(items, (int) n);
        if (!array || !cJSON_AddItemToObject(root, name, array)) {
                cJSON_Delete(array);
                return -ENOMEM;
        }
        return 0;
}

int sqs_receive_body(const char *queue_url, unsigned max_messages, unsigned wait_time_s, unsigned visibility_timeout_s,
                     char **ret) {
        static const char *const system_attributes[] = { "ApproximateReceiveCount", "SentTimestamp", "SenderId" };
        static const char *const all[] = { "All" };
        _cleanup_cjson_ cJSON *root = NULL;

        if (max_messages < 1 || max_messages > SQS_MAX_MESSAGES || wait_time_s > SQS_MAX_WAIT_TIME_S ||
            visibility_timeout_s > SQS_MAX_VISIBILITY_TIMEOUT_S)
                return -EINVAL;
        int r = body_new(queue_url, &root);
        if (r < 0)
                return r;

        if (!cJSON_AddNumberToObject(root, "MaxNumberOfMessages", max_messages) ||
            !cJSON_AddNumberToObject(root, "WaitTimeSeconds", wait_time_s) ||
            !cJSON_AddNumberToObject(root, "VisibilityTimeout", visibility_timeout_s))
                return -ENOMEM;
        r = add_string_array(root, "MessageSystemAttributeNames", system_attributes, ELEMENTSOF(system_attributes));
        if (r < 0)
                return r;
        r = add_string_array(root, "MessageAttributeNames", all, ELEMENTSOF(all));
        if (r < 0)
                return r;
        return body_print(root, ret);
}

/* What a message brings beside its escaped body and attributes: MessageId, ReceiptHandle (up
 * to a few KiB), MD5OfBody, MD5OfMessageAttributes, the system attributes asked for, the
 * JSON syntax around up to 10 attributes. Generous, as a cut answer fails the whole poll. */
#define SQS_MESSAGE_OVERHEAD_BYTES (16 * 1024)
#define SQS_ANSWER_OVERHEAD_BYTES  (4 * 1024)

size_t sqs_receive_answer_max(unsigned max_messages) {
        return (size_t) max_messages * (3 * (size_t) SQS_MAX_MESSAGE_BYTES + SQS_MESSAGE_OVERHEAD_BYTES) +
               SQS_ANSWER_OVERHEAD_BYTES;
}

static int receipt_body_new(const char *queue_url, const char *receipt_handle, cJSON **ret) {
        _cleanup_cjson_ cJSON *root = NULL;

        if (isempty(receipt_handle))
                return -EINVAL;
        int r = body_new(queue_url, &root);
        if (r < 0)
                return r;
        if (!cJSON_AddStringToObject(root, "ReceiptHandle", receipt_handle))
                return -ENOMEM;
        *ret = TAKE_PTR(root);
        return 0;
}

int sqs_delete_body(const char *queue_url, const char *receipt_handle, char **ret) {
        _cleanup_cjson_ cJSON *root = NULL;

        int r = receipt_body_new(queue_url, receipt_handle, &root);
        if (r < 0)
                return r;
        return body_print(root, ret);
}

int sqs_change_visibility_body(const char *queue_url, const char *receipt_handle, unsigned timeout_s, char **ret) {
        _cleanup_cjson_ cJSON *root = NULL;

        if (timeout_s > SQS_MAX_VISIBILITY_TIMEOUT_S)
                return -EINVAL;
        int r = receipt_body_new(queue_url, receipt_handle, &root);
        if (r < 0)
                return r;
        if (!cJSON_AddNumberToObject(root, "VisibilityTimeout", timeout_s))
                return -ENOMEM;
        return body_print(root, ret);
}

static void message_done(SqsMessage *m) {
        free(m->message_id);
        free(m->receipt_handle);
        /* The body may carry a task token or other secrets. */
        if (m->body)
                secure_zero(m->body, m->body_len);
        free(m->body);
        free(m->md5_of_body);
        free(m->sender_id);
        for (size_t i = 0; i < m->n_attributes; i++) {
                free(m->attributes[i].name);
                free(m->attributes[i].data_type);
                free(m->attributes[i].string_value);
        }
        free(m->attributes);
}

SqsMessage *sqs_messages_free(SqsMessage *messages, size_t n) {
        for (size_t i = 0; messages && i < n; i++)
                message_done(&messages[i]);
        free(messages);
        return NULL;
}

/* SQS sends numeric system attributes as decimal strings. */
static int parse_decimal(const char *s, uint64_t *ret) {
        uint64_t v = 0;

        if (isempty(s))
                return -EINVAL;
        for (; *s; s++) {
                if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
                        return -EINVAL;
                v = v * 10 + (uint64_t) (*s - '0');
        }
        *ret = v;
        return 0;
}

static int dup_string(const char *s, char **ret) {
        char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        return 0;
}

/* A required non-empty string member of Messages[i]. */
static int message_string(const cJSON *item, size_t i, const char *field, char **ret, char **ret_error) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, field));
        if (!s || !*s)
                return codec_error(ret_error, -EBADMSG,
                                   "ReceiveMessage response: Messages[%zu].%s is missing or not a non-empty string", i,
                                   field);
        return dup_string(s, ret);
}

static int parse_system_attributes(const cJSON *item, size_t i, SqsMessage *m, char **ret_error) {
        const cJSON *attributes = cJSON_GetObjectItemCaseSensitive(item, "Attributes");
        uint64_t v;

        if (!attributes || cJSON_IsNull(attributes))
                return 0;
        if (!cJSON_IsObject(attributes))
                return codec_error(ret_error, -EBADMSG, "ReceiveMessage response: Messages[%zu].Attributes is not an object",
                                   i);

        const cJSON *sender = cJSON_GetObjectItemCaseSensitive(attributes, "SenderId");
        if (sender) {
                if (!cJSON_IsString(sender) || isempty(sender->valuestring))
                        return codec_error(ret_error, -EBADMSG,
                                           "ReceiveMessage response: Messages[%zu].Attributes.SenderId is not a non-empty string",
                                           i);
                if (dup_string(sender->valuestring, &m->sender_id) < 0)
                        return -ENOMEM;
        }

        const cJSON *count = cJSON_GetObjectItemCaseSensitive(attributes, "ApproximateReceiveCount");
        if (count) {
                if (parse_decimal(cJSON_GetStringValue(count), &v) < 0 || v > UINT_MAX)
                        return codec_error(ret_error, -EBADMSG,
                                           "ReceiveMessage response: Messages[%zu].Attributes.ApproximateReceiveCount is not a decimal count",
                                           i);
                m->approximate_receive_count = (unsigned) v;
        }

        const cJSON *sent = cJSON_GetObjectItemCaseSensitive(attributes, "SentTimestamp");
        if (sent) {
                if (parse_decimal(cJSON_GetStringValue(sent), &v) < 0 || v > UINT64_MAX / USEC_PER_MSEC)
                        return codec_error(ret_error, -EBADMSG,
                                           "ReceiveMessage response: Messages[%zu].Attributes.SentTimestamp is not epoch milliseconds",
                                           i);
                m->sent_timestamp = v * USEC_PER_MSEC;
        }
        return 0;
}

static int parse_message_attributes(const cJSON *item, size_t i, SqsMessage *m, char **ret_error) {
        const cJSON *attributes = cJSON_GetObjectItemCaseSensitive(item, "MessageAttributes");
        const cJSON *a;

        if (!attributes || cJSON_IsNull(attributes))
                return 0;
        if (!cJSON_IsObject(attributes))
                return codec_error(ret_error, -EBADMSG,
                                   "ReceiveMessage response: Messages[%zu].MessageAttributes is not an object", i);

        size_t n = (size_t) cJSON_GetArraySize(attributes);
        if (n == 0)
                return 0;
        m->attributes = calloc(n, sizeof *m->attributes);
        if (!m->attributes)
                return -ENOMEM;

        cJSON_ArrayForEach(a, attributes) {
                if (m->n_attributes >= n)
                        break;
                SqsMessageAttribute *out = &m->attributes[m->n_attributes];
                const char *data_type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(a, "DataType"));
                const cJSON *value = cJSON_GetObjectItemCaseSensitive(a, "StringValue");
                const char *string_value = cJSON_GetStringValue(value);
                char shown[64];

                if (!cJSON_IsObject(a) || isempty(a->string) || isempty(data_type) ||
                    (value && !cJSON_IsNull(value) && !cJSON_IsString(value))) {
                        codec_escape_copy(shown, sizeof shown, a->string, a->string ? strlen(a->string) : 0);
                        return codec_error(ret_error, -EBADMSG,
                                           "ReceiveMessage response: Messages[%zu].MessageAttributes.%s is not an attribute with a DataType",
                                           i, shown);
                }
                m->n_attributes++;
                if (dup_string(a->string, &out->name) < 0 || dup_string(data_type, &out->data_type) < 0 ||
                    (string_value && dup_string(string_value, &out->string_value) < 0))
                        return -ENOMEM;
        }
        return 0;
}

static int parse_message(const cJSON *item, size_t i, SqsMessage *m, char **ret_error) {
        char expected[33];
        int r;

        if (!cJSON_IsObject(item))
                return codec_error(ret_error, -EBADMSG, "ReceiveMessage response: Messages[%zu] is not an object", i);

        r = message_string(item, i, "MessageId", &m->message_id, ret_error);
        if (r < 0)
                return r;
        r = message_string(item, i, "ReceiptHandle", &m->receipt_handle, ret_error);
        if (r < 0)
                return r;

        /* SQS bodies are at least one character, but an empty one is harmless to pass on. */
        const char *body = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "Body"));
        if (!body)
                return codec_error(ret_error, -EBADMSG, "ReceiveMessage response: Messages[%zu].Body is missing or not a string",
                                   i);
        r = dup_string(body, &m->body);
        if (r < 0)
                return r;
        m->body_len = strlen(body);

        const char *md5 = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "MD5OfBody"));
        if (md5) {
                r = dup_string(md5, &m->md5_of_body);
                if (r < 0)
                        return r;
                r = codec_digest_hex(EVP_md5(), m->body, m->body_len, expected, sizeof expected);
                if (r < 0)
                        return codec_error(ret_error, r, "ReceiveMessage response: MD5 is not available to check MD5OfBody");
                m->md5_ok = strcasecmp(expected, md5) == 0;
        }

        r = parse_system_attributes(item, i, m, ret_error);
        if (r < 0)
                return r;
        return parse_message_attributes(item, i, m, ret_error);
}

int sqs_parse_receive(const char *body, size_t len, SqsMessage **ret, size_t *ret_n, char **ret_error) {
        _cleanup_(codec_json_wipe_and_deletep) cJSON *root = NULL;
        SqsMessage *messages = NULL;
        size_t n = 0;
        int r;

        if (codec_parse_json(body, len, &root) < 0 || !cJSON_IsObject(root))
                return codec_error(ret_error, -EBADMSG, "ReceiveMessage response: body is not a JSON object");

        const cJSON *list = cJSON_GetObjectItemCaseSensitive(root, "Messages");
        if (!list || cJSON_IsNull(list)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!cJSON_IsArray(list))
                return codec_error(ret_error, -EBADMSG, "ReceiveMessage response: Messages is not an array");

        size_t n_items = (size_t) cJSON_GetArraySize(list);
        if (n_items > 0) {
                messages = calloc(n_items, sizeof *messages);
                if (!messages)
                        return -ENOMEM;
        }

        const cJSON *item;
        cJSON_ArrayForEach(item, list) {
                if (n >= n_items)
                        break;
                r = parse_message(item, n, &messages[n], ret_error);
                n++; /* a half-parsed message is freed with the others */
                if (r < 0) {
                        sqs_messages_free(messages, n);
                        return r;
                }
        }

        *ret = messages;
        *ret_n = n;
        return 0;
}

static int expand_value(const char *name, size_t name_len, const char *instance_id, const char *region,
                        const char *account_id, const char **ret) {
        static const char *const names[] = { "instance_id", "region", "account_id" };
        const char *values[] = { instance_id, region, account_id };

        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strlen(names[i]) == name_len && memcmp(names[i], name, name_len) == 0) {
                        if (isempty(values[i]))
                                return -ENODATA;
                        *ret = values[i];
                        return 0;
                }
        return -EINVAL;
}

int sqs_queue_url_expand(const char *template, const char *instance_id, const char *region, const char *account_id,
                         char **ret) {
        if (!template)
                return -EINVAL;

        /* Two passes over the same walk: measure, then fill. */
        _cleanup_free_ char *out = NULL;
        for (int pass = 0; pass < 2; pass++) {
                size_t n = 0;
                for (const char *p = template; *p;) {
                        const char *piece = p;
                        size_t piece_len = 1;

                        if (*p == '}')
                                return -EINVAL;
                        if (*p == '{') {
                                const char *close = strchr(p + 1, '}');
                                const char *open = strchr(p + 1, '{');
                                if (!close || (open && open < close))
                                        return -EINVAL;
                                int r = expand_value(p + 1, (size_t) (close - p - 1), instance_id, region, account_id,
                                                     &piece);
                                if (r < 0)
                                        return r;
                                piece_len = strlen(piece);
                                p = close + 1;
                        } else
                                p++;
                        if (out)
                                memcpy(out + n, piece, piece_len);
                        n += piece_len;
                }
                if (out) {
                        out[n] = '\0';
                        break;
                }
                out = malloc(n + 1);
                if (!out)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(out);
        return 0;
}
