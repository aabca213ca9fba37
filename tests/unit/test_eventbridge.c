/* test_eventbridge.c: unit tests for PutEvents batching, request bodies and response parsing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/eventbridge.h"
#include "codec.h"
#include "testdata.h"

#define ARN "arn:aws:ec2:us-east-1:123456789012:instance/i-1234567890abcdef0"

static EventBridgeEntry entry(const char *detail) {
        return (EventBridgeEntry) {
                .source = "heald",
                .detail_type = "Agent Heartbeat",
                .detail = detail,
                .event_bus = "heald-bus",
                .resource = ARN,
                .time = 1795725141 * USEC_PER_SEC + 999999,
        };
}

static void test_entry_size_rule(void **state) {
        (void) state;
        /* The PutEvents API reference's sample entry: no Time, two resources (we send one). */
        EventBridgeEntry e = {
                .source = "com.mycompany.myapp",                      /* 19 */
                .detail_type = "myDetailType",                       /* 12 */
                .detail = "{ \"key1\": \"value1\", \"key2\": \"value2\" }", /* 38 */
                .resource = "resource1",                             /* 9 */
                .event_bus = "a-bus-name-that-does-not-count",
        };
        assert_int_equal(eventbridge_entry_size(&e), 19 + 12 + 38 + 9);
        e.time = 1;
        assert_int_equal(eventbridge_entry_size(&e), 14 + 19 + 12 + 38 + 9);
        e.detail = NULL;
        e.resource = NULL;
        assert_int_equal(eventbridge_entry_size(&e), 14 + 19 + 12);
        /* UTF-8 bytes, not characters. */
        e.detail_type = "caf\xc3\xa9";
        assert_int_equal(eventbridge_entry_size(&e), 14 + 19 + 5);
}

static void test_batch_ten_entries(void **state) {
        (void) state;
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *b = NULL;
        EventBridgeEntry e = entry("{}");

        assert_int_equal(eventbridge_batch_new(EVENTBRIDGE_MAX_REQUEST_BYTES, &b), 0);
        for (int i = 0; i < EVENTBRIDGE_MAX_ENTRIES; i++)
                assert_int_equal(eventbridge_batch_add(b, &e), 0);
        assert_int_equal(eventbridge_batch_count(b), 10);
        assert_int_equal(eventbridge_batch_add(b, &e), -E2BIG);
        assert_int_equal(eventbridge_batch_count(b), 10);
        assert_int_equal(eventbridge_batch_size(b), 10 * eventbridge_entry_size(&e));
}

static void test_batch_max_bytes_exactly(void **state) {
        (void) state;
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *b = NULL;
        char detail[128];
        EventBridgeEntry e = { .source = "s", .detail_type = "t", .detail = detail };

        /* Each entry: 1 + 1 + strlen(detail). */
        assert_int_equal(eventbridge_batch_new(100, &b), 0);
        snprintf(detail, sizeof detail, "{\"a\":\"%0*d\"}", 60 - 2 - 8, 0);
        assert_int_equal(eventbridge_entry_size(&e), 60);
        assert_int_equal(eventbridge_batch_add(b, &e), 0);
        snprintf(detail, sizeof detail, "{\"a\":\"%0*d\"}", 40 - 2 - 8 + 1, 0);
        assert_int_equal(eventbridge_entry_size(&e), 41);
        assert_int_equal(eventbridge_batch_add(b, &e), -E2BIG);
        snprintf(detail, sizeof detail, "{\"a\":\"%0*d\"}", 40 - 2 - 8, 0);
        assert_int_equal(eventbridge_batch_add(b, &e), 0);
        assert_int_equal(eventbridge_batch_size(b), 100);
        snprintf(detail, sizeof detail, "{}");
        assert_int_equal(eventbridge_batch_add(b, &e), -E2BIG);

        /* Too big for any batch, even an empty one; exactly the limit is fine. */
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *empty = NULL;
        assert_int_equal(eventbridge_batch_new(100, &empty), 0);
        snprintf(detail, sizeof detail, "{\"a\":\"%0*d\"}", 100 - 2 - 8 + 1, 0);
        assert_int_equal(eventbridge_batch_add(empty, &e), -EMSGSIZE);
        assert_int_equal(eventbridge_batch_add(b, &e), -EMSGSIZE);
        snprintf(detail, sizeof detail, "{\"a\":\"%0*d\"}", 100 - 2 - 8, 0);
        assert_int_equal(eventbridge_batch_add(empty, &e), 0);
        assert_int_equal(eventbridge_batch_count(empty), 1);

        assert_int_equal(eventbridge_batch_new(0, &empty), -EINVAL);
}

static void test_batch_rejects_bad_entries(void **state) {
        (void) state;
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *b = NULL;
        EventBridgeEntry e;

        assert_int_equal(eventbridge_batch_new(EVENTBRIDGE_MAX_REQUEST_BYTES, &b), 0);
        e = entry("{}");
        e.source = NULL;
        assert_int_equal(eventbridge_batch_add(b, &e), -EINVAL);
        e = entry("{}");
        e.detail_type = "";
        assert_int_equal(eventbridge_batch_add(b, &e), -EINVAL);
        e = entry("not json");
        assert_int_equal(eventbridge_batch_add(b, &e), -EINVAL);
        e = entry("[1,2]");
        assert_int_equal(eventbridge_batch_add(b, &e), -EINVAL);
        e = entry("{\"a\":\"\xff\"}");
        assert_int_equal(eventbridge_batch_add(b, &e), -EILSEQ);
        e = entry("{}");
        e.detail_type = "bad \xc0\xaf overlong";
        assert_int_equal(eventbridge_batch_add(b, &e), -EILSEQ);
        e = entry("{}");
        e.resource = "\xed\xa0\x80"; /* a surrogate */
        assert_int_equal(eventbridge_batch_add(b, &e), -EILSEQ);
        assert_int_equal(eventbridge_batch_count(b), 0);

        char *body = NULL;
        size_t len;
        assert_int_equal(eventbridge_batch_body(b, &body, &len), -ENODATA);
        assert_null(body);
}

static void test_body(void **state) {
        (void) state;
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *b = NULL;
        _cleanup_free_ char *body = NULL;
        size_t len;
        EventBridgeEntry e = entry("{\"state\":\"ok\"}");

        assert_int_equal(eventbridge_batch_new(EVENTBRIDGE_MAX_REQUEST_BYTES, &b), 0);
        assert_int_equal(eventbridge_batch_add(b, &e), 0);
        e.event_bus = NULL;
        e.resource = NULL;
        e.time = 0;
        e.detail = NULL;
        assert_int_equal(eventbridge_batch_add(b, &e), 0);
        assert_int_equal(eventbridge_batch_body(b, &body, &len), 0);
        assert_int_equal(len, strlen(body));
        assert_string_equal(body, "{\"Entries\":[{\"Source\":\"heald\",\"DetailType\":\"Agent Heartbeat\","
                                  "\"Detail\":\"{\\\"state\\\":\\\"ok\\\"}\",\"EventBusName\":\"heald-bus\","
                                  "\"Time\":1795725141,\"Resources\":[\"" ARN "\"]},"
                                  "{\"Source\":\"heald\",\"DetailType\":\"Agent Heartbeat\"}]}");

        /* The body can be taken twice and the batch still works. */
        _cleanup_free_ char *again = NULL;
        assert_int_equal(eventbridge_batch_body(b, &again, &len), 0);
        assert_string_equal(again, body);
}

static void test_body_escaping(void **state) {
        (void) state;
        _cleanup_(eventbridge_batch_freep) EventBridgeBatch *b = NULL;
        _cleanup_free_ char *body = NULL;
        _cleanup_cjson_ cJSON *parsed = NULL;
        size_t len;
        const char *type = "Odd \"quoted\" \\ type\t\x01 caf\xc3\xa9 </script>";
        const char *detail = "{\"msg\":\"line\\nbreak \\\"q\\\" \\u0000 \\\\\",\"emoji\":\"\xf0\x9f\x94\xa5\"}";
        EventBridgeEntry e = entry(detail);
        e.detail_type = type;

        assert_int_equal(eventbridge_batch_new(EVENTBRIDGE_MAX_REQUEST_BYTES, &b), 0);
        assert_int_equal(eventbridge_batch_add(b, &e), 0);
        assert_int_equal(eventbridge_batch_body(b, &body, &len), 0);
        assert_int_equal(codec_parse_json(body, len, &parsed), 0);

        const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(parsed, "Entries"), 0);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "DetailType")), type);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(first, "Detail")), detail);
        assert_null(strchr(body, '\n'));
        assert_null(strchr(body, '\t'));
}

static void test_response_testdata(void **state) {
        (void) state;
        _cleanup_free_ char *ok = NULL, *partial = NULL, *error = NULL;
        size_t ok_len, partial_len;
        EventBridgeEntryResult results[EVENTBRIDGE_MAX_ENTRIES];

        assert_int_equal(testdata_read("aws/eventbridge/put-events-response.json", &ok, &ok_len), 0);
        assert_int_equal(eventbridge_parse_response(ok, ok_len, 2, results, &error), 0);
        assert_int_equal(results[0].status, EVENTBRIDGE_ENTRY_OK);
        assert_int_equal(results[1].status, EVENTBRIDGE_ENTRY_OK);
        assert_string_equal(results[1].error_code, "");

        assert_int_equal(testdata_read("aws/eventbridge/put-events-response-partial-failure.json", &partial,
                                       &partial_len),
                         0);
        assert_int_equal(eventbridge_parse_response(partial, partial_len, 3, results, &error), 0);
        assert_int_equal(results[0].status, EVENTBRIDGE_ENTRY_OK);
        assert_int_equal(results[1].status, EVENTBRIDGE_ENTRY_RETRY);
        assert_string_equal(results[1].error_code, "InternalFailure");
        assert_string_equal(results[1].error_message, "Internal Service Failure");
        assert_int_equal(results[2].status, EVENTBRIDGE_ENTRY_OK);
}

static void test_response_wrong_count(void **state) {
        (void) state;
        _cleanup_free_ char *ok = NULL, *error = NULL;
        size_t ok_len;
        EventBridgeEntryResult results[EVENTBRIDGE_MAX_ENTRIES];

        memset(results, 0x5a, sizeof results);
        assert_int_equal(testdata_read("aws/eventbridge/put-events-response.json", &ok, &ok_len), 0);
        assert_int_equal(eventbridge_parse_response(ok, ok_len, 3, results, &error), -EBADMSG);
        assert_non_null(error);
        assert_non_null(strstr(error, "Entries has 2 items for 3 events sent"));
        assert_int_equal(((unsigned char *) results)[0], 0x5a); /* untouched */

        free(error);
        error = NULL;
        assert_int_equal(eventbridge_parse_response(ok, ok_len, 1, results, &error), -EBADMSG);
        assert_string_equal(error, "PutEvents response: Entries has 2 items for 1 event sent"); /* not "1 entries" */

        free(error);
        error = NULL;
        assert_int_equal(eventbridge_parse_response(ok, ok_len, 0, results, &error), -EINVAL);
        assert_int_equal(eventbridge_parse_response(ok, ok_len, 11, results, NULL), -EINVAL);
}

static void test_response_classification(void **state) {
        (void) state;
        const char *body = "{\"FailedEntryCount\":5,\"Entries\":["
                           "{\"ErrorCode\":\"MalformedDetail\",\"ErrorMessage\":\"Detail is malformed.\"},"
                           "{\"ErrorCode\":\"ThrottlingException\",\"ErrorMessage\":\"Rate exceeded\"},"
                           "{\"ErrorCode\":\"AccessDeniedException\"},"
                           "{\"ErrorCode\":\"SomethingNew\",\"ErrorMessage\":\"multi\\nline\\u0007\"},"
                           "{\"ErrorCode\":\"InvalidArgument\",\"ErrorMessage\":null},"
                           "{\"EventId\":\"e1\",\"ErrorCode\":null}]}";
        EventBridgeEntryResult results[6];

        assert_int_equal(eventbridge_parse_response(body, strlen(body), 6, results, NULL), 0);
        assert_int_equal(results[0].status, EVENTBRIDGE_ENTRY_REJECTED);
        assert_string_equal(results[0].error_message, "Detail is malformed.");
        assert_int_equal(results[1].status, EVENTBRIDGE_ENTRY_RETRY);
        assert_int_equal(results[2].status, EVENTBRIDGE_ENTRY_REFUSED); /* fixable: never dead-lettered */
        assert_string_equal(results[2].error_message, "");
        assert_int_equal(results[3].status, EVENTBRIDGE_ENTRY_RETRY);
        assert_string_equal(results[3].error_message, "multi\\x0aline\\x07");
        assert_int_equal(results[4].status, EVENTBRIDGE_ENTRY_REJECTED);
        assert_int_equal(results[5].status, EVENTBRIDGE_ENTRY_OK);
}

static void test_response_malformed(void **state) {
        (void) state;
        const struct {
                const char *body;
                const char *error_part;
        } cases[] = {
                { "", "not a JSON object" },
                { "<html>502</html>", "not a JSON object" },
                { "[{\"EventId\":\"a\"}]", "not a JSON object" },
                { "{\"FailedEntryCount\":0}", "Entries is missing" },
                { "{\"FailedEntryCount\":0,\"Entries\":{}}", "Entries is missing" },
                { "{\"Entries\":[{\"EventId\":\"a\"}]}", "FailedEntryCount is missing" },
                { "{\"FailedEntryCount\":\"0\",\"Entries\":[{\"EventId\":\"a\"}]}", "FailedEntryCount is missing" },
                { "{\"FailedEntryCount\":1,\"Entries\":[{\"EventId\":\"a\"}]}", "FailedEntryCount is 1 but the entries hold 0 ErrorCodes" },
                { "{\"FailedEntryCount\":0,\"Entries\":[{\"ErrorCode\":\"X\"}]}", "FailedEntryCount is 0 but the entries hold 1 ErrorCode" },
                { "{\"FailedEntryCount\":0,\"Entries\":[{}]}", "neither EventId nor ErrorCode" },
                { "{\"FailedEntryCount\":0,\"Entries\":[7]}", "Entries[0] is not an object" },
                { "{\"FailedEntryCount\":1,\"Entries\":[{\"ErrorCode\":5}]}", "ErrorCode is not" },
                { "{\"FailedEntryCount\":1,\"Entries\":[{\"ErrorCode\":\"\"}]}", "ErrorCode is not" },
                { "{\"FailedEntryCount\":0,\"Entries\":[{\"EventId\":\"a\"}]} trailing", "not a JSON object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                EventBridgeEntryResult results[1];
                _cleanup_free_ char *error = NULL;
                assert_int_equal(eventbridge_parse_response(cases[i].body, strlen(cases[i].body), 1, results, &error),
                                 -EBADMSG);
                assert_non_null(error);
                if (!strstr(error, cases[i].error_part))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, error, cases[i].error_part);
        }
}

static void test_response_huge_garbage(void **state) {
        (void) state;
        size_t n = 4 * 1024 * 1024;
        _cleanup_free_ char *body = malloc(n);
        EventBridgeEntryResult results[1];

        assert_non_null(body);
        for (size_t i = 0; i < n; i++)
                body[i] = (char) ((i * 2654435761u) >> 11);
        assert_int_equal(eventbridge_parse_response(body, n, 1, results, NULL), -EBADMSG);
        memset(body, '[', n);
        assert_int_equal(eventbridge_parse_response(body, n, 1, results, NULL), -EBADMSG);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_entry_size_rule),
                cmocka_unit_test(test_batch_ten_entries),
                cmocka_unit_test(test_batch_max_bytes_exactly),
                cmocka_unit_test(test_batch_rejects_bad_entries),
                cmocka_unit_test(test_body),
                cmocka_unit_test(test_body_escaping),
                cmocka_unit_test(test_response_testdata),
                cmocka_unit_test(test_response_wrong_count),
                cmocka_unit_test(test_response_classification),
                cmocka_unit_test(test_response_malformed),
                cmocka_unit_test(test_response_huge_garbage),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
