/* check.h: one run of a health check. A check never acts; it reports what it saw. One file
 * per type under checks/, each with its row of operations (CheckTypeOps): the synchronous ones
 * (disk, memory, load, file_age) answer at once, the probes (http, tcp, exec) answer later from
 * the event loop; units and journal patterns are event-driven (their results come from
 * io/units.c and io/journal_watch.c, through heal/monitor.c). */
#pragma once

#include <systemd/sd-event.h>

#include "config.h"
#include "io/http.h"

#define CHECK_TEXT_MAX 128
#define CHECK_MESSAGE_MAX 256
#define CHECK_OUTPUT_MAX 4096 /* bytes of exec output or http body kept in an event */

typedef struct CheckResult {
        bool healthy;
        char observed[CHECK_TEXT_MAX];  /* what was seen: "93.1% used", "HTTP 503", "exit status 2" */
        char threshold[CHECK_TEXT_MAX]; /* what counts as healthy: "<= 90% used", "200-399" */
        char message[CHECK_MESSAGE_MAX];/* one line for people; printable ASCII, escaped */
        char *output;                   /* exec output / http body prefix: bounded, escaped, or NULL;
                                         * owned by whoever holds the result (check_result_done) */
} CheckResult;

void check_result_done(CheckResult *r);

/* Synchronous checks: fill *ret (always: a failure to measure is an unhealthy result that
 * says why). Return 0, or -EINVAL when c is not of their type. */
int check_disk_run(const CheckConfig *c, CheckResult *ret);
int check_memory_run(const CheckConfig *c, CheckResult *ret);
int check_load_run(const CheckConfig *c, CheckResult *ret);
int check_file_age_run(const CheckConfig *c, CheckResult *ret);

/* Pure evaluators behind them, for unit tests: the inputs as the kernel reports them. */
int check_memory_evaluate(const CheckConfig *c, const char *meminfo, CheckResult *ret);
int check_load_evaluate(const CheckConfig *c, const char *loadavg, unsigned n_cpus, CheckResult *ret);

/* Probes: done() runs exactly once from the event loop (never from inside *_start()),
 * unless the probe is cancelled first. The result is borrowed during the callback; the probe
 * frees itself after done() returns. */
typedef struct CheckProbe CheckProbe;
typedef void (*check_done_fn)(const CheckResult *result, void *userdata);

/* What the probes run on (borrowed; each uses what it needs: http the Http, tcp and exec the
 * loop). */
typedef struct CheckProbeContext {
        sd_event *event;
        Http *http;
} CheckProbeContext;

int check_http_start(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                     CheckProbe **ret);
int check_tcp_start(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                    CheckProbe **ret);
int check_exec_start(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                     CheckProbe **ret);
void check_probe_cancel(CheckProbe *p);

/* Where a type's results come from; heal/monitor.c runs each source its own way. */
typedef enum CheckSource {
        CHECK_SOURCE_POLL,    /* every interval: run() answers at once, or start() a probe */
        CHECK_SOURCE_UNIT,    /* systemd's signals about the unit, judged by check_unit_evaluate() */
        CHECK_SOURCE_JOURNAL, /* journal entries that match the pattern; quiet for an interval is healthy */
} CheckSource;

#define CHECK_TARGET_MAX 256

/* One row per check type, as systemd's UnitVTable: adding a type is one file and one row in
 * check.c (and its keys in config.c's table, which says which types each key belongs to). */
typedef struct CheckTypeOps {
        CheckSource source;
        /* What the check looks at, as events and heald status name it: the unit, the public
         * URL, "host:port", the path... Either a string of c or buf. */
        const char *(*target)(const CheckConfig *c, char buf[static CHECK_TARGET_MAX]);
        /* CHECK_SOURCE_POLL: exactly one of the two. */
        int (*run)(const CheckConfig *c, CheckResult *ret);
        int (*start)(const CheckConfig *c, const CheckProbeContext *ctx, check_done_fn done, void *userdata,
                     CheckProbe **ret);
} CheckTypeOps;

/* The row of a valid type (never NULL). */
const CheckTypeOps *check_type_ops(CheckType t);
/* check_type_ops(c->type)->target(c, buf) */
const char *check_target(const CheckConfig *c, char buf[static CHECK_TARGET_MAX]);

/* Units (event-driven): the state systemd reports, judged as it arrives. */
#include "io/units.h"

#define UNIT_RESTART_LOOP_COUNT 3                  /* automatic restarts within... */
#define UNIT_RESTART_LOOP_WINDOW (60 * USEC_PER_SEC) /* ...this long make a restart loop */

typedef struct UnitHistory {
        bool seen;                 /* n_restarts below is a real reading */
        uint32_t n_restarts;       /* last NRestarts seen */
        usec_t restarts[UNIT_RESTART_LOOP_COUNT]; /* CLOCK_MONOTONIC of the latest increases */
        size_t n;
} UnitHistory;

/* Record a new reading (counts NRestarts increases). */
void check_unit_observe(UnitHistory *h, const UnitState *st, usec_t now);
/* 0 and *ret filled with a verdict, or 1 when the unit is between states (starting,
 * stopping) and there is no verdict yet. */
int check_unit_evaluate(const CheckConfig *c, const UnitState *st, const UnitHistory *h, usec_t now,
                        CheckResult *ret);
