/* backoff.c: exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
#include "backoff.h"

#include <sys/random.h>
#include <time.h>

usec_t backoff_delay(unsigned attempt, usec_t base, usec_t cap, uint64_t random_value) {
        usec_t ceiling = cap;

        /* base * 2^attempt <= cap  <=>  base <= cap / 2^attempt, which cannot overflow. */
        if (attempt < 64 && base <= (cap >> attempt))
                ceiling = base << attempt;

        if (ceiling == UINT64_MAX)
                return random_value;
        return random_value % (ceiling + 1);
}

usec_t backoff_jittered_period(usec_t period, uint64_t random_value) {
        return period - random_value % (period / 10 + 1);
}

uint64_t backoff_random(void) {
        uint64_t v;

        if (getrandom(&v, sizeof v, GRND_NONBLOCK) == (ssize_t) sizeof v)
                return v;

        /* splitmix64 of the clock: distinct callers at distinct times get distinct values. */
        v = now_usec(CLOCK_MONOTONIC) + 0x9e3779b97f4a7c15ULL;
        v = (v ^ (v >> 30)) * 0xbf58476d1ce4e5b9ULL;
        v = (v ^ (v >> 27)) * 0x94d049bb133111ebULL;
        return v ^ (v >> 31);
}
