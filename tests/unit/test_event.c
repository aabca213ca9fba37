/* test_event.c: unit tests for the outbox event record codec. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "codec.h"
#include "events/event.h"

static void test_encode_exact(void **state) {
        (void) state;
        _cleanup_cjson_ cJSON *detail = cJSON_Parse("{\"check\":\"nginx\",\"n\":3,\"ok\":false}");
        _cleanup_free_ char *s = NULL;

        assert_non_null(detail);
        assert_int_equal(event_record_encode("Check Failed", detail, 1795725141123456ULL, &s), 0);
        assert_string_equal(s, "{\"v\":1,\"time\":1795725141123456,\"type\":\"Check Failed\","
                               "\"detail\":{\"check\":\"nginx\",\"n\":3,\"ok\":false}}");
        /* The caller's detail is borrowed, not consumed. */
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(detail, "check")), "nginx");
}

static void test_round_trip(void **state) {
        (void) state;
        const char *type = "Odd \"Type\" \\ with / slash";
        _cleanup_cjson_ cJSON *detail = cJSON_Parse("{\"msg\":\"a\\nb \\\"q\\\" \\u00e9\",\"list\":[1,2,{}]}");
        _cleanup_free_ char *s = NULL, *detail_text = cJSON_PrintUnformatted(detail);
        EventRecord r = {};

        assert_int_equal(event_record_encode(type, detail, EVENT_TIME_MAX, &s), 0);

        /* Decode from a buffer with no NUL after it, so overreads show up under ASan. */
        size_t len = strlen(s);
        _cleanup_free_ char *exact = malloc(len);
        memcpy(exact, s, len);
        assert_int_equal(event_record_decode(exact, len, &r, NULL), 0);
        assert_string_equal(r.detail_type, type);
        assert_string_equal(r.detail_json, detail_text);
        assert_int_equal(r.time, EVENT_TIME_MAX);
        event_record_done(&r);
        assert_null(r.detail_type);
        event_record_done(&r);
        event_record_done(NULL);
}

static void test_encode_null_detail(void **state) {
        (void) state;
        _cleanup_free_ char *s = NULL;
        assert_int_equal(event_record_encode("Agent Started", NULL, 0, &s), 0);
        assert_string_equal(s, "{\"v\":1,\"time\":0,\"type\":\"Agent Started\",\"detail\":{}}");
}

static void test_encode_rejects(void **state) {
        (void) state;
        char long_type[EVENT_DETAIL_TYPE_MAX + 2];
        char *s = NULL;
        _cleanup_cjson_ cJSON *array = cJSON_CreateArray();

        memset(long_type, 'a', sizeof long_type - 1);
        long_type[sizeof long_type - 1] = '\0';
        assert_int_equal(event_record_encode(long_type, NULL, 1, &s), -EINVAL);
        long_type[EVENT_DETAIL_TYPE_MAX] = '\0';
        assert_true(event_detail_type_is_valid(long_type));
        assert_int_equal(event_record_encode("", NULL, 1, &s), -EINVAL);
        assert_int_equal(event_record_encode(NULL, NULL, 1, &s), -EINVAL);
        assert_int_equal(event_record_encode("Tab\there", NULL, 1, &s), -EINVAL);
        assert_int_equal(event_record_encode("caf\xc3\xa9", NULL, 1, &s), -EINVAL);
        assert_int_equal(event_record_encode("Agent Started", array, 1, &s), -EINVAL);
        assert_int_equal(event_record_encode("Agent Started", NULL, EVENT_TIME_MAX + 1, &s), -ERANGE);
        assert_null(s);
}

static void test_decode_errors(void **state) {
        (void) state;
        const struct {
                const char *data;
                const char *error_part;
        } cases[] = {
                { "", "not a JSON object" },
                { "garbage", "not a JSON object" },
                { "[1]", "not a JSON object" },
                { "{\"v\":1,\"time\":1,\"type\":\"A\",\"detail\":{}} x", "not a JSON object" },
                { "{\"time\":1,\"type\":\"A\",\"detail\":{}}", "field v" },
                { "{\"v\":2,\"time\":1,\"type\":\"A\",\"detail\":{}}", "version 2 is not supported" },
                { "{\"v\":1,\"type\":\"A\",\"detail\":{}}", "field time" },
                { "{\"v\":1,\"time\":-1,\"type\":\"A\",\"detail\":{}}", "field time" },
                { "{\"v\":1,\"time\":1.5,\"type\":\"A\",\"detail\":{}}", "field time" },
                { "{\"v\":1,\"time\":1e300,\"type\":\"A\",\"detail\":{}}", "field time" },
                { "{\"v\":1,\"time\":\"1\",\"type\":\"A\",\"detail\":{}}", "field time" },
                { "{\"v\":1,\"time\":1,\"type\":\"\",\"detail\":{}}", "field type" },
                { "{\"v\":1,\"time\":1,\"type\":\"A\\nB\",\"detail\":{}}", "field type" },
                { "{\"v\":1,\"time\":1,\"type\":7,\"detail\":{}}", "field type" },
                { "{\"v\":1,\"time\":1,\"type\":\"A\",\"detail\":[]}", "field detail" },
                { "{\"v\":1,\"time\":1,\"type\":\"A\"}", "field detail" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                EventRecord r = {};
                _cleanup_free_ char *error = NULL;
                assert_int_equal(event_record_decode(cases[i].data, strlen(cases[i].data), &r, &error), -EBADMSG);
                assert_non_null(error);
                assert_non_null(strstr(error, cases[i].error_part));
                assert_null(r.detail_type);
        }

        /* An embedded NUL is not the end of the document. */
        static const char with_nul[] = "{\"v\":1,\"time\":1,\"type\":\"A\",\"detail\":{}}\0{}";
        EventRecord r = {};
        assert_int_equal(event_record_decode(with_nul, sizeof with_nul - 1, &r, NULL), -EBADMSG);
        assert_int_equal(event_record_decode(with_nul, strlen(with_nul), &r, NULL), 0);
        event_record_done(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_encode_exact),    cmocka_unit_test(test_round_trip),
                cmocka_unit_test(test_encode_null_detail), cmocka_unit_test(test_encode_rejects),
                cmocka_unit_test(test_decode_errors),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
