/* shoald: command line, configuration, then the daemon loop. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/proto.h"
#include "daemon/access.h"
#include "daemon/config.h"
#include "daemon/daemon.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "shoal.h"

static void usage(FILE *f) {
    fprintf(f,
            "usage: shoald [options]\n"
            "  --domain NAME        domain to serve (default $SHOAL_DOMAIN, else 'default')\n"
            "  --config FILE        configuration file (default: built-in defaults)\n"
            "  --runtime-dir DIR    socket directory (default $SHOAL_RUNTIME_DIR, else /tmp/shoal-<uid>)\n"
            "  --log-level LEVEL    off|error|warn|info|debug|trace (default info)\n"
            "  --print-config       print the effective configuration and exit\n"
            "  --ready-fd N         write \"ready\\n\" to fd N once accepting connections\n"
            "  --log-format FORMAT  auto|plain|journal: journal prefixes each line with its syslog\n"
            "                       priority (<3> error .. <7> debug) for the systemd journal;\n"
            "                       auto (default) uses it when $JOURNAL_STREAM is our stderr\n"
            "  --version            print the version and exit\n"
            "  --help               this text\n"
            "Readiness is also reported to $NOTIFY_SOCKET (systemd Type=notify) when set.\n"
            "SIGTERM/SIGINT stop the daemon; SIGHUP reloads nothing (a changed config needs a restart).\n"
            "exit codes: 0 clean stop, 1 bad usage or config, 2 domain already served, 3 start-up failure\n");
}

int main(int argc, char **argv) {
    const char *domain = getenv("SHOAL_DOMAIN");
    const char *config_path = NULL;
    const char *runtime_dir = getenv("SHOAL_RUNTIME_DIR");
    int print_config = 0, ready_fd = -1, log_format = LOG_FORMAT_AUTO;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("shoald %s (ABI %u)\n", shoal_version(), shoal_abi_version());
            return 0;
        } else if (!strcmp(a, "--print-config")) {
            print_config = 1;
        } else if (v && !strcmp(a, "--domain")) {
            domain = v, i++;
        } else if (v && !strcmp(a, "--config")) {
            config_path = v, i++;
        } else if (v && !strcmp(a, "--runtime-dir")) {
            runtime_dir = v, i++;
        } else if (v && !strcmp(a, "--log-level")) {
            int l = log_level_parse(v);
            if (l < 0) {
                fprintf(stderr, "shoald: unknown log level '%s' (use off|error|warn|info|debug|trace)\n", v);
                return 1;
            }
            shoal_log_level = l;
            i++;
        } else if (v && !strcmp(a, "--log-format")) {
            log_format = log_format_parse(v);
            if (log_format < 0) {
                fprintf(stderr, "shoald: unknown log format '%s' (use auto|plain|journal)\n", v);
                return 1;
            }
            i++;
        } else if (v && !strcmp(a, "--ready-fd")) {
            char *end;
            long fd = strtol(v, &end, 10);
            if (*end || fd < 0 || fd > 65535) {
                fprintf(stderr, "shoald: --ready-fd needs a file descriptor number, got '%s'\n", v);
                return 1;
            }
            ready_fd = (int)fd;
            i++;
        } else {
            fprintf(stderr, "shoald: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    log_init(log_format);
    /* messages before the daemon loop go to stderr too: prefixed as errors in the journal */
    const char *tag = log_is_journal() ? "<3>shoald" : "shoald";
    char err[2048];
    if (notify_init(err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", tag, err);
        return 1;
    }
    if (!domain || !*domain) domain = "default";
    if (!proto_valid_domain(domain)) {
        fprintf(stderr, "%s: invalid domain '%s' (1..63 of A-Z a-z 0-9 _ - .)\n", tag, domain);
        return 1;
    }
    static shoal_config_t cfg;
    shoal_config_defaults(&cfg);
    if (config_path && shoal_config_load(&cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", tag, err);
        return 1;
    }
    /* names are looked up once: a user or group renamed later needs a restart */
    if (shoal_config_resolve_access(&cfg, err, sizeof err) != 0) {
        fprintf(stderr, "shoald: %s\n", err);
        return 1;
    }
    /* before any segment exists: a config the machine cannot hold is a bad
     * config, not an OOM kill later */
    shoal_machine_t machine;
    shoal_machine_probe(&machine);
    if (shoal_config_check_machine(&cfg, &machine, err, sizeof err) != 0) {
        fprintf(stderr, "%s: %s\n", tag, err);
        return 1;
    }
    if (print_config) {
        shoal_config_print(&cfg, stdout);
        return 0;
    }
    char dir[256];
    if (runtime_dir && *runtime_dir) {
        snprintf(dir, sizeof dir, "%s", runtime_dir);
    } else {
        snprintf(dir, sizeof dir, "/tmp/shoal-%d", (int)getuid());
        if (access_open(&cfg))
            LOGW("[access] admits other users, but their processes look for the socket in "
                 "/tmp/shoal-<their uid> unless told otherwise: start them with "
                 "SHOAL_RUNTIME_DIR=%s, or start shoald with --runtime-dir (e.g. /run/shoal) and "
                 "give them that",
                 dir);
    }
    if (cfg.access.rule_count && !access_open(&cfg))
        LOGW("the [access.topic] and [access.service] rules of %s restrict nobody: without "
             "[access] users or groups only shoald's own uid and root are admitted, and rules "
             "do not apply to them",
             cfg.source);
    daemon_options_t o = {.domain = domain, .runtime_dir = dir, .ready_fd = ready_fd};
    return daemon_run(&cfg, &o);
}
