/* load.c: the load check: the 1-minute load average per online CPU from /proc/loadavg. */
#include "checks/check_private.h"

#include <limits.h>
#include <math.h>

#define LOADAVG_PATH "/proc/loadavg"

/* The first field of loadavg text ("0.52 0.58 0.59 1/467 12345"): digits with an optional
 * fraction, nothing else (strtod would also take "nan", "inf" and hex). */
static int loadavg_parse(const char *text, double *ret) {
        const char *p = text;
        if (*p < '0' || *p > '9')
                return -EBADMSG;
        while ((*p >= '0' && *p <= '9') || *p == '.')
                p++;
        if (*p != ' ' && *p != '\n' && *p != 0)
                return -EBADMSG;
        char *end;
        errno = 0;
        double v = strtod(text, &end);
        if (errno != 0 || end != p || !isfinite(v))
                return -EBADMSG;
        *ret = v;
        return 0;
}

int check_load_evaluate(const CheckConfig *c, const char *loadavg, unsigned n_cpus, CheckResult *ret) {
        double load;

        if (!c || c->type != CHECK_LOAD || !loadavg)
                return -EINVAL;
        if (n_cpus == 0) /* the CPU count could not be read: judge as if one */
                n_cpus = 1;

        check_result_init(ret);
        check_threshold(ret, "<= %.2f per CPU", c->max_load_per_cpu);
        if (loadavg_parse(loadavg, &load) < 0) {
                check_observed(ret, "unreadable");
                check_message(ret, "load: %s: malformed 1-minute load average", LOADAVG_PATH);
                return 0;
        }

        double per_cpu = load / n_cpus;
        ret->healthy = per_cpu <= c->max_load_per_cpu;
        check_observed(ret, "%.2f per CPU", per_cpu);
        check_message(ret, "load: 1-minute load %.2f on %u CPU%s (%.2f per CPU)%s", load, n_cpus,
                      n_cpus == 1 ? "" : "s", per_cpu, ret->healthy ? "" : ", over the limit");
        return 0;
}

int check_load_run(const CheckConfig *c, CheckResult *ret) {
        _cleanup_free_ char *text = NULL;

        if (!c || c->type != CHECK_LOAD)
                return -EINVAL;
        int r = read_file_full(LOADAVG_PATH, 4096, &text, NULL);
        if (r < 0) {
                check_result_init(ret);
                check_threshold(ret, "<= %.2f per CPU", c->max_load_per_cpu);
                check_observed(ret, "unreadable");
                check_message(ret, "load: %s: %s", LOADAVG_PATH, strerror(-r));
                return 0;
        }
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        return check_load_evaluate(c, text, n > 0 && n <= UINT_MAX ? (unsigned) n : 1, ret);
}

static const char *load_target(const CheckConfig *c _unused_, char buf[static CHECK_TARGET_MAX] _unused_) {
        return "load";
}

const CheckTypeOps check_load_ops = { .source = CHECK_SOURCE_POLL, .target = load_target, .run = check_load_run };
