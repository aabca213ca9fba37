/* commands/protected_units.h: the units heald never starts, stops or restarts, whatever its
 * configuration says. Both heald's authorisation of commands and the polkit rule it
 * generates refuse them, so that a broad glob in [commands] units can reach neither. */
#pragma once

#include "util.h"

/* fnmatch(3) patterns (most are plain unit names), NULL-terminated; static. */
extern const char *const protected_units[];

/* The first pattern of protected_units that unit matches, or NULL. */
const char *protected_units_match(const char *unit);
