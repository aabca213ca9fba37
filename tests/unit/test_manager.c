/* wrap: aws_call_start aws_call_cancel imds_fetch imds_cancel */
/* test_manager.c: the manager's decisions through its public API on a real sd-event loop, with
 * the real outbox, publisher and monitor, AWS at the aws_call_start()/aws_call_cancel() seam
 * (fake_aws.h) and IMDS at imds_fetch()/imds_cancel() (answered from the loop, as http.c
 * would), and what heald tells systemd recorded instead of sent. What a fleet operator relies
 * on: the heartbeat number continues across a restart; events wait in the outbox until the
 * identity is known, then every event carries the instance's context; a failed identity read is
 * retried; STATUS= names the first three failing checks and says DRY RUN, and `heald status`
 * says the same; a reload applies a valid file at once and keeps running on an invalid one;
 * the metrics file is there from the start; a stop records Agent Stopping and exits once it
 * is sent (or at the deadline); send-event waits for the identity and reports EventBridge's
 * answer. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>

#include "aws/eventbridge.h"
#include "aws/imds.h"
#include "codec.h"
#include "config.h"
#include "events/outbox.h"
#include "heal/monitor.h"
#include "io/http.h"
#include "manager.h"
#include "../lib/temp_dir.h"
#include "fake_aws.h"
#include "loop_test.h"

#define PUT EVENTBRIDGE_TARGET_PUT_EVENTS
#define IDENTITY "/latest/dynamic/instance-identity/document"
#define ASG_TAG "/latest/meta-data/tags/instance/aws:autoscaling:groupName"
#define CALL_WAIT (5 * USEC_PER_SEC)
#define INSTANCE_ID "i-0123456789abcdef0"
#define INSTANCE_ARN "arn:aws:ec2:eu-west-1:123456789012:instance/" INSTANCE_ID
/* The manager's test writes its own document: the parser's realism is test_imds_doc's. */
#define IDENTITY_DOCUMENT                                                                                          \
        "{\"instanceId\":\"" INSTANCE_ID "\",\"region\":\"eu-west-1\",\"accountId\":\"123456789012\","             \
        "\"instanceType\":\"m7g.large\",\"availabilityZone\":\"eu-west-1b\",\"imageId\":\"ami-0abcdef1234567890\"}"

/* ---- IMDS at the imds_fetch()/imds_cancel() seam ---- */

#define FAKE_IMDS_MAX_FETCHES 64

typedef struct FakeFetch {
        char path[128];
        imds_fetch_fn done;
        void *userdata;
        bool cancelled, answered, answer_queued;
        int error;
        char *body;
} FakeFetch;

static struct {
        FakeFetch fetches[FAKE_IMDS_MAX_FETCHES];
        size_t n;
} fake_imds;

int __wrap_imds_fetch(Imds *imds, const char *path, imds_fetch_fn done, void *userdata);
void __wrap_imds_cancel(Imds *imds, void *userdata);

int __wrap_imds_fetch(Imds *imds _unused_, const char *path, imds_fetch_fn done, void *userdata) {
        assert_true(fake_imds.n < FAKE_IMDS_MAX_FETCHES);
        FakeFetch *f = &fake_imds.fetches[fake_imds.n++];
        snprintf(f->path, sizeof f->path, "%s", path);
        f->done = done;
        f->userdata = userdata;
        return 0;
}

void __wrap_imds_cancel(Imds *imds _unused_, void *userdata) {
        for (size_t i = 0; i < fake_imds.n; i++)
                if (fake_imds.fetches[i].userdata == userdata)
                        fake_imds.fetches[i].cancelled = true;
}

static void fake_imds_done(void) {
        for (size_t i = 0; i < fake_imds.n; i++)
                free(fake_imds.fetches[i].body);
        memset(&fake_imds, 0, sizeof fake_imds);
}

static int fake_imds_on_answer(sd_event_source *s _unused_, void *userdata) {
        FakeFetch *f = userdata;
        f->answered = true;
        if (!f->cancelled)
                f->done(f->error, f->body, f->body ? strlen(f->body) : 0, f->userdata);
        return 0;
}

static FakeFetch *fake_imds_open_fetch(const char *path) {
        for (size_t i = 0; i < fake_imds.n; i++) {
                FakeFetch *f = &fake_imds.fetches[i];
                if (strcmp(f->path, path) == 0 && !f->answer_queued && !f->cancelled)
                        return f;
        }
        return NULL;
}

/* Runs the loop until a fetch of path is open, then answers it from the loop: error 0 and body,
 * or a negative errno. */
static void fake_imds_answer(const char *path, int error, const char *body) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + CALL_WAIT;
        FakeFetch *f;
        while (!(f = fake_imds_open_fetch(path))) {
                if (now_usec(CLOCK_MONOTONIC) > end)
                        fail_msg("no IMDS fetch of %s", path);
                assert_true(sd_event_run(fake_aws.event, 50 * USEC_PER_MSEC) >= 0);
        }
        f->answer_queued = true;
        f->error = error;
        f->body = body ? strdup(body) : NULL;
        assert_int_equal(sd_event_add_defer(fake_aws.event, NULL, fake_imds_on_answer, f), 0);
        fake_aws_run_for(50 * USEC_PER_MSEC);
}

static size_t fake_imds_count(const char *path) {
        size_t n = 0;
        for (size_t i = 0; i < fake_imds.n; i++)
                n += strcmp(fake_imds.fetches[i].path, path) == 0;
        return n;
}

/* ---- the bed: a state directory with heald.ini, the loop, and the modules the manager routes between ---- */

#define NOTIFY_MAX 64

typedef struct Run {
        LoopBed bed;
        char config_path[512];
        char stale[512]; /* a file an hour old: a file_age check on it fails */
        Http *http;
        Credentials *credentials;
        AwsClient *aws; /* its calls go through the seam; it counts them for the metrics */
        Publisher *publisher;
        Monitor *monitor;
        Manager *manager;
        char *notified[NOTIFY_MAX];
        size_t n_notified;
} Run;

static void record_notify(void *userdata, const char *state) {
        Run *run = userdata;
        assert_true(run->n_notified < NOTIFY_MAX);
        run->notified[run->n_notified++] = strdup(state);
}

/* The latest state told to systemd that starts with prefix, or NULL. */
static const char *last_notified(const Run *run, const char *prefix) {
        for (size_t k = run->n_notified; k > 0; k--)
                if (strncmp(run->notified[k - 1], prefix, strlen(prefix)) == 0)
                        return run->notified[k - 1];
        return NULL;
}

static void notified_clear(Run *run) {
        for (size_t i = 0; i < run->n_notified; i++)
                free(run->notified[i]);
        run->n_notified = 0;
}

static void write_config(const Run *run, const char *sections) {
        FILE *f = fopen(run->config_path, "w");
        assert_non_null(f);
        fprintf(f, "[agent]\nstate_dir = %s\n%s", run->bed.dir->path, sections);
        assert_int_equal(fclose(f), 0);
}

static int setup(void **state) {
        /* What the environment would add to heald.ini ([aws] keys, credentials) stays out. */
        const char *env[] = { "AWS_REGION", "AWS_DEFAULT_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY",
                              "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_EVENTBRIDGE",
                              "AWS_EC2_METADATA_DISABLED", "AWS_EC2_METADATA_SERVICE_ENDPOINT" };
        for (size_t i = 0; i < ELEMENTSOF(env); i++)
                assert_int_equal(unsetenv(env[i]), 0);
        Run *run = calloc(1, sizeof *run);
        assert_non_null(run);
        loop_bed_open(&run->bed, "test_manager");
        assert_int_equal(bsprintf(run->config_path, "%s/heald.ini", run->bed.dir->path), 0);
        assert_int_equal(bsprintf(run->stale, "%s/stale", run->bed.dir->path), 0);
        FILE *f = fopen(run->stale, "w");
        assert_non_null(f);
        fclose(f);
        struct timeval old[2] = { { .tv_sec = time(NULL) - 3600 }, { .tv_sec = time(NULL) - 3600 } };
        assert_int_equal(utimes(run->stale, old), 0);
        fake_aws_init(run->bed.event);
        *state = run;
        return 0;
}

/* What a restart (or the end of the test) drops; the state directory and its outbox stay. */
static void stop_modules(Run *run) {
        run->monitor = monitor_free(run->monitor);
        run->publisher = publisher_free(run->publisher);
        run->manager = manager_free(run->manager);
        run->aws = aws_client_free(run->aws);
        run->credentials = credentials_free(run->credentials);
        run->http = http_free(run->http);
}

static int teardown(void **state) {
        Run *run = *state;
        stop_modules(run);
        notified_clear(run);
        fake_imds_done();
        fake_aws_done();
        loop_bed_close(&run->bed);
        free(run);
        return 0;
}

static Imds *const no_imds = (Imds *) &fake_imds; /* every use goes through the seam */

static void open_aws(Run *run) {
        assert_int_equal(http_new(run->bed.event, &run->http), 0);
        assert_int_equal(credentials_new(run->bed.event, no_imds, &run->credentials), 0);
        assert_int_equal(aws_client_new(run->http, run->credentials, &run->aws), 0);
}

/* The daemon as daemon.c builds it, from heald.ini in the state directory: the publisher,
 * the manager, Agent Started, the checks, then the timers and AWS. */
static void start(Run *run) {
        Config *config = NULL;
        _cleanup_free_ char *error = NULL;
        if (config_load_file(run->config_path, &config, &error) < 0)
                fail_msg("config: %s", error ? error : "?");
        open_aws(run);
        assert_int_equal(publisher_new(run->bed.event, config, run->bed.outbox, run->aws, &run->publisher), 0);
        ManagerContext ctx = {
                .event = run->bed.event,
                .imds = no_imds,
                .credentials = run->credentials,
                .aws = run->aws,
                .outbox = run->bed.outbox,
                .publisher = run->publisher,
                .boot_id = "boot-1",
                .notify = record_notify,
                .notify_userdata = run,
        };
        assert_int_equal(manager_new(&ctx, config, &run->manager), 0);
        assert_int_equal(manager_emit_started(run->manager), 0);
        MonitorContext mc = {
                .event = run->bed.event,
                .http = run->http,
                .state_dir = config->state_dir,
                .dry_run = config->dry_run,
                .emit = manager_emit_fn,
                .emit_ahead = manager_emit_ahead_fn,
                .sync_events = manager_sync_events_fn,
                .userdata = run->manager,
        };
        assert_int_equal(monitor_new(&mc, config->checks, config->n_checks, &run->monitor), 0);
        manager_set_modules(run->manager, run->monitor, NULL);
        assert_int_equal(manager_start(run->manager), 0);
        manager_status_update(run->manager);
}

/* The outbox's events of this type, oldest first (details; caller frees the array). */
static cJSON *outbox_events(const Run *run, const char *detail_type) {
        uint64_t ids[256];
        size_t n = outbox_list(run->bed.outbox, 0, ids, ELEMENTSOF(ids));
        cJSON *found = cJSON_CreateArray();
        assert_non_null(found);
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *data = NULL;
                size_t len;
                assert_int_equal(outbox_read(run->bed.outbox, ids[i], &data, &len), 0);
                cJSON *record = cJSON_ParseWithLength(data, len);
                assert_non_null(record);
                if (streq_ptr(cJSON_GetStringValue(cJSON_GetObjectItem(record, "type")), detail_type))
                        cJSON_AddItemToArray(found, cJSON_DetachItemFromObject(record, "detail"));
                cJSON_Delete(record);
        }
        return found;
}

static size_t outbox_count_of(const Run *run, const char *detail_type) {
        _cleanup_cjson_ cJSON *events = outbox_events(run, detail_type);
        return (size_t) cJSON_GetArraySize(events);
}

static void run_until_events(const Run *run, const char *detail_type, size_t n) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + CALL_WAIT;
        while (outbox_count_of(run, detail_type) < n) {
                if (now_usec(CLOCK_MONOTONIC) > end)
                        fail_msg("fewer than %zu %s events", n, detail_type);
                assert_true(sd_event_run(run->bed.event, 50 * USEC_PER_MSEC) >= 0);
        }
}

static double number(const cJSON *o, const char *key) {
        const cJSON *v = cJSON_GetObjectItem(o, key);
        assert_true(cJSON_IsNumber(v));
        return cJSON_GetNumberValue(v);
}

static const char *string(const cJSON *o, const char *key) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItem(o, key));
        assert_non_null(s);
        return s;
}

/* ---- heartbeats ---- */

static void test_heartbeat_seq_continues_across_restart(void **state) {
        Run *run = *state;
        write_config(run, "heartbeat_interval = 50ms\n");
        start(run);
        run_until_events(run, "Agent Heartbeat", 2);
        stop_modules(run);
        size_t before = outbox_count_of(run, "Agent Heartbeat");

        start(run); /* heald restarted on the same state directory */
        run_until_events(run, "Agent Heartbeat", before + 1);
        _cleanup_cjson_ cJSON *beats = outbox_events(run, "Agent Heartbeat");
        for (size_t i = 0; i <= before; i++)
                assert_int_equal((size_t) number(cJSON_GetArrayItem(beats, (int) i), "seq"), i + 1);

        /* The number on disk is never behind one that was sent. */
        char path[600];
        _cleanup_free_ char *seq = NULL;
        assert_int_equal(bsprintf(path, "%s/heartbeat.seq", run->bed.dir->path), 0);
        assert_int_equal(read_file_full(path, 64, &seq, NULL), 0);
        assert_true(strtoull(seq, NULL, 10) >= before + 1);
}

static void test_corrupt_heartbeat_seq_starts_again_at_one(void **state) {
        Run *run = *state;
        write_config(run, "heartbeat_interval = 50ms\n");
        assert_int_equal(write_file_atomic(run->bed.dir->path, "heartbeat.seq", "x7\n", 3), 0);
        start(run);
        run_until_events(run, "Agent Heartbeat", 1);
        _cleanup_cjson_ cJSON *beats = outbox_events(run, "Agent Heartbeat");
        assert_int_equal((int) number(cJSON_GetArrayItem(beats, 0), "seq"), 1);
}

/* ---- identity and the instance context ---- */

static void test_events_wait_for_the_identity_then_carry_the_instance_context(void **state) {
        Run *run = *state;
        write_config(run, "heartbeat_interval = 0\n");
        start(run);

        /* Before IMDS answers: recorded without an instance, not sent, and STATUS= says why. */
        fake_aws_run_for(300 * USEC_PER_MSEC);
        _cleanup_cjson_ cJSON *started = outbox_events(run, "Agent Started");
        assert_int_equal(cJSON_GetArraySize(started), 1);
        assert_false(cJSON_HasObjectItem(cJSON_GetArrayItem(started, 0), "instance"));
        assert_string_equal(string(cJSON_GetArrayItem(started, 0), "boot_id"), "boot-1");
        assert_int_equal(fake_aws_count(PUT), 0);
        assert_non_null(strstr(last_notified(run, "STATUS="), "; waiting for the IMDS identity"));

        /* The identity: what waited goes out, its resource the instance's ARN. */
        fake_imds_answer(IDENTITY, 0, IDENTITY_DOCUMENT);
        FakeCall *put = fake_aws_wait_call(PUT, CALL_WAIT);
        assert_non_null(strstr(put->body, "Agent Started"));
        assert_non_null(strstr(put->body, INSTANCE_ARN));
        assert_non_null(strstr(last_notified(run, "STATUS="), "; publishing"));

        /* From now on every event carries the instance's context. */
        assert_int_equal(manager_emit(run->manager, "Test Event", cJSON_CreateObject()), 0);
        _cleanup_cjson_ cJSON *tests = outbox_events(run, "Test Event");
        const cJSON *instance = cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 0), "instance");
        assert_string_equal(string(instance, "id"), INSTANCE_ID);
        assert_string_equal(string(instance, "type"), "m7g.large");
        assert_string_equal(string(instance, "availability_zone"), "eu-west-1b");
        assert_string_equal(string(instance, "ami"), "ami-0abcdef1234567890");
        assert_false(cJSON_HasObjectItem(instance, "auto_scaling_group"));

        /* The Auto Scaling group, where IMDS shows tags, joins the context. */
        fake_imds_answer(ASG_TAG, 0, "web-fleet");
        assert_int_equal(manager_emit(run->manager, "Test Event", cJSON_CreateObject()), 0);
        /* A detail that names an instance itself keeps its own. */
        cJSON *own = cJSON_CreateObject();
        cJSON_AddStringToObject(cJSON_AddObjectToObject(own, "instance"), "id", "i-other");
        assert_int_equal(manager_emit(run->manager, "Test Event", own), 0);
        cJSON_Delete(tests);
        tests = outbox_events(run, "Test Event");
        assert_string_equal(string(cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 1), "instance"), "auto_scaling_group"),
                            "web-fleet");
        const cJSON *kept = cJSON_GetObjectItem(cJSON_GetArrayItem(tests, 2), "instance");
        assert_string_equal(string(kept, "id"), "i-other");
        assert_int_equal(cJSON_GetArraySize(kept), 1);
}

static void test_failed_identity_read_is_retried(void **state) {
        Run *run = *state;
        write_config(run, "heartbeat_interval = 0\n");
        start(run);
        fake_imds_answer(IDENTITY, -ETIMEDOUT, NULL);
        fake_imds_answer(IDENTITY, 0, "{\"instanceId\":\"not-an-id\"}"); /* after at most 1 s */
        assert_int_equal(fake_imds_count(IDENTITY), 2);
        assert_non_null(strstr(last_notified(run, "STATUS="), "; waiting for the IMDS identity"));
        fake_imds_answer(IDENTITY, 0, IDENTITY_DOCUMENT); /* after at most 2 s */
        fake_aws_wait_call(PUT, CALL_WAIT);
        assert_int_equal(fake_imds_count(IDENTITY), 3);
}

/* ---- STATUS= and heald status ---- */

static void test_status_names_the_first_three_failing_checks_and_says_dry_run(void **state) {
        Run *run = *state;
        char checks[4096] = "heartbeat_interval = 0\ndry_run = true\n";
        const char *names[] = { "api", "db", "queue", "worker" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                char check[600];
                assert_int_equal(bsprintf(check,
                                          "[check %s]\ntype = file_age\npath = %s\nmax_age = 60s\ninterval = 1s\ntimeout = 500ms\n"
                                          "fail_after = 1\n",
                                          names[i], run->stale),
                                 0);
                strncat(checks, check, sizeof checks - strlen(checks) - 1);
        }
        write_config(run, checks);
        start(run);
        run_until_events(run, "Check Failed", 4);
        manager_status_update(run->manager);

        size_t depth = outbox_count(run->bed.outbox);
        char expected[512];
        assert_int_equal(bsprintf(expected,
                                  "STATUS=DRY RUN (no action is taken): checks: 0 ok, 4 failing (api, db, queue, +1 more); "
                                  "outbox %zu events; waiting for the IMDS identity",
                                  depth),
                         0);
        assert_string_equal(last_notified(run, "STATUS="), expected);

        /* heald status: the same facts, as JSON. */
        _cleanup_cjson_ cJSON *status = NULL;
        assert_int_equal(manager_control_request("status", &status, run->manager), 0);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(status, "dry_run")));
        assert_true(cJSON_IsFalse(cJSON_GetObjectItem(status, "publishing")));
        assert_int_equal((size_t) number(status, "outbox_depth"), depth);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(status, "checks")), 4);
        assert_string_equal(string(status, "version"), HEALD_VERSION);

        _cleanup_cjson_ cJSON *one = NULL, *reset = NULL;
        assert_int_equal(manager_control_request("status db", &one, run->manager), 0);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(one, "checks")), 1);
        assert_int_equal(manager_control_request("reset db", &reset, run->manager), 0);
        assert_string_equal(string(reset, "reset"), "db");
        cJSON *none = NULL;
        assert_int_equal(manager_control_request("reset no-such-check", &none, run->manager), -ENOENT);
        assert_int_equal(manager_control_request("restart everything", &none, run->manager), -EINVAL);
        assert_null(none);
}

/* ---- the metrics file ---- */

static void test_metrics_textfile_is_written_at_start(void **state) {
        Run *run = *state;
        char sections[700], path[600];
        assert_int_equal(bsprintf(path, "%s/metrics/heald.prom", run->bed.dir->path), 0);
        assert_int_equal(bsprintf(sections, "heartbeat_interval = 0\ndry_run = true\n[metrics]\ntextfile = %s\n", path), 0);
        write_config(run, sections);
        char dir[600];
        assert_int_equal(bsprintf(dir, "%s/metrics", run->bed.dir->path), 0);
        assert_int_equal(mkdir(dir, 0755), 0);
        start(run);
        fake_aws_run_for(300 * USEC_PER_MSEC);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(read_file_full(path, 1024 * 1024, &text, NULL), 0);
        assert_non_null(strstr(text, "\nheald_dry_run 1\n"));
        assert_non_null(strstr(text, "\nheald_outbox_events 1\n")); /* Agent Started, waiting for the identity */
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0644); /* for the node exporter's user */
}

/* ---- reload ---- */

static void test_reload_applies_a_valid_file_and_keeps_running_on_an_invalid_one(void **state) {
        Run *run = *state;
        char check[600];
        assert_int_equal(bsprintf(check, "[check old]\ntype = file_age\npath = %s\nmax_age = 2h\n", run->stale), 0);
        write_config(run, check);
        start(run);
        const Config *before = manager_config(run->manager);
        assert_int_equal(before->n_checks, 1);

        /* Valid: new checks, dry run and a heartbeat interval, at once. */
        char sections[1200];
        assert_int_equal(bsprintf(sections,
                                  "heartbeat_interval = 50ms\ndry_run = true\n"
                                  "[check old]\ntype = file_age\npath = %s\nmax_age = 2h\n"
                                  "[check new]\ntype = file_age\npath = %s\nmax_age = 2h\n",
                                  run->stale, run->stale),
                         0);
        write_config(run, sections);
        notified_clear(run);
        assert_int_equal(manager_reload(run->manager), 0);
        assert_true(run->n_notified >= 3);
        assert_string_equal(run->notified[0], "RELOADING=1");
        assert_string_equal(run->notified[1], "READY=1");
        assert_non_null(strstr(last_notified(run, "STATUS="), "DRY RUN (no action is taken): checks: "));
        const Config *after = manager_config(run->manager);
        assert_int_equal(after->n_checks, 2);
        assert_true(after->dry_run);
        _cleanup_cjson_ cJSON *status = NULL;
        assert_int_equal(manager_control_request("status", &status, run->manager), 0);
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItem(status, "checks")), 2);
        run_until_events(run, "Agent Heartbeat", 1); /* the new interval, not the 300 s default */

        /* Invalid: logged, the running configuration stays, systemd hears READY=1 again. */
        write_config(run, "heartbeat_interval = soon\n");
        notified_clear(run);
        assert_int_equal(manager_reload(run->manager), 0);
        assert_ptr_equal(manager_config(run->manager), after);
        assert_int_equal(run->n_notified, 2);
        assert_string_equal(run->notified[0], "RELOADING=1");
        assert_string_equal(run->notified[1], "READY=1");
}

/* ---- stopping ---- */

/* Runs the loop until it exits (fails the test after timeout); returns how long it took. */
static usec_t run_until_exit(const Run *run, usec_t timeout) {
        usec_t start_at = now_usec(CLOCK_MONOTONIC);
        while (sd_event_get_state(run->bed.event) != SD_EVENT_FINISHED) {
                if (now_usec(CLOCK_MONOTONIC) > start_at + timeout)
                        fail_msg("the loop did not exit");
                assert_true(sd_event_run(run->bed.event, 50 * USEC_PER_MSEC) >= 0);
                FakeCall *put = fake_aws_open_call(PUT);
                if (put) /* EventBridge takes everything */
                        fake_aws_answer(put, 0, 200, "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"e\"}]}");
        }
        return now_usec(CLOCK_MONOTONIC) - start_at;
}

static void test_stop_records_agent_stopping_and_exits_once_it_is_sent(void **state) {
        Run *run = *state;
        write_config(run, "heartbeat_interval = 0\n");
        start(run);
        fake_imds_answer(IDENTITY, 0, IDENTITY_DOCUMENT);
        fake_aws_answer(fake_aws_wait_call(PUT, CALL_WAIT), 0, 200,
                        "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"e\"}]}");
        fake_aws_run_for(100 * USEC_PER_MSEC);
        assert_int_equal(outbox_count(run->bed.outbox), 0);

        assert_int_equal(manager_stop(run->manager, SIGTERM), 0);
        assert_string_equal(last_notified(run, "STOPPING=1"), "STOPPING=1\nSTATUS=Stopping: sending what is in flight");
        _cleanup_cjson_ cJSON *stopping = outbox_events(run, "Agent Stopping");
        assert_int_equal(cJSON_GetArraySize(stopping), 1);
        assert_string_equal(string(cJSON_GetArrayItem(stopping, 0), "reason"), "SIGTERM");
        assert_string_equal(string(cJSON_GetObjectItem(cJSON_GetArrayItem(stopping, 0), "instance"), "id"), INSTANCE_ID);
        assert_true(run_until_exit(run, CALL_WAIT) < USEC_PER_SEC); /* sent: no wait for the deadline */
        assert_int_equal(outbox_count(run->bed.outbox), 0);
}

static void test_stop_without_aws_exits_at_the_deadline_and_keeps_the_events(void **state) {
        Run *run = *state;
        write_config(run, "heartbeat_interval = 0\n");
        start(run);
        assert_int_equal(manager_stop(run->manager, SIGINT), 0);
        usec_t took = run_until_exit(run, CALL_WAIT);
        assert_true(took >= 1900 * USEC_PER_MSEC && took < 3 * USEC_PER_SEC);
        _cleanup_cjson_ cJSON *stopping = outbox_events(run, "Agent Stopping");
        assert_string_equal(string(cJSON_GetArrayItem(stopping, 0), "reason"), "SIGINT");
        assert_int_equal(outbox_count(run->bed.outbox), 2); /* sent at the next start */
}

/* ---- send-event ---- */

static Manager *send_event_manager(Run *run) {
        write_config(run, "");
        Config *config = NULL;
        assert_int_equal(config_load_file(run->config_path, &config, NULL), 0);
        open_aws(run);
        ManagerContext ctx = {
                .event = run->bed.event,
                .imds = no_imds,
                .credentials = run->credentials,
                .aws = run->aws,
                .boot_id = "boot-1",
                .notify = record_notify,
                .notify_userdata = run,
        };
        assert_int_equal(manager_new(&ctx, config, &run->manager), 0);
        return run->manager;
}

static void test_send_event_waits_for_the_identity_and_reports_the_answer(void **state) {
        Run *run = *state;
        Manager *m = send_event_manager(run);
        assert_int_equal(manager_send_event_start(m, "Deploy Finished", "{\"release\":\"v42\"}"), 0);
        fake_aws_run_for(200 * USEC_PER_MSEC);
        assert_int_equal(fake_aws_count(PUT), 0);
        assert_int_equal(manager_send_event_result(m), 1); /* pending */

        fake_imds_answer(IDENTITY, 0, IDENTITY_DOCUMENT);
        FakeCall *put = fake_aws_wait_call(PUT, CALL_WAIT);
        _cleanup_cjson_ cJSON *body = cJSON_Parse(put->body);
        const cJSON *entry = cJSON_GetArrayItem(cJSON_GetObjectItem(body, "Entries"), 0);
        assert_string_equal(string(entry, "DetailType"), "Deploy Finished");
        assert_string_equal(string(entry, "Detail"), "{\"release\":\"v42\"}"); /* as given, nothing added */
        assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(cJSON_GetObjectItem(entry, "Resources"), 0)),
                            INSTANCE_ARN);
        fake_aws_answer(put, 0, 200, "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"e\"}]}");
        run_until_exit(run, CALL_WAIT);
        assert_int_equal(manager_send_event_result(m), 0); /* heald send-event exits 0 */
}

static void test_send_event_refuses_a_detail_that_is_not_an_object(void **state) {
        Run *run = *state;
        Manager *m = send_event_manager(run);
        assert_int_equal(manager_send_event_start(m, "Deploy Finished", "[1]"), -EINVAL);
        assert_int_equal(manager_send_event_start(m, "", "{}"), -EINVAL);
        assert_int_equal(fake_imds.n, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_heartbeat_seq_continues_across_restart, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_heartbeat_seq_starts_again_at_one, setup, teardown),
                cmocka_unit_test_setup_teardown(test_events_wait_for_the_identity_then_carry_the_instance_context, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_failed_identity_read_is_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_status_names_the_first_three_failing_checks_and_says_dry_run, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_metrics_textfile_is_written_at_start, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload_applies_a_valid_file_and_keeps_running_on_an_invalid_one,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_records_agent_stopping_and_exits_once_it_is_sent, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_stop_without_aws_exits_at_the_deadline_and_keeps_the_events, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_send_event_waits_for_the_identity_and_reports_the_answer, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_send_event_refuses_a_detail_that_is_not_an_object, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
