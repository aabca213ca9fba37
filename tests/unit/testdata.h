/* testdata.h: read the shared example payloads ($HEALD_TESTDATA, default ../shared/testdata) in unit tests. */
#pragma once

#include <stdlib.h>

#include "util.h"

/* Read $HEALD_TESTDATA/<relpath> (tests run from the repo root); caller frees. Returns 0 or
 * a negative errno. */
static inline int testdata_read(const char *relpath, char **ret, size_t *ret_len) {
        const char *dir = getenv("HEALD_TESTDATA");
        char path[4096];

        if ((size_t) snprintf(path, sizeof path, "%s/%s", isempty(dir) ? "../shared/testdata" : dir, relpath) >=
            sizeof path)
                return -ENAMETOOLONG;
        return read_file_full(path, 1024 * 1024, ret, ret_len);
}
