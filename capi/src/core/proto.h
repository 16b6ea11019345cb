/* Daemon <-> process protocol over a Unix SOCK_SEQPACKET socket: one fixed
 * message per packet, file descriptors attached with SCM_RIGHTS. */
#ifndef SHOAL_CORE_PROTO_H
#define SHOAL_CORE_PROTO_H

#include <stddef.h>
#include <stdint.h>

#define PROTO_MAGIC 0x53484f4cu
#define PROTO_MAX_FDS 65
/* The most fds one message can carry (the kernel's SCM_MAX_FD): proto_recv
 * takes them all and closes those beyond max_fds. */
#define PROTO_RECV_MAX_FDS 253
#define PROTO_TEXT_MAX 1024

enum proto_type {
    PROTO_HELLO = 1,        /* process -> daemon: abi, pid, name */
    PROTO_WELCOME = 2,      /* daemon -> process: slot, gen, fds */
    PROTO_PORT_CREATE = 3,  /* kind, capacity, policy, history, timeout, name */
    PROTO_PORT_DESTROY = 4, /* slot, gen */
    PROTO_REPLY = 5         /* result, slot, gen, text on error */
};

typedef struct proto_msg {
    uint32_t magic;
    uint32_t type;
    uint32_t result;
    uint32_t abi;
    uint32_t kind;
    uint32_t slot;
    uint32_t gen;
    uint32_t capacity;
    uint32_t policy;
    uint32_t history;
    int32_t pid;
    uint32_t fd_count;
    int64_t timeout_ns;
    char name[128];
    char text[PROTO_TEXT_MAX];
    uint32_t service; /* port create reply: the service index */
    uint32_t reserved;
} proto_msg_t;

/* Domain names (they become socket file names): 1..63 of A-Z a-z 0-9 _ - .,
 * not starting with a dot. */
int proto_valid_domain(const char *name);

/* A message of `type` with every other field zero (and the magic). */
void proto_msg_init(proto_msg_t *msg, uint32_t type);

/* Sends msg with optional fds; 0 or -1 (errno set). */
int proto_send(int sock, const proto_msg_t *msg, const int *fds, size_t nfds);
/* Receives one message and up to max_fds fds. Returns 1 on a message, 0 on
 * peer close, -1 on error; *nfds receives the number of fds. Fds beyond
 * max_fds (any number, in any cmsg) are closed. A malformed message is an
 * error (EBADMSG) and any fds received are closed. */
int proto_recv(int sock, proto_msg_t *msg, int *fds, size_t max_fds, size_t *nfds);

/* A raw packet of exactly `size` bytes (the layout after a welcome).
 * 0 or -1 (errno set; EBADMSG when the size differs). */
int proto_send_blob(int sock, const void *buf, size_t size);
int proto_recv_blob(int sock, void *buf, size_t size);

#endif
