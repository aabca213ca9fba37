/* fuzz_config.c: config_load_string() on arbitrary bytes: no crash, no leak, every error names FILE:LINE. */
#include <assert.h>
#include <stdint.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* "fuzz.ini:N: " with N >= 1 */
static bool has_file_line(const char *error) {
        const char *p = error + strlen("fuzz.ini:");
        if (strncmp(error, "fuzz.ini:", strlen("fuzz.ini:")) != 0 || *p < '1' || *p > '9')
                return false;
        p += strspn(p, "0123456789");
        return strncmp(p, ": ", 2) == 0 && p[2] != 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_free_ char *text = malloc(size + 1);
        _cleanup_free_ char *error = NULL;
        Config *c = NULL;

        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = 0; /* bytes after an embedded NUL are simply not seen */

        int r = config_load_string(text, "fuzz.ini", &c, &error);
        if (r == 0) {
                assert(c && !error);
                /* whatever loads must print and load again */
                char *printed = NULL;
                size_t len = 0;
                FILE *f = open_memstream(&printed, &len);
                if (f) {
                        assert(config_print(c, f) == 0);
                        fclose(f);
                        Config *again = NULL;
                        assert(config_load_string(printed, "fuzz.ini", &again, NULL) == 0);
                        config_free(again);
                        free(printed);
                }
                config_free(c);
        } else {
                assert(!c);
                assert(r == -ENOMEM || (r == -EINVAL && error && has_file_line(error)));
        }
        return 0;
}
