/* io/journal_watch.c: sd-journal driven by its fd in the event loop. Starts at the tail, so old
 * entries are never re-read after a restart; a burst is handled in slices so a log storm
 * cannot starve the rest of the loop. */
#include "io/journal_watch.h"

#include <regex.h>
#include <systemd/sd-journal.h>

#define ENTRIES_PER_SLICE 500

struct JournalWatch {
        sd_journal *journal;
        regex_t regex;
        bool regex_ok;
        sd_event_source *io, *more, *timer;
        journal_match_fn found;
        void *userdata;
};

JournalWatch *journal_watch_free(JournalWatch *w) {
        if (!w)
                return NULL;
        sd_event_source_disable_unref(w->io);
        sd_event_source_disable_unref(w->more);
        sd_event_source_disable_unref(w->timer);
        if (w->journal)
                sd_journal_close(w->journal);
        if (w->regex_ok)
                regfree(&w->regex);
        free(w);
        return NULL;
}

/* Read up to a slice of new entries; returns >0 when more may be waiting. */
static int read_entries(JournalWatch *w) {
        char buf[JOURNAL_MESSAGE_MAX + 1];
        for (int i = 0; i < ENTRIES_PER_SLICE; i++) {
                int r = sd_journal_next(w->journal);
                if (r <= 0)
                        return r;
                const void *data;
                size_t len;
                if (sd_journal_get_data(w->journal, "MESSAGE", &data, &len) < 0 || len < 8)
                        continue;
                len -= 8; /* "MESSAGE=" */
                if (len > JOURNAL_MESSAGE_MAX)
                        len = JOURNAL_MESSAGE_MAX;
                memcpy(buf, (const char *) data + 8, len);
                buf[len] = 0; /* an embedded NUL just ends what the regex sees */
                if (regexec(&w->regex, buf, 0, NULL, 0) == 0)
                        w->found(buf, len, w->userdata);
        }
        return 1;
}

static void drain(JournalWatch *w) {
        int r = read_entries(w);
        (void) sd_event_source_set_enabled(w->more, r > 0 ? SD_EVENT_ONESHOT : SD_EVENT_OFF);
}

static int on_more(sd_event_source *s _unused_, void *userdata) {
        drain(userdata);
        return 0;
}

static int on_io(sd_event_source *s _unused_, int fd _unused_, uint32_t revents _unused_, void *userdata) {
        JournalWatch *w = userdata;
        if (sd_journal_process(w->journal) != SD_JOURNAL_NOP)
                drain(w);
        return 0;
}

/* Some file systems give no inotify events: sd-journal then asks to be woken up anyway. */
static int on_timer(sd_event_source *s, uint64_t usec _unused_, void *userdata) {
        JournalWatch *w = userdata;
        uint64_t t;
        if (sd_journal_process(w->journal) != SD_JOURNAL_NOP)
                drain(w);
        if (sd_journal_get_timeout(w->journal, &t) >= 0 && t != UINT64_MAX) {
                (void) sd_event_source_set_time(s, t);
                (void) sd_event_source_set_enabled(s, SD_EVENT_ONESHOT);
        }
        return 0;
}

int journal_watch_new(sd_event *event, char *const *matches, const char *pattern, journal_match_fn found,
                      void *userdata, JournalWatch **ret) {
        _cleanup_(journal_watch_freep) JournalWatch *w = calloc(1, sizeof *w);
        if (!w)
                return -ENOMEM;
        w->found = found;
        w->userdata = userdata;
        if (regcomp(&w->regex, pattern, REG_EXTENDED | REG_NOSUB) != 0)
                return -EINVAL;
        w->regex_ok = true;

        int r = sd_journal_open(&w->journal, SD_JOURNAL_LOCAL_ONLY);
        if (r < 0)
                return r;
        (void) sd_journal_set_data_threshold(w->journal, JOURNAL_MESSAGE_MAX + 8);
        for (char *const *m = matches; m && *m; m++) {
                r = sd_journal_add_match(w->journal, *m, 0);
                if (r < 0)
                        return r;
        }
        /* Start after the newest entry: only what happens from now on counts. */
        r = sd_journal_seek_tail(w->journal);
        if (r >= 0)
                r = sd_journal_previous(w->journal);
        if (r < 0)
                return r;

        int fd = sd_journal_get_fd(w->journal);
        if (fd < 0)
                return fd;
        r = sd_event_add_io(event, &w->io, fd, (uint32_t) sd_journal_get_events(w->journal), on_io, w);
        if (r < 0)
                return r;
        r = sd_event_add_defer(event, &w->more, on_more, w);
        if (r < 0)
                return r;
        (void) sd_event_source_set_enabled(w->more, SD_EVENT_OFF);
        uint64_t t;
        if (sd_journal_get_timeout(w->journal, &t) >= 0 && t != UINT64_MAX) {
                r = sd_event_add_time(event, &w->timer, CLOCK_MONOTONIC, t, USEC_PER_MSEC, on_timer, w);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(w);
        return 0;
}
