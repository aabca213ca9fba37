/* test_diagnose.c: the diagnosis of failure events: how a unit's main process ended, the
 * journal lines bounded, escaped and masked, /proc/PID/stat lines, and the real readers of
 * /proc and the file system for memory, load and disk checks. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <signal.h>

#include "codec.h"
#include "heal/diagnose.h"

static const char *str(const cJSON *d, const char *key) {
        return cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(d, key));
}

static double num(const cJSON *d, const char *key) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(d, key);
        assert_non_null(j);
        return cJSON_GetNumberValue(j);
}

static bool flag(const cJSON *d, const char *key) {
        const cJSON *j = cJSON_GetObjectItemCaseSensitive(d, key);
        assert_true(cJSON_IsBool(j));
        return cJSON_IsTrue(j);
}

static void test_unit_killed_by_signal(void **state) {
        (void) state;
        UnitState st = { .result = "signal", .n_restarts = 2, .exec_main_code = CLD_KILLED, .exec_main_status = SIGKILL };
        const char *lines[] = { "starting", "app.service: Main process exited, code=killed, status=9/KILL" };
        _cleanup_cjson_ cJSON *d = NULL;
        assert_int_equal(diagnosis_unit_new("app.service", &st, lines, 2, &d), 0);
        assert_string_equal(str(d, "unit"), "app.service");
        assert_string_equal(str(d, "result"), "signal");
        assert_string_equal(str(d, "signal"), "SIGKILL");
        assert_false(flag(d, "core_dumped"));
        assert_null(cJSON_GetObjectItemCaseSensitive(d, "exit_code"));
        assert_int_equal(num(d, "n_restarts"), 2);
        assert_false(flag(d, "oom_killed"));
        const cJSON *journal = cJSON_GetObjectItemCaseSensitive(d, "journal");
        assert_int_equal(cJSON_GetArraySize(journal), 2);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetArrayItem(journal, 0)), "starting"); /* oldest first */
}

static void test_unit_exit_code_and_oom(void **state) {
        (void) state;
        UnitState st = { .result = "exit-code", .exec_main_code = CLD_EXITED, .exec_main_status = 3 };
        _cleanup_cjson_ cJSON *d = NULL, *oom = NULL, *never = NULL;
        assert_int_equal(diagnosis_unit_new("app.service", &st, NULL, 0, &d), 0);
        assert_int_equal(num(d, "exit_code"), 3);
        assert_null(cJSON_GetObjectItemCaseSensitive(d, "signal"));
        assert_int_equal(cJSON_GetArraySize(cJSON_GetObjectItemCaseSensitive(d, "journal")), 0);

        UnitState killed = { .result = "oom-kill", .exec_main_code = CLD_KILLED, .exec_main_status = SIGKILL };
        assert_int_equal(diagnosis_unit_new("app.service", &killed, NULL, 0, &oom), 0);
        assert_true(flag(oom, "oom_killed"));

        UnitState running = { .result = "success" }; /* never ended: no exit_code, no signal */
        assert_int_equal(diagnosis_unit_new("app.service", &running, NULL, 0, &never), 0);
        assert_null(cJSON_GetObjectItemCaseSensitive(never, "exit_code"));
        assert_null(cJSON_GetObjectItemCaseSensitive(never, "signal"));
}

/* 20 lines of 1000 bytes each: each cut at the line bound, the oldest dropped under 4 KiB,
 * the newest kept, every line escaped. */
static void test_journal_bounded(void **state) {
        (void) state;
        char text[DIAGNOSIS_JOURNAL_LINES][1001];
        const char *lines[DIAGNOSIS_JOURNAL_LINES];
        for (size_t i = 0; i < DIAGNOSIS_JOURNAL_LINES; i++) {
                memset(text[i], 'a' + (char) i, 1000);
                text[i][0] = '\x1b'; /* a terminal escape */
                text[i][1000] = 0;
                lines[i] = text[i];
        }
        UnitState st = { .result = "exit-code" };
        _cleanup_cjson_ cJSON *d = NULL;
        assert_int_equal(diagnosis_unit_new("app.service", &st, lines, DIAGNOSIS_JOURNAL_LINES, &d), 0);
        const cJSON *journal = cJSON_GetObjectItemCaseSensitive(d, "journal"), *line;
        size_t total = 0;
        cJSON_ArrayForEach(line, journal) {
                const char *s = cJSON_GetStringValue(line);
                assert_true(strlen(s) < DIAGNOSIS_LINE_MAX);
                assert_null(strchr(s, '\x1b'));
                assert_memory_equal(s, "\\x1b", 4);
                total += strlen(s);
        }
        assert_true(total <= DIAGNOSIS_JOURNAL_BYTES);
        assert_true(cJSON_GetArraySize(journal) >= 2);
        assert_true(flag(d, "journal_truncated"));
        const char *newest = cJSON_GetStringValue(cJSON_GetArrayItem(journal, cJSON_GetArraySize(journal) - 1));
        assert_int_equal(newest[4], 'a' + DIAGNOSIS_JOURNAL_LINES - 1);
}

static void test_mask_secrets(void **state) {
        (void) state;
        const struct {
                const char *in, *out;
        } cases[] = {
                { "login password=hunter22 ok", "login password=*** ok" },
                { "DB_PASSWORD: 's3cr3t-value', next", "DB_PASSWORD: '***', next" },
                { "Authorization: Bearer eyJhbGciOi.payload.sig", "Authorization: Bearer ***" },
                { "key AKIAIOSFODNN7EXAMPLE used", "key *** used" },
                { "aws_secret_access_key=wJalrXUtnFEMI/K7MDENG", "aws_secret_access_key=***" },
                { "{\"token\":\"abcdef123456\"}", "{\"token\":\"***\"}" },
                { "tokens are counted: 5 fine", "tokens are counted: 5 fine" }, /* no separator right after */
                { "nothing to hide", "nothing to hide" },
        };
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                char line[256];
                snprintf(line, sizeof line, "%s", cases[i].in);
                diagnosis_mask_secrets(line);
                assert_string_equal(line, cases[i].out);
        }
}

static void test_parse_stat(void **state) {
        (void) state;
        /* comm with a space and a parenthesis; utime 300 + stime 100 ticks, started at tick 1000, rss 2560 pages */
        const char *stat = "4242 (my (odd) app) S 1 4242 4242 0 -1 4194560 100 0 0 0 300 100 0 0 20 0 1 0 1000 "
                           "123456789 2560 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
        ProcessSample s;
        assert_int_equal(diagnosis_parse_stat(stat, strlen(stat), 50.0, 100, 4, &s), 0);
        assert_int_equal(s.pid, 4242);
        assert_string_equal(s.command, "my (odd) app");
        assert_int_equal(s.rss_kib, 10240);
        assert_true(s.cpu_percent > 9.99 && s.cpu_percent < 10.01); /* 4 s of CPU over 40 s of life */
        assert_int_equal(diagnosis_parse_stat("garbage", 7, 50.0, 100, 4, &s), -EBADMSG);
        assert_int_equal(diagnosis_parse_stat("", 0, 50.0, 100, 4, &s), -EBADMSG);
}

/* The real readers: this process is among the processes, / has a mount. */
static void test_diagnose_readers(void **state) {
        (void) state;
        CheckConfig memory = { .type = CHECK_MEMORY }, load = { .type = CHECK_LOAD },
                    disk = { .type = CHECK_DISK, .path = (char *) "/proc" }, http = { .type = CHECK_HTTP };
        _cleanup_cjson_ cJSON *m = NULL, *l = NULL, *dk = NULL, *h = NULL;
        assert_int_equal(diagnose(&memory, NULL, &m), 0);
        const cJSON *top = cJSON_GetObjectItemCaseSensitive(m, "largest_processes");
        assert_true(cJSON_GetArraySize(top) >= 1 && cJSON_GetArraySize(top) <= DIAGNOSIS_TOP_PROCESSES);
        assert_true(num(cJSON_GetArrayItem(top, 0), "rss_kib") > 0);
        assert_int_equal(diagnose(&load, NULL, &l), 0);
        top = cJSON_GetObjectItemCaseSensitive(l, "busiest_processes");
        assert_true(cJSON_GetArraySize(top) >= 1 && cJSON_GetArraySize(top) <= DIAGNOSIS_TOP_PROCESSES);
        assert_int_equal(diagnose(&disk, NULL, &dk), 0);
        assert_string_equal(str(dk, "mount"), "/proc");
        assert_string_equal(str(dk, "filesystem"), "proc");
        assert_non_null(cJSON_GetObjectItemCaseSensitive(dk, "largest_directories"));
        assert_int_equal(diagnose(&http, NULL, &h), 0);
        assert_int_equal(cJSON_GetArraySize(h), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_unit_killed_by_signal),
                cmocka_unit_test(test_unit_exit_code_and_oom),
                cmocka_unit_test(test_journal_bounded),
                cmocka_unit_test(test_mask_secrets),
                cmocka_unit_test(test_parse_stat),
                cmocka_unit_test(test_diagnose_readers),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
