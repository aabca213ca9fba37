/* file_age.c: the file_age check: a file that stops being touched (a heartbeat, a backup
 * stamp) or goes missing is unhealthy. */
#include "checks/check_private.h"

#include <sys/stat.h>
#include <time.h>

int check_file_age_run(const CheckConfig *c, CheckResult *ret) {
        struct stat st;
        char limit[32];

        if (!c || c->type != CHECK_FILE_AGE || isempty(c->path))
                return -EINVAL;

        check_result_init(ret);
        check_format_duration(c->max_age, limit);
        check_threshold(ret, "modified within %s", limit);

        if (stat(c->path, &st) < 0) {
                int error = errno;
                check_observed(ret, "%s", error == ENOENT ? "missing" : "unreadable");
                check_message(ret, "file_age %s: %s", c->path, strerror(error));
                return 0;
        }

        /* The file's time is wall-clock, so the comparison is too; a file from the future
         * (clock stepped back) counts as fresh. */
        usec_t now = now_usec(CLOCK_REALTIME);
        usec_t mtime = st.st_mtim.tv_sec < 0 ? 0
                                             : (usec_t) st.st_mtim.tv_sec * USEC_PER_SEC +
                                                       (usec_t) st.st_mtim.tv_nsec / 1000;
        usec_t age = now > mtime ? now - mtime : 0;

        ret->healthy = age <= c->max_age;
        check_observed(ret, "age %llu s", (unsigned long long) (age / USEC_PER_SEC));
        check_message(ret, "file_age %s: last modified %llu s ago%s", c->path,
                      (unsigned long long) (age / USEC_PER_SEC), ret->healthy ? "" : ", too old");
        return 0;
}

static const char *file_age_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX] _unused_) {
        return c->path;
}

const CheckTypeOps check_file_age_ops = {
        .source = CHECK_SOURCE_POLL,
        .target = file_age_target,
        .run = check_file_age_run,
};
