/* events/emit.h: how heal/ and commands/ hand an event to the outbox, through a function the
 * manager gives them (so neither knows the outbox or the publisher). */
#pragma once

#include <cjson/cJSON.h>

#include "util.h"

/* Record an event: encode it, append it to the outbox (durable on return), kick the
 * publisher. Takes ownership of detail. */
typedef int (*emit_fn)(void *userdata, const char *detail_type, cJSON *detail);

/* Make the events an emit_fn wrote ahead durable (one fdatasync) and hand them to the
 * publisher; returns 0 or a negative errno. */
typedef int (*emit_sync_fn)(void *userdata);

/* The one way heal/ and commands/ record an event. detail NULL (memory ran out while it was
 * built) records nothing. A failure is logged here, naming check_name when not NULL, so the
 * callers need not; returns 0 or a negative errno. Takes ownership of detail. */
int emit_event(emit_fn emit, void *userdata, const char *detail_type, cJSON *detail, const char *check_name);

/* detail[key] = realtime as ISO 8601 with milliseconds; false when memory ran out. */
bool emit_add_time(cJSON *detail, const char *key, usec_t realtime);
