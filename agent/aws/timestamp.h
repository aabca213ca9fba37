/* timestamp.h: parsers for the wall-clock times AWS sends: HTTP Date headers and ISO 8601 UTC. */
#pragma once

#include "util.h"

/* Parse an HTTP Date header value in IMF-fixdate form ("Thu, 26 Nov 2026 20:32:21 GMT",
 * RFC 9110 5.6.7) into usec since the epoch. The obsolete RFC 850 and asctime forms are
 * not accepted: AWS never sends them. Returns 0 or -EINVAL. */
int http_date_parse(const char *s, usec_t *ret);

/* Parse "2020-04-02T00:49:51Z" (optionally with fractional seconds, "…51.123Z") into usec
 * since the epoch. Only UTC ('Z') is accepted; garbage, out-of-range fields, dates before
 * 1970 and impossible days (Feb 30) are -EINVAL. */
int iso8601_parse(const char *s, usec_t *ret);
