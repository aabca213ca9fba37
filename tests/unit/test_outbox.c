/* test_outbox.c: the durable outbox: order, ids, removal, write-ahead appends, reopen, torn and corrupt files, caps, dead letter, compaction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "codec.h"
#include "outbox_test.h"
#include "../lib/temp_dir.h"

#define HEADER OUTBOX_RECORD_OVERHEAD
#define DEAD_LETTER_MAX ((uint64_t) 1024 * 1024)

/* Each test gets its own state directory, removed afterwards. */
static int setup(void **state) {
        return temp_dir_new("test_outbox", "outbox", (TempDir **) state);
}

static int teardown(void **state) {
        temp_dir_free(*state);
        return 0;
}

/* The pending ids, oldest first, paging through outbox_list() three at a time. */
static size_t list_all(const Outbox *o, uint64_t *ids, size_t max) {
        size_t n = 0;
        uint64_t after = 0;
        for (;;) {
                size_t k = outbox_list(o, after, ids + n, max - n < 3 ? max - n : 3);
                if (k == 0)
                        return n;
                n += k;
                after = ids[n - 1];
        }
}

static size_t count_files(const TempDir *f, const char *suffix) {
        DIR *d = opendir(f->module_dir);
        assert_non_null(d);
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));) {
                size_t l = strlen(de->d_name), s = strlen(suffix);
                if (l >= s && streq_ptr(de->d_name + l - s, suffix))
                        n++;
        }
        closedir(d);
        return n;
}

/* The path of the only (or the newest) segment file. */
static void last_segment(const TempDir *f, char path[static 256]) {
        DIR *d = opendir(f->module_dir);
        assert_non_null(d);
        char best[21] = "";
        for (struct dirent *de; (de = readdir(d));)
                if (strlen(de->d_name) == 20 && streq_ptr(de->d_name + 16, ".seg") && strcmp(de->d_name, best) > 0)
                        memcpy(best, de->d_name, sizeof best);
        closedir(d);
        assert_true(best[0]);
        snprintf(path, 256, "%s/%s", f->module_dir, best);
}

static off_t file_size(const char *path) {
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        return st.st_size;
}

static void flip_byte(const char *path, off_t offset) {
        int fd = open(path, O_RDWR);
        assert_true(fd >= 0);
        uint8_t b;
        assert_int_equal(pread(fd, &b, 1, offset), 1);
        b ^= 0x5a;
        assert_int_equal(pwrite(fd, &b, 1, offset), 1);
        close(fd);
}

/* Bitwise CRC32C, independent of the table in outbox.c. */
static uint32_t crc32c_slow(const void *data, size_t len) {
        const uint8_t *p = data;
        uint32_t crc = UINT32_MAX;
        while (len-- > 0) {
                crc ^= *p++;
                for (int k = 0; k < 8; k++)
                        crc = crc & 1 ? (crc >> 1) ^ 0x82f63b78 : crc >> 1;
        }
        return ~crc;
}

static void put_le(uint8_t *p, uint64_t v, size_t n) {
        for (size_t i = 0; i < n; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* A record encoded by hand as agent/events/OUTBOX.md describes it. */
static size_t encode_record(uint8_t *buf, uint8_t type, uint64_t id, const void *payload, size_t len) {
        put_le(buf, 0x424f4c48, 4);
        buf[4] = 1;
        buf[5] = type;
        put_le(buf + 6, 0, 2);
        put_le(buf + 8, id, 8);
        put_le(buf + 16, len, 4);
        put_le(buf + 20, crc32c_slow(payload, len), 4);
        put_le(buf + 24, crc32c_slow(buf, 24), 4);
        memcpy(buf + HEADER, payload, len);
        return HEADER + len;
}

static void write_file(const char *path, const void *data, size_t len) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, data, len), (ssize_t) len);
        close(fd);
}

static void test_crc32c_check_value(void **state) {
        (void) state;
        assert_int_equal(crc32c_slow("123456789", 9), 0xe3069283);
}

static void test_format_as_documented(void **state) {
        TempDir *f = *state;
        char path[256];
        uint8_t buf[256], ack[64];
        size_t n = 0;

        assert_int_equal(mkdir(f->module_dir, 0700), 0);
        n += encode_record(buf + n, 1, 5, "five", 4);
        n += encode_record(buf + n, 1, 6, "six", 3);
        n += encode_record(buf + n, 1, 9, "nine", 4);
        snprintf(path, sizeof path, "%s/0000000000000005.seg", f->module_dir);
        write_file(path, buf, n);
        uint8_t six[8];
        put_le(six, 6, 8);
        snprintf(path, sizeof path, "%s/acks.log", f->module_dir);
        write_file(path, ack, encode_record(ack, 2, 0, six, 8));

        OutboxOpenReport report;
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
        assert_int_equal(report.records, 2);
        assert_int_equal(report.bytes, 2 * HEADER + 8);
        assert_int_equal(report.corrupt_records, 0);
        assert_string_equal(report.first_problem, "");
        uint64_t ids[4];
        assert_int_equal(list_all(o, ids, 4), 2);
        assert_int_equal(ids[0], 5);
        assert_int_equal(ids[1], 9);
        assert_record(o, 5, "five");
        assert_record(o, 9, "nine");
        assert_int_equal(outbox_read(o, 6, &(char *) { NULL }, NULL), -ENOENT);
        assert_int_equal(append_text(o, "next"), 10);
}

static void test_append_read_remove_reopen(void **state) {
        TempDir *f = *state;
        uint64_t a, b, c;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                struct stat st;
                assert_int_equal(stat(f->module_dir, &st), 0);
                assert_int_equal(st.st_mode & 0777, 0700);
                a = append_text(o, "{\"a\":1}");
                b = append_text(o, "{\"b\":2}");
                c = append_text(o, "{\"c\":3}");
                assert_true(a > 0 && a < b && b < c);
                assert_int_equal(outbox_count(o), 3);
                assert_int_equal(outbox_bytes(o), 3 * (HEADER + 7));
                assert_record(o, b, "{\"b\":2}");
                assert_int_equal(outbox_remove(o, &b, 1), 1);
                assert_int_equal(outbox_remove(o, &b, 1), 0); /* already gone: ignored */
                assert_int_equal(outbox_count(o), 2);
                assert_int_equal(outbox_read(o, b, &(char *) { NULL }, NULL), -ENOENT);
                assert_int_equal(outbox_read(o, 12345, &(char *) { NULL }, NULL), -ENOENT);
        }
        OutboxOpenReport report;
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
        assert_int_equal(report.records, 2);
        assert_int_equal(report.corrupt_records + report.torn_tails + report.corrupt_bytes, 0);
        assert_int_equal(outbox_count(o), 2);
        assert_record(o, a, "{\"a\":1}");
        assert_record(o, c, "{\"c\":3}");
        assert_int_equal(outbox_read(o, b, &(char *) { NULL }, NULL), -ENOENT);
}

static void test_ids_increase_across_reopen(void **state) {
        TempDir *f = *state;
        uint64_t last = 0;
        for (int round = 0; round < 4; round++) {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                uint64_t id = append_text(o, "x");
                assert_true(id > last);
                last = id;
                /* Removing everything deletes every segment; the id must still not repeat. */
                assert_int_equal(outbox_remove(o, &id, 1), 1);
        }
        assert_int_equal(count_files(f, ".seg"), 1); /* only the last, still active segment */
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(count_files(f, ".seg"), 0);
        assert_int_equal(outbox_count(o), 0);
        assert_true(append_text(o, "y") > last);
}

static void test_oldest_first_order(void **state) {
        TempDir *f = *state;
        uint64_t appended[10], ids[16];
        char text[16];
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        for (size_t i = 0; i < 10; i++) {
                snprintf(text, sizeof text, "r%zu", i);
                appended[i] = append_text(o, text);
        }
        assert_int_equal(list_all(o, ids, 16), 10);
        assert_memory_equal(ids, appended, sizeof appended);
        assert_int_equal(outbox_list(o, appended[6], ids, 16), 3);
        assert_int_equal(ids[0], appended[7]);
        assert_int_equal(outbox_list(o, UINT64_MAX, ids, 16), 0);
        assert_int_equal(outbox_list(o, 0, ids, 0), 0);
}

static void test_partial_removal_out_of_order(void **state) {
        TempDir *f = *state;
        uint64_t ids[10], got[10];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                for (size_t i = 0; i < 10; i++)
                        ids[i] = append_text(o, "event");
                uint64_t batch1[] = { ids[7], ids[2], ids[7], 999999 }; /* a duplicate and an unknown id */
                uint64_t batch2[] = { ids[9], ids[0], ids[5] };
                assert_int_equal(outbox_remove(o, batch1, ELEMENTSOF(batch1)), 2);
                assert_int_equal(outbox_remove(o, batch2, ELEMENTSOF(batch2)), 3);
                assert_int_equal(outbox_count(o), 5);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(list_all(o, got, 10), 5);
        uint64_t expected[] = { ids[1], ids[3], ids[4], ids[6], ids[8] };
        assert_memory_equal(got, expected, sizeof expected);
}

static void test_torn_tail_at_every_offset(void **state) {
        TempDir *f = *state;
        char path[256];
        const char *last_text = "{\"third\":\"record torn\"}";
        off_t start = 0, end = 0;
        uint64_t ids[3];

        /* Learn where the last record lies. */
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                ids[0] = append_text(o, "{\"first\":1}");
                ids[1] = append_text(o, "{\"second\":2}");
                last_segment(f, path);
                start = file_size(path);
                ids[2] = append_text(o, last_text);
                end = file_size(path);
                assert_int_equal(end - start, HEADER + strlen(last_text));
        }
        _cleanup_free_ uint8_t *image = malloc((size_t) end);
        int fd = open(path, O_RDONLY);
        assert_true(fd >= 0);
        assert_int_equal(read(fd, image, (size_t) end), end);
        close(fd);

        for (off_t cut = start; cut < end; cut++) {
                (void) teardown(state);
                (void) setup(state);
                f = *state;
                assert_int_equal(mkdir(f->module_dir, 0700), 0);
                snprintf(path, sizeof path, "%s/%016" PRIx64 ".seg", f->module_dir, ids[0]);
                write_file(path, image, (size_t) cut);

                OutboxOpenReport report;
                uint64_t got[4], next;
                {
                        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
                        assert_int_equal(report.records, 2);
                        assert_int_equal(report.torn_tails, cut > start ? 1 : 0);
                        assert_int_equal(report.corrupt_bytes, (uint64_t) (cut - start));
                        assert_int_equal(report.corrupt_records, 0);
                        if (cut > start)
                                assert_non_null(strstr(report.first_problem, "torn tail"));
                        assert_int_equal(list_all(o, got, 4), 2);
                        assert_record(o, ids[0], "{\"first\":1}");
                        assert_record(o, ids[1], "{\"second\":2}");
                        next = append_text(o, "after the crash");
                        assert_true(next > ids[1]);
                }
                /* The torn tail was cut off and the new record went to a new segment. */
                assert_int_equal(file_size(path), start);
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
                assert_int_equal(report.torn_tails + report.corrupt_records, 0);
                assert_int_equal(list_all(o, got, 4), 3);
                assert_int_equal(got[2], next);
                assert_record(o, next, "after the crash");
        }
}

static void corrupt_middle(void **state, size_t offset_in_record, const char *expected_problem) {
        TempDir *f = *state;
        char path[256];
        uint64_t ids[3];
        off_t second;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                ids[0] = append_text(o, "one");
                last_segment(f, path);
                second = file_size(path);
                ids[1] = append_text(o, "two, soon corrupt");
                ids[2] = append_text(o, "three");
        }
        flip_byte(path, second + (off_t) offset_in_record);

        OutboxOpenReport report;
        uint64_t got[4];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
                assert_int_equal(report.records, 2);
                assert_int_equal(report.corrupt_records, 1);
                assert_int_equal(report.corrupt_bytes, HEADER + strlen("two, soon corrupt"));
                assert_int_equal(report.torn_tails, 0);
                assert_non_null(strstr(report.first_problem, expected_problem));
                assert_non_null(strstr(report.first_problem, "outbox/"));
                assert_int_equal(list_all(o, got, 4), 2);
                assert_int_equal(got[0], ids[0]);
                assert_int_equal(got[1], ids[2]);
                assert_record(o, ids[0], "one");
                assert_record(o, ids[2], "three");
                assert_int_equal(outbox_read(o, ids[1], &(char *) { NULL }, NULL), -ENOENT);
                append_text(o, "four");
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
        assert_int_equal(report.records, 3);
        assert_int_equal(report.corrupt_records, 1); /* still there, reported again */
}

static void test_corrupt_payload_byte(void **state) {
        corrupt_middle(state, HEADER + 3, "offset 31: payload checksum mismatch, skipped 45 bytes");
}

static void test_corrupt_header_byte(void **state) {
        corrupt_middle(state, 17, "offset 31: bad record header, skipped 45 bytes");
}

static void test_corrupt_after_open_is_ebadmsg(void **state) {
        TempDir *f = *state;
        char path[256];
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        uint64_t id = append_text(o, "payload");
        last_segment(f, path);
        flip_byte(path, HEADER + 2);
        assert_int_equal(outbox_read(o, id, &(char *) { NULL }, NULL), -EBADMSG);
}

static void test_max_bytes_drops_oldest(void **state) {
        TempDir *f = *state;
        const uint64_t record = HEADER + 10;
        uint64_t ids[5], got[8];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 3 * record, NULL);
                for (size_t i = 0; i < 5; i++)
                        ids[i] = append_text(o, "0123456789");
                assert_int_equal(outbox_count(o), 3);
                assert_int_equal(outbox_bytes(o), 3 * record);
                assert_int_equal(outbox_dropped(o), 2);
                assert_int_equal(outbox_remove(o, &ids[0], 1), 0); /* dropped, so no longer pending */
                char big[200] = "";
                memset(big, 'b', sizeof big - 1);
                uint64_t id;
                assert_int_equal(outbox_append(o, big, strlen(big), &id), -EFBIG);
                assert_int_equal(outbox_count(o), 3);
        }
        OutboxOpenReport report;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 3 * record, &report);
                assert_int_equal(report.dropped, 2);
                assert_int_equal(outbox_dropped(o), 2);
                assert_int_equal(list_all(o, got, 8), 3);
                assert_memory_equal(got, ids + 2, 3 * sizeof *ids);
                assert_int_equal(outbox_dropped_reported(o, 3), -EINVAL);
                assert_int_equal(outbox_dropped_reported(o, 1), 0);
                assert_int_equal(outbox_dropped(o), 1);
        }
        {
                /* A smaller cap at open drops at once. */
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, record, &report);
                assert_int_equal(outbox_dropped(o), 3);
                assert_int_equal(report.dropped, 3);
                assert_int_equal(list_all(o, got, 8), 1);
                assert_int_equal(got[0], ids[4]);
                assert_int_equal(outbox_dropped_reported(o, 3), 0);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, record, &report);
        assert_int_equal(outbox_dropped(o), 0);
        assert_int_equal(outbox_count(o), 1);
}

static void test_dead_letter(void **state) {
        TempDir *f = *state;
        char path[256];
        uint64_t bad, good;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                bad = append_text(o, "{\"detail\":\"line\\nbreak\",\"q\":\"\\\"\"}");
                good = append_text(o, "{\"ok\":true}");
                assert_int_equal(outbox_dead_letter(o, bad, "ValidationException: bad \"detail\"", DEAD_LETTER_MAX), 0);
                assert_int_equal(outbox_count(o), 1);
                assert_int_equal(outbox_dead_letter(o, bad, "again", DEAD_LETTER_MAX), -ENOENT);
                assert_int_equal(outbox_dead_letter(o, good, NULL, DEAD_LETTER_MAX), -EINVAL);
        }
        snprintf(path, sizeof path, "%s/dead-letter.jsonl", f->module_dir);
        struct stat st;
        assert_int_equal(stat(path, &st), 0);
        assert_int_equal(st.st_mode & 0777, 0600);
        _cleanup_free_ char *text = NULL;
        size_t len;
        assert_int_equal(read_file_full(path, 65536, &text, &len), 0);
        assert_true(len > 0);
        assert_ptr_equal(strchr(text, '\n'), text + len - 1); /* exactly one line */

        _cleanup_cjson_ cJSON *line = NULL;
        assert_int_equal(codec_parse_json(text, len, &line), 0);
        assert_true(cJSON_IsNumber(cJSON_GetObjectItem(line, "id")));
        assert_int_equal((uint64_t) cJSON_GetObjectItem(line, "id")->valuedouble, bad);
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "reason")), "ValidationException: bad \"detail\"");
        assert_string_equal(cJSON_GetStringValue(cJSON_GetObjectItem(line, "record")),
                            "{\"detail\":\"line\\nbreak\",\"q\":\"\\\"\"}");

        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        uint64_t got[4];
        assert_int_equal(list_all(o, got, 4), 1);
        assert_int_equal(got[0], good);
}

/* dead-letter.jsonl stays within its cap: the oldest lines go (counted), and a record too big
 * for the file on its own leaves only its size. */
static void test_dead_letter_bounded(void **state) {
        TempDir *f = *state;
        const uint64_t cap = 1000;
        char path[256], payload[300];
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        uint64_t ids[10];
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                snprintf(payload, sizeof payload, "{\"n\":%zu,\"pad\":\"%0200d\"}", i, 0);
                ids[i] = append_text(o, payload);
        }
        int dropped = 0;
        for (size_t i = 0; i < ELEMENTSOF(ids); i++) {
                int r = outbox_dead_letter(o, ids[i], "MalformedDetail: x", cap);
                assert_true(r >= 0);
                dropped += r;
        }
        assert_int_equal(outbox_count(o), 0);

        snprintf(path, sizeof path, "%s/dead-letter.jsonl", f->module_dir);
        _cleanup_free_ char *text = NULL;
        size_t len, lines = 0;
        assert_int_equal(read_file_full(path, 65536, &text, &len), 0);
        assert_true(len <= cap);
        for (size_t i = 0; i < len; i++)
                lines += text[i] == '\n';
        assert_true(lines >= 2);
        assert_int_equal(lines + (size_t) dropped, ELEMENTSOF(ids));
        /* The newest is last, whole. */
        const char *last = text;
        for (const char *p = text; p < text + len - 1; p++)
                if (*p == '\n')
                        last = p + 1;
        _cleanup_cjson_ cJSON *json = NULL;
        assert_int_equal(codec_parse_json(last, (size_t) (text + len - last), &json), 0);
        assert_int_equal((uint64_t) cJSON_GetObjectItem(json, "id")->valuedouble, ids[9]);

        memset(payload, 'x', sizeof payload - 1);
        payload[sizeof payload - 1] = 0;
        char big[4 * sizeof payload + 16];
        snprintf(big, sizeof big, "{\"a\":\"%s%s%s%s\"}", payload, payload, payload, payload);
        uint64_t big_id = append_text(o, big);
        assert_true(outbox_dead_letter(o, big_id, "MalformedDetail: big", cap) >= 0);
        free(text);
        text = NULL;
        assert_int_equal(read_file_full(path, 65536, &text, &len), 0);
        assert_true(len <= cap);
        assert_null(strstr(text, "xxxx"));
        assert_non_null(strstr(text, "\"record_bytes\":"));
}

static void test_segment_roll_and_delete(void **state) {
        TempDir *f = *state;
        const size_t size = 100 * 1024, n = 25; /* 2.5 MiB: three segments */
        _cleanup_free_ char *payload = malloc(size);
        assert_non_null(payload);
        uint64_t ids[25];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                for (size_t i = 0; i < n; i++) {
                        memset(payload, 'a' + (int) i, size);
                        assert_int_equal(outbox_append(o, payload, size, &ids[i]), 0);
                }
                assert_int_equal(count_files(f, ".seg"), 3);
                /* Segments go as soon as all their records are removed, in any order. */
                assert_int_equal(outbox_remove(o, ids + 11, 11), 11);
                assert_int_equal(count_files(f, ".seg"), 2);
                assert_int_equal(outbox_remove(o, ids, 11), 11);
                assert_int_equal(count_files(f, ".seg"), 1);
                assert_int_equal(outbox_remove(o, ids + 22, 3), 3);
                assert_int_equal(count_files(f, ".seg"), 1); /* the active segment stays */
                assert_int_equal(outbox_count(o), 0);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(count_files(f, ".seg"), 0);
        assert_int_equal(outbox_count(o), 0);
}

static void test_ack_log_compaction(void **state) {
        TempDir *f = *state;
        char path[256];
        const size_t n = 3000, burst = 100;
        char payload[1000];
        memset(payload, 'p', sizeof payload);
        struct iovec records[100];
        for (size_t i = 0; i < burst; i++)
                records[i] = (struct iovec) { payload, sizeof payload };
        snprintf(path, sizeof path, "%s/acks.log", f->module_dir);

        uint64_t last = 0;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                uint64_t ids[100];
                off_t biggest = 0;
                for (size_t i = 0; i < n; i += burst) {
                        assert_int_equal(outbox_append_many(o, records, burst, ids), 0);
                        for (size_t k = 0; k < burst; k++) {
                                assert_int_equal(outbox_remove(o, &ids[k], 1), 1);
                                off_t s = file_size(path);
                                biggest = s > biggest ? s : biggest;
                        }
                        last = ids[burst - 1];
                }
                /* 3000 single removals would be 108 KB of ack log without compaction. */
                assert_true(biggest < 80 * 1024);
                assert_true(count_files(f, ".seg") <= 2);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(outbox_count(o), 0);
        assert_true(file_size(path) < 100);
        assert_true(append_text(o, "z") > last);
}

static void test_corrupt_ack_log_means_resend(void **state) {
        TempDir *f = *state;
        char path[256];
        uint64_t a, b;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                a = append_text(o, "a");
                b = append_text(o, "b");
                assert_int_equal(outbox_remove(o, &a, 1), 1);
        }
        snprintf(path, sizeof path, "%s/acks.log", f->module_dir);
        off_t size = file_size(path);
        flip_byte(path, size - 3); /* the ack record's payload */

        OutboxOpenReport report;
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
        assert_int_equal(report.corrupt_records, 1);
        assert_non_null(strstr(report.first_problem, "outbox/acks.log: offset"));
        /* The removal is lost, so the record is sent again: at-least-once, never lost. */
        assert_int_equal(outbox_count(o), 2);
        assert_record(o, a, "a");
        assert_record(o, b, "b");
}

static void test_big_and_empty_records(void **state) {
        TempDir *f = *state;
        const size_t size = 300 * 1024;
        _cleanup_free_ char *big = malloc(OUTBOX_PAYLOAD_MAX + 1);
        assert_non_null(big);
        for (size_t i = 0; i < size; i++)
                big[i] = (char) ('A' + i % 26);
        uint64_t id;
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                assert_int_equal(outbox_append(o, big, size, &id), 0);
                assert_int_equal(outbox_append(o, "", 0, &(uint64_t) { 0 }), -EINVAL);
                assert_int_equal(outbox_append(o, big, OUTBOX_PAYLOAD_MAX + 1, &(uint64_t) { 0 }), -EINVAL);
                assert_int_equal(outbox_count(o), 1);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        _cleanup_free_ char *data = NULL;
        size_t len;
        assert_int_equal(outbox_read(o, id, &data, &len), 0);
        assert_int_equal(len, size);
        assert_memory_equal(data, big, size);
        assert_int_equal(data[len], 0);
}

static void test_append_many(void **state) {
        TempDir *f = *state;
        struct iovec records[] = { { "one", 3 }, { "two", 3 }, { "three", 5 } };
        uint64_t ids[3], got[4];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                assert_int_equal(outbox_append_many(o, records, 3, ids), 0);
                assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
                assert_int_equal(outbox_append_many(o, records, 0, ids), 0);
                struct iovec bad[] = { { "x", 1 }, { "", 0 } };
                assert_int_equal(outbox_append_many(o, bad, 2, got), -EINVAL);
                assert_int_equal(outbox_count(o), 3);
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(list_all(o, got, 4), 3);
        assert_memory_equal(got, ids, sizeof ids);
        assert_record(o, ids[2], "three");
}

static void test_remove_nosync(void **state) {
        TempDir *f = *state;
        uint64_t ids[4], got[4];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                for (size_t i = 0; i < 4; i++)
                        ids[i] = append_text(o, "batch");
                assert_int_equal(outbox_sync(o), 0); /* nothing to sync */
                assert_int_equal(outbox_remove_nosync(o, ids, 1), 1);
                assert_int_equal(outbox_remove_nosync(o, ids + 2, 1), 1);
                assert_int_equal(outbox_count(o), 2);
                assert_int_equal(outbox_sync(o), 0);
                assert_int_equal(outbox_remove_nosync(o, ids + 3, 1), 1); /* synced by outbox_free() */
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(list_all(o, got, 4), 1);
        assert_int_equal(got[0], ids[1]);
}

static void test_append_nosync(void **state) {
        TempDir *f = *state;
        uint64_t ids[3], got[3];
        {
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
                assert_int_equal(outbox_append_nosync(o, "ahead", 5, &ids[0]), 0);
                ids[1] = append_text(o, "synced"); /* its fdatasync covers the record before */
                assert_int_equal(outbox_append_nosync(o, "ahead2", 6, &ids[2]), 0);
                assert_true(ids[0] < ids[1] && ids[1] < ids[2]);
                assert_int_equal(outbox_count(o), 3);
                assert_record(o, ids[2], "ahead2");
                assert_int_equal(outbox_sync(o), 0);
                assert_int_equal(outbox_sync(o), 0); /* nothing left to sync */
        }
        _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, NULL);
        assert_int_equal(list_all(o, got, 3), 3);
        assert_memory_equal(got, ids, sizeof ids);
        assert_record(o, ids[0], "ahead");
}

#define KILL_REMOVING (UINT64_C(1) << 62)
#define KILL_REMOVED (UINT64_C(1) << 63)

static bool kill9_tell(int pipe_fd, const uint64_t *ids, size_t n, uint64_t flag) {
        for (size_t k = 0; k < n; k++) {
                uint64_t m = ids[k] | flag;
                if (write(pipe_fd, &m, sizeof m) != sizeof m)
                        return false;
        }
        return true;
}

/* The child appends (half of them written ahead, never synced) and removes until killed, telling the parent through the pipe every id
 * whose append returned, and each id it is about to remove and has removed. */
_Noreturn static void kill9_child(const TempDir *f, int pipe_fd) {
        Outbox *o = NULL;
        if (outbox_open(f->path, 0, &o, NULL) < 0)
                _exit(2);
        char payload[200];
        memset(payload, 'k', sizeof payload);
        for (unsigned i = 0;; i++) {
                uint64_t id, ids[2];
                /* Every other append is written ahead: it must survive the kill unsynced. */
                int r = i % 2 ? outbox_append_nosync(o, payload, 1 + i % sizeof payload, &id)
                              : outbox_append(o, payload, 1 + i % sizeof payload, &id);
                if (r < 0 || !kill9_tell(pipe_fd, &id, 1, 0))
                        _exit(3);
                if (i % 3 != 2)
                        continue;
                size_t n = outbox_list(o, 0, ids, 2);
                if (!kill9_tell(pipe_fd, ids, n, KILL_REMOVING) || outbox_remove(o, ids, n) < 0 ||
                    !kill9_tell(pipe_fd, ids, n, KILL_REMOVED))
                        _exit(4);
        }
}

static void test_kill9_at_random_moments(void **state) {
        TempDir *f = *state;
        static uint64_t appended[100000];
        static uint64_t flags[100000];
        size_t n_appended = 0;
        uint64_t last = 0;
        srand((unsigned) time(NULL));

        for (int round = 0; round < 12; round++) {
                int p[2];
                assert_int_equal(pipe(p), 0);
                pid_t pid = fork();
                assert_true(pid >= 0);
                if (pid == 0) {
                        close(p[0]);
                        kill9_child(f, p[1]);
                }
                close(p[1]);
                (void) usleep((useconds_t) (2000 + rand() % 40000));
                assert_int_equal(kill(pid, SIGKILL), 0);
                int status;
                assert_int_equal(waitpid(pid, &status, 0), pid);
                assert_true(WIFSIGNALED(status));

                uint64_t m;
                while (read(p[0], &m, sizeof m) == sizeof m) {
                        uint64_t id = m & ~(KILL_REMOVED | KILL_REMOVING);
                        assert_true(id < ELEMENTSOF(appended));
                        if (m != id)
                                flags[id] |= m & ~id;
                        else {
                                assert_true(id > last); /* ids increase across every crash */
                                last = id;
                                appended[n_appended++] = id;
                        }
                }
                close(p[0]);

                OutboxOpenReport report;
                _cleanup_(outbox_freep) Outbox *o = open_ok(f, 0, &report);
                assert_int_equal(report.corrupt_records, 0);
                for (size_t i = 0; i < n_appended; i++) {
                        _cleanup_free_ char *data = NULL;
                        int r = outbox_read(o, appended[i], &data, NULL);
                        /* Returned appends are never lost; returned removals never come back;
                         * a removal cut short by the kill may go either way. */
                        if (flags[appended[i]] & KILL_REMOVED)
                                assert_int_equal(r, -ENOENT);
                        else if (!(flags[appended[i]] & KILL_REMOVING))
                                assert_int_equal(r, 0);
                }
        }
}

static void test_open_errors(void **state) {
        TempDir *f = *state;
        char missing[192];
        Outbox *o = NULL;
        snprintf(missing, sizeof missing, "%s/missing", f->path);
        assert_int_equal(outbox_open(missing, 0, &o, NULL), -ENOENT);
        assert_null(o);
        assert_int_equal(outbox_open(NULL, 0, &o, NULL), -EINVAL);
        _cleanup_(outbox_freep) Outbox *first = open_ok(f, 0, NULL);
        assert_int_equal(outbox_open(f->path, 0, &o, NULL), -EBUSY);
        assert_null(o);
        assert_null(outbox_free(NULL));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_crc32c_check_value),
                cmocka_unit_test_setup_teardown(test_format_as_documented, setup, teardown),
                cmocka_unit_test_setup_teardown(test_append_read_remove_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ids_increase_across_reopen, setup, teardown),
                cmocka_unit_test_setup_teardown(test_oldest_first_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_partial_removal_out_of_order, setup, teardown),
                cmocka_unit_test_setup_teardown(test_torn_tail_at_every_offset, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_payload_byte, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_header_byte, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_after_open_is_ebadmsg, setup, teardown),
                cmocka_unit_test_setup_teardown(test_max_bytes_drops_oldest, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dead_letter_bounded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_dead_letter, setup, teardown),
                cmocka_unit_test_setup_teardown(test_segment_roll_and_delete, setup, teardown),
                cmocka_unit_test_setup_teardown(test_ack_log_compaction, setup, teardown),
                cmocka_unit_test_setup_teardown(test_corrupt_ack_log_means_resend, setup, teardown),
                cmocka_unit_test_setup_teardown(test_big_and_empty_records, setup, teardown),
                cmocka_unit_test_setup_teardown(test_append_many, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_nosync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_append_nosync, setup, teardown),
                cmocka_unit_test_setup_teardown(test_kill9_at_random_moments, setup, teardown),
                cmocka_unit_test_setup_teardown(test_open_errors, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
