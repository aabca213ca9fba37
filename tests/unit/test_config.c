/* test_config.c: heald.ini loading, every error path with its FILE:LINE, value syntax, print round trip. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

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
        /* named sections are not implemented yet */
        assert_load_error("[agent]\n[check web]\ntype = systemd\n", -EINVAL, "heald.ini:2: [check web]: unknown section");
        assert_load_error("[]\n", -EINVAL, "heald.ini:1: []: unknown section");
        assert_load_error("[agent]\nstate_dirr = /x\n", -EINVAL, "heald.ini:2: [agent] state_dirr: unknown key");
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

        /* the first error wins: a syntax error before a bad key, a bad key before a syntax error */
        assert_load_error("[agent]\nnonsense\n[aws]\nfoo = 1\n", -EINVAL,
                          "heald.ini:2: syntax error (expected [section], key = value or a ; comment)");
        assert_load_error("[agent]\nfoo = 1\nnonsense\n", -EINVAL, "heald.ini:2: [agent] foo: unknown key");

        /* inih's buffer is 200 bytes: 197 characters of content fit, 198 do not */
        char line[300];
        memset(line, 'x', sizeof line);
        memcpy(line, "[aws]\n; ", 8);
        snprintf(line + 6 + 197, sizeof line - 6 - 197, "\n");
        config_free(load_ok(line));
        line[6 + 197] = 'x';
        snprintf(line + 6 + 198, sizeof line - 6 - 198, "\n");
        assert_load_error(line, -EINVAL, "heald.ini:2: line too long (at most 197 bytes)");

        /* strings stop at 160 bytes, so config_print() lines stay loadable */
        char dir[200] = "[agent]\nstate_dir=/";
        size_t n = strlen(dir);
        memset(dir + n, 'd', 159);
        snprintf(dir + n + 159, sizeof dir - n - 159, "\n");
        _cleanup_(config_freep) Config *c = load_ok(dir);
        assert_int_equal(strlen(c->state_dir), 160);
        snprintf(dir + n + 159, sizeof dir - n - 159, "d\n");
        assert_load_error(dir, -EINVAL, "heald.ini:2: [agent] state_dir: too long (at most 160 bytes)");
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
}

static void test_print_round_trip(void **state) {
        (void) state;
        static const char *const sources[] = {
                "",
                "[agent]\nlog_level = warning\nheartbeat_interval = 90\n"
                "[aws]\nregion = eu-central-1\nimds_timeout = 1500ms\nendpoint_url = http://localhost:4566\n"
                "[eventbridge]\nsource = acme.heald\nmax_request_bytes = 1000000\nretry_base = 60s\nretry_max = 2h\n"
                "request_timeout = 61\n[outbox]\nmax_bytes = 1536K\n",
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
}

static void test_service_endpoint(void **state) {
        (void) state;
        _cleanup_(config_freep) Config *plain = load_ok("");
        _cleanup_(config_freep) Config *regional = load_ok("[aws]\nregion = cn-north-1\n");
        _cleanup_(config_freep) Config *shared = load_ok("[aws]\nendpoint_url = http://localhost:5000\n");
        _cleanup_(config_freep) Config *both = load_ok(
                "[aws]\nendpoint_url = http://localhost:5000\nevents_endpoint = https://events.example\n");
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_empty_is_defaults),
                cmocka_unit_test(test_every_key_with_inline_comments),
                cmocka_unit_test(test_empty_value_unsets),
                cmocka_unit_test(test_structure_errors),
                cmocka_unit_test(test_value_errors),
                cmocka_unit_test(test_durations),
                cmocka_unit_test(test_sizes),
                cmocka_unit_test(test_bools),
                cmocka_unit_test(test_print_round_trip),
                cmocka_unit_test(test_service_endpoint),
                cmocka_unit_test(test_files),
                cmocka_unit_test(test_example_config),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
