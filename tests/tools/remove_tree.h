/* remove_tree.h: delete a test's temporary directory and everything in it (tests only). */
#pragma once

#include <dirent.h>
#include <stdio.h>
#include <string.h>

static inline void remove_tree(const char *path) {
        DIR *d = opendir(path);
        if (d) {
                for (struct dirent *de; (de = readdir(d));) {
                        char child[4096];
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                            (size_t) snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= sizeof child)
                                continue;
                        remove_tree(child);
                }
                closedir(d);
        }
        (void) remove(path);
}
