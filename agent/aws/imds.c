/* imds.c: IMDSv2 client. Every GET carries a session token from PUT /latest/api/token;
 * a request without one (IMDSv1) is never made. Fetches wait in a list while the token
 * is fetched, so one token request serves them all. */
#include "aws/imds.h"

#include <time.h>

typedef struct ImdsFetch ImdsFetch;
struct ImdsFetch {
        Imds *imds;
        ImdsFetch *next;
        char *path;
        imds_fetch_fn done;
        void *userdata;
        HttpRequest *req;   /* in flight, or NULL while waiting for a token */
        bool token_retried; /* a 401 earns one new token, not a loop */
        bool resume;        /* waiting for the token that just arrived */
};

struct Imds {
        Http *http;
        char *endpoint;
        usec_t timeout;
        char *token;         /* secret: wiped when replaced */
        usec_t token_expiry; /* CLOCK_MONOTONIC */
        HttpRequest *token_req;
        ImdsFetch *fetches;
};

static void token_forget(Imds *imds) {
        imds->token = secret_free(imds->token);
        imds->token_expiry = 0;
}

static bool token_usable(const Imds *imds) {
        return imds->token && now_usec(CLOCK_MONOTONIC) + IMDS_TOKEN_RENEW_MARGIN < imds->token_expiry;
}

static void fetch_free(ImdsFetch *f) {
        Imds *imds = f->imds;
        for (ImdsFetch **p = &imds->fetches; *p; p = &(*p)->next)
                if (*p == f) {
                        *p = f->next;
                        break;
                }
        if (f->req)
                http_cancel(f->req);
        free(f->path);
        free(f);
}

/* Free, then report: done() may start new fetches. */
static void fetch_finish(ImdsFetch *f, int error, const char *body, size_t len) {
        imds_fetch_fn done = f->done;
        void *userdata = f->userdata;
        f->req = NULL;
        fetch_free(f);
        done(error, body, len, userdata);
}

static int token_request(Imds *imds);

static void on_fetch_done(HttpRequest *req, int error, long status, void *userdata) {
        ImdsFetch *f = userdata;
        size_t len;
        const char *body = http_response_body(req, &len);

        f->req = NULL;
        if (error < 0)
                return fetch_finish(f, error, NULL, 0);
        if (status == 401 && !f->token_retried) {
                /* The token expired early or IMDS restarted: one fresh token, then give up. */
                f->token_retried = true;
                token_forget(f->imds);
                int r = token_request(f->imds);
                if (r < 0)
                        fetch_finish(f, r, NULL, 0);
                return;
        }
        if (status == 200)
                return fetch_finish(f, 0, body, len);
        fetch_finish(f, status == 404 ? -ENOENT : status == 401 ? -EACCES : -EBADMSG, NULL, 0);
}

static int fetch_send(ImdsFetch *f) {
        Imds *imds = f->imds;
        char url[1024];
        if (bsprintf(url, "%s%s", imds->endpoint, f->path) < 0)
                return -ENAMETOOLONG;
        HttpHeader token = { "X-aws-ec2-metadata-token", imds->token };
        HttpRequestSpec spec = {
                .method = "GET",
                .url = url,
                .headers = &token,
                .n_headers = 1,
                .timeout = imds->timeout,
                .max_response = 64 * 1024,
        };
        return http_start(imds->http, &spec, on_fetch_done, f, &f->req);
}

/* Send every fetch that waits for a token, or fail them all with error. Fetches that the
 * callbacks start meanwhile are not marked, so they are left to their own token request. */
static void fetches_resume(Imds *imds, int error) {
        for (ImdsFetch *f = imds->fetches; f; f = f->next)
                f->resume = !f->req;
        for (;;) {
                ImdsFetch *f = imds->fetches;
                while (f && !f->resume)
                        f = f->next;
                if (!f)
                        return;
                f->resume = false;
                int r = error < 0 ? error : fetch_send(f);
                if (r < 0)
                        fetch_finish(f, r, NULL, 0);
        }
}

static void on_token_done(HttpRequest *req, int error, long status, void *userdata) {
        Imds *imds = userdata;
        size_t len;
        const char *body = http_response_body(req, &len);

        imds->token_req = NULL;
        if (error >= 0 && status != 200)
                error = status == 403 ? -EACCES : -EBADMSG;
        if (error >= 0 && (len == 0 || len > 1024 || strcspn(body, "\r\n") != len))
                error = -EBADMSG;
        if (error >= 0) {
                token_forget(imds);
                imds->token = strndup(body, len);
                if (!imds->token)
                        error = -ENOMEM;
                else
                        imds->token_expiry = now_usec(CLOCK_MONOTONIC) + IMDS_TOKEN_TTL_SEC * USEC_PER_SEC;
        }
        fetches_resume(imds, error);
}

static int token_request(Imds *imds) {
        if (imds->token_req)
                return 0;
        char url[1024];
        if (bsprintf(url, "%s/latest/api/token", imds->endpoint) < 0)
                return -ENAMETOOLONG;
        HttpHeader ttl = { "X-aws-ec2-metadata-token-ttl-seconds", STRINGIFY(IMDS_TOKEN_TTL_SEC) };
        HttpRequestSpec spec = {
                .method = "PUT",
                .url = url,
                .headers = &ttl,
                .n_headers = 1,
                .timeout = imds->timeout,
                .max_response = 4096,
        };
        return http_start(imds->http, &spec, on_token_done, imds, &imds->token_req);
}

int imds_new(Http *http, const char *endpoint, usec_t timeout, Imds **ret) {
        Imds *imds = calloc(1, sizeof *imds);
        if (!imds)
                return -ENOMEM;
        imds->http = http;
        imds->timeout = timeout;
        imds->endpoint = strdup(endpoint);
        if (!imds->endpoint) {
                free(imds);
                return -ENOMEM;
        }
        size_t n = strlen(imds->endpoint);
        while (n > 0 && imds->endpoint[n - 1] == '/')
                imds->endpoint[--n] = 0;
        *ret = imds;
        return 0;
}

Imds *imds_free(Imds *imds) {
        if (!imds)
                return NULL;
        while (imds->fetches)
                fetch_free(imds->fetches);
        if (imds->token_req)
                http_cancel(imds->token_req);
        token_forget(imds);
        free(imds->endpoint);
        free(imds);
        return NULL;
}

int imds_fetch(Imds *imds, const char *path, imds_fetch_fn done, void *userdata) {
        ImdsFetch *f = calloc(1, sizeof *f);
        if (!f)
                return -ENOMEM;
        f->imds = imds;
        f->done = done;
        f->userdata = userdata;
        f->path = strdup(path);
        if (!f->path) {
                free(f);
                return -ENOMEM;
        }
        f->next = imds->fetches;
        imds->fetches = f;

        int r = token_usable(imds) ? fetch_send(f) : token_request(imds);
        if (r < 0) {
                fetch_free(f);
                return r;
        }
        return 0;
}

void imds_cancel(Imds *imds, void *userdata) {
        ImdsFetch *f = imds->fetches;
        while (f) {
                ImdsFetch *next = f->next;
                if (f->userdata == userdata)
                        fetch_free(f);
                f = next;
        }
}
