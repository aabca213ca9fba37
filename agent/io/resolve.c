/* io/resolve.c: getaddrinfo() off the loop, one detached thread per query (see resolve.h). */
#include "io/resolve.h"

#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#define RESOLVE_HOST_MAX 253 /* a DNS name */

/* What the thread sends: fixed size, so that nothing is shared with the loop once it runs. */
typedef struct ResolveAnswer {
        int gai_error; /* getaddrinfo()'s answer */
        int sys_error; /* errno for EAI_SYSTEM */
        socklen_t addr_len;
        struct sockaddr_storage addr;
} ResolveAnswer;

/* Owned by the thread from pthread_create() on. */
typedef struct ResolveQuery {
        int fd;
        char host[RESOLVE_HOST_MAX + 1];
        char service[8];
} ResolveQuery;

struct Resolve {
        int fd;
        sd_event_source *io;
        resolve_done_fn done;
        void *userdata;
};

static void *resolve_thread(void *arg) {
        ResolveQuery *q = arg;
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        ResolveAnswer a = {};

        a.gai_error = getaddrinfo(q->host, q->service, &hints, &ai);
        if (a.gai_error == EAI_SYSTEM)
                a.sys_error = errno;
        else if (a.gai_error == 0) {
                if (ai && ai->ai_addrlen <= sizeof a.addr) {
                        memcpy(&a.addr, ai->ai_addr, ai->ai_addrlen);
                        a.addr_len = ai->ai_addrlen;
                } else
                        a.gai_error = EAI_FAIL;
                freeaddrinfo(ai);
        }
        /* The loop may have given up on the answer (EPIPE): nothing else to do either way. */
        (void) send(q->fd, &a, sizeof a, MSG_NOSIGNAL);
        (void) close(q->fd);
        free(q);
        return NULL;
}

static void resolve_free(Resolve *r) {
        sd_event_source_disable_unref(r->io);
        if (r->fd >= 0)
                (void) close(r->fd);
        free(r);
}

void resolve_cancel(Resolve *r) {
        if (r)
                resolve_free(r);
}

static int resolve_on_answer(sd_event_source *s _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        Resolve *r = userdata;
        resolve_done_fn done = r->done;
        void *done_userdata = r->userdata;
        ResolveAnswer a;

        ssize_t n = recv(fd, &a, sizeof a, MSG_DONTWAIT);
        int error = n == (ssize_t) sizeof a ? 0 : n < 0 ? -errno : -EIO;
        resolve_free(r);
        if (error < 0)
                done(error, NULL, NULL, 0, done_userdata);
        else if (a.gai_error == EAI_SYSTEM)
                done(a.sys_error > 0 ? -a.sys_error : -EIO, NULL, NULL, 0, done_userdata);
        else if (a.gai_error == EAI_MEMORY)
                done(-ENOMEM, NULL, NULL, 0, done_userdata);
        else if (a.gai_error != 0)
                done(-ENXIO, gai_strerror(a.gai_error), NULL, 0, done_userdata);
        else
                done(0, NULL, (const struct sockaddr *) &a.addr, a.addr_len, done_userdata);
        return 0;
}

/* The thread starts with every signal blocked: they belong to the loop's signal sources. */
static int resolve_spawn(ResolveQuery *q) {
        pthread_attr_t attr;
        sigset_t all, saved;
        pthread_t thread;

        int r = -pthread_attr_init(&attr);
        if (r < 0)
                return r;
        r = -pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        if (r == 0) {
                sigfillset(&all);
                r = -pthread_sigmask(SIG_SETMASK, &all, &saved);
        }
        if (r == 0) {
                r = -pthread_create(&thread, &attr, resolve_thread, q);
                (void) pthread_sigmask(SIG_SETMASK, &saved, NULL);
        }
        (void) pthread_attr_destroy(&attr);
        return r;
}

int resolve_start(sd_event *event, const char *host, unsigned port, resolve_done_fn done, void *userdata,
                  Resolve **ret) {
        int fds[2];

        if (!event || !host || strlen(host) > RESOLVE_HOST_MAX || port == 0 || port > 65535 || !done || !ret)
                return -EINVAL;
        _cleanup_free_ ResolveQuery *q = calloc(1, sizeof *q);
        Resolve *r = calloc(1, sizeof *r);
        if (!q || !r) {
                free(r);
                return -ENOMEM;
        }
        *r = (Resolve) { .fd = -1, .done = done, .userdata = userdata };
        if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds) < 0) {
                int error = -errno;
                resolve_free(r);
                return error;
        }
        r->fd = fds[0];
        q->fd = fds[1];
        (void) bsprintf(q->host, "%s", host); /* fits: checked above */
        (void) bsprintf(q->service, "%u", port);

        int error = sd_event_add_io(event, &r->io, r->fd, EPOLLIN, resolve_on_answer, r);
        if (error >= 0) {
                (void) sd_event_source_set_description(r->io, "resolve");
                error = resolve_spawn(q);
        }
        if (error < 0) {
                (void) close(q->fd);
                resolve_free(r);
                return error;
        }
        TAKE_PTR(q);
        *ret = r;
        return 0;
}
