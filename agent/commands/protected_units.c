/* commands/protected_units.c: the units heald never starts, stops or restarts, whatever its configuration says. */
#include "commands/protected_units.h"

#include <fnmatch.h>

/* A command names a unit by any of its names, and heald judges the name it was given:
 * aliases (ctrl-alt-del.target, runlevel6.target, sshd.service) are listed beside the units
 * they stand for. polkit is asked about the unit systemd loaded, by its own name. */
const char *const protected_units[] = {
        /* heald itself: systemd's Restart= heals heald; heald restarting itself would loop */
        "heald.service",
        /* what heald's authority and its reporting rest on */
        "dbus.service", "dbus.socket", "dbus-broker.service", "polkit.service",
        "systemd-journald.service", "systemd-journald.socket", "systemd-journald-dev-log.socket",
        "systemd-journald-audit.socket", "systemd-journald@*", "systemd-journald-varlink@*",
        /* the operators' way in */
        "ssh.service", "ssh.socket", "ssh@*.service", "sshd.service", "sshd.socket", "sshd@*.service",
        /* The machine's life: whatever powers off, reboots, halts, suspends or hibernates it, or
         * stops its services (rescue, emergency, a system update ends in a reboot). Only
         * [commands] allow = reboot reboots, through the reboot command, never a unit command. */
        "reboot.target", "poweroff.target", "halt.target", "kexec.target", "soft-reboot.target",
        "ctrl-alt-del.target", "runlevel0.target", "runlevel1.target", "runlevel6.target",
        "shutdown.target", "final.target", "umount.target", "exit.target",
        "sleep.target", "suspend.target", "hibernate.target", "hybrid-sleep.target", "suspend-then-hibernate.target",
        "rescue.target", "rescue.service", "emergency.target", "emergency.service",
        "system-update.target", "system-update-pre.target", "factory-reset.target", "initrd-*",
        "systemd-poweroff.service", "systemd-reboot.service", "systemd-halt.service", "systemd-kexec.service",
        "systemd-soft-reboot.service", "systemd-exit.service", "systemd-suspend.service", "systemd-hibernate.service",
        "systemd-hybrid-sleep.service", "systemd-suspend-then-hibernate.service",
        NULL,
};

const char *protected_units_match(const char *unit) {
        for (const char *const *p = protected_units; *p; p++)
                if (fnmatch(*p, unit, 0) == 0)
                        return *p;
        return NULL;
}
