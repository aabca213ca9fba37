/* util.c: clocks, atomic durable file writes, small string helpers. */
#include "util.h"

#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <time.h>

usec_t now_usec(int clock_id) {
        struct timespec ts;
        if (clock_gettime(clock_id, &ts) < 0)
                abort(); /* only fails for an invalid clock id: a programmer error */
        return (usec_t) ts.tv_sec * USEC_PER_SEC + (usec_t) ts.tv_nsec / 1000;
}

usec_t timer_accuracy(usec_t delay) {
        usec_t a = delay / 10;
        return a < 10 * USEC_PER_MSEC ? 10 * USEC_PER_MSEC : a > USEC_PER_SEC ? USEC_PER_SEC : a;
}

int free_and_strdup(char **dst, const char *src) {
        char *copy = NULL;
        if (src) {
                copy = strdup(src);
                if (!copy)
                        return -ENOMEM;
        }
        free(*dst);
        *dst = copy;
        return 0;
}

int format_bounded(char *buf, size_t size, const char *fmt, ...) {
        static const char cut[] = "...";
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(buf, size, fmt, ap);
        va_end(ap);
        if (n < 0) {
                if (size > 0)
                        buf[0] = 0;
                return -EINVAL; /* an invalid format: a programmer error */
        }
        if ((size_t) n < size)
                return 0;
        if (size >= sizeof cut)
                memcpy(buf + size - sizeof cut, cut, sizeof cut);
        return -ENAMETOOLONG;
}

static int write_all(int fd, const void *data, size_t len) {
        const char *p = data;
        while (len > 0) {
                ssize_t n = write(fd, p, len);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                p += n;
                len -= (size_t) n;
        }
        return 0;
}

int write_file_atomic(const char *dir, const char *name, const void *data, size_t len) {
        return write_file_atomic_mode(dir, name, data, len, 0600);
}

int write_file_atomic_mode(const char *dir, const char *name, const void *data, size_t len, mode_t mode) {
        char tmp[4096], dst[4096];
        int r;

        if (bsprintf(tmp, "%s/.%s.tmp", dir, name) < 0 || bsprintf(dst, "%s/%s", dir, name) < 0)
                return -ENAMETOOLONG;

        (void) unlink(tmp); /* a leftover from a crash between create and rename */
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
        if (fd < 0)
                return -errno;
        r = write_all(fd, data, len);
        if (r >= 0 && fchmod(fd, mode) < 0) /* past the umask: mode is what the readers need */
                r = -errno;
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && rename(tmp, dst) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }

        return directory_fsync(dir);
}

int directory_fsync(const char *path) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return fsync(fd) < 0 ? -errno : 0;
}

int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len) {
        size_t cap = 4096, len = 0;
        _cleanup_free_ char *buf = malloc(cap + 1);
        if (!buf)
                return -ENOMEM;
        for (;;) {
                if (len == cap) {
                        if (cap >= max)
                                return -EFBIG;
                        cap = cap * 2 > max ? max : cap * 2;
                        char *n = realloc(buf, cap + 1);
                        if (!n)
                                return -ENOMEM;
                        buf = n;
                }
                ssize_t k = read(fd, buf + len, cap - len);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = 0;
        if (ret_len)
                *ret_len = len;
        *ret = TAKE_PTR(buf);
        return 0;
}

int read_file_full(const char *path, size_t max, char **ret, size_t *ret_len) {
        _cleanup_close_ int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        return read_fd_full(fd, max, ret, ret_len);
}

void format_iso8601(usec_t realtime, char buf[static 21]) {
        time_t t = (time_t) (realtime / USEC_PER_SEC);
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(buf, 21, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void format_iso8601_ms(usec_t realtime, char buf[static 25]) {
        char sec[21];
        format_iso8601(realtime, sec); /* "...:51Z": the Z gives way to the milliseconds */
        (void) format_bounded(buf, 25, "%.19s.%03uZ", sec, (unsigned) (realtime / USEC_PER_MSEC % 1000));
}
