/* sigv4_req.c: parser for the AWS SigV4 test suite's raw HTTP/1.1 request files (tests/lib). */
#include "sigv4_req.h"

#include <stdarg.h>
#include <strings.h>

#include "util.h"

SigV4Req *sigv4_req_free(SigV4Req *r) {
        if (!r)
                return NULL;
        for (size_t i = 0; i < r->request.n_headers; i++) {
                free((char *) r->headers[i].name);
                free((char *) r->headers[i].value);
        }
        free(r->headers);
        free(r->method);
        free(r->path);
        free(r->query);
        free(r->body);
        free(r);
        return NULL;
}

const char *sigv4_req_header(const SigV4Req *r, const char *name) {
        for (size_t i = 0; i < r->request.n_headers; i++)
                if (strcasecmp(r->headers[i].name, name) == 0)
                        return r->headers[i].value;
        return NULL;
}

static int parse_error(char **ret_error, const char *fmt, ...) _printf_(2, 3);
static int parse_error(char **ret_error, const char *fmt, ...) {
        if (ret_error) {
                va_list ap;
                char msg[256];
                va_start(ap, fmt);
                (void) vsnprintf(msg, sizeof msg, fmt, ap);
                va_end(ap);
                *ret_error = strdup(msg); /* NULL on OOM: the error code still says -EINVAL */
        }
        return -EINVAL;
}

static int add_header(SigV4Req *r, const char *line, size_t len, size_t colon) {
        SigV4Header *h = reallocarray(r->headers, r->request.n_headers + 1, sizeof *h);
        if (!h)
                return -ENOMEM;
        r->headers = h;
        char *name = strndup(line, colon), *value = strndup(line + colon + 1, len - colon - 1);
        if (!name || !value) {
                free(name);
                free(value);
                return -ENOMEM;
        }
        h[r->request.n_headers++] = (SigV4Header) {name, value};
        return 0;
}

/* Obsolete line folding: the continuation joins the previous value after one space. */
static int continue_header(SigV4Req *r, const char *line, size_t len) {
        while (len > 0 && (*line == ' ' || *line == '\t'))
                line++, len--;
        SigV4Header *h = &r->headers[r->request.n_headers - 1];
        size_t old = strlen(h->value);
        char *value = malloc(old + 1 + len + 1);
        if (!value)
                return -ENOMEM;
        memcpy(value, h->value, old);
        value[old] = ' ';
        memcpy(value + old + 1, line, len);
        value[old + 1 + len] = '\0';
        free((char *) h->value);
        h->value = value;
        return 0;
}

static int parse_request_line(SigV4Req *r, const char *line, size_t len, char **ret_error) {
        const char *first = memchr(line, ' ', len), *last = NULL;
        for (size_t i = len; i > 0 && !last; i--)
                if (line[i - 1] == ' ')
                        last = line + i - 1;
        if (!first || first == last || first == line || (size_t) (last - line) + 1 == len)
                return parse_error(ret_error, "line 1: expected \"METHOD TARGET VERSION\"");
        size_t version_len = len - (size_t) (last + 1 - line);
        if (version_len < 5 || memcmp(last + 1, "HTTP/", 5) != 0)
                return parse_error(ret_error, "line 1: expected an HTTP version after the last space");

        const char *target = first + 1;
        size_t target_len = (size_t) (last - target);
        const char *q = memchr(target, '?', target_len);
        r->method = strndup(line, (size_t) (first - line));
        r->path = strndup(target, q ? (size_t) (q - target) : target_len);
        r->query = q ? strndup(q + 1, target_len - (size_t) (q - target) - 1) : NULL;
        if (!r->method || !r->path || (q && !r->query))
                return -ENOMEM;
        return 0;
}

int sigv4_req_parse(const char *data, size_t len, SigV4Req **ret, char **ret_error) {
        _cleanup_(sigv4_req_freep) SigV4Req *r = NULL;
        size_t pos = 0, line_no = 0;
        bool body = false;
        int k;

        if (!data || memchr(data, '\0', len))
                return parse_error(ret_error, "request contains a NUL byte");
        r = calloc(1, sizeof *r);
        if (!r)
                return -ENOMEM;

        while (pos < len) {
                const char *line = data + pos, *nl = memchr(line, '\n', len - pos);
                size_t line_len = nl ? (size_t) (nl - line) : len - pos;
                pos += line_len + (nl ? 1 : 0);
                line_no++;
                if (line_len > 0 && line[line_len - 1] == '\r')
                        line_len--;

                if (line_no == 1)
                        k = parse_request_line(r, line, line_len, ret_error);
                else if (line_len == 0) {
                        body = true;
                        break;
                } else if (line[0] == ' ' || line[0] == '\t') {
                        if (r->request.n_headers == 0)
                                return parse_error(ret_error, "line %zu: continuation line before any header",
                                                   line_no);
                        k = continue_header(r, line, line_len);
                } else {
                        const char *colon = memchr(line, ':', line_len);
                        if (!colon || colon == line)
                                return parse_error(ret_error, "line %zu: expected \"Name:value\"", line_no);
                        k = add_header(r, line, line_len, (size_t) (colon - line));
                }
                if (k < 0)
                        return k;
        }
        if (line_no == 0)
                return parse_error(ret_error, "empty request");

        r->body_len = body ? len - pos : 0;
        r->body = malloc(r->body_len + 1);
        if (!r->body)
                return -ENOMEM;
        if (r->body_len > 0)
                memcpy(r->body, data + pos, r->body_len);
        r->body[r->body_len] = '\0';

        r->request = (SigV4Request) {
                .method = r->method,
                .path = r->path,
                .query = r->query,
                .headers = r->headers,
                .n_headers = r->request.n_headers,
                .payload = r->body,
                .payload_len = r->body_len,
        };
        *ret = TAKE_PTR(r);
        return 0;
}
