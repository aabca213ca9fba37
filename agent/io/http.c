/* io/http.c: libcurl's multi_socket interface wired into sd-event (one io source per
 * socket, one timer), in the shape of curl's multi-event example. */
#define _GNU_SOURCE /* asprintf */
#include "io/http.h"

#include <curl/curl.h>
#include <strings.h>

#define DEFAULT_MAX_RESPONSE (1024 * 1024)
#define MAX_HEADERS_KEPT 16

struct Http {
        sd_event *event;
        CURLM *multi;
        sd_event_source *timer;
        HttpRequest *requests; /* doubly linked, for cancel-all on free */
        size_t n_requests;
        /* Every io source curl asked for: curl_multi_cleanup() does not always say
         * CURL_POLL_REMOVE for sockets of cached connections, so http_free() ends them. */
        sd_event_source **io;
        size_t n_io, cap_io;
};

struct HttpRequest {
        Http *http;
        CURL *easy;
        HttpRequest *prev, *next;
        http_done_fn done;
        void *userdata;
        char *body_copy;
        size_t body_len;
        struct curl_slist *header_list;
        char *response;                  /* NUL-terminated; response_size bytes allocated */
        size_t response_len, response_size, max_response;
        bool truncated;
        char *headers[MAX_HEADERS_KEPT]; /* "name: value" lines, CRLF stripped */
        size_t n_headers;
        char errbuf[CURL_ERROR_SIZE];
};

/* Wipe every line of a header list (Authorization, X-Amz-Security-Token, IMDS tokens), then free it. */
static void header_list_free(struct curl_slist *list) {
        for (struct curl_slist *l = list; l; l = l->next)
                secure_zero(l->data, strlen(l->data));
        curl_slist_free_all(list);
}

static void request_unlink_and_free(HttpRequest *r) {
        if (!r)
                return;
        Http *h = r->http;
        if (r->prev)
                r->prev->next = r->next;
        else
                h->requests = r->next;
        if (r->next)
                r->next->prev = r->prev;
        h->n_requests--;
        (void) curl_multi_remove_handle(h->multi, r->easy);
        curl_easy_cleanup(r->easy);
        /* Bodies carry secrets too: task tokens in SendTask requests, the IMDS credential
         * document and token, SQS messages with task tokens in responses. */
        secure_zero(r->body_copy, r->body_len);
        free(r->body_copy);
        header_list_free(r->header_list);
        secure_zero(r->response, r->response_size);
        free(r->response);
        for (size_t i = 0; i < r->n_headers; i++)
                free(r->headers[i]);
        free(r);
}

static int curl_error_to_errno(CURLcode c) {
        switch (c) {
        case CURLE_OK:
                return 0;
        case CURLE_OPERATION_TIMEDOUT:
                return -ETIMEDOUT;
        case CURLE_COULDNT_CONNECT:
                return -ECONNREFUSED;
        case CURLE_COULDNT_RESOLVE_HOST:
        case CURLE_COULDNT_RESOLVE_PROXY:
                return -EHOSTUNREACH;
        case CURLE_OUT_OF_MEMORY:
                return -ENOMEM;
        case CURLE_SEND_ERROR:
        case CURLE_RECV_ERROR:
        case CURLE_GOT_NOTHING:
                return -ECONNRESET;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
                return -EPERM;
        default:
                return -EPROTO;
        }
}

static void drain_completed(Http *h) {
        CURLMsg *msg;
        int left;
        while ((msg = curl_multi_info_read(h->multi, &left))) {
                if (msg->msg != CURLMSG_DONE)
                        continue;
                HttpRequest *r = NULL;
                (void) curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **) &r);
                long status = 0;
                (void) curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
                int error = curl_error_to_errno(msg->data.result);
                if (error < 0 && !r->errbuf[0])
                        bsprintf(r->errbuf, "%s", curl_easy_strerror(msg->data.result));
                r->done(r, error, status, r->userdata);
                request_unlink_and_free(r);
        }
}

static int on_io(sd_event_source *s _unused_, int fd, uint32_t revents, void *userdata) {
        Http *h = userdata;
        int action = 0, running;
        if (revents & (EPOLLIN | EPOLLHUP | EPOLLERR))
                action |= CURL_CSELECT_IN;
        if (revents & EPOLLOUT)
                action |= CURL_CSELECT_OUT;
        if (revents & EPOLLERR)
                action |= CURL_CSELECT_ERR;
        (void) curl_multi_socket_action(h->multi, fd, action, &running);
        drain_completed(h);
        return 0;
}

static int on_timer(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Http *h = userdata;
        int running;
        (void) curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &running);
        drain_completed(h);
        return 0;
}

static void io_forget(Http *h, sd_event_source *io) {
        for (size_t i = 0; i < h->n_io; i++)
                if (h->io[i] == io) {
                        h->io[i] = h->io[--h->n_io];
                        return;
                }
}

/* curl tells which sockets to watch; the io source lives in curl's per-socket pointer. */
static int socket_cb(CURL *easy _unused_, curl_socket_t fd, int what, void *userp, void *socketp) {
        Http *h = userp;
        sd_event_source *io = socketp;

        if (what == CURL_POLL_REMOVE) {
                if (io) {
                        io_forget(h, io);
                        sd_event_source_disable_unref(io);
                        (void) curl_multi_assign(h->multi, fd, NULL);
                }
                return 0;
        }

        uint32_t events = (what & CURL_POLL_IN ? EPOLLIN : 0) | (what & CURL_POLL_OUT ? EPOLLOUT : 0);
        if (io) {
                if (sd_event_source_set_io_events(io, events) < 0)
                        return -1;
                return sd_event_source_set_enabled(io, SD_EVENT_ON) < 0 ? -1 : 0;
        }
        if (h->n_io == h->cap_io) {
                size_t cap = h->cap_io ? h->cap_io * 2 : 8;
                sd_event_source **n = reallocarray(h->io, cap, sizeof(sd_event_source *));
                if (!n)
                        return -1;
                h->io = n;
                h->cap_io = cap;
        }
        if (sd_event_add_io(h->event, &io, fd, events, on_io, h) < 0)
                return -1;
        (void) sd_event_source_set_description(io, "curl-io");
        if (curl_multi_assign(h->multi, fd, io) != CURLM_OK) {
                sd_event_source_unref(io);
                return -1;
        }
        h->io[h->n_io++] = io;
        return 0;
}

/* curl asks for one timer; -1 disarms it. Round up so a 0.4 ms timeout does not spin. */
static int timer_cb(CURLM *multi _unused_, long timeout_ms, void *userp) {
        Http *h = userp;
        if (timeout_ms < 0)
                return sd_event_source_set_enabled(h->timer, SD_EVENT_OFF) < 0 ? -1 : 0;
        usec_t now;
        if (sd_event_now(h->event, CLOCK_MONOTONIC, &now) < 0)
                return -1;
        if (sd_event_source_set_time(h->timer, now + (usec_t) timeout_ms * USEC_PER_MSEC) < 0)
                return -1;
        return sd_event_source_set_enabled(h->timer, SD_EVENT_ONESHOT) < 0 ? -1 : 0;
}

int http_new(sd_event *event, Http **ret) {
        static bool global_done;
        if (!global_done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return -EIO;
                global_done = true;
        }

        Http *h = calloc(1, sizeof *h);
        if (!h)
                return -ENOMEM;
        h->event = sd_event_ref(event);
        int r = sd_event_add_time(event, &h->timer, CLOCK_MONOTONIC, USEC_INFINITY, USEC_PER_MSEC, on_timer, h);
        if (r < 0) {
                http_free(h);
                return r;
        }
        (void) sd_event_source_set_enabled(h->timer, SD_EVENT_OFF);
        (void) sd_event_source_set_description(h->timer, "curl-timer");

        h->multi = curl_multi_init();
        if (!h->multi) {
                http_free(h);
                return -ENOMEM;
        }
        if (curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, socket_cb) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, timer_cb) != CURLM_OK ||
            curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h) != CURLM_OK) {
                http_free(h);
                return -EIO;
        }
        *ret = h;
        return 0;
}

Http *http_free(Http *h) {
        if (!h)
                return NULL;
        while (h->requests)
                request_unlink_and_free(h->requests);
        if (h->multi)
                curl_multi_cleanup(h->multi);
        for (size_t i = 0; i < h->n_io; i++)
                sd_event_source_disable_unref(h->io[i]);
        free(h->io);
        sd_event_source_disable_unref(h->timer);
        sd_event_unref(h->event);
        free(h);
        return NULL;
}

/* curl's list of "Name: value" lines. The line is built on the heap and wiped, since a value
 * may be a secret; curl keeps its own copy in the list. */
static int header_list_build(const HttpHeader *headers, size_t n_headers, struct curl_slist **ret) {
        /* Expect: 100-continue would cost a round trip per request with a body for nothing. */
        struct curl_slist *list = curl_slist_append(NULL, "Expect:");
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n_headers; i++) {
                char *line;
                if (asprintf(&line, "%s: %s", headers[i].name, headers[i].value) < 0) {
                        header_list_free(list);
                        return -ENOMEM;
                }
                struct curl_slist *n = curl_slist_append(list, line);
                secret_free(line);
                if (!n) {
                        header_list_free(list);
                        return -ENOMEM;
                }
                list = n;
        }
        *ret = list;
        return 0;
}

/* Room for need bytes. Not realloc(): that would free the old buffer unwiped. Doubling keeps
 * the copies few. */
static int response_reserve(HttpRequest *r, size_t need) {
        if (need <= r->response_size)
                return 0;
        size_t size = r->response_size ? r->response_size : 4096;
        while (size < need)
                size *= 2;
        if (size > r->max_response + 1)
                size = r->max_response + 1;
        char *p = malloc(size);
        if (!p)
                return -ENOMEM;
        if (r->response) {
                memcpy(p, r->response, r->response_len + 1);
                secure_zero(r->response, r->response_size);
                free(r->response);
        }
        r->response = p;
        r->response_size = size;
        return 0;
}

static size_t on_body(char *data, size_t size, size_t n, void *userdata) {
        HttpRequest *r = userdata;
        size_t len = size * n;
        size_t room = r->max_response - r->response_len;
        size_t take = len < room ? len : room;
        if (take < len)
                r->truncated = true;
        if (take > 0) {
                if (response_reserve(r, r->response_len + take + 1) < 0)
                        return 0; /* makes curl fail the transfer with CURLE_WRITE_ERROR */
                memcpy(r->response + r->response_len, data, take);
                r->response_len += take;
                r->response[r->response_len] = 0;
        }
        return len;
}

static size_t on_header(char *data, size_t size, size_t n, void *userdata) {
        HttpRequest *r = userdata;
        size_t len = size * n;
        /* A new status line (after a redirect or 100-continue) starts a new header block. */
        if (len >= 5 && memcmp(data, "HTTP/", 5) == 0) {
                for (size_t i = 0; i < r->n_headers; i++)
                        free(r->headers[i]);
                r->n_headers = 0;
                return len;
        }
        while (len > 0 && (data[len - 1] == '\n' || data[len - 1] == '\r'))
                len--;
        if (len == 0 || r->n_headers >= MAX_HEADERS_KEPT || !memchr(data, ':', len))
                return size * n;
        char *line = strndup(data, len);
        if (!line)
                return 0;
        r->headers[r->n_headers++] = line;
        return size * n;
}

/* The first of two spellings of a variable that is set and not empty, or NULL. */
static const char *getenv_first(const char *name, const char *other) {
        const char *value = getenv(name);
        if (isempty(value))
                value = getenv(other);
        return isempty(value) ? NULL : value;
}

int http_start(Http *h, const HttpRequestSpec *spec, http_done_fn done, void *userdata, HttpRequest **ret) {
        HttpRequest *r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;
        r->http = h;
        r->done = done;
        r->userdata = userdata;
        r->max_response = spec->max_response ? spec->max_response : DEFAULT_MAX_RESPONSE;
        r->easy = curl_easy_init();
        if (!r->easy) {
                header_list_free(r->header_list);
                free(r);
                return -ENOMEM;
        }
        /* Linked before any failure below so request_unlink_and_free() can undo everything. */
        r->next = h->requests;
        if (h->requests)
                h->requests->prev = r;
        h->requests = r;
        h->n_requests++;

        int error = header_list_build(spec->headers, spec->n_headers, &r->header_list);
        if (error < 0) {
                request_unlink_and_free(r);
                return error;
        }
        if (spec->body) {
                r->body_copy = malloc(spec->body_len + 1);
                if (!r->body_copy) {
                        request_unlink_and_free(r);
                        return -ENOMEM;
                }
                memcpy(r->body_copy, spec->body, spec->body_len);
                r->body_len = spec->body_len;
                r->body_copy[spec->body_len] = 0;
        }

        CURL *e = r->easy;
        CURLcode c = CURLE_OK;
#define SET(opt, val) \
        if (c == CURLE_OK) c = curl_easy_setopt(e, opt, val)
        SET(CURLOPT_URL, spec->url);
        SET(CURLOPT_PRIVATE, r);
        SET(CURLOPT_ERRORBUFFER, r->errbuf);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_HTTPHEADER, r->header_list);
        SET(CURLOPT_WRITEFUNCTION, on_body);
        SET(CURLOPT_WRITEDATA, r);
        SET(CURLOPT_HEADERFUNCTION, on_header);
        SET(CURLOPT_HEADERDATA, r);
        SET(CURLOPT_SSL_VERIFYPEER, 1L); /* TLS is always verified */
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 0L);
        SET(CURLOPT_TCP_KEEPALIVE, 1L);
        SET(CURLOPT_CUSTOMREQUEST, spec->method);
        if (spec->timeout > 0)
                SET(CURLOPT_TIMEOUT_MS, (long) ((spec->timeout + USEC_PER_MSEC - 1) / USEC_PER_MSEC));
        /* Both options always set: left unset, libcurl reads the proxy variables by itself. */
        if (spec->flags & HTTP_AWS_PROXY) {
                bool https = strncmp(spec->url, "https://", 8) == 0;
                SET(CURLOPT_PROXY, getenv_first(https ? "HTTPS_PROXY" : "HTTP_PROXY", https ? "https_proxy" : "http_proxy")
                                           ?: "");
                SET(CURLOPT_NOPROXY, getenv_first("NO_PROXY", "no_proxy") ?: "");
        } else {
                SET(CURLOPT_PROXY, "");
                SET(CURLOPT_NOPROXY, "");
        }
        if (r->body_copy) {
                SET(CURLOPT_POSTFIELDS, r->body_copy);
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) spec->body_len);
        } else if (strcmp(spec->method, "GET") != 0) {
                SET(CURLOPT_POSTFIELDS, "");
                SET(CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) 0);
        }
#undef SET
        if (c != CURLE_OK) {
                request_unlink_and_free(r);
                return c == CURLE_OUT_OF_MEMORY ? -ENOMEM : -EINVAL;
        }
        if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
                request_unlink_and_free(r);
                return -EIO;
        }
        if (ret)
                *ret = r;
        return 0;
}

void http_cancel(HttpRequest *req) {
        request_unlink_and_free(req);
}

size_t http_in_flight(const Http *h) {
        return h->n_requests;
}

const char *http_response_body(const HttpRequest *req, size_t *ret_len) {
        if (ret_len)
                *ret_len = req->response_len;
        return req->response ? req->response : "";
}

bool http_response_truncated(const HttpRequest *req) {
        return req->truncated;
}

const char *http_response_header(const HttpRequest *req, const char *name) {
        size_t n = strlen(name);
        for (size_t i = 0; i < req->n_headers; i++) {
                const char *line = req->headers[i];
                if (strncasecmp(line, name, n) == 0 && line[n] == ':') {
                        const char *v = line + n + 1;
                        while (*v == ' ' || *v == '\t')
                                v++;
                        return v;
                }
        }
        return NULL;
}

const char *http_error_message(const HttpRequest *req) {
        return req->errbuf[0] ? req->errbuf : "no error";
}
