/* test_monitor.c: the check runtime through its public API on a real sd-event loop, without a
 * system bus: a stale heartbeat fails a file_age check, the exec action fixes it and the
 * verification says so (events in order); dry_run reports the action and takes none. */
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
#include "../lib/temp_dir.h"

#define MAX_EVENTS 16

typedef struct Run {
        TempDir *dir;
        sd_event *event;
        Http *http;
        char heartbeat[256];
        char *types[MAX_EVENTS];
        cJSON *details[MAX_EVENTS];
        size_t n_events;
} Run;

static int record_event(void *userdata, const char *detail_type, cJSON *detail) {
        Run *run = userdata;
        if (run->n_events == MAX_EVENTS) {
                cJSON_Delete(detail);
                return -ENOBUFS;
        }
        run->types[run->n_events] = strdup(detail_type);
        run->details[run->n_events++] = detail;
        return 0;
}

static const cJSON *find_event(const Run *run, const char *detail_type) {
        for (size_t i = 0; i < run->n_events; i++)
                if (streq_ptr(run->types[i], detail_type))
                        return run->details[i];
        return NULL;
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
        for (size_t i = 0; i < run->n_events; i++) {
                free(run->types[i]);
                cJSON_Delete(run->details[i]);
        }
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
        Config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r = config_load_string(text, "heald.ini", &c, &error);
        if (r < 0)
                fail_msg("config: %s", error ? error : strerror(-r));
        return c;
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
                .emit = record_event,
                .userdata = run,
        };
        Monitor *m = NULL;
        assert_int_equal(monitor_new(&ctx, c->checks, c->n_checks, &m), 0);
        return m;
}

static void test_stale_heartbeat_fixed_and_verified(void **state) {
        Run *run = *state;
        _cleanup_(config_freep) Config *c = beat_config(run);
        _cleanup_(monitor_freep) Monitor *m = start_monitor(run, c, false);

        run_until(run, "Remediation Succeeded", 10);
        const char *order[] = { "Check Failed", "Remediation Started", "Remediation Succeeded" };
        size_t seen = 0;
        for (size_t i = 0; i < run->n_events && seen < ELEMENTSOF(order); i++)
                if (streq_ptr(run->types[i], order[seen]))
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
