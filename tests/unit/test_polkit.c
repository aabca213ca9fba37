/* test_polkit.c: the generated polkit rule: grants follow the configuration, globs become
 * the regular expressions fnmatch means, protected units and reboot, the atomic 0644 write. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>

#include "polkit.h"

static Config *load(const char *text) {
        Config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r = config_load_string(text, "test.ini", &c, &error);
        if (r < 0)
                fail_msg("config: %s", error ? error : "?");
        return c;
}

static void build(const char *ini, char **ret_rules, char **ret_warnings) {
        _cleanup_(config_freep) Config *c = load(ini);
        assert_int_equal(polkit_rules_build(c, "heald", ret_rules, ret_warnings), 0);
}

#define assert_contains(haystack, needle)                                                        \
        do {                                                                                     \
                if (!strstr((haystack), (needle)))                                               \
                        fail_msg("expected \"%s\" in:\n%s", (needle), (haystack));               \
        } while (0)
#define assert_lacks(haystack, needle)                                                           \
        do {                                                                                     \
                if (strstr((haystack), (needle)))                                                \
                        fail_msg("did not expect \"%s\" in:\n%s", (needle), (haystack));         \
        } while (0)

static void test_nothing_configured(void **state _unused_) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        build("", &rules, &warnings);
        assert_null(warnings);
        assert_contains(rules, "subject.user !== \"heald\"");
        assert_contains(rules, "org.freedesktop.systemd1.manage-units");
        assert_contains(rules, "var grants = [\n    ];");
        assert_contains(rules, "return polkit.Result.NO;\n});\n");
        assert_lacks(rules, "reboot = "); /* no reboot grant */
        assert_lacks(rules, "// [commands] allow = reboot");
}

static void test_check_actions(void **state _unused_) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        build("[check nginx]\ntype = unit\nunit = nginx.service\naction = restart-unit\n"
              "[check web]\ntype = tcp\nhost = 127.0.0.1\nport = 80\naction = stop-unit\naction_unit = web.service\n"
              "[check quiet]\ntype = unit\nunit = quiet.service\n",
              &rules, &warnings);
        assert_null(warnings);
        assert_contains(rules, "{ unit: \"nginx.service\", verbs: [\"restart\"] }, // [check nginx] action = restart-unit");
        assert_contains(rules, "{ unit: \"web.service\", verbs: [\"stop\"] }, // [check web] action = stop-unit");
        assert_lacks(rules, "quiet.service"); /* no action, no grant */
}

static void test_commands_globs(void **state _unused_) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        build("[commands]\nallow = restart-units, stop-start-units, prepare-stop, reboot\n"
              "units = app-*.service, web[0-9].service, db[!a-c]?.service, x\\x2dy.service, plain.service\n"
              "drain_units = haproxy.service\n",
              &rules, &warnings);
        /* "db[!a-c]?" also matches dbus.service */
        assert_non_null(warnings);
        assert_string_equal(warnings, "[commands] units: db[!a-c]?.service: systemd refuses heald's jobs on protected "
                                      "units: dbus.service\n");
        assert_contains(rules, "{ glob: /^app-.*\\.service$/, verbs: [\"restart\", \"start\", \"stop\"] }");
        assert_contains(rules, "{ glob: /^web[0-9]\\.service$/,");
        assert_contains(rules, "{ glob: /^db[^a-c].\\.service$/,");
        /* fnmatch reads "\x" as a literal x, and so does heald's authorisation of commands */
        assert_contains(rules, "{ glob: /^xx2dy\\.service$/,");
        assert_contains(rules, "{ unit: \"plain.service\", verbs: [\"restart\", \"start\", \"stop\"] }");
        assert_contains(rules, "{ unit: \"haproxy.service\", verbs: [\"stop\"] }, // [commands] drain_units");
        assert_contains(rules, "if (unit === \"reboot.target\" && verb === \"start\")\n"
                               "        return polkit.Result.YES; // [commands] allow = reboot");
}

static void test_units_without_unit_commands(void **state _unused_) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        /* units listed, but no command that acts on them is allowed: nothing is granted */
        build("[commands]\nallow = ping, prepare-stop\nunits = app-*.service\ndrain_units = app.service\n", &rules,
              &warnings);
        assert_lacks(rules, "app-");
        assert_contains(rules, "{ unit: \"app.service\", verbs: [\"stop\"] }");
}

static void test_protected_units(void **state _unused_) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        build("[commands]\nallow = start-units\nunits = *.target\n"
              "[check self]\ntype = exec\ncommand = /bin/true\naction = restart-unit\naction_unit = heald.service\n",
              &rules, &warnings);
        assert_non_null(warnings);
        assert_contains(warnings, "[check self] action = restart-unit: heald.service: systemd refuses heald's jobs on "
                                  "protected units: heald.service\n");
        assert_contains(warnings, "[commands] units: *.target: systemd refuses heald's jobs on protected units: "
                                  "reboot.target, poweroff.target");
        assert_contains(rules, "var protectedUnits = [/^heald\\.service$/, /^dbus\\.service$/");
        assert_contains(rules, "protectedUnits.some(function (p) { return p.test(unit); }))\n"
                               "        return polkit.Result.NO;");
        /* a glob never reaches reboot.target: only allow = reboot does */
        assert_lacks(rules, "// [commands] allow = reboot");
}

/* "*.service, *.target" with start-units must not grant what powers off, reboots, suspends or
 * halts the machine: the services behind the targets and the sleep states are refused too,
 * and so are SSH's per-connection instances (a pattern, not a name). */
static void test_power_units_refused(void **state _unused_) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        build("[commands]\nallow = start-units\nunits = *.service, *.target\n", &rules, &warnings);
        static const char *const refused[] = {
                "/^systemd-poweroff\\.service$/", "/^systemd-reboot\\.service$/", "/^systemd-halt\\.service$/",
                "/^systemd-kexec\\.service$/",    "/^soft-reboot\\.target$/",      "/^suspend\\.target$/",
                "/^sleep\\.target$/",             "/^hibernate\\.target$/",        "/^sshd\\.service$/",
                "/^sshd@.*\\.service$/",          "/^systemd-journald@.*$/",
        };
        for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                assert_contains(rules, refused[i]);
        assert_contains(warnings, "[commands] units: *.service: systemd refuses heald's jobs on protected units: "
                                  "heald.service, dbus.service");
        assert_contains(warnings, "systemd-poweroff.service, systemd-reboot.service");
        assert_contains(warnings, "sshd@*.service");
        assert_lacks(rules, "// [commands] allow = reboot");
}

static void test_bad_user(void **state _unused_) {
        _cleanup_(config_freep) Config *c = load("");
        char *rules = NULL, *warnings = NULL;
        assert_int_equal(polkit_rules_build(c, "\"; evil", &rules, &warnings), -EINVAL);
        assert_int_equal(polkit_rules_build(c, "", &rules, &warnings), -EINVAL);
        assert_int_equal(polkit_rules_build(c, "Heald", &rules, &warnings), -EINVAL);
        assert_null(rules);
        assert_null(warnings);
}

static void test_write(void **state _unused_) {
        char dir[] = "/tmp/test_polkit.XXXXXX", path[64];
        assert_non_null(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/50-heald.rules", dir);
        mode_t old = umask(0077);
        assert_int_equal(polkit_rules_write(path, "first\n"), 0);
        assert_int_equal(polkit_rules_write(path, "second\n"), 0);
        umask(old);

        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 07777, 0644);
        _cleanup_free_ char *text = NULL;
        assert_int_equal(read_file_full(path, 64, &text, NULL), 0);
        assert_string_equal(text, "second\n");
        assert_int_equal(unlink(path), 0);
        assert_int_equal(rmdir(dir), 0); /* no temporary file left behind */

        assert_int_equal(polkit_rules_write("/nonexistent-dir/x.rules", "x"), -ENOENT);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_nothing_configured), cmocka_unit_test(test_check_actions),
                cmocka_unit_test(test_commands_globs),     cmocka_unit_test(test_units_without_unit_commands),
                cmocka_unit_test(test_protected_units),    cmocka_unit_test(test_bad_user),
                cmocka_unit_test(test_write),              cmocka_unit_test(test_power_units_refused),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
