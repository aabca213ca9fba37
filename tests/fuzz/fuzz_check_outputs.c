/* fuzz_check_outputs.c: arbitrary bytes as /proc/meminfo, /proc/loadavg, an HTTP body and exec
 * output, through the check evaluators: every result text must stay bounded and printable. */
#include "checks/check_private.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void assert_bounded_printable(const char *s, size_t size) {
        size_t n = strnlen(s, size);
        if (n >= size)
                abort();
        for (size_t i = 0; i < n; i++)
                if (s[i] < 0x20 || s[i] > 0x7e)
                        abort();
}

static void verify(CheckResult *r) {
        assert_bounded_printable(r->observed, sizeof r->observed);
        assert_bounded_printable(r->threshold, sizeof r->threshold);
        assert_bounded_printable(r->message, sizeof r->message);
        if (r->output)
                assert_bounded_printable(r->output, CHECK_OUTPUT_MAX);
        check_result_done(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        CheckResult r;

        /* The kernel files are read as C strings: stop at the first NUL as the readers do. */
        char *text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0;

        CheckConfig memory = { .type = CHECK_MEMORY, .min_available_percent = 10, .max_swap_percent = -1 };
        if (check_memory_evaluate(&memory, text, &r) == 0)
                verify(&r);
        memory.max_swap_percent = 50;
        if (check_memory_evaluate(&memory, text, &r) == 0)
                verify(&r);

        CheckConfig load = { .type = CHECK_LOAD, .max_load_per_cpu = 1.5 };
        if (check_load_evaluate(&load, text, size > 0 ? data[0] : 0, &r) == 0)
                verify(&r);

        /* The body and the output are raw bytes, NULs included; the config texts come from the
         * same bytes, as an ini file could hold anything printable. */
        CheckConfig http = { .type = CHECK_HTTP, .url = text, .expect_status_min = 200, .expect_status_max = 399,
                             .expect_body = size > 4 ? text + size - 4 : NULL, .timeout = 5 * USEC_PER_SEC };
        long status = size > 1 ? (long) data[0] * 4 : 0;
        if (check_http_evaluate(&http, 0, NULL, status, (const char *) data, size, size > 100, &r) == 0)
                verify(&r);
        if (check_http_evaluate(&http, -ECONNREFUSED, text, 0, NULL, 0, false, &r) == 0)
                verify(&r);

        char *argv[] = { text, NULL };
        CheckConfig exec = { .type = CHECK_EXEC, .command = argv, .timeout = 1500 };
        SpawnResult er = { .exited = size % 2 == 0, .exit_status = size % 256, .signal = (int) (size % 65),
                          .timed_out = size % 3 == 0, .output = (const char *) data, .output_len = size,
                          .output_total = size + size % 5 };
        if (check_exec_evaluate(&exec, 0, &er, &r) == 0)
                verify(&r);
        if (check_exec_evaluate(&exec, -ENOENT, NULL, &r) == 0)
                verify(&r);

        free(text);
        return 0;
}
