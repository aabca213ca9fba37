/* test_config.c: heald.ini loading, every error path with its FILE:LINE, value syntax, checks, print round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <syslog.h>

#include "config.h"

static void assert_load_error(const char *text, int expected_errno, const char *expected_message) {
        Config *c = NULL;
        _cleanup_free_ char *error = NULL;

        int r = config_load_string(text, "heald.ini", &c, &error);
        if (r >= 0)
                fail_msg("loaded, expected \"%s\" from:\n%s", expected_message, text);
        assert_int_equal(r, expected_errno);
        assert_null(c);
        assert_non_null(error);
        assert_string_equal(error, expected_message);
}

static Config *load_ok(const char *text) {
        Config *c = NULL;
        _cleanup_free_ char *error = NULL;

        int r = config_load_string(text, "heald.ini", &c, &error);
        if (r < 0)
                fail_msg("failed to load (%d): %s\n%s", r, error ?: "(no message)", text);
        assert_null(error);
        return c;
}

/* a: NULL-terminated, or NULL for an empty list; expected: "a|b|c", or NULL */
static void assert_strv(char *const *a, const char *expected) {
        char joined[512] = "";
        if (!expected) {
                assert_null(a);
                return;
        }
        assert_non_null(a);
        for (char *const *s = a; *s; s++)
                snprintf(joined + strlen(joined), sizeof joined - strlen(joined), "%s%s", s == a ? "" : "|", *s);
        assert_string_equal(joined, expected);
}

static void test_empty_is_defaults(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok("");

        assert_string_equal(c->path, "heald.ini");
        /* sha256 of no bytes */
        assert_string_equal(c->digest, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_string_equal(c->state_dir, "/var/lib/heald");
        assert_int_equal(c->log_level, LOG_INFO);
        assert_int_equal(c->heartbeat_interval, 300 * USEC_PER_SEC);
        assert_null(c->region);
        assert_string_equal(c->imds_endpoint, "http://169.254.169.254");
        assert_int_equal(c->imds_timeout, 2 * USEC_PER_SEC);
        assert_null(c->endpoint_url);
        assert_null(c->events_endpoint);
        assert_string_equal(c->event_bus, "default");
        assert_string_equal(c->source, "heald");
        assert_int_equal(c->max_request_bytes, 262144);
        assert_int_equal(c->retry_base, 200 * USEC_PER_MSEC);
        assert_int_equal(c->retry_max, 30 * USEC_PER_SEC);
        assert_int_equal(c->auth_retry_interval, 2 * USEC_PER_MINUTE);
        assert_int_equal(c->request_timeout, 10 * USEC_PER_SEC);
        assert_int_equal(c->outbox_max_bytes, 64ULL * 1024 * 1024);
        assert_false(c->dry_run);
        assert_null(c->sqs_endpoint);
        assert_null(c->states_endpoint);
        assert_null(c->queue_url);
        assert_int_equal(c->sqs_wait_time, 20 * USEC_PER_SEC);
        assert_int_equal(c->sqs_max_messages, 10);
        assert_int_equal(c->sqs_visibility_timeout, 60 * USEC_PER_SEC);
        assert_strv(c->commands_allow, "ping|run-checks");
        assert_null(c->commands_units);
        assert_null(c->commands_allowed_senders);
        assert_null(c->commands_drain_units);
        assert_int_equal(c->commands_verify_timeout, 5 * USEC_PER_MINUTE);
        assert_int_equal(c->commands_job_timeout, 5 * USEC_PER_MINUTE);
        assert_null(c->checks);
        assert_int_equal(c->n_checks, 0);
        assert_null(config_find_check(c, "web"));

        config_free(NULL);
        _cleanup_(config_freep) Config *comments = load_ok("; nothing\n# here\n\n   \n[agent]\n");
        assert_string_equal(comments->state_dir, "/var/lib/heald");
        _cleanup_(config_freep) Config *embedded = NULL;
        assert_int_equal(config_load_string("", NULL, &embedded, NULL), 0);
        assert_string_equal(embedded->path, "<embedded>");
}

static void test_every_key_with_inline_comments(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok(
                "\xEF\xBB\xBF[agent]\r\n"
                "state_dir = /srv/heald          ; outbox lives here\r\n"
                "log_level = debug\n"
                "heartbeat_interval = 0          ; off\n"
                "[aws]\n"
                "region = us-gov-west-1\n"
                "imds_endpoint = http://127.0.0.1:1338 ; a stand-in\n"
                "imds_timeout = 500ms\n"
                "endpoint_url = http://localhost:5000\n"
                "events_endpoint = https://vpce-1.events.us-east-1.vpce.amazonaws.com\n"
                "[eventbridge]\n"
                "event_bus = arn:aws:events:us-east-1:123456789012:event-bus/ops\n"
                "source: com.example.heald\n"
                "max_request_bytes = 1MiB\n"
                "retry_base = 1s\n"
                "retry_max = 1s\n"
                "auth_retry_interval = 1h\n"
                "request_timeout = 90\n"
                "[outbox]\n"
                "max_bytes = 1G\n");

        assert_string_equal(c->state_dir, "/srv/heald");
        assert_int_equal(c->log_level, LOG_DEBUG);
        assert_int_equal(c->heartbeat_interval, 0);
        assert_string_equal(c->region, "us-gov-west-1");
        assert_string_equal(c->imds_endpoint, "http://127.0.0.1:1338");
        assert_int_equal(c->imds_timeout, 500 * USEC_PER_MSEC);
        assert_string_equal(c->endpoint_url, "http://localhost:5000");
        assert_string_equal(c->events_endpoint, "https://vpce-1.events.us-east-1.vpce.amazonaws.com");
        assert_string_equal(c->event_bus, "arn:aws:events:us-east-1:123456789012:event-bus/ops");
        assert_string_equal(c->source, "com.example.heald");
        assert_int_equal(c->max_request_bytes, 1048576);
        assert_int_equal(c->retry_base, USEC_PER_SEC);
        assert_int_equal(c->retry_max, USEC_PER_SEC);
        assert_int_equal(c->auth_retry_interval, USEC_PER_HOUR);
        assert_int_equal(c->request_timeout, 90 * USEC_PER_SEC);
        assert_int_equal(c->outbox_max_bytes, 1024ULL * 1024 * 1024);
}

static void test_empty_value_unsets(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok("[aws]\nregion =\nendpoint_url = ; none\n");
        assert_null(c->region);
        assert_null(c->endpoint_url);
}

static void test_structure_errors(void **state) {
        (void) state;
        assert_load_error("[agnet]\n", -EINVAL, "heald.ini:1: [agnet]: unknown section");
        assert_load_error("[agent]\nlog_level = info\n\n[Agent] ; case matters\n", -EINVAL,
                          "heald.ini:4: [Agent]: unknown section");
        assert_load_error("[agent]\n[checks]\ntype = unit\n", -EINVAL, "heald.ini:2: [checks]: unknown section");
        assert_load_error("[]\n", -EINVAL, "heald.ini:1: []: unknown section");
        assert_load_error("[agent]\nstate_dirr = /x\n", -EINVAL, "heald.ini:2: [agent] state_dirr: unknown key; did you mean state_dir?");
        assert_load_error("[aws]\nsource = heald\n", -EINVAL, "heald.ini:2: [aws] source: unknown key");
        assert_load_error("state_dir = /x\n[agent]\n", -EINVAL, "heald.ini:1: state_dir: key outside any section");
        assert_load_error("[agent]\nlog_level = info\n\nlog_level = debug\n", -EINVAL,
                          "heald.ini:4: [agent] log_level: duplicate key (first set on line 2)");
        assert_load_error("[agent]\nlog_level = info\n[aws]\n[agent]\nlog_level = info\n", -EINVAL,
                          "heald.ini:5: [agent] log_level: duplicate key (first set on line 2)");
        assert_load_error("[agent]\n\nstate_dir /x\n", -EINVAL,
                          "heald.ini:3: syntax error (expected [section], key = value or a ; comment)");
        assert_load_error("[agent\nlog_level = info\n", -EINVAL,
                          "heald.ini:1: syntax error (expected [section], key = value or a ; comment)");
        assert_load_error("[agent] log_level = info\n", -EINVAL, "heald.ini:1: text after a section header");
        assert_load_error("[agent]\nstate_dir = /x\n  log_level = debug\n", -EINVAL,
                          "heald.ini:3: indented line: keys start in the first column (continuation lines are not supported)");
        assert_load_error("[ag\x01]\n", -EINVAL, "heald.ini:1: unknown section (its name contains unprintable characters)");
        assert_load_error("[agent]\nst\x01 = x\n", -EINVAL,
                          "heald.ini:2: unknown key (its name contains unprintable characters)");

        /* every error is reported, in the order of the file, whatever kind it is */
        assert_load_error("[agent]\nnonsense\n[aws]\nfoo = 1\n", -EINVAL,
                          "heald.ini:2: syntax error (expected [section], key = value or a ; comment)\n"
                          "heald.ini:4: [aws] foo: unknown key");
        assert_load_error("[agent]\nfoo = 1\nnonsense\n", -EINVAL,
                          "heald.ini:2: [agent] foo: unknown key\n"
                          "heald.ini:3: syntax error (expected [section], key = value or a ; comment)");

        /* inih's buffer is 200 bytes: 197 characters of content fit, 198 do not */
        char line[300];
        memset(line, 'x', sizeof line);
        memcpy(line, "[aws]\n; ", 8);
        snprintf(line + 6 + 197, sizeof line - 6 - 197, "\n");
        config_free(load_ok(line));
        line[6 + 197] = 'x';
        snprintf(line + 6 + 198, sizeof line - 6 - 198, "\n");
        assert_load_error(line, -EINVAL, "heald.ini:2: line too long (at most 197 bytes)");

        /* strings stop at 176 bytes, so config_print() lines stay loadable */
        char dir[220] = "[agent]\nstate_dir=/";
        size_t n = strlen(dir);
        memset(dir + n, 'd', 175);
        snprintf(dir + n + 175, sizeof dir - n - 175, "\n");
        _cleanup_(config_freep) Config *c = load_ok(dir);
        assert_int_equal(strlen(c->state_dir), 176);
        snprintf(dir + n + 175, sizeof dir - n - 175, "d\n");
        assert_load_error(dir, -EINVAL, "heald.ini:2: [agent] state_dir: too long (at most 176 bytes)");
}

static void test_every_error_reported(void **state) {
        (void) state;
        /* check-config shows the whole list at once, not one error per edit */
        assert_load_error("[agent]\nlog_levle = debug\nstate_dir = relative\n[eventbridge]\nsoruce = x\n"
                          "[check web]\ntype = http\nurll = http://localhost/\ninterval = 0\n",
                          -EINVAL,
                          "heald.ini:2: [agent] log_levle: unknown key; did you mean log_level?\n"
                          "heald.ini:3: [agent] state_dir: must be an absolute path\n"
                          "heald.ini:5: [eventbridge] soruce: unknown key; did you mean source?\n"
                          "heald.ini:6: [check web] url: required for type http\n"
                          "heald.ini:8: [check web] urll: unknown key; did you mean url?\n"
                          "heald.ini:9: [check web] interval: must be between 1s and 24h");
        /* a rule checked once the file is read lands in file order, before a later key's error */
        assert_load_error("[eventbridge]\nretry_base = 10s\nretry_max = 1s\n[agent]\nfoo = 1\n", -EINVAL,
                          "heald.ini:3: [eventbridge] retry_max: must not be less than retry_base\n"
                          "heald.ini:5: [agent] foo: unknown key");
        /* what only follows from an error is left out: a refused value is not "missing" as well,
         * the keys of a refused section are not each unknown, a refused type judges nothing */
        assert_load_error("[check db]\ntype = tcp\nhost = localhost\nport = 0\n", -EINVAL,
                          "heald.ini:4: [check db] port: must be between 1 and 65535");
        assert_load_error("[agnet]\nlog_level = debug\nstate_dir = /x\n[aws]\nregoin = eu-west-1\n", -EINVAL,
                          "heald.ini:1: [agnet]: unknown section\n"
                          "heald.ini:5: [aws] regoin: unknown key; did you mean region?");
        assert_load_error("[check x]\ntype = tpc\nhost = h\nport = 1\n", -EINVAL,
                          "heald.ini:2: [check x] type: must be one of unit, http, tcp, disk, memory, load, file_age, journal, exec");
        assert_load_error("[check x]\ntype = tcp\nhost = h\nport = 1\ninterval = 0\ntimeout = 2s\n", -EINVAL,
                          "heald.ini:5: [check x] interval: must be between 1s and 24h");
        assert_load_error("[check d]\ntype = disk\npath = /\nmax_used_percent = 101\n", -EINVAL,
                          "heald.ini:4: [check d] max_used_percent: must be between 0 and 100");
        assert_load_error("[check u]\ntype = unit\nunit = a.service\naction = reboot\naction_unit = b.service\n", -EINVAL,
                          "heald.ini:4: [check u] action: must be one of none, restart-unit, start-unit, stop-unit, exec, request");
        /* a long line is skipped, not the end of the file */
        char text[400] = "[aws]\n; ";
        size_t n = strlen(text);
        memset(text + n, 'x', 250);
        snprintf(text + n + 250, sizeof text - n - 250, "\n[agent]\nfoo = 1\n");
        assert_load_error(text, -EINVAL,
                          "heald.ini:2: line too long (at most 197 bytes)\nheald.ini:4: [agent] foo: unknown key");
        /* no suggestion when nothing is near: a guess would mislead */
        assert_load_error("[agent]\nverbose = 1\n", -EINVAL, "heald.ini:2: [agent] verbose: unknown key");
}

static void test_value_errors(void **state) {
        (void) state;
        static const struct {
                const char *text;
                const char *message;
        } cases[] = {
                { "[agent]\nstate_dir = var/lib/heald\n", "heald.ini:2: [agent] state_dir: must be an absolute path" },
                { "[agent]\nstate_dir =\n", "heald.ini:2: [agent] state_dir: must not be empty" },
                { "[agent]\nstate_dir = /a\tb\n", "heald.ini:2: [agent] state_dir: must not contain control characters" },
                { "[agent]\nstate_dir =;/x\n",
                  "heald.ini:2: [agent] state_dir: must not start with ';' (it would read as a comment)" },
                { "[agent]\nlog_level = verbose\n",
                  "heald.ini:2: [agent] log_level: must be one of debug, info, notice, warning, error" },
                { "[agent]\nlog_level =\n",
                  "heald.ini:2: [agent] log_level: missing value (delete the line to get the default)" },
                { "[agent]\nheartbeat_interval = 5ms\n",
                  "heald.ini:2: [agent] heartbeat_interval: must be 0 (off) or between 10ms and 24h" },
                { "[agent]\nheartbeat_interval = 25h\n",
                  "heald.ini:2: [agent] heartbeat_interval: must be 0 (off) or between 10ms and 24h" },
                { "[agent]\nheartbeat_interval = -1\n",
                  "heald.ini:2: [agent] heartbeat_interval: not a duration (write e.g. 30, 200ms, 30s, 5m or 1h)" },
                { "[agent]\nheartbeat_interval = 5 m\n",
                  "heald.ini:2: [agent] heartbeat_interval: not a duration (write e.g. 30, 200ms, 30s, 5m or 1h)" },
                { "[agent]\nheartbeat_interval = 99999999999999999999\n",
                  "heald.ini:2: [agent] heartbeat_interval: must be 0 (off) or between 10ms and 24h" },
                { "[aws]\nregion = US-EAST-1\n", "heald.ini:2: [aws] region: must be empty or a region name like us-east-1" },
                { "[aws]\nregion = us-east\n", "heald.ini:2: [aws] region: must be empty or a region name like us-east-1" },
                { "[aws]\nregion = us-east-1a\n", "heald.ini:2: [aws] region: must be empty or a region name like us-east-1" },
                { "[aws]\nimds_endpoint = https://169.254.169.254\n",
                  "heald.ini:2: [aws] imds_endpoint: must start with http:// (IMDS is link-local, plain HTTP)" },
                { "[aws]\nimds_endpoint =\n", "heald.ini:2: [aws] imds_endpoint: must not be empty" },
                { "[aws]\nimds_timeout = 10ms\n", "heald.ini:2: [aws] imds_timeout: must be between 100ms and 1m" },
                { "[aws]\nendpoint_url = ftp://x\n",
                  "heald.ini:2: [aws] endpoint_url: must be empty or an http:// or https:// URL with a host" },
                { "[aws]\nevents_endpoint = http://\n",
                  "heald.ini:2: [aws] events_endpoint: must be empty or an http:// or https:// URL with a host" },
                { "[aws]\nevents_endpoint = https://a b\n",
                  "heald.ini:2: [aws] events_endpoint: must be empty or an http:// or https:// URL with a host" },
                { "[eventbridge]\nevent_bus =\n", "heald.ini:2: [eventbridge] event_bus: must not be empty" },
                { "[eventbridge]\nevent_bus = my bus\n",
                  "heald.ini:2: [eventbridge] event_bus: may only contain letters, digits and ._-/: (a bus name or ARN)" },
                { "[eventbridge]\nsource = aws.ec2\n",
                  "heald.ini:2: [eventbridge] source: must not start with \"aws.\" (reserved for AWS services)" },
                { "[eventbridge]\nsource = ; nothing\n", "heald.ini:2: [eventbridge] source: must not be empty" },
                { "[eventbridge]\nmax_request_bytes = 1023\n",
                  "heald.ini:2: [eventbridge] max_request_bytes: must be between 1KiB and 1MiB" },
                { "[eventbridge]\nmax_request_bytes = 1048577\n",
                  "heald.ini:2: [eventbridge] max_request_bytes: must be between 1KiB and 1MiB" },
                { "[eventbridge]\nmax_request_bytes = 1MB\n",
                  "heald.ini:2: [eventbridge] max_request_bytes: not a size (write e.g. 4096, 64K, 64KiB, 1M, 1MiB, 1G or 1GiB)" },
                { "[eventbridge]\nretry_base = 0\n", "heald.ini:2: [eventbridge] retry_base: must be between 1ms and 1h" },
                { "[eventbridge]\nretry_max = 100ms\n\n",
                  "heald.ini:2: [eventbridge] retry_max: must not be less than retry_base" },
                { "[eventbridge]\nretry_max = 10s\nretry_base = 1m\n",
                  "heald.ini:3: [eventbridge] retry_max: must not be less than retry_base" },
                { "[eventbridge]\nauth_retry_interval = 500ms\n",
                  "heald.ini:2: [eventbridge] auth_retry_interval: must be between 1s and 24h" },
                { "[eventbridge]\nrequest_timeout = 11m\n",
                  "heald.ini:2: [eventbridge] request_timeout: must be between 1s and 10m" },
                { "[outbox]\nmax_bytes = 1048575\n", "heald.ini:2: [outbox] max_bytes: must be at least 1MiB" },
                { "[outbox]\nmax_bytes = 17179869184G\n", "heald.ini:2: [outbox] max_bytes: must be at least 1MiB" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_load_error(cases[i].text, -EINVAL, cases[i].message);
}

static void test_durations(void **state) {
        (void) state;
        static const struct {
                const char *s;
                int r;
                usec_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "30", 0, 30 * USEC_PER_SEC },
                { "30s", 0, 30 * USEC_PER_SEC },
                { "200ms", 0, 200 * USEC_PER_MSEC },
                { "5m", 0, 5 * USEC_PER_MINUTE },
                { "1h", 0, USEC_PER_HOUR },
                { "007s", 0, 7 * USEC_PER_SEC },
                { "5124095576h", 0, 5124095576ULL * USEC_PER_HOUR },
                { "5124095577h", -ERANGE, 0 },
                { "18446744073709551ms", 0, 18446744073709551ULL * USEC_PER_MSEC },
                { "18446744073709552ms", -ERANGE, 0 },
                { "18446744073709551616", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "s", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "+1", -EINVAL, 0 },
                { " 1", -EINVAL, 0 },
                { "1 ", -EINVAL, 0 },
                { "1.5s", -EINVAL, 0 },
                { "1d", -EINVAL, 0 },
                { "1S", -EINVAL, 0 },
                { "1m30s", -EINVAL, 0 },
                { "0x10", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                usec_t v = 4242;
                int r = config_parse_duration(cases[i].s, &v);
                if (r != cases[i].r)
                        fail_msg("\"%s\": got %d, expected %d", cases[i].s, r, cases[i].r);
                assert_int_equal(v, cases[i].r == 0 ? cases[i].v : 4242); /* untouched on failure */
        }
        usec_t v;
        assert_int_equal(config_parse_duration(NULL, &v), -EINVAL);
}

static void test_sizes(void **state) {
        (void) state;
        static const struct {
                const char *s;
                int r;
                uint64_t v;
        } cases[] = {
                { "0", 0, 0 },
                { "4096", 0, 4096 },
                { "1K", 0, 1024 },
                { "1KiB", 0, 1024 },
                { "64M", 0, 64ULL << 20 },
                { "64MiB", 0, 64ULL << 20 },
                { "2G", 0, 2ULL << 30 },
                { "2GiB", 0, 2ULL << 30 },
                { "18446744073709551615", 0, UINT64_MAX },
                { "18446744073709551616", -ERANGE, 0 },
                { "17179869183GiB", 0, 17179869183ULL << 30 },
                { "17179869184GiB", -ERANGE, 0 },
                { "", -EINVAL, 0 },
                { "1k", -EINVAL, 0 },
                { "1KB", -EINVAL, 0 },
                { "1MB", -EINVAL, 0 },
                { "1 MiB", -EINVAL, 0 },
                { "1B", -EINVAL, 0 },
                { "1T", -EINVAL, 0 },
                { "-1", -EINVAL, 0 },
                { "MiB", -EINVAL, 0 },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                uint64_t v = 4242;
                int r = config_parse_size(cases[i].s, &v);
                if (r != cases[i].r)
                        fail_msg("\"%s\": got %d, expected %d", cases[i].s, r, cases[i].r);
                assert_int_equal(v, cases[i].r == 0 ? cases[i].v : 4242);
        }
}

static void test_bools(void **state) {
        (void) state;
        static const char *const yes[] = { "true", "yes", "on", "1", "TRUE", "Yes" };
        static const char *const no[] = { "false", "no", "off", "0", "Off" };
        static const char *const bad[] = { "", "2", "y", "enable", "true ", "nope" };
        bool b;

        for (size_t i = 0; i < ELEMENTSOF(yes); i++) {
                b = false;
                assert_int_equal(config_parse_bool(yes[i], &b), 0);
                assert_true(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(no); i++) {
                b = true;
                assert_int_equal(config_parse_bool(no[i], &b), 0);
                assert_false(b);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                assert_int_equal(config_parse_bool(bad[i], &b), -EINVAL);
        assert_int_equal(config_parse_bool(NULL, &b), -EINVAL);
}

static char *print_to_string(const Config *c) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);
        assert_non_null(f);
        assert_int_equal(config_print(c, f), 0);
        assert_int_equal(fclose(f), 0);
        return buf;
}

static void assert_same_strv(char *const *a, char *const *b) {
        assert_int_equal(!a, !b);
        for (; a && *a && *b; a++, b++)
                assert_string_equal(*a, *b);
        if (a)
                assert_int_equal(!*a, !*b);
}

static void assert_same_check(const CheckConfig *a, const CheckConfig *b) {
        assert_string_equal(a->name, b->name);
        assert_int_equal(a->type, b->type);
        assert_int_equal(a->interval, b->interval);
        assert_int_equal(a->timeout, b->timeout);
        assert_int_equal(a->fail_after, b->fail_after);
        assert_int_equal(a->recover_after, b->recover_after);
        assert_int_equal(a->action, b->action);
        assert_true(streq_ptr(a->action_unit, b->action_unit));
        assert_same_strv(a->action_command, b->action_command);
        assert_int_equal(a->max_actions, b->max_actions);
        assert_int_equal(a->action_window, b->action_window);
        assert_int_equal(a->verify_timeout, b->verify_timeout);
        assert_true(streq_ptr(a->after, b->after));
        assert_true(streq_ptr(a->unit, b->unit));
        assert_true(streq_ptr(a->url, b->url));
        assert_int_equal(a->expect_status_min, b->expect_status_min);
        assert_int_equal(a->expect_status_max, b->expect_status_max);
        assert_true(streq_ptr(a->expect_body, b->expect_body));
        assert_true(streq_ptr(a->host, b->host));
        assert_int_equal(a->port, b->port);
        assert_true(streq_ptr(a->path, b->path));
        assert_true(a->max_used_percent == b->max_used_percent);
        assert_true(a->max_inodes_percent == b->max_inodes_percent);
        assert_true(a->min_available_percent == b->min_available_percent);
        assert_true(a->max_swap_percent == b->max_swap_percent);
        assert_true(a->max_load_per_cpu == b->max_load_per_cpu);
        assert_int_equal(a->max_age, b->max_age);
        assert_same_strv(a->match, b->match);
        assert_true(streq_ptr(a->pattern, b->pattern));
        assert_same_strv(a->command, b->command);
}

static void assert_same_config(const Config *a, const Config *b) {
        assert_true(streq_ptr(a->state_dir, b->state_dir));
        assert_int_equal(a->log_level, b->log_level);
        assert_int_equal(a->heartbeat_interval, b->heartbeat_interval);
        assert_true(streq_ptr(a->region, b->region));
        assert_true(streq_ptr(a->imds_endpoint, b->imds_endpoint));
        assert_int_equal(a->imds_timeout, b->imds_timeout);
        assert_true(streq_ptr(a->endpoint_url, b->endpoint_url));
        assert_true(streq_ptr(a->events_endpoint, b->events_endpoint));
        assert_true(streq_ptr(a->event_bus, b->event_bus));
        assert_true(streq_ptr(a->source, b->source));
        assert_int_equal(a->max_request_bytes, b->max_request_bytes);
        assert_int_equal(a->retry_base, b->retry_base);
        assert_int_equal(a->retry_max, b->retry_max);
        assert_int_equal(a->auth_retry_interval, b->auth_retry_interval);
        assert_int_equal(a->request_timeout, b->request_timeout);
        assert_int_equal(a->outbox_max_bytes, b->outbox_max_bytes);
        assert_int_equal(a->dry_run, b->dry_run);
        assert_true(streq_ptr(a->sqs_endpoint, b->sqs_endpoint));
        assert_true(streq_ptr(a->states_endpoint, b->states_endpoint));
        assert_true(streq_ptr(a->queue_url, b->queue_url));
        assert_int_equal(a->sqs_wait_time, b->sqs_wait_time);
        assert_int_equal(a->sqs_max_messages, b->sqs_max_messages);
        assert_int_equal(a->sqs_visibility_timeout, b->sqs_visibility_timeout);
        assert_same_strv(a->commands_allow, b->commands_allow);
        assert_same_strv(a->commands_units, b->commands_units);
        assert_same_strv(a->commands_allowed_senders, b->commands_allowed_senders);
        assert_same_strv(a->commands_drain_units, b->commands_drain_units);
        assert_int_equal(a->commands_verify_timeout, b->commands_verify_timeout);
        assert_int_equal(a->commands_job_timeout, b->commands_job_timeout);
        assert_int_equal(a->n_checks, b->n_checks);
        for (size_t i = 0; i < a->n_checks; i++)
                assert_same_check(&a->checks[i], &b->checks[i]);
}

static void test_print_round_trip(void **state) {
        (void) state;
        static const char *const sources[] = {
                "",
                "[agent]\nlog_level = warning\nheartbeat_interval = 90\n"
                "[aws]\nregion = eu-central-1\nimds_timeout = 1500ms\nendpoint_url = http://localhost:4566\n"
                "[eventbridge]\nsource = acme.heald\nmax_request_bytes = 1000000\nretry_base = 60s\nretry_max = 2h\n"
                "request_timeout = 61\n[outbox]\nmax_bytes = 1536K\n",
                "[agent]\ndry_run = on\n[aws]\nsqs_endpoint = http://localhost:9324\n"
                "[sqs]\nqueue_url = https://sqs.{region}.amazonaws.com/{account_id}/q\nwait_time = 5000ms\n"
                "[commands]\nallow = ping restart-units,stop-start-units\nunits = a*.service\nallowed_senders =\n"
                "drain_units = a.service b.socket\n"
                "[check web]\ntype = http\nurl = http://127.0.0.1:8080/health\nexpect_status = 200-204\n"
                "expect_body = ok\naction = restart-unit\naction_unit = nginx.service\nafter = nginx\n"
                "[check nginx]\ntype = unit\nunit = nginx.service\naction = start-unit\n"
                "[check dns]\ntype = tcp\nhost = ::1\nport = 53\ninterval = 1m\ntimeout = 59999ms\n"
                "[check root]\ntype = disk\npath = /\nmax_used_percent = 0.001\nmax_inodes_percent = 99.99\n"
                "[check mem]\ntype = memory\nmin_available_percent = 7.5\nmax_swap_percent = 100\n"
                "[check load]\ntype = load\nmax_load_per_cpu = 1000\naction = request\n"
                "[check beat]\ntype = file_age\npath = /run/beat\nmax_age = 90s\nfail_after = 4\n"
                "[check oom]\ntype = journal\nmatch = _TRANSPORT=kernel PRIORITY=2\npattern = [Oo]ut of memory\n"
                "[check script]\ntype = exec\ncommand = /bin/sh -c \"echo 'a  b'\" '' x\"'\"y\naction = exec\n"
                "action_command = /bin/echo ';' \"\" \"it's\"\nmax_actions = 1\naction_window = 1h\n"
                "verify_timeout = 2s\nrecover_after = 2\n",
        };
        for (size_t i = 0; i < ELEMENTSOF(sources); i++) {
                _cleanup_(config_freep) Config *a = load_ok(sources[i]);
                _cleanup_free_ char *printed = print_to_string(a);
                _cleanup_(config_freep) Config *b = load_ok(printed);
                assert_same_config(a, b);
                _cleanup_free_ char *again = print_to_string(b);
                /* only the digest comment on the first line may differ */
                assert_string_equal(strchr(printed, '\n'), strchr(again, '\n'));
        }

        _cleanup_(config_freep) Config *d = load_ok("");
        _cleanup_free_ char *text = print_to_string(d);
        assert_non_null(strstr(text, "[agent]\nstate_dir = /var/lib/heald\nlog_level = info\nheartbeat_interval = 5m\n"));
        assert_non_null(strstr(text, "\nregion =\n"));
        assert_non_null(strstr(text, "\nretry_base = 200ms\n"));
        assert_non_null(strstr(text, "\nmax_request_bytes = 256KiB\n"));
        assert_non_null(strstr(text, "[outbox]\nmax_bytes = 64MiB\n"));
        assert_non_null(strstr(text, d->digest));
        assert_non_null(strstr(text, "[agent]\nstate_dir = /var/lib/heald\nlog_level = info\nheartbeat_interval = 5m\n"
                                     "dry_run = false\n"));
        assert_non_null(strstr(text, "[sqs]\nqueue_url =\nwait_time = 20s\nmax_messages = 10\nvisibility_timeout = 1m\n"));
        assert_non_null(strstr(text, "[commands]\nallow = ping, run-checks\nunits =\nallowed_senders =\ndrain_units =\n"
                                     "verify_timeout = 5m\n"));

        /* a check prints every key of its type, defaults filled in, and nothing else */
        _cleanup_(config_freep) Config *w = load_ok("[check web]\ntype = http\nurl = http://x/\n"
                                                    "[check j]\ntype = journal\npattern = a b\naction = restart-unit\n"
                                                    "action_unit = x.service\n");
        _cleanup_free_ char *checks = print_to_string(w);
        assert_non_null(strstr(checks, "\n[check web]\ntype = http\ninterval = 10s\ntimeout = 5s\nfail_after = 3\n"
                                       "recover_after = 1\naction = none\nmax_actions = 3\naction_window = 10m\n"
                                       "verify_timeout = 1m\nafter =\nurl = http://x/\nexpect_status = 200-399\n"
                                       "expect_body =\n\n[check j]\ntype = journal\ninterval = 10s\nfail_after = 1\nrecover_after = 1\n"
                                       "action = restart-unit\naction_unit = x.service\nmax_actions = 3\n"
                                       "action_window = 10m\nverify_timeout = 1m\nafter =\nmatch =\npattern = a b\n"));
}

static void test_service_endpoint(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *plain = load_ok("");
        _cleanup_(config_freep) Config *regional = load_ok("[aws]\nregion = cn-north-1\n");
        _cleanup_(config_freep) Config *shared = load_ok("[aws]\nendpoint_url = http://localhost:5000\n");
        _cleanup_(config_freep) Config *both = load_ok(
                "[aws]\nendpoint_url = http://localhost:5000\nevents_endpoint = https://events.example\n");
        _cleanup_(config_freep) Config *each = load_ok(
                "[aws]\nregion = us-east-1\nsqs_endpoint = http://localhost:9324\nstates_endpoint = https://states.example\n");
        char *url = NULL;

        assert_int_equal(config_service_endpoint(plain, "events", NULL, &url), -ENODATA);
        assert_null(url);
        assert_int_equal(config_service_endpoint(plain, "events", "us-east-1", &url), 0);
        assert_string_equal(url, "https://events.us-east-1.amazonaws.com");
        free(url);
        assert_int_equal(config_service_endpoint(regional, "sqs", NULL, &url), 0);
        assert_string_equal(url, "https://sqs.cn-north-1.amazonaws.com.cn");
        free(url);
        assert_int_equal(config_service_endpoint(shared, "events", NULL, &url), 0);
        assert_string_equal(url, "http://localhost:5000");
        free(url);
        assert_int_equal(config_service_endpoint(both, "events", "us-east-1", &url), 0);
        assert_string_equal(url, "https://events.example");
        free(url);
        assert_int_equal(config_service_endpoint(both, "sqs", "us-east-1", &url), 0);
        assert_string_equal(url, "http://localhost:5000");
        free(url);
        assert_int_equal(config_service_endpoint(each, "sqs", NULL, &url), 0);
        assert_string_equal(url, "http://localhost:9324");
        free(url);
        assert_int_equal(config_service_endpoint(each, "states", NULL, &url), 0);
        assert_string_equal(url, "https://states.example");
        free(url);
        assert_int_equal(config_service_endpoint(each, "events", NULL, &url), 0);
        assert_string_equal(url, "https://events.us-east-1.amazonaws.com");
        free(url);
        assert_int_equal(config_service_endpoint(regional, "states", NULL, &url), 0);
        assert_string_equal(url, "https://states.cn-north-1.amazonaws.com.cn");
        free(url);

        /* a VPC endpoint written once for every region */
        _cleanup_(config_freep) Config *vpce = load_ok(
                "[aws]\nsqs_endpoint = https://vpce-0a1b-c2d3.sqs.{region}.vpce.amazonaws.com\n");
        assert_int_equal(config_service_endpoint(vpce, "sqs", NULL, &url), -ENODATA);
        assert_int_equal(config_service_endpoint(vpce, "sqs", "eu-west-1", &url), 0);
        assert_string_equal(url, "https://vpce-0a1b-c2d3.sqs.eu-west-1.vpce.amazonaws.com");
        free(url);
        assert_load_error("[aws]\nsqs_endpoint = https://sqs.{instance_id}.example\n", -EINVAL,
                          "heald.ini:2: [aws] sqs_endpoint: may only hold the placeholder {region}");
        assert_load_error("[aws]\nendpoint_url = https://x.{region.example\n", -EINVAL,
                          "heald.ini:2: [aws] endpoint_url: may only hold the placeholder {region}");
}

static void test_command_channel(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok(
                "[agent]\n"
                "dry_run = yes\n"
                "[aws]\n"
                "sqs_endpoint = http://localhost:9324\n"
                "states_endpoint = https://states.example\n"
                "[sqs]\n"
                "queue_url = https://sqs.{region}.amazonaws.com/{account_id}/heald-{instance_id}\n"
                "wait_time = 0\n"
                "max_messages = 1\n"
                "visibility_timeout = 12h\n"
                "[commands]\n"
                "allow = ping,run-checks  restart-units, reboot ,prepare-stop\n"
                "units = nginx.service, app-*.service,worker@?.service ; globs\n"
                "allowed_senders = AROAEXAMPLE:*, 123456789012\n"
                "drain_units = haproxy.service app.service\n"
                "verify_timeout = 90s\n"
                "job_timeout = 2m\n");

        assert_true(c->dry_run);
        assert_string_equal(c->sqs_endpoint, "http://localhost:9324");
        assert_string_equal(c->states_endpoint, "https://states.example");
        assert_string_equal(c->queue_url, "https://sqs.{region}.amazonaws.com/{account_id}/heald-{instance_id}");
        assert_int_equal(c->sqs_wait_time, 0);
        assert_int_equal(c->sqs_max_messages, 1);
        assert_int_equal(c->sqs_visibility_timeout, 12 * USEC_PER_HOUR);
        assert_strv(c->commands_allow, "ping|run-checks|restart-units|reboot|prepare-stop");
        assert_strv(c->commands_units, "nginx.service|app-*.service|worker@?.service");
        assert_strv(c->commands_allowed_senders, "AROAEXAMPLE:*|123456789012");
        assert_strv(c->commands_drain_units, "haproxy.service|app.service");
        assert_int_equal(c->commands_verify_timeout, 90 * USEC_PER_SEC);
        assert_int_equal(c->commands_job_timeout, 2 * USEC_PER_MINUTE);

        /* an empty list allows nothing */
        _cleanup_(config_freep) Config *none = load_ok("[commands]\nallow =\n");
        assert_null(none->commands_allow);

        static const struct {
                const char *text;
                const char *message;
        } cases[] = {
                { "[agent]\ndry_run = maybe\n", "heald.ini:2: [agent] dry_run: must be true or false (or yes/no, on/off, 1/0)" },
                { "[agent]\ndry_run =\n", "heald.ini:2: [agent] dry_run: missing value (delete the line to get the default)" },
                { "[aws]\nsqs_endpoint = sqs.local\n",
                  "heald.ini:2: [aws] sqs_endpoint: must be empty or an http:// or https:// URL with a host" },
                { "[aws]\nstates_endpoint = https:///x\n",
                  "heald.ini:2: [aws] states_endpoint: must be empty or an http:// or https:// URL with a host" },
                { "[sqs]\nqueue_url = sqs://q\n",
                  "heald.ini:2: [sqs] queue_url: must be empty or an https:// or http:// URL with a host" },
                { "[sqs]\nqueue_url = https://sqs/{instance}\n",
                  "heald.ini:2: [sqs] queue_url: may only hold the placeholders {instance_id}, {region} and {account_id}" },
                { "[sqs]\nqueue_url = https://sqs/{region\n",
                  "heald.ini:2: [sqs] queue_url: may only hold the placeholders {instance_id}, {region} and {account_id}" },
                { "[sqs]\nqueue_url = https://sqs/region}\n",
                  "heald.ini:2: [sqs] queue_url: may only hold the placeholders {instance_id}, {region} and {account_id}" },
                { "[sqs]\nwait_time = 21\n", "heald.ini:2: [sqs] wait_time: must be between 0 and 20s" },
                { "[sqs]\nwait_time = 1500ms\n", "heald.ini:2: [sqs] wait_time: must be whole seconds" },
                { "[sqs]\nmax_messages = 0\n", "heald.ini:2: [sqs] max_messages: must be between 1 and 10" },
                { "[sqs]\nmax_messages = 11\n", "heald.ini:2: [sqs] max_messages: must be between 1 and 10" },
                { "[sqs]\nmax_messages = 5x\n", "heald.ini:2: [sqs] max_messages: not a whole number" },
                { "[sqs]\nmax_messages = 99999999999999999999\n", "heald.ini:2: [sqs] max_messages: must be between 1 and 10" },
                { "[sqs]\nvisibility_timeout = 0\n", "heald.ini:2: [sqs] visibility_timeout: must be between 1s and 12h" },
                { "[sqs]\nvisibility_timeout = 13h\n", "heald.ini:2: [sqs] visibility_timeout: must be between 1s and 12h" },
                { "[sqs]\nvisibility_timeout = 61500ms\n", "heald.ini:2: [sqs] visibility_timeout: must be whole seconds" },
                { "[commands]\nallow = ping, reboot-now\n",
                  "heald.ini:2: [commands] allow: \"reboot-now\" must be one of ping, run-checks, restart-units, stop-units, "
                  "start-units, stop-start-units, prepare-stop, reboot" },
                { "[commands]\nallow = , ,\n", "heald.ini:2: [commands] allow: empty list" },
                { "[commands]\nunits = nginx\n",
                  "heald.ini:2: [commands] units: \"nginx\" must be a unit name or glob with its type suffix, like "
                  "nginx.service or app-*.service" },
                { "[commands]\nunits = *\n",
                  "heald.ini:2: [commands] units: \"*\" must be a unit name or glob with its type suffix, like "
                  "nginx.service or app-*.service" },
                { "[commands]\nallowed_senders = AROA;x\n",
                  "heald.ini:2: [commands] allowed_senders: \"AROA;x\" must be a sender id or glob (letters, digits and "
                  ":_.@/+=-*?[]!)" },
                { "[commands]\ndrain_units = app-*.service\n",
                  "heald.ini:2: [commands] drain_units: \"app-*.service\" must be a unit name with its type suffix, like "
                  "nginx.service" },
                { "[commands]\nverify_timeout = 2h\n", "heald.ini:2: [commands] verify_timeout: must be between 1s and 1h" },
                { "[commands]\njob_timeout = 0\n", "heald.ini:2: [commands] job_timeout: must be between 1s and 1h" },
                { "[commands]\nallow = ping\nallow = reboot\n",
                  "heald.ini:3: [commands] allow: duplicate key (first set on line 2)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_load_error(cases[i].text, -EINVAL, cases[i].message);

        /* lists are printed joined by ", ", and that must fit a line too */
        char senders[256] = "[commands]\nallowed_senders = a";
        for (int i = 0; i < 60; i++)
                strcat(senders, ",a");
        strcat(senders, "\n");
        assert_load_error(senders, -EINVAL,
                          "heald.ini:2: [commands] allowed_senders: too long as written back (at most 176 bytes, items "
                          "joined by \", \")");
}

/* One check of each type with only the keys it needs: every default. */
static void test_check_defaults(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok(
                "[check nginx]\ntype = unit\nunit = nginx.service\n"
                "[check web]\ntype = http\nurl = http://127.0.0.1/health\n"
                "[check redis]\ntype = tcp\nhost = 127.0.0.1\nport = 6379\n"
                "[check root]\ntype = disk\npath = /\nmax_inodes_percent = 95\n"
                "[check mem]\ntype = memory\nmin_available_percent = 10\n"
                "[check load]\ntype = load\nmax_load_per_cpu = 2.5\n"
                "[check heartbeat]\ntype = file_age\npath = /run/app/heartbeat\nmax_age = 2m\n"
                "[check oom]\ntype = journal\npattern = Out of memory\n"
                "[check script]\ntype = exec\ncommand = /bin/true\n");
        static const struct {
                const char *name;
                CheckType type;
                unsigned fail_after;
        } expected[] = {
                { "nginx", CHECK_UNIT, 1 },    { "web", CHECK_HTTP, 3 },      { "redis", CHECK_TCP, 3 },
                { "root", CHECK_DISK, 3 },     { "mem", CHECK_MEMORY, 3 },    { "load", CHECK_LOAD, 3 },
                { "heartbeat", CHECK_FILE_AGE, 1 }, { "oom", CHECK_JOURNAL, 1 }, { "script", CHECK_EXEC, 3 },
        };

        assert_int_equal(c->n_checks, ELEMENTSOF(expected));
        for (size_t i = 0; i < ELEMENTSOF(expected); i++) {
                const CheckConfig *cc = &c->checks[i];
                assert_string_equal(cc->name, expected[i].name);
                assert_ptr_equal(config_find_check(c, expected[i].name), cc);
                assert_int_equal(cc->type, expected[i].type);
                assert_int_equal(cc->fail_after, expected[i].fail_after);
                assert_int_equal(cc->recover_after, 1);
                assert_int_equal(cc->action, CHECK_ACTION_NONE);
                assert_null(cc->action_unit);
                assert_null(cc->action_command);
                assert_int_equal(cc->max_actions, 3);
                assert_int_equal(cc->action_window, 10 * USEC_PER_MINUTE);
                assert_int_equal(cc->verify_timeout, 60 * USEC_PER_SEC);
                assert_null(cc->after);
                bool polled = cc->type != CHECK_UNIT && cc->type != CHECK_JOURNAL;
                assert_int_equal(cc->interval, 10 * USEC_PER_SEC);
                assert_int_equal(cc->timeout, polled ? 5 * USEC_PER_SEC : 0);
                assert_int_equal(cc->expect_status_min, cc->type == CHECK_HTTP ? 200 : 0);
                assert_int_equal(cc->expect_status_max, cc->type == CHECK_HTTP ? 399 : 0);
        }
        assert_int_equal(c->checks[0].line, 1);
        assert_int_equal(c->checks[1].line, 4);
        assert_string_equal(c->checks[0].unit, "nginx.service");
        assert_string_equal(c->checks[1].url, "http://127.0.0.1/health");
        assert_null(c->checks[1].expect_body);
        assert_string_equal(c->checks[2].host, "127.0.0.1");
        assert_int_equal(c->checks[2].port, 6379);
        assert_string_equal(c->checks[3].path, "/");
        assert_true(c->checks[3].max_used_percent < 0);
        assert_true(c->checks[3].max_inodes_percent == 95);
        assert_true(c->checks[4].min_available_percent == 10);
        assert_true(c->checks[4].max_swap_percent < 0);
        assert_true(c->checks[5].max_load_per_cpu == 2.5);
        assert_string_equal(c->checks[6].path, "/run/app/heartbeat");
        assert_int_equal(c->checks[6].max_age, 2 * USEC_PER_MINUTE);
        assert_null(c->checks[7].match);
        assert_string_equal(c->checks[7].pattern, "Out of memory");
        assert_strv(c->checks[8].command, "/bin/true");
        /* unused fields of other types stay unset */
        assert_null(c->checks[0].url);
        assert_int_equal(c->checks[0].port, 0);
        assert_true(c->checks[0].max_used_percent < 0 && c->checks[0].max_load_per_cpu < 0);
        assert_int_equal(c->checks[0].max_age, 0);

        assert_string_equal(check_type_to_string(CHECK_FILE_AGE), "file_age");
        assert_null(check_type_to_string(_CHECK_TYPE_MAX));
        assert_string_equal(check_action_to_string(CHECK_ACTION_RESTART_UNIT), "restart-unit");
        assert_string_equal(check_action_to_string(CHECK_ACTION_REQUEST), "request");
        assert_null(check_action_to_string(_CHECK_ACTION_MAX));
}

static void test_check_keys(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok(
                "[check app]\n"
                "unit = app.service ; keys in any order\n"
                "type = unit\n"
                "fail_after = 2\n"
                "recover_after = 5\n"
                "action = restart-unit\n"
                "max_actions = 100\n"
                "action_window = 168h\n"
                "verify_timeout = 1h\n"
                "[check web]\n"
                "type = http\n"
                "interval = 30s\n"
                "timeout = 29999ms\n"
                "url = https://example.com/health?x=1\n"
                "expect_status = 200-299\n"
                "expect_body = \"status\":\"ok\"\n"
                "after = app\n"
                "action = restart-unit\n"
                "action_unit = nginx.service\n"
                "[check api]\n"
                "type = http\n"
                "url = http://localhost:8080/\n"
                "expect_status = 204\n"
                "action = request\n"
                "[check root]\n"
                "type = disk\n"
                "path = /var\n"
                "max_used_percent = 90.125\n"
                "max_inodes_percent = 0\n"
                "action = exec\n"
                "action_command = /bin/sh -c 'rm -f /var/tmp/*.old'\n"
                "[check mem]\n"
                "type = memory\n"
                "min_available_percent = 100\n"
                "max_swap_percent = 50.5\n"
                "[check kernel]\n"
                "type = journal\n"
                "match = _TRANSPORT=kernel SYSLOG_IDENTIFIER=kernel PRIORITY=3,4\n"
                "pattern = (EXT4-fs error|I/O error|Out of memory: Killed process [0-9]+)\n");

        const CheckConfig *app = config_find_check(c, "app"), *web = config_find_check(c, "web"),
                          *api = config_find_check(c, "api"), *root = config_find_check(c, "root"),
                          *mem = config_find_check(c, "mem"), *kernel = config_find_check(c, "kernel");
        assert_non_null(app);
        assert_int_equal(app->fail_after, 2);
        assert_int_equal(app->recover_after, 5);
        assert_int_equal(app->action, CHECK_ACTION_RESTART_UNIT);
        assert_string_equal(app->action_unit, "app.service"); /* the check's unit by default */
        assert_int_equal(app->max_actions, 100);
        assert_int_equal(app->action_window, 7 * 24 * USEC_PER_HOUR);
        assert_int_equal(app->verify_timeout, USEC_PER_HOUR);

        assert_int_equal(web->interval, 30 * USEC_PER_SEC);
        assert_int_equal(web->timeout, 29999 * USEC_PER_MSEC);
        assert_string_equal(web->url, "https://example.com/health?x=1");
        assert_int_equal(web->expect_status_min, 200);
        assert_int_equal(web->expect_status_max, 299);
        assert_string_equal(web->expect_body, "\"status\":\"ok\"");
        assert_string_equal(web->after, "app");
        assert_string_equal(web->action_unit, "nginx.service");

        assert_int_equal(api->expect_status_min, 204);
        assert_int_equal(api->expect_status_max, 204);
        assert_int_equal(api->action, CHECK_ACTION_REQUEST);
        assert_null(api->action_unit);

        assert_true(root->max_used_percent == 90.125);
        assert_true(root->max_inodes_percent == 0);
        assert_int_equal(root->action, CHECK_ACTION_EXEC);
        assert_strv(root->action_command, "/bin/sh|-c|rm -f /var/tmp/*.old");

        assert_true(mem->min_available_percent == 100);
        assert_true(mem->max_swap_percent == 50.5);

        assert_strv(kernel->match, "_TRANSPORT=kernel|SYSLOG_IDENTIFIER=kernel|PRIORITY=3,4");
        assert_string_equal(kernel->pattern, "(EXT4-fs error|I/O error|Out of memory: Killed process [0-9]+)");
}

static void test_check_errors(void **state) {
        (void) state;
        static const struct {
                const char *text;
                const char *message;
        } cases[] = {
                /* sections */
                { "[check]\ntype = unit\n", "heald.ini:1: [check]: a check section needs a name, as in [check NAME]" },
                { "[check ]\n", "heald.ini:1: [check ]: a check name is 1 to 64 letters, digits, '-', '_' or '.'" },
                { "[check web/1]\n", "heald.ini:1: [check web/1]: a check name is 1 to 64 letters, digits, '-', '_' or '.'" },
                { "[check a b]\n", "heald.ini:1: [check a b]: a check name is 1 to 64 letters, digits, '-', '_' or '.'" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\n\n[check x]\ntype = load\n",
                  "heald.ini:5: [check x]: duplicate check (first defined on line 1)" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\n[agent]\n[check x]\n",
                  "heald.ini:5: [check x]: duplicate check (first defined on line 1)" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\ntype = load\n",
                  "heald.ini:4: [check x] type: duplicate key (first set on line 2)" },
                { "[check x]\ntype = load\nmax_load = 1\nmax_load_per_cpu = 1\n", "heald.ini:3: [check x] max_load: unknown key" },
                /* type */
                { "[agent]\n[check web]\ntype = systemd\n",
                  "heald.ini:3: [check web] type: must be one of unit, http, tcp, disk, memory, load, file_age, journal, exec" },
                { "[check web]\ntype =\n", "heald.ini:2: [check web] type: must not be empty" },
                { "[check web]\nurl = http://x/\n\n[agent]\n",
                  "heald.ini:1: [check web] type: required (unit, http, tcp, disk, memory, load, file_age, journal or exec)" },
                { "[check web]\n", "heald.ini:1: [check web] type: required (unit, http, tcp, disk, memory, load, file_age, "
                                   "journal or exec)" },
                /* keys of another type, at their line */
                { "[check web]\ntype = http\nurl = http://x/\nmax_age = 5m\n",
                  "heald.ini:4: [check web] max_age: not a key of type http" },
                { "[check web]\nmax_age = 5m\nurl = http://x/\ntype = http\n",
                  "heald.ini:2: [check web] max_age: not a key of type http" },
                { "[check u]\ntype = unit\nunit = a.service\ntimeout = 5s\n",
                  "heald.ini:4: [check u] timeout: not a key of type unit" },
                { "[check j]\ntype = journal\npattern = x\ntimeout = 5s\n",
                  "heald.ini:4: [check j] timeout: not a key of type journal" },
                /* required per type, at the header or at an empty key */
                { "[agent]\n[check u]\ntype = unit\n", "heald.ini:2: [check u] unit: required for type unit" },
                { "[check web]\ntype = http\n", "heald.ini:1: [check web] url: required for type http" },
                { "[check web]\ntype = http\nurl =\n", "heald.ini:3: [check web] url: required for type http" },
                { "[check t]\ntype = tcp\nport = 22\n", "heald.ini:1: [check t] host: required for type tcp" },
                { "[check t]\ntype = tcp\nhost = ::1\n", "heald.ini:1: [check t] port: required for type tcp" },
                { "[check d]\ntype = disk\nmax_used_percent = 90\n", "heald.ini:1: [check d] path: required for type disk" },
                { "[check d]\ntype = disk\npath = /\n",
                  "heald.ini:1: [check d] max_used_percent: required for type disk (or max_inodes_percent)" },
                { "[check d]\ntype = disk\npath = /\nmax_used_percent =\n",
                  "heald.ini:1: [check d] max_used_percent: required for type disk (or max_inodes_percent)" },
                { "[check m]\ntype = memory\nmax_swap_percent = 10\n",
                  "heald.ini:1: [check m] min_available_percent: required for type memory" },
                { "[check l]\ntype = load\n", "heald.ini:1: [check l] max_load_per_cpu: required for type load" },
                { "[check f]\ntype = file_age\npath = /x\n", "heald.ini:1: [check f] max_age: required for type file_age" },
                { "[check f]\ntype = file_age\nmax_age = 1m\n", "heald.ini:1: [check f] path: required for type file_age" },
                { "[check j]\ntype = journal\nmatch = _TRANSPORT=kernel\n",
                  "heald.ini:1: [check j] pattern: required for type journal" },
                { "[check e]\ntype = exec\n", "heald.ini:1: [check e] command: required for type exec" },
                /* values */
                { "[check u]\ntype = unit\nunit = nginx\n",
                  "heald.ini:3: [check u] unit: must be a unit name with its type suffix, like nginx.service" },
                { "[check u]\ntype = unit\nunit = app-*.service\n",
                  "heald.ini:3: [check u] unit: must be a unit name with its type suffix, like nginx.service" },
                { "[check u]\ntype = unit\nunit = .service\n",
                  "heald.ini:3: [check u] unit: must be a unit name with its type suffix, like nginx.service" },
                { "[check h]\ntype = http\nurl = localhost/health\n",
                  "heald.ini:3: [check h] url: must be an http:// or https:// URL with a host" },
                { "[check h]\ntype = http\nurl = http://x/\nexpect_status = 2xx\n",
                  "heald.ini:4: [check h] expect_status: must be a status code or a range like 200 or 200-299, within 100-599" },
                { "[check h]\ntype = http\nurl = http://x/\nexpect_status = 300-200\n",
                  "heald.ini:4: [check h] expect_status: must be a status code or a range like 200 or 200-299, within 100-599" },
                { "[check h]\ntype = http\nurl = http://x/\nexpect_status = 99\n",
                  "heald.ini:4: [check h] expect_status: must be a status code or a range like 200 or 200-299, within 100-599" },
                { "[check h]\ntype = http\nurl = http://x/\nexpect_status = 200-600\n",
                  "heald.ini:4: [check h] expect_status: must be a status code or a range like 200 or 200-299, within 100-599" },
                { "[check h]\ntype = http\nurl = http://x/\nexpect_status =\n",
                  "heald.ini:4: [check h] expect_status: missing value (delete the line to get the default)" },
                { "[check t]\ntype = tcp\nhost = a b\nport = 1\n", "heald.ini:3: [check t] host: must be a host name or an IP address" },
                { "[check t]\ntype = tcp\nhost = h\nport = 0\n", "heald.ini:4: [check t] port: must be between 1 and 65535" },
                { "[check t]\ntype = tcp\nhost = h\nport = 65536\n", "heald.ini:4: [check t] port: must be between 1 and 65535" },
                { "[check t]\ntype = tcp\nhost = h\nport = http\n", "heald.ini:4: [check t] port: not a whole number" },
                { "[check d]\ntype = disk\npath = var\nmax_used_percent = 1\n",
                  "heald.ini:3: [check d] path: must be an absolute path" },
                { "[check d]\ntype = disk\npath = /\nmax_used_percent = 100.001\n",
                  "heald.ini:4: [check d] max_used_percent: must be between 0 and 100" },
                { "[check d]\ntype = disk\npath = /\nmax_used_percent = 90.1234\n",
                  "heald.ini:4: [check d] max_used_percent: not a number (write e.g. 90 or 92.5, at most 3 decimals)" },
                { "[check d]\ntype = disk\npath = /\nmax_used_percent = 90%\n",
                  "heald.ini:4: [check d] max_used_percent: not a number (write e.g. 90 or 92.5, at most 3 decimals)" },
                { "[check d]\ntype = disk\npath = /\nmax_inodes_percent = .5\n",
                  "heald.ini:4: [check d] max_inodes_percent: not a number (write e.g. 90 or 92.5, at most 3 decimals)" },
                { "[check d]\ntype = disk\npath = /\nmax_inodes_percent = 5.\n",
                  "heald.ini:4: [check d] max_inodes_percent: not a number (write e.g. 90 or 92.5, at most 3 decimals)" },
                { "[check d]\ntype = disk\npath = /\nmax_inodes_percent = -1\n",
                  "heald.ini:4: [check d] max_inodes_percent: not a number (write e.g. 90 or 92.5, at most 3 decimals)" },
                { "[check m]\ntype = memory\nmin_available_percent = 1e2\n",
                  "heald.ini:3: [check m] min_available_percent: not a number (write e.g. 90 or 92.5, at most 3 decimals)" },
                { "[check l]\ntype = load\nmax_load_per_cpu = 0\n",
                  "heald.ini:3: [check l] max_load_per_cpu: must be between 0.001 and 1000" },
                { "[check l]\ntype = load\nmax_load_per_cpu = 1000.5\n",
                  "heald.ini:3: [check l] max_load_per_cpu: must be between 0.001 and 1000" },
                { "[check f]\ntype = file_age\npath = /x\nmax_age = 0\n",
                  "heald.ini:4: [check f] max_age: must be between 1s and 8760h" },
                { "[check j]\ntype = journal\npattern = x\nmatch = _TRANSPORT\n",
                  "heald.ini:4: [check j] match: \"_TRANSPORT\" must be FIELD=value, FIELD in uppercase letters, digits and _" },
                { "[check j]\ntype = journal\npattern = x\nmatch = _transport=kernel\n",
                  "heald.ini:4: [check j] match: \"_transport=kernel\" must be FIELD=value, FIELD in uppercase letters, "
                  "digits and _" },
                { "[check j]\ntype = journal\npattern = x\nmatch = 1FIELD=x\n",
                  "heald.ini:4: [check j] match: \"1FIELD=x\" must be FIELD=value, FIELD in uppercase letters, digits and _" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\ninterval = 500ms\n",
                  "heald.ini:4: [check x] interval: must be between 1s and 24h" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\ntimeout = 50ms\n",
                  "heald.ini:4: [check x] timeout: must be between 100ms and 10m" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\nfail_after = 0\n",
                  "heald.ini:4: [check x] fail_after: must be between 1 and 100" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\nfail_after =\n",
                  "heald.ini:4: [check x] fail_after: missing value (delete the line to get the default)" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\nrecover_after = 101\n",
                  "heald.ini:4: [check x] recover_after: must be between 1 and 100" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\nmax_actions = 0\n",
                  "heald.ini:4: [check x] max_actions: must be between 1 and 100" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction_window = 59s\n",
                  "heald.ini:4: [check x] action_window: must be between 1m and 168h" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\nverify_timeout = 61m\n",
                  "heald.ini:4: [check x] verify_timeout: must be between 1s and 1h" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction = reboot\n",
                  "heald.ini:4: [check x] action: must be one of none, restart-unit, start-unit, stop-unit, exec, request" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\nafter = a b\n",
                  "heald.ini:4: [check x] after: must be the name of a check (letters, digits, '-', '_', '.')" },
                /* timeout below interval, at the later of the two lines */
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\ninterval = 5s\n",
                  "heald.ini:4: [check x] timeout: must be less than interval" },
                { "[check x]\ntype = load\ntimeout = 20s\nmax_load_per_cpu = 1\n",
                  "heald.ini:3: [check x] timeout: must be less than interval" },
                { "[check x]\ntype = load\ntimeout = 2s\ninterval = 2s\nmax_load_per_cpu = 1\n",
                  "heald.ini:4: [check x] timeout: must be less than interval" },
                /* actions */
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction = restart-unit\n",
                  "heald.ini:1: [check x] action_unit: required for action restart-unit" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction = stop-unit\naction_unit = app\n",
                  "heald.ini:5: [check x] action_unit: must be a unit name with its type suffix, like nginx.service" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction_unit = app.service\n",
                  "heald.ini:4: [check x] action_unit: only used with action restart-unit, start-unit or stop-unit" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction = exec\n",
                  "heald.ini:1: [check x] action_command: required for action exec" },
                { "[check x]\ntype = load\nmax_load_per_cpu = 1\naction = request\naction_command = /bin/true\n",
                  "heald.ini:5: [check x] action_command: only used with action exec" },
                /* one found when the section ends takes its place in file order */
                { "[check x]\ntype = http\n[agent]\nfoo = 1\n",
                  "heald.ini:1: [check x] url: required for type http\nheald.ini:4: [agent] foo: unknown key" },
                { "[check x]\ntype = http\nurl = http://x/\nfoo = 1\n", "heald.ini:4: [check x] foo: unknown key" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_load_error(cases[i].text, -EINVAL, cases[i].message);

        /* names up to 64 characters, longer than inih's section buffer */
        static const char name64[] = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-_";
        char text[256];
        assert_int_equal(strlen(name64), 64);
        snprintf(text, sizeof text, "[check %s]\ntype = load\nmax_load_per_cpu = 1\n", name64);
        _cleanup_(config_freep) Config *c = load_ok(text);
        assert_string_equal(c->checks[0].name, name64);
        snprintf(text, sizeof text, "[check %s]\ntype = load\nmax_load_per_cpu = 1\nfoo = 1\n", name64);
        char expected[256];
        snprintf(expected, sizeof expected, "heald.ini:4: [check %s] foo: unknown key", name64);
        assert_load_error(text, -EINVAL, expected);
        snprintf(text, sizeof text, "[check %s.]\n", name64);
        snprintf(expected, sizeof expected, "heald.ini:1: [check %s.]: a check name is 1 to 64 letters, digits, '-', '_' or '.'",
                 name64);
        assert_load_error(text, -EINVAL, expected);
}

static void test_check_command(void **state) {
        (void) state;
        static const struct {
                const char *value;
                const char *argv; /* joined by '|' */
        } good[] = {
                { "/bin/true", "/bin/true" },
                { "/bin/sh  -c   'exit 3'", "/bin/sh|-c|exit 3" },
                { "/bin/sh -c \"echo 'hi there'\"", "/bin/sh|-c|echo 'hi there'" },
                { "/bin/echo a\"b c\"d 'e'\"'\"f", "/bin/echo|ab cd|e'f" },
                { "/bin/echo '' \"\" x", "/bin/echo|||x" },
                { "/bin/echo $HOME ~ *", "/bin/echo|$HOME|~|*" }, /* no expansion */
                { "'/bin/echo' \\n", "/bin/echo|\\n" },           /* no escapes */
                { "/bin/echo a;b", "/bin/echo|a;b" },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                char text[256];
                snprintf(text, sizeof text, "[check e]\ntype = exec\ncommand = %s\naction = exec\naction_command = %s\n",
                         good[i].value, good[i].value);
                _cleanup_(config_freep) Config *c = load_ok(text);
                assert_strv(c->checks[0].command, good[i].argv);
                assert_strv(c->checks[0].action_command, good[i].argv);

                /* and back, quoted so that it reads the same */
                _cleanup_free_ char *printed = print_to_string(c);
                _cleanup_(config_freep) Config *again = load_ok(printed);
                assert_strv(again->checks[0].command, good[i].argv);
        }

        static const struct {
                const char *value;
                const char *message;
        } bad[] = {
                { "true", "heald.ini:3: [check e] command: true: the program must be an absolute path (no PATH lookup)" },
                { "/nonexistent/check.sh --fast", "heald.ini:3: [check e] command: /nonexistent/check.sh: No such file or directory" },
                { "/etc/passwd", "heald.ini:3: [check e] command: /etc/passwd: not an executable file" },
                { "/tmp", "heald.ini:3: [check e] command: /tmp: not an executable file" },
                { "/bin/sh -c 'exit 1", "heald.ini:3: [check e] command: unterminated quote" },
                { "/bin/sh -c \"exit 1'", "heald.ini:3: [check e] command: unterminated quote" },
                { "''", "heald.ini:3: [check e] command: : the program must be an absolute path (no PATH lookup)" },
                { "/bin/sh\t-c", "heald.ini:3: [check e] command: must not contain control characters" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[256];
                snprintf(text, sizeof text, "[check e]\ntype = exec\ncommand = %s\n", bad[i].value);
                assert_load_error(text, -EINVAL, bad[i].message);
        }
        /* " ;" starts a comment, so it cannot be inside quotes either */
        assert_load_error("[check e]\ntype = exec\ncommand = /bin/sh -c 'a ;b'\n", -EINVAL,
                          "heald.ini:3: [check e] command: unterminated quote");
}

static void test_check_pattern(void **state) {
        (void) state;
        static const struct {
                const char *pattern;
                const char *message;
        } bad[] = {
                { "(EXT4-fs error", "heald.ini:4: [check k] pattern: not a valid extended regular expression: Unmatched ( or \\(" },
                { "[z-a]", "heald.ini:4: [check k] pattern: not a valid extended regular expression: Invalid range end" },
                { "*oops", "heald.ini:4: [check k] pattern: not a valid extended regular expression: Invalid preceding "
                           "regular expression" },
                { "a{2,1}", "heald.ini:4: [check k] pattern: not a valid extended regular expression: Invalid content of "
                            "\\{\\}" },
                /* regcomp() would copy these into millions of nodes */
                { "x++++++++++", "heald.ini:4: [check k] pattern: too complex (its repetitions expand to more than 1000 elements)" },
                { "((((((((((x+)+)+)+)+)+)+)+)+)+)", "heald.ini:4: [check k] pattern: too complex (its repetitions expand to "
                                                     "more than 1000 elements)" },
                { "(a{100}){100}", "heald.ini:4: [check k] pattern: too complex (its repetitions expand to more than 1000 "
                                   "elements)" },
                { "()++++++++++", "heald.ini:4: [check k] pattern: too complex (its repetitions expand to more than 1000 "
                                  "elements)" },
                { "x)+++++++++++", "heald.ini:4: [check k] pattern: too complex (its repetitions expand to more than 1000 "
                                   "elements)" },
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                char text[256];
                snprintf(text, sizeof text, "[check k]\ntype = journal\nmatch = _TRANSPORT=kernel\npattern = %s\n",
                         bad[i].pattern);
                assert_load_error(text, -EINVAL, bad[i].message);
        }
        _cleanup_(config_freep) Config *c = load_ok("[check k]\ntype = journal\npattern = ^I/O error, dev [a-z]+, sector\n");
        assert_string_equal(c->checks[0].pattern, "^I/O error, dev [a-z]+, sector");
        _cleanup_(config_freep) Config *bounded = load_ok(
                "[check k]\ntype = journal\npattern = [0-9a-f]{64}|[]a-z[:digit:]]+ at [0-9]{1,3}\\.[0-9]{1,3}(\\.[0-9]*)?\n");
        assert_string_equal(bounded->checks[0].pattern, "[0-9a-f]{64}|[]a-z[:digit:]]+ at [0-9]{1,3}\\.[0-9]{1,3}(\\.[0-9]*)?");
}

static void test_check_after(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *c = load_ok(
                "[check web]\ntype = http\nurl = http://x/\nafter = nginx ; declared later: fine\n"
                "[check nginx]\ntype = unit\nunit = nginx.service\nafter = net\n"
                "[check net]\ntype = tcp\nhost = 10.0.0.1\nport = 53\n");
        assert_string_equal(c->checks[0].after, "nginx");
        assert_string_equal(c->checks[1].after, "net");
        assert_null(c->checks[2].after);

        assert_load_error("[check web]\ntype = http\nurl = http://x/\nafter = nginx\n", -EINVAL,
                          "heald.ini:4: [check web] after: no check named \"nginx\"");
        assert_load_error("[check a]\ntype = load\nmax_load_per_cpu = 1\n"
                          "[check web]\ntype = http\nafter = ngnix\nurl = http://x/\n"
                          "[check nginx]\ntype = unit\nunit = nginx.service\n",
                          -EINVAL, "heald.ini:6: [check web] after: no check named \"ngnix\"");
        assert_load_error("[check a]\ntype = load\nmax_load_per_cpu = 1\nafter = a\n", -EINVAL,
                          "heald.ini:4: [check a] after: dependency cycle (a -> a)");
        assert_load_error("[check a]\ntype = load\nmax_load_per_cpu = 1\nafter = b\n"
                          "[check b]\ntype = load\nmax_load_per_cpu = 1\nafter = a\n",
                          -EINVAL, "heald.ini:4: [check a] after: dependency cycle (a -> b -> a)");
        /* a chain into a cycle: reported at the first check on the cycle itself */
        assert_load_error("[check x]\ntype = load\nmax_load_per_cpu = 1\nafter = a\n"
                          "[check a]\ntype = load\nmax_load_per_cpu = 1\nafter = b\n"
                          "[check b]\ntype = load\nmax_load_per_cpu = 1\nafter = c\n"
                          "[check c]\ntype = load\nmax_load_per_cpu = 1\nafter = a\n",
                          -EINVAL, "heald.ini:8: [check a] after: dependency cycle (a -> b -> c -> a)");
}

static void test_too_many_checks(void **state) {
        (void) state;
        size_t size = 1001 * 64 + 1, len = 0;
        _cleanup_free_ char *text = malloc(size);
        assert_non_null(text);
        for (int i = 0; i < 1001; i++)
                len += (size_t) snprintf(text + len, size - len, "[check c%d]\ntype = load\nmax_load_per_cpu = 1\n", i);
        assert_load_error(text, -EINVAL, "heald.ini:3001: [check c1000]: too many checks (at most 1000)");
        text[strlen(text) - strlen("[check c1000]\ntype = load\nmax_load_per_cpu = 1\n")] = 0;
        _cleanup_(config_freep) Config *c = load_ok(text);
        assert_int_equal(c->n_checks, 1000);
}

static void write_temp(char path[static 64], const void *data, size_t len) {
        snprintf(path, 64, "/tmp/test_config.XXXXXX");
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        assert_int_equal(close(fd), 0);
}

static void test_files(void **state) {
        (void) state;
        Config *c = NULL;
        char *error = NULL;
        char path[64], expected[256];

        assert_int_equal(config_load_file("/nonexistent/heald.ini", &c, &error), -ENOENT);
        assert_null(c);
        assert_string_equal(error, "/nonexistent/heald.ini: cannot read: No such file or directory");
        free(error);
        error = NULL;

        write_temp(path, "[agent]\nlog_level = error\n", 26);
        assert_int_equal(config_load_file(path, &c, &error), 0);
        assert_null(error);
        assert_string_equal(c->path, path);
        assert_int_equal(c->log_level, LOG_ERR);
        c = config_free(c);
        unlink(path);

        write_temp(path, "[agent]\nlog_level = loud\n", 25);
        assert_int_equal(config_load_file(path, &c, &error), -EINVAL);
        snprintf(expected, sizeof expected, "%s:2: [agent] log_level: must be one of debug, info, notice, warning, error",
                 path);
        assert_string_equal(error, expected);
        free(error);
        error = NULL;
        unlink(path);

        write_temp(path, "[agent]\n\nlog_level\0 = x\n", 24);
        assert_int_equal(config_load_file(path, &c, &error), -EINVAL);
        snprintf(expected, sizeof expected, "%s:3: NUL byte in a text file", path);
        assert_string_equal(error, expected);
        free(error);
        unlink(path);
}

/* heald status and heald reset find the daemon through a file that may not load (a broken
 * reload): config reads control_socket from it with the same ini parser. */
static void test_control_socket(void **state) {
        (void) state;
        char path[64];
        _cleanup_free_ char *sock = NULL, *fallback = NULL, *relative = NULL, *missing = NULL;

        static const char broken[] = "[agent]\ncontrol_socket = /run/x/h.sock ; where status asks\nlog_level = loud\n"
                                     "[check web]\ntype = nonsense\n";
        write_temp(path, broken, sizeof broken - 1);
        assert_int_equal(config_control_socket(path, &sock), 0);
        assert_string_equal(sock, "/run/x/h.sock");
        unlink(path);

        static const char elsewhere[] = "[aws]\ncontrol_socket = /tmp/no.sock\n";
        write_temp(path, elsewhere, sizeof elsewhere - 1);
        assert_int_equal(config_control_socket(path, &fallback), 0);
        assert_string_equal(fallback, "/run/heald/heald.sock");
        unlink(path);

        static const char not_absolute[] = "[agent]\ncontrol_socket = heald.sock\n";
        write_temp(path, not_absolute, sizeof not_absolute - 1);
        assert_int_equal(config_control_socket(path, &relative), 0);
        assert_string_equal(relative, "/run/heald/heald.sock");
        unlink(path);

        assert_int_equal(config_control_socket("/nonexistent/heald.ini", &missing), 0);
        assert_string_equal(missing, "/run/heald/heald.sock");
}

/* The example that gets installed must load and must spell out every default. */
static void test_example_config(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *example = NULL, *defaults = load_ok("");
        _cleanup_free_ char *error = NULL;

        int r = config_load_file("config/heald.ini", &example, &error);
        if (r < 0)
                fail_msg("config/heald.ini: %s", error ?: "out of memory");
        assert_same_config(example, defaults);
}

/* Every file in config/examples/ loads, and prints to the same configuration. */
static void test_example_files(void **state) {
        (void) state;
        DIR *d = opendir("config/examples");
        struct dirent *de;
        unsigned n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char path[512];
                size_t len = strlen(de->d_name);
                if (len < 5 || strcmp(de->d_name + len - 4, ".ini") != 0)
                        continue;
                snprintf(path, sizeof path, "config/examples/%s", de->d_name);
                _cleanup_(config_freep) Config *c = NULL;
                _cleanup_free_ char *error = NULL;
                if (config_load_file(path, &c, &error) < 0)
                        fail_msg("%s", error ?: "out of memory");
                _cleanup_free_ char *printed = print_to_string(c);
                _cleanup_(config_freep) Config *again = load_ok(printed);
                assert_same_config(c, again);
                n++;
        }
        closedir(d);
        assert_true(n >= 2);

        _cleanup_(config_freep) Config *checks = NULL;
        assert_int_equal(config_load_file("config/examples/checks.ini", &checks, NULL), 0);
        assert_true(checks->n_checks >= 8);
        for (CheckType t = 0; t < _CHECK_TYPE_MAX; t++) {
                bool found = false;
                for (size_t i = 0; i < checks->n_checks; i++)
                        found = found || checks->checks[i].type == t;
                if (!found)
                        fail_msg("config/examples/checks.ini has no check of type %s", check_type_to_string(t));
        }
        _cleanup_(config_freep) Config *commands = NULL;
        assert_int_equal(config_load_file("config/examples/commands.ini", &commands, NULL), 0);
        assert_non_null(commands->queue_url);
}

/* Basic auth in a check URL works, but events and logs only ever see "***@". */
static void test_check_url_userinfo_redacted(void **state) {
        (void) state;
        const struct {
                const char *url, *expected;
        } cases[] = {
                { "https://user:s3cret@example.com/health", "https://***@example.com/health" },
                { "http://token@127.0.0.1:8080/", "http://***@127.0.0.1:8080/" },
                { "https://a:b@c@host:1/p?q=x@y#f@g", "https://***@host:1/p?q=x@y#f@g" },
                { "https://example.com/login?next=a@b", "https://example.com/login?next=a@b" },
                { "http://127.0.0.1/", "http://127.0.0.1/" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char text[512];
                snprintf(text, sizeof text, "[check web]\ntype = http\nurl = %s\n", cases[i].url);
                _cleanup_(config_freep) Config *c = load_ok(text);
                assert_string_equal(c->checks[0].url, cases[i].url);
                assert_string_equal(c->checks[0].url_public, cases[i].expected);
        }
}

/* Warned about at start: signed requests in clear text beyond this host. */
static void test_plain_http_endpoint(void **state) {
        (void) state;
        const struct {
                const char *ini, *expected;
        } cases[] = {
                { "", NULL },
                { "[aws]\nendpoint_url = http://127.0.0.1:4566\n", NULL },
                { "[aws]\nendpoint_url = http://localhost:4566/\n", NULL },
                { "[aws]\nendpoint_url = http://[::1]:4566\n", NULL },
                { "[aws]\nendpoint_url = https://proxy.corp.example\n", NULL },
                { "[aws]\nendpoint_url = http://proxy.corp.example\n", "[aws] endpoint_url" },
                { "[aws]\nendpoint_url = http://127.evil.example/\n", "[aws] endpoint_url" },
                { "[aws]\nendpoint_url = http://user@127.0.0.1.example/\n", "[aws] endpoint_url" },
                { "[aws]\nevents_endpoint = http://10.0.0.5\n", "[aws] events_endpoint" },
                { "[aws]\nsqs_endpoint = http://10.0.0.5:9324\n", "[aws] sqs_endpoint" },
                { "[aws]\nstates_endpoint = http://sfn.internal\n", "[aws] states_endpoint" },
                { "[sqs]\nqueue_url = http://sqs.internal/123/q\n", "[sqs] queue_url" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_(config_freep) Config *c = load_ok(cases[i].ini);
                const char *got = config_plain_http_endpoint(c);
                if (!streq_ptr(got, cases[i].expected))
                        fail_msg("%s: got %s, expected %s", cases[i].ini, got ?: "NULL", cases[i].expected ?: "NULL");
        }
}

/* The AWS tools' variables fill in what heald.ini leaves out (or leaves empty), never more;
 * whatever the file says about endpoints wins over every endpoint variable. */
static void test_environment(void **state) {
        static const char *const names[] = { "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ENDPOINT_URL",
                                             "AWS_ENDPOINT_URL_SQS", "AWS_EC2_METADATA_SERVICE_ENDPOINT",
                                             "AWS_EC2_METADATA_DISABLED" };
        (void) state;
        setenv("AWS_REGION", "eu-west-1", 1);
        setenv("AWS_DEFAULT_REGION", "us-west-2", 1);
        setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:4566", 1);
        setenv("AWS_ENDPOINT_URL_SQS", "http://127.0.0.1:9324", 1);
        setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://[fd00:ec2::254]", 1);
        setenv("AWS_EC2_METADATA_DISABLED", "true", 1);

        _cleanup_(config_freep) Config *env = load_ok("");
        assert_string_equal(env->region, "eu-west-1");
        assert_string_equal(env->endpoint_url, "http://127.0.0.1:4566");
        assert_string_equal(env->sqs_endpoint, "http://127.0.0.1:9324");
        assert_null(env->events_endpoint);
        assert_string_equal(env->imds_endpoint, "http://[fd00:ec2::254]");
        assert_true(env->imds_disabled);

        _cleanup_(config_freep) Config *file = load_ok("[aws]\nregion = ap-south-1\nendpoint_url = https://vpce.example\n"
                                                       "imds_endpoint = http://169.254.169.254\nimds_disabled = false\n");
        assert_string_equal(file->region, "ap-south-1");
        assert_string_equal(file->endpoint_url, "https://vpce.example");
        assert_null(file->sqs_endpoint);
        assert_string_equal(file->imds_endpoint, "http://169.254.169.254");
        assert_false(file->imds_disabled);

        _cleanup_(config_freep) Config *empty = load_ok("[aws]\nregion =\n");
        assert_string_equal(empty->region, "eu-west-1");

        unsetenv("AWS_REGION");
        _cleanup_(config_freep) Config *fallback = load_ok("");
        assert_string_equal(fallback->region, "us-west-2");

        setenv("AWS_REGION", "Europe", 1);
        assert_load_error("", -EINVAL,
                          "heald.ini: environment AWS_REGION (for [aws] region): must be empty or a region name like us-east-1");
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                unsetenv(names[i]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_is_defaults),
                cmocka_unit_test(test_every_key_with_inline_comments),
                cmocka_unit_test(test_empty_value_unsets),
                cmocka_unit_test(test_structure_errors),
                cmocka_unit_test(test_every_error_reported),
        cmocka_unit_test(test_value_errors),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_bools),
                cmocka_unit_test(test_command_channel),
                cmocka_unit_test(test_check_defaults),
                cmocka_unit_test(test_check_keys),
                cmocka_unit_test(test_check_errors),
                cmocka_unit_test(test_check_command),
                cmocka_unit_test(test_check_pattern),
                cmocka_unit_test(test_check_after),
                cmocka_unit_test(test_too_many_checks),
                cmocka_unit_test(test_print_round_trip),
                cmocka_unit_test(test_service_endpoint),
                cmocka_unit_test(test_environment),
                cmocka_unit_test(test_check_url_userinfo_redacted),
                cmocka_unit_test(test_plain_http_endpoint),
                cmocka_unit_test(test_files),
                cmocka_unit_test(test_control_socket),
                cmocka_unit_test(test_example_config),
                cmocka_unit_test(test_example_files),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
