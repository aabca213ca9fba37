/* log.c: a tiny logger. Library-like code returns errors; callers log once here. */
#include "log.h"

#include <stdarg.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>

static int max_level = LOG_INFO;
static bool use_journal;
static bool forced_stderr;

static const char *const level_names[] = {
        [LOG_ERR] = "error", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
};

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

int log_internal(int level, int error, const char *event, const char *fmt, ...) {
        int ret = error > 0 ? -error : error;
        if (level > max_level)
                return ret;

        int saved = errno;
        errno = error < 0 ? -error : error; /* so that %m names this error */
        char msg[2048];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);

        if (use_journal) {
                if (event)
                        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level, "HEALD_EVENT=%s", event,
                                        "SYSLOG_IDENTIFIER=heald", NULL);
                else
                        sd_journal_send("MESSAGE=%s", msg, "PRIORITY=%i", level, "SYSLOG_IDENTIFIER=heald",
                                        NULL);
        } else if (event)
                fprintf(stderr, "heald[%s]: %s (event=%s)\n", log_level_to_string(level), msg, event);
        else
                fprintf(stderr, "heald[%s]: %s\n", log_level_to_string(level), msg);
        errno = saved;
        return ret;
}
