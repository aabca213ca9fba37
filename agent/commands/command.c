/* commands/command.c: the command an SQS message carries to heald: parsing, validation and authorisation against [commands]. */
#include "commands/command.h"

#include <fnmatch.h>
#include <inttypes.h>
#include <stdarg.h>

#include <openssl/evp.h>

#include "aws/timestamp.h"
#include "codec.h"
#include "commands/protected_units.h"
#include "names.h"

static const char *const action_names[_COMMAND_ACTION_MAX] = {
        [COMMAND_PING] = "ping",
        [COMMAND_RUN_CHECKS] = "run-checks",
        [COMMAND_RESTART_UNITS] = "restart-units",
        [COMMAND_STOP_UNITS] = "stop-units",
        [COMMAND_START_UNITS] = "start-units",
        [COMMAND_STOP_START_UNITS] = "stop-start-units",
        [COMMAND_PREPARE_STOP] = "prepare-stop",
        [COMMAND_REBOOT] = "reboot",
};

static const char *const rejection_names[_COMMAND_REJECT_MAX] = {
        [COMMAND_REJECT_MALFORMED_JSON] = "malformed-json",
        [COMMAND_REJECT_NOT_A_COMMAND] = "not-a-command",
        [COMMAND_REJECT_UNKNOWN_ACTION] = "unknown-action",
        [COMMAND_REJECT_ACTION_NOT_ALLOWED] = "action-not-allowed",
        [COMMAND_REJECT_UNIT_NOT_ALLOWED] = "unit-not-allowed",
        [COMMAND_REJECT_WRONG_INSTANCE] = "wrong-instance",
        [COMMAND_REJECT_EXPIRED] = "expired",
        [COMMAND_REJECT_OVERSIZED] = "oversized",
        [COMMAND_REJECT_SENDER_NOT_ALLOWED] = "sender-not-allowed",
        [COMMAND_REJECT_CORRUPT] = "corrupt",
        [COMMAND_REJECT_ID_REUSED] = "id-reused",
        [COMMAND_REJECT_ASKER_GONE] = "asker-gone",
};

/* The members a command object may have; others are ignored (newer senders). */
static const char *const command_fields[] = {
        "command_id", "action", "instance_id", "issued_at", "expires_at",
        "units",      "checks", "reason",      "task_token",
};

const char *command_action_to_string(CommandAction a) {
        return a >= 0 && a < _COMMAND_ACTION_MAX ? action_names[a] : NULL;
}

int command_action_from_string(const char *s) {
        for (int a = 0; a < _COMMAND_ACTION_MAX; a++)
                if (streq_ptr(action_names[a], s))
                        return a;
        return -EINVAL;
}

bool command_action_is_unit_action(CommandAction a) {
        return a == COMMAND_RESTART_UNITS || a == COMMAND_STOP_UNITS || a == COMMAND_START_UNITS ||
               a == COMMAND_STOP_START_UNITS;
}

bool command_action_is_instance_wide(CommandAction a) {
        return a == COMMAND_REBOOT || a == COMMAND_PREPARE_STOP;
}

const char *command_rejection_reason_to_string(CommandRejectionReason r) {
        return r >= 0 && r < _COMMAND_REJECT_MAX ? rejection_names[r] : NULL;
}

static void strv_free(char **l) {
        for (char **p = l; p && *p; p++)
                free(*p);
        free(l);
}

void command_done(Command *c) {
        if (!c)
                return;
        free(c->command_id);
        free(c->instance_id);
        strv_free(c->units);
        strv_free(c->checks);
        free(c->reason);
        secret_free(c->task_token);
        *c = (Command) {};
}

void command_rejection_done(CommandRejection *r) {
        if (!r)
                return;
        secret_free(r->task_token);
        *r = (CommandRejection) {};
}

static void rejection_set(CommandRejection *rej, CommandRejectionReason reason, const char *fmt, ...) _printf_(3, 4);
static void rejection_set(CommandRejection *rej, CommandRejectionReason reason, const char *fmt, ...) {
        va_list ap;

        rej->reason = reason;
        va_start(ap, fmt);
        (void) vsnprintf(rej->message, sizeof rej->message, fmt, ap);
        va_end(ap);
}

/* Fill the rejection and evaluate to -EBADMSG, visibly so to static analysers (which do not
 * follow variadic calls). */
#define reject(rej, reason, ...) (rejection_set((rej), (reason), __VA_ARGS__), -EBADMSG)

/* An escaped copy of s for a rejection message. */
static void shown_copy(char *dst, size_t size, const char *s) {
        codec_escape_copy(dst, size, s, s ? strlen(s) : 0);
}

/* Whether arrays and objects nest deeper than max: checked on the raw bytes so that cJSON's
 * recursion never goes deep on hostile input. */
static bool json_nests_deeper_than(const char *s, size_t len, unsigned max) {
        unsigned depth = 0;
        bool in_string = false;

        for (size_t i = 0; i < len; i++) {
                char c = s[i];
                if (in_string) {
                        if (c == '\\')
                                i++;
                        else if (c == '"')
                                in_string = false;
                } else if (c == '"')
                        in_string = true;
                else if (c == '[' || c == '{') {
                        if (++depth > max)
                                return true;
                } else if ((c == ']' || c == '}') && depth > 0)
                        depth--;
        }
        return false;
}

static const char *json_type_name(const cJSON *item) {
        return cJSON_IsArray(item)    ? "an array"
               : cJSON_IsString(item) ? "a string"
               : cJSON_IsNumber(item) ? "a number"
               : cJSON_IsBool(item)   ? "a boolean"
               : cJSON_IsNull(item)   ? "null"
                                      : "an object";
}

/* The parse tree holds a copy of the task token: wipe the strings of the two objects that
 * can hold it (the command, or the event around it and its detail). */
static void command_json_deletep(cJSON **p) {
        if (!*p)
                return;
        cJSON *detail = cJSON_GetObjectItemCaseSensitive(*p, "detail");
        cJSON *objects[] = { *p, cJSON_IsObject(detail) ? detail : NULL };
        for (size_t i = 0; i < ELEMENTSOF(objects); i++) {
                cJSON *item;
                cJSON_ArrayForEach(item, objects[i]) {
                        if (item->valuestring)
                                secure_zero(item->valuestring, strlen(item->valuestring));
                }
        }
        cJSON_Delete(*p);
}

static bool string_all_in(const char *s, bool (*pred)(char)) {
        for (; *s; s++)
                if (!pred(*s))
                        return false;
        return true;
}

static bool is_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static bool is_command_id_char(char c) {
        return is_alnum(c) || (c && strchr("._:-", c));
}

static bool is_instance_id_char(char c) {
        return is_alnum(c) || c == '-';
}

static bool command_id_is_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= COMMAND_ID_MAX && string_all_in(s, is_command_id_char);
}

static bool instance_id_is_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= 64 && string_all_in(s, is_instance_id_char);
}

/* A unit a command names: a unit name as heald.ini spells one, never a glob. */
static bool command_unit_is_valid(const char *s) {
        return unit_name_is_valid(s, false);
}

/* An optional string member: *ret is NULL when absent (or null); -EBADMSG for another type
 * or a string longer than max. */
static int optional_string(const cJSON *obj, const char *field, size_t max, const char **ret, CommandRejection *rej) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(obj, field);

        if (!item || cJSON_IsNull(item)) {
                *ret = NULL;
                return 0;
        }
        if (!cJSON_IsString(item))
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s is %s, not a string", field,
                              json_type_name(item));
        if (strlen(item->valuestring) > max)
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s is longer than %zu bytes", field,
                              max);
        *ret = item->valuestring;
        return 0;
}

static int required_string(const cJSON *obj, const char *field, size_t max, const char **ret, CommandRejection *rej) {
        int r = optional_string(obj, field, max, ret, rej);
        if (r < 0)
                return r;
        if (!*ret)
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s is missing", field);
        return 0;
}

static int optional_time(const cJSON *obj, const char *field, usec_t *ret, CommandRejection *rej) {
        const char *s;
        char shown[64];

        int r = optional_string(obj, field, 64, &s, rej);
        if (r < 0)
                return r;
        if (!s) {
                *ret = 0;
                return 0;
        }
        if (iso8601_parse(s, ret) < 0) {
                shown_copy(shown, sizeof shown, s);
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND,
                              "command field %s: \"%s\" is not a UTC time like 2026-11-26T20:31:51Z", field, shown);
        }
        return 0;
}

/* An optional array of 1..max names, each valid by is_valid. *ret is NULL when absent. */
static int optional_names(const cJSON *obj, const char *field, size_t max, bool (*is_valid)(const char *),
                          char ***ret, size_t *ret_n, CommandRejection *rej) {
        const cJSON *array = cJSON_GetObjectItemCaseSensitive(obj, field);
        char shown[96];

        if (!array || cJSON_IsNull(array)) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        if (!cJSON_IsArray(array))
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s is %s, not an array", field,
                              json_type_name(array));
        size_t n = (size_t) cJSON_GetArraySize(array);
        if (n == 0 || n > max)
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s has %zu items, expected 1..%zu", field,
                              n, max);

        char **names = calloc(n + 1, sizeof *names);
        if (!names)
                return -ENOMEM;
        size_t i = 0;
        const cJSON *item;
        cJSON_ArrayForEach(item, array) {
                const char *s = cJSON_GetStringValue(item);
                int r;

                if (!s)
                        r = reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s: item %zu is %s, not a string",
                                   field, i, json_type_name(item));
                else if (!is_valid(s)) {
                        shown_copy(shown, sizeof shown, s);
                        r = reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s: item %zu \"%s\" is not a valid name",
                                   field, i, shown);
                } else
                        r = (names[i] = strdup(s)) ? 0 : -ENOMEM;
                if (r < 0) {
                        strv_free(names);
                        return r;
                }
                i++;
        }
        *ret = names;
        *ret_n = n;
        return 0;
}

static int check_duplicates(const cJSON *obj, CommandRejection *rej) {
        for (size_t i = 0; i < ELEMENTSOF(command_fields); i++) {
                unsigned seen = 0;
                const cJSON *item;
                cJSON_ArrayForEach(item, obj) {
                        if (streq_ptr(item->string, command_fields[i]))
                                seen++;
                }
                /* cJSON reads the first of two, a sender's validator may have read the last. */
                if (seen > 1)
                        return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field %s appears %u times",
                                      command_fields[i], seen);
        }
        return 0;
}

/* Find the command object in the document: itself, or an EventBridge event's detail. */
static int find_command_object(const cJSON *root, const cJSON **ret, bool *ret_from_eventbridge,
                               CommandRejection *rej) {
        if (!cJSON_IsObject(root))
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "message body is %s, not a command object",
                              json_type_name(root));

        const cJSON *detail_type = cJSON_GetObjectItemCaseSensitive(root, "detail-type");
        const cJSON *detail = cJSON_GetObjectItemCaseSensitive(root, "detail");
        if (!detail_type || !detail) {
                *ret = root;
                *ret_from_eventbridge = false;
                return 0;
        }

        if (!cJSON_IsObject(detail))
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "EventBridge event's detail is %s, not an object",
                              json_type_name(detail));
        if (!cJSON_GetObjectItemCaseSensitive(detail, "command_id")) {
                char shown_type[96], shown_source[96];
                shown_copy(shown_type, sizeof shown_type, cJSON_GetStringValue(detail_type));
                shown_copy(shown_source, sizeof shown_source,
                           cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "source")));
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND,
                              "EventBridge event \"%s\" from \"%s\" is not a command: detail has no command_id",
                              shown_type, shown_source);
        }
        *ret = detail;
        *ret_from_eventbridge = true;
        return 0;
}

static int parse_action(const cJSON *obj, CommandAction *ret, CommandRejection *rej) {
        const char *s;
        char shown[96];

        int r = required_string(obj, "action", 64, &s, rej);
        if (r < 0)
                return r;
        r = command_action_from_string(s);
        if (r < 0) {
                shown_copy(shown, sizeof shown, s);
                return reject(rej, COMMAND_REJECT_UNKNOWN_ACTION,
                              "unknown action \"%s\"; heald knows ping, run-checks, restart-units, stop-units, "
                              "start-units, stop-start-units, prepare-stop, reboot",
                              shown);
        }
        *ret = (CommandAction) r;
        return 0;
}

/* Validate obj into c, or fill rej. rej->command_id and rej->task_token are set as soon as
 * they are known, so that even a rejected command can be answered. */
static int parse_command_object(const cJSON *obj, Command *c, CommandRejection *rej) {
        const char *s;
        char shown[96];
        int r;

        r = check_duplicates(obj, rej);
        if (r < 0)
                return r;

        r = required_string(obj, "command_id", COMMAND_ID_MAX * 4, &s, rej);
        if (r < 0)
                return r;
        if (!command_id_is_valid(s)) {
                shown_copy(shown, sizeof shown, s);
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND,
                              "command field command_id: \"%s\" is not 1..128 of [A-Za-z0-9._:-]", shown);
        }
        memcpy(rej->command_id, s, strlen(s) + 1);
        if (!(c->command_id = strdup(s)))
                return -ENOMEM;

        r = optional_string(obj, "task_token", COMMAND_TASK_TOKEN_MAX, &s, rej);
        if (r < 0)
                return r;
        if (s && *s) {
                if (!(c->task_token = strdup(s)) || !(rej->task_token = strdup(s)))
                        return -ENOMEM;
        }

        r = parse_action(obj, &c->action, rej);
        if (r < 0)
                return r;

        r = required_string(obj, "instance_id", 256, &s, rej);
        if (r < 0)
                return r;
        if (!instance_id_is_valid(s)) {
                shown_copy(shown, sizeof shown, s);
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field instance_id: \"%s\" is not an instance id",
                              shown);
        }
        if (!(c->instance_id = strdup(s)))
                return -ENOMEM;

        r = optional_time(obj, "issued_at", &c->issued_at, rej);
        if (r < 0)
                return r;
        r = optional_time(obj, "expires_at", &c->expires_at, rej);
        if (r < 0)
                return r;

        r = optional_names(obj, "units", COMMAND_UNITS_MAX, command_unit_is_valid, &c->units, &c->n_units, rej);
        if (r < 0)
                return r;
        if (command_action_is_unit_action(c->action) && !c->units)
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field units is missing: action %s needs units",
                              action_names[c->action]);
        if (!command_action_is_unit_action(c->action) && c->units)
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field units is not used by action %s",
                              action_names[c->action]);

        r = optional_names(obj, "checks", COMMAND_CHECKS_MAX, check_name_is_valid, &c->checks, &c->n_checks, rej);
        if (r < 0)
                return r;
        if (c->action != COMMAND_RUN_CHECKS && c->checks)
                return reject(rej, COMMAND_REJECT_NOT_A_COMMAND, "command field checks is not used by action %s",
                              action_names[c->action]);

        r = optional_string(obj, "reason", COMMAND_REASON_MAX, &s, rej);
        if (r < 0)
                return r;
        if (s && !(c->reason = strdup(s)))
                return -ENOMEM;
        return 0;
}

int command_parse(const char *body, size_t len, Command *ret, CommandRejection *ret_rejection) {
        _cleanup_(command_json_deletep) cJSON *root = NULL;
        CommandRejection rej = {};
        Command c = {};
        int r;

        if (len > COMMAND_BODY_MAX)
                r = reject(&rej, COMMAND_REJECT_OVERSIZED, "message body is %zu bytes, more than the %d a command may have",
                           len, COMMAND_BODY_MAX);
        else if (!body || len == 0)
                r = reject(&rej, COMMAND_REJECT_MALFORMED_JSON, "message body is empty");
        else if (json_nests_deeper_than(body, len, COMMAND_DEPTH_MAX))
                r = reject(&rej, COMMAND_REJECT_MALFORMED_JSON, "message body nests arrays or objects deeper than %d",
                           COMMAND_DEPTH_MAX);
        else if (codec_parse_json(body, len, &root) < 0)
                /* Nothing of the body is quoted: no search for a task token's name can be sure
                 * to find one in bytes that do not parse ("task\u005ftoken", "TaskToken", ...). */
                r = reject(&rej, COMMAND_REJECT_MALFORMED_JSON, "message body (%zu bytes) is not JSON", len);
        else {
                const cJSON *obj = NULL;
                r = find_command_object(root, &obj, &c.from_eventbridge, &rej);
                if (r >= 0)
                        r = parse_command_object(obj, &c, &rej);
        }

        if (r < 0) {
                command_done(&c);
                if (r == -EBADMSG)
                        *ret_rejection = rej;
                else
                        command_rejection_done(&rej);
                return r;
        }
        command_rejection_done(&rej); /* its copy of the task token was for a rejection */
        *ret = c;
        return 0;
}

static bool matches_any(char *const *globs, const char *s) {
        for (char *const *g = globs; g && *g; g++)
                if (fnmatch(*g, s, 0) == 0)
                        return true;
        return false;
}

/* Sender first: nothing an unauthorised sender says is acted upon. */
static int check_sender(const CommandPolicy *policy, CommandRejection *rej) {
        char shown[96];

        if (!policy->allowed_senders)
                return 0;
        if (!policy->sender_id)
                return reject(rej, COMMAND_REJECT_SENDER_NOT_ALLOWED,
                              "SQS did not report the message's SenderId, and [commands] allowed_senders is set");
        if (!matches_any(policy->allowed_senders, policy->sender_id)) {
                shown_copy(shown, sizeof shown, policy->sender_id);
                return reject(rej, COMMAND_REJECT_SENDER_NOT_ALLOWED,
                              "sender \"%s\" matches no pattern of [commands] allowed_senders", shown);
        }
        return 0;
}

static bool action_is_allowed(const CommandPolicy *policy, CommandAction a) {
        for (char *const *p = policy->allowed_actions; p && *p; p++)
                if (streq_ptr(*p, action_names[a]))
                        return true;
        return false;
}

/* Returns a CommandVerdict; rej is filled for COMMAND_REJECTED. */
static CommandVerdict judge(const Command *cmd, const CommandPolicy *policy, usec_t now, CommandRejection *rej) {
        char shown[96], when[21], now_text[21];

        if (check_sender(policy, rej) < 0)
                return COMMAND_REJECTED;

        if (!policy->instance_id)
                return COMMAND_NOT_READY;
        if (!streq_ptr(cmd->instance_id, policy->instance_id)) {
                shown_copy(shown, sizeof shown, cmd->instance_id);
                rejection_set(rej, COMMAND_REJECT_WRONG_INSTANCE, "command is for instance %s, this is %s", shown,
                       policy->instance_id);
                return COMMAND_REJECTED;
        }

        if (cmd->expires_at > 0 && now >= cmd->expires_at) {
                format_iso8601(cmd->expires_at, when);
                format_iso8601(now, now_text);
                rejection_set(rej, COMMAND_REJECT_EXPIRED, "command expired at %s (now %s)", when, now_text);
                return COMMAND_REJECTED;
        }

        if (!action_is_allowed(policy, cmd->action)) {
                rejection_set(rej, COMMAND_REJECT_ACTION_NOT_ALLOWED, "action %s is not in [commands] allow",
                       action_names[cmd->action]);
                return COMMAND_REJECTED;
        }

        for (size_t i = 0; i < cmd->n_units; i++) {
                shown_copy(shown, sizeof shown, cmd->units[i]);
                /* Ahead of the globs: a broad one ("*.target") must not reach a power action. */
                if (protected_units_match(cmd->units[i])) {
                        rejection_set(rej, COMMAND_REJECT_UNIT_NOT_ALLOWED,
                                      "unit \"%s\" is protected: heald never acts on what powers off, reboots, "
                                      "suspends or halts the machine (only the reboot action reboots), nor on heald, "
                                      "D-Bus, polkit, the journal or SSH",
                                      shown);
                        return COMMAND_REJECTED;
                }
                if (!matches_any(policy->unit_globs, cmd->units[i])) {
                        rejection_set(rej, COMMAND_REJECT_UNIT_NOT_ALLOWED, "unit \"%s\" matches no pattern of [commands] units",
                               shown);
                        return COMMAND_REJECTED;
                }
        }
        return COMMAND_ALLOWED;
}

int command_authorize(const Command *cmd, const CommandPolicy *policy, usec_t now, CommandRejection *ret_rejection) {
        CommandRejection rej = {};

        CommandVerdict v = judge(cmd, policy, now, &rej);
        if (v == COMMAND_REJECTED) {
                if (cmd->command_id && strlen(cmd->command_id) <= COMMAND_ID_MAX)
                        memcpy(rej.command_id, cmd->command_id, strlen(cmd->command_id) + 1);
                if (cmd->task_token && !(rej.task_token = strdup(cmd->task_token)))
                        return -ENOMEM;
                *ret_rejection = rej;
        }
        return (int) v;
}

int command_evaluate(const char *body, size_t len, bool md5_ok, const CommandPolicy *policy, usec_t now, Command *ret,
                     CommandRejection *ret_rejection) {
        CommandRejection rej = {};
        Command c = {};
        int r;

        /* Neither a corrupt body nor an unauthorised sender's is parsed. */
        if (!md5_ok) {
                rejection_set(&rej, COMMAND_REJECT_CORRUPT, "message body (%zu bytes) does not match its MD5OfBody", len);
                *ret_rejection = rej;
                return COMMAND_REJECTED;
        }
        if (check_sender(policy, &rej) < 0) {
                *ret_rejection = rej;
                return COMMAND_REJECTED;
        }

        r = command_parse(body, len, &c, ret_rejection);
        if (r == -EBADMSG)
                return COMMAND_REJECTED;
        if (r < 0)
                return r;

        r = command_authorize(&c, policy, now, ret_rejection);
        if (r == COMMAND_ALLOWED)
                *ret = c;
        else
                command_done(&c);
        return r;
}

/* Each field is length-prefixed so that no two different commands serialise alike. */
static bool digest_field(EVP_MD_CTX *md, const char *tag, const char *value) {
        uint64_t len = strlen(value);
        return EVP_DigestUpdate(md, tag, strlen(tag) + 1) && EVP_DigestUpdate(md, &len, sizeof len) &&
               EVP_DigestUpdate(md, value, len);
}

static bool digest_names(EVP_MD_CTX *md, const char *tag, char *const *names) {
        for (char *const *n = names; n && *n; n++)
                if (!digest_field(md, tag, *n))
                        return false;
        return true;
}

int command_digest(const Command *cmd, char ret[static COMMAND_DIGEST_SIZE]) {
        unsigned char hash[EVP_MAX_MD_SIZE];
        unsigned hash_len = 0;
        char expiry[21];

        bsprintf(expiry, "%" PRIu64, (uint64_t) cmd->expires_at);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        bool ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) &&
                  digest_field(md, "action", action_names[cmd->action]) &&
                  digest_field(md, "instance_id", cmd->instance_id ? cmd->instance_id : "") &&
                  digest_field(md, "expires_at", expiry) && digest_names(md, "unit", cmd->units) &&
                  digest_names(md, "check", cmd->checks) && EVP_DigestFinal_ex(md, hash, &hash_len) && hash_len == 32;
        EVP_MD_CTX_free(md);
        if (!ok)
                return -EIO;
        codec_hex_encode(hash, hash_len, ret);
        return 0;
}
