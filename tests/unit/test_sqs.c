/* test_sqs.c: unit tests for the SQS and Step Functions JSON 1.0 codecs (request bodies, ReceiveMessage answers, queue URLs). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/sqs.h"
#include "aws/states.h"
#include "codec.h"
#include "testdata.h"

static cJSON *parse_ok(const char *text) {
        cJSON *root = NULL;
        assert_int_equal(codec_parse_json(text, strlen(text), &root), 0);
        return root;
}

static const char *member_string(const cJSON *root, const char *name) {
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, name));
        assert_non_null(s);
        return s;
}

static double member_number(const cJSON *root, const char *name) {
        const cJSON *item = cJSON_GetObjectItemCaseSensitive(root, name);
        assert_true(cJSON_IsNumber(item));
        return item->valuedouble;
}

static void test_receive_body(void **state) {
        (void) state;
        _cleanup_free_ char *body = NULL;

        assert_int_equal(sqs_receive_body("https://sqs.us-east-1.amazonaws.com/1/q", 10, 20, 60, &body), 0);
        _cleanup_cjson_ cJSON *root = parse_ok(body);
        assert_string_equal(member_string(root, "QueueUrl"), "https://sqs.us-east-1.amazonaws.com/1/q");
        assert_true(member_number(root, "MaxNumberOfMessages") == 10);
        assert_true(member_number(root, "WaitTimeSeconds") == 20);
        assert_true(member_number(root, "VisibilityTimeout") == 60);
        assert_null(cJSON_GetObjectItemCaseSensitive(root, "AttributeNames")); /* deprecated name */

        const cJSON *system = cJSON_GetObjectItemCaseSensitive(root, "MessageSystemAttributeNames");
        assert_int_equal(cJSON_GetArraySize(system), 3);
        assert_string_equal(cJSON_GetArrayItem(system, 0)->valuestring, "ApproximateReceiveCount");
        assert_string_equal(cJSON_GetArrayItem(system, 1)->valuestring, "SentTimestamp");
        assert_string_equal(cJSON_GetArrayItem(system, 2)->valuestring, "SenderId");
        const cJSON *attributes = cJSON_GetObjectItemCaseSensitive(root, "MessageAttributeNames");
        assert_int_equal(cJSON_GetArraySize(attributes), 1);
        assert_string_equal(cJSON_GetArrayItem(attributes, 0)->valuestring, "All");
}

static void test_receive_body_ranges(void **state) {
        (void) state;
        char *body = NULL;

        assert_int_equal(sqs_receive_body("q", 0, 20, 60, &body), -EINVAL);
        assert_int_equal(sqs_receive_body("q", 11, 20, 60, &body), -EINVAL);
        assert_int_equal(sqs_receive_body("q", 1, 21, 60, &body), -EINVAL);
        assert_int_equal(sqs_receive_body("q", 1, 0, 43201, &body), -EINVAL);
        assert_int_equal(sqs_receive_body("", 1, 0, 0, &body), -EINVAL);
        assert_int_equal(sqs_receive_body(NULL, 1, 0, 0, &body), -EINVAL);
        assert_null(body);
        assert_int_equal(sqs_receive_body("q", 1, 0, 43200, &body), 0);
        free(body);
}

static void test_delete_and_visibility_bodies(void **state) {
        (void) state;
        _cleanup_free_ char *del = NULL, *vis = NULL;
        char *none = NULL;

        assert_int_equal(sqs_delete_body("https://q", "AQEB+/\"x", &del), 0);
        _cleanup_cjson_ cJSON *d = parse_ok(del);
        assert_string_equal(member_string(d, "QueueUrl"), "https://q");
        assert_string_equal(member_string(d, "ReceiptHandle"), "AQEB+/\"x");
        assert_int_equal(cJSON_GetArraySize(d), 2);

        assert_int_equal(sqs_change_visibility_body("https://q", "AQEB", 0, &vis), 0);
        _cleanup_cjson_ cJSON *v = parse_ok(vis);
        assert_string_equal(member_string(v, "ReceiptHandle"), "AQEB");
        assert_true(member_number(v, "VisibilityTimeout") == 0);

        assert_int_equal(sqs_delete_body("https://q", "", &none), -EINVAL);
        assert_int_equal(sqs_delete_body("https://q", NULL, &none), -EINVAL);
        assert_int_equal(sqs_change_visibility_body("https://q", "AQEB", 43201, &none), -EINVAL);
        assert_null(none);
}

static void test_parse_testdata(void **state) {
        (void) state;
        _cleanup_free_ char *text = NULL;
        SqsMessage *m = NULL;
        size_t len, n = 99;

        assert_int_equal(testdata_read("aws/sqs/receive-message-response.json", &text, &len), 0);
        assert_int_equal(sqs_parse_receive(text, len, &m, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_string_equal(m[0].message_id, "219f8380-5770-4cc2-8c3e-5c715e145f5e");
        assert_true(strncmp(m[0].receipt_handle, "AQEBaZ+j5qUoOAox", 16) == 0);
        assert_string_equal(m[0].body, "This is a test message");
        assert_int_equal(m[0].body_len, strlen("This is a test message"));
        assert_string_equal(m[0].md5_of_body, "fafb00f5732ab283681e124bf8747ed1");
        assert_true(m[0].md5_ok);
        assert_string_equal(m[0].sender_id, "AIDASSYFHUBOBT7F4XT75");
        assert_int_equal(m[0].approximate_receive_count, 1);
        assert_true(m[0].sent_timestamp == UINT64_C(1677112427387) * 1000);
        assert_int_equal(m[0].n_attributes, 0);
        m = sqs_messages_free(m, n);
}

static void test_parse_empty(void **state) {
        (void) state;
        _cleanup_free_ char *text = NULL;
        SqsMessage *m = (SqsMessage *) 1;
        size_t len, n = 99;

        assert_int_equal(testdata_read("aws/sqs/receive-message-response-empty.composed.json", &text, &len), 0);
        assert_int_equal(sqs_parse_receive(text, len, &m, &n, NULL), 0);
        assert_null(m);
        assert_int_equal(n, 0);

        const char *empty_list = "{\"Messages\":[]}";
        m = (SqsMessage *) 1;
        assert_int_equal(sqs_parse_receive(empty_list, strlen(empty_list), &m, &n, NULL), 0);
        assert_null(m);
        assert_int_equal(n, 0);
}

/* The biggest answer SQS can give for one message, escaped the worst way (every byte of a
 * 1 MiB body of U+00E9 as a third of "\u00e9"), with a long receipt handle and the system
 * attributes, fits what heald reads; ten of them fit the bound for ten. */
static void test_receive_answer_max(void **state) {
        (void) state;
        static const char head[] = "{\"Messages\":[{\"MessageId\":\"5fea7756-0ea4-451a-a703-a558b933e274\","
                                   "\"ReceiptHandle\":\"";
        static const char middle[] = "\",\"MD5OfBody\":\"00000000000000000000000000000000\","
                                     "\"Attributes\":{\"SenderId\":\"AROAEXAMPLEOPSROLE:deploy\","
                                     "\"ApproximateReceiveCount\":\"1\",\"SentTimestamp\":\"1767225600000\"},"
                                     "\"Body\":\"";
        static const char tail[] = "\"}]}";
        const size_t receipt_len = 2048, chars = SQS_MAX_MESSAGE_BYTES / 2;
        size_t len = strlen(head) + receipt_len + strlen(middle) + 6 * chars + strlen(tail);
        _cleanup_free_ char *answer = malloc(len + 1);
        assert_non_null(answer);

        char *p = stpcpy(answer, head);
        memset(p, 'r', receipt_len);
        p = stpcpy(p + receipt_len, middle);
        for (size_t i = 0; i < chars; i++)
                p = stpcpy(p, "\\u00e9");
        strcpy(p, tail);
        assert_int_equal(strlen(answer), len);
        assert_true(len <= sqs_receive_answer_max(1));
        assert_true(10 * len <= sqs_receive_answer_max(10));
        assert_true(sqs_receive_answer_max(10) <= 32 * 1024 * 1024); /* heald's MemoryMax is 256M */

        SqsMessage *m = NULL;
        size_t n = 0;
        assert_int_equal(sqs_parse_receive(answer, len, &m, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_int_equal(m[0].body_len, SQS_MAX_MESSAGE_BYTES);
        assert_false(m[0].md5_ok); /* the MD5 above is made up */
        sqs_messages_free(m, n);
}

static void test_parse_eventbridge_envelope(void **state) {
        (void) state;
        _cleanup_free_ char *text = NULL;
        SqsMessage *m = NULL;
        size_t len, n;

        assert_int_equal(
                testdata_read("aws/sqs/receive-message-response-eventbridge-envelope.composed.json", &text, &len), 0);
        assert_int_equal(sqs_parse_receive(text, len, &m, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_true(m[0].md5_ok);
        assert_true(strncmp(m[0].body, "{\"version\":\"0\"", 14) == 0);
        m = sqs_messages_free(m, n);
}

static void test_parse_md5_mismatch(void **state) {
        (void) state;
        const char *text = "{\"Messages\":["
                           "{\"MessageId\":\"a\",\"ReceiptHandle\":\"r1\",\"Body\":\"This is a test message\","
                           "\"MD5OfBody\":\"00000000000000000000000000000000\"},"
                           "{\"MessageId\":\"b\",\"ReceiptHandle\":\"r2\",\"Body\":\"This is a test message\","
                           "\"MD5OfBody\":\"FAFB00F5732AB283681E124BF8747ED1\"},"
                           "{\"MessageId\":\"c\",\"ReceiptHandle\":\"r3\",\"Body\":\"no md5\"}]}";
        SqsMessage *m = NULL;
        size_t n;

        assert_int_equal(sqs_parse_receive(text, strlen(text), &m, &n, NULL), 0);
        assert_int_equal(n, 3);
        assert_false(m[0].md5_ok); /* only this message is corrupt */
        assert_true(m[1].md5_ok);  /* hex case does not matter */
        assert_false(m[2].md5_ok); /* no MD5 to check: not trusted */
        assert_null(m[2].md5_of_body);
        assert_null(m[2].sender_id);
        assert_int_equal(m[2].approximate_receive_count, 0);
        assert_true(m[2].sent_timestamp == 0);
        m = sqs_messages_free(m, n);
}

static void test_parse_message_attributes(void **state) {
        (void) state;
        const char *text = "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"x\","
                           "\"MD5OfBody\":\"9dd4e461268c8034f5c8564e155c67a6\","
                           "\"Attributes\":{\"ApproximateReceiveCount\":\"3\",\"SentTimestamp\":\"1000\","
                           "\"SenderId\":\"AROAEXAMPLE:i-0abc\",\"MessageGroupId\":\"g\"},"
                           "\"MessageAttributes\":{\"kind\":{\"DataType\":\"String\",\"StringValue\":\"command\"},"
                           "\"blob\":{\"DataType\":\"Binary\",\"BinaryValue\":\"AAEC\"}}}]}";
        SqsMessage *m = NULL;
        size_t n;

        assert_int_equal(sqs_parse_receive(text, strlen(text), &m, &n, NULL), 0);
        assert_int_equal(n, 1);
        assert_true(m[0].md5_ok);
        assert_int_equal(m[0].approximate_receive_count, 3);
        assert_true(m[0].sent_timestamp == 1000 * USEC_PER_MSEC);
        assert_string_equal(m[0].sender_id, "AROAEXAMPLE:i-0abc");
        assert_int_equal(m[0].n_attributes, 2);
        assert_string_equal(m[0].attributes[0].name, "kind");
        assert_string_equal(m[0].attributes[0].data_type, "String");
        assert_string_equal(m[0].attributes[0].string_value, "command");
        assert_string_equal(m[0].attributes[1].name, "blob");
        assert_string_equal(m[0].attributes[1].data_type, "Binary");
        assert_null(m[0].attributes[1].string_value);
        m = sqs_messages_free(m, n);
}

static void test_parse_garbage(void **state) {
        (void) state;
        static const struct {
                const char *text;
                const char *error_part;
        } cases[] = {
                { "", "not a JSON object" },
                { "<html>502 Bad Gateway</html>", "not a JSON object" },
                { "[]", "not a JSON object" },
                { "{} {}", "not a JSON object" },
                { "{\"Messages\":{}}", "Messages is not an array" },
                { "{\"Messages\":[1]}", "Messages[0] is not an object" },
                { "{\"Messages\":[{\"ReceiptHandle\":\"r\",\"Body\":\"SECRET-BODY\"}]}", "Messages[0].MessageId" },
                { "{\"Messages\":[{\"MessageId\":\"a\",\"Body\":\"SECRET-BODY\"}]}", "Messages[0].ReceiptHandle" },
                { "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":7}]}", "Messages[0].Body" },
                { "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"x\"},"
                  "{\"MessageId\":\"b\",\"ReceiptHandle\":\"r\",\"Body\":\"SECRET-BODY\","
                  "\"Attributes\":{\"SentTimestamp\":\"12x\"}}]}",
                  "Messages[1].Attributes.SentTimestamp" },
                { "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"SECRET-BODY\","
                  "\"Attributes\":{\"ApproximateReceiveCount\":\"99999999999\"}}]}",
                  "ApproximateReceiveCount" },
                { "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"SECRET-BODY\","
                  "\"Attributes\":{\"SenderId\":5}}]}",
                  "SenderId" },
                { "{\"Messages\":[{\"MessageId\":\"a\",\"ReceiptHandle\":\"r\",\"Body\":\"SECRET-BODY\","
                  "\"MessageAttributes\":{\"k\":{\"StringValue\":\"v\"}}}]}",
                  "MessageAttributes.k" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL;
                SqsMessage *m = (SqsMessage *) 1;
                size_t n = 99;

                assert_int_equal(sqs_parse_receive(cases[i].text, strlen(cases[i].text), &m, &n, &error), -EBADMSG);
                assert_non_null(error);
                if (!strstr(error, cases[i].error_part))
                        fail_msg("case %zu: \"%s\" does not mention %s", i, error, cases[i].error_part);
                assert_null(strstr(error, "SECRET"));
                assert_ptr_equal(m, (SqsMessage *) 1); /* untouched on failure */
                assert_int_equal(n, 99);
        }
        assert_int_equal(sqs_parse_receive(NULL, 0, NULL, NULL, NULL), -EBADMSG);
}

static void test_queue_url_expand(void **state) {
        (void) state;
        static const struct {
                const char *template;
                int expected_r;
                const char *expected;
        } cases[] = {
                { "https://sqs.{region}.amazonaws.com/{account_id}/heald-{instance_id}", 0,
                  "https://sqs.eu-west-1.amazonaws.com/123456789012/heald-i-0abc" },
                { "https://sqs.example/q", 0, "https://sqs.example/q" },
                { "{instance_id}{instance_id}", 0, "i-0abci-0abc" },
                { "", 0, "" },
                { "https://x/{bogus}", -EINVAL, NULL },
                { "https://x/{region", -EINVAL, NULL },
                { "https://x/region}", -EINVAL, NULL },
                { "https://x/{{region}}", -EINVAL, NULL },
                { "https://x/{}", -EINVAL, NULL },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *url = NULL;
                assert_int_equal(sqs_queue_url_expand(cases[i].template, "i-0abc", "eu-west-1", "123456789012", &url),
                                 cases[i].expected_r);
                if (cases[i].expected)
                        assert_string_equal(url, cases[i].expected);
                else
                        assert_null(url);
        }

        char *url = NULL;
        assert_int_equal(sqs_queue_url_expand("q-{instance_id}", NULL, "r", "1", &url), -ENODATA);
        assert_int_equal(sqs_queue_url_expand("q-{account_id}", "i", "r", "", &url), -ENODATA);
        assert_null(url);
        assert_int_equal(sqs_queue_url_expand("q-{region}", NULL, "r", NULL, &url), 0); /* unused values may be unknown */
        assert_string_equal(url, "q-r");
        free(url);
}

static void test_states_success_body(void **state) {
        (void) state;
        _cleanup_free_ char *body = NULL;
        char *none = NULL;

        assert_int_equal(states_task_success_body("TOKEN", "{\"result\":\"ok\",\"n\":[1,2]}", &body), 0);
        _cleanup_cjson_ cJSON *root = parse_ok(body);
        assert_string_equal(member_string(root, "taskToken"), "TOKEN");
        assert_string_equal(member_string(root, "output"), "{\"result\":\"ok\",\"n\":[1,2]}");
        assert_int_equal(cJSON_GetArraySize(root), 2);

        assert_int_equal(states_task_success_body("TOKEN", "{not json", &none), -EINVAL);
        assert_int_equal(states_task_success_body("TOKEN", "\"\xff\"", &none), -EINVAL);
        assert_int_equal(states_task_success_body("", "{}", &none), -EINVAL);
        assert_int_equal(states_task_success_body(NULL, "{}", &none), -EINVAL);

        char token[STATES_TASK_TOKEN_MAX + 2];
        memset(token, 'A', sizeof token - 1);
        token[sizeof token - 1] = '\0';
        assert_int_equal(states_task_success_body(token, "{}", &none), -EINVAL);
        token[STATES_TASK_TOKEN_MAX] = '\0';
        _cleanup_free_ char *max_token = NULL;
        assert_int_equal(states_task_success_body(token, "{}", &max_token), 0);

        /* Output: the limit is inclusive. */
        _cleanup_free_ char *big = malloc(STATES_OUTPUT_MAX + 2);
        assert_non_null(big);
        big[0] = '"';
        memset(big + 1, 'x', STATES_OUTPUT_MAX - 2);
        big[STATES_OUTPUT_MAX - 1] = '"';
        big[STATES_OUTPUT_MAX] = '\0';
        _cleanup_free_ char *fits = NULL;
        assert_int_equal(states_task_success_body("T", big, &fits), 0);
        big[STATES_OUTPUT_MAX - 1] = 'x';
        big[STATES_OUTPUT_MAX] = '"';
        big[STATES_OUTPUT_MAX + 1] = '\0';
        assert_int_equal(states_task_success_body("T", big, &none), -EMSGSIZE);
        assert_null(none);
}

static char *failure_member(const char *error, const char *cause, const char *member) {
        _cleanup_free_ char *body = NULL;
        assert_int_equal(states_task_failure_body("TOKEN", error, cause, &body), 0);
        _cleanup_cjson_ cJSON *root = parse_ok(body);
        const char *s = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, member));
        return s ? strdup(s) : NULL;
}

static void test_states_failure_body(void **state) {
        (void) state;
        _cleanup_free_ char *plain = failure_member("heald.rejected", "action reboot is not allowed", "cause");
        assert_string_equal(plain, "action reboot is not allowed");
        _cleanup_free_ char *no_cause = failure_member("heald.rejected", NULL, "cause");
        assert_null(no_cause);

        /* 200 two-byte characters: cut to 128 of them (256 bytes), never half of one. */
        char accents[401];
        for (size_t i = 0; i < 200; i++)
                memcpy(accents + 2 * i, "\xc3\xa9", 2);
        accents[400] = '\0';
        _cleanup_free_ char *error = failure_member(accents, NULL, "error");
        assert_int_equal(strlen(error), 256);
        assert_true(codec_utf8_is_valid(error, strlen(error)));

        /* A three-byte character straddling the limit is left out whole. */
        char straddle[300];
        memset(straddle, 'a', 255);
        memcpy(straddle + 255, "\xe2\x82\xac", 3);
        straddle[258] = '\0';
        _cleanup_free_ char *cut = failure_member(straddle, NULL, "error");
        assert_int_equal(strlen(cut), 255);

        /* Bytes that are not UTF-8 become '?'. */
        _cleanup_free_ char *fixed = failure_member("bad \xff\xc3 byte \xed\xa0\x80", NULL, "error");
        assert_string_equal(fixed, "bad ?? byte ???");

        /* The cause limit. */
        _cleanup_free_ char *long_cause = malloc(STATES_CAUSE_MAX + 100);
        assert_non_null(long_cause);
        memset(long_cause, 'c', STATES_CAUSE_MAX + 99);
        long_cause[STATES_CAUSE_MAX + 99] = '\0';
        _cleanup_free_ char *cause = failure_member("e", long_cause, "cause");
        assert_int_equal(strlen(cause), STATES_CAUSE_MAX);

        char *none = NULL;
        assert_int_equal(states_task_failure_body("", "e", "c", &none), -EINVAL);
        assert_null(none);
}

static void test_states_heartbeat_body(void **state) {
        (void) state;
        _cleanup_free_ char *body = NULL, *none = NULL;
        assert_int_equal(states_task_heartbeat_body("TOKEN", &body), 0);
        assert_string_equal(body, "{\"taskToken\":\"TOKEN\"}");
        assert_int_equal(states_task_heartbeat_body("", &none), -EINVAL);
        assert_int_equal(states_task_heartbeat_body(NULL, &none), -EINVAL);
        assert_null(none);
}

static void test_states_heartbeat_verdict(void **state) {
        (void) state;
        assert_int_equal(states_heartbeat_verdict(200, NULL), STATES_TASK_WAITING);
        /* The run is over, or the token is none: Step Functions' own codes, and only those. */
        assert_int_equal(states_heartbeat_verdict(400, "TaskTimedOut"), STATES_TASK_GONE);
        assert_int_equal(states_heartbeat_verdict(400, "TaskDoesNotExist"), STATES_TASK_GONE);
        assert_int_equal(states_heartbeat_verdict(400, "InvalidToken"), STATES_TASK_GONE);
        /* Cannot tell: no answer, an outage, throttling, a refusal, a proxy's page, a code
         * spelt otherwise. */
        assert_int_equal(states_heartbeat_verdict(0, NULL), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(500, "InternalFailure"), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(503, "TaskTimedOut"), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(400, "ThrottlingException"), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(400, "AccessDeniedException"), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(404, "HTTP404"), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(400, "taskTimedOut"), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(400, ""), STATES_TASK_UNKNOWN);
        assert_int_equal(states_heartbeat_verdict(400, NULL), STATES_TASK_UNKNOWN);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_receive_body),
                cmocka_unit_test(test_receive_body_ranges),
                cmocka_unit_test(test_delete_and_visibility_bodies),
                cmocka_unit_test(test_parse_testdata),
                cmocka_unit_test(test_parse_empty),
                cmocka_unit_test(test_receive_answer_max),
                cmocka_unit_test(test_parse_eventbridge_envelope),
                cmocka_unit_test(test_parse_md5_mismatch),
                cmocka_unit_test(test_parse_message_attributes),
                cmocka_unit_test(test_parse_garbage),
                cmocka_unit_test(test_queue_url_expand),
                cmocka_unit_test(test_states_success_body),
                cmocka_unit_test(test_states_failure_body),
                cmocka_unit_test(test_states_heartbeat_body),
                cmocka_unit_test(test_states_heartbeat_verdict),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
