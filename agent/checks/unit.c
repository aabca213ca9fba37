/* unit.c: judging a systemd unit from the state its signals carry. Unhealthy: failed, gone
 * inactive with a non-success result, waiting for an automatic restart, missing, masked, or
 * restarting in a loop that systemd's own Restart= would hide. A stop that someone asked for
 * (inactive, result "success") is not a failure. */
#include "checks/check_private.h"

void check_unit_observe(UnitHistory *h, const UnitState *st, usec_t now) {
        if (h->seen && st->n_restarts > h->n_restarts) {
                uint32_t more = st->n_restarts - h->n_restarts;
                for (uint32_t i = 0; i < more && i < UNIT_RESTART_LOOP_COUNT; i++) {
                        if (h->n == UNIT_RESTART_LOOP_COUNT) {
                                memmove(h->restarts, h->restarts + 1, sizeof h->restarts[0] * (h->n - 1));
                                h->n--;
                        }
                        h->restarts[h->n++] = now;
                }
        }
        h->seen = true;
        h->n_restarts = st->n_restarts;
}

static bool in_restart_loop(const UnitHistory *h, usec_t now) {
        return h->n == UNIT_RESTART_LOOP_COUNT && now - h->restarts[0] <= UNIT_RESTART_LOOP_WINDOW;
}

static int verdict(CheckResult *ret, bool healthy, const char *message, const UnitState *st) {
        *ret = (CheckResult) { .healthy = healthy };
        bsprintf(ret->observed, "%s/%s%s%s", st->active_state, st->sub_state,
                 st->result[0] ? ", result " : "", st->result);
        bsprintf(ret->threshold, "active");
        bsprintf(ret->message, "%s", message);
        return 0;
}

int check_unit_evaluate(const CheckConfig *c, const UnitState *st, const UnitHistory *h, usec_t now,
                        CheckResult *ret) {
        char msg[CHECK_MESSAGE_MAX];

        if (c->type != CHECK_UNIT)
                return -EINVAL;
        if (strcmp(st->load_state, "not-found") == 0)
                return verdict(ret, false, "unit does not exist", st);
        if (strcmp(st->load_state, "masked") == 0)
                return verdict(ret, false, "unit is masked", st);
        if (st->load_state[0] && strcmp(st->load_state, "loaded") != 0) {
                bsprintf(msg, "unit could not be loaded (%s)", st->load_state);
                return verdict(ret, false, msg, st);
        }
        if (in_restart_loop(h, now)) {
                bsprintf(msg, "restart loop: %d automatic restarts within %llu s (NRestarts=%u)",
                         UNIT_RESTART_LOOP_COUNT, (unsigned long long) (UNIT_RESTART_LOOP_WINDOW / USEC_PER_SEC),
                         st->n_restarts);
                return verdict(ret, false, msg, st);
        }
        if (strcmp(st->active_state, "failed") == 0)
                return verdict(ret, false, "unit failed", st);
        if (strcmp(st->sub_state, "auto-restart") == 0)
                return verdict(ret, false, "unit stopped and waits for an automatic restart", st);
        if (strcmp(st->active_state, "active") == 0 || strcmp(st->active_state, "reloading") == 0)
                return verdict(ret, true, "unit is active", st);
        if (strcmp(st->active_state, "inactive") == 0) {
                if (!st->result[0] || strcmp(st->result, "success") == 0)
                        return verdict(ret, true, "unit is stopped (a stop was asked for)", st);
                return verdict(ret, false, "unit stopped unexpectedly", st);
        }
        return 1; /* activating, deactivating, maintenance: wait for where it lands */
}

static const char *unit_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX] _unused_) {
        return c->unit;
}

const CheckTypeOps check_unit_ops = { .source = CHECK_SOURCE_UNIT, .target = unit_target };
