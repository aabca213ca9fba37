/* log.h: one place that writes log lines: the journal (structured) or stderr. */
#pragma once

#include <syslog.h>

#include "util.h"

/* Choose the sink: the journal when stderr is connected to it (JOURNAL_STREAM) or
 * the journal socket exists and stderr is not a terminal; stderr otherwise. */
void log_setup(int max_level);
void log_set_max_level(int max_level);
int log_get_max_level(void);
/* Force plain stderr output (tests, CLI subcommands). */
void log_force_stderr(bool on);

/* Returns -abs(error) (or 0 when error is 0) so callers can "return log_error_errno(r, ...)".
 * event: optional short event name, sent as HEALD_EVENT= in the journal and as
 * "event=NAME" on stderr. %m expands to strerror(error). */
int log_internal(int level, int error, const char *event, const char *fmt, ...) _printf_(4, 5);

/* level names: "debug", "info", "warning", "error" -> LOG_*; -EINVAL otherwise. */
int log_level_from_string(const char *s);
const char *log_level_to_string(int level);

#define log_full_errno(level, error, ...) log_internal((level), (error), NULL, __VA_ARGS__)
#define log_debug(...) log_internal(LOG_DEBUG, 0, NULL, __VA_ARGS__)
#define log_info(...) log_internal(LOG_INFO, 0, NULL, __VA_ARGS__)
#define log_notice(...) log_internal(LOG_NOTICE, 0, NULL, __VA_ARGS__)
#define log_warning(...) log_internal(LOG_WARNING, 0, NULL, __VA_ARGS__)
#define log_error(...) log_internal(LOG_ERR, 0, NULL, __VA_ARGS__)
#define log_debug_errno(e, ...) log_internal(LOG_DEBUG, (e), NULL, __VA_ARGS__)
#define log_warning_errno(e, ...) log_internal(LOG_WARNING, (e), NULL, __VA_ARGS__)
#define log_error_errno(e, ...) log_internal(LOG_ERR, (e), NULL, __VA_ARGS__)
/* A log line tied to an agent event (journal field HEALD_EVENT=). */
#define log_event(level, event, ...) log_internal((level), 0, (event), __VA_ARGS__)
