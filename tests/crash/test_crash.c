/* test_crash.c: power-loss crash consistency of the outbox, the command journal and policy.json:
 * record what the real code does to the disk, rebuild every image a power cut could leave at each
 * barrier (torn and reordered unsynced writes included), open each with the real code (and crash
 * it again while it recovers), and check the documented invariants. See tests/README.md. */
#define _GNU_SOURCE
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include <cjson/cJSON.h>

#include "commands/journal.h"
#include "events/outbox.h"
#include "heal/policy.h"
#include "powercut.h"
#include "util.h"
#include "../lib/temp_dir.h"

/* Images per crash point at first boot, and per crash point of a recovery; every how many
 * first-boot images a recovery is crashed too. Chosen to run in seconds under ASan. */
#define BUDGET          24
#define RECOVERY_EVERY  3
#define RECOVERY_BUDGET 6
#define NOT_YET         SIZE_MAX

/* ---- the harness ---- */

typedef struct Case Case;
struct Case {
        const char *name;
        void (*make_base)(Fs *base); /* NULL: an empty state directory */
        void (*run)(Case *c, const char *dir);
        /* Open the image at dir as the daemon does at start-up; NULL (why set) if that failed. */
        void *(*open_image)(Case *c, const char *dir, char *why, size_t size);
        /* Check the invariants of the image opened as handle, after a crash before operation
         * point of the run; closes handle. */
        bool (*verify)(Case *c, void *handle, size_t point, const char *dir, char *why, size_t size);
        bool crash_recovery; /* opening writes: crash it again while it recovers */
        void *state;
};

static size_t *marks;
static size_t n_marks;

/* An API call starts: a crash point of its own, so that what held before it is checked. */
static size_t call_start(void) {
        size_t p = recorder_position();
        size_t *m = realloc(marks, (n_marks + 1) * sizeof *m);
        if (!m)
                abort();
        marks = m;
        marks[n_marks++] = p;
        return p;
}

static _Noreturn void die(const char *what, int r) {
        fprintf(stderr, "test_crash: %s: %s\n", what, strerror(r < 0 ? -r : r));
        abort();
}

static void must(int r, const char *what) {
        if (r < 0)
                die(what, r);
}

typedef struct Run {
        Case *c;
        const Trace *trace;
        size_t point;
        char img[4200], img2[4200];
        size_t image_index;
        PowercutStats first, recovery;
        const Trace *recovery_trace;
        size_t recovery_point;
        size_t failures_shown;
        char first_failure[1024];
} Run;

static void show_failure(Run *run, const char *what, const char *why) {
        char op[512], op2[512], line[sizeof run->first_failure];
        if (run->failures_shown++ >= 3)
                return;
        op_describe(run->trace, run->point, op, sizeof op);
        if (run->recovery_trace)
                (void) snprintf(line, sizeof line, "power cut before op %zu (%s), %s, then again during recovery before %s: %s",
                                run->point, op, what, op_describe(run->recovery_trace, run->recovery_point, op2, sizeof op2), why);
        else
                (void) snprintf(line, sizeof line, "power cut before op %zu (%s), %s: %s", run->point, op, what, why);
        printf("  %s\n", line);
        if (!run->first_failure[0])
                memcpy(run->first_failure, line, sizeof line);
}

static bool check_image(Run *run, const char *dir, const char *what) {
        char why[512] = "";
        void *h = run->c->open_image(run->c, dir, why, sizeof why);
        if (!h || !run->c->verify(run->c, h, run->point, dir, why, sizeof why)) {
                show_failure(run, what, why);
                return false;
        }
        return true;
}

static bool visit_recovery_image(void *userdata, const Fs *image, const char *what) {
        Run *run = userdata;
        int r = fs_write_tree(image, run->img2);
        if (r < 0)
                die("writing a crash image", r);
        return check_image(run, run->img2, what);
}

/* Crash points: every barrier, every API call's start, and the end. */
static size_t crash_points(const Trace *t, const size_t *extra, size_t n_extra, size_t **ret) {
        size_t *p = calloc(t->n_ops + n_extra + 1, sizeof *p), n = 0;
        if (!p)
                abort();
        bool *is_point = calloc(t->n_ops + 1, sizeof *is_point);
        if (!is_point)
                abort();
        for (size_t i = 0; i < t->n_ops; i++)
                is_point[i] = t->ops[i].type == OP_SYNC;
        for (size_t i = 0; i < n_extra; i++)
                is_point[extra[i] < t->n_ops ? extra[i] : t->n_ops] = true;
        is_point[t->n_ops] = true;
        for (size_t i = 0; i <= t->n_ops; i++)
                if (is_point[i])
                        p[n++] = i;
        free(is_point);
        *ret = p;
        return n;
}

static bool visit_image(void *userdata, const Fs *image, const char *what) {
        Run *run = userdata;
        int r = fs_write_tree(image, run->img);
        if (r < 0)
                die("writing a crash image", r);
        if (!run->c->crash_recovery || run->image_index++ % RECOVERY_EVERY != 0)
                return check_image(run, run->img, what);

        /* Record the recovery, then crash it at each of its barriers. */
        char why[512] = "";
        Trace recovery = {};
        recorder_start(run->img, image);
        void *h = run->c->open_image(run->c, run->img, why, sizeof why);
        recorder_stop(&recovery, NULL);
        if (!h || !run->c->verify(run->c, h, run->point, run->img, why, sizeof why)) {
                show_failure(run, what, why);
                trace_done(&recovery);
                return false;
        }
        size_t *points, n = crash_points(&recovery, NULL, 0, &points);
        bool ok = true;
        run->recovery_trace = &recovery;
        for (size_t i = 0; i < n; i++) {
                run->recovery_point = points[i];
                PowercutStats s = powercut_images(image, &recovery, points[i], RECOVERY_BUDGET, points[i] * 7919 + 1,
                                                  visit_recovery_image, run);
                run->recovery.images += s.images;
                run->recovery.failed += s.failed;
                ok = ok && s.failed == 0;
        }
        run->recovery_trace = NULL;
        free(points);
        trace_done(&recovery);
        return ok;
}

static size_t total_states;
static bool verbose;

/* Returns true when the case passed; prints its PASS or FAIL line. */
static bool run_case(Case *c, const char *tmp) {
        Run run = { .c = c };
        char dir[4200];
        (void) snprintf(dir, sizeof dir, "%s/%s", tmp, c->name);
        (void) snprintf(run.img, sizeof run.img, "%s/%s.image", tmp, c->name);
        (void) snprintf(run.img2, sizeof run.img2, "%s/%s.recovery", tmp, c->name);

        _cleanup_(fs_freep) Fs *base = fs_new();
        if (c->make_base)
                c->make_base(base);
        must(fs_write_tree(base, dir), "writing the base tree");

        Trace trace = {};
        _cleanup_(fs_freep) Fs *live = NULL;
        n_marks = 0;
        recorder_start(dir, base);
        c->run(c, dir);
        recorder_stop(&trace, &live);

        /* The recorder must have seen every change, or the images would be wrong. */
        _cleanup_(fs_freep) Fs *on_disk = fs_read_tree(dir);
        bool recorded_all = on_disk && fs_hash(on_disk) == fs_hash(live);

        run.trace = &trace;
        size_t n_ops = trace.n_ops;
        for (size_t i = 0; verbose && i < n_ops; i++) {
                char op[512];
                printf("  op %zu: %s\n", i, op_describe(&trace, i, op, sizeof op));
        }
        size_t *points, n = crash_points(&trace, marks, n_marks, &points);
        for (size_t i = 0; recorded_all && i < n; i++) {
                run.point = points[i];
                PowercutStats s = powercut_images(base, &trace, points[i], BUDGET, points[i] * 104729 + 17, visit_image, &run);
                run.first.images += s.images;
                run.first.failed += s.failed;
        }
        free(points);
        trace_done(&trace);
        remove_tree(dir);
        remove_tree(run.img);
        remove_tree(run.img2);

        size_t states = run.first.images + run.recovery.images, failed = run.first.failed + run.recovery.failed;
        total_states += states;
        if (!recorded_all) {
                printf("FAIL %s: the recorder missed an operation (the tree on disk differs from the recorded one)\n", c->name);
                return false;
        }
        if (failed > 0) {
                printf("FAIL %s: %zu of %zu crash states break an invariant (%zu at first boot, %zu crashing again during recovery); first: %s\n",
                       c->name, failed, states, run.first.failed, run.recovery.failed, run.first_failure);
                return false;
        }
        printf("PASS %s (%zu ops, %zu crash states: %zu at first boot, %zu crashing again during recovery)\n", c->name,
               n_ops, states, run.first.images, run.recovery.images);
        return true;
}

static void set_why(char *why, size_t size, const char *fmt, ...) _printf_(3, 4);
static void set_why(char *why, size_t size, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(why, size, fmt, ap);
        va_end(ap);
}

/* ---- the outbox ---- */

typedef struct OutboxRecord {
        size_t len;
        uint64_t id;                     /* once the append returned */
        size_t append_start, append_end; /* append_end NOT_YET: never returned */
        size_t gone_start, gone_end;     /* removed, dead-lettered or dropped: the call started, durable */
        bool dropped, dead_lettered, unsynced_removal;
        bool unsynced_append; /* outbox_append_nosync(): append_end is when a sync made it durable */
} OutboxRecord;

typedef struct OutboxReported {
        uint64_t n;
        size_t start, end;
} OutboxReported;

typedef struct OutboxCase {
        uint64_t max_bytes;
        Outbox *o; /* during the run */
        OutboxRecord *records;
        size_t n_records;
        OutboxReported reported[8];
        size_t n_reported;
} OutboxCase;

/* The payload of record seq: its number and a filler, so that any mix-up shows. */
static char *outbox_payload(size_t seq, size_t len) {
        char *p = malloc(len + 1);
        if (!p)
                abort();
        int n = snprintf(p, len + 1, "rec-%08zu:", seq);
        for (size_t i = (size_t) n; i < len; i++)
                p[i] = (char) ('a' + (seq + i) % 26);
        p[len] = 0;
        return p;
}

static OutboxRecord *outbox_record_by_id(OutboxCase *oc, uint64_t id) {
        for (size_t i = 0; i < oc->n_records; i++)
                if (oc->records[i].append_end != NOT_YET && oc->records[i].id == id)
                        return &oc->records[i];
        return NULL;
}

static size_t outbox_list_all(const Outbox *o, uint64_t **ret) {
        size_t n = outbox_count(o);
        uint64_t *ids = calloc(n + 1, sizeof *ids);
        if (!ids)
                abort();
        *ret = ids;
        return outbox_list(o, 0, ids, n);
}

/* Removals made with outbox_remove_nosync() are durable once a syncing call returned. */
static void outbox_removals_synced(OutboxCase *oc, size_t end) {
        for (size_t i = 0; i < oc->n_records; i++)
                if (oc->records[i].unsynced_removal && oc->records[i].gone_end == NOT_YET)
                        oc->records[i].gone_end = end;
}

/* Appends made with outbox_append_nosync() are durable once a syncing call returned. */
static void outbox_appends_synced(OutboxCase *oc, size_t end) {
        for (size_t i = 0; i < oc->n_records; i++)
                if (oc->records[i].unsynced_append && oc->records[i].append_end == NOT_YET)
                        oc->records[i].append_end = end;
}

/* Append n records of the given lengths with one call; notes the drops it made. */
static void outbox_run_append(OutboxCase *oc, const size_t *lens, size_t n) {
        uint64_t *before;
        size_t n_before = outbox_list_all(oc->o, &before);
        OutboxRecord *grown = realloc(oc->records, (oc->n_records + n) * sizeof *grown);
        struct iovec *iov = calloc(n, sizeof *iov);
        uint64_t *ids = calloc(n, sizeof *ids);
        if (!grown || !iov || !ids)
                abort();
        oc->records = grown;
        size_t first = oc->n_records;
        for (size_t i = 0; i < n; i++)
                iov[i] = (struct iovec) { outbox_payload(first + i, lens[i]), lens[i] };

        size_t start = call_start();
        must(outbox_append_many(oc->o, iov, n, ids), "outbox_append_many");
        size_t end = recorder_position();
        outbox_appends_synced(oc, end);
        for (size_t i = 0; i < n; i++) {
                oc->records[oc->n_records++] = (OutboxRecord) {
                        .len = lens[i], .id = ids[i], .append_start = start, .append_end = end,
                        .gone_start = NOT_YET, .gone_end = NOT_YET,
                };
                free(iov[i].iov_base);
        }

        uint64_t *after;
        size_t n_after = outbox_list_all(oc->o, &after);
        for (size_t i = 0, k = 0; i < n_before; i++) {
                while (k < n_after && after[k] < before[i])
                        k++;
                if (k < n_after && after[k] == before[i])
                        continue;
                OutboxRecord *r = outbox_record_by_id(oc, before[i]);
                *r = (OutboxRecord) { .len = r->len, .id = r->id, .append_start = r->append_start, .append_end = r->append_end,
                                      .gone_start = start, .gone_end = end, .dropped = true };
        }
        free(before);
        free(after);
        free(iov);
        free(ids);
}

/* A burst of n records of len bytes each, with one call. */
static void outbox_run_append_alike(OutboxCase *oc, size_t n, size_t len) {
        size_t *lens = calloc(n, sizeof *lens);
        if (!lens)
                abort();
        for (size_t i = 0; i < n; i++)
                lens[i] = len;
        outbox_run_append(oc, lens, n);
        free(lens);
}

static void outbox_run_append_one(OutboxCase *oc, size_t len) {
        outbox_run_append(oc, &len, 1);
}

/* Remove the records with sequence numbers first..last-1. */
static void outbox_run_remove(OutboxCase *oc, size_t first, size_t last, bool sync) {
        uint64_t *ids = calloc(last - first, sizeof *ids);
        if (!ids)
                abort();
        for (size_t i = first; i < last; i++)
                ids[i - first] = oc->records[i].id;
        size_t start = call_start();
        int r = sync ? outbox_remove(oc->o, ids, last - first) : outbox_remove_nosync(oc->o, ids, last - first);
        must(r, "outbox_remove");
        size_t end = recorder_position();
        for (size_t i = first; i < last; i++) {
                oc->records[i].gone_start = start;
                oc->records[i].unsynced_removal = !sync;
        }
        if (sync) {
                for (size_t i = first; i < last; i++)
                        oc->records[i].gone_end = end;
                outbox_removals_synced(oc, end);
        }
        free(ids);
}

/* A write-ahead record: no drops here (no max_bytes in its case). */
static void outbox_run_append_nosync(OutboxCase *oc, size_t len) {
        OutboxRecord *grown = realloc(oc->records, (oc->n_records + 1) * sizeof *grown);
        if (!grown)
                abort();
        oc->records = grown;
        _cleanup_free_ char *payload = outbox_payload(oc->n_records, len);
        uint64_t id;
        size_t start = call_start();
        must(outbox_append_nosync(oc->o, payload, len, &id), "outbox_append_nosync");
        oc->records[oc->n_records++] = (OutboxRecord) {
                .len = len, .id = id, .append_start = start, .append_end = NOT_YET,
                .gone_start = NOT_YET, .gone_end = NOT_YET, .unsynced_append = true,
        };
}

static void outbox_run_sync(OutboxCase *oc) {
        call_start();
        must(outbox_sync(oc->o), "outbox_sync");
        outbox_removals_synced(oc, recorder_position());
        outbox_appends_synced(oc, recorder_position());
}

static void outbox_run_open(OutboxCase *oc, const char *dir) {
        call_start();
        must(outbox_open(dir, oc->max_bytes, &oc->o, NULL), "outbox_open");
}

static void outbox_run_close(OutboxCase *oc) {
        call_start();
        oc->o = outbox_free(oc->o);
        outbox_removals_synced(oc, recorder_position());
        outbox_appends_synced(oc, recorder_position());
}

static void outbox_run_dead_letter(OutboxCase *oc, size_t seq) {
        size_t start = call_start();
        must(outbox_dead_letter(oc->o, oc->records[seq].id, "malformed detail", 1024 * 1024), "outbox_dead_letter");
        oc->records[seq].gone_start = start;
        oc->records[seq].gone_end = recorder_position();
        oc->records[seq].dead_lettered = true;
}

static void outbox_run_reported(OutboxCase *oc, uint64_t n) {
        size_t start = call_start();
        must(outbox_dropped_reported(oc->o, n), "outbox_dropped_reported");
        if (oc->n_reported == ELEMENTSOF(oc->reported))
                abort();
        oc->reported[oc->n_reported++] = (OutboxReported) { n, start, recorder_position() };
        outbox_removals_synced(oc, recorder_position());
}

/* Appends (one and many), removals synced and not, a rollover inside a burst, segment
 * deletion, compaction at open and by size, dead letters, restarts. */
static void outbox_run_main(Case *c, const char *dir) {
        OutboxCase *oc = c->state;
        outbox_run_open(oc, dir);
        outbox_run_append_one(oc, 40);
        outbox_run_append_one(oc, 700); /* spans sectors: may tear */
        size_t lens3[] = { 30, 1200, 50 };
        outbox_run_append(oc, lens3, 3);
        outbox_run_remove(oc, 0, 1, true);
        outbox_run_remove(oc, 1, 2, false);
        outbox_run_remove(oc, 2, 3, false);
        outbox_run_sync(oc);

        /* A burst that rolls over to a new segment in the middle (1 MiB each), then one removal
         * of 8192+ ids: an ack record of 64 KiB, the old segment deleted, the log compacted. */
        size_t burst_first = oc->n_records;
        outbox_run_append_alike(oc, 8300, 100);
        outbox_run_remove(oc, 3, burst_first + 8200, true);
        outbox_run_remove(oc, burst_first + 8200, burst_first + 8202, true); /* into the compacted log */
        outbox_run_append_one(oc, 60);

        outbox_run_close(oc); /* a restart: compaction at open, a new segment for the next append */
        outbox_run_open(oc, dir);
        outbox_run_remove(oc, burst_first + 8202, burst_first + 8204, true); /* before any other sync */
        outbox_run_append_one(oc, 45);
        outbox_run_dead_letter(oc, oc->n_records - 1);
        outbox_run_remove(oc, burst_first + 8204, burst_first + 8210, false);
        outbox_run_close(oc); /* syncs the unsynced removals */
        outbox_run_open(oc, dir);
        size_t lens2[] = { 33, 34 };
        outbox_run_append(oc, lens2, 2);
        outbox_run_remove(oc, burst_first + 8210, burst_first + 8300, true);
        outbox_run_close(oc);
}

/* max_bytes: appends drop the oldest records (counted), the caller reports drops. */
static void outbox_run_capped(Case *c, const char *dir) {
        OutboxCase *oc = c->state;
        outbox_run_open(oc, dir);
        for (size_t i = 0; i < 5; i++)
                outbox_run_append_one(oc, 200); /* 228 bytes each on disk: the fifth drops the first */
        outbox_run_remove(oc, 1, 2, true);
        outbox_run_reported(oc, 1);
        outbox_run_close(oc);
        outbox_run_open(oc, dir);
        size_t lens[] = { 300, 200 };
        outbox_run_append(oc, lens, 2); /* drops */
        outbox_run_remove(oc, 4, 5, false);
        outbox_run_append_one(oc, 150);
        outbox_run_reported(oc, 1);
        outbox_run_close(oc);
}

/* A remediation's records as heald writes them: Check Failed and Remediation Started written
 * ahead (the action is handed over after them: a crash point), then synced; a write-ahead
 * record followed by a synced append, by a removal, by a close; a rollover with one pending. */
static void outbox_run_write_ahead(Case *c, const char *dir) {
        OutboxCase *oc = c->state;
        outbox_run_open(oc, dir);
        outbox_run_append_one(oc, 40);
        outbox_run_append_nosync(oc, 300);
        outbox_run_append_nosync(oc, 900); /* spans sectors: may tear */
        call_start();                      /* the action is handed over here */
        outbox_run_sync(oc);
        outbox_run_append_nosync(oc, 50);
        outbox_run_append_one(oc, 60); /* its fdatasync covers the one before */
        outbox_run_append_nosync(oc, 70);
        outbox_run_remove(oc, 0, 2, true);
        outbox_run_close(oc);
        outbox_run_open(oc, dir);
        outbox_run_append_nosync(oc, 80); /* 108 bytes on disk */
        /* Fill the segment to just under 1 MiB (128 bytes a record), end it with a write-ahead
         * record, and roll over with the next append: the old segment must be synced first. */
        outbox_run_append_alike(oc, 8191, 100);
        outbox_run_append_nosync(oc, 90);
        outbox_run_append_one(oc, 100);
        outbox_run_append_nosync(oc, 110);
        outbox_run_sync(oc);
        outbox_run_close(oc);
}

static void *outbox_open_image(Case *c, const char *dir, char *why, size_t size) {
        OutboxCase *oc = c->state;
        Outbox *o = NULL;
        OutboxOpenReport report;
        int r = outbox_open(dir, oc->max_bytes, &o, &report);
        if (r < 0)
                set_why(why, size, "outbox_open() failed: %s", strerror(-r));
        return o;
}

static bool dead_letter_has(const char *dir, uint64_t id) {
        char path[4200], key[64];
        _cleanup_free_ char *text = NULL;
        (void) snprintf(path, sizeof path, "%s/outbox/dead-letter.jsonl", dir);
        (void) snprintf(key, sizeof key, "{\"id\":%" PRIu64 ",", id);
        return read_file_full(path, 1024 * 1024, &text, NULL) >= 0 && strstr(text, key);
}

/* No returned append lost, no durable removal back, no id reused, every record intact. */
static bool outbox_check(OutboxCase *oc, Outbox *o, size_t point, const char *dir, char *why, size_t size) {
        uint64_t *ids;
        size_t n = outbox_list_all(o, &ids);
        bool *present = calloc(oc->n_records + 1, sizeof *present);
        if (!present)
                abort();
        bool ok = false;
        uint64_t max_id = 0;

        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *data = NULL;
                size_t len = 0, seq = SIZE_MAX;
                char *end = NULL;
                int r = outbox_read(o, ids[i], &data, &len);
                if (r < 0) {
                        set_why(why, size, "pending id %" PRIu64 " cannot be read: %s", ids[i], strerror(-r));
                        goto out;
                }
                if (strncmp(data, "rec-", 4) == 0)
                        seq = strtoull(data + 4, &end, 10);
                if (!end || *end != ':' || seq >= oc->n_records ||
                    oc->records[seq].append_start > point) {
                        set_why(why, size, "pending id %" PRIu64 " holds a record never appended", ids[i]);
                        goto out;
                }
                const OutboxRecord *rec = &oc->records[seq];
                _cleanup_free_ char *expected = outbox_payload(seq, rec->len);
                if (len != rec->len || memcmp(data, expected, len) != 0 || present[seq] ||
                    (rec->append_end <= point && rec->id != ids[i])) {
                        set_why(why, size, "pending id %" PRIu64 ": record %zu damaged, duplicated or under another id",
                                ids[i], seq);
                        goto out;
                }
                present[seq] = true;
                if (ids[i] > max_id)
                        max_id = ids[i];
        }

        uint64_t dropped_at_least = 0, reported = 0;
        size_t missing = 0;
        const OutboxRecord *first_missing = NULL;
        for (size_t seq = 0; seq < oc->n_records; seq++) {
                const OutboxRecord *rec = &oc->records[seq];
                if (rec->append_end > point)
                        continue;
                if (rec->id > max_id)
                        max_id = rec->id;
                if (rec->gone_end <= point && present[seq]) {
                        set_why(why, size, "id %" PRIu64 " was %s durably and came back", rec->id,
                                rec->dropped ? "dropped" : "removed");
                        goto out;
                }
                if (rec->dropped && rec->gone_end <= point)
                        dropped_at_least++;
                if (rec->dead_lettered && rec->gone_end <= point && !dead_letter_has(dir, rec->id)) {
                        set_why(why, size, "id %" PRIu64 " was dead-lettered but its line is gone", rec->id);
                        goto out;
                }
                if (rec->gone_start > point && !present[seq]) {
                        missing++;
                        first_missing = first_missing ? first_missing : rec;
                }
        }
        for (size_t i = 0; i < oc->n_reported; i++)
                if (oc->reported[i].start <= point)
                        reported += oc->reported[i].n;
        dropped_at_least = dropped_at_least > reported ? dropped_at_least - reported : 0;
        /* Opening may drop for max_bytes what a lost unsynced removal left over: counted. */
        if (missing > 0 && (oc->max_bytes == 0 || outbox_dropped(o) < dropped_at_least + missing)) {
                set_why(why, size, "append of id %" PRIu64 " returned but the record is lost (%zu missing)",
                        first_missing->id, missing);
                goto out;
        }
        if (outbox_dropped(o) < dropped_at_least) {
                set_why(why, size, "dropped count %" PRIu64 " < %" PRIu64 " durably dropped and not reported",
                        outbox_dropped(o), dropped_at_least);
                goto out;
        }

        uint64_t probe;
        int r = outbox_append(o, "probe", 5, &probe);
        if (r < 0) {
                set_why(why, size, "append after recovery failed: %s", strerror(-r));
                goto out;
        }
        if (probe <= max_id) {
                set_why(why, size, "id %" PRIu64 " handed out again (ids up to %" PRIu64 " were in use)", probe, max_id);
                goto out;
        }
        ok = true;
out:
        free(present);
        free(ids);
        return ok;
}

static bool outbox_verify(Case *c, void *handle, size_t point, const char *dir, char *why, size_t size) {
        Outbox *o = handle;
        bool ok = outbox_check(c->state, o, point, dir, why, size);
        outbox_free(o);
        return ok;
}

/* ---- the command journal ---- */

typedef struct JournalCommand {
        char id[16];
        const char *action, *context, *result;
        size_t begin_start, begin_end, finish_start, finish_end, pruned_start, pruned_end;
} JournalCommand;

typedef struct JournalCase {
        CommandJournal *j;
        bool directory_lost; /* the image had no state_dir/commands (open creates it) */
        JournalCommand commands[8];
        size_t n_commands;
} JournalCase;

static void journal_run_open(JournalCase *jc, const char *dir) {
        call_start();
        must(command_journal_open(dir, &jc->j, NULL), "command_journal_open");
        command_journal_set_max_records(jc->j, 3);
}

static void journal_run_close(JournalCase *jc) {
        call_start();
        jc->j = command_journal_free(jc->j);
}

/* The commands that were there and are gone now were pruned by the call between start and now. */
static void journal_note_pruned(JournalCase *jc, size_t start) {
        for (size_t i = 0; i < jc->n_commands; i++) {
                CommandRecord rec;
                JournalCommand *cmd = &jc->commands[i];
                if (cmd->pruned_end != NOT_YET || cmd->begin_start == start)
                        continue;
                int r = command_journal_lookup(jc->j, cmd->id, &rec);
                if (r == -ENOENT) {
                        cmd->pruned_start = start;
                        cmd->pruned_end = recorder_position();
                } else {
                        must(r, "command_journal_lookup");
                        command_record_done(&rec);
                }
        }
}

static void journal_run_begin(JournalCase *jc, const char *action, const char *context) {
        JournalCommand *cmd = &jc->commands[jc->n_commands++];
        *cmd = (JournalCommand) { .action = action, .context = context, .finish_start = NOT_YET,
                                  .finish_end = NOT_YET, .pruned_start = NOT_YET, .pruned_end = NOT_YET };
        (void) snprintf(cmd->id, sizeof cmd->id, "cmd-%zu", jc->n_commands);
        cmd->begin_start = call_start();
        must(command_journal_begin(jc->j, cmd->id, action, context), "command_journal_begin");
        cmd->begin_end = recorder_position();
        journal_note_pruned(jc, cmd->begin_start); /* making room prunes the oldest finished commands */
}

static void journal_run_prune(JournalCase *jc, usec_t now) {
        size_t start = call_start();
        must(command_journal_prune(jc->j, now), "command_journal_prune");
        journal_note_pruned(jc, start);
}

static void journal_run_finish(JournalCase *jc, size_t index, const char *result) {
        JournalCommand *cmd = &jc->commands[index];
        cmd->result = result;
        cmd->finish_start = call_start();
        must(command_journal_finish(jc->j, cmd->id, result), "command_journal_finish");
        cmd->finish_end = recorder_position();
}

/* Begins, finishes, restarts, begins that prune to make room (max_records 3), a prune by age. */
static void journal_run(Case *c, const char *dir) {
        JournalCase *jc = c->state;
        journal_run_open(jc, dir);
        journal_run_begin(jc, "reboot", "{\"boot_id\":\"b-1\"}");
        journal_run_finish(jc, 0, "{\"status\":\"succeeded\"}");
        journal_run_begin(jc, "restart-unit", NULL);
        journal_run_close(jc);
        journal_run_open(jc, dir);
        journal_run_finish(jc, 1, "{\"status\":\"failed\",\"code\":3}");
        journal_run_begin(jc, "reboot", "{\"boot_id\":\"b-2\"}");
        journal_run_begin(jc, "prepare-stop", NULL); /* full: prunes cmd-1 */
        journal_run_finish(jc, 2, "{\"status\":\"succeeded\"}");
        journal_run_prune(jc, now_usec(CLOCK_REALTIME) + COMMAND_JOURNAL_RETENTION); /* the hourly prune, a week on */
        journal_run_close(jc);
        journal_run_open(jc, dir);
        journal_run_begin(jc, "reboot", NULL); /* prunes cmd-2 */
        journal_run_close(jc);
}

static void journal_base_with_directory(Fs *base) {
        (void) fs_add(base, 0, "commands", true);
}

static void *journal_open_image(Case *c, const char *dir, char *why, size_t size) {
        JournalCase *jc = c->state;
        CommandJournal *j = NULL;
        char path[4200];
        struct stat st;
        (void) snprintf(path, sizeof path, "%s/commands", dir);
        jc->directory_lost = stat(path, &st) < 0;
        CommandJournalReport report;
        int r = command_journal_open(dir, &j, &report);
        if (r < 0) {
                set_why(why, size, "command_journal_open() failed: %s", strerror(-r));
                return NULL;
        }
        if (report.corrupt > 0) { /* atomic saves leave the old record or the new one, never a bad one */
                set_why(why, size, "a record is corrupt: %s", report.first_problem);
                return command_journal_free(j);
        }
        return j;
}

static bool journal_check_command(const JournalCase *jc, CommandJournal *j, const JournalCommand *cmd, size_t point,
                                  char *why, size_t size) {
        if (cmd->begin_start > point)
                return true;
        CommandRecord rec = {};
        int r = command_journal_lookup(j, cmd->id, &rec);
        bool present = r >= 0, finished = present && rec.state == COMMAND_RECORD_FINISHED;
        bool content_ok = !present || (streq_ptr(rec.action, cmd->action) && streq_ptr(rec.context_json, cmd->context) &&
                                       (!finished || streq_ptr(rec.result_json, cmd->result)));
        command_record_done(&rec);
        if (r < 0 && r != -ENOENT) {
                set_why(why, size, "lookup of %s failed: %s", cmd->id, strerror(-r));
                return false;
        }
        if (!content_ok) {
                set_why(why, size, "the record of %s does not hold what was written", cmd->id);
                return false;
        }
        if (cmd->pruned_end <= point) {
                if (present)
                        set_why(why, size, "%s was pruned durably and came back", cmd->id);
                return !present;
        }
        if (cmd->begin_end > point || cmd->pruned_start <= point) /* in flight: either way */
                return true;
        if (!present) {
                set_why(why, size, "command_journal_begin(\"%s\") returned but the record is lost%s", cmd->id,
                        jc->directory_lost ? " with the whole state_dir/commands directory" : "");
                return false;
        }
        if (cmd->finish_end <= point && !finished) {
                set_why(why, size, "command_journal_finish(\"%s\") returned but the record is in progress", cmd->id);
                return false;
        }
        if (cmd->finish_start > point && finished) {
                set_why(why, size, "%s is finished before it was finished", cmd->id);
                return false;
        }
        return true;
}

static bool journal_verify(Case *c, void *handle, size_t point, const char *dir, char *why, size_t size) {
        JournalCase *jc = c->state;
        CommandJournal *j = handle;
        bool ok = true;
        (void) dir;
        for (size_t i = 0; ok && i < jc->n_commands; i++)
                ok = journal_check_command(jc, j, &jc->commands[i], point, why, size);
        command_journal_free(j);
        return ok;
}

/* ---- policy.json (the remediation budgets) ---- */

#define POLICY_FILE "policy.json"

typedef struct PolicySave {
        char *text;
        size_t start, end;
} PolicySave;

typedef struct PolicyCase {
        PolicySave saves[8];
        size_t n_saves;
} PolicyCase;

/* As the monitor saves it: {"checks":{"<name>":<policy_to_json()>}}. */
static char *policy_file_text(const PolicyState *s) {
        cJSON *root = cJSON_CreateObject(), *checks = cJSON_AddObjectToObject(root, "checks"), *j = NULL;
        if (!checks || policy_to_json(s, &j) < 0 || !cJSON_AddItemToObject(checks, "disk", j))
                abort();
        char *text = cJSON_PrintUnformatted(root);
        cJSON_Delete(root);
        if (!text)
                abort();
        return text;
}

/* Actions taken and recorded, one save after each, with a restart (a reload) between. */
static void policy_run(Case *c, const char *dir) {
        PolicyCase *pc = c->state;
        PolicyConfig config = { .fail_after = 1, .recover_after = 1, .has_action = true, .max_actions = 3,
                                .action_window = USEC_PER_HOUR, .verify_timeout = USEC_PER_MINUTE };
        PolicyState s;
        policy_init(&s);
        usec_t now = 1767225600 * USEC_PER_SEC;
        for (size_t k = 0; k < 5; k++, now += USEC_PER_MINUTE) {
                (void) policy_on_result(&s, &config, false, false, now);
                (void) policy_on_action_done(&s, &config, true, now + USEC_PER_SEC);
                (void) policy_on_result(&s, &config, true, false, now + 2 * USEC_PER_SEC);
                PolicySave *save = &pc->saves[pc->n_saves++];
                save->text = policy_file_text(&s);
                save->start = call_start();
                must(write_file_atomic(dir, POLICY_FILE, save->text, strlen(save->text)), "write_file_atomic");
                save->end = recorder_position();
                if (k == 2) { /* a restart: the monitor loads what it saved */
                        char path[4200];
                        _cleanup_free_ char *text = NULL;
                        (void) snprintf(path, sizeof path, "%s/" POLICY_FILE, dir);
                        must(read_file_full(path, 1024 * 1024, &text, NULL), "read_file_full");
                        cJSON *root = cJSON_Parse(text);
                        policy_init(&s);
                        policy_from_json(&s, cJSON_GetObjectItemCaseSensitive(cJSON_GetObjectItemCaseSensitive(root, "checks"), "disk"));
                        cJSON_Delete(root);
                }
        }
}

typedef struct PolicyImage {
        int r;
        char *text;
} PolicyImage;

static void *policy_open_image(Case *c, const char *dir, char *why, size_t size) {
        (void) c, (void) why, (void) size;
        char path[4200];
        PolicyImage *img = calloc(1, sizeof *img);
        if (!img)
                abort();
        (void) snprintf(path, sizeof path, "%s/" POLICY_FILE, dir);
        img->r = read_file_full(path, 1024 * 1024, &img->text, NULL);
        return img;
}

/* The file is the last save that returned or one in flight; missing only before the first. */
static bool policy_verify(Case *c, void *handle, size_t point, const char *dir, char *why, size_t size) {
        PolicyCase *pc = c->state;
        PolicyImage *img = handle;
        (void) dir;
        bool ok = false, any_returned = false;
        for (size_t i = 0; i < pc->n_saves; i++) {
                const PolicySave *s = &pc->saves[i];
                bool latest = s->end <= point && (i + 1 == pc->n_saves || pc->saves[i + 1].end > point);
                bool in_flight = s->start <= point && s->end > point;
                any_returned = any_returned || s->end <= point;
                if ((latest || in_flight) && img->r >= 0 && streq_ptr(img->text, s->text))
                        ok = true;
        }
        if (img->r == -ENOENT && !any_returned)
                ok = true;
        if (!ok)
                set_why(why, size, "%s %s", POLICY_FILE,
                        img->r == -ENOENT ? "is gone after a save returned"
                        : img->r < 0      ? "cannot be read"
                                          : "is neither the last save that returned nor one in flight");
        free(img->text);
        free(img);
        return ok;
}

int main(int argc, char **argv) {
        const char *only = NULL;
        for (int i = 1; i < argc; i++) {
                if (streq_ptr(argv[i], "-v"))
                        verbose = true;
                else if (streq_ptr(argv[i], "-k") && i + 1 < argc)
                        only = argv[++i];
                else {
                        fprintf(stderr, "usage: %s [-v] [-k SUBSTRING]\n", argv[0]);
                        return 2;
                }
        }
        OutboxCase outbox_main = {}, outbox_capped = { .max_bytes = 1000 }, outbox_write_ahead = {};
        JournalCase journal = {}, journal_fresh = {};
        PolicyCase policy = {};
        Case cases[] = {
                { "outbox", NULL, outbox_run_main, outbox_open_image, outbox_verify, true, &outbox_main },
                { "outbox_max_bytes", NULL, outbox_run_capped, outbox_open_image, outbox_verify, true, &outbox_capped },
                { "outbox_write_ahead", NULL, outbox_run_write_ahead, outbox_open_image, outbox_verify, true, &outbox_write_ahead },
                { "command_journal", journal_base_with_directory, journal_run, journal_open_image, journal_verify, true, &journal },
                { "command_journal_fresh_state_dir", NULL, journal_run, journal_open_image, journal_verify, true, &journal_fresh },
                { "policy_file", NULL, policy_run, policy_open_image, policy_verify, false, &policy },
        };

        TempDir *root = NULL;
        must(temp_dir_new("heald-crash", NULL, &root), "making the test's directory");

        size_t passed = 0, failed = 0;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                if (only && !strstr(cases[i].name, only))
                        continue;
                if (run_case(&cases[i], root->path))
                        passed++;
                else
                        failed++;
                fflush(stdout);
        }
        temp_dir_free(root);
        free(marks);
        free(outbox_main.records);
        free(outbox_capped.records);
        free(outbox_write_ahead.records);
        for (size_t i = 0; i < policy.n_saves; i++)
                free(policy.saves[i].text);
        printf("checked %zu crash states\n", total_states);
        printf("%zu passed, %zu failed, 0 skipped\n", passed, failed);
        return failed > 0 ? 1 : 0;
}
