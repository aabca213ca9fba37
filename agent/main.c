/* main.c: the command line. Exit codes (heald(8)): 0 success, 1 failure, 64 usage, 65 bad event,
 * 69 (EX_UNAVAILABLE) send-event not accepted, 78 (EX_CONFIG) bad configuration. */
#include <getopt.h>
#include <sysexits.h>

#include "config.h"
#include "log.h"
#include "manager.h"

static void help(void) {
        printf("Usage: heald [--config FILE]                 run the agent in the foreground\n"
               "       heald check-config [--config FILE]    validate and print the effective configuration\n"
               "       heald send-event [--config FILE] DETAIL_TYPE DETAIL_JSON\n"
               "                                             publish one event now; exit 0 only if accepted\n"
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
                {},
        };
        const char *config_path = CONFIG_DEFAULT_PATH;
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
        while (verb && (c = getopt_long(argc, argv, "+c:h", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        config_path = optarg;
                        break;
                case 'h':
                        help();
                        return 0;
                default:
                        return EX_USAGE;
                }

        if (verb && strcmp(verb, "check-config") != 0 && strcmp(verb, "send-event") != 0) {
                fprintf(stderr, "heald: unknown command '%s' (see heald --help)\n", verb);
                return EX_USAGE;
        }
        bool send_event = verb && strcmp(verb, "send-event") == 0;
        if (send_event ? argc - optind != 2 : optind != argc) {
                fprintf(stderr, "heald: wrong number of arguments (see heald --help)\n");
                return EX_USAGE;
        }

        Config *config = NULL;
        if (load_config(config_path, &config) < 0)
                return EX_CONFIG;
        if (verb && strcmp(verb, "check-config") == 0) {
                int r = config_print(config, stdout);
                config_free(config);
                return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
        }

        setup_logging(config->log_level);
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
