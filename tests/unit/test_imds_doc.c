/* test_imds_doc.c: unit tests for the IMDS identity, role list and credentials parsers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/imds_doc.h"
#include "testdata.h"

static void read_testdata(const char *path, char **ret, size_t *ret_len) {
        assert_int_equal(testdata_read(path, ret, ret_len), 0);
}

static void test_identity_testdata(void **state) {
        (void) state;
        _cleanup_free_ char *aemm = NULL, *docs = NULL, *arn = NULL;
        size_t len;
        ImdsIdentity id;

        read_testdata("aws/imds/instance-identity-document.aemm.json", &aemm, &len);
        assert_int_equal(imds_parse_identity(aemm, len, &id, NULL), 0);
        assert_string_equal(id.instance_id, "i-1234567890abcdef0");
        assert_string_equal(id.region, "us-east-1");
        assert_string_equal(id.account_id, "0123456789");
        assert_string_equal(id.instance_type, "m4.xlarge");
        assert_string_equal(id.availability_zone, "us-east-1f");
        assert_string_equal(id.image_id, "ami-0b69ea66ff7391e80");
        assert_int_equal(imds_identity_instance_arn(&id, &arn), 0);
        assert_string_equal(arn, "arn:aws:ec2:us-east-1:0123456789:instance/i-1234567890abcdef0");

        read_testdata("aws/imds/instance-identity-document.awsdocs.json", &docs, &len);
        assert_int_equal(imds_parse_identity(docs, len, &id, NULL), 0);
        assert_string_equal(id.region, "us-west-2");
        assert_string_equal(id.account_id, "123456789012");
}

static void test_identity_partitions(void **state) {
        (void) state;
        const struct {
                const char *region, *partition;
        } cases[] = {
                { "cn-north-1", "aws-cn" },   { "us-gov-west-1", "aws-us-gov" }, { "us-isob-east-1", "aws-iso-b" },
                { "eu-west-3", "aws" },       { "il-central-1", "aws" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char doc[256], expected[256];
                _cleanup_free_ char *arn = NULL;
                ImdsIdentity id;

                snprintf(doc, sizeof doc, "{\"instanceId\":\"i-0abcdef1\",\"region\":\"%s\",\"accountId\":\"1\"}",
                         cases[i].region);
                assert_int_equal(imds_parse_identity(doc, strlen(doc), &id, NULL), 0);
                assert_string_equal(id.instance_type, ""); /* context missing: accepted, left empty */
                assert_int_equal(imds_identity_instance_arn(&id, &arn), 0);
                snprintf(expected, sizeof expected, "arn:%s:ec2:%s:1:instance/i-0abcdef1", cases[i].partition,
                         cases[i].region);
                assert_string_equal(arn, expected);
        }
}

static void test_identity_invalid(void **state) {
        (void) state;
        const struct {
                const char *instance_id, *region, *account_id, *error_part;
        } cases[] = {
                { "\"i-xyz\"", "\"us-east-1\"", "\"123456789012\"", "field instanceId: \"i-xyz\"" },
                { "\"i-1234567890ABCDEF0\"", "\"us-east-1\"", "\"123456789012\"", "field instanceId" },
                { "\"x-1234567890abcdef0\"", "\"us-east-1\"", "\"123456789012\"", "field instanceId" },
                { "\"i-1234567890abcdef01\"", "\"us-east-1\"", "\"123456789012\"", "field instanceId" },
                { "42", "\"us-east-1\"", "\"123456789012\"", "field instanceId: missing or not a string" },
                { "\"i-1234567890abcdef0\"", "\"US-EAST-1\"", "\"123456789012\"", "field region" },
                { "\"i-1234567890abcdef0\"", "\"useast1\"", "\"123456789012\"", "field region" },
                { "\"i-1234567890abcdef0\"", "\"us-east-\"", "\"123456789012\"", "field region" },
                { "\"i-1234567890abcdef0\"", "\"us--1\"", "\"123456789012\"", "field region" },
                { "\"i-1234567890abcdef0\"", "\"us-east-1\\n\"", "\"123456789012\"", "field region: \"us-east-1\\x0a\"" },
                { "\"i-1234567890abcdef0\"", "\"us-east-1\"", "\"1234567890123\"", "field accountId" },
                { "\"i-1234567890abcdef0\"", "\"us-east-1\"", "\"\"", "field accountId" },
                { "\"i-1234567890abcdef0\"", "\"us-east-1\"", "123456789012", "field accountId: missing" },
                { "\"i-1234567890abcdef0\"", "\"us-east-1\"", "\"12345678901a\"", "field accountId" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char doc[512];
                _cleanup_free_ char *error = NULL;
                ImdsIdentity id = { .instance_id = "untouched" };

                snprintf(doc, sizeof doc, "{\"instanceId\":%s,\"region\":%s,\"accountId\":%s}", cases[i].instance_id,
                         cases[i].region, cases[i].account_id);
                assert_int_equal(imds_parse_identity(doc, strlen(doc), &id, &error), -EBADMSG);
                assert_non_null(error);
                if (!strstr(error, cases[i].error_part))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, error, cases[i].error_part);
                assert_string_equal(id.instance_id, "untouched");
        }

        _cleanup_free_ char *error = NULL;
        ImdsIdentity id;
        assert_int_equal(imds_parse_identity("not json", 8, &id, &error), -EBADMSG);
        assert_non_null(strstr(error, "not a JSON object"));
        assert_int_equal(imds_parse_identity("{}", 2, &id, NULL), -EBADMSG);
        assert_int_equal(imds_parse_identity(NULL, 0, &id, NULL), -EBADMSG);
}

static void test_credentials_testdata(void **state) {
        (void) state;
        _cleanup_free_ char *aemm = NULL, *docs = NULL;
        size_t len;
        ImdsCredentials c = {};

        read_testdata("aws/imds/iam-security-credentials-role.aemm.json", &aemm, &len);
        assert_int_equal(imds_parse_credentials(aemm, len, &c, NULL), 0);
        assert_string_equal(c.access_key_id, "12345678901");
        assert_string_equal(c.secret_access_key, "v/12345678901");
        assert_string_equal(c.token, "TEST92test48TEST+y6RpoTEST92test48TEST/8oWVAiBqTEsT5Ky7ty2tEStxC1T==");
        assert_int_equal(c.expiration, 1585788591 * USEC_PER_SEC);
        imds_credentials_done(&c);
        assert_null(c.secret_access_key);
        assert_null(c.token);

        read_testdata("aws/imds/iam-security-credentials-role.awsdocs.json", &docs, &len);
        assert_int_equal(imds_parse_credentials(docs, len, &c, NULL), 0);
        assert_string_equal(c.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_string_equal(c.secret_access_key, "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY");
        assert_string_equal(c.token, "token");
        assert_int_equal(c.expiration, 1495033794 * USEC_PER_SEC);
        imds_credentials_done(&c);
        imds_credentials_done(&c);
        imds_credentials_done(NULL);
}

#define SECRET "SEKRITvalue"

static void test_credentials_invalid_never_leak(void **state) {
        (void) state;
        const struct {
                const char *doc, *error_part;
        } cases[] = {
                { "{\"Code\":\"AssumeRoleUnauthorizedAccess\",\"Message\":\"EC2 cannot assume the role x.\"}",
                  "Code is \"AssumeRoleUnauthorizedAccess\", not \"Success\": EC2 cannot assume the role x." },
                { "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" SECRET "\"}",
                  "field Code: missing" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":123,\"Token\":\"" SECRET
                  "\",\"Expiration\":\"2020-04-02T00:49:51Z\"}",
                  "field SecretAccessKey: missing or not a string" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\\n" SECRET
                  "\",\"Token\":\"t\",\"Expiration\":\"2020-04-02T00:49:51Z\"}",
                  "field SecretAccessKey: empty or not printable ASCII" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET
                  "\",\"Token\":\"" SECRET " " SECRET "\",\"Expiration\":\"2020-04-02T00:49:51Z\"}",
                  "field Token: empty or not printable ASCII" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET
                  "\",\"Token\":\"\",\"Expiration\":\"2020-04-02T00:49:51Z\"}",
                  "field Token: empty" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" SECRET
                  "\"}",
                  "field Expiration: missing" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" SECRET
                  "\",\"Expiration\":\"tomorrow\"}",
                  "field Expiration: \"tomorrow\" is not a UTC time" },
                { "{\"Code\":\"Success\",\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" SECRET
                  "\",\"Expiration\":\"2020-02-30T00:49:51Z\"}",
                  "field Expiration" },
                { "{\"Code\":\"Success\",\"SecretAccessKey\":\"" SECRET "\",\"Token\":\"" SECRET
                  "\",\"Expiration\":\"2020-04-02T00:49:51Z\"}",
                  "field AccessKeyId: missing" },
                { "[\"" SECRET "\"]", "not a JSON object" },
                { "{\"Code\":\"Success\",\"SecretAccessKey\":\"" SECRET "\"", "not a JSON object" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                _cleanup_free_ char *error = NULL;
                ImdsCredentials c = {};

                assert_int_equal(imds_parse_credentials(cases[i].doc, strlen(cases[i].doc), &c, &error), -EBADMSG);
                assert_non_null(error);
                if (!strstr(error, cases[i].error_part))
                        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, error, cases[i].error_part);
                assert_null(strstr(error, "SEKRIT"));
                assert_null(c.secret_access_key);
                assert_null(c.token);
        }
}

static void test_role_list(void **state) {
        (void) state;
        const struct {
                const char *body, *role;
        } good[] = {
                { "baskinc-role", "baskinc-role" },
                { "baskinc-role\n", "baskinc-role" },
                { "  s3access\r\nsecond-role\n", "s3access" },
                { "a+b=c,d.e@f_g-h", "a+b=c,d.e@f_g-h" },
        };
        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                _cleanup_free_ char *role = NULL;
                assert_int_equal(imds_parse_role_list(good[i].body, strlen(good[i].body), &role, NULL), 0);
                assert_string_equal(role, good[i].role);
        }

        char *role = NULL;
        _cleanup_free_ char *error = NULL;
        assert_int_equal(imds_parse_role_list("", 0, &role, &error), -ENOENT);
        assert_non_null(strstr(error, "no instance profile"));
        assert_int_equal(imds_parse_role_list(" \r\n", 3, &role, NULL), -ENOENT);
        assert_int_equal(imds_parse_role_list(NULL, 0, &role, NULL), -ENOENT);

        free(error);
        error = NULL;
        assert_int_equal(imds_parse_role_list("bad role!", 9, &role, &error), -EBADMSG);
        assert_non_null(strstr(error, "\"bad role!\" is not an IAM role name"));
        assert_int_equal(imds_parse_role_list("ro\0le", 5, &role, NULL), -EBADMSG);
        assert_int_equal(imds_parse_role_list("<html>", 6, &role, NULL), -EBADMSG);

        char long_role[IMDS_ROLE_NAME_MAX + 2];
        memset(long_role, 'r', sizeof long_role);
        assert_int_equal(imds_parse_role_list(long_role, IMDS_ROLE_NAME_MAX + 1, &role, NULL), -EBADMSG);
        assert_int_equal(imds_parse_role_list(long_role, IMDS_ROLE_NAME_MAX, &role, NULL), 0);
        assert_int_equal(strlen(role), IMDS_ROLE_NAME_MAX);
        free(role);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_identity_testdata),
                cmocka_unit_test(test_identity_partitions),
                cmocka_unit_test(test_identity_invalid),
                cmocka_unit_test(test_credentials_testdata),
                cmocka_unit_test(test_credentials_invalid_never_leak),
                cmocka_unit_test(test_role_list),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
