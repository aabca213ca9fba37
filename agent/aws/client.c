/* client.c: builds, signs and sends AWS JSON-protocol requests. Signing happens as late as
 * possible (just before the send) so a retry after a clock-skew answer is signed afresh. */
#include "aws/client.h"

#include <time.h>

#include "aws/timestamp.h"
#include "log.h"

struct AwsClient {
        Http *http;
        Credentials *creds;
        SigV4Signer *signer;
        int64_t clock_offset; /* usec */
        AwsCall *calls;
        AwsRequestCounts counts;
};

struct AwsCall {
        AwsClient *client;
        AwsCall *prev, *next;
        char *endpoint, *host, *path, *region, *service, *target, *content_type, *body;
        size_t body_len, max_response;
        usec_t timeout;
        aws_done_fn done;
        void *userdata;
        HttpRequest *req;
        bool skew_retried;
};

int aws_endpoint_split(const char *url, char **ret_host, char **ret_path) {
        const char *p = strstr(url, "://");
        if (!p || p == url)
                return -EINVAL;
        p += 3;
        size_t host_len = strcspn(p, "/?#");
        if (host_len == 0)
                return -EINVAL;
        const char *path = p + host_len;
        if (*path == '?' || *path == '#')
                return -EINVAL;
        char *host = strndup(p, host_len);
        char *pth = strdup(*path ? path : "/");
        if (!host || !pth) {
                free(host);
                free(pth);
                return -ENOMEM;
        }
        *ret_host = host;
        *ret_path = pth;
        return 0;
}

static void call_free(AwsCall *call) {
        if (!call)
                return;
        AwsClient *c = call->client;
        if (call->prev)
                call->prev->next = call->next;
        else
                c->calls = call->next;
        if (call->next)
                call->next->prev = call->prev;
        if (call->req)
                http_cancel(call->req);
        free(call->endpoint);
        free(call->host);
        free(call->path);
        free(call->region);
        free(call->service);
        free(call->target);
        free(call->content_type);
        secure_zero(call->body, call->body_len); /* a SendTask body carries the task token */
        free(call->body);
        free(call);
}

static AwsOutcome outcome_of(const AwsResult *r) {
        if (r->error < 0)
                return AWS_OUTCOME_TRANSPORT_ERROR;
        if (!r->aws)
                return AWS_OUTCOME_SUCCESS;
        switch (r->aws->error_class) {
        case AWS_ERROR_CLOCK_SKEW:
                return AWS_OUTCOME_CLOCK_SKEW;
        case AWS_ERROR_AUTH:
                return AWS_OUTCOME_AUTH;
        case AWS_ERROR_CLIENT:
                return AWS_OUTCOME_CLIENT;
        default:
                return AWS_OUTCOME_TRANSIENT;
        }
}

static void count_outcome(AwsRequestCounts *counts, const char *service, AwsOutcome o) {
        size_t i = 0;
        while (i < counts->n_services && strcmp(counts->service[i], service) != 0)
                i++;
        if (i == counts->n_services) {
                if (i == AWS_SERVICES_MAX || bsprintf(counts->service[i], "%s", service) < 0)
                        return;
                counts->n_services++;
        }
        counts->n[i][o]++;
}

const char *aws_outcome_to_string(AwsOutcome o) {
        static const char *const names[_AWS_OUTCOME_MAX] = {
                [AWS_OUTCOME_SUCCESS] = "success",       [AWS_OUTCOME_TRANSPORT_ERROR] = "transport-error",
                [AWS_OUTCOME_TRANSIENT] = "transient",   [AWS_OUTCOME_CLOCK_SKEW] = "clock-skew",
                [AWS_OUTCOME_AUTH] = "auth",             [AWS_OUTCOME_CLIENT] = "client-error",
        };
        return o >= 0 && o < _AWS_OUTCOME_MAX ? names[o] : "unknown";
}

const AwsRequestCounts *aws_client_request_counts(const AwsClient *c) {
        return &c->counts;
}

static void call_finish(AwsCall *call, const AwsResult *result) {
        count_outcome(&call->client->counts, call->service, outcome_of(result));
        call->req = NULL;
        call->done(result, call->userdata);
        call_free(call);
}

static int call_send(AwsCall *call);

static void on_http_done(HttpRequest *req, int error, long status, void *userdata) {
        AwsCall *call = userdata;
        AwsClient *c = call->client;
        AwsResult result = { .error = error, .status = status };
        AwsError aws = {};
        char too_long[96];

        result.body = http_response_body(req, &result.body_len);
        if (error < 0) {
                result.transport_message = http_error_message(req);
                return call_finish(call, &result);
        }
        /* Half an answer is no answer: a cut 2xx would be read as data that does not parse
         * (or, worse, does), a cut error as a refusal it may not be. */
        if (http_response_truncated(req)) {
                bsprintf(too_long, "the answer is longer than the %zu bytes heald reads",
                         result.body_len);
                result.error = -EMSGSIZE;
                result.transport_message = too_long;
                return call_finish(call, &result);
        }
        if (status >= 200 && status < 300)
                return call_finish(call, &result);

        aws_error_parse(status, http_response_header(req, "x-amzn-ErrorType"), result.body, result.body_len, &aws);
        result.aws = &aws;

        usec_t server_time;
        const char *date = http_response_header(req, "Date");
        if (aws.error_class == AWS_ERROR_CLOCK_SKEW && !call->skew_retried && date && http_date_parse(date, &server_time) >= 0) {
                /* Correct our signing clock by the server's and try once more. */
                int64_t before = c->clock_offset;
                c->clock_offset = (int64_t) server_time - (int64_t) now_usec(CLOCK_REALTIME);
                log_event(LOG_WARNING, "clock-skew",
                          "AWS says our clock is off (%s); signing with an offset of %+lld s from now on "
                          "(was %+lld s). Check NTP (chrony) on this instance.",
                          aws.code, (long long) (c->clock_offset / (int64_t) USEC_PER_SEC),
                          (long long) (before / (int64_t) USEC_PER_SEC));
                call->skew_retried = true;
                call->req = NULL;
                int r = call_send(call);
                if (r >= 0)
                        return;
                result.error = r;
                result.transport_message = "re-signing failed";
        }
        call_finish(call, &result);
}

static int call_send(AwsCall *call) {
        AwsClient *c = call->client;
        const SigV4Credentials *creds = credentials_get(c->creds);
        if (!creds)
                return -ENOKEY;

        char amz_date[SIGV4_AMZ_DATE_SIZE];
        time_t t = (time_t) (((int64_t) now_usec(CLOCK_REALTIME) + c->clock_offset) / (int64_t) USEC_PER_SEC);
        int r = sigv4_format_amz_date(t, amz_date);
        if (r < 0)
                return r;

        SigV4Header headers[] = {
                { "host", call->host },
                { "content-type", call->content_type },
                { "x-amz-date", amz_date },
                { "x-amz-target", call->target },
                { "x-amz-security-token", creds->session_token },
        };
        size_t n_headers = creds->session_token ? 5 : 4;
        SigV4Request sreq = {
                .method = "POST",
                .path = call->path,
                .headers = headers,
                .n_headers = n_headers,
                .payload = call->body,
                .payload_len = call->body_len,
        };
        SigV4Scope scope = { .region = call->region, .service = call->service, .amz_date = amz_date };
        _cleanup_secret_ char *authz = NULL;
        r = sigv4_signer_authorization(c->signer, &sreq, creds, &scope, &authz);
        if (r < 0)
                return r;

        /* Host goes from the URL, which is what was signed. */
        HttpHeader http_headers[] = {
                { "Content-Type", call->content_type },
                { "X-Amz-Date", amz_date },
                { "X-Amz-Target", call->target },
                { "Authorization", authz },
                { "X-Amz-Security-Token", creds->session_token },
        };
        HttpRequestSpec spec = {
                .method = "POST",
                .url = call->endpoint,
                .headers = http_headers,
                .n_headers = creds->session_token ? 5 : 4,
                .body = call->body,
                .body_len = call->body_len,
                .timeout = call->timeout,
                .max_response = call->max_response,
                .flags = HTTP_AWS_PROXY,
        };
        return http_start(c->http, &spec, on_http_done, call, &call->req);
}

int aws_call_start(AwsClient *c, const AwsCallSpec *spec, aws_done_fn done, void *userdata, AwsCall **ret) {
        AwsCall *call = calloc(1, sizeof *call);
        if (!call)
                return -ENOMEM;
        call->client = c;
        call->next = c->calls;
        if (c->calls)
                c->calls->prev = call;
        c->calls = call;
        call->done = done;
        call->userdata = userdata;
        call->timeout = spec->timeout;
        call->body_len = spec->body_len;
        call->max_response = spec->max_response;

        int r = aws_endpoint_split(spec->endpoint, &call->host, &call->path);
        if (r < 0) {
                call_free(call);
                return r;
        }
        call->endpoint = strdup(spec->endpoint);
        call->region = strdup(spec->region);
        call->service = strdup(spec->service);
        call->target = strdup(spec->target);
        call->content_type = strdup(spec->content_type);
        call->body = malloc(spec->body_len + 1);
        if (!call->endpoint || !call->region || !call->service || !call->target || !call->content_type ||
            !call->body) {
                call_free(call);
                return -ENOMEM;
        }
        memcpy(call->body, spec->body, spec->body_len);
        call->body[spec->body_len] = 0;

        r = call_send(call);
        if (r < 0) {
                call_free(call);
                return r;
        }
        if (ret)
                *ret = call;
        return 0;
}

void aws_call_cancel(AwsCall *call) {
        call_free(call);
}

int aws_client_new(Http *http, Credentials *creds, AwsClient **ret) {
        AwsClient *c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        c->http = http;
        c->creds = creds;
        int r = sigv4_signer_new(&c->signer);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

AwsClient *aws_client_free(AwsClient *c) {
        if (!c)
                return NULL;
        while (c->calls)
                call_free(c->calls);
        sigv4_signer_free(c->signer);
        free(c);
        return NULL;
}

const char *aws_result_describe(const AwsResult *res, char buf[static AWS_RESULT_DESCRIPTION_SIZE]) {
        if (res->error < 0)
                (void) format_bounded(buf, AWS_RESULT_DESCRIPTION_SIZE, "%s",
                                      res->transport_message ? res->transport_message : strerror(-res->error));
        else if (res->aws)
                (void) format_bounded(buf, AWS_RESULT_DESCRIPTION_SIZE, "%s: %s", res->aws->code, res->aws->message);
        else
                buf[0] = 0;
        return buf;
}

int64_t aws_client_clock_offset(const AwsClient *c) {
        return c->clock_offset;
}
