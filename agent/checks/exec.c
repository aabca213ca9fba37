/* exec.c: the exec check: a command (no shell) that exits 0 when healthy, run by agent/io/spawn.c. */
#include "checks/check_private.h"
#include "codec.h"

typedef struct ExecProbe {
        CheckProbe probe;
        const CheckConfig *config; /* borrowed: the Config outlives its probes */
        Spawn *exec;
} ExecProbe;

int check_exec_evaluate(const CheckConfig *c, int error, const SpawnResult *r, CheckResult *ret) {
        char timeout[32];

        if (!c || c->type != CHECK_EXEC || !c->command || !c->command[0] || (error >= 0 && !r))
                return -EINVAL;

        const char *program = c->command[0];
        check_result_init(ret);
        check_threshold(ret, "exit status 0");
        if (error < 0) {
                check_observed(ret, "could not run");
                check_message(ret, "exec %s: %s", program, strerror(-error));
                return 0;
        }

        check_format_duration(c->timeout, timeout);
        if (r->timed_out) {
                check_observed(ret, "timed out after %s", timeout);
                check_message(ret, "exec %s: still running after %s, killed", program, timeout);
        } else if (r->exited) {
                ret->healthy = r->exit_status == 0;
                check_observed(ret, "exit status %d", r->exit_status);
                check_message(ret, "exec %s: exit status %d", program, r->exit_status);
        } else {
                check_observed(ret, "killed by signal %d", r->signal);
                check_message(ret, "exec %s: killed by signal %d (%s)", program, r->signal, strsignal(r->signal));
        }
        (void) check_result_set_output(ret, r->output, r->output_len, r->output_total > r->output_len);
        return 0;
}

static void exec_probe_cancel(CheckProbe *probe) {
        ExecProbe *p = (ExecProbe *) probe;
        spawn_cancel(p->exec);
        free(p);
}

static void exec_probe_on_done(int error, const SpawnResult *r, void *userdata) {
        ExecProbe *p = userdata;
        CheckResult result;

        (void) check_exec_evaluate(p->config, error, r, &result);
        p->probe.done(&result, p->probe.userdata);
        check_result_done(&result);
        free(p);
}

int check_exec_start(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                     CheckProbe **ret) {
        if (!c || c->type != CHECK_EXEC || !c->command || !c->command[0] || !ctx || !ctx->event || !done)
                return -EINVAL;

        ExecProbe *p = calloc(1, sizeof *p);
        if (!p)
                return -ENOMEM;
        *p = (ExecProbe) {
                .probe = { .cancel = exec_probe_cancel, .done = done, .userdata = userdata },
                .config = c,
        };
        /* Raw output beyond what an escaped CHECK_OUTPUT_MAX can show is counted, not kept. */
        int r = spawn_start(ctx->event, c->command, c->timeout, CHECK_OUTPUT_MAX, exec_probe_on_done, p, &p->exec);
        if (r < 0) {
                free(p);
                return r;
        }
        if (ret)
                *ret = &p->probe;
        return 0;
}

/* The whole command line: "/usr/lib/app/probe --deep" and "/usr/lib/app/probe --fast" are
 * different checks. Words with a blank or a quote are quoted; the line is escaped once, as a
 * whole, and cut to fit with "...". */
static const char *exec_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX]) {
        char line[4 * CHECK_TARGET_MAX];
        size_t n = 0;

        for (char *const *word = c->command; *word && n < sizeof line; word++) {
                bool quote = strpbrk(*word, " \t\"'") || !**word;
                int k = snprintf(line + n, sizeof line - n, quote ? "%s\"%s\"" : "%s%s", n > 0 ? " " : "", *word);
                n = k < 0 ? sizeof line : n + (size_t) k;
        }
        /* a line longer than line[] is longer than buf: the copy is cut and says so */
        codec_escape_copy(buf, CHECK_TARGET_MAX, line, n < sizeof line ? n : sizeof line - 1);
        return buf;
}

const CheckTypeOps check_exec_ops = { .source = CHECK_SOURCE_POLL, .target = exec_target, .start = check_exec_start };
