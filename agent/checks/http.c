/* http.c: the http check: a GET through the shared curl multi (agent/io/http.h), judged by
 * status and, optionally, a substring of the body. */
#define _GNU_SOURCE /* memmem */
#include "checks/check_private.h"

#define CHECK_HTTP_MAX_BODY (64 * 1024) /* enough to find expect_body near the start */

typedef struct HttpProbe {
        CheckProbe probe;
        const CheckConfig *config; /* borrowed: the Config outlives its probes */
        HttpRequest *request;
} HttpProbe;

static const char *http_error_observed(int error) {
        switch (error) {
        case -ECONNREFUSED:
                return "connection refused";
        case -EHOSTUNREACH:
                return "host not found";
        case -ECONNRESET:
                return "connection failed";
        case -EPERM:
                return "TLS failure";
        case -ENOMEM:
                return "out of memory";
        default:
                return "transport error";
        }
}

int check_http_evaluate(const CheckConfig *c, int error, const char *error_text, long status,
                        const char *body, size_t body_len, bool truncated, CheckResult *ret) {
        char timeout[32];

        if (!c || c->type != CHECK_HTTP || isempty(c->url))
                return -EINVAL;

        check_result_init(ret);
        if (c->expect_body)
                check_threshold(ret, "HTTP %u-%u, body contains \"%s\"", c->expect_status_min, c->expect_status_max,
                                c->expect_body);
        else
                check_threshold(ret, "HTTP %u-%u", c->expect_status_min, c->expect_status_max);

        if (error < 0) {
                check_format_duration(c->timeout, timeout);
                if (error == -ETIMEDOUT)
                        check_observed(ret, "timeout after %s", timeout);
                else
                        check_observed(ret, "%s", http_error_observed(error));
                check_message(ret, "GET %s: %s", c->url_public, error_text ? error_text : strerror(-error));
                return 0;
        }

        bool status_ok = status >= (long) c->expect_status_min && status <= (long) c->expect_status_max;
        bool body_ok = !c->expect_body || (body && memmem(body, body_len, c->expect_body, strlen(c->expect_body)));
        ret->healthy = status_ok && body_ok;
        if (status_ok && !body_ok)
                check_observed(ret, "HTTP %ld, expected text missing", status);
        else
                check_observed(ret, "HTTP %ld", status);
        check_message(ret, "GET %s: HTTP %ld%s%s", c->url_public, status, status_ok ? "" : ", status out of range",
                      body_ok ? "" : truncated ? ", expected text not in the first 64 KiB of the body"
                                               : ", expected text not in the body");
        if (!ret->healthy && body)
                (void) check_result_set_output(ret, body, body_len, truncated);
        return 0;
}

static void http_probe_cancel(CheckProbe *probe) {
        HttpProbe *p = (HttpProbe *) probe;
        http_cancel(p->request);
        free(p);
}

static void http_probe_on_done(HttpRequest *req, int error, long status, void *userdata) {
        HttpProbe *p = userdata;
        CheckResult result;
        size_t len = 0;
        const char *body = http_response_body(req, &len);

        (void) check_http_evaluate(p->config, error, error < 0 ? http_error_message(req) : NULL, status, body, len,
                                   http_response_truncated(req), &result);
        p->probe.done(&result, p->probe.userdata);
        check_result_done(&result);
        free(p);
}

int check_http_start(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                     CheckProbe **ret) {
        if (!c || c->type != CHECK_HTTP || isempty(c->url) || !ctx || !ctx->http || !done)
                return -EINVAL;

        HttpProbe *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (HttpProbe) {
                .probe = { .cancel = http_probe_cancel, .done = done, .userdata = userdata },
                .config = c,
        };
        /* Direct (no HTTP_AWS_PROXY): checks reach the instance's own services and neighbours. */
        HttpRequestSpec spec = {
                .method = "GET",
                .url = c->url,
                .timeout = c->timeout,
                .max_response = CHECK_HTTP_MAX_BODY,
        };
        int r = http_start(ctx->http, &spec, http_probe_on_done, p, &p->request);
        if (r < 0) {
                free(p);
                return r;
        }
        if (ret)
                *ret = &p->probe;
        return 0;
}

/* Events and logs show the URL without its userinfo. */
static const char *http_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX] _unused_) {
        return c->url_public;
}

const CheckTypeOps check_http_ops = { .source = CHECK_SOURCE_POLL, .target = http_target, .start = check_http_start };
