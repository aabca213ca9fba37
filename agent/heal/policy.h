/* heal/policy.h: the safety policy of one check, as a pure state machine: hysteresis
 * (fail_after/recover_after), the action budget (max_actions per action_window, durable),
 * escalation, dependencies and verification. No I/O: the caller feeds results and times in
 * and acts on the returned POLICY_* bits. */
#pragma once

#include <cjson/cJSON.h>

#include "util.h"

typedef struct PolicyConfig {
        unsigned fail_after, recover_after;
        bool has_action;
        unsigned max_actions;
        usec_t action_window;  /* the budget counts actions within this much wall-clock time */
        usec_t verify_timeout;
        usec_t retry_delay;    /* after a failed attempt, no new one before this much time passed */
        bool ask_once;         /* action = request: the fleet is asked once per failure, not again
                                * after each verify_timeout (it answers in its own time) */
} PolicyConfig;

typedef enum PolicyHealth {
        POLICY_HEALTH_UNKNOWN, /* no verdict yet */
        POLICY_HEALTH_OK,
        POLICY_HEALTH_FAILED,
} PolicyHealth;

typedef enum PolicyPhase {
        POLICY_IDLE,
        POLICY_ACTING,    /* an action runs */
        POLICY_VERIFYING, /* the action finished; the check must recover before the deadline */
        POLICY_ESCALATED, /* budget spent: no more actions until recovery or policy_reset() */
} PolicyPhase;

#define POLICY_ACTIONS_MAX 100

typedef struct PolicyState {
        PolicyHealth health;
        PolicyPhase phase;
        unsigned fails, successes;   /* consecutive, for hysteresis */
        unsigned verify_successes;   /* consecutive successes since the action finished */
        bool suppressed;             /* an action was held back for a failing dependency */
        bool asked;                  /* ask_once: this failure was asked about; until it recovers */
        bool last_fix_held;          /* the last action was verified: failing again is a relapse,
                                      * not a fix that did not work (saved with the next change) */
        usec_t detected_at;          /* wall clock of the failure verdict */
        usec_t action_started_at, action_finished_at, verify_deadline; /* wall clock */
        usec_t retry_after;          /* wall clock: no action before (a failed attempt just ended) */
        usec_t actions[POLICY_ACTIONS_MAX]; /* wall-clock times of actions in the window: durable */
        size_t n_actions;
} PolicyState;

/* What the caller must do; several bits may be set. */
enum {
        POLICY_CHECK_FAILED = 1 << 0,          /* publish "Check Failed" */
        POLICY_CHECK_RECOVERED = 1 << 1,       /* publish "Check Recovered" */
        POLICY_ACT = 1 << 2,                   /* start the action now (publish "Remediation Started") */
        POLICY_ESCALATE = 1 << 3,              /* publish "Remediation Escalated" */
        POLICY_SUPPRESSED = 1 << 4,            /* the action is held back: the dependency is failing */
        POLICY_REMEDIATION_SUCCEEDED = 1 << 5, /* verified */
        POLICY_REMEDIATION_FAILED = 1 << 6,    /* the action failed or verification timed out */
        POLICY_ARM_VERIFY_TIMER = 1 << 7,      /* call policy_on_verify_timeout() at verify_deadline */
        POLICY_STATE_CHANGED = 1 << 8,         /* the durable part changed: save it */
};

void policy_init(PolicyState *s);

/* A check result. dependency_failing: the check named in "after" is failing now. */
unsigned policy_on_result(PolicyState *s, const PolicyConfig *c, bool healthy, bool dependency_failing, usec_t now);
/* The action ended (the unit job's result, the command's exit status). */
unsigned policy_on_action_done(PolicyState *s, const PolicyConfig *c, bool ok, usec_t now);
unsigned policy_on_verify_timeout(PolicyState *s, const PolicyConfig *c, usec_t now);
/* Dry run: the action was reported, not taken. It still counts against the budget, so a dry
 * run previews escalation faithfully. */
void policy_on_action_skipped(PolicyState *s);
/* "heald reset CHECK": forget the budget and the escalation. */
unsigned policy_reset(PolicyState *s);

/* Actions left in the budget now. */
unsigned policy_budget_left(const PolicyState *s, const PolicyConfig *c, usec_t now);
const char *policy_phase_to_string(PolicyPhase p);
const char *policy_health_to_string(PolicyHealth h);

/* The durable part (action times, escalation) as JSON, and back. from_json ignores what it
 * does not understand and never fails on bad input: a corrupt file costs the budget, not
 * the daemon. Returns 0, -ENOMEM. */
int policy_to_json(const PolicyState *s, cJSON **ret);
void policy_from_json(PolicyState *s, const cJSON *j);
