/* test_log.c: the logging contract: a line about a failure hands back a negative errno and
 * refuses an error of 0; a plain line has no value, so it cannot stand in for a result. Every
 * MESSAGE_ID is the one packaging/heald.catalog documents; stderr lines carry a timestamp. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <regex.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "log.h"

/* "return log_error(...)" once turned failures into exit status 0: plain lines are void now,
 * so such a return does not compile. Checked at compile time; the calls are not evaluated. */
_Static_assert(__builtin_types_compatible_p(__typeof__(log_error("x")), void), "log_error must have no value");
_Static_assert(__builtin_types_compatible_p(__typeof__(log_warning("x")), void), "log_warning must have no value");
_Static_assert(__builtin_types_compatible_p(__typeof__(log_info("x")), void), "log_info must have no value");
_Static_assert(__builtin_types_compatible_p(__typeof__(log_event(LOG_INFO, "e", "x")), void),
               "log_event must have no value");

static int setup(void **state) {
        (void) state;
        log_force_stderr(true);
        log_setup(LOG_DEBUG);
        return 0;
}

static void test_errno_variants_return_negative_errno(void **state) {
        (void) state;
        _Static_assert(__builtin_types_compatible_p(__typeof__(log_error_errno(EIO, "x")), int),
                       "log_error_errno must return the error");
        assert_int_equal(log_error_errno(-EIO, "failed: %m"), -EIO);
        assert_int_equal(log_error_errno(EINVAL, "failed: %m"), -EINVAL);
        assert_int_equal(log_warning_errno(-ENOENT, "missing: %m"), -ENOENT);
        /* Below the level nothing is written, but the error still comes back. */
        log_set_max_level(LOG_ERR);
        assert_int_equal(log_debug_errno(-EAGAIN, "quiet: %m"), -EAGAIN);
        log_set_max_level(LOG_DEBUG);
}

/* Runs fn in a child with stderr closed; its wait status. */
static int in_child(void (*fn)(void)) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                if (null >= 0)
                        (void) dup2(null, STDERR_FILENO);
                fn();
                _exit(0);
        }
        int status;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        return status;
}

static void log_zero_error(void) {
        volatile int no_error = 0;
        (void) log_error_errno(no_error, "this claims a failure without an error");
}

static void test_errno_variant_refuses_zero(void **state) {
        (void) state;
        int status = in_child(log_zero_error);
        assert_true(WIFSIGNALED(status));
        assert_int_equal(WTERMSIG(status), SIGABRT);
}

/* The catalog names each entry's event in a comment above its "-- ID" line. Run from the
 * source tree's top (tests/run-all.sh does). */
static void test_catalog_documents_every_message_id(void **state) {
        (void) state;
        FILE *f = fopen("packaging/heald.catalog", "re");
        assert_non_null(f);
        char line[512], event[128] = "", seen[64][33];
        size_t n = 0;
        while (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = 0;
                if (sscanf(line, "# HEALD_EVENT=%127s", event) == 1)
                        continue;
                if (strncmp(line, "-- ", 3) != 0)
                        continue;
                assert_string_not_equal(event, ""); /* each entry says its event */
                const char *id = log_message_id(event);
                if (!id)
                        fail_msg("the catalog documents event %s, which has no MESSAGE_ID", event);
                assert_string_equal(id, line + 3);
                for (size_t i = 0; i < n; i++)
                        assert_string_not_equal(seen[i], id);
                assert_true(n < 64);
                snprintf(seen[n++], sizeof seen[0], "%s", id);
                event[0] = 0;
        }
        fclose(f);
        assert_true(n >= 30);
        assert_null(log_message_id("no-such-event"));
        assert_null(log_message_id(NULL));
}

static void log_one_line(void) {
        log_info("hello %s", "there");
}

/* Outside the journal the line is stamped: nothing else would say when it happened. */
static void test_stderr_line_has_a_timestamp(void **state) {
        (void) state;
        char path[] = "/tmp/heald-test-log-XXXXXX";
        int fd = mkstemp(path);
        assert_true(fd >= 0);
        fflush(stderr);
        int saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fd, STDERR_FILENO) >= 0);
        log_one_line();
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        char text[256] = "";
        assert_true(pread(fd, text, sizeof text - 1, 0) > 0);
        close(fd);
        unlink(path);
        regex_t re;
        assert_int_equal(regcomp(&re, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z heald\\[info\\]: hello there\n$",
                                 REG_EXTENDED),
                         0);
        if (regexec(&re, text, 0, NULL, 0) != 0)
                fail_msg("stderr line without a timestamp: %s", text);
        regfree(&re);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errno_variants_return_negative_errno),
                cmocka_unit_test(test_errno_variant_refuses_zero),
                cmocka_unit_test(test_catalog_documents_every_message_id),
                cmocka_unit_test(test_stderr_line_has_a_timestamp),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
