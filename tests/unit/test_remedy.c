/* wrap: units_job */
/* test_remedy.c: the one map from unit operation to systemd's D-Bus method, for checks'
 * actions and commands alike. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "heal/remedy.h"
#include "heal/runtime.h"

int __wrap_units_job(Units *u, const char *method, const char *unit, unit_job_fn done, void *userdata);
int __wrap_units_job(Units *u, const char *method, const char *unit, unit_job_fn done, void *userdata) {
        (void) u;
        (void) done;
        (void) userdata;
        check_expected(method);
        check_expected(unit);
        return 0;
}

static Units *const fake_bus = (Units *) 1; /* never dereferenced: units_job is wrapped */

static void expect_job(const char *method, const char *unit) {
        expect_string(__wrap_units_job, method, method);
        expect_string(__wrap_units_job, unit, unit);
}

static void test_each_operation_has_its_method(void **state) {
        (void) state;
        expect_job("RestartUnit", "a.service");
        assert_int_equal(remedy_unit_job(fake_bus, REMEDY_RESTART, "a.service", NULL, NULL), 0);
        expect_job("StartUnit", "b.service");
        assert_int_equal(remedy_unit_job(fake_bus, REMEDY_START, "b.service", NULL, NULL), 0);
        expect_job("StopUnit", "c.service");
        assert_int_equal(remedy_unit_job(fake_bus, REMEDY_STOP, "c.service", NULL, NULL), 0);
}

static void test_names(void **state) {
        (void) state;
        assert_string_equal(remedy_operation_to_string(REMEDY_RESTART), "restart");
        assert_string_equal(remedy_operation_to_string(REMEDY_START), "start");
        assert_string_equal(remedy_operation_to_string(REMEDY_STOP), "stop");
        assert_null(remedy_operation_to_string(_REMEDY_OPERATION_MAX));
        assert_null(remedy_operation_to_string(_REMEDY_OPERATION_INVALID));
}

static void test_check_actions(void **state) {
        (void) state;
        assert_int_equal(remedy_operation_of_action(CHECK_ACTION_RESTART_UNIT), REMEDY_RESTART);
        assert_int_equal(remedy_operation_of_action(CHECK_ACTION_START_UNIT), REMEDY_START);
        assert_int_equal(remedy_operation_of_action(CHECK_ACTION_STOP_UNIT), REMEDY_STOP);
        assert_true(remedy_operation_of_action(CHECK_ACTION_NONE) < 0);
        assert_true(remedy_operation_of_action(CHECK_ACTION_EXEC) < 0);
        assert_true(remedy_operation_of_action(CHECK_ACTION_REQUEST) < 0);
}

static void test_no_bus_and_bad_operation(void **state) {
        (void) state;
        assert_int_equal(remedy_unit_job(NULL, REMEDY_RESTART, "a.service", NULL, NULL), -ENOTCONN);
        assert_int_equal(remedy_unit_job(fake_bus, _REMEDY_OPERATION_INVALID, "a.service", NULL, NULL), -EINVAL);
}

/* Commands wait for a remediation while its policy phase is acting or verifying: a unit
 * command for its unit's, a reboot or prepare-stop (unit NULL) for any. */
static void test_remediation_in_progress(void **state) {
        (void) state;
        CheckConfig web = { .name = (char *) "web", .type = CHECK_UNIT, .unit = (char *) "web.service",
                            .action = CHECK_ACTION_RESTART_UNIT };
        CheckConfig db = { .name = (char *) "db", .type = CHECK_UNIT, .unit = (char *) "db.service",
                           .action = CHECK_ACTION_RESTART_UNIT, .action_unit = (char *) "db-pool.service" };
        CheckConfig disk = { .name = (char *) "disk", .type = CHECK_DISK };
        CheckConfig api = { .name = (char *) "api", .type = CHECK_UNIT, .unit = (char *) "api.service",
                            .action = CHECK_ACTION_REQUEST };
        CheckRuntime checks[] = { { .config = &disk }, { .config = &web }, { .config = &db }, { .config = &api } };
        Monitor m = { .checks = checks, .n_checks = ELEMENTSOF(checks) };

        assert_null(remedy_in_progress(NULL, NULL));
        assert_null(remedy_in_progress(&m, NULL));
        assert_null(remedy_in_progress(&m, "web.service"));

        /* A request verifying waits for the fleet's own reboot or restart: that must not wait for it. */
        checks[3].policy.phase = POLICY_VERIFYING;
        assert_null(remedy_in_progress(&m, NULL));
        assert_null(remedy_in_progress(&m, "api.service"));

        const PolicyPhase busy[] = { POLICY_ACTING, POLICY_VERIFYING };
        for (size_t i = 0; i < ELEMENTSOF(busy); i++) {
                checks[1].policy.phase = busy[i];
                assert_ptr_equal(remedy_in_progress(&m, "web.service"), &web);
                assert_ptr_equal(remedy_in_progress(&m, NULL), &web);
                assert_null(remedy_in_progress(&m, "db.service"));
        }
        checks[1].policy.phase = POLICY_ESCALATED; /* no action under way */
        assert_null(remedy_in_progress(&m, "web.service"));
        assert_null(remedy_in_progress(&m, NULL));

        /* A check's action may act on another unit than the one it watches. */
        checks[2].policy.phase = POLICY_ACTING;
        assert_ptr_equal(remedy_in_progress(&m, "db-pool.service"), &db);
        assert_null(remedy_in_progress(&m, "db.service"));
        assert_ptr_equal(remedy_in_progress(&m, NULL), &db);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_each_operation_has_its_method),
                cmocka_unit_test(test_names),
                cmocka_unit_test(test_check_actions),
                cmocka_unit_test(test_no_bus_and_bad_operation),
                cmocka_unit_test(test_remediation_in_progress),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
