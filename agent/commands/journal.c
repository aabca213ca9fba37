/* commands/journal.c: durable memory of the commands heald ran (state_dir/commands/): begun, finished, their results. */
#define _GNU_SOURCE /* asprintf */
#include "commands/journal.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/evp.h>

#include "codec.h"

/* On-disk format (see agent/commands/JOURNAL.md): one file per command,
 *   state_dir/commands/<hex SHA-256 of the command id>.json
 * holding one JSON object
 *   {"version":1,"command_id":"...","action":"reboot","state":"in-progress"|"finished",
 *    "begun_at":<usec>,"finished_at":<usec, finished only>,"context":<JSON, optional>,
 *    "result":<JSON, finished only>}
 * written with write_file_atomic() (temp file, fsync, rename, fsync of the directory), so a
 * file is either the old record or the new one. The hashed name bounds the file name
 * whatever the id holds; a file whose command_id does not hash to its name is corrupt. The
 * directory is the whole truth: memory holds an index (name, state, times) rebuilt on open. */
#define RECORD_VERSION  1
#define RECORD_FILE_MAX ((size_t) (COMMAND_JOURNAL_CONTEXT_MAX + COMMAND_JOURNAL_RESULT_MAX + 8192))
#define NAME_SIZE       (64 + sizeof ".json")
#define ACTION_MAX      64

typedef struct Entry {
        char name[NAME_SIZE]; /* "<sha256 hex>.json" */
        bool finished;
        usec_t begun_at, finished_at;
} Entry;

struct CommandJournal {
        char *dir_path; /* state_dir/commands */
        int dir_fd;     /* holds the lock */
        Entry *entries; /* sorted by name */
        size_t n_entries, n_alloc;
        size_t max_records;
};

static const char *const state_names[] = {
        [COMMAND_RECORD_IN_PROGRESS] = "in-progress",
        [COMMAND_RECORD_FINISHED] = "finished",
};

void command_record_done(CommandRecord *r) {
        if (!r)
                return;
        free(r->command_id);
        free(r->action);
        free(r->context_json);
        free(r->result_json);
        *r = (CommandRecord) {};
}

CommandRecord *command_records_free(CommandRecord *records, size_t n) {
        for (size_t i = 0; records && i < n; i++)
                command_record_done(&records[i]);
        free(records);
        return NULL;
}

static int record_name(const char *command_id, char ret[static NAME_SIZE]) {
        int r = codec_digest_hex(EVP_sha256(), command_id, strlen(command_id), ret, NAME_SIZE);
        if (r < 0)
                return r;
        memcpy(ret + 64, ".json", sizeof ".json");
        return 0;
}

static bool command_id_is_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        return n >= 1 && n <= COMMAND_JOURNAL_ID_MAX && codec_utf8_is_valid(s, n);
}

static bool action_is_valid(const char *s) {
        size_t n = s ? strlen(s) : 0;
        if (n < 1 || n > ACTION_MAX)
                return false;
        for (; *s; s++)
                if (*s <= 0x20 || *s >= 0x7f)
                        return false;
        return true;
}

/* JSON numbers are doubles: usec since the epoch fit exactly until 2255. */
static int json_usec(const cJSON *item, usec_t *ret) {
        if (!cJSON_IsNumber(item) || item->valuedouble < 0 || item->valuedouble > 9007199254740992.0 ||
            item->valuedouble != (double) (usec_t) item->valuedouble)
                return -EBADMSG;
        *ret = (usec_t) item->valuedouble;
        return 0;
}

/* Parse a record file's text; expected_name: the file's name, which the id must hash to. */
static int record_parse(const char *text, size_t len, const char *expected_name, CommandRecord *ret,
                        const char **ret_problem) {
        _cleanup_cjson_ cJSON *root = NULL;
        CommandRecord rec = {};
        char name[NAME_SIZE];

#define BAD(what)                          \
        do {                               \
                *ret_problem = (what);     \
                command_record_done(&rec); \
                return -EBADMSG;           \
        } while (0)

        if (codec_parse_json(text, len, &root) < 0 || !cJSON_IsObject(root))
                BAD("not a JSON object");
        const cJSON *version = cJSON_GetObjectItemCaseSensitive(root, "version");
        if (!cJSON_IsNumber(version) || version->valuedouble != RECORD_VERSION)
                BAD("unknown version");
        const char *id = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "command_id"));
        if (!command_id_is_valid(id))
                BAD("command_id missing or invalid");
        if (record_name(id, name) < 0)
                return -EIO;
        if (!streq_ptr(name, expected_name))
                BAD("command_id does not match the file name");
        const char *action = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "action"));
        if (!action_is_valid(action))
                BAD("action missing or invalid");
        const char *state = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(root, "state"));
        if (streq_ptr(state, state_names[COMMAND_RECORD_IN_PROGRESS]))
                rec.state = COMMAND_RECORD_IN_PROGRESS;
        else if (streq_ptr(state, state_names[COMMAND_RECORD_FINISHED]))
                rec.state = COMMAND_RECORD_FINISHED;
        else
                BAD("state missing or invalid");
        if (json_usec(cJSON_GetObjectItemCaseSensitive(root, "begun_at"), &rec.begun_at) < 0)
                BAD("begun_at missing or invalid");

        const cJSON *context = cJSON_GetObjectItemCaseSensitive(root, "context");
        const cJSON *result = cJSON_GetObjectItemCaseSensitive(root, "result");
        if (rec.state == COMMAND_RECORD_FINISHED) {
                if (json_usec(cJSON_GetObjectItemCaseSensitive(root, "finished_at"), &rec.finished_at) < 0)
                        BAD("finished_at missing or invalid");
                if (!result)
                        BAD("result missing");
        }
#undef BAD

        if (!(rec.command_id = strdup(id)) || !(rec.action = strdup(action)) ||
            (context && !(rec.context_json = cJSON_PrintUnformatted(context))) ||
            (rec.state == COMMAND_RECORD_FINISHED && !(rec.result_json = cJSON_PrintUnformatted(result)))) {
                command_record_done(&rec);
                return -ENOMEM;
        }
        *ret = rec;
        return 0;
}

static int record_read(CommandJournal *j, const char *name, CommandRecord *ret, const char **ret_problem) {
        _cleanup_free_ char *text = NULL;
        char path[4096];
        size_t len;

        if (bsprintf(path, "%s/%s", j->dir_path, name) < 0)
                return -ENAMETOOLONG;
        int r = read_file_full(path, RECORD_FILE_MAX, &text, &len);
        if (r < 0) {
                *ret_problem = r == -EFBIG ? "too big" : "cannot be read";
                return r == -EFBIG ? -EBADMSG : r;
        }
        return record_parse(text, len, name, ret, ret_problem);
}

static int record_write(CommandJournal *j, const CommandRecord *rec) {
        _cleanup_cjson_ cJSON *root = cJSON_CreateObject();
        _cleanup_cjson_ cJSON *context = NULL, *result = NULL;
        _cleanup_free_ char *text = NULL;
        char name[NAME_SIZE];
        int r;

        r = record_name(rec->command_id, name);
        if (r < 0)
                return r;
        if (rec->context_json && (codec_parse_json(rec->context_json, strlen(rec->context_json), &context) < 0))
                return -EINVAL;
        if (rec->result_json && (codec_parse_json(rec->result_json, strlen(rec->result_json), &result) < 0))
                return -EINVAL;

        if (!root || !cJSON_AddNumberToObject(root, "version", RECORD_VERSION) ||
            !cJSON_AddStringToObject(root, "command_id", rec->command_id) ||
            !cJSON_AddStringToObject(root, "action", rec->action) ||
            !cJSON_AddStringToObject(root, "state", state_names[rec->state]) ||
            !cJSON_AddNumberToObject(root, "begun_at", (double) rec->begun_at) ||
            (rec->state == COMMAND_RECORD_FINISHED &&
             !cJSON_AddNumberToObject(root, "finished_at", (double) rec->finished_at)))
                return -ENOMEM;
        if (context) {
                if (!cJSON_AddItemToObject(root, "context", context))
                        return -ENOMEM;
                context = NULL; /* owned by root now */
        }
        if (result) {
                if (!cJSON_AddItemToObject(root, "result", result))
                        return -ENOMEM;
                result = NULL;
        }

        text = cJSON_PrintUnformatted(root);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(j->dir_path, name, text, strlen(text));
}

static int entry_compare(const void *a, const void *b) {
        return strcmp(((const Entry *) a)->name, ((const Entry *) b)->name);
}

static Entry *entry_find(CommandJournal *j, const char *name) {
        Entry key = {};
        memcpy(key.name, name, NAME_SIZE);
        return j->n_entries > 0 ? bsearch(&key, j->entries, j->n_entries, sizeof key, entry_compare) : NULL;
}

/* Insert keeping the order; on open the array is sorted once after loading instead. */
static int entry_add(CommandJournal *j, const Entry *e, bool keep_sorted) {
        if (j->n_entries == j->n_alloc) {
                size_t n = j->n_alloc ? j->n_alloc * 2 : 64;
                Entry *grown = reallocarray(j->entries, n, sizeof *grown);
                if (!grown)
                        return -ENOMEM;
                j->entries = grown;
                j->n_alloc = n;
        }
        size_t at = j->n_entries;
        if (keep_sorted)
                while (at > 0 && strcmp(j->entries[at - 1].name, e->name) > 0)
                        at--;
        memmove(j->entries + at + 1, j->entries + at, (j->n_entries - at) * sizeof *e);
        j->entries[at] = *e;
        j->n_entries++;
        return 0;
}

static void entry_remove(CommandJournal *j, Entry *e) {
        size_t at = (size_t) (e - j->entries);
        memmove(e, e + 1, (j->n_entries - at - 1) * sizeof *e);
        j->n_entries--;
}

static void report_problem(CommandJournalReport *report, const char *name, const char *problem) {
        report->corrupt++;
        if (!report->first_problem[0])
                bsprintf(report->first_problem, "commands/%.70s: %.120s, skipped", name,
                         problem);
}

static bool is_record_name(const char *name) {
        size_t n = strlen(name);
        if (n != NAME_SIZE - 1 || !streq_ptr(name + 64, ".json"))
                return false;
        for (size_t i = 0; i < 64; i++)
                if (!((name[i] >= '0' && name[i] <= '9') || (name[i] >= 'a' && name[i] <= 'f')))
                        return false;
        return true;
}

static int load(CommandJournal *j, CommandJournalReport *report) {
        int fd = openat(j->dir_fd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        DIR *d = fdopendir(fd);
        if (!d) {
                int r = -errno;
                close(fd);
                return r;
        }

        int r = 0;
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                CommandRecord rec;
                const char *problem = NULL;

                /* write_file_atomic()'s ".<name>.tmp" left by a crash: never renamed, never valid. */
                if (de->d_name[0] == '.' && strlen(de->d_name) > 4 && streq_ptr(de->d_name + strlen(de->d_name) - 4, ".tmp")) {
                        (void) unlinkat(j->dir_fd, de->d_name, 0);
                        continue;
                }
                if (!is_record_name(de->d_name))
                        continue;

                int k = record_read(j, de->d_name, &rec, &problem);
                if (k == -ENOMEM) {
                        r = k;
                        break;
                }
                if (k < 0) {
                        report_problem(report, de->d_name, problem ? problem : "unreadable");
                        continue;
                }
                Entry e = {
                        .finished = rec.state == COMMAND_RECORD_FINISHED,
                        .begun_at = rec.begun_at,
                        .finished_at = rec.finished_at,
                };
                memcpy(e.name, de->d_name, NAME_SIZE);
                command_record_done(&rec);
                r = entry_add(j, &e, false);
        }
        closedir(d);
        if (r < 0)
                return r;

        if (j->n_entries > 0)
                qsort(j->entries, j->n_entries, sizeof *j->entries, entry_compare);
        return 0;
}

CommandJournal *command_journal_free(CommandJournal *j) {
        if (j) {
                free(j->dir_path);
                if (j->dir_fd >= 0)
                        close(j->dir_fd);
                free(j->entries);
                free(j);
        }
        return NULL;
}

int command_journal_open(const char *state_dir, CommandJournal **ret, CommandJournalReport *ret_report) {
        _cleanup_(command_journal_freep) CommandJournal *j = NULL;
        CommandJournalReport report = {};
        int r;

        if (isempty(state_dir))
                return -EINVAL;
        j = calloc(1, sizeof *j);
        if (!j)
                return -ENOMEM;
        j->dir_fd = -1;
        j->max_records = COMMAND_JOURNAL_MAX_RECORDS;
        if (asprintf(&j->dir_path, "%s/commands", state_dir) < 0) {
                j->dir_path = NULL;
                return -ENOMEM;
        }

        /* A new directory entry is durable only once its parent is synced: without that, a
         * begin that returned could vanish with the whole directory at a power loss. */
        if (mkdir(j->dir_path, 0700) >= 0) {
                r = directory_fsync(state_dir);
                if (r < 0)
                        return r;
        } else if (errno != EEXIST)
                return -errno;
        j->dir_fd = open(j->dir_path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (j->dir_fd < 0)
                return -errno;
        if (flock(j->dir_fd, LOCK_EX | LOCK_NB) < 0)
                return errno == EWOULDBLOCK ? -EBUSY : -errno;

        r = load(j, &report);
        if (r < 0)
                return r;

        r = command_journal_prune(j, now_usec(CLOCK_REALTIME));
        if (r < 0)
                return r;
        report.pruned = (size_t) r;
        report.records = j->n_entries;
        for (size_t i = 0; i < j->n_entries; i++)
                report.in_progress += !j->entries[i].finished;

        if (ret_report)
                *ret_report = report;
        *ret = TAKE_PTR(j);
        return 0;
}

void command_journal_set_max_records(CommandJournal *j, size_t max_records) {
        j->max_records = max_records > 0 ? max_records : 1;
}

size_t command_journal_count(const CommandJournal *j) {
        return j->n_entries;
}

int command_journal_lookup(CommandJournal *j, const char *command_id, CommandRecord *ret) {
        char name[NAME_SIZE];
        const char *problem = NULL;

        if (!command_id_is_valid(command_id))
                return -ENOENT;
        int r = record_name(command_id, name);
        if (r < 0)
                return r;
        if (!entry_find(j, name))
                /* A file under this name that the index lacks was skipped as corrupt on open:
                 * the command may have run, so it must not look new. */
                return faccessat(j->dir_fd, name, F_OK, 0) < 0 && errno == ENOENT ? -ENOENT : -EBADMSG;
        r = record_read(j, name, ret, &problem);
        return r == -ENOENT ? -EBADMSG : r; /* the index says it exists */
}

static int sync_dir(CommandJournal *j) {
        return fsync(j->dir_fd) < 0 ? -errno : 0;
}

typedef struct PruneCandidate {
        usec_t finished_at;
        size_t index; /* into entries */
} PruneCandidate;

static int compare_finished_at(const void *a, const void *b) {
        usec_t x = ((const PruneCandidate *) a)->finished_at, y = ((const PruneCandidate *) b)->finished_at;
        return x < y ? -1 : x > y;
}

/* Remove finished records that are too old, then the oldest finished ones until at most
 * keep remain. Returns the number removed. */
static int prune_to(CommandJournal *j, usec_t now, size_t keep) {
        _cleanup_free_ PruneCandidate *finished = NULL;
        _cleanup_free_ bool *remove = NULL;
        size_t n_finished = 0, n_removed = 0;

        if (j->n_entries == 0)
                return 0;
        finished = calloc(j->n_entries, sizeof *finished);
        remove = calloc(j->n_entries, sizeof *remove);
        if (!finished || !remove)
                return -ENOMEM;

        for (size_t i = 0; i < j->n_entries; i++)
                if (j->entries[i].finished)
                        finished[n_finished++] = (PruneCandidate) { j->entries[i].finished_at, i };
        qsort(finished, n_finished, sizeof *finished, compare_finished_at);

        size_t excess = j->n_entries > keep ? j->n_entries - keep : 0;
        for (size_t i = 0; i < n_finished; i++) {
                const Entry *e = &j->entries[finished[i].index];
                bool expired = e->finished_at <= now && now - e->finished_at >= COMMAND_JOURNAL_RETENTION;
                if (!expired && n_removed >= excess)
                        break; /* oldest first: the rest are younger and not needed */
                if (unlinkat(j->dir_fd, e->name, 0) < 0 && errno != ENOENT)
                        continue; /* keep it indexed; the next prune tries again */
                remove[finished[i].index] = true;
                n_removed++;
        }

        size_t out = 0;
        for (size_t i = 0; i < j->n_entries; i++)
                if (!remove[i])
                        j->entries[out++] = j->entries[i];
        j->n_entries = out;

        if (n_removed > 0) {
                int r = sync_dir(j);
                if (r < 0)
                        return r;
        }
        return (int) n_removed;
}

int command_journal_prune(CommandJournal *j, usec_t now) {
        return prune_to(j, now, j->max_records);
}

int command_journal_begin(CommandJournal *j, const char *command_id, const char *action, const char *context_json) {
        char name[NAME_SIZE];
        int r;

        if (!command_id_is_valid(command_id) || !action_is_valid(action) ||
            (context_json && strlen(context_json) > COMMAND_JOURNAL_CONTEXT_MAX))
                return -EINVAL;
        r = record_name(command_id, name);
        if (r < 0)
                return r;
        if (entry_find(j, name))
                return -EEXIST;

        usec_t now = now_usec(CLOCK_REALTIME);
        if (j->n_entries >= j->max_records) {
                r = prune_to(j, now, j->max_records - 1);
                if (r < 0)
                        return r;
                if (j->n_entries >= j->max_records)
                        return -ENOSPC;
        }

        CommandRecord rec = {
                .command_id = (char *) command_id,
                .action = (char *) action,
                .state = COMMAND_RECORD_IN_PROGRESS,
                .begun_at = now,
                .context_json = (char *) context_json,
        };
        Entry e = { .begun_at = now };
        memcpy(e.name, name, NAME_SIZE);
        /* Index first so that running out of memory cannot leave an unindexed file. */
        r = entry_add(j, &e, true);
        if (r < 0)
                return r;
        r = record_write(j, &rec);
        if (r < 0) {
                entry_remove(j, entry_find(j, name));
                return r;
        }
        return 0;
}

int command_journal_forget(CommandJournal *j, const char *command_id) {
        char name[NAME_SIZE];

        if (!command_id_is_valid(command_id))
                return -EINVAL;
        int r = record_name(command_id, name);
        if (r < 0)
                return r;
        Entry *e = entry_find(j, name);
        if (!e)
                return -ENOENT;
        if (unlinkat(j->dir_fd, name, 0) < 0 && errno != ENOENT)
                return -errno;
        entry_remove(j, e);
        return sync_dir(j);
}

int command_journal_finish(CommandJournal *j, const char *command_id, const char *result_json) {
        CommandRecord rec = {};
        char name[NAME_SIZE];
        const char *problem = NULL;
        int r;

        if (!command_id_is_valid(command_id) || !result_json || strlen(result_json) > COMMAND_JOURNAL_RESULT_MAX)
                return -EINVAL;
        r = record_name(command_id, name);
        if (r < 0)
                return r;
        Entry *e = entry_find(j, name);
        if (!e)
                return -ENOENT;
        if (e->finished)
                return -EALREADY;

        r = record_read(j, name, &rec, &problem);
        if (r < 0)
                return r == -ENOENT ? -EBADMSG : r;

        usec_t now = now_usec(CLOCK_REALTIME);
        free(rec.result_json);
        rec.result_json = strdup(result_json);
        if (!rec.result_json) {
                command_record_done(&rec);
                return -ENOMEM;
        }
        rec.state = COMMAND_RECORD_FINISHED;
        rec.finished_at = now;
        r = record_write(j, &rec);
        command_record_done(&rec);
        if (r < 0)
                return r;
        e->finished = true;
        e->finished_at = now;
        return 0;
}

static int compare_begun_at(const void *a, const void *b) {
        usec_t x = ((const CommandRecord *) a)->begun_at, y = ((const CommandRecord *) b)->begun_at;
        return x < y ? -1 : x > y;
}

int command_journal_pending(CommandJournal *j, CommandRecord **ret, size_t *ret_n) {
        CommandRecord *records = NULL;
        size_t n = 0, n_pending = 0;

        for (size_t i = 0; i < j->n_entries; i++)
                n_pending += !j->entries[i].finished;
        if (n_pending > 0) {
                records = calloc(n_pending, sizeof *records);
                if (!records)
                        return -ENOMEM;
        }

        for (size_t i = 0; i < j->n_entries && n < n_pending; i++) {
                const char *problem = NULL;
                if (j->entries[i].finished)
                        continue;
                int r = record_read(j, j->entries[i].name, &records[n], &problem);
                if (r == -ENOMEM) {
                        command_records_free(records, n);
                        return r;
                }
                if (r >= 0)
                        n++;
        }
        if (n > 1)
                qsort(records, n, sizeof *records, compare_begun_at);

        if (n == 0)
                records = mfree(records);
        *ret = records;
        *ret_n = n;
        return 0;
}
