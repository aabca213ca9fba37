/* daemon.c: builds the process around the manager: the loop, AWS access, the state directory
 * and the outbox, the modules in dependency order, signals, sd_notify and the watchdog; then
 * runs the loop. Every decision on the way is the manager's. */
#include "daemon.h"

#include <signal.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "aws/client.h"
#include "aws/credentials.h"
#include "aws/imds.h"
#include "commands/channel.h"
#include "control.h"
#include "events/outbox.h"
#include "events/publisher.h"
#include "heal/monitor.h"
#include "io/http.h"
#include "io/units.h"
#include "log.h"
#include "manager.h"

struct Daemon {
        Config *config; /* until the manager takes it (manager_config() from then on) */
        sd_event *event;
        Http *http;
        Imds *imds;
        Credentials *credentials;
        AwsClient *aws;
        Outbox *outbox;       /* daemon only */
        Publisher *publisher; /* daemon only */
        Units *units;         /* daemon only; NULL without a system bus */
        Monitor *monitor;     /* daemon only */
        Control *control;     /* daemon only */
        Channel *channel;     /* daemon only: the command channel */
        Manager *manager;

        char *state_dir; /* as heald started: a reload changes it only at the next start */
        char boot_id[40];
        char boot_marker[80]; /* boot id + when PID 1 started: a container's restart changes it too */
};

static void read_boot_id(char buf[static 40]) {
        _cleanup_free_ char *s = NULL;
        if (read_file_full("/proc/sys/kernel/random/boot_id", 64, &s, NULL) < 0) {
                snprintf(buf, 40, "unknown");
                return;
        }
        s[strcspn(s, "\n")] = 0;
        snprintf(buf, 40, "%s", s);
}

/* The boot id is the kernel's: a container that restarts keeps it. PID 1's start time (field
 * 22 of /proc/1/stat, after the parenthesised command name) tells those boots apart. */
static void read_boot_marker(const char *boot_id, char buf[static 80]) {
        _cleanup_free_ char *stat = NULL;
        unsigned long long start = 0;
        if (read_file_full("/proc/1/stat", 4096, &stat, NULL) >= 0) {
                const char *p = strrchr(stat, ')');
                for (int field = 2; p && *p && field < 22; p++)
                        if (*p == ' ')
                                field++;
                if (p)
                        start = strtoull(p, NULL, 10);
        }
        snprintf(buf, 80, "%s:%llu", boot_id, start);
}

static void notify_systemd(void *userdata _unused_, const char *state) {
        (void) sd_notify(false, state);
}

int daemon_new(Config *config, Daemon **ret) {
        _cleanup_(daemon_freep) Daemon *d = calloc(1, sizeof *d);
        if (!d) {
                config_free(config);
                return -ENOMEM;
        }
        d->config = config;
        read_boot_id(d->boot_id);
        read_boot_marker(d->boot_id, d->boot_marker);
        d->state_dir = strdup(config->state_dir);
        if (!d->state_dir)
                return -ENOMEM;

        int r = sd_event_default(&d->event);
        if (r < 0)
                return r;
        r = http_new(d->event, &d->http);
        if (r < 0)
                return r;
        r = imds_new(d->http, config->imds_endpoint, config->imds_timeout, &d->imds);
        if (r < 0)
                return r;
        r = credentials_new(d->event, d->imds, &d->credentials);
        if (r < 0)
                return r;
        r = aws_client_new(d->http, d->credentials, &d->aws);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(d);
        return 0;
}

Daemon *daemon_free(Daemon *d) {
        if (!d)
                return NULL;
        control_free(d->control);
        channel_free(d->channel);
        monitor_free(d->monitor);
        units_free(d->units);
        publisher_free(d->publisher);
        manager_free(d->manager);
        aws_client_free(d->aws);
        credentials_free(d->credentials);
        imds_free(d->imds);
        http_free(d->http);
        outbox_free(d->outbox);
        sd_event_unref(d->event);
        free(d->state_dir);
        config_free(d->config);
        free(d);
        return NULL;
}

/* The manager, which takes the configuration from here on. */
static int daemon_new_manager(Daemon *d) {
        ManagerContext ctx = {
                .event = d->event,
                .imds = d->imds,
                .credentials = d->credentials,
                .aws = d->aws,
                .outbox = d->outbox,
                .publisher = d->publisher,
                .boot_id = d->boot_id,
                .notify = notify_systemd,
        };
        return manager_new(&ctx, TAKE_PTR(d->config), &d->manager);
}

int daemon_send_event(Daemon *d, const char *detail_type, const char *detail_json) {
        int r = daemon_new_manager(d);
        if (r < 0)
                return r;
        r = manager_send_event_start(d->manager, detail_type, detail_json);
        if (r < 0)
                return r;
        r = sd_event_loop(d->event);
        if (r < 0)
                return r;
        return manager_send_event_result(d->manager);
}

static int state_dir_prepare(const char *dir) {
        _cleanup_free_ char *p = strdup(dir);
        if (!p)
                return -ENOMEM;
        for (char *s = p + 1; *s; s++) {
                if (*s != '/')
                        continue;
                *s = 0;
                if (mkdir(p, 0755) < 0 && errno != EEXIST)
                        return -errno;
                *s = '/';
        }
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* What survives a restart: state_dir and the outbox (the heartbeat number is the manager's). */
static int daemon_open_state(Daemon *d) {
        int r = state_dir_prepare(d->state_dir);
        if (r < 0)
                return log_error_errno(r, "Failed to create state directory %s: %m", d->state_dir);

        OutboxOpenReport report = {};
        r = outbox_open(d->state_dir, d->config->outbox_max_bytes, &d->outbox, &report);
        if (r < 0)
                return log_error_errno(r, "Failed to open the outbox in %s/outbox: %m", d->state_dir);
        if (report.corrupt_records > 0 || report.torn_tails > 0)
                log_event(LOG_WARNING, "outbox-corrupt",
                          "The outbox had %llu corrupt record%s and %llu torn tail%s (%llu byte%s skipped), first: %s; "
                          "the rest is intact",
                          (unsigned long long) report.corrupt_records, plural_s(report.corrupt_records),
                          (unsigned long long) report.torn_tails, plural_s(report.torn_tails),
                          (unsigned long long) report.corrupt_bytes, plural_s(report.corrupt_bytes), report.first_problem);
        if (report.records > 0)
                log_info("The outbox holds %llu event%s from before; sending %s first",
                         (unsigned long long) report.records, plural_s(report.records),
                         report.records == 1 ? "it" : "them");
        return 0;
}

static int on_stop_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si, void *userdata) {
        Daemon *d = userdata;
        return manager_stop(d->manager, (int) si->ssi_signo);
}

static int on_reload_signal(sd_event_source *s _unused_, const struct signalfd_siginfo *si _unused_, void *userdata) {
        Daemon *d = userdata;
        return manager_reload(d->manager);
}

/* SIGTERM and SIGINT stop the daemon (after the publisher's last round); SIGHUP is blocked
 * here and handled once there are modules to reload. */
static int daemon_setup_signals(Daemon *d) {
        sigset_t mask;
        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        sigaddset(&mask, SIGCHLD); /* children (exec checks and actions) are reaped by sd-event */
        if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0)
                return log_error_errno(errno, "Failed to block signals: %m");
        int r = sd_event_add_signal(d->event, NULL, SIGTERM, on_stop_signal, d);
        if (r >= 0)
                r = sd_event_add_signal(d->event, NULL, SIGINT, on_stop_signal, d);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGTERM/SIGINT: %m");
        (void) signal(SIGPIPE, SIG_IGN);
        return 0;
}

/* The modules that heal, take commands and answer heald status, then SIGHUP to reload them. */
static int daemon_setup_modules(Daemon *d) {
        const Config *config = manager_config(d->manager);
        int r = units_new(d->event, NULL, &d->units);
        if (r < 0)
                log_warning_errno(r, "Cannot connect to the system bus (%m): unit checks and unit actions will "
                                     "report that they cannot run");
        MonitorContext mc = {
                .event = d->event,
                .http = d->http,
                .units = d->units,
                .state_dir = config->state_dir,
                .dry_run = config->dry_run,
                .emit = manager_emit_fn,
                .emit_ahead = manager_emit_ahead_fn,
                .sync_events = manager_sync_events_fn,
                .userdata = d->manager,
        };
        r = monitor_new(&mc, config->checks, config->n_checks, &d->monitor);
        if (r < 0)
                return log_error_errno(r, "Failed to start the checks: %m");
        ChannelContext cc = {
                .event = d->event,
                .aws = d->aws,
                .units = d->units,
                .monitor = d->monitor,
                .outbox = d->outbox,
                .state_dir = d->state_dir, /* not the Config's: a reload frees that one */
                .boot_id = d->boot_id,
                .boot_marker = d->boot_marker,
                .emit = manager_emit_fn,
                .userdata = d->manager,
        };
        r = channel_new(&cc, config, &d->channel);
        if (r < 0)
                return r;
        manager_set_modules(d->manager, d->monitor, d->channel);
        const char *sock = config->control_socket ? config->control_socket : CONTROL_SOCKET_DEFAULT;
        r = control_new(d->event, sock, manager_control_request, d->manager, &d->control);
        if (r < 0)
                log_warning_errno(r, "Cannot listen on %s (%m): heald status and heald reset will not reach this daemon",
                                  sock);
        r = sd_event_add_signal(d->event, NULL, SIGHUP, on_reload_signal, d);
        if (r < 0)
                return log_error_errno(r, "Failed to watch SIGHUP: %m");
        return 0;
}

int daemon_run(Daemon *d) {
        int r = daemon_open_state(d);
        if (r < 0)
                return r;
        r = publisher_new(d->event, d->config, d->outbox, d->aws, &d->publisher);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the publisher: %m");
        r = daemon_new_manager(d);
        if (r < 0)
                return r;
        r = daemon_setup_signals(d);
        if (r < 0)
                return r;
        r = manager_emit_started(d->manager);
        if (r < 0)
                return log_error_errno(r, "Failed to record the Agent Started event: %m");
        r = daemon_setup_modules(d);
        if (r < 0)
                return r;
        /* With WatchdogSec= the loop itself sends WATCHDOG=1 as it goes round: if it stalls, the
         * pings stop and systemd restarts heald. */
        r = sd_event_set_watchdog(d->event, true);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the watchdog: %m");
        r = manager_start(d->manager);
        if (r < 0)
                return r;

        (void) sd_notify(false, "READY=1");
        manager_status_update(d->manager);
        const Config *config = manager_config(d->manager);
        log_event(LOG_INFO, "started", "heald %s started (config %s, state in %s)%s", HEALD_VERSION, config->path,
                  config->state_dir, config->dry_run ? " in a DRY RUN: checks report, no action is taken" : "");
        r = sd_event_loop(d->event);
        if (r < 0)
                return log_error_errno(r, "Event loop failed: %m");
        return 0;
}
