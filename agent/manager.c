/* manager.c: the daemon's decisions on the loop daemon.c builds: the instance's identity from
 * IMDS, the instance context in every event, heartbeats, STATUS= and `heald status`, reloads,
 * stopping, the metrics file; and the one-shot send-event. */
#include "manager.h"

#include <signal.h>
#include <string.h>
#include <time.h>

#include "aws/eventbridge.h"
#include "aws/imds_doc.h"
#include "backoff.h"
#include "codec.h"
#include "events/event.h"
#include "log.h"
#include "metrics.h"

#define IDENTITY_PATH "/latest/dynamic/instance-identity/document"
/* Answers only where the instance's metadata options allow tags in IMDS (404 elsewhere). */
#define ASG_TAG_PATH "/latest/meta-data/tags/instance/aws:autoscaling:groupName"
#define ASG_NAME_MAX 255
#define STOP_DEADLINE (2 * USEC_PER_SEC)
#define SEND_EVENT_DEADLINE (30 * USEC_PER_SEC)
#define HEARTBEAT_SEQ_FILE "heartbeat.seq"
#define METRICS_INTERVAL (5 * USEC_PER_SEC) /* at most one metrics write per interval */
#define STATUS_SIZE 512

struct Manager {
        ManagerContext ctx;
        Config *config;
        Monitor *monitor; /* daemon only; borrowed */
        Channel *channel; /* daemon only; borrowed: the command channel */

        sd_event_source *identity_timer, *heartbeat_timer, *deadline_timer;
        unsigned identity_failures;
        char *region, *instance_arn;
        bool target_known;
        cJSON *instance; /* every event detail's "instance" context; NULL until IMDS told it */

        uint64_t heartbeat_seq;
        usec_t started_at; /* CLOCK_MONOTONIC */
        bool stopping;
        int outbox_disk_error; /* as last said in the log: 0, or why the outbox holds events in memory */

        Metrics *metrics; /* daemon only */
        sd_event_source *metrics_timer;
        char *metrics_text, *metrics_path; /* what was last written where */
        int metrics_error;                 /* as last said in the log */

        /* send-event */
        const char *oneshot_type, *oneshot_detail;
        AwsCall *oneshot_call;
        int oneshot_result;
};

static void notify(const Manager *m, const char *state) {
        m->ctx.notify(m->ctx.notify_userdata, state);
}

/* Said once when the outbox's disk starts refusing writes (a full disk) and once when it
 * takes them again; in between, STATUS= says how many events are only in memory. */
static void outbox_disk_log(Manager *m) {
        int error = outbox_disk_error(m->ctx.outbox);
        if (error == m->outbox_disk_error)
                return;
        m->outbox_disk_error = error;
        if (error < 0)
                log_internal(LOG_WARNING, error, "outbox-in-memory",
                             "Cannot write the outbox in %s/outbox (%m): holding new events in memory (lost if heald "
                             "stops before they are sent) until the disk takes writes again",
                             m->config->state_dir);
        else
                log_event(LOG_INFO, "outbox-on-disk",
                          "The outbox is written to disk again; %zu event%s held in memory meanwhile %s sent from there",
                          outbox_in_memory(m->ctx.outbox), plural_s(outbox_in_memory(m->ctx.outbox)),
                          outbox_in_memory(m->ctx.outbox) == 1 ? "is" : "are");
}

void manager_status_update(Manager *m) {
        unsigned ok = 0, failing = 0;
        char in_memory[128] = "", names[160] = "", failing_names[170] = "", status[STATUS_SIZE];
        if (!m->ctx.outbox)
                return;
        outbox_disk_log(m);
        if (m->monitor) {
                monitor_counts(m->monitor, &ok, &failing);
                monitor_failing_names(m->monitor, 3, names, sizeof names);
        }
        if (names[0])
                bsprintf(failing_names, " (%s)", names);
        if (m->outbox_disk_error < 0 || outbox_in_memory(m->ctx.outbox) > 0)
                bsprintf(in_memory, " (%zu only in memory%s%s)", outbox_in_memory(m->ctx.outbox),
                         m->outbox_disk_error < 0 ? ": " : "",
                         m->outbox_disk_error < 0 ? strerror(-m->outbox_disk_error) : "");
        bsprintf(status, "STATUS=%schecks: %u ok, %u failing%s; outbox %zu event%s%s; %s",
                 m->config->dry_run ? "DRY RUN (no action is taken): " : "", ok, failing, failing_names,
                 outbox_count(m->ctx.outbox), plural_s(outbox_count(m->ctx.outbox)), in_memory,
                 m->target_known ? "publishing" : "waiting for the IMDS identity");
        notify(m, status);
}

/* The instance's context goes into every detail, so that a rule or a person reading the
 * event needs no second lookup. A detail that already names an instance keeps its own. */
static int add_instance_context(Manager *m, cJSON *detail) {
        if (!m->instance || !cJSON_IsObject(detail) || cJSON_HasObjectItem(detail, "instance"))
                return 0;
        cJSON *copy = cJSON_Duplicate(m->instance, true);
        if (!copy || !cJSON_AddItemToObject(detail, "instance", copy)) {
                cJSON_Delete(copy);
                return -ENOMEM;
        }
        return 0;
}

/* Encode and append an event: durable on return, or written ahead (see MonitorContext). */
static int manager_record(Manager *m, const char *detail_type, cJSON *detail, bool ahead) {
        _cleanup_free_ char *record = NULL;
        int r = add_instance_context(m, detail);
        if (r < 0) {
                cJSON_Delete(detail);
                return r;
        }
        if (m->metrics && metrics_observe_event(m->metrics, detail_type, detail) < 0)
                log_debug("Metrics: cannot count a %s event", detail_type);
        r = event_record_encode(detail_type, detail, now_usec(CLOCK_REALTIME), &record);
        cJSON_Delete(detail);
        if (r < 0)
                return r;
        uint64_t id;
        return ahead ? outbox_append_nosync(m->ctx.outbox, record, strlen(record), &id)
                     : outbox_append(m->ctx.outbox, record, strlen(record), &id);
}

int manager_emit(Manager *m, const char *detail_type, cJSON *detail) {
        int r = manager_record(m, detail_type, detail, false);
        if (r < 0)
                return r;
        publisher_kick(m->ctx.publisher);
        manager_status_update(m);
        return 0;
}

int manager_emit_fn(void *userdata, const char *detail_type, cJSON *detail) {
        return manager_emit(userdata, detail_type, detail);
}

int manager_emit_ahead_fn(void *userdata, const char *detail_type, cJSON *detail) {
        return manager_record(userdata, detail_type, detail, true);
}

/* Records written ahead reach the publisher only once durable: what it sent and the power then
 * took away would leave an id that a restarted heald hands out again. If the sync failed (a
 * failing disk: logged by the monitor), they go with the publisher's next kick or retry. */
int manager_sync_events_fn(void *userdata) {
        Manager *m = userdata;
        int r = outbox_sync(m->ctx.outbox);
        if (r >= 0)
                publisher_kick(m->ctx.publisher);
        manager_status_update(m);
        return r;
}

/* ---- one-shot send-event ---- */

static void oneshot_done(Manager *m, int result) {
        m->oneshot_result = result;
        (void) sd_event_exit(m->ctx.event, 0);
}

static void on_oneshot_response(const AwsResult *res, void *userdata) {
        Manager *m = userdata;
        char what[AWS_RESULT_DESCRIPTION_SIZE];
        m->oneshot_call = NULL;
        if (res->error < 0) {
                log_error("PutEvents failed: %s", aws_result_describe(res, what));
                return oneshot_done(m, res->error);
        }
        if (res->status < 200 || res->status >= 300) {
                log_event(LOG_ERR, "aws-refused", "EventBridge refused PutEvents: %s. Fix: %s",
                          aws_result_describe(res, what), aws_error_hint(res->aws));
                return oneshot_done(m, -EACCES);
        }
        EventBridgeEntryResult result;
        _cleanup_free_ char *why = NULL;
        int r = eventbridge_parse_response(res->body, res->body_len, 1, &result, &why);
        if (r < 0) {
                log_error("Unreadable PutEvents response: %s", why ? why : "?");
                return oneshot_done(m, r);
        }
        if (result.status != EVENTBRIDGE_ENTRY_OK) {
                log_error("EventBridge did not accept the event: %s: %s", result.error_code, result.error_message);
                return oneshot_done(m, -EBADMSG);
        }
        log_info("EventBridge accepted the event");
        oneshot_done(m, 0);
}

static void oneshot_send(Manager *m) {
        if (!m->target_known || m->oneshot_call || m->oneshot_result != 1)
                return;
        _cleanup_free_ char *endpoint = NULL;
        int r = config_service_endpoint(m->config, EVENTBRIDGE_SERVICE, m->region, &endpoint);
        if (r < 0) {
                log_error_errno(r, "Cannot build the PutEvents request: %m");
                return oneshot_done(m, r);
        }
        EventBridgeEntry e = {
                .source = m->config->source,
                .detail_type = m->oneshot_type,
                .detail = m->oneshot_detail,
                .event_bus = m->config->event_bus,
                .resource = m->instance_arn,
                .time = now_usec(CLOCK_REALTIME),
        };
        EventBridgeTarget target = {
                .endpoint = endpoint,
                .region = m->region,
                .timeout = m->config->request_timeout,
                .max_request_bytes = m->config->max_request_bytes,
        };
        r = eventbridge_put_one(m->ctx.aws, &target, &e, on_oneshot_response, m, &m->oneshot_call);
        if (r == -ENOKEY)
                return; /* credentials not there yet: on_credentials_changed() calls again */
        if (r < 0) {
                log_error_errno(r, "Cannot send PutEvents: %m");
                oneshot_done(m, r);
        }
}

/* ---- identity ---- */

static int instance_context_new(const ImdsIdentity *id, cJSON **ret) {
        cJSON *o = cJSON_CreateObject();
        if (!o || !cJSON_AddStringToObject(o, "id", id->instance_id) ||
            !cJSON_AddStringToObject(o, "type", id->instance_type) ||
            !cJSON_AddStringToObject(o, "availability_zone", id->availability_zone) ||
            !cJSON_AddStringToObject(o, "ami", id->image_id)) {
                cJSON_Delete(o);
                return -ENOMEM;
        }
        *ret = o;
        return 0;
}

/* The group name is the only tag heald reads; without tags in IMDS the context goes without it. */
static void on_asg_name(int error, const char *body, size_t len, void *userdata) {
        Manager *m = userdata;
        char name[ASG_NAME_MAX + 1];
        if (error < 0 || !m->instance || len == 0 || len > ASG_NAME_MAX) {
                log_debug("No Auto Scaling group name from IMDS tags (%s)", error < 0 ? strerror(-error) : "empty or too long");
                return;
        }
        codec_escape_copy(name, sizeof name, body, len);
        cJSON_DeleteItemFromObjectCaseSensitive(m->instance, "auto_scaling_group");
        if (!cJSON_AddStringToObject(m->instance, "auto_scaling_group", name))
                log_warning("Out of memory: events go without the Auto Scaling group name");
}

static void instance_context_set(Manager *m, const ImdsIdentity *id) {
        cJSON *instance;
        int r = instance_context_new(id, &instance);
        if (r < 0) {
                log_warning_errno(r, "Cannot record the instance's context for events: %m");
                return;
        }
        cJSON_Delete(m->instance);
        m->instance = instance;
        r = imds_fetch(m->ctx.imds, ASG_TAG_PATH, on_asg_name, m);
        if (r < 0)
                log_debug_errno(r, "Cannot ask IMDS for the Auto Scaling group name: %m");
}

static int target_known(Manager *m, const char *region, const char *instance_arn) {
        int r = free_and_strdup(&m->region, region);
        if (r >= 0)
                r = free_and_strdup(&m->instance_arn, instance_arn);
        if (r < 0)
                return r;
        m->target_known = true;
        if (m->ctx.publisher) {
                r = publisher_set_target(m->ctx.publisher, m->region, m->instance_arn);
                if (r < 0)
                        return log_error_errno(r, "Cannot publish to EventBridge in %s: %m", m->region);
                manager_status_update(m);
        } else
                oneshot_send(m);
        return 0;
}

static void schedule_identity(Manager *m, usec_t delay) {
        (void) sd_event_source_set_time(m->identity_timer, now_usec(CLOCK_BOOTTIME) + delay);
        (void) sd_event_source_set_enabled(m->identity_timer, SD_EVENT_ONESHOT);
}

static void on_identity(int error, const char *body, size_t len, void *userdata) {
        Manager *m = userdata;
        _cleanup_free_ char *why = NULL;
        ImdsIdentity id = {};
        if (error >= 0)
                error = imds_parse_identity(body, len, &id, &why);
        if (error < 0) {
                usec_t delay = backoff_delay(m->identity_failures, USEC_PER_SEC, 60 * USEC_PER_SEC, backoff_random());
                /* send-event bypasses the outbox: nothing waits there for it */
                log_internal(m->identity_failures == 0 ? LOG_WARNING : LOG_DEBUG, error, "imds-error",
                             "Failed to read the instance identity from IMDS%s%s: %m; %s; retrying in %llu ms",
                             why ? ": " : "", why ? why : "",
                             m->oneshot_type ? "the event is sent once it can be read" : "events wait in the outbox",
                             (unsigned long long) (delay / USEC_PER_MSEC));
                m->identity_failures++;
                schedule_identity(m, delay);
                return;
        }
        /* The ARN names where the instance is; the region heald publishes to may be configured. */
        const char *region = m->config->region ? m->config->region : id.region;
        _cleanup_free_ char *arn = NULL;
        int r = imds_identity_instance_arn(&id, &arn);
        if (r >= 0) {
                log_info("Instance %s in %s (account %s); publishing to EventBridge in %s", id.instance_id, id.region,
                         id.account_id, region);
                r = target_known(m, region, arn);
        }
        if (r >= 0)
                instance_context_set(m, &id);
        if (r >= 0 && m->channel)
                r = channel_start(m->channel, region, id.instance_id, id.account_id);
        if (r < 0 && !m->ctx.publisher)
                oneshot_done(m, r);
}

static int on_identity_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        int r = imds_fetch(m->ctx.imds, IDENTITY_PATH, on_identity, m);
        if (r < 0)
                on_identity(r, NULL, 0, m);
        return 0;
}

static void on_credentials_changed(void *userdata) {
        Manager *m = userdata;
        if (m->ctx.publisher)
                publisher_kick(m->ctx.publisher);
        else
                oneshot_send(m);
}


/* ---- daemon ---- */

static int heartbeat_seq_load(Manager *m) {
        char path[4096];
        _cleanup_free_ char *s = NULL;
        int r = bsprintf(path, "%s/" HEARTBEAT_SEQ_FILE, m->config->state_dir);
        if (r >= 0)
                r = read_file_full(path, 64, &s, NULL);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno != 0 || end == s || (*end && *end != '\n')) {
                log_warning("%s is corrupt; heartbeat numbers start again at 1", path);
                v = 0;
        }
        m->heartbeat_seq = v;
        return 0;
}

static uint64_t uptime_seconds(const Manager *m) {
        return (now_usec(CLOCK_MONOTONIC) - m->started_at) / USEC_PER_SEC;
}

static int emit_heartbeat(Manager *m) {
        char buf[32];
        uint64_t next = m->heartbeat_seq + 1;
        int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long) next);
        /* The number is made durable before it is used, so it never repeats across restarts. */
        int r = write_file_atomic(m->config->state_dir, HEARTBEAT_SEQ_FILE, buf, (size_t) n);
        if (r < 0)
                return r;
        m->heartbeat_seq++;
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddNumberToObject(d, "seq", (double) m->heartbeat_seq) ||
            !cJSON_AddNumberToObject(d, "uptime_s", (double) uptime_seconds(m)) ||
            !cJSON_AddNumberToObject(d, "outbox_depth", (double) outbox_count(m->ctx.outbox))) {
                cJSON_Delete(d);
                return -ENOMEM;
        }
        return manager_emit(m, "Agent Heartbeat", d);
}

/* Each gap a little shorter than heartbeat_interval, by a fresh random amount: healds started
 * together (a fleet launched or rebooted at once) do not PutEvents in lockstep for ever. */
static usec_t next_heartbeat_delay(const Manager *m) {
        return backoff_jittered_period(m->config->heartbeat_interval, backoff_random());
}

static int on_heartbeat(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        int r = emit_heartbeat(m);
        if (r < 0)
                log_error_errno(r, "Failed to record a heartbeat: %m");
        manager_status_update(m);
        (void) sd_event_source_set_time(s, usec + next_heartbeat_delay(m));
        return 0;
}

static void on_publisher_idle(void *userdata) {
        Manager *m = userdata;
        if (m->stopping)
                (void) sd_event_exit(m->ctx.event, 0);
        else if (m->channel)
                channel_outbox_drained(m->channel);
}

static int on_deadline(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Manager *m = userdata;
        if (m->ctx.publisher)
                log_warning("Stopping with %zu event%s left in the outbox; sent at the next start",
                            outbox_count(m->ctx.outbox), plural_s(outbox_count(m->ctx.outbox)));
        else
                log_error("Timed out waiting for IMDS and AWS");
        if (!m->ctx.publisher)
                m->oneshot_result = -ETIMEDOUT;
        return sd_event_exit(m->ctx.event, 0);
}

static int arm_deadline(Manager *m, usec_t delay) {
        m->deadline_timer = sd_event_source_disable_unref(m->deadline_timer);
        return sd_event_add_time_relative(m->ctx.event, &m->deadline_timer, CLOCK_MONOTONIC, delay, USEC_PER_MSEC,
                                          on_deadline, m);
}

int manager_stop(Manager *m, int signo) {
        if (m->stopping)
                return sd_event_exit(m->ctx.event, 0); /* a second signal: no more waiting */
        m->stopping = true;
        log_event(LOG_INFO, "stopping", "Received %s; stopping", strsignal(signo));
        notify(m, "STOPPING=1\nSTATUS=Stopping: sending what is in flight");
        m->heartbeat_timer = sd_event_source_disable_unref(m->heartbeat_timer);
        /* A command taken now would never run: heald exits once the outbox is sent. */
        if (m->channel)
                channel_stop_receiving(m->channel);

        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddStringToObject(d, "reason", signo == SIGTERM ? "SIGTERM" : "SIGINT") ||
            !cJSON_AddNumberToObject(d, "uptime_s", (double) uptime_seconds(m))) {
                cJSON_Delete(d);
                d = NULL;
        }
        int r = d ? manager_emit(m, "Agent Stopping", d) : -ENOMEM;
        if (r < 0)
                log_error_errno(r, "Failed to record the Agent Stopping event: %m");
        r = arm_deadline(m, STOP_DEADLINE);
        if (r < 0)
                return sd_event_exit(m->ctx.event, 0);
        publisher_kick(m->ctx.publisher);
        return 0;
}

/* What lives below the event loop (state_dir, IMDS, outbox size) needs a restart. */
int manager_reload(Manager *m) {
        _cleanup_free_ char *error = NULL;
        Config *fresh = NULL;
        notify(m, "RELOADING=1");
        int r = config_load_file(m->config->path, &fresh, &error);
        if (r < 0) {
                log_event(LOG_ERR, "reload-rejected", "Reload rejected, the running configuration stays: %s",
                          error ? error : "out of memory");
                notify(m, "READY=1");
                return 0;
        }
        if (!streq_ptr(fresh->state_dir, m->config->state_dir) ||
            !streq_ptr(fresh->imds_endpoint, m->config->imds_endpoint) || fresh->imds_disabled != m->config->imds_disabled ||
            fresh->outbox_max_bytes != m->config->outbox_max_bytes || !streq_ptr(fresh->region, m->config->region) ||
            !streq_ptr(fresh->control_socket, m->config->control_socket))
                log_warning("Reload: state_dir, imds_endpoint, imds_disabled, region, control_socket and [outbox] take effect at the "
                            "next restart");
        r = monitor_reload(m->monitor, fresh->checks, fresh->n_checks, fresh->dry_run);
        if (r >= 0)
                r = publisher_set_config(m->ctx.publisher, fresh);
        if (r >= 0 && m->channel)
                channel_set_config(m->channel, fresh);
        if (r < 0) {
                /* Half-applied: go back to the old checks rather than run a mix. */
                log_error_errno(r, "Reload failed, keeping the running configuration: %m");
                (void) monitor_reload(m->monitor, m->config->checks, m->config->n_checks, m->config->dry_run);
                (void) publisher_set_config(m->ctx.publisher, m->config);
                config_free(fresh);
                notify(m, "READY=1");
                return 0;
        }
        log_set_max_level(fresh->log_level);
        config_free(m->config);
        m->config = fresh;
        if (m->heartbeat_timer && fresh->heartbeat_interval > 0)
                (void) sd_event_source_set_time_relative(m->heartbeat_timer, next_heartbeat_delay(m));
        log_event(LOG_INFO, "reloaded", "Configuration reloaded from %s (%zu check%s)", m->config->path, m->config->n_checks,
                  plural_s(m->config->n_checks));
        notify(m, "READY=1");
        manager_status_update(m);
        return 0;
}

int manager_control_request(const char *request, cJSON **ret, void *userdata) {
        Manager *m = userdata;
        /* "status" or "status CHECK" (that one with its history) */
        if (strcmp(request, "status") == 0 || strncmp(request, "status ", 7) == 0) {
                cJSON *checks = NULL;
                int r = monitor_status(m->monitor, request[6] ? request + 7 : NULL, &checks);
                if (r < 0)
                        return r;
                cJSON *o = cJSON_CreateObject();
                if (!o || !cJSON_AddStringToObject(o, "version", HEALD_VERSION) ||
                    !cJSON_AddNumberToObject(o, "pid", (double) getpid()) ||
                    !cJSON_AddNumberToObject(o, "outbox_depth", (double) outbox_count(m->ctx.outbox)) ||
                    !cJSON_AddBoolToObject(o, "publishing", m->target_known) ||
                    !cJSON_AddBoolToObject(o, "dry_run", m->config->dry_run) || !cJSON_AddItemToObject(o, "checks", checks)) {
                        cJSON_Delete(o);
                        cJSON_Delete(checks);
                        return -ENOMEM;
                }
                *ret = o;
                return 0;
        }
        if (strncmp(request, "reset ", 6) == 0) {
                int r = monitor_reset(m->monitor, request + 6);
                if (r < 0)
                        return r;
                cJSON *o = cJSON_CreateObject();
                if (!o || !cJSON_AddStringToObject(o, "reset", request + 6)) {
                        cJSON_Delete(o);
                        return -ENOMEM;
                }
                *ret = o;
                return 0;
        }
        return -EINVAL;
}

int manager_emit_started(Manager *m) {
        cJSON *d = cJSON_CreateObject();
        if (!d || !cJSON_AddStringToObject(d, "version", HEALD_VERSION) ||
            !cJSON_AddStringToObject(d, "config_digest", m->config->digest) ||
            !cJSON_AddStringToObject(d, "boot_id", m->ctx.boot_id) ||
            !cJSON_AddNumberToObject(d, "pid", (double) getpid())) {
                cJSON_Delete(d);
                return -ENOMEM;
        }
        return manager_emit(m, "Agent Started", d);
}

/* [metrics] textfile, for the node exporter's textfile collector: rendered every
 * METRICS_INTERVAL, written (atomically, 0644 for the collector's user) only when it changed. */
static void metrics_flush(Manager *m) {
        const char *path = m->config->metrics_textfile;
        if (!path)
                return;
        _cleanup_cjson_ cJSON *checks = NULL;
        if (monitor_status(m->monitor, NULL, &checks) < 0)
                checks = NULL; /* rendered without the checks' gauges */
        PublisherCounts counts = publisher_counts(m->ctx.publisher);
        MetricsGauges g = {
                .checks = checks,
                .outbox_depth = outbox_count(m->ctx.outbox),
                .events_published = counts.published,
                .events_dead_lettered = counts.dead_lettered,
                .events_dropped = counts.dropped_reported + outbox_dropped(m->ctx.outbox),
                .aws = aws_client_request_counts(m->ctx.aws),
                .credentials_expiration = credentials_expiration(m->ctx.credentials),
                .dry_run = m->config->dry_run,
        };
        _cleanup_free_ char *text = NULL, *dir = strdup(path);
        int r = dir ? metrics_render(m->metrics, &g, &text) : -ENOMEM;
        if (r >= 0 && streq_ptr(text, m->metrics_text) && streq_ptr(path, m->metrics_path))
                return;
        char *slash = dir ? strrchr(dir, '/') : NULL; /* validated: absolute */
        if (slash) {
                *slash = 0;
                r = r < 0 ? r : write_file_atomic_mode(dir[0] ? dir : "/", slash + 1, text, strlen(text), 0644);
        }
        if (r < 0) {
                if (r != m->metrics_error)
                        log_warning_errno(r, "Cannot write the metrics to %s: %m", path);
                m->metrics_error = r;
                return;
        }
        if (m->metrics_error < 0)
                log_info("The metrics are written to %s again", path);
        m->metrics_error = 0;
        if (free_and_strdup(&m->metrics_path, path) < 0)
                return;
        free(m->metrics_text);
        m->metrics_text = TAKE_PTR(text);
}

static int on_metrics_timer(sd_event_source *s, uint64_t usec, void *userdata) {
        Manager *m = userdata;
        metrics_flush(m);
        (void) sd_event_source_set_time(s, usec + METRICS_INTERVAL);
        return 0;
}


/* ---- starting ---- */

/* Start learning the identity and credentials. With environment credentials and a
 * configured region (development) heald publishes at once, without the instance ARN
 * until IMDS tells it. */
static int start_aws(Manager *m) {
        const char *plain = config_plain_http_endpoint(m->config);
        if (plain)
                log_event(LOG_WARNING, "plain-http-endpoint",
                          "%s is plain http:// to a host that is not this one: AWS requests are signed but anyone on "
                          "the way can read the events and commands; use https://",
                          plain);
        if (m->config->imds_disabled) {
                /* As the AWS tools: without IMDS nothing can be learnt, so everything must be given. */
                if (!credentials_from_environment(m->ctx.credentials) || !m->config->region)
                        return log_error_errno(-EINVAL, "IMDS is disabled ([aws] imds_disabled or "
                                                        "AWS_EC2_METADATA_DISABLED): heald needs AWS_ACCESS_KEY_ID, "
                                                        "AWS_SECRET_ACCESS_KEY and a region ([aws] region or AWS_REGION)");
                if (m->config->queue_url)
                        log_warning("IMDS is disabled: the command channel needs the instance's identity and stays off");
                return target_known(m, m->config->region, NULL);
        }
        if (credentials_from_environment(m->ctx.credentials) && m->config->region) {
                int r = target_known(m, m->config->region, NULL);
                if (r < 0)
                        return r;
        }
        schedule_identity(m, 0);
        return credentials_start(m->ctx.credentials);
}

int manager_start(Manager *m) {
        if (m->config->heartbeat_interval > 0) {
                int r = sd_event_add_time_relative(m->ctx.event, &m->heartbeat_timer, CLOCK_BOOTTIME,
                                                   next_heartbeat_delay(m), USEC_PER_MSEC, on_heartbeat, m);
                if (r < 0)
                        return log_error_errno(r, "Failed to arm the heartbeat timer: %m");
                (void) sd_event_source_set_enabled(m->heartbeat_timer, SD_EVENT_ON);
        }
        int r = metrics_new(&m->metrics);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the metrics: %m");
        /* At once, then every METRICS_INTERVAL; a reload may set or change [metrics] textfile. */
        r = sd_event_add_time_relative(m->ctx.event, &m->metrics_timer, CLOCK_BOOTTIME, 0, USEC_PER_MSEC * 100,
                                       on_metrics_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to arm the metrics timer: %m");
        (void) sd_event_source_set_enabled(m->metrics_timer, SD_EVENT_ON);
        r = start_aws(m);
        if (r < 0)
                return log_error_errno(r, "Failed to start AWS access: %m");
        return 0;
}

int manager_send_event_start(Manager *m, const char *detail_type, const char *detail_json) {
        cJSON *detail = cJSON_Parse(detail_json);
        bool is_object = cJSON_IsObject(detail);
        cJSON_Delete(detail);
        if (!is_object)
                return log_error_errno(EINVAL, "DETAIL_JSON must be a JSON object, e.g. '{\"note\":\"hello\"}'");
        if (!event_detail_type_is_valid(detail_type))
                return log_error_errno(EINVAL, "DETAIL_TYPE must be 1 to %d printable characters", EVENT_DETAIL_TYPE_MAX);
        m->oneshot_type = detail_type;
        m->oneshot_detail = detail_json;
        m->oneshot_result = 1; /* pending */
        int r = arm_deadline(m, SEND_EVENT_DEADLINE);
        if (r < 0)
                return r;
        return start_aws(m);
}

int manager_send_event_result(const Manager *m) {
        return m->oneshot_result;
}

/* ---- the object ---- */

int manager_new(const ManagerContext *ctx, Config *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = calloc(1, sizeof *m);
        if (!m) {
                config_free(config);
                return log_error_errno(ENOMEM, "Failed to set up the manager: %m");
        }
        m->ctx = *ctx;
        m->config = config;
        m->started_at = now_usec(CLOCK_MONOTONIC);
        if (m->ctx.outbox) {
                outbox_disk_log(m); /* a full disk: said before anything else is tried */
                int r = heartbeat_seq_load(m);
                if (r < 0)
                        return log_error_errno(r, "Failed to read %s/" HEARTBEAT_SEQ_FILE ": %m", config->state_dir);
        }
        if (m->ctx.publisher)
                publisher_set_idle_callback(m->ctx.publisher, on_publisher_idle, m);
        credentials_set_callback(m->ctx.credentials, on_credentials_changed, m);
        int r = sd_event_add_time(m->ctx.event, &m->identity_timer, CLOCK_BOOTTIME, USEC_INFINITY, USEC_PER_MSEC * 10,
                                  on_identity_timer, m);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the manager: %m");
        (void) sd_event_source_set_enabled(m->identity_timer, SD_EVENT_OFF);
        *ret = TAKE_PTR(m);
        return 0;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;
        if (m->oneshot_call)
                aws_call_cancel(m->oneshot_call);
        if (m->ctx.imds)
                imds_cancel(m->ctx.imds, m);
        sd_event_source_disable_unref(m->identity_timer);
        sd_event_source_disable_unref(m->heartbeat_timer);
        sd_event_source_disable_unref(m->deadline_timer);
        sd_event_source_disable_unref(m->metrics_timer);
        metrics_free(m->metrics);
        free(m->metrics_text);
        free(m->metrics_path);
        free(m->region);
        free(m->instance_arn);
        cJSON_Delete(m->instance);
        config_free(m->config);
        free(m);
        return NULL;
}

const Config *manager_config(const Manager *m) {
        return m->config;
}

void manager_set_modules(Manager *m, Monitor *monitor, Channel *channel) {
        m->monitor = monitor;
        m->channel = channel;
}
