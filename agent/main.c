/* main.c: the command line. Exit codes (heald(8)): 0 success, 1 failure (status: a check is failing
 * or escalated), 64 usage, 65 bad event, 69 (EX_UNAVAILABLE) send-event not accepted or the daemon
 * unreachable, 78 (EX_CONFIG) bad configuration. */
#include <getopt.h>
#include <sys/prctl.h>
#include <sysexits.h>

#include <cjson/cJSON.h>

#include "aws/timestamp.h"
#include "config.h"
#include "control.h"
#include "daemon.h"
#include "io/http.h"
#include "log.h"
#include "polkit.h"

static void help(void) {
        printf("Usage: heald [--config FILE]                 run the agent in the foreground\n"
               "       heald check-config [--config FILE]    validate and print the effective configuration\n"
               "       heald send-event [--config FILE] DETAIL_TYPE DETAIL_JSON\n"
               "                                             publish one event now; exit 0 only if accepted\n"
               "       heald status [--config FILE] [--json] [CHECK]\n"
               "                                             every check's state from the running daemon, or one\n"
               "                                             check's with its history; exit 1 if one is failing\n"
               "       heald reset [--config FILE] CHECK     clear a check's escalation and action budget\n"
               "       heald polkit-rules [--config FILE] [--output FILE]\n"
               "                                             the polkit rule letting user " POLKIT_USER_DEFAULT " manage the\n"
               "                                             configured units (stdout, or FILE atomically)\n"
               "       heald --version | --help\n"
               "\n"
               "Default configuration: " CONFIG_DEFAULT_PATH ". See heald(8) and heald.ini(5).\n");
}

static int load_config(const char *path, Config **ret) {
        _cleanup_free_ char *error = NULL;
        int r = config_load_file(path, ret, &error);
        if (r < 0)
                fprintf(stderr, "%s\n", error ? error : "out of memory");
        return r;
}

static const char *json_str(const cJSON *o, const char *key) {
        const char *v = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, key));
        return v ? v : "-";
}

/* "42s ago", "3m ago", "5h ago", "2d ago": the age of an ISO 8601 time field, or "-". */
static const char *json_age(const cJSON *o, const char *key, char buf[static 32]) {
        usec_t at, now = now_usec(CLOCK_REALTIME);
        if (iso8601_parse(json_str(o, key), &at) < 0)
                return "-";
        uint64_t s = now > at ? (now - at) / USEC_PER_SEC : 0;
        if (s < 120)
                snprintf(buf, 32, "%llus ago", (unsigned long long) s);
        else if (s < 7200)
                snprintf(buf, 32, "%llum ago", (unsigned long long) (s / 60));
        else if (s < 172800)
                snprintf(buf, 32, "%lluh ago", (unsigned long long) (s / 3600));
        else
                snprintf(buf, 32, "%llud ago", (unsigned long long) (s / 86400));
        return buf;
}

static double json_num(const cJSON *o, const char *key) {
        return cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(o, key));
}

/* A check needs a person (exit status 1): it failed, or its budget is spent. */
static bool check_in_trouble(const cJSON *c) {
        return streq_ptr(json_str(c, "health"), "failed") || streq_ptr(json_str(c, "phase"), "escalated");
}

static void print_status_header(const cJSON *st) {
        printf("heald %s (pid %.0f)%s: outbox %.0f event%s, %s\n", json_str(st, "version"), json_num(st, "pid"),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "dry_run")) ? " [dry run]" : "",
               json_num(st, "outbox_depth"), json_num(st, "outbox_depth") == 1 ? "" : "s",
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "publishing")) ? "publishing" : "not publishing yet");
}

/* heald status: one line per check, as monit summary. */
static void print_status(const cJSON *st) {
        const cJSON *c;
        char since[32], checked[32];
        print_status_header(st);
        printf("%-20s %-9s %-8s %-9s %-10s %-9s %-30s %-7s %s\n", "CHECK", "TYPE", "HEALTH", "SINCE", "PHASE", "CHECKED",
               "OBSERVED", "BUDGET", "LAST ACTION");
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(st, "checks")) {
                char budget[24];
                snprintf(budget, sizeof budget, "%.0f/%.0f", json_num(c, "budget_left"), json_num(c, "max_actions"));
                printf("%-20s %-9s %-8s %-9s %-10s %-9s %-30.30s %-7s %s %s\n", json_str(c, "check"), json_str(c, "check_type"),
                       json_str(c, "health"), json_age(c, "since", since), json_str(c, "phase"),
                       json_age(c, "last_result_at", checked), json_str(c, "observed"), budget, json_str(c, "last_action"),
                       json_str(c, "last_action_result"));
        }
}

/* heald status CHECK: one check in full, as monit status, with its recent history. */
static void print_check_status(const cJSON *st) {
        const cJSON *c = cJSON_GetArrayItem(cJSON_GetObjectItemCaseSensitive(st, "checks"), 0), *e;
        char age[32];
        print_status_header(st);
        printf("Check '%s' (%s, %s)\n", json_str(c, "check"), json_str(c, "check_type"), json_str(c, "target"));
        printf("  %-20s %s since %s (%s)\n", "health", json_str(c, "health"), json_str(c, "since"), json_age(c, "since", age));
        printf("  %-20s %s\n", "phase", json_str(c, "phase"));
        printf("  %-20s %s (%s)\n", "last checked", json_str(c, "last_result_at"), json_age(c, "last_result_at", age));
        printf("  %-20s %s\n", "observed", json_str(c, "observed"));
        printf("  %-20s %s\n", "healthy when", json_str(c, "threshold"));
        printf("  %-20s %s\n", "message", json_str(c, "message"));
        printf("  %-20s %s %s\n", "action", json_str(c, "action"),
               cJSON_IsString(cJSON_GetObjectItemCaseSensitive(c, "action_target")) ? json_str(c, "action_target") : "");
        printf("  %-20s %.0f of %.0f\n", "budget left", json_num(c, "budget_left"), json_num(c, "max_actions"));
        printf("Last results (newest first):\n");
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "results"))
                printf("  %s  %-9s %s\n", json_str(e, "at"),
                       cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(e, "healthy")) ? "healthy" : "unhealthy",
                       json_str(e, "observed"));
        printf("Remediations (newest first):\n");
        cJSON_ArrayForEach(e, cJSON_GetObjectItemCaseSensitive(c, "remediations"))
                printf("  %s  %-9s %s\n", json_str(e, "at"), json_str(e, "action"), json_str(e, "result"));
}

/* The options every verb may read. */
typedef struct Options {
        const char *config_path;
        const char *output; /* polkit-rules --output */
        bool json;          /* status --json */
} Options;

/* heald status / heald reset: ask the running daemon over its control socket. They must work
 * when the file on disk was just broken (a reload was rejected and the daemon still runs the
 * old configuration): then only control_socket is read from it. */
static int run_control(const Options *options, const char *request) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *error = NULL, *sock = NULL;
        if (config_control_socket(options->config_path, &sock) < 0) {
                fprintf(stderr, "heald: out of memory\n");
                return EXIT_FAILURE;
        }
        if (config_load_file(options->config_path, &config, &error) < 0)
                fprintf(stderr, "heald: note: %s does not load (%s); asking the daemon at %s anyway\n", options->config_path,
                        error ? error : "out of memory", sock);
        _cleanup_free_ char *answer = NULL;
        int r = control_request(sock, request, &answer);
        if (r < 0) {
                fprintf(stderr, "heald: cannot reach the daemon at %s: %s (is heald running? are you root?)\n", sock,
                        strerror(-r));
                return EX_UNAVAILABLE;
        }
        cJSON *o = cJSON_Parse(answer);
        const char *refusal = cJSON_GetStringValue(cJSON_GetObjectItemCaseSensitive(o, "error"));
        if (!o || refusal) {
                fprintf(stderr, "heald: %s\n", refusal ? refusal : "the daemon's answer is not JSON");
                cJSON_Delete(o);
                return EXIT_FAILURE;
        }
        bool is_status = strncmp(request, "status", 6) == 0, in_trouble = false;
        const cJSON *c;
        cJSON_ArrayForEach(c, cJSON_GetObjectItemCaseSensitive(o, "checks"))
                in_trouble = in_trouble || check_in_trouble(c);
        if (options->json)
                printf("%s\n", answer);
        else if (!is_status)
                printf("Check %s reset: its action budget is full and any escalation is cleared.\n", request + 6);
        else if (request[6])
                print_check_status(o);
        else
                print_status(o);
        cJSON_Delete(o);
        /* status says the state as monit does: 1 when a check failed or escalated */
        return is_status && in_trouble ? EXIT_FAILURE : EXIT_SUCCESS;
}

static int verb_status(const Options *o, char **args) {
        char request[CONTROL_REQUEST_MAX];
        if (!args[0])
                return run_control(o, "status");
        if (bsprintf(request, "status %s", args[0]) < 0) {
                fprintf(stderr, "heald: no check has a name that long\n");
                return EX_USAGE;
        }
        return run_control(o, request);
}

static int verb_reset(const Options *o, char **args) {
        char request[CONTROL_REQUEST_MAX];
        if (bsprintf(request, "reset %s", args[0]) < 0) {
                fprintf(stderr, "heald: no check has a name that long\n");
                return EX_USAGE;
        }
        return run_control(o, request);
}

static int verb_check_config(const Options *o, char **args _unused_) {
        _cleanup_(config_freep) Config *config = NULL;
        if (load_config(o->config_path, &config) < 0)
                return EX_CONFIG;
        return config_print(config, stdout) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* heald polkit-rules: print or install the rule; warnings name configured units it never grants. */
static int verb_polkit_rules(const Options *o, char **args _unused_) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        if (load_config(o->config_path, &config) < 0)
                return EX_CONFIG;
        int r = polkit_rules_build(config, POLKIT_USER_DEFAULT, &rules, &warnings);
        if (r < 0) {
                fprintf(stderr, "heald: cannot build the polkit rule: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (warnings)
                fputs(warnings, stderr);
        if (!o->output)
                return fputs(rules, stdout) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = polkit_rules_write(o->output, rules);
        if (r < 0) {
                fprintf(stderr, "heald: cannot write %s: %s\n", o->output, strerror(-r));
                return EXIT_FAILURE;
        }
        return EXIT_SUCCESS;
}

/* HEALD_LOG_TARGET=stderr|journal overrides the automatic choice (tests, debugging). */
static void setup_logging(int level) {
        const char *target = getenv("HEALD_LOG_TARGET");
        log_force_stderr(target && strcmp(target, "stderr") == 0);
        log_setup(level);
}

/* The daemon and send-event: logging as configured, then the process around the manager. */
static int daemon_setup(const Options *o, Daemon **ret) {
        Config *config = NULL;
        if (load_config(o->config_path, &config) < 0)
                return EX_CONFIG;
        setup_logging(config->log_level);
        int r = daemon_new(config, ret);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        return 0;
}

static int verb_send_event(const Options *o, char **args) {
        _cleanup_(daemon_freep) Daemon *d = NULL;
        int r = daemon_setup(o, &d);
        if (r != 0)
                return r;
        r = daemon_send_event(d, args[0], args[1]);
        return r == 0 ? EXIT_SUCCESS : r == -EINVAL ? EX_DATAERR : EX_UNAVAILABLE;
}

static int verb_run(const Options *o, char **args _unused_) {
        /* The daemon holds credentials, task tokens and signed requests as long as it runs: no
         * core dump of it, and no ptrace or /proc/PID/mem from other processes of its user. */
        if (prctl(PR_SET_DUMPABLE, 0) < 0) {
                log_error_errno(errno, "Failed to make the process non-dumpable: %m");
                return EXIT_FAILURE;
        }
        _cleanup_(daemon_freep) Daemon *d = NULL;
        int r = daemon_setup(o, &d);
        if (r != 0)
                return r;
        r = daemon_run(d);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}

/* What heald does, as systemd's verb tables: the name on the command line (NULL: none, the
 * daemon), the arguments it takes after the options, and what runs it. */
typedef struct Verb {
        const char *name;
        int min_args, max_args;
        int (*run)(const Options *o, char **args);
} Verb;

static const Verb verbs[] = {
        { NULL, 0, 0, verb_run },
        { "check-config", 0, 0, verb_check_config },
        { "send-event", 2, 2, verb_send_event },
        { "status", 0, 1, verb_status },
        { "reset", 1, 1, verb_reset },
        { "polkit-rules", 0, 0, verb_polkit_rules },
};

static const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq_ptr(name, verbs[i].name))
                        return &verbs[i];
        return NULL;
}

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "json", no_argument, NULL, 'j' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        if (http_tls_init() < 0) {
                fprintf(stderr, "heald: cannot initialise libcrypto\n");
                return EXIT_FAILURE;
        }
        Options o = { .config_path = CONFIG_DEFAULT_PATH };
        int c;
        while ((c = getopt_long(argc, argv, "+c:hV", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        o.config_path = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("heald %s\n", HEALD_VERSION);
                        return 0;
                default:
                        return EX_USAGE;
                }

        const char *name = optind < argc ? argv[optind++] : NULL;
        /* Options may also follow the verb: "heald check-config --config F". */
        while (name && (c = getopt_long(argc, argv, "+c:hjo:", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        o.config_path = optarg;
                        break;
                case 'o':
                        o.output = optarg;
                        break;
                case 'j':
                        o.json = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return EX_USAGE;
                }

        const Verb *verb = verb_find(name);
        if (!verb) {
                fprintf(stderr, "heald: unknown command '%s' (see heald --help)\n", name);
                return EX_USAGE;
        }
        if (argc - optind < verb->min_args || argc - optind > verb->max_args) {
                fprintf(stderr, "heald: wrong number of arguments (see heald --help)\n");
                return EX_USAGE;
        }
        return verb->run(&o, argv + optind);
}
