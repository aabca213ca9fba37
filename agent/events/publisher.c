/* events/publisher.c: the outbox → PutEvents pipeline. A few requests of up to 10 entries are in
 * flight at once; accepted entries leave the outbox in one durable write per response.
 * Transient failures pause sending with exponential backoff and full jitter; refusals an
 * operator must fix pause it for auth_retry_interval with one log line per window; an entry
 * that can never succeed goes to the dead-letter file, never silently away. */
#include "events/publisher.h"

#include <time.h>

#include "aws/eventbridge.h"
#include "backoff.h"
#include "events/event.h"
#include "log.h"

#define MAX_IN_FLIGHT 4
#define MAX_ENTRIES 10

typedef struct Batch {
        Publisher *publisher;
        uint64_t ids[MAX_ENTRIES];
        size_t n;
        AwsCall *call;
} Batch;

struct Publisher {
        sd_event *event;
        const Config *config;
        Outbox *outbox;
        AwsClient *aws;
        char *region, *endpoint, *instance_arn;

        Batch *batches[MAX_IN_FLIGHT];
        size_t n_batches;
        sd_event_source *timer;   /* wakes us when a pause ends */
        sd_event_source *sync;    /* idle-priority: one fdatasync for every response handled meanwhile */
        usec_t paused_until;      /* CLOCK_BOOTTIME; 0 = not paused */
        unsigned failures;        /* consecutive transient failures */
        uint64_t one_by_one_until; /* send singly up to this id to find a malformed entry */
        bool waiting_credentials;
        publisher_idle_fn idle;
        void *idle_userdata;
        AwsCall *dropped_call;    /* an Events Dropped report in flight */
        uint64_t dropped_sent;    /* the count it carries */
        uint64_t dead_letters_dropped; /* oldest dead-letter lines dropped to stay within the cap */
        PublisherCounts counts;   /* since heald started, for the metrics */
};

static bool id_in_flight(const Publisher *p, uint64_t id) {
        for (size_t i = 0; i < p->n_batches; i++)
                for (size_t j = 0; j < p->batches[i]->n; j++)
                        if (p->batches[i]->ids[j] == id)
                                return true;
        return false;
}

static void batch_forget(Publisher *p, Batch *b) {
        for (size_t i = 0; i < p->n_batches; i++)
                if (p->batches[i] == b) {
                        p->batches[i] = p->batches[--p->n_batches];
                        break;
                }
        free(b);
}

static void pause_for(Publisher *p, usec_t delay) {
        usec_t now = now_usec(CLOCK_BOOTTIME);
        if (p->paused_until < now + delay)
                p->paused_until = now + delay;
        (void) sd_event_source_set_time(p->timer, p->paused_until);
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_ONESHOT);
}

static bool paused(const Publisher *p) {
        return p->paused_until > now_usec(CLOCK_BOOTTIME);
}

static void transient_failure(Publisher *p, const char *what) {
        usec_t delay = backoff_delay(p->failures, p->config->retry_base, p->config->retry_max, backoff_random());
        log_event(p->failures == 0 ? LOG_WARNING : LOG_INFO, "publish-retry",
                  "Publishing to EventBridge failed (%s); retrying in %llu ms", what,
                  (unsigned long long) (delay / USEC_PER_MSEC));
        p->failures++;
        pause_for(p, delay);
}

static void dead_letter(Publisher *p, uint64_t id, const char *reason) {
        int r = outbox_dead_letter(p->outbox, id, reason, p->config->dead_letter_max_bytes);
        if (r < 0) {
                /* The event stays in the outbox; without a pause it would be sent and refused
                 * again at once, over and over (a full disk). */
                log_error_errno(r, "Failed to move event %llu to the dead-letter file: %m",
                                (unsigned long long) id);
                transient_failure(p, "cannot write the dead-letter file");
                return;
        }
        p->counts.dead_lettered++;
        log_event(LOG_ERR, "dead-letter",
                  "EventBridge can never accept event %llu (%s); moved it to %s/outbox/dead-letter.jsonl",
                  (unsigned long long) id, reason, p->config->state_dir);
        if (r > 0) {
                p->dead_letters_dropped += (uint64_t) r;
                log_event(LOG_WARNING, "dead-letter-trimmed",
                          "The dead-letter file reached [outbox] dead_letter_max_bytes: dropped its %d oldest lines "
                          "(%llu since heald started)",
                          r, (unsigned long long) p->dead_letters_dropped);
        }
}

static EventBridgeTarget target(const Publisher *p) {
        return (EventBridgeTarget) {
                .endpoint = p->endpoint,
                .region = p->region,
                .timeout = p->config->request_timeout,
                .max_request_bytes = p->config->max_request_bytes,
        };
}

static void on_dropped_response(const AwsResult *res, void *userdata) {
        Publisher *p = userdata;
        EventBridgeEntryResult result;
        _cleanup_free_ char *why = NULL;
        p->dropped_call = NULL;
        if (res->error < 0 || res->status < 200 || res->status >= 300 ||
            eventbridge_parse_response(res->body, res->body_len, 1, &result, &why) < 0 ||
            result.status != EVENTBRIDGE_ENTRY_OK)
                return; /* the count stays in the outbox: tried again after the next accepted batch */
        int r = outbox_dropped_reported(p->outbox, p->dropped_sent);
        if (r < 0)
                log_error_errno(r, "Failed to record that %llu dropped events were reported (they may be reported again): %m",
                                (unsigned long long) p->dropped_sent);
        else {
                p->counts.dropped_reported += p->dropped_sent;
                log_event(LOG_WARNING, "events-dropped",
                          "The outbox was full ([outbox] max_bytes); %llu oldest events were dropped, and an Events "
                          "Dropped event reported it",
                          (unsigned long long) p->dropped_sent);
        }
}

/* Drops are reported as soon as the bus answers again, ahead of the backlog (which may take
 * minutes to drain), in a request of their own. The count stays durable in the outbox until
 * EventBridge has accepted the report. */
static void report_dropped(Publisher *p) {
        uint64_t dropped = outbox_dropped(p->outbox);
        if (dropped == 0 || p->dropped_call)
                return;
        char text[64];
        bsprintf(text, "{\"count\":%llu}", (unsigned long long) dropped);
        EventBridgeEntry e = {
                .source = p->config->source,
                .detail_type = "Events Dropped",
                .detail = text,
                .event_bus = p->config->event_bus,
                .resource = p->instance_arn,
                .time = now_usec(CLOCK_REALTIME),
        };
        EventBridgeTarget t = target(p);
        int r = eventbridge_put_one(p->aws, &t, &e, on_dropped_response, p, &p->dropped_call);
        if (r < 0)
                log_error_errno(r, "Failed to report %llu dropped events: %m", (unsigned long long) dropped);
        else
                p->dropped_sent = dropped;
}

static void on_response(const AwsResult *res, void *userdata);
static void pump(Publisher *p);

/* Read, decode and add pending records to a batch. Returns the number of entries or <0. */
static int batch_fill(Publisher *p, Batch *b, EventBridgeBatch *eb) {
        uint64_t ids[MAX_IN_FLIGHT * MAX_ENTRIES + MAX_ENTRIES], after = 0;
        size_t limit = p->one_by_one_until ? 1 : MAX_ENTRIES;

        while (b->n < limit) {
                size_t n = outbox_list(p->outbox, after, ids, ELEMENTSOF(ids));
                if (n == 0)
                        break;
                for (size_t i = 0; i < n && b->n < limit; i++) {
                        after = ids[i];
                        if (id_in_flight(p, ids[i]))
                                continue;
                        _cleanup_free_ char *data = NULL, *why = NULL;
                        size_t len;
                        int r = outbox_read(p->outbox, ids[i], &data, &len);
                        if (r < 0)
                                return r;
                        EventRecord rec = {};
                        r = event_record_decode(data, len, &rec, &why);
                        if (r < 0) {
                                dead_letter(p, ids[i], why ? why : "undecodable record");
                                continue;
                        }
                        EventBridgeEntry e = {
                                .source = p->config->source,
                                .detail_type = rec.detail_type,
                                .detail = rec.detail_json,
                                .event_bus = p->config->event_bus,
                                .resource = p->instance_arn,
                                .time = rec.time,
                        };
                        r = eventbridge_batch_add(eb, &e);
                        event_record_done(&rec);
                        if (r == -E2BIG)
                                return (int) b->n;
                        if (r == -EMSGSIZE) {
                                dead_letter(p, ids[i], "entry larger than [eventbridge] max_request_bytes");
                                continue;
                        }
                        if (r < 0)
                                return r;
                        b->ids[b->n++] = ids[i];
                        if (p->one_by_one_until && ids[i] >= p->one_by_one_until)
                                p->one_by_one_until = 0;
                }
        }
        return (int) b->n;
}

static int batch_send(Publisher *p) {
        _cleanup_free_ Batch *b = calloc(1, sizeof *b);
        if (!b)
                return -ENOMEM;
        b->publisher = p;
        EventBridgeBatch *eb = NULL;
        int r = eventbridge_batch_new(p->config->max_request_bytes, &eb);
        if (r < 0)
                return r;
        r = batch_fill(p, b, eb);
        _cleanup_free_ char *body = NULL;
        size_t body_len = 0;
        if (r > 0)
                r = eventbridge_batch_body(eb, &body, &body_len);
        eventbridge_batch_free(eb);
        if (r < 0 || b->n == 0)
                return r;

        EventBridgeTarget t = target(p);
        r = eventbridge_put(p->aws, &t, body, body_len, on_response, b, &b->call);
        if (r < 0)
                return r;
        p->batches[p->n_batches++] = TAKE_PTR(b);
        return 1;
}

static void pump(Publisher *p) {
        if (!p->endpoint || paused(p))
                return;
        while (p->n_batches < MAX_IN_FLIGHT) {
                int r = batch_send(p);
                if (r == -ENOKEY) {
                        /* No usable credentials yet; credentials_changed kicks us. */
                        if (!p->waiting_credentials)
                                log_info("Waiting for AWS credentials before publishing %zu event%s",
                                         outbox_count(p->outbox), plural_s(outbox_count(p->outbox)));
                        p->waiting_credentials = true;
                        return;
                }
                if (r < 0) {
                        log_error_errno(r, "Failed to prepare a PutEvents request: %m");
                        return transient_failure(p, "local error");
                }
                if (r == 0)
                        break;
                p->waiting_credentials = false;
        }
        if (p->n_batches == 0 && outbox_count(p->outbox) == 0 && p->idle)
                p->idle(p->idle_userdata);
}

/* A refusal an operator must fix (permissions, credentials, a missing bus), for the whole
 * request or for some of its entries: the events stay and the next attempt waits for
 * auth_retry_interval, with one log line per window. */
static void operator_refusal(Publisher *p, const AwsError *e) {
        if (!paused(p))
                log_event(LOG_ERR, "aws-refused",
                          "EventBridge refused PutEvents: %s: %s. Fix: %s. The outbox holds %zu event%s; "
                          "next attempt in %llu s",
                          e->code, e->message, aws_error_hint(e), outbox_count(p->outbox), plural_s(outbox_count(p->outbox)),
                          (unsigned long long) (p->config->auth_retry_interval / USEC_PER_SEC));
        pause_for(p, p->config->auth_retry_interval);
}

static void handle_refusal(Publisher *p, Batch *b, const AwsResult *res) {
        const AwsError *e = res->aws;
        char what[AWS_RESULT_DESCRIPTION_SIZE];
        switch (e->error_class) {
        case AWS_ERROR_AUTH:
                operator_refusal(p, e);
                break;
        case AWS_ERROR_CLIENT:
                if (b->n == 1)
                        dead_letter(p, b->ids[0], aws_result_describe(res, what));
                else {
                        /* One entry spoils the request: send singly until past this batch. */
                        log_warning("EventBridge refused a batch of %zu events as invalid (%s); resending them one by one",
                                    b->n, e->code);
                        p->one_by_one_until = b->ids[b->n - 1];
                }
                break;
        default:
                transient_failure(p, aws_result_describe(res, what));
        }
}

static void handle_accepted(Publisher *p, Batch *b, const AwsResult *res) {
        EventBridgeEntryResult results[MAX_ENTRIES];
        _cleanup_free_ char *why = NULL;
        int r = eventbridge_parse_response(res->body, res->body_len, b->n, results, &why);
        if (r < 0) {
                /* We cannot tell what was accepted: send all again (at least once). */
                log_warning("Unreadable PutEvents response: %s", why ? why : "?");
                return transient_failure(p, "unreadable response");
        }
        uint64_t accepted[MAX_ENTRIES];
        size_t n_accepted = 0, n_retry = 0;
        const char *retry_code = NULL;
        const EventBridgeEntryResult *refused = NULL;
        for (size_t i = 0; i < b->n; i++)
                switch (results[i].status) {
                case EVENTBRIDGE_ENTRY_OK:
                        accepted[n_accepted++] = b->ids[i];
                        break;
                case EVENTBRIDGE_ENTRY_REFUSED:
                        n_retry++;
                        refused = &results[i];
                        break;
                case EVENTBRIDGE_ENTRY_REJECTED: {
                        char reason[400];
                        bsprintf(reason, "%s: %s", results[i].error_code, results[i].error_message);
                        dead_letter(p, b->ids[i], reason);
                        break;
                }
                default:
                        n_retry++;
                        retry_code = results[i].error_code;
                }
        p->counts.published += n_accepted;
        r = outbox_remove_nosync(p->outbox, accepted, n_accepted);
        if (r >= 0)
                (void) sd_event_source_set_enabled(p->sync, SD_EVENT_ONESHOT);
        if (r < 0)
                log_error_errno(r, "Failed to remove %zu delivered event%s from the outbox (sent again then): %m",
                                n_accepted, plural_s(n_accepted));
        log_event(LOG_DEBUG, "published", "Published %zu event%s (%zu to retry); %zu left in the outbox", n_accepted,
                  plural_s(n_accepted), n_retry, outbox_count(p->outbox));
        if (refused) {
                AwsError e = { .error_class = AWS_ERROR_AUTH };
                memcpy(e.code, refused->error_code, sizeof e.code);
                memcpy(e.message, refused->error_message, sizeof e.message);
                operator_refusal(p, &e);
        } else if (n_retry > 0) {
                char what[128];
                bsprintf(what, "%zu of %zu %s failed, %s", n_retry, b->n, b->n == 1 ? "entry" : "entries", retry_code);
                transient_failure(p, what);
        } else
                p->failures = 0;
        report_dropped(p);
}

static void on_response(const AwsResult *res, void *userdata) {
        Batch *b = userdata;
        Publisher *p = b->publisher;

        b->call = NULL;
        if (res->error == -ENOKEY)
                p->waiting_credentials = true;
        else if (res->error < 0) {
                char what[AWS_RESULT_DESCRIPTION_SIZE];
                transient_failure(p, aws_result_describe(res, what));
        } else if (res->status >= 200 && res->status < 300)
                handle_accepted(p, b, res);
        else
                handle_refusal(p, b, res);
        batch_forget(p, b);
        pump(p);
}

/* Group commit: removals are written at once (they survive kill -9) and made durable
 * against a power cut here, when no other event is pending, so a burst of responses
 * costs one fdatasync instead of one each. */
static int on_sync(sd_event_source *s _unused_, void *userdata) {
        Publisher *p = userdata;
        int r = outbox_sync(p->outbox);
        if (r < 0)
                log_error_errno(r, "Failed to sync the outbox (delivered events may be sent again): %m");
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Publisher *p = userdata;
        p->paused_until = 0;
        pump(p);
        return 0;
}

int publisher_new(sd_event *event, const Config *config, Outbox *outbox, AwsClient *aws, Publisher **ret) {
        Publisher *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        p->event = sd_event_ref(event);
        p->config = config;
        p->outbox = outbox;
        p->aws = aws;
        int r = sd_event_add_time(event, &p->timer, CLOCK_BOOTTIME, USEC_INFINITY, USEC_PER_MSEC, on_timer, p);
        if (r < 0) {
                publisher_free(p);
                return r;
        }
        (void) sd_event_source_set_enabled(p->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(p->timer, "publisher-backoff");
        r = sd_event_add_defer(event, &p->sync, on_sync, p);
        if (r < 0) {
                publisher_free(p);
                return r;
        }
        (void) sd_event_source_set_priority(p->sync, SD_EVENT_PRIORITY_IDLE);
        (void) sd_event_source_set_enabled(p->sync, SD_EVENT_OFF);
        (void) sd_event_source_set_description(p->sync, "outbox-sync");
        *ret = p;
        return 0;
}

Publisher *publisher_free(Publisher *p) {
        if (!p)
                return NULL;
        while (p->n_batches > 0) {
                Batch *b = p->batches[0];
                if (b->call)
                        aws_call_cancel(b->call);
                batch_forget(p, b);
        }
        if (p->dropped_call)
                aws_call_cancel(p->dropped_call);
        sd_event_source_disable_unref(p->timer);
        sd_event_source_disable_unref(p->sync); /* outbox_free() syncs what is left */
        sd_event_unref(p->event);
        free(p->region);
        free(p->endpoint);
        free(p->instance_arn);
        free(p);
        return NULL;
}

int publisher_set_target(Publisher *p, const char *region, const char *instance_arn) {
        _cleanup_free_ char *endpoint = NULL;
        int r = config_service_endpoint(p->config, EVENTBRIDGE_SERVICE, region, &endpoint);
        if (r < 0)
                return r;
        r = free_and_strdup(&p->region, region);
        if (r >= 0)
                r = free_and_strdup(&p->instance_arn, instance_arn);
        if (r < 0)
                return r;
        free(p->endpoint);
        p->endpoint = TAKE_PTR(endpoint);
        pump(p);
        return 0;
}

int publisher_set_config(Publisher *p, const Config *config) {
        p->config = config;
        if (!p->region)
                return 0;
        _cleanup_free_ char *region = strdup(p->region);
        _cleanup_free_ char *arn = p->instance_arn ? strdup(p->instance_arn) : NULL;
        if (!region || (p->instance_arn && !arn))
                return -ENOMEM;
        return publisher_set_target(p, region, arn);
}

void publisher_kick(Publisher *p) {
        pump(p);
}

void publisher_set_idle_callback(Publisher *p, publisher_idle_fn idle, void *userdata) {
        p->idle = idle;
        p->idle_userdata = userdata;
}

PublisherCounts publisher_counts(const Publisher *p) {
        return p->counts;
}

size_t publisher_in_flight(const Publisher *p) {
        return p->n_batches;
}
