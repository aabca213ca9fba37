/* manager.h: the daemon's decisions, on a loop and modules it is given: the instance's identity
 * from IMDS and the context every event carries, where an event goes, heartbeats and their
 * number, what heald tells systemd (STATUS=, reloads, stopping) and `heald status`, reloads,
 * the metrics file, and the one-shot send-event. It makes no process set-up (signals,
 * sd_notify, the state directory, the modules): daemon.c does that and hands them over. */
#pragma once

#include <cjson/cJSON.h>
#include <systemd/sd-event.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/imds.h"
#include "commands/channel.h"
#include "config.h"
#include "events/outbox.h"
#include "events/publisher.h"
#include "heal/monitor.h"

typedef struct Manager Manager;

/* Tells systemd a state ("READY=1", "STATUS=…"; sd_notify(3)'s text). */
typedef void (*manager_notify_fn)(void *userdata, const char *state);

/* Borrowed; each must outlive the manager. The daemon gives all of them; send-event has no
 * outbox and no publisher (the event goes straight to EventBridge). */
typedef struct ManagerContext {
        sd_event *event;
        Imds *imds;
        Credentials *credentials;
        AwsClient *aws;
        Outbox *outbox;
        Publisher *publisher;
        const char *boot_id;
        manager_notify_fn notify;
        void *notify_userdata;
} ManagerContext;

/* Takes ownership of config (a reload replaces it). In the daemon, reads the heartbeat number
 * from state_dir (0 when there is none) and says first if the outbox's disk refuses writes.
 * Becomes the publisher's idle callback and the credentials' change callback. */
int manager_new(const ManagerContext *ctx, Config *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* The configuration running now: borrowed until the next reload. */
const Config *manager_config(const Manager *m);

/* The modules that emit through the manager, made after it. Borrowed. The daemon has a monitor;
 * channel may be NULL (no command channel). */
void manager_set_modules(Manager *m, Monitor *monitor, Channel *channel);

/* Append an event to the outbox (durable on return) and kick the publisher. The instance's
 * context (once IMDS told it) goes into the detail unless it names an instance itself.
 * Takes ownership of detail. */
int manager_emit(Manager *m, const char *detail_type, cJSON *detail);
/* manager_emit() as an emit_fn (userdata: the Manager), for monitor and channel. */
int manager_emit_fn(void *userdata, const char *detail_type, cJSON *detail);
/* The monitor's write-ahead pair (see MonitorContext): append without the sync, and the one
 * sync that makes what was written ahead durable and hands it to the publisher. */
int manager_emit_ahead_fn(void *userdata, const char *detail_type, cJSON *detail);
int manager_sync_events_fn(void *userdata);

/* Agent Started: version, config digest, boot id, pid. */
int manager_emit_started(Manager *m);

/* The daemon's timers (heartbeat, metrics), then AWS: the identity from IMDS and the
 * credentials. With environment credentials and a configured region heald publishes at
 * once; with IMDS disabled they must be there. Returns <0 (logged) when AWS cannot start. */
int manager_start(Manager *m);

/* STATUS= from the checks, the outbox and whether the target is known. */
void manager_status_update(Manager *m);

/* SIGTERM or SIGINT: Agent Stopping, no more commands, the publisher's last round within a
 * short deadline, then the loop exits; a second one exits at once. */
int manager_stop(Manager *m, int signo);

/* SIGHUP: a valid new configuration from the same file replaces the running one at once; an
 * invalid one is logged and the old one stays. Always returns 0: a reload never stops heald. */
int manager_reload(Manager *m);

/* The control socket's requests: "status", "status CHECK", "reset CHECK". */
int manager_control_request(const char *request, cJSON **ret, void *userdata);

/* heald send-event: publish one event directly (not through the outbox) once the target and
 * credentials are known, within a deadline. Starts it; the loop exits when it is decided, and
 * manager_send_event_result() says how (0 when EventBridge accepted it). */
int manager_send_event_start(Manager *m, const char *detail_type, const char *detail_json);
int manager_send_event_result(const Manager *m);
