/* events/event.h: the event record heald keeps in its outbox, one JSON document per event. */
#pragma once

#include <cjson/cJSON.h>

#include "util.h"

/* Record format (compact JSON, version 1):
 *   {"v":1,"time":<usec since the epoch>,"type":"<detail type>","detail":{...}}
 * time is a JSON integer; it is limited to 2^53 so any JSON reader keeps it exact. */
#define EVENT_RECORD_VERSION  1
#define EVENT_DETAIL_TYPE_MAX 128
#define EVENT_TIME_MAX        ((usec_t) 1 << 53)

typedef struct EventRecord {
        char *detail_type; /* e.g. "Agent Started" */
        char *detail_json; /* compact JSON object text */
        usec_t time;       /* wall clock, usec since the epoch: when the event happened */
} EventRecord;

/* Detail types are non-empty, at most EVENT_DETAIL_TYPE_MAX bytes of printable ASCII. */
bool event_detail_type_is_valid(const char *detail_type);

/* Encode a record. detail: a JSON object (borrowed) or NULL for {}. *ret: NUL-terminated
 * compact JSON, caller frees. -EINVAL for a bad detail type or a detail that is not an
 * object, -ERANGE for a time past EVENT_TIME_MAX, -ENOMEM. */
int event_record_encode(const char *detail_type, const cJSON *detail, usec_t time, char **ret);

/* Decode a record from data[0..len) (need not be NUL-terminated). On success *ret owns its
 * strings (release with event_record_done()). On failure returns -EBADMSG (or -ENOMEM) and,
 * if ret_error is not NULL, a message naming the bad field (caller frees). */
int event_record_decode(const char *data, size_t len, EventRecord *ret, char **ret_error);

/* Free the record's strings and reset it; NULL and already-done records are fine. */
void event_record_done(EventRecord *r);
