/* main.c: the command line. Exit codes (heald(8)): 0 success, 1 failure, 64 usage, 65 bad event,
 * 69 (EX_UNAVAILABLE) send-event not accepted, 78 (EX_CONFIG) bad configuration. */
#include <getopt.h>
#include <sys/prctl.h>
#include <sysexits.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "control.h"
#include "log.h"
#include "manager.h"
#include "polkit.h"

static void help(void) {
        printf("Usage: heald [--config FILE]                 run the agent in the foreground\n"
               "       heald check-config [--config FILE]    validate and print the effective configuration\n"
               "       heald send-event [--config FILE] DETAIL_TYPE DETAIL_JSON\n"
               "                                             publish one event now; exit 0 only if accepted\n"
               "       heald status [--config FILE] [--json] every check's state, from the running daemon\n"
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

static void print_status(const cJSON *st) {
        const cJSON *checks = cJSON_GetObjectItemCaseSensitive(st, "checks"), *c;
        printf("heald %s (pid %.0f)%s: outbox %.0f events, %s\n", json_str(st, "version"),
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "pid")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "dry_run")) ? " [dry run]" : "",
               cJSON_GetNumberValue(cJSON_GetObjectItemCaseSensitive(st, "outbox_depth")),
               cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(st, "publishing")) ? "publishing" : "not publishing yet");
        printf("%-20s %-9s %-8s %-10s %-30s %s\n", "CHECK", "TYPE", "HEALTH", "PHASE", "OBSERVED", "LAST ACTION");
        cJSON_ArrayForEach(c, checks)
                printf("%-20s %-9s %-8s %-10s %-30.30s %s %s\n", json_str(c, "check"), json_str(c, "check_type"),
                       json_str(c, "health"), json_str(c, "phase"), json_str(c, "observed"), json_str(c, "last_action"),
                       json_str(c, "last_action_result"));
}

/* [agent] control_socket read leniently, for a file that does not load (see run_control).
 * Returns a new string, or NULL for the default. */
static char *control_socket_from_file(const char *path) {
        _cleanup_free_ char *text = NULL;
        if (read_file_full(path, 1024 * 1024, &text, NULL) < 0)
                return NULL;
        bool in_agent = false;
        for (char *line = strtok(text, "\n"); line; line = strtok(NULL, "\n")) {
                line += strspn(line, " \t");
                if (*line == '[') {
                        in_agent = strncmp(line, "[agent]", 7) == 0;
                        continue;
                }
                if (!in_agent || strncmp(line, "control_socket", 14) != 0)
                        continue;
                char *v = line + 14;
                v += strspn(v, " \t");
                if (*v != '=')
                        continue;
                v++;
                v += strspn(v, " \t");
                v[strcspn(v, " \t;#\r")] = 0;
                return *v == '/' ? strdup(v) : NULL;
        }
        return NULL;
}

/* heald status / heald reset: ask the running daemon over its control socket. They must work
 * when the file on disk was just broken (a reload was rejected and the daemon still runs the
 * old configuration): then only control_socket is read from it. */
static int run_control(const char *config_path, const char *request, bool json) {
        _cleanup_(config_freep) Config *config = NULL;
        _cleanup_free_ char *error = NULL, *lenient = NULL;
        const char *sock;
        if (config_load_file(config_path, &config, &error) >= 0)
                sock = config->control_socket ? config->control_socket : CONTROL_SOCKET_DEFAULT;
        else {
                lenient = control_socket_from_file(config_path);
                sock = lenient ? lenient : CONTROL_SOCKET_DEFAULT;
                fprintf(stderr, "heald: note: %s does not load (%s); asking the daemon at %s anyway\n", config_path,
                        error ? error : "out of memory", sock);
        }
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
        if (json)
                printf("%s\n", answer);
        else if (strncmp(request, "reset ", 6) == 0)
                printf("Check %s reset: its action budget is full and any escalation is cleared.\n", request + 6);
        else
                print_status(o);
        cJSON_Delete(o);
        return EXIT_SUCCESS;
}

/* heald polkit-rules: print or install the rule; warnings name configured units it never grants. */
static int run_polkit_rules(const Config *config, const char *output) {
        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        int r = polkit_rules_build(config, POLKIT_USER_DEFAULT, &rules, &warnings);
        if (r < 0) {
                fprintf(stderr, "heald: cannot build the polkit rule: %s\n", strerror(-r));
                return EXIT_FAILURE;
        }
        if (warnings)
                fputs(warnings, stderr);
        if (!output)
                return fputs(rules, stdout) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        r = polkit_rules_write(output, rules);
        if (r < 0) {
                fprintf(stderr, "heald: cannot write %s: %s\n", output, strerror(-r));
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

int main(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' },
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "json", no_argument, NULL, 'j' },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        const char *config_path = CONFIG_DEFAULT_PATH, *output = NULL;
        bool json = false;
        int c;
        while ((c = getopt_long(argc, argv, "+c:hV", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
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

        const char *verb = optind < argc ? argv[optind++] : NULL;
        /* Options may also follow the verb: "heald check-config --config F". */
        while (verb && (c = getopt_long(argc, argv, "+c:hjo:", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'o':
                        output = optarg;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return EX_USAGE;
                }

        static const char *const verbs[] = { "check-config", "send-event", "status", "reset", "polkit-rules" };
        static const int n_args[] = { 0, 2, 0, 1, 0 };
        int v = -1;
        for (size_t i = 0; verb && i < ELEMENTSOF(verbs); i++)
                if (strcmp(verb, verbs[i]) == 0)
                        v = (int) i;
        if (verb && v < 0) {
                fprintf(stderr, "heald: unknown command '%s' (see heald --help)\n", verb);
                return EX_USAGE;
        }
        bool send_event = v == 1;
        if (argc - optind != (v >= 0 ? n_args[v] : 0)) {
                fprintf(stderr, "heald: wrong number of arguments (see heald --help)\n");
                return EX_USAGE;
        }

        if (v == 2 || v == 3) {
                char request[CONTROL_REQUEST_MAX];
                bsprintf(request, v == 2 ? "status" : "reset %s", v == 3 ? argv[optind] : "");
                return run_control(config_path, request, json);
        }

        Config *config = NULL;
        if (load_config(config_path, &config) < 0)
                return EX_CONFIG;
        if (v == 0) {
                int r = config_print(config, stdout);
                config_free(config);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }
        if (v == 4) {
                int r = run_polkit_rules(config, output);
                config_free(config);
                return r;
        }

        setup_logging(config->log_level);
        /* The daemon holds credentials, task tokens and signed requests as long as it runs: no
         * core dump of it, and no ptrace or /proc/PID/mem from other processes of its user. */
        if (!send_event && prctl(PR_SET_DUMPABLE, 0) < 0) {
                log_error_errno(errno, "Failed to make the process non-dumpable: %m");
                config_free(config);
                return EXIT_FAILURE;
        }
        _cleanup_(manager_freep) Manager *m = NULL;
        int r = manager_new(config, &m);
        if (r < 0) {
                log_error_errno(r, "Failed to set up: %m");
                return EXIT_FAILURE;
        }
        if (send_event) {
                r = manager_run_send_event(m, argv[optind], argv[optind + 1]);
                return r == 0 ? EXIT_SUCCESS : r == -EINVAL ? EX_DATAERR : EX_UNAVAILABLE;
        }
        r = manager_run_daemon(m);
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
