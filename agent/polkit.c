/* polkit.c: generates the polkit rule that authorises heald's system user for exactly the unit
 * jobs its configuration can ask systemd for, so heald needs neither root nor CAP_SYS_ADMIN. */
#define _GNU_SOURCE /* asprintf */
#include "polkit.h"

#include <fcntl.h>
#include <fnmatch.h>
#include <libgen.h>
#include <sys/stat.h>

#include "commands/protected_units.h"

static bool user_is_valid(const char *user) {
        if (isempty(user) || strlen(user) > 32 || !strchr("abcdefghijklmnopqrstuvwxyz_", user[0]))
                return false;
        return user[strspn(user, "abcdefghijklmnopqrstuvwxyz0123456789_-")] == 0;
}

static bool strv_contains(char *const *l, const char *s) {
        for (; l && *l; l++)
                if (strcmp(*l, s) == 0)
                        return true;
        return false;
}

/* A JavaScript string literal; config validation keeps unit names to [A-Za-z0-9:_.\@-]. */
static void emit_js_string(FILE *f, const char *s) {
        fputc('"', f);
        for (; *s; s++) {
                if (*s == '\\' || *s == '"')
                        fputc('\\', f);
                fputc(*s, f);
        }
        fputc('"', f);
}

static void emit_regex_char(FILE *f, char c, bool in_class) {
        if (strchr(in_class ? "\\]^[-" : "\\.^$|?*+()[]{}/", c))
                fputc('\\', f);
        fputc(c, f);
}

/* One bracket expression of fnmatch(3) starting at p ('['), as a JS character class. Returns
 * where it ended, or NULL when the bracket never closes (fnmatch then matches a literal '[').
 * Named classes ("[:alpha:]") are not translated: unit names never need them. */
static const char *emit_bracket(FILE *f, const char *p) {
        const char *q = p + 1;
        bool negate = *q == '!' || *q == '^';
        if (negate)
                q++;
        const char *start = q;
        for (; *q && (*q != ']' || q == start); q++)
                if (*q == '\\' && q[1])
                        q++;
        if (*q != ']')
                return NULL;
        fputs(negate ? "[^" : "[", f);
        for (const char *r = start; r < q; r++) {
                if (*r == '\\' && r + 1 < q)
                        emit_regex_char(f, *++r, true);
                else if (*r == '-' && r != start && r + 1 < q)
                        fputc('-', f); /* a range, as in fnmatch */
                else
                        emit_regex_char(f, *r, true);
        }
        fputc(']', f);
        return q;
}

/* fnmatch(glob, unit, 0) as an anchored JS regular expression literal. */
static void emit_glob_regex(FILE *f, const char *glob) {
        fputs("/^", f);
        for (const char *p = glob; *p; p++) {
                const char *end;
                if (*p == '*')
                        fputs(".*", f);
                else if (*p == '?')
                        fputc('.', f);
                else if (*p == '\\' && p[1])
                        emit_regex_char(f, *++p, false);
                else if (*p == '[' && (end = emit_bracket(f, p)))
                        p = end;
                else
                        emit_regex_char(f, *p, false);
        }
        fputs("$/", f);
}

/* One grant: verbs on a unit name, or on a glob as heald's command authorisation matches it
 * (fnmatch without flags); `origin` names the configuration line that asks for it. */
static void emit_grant(FILE *rules, FILE *warnings, const char *unit, bool glob, const char *verbs,
                       const char *origin) {
        glob = glob && unit[strcspn(unit, "*?[\\")];
        fputs("        { ", rules);
        if (glob) {
                fputs("glob: ", rules);
                emit_glob_regex(rules, unit);
        } else {
                fputs("unit: ", rules);
                emit_js_string(rules, unit);
        }
        fprintf(rules, ", verbs: [%s] }, // %s: %s\n", verbs, origin, unit);

        /* A configured glob is held against the protected patterns as if they were names:
         * "*.service" meets "sshd@*.service", "app-*.service" meets none. */
        const char *sep = NULL;
        for (const char *const *p = protected_units; *p; p++) {
                if (glob ? fnmatch(unit, *p, 0) != 0 : fnmatch(*p, unit, 0) != 0)
                        continue;
                if (!sep)
                        fprintf(warnings, "%s: %s: systemd refuses heald's jobs on protected units: ", origin, unit);
                fprintf(warnings, "%s%s", sep ? sep : "", *p);
                sep = ", ";
        }
        if (sep)
                fputc('\n', warnings);
}

static const char *check_action_verbs(CheckAction a) {
        switch (a) {
        case CHECK_ACTION_RESTART_UNIT:
                return "\"restart\"";
        case CHECK_ACTION_START_UNIT:
                return "\"start\"";
        case CHECK_ACTION_STOP_UNIT:
                return "\"stop\"";
        default:
                return NULL;
        }
}

/* The verbs the allowed unit commands need on [commands] units, as a JS list ("" if none). */
static void commands_verbs(const Config *c, char buf[static 64]) {
        bool restart = strv_contains(c->commands_allow, "restart-units");
        bool stop_start = strv_contains(c->commands_allow, "stop-start-units");
        bool start = stop_start || strv_contains(c->commands_allow, "start-units");
        bool stop = stop_start || strv_contains(c->commands_allow, "stop-units");
        snprintf(buf, 64, "%s%s%s%s%s", restart ? "\"restart\"" : "", restart && start ? ", " : "", start ? "\"start\"" : "",
                 (restart || start) && stop ? ", " : "", stop ? "\"stop\"" : "");
}

static void emit_grants(const Config *c, FILE *rules, FILE *warnings) {
        char origin[128], verbs[64];

        for (size_t i = 0; i < c->n_checks; i++) {
                const CheckConfig *cc = &c->checks[i];
                const char *check_verbs = check_action_verbs(cc->action);
                if (!check_verbs || !cc->action_unit)
                        continue;
                bsprintf(origin, "[check %s] action = %s", cc->name, check_action_to_string(cc->action));
                emit_grant(rules, warnings, cc->action_unit, false, check_verbs, origin);
        }
        commands_verbs(c, verbs);
        if (*verbs)
                for (char **u = c->commands_units; u && *u; u++)
                        emit_grant(rules, warnings, *u, true, verbs, "[commands] units");
        if (strv_contains(c->commands_allow, "prepare-stop"))
                for (char **u = c->commands_drain_units; u && *u; u++)
                        emit_grant(rules, warnings, *u, false, "\"stop\"", "[commands] drain_units (prepare-stop)");
}

int polkit_rules_build(const Config *c, const char *user, char **ret_rules, char **ret_warnings) {
        if (!user_is_valid(user))
                return -EINVAL;

        _cleanup_free_ char *rules = NULL, *warnings = NULL;
        size_t rules_len = 0, warnings_len = 0;
        _cleanup_fclose_ FILE *r = open_memstream(&rules, &rules_len);
        _cleanup_fclose_ FILE *w = open_memstream(&warnings, &warnings_len);
        if (!r || !w)
                return -ENOMEM;

        fprintf(r,
                "// 50-heald.rules: what heald (user %s) may ask systemd to do, and nothing more.\n"
                "// Generated by \"heald polkit-rules\" from %s (sha256 %s);\n"
                "// heald.service rewrites it at every start and reload and removes it when heald stops.\n"
                "polkit.addRule(function (action, subject) {\n"
                "    if (action.id !== \"org.freedesktop.systemd1.manage-units\" || subject.user !== \"%s\")\n"
                "        return polkit.Result.NOT_HANDLED;\n"
                "    var unit = action.lookup(\"unit\"), verb = action.lookup(\"verb\");\n",
                user, c->path ? c->path : "<embedded>", c->digest, user);
        if (strv_contains(c->commands_allow, "reboot"))
                fputs("    if (unit === \"reboot.target\" && verb === \"start\")\n"
                      "        return polkit.Result.YES; // [commands] allow = reboot\n",
                      r);
        fputs("    var protectedUnits = [", r);
        for (const char *const *p = protected_units; *p; p++) {
                fputs(p == protected_units ? "" : ", ", r);
                emit_glob_regex(r, *p);
        }
        fputs("];\n"
              "    if (!unit || protectedUnits.some(function (p) { return p.test(unit); }))\n"
              "        return polkit.Result.NO;\n"
              "    var grants = [\n",
              r);
        emit_grants(c, r, w);
        fputs("    ];\n"
              "    for (var i = 0; i < grants.length; i++) {\n"
              "        var g = grants[i];\n"
              "        if ((g.unit === unit || (g.glob && g.glob.test(unit))) && g.verbs.indexOf(verb) >= 0)\n"
              "            return polkit.Result.YES;\n"
              "    }\n"
              "    return polkit.Result.NO;\n"
              "});\n",
              r);

        if (ferror(r) || ferror(w))
                return -ENOMEM;
        /* fclose() publishes the buffers; the cleanup would run too late. */
        FILE *rf = TAKE_PTR(r), *wf = TAKE_PTR(w);
        if ((fclose(rf) != 0) | (fclose(wf) != 0))
                return -ENOMEM;
        *ret_rules = TAKE_PTR(rules);
        *ret_warnings = warnings_len > 0 ? TAKE_PTR(warnings) : NULL;
        return 0;
}

int polkit_rules_write(const char *path, const char *text) {
        _cleanup_free_ char *tmp = NULL, *dir_copy = strdup(path);
        if (!dir_copy || asprintf(&tmp, "%s.tmp-%d", path, (int) getpid()) < 0)
                return -ENOMEM;

        (void) unlink(tmp); /* a leftover of a crashed run with our pid */
        _cleanup_close_ int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd < 0)
                return -errno;
        int r = 0;
        size_t len = strlen(text);
        for (size_t done = 0; done < len && r == 0;) {
                ssize_t n = write(fd, text + done, len - done);
                if (n < 0 && errno != EINTR)
                        r = -errno;
                else if (n > 0)
                        done += (size_t) n;
        }
        /* The umask may have narrowed the mode; polkitd must be able to read the file. */
        if (r == 0 && (fchmod(fd, 0644) < 0 || fsync(fd) < 0 || rename(tmp, path) < 0))
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        _cleanup_close_ int dfd = open(dirname(dir_copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0 || fsync(dfd) < 0)
                return -errno;
        return 0;
}
