/* backoff.h: exponential backoff with full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"). */
#pragma once

#include "util.h"

/* The delay before retry number `attempt` (0 for the first retry): uniform in
 * [0, min(cap, base * 2^attempt)], drawn from random_value, which the caller supplies
 * (backoff_random() in the agent, fixed values in tests). Never overflows, whatever
 * attempt is; base 0 gives 0. */
usec_t backoff_delay(unsigned attempt, usec_t base, usec_t cap, uint64_t random_value);

/* A period of `period` shortened by a uniform draw in [0, period / 10] from random_value, so
 * that timers armed at the same moment on many machines (a fleet started together) drift
 * apart instead of firing in lockstep, while no gap ever exceeds `period` (a silence alarm
 * set on the period stays right). */
usec_t backoff_jittered_period(usec_t period, uint64_t random_value);

/* 64 random bits for backoff_delay(): getrandom(), falling back to the clock if the
 * kernel cannot help (jitter needs spread, not secrecy). */
uint64_t backoff_random(void);
