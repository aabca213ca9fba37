/* test_check_types.c: the table of check types (checks/check.c): every type has its row, a
 * name, a source of results, a way to run when polled, and the target events name. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include "checks/check.h"

static void test_every_type_has_a_row(void **state) {
        (void) state;
        for (CheckType t = 0; t < _CHECK_TYPE_MAX; t++) {
                const CheckTypeOps *ops = check_type_ops(t);
                assert_non_null(check_type_to_string(t));
                assert_non_null(ops->target);
                if (ops->source == CHECK_SOURCE_POLL)
                        assert_true(!ops->run != !ops->start); /* exactly one */
                else
                        assert_true(!ops->run && !ops->start);
        }
        assert_null(check_type_to_string(_CHECK_TYPE_MAX));
        assert_null(check_type_names[_CHECK_TYPE_MAX]);
}

static void test_sources(void **state) {
        (void) state;
        assert_int_equal(check_type_ops(CHECK_UNIT)->source, CHECK_SOURCE_UNIT);
        assert_int_equal(check_type_ops(CHECK_JOURNAL)->source, CHECK_SOURCE_JOURNAL);
        for (CheckType t = 0; t < _CHECK_TYPE_MAX; t++)
                if (t != CHECK_UNIT && t != CHECK_JOURNAL)
                        assert_int_equal(check_type_ops(t)->source, CHECK_SOURCE_POLL);
        assert_non_null(check_type_ops(CHECK_DISK)->run);
        assert_non_null(check_type_ops(CHECK_HTTP)->start);
}

static const char *target_of(CheckConfig *c, CheckType t, char buf[static CHECK_TARGET_MAX]) {
        c->type = t;
        return check_target(c, buf);
}

/* What events and heald status called each check's target before the table: unchanged. */
static void test_targets(void **state) {
        (void) state;
        char *command[] = { "/usr/bin/probe", "--fast", NULL };
        CheckConfig c = {
                .unit = "nginx.service",
                .url = "http://user:secret@127.0.0.1/health",
                .url_public = "http://***@127.0.0.1/health",
                .host = "db.internal",
                .port = 5432,
                .path = "/var/lib/app",
                .pattern = "segfault",
                .command = command,
        };
        char buf[CHECK_TARGET_MAX];
        assert_string_equal(target_of(&c, CHECK_UNIT, buf), "nginx.service");
        assert_string_equal(target_of(&c, CHECK_HTTP, buf), "http://***@127.0.0.1/health");
        assert_string_equal(target_of(&c, CHECK_TCP, buf), "db.internal:5432");
        assert_string_equal(target_of(&c, CHECK_DISK, buf), "/var/lib/app");
        assert_string_equal(target_of(&c, CHECK_FILE_AGE, buf), "/var/lib/app");
        assert_string_equal(target_of(&c, CHECK_MEMORY, buf), "memory");
        assert_string_equal(target_of(&c, CHECK_LOAD, buf), "load");
        assert_string_equal(target_of(&c, CHECK_JOURNAL, buf), "segfault");
        assert_string_equal(target_of(&c, CHECK_EXEC, buf), "/usr/bin/probe --fast");
}

/* An exec check's target is its whole command line, quoted where a word needs it, escaped
 * once and bounded. */
static void test_exec_target(void **state) {
        (void) state;
        char buf[CHECK_TARGET_MAX];
        char *quoted[] = { "/usr/bin/probe", "--name", "my app", "a\\b\n", NULL };
        CheckConfig c = { .command = quoted };
        assert_string_equal(target_of(&c, CHECK_EXEC, buf), "/usr/bin/probe --name \"my app\" a\\\\b\\x0a");
        char arg[300];
        memset(arg, 'x', sizeof arg - 1);
        arg[sizeof arg - 1] = 0;
        char *long_line[] = { "/usr/bin/probe", arg, NULL };
        c.command = long_line;
        target_of(&c, CHECK_EXEC, buf);
        assert_true(strlen(buf) < CHECK_TARGET_MAX);
        assert_string_equal(buf + strlen(buf) - 4, "x...");
}

static void test_names(void **state) {
        (void) state;
        assert_string_equal(check_type_to_string(CHECK_FILE_AGE), "file_age");
        assert_string_equal(check_type_to_string(CHECK_JOURNAL), "journal");
        assert_string_equal(check_action_to_string(CHECK_ACTION_RESTART_UNIT), "restart-unit");
        assert_string_equal(check_action_to_string(CHECK_ACTION_REQUEST), "request");
        assert_null(check_action_to_string(_CHECK_ACTION_MAX));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_type_has_a_row),
                cmocka_unit_test(test_sources),
                cmocka_unit_test(test_targets),
                cmocka_unit_test(test_exec_target),
                cmocka_unit_test(test_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
