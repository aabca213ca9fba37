/* test_awserror.c: unit tests for parsing and classifying AWS error responses. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/awserror.h"
#include "aws/client.h"
#include "testdata.h"

static AwsError parse(long status, const char *header, const char *body) {
        AwsError e;
        aws_error_parse(status, header, body, body ? strlen(body) : 0, &e);
        return e;
}

static void test_sqs_json_testdata(void **state) {
        (void) state;
        _cleanup_free_ char *body = NULL;
        size_t len;
        AwsError e;

        assert_int_equal(testdata_read("aws/sqs/error-queue-does-not-exist.json", &body, &len), 0);
        aws_error_parse(400, NULL, body, len, &e);
        assert_int_equal(e.http_status, 400);
        assert_string_equal(e.code, "QueueDoesNotExist");
        assert_string_equal(e.message, "The specified queue does not exist.");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);
        assert_non_null(strstr(aws_error_hint(&e), "queue"));
}

static void test_json_variants(void **state) {
        (void) state;
        AwsError e = parse(400, NULL,
                           "{\"__type\":\"com.amazonaws.events#AccessDeniedException\",\"message\":\"User: x is not "
                           "authorized to perform: events:PutEvents\"}");
        assert_string_equal(e.code, "AccessDeniedException");
        assert_string_equal(e.message, "User: x is not authorized to perform: events:PutEvents");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);
        assert_non_null(strstr(aws_error_hint(&e), "events:PutEvents"));
        assert_non_null(strstr(aws_error_hint(&e), "states:SendTaskHeartbeat"));

        e = parse(400, NULL, "{\"__type\":\"ValidationException\",\"Message\":\"1 validation error\"}");
        assert_string_equal(e.code, "ValidationException");
        assert_string_equal(e.message, "1 validation error");
        assert_int_equal(e.error_class, AWS_ERROR_CLIENT);

        /* Step Functions' JSON 1.0 answer to a heartbeat for a run that ended. */
        e = parse(400, NULL, "{\"__type\":\"com.amazonaws.swf.service.v2.model#TaskTimedOut\",\"message\":\"x\"}");
        assert_string_equal(e.code, "TaskTimedOut");
        assert_int_equal(e.error_class, AWS_ERROR_CLIENT);

        e = parse(400, NULL, "  {\"code\":\"SerializationException\"}\n");
        assert_string_equal(e.code, "SerializationException");
        assert_string_equal(e.message, "");
        assert_int_equal(e.error_class, AWS_ERROR_CLIENT);

        e = parse(400, NULL, "{\"__type\":\"aws.protocoltests#FooError:http://internal.amazon.com/coral/x/\"}");
        assert_string_equal(e.code, "FooError");
        assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT); /* not a code we know AWS to give */

        e = parse(400, NULL, "{\"__type\":\"ResourceNotFoundException\",\"message\":\"Event bus nope does not exist.\"}");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);
        assert_non_null(strstr(aws_error_hint(&e), "event_bus"));
}

static void test_header_wins(void **state) {
        (void) state;
        AwsError e = parse(400, "InvalidSignatureException:http://internal.amazon.com/coral/com.amazon.coral.service/",
                           "{\"message\":\"The request signature we calculated does not match\"}");
        assert_string_equal(e.code, "InvalidSignatureException");
        assert_string_equal(e.message, "The request signature we calculated does not match");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);
        assert_non_null(strstr(aws_error_hint(&e), "credentials are wrong"));

        e = parse(400, "UnrecognizedClientException", "{\"__type\":\"SomethingElse\"}");
        assert_string_equal(e.code, "UnrecognizedClientException");
}

/* Verbatim what moto 5 sends for an IAM failure (xmltodict output). */
static void test_moto_xml(void **state) {
        (void) state;
        AwsError e = parse(403, "SignatureDoesNotMatch",
                           "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>"
                           "SignatureDoesNotMatch</Code><Message>The request signature we calculated does not match "
                           "&amp; &lt;x&gt;</Message><Type>Sender</Type></Error></Errors></ErrorResponse>");
        assert_string_equal(e.code, "SignatureDoesNotMatch");
        assert_string_equal(e.message, "The request signature we calculated does not match & <x>");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);

        e = parse(403, NULL,
                  "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<ErrorResponse><Errors><Error><Code>AccessDenied</Code>"
                  "<Message>User: arn:aws:iam::123456789012:user/heald is not authorized to perform: "
                  "events:PutEvents</Message><Type>Sender</Type></Error></Errors></ErrorResponse>");
        assert_string_equal(e.code, "AccessDenied");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);
        assert_non_null(strstr(aws_error_hint(&e), "IAM policy"));

        e = parse(403, NULL,
                  "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidClientTokenId</Code><Message><![CDATA[The "
                  "security token included in the request is invalid.]]></Message></Error><RequestId>x</RequestId>"
                  "</ErrorResponse>");
        assert_string_equal(e.code, "InvalidClientTokenId");
        assert_string_equal(e.message, "The security token included in the request is invalid.");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);

        e = parse(503, NULL,
                  "<Response><Errors><Error><Code>RequestLimitExceeded</Code><Message>Request limit exceeded."
                  "</Message></Error></Errors><RequestID>r</RequestID></Response>");
        assert_string_equal(e.code, "RequestLimitExceeded");
        assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT);
}

static void test_clock_skew(void **state) {
        (void) state;
        AwsError e = parse(400, NULL,
                           "{\"__type\":\"InvalidSignatureException\",\"message\":\"Signature expired: 20260101T000000Z "
                           "is now earlier than 20260101T000500Z (20260101T001000Z - 5 min.)\"}");
        assert_int_equal(e.error_class, AWS_ERROR_CLOCK_SKEW);
        assert_non_null(strstr(aws_error_hint(&e), "clock"));

        e = parse(403, NULL,
                  "<ErrorResponse><Error><Code>SignatureDoesNotMatch</Code><Message>Signature not yet current: "
                  "20260101T001000Z is still later than 20260101T000500Z</Message></Error></ErrorResponse>");
        assert_int_equal(e.error_class, AWS_ERROR_CLOCK_SKEW);

        e = parse(403, NULL, "<Error><Code>RequestTimeTooSkewed</Code></Error>");
        assert_int_equal(e.error_class, AWS_ERROR_CLOCK_SKEW);
        e = parse(400, NULL, "{\"__type\":\"RequestExpired\"}");
        assert_int_equal(e.error_class, AWS_ERROR_CLOCK_SKEW);
}

static void test_classify(void **state) {
        (void) state;
        const struct {
                long status;
                const char *code;
                AwsErrorClass expected;
        } cases[] = {
                { 400, "ThrottlingException", AWS_ERROR_TRANSIENT },
                { 400, "Throttling", AWS_ERROR_TRANSIENT },
                { 400, "TooManyRequestsException", AWS_ERROR_TRANSIENT },
                { 500, "InternalFailure", AWS_ERROR_TRANSIENT },
                { 503, "ServiceUnavailable", AWS_ERROR_TRANSIENT },
                { 400, "ExpiredTokenException", AWS_ERROR_AUTH },
                { 403, "MissingAuthenticationToken", AWS_ERROR_AUTH },
                { 400, "AWS.SimpleQueueService.NonExistentQueue", AWS_ERROR_AUTH },
                { 400, "IncompleteSignatureException", AWS_ERROR_AUTH },
                { 400, "ValidationException", AWS_ERROR_CLIENT },
                /* A task token whose run is over: SendTask* to it is never sent again. */
                { 400, "TaskTimedOut", AWS_ERROR_CLIENT },
                { 400, "TaskDoesNotExist", AWS_ERROR_CLIENT },
                { 400, "InvalidToken", AWS_ERROR_CLIENT },
                /* Only a known AWS code says "invalid for good"; anything else may pass later. */
                { 400, "SomethingNew", AWS_ERROR_TRANSIENT },
                { 404, "SomethingNew", AWS_ERROR_TRANSIENT },
                { 404, "HTTP404", AWS_ERROR_TRANSIENT },
                { 407, "HTTP407", AWS_ERROR_TRANSIENT },
                { 408, "HTTP408", AWS_ERROR_TRANSIENT },
                { 400, "ValidationException", AWS_ERROR_CLIENT },
                { 403, "SomethingNew", AWS_ERROR_AUTH },
                { 401, "SomethingNew", AWS_ERROR_AUTH },
                { 429, "SomethingNew", AWS_ERROR_TRANSIENT },
                { 502, "SomethingNew", AWS_ERROR_TRANSIENT },
                { 0, "SomethingNew", AWS_ERROR_TRANSIENT },
                { 0, "MalformedDetail", AWS_ERROR_CLIENT },
                { 0, "InvalidArgument", AWS_ERROR_CLIENT },
                { 0, NULL, AWS_ERROR_TRANSIENT },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(aws_error_classify(cases[i].status, cases[i].code, NULL), cases[i].expected);
}

static void test_no_code(void **state) {
        (void) state;
        AwsError e = parse(503, NULL, "");
        assert_string_equal(e.code, "HTTP503");
        assert_string_equal(e.message, "");
        assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT);

        e = parse(502, NULL, "<html><body>502 Bad Gateway</body></html>\r\n");
        assert_string_equal(e.code, "HTTP502");
        assert_string_equal(e.message, "<html><body>502 Bad Gateway</body></html>\\x0d\\x0a");
        assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT);

        e = parse(400, NULL, "{\"neither\":1}");
        assert_string_equal(e.code, "HTTP400");
        assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT);

        /* A proxy, a captive portal or a misrouted endpoint: retried like an outage. */
        static const long proxy_statuses[] = { 404, 407, 408 };
        for (size_t i = 0; i < ELEMENTSOF(proxy_statuses); i++) {
                e = parse(proxy_statuses[i], NULL, "<!DOCTYPE html><html><head><title>Not here</title></head></html>");
                assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT);
        }

        e = parse(403, NULL, NULL);
        assert_string_equal(e.code, "HTTP403");
        assert_int_equal(e.error_class, AWS_ERROR_AUTH);

        e = parse(400, NULL, "{\"__type\":42,\"message\":[]}");
        assert_string_equal(e.code, "HTTP400");

        e = parse(500, NULL, "<Code>unterminated");
        assert_string_equal(e.code, "HTTP500");
}

static void test_message_escaped_and_bounded(void **state) {
        (void) state;
        char body[4096];
        AwsError e = parse(400, NULL, "{\"__type\":\"Bad\\u0000Code\\n\",\"message\":\"line1\\nline2\\u001b[31m\\\\ \\u00e9\"}");
        assert_string_equal(e.code, "Bad");
        assert_string_equal(e.message, "line1\\x0aline2\\x1b[31m\\\\ \\xc3\\xa9");

        snprintf(body, sizeof body, "{\"__type\":\"%0200d\",\"message\":\"%03000d\"}", 0, 0);
        e = parse(400, NULL, body);
        assert_int_equal(strlen(e.code), AWS_ERROR_CODE_MAX - 1);
        assert_string_equal(e.code + strlen(e.code) - 3, "...");
        assert_int_equal(strlen(e.message), AWS_ERROR_MESSAGE_MAX - 1);
        assert_string_equal(e.message + strlen(e.message) - 3, "...");
}

static void test_huge_garbage(void **state) {
        (void) state;
        size_t n = 4 * 1024 * 1024;
        _cleanup_free_ char *body = malloc(n);
        assert_non_null(body);
        for (size_t i = 0; i < n; i++)
                body[i] = (char) ((i * 2654435761u) >> 13);
        body[0] = '<';

        AwsError e;
        aws_error_parse(500, NULL, body, n, &e);
        assert_int_equal(e.error_class, AWS_ERROR_TRANSIENT);
        assert_true(strlen(e.message) < AWS_ERROR_MESSAGE_MAX);

        memset(body, '[', n);
        body[0] = '{';
        aws_error_parse(400, NULL, body, n, &e);
        assert_string_equal(e.code, "HTTP400");
}

static void test_hints_and_names(void **state) {
        (void) state;
        for (AwsErrorClass c = AWS_ERROR_TRANSIENT; c <= AWS_ERROR_CLIENT; c++) {
                AwsError e = { .error_class = c, .code = "Unknown" };
                assert_true(strlen(aws_error_hint(&e)) > 20);
                assert_string_not_equal(aws_error_class_to_string(c), "unknown");
        }
        AwsError e = parse(400, NULL, "{\"__type\":\"InvalidClientTokenId\"}");
        assert_string_equal(aws_error_hint(&e),
                            "the credentials are wrong: check the instance profile or the AWS_* environment");
}

/* The one description of a failed call that the publisher, send-event and the command channel log. */
static void test_result_describe(void **state) {
        (void) state;
        char what[AWS_RESULT_DESCRIPTION_SIZE];
        AwsResult transport = { .error = -ECONNREFUSED, .transport_message = "Failed to connect to 127.0.0.1 port 1" };
        assert_string_equal(aws_result_describe(&transport, what), "Failed to connect to 127.0.0.1 port 1");
        AwsResult bare = { .error = -ETIMEDOUT };
        assert_string_equal(aws_result_describe(&bare, what), strerror(ETIMEDOUT));

        AwsError e = {};
        static const char body[] = "{\"__type\":\"AccessDeniedException\",\"message\":\"not allowed\"}";
        aws_error_parse(400, NULL, body, strlen(body), &e);
        AwsResult refused = { .status = 400, .aws = &e };
        assert_string_equal(aws_result_describe(&refused, what), "AccessDeniedException: not allowed");

        /* The longest code and message fit whole. */
        memset(e.code, 'C', sizeof e.code - 1);
        e.code[sizeof e.code - 1] = 0;
        memset(e.message, 'm', sizeof e.message - 1);
        e.message[sizeof e.message - 1] = 0;
        assert_int_equal(strlen(aws_result_describe(&refused, what)), sizeof e.code - 1 + 2 + sizeof e.message - 1);

        AwsResult ok = { .status = 200, .body = "{}", .body_len = 2 };
        assert_string_equal(aws_result_describe(&ok, what), "");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sqs_json_testdata),
                cmocka_unit_test(test_json_variants),
                cmocka_unit_test(test_header_wins),
                cmocka_unit_test(test_moto_xml),
                cmocka_unit_test(test_clock_skew),
                cmocka_unit_test(test_classify),
                cmocka_unit_test(test_no_code),
                cmocka_unit_test(test_message_escaped_and_bounded),
                cmocka_unit_test(test_huge_garbage),
                cmocka_unit_test(test_hints_and_names),
                cmocka_unit_test(test_result_describe),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
