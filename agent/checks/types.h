/* checks/types.h: the check types and the actions a check may take, and their spellings in
 * heald.ini and in events. Pure names: config.h builds CheckConfig on them, check.h gives
 * each type its operations. */
#pragma once

typedef enum CheckType {
        CHECK_UNIT,     /* a systemd unit, watched through D-Bus signals */
        CHECK_HTTP,
        CHECK_TCP,
        CHECK_DISK,
        CHECK_MEMORY,
        CHECK_LOAD,
        CHECK_FILE_AGE,
        CHECK_JOURNAL,
        CHECK_EXEC,
        _CHECK_TYPE_MAX,
} CheckType;

typedef enum CheckAction {
        CHECK_ACTION_NONE,
        CHECK_ACTION_RESTART_UNIT,
        CHECK_ACTION_START_UNIT,
        CHECK_ACTION_STOP_UNIT,
        CHECK_ACTION_EXEC,
        CHECK_ACTION_REQUEST, /* publish "Remediation Requested" for the fleet to act on */
        _CHECK_ACTION_MAX,
} CheckAction;

/* By value, NULL-terminated: "unit", "http", ...; "none", "restart-unit", ... */
extern const char *const check_type_names[_CHECK_TYPE_MAX + 1];
extern const char *const check_action_names[_CHECK_ACTION_MAX + 1];

/* NULL for an invalid value. */
const char *check_type_to_string(CheckType t);
const char *check_action_to_string(CheckAction a);
