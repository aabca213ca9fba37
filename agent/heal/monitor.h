/* heal/monitor.h: runs every configured check (timers for probes, D-Bus signals for units, the
 * journal for patterns), feeds each result to the check's policy, takes the actions the
 * policy allows, verifies them, and reports every step as an event. */
#pragma once

#include <cjson/cJSON.h>
#include <systemd/sd-event.h>

#include "config.h"
#include "events/emit.h"
#include "io/http.h"
#include "io/units.h"

typedef struct Monitor Monitor;

typedef struct MonitorContext {
        sd_event *event;
        Http *http;
        Units *units;          /* NULL when the system bus is unavailable: unit checks and unit
                                * actions then report that instead of running */
        const char *state_dir; /* policy.json lives here (copied: a reload frees its Config) */
        bool dry_run;
        emit_fn emit;
        void *userdata;
} MonitorContext;

/* checks/n: borrowed from the Config, which must outlive the monitor or the next reload. */
int monitor_new(const MonitorContext *ctx, const CheckConfig *checks, size_t n, Monitor **ret);
Monitor *monitor_free(Monitor *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Monitor *, monitor_free);

/* Replace the checks: a check whose name, type and target are unchanged keeps its state
 * (health, budget, escalation); others start fresh; removed ones stop. Verifications in
 * flight go on with the checks they had that remain. */
int monitor_reload(Monitor *m, const CheckConfig *checks, size_t n, bool dry_run);

/* heald reset CHECK: clear the escalation and the budget. -ENOENT: no such check. */
int monitor_reset(Monitor *m, const char *check);

/* Every check's state, for heald status. Caller owns *ret. */
int monitor_status(Monitor *m, cJSON **ret);
void monitor_counts(const Monitor *m, unsigned *ret_ok, unsigned *ret_failing);
/* A verification: the chosen checks run (probes at least every second) until each passed
 * recover_after times in a row (or, with once, until each produced one result), or the
 * timeout. done() gets the verdict and every check's latest result (an array of objects:
 * check, check_type, target, healthy, observed, threshold, message); it owns results. */
typedef struct MonitorVerify MonitorVerify;
typedef void (*monitor_verify_fn)(bool healthy, cJSON *results, void *userdata);

/* names: the checks to run (NULL: all). units: if set, only the checks that watch or act on
 * one of these units. No check selected: done() runs from the loop with healthy = true and an
 * empty array. -ENOENT: a named check does not exist. *ret is borrowed until done(). */
int monitor_verify(Monitor *m, char *const *names, char *const *units, usec_t timeout, bool once,
                   monitor_verify_fn done, void *userdata, MonitorVerify **ret);
void monitor_verify_cancel(MonitorVerify *v);

/* Whether a local remediation is running on this unit (commands wait for it). */
bool monitor_unit_busy(const Monitor *m, const char *unit);
