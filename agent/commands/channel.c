/* commands/channel.c: the command channel. One long poll at a time; the messages it brings become
 * jobs run one after the other (so one command at a time touches units). A job's message
 * stays invisible while it runs (ChangeMessageVisibility heartbeats) and is deleted only once
 * the result is recorded; a transient failure leaves it to SQS, which delivers it again and
 * in the end to the queue's dead-letter queue. The command journal makes redeliveries
 * harmless: every command is recorded before it acts, and a command the journal knows is
 * reported again, never run again. */
#include "commands/channel.h"

#include <time.h>

#include "aws/sqs.h"
#include "aws/states.h"
#include "backoff.h"
#include "codec.h"
#include "commands/command.h"
#include "commands/journal.h"
#include "events/emit.h"
#include "heal/remedy.h"
#include "log.h"

/* A command's log lines carry its id and units (journal fields HEALD_COMMAND_ID=, HEALD_UNIT=). */
#define COMMAND_SUBJECT(cmd) (&(const LogSubject) { .command_id = (cmd)->command_id, .units = (cmd)->units })

#define POLL_RETRY_BASE (1 * USEC_PER_SEC)
#define POLL_RETRY_MAX (5 * USEC_PER_MINUTE)
#define CALL_TIMEOUT (10 * USEC_PER_SEC)
#define BUSY_RETRY (1 * USEC_PER_SEC)       /* a local remediation in the way: look again */
#define FLUSH_TIMEOUT (30 * USEC_PER_SEC)   /* prepare-stop waits this long for the outbox */
#define SIDE_CALL_ATTEMPTS 6                  /* about half a minute of retries at most */
#define SIDE_CALL_RETRY_BASE (500 * USEC_PER_MSEC)
#define SIDE_CALL_RETRY_MAX (10 * USEC_PER_SEC)

typedef struct Job Job;
typedef struct SideCall SideCall;
struct Job {
        Channel *commands;
        Job *next;
        char *message_id, *receipt_handle, *sender_id;
        unsigned receive_count;
        Command cmd;
        char digest[COMMAND_DIGEST_SIZE]; /* command_digest(): what a redelivery must match */
        bool journaled;          /* its in-progress record is in the journal */
        SideCall *asking;        /* SendTaskHeartbeat in flight: does its task token's run still wait? */
        bool asker_waits;        /* Step Functions said so: it may run */
        usec_t started_at;       /* CLOCK_REALTIME */
        usec_t started_mono;
        usec_t waiting_since;    /* CLOCK_MONOTONIC: it began to wait for a local remediation; 0: it does not */
        size_t step;             /* next unit to act on; for stop-start: stops then starts */
        bool starting;           /* stop-start: the start phase */
        cJSON *unit_results;     /* array */
        usec_t step_started;
        Verify *verify;
        sd_event_source *heartbeat, *wait;
        sd_event_source *flush_wait;    /* prepare-stop: until the outbox drains or FLUSH_TIMEOUT */
        sd_event_source *unit_deadline; /* [commands] job_timeout of the unit job in flight */
        bool running;
};

/* The last answer of a side call (its success, a refusal, or the last transient failure); res
 * is borrowed for the call. The side call is gone by then. */
typedef void (*side_call_done_fn)(const AwsResult *res, void *userdata);

/* A delete, visibility change, task result or heartbeat, sent again after a transient failure
 * (no answer, throttling, 5xx): a task result lost to one 500 would leave the fleet's run
 * waiting out its timeout. Owns its body, wiped when freed (a task token is a bearer secret).
 * Without a done function, a failure is logged here; with one, its caller decides. */
struct SideCall {
        Channel *channel;
        SideCall *next;
        const char *service, *target, *content_type, *what; /* static strings */
        char *body;
        unsigned attempt;
        AwsCall *call;
        sd_event_source *retry;
        side_call_done_fn done;
        void *userdata;
};

struct Channel {
        ChannelContext ctx;
        const Config *config;
        CommandJournal *journal;
        char *region, *instance_id, *account_id, *queue_url;
        AwsCall *poll;
        usec_t poll_started;     /* CLOCK_MONOTONIC */
        sd_event_source *poll_timer;
        unsigned poll_failures;
        char last_poll_error[128];
        bool receiving_stopped;  /* heald is stopping, or this instance is ready to stop */
        Job *jobs;               /* FIFO; the head runs */
        Job *waiting;            /* redeliveries of pending commands: answered when those are verified */
        Verify *boot_verify;
        SideCall *side_calls;    /* in flight or waiting to be sent again */
        CommandRecord *pending;  /* in the journal from before this boot */
        size_t n_pending, next_pending;
};

static void poll_schedule(Channel *c, usec_t delay);
static void job_run(Job *j);
static bool is_success(const char *type);
static char *result_record(const char *type, const cJSON *detail);

/* ---- small helpers ---- */

static cJSON *command_detail(const char *command_id, const char *action) {
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddStringToObject(d, "command_id", command_id) || !cJSON_AddStringToObject(d, "action", action)) {
                cJSON_Delete(d);
                return NULL;
        }
        return d;
}

static cJSON *detail_for(const Job *j) {
        return command_detail(j->cmd.command_id, command_action_to_string(j->cmd.action));
}

/* A Command Failed detail for a command that did not run here (now). */
static cJSON *not_run_detail(const char *command_id, const char *action, usec_t duration, const char *reason) {
        cJSON *d = command_detail(command_id, action);
        if (d && (!cJSON_AddNumberToObject(d, "duration_ms", (double) (duration / USEC_PER_MSEC)) ||
                  !cJSON_AddArrayToObject(d, "units") || !cJSON_AddStringToObject(d, "reason", reason))) {
                cJSON_Delete(d);
                return NULL;
        }
        return d;
}

static bool add_strings(cJSON *o, const char *key, char *const *list) {
        cJSON *a = cJSON_AddArrayToObject(o, key);
        for (char *const *s = list; a && s && *s; s++) {
                cJSON *v = cJSON_CreateString(*s);
                if (!v || !cJSON_AddItemToArray(a, v)) {
                        cJSON_Delete(v);
                        return false;
                }
        }
        return a != NULL;
}

static int emit(Channel *c, const char *type, cJSON *d) {
        return emit_event(c->ctx.emit, c->ctx.userdata, type, d, NULL);
}

static char *endpoint(Channel *c, const char *service) {
        char *url = NULL;
        if (config_service_endpoint(c->config, service, c->region, &url) < 0)
                return NULL;
        return url;
}

/* The queue and where its requests go: an sqs_endpoint or endpoint_url override, not the
 * queue URL's host, is what an operator must be able to reach. */
static void log_receiving(Channel *c, const char *again) {
        _cleanup_free_ char *url = endpoint(c, "sqs");
        log_info("Receiving commands from %s through %s%s", c->queue_url, url ? url : "(no endpoint)", again);
}

static SideCall *side_call_free(SideCall *sc) {
        SideCall **p = &sc->channel->side_calls;
        while (*p != sc)
                p = &(*p)->next;
        *p = sc->next;
        if (sc->call)
                aws_call_cancel(sc->call);
        sd_event_source_disable_unref(sc->retry);
        secret_free(sc->body);
        free(sc);
        return NULL;
}

static void side_call_send(SideCall *sc);

static int on_side_call_retry(sd_event_source *s, uint64_t usec, void *userdata) {
        (void) s;
        (void) usec;
        SideCall *sc = userdata;
        sc->retry = sd_event_source_disable_unref(sc->retry);
        side_call_send(sc);
        return 0;
}

/* The side call is over: freed first, so that its done function may free what it belonged to. */
static void side_call_end(SideCall *sc, const AwsResult *res) {
        side_call_done_fn done = sc->done;
        void *userdata = sc->userdata;
        side_call_free(sc);
        if (done)
                done(res, userdata);
}

/* Side calls whose failure no retry can mend (refused, or out of attempts) are logged; what
 * they protect against (a redelivery) the journal handles. */
static void on_side_call(const AwsResult *res, void *userdata) {
        SideCall *sc = userdata;
        Channel *c = sc->channel;
        char what[AWS_RESULT_DESCRIPTION_SIZE];
        sc->call = NULL;
        if (res->error >= 0 && res->status >= 200 && res->status < 300)
                return side_call_end(sc, res);
        bool transient = res->error < 0 || (res->aws && res->aws->error_class == AWS_ERROR_TRANSIENT);
        if (transient && ++sc->attempt < SIDE_CALL_ATTEMPTS) {
                usec_t delay = backoff_delay(sc->attempt - 1, SIDE_CALL_RETRY_BASE, SIDE_CALL_RETRY_MAX, backoff_random());
                log_debug("%s failed (%s); sent again in %" PRIu64 " ms", sc->what, aws_result_describe(res, what),
                          delay / USEC_PER_MSEC);
                if (sd_event_add_time_relative(c->ctx.event, &sc->retry, CLOCK_MONOTONIC, delay, 0,
                                               on_side_call_retry, sc) >= 0)
                        return;
        }
        if (!sc->done && res->error < 0)
                log_warning("%s failed after %u attempt%s: %s", sc->what, sc->attempt, plural_s(sc->attempt),
                            aws_result_describe(res, what));
        else if (!sc->done)
                log_warning("%s refused: %s", sc->what, aws_result_describe(res, what));
        side_call_end(sc, res);
}

/* A side call that could not be sent at all ends like one that got no answer. */
static void side_call_not_sent(SideCall *sc, int error, const char *why) {
        if (!sc->done)
                log_warning("%s not sent: %s", sc->what, why);
        side_call_end(sc, &(const AwsResult) { .error = error, .transport_message = why });
}

static void side_call_send(SideCall *sc) {
        Channel *c = sc->channel;
        _cleanup_free_ char *url = endpoint(c, sc->service);
        if (!url)
                return side_call_not_sent(sc, -ENODATA, "no endpoint");
        AwsCallSpec spec = {
                .endpoint = url,
                .region = c->region,
                .service = sc->service,
                .target = sc->target,
                .content_type = sc->content_type,
                .body = sc->body,
                .body_len = strlen(sc->body),
                .timeout = CALL_TIMEOUT,
        };
        int r = aws_call_start(c->ctx.aws, &spec, on_side_call, sc, &sc->call);
        if (r < 0)
                side_call_not_sent(sc, r, strerror(-r));
}

/* Takes body. done (may be NULL) gets the last answer, possibly before this returns; *ret_call
 * (may be NULL) points at the side call until then, and done must forget it first. */
static void side_call_full(Channel *c, const char *service, const char *target, const char *content_type, char *body,
                           const char *what, side_call_done_fn done, void *userdata, SideCall **ret_call) {
        SideCall *sc = body ? calloc(1, sizeof *sc) : NULL;
        if (!sc) {
                const char *why = body ? "out of memory" : "no request";
                secret_free(body);
                if (!done)
                        log_warning("%s not sent: %s", what, why);
                else
                        done(&(const AwsResult) { .error = -ENOMEM, .transport_message = why }, userdata);
                return;
        }
        *sc = (SideCall) { .channel = c, .next = c->side_calls, .service = service, .target = target,
                           .content_type = content_type, .what = what, .body = body, .done = done,
                           .userdata = userdata };
        c->side_calls = sc;
        if (ret_call)
                *ret_call = sc;
        side_call_send(sc);
}

static void side_call(Channel *c, const char *service, const char *target, const char *content_type, char *body,
                      const char *what) {
        side_call_full(c, service, target, content_type, body, what, NULL, NULL, NULL);
}

static void message_delete(Channel *c, const char *receipt_handle) {
        _cleanup_free_ char *body = NULL;
        if (c->queue_url && sqs_delete_body(c->queue_url, receipt_handle, &body) >= 0)
                side_call(c, "sqs", SQS_TARGET_DELETE_MESSAGE, SQS_CONTENT_TYPE, TAKE_PTR(body), "DeleteMessage");
}

/* visibility_s 0 gives the message back to the queue at once. */
static void message_set_visibility(Channel *c, const char *receipt_handle, unsigned visibility_s) {
        _cleanup_free_ char *body = NULL;
        if (c->queue_url && sqs_change_visibility_body(c->queue_url, receipt_handle, visibility_s, &body) >= 0)
                side_call(c, "sqs", SQS_TARGET_CHANGE_VISIBILITY, SQS_CONTENT_TYPE, TAKE_PTR(body),
                          "ChangeMessageVisibility");
}

/* The task token is a bearer secret: its request body is wiped after use. */
static void task_report(Channel *c, const char *task_token, bool success, const char *type, const cJSON *detail) {
        if (!task_token)
                return;
        _cleanup_free_ char *output = cJSON_PrintUnformatted(detail);
        _cleanup_secret_ char *body = NULL;
        int r;
        if (success)
                r = states_task_success_body(task_token, output ? output : "{}", &body);
        else {
                char error[64];
                bsprintf(error, "heald.%s", type);
                for (char *p = error; *p; p++)
                        if (*p == ' ')
                                *p = '.';
                r = states_task_failure_body(task_token, error, output ? output : "", &body);
        }
        if (r < 0) {
                log_warning_errno(r, "Cannot report to Step Functions: %m");
                return;
        }
        side_call(c, "states", success ? STATES_TARGET_TASK_SUCCESS : STATES_TARGET_TASK_FAILURE, STATES_CONTENT_TYPE,
                  TAKE_PTR(body),
                  success ? "SendTaskSuccess" : "SendTaskFailure");
}

/* ---- jobs ---- */

static void job_unlink(Job *j) {
        Channel *c = j->commands;
        Job **lists[] = { &c->jobs, &c->waiting };
        for (size_t i = 0; i < ELEMENTSOF(lists); i++)
                for (Job **p = lists[i]; *p; p = &(*p)->next)
                        if (*p == j) {
                                *p = j->next;
                                return;
                        }
}

static void job_free(Job *j) {
        Channel *c = j->commands;
        job_unlink(j);
        if (j->verify)
                verify_cancel(j->verify);
        if (j->asking)
                side_call_free(j->asking); /* without its done function: the job is what it would tell */
        if (c->ctx.units)
                units_cancel_jobs(c->ctx.units, j);
        sd_event_source_disable_unref(j->heartbeat);
        sd_event_source_disable_unref(j->wait);
        sd_event_source_disable_unref(j->flush_wait);
        sd_event_source_disable_unref(j->unit_deadline);
        cJSON_Delete(j->unit_results);
        command_done(&j->cmd);
        free(j->message_id);
        free(j->receipt_handle);
        free(j->sender_id);
        free(j);
}

/* The job is over: the next one runs, or the poll resumes. */
static void job_done(Job *j) {
        Channel *c = j->commands;
        job_free(j);
        if (c->jobs)
                job_run(c->jobs);
        else
                poll_schedule(c, 0);
}

/* Record the result (journal, event, task token), then delete the message. */
static void job_finish(Job *j, const char *type, cJSON *detail) {
        Channel *c = j->commands;
        bool success = is_success(type);
        if (detail && (!cJSON_AddNumberToObject(detail, "duration_ms",
                                                (double) ((now_usec(CLOCK_MONOTONIC) - j->started_mono) / USEC_PER_MSEC)) ||
                       !(j->unit_results ? cJSON_AddItemReferenceToObject(detail, "units", j->unit_results)
                                         : cJSON_AddArrayToObject(detail, "units") != NULL))) {
                cJSON_Delete(detail);
                detail = NULL;
        }
        if (!detail) {
                log_error("Out of memory reporting command %s; it will be delivered again", j->cmd.command_id);
                return job_done(j);
        }
        /* The journal keeps what was reported, so a redelivery is answered the same way. A
         * reboot or stop under way stays in progress: the verification after the boot finishes it. */
        _cleanup_free_ char *text = result_record(type, detail);
        bool awaits_boot = strcmp(type, "Rebooting") == 0 || strcmp(type, "Ready For Stop") == 0;
        int r = !text ? -ENOMEM : awaits_boot ? 0 : command_journal_finish(c->journal, j->cmd.command_id, text);
        if (r < 0)
                log_error_errno(r, "Failed to record command %s in the journal (a redelivery would run it again): %m",
                                j->cmd.command_id);
        task_report(c, j->cmd.task_token, success, type, detail);
        log_event_about(success ? LOG_INFO : LOG_WARNING, "command-done", COMMAND_SUBJECT(&j->cmd), "Command %s (%s): %s",
                        j->cmd.command_id,
                  command_action_to_string(j->cmd.action), type);
        emit(c, type, detail);
        message_delete(c, j->receipt_handle);
        job_done(j);
}

/* Not done, not failed: leave the message to SQS (it comes back after its visibility
 * timeout; after maxReceiveCount the queue's redrive policy moves it to its DLQ). */
static void job_give_back(Job *j, const char *why) {
        log_warning("Command %s could not run now (%s); SQS will deliver it again", j->cmd.command_id, why);
        int r = j->journaled ? command_journal_forget(j->commands->journal, j->cmd.command_id) : 0;
        if (r < 0)
                log_error_errno(r, "Cannot take command %s out of the journal; its redelivery will not run: %m",
                                j->cmd.command_id);
        job_done(j);
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        Job *j = userdata;
        Channel *c = j->commands;
        message_set_visibility(c, j->receipt_handle, (unsigned) (c->config->sqs_visibility_timeout / USEC_PER_SEC));
        (void) sd_event_source_set_time(s, usec + c->config->sqs_visibility_timeout / 2);
        (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        return 0;
}

static void unit_result_add(Job *j, const char *unit, const char *op, const char *result, const char *message) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "unit", unit) || !cJSON_AddStringToObject(o, "operation", op) ||
            !cJSON_AddStringToObject(o, "result", result) || !emit_add_time(o, "started_at", j->step_started) ||
            !cJSON_AddNumberToObject(o, "duration_ms",
                                     (double) ((now_usec(CLOCK_REALTIME) - j->step_started) / USEC_PER_MSEC)) ||
            (message && !cJSON_AddStringToObject(o, "message", message)) || !cJSON_AddItemToArray(j->unit_results, o))
                cJSON_Delete(o);
}

/* The operation of the step at hand (job_next_unit() sets starting for stop-start). */
static RemedyOperation job_operation(const Job *j) {
        if (j->starting || j->cmd.action == COMMAND_START_UNITS)
                return REMEDY_START;
        return j->cmd.action == COMMAND_RESTART_UNITS ? REMEDY_RESTART : REMEDY_STOP;
}

/* The unit of this step: stop-start stops in order, then starts in reverse. */
static bool job_next_unit(Job *j, const char **ret_unit) {
        Command *cmd = &j->cmd;
        char **units = cmd->action == COMMAND_PREPARE_STOP ? j->commands->config->commands_drain_units : cmd->units;
        size_t n = 0;
        while (units && units[n])
                n++;
        switch (cmd->action) {
        case COMMAND_RESTART_UNITS:
        case COMMAND_STOP_UNITS:
        case COMMAND_START_UNITS:
        case COMMAND_PREPARE_STOP:
                if (j->step >= n)
                        return false;
                *ret_unit = units[j->step];
                break;
        case COMMAND_STOP_START_UNITS:
                if (j->step >= 2 * n)
                        return false;
                j->starting = j->step >= n;
                *ret_unit = j->starting ? units[2 * n - 1 - j->step] : units[j->step];
                break;
        default:
                return false;
        }
        return true;
}

static void job_step(Job *j);

/* A unit operation ended otherwise than done: the command failed. message: NULL or why the job
 * has no result of systemd's. */
static void job_unit_failed(Job *j, const char *unit, const char *op, const char *result, const char *message) {
        unit_result_add(j, unit, op, result, message);
        char why[256];
        snprintf(why, sizeof why, "%s %s: %s", op, unit, message ? message : result);
        cJSON *d = detail_for(j);
        if (d && !cJSON_AddStringToObject(d, "reason", why)) {
                cJSON_Delete(d);
                d = NULL;
        }
        job_finish(j, "Command Failed", d);
}

static void on_unit_job(const char *unit, const char *result, int error, const char *message, void *userdata) {
        Job *j = userdata;
        const char *op = remedy_operation_to_string(job_operation(j));
        j->unit_deadline = sd_event_source_disable_unref(j->unit_deadline);
        if (!result && (error == -ENOTCONN || error == -ETIMEDOUT || error == -EBUSY)) {
                char why[128];
                snprintf(why, sizeof why, "systemd unreachable for %s: %s", unit, strerror(-error));
                return job_give_back(j, why);
        }
        if (!result)
                return job_unit_failed(j, unit, op, "refused", message ? message : strerror(-error));
        if (strcmp(result, "done") != 0)
                return job_unit_failed(j, unit, op, result, NULL);
        unit_result_add(j, unit, op, result, NULL);
        j->step++;
        job_step(j);
}

/* A unit job systemd does not finish (a unit stuck in deactivating) must not hold up every
 * later command, a reboot included: after [commands] job_timeout it has failed. */
static int on_unit_job_timeout(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Job *j = userdata;
        Channel *c = j->commands;
        const char *unit;
        j->unit_deadline = sd_event_source_disable_unref(j->unit_deadline);
        units_cancel_jobs(c->ctx.units, j); /* its JobRemoved, should it come, finds no one */
        if (!job_next_unit(j, &unit))
                return 0;
        char why[128];
        snprintf(why, sizeof why, "no result within [commands] job_timeout (%llu s)",
                 (unsigned long long) (c->config->commands_job_timeout / USEC_PER_SEC));
        job_unit_failed(j, unit, remedy_operation_to_string(job_operation(j)), "timeout", why);
        return 0;
}

/* run-checks runs each check once: what failed is the news, there was no wait to time out. */
static void failed_checks_reason(const cJSON *results, char buf[static 256]) {
        const cJSON *r;
        size_t n = 0;
        int len = snprintf(buf, 256, "failed:");
        cJSON_ArrayForEach(r, results) {
                if (cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(r, "healthy")))
                        continue;
                const char *name = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(r, "check"));
                if (len > 0 && len < 256)
                        len += snprintf(buf + len, 256 - (size_t) len, "%s %s", n++ > 0 ? "," : "", name ? name : "?");
        }
        if (len >= 256)
                memcpy(buf + 252, "...", 4);
}

static void on_verified(bool healthy, cJSON *results, void *userdata) {
        Job *j = userdata;
        j->verify = NULL;
        char reason[256] = "checks did not pass within [commands] verify_timeout";
        if (!healthy && j->cmd.action == COMMAND_RUN_CHECKS)
                failed_checks_reason(results, reason);
        cJSON *d = detail_for(j);
        if (d && (!cJSON_AddBoolToObject(d, "verified", healthy) || !cJSON_AddItemToObject(d, "checks", results ? results : cJSON_CreateArray()))) {
                cJSON_Delete(d);
                d = NULL;
        } else if (!d)
                cJSON_Delete(results);
        if (d && !healthy && !cJSON_AddStringToObject(d, "reason", reason)) {
                cJSON_Delete(d);
                d = NULL;
        }
        job_finish(j, healthy || j->cmd.action == COMMAND_RUN_CHECKS ? "Command Succeeded" : "Command Failed", d);
}

static int on_flush_wait(sd_event_source *s, uint64_t usec, void *userdata);
static void receiving_stop(Channel *c);

static void job_prepare_stop_done(Job *j) {
        Channel *c = j->commands;
        cJSON *d = detail_for(j);
        size_t depth = outbox_count(c->ctx.outbox);
        if (d && (!cJSON_AddBoolToObject(d, "outbox_flushed", depth <= 1) || /* this event is the one left */
                  !cJSON_AddNumberToObject(d, "outbox_depth", (double) depth) ||
                  !cJSON_AddStringToObject(d, "boot_id", c->ctx.boot_id))) {
                cJSON_Delete(d);
                d = NULL;
        }
        /* A command taken after this one would never run: the instance is about to stop. */
        log_info("Ready for stop: no more commands are taken until heald starts again");
        receiving_stop(c);
        job_finish(j, "Ready For Stop", d);
}

/* Fires when the publisher reports the outbox drained (channel_outbox_drained() sets it due
 * now), or after FLUSH_TIMEOUT when it never does (no target, AWS refusing). */
static int on_flush_wait(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Job *j = userdata;
        j->flush_wait = sd_event_source_disable_unref(j->flush_wait);
        job_prepare_stop_done(j);
        return 0;
}

/* The machine stays up after all: take commands again. */
static void receiving_resume(Channel *c) {
        log_info("Taking commands again");
        c->receiving_stopped = false;
        poll_schedule(c, 0);
}

static void on_reboot_job(const char *unit _unused_, const char *result, int error, const char *message,
                          void *userdata) {
        if (result && strcmp(result, "done") == 0)
                return;
        log_error("systemd did not reboot: %s", result ? result : message ? message : strerror(-error));
        receiving_resume(userdata);
}

static void job_reboot(Job *j) {
        Channel *c = j->commands;
        cJSON *d = detail_for(j);
        if (d && !cJSON_AddStringToObject(d, "boot_id", c->ctx.boot_id)) {
                cJSON_Delete(d);
                d = NULL;
        }
        _cleanup_free_ char *id = strdup(j->cmd.command_id);
        /* No long poll may be open when the machine goes down: SQS would still hand the fleet's
         * next command (its ping across the reboot) to the dead connection, and it would come
         * back only after the visibility timeout. Commands received behind this one go back to
         * the queue for the next boot. */
        receiving_stop(c);
        job_finish(j, "Rebooting", d);
        /* The job is gone (its message deleted, Rebooting recorded): now the reboot. A
         * redelivered reboot finds the journal record and never reboots twice. */
        int r = units_reboot(c->ctx.units, on_reboot_job, c);
        if (r < 0) {
                log_error_errno(r, "Command %s: cannot ask systemd to reboot: %m", id ? id : "?");
                receiving_resume(c);
        }
}

static void job_step(Job *j) {
        Channel *c = j->commands;
        const char *unit;
        if (job_next_unit(j, &unit)) {
                if (!c->ctx.units)
                        return job_give_back(j, "no system bus");
                j->step_started = now_usec(CLOCK_REALTIME);
                int r = sd_event_add_time_relative(c->ctx.event, &j->unit_deadline, CLOCK_MONOTONIC,
                                                   c->config->commands_job_timeout, USEC_PER_SEC, on_unit_job_timeout, j);
                if (r >= 0)
                        r = remedy_unit_job(c->ctx.units, job_operation(j), unit, on_unit_job, j);
                if (r < 0) {
                        char why[128];
                        snprintf(why, sizeof why, "cannot ask systemd to %s %s: %s",
                                 remedy_operation_to_string(job_operation(j)), unit, strerror(-r));
                        job_give_back(j, why);
                }
                return;
        }
        switch (j->cmd.action) {
        case COMMAND_STOP_START_UNITS: {
                int r = verify_start(c->ctx.monitor, NULL, j->cmd.units, c->config->commands_verify_timeout, false,
                                       on_verified, j, &j->verify);
                if (r < 0)
                        job_give_back(j, "cannot verify");
                return;
        }
        case COMMAND_PREPARE_STOP: {
                /* An outbox already empty has no drain to wait for. */
                usec_t wait = outbox_count(c->ctx.outbox) == 0 ? 0 : FLUSH_TIMEOUT;
                int r = sd_event_add_time_relative(c->ctx.event, &j->flush_wait, CLOCK_MONOTONIC, wait,
                                                   50 * USEC_PER_MSEC, on_flush_wait, j);
                if (r < 0)
                        job_prepare_stop_done(j);
                return;
        }
        default: {
                cJSON *d = detail_for(j);
                job_finish(j, "Command Succeeded", d);
        }
        }
}

static int on_busy_retry(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Job *j = userdata;
        j->wait = sd_event_source_disable_unref(j->wait);
        job_run(j);
        return 0;
}

static CommandPolicy policy_for(const Channel *c, const char *sender_id) {
        return (CommandPolicy) {
                .instance_id = c->instance_id,
                .allowed_actions = c->config->commands_allow,
                .unit_globs = c->config->commands_units,
                .allowed_senders = c->config->commands_allowed_senders,
                .sender_id = sender_id,
        };
}

static void report_rejection(Channel *c, const SqsMessage *m, CommandRejection *rej);

/* A job waits its turn (behind other commands, a local remediation), and meanwhile it may
 * expire or a reload may take its permission away: judged again right before it runs.
 * Returns whether it may run; if not, it is dealt with. */
static bool job_still_allowed(Job *j) {
        Channel *c = j->commands;
        CommandPolicy policy = policy_for(c, j->sender_id);
        _cleanup_(command_rejection_done) CommandRejection rej = {};
        int v = command_authorize(&j->cmd, &policy, now_usec(CLOCK_REALTIME), &rej);
        if (v == COMMAND_ALLOWED)
                return true;
        if (v == COMMAND_REJECTED) {
                SqsMessage m = { .message_id = j->message_id, .receipt_handle = j->receipt_handle, .sender_id = j->sender_id };
                report_rejection(c, &m, &rej);
                job_done(j);
        } else
                job_give_back(j, "cannot judge it again");
        return false;
}

/* Durable before anything happens: a restarted heald never runs it again, and after a boot
 * it finds a reboot or prepare-stop and verifies it. */
static int job_journal_begin(Job *j) {
        Channel *c = j->commands;
        char context[384];
        bsprintf(context, "{\"digest\":\"%s\",\"boot_id\":\"%s\",\"boot\":\"%s\"}", j->digest,
                 c->ctx.boot_id, c->ctx.boot_marker);
        int r = command_journal_begin(c->journal, j->cmd.command_id, command_action_to_string(j->cmd.action), context);
        if (r < 0)
                return log_error_errno(r, "Cannot record command %s in the journal: %m", j->cmd.command_id);
        j->journaled = true;
        return 0;
}

/* The local remediation this job would disturb (a double action): one of its units', or any
 * at all for a command that disrupts the whole instance. NULL when none is under way. */
static const CheckConfig *job_remediation_in_the_way(const Job *j) {
        const Monitor *m = j->commands->ctx.monitor;
        if (command_action_is_instance_wide(j->cmd.action))
                return remedy_in_progress(m, NULL);
        for (char **u = j->cmd.units; u && *u; u++) {
                const CheckConfig *busy = remedy_in_progress(m, *u);
                if (busy)
                        return busy;
        }
        return NULL;
}

/* Whether the job waits (it looks again after BUSY_RETRY) for a local remediation to settle.
 * Not for ever: a remediation busy for longer than a command of heald's own may take ([commands]
 * job_timeout + verify_timeout) is stuck or flapping, and the fleet's command is the escalation
 * meant for that; it then runs anyway. Giving it back instead would only have SQS bring it
 * again to wait again, spending its receive count towards the dead-letter queue. One line when
 * the wait begins, one if it ends so, none per look. */
static bool job_waits_for_remediation(Job *j) {
        Channel *c = j->commands;
        const CheckConfig *busy = job_remediation_in_the_way(j);
        if (!busy)
                return false;
        usec_t now = now_usec(CLOCK_MONOTONIC);
        usec_t bound = c->config->commands_job_timeout + c->config->commands_verify_timeout;
        const char *action = command_action_to_string(j->cmd.action), *target = remedy_action_target(busy);
        if (j->waiting_since == 0) {
                j->waiting_since = now;
                log_event_about(LOG_INFO, "command-waiting", COMMAND_SUBJECT(&j->cmd),
                                "Command %s (%s) waits for the local remediation of check %s (%s %s) to settle",
                                j->cmd.command_id, action, busy->name, check_action_to_string(busy->action),
                                target ? target : "");
        } else if (now - j->waiting_since >= bound) {
                log_event_about(LOG_WARNING, "command-waiting", COMMAND_SUBJECT(&j->cmd),
                                "Command %s (%s) runs although the remediation of check %s is still under way: it "
                                "waited %llu s, [commands] job_timeout + verify_timeout",
                                j->cmd.command_id, action, busy->name,
                                (unsigned long long) ((now - j->waiting_since) / USEC_PER_SEC));
                return false;
        }
        j->wait = sd_event_source_disable_unref(j->wait);
        if (sd_event_add_time_relative(c->ctx.event, &j->wait, CLOCK_MONOTONIC, BUSY_RETRY, 0, on_busy_retry, j) < 0)
                job_give_back(j, "cannot wait for the local remediation");
        return true;
}

/* Its task token's run has ended: nobody waits for this command any more. Rejected and deleted,
 * with no task result (the token is spent). */
static void job_reject_asker_gone(Job *j, const char *code) {
        _cleanup_(command_rejection_done) CommandRejection rej = { .reason = COMMAND_REJECT_ASKER_GONE };
        bsprintf(rej.command_id, "%s", j->cmd.command_id);
        bsprintf(rej.message,
                 "the Step Functions run that sent it no longer waits for it (%s): it ended before the command "
                 "could start, so it does not run",
                 code);
        SqsMessage m = { .message_id = j->message_id, .receipt_handle = j->receipt_handle, .sender_id = j->sender_id };
        report_rejection(j->commands, &m, &rej);
        job_done(j);
}

/* Step Functions' answer to the heartbeat of job_asks_whether_asker_waits(). */
static void on_asker_answer(const AwsResult *res, void *userdata) {
        Job *j = userdata;
        Channel *c = j->commands;
        char what[AWS_RESULT_DESCRIPTION_SIZE], why[AWS_RESULT_DESCRIPTION_SIZE + 512];
        j->asking = NULL;
        const char *code = res->error >= 0 && res->aws ? res->aws->code : NULL;
        const char *hint = res->aws && res->aws->error_class == AWS_ERROR_AUTH ? aws_error_hint(res->aws) : NULL;
        switch (states_heartbeat_verdict(res->error < 0 ? 0 : res->status, code)) {
        case STATES_TASK_WAITING:
                j->asker_waits = true;
                return job_run(j);
        case STATES_TASK_GONE:
                return job_reject_asker_gone(j, code);
        default:
                /* Never run unconfirmed: a stale prepare-stop would drain units and leave heald deaf to
                 * new commands (Ready For Stop) with nobody left to stop the instance. It comes back
                 * after [sqs] visibility_timeout and is asked about again; a long outage spends its
                 * receive count towards the queue's dead-letter queue, as any give-back does. */
                bsprintf(why, "cannot tell whether its Step Functions run still waits for it: SendTaskHeartbeat: %s%s%s",
                         aws_result_describe(res, what), hint ? ". Fix: " : "", hint ? hint : "");
                message_set_visibility(c, j->receipt_handle,
                                       (unsigned) (c->config->sqs_visibility_timeout / USEC_PER_SEC));
                job_give_back(j, why);
        }
}

/* Whether the job waits to hear whether its asker still waits. A command sent with a task token
 * runs only while the Step Functions run that sent it waits for its result: a run that was
 * stopped, timed out or failed while the message sat in the queue (heald down, or its long
 * poll had not taken it yet) cannot withdraw it, nor give it a usable expires_at. Asked once
 * (SendTaskHeartbeat, which also tells the run heald is alive), after any wait for a local
 * remediation and before the journal, so that a stale command leaves no record. */
static bool job_asks_whether_asker_waits(Job *j) {
        if (!j->cmd.task_token || j->asker_waits)
                return false;
        _cleanup_secret_ char *body = NULL;
        (void) states_task_heartbeat_body(j->cmd.task_token, &body); /* without one, on_asker_answer hands it back */
        side_call_full(j->commands, "states", STATES_TARGET_TASK_HEARTBEAT, STATES_CONTENT_TYPE, TAKE_PTR(body),
                       "SendTaskHeartbeat", on_asker_answer, j, &j->asking);
        return true;
}

static void job_run(Job *j) {
        Channel *c = j->commands;
        if (j->running || j->asking)
                return;
        /* Judged first, on every look: a command that expires while it waits is rejected then. */
        if (!job_still_allowed(j) || job_waits_for_remediation(j) || job_asks_whether_asker_waits(j))
                return;
        if (j->cmd.action == COMMAND_REBOOT && !c->ctx.units)
                return job_give_back(j, "no system bus to ask for the reboot");
        if (job_journal_begin(j) < 0)
                return job_give_back(j, "journal unavailable");
        j->running = true;
        j->started_at = now_usec(CLOCK_REALTIME);
        j->started_mono = now_usec(CLOCK_MONOTONIC);
        j->unit_results = cJSON_CreateArray();

        cJSON *d = detail_for(j);
        if (d && (!add_strings(d, "units", j->cmd.units) ||
                  !cJSON_AddStringToObject(d, "message_id", j->message_id) ||
                  !cJSON_AddNumberToObject(d, "receive_count", j->receive_count) ||
                  (j->sender_id && !cJSON_AddStringToObject(d, "sender_id", j->sender_id)) ||
                  (j->cmd.reason && !cJSON_AddStringToObject(d, "reason", j->cmd.reason)) ||
                  !cJSON_AddBoolToObject(d, "via_eventbridge", j->cmd.from_eventbridge))) {
                cJSON_Delete(d);
                d = NULL;
        }
        log_event_about(LOG_INFO, "command-received", COMMAND_SUBJECT(&j->cmd), "Command %s: %s", j->cmd.command_id,
                        command_action_to_string(j->cmd.action));
        emit(c, "Command Received", d);

        switch (j->cmd.action) {
        case COMMAND_PING: {
                cJSON *p = detail_for(j);
                if (p && (!cJSON_AddStringToObject(p, "version", HEALD_VERSION) ||
                          !cJSON_AddStringToObject(p, "boot_id", c->ctx.boot_id))) {
                        cJSON_Delete(p);
                        p = NULL;
                }
                return job_finish(j, "Command Succeeded", p);
        }
        case COMMAND_RUN_CHECKS: {
                int r = verify_start(c->ctx.monitor, j->cmd.checks, NULL, c->config->commands_verify_timeout, true,
                                       on_verified, j, &j->verify);
                if (r == -ENOENT) {
                        char reason[128] = "a named check does not exist";
                        for (char *const *name = j->cmd.checks; name && *name; name++)
                                if (!config_find_check(c->config, *name)) {
                                        bsprintf(reason, "no check named \"%s\"", *name);
                                        break;
                                }
                        cJSON *f = detail_for(j);
                        if (f && !cJSON_AddStringToObject(f, "reason", reason)) {
                                cJSON_Delete(f);
                                f = NULL;
                        }
                        return job_finish(j, "Command Failed", f);
                }
                if (r < 0)
                        job_give_back(j, "cannot run the checks");
                return;
        }
        case COMMAND_REBOOT:
                return job_reboot(j);
        default:
                job_step(j);
        }
}

/* ---- receiving ---- */

static void report_rejection(Channel *c, const SqsMessage *m, CommandRejection *rej) {
        cJSON *d = cJSON_CreateObject();
        if (!d ||
            !(rej->command_id[0] ? cJSON_AddStringToObject(d, "command_id", rej->command_id)
                                 : cJSON_AddNullToObject(d, "command_id")) ||
            !cJSON_AddStringToObject(d, "message_id", m->message_id) ||
            !cJSON_AddStringToObject(d, "reason", command_rejection_reason_to_string(rej->reason)) ||
            !cJSON_AddStringToObject(d, "message", rej->message) ||
            (m->sender_id && !cJSON_AddStringToObject(d, "sender_id", m->sender_id))) {
                cJSON_Delete(d);
                d = NULL;
        }
        log_event(LOG_WARNING, "command-rejected", "Rejected message %s: %s: %s", m->message_id,
                  command_rejection_reason_to_string(rej->reason), rej->message);
        task_report(c, rej->task_token, false, "Command Rejected", d);
        emit(c, "Command Rejected", d);
        /* Sending it again cannot help. */
        message_delete(c, m->receipt_handle);
}

static bool is_success(const char *type) {
        return strcmp(type, "Command Succeeded") == 0 || strcmp(type, "Ready For Stop") == 0 ||
               strcmp(type, "Rebooting") == 0 || strcmp(type, "Command Verified") == 0;
}

/* A redelivered command that already ran: say again what came of it (result_json: its
 * journal record's result), to the task token that came with this delivery. */
static void report_again(Channel *c, const char *receipt_handle, const Command *cmd, const char *result_json) {
        cJSON *record = result_json ? cJSON_Parse(result_json) : NULL;
        const char *type = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(record, "detail_type"));
        cJSON *detail = cJSON_DetachItemFromObjectCaseSensitive(record, "detail");
        if (type && cJSON_IsObject(detail) && cJSON_AddBoolToObject(detail, "redelivered", true)) {
                log_event_about(LOG_INFO, "command-redelivered", COMMAND_SUBJECT(cmd),
                          "Command %s was delivered again; it ran before (%s) and does not run twice", cmd->command_id, type);
                task_report(c, cmd->task_token, is_success(type), type, detail);
                emit(c, type, detail);
        } else {
                cJSON_Delete(detail);
                log_warning("Command %s was delivered again; it ran before, but its recorded result is unreadable",
                            cmd->command_id);
        }
        cJSON_Delete(record);
        message_delete(c, receipt_handle);
}

/* A new job for message m, taking over *cmd. From now on its message stays invisible
 * (heartbeats), also while the job waits for its turn. */
static Job *job_new(Channel *c, const SqsMessage *m, Command *cmd, const char *digest) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return NULL;
        j->commands = c;
        j->receive_count = m->approximate_receive_count;
        j->message_id = strdup(m->message_id);
        j->receipt_handle = strdup(m->receipt_handle);
        j->sender_id = m->sender_id ? strdup(m->sender_id) : NULL;
        if (!j->message_id || !j->receipt_handle || (m->sender_id && !j->sender_id)) {
                job_free(j);
                return NULL;
        }
        memcpy(j->digest, digest, sizeof j->digest);
        j->cmd = *cmd;
        *cmd = (Command) {};
        (void) sd_event_add_time_relative(c->ctx.event, &j->heartbeat, CLOCK_MONOTONIC,
                                          c->config->sqs_visibility_timeout / 2, USEC_PER_SEC, on_heartbeat, j);
        return j;
}

static void job_append(Job **list, Job *j) {
        while (*list)
                list = &(*list)->next;
        *list = j;
}

/* Whether a journal record is of this very command: the same action, and the same digest
 * (records from before digests were kept have only the action to compare). */
static bool record_is_command(const CommandRecord *rec, const Command *cmd, const char *digest) {
        if (!streq_ptr(rec->action, command_action_to_string(cmd->action)))
                return false;
        _cleanup_cjson_ cJSON *context = rec->context_json ? cJSON_Parse(rec->context_json) : NULL;
        const char *recorded = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(context, "digest"));
        return !recorded || streq_ptr(recorded, digest);
}

static bool verification_pending(const Channel *c, const char *command_id) {
        for (size_t i = c->next_pending; i < c->n_pending; i++)
                if (streq_ptr(c->pending[i].command_id, command_id))
                        return true;
        return false;
}

/* A command id the journal knows: the same command again is answered from its record
 * (at once, or once its verification is done), never run twice; another command under that
 * id is rejected. *cmd may be taken over. */
static void message_known(Channel *c, const SqsMessage *m, Command *cmd, const char *digest, const CommandRecord *rec) {
        if (!record_is_command(rec, cmd, digest)) {
                _cleanup_(command_rejection_done) CommandRejection rej = { .reason = COMMAND_REJECT_ID_REUSED };
                bsprintf(rej.command_id, "%s", cmd->command_id);
                bsprintf(rej.message,
                         "command id %s was used before for another command (%s); a new command needs a new id",
                         cmd->command_id, rec->action);
                rej.task_token = TAKE_PTR(cmd->task_token);
                return report_rejection(c, m, &rej);
        }
        if (rec->state == COMMAND_RECORD_FINISHED)
                return report_again(c, m->receipt_handle, cmd, rec->result_json);
        if (verification_pending(c, cmd->command_id)) {
                Job *w = job_new(c, m, cmd, digest);
                if (w) {
                        log_info("Command %s was delivered again while its verification is pending; it does not run "
                                 "twice and is answered when the verification ends",
                                 w->cmd.command_id);
                        job_append(&c->waiting, w);
                }
                return;
        }
        /* A reboot or stop asked for in this boot, not yet happened: after it, the journal
         * answers the message's next delivery. */
        log_info("Command %s was delivered again before the %s it asked for; it does not run twice", cmd->command_id,
                 rec->action);
}

/* Whether the command ran cannot be told: it does not run (it might run twice), and it says so. */
static void message_unreadable_record(Channel *c, const SqsMessage *m, const Command *cmd) {
        const char *action = command_action_to_string(cmd->action);
        log_error("Command %s: its record in %s/commands is unreadable; it is not run, as it may have run before",
                  cmd->command_id, c->ctx.state_dir);
        cJSON *d = not_run_detail(cmd->command_id, action, 0,
                                  "its command journal record is unreadable: it may have run before, so it does not run");
        task_report(c, cmd->task_token, false, "Command Failed", d);
        emit(c, "Command Failed", d);
        message_delete(c, m->receipt_handle);
}

static void message_accept(Channel *c, const SqsMessage *m) {
        CommandPolicy policy = policy_for(c, m->sender_id);
        Command cmd = {};
        CommandRejection rej = {};
        CommandRecord rec = {};
        char digest[COMMAND_DIGEST_SIZE];
        int v = command_evaluate(m->body, m->body_len, m->md5_ok, &policy, now_usec(CLOCK_REALTIME), &cmd, &rej);
        if (v == COMMAND_NOT_READY)
                goto finish; /* the message comes back when this instance knows who it is */
        if (v == COMMAND_REJECTED) {
                report_rejection(c, m, &rej);
                goto finish;
        }
        if (v < 0) {
                log_error_errno(v, "Cannot evaluate message %s: %m", m->message_id);
                goto finish;
        }
        int r = command_digest(&cmd, digest);
        if (r >= 0)
                r = command_journal_lookup(c->journal, cmd.command_id, &rec);
        if (r >= 0) {
                message_known(c, m, &cmd, digest, &rec);
                goto finish;
        }
        if (r == -EBADMSG) {
                message_unreadable_record(c, m, &cmd);
                goto finish;
        }
        if (r != -ENOENT) {
                log_error_errno(r, "Cannot look up command %s in the journal; SQS will deliver it again: %m", cmd.command_id);
                goto finish;
        }
        for (Job *q = c->jobs; q; q = q->next)
                if (strcmp(q->cmd.command_id, cmd.command_id) == 0)
                        /* The same command twice in this batch: leave the second to SQS. It comes
                         * back after its visibility timeout and the journal answers it, to its own
                         * task token too. */
                        goto finish;

        Job *j = job_new(c, m, &cmd, digest);
        if (j)
                job_append(&c->jobs, j);
finish:
        command_record_done(&rec);
        command_done(&cmd);
        command_rejection_done(&rej);
}

static void poll_failed(Channel *c, const char *what, const char *hint) {
        usec_t delay = backoff_delay(c->poll_failures, POLL_RETRY_BASE, POLL_RETRY_MAX, backoff_random());
        /* Once per kind of failure, not once per attempt. */
        bool news = c->poll_failures == 0 || strncmp(c->last_poll_error, what, sizeof c->last_poll_error - 1) != 0;
        size_t len = strlen(what);
        while (len > 0 && what[len - 1] == '.')
                len--; /* AWS messages end in a full stop; ". Fix:" brings its own */
        log_internal(news ? LOG_WARNING : LOG_DEBUG, 0, "sqs-error",
                     "Cannot receive commands from %s: %.*s%s%s; retrying in %llu ms (local healing goes on)",
                     c->queue_url, (int) len, what, hint ? ". Fix: " : "", hint ? hint : "",
                     (unsigned long long) (delay / USEC_PER_MSEC));
        snprintf(c->last_poll_error, sizeof c->last_poll_error, "%s", what);
        c->poll_failures++;
        poll_schedule(c, delay);
}

static void on_receive(const AwsResult *res, void *userdata) {
        Channel *c = userdata;
        char what[AWS_RESULT_DESCRIPTION_SIZE];
        c->poll = NULL;
        if (res->error < 0)
                return poll_failed(c, aws_result_describe(res, what), NULL);
        if (res->status < 200 || res->status >= 300)
                return poll_failed(c, aws_result_describe(res, what),
                                   res->aws->error_class == AWS_ERROR_AUTH ? aws_error_hint(res->aws) : NULL);
        SqsMessage *msgs = NULL;
        size_t n = 0;
        _cleanup_free_ char *why = NULL;
        int r = sqs_parse_receive(res->body, res->body_len, &msgs, &n, &why);
        if (r < 0)
                return poll_failed(c, why ? why : "unreadable ReceiveMessage response", NULL);
        if (c->poll_failures > 0)
                log_receiving(c, " again");
        c->poll_failures = 0;
        for (size_t i = 0; i < n; i++)
                message_accept(c, &msgs[i]);
        sqs_messages_free(msgs, n);
        if (c->jobs)
                return job_run(c->jobs);
        /* A server that answers an empty long poll early must not make heald spin: at most one
         * ReceiveMessage per wait_time while the queue is empty. */
        usec_t spent = now_usec(CLOCK_MONOTONIC) - c->poll_started;
        usec_t period = c->config->sqs_wait_time > USEC_PER_SEC ? c->config->sqs_wait_time : USEC_PER_SEC;
        poll_schedule(c, n > 0 || spent >= period ? 0 : period - spent);
}

static void poll_start(Channel *c) {
        if (c->poll || c->jobs || !c->queue_url)
                return;
        const Config *cfg = c->config;
        _cleanup_free_ char *body = NULL, *url = endpoint(c, "sqs");
        int r = url ? sqs_receive_body(c->queue_url, cfg->sqs_max_messages, (unsigned) (cfg->sqs_wait_time / USEC_PER_SEC),
                                       (unsigned) (cfg->sqs_visibility_timeout / USEC_PER_SEC), &body)
                    : -ENODATA;
        if (r < 0)
                return poll_failed(c, "cannot build the request", NULL);
        AwsCallSpec spec = {
                .endpoint = url,
                .region = c->region,
                .service = "sqs",
                .target = SQS_TARGET_RECEIVE_MESSAGE,
                .content_type = SQS_CONTENT_TYPE,
                .body = body,
                .body_len = strlen(body),
                .timeout = cfg->sqs_wait_time + CALL_TIMEOUT,
                /* Every message it may bring, at SQS's maximum size: oversized ones are then
                 * rejected and deleted one by one instead of failing every poll. */
                .max_response = sqs_receive_answer_max(cfg->sqs_max_messages),
        };
        c->poll_started = now_usec(CLOCK_MONOTONIC);
        r = aws_call_start(c->ctx.aws, &spec, on_receive, c, &c->poll);
        if (r == -ENOKEY)
                return poll_schedule(c, USEC_PER_SEC); /* credentials are on their way */
        if (r < 0)
                poll_failed(c, strerror(-r), NULL);
}

static int on_poll_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        poll_start(userdata);
        return 0;
}

static void poll_schedule(Channel *c, usec_t delay) {
        if (c->receiving_stopped)
                return;
        (void) sd_event_source_set_time_relative(c->poll_timer, delay);
        (void) sd_event_source_set_enabled(c->poll_timer, SD_EVENT_ONESHOT);
}

/* Take no more messages. A long poll in flight is cancelled (SQS may still hand a message to
 * it: that one comes back after its visibility timeout). The commands taken and not yet begun
 * go back to the queue at once, for heald's next start; the one running goes on. */
static void receiving_stop(Channel *c) {
        c->receiving_stopped = true;
        (void) sd_event_source_set_enabled(c->poll_timer, SD_EVENT_OFF);
        if (c->poll) {
                aws_call_cancel(c->poll);
                c->poll = NULL;
        }
        for (Job **p = &c->jobs; *p;)
                if ((*p)->running)
                        p = &(*p)->next;
                else {
                        message_set_visibility(c, (*p)->receipt_handle, 0);
                        job_free(*p); /* unlinks it: *p is the next one */
                }
}

/* ---- after a reboot or a stop/start: verify what the journal holds ---- */

static void boot_verify_next(Channel *c);
static void pending_finish(Channel *c, const CommandRecord *rec, const char *type, cJSON *d);

static char *result_record(const char *type, const cJSON *detail) {
        cJSON *record = cJSON_CreateObject();
        cJSON *copy = detail ? cJSON_Duplicate(detail, true) : NULL;
        char *text = NULL;
        if (record && copy && cJSON_AddStringToObject(record, "detail_type", type) &&
            cJSON_AddItemToObject(record, "detail", copy))
                text = cJSON_PrintUnformatted(record);
        else
                cJSON_Delete(copy);
        cJSON_Delete(record);
        return text;
}

static void on_boot_verified(bool healthy, cJSON *results, void *userdata) {
        Channel *c = userdata;
        CommandRecord *rec = &c->pending[c->next_pending++];
        c->boot_verify = NULL;
        cJSON *context = rec->context_json ? cJSON_Parse(rec->context_json) : NULL;
        const char *before = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(context, "boot_id"));
        /* A reboot that did not happen is no success, however healthy the checks are. The
         * kernel's boot id does not change when a container restarts, hence the marker. */
        bool rebooted = !streq_ptr(cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(context, "boot")),
                                   c->ctx.boot_marker);
        const char *reason = NULL;
        if (streq_ptr(rec->action, "reboot") && !rebooted) {
                healthy = false;
                reason = "the instance did not reboot";
        } else if (!healthy)
                reason = "checks did not pass within [commands] verify_timeout";
        const char *type = healthy ? "Command Verified" : "Command Verification Failed";
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddItemToObject(d, "checks", results ? results : cJSON_CreateArray())) {
                cJSON_Delete(results);
                cJSON_Delete(d);
                d = NULL;
        } else if (!cJSON_AddStringToObject(d, "command_id", rec->command_id) ||
                   !cJSON_AddStringToObject(d, "action", rec->action ? rec->action : "") ||
                   !cJSON_AddStringToObject(d, "boot_id", c->ctx.boot_id) ||
                   !cJSON_AddStringToObject(d, "previous_boot_id", before ? before : "") ||
                   !cJSON_AddBoolToObject(d, "verified", healthy) ||
                   (reason && !cJSON_AddStringToObject(d, "reason", reason))) {
                cJSON_Delete(d);
                d = NULL;
        }
        cJSON_Delete(context);
        log_event_about(healthy ? LOG_INFO : LOG_WARNING, "command-verified",
                        &(const LogSubject) { .command_id = rec->command_id }, "Command %s (%s) after the boot: %s",
                  rec->command_id, rec->action ? rec->action : "?", type);
        pending_finish(c, rec, type, d);
        boot_verify_next(c);
}

/* Answer the redeliveries that waited for command_id's verification with its recorded
 * result; without one (NULL), leave them to SQS. */
static void waiters_answer(Channel *c, const char *command_id, const char *result_json) {
        for (Job *w = c->waiting, *next; w; w = next) {
                next = w->next;
                if (!streq_ptr(w->cmd.command_id, command_id))
                        continue;
                if (result_json)
                        report_again(c, w->receipt_handle, &w->cmd, result_json);
                job_free(w);
        }
}

/* Record how a command left from before this start ended (takes d), report it, and answer
 * its redeliveries that waited. */
static void pending_finish(Channel *c, const CommandRecord *rec, const char *type, cJSON *d) {
        _cleanup_free_ char *text = result_record(type, d);
        int r = text ? command_journal_finish(c->journal, rec->command_id, text) : -ENOMEM;
        if (r < 0)
                log_error_errno(r, "Cannot record the end of command %s: %m", rec->command_id);
        emit(c, type, d);
        waiters_answer(c, rec->command_id, r >= 0 ? text : NULL);
}

/* A command heald was running when it stopped (killed, crashed, restarted) may have acted:
 * it is not run again, and it failed. Only reboot and prepare-stop expect heald to stop. */
static void pending_interrupted(Channel *c, const CommandRecord *rec) {
        usec_t now = now_usec(CLOCK_REALTIME);
        log_event_about(LOG_WARNING, "command-interrupted", &(const LogSubject) { .command_id = rec->command_id },
                        "Command %s (%s) was interrupted by a stop of heald; it does not run again",
                  rec->command_id, rec->action);
        pending_finish(c, rec, "Command Failed",
                       not_run_detail(rec->command_id, rec->action, now > rec->begun_at ? now - rec->begun_at : 0,
                                      "interrupted: heald stopped while it ran; it may have acted, so it does not run again"));
}

static void boot_verify_next(Channel *c) {
        for (; c->next_pending < c->n_pending; c->next_pending++) {
                const CommandRecord *rec = &c->pending[c->next_pending];
                if (!streq_ptr(rec->action, "reboot") && !streq_ptr(rec->action, "prepare-stop")) {
                        pending_interrupted(c, rec);
                        continue;
                }
                int r = verify_start(c->ctx.monitor, NULL, NULL, c->config->commands_verify_timeout, false,
                                       on_boot_verified, c, &c->boot_verify);
                if (r >= 0)
                        return;
                log_error_errno(r, "Cannot verify command %s after the boot: %m", rec->command_id);
                waiters_answer(c, rec->command_id, NULL);
        }
        c->pending = command_records_free(c->pending, c->n_pending);
        c->n_pending = c->next_pending = 0;
}

/* ---- set-up ---- */

int channel_new(const ChannelContext *ctx, const Config *config, Channel **ret) {
        _cleanup_(channel_freep) Channel *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->ctx = *ctx;
        c->config = config;
        CommandJournalReport report = {};
        int r = command_journal_open(ctx->state_dir, &c->journal, &report);
        if (r < 0)
                return log_error_errno(r, "Cannot open the command journal in %s/commands: %m", ctx->state_dir);
        if (report.corrupt > 0)
                log_warning("The command journal had %zu unreadable record%s (first: %s); %s skipped",
                            report.corrupt, plural_s(report.corrupt), report.first_problem,
                            report.corrupt == 1 ? "it was" : "they were");
        r = sd_event_add_time(ctx->event, &c->poll_timer, CLOCK_MONOTONIC, USEC_INFINITY, 10 * USEC_PER_MSEC,
                              on_poll_timer, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->poll_timer, SD_EVENT_OFF);
        *ret = TAKE_PTR(c);
        return 0;
}

Channel *channel_free(Channel *c) {
        if (!c)
                return NULL;
        while (c->jobs)
                job_free(c->jobs);
        while (c->waiting)
                job_free(c->waiting);
        if (c->poll)
                aws_call_cancel(c->poll);
        while (c->side_calls)
                side_call_free(c->side_calls);
        if (c->ctx.units)
                units_cancel_jobs(c->ctx.units, c); /* the reboot's: its JobRemoved finds no one */
        if (c->boot_verify)
                verify_cancel(c->boot_verify);
        command_records_free(c->pending, c->n_pending);
        sd_event_source_disable_unref(c->poll_timer);
        command_journal_free(c->journal);
        free(c->region);
        free(c->instance_id);
        free(c->account_id);
        free(c->queue_url);
        free(c);
        return NULL;
}

static int queue_url_resolve(Channel *c) {
        c->queue_url = mfree(c->queue_url);
        if (!c->config->queue_url)
                return 0;
        int r = sqs_queue_url_expand(c->config->queue_url, c->instance_id, c->region, c->account_id, &c->queue_url);
        if (r < 0)
                return log_error_errno(r, "Cannot fill in [sqs] queue_url %s: %m", c->config->queue_url);
        return 0;
}

int channel_start(Channel *c, const char *region, const char *instance_id, const char *account_id) {
        if (free_and_strdup(&c->region, region) < 0 || free_and_strdup(&c->instance_id, instance_id) < 0 ||
            free_and_strdup(&c->account_id, account_id) < 0)
                return -ENOMEM;
        int r = queue_url_resolve(c);
        if (r < 0)
                return r;
        if (c->queue_url)
                log_receiving(c, "");
        if (!c->pending && !c->boot_verify) {
                (void) command_journal_prune(c->journal, now_usec(CLOCK_REALTIME));
                r = command_journal_pending(c->journal, &c->pending, &c->n_pending);
                if (r < 0)
                        log_error_errno(r, "Cannot read the command journal: %m");
                else if (c->n_pending > 0) {
                        log_info("%zu command%s from before this start wait%s for verification", c->n_pending,
                                 plural_s(c->n_pending), c->n_pending == 1 ? "s" : "");
                        boot_verify_next(c);
                }
        }
        poll_schedule(c, 0);
        return 0;
}

void channel_stop_receiving(Channel *c) {
        receiving_stop(c);
}

void channel_outbox_drained(Channel *c) {
        if (c->jobs && c->jobs->flush_wait)
                (void) sd_event_source_set_time_relative(c->jobs->flush_wait, 0);
}

void channel_set_config(Channel *c, const Config *config) {
        c->config = config;
        /* A poll in flight used the old URL; the next one uses the new. */
        if (c->instance_id)
                (void) queue_url_resolve(c);
        if (c->queue_url && !c->poll && !c->jobs)
                poll_schedule(c, 0);
}
