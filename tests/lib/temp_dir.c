/* temp_dir.c: a test's own temporary directory (tests/lib: linked into unit, crash and fuzz programs). */
#include "temp_dir.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int temp_dir_new(const char *name, const char *subdir, TempDir **ret) {
        TempDir *d = calloc(1, sizeof *d);
        if (!d)
                return -ENOMEM;
        const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
        int n = snprintf(d->path, sizeof d->path, "%s/%s.XXXXXX", base, name);
        if (n < 0 || (size_t) n >= sizeof d->path) {
                free(d);
                return -ENAMETOOLONG;
        }
        if (!mkdtemp(d->path)) {
                int r = -errno;
                free(d);
                return r;
        }
        if (subdir) {
                n = snprintf(d->module_dir, sizeof d->module_dir, "%s/%s", d->path, subdir);
                if (n < 0 || (size_t) n >= sizeof d->module_dir) {
                        temp_dir_free(d);
                        return -ENAMETOOLONG;
                }
        }
        *ret = d;
        return 0;
}

TempDir *temp_dir_free(TempDir *d) {
        if (!d)
                return NULL;
        remove_tree(d->path);
        free(d);
        return NULL;
}

void remove_tree(const char *path) {
        /* opendir() follows a symbolic link: a link to a directory is removed, never emptied. */
        struct stat st;
        DIR *dir = lstat(path, &st) == 0 && S_ISDIR(st.st_mode) ? opendir(path) : NULL;
        if (dir) {
                for (struct dirent *de; (de = readdir(dir));) {
                        char child[4096];
                        if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
                            (size_t) snprintf(child, sizeof child, "%s/%s", path, de->d_name) >= sizeof child)
                                continue;
                        remove_tree(child);
                }
                closedir(dir);
        }
        (void) remove(path);
}
