/* shoald: owns the segments, registers processes, creates and destroys
 * ports, and reclaims everything a dead process held. */
#ifndef SHOAL_DAEMON_DAEMON_H
#define SHOAL_DAEMON_DAEMON_H

#include "daemon/config.h"

/* A connection must say HELLO within this time, else it is closed. */
#define DAEMON_HANDSHAKE_TIMEOUT_MS 2000
/* At most this many connections without HELLO; beyond it the oldest is closed. */
#define DAEMON_UNREGISTERED_MAX 2048
/* While accept() fails for want of fds (EMFILE/ENFILE), accepting pauses this long. */
#define DAEMON_ACCEPT_BACKOFF_MS 100
/* A refused peer is kept this long at most so that it reads its refusal. */
#define DAEMON_REFUSED_LINGER_MS 1000

typedef struct daemon_options {
    const char *domain;
    const char *runtime_dir;
    int ready_fd; /* -1 if none */
} daemon_options_t;

/* Runs until SIGTERM/SIGINT. Returns the process exit code. */
int daemon_run(const shoal_config_t *cfg, const daemon_options_t *opts);

#endif
