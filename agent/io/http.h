/* io/http.h: non-blocking HTTP on one curl multi handle driven by the sd-event loop. */
#pragma once

#include <systemd/sd-event.h>

#include "util.h"

typedef struct Http Http;
typedef struct HttpRequest HttpRequest;

/* Called once per request when it ends. error: 0, or a negative errno for a transport
 * failure (-ETIMEDOUT, -ECONNREFUSED, -EPROTO, ...); status: the HTTP status (0 if none).
 * The request and its response are freed when the callback returns. */
typedef void (*http_done_fn)(HttpRequest *req, int error, long status, void *userdata);

/* Every request goes direct unless it asks for the proxy: IMDS is link-local and checks reach
 * this host's services, so neither may follow a proxy variable meant for AWS. */
typedef enum HttpFlags {
        HTTP_AWS_PROXY = 1 << 0, /* AWS calls: HTTPS_PROXY (HTTP_PROXY for http://) unless NO_PROXY
                                  * names the host, either spelling, as the AWS tools */
} HttpFlags;

/* One request header. Its value may be a secret (Authorization, X-Amz-Security-Token, an IMDS
 * token): http.c keeps its only copy and wipes it when the request ends. */
typedef struct HttpHeader {
        const char *name;
        const char *value;
} HttpHeader;

typedef struct HttpRequestSpec {
        const char *method;          /* "GET", "PUT", "POST" */
        const char *url;
        const HttpHeader *headers;   /* copied; borrowed for the http_start() call only */
        size_t n_headers;
        const char *body;            /* copied */
        size_t body_len;
        usec_t timeout;              /* whole request; 0 = none */
        size_t max_response;         /* bytes kept of the body; 0 = 1 MiB */
        HttpFlags flags;
} HttpRequestSpec;

int http_new(sd_event *event, Http **ret);
Http *http_free(Http *h); /* cancels what is in flight without calling callbacks */
DEFINE_TRIVIAL_CLEANUP_FUNC(Http *, http_free);

/* Start a request; the callback runs from the event loop, never from here.
 * ret (optional) is borrowed until the callback returns, for http_cancel(). */
int http_start(Http *h, const HttpRequestSpec *spec, http_done_fn done, void *userdata, HttpRequest **ret);
/* Abandon a request: its callback will not run. */
void http_cancel(HttpRequest *req);
size_t http_in_flight(const Http *h);

/* Valid inside the done callback only. The body is NUL-terminated; truncated says it
 * was longer than max_response. */
const char *http_response_body(const HttpRequest *req, size_t *ret_len);
bool http_response_truncated(const HttpRequest *req);
/* A response header's value (first occurrence, case-insensitive name), or NULL. */
const char *http_response_header(const HttpRequest *req, const char *name);
/* A short description of the transport error, for logs ("Connection refused", ...). */
const char *http_error_message(const HttpRequest *req);
