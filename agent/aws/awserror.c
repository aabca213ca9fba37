/* awserror.c: turn a non-2xx AWS response into a code, a message, a class (what to do) and a hint. */
#include "aws/awserror.h"

#include "codec.h"

#define HINT_PERMISSION                                                                               \
        "grant the instance role what heald needs (events:PutEvents on the bus; sqs:ReceiveMessage, " \
        "sqs:DeleteMessage and sqs:ChangeMessageVisibility on its own queue; states:SendTaskSuccess, " \
        "states:SendTaskFailure and states:SendTaskHeartbeat; see README, IAM policy)"
#define HINT_CREDENTIALS "the credentials are wrong: check the instance profile or the AWS_* environment"
#define HINT_EXPIRED                                                                          \
        "the credentials have expired: check that IMDS is reachable so the instance profile " \
        "credentials refresh, or renew the AWS_* environment"
#define HINT_NO_CREDENTIALS                                                                      \
        "no credentials reached AWS or the endpoint is wrong: attach an instance profile (or " \
        "set the AWS_* environment) and check the configured endpoint"
#define HINT_NO_QUEUE                                                                                \
        "the queue does not exist in this account and region: create it or fix the queue URL in " \
        "the configuration"

typedef struct AwsErrorCode {
        const char *code;
        AwsErrorClass error_class;
        const char *hint; /* NULL: the class's hint */
} AwsErrorCode;

/* Codes seen from EventBridge, SQS (JSON and Query), Step Functions, STS and the common AWS errors. */
static const AwsErrorCode known_codes[] = {
        { "AccessDenied", AWS_ERROR_AUTH, HINT_PERMISSION },
        { "AccessDeniedException", AWS_ERROR_AUTH, HINT_PERMISSION },
        { "NotAuthorizedForSourceException", AWS_ERROR_AUTH, HINT_PERMISSION },
        { "NotAuthorizedForDetailTypeException", AWS_ERROR_AUTH, HINT_PERMISSION },
        { "UnauthorizedOperation", AWS_ERROR_AUTH, HINT_PERMISSION },
        { "UnrecognizedClientException", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "InvalidClientTokenId", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "SignatureDoesNotMatch", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "InvalidSignatureException", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "IncompleteSignature", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "IncompleteSignatureException", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "InvalidAccessKeyId", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "AuthFailure", AWS_ERROR_AUTH, HINT_CREDENTIALS },
        { "ExpiredToken", AWS_ERROR_AUTH, HINT_EXPIRED },
        { "ExpiredTokenException", AWS_ERROR_AUTH, HINT_EXPIRED },
        { "MissingAuthenticationToken", AWS_ERROR_AUTH, HINT_NO_CREDENTIALS },
        { "MissingAuthenticationTokenException", AWS_ERROR_AUTH, HINT_NO_CREDENTIALS },
        { "ResourceNotFoundException", AWS_ERROR_AUTH,
          "the event bus (or queue) does not exist in this account and region: create it or fix "
          "[eventbridge] event_bus (or the queue URL) in the configuration" },
        { "AWS.SimpleQueueService.NonExistentQueue", AWS_ERROR_AUTH, HINT_NO_QUEUE },
        { "QueueDoesNotExist", AWS_ERROR_AUTH, HINT_NO_QUEUE },

        { "RequestTimeTooSkewed", AWS_ERROR_CLOCK_SKEW, NULL },
        { "RequestExpired", AWS_ERROR_CLOCK_SKEW, NULL },
        { "RequestInTheFuture", AWS_ERROR_CLOCK_SKEW, NULL },

        { "ThrottlingException", AWS_ERROR_TRANSIENT, NULL },
        { "Throttling", AWS_ERROR_TRANSIENT, NULL },
        { "ThrottledException", AWS_ERROR_TRANSIENT, NULL },
        { "RequestThrottled", AWS_ERROR_TRANSIENT, NULL },
        { "RequestThrottledException", AWS_ERROR_TRANSIENT, NULL },
        { "RequestLimitExceeded", AWS_ERROR_TRANSIENT, NULL },
        { "TooManyRequestsException", AWS_ERROR_TRANSIENT, NULL },
        { "ProvisionedThroughputExceededException", AWS_ERROR_TRANSIENT, NULL },
        { "SlowDown", AWS_ERROR_TRANSIENT, NULL },
        { "ServiceUnavailable", AWS_ERROR_TRANSIENT, NULL },
        { "ServiceUnavailableException", AWS_ERROR_TRANSIENT, NULL },
        { "InternalFailure", AWS_ERROR_TRANSIENT, NULL },
        { "InternalError", AWS_ERROR_TRANSIENT, NULL },
        { "InternalException", AWS_ERROR_TRANSIENT, NULL },
        { "InternalServerError", AWS_ERROR_TRANSIENT, NULL },
        { "InternalServiceError", AWS_ERROR_TRANSIENT, NULL },
        { "RequestTimeout", AWS_ERROR_TRANSIENT, NULL },
        { "RequestTimeoutException", AWS_ERROR_TRANSIENT, NULL },
        { "PriorRequestNotComplete", AWS_ERROR_TRANSIENT, NULL },

        { "ValidationException", AWS_ERROR_CLIENT, NULL },
        { "ValidationError", AWS_ERROR_CLIENT, NULL },
        { "SerializationException", AWS_ERROR_CLIENT, NULL },
        { "MalformedDetail", AWS_ERROR_CLIENT, NULL },
        { "InvalidArgument", AWS_ERROR_CLIENT, NULL },
        { "InvalidAccountIdException", AWS_ERROR_CLIENT, NULL },
        { "RedactionFailure", AWS_ERROR_CLIENT, NULL },
        { "InvalidParameterValue", AWS_ERROR_CLIENT, NULL },
        { "InvalidParameterException", AWS_ERROR_CLIENT, NULL },
        { "InvalidParameterCombination", AWS_ERROR_CLIENT, NULL },
        { "MissingParameter", AWS_ERROR_CLIENT, NULL },
        { "InvalidQueryParameter", AWS_ERROR_CLIENT, NULL },
        { "MalformedQueryString", AWS_ERROR_CLIENT, NULL },
        { "InvalidAction", AWS_ERROR_CLIENT, NULL },
        { "UnknownOperationException", AWS_ERROR_CLIENT, NULL },
        /* Step Functions on a task token whose run is over: no later attempt can reach it. */
        { "TaskTimedOut", AWS_ERROR_CLIENT, NULL },
        { "TaskDoesNotExist", AWS_ERROR_CLIENT, NULL },
        { "InvalidToken", AWS_ERROR_CLIENT, NULL },
};

static const AwsErrorCode *known_code_lookup(const char *code) {
        for (size_t i = 0; code && i < ELEMENTSOF(known_codes); i++)
                if (streq_ptr(known_codes[i].code, code))
                        return &known_codes[i];
        return NULL;
}

/* SigV4 failures caused by the clock come back as signature errors; only the message tells. */
static bool message_says_clock_skew(const char *message) {
        return message && (strstr(message, "Signature expired") || strstr(message, "Signature not yet current"));
}

AwsErrorClass aws_error_classify(long http_status, const char *code, const char *message) {
        const AwsErrorCode *known = known_code_lookup(code);

        if (known && known->error_class == AWS_ERROR_AUTH && message_says_clock_skew(message))
                return AWS_ERROR_CLOCK_SKEW;
        if (known)
                return known->error_class;

        /* Only AWS itself can say a request is invalid for good. An unknown code comes from
         * something else on the path (a proxy, a captive portal, a misrouted endpoint answering
         * 404, 407 or 408 with an HTML page) or from an AWS change we do not know yet: either
         * way the request may succeed later, so it is retried like an outage. */
        if (http_status == 401 || http_status == 403)
                return AWS_ERROR_AUTH;
        return AWS_ERROR_TRANSIENT;
}

/* "com.amazonaws.sqs#QueueDoesNotExist:http://internal..." -> "QueueDoesNotExist". */
static void copy_error_code(char dst[static AWS_ERROR_CODE_MAX], const char *src, size_t len) {
        const char *colon = memchr(src, ':', len);
        if (colon)
                len = (size_t) (colon - src);
        for (size_t i = len; i > 0; i--)
                if (src[i - 1] == '#') {
                        src += i;
                        len -= i;
                        break;
                }
        codec_escape_copy(dst, AWS_ERROR_CODE_MAX, src, len);
}

static const char *find_bytes(const char *haystack, size_t len, const char *needle) {
        size_t n = strlen(needle);
        for (size_t i = 0; n <= len && i <= len - n; i++)
                if (memcmp(haystack + i, needle, n) == 0)
                        return haystack + i;
        return NULL;
}

static const char *skip_space(const char *p, const char *end) {
        while (p < end && (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n'))
                p++;
        return p;
}

static const char *json_first_string(const cJSON *root, const char *const *names, size_t n_names) {
        for (size_t i = 0; i < n_names; i++) {
                const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, names[i]));
                if (!isempty(s))
                        return s;
        }
        return NULL;
}

static void parse_json_body(const char *body, size_t len, AwsError *e) {
        static const char *const code_names[] = { "__type", "code", "Code" };
        static const char *const message_names[] = { "message", "Message", "errorMessage" };
        _cleanup_cjson_ cJSON *root = NULL;

        if (codec_parse_json(body, len, &root) < 0 || !cJSON_IsObject(root))
                return;

        const char *code = json_first_string(root, code_names, ELEMENTSOF(code_names));
        if (code && !e->code[0])
                copy_error_code(e->code, code, strlen(code));

        const char *message = json_first_string(root, message_names, ELEMENTSOF(message_names));
        if (message)
                codec_escape_copy(e->message, sizeof e->message, message, strlen(message));
}

/* The text of the first <name>…</name> in body, CDATA unwrapped; entities are left alone. */
static bool xml_find_element(const char *body, size_t len, const char *name, const char **ret, size_t *ret_len) {
        char open[32], close[32];
        bsprintf(open, "<%s>", name);
        bsprintf(close, "</%s>", name);

        const char *start = find_bytes(body, len, open);
        if (!start)
                return false;
        start += strlen(open);
        const char *end = find_bytes(start, (size_t) (body + len - start), close);
        if (!end)
                return false;

        size_t n = (size_t) (end - start);
        if (n >= strlen("<![CDATA[]]>") && memcmp(start, "<![CDATA[", 9) == 0 && memcmp(end - 3, "]]>", 3) == 0) {
                start += 9;
                n -= 12;
        }
        *ret = start;
        *ret_len = n;
        return true;
}

/* Decode the five predefined XML entities (numeric references are kept verbatim) and copy
 * for logging. */
static void xml_text_copy(char *dst, size_t size, const char *src, size_t len) {
        static const struct {
                const char *entity;
                char c;
        } entities[] = { { "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' }, { "&quot;", '"' }, { "&apos;", '\'' } };
        _cleanup_free_ char *text = malloc(len + 1);
        size_t n = 0;

        if (!text) {
                codec_escape_copy(dst, size, src, len);
                return;
        }
        for (size_t i = 0; i < len;) {
                bool decoded = false;
                if (src[i] == '&')
                        for (size_t k = 0; k < ELEMENTSOF(entities) && !decoded; k++) {
                                size_t elen = strlen(entities[k].entity);
                                if (len - i >= elen && memcmp(src + i, entities[k].entity, elen) == 0) {
                                        text[n++] = entities[k].c;
                                        i += elen;
                                        decoded = true;
                                }
                        }
                if (!decoded)
                        text[n++] = src[i++];
        }
        codec_escape_copy(dst, size, text, n);
}

static void parse_xml_body(const char *body, size_t len, AwsError *e) {
        const char *s;
        size_t n;

        if (!e->code[0] && xml_find_element(body, len, "Code", &s, &n))
                xml_text_copy(e->code, sizeof e->code, s, n);
        if (xml_find_element(body, len, "Message", &s, &n))
                xml_text_copy(e->message, sizeof e->message, s, n);
}

void aws_error_parse(long http_status, const char *error_type_header, const char *body, size_t body_len,
                     AwsError *ret) {
        AwsError e = { .http_status = http_status };

        if (!body)
                body_len = 0;

        /* The awsJson protocols put the authoritative code in the header when it is there. */
        if (!isempty(error_type_header))
                copy_error_code(e.code, error_type_header, strlen(error_type_header));

        const char *start = body ? skip_space(body, body + body_len) : NULL;
        size_t rest = start ? (size_t) (body + body_len - start) : 0;
        if (rest > 0 && *start == '{')
                parse_json_body(start, rest, &e);
        else if (rest > 0 && *start == '<')
                parse_xml_body(start, rest, &e);

        if (!e.code[0]) {
                bsprintf(e.code, "HTTP%ld", http_status);
                /* A proxy's or load balancer's page says more than the bare status. */
                if (!e.message[0])
                        codec_escape_copy(e.message, sizeof e.message, start, rest);
        }

        e.error_class = aws_error_classify(http_status, e.code, e.message);
        *ret = e;
}

const char *aws_error_hint(const AwsError *e) {
        const AwsErrorCode *known = known_code_lookup(e->code);

        if (known && known->hint && e->error_class == known->error_class)
                return known->hint;

        switch (e->error_class) {
        case AWS_ERROR_TRANSIENT:
                return "a temporary AWS-side failure or throttling: heald retries with backoff; act only "
                       "if it persists (check the network path and the AWS Health Dashboard)";
        case AWS_ERROR_CLOCK_SKEW:
                return "the system clock is wrong: heald retries with the offset from AWS's Date header, "
                       "but fix time sync (chrony or systemd-timesyncd)";
        case AWS_ERROR_AUTH:
                return "AWS refused the credentials or permissions: check the instance profile, its IAM "
                       "policy (see README) and the configured region";
        case AWS_ERROR_CLIENT:
        default:
                return "AWS rejected the request as invalid: check the configuration values it was built "
                       "from (bus name, queue URL, region); if they are right, report a heald bug with this message";
        }
}

const char *aws_error_class_to_string(AwsErrorClass c) {
        switch (c) {
        case AWS_ERROR_TRANSIENT:
                return "transient";
        case AWS_ERROR_CLOCK_SKEW:
                return "clock-skew";
        case AWS_ERROR_AUTH:
                return "auth";
        case AWS_ERROR_CLIENT:
                return "client";
        }
        return "unknown";
}
