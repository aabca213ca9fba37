/* wrap: getaddrinfo */
/* test_checks.c: unit tests for the polled checks: the pure evaluators with sample kernel
 * texts, disk and file_age on real files, and the probes (http against a local server
 * thread, tcp, exec) driven by a real sd-event loop. */
#define _GNU_SOURCE /* memmem, accept4 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>

#include "checks/check_private.h"

#define MEMINFO_OK \
        "MemTotal:        8000000 kB\n" \
        "MemFree:          500000 kB\n" \
        "MemAvailable:    4000000 kB\n" \
        "SwapCached:            0 kB\n" \
        "SwapTotal:       2000000 kB\n" \
        "SwapFree:        1500000 kB\n"

static CheckConfig config_of(CheckType type) {
        return (CheckConfig) {
                .name = (char *) "test",
                .type = type,
                .timeout = 5 * USEC_PER_SEC,
                .expect_status_min = 200,
                .expect_status_max = 399,
                .max_used_percent = -1,
                .max_inodes_percent = -1,
                .max_swap_percent = -1,
        };
}

/* Every text of a result is printable ASCII and fits its field. */
static void assert_result_printable(const CheckResult *r) {
        const char *fields[] = { r->observed, r->threshold, r->message, r->output };
        const size_t sizes[] = { CHECK_TEXT_MAX, CHECK_TEXT_MAX, CHECK_MESSAGE_MAX, CHECK_OUTPUT_MAX };
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                if (!fields[i])
                        continue;
                size_t n = strnlen(fields[i], sizes[i]);
                assert_true(n < sizes[i]);
                for (size_t k = 0; k < n; k++)
                        assert_true(fields[i][k] >= 0x20 && fields[i][k] < 0x7f);
        }
}

/* ---- memory ---- */

static void test_memory_evaluate(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_MEMORY);
        CheckResult r;

        c.min_available_percent = 10;
        assert_int_equal(check_memory_evaluate(&c, MEMINFO_OK, &r), 0);
        assert_true(r.healthy);
        assert_string_equal(r.observed, "50.0% available");
        assert_string_equal(r.threshold, ">= 10% available");
        assert_null(r.output);

        c.min_available_percent = 60;
        assert_int_equal(check_memory_evaluate(&c, MEMINFO_OK, &r), 0);
        assert_false(r.healthy);
        assert_non_null(strstr(r.message, "below the limit"));

        c.min_available_percent = 10;
        c.max_swap_percent = 20;
        assert_int_equal(check_memory_evaluate(&c, MEMINFO_OK, &r), 0);
        assert_false(r.healthy);
        assert_string_equal(r.observed, "50.0% available, 25.0% swap used");
        assert_string_equal(r.threshold, ">= 10% available, <= 20% swap used");

        /* No swap configured is no swap used. */
        assert_int_equal(check_memory_evaluate(&c,
                                               "MemTotal: 1000 kB\nMemAvailable: 900 kB\nSwapTotal: 0 kB\nSwapFree: 0 kB\n",
                                               &r),
                         0);
        assert_true(r.healthy);
        assert_string_equal(r.observed, "90.0% available, 0.0% swap used");
}

static void test_memory_malformed(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_MEMORY);
        CheckResult r;
        const struct {
                const char *text, *message;
        } cases[] = {
                { "", "MemTotal is missing" },
                { "MemTotal: 1000 kB\n", "MemAvailable is missing" },
                { "MemTotal: lots kB\nMemAvailable: 5 kB\n", "MemTotal is malformed" },
                { "MemTotal: 99999999999999999999999 kB\nMemAvailable: 5 kB\n", "MemTotal is malformed" },
                { "MemTotal: 1000x kB\nMemAvailable: 5 kB\n", "MemTotal is malformed" },
                { "MemTotal: 0 kB\nMemAvailable: 0 kB\n", "inconsistent" },
                { "MemTotal: 10 kB\nMemAvailable: 50 kB\n", "inconsistent" },
                { "MemTotalX: 10 kB\nMemAvailable: 5 kB\n", "MemTotal is missing" },
                { "\x01\xff\n\n:::\nMemTotal:\n", "MemTotal is malformed" },
        };

        c.min_available_percent = 10;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                assert_int_equal(check_memory_evaluate(&c, cases[i].text, &r), 0);
                assert_false(r.healthy);
                assert_string_equal(r.observed, "unreadable");
                if (!strstr(r.message, cases[i].message))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, r.message, cases[i].message);
                assert_result_printable(&r);
        }

        c.max_swap_percent = 50;
        assert_int_equal(check_memory_evaluate(&c, "MemTotal: 10 kB\nMemAvailable: 5 kB\n", &r), 0);
        assert_false(r.healthy);
        assert_non_null(strstr(r.message, "SwapTotal is missing"));
        assert_int_equal(check_memory_evaluate(&c, "MemTotal: 10 kB\nMemAvailable: 5 kB\nSwapTotal: 1 kB\nSwapFree: 2 kB\n", &r), 0);
        assert_non_null(strstr(r.message, "inconsistent"));
}

static void test_memory_run(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_MEMORY);
        CheckResult r;

        c.min_available_percent = 0;
        c.max_swap_percent = 100;
        assert_int_equal(check_memory_run(&c, &r), 0);
        assert_true(r.healthy);
        assert_result_printable(&r);

        CheckConfig wrong = config_of(CHECK_LOAD);
        assert_int_equal(check_memory_run(&wrong, &r), -EINVAL);
        assert_int_equal(check_memory_evaluate(&wrong, MEMINFO_OK, &r), -EINVAL);
}

/* ---- load ---- */

static void test_load_evaluate(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_LOAD);
        CheckResult r;

        c.max_load_per_cpu = 1.0;
        assert_int_equal(check_load_evaluate(&c, "0.52 0.58 0.59 1/467 12345\n", 2, &r), 0);
        assert_true(r.healthy);
        assert_string_equal(r.observed, "0.26 per CPU");
        assert_string_equal(r.threshold, "<= 1.00 per CPU");

        assert_int_equal(check_load_evaluate(&c, "3.00 0.58 0.59 1/467 12345\n", 2, &r), 0);
        assert_false(r.healthy);
        assert_string_equal(r.observed, "1.50 per CPU");
        assert_non_null(strstr(r.message, "3.00 on 2 CPUs"));

        /* Unknown CPU count: judged as one CPU. */
        assert_int_equal(check_load_evaluate(&c, "0.90 0 0 1/1 1", 0, &r), 0);
        assert_true(r.healthy);
        assert_string_equal(r.observed, "0.90 per CPU");

        const char *bad[] = { "", "\n", "nan 1 1", "inf 1 1", "-1.0 1 1", "0x10 1 1", "1e5 1 1", "1.2.3 1 1",
                              "abc", " 1.0 1 1", "1.0abc" };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                assert_int_equal(check_load_evaluate(&c, bad[i], 2, &r), 0);
                assert_false(r.healthy);
                assert_string_equal(r.observed, "unreadable");
                assert_non_null(strstr(r.message, "malformed"));
        }

        CheckConfig wrong = config_of(CHECK_DISK);
        assert_int_equal(check_load_evaluate(&wrong, "1 1 1", 1, &r), -EINVAL);
}

static void test_load_run(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_LOAD);
        CheckResult r;

        c.max_load_per_cpu = 1e9;
        assert_int_equal(check_load_run(&c, &r), 0);
        assert_true(r.healthy);
        assert_result_printable(&r);
}

/* ---- disk ---- */

static void test_disk(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_DISK);
        CheckResult r;

        c.path = (char *) "/";
        c.max_used_percent = 100;
        assert_int_equal(check_disk_run(&c, &r), 0);
        assert_true(r.healthy);
        assert_string_equal(r.threshold, "<= 100% used");
        assert_non_null(strstr(r.observed, "% used, "));
        assert_non_null(strstr(r.observed, "% inodes"));

        c.max_used_percent = -1;
        c.max_inodes_percent = 100;
        assert_int_equal(check_disk_run(&c, &r), 0);
        assert_true(r.healthy);
        assert_string_equal(r.threshold, "<= 100% inodes");

        /* Something is always in use on "/". */
        c.max_used_percent = 0;
        c.max_inodes_percent = 100;
        assert_int_equal(check_disk_run(&c, &r), 0);
        assert_false(r.healthy);
        assert_string_equal(r.threshold, "<= 0% used, <= 100% inodes");
        assert_non_null(strstr(r.message, "blocks over the limit"));

        c.path = (char *) "/nonexistent/heald-test";
        assert_int_equal(check_disk_run(&c, &r), 0);
        assert_false(r.healthy);
        assert_string_equal(r.observed, "missing");
        assert_non_null(strstr(r.message, "No such file or directory"));

        c.type = CHECK_MEMORY;
        assert_int_equal(check_disk_run(&c, &r), -EINVAL);
}

/* ---- file_age ---- */

static void test_file_age(void **state) {
        (void) state;
        CheckConfig c = config_of(CHECK_FILE_AGE);
        CheckResult r;
        char path[] = "/tmp/heald-test-file-age-XXXXXX";

        int fd = mkstemp(path);
        assert_true(fd >= 0);
        (void) close(fd);
        struct timespec now;
        assert_int_equal(clock_gettime(CLOCK_REALTIME, &now), 0);
        struct timespec times[2] = { now, { .tv_sec = now.tv_sec - 75, .tv_nsec = now.tv_nsec } };
        assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);

        c.path = path;
        c.max_age = 60 * USEC_PER_SEC;
        assert_int_equal(check_file_age_run(&c, &r), 0);
        assert_false(r.healthy);
        assert_string_equal(r.observed, "age 75 s");
        assert_string_equal(r.threshold, "modified within 60 s");
        assert_non_null(strstr(r.message, "too old"));

        c.max_age = 120 * USEC_PER_SEC;
        assert_int_equal(check_file_age_run(&c, &r), 0);
        assert_true(r.healthy);

        /* A file from the future (clock stepped back) is fresh. */
        times[1].tv_sec = now.tv_sec + 3600;
        assert_int_equal(utimensat(AT_FDCWD, path, times, 0), 0);
        assert_int_equal(check_file_age_run(&c, &r), 0);
        assert_true(r.healthy);
        assert_string_equal(r.observed, "age 0 s");

        assert_int_equal(unlink(path), 0);
        assert_int_equal(check_file_age_run(&c, &r), 0);
        assert_false(r.healthy);
        assert_string_equal(r.observed, "missing");
}

/* ---- result texts ---- */

static void test_result_texts(void **state) {
        (void) state;
        CheckResult r;
        char big[3 * CHECK_OUTPUT_MAX];

        check_result_init(&r);
        check_observed(&r, "path %s", "/var/\x1b[31mlog\\");
        assert_string_equal(r.observed, "path /var/\\x1b[31mlog\\\\");

        memset(big, 'a', sizeof big);
        big[sizeof big - 1] = 0;
        check_message(&r, "%s", big);
        assert_int_equal(strlen(r.message), CHECK_MESSAGE_MAX - 1);
        assert_string_equal(r.message + CHECK_MESSAGE_MAX - 4, "...");

        assert_int_equal(check_result_set_output(&r, "", 0, false), 0);
        assert_null(r.output);
        assert_int_equal(check_result_set_output(&r, "ok\n\0x", 5, false), 0);
        assert_string_equal(r.output, "ok\\x0a\\x00x");
        assert_int_equal(check_result_set_output(&r, "partial", 7, true), 0);
        assert_string_equal(r.output, "partial...");
        assert_int_equal(check_result_set_output(&r, big, sizeof big, false), 0);
        assert_true(strlen(r.output) < CHECK_OUTPUT_MAX);
        assert_true(strlen(r.output) > CHECK_OUTPUT_MAX - 8);
        assert_string_equal(r.output + strlen(r.output) - 4, "a...");
        assert_result_printable(&r);
        check_result_done(&r);
        assert_null(r.output);
        check_result_done(&r);
        check_result_done(NULL);

        char d[32];
        check_format_duration(5 * USEC_PER_SEC, d);
        assert_string_equal(d, "5 s");
        check_format_duration(200 * USEC_PER_MSEC, d);
        assert_string_equal(d, "200 ms");
        check_format_duration(1500, d);
        assert_string_equal(d, "1500 us");
}

/* ---- probes: a loop, a collector, a local HTTP server ---- */

typedef struct Collected {
        unsigned calls;
        CheckResult result; /* output copied */
} Collected;

static void on_check_done(const CheckResult *result, void *userdata) {
        Collected *c = userdata;
        c->calls++;
        c->result = *result;
        c->result.output = result->output ? strdup(result->output) : NULL;
        assert_result_printable(result);
}

static void run_until_done(sd_event *e, Collected *c, usec_t max) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        assert_int_equal(c->calls, 0); /* never from inside *_start() */
        while (c->calls == 0 && now_usec(CLOCK_MONOTONIC) - start < max)
                assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(c->calls, 1);
}

static void run_for(sd_event *e, usec_t duration) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        while (now_usec(CLOCK_MONOTONIC) - start < duration)
                assert_true(sd_event_run(e, 20 * USEC_PER_MSEC) >= 0);
}

static void collected_done(Collected *c) {
        check_result_done(&c->result);
        *c = (Collected) {};
}

static int listen_loopback(int backlog, unsigned *ret_port) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(listen(fd, backlog), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        *ret_port = ntohs(a.sin_port);
        return fd;
}

/* A port nothing listens on: bound, then closed. */
static unsigned closed_port(void) {
        unsigned port;
        int fd = listen_loopback(1, &port);
        (void) close(fd);
        return port;
}

static void write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                /* MSG_NOSIGNAL: a client that gave up (the slow answer after its timeout)
                 * must not end the test run with SIGPIPE. */
                ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
                if (n <= 0)
                        return; /* the client gave up: fine */
                p += n;
                len -= (size_t) n;
        }
}

static void respond(int fd, int status, const char *body, size_t len) {
        char head[256];
        int n = snprintf(head, sizeof head,
                         "HTTP/1.1 %d X\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n", status, len);
        write_all(fd, head, (size_t) n);
        write_all(fd, body, len);
}

/* One connection: canned answers by path. */
static void *serve_connection(void *arg) {
        int fd = (int) (intptr_t) arg;
        char req[4096];
        size_t len = 0;

        while (len < sizeof req - 1 && !memmem(req, len, "\r\n\r\n", 4)) {
                ssize_t n = read(fd, req + len, sizeof req - 1 - len);
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        req[len] = 0;

        if (strncmp(req, "GET /ok ", 8) == 0)
                respond(fd, 200, "service ok\n", 11);
        else if (strncmp(req, "GET /fail ", 10) == 0)
                respond(fd, 503, "down for maintenance\n", 21);
        else if (strncmp(req, "GET /plain ", 11) == 0)
                respond(fd, 200, "hello\n", 6);
        else if (strncmp(req, "GET /slow ", 10) == 0) {
                (void) usleep(1500 * 1000);
                respond(fd, 200, "late ok\n", 8);
        } else if (strncmp(req, "GET /huge ", 10) == 0) {
                /* The expected text only after the first 64 KiB. */
                static char body[1024 * 1024];
                memset(body, 'x', sizeof body);
                memcpy(body + sizeof body - 3, "ok\n", 3);
                respond(fd, 200, body, sizeof body);
        } else if (strncmp(req, "GET /binary ", 12) == 0) {
                char body[1024];
                for (size_t i = 0; i < sizeof body; i++)
                        body[i] = (char) (i * 7);
                respond(fd, 500, body, sizeof body);
        } else
                respond(fd, 404, "", 0);
        (void) close(fd);
        return NULL;
}

static void *serve(void *arg) {
        int listen_fd = (int) (intptr_t) arg;
        for (;;) {
                int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd < 0)
                        return NULL; /* shut down */
                pthread_t t;
                if (pthread_create(&t, NULL, serve_connection, (void *) (intptr_t) fd) == 0)
                        (void) pthread_detach(t);
                else
                        (void) close(fd);
        }
}

typedef struct HttpFixture {
        sd_event *event;
        Http *http;
        int listen_fd;
        unsigned port;
        pthread_t server;
} HttpFixture;

static int http_setup(void **state) {
        HttpFixture *f = calloc(1, sizeof *f);
        assert_non_null(f);
        assert_int_equal(sd_event_new(&f->event), 0);
        assert_int_equal(http_new(f->event, &f->http), 0);
        f->listen_fd = listen_loopback(16, &f->port);
        assert_int_equal(pthread_create(&f->server, NULL, serve, (void *) (intptr_t) f->listen_fd), 0);
        *state = f;
        return 0;
}

static int http_teardown(void **state) {
        HttpFixture *f = *state;
        (void) shutdown(f->listen_fd, SHUT_RDWR);
        (void) pthread_join(f->server, NULL);
        (void) close(f->listen_fd);
        http_free(f->http);
        sd_event_unref(f->event);
        free(f);
        return 0;
}

static void http_run(HttpFixture *f, const char *path, const char *expect_body, usec_t timeout, Collected *out) {
        CheckConfig c = config_of(CHECK_HTTP);
        char url[128];

        snprintf(url, sizeof url, "http://127.0.0.1:%u%s", f->port, path);
        c.url = c.url_public = url;
        c.expect_body = (char *) expect_body;
        c.timeout = timeout;
        *out = (Collected) {};
        assert_int_equal(check_http_start(&c, &(CheckProbeContext) { .http = f->http }, on_check_done, out, NULL), 0);
        run_until_done(f->event, out, 10 * USEC_PER_SEC);
}

static void test_http_status_and_body(void **state) {
        HttpFixture *f = *state;
        Collected c;

        http_run(f, "/ok", NULL, 5 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        assert_string_equal(c.result.observed, "HTTP 200");
        assert_string_equal(c.result.threshold, "HTTP 200-399");
        assert_null(c.result.output);
        collected_done(&c);

        http_run(f, "/ok", "ok", 5 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        assert_string_equal(c.result.threshold, "HTTP 200-399, body contains \"ok\"");
        collected_done(&c);

        http_run(f, "/fail", NULL, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "HTTP 503");
        assert_string_equal(c.result.output, "down for maintenance\\x0a");
        assert_non_null(strstr(c.result.message, "status out of range"));
        collected_done(&c);

        http_run(f, "/plain", "ok", 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "HTTP 200, expected text missing");
        assert_string_equal(c.result.output, "hello\\x0a");
        collected_done(&c);
}

static void test_http_huge_and_binary(void **state) {
        HttpFixture *f = *state;
        Collected c;

        http_run(f, "/huge", "ok", 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_non_null(strstr(c.result.message, "first 64 KiB"));
        assert_non_null(c.result.output);
        assert_true(strlen(c.result.output) < CHECK_OUTPUT_MAX);
        assert_string_equal(c.result.output + strlen(c.result.output) - 4, "x...");
        collected_done(&c);

        http_run(f, "/binary", NULL, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "HTTP 500");
        assert_non_null(c.result.output);
        assert_memory_equal(c.result.output, "\\x00\\x07\\x0e\\x15", 16);
        collected_done(&c);
}

static void test_http_timeout_and_refused(void **state) {
        HttpFixture *f = *state;
        CheckConfig cfg = config_of(CHECK_HTTP);
        char url[128];
        Collected c;

        usec_t start = now_usec(CLOCK_MONOTONIC);
        http_run(f, "/slow", NULL, 300 * USEC_PER_MSEC, &c);
        assert_true(now_usec(CLOCK_MONOTONIC) - start < USEC_PER_SEC);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "timeout after 300 ms");
        collected_done(&c);

        snprintf(url, sizeof url, "http://127.0.0.1:%u/", closed_port());
        cfg.url = cfg.url_public = url;
        assert_int_equal(check_http_start(&cfg, &(CheckProbeContext) { .http = f->http }, on_check_done, &c, NULL), 0);
        run_until_done(f->event, &c, 10 * USEC_PER_SEC);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "connection refused");
        assert_non_null(strstr(c.result.message, url));
        collected_done(&c);

        /* Cancelled: no callback, nothing leaks. */
        CheckProbe *p = NULL;
        cfg.url = cfg.url_public = url;
        assert_int_equal(check_http_start(&cfg, &(CheckProbeContext) { .http = f->http }, on_check_done, &c, &p), 0);
        check_probe_cancel(p);
        check_probe_cancel(NULL);
        run_for(f->event, 100 * USEC_PER_MSEC);
        assert_int_equal(c.calls, 0);

        CheckConfig wrong = config_of(CHECK_TCP);
        assert_int_equal(check_http_start(&wrong, &(CheckProbeContext) { .http = f->http }, on_check_done, &c, NULL), -EINVAL);
}

/* ---- tcp ---- */

/* The resolver, as the tcp check's thread calls it: "db.heald.test" is 127.0.0.1 and
 * "slow.heald.test" hangs for SLOW_RESOLVER_USEC, then fails; other names go to the system. */
#define SLOW_RESOLVER_USEC (2 * USEC_PER_SEC)
int __real_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res);
int __wrap_getaddrinfo(const char *node, const char *service, const struct addrinfo *hints, struct addrinfo **res) {
        if (!node || (hints && (hints->ai_flags & AI_NUMERICHOST)))
                return __real_getaddrinfo(node, service, hints, res); /* the check's numeric test */
        if (strcmp(node, "db.heald.test") == 0)
                node = "127.0.0.1";
        else if (strcmp(node, "slow.heald.test") == 0) {
                (void) usleep(SLOW_RESOLVER_USEC);
                return EAI_NONAME;
        }
        return __real_getaddrinfo(node, service, hints, res);
}

static void tcp_run(sd_event *e, const char *host, unsigned port, usec_t timeout, Collected *out) {
        CheckConfig c = config_of(CHECK_TCP);
        c.host = (char *) host;
        c.port = port;
        c.timeout = timeout;
        *out = (Collected) {};
        assert_int_equal(check_tcp_start(&c, &(CheckProbeContext) { .event = e }, on_check_done, out, NULL), 0);
        run_until_done(e, out, 10 * USEC_PER_SEC);
}

static void test_tcp(void **state) {
        (void) state;
        sd_event *e = NULL;
        Collected c;
        unsigned port;

        assert_int_equal(sd_event_new(&e), 0);
        int fd = listen_loopback(16, &port);

        tcp_run(e, "127.0.0.1", port, 5 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        assert_non_null(strstr(c.result.observed, "connected in "));
        assert_string_equal(c.result.threshold, "connect within 5 s");
        collected_done(&c);

        tcp_run(e, "localhost", port, 5 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        collected_done(&c);

        unsigned closed = closed_port();
        tcp_run(e, "127.0.0.1", closed, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "connection refused");
        collected_done(&c);

        tcp_run(e, "[::1]", closed, 5 * USEC_PER_SEC, &c); /* refused, or no IPv6 here: unhealthy either way */
        assert_false(c.result.healthy);
        collected_done(&c);

        tcp_run(e, "db.heald.test", port, 5 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        assert_non_null(strstr(c.result.message, ": connected"));
        collected_done(&c);

        tcp_run(e, "db.heald.test", closed, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "connection refused");
        collected_done(&c);

        tcp_run(e, "nothing.invalid", 5432, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "name not resolved");
        assert_non_null(strstr(c.result.message, "tcp nothing.invalid:5432: cannot resolve the name: "));
        collected_done(&c);

        /* A resolver that hangs holds neither the loop nor the probe past its timeout. */
        usec_t before = now_usec(CLOCK_MONOTONIC);
        tcp_run(e, "slow.heald.test", 5432, 300 * USEC_PER_MSEC, &c);
        assert_false(c.result.healthy);
        assert_non_null(strstr(c.result.observed, "timeout after"));
        assert_true(now_usec(CLOCK_MONOTONIC) - before < SLOW_RESOLVER_USEC);
        collected_done(&c);

        CheckProbe *p = NULL;
        CheckConfig cfg = config_of(CHECK_TCP);
        cfg.host = (char *) "127.0.0.1";
        cfg.port = closed;
        assert_int_equal(check_tcp_start(&cfg, &(CheckProbeContext) { .event = e }, on_check_done, &c, &p), 0);
        check_probe_cancel(p);
        run_for(e, 50 * USEC_PER_MSEC);
        assert_int_equal(c.calls, 0);

        cfg.host = (char *) "db.heald.test"; /* cancelled while its name is being resolved */
        assert_int_equal(check_tcp_start(&cfg, &(CheckProbeContext) { .event = e }, on_check_done, &c, &p), 0);
        check_probe_cancel(p);
        run_for(e, 200 * USEC_PER_MSEC);
        assert_int_equal(c.calls, 0);

        cfg.port = 0;
        assert_int_equal(check_tcp_start(&cfg, &(CheckProbeContext) { .event = e }, on_check_done, &c, NULL), -EINVAL);

        (void) close(fd);
        sd_event_unref(e);
}

/* A listener whose accept queue is full drops further SYNs, so connect() hangs. */
static void test_tcp_timeout(void **state) {
        (void) state;
        sd_event *e = NULL;
        Collected c;
        unsigned port;
        int fillers[8];

        assert_int_equal(sd_event_new(&e), 0);
        int fd = listen_loopback(0, &port);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
                                 .sin_port = htons((uint16_t) port) };
        for (size_t i = 0; i < ELEMENTSOF(fillers); i++) {
                fillers[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
                (void) connect(fillers[i], (struct sockaddr *) &a, sizeof a);
        }
        run_for(e, 50 * USEC_PER_MSEC);

        usec_t start = now_usec(CLOCK_MONOTONIC);
        tcp_run(e, "127.0.0.1", port, 200 * USEC_PER_MSEC, &c);
        if (c.result.healthy)
                skip(); /* this kernel accepted anyway */
        assert_true(now_usec(CLOCK_MONOTONIC) - start < 2 * USEC_PER_SEC);
        assert_string_equal(c.result.observed, "timeout after 200 ms");
        collected_done(&c);

        for (size_t i = 0; i < ELEMENTSOF(fillers); i++)
                (void) close(fillers[i]);
        (void) close(fd);
        sd_event_unref(e);
}

/* ---- exec ---- */

static void exec_run(sd_event *e, char **argv, usec_t timeout, Collected *out) {
        CheckConfig c = config_of(CHECK_EXEC);
        c.command = argv;
        c.timeout = timeout;
        *out = (Collected) {};
        assert_int_equal(check_exec_start(&c, &(CheckProbeContext) { .event = e }, on_check_done, out, NULL), 0);
        run_until_done(e, out, 10 * USEC_PER_SEC);
}

static void test_exec(void **state) {
        (void) state;
        sd_event *e = NULL;
        Collected c;

        assert_int_equal(sd_event_new(&e), 0);

        exec_run(e, (char *[]) { "/bin/true", NULL }, 5 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        assert_string_equal(c.result.observed, "exit status 0");
        assert_string_equal(c.result.threshold, "exit status 0");
        assert_null(c.result.output);
        collected_done(&c);

        exec_run(e, (char *[]) { "/bin/sh", "-c", "echo 'disk \x1b full'; exit 2", NULL }, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "exit status 2");
        assert_string_equal(c.result.output, "disk \\x1b full\\x0a");
        collected_done(&c);

        exec_run(e, (char *[]) { "/bin/sh", "-c", "sleep 10", NULL }, 200 * USEC_PER_MSEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "timed out after 200 ms");
        collected_done(&c);

        exec_run(e, (char *[]) { "/bin/sh", "-c", "kill -9 $$", NULL }, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "killed by signal 9");
        collected_done(&c);

        exec_run(e, (char *[]) { "/usr/bin/head", "-c", "1048576", "/dev/urandom", NULL }, 10 * USEC_PER_SEC, &c);
        assert_true(c.result.healthy);
        assert_non_null(c.result.output);
        assert_true(strlen(c.result.output) < CHECK_OUTPUT_MAX);
        assert_string_equal(c.result.output + strlen(c.result.output) - 3, "...");
        collected_done(&c);

        exec_run(e, (char *[]) { "/nonexistent/heald-check", NULL }, 5 * USEC_PER_SEC, &c);
        assert_false(c.result.healthy);
        assert_string_equal(c.result.observed, "could not run");
        assert_string_equal(c.result.message, "exec /nonexistent/heald-check: No such file or directory");
        collected_done(&c);

        CheckProbe *p = NULL;
        CheckConfig cfg = config_of(CHECK_EXEC);
        cfg.command = (char *[]) { "/bin/sleep", "10", NULL };
        assert_int_equal(check_exec_start(&cfg, &(CheckProbeContext) { .event = e }, on_check_done, &c, &p), 0);
        check_probe_cancel(p);
        run_for(e, 200 * USEC_PER_MSEC);
        assert_int_equal(c.calls, 0);

        cfg.command = NULL;
        assert_int_equal(check_exec_start(&cfg, &(CheckProbeContext) { .event = e }, on_check_done, &c, NULL), -EINVAL);
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_memory_evaluate),
                cmocka_unit_test(test_memory_malformed),
                cmocka_unit_test(test_memory_run),
                cmocka_unit_test(test_load_evaluate),
                cmocka_unit_test(test_load_run),
                cmocka_unit_test(test_disk),
                cmocka_unit_test(test_file_age),
                cmocka_unit_test(test_result_texts),
                cmocka_unit_test_setup_teardown(test_http_status_and_body, http_setup, http_teardown),
                cmocka_unit_test_setup_teardown(test_http_huge_and_binary, http_setup, http_teardown),
                cmocka_unit_test_setup_teardown(test_http_timeout_and_refused, http_setup, http_teardown),
                cmocka_unit_test(test_tcp),
                cmocka_unit_test(test_tcp_timeout),
                cmocka_unit_test(test_exec),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
