/* heal/verify.c: verifications, for commands: the chosen checks run until they pass, or the
 * deadline. They follow the monitor's check runtimes (heal/runtime.h) across reloads. */
#include "heal/verify.h"

#include "heal/runtime.h"

struct Verify {
        Monitor *monitor;
        Verify *next;
        CheckRuntime **checks; /* the selected checks... */
        unsigned *passes;      /* ...their consecutive healthy results since the start */
        bool *seen;            /* ...whether they reported since the start */
        size_t n;
        bool once;
        bool units_started;     /* verifying units a command started: they must be active */
        usec_t deadline;        /* CLOCK_MONOTONIC */
        sd_event_source *timer; /* checks completion every 100 ms until the deadline */
        verify_done_fn done;
        void *userdata;
};

bool verify_includes(const Monitor *m, const CheckRuntime *c) {
        for (const Verify *v = m->verifies; v; v = v->next)
                for (size_t i = 0; i < v->n; i++)
                        if (v->checks[i] == c)
                                return true;
        return false;
}

/* A reload must not cut a command's verification short: each verification follows its
 * checks to their new runtimes (keeping the passes seen so far); a check the new
 * configuration dropped leaves the verification. */
void verify_carry_over(Monitor *m, CheckRuntime *rt, size_t n) {
        for (Verify *v = m->verifies; v; v = v->next) {
                size_t kept = 0;
                for (size_t i = 0; i < v->n; i++)
                        for (size_t k = 0; k < n; k++) {
                                if (!runtime_same_check(v->checks[i]->config, rt[k].config))
                                        continue;
                                v->checks[kept] = &rt[k];
                                v->passes[kept] = v->passes[i];
                                v->seen[kept] = v->seen[i];
                                kept++;
                                break;
                        }
                v->n = kept;
        }
}



static bool check_touches_unit(const CheckConfig *c, char *const *units) {
        for (char *const *u = units; *u; u++)
                if ((c->unit && strcmp(c->unit, *u) == 0) || (c->action_unit && strcmp(c->action_unit, *u) == 0))
                        return true;
        return false;
}

static bool name_listed(const char *name, char *const *names) {
        for (char *const *n = names; *n; n++)
                if (strcmp(*n, name) == 0)
                        return true;
        return false;
}

static void verify_free(Verify *v) {
        for (Verify **p = &v->monitor->verifies; *p; p = &(*p)->next)
                if (*p == v) {
                        *p = v->next;
                        break;
                }
        sd_event_source_disable_unref(v->timer);
        free(v->checks);
        free(v->passes);
        free(v->seen);
        free(v);
}

void verify_cancel(Verify *v) {
        if (v)
                verify_free(v);
}

static cJSON *verify_results(Verify *v) {
        cJSON *arr = cJSON_CreateArray();
        for (size_t i = 0; arr && i < v->n; i++) {
                CheckRuntime *c = v->checks[i];
                cJSON *d = runtime_detail_new(c);
                if (!d || !cJSON_AddItemToArray(arr, d)) {
                        cJSON_Delete(d);
                        cJSON_Delete(arr);
                        return NULL;
                }
                if (!cJSON_AddBoolToObject(d, "healthy", v->seen[i] && c->have_last && c->last.healthy) ||
                    !cJSON_AddStringToObject(d, "message", v->seen[i] && c->have_last ? c->last.message : "no result in time")) {
                        cJSON_Delete(arr); /* d with it */
                        return NULL;
                }
        }
        return arr;
}

static void verify_finish(Verify *v, bool healthy) {
        verify_done_fn done = v->done;
        void *userdata = v->userdata;
        cJSON *results = verify_results(v);
        verify_free(v);
        done(healthy, results, userdata);
}

static bool verify_complete(const Verify *v, bool *ret_healthy) {
        bool healthy = true;
        for (size_t i = 0; i < v->n; i++) {
                if (v->once) {
                        if (!v->seen[i])
                                return false;
                        healthy = healthy && v->checks[i]->last.healthy;
                } else if (v->passes[i] < v->checks[i]->config->recover_after)
                        return false;
        }
        *ret_healthy = healthy;
        return true;
}

void verify_observe(Monitor *m, CheckRuntime *c, bool healthy) {
        /* A command that just started a unit is verified only by the unit running: "stopped
         * as asked" is healthy for a check, not for a start. */
        bool running = runtime_running(c);
        Verify *v = m->verifies;
        while (v) {
                Verify *next = v->next;
                for (size_t i = 0; i < v->n; i++)
                        if (v->checks[i] == c) {
                                bool ok = healthy && (!v->units_started || running);
                                v->seen[i] = true;
                                v->passes[i] = ok ? v->passes[i] + 1 : 0;
                        }
                v = next;
        }
}

/* Results are recorded before verify_observe() sees them complete, so the check runs from
 * a zero-delay timer: complete verifications are finished from the loop, never from inside
 * runtime_result(). */
static int on_verify_timer(sd_event_source *s _unused_, uint64_t usec, void *userdata) {
        Verify *v = userdata;
        bool healthy;
        if (verify_complete(v, &healthy))
                verify_finish(v, healthy);
        else if (usec >= v->deadline)
                verify_finish(v, false);
        else {
                (void) sd_event_source_set_time(v->timer, usec + 100 * USEC_PER_MSEC < v->deadline ? usec + 100 * USEC_PER_MSEC : v->deadline);
                (void) sd_event_source_set_enabled(v->timer, SD_EVENT_ONESHOT);
        }
        return 0;
}

int verify_start(Monitor *m, char *const *names, char *const *units, usec_t timeout, bool once,
                   verify_done_fn done, void *userdata, Verify **ret) {
        for (char *const *n = names; n && *n; n++) {
                bool found = false;
                for (size_t i = 0; i < m->n_checks && !found; i++)
                        found = strcmp(m->checks[i].config->name, *n) == 0;
                if (!found)
                        return -ENOENT;
        }
        Verify *v = calloc(1, sizeof *v);
        if (!v)
                return -ENOMEM;
        v->monitor = m;
        v->once = once;
        v->units_started = units != NULL;
        v->done = done;
        v->userdata = userdata;
        v->next = m->verifies;
        m->verifies = v;
        size_t cap = m->n_checks ? m->n_checks : 1;
        v->checks = calloc(cap, sizeof *v->checks);
        v->passes = calloc(cap, sizeof *v->passes);
        v->seen = calloc(cap, sizeof *v->seen);
        if (!v->checks || !v->passes || !v->seen) {
                verify_free(v);
                return -ENOMEM;
        }
        for (size_t i = 0; i < m->n_checks; i++) {
                const CheckConfig *cc = m->checks[i].config;
                if ((names && !name_listed(cc->name, names)) || (units && !check_touches_unit(cc, units)))
                        continue;
                v->checks[v->n++] = &m->checks[i];
        }
        usec_t now = now_usec(CLOCK_MONOTONIC);
        v->deadline = now + timeout;
        int r = sd_event_add_time(m->ctx.event, &v->timer, CLOCK_MONOTONIC, now, 10 * USEC_PER_MSEC, on_verify_timer, v);
        if (r < 0) {
                verify_free(v);
                return r;
        }
        /* Fresh results now: probes at once, units and journals from what they hold. */
        for (size_t i = 0; i < v->n; i++)
                runtime_verify_begin(v->checks[i]);
        if (ret)
                *ret = v;
        return 0;
}
