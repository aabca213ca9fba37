/* heal/monitor.c: the check runtime. Each check has one CheckRuntime: its policy state, the
 * source of its results (a timer, a unit watch or a journal watch), the action in flight
 * and the verification deadline. Results of every kind go through runtime_result(), the one
 * place that asks the policy and turns its answer into actions and events. */
#include "heal/monitor.h"

#include <cjson/cJSON.h>
#include <time.h>

#include "backoff.h"
#include "codec.h"
#include "events/emit.h"
#include "heal/diagnose.h"
#include "heal/remedy.h"
#include "heal/runtime.h"
#include "log.h"

#define POLICY_FILE "policy.json"
#define POLICY_RETRY_USEC (5 * USEC_PER_SEC) /* how soon a budget the disk refused is written again */
#define VERIFY_CADENCE (1 * USEC_PER_SEC) /* probes re-run at most this far apart while verifying */
#define ACTION_OUTPUT_MAX 4096

/* How results reach a check of each CheckSource (the type's CheckTypeOps say which). */
typedef struct RuntimeSource {
        int (*start)(CheckRuntime *c);        /* start receiving results */
        void (*stop)(CheckRuntime *c);        /* stop, calling nothing back */
        void (*on_timer)(CheckRuntime *c);    /* CheckRuntime.timer fired */
        void (*refresh)(CheckRuntime *c);     /* a fresh result soon: after an action, a reset */
        void (*verify_begin)(CheckRuntime *c); /* a verification of this check starts */
} RuntimeSource;

static const RuntimeSource *runtime_source(const CheckRuntime *c);


static PolicyConfig policy_config(const CheckConfig *c) {
        return (PolicyConfig) {
                .fail_after = c->fail_after,
                .recover_after = c->recover_after,
                .has_action = c->action != CHECK_ACTION_NONE,
                .max_actions = c->max_actions,
                .action_window = c->action_window,
                .verify_timeout = c->verify_timeout,
                .retry_delay = c->interval,
                .ask_once = c->action == CHECK_ACTION_REQUEST,
        };
}

/* ---- durable policy state ---- */

static void policy_save(Monitor *m);

/* A budget the disk refused (full) is written as soon as the disk takes it, so that a restart
 * after the disk is freed does not hand out a fresh one. */
static int on_policy_retry(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        policy_save(userdata);
        return 0;
}

static void policy_save(Monitor *m) {
        cJSON *root = cJSON_CreateObject(), *checks = cJSON_AddObjectToObject(root, "checks");
        int r = root && checks ? 0 : -ENOMEM;
        for (size_t i = 0; r >= 0 && i < m->n_checks; i++) {
                cJSON *j;
                r = policy_to_json(&m->checks[i].policy, &j);
                if (r >= 0 && !cJSON_AddItemToObject(checks, m->checks[i].config->name, j)) {
                        cJSON_Delete(j);
                        r = -ENOMEM;
                }
        }
        _cleanup_free_ char *text = r >= 0 ? cJSON_PrintUnformatted(root) : NULL;
        cJSON_Delete(root);
        if (r >= 0 && !text)
                r = -ENOMEM;
        if (r >= 0)
                r = write_file_atomic(m->state_dir, POLICY_FILE, text, strlen(text));
        if (r < 0 && !m->policy_retry)
                log_error_errno(r, "Failed to save the remediation budgets to %s/" POLICY_FILE
                                   " (a restart of heald now would reset them; retried every %u s): %m",
                                m->state_dir, (unsigned) (POLICY_RETRY_USEC / USEC_PER_SEC));
        else if (r >= 0 && m->policy_retry)
                log_info("Saved the remediation budgets to %s/" POLICY_FILE " again", m->state_dir);
        if (r >= 0)
                m->policy_retry = sd_event_source_disable_unref(m->policy_retry);
        else if (m->policy_retry)
                (void) sd_event_source_set_time_relative(m->policy_retry, POLICY_RETRY_USEC);
        else
                (void) sd_event_add_time_relative(m->ctx.event, &m->policy_retry, CLOCK_BOOTTIME, POLICY_RETRY_USEC,
                                                  USEC_PER_SEC, on_policy_retry, m);
        if (m->policy_retry)
                (void) sd_event_source_set_enabled(m->policy_retry, SD_EVENT_ONESHOT);
}

static void policy_load(Monitor *m) {
        char path[4096];
        _cleanup_free_ char *text = NULL;
        int r = bsprintf(path, "%s/" POLICY_FILE, m->state_dir);
        if (r >= 0)
                r = read_file_full(path, 1024 * 1024, &text, NULL);
        if (r == -ENOENT)
                return;
        cJSON *root = r >= 0 ? cJSON_Parse(text) : NULL;
        if (!root) {
                log_warning("%s is unreadable or corrupt; remediation budgets start empty", path);
                return;
        }
        const cJSON *checks = cJSON_GetObjectItemCaseSensitive(root, "checks");
        for (size_t i = 0; i < m->n_checks; i++) {
                const cJSON *j = cJSON_GetObjectItemCaseSensitive(checks, m->checks[i].config->name);
                if (j)
                        policy_from_json(&m->checks[i].policy, j);
        }
        cJSON_Delete(root);
}

/* ---- events ---- */

cJSON *runtime_detail_new(CheckRuntime *c) {
        char buf[CHECK_TARGET_MAX];
        const CheckConfig *cc = c->config;
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddStringToObject(d, "check", cc->name) ||
            !cJSON_AddStringToObject(d, "check_type", check_type_to_string(cc->type)) ||
            !cJSON_AddStringToObject(d, "target", check_target(cc, buf)) ||
            !cJSON_AddStringToObject(d, "observed", c->have_last ? c->last.observed : "") ||
            !cJSON_AddStringToObject(d, "threshold", c->have_last ? c->last.threshold : "")) {
                cJSON_Delete(d);
                return NULL;
        }
        return d;
}

static bool add_action(cJSON *d, const CheckConfig *cc) {
        const char *t = remedy_action_target(cc);
        return cJSON_AddStringToObject(d, "action", check_action_to_string(cc->action)) &&
               (t ? cJSON_AddStringToObject(d, "action_target", t) != NULL : cJSON_AddNullToObject(d, "action_target") != NULL);
}

/* The evidence goes with the failure events (Check Failed, Remediation Failed, Escalated):
 * read now, while it is still there. */
static bool add_diagnosis(cJSON *d, CheckRuntime *c) {
        cJSON *diagnosis;
        if (diagnose(c->config, c->unit_known ? &c->unit_state : NULL, &diagnosis) < 0)
                return false;
        if (!cJSON_AddItemToObject(d, "diagnosis", diagnosis)) {
                cJSON_Delete(diagnosis);
                return false;
        }
        return true;
}

/* What a check's log lines are about: the check, and the unit it watches or acts on. */
static LogSubject runtime_subject(const CheckRuntime *c) {
        const CheckConfig *cc = c->config;
        const char *unit = cc->type == CHECK_UNIT                             ? cc->unit
                           : remedy_operation_of_action(cc->action) >= 0 ? remedy_action_target(cc)
                                                                          : NULL;
        return (LogSubject) { .check = cc->name, .unit = unit };
}

#define log_check(c, level, event, ...)                                            \
        do {                                                                       \
                LogSubject _subject_ = runtime_subject(c);                         \
                log_event_about((level), (event), &_subject_, __VA_ARGS__);        \
        } while (0)

static void emit(CheckRuntime *c, const char *type, cJSON *d) {
        (void) emit_event(c->monitor->ctx.emit, c->monitor->ctx.userdata, type, d, c->config->name);
}

static void emit_check_failed(CheckRuntime *c, const CheckResult *res) {
        cJSON *d = runtime_detail_new(c);
        if (d && (!cJSON_AddStringToObject(d, "message", res->message) ||
                  !cJSON_AddNumberToObject(d, "fail_after", c->config->fail_after) ||
                  (res->output && !cJSON_AddStringToObject(d, "output", res->output)) ||
                  !emit_add_time(d, "detected_at", c->policy.detected_at) ||
                  (c->after && !cJSON_AddStringToObject(d, "after", c->after->config->name)) || !add_diagnosis(d, c))) {
                cJSON_Delete(d);
                d = NULL;
        }
        log_check(c, LOG_WARNING, "check-failed", "Check %s failed: %s (%s; healthy: %s)", c->config->name, res->message,
                  res->observed, res->threshold);
        emit(c, "Check Failed", d);
}

static void emit_check_recovered(CheckRuntime *c, const CheckResult *res) {
        cJSON *d = runtime_detail_new(c);
        usec_t now = now_usec(CLOCK_REALTIME);
        if (d && (!cJSON_AddStringToObject(d, "message", res->message) ||
                  !cJSON_AddNumberToObject(d, "failed_for_ms",
                                           (double) ((now - c->policy.detected_at) / USEC_PER_MSEC)))) {
                cJSON_Delete(d);
                d = NULL;
        }
        log_check(c, LOG_INFO, "check-recovered", "Check %s recovered: %s", c->config->name, res->observed);
        emit(c, "Check Recovered", d);
}

static void emit_remediation(CheckRuntime *c, const char *type, const char *reason) {
        const CheckConfig *cc = c->config;
        const PolicyState *p = &c->policy;
        usec_t now = now_usec(CLOCK_REALTIME);
        PolicyConfig pc = policy_config(cc);
        cJSON *d = runtime_detail_new(c);
        /* Every remediation event says whether it is a dry run: rules that page people or make
         * the fleet act must be able to skip a preview. */
        bool ok = d && add_action(d, cc) && emit_add_time(d, "detected_at", p->detected_at) &&
                  cJSON_AddBoolToObject(d, "dry_run", c->monitor->ctx.dry_run);
        if (ok && strcmp(type, "Remediation Started") == 0)
                ok = cJSON_AddNumberToObject(d, "attempt", (double) p->n_actions) &&
                     cJSON_AddNumberToObject(d, "max_actions", cc->max_actions) &&
                     cJSON_AddNumberToObject(d, "action_window_s", (double) (cc->action_window / USEC_PER_SEC)) &&
                     emit_add_time(d, "action_started_at", p->action_started_at);
        else if (ok && strcmp(type, "Remediation Succeeded") == 0)
                ok = emit_add_time(d, "action_started_at", p->action_started_at) &&
                     emit_add_time(d, "action_finished_at", p->action_finished_at) && emit_add_time(d, "verified_at", now) &&
                     cJSON_AddNumberToObject(d, "time_to_recovery_ms", (double) ((now - p->detected_at) / USEC_PER_MSEC));
        else if (ok && strcmp(type, "Remediation Failed") == 0)
                ok = emit_add_time(d, "action_started_at", p->action_started_at) &&
                     cJSON_AddStringToObject(d, "reason", reason) && add_diagnosis(d, c);
        else if (ok && strcmp(type, "Remediation Escalated") == 0)
                ok = cJSON_AddNumberToObject(d, "actions_in_window", (double) (cc->max_actions - policy_budget_left(p, &pc, now))) &&
                     cJSON_AddNumberToObject(d, "max_actions", cc->max_actions) &&
                     cJSON_AddNumberToObject(d, "action_window_s", (double) (cc->action_window / USEC_PER_SEC)) &&
                     cJSON_AddStringToObject(d, "reason", reason) && add_diagnosis(d, c);
        else if (ok && strcmp(type, "Remediation Requested") == 0)
                ok = cJSON_AddStringToObject(d, "message", c->have_last ? c->last.message : "");
        if (!ok) {
                cJSON_Delete(d);
                d = NULL;
        }
        emit(c, type, d);
}

/* ---- actions ---- */

static void handle(CheckRuntime *c, unsigned out, const CheckResult *res);
static void runtime_rejudge(CheckRuntime *c);

static RemediationRecord *remediation_newest(CheckRuntime *c) {
        return c->n_remediations ? &c->remediations[(c->n_remediations - 1) % HISTORY_MAX] : NULL;
}

static void remediation_begin(CheckRuntime *c, const char *action) {
        RemediationRecord *r = &c->remediations[c->n_remediations++ % HISTORY_MAX];
        *r = (RemediationRecord) { .at = now_usec(CLOCK_REALTIME) };
        bsprintf(r->action, "%s", action);
        bsprintf(r->result, "running");
}

/* The newest remediation's outcome so far (it may be refined: "job done", then "verified"). */
static void remediation_set_result(CheckRuntime *c, const char *result) {
        RemediationRecord *r = remediation_newest(c);
        if (r)
                bsprintf(r->result, "%s", result);
}

static void action_done(CheckRuntime *c, bool ok, const char *what) {
        PolicyConfig pc = policy_config(c->config);
        remediation_set_result(c, what);
        unsigned out = policy_on_action_done(&c->policy, &pc, ok, now_usec(CLOCK_REALTIME));
        if (out & POLICY_REMEDIATION_FAILED) {
                log_check(c, LOG_ERR, "remediation-failed", "Remediation of check %s failed: %s", c->config->name, what);
                emit_remediation(c, "Remediation Failed", what);
        }
        handle(c, out & ~POLICY_REMEDIATION_FAILED, NULL);
}

static void on_action_job(const char *unit, const char *result, int error, const char *message, void *userdata) {
        CheckRuntime *c = userdata;
        char what[256];
        c->action_job = false;
        if (!result)
                bsprintf(what, "systemd refused %s %s: %s", check_action_to_string(c->config->action), unit,
                         message ? message : strerror(-error));
        else
                bsprintf(what, "job %s", result);
        action_done(c, result && strcmp(result, "done") == 0, what);
}

static void on_action_exec(int error, const SpawnResult *r, void *userdata) {
        CheckRuntime *c = userdata;
        char what[256];
        c->action_exec = NULL;
        if (error < 0)
                bsprintf(what, "cannot run %s: %s", c->config->action_command[0], strerror(-error));
        else if (r->timed_out)
                bsprintf(what, "%s timed out", c->config->action_command[0]);
        else if (!r->exited)
                bsprintf(what, "%s killed by signal %d", c->config->action_command[0], r->signal);
        else
                bsprintf(what, "%s exit status %d", c->config->action_command[0], r->exit_status);
        action_done(c, error >= 0 && r->exited && r->exit_status == 0, what);
}

static void action_start(CheckRuntime *c) {
        Monitor *m = c->monitor;
        const CheckConfig *cc = c->config;
        RemedyOperation op = remedy_operation_of_action(cc->action);
        int r = 0;

        remediation_begin(c, check_action_to_string(cc->action));
        if (cc->action == CHECK_ACTION_REQUEST) {
                char target[CHECK_TARGET_MAX];
                log_check(c, LOG_NOTICE, "remediation-started", "Check %s: %sask the fleet to act on %s %s%s", cc->name,
                          m->ctx.dry_run ? "would " : "", check_type_to_string(cc->type), check_target(cc, target),
                          m->ctx.dry_run ? " [dry run]" : "");
        } else
                log_check(c, LOG_NOTICE, "remediation-started", "Check %s: %s%s %s (attempt %zu of %u)%s", cc->name,
                          m->ctx.dry_run ? "would " : "", check_action_to_string(cc->action), remedy_action_target(cc) ?: "",
                          c->policy.n_actions, cc->max_actions, m->ctx.dry_run ? " [dry run]" : "");
        emit_remediation(c, cc->action == CHECK_ACTION_REQUEST ? "Remediation Requested" : "Remediation Started", NULL);

        if (m->ctx.dry_run) {
                remediation_set_result(c, "dry run: not taken");
                policy_on_action_skipped(&c->policy);
                return;
        }
        if (op >= 0) {
                r = remedy_unit_job(m->ctx.units, op, remedy_action_target(cc), on_action_job, c);
                c->action_job = r >= 0;
        } else if (cc->action == CHECK_ACTION_EXEC)
                r = spawn_start(m->ctx.event, cc->action_command, cc->verify_timeout, ACTION_OUTPUT_MAX, on_action_exec, c,
                               &c->action_exec);
        else /* request: the fleet acts; verification watches whether it worked */
                return action_done(c, true, "requested from the fleet");
        if (r < 0) {
                char what[256];
                bsprintf(what, "cannot start: %s", r == -ENOTCONN ? "no system bus" : strerror(-r));
                action_done(c, false, what);
        }
}

/* ---- results ---- */

static int on_verify_timeout(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        CheckRuntime *c = userdata;
        PolicyConfig pc = policy_config(c->config);
        unsigned out = policy_on_verify_timeout(&c->policy, &pc, now_usec(CLOCK_REALTIME));
        if (out & POLICY_REMEDIATION_FAILED) {
                char what[128];
                bsprintf(what, "not healthy within verify_timeout (%llu s) after the action",
                         (unsigned long long) (c->config->verify_timeout / USEC_PER_SEC));
                log_check(c, LOG_ERR, "remediation-failed", "Remediation of check %s failed: %s", c->config->name, what);
                emit_remediation(c, "Remediation Failed", what);
                remediation_set_result(c, what);
        }
        /* Still failing: judge again so the budget decides about another attempt. */
        runtime_rejudge(c);
        return 0;
}

static void schedule(CheckRuntime *c, usec_t delay) {
        if (!c->timer)
                return;
        (void) sd_event_source_set_time_accuracy(c->timer, timer_accuracy(delay));
        (void) sd_event_source_set_time_relative(c->timer, delay);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void handle(CheckRuntime *c, unsigned out, const CheckResult *res) {
        Monitor *m = c->monitor;
        if ((out & POLICY_CHECK_FAILED) && res)
                emit_check_failed(c, res);
        if ((out & POLICY_CHECK_RECOVERED) && res)
                emit_check_recovered(c, res);
        if (out & POLICY_SUPPRESSED)
                log_check(c, LOG_NOTICE, "remediation-suppressed",
                          "Check %s is failing, but %s, which it runs after, is failing too: no action until %s recovers",
                          c->config->name, c->after->config->name, c->after->config->name);
        if (out & POLICY_REMEDIATION_SUCCEEDED) {
                log_check(c, LOG_NOTICE, "remediation-succeeded", "Check %s: remediation verified (%s)", c->config->name,
                          c->last.observed);
                remediation_set_result(c, "verified");
                (void) sd_event_source_set_enabled(c->verify_timer, SD_EVENT_OFF);
                emit_remediation(c, "Remediation Succeeded", NULL);
        }
        if (out & POLICY_ESCALATE) {
                char why[256];
                /* a fix that held and then broke again points elsewhere than one that never worked */
                bsprintf(why, "%u action%s within %llu s %s; a person or the fleet must act (then: heald reset %s)",
                         c->config->max_actions, plural_s(c->config->max_actions),
                         (unsigned long long) (c->config->action_window / USEC_PER_SEC),
                         c->policy.last_fix_held ? "used up: the fix held, then it failed again" : "did not fix it",
                         c->config->name);
                bool dry_run = m->ctx.dry_run;
                log_check(c, dry_run ? LOG_NOTICE : LOG_ERR, "remediation-escalated", "Check %s escalated: %s%s",
                          c->config->name, why, dry_run ? " [dry run: nobody needs to act]" : "");
                emit_remediation(c, "Remediation Escalated", why);
        }
        if (out & POLICY_ACT)
                action_start(c);
        if (out & POLICY_ARM_VERIFY_TIMER) {
                (void) sd_event_source_set_time(c->verify_timer, now_usec(CLOCK_BOOTTIME) + c->config->verify_timeout);
                (void) sd_event_source_set_enabled(c->verify_timer, SD_EVENT_ONESHOT);
                /* The fix may already be in place (a unit is often active before its job ends). */
                runtime_source(c)->refresh(c);
        }
        if (out & (POLICY_STATE_CHANGED | POLICY_ESCALATE))
                policy_save(m);
}

static void runtime_result(CheckRuntime *c, const CheckResult *res) {
        verify_observe(c->monitor, c, res->healthy);
        c->last = *res;
        c->last.output = NULL;
        c->have_last = true;
        c->last_at = now_usec(CLOCK_REALTIME);
        ResultRecord *record = &c->results[c->n_results++ % HISTORY_MAX];
        *record = (ResultRecord) { .at = c->last_at, .healthy = res->healthy };
        bsprintf(record->observed, "%s", res->observed);
        bool dependency_failing = c->after && c->after->policy.health == POLICY_HEALTH_FAILED;
        PolicyConfig pc = policy_config(c->config);
        PolicyHealth before = c->policy.health;
        unsigned out = policy_on_result(&c->policy, &pc, res->healthy, dependency_failing, c->last_at);
        if (c->policy.health != before)
                c->health_since = c->last_at;
        handle(c, out, res);
}

/* Units: judge the state we hold (no D-Bus call). */
static void runtime_rejudge(CheckRuntime *c) {
        if (!c->unit_known) /* only a unit's signals bring a state to judge */
                return;
        CheckResult res;
        if (check_unit_evaluate(c->config, &c->unit_state, &c->unit_history, now_usec(CLOCK_MONOTONIC), &res) == 0)
                runtime_result(c, &res);
}

/* While a unit is unhealthy (not yet failed for fail_after > 1, or failed), judge it again
 * every interval: that is what counts consecutive failures and lets the budget decide on
 * another attempt. A healthy unit is judged only when a signal arrives. */
static void runtime_rejudge_later(CheckRuntime *c) {
        if (c->policy.health == POLICY_HEALTH_FAILED || (c->have_last && !c->last.healthy))
                schedule(c, c->config->interval);
}

/* systemd sends one signal per interface and several per transition: a verdict the check
 * already holds is no new observation. fail_after counts changes and the re-judging every
 * interval, not signals. */
static void on_unit_changed(const char *unit _unused_, const UnitState *st, void *userdata) {
        CheckRuntime *c = userdata;
        c->unit_state = *st;
        c->unit_known = true;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        check_unit_observe(&c->unit_history, st, now);
        CheckResult res;
        if (check_unit_evaluate(c->config, &c->unit_state, &c->unit_history, now, &res) != 0)
                return;
        /* The verdict's message names its kind (failed, waits for a restart, restart loop with its
         * count...); the observed text also carries partial updates (a Result before the
         * ActiveState) that are not news. */
        bool same = c->have_last && c->last.healthy == res.healthy && strcmp(c->last.message, res.message) == 0;
        if (!same)
                runtime_result(c, &res);
        runtime_rejudge_later(c);
}

static void on_journal_match(const char *message, size_t len, void *userdata) {
        CheckRuntime *c = userdata;
        CheckResult res = { .healthy = false };
        char escaped[CHECK_OUTPUT_MAX];
        codec_escape_copy(escaped, sizeof escaped, message, len);
        bsprintf(res.observed, "matching journal entry");
        bsprintf(res.threshold, "no entry matching the pattern");
        bsprintf(res.message, "%.200s", escaped);
        res.output = escaped;
        runtime_result(c, &res);
        /* Healthy again after a quiet interval. */
        schedule(c, c->config->interval);
}


static void on_probe_done(const CheckResult *res, void *userdata) {
        CheckRuntime *c = userdata;
        c->probe = NULL;
        runtime_result(c, res);
        bool verifying = c->policy.phase == POLICY_VERIFYING || verify_includes(c->monitor, c);
        schedule(c, verifying && c->config->interval > VERIFY_CADENCE ? VERIFY_CADENCE : c->config->interval);
}

static void run_probe(CheckRuntime *c) {
        const CheckTypeOps *ops = check_type_ops(c->config->type);
        CheckResult res = {};
        int r;

        if (ops->run) {
                r = ops->run(c->config, &res);
                if (r >= 0)
                        on_probe_done(&res, c);
                check_result_done(&res);
                return;
        }
        CheckProbeContext ctx = { .event = c->monitor->ctx.event, .http = c->monitor->ctx.http };
        r = ops->start(c->config, &ctx, on_probe_done, c, &c->probe);
        if (r < 0) {
                res = (CheckResult) { .healthy = false };
                bsprintf(res.observed, "not run");
                bsprintf(res.message, "cannot start the probe: %s", strerror(-r));
                on_probe_done(&res, c);
        }
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        CheckRuntime *c = userdata;
        runtime_source(c)->on_timer(c);
        return 0;
}

/* ---- the three sources of results ---- */

/* Polled checks: the timer runs the next probe. */
static int poll_start(CheckRuntime *c) {
        /* The first runs are spread over a tenth of the interval, the timer's accuracy: sd-event
         * then runs the checks due within that window in one wake-up (monit's cycle, without
         * its latency for unit and journal checks). One that a verification carried over a
         * reload waits for is due now. */
        schedule(c, verify_includes(c->monitor, c) ? 0 : backoff_random() % (c->config->interval / 10 + 1));
        return 0;
}

static void poll_stop(CheckRuntime *c) {
        if (c->probe)
                check_probe_cancel(c->probe);
        c->probe = NULL;
}

static void poll_on_timer(CheckRuntime *c) {
        if (!c->probe)
                run_probe(c);
}

static void poll_refresh(CheckRuntime *c) {
        schedule(c, 0);
}

/* Units: systemd's signals bring the state; the timer judges it again while it is unhealthy. */
static int unit_start(CheckRuntime *c) {
        Monitor *m = c->monitor;
        if (!m->ctx.units) {
                CheckResult res = { .healthy = false };
                bsprintf(res.observed, "no system bus");
                bsprintf(res.message, "cannot watch %s: the system bus is unavailable",
                         c->config->unit);
                runtime_result(c, &res);
                return 0;
        }
        return units_watch(m->ctx.units, c->config->unit, on_unit_changed, c);
}

static void unit_stop(CheckRuntime *c) {
        if (c->monitor->ctx.units)
                units_unwatch(c->monitor->ctx.units, c->config->unit, c);
}

static void unit_on_timer(CheckRuntime *c) {
        runtime_rejudge(c);
        runtime_rejudge_later(c);
}

/* Journal patterns: entries bring failures; the timer, a quiet interval later, health. */
static int journal_start(CheckRuntime *c) {
        int r = journal_watch_new(c->monitor->ctx.event, c->config->match, c->config->pattern, on_journal_match, c,
                                  &c->journal);
        if (r < 0)
                log_error_errno(r, "Check %s: cannot read the journal: %m", c->config->name);
        return 0;
}

static void journal_stop(CheckRuntime *c) {
        c->journal = journal_watch_free(c->journal);
}

static void journal_on_timer(CheckRuntime *c) {
        CheckResult res = { .healthy = true };
        bsprintf(res.observed, "no matching entry for %llu s",
                 (unsigned long long) (c->config->interval / USEC_PER_SEC));
        bsprintf(res.threshold, "no entry matching the pattern");
        bsprintf(res.message, "quiet");
        runtime_result(c, &res);
        if (c->policy.health == POLICY_HEALTH_FAILED)
                schedule(c, c->config->interval);
}

/* Nothing to ask: a journal check knows only what entries arrive. */
static void journal_refresh(CheckRuntime *c _unused_) {
}

/* A verification starts from what the check holds: its last result, or quiet. */
static void journal_verify_begin(CheckRuntime *c) {
        if (c->have_last)
                verify_observe(c->monitor, c, c->last.healthy);
        else {
                CheckResult quiet = { .healthy = true };
                bsprintf(quiet.observed, "no matching entry");
                bsprintf(quiet.message, "quiet");
                runtime_result(c, &quiet);
        }
}

static const RuntimeSource runtime_sources[] = {
        [CHECK_SOURCE_POLL] = { poll_start, poll_stop, poll_on_timer, poll_refresh, poll_refresh },
        [CHECK_SOURCE_UNIT] = { unit_start, unit_stop, unit_on_timer, runtime_rejudge, runtime_rejudge },
        [CHECK_SOURCE_JOURNAL] = { journal_start, journal_stop, journal_on_timer, journal_refresh, journal_verify_begin },
};

static const RuntimeSource *runtime_source(const CheckRuntime *c) {
        return &runtime_sources[check_type_ops(c->config->type)->source];
}

void runtime_verify_begin(CheckRuntime *c) {
        runtime_source(c)->verify_begin(c);
}

bool runtime_running(const CheckRuntime *c) {
        return runtime_source(c) != &runtime_sources[CHECK_SOURCE_UNIT] ||
               strcmp(c->unit_state.active_state, "active") == 0;
}

/* ---- set-up ---- */

static void runtime_stop(CheckRuntime *c) {
        Monitor *m = c->monitor;
        runtime_source(c)->stop(c);
        if (c->action_exec)
                spawn_cancel(c->action_exec);
        c->action_exec = NULL;
        if (m->ctx.units)
                units_cancel_jobs(m->ctx.units, c);
        c->timer = sd_event_source_disable_unref(c->timer);
        c->verify_timer = sd_event_source_disable_unref(c->verify_timer);
        if (c->policy.phase == POLICY_ACTING)
                c->policy.phase = POLICY_IDLE; /* the action's outcome is no longer followed */
}

static int runtime_start(CheckRuntime *c) {
        Monitor *m = c->monitor;
        int r = sd_event_add_time(m->ctx.event, &c->timer, CLOCK_BOOTTIME, USEC_INFINITY, 10 * USEC_PER_MSEC, on_timer, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        r = sd_event_add_time(m->ctx.event, &c->verify_timer, CLOCK_BOOTTIME, USEC_INFINITY, 10 * USEC_PER_MSEC,
                              on_verify_timeout, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->verify_timer, SD_EVENT_OFF);
        return runtime_source(c)->start(c);
}

static void runtimes_link(Monitor *m) {
        for (size_t i = 0; i < m->n_checks; i++) {
                CheckRuntime *c = &m->checks[i];
                c->after = NULL;
                for (size_t k = 0; c->config->after && k < m->n_checks; k++)
                        if (strcmp(m->checks[k].config->name, c->config->after) == 0)
                                c->after = &m->checks[k];
        }
}

static void runtimes_free(CheckRuntime *checks, size_t n) {
        for (size_t i = 0; i < n; i++)
                runtime_stop(&checks[i]);
        free(checks);
}

static int runtimes_build(Monitor *m, const CheckConfig *checks, size_t n, CheckRuntime **ret) {
        CheckRuntime *rt = calloc(n ? n : 1, sizeof *rt);
        if (!rt)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                rt[i].monitor = m;
                rt[i].config = &checks[i];
                rt[i].health_since = now_usec(CLOCK_REALTIME);
                policy_init(&rt[i].policy);
        }
        *ret = rt;
        return 0;
}

int monitor_new(const MonitorContext *ctx, const CheckConfig *checks, size_t n, Monitor **ret) {
        _cleanup_(monitor_freep) Monitor *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        m->ctx = *ctx;
        m->ctx.state_dir = NULL; /* borrowed from a Config that a reload frees: use m->state_dir */
        m->state_dir = strdup(ctx->state_dir);
        if (!m->state_dir)
                return -ENOMEM;
        int r = runtimes_build(m, checks, n, &m->checks);
        if (r < 0)
                return r;
        m->n_checks = n;
        runtimes_link(m);
        policy_load(m);
        for (size_t i = 0; i < n; i++) {
                r = runtime_start(&m->checks[i]);
                if (r < 0)
                        return log_error_errno(r, "Cannot start check %s: %m", checks[i].name);
        }
        *ret = TAKE_PTR(m);
        return 0;
}

Monitor *monitor_free(Monitor *m) {
        if (!m)
                return NULL;
        while (m->verifies)
                verify_cancel(m->verifies);
        runtimes_free(m->checks, m->n_checks);
        sd_event_source_disable_unref(m->policy_retry);
        free(m->state_dir);
        free(m);
        return NULL;
}

bool runtime_same_check(const CheckConfig *a, const CheckConfig *b) {
        char x[CHECK_TARGET_MAX], y[CHECK_TARGET_MAX];
        return strcmp(a->name, b->name) == 0 && a->type == b->type &&
               strcmp(check_target(a, x), check_target(b, y)) == 0 && streq_ptr(a->url, b->url);
}

int monitor_reload(Monitor *m, const CheckConfig *checks, size_t n, bool dry_run) {
        CheckRuntime *rt;
        int r = runtimes_build(m, checks, n, &rt);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                for (size_t k = 0; k < m->n_checks; k++) {
                        CheckRuntime *old = &m->checks[k];
                        if (!runtime_same_check(old->config, &checks[i]))
                                continue;
                        rt[i].policy = old->policy;
                        rt[i].last = old->last;
                        rt[i].have_last = old->have_last;
                        rt[i].last_at = old->last_at;
                        rt[i].health_since = old->health_since;
                        rt[i].unit_history = old->unit_history;
                        memcpy(rt[i].results, old->results, sizeof rt[i].results);
                        rt[i].n_results = old->n_results;
                        memcpy(rt[i].remediations, old->remediations, sizeof rt[i].remediations);
                        rt[i].n_remediations = old->n_remediations;
                }
        verify_carry_over(m, rt, n);
        runtimes_free(m->checks, m->n_checks);
        m->checks = rt;
        m->n_checks = n;
        m->ctx.dry_run = dry_run;
        runtimes_link(m);
        for (size_t i = 0; i < n; i++) {
                if (rt[i].policy.phase == POLICY_ACTING || rt[i].policy.phase == POLICY_VERIFYING)
                        rt[i].policy.phase = POLICY_IDLE; /* that action's outcome is no longer followed */
                r = runtime_start(&rt[i]);
                if (r < 0)
                        return log_error_errno(r, "Cannot start check %s: %m", checks[i].name);
        }
        policy_save(m);
        return 0;
}

int monitor_reset(Monitor *m, const char *check) {
        for (size_t i = 0; i < m->n_checks; i++) {
                CheckRuntime *c = &m->checks[i];
                if (strcmp(c->config->name, check) != 0)
                        continue;
                policy_reset(&c->policy);
                policy_save(m);
                log_check(c, LOG_NOTICE, "check-reset", "Check %s reset: its remediation budget is full again", check);
                runtime_source(c)->refresh(c);
                return 0;
        }
        return -ENOENT;
}

void monitor_counts(const Monitor *m, unsigned *ret_ok, unsigned *ret_failing) {
        unsigned ok = 0, failing = 0;
        for (size_t i = 0; i < m->n_checks; i++) {
                if (m->checks[i].policy.health == POLICY_HEALTH_FAILED)
                        failing++;
                else if (m->checks[i].policy.health == POLICY_HEALTH_OK)
                        ok++;
        }
        *ret_ok = ok;
        *ret_failing = failing;
}


void monitor_failing_names(const Monitor *m, size_t max, char *buf, size_t size) {
        size_t shown = 0, more = 0, len = 0;
        buf[0] = 0;
        for (size_t i = 0; i < m->n_checks; i++) {
                if (m->checks[i].policy.health != POLICY_HEALTH_FAILED)
                        continue;
                if (shown == max) {
                        more++;
                        continue;
                }
                int k = snprintf(buf + len, size - len, "%s%s", shown ? ", " : "", m->checks[i].config->name);
                if (k < 0 || (size_t) k >= size - len) {
                        buf[len] = 0; /* a name that does not fit is counted, not cut */
                        max = shown;
                        more++;
                        continue;
                }
                len += (size_t) k;
                shown++;
        }
        if (more)
                snprintf(buf + len, size - len, "%s+%zu more", shown ? ", " : "", more);
}

/* Newest first: what heald status CHECK lists. */
static cJSON *results_to_json(const CheckRuntime *c) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t k = 0; arr && k < c->n_results && k < HISTORY_MAX; k++) {
                const ResultRecord *r = &c->results[(c->n_results - 1 - k) % HISTORY_MAX];
                cJSON *o = cJSON_CreateObject();
                if (!cJSON_AddItemToArray(arr, o) || !emit_add_time(o, "at", r->at) ||
                    !cJSON_AddBoolToObject(o, "healthy", r->healthy) || !cJSON_AddStringToObject(o, "observed", r->observed)) {
                        cJSON_Delete(arr);
                        return NULL;
                }
        }
        return arr;
}

static cJSON *remediations_to_json(const CheckRuntime *c) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t k = 0; arr && k < c->n_remediations && k < HISTORY_MAX; k++) {
                const RemediationRecord *r = &c->remediations[(c->n_remediations - 1 - k) % HISTORY_MAX];
                cJSON *o = cJSON_CreateObject();
                if (!cJSON_AddItemToArray(arr, o) || !emit_add_time(o, "at", r->at) ||
                    !cJSON_AddStringToObject(o, "action", r->action) || !cJSON_AddStringToObject(o, "result", r->result)) {
                        cJSON_Delete(arr);
                        return NULL;
                }
        }
        return arr;
}

static cJSON *runtime_status(CheckRuntime *c, bool with_history, usec_t now) {
        PolicyConfig pc = policy_config(c->config);
        const RemediationRecord *newest = remediation_newest(c);
        cJSON *d = runtime_detail_new(c);
        bool ok = d && cJSON_AddStringToObject(d, "health", policy_health_to_string(c->policy.health)) &&
                  emit_add_time(d, "since", c->health_since) &&
                  cJSON_AddStringToObject(d, "phase", policy_phase_to_string(c->policy.phase)) &&
                  cJSON_AddStringToObject(d, "message", c->have_last ? c->last.message : "not run yet") &&
                  (!c->have_last || emit_add_time(d, "last_result_at", c->last_at)) && add_action(d, c->config) &&
                  cJSON_AddStringToObject(d, "last_action", newest ? newest->action : "") &&
                  cJSON_AddStringToObject(d, "last_action_result", newest ? newest->result : "") &&
                  (!newest || emit_add_time(d, "last_action_at", newest->at)) &&
                  cJSON_AddNumberToObject(d, "budget_left", policy_budget_left(&c->policy, &pc, now)) &&
                  cJSON_AddNumberToObject(d, "max_actions", c->config->max_actions);
        if (ok && with_history)
                ok = cJSON_AddItemToObject(d, "results", results_to_json(c)) &&
                     cJSON_AddItemToObject(d, "remediations", remediations_to_json(c));
        if (!ok) {
                cJSON_Delete(d);
                return NULL;
        }
        return d;
}

int monitor_status(Monitor *m, const char *check, cJSON **ret) {
        _cleanup_cjson_ cJSON *arr = cJSON_CreateArray();
        if (!arr)
                return -ENOMEM;
        usec_t now = now_usec(CLOCK_REALTIME);
        for (size_t i = 0; i < m->n_checks; i++) {
                CheckRuntime *c = &m->checks[i];
                if (check && strcmp(c->config->name, check) != 0)
                        continue;
                cJSON *d = runtime_status(c, check != NULL, now);
                if (!d || !cJSON_AddItemToArray(arr, d)) {
                        cJSON_Delete(d);
                        return -ENOMEM;
                }
        }
        if (check && cJSON_GetArraySize(arr) == 0)
                return -ENOENT;
        *ret = TAKE_PTR(arr);
        return 0;
}
