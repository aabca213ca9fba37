/* testdata.h: read the shared example payloads ($HEALD_TESTDATA, default ../shared/testdata) in unit tests.
 * Include after cmocka.h. */
#pragma once

#include <stdlib.h>
#include <sys/stat.h>

#include "util.h"

#define TESTDATA_DEFAULT_DIR "../shared/testdata"

/* The shared test data's directory (tests run from the repo root); borrowed. */
static inline const char *testdata_dir(void) {
        const char *dir = getenv("HEALD_TESTDATA");
        return isempty(dir) ? TESTDATA_DEFAULT_DIR : dir;
}

/* A clone without ../shared beside it has no test data at all: its tests are skipped, not
 * failed. A file missing from test data that is there still fails the test. */
static inline bool testdata_present(void) {
        struct stat st;
        return stat(testdata_dir(), &st) == 0 && S_ISDIR(st.st_mode);
}

/* Read $HEALD_TESTDATA/<relpath>; caller frees. Returns 0 or a negative errno. Where there is
 * no test data this skips the calling test (cmocka's skip() does not return, so call it before
 * the test allocates anything). */
static inline int testdata_read(const char *relpath, char **ret, size_t *ret_len) {
        char path[4096];

        if (!testdata_present())
                skip();
        if ((size_t) snprintf(path, sizeof path, "%s/%s", testdata_dir(), relpath) >= sizeof path)
                return -ENAMETOOLONG;
        return read_file_full(path, 1024 * 1024, ret, ret_len);
}
