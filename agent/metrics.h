/* metrics.h: heald's metrics in the Prometheus text exposition format, for the node exporter's
 * textfile collector ([metrics] textfile). Pure: counters are fed the events heald records,
 * gauges are read by the caller at rendering time; manager.c writes the file. */
#pragma once

#include <cjson/cJSON.h>

#include "aws/client.h"
#include "util.h"

typedef struct Metrics Metrics;

int metrics_new(Metrics **ret);
Metrics *metrics_free(Metrics *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Metrics *, metrics_free);

/* Count what one recorded event says: check failures, remediations, recoveries (time to
 * recovery), commands. Other types are ignored. Returns 0 or -ENOMEM. */
int metrics_observe_event(Metrics *m, const char *detail_type, const cJSON *detail);

/* What is read at rendering time; every pointer is borrowed and may be NULL. */
typedef struct MetricsGauges {
        const cJSON *checks;           /* monitor_status()'s array */
        size_t outbox_depth;
        uint64_t events_published, events_dead_lettered, events_dropped;
        const AwsRequestCounts *aws;
        usec_t credentials_expiration; /* CLOCK_REALTIME; 0 or USEC_INFINITY: none to show */
        bool dry_run;
} MetricsGauges;

/* The whole exposition text: HELP and TYPE for every family, label values escaped, one
 * line per series. Caller frees *ret. */
int metrics_render(const Metrics *m, const MetricsGauges *g, char **ret);
