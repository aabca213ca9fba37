/* disk.c: the disk check: block and inode usage of a file system, computed as df does. */
#include "checks/check_private.h"

#include <sys/statvfs.h>

/* used / (used + available to unprivileged users): the reserved blocks count as neither. */
static double percent_used(uint64_t total, uint64_t free_all, uint64_t available) {
        if (free_all > total)
                free_all = total;
        uint64_t used = total - free_all;
        if (used + available == 0)
                return 0.0;
        return 100.0 * (double) used / ((double) used + (double) available);
}

int check_disk_run(const CheckConfig *c, CheckResult *ret) {
        struct statvfs st;

        if (!c || c->type != CHECK_DISK || isempty(c->path))
                return -EINVAL;

        check_result_init(ret);
        if (c->max_used_percent >= 0 && c->max_inodes_percent >= 0)
                check_threshold(ret, "<= %g%% used, <= %g%% inodes", c->max_used_percent, c->max_inodes_percent);
        else if (c->max_used_percent >= 0)
                check_threshold(ret, "<= %g%% used", c->max_used_percent);
        else
                check_threshold(ret, "<= %g%% inodes", c->max_inodes_percent);

        if (statvfs(c->path, &st) < 0) {
                int error = errno;
                check_observed(ret, "%s", error == ENOENT ? "missing" : "unreadable");
                check_message(ret, "disk %s: statvfs: %s", c->path, strerror(error));
                return 0;
        }

        double used = percent_used(st.f_blocks, st.f_bfree, st.f_bavail);
        double inodes = percent_used(st.f_files, st.f_ffree, st.f_favail);
        bool too_full = c->max_used_percent >= 0 && used > c->max_used_percent;
        bool too_many_inodes = c->max_inodes_percent >= 0 && inodes > c->max_inodes_percent;

        ret->healthy = !too_full && !too_many_inodes;
        check_observed(ret, "%.1f%% used, %.1f%% inodes", used, inodes);
        check_message(ret, "disk %s: %.1f%% of blocks and %.1f%% of inodes used%s", c->path, used, inodes,
                      too_full && too_many_inodes ? ": blocks and inodes over the limit"
                      : too_full                  ? ": blocks over the limit"
                      : too_many_inodes           ? ": inodes over the limit"
                                                  : "");
        return 0;
}

static const char *disk_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX] _unused_) {
        return c->path;
}

const CheckTypeOps check_disk_ops = { .source = CHECK_SOURCE_POLL, .target = disk_target, .run = check_disk_run };
