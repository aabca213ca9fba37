/* names.h: the one spelling of the names that heald.ini and commands share: systemd unit names
 * and check names. *pure*. */
#pragma once

#include <stdbool.h>

#define UNIT_NAME_MAX  255
#define CHECK_NAME_MAX 64

/* "NAME.TYPE" as systemd spells a unit: at most UNIT_NAME_MAX letters, digits and ":-_.\@",
 * a known type suffix (.service, .socket, .timer, ...) after a non-empty name, never starting
 * with '-' or '.' (so never taken for an option), except systemd's root mount and root slice
 * "-.mount" and "-.slice". glob: fnmatch's "*?[]!" are allowed too, for
 * the patterns of [commands] units. */
bool unit_name_is_valid(const char *s, bool glob);

/* [check NAME]: 1..CHECK_NAME_MAX letters, digits, '-', '_' and '.'. */
bool check_name_is_valid(const char *s);
