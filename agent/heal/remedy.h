/* heal/remedy.h: the unit operations heald asks of systemd, for a check's action and for a
 * fleet command alike: one spelling and one D-Bus method each, one way to start them. */
#pragma once

#include "config.h"
#include "heal/verify.h"
#include "io/units.h"

typedef enum RemedyOperation {
        REMEDY_RESTART,
        REMEDY_START,
        REMEDY_STOP,
        _REMEDY_OPERATION_MAX,
        _REMEDY_OPERATION_INVALID = -EINVAL,
} RemedyOperation;

/* "restart", "start", "stop": how events and logs name the operation; NULL when invalid. */
const char *remedy_operation_to_string(RemedyOperation op);

/* The unit operation a check's action takes, or _REMEDY_OPERATION_INVALID for an action
 * that is not a unit job (none, exec, request). */
RemedyOperation remedy_operation_of_action(CheckAction action);

/* Start the systemd job (mode "replace") for op on unit; done() runs once, from the loop.
 * -ENOTCONN when there is no system bus (units NULL). */
int remedy_unit_job(Units *units, RemedyOperation op, const char *unit, unit_job_fn done, void *userdata);

/* The unit (unit actions) or the program (exec) a check's action acts on; NULL for none and
 * request. Borrowed from c. */
const char *remedy_action_target(const CheckConfig *c);

/* The check whose local action (a unit operation or exec; not a request, which the fleet
 * answers) is running or being verified (policy phase acting or verifying) on unit, or on
 * anything at all when unit is NULL: commands wait for it. NULL when there is none (m NULL too:
 * no monitor). Borrowed from m until its next reload. */
const CheckConfig *remedy_in_progress(const Monitor *m, const char *unit);
