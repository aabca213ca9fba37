/* wrap: aws_call_start aws_call_cancel */
/* test_publisher.c: the publisher through its public API on a real sd-event loop, with AWS at
 * the aws_call_start()/aws_call_cancel() seam (fake_aws.h): the outbox goes out in batches of
 * at most 10; an accepted entry leaves the outbox, an entry that failed transiently stays and
 * is sent again; a refusal an operator must fix waits auth_retry_interval; idle is said once
 * the outbox is empty. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "aws/eventbridge.h"
#include "config.h"
#include "events/event.h"
#include "events/publisher.h"
#include "../lib/temp_dir.h"
#include "fake_aws.h"
#include "loop_test.h"

#define PUT EVENTBRIDGE_TARGET_PUT_EVENTS
#define CALL_WAIT (5 * USEC_PER_SEC)

typedef struct Run {
        LoopBed bed;
        Config *config;
        Publisher *publisher;
        unsigned idle;
} Run;

static void on_idle(void *userdata) {
        Run *run = userdata;
        run->idle++;
}

static int setup(void **state) {
        Run *run = calloc(1, sizeof *run);
        assert_non_null(run);
        loop_bed_open(&run->bed, "test_publisher");
        run->config = loop_bed_config(
                &run->bed, "[eventbridge]\nretry_base = 10ms\nretry_max = 50ms\nauth_retry_interval = 1s\n");
        fake_aws_init(run->bed.event);
        assert_int_equal(publisher_new(run->bed.event, run->config, run->bed.outbox, NULL, &run->publisher), 0);
        publisher_set_idle_callback(run->publisher, on_idle, run);
        *state = run;
        return 0;
}

static int teardown(void **state) {
        Run *run = *state;
        publisher_free(run->publisher);
        fake_aws_done();
        config_free(run->config);
        loop_bed_close(&run->bed);
        free(run);
        return 0;
}

static void append_events(Run *run, size_t n) {
        for (size_t i = 0; i < n; i++) {
                cJSON *detail = cJSON_CreateObject();
                assert_non_null(cJSON_AddNumberToObject(detail, "seq", (double) i));
                _cleanup_free_ char *record = NULL;
                assert_int_equal(event_record_encode("Agent Heartbeat", detail, now_usec(CLOCK_REALTIME), &record), 0);
                cJSON_Delete(detail);
                uint64_t id;
                assert_int_equal(outbox_append(run->bed.outbox, record, strlen(record), &id), 0);
        }
}

static void start(Run *run) {
        assert_int_equal(publisher_set_target(run->publisher, "us-east-1",
                                              "arn:aws:ec2:us-east-1:123456789012:instance/i-0123456789abcdef0"),
                         0);
        publisher_kick(run->publisher);
}

static size_t entries_of(const FakeCall *f) {
        cJSON *body = cJSON_Parse(f->body);
        size_t n = (size_t) cJSON_GetArraySize(cJSON_GetObjectItem(body, "Entries"));
        cJSON_Delete(body);
        return n;
}

/* A PutEvents answer for n entries: error_code NULL accepts them all, else entry 0 fails
 * with it and the others are accepted. */
static void answer_put(FakeCall *f, size_t n, const char *error_code) {
        cJSON *root = cJSON_CreateObject(), *entries = cJSON_AddArrayToObject(root, "Entries");
        cJSON_AddNumberToObject(root, "FailedEntryCount", error_code ? 1 : 0);
        for (size_t i = 0; i < n; i++) {
                cJSON *e = cJSON_CreateObject();
                if (i == 0 && error_code) {
                        cJSON_AddStringToObject(e, "ErrorCode", error_code);
                        cJSON_AddStringToObject(e, "ErrorMessage", "injected");
                } else
                        cJSON_AddStringToObject(e, "EventId", "e");
                cJSON_AddItemToArray(entries, e);
        }
        _cleanup_free_ char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        fake_aws_answer(f, 0, 200, text);
}

static void run_until_idle(Run *run) {
        for (unsigned i = 0; i < 100 && run->idle == 0; i++)
                assert_true(sd_event_run(run->bed.event, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(run->idle, 1);
}

static void test_batches_of_ten_accepted_leave_the_outbox(void **state) {
        Run *run = *state;
        append_events(run, 12);
        start(run);
        /* Both in flight at once (up to 4 may be). */
        for (unsigned i = 0; i < 100 && fake_aws_count(PUT) < 2; i++)
                assert_true(sd_event_run(run->bed.event, 50 * USEC_PER_MSEC) >= 0);
        assert_int_equal(fake_aws.n_calls, 2);
        FakeCall *first = &fake_aws.calls[0], *second = &fake_aws.calls[1];
        assert_int_equal(entries_of(first), 10);
        assert_int_equal(entries_of(second), 2);
        answer_put(first, 10, NULL);
        answer_put(second, 2, NULL);
        run_until_idle(run);
        assert_int_equal(outbox_count(run->bed.outbox), 0);
        assert_int_equal(fake_aws_count(PUT), 2);
}

static void test_transient_failure_keeps_the_entry(void **state) {
        Run *run = *state;
        append_events(run, 3);
        start(run);
        answer_put(fake_aws_wait_call(PUT, CALL_WAIT), 3, "InternalFailure");
        FakeCall *retry = fake_aws_wait_call(PUT, CALL_WAIT); /* after a backoff of at most retry_max */
        assert_int_equal(outbox_count(run->bed.outbox), 1);
        assert_int_equal(entries_of(retry), 1);
        answer_put(retry, 1, NULL);
        run_until_idle(run);
        assert_int_equal(outbox_count(run->bed.outbox), 0);
}

static void test_refusal_waits_auth_retry_interval(void **state) {
        Run *run = *state;
        append_events(run, 1);
        start(run);
        answer_put(fake_aws_wait_call(PUT, CALL_WAIT), 1, "AccessDeniedException");
        fake_aws_run_for(700 * USEC_PER_MSEC); /* a transient backoff (retry_max 50ms) would have retried */
        assert_int_equal(fake_aws_count(PUT), 1);
        assert_int_equal(outbox_count(run->bed.outbox), 1);
        publisher_kick(run->publisher); /* new events do not cut the wait short */
        fake_aws_run_for(100 * USEC_PER_MSEC);
        assert_int_equal(fake_aws_count(PUT), 1);
        answer_put(fake_aws_wait_call(PUT, 2 * USEC_PER_SEC), 1, NULL); /* after auth_retry_interval (1 s) */
        run_until_idle(run);
        assert_int_equal(outbox_count(run->bed.outbox), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_batches_of_ten_accepted_leave_the_outbox, setup, teardown),
                cmocka_unit_test_setup_teardown(test_transient_failure_keeps_the_entry, setup, teardown),
                cmocka_unit_test_setup_teardown(test_refusal_waits_auth_retry_interval, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
