/* commands/channel.h: the fleet's hand on the instance. Long-polls the instance's own SQS queue,
 * runs only what [commands] allows, reports every step as an event (and to Step Functions
 * when a task token came along), and verifies prepare-stop and reboot after the boot. */
#pragma once

#include <systemd/sd-event.h>

#include "aws/client.h"
#include "config.h"
#include "events/emit.h"
#include "events/outbox.h"
#include "heal/verify.h"
#include "io/units.h"

typedef struct Channel Channel;

typedef struct ChannelContext {
        sd_event *event;
        AwsClient *aws;
        Units *units;          /* NULL without a system bus: unit actions fail transiently */
        Monitor *monitor;
        Outbox *outbox;        /* prepare-stop reports its depth */
        const char *state_dir; /* the command journal lives in state_dir/commands */
        const char *boot_id;
        const char *boot_marker; /* changes with every boot of this system, containers included */
        emit_fn emit;
        void *userdata;
} ChannelContext;

/* config is borrowed (see channel_set_config). Opens the command journal. */
int channel_new(const ChannelContext *ctx, const Config *config, Channel **ret);
/* A running command is abandoned: its record stays in progress, so the next start reports it
 * interrupted and answers its redelivery from the journal. */
Channel *channel_free(Channel *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Channel *, channel_free);

/* The identity is known: resolve the queue URL, start polling, and verify what a reboot or
 * stop left in the journal. A config without [sqs] queue_url only does the verification. */
int channel_start(Channel *c, const char *region, const char *instance_id, const char *account_id);
/* After a reload (the queue URL is re-resolved at the next poll). */
void channel_set_config(Channel *c, const Config *config);
/* heald is stopping: no more ReceiveMessage (a prepare-stop's Ready For Stop does the same by
 * itself). Commands received and not yet begun are given back to the queue at once; the one
 * running goes on. */
void channel_stop_receiving(Channel *c);
/* The publisher has sent everything (nothing in flight, the outbox empty): a prepare-stop
 * waiting for that goes on. Safe to call at any time; it acts from the loop, not inside. */
void channel_outbox_drained(Channel *c);
