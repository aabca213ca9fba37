/* wrap: free realloc */
/* test_secrets.c: memory that held a secret is wiped before it goes back to the allocator: a
 * signed AWS call (session token in a header, task token in the body, secrets in a large
 * response) and an IMDS credential fetch (token, credential document) run against a local
 * server, while every free() and realloc() of heald's code is checked for the secret. */
#define _GNU_SOURCE /* memmem, strcasestr */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <malloc.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/imds.h"
#include "aws/imds_doc.h"
#include "io/http.h"

#define SECRET "wipe-me-3b9f0c2e71"
#define BIG_RESPONSE (96 * 1024) /* many curl writes: the response buffer grows several times */

/* ---- the allocator seam ---- */

void __real_free(void *p);
void *__real_realloc(void *p, size_t n);
void __wrap_free(void *p);
void *__wrap_realloc(void *p, size_t n);

static unsigned unwiped; /* buffers freed or moved with the secret still in them */

static void inspect(void *p) {
        if (p && memmem(p, malloc_usable_size(p), SECRET, strlen(SECRET)))
                unwiped++;
}

void __wrap_free(void *p) {
        inspect(p);
        __real_free(p);
}

void *__wrap_realloc(void *p, size_t n) {
        inspect(p);
        return __real_realloc(p, n);
}

/* ---- a local server: one request per connection ---- */

typedef struct Server {
        int fd;
        unsigned port;
        unsigned connections;
        pthread_t thread;
        char heads[8192]; /* the request heads received, one after the other */
} Server;

static void send_all(int fd, const char *data, size_t len) {
        while (len > 0) {
                ssize_t n = send(fd, data, len, MSG_NOSIGNAL);
                if (n <= 0)
                        return;
                data += n;
                len -= (size_t) n;
        }
}

/* Reads the request head and its Content-Length body into buf; the method, e.g. "PUT". */
static void read_request(int fd, char *buf, size_t size, char method[static 8]) {
        size_t len = 0;
        char *end = NULL;
        buf[0] = 0;
        while (!end && len < size - 1) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t) n;
                buf[len] = 0;
                end = strstr(buf, "\r\n\r\n");
        }
        const char *cl = strcasestr(buf, "Content-Length:");
        size_t want = end ? (size_t) (end + 4 - buf) + (cl ? strtoul(cl + 15, NULL, 10) : 0) : len;
        while (len < want && len < size - 1) {
                ssize_t n = recv(fd, buf + len, size - 1 - len, 0);
                if (n <= 0)
                        break;
                len += (size_t) n;
        }
        snprintf(method, 8, "%.*s", (int) strcspn(buf, " "), buf);
}

/* PUT: an IMDS token; GET: an IMDS credential document; POST (an AWS call): a large body. */
static size_t response_body(const char *method, char *body, size_t size) {
        if (strcmp(method, "PUT") == 0)
                return (size_t) snprintf(body, size, "imds-token-" SECRET);
        if (strcmp(method, "GET") == 0)
                return (size_t) snprintf(body, size,
                                         "{\"Code\":\"Success\",\"AccessKeyId\":\"AKIDEXAMPLE\",\"SecretAccessKey\":\"" SECRET
                                         "\",\"Token\":\"" SECRET "\",\"Expiration\":\"2099-01-01T00:00:00Z\"}");
        memset(body, 'x', BIG_RESPONSE);
        for (size_t at = 0; at + strlen(SECRET) < BIG_RESPONSE; at += 8192)
                memcpy(body + at, SECRET, strlen(SECRET));
        return BIG_RESPONSE;
}

static void *serve(void *userdata) {
        Server *s = userdata;
        static char request[65536], body[BIG_RESPONSE + 1];
        for (unsigned i = 0; i < s->connections; i++) {
                int fd = accept(s->fd, NULL, NULL);
                if (fd < 0)
                        break;
                char method[8], head[256];
                read_request(fd, request, sizeof request, method);
                size_t seen = strlen(s->heads);
                snprintf(s->heads + seen, sizeof s->heads - seen, "%.*s", (int) strcspn(request, "{"), request);
                size_t len = response_body(method, body, sizeof body);
                int n = snprintf(head, sizeof head,
                                 "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                                 "Connection: close\r\n\r\n",
                                 len);
                send_all(fd, head, (size_t) n);
                send_all(fd, body, len);
                shutdown(fd, SHUT_WR);
                close(fd);
        }
        return NULL;
}

static void server_start(Server *s, unsigned connections) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t alen = sizeof a;
        s->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        assert_true(s->fd >= 0);
        assert_int_equal(bind(s->fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(listen(s->fd, 8), 0);
        assert_int_equal(getsockname(s->fd, (struct sockaddr *) &a, &alen), 0);
        s->port = ntohs(a.sin_port);
        s->connections = connections;
        assert_int_equal(pthread_create(&s->thread, NULL, serve, s), 0);
}

static void server_stop(Server *s) {
        shutdown(s->fd, SHUT_RDWR); /* ends an accept() still waiting */
        pthread_join(s->thread, NULL);
        close(s->fd);
}

/* ---- the tests ---- */

typedef struct Outcome {
        sd_event *event;
        int error;
        long status;
        bool secret_seen; /* the secret did arrive where it belongs */
        bool done;
} Outcome;

static void on_call_done(const AwsResult *res, void *userdata) {
        Outcome *o = userdata;
        o->error = res->error;
        o->status = res->status;
        o->secret_seen = res->body && res->body_len == BIG_RESPONSE && memmem(res->body, res->body_len, SECRET, strlen(SECRET));
        o->done = true;
        (void) sd_event_exit(o->event, 0);
}

static void test_signed_call_leaves_no_secret_behind(void **state) {
        (void) state;
        unwiped = 0;
        Server server = {};
        server_start(&server, 1);
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%u", server.port);
        assert_int_equal(setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1), 0);
        assert_int_equal(setenv("AWS_SECRET_ACCESS_KEY", "secret-key-example", 1), 0);
        assert_int_equal(setenv("AWS_SESSION_TOKEN", "session-" SECRET, 1), 0);

        sd_event *event = NULL;
        Http *http = NULL;
        Imds *imds = NULL;
        Credentials *creds = NULL;
        AwsClient *aws = NULL;
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(http_new(event, &http), 0);
        assert_int_equal(imds_new(http, "http://127.0.0.1:1", USEC_PER_SEC, &imds), 0);
        assert_int_equal(credentials_new(event, imds, &creds), 0);
        assert_int_equal(aws_client_new(http, creds, &aws), 0);

        /* A SendTaskSuccess body: its task token is a bearer secret. */
        static const char body[] = "{\"taskToken\":\"" SECRET "\",\"output\":\"{}\"}";
        AwsCallSpec spec = {
                .endpoint = endpoint,
                .region = "us-east-1",
                .service = "states",
                .target = "AWSStepFunctions.SendTaskSuccess",
                .content_type = "application/x-amz-json-1.0",
                .body = body,
                .body_len = strlen(body),
                .timeout = 10 * USEC_PER_SEC,
        };
        Outcome o = { .event = event };
        assert_int_equal(aws_call_start(aws, &spec, on_call_done, &o, NULL), 0);
        assert_int_equal(sd_event_loop(event), 0);
        assert_true(o.done);
        assert_int_equal(o.error, 0);
        assert_int_equal(o.status, 200);
        assert_true(o.secret_seen);
        /* Every header reached the wire as "Name: value" (http.c builds curl's list), without
         * Expect: 100-continue. */
        assert_non_null(strstr(server.heads, "\r\nX-Amz-Security-Token: session-" SECRET "\r\n"));
        assert_non_null(strstr(server.heads, "\r\nAuthorization: AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"));
        assert_non_null(strstr(server.heads, "\r\nX-Amz-Target: AWSStepFunctions.SendTaskSuccess\r\n"));
        assert_non_null(strstr(server.heads, "\r\nContent-Type: application/x-amz-json-1.0\r\n"));
        assert_null(strcasestr(server.heads, "Expect:"));

        aws_client_free(aws);
        credentials_free(creds);
        imds_free(imds);
        http_free(http);
        sd_event_unref(event);
        server_stop(&server);
        unsetenv("AWS_SESSION_TOKEN");
        assert_int_equal(unwiped, 0);
}

static void on_imds_done(int error, const char *body, size_t len, void *userdata) {
        Outcome *o = userdata;
        ImdsCredentials doc = {};
        o->error = error < 0 ? error : imds_parse_credentials(body, len, &doc, NULL);
        o->secret_seen = o->error >= 0 && strcmp(doc.secret_access_key, SECRET) == 0;
        imds_credentials_done(&doc);
        o->done = true;
        (void) sd_event_exit(o->event, 0);
}

static void test_imds_credentials_leave_no_secret_behind(void **state) {
        (void) state;
        unwiped = 0;
        Server server = {};
        server_start(&server, 2); /* the token (PUT), then the document (GET) */
        char endpoint[64];
        snprintf(endpoint, sizeof endpoint, "http://127.0.0.1:%u", server.port);

        sd_event *event = NULL;
        Http *http = NULL;
        Imds *imds = NULL;
        assert_int_equal(sd_event_new(&event), 0);
        assert_int_equal(http_new(event, &http), 0);
        assert_int_equal(imds_new(http, endpoint, 10 * USEC_PER_SEC, &imds), 0);
        Outcome o = { .event = event };
        assert_int_equal(imds_fetch(imds, "/latest/meta-data/iam/security-credentials/role", on_imds_done, &o), 0);
        assert_int_equal(sd_event_loop(event), 0);
        assert_true(o.done);
        assert_int_equal(o.error, 0);
        assert_true(o.secret_seen);
        assert_non_null(strstr(server.heads, "\r\nX-aws-ec2-metadata-token-ttl-seconds: 21600\r\n"));
        assert_non_null(strstr(server.heads, "\r\nX-aws-ec2-metadata-token: imds-token-" SECRET "\r\n"));

        imds_free(imds);
        http_free(http);
        sd_event_unref(event);
        server_stop(&server);
        assert_int_equal(unwiped, 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_signed_call_leaves_no_secret_behind),
                cmocka_unit_test(test_imds_credentials_leave_no_secret_behind),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
