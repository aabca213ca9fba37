/* config.c: load, validate and print heald.ini; one table describes every key. */
#define _GNU_SOURCE /* asprintf */
#include "config.h"

#include <assert.h>
#include <ini.h>
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <strings.h>

#include "log.h"

#define CONFIG_FILE_MAX (1024 * 1024)
/* Keeps "key = value" from config_print() within inih's 200-byte line buffer. */
#define CONFIG_STRING_MAX 160
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

typedef enum ConfigType {
        CONFIG_STRING,    /* char *, NULL when empty */
        CONFIG_LOG_LEVEL, /* int */
        CONFIG_DURATION,  /* usec_t */
        CONFIG_SIZE,      /* uint64_t bytes */
} ConfigType;

enum {
        CONFIG_REQUIRED = 1 << 0, /* an empty value is an error instead of "not set" */
        CONFIG_SECRET = 1 << 1,   /* strings: config_print() never writes the value */
        CONFIG_ZERO_OFF = 1 << 2, /* 0 turns the feature off, allowed below min */
};

typedef struct ConfigKey {
        const char *section;
        const char *key;
        ConfigType type;
        size_t offset; /* of the field in Config */
        const char *default_value; /* parsed exactly like a value from the file */
        uint64_t min, max; /* inclusive bounds for durations and sizes */
        const char *(*check)(const char *value); /* strings: NULL when fine, else why not */
        unsigned flags;
} ConfigKey;

static bool url_has_host(const char *s, const char *scheme) {
        size_t n = strlen(scheme);
        return strncmp(s, scheme, n) == 0 && s[n] && s[n] != '/' && !strpbrk(s, " \t");
}

static const char *check_absolute_path(const char *s) {
        return s[0] == '/' ? NULL : "must be an absolute path";
}

static const char *check_imds_endpoint(const char *s) {
        return url_has_host(s, "http://") ? NULL : "must start with http:// (IMDS is link-local, plain HTTP)";
}

static const char *check_endpoint_url(const char *s) {
        return url_has_host(s, "http://") || url_has_host(s, "https://")
                       ? NULL
                       : "must be empty or an http:// or https:// URL with a host";
}

/* Region names are lowercase words and a final number joined by '-': us-east-1, us-gov-west-1. */
static const char *check_region(const char *s) {
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

/* A bus name or ARN; the charset keeps values safe to echo into JSON and logs. */
static const char *check_event_bus(const char *s) {
        return s[strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-/:")]
                       ? "may only contain letters, digits and ._-/: (a bus name or ARN)"
                       : NULL;
}

static const char *check_source(const char *s) {
        return strncmp(s, "aws.", 4) == 0 ? "must not start with \"aws.\" (reserved for AWS services)" : NULL;
}

#define KEY(sec, name, t, field, def, ...)                                                       \
        {                                                                                        \
                .section = (sec), .key = (name), .type = (t), .offset = offsetof(Config, field), \
                .default_value = (def), __VA_ARGS__                                              \
        }

/* Every key heald reads, grouped by section in the order config_print() writes them.
 * Adding a key is adding a line here and a field in Config. Named sections ("[check NAME]",
 * one per instance) will need a second table whose offsets point into a per-instance
 * struct, looked up by the word before the space; until then such headers are unknown. */
static const ConfigKey config_keys[] = {
        KEY("agent", "state_dir", CONFIG_STRING, state_dir, "/var/lib/heald", .check = check_absolute_path,
            .flags = CONFIG_REQUIRED),
        KEY("agent", "log_level", CONFIG_LOG_LEVEL, log_level, "info"),
        KEY("agent", "heartbeat_interval", CONFIG_DURATION, heartbeat_interval, "300",
            .min = 10 * USEC_PER_MSEC, .max = 24 * USEC_PER_HOUR, .flags = CONFIG_ZERO_OFF),

        KEY("aws", "region", CONFIG_STRING, region, "", .check = check_region),
        KEY("aws", "imds_endpoint", CONFIG_STRING, imds_endpoint, "http://169.254.169.254",
            .check = check_imds_endpoint, .flags = CONFIG_REQUIRED),
        KEY("aws", "imds_timeout", CONFIG_DURATION, imds_timeout, "2s", .min = 100 * USEC_PER_MSEC,
            .max = USEC_PER_MINUTE),
        KEY("aws", "endpoint_url", CONFIG_STRING, endpoint_url, "", .check = check_endpoint_url),
        KEY("aws", "events_endpoint", CONFIG_STRING, events_endpoint, "", .check = check_endpoint_url),

        KEY("eventbridge", "event_bus", CONFIG_STRING, event_bus, "default", .check = check_event_bus,
            .flags = CONFIG_REQUIRED),
        KEY("eventbridge", "source", CONFIG_STRING, source, "heald", .check = check_source,
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
};

/* Per-service endpoint overrides, consulted by config_service_endpoint(). */
static const struct {
        const char *service;
        size_t offset;
} service_overrides[] = {
        { "events", offsetof(Config, events_endpoint) },
};

static const ConfigKey *config_key_find(const char *section, const char *key) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq_ptr(config_keys[i].section, section) && streq_ptr(config_keys[i].key, key))
                        return &config_keys[i];
        return NULL;
}

static bool config_section_known(const char *section, size_t len) {
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (strlen(config_keys[i].section) == len && strncmp(config_keys[i].section, section, len) == 0)
                        return true;
        return false;
}

static void *config_field(const Config *c, size_t offset) {
        return (uint8_t *) c + offset;
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

/* The shortest exact spelling: 90 seconds is "90s", 2 minutes "2m". */
static void format_number(ConfigType type, uint64_t v, char buf[static 32]) {
        static const Unit duration_out[] = {
                { "h", USEC_PER_HOUR }, { "m", USEC_PER_MINUTE }, { "s", USEC_PER_SEC }, { "ms", USEC_PER_MSEC },
        };
        static const Unit size_out[] = { { "GiB", GIB }, { "MiB", MIB }, { "KiB", KIB }, { "", 1 } };
        const Unit *units = type == CONFIG_DURATION ? duration_out : size_out;
        size_t i = 0;

        assert(ELEMENTSOF(duration_out) == ELEMENTSOF(size_out));
        if (v == 0) {
                snprintf(buf, 32, "0");
                return;
        }
        /* the last unit is the parser's smallest, so the loop always stops */
        while (i + 1 < ELEMENTSOF(size_out) && v % units[i].factor != 0)
                i++;
        snprintf(buf, 32, "%" PRIu64 "%s", v / units[i].factor, units[i].suffix);
}

static int config_key_parse_number(const ConfigKey *k, const char *value, uint64_t *ret, const char **ret_reason) {
        uint64_t v;
        int r = k->type == CONFIG_DURATION ? config_parse_duration(value, &v) : config_parse_size(value, &v);
        if (r == -EINVAL) {
                *ret_reason = k->type == CONFIG_DURATION
                                      ? "not a duration (write e.g. 30, 200ms, 30s, 5m or 1h)"
                                      : "not a size (write e.g. 4096, 64K, 64KiB, 1M, 1MiB, 1G or 1GiB)";
                return r;
        }
        if (r < 0 || ((v < k->min || v > k->max) && !(v == 0 && (k->flags & CONFIG_ZERO_OFF))))
                return -ERANGE; /* the caller words the bounds */
        *ret = v;
        return 0;
}

/* Parse value into k's field of c. Returns 0, -ENOMEM, -ERANGE (out of k's bounds) or
 * -EINVAL with *ret_reason saying why. */
static int config_key_parse(const ConfigKey *k, const char *value, Config *c, const char **ret_reason) {
        void *field = config_field(c, k->offset);
        uint64_t number;
        int r;

        if (isempty(value)) {
                if (k->type == CONFIG_STRING && !(k->flags & CONFIG_REQUIRED))
                        return free_and_strdup(field, NULL);
                *ret_reason = k->type == CONFIG_STRING ? "must not be empty"
                                                       : "missing value (delete the line to get the default)";
                return -EINVAL;
        }

        switch (k->type) {
        case CONFIG_STRING:
                if (strlen(value) > CONFIG_STRING_MAX) {
                        *ret_reason = "too long (at most " STRINGIFY(CONFIG_STRING_MAX) " bytes)";
                        return -EINVAL;
                }
                /* inih keeps the ';' of "key =;x", but "key = ;x" is a comment */
                if (value[0] == ';') {
                        *ret_reason = "must not start with ';' (it would read as a comment)";
                        return -EINVAL;
                }
                for (const char *p = value; *p; p++)
                        if ((unsigned char) *p < 0x20 || *p == 0x7f) {
                                *ret_reason = "must not contain control characters";
                                return -EINVAL;
                        }
                if (k->check && (*ret_reason = k->check(value)))
                        return -EINVAL;
                return free_and_strdup(field, value);
        case CONFIG_LOG_LEVEL:
                r = log_level_from_string(value);
                if (r < 0) {
                        *ret_reason = "must be one of debug, info, notice, warning, error";
                        return -EINVAL;
                }
                *(int *) field = r;
                return 0;
        case CONFIG_DURATION:
        case CONFIG_SIZE:
                r = config_key_parse_number(k, value, &number, ret_reason);
                if (r < 0)
                        return r;
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

Config *config_free(Config *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (config_keys[i].type == CONFIG_STRING)
                        free(*(char **) config_field(c, config_keys[i].offset));
        free(c->path);
        free(c);
        return NULL;
}

/* State of one parse: inih pulls lines through config_loader_read() and pushes keys into
 * config_loader_handle(); both see the same line number because inih reads one line per call. */
typedef struct ConfigLoader {
        Config *config;
        const char *name;
        const char *next; /* unread text */
        unsigned line;    /* the line inih is working on */
        unsigned key_line[ELEMENTSOF(config_keys)]; /* where each key was set; 0: default */
        int error;        /* first error, negative errno; 0: none yet */
        unsigned error_line;
        char *error_message; /* NULL only after -ENOMEM */
} ConfigLoader;

_printf_(3, 4) static int config_loader_fail(ConfigLoader *l, unsigned line, const char *fmt, ...) {
        _cleanup_free_ char *msg = NULL;
        va_list ap;

        if (l->error != 0 && l->error_line <= line)
                return 0; /* the first error wins */

        free(l->error_message);
        l->error_message = NULL;
        l->error = -EINVAL;
        l->error_line = line;

        va_start(ap, fmt);
        if (vasprintf(&msg, fmt, ap) < 0)
                msg = NULL;
        va_end(ap);
        if (!msg || asprintf(&l->error_message, "%s:%u: %s", l->name, line, msg) < 0) {
                l->error_message = NULL;
                l->error = -ENOMEM;
        }
        return 0; /* inih: "error" */
}

static bool is_printable(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] < 0x20 || (unsigned char) s[i] >= 0x7f)
                        return false;
        return true;
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
        if (!end)
                return; /* inih reports the syntax error */
        size_t n = (size_t) (end - name), rest = len - (size_t) (end + 1 - line);
        const char *tail = end + 1;
        while (rest > 0 && (*tail == ' ' || *tail == '\t'))
                tail++, rest--;
        if (rest > 0 && *tail != ';' && *tail != '#')
                config_loader_fail(l, l->line, "text after a section header");
        else if (!is_printable(name, n))
                config_loader_fail(l, l->line, "unknown section (its name contains unprintable characters)");
        else if (!config_section_known(name, n))
                config_loader_fail(l, l->line, "[%.*s]: unknown section", (int) n, name);
}

/* An fgets() for inih that hands over exactly one line per call, so its line numbers are ours. */
static char *config_loader_read(char *buf, int size, void *userdata) {
        ConfigLoader *l = userdata;

        if (l->error != 0 || !*l->next)
                return NULL; /* done, or nothing after the first error matters */

        size_t len = strcspn(l->next, "\n");
        bool newline = l->next[len] == '\n';
        size_t content = len > 0 && l->next[len - 1] == '\r' ? len - 1 : len;
        l->line++;
        /* inih needs room for "\r\n\0" */
        if (size < 3 || content > (size_t) size - 3) {
                config_loader_fail(l, l->line, "line too long (at most %d bytes)", size - 3);
                return NULL;
        }
        memcpy(buf, l->next, len + newline);
        buf[len + newline] = 0;
        config_loader_check_line(l, l->next, content);
        l->next += len + newline;
        return l->error != 0 ? NULL : buf;
}

static int config_loader_handle(void *userdata, const char *section, const char *key, const char *value) {
        ConfigLoader *l = userdata;
        const char *reason = NULL;
        int r;

        if (l->error != 0)
                return 0;
        if (!is_printable(section, strlen(section)) || !is_printable(key, strlen(key)))
                return config_loader_fail(l, l->line, "unknown key (its name contains unprintable characters)");
        if (isempty(section))
                return config_loader_fail(l, l->line, "%s: key outside any section", key);

        const ConfigKey *k = config_key_find(section, key);
        if (!k)
                return config_section_known(section, strlen(section))
                               ? config_loader_fail(l, l->line, "[%s] %s: unknown key", section, key)
                               : config_loader_fail(l, l->line, "[%s]: unknown section", section);

        size_t i = (size_t) (k - config_keys);
        if (l->key_line[i] != 0)
                return config_loader_fail(l, l->line, "[%s] %s: duplicate key (first set on line %u)", section,
                                          key, l->key_line[i]);
        l->key_line[i] = l->line;

        r = config_key_parse(k, value, l->config, &reason);
        if (r == -ENOMEM) {
                l->error = -ENOMEM;
                l->error_line = l->line;
                return 0;
        }
        if (r == -ERANGE) {
                _cleanup_free_ char *range = NULL;
                if (config_key_range(k, &range) < 0) {
                        l->error = -ENOMEM;
                        l->error_line = l->line;
                        return 0;
                }
                return config_loader_fail(l, l->line, "[%s] %s: %s", section, key, range);
        }
        if (r < 0)
                return config_loader_fail(l, l->line, "[%s] %s: %s", section, key, reason);
        return 1;
}

/* Rules that tie keys together; reported on the line of the later of the keys involved. */
static void config_loader_check_relations(ConfigLoader *l) {
        const Config *c = l->config;

        if (c->retry_max < c->retry_base) {
                unsigned a = l->key_line[config_key_find("eventbridge", "retry_base") - config_keys];
                unsigned b = l->key_line[config_key_find("eventbridge", "retry_max") - config_keys];
                config_loader_fail(l, a > b ? a : b, "[eventbridge] retry_max: must not be less than retry_base");
        }
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
        const char *reason = NULL;

        if (!c)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
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
        else if (r < 0 && l.error == 0)
                l.error = -ENOMEM; /* inih: buffer allocation failed */
        if (l.error == 0)
                config_loader_check_relations(&l);

        if (l.error != 0) {
                if (ret_error)
                        *ret_error = TAKE_PTR(l.error_message);
                free(l.error_message);
                return l.error;
        }
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

int config_print(const Config *c, FILE *f) {
        const char *section = NULL;

        assert(c);
        assert(f);
        fprintf(f, "; heald effective configuration; source sha256 %s\n", c->digest);
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                const ConfigKey *k = &config_keys[i];
                const void *field = config_field(c, k->offset);
                char number[32];

                if (!streq_ptr(section, k->section)) {
                        section = k->section;
                        fprintf(f, "\n[%s]\n", section);
                }
                if (k->flags & CONFIG_SECRET) {
                        fprintf(f, "; %s is %s (secret, not shown)\n", k->key,
                                *(char *const *) field ? "set" : "not set");
                        continue;
                }
                switch (k->type) {
                case CONFIG_STRING:
                        if (*(char *const *) field)
                                fprintf(f, "%s = %s\n", k->key, *(char *const *) field);
                        else
                                fprintf(f, "%s =\n", k->key);
                        break;
                case CONFIG_LOG_LEVEL:
                        fprintf(f, "%s = %s\n", k->key, log_level_to_string(*(const int *) field));
                        break;
                case CONFIG_DURATION:
                case CONFIG_SIZE:
                        format_number(k->type, *(const uint64_t *) field, number);
                        fprintf(f, "%s = %s\n", k->key, number);
                        break;
                }
        }
        return fflush(f) != 0 || ferror(f) ? -EIO : 0;
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
        if (configured)
                url = strdup(configured);
        else if (isempty(region))
                return -ENODATA;
        else if (asprintf(&url, "https://%s.%s.amazonaws.com%s", service, region,
                          strncmp(region, "cn-", 3) == 0 ? ".cn" : "") < 0)
                url = NULL;
        if (!url)
                return -ENOMEM;
        *ret = url;
        return 0;
}
