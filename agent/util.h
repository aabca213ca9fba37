/* util.h: small helpers every module uses: cleanup attributes, time, secrets. */
#pragma once

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef uint64_t usec_t;

#define USEC_INFINITY   ((usec_t) UINT64_MAX)
#define USEC_PER_MSEC   ((usec_t) 1000ULL)
#define USEC_PER_SEC    ((usec_t) 1000000ULL)
#define USEC_PER_MINUTE (60ULL * USEC_PER_SEC)
#define USEC_PER_HOUR   (60ULL * USEC_PER_MINUTE)

#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)
#define ELEMENTSOF(x) (sizeof(x) / sizeof((x)[0]))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _cleanup_(f) __attribute__((cleanup(f)))

/* Hand ownership out of a _cleanup_ variable: the variable becomes NULL. */
#define TAKE_PTR(p)                      \
        ({                               \
                __typeof__(p) _p_ = (p); \
                (p) = NULL;              \
                _p_;                     \
        })

#define TAKE_FD(fd)               \
        ({                        \
                int _fd_ = (fd);  \
                (fd) = -1;        \
                _fd_;             \
        })

/* "s" unless n is 1: "%zu event%s", n, plural_s(n). */
static inline const char *plural_s(uint64_t n) {
        return n == 1 ? "" : "s";
}

static inline void freep(void *p) {
        free(*(void **) p);
}
#define _cleanup_free_ _cleanup_(freep)

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                (void) close(*fd);
                errno = saved;
        }
}
#define _cleanup_close_ _cleanup_(closep)

static inline void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Define a cleanup helper for a type whose destructor returns NULL (or void). */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func) \
        static inline void func##p(type *p) {   \
                if (*p)                         \
                        func(*p);               \
        }

/* Wipe memory that held a secret; the compiler may not elide it. */
static inline void secure_zero(void *p, size_t n) {
        if (p && n > 0)
                explicit_bzero(p, n);
}

/* Free a NUL-terminated secret string after wiping it. */
static inline void *secret_free(char *s) {
        if (s) {
                secure_zero(s, strlen(s));
                free(s);
        }
        return NULL;
}
static inline void secret_freep(char **s) {
        secret_free(*s);
}
#define _cleanup_secret_ _cleanup_(secret_freep)

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}
static inline bool isempty(const char *s) {
        return !s || !*s;
}

/* The one way heald formats into a fixed-size buffer: snprintf() that says whether the text
 * fit. Returns 0, or -ENAMETOOLONG when it was cut; buf then holds what fits, ending in "..."
 * so that a log line shows the cut. A path or URL must treat the cut as an error; a text for a
 * log line or an event may go on cut. bsprintf() takes the size from the array's type (it does
 * not compile for a pointer). */
int format_bounded(char *buf, size_t size, const char *fmt, ...) _printf_(3, 4);
#define MUST_BE_ARRAY(a) \
        (0 * sizeof(char[1 - 2 * __builtin_types_compatible_p(__typeof__(a), __typeof__(&(a)[0]))]))
#define bsprintf(array, fmt, ...) format_bounded((array), sizeof(array) + MUST_BE_ARRAY(array), fmt, ##__VA_ARGS__)

/* Monotonic/boot/realtime clocks in microseconds. */
usec_t now_usec(int clock_id);

/* The accuracy for a timer due delay from now: a tenth of it, between 10 ms and 1 s. sd-event
 * wakes once for every timer whose window has begun, so timers of the same period share a
 * wake-up instead of waking the process one by one. */
usec_t timer_accuracy(usec_t delay);

/* Replace *dst with a copy of src (NULL allowed). Returns 0 or -ENOMEM. */
int free_and_strdup(char **dst, const char *src);

/* Write data to dir/name atomically and durably: temp file 0600, fsync, rename, fsync dir. */
int write_file_atomic(const char *dir, const char *name, const void *data, size_t len);
/* The same with the file's mode (0644: a file other users' programs read). */
int write_file_atomic_mode(const char *dir, const char *name, const void *data, size_t len, mode_t mode);
/* fsync a directory, making the entries created or renamed in it durable. */
int directory_fsync(const char *path);

/* Read a whole small file (at most max bytes, else -EFBIG) into a NUL-terminated buffer;
 * caller frees. read_fd_full() reads an open fd to its end the same way. */
int read_file_full(const char *path, size_t max, char **ret, size_t *ret_len);
int read_fd_full(int fd, size_t max, char **ret, size_t *ret_len);

/* Format a wall-clock time (usec since epoch) as "2026-11-26T20:31:51Z" into buf[21]. */
void format_iso8601(usec_t realtime, char buf[static 21]);
/* The same with milliseconds: "2026-11-26T20:31:51.123Z" into buf[25]. */
void format_iso8601_ms(usec_t realtime, char buf[static 25]);

static inline void *mfree(void *p) {
        free(p);
        return NULL;
}
