/* daemon.h: the process around the manager: the event loop, the modules in dependency order,
 * the state directory, signals, sd_notify and the watchdog; for the daemon and for the
 * one-shot send-event. What the daemon decides is manager.h's. */
#pragma once

#include "config.h"

typedef struct Daemon Daemon;

/* The loop and AWS access (HTTP, IMDS, credentials, the signed-call client), which both modes
 * need. Takes ownership of config. */
int daemon_new(Config *config, Daemon **ret);
Daemon *daemon_free(Daemon *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(Daemon *, daemon_free);

/* The daemon: open the outbox, announce "Agent Started", run until SIGTERM/SIGINT, then
 * announce "Agent Stopping" and give in-flight sends a short deadline. Returns 0 or <0. */
int daemon_run(Daemon *d);

/* heald send-event: publish one event directly (not through the outbox) and wait for
 * EventBridge's answer. Returns 0 when accepted; <0 with the cause logged otherwise (-EINVAL:
 * the event itself is invalid). */
int daemon_send_event(Daemon *d, const char *detail_type, const char *detail_json);
