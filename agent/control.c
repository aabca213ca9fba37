/* control.c: a Unix stream socket served from the event loop. Only root (or heald's own user)
 * may talk to it: the directory is 0700 and every peer's credentials are checked. A client
 * gets one short reply and the connection is closed; nothing is read or written blocking. */
#define _GNU_SOURCE /* accept4, struct ucred */
#include "control.h"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include "log.h"

typedef struct Connection Connection;

struct Control {
        sd_event_source *listener;
        Connection *connections;
        char *path;
        control_handler_fn handler;
        void *userdata;
};

static int make_address(const char *path, struct sockaddr_un *sa, socklen_t *len) {
        *sa = (struct sockaddr_un) { .sun_family = AF_UNIX };
        size_t n = strlen(path);
        if (n >= sizeof sa->sun_path)
                return -ENAMETOOLONG;
        memcpy(sa->sun_path, path, n + 1);
        *len = (socklen_t) (offsetof(struct sockaddr_un, sun_path) + n + 1);
        return 0;
}

/* One client: its request is read as it arrives; a client that has not sent a full line
 * within a second is dropped. */
struct Connection {
        Control *control;
        Connection *next;
        sd_event_source *io, *timeout;
        char buf[CONTROL_REQUEST_MAX + 1];
        size_t n;
};

static void connection_free(Connection *k) {
        for (Connection **p = &k->control->connections; *p; p = &(*p)->next)
                if (*p == k) {
                        *p = k->next;
                        break;
                }
        sd_event_source_disable_unref(k->io); /* owns and closes the fd */
        sd_event_source_disable_unref(k->timeout);
        free(k);
}

static void reply(Control *c, int fd, const char *request) {
        cJSON *answer = NULL;
        int r = c->handler(request, &answer, c->userdata);
        if (r < 0 || !answer) {
                cJSON_Delete(answer);
                answer = cJSON_CreateObject();
                if (!answer)
                        return;
                cJSON_AddStringToObject(answer, "error",
                                        r == -ENOENT ? "no such check" : r == -EINVAL ? "unknown request" : strerror(-r));
        }
        _cleanup_free_ char *text = cJSON_PrintUnformatted(answer);
        cJSON_Delete(answer);
        if (!text)
                return;
        size_t len = strlen(text), off = 0;
        while (off < len) {
                ssize_t k = send(fd, text + off, len - off, MSG_NOSIGNAL | MSG_DONTWAIT);
                if (k <= 0)
                        return; /* a client that does not read loses its answer */
                off += (size_t) k;
        }
}

static int on_readable(sd_event_source *s _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        Connection *k = userdata;
        ssize_t got = read(fd, k->buf + k->n, CONTROL_REQUEST_MAX - k->n);
        if (got < 0 && (errno == EAGAIN || errno == EINTR))
                return 0;
        if (got > 0)
                k->n += (size_t) got;
        k->buf[k->n] = 0;
        if (got > 0 && k->n < CONTROL_REQUEST_MAX && !memchr(k->buf, '\n', k->n))
                return 0;
        k->buf[strcspn(k->buf, "\r\n")] = 0;
        if (got >= 0)
                reply(k->control, fd, k->buf);
        connection_free(k);
        return 0;
}

static int on_timeout(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        connection_free(userdata);
        return 0;
}

static int on_connection(sd_event_source *s, int fd, uint32_t revents _unused_, void *userdata) {
        _cleanup_close_ int cfd = accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (cfd < 0)
                return 0;
        struct ucred cred;
        socklen_t l = sizeof cred;
        if (getsockopt(cfd, SOL_SOCKET, SO_PEERCRED, &cred, &l) < 0 || (cred.uid != 0 && cred.uid != geteuid()))
                return 0;
        Connection *k = calloc(1, sizeof *k);
        if (!k)
                return 0;
        k->control = userdata;
        k->next = k->control->connections;
        k->control->connections = k;
        sd_event *e = sd_event_source_get_event(s);
        if (sd_event_add_io(e, &k->io, cfd, EPOLLIN, on_readable, k) < 0 ||
            sd_event_add_time_relative(e, &k->timeout, CLOCK_MONOTONIC, USEC_PER_SEC, 0, on_timeout, k) < 0) {
                connection_free(k);
                return 0;
        }
        (void) sd_event_source_set_io_fd_own(k->io, true);
        TAKE_FD(cfd);
        return 0;
}

int control_new(sd_event *event, const char *path, control_handler_fn handler, void *userdata, Control **ret) {
        struct sockaddr_un sa;
        socklen_t len;
        int r = make_address(path, &sa, &len);
        if (r < 0)
                return r;

        _cleanup_free_ char *dir = strdup(path);
        if (!dir)
                return -ENOMEM;
        char *slash = strrchr(dir, '/');
        if (slash && slash != dir) {
                *slash = 0;
                if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                        return -errno;
        }

        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (fd < 0)
                return -errno;
        (void) unlink(path);
        mode_t old = umask(0077);
        r = bind(fd, (struct sockaddr *) &sa, len);
        umask(old);
        if (r < 0 || listen(fd, 16) < 0)
                return -errno;

        Control *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->handler = handler;
        c->userdata = userdata;
        c->path = strdup(path);
        r = c->path ? sd_event_add_io(event, &c->listener, fd, EPOLLIN, on_connection, c) : -ENOMEM;
        if (r < 0) {
                control_free(c);
                return r;
        }
        (void) sd_event_source_set_io_fd_own(c->listener, true);
        TAKE_FD(fd);
        *ret = c;
        return 0;
}

Control *control_free(Control *c) {
        if (!c)
                return NULL;
        while (c->connections)
                connection_free(c->connections);
        sd_event_source_disable_unref(c->listener);
        if (c->path)
                (void) unlink(c->path);
        free(c->path);
        free(c);
        return NULL;
}

int control_request(const char *path, const char *request, char **ret) {
        struct sockaddr_un sa;
        socklen_t len;
        int r = make_address(path, &sa, &len);
        if (r < 0)
                return r;
        _cleanup_close_ int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        struct timeval tv = { .tv_sec = 5 };
        (void) setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        (void) setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (connect(fd, (struct sockaddr *) &sa, len) < 0)
                return -errno;
        char line[CONTROL_REQUEST_MAX + 2];
        if (bsprintf(line, "%s\n", request) < 0)
                return -E2BIG;
        size_t n = strlen(line);
        if (send(fd, line, n, MSG_NOSIGNAL) != (ssize_t) n)
                return -errno;
        return read_fd_full(fd, 16 * 1024 * 1024, ret, NULL);
}
