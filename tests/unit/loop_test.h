/* loop_test.h: what the unit tests of loop modules share: a bed (state directory, loop,
 * outbox), the events a module emitted (an emit_fn that records them) and a configuration
 * from text. Include after cmocka.h. */
#pragma once

#include <errno.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "events/outbox.h"
#include "../lib/temp_dir.h"

/* A module's world: its own state directory, a real loop, an outbox in that directory. */
typedef struct LoopBed {
        TempDir *dir;
        sd_event *event;
        Outbox *outbox;
} LoopBed;

static inline void loop_bed_open(LoopBed *b, const char *name) {
        assert_int_equal(temp_dir_new(name, NULL, &b->dir), 0);
        assert_int_equal(sd_event_new(&b->event), 0);
        assert_int_equal(outbox_open(b->dir->path, 0, &b->outbox, NULL), 0);
}

static inline void loop_bed_close(LoopBed *b) {
        outbox_free(b->outbox);
        sd_event_unref(b->event);
        temp_dir_free(b->dir);
        *b = (LoopBed) {};
}

#define EVENT_LOG_MAX 16

typedef struct EventLog {
        char *types[EVENT_LOG_MAX];
        cJSON *details[EVENT_LOG_MAX];
        size_t n;
} EventLog;

/* An emit_fn: userdata is the EventLog; takes the detail. */
static inline int event_log_record(void *userdata, const char *detail_type, cJSON *detail) {
        EventLog *log = userdata;
        if (log->n == EVENT_LOG_MAX) {
                cJSON_Delete(detail);
                return -ENOBUFS;
        }
        log->types[log->n] = strdup(detail_type);
        log->details[log->n++] = detail;
        return 0;
}

static inline void event_log_done(EventLog *log) {
        for (size_t i = 0; i < log->n; i++) {
                free(log->types[i]);
                cJSON_Delete(log->details[i]);
        }
        *log = (EventLog) {};
}

static inline size_t event_log_count(const EventLog *log, const char *detail_type) {
        size_t n = 0;
        for (size_t i = 0; i < log->n; i++)
                n += streq_ptr(log->types[i], detail_type);
        return n;
}

/* The first (last: the latest) event of this type, or NULL. */
static inline const cJSON *event_log_find(const EventLog *log, const char *detail_type, bool last) {
        for (size_t k = 0; k < log->n; k++) {
                size_t i = last ? log->n - 1 - k : k;
                if (streq_ptr(log->types[i], detail_type))
                        return log->details[i];
        }
        return NULL;
}

/* heald.ini from text; fails the test with the loader's error. Caller frees. */
static inline Config *config_from_text(const char *text) {
        Config *c = NULL;
        _cleanup_free_ char *error = NULL;
        int r = config_load_string(text, "heald.ini", &c, &error);
        if (r < 0)
                fail_msg("config: %s", error ? error : strerror(-r));
        return c;
}

/* The test's heald.ini on this bed: [agent] state_dir is the bed's directory, then sections.
 * Caller frees. */
static inline Config *loop_bed_config(const LoopBed *b, const char *sections) {
        char text[2048];
        int n = snprintf(text, sizeof text, "[agent]\nstate_dir = %s\n%s", b->dir->path, sections);
        assert_true(n > 0 && (size_t) n < sizeof text);
        return config_from_text(text);
}
