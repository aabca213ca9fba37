/* wrap: fsync */
/* test_command_journal.c: the durable command journal: begin/finish/lookup, reopen, pending, pruning by age and count, corrupt files, durability of the directory. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "commands/journal.h"
#include "../lib/temp_dir.h"

#define DAY (24 * USEC_PER_HOUR)

/* The seam that sees what a power loss would keep: the paths fsync()ed, in order. */
int __real_fsync(int fd);
int __wrap_fsync(int fd);
static char synced[64][PATH_MAX];
static size_t n_synced;

int __wrap_fsync(int fd) {
        char link[64];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        if (n_synced < ELEMENTSOF(synced)) {
                ssize_t n = readlink(link, synced[n_synced], sizeof synced[n_synced] - 1);
                synced[n_synced][n > 0 ? n : 0] = '\0';
                n_synced++;
        }
        return __real_fsync(fd);
}

static bool was_synced(const char *path) {
        for (size_t i = 0; i < n_synced && i < ELEMENTSOF(synced); i++)
                if (streq_ptr(synced[i], path))
                        return true;
        return false;
}

static int setup(void **state) {
        return temp_dir_new("test_command_journal", "commands", (TempDir **) state);
}

static int teardown(void **state) {
        temp_dir_free(*state);
        return 0;
}

static CommandJournal *open_ok(const TempDir *f, CommandJournalReport *ret_report) {
        CommandJournal *j = NULL;
        int r = command_journal_open(f->path, &j, ret_report);
        if (r < 0)
                fail_msg("command_journal_open: %s", strerror(-r));
        return j;
}

static size_t count_files(const TempDir *f) {
        size_t n = 0;
        DIR *d = opendir(f->module_dir);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                n += de->d_name[0] != '.';
        closedir(d);
        return n;
}

static void test_begin_finish_lookup(void **state) {
        TempDir *f = *state;
        _cleanup_(command_journal_freep) CommandJournal *j = open_ok(f, NULL);
        CommandRecord rec = {};

        assert_int_equal(command_journal_lookup(j, "cmd-1", &rec), -ENOENT);
        assert_int_equal(command_journal_finish(j, "cmd-1", "{}"), -ENOENT);

        usec_t before = now_usec(CLOCK_REALTIME);
        assert_int_equal(command_journal_begin(j, "cmd-1", "restart-units", "{\"units\":[\"a.service\"]}"), 0);
        assert_int_equal(command_journal_begin(j, "cmd-1", "restart-units", NULL), -EEXIST);
        assert_int_equal(command_journal_count(j), 1);

        assert_int_equal(command_journal_lookup(j, "cmd-1", &rec), 0);
        assert_string_equal(rec.command_id, "cmd-1");
        assert_string_equal(rec.action, "restart-units");
        assert_int_equal(rec.state, COMMAND_RECORD_IN_PROGRESS);
        assert_true(rec.begun_at >= before);
        assert_true(rec.finished_at == 0);
        assert_string_equal(rec.context_json, "{\"units\":[\"a.service\"]}");
        assert_null(rec.result_json);
        command_record_done(&rec);

        assert_int_equal(command_journal_finish(j, "cmd-1", "{\"status\":\"succeeded\",\"units\":{\"a.service\":\"active\"}}"),
                         0);
        assert_int_equal(command_journal_finish(j, "cmd-1", "{}"), -EALREADY);
        assert_int_equal(command_journal_lookup(j, "cmd-1", &rec), 0);
        assert_int_equal(rec.state, COMMAND_RECORD_FINISHED);
        assert_true(rec.finished_at >= rec.begun_at);
        assert_string_equal(rec.result_json, "{\"status\":\"succeeded\",\"units\":{\"a.service\":\"active\"}}");
        assert_string_equal(rec.context_json, "{\"units\":[\"a.service\"]}");
        command_record_done(&rec);
        command_record_done(NULL);

        /* Bad arguments. */
        assert_int_equal(command_journal_begin(j, "", "ping", NULL), -EINVAL);
        assert_int_equal(command_journal_begin(j, "c", "", NULL), -EINVAL);
        assert_int_equal(command_journal_begin(j, "c", "two words", NULL), -EINVAL);
        assert_int_equal(command_journal_begin(j, "c", "ping", "{not json"), -EINVAL);
        assert_int_equal(command_journal_lookup(j, "c", &rec), -ENOENT); /* nothing left behind */
        assert_int_equal(command_journal_begin(j, "c", "ping", NULL), 0);
        assert_int_equal(command_journal_finish(j, "c", "not json"), -EINVAL);
        assert_int_equal(command_journal_finish(j, "c", NULL), -EINVAL);
        assert_int_equal(count_files(f), 2);
}

static void test_reopen_pending(void **state) {
        TempDir *f = *state;
        CommandJournalReport report;
        CommandRecord *pending = NULL;
        size_t n = 99;

        CommandJournal *j = open_ok(f, &report);
        assert_int_equal(report.records, 0);
        assert_int_equal(command_journal_pending(j, &pending, &n), 0);
        assert_null(pending);
        assert_int_equal(n, 0);

        assert_int_equal(command_journal_begin(j, "reboot-1", "reboot", "{\"boot_id\":\"b0\"}"), 0);
        assert_int_equal(command_journal_begin(j, "ping-1", "ping", NULL), 0);
        assert_int_equal(command_journal_finish(j, "ping-1", "{\"status\":\"succeeded\"}"), 0);
        assert_int_equal(command_journal_begin(j, "stop-1", "prepare-stop", NULL), 0);

        /* Only one journal at a time. */
        CommandJournal *other = NULL;
        assert_int_equal(command_journal_open(f->path, &other, NULL), -EBUSY);
        assert_null(other);
        j = command_journal_free(j);
        assert_null(j);

        /* "After the reboot". */
        j = open_ok(f, &report);
        assert_int_equal(report.records, 3);
        assert_int_equal(report.in_progress, 2);
        assert_int_equal(report.corrupt, 0);
        assert_int_equal(report.pruned, 0);
        assert_string_equal(report.first_problem, "");

        assert_int_equal(command_journal_pending(j, &pending, &n), 0);
        assert_int_equal(n, 2);
        assert_string_equal(pending[0].command_id, "reboot-1"); /* oldest first */
        assert_string_equal(pending[0].action, "reboot");
        assert_string_equal(pending[0].context_json, "{\"boot_id\":\"b0\"}");
        assert_string_equal(pending[1].command_id, "stop-1");
        assert_null(pending[1].context_json);
        pending = command_records_free(pending, n);

        /* A redelivered command is found with its reported result. */
        CommandRecord rec = {};
        assert_int_equal(command_journal_lookup(j, "ping-1", &rec), 0);
        assert_int_equal(rec.state, COMMAND_RECORD_FINISHED);
        assert_string_equal(rec.result_json, "{\"status\":\"succeeded\"}");
        command_record_done(&rec);

        assert_int_equal(command_journal_finish(j, "reboot-1", "{\"status\":\"succeeded\",\"boot_id\":\"b1\"}"), 0);
        assert_int_equal(command_journal_pending(j, &pending, &n), 0);
        assert_int_equal(n, 1);
        assert_string_equal(pending[0].command_id, "stop-1");
        pending = command_records_free(pending, n);
        command_journal_free(j);
}

static void test_prune_by_age(void **state) {
        TempDir *f = *state;
        _cleanup_(command_journal_freep) CommandJournal *j = open_ok(f, NULL);
        usec_t now = now_usec(CLOCK_REALTIME);

        assert_int_equal(command_journal_begin(j, "old", "ping", NULL), 0);
        assert_int_equal(command_journal_finish(j, "old", "{}"), 0);
        assert_int_equal(command_journal_begin(j, "running", "reboot", NULL), 0);

        assert_int_equal(command_journal_prune(j, now + 6 * DAY), 0);
        assert_int_equal(command_journal_prune(j, now - 30 * DAY), 0); /* a clock behind: nothing */
        assert_int_equal(command_journal_prune(j, now + 8 * DAY), 1);
        assert_int_equal(command_journal_count(j), 1);
        CommandRecord rec = {};
        assert_int_equal(command_journal_lookup(j, "old", &rec), -ENOENT);
        /* In progress is never pruned, however old. */
        assert_int_equal(command_journal_prune(j, now + 1000 * DAY), 0);
        assert_int_equal(command_journal_lookup(j, "running", &rec), 0);
        command_record_done(&rec);
        assert_int_equal(count_files(f), 1);
}

static void test_prune_by_count(void **state) {
        TempDir *f = *state;
        _cleanup_(command_journal_freep) CommandJournal *j = open_ok(f, NULL);
        char id[32];
        CommandRecord rec = {};

        command_journal_set_max_records(j, 3);
        assert_int_equal(command_journal_begin(j, "pending", "reboot", NULL), 0);
        for (int i = 0; i < 4; i++) {
                snprintf(id, sizeof id, "done-%d", i);
                assert_int_equal(command_journal_begin(j, id, "ping", NULL), 0);
                assert_int_equal(command_journal_finish(j, id, "{}"), 0);
        }
        /* The oldest finished made room each time. */
        assert_int_equal(command_journal_count(j), 3);
        assert_int_equal(command_journal_lookup(j, "done-0", &rec), -ENOENT);
        assert_int_equal(command_journal_lookup(j, "done-1", &rec), -ENOENT);
        assert_int_equal(command_journal_lookup(j, "done-2", &rec), 0);
        command_record_done(&rec);
        assert_int_equal(command_journal_lookup(j, "pending", &rec), 0);
        command_record_done(&rec);

        /* Full of commands in progress: no room. */
        command_journal_set_max_records(j, 1);
        assert_int_equal(command_journal_prune(j, now_usec(CLOCK_REALTIME)), 2);
        assert_int_equal(command_journal_begin(j, "another", "reboot", NULL), -ENOSPC);
        assert_int_equal(count_files(f), 1);
}

static void write_raw(const TempDir *f, const char *name, const char *text) {
        assert_int_equal(write_file_atomic(f->module_dir, name, text, strlen(text)), 0);
}

static void test_corrupt_files(void **state) {
        TempDir *f = *state;
        CommandJournalReport report;

        CommandJournal *j = open_ok(f, NULL);
        assert_int_equal(command_journal_begin(j, "good", "reboot", NULL), 0);
        assert_int_equal(command_journal_begin(j, "moved", "reboot", NULL), 0);
        command_journal_free(j);

        /* Garbage under a record's name, a record under another's name, a wrong version, a
         * leftover temp file and a stranger (ignored). */
        const char *h0 = "0000000000000000000000000000000000000000000000000000000000000000.json";
        const char *h1 = "1111111111111111111111111111111111111111111111111111111111111111.json";
        const char *h2 = "2222222222222222222222222222222222222222222222222222222222222222.json";
        write_raw(f, h0, "\x01garbage");
        write_raw(f, h1,
                  "{\"version\":1,\"command_id\":\"good\",\"action\":\"reboot\",\"state\":\"in-progress\",\"begun_at\":1}");
        write_raw(f, h2,
                  "{\"version\":2,\"command_id\":\"x\",\"action\":\"reboot\",\"state\":\"in-progress\",\"begun_at\":1}");
        write_raw(f, ".leftover.json.tmp", "{");
        write_raw(f, "README", "not a record");

        j = open_ok(f, &report);
        assert_int_equal(report.records, 2);
        assert_int_equal(report.in_progress, 2);
        assert_int_equal(report.corrupt, 3);
        assert_non_null(strstr(report.first_problem, "commands/"));
        assert_non_null(strstr(report.first_problem, ", skipped"));
        struct stat st;
        char tmp[256];
        snprintf(tmp, sizeof tmp, "%s/.leftover.json.tmp", f->module_dir);
        assert_int_equal(stat(tmp, &st), -1); /* cleaned up */

        CommandRecord *pending = NULL;
        size_t n;
        assert_int_equal(command_journal_pending(j, &pending, &n), 0);
        assert_int_equal(n, 2);
        pending = command_records_free(pending, n);

        /* A file that goes bad after open: lookups say so, pending leaves it out. */
        CommandRecord rec = {};
        DIR *d = opendir(f->module_dir);
        char victim[512] = "";
        for (struct dirent *de; (de = readdir(d));) {
                char path[512];
                snprintf(path, sizeof path, "%s/%s", f->module_dir, de->d_name);
                if (de->d_name[0] != '.' && strstr(de->d_name, ".json") && !streq_ptr(de->d_name, h0) &&
                    !streq_ptr(de->d_name, h1) && !streq_ptr(de->d_name, h2)) {
                        snprintf(victim, sizeof victim, "%s", de->d_name);
                        break;
                }
        }
        closedir(d);
        assert_true(victim[0]);
        write_raw(f, victim, "{}");
        unsigned bad = 0;
        for (size_t i = 0; i < 2; i++) {
                int r = command_journal_lookup(j, i == 0 ? "good" : "moved", &rec);
                bad += r == -EBADMSG;
                command_record_done(&rec);
        }
        assert_int_equal(bad, 1);
        assert_int_equal(command_journal_pending(j, &pending, &n), 0);
        assert_int_equal(n, 1);
        pending = command_records_free(pending, n);
        command_journal_free(j);
}

/* The journal's directory is new: its entry in state_dir must be synced before a begin can
 * count as durable, or a power loss takes the directory and the record with it. */
static void test_new_directory_is_durable(void **state) {
        TempDir *f = *state;
        char state_dir[PATH_MAX];
        assert_non_null(realpath(f->path, state_dir));

        n_synced = 0;
        CommandJournal *j = open_ok(f, NULL);
        assert_int_equal(command_journal_begin(j, "reboot-1", "reboot", NULL), 0);
        assert_true(was_synced(state_dir));
        command_journal_free(j);

        /* An existing directory needs no second sync of state_dir. */
        n_synced = 0;
        j = open_ok(f, NULL);
        assert_false(was_synced(state_dir));
        command_journal_free(j);
}

/* A record that was corrupt at open is not in the index; its command must still not look
 * new, or a redelivery would run it a second time. */
static void test_corrupt_record_is_not_new(void **state) {
        TempDir *f = *state;
        CommandJournalReport report;
        CommandRecord rec = {};

        CommandJournal *j = open_ok(f, NULL);
        assert_int_equal(command_journal_begin(j, "ran-once", "restart-units", NULL), 0);
        command_journal_free(j);
        DIR *d = opendir(f->module_dir);
        assert_non_null(d);
        char name[256] = "";
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.')
                        snprintf(name, sizeof name, "%s", de->d_name);
        closedir(d);
        assert_true(name[0]);
        write_raw(f, name, "{\"version\":1,\"command_id\":");

        j = open_ok(f, &report);
        assert_int_equal(report.corrupt, 1);
        assert_int_equal(command_journal_lookup(j, "ran-once", &rec), -EBADMSG);
        assert_int_equal(command_journal_lookup(j, "never-seen", &rec), -ENOENT);
        command_journal_free(j);
}

static void test_odd_ids(void **state) {
        TempDir *f = *state;
        _cleanup_(command_journal_freep) CommandJournal *j = open_ok(f, NULL);
        CommandRecord rec = {};
        char long_id[COMMAND_JOURNAL_ID_MAX + 2];

        /* The file name is a hash: slashes, dots and quotes in ids are harmless. */
        assert_int_equal(command_journal_begin(j, "../../etc/passwd", "ping", NULL), 0);
        assert_int_equal(command_journal_begin(j, "a\"b\\c", "ping", NULL), 0);
        assert_int_equal(command_journal_lookup(j, "a\"b\\c", &rec), 0);
        assert_string_equal(rec.command_id, "a\"b\\c");
        command_record_done(&rec);

        memset(long_id, 'x', sizeof long_id - 1);
        long_id[sizeof long_id - 1] = '\0';
        assert_int_equal(command_journal_begin(j, long_id, "ping", NULL), -EINVAL);
        long_id[COMMAND_JOURNAL_ID_MAX] = '\0';
        assert_int_equal(command_journal_begin(j, long_id, "ping", NULL), 0);
        assert_int_equal(command_journal_begin(j, "bad\xff", "ping", NULL), -EINVAL);
        assert_int_equal(count_files(f), 3);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_begin_finish_lookup, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reopen_pending, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_by_age, setup, teardown),
                cmocka_unit_test_setup_teardown(test_prune_by_count, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_files, setup, teardown),
                cmocka_unit_test_setup_teardown(test_odd_ids, setup, teardown),
                cmocka_unit_test_setup_teardown(test_new_directory_is_durable, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_record_is_not_new, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
