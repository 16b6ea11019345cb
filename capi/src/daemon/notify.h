/* Service-manager integration without libsystemd: sd_notify-style status
 * datagrams to $NOTIFY_SOCKET (systemd Type=notify). */
#ifndef SHOAL_DAEMON_NOTIFY_H
#define SHOAL_DAEMON_NOTIFY_H

#include <stddef.h>

/* Reads $NOTIFY_SOCKET (a path, or "@name" for an abstract socket) and
 * removes it from the environment, so that nothing we start inherits it.
 * Returns 0 when there is none or it is usable, -1 (with a message in err)
 * when it is set but malformed. */
int notify_init(char *err, size_t errlen);

/* Sends one datagram of "KEY=VALUE\n" lines (e.g. "READY=1\nSTATUS=...").
 * Does nothing when there is no notify socket; never blocks. Returns 0 when
 * sent or not configured, -1 on a send failure (logged by the caller). */
int notify_send(const char *state);

/* 1 when a notify socket was given. */
int notify_enabled(void);

#endif
