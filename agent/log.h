/* log.h: one place that writes log lines: the journal (structured: MESSAGE_ID= per event,
 * HEALD_* fields) or stderr (with a timestamp). */
#pragma once

#include <assert.h>
#include <syslog.h>

#include "util.h"

/* Choose the sink: the journal when stderr is connected to it (JOURNAL_STREAM) or
 * the journal socket exists and stderr is not a terminal; stderr otherwise. */
void log_setup(int max_level);
void log_set_max_level(int max_level);
int log_get_max_level(void);
/* Force plain stderr output (tests, CLI subcommands). */
void log_force_stderr(bool on);

/* Returns -abs(error), or 0 when error is 0. Call it through the macros below, which hold the
 * contract: event: optional short event name, sent as HEALD_EVENT= in the journal and as
 * "event=NAME" on stderr. %m expands to strerror(error). */
int log_internal(int level, int error, const char *event, const char *fmt, ...) _printf_(4, 5);

/* What a line is about, sent as the journal fields HEALD_CHECK=, HEALD_UNIT= (once per unit)
 * and HEALD_COMMAND_ID=; every member is optional (NULL). */
typedef struct LogSubject {
        const char *check;
        const char *unit;
        char *const *units; /* NULL-terminated, after unit */
        const char *command_id;
} LogSubject;

/* log_internal() with the fields of what the line is about (subject may be NULL). */
int log_internal_about(int level, int error, const char *event, const LogSubject *subject, const char *fmt, ...)
        _printf_(5, 6);

/* The stable MESSAGE_ID (32 hex digits) of an event's lines, documented in
 * packaging/heald.catalog; NULL for a name without one. */
const char *log_message_id(const char *event);

/* level names: "debug", "info", "warning", "error" -> LOG_*; -EINVAL otherwise. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

/* A line about a failure carries its error, which must not be 0, and hands it back as a
 * negative errno: "return log_error_errno(r, ...)" can never turn a failure into success.
 * error may be positive (EINVAL) or negative (r). */
#define log_full_errno(level, error, ...)                                      \
        ({                                                                     \
                int _log_error_ = (error);                                     \
                assert(_log_error_ != 0);                                      \
                log_internal((level), _log_error_, NULL, __VA_ARGS__);         \
        })
/* A plain line has no value, so it cannot be returned or assigned as if it were a result. */
#define log_full(level, ...) ((void) log_internal((level), 0, NULL, __VA_ARGS__))

#define log_debug(...) log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...) log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...) log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...) log_full(LOG_ERR, __VA_ARGS__)
#define log_debug_errno(e, ...) log_full_errno(LOG_DEBUG, (e), __VA_ARGS__)
#define log_warning_errno(e, ...) log_full_errno(LOG_WARNING, (e), __VA_ARGS__)
#define log_error_errno(e, ...) log_full_errno(LOG_ERR, (e), __VA_ARGS__)
/* A log line tied to an agent event (journal field HEALD_EVENT=); no value, as log_full. */
#define log_event(level, event, ...) ((void) log_internal((level), 0, (event), __VA_ARGS__))
/* The same, about a check, unit or command (journal fields HEALD_CHECK= and so on). */
#define log_event_about(level, event, subject, ...) \
        ((void) log_internal_about((level), 0, (event), (subject), __VA_ARGS__))
