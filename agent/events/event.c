/* events/event.c: the event record heald keeps in its outbox, one JSON document per event. */
#include "events/event.h"

#include <inttypes.h>

#include "codec.h"

bool event_detail_type_is_valid(const char *detail_type) {
        if (isempty(detail_type))
                return false;

        size_t n = 0;
        for (const char *p = detail_type; *p; p++, n++)
                if (n >= EVENT_DETAIL_TYPE_MAX || *p < 0x20 || *p > 0x7e)
                        return false;
        return true;
}

int event_record_encode(const char *detail_type, const cJSON *detail, usec_t time, char **ret) {
        char time_text[21];

        if (!event_detail_type_is_valid(detail_type) || (detail && !cJSON_IsObject(detail)))
                return -EINVAL;
        if (time > EVENT_TIME_MAX)
                return -ERANGE;

        _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
        if (!root)
                return -ENOMEM;

        /* A raw integer, so the usec value is written exactly rather than via a double. */
        bsprintf(time_text, "%" PRIu64, time);
        /* A reference item shares the caller's members (cJSON wants the first child) without copying. */
        cJSON *detail_item = detail ? cJSON_CreateObjectReference(detail->child) : cJSON_CreateObject();
        if (!cJSON_AddNumberToObject(root, "v", EVENT_RECORD_VERSION) ||
            !cJSON_AddRawToObject(root, "time", time_text) || !cJSON_AddStringToObject(root, "type", detail_type) ||
            !detail_item || !cJSON_AddItemToObject(root, "detail", detail_item)) {
                cJSON_Delete(detail_item);
                return -ENOMEM;
        }

        char *s = cJSON_PrintUnformatted(root);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* A JSON number that is an integer in [0, max], exactly. */
static bool json_get_uint(const cJSON *item, uint64_t max, uint64_t *ret) {
        if (!cJSON_IsNumber(item))
                return false;
        double d = item->valuedouble;
        if (!(d >= 0 && d <= (double) max) || d != (double) (uint64_t) d)
                return false;
        *ret = (uint64_t) d;
        return true;
}

int event_record_decode(const char *data, size_t len, EventRecord *ret, char **ret_error) {
        _cleanup_cjson_ cJSON *root = NULL;
        uint64_t version, time;

        if (codec_parse_json(data, len, &root) < 0 || !cJSON_IsObject(root))
                return codec_error(ret_error, -EBADMSG, "event record: not a JSON object");

        if (!json_get_uint(cJSON_GetObjectItemCaseSensitive(root, "v"), UINT32_MAX, &version))
                return codec_error(ret_error, -EBADMSG, "event record: field v: missing or not an integer");
        if (version != EVENT_RECORD_VERSION)
                return codec_error(ret_error, -EBADMSG, "event record: version %" PRIu64 " is not supported (only %d)",
                                   version, EVENT_RECORD_VERSION);

        if (!json_get_uint(cJSON_GetObjectItemCaseSensitive(root, "time"), EVENT_TIME_MAX, &time))
                return codec_error(ret_error, -EBADMSG,
                                   "event record: field time: missing or not an integer in [0, 2^53]");

        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "type"));
        if (!event_detail_type_is_valid(type))
                return codec_error(ret_error, -EBADMSG,
                                   "event record: field type: missing, empty, longer than %d or not printable ASCII",
                                   EVENT_DETAIL_TYPE_MAX);

        const cJSON *detail = cJSON_GetObjectItemCaseSensitive(root, "detail");
        if (!cJSON_IsObject(detail))
                return codec_error(ret_error, -EBADMSG, "event record: field detail: missing or not an object");

        _cleanup_free_ char *detail_type = strdup(type);
        _cleanup_free_ char *detail_json = cJSON_PrintUnformatted(detail);
        if (!detail_type || !detail_json)
                return codec_error(ret_error, -ENOMEM, "event record: out of memory");

        *ret = (EventRecord) {
                .detail_type = TAKE_PTR(detail_type),
                .detail_json = TAKE_PTR(detail_json),
                .time = time,
        };
        return 0;
}

void event_record_done(EventRecord *r) {
        if (!r)
                return;
        free(r->detail_type);
        free(r->detail_json);
        *r = (EventRecord) {};
}
