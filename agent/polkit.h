/* polkit.h: the polkit rule that lets heald's system user start, stop and restart exactly the
 * units its configuration names, and reboot only when [commands] allow names reboot. */
#pragma once

#include "config.h"

#define POLKIT_USER_DEFAULT "heald"

/* Build the rule (polkit JavaScript) for the system user `user` from c:
 *   check actions restart-unit/start-unit/stop-unit -> that verb on action_unit;
 *   [commands] allow restart-units/start-units/stop-units/stop-start-units -> those verbs on
 *   [commands] units (names or fnmatch globs); prepare-stop -> stop on drain_units;
 *   reboot -> start on reboot.target.
 * protected_units (protected_units.h) are refused for every verb, whatever grants them;
 * everything else org.freedesktop.systemd1.manage-units asks for `user` is refused; other
 * users and actions are left to the other rules.
 * On success *ret_rules is the text (caller frees) and *ret_warnings is NULL or one line per
 * configured unit or glob that a protected unit overrides (caller frees).
 * Returns 0, -EINVAL for a user name that is not [a-z_][a-z0-9_-]*, or -ENOMEM. */
int polkit_rules_build(const Config *c, const char *user, char **ret_rules, char **ret_warnings);

/* Replace path with text atomically (temp file, fsync, rename, fsync of the directory), mode
 * 0644: polkitd reads the rules as its own unprivileged user. Returns 0 or a negative errno. */
int polkit_rules_write(const char *path, const char *text);
