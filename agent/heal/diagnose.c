/* heal/diagnose.c: what a person would look at first when a check fails, read by heald at the
 * moment of failure: for a unit systemd's verdict and its last journal lines, for memory and
 * load the top processes, for disk the mount and its largest directories. Every part is
 * bounded so that an event stays small and the loop is held up briefly. */
#define _GNU_SOURCE 1 /* sigabbrev_np() */
#include "heal/diagnose.h"

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/stat.h>
#include <systemd/sd-journal.h>
#include <unistd.h>

#include "codec.h"

#define DISK_SCAN_BUDGET (300 * USEC_PER_MSEC) /* all top-level directories of the mount together */
#define DISK_SCAN_DEPTH 64
#define PROC_STAT_MAX 4096
#define SECRET_MASK "***"

/* ---- secrets ---- */

static bool is_value_end(char c) {
        return c == '\0' || isspace((unsigned char) c) || c == ',' || c == ';' || c == '&' || c == '"' || c == '\'';
}

/* Replace s[0..) up to the value's end with the mask; returns where the line goes on. */
static char *mask_value(char *s) {
        size_t n = 0;
        while (!is_value_end(s[n]))
                n++;
        if (n <= strlen(SECRET_MASK)) {
                memset(s, '*', n);
                return s + n;
        }
        memcpy(s, SECRET_MASK, strlen(SECRET_MASK));
        memmove(s + strlen(SECRET_MASK), s + n, strlen(s + n) + 1);
        return s + strlen(SECRET_MASK);
}

static bool is_access_key_id(const char *s) {
        if (strncmp(s, "AKIA", 4) != 0 && strncmp(s, "ASIA", 4) != 0)
                return false;
        for (size_t i = 4; i < 20; i++)
                if (!isupper((unsigned char) s[i]) && !isdigit((unsigned char) s[i]))
                        return false;
        return !isalnum((unsigned char) s[20]);
}

void diagnosis_mask_secrets(char *line) {
        static const char *const keys[] = { "password", "passwd", "secret", "token", "api_key",
                                            "apikey", "authorization", "credential" };
        for (char *p = line; *p;) {
                if (is_access_key_id(p)) {
                        p = mask_value(p);
                        continue;
                }
                if (strncasecmp(p, "Bearer ", 7) == 0) {
                        p = mask_value(p + 7);
                        continue;
                }
                bool masked = false;
                for (size_t i = 0; i < ELEMENTSOF(keys) && !masked; i++) {
                        size_t k = strlen(keys[i]);
                        if (strncasecmp(p, keys[i], k) != 0)
                                continue;
                        /* the key may go on ("secret_access_key", "tokens") up to its separator */
                        char *q = p + k;
                        while (isalnum((unsigned char) *q) || *q == '_' || *q == '-')
                                q++;
                        if (*q == '"' || *q == '\'')
                                q++;
                        if (*q != '=' && *q != ':')
                                continue;
                        q++;
                        while (*q == ' ' || *q == '"' || *q == '\'')
                                q++;
                        if (strncasecmp(q, "Bearer ", 7) == 0 || strncasecmp(q, "Basic ", 6) == 0)
                                q = strchr(q, ' ') + 1;
                        p = mask_value(q);
                        masked = true;
                }
                if (!masked)
                        p++;
        }
}

/* ---- units ---- */

static bool add_main_process(cJSON *d, const UnitState *st) {
        if (st->exec_main_code == CLD_EXITED)
                return cJSON_AddNumberToObject(d, "exit_code", st->exec_main_status);
        if (st->exec_main_code != CLD_KILLED && st->exec_main_code != CLD_DUMPED)
                return true; /* the main process never ended, or the unit is no service */
        char name[32];
        const char *abbrev = sigabbrev_np(st->exec_main_status);
        if (abbrev)
                snprintf(name, sizeof name, "SIG%s", abbrev);
        else
                snprintf(name, sizeof name, "%d", st->exec_main_status);
        return cJSON_AddStringToObject(d, "signal", name) &&
               cJSON_AddBoolToObject(d, "core_dumped", st->exec_main_code == CLD_DUMPED);
}

int diagnosis_unit_new(const char *unit, const UnitState *st, const char *const *lines, size_t n, cJSON **ret) {
        _cleanup_cjson_ cJSON *d = cJSON_CreateObject();
        cJSON *journal = d ? cJSON_AddArrayToObject(d, "journal") : NULL;
        if (!journal || !cJSON_AddStringToObject(d, "unit", unit) || !cJSON_AddStringToObject(d, "result", st->result) ||
            !add_main_process(d, st) || !cJSON_AddNumberToObject(d, "n_restarts", st->n_restarts))
                return -ENOMEM;

        /* Newest lines matter most: keep them, drop the oldest past the byte bound. */
        size_t first = n, bytes = 0;
        char shown[DIAGNOSIS_LINE_MAX];
        while (first > 0) {
                codec_escape_copy(shown, sizeof shown, lines[first - 1], strlen(lines[first - 1]));
                if (bytes + strlen(shown) > DIAGNOSIS_JOURNAL_BYTES)
                        break;
                bytes += strlen(shown);
                first--;
        }
        bool oom = strcmp(st->result, "oom-kill") == 0;
        for (size_t i = first; i < n; i++) {
                codec_escape_copy(shown, sizeof shown, lines[i], strlen(lines[i]));
                diagnosis_mask_secrets(shown);
                oom = oom || strstr(shown, "OOM killer") || strstr(shown, "oom-kill");
                if (!cJSON_AddItemToArray(journal, cJSON_CreateString(shown)))
                        return -ENOMEM;
        }
        if (!cJSON_AddBoolToObject(d, "oom_killed", oom) ||
            !cJSON_AddBoolToObject(d, "journal_truncated", first > 0))
                return -ENOMEM;
        *ret = TAKE_PTR(d);
        return 0;
}

/* The unit's last lines, its own and systemd's about it (UNIT=), newest first into lines[]. */
static size_t journal_tail(const char *unit, char *lines[static DIAGNOSIS_JOURNAL_LINES]) {
        sd_journal *j = NULL;
        char match[256];
        size_t n = 0;
        if (sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM) < 0)
                return 0;
        if (bsprintf(match, "_SYSTEMD_UNIT=%s", unit) >= 0 && sd_journal_add_match(j, match, 0) >= 0 &&
            sd_journal_add_disjunction(j) >= 0 && bsprintf(match, "UNIT=%s", unit) >= 0 &&
            sd_journal_add_match(j, match, 0) >= 0 && sd_journal_seek_tail(j) >= 0)
                while (n < DIAGNOSIS_JOURNAL_LINES && sd_journal_previous(j) > 0) {
                        const void *data;
                        size_t len;
                        if (sd_journal_get_data(j, "MESSAGE", &data, &len) < 0 || len < strlen("MESSAGE="))
                                continue;
                        lines[n] = strndup((const char *) data + strlen("MESSAGE="), len - strlen("MESSAGE="));
                        if (!lines[n])
                                break;
                        n++;
                }
        sd_journal_close(j);
        return n;
}

static int diagnose_unit(const char *unit, const UnitState *st, cJSON **ret) {
        char *newest_first[DIAGNOSIS_JOURNAL_LINES];
        const char *oldest_first[DIAGNOSIS_JOURNAL_LINES] = {};
        size_t n = journal_tail(unit, newest_first);
        for (size_t i = 0; i < n; i++)
                oldest_first[i] = newest_first[n - 1 - i];
        int r = diagnosis_unit_new(unit, st, oldest_first, n, ret);
        for (size_t i = 0; i < n; i++)
                free(newest_first[i]);
        return r;
}

/* ---- processes ---- */

int diagnosis_parse_stat(const char *stat, size_t len, double uptime_s, long ticks_per_s, uint64_t page_kib,
                         ProcessSample *ret) {
        char text[PROC_STAT_MAX];
        if (len == 0 || len >= sizeof text || ticks_per_s <= 0)
                return -EBADMSG;
        memcpy(text, stat, len);
        text[len] = 0;
        /* comm may hold spaces and parentheses: it ends at the last ')' */
        char *open = strchr(text, '('), *close = strrchr(text, ')');
        if (!open || !close || close < open)
                return -EBADMSG;
        char *end;
        long pid = strtol(text, &end, 10);
        if (end == text || pid <= 0 || pid > INT32_MAX)
                return -EBADMSG;
        ProcessSample s = { .pid = (int) pid };
        codec_escape_copy(s.command, sizeof s.command, open + 1, (size_t) (close - open - 1));
        /* after comm, field 3 on: state ppid pgrp session tty tpgid flags minflt cminflt majflt
         * cmajflt utime(14) stime(15) cutime cstime priority nice threads itrealvalue starttime(22)
         * vsize rss(24) */
        unsigned long long utime = 0, stime = 0, starttime = 0, rss = 0;
        unsigned field = 3;
        char *save = NULL;
        for (char *tok = strtok_r(close + 1, " ", &save); tok && field <= 24; tok = strtok_r(NULL, " ", &save), field++) {
                unsigned long long *dst = field == 14 ? &utime : field == 15 ? &stime : field == 22 ? &starttime :
                                          field == 24 ? &rss : NULL;
                if (!dst)
                        continue;
                *dst = strtoull(tok, &end, 10);
                if (*end)
                        return -EBADMSG;
        }
        if (field <= 24)
                return -EBADMSG;
        double age = uptime_s - (double) starttime / (double) ticks_per_s;
        s.rss_kib = rss * page_kib;
        s.cpu_percent = age > 0 ? 100.0 * (double) (utime + stime) / (double) ticks_per_s / age : 0;
        *ret = s;
        return 0;
}

/* Keep top[0..*n) the largest by key, at most DIAGNOSIS_TOP_PROCESSES, sorted descending. */
static void top_insert(ProcessSample top[static DIAGNOSIS_TOP_PROCESSES], size_t *n, const ProcessSample *s,
                       bool by_cpu) {
        double key = by_cpu ? s->cpu_percent : (double) s->rss_kib;
        size_t i = *n;
        while (i > 0 && key > (by_cpu ? top[i - 1].cpu_percent : (double) top[i - 1].rss_kib))
                i--;
        if (i >= DIAGNOSIS_TOP_PROCESSES)
                return;
        size_t last = *n < DIAGNOSIS_TOP_PROCESSES ? *n : DIAGNOSIS_TOP_PROCESSES - 1;
        memmove(&top[i + 1], &top[i], (last - i) * sizeof *top);
        top[i] = *s;
        if (*n < DIAGNOSIS_TOP_PROCESSES)
                (*n)++;
}

static int diagnose_processes(bool by_cpu, cJSON **ret) {
        ProcessSample top[DIAGNOSIS_TOP_PROCESSES];
        size_t n = 0;
        _cleanup_free_ char *uptime_text = NULL;
        double uptime_s = 0;
        if (read_file_full("/proc/uptime", 128, &uptime_text, NULL) >= 0)
                uptime_s = strtod(uptime_text, NULL);
        long ticks = sysconf(_SC_CLK_TCK);
        uint64_t page_kib = (uint64_t) sysconf(_SC_PAGESIZE) / 1024;
        DIR *proc = opendir("/proc");
        if (proc) {
                struct dirent *de;
                while ((de = readdir(proc))) {
                        char path[64];
                        _cleanup_free_ char *stat = NULL;
                        size_t len;
                        ProcessSample s;
                        if (!isdigit((unsigned char) de->d_name[0]) || bsprintf(path, "/proc/%s/stat", de->d_name) < 0 ||
                            read_file_full(path, PROC_STAT_MAX - 1, &stat, &len) < 0 ||
                            diagnosis_parse_stat(stat, len, uptime_s, ticks, page_kib, &s) < 0)
                                continue; /* gone meanwhile, or a kernel thread's odd line */
                        top_insert(top, &n, &s, by_cpu);
                }
                closedir(proc);
        }
        _cleanup_cjson_ cJSON *d = cJSON_CreateObject();
        cJSON *list = d ? cJSON_AddArrayToObject(d, by_cpu ? "busiest_processes" : "largest_processes") : NULL;
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                cJSON *p = cJSON_CreateObject();
                if (!cJSON_AddItemToArray(list, p) || !cJSON_AddNumberToObject(p, "pid", top[i].pid) ||
                    !cJSON_AddStringToObject(p, "command", top[i].command) ||
                    !(by_cpu ? cJSON_AddNumberToObject(p, "cpu_percent", (double) (long long) (top[i].cpu_percent * 10) / 10)
                             : cJSON_AddNumberToObject(p, "rss_kib", (double) top[i].rss_kib)))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* ---- disk ---- */

/* The mount point holding path and its file system type, from /proc/self/mountinfo (the
 * longest mount point that is a prefix of path on a '/' boundary). */
static int find_mount(const char *path, char mount[static 4096], char fstype[static 64]) {
        _cleanup_free_ char *info = NULL;
        int r = read_file_full("/proc/self/mountinfo", 1024 * 1024, &info, NULL);
        if (r < 0)
                return r;
        size_t best = 0;
        for (char *line = info, *next; line && *line; line = next) {
                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                char point[4096], type[64];
                /* id parent major:minor root mount-point options... - fstype source super-options */
                const char *dash = strstr(line, " - ");
                if (!dash || sscanf(line, "%*s %*s %*s %*s %4095s", point) != 1 || sscanf(dash + 3, "%63s", type) != 1)
                        continue;
                size_t k = strlen(point);
                bool under = strncmp(path, point, k) == 0 &&
                             (k == 1 || path[k] == '\0' || path[k] == '/');
                if (under && k >= best) { /* a later mount over the same point hides the earlier */
                        best = k;
                        memcpy(mount, point, k + 1);
                        memcpy(fstype, type, strlen(type) + 1);
                }
        }
        return best > 0 ? 0 : -ENOENT;
}

/* Add the bytes under dirfd (which this takes) on device dev to *bytes; -ETIME when the deadline passed. */
static int directory_bytes(int dirfd, dev_t dev, usec_t deadline, unsigned depth, uint64_t *bytes) {
        DIR *dir = fdopendir(dirfd);
        if (!dir) {
                close(dirfd);
                return 0;
        }
        int r = 0;
        struct dirent *de;
        while (r >= 0 && (de = readdir(dir))) {
                struct stat st;
                if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                    fstatat(dirfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || st.st_dev != dev)
                        continue;
                *bytes += (uint64_t) st.st_blocks * 512;
                if (now_usec(CLOCK_MONOTONIC) > deadline)
                        r = -ETIME;
                else if (S_ISDIR(st.st_mode) && depth < DISK_SCAN_DEPTH) {
                        int sub = openat(dirfd, de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        if (sub >= 0)
                                r = directory_bytes(sub, dev, deadline, depth + 1, bytes);
                }
        }
        closedir(dir);
        return r;
}

typedef struct DirectorySize {
        char name[256];
        uint64_t bytes;
} DirectorySize;

static int diagnose_disk(const char *path, cJSON **ret) {
        char mount[4096], fstype[64];
        _cleanup_cjson_ cJSON *d = cJSON_CreateObject();
        if (!d)
                return -ENOMEM;
        if (find_mount(path, mount, fstype) < 0) {
                *ret = TAKE_PTR(d);
                return 0;
        }
        DirectorySize top[DIAGNOSIS_TOP_DIRECTORIES] = {};
        bool complete = true;
        usec_t deadline = now_usec(CLOCK_MONOTONIC) + DISK_SCAN_BUDGET;
        struct stat root;
        DIR *dir = opendir(mount);
        if (dir && fstat(dirfd(dir), &root) == 0) {
                struct dirent *de;
                while (complete && (de = readdir(dir))) {
                        struct stat st;
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                            fstatat(dirfd(dir), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISDIR(st.st_mode) ||
                            st.st_dev != root.st_dev)
                                continue;
                        int fd = openat(dirfd(dir), de->d_name, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
                        uint64_t bytes = (uint64_t) st.st_blocks * 512;
                        complete = fd < 0 || directory_bytes(fd, root.st_dev, deadline, 1, &bytes) >= 0;
                        size_t i = DIAGNOSIS_TOP_DIRECTORIES;
                        while (i > 0 && bytes > top[i - 1].bytes)
                                i--;
                        if (i < DIAGNOSIS_TOP_DIRECTORIES) {
                                memmove(&top[i + 1], &top[i], (DIAGNOSIS_TOP_DIRECTORIES - 1 - i) * sizeof *top);
                                codec_escape_copy(top[i].name, sizeof top[i].name, de->d_name, strlen(de->d_name));
                                top[i].bytes = bytes;
                        }
                }
        }
        if (dir)
                closedir(dir);
        char shown[512];
        codec_escape_copy(shown, sizeof shown, mount, strlen(mount));
        cJSON *list;
        if (!cJSON_AddStringToObject(d, "mount", shown) || !cJSON_AddStringToObject(d, "filesystem", fstype) ||
            !(list = cJSON_AddArrayToObject(d, "largest_directories")) ||
            !cJSON_AddBoolToObject(d, "sizes_complete", complete))
                return -ENOMEM;
        for (size_t i = 0; i < DIAGNOSIS_TOP_DIRECTORIES && top[i].bytes > 0; i++) {
                cJSON *e = cJSON_CreateObject();
                if (!cJSON_AddItemToArray(list, e) || !cJSON_AddStringToObject(e, "name", top[i].name) ||
                    !cJSON_AddNumberToObject(e, "bytes", (double) top[i].bytes))
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(d);
        return 0;
}

int diagnose(const CheckConfig *cc, const UnitState *unit, cJSON **ret) {
        switch (cc->type) {
        case CHECK_UNIT:
                if (unit)
                        return diagnose_unit(cc->unit, unit, ret);
                break;
        case CHECK_MEMORY:
                return diagnose_processes(false, ret);
        case CHECK_LOAD:
                return diagnose_processes(true, ret);
        case CHECK_DISK:
                return diagnose_disk(cc->path, ret);
        default:
                break;
        }
        cJSON *d = cJSON_CreateObject();
        if (!d)
                return -ENOMEM;
        *ret = d;
        return 0;
}
