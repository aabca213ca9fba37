/* bench_sigv4.c: SigV4 signatures per second for a realistic EventBridge PutEvents request.
 *
 * Build (after `make build/libheald.a`):
 *   cc -O2 -Iagent tests/bench/bench_sigv4.c build/libheald.a \
 *      $(pkg-config --libs libcrypto libcjson libcurl inih libsystemd) -o build/bench_sigv4
 * Run:
 *   build/bench_sigv4 [SECONDS]        prints "sigv4 heald: N/s" (default 2 seconds)
 *   build/bench_sigv4 --print-authorization
 *                                      prints the Authorization for the fixed date
 *                                      20240101T000000Z; tests/bench/sigv4_botocore.py
 *                                      --print-authorization must print the same line.
 * The request, body and (fake) credentials match tests/bench/sigv4_botocore.py. */
#include <time.h>

#include "aws/sigv4.h"
#include "util.h"

#define BENCH_BODY_SIZE 2048
#define BENCH_HOST "events.us-east-1.amazonaws.com"
#define BENCH_TOKEN "IQoJb3JpZ2luX2VjEXAMPLEFAKESESSIONTOKENFORBENCHMARKONLY0123456789abcdefghijklmnopqrstuvwxyz"

/* A PutEvents body padded with 'x' in the log field to exactly BENCH_BODY_SIZE bytes. */
static void bench_body(char body[static BENCH_BODY_SIZE + 1]) {
        static const char head[] =
                "{\"Entries\":[{\"Source\":\"heald\",\"DetailType\":\"heald.remediation\","
                "\"EventBusName\":\"default\",\"Detail\":\"{\\\"instance\\\":\\\"i-0123456789abcdef0\\\","
                "\\\"check\\\":\\\"nginx\\\",\\\"action\\\":\\\"restart\\\",\\\"log\\\":\\\"";
        static const char tail[] = "\\\"}\"}]}";
        size_t pad = BENCH_BODY_SIZE - (sizeof head - 1) - (sizeof tail - 1);
        memcpy(body, head, sizeof head - 1);
        memset(body + sizeof head - 1, 'x', pad);
        memcpy(body + sizeof head - 1 + pad, tail, sizeof tail);
}

static double now_seconds(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

int main(int argc, char *argv[]) {
        _cleanup_(sigv4_signer_freep) SigV4Signer *signer = NULL;
        char body[BENCH_BODY_SIZE + 1], amz_date[SIGV4_AMZ_DATE_SIZE] = "20240101T000000Z";
        bool print = argc > 1 && strcmp(argv[1], "--print-authorization") == 0;
        double seconds = argc > 1 && !print ? atof(argv[1]) : 2.0;

        if (seconds <= 0 || seconds > 60) {
                fputs("usage: bench_sigv4 [SECONDS (0..60]] | --print-authorization\n", stderr);
                return EXIT_FAILURE;
        }
        bench_body(body);
        const SigV4Header headers[] = {
                {"Host", BENCH_HOST},
                {"Content-Type", "application/x-amz-json-1.1"},
                {"X-Amz-Target", "AWSEvents.PutEvents"},
                {"X-Amz-Date", amz_date},
                {"X-Amz-Security-Token", BENCH_TOKEN},
        };
        const SigV4Request req = {
                .method = "POST",
                .path = "/",
                .headers = headers,
                .n_headers = ELEMENTSOF(headers),
                .payload = body,
                .payload_len = BENCH_BODY_SIZE,
        };
        const SigV4Credentials creds = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", BENCH_TOKEN};
        const SigV4Scope scope = {"us-east-1", "events", amz_date};

        if (sigv4_signer_new(&signer) < 0)
                return EXIT_FAILURE;
        if (print) {
                _cleanup_free_ char *authz = NULL;
                if (sigv4_signer_authorization(signer, &req, &creds, &scope, &authz) < 0)
                        return EXIT_FAILURE;
                puts(authz);
                return EXIT_SUCCESS;
        }

        /* Each round does what the daemon does per request: take the date, sign. */
        uint64_t n = 0;
        double start = now_seconds(), elapsed;
        do {
                for (int i = 0; i < 1000; i++, n++) {
                        char *authz = NULL;
                        if (sigv4_format_amz_date(time(NULL), amz_date) < 0 ||
                            sigv4_signer_authorization(signer, &req, &creds, &scope, &authz) < 0)
                                return EXIT_FAILURE;
                        free(authz);
                }
                elapsed = now_seconds() - start;
        } while (elapsed < seconds);

        printf("sigv4 heald: %.0f/s\n", (double) n / elapsed);
        return EXIT_SUCCESS;
}
