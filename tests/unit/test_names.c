/* test_names.c: the one spelling of unit names and check names that heald.ini and commands share. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "names.h"

static void test_unit_names(void **state) {
        (void) state;
        static const char *const valid[] = { "nginx.service", "app@1.service", "dev-sda1.device", "a.timer",
                                             "sys-fs-fuse-connections.mount", "x\\x2d.slice", "-.mount", "-.slice" };
        static const char *const invalid[] = { "",           "nginx",      "nginx.bogus", ".service", "-x.service",
                                               ".x.service", "a b.service", "a/b.service", "a*.service",
                                               "-.service",  "-.mount.mount", "--.mount", "-x.slice" };
        for (size_t i = 0; i < sizeof valid / sizeof *valid; i++) {
                assert_true(unit_name_is_valid(valid[i], false));
                assert_true(unit_name_is_valid(valid[i], true));
        }
        for (size_t i = 0; i < sizeof invalid / sizeof *invalid; i++)
                assert_false(unit_name_is_valid(invalid[i], false));

        assert_true(unit_name_is_valid("app-*.service", true));
        assert_true(unit_name_is_valid("worker@[0-9].service", true));
        assert_false(unit_name_is_valid("*", true));
        assert_false(unit_name_is_valid("-*.service", true));

        char longest[UNIT_NAME_MAX + 2];
        memset(longest, 'a', sizeof longest);
        memcpy(longest + UNIT_NAME_MAX - 8, ".service", 9);
        assert_true(unit_name_is_valid(longest, false));
        memset(longest, 'a', sizeof longest);
        memcpy(longest + UNIT_NAME_MAX - 7, ".service", 9);
        assert_false(unit_name_is_valid(longest, false));
}

static void test_check_names(void **state) {
        (void) state;
        assert_true(check_name_is_valid("web"));
        assert_true(check_name_is_valid("db-1_primary.eu"));
        assert_false(check_name_is_valid(""));
        assert_false(check_name_is_valid("a/b"));
        assert_false(check_name_is_valid("a b"));
        char name[CHECK_NAME_MAX + 2];
        memset(name, 'c', CHECK_NAME_MAX);
        name[CHECK_NAME_MAX] = 0;
        assert_true(check_name_is_valid(name));
        name[CHECK_NAME_MAX] = 'c';
        name[CHECK_NAME_MAX + 1] = 0;
        assert_false(check_name_is_valid(name));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_names),
                cmocka_unit_test(test_check_names),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
