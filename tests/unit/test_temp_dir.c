/* test_temp_dir.c: a test's temporary directory goes with everything in it, and with
 * nothing outside it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <sys/stat.h>

#include "../lib/temp_dir.h"

static void touch(const char *dir, const char *name) {
        char path[512];
        assert_true((size_t) snprintf(path, sizeof path, "%s/%s", dir, name) < sizeof path);
        int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        close(fd);
}

static void test_free_removes_the_tree(void **state) {
        (void) state;
        TempDir *d = NULL;
        assert_int_equal(temp_dir_new("test_temp_dir", NULL, &d), 0);
        char sub[256], path[256];
        snprintf(sub, sizeof sub, "%s/a", d->path);
        assert_int_equal(mkdir(sub, 0700), 0);
        touch(sub, "file");
        snprintf(path, sizeof path, "%s", d->path);
        temp_dir_free(d);
        assert_int_equal(access(path, F_OK), -1);
}

/* A link to a directory elsewhere is removed as a link: what it points to stays. */
static void test_free_does_not_follow_links(void **state) {
        (void) state;
        _cleanup_(temp_dir_freep) TempDir *outside = NULL;
        TempDir *d = NULL;
        assert_int_equal(temp_dir_new("test_temp_dir_outside", NULL, &outside), 0);
        assert_int_equal(temp_dir_new("test_temp_dir", NULL, &d), 0);
        touch(outside->path, "keep");
        char link[256], kept[256];
        snprintf(link, sizeof link, "%s/link", d->path);
        assert_int_equal(symlink(outside->path, link), 0);
        temp_dir_free(d);
        assert_int_equal(access(link, F_OK), -1);
        snprintf(kept, sizeof kept, "%s/keep", outside->path);
        assert_int_equal(access(kept, F_OK), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_free_removes_the_tree),
                cmocka_unit_test(test_free_does_not_follow_links),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
