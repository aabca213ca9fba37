/* io/resolve.h: a host name resolved without blocking the loop. getaddrinfo() runs in a
 * short-lived thread of its own and sends its answer over a socket the loop watches: the way
 * systemd's sd-resolve works, which libsystemd does not export. */
#pragma once

#include <sys/socket.h>
#include <systemd/sd-event.h>

#include "util.h"

typedef struct Resolve Resolve;

/* error: 0 and the first address getaddrinfo() gave (borrowed during the call), or a
 * negative errno (-ENXIO: the resolver's own answer, reason says which, such as "Name or
 * service not known"; otherwise a system error and reason NULL). The Resolve is already
 * freed when done runs. */
typedef void (*resolve_done_fn)(int error, const char *reason, const struct sockaddr *addr, socklen_t addr_len,
                                void *userdata);

/* Resolve host for a TCP connection to port (system resolver: /etc/hosts, DNS, as
 * nsswitch.conf says). done runs from the loop, never from here. *ret: for
 * resolve_cancel() until done runs. */
int resolve_start(sd_event *event, const char *host, unsigned port, resolve_done_fn done, void *userdata,
                  Resolve **ret);

/* done will not run. The thread, which cannot be stopped inside getaddrinfo(), finds its
 * answer unread and ends. Accepts NULL. */
void resolve_cancel(Resolve *r);
