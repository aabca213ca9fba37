/* fake_aws.h: AWS for the unit tests of loop modules, at the aws_call_start()/aws_call_cancel()
 * seam (the test's first line: "wrap: aws_call_start aws_call_cancel"). Every call is
 * recorded; the test answers it, and the answer arrives from an sd-event defer source, as
 * http.c's would from the loop. Include after cmocka.h, in one file per test program. */
#pragma once

#include <stdio.h>
#include <string.h>

#include "aws/client.h"

#define FAKE_AWS_MAX_CALLS 64

/* One call a module started: what it asked, and the answer the test gave. */
typedef struct FakeCall {
        char target[64];
        char *body;
        aws_done_fn done;
        void *userdata;
        bool cancelled, answered;
        int error; /* a transport failure, as http.c reports one */
        long status;
        char *answer;
} FakeCall;

typedef struct FakeAws {
        sd_event *event;
        FakeCall calls[FAKE_AWS_MAX_CALLS];
        size_t n_calls;
} FakeAws;

static FakeAws fake_aws; /* the seam has no userdata of the test's */

int __wrap_aws_call_start(AwsClient *c, const AwsCallSpec *spec, aws_done_fn done, void *userdata, AwsCall **ret);
void __wrap_aws_call_cancel(AwsCall *call);

int __wrap_aws_call_start(AwsClient *c _unused_, const AwsCallSpec *spec, aws_done_fn done, void *userdata,
                          AwsCall **ret) {
        assert_true(fake_aws.n_calls < FAKE_AWS_MAX_CALLS);
        FakeCall *f = &fake_aws.calls[fake_aws.n_calls++];
        snprintf(f->target, sizeof f->target, "%s", spec->target);
        f->body = strndup(spec->body, spec->body_len);
        f->done = done;
        f->userdata = userdata;
        if (ret)
                *ret = (AwsCall *) f;
        return 0;
}

void __wrap_aws_call_cancel(AwsCall *call) {
        ((FakeCall *) call)->cancelled = true;
}

static inline void fake_aws_init(sd_event *event) {
        fake_aws = (FakeAws) { .event = event };
}

static inline void fake_aws_done(void) {
        for (size_t i = 0; i < fake_aws.n_calls; i++) {
                free(fake_aws.calls[i].body);
                free(fake_aws.calls[i].answer);
        }
        fake_aws = (FakeAws) {};
}

/* A non-2xx answer comes with its parsed error, as client.c gives it. */
static inline int fake_aws_on_answer(sd_event_source *s _unused_, void *userdata) {
        FakeCall *f = userdata;
        AwsError aws = {};
        bool refused = f->error == 0 && (f->status < 200 || f->status >= 300);
        if (refused)
                aws_error_parse(f->status, NULL, f->answer, strlen(f->answer), &aws);
        AwsResult res = { .error = f->error, .transport_message = "injected", .status = f->status, .body = f->answer,
                          .body_len = strlen(f->answer), .aws = refused ? &aws : NULL };
        f->answered = true;
        f->done(&res, f->userdata);
        return 0;
}

/* The answer arrives from the loop, never inside the test's own call. */
static inline void fake_aws_answer(FakeCall *f, int error, long status, const char *body) {
        f->error = error;
        f->status = status;
        f->answer = strdup(body);
        assert_int_equal(sd_event_add_defer(fake_aws.event, NULL, fake_aws_on_answer, f), 0);
}

static inline size_t fake_aws_count(const char *target) {
        size_t n = 0;
        for (size_t i = 0; i < fake_aws.n_calls; i++)
                n += strcmp(fake_aws.calls[i].target, target) == 0;
        return n;
}

/* The oldest call to target still waiting for an answer, or NULL. */
static inline FakeCall *fake_aws_open_call(const char *target) {
        for (size_t i = 0; i < fake_aws.n_calls; i++) {
                FakeCall *f = &fake_aws.calls[i];
                if (strcmp(f->target, target) == 0 && !f->answered && !f->cancelled && !f->answer)
                        return f;
        }
        return NULL;
}

/* Runs the loop until a call to target is open (fails the test after timeout). */
static inline FakeCall *fake_aws_wait_call(const char *target, usec_t timeout) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + timeout;
        for (;;) {
                FakeCall *f = fake_aws_open_call(target);
                if (f)
                        return f;
                if (now_usec(CLOCK_MONOTONIC) > end)
                        fail_msg("no %s call within %llu ms", target, (unsigned long long) (timeout / USEC_PER_MSEC));
                assert_true(sd_event_run(fake_aws.event, 50 * USEC_PER_MSEC) >= 0);
        }
}

/* Runs the loop for this long, whatever happens. */
static inline void fake_aws_run_for(usec_t duration) {
        usec_t end = now_usec(CLOCK_MONOTONIC) + duration;
        while (now_usec(CLOCK_MONOTONIC) < end)
                assert_true(sd_event_run(fake_aws.event, 50 * USEC_PER_MSEC) >= 0);
}
