/* config.c: load, validate and print heald.ini; one table describes every key. */
#define _GNU_SOURCE /* asprintf, open_memstream */
#include "config.h"

#include <assert.h>
#include <ini.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <regex.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>

#include "log.h"
#include "names.h"

#define CONFIG_FILE_MAX (1024 * 1024)
/* Keeps "key = value" from config_print() within inih's 200-byte line buffer (197 bytes of
 * content): the longest key taking text is 15 bytes, and 15 + 3 + 176 = 194. */
#define CONFIG_STRING_MAX 176
/* Duplicate names and "after" are checked pairwise; this keeps that cheap. */
#define CONFIG_CHECKS_MAX 1000
#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

typedef enum ConfigType {
        CONFIG_STRING,       /* char *, NULL when empty */
        CONFIG_LOG_LEVEL,    /* int */
        CONFIG_DURATION,     /* usec_t */
        CONFIG_SIZE,         /* uint64_t bytes */
        CONFIG_BOOL,         /* bool */
        CONFIG_UNSIGNED,     /* unsigned */
        CONFIG_DECIMAL,      /* double, at most 3 decimals (bounds in thousandths); < 0: not set */
        CONFIG_ENUM,         /* int, index into ConfigKey.names */
        CONFIG_LIST,         /* char **, NULL-terminated, NULL when empty; each item checked */
        CONFIG_COMMAND,      /* char **: argv split with quotes; argv[0] an absolute executable */
        CONFIG_REGEX,        /* char *: a POSIX extended regular expression */
        CONFIG_STATUS_RANGE, /* unsigned min, max: two adjacent fields ("200" or "200-299") */
} ConfigType;

enum {
        CONFIG_REQUIRED = 1 << 0,        /* an empty value is an error instead of "not set" */
        CONFIG_SECRET = 1 << 1,          /* strings: config_print() never writes the value */
        CONFIG_ZERO_OFF = 1 << 2,        /* 0 turns the feature off, allowed below min */
        CONFIG_WHOLE_SECONDS = 1 << 3,   /* durations that AWS takes in seconds */
        CONFIG_SPACE_SEPARATED = 1 << 4, /* lists whose items may contain commas */
};

typedef struct ConfigKey {
        const char *section; /* NULL for [check NAME] keys */
        const char *key;
        size_t offset; /* of the field in Config, or in CheckConfig for [check NAME] keys */
        /* Parsed exactly like a value from the file. NULL: no default; the field stays
         * "not set" (NULL, 0 or negative) and an empty value in the file means the same. */
        const char *default_value;
        uint64_t min, max; /* inclusive bounds for numbers */
        const char *(*validate)(const char *value); /* strings, list items: NULL when fine, else why not */
        const char *const *names;                /* CONFIG_ENUM: the spellings, by value */
        unsigned types;        /* [check NAME] keys: the check types (bits) the key belongs to */
        unsigned required_for; /* [check NAME] keys: the check types that need it set */
        unsigned flags;
        ConfigType type;
        /* [aws] keys the AWS tools' variables also set: the first non-empty one of env[] takes
         * the key's place when the file does not set it (heald.ini wins, then the environment,
         * then the default or IMDS). */
        const char *env[2];
        /* A per-service endpoint's variable yields to [aws] endpoint_url in the file too:
         * whatever heald.ini says about endpoints wins over the environment. */
        bool env_yields_to_endpoint_url;
} ConfigKey;

_Static_assert(sizeof(CheckType) == sizeof(int) && sizeof(CheckAction) == sizeof(int), "enums are stored as int");
_Static_assert(offsetof(CheckConfig, expect_status_max) == offsetof(CheckConfig, expect_status_min) + sizeof(unsigned),
               "CONFIG_STATUS_RANGE writes two adjacent fields");

static bool check_action_is_unit(CheckAction a) {
        return a == CHECK_ACTION_RESTART_UNIT || a == CHECK_ACTION_START_UNIT || a == CHECK_ACTION_STOP_UNIT;
}

static bool url_has_host(const char *s, const char *scheme) {
        size_t n = strlen(scheme);
        return strncmp(s, scheme, n) == 0 && s[n] && s[n] != '/' && !strpbrk(s, " \t");
}

static bool is_http_url(const char *s) {
        return url_has_host(s, "http://") || url_has_host(s, "https://");
}

/* The authority of a URL (between "scheme://" and the path, query or fragment). */
static const char *url_authority(const char *url, size_t *ret_len) {
        const char *p = strstr(url, "://");
        p = p ? p + 3 : url;
        *ret_len = strcspn(p, "/?#");
        return p;
}

/* url with its userinfo ("user:password@") replaced by "***@"; caller frees; NULL: no memory. */
static char *url_redact_userinfo(const char *url) {
        size_t len;
        const char *authority = url_authority(url, &len);
        const char *at = memrchr(authority, '@', len);
        char *s;
        if (!at)
                return strdup(url);
        return asprintf(&s, "%.*s***%s", (int) (authority - url), url, at) < 0 ? NULL : s;
}

static bool url_is_plain_http_off_host(const char *url) {
        if (isempty(url) || strncmp(url, "http://", 7) != 0)
                return false;
        size_t len;
        const char *host = url_authority(url, &len);
        const char *at = memrchr(host, '@', len);
        if (at) {
                len -= (size_t) (at + 1 - host);
                host = at + 1;
        }
        size_t host_len = host[0] == '[' ? strcspn(host, "]") + 1 : strcspn(host, ":");
        if (host_len > len)
                host_len = len;
        static const char *const loopback[] = { "localhost", "[::1]" };
        for (size_t i = 0; i < ELEMENTSOF(loopback); i++)
                if (host_len == strlen(loopback[i]) && strncasecmp(host, loopback[i], host_len) == 0)
                        return false;
        bool ipv4_loopback = host_len > 4 && strncmp(host, "127.", 4) == 0;
        for (size_t i = 4; ipv4_loopback && i < host_len; i++)
                ipv4_loopback = (host[i] >= '0' && host[i] <= '9') || host[i] == '.';
        return !ipv4_loopback;
}

static const char *validate_absolute_path(const char *s) {
        return s[0] == '/' ? NULL : "must be an absolute path";
}

/* The node exporter's textfile collector reads only *.prom files of its directory. */
static const char *validate_metrics_textfile(const char *s) {
        size_t n = strlen(s);
        return s[0] == '/' && n > 6 && strcmp(s + n - 5, ".prom") == 0 && s[n - 6] != '/'
                       ? NULL
                       : "must be an absolute path ending in .prom (in the node exporter's textfile directory)";
}

static const char *validate_imds_endpoint(const char *s) {
        return url_has_host(s, "http://") ? NULL : "must start with http:// (IMDS is link-local, plain HTTP)";
}

/* An endpoint may hold "{region}", so that one file serves instances of every region. */
static const char *validate_endpoint_url(const char *s) {
        if (!is_http_url(s))
                return "must be empty or an http:// or https:// URL with a host";
        size_t braces = 0, placeholders = 0;
        for (const char *p = s; *p; p++) {
                braces += *p == '{' || *p == '}';
                placeholders += strncmp(p, "{region}", 8) == 0;
        }
        return braces == 2 * placeholders ? NULL : "may only hold the placeholder {region}";
}

static const char *validate_http_url(const char *s) {
        return is_http_url(s) ? NULL : "must be an http:// or https:// URL with a host";
}

/* The agent fills these in from the instance identity before it polls. */
static const char *validate_queue_url(const char *s) {
        static const char *const placeholders[] = { "{instance_id}", "{region}", "{account_id}" };

        if (!is_http_url(s))
                return "must be empty or an https:// or http:// URL with a host";
        for (const char *p = s; (p = strpbrk(p, "{}"));) {
                size_t i = 0;
                while (i < ELEMENTSOF(placeholders) && strncmp(p, placeholders[i], strlen(placeholders[i])) != 0)
                        i++;
                if (i == ELEMENTSOF(placeholders))
                        return "may only hold the placeholders {instance_id}, {region} and {account_id}";
                p += strlen(placeholders[i]);
        }
        return NULL;
}

/* Region names are lowercase words and a final number joined by '-': us-east-1, us-gov-west-1. */
static const char *validate_region(const char *s) {
        static const char *const why = "must be empty or a region name like us-east-1";
        size_t groups = 0;

        if (strlen(s) > 32)
                return why;
        for (const char *p = s;; p++) {
                size_t letters = strspn(p, "abcdefghijklmnopqrstuvwxyz");
                size_t digits = strspn(p, "0123456789");
                groups++;
                if (digits > 0 && p[digits] == 0)
                        return groups >= 3 ? NULL : why;
                if (letters == 0 || p[letters] != '-')
                        return why;
                p += letters;
        }
}

#define LETTERS_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

/* A bus name or ARN; the charset keeps values safe to echo into JSON and logs. */
static const char *validate_event_bus(const char *s) {
        return s[strspn(s, LETTERS_DIGITS "._-/:")] ? "may only contain letters, digits and ._-/: (a bus name or ARN)"
                                                    : NULL;
}

static const char *validate_source(const char *s) {
        return strncmp(s, "aws.", 4) == 0 ? "must not start with \"aws.\" (reserved for AWS services)" : NULL;
}

static const char *validate_check_name(const char *s) {
        return check_name_is_valid(s) ? NULL : "must be the name of a check (letters, digits, '-', '_', '.')";
}

static const char *validate_unit_name(const char *s) {
        return unit_name_is_valid(s, false) ? NULL : "must be a unit name with its type suffix, like nginx.service";
}

static const char *validate_unit_glob(const char *s) {
        return unit_name_is_valid(s, true)
                       ? NULL
                       : "must be a unit name or glob with its type suffix, like nginx.service or app-*.service";
}

/* IAM unique ids, "AROA...:i-0abc", account ids and ARNs, with glob characters. */
static const char *validate_sender_glob(const char *s) {
        return s[strspn(s, LETTERS_DIGITS ":_.@/+=-*?[]!")]
                       ? "must be a sender id or glob (letters, digits and :_.@/+=-*?[]!)"
                       : NULL;
}

static const char *validate_command_name(const char *s) {
        static const char *const commands[] = { "ping",        "run-checks",       "restart-units", "stop-units",
                                                "start-units", "stop-start-units", "prepare-stop",  "reboot" };
        for (size_t i = 0; i < ELEMENTSOF(commands); i++)
                if (streq_ptr(s, commands[i]))
                        return NULL;
        return "must be one of ping, run-checks, restart-units, stop-units, start-units, stop-start-units, "
               "prepare-stop, reboot";
}

static const char *validate_host(const char *s) {
        return strlen(s) > 253 || s[strspn(s, LETTERS_DIGITS ".:_-")] ? "must be a host name or an IP address" : NULL;
}

/* Journal field names: uppercase letters, digits and '_', not starting with a digit. */
static const char *validate_journal_match(const char *s) {
        size_t field = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_");
        return field > 0 && field <= 64 && !(s[0] >= '0' && s[0] <= '9') && s[field] == '='
                       ? NULL
                       : "must be FIELD=value, FIELD in uppercase letters, digits and _";
}

#define KEY(sec, name, t, field, def, ...)                                                       \
        {                                                                                        \
                .section = (sec), .key = (name), .type = (t), .offset = offsetof(Config, field), \
                .default_value = (def), __VA_ARGS__                                              \
        }

/* Every key heald reads, grouped by section in the order config_print() writes them.
 * Adding a key is adding a line here and a field in Config. */
static const ConfigKey config_keys[] = {
        KEY("agent", "state_dir", CONFIG_STRING, state_dir, "/var/lib/heald", .validate = validate_absolute_path,
            .flags = CONFIG_REQUIRED),
        KEY("agent", "log_level", CONFIG_LOG_LEVEL, log_level, "info"),
        KEY("agent", "heartbeat_interval", CONFIG_DURATION, heartbeat_interval, "300",
            .min = 10 * USEC_PER_MSEC, .max = 24 * USEC_PER_HOUR, .flags = CONFIG_ZERO_OFF),
        KEY("agent", "dry_run", CONFIG_BOOL, dry_run, "false"),
        KEY("agent", "control_socket", CONFIG_STRING, control_socket, "/run/heald/heald.sock",
            .validate = validate_absolute_path),

        KEY("aws", "region", CONFIG_STRING, region, "", .validate = validate_region,
            .env = { "AWS_REGION", "AWS_DEFAULT_REGION" }),
        KEY("aws", "imds_endpoint", CONFIG_STRING, imds_endpoint, "http://169.254.169.254",
            .validate = validate_imds_endpoint, .flags = CONFIG_REQUIRED,
            .env = { "AWS_EC2_METADATA_SERVICE_ENDPOINT" }),
        KEY("aws", "imds_timeout", CONFIG_DURATION, imds_timeout, "2s", .min = 100 * USEC_PER_MSEC,
            .max = USEC_PER_MINUTE),
        KEY("aws", "imds_disabled", CONFIG_BOOL, imds_disabled, "false", .env = { "AWS_EC2_METADATA_DISABLED" }),
        KEY("aws", "endpoint_url", CONFIG_STRING, endpoint_url, "", .validate = validate_endpoint_url,
            .env = { "AWS_ENDPOINT_URL" }),
        KEY("aws", "events_endpoint", CONFIG_STRING, events_endpoint, "", .validate = validate_endpoint_url,
            .env = { "AWS_ENDPOINT_URL_EVENTS" }, .env_yields_to_endpoint_url = true),
        KEY("aws", "sqs_endpoint", CONFIG_STRING, sqs_endpoint, "", .validate = validate_endpoint_url,
            .env = { "AWS_ENDPOINT_URL_SQS" }, .env_yields_to_endpoint_url = true),
        KEY("aws", "states_endpoint", CONFIG_STRING, states_endpoint, "", .validate = validate_endpoint_url,
            .env = { "AWS_ENDPOINT_URL_SFN" }, .env_yields_to_endpoint_url = true),

        KEY("eventbridge", "event_bus", CONFIG_STRING, event_bus, "default", .validate = validate_event_bus,
            .flags = CONFIG_REQUIRED),
        KEY("eventbridge", "source", CONFIG_STRING, source, "heald", .validate = validate_source,
            .flags = CONFIG_REQUIRED),
        KEY("eventbridge", "max_request_bytes", CONFIG_SIZE, max_request_bytes, "262144", .min = KIB,
            .max = MIB),
        KEY("eventbridge", "retry_base", CONFIG_DURATION, retry_base, "200ms", .min = USEC_PER_MSEC,
            .max = USEC_PER_HOUR),
        KEY("eventbridge", "retry_max", CONFIG_DURATION, retry_max, "30s", .min = USEC_PER_MSEC,
            .max = 24 * USEC_PER_HOUR),
        KEY("eventbridge", "auth_retry_interval", CONFIG_DURATION, auth_retry_interval, "2m",
            .min = USEC_PER_SEC, .max = 24 * USEC_PER_HOUR),
        KEY("eventbridge", "request_timeout", CONFIG_DURATION, request_timeout, "10s", .min = USEC_PER_SEC,
            .max = 10 * USEC_PER_MINUTE),

        KEY("outbox", "max_bytes", CONFIG_SIZE, outbox_max_bytes, "64MiB", .min = MIB, .max = UINT64_MAX),
        KEY("outbox", "dead_letter_max_bytes", CONFIG_SIZE, dead_letter_max_bytes, "1MiB", .min = 64 * KIB,
            .max = UINT64_MAX),

        KEY("metrics", "textfile", CONFIG_STRING, metrics_textfile, "", .validate = validate_metrics_textfile),

        KEY("sqs", "queue_url", CONFIG_STRING, queue_url, "", .validate = validate_queue_url),
        KEY("sqs", "wait_time", CONFIG_DURATION, sqs_wait_time, "20s", .min = 0, .max = 20 * USEC_PER_SEC,
            .flags = CONFIG_WHOLE_SECONDS),
        KEY("sqs", "max_messages", CONFIG_UNSIGNED, sqs_max_messages, "10", .min = 1, .max = 10),
        KEY("sqs", "visibility_timeout", CONFIG_DURATION, sqs_visibility_timeout, "60s", .min = USEC_PER_SEC,
            .max = 12 * USEC_PER_HOUR, .flags = CONFIG_WHOLE_SECONDS),

        KEY("commands", "allow", CONFIG_LIST, commands_allow, "ping, run-checks", .validate = validate_command_name),
        KEY("commands", "units", CONFIG_LIST, commands_units, "", .validate = validate_unit_glob),
        KEY("commands", "allowed_senders", CONFIG_LIST, commands_allowed_senders, "", .validate = validate_sender_glob),
        KEY("commands", "drain_units", CONFIG_LIST, commands_drain_units, "", .validate = validate_unit_name),
        KEY("commands", "verify_timeout", CONFIG_DURATION, commands_verify_timeout, "5m", .min = USEC_PER_SEC,
            .max = USEC_PER_HOUR),
        KEY("commands", "job_timeout", CONFIG_DURATION, commands_job_timeout, "5m", .min = USEC_PER_SEC,
            .max = USEC_PER_HOUR),
};

#define TYPE_BIT(t) (1u << (t))
#define ALL_TYPES ((1u << _CHECK_TYPE_MAX) - 1)
/* unit and journal checks follow events (D-Bus signals, journal entries) instead of polling */
#define POLLED_TYPES (ALL_TYPES & ~TYPE_BIT(CHECK_UNIT) & ~TYPE_BIT(CHECK_JOURNAL))
#define PERCENT .min = 0, .max = 100000 /* thousandths */

#define CHECK_KEY(name, t, field, def, ...)                                                             \
        {                                                                                               \
                .key = (name), .type = (t), .offset = offsetof(CheckConfig, field), .default_value = (def), \
                __VA_ARGS__                                                                             \
        }

/* The keys of a [check NAME] section, in the order config_print() writes them. Which keys a
 * section may hold depends on its type; defaults are filled in once the section is complete. */
static const ConfigKey check_keys[] = {
        CHECK_KEY("type", CONFIG_ENUM, type, NULL, .names = check_type_names, .types = ALL_TYPES,
                  .flags = CONFIG_REQUIRED),
        /* unit: how often a failed unit is judged again (from the state heald holds, no D-Bus
         * call); journal: the quiet time after a matching entry before the check recovers */
        CHECK_KEY("interval", CONFIG_DURATION, interval, "10s", .min = USEC_PER_SEC, .max = 24 * USEC_PER_HOUR,
                  .types = ALL_TYPES),
        CHECK_KEY("timeout", CONFIG_DURATION, timeout, "5s", .min = 100 * USEC_PER_MSEC,
                  .max = 10 * USEC_PER_MINUTE, .types = POLLED_TYPES),
        /* the default is 1 for unit, journal and file_age: see config_loader_finish_check() */
        CHECK_KEY("fail_after", CONFIG_UNSIGNED, fail_after, "3", .min = 1, .max = 100, .types = ALL_TYPES),
        CHECK_KEY("recover_after", CONFIG_UNSIGNED, recover_after, "1", .min = 1, .max = 100, .types = ALL_TYPES),
        CHECK_KEY("action", CONFIG_ENUM, action, "none", .names = check_action_names, .types = ALL_TYPES),
        CHECK_KEY("action_unit", CONFIG_STRING, action_unit, NULL, .validate = validate_unit_name, .types = ALL_TYPES),
        CHECK_KEY("action_command", CONFIG_COMMAND, action_command, NULL, .types = ALL_TYPES),
        CHECK_KEY("max_actions", CONFIG_UNSIGNED, max_actions, "3", .min = 1, .max = 100, .types = ALL_TYPES),
        CHECK_KEY("action_window", CONFIG_DURATION, action_window, "10m", .min = USEC_PER_MINUTE,
                  .max = 7 * 24 * USEC_PER_HOUR, .types = ALL_TYPES),
        CHECK_KEY("verify_timeout", CONFIG_DURATION, verify_timeout, "60s", .min = USEC_PER_SEC,
                  .max = USEC_PER_HOUR, .types = ALL_TYPES),
        CHECK_KEY("after", CONFIG_STRING, after, NULL, .validate = validate_check_name, .types = ALL_TYPES),

        CHECK_KEY("unit", CONFIG_STRING, unit, NULL, .validate = validate_unit_name, .types = TYPE_BIT(CHECK_UNIT),
                  .required_for = TYPE_BIT(CHECK_UNIT)),
        CHECK_KEY("url", CONFIG_STRING, url, NULL, .validate = validate_http_url, .types = TYPE_BIT(CHECK_HTTP),
                  .required_for = TYPE_BIT(CHECK_HTTP)),
        CHECK_KEY("expect_status", CONFIG_STATUS_RANGE, expect_status_min, "200-399", .min = 100, .max = 599,
                  .types = TYPE_BIT(CHECK_HTTP)),
        CHECK_KEY("expect_body", CONFIG_STRING, expect_body, NULL, .types = TYPE_BIT(CHECK_HTTP)),
        CHECK_KEY("host", CONFIG_STRING, host, NULL, .validate = validate_host, .types = TYPE_BIT(CHECK_TCP),
                  .required_for = TYPE_BIT(CHECK_TCP)),
        CHECK_KEY("port", CONFIG_UNSIGNED, port, NULL, .min = 1, .max = 65535, .types = TYPE_BIT(CHECK_TCP),
                  .required_for = TYPE_BIT(CHECK_TCP)),
        CHECK_KEY("path", CONFIG_STRING, path, NULL, .validate = validate_absolute_path,
                  .types = TYPE_BIT(CHECK_DISK) | TYPE_BIT(CHECK_FILE_AGE),
                  .required_for = TYPE_BIT(CHECK_DISK) | TYPE_BIT(CHECK_FILE_AGE)),
        CHECK_KEY("max_used_percent", CONFIG_DECIMAL, max_used_percent, NULL, PERCENT, .types = TYPE_BIT(CHECK_DISK)),
        CHECK_KEY("max_inodes_percent", CONFIG_DECIMAL, max_inodes_percent, NULL, PERCENT,
                  .types = TYPE_BIT(CHECK_DISK)),
        CHECK_KEY("min_available_percent", CONFIG_DECIMAL, min_available_percent, NULL, PERCENT,
                  .types = TYPE_BIT(CHECK_MEMORY), .required_for = TYPE_BIT(CHECK_MEMORY)),
        CHECK_KEY("max_swap_percent", CONFIG_DECIMAL, max_swap_percent, NULL, PERCENT,
                  .types = TYPE_BIT(CHECK_MEMORY)),
        CHECK_KEY("max_load_per_cpu", CONFIG_DECIMAL, max_load_per_cpu, NULL, .min = 1, .max = 1000000,
                  .types = TYPE_BIT(CHECK_LOAD), .required_for = TYPE_BIT(CHECK_LOAD)),
        CHECK_KEY("max_age", CONFIG_DURATION, max_age, NULL, .min = USEC_PER_SEC, .max = 365 * 24 * USEC_PER_HOUR,
                  .types = TYPE_BIT(CHECK_FILE_AGE), .required_for = TYPE_BIT(CHECK_FILE_AGE)),
        CHECK_KEY("match", CONFIG_LIST, match, NULL, .validate = validate_journal_match, .types = TYPE_BIT(CHECK_JOURNAL),
                  .flags = CONFIG_SPACE_SEPARATED),
        CHECK_KEY("pattern", CONFIG_REGEX, pattern, NULL, .types = TYPE_BIT(CHECK_JOURNAL),
                  .required_for = TYPE_BIT(CHECK_JOURNAL)),
        CHECK_KEY("command", CONFIG_COMMAND, command, NULL, .types = TYPE_BIT(CHECK_EXEC),
                  .required_for = TYPE_BIT(CHECK_EXEC)),
};

/* Per-service endpoint overrides, consulted by config_service_endpoint(). */
static const struct {
        const char *service;
        size_t offset;
} service_overrides[] = {
        { "events", offsetof(Config, events_endpoint) },
        { "sqs", offsetof(Config, sqs_endpoint) },
        { "states", offsetof(Config, states_endpoint) },
};

static const ConfigKey *config_key_find(const ConfigKey *keys, size_t n_keys, const char *section, const char *key) {
        for (size_t i = 0; i < n_keys; i++)
                if (streq_ptr(keys[i].section, section) && streq_ptr(keys[i].key, key))
                        return &keys[i];
        return NULL;
}

static size_t check_key_index(const char *key) {
        const ConfigKey *k = config_key_find(check_keys, ELEMENTSOF(check_keys), NULL, key);
        assert(k);
        return (size_t) (k - check_keys);
}

static bool config_section_known(const char *section, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (strlen(config_keys[i].section) == len && strncmp(config_keys[i].section, section, len) == 0)
                        return true;
        return false;
}

static void *config_field(const void *base, size_t offset) {
        return (uint8_t *) base + offset;
}

static bool config_type_is_text(ConfigType t) {
        return t == CONFIG_STRING || t == CONFIG_LIST || t == CONFIG_COMMAND || t == CONFIG_REGEX;
}

static char **strv_free(char **l) {
        if (l)
                for (char **s = l; *s; s++)
                        free(*s);
        free(l);
        return NULL;
}

/* Append s to the NULL-terminated *l of *n items; takes ownership of s even on failure. */
static int strv_push(char ***l, size_t *n, char *s) {
        char **grown = realloc(*l, (*n + 2) * sizeof(char *));
        if (!grown) {
                free(s);
                return -ENOMEM;
        }
        grown[(*n)++] = s;
        grown[*n] = NULL;
        *l = grown;
        return 0;
}

/* Free what a field owns and leave it "not set". */
static void config_field_reset(const ConfigKey *k, void *field) {
        switch (k->type) {
        case CONFIG_STRING:
        case CONFIG_REGEX:
                *(char **) field = mfree(*(char **) field);
                break;
        case CONFIG_LIST:
        case CONFIG_COMMAND:
                *(char ***) field = strv_free(*(char ***) field);
                break;
        case CONFIG_DECIMAL:
                *(double *) field = -1;
                break;
        case CONFIG_DURATION:
        case CONFIG_SIZE:
                *(uint64_t *) field = 0;
                break;
        case CONFIG_UNSIGNED:
                *(unsigned *) field = 0;
                break;
        case CONFIG_STATUS_RANGE:
                ((unsigned *) field)[0] = ((unsigned *) field)[1] = 0;
                break;
        case CONFIG_LOG_LEVEL:
        case CONFIG_ENUM:
                *(int *) field = 0;
                break;
        case CONFIG_BOOL:
                *(bool *) field = false;
                break;
        }
}

static bool config_field_is_set(const ConfigKey *k, const void *field) {
        switch (k->type) {
        case CONFIG_STRING:
        case CONFIG_REGEX:
                return *(char *const *) field;
        case CONFIG_LIST:
        case CONFIG_COMMAND:
                return *(char **const *) field;
        case CONFIG_DECIMAL:
                return *(const double *) field >= 0;
        case CONFIG_DURATION:
        case CONFIG_SIZE:
                return k->default_value || *(const uint64_t *) field != 0;
        case CONFIG_UNSIGNED:
                return k->default_value || *(const unsigned *) field != 0;
        case CONFIG_STATUS_RANGE:
        case CONFIG_LOG_LEVEL:
        case CONFIG_ENUM:
        case CONFIG_BOOL:
                return true;
        }
        return true;
}

static void config_fields_free(const ConfigKey *keys, size_t n_keys, void *base) {
        for (size_t i = 0; i < n_keys; i++)
                config_field_reset(&keys[i], config_field(base, keys[i].offset));
}

static int parse_number(const char **s, uint64_t *ret) {
        const char *p = *s;
        uint64_t v = 0;

        if (*p < '0' || *p > '9')
                return -EINVAL;
        for (; *p >= '0' && *p <= '9'; p++) {
                if (v > (UINT64_MAX - (uint64_t) (*p - '0')) / 10)
                        return -ERANGE;
                v = v * 10 + (uint64_t) (*p - '0');
        }
        *s = p;
        *ret = v;
        return 0;
}

typedef struct Unit {
        const char *suffix;
        uint64_t factor;
} Unit;

static int parse_with_units(const char *s, const Unit *units, size_t n_units, uint64_t *ret) {
        uint64_t v;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_number(&s, &v);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n_units; i++) {
                if (strcmp(s, units[i].suffix) != 0)
                        continue;
                if (v > UINT64_MAX / units[i].factor)
                        return -ERANGE;
                *ret = v * units[i].factor;
                return 0;
        }
        return -EINVAL;
}

static const Unit duration_units[] = {
        { "", USEC_PER_SEC },    { "ms", USEC_PER_MSEC }, { "s", USEC_PER_SEC },
        { "m", USEC_PER_MINUTE }, { "h", USEC_PER_HOUR },
};

static const Unit size_units[] = {
        { "", 1 },        { "K", KIB }, { "KiB", KIB }, { "M", MIB },
        { "MiB", MIB },   { "G", GIB }, { "GiB", GIB },
};

int config_parse_duration(const char *s, usec_t *ret) {
        return parse_with_units(s, duration_units, ELEMENTSOF(duration_units), ret);
}

int config_parse_size(const char *s, uint64_t *ret) {
        return parse_with_units(s, size_units, ELEMENTSOF(size_units), ret);
}

int config_parse_bool(const char *s, bool *ret) {
        static const char *const yes[] = { "true", "yes", "on", "1" };
        static const char *const no[] = { "false", "no", "off", "0" };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                if (strcasecmp(s, yes[i]) == 0) {
                        *ret = true;
                        return 0;
                }
                if (strcasecmp(s, no[i]) == 0) {
                        *ret = false;
                        return 0;
                }
        }
        return -EINVAL;
}

/* "92.5" -> 92500: decimals are kept as exact thousandths, so printing them back is exact. */
static int parse_thousandths(const char *s, uint64_t *ret) {
        uint64_t whole, fraction = 0;
        unsigned digits = 0;
        int r = parse_number(&s, &whole);
        if (r < 0)
                return r;
        if (*s == '.') {
                s++;
                if (*s < '0' || *s > '9')
                        return -EINVAL;
                for (; *s >= '0' && *s <= '9'; s++, digits++) {
                        if (digits == 3)
                                return -EINVAL;
                        fraction = fraction * 10 + (uint64_t) (*s - '0');
                }
        }
        if (*s)
                return -EINVAL;
        for (; digits < 3; digits++)
                fraction *= 10;
        if (whole > (UINT64_MAX - fraction) / 1000)
                return -ERANGE;
        *ret = whole * 1000 + fraction;
        return 0;
}

/* "200" or "200-299" */
static int parse_status_range(const char *s, uint64_t min, uint64_t max, unsigned ret[static 2]) {
        uint64_t lo, hi;

        if (parse_number(&s, &lo) < 0)
                return -EINVAL;
        hi = lo;
        if (*s == '-') {
                s++;
                if (parse_number(&s, &hi) < 0)
                        return -EINVAL;
        }
        if (*s || lo < min || hi > max || lo > hi)
                return -EINVAL;
        ret[0] = (unsigned) lo;
        ret[1] = (unsigned) hi;
        return 0;
}

/* Words separated by any of separators; no quoting. */
static int split_list(const char *s, const char *separators, char ***ret) {
        char **l = NULL;
        size_t n = 0;

        for (s += strspn(s, separators); *s; s += strspn(s, separators)) {
                size_t len = strcspn(s, separators);
                char *word = strndup(s, len);
                if (!word || strv_push(&l, &n, word) < 0) {
                        strv_free(l);
                        return -ENOMEM;
                }
                s += len;
        }
        *ret = l;
        return 0;
}

/* A command line as a shell without expansion would split it: whitespace separates words,
 * "double" or 'single' quotes keep whitespace (and the other quote) in a word, quoted and
 * bare parts of one word join up. No escapes, no variables, no globs. */
static int split_command(const char *s, char ***ret, const char **ret_reason) {
        _cleanup_free_ char *word = malloc(strlen(s) + 1);
        char **l = NULL;
        size_t n = 0;

        if (!word)
                return -ENOMEM;
        for (;;) {
                s += strspn(s, " ");
                if (!*s)
                        break;
                size_t len = 0;
                while (*s && *s != ' ') {
                        if (*s != '"' && *s != '\'') {
                                word[len++] = *s++;
                                continue;
                        }
                        const char *close = strchr(s + 1, *s);
                        if (!close) {
                                strv_free(l);
                                *ret_reason = "unterminated quote";
                                return -EINVAL;
                        }
                        memcpy(word + len, s + 1, (size_t) (close - s - 1));
                        len += (size_t) (close - s - 1);
                        s = close + 1;
                }
                char *copy = strndup(word, len);
                if (!copy || strv_push(&l, &n, copy) < 0) {
                        strv_free(l);
                        return -ENOMEM;
                }
        }
        *ret = l;
        return 0;
}

/* Writes one word so split_command() reads it back: bare when it can be, else as quoted runs,
 * each in the quote it does not contain. " ;" would start a comment, so a word starting with
 * ';' is never bare and a run ends before a ';' that follows a space. */
static void write_command_word(const char *w, FILE *f) {
        if (*w && !strpbrk(w, " \"'") && *w != ';') {
                fputs(w, f);
                return;
        }
        if (!*w)
                fputs("''", f);
        while (*w) {
                char quote = *w == '"' ? '\'' : '"';
                size_t len = 1;
                while (w[len] && w[len] != quote && !(w[len] == ';' && w[len - 1] == ' '))
                        len++;
                fprintf(f, "%c%.*s%c", quote, (int) len, w, quote);
                w += len;
        }
}

/* The shortest exact spelling: 90 seconds is "90s", 2 minutes "2m". */
static void format_number(ConfigType type, uint64_t v, char buf[static 32]) {
        static const Unit duration_out[] = {
                { "h", USEC_PER_HOUR }, { "m", USEC_PER_MINUTE }, { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC },
        };
        static const Unit size_out[] = { { "GiB", GIB }, { "MiB", MIB }, { "KiB", KIB }, { "", 1 } };
        const Unit *units = type == CONFIG_DURATION ? duration_out : size_out;
        size_t i = 0;

        assert(ELEMENTSOF(duration_out) == ELEMENTSOF(size_out));
        if (type == CONFIG_UNSIGNED) {
                snprintf(buf, 32, "%" PRIu64, v);
                return;
        }
        if (type == CONFIG_DECIMAL) {
                int n = snprintf(buf, 32, "%" PRIu64 ".%03u", v / 1000, (unsigned) (v % 1000));
                while (n > 0 && buf[n - 1] == '0')
                        buf[--n] = 0;
                if (n > 0 && buf[n - 1] == '.')
                        buf[--n] = 0;
                return;
        }
        if (v == 0) {
                snprintf(buf, 32, "0");
                return;
        }
        /* the last unit is the parser's smallest, so the loop always stops */
        while (i + 1 < ELEMENTSOF(size_out) && v % units[i].factor != 0)
                i++;
        snprintf(buf, 32, "%" PRIu64 "%s", v / units[i].factor, units[i].suffix);
}

/* The value as config_print() writes it; nothing for "not set". */
static void config_field_write(const ConfigKey *k, const void *field, FILE *f) {
        char number[32];

        if (!config_field_is_set(k, field))
                return;
        switch (k->type) {
        case CONFIG_STRING:
        case CONFIG_REGEX:
                fputs(*(char *const *) field, f);
                break;
        case CONFIG_LIST:
                for (char **s = *(char **const *) field; *s; s++)
                        fprintf(f, "%s%s", s == *(char **const *) field ? ""
                                           : k->flags & CONFIG_SPACE_SEPARATED ? " " : ", ", *s);
                break;
        case CONFIG_COMMAND:
                for (char **s = *(char **const *) field; *s; s++) {
                        if (s != *(char **const *) field)
                                fputc(' ', f);
                        write_command_word(*s, f);
                }
                break;
        case CONFIG_LOG_LEVEL:
                fputs(log_level_to_string(*(const int *) field), f);
                break;
        case CONFIG_ENUM:
                fputs(k->names[*(const int *) field], f);
                break;
        case CONFIG_BOOL:
                fputs(*(const bool *) field ? "true" : "false", f);
                break;
        case CONFIG_DECIMAL:
                format_number(k->type, (uint64_t) (*(const double *) field * 1000 + 0.5), number);
                fputs(number, f);
                break;
        case CONFIG_DURATION:
        case CONFIG_SIZE:
                format_number(k->type, *(const uint64_t *) field, number);
                fputs(number, f);
                break;
        case CONFIG_UNSIGNED:
                format_number(k->type, *(const unsigned *) field, number);
                fputs(number, f);
                break;
        case CONFIG_STATUS_RANGE: {
                const unsigned *range = field;
                if (range[0] == range[1])
                        fprintf(f, "%u", range[0]);
                else
                        fprintf(f, "%u-%u", range[0], range[1]);
                break;
        }
        }
}

/* Lists and commands are printed in a canonical spelling, which may be longer than the
 * one in the file; that spelling must fit the line too. */
static int config_field_written_length(const ConfigKey *k, const void *field, size_t *ret) {
        char *buf = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&buf, &len);

        if (!f)
                return -ENOMEM;
        config_field_write(k, field, f);
        if (fclose(f) != 0) {
                free(buf);
                return -ENOMEM;
        }
        free(buf);
        *ret = len;
        return 0;
}

_printf_(2, 3) static int reason_printf(char **ret_reason, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        int n = vasprintf(ret_reason, fmt, ap);
        va_end(ap);
        if (n < 0) {
                *ret_reason = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

/* Rules for every value that is text. */
static const char *validate_text(const char *value) {
        if (strlen(value) > CONFIG_STRING_MAX)
                return "too long (at most " STRINGIFY(CONFIG_STRING_MAX) " bytes)";
        /* inih keeps the ';' of "key =;x", but "key = ;x" is a comment */
        if (value[0] == ';')
                return "must not start with ';' (it would read as a comment)";
        for (const char *p = value; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                        return "must not contain control characters";
        return NULL;
}

/* glibc's regcomp() copies a repeated subexpression once per repetition ("a+" is "aa*",
 * "a{3}" is "aaa"), so stacked or nested repetitions grow exponentially: "a++++++++++++..."
 * exhausts memory, and its time grows faster than its size. Patterns whose expansion may
 * exceed this many elements (counting every repetition operator as a copy, which
 * overestimates) are refused; real patterns stay far below. */
#define REGEX_EXPANSION_MAX 1000

static uint64_t regex_saturate(uint64_t v) {
        return v > REGEX_EXPANSION_MAX ? REGEX_EXPANSION_MAX + 1 : v;
}

/* Elements of the expansion of the pattern at *p up to the end or, nested, up to the ')' that
 * closes the group, where *p is left. An estimate for refusing patterns, not a validator:
 * regcomp() is that (it takes a ')' that closes nothing as a character). */
static uint64_t regex_expansion(const char **p, bool nested) {
        uint64_t total = 0, last = 0;

        while (**p && !(nested && **p == ')')) {
                const char *c = (*p)++;
                uint64_t size = 1, factor = 1;

                switch (*c) {
                case '|':
                        continue;
                case '(':
                        size = regex_saturate(regex_expansion(p, true) + 1); /* "()" is a node too */
                        if (**p == ')')
                                (*p)++;
                        break;
                case '\\':
                        if (**p)
                                (*p)++;
                        break;
                case '[': {
                        const char *q = *p + (**p == '^');
                        q += *q == ']'; /* a leading ']' is a member */
                        while (*q && *q != ']') {
                                char kind = q[1];
                                if (*q == '[' && (kind == ':' || kind == '=' || kind == '.')) {
                                        q += 2;
                                        while (*q && !(q[0] == kind && q[1] == ']'))
                                                q++;
                                        q += *q ? 2 : 0;
                                } else
                                        q++;
                        }
                        *p = q + (*q == ']');
                        break;
                }
                case '+':
                case '*':
                case '?':
                        factor = 2;
                        total = regex_saturate(total - last + last * factor);
                        last = regex_saturate(last * factor);
                        continue;
                case '{': {
                        const char *q = *p;
                        uint64_t n = 0, m;
                        if (parse_number(&q, &n) < 0)
                                break; /* a literal '{' */
                        m = n + 1;
                        if (*q == ',') {
                                q++;
                                if (parse_number(&q, &m) < 0)
                                        m = n + 1;
                        }
                        if (*q != '}')
                                break;
                        *p = q + 1;
                        factor = regex_saturate((m > n ? m : n) + 1);
                        total = regex_saturate(total - last + regex_saturate(last * factor));
                        last = regex_saturate(last * factor);
                        continue;
                }
                default:
                        break;
                }
                last = size;
                total = regex_saturate(total + size);
        }
        return total;
}

/* argv[0] is run without a shell or PATH lookup, so it must be there now. */
static int validate_program(char *const *argv, char **ret_reason) {
        struct stat st;

        if (argv[0][0] != '/')
                return reason_printf(ret_reason, "%s: the program must be an absolute path (no PATH lookup)", argv[0]);
        if (stat(argv[0], &st) < 0)
                return reason_printf(ret_reason, "%s: %s", argv[0], strerror(errno));
        if (!S_ISREG(st.st_mode) || access(argv[0], X_OK) < 0)
                return reason_printf(ret_reason, "%s: not an executable file", argv[0]);
        return 0;
}

static int config_key_parse_list(const ConfigKey *k, const char *value, void *field, char **ret_reason) {
        const char *why = NULL;
        char **l = NULL;
        int r;

        if (k->type == CONFIG_COMMAND) {
                r = split_command(value, &l, &why);
                if (r == -EINVAL)
                        return reason_printf(ret_reason, "%s", why);
        } else
                r = split_list(value, k->flags & CONFIG_SPACE_SEPARATED ? " " : ", ", &l);
        if (r < 0)
                return r;
        if (!l) /* only separators */
                return reason_printf(ret_reason, "%s", k->type == CONFIG_COMMAND ? "empty command" : "empty list");
        if (k->type == CONFIG_COMMAND)
                r = validate_program(l, ret_reason);
        for (char **s = l; r == 0 && *s; s++)
                if (k->validate && (why = k->validate(*s)))
                        r = reason_printf(ret_reason, "\"%s\" %s", *s, why);
        size_t len = 0;
        if (r == 0)
                r = config_field_written_length(k, &l, &len);
        if (r == 0 && len > CONFIG_STRING_MAX)
                r = reason_printf(ret_reason, "too long as written back (at most " STRINGIFY(CONFIG_STRING_MAX)
                                              " bytes, items joined by \"%s\")",
                                  k->type == CONFIG_COMMAND || k->flags & CONFIG_SPACE_SEPARATED ? " " : ", ");
        if (r < 0) {
                strv_free(l);
                return r;
        }
        strv_free(*(char ***) field);
        *(char ***) field = l;
        return 0;
}

static int config_key_parse_number(const ConfigKey *k, const char *value, uint64_t *ret, char **ret_reason) {
        uint64_t v;
        int r;

        switch (k->type) {
        case CONFIG_DURATION:
                r = config_parse_duration(value, &v);
                if (r == -EINVAL)
                        return reason_printf(ret_reason, "not a duration (write e.g. 30, 200ms, 30s, 5m or 1h)");
                break;
        case CONFIG_SIZE:
                r = config_parse_size(value, &v);
                if (r == -EINVAL)
                        return reason_printf(ret_reason,
                                             "not a size (write e.g. 4096, 64K, 64KiB, 1M, 1MiB, 1G or 1GiB)");
                break;
        case CONFIG_DECIMAL:
                r = parse_thousandths(value, &v);
                if (r == -EINVAL)
                        return reason_printf(ret_reason, "not a number (write e.g. 90 or 92.5, at most 3 decimals)");
                break;
        default:
                r = parse_number(&value, &v);
                if (r == -EINVAL || (r == 0 && *value))
                        return reason_printf(ret_reason, "not a whole number");
                break;
        }
        if (r < 0 || ((v < k->min || v > k->max) && !(v == 0 && (k->flags & CONFIG_ZERO_OFF))))
                return -ERANGE; /* the caller words the bounds */
        if ((k->flags & CONFIG_WHOLE_SECONDS) && v % USEC_PER_SEC != 0)
                return reason_printf(ret_reason, "must be whole seconds");
        *ret = v;
        return 0;
}

/* Parse value into k's field of base (a Config or a CheckConfig). Returns 0, -ENOMEM,
 * -ERANGE (out of k's bounds) or -EINVAL with *ret_reason saying why (caller frees). */
static int config_key_parse(const ConfigKey *k, const char *value, void *base, char **ret_reason) {
        void *field = config_field(base, k->offset);
        const char *why;
        uint64_t number = 0;
        int r;

        if (isempty(value)) {
                if (!(k->flags & CONFIG_REQUIRED) && (config_type_is_text(k->type) || !k->default_value)) {
                        config_field_reset(k, field);
                        return 0;
                }
                return reason_printf(ret_reason, "%s",
                                     config_type_is_text(k->type) || !k->default_value
                                             ? "must not be empty"
                                             : "missing value (delete the line to get the default)");
        }
        if (config_type_is_text(k->type) && (why = validate_text(value)))
                return reason_printf(ret_reason, "%s", why);

        switch (k->type) {
        case CONFIG_STRING:
                if (k->validate && (why = k->validate(value)))
                        return reason_printf(ret_reason, "%s", why);
                return free_and_strdup(field, value);
        case CONFIG_REGEX: {
                const char *p = value;
                if (regex_expansion(&p, false) > REGEX_EXPANSION_MAX)
                        return reason_printf(ret_reason, "too complex (its repetitions expand to more than %d elements)",
                                             REGEX_EXPANSION_MAX);
                regex_t re;
                r = regcomp(&re, value, REG_EXTENDED | REG_NOSUB);
                if (r != 0) {
                        char text[128];
                        regerror(r, &re, text, sizeof text);
                        return reason_printf(ret_reason, "not a valid extended regular expression: %s", text);
                }
                regfree(&re);
                return free_and_strdup(field, value);
        }
        case CONFIG_LIST:
        case CONFIG_COMMAND:
                return config_key_parse_list(k, value, field, ret_reason);
        case CONFIG_LOG_LEVEL:
                r = log_level_from_string(value);
                if (r < 0)
                        return reason_printf(ret_reason, "must be one of debug, info, notice, warning, error");
                *(int *) field = r;
                return 0;
        case CONFIG_ENUM: {
                _cleanup_free_ char *all = NULL;
                for (int i = 0; k->names[i]; i++) {
                        if (streq_ptr(k->names[i], value)) {
                                *(int *) field = i;
                                return 0;
                        }
                        char *longer = NULL;
                        if (asprintf(&longer, "%s%s%s", all ?: "", all ? ", " : "", k->names[i]) < 0)
                                return -ENOMEM;
                        free(all);
                        all = longer;
                }
                return reason_printf(ret_reason, "must be one of %s", all);
        }
        case CONFIG_BOOL:
                if (config_parse_bool(value, field) < 0)
                        return reason_printf(ret_reason, "must be true or false (or yes/no, on/off, 1/0)");
                return 0;
        case CONFIG_STATUS_RANGE:
                if (parse_status_range(value, k->min, k->max, field) < 0)
                        return reason_printf(ret_reason, "must be a status code or a range like 200 or 200-299, "
                                                         "within %" PRIu64 "-%" PRIu64, k->min, k->max);
                return 0;
        case CONFIG_DURATION:
        case CONFIG_SIZE:
        case CONFIG_UNSIGNED:
        case CONFIG_DECIMAL:
                r = config_key_parse_number(k, value, &number, ret_reason);
                if (r < 0)
                        return r;
                if (k->type == CONFIG_UNSIGNED)
                        *(unsigned *) field = (unsigned) number; /* max fits: the table says so */
                else if (k->type == CONFIG_DECIMAL)
                        *(double *) field = (double) number / 1000;
                else
                        *(uint64_t *) field = number;
                return 0;
        }
        assert(!"unknown config type");
        return -EINVAL;
}

static int config_key_range(const ConfigKey *k, char **ret) {
        char lo[32], hi[32], *s;
        format_number(k->type, k->min, lo);
        format_number(k->type, k->max, hi);
        int n = k->max == UINT64_MAX ? asprintf(&s, "must be at least %s", lo)
                : (k->flags & CONFIG_ZERO_OFF) ? asprintf(&s, "must be 0 (off) or between %s and %s", lo, hi)
                                               : asprintf(&s, "must be between %s and %s", lo, hi);
        if (n < 0)
                return -ENOMEM;
        *ret = s;
        return 0;
}

static void check_config_done(CheckConfig *cc) {
        config_fields_free(check_keys, ELEMENTSOF(check_keys), cc);
        free(cc->name);
        free(cc->url_public);
}

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        config_fields_free(config_keys, ELEMENTSOF(config_keys), c);
        for (size_t i = 0; i < c->n_checks; i++)
                check_config_done(&c->checks[i]);
        free(c->checks);
        free(c->path);
        free(c);
        return NULL;
}

const CheckConfig *config_find_check(const Config *c, const char *name) {
        assert(c);
        for (size_t i = 0; i < c->n_checks; i++)
                if (streq_ptr(c->checks[i].name, name))
                        return &c->checks[i];
        return NULL;
}

/* Where each key of one [check NAME] section was set; 0: not in the file. */
typedef struct CheckLines {
        unsigned key_line[ELEMENTSOF(check_keys)];
} CheckLines;

typedef struct ConfigError {
        unsigned line;
        char *message; /* without "FILE:LINE: " */
} ConfigError;

/* State of one parse: inih pulls lines through config_loader_read() and pushes keys into
 * config_loader_handle(); both see the same line number because inih reads one line per call. */
typedef struct ConfigLoader {
        Config *config;
        const char *name;
        const char *next; /* unread text */
        unsigned line;    /* the line inih is working on */
        unsigned key_line[ELEMENTSOF(config_keys)]; /* where each key was set; 0: default */
        CheckLines *check_lines; /* one per config->checks[] */
        bool in_check;    /* the current section is the last of config->checks[] */
        bool in_bad_section; /* its header was refused: its keys would only repeat that */
        int error;        /* -EINVAL once anything is wrong, -ENOMEM (final); 0: none yet */
        ConfigError *errors; /* every error, in the order found */
        size_t n_errors;
} ConfigLoader;

static void config_loader_free_errors(ConfigLoader *l) {
        for (size_t i = 0; i < l->n_errors; i++)
                free(l->errors[i].message);
        l->errors = mfree(l->errors);
        l->n_errors = 0;
}

static int config_loader_oom(ConfigLoader *l) {
        l->error = -ENOMEM;
        config_loader_free_errors(l); /* a partial list would claim to be the whole */
        return 0;
}

static bool config_loader_failed_at(const ConfigLoader *l, unsigned line) {
        for (size_t i = 0; i < l->n_errors; i++)
                if (l->errors[i].line == line)
                        return true;
        return false;
}

/* Record one error and carry on, so check-config can show them all. One per line: a second
 * one on the same line follows from the first (a refused value reported again as missing). */
_printf_(3, 4) static int config_loader_fail(ConfigLoader *l, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (l->error == -ENOMEM || config_loader_failed_at(l, line))
                return 0;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        ConfigError *errors = msg ? realloc(l->errors, (l->n_errors + 1) * sizeof(ConfigError)) : NULL;
        if (!errors)
                return config_loader_oom(l);
        l->errors = errors;
        /* kept in the order of the file: rules that tie keys together are applied later */
        size_t at = l->n_errors;
        while (at > 0 && errors[at - 1].line > line)
                at--;
        memmove(&errors[at + 1], &errors[at], (l->n_errors - at) * sizeof(ConfigError));
        errors[at] = (ConfigError) { .line = line, .message = TAKE_PTR(msg) };
        l->n_errors++;
        l->error = -EINVAL;
        return 0;
}

static bool is_printable(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
}

/* Parse one "key = value" of section label (e.g. "agent", "check web") into base. */
static int config_loader_set(ConfigLoader *l, const ConfigKey *k, void *base, unsigned *key_line,
                             const char *label, const char *value) {
        _cleanup_free_ char *reason = NULL;

        if (*key_line != 0)
                return config_loader_fail(l, l->line, "[%s] %s: duplicate key (first set on line %u)", label, k->key,
                                          *key_line);
        *key_line = l->line;

        int r = config_key_parse(k, value, base, &reason);
        if (r == -ERANGE) {
                if (config_key_range(k, &reason) < 0)
                        return config_loader_oom(l);
                return config_loader_fail(l, l->line, "[%s] %s: %s", label, k->key, reason);
        }
        if (r == -EINVAL && reason)
                return config_loader_fail(l, l->line, "[%s] %s: %s", label, k->key, reason);
        if (r < 0)
                return config_loader_oom(l);
        return 1;
}

static CheckConfig *config_loader_current_check(ConfigLoader *l, CheckLines **ret_lines, char label[static 80]) {
        size_t i = l->config->n_checks - 1;

        assert(l->in_check);
        *ret_lines = &l->check_lines[i];
        snprintf(label, 80, "check %s", l->config->checks[i].name);
        return &l->config->checks[i];
}

/* The check's key was set, and its value refused: the rules that involve it would only repeat that. */
static bool config_loader_refused(const ConfigLoader *l, const CheckLines *lines, const char *key) {
        unsigned line = lines->key_line[check_key_index(key)];
        return line != 0 && config_loader_failed_at(l, line);
}

/* Defaults and the rules that tie the keys of a [check NAME] section together, once all of
 * it has been read: keys may come in any order. Missing keys are reported at the header. */
static void config_loader_finish_check(ConfigLoader *l) {
        CheckLines *lines;
        char label[80];
        CheckConfig *cc = config_loader_current_check(l, &lines, label);
        const unsigned *key_line = lines->key_line;
        _cleanup_free_ char *reason = NULL;

        unsigned type_line = key_line[check_key_index("type")];
        if (type_line == 0) {
                config_loader_fail(l, cc->line, "[%s] type: required (unit, http, tcp, disk, memory, load, file_age, "
                                                "journal or exec)", label);
                return;
        }
        if (config_loader_failed_at(l, type_line))
                return; /* every rule below depends on the type */
        unsigned bit = TYPE_BIT(cc->type);
        const char *type = check_type_to_string(cc->type);

        for (size_t i = 0; i < ELEMENTSOF(check_keys); i++) {
                const ConfigKey *k = &check_keys[i];
                if (key_line[i] != 0 && !(k->types & bit))
                        config_loader_fail(l, key_line[i], "[%s] %s: not a key of type %s", label, k->key, type);
                else if (key_line[i] == 0 && k->default_value && (k->types & bit)) {
                        int r = config_key_parse(k, k->default_value, cc, &reason);
                        if (r < 0) {
                                assert(r == -ENOMEM); /* a default that does not parse is a bug in the table */
                                config_loader_oom(l);
                                return;
                        }
                }
        }
        /* a unit or a journal line fails once per event; the age of a file does not flap */
        if (key_line[check_key_index("fail_after")] == 0 &&
            (cc->type == CHECK_UNIT || cc->type == CHECK_JOURNAL || cc->type == CHECK_FILE_AGE))
                cc->fail_after = 1;

        for (size_t i = 0; i < ELEMENTSOF(check_keys); i++) {
                const ConfigKey *k = &check_keys[i];
                if ((k->required_for & bit) && !config_field_is_set(k, config_field(cc, k->offset)))
                        config_loader_fail(l, key_line[i] ?: cc->line, "[%s] %s: required for type %s", label, k->key,
                                           type);
        }
        /* Basic auth in the URL works, but a password must not travel in every event. */
        if (cc->url && !cc->url_public && !(cc->url_public = url_redact_userinfo(cc->url)))
                config_loader_oom(l);
        if (cc->type == CHECK_DISK && cc->max_used_percent < 0 && cc->max_inodes_percent < 0 &&
            !config_loader_refused(l, lines, "max_used_percent") && !config_loader_refused(l, lines, "max_inodes_percent"))
                config_loader_fail(l, cc->line, "[%s] max_used_percent: required for type disk (or max_inodes_percent)",
                                   label);
        if ((bit & POLLED_TYPES) && cc->timeout >= cc->interval) {
                unsigned a = key_line[check_key_index("timeout")], b = key_line[check_key_index("interval")];
                if (!config_loader_refused(l, lines, "timeout") && !config_loader_refused(l, lines, "interval"))
                        config_loader_fail(l, a > b ? a : b, "[%s] timeout: must be less than interval", label);
        }
        if (config_loader_refused(l, lines, "action"))
                return; /* the rules below depend on the action */

        unsigned unit_line = key_line[check_key_index("action_unit")];
        unsigned command_line = key_line[check_key_index("action_command")];
        if (unit_line != 0 && !check_action_is_unit(cc->action))
                config_loader_fail(l, unit_line, "[%s] action_unit: only used with action restart-unit, start-unit "
                                                 "or stop-unit", label);
        if (command_line != 0 && cc->action != CHECK_ACTION_EXEC)
                config_loader_fail(l, command_line, "[%s] action_command: only used with action exec", label);
        if (check_action_is_unit(cc->action) && !cc->action_unit && !config_loader_refused(l, lines, "action_unit")) {
                if (cc->type != CHECK_UNIT)
                        config_loader_fail(l, cc->line, "[%s] action_unit: required for action %s", label,
                                           check_action_to_string(cc->action));
                else if (cc->unit && free_and_strdup(&cc->action_unit, cc->unit) < 0)
                        config_loader_oom(l);
        }
        if (cc->action == CHECK_ACTION_EXEC && !cc->action_command && !config_loader_refused(l, lines, "action_command"))
                config_loader_fail(l, cc->line, "[%s] action_command: required for action exec", label);
}

/* A "[check NAME]" header: a new, empty check that the following keys fill in. */
static void config_loader_add_check(ConfigLoader *l, const char *name, size_t n) {
        Config *c = l->config;

        _cleanup_free_ char *copy = strndup(name, n);
        if (!copy) {
                config_loader_oom(l);
                return;
        }
        if (strlen(copy) != n || !check_name_is_valid(copy)) {
                config_loader_fail(l, l->line, "[check %.*s]: a check name is 1 to %d letters, digits, '-', '_' "
                                               "or '.'", (int) n, name, CHECK_NAME_MAX);
                return;
        }
        for (size_t i = 0; i < c->n_checks; i++)
                if (strlen(c->checks[i].name) == n && memcmp(c->checks[i].name, name, n) == 0) {
                        config_loader_fail(l, l->line, "[check %.*s]: duplicate check (first defined on line %u)",
                                           (int) n, name, c->checks[i].line);
                        return;
                }
        if (c->n_checks == CONFIG_CHECKS_MAX) {
                config_loader_fail(l, l->line, "[check %.*s]: too many checks (at most %d)", (int) n, name,
                                   CONFIG_CHECKS_MAX);
                return;
        }

        CheckConfig *checks = realloc(c->checks, (c->n_checks + 1) * sizeof(CheckConfig));
        if (!checks) {
                config_loader_oom(l);
                return;
        }
        c->checks = checks;
        CheckLines *lines = realloc(l->check_lines, (c->n_checks + 1) * sizeof(CheckLines));
        if (!lines) {
                config_loader_oom(l);
                return;
        }
        l->check_lines = lines;

        CheckConfig *cc = &c->checks[c->n_checks];
        *cc = (CheckConfig) { .name = strndup(name, n), .line = l->line };
        if (!cc->name) {
                config_loader_oom(l);
                return;
        }
        config_fields_free(check_keys, ELEMENTSOF(check_keys), cc); /* "not set" is negative for decimals */
        l->check_lines[c->n_checks] = (CheckLines) {};
        c->n_checks++;
        l->in_check = true;
}

static void config_loader_section(ConfigLoader *l, const char *name, size_t n) {
        if (l->in_check)
                config_loader_finish_check(l);
        l->in_check = false;
        if (l->error == -ENOMEM)
                return;
        size_t n_errors = l->n_errors;
        if (n == 5 && memcmp(name, "check", 5) == 0)
                config_loader_fail(l, l->line, "[check]: a check section needs a name, as in [check NAME]");
        else if (n >= 6 && memcmp(name, "check ", 6) == 0)
                config_loader_add_check(l, name + 6, n - 6);
        else if (!config_section_known(name, n))
                config_loader_fail(l, l->line, "[%.*s]: unknown section", (int) n, name);
        l->in_bad_section = l->n_errors > n_errors;
}

/* Line-level rules inih does not apply: section headers are checked here so an empty
 * unknown section is still an error; indented keys are refused because inih would glue
 * them to the previous value as a continuation line. */
static void config_loader_check_line(ConfigLoader *l, const char *line, size_t len) {
        if (l->line == 1 && len >= 3 && memcmp(line, "\xEF\xBB\xBF", 3) == 0) {
                line += 3; /* inih skips a UTF-8 BOM */
                len -= 3;
        }
        size_t indent = 0;
        while (indent < len && (line[indent] == ' ' || line[indent] == '\t'))
                indent++;
        if (indent == len || line[indent] == ';' || line[indent] == '#')
                return;

        if (line[indent] != '[') {
                if (indent > 0)
                        config_loader_fail(l, l->line,
                                           "indented line: keys start in the first column (continuation lines are not supported)");
                return;
        }

        const char *name = line + indent + 1;
        const char *end = memchr(name, ']', len - indent - 1);
        if (!end) {
                l->in_bad_section = true; /* inih reports the syntax error; the keys below have no section */
                return;
        }
        size_t n = (size_t) (end - name), rest = len - (size_t) (end + 1 - line);
        const char *tail = end + 1;
        while (rest > 0 && (*tail == ' ' || *tail == '\t'))
                tail++, rest--;
        if (rest > 0 && *tail != ';' && *tail != '#')
                config_loader_fail(l, l->line, "text after a section header");
        else if (!is_printable(name, n)) {
                config_loader_fail(l, l->line, "unknown section (its name contains unprintable characters)");
                l->in_bad_section = true;
        } else
                config_loader_section(l, name, n);
}

/* An fgets() for inih that hands over exactly one line per call, so its line numbers are ours. */
static char *config_loader_read(char *buf, int size, void *userdata) {
        ConfigLoader *l = userdata;

        if (l->error == -ENOMEM || !*l->next)
                return NULL;

        size_t len = strcspn(l->next, "\n");
        bool newline = l->next[len] == '\n';
        size_t content = len > 0 && l->next[len - 1] == '\r' ? len - 1 : len;
        l->line++;
        /* inih needs room for "\r\n\0" */
        if (size < 3 || content > (size_t) size - 3) {
                config_loader_fail(l, l->line, "line too long (at most %d bytes)", size - 3);
                l->next += len + newline;
                buf[0] = 0; /* inih goes on with the next line */
                return buf;
        }
        memcpy(buf, l->next, len + newline);
        buf[len + newline] = 0;
        config_loader_check_line(l, l->next, content);
        l->next += len + newline;
        return l->error == -ENOMEM ? NULL : buf;
}

/* Optimal string alignment distance between two short names; SIZE_MAX when one is too long
 * to be a misspelt key (a key name is far shorter than KEY_NAME_MAX). */
#define KEY_NAME_MAX 40
static size_t edit_distance(const char *a, const char *b) {
        size_t na = strlen(a), nb = strlen(b);
        size_t rows[3][KEY_NAME_MAX + 1]; /* rows i-2, i-1 and i, in turn */

        if (na > KEY_NAME_MAX || nb > KEY_NAME_MAX)
                return SIZE_MAX;
        for (size_t j = 0; j <= nb; j++)
                rows[0][j] = j;
        for (size_t i = 1; i <= na; i++) {
                size_t *cur = rows[i % 3], *prev = rows[(i - 1) % 3], *prev2 = rows[(i + 1) % 3];
                cur[0] = i;
                for (size_t j = 1; j <= nb; j++) {
                        size_t cost = a[i - 1] != b[j - 1];
                        size_t d = prev[j - 1] + cost;
                        if (prev[j] + 1 < d)
                                d = prev[j] + 1;
                        if (cur[j - 1] + 1 < d)
                                d = cur[j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] && prev2[j - 2] + 1 < d)
                                d = prev2[j - 2] + 1;
                        cur[j] = d;
                }
        }
        return rows[na % 3][nb];
}

/* The key of the same section whose name is nearest to key, when one is near enough to be a
 * typing error (an edit distance, counting a swap of neighbours as one edit); NULL otherwise. */
static const char *config_key_nearest(const ConfigKey *keys, size_t n_keys, const char *section, const char *key) {
        const char *best = NULL;
        size_t best_distance = SIZE_MAX;

        for (size_t i = 0; i < n_keys; i++) {
                if (!streq_ptr(keys[i].section, section))
                        continue;
                size_t d = edit_distance(key, keys[i].key);
                if (d < best_distance && d <= 2 && d * 3 <= strlen(keys[i].key)) {
                        best = keys[i].key;
                        best_distance = d;
                }
        }
        return best;
}

static int config_loader_unknown_key(ConfigLoader *l, const ConfigKey *keys, size_t n_keys, const char *section,
                                     const char *label, const char *key) {
        const char *nearest = config_key_nearest(keys, n_keys, section, key);
        if (nearest)
                return config_loader_fail(l, l->line, "[%s] %s: unknown key; did you mean %s?", label, key, nearest);
        return config_loader_fail(l, l->line, "[%s] %s: unknown key", label, key);
}

static int config_loader_handle_key(ConfigLoader *l, const char *section, const char *key, const char *value) {
        if (l->in_bad_section)
                return 1;
        if (!is_printable(section, strlen(section)) || !is_printable(key, strlen(key)))
                return config_loader_fail(l, l->line, "unknown key (its name contains unprintable characters)");
        if (isempty(section))
                return config_loader_fail(l, l->line, "%s: key outside any section", key);

        if (l->in_check) {
                /* inih cuts long section names; the check keeps the whole one */
                CheckLines *lines;
                char label[80];
                CheckConfig *cc = config_loader_current_check(l, &lines, label);
                const ConfigKey *k = config_key_find(check_keys, ELEMENTSOF(check_keys), NULL, key);
                if (!k)
                        return config_loader_unknown_key(l, check_keys, ELEMENTSOF(check_keys), NULL, label, key);
                return config_loader_set(l, k, cc, &lines->key_line[k - check_keys], label, value);
        }

        const ConfigKey *k = config_key_find(config_keys, ELEMENTSOF(config_keys), section, key);
        if (!k)
                return config_section_known(section, strlen(section))
                               ? config_loader_unknown_key(l, config_keys, ELEMENTSOF(config_keys), section, section, key)
                               : config_loader_fail(l, l->line, "[%s]: unknown section", section);
        return config_loader_set(l, k, l->config, &l->key_line[k - config_keys], section, value);
}

/* Errors in keys are recorded here, so what inih returns is its own first syntax error. */
static int config_loader_handle(void *userdata, const char *section, const char *key, const char *value) {
        ConfigLoader *l = userdata;

        if (l->error == -ENOMEM)
                return 0;
        config_loader_handle_key(l, section, key, value);
        return 1;
}

/* "after" names an existing check and never leads back to where it started. */
static void config_loader_check_after(ConfigLoader *l) {
        const Config *c = l->config;
        size_t after = check_key_index("after");
        size_t *target = calloc(c->n_checks, sizeof(size_t));

        if (c->n_checks > 0 && !target) {
                config_loader_oom(l);
                return;
        }
        for (size_t i = 0; i < c->n_checks; i++) {
                target[i] = SIZE_MAX;
                if (!c->checks[i].after)
                        continue;
                const CheckConfig *t = config_find_check(c, c->checks[i].after);
                if (t)
                        target[i] = (size_t) (t - c->checks);
                else
                        config_loader_fail(l, l->check_lines[i].key_line[after], "[check %s] after: no check named \"%s\"",
                                           c->checks[i].name, c->checks[i].after);
        }
        for (size_t i = 0; i < c->n_checks && l->error != -ENOMEM; i++) {
                size_t j = target[i], steps = 0;
                while (j != SIZE_MAX && j != i && steps++ < c->n_checks)
                        j = target[j];
                if (j != i)
                        continue;
                char *cycle = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&cycle, &len);
                if (!f) {
                        config_loader_oom(l);
                        break;
                }
                fputs(c->checks[i].name, f);
                j = i;
                do {
                        j = target[j];
                        fprintf(f, " -> %s", c->checks[j].name);
                } while (j != i);
                if (fclose(f) != 0)
                        config_loader_oom(l);
                else
                        config_loader_fail(l, l->check_lines[i].key_line[after], "[check %s] after: dependency cycle (%s)",
                                           c->checks[i].name, cycle);
                free(cycle);
                break; /* the other checks of the cycle would only repeat it */
        }
        free(target);
}

/* Rules that tie keys together; reported on the line of the later of the keys involved. */
static void config_loader_check_relations(ConfigLoader *l) {
        const Config *c = l->config;

        if (c->retry_max < c->retry_base) {
                const ConfigKey *base = config_key_find(config_keys, ELEMENTSOF(config_keys), "eventbridge", "retry_base");
                const ConfigKey *max = config_key_find(config_keys, ELEMENTSOF(config_keys), "eventbridge", "retry_max");
                unsigned a = l->key_line[base - config_keys], b = l->key_line[max - config_keys];
                if (!config_loader_failed_at(l, a) && !config_loader_failed_at(l, b))
                        config_loader_fail(l, a > b ? a : b, "[eventbridge] retry_max: must not be less than retry_base");
        }
        config_loader_check_after(l);
}

/* The AWS tools' variables for the keys the file left out (ConfigKey.env). A bad value is
 * reported as "FILE: environment NAME (for [section] key): why" (line 0: not a line of the
 * file), the variable's value left out: it may be a URL with a password. */
static void config_loader_apply_environment(ConfigLoader *l) {
        bool file_sets_endpoint_url = l->config->endpoint_url != NULL; /* before its own variable is read */

        for (size_t i = 0; i < ELEMENTSOF(config_keys) && l->error == 0; i++) {
                const ConfigKey *k = &config_keys[i];
                /* "key =" in the file means "not set", as everywhere else. */
                bool file_sets = l->key_line[i] != 0 && config_field_is_set(k, config_field(l->config, k->offset));
                if (!k->env[0] || file_sets || (k->env_yields_to_endpoint_url && file_sets_endpoint_url))
                        continue;
                for (size_t j = 0; j < ELEMENTSOF(k->env) && k->env[j]; j++) {
                        const char *value = getenv(k->env[j]);
                        if (isempty(value))
                                continue;
                        _cleanup_free_ char *reason = NULL;
                        int r = config_key_parse(k, value, l->config, &reason);
                        if (r == -EINVAL && reason)
                                (void) config_loader_fail(l, 0, "environment %s (for [%s] %s): %s", k->env[j],
                                                          k->section, k->key, reason);
                        else if (r < 0)
                                (void) config_loader_oom(l);
                        break;
                }
        }
}

/* "FILE:LINE: what is wrong" for every error, one a line. */
static int config_loader_join_errors(const ConfigLoader *l, char **ret) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;

        _cleanup_fclose_ FILE *f = open_memstream(&text, &len);
        if (!f)
                return -ENOMEM;
        for (size_t i = 0; i < l->n_errors; i++)
                if (l->errors[i].line > 0)
                        fprintf(f, "%s%s:%u: %s", i > 0 ? "\n" : "", l->name, l->errors[i].line, l->errors[i].message);
                else
                        fprintf(f, "%s%s: %s", i > 0 ? "\n" : "", l->name, l->errors[i].message);
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}

static int config_digest(const char *text, size_t len, char ret[static 65]) {
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned md_len = 0;

        if (EVP_Digest(text, len, md, &md_len, EVP_sha256(), NULL) != 1 || md_len != 32)
                return -EIO;
        for (unsigned i = 0; i < md_len; i++)
                snprintf(ret + 2 * i, 3, "%02x", md[i]);
        return 0;
}

static int config_new_default(Config **ret) {
        _cleanup_(config_freep) Config *c = calloc(1, sizeof(Config));

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                _cleanup_free_ char *reason = NULL;
                int r = config_key_parse(&config_keys[i], config_keys[i].default_value, c, &reason);
                if (r == -ENOMEM)
                        return r;
                assert(r == 0); /* a default that does not parse is a bug in the table */
        }
        *ret = TAKE_PTR(c);
        return 0;
}

static int config_load_text(const char *text, size_t len, const char *name, Config **ret, char **ret_error) {
        _cleanup_(config_freep) Config *c = NULL;
        ConfigLoader l = { .name = name, .next = text };
        int r;

        r = config_new_default(&c);
        if (r < 0)
                return r;
        c->path = strdup(name);
        if (!c->path)
                return -ENOMEM;
        r = config_digest(text, len, c->digest);
        if (r < 0)
                return r;

        l.config = c;
        r = ini_parse_stream(config_loader_read, &l, config_loader_handle, &l);
        if (r > 0)
                config_loader_fail(&l, (unsigned) r, "syntax error (expected [section], key = value or a ; comment)");
        else if (r < 0)
                config_loader_oom(&l); /* inih: buffer allocation failed */
        if (l.error != -ENOMEM && l.in_check)
                config_loader_finish_check(&l);
        if (l.error != -ENOMEM)
                config_loader_check_relations(&l);
        if (l.error == 0)
                config_loader_apply_environment(&l);
        free(l.check_lines);

        int error = l.error;
        if (error != 0 && ret_error) {
                *ret_error = NULL;
                if (error == -EINVAL && config_loader_join_errors(&l, ret_error) < 0)
                        error = -ENOMEM;
        }
        config_loader_free_errors(&l);
        if (error < 0)
                return error;
        *ret = TAKE_PTR(c);
        return 0;
}

int config_load_string(const char *text, const char *name, Config **ret, char **ret_error) {
        assert(text);
        assert(ret);
        return config_load_text(text, strlen(text), name ?: "<embedded>", ret, ret_error);
}

static int config_error(char **ret_error, int error, const char *fmt, ...) _printf_(3, 4);
static int config_error(char **ret_error, int error, const char *fmt, ...) {
        va_list ap;

        if (ret_error) {
                va_start(ap, fmt);
                if (vasprintf(ret_error, fmt, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return error;
}

static int control_socket_handle(void *userdata, const char *section, const char *key, const char *value) {
        char **found = userdata;
        if (streq_ptr(section, "agent") && streq_ptr(key, "control_socket") && value && !validate_absolute_path(value))
                return free_and_strdup(found, value) >= 0;
        return 1;
}

int config_control_socket(const char *path, char **ret) {
        _cleanup_free_ char *text = NULL, *found = NULL;
        if (read_file_full(path, CONFIG_FILE_MAX, &text, NULL) >= 0)
                (void) ini_parse_string(text, control_socket_handle, &found); /* what does not parse is skipped */
        if (!found) {
                const ConfigKey *k = config_key_find(config_keys, ELEMENTSOF(config_keys), "agent", "control_socket");
                found = strdup(k->default_value);
                if (!found)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(found);
        return 0;
}

int config_load_file(const char *path, Config **ret, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        size_t len = 0;
        int r;

        assert(path);
        assert(ret);
        r = read_file_full(path, CONFIG_FILE_MAX, &text, &len);
        if (r == -EFBIG)
                return config_error(ret_error, r, "%s: larger than %d bytes", path, CONFIG_FILE_MAX);
        if (r < 0)
                return config_error(ret_error, r, "%s: cannot read: %s", path, strerror(-r));
        const char *nul = memchr(text, 0, len);
        if (nul) {
                unsigned line = 1;
                for (const char *p = text; p < nul; p++)
                        line += *p == '\n';
                return config_error(ret_error, -EINVAL, "%s:%u: NUL byte in a text file", path, line);
        }
        return config_load_text(text, len, path, ret, ret_error);
}

static void config_key_print(const ConfigKey *k, const void *base, FILE *f) {
        const void *field = config_field(base, k->offset);

        if (k->flags & CONFIG_SECRET) {
                fprintf(f, "; %s is %s (secret, not shown)\n", k->key, config_field_is_set(k, field) ? "set" : "not set");
                return;
        }
        if (!config_field_is_set(k, field)) {
                fprintf(f, "%s =\n", k->key);
                return;
        }
        fprintf(f, "%s = ", k->key);
        config_field_write(k, field, f);
        fputc('\n', f);
}

/* The keys of its type, and the action keys only where its action uses them. */
static bool check_key_applies(const ConfigKey *k, const CheckConfig *cc) {
        if (!(k->types & TYPE_BIT(cc->type)))
                return false;
        if (streq_ptr(k->key, "action_unit"))
                return check_action_is_unit(cc->action);
        if (streq_ptr(k->key, "action_command"))
                return cc->action == CHECK_ACTION_EXEC;
        return true;
}

int config_print(const Config *c, FILE *f) {
        const char *section = NULL;

        assert(c);
        assert(f);
        fprintf(f, "; heald effective configuration; source sha256 %s\n", c->digest);
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                if (!streq_ptr(section, config_keys[i].section)) {
                        section = config_keys[i].section;
                        fprintf(f, "\n[%s]\n", section);
                }
                config_key_print(&config_keys[i], c, f);
        }
        for (size_t i = 0; i < c->n_checks; i++) {
                fprintf(f, "\n[check %s]\n", c->checks[i].name);
                for (size_t j = 0; j < ELEMENTSOF(check_keys); j++)
                        if (check_key_applies(&check_keys[j], &c->checks[i]))
                                config_key_print(&check_keys[j], &c->checks[i], f);
        }
        return fflush(f) != 0 || ferror(f) ? -EIO : 0;
}

static int endpoint_fill_region(const char *template, const char *region, char **ret) {
        _cleanup_free_ char *url = NULL;
        size_t len = 0;
        _cleanup_fclose_ FILE *f = open_memstream(&url, &len);

        if (!f)
                return -ENOMEM;
        for (const char *p = template; *p;)
                if (strncmp(p, "{region}", 8) == 0) {
                        fputs(region, f);
                        p += 8;
                } else
                        fputc(*p++, f);
        if (fclose(TAKE_PTR(f)) != 0)
                return -ENOMEM;
        *ret = TAKE_PTR(url);
        return 0;
}

int config_service_endpoint(const Config *c, const char *service, const char *region, char **ret) {
        const char *configured = c->endpoint_url;
        char *url;

        assert(c);
        assert(!isempty(service));
        assert(ret);
        for (size_t i = 0; i < ELEMENTSOF(service_overrides); i++) {
                const char *override = *(char *const *) config_field(c, service_overrides[i].offset);
                if (override && streq_ptr(service, service_overrides[i].service))
                        configured = override;
        }
        if (isempty(region))
                region = c->region;
        if (configured && !strstr(configured, "{region}"))
                url = strdup(configured);
        else if (isempty(region))
                return -ENODATA;
        else if (configured)
                return endpoint_fill_region(configured, region, ret);
        else if (asprintf(&url, "https://%s.%s.amazonaws.com%s", service, region,
                          strncmp(region, "cn-", 3) == 0 ? ".cn" : "") < 0)
                url = NULL;
        if (!url)
                return -ENOMEM;
        *ret = url;
        return 0;
}

const char *config_plain_http_endpoint(const Config *c) {
        const struct {
                const char *url, *key;
        } endpoints[] = {
                { c->endpoint_url, "[aws] endpoint_url" },
                { c->events_endpoint, "[aws] events_endpoint" },
                { c->sqs_endpoint, "[aws] sqs_endpoint" },
                { c->states_endpoint, "[aws] states_endpoint" },
                { c->queue_url, "[sqs] queue_url" },
        };
        for (size_t i = 0; i < ELEMENTSOF(endpoints); i++)
                if (url_is_plain_http_off_host(endpoints[i].url))
                        return endpoints[i].key;
        return NULL;
}
