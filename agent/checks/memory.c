/* memory.c: the memory check: available memory and swap use from /proc/meminfo. */
#include "checks/check_private.h"

#include <inttypes.h>

#define MEMINFO_PATH "/proc/meminfo"
#define MEMINFO_MAX (64 * 1024)

/* The value of "key:   12345 kB" in meminfo text, in kB. -ENOENT when the key is absent,
 * -EBADMSG when its value is not a plain decimal number. */
static int meminfo_field(const char *text, const char *key, uint64_t *ret) {
        size_t klen = strlen(key);

        for (const char *line = text; line && *line;) {
                if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
                        const char *p = line + klen + 1;
                        while (*p == ' ' || *p == '\t')
                                p++;
                        if (*p < '0' || *p > '9')
                                return -EBADMSG;
                        uint64_t v = 0;
                        for (; *p >= '0' && *p <= '9'; p++) {
                                if (v > (UINT64_MAX - 9) / 10)
                                        return -EBADMSG;
                                v = v * 10 + (uint64_t) (*p - '0');
                        }
                        if (*p != ' ' && *p != '\n' && *p != 0)
                                return -EBADMSG;
                        *ret = v;
                        return 0;
                }
                line = strchr(line, '\n');
                if (line)
                        line++;
        }
        return -ENOENT;
}

/* Fills ret for a field that is missing or malformed; returns false then. */
static bool meminfo_get(const char *text, const char *key, uint64_t *value, CheckResult *ret) {
        int r = meminfo_field(text, key, value);
        if (r == 0)
                return true;
        check_observed(ret, "unreadable");
        check_message(ret, "memory: %s: %s %s", MEMINFO_PATH, key, r == -ENOENT ? "is missing" : "is malformed");
        return false;
}

int check_memory_evaluate(const CheckConfig *c, const char *meminfo, CheckResult *ret) {
        uint64_t total, available, swap_total = 0, swap_free = 0;
        bool want_swap;

        if (!c || c->type != CHECK_MEMORY || !meminfo)
                return -EINVAL;
        want_swap = c->max_swap_percent >= 0;

        check_result_init(ret);
        if (want_swap)
                check_threshold(ret, ">= %g%% available, <= %g%% swap used", c->min_available_percent,
                                c->max_swap_percent);
        else
                check_threshold(ret, ">= %g%% available", c->min_available_percent);

        if (!meminfo_get(meminfo, "MemTotal", &total, ret) ||
            !meminfo_get(meminfo, "MemAvailable", &available, ret))
                return 0;
        if (want_swap && (!meminfo_get(meminfo, "SwapTotal", &swap_total, ret) ||
                          !meminfo_get(meminfo, "SwapFree", &swap_free, ret)))
                return 0;
        if (total == 0 || available > total || swap_free > swap_total) {
                check_observed(ret, "unreadable");
                check_message(ret, "memory: %s: inconsistent values (MemTotal %" PRIu64 " kB, MemAvailable %" PRIu64
                              " kB, SwapTotal %" PRIu64 " kB, SwapFree %" PRIu64 " kB)",
                              MEMINFO_PATH, total, available, swap_total, swap_free);
                return 0;
        }

        double available_percent = 100.0 * (double) available / (double) total;
        /* No swap configured counts as none used. */
        double swap_percent = swap_total > 0 ? 100.0 * (double) (swap_total - swap_free) / (double) swap_total : 0.0;
        bool low = available_percent < c->min_available_percent;
        bool swapping = want_swap && swap_percent > c->max_swap_percent;

        ret->healthy = !low && !swapping;
        if (want_swap)
                check_observed(ret, "%.1f%% available, %.1f%% swap used", available_percent, swap_percent);
        else
                check_observed(ret, "%.1f%% available", available_percent);
        check_message(ret, "memory: %" PRIu64 " of %" PRIu64 " MiB available (%.1f%%)%s%s",
                      available / 1024, total / 1024, available_percent, low ? ", below the limit" : "",
                      swapping ? "; swap use over the limit" : "");
        return 0;
}

int check_memory_run(const CheckConfig *c, CheckResult *ret) {
        _cleanup_free_ char *text = NULL;

        if (!c || c->type != CHECK_MEMORY)
                return -EINVAL;
        int r = read_file_full(MEMINFO_PATH, MEMINFO_MAX, &text, NULL);
        if (r < 0) {
                check_result_init(ret);
                check_threshold(ret, ">= %g%% available", c->min_available_percent);
                check_observed(ret, "unreadable");
                check_message(ret, "memory: %s: %s", MEMINFO_PATH, strerror(-r));
                return 0;
        }
        return check_memory_evaluate(c, text, ret);
}

static const char *memory_target(const CheckConfig *c _unused_, char buf[static CHECK_TARGET_MAX] _unused_) {
        return "memory";
}

const CheckTypeOps check_memory_ops = { .source = CHECK_SOURCE_POLL, .target = memory_target, .run = check_memory_run };
