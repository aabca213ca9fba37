/* metrics.c: counters fed by the events heald records, rendered with the gauges the caller
 * reads, in the Prometheus text format 0.0.4 (what the node exporter's textfile collector
 * parses). Series are few (bounded by the configured checks and the command actions), so
 * lookups are linear. */
#include "metrics.h"

/* The counter families fed by events; the order is the file's. */
typedef enum CounterFamily {
        COUNTER_CHECK_FAILURES,
        COUNTER_REMEDIATIONS,
        COUNTER_COMMANDS,
        _COUNTER_FAMILY_MAX,
} CounterFamily;

static const struct {
        const char *name, *help;
} counter_families[_COUNTER_FAMILY_MAX] = {
        [COUNTER_CHECK_FAILURES] = { "heald_check_failures_total", "Checks that turned failed (Check Failed events)." },
        [COUNTER_REMEDIATIONS] = { "heald_remediations_total",
                                   "Remediation steps by check, action and result (started, requested, succeeded, "
                                   "failed, escalated)." },
        [COUNTER_COMMANDS] = { "heald_commands_total", "Fleet commands by action and result." },
};

/* Seconds from a failure verdict to recovery: the upper bounds of the histogram's buckets. */
static const double recovery_buckets[] = { 1, 5, 10, 30, 60, 300, 600, 1800, 3600 };

#define SERIES_MAX 4096 /* a bound on memory whatever the events say */

typedef struct Series {
        CounterFamily family;
        char *labels; /* rendered: name="value",... */
        uint64_t value;
} Series;

struct Metrics {
        Series *series;
        size_t n_series;
        uint64_t recovery_counts[ELEMENTSOF(recovery_buckets)]; /* per bucket, not cumulative */
        uint64_t recoveries;
        double recovery_seconds;
};

int metrics_new(Metrics **ret) {
        Metrics *m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;
        *ret = m;
        return 0;
}

Metrics *metrics_free(Metrics *m) {
        if (!m)
                return NULL;
        for (size_t i = 0; i < m->n_series; i++)
                free(m->series[i].labels);
        free(m->series);
        free(m);
        return NULL;
}

/* A label value as the text format wants it: backslash, double quote and newline escaped. */
static void put_label_value(FILE *f, const char *v) {
        for (; *v; v++)
                if (*v == '\\')
                        fputs("\\\\", f);
                else if (*v == '"')
                        fputs("\\\"", f);
                else if (*v == '\n')
                        fputs("\\n", f);
                else
                        fputc(*v, f);
}

/* name="value" pairs from a NULL-terminated list of names and values. Caller frees. */
static char *labels_new(const char *const *pairs) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; pairs[i]; i += 2) {
                fprintf(f, "%s%s=\"", i ? "," : "", pairs[i]);
                put_label_value(f, pairs[i + 1] ? pairs[i + 1] : "");
                fputc('"', f);
        }
        if (fclose(f) != 0) {
                free(text);
                return NULL;
        }
        return text;
}

static int counter_add(Metrics *m, CounterFamily family, const char *const *pairs, uint64_t n) {
        _cleanup_free_ char *labels = labels_new(pairs);
        if (!labels)
                return -ENOMEM;
        for (size_t i = 0; i < m->n_series; i++)
                if (m->series[i].family == family && strcmp(m->series[i].labels, labels) == 0) {
                        m->series[i].value += n;
                        return 0;
                }
        if (m->n_series == SERIES_MAX)
                return -E2BIG;
        Series *grown = realloc(m->series, (m->n_series + 1) * sizeof *grown);
        if (!grown)
                return -ENOMEM;
        m->series = grown;
        m->series[m->n_series++] = (Series) { .family = family, .labels = TAKE_PTR(labels), .value = n };
        return 0;
}

static const char *detail_str(const cJSON *d, const char *key) {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, key));
        return v ? v : "";
}

static void observe_recovery(Metrics *m, double seconds) {
        for (size_t i = 0; i < ELEMENTSOF(recovery_buckets); i++)
                if (seconds <= recovery_buckets[i]) {
                        m->recovery_counts[i]++;
                        break;
                }
        m->recoveries++;
        m->recovery_seconds += seconds;
}

int metrics_observe_event(Metrics *m, const char *detail_type, const cJSON *detail) {
        static const struct {
                const char *detail_type, *result;
        } remediation_results[] = {
                { "Remediation Started", "started" },     { "Remediation Requested", "requested" },
                { "Remediation Succeeded", "succeeded" }, { "Remediation Failed", "failed" },
                { "Remediation Escalated", "escalated" },
        };
        static const struct {
                const char *detail_type, *result;
        } command_results[] = {
                { "Command Succeeded", "succeeded" }, { "Command Failed", "failed" },
                { "Command Rejected", "rejected" },   { "Rebooting", "rebooting" },
                { "Ready For Stop", "ready-for-stop" },
        };
        if (strcmp(detail_type, "Check Failed") == 0)
                return counter_add(m, COUNTER_CHECK_FAILURES,
                                   (const char *const[]) { "check", detail_str(detail, "check"), "type",
                                                           detail_str(detail, "check_type"), NULL },
                                   1);
        if (strcmp(detail_type, "Check Recovered") == 0) {
                const cJSON *ms = cJSON_GetObjectItemCaseSensitive(detail, "failed_for_ms");
                if (cJSON_IsNumber(ms))
                        observe_recovery(m, cJSON_GetNumberValue(ms) / 1000.0);
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(remediation_results); i++)
                if (strcmp(detail_type, remediation_results[i].detail_type) == 0)
                        return counter_add(m, COUNTER_REMEDIATIONS,
                                           (const char *const[]) { "check", detail_str(detail, "check"), "action",
                                                                   detail_str(detail, "action"), "result",
                                                                   remediation_results[i].result, NULL },
                                           1);
        for (size_t i = 0; i < ELEMENTSOF(command_results); i++)
                if (strcmp(detail_type, command_results[i].detail_type) == 0)
                        return counter_add(m, COUNTER_COMMANDS,
                                           (const char *const[]) { "action", detail_str(detail, "action"), "result",
                                                                   command_results[i].result, NULL },
                                           1);
        return 0;
}

static void put_family(FILE *f, const char *name, const char *type, const char *help) {
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void put_check_gauges(FILE *f, const cJSON *checks) {
        const cJSON *c;
        put_family(f, "heald_check_healthy", "gauge",
                   "1 when the check passes, 0 when it failed; absent before its first verdict.");
        cJSON_ArrayForEach(c, checks) {
                const char *health = detail_str(c, "health");
                if (strcmp(health, "ok") != 0 && strcmp(health, "failed") != 0)
                        continue;
                _cleanup_free_ char *labels = labels_new(
                        (const char *const[]) { "check", detail_str(c, "check"), "type", detail_str(c, "check_type"), NULL });
                if (labels)
                        fprintf(f, "heald_check_healthy{%s} %d\n", labels, strcmp(health, "ok") == 0);
        }
        put_family(f, "heald_check_escalated", "gauge",
                   "1 while the check's action budget is spent (heald reset CHECK clears it).");
        cJSON_ArrayForEach(c, checks) {
                _cleanup_free_ char *labels = labels_new(
                        (const char *const[]) { "check", detail_str(c, "check"), "type", detail_str(c, "check_type"), NULL });
                if (labels)
                        fprintf(f, "heald_check_escalated{%s} %d\n", labels,
                                strcmp(detail_str(c, "phase"), "escalated") == 0);
        }
}

static void put_aws_requests(FILE *f, const AwsRequestCounts *aws) {
        put_family(f, "heald_aws_requests_total", "counter",
                   "Calls to AWS by signing service and outcome (success, transport-error, transient, clock-skew, "
                   "auth, client-error).");
        for (size_t i = 0; aws && i < aws->n_services; i++)
                for (AwsOutcome o = 0; o < _AWS_OUTCOME_MAX; o++) {
                        _cleanup_free_ char *labels = labels_new(
                                (const char *const[]) { "service", aws->service[i], "outcome", aws_outcome_to_string(o), NULL });
                        if (labels)
                                fprintf(f, "heald_aws_requests_total{%s} %llu\n", labels, (unsigned long long) aws->n[i][o]);
                }
}

int metrics_render(const Metrics *m, const MetricsGauges *g, char **ret) {
        char *text = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&text, &size);
        if (!f)
                return -ENOMEM;

        put_family(f, "heald_build_info", "gauge", "Always 1; the version is a label.");
        fprintf(f, "heald_build_info{version=\"%s\"} 1\n", HEALD_VERSION);
        put_family(f, "heald_dry_run", "gauge", "1 when heald reports actions without taking them.");
        fprintf(f, "heald_dry_run %d\n", g->dry_run);
        put_check_gauges(f, g->checks);

        for (CounterFamily family = 0; family < _COUNTER_FAMILY_MAX; family++) {
                put_family(f, counter_families[family].name, "counter", counter_families[family].help);
                for (size_t i = 0; i < m->n_series; i++)
                        if (m->series[i].family == family)
                                fprintf(f, "%s{%s} %llu\n", counter_families[family].name, m->series[i].labels,
                                        (unsigned long long) m->series[i].value);
        }

        put_family(f, "heald_time_to_recovery_seconds", "histogram",
                   "Seconds from a check's failure verdict to its recovery (Check Recovered events).");
        uint64_t cumulative = 0;
        for (size_t i = 0; i < ELEMENTSOF(recovery_buckets); i++) {
                cumulative += m->recovery_counts[i];
                fprintf(f, "heald_time_to_recovery_seconds_bucket{le=\"%g\"} %llu\n", recovery_buckets[i],
                        (unsigned long long) cumulative);
        }
        fprintf(f, "heald_time_to_recovery_seconds_bucket{le=\"+Inf\"} %llu\n", (unsigned long long) m->recoveries);
        fprintf(f, "heald_time_to_recovery_seconds_sum %.3f\n", m->recovery_seconds);
        fprintf(f, "heald_time_to_recovery_seconds_count %llu\n", (unsigned long long) m->recoveries);

        put_family(f, "heald_outbox_events", "gauge", "Events in the outbox, not yet accepted by EventBridge.");
        fprintf(f, "heald_outbox_events %zu\n", g->outbox_depth);
        put_family(f, "heald_events_published_total", "counter", "Events EventBridge accepted.");
        fprintf(f, "heald_events_published_total %llu\n", (unsigned long long) g->events_published);
        put_family(f, "heald_events_dropped_total", "counter", "Oldest events dropped because the outbox was full.");
        fprintf(f, "heald_events_dropped_total %llu\n", (unsigned long long) g->events_dropped);
        put_family(f, "heald_events_dead_lettered_total", "counter",
                   "Events EventBridge rejected as malformed, moved to the dead-letter file.");
        fprintf(f, "heald_events_dead_lettered_total %llu\n", (unsigned long long) g->events_dead_lettered);
        put_aws_requests(f, g->aws);
        if (g->credentials_expiration != 0 && g->credentials_expiration != USEC_INFINITY) {
                put_family(f, "heald_credentials_expiry_timestamp_seconds", "gauge",
                           "When the instance role credentials in hand expire (Unix time).");
                fprintf(f, "heald_credentials_expiry_timestamp_seconds %llu\n",
                        (unsigned long long) (g->credentials_expiration / USEC_PER_SEC));
        }

        if (fclose(f) != 0) {
                free(text);
                return -ENOMEM;
        }
        *ret = text;
        return 0;
}
