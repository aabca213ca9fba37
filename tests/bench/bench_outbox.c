/* bench_outbox.c: outbox throughput: appends/s, bursts/s, drain (read + remove in batches of 10) records/s, RSS. */
#include <dirent.h>
#include <inttypes.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>

#include "events/outbox.h"
#include "../lib/temp_dir.h"

#define RECORDS   10000
#define BATCH     10
#define PAYLOAD   600

static double seconds(void) {
        return (double) now_usec(CLOCK_MONOTONIC) / 1e6;
}

static long max_rss_kib(void) {
        struct rusage ru;
        return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_maxrss : -1;
}

static int fail(const char *what, int r) {
        fprintf(stderr, "bench_outbox: %s: %s\n", what, strerror(-r));
        return EXIT_FAILURE;
}

/* Drain everything pending as the daemon would: list a batch, read each, remove the batch;
 * with group > 0 the removals are synced once per group batches (several in flight). */
static int drain(Outbox *o, size_t group, size_t *ret_count) {
        uint64_t ids[BATCH];
        size_t n, total = 0, batches = 0;
        while ((n = outbox_list(o, 0, ids, BATCH)) > 0) {
                for (size_t i = 0; i < n; i++) {
                        _cleanup_free_ char *data = NULL;
                        int r = outbox_read(o, ids[i], &data, NULL);
                        if (r < 0)
                                return r;
                }
                int r = group > 0 ? outbox_remove_nosync(o, ids, n) : outbox_remove(o, ids, n);
                if (r < 0)
                        return r;
                if (group > 0 && ++batches % group == 0 && (r = outbox_sync(o)) < 0)
                        return r;
                total += n;
        }
        int r = outbox_sync(o);
        if (r < 0)
                return r;
        *ret_count = total;
        return 0;
}

int main(int argc, char **argv) {
        char dir[] = "/tmp/bench_outbox.XXXXXX";
        const char *base = argc > 1 ? argv[1] : NULL; /* optional: a directory on the disk to measure */
        char path[512];
        char payload[PAYLOAD];
        uint64_t id;
        size_t drained;
        int r;

        if (base)
                snprintf(path, sizeof path, "%s/bench_outbox.XXXXXX", base);
        else
                snprintf(path, sizeof path, "%s", dir);
        if (!mkdtemp(path))
                return fail("mkdtemp", -errno);
        memset(payload, 'e', sizeof payload);

        Outbox *o = NULL;
        r = outbox_open(path, 0, &o, NULL);
        if (r < 0)
                return fail("outbox_open", r);

        double t = seconds();
        for (size_t i = 0; i < RECORDS; i++)
                if ((r = outbox_append(o, payload, sizeof payload, &id)) < 0)
                        return fail("outbox_append", r);
        double append_s = seconds() - t;

        t = seconds();
        if ((r = drain(o, 0, &drained)) < 0)
                return fail("drain", r);
        double drain_s = seconds() - t;

        struct iovec burst[100];
        uint64_t ids[100];
        for (size_t i = 0; i < 100; i++)
                burst[i] = (struct iovec) { payload, sizeof payload };
        t = seconds();
        for (size_t i = 0; i < RECORDS; i += 100)
                if ((r = outbox_append_many(o, burst, 100, ids)) < 0)
                        return fail("outbox_append_many", r);
        double burst_s = seconds() - t;
        o = outbox_free(o);

        /* Reopen with 10k pending: what the daemon holds after a long outage. */
        t = seconds();
        OutboxOpenReport report;
        r = outbox_open(path, 0, &o, &report);
        if (r < 0)
                return fail("outbox_open (10k pending)", r);
        double open_s = seconds() - t;
        long rss = max_rss_kib();
        size_t drained2;
        t = seconds();
        if ((r = drain(o, 4, &drained2)) < 0)
                return fail("drain after reopen", r);
        double drain2_s = seconds() - t;
        o = outbox_free(o);
        remove_tree(path);

        printf("appends (one fdatasync each): %.0f/s\n", RECORDS / append_s);
        printf("appends (bursts of 100):      %.0f/s\n", RECORDS / burst_s);
        printf("drain (batches of %d, each synced): %.0f records/s (%zu records)\n", BATCH, (double) drained / drain_s, drained);
        printf("open with %" PRIu64 " pending:      %.1f ms\n", report.records, open_s * 1e3);
        printf("drain after reopen, one sync per 4 batches: %.0f records/s (%zu records)\n",
               (double) drained2 / drain2_s, drained2);
        printf("max RSS:                      %ld KiB\n", rss);
        return EXIT_SUCCESS;
}
