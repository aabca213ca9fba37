/* timestamp.c: parsers for the wall-clock times AWS sends: HTTP Date headers and ISO 8601 UTC. */
#include "aws/timestamp.h"

#include <time.h>

/* Read exactly n decimal digits. */
static bool parse_digits(const char **p, unsigned n, int *ret) {
        int v = 0;
        for (unsigned i = 0; i < n; i++) {
                char c = (*p)[i];
                if (c < '0' || c > '9')
                        return false;
                v = v * 10 + (c - '0');
        }
        *p += n;
        *ret = v;
        return true;
}

static bool skip_literal(const char **p, const char *lit) {
        size_t n = strlen(lit);
        if (strncmp(*p, lit, n) != 0)
                return false;
        *p += n;
        return true;
}

static int days_in_month(int year, int mon) {
        static const int days[] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
        bool leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
        return days[mon] + (mon == 1 && leap);
}

/* Convert broken-down UTC time to usec, rejecting what timegm() would silently normalise
 * (Feb 30 becoming Mar 2). A leap second (:60) is accepted and folds into the next
 * minute, as RFC 9110 allows. */
static int tm_to_usec(const struct tm *tm, usec_t usec_fraction, usec_t *ret) {
        if (tm->tm_year < 70 || tm->tm_year > 9999 - 1900 || tm->tm_mon < 0 || tm->tm_mon > 11 ||
            tm->tm_mday < 1 || tm->tm_mday > days_in_month(tm->tm_year + 1900, tm->tm_mon) ||
            tm->tm_hour > 23 || tm->tm_min > 59 || tm->tm_sec > 60)
                return -EINVAL;

        struct tm copy = *tm;
        time_t t = timegm(&copy);
        if (t == (time_t) -1)
                return -EINVAL;

        *ret = (usec_t) t * USEC_PER_SEC + usec_fraction;
        return 0;
}

int http_date_parse(const char *s, usec_t *ret) {
        static const char *const days[] = { "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun" };
        static const char *const months[] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec" };
        struct tm tm = {};
        const char *p = s;
        int year;
        bool ok = false;

        if (!s || strlen(s) != strlen("Thu, 26 Nov 2026 20:32:21 GMT"))
                return -EINVAL;

        for (size_t i = 0; i < ELEMENTSOF(days) && !ok; i++)
                ok = strncmp(p, days[i], 3) == 0;
        if (!ok)
                return -EINVAL;
        p += 3;

        if (!skip_literal(&p, ", ") || !parse_digits(&p, 2, &tm.tm_mday) || !skip_literal(&p, " "))
                return -EINVAL;

        tm.tm_mon = -1;
        for (size_t i = 0; i < ELEMENTSOF(months); i++)
                if (strncmp(p, months[i], 3) == 0)
                        tm.tm_mon = (int) i;
        if (tm.tm_mon < 0)
                return -EINVAL;
        p += 3;

        if (!skip_literal(&p, " ") || !parse_digits(&p, 4, &year) || !skip_literal(&p, " ") ||
            !parse_digits(&p, 2, &tm.tm_hour) || !skip_literal(&p, ":") ||
            !parse_digits(&p, 2, &tm.tm_min) || !skip_literal(&p, ":") ||
            !parse_digits(&p, 2, &tm.tm_sec) || !skip_literal(&p, " GMT") || *p != '\0')
                return -EINVAL;
        tm.tm_year = year - 1900;

        return tm_to_usec(&tm, 0, ret);
}

int iso8601_parse(const char *s, usec_t *ret) {
        struct tm tm = {};
        const char *p = s;
        usec_t fraction = 0;
        int year, month;

        if (!s)
                return -EINVAL;

        if (!parse_digits(&p, 4, &year) || !skip_literal(&p, "-") || !parse_digits(&p, 2, &month) ||
            !skip_literal(&p, "-") || !parse_digits(&p, 2, &tm.tm_mday) || !skip_literal(&p, "T") ||
            !parse_digits(&p, 2, &tm.tm_hour) || !skip_literal(&p, ":") ||
            !parse_digits(&p, 2, &tm.tm_min) || !skip_literal(&p, ":") || !parse_digits(&p, 2, &tm.tm_sec))
                return -EINVAL;

        if (*p == '.') {
                unsigned digits = 0;
                usec_t scale = USEC_PER_SEC / 10;

                for (p++; *p >= '0' && *p <= '9'; p++, digits++) {
                        fraction += (usec_t) (*p - '0') * scale; /* digits past usec add 0 */
                        scale /= 10;
                }
                if (digits == 0 || digits > 9)
                        return -EINVAL;
        }
        if (!skip_literal(&p, "Z") || *p != '\0')
                return -EINVAL;

        tm.tm_year = year - 1900;
        tm.tm_mon = month - 1;
        return tm_to_usec(&tm, fraction, ret);
}
