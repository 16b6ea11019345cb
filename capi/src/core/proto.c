#include "core/proto.h"

#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int proto_valid_domain(const char *s) {
    size_t n = strnlen(s, 64);
    if (n == 0 || n > 63 || s[0] == '.') return 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-' || c == '.'))
            return 0;
    }
    return 1;
}

void proto_msg_init(proto_msg_t *msg, uint32_t type) {
    memset(msg, 0, sizeof *msg);
    msg->magic = PROTO_MAGIC;
    msg->type = type;
}

int proto_send(int sock, const proto_msg_t *msg, const int *fds, size_t nfds) {
    struct iovec iov = {.iov_base = (void *)msg, .iov_len = sizeof *msg};
    union {
        char buf[CMSG_SPACE(sizeof(int) * PROTO_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > PROTO_MAX_FDS) {
        errno = EINVAL;
        return -1;
    }
    if (nfds) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
    }
    for (;;) {
        ssize_t n = sendmsg(sock, &mh, MSG_NOSIGNAL);
        if (n == (ssize_t)sizeof *msg) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n >= 0) errno = EMSGSIZE;
        return -1;
    }
}

int proto_recv(int sock, proto_msg_t *msg, int *fds, size_t max_fds, size_t *nfds) {
    struct iovec iov = {.iov_base = msg, .iov_len = sizeof *msg};
    /* room for all a peer can send (SCM_MAX_FD), so the kernel never
     * truncates: every fd received is ours to hand out or close */
    union {
        char buf[CMSG_SPACE(sizeof(int) * PROTO_RECV_MAX_FDS)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                        .msg_controllen = sizeof u.buf};
    *nfds = 0;
    ssize_t n;
    do {
        n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
    } while (n < 0 && errno == EINTR);
    if (n < 0) return -1;
    size_t got = 0;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
            continue;
        size_t k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
            if (got < max_fds) fds[got++] = fd;
            else close(fd); /* more than expected: never leak them */
        }
    }
    if (n == 0) {
        /* end of stream, or an empty packet that may still carry fds */
        for (size_t i = 0; i < got; i++) close(fds[i]);
        return 0;
    }
    /* a longer packet arrives cut to our size: MSG_TRUNC says so */
    if (n != (ssize_t)sizeof *msg || msg->magic != PROTO_MAGIC ||
        (mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC))) {
        for (size_t i = 0; i < got; i++) close(fds[i]);
        errno = EBADMSG;
        return -1;
    }
    msg->name[sizeof msg->name - 1] = '\0';
    msg->text[sizeof msg->text - 1] = '\0';
    *nfds = got;
    return 1;
}

int proto_send_blob(int sock, const void *buf, size_t size) {
    for (;;) {
        ssize_t n = send(sock, buf, size, MSG_NOSIGNAL);
        if (n == (ssize_t)size) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n >= 0) errno = EMSGSIZE;
        return -1;
    }
}

int proto_recv_blob(int sock, void *buf, size_t size) {
    for (;;) {
        /* MSG_TRUNC: the real length, so a longer packet is an error too */
        ssize_t n = recv(sock, buf, size, MSG_TRUNC);
        if (n == (ssize_t)size) return 0;
        if (n < 0 && errno == EINTR) continue;
        if (n >= 0) errno = n == 0 ? ECONNRESET : EBADMSG;
        return -1;
    }
}
