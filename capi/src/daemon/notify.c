#include "daemon/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static struct sockaddr_un notify_addr;
static socklen_t notify_len; /* 0: no notify socket */

int notify_init(char *err, size_t errlen) {
    const char *path = getenv("NOTIFY_SOCKET");
    notify_len = 0;
    if (!path || !*path) return 0;
    size_t n = strlen(path);
    memset(&notify_addr, 0, sizeof notify_addr);
    notify_addr.sun_family = AF_UNIX;
    /* a path must be absolute; '@' names an abstract socket (leading NUL) */
    if ((path[0] != '/' && path[0] != '@') || n >= sizeof notify_addr.sun_path) {
        snprintf(err, errlen,
                 "NOTIFY_SOCKET='%.64s%s' is not an absolute socket path or an @abstract name "
                 "of at most %zu bytes (it is set by the service manager for Type=notify)",
                 path, n > 64 ? "..." : "", sizeof notify_addr.sun_path - 1);
        unsetenv("NOTIFY_SOCKET");
        return -1;
    }
    memcpy(notify_addr.sun_path, path, n);
    if (path[0] == '@') notify_addr.sun_path[0] = '\0';
    notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    unsetenv("NOTIFY_SOCKET");
    return 0;
}

int notify_enabled(void) { return notify_len != 0; }

int notify_send(const char *state) {
    if (!notify_len) return 0;
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -1;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&notify_addr,
                       notify_len);
    int saved = errno;
    close(fd);
    errno = saved;
    return w == (ssize_t)strlen(state) ? 0 : -1;
}
