/* events/outbox.h: durable on-disk queue of events waiting to be accepted by EventBridge. */
#pragma once

#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

#include "util.h"

/* The on-disk format and the crash-consistency argument are in agent/events/OUTBOX.md.
 *
 * Not thread-safe: one Outbox is used from one thread (the daemon's event loop).
 * Functions return 0 (or a count) on success and a negative errno on failure; they never
 * log. Nothing returned is borrowed from the Outbox unless said so. */

typedef struct Outbox Outbox;

/* Largest payload one record may carry (EventBridge itself accepts 256 KiB per entry). */
#define OUTBOX_PAYLOAD_MAX ((size_t) 1024 * 1024)
/* Bytes a record takes on disk besides its payload. */
#define OUTBOX_RECORD_OVERHEAD ((size_t) 28)

/* What outbox_open() found, for the caller to log once. Problems are never fatal: a
 * corrupt record is skipped, a torn tail (a crash in the middle of an append) is cut off. */
typedef struct OutboxOpenReport {
        uint64_t records;         /* pending records after open */
        uint64_t bytes;           /* their on-disk bytes (as outbox_bytes()) */
        uint64_t corrupt_records; /* records or regions skipped (bad checksum, bad header) */
        uint64_t corrupt_bytes;   /* bytes skipped, torn tails included */
        uint64_t torn_tails;      /* files that ended in an incomplete record */
        uint64_t dropped;         /* as outbox_dropped(): dropped for max_bytes, not yet reported */
        int disk_error;           /* 0, or why tidying up could not write (a full disk): as outbox_disk_error() */
        char first_problem[256];  /* "" or e.g. "outbox/00000000000000a1.seg: offset 4096: payload checksum mismatch, skipped 65 bytes" */
} OutboxOpenReport;

/* Open (creating it 0700 if needed) state_dir/outbox; state_dir must exist. -EBUSY if another
 * Outbox (in this or another process) has it open. A disk that cannot be written (full) does
 * not fail the open: see ret_report->disk_error and outbox_append(). max_bytes caps the on-disk bytes of
 * pending records (payload + OUTBOX_RECORD_OVERHEAD each); 0 means no cap. If the pending
 * records already exceed it, the oldest are dropped (counted). ret_report may be NULL.
 * Caller frees *ret with outbox_free(). */
int outbox_open(const char *state_dir, uint64_t max_bytes, Outbox **ret, OutboxOpenReport *ret_report);

/* Close the files (syncing what outbox_remove_nosync() wrote, best effort); everything
 * appended and not removed stays pending on disk. Accepts NULL. */
Outbox *outbox_free(Outbox *o);
DEFINE_TRIVIAL_CLEANUP_FUNC(Outbox *, outbox_free);

/* Append one record (0 < len <= OUTBOX_PAYLOAD_MAX; empty payloads are -EINVAL) and make it
 * durable (one fdatasync) before returning its id. When the disk refuses the write (full,
 * failing), the record is held in memory instead, and still returns its id: it is sent like
 * the others but lost if heald dies first (outbox_in_memory(), outbox_disk_error() tell;
 * records in memory are capped at max_bytes too, oldest dropped and counted). Ids increase strictly, also across
 * restarts, and are never reused (only the id of an append that never returned, cut short by
 * a crash, may be handed out again). When the cap would be exceeded the oldest pending records
 * are dropped first (durably counted, see outbox_dropped()); a record larger than the cap
 * itself is -EFBIG. On failure nothing is appended as far as this process is concerned
 * (after a crash the record may still turn up: at-least-once). */
int outbox_append(Outbox *o, const void *data, size_t len, uint64_t *ret_id);

/* As outbox_append() for n records with a single fdatasync (a burst). ret_ids has room for
 * n ids. The records are appended all or (as far as this process knows) none. */
int outbox_append_many(Outbox *o, const struct iovec *records, size_t n, uint64_t *ret_ids);

/* Write-ahead: as outbox_append() but without the fdatasync. The record is with the kernel on
 * return, so it survives heald's own death (kill -9, a crash) at once, and a power loss only
 * once the next outbox_sync() (or a synced append, outbox_free()) returned: call outbox_sync()
 * as soon as what had to follow the write has been started. */
int outbox_append_nosync(Outbox *o, const void *data, size_t len, uint64_t *ret_id);

/* Pending records and their on-disk bytes (payload + OUTBOX_RECORD_OVERHEAD each). */
size_t outbox_count(const Outbox *o);
uint64_t outbox_bytes(const Outbox *o);

/* Write up to max pending ids greater than after_id into ids, oldest first; returns how
 * many. Start with after_id 0; continue with the last id returned. */
size_t outbox_list(const Outbox *o, uint64_t after_id, uint64_t *ids, size_t max);

/* Read a pending record's payload into a new NUL-terminated buffer (the NUL is not counted
 * in *ret_len); caller frees. -ENOENT if id is not pending, -EBADMSG if the bytes on disk no
 * longer match their checksum. */
int outbox_read(const Outbox *o, uint64_t id, char **ret_data, size_t *ret_len);

/* The ids were accepted by EventBridge: remove them durably (one fdatasync for the whole
 * call, so pass several completed batches at once when you can). Ids not pending (already
 * removed or dropped) are ignored. Returns how many were removed. */
int outbox_remove(Outbox *o, const uint64_t *ids, size_t n);

/* Group commit for a slow disk: as outbox_remove() but without the fdatasync. The removal
 * survives kill -9 at once (the kernel has it) but a power loss only after the next
 * outbox_sync() (or outbox_remove(), outbox_free()); a power loss before that may send those
 * records again, which at-least-once delivery allows. Call outbox_sync() once per loop
 * iteration after removing every batch that completed in it. outbox_sync() also makes the
 * records of outbox_append_nosync() durable. */
int outbox_remove_nosync(Outbox *o, const uint64_t *ids, size_t n);
int outbox_sync(Outbox *o);

/* EventBridge refused the record as malformed: append {"id":..,"reason":..,"record":"<payload>"}
 * as one line to state_dir/outbox/dead-letter.jsonl (fsync'd), then remove it. The payload is
 * written as a JSON string up to its first NUL byte (heald's payloads are JSON text). The file
 * stays within max_bytes: its oldest lines are dropped to make room, and a record too large
 * for the file on its own is written as "record_bytes":<its length> instead. Returns how many
 * old lines were dropped. */
int outbox_dead_letter(Outbox *o, uint64_t id, const char *reason, uint64_t max_bytes);

/* Pending records held in memory because the disk refused them; lost if heald dies first. */
size_t outbox_in_memory(const Outbox *o);

/* Why the last write to the disk failed (a negative errno, e.g. -ENOSPC), or 0 once a write
 * succeeded again. While it fails, new records are held in memory, and removals are applied
 * in memory and written to the ack log later (after a crash meanwhile they are sent again). */
int outbox_disk_error(const Outbox *o);

/* Records dropped to stay under max_bytes and not yet reported; survives restarts. */
uint64_t outbox_dropped(const Outbox *o);

/* The caller published an "Events Dropped" event covering n of them: subtract n durably.
 * -EINVAL if n exceeds outbox_dropped(). */
int outbox_dropped_reported(Outbox *o, uint64_t n);
