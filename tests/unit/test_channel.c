/* wrap: aws_call_start aws_call_cancel units_reboot units_cancel_jobs */
/* test_channel.c: the command channel through its public API on a real sd-event loop, with
 * AWS replaced at the aws_call_start()/aws_call_cancel() seam: the test answers each call
 * from an sd-event defer source, as the HTTP layer would from the loop. A received message
 * becomes a job and its message is deleted; a rejection is reported and deleted; a
 * redelivery is answered from the journal; after Ready For Stop and after
 * channel_stop_receiving() no ReceiveMessage follows, nor after Rebooting unless systemd refuses
 * the reboot (units_reboot() wrapped too); a prepare-stop waits while a local
 * remediation is under way (the monitor's check runtimes, set by hand), not for ever; a command
 * with a task token runs only once SendTaskHeartbeat says its run still waits. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

#include "aws/sqs.h"
#include "aws/states.h"
#include "commands/channel.h"
#include "config.h"
#include "events/outbox.h"
#include "../lib/temp_dir.h"
#include "fake_aws.h"
#include "heal/runtime.h"
#include "loop_test.h"

#define RECEIVE SQS_TARGET_RECEIVE_MESSAGE
#define CALL_WAIT (5 * USEC_PER_SEC)

typedef struct Run {
        LoopBed bed;
        Units *units; /* NULL: no system bus; set: systemd as the wrapped units_reboot() plays it */
        Config *config;
        EventLog events;
        /* A monitor with one check whose restart of web.service the tests set under way. */
        CheckConfig web;
        CheckRuntime checks[1];
        Monitor monitor;
} Run;

static void iso8601(time_t t, char buf[static 32]) {
        struct tm tm;
        strftime(buf, 32, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&t, &tm));
}

#define COMMAND_SIZE 256

/* A command as the fleet sends it, valid for valid_s seconds. */
static const char *command_valid_for(const char *command_id, const char *action, time_t valid_s,
                                     char buf[static COMMAND_SIZE]) {
        char issued[32], expires[32];
        iso8601(time(NULL), issued);
        iso8601(time(NULL) + valid_s, expires);
        assert_int_equal(format_bounded(buf, COMMAND_SIZE,
                                        "{\"command_id\":\"%s\",\"action\":\"%s\",\"instance_id\":\"i-0123456789abcdef0\","
                                        "\"issued_at\":\"%s\",\"expires_at\":\"%s\"}",
                                        command_id, action, issued, expires),
                         0);
        return buf;
}

static const char *command(const char *command_id, const char *action, char buf[static COMMAND_SIZE]) {
        return command_valid_for(command_id, action, 300, buf);
}

/* command() with a task token: a Step Functions run waits for its result. */
static const char *command_with_token(const char *command_id, const char *action, char buf[static COMMAND_SIZE]) {
        static const char token[] = ",\"task_token\":\"token-1\"}";
        command(command_id, action, buf);
        size_t n = strlen(buf);
        assert_true(n - 1 + sizeof token <= COMMAND_SIZE);
        memcpy(buf + n - 1, token, sizeof token);
        return buf;
}

/* A ReceiveMessage answer with one message; md5_ok false sends a wrong MD5OfBody. Caller frees. */
static char *receive_answer(const char *message_id, const char *body, bool md5_ok) {
        unsigned char md5[EVP_MAX_MD_SIZE];
        unsigned md5_len = 0;
        char hex[2 * EVP_MAX_MD_SIZE + 1] = "";
        assert_true(EVP_Digest(body, strlen(body), md5, &md5_len, EVP_md5(), NULL));
        for (unsigned i = 0; i < md5_len; i++)
                snprintf(hex + 2 * i, 3, "%02x", md5[i] ^ (md5_ok ? 0 : 0xff));
        cJSON *msg = cJSON_CreateObject(), *attributes = cJSON_AddObjectToObject(msg, "Attributes");
        cJSON_AddStringToObject(msg, "MessageId", message_id);
        cJSON_AddStringToObject(msg, "ReceiptHandle", message_id); /* one handle per message is enough here */
        cJSON_AddStringToObject(msg, "MD5OfBody", hex);
        cJSON_AddStringToObject(msg, "Body", body);
        cJSON_AddStringToObject(attributes, "ApproximateReceiveCount", "1");
        cJSON *root = cJSON_CreateObject();
        cJSON_AddItemToArray(cJSON_AddArrayToObject(root, "Messages"), msg);
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        assert_non_null(text);
        return text;
}

/* The next ReceiveMessage brings this one message. */
static void deliver(const char *message_id, const char *body, bool md5_ok) {
        _cleanup_free_ char *text = receive_answer(message_id, body, md5_ok);
        fake_aws_answer(fake_aws_wait_call(RECEIVE, CALL_WAIT), 0, 200, text);
}

static bool deleted(const char *receipt_handle) {
        for (size_t i = 0; i < fake_aws.n_calls; i++)
                if (strcmp(fake_aws.calls[i].target, SQS_TARGET_DELETE_MESSAGE) == 0 &&
                    strstr(fake_aws.calls[i].body, receipt_handle))
                        return true;
        return false;
}

static int setup(void **state) {
        Run *run = calloc(1, sizeof *run);
        assert_non_null(run);
        loop_bed_open(&run->bed, "test_channel");
        run->config = loop_bed_config(&run->bed,
                                      "[sqs]\nqueue_url = https://sqs.us-east-1.amazonaws.com/123456789012/heald\n"
                                      "wait_time = 1s\n"
                                      "[commands]\nallow = ping, prepare-stop\n");
        fake_aws_init(run->bed.event);
        run->web = (CheckConfig) { .name = (char *) "web", .type = CHECK_UNIT, .unit = (char *) "web.service",
                                   .action = CHECK_ACTION_RESTART_UNIT };
        run->checks[0] = (CheckRuntime) { .config = &run->web };
        run->monitor = (Monitor) { .checks = run->checks, .n_checks = ELEMENTSOF(run->checks) };
        *state = run;
        return 0;
}

static int teardown(void **state) {
        Run *run = *state;
        event_log_done(&run->events);
        fake_aws_done();
        config_free(run->config);
        loop_bed_close(&run->bed);
        free(run);
        return 0;
}

static Channel *start_channel(Run *run) {
        ChannelContext ctx = {
                .event = run->bed.event,
                .outbox = run->bed.outbox,
                .state_dir = run->bed.dir->path,
                .boot_id = "boot-1",
                .boot_marker = "marker-1",
                .units = run->units,
                .monitor = &run->monitor,
                .emit = event_log_record,
                .userdata = &run->events,
        };
        Channel *c = NULL;
        assert_int_equal(channel_new(&ctx, run->config, &c), 0);
        assert_int_equal(channel_start(c, "us-east-1", "i-0123456789abcdef0", "123456789012"), 0);
        return c;
}

static void test_message_becomes_job_and_redelivery_is_answered_from_the_journal(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];
        const char *ping = command("cmd-ping-1", "ping", buf);

        deliver("m-1", ping, true);
        fake_aws_wait_call(RECEIVE, CALL_WAIT); /* the job is done: polling again */
        assert_int_equal(event_log_count(&run->events, "Command Received"), 1);
        assert_int_equal(event_log_count(&run->events, "Command Succeeded"), 1);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(event_log_find(&run->events, "Command Succeeded", true), "command_id")),
                            "cmd-ping-1");
        assert_true(deleted("m-1"));

        /* The same command again (a lost DeleteMessage): reported again, not run again. */
        deliver("m-2", ping, true);
        fake_aws_wait_call(RECEIVE, CALL_WAIT);
        assert_int_equal(event_log_count(&run->events, "Command Received"), 1);
        assert_int_equal(event_log_count(&run->events, "Command Succeeded"), 2);
        assert_true(cJSON_IsTrue(cJSON_GetObjectItem(event_log_find(&run->events, "Command Succeeded", true), "redelivered")));
        assert_true(deleted("m-2"));
}

static void test_rejection_is_reported_and_deleted(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[2][COMMAND_SIZE];
        const char *ping = command("cmd-ping-2", "ping", buf[0]);
        const char *reboot = command("cmd-reboot", "reboot", buf[1]);

        deliver("m-corrupt", ping, false);
        fake_aws_wait_call(RECEIVE, CALL_WAIT);
        deliver("m-not-allowed", reboot, true);
        fake_aws_wait_call(RECEIVE, CALL_WAIT);
        assert_int_equal(event_log_count(&run->events, "Command Rejected"), 2);
        assert_int_equal(event_log_count(&run->events, "Command Received"), 0);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(event_log_find(&run->events, "Command Rejected", true), "message_id")),
                            "m-not-allowed");
        assert_true(deleted("m-corrupt"));
        assert_true(deleted("m-not-allowed"));
}

static void test_failed_poll_is_retried(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        fake_aws_answer(fake_aws_wait_call(RECEIVE, CALL_WAIT), -ETIMEDOUT, 0, "");
        fake_aws_wait_call(RECEIVE, CALL_WAIT); /* after a backoff of at most POLL_RETRY_BASE (1 s) */
        assert_int_equal(fake_aws_count(RECEIVE), 2);
}

static void test_no_message_taken_after_ready_for_stop(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];
        const char *stop = command("cmd-stop", "prepare-stop", buf);

        deliver("m-stop", stop, true);
        for (unsigned i = 0; i < 50 && event_log_count(&run->events, "Ready For Stop") == 0; i++)
                assert_true(sd_event_run(run->bed.event, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(event_log_count(&run->events, "Ready For Stop"), 1);
        assert_true(deleted("m-stop"));
        fake_aws_run_for(1500 * USEC_PER_MSEC); /* longer than wait_time: a poll would have started */
        assert_null(fake_aws_open_call(RECEIVE));
        assert_int_equal(fake_aws_count(RECEIVE), 1);
}

static void test_no_message_taken_once_stopping(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        FakeCall *poll = fake_aws_wait_call(RECEIVE, CALL_WAIT);
        channel_stop_receiving(c);
        assert_true(poll->cancelled);
        fake_aws_run_for(1500 * USEC_PER_MSEC);
        assert_int_equal(fake_aws_count(RECEIVE), 1);
}

/* systemd's side of a reboot: it takes the job (or refuses it with start_error), and the test
 * ends the job (done) as systemd would when the reboot does not happen. */
static struct {
        unsigned calls;
        int start_error;
        unit_job_fn done;
        void *userdata;
} fake_reboot;

int __wrap_units_reboot(Units *u, unit_job_fn done, void *userdata);
int __wrap_units_reboot(Units *u _unused_, unit_job_fn done, void *userdata) {
        fake_reboot.calls++;
        fake_reboot.done = done;
        fake_reboot.userdata = userdata;
        return fake_reboot.start_error;
}

void __wrap_units_cancel_jobs(Units *u, void *userdata);
void __wrap_units_cancel_jobs(Units *u _unused_, void *userdata) {
        if (fake_reboot.userdata == userdata)
                fake_reboot.done = NULL;
}

/* A channel that may reboot, with a system bus that systemd's side is played on. */
static Channel *start_rebooting_channel(Run *run, int start_error) {
        static int bus; /* only its address: the wrapped calls are all that use it */
        config_free(run->config);
        run->config = loop_bed_config(&run->bed,
                                      "[sqs]\nqueue_url = https://sqs.us-east-1.amazonaws.com/123456789012/heald\n"
                                      "wait_time = 1s\n"
                                      "[commands]\nallow = ping, reboot\n");
        run->units = (Units *) &bus;
        fake_reboot = (typeof(fake_reboot)) { .start_error = start_error };
        return start_channel(run);
}

/* A long poll open as the machine goes down would still take the fleet's next command in
 * SQS (its ping across the reboot) and hide it for the visibility timeout: none follows
 * Rebooting. systemd failing the reboot job gives heald its commands back. */
static void test_no_message_taken_after_rebooting_unless_systemd_fails_it(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_rebooting_channel(run, 0);
        char buf[COMMAND_SIZE];

        deliver("m-reboot", command("cmd-reboot-1", "reboot", buf), true);
        for (unsigned i = 0; i < 50 && event_log_count(&run->events, "Rebooting") == 0; i++)
                assert_true(sd_event_run(run->bed.event, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(event_log_count(&run->events, "Rebooting"), 1);
        assert_true(deleted("m-reboot"));
        assert_int_equal(fake_reboot.calls, 1);
        fake_aws_run_for(1500 * USEC_PER_MSEC); /* longer than wait_time: a poll would have started */
        assert_null(fake_aws_open_call(RECEIVE));
        assert_int_equal(fake_aws_count(RECEIVE), 1);

        assert_non_null(fake_reboot.done);
        fake_reboot.done("reboot.target", "failed", 0, NULL, fake_reboot.userdata);
        fake_aws_wait_call(RECEIVE, CALL_WAIT);
        assert_int_equal(fake_aws_count(RECEIVE), 2);
}

/* systemd refusing the reboot job outright: heald keeps taking commands. */
static void test_reboot_refused_by_systemd_keeps_taking_commands(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_rebooting_channel(run, -EPERM);
        char buf[COMMAND_SIZE];

        deliver("m-reboot", command("cmd-reboot-2", "reboot", buf), true);
        fake_aws_wait_call(RECEIVE, CALL_WAIT);
        assert_int_equal(event_log_count(&run->events, "Rebooting"), 1);
        assert_int_equal(fake_reboot.calls, 1);
        assert_int_equal(fake_aws_count(RECEIVE), 2);
}

/* Run the loop until an event of this type was recorded or timeout passed; whether it was. */
static bool run_until_event(Run *run, const char *type, usec_t timeout) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + timeout;
        while (event_log_count(&run->events, type) == 0 && now_usec(CLOCK_MONOTONIC) < end)
                assert_true(sd_event_run(run->bed.event, 50 * USEC_PER_MSEC) >= 0);
        return event_log_count(&run->events, type) > 0;
}

/* A prepare-stop names no unit of the remediation, but stopping the instance in the middle of
 * a restart and its verification is a double action: it waits until that settled. */
static void test_prepare_stop_waits_for_local_remediation(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];
        run->checks[0].policy.phase = POLICY_ACTING;

        deliver("m-stop", command("cmd-stop-wait", "prepare-stop", buf), true);
        run->checks[0].policy.phase = POLICY_VERIFYING; /* the restart is done, its verification not */
        assert_false(run_until_event(run, "Command Received", 2500 * USEC_PER_MSEC));
        assert_false(deleted("m-stop"));
        assert_null(fake_aws_open_call(RECEIVE)); /* held, not given back: no poll meanwhile */

        run->checks[0].policy.phase = POLICY_IDLE; /* verified */
        assert_true(run_until_event(run, "Ready For Stop", 5 * USEC_PER_SEC));
        assert_int_equal(event_log_count(&run->events, "Command Received"), 1);
        assert_true(deleted("m-stop"));
}

/* A remediation that stays under way longer than [commands] job_timeout + verify_timeout
 * does not hold the fleet's command for ever: it runs then. */
static void test_wait_for_local_remediation_is_bounded(void **state) {
        Run *run = *state;
        config_free(run->config);
        run->config = loop_bed_config(&run->bed,
                                      "[sqs]\nqueue_url = https://sqs.us-east-1.amazonaws.com/123456789012/heald\n"
                                      "wait_time = 1s\n"
                                      "[commands]\nallow = ping, prepare-stop\njob_timeout = 1s\nverify_timeout = 1s\n");
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];
        run->checks[0].policy.phase = POLICY_VERIFYING;

        deliver("m-stop", command("cmd-stop-bound", "prepare-stop", buf), true);
        usec_t t0 = now_usec(CLOCK_MONOTONIC);
        assert_true(run_until_event(run, "Ready For Stop", 6 * USEC_PER_SEC));
        assert_true(now_usec(CLOCK_MONOTONIC) - t0 >= 1900 * USEC_PER_MSEC);
        assert_true(deleted("m-stop"));
}

/* A command that expires while it waits is rejected then, not once the wait is over. */
static void test_command_expiring_while_waiting_is_rejected(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];
        run->checks[0].policy.phase = POLICY_ACTING;

        deliver("m-stop", command_valid_for("cmd-stop-expiring", "prepare-stop", 2, buf), true);
        assert_true(run_until_event(run, "Command Rejected", 5 * USEC_PER_SEC));
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(event_log_find(&run->events, "Command Rejected", true),
                                                                     "reason")),
                            "expired");
        assert_int_equal(event_log_count(&run->events, "Command Received"), 0);
        assert_true(deleted("m-stop"));
        assert_int_equal(run->checks[0].policy.phase, POLICY_ACTING);
}

/* The run that sent the prepare-stop has ended: rejected and deleted, never run, no task result. */
static void test_command_of_an_ended_run_is_rejected_not_run(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];

        deliver("m-stop", command_with_token("cmd-stop-stale", "prepare-stop", buf), true);
        FakeCall *asked = fake_aws_wait_call(STATES_TARGET_TASK_HEARTBEAT, CALL_WAIT);
        assert_non_null(strstr(asked->body, "token-1"));
        assert_int_equal(event_log_count(&run->events, "Command Received"), 0); /* not before the answer */
        fake_aws_answer(asked, 0, 400, "{\"__type\":\"com.amazonaws.swf.service.v2.model#TaskTimedOut\",\"message\":\"x\"}");
        assert_true(run_until_event(run, "Command Rejected", 2 * USEC_PER_SEC));
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(event_log_find(&run->events, "Command Rejected", true),
                                                                     "reason")),
                            "asker-gone");
        fake_aws_wait_call(RECEIVE, CALL_WAIT); /* not deaf: polling again */
        assert_int_equal(event_log_count(&run->events, "Command Received"), 0);
        assert_int_equal(event_log_count(&run->events, "Ready For Stop"), 0);
        assert_true(deleted("m-stop"));
        assert_int_equal(fake_aws_count(STATES_TARGET_TASK_FAILURE) + fake_aws_count(STATES_TARGET_TASK_SUCCESS), 0);
        assert_int_equal(fake_aws_count(STATES_TARGET_TASK_HEARTBEAT), 1); /* final: not asked again */
}

static void test_command_runs_once_its_run_is_said_to_wait(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];

        deliver("m-stop", command_with_token("cmd-stop-live", "prepare-stop", buf), true);
        fake_aws_answer(fake_aws_wait_call(STATES_TARGET_TASK_HEARTBEAT, CALL_WAIT), 0, 200, "{}");
        assert_true(run_until_event(run, "Ready For Stop", 5 * USEC_PER_SEC));
        assert_int_equal(event_log_count(&run->events, "Command Received"), 1);
        assert_non_null(fake_aws_wait_call(STATES_TARGET_TASK_SUCCESS, CALL_WAIT));
        assert_int_equal(fake_aws_count(STATES_TARGET_TASK_HEARTBEAT), 1);
}

/* Step Functions cannot be asked (here: refused, which no retry mends): not run unconfirmed,
 * hidden for [sqs] visibility_timeout and left to SQS. */
static void test_unconfirmed_command_is_given_back(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];

        deliver("m-stop", command_with_token("cmd-stop-unknown", "prepare-stop", buf), true);
        fake_aws_answer(fake_aws_wait_call(STATES_TARGET_TASK_HEARTBEAT, CALL_WAIT), 0, 400,
                        "{\"__type\":\"AccessDeniedException\",\"message\":\"not authorized\"}");
        FakeCall *hidden = fake_aws_wait_call(SQS_TARGET_CHANGE_VISIBILITY, CALL_WAIT);
        assert_non_null(strstr(hidden->body, "\"VisibilityTimeout\":60"));
        fake_aws_wait_call(RECEIVE, CALL_WAIT);
        assert_int_equal(event_log_count(&run->events, "Command Received"), 0);
        assert_int_equal(event_log_count(&run->events, "Command Rejected"), 0);
        assert_false(deleted("m-stop"));
}

/* heald stops while it asks: the question is dropped with the job, the message given back. */
static void test_stop_while_asking(void **state) {
        Run *run = *state;
        _cleanup_(channel_freep) Channel *c = start_channel(run);
        char buf[COMMAND_SIZE];

        deliver("m-stop", command_with_token("cmd-stop-asking", "prepare-stop", buf), true);
        FakeCall *asked = fake_aws_wait_call(STATES_TARGET_TASK_HEARTBEAT, CALL_WAIT);
        channel_stop_receiving(c);
        assert_true(asked->cancelled);
        FakeCall *back = fake_aws_wait_call(SQS_TARGET_CHANGE_VISIBILITY, CALL_WAIT);
        assert_non_null(strstr(back->body, "\"VisibilityTimeout\":0"));
        fake_aws_run_for(200 * USEC_PER_MSEC);
        assert_int_equal(event_log_count(&run->events, "Command Received"), 0);
        assert_int_equal(event_log_count(&run->events, "Command Rejected"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_message_becomes_job_and_redelivery_is_answered_from_the_journal,
                                                setup, teardown),
                cmocka_unit_test_setup_teardown(test_rejection_is_reported_and_deleted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_failed_poll_is_retried, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_message_taken_after_ready_for_stop, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_message_taken_once_stopping, setup, teardown),
                cmocka_unit_test_setup_teardown(test_no_message_taken_after_rebooting_unless_systemd_fails_it, setup,
                                                teardown),
                cmocka_unit_test_setup_teardown(test_reboot_refused_by_systemd_keeps_taking_commands, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prepare_stop_waits_for_local_remediation, setup, teardown),
                cmocka_unit_test_setup_teardown(test_wait_for_local_remediation_is_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_expiring_while_waiting_is_rejected, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_of_an_ended_run_is_rejected_not_run, setup, teardown),
                cmocka_unit_test_setup_teardown(test_command_runs_once_its_run_is_said_to_wait, setup, teardown),
                cmocka_unit_test_setup_teardown(test_unconfirmed_command_is_given_back, setup, teardown),
                cmocka_unit_test_setup_teardown(test_stop_while_asking, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
