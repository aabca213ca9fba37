/* temp_dir.h: a test's own temporary directory, removed with everything in it afterwards. */
#pragma once

#include "util.h"

/* The directory a test works in, and the folder the module under test owns inside it
 * (state_dir/outbox, state_dir/commands), spelled out once for the assertions. */
typedef struct TempDir {
        char path[128];
        char module_dir[192]; /* path/SUBDIR, or "" without one */
} TempDir;

/* Makes a fresh directory "BASE/NAME.XXXXXX", BASE being /dev/shm where writable (fsync is
 * cheap on tmpfs), else /tmp; subdir (may be NULL) names module_dir but does not create it.
 * Returns 0 or a negative errno; caller frees *ret with temp_dir_free(). */
int temp_dir_new(const char *name, const char *subdir, TempDir **ret);

/* Removes the directory and all it holds, then frees d. Accepts NULL; returns NULL. */
TempDir *temp_dir_free(TempDir *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(TempDir *, temp_dir_free);

/* Deletes path and everything below it, quietly: a test's leftovers are not its verdict. A
 * symbolic link is deleted itself, not what it points to. */
void remove_tree(const char *path);
