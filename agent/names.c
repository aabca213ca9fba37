/* names.c: the one spelling of unit names and check names, for heald.ini and commands alike. */
#include "names.h"

#include <string.h>

#include "util.h"

#define LETTERS_DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

bool unit_name_is_valid(const char *s, bool glob) {
        static const char *const suffixes[] = { ".service", ".socket", ".target", ".timer",  ".mount", ".automount",
                                                ".path",    ".swap",   ".slice",  ".device", ".scope" };
        size_t n = strlen(s);

        /* A leading '-' is refused (it would read as an option on a command line), except in
         * systemd's own names for the root mount and the root slice. */
        if (strcmp(s, "-.mount") == 0 || strcmp(s, "-.slice") == 0)
                return true;
        if (n > UNIT_NAME_MAX || s[0] == '-' || s[0] == '.' ||
            s[strspn(s, glob ? LETTERS_DIGITS ":_.\\@-*?[]!" : LETTERS_DIGITS ":_.\\@-")])
                return false;
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                size_t m = strlen(suffixes[i]);
                if (n > m && strcmp(s + n - m, suffixes[i]) == 0)
                        return true;
        }
        return false;
}

bool check_name_is_valid(const char *s) {
        size_t n = strlen(s);
        return n >= 1 && n <= CHECK_NAME_MAX && s[strspn(s, LETTERS_DIGITS "-_.")] == 0;
}
