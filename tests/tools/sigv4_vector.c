/* sigv4_vector.c: print the canonical request, string to sign or Authorization for a .req file. */
#include <getopt.h>

#include "../lib/sigv4_req.h"
#include "util.h"

/* The AWS SigV4 test suite's fixed signing parameters. */
#define VECTOR_ACCESS_KEY_ID "AKIDEXAMPLE"
#define VECTOR_SECRET_ACCESS_KEY "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define VECTOR_REGION "us-east-1"
#define VECTOR_SERVICE "service"
#define VECTOR_MAX_REQUEST (1024 * 1024)

enum { EXIT_BAD_INPUT = 2 };

typedef enum VectorOutput { VECTOR_NONE, VECTOR_CREQ, VECTOR_STS, VECTOR_AUTHZ } VectorOutput;

static void usage(FILE *f) {
        fputs("Usage: sigv4-vector --creq|--sts|--authz [--token TOKEN] FILE.req\n"
              "Sign an AWS SigV4 test-suite request (AKIDEXAMPLE, us-east-1, service \"service\",\n"
              "date from its X-Amz-Date header) and print, without a trailing newline:\n"
              "  --creq   the canonical request\n"
              "  --sts    the string to sign\n"
              "  --authz  the Authorization header value\n"
              "  --token TOKEN  a session token from the credentials: signed as\n"
              "                 X-Amz-Security-Token unless the request already has that header\n"
              "Exit status: 0 success, 2 bad usage or malformed request, 1 other failure.\n",
              f);
}

static int vector_run(VectorOutput what, const char *token, const char *path) {
        _cleanup_free_ char *data = NULL, *error = NULL, *creq = NULL, *sts = NULL, *authz = NULL;
        _cleanup_(sigv4_req_freep) SigV4Req *req = NULL;
        size_t len;
        int r;

        r = read_file_full(path, VECTOR_MAX_REQUEST, &data, &len);
        if (r < 0) {
                fprintf(stderr, "sigv4-vector: cannot read %s: %s\n", path, strerror(-r));
                return EXIT_BAD_INPUT;
        }
        r = sigv4_req_parse(data, len, &req, &error);
        if (r < 0) {
                fprintf(stderr, "sigv4-vector: %s: %s\n", path, error ? error : strerror(-r));
                return r == -EINVAL ? EXIT_BAD_INPUT : EXIT_FAILURE;
        }

        const char *amz_date = sigv4_req_header(req, "X-Amz-Date");
        if (!amz_date) {
                fprintf(stderr, "sigv4-vector: %s: no X-Amz-Date header\n", path);
                return EXIT_BAD_INPUT;
        }
        const SigV4Scope scope = {.region = VECTOR_REGION, .service = VECTOR_SERVICE, .amz_date = amz_date};
        const SigV4Credentials creds = {
                .access_key_id = VECTOR_ACCESS_KEY_ID,
                .secret_access_key = VECTOR_SECRET_ACCESS_KEY,
                .session_token = token,
        };

        const char *out;
        r = sigv4_canonical_request(&req->request, token, &creq);
        if (r >= 0 && what != VECTOR_CREQ)
                r = sigv4_string_to_sign(&scope, creq, &sts);
        if (r >= 0 && what == VECTOR_AUTHZ)
                r = sigv4_authorization(&req->request, &creds, &scope, &authz);
        if (r < 0) {
                fprintf(stderr, "sigv4-vector: %s: cannot sign: %s%s\n", path, strerror(-r),
                        r == -EINVAL ? " (malformed method, header, X-Amz-Date or token)" : "");
                return r == -EINVAL ? EXIT_BAD_INPUT : EXIT_FAILURE;
        }
        out = what == VECTOR_CREQ ? creq : what == VECTOR_STS ? sts : authz;
        if (fputs(out, stdout) == EOF || fflush(stdout) == EOF) {
                fprintf(stderr, "sigv4-vector: cannot write output: %m\n");
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                {"creq", no_argument, NULL, 'c'},
                {"sts", no_argument, NULL, 's'},
                {"authz", no_argument, NULL, 'a'},
                {"token", required_argument, NULL, 't'},
                {"help", no_argument, NULL, 'h'},
                {},
        };
        VectorOutput what = VECTOR_NONE;
        const char *token = NULL;
        int c;

        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0) {
                switch (c) {
                case 'c':
                case 's':
                case 'a':
                        if (what != VECTOR_NONE) {
                                fputs("sigv4-vector: give only one of --creq, --sts, --authz\n", stderr);
                                return EXIT_BAD_INPUT;
                        }
                        what = c == 'c' ? VECTOR_CREQ : c == 's' ? VECTOR_STS : VECTOR_AUTHZ;
                        break;
                case 't':
                        token = optarg;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                default:
                        usage(stderr);
                        return EXIT_BAD_INPUT;
                }
        }
        if (what == VECTOR_NONE || optind != argc - 1) {
                usage(stderr);
                return EXIT_BAD_INPUT;
        }
        return vector_run(what, token, argv[optind]);
}
