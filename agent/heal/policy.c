/* heal/policy.c: the per-check safety policy. Health moves by hysteresis; an action needs a failed
 * verdict, a healthy dependency and budget; every action is followed by verification; a
 * spent budget escalates once and holds until the check recovers on its own or is reset. */
#include "heal/policy.h"

void policy_init(PolicyState *s) {
        *s = (PolicyState) {};
}

static void budget_expire(PolicyState *s, const PolicyConfig *c, usec_t now) {
        size_t k = 0;
        for (size_t i = 0; i < s->n_actions; i++)
                if (s->actions[i] + c->action_window > now)
                        s->actions[k++] = s->actions[i];
        s->n_actions = k;
}

unsigned policy_budget_left(const PolicyState *s, const PolicyConfig *c, usec_t now) {
        unsigned used = 0;
        for (size_t i = 0; i < s->n_actions; i++)
                if (s->actions[i] + c->action_window > now)
                        used++;
        return used >= c->max_actions ? 0 : c->max_actions - used;
}

/* The check is failed and nothing runs: act, hold back, or escalate. */
static unsigned consider_action(PolicyState *s, const PolicyConfig *c, bool dependency_failing, usec_t now) {
        if (!c->has_action || s->phase != POLICY_IDLE || (c->ask_once && s->asked))
                return 0;
        if (dependency_failing) {
                if (s->suppressed)
                        return 0;
                s->suppressed = true;
                return POLICY_SUPPRESSED;
        }
        s->suppressed = false;
        /* A unit that fails again at once (a start limit, a broken binary) must not burn the
         * whole budget in a second: attempts are at least retry_delay apart. */
        if (now < s->retry_after)
                return 0;
        budget_expire(s, c, now);
        if (policy_budget_left(s, c, now) == 0) {
                s->phase = POLICY_ESCALATED;
                return POLICY_ESCALATE | POLICY_STATE_CHANGED;
        }
        if (s->n_actions == POLICY_ACTIONS_MAX) /* max_actions <= 100 keeps this unreachable */
                return 0;
        s->actions[s->n_actions++] = now;
        s->asked = c->ask_once;
        s->phase = POLICY_ACTING;
        s->action_started_at = now;
        s->verify_successes = 0;
        return POLICY_ACT | POLICY_STATE_CHANGED;
}

unsigned policy_on_result(PolicyState *s, const PolicyConfig *c, bool healthy, bool dependency_failing, usec_t now) {
        unsigned out = 0;

        if (healthy) {
                s->fails = 0;
                s->successes++;
                if (s->phase == POLICY_VERIFYING && ++s->verify_successes >= c->recover_after) {
                        s->phase = POLICY_IDLE;
                        s->last_fix_held = true;
                        out |= POLICY_REMEDIATION_SUCCEEDED;
                }
                if (s->health != POLICY_HEALTH_OK && s->successes >= c->recover_after) {
                        bool was_failed = s->health == POLICY_HEALTH_FAILED;
                        s->health = POLICY_HEALTH_OK;
                        s->suppressed = false;
                        s->asked = false;
                        /* Recovered on its own: the escalation is over. Only a failure this
                         * process saw ends one: a first healthy look after a restart of heald may
                         * be a lull in the very loop that escalated. */
                        if (was_failed) {
                                out |= POLICY_CHECK_RECOVERED;
                                if (s->phase == POLICY_ESCALATED) {
                                        s->phase = POLICY_IDLE;
                                        out |= POLICY_STATE_CHANGED;
                                }
                        }
                }
                return out;
        }

        s->successes = 0;
        s->verify_successes = 0;
        s->fails++;
        if (s->health != POLICY_HEALTH_FAILED && s->fails >= c->fail_after) {
                s->health = POLICY_HEALTH_FAILED;
                s->detected_at = now;
                out |= POLICY_CHECK_FAILED;
        }
        if (s->health == POLICY_HEALTH_FAILED)
                out |= consider_action(s, c, dependency_failing, now);
        return out;
}

unsigned policy_on_action_done(PolicyState *s, const PolicyConfig *c, bool ok, usec_t now) {
        if (s->phase != POLICY_ACTING)
                return 0;
        s->action_finished_at = now;
        if (!ok) {
                s->phase = POLICY_IDLE;
                s->last_fix_held = false;
                s->retry_after = now + c->retry_delay;
                return POLICY_REMEDIATION_FAILED;
        }
        s->phase = POLICY_VERIFYING;
        s->verify_successes = 0;
        s->verify_deadline = now + c->verify_timeout;
        return POLICY_ARM_VERIFY_TIMER;
}

void policy_on_action_skipped(PolicyState *s) {
        if (s->phase == POLICY_ACTING)
                s->phase = POLICY_IDLE;
}

unsigned policy_on_verify_timeout(PolicyState *s, const PolicyConfig *c, usec_t now) {
        if (s->phase != POLICY_VERIFYING || now < s->verify_deadline)
                return 0;
        s->phase = POLICY_IDLE;
        s->last_fix_held = false;
        s->retry_after = now + c->retry_delay;
        return POLICY_REMEDIATION_FAILED;
}

unsigned policy_reset(PolicyState *s) {
        s->n_actions = 0;
        s->suppressed = false;
        s->asked = false;
        s->retry_after = 0;
        if (s->phase == POLICY_ESCALATED)
                s->phase = POLICY_IDLE;
        /* The next failing result may act again at once. */
        return POLICY_STATE_CHANGED;
}

const char *policy_phase_to_string(PolicyPhase p) {
        static const char *const names[] = { "idle", "acting", "verifying", "escalated" };
        return (size_t) p < ELEMENTSOF(names) ? names[p] : "unknown";
}

const char *policy_health_to_string(PolicyHealth h) {
        static const char *const names[] = { "unknown", "ok", "failed" };
        return (size_t) h < ELEMENTSOF(names) ? names[h] : "unknown";
}

int policy_to_json(const PolicyState *s, cJSON **ret) {
        cJSON *j = cJSON_CreateObject();
        cJSON *a = cJSON_AddArrayToObject(j, "actions");
        if (!j || !a || !cJSON_AddBoolToObject(j, "escalated", s->phase == POLICY_ESCALATED) ||
            !cJSON_AddBoolToObject(j, "last_fix_held", s->last_fix_held)) {
                cJSON_Delete(j);
                return -ENOMEM;
        }
        for (size_t i = 0; i < s->n_actions; i++) {
                cJSON *n = cJSON_CreateNumber((double) s->actions[i]);
                if (!n || !cJSON_AddItemToArray(a, n)) {
                        cJSON_Delete(n);
                        cJSON_Delete(j);
                        return -ENOMEM;
                }
        }
        *ret = j;
        return 0;
}

void policy_from_json(PolicyState *s, const cJSON *j) {
        const cJSON *a = cJSON_GetObjectItemCaseSensitive(j, "actions"), *n;
        s->n_actions = 0;
        cJSON_ArrayForEach(n, a) {
                /* Times are usec since the epoch: below 2^53, exact in a double. */
                if (!cJSON_IsNumber(n) || n->valuedouble < 0 || n->valuedouble > 9007199254740992.0)
                        continue;
                if (s->n_actions == POLICY_ACTIONS_MAX)
                        break;
                s->actions[s->n_actions++] = (usec_t) n->valuedouble;
        }
        if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "escalated")))
                s->phase = POLICY_ESCALATED;
        s->last_fix_held = cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(j, "last_fix_held"));
}
