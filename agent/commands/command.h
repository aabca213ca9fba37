/* commands/command.h: the command an SQS message carries to heald: parsing, validation and authorisation against [commands]. */
#pragma once

#include "util.h"

#define COMMAND_BODY_MAX       (64 * 1024) /* bigger bodies are rejected unparsed ("oversized") */
#define COMMAND_DEPTH_MAX      32          /* deeper JSON is rejected before cJSON sees it */
#define COMMAND_ID_MAX         128
#define COMMAND_UNITS_MAX      32
#define COMMAND_CHECKS_MAX     32
#define COMMAND_REASON_MAX     1024
#define COMMAND_TASK_TOKEN_MAX 1024

typedef enum CommandAction {
        COMMAND_PING,
        COMMAND_RUN_CHECKS,
        COMMAND_RESTART_UNITS,
        COMMAND_STOP_UNITS,
        COMMAND_START_UNITS,
        COMMAND_STOP_START_UNITS,
        COMMAND_PREPARE_STOP,
        COMMAND_REBOOT,
        _COMMAND_ACTION_MAX,
} CommandAction;

/* "ping", "run-checks", "restart-units", ...; NULL for an invalid value. */
const char *command_action_to_string(CommandAction a);
/* The action named s, or -EINVAL. */
int command_action_from_string(const char *s);
/* Whether the action works on the command's units (which it then requires). */
bool command_action_is_unit_action(CommandAction a);
/* Whether the action disrupts the whole instance (reboot, prepare-stop): such a command waits
 * for any local remediation, not only for one of its own units. */
bool command_action_is_instance_wide(CommandAction a);

/* A parsed, well-formed command. Every string is owned by the Command; free with command_done(). */
typedef struct Command {
        char *command_id;  /* 1..128 of [A-Za-z0-9._:-] */
        CommandAction action;
        char *instance_id; /* whom it is for */
        usec_t issued_at;  /* usec since the epoch; 0 when not given */
        usec_t expires_at; /* usec since the epoch; 0: never expires */
        char **units;      /* NULL-terminated unit names (1..32 for unit actions, NULL otherwise) */
        size_t n_units;
        char **checks;     /* NULL-terminated check names for run-checks; NULL: all checks */
        size_t n_checks;
        char *reason;      /* NULL or the sender's reason (<= 1024 bytes) */
        char *task_token;  /* NULL or a Step Functions task token: secret-ish, never log it */
        bool from_eventbridge; /* the body was an EventBridge event with the command as its detail */
} Command;

/* Free what the Command owns (wiping the task token) and zero it; NULL is fine. */
void command_done(Command *c);

/* Why a command is refused. The names (command_rejection_reason_to_string()) are stable:
 * events and documentation use them. */
typedef enum CommandRejectionReason {
        COMMAND_REJECT_MALFORMED_JSON,     /* "malformed-json": not JSON, or nested too deep */
        COMMAND_REJECT_NOT_A_COMMAND,      /* "not-a-command": JSON, but not a command object (the message says which field) */
        COMMAND_REJECT_UNKNOWN_ACTION,     /* "unknown-action" */
        COMMAND_REJECT_ACTION_NOT_ALLOWED, /* "action-not-allowed": [commands] allow */
        COMMAND_REJECT_UNIT_NOT_ALLOWED,   /* "unit-not-allowed": [commands] units */
        COMMAND_REJECT_WRONG_INSTANCE,     /* "wrong-instance" */
        COMMAND_REJECT_EXPIRED,            /* "expired" */
        COMMAND_REJECT_OVERSIZED,          /* "oversized": body > COMMAND_BODY_MAX */
        COMMAND_REJECT_SENDER_NOT_ALLOWED, /* "sender-not-allowed": [commands] allowed_senders */
        COMMAND_REJECT_CORRUPT,            /* "corrupt": the body does not match its MD5 */
        COMMAND_REJECT_ID_REUSED,          /* "id-reused": a known command id on a different command */
        COMMAND_REJECT_ASKER_GONE,         /* "asker-gone": the Step Functions run of its task token no longer waits */
        _COMMAND_REJECT_MAX,
} CommandRejectionReason;

const char *command_rejection_reason_to_string(CommandRejectionReason r);

#define COMMAND_REJECTION_MESSAGE_MAX 512

typedef struct CommandRejection {
        CommandRejectionReason reason;
        char command_id[COMMAND_ID_MAX + 1]; /* "" unless the body named a valid one */
        char *task_token; /* owned, secret-ish: the body's task token when it had a usable one (so the
                           * caller can fail the Step Functions task), else NULL; wiped by command_rejection_done() */
        char message[COMMAND_REJECTION_MESSAGE_MAX]; /* printable ASCII, safe to log and to send in events;
                                                      * quotes nothing of a body that is not a command object
                                                      * (nor anything of its task token), only the offending
                                                      * value of a named field, escaped and cut */
} CommandRejection;

/* Free the task token (wiped) and zero the struct; NULL is fine. */
void command_rejection_done(CommandRejection *r);

/* Parse a message body: a command object, or an EventBridge event (an object with
 * "detail-type" and "detail") whose detail is one. Bodies of any size and content are safe.
 * Returns 0 with *ret (caller frees with command_done()); -EBADMSG when the body is not a
 * valid command, with *ret_rejection filled (malformed-json, not-a-command, unknown-action or
 * oversized; caller calls command_rejection_done()); -ENOMEM. */
int command_parse(const char *body, size_t len, Command *ret, CommandRejection *ret_rejection);

/* What [commands] allows, and who sent the message. Everything is borrowed. */
typedef struct CommandPolicy {
        const char *instance_id;        /* this instance; NULL while it is not known yet */
        char *const *allowed_actions;   /* NULL-terminated action names; NULL: none */
        char *const *unit_globs;        /* NULL-terminated fnmatch() patterns; NULL: no unit */
        char *const *allowed_senders;   /* NULL-terminated SenderId fnmatch() patterns; NULL: any sender */
        const char *sender_id;          /* the message's SenderId; NULL when SQS did not send one */
} CommandPolicy;

typedef enum CommandVerdict {
        COMMAND_ALLOWED,   /* execute it */
        COMMAND_REJECTED,  /* *ret_rejection says why: report it, delete the message */
        COMMAND_NOT_READY, /* this instance's id is not known yet: retry later, do not delete the message */
} CommandVerdict;

/* Judge a parsed command at wall-clock time now (usec since the epoch). Checks, in this order:
 * sender, instance (NULL policy instance: COMMAND_NOT_READY), expiry, action, units (a unit of
 * protected_units.h is refused whatever [commands] units says, then the globs). Returns a
 * CommandVerdict (>= 0); for COMMAND_REJECTED *ret_rejection is filled (caller calls
 * command_rejection_done()); -ENOMEM. */
int command_authorize(const Command *cmd, const CommandPolicy *policy, usec_t now, CommandRejection *ret_rejection);

/* The whole judgement of one SQS message: corrupt (md5_ok false) first, then command_parse(),
 * then command_authorize(). Returns a CommandVerdict: COMMAND_ALLOWED with *ret (caller
 * frees with command_done()), COMMAND_REJECTED with *ret_rejection, COMMAND_NOT_READY with
 * neither; -ENOMEM. */
int command_evaluate(const char *body, size_t len, bool md5_ok, const CommandPolicy *policy, usec_t now, Command *ret,
                     CommandRejection *ret_rejection);

#define COMMAND_DIGEST_SIZE 65 /* hex SHA-256 and its NUL */

/* What makes two deliveries the same command: a digest of the command as parsed (action,
 * instance, expiry, units, checks), not of the body's bytes and never of its task token, which
 * a sender renews when it retries. -EIO if libcrypto fails. */
int command_digest(const Command *cmd, char ret[static COMMAND_DIGEST_SIZE]);
