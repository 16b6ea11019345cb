/* shoald: owns the segments, registers processes, creates and destroys
 * ports, and reclaims everything a dead process held. */
#ifndef SHOAL_DAEMON_DAEMON_H
#define SHOAL_DAEMON_DAEMON_H

#include "daemon/config.h"

typedef struct daemon_options {
    const char *domain;
    const char *runtime_dir;
    int ready_fd; /* -1 if none */
} daemon_options_t;

/* Runs until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const shoal_config_t *cfg, const daemon_options_t *opts);

#endif
