/* commands.h: the fleet's hand on the instance. Long-polls the instance's own SQS queue,
 * runs only what [commands] allows, reports every step as an event (and to Step Functions
 * when a task token came along), and verifies prepare-stop and reboot after the boot. */
#pragma once

#include <systemd/sd-event.h>

#include "aws/client.h"
#include "config.h"
#include "monitor.h"
#include "outbox.h"
#include "units.h"

typedef struct Commands Commands;

typedef struct CommandsContext {
        sd_event *event;
        AwsClient *aws;
        Units *units;          /* NULL without a system bus: unit actions fail transiently */
        Monitor *monitor;
        Outbox *outbox;        /* prepare-stop waits for it to drain */
        const char *state_dir; /* the command journal lives in state_dir/commands */
        const char *boot_id;
        const char *boot_marker; /* changes with every boot of this system, containers included */
        monitor_emit_fn emit;
        void *userdata;
} CommandsContext;

/* config is borrowed (see commands_set_config). Opens the command journal. */
int commands_new(const CommandsContext *ctx, const Config *config, Commands **ret);
/* A running command is abandoned: its record stays in progress, so the next start reports it
 * interrupted and answers its redelivery from the journal. */
Commands *commands_free(Commands *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(Commands *, commands_free);

/* The identity is known: resolve the queue URL, start polling, and verify what a reboot or
 * stop left in the journal. A config without [sqs] queue_url only does the verification. */
int commands_start(Commands *c, const char *region, const char *instance_id, const char *account_id);
/* After a reload (the queue URL is re-resolved at the next poll). */
void commands_set_config(Commands *c, const Config *config);
