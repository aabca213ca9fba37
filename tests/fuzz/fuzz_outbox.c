/* fuzz_outbox.c: arbitrary segment and ack-log bytes: open, read, append, remove and reopen must never crash, leak or lose an append. */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "events/outbox.h"
#include "../lib/temp_dir.h"

/* Input: [u32 little-endian n][n bytes of acks.log][the rest: one segment file]. Inputs too
 * short for that are a segment file alone. */
static void split_input(const uint8_t *data, size_t size, const uint8_t **ret_acks, size_t *ret_acks_len,
                        const uint8_t **ret_segment, size_t *ret_segment_len) {
        size_t n = size >= 4 ? (size_t) data[0] | (size_t) data[1] << 8 | (size_t) data[2] << 16 | (size_t) data[3] << 24 : SIZE_MAX;
        if (n > size - 4 || size < 4) {
                *ret_acks = NULL;
                *ret_acks_len = 0;
                *ret_segment = data;
                *ret_segment_len = size;
                return;
        }
        *ret_acks = data + 4;
        *ret_acks_len = n;
        *ret_segment = data + 4 + n;
        *ret_segment_len = size - 4 - n;
}

static void write_file(const char *dir, const char *name, const uint8_t *data, size_t len) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", dir, name);
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        while (len > 0) {
                ssize_t k = write(fd, data, len);
                if (k <= 0)
                        abort();
                data += k;
                len -= (size_t) k;
        }
        close(fd);
}

static Outbox *open_or_die(const char *dir, uint64_t max_bytes) {
        Outbox *o = NULL;
        OutboxOpenReport report;
        /* Damage is reported, never fatal: only running out of memory may fail here. */
        int r = outbox_open(dir, max_bytes, &o, &report);
        if (r == -ENOMEM)
                return NULL;
        if (r < 0 || report.records != outbox_count(o))
                abort();
        return o;
}

/* Read everything, append, remove, dead-letter, reopen: the append must still be there. */
static void exercise(const char *dir, uint64_t max_bytes) {
        static const char fresh[] = "{\"fuzz\":\"appended after open\"}";
        uint64_t ids[64], id;

        Outbox *o = open_or_die(dir, max_bytes);
        if (!o)
                return;
        size_t n = outbox_list(o, 0, ids, ELEMENTSOF(ids));
        for (size_t i = 0; i < n; i++) {
                _cleanup_free_ char *payload = NULL;
                size_t len;
                if (outbox_read(o, ids[i], &payload, &len) < 0 || payload[len] != 0)
                        abort();
        }
        int r = outbox_append(o, fresh, strlen(fresh), &id);
        if (r == -EOVERFLOW) { /* a checksummed state record claimed ids near UINT64_MAX */
                outbox_free(o);
                return;
        }
        if (r < 0)
                abort();
        (void) outbox_remove(o, ids, n / 2);
        if (n > n / 2)
                (void) outbox_dead_letter(o, ids[n / 2], "fuzz", 64 * 1024);
        (void) outbox_dropped_reported(o, outbox_dropped(o) / 2);
        size_t pending = outbox_count(o);
        outbox_free(o);

        o = open_or_die(dir, max_bytes);
        if (!o)
                return;
        _cleanup_free_ char *again = NULL;
        if (outbox_count(o) != pending || outbox_read(o, id, &again, NULL) < 0 || !streq_ptr(again, fresh))
                abort();
        outbox_free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *acks, *segment;
        size_t acks_len, segment_len;
        _cleanup_(temp_dir_freep) TempDir *dir = NULL;

        if (temp_dir_new("fuzz_outbox", "outbox", &dir) < 0 || mkdir(dir->module_dir, 0700) < 0)
                abort();
        split_input(data, size, &acks, &acks_len, &segment, &segment_len);
        if (acks)
                write_file(dir->module_dir, "acks.log", acks, acks_len);
        write_file(dir->module_dir, "0000000000000001.seg", segment, segment_len);

        exercise(dir->path, size % 3 == 0 ? 2048 : 0);
        return 0;
}
