/* imds_doc.c: parse the EC2 instance metadata (IMDS) documents heald reads: identity, role list, credentials. */
#include "aws/imds_doc.h"

#include "codec.h"
#include "aws/timestamp.h"

static bool string_all(const char *s, size_t len, int (*pred)(int)) {
        for (size_t i = 0; i < len; i++)
                if (!pred((unsigned char) s[i]))
                        return false;
        return true;
}

static int is_lower_hex(int c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
}

static int is_lower(int c) {
        return c >= 'a' && c <= 'z';
}

static int is_digit(int c) {
        return c >= '0' && c <= '9';
}

static bool instance_id_is_valid(const char *s) {
        size_t n = strlen(s);
        return strncmp(s, "i-", 2) == 0 && (n == 2 + 8 || n == 2 + 17) && string_all(s + 2, n - 2, is_lower_hex);
}

/* Letters-only parts joined by '-', ending in a number: "us-east-1", "us-gov-west-1". */
static bool region_is_valid(const char *s) {
        size_t n = strlen(s), parts = 0;

        if (n == 0 || n >= IMDS_REGION_MAX)
                return false;
        for (const char *p = s;; parts++) {
                const char *dash = strchr(p, '-');
                size_t k = dash ? (size_t) (dash - p) : strlen(p);

                if (k == 0)
                        return false;
                if (!dash) /* the last part */
                        return parts >= 2 && string_all(p, k, is_digit);
                if (!string_all(p, k, is_lower))
                        return false;
                p = dash + 1;
        }
}

static bool account_id_is_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n < IMDS_ACCOUNT_ID_MAX && string_all(s, n, is_digit);
}

static int identity_field(const cJSON *root, const char *field, bool (*valid)(const char *), char *dst,
                          size_t size, char **ret_error) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, field));
        char shown[64];

        if (!s)
                return codec_error(ret_error, -EBADMSG, "IMDS identity document: field %s: missing or not a string",
                                   field);
        if (!valid(s) || strlen(s) >= size) {
                codec_escape_copy(shown, sizeof shown, s, strlen(s));
                return codec_error(ret_error, -EBADMSG, "IMDS identity document: field %s: \"%s\" is not valid", field,
                                   shown);
        }
        memcpy(dst, s, strlen(s) + 1);
        return 0;
}

static int is_context_char(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '.' || c == '-';
}

/* An informative field: copied when it is a short token, else left "" (never refused). */
static void identity_context_field(const cJSON *root, const char *field, char dst[static IMDS_CONTEXT_MAX]) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, field));
        size_t n = s ? strlen(s) : 0;
        if (n > 0 && n < IMDS_CONTEXT_MAX && string_all(s, n, is_context_char))
                memcpy(dst, s, n + 1);
}

int imds_parse_identity(const char *body, size_t len, ImdsIdentity *ret, char **ret_error) {
        _cleanup_cjson_ cJSON *root = NULL;
        ImdsIdentity id = {};
        int r;

        if (codec_parse_json(body, len, &root) < 0 || !cJSON_IsObject(root))
                return codec_error(ret_error, -EBADMSG, "IMDS identity document: not a JSON object");

        r = identity_field(root, "instanceId", instance_id_is_valid, id.instance_id, sizeof id.instance_id, ret_error);
        if (r < 0)
                return r;
        r = identity_field(root, "region", region_is_valid, id.region, sizeof id.region, ret_error);
        if (r < 0)
                return r;
        r = identity_field(root, "accountId", account_id_is_valid, id.account_id, sizeof id.account_id, ret_error);
        if (r < 0)
                return r;
        identity_context_field(root, "instanceType", id.instance_type);
        identity_context_field(root, "availabilityZone", id.availability_zone);
        identity_context_field(root, "imageId", id.image_id);

        *ret = id;
        return 0;
}

int imds_identity_instance_arn(const ImdsIdentity *id, char **ret) {
        static const struct {
                const char *region_prefix;
                const char *partition;
        } partitions[] = {
                { "cn-", "aws-cn" },          { "us-gov-", "aws-us-gov" }, { "us-iso-", "aws-iso" },
                { "us-isob-", "aws-iso-b" }, { "eu-isoe-", "aws-iso-e" },  { "us-isof-", "aws-iso-f" },
        };
        const char *partition = "aws";

        for (size_t i = 0; i < ELEMENTSOF(partitions); i++)
                if (strncmp(id->region, partitions[i].region_prefix, strlen(partitions[i].region_prefix)) == 0)
                        partition = partitions[i].partition;

        char *arn = NULL;
        int n = snprintf(NULL, 0, "arn:%s:ec2:%s:%s:instance/%s", partition, id->region, id->account_id,
                         id->instance_id);
        if (n < 0 || !(arn = malloc((size_t) n + 1)))
                return -ENOMEM;
        snprintf(arn, (size_t) n + 1, "arn:%s:ec2:%s:%s:instance/%s", partition, id->region, id->account_id,
                 id->instance_id);
        *ret = arn;
        return 0;
}

static int is_role_char(int c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || (c && strchr("+=,.@_-", c));
}

int imds_parse_role_list(const char *body, size_t len, char **ret_role, char **ret_error) {
        const char *start = body, *end;

        if (!body)
                len = 0;
        const char *nl = len > 0 ? memchr(body, '\n', len) : NULL;
        end = nl ? nl : body + len;

        while (start < end && (*start == ' ' || *start == '\t'))
                start++;
        while (end > start && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;

        size_t n = (size_t) (end - start);
        if (n == 0)
                return codec_error(ret_error, -ENOENT,
                                   "IMDS security-credentials listing is empty: no instance profile role");
        if (n > IMDS_ROLE_NAME_MAX || !string_all(start, n, is_role_char)) {
                char shown[96];
                codec_escape_copy(shown, sizeof shown, start, n);
                return codec_error(ret_error, -EBADMSG,
                                   "IMDS security-credentials listing: \"%s\" is not an IAM role name", shown);
        }

        char *role = strndup(start, n);
        if (!role)
                return -ENOMEM;
        *ret_role = role;
        return 0;
}

/* Credentials go into HMAC keys and HTTP headers: printable ASCII, no spaces. */
static int is_token_char(int c) {
        return c > 0x20 && c < 0x7f;
}

static int credentials_field(const cJSON *root, const char *field, char **ret, char **ret_error) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, field));

        if (!s)
                return codec_error(ret_error, -EBADMSG, "IMDS credentials: field %s: missing or not a string", field);
        if (!*s || !string_all(s, strlen(s), is_token_char))
                return codec_error(ret_error, -EBADMSG,
                                   "IMDS credentials: field %s: empty or not printable ASCII without spaces", field);

        char *copy = strdup(s);
        if (!copy)
                return codec_error(ret_error, -ENOMEM, "IMDS credentials: out of memory");
        *ret = copy;
        return 0;
}

int imds_parse_credentials(const char *body, size_t len, ImdsCredentials *ret, char **ret_error) {
        _cleanup_(codec_json_wipe_and_deletep) cJSON *root = NULL;
        _cleanup_free_ char *access_key_id = NULL;
        _cleanup_secret_ char *secret_access_key = NULL, *token = NULL;
        char shown[64];
        usec_t expiration;
        int r;

        if (codec_parse_json(body, len, &root) < 0 || !cJSON_IsObject(root))
                return codec_error(ret_error, -EBADMSG, "IMDS credentials: not a JSON object");

        const char *code = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "Code"));
        if (!code)
                return codec_error(ret_error, -EBADMSG, "IMDS credentials: field Code: missing or not a string");
        if (!streq_ptr(code, "Success")) {
                /* A failure document ({"Code":"AssumeRoleUnauthorizedAccess","Message":...})
                 * carries no secrets; its text is what the operator needs. */
                const char *message = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "Message"));
                char shown_message[256];
                codec_escape_copy(shown, sizeof shown, code, strlen(code));
                codec_escape_copy(shown_message, sizeof shown_message, message, message ? strlen(message) : 0);
                return codec_error(ret_error, -EBADMSG, "IMDS credentials: Code is \"%s\", not \"Success\"%s%s", shown,
                                   message ? ": " : "", shown_message);
        }

        r = credentials_field(root, "AccessKeyId", &access_key_id, ret_error);
        if (r < 0)
                return r;
        r = credentials_field(root, "SecretAccessKey", &secret_access_key, ret_error);
        if (r < 0)
                return r;
        r = credentials_field(root, "Token", &token, ret_error);
        if (r < 0)
                return r;

        const char *expiration_text = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "Expiration"));
        if (!expiration_text)
                return codec_error(ret_error, -EBADMSG, "IMDS credentials: field Expiration: missing or not a string");
        if (iso8601_parse(expiration_text, &expiration) < 0) {
                codec_escape_copy(shown, sizeof shown, expiration_text, strlen(expiration_text));
                return codec_error(ret_error, -EBADMSG,
                                   "IMDS credentials: field Expiration: \"%s\" is not a UTC time like 2020-04-02T00:49:51Z",
                                   shown);
        }

        *ret = (ImdsCredentials) {
                .access_key_id = TAKE_PTR(access_key_id),
                .secret_access_key = TAKE_PTR(secret_access_key),
                .token = TAKE_PTR(token),
                .expiration = expiration,
        };
        return 0;
}

void imds_credentials_done(ImdsCredentials *c) {
        if (!c)
                return;
        free(c->access_key_id);
        secret_free(c->secret_access_key);
        secret_free(c->token);
        *c = (ImdsCredentials) {};
}
