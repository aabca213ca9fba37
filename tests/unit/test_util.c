/* test_util.c: the bounded formatter every fixed-size buffer goes through. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "util.h"

static void test_bsprintf_fits(void **state) {
        (void) state;
        char buf[8];
        assert_int_equal(bsprintf(buf, "%s-%d", "ab", 42), 0);
        assert_string_equal(buf, "ab-42");
        assert_int_equal(bsprintf(buf, "%s", "1234567"), 0); /* exactly full: 7 characters and the NUL */
        assert_string_equal(buf, "1234567");
}

static void test_bsprintf_reports_and_marks_a_cut(void **state) {
        (void) state;
        char buf[8];
        assert_int_equal(bsprintf(buf, "%s", "12345678"), -ENAMETOOLONG);
        assert_string_equal(buf, "1234...");
        char path[16];
        assert_int_equal(bsprintf(path, "%s/%s", "/var/lib/heald", "policy.json"), -ENAMETOOLONG);
        assert_int_equal(strlen(path), sizeof path - 1);
}

static void test_format_bounded_tiny_buffers(void **state) {
        (void) state;
        char buf[3] = "xx";
        assert_int_equal(format_bounded(buf, sizeof buf, "%s", "abc"), -ENAMETOOLONG);
        assert_string_equal(buf, "ab"); /* no room for the mark: cut only */
        assert_int_equal(format_bounded(buf, 1, "%s", "abc"), -ENAMETOOLONG);
        assert_string_equal(buf, "");
        assert_int_equal(format_bounded(buf, sizeof buf, "%s", ""), 0);
        assert_string_equal(buf, "");
}

/* Checks polled every 10 s share one wake-up a second wide; a 1 s verification cadence stays
 * within 100 ms; short timers keep the 10 ms they had. */
static void test_timer_accuracy(void **state) {
        (void) state;
        assert_int_equal(timer_accuracy(10 * USEC_PER_SEC), USEC_PER_SEC);
        assert_int_equal(timer_accuracy(USEC_PER_SEC), 100 * USEC_PER_MSEC);
        assert_int_equal(timer_accuracy(5 * USEC_PER_MINUTE), USEC_PER_SEC);
        assert_int_equal(timer_accuracy(0), 10 * USEC_PER_MSEC);
        assert_int_equal(timer_accuracy(50 * USEC_PER_MSEC), 10 * USEC_PER_MSEC);
}

static void test_plural_s(void **state) {
        (void) state;
        assert_string_equal(plural_s(0), "s");
        assert_string_equal(plural_s(1), "");
        assert_string_equal(plural_s(2), "s");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_bsprintf_fits),
                cmocka_unit_test(test_bsprintf_reports_and_marks_a_cut),
                cmocka_unit_test(test_format_bounded_tiny_buffers),
                cmocka_unit_test(test_timer_accuracy),
                cmocka_unit_test(test_plural_s),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
