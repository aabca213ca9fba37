/* config.h: heald.ini, loaded into one validated Config (see heald.ini(5)). */
#pragma once

#include "checks/types.h"
#include "util.h"

#define CONFIG_DEFAULT_PATH "/etc/heald/heald.ini"

/* [check NAME]: one health check; see heald.ini(5). */
typedef struct CheckConfig {
        char *name;             /* [check NAME]: letters, digits, '-', '_', '.'; unique */
        unsigned line;          /* line of the section header, for messages */
        CheckType type;
        usec_t interval;        /* polled types; default 10s (unit, journal: event-driven) */
        usec_t timeout;         /* one run; default 5s */
        unsigned fail_after;    /* consecutive failures before "failed": default 1 for unit,
                                 * journal and file_age, 3 for the others */
        unsigned recover_after; /* consecutive successes before "recovered": default 1 */
        CheckAction action;     /* default none */
        char *action_unit;      /* unit actions: default the check's unit (required otherwise) */
        char **action_command;  /* action exec: argv, NULL-terminated */
        unsigned max_actions;   /* rate limit: at most this many actions... (default 3) */
        usec_t action_window;   /* ...within this window (default 10m) */
        usec_t verify_timeout;  /* after an action, the check must recover within this (default 60s) */
        char *after;            /* NULL or the name of a check this one depends on */

        /* type-specific; unused ones are NULL / 0 / negative */
        char *unit;                   /* unit: "nginx.service" */
        char *url;                    /* http: http:// or https://; may hold user:password@ */
        char *url_public;             /* http: url with its userinfo as "***@": what events and logs show */
        unsigned expect_status_min;   /* http: default 200 */
        unsigned expect_status_max;   /* http: default 399 ("expect_status = 200" or "200-299") */
        char *expect_body;            /* http: substring, or NULL */
        char *host;                   /* tcp */
        unsigned port;                /* tcp: 1..65535 */
        char *path;                   /* disk (mount point), file_age (file) */
        double max_used_percent;      /* disk: < 0 when not set */
        double max_inodes_percent;    /* disk: < 0 when not set (one of the two required) */
        double min_available_percent; /* memory: required */
        double max_swap_percent;      /* memory: < 0 when not set */
        double max_load_per_cpu;      /* load: required */
        usec_t max_age;               /* file_age: required */
        char **match;                 /* journal: "FIELD=value" terms, NULL-terminated, may be empty */
        char *pattern;                /* journal: POSIX extended regex on MESSAGE (validated by regcomp) */
        char **command;               /* exec: argv, NULL-terminated; argv[0] absolute and executable */
} CheckConfig;

/* The effective configuration: every field holds the file's value, else (some [aws] keys)
 * the AWS tools' environment variable's (heald.ini(5) names them), else the default.
 * Strings are owned by the Config; an empty value in the file means "not set" (NULL). */
typedef struct Config {
        char *path;      /* the file it came from, or the name given to config_load_string() */
        char digest[65]; /* hex SHA-256 of the source bytes (reported in "Agent Started") */

        /* [agent] */
        char *state_dir;           /* absolute; outbox and other durable state */
        int log_level;             /* LOG_DEBUG..LOG_ERR */
        usec_t heartbeat_interval; /* 0: no heartbeats */

        /* [aws] */
        char *region;          /* NULL: take it from the IMDS identity document */
        char *imds_endpoint;   /* http://... */
        usec_t imds_timeout;   /* per IMDS request */
        bool imds_disabled;    /* no IMDS: credentials from the environment, region configured */
        char *endpoint_url;    /* NULL or one override for every AWS service */
        char *events_endpoint; /* NULL or the EventBridge override; wins over endpoint_url */

        /* [eventbridge] */
        char *event_bus;
        char *source;                /* never starts with "aws." */
        uint64_t max_request_bytes;  /* 1024..1048576 */
        usec_t retry_base;           /* first backoff delay for transient failures */
        usec_t retry_max;            /* backoff cap, >= retry_base */
        usec_t auth_retry_interval;  /* retry period while AWS refuses the request as a whole */
        usec_t request_timeout;      /* a PutEvents request is abandoned after this */

        /* [outbox] */
        uint64_t outbox_max_bytes; /* >= 1 MiB */
        uint64_t dead_letter_max_bytes; /* >= 64 KiB: cap of outbox/dead-letter.jsonl */

        /* [agent] (health checks) */
        bool dry_run;              /* report what would be done, do nothing */
        char *control_socket;      /* heald status/reset talk to the daemon here; default /run/heald/heald.sock */

        /* [metrics] */
        char *metrics_textfile;    /* NULL: none; else the .prom file heald keeps up to date */

        /* [check NAME] sections, in file order */
        CheckConfig *checks;
        size_t n_checks;

        /* [aws] (command channel) */
        char *sqs_endpoint;    /* NULL or the SQS override; wins over endpoint_url */
        char *states_endpoint; /* NULL or the Step Functions override */

        /* [sqs] */
        char *queue_url;           /* NULL: no command channel; may hold {instance_id}, {region}, {account_id} */
        usec_t sqs_wait_time;      /* long polling, 0..20s, default 20s */
        unsigned sqs_max_messages; /* 1..10, default 10 */
        usec_t sqs_visibility_timeout; /* default 60s, 1s..12h */

        /* [commands] */
        char **commands_allow;           /* actions accepted; default "ping", "run-checks" */
        char **commands_units;           /* unit globs unit actions may touch; default none */
        char **commands_allowed_senders; /* SenderId globs; NULL: any sender the queue lets in */
        char **commands_drain_units;     /* prepare-stop stops these, in order */
        usec_t commands_verify_timeout;  /* default 5m */
        usec_t commands_job_timeout;     /* each unit job of a command; default 5m */
} Config;

/* The check named name, or NULL. */
const CheckConfig *config_find_check(const Config *c, const char *name);

/* Load and validate an ini file. On success *ret is a new Config (caller frees with
 * config_free()). On failure returns a negative errno (-EINVAL for anything wrong in the
 * file, -ENOENT etc. when it cannot be read) and, if ret_error is not NULL, sets *ret_error
 * to "FILE:LINE: [section] key: what is wrong" (or "FILE: ..." when the file cannot be
 * read); caller frees; it is NULL only when memory ran out. Every error in the file is
 * reported, one a line in file order (at most one a line: what follows from it is left out). */
int config_load_file(const char *path, Config **ret, char **ret_error);

/* [agent] control_socket of the file at path, read even when the rest of it does not load:
 * heald status and heald reset must reach a daemon that rejected a broken reload and runs the
 * old configuration. The default when the file cannot be read or does not set an absolute
 * path. *ret: caller frees. Returns 0 or -ENOMEM. */
int config_control_socket(const char *path, char **ret);

/* The same for text held in memory; name (NULL: "<embedded>") stands for FILE. */
int config_load_string(const char *text, const char *name, Config **ret, char **ret_error);

/* Accepts NULL; returns NULL. */
Config *config_free(Config *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Config *, config_free);

/* Write the effective configuration as ini: every section and key, defaults filled in,
 * loadable again. Keys flagged secret are never written, only named in a comment.
 * Returns 0 or -EIO. */
int config_print(const Config *c, FILE *f);

/* Value syntax, shared with anything else that reads heald's notation (no whitespace):
 * durations "30" (seconds), "200ms", "30s", "5m", "1h" -> microseconds;
 * sizes "4096" (bytes), "64K"/"64KiB", "M"/"MiB", "G"/"GiB" (powers of 1024);
 * booleans true/false, yes/no, on/off, 1/0 (case-insensitive).
 * Return 0, -EINVAL for malformed input, -ERANGE when the value does not fit. */
int config_parse_duration(const char *s, usec_t *ret);
int config_parse_size(const char *s, uint64_t *ret);
int config_parse_bool(const char *s, bool *ret);

/* The endpoint URL for an AWS service ("events", ...): the per-service override, else
 * endpoint_url (with "{region}" filled in), else https://SERVICE.REGION.amazonaws.com (.com.cn in China). region may
 * be NULL to use the configured one. *ret: caller frees. Returns 0, -ENODATA when a
 * region is needed and none is known, -ENOMEM. */
int config_service_endpoint(const Config *c, const char *service, const char *region, char **ret);

/* "[section] key" of the first AWS endpoint (endpoint_url, the per-service ones, queue_url)
 * that is plain http:// to a host other than loopback, or NULL: requests there are signed
 * but readable and changeable on the way. Static string. */
const char *config_plain_http_endpoint(const Config *c);
