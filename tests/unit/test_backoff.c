/* test_backoff.c: unit tests for exponential backoff with full jitter. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "backoff.h"

/* random_value == ceiling returns the ceiling itself, which exposes it. */
static void test_ceiling_doubles_until_cap(void **state) {
        (void) state;
        assert_int_equal(backoff_delay(0, 100, 1000, 100), 100);
        assert_int_equal(backoff_delay(1, 100, 1000, 200), 200);
        assert_int_equal(backoff_delay(2, 100, 1000, 400), 400);
        assert_int_equal(backoff_delay(3, 100, 1000, 800), 800);
        assert_int_equal(backoff_delay(4, 100, 1000, 1000), 1000);
        assert_int_equal(backoff_delay(4, 100, 1000, 1600), 1600 % 1001);
}

static void test_full_jitter_range(void **state) {
        (void) state;
        assert_int_equal(backoff_delay(0, 100, 1000, 0), 0);
        assert_int_equal(backoff_delay(0, 100, 1000, 101), 0);
        assert_int_equal(backoff_delay(0, 100, 1000, 150), 49);
        for (uint64_t r = 0; r < 5000; r += 7)
                assert_true(backoff_delay(2, 100, 1000, r * 2654435761u) <= 400);
}

static void test_large_attempts_do_not_overflow(void **state) {
        (void) state;
        const unsigned attempts[] = { 31, 32, 63, 64, 65, 1000, UINT32_MAX };
        for (size_t i = 0; i < ELEMENTSOF(attempts); i++) {
                assert_int_equal(backoff_delay(attempts[i], USEC_PER_SEC, 20 * USEC_PER_SEC, 20 * USEC_PER_SEC),
                                 20 * USEC_PER_SEC);
                assert_true(backoff_delay(attempts[i], UINT64_MAX / 2, UINT64_MAX - 1, UINT64_MAX) <= UINT64_MAX - 1);
        }
        assert_int_equal(backoff_delay(UINT32_MAX, 1, UINT64_MAX, 12345), 12345);
}

static void test_degenerate_parameters(void **state) {
        (void) state;
        assert_int_equal(backoff_delay(5, 0, 1000, 999), 0);
        assert_int_equal(backoff_delay(0, 5000, 1000, 1000), 1000); /* base above cap: cap wins */
        assert_int_equal(backoff_delay(3, 100, 0, 77), 0);
}

static void test_random_varies(void **state) {
        (void) state;
        uint64_t a = backoff_random(), b = backoff_random(), c = backoff_random();
        assert_false(a == b && b == c);
}

static void test_jittered_period_is_never_longer_and_at_most_a_tenth_shorter(void **state) {
        (void) state;
        const usec_t period = 300 * USEC_PER_SEC;
        assert_int_equal(backoff_jittered_period(period, 0), period);
        assert_int_equal(backoff_jittered_period(period, period / 10), period - period / 10);
        assert_int_equal(backoff_jittered_period(period, period / 10 + 1), period);
        assert_int_equal(backoff_jittered_period(period, UINT64_MAX), period - UINT64_MAX % (period / 10 + 1));
        assert_int_equal(backoff_jittered_period(0, 12345), 0);
        assert_int_equal(backoff_jittered_period(9, 12345), 9); /* too short to shorten */
}

/* A thousand healds started in the same second: their first heartbeats spread over most of
 * the tenth of the interval instead of landing together. */
static void test_jittered_periods_of_a_fleet_started_together_spread(void **state) {
        (void) state;
        const usec_t period = 300 * USEC_PER_SEC, spread = period / 10;
        usec_t earliest = UINT64_MAX, latest = 0;
        unsigned in_any_one_second[31] = {0};
        for (unsigned i = 0; i < 1000; i++) {
                usec_t d = backoff_jittered_period(period, backoff_random());
                assert_true(d <= period && d >= period - spread);
                earliest = d < earliest ? d : earliest;
                latest = d > latest ? d : latest;
                in_any_one_second[(period - d) / USEC_PER_SEC]++;
        }
        assert_true(latest - earliest >= spread * 9 / 10);
        for (unsigned s = 0; s < 31; s++)
                assert_true(in_any_one_second[s] < 100); /* uniform: about 33 in each of 30 seconds */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ceiling_doubles_until_cap),
                cmocka_unit_test(test_full_jitter_range),
                cmocka_unit_test(test_large_attempts_do_not_overflow),
                cmocka_unit_test(test_degenerate_parameters),
                cmocka_unit_test(test_random_varies),
                cmocka_unit_test(test_jittered_period_is_never_longer_and_at_most_a_tenth_shorter),
                cmocka_unit_test(test_jittered_periods_of_a_fleet_started_together_spread),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
