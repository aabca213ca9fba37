/* checks/journal.c: a journal pattern check. Its results come as entries arrive
 * (io/journal_watch.c, through heal/monitor.c): a matching entry is a failure, an interval
 * without one is healthy again. */
#include "checks/check_private.h"

static const char *journal_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX] _unused_) {
        return c->pattern;
}

const CheckTypeOps check_journal_ops = { .source = CHECK_SOURCE_JOURNAL, .target = journal_target };
