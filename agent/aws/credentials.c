/* credentials.c: instance role credentials from IMDSv2. A refresh is due at the earlier of
 * half the lifetime or 5 minutes before Expiration, less up to 10% jitter so a fleet does not
 * refresh in step; failures retry with backoff; expired credentials are never handed out. */
#include "aws/credentials.h"

#include <time.h>

#include "aws/imds_doc.h"
#include "backoff.h"
#include "log.h"

#define ROLE_PATH "/latest/meta-data/iam/security-credentials/"
#define RETRY_BASE (1 * USEC_PER_SEC)
#define RETRY_MAX (60 * USEC_PER_SEC)
#define EXPIRY_MARGIN_MAX (60 * USEC_PER_SEC)

struct Credentials {
        sd_event *event;
        Imds *imds;
        sd_event_source *timer;
        credentials_changed_fn changed;
        void *userdata;

        bool from_env;
        char *role;
        char *access_key_id, *secret_access_key, *session_token; /* secrets wiped when replaced */
        usec_t expiration;   /* CLOCK_REALTIME; USEC_INFINITY for environment keys */
        usec_t margin;       /* not handed out within this much of expiration */
        SigV4Credentials view;
        unsigned failures;
        bool fetching;
};

static void credentials_clear(Credentials *c) {
        c->access_key_id = secret_free(c->access_key_id);
        c->secret_access_key = secret_free(c->secret_access_key);
        c->session_token = secret_free(c->session_token);
        c->expiration = 0;
}

static void schedule(Credentials *c, usec_t delay) {
        usec_t now;
        (void) sd_event_now(c->event, CLOCK_BOOTTIME, &now);
        (void) sd_event_source_set_time(c->timer, now + delay);
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_ONESHOT);
}

static void fetch_failed(Credentials *c, int error, const char *what) {
        c->fetching = false;
        usec_t delay = backoff_delay(c->failures, RETRY_BASE, RETRY_MAX, backoff_random());
        /* The first failure of a streak is news; the rest would flood the journal. */
        log_internal(c->failures == 0 ? LOG_WARNING : LOG_DEBUG, error, "imds-error",
                     "Failed to fetch instance role credentials from IMDS (%s): %m; retrying in %llu ms", what,
                     (unsigned long long) (delay / USEC_PER_MSEC));
        c->failures++;
        schedule(c, delay);
}

static void on_credentials(int error, const char *body, size_t len, void *userdata) {
        Credentials *c = userdata;
        if (error == -ENOENT) { /* role changed under us: ask for the role again */
                c->role = mfree(c->role);
                return fetch_failed(c, error, "role vanished");
        }
        if (error < 0)
                return fetch_failed(c, error, c->role);

        _cleanup_free_ char *why = NULL;
        ImdsCredentials doc = {};
        int r = imds_parse_credentials(body, len, &doc, &why);
        if (r < 0) {
                log_error("IMDS credentials document for role %s is invalid: %s", c->role, why ? why : "?");
                return fetch_failed(c, r, "invalid document");
        }

        usec_t now = now_usec(CLOCK_REALTIME);
        if (doc.expiration <= now) {
                imds_credentials_done(&doc);
                return fetch_failed(c, -ESTALE, "already expired");
        }
        credentials_clear(c);
        c->access_key_id = TAKE_PTR(doc.access_key_id);
        c->secret_access_key = TAKE_PTR(doc.secret_access_key);
        c->session_token = TAKE_PTR(doc.token);
        c->expiration = doc.expiration;
        imds_credentials_done(&doc);

        usec_t lifetime = c->expiration - now;
        c->margin = lifetime / 4 < EXPIRY_MARGIN_MAX ? lifetime / 4 : EXPIRY_MARGIN_MAX;
        usec_t due = lifetime / 2;
        if (lifetime > 5 * USEC_PER_MINUTE && lifetime - 5 * USEC_PER_MINUTE < due)
                due = lifetime - 5 * USEC_PER_MINUTE;
        due -= backoff_random() % (due / 10 + 1);

        c->fetching = false;
        c->failures = 0;
        char when[21];
        format_iso8601(c->expiration, when);
        log_event(LOG_INFO, "credentials-refreshed",
                  "Credentials for role %s refreshed; they expire at %s, next refresh in %llu s", c->role, when,
                  (unsigned long long) (due / USEC_PER_SEC));
        schedule(c, due);
        if (c->changed)
                c->changed(c->userdata);
}

static void on_role(int error, const char *body, size_t len, void *userdata) {
        Credentials *c = userdata;
        if (error == -ENOENT)
                return fetch_failed(c, error, "no instance profile attached");
        if (error < 0)
                return fetch_failed(c, error, "role list");

        _cleanup_free_ char *why = NULL;
        int r = imds_parse_role_list(body, len, &c->role, &why);
        if (r < 0) {
                log_error("IMDS role list is invalid: %s", why ? why : "?");
                return fetch_failed(c, r, "invalid role list");
        }
        char path[512];
        if (bsprintf(path, ROLE_PATH "%s", c->role) < 0)
                return fetch_failed(c, -ENAMETOOLONG, "role name");
        r = imds_fetch(c->imds, path, on_credentials, c);
        if (r < 0)
                fetch_failed(c, r, "request");
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Credentials *c = userdata;
        if (c->fetching)
                return 0;
        c->fetching = true;
        int r;
        if (c->role) {
                char path[512];
                bsprintf(path, ROLE_PATH "%s", c->role);
                r = imds_fetch(c->imds, path, on_credentials, c);
        } else
                r = imds_fetch(c->imds, ROLE_PATH, on_role, c);
        if (r < 0)
                fetch_failed(c, r, "request");
        return 0;
}

int credentials_new(sd_event *event, Imds *imds, Credentials **ret) {
        _cleanup_(credentials_freep) Credentials *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->event = sd_event_ref(event);
        c->imds = imds;

        const char *akid = getenv("AWS_ACCESS_KEY_ID"), *secret = getenv("AWS_SECRET_ACCESS_KEY");
        const char *token = getenv("AWS_SESSION_TOKEN");
        if (!isempty(akid) && !isempty(secret)) {
                c->from_env = true;
                c->access_key_id = strdup(akid);
                c->secret_access_key = strdup(secret);
                c->session_token = isempty(token) ? NULL : strdup(token);
                if (!c->access_key_id || !c->secret_access_key || (!isempty(token) && !c->session_token))
                        return -ENOMEM;
                c->expiration = USEC_INFINITY;
        }
        int r = sd_event_add_time(event, &c->timer, CLOCK_BOOTTIME, USEC_INFINITY, USEC_PER_SEC / 10, on_timer, c);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(c->timer, "credentials-refresh");
        *ret = TAKE_PTR(c);
        return 0;
}

Credentials *credentials_free(Credentials *c) {
        if (!c)
                return NULL;
        if (c->imds)
                imds_cancel(c->imds, c);
        credentials_clear(c);
        free(c->role);
        sd_event_source_disable_unref(c->timer);
        sd_event_unref(c->event);
        free(c);
        return NULL;
}

void credentials_set_callback(Credentials *c, credentials_changed_fn changed, void *userdata) {
        c->changed = changed;
        c->userdata = userdata;
}

int credentials_start(Credentials *c) {
        if (!c->from_env)
                schedule(c, 0);
        return 0;
}

const SigV4Credentials *credentials_get(Credentials *c) {
        if (!c->access_key_id)
                return NULL;
        if (c->expiration != USEC_INFINITY && now_usec(CLOCK_REALTIME) + c->margin >= c->expiration) {
                /* Expired before a refresh succeeded: ask again now rather than at the backoff. */
                if (!c->fetching)
                        schedule(c, 0);
                return NULL;
        }
        c->view = (SigV4Credentials) {
                .access_key_id = c->access_key_id,
                .secret_access_key = c->secret_access_key,
                .session_token = c->session_token,
        };
        return &c->view;
}

bool credentials_from_environment(const Credentials *c) {
        return c->from_env;
}

const char *credentials_source(const Credentials *c) {
        return c->from_env ? "environment" : c->role ? c->role : "instance role";
}

void credentials_invalidate(Credentials *c) {
        if (c->from_env)
                return;
        credentials_clear(c);
        if (!c->fetching)
                schedule(c, 0);
}

usec_t credentials_expiration(const Credentials *c) {
        return c->expiration;
}
