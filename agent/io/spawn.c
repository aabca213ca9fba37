/* io/spawn.c: fork and execve a program in its own session, read its output through an io source,
 * reap it through a child source, kill its process group at the deadline. posix_spawn() is
 * not used: glibc leaves its internal signals 32 and 33 ignored in the child. */
#define _GNU_SOURCE /* pipe2, close_range */
#include "io/spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <limits.h>
#include <sys/resource.h>
#include <sys/wait.h>

#define EXEC_READ_CHUNK 65536
#define EXEC_READS_PER_WAKEUP 16 /* 1 MiB, then other sources get their turn */
#define EXEC_READS_AT_EXIT 64    /* a pipe holds 64 KiB by default; more only if a writer escaped */

struct Spawn {
        sd_event *event;
        sd_event_source *child_source, *io_source, *timer_source;
        pid_t pid;
        int output_fd; /* read end of the stdout+stderr pipe, non-blocking */
        int error_fd;  /* read end of the pipe the child reports a failed execve() on */
        char *output;
        size_t output_len, max_output;
        uint64_t output_total;
        bool exited, timed_out;
        int exit_status, signal;
        spawn_done_fn done;
        void *userdata;
};

static char *const spawn_environment[] = {
        (char *) "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        (char *) "LANG=C.UTF-8",
        NULL,
};

static Spawn *spawn_free(Spawn *x) {
        if (!x)
                return NULL;
        sd_event_source_disable_unref(x->child_source);
        sd_event_source_disable_unref(x->io_source);
        sd_event_source_disable_unref(x->timer_source);
        if (x->output_fd >= 0)
                (void) close(x->output_fd);
        if (x->error_fd >= 0)
                (void) close(x->error_fd);
        free(x->output);
        sd_event_unref(x->event);
        return mfree(x);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Spawn *, spawn_free);

static void spawn_finish(Spawn *x, int error) {
        SpawnResult r = {
                .exited = x->exited,
                .exit_status = x->exit_status,
                .signal = x->signal,
                .timed_out = x->timed_out,
                .output = x->output,
                .output_len = x->output_len,
                .output_total = x->output_total,
        };
        x->done(error, error < 0 ? NULL : &r, x->userdata);
        spawn_free(x);
}

/* Read what the pipe holds now, at most max_reads chunks so that a program writing without
 * pause cannot hold the loop; at EOF or on a read error stop watching it (a hung-up pipe
 * would otherwise wake the loop forever). */
static void spawn_read_output(Spawn *x, unsigned max_reads) {
        char buf[EXEC_READ_CHUNK];

        for (unsigned i = 0; i < max_reads && x->output_fd >= 0; i++) {
                ssize_t n = read(x->output_fd, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0 && errno == EAGAIN)
                        return;
                if (n <= 0) {
                        x->io_source = sd_event_source_disable_unref(x->io_source);
                        (void) close(TAKE_FD(x->output_fd));
                        return;
                }
                size_t room = x->max_output - x->output_len;
                size_t take = (size_t) n < room ? (size_t) n : room;
                memcpy(x->output + x->output_len, buf, take);
                x->output_len += take;
                x->output[x->output_len] = 0;
                x->output_total += (uint64_t) n;
        }
}

static int spawn_on_output(sd_event_source *s _unused_, int fd _unused_, uint32_t revents _unused_, void *userdata) {
        spawn_read_output(userdata, EXEC_READS_PER_WAKEUP);
        return 0;
}

/* Before the child has called setsid() its group does not exist yet; the pid alone is then
 * enough, as it has not started anything. Neither pid can be reused before it is reaped. */
static void spawn_kill(pid_t pid) {
        (void) kill(-pid, SIGKILL);
        (void) kill(pid, SIGKILL);
}

static int spawn_on_child(sd_event_source *s _unused_, const siginfo_t *si, void *userdata) {
        Spawn *x = userdata;
        int error;

        if (!x) /* cancelled: sd-event reaps the zombie after we return */
                return 0;

        if (read(x->error_fd, &error, sizeof error) == (ssize_t) sizeof error) {
                spawn_finish(x, error > 0 ? -error : -EIO);
                return 0;
        }

        x->exited = si->si_code == CLD_EXITED;
        if (x->exited)
                x->exit_status = si->si_status;
        else
                x->signal = si->si_status;

        /* What is left of the group goes first, so that the pipe stops filling; output written
         * before the exit stays in the pipe. The leader is still a zombie, so its pid cannot
         * have been reused for the group we kill. */
        spawn_kill(x->pid);
        spawn_read_output(x, EXEC_READS_AT_EXIT);
        spawn_finish(x, 0);
        return 0;
}

static int spawn_on_timeout(sd_event_source *s _unused_, uint64_t usec _unused_, void *userdata) {
        Spawn *x = userdata;

        /* done() follows from spawn_on_child once the killed leader has been reaped. */
        x->timed_out = true;
        spawn_kill(x->pid);
        return 0;
}

/* sd-event refuses child sources unless SIGCHLD is blocked; heald has one loop thread. */
static int spawn_block_sigchld(void) {
        sigset_t set;

        if (sigemptyset(&set) < 0 || sigaddset(&set, SIGCHLD) < 0)
                return -errno;
        if (sigprocmask(SIG_BLOCK, &set, NULL) < 0)
                return -errno;
        return 0;
}

/* Between fork() and execve(): async-signal-safe calls only (heald may have other threads).
 * Any failure is written to error_fd (close-on-exec, so a successful execve() leaves it
 * empty) for spawn_on_child to report. */
_Noreturn static void spawn_child(char *const argv[], int output_fd, int error_fd, int max_fd) {
        struct sigaction dfl = { .sa_handler = SIG_DFL };
        sigset_t none;
        int null_fd, error;

        /* Dispositions first, then the mask: the parent blocked every signal around fork(). */
        for (int sig = 1; sig < NSIG; sig++)
                (void) sigaction(sig, &dfl, NULL);
        (void) sigemptyset(&none);

        /* Move both pipe ends above 2 first: with stdio closed in heald they could be 0..2. */
        output_fd = fcntl(output_fd, F_DUPFD, STDERR_FILENO + 1);
        error_fd = fcntl(error_fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
        null_fd = open("/dev/null", O_RDONLY);
        if (output_fd < 0 || error_fd < 0 || null_fd < 0 || setsid() < 0 ||
            dup2(null_fd, STDIN_FILENO) < 0 || dup2(output_fd, STDOUT_FILENO) < 0 ||
            dup2(output_fd, STDERR_FILENO) < 0)
                goto fail;
        /* Everything above stderr closes at execve(), the error pipe included. */
        if (close_range(STDERR_FILENO + 1, ~0U, CLOSE_RANGE_CLOEXEC) < 0)
                for (int fd = STDERR_FILENO + 1; fd < max_fd; fd++)
                        if (fd != error_fd)
                                (void) close(fd);
        if (sigprocmask(SIG_SETMASK, &none, NULL) < 0)
                goto fail;
        execve(argv[0], argv, spawn_environment);
fail:
        error = errno;
        (void) !write(error_fd, &error, sizeof error);
        _exit(127);
}

/* Returns 0 with *ret_pid, or a negative errno when fork() fails. */
static int spawn_fork(char *const argv[], int output_fd, int error_fd, pid_t *ret_pid) {
        struct rlimit nofile;
        sigset_t all, saved;
        int max_fd = getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < INT_MAX ? (int) nofile.rlim_cur
                                                                                           : 65536;

        /* No signal handler of heald may run in the child before its dispositions are reset. */
        (void) sigfillset(&all);
        if (sigprocmask(SIG_SETMASK, &all, &saved) < 0)
                return -errno;
        pid_t pid = fork();
        if (pid == 0)
                spawn_child(argv, output_fd, error_fd, max_fd);
        int error = errno;
        (void) sigprocmask(SIG_SETMASK, &saved, NULL);
        if (pid < 0)
                return -error;
        *ret_pid = pid;
        return 0;
}

int spawn_start(sd_event *e, char *const argv[], usec_t timeout, size_t max_output,
               spawn_done_fn done, void *userdata, Spawn **ret) {
        _cleanup_(spawn_freep) Spawn *x = NULL;
        _cleanup_close_ int output_write_fd = -1, error_write_fd = -1;
        int fds[2], r;

        if (!e || !done || !argv || !argv[0] || argv[0][0] != '/')
                return -EINVAL;

        r = spawn_block_sigchld();
        if (r < 0)
                return r;

        x = calloc(1, sizeof *x);
        if (!x)
                return -ENOMEM;
        x->event = sd_event_ref(e);
        x->output_fd = x->error_fd = -1;
        x->done = done;
        x->userdata = userdata;
        x->max_output = max_output;
        x->output = malloc(max_output + 1);
        if (!x->output)
                return -ENOMEM;
        x->output[0] = 0;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        x->output_fd = fds[0];
        output_write_fd = fds[1];
        /* Only our end is non-blocking: the program writes as usual and waits when we lag. */
        if (fcntl(x->output_fd, F_SETFL, O_NONBLOCK) < 0)
                return -errno;
        if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0)
                return -errno;
        x->error_fd = fds[0];
        error_write_fd = fds[1];

        r = spawn_fork(argv, output_write_fd, error_write_fd, &x->pid);
        if (r < 0)
                return r;

        /* From here on a child exists. The child source goes first: if it cannot be set up we
         * kill the child and reap it synchronously, which is instant for SIGKILL in practice. */
        r = sd_event_add_child(e, &x->child_source, x->pid, WEXITED, spawn_on_child, x);
        if (r < 0) {
                spawn_kill(x->pid);
                (void) waitpid(x->pid, NULL, 0);
                return r;
        }
        (void) sd_event_source_set_description(x->child_source, "exec-child");

        r = sd_event_add_io(e, &x->io_source, x->output_fd, EPOLLIN, spawn_on_output, x);
        if (r < 0)
                goto fail_kill;
        (void) sd_event_source_set_description(x->io_source, "exec-output");

        if (timeout > 0 && timeout != USEC_INFINITY) {
                r = sd_event_add_time_relative(e, &x->timer_source, CLOCK_MONOTONIC, timeout, USEC_PER_MSEC,
                                               spawn_on_timeout, x);
                if (r < 0)
                        goto fail_kill;
                (void) sd_event_source_set_description(x->timer_source, "exec-timeout");
        }

        if (ret)
                *ret = x;
        TAKE_PTR(x);
        return 0;

fail_kill:
        spawn_cancel(TAKE_PTR(x));
        return r;
}

void spawn_cancel(Spawn *x) {
        if (!x)
                return;
        if (x->child_source) {
                spawn_kill(x->pid);
                /* Hand the child source to the loop so the zombie is still reaped after x is
                 * gone; the loop frees it when the loop itself is freed. */
                (void) sd_event_source_set_userdata(x->child_source, NULL);
                if (sd_event_source_set_floating(x->child_source, true) >= 0)
                        x->child_source = sd_event_source_unref(x->child_source);
        }
        spawn_free(x);
}
