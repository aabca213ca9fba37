/* heal/remedy.c: the unit operations heald asks of systemd (see remedy.h). */
#include "heal/remedy.h"

#include "heal/runtime.h"

static const struct {
        const char *name;
        const char *method; /* org.freedesktop.systemd1.Manager */
} remedy_operations[_REMEDY_OPERATION_MAX] = {
        [REMEDY_RESTART] = { "restart", "RestartUnit" },
        [REMEDY_START] = { "start", "StartUnit" },
        [REMEDY_STOP] = { "stop", "StopUnit" },
};

const char *remedy_operation_to_string(RemedyOperation op) {
        return op >= 0 && op < _REMEDY_OPERATION_MAX ? remedy_operations[op].name : NULL;
}

RemedyOperation remedy_operation_of_action(CheckAction action) {
        switch (action) {
        case CHECK_ACTION_RESTART_UNIT:
                return REMEDY_RESTART;
        case CHECK_ACTION_START_UNIT:
                return REMEDY_START;
        case CHECK_ACTION_STOP_UNIT:
                return REMEDY_STOP;
        default:
                return _REMEDY_OPERATION_INVALID;
        }
}

int remedy_unit_job(Units *units, RemedyOperation op, const char *unit, unit_job_fn done, void *userdata) {
        if (op < 0 || op >= _REMEDY_OPERATION_MAX)
                return -EINVAL;
        if (!units)
                return -ENOTCONN;
        return units_job(units, remedy_operations[op].method, unit, done, userdata);
}

const char *remedy_action_target(const CheckConfig *c) {
        switch (c->action) {
        case CHECK_ACTION_RESTART_UNIT:
        case CHECK_ACTION_START_UNIT:
        case CHECK_ACTION_STOP_UNIT:
                return c->action_unit ? c->action_unit : c->unit;
        case CHECK_ACTION_EXEC:
                return c->action_command[0];
        default:
                return NULL;
        }
}

const CheckConfig *remedy_in_progress(const Monitor *m, const char *unit) {
        for (size_t i = 0; m && i < m->n_checks; i++) {
                const CheckRuntime *c = &m->checks[i];
                if (c->policy.phase != POLICY_ACTING && c->policy.phase != POLICY_VERIFYING)
                        continue;
                /* A request's verification waits for the fleet's action: no local one is under way. */
                const char *t = remedy_action_target(c->config);
                if (t && (!unit || strcmp(t, unit) == 0))
                        return c->config;
        }
        return NULL;
}
