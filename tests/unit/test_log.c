/* test_log.c: the logging contract: a line about a failure hands back a negative errno and
 * refuses an error of 0; a plain line has no value, so it cannot stand in for a result. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_errno_variants_return_negative_errno),
                cmocka_unit_test(test_errno_variant_refuses_zero),
        };
        return cmocka_run_group_tests(tests, setup, NULL);
}
