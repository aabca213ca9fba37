/* heal/runtime.h: inside heal/ only: the monitor's check runtimes, which verify.c follows and
 * remedy.c asks whether an action is under way. Nothing outside heal/ includes this. */
#pragma once

#include "checks/check.h"
#include "heal/monitor.h"
#include "heal/policy.h"
#include "heal/verify.h"
#include "io/journal_watch.h"
#include "io/spawn.h"

/* heald status CHECK shows the last HISTORY_MAX results and remediations. */
#define HISTORY_MAX 10

typedef struct ResultRecord {
        usec_t at; /* wall clock */
        bool healthy;
        char observed[CHECK_TEXT_MAX];
} ResultRecord;

typedef struct RemediationRecord {
        usec_t at; /* wall clock of the start */
        char action[32];
        char result[256]; /* "running" until it ends */
} RemediationRecord;

typedef struct CheckRuntime CheckRuntime;
struct CheckRuntime {
        Monitor *monitor;
        const CheckConfig *config;
        CheckRuntime *after; /* the check this one depends on, or NULL */
        PolicyState policy;

        sd_event_source *timer;        /* next probe; units: re-judge while failed; journal: quiet period */
        sd_event_source *verify_timer;
        CheckProbe *probe;
        Spawn *action_exec;
        bool action_job;               /* a unit job is in flight */
        JournalWatch *journal;

        UnitState unit_state;
        UnitHistory unit_history;
        bool unit_known;

        CheckResult last;              /* without output */
        bool have_last;
        usec_t last_at;                /* wall clock of the last result */
        usec_t health_since;           /* wall clock of the last change of policy.health */
        /* Rings, oldest overwritten; n_* counts every entry ever added. */
        ResultRecord results[HISTORY_MAX];
        size_t n_results;
        RemediationRecord remediations[HISTORY_MAX];
        size_t n_remediations;
};

struct Monitor {
        MonitorContext ctx;
        char *state_dir; /* a copy: the Config it came from is freed by the next reload */
        CheckRuntime *checks;
        size_t n_checks;
        Verify *verifies;
        sd_event_source *policy_retry; /* armed while the last save of policy.json failed */
        bool writing_ahead;            /* an action is being started: its records go through emit_ahead */
};

/* Every check's event detail starts so: check, check_type, target, observed, threshold.
 * NULL when memory ran out; caller owns it. */
cJSON *runtime_detail_new(CheckRuntime *c);
/* Same name, type and target (a reload keeps such a check's state). */
bool runtime_same_check(const CheckConfig *a, const CheckConfig *b);
/* A verification starts: ask for a fresh result (probes now; units, journals from what they hold). */
void runtime_verify_begin(CheckRuntime *c);
/* Not a unit check, or its unit is active. */
bool runtime_running(const CheckRuntime *c);

/* verify.c's side: a result reaches the verifications that follow c; whether any does; the
 * verifications move to the runtimes rt[0..n) of a reload. */
void verify_observe(Monitor *m, CheckRuntime *c, bool healthy);
bool verify_includes(const Monitor *m, const CheckRuntime *c);
void verify_carry_over(Monitor *m, CheckRuntime *rt, size_t n);
