/* heal/verify.h: what commands ask of heal/: run checks now and say whether they pass. */
#pragma once

#include <cjson/cJSON.h>

#include "util.h"

typedef struct Monitor Monitor;

/* A verification: the chosen checks run (probes at least every second) until each passed
 * recover_after times in a row (or, with once, until each produced one result), or the
 * timeout. done() gets the verdict and every check's latest result (an array of objects:
 * check, check_type, target, healthy, observed, threshold, message); it owns results. */
typedef struct Verify Verify;
typedef void (*verify_done_fn)(bool healthy, cJSON *results, void *userdata);

/* names: the checks to run (NULL: all). units: if set, only the checks that watch or act on
 * one of these units. No check selected: done() runs from the loop with healthy = true and an
 * empty array. -ENOENT: a named check does not exist. *ret is borrowed until done(). A reload
 * of the monitor keeps the verification going with the checks that remain. */
int verify_start(Monitor *m, char *const *names, char *const *units, usec_t timeout, bool once,
                 verify_done_fn done, void *userdata, Verify **ret);
/* Stops it without calling done(); NULL is fine. */
void verify_cancel(Verify *v);
