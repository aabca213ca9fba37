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

#include "heal/verify.h"


typedef struct MonitorContext {
        sd_event *event;
        Http *http;
        Units *units;          /* NULL when the system bus is unavailable: unit checks and unit
                                * actions then report that instead of running */
        const char *state_dir; /* policy.json lives here (copied: a reload frees its Config) */
        bool dry_run;
        emit_fn emit; /* durable on return */
        /* An action's records: written ahead (with the kernel on return, so heald's own death
         * cannot lose them) and made durable by sync_events once the action is handed over. */
        emit_fn emit_ahead;
        emit_sync_fn sync_events;
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

/* Every check's state (check NULL), or one check's with its last results and remediations,
 * for heald status: an array; caller owns *ret. -ENOENT: no such check. */
int monitor_status(Monitor *m, const char *check, cJSON **ret);
void monitor_counts(const Monitor *m, unsigned *ret_ok, unsigned *ret_failing);
/* The failing checks' names for STATUS=: the first max, then "+N more"; "" when none. */
void monitor_failing_names(const Monitor *m, size_t max, char *buf, size_t size);
