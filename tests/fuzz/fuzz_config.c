/* fuzz_config.c: config_load_string() on arbitrary bytes: no crash, no leak, every error names
 * FILE:LINE, and whatever loads prints to text that loads to the same configuration. */
#define _GNU_SOURCE /* open_memstream */
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

/* config_print() into a new string (caller frees), or NULL when memory ran out. */
static char *print_config(const Config *c) {
        char *printed = NULL;
        size_t len = 0;
        FILE *f = open_memstream(&printed, &len);
        if (!f)
                return NULL;
        assert(config_print(c, f) == 0);
        fclose(f);
        return printed;
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
                _cleanup_free_ char *printed = print_config(c);
                config_free(c);
                if (!printed)
                        return 0;
                /* whatever loads must print, load again and print the same (but the digest line) */
                Config *again = NULL;
                char *reason = NULL;
                if (config_load_string(printed, "fuzz.ini", &again, &reason) != 0) {
                        fprintf(stderr, "printed configuration does not load: %s\n%s\n", reason, printed);
                        abort();
                }
                _cleanup_free_ char *reprinted = print_config(again);
                config_free(again);
                assert(!reprinted || strcmp(strchr(printed, '\n'), strchr(reprinted, '\n')) == 0);
        } else {
                assert(!c);
                assert(r == -ENOMEM || (r == -EINVAL && error && has_file_line(error)));
        }
        return 0;
}
