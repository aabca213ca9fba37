/* events/outbox.c: durable outbox: append-only segment files, an ack log of removals, an id index in memory. */
#include "events/outbox.h"

#include <assert.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include "codec.h"
#include "util.h"

/* Record layout (all little-endian), shared by segment files and the ack log:
 *   0 magic u32 "HLOB" | 4 version u8 | 5 type u8 | 6 flags u16 (0) | 8 id u64 |
 *  16 payload length u32 | 20 CRC32C of payload u32 | 24 CRC32C of bytes 0..23 u32 | 28 payload
 * The header has its own checksum so a bad payload can be skipped by its (trusted) length
 * and a bad header makes the reader search for the next valid header. */
#define RECORD_MAGIC   UINT32_C(0x424f4c48)
#define RECORD_VERSION 1
#define HEADER_SIZE    OUTBOX_RECORD_OVERHEAD

enum {
        RECORD_EVENT = 1,    /* segment: one event; payload = the event */
        RECORD_ACK = 2,      /* ack log: ids removed (sent or dead-lettered); payload = u64 ids */
        RECORD_DROP = 3,     /* ack log: ids dropped for max_bytes; payload = u64 ids */
        RECORD_REPORTED = 4, /* ack log: payload = u64 count of drops the caller reported */
        RECORD_STATE = 5,    /* ack log, written by compaction: payload = u64 dropped, u64 next id */
};

#define SEGMENT_ROLL_BYTES   ((uint64_t) 1024 * 1024)
#define ACK_LOG_NAME         "acks.log"
#define DEAD_LETTER_NAME     "dead-letter.jsonl"
#define ACK_LOG_COMPACT_MIN  ((uint64_t) 64 * 1024)
#define COMPACT_IDS_PER_RECORD ((size_t) 8192)
/* A scan callback's verdict on a well-formed record that does not belong where it was found. */
#define RECORD_REJECTED 1

typedef struct Segment {
        uint64_t name; /* the id in the file name: every id inside is >= name */
        int fd;        /* -1 once the file is deleted */
        uint64_t size; /* bytes of whole records; the next append goes here */
        size_t live;   /* pending records */
} Segment;

/* One record of a segment that still exists; removed ones are kept until their segment is
 * deleted, so that compaction knows which acks still matter. A record the disk refused is
 * held in memory instead (segment NULL) and forgotten as soon as it is removed. */
typedef struct Entry {
        uint64_t id;
        Segment *segment; /* NULL: in memory */
        char *memory;     /* the payload when in memory; owned */
        uint32_t offset;  /* of the record header */
        uint32_t len;     /* payload bytes */
        bool removed;
} Entry;

struct Outbox {
        char *dir_path; /* state_dir/outbox */
        int dir_fd;
        int ack_fd; /* -1: reopen before the next write */
        uint64_t ack_log_size;
        bool ack_log_unsynced; /* written by outbox_remove_nosync(), not yet fdatasync'd */
        bool active_unsynced;  /* the active segment has records of outbox_append_nosync() not yet fdatasync'd */
        uint64_t max_bytes;
        uint64_t next_id;
        uint64_t dropped;

        Entry *entries; /* sorted by id */
        size_t n_entries, n_entries_alloc;
        size_t pending;
        uint64_t pending_bytes;

        Segment **segments; /* sorted by name */
        size_t n_segments;
        Segment *active; /* appends go here; NULL: the next append starts a new segment */

        /* A full or failing disk: new records are held in memory (at most max_bytes of them)
         * and removals applied in memory, until a write succeeds again. */
        int disk_error;       /* the last write's failure (negative errno); 0 once one succeeds */
        bool acks_unwritten;  /* removals or drops the ack log lacks: the next ack write compacts first */
        size_t in_memory;     /* pending records held in memory */
        uint64_t memory_bytes; /* their bytes, counted as on disk */
};

typedef struct RecordHeader {
        uint8_t version, type;
        uint16_t flags;
        uint64_t id;
        uint32_t len, payload_crc;
} RecordHeader;

static const uint32_t crc32c_table[256] = {
        0x00000000, 0xf26b8303, 0xe13b70f7, 0x1350f3f4, 0xc79a971f, 0x35f1141c,
        0x26a1e7e8, 0xd4ca64eb, 0x8ad958cf, 0x78b2dbcc, 0x6be22838, 0x9989ab3b,
        0x4d43cfd0, 0xbf284cd3, 0xac78bf27, 0x5e133c24, 0x105ec76f, 0xe235446c,
        0xf165b798, 0x030e349b, 0xd7c45070, 0x25afd373, 0x36ff2087, 0xc494a384,
        0x9a879fa0, 0x68ec1ca3, 0x7bbcef57, 0x89d76c54, 0x5d1d08bf, 0xaf768bbc,
        0xbc267848, 0x4e4dfb4b, 0x20bd8ede, 0xd2d60ddd, 0xc186fe29, 0x33ed7d2a,
        0xe72719c1, 0x154c9ac2, 0x061c6936, 0xf477ea35, 0xaa64d611, 0x580f5512,
        0x4b5fa6e6, 0xb93425e5, 0x6dfe410e, 0x9f95c20d, 0x8cc531f9, 0x7eaeb2fa,
        0x30e349b1, 0xc288cab2, 0xd1d83946, 0x23b3ba45, 0xf779deae, 0x05125dad,
        0x1642ae59, 0xe4292d5a, 0xba3a117e, 0x4851927d, 0x5b016189, 0xa96ae28a,
        0x7da08661, 0x8fcb0562, 0x9c9bf696, 0x6ef07595, 0x417b1dbc, 0xb3109ebf,
        0xa0406d4b, 0x522bee48, 0x86e18aa3, 0x748a09a0, 0x67dafa54, 0x95b17957,
        0xcba24573, 0x39c9c670, 0x2a993584, 0xd8f2b687, 0x0c38d26c, 0xfe53516f,
        0xed03a29b, 0x1f682198, 0x5125dad3, 0xa34e59d0, 0xb01eaa24, 0x42752927,
        0x96bf4dcc, 0x64d4cecf, 0x77843d3b, 0x85efbe38, 0xdbfc821c, 0x2997011f,
        0x3ac7f2eb, 0xc8ac71e8, 0x1c661503, 0xee0d9600, 0xfd5d65f4, 0x0f36e6f7,
        0x61c69362, 0x93ad1061, 0x80fde395, 0x72966096, 0xa65c047d, 0x5437877e,
        0x4767748a, 0xb50cf789, 0xeb1fcbad, 0x197448ae, 0x0a24bb5a, 0xf84f3859,
        0x2c855cb2, 0xdeeedfb1, 0xcdbe2c45, 0x3fd5af46, 0x7198540d, 0x83f3d70e,
        0x90a324fa, 0x62c8a7f9, 0xb602c312, 0x44694011, 0x5739b3e5, 0xa55230e6,
        0xfb410cc2, 0x092a8fc1, 0x1a7a7c35, 0xe811ff36, 0x3cdb9bdd, 0xceb018de,
        0xdde0eb2a, 0x2f8b6829, 0x82f63b78, 0x709db87b, 0x63cd4b8f, 0x91a6c88c,
        0x456cac67, 0xb7072f64, 0xa457dc90, 0x563c5f93, 0x082f63b7, 0xfa44e0b4,
        0xe9141340, 0x1b7f9043, 0xcfb5f4a8, 0x3dde77ab, 0x2e8e845f, 0xdce5075c,
        0x92a8fc17, 0x60c37f14, 0x73938ce0, 0x81f80fe3, 0x55326b08, 0xa759e80b,
        0xb4091bff, 0x466298fc, 0x1871a4d8, 0xea1a27db, 0xf94ad42f, 0x0b21572c,
        0xdfeb33c7, 0x2d80b0c4, 0x3ed04330, 0xccbbc033, 0xa24bb5a6, 0x502036a5,
        0x4370c551, 0xb11b4652, 0x65d122b9, 0x97baa1ba, 0x84ea524e, 0x7681d14d,
        0x2892ed69, 0xdaf96e6a, 0xc9a99d9e, 0x3bc21e9d, 0xef087a76, 0x1d63f975,
        0x0e330a81, 0xfc588982, 0xb21572c9, 0x407ef1ca, 0x532e023e, 0xa145813d,
        0x758fe5d6, 0x87e466d5, 0x94b49521, 0x66df1622, 0x38cc2a06, 0xcaa7a905,
        0xd9f75af1, 0x2b9cd9f2, 0xff56bd19, 0x0d3d3e1a, 0x1e6dcdee, 0xec064eed,
        0xc38d26c4, 0x31e6a5c7, 0x22b65633, 0xd0ddd530, 0x0417b1db, 0xf67c32d8,
        0xe52cc12c, 0x1747422f, 0x49547e0b, 0xbb3ffd08, 0xa86f0efc, 0x5a048dff,
        0x8ecee914, 0x7ca56a17, 0x6ff599e3, 0x9d9e1ae0, 0xd3d3e1ab, 0x21b862a8,
        0x32e8915c, 0xc083125f, 0x144976b4, 0xe622f5b7, 0xf5720643, 0x07198540,
        0x590ab964, 0xab613a67, 0xb831c993, 0x4a5a4a90, 0x9e902e7b, 0x6cfbad78,
        0x7fab5e8c, 0x8dc0dd8f, 0xe330a81a, 0x115b2b19, 0x020bd8ed, 0xf0605bee,
        0x24aa3f05, 0xd6c1bc06, 0xc5914ff2, 0x37faccf1, 0x69e9f0d5, 0x9b8273d6,
        0x88d28022, 0x7ab90321, 0xae7367ca, 0x5c18e4c9, 0x4f48173d, 0xbd23943e,
        0xf36e6f75, 0x0105ec76, 0x12551f82, 0xe03e9c81, 0x34f4f86a, 0xc69f7b69,
        0xd5cf889d, 0x27a40b9e, 0x79b737ba, 0x8bdcb4b9, 0x988c474d, 0x6ae7c44e,
        0xbe2da0a5, 0x4c4623a6, 0x5f16d052, 0xad7d5351,
};

static uint32_t crc32c(const void *data, size_t len) {
        const uint8_t *p = data;
        uint32_t crc = UINT32_MAX;
        while (len-- > 0)
                crc = crc32c_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
        return ~crc;
}

static void put_le16(uint8_t *p, uint16_t v) {
        p[0] = (uint8_t) v;
        p[1] = (uint8_t) (v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v) {
        put_le16(p, (uint16_t) v);
        put_le16(p + 2, (uint16_t) (v >> 16));
}

static void put_le64(uint8_t *p, uint64_t v) {
        put_le32(p, (uint32_t) v);
        put_le32(p + 4, (uint32_t) (v >> 32));
}

static uint16_t get_le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p) {
        return (uint32_t) get_le16(p) | (uint32_t) get_le16(p + 2) << 16;
}

static uint64_t get_le64(const uint8_t *p) {
        return (uint64_t) get_le32(p) | (uint64_t) get_le32(p + 4) << 32;
}

static void header_encode(uint8_t h[static HEADER_SIZE], uint8_t type, uint64_t id, const void *payload, size_t len) {
        put_le32(h, RECORD_MAGIC);
        h[4] = RECORD_VERSION;
        h[5] = type;
        put_le16(h + 6, 0);
        put_le64(h + 8, id);
        put_le32(h + 16, (uint32_t) len);
        put_le32(h + 20, crc32c(payload, len));
        put_le32(h + 24, crc32c(h, 24));
}

/* Whether h holds a header with a valid checksum; its fields are then trustworthy. */
static bool header_decode(const uint8_t *h, RecordHeader *ret) {
        if (get_le32(h) != RECORD_MAGIC || get_le32(h + 24) != crc32c(h, 24))
                return false;
        *ret = (RecordHeader) {
                .version = h[4],
                .type = h[5],
                .flags = get_le16(h + 6),
                .id = get_le64(h + 8),
                .len = get_le32(h + 16),
                .payload_crc = get_le32(h + 20),
        };
        return true;
}

/* Offset of the first valid header at or after from, or size if there is none. */
static size_t header_find(const uint8_t *buf, size_t size, size_t from, RecordHeader *ret) {
        uint8_t magic[4];
        put_le32(magic, RECORD_MAGIC);
        while (size >= HEADER_SIZE && from <= size - HEADER_SIZE) {
                const uint8_t *m = memchr(buf + from, magic[0], size - HEADER_SIZE + 1 - from);
                if (!m)
                        break;
                if (memcmp(m, magic, sizeof magic) == 0 && header_decode(m, ret))
                        return (size_t) (m - buf);
                from = (size_t) (m - buf) + 1;
        }
        return size;
}

static void report_problem(OutboxOpenReport *report, const char *file, uint64_t offset, const char *fmt, ...)
        _printf_(4, 5);
static void report_problem(OutboxOpenReport *report, const char *file, uint64_t offset, const char *fmt, ...) {
        if (report->first_problem[0])
                return;
        int n = snprintf(report->first_problem, sizeof report->first_problem, "outbox/%s: offset %" PRIu64 ": ", file, offset);
        if (n < 0 || (size_t) n >= sizeof report->first_problem)
                return;
        va_list ap;
        va_start(ap, fmt);
        (void) vsnprintf(report->first_problem + n, sizeof report->first_problem - (size_t) n, fmt, ap);
        va_end(ap);
}

/* Called for each intact record: returns 0 (taken), RECORD_REJECTED (skipped and counted as
 * corrupt) or a negative errno (stop). */
typedef int (*record_fn)(void *userdata, const RecordHeader *h, const uint8_t *payload, size_t offset);

/* Walk the records of the file image buf[0..size), skipping and reporting damage. *ret_tail
 * is where a torn tail starts (size if there is none). */
static int records_scan(const uint8_t *buf, size_t size, const char *file, record_fn fn, void *userdata,
                        OutboxOpenReport *report, size_t *ret_tail) {
        size_t off = 0;
        while (off < size) {
                RecordHeader h;
                size_t at = header_find(buf, size, off, &h);
                if (at == size || h.len > size - at - HEADER_SIZE) {
                        /* Nothing whole follows: a crash in the middle of an append. */
                        report->torn_tails++;
                        report->corrupt_bytes += size - off;
                        report_problem(report, file, off, "torn tail, cut off %zu bytes", size - off);
                        break;
                }
                if (at > off) {
                        report->corrupt_records++;
                        report->corrupt_bytes += at - off;
                        report_problem(report, file, off, "bad record header, skipped %zu bytes", at - off);
                }

                const uint8_t *payload = buf + at + HEADER_SIZE;
                size_t end = at + HEADER_SIZE + h.len;
                const char *why = NULL;
                if (crc32c(payload, h.len) != h.payload_crc)
                        why = "payload checksum mismatch";
                else if (h.version != RECORD_VERSION || h.flags != 0)
                        why = "unsupported record version";
                else {
                        int r = fn(userdata, &h, payload, at);
                        if (r < 0)
                                return r;
                        if (r == RECORD_REJECTED)
                                why = "unexpected record type or length";
                }
                if (why) {
                        report->corrupt_records++;
                        report->corrupt_bytes += end - at;
                        report_problem(report, file, at, "%s, skipped %zu bytes", why, end - at);
                }
                off = end;
        }
        *ret_tail = off;
        return 0;
}

/* Map a whole file read-only; *ret_map is NULL for an empty file. */
static int file_map(int fd, uint8_t **ret_map, size_t *ret_size) {
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        if (st.st_size == 0) {
                *ret_map = NULL;
                *ret_size = 0;
                return 0;
        }
        void *map = mmap(NULL, (size_t) st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (map == MAP_FAILED)
                return -errno;
        *ret_map = map;
        *ret_size = (size_t) st.st_size;
        return 0;
}

static int pwritev_all(int fd, struct iovec *iov, int n, uint64_t offset) {
        while (n > 0) {
                ssize_t k = pwritev(fd, iov, n, (off_t) offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EIO;
                offset += (uint64_t) k;
                while (n > 0 && (size_t) k >= iov->iov_len) {
                        k -= (ssize_t) iov->iov_len;
                        iov++;
                        n--;
                }
                if (n > 0) {
                        iov->iov_base = (uint8_t *) iov->iov_base + k;
                        iov->iov_len -= (size_t) k;
                }
        }
        return 0;
}

/* Reading past the end means the file is not what the index says: -EBADMSG. */
static int pread_all(int fd, void *buf, size_t len, uint64_t offset) {
        uint8_t *p = buf;
        while (len > 0) {
                ssize_t k = pread(fd, p, len, (off_t) offset);
                if (k < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (k == 0)
                        return -EBADMSG;
                p += k;
                len -= (size_t) k;
                offset += (uint64_t) k;
        }
        return 0;
}

static int uint64_compare(const void *a, const void *b) {
        uint64_t x = *(const uint64_t *) a, y = *(const uint64_t *) b;
        return x < y ? -1 : x > y;
}

static int size_compare(const void *a, const void *b) {
        size_t x = *(const size_t *) a, y = *(const size_t *) b;
        return x < y ? -1 : x > y;
}

#define SEGMENT_FILE_SIZE 21

static void segment_file_name(uint64_t name, char buf[static SEGMENT_FILE_SIZE]) {
        (void) snprintf(buf, SEGMENT_FILE_SIZE, "%016" PRIx64 ".seg", name);
}

static bool segment_file_parse(const char *s, uint64_t *ret) {
        if (strlen(s) != SEGMENT_FILE_SIZE - 1 || !streq_ptr(s + 16, ".seg"))
                return false;
        uint64_t v = 0;
        for (size_t i = 0; i < 16; i++) {
                char c = s[i];
                if (c >= '0' && c <= '9')
                        v = v << 4 | (uint64_t) (c - '0');
                else if (c >= 'a' && c <= 'f')
                        v = v << 4 | (uint64_t) (c - 'a' + 10);
                else
                        return false;
        }
        if (v == 0 || v == UINT64_MAX) /* ids start at 1 and name + 1 must not overflow */
                return false;
        *ret = v;
        return true;
}

/* Add a segment with a name larger than any so far; the Outbox owns it. */
static int segments_add(Outbox *o, uint64_t name, Segment **ret) {
        Segment **a = reallocarray(o->segments, o->n_segments + 1, sizeof *a);
        if (!a)
                return -ENOMEM;
        o->segments = a;
        Segment *s = calloc(1, sizeof *s);
        if (!s)
                return -ENOMEM;
        *s = (Segment) { .name = name, .fd = -1 };
        o->segments[o->n_segments++] = s;
        *ret = s;
        return 0;
}

static int entries_reserve(Outbox *o, size_t extra) {
        if (o->n_entries_alloc - o->n_entries >= extra)
                return 0;
        if (extra > SIZE_MAX / 2 / sizeof(Entry) - o->n_entries)
                return -ENOMEM;
        size_t want = o->n_entries + extra;
        if (want < o->n_entries_alloc * 2)
                want = o->n_entries_alloc * 2;
        if (want < 64)
                want = 64;
        Entry *e = reallocarray(o->entries, want, sizeof *e);
        if (!e)
                return -ENOMEM;
        o->entries = e;
        o->n_entries_alloc = want;
        return 0;
}

/* Index of the first entry with an id >= id (n_entries if none). */
static size_t entry_lower_bound(const Outbox *o, uint64_t id) {
        size_t lo = 0, hi = o->n_entries;
        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                if (o->entries[mid].id < id)
                        lo = mid + 1;
                else
                        hi = mid;
        }
        return lo;
}

static Entry *entry_find(const Outbox *o, uint64_t id) {
        size_t i = entry_lower_bound(o, id);
        return i < o->n_entries && o->entries[i].id == id ? &o->entries[i] : NULL;
}

static void entry_forget(Outbox *o, Entry *e) {
        if (e->segment)
                e->segment->live--;
        else {
                e->memory = mfree(e->memory);
                o->in_memory--;
                o->memory_bytes -= HEADER_SIZE + e->len;
        }
        o->pending--;
        o->pending_bytes -= HEADER_SIZE + e->len;
}

/* Drop removed in-memory entries from the index: nothing on disk needs their ids. */
static void entries_prune_memory(Outbox *o) {
        size_t k = 0;
        for (size_t i = 0; i < o->n_entries; i++)
                if (o->entries[i].segment || !o->entries[i].removed)
                        o->entries[k++] = o->entries[i];
        o->n_entries = k;
}

/* Delete the files of segments (other than the active one) with nothing pending, and forget
 * their entries. A failure leaves the segment for the next attempt. */
static int segments_delete_empty(Outbox *o) {
        size_t deleted = 0;
        int r = 0;
        for (size_t i = 0; i < o->n_segments; i++) {
                Segment *s = o->segments[i];
                if (s->live > 0 || s == o->active)
                        continue;
                char file[SEGMENT_FILE_SIZE];
                segment_file_name(s->name, file);
                if (unlinkat(o->dir_fd, file, 0) < 0 && errno != ENOENT) {
                        r = -errno;
                        continue;
                }
                (void) close(s->fd);
                s->fd = -1;
                deleted++;
        }
        if (deleted == 0)
                return r;

        size_t k = 0;
        for (size_t i = 0; i < o->n_entries; i++)
                if (!o->entries[i].segment || o->entries[i].segment->fd >= 0)
                        o->entries[k++] = o->entries[i];
        o->n_entries = k;
        k = 0;
        for (size_t i = 0; i < o->n_segments; i++) {
                if (o->segments[i]->fd >= 0)
                        o->segments[k++] = o->segments[i];
                else
                        free(o->segments[i]);
        }
        o->n_segments = k;

        /* Compaction may forget these segments' acks only once the unlinks are durable. */
        if (fsync(o->dir_fd) < 0)
                return -errno;
        return r;
}

/* Reopen the ack log by name: after compaction, or after a failure left us unsure which
 * inode the old descriptor points to. */
static int ack_log_reopen(Outbox *o) {
        if (o->ack_fd >= 0)
                (void) close(o->ack_fd);
        /* Created here when compaction could not write it (a full disk at the first open). */
        o->ack_fd = openat(o->dir_fd, ACK_LOG_NAME, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
        if (o->ack_fd < 0)
                return -errno;
        struct stat st;
        if (fstat(o->ack_fd, &st) < 0)
                return -errno;
        o->ack_log_size = (uint64_t) st.st_size;
        return 0;
}

/* Replace the ack log with the state and the acks that still matter: those of records in
 * segments that still exist. Written to a temp file, fsync'd and renamed over the old one. */
static int ack_log_compact(Outbox *o) {
        size_t n_removed = o->n_entries - o->pending; /* removed entries in memory are pruned at once */
        size_t n_ack_records = (n_removed + COMPACT_IDS_PER_RECORD - 1) / COMPACT_IDS_PER_RECORD;
        size_t size = (1 + n_ack_records) * HEADER_SIZE + 16 + n_removed * 8;
        _cleanup_free_ uint8_t *buf = malloc(size);
        if (!buf)
                return -ENOMEM;

        uint8_t *p = buf;
        put_le64(p + HEADER_SIZE, o->dropped);
        put_le64(p + HEADER_SIZE + 8, o->next_id);
        header_encode(p, RECORD_STATE, 0, p + HEADER_SIZE, 16);
        p += HEADER_SIZE + 16;

        for (size_t i = 0, left = n_removed; left > 0;) {
                uint8_t *payload = p + HEADER_SIZE;
                size_t k = 0;
                for (; i < o->n_entries && k < COMPACT_IDS_PER_RECORD; i++)
                        if (o->entries[i].removed)
                                put_le64(payload + 8 * k++, o->entries[i].id);
                header_encode(p, RECORD_ACK, 0, payload, k * 8);
                p = payload + k * 8;
                left -= k;
        }

        int r = write_file_atomic(o->dir_path, ACK_LOG_NAME, buf, (size_t) (p - buf));
        if (r >= 0)
                o->ack_log_unsynced = o->acks_unwritten = false;
        int q = ack_log_reopen(o);
        return r < 0 ? r : q;
}

static bool ack_log_wants_compaction(const Outbox *o) {
        uint64_t compacted = 2 * HEADER_SIZE + 16 + (uint64_t) (o->n_entries - o->pending) * 8;
        return o->ack_log_size >= ACK_LOG_COMPACT_MIN && o->ack_log_size / 4 > compacted;
}

/* Append one record to the ack log; with sync, make it (and all before it) durable. */
static int ack_log_append(Outbox *o, uint8_t type, const uint8_t *payload, size_t len, bool sync) {
        int r;
        if (o->acks_unwritten) {
                /* Compaction writes every removal and the dropped count from memory. */
                r = ack_log_compact(o);
                if (r < 0)
                        return r;
        }
        if (o->ack_fd < 0) {
                r = ack_log_reopen(o);
                if (r < 0)
                        return r;
        }
        uint8_t header[HEADER_SIZE];
        header_encode(header, type, 0, payload, len);
        struct iovec iov[] = { { header, HEADER_SIZE }, { (void *) payload, len } };
        /* On failure the size stays, so the next record overwrites whatever part got written. */
        r = pwritev_all(o->ack_fd, iov, ELEMENTSOF(iov), o->ack_log_size);
        if (r < 0)
                return r;
        if (sync && fdatasync(o->ack_fd) < 0)
                return -errno;
        o->ack_log_size += HEADER_SIZE + len;
        o->ack_log_unsynced = !sync;
        o->disk_error = 0;
        return 0;
}

/* Remove the pending entries at the given (distinct) indexes with one ack-log record of type
 * RECORD_ACK or RECORD_DROP, durably if sync. Entries in memory need no record. When the ack
 * log cannot be written, removals (RECORD_ACK) still happen in memory and reach the log with
 * the next compaction: until then a crash only sends them again. A drop must be durable, so
 * that fails instead. Returns how many. */
static int outbox_retire(Outbox *o, uint8_t type, const size_t *idx, size_t n, bool sync) {
        if (n == 0)
                return 0;
        _cleanup_free_ uint8_t *payload = calloc(n, 8);
        if (!payload)
                return -ENOMEM;
        size_t on_disk = 0, in_memory = 0;
        for (size_t i = 0; i < n; i++)
                if (o->entries[idx[i]].segment)
                        put_le64(payload + 8 * on_disk++, o->entries[idx[i]].id);
                else
                        in_memory++;
        int r = on_disk > 0 ? ack_log_append(o, type, payload, on_disk * 8, sync) : 0;
        if (r < 0) {
                if (type != RECORD_ACK || r == -ENOMEM)
                        return r;
                o->disk_error = r;
                o->acks_unwritten = true;
        }

        for (size_t i = 0; i < n; i++) {
                o->entries[idx[i]].removed = true;
                entry_forget(o, &o->entries[idx[i]]);
        }
        if (in_memory > 0)
                entries_prune_memory(o); /* idx is spent: the indexes move */
        if (type == RECORD_DROP) {
                o->dropped += n;
                /* The log counts only the ids it names: the next ack write adds the rest. */
                if (in_memory > 0)
                        o->acks_unwritten = true;
        }

        /* The removal is durable now (or as durable as the disk allows); failing to tidy up
         * only costs disk space, so it is not reported here and simply tried again next time. */
        if (segments_delete_empty(o) >= 0 && ack_log_wants_compaction(o))
                (void) ack_log_compact(o);
        return (int) n;
}

/* Drop the oldest pending records until need more bytes fit under max_bytes. */
static int outbox_make_room(Outbox *o, uint64_t need) {
        if (o->max_bytes == 0 || o->pending_bytes + need <= o->max_bytes)
                return 0;

        size_t n = 0;
        uint64_t freed = 0;
        for (size_t i = 0; i < o->n_entries && o->pending_bytes - freed + need > o->max_bytes; i++)
                if (!o->entries[i].removed) {
                        n++;
                        freed += HEADER_SIZE + o->entries[i].len;
                }
        if (n == 0)
                return 0;
        _cleanup_free_ size_t *idx = malloc(n * sizeof *idx);
        if (!idx)
                return -ENOMEM;
        for (size_t i = 0, k = 0; k < n; i++)
                if (!o->entries[i].removed)
                        idx[k++] = i;
        /* Always durable: a dropped record's segment may be deleted right away, and then only
         * this record still counts it. */
        int r = outbox_retire(o, RECORD_DROP, idx, n, true);
        return r < 0 ? r : 0;
}

typedef struct AckReplay {
        uint64_t *ids; /* removed or dropped, sorted once the log is read */
        size_t n, alloc;
        uint64_t dropped;
        uint64_t id_floor; /* the next id is at least this */
} AckReplay;

static void ack_replay_done(AckReplay *a) {
        free(a->ids);
}

static int ack_replay_record(void *userdata, const RecordHeader *h, const uint8_t *payload, size_t offset) {
        AckReplay *a = userdata;
        (void) offset;

        switch (h->type) {
        case RECORD_ACK:
        case RECORD_DROP: {
                if (h->len % 8 != 0)
                        return RECORD_REJECTED;
                size_t n = h->len / 8;
                if (a->alloc - a->n < n) {
                        size_t want = a->n + n > a->alloc * 2 ? a->n + n : a->alloc * 2;
                        uint64_t *ids = reallocarray(a->ids, want, sizeof *ids);
                        if (!ids)
                                return -ENOMEM;
                        a->ids = ids;
                        a->alloc = want;
                }
                for (size_t i = 0; i < n; i++) {
                        uint64_t id = get_le64(payload + 8 * i);
                        a->ids[a->n++] = id;
                        if (id < UINT64_MAX && id + 1 > a->id_floor)
                                a->id_floor = id + 1;
                }
                if (h->type == RECORD_DROP)
                        a->dropped += n;
                return 0;
        }
        case RECORD_REPORTED: {
                if (h->len != 8)
                        return RECORD_REJECTED;
                uint64_t n = get_le64(payload);
                a->dropped -= n < a->dropped ? n : a->dropped;
                return 0;
        }
        case RECORD_STATE:
                if (h->len != 16)
                        return RECORD_REJECTED;
                a->dropped = get_le64(payload);
                if (get_le64(payload + 8) > a->id_floor)
                        a->id_floor = get_le64(payload + 8);
                return 0;
        default:
                return RECORD_REJECTED;
        }
}

static int ack_log_load(Outbox *o, AckReplay *a, OutboxOpenReport *report) {
        _cleanup_close_ int fd = openat(o->dir_fd, ACK_LOG_NAME, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? 0 : -errno;
        uint8_t *map = NULL;
        size_t size = 0, tail = 0;
        int r = file_map(fd, &map, &size);
        if (r < 0)
                return r;
        /* A torn tail needs no repair: compaction rewrites the log right after loading. */
        r = records_scan(map, size, ACK_LOG_NAME, ack_replay_record, a, report, &tail);
        if (map)
                (void) munmap(map, size);
        if (r < 0)
                return r;
        if (a->n > 0)
                qsort(a->ids, a->n, sizeof *a->ids, uint64_compare);
        return 0;
}

typedef struct SegmentLoad {
        Outbox *outbox;
        Segment *segment;
        const AckReplay *acks;
} SegmentLoad;

static int segment_load_record(void *userdata, const RecordHeader *h, const uint8_t *payload, size_t offset) {
        SegmentLoad *l = userdata;
        (void) payload;

        if (h->type != RECORD_EVENT || h->id < l->segment->name || h->id == UINT64_MAX || h->len == 0 ||
            h->len > OUTBOX_PAYLOAD_MAX || offset > UINT32_MAX)
                return RECORD_REJECTED;
        int r = entries_reserve(l->outbox, 1);
        if (r < 0)
                return r;
        bool removed = l->acks->n > 0 &&
                bsearch(&h->id, l->acks->ids, l->acks->n, sizeof *l->acks->ids, uint64_compare);
        l->outbox->entries[l->outbox->n_entries++] = (Entry) {
                .id = h->id,
                .segment = l->segment,
                .offset = (uint32_t) offset,
                .len = h->len,
                .removed = removed,
        };
        return 0;
}

static int segment_load(Outbox *o, uint64_t name, const AckReplay *acks, OutboxOpenReport *report) {
        char file[SEGMENT_FILE_SIZE];
        segment_file_name(name, file);
        _cleanup_close_ int fd = openat(o->dir_fd, file, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        uint8_t *map = NULL;
        size_t size = 0, tail = 0;
        int r = file_map(fd, &map, &size);
        if (r < 0)
                return r;

        Segment *s = NULL;
        r = segments_add(o, name, &s);
        if (r >= 0)
                r = records_scan(map, size, file, segment_load_record,
                                 &(SegmentLoad) { .outbox = o, .segment = s, .acks = acks }, report, &tail);
        if (map)
                (void) munmap(map, size);
        if (r < 0)
                return r;
        if (tail < size) {
                /* Only tidiness: nothing is ever appended to a segment found at open. */
                if (ftruncate(fd, (off_t) tail) >= 0)
                        (void) fdatasync(fd);
        }
        s->size = tail;
        s->fd = TAKE_FD(fd);
        return 0;
}

static void closedirp(DIR **d) {
        if (*d)
                (void) closedir(*d);
}

static int segments_load(Outbox *o, const AckReplay *acks, OutboxOpenReport *report) {
        int fd = openat(o->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        _cleanup_(closedirp) DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                (void) close(fd);
                return r;
        }

        _cleanup_free_ uint64_t *names = NULL;
        size_t n = 0, alloc = 0;
        for (;;) {
                errno = 0;
                struct dirent *de = readdir(d);
                if (!de) {
                        if (errno != 0)
                                return -errno;
                        break;
                }
                uint64_t name;
                if (!segment_file_parse(de->d_name, &name))
                        continue;
                if (n == alloc) {
                        alloc = alloc ? alloc * 2 : 16;
                        uint64_t *a = reallocarray(names, alloc, sizeof *a);
                        if (!a)
                                return -ENOMEM;
                        names = a;
                }
                names[n++] = name;
        }
        if (n > 0)
                qsort(names, n, sizeof *names, uint64_compare);
        for (size_t i = 0; i < n; i++) {
                int r = segment_load(o, names[i], acks, report);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int entry_compare(const void *a, const void *b) {
        const Entry *x = a, *y = b;
        if (x->id != y->id)
                return x->id < y->id ? -1 : 1;
        if (x->segment->name != y->segment->name)
                return x->segment->name < y->segment->name ? -1 : 1;
        return x->offset < y->offset ? -1 : x->offset > y->offset;
}

/* Sort the loaded entries by id, drop duplicate ids (only damage produces them) and count
 * what is pending. */
static void entries_normalize(Outbox *o, OutboxOpenReport *report) {
        bool sorted = true;
        for (size_t i = 1; i < o->n_entries && sorted; i++)
                sorted = o->entries[i - 1].id < o->entries[i].id;
        if (!sorted) {
                qsort(o->entries, o->n_entries, sizeof *o->entries, entry_compare);
                size_t k = 0;
                for (size_t i = 0; i < o->n_entries; i++) {
                        const Entry *e = &o->entries[i];
                        if (k > 0 && o->entries[k - 1].id == e->id) {
                                char file[SEGMENT_FILE_SIZE];
                                segment_file_name(e->segment->name, file);
                                report->corrupt_records++;
                                report->corrupt_bytes += HEADER_SIZE + e->len;
                                report_problem(report, file, e->offset, "duplicate id %" PRIu64 ", skipped", e->id);
                                continue;
                        }
                        o->entries[k++] = *e;
                }
                o->n_entries = k;
        }

        for (size_t i = 0; i < o->n_entries; i++) {
                const Entry *e = &o->entries[i];
                if (e->id >= o->next_id)
                        o->next_id = e->id + 1;
                if (e->removed)
                        continue;
                e->segment->live++;
                o->pending++;
                o->pending_bytes += HEADER_SIZE + e->len;
        }
}

static Outbox *outbox_new(const char *state_dir, uint64_t max_bytes) {
        size_t path_size = strlen(state_dir) + sizeof "/outbox";
        _cleanup_free_ char *path = malloc(path_size);
        Outbox *o = calloc(1, sizeof *o);
        if (!path || !o) {
                free(o);
                return NULL;
        }
        (void) snprintf(path, path_size, "%s/outbox", state_dir);
        *o = (Outbox) { .dir_path = TAKE_PTR(path), .dir_fd = -1, .ack_fd = -1, .max_bytes = max_bytes, .next_id = 1 };
        return o;
}

int outbox_open(const char *state_dir, uint64_t max_bytes, Outbox **ret, OutboxOpenReport *ret_report) {
        OutboxOpenReport report = {};
        _cleanup_(ack_replay_done) AckReplay acks = {};
        int r;

        if (!state_dir || !ret)
                return -EINVAL;
        _cleanup_(outbox_freep) Outbox *o = outbox_new(state_dir, max_bytes);
        if (!o)
                return -ENOMEM;
        if (mkdir(o->dir_path, 0700) >= 0) {
                r = directory_fsync(state_dir);
                if (r < 0)
                        return r;
        } else if (errno != EEXIST)
                return -errno;
        o->dir_fd = open(o->dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (o->dir_fd < 0)
                return -errno;
        /* Two writers would interleave records; the lock goes with the descriptor (and the process). */
        if (flock(o->dir_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;

        r = ack_log_load(o, &acks, &report);
        if (r < 0)
                return r;
        r = segments_load(o, &acks, &report);
        if (r < 0)
                return r;
        entries_normalize(o, &report);
        for (size_t i = 0; i < o->n_segments; i++)
                if (o->segments[i]->name >= o->next_id)
                        o->next_id = o->segments[i]->name + 1;
        if (acks.id_floor > o->next_id)
                o->next_id = acks.id_floor;
        o->dropped = acks.dropped;

        /* Appends always go to a new segment, never after what a crash may have left. Tidying
         * up writes; on a full disk the outbox opens all the same: the old ack log stays (a torn
         * tail in it is skipped when read), new records are held in memory, and the next ack
         * write tries the compaction again. */
        r = segments_delete_empty(o);
        if (r >= 0)
                r = ack_log_compact(o);
        if (r >= 0)
                r = outbox_make_room(o, 0);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                o->disk_error = report.disk_error = r;
                o->acks_unwritten = true;
        }

        report.records = o->pending;
        report.bytes = o->pending_bytes;
        report.dropped = o->dropped;
        if (ret_report)
                *ret_report = report;
        *ret = TAKE_PTR(o);
        return 0;
}

Outbox *outbox_free(Outbox *o) {
        if (!o)
                return NULL;
        if (o->active_unsynced)
                (void) fdatasync(o->active->fd);
        for (size_t i = 0; i < o->n_segments; i++) {
                if (o->segments[i]->fd >= 0)
                        (void) close(o->segments[i]->fd);
                free(o->segments[i]);
        }
        free(o->segments);
        for (size_t i = 0; i < o->n_entries; i++)
                free(o->entries[i].memory);
        free(o->entries);
        if (o->ack_fd >= 0) {
                if (o->ack_log_unsynced)
                        (void) fdatasync(o->ack_fd);
                (void) close(o->ack_fd);
        }
        if (o->dir_fd >= 0)
                (void) close(o->dir_fd);
        free(o->dir_path);
        free(o);
        return NULL;
}

/* Create the segment file that the record with id name will start, and make it active. */
static int segment_start(Outbox *o, uint64_t name) {
        char file[SEGMENT_FILE_SIZE];
        segment_file_name(name, file);
        _cleanup_close_ int fd = openat(o->dir_fd, file, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        Segment *s = NULL;
        int r = fsync(o->dir_fd) < 0 ? -errno : segments_add(o, name, &s);
        if (r < 0 || !s) {
                (void) unlinkat(o->dir_fd, file, 0);
                return r < 0 ? r : -EIO;
        }
        s->fd = TAKE_FD(fd);
        o->active = s;
        return 0;
}

/* Write the records to the active segment (or new ones) with one fdatasync per segment, the
 * last one only if sync (else outbox_sync() makes them durable). */
static int disk_append(Outbox *o, const struct iovec *records, size_t n, uint64_t need, bool sync, uint64_t *ret_ids) {
        int r = outbox_make_room(o, need);
        if (r < 0)
                return r;

        size_t first = o->n_entries;
        for (size_t i = 0; i < n; i++) {
                if (!o->active || o->active->size >= SEGMENT_ROLL_BYTES) {
                        /* Only the active segment may hold records not yet durable. */
                        if ((o->n_entries > first || o->active_unsynced) && o->active && fdatasync(o->active->fd) < 0) {
                                r = -errno;
                                goto fail;
                        }
                        o->active_unsynced = false;
                        r = segment_start(o, o->next_id);
                        if (r < 0)
                                goto fail;
                }

                Segment *s = o->active;
                assert(s); /* segment_start() succeeded or we jumped to fail */
                uint64_t id = o->next_id++; /* consumed even if this fails: ids are never reused */
                uint8_t header[HEADER_SIZE];
                header_encode(header, RECORD_EVENT, id, records[i].iov_base, records[i].iov_len);
                struct iovec iov[] = { { header, HEADER_SIZE }, records[i] };
                r = pwritev_all(s->fd, iov, ELEMENTSOF(iov), s->size);
                if (r < 0)
                        goto fail;
                o->entries[o->n_entries++] = (Entry) {
                        .id = id,
                        .segment = s,
                        .offset = (uint32_t) s->size,
                        .len = (uint32_t) records[i].iov_len,
                };
                s->size += HEADER_SIZE + records[i].iov_len;
                s->live++;
                o->pending++;
                o->pending_bytes += HEADER_SIZE + records[i].iov_len;
        }
        if (!sync)
                o->active_unsynced = true;
        else if (fdatasync(o->active->fd) < 0) {
                r = -errno;
                goto fail;
        } else
                o->active_unsynced = false;

        for (size_t i = 0; i < n; i++)
                ret_ids[i] = o->entries[first + i].id;
        (void) segments_delete_empty(o); /* a segment rolled away from may be all acked */
        return 0;

fail:
        /* Forget this call's records and let the next append overwrite them; what an earlier
         * fdatasync already made durable may come back after a restart (at-least-once). */
        while (o->n_entries > first) {
                Entry *e = &o->entries[--o->n_entries];
                e->segment->size = e->offset;
                entry_forget(o, e);
        }
        return r;
}

/* The disk refused the records: hold copies in memory, within max_bytes of memory, dropping
 * (and counting) the oldest records held there to make room. */
static int memory_append(Outbox *o, const struct iovec *records, size_t n, uint64_t need, uint64_t *ret_ids) {
        if (o->max_bytes > 0 && o->memory_bytes + need > o->max_bytes) {
                _cleanup_free_ size_t *idx = malloc(o->in_memory * sizeof *idx);
                if (!idx)
                        return -ENOMEM;
                size_t k = 0;
                uint64_t freed = 0;
                for (size_t i = 0; i < o->n_entries && o->memory_bytes - freed + need > o->max_bytes; i++)
                        if (!o->entries[i].segment && !o->entries[i].removed) {
                                idx[k++] = i;
                                freed += HEADER_SIZE + o->entries[i].len;
                        }
                int r = outbox_retire(o, RECORD_DROP, idx, k, false);
                if (r < 0)
                        return r;
        }

        size_t first = o->n_entries;
        for (size_t i = 0; i < n; i++) {
                char *copy = malloc(records[i].iov_len);
                if (copy)
                        memcpy(copy, records[i].iov_base, records[i].iov_len);
                else {
                        while (o->n_entries > first)
                                entry_forget(o, &o->entries[--o->n_entries]);
                        return -ENOMEM;
                }
                o->entries[o->n_entries++] = (Entry) {
                        .id = o->next_id++,
                        .memory = copy,
                        .len = (uint32_t) records[i].iov_len,
                };
                o->in_memory++;
                o->memory_bytes += HEADER_SIZE + records[i].iov_len;
                o->pending++;
                o->pending_bytes += HEADER_SIZE + records[i].iov_len;
        }
        for (size_t i = 0; i < n; i++)
                ret_ids[i] = o->entries[first + i].id;
        return 0;
}

static int append_many(Outbox *o, const struct iovec *records, size_t n, bool sync, uint64_t *ret_ids) {
        int r;

        if (!o || (n > 0 && (!records || !ret_ids)))
                return -EINVAL;
        uint64_t need = 0;
        for (size_t i = 0; i < n; i++) {
                if (!records[i].iov_base || records[i].iov_len == 0 || records[i].iov_len > OUTBOX_PAYLOAD_MAX)
                        return -EINVAL;
                need += HEADER_SIZE + records[i].iov_len;
        }
        if (n == 0)
                return 0;
        /* Two passes may take ids: the disk's attempt and then memory. */
        if (o->next_id > UINT64_MAX - 2 * n)
                return -EOVERFLOW;
        if (o->max_bytes > 0 && need > o->max_bytes)
                return -EFBIG;
        r = entries_reserve(o, n);
        if (r < 0)
                return r;
        r = disk_append(o, records, n, need, sync, ret_ids);
        if (r >= 0) {
                o->disk_error = 0;
                return 0;
        }
        if (r == -ENOMEM)
                return r;
        o->disk_error = r;
        return memory_append(o, records, n, need, ret_ids);
}

int outbox_append_many(Outbox *o, const struct iovec *records, size_t n, uint64_t *ret_ids) {
        return append_many(o, records, n, true, ret_ids);
}

int outbox_append(Outbox *o, const void *data, size_t len, uint64_t *ret_id) {
        if (!ret_id)
                return -EINVAL;
        return append_many(o, &(struct iovec) { (void *) data, len }, 1, true, ret_id);
}

int outbox_append_nosync(Outbox *o, const void *data, size_t len, uint64_t *ret_id) {
        if (!ret_id)
                return -EINVAL;
        return append_many(o, &(struct iovec) { (void *) data, len }, 1, false, ret_id);
}

size_t outbox_count(const Outbox *o) {
        return o ? o->pending : 0;
}

uint64_t outbox_bytes(const Outbox *o) {
        return o ? o->pending_bytes : 0;
}

uint64_t outbox_dropped(const Outbox *o) {
        return o ? o->dropped : 0;
}

size_t outbox_in_memory(const Outbox *o) {
        return o ? o->in_memory : 0;
}

int outbox_disk_error(const Outbox *o) {
        return o ? o->disk_error : 0;
}

size_t outbox_list(const Outbox *o, uint64_t after_id, uint64_t *ids, size_t max) {
        if (!o || !ids || after_id == UINT64_MAX)
                return 0;
        size_t k = 0;
        for (size_t i = entry_lower_bound(o, after_id + 1); i < o->n_entries && k < max; i++)
                if (!o->entries[i].removed)
                        ids[k++] = o->entries[i].id;
        return k;
}

int outbox_read(const Outbox *o, uint64_t id, char **ret_data, size_t *ret_len) {
        if (!o || !ret_data)
                return -EINVAL;
        const Entry *e = entry_find(o, id);
        if (!e || e->removed)
                return -ENOENT;
        if (!e->segment) {
                char *copy = malloc((size_t) e->len + 1);
                if (!copy)
                        return -ENOMEM;
                memcpy(copy, e->memory, e->len);
                copy[e->len] = 0;
                if (ret_len)
                        *ret_len = e->len;
                *ret_data = copy;
                return 0;
        }

        uint8_t header[HEADER_SIZE];
        RecordHeader h;
        int r = pread_all(e->segment->fd, header, sizeof header, e->offset);
        if (r < 0)
                return r;
        if (!header_decode(header, &h) || h.id != id || h.len != e->len)
                return -EBADMSG;
        _cleanup_free_ char *data = malloc((size_t) e->len + 1);
        if (!data)
                return -ENOMEM;
        r = pread_all(e->segment->fd, data, e->len, (uint64_t) e->offset + HEADER_SIZE);
        if (r < 0)
                return r;
        if (crc32c(data, e->len) != h.payload_crc)
                return -EBADMSG;
        data[e->len] = 0;
        if (ret_len)
                *ret_len = e->len;
        *ret_data = TAKE_PTR(data);
        return 0;
}

static int outbox_remove_ids(Outbox *o, const uint64_t *ids, size_t n, bool sync) {
        if (!o || (n > 0 && !ids) || n > INT_MAX)
                return -EINVAL;
        if (n == 0)
                return 0;
        _cleanup_free_ size_t *idx = malloc(n * sizeof *idx);
        if (!idx)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                const Entry *e = entry_find(o, ids[i]);
                if (e && !e->removed)
                        idx[k++] = (size_t) (e - o->entries);
        }
        if (k == 0)
                return 0;
        qsort(idx, k, sizeof *idx, size_compare);
        size_t u = 1; /* the caller may name an id twice */
        for (size_t i = 1; i < k; i++)
                if (idx[i] != idx[u - 1])
                        idx[u++] = idx[i];
        return outbox_retire(o, RECORD_ACK, idx, u, sync);
}

int outbox_remove(Outbox *o, const uint64_t *ids, size_t n) {
        return outbox_remove_ids(o, ids, n, true);
}

int outbox_remove_nosync(Outbox *o, const uint64_t *ids, size_t n) {
        return outbox_remove_ids(o, ids, n, false);
}

int outbox_sync(Outbox *o) {
        if (!o)
                return -EINVAL;
        if (o->active_unsynced) {
                if (fdatasync(o->active->fd) < 0)
                        return -errno;
                o->active_unsynced = false;
        }
        if (!o->ack_log_unsynced)
                return 0;
        if (o->ack_fd < 0) {
                /* fdatasync works on the file, so a fresh descriptor flushes what the old one wrote. */
                int r = ack_log_reopen(o);
                if (r < 0)
                        return r;
        }
        if (fdatasync(o->ack_fd) < 0)
                return -errno;
        o->ack_log_unsynced = false;
        return 0;
}

/* Keep dead-letter.jsonl within max_bytes with line (newline included) appended: rewrite it
 * without its oldest lines (atomically, so a crash leaves the old or the new file). Returns
 * how many lines were dropped. */
static int dead_letter_rewrite(Outbox *o, int fd, const char *line, size_t len, uint64_t max_bytes) {
        _cleanup_free_ char *old = NULL;
        size_t old_len = 0;
        int r = read_fd_full(fd, SIZE_MAX - 1, &old, &old_len);
        if (r < 0)
                return r;
        size_t keep_from = 0;
        int dropped = 0;
        while (keep_from < old_len && (uint64_t) (old_len - keep_from) + len > max_bytes) {
                const char *nl = memchr(old + keep_from, '\n', old_len - keep_from);
                keep_from = nl ? (size_t) (nl - old) + 1 : old_len;
                dropped++;
        }
        size_t kept = old_len - keep_from;
        _cleanup_free_ char *data = malloc(kept + len);
        if (!data)
                return -ENOMEM;
        memcpy(data, old + keep_from, kept);
        memcpy(data + kept, line, len);
        r = write_file_atomic(o->dir_path, DEAD_LETTER_NAME, data, kept + len);
        return r < 0 ? r : dropped;
}

/* Append one line (ending in a newline) to dead-letter.jsonl durably, within max_bytes.
 * Returns how many of the oldest lines were dropped to make room. */
static int dead_letter_append(Outbox *o, const char *line, size_t len, uint64_t max_bytes) {
        _cleanup_close_ int fd = openat(o->dir_fd, DEAD_LETTER_NAME, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return -errno;
        struct stat st;
        if (fstat(fd, &st) < 0)
                return -errno;
        if ((uint64_t) st.st_size + len > max_bytes)
                return dead_letter_rewrite(o, fd, line, len, max_bytes);
        int r = pwritev_all(fd, &(struct iovec) { (void *) line, len }, 1, (uint64_t) st.st_size);
        if (r < 0)
                return r;
        if (fdatasync(fd) < 0)
                return -errno;
        if (st.st_size == 0 && fsync(o->dir_fd) < 0) /* the file may be new */
                return -errno;
        return 0;
}

/* The dead-letter line; without the record itself when that alone would not fit max_bytes. */
static int dead_letter_line(uint64_t id, const char *reason, const char *data, uint64_t max_bytes, char **ret) {
        char id_text[21];
        (void) bsprintf(id_text, "%" PRIu64, id);
        _cleanup_cjson_ cJSON *json = cJSON_CreateObject();
        if (!json || !cJSON_AddRawToObject(json, "id", id_text) || !cJSON_AddStringToObject(json, "reason", reason) ||
            !cJSON_AddStringToObject(json, "record", data))
                return -ENOMEM;
        _cleanup_free_ char *line = cJSON_PrintUnformatted(json);
        if (!line)
                return -ENOMEM;
        if (strlen(line) + 1 > max_bytes) {
                free(TAKE_PTR(line));
                cJSON_DeleteItemFromObjectCaseSensitive(json, "record");
                if (!cJSON_AddNumberToObject(json, "record_bytes", (double) strlen(data)))
                        return -ENOMEM;
                line = cJSON_PrintUnformatted(json);
                if (!line)
                        return -ENOMEM;
        }
        /* cJSON's own buffer has no room for the newline: one copy with it. */
        size_t len = strlen(line);
        char *with_newline = malloc(len + 2);
        if (!with_newline)
                return -ENOMEM;
        memcpy(with_newline, line, len);
        memcpy(with_newline + len, "\n", 2);
        *ret = with_newline;
        return 0;
}

int outbox_dead_letter(Outbox *o, uint64_t id, const char *reason, uint64_t max_bytes) {
        if (!o || !reason || max_bytes == 0)
                return -EINVAL;
        _cleanup_free_ char *data = NULL;
        int r = outbox_read(o, id, &data, NULL);
        if (r < 0)
                return r;
        _cleanup_free_ char *line = NULL;
        r = dead_letter_line(id, reason, data, max_bytes, &line);
        if (r < 0)
                return r;
        int dropped = dead_letter_append(o, line, strlen(line), max_bytes);
        if (dropped < 0)
                return dropped;
        r = outbox_remove(o, &id, 1);
        return r < 0 ? r : dropped;
}

int outbox_dropped_reported(Outbox *o, uint64_t n) {
        if (!o || n > o->dropped)
                return -EINVAL;
        if (n == 0)
                return 0;
        uint8_t payload[8];
        put_le64(payload, n);
        int r = ack_log_append(o, RECORD_REPORTED, payload, sizeof payload, true);
        if (r < 0)
                return r;
        o->dropped -= n;
        return 0;
}
