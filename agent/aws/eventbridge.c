/* eventbridge.c: EventBridge PutEvents (AWS JSON 1.1, X-Amz-Target AWSEvents.PutEvents): batches, request body, response, and the one way to send them. */
#include "aws/eventbridge.h"

#include "codec.h"

struct EventBridgeBatch {
        size_t max_bytes;
        size_t bytes;
        size_t count;
        cJSON *entries; /* the request's Entries array, built as entries are added */
};

static size_t strlen_or_zero(const char *s) {
        return s ? strlen(s) : 0;
}

size_t eventbridge_entry_size(const EventBridgeEntry *e) {
        return (e->time > 0 ? EVENTBRIDGE_TIME_SIZE : 0) + strlen_or_zero(e->source) +
               strlen_or_zero(e->detail_type) + strlen_or_zero(e->detail) + strlen_or_zero(e->resource);
}

int eventbridge_batch_new(size_t max_request_bytes, EventBridgeBatch **ret) {
        if (max_request_bytes == 0)
                return -EINVAL;

        EventBridgeBatch *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->entries = cJSON_CreateArray();
        if (!b->entries) {
                free(b);
                return -ENOMEM;
        }
        b->max_bytes = max_request_bytes;
        *ret = b;
        return 0;
}

EventBridgeBatch *eventbridge_batch_free(EventBridgeBatch *b) {
        if (b) {
                cJSON_Delete(b->entries);
                free(b);
        }
        return NULL;
}

static bool string_is_utf8(const char *s) {
        return !s || codec_utf8_is_valid(s, strlen(s));
}

static int entry_validate(const EventBridgeEntry *e) {
        if (isempty(e->source) || isempty(e->detail_type))
                return -EINVAL;
        if (!string_is_utf8(e->source) || !string_is_utf8(e->detail_type) || !string_is_utf8(e->detail) ||
            !string_is_utf8(e->event_bus) || !string_is_utf8(e->resource))
                return -EILSEQ;
        if (e->detail) {
                /* A malformed Detail would come back as MalformedDetail; catch our own bug here. */
                _cleanup_cjson_ cJSON *detail = NULL;
                if (codec_parse_json(e->detail, strlen(e->detail), &detail) < 0 || !cJSON_IsObject(detail))
                        return -EINVAL;
        }
        return 0;
}

static int entry_to_json(const EventBridgeEntry *e, cJSON **ret) {
        _cleanup_cjson_ cJSON *o = cJSON_CreateObject();
        if (!o)
                return -ENOMEM;

        if (!cJSON_AddStringToObject(o, "Source", e->source) ||
            !cJSON_AddStringToObject(o, "DetailType", e->detail_type) ||
            (e->detail && !cJSON_AddStringToObject(o, "Detail", e->detail)) ||
            (e->event_bus && !cJSON_AddStringToObject(o, "EventBusName", e->event_bus)) ||
            /* awsJson timestamps are epoch seconds as a JSON number. */
            (e->time > 0 && !cJSON_AddNumberToObject(o, "Time", (double) (e->time / USEC_PER_SEC))))
                return -ENOMEM;

        if (e->resource) {
                cJSON *resources = cJSON_AddArrayToObject(o, "Resources");
                cJSON *resource = cJSON_CreateString(e->resource);
                if (!resources || !resource || !cJSON_AddItemToArray(resources, resource)) {
                        cJSON_Delete(resource);
                        return -ENOMEM;
                }
        }

        *ret = TAKE_PTR(o);
        return 0;
}

int eventbridge_batch_add(EventBridgeBatch *b, const EventBridgeEntry *e) {
        int r = entry_validate(e);
        if (r < 0)
                return r;

        size_t size = eventbridge_entry_size(e);
        if (size > b->max_bytes)
                return -EMSGSIZE;
        if (b->count >= EVENTBRIDGE_MAX_ENTRIES || size > b->max_bytes - b->bytes)
                return -E2BIG;

        cJSON *entry = NULL;
        r = entry_to_json(e, &entry);
        if (r < 0)
                return r;
        if (!cJSON_AddItemToArray(b->entries, entry)) {
                cJSON_Delete(entry);
                return -ENOMEM;
        }
        b->count++;
        b->bytes += size;
        return 0;
}

size_t eventbridge_batch_count(const EventBridgeBatch *b) {
        return b->count;
}

size_t eventbridge_batch_size(const EventBridgeBatch *b) {
        return b->bytes;
}

int eventbridge_batch_body(const EventBridgeBatch *b, char **ret_body, size_t *ret_len) {
        if (b->count == 0)
                return -ENODATA;

        _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
        /* Borrow the batch's entries (cJSON wants the first child) rather than copy them. */
        cJSON *entries = cJSON_CreateArrayReference(b->entries->child);
        if (!root || !entries || !cJSON_AddItemToObject(root, "Entries", entries)) {
                cJSON_Delete(entries);
                return -ENOMEM;
        }

        char *body = cJSON_PrintUnformatted(root);
        if (!body)
                return -ENOMEM;
        *ret_body = body;
        *ret_len = strlen(body);
        return 0;
}

static EventBridgeEntryStatus entry_status_from_code(const char *code, const char *message) {
        switch (aws_error_classify(0, code, message)) {
        case AWS_ERROR_TRANSIENT:
        case AWS_ERROR_CLOCK_SKEW:
                return EVENTBRIDGE_ENTRY_RETRY;
        case AWS_ERROR_AUTH:
                /* EventBridge calls AccessDenied and NotAuthorizedFor* non-retryable, but a fixed
                 * IAM policy makes the same entry succeed: the entry is not at fault. */
                return EVENTBRIDGE_ENTRY_REFUSED;
        case AWS_ERROR_CLIENT:
        default:
                return EVENTBRIDGE_ENTRY_REJECTED;
        }
}

static int parse_entry(const cJSON *item, size_t i, EventBridgeEntryResult *ret, char **ret_error) {
        if (!cJSON_IsObject(item))
                return codec_error(ret_error, -EBADMSG, "PutEvents response: Entries[%zu] is not an object", i);

        const cJSON *code = cJSON_GetObjectItemCaseSensitive(item, "ErrorCode");
        if (code && !cJSON_IsNull(code)) {
                if (!cJSON_IsString(code) || isempty(code->valuestring))
                        return codec_error(ret_error, -EBADMSG,
                                           "PutEvents response: Entries[%zu].ErrorCode is not a non-empty string", i);
                const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(item, "ErrorMessage"));

                *ret = (EventBridgeEntryResult) { .status = entry_status_from_code(code->valuestring, message) };
                codec_escape_copy(ret->error_code, sizeof ret->error_code, code->valuestring,
                                  strlen(code->valuestring));
                if (message)
                        codec_escape_copy(ret->error_message, sizeof ret->error_message, message, strlen(message));
                return 0;
        }

        if (!cJSON_IsString(cJSON_GetObjectItemCaseSensitive(item, "EventId")))
                return codec_error(ret_error, -EBADMSG,
                                   "PutEvents response: Entries[%zu] has neither EventId nor ErrorCode", i);
        *ret = (EventBridgeEntryResult) { .status = EVENTBRIDGE_ENTRY_OK };
        return 0;
}

int eventbridge_parse_response(const char *body, size_t len, size_t n_sent, EventBridgeEntryResult *results,
                               char **ret_error) {
        EventBridgeEntryResult parsed[EVENTBRIDGE_MAX_ENTRIES] = {};
        _cleanup_cjson_ cJSON *root = NULL;
        size_t n_failed = 0;
        int r;

        if (n_sent == 0 || n_sent > EVENTBRIDGE_MAX_ENTRIES)
                return codec_error(ret_error, -EINVAL, "PutEvents response: %zu entries sent, expected 1..%d", n_sent,
                                   EVENTBRIDGE_MAX_ENTRIES);

        if (codec_parse_json(body, len, &root) < 0 || !cJSON_IsObject(root))
                return codec_error(ret_error, -EBADMSG, "PutEvents response: body is not a JSON object");

        const cJSON *entries = cJSON_GetObjectItemCaseSensitive(root, "Entries");
        if (!cJSON_IsArray(entries))
                return codec_error(ret_error, -EBADMSG, "PutEvents response: Entries is missing or not an array");
        int n_entries = cJSON_GetArraySize(entries);
        if (n_entries < 0 || (size_t) n_entries != n_sent)
                return codec_error(ret_error, -EBADMSG,
                                   "PutEvents response: Entries has %d item%s for %zu event%s sent", n_entries,
                                   plural_s((uint64_t) n_entries), n_sent, plural_s(n_sent));

        const cJSON *failed_count = cJSON_GetObjectItemCaseSensitive(root, "FailedEntryCount");
        if (!cJSON_IsNumber(failed_count))
                return codec_error(ret_error, -EBADMSG,
                                   "PutEvents response: FailedEntryCount is missing or not a number");

        size_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, entries) {
                r = parse_entry(item, i, &parsed[i], ret_error);
                if (r < 0)
                        return r;
                n_failed += parsed[i].status != EVENTBRIDGE_ENTRY_OK;
                i++;
        }

        if (failed_count->valuedouble != (double) n_failed)
                return codec_error(ret_error, -EBADMSG,
                                   "PutEvents response: FailedEntryCount is %g but the entries hold %zu ErrorCode%s",
                                   failed_count->valuedouble, n_failed, plural_s(n_failed));

        memcpy(results, parsed, n_sent * sizeof parsed[0]);
        return 0;
}

int eventbridge_put(AwsClient *aws, const EventBridgeTarget *target, const char *body, size_t body_len, aws_done_fn done,
                    void *userdata, AwsCall **ret) {
        AwsCallSpec spec = {
                .endpoint = target->endpoint,
                .region = target->region,
                .service = EVENTBRIDGE_SERVICE,
                .target = EVENTBRIDGE_TARGET_PUT_EVENTS,
                .content_type = EVENTBRIDGE_CONTENT_TYPE,
                .body = body,
                .body_len = body_len,
                .timeout = target->timeout,
        };
        return aws_call_start(aws, &spec, done, userdata, ret);
}

int eventbridge_put_one(AwsClient *aws, const EventBridgeTarget *target, const EventBridgeEntry *e, aws_done_fn done,
                        void *userdata, AwsCall **ret) {
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *batch = NULL;
        _cleanup_free_ char *body = NULL;
        size_t body_len;
        int r = eventbridge_batch_new(target->max_request_bytes, &batch);
        if (r >= 0)
                r = eventbridge_batch_add(batch, e);
        if (r >= 0)
                r = eventbridge_batch_body(batch, &body, &body_len);
        if (r < 0)
                return r;
        return eventbridge_put(aws, target, body, body_len, done, userdata, ret);
}
