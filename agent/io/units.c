/* io/units.c: sd-bus client of systemd's manager, attached to the sd-event loop; every call is
 * asynchronous. A watch is: match PropertiesChanged on the unit's object path, LoadUnit (so a
 * missing or masked unit reports its LoadState), then GetAll once; from then on only signals.
 * systemd sends unit signals only to subscribed clients, hence Subscribe() at start. */
#include "io/units.h"

#include "log.h"

#define SD_SYSTEMD "org.freedesktop.systemd1"
#define SD_PATH "/org/freedesktop/systemd1"
#define SD_MANAGER "org.freedesktop.systemd1.Manager"
#define SD_UNIT "org.freedesktop.systemd1.Unit"
#define SD_SERVICE "org.freedesktop.systemd1.Service"

typedef struct Watch Watch;
struct Watch {
        Units *units;
        Watch *next;
        char *unit, *path;
        sd_bus_slot *match, *call;
        UnitState state;
        bool have_state;
        unit_changed_fn changed;
        void *userdata;
};

typedef struct Job Job;
struct Job {
        Units *units;
        Job *next;
        char *unit, *path; /* path: NULL until the method returned */
        sd_bus_slot *call;
        unit_job_fn done;
        void *userdata;
};

struct Units {
        sd_event *event;
        sd_bus *bus;
        sd_bus_slot *job_removed;
        Watch *watches;
        Job *jobs;
};

static void watch_free(Watch *w) {
        for (Watch **p = &w->units->watches; *p; p = &(*p)->next)
                if (*p == w) {
                        *p = w->next;
                        break;
                }
        sd_bus_slot_unref(w->match);
        sd_bus_slot_unref(w->call);
        free(w->unit);
        free(w->path);
        free(w);
}

static void job_free(Job *j) {
        for (Job **p = &j->units->jobs; *p; p = &(*p)->next)
                if (*p == j) {
                        *p = j->next;
                        break;
                }
        sd_bus_slot_unref(j->call);
        free(j->unit);
        free(j->path);
        free(j);
}

static void job_finish(Job *j, const char *result, int error, const char *message) {
        unit_job_fn done = j->done;
        void *userdata = j->userdata;
        _cleanup_free_ char *unit = TAKE_PTR(j->unit);
        job_free(j);
        done(unit, result, error, message, userdata);
}

static void copy_str(char *dst, size_t size, const char *src) {
        snprintf(dst, size, "%s", src ? src : "");
}

/* Read a{sv} of changed properties into the state; unknown properties are skipped. */
static int read_properties(sd_bus_message *m, UnitState *st) {
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name, *s;
                uint32_t u;
                r = sd_bus_message_read(m, "s", &name);
                if (r < 0)
                        return r;
                struct {
                        const char *name;
                        char *dst;
                } strs[] = {
                        { "LoadState", st->load_state },
                        { "ActiveState", st->active_state },
                        { "SubState", st->sub_state },
                        { "Result", st->result },
                };
                bool done = false;
                for (size_t i = 0; i < ELEMENTSOF(strs) && !done; i++)
                        if (strcmp(name, strs[i].name) == 0) {
                                r = sd_bus_message_read(m, "v", "s", &s);
                                if (r < 0)
                                        return r;
                                copy_str(strs[i].dst, sizeof st->load_state, s);
                                done = true;
                        }
                if (!done && (strcmp(name, "NRestarts") == 0 || strcmp(name, "MainPID") == 0)) {
                        r = sd_bus_message_read(m, "v", "u", &u);
                        if (r < 0)
                                return r;
                        *(name[0] == 'N' ? &st->n_restarts : &st->main_pid) = u;
                        done = true;
                }
                if (!done && (strcmp(name, "ExecMainCode") == 0 || strcmp(name, "ExecMainStatus") == 0)) {
                        int32_t i;
                        r = sd_bus_message_read(m, "v", "i", &i);
                        if (r < 0)
                                return r;
                        *(strcmp(name, "ExecMainCode") == 0 ? &st->exec_main_code : &st->exec_main_status) = i;
                        done = true;
                }
                if (!done) {
                        r = sd_bus_message_skip(m, "v");
                        if (r < 0)
                                return r;
                }
                r = sd_bus_message_exit_container(m);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

/* Deliver the state; systemd reports every interface's properties for GetAll(""). */
static int on_get_all(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error _unused_) {
        Watch *w = userdata;
        w->call = sd_bus_slot_unref(w->call);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                log_warning("Cannot read the state of unit %s: %s", w->unit, e->message ? e->message : e->name);
                return 0;
        }
        int r = read_properties(reply, &w->state);
        if (r < 0) {
                log_warning_errno(r, "Cannot parse the state of unit %s: %m", w->unit);
                return 0;
        }
        w->have_state = true;
        w->changed(w->unit, &w->state, w->userdata);
        return 0;
}

static bool property_is_read(const char *name) {
        static const char *const names[] = { "LoadState", "ActiveState", "SubState", "Result", "NRestarts", "MainPID" };
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (strcmp(name, names[i]) == 0)
                        return true;
        return false;
}

static int watch_get_all(Watch *w) {
        w->call = sd_bus_slot_unref(w->call);
        return sd_bus_call_method_async(w->units->bus, &w->call, SD_SYSTEMD, w->path, "org.freedesktop.DBus.Properties",
                                        "GetAll", on_get_all, w, "s", "");
}

static int on_properties_changed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error _unused_) {
        Watch *w = userdata;
        const char *interface;
        int r = sd_bus_message_read(m, "s", &interface);
        if (r >= 0)
                r = read_properties(m, &w->state);
        if (r < 0) {
                log_warning_errno(r, "Cannot parse a state change of unit %s: %m", w->unit);
                return 0;
        }
        /* systemd names some properties without a value in every signal (Conditions, Exec*):
         * only one heald reads sends it back for a fresh GetAll. What the signal carried is
         * delivered now either way, so a JobRemoved right behind it finds the state current. */
        bool refetch = false;
        r = sd_bus_message_enter_container(m, 'a', "s");
        const char *name;
        while (r > 0 && sd_bus_message_read(m, "s", &name) > 0)
                if (property_is_read(name))
                        refetch = true;
        if (w->have_state)
                w->changed(w->unit, &w->state, w->userdata);
        if (refetch)
                (void) watch_get_all(w);
        return 0;
}

/* LoadUnit makes systemd tell a missing or masked unit's LoadState instead of "unknown object". */
static int on_load_unit(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error _unused_) {
        Watch *w = userdata;
        w->call = sd_bus_slot_unref(w->call);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                log_warning("Cannot load unit %s: %s", w->unit, e->message ? e->message : e->name);
                bsprintf(w->state.load_state, "error");
                w->have_state = true;
                w->changed(w->unit, &w->state, w->userdata);
                return 0;
        }
        int r = watch_get_all(w);
        if (r < 0)
                log_warning_errno(r, "Cannot ask for the state of unit %s: %m", w->unit);
        return 0;
}

int units_watch(Units *u, const char *unit, unit_changed_fn changed, void *userdata) {
        Watch *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->units = u;
        w->changed = changed;
        w->userdata = userdata;
        w->next = u->watches;
        u->watches = w;
        w->unit = strdup(unit);
        if (!w->unit) {
                watch_free(w);
                return -ENOMEM;
        }
        int r = sd_bus_path_encode(SD_PATH "/unit", unit, &w->path);
        if (r >= 0)
                r = sd_bus_match_signal_async(u->bus, &w->match, SD_SYSTEMD, w->path, "org.freedesktop.DBus.Properties",
                                              "PropertiesChanged", on_properties_changed, NULL, w);
        if (r >= 0)
                r = sd_bus_call_method_async(u->bus, &w->call, SD_SYSTEMD, SD_PATH, SD_MANAGER, "LoadUnit",
                                             on_load_unit, w, "s", unit);
        if (r < 0) {
                watch_free(w);
                return r;
        }
        return 0;
}

void units_unwatch(Units *u, const char *unit, void *userdata) {
        Watch *w = u->watches;
        while (w) {
                Watch *next = w->next;
                if (w->userdata == userdata && strcmp(w->unit, unit) == 0)
                        watch_free(w);
                w = next;
        }
}

static int on_job_removed(sd_bus_message *m, void *userdata, sd_bus_error *ret_error _unused_) {
        Units *u = userdata;
        const char *path, *unit, *result;
        uint32_t id;
        if (sd_bus_message_read(m, "uoss", &id, &path, &unit, &result) < 0)
                return 0;
        for (Job *j = u->jobs; j; j = j->next)
                if (j->path && strcmp(j->path, path) == 0) {
                        job_finish(j, result, 0, NULL);
                        break;
                }
        return 0;
}

static int on_job_queued(sd_bus_message *reply, void *userdata, sd_bus_error *ret_error _unused_) {
        Job *j = userdata;
        const char *path;
        j->call = sd_bus_slot_unref(j->call);
        const sd_bus_error *e = sd_bus_message_get_error(reply);
        if (e) {
                int error = sd_bus_error_get_errno(e);
                job_finish(j, NULL, error > 0 ? -error : -EIO, e->message ? e->message : e->name);
                return 0;
        }
        int r = sd_bus_message_read(reply, "o", &path);
        if (r >= 0) {
                j->path = strdup(path);
                if (!j->path)
                        r = -ENOMEM;
        }
        if (r < 0)
                job_finish(j, NULL, r, "bad reply from systemd");
        return 0;
}

static int job_start(Units *u, const char *method, const char *unit, const char *mode, unit_job_fn done,
                     void *userdata) {
        Job *j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->units = u;
        j->done = done;
        j->userdata = userdata;
        j->next = u->jobs;
        u->jobs = j;
        j->unit = strdup(unit);
        int r = j->unit ? sd_bus_call_method_async(u->bus, &j->call, SD_SYSTEMD, SD_PATH, SD_MANAGER, method,
                                                   on_job_queued, j, "ss", unit, mode)
                        : -ENOMEM;
        if (r < 0)
                job_free(j);
        return r;
}

int units_job(Units *u, const char *method, const char *unit, unit_job_fn done, void *userdata) {
        return job_start(u, method, unit, "replace", done, userdata);
}

int units_reboot(Units *u, unit_job_fn done, void *userdata) {
        return job_start(u, "StartUnit", "reboot.target", "replace-irreversibly", done, userdata);
}

void units_cancel_jobs(Units *u, void *userdata) {
        Job *j = u->jobs;
        while (j) {
                Job *next = j->next;
                if (j->userdata == userdata)
                        job_free(j);
                j = next;
        }
}

int units_new(sd_event *event, sd_bus *bus, Units **ret) {
        _cleanup_(units_freep) Units *u = calloc(1, sizeof *u);
        if (!u)
                return -ENOMEM;
        u->event = sd_event_ref(event);
        int r;
        if (bus)
                u->bus = sd_bus_ref(bus);
        else {
                r = sd_bus_open_system(&u->bus);
                if (r < 0)
                        return r;
        }
        r = sd_bus_attach_event(u->bus, event, SD_EVENT_PRIORITY_NORMAL);
        if (r < 0)
                return r;
        r = sd_bus_match_signal_async(u->bus, &u->job_removed, SD_SYSTEMD, SD_PATH, SD_MANAGER, "JobRemoved",
                                      on_job_removed, NULL, u);
        if (r < 0)
                return r;
        /* Without a subscription systemd does not send unit and job signals. */
        r = sd_bus_call_method_async(u->bus, NULL, SD_SYSTEMD, SD_PATH, SD_MANAGER, "Subscribe", NULL, NULL, "");
        if (r < 0)
                return r;
        *ret = TAKE_PTR(u);
        return 0;
}

Units *units_free(Units *u) {
        if (!u)
                return NULL;
        while (u->watches)
                watch_free(u->watches);
        while (u->jobs)
                job_free(u->jobs);
        sd_bus_slot_unref(u->job_removed);
        if (u->bus) {
                (void) sd_bus_detach_event(u->bus);
                sd_bus_flush_close_unref(u->bus);
        }
        sd_event_unref(u->event);
        free(u);
        return NULL;
}
