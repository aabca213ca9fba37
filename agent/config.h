/* config.h: heald.ini, loaded into one validated Config (see heald.ini(5)). */
#pragma once

#include "util.h"

#define CONFIG_DEFAULT_PATH "/etc/heald/heald.ini"

/* The effective configuration: every field holds the file's value or the default.
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
} Config;

/* Load and validate an ini file. On success *ret is a new Config (caller frees with
 * config_free()). On failure returns a negative errno (-EINVAL for anything wrong in the
 * file, -ENOENT etc. when it cannot be read) and, if ret_error is not NULL, sets *ret_error
 * to "FILE:LINE: [section] key: what is wrong" (or "FILE: ..." when the file cannot be
 * read); caller frees; it is NULL only when memory ran out. The first error wins. */
int config_load_file(const char *path, Config **ret, char **ret_error);

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
 * endpoint_url, else https://SERVICE.REGION.amazonaws.com (.com.cn in China). region may
 * be NULL to use the configured one. *ret: caller frees. Returns 0, -ENODATA when a
 * region is needed and none is known, -ENOMEM. */
int config_service_endpoint(const Config *c, const char *service, const char *region, char **ret);
