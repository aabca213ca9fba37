/* manager.h: the root object: owns the event loop and every module, wires them together. */
#pragma once

#include <cjson/cJSON.h>
#include <systemd/sd-event.h>

#include "config.h"

typedef struct Manager Manager;

/* Takes ownership of config. */
int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* The daemon: open the outbox, announce "Agent Started", run until SIGTERM/SIGINT, then
 * announce "Agent Stopping" and give in-flight sends a short deadline. Returns 0 or <0. */
int manager_run_daemon(Manager *m);

/* heald send-event: publish one event directly (not through the outbox) and wait for
 * EventBridge's answer. Returns 0 when accepted; <0 with the cause logged otherwise. */
int manager_run_send_event(Manager *m, const char *detail_type, const char *detail_json);

/* Append an event to the outbox (durable on return) and kick the publisher.
 * Takes ownership of detail. */
int manager_emit(Manager *m, const char *detail_type, cJSON *detail);
