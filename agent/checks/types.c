/* checks/types.c: the spellings of check types and actions. */
#include "checks/types.h"

#include <stddef.h>

const char *const check_type_names[_CHECK_TYPE_MAX + 1] = {
        [CHECK_UNIT] = "unit",         [CHECK_HTTP] = "http",         [CHECK_TCP] = "tcp",
        [CHECK_DISK] = "disk",         [CHECK_MEMORY] = "memory",     [CHECK_LOAD] = "load",
        [CHECK_FILE_AGE] = "file_age", [CHECK_JOURNAL] = "journal",   [CHECK_EXEC] = "exec",
};

const char *const check_action_names[_CHECK_ACTION_MAX + 1] = {
        [CHECK_ACTION_NONE] = "none",
        [CHECK_ACTION_RESTART_UNIT] = "restart-unit",
        [CHECK_ACTION_START_UNIT] = "start-unit",
        [CHECK_ACTION_STOP_UNIT] = "stop-unit",
        [CHECK_ACTION_EXEC] = "exec",
        [CHECK_ACTION_REQUEST] = "request",
};

const char *check_type_to_string(CheckType t) {
        return t >= 0 && t < _CHECK_TYPE_MAX ? check_type_names[t] : NULL;
}

const char *check_action_to_string(CheckAction a) {
        return a >= 0 && a < _CHECK_ACTION_MAX ? check_action_names[a] : NULL;
}
