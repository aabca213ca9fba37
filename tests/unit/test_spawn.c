/* test_spawn.c: unit tests for the process runner: exit codes, signals, timeouts that kill the
 * whole group, bounded output, a clean environment, closed fds and reset signals. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <signal.h>
#include <time.h>

#include "io/spawn.h"

typedef struct Outcome {
        unsigned calls;
        int error;
        bool have_result;
        SpawnResult result; /* output points at output below */
        char *output;
} Outcome;

static void on_done(int error, const SpawnResult *r, void *userdata) {
        Outcome *o = userdata;
        o->calls++;
        o->error = error;
        o->have_result = r != NULL;
        if (r) {
                o->result = *r;
                o->output = malloc(r->output_len + 1);
                assert_non_null(o->output);
                memcpy(o->output, r->output, r->output_len + 1);
                o->result.output = o->output;
        }
}

/* Run the loop until done() ran or max passed; returns the time it took. */
static usec_t run_until_done(sd_event *e, const Outcome *o, usec_t max) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        while (o->calls == 0 && now_usec(CLOCK_MONOTONIC) - start < max)
                assert_true(sd_event_run(e, 100 * USEC_PER_MSEC) >= 0);
        assert_int_equal(o->calls, 1);
        return now_usec(CLOCK_MONOTONIC) - start;
}

static void run_for(sd_event *e, usec_t duration) {
        usec_t start = now_usec(CLOCK_MONOTONIC);
        while (now_usec(CLOCK_MONOTONIC) - start < duration)
                assert_true(sd_event_run(e, 20 * USEC_PER_MSEC) >= 0);
}

/* Start argv and run the loop until it is done; done() must not run inside spawn_start(). */
static void run_command(char *const argv[], usec_t timeout, size_t max_output, Outcome *o) {
        sd_event *e = NULL;
        assert_int_equal(sd_event_new(&e), 0);
        *o = (Outcome) {};
        assert_int_equal(spawn_start(e, argv, timeout, max_output, on_done, o, NULL), 0);
        assert_int_equal(o->calls, 0);
        (void) run_until_done(e, o, 10 * USEC_PER_SEC);
        sd_event_unref(e);
}

static void test_true_and_false(void **state) {
        (void) state;
        Outcome o;

        run_command((char *const[]) { "/bin/true", NULL }, 5 * USEC_PER_SEC, 4096, &o);
        assert_int_equal(o.error, 0);
        assert_true(o.result.exited);
        assert_int_equal(o.result.exit_status, 0);
        assert_false(o.result.timed_out);
        assert_int_equal(o.result.output_len, 0);
        assert_int_equal(o.result.output_total, 0);
        free(o.output);

        run_command((char *const[]) { "/bin/false", NULL }, 5 * USEC_PER_SEC, 4096, &o);
        assert_true(o.result.exited);
        assert_int_equal(o.result.exit_status, 1);
        free(o.output);

        run_command((char *const[]) { "/bin/sh", "-c", "echo out; echo err >&2; exit 7", NULL }, 0, 4096, &o);
        assert_true(o.result.exited);
        assert_int_equal(o.result.exit_status, 7);
        assert_string_equal(o.output, "out\nerr\n");
        free(o.output);
}

static void test_killed_by_signal(void **state) {
        (void) state;
        Outcome o;

        run_command((char *const[]) { "/bin/sh", "-c", "kill -TERM $$", NULL }, 5 * USEC_PER_SEC, 4096, &o);
        assert_int_equal(o.error, 0);
        assert_false(o.result.exited);
        assert_int_equal(o.result.signal, SIGTERM);
        assert_false(o.result.timed_out);
        free(o.output);
}

/* A process that is gone, or a zombie nobody has reaped yet, is no longer running. */
static bool process_running(pid_t pid) {
        char path[64], *text = NULL;
        snprintf(path, sizeof path, "/proc/%d/stat", (int) pid);
        if (read_file_full(path, 4096, &text, NULL) < 0)
                return false;
        const char *p = strrchr(text, ')');
        bool running = p && p[1] == ' ' && p[2] != 'Z' && p[2] != 'X';
        free(text);
        return running;
}

static void test_timeout_kills_the_group(void **state) {
        (void) state;
        sd_event *e = NULL;
        Outcome o = {};

        assert_int_equal(sd_event_new(&e), 0);
        /* The background sleep keeps the pipe open and is not the leader: only a group kill ends it. */
        char *const argv[] = { "/bin/sh", "-c", "sleep 10 & echo $!; sleep 10; wait", NULL };
        assert_int_equal(spawn_start(e, argv, 200 * USEC_PER_MSEC, 4096, on_done, &o, NULL), 0);
        usec_t took = run_until_done(e, &o, 5 * USEC_PER_SEC);
        assert_true(took >= 150 * USEC_PER_MSEC);
        assert_true(took < 2 * USEC_PER_SEC);
        assert_int_equal(o.error, 0);
        assert_true(o.result.timed_out);
        assert_false(o.result.exited);
        assert_int_equal(o.result.signal, SIGKILL);

        pid_t background = (pid_t) atoi(o.output);
        assert_true(background > 0);
        usec_t start = now_usec(CLOCK_MONOTONIC);
        while (process_running(background) && now_usec(CLOCK_MONOTONIC) - start < 2 * USEC_PER_SEC)
                (void) usleep(10000);
        assert_false(process_running(background));
        free(o.output);
        sd_event_unref(e);
}

static void test_output_is_bounded_and_counted(void **state) {
        (void) state;
        Outcome o;

        run_command((char *const[]) { "/usr/bin/head", "-c", "1048576", "/dev/urandom", NULL }, 10 * USEC_PER_SEC, 4096,
                    &o);
        assert_int_equal(o.error, 0);
        assert_true(o.result.exited);
        assert_int_equal(o.result.exit_status, 0);
        assert_int_equal(o.result.output_len, 4096);
        assert_int_equal(o.result.output_total, 1048576);
        free(o.output);

        run_command((char *const[]) { "/bin/echo", "discarded", NULL }, 0, 0, &o);
        assert_int_equal(o.result.output_len, 0);
        assert_int_equal(o.result.output_total, 10);
        assert_string_equal(o.output, "");
        free(o.output);
}

static void test_missing_program(void **state) {
        (void) state;
        Outcome o;

        run_command((char *const[]) { "/nonexistent/heald-test-program", NULL }, 0, 4096, &o);
        assert_int_equal(o.error, -ENOENT);
        assert_false(o.have_result);

        run_command((char *const[]) { "/tmp", NULL }, 0, 4096, &o); /* a directory */
        assert_int_equal(o.error, -EACCES);
        assert_false(o.have_result);
}

static void test_invalid_arguments(void **state) {
        (void) state;
        sd_event *e = NULL;
        Outcome o = {};

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(spawn_start(e, (char *const[]) { "true", NULL }, 0, 16, on_done, &o, NULL), -EINVAL);
        assert_int_equal(spawn_start(e, (char *const[]) { NULL }, 0, 16, on_done, &o, NULL), -EINVAL);
        assert_int_equal(spawn_start(e, NULL, 0, 16, on_done, &o, NULL), -EINVAL);
        assert_int_equal(o.calls, 0);
        sd_event_unref(e);
}

static void test_clean_environment(void **state) {
        (void) state;
        Outcome o;

        assert_int_equal(setenv("HEALD_TEST_SECRET", "must-not-leak", 1), 0);
        run_command((char *const[]) { "/usr/bin/env", NULL }, 5 * USEC_PER_SEC, 4096, &o);
        assert_string_equal(o.output, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n"
                                      "LANG=C.UTF-8\n");
        free(o.output);
        (void) unsetenv("HEALD_TEST_SECRET");
}

static void test_fds_closed_and_stdin_null(void **state) {
        (void) state;
        Outcome o;

        /* An fd heald forgot to mark O_CLOEXEC must still not reach the child. */
        int leaked = open("/dev/null", O_RDONLY);
        assert_true(leaked > 2);
        run_command((char *const[]) { "/bin/ls", "/proc/self/fd", NULL }, 5 * USEC_PER_SEC, 4096, &o);
        assert_string_equal(o.output, "0\n1\n2\n3\n"); /* 3: ls's own directory fd */
        free(o.output);
        (void) close(leaked);

        run_command((char *const[]) { "/bin/sh", "-c", "cat; readlink /proc/self/fd/0", NULL }, 5 * USEC_PER_SEC,
                    4096, &o);
        assert_string_equal(o.output, "/dev/null\n");
        free(o.output);
}

static void test_signals_reset(void **state) {
        (void) state;
        Outcome o;

        /* SIGCHLD is blocked in this process by spawn_start(); SIGUSR1 is ignored here. */
        struct sigaction ign = { .sa_handler = SIG_IGN }, old;
        assert_int_equal(sigaction(SIGUSR1, &ign, &old), 0);
        run_command((char *const[]) { "/bin/grep", "-E", "^Sig(Blk|Ign)", "/proc/self/status", NULL },
                    5 * USEC_PER_SEC, 4096, &o);
        /* Signals 32 and 33 are glibc's own (thread cancellation, setxid): its sigaction()
         * refuses to touch them, and a parent started by posix_spawn() (GNU make, Python)
         * may hand them down ignored. glibc manages them itself; every other one must be reset. */
        unsigned long long blocked = 0, ignored = 0;
        assert_int_equal(sscanf(o.output, "SigBlk:\t%llx\nSigIgn:\t%llx\n", &blocked, &ignored), 2);
        assert_int_equal(blocked, 0);
        assert_int_equal(ignored & ~((1ULL << 31) | (1ULL << 32)), 0);
        free(o.output);
        assert_int_equal(sigaction(SIGUSR1, &old, NULL), 0);
}

static void test_cancel(void **state) {
        (void) state;
        sd_event *e = NULL;
        Outcome o = {};
        Spawn *x = NULL;

        assert_int_equal(sd_event_new(&e), 0);
        assert_int_equal(spawn_start(e, (char *const[]) { "/bin/sleep", "10", NULL }, 5 * USEC_PER_SEC, 4096, on_done,
                                    &o, &x),
                         0);
        assert_non_null(x);
        run_for(e, 50 * USEC_PER_MSEC);
        spawn_cancel(x);
        run_for(e, 300 * USEC_PER_MSEC); /* the killed child is reaped by the loop */
        assert_int_equal(o.calls, 0);
        spawn_cancel(NULL);

        /* Cancelled before the loop ever ran, and a failed spawn cancelled before its report. */
        assert_int_equal(spawn_start(e, (char *const[]) { "/bin/sleep", "10", NULL }, 0, 16, on_done, &o, &x), 0);
        spawn_cancel(x);
        assert_int_equal(spawn_start(e, (char *const[]) { "/nonexistent", NULL }, 0, 16, on_done, &o, &x), 0);
        spawn_cancel(x);
        run_for(e, 200 * USEC_PER_MSEC);
        assert_int_equal(o.calls, 0);
        sd_event_unref(e);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_true_and_false),
                cmocka_unit_test(test_killed_by_signal),
                cmocka_unit_test(test_timeout_kills_the_group),
                cmocka_unit_test(test_output_is_bounded_and_counted),
                cmocka_unit_test(test_missing_program),
                cmocka_unit_test(test_invalid_arguments),
                cmocka_unit_test(test_clean_environment),
                cmocka_unit_test(test_fds_closed_and_stdin_null),
                cmocka_unit_test(test_signals_reset),
                cmocka_unit_test(test_cancel),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
