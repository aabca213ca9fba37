/* tcp.c: the tcp check: a non-blocking connect() within the timeout. A numeric address (or
 * "localhost", taken as 127.0.0.1) is used as it is; a name is resolved off the loop
 * (io/resolve.c) at every run, so a changed address is followed; the timeout covers both. */
#include "checks/check_private.h"

#include <ctype.h>
#include <netdb.h>
#include <sys/socket.h>
#include <time.h>

#include "io/resolve.h"

typedef struct TcpProbe {
        CheckProbe probe;
        const CheckConfig *config; /* borrowed: the Config outlives its probes */
        int fd;
        sd_event *event;
        sd_event_source *io_source, *timer_source, *defer_source;
        Resolve *resolve; /* while the name is being resolved */
        usec_t started;
        int outcome;    /* for the deferred report: 0 connected, else a negative errno */
        const char *unresolved; /* the resolver's reason (static text) when the name did not resolve */
} TcpProbe;

static TcpProbe *tcp_probe_free(TcpProbe *p) {
        if (!p)
                return NULL;
        sd_event_source_disable_unref(p->io_source);
        sd_event_source_disable_unref(p->timer_source);
        sd_event_source_disable_unref(p->defer_source);
        resolve_cancel(p->resolve);
        if (p->fd >= 0)
                (void) close(p->fd);
        return mfree(p);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(TcpProbe *, tcp_probe_free);

static void tcp_probe_cancel(CheckProbe *probe) {
        tcp_probe_free((TcpProbe *) probe);
}

static void tcp_probe_finish(TcpProbe *p, int error) {
        const CheckConfig *c = p->config;
        CheckResult result;
        char timeout[32];

        check_result_init(&result);
        check_format_duration(c->timeout, timeout);
        check_threshold(&result, "connect within %s", timeout);
        if (p->unresolved) {
                check_observed(&result, "name not resolved");
                check_message(&result, "tcp %s:%u: cannot resolve the name: %s", c->host, c->port, p->unresolved);
        } else if (error == -ETIMEDOUT) {
                check_observed(&result, "timeout after %s", timeout);
                check_message(&result, "tcp %s:%u: no connection within %s", c->host, c->port, timeout);
        } else if (error < 0) {
                check_observed(&result, "%s", strerror(-error));
                result.observed[0] = (char) tolower((unsigned char) result.observed[0]); /* "connection refused" */
                check_message(&result, "tcp %s:%u: connect: %s", c->host, c->port, strerror(-error));
        } else {
                usec_t took = now_usec(CLOCK_MONOTONIC) - p->started;
                result.healthy = true;
                check_observed(&result, "connected in %llu ms", (unsigned long long) (took / USEC_PER_MSEC));
                check_message(&result, "tcp %s:%u: connected", c->host, c->port);
        }
        p->probe.done(&result, p->probe.userdata);
        check_result_done(&result);
        tcp_probe_free(p);
}

static int tcp_on_writable(sd_event_source *s _unused_, int fd, uint32_t revents _unused_, void *userdata) {
        int error = 0;
        socklen_t len = sizeof error;

        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) < 0)
                error = errno;
        tcp_probe_finish(userdata, -error);
        return 0;
}

static int tcp_on_timeout(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        tcp_probe_finish(userdata, -ETIMEDOUT);
        return 0;
}

static int tcp_on_deferred(sd_event_source *s _unused_, void *userdata) {
        TcpProbe *p = userdata;
        tcp_probe_finish(p, p->outcome);
        return 0;
}

/* Numeric IPv4/IPv6 (brackets allowed around IPv6) or "localhost"; AI_NUMERICHOST keeps
 * getaddrinfo() from touching DNS. */
static int tcp_resolve_numeric(const char *host, unsigned port, struct sockaddr_storage *ret, socklen_t *ret_len) {
        char name[INET6_ADDRSTRLEN + 2], service[8];
        struct addrinfo hints = { .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICHOST | AI_NUMERICSERV };
        struct addrinfo *ai = NULL;
        size_t n = strlen(host);

        if (strcmp(host, "localhost") == 0)
                host = "127.0.0.1";
        else if (n > 2 && host[0] == '[' && host[n - 1] == ']') {
                if (n - 2 >= sizeof name)
                        return -EINVAL;
                memcpy(name, host + 1, n - 2);
                name[n - 2] = 0;
                host = name;
        }
        bsprintf(service, "%u", port);
        if (getaddrinfo(host, service, &hints, &ai) != 0 || !ai)
                return -EINVAL;
        memcpy(ret, ai->ai_addr, ai->ai_addrlen);
        *ret_len = ai->ai_addrlen;
        freeaddrinfo(ai);
        return 0;
}

/* Returns 1 while connecting (watched), 0 when the outcome is already in p->outcome, or a
 * negative errno when the probe could not be set up. */
static int tcp_probe_connect(TcpProbe *p, const struct sockaddr_storage *addr, socklen_t addr_len) {
        int r;

        p->fd = socket(addr->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (p->fd < 0)
                return -errno;
        if (connect(p->fd, (const struct sockaddr *) addr, addr_len) == 0)
                return 0;
        if (errno != EINPROGRESS) {
                p->outcome = -errno; /* loopback refuses at once */
                return 0;
        }
        r = sd_event_add_io(p->event, &p->io_source, p->fd, EPOLLOUT, tcp_on_writable, p);
        if (r < 0)
                return r;
        (void) sd_event_source_set_description(p->io_source, "check-tcp-connect");
        return 1;
}

static void tcp_on_resolved(int error, const char *reason, const struct sockaddr *addr, socklen_t addr_len,
                            void *userdata) {
        TcpProbe *p = userdata;
        struct sockaddr_storage storage = {};

        p->resolve = NULL; /* freed before this call */
        if (error == -ENXIO)
                p->unresolved = reason;
        if (error < 0) {
                tcp_probe_finish(p, error);
                return;
        }
        memcpy(&storage, addr, addr_len);
        int r = tcp_probe_connect(p, &storage, addr_len);
        if (r <= 0)
                tcp_probe_finish(p, r < 0 ? r : p->outcome);
}

int check_tcp_start(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                    CheckProbe **ret) {
        _cleanup_(tcp_probe_freep) TcpProbe *p = NULL;
        struct sockaddr_storage addr;
        socklen_t addr_len = 0;
        int r = 0;

        if (!c || c->type != CHECK_TCP || isempty(c->host) || c->port == 0 || c->port > 65535 || !ctx || !ctx->event ||
            !done)
                return -EINVAL;
        sd_event *event = ctx->event;

        p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (TcpProbe) {
                .probe = { .cancel = tcp_probe_cancel, .done = done, .userdata = userdata },
                .config = c,
                .event = event,
                .fd = -1,
                .started = now_usec(CLOCK_MONOTONIC),
        };
        if (c->timeout > 0 && c->timeout != USEC_INFINITY) {
                r = sd_event_add_time_relative(event, &p->timer_source, CLOCK_MONOTONIC, c->timeout, USEC_PER_MSEC,
                                               tcp_on_timeout, p);
                if (r < 0)
                        return r;
        }

        if (tcp_resolve_numeric(c->host, c->port, &addr, &addr_len) < 0) {
                r = resolve_start(event, c->host, c->port, tcp_on_resolved, p, &p->resolve);
                if (r == 0)
                        r = 1; /* watched: the answer comes through the loop */
        } else
                r = tcp_probe_connect(p, &addr, addr_len);
        if (r < 0)
                return r;
        if (r == 0) {
                /* The outcome is known already; report it from the loop as the contract says. */
                r = sd_event_add_defer(event, &p->defer_source, tcp_on_deferred, p);
                if (r < 0)
                        return r;
        }
        if (ret)
                *ret = &p->probe;
        TAKE_PTR(p);
        return 0;
}

static const char *tcp_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX]) {
        snprintf(buf, CHECK_TARGET_MAX, "%s:%u", c->host, c->port);
        return buf;
}

const CheckTypeOps check_tcp_ops = { .source = CHECK_SOURCE_POLL, .target = tcp_target, .start = check_tcp_start };
