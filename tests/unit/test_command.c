/* test_command.c: unit tests for command parsing and authorisation: every rejection reason, globs, senders, expiry, EventBridge, hostile bodies. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "aws/sqs.h"
#include "commands/command.h"
#include "testdata.h"

#define INSTANCE "i-0123456789abcdef0"
#define NOW      (UINT64_C(1767225600) * USEC_PER_SEC) /* 2026-01-01T00:00:00Z */

static char *allow_all[] = { "ping",       "run-checks",       "restart-units", "stop-units", "start-units",
                             "stop-start-units", "prepare-stop", "reboot",     NULL };
static char *unit_globs[] = { "app-*.service", "nginx@*.service", "cron.service", NULL };

static CommandPolicy policy(void) {
        return (CommandPolicy) {
                .instance_id = INSTANCE,
                .allowed_actions = allow_all,
                .unit_globs = unit_globs,
        };
}

static void assert_printable(const char *s) {
        for (const char *p = s; *p; p++)
                if (*p < 0x20 || *p >= 0x7f)
                        fail_msg("byte 0x%02x at %zu in \"%s\"", (unsigned char) *p, (size_t) (p - s), s);
}

/* Evaluate body; expect a rejection for reason whose message contains message_part and
 * (unless expected_command_id is NULL) that names that command id. */
static void expect_rejected_with(const char *body, size_t len, const CommandPolicy *p, CommandRejectionReason reason,
                                 const char *message_part, const char *expected_command_id) {
        Command c = {};
        CommandRejection rej = {};

        int r = command_evaluate(body, len, true, p, NOW, &c, &rej);
        if (r != COMMAND_REJECTED)
                fail_msg("expected %s, got verdict %d", command_rejection_reason_to_string(reason), r);
        if (rej.reason != reason)
                fail_msg("expected %s, got %s: %s", command_rejection_reason_to_string(reason),
                         command_rejection_reason_to_string(rej.reason), rej.message);
        if (message_part && !strstr(rej.message, message_part))
                fail_msg("\"%s\" does not mention \"%s\"", rej.message, message_part);
        assert_printable(rej.message);
        if (expected_command_id)
                assert_string_equal(rej.command_id, expected_command_id);
        assert_null(c.command_id); /* nothing handed out */
        command_rejection_done(&rej);
}

static void expect_rejected(const char *body, CommandRejectionReason reason, const char *message_part) {
        expect_rejected_with(body, strlen(body), &(CommandPolicy) { .instance_id = INSTANCE, .allowed_actions = allow_all,
                                                                    .unit_globs = unit_globs },
                             reason, message_part, NULL);
}

static void expect_allowed(const char *body, const CommandPolicy *p, Command *ret) {
        CommandRejection rej = {};
        int r = command_evaluate(body, strlen(body), true, p, NOW, ret, &rej);
        if (r != COMMAND_ALLOWED)
                fail_msg("verdict %d: %s: %s", r, command_rejection_reason_to_string(rej.reason), rej.message);
}

static void test_action_names(void **state) {
        (void) state;
        for (int a = 0; a < _COMMAND_ACTION_MAX; a++)
                assert_int_equal(command_action_from_string(command_action_to_string((CommandAction) a)), a);
        assert_int_equal(command_action_from_string("Reboot"), -EINVAL);
        assert_int_equal(command_action_from_string(NULL), -EINVAL);
        assert_null(command_action_to_string(_COMMAND_ACTION_MAX));
        assert_string_equal(command_action_to_string(COMMAND_STOP_START_UNITS), "stop-start-units");
        assert_true(command_action_is_unit_action(COMMAND_RESTART_UNITS));
        assert_true(command_action_is_unit_action(COMMAND_STOP_START_UNITS));
        assert_false(command_action_is_unit_action(COMMAND_REBOOT));
        assert_false(command_action_is_unit_action(COMMAND_PREPARE_STOP));
        /* Only these two wait for any local remediation; the others for their units' or none. */
        for (int a = 0; a < _COMMAND_ACTION_MAX; a++)
                assert_int_equal(command_action_is_instance_wide((CommandAction) a),
                                 a == COMMAND_REBOOT || a == COMMAND_PREPARE_STOP);

        static const char *const names[] = { "malformed-json",   "not-a-command", "unknown-action",
                                             "action-not-allowed", "unit-not-allowed", "wrong-instance",
                                             "expired",          "oversized",     "sender-not-allowed",
                                             "corrupt",          "id-reused",     "asker-gone" };
        assert_int_equal(ELEMENTSOF(names), _COMMAND_REJECT_MAX);
        for (int i = 0; i < _COMMAND_REJECT_MAX; i++)
                assert_string_equal(command_rejection_reason_to_string((CommandRejectionReason) i), names[i]);
}

static void digest_of(const char *body, char ret[static COMMAND_DIGEST_SIZE]) {
        CommandPolicy p = policy();
        Command c = {};
        expect_allowed(body, &p, &c);
        assert_int_equal(command_digest(&c, ret), 0);
        command_done(&c);
}

/* A redelivery is the same command when the digest matches: the task token (renewed by a
 * retrying sender), the reason and the wrapping do not count; action, units, checks and
 * expiry do. */
static void test_digest(void **state) {
        (void) state;
        char base[COMMAND_DIGEST_SIZE], other[COMMAND_DIGEST_SIZE];
#define CMD(fields) "{\"command_id\":\"op-42\",\"instance_id\":\"" INSTANCE "\"," fields "}"
        digest_of(CMD("\"action\":\"restart-units\",\"units\":[\"app-a.service\",\"app-b.service\"],"
                      "\"expires_at\":\"2026-01-01T00:05:00Z\",\"task_token\":\"T1\""),
                  base);
        assert_int_equal(strlen(base), 64);

        digest_of(CMD("\"action\":\"restart-units\",\"units\":[\"app-a.service\",\"app-b.service\"],"
                      "\"expires_at\":\"2026-01-01T00:05:00Z\",\"task_token\":\"T2\",\"reason\":\"retry\""),
                  other);
        assert_string_equal(base, other);
        digest_of("{\"detail-type\":\"Heald Command\",\"detail\":" CMD(
                          "\"action\":\"restart-units\",\"units\":[\"app-a.service\",\"app-b.service\"],"
                          "\"expires_at\":\"2026-01-01T00:05:00Z\"") "}",
                  other);
        assert_string_equal(base, other);

        static const char *const different[] = {
                CMD("\"action\":\"stop-units\",\"units\":[\"app-a.service\",\"app-b.service\"],"
                    "\"expires_at\":\"2026-01-01T00:05:00Z\""),
                CMD("\"action\":\"restart-units\",\"units\":[\"app-b.service\",\"app-a.service\"],"
                    "\"expires_at\":\"2026-01-01T00:05:00Z\""),
                CMD("\"action\":\"restart-units\",\"units\":[\"app-a.service\"],\"expires_at\":\"2026-01-01T00:05:00Z\""),
                CMD("\"action\":\"restart-units\",\"units\":[\"app-a.service\",\"app-b.service\"],"
                    "\"expires_at\":\"2026-01-01T00:06:00Z\""),
                CMD("\"action\":\"restart-units\",\"units\":[\"app-a.service\",\"app-b.service\"]"),
        };
        for (size_t i = 0; i < ELEMENTSOF(different); i++) {
                digest_of(different[i], other);
                if (strcmp(base, other) == 0)
                        fail_msg("same digest for %s", different[i]);
        }
        /* Checks are part of it, and a ping differs from a reboot under the same id. */
        char ping[COMMAND_DIGEST_SIZE], reboot[COMMAND_DIGEST_SIZE];
        digest_of(CMD("\"action\":\"ping\""), ping);
        digest_of(CMD("\"action\":\"reboot\",\"task_token\":\"T3\""), reboot);
        assert_string_not_equal(ping, reboot);
        digest_of(CMD("\"action\":\"run-checks\",\"checks\":[\"web\"]"), base);
        digest_of(CMD("\"action\":\"run-checks\",\"checks\":[\"db\"]"), other);
        assert_string_not_equal(base, other);
#undef CMD
}

static void test_full_command(void **state) {
        (void) state;
        CommandPolicy p = policy();
        Command c = {};

        expect_allowed("{\"command_id\":\"op-2026.01:restart-1\",\"action\":\"restart-units\","
                       "\"instance_id\":\"" INSTANCE "\",\"issued_at\":\"2025-12-31T23:59:00Z\","
                       "\"expires_at\":\"2026-01-01T00:05:00.500Z\",\"units\":[\"app-web.service\",\"nginx@1.service\"],"
                       "\"reason\":\"deploy\",\"task_token\":\"AAAAKgAAAAIAAAAA\",\"future_field\":{\"x\":1}}",
                       &p, &c);
        assert_string_equal(c.command_id, "op-2026.01:restart-1");
        assert_int_equal(c.action, COMMAND_RESTART_UNITS);
        assert_string_equal(c.instance_id, INSTANCE);
        assert_true(c.issued_at == NOW - 60 * USEC_PER_SEC);
        assert_true(c.expires_at == NOW + 300 * USEC_PER_SEC + 500 * USEC_PER_MSEC);
        assert_int_equal(c.n_units, 2);
        assert_string_equal(c.units[0], "app-web.service");
        assert_string_equal(c.units[1], "nginx@1.service");
        assert_null(c.units[2]);
        assert_null(c.checks);
        assert_string_equal(c.reason, "deploy");
        assert_string_equal(c.task_token, "AAAAKgAAAAIAAAAA");
        assert_false(c.from_eventbridge);
        command_done(&c);
        command_done(&c); /* idempotent */
        command_done(NULL);

        expect_allowed("{\"command_id\":\"c\",\"action\":\"run-checks\",\"instance_id\":\"" INSTANCE
                       "\",\"checks\":[\"disk-root\",\"nginx_http\"],\"reason\":null}",
                       &p, &c);
        assert_int_equal(c.n_checks, 2);
        assert_string_equal(c.checks[1], "nginx_http");
        assert_null(c.reason);
        assert_null(c.task_token);
        assert_true(c.issued_at == 0 && c.expires_at == 0);
        command_done(&c);
}

static void test_eventbridge_wrapped(void **state) {
        (void) state;
        CommandPolicy p = policy();
        Command c = {};

        expect_allowed("{\"version\":\"0\",\"id\":\"e1\",\"detail-type\":\"heald command\",\"source\":\"fleet.ops\","
                       "\"account\":\"123456789012\",\"time\":\"2026-01-01T00:00:00Z\",\"region\":\"us-east-1\","
                       "\"resources\":[],\"detail\":{\"command_id\":\"wrapped-1\",\"action\":\"reboot\","
                       "\"instance_id\":\"" INSTANCE "\",\"task_token\":\"TT\"}}",
                       &p, &c);
        assert_true(c.from_eventbridge);
        assert_int_equal(c.action, COMMAND_REBOOT);
        assert_string_equal(c.command_id, "wrapped-1");
        assert_string_equal(c.task_token, "TT");
        command_done(&c);

        /* An event that is not a command (here EC2's own, from the shared examples). */
        _cleanup_free_ char *text = NULL;
        SqsMessage *m = NULL;
        size_t len, n;
        assert_int_equal(
                testdata_read("aws/sqs/receive-message-response-eventbridge-envelope.composed.json", &text, &len), 0);
        assert_int_equal(sqs_parse_receive(text, len, &m, &n, NULL), 0);
        assert_int_equal(n, 1);
        expect_rejected_with(m[0].body, m[0].body_len, &p, COMMAND_REJECT_NOT_A_COMMAND,
                             "EventBridge event \"EC2 Instance State-change Notification\" from \"aws.ec2\"", NULL);
        m = sqs_messages_free(m, n);

        expect_rejected("{\"detail-type\":\"x\",\"detail\":[1]}", COMMAND_REJECT_NOT_A_COMMAND,
                        "detail is an array, not an object");
        /* A wrapped command is judged like a bare one. */
        expect_rejected("{\"detail-type\":\"x\",\"detail\":{\"command_id\":\"w\",\"action\":\"reboot\","
                        "\"instance_id\":\"i-0other\"}}",
                        COMMAND_REJECT_WRONG_INSTANCE, "i-0other");
}

static void test_not_a_command(void **state) {
        (void) state;
        static const struct {
                const char *body;
                const char *part;
        } cases[] = {
                { "[1,2]", "message body is an array, not a command object" },
                { "\"ping\"", "a string" },
                { "42", "a number" },
                { "null", "null" },
                { "{}", "command field command_id is missing" },
                { "{\"command_id\":7,\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}", "command_id is a number" },
                { "{\"command_id\":\"\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}", "command_id: \"\"" },
                { "{\"command_id\":\"a b\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}", "\"a b\" is not" },
                { "{\"command_id\":\"c\",\"instance_id\":\"" INSTANCE "\"}", "action is missing" },
                { "{\"command_id\":\"c\",\"action\":[\"ping\"],\"instance_id\":\"" INSTANCE "\"}", "action is an array" },
                { "{\"command_id\":\"c\",\"action\":\"ping\"}", "instance_id is missing" },
                { "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"i-0/../x\"}", "not an instance id" },
                { "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\",\"units\":[\"a.service\"]}",
                  "units is not used by action ping" },
                { "{\"command_id\":\"c\",\"action\":\"restart-units\",\"instance_id\":\"" INSTANCE "\"}",
                  "units is missing: action restart-units needs units" },
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE "\",\"units\":[]}",
                  "units has 0 items" },
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE "\",\"units\":\"a.service\"}",
                  "units is a string, not an array" },
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE "\",\"units\":[\"-x.service\"]}",
                  "item 0 \"-x.service\" is not a valid name" },
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE
                  "\",\"units\":[\"a.service\",\"a b.service\"]}",
                  "item 1" },
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE "\",\"units\":[\"noext\"]}",
                  "\"noext\" is not a valid name" },
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE "\",\"units\":[1]}",
                  "item 0 is a number" },
                { "{\"command_id\":\"c\",\"action\":\"reboot\",\"instance_id\":\"" INSTANCE "\",\"checks\":[\"x\"]}",
                  "checks is not used by action reboot" },
                { "{\"command_id\":\"c\",\"action\":\"run-checks\",\"instance_id\":\"" INSTANCE "\",\"checks\":[\"a/b\"]}",
                  "\"a/b\" is not a valid name" },
                /* The spelling heald.ini has (names.c): a known unit type, a check name of at most 64. */
                { "{\"command_id\":\"c\",\"action\":\"stop-units\",\"instance_id\":\"" INSTANCE "\",\"units\":[\"app.bogus\"]}",
                  "\"app.bogus\" is not a valid name" },
                { "{\"command_id\":\"c\",\"action\":\"run-checks\",\"instance_id\":\"" INSTANCE "\",\"checks\":[\""
                  "c123456789c123456789c123456789c123456789c123456789c123456789abcde\"]}",
                  "is not a valid name" },
                { "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\",\"expires_at\":\"tomorrow\"}",
                  "expires_at: \"tomorrow\" is not a UTC time" },
                { "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE
                  "\",\"issued_at\":\"2026-01-01T00:00:00+02:00\"}",
                  "issued_at" },
                { "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\",\"reason\":5}",
                  "reason is a number" },
                { "{\"command_id\":\"c\",\"action\":\"ping\",\"action\":\"reboot\",\"instance_id\":\"" INSTANCE "\"}",
                  "command field action appears 2 times" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Command c = {};
                CommandRejection rej = {};
                CommandPolicy p = policy();

                int r = command_evaluate(cases[i].body, strlen(cases[i].body), true, &p, NOW, &c, &rej);
                if (r != COMMAND_REJECTED || rej.reason != COMMAND_REJECT_NOT_A_COMMAND)
                        fail_msg("case %zu: verdict %d reason %s: %s", i, r,
                                 command_rejection_reason_to_string(rej.reason), rej.message);
                if (!strstr(rej.message, cases[i].part))
                        fail_msg("case %zu: \"%s\" does not mention \"%s\"", i, rej.message, cases[i].part);
                assert_printable(rej.message);
                command_rejection_done(&rej);
        }
}

static void test_limits(void **state) {
        (void) state;
        CommandPolicy p = policy();
        char body[8192];
        Command c = {};

        /* 32 units is the most; 33 is too many. */
        int n = snprintf(body, sizeof body,
                         "{\"command_id\":\"c\",\"action\":\"start-units\",\"instance_id\":\"" INSTANCE "\",\"units\":[");
        for (int i = 0; i < 32; i++)
                n += snprintf(body + n, sizeof body - (size_t) n, "%s\"app-%d.service\"", i ? "," : "", i);
        snprintf(body + n, sizeof body - (size_t) n, "]}");
        expect_allowed(body, &p, &c);
        assert_int_equal(c.n_units, 32);
        command_done(&c);
        snprintf(body + n, sizeof body - (size_t) n, ",\"app-x.service\"]}");
        expect_rejected(body, COMMAND_REJECT_NOT_A_COMMAND, "units has 33 items, expected 1..32");

        /* command_id: 128 bytes fit, 129 do not. */
        char id[130];
        memset(id, 'x', 129);
        id[129] = '\0';
        snprintf(body, sizeof body, "{\"command_id\":\"%s\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}", id);
        expect_rejected(body, COMMAND_REJECT_NOT_A_COMMAND, "is not 1..128");
        id[128] = '\0';
        snprintf(body, sizeof body, "{\"command_id\":\"%s\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}", id);
        expect_allowed(body, &p, &c);
        command_done(&c);

        /* reason and task_token: 1024 bytes each at most. */
        char reason[1026];
        memset(reason, 'r', 1025);
        reason[1025] = '\0';
        snprintf(body, sizeof body,
                 "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\",\"reason\":\"%s\"}", reason);
        expect_rejected_with(body, strlen(body), &p, COMMAND_REJECT_NOT_A_COMMAND, "reason is longer than 1024 bytes",
                             "c");
        snprintf(body, sizeof body,
                 "{\"command_id\":\"c\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\",\"task_token\":\"%s\"}",
                 reason);
        expect_rejected_with(body, strlen(body), &p, COMMAND_REJECT_NOT_A_COMMAND, "task_token is longer", "c");
}

static void test_unknown_action(void **state) {
        (void) state;
        CommandPolicy p = policy();
        Command c = {};
        CommandRejection rej = {};
        const char *body = "{\"command_id\":\"c-9\",\"action\":\"rm -rf /\",\"instance_id\":\"" INSTANCE
                           "\",\"task_token\":\"TOKEN-123\"}";

        assert_int_equal(command_evaluate(body, strlen(body), true, &p, NOW, &c, &rej), COMMAND_REJECTED);
        assert_int_equal(rej.reason, COMMAND_REJECT_UNKNOWN_ACTION);
        assert_non_null(strstr(rej.message, "unknown action \"rm -rf /\""));
        /* Known enough to answer: the id and the token come along. */
        assert_string_equal(rej.command_id, "c-9");
        assert_string_equal(rej.task_token, "TOKEN-123");
        assert_null(strstr(rej.message, "TOKEN"));
        command_rejection_done(&rej);
        assert_null(rej.task_token);
        command_rejection_done(NULL);
}

static void test_authorization(void **state) {
        (void) state;
        CommandPolicy p = policy();
        char *only_ping[] = { "ping", NULL };

        /* action-not-allowed */
        p.allowed_actions = only_ping;
        expect_rejected_with("{\"command_id\":\"r1\",\"action\":\"reboot\",\"instance_id\":\"" INSTANCE "\"}",
                             strlen("{\"command_id\":\"r1\",\"action\":\"reboot\",\"instance_id\":\"" INSTANCE "\"}"), &p,
                             COMMAND_REJECT_ACTION_NOT_ALLOWED, "action reboot is not in [commands] allow", "r1");
        p.allowed_actions = NULL;
        const char *ping = "{\"command_id\":\"p1\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}";
        expect_rejected_with(ping, strlen(ping), &p, COMMAND_REJECT_ACTION_NOT_ALLOWED, "ping", "p1");

        /* unit-not-allowed names the unit */
        p = policy();
        const char *units = "{\"command_id\":\"u1\",\"action\":\"stop-start-units\",\"instance_id\":\"" INSTANCE
                            "\",\"units\":[\"app-web.service\",\"db.service\"]}";
        expect_rejected_with(units, strlen(units), &p, COMMAND_REJECT_UNIT_NOT_ALLOWED,
                             "unit \"db.service\" matches no pattern", "u1");
        p.unit_globs = NULL;
        const char *one = "{\"command_id\":\"u2\",\"action\":\"start-units\",\"instance_id\":\"" INSTANCE
                          "\",\"units\":[\"cron.service\"]}";
        expect_rejected_with(one, strlen(one), &p, COMMAND_REJECT_UNIT_NOT_ALLOWED, "cron.service", "u2");

        /* wrong-instance */
        p = policy();
        const char *other = "{\"command_id\":\"w1\",\"action\":\"ping\",\"instance_id\":\"i-0fffffffffffffff0\"}";
        expect_rejected_with(other, strlen(other), &p, COMMAND_REJECT_WRONG_INSTANCE,
                             "command is for instance i-0fffffffffffffff0, this is " INSTANCE, "w1");
}

static void test_globs(void **state) {
        (void) state;
        char *globs[] = { "app-*.service", "worker@[0-9].service", "*.timer", NULL };
        CommandPolicy p = policy();
        p.unit_globs = globs;
        static const struct {
                const char *unit;
                bool allowed;
        } cases[] = {
                { "app-web.service", true },     { "app-.service", true },      { "worker@3.service", true },
                { "backup.timer", true },        { "worker@10.service", false }, { "app.service", false },
                { "xapp-web.service", false },   { "app-web.socket", false },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char body[512];
                Command c = {};
                CommandRejection rej = {};

                snprintf(body, sizeof body,
                         "{\"command_id\":\"g\",\"action\":\"restart-units\",\"instance_id\":\"" INSTANCE
                         "\",\"units\":[\"%s\"]}",
                         cases[i].unit);
                int r = command_evaluate(body, strlen(body), true, &p, NOW, &c, &rej);
                if ((r == COMMAND_ALLOWED) != cases[i].allowed)
                        fail_msg("%s: verdict %d", cases[i].unit, r);
                command_done(&c);
                command_rejection_done(&rej);
        }
}

static void test_sender(void **state) {
        (void) state;
        char *senders[] = { "AROAFLEET:*", "AIDAOPERATOR", NULL };
        char *nobody[] = { NULL };
        CommandPolicy p = policy();
        const char *body = "{\"command_id\":\"s1\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}";
        Command c = {};

        /* NULL list: anyone the queue lets in, even without a SenderId. */
        expect_allowed(body, &p, &c);
        command_done(&c);

        p.allowed_senders = senders;
        p.sender_id = "AROAFLEET:stepfunctions-session";
        expect_allowed(body, &p, &c);
        command_done(&c);
        p.sender_id = "AIDAOPERATOR";
        expect_allowed(body, &p, &c);
        command_done(&c);

        /* Unauthorised senders: nothing of the body is read or echoed. */
        p.sender_id = "AIDAMALLORY";
        expect_rejected_with(body, strlen(body), &p, COMMAND_REJECT_SENDER_NOT_ALLOWED,
                             "sender \"AIDAMALLORY\" matches no pattern of [commands] allowed_senders", "");
        expect_rejected_with("not even json", 13, &p, COMMAND_REJECT_SENDER_NOT_ALLOWED, "AIDAMALLORY", "");
        p.sender_id = NULL;
        expect_rejected_with(body, strlen(body), &p, COMMAND_REJECT_SENDER_NOT_ALLOWED, "did not report", "");
        p.allowed_senders = nobody;
        p.sender_id = "AIDAOPERATOR";
        expect_rejected_with(body, strlen(body), &p, COMMAND_REJECT_SENDER_NOT_ALLOWED, "AIDAOPERATOR", "");

        /* command_authorize() judges the sender too. */
        CommandRejection rej = {};
        p.allowed_senders = senders;
        p.sender_id = NULL;
        assert_int_equal(command_parse(body, strlen(body), &c, &rej), 0);
        assert_int_equal(command_authorize(&c, &p, NOW, &rej), COMMAND_REJECTED);
        assert_int_equal(rej.reason, COMMAND_REJECT_SENDER_NOT_ALLOWED);
        assert_string_equal(rej.command_id, "s1");
        command_rejection_done(&rej);
        command_done(&c);
}

static void test_expiry(void **state) {
        (void) state;
        CommandPolicy p = policy();
        Command c = {};
        CommandRejection rej = {};
        const char *body = "{\"command_id\":\"e1\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE
                           "\",\"expires_at\":\"2026-01-01T00:00:00Z\",\"task_token\":\"TT\"}";

        assert_int_equal(command_parse(body, strlen(body), &c, &rej), 0);
        assert_int_equal(command_authorize(&c, &p, NOW - 1, &rej), COMMAND_ALLOWED);
        assert_int_equal(command_authorize(&c, &p, NOW, &rej), COMMAND_REJECTED);
        assert_int_equal(rej.reason, COMMAND_REJECT_EXPIRED);
        assert_string_equal(rej.message, "command expired at 2026-01-01T00:00:00Z (now 2026-01-01T00:00:00Z)");
        assert_string_equal(rej.command_id, "e1");
        assert_string_equal(rej.task_token, "TT"); /* so the caller can fail the task */
        command_rejection_done(&rej);
        command_done(&c);
}

static void test_not_ready(void **state) {
        (void) state;
        CommandPolicy p = policy();
        Command c = {};
        CommandRejection rej = {};
        const char *body = "{\"command_id\":\"n1\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}";

        p.instance_id = NULL;
        assert_int_equal(command_evaluate(body, strlen(body), true, &p, NOW, &c, &rej), COMMAND_NOT_READY);
        assert_null(c.command_id);
        assert_null(rej.task_token);
        assert_string_equal(rej.message, "");

        /* What can be judged without the instance id still is. */
        expect_rejected_with("{", 1, &p, COMMAND_REJECT_MALFORMED_JSON, NULL, NULL);
}

static void test_corrupt(void **state) {
        (void) state;
        CommandPolicy p = policy();
        Command c = {};
        CommandRejection rej = {};
        const char *body = "{\"command_id\":\"x1\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}";

        assert_int_equal(command_evaluate(body, strlen(body), false, &p, NOW, &c, &rej), COMMAND_REJECTED);
        assert_int_equal(rej.reason, COMMAND_REJECT_CORRUPT);
        assert_non_null(strstr(rej.message, "does not match its MD5OfBody"));
        assert_string_equal(rej.command_id, ""); /* a corrupt body is not read */
        command_rejection_done(&rej);
}

static void test_malformed(void **state) {
        (void) state;
        expect_rejected("{\"command_id\":", COMMAND_REJECT_MALFORMED_JSON, "message body (14 bytes) is not JSON");
        expect_rejected("", COMMAND_REJECT_MALFORMED_JSON, "message body is empty");
        expect_rejected("{} trailing", COMMAND_REJECT_MALFORMED_JSON, "not JSON");
        expect_rejected("\x01\x02\xff", COMMAND_REJECT_MALFORMED_JSON, "(3 bytes) is not JSON");

        /* An embedded NUL is not JSON either. */
        expect_rejected_with("{}\0{}", 5, &(CommandPolicy) { .instance_id = INSTANCE }, COMMAND_REJECT_MALFORMED_JSON,
                             "(5 bytes) is not JSON", NULL);

        /* A token in a broken body is never quoted. */
        Command c = {};
        CommandRejection rej = {};
        CommandPolicy p = policy();
        const char *leaky = "{\"command_id\":\"c\",\"task_token\":\"SECRET-TOKEN\",";
        assert_int_equal(command_evaluate(leaky, strlen(leaky), true, &p, NOW, &c, &rej), COMMAND_REJECTED);
        assert_int_equal(rej.reason, COMMAND_REJECT_MALFORMED_JSON);
        assert_null(strstr(rej.message, "SECRET"));
        assert_null(strstr(rej.message, "command_id")); /* nothing of the body is quoted */
        assert_null(rej.task_token);
        command_rejection_done(&rej);
}

static void test_hostile_bodies(void **state) {
        (void) state;
        CommandPolicy p = policy();

        /* Deep nesting is refused before cJSON recurses. */
        size_t deep = 1000000;
        _cleanup_free_ char *brackets = malloc(deep);
        assert_non_null(brackets);
        memset(brackets, '[', deep);
        expect_rejected_with(brackets, COMMAND_BODY_MAX, &p, COMMAND_REJECT_MALFORMED_JSON, "deeper than 32", NULL);
        expect_rejected_with(brackets, deep, &p, COMMAND_REJECT_OVERSIZED, "1000000 bytes", NULL);

        /* 32 levels are fine for the parser (the result is just not a command); 33 are not. */
        char nested[256];
        int n = snprintf(nested, sizeof nested, "{\"command_id\":\"d\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE
                                                "\",\"x\":");
        memset(nested + n, '[', 31);
        memset(nested + n + 31, ']', 31);
        strcpy(nested + n + 62, "}");
        Command c = {};
        expect_allowed(nested, &p, &c);
        command_done(&c);
        memset(nested + n, '[', 32);
        memset(nested + n + 32, ']', 32);
        strcpy(nested + n + 64, "}");
        expect_rejected(nested, COMMAND_REJECT_MALFORMED_JSON, "deeper than 32");
        /* Brackets inside strings do not count. */
        expect_rejected("{\"command_id\":\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", COMMAND_REJECT_NOT_A_COMMAND,
                        "is not 1..128");
        expect_rejected("{\"x\":\"\\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[\"}", COMMAND_REJECT_NOT_A_COMMAND,
                        "command_id is missing");

        /* The size limit is inclusive: a 64 KiB command (padded with spaces) is parsed. */
        _cleanup_free_ char *big = malloc(COMMAND_BODY_MAX + 1);
        assert_non_null(big);
        const char *cmd = "{\"command_id\":\"big\",\"action\":\"ping\",\"instance_id\":\"" INSTANCE "\"}";
        memset(big, ' ', COMMAND_BODY_MAX + 1);
        memcpy(big, cmd, strlen(cmd));
        CommandRejection rej = {};
        assert_int_equal(command_evaluate(big, COMMAND_BODY_MAX, true, &p, NOW, &c, &rej), COMMAND_ALLOWED);
        command_done(&c);
        expect_rejected_with(big, COMMAND_BODY_MAX + 1, &p, COMMAND_REJECT_OVERSIZED, "65537 bytes", NULL);

        /* A long garbage body: the message stays bounded and printable. */
        _cleanup_free_ char *garbage = malloc(60000);
        assert_non_null(garbage);
        for (size_t i = 0; i < 60000; i++)
                garbage[i] = (char) (i * 7 + 3);
        assert_int_equal(command_evaluate(garbage, 60000, true, &p, NOW, &c, &rej), COMMAND_REJECTED);
        assert_int_equal(rej.reason, COMMAND_REJECT_MALFORMED_JSON);
        assert_true(strlen(rej.message) < COMMAND_REJECTION_MESSAGE_MAX);
        assert_printable(rej.message);
        assert_non_null(strstr(rej.message, "(60000 bytes) is not JSON"));
        command_rejection_done(&rej);
}

/* A task token under any spelling of its name never reaches a rejection message: the raw
 * search for "task_token"/"taskToken" this replaces missed the escaped and capitalised ones. */
static void test_token_never_quoted(void **state) {
        (void) state;
        static const struct {
                const char *body;
                CommandRejectionReason reason;
                const char *token; /* the token the rejection carries for SendTaskFailure, or NULL */
        } cases[] = {
                { "{\"command_id\":\"c\",\"task\\u005ftoken\":\"SECRET-1\",", COMMAND_REJECT_MALFORMED_JSON, NULL },
                { "{\"TaskToken\":\"SECRET-2\",\"command_id\":", COMMAND_REJECT_MALFORMED_JSON, NULL },
                { "{\"task\\u005Ftoken\":\"SECRET-3\"}}", COMMAND_REJECT_MALFORMED_JSON, NULL },
                { "[{\"TaskToken\":\"SECRET-4\"}]", COMMAND_REJECT_NOT_A_COMMAND, NULL },
                { "\"task_token SECRET-5\"", COMMAND_REJECT_NOT_A_COMMAND, NULL },
                { "{\"TaskToken\":\"SECRET-6\",\"hello\":1}", COMMAND_REJECT_NOT_A_COMMAND, NULL },
                { "{\"command_id\":\"c\",\"task\\u005ftoken\":\"SECRET-7\",\"action\":\"dance\",\"instance_id\":\"" INSTANCE
                  "\"}",
                  COMMAND_REJECT_UNKNOWN_ACTION, "SECRET-7" },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                Command c = {};
                CommandRejection rej = {};
                CommandPolicy p = policy();

                int r = command_evaluate(cases[i].body, strlen(cases[i].body), true, &p, NOW, &c, &rej);
                if (r != COMMAND_REJECTED || rej.reason != cases[i].reason)
                        fail_msg("case %zu: verdict %d reason %s: %s", i, r,
                                 command_rejection_reason_to_string(rej.reason), rej.message);
                if (strstr(rej.message, "SECRET"))
                        fail_msg("case %zu: the token is quoted: %s", i, rej.message);
                if (cases[i].token)
                        assert_string_equal(rej.task_token, cases[i].token);
                else
                        assert_null(rej.task_token);
                command_rejection_done(&rej);
        }
}

/* However broad [commands] units is, a unit command never reaches what powers off, reboots,
 * suspends or halts the machine, nor heald, D-Bus, the journal or SSH. */
static void test_protected_units(void **state) {
        (void) state;
        char *broad[] = { "*.service", "*.target", "*.socket", "*", NULL };
        static const char *const refused[] = {
                "systemd-poweroff.service", "systemd-reboot.service", "systemd-halt.service", "systemd-kexec.service",
                "systemd-soft-reboot.service", "systemd-suspend.service", "systemd-hibernate.service",
                "reboot.target", "poweroff.target", "halt.target", "kexec.target", "soft-reboot.target",
                "ctrl-alt-del.target", "runlevel6.target", "runlevel0.target", "suspend.target", "sleep.target",
                "hibernate.target", "hybrid-sleep.target", "rescue.target", "emergency.target",
                "heald.service", "dbus.service", "dbus.socket", "systemd-journald.service",
                "systemd-journald@audit.service", "sshd.service", "ssh.service", "ssh.socket",
                "sshd@0-10.0.0.1:22-10.0.0.2:50000.service",
        };
        static const char *const actions[] = { "start-units", "stop-units", "restart-units", "stop-start-units" };
        CommandPolicy p = policy();
        p.unit_globs = broad;
        char body[512];

        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                for (size_t a = 0; a < ELEMENTSOF(actions); a++) {
                        snprintf(body, sizeof body,
                                 "{\"command_id\":\"p%zu\",\"action\":\"%s\",\"instance_id\":\"" INSTANCE
                                 "\",\"units\":[\"app.service\",\"%s\"]}",
                                 i, actions[a], refused[i]);
                        char part[128], id[16];
                        snprintf(part, sizeof part, "unit \"%s\" is protected", refused[i]);
                        snprintf(id, sizeof id, "p%zu", i);
                        expect_rejected_with(body, strlen(body), &p, COMMAND_REJECT_UNIT_NOT_ALLOWED, part, id);
                }

        /* The same globs still reach ordinary units, and the reboot action still reboots. */
        static const char *const allowed[] = { "app.service", "multi-user.target", "nginx.socket",
                                               "sshd-keygen.service", "reboot-notifier.service" };
        for (size_t i = 0; i < ELEMENTSOF(allowed); i++) {
                Command c = {};
                snprintf(body, sizeof body,
                         "{\"command_id\":\"a\",\"action\":\"start-units\",\"instance_id\":\"" INSTANCE
                         "\",\"units\":[\"%s\"]}",
                         allowed[i]);
                expect_allowed(body, &p, &c);
                command_done(&c);
        }
        Command c = {};
        expect_allowed("{\"command_id\":\"r\",\"action\":\"reboot\",\"instance_id\":\"" INSTANCE "\"}", &p, &c);
        command_done(&c);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_action_names),  cmocka_unit_test(test_full_command),
                cmocka_unit_test(test_eventbridge_wrapped), cmocka_unit_test(test_not_a_command),
                cmocka_unit_test(test_limits),        cmocka_unit_test(test_unknown_action),
                cmocka_unit_test(test_authorization), cmocka_unit_test(test_globs),
                cmocka_unit_test(test_sender),        cmocka_unit_test(test_expiry),
                cmocka_unit_test(test_not_ready),     cmocka_unit_test(test_corrupt),
                cmocka_unit_test(test_malformed),     cmocka_unit_test(test_hostile_bodies),
                cmocka_unit_test(test_token_never_quoted), cmocka_unit_test(test_protected_units),
                cmocka_unit_test(test_digest),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
