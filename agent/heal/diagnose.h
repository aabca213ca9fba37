/* heal/diagnose.h: the evidence on the instance at the moment a check fails, read while it is
 * still there: the bounded "diagnosis" object of Check Failed, Remediation Failed and
 * Remediation Escalated (agent/schemas/check-failed.json says what each type gets). */
#pragma once

#include <cjson/cJSON.h>

#include "config.h"
#include "io/units.h"

#define DIAGNOSIS_JOURNAL_LINES 20
#define DIAGNOSIS_JOURNAL_BYTES 4096 /* all lines together, after escaping */
#define DIAGNOSIS_LINE_MAX 512       /* one line, after escaping; longer ones end in "..." */
#define DIAGNOSIS_TOP_PROCESSES 5
#define DIAGNOSIS_TOP_DIRECTORIES 5

/* The diagnosis of check cc. unit: the unit's last state (unit checks), else NULL. Reads the
 * journal, /proc and the file system synchronously, each bounded (lines, processes, and for
 * disk a time budget), like the synchronous checks. *ret: caller owns it. Returns 0 or
 * -ENOMEM; what cannot be read is left out, never an error. */
int diagnose(const CheckConfig *cc, const UnitState *unit, cJSON **ret);

/* Pure, for diagnose() and its tests. */

/* The unit part: result, how the main process ended (exit_code, or signal and core_dumped),
 * n_restarts, oom_killed (systemd's "oom-kill" result, or the journal says so), and journal:
 * lines[0..n) oldest first, each escaped, secrets masked, cut at DIAGNOSIS_LINE_MAX; the
 * oldest dropped while they exceed DIAGNOSIS_JOURNAL_BYTES. Returns 0 or -ENOMEM. */
int diagnosis_unit_new(const char *unit, const UnitState *st, const char *const *lines, size_t n, cJSON **ret);

/* Mask in place what looks like a secret in a log line: the value after password, passwd,
 * secret, token, api_key, apikey, authorization, credential (followed by '=' or ':'), after
 * "Bearer ", and AWS access key ids (AKIA/ASIA...). A heuristic: heald cannot know every
 * program's secrets, so it masks the common spellings. */
void diagnosis_mask_secrets(char *line);

typedef struct ProcessSample {
        int pid;
        char command[64];   /* escaped comm */
        uint64_t rss_kib;
        double cpu_percent; /* CPU time over the process's lifetime, as ps(1)'s %CPU */
} ProcessSample;

/* Parse the text of /proc/PID/stat (stat[0..len)) into *ret: comm, rss in pages (times
 * page_kib), CPU share given the system's uptime in seconds and clock ticks per second.
 * -EBADMSG when it is not a stat line. */
int diagnosis_parse_stat(const char *stat, size_t len, double uptime_s, long ticks_per_s, uint64_t page_kib,
                         ProcessSample *ret);
