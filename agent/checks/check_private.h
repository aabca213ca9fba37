/* check_private.h: what the check types share inside agent/checks/: the probe handle, the
 * result-text helpers of check.c and the pure evaluators behind the probes (for tests). */
#pragma once

#include "checks/check.h"
#include "io/spawn.h"

/* Every probe type embeds this first; check_probe_cancel() calls cancel, which stops the
 * type's work and frees the probe without calling done(). */
struct CheckProbe {
        void (*cancel)(CheckProbe *p);
        check_done_fn done;
        void *userdata;
};

/* The rows of the type table in check.c, one in each type's file. */
extern const CheckTypeOps check_unit_ops, check_http_ops, check_tcp_ops, check_disk_ops, check_memory_ops,
        check_load_ops, check_file_age_ops, check_journal_ops, check_exec_ops;

/* Zero *r: unhealthy, empty texts, no output. */
void check_result_init(CheckResult *r);

/* printf into dst[size], then escape so it is printable ASCII (codec_escape_copy). */
void check_text(char *dst, size_t size, const char *fmt, ...) _printf_(3, 4);
#define check_observed(r, ...) check_text((r)->observed, sizeof (r)->observed, __VA_ARGS__)
#define check_threshold(r, ...) check_text((r)->threshold, sizeof (r)->threshold, __VA_ARGS__)
#define check_message(r, ...) check_text((r)->message, sizeof (r)->message, __VA_ARGS__)

/* Set r->output to the escaped prefix of data[0..len) (at most CHECK_OUTPUT_MAX bytes with
 * the NUL); truncated (more data existed than was given) makes it end in "...". Nothing is
 * set for empty data. Returns 0 or -ENOMEM (r->output stays NULL). */
int check_result_set_output(CheckResult *r, const char *data, size_t len, bool truncated);

/* "5 s", "200 ms", "1500 us": exact, in the largest unit that divides u. */
void check_format_duration(usec_t u, char buf[static 32]);

/* The pure halves of the probes. error/status as http.h reports them; error_text is curl's
 * message (may be NULL). */
int check_http_evaluate(const CheckConfig *c, int error, const char *error_text, long status,
                        const char *body, size_t body_len, bool truncated, CheckResult *ret);
/* error/r as exec.h reports them. */
int check_exec_evaluate(const CheckConfig *c, int error, const SpawnResult *r, CheckResult *ret);
