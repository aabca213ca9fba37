/* outbox_fill.c: fills STATE_DIR's outbox with N "Agent Heartbeat"-sized events, as heald
 * itself records them, so the drain benchmark starts from a known backlog.
 * Build: cc -O2 -Iagent $(pkg-config --cflags libcjson) tests/bench/outbox_fill.c build/libheald.a \
 *        $(pkg-config --libs libcurl libcrypto libcjson inih libsystemd) -o build/bench/outbox_fill
 * Usage: outbox_fill STATE_DIR N */
#include <sys/stat.h>
#include <sys/uio.h>
#include <time.h>

#include "events/event.h"
#include "events/outbox.h"

int main(int argc, char *argv[]) {
        if (argc != 3) {
                fprintf(stderr, "usage: outbox_fill STATE_DIR N\n");
                return 2;
        }
        long n = strtol(argv[2], NULL, 10);
        (void) mkdir(argv[1], 0700);
        Outbox *o = NULL;
        OutboxOpenReport report;
        int r = outbox_open(argv[1], 1024ULL * 1024 * 1024, &o, &report);
        if (r < 0) {
                fprintf(stderr, "outbox_open: %s\n", strerror(-r));
                return 1;
        }
        /* Appended in bursts, one fdatasync each, as heald records a burst: one sync per event
         * made filling 12000 events take 20 s of a test's time on a slow disk. */
        enum { BURST = 100 };
        for (long first = 1; first <= n && r >= 0; first += BURST) {
                struct iovec recs[BURST] = {};
                uint64_t ids[BURST];
                size_t k = 0;
                for (long i = first; i <= n && i < first + BURST && r >= 0; i++, k++) {
                        cJSON *d = cJSON_CreateObject();
                        cJSON_AddNumberToObject(d, "seq", (double) i);
                        cJSON_AddNumberToObject(d, "uptime_s", (double) i);
                        cJSON_AddNumberToObject(d, "outbox_depth", (double) i);
                        char *rec = NULL;
                        r = event_record_encode("Agent Heartbeat", d, now_usec(CLOCK_REALTIME), &rec);
                        cJSON_Delete(d);
                        recs[k] = (struct iovec) { rec, rec ? strlen(rec) : 0 };
                }
                if (r >= 0)
                        r = outbox_append_many(o, recs, k, ids);
                for (size_t i = 0; i < k; i++)
                        free(recs[i].iov_base);
        }
        if (r < 0)
                fprintf(stderr, "append: %s\n", strerror(-r));
        printf("outbox: %zu events\n", outbox_count(o));
        outbox_free(o);
        return r < 0;
}
