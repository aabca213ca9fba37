/* io/journal_watch.h: follow the journal from its current end and report entries whose MESSAGE
 * matches a POSIX extended regex (journal checks: OOM kills, file system errors...). */
#pragma once

#include <systemd/sd-event.h>

#include "util.h"

#define JOURNAL_MESSAGE_MAX 4096 /* bytes of MESSAGE matched and reported */

typedef struct JournalWatch JournalWatch;
/* message: the entry's MESSAGE, at most JOURNAL_MESSAGE_MAX bytes, NUL-terminated, raw
 * (may hold any bytes; escape before logging). Borrowed during the call. */
typedef void (*journal_match_fn)(const char *message, size_t len, void *userdata);

/* matches: NULL-terminated "FIELD=value" terms (may be NULL); pattern: POSIX ERE.
 * Returns -EINVAL for a bad regex, or the error of opening the journal. */
int journal_watch_new(sd_event *event, char *const *matches, const char *pattern, journal_match_fn found,
                      void *userdata, JournalWatch **ret);
JournalWatch *journal_watch_free(JournalWatch *w);
DEFINE_TRIVIAL_CLEANUP_FUNC(JournalWatch *, journal_watch_free);
