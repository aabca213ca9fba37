/* wrap: pwritev write */
/* test_outbox_full_disk.c: the outbox on a disk that refuses writes (ENOSPC): it opens, holds new
 * records in memory within max_bytes, applies removals in memory, and catches up once the disk
 * takes writes again. The seams fail writes to regular files while disk_full is set. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <inttypes.h>
#include <sys/stat.h>
#include <sys/uio.h>

#include "outbox_test.h"
#include "../lib/temp_dir.h"

static bool disk_full;

ssize_t __real_pwritev(int fd, const struct iovec *iov, int n, off_t offset);
ssize_t __wrap_pwritev(int fd, const struct iovec *iov, int n, off_t offset);
ssize_t __real_write(int fd, const void *buf, size_t len);
ssize_t __wrap_write(int fd, const void *buf, size_t len);

static bool refused(int fd) {
        struct stat st;
        if (!disk_full || fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return false;
        errno = ENOSPC;
        return true;
}

ssize_t __wrap_pwritev(int fd, const struct iovec *iov, int n, off_t offset) {
        return refused(fd) ? -1 : __real_pwritev(fd, iov, n, offset);
}

ssize_t __wrap_write(int fd, const void *buf, size_t len) {
        return refused(fd) ? -1 : __real_write(fd, buf, len);
}

static int setup(void **state) {
        disk_full = false;
        return temp_dir_new("test_outbox_full_disk", NULL, (TempDir **) state);
}

static int teardown(void **state) {
        disk_full = false;
        temp_dir_free(*state);
        return 0;
}

static size_t list_all(const Outbox *o, uint64_t *ids, size_t max) {
        return outbox_list(o, 0, ids, max);
}

/* heald restarts on a full disk: the outbox opens with what it had, new records go to memory,
 * removals apply at once, and all of it reaches the disk once it has room. */
static void test_full_disk_open_append_remove_recover(void **state) {
        TempDir *f = *state;
        uint64_t old1, old2, old3, mem1, mem2, fresh, ids[8];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                old1 = append_text(o, "{\"old\":1}");
                old2 = append_text(o, "{\"old\":2}");
                old3 = append_text(o, "{\"old\":3}");
        }

        disk_full = true;
        OutboxOpenReport report;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
                assert_int_equal(report.disk_error, -ENOSPC);
                assert_int_equal(report.records, 3);
                assert_int_equal(outbox_disk_error(o), -ENOSPC);

                mem1 = append_text(o, "{\"mem\":1}");
                mem2 = append_text(o, "{\"mem\":2}");
                assert_true(mem1 > old3 && mem2 > mem1);
                assert_int_equal(outbox_in_memory(o), 2);
                assert_int_equal(outbox_count(o), 5);
                assert_int_equal(outbox_disk_error(o), -ENOSPC);
                assert_record(o, old2, "{\"old\":2}");
                assert_record(o, mem1, "{\"mem\":1}");
                assert_int_equal(list_all(o, ids, 8), 5);
                assert_int_equal(ids[3], mem1);

                /* Removal of a record on disk and one in memory: applied although the ack log
                 * cannot be written. */
                uint64_t sent[] = { old1, mem1 };
                assert_int_equal(outbox_remove(o, sent, 2), 2);
                assert_int_equal(outbox_count(o), 3);
                assert_int_equal(outbox_in_memory(o), 1);
                assert_int_equal(outbox_read(o, mem1, &(char *) { NULL }, NULL), -ENOENT);

                /* The disk has room again: the next append is durable, and the next ack write
                 * catches up with the removal made meanwhile. */
                disk_full = false;
                fresh = append_text(o, "{\"fresh\":1}");
                assert_int_equal(outbox_disk_error(o), 0);
                assert_int_equal(outbox_in_memory(o), 1);
                assert_int_equal(outbox_remove(o, &old3, 1), 1);
        }

        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
        assert_int_equal(report.disk_error, 0);
        /* old1 and old3 were removed, mem1 removed, mem2 lived in memory only: old2 and fresh stay. */
        assert_int_equal(list_all(o, ids, 8), 2);
        assert_int_equal(ids[0], old2);
        assert_int_equal(ids[1], fresh);
        assert_record(o, fresh, "{\"fresh\":1}");
        (void) mem2;
}

/* Memory holds at most max_bytes of records: the oldest held there are dropped and counted, and
 * the count reaches the disk with the next ack write once it has room. */
static void test_full_disk_memory_capped_and_counted(void **state) {
        TempDir *f = *state;
        const char *record = "{\"detail\":\"0123456789012345678901234567890123456789\"}";
        const uint64_t per_record = strlen(record) + OUTBOX_RECORD_OVERHEAD;
        const uint64_t max_bytes = 4 * per_record;
        uint64_t ids[16], last = 0;

        disk_full = true;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, max_bytes, NULL);
                for (size_t i = 0; i < 10; i++)
                        last = append_text(o, record);
                assert_int_equal(outbox_in_memory(o), 4);
                assert_true(outbox_bytes(o) <= max_bytes);
                assert_int_equal(outbox_dropped(o), 6);
                assert_int_equal(list_all(o, ids, 16), 4);
                assert_int_equal(ids[3], last);

                disk_full = false;
                uint64_t on_disk = append_text(o, record); /* makes room by dropping one more */
                assert_int_equal(outbox_disk_error(o), 0);
                assert_int_equal(outbox_dropped(o), 7);
                assert_int_equal(outbox_remove(o, &on_disk, 1), 1);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, max_bytes, NULL);
        assert_int_equal(outbox_dropped(o), 7);
        assert_int_equal(outbox_count(o), 0);
}

/* A failing dead-letter write leaves the record pending, to be tried again. */
static void test_full_disk_dead_letter_fails_cleanly(void **state) {
        TempDir *f = *state;
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        uint64_t id = append_text(o, "{\"bad\":true}");
        disk_full = true;
        assert_int_equal(outbox_dead_letter(o, id, "MalformedDetail: x", 1024 * 1024), -ENOSPC);
        assert_int_equal(outbox_count(o), 1);
        assert_record(o, id, "{\"bad\":true}");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_full_disk_open_append_remove_recover, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_disk_memory_capped_and_counted, setup, teardown),
                cmocka_unit_test_setup_teardown(test_full_disk_dead_letter_fails_cleanly, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
