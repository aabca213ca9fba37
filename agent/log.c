/* log.c: a tiny logger. Library-like code returns errors; callers log once here. */
#include "log.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;
static bool use_journal;
static bool forced_stderr;

static const char *const level_names[] = {
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

/* One MESSAGE_ID per event name, never changed once released: journalctl -x explains each
 * from packaging/heald.catalog, which holds the same IDs (tests/unit/test_log.c compares). */
static const struct { const char *event, *message_id; } message_ids[] = {
        { "started", "d3c2abda1925475fa8f602dee6de1125" },
        { "stopping", "1acfeb09d0f648feb892edd1233f76eb" },
        { "reloaded", "582b9d10cbda4544a705a29b35d79074" },
        { "reload-rejected", "1c0fb1fb5a5a4330a34ba89bcf307701" },
        { "check-failed", "547fe449e98f4baf942d843cacd1ca4b" },
        { "check-recovered", "e055752a337449568c5bffb218c229a0" },
        { "check-reset", "bda2d22213524c21a0d97fdd3b5f6a9f" },
        { "remediation-started", "355948b4eba945f39c7ae4ab4164ede5" },
        { "remediation-succeeded", "47e9847cd2dc43c4b076c297f56e6aec" },
        { "remediation-failed", "9e53742b3c3547c594dcf428395bb6ee" },
        { "remediation-escalated", "ded51ca1936746d29bbdcfc68cb752e8" },
        { "remediation-suppressed", "69b02bdd917f4171abd49365121d154e" },
        { "command-received", "6d33e66bd0f0474993e0aeb02385a649" },
        { "command-done", "b38f61a820c94649af66449d90ecb0a8" },
        { "command-rejected", "8f4c7352b067426cb15a784d3a69e1ec" },
        { "command-redelivered", "55657bbcac90453cac4775736be05caa" },
        { "command-verified", "8ed11f9425f34d96a7fa928e07b06694" },
        { "command-interrupted", "b013fd93841148df914afa2d7a836494" },
        { "command-waiting", "352967397f4f4a2ca6bb15b4df6bd44e" },
        { "sqs-error", "a88f3992286b4d49914d10a67847f5be" },
        { "published", "6e008db535dd4ae0aa4e96d23a956148" },
        { "publish-retry", "d6e279c26b2c446299a56c07ed68e8de" },
        { "aws-refused", "ef022aed5ee345a78c11882e6e8c4270" },
        { "clock-skew", "e66cd8d12d7c4d4e97b47f2a3d92b848" },
        { "dead-letter", "20c122d5d30c4fa7b9d0136563833850" },
        { "dead-letter-trimmed", "1ccf0d7a8dd047b6aec532b1009826a2" },
        { "events-dropped", "7e4f44362e3540ed969134a6755e3471" },
        { "outbox-corrupt", "1e4dc3d3a899444eb6b2a4c331cc1951" },
        { "outbox-in-memory", "94412b85738a4190913199af3a2620af" },
        { "outbox-on-disk", "38d8eac97dbb4873bf8426b411b2a78f" },
        { "credentials-refreshed", "1394119752f84475878ea3a3b6c684cb" },
        { "imds-error", "b3d9045664644e50b74ce5962a64ce4f" },
        { "plain-http-endpoint", "3f060c03b8c144ab900b4b1fbad9b1ce" },
};

const char *log_message_id(const char *event) {
        for (size_t i = 0; event && i < ELEMENTSOF(message_ids); i++)
                if (strcmp(message_ids[i].event, event) == 0)
                        return message_ids[i].message_id;
        return NULL;
}

void log_setup(int level) {
        struct stat st;
        max_level = level;
        /* JOURNAL_STREAM is set by systemd when stderr goes to the journal already. */
        use_journal = !forced_stderr &&
                      (getenv("JOURNAL_STREAM") ||
                       (!isatty(STDERR_FILENO) && stat("/run/systemd/journal/socket", &st) == 0));
}

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_force_stderr(bool on) {
        forced_stderr = on;
        if (on)
                use_journal = false;
}

int log_level_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (level_names[i] && strcmp(level_names[i], s) == 0)
                        return (int) i;
        return -EINVAL;
}

const char *log_level_to_string(int level) {
        if (level < 0 || (size_t) level >= ELEMENTSOF(level_names) || !level_names[level])
                return "unknown";
        return level_names[level];
}

/* "NAME=value" as one iovec, formatted into buf; false when it does not fit. */
static bool field(struct iovec *iov, size_t *n, char *buf, size_t size, const char *name, const char *value) {
        if (!value)
                return true;
        int k = snprintf(buf, size, "%s=%s", name, value);
        if (k < 0 || (size_t) k >= size)
                return false;
        iov[(*n)++] = (struct iovec) { .iov_base = buf, .iov_len = (size_t) k };
        return true;
}

#define LOG_UNITS_MAX 32

static void journal_write(int level, const char *event, const LogSubject *subject, const char *msg) {
        static const LogSubject none;
        if (!subject)
                subject = &none;
        char message[2100], priority[16], message_id[48], event_field[80], check[300], unit[300], command_id[160];
        char units[LOG_UNITS_MAX][300];
        struct iovec iov[8 + LOG_UNITS_MAX];
        size_t n = 0;
        if (!field(iov, &n, message, sizeof message, "MESSAGE", msg))
                return;
        snprintf(priority, sizeof priority, "PRIORITY=%i", level);
        iov[n++] = (struct iovec) { .iov_base = priority, .iov_len = strlen(priority) };
        iov[n++] = (struct iovec) { .iov_base = (char *) "SYSLOG_IDENTIFIER=heald", .iov_len = strlen("SYSLOG_IDENTIFIER=heald") };
        /* A field that does not fit is left out rather than cut: a cut name would mislead. */
        (void) field(iov, &n, event_field, sizeof event_field, "HEALD_EVENT", event);
        (void) field(iov, &n, message_id, sizeof message_id, "MESSAGE_ID", log_message_id(event));
        (void) field(iov, &n, check, sizeof check, "HEALD_CHECK", subject->check);
        (void) field(iov, &n, unit, sizeof unit, "HEALD_UNIT", subject->unit);
        for (size_t i = 0; subject->units && subject->units[i] && i < LOG_UNITS_MAX; i++)
                (void) field(iov, &n, units[i], sizeof units[i], "HEALD_UNIT", subject->units[i]);
        (void) field(iov, &n, command_id, sizeof command_id, "HEALD_COMMAND_ID", subject->command_id);
        (void) sd_journal_sendv(iov, (int) n);
}

_printf_(5, 0) static int log_internalv(int level, int error, const char *event, const LogSubject *subject, const char *fmt,
                                         va_list ap) {
        int ret = error > 0 ? -error : error;
        if (level > max_level)
                return ret;

        int saved = errno;
        errno = error < 0 ? -error : error; /* so that %m names this error */
        char msg[2048];
        vsnprintf(msg, sizeof msg, fmt, ap);

        if (use_journal)
                journal_write(level, event, subject, msg);
        else {
                /* Outside the journal nothing else stamps the time. */
                char now[25];
                format_iso8601_ms(now_usec(CLOCK_REALTIME), now);
                if (event)
                        fprintf(stderr, "%s heald[%s]: %s (event=%s)\n", now, log_level_to_string(level), msg, event);
                else
                        fprintf(stderr, "%s heald[%s]: %s\n", now, log_level_to_string(level), msg);
        }
        errno = saved;
        return ret;
}

int log_internal(int level, int error, const char *event, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_internalv(level, error, event, NULL, fmt, ap);
        va_end(ap);
        return r;
}

int log_internal_about(int level, int error, const char *event, const LogSubject *subject, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        int r = log_internalv(level, error, event, subject, fmt, ap);
        va_end(ap);
        return r;
}
