/* test_policy.c: the safety policy's state machine: hysteresis, budget, escalation,
 * dependencies, verification, and its durable state. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "heal/policy.h"

#define S USEC_PER_SEC
#define T0 ((usec_t) 1700000000 * S)

static const PolicyConfig cfg = {
        .fail_after = 3,
        .recover_after = 2,
        .has_action = true,
        .max_actions = 3,
        .action_window = 600 * S,
        .verify_timeout = 60 * S,
};

static void test_hysteresis(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.has_action = false;
        policy_init(&s);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0), 0);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 1), 0);
        /* a success in between restarts the count */
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 2), 0);
        assert_int_equal(s.health, POLICY_HEALTH_UNKNOWN); /* one success is not recover_after (2) */
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 3), 0);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 4), 0);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 5), POLICY_CHECK_FAILED);
        assert_int_equal(s.health, POLICY_HEALTH_FAILED);
        assert_int_equal(s.detected_at, T0 + 5);
        /* repeated failures are not news */
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 6), 0);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 7), 0);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 8), POLICY_CHECK_RECOVERED);
        assert_int_equal(s.health, POLICY_HEALTH_OK);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 9), 0);
}

static void test_first_success_is_not_a_recovery(void **state _unused_) {
        PolicyState s;
        policy_init(&s);
        assert_int_equal(policy_on_result(&s, &cfg, true, false, T0), 0);
        assert_int_equal(policy_on_result(&s, &cfg, true, false, T0), 0);
        assert_int_equal(s.health, POLICY_HEALTH_OK);
}

static void fail_in_a_row(PolicyState *s, const PolicyConfig *c, usec_t t, unsigned expect) {
        unsigned out = 0;
        for (unsigned i = 0; i < c->fail_after; i++)
                out = policy_on_result(s, c, false, false, t);
        assert_int_equal(out, expect);
}

static void test_act_verify_succeed(void **state _unused_) {
        PolicyState s;
        policy_init(&s);
        fail_in_a_row(&s, &cfg, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(s.phase, POLICY_ACTING);
        /* no second action while one runs */
        assert_int_equal(policy_on_result(&s, &cfg, false, false, T0 + S), 0);
        assert_int_equal(policy_on_action_done(&s, &cfg, true, T0 + 2 * S), POLICY_ARM_VERIFY_TIMER);
        assert_int_equal(s.phase, POLICY_VERIFYING);
        assert_int_equal(s.verify_deadline, T0 + 62 * S);
        assert_int_equal(policy_on_result(&s, &cfg, true, false, T0 + 3 * S), 0);
        assert_int_equal(policy_on_result(&s, &cfg, true, false, T0 + 4 * S),
                         POLICY_REMEDIATION_SUCCEEDED | POLICY_CHECK_RECOVERED);
        assert_int_equal(s.phase, POLICY_IDLE);
        /* a late timer is harmless */
        assert_int_equal(policy_on_verify_timeout(&s, &cfg, T0 + 70 * S), 0);
}

static void test_action_failure_and_verify_timeout(void **state _unused_) {
        PolicyState s;
        policy_init(&s);
        fail_in_a_row(&s, &cfg, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &cfg, false, T0 + S), POLICY_REMEDIATION_FAILED);
        assert_int_equal(s.phase, POLICY_IDLE);
        /* still failing: the next result tries again */
        assert_int_equal(policy_on_result(&s, &cfg, false, false, T0 + 2 * S), POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &cfg, true, T0 + 3 * S), POLICY_ARM_VERIFY_TIMER);
        /* too early: nothing */
        assert_int_equal(policy_on_verify_timeout(&s, &cfg, T0 + 10 * S), 0);
        assert_int_equal(policy_on_verify_timeout(&s, &cfg, T0 + 63 * S), POLICY_REMEDIATION_FAILED);
        assert_int_equal(s.phase, POLICY_IDLE);
}

static void test_failed_attempts_are_spaced(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.fail_after = 1;
        c.max_actions = 100;
        c.retry_delay = 10 * S;
        policy_init(&s);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0), POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &c, false, T0 + 1000), POLICY_REMEDIATION_FAILED);
        /* failing again at once: no new attempt until retry_delay has passed */
        for (usec_t t = T0 + 2000; t < T0 + 10 * S; t += S)
                assert_int_equal(policy_on_result(&s, &c, false, false, t), 0);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 11 * S), POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(s.n_actions, 2);
        /* the same after a verification that timed out */
        assert_int_equal(policy_on_action_done(&s, &c, true, T0 + 12 * S), POLICY_ARM_VERIFY_TIMER);
        assert_int_equal(policy_on_verify_timeout(&s, &c, T0 + 72 * S), POLICY_REMEDIATION_FAILED);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 73 * S), 0);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 83 * S), POLICY_ACT | POLICY_STATE_CHANGED);
}

static void test_budget_escalation_and_reset(void **state _unused_) {
        PolicyState s;
        policy_init(&s);
        usec_t t = T0;
        fail_in_a_row(&s, &cfg, t, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        for (int i = 0; i < 2; i++) {
                assert_int_equal(policy_on_action_done(&s, &cfg, false, t += S), POLICY_REMEDIATION_FAILED);
                assert_int_equal(policy_on_result(&s, &cfg, false, false, t += S), POLICY_ACT | POLICY_STATE_CHANGED);
        }
        assert_int_equal(policy_budget_left(&s, &cfg, t), 0);
        assert_int_equal(policy_on_action_done(&s, &cfg, false, t += S), POLICY_REMEDIATION_FAILED);
        assert_int_equal(policy_on_result(&s, &cfg, false, false, t += S), POLICY_ESCALATE | POLICY_STATE_CHANGED);
        assert_int_equal(s.phase, POLICY_ESCALATED);
        /* escalated once, then quiet */
        assert_int_equal(policy_on_result(&s, &cfg, false, false, t += S), 0);
        /* even after the window: escalation holds until recovery or reset */
        assert_int_equal(policy_on_result(&s, &cfg, false, false, t + 700 * S), 0);
        assert_int_equal(policy_reset(&s), POLICY_STATE_CHANGED);
        assert_int_equal(s.phase, POLICY_IDLE);
        assert_int_equal(policy_budget_left(&s, &cfg, t), 3);
        assert_int_equal(policy_on_result(&s, &cfg, false, false, t += S), POLICY_ACT | POLICY_STATE_CHANGED);
}

static void test_escalation_tells_relapse_from_failed_fix(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.max_actions = 1;
        policy_init(&s);
        /* the action worked and was verified; the check fails again later, budget spent */
        fail_in_a_row(&s, &c, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &c, true, T0 + S), POLICY_ARM_VERIFY_TIMER);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 2 * S), 0);
        assert_true(policy_on_result(&s, &c, true, false, T0 + 3 * S) & POLICY_REMEDIATION_SUCCEEDED);
        assert_true(s.last_fix_held);
        fail_in_a_row(&s, &c, T0 + 4 * S, POLICY_CHECK_FAILED | POLICY_ESCALATE | POLICY_STATE_CHANGED);
        assert_true(s.last_fix_held);
        /* it survives a restart of heald */
        cJSON *j = NULL;
        assert_int_equal(policy_to_json(&s, &j), 0);
        PolicyState loaded;
        policy_init(&loaded);
        policy_from_json(&loaded, j);
        cJSON_Delete(j);
        assert_true(loaded.last_fix_held);
        /* after a reset, an action that fails is a fix that did not work */
        policy_reset(&s);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 5 * S), POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &c, false, T0 + 6 * S), POLICY_REMEDIATION_FAILED);
        assert_false(s.last_fix_held);
}

static void test_request_asks_once_per_failure(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.ask_once = true;
        policy_init(&s);
        fail_in_a_row(&s, &c, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &c, true, T0 + S), POLICY_ARM_VERIFY_TIMER);
        assert_int_equal(policy_on_verify_timeout(&s, &c, T0 + 61 * S), POLICY_REMEDIATION_FAILED);
        /* still failing, long after: the fleet was asked and is not asked again */
        for (usec_t t = T0 + 62 * S; t < T0 + 500 * S; t += 10 * S)
                assert_int_equal(policy_on_result(&s, &c, false, false, t), 0);
        assert_int_equal(policy_budget_left(&s, &c, T0 + 500 * S), 2);
        /* a new failure after a recovery is a new question */
        policy_on_result(&s, &c, true, false, T0 + 601 * S);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 602 * S), POLICY_CHECK_RECOVERED);
        fail_in_a_row(&s, &c, T0 + 603 * S, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
}

static void test_escalation_ends_with_recovery(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.max_actions = 1;
        policy_init(&s);
        fail_in_a_row(&s, &c, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_action_done(&s, &c, false, T0 + S), POLICY_REMEDIATION_FAILED);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 2 * S), POLICY_ESCALATE | POLICY_STATE_CHANGED);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 3 * S), 0);
        assert_int_equal(policy_on_result(&s, &c, true, false, T0 + 4 * S), POLICY_CHECK_RECOVERED | POLICY_STATE_CHANGED);
        assert_int_equal(s.phase, POLICY_IDLE);
}

static void test_window_slides(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.max_actions = 1;
        policy_init(&s);
        fail_in_a_row(&s, &c, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        assert_int_equal(policy_budget_left(&s, &c, T0 + 599 * S), 0);
        assert_int_equal(policy_budget_left(&s, &c, T0 + 600 * S), 1);
        assert_int_equal(policy_on_action_done(&s, &c, false, T0 + S), POLICY_REMEDIATION_FAILED);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 601 * S), POLICY_ACT | POLICY_STATE_CHANGED);
}

static void test_dependency_suppresses_once(void **state _unused_) {
        PolicyState s;
        policy_init(&s);
        unsigned out = 0;
        for (unsigned i = 0; i < cfg.fail_after; i++)
                out = policy_on_result(&s, &cfg, false, true, T0);
        assert_int_equal(out, POLICY_CHECK_FAILED | POLICY_SUPPRESSED);
        assert_int_equal(policy_on_result(&s, &cfg, false, true, T0 + S), 0);
        assert_int_equal(s.n_actions, 0);
        /* the dependency is back: act */
        assert_int_equal(policy_on_result(&s, &cfg, false, false, T0 + 2 * S), POLICY_ACT | POLICY_STATE_CHANGED);
}

static void test_dry_run_counts_budget(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.fail_after = 1;
        policy_init(&s);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0), POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        policy_on_action_skipped(&s);
        assert_int_equal(s.phase, POLICY_IDLE);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + S), POLICY_ACT | POLICY_STATE_CHANGED);
        policy_on_action_skipped(&s);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 2 * S), POLICY_ACT | POLICY_STATE_CHANGED);
        policy_on_action_skipped(&s);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + 3 * S), POLICY_ESCALATE | POLICY_STATE_CHANGED);
}

static void test_no_action_configured(void **state _unused_) {
        PolicyState s;
        PolicyConfig c = cfg;
        c.has_action = false;
        policy_init(&s);
        fail_in_a_row(&s, &c, T0, POLICY_CHECK_FAILED);
        assert_int_equal(policy_on_result(&s, &c, false, false, T0 + S), 0);
        assert_int_equal(s.phase, POLICY_IDLE);
}

static void test_json_round_trip_and_garbage(void **state _unused_) {
        PolicyState s, t;
        PolicyConfig c = cfg;
        c.max_actions = 1;
        policy_init(&s);
        fail_in_a_row(&s, &c, T0, POLICY_CHECK_FAILED | POLICY_ACT | POLICY_STATE_CHANGED);
        policy_on_action_done(&s, &c, false, T0 + S);
        policy_on_result(&s, &c, false, false, T0 + 2 * S);
        assert_int_equal(s.phase, POLICY_ESCALATED);

        cJSON *j = NULL;
        assert_int_equal(policy_to_json(&s, &j), 0);
        policy_init(&t);
        policy_from_json(&t, j);
        cJSON_Delete(j);
        assert_int_equal(t.n_actions, 1);
        assert_int_equal(t.actions[0], T0);
        assert_int_equal(t.phase, POLICY_ESCALATED);
        /* restored after a restart: a first healthy look does not end the escalation */
        assert_int_equal(policy_on_result(&t, &c, true, false, T0 + 3 * S), 0);
        assert_int_equal(policy_on_result(&t, &c, true, false, T0 + 4 * S), 0);
        assert_int_equal(t.phase, POLICY_ESCALATED);

        const char *bad[] = { "[]", "{\"actions\":\"x\"}", "{\"actions\":[-1,\"a\",1e300,null]}", "{\"escalated\":1}", "7" };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                cJSON *b = cJSON_Parse(bad[i]);
                policy_init(&t);
                policy_from_json(&t, b);
                assert_int_equal(t.n_actions, 0);
                assert_int_equal(t.phase, POLICY_IDLE);
                cJSON_Delete(b);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_hysteresis),
                cmocka_unit_test(test_first_success_is_not_a_recovery),
                cmocka_unit_test(test_act_verify_succeed),
                cmocka_unit_test(test_action_failure_and_verify_timeout),
                cmocka_unit_test(test_failed_attempts_are_spaced),
                cmocka_unit_test(test_budget_escalation_and_reset),
                cmocka_unit_test(test_escalation_ends_with_recovery),
                cmocka_unit_test(test_window_slides),
                cmocka_unit_test(test_dependency_suppresses_once),
                cmocka_unit_test(test_dry_run_counts_budget),
                cmocka_unit_test(test_no_action_configured),
                cmocka_unit_test(test_json_round_trip_and_garbage),
                cmocka_unit_test(test_escalation_tells_relapse_from_failed_fix),
                cmocka_unit_test(test_request_asks_once_per_failure),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
