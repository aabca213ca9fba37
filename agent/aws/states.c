/* states.c: AWS Step Functions task callbacks over AWS JSON 1.0 (SendTaskSuccess, SendTaskFailure,
 * SendTaskHeartbeat): request bodies, and what a heartbeat's answer says of the task. */
#include "aws/states.h"

#include "codec.h"

static bool task_token_is_valid(const char *token) {
        size_t n = token ? strlen(token) : 0;
        return n >= 1 && n <= STATES_TASK_TOKEN_MAX && codec_utf8_is_valid(token, n);
}

/* The length of the UTF-8 sequence at s[0..len), or 0 when it is not a valid one. */
static size_t utf8_sequence_length(const char *s, size_t len) {
        unsigned char c = (unsigned char) s[0];
        size_t n = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : (c & 0xf8) == 0xf0 ? 4 : 0;

        if (n == 0 || n > len || !codec_utf8_is_valid(s, n))
                return 0;
        return n;
}

/* A copy of s that is valid UTF-8 (invalid bytes become '?') of at most max bytes, cut
 * before a character that would not fit. Caller frees. */
static int utf8_sanitize(const char *s, size_t max, char **ret) {
        size_t len = strlen(s), n = 0;
        char *out = malloc((len < max ? len : max) + 1);
        if (!out)
                return -ENOMEM;

        for (size_t i = 0; i < len;) {
                size_t k = utf8_sequence_length(s + i, len - i);
                if (n + (k > 0 ? k : 1) > max)
                        break;
                if (k == 0) {
                        out[n++] = '?';
                        i++;
                } else {
                        memcpy(out + n, s + i, k);
                        n += k;
                        i += k;
                }
        }
        out[n] = '\0';
        *ret = out;
        return 0;
}

static int body_finish(cJSON *root, char **ret) {
        char *s = cJSON_PrintUnformatted(root);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

/* The tree holds a copy of the token: wipe it before freeing. */
static void cjson_wipe_token_and_deletep(cJSON **p) {
        if (*p) {
                char *token = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(*p, "taskToken"));
                if (token)
                        secure_zero(token, strlen(token));
                cJSON_Delete(*p);
        }
}

int states_task_success_body(const char *task_token, const char *output_json, char **ret) {
        _cleanup_(cjson_wipe_token_and_deletep) cJSON *root = NULL;
        _cleanup_cjson_ cJSON *check = NULL;

        if (!task_token_is_valid(task_token) || !output_json)
                return -EINVAL;
        size_t len = strlen(output_json);
        if (len > STATES_OUTPUT_MAX)
                return -EMSGSIZE;
        if (!codec_utf8_is_valid(output_json, len) || codec_parse_json(output_json, len, &check) < 0)
                return -EINVAL;

        root = cJSON_CreateObject();
        if (!root || !cJSON_AddStringToObject(root, "taskToken", task_token) ||
            !cJSON_AddStringToObject(root, "output", output_json))
                return -ENOMEM;
        return body_finish(root, ret);
}

static int add_sanitized(cJSON *root, const char *name, const char *value, size_t max) {
        _cleanup_free_ char *s = NULL;

        if (!value)
                return 0;
        int r = utf8_sanitize(value, max, &s);
        if (r < 0)
                return r;
        return cJSON_AddStringToObject(root, name, s) ? 0 : -ENOMEM;
}

int states_task_failure_body(const char *task_token, const char *error, const char *cause, char **ret) {
        _cleanup_(cjson_wipe_token_and_deletep) cJSON *root = NULL;
        int r;

        if (!task_token_is_valid(task_token))
                return -EINVAL;

        root = cJSON_CreateObject();
        if (!root || !cJSON_AddStringToObject(root, "taskToken", task_token))
                return -ENOMEM;
        r = add_sanitized(root, "error", error, STATES_ERROR_MAX);
        if (r < 0)
                return r;
        r = add_sanitized(root, "cause", cause, STATES_CAUSE_MAX);
        if (r < 0)
                return r;
        return body_finish(root, ret);
}

int states_task_heartbeat_body(const char *task_token, char **ret) {
        _cleanup_(cjson_wipe_token_and_deletep) cJSON *root = NULL;

        if (!task_token_is_valid(task_token))
                return -EINVAL;

        root = cJSON_CreateObject();
        if (!root || !cJSON_AddStringToObject(root, "taskToken", task_token))
                return -ENOMEM;
        return body_finish(root, ret);
}

StatesTaskState states_heartbeat_verdict(long http_status, const char *error_code) {
        static const char *const gone[] = { "TaskTimedOut", "TaskDoesNotExist", "InvalidToken" };

        if (http_status >= 200 && http_status < 300)
                return STATES_TASK_WAITING;
        /* Only Step Functions' own word that the task is over: anything else (a proxy's page, an
         * outage, a refusal) says nothing about the run. */
        if (http_status >= 400 && http_status < 500)
                for (size_t i = 0; i < ELEMENTSOF(gone); i++)
                        if (streq_ptr(error_code, gone[i]))
                                return STATES_TASK_GONE;
        return STATES_TASK_UNKNOWN;
}
