/* commands/journal.h: durable memory of the commands heald ran (state_dir/commands/): begun, finished, their results. */
#pragma once

#include "util.h"

#define COMMAND_JOURNAL_RETENTION   (7 * 24 * USEC_PER_HOUR) /* finished records older than this are pruned */
#define COMMAND_JOURNAL_MAX_RECORDS ((size_t) 10000)
#define COMMAND_JOURNAL_ID_MAX      256          /* bytes of a command id */
#define COMMAND_JOURNAL_CONTEXT_MAX (64 * 1024)  /* bytes of context JSON */
#define COMMAND_JOURNAL_RESULT_MAX  (256 * 1024) /* bytes of result JSON */

typedef struct CommandJournal CommandJournal;

typedef enum CommandRecordState {
        COMMAND_RECORD_IN_PROGRESS, /* begun, not finished: after a crash or reboot, verify it */
        COMMAND_RECORD_FINISHED,    /* done; result_json is what was reported */
} CommandRecordState;

/* One command's record. Every string is owned; free with command_record_done(). */
typedef struct CommandRecord {
        char *command_id;
        char *action;
        CommandRecordState state;
        usec_t begun_at;    /* wall clock, usec since the epoch */
        usec_t finished_at; /* wall clock; 0 while in progress */
        char *context_json; /* NULL or the JSON given to command_journal_begin() */
        char *result_json;  /* NULL while in progress, else the JSON given to command_journal_finish() */
} CommandRecord;

void command_record_done(CommandRecord *r);
/* Free an array of n records (from command_journal_pending()); returns NULL. NULL is fine. */
CommandRecord *command_records_free(CommandRecord *records, size_t n);

typedef struct CommandJournalReport {
        size_t records;           /* after open */
        size_t in_progress;       /* of those, begun but not finished */
        size_t corrupt;           /* files skipped: unreadable, not a record, or under the wrong name */
        size_t pruned;            /* removed by the pruning done on open */
        char first_problem[256];  /* "" or e.g. "commands/ab12….json: not a JSON object, skipped" */
} CommandJournalReport;

/* Open (creating it 0700 if needed) state_dir/commands; state_dir must exist. Loads every
 * record, skipping (and counting in *ret_report, which may be NULL) corrupt files, which
 * are never fatal, then prunes as command_journal_prune() at the current wall-clock time.
 * -EBUSY if another CommandJournal (in this or another process) has it open. Caller frees
 * *ret with command_journal_free(). */
int command_journal_open(const char *state_dir, CommandJournal **ret, CommandJournalReport *ret_report);
CommandJournal *command_journal_free(CommandJournal *j);
DEFINE_TRIVIAL_CLEANUP_FUNC(CommandJournal *, command_journal_free);

/* Cap the number of records (default COMMAND_JOURNAL_MAX_RECORDS, at least 1); takes effect at
 * the next begin or prune. */
void command_journal_set_max_records(CommandJournal *j, size_t max_records);
size_t command_journal_count(const CommandJournal *j);

/* The record of command_id: 0 with *ret (caller calls command_record_done()); -ENOENT when
 * there is none; -EBADMSG when its file is unreadable (skipped as corrupt on open, or gone bad
 * since): the command may have run; -ENOMEM, -EIO. */
int command_journal_lookup(CommandJournal *j, const char *command_id, CommandRecord *ret);

/* Record, durably (the file and the directory are synced before this returns), that command_id
 * (1..COMMAND_JOURNAL_ID_MAX bytes) with action (e.g. "reboot") is about to start.
 * context_json: NULL or JSON text (<= COMMAND_JOURNAL_CONTEXT_MAX) kept for whoever verifies
 * it later (e.g. the boot id before a reboot). If the journal is full the oldest finished
 * records make room. -EEXIST when command_id already has a record (look it up first);
 * -EINVAL for a bad id, action or context; -ENOSPC when full of commands in progress. */
int command_journal_begin(CommandJournal *j, const char *command_id, const char *action, const char *context_json);

/* Record, durably, that command_id finished and what was reported (result_json: JSON text,
 * <= COMMAND_JOURNAL_RESULT_MAX). -ENOENT: never begun; -EALREADY: already finished; -EINVAL. */
int command_journal_finish(CommandJournal *j, const char *command_id, const char *result_json);

/* Remove command_id's record, durably: for a command begun and then handed back unfinished
 * (systemd unreachable), so that its redelivery runs it. -ENOENT: no record; -EINVAL. */
int command_journal_forget(CommandJournal *j, const char *command_id);

/* The commands begun but not finished, oldest first: *ret (caller frees with
 * command_records_free(); NULL when none) and *ret_n. Records whose file went bad are left
 * out. -ENOMEM. */
int command_journal_pending(CommandJournal *j, CommandRecord **ret, size_t *ret_n);

/* Remove finished records whose finished_at is COMMAND_JOURNAL_RETENTION or more before now
 * (wall clock, usec since the epoch), then the oldest finished ones beyond the cap. Records
 * in progress are never pruned. Returns how many were removed, or a negative errno. */
int command_journal_prune(CommandJournal *j, usec_t now);
