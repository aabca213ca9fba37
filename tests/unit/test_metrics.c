/* test_metrics.c: the Prometheus text heald writes: counters from events, label values
 * escaped, a cumulative histogram, gauges only where they mean something. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "metrics.h"

static cJSON *detail(const char *json) {
        cJSON *d = cJSON_Parse(json);
        assert_non_null(d);
        return d;
}

static void observe(Metrics *m, const char *type, const char *json) {
        cJSON *d = detail(json);
        assert_int_equal(metrics_observe_event(m, type, d), 0);
        cJSON_Delete(d);
}

static char *render(const Metrics *m, const MetricsGauges *g) {
        char *text = NULL;
        assert_int_equal(metrics_render(m, g, &text), 0);
        return text;
}

static void test_counters_from_events(void **state) {
        (void) state;
        _cleanup_(metrics_freep) Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        observe(m, "Check Failed", "{\"check\":\"web\",\"check_type\":\"http\"}");
        observe(m, "Check Failed", "{\"check\":\"web\",\"check_type\":\"http\"}");
        observe(m, "Remediation Started", "{\"check\":\"web\",\"action\":\"restart-unit\"}");
        observe(m, "Remediation Failed", "{\"check\":\"web\",\"action\":\"restart-unit\"}");
        observe(m, "Command Succeeded", "{\"action\":\"ping\"}");
        observe(m, "Agent Heartbeat", "{\"seq\":1}"); /* not counted */
        observe(m, "Check Recovered", "{\"check\":\"web\",\"failed_for_ms\":3500}");
        observe(m, "Check Recovered", "{\"check\":\"web\",\"failed_for_ms\":120000}");
        MetricsGauges g = { .outbox_depth = 3, .credentials_expiration = USEC_INFINITY };
        _cleanup_free_ char *text = render(m, &g);
        assert_non_null(strstr(text, "# TYPE heald_check_failures_total counter\n"
                                     "heald_check_failures_total{check=\"web\",type=\"http\"} 2\n"));
        assert_non_null(strstr(text, "heald_remediations_total{check=\"web\",action=\"restart-unit\",result=\"started\"} 1\n"));
        assert_non_null(strstr(text, "heald_remediations_total{check=\"web\",action=\"restart-unit\",result=\"failed\"} 1\n"));
        assert_non_null(strstr(text, "heald_commands_total{action=\"ping\",result=\"succeeded\"} 1\n"));
        /* cumulative buckets: 3.5 s in le=5 and above, 120 s from le=300 */
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_bucket{le=\"1\"} 0\n"));
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_bucket{le=\"5\"} 1\n"));
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_bucket{le=\"60\"} 1\n"));
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_bucket{le=\"300\"} 2\n"));
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_sum 123.500\n"));
        assert_non_null(strstr(text, "heald_time_to_recovery_seconds_count 2\n"));
        assert_non_null(strstr(text, "heald_outbox_events 3\n"));
        /* environment keys do not expire: no expiry gauge */
        assert_null(strstr(text, "heald_credentials_expiry_timestamp_seconds"));
}

static void test_label_values_escaped(void **state) {
        (void) state;
        _cleanup_(metrics_freep) Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        observe(m, "Command Rejected", "{\"action\":\"a\\\"b\\\\c\\nd\"}");
        MetricsGauges g = { 0 };
        _cleanup_free_ char *text = render(m, &g);
        assert_non_null(strstr(text, "heald_commands_total{action=\"a\\\"b\\\\c\\nd\",result=\"rejected\"} 1\n"));
}

/* Every sample line belongs to a family announced by HELP and TYPE lines before it. */
static void test_every_family_has_help_and_type(void **state) {
        (void) state;
        _cleanup_(metrics_freep) Metrics *m = NULL;
        assert_int_equal(metrics_new(&m), 0);
        observe(m, "Check Failed", "{\"check\":\"web\",\"check_type\":\"http\"}");
        cJSON *checks = detail("[{\"check\":\"web\",\"check_type\":\"http\",\"health\":\"failed\",\"phase\":\"escalated\"},"
                               "{\"check\":\"db\",\"check_type\":\"unit\",\"health\":\"unknown\",\"phase\":\"idle\"}]");
        AwsRequestCounts aws = { .service = { "events" }, .n_services = 1 };
        aws.n[0][AWS_OUTCOME_SUCCESS] = 7;
        MetricsGauges g = { .checks = checks, .aws = &aws, .credentials_expiration = 1800000000ULL * USEC_PER_SEC };
        _cleanup_free_ char *text = render(m, &g);
        cJSON_Delete(checks);
        assert_non_null(strstr(text, "heald_check_healthy{check=\"web\",type=\"http\"} 0\n"));
        assert_null(strstr(text, "heald_check_healthy{check=\"db\"")); /* no verdict yet */
        assert_non_null(strstr(text, "heald_check_escalated{check=\"web\",type=\"http\"} 1\n"));
        assert_non_null(strstr(text, "heald_aws_requests_total{service=\"events\",outcome=\"success\"} 7\n"));
        assert_non_null(strstr(text, "heald_credentials_expiry_timestamp_seconds 1800000000\n"));
        assert_non_null(strstr(text, "heald_build_info{version=\"" HEALD_VERSION "\"} 1\n"));

        char announced[64][80];
        size_t n = 0;
        for (char *line = text; *line;) {
                char *end = strchr(line, '\n');
                assert_non_null(end);
                *end = 0;
                if (strncmp(line, "# TYPE ", 7) == 0) {
                        assert_true(n < 64);
                        snprintf(announced[n++], sizeof announced[0], "%.*s", (int) strcspn(line + 7, " "), line + 7);
                } else if (line[0] != '#') {
                        size_t len = strcspn(line, "{ ");
                        bool found = false;
                        for (size_t i = 0; i < n && !found; i++)
                                found = strncmp(line, announced[i], strlen(announced[i])) == 0 &&
                                        len >= strlen(announced[i]);
                        if (!found)
                                fail_msg("a sample of no announced family: %s", line);
                }
                line = end + 1;
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_counters_from_events),
                cmocka_unit_test(test_label_values_escaped),
                cmocka_unit_test(test_every_family_has_help_and_type),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
