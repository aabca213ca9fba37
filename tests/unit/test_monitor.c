/* wrap: spawn_start */
/* test_monitor.c: the check runtime through its public API on a real sd-event loop, without a
 * system bus: a stale heartbeat fails a file_age check, the exec action fixes it and the
 * verification says so (events in order; the action's records written ahead of it and synced
 * after it is started); dry_run reports the action and takes none. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "config.h"
#include "heal/monitor.h"
#include "io/http.h"
#include "io/spawn.h"
#include "../lib/temp_dir.h"
#include "loop_test.h"

/* The order in which events are written (durably or ahead), actions started and written-ahead
 * events synced: "ahead Check Failed;ahead Remediation Started;action;sync;durable ...". */
static char steps[1024];

static void step(const char *what, const char *detail_type) {
        size_t n = strlen(steps);
        (void) snprintf(steps + n, sizeof steps - n, "%s%s%s;", what, detail_type ? " " : "", detail_type ?: "");
}

int __real_spawn_start(sd_event *e, char *const argv[], usec_t timeout, size_t max_output, spawn_done_fn done,
                       void *userdata, Spawn **ret);
int __wrap_spawn_start(sd_event *e, char *const argv[], usec_t timeout, size_t max_output, spawn_done_fn done,
                       void *userdata, Spawn **ret);
int __wrap_spawn_start(sd_event *e, char *const argv[], usec_t timeout, size_t max_output, spawn_done_fn done,
                       void *userdata, Spawn **ret) {
        step("action", NULL);
        return __real_spawn_start(e, argv, timeout, max_output, done, userdata, ret);
}

static int record_durable(void *userdata, const char *detail_type, cJSON *detail) {
        step("durable", detail_type);
        return event_log_record(userdata, detail_type, detail);
}

static int record_ahead(void *userdata, const char *detail_type, cJSON *detail) {
        step("ahead", detail_type);
        return event_log_record(userdata, detail_type, detail);
}

static int record_sync(void *userdata _unused_) {
        step("sync", NULL);
        return 0;
}

typedef struct Run {
        TempDir *dir;
        sd_event *event;
        Http *http;
        char heartbeat[256];
        EventLog events;
} Run;

static const cJSON *find_event(const Run *run, const char *detail_type) {
        return event_log_find(&run->events, detail_type, false);
}

static int setup(void **state) {
        Run *run = calloc(1, sizeof *run);
        assert_non_null(run);
        assert_int_equal(temp_dir_new("test_monitor", NULL, &run->dir), 0);
        snprintf(run->heartbeat, sizeof run->heartbeat, "%s/heartbeat", run->dir->path);
        /* A heartbeat an hour old: stale from the first probe on. */
        FILE *f = fopen(run->heartbeat, "w");
        assert_non_null(f);
        fclose(f);
        struct timeval old[2] = { { .tv_sec = time(NULL) - 3600 }, { .tv_sec = time(NULL) - 3600 } };
        assert_int_equal(utimes(run->heartbeat, old), 0);
        assert_int_equal(sd_event_new(&run->event), 0);
        assert_int_equal(http_new(run->event, &run->http), 0);
        *state = run;
        return 0;
}

static int teardown(void **state) {
        Run *run = *state;
        event_log_done(&run->events);
        http_free(run->http);
        sd_event_unref(run->event);
        temp_dir_free(run->dir);
        free(run);
        return 0;
}

static Config *beat_config(const Run *run) {
        char text[2048];
        snprintf(text, sizeof text,
                 "[agent]\nstate_dir = %s\n"
                 "[check beat]\ntype = file_age\npath = %s\nmax_age = 2s\ninterval = 1s\ntimeout = 900ms\n"
                 "action = exec\naction_command = /usr/bin/touch %s\nverify_timeout = 5s\n",
                 run->dir->path, run->heartbeat, run->heartbeat);
        return config_from_text(text);
}

/* Runs the loop until the event detail_type was emitted or timeout_s passed. */
static void run_until(const Run *run, const char *detail_type, unsigned timeout_s) {
        for (unsigned i = 0; i < timeout_s * 10 && !find_event(run, detail_type); i++)
                assert_true(sd_event_run(run->event, 100 * USEC_PER_MSEC) >= 0);
}

static Monitor *start_monitor(Run *run, const Config *c, bool dry_run) {
        MonitorContext ctx = {
                .event = run->event,
                .http = run->http,
                .state_dir = c->state_dir,
                .dry_run = dry_run,
                .emit = record_durable,
                .emit_ahead = record_ahead,
                .sync_events = record_sync,
                .userdata = &run->events,
        };
        Monitor *m = NULL;
        assert_int_equal(monitor_new(&ctx, c->checks, c->n_checks, &m), 0);
        return m;
}

static void test_stale_heartbeat_fixed_and_verified(void **state) {
        Run *run = *state;
        _cleanup_(config_freep) Config *c = beat_config(run);
        _cleanup_(monitor_freep) Monitor *m = start_monitor(run, c, false);

        steps[0] = 0;
        run_until(run, "Remediation Succeeded", 10);
        /* The action's records are with the kernel before it starts (a crash of heald cannot
         * forget it) and one sync follows the start (it does not wait for the disk). */
        const char *ahead = "ahead Check Failed;ahead Remediation Started;action;sync;";
        if (strncmp(steps, ahead, strlen(ahead)) != 0)
                fail_msg("expected the steps to begin with \"%s\", got \"%s\"", ahead, steps);
        assert_non_null(strstr(steps, "durable Remediation Succeeded;"));
        const char *order[] = { "Check Failed", "Remediation Started", "Remediation Succeeded" };
        size_t seen = 0;
        for (size_t i = 0; i < run->events.n && seen < ELEMENTSOF(order); i++)
                if (streq_ptr(run->events.types[i], order[seen]))
                        seen++;
        assert_int_equal(seen, ELEMENTSOF(order));

        const cJSON *started = find_event(run, "Remediation Started");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(started, "action")), "exec");
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(started, "dry_run")));
        struct stat st;
        assert_int_equal(stat(run->heartbeat, &st), 0);
        assert_true(st.st_mtime > time(NULL) - 60); /* the action touched it */

        unsigned ok = 0, failing = 0;
        monitor_counts(m, &ok, &failing);
        assert_int_equal(ok, 1);
        assert_int_equal(failing, 0);
        assert_int_equal(monitor_reset(m, "beat"), 0);
        assert_int_equal(monitor_reset(m, "no-such-check"), -ENOENT);
}

static void test_dry_run_reports_and_does_nothing(void **state) {
        Run *run = *state;
        _cleanup_(config_freep) Config *c = beat_config(run);
        _cleanup_(monitor_freep) Monitor *m = start_monitor(run, c, true);

        run_until(run, "Remediation Started", 10);
        const cJSON *started = find_event(run, "Remediation Started");
        assert_non_null(started);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(started, "dry_run")));
        struct stat st;
        assert_int_equal(stat(run->heartbeat, &st), 0);
        assert_true(st.st_mtime < time(NULL) - 600); /* still stale: nothing ran */
        unsigned ok = 0, failing = 0;
        monitor_counts(m, &ok, &failing);
        assert_int_equal(failing, 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_stale_heartbeat_fixed_and_verified, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dry_run_reports_and_does_nothing, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
