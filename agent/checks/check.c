/* check.c: what every check type shares: result lifetime, escaped texts, probe cancel. */
#include "checks/check_private.h"

#include <assert.h>
#include <stdarg.h>

#include "codec.h"

static const CheckTypeOps *const check_types[_CHECK_TYPE_MAX] = {
        [CHECK_UNIT] = &check_unit_ops,         [CHECK_HTTP] = &check_http_ops,
        [CHECK_TCP] = &check_tcp_ops,           [CHECK_DISK] = &check_disk_ops,
        [CHECK_MEMORY] = &check_memory_ops,     [CHECK_LOAD] = &check_load_ops,
        [CHECK_FILE_AGE] = &check_file_age_ops, [CHECK_JOURNAL] = &check_journal_ops,
        [CHECK_EXEC] = &check_exec_ops,
};

const CheckTypeOps *check_type_ops(CheckType t) {
        assert(t >= 0 && t < _CHECK_TYPE_MAX && check_types[t]);
        return check_types[t];
}

const char *check_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX]) {
        return check_type_ops(c->type)->target(c, buf);
}

void check_result_init(CheckResult *r) {
        *r = (CheckResult) {};
}

void check_result_done(CheckResult *r) {
        if (r)
                r->output = mfree(r->output);
}

void check_text(char *dst, size_t size, const char *fmt, ...) {
        /* Larger than any result field, so text that does not fit is cut with "..." below. */
        char raw[4 * CHECK_MESSAGE_MAX];
        va_list ap;

        va_start(ap, fmt);
        int n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        if (n < 0)
                n = 0;
        codec_escape_copy(dst, size, raw, (size_t) n < sizeof raw ? (size_t) n : sizeof raw - 1);
}

static bool ends_with_ellipsis(const char *s) {
        size_t n = strlen(s);
        return n >= 3 && memcmp(s + n - 3, "...", 3) == 0;
}

int check_result_set_output(CheckResult *r, const char *data, size_t len, bool truncated) {
        if (len == 0)
                return 0;
        char *out = malloc(CHECK_OUTPUT_MAX);
        if (!out)
                return -ENOMEM;
        /* Escaping never shrinks text, so more raw bytes than the room could not show. */
        if (len > CHECK_OUTPUT_MAX) {
                len = CHECK_OUTPUT_MAX;
                truncated = true;
        }
        if (truncated) {
                codec_escape_copy(out, CHECK_OUTPUT_MAX - 3, data, len);
                if (!ends_with_ellipsis(out))
                        memcpy(out + strlen(out), "...", 4); /* the copy left room for it */
        } else
                codec_escape_copy(out, CHECK_OUTPUT_MAX, data, len);
        free(r->output);
        r->output = out;
        return 0;
}

void check_format_duration(usec_t u, char buf[static 32]) {
        if (u % USEC_PER_SEC == 0)
                snprintf(buf, 32, "%llu s", (unsigned long long) (u / USEC_PER_SEC));
        else if (u % USEC_PER_MSEC == 0)
                snprintf(buf, 32, "%llu ms", (unsigned long long) (u / USEC_PER_MSEC));
        else
                snprintf(buf, 32, "%llu us", (unsigned long long) u);
}

void check_probe_cancel(CheckProbe *p) {
        if (p)
                p->cancel(p);
}
