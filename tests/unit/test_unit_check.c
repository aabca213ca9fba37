/* test_unit_check.c: judging systemd unit states, restart-loop detection included. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "checks/check.h"

static const CheckConfig unit_check = { .name = (char *) "web", .type = CHECK_UNIT, .unit = (char *) "web.service" };

static UnitState state(const char *load, const char *active, const char *sub, const char *result, uint32_t restarts) {
        UnitState s = { .n_restarts = restarts };
        snprintf(s.load_state, sizeof s.load_state, "%s", load);
        snprintf(s.active_state, sizeof s.active_state, "%s", active);
        snprintf(s.sub_state, sizeof s.sub_state, "%s", sub);
        snprintf(s.result, sizeof s.result, "%s", result);
        return s;
}

static int judge(UnitState s, UnitHistory *h, usec_t now, bool *healthy) {
        CheckResult r;
        check_unit_observe(h, &s, now);
        int k = check_unit_evaluate(&unit_check, &s, h, now, &r);
        if (k == 0)
                *healthy = r.healthy;
        return k;
}

static void test_states(void **state_ _unused_) {
        struct {
                UnitState s;
                int verdict;
                bool healthy;
        } cases[] = {
                { state("loaded", "active", "running", "success", 0), 0, true },
                { state("loaded", "reloading", "reload", "success", 0), 0, true },
                { state("loaded", "failed", "failed", "signal", 0), 0, false },
                { state("loaded", "inactive", "dead", "success", 0), 0, true },   /* stopped on request */
                { state("loaded", "inactive", "dead", "exit-code", 0), 0, false },
                { state("loaded", "activating", "auto-restart", "signal", 1), 0, false },
                { state("not-found", "inactive", "dead", "", 0), 0, false },
                { state("masked", "inactive", "dead", "", 0), 0, false },
                { state("error", "inactive", "dead", "", 0), 0, false },
                { state("loaded", "activating", "start", "success", 0), 1, false }, /* no verdict yet */
                { state("loaded", "deactivating", "stop-sigterm", "success", 0), 1, false },
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                UnitHistory h = {};
                bool healthy = !cases[i].healthy;
                assert_int_equal(judge(cases[i].s, &h, USEC_PER_SEC, &healthy), cases[i].verdict);
                if (cases[i].verdict == 0)
                        assert_int_equal(healthy, cases[i].healthy);
        }
}

static void test_restart_loop(void **state_ _unused_) {
        UnitHistory h = {};
        bool healthy;
        usec_t t = 100 * USEC_PER_SEC;
        assert_int_equal(judge(state("loaded", "active", "running", "success", 5), &h, t, &healthy), 0);
        assert_true(healthy); /* restarts before heald watched do not count */
        assert_int_equal(judge(state("loaded", "active", "running", "success", 6), &h, t += USEC_PER_SEC, &healthy), 0);
        assert_true(healthy);
        assert_int_equal(judge(state("loaded", "active", "running", "success", 7), &h, t += USEC_PER_SEC, &healthy), 0);
        assert_true(healthy);
        assert_int_equal(judge(state("loaded", "active", "running", "success", 8), &h, t += USEC_PER_SEC, &healthy), 0);
        assert_false(healthy); /* three within a minute */
        /* a minute of calm ends it */
        assert_int_equal(judge(state("loaded", "active", "running", "success", 8), &h, t + 61 * USEC_PER_SEC, &healthy), 0);
        assert_true(healthy);
}

static void test_slow_restarts_are_no_loop(void **state_ _unused_) {
        UnitHistory h = {};
        bool healthy;
        usec_t t = 0;
        for (uint32_t n = 0; n < 10; n++) {
                assert_int_equal(judge(state("loaded", "active", "running", "success", n), &h, t += 40 * USEC_PER_SEC, &healthy), 0);
                assert_true(healthy);
        }
}

static void test_wrong_type(void **state_ _unused_) {
        CheckConfig c = unit_check;
        c.type = CHECK_DISK;
        UnitHistory h = {};
        UnitState s = state("loaded", "active", "running", "", 0);
        CheckResult r;
        assert_int_equal(check_unit_evaluate(&c, &s, &h, 0, &r), -EINVAL);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_states),
                cmocka_unit_test(test_restart_loop),
                cmocka_unit_test(test_slow_restarts_are_no_loop),
                cmocka_unit_test(test_wrong_type),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
