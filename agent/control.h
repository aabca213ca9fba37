/* control.h: the local control socket (/run/heald/heald.sock, root only, no TCP): one request
 * line in, one JSON document out. Requests: "status", "reset CHECK". */
#pragma once

#include <cjson/cJSON.h>
#include <systemd/sd-event.h>

#include "util.h"

#define CONTROL_SOCKET_DEFAULT "/run/heald/heald.sock"
#define CONTROL_REQUEST_MAX 256

typedef struct Control Control;

/* Answer one request: set *ret to the reply (the callee allocates; the caller frees). */
typedef int (*control_handler_fn)(const char *request, cJSON **ret, void *userdata);

/* Listen on path (its directory is created 0700; a stale socket is replaced). */
int control_new(sd_event *event, const char *path, control_handler_fn handler, void *userdata, Control **ret);
Control *control_free(Control *c); /* removes the socket file */
DEFINE_TRIVIAL_CLEANUP_FUNC(Control *, control_free);

/* Client side, for the heald status/reset commands (blocking, with a timeout). Caller frees
 * *ret: the reply text. */
int control_request(const char *path, const char *request, char **ret);
