/* events/publisher.h: drains the outbox into EventBridge PutEvents, oldest first, with retries. */
#pragma once

#include <systemd/sd-event.h>

#include "aws/client.h"
#include "config.h"
#include "events/outbox.h"

typedef struct Publisher Publisher;
typedef void (*publisher_idle_fn)(void *userdata);

/* Everything borrowed; must outlive the publisher. */
int publisher_new(sd_event *event, const Config *config, Outbox *outbox, AwsClient *aws, Publisher **ret);
Publisher *publisher_free(Publisher *p); /* abandons requests in flight; the outbox keeps them */
DEFINE_TRIVIAL_CLEANUP_FUNC(Publisher *, publisher_free);

/* A reloaded configuration (borrowed from now on); the target is recomputed. */
int publisher_set_config(Publisher *p, const Config *config);
/* Nothing is sent until the region and endpoint are known; instance_arn may be NULL
 * (then events carry no Resources). Copies both. */
int publisher_set_target(Publisher *p, const char *region, const char *instance_arn);
/* Something changed (new records, new credentials): send now unless backing off. */
void publisher_kick(Publisher *p);
/* idle() runs whenever the outbox is drained: nothing in flight and nothing pending (for
 * shutdown and prepare-stop). It may run from inside publisher_kick(). */
void publisher_set_idle_callback(Publisher *p, publisher_idle_fn idle, void *userdata);
size_t publisher_in_flight(const Publisher *p);
/* What became of events since heald started. */
typedef struct PublisherCounts {
        uint64_t published;        /* accepted by EventBridge */
        uint64_t dead_lettered;    /* moved to the dead-letter file */
        uint64_t dropped_reported; /* dropped for max_bytes and reported (outbox_dropped() holds the rest) */
} PublisherCounts;
PublisherCounts publisher_counts(const Publisher *p);
