/* fuzz_command.c: parse and authorise arbitrary message bodies as commands (first byte: wrapping, MD5, instance, sender filter). */
#include "commands/command.h"
#include "commands/protected_units.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_printable(const char *s) {
        if (strlen(s) >= COMMAND_REJECTION_MESSAGE_MAX)
                abort();
        for (; *s; s++)
                if (*s < 0x20 || *s >= 0x7f)
                        abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static char *actions[] = { "ping", "run-checks", "restart-units", "reboot", NULL };
        static char *units[] = { "app-*.service", "*.timer", "*.target", NULL };
        static char *senders[] = { "AROA*", NULL };
        static const char prefix[] = "{\"detail-type\":\"heald command\",\"detail\":";
        Command c = {};
        CommandRejection rej = {};

        if (size < 1)
                return 0;
        uint8_t mode = data[0];
        const char *body = (const char *) data + 1;
        size_t len = size - 1;

        /* Bit 0: deliver the bytes as the detail of an EventBridge event. */
        char *wrapped = NULL;
        if (mode & 1) {
                wrapped = malloc(sizeof prefix + len + 1);
                if (!wrapped)
                        return 0;
                memcpy(wrapped, prefix, sizeof prefix - 1);
                memcpy(wrapped + sizeof prefix - 1, body, len);
                wrapped[sizeof prefix - 1 + len] = '}';
                body = wrapped;
                len += sizeof prefix;
        }

        CommandPolicy policy = {
                .instance_id = (mode & 4) ? NULL : "i-0123456789abcdef0",
                .allowed_actions = actions,
                .unit_globs = units,
                .allowed_senders = (mode & 8) ? senders : NULL,
                .sender_id = (mode & 16) ? "AROAFLEET:x" : NULL,
        };
        bool md5_ok = !(mode & 2);

        int r = command_evaluate(body, len, md5_ok, &policy, UINT64_C(1767225600000000), &c, &rej);
        switch (r) {
        case COMMAND_ALLOWED:
                if (!c.command_id || !c.instance_id || !command_action_to_string(c.action) ||
                    command_action_is_unit_action(c.action) != (c.n_units > 0) || !md5_ok)
                        abort();
                for (size_t i = 0; i < c.n_units; i++)
                        if (!c.units[i] || protected_units_match(c.units[i]))
                                abort();
                break;
        case COMMAND_REJECTED:
                if (!command_rejection_reason_to_string(rej.reason) || strlen(rej.command_id) > COMMAND_ID_MAX)
                        abort();
                check_printable(rej.message);
                if (rej.task_token && strstr(rej.message, rej.task_token))
                        abort();
                break;
        case COMMAND_NOT_READY:
                if (policy.instance_id)
                        abort();
                break;
        default:
                if (r != -ENOMEM)
                        abort();
        }
        command_done(&c);
        command_rejection_done(&rej);
        free(wrapped);
        return 0;
}
