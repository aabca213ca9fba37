/* test_timestamp.c: unit tests for the HTTP Date and ISO 8601 parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/timestamp.h"

static void test_http_date_valid(void **state) {
        (void) state;
        usec_t t = 0;

        assert_int_equal(http_date_parse("Thu, 26 Nov 2026 20:32:21 GMT", &t), 0);
        assert_int_equal(t, 1795725141 * USEC_PER_SEC);
        assert_int_equal(http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
        assert_int_equal(t, 784111777 * USEC_PER_SEC);
        assert_int_equal(http_date_parse("Thu, 29 Feb 2024 23:59:59 GMT", &t), 0);
        assert_int_equal(t, 1709251199 * USEC_PER_SEC);
}

static void test_http_date_invalid(void **state) {
        (void) state;
        const char *bad[] = {
                "",
                "Thu, 26 Nov 2026 20:32:21",       /* no zone */
                "Thu, 26 Nov 2026 20:32:21 UTC",   /* not GMT */
                "Thu, 26 Nov 2026 20:32:21 GMTx",  /* trailing */
                "thu, 26 Nov 2026 20:32:21 GMT",   /* case */
                "Thx, 26 Nov 2026 20:32:21 GMT",   /* day name */
                "Thu, 26 Noo 2026 20:32:21 GMT",   /* month */
                "Thu, 30 Feb 2026 20:32:21 GMT",   /* no such day */
                "Thu, 29 Feb 2023 20:32:21 GMT",   /* not a leap year */
                "Thu, 00 Nov 2026 20:32:21 GMT",
                "Thu, 26 Nov 2026 24:00:00 GMT",
                "Thu, 26 Nov 2026 20:60:00 GMT",
                "Thu, 26 Nov 1969 20:32:21 GMT",   /* before the epoch */
                "Thu, 6 Nov 2026 20:32:21 GMT ",   /* one-digit day */
                "Thursday, 26-Nov-26 20:32:21 GMT", /* RFC 850 */
                "Thu Nov 26 20:32:21 2026",        /* asctime */
                "Thu, 2a Nov 2026 20:32:21 GMT",
                "Thu, 26 Nov 2026 20:32:-1 GMT",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                usec_t t = 42;
                assert_int_equal(http_date_parse(bad[i], &t), -EINVAL);
                assert_int_equal(t, 42); /* untouched on failure */
        }
        assert_int_equal(http_date_parse(NULL, &(usec_t) { 0 }), -EINVAL);
}

static void test_http_date_leap_second(void **state) {
        (void) state;
        usec_t t = 0;
        assert_int_equal(http_date_parse("Sat, 31 Dec 2016 23:59:60 GMT", &t), 0);
        assert_int_equal(t, 1483228800 * USEC_PER_SEC);
}

static void test_iso8601_valid(void **state) {
        (void) state;
        usec_t t = 0;

        assert_int_equal(iso8601_parse("2020-04-02T00:49:51Z", &t), 0);
        assert_int_equal(t, 1585788591 * USEC_PER_SEC);
        assert_int_equal(iso8601_parse("2017-05-17T15:09:54Z", &t), 0);
        assert_int_equal(t, 1495033794 * USEC_PER_SEC);
        assert_int_equal(iso8601_parse("2020-04-02T00:49:51.5Z", &t), 0);
        assert_int_equal(t, 1585788591 * USEC_PER_SEC + 500000);
        assert_int_equal(iso8601_parse("2020-04-02T00:49:51.123456789Z", &t), 0);
        assert_int_equal(t, 1585788591 * USEC_PER_SEC + 123456);
        assert_int_equal(iso8601_parse("1970-01-01T00:00:00Z", &t), 0);
        assert_int_equal(t, 0);
}

static void test_iso8601_invalid(void **state) {
        (void) state;
        const char *bad[] = {
                "",
                "yesterday",
                "2020-04-02",
                "2020-04-02T00:49:51",        /* no zone */
                "2020-04-02T00:49:51+00:00",  /* only Z */
                "2020-04-02 00:49:51Z",
                "2020-04-02t00:49:51z",
                "2020-13-02T00:49:51Z",
                "2020-00-02T00:49:51Z",
                "2020-02-30T00:49:51Z",
                "2020-04-31T00:49:51Z",
                "2020-04-02T24:00:00Z",
                "2020-04-02T00:49:51.Z",
                "2020-04-02T00:49:51.1234567890Z",
                "2020-04-02T00:49:51Zjunk",
                "1969-12-31T23:59:59Z",
                "+020-04-02T00:49:51Z",
                "2020-4-02T00:49:51Z",
        };
        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                usec_t t = 42;
                assert_int_equal(iso8601_parse(bad[i], &t), -EINVAL);
                assert_int_equal(t, 42);
        }
        assert_int_equal(iso8601_parse(NULL, &(usec_t) { 0 }), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_http_date_valid),     cmocka_unit_test(test_http_date_invalid),
                cmocka_unit_test(test_http_date_leap_second), cmocka_unit_test(test_iso8601_valid),
                cmocka_unit_test(test_iso8601_invalid),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
