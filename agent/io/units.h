/* io/units.h: systemd units over D-Bus: their state as PropertiesChanged signals arrive (never
 * polled), and start/stop/restart jobs followed until JobRemoved reports their result. */
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include "util.h"

typedef struct Units Units;

typedef struct UnitState {
        char load_state[32];   /* "loaded", "not-found", "masked", "error", ... */
        char active_state[32]; /* "active", "failed", "inactive", "activating", ... */
        char sub_state[32];    /* "running", "auto-restart", "dead", ... */
        char result[32];       /* services: "success", "signal", "exit-code", ...; "" otherwise */
        uint32_t n_restarts;   /* services: automatic restarts by Restart= */
        uint32_t main_pid;
        /* services: how the main process last ended: waitid()'s si_code (CLD_EXITED,
         * CLD_KILLED, CLD_DUMPED; 0 while it never ended) and its exit status or signal */
        int32_t exec_main_code;
        int32_t exec_main_status;
} UnitState;

/* A unit's state changed (or was first read). Borrowed during the call. */
typedef void (*unit_changed_fn)(const char *unit, const UnitState *state, void *userdata);
/* A job ended. result: systemd's JobRemoved result ("done", "failed", "timeout", "canceled",
 * "dependency", "skipped"), or NULL with error < 0 when the job could not even start
 * (error names why: -EACCES not allowed, -ENOENT no such unit, ...). */
typedef void (*unit_job_fn)(const char *unit, const char *result, int error, const char *error_message,
                            void *userdata);

/* bus: NULL to connect to the system bus. */
int units_new(sd_event *event, sd_bus *bus, Units **ret);
Units *units_free(Units *u);
DEFINE_TRIVIAL_CLEANUP_FUNC(Units *, units_free);

/* Watch a unit: changed() runs once with its current state, then on every change. */
int units_watch(Units *u, const char *unit, unit_changed_fn changed, void *userdata);
void units_unwatch(Units *u, const char *unit, void *userdata);

/* method: "RestartUnit", "StartUnit" or "StopUnit" (mode "replace"). done() runs once. */
int units_job(Units *u, const char *method, const char *unit, unit_job_fn done, void *userdata);
/* Forget callbacks for this userdata (its owner is going away). */
void units_cancel_jobs(Units *u, void *userdata);
/* Ask systemd to reboot the machine (StartUnit reboot.target, replace-irreversibly). */
int units_reboot(Units *u, unit_job_fn done, void *userdata);
