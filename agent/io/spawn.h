/* io/spawn.h: run a program from the event loop without a shell, bounded in time and output. */
#pragma once

#include <systemd/sd-event.h>

#include "util.h"

typedef struct Spawn Spawn;

typedef struct SpawnResult {
        bool exited;           /* true: exit_status is the exit code; false: killed by signal */
        int exit_status;       /* 0..255 when exited */
        int signal;            /* the signal that ended the process when !exited */
        bool timed_out;        /* heald killed the process group at the deadline */
        const char *output;    /* stdout and stderr interleaved, raw bytes (may hold NULs),
                                * NUL-terminated after output_len; borrowed during done() */
        size_t output_len;     /* <= max_output */
        uint64_t output_total; /* bytes the process group wrote, including those discarded */
} SpawnResult;

/* error < 0: the program could not be started (-ENOENT, -EACCES, ...) and r is NULL;
 * otherwise r describes how it ended. */
typedef void (*spawn_done_fn)(int error, const SpawnResult *r, void *userdata);

/* Start argv[0] (an absolute path; no PATH search, never a shell) with argv, in a new
 * session and process group, with stdin /dev/null, stdout and stderr into one pipe, no
 * other fds, an empty signal mask, default signal dispositions and only
 * PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin and LANG=C.UTF-8 in its
 * environment. timeout: 0 or USEC_INFINITY for none; at the deadline the whole process group
 * gets SIGKILL. When the program exits, what is left of its process group is killed too, so
 * nothing it started outlives it (a descendant that calls setsid() itself escapes: that needs
 * a cgroup). Output beyond max_output bytes is read, counted and discarded.
 *
 * done() runs exactly once, from the event loop (never from inside spawn_start()), unless
 * spawn_cancel() comes first; a program that cannot be started is reported there too. The
 * Spawn frees itself after done() returns; *ret (optional) is borrowed until then.
 *
 * SIGCHLD must be blocked for sd-event to watch children: spawn_start() blocks it in the
 * calling thread (the loop's thread) if it is not yet. Returns 0, -EINVAL for an argv that
 * is NULL, empty or not absolute, -ENOMEM or another negative errno from setting up. */
int spawn_start(sd_event *e, char *const argv[], usec_t timeout, size_t max_output,
               spawn_done_fn done, void *userdata, Spawn **ret);

/* Kill the process group (SIGKILL) and forget the run: done() will not be called. The
 * child is still reaped by the loop later. Accepts NULL; not valid from inside done(). */
void spawn_cancel(Spawn *x);
