/* test_tls.c: TLS as heald initialises it (http_tls_init() first, libcrypto's error strings
 * unloaded): a server whose certificate chains to the trusted CA is accepted over TLS 1.2 and
 * 1.3, with RSA and ECDSA keys; one from another CA is refused with curl's readable reason; a
 * non-TLS peer is named in libssl's words. A server is `openssl s_server` on a loopback port,
 * its certificates made by `openssl req` at set-up (skipped when the openssl tool is absent). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <curl/curl.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "io/http.h"
#include "../lib/temp_dir.h"

typedef struct Pki {
        TempDir *dir;
} Pki;

static int sh(const char *fmt, ...) _printf_(1, 2);
static int sh(const char *fmt, ...) {
        char cmd[4096];
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(cmd, sizeof cmd, fmt, ap);
        va_end(ap);
        return system(cmd);
}

/* ca.pem signs rsa.pem and ec.pem (localhost); other.pem is a CA nobody trusts. */
static int setup(void **state) {
        if (sh("command -v openssl >/dev/null") != 0)
                skip();
        Pki *p = calloc(1, sizeof *p);
        assert_non_null(p);
        assert_int_equal(temp_dir_new("test_tls", NULL, &p->dir), 0);
        const char *d = p->dir->path;
        const char *ca = "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign";
        assert_int_equal(sh("cd %s && exec >/dev/null 2>&1 && "
                            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ca.key -out ca.pem -days 2 -subj /CN=test-ca %s && "
                            "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout other.key -out other.pem -days 2 -subj /CN=other-ca %s && "
                            "printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\\n' >ext && "
                            "openssl req -newkey rsa:2048 -nodes -keyout rsa.key -out rsa.csr -subj /CN=localhost && "
                            "openssl x509 -req -in rsa.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out rsa.pem -days 2 -extfile ext && "
                            "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout ec.key -out ec.csr -subj /CN=localhost && "
                            "openssl x509 -req -in ec.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out ec.pem -days 2 -sha384 -extfile ext",
                            d, ca, ca),
                         0);
        *state = p;
        return 0;
}

static int teardown(void **state) {
        Pki *p = *state;
        temp_dir_free(p->dir);
        free(p);
        return 0;
}

static int free_port(void) {
        int fd = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &a, sizeof a), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &a, &len), 0);
        close(fd);
        return ntohs(a.sin_port);
}

/* `openssl s_server -www` with this key pair and protocol flag ("-tls1_3", "-tls1_2"), or a
 * plain listener answering HTTP when key is NULL; returns its pid once it accepts. */
static pid_t server_start(const Pki *p, const char *key, const char *protocol, int port) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char accept_port[16], cert[4200], keyfile[4200];
                snprintf(accept_port, sizeof accept_port, "%d", port);
                int null = open("/dev/null", O_RDWR);
                dup2(null, STDIN_FILENO);
                dup2(null, STDOUT_FILENO);
                dup2(null, STDERR_FILENO);
                if (!key)
                        execlp("python3", "python3", "-m", "http.server", "--bind", "127.0.0.1", accept_port, (char *) NULL);
                snprintf(cert, sizeof cert, "%s/%s.pem", p->dir->path, key);
                snprintf(keyfile, sizeof keyfile, "%s/%s.key", p->dir->path, key);
                execlp("openssl", "openssl", "s_server", "-www", "-quiet", protocol, "-accept", accept_port, "-cert", cert,
                       "-key", keyfile, (char *) NULL);
                _exit(127);
        }
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t) port),
                                 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        for (int i = 0; i < 200; i++) {
                int fd = socket(AF_INET, SOCK_STREAM, 0);
                int r = connect(fd, (struct sockaddr *) &a, sizeof a);
                close(fd);
                if (r == 0)
                        return pid;
                usleep(20 * 1000);
        }
        fail_msg("the test server on port %d did not start", port);
        return -1;
}

static void server_stop(pid_t pid) {
        (void) kill(pid, SIGTERM);
        (void) waitpid(pid, NULL, 0);
}

static size_t discard(char *data _unused_, size_t size, size_t n, void *userdata _unused_) {
        return size * n;
}

/* GET https://localhost:port/ trusting ca; curl's result, its error text in err. */
static CURLcode get(const Pki *p, int port, const char *ca, char err[static CURL_ERROR_SIZE]) {
        char url[64], cafile[4200];
        snprintf(url, sizeof url, "https://localhost:%d/", port);
        snprintf(cafile, sizeof cafile, "%s/%s.pem", p->dir->path, ca);
        CURL *h = curl_easy_init();
        assert_non_null(h);
        err[0] = 0;
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CAINFO, cafile);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, err);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
        CURLcode rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        return rc;
}

static void test_trusted_chain_accepted(void **state) {
        const Pki *p = *state;
        const char *keys[] = { "rsa", "ec" }, *protocols[] = { "-tls1_3", "-tls1_2" };
        for (size_t k = 0; k < ELEMENTSOF(keys); k++)
                for (size_t v = 0; v < ELEMENTSOF(protocols); v++) {
                        int port = free_port();
                        pid_t pid = server_start(p, keys[k], protocols[v], port);
                        char err[CURL_ERROR_SIZE];
                        CURLcode rc = get(p, port, "ca", err);
                        server_stop(pid);
                        if (rc != CURLE_OK)
                                fail_msg("%s key over %s: %s (%s)", keys[k], protocols[v], curl_easy_strerror(rc), err);
                }
}

static void test_untrusted_chain_refused_readably(void **state) {
        const Pki *p = *state;
        int port = free_port();
        pid_t pid = server_start(p, "ec", "-tls1_3", port);
        char err[CURL_ERROR_SIZE];
        CURLcode rc = get(p, port, "other", err);
        server_stop(pid);
        assert_int_equal(rc, CURLE_PEER_FAILED_VERIFICATION);
        assert_non_null(strstr(err, "SSL certificate problem: unable to get local issuer certificate"));
}

static void test_not_tls_named_readably(void **state) {
        const Pki *p = *state;
        int port = free_port();
        pid_t pid = server_start(p, NULL, NULL, port);
        char err[CURL_ERROR_SIZE];
        CURLcode rc = get(p, port, "ca", err);
        server_stop(pid);
        assert_int_equal(rc, CURLE_SSL_CONNECT_ERROR);
        if (!strstr(err, "SSL routines::wrong version number"))
                fail_msg("libssl's reason is not spelt out: %s", err);
}

int main(void) {
        /* As heald's main(): before anything else touches OpenSSL. */
        if (http_tls_init() < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return 1;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_trusted_chain_accepted),
                cmocka_unit_test(test_untrusted_chain_refused_readably),
                cmocka_unit_test(test_not_tls_named_readably),
        };
        int failed = cmocka_run_group_tests(tests, setup, teardown);
        curl_global_cleanup();
        return failed;
}
