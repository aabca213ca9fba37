/* outbox_test.h: what the outbox's unit tests share: open, append and read back, failing the
 * test with the error on any refusal. Include after cmocka.h. */
#pragma once

#include <inttypes.h>
#include <string.h>

#include "events/outbox.h"
#include "../lib/temp_dir.h"

static inline Outbox *open_ok(const TempDir *f, uint64_t max_bytes, OutboxOpenReport *ret_report) {
        Outbox *o = NULL;
        OutboxOpenReport report;
        int r = outbox_open(f->path, max_bytes, &o, &report);
        if (r < 0)
                fail_msg("outbox_open: %s", strerror(-r));
        if (ret_report)
                *ret_report = report;
        return o;
}

static inline uint64_t append_text(Outbox *o, const char *text) {
        uint64_t id = 0;
        int r = outbox_append(o, text, strlen(text), &id);
        if (r < 0)
                fail_msg("outbox_append: %s", strerror(-r));
        return id;
}

static inline void assert_record(const Outbox *o, uint64_t id, const char *expected) {
        _cleanup_free_ char *data = NULL;
        size_t len = 0;
        int r = outbox_read(o, id, &data, &len);
        if (r < 0)
                fail_msg("outbox_read(%" PRIu64 "): %s", id, strerror(-r));
        assert_int_equal(len, strlen(expected));
        assert_string_equal(data, expected);
}
