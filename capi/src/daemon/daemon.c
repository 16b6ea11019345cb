/* shoald: start-up, connections and the event loop. What the requests do
 * is registry.c's job; what the dead leave behind, reclaim.c's. */
#include "daemon/daemon.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <unistd.h>

#include "core/error.h"
#include "core/futex.h"
#include "core/proto.h"
#include "core/shm.h"
#include "daemon/access.h"
#include "daemon/daemon_int.h"
#include "daemon/log.h"
#include "daemon/notify.h"

#define EXIT_ALREADY_RUNNING 2
#define EXIT_STARTUP 3

/* ---- connections --------------------------------------------------------------- */

uint64_t ratelog_due(ratelog_t *r, uint64_t n) {
    uint64_t now = shoal_now_ns();
    r->held += n;
    if (r->last_ns && now - r->last_ns < LOG_INTERVAL_NS) return 0;
    uint64_t due = r->held;
    r->last_ns = now;
    r->held = 0;
    return due;
}

/* Unregistered connections, oldest first: bounded in number and in time. */
static void unreg_append(daemon_t *d, conn_t *c) {
    c->unreg_prev = d->unreg_tail;
    c->unreg_next = NULL;
    if (d->unreg_tail) d->unreg_tail->unreg_next = c;
    else d->unreg_head = c;
    d->unreg_tail = c;
    d->unreg_count++;
}

void unreg_unlink(daemon_t *d, conn_t *c) {
    if (!c->deadline_ns) return; /* not on the list */
    if (c->unreg_prev) c->unreg_prev->unreg_next = c->unreg_next;
    else d->unreg_head = c->unreg_next;
    if (c->unreg_next) c->unreg_next->unreg_prev = c->unreg_prev;
    else d->unreg_tail = c->unreg_prev;
    c->unreg_prev = c->unreg_next = NULL;
    c->deadline_ns = 0;
    d->unreg_count--;
}

/* Sockets are non-blocking: a reply that cannot be sent at once is not
 * waited for. The failure is noted here and conn_event drops that peer. */
static int reply_failed_fd = -1;
static int reply_failed_errno;

void reply_failed(int fd, int err) {
    reply_failed_fd = fd;
    reply_failed_errno = err;
}

void reply_port(int fd, shoal_result_t rc, uint32_t slot, uint32_t gen, uint32_t service,
                const char *text) {
    proto_msg_t r;
    proto_msg_init(&r, PROTO_REPLY);
    r.result = rc;
    r.slot = slot;
    r.gen = gen;
    r.service = service;
    if (text) snprintf(r.text, sizeof r.text, "%s", text);
    if (proto_send(fd, &r, NULL, 0) != 0) {
        reply_failed(fd, errno);
        LOGD("reply to fd %d failed: %s", fd, strerror(errno));
    }
}

void reply_error(int fd, shoal_result_t rc, const char *text) {
    reply_port(fd, rc, 0, 0, 0, text);
}

static void accept_resume(daemon_t *d);

static void conn_close(daemon_t *d, size_t idx) {
    conn_t *c = d->conns[idx];
    process_gone(d, c);
    unreg_unlink(d, c);
    epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    /* events of this batch must not reach a later conn at the same address */
    for (int i = 0; i < d->batch_n; i++)
        if (d->batch[i].data.ptr == c) d->batch[i].data.ptr = NULL;
    access_peer_free(&c->peer);
    free(c);
    d->conns[idx] = d->conns[--d->conn_count];
    if (idx < d->conn_count) d->conns[idx]->idx = idx;
    if (d->accept_paused) accept_resume(d); /* an fd is free again */
}

static unsigned long long nofile_limit(void) {
    struct rlimit rl;
    return getrlimit(RLIMIT_NOFILE, &rl) == 0 ? (unsigned long long)rl.rlim_cur : 0;
}

/* The listen fd leaves epoll for a while: a backlog we cannot accept from
 * would otherwise wake us in a loop. */
static void accept_pause(daemon_t *d) {
    d->accept_resume_ns = shoal_now_ns() + DAEMON_ACCEPT_BACKOFF_MS * 1000000ull;
    if (d->accept_paused) return;
    epoll_ctl(d->epoll_fd, EPOLL_CTL_DEL, d->listen_fd, NULL);
    d->accept_paused = 1;
}

static void accept_resume(daemon_t *d) {
    if (d->reserve_fd < 0) d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (!d->accept_paused) return;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d->listen_fd};
    if (epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, d->listen_fd, &ev) == 0) d->accept_paused = 0;
}

/* accept() failed for want of fds: the waiting clients are refused with the
 * reason through the reserve fd (so they fail at once instead of timing
 * out), and accepting pauses. */
static void accept_out_of_fds(daemon_t *d, int err) {
    char text[PROTO_TEXT_MAX];
    unsigned long long lim = nofile_limit();
    snprintf(text, sizeof text,
             "shoald (pid %d) of domain '%s' has no file descriptor left for this connection "
             "(%s; its RLIMIT_NOFILE soft limit is %llu, %zu connections are open): raise the "
             "limit of shoald (ulimit -n or LimitNOFILE= before it starts; it raises its soft "
             "limit to the hard limit itself) or close connections to it",
             (int)getpid(), d->domain, strerror(err), lim, d->conn_count);
    uint64_t refused = 0;
    while (d->reserve_fd >= 0 && refused < 128) {
        close(d->reserve_fd);
        int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
        if (fd >= 0) {
            reply_error(fd, SHOAL_ERR_DAEMON_UNAVAILABLE, text);
            close(fd);
            refused++;
        }
        d->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0) break;
    }
    reply_failed_fd = -1; /* not a connection of ours */
    accept_pause(d);
    uint64_t n = ratelog_due(&d->log_accept, 1);
    d->refused_no_fd += refused;
    refused = d->refused_no_fd;
    if (n) {
        d->refused_no_fd = 0;
        LOGW("cannot accept connections: %s (RLIMIT_NOFILE soft limit %llu, %zu connections "
             "open, %zu without HELLO); %llu time(s) since the last report, %llu waiting "
             "client(s) refused with this reason; accepting pauses %d ms each time. Raise the "
             "limit (ulimit -n or LimitNOFILE= before shoald starts) or find who holds the "
             "connections (shoal processes)",
             strerror(err), lim, d->conn_count, d->unreg_count, (unsigned long long)n,
             (unsigned long long)refused, DAEMON_ACCEPT_BACKOFF_MS);
    }
}

static void accept_conn(daemon_t *d) {
    int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd < 0) {
        int e = errno;
        if (e == EMFILE || e == ENFILE) {
            accept_out_of_fds(d, e);
        } else if (e != EAGAIN && e != EINTR && e != ECONNABORTED) {
            /* e.g. ENOBUFS, ENOMEM: the backlog stays readable; do not spin */
            accept_pause(d);
            uint64_t n = ratelog_due(&d->log_accept, 1);
            if (n)
                LOGW("accept: %s (%llu time(s) since the last report); accepting pauses %d ms "
                     "each time",
                     strerror(e), (unsigned long long)n, DAEMON_ACCEPT_BACKOFF_MS);
        }
        return;
    }
    access_peer_t peer;
    if (access_peer_read(fd, d->cfg, &peer) != 0) {
        LOGD("cannot read the credentials of a new connection: %s", strerror(errno));
        close(fd);
        return;
    }
    char text[PROTO_TEXT_MAX];
    int refused = !access_admit(d->cfg, &peer, (uint32_t)geteuid(), d->domain, text, sizeof text);
    if (refused) {
        uint64_t n = ratelog_due(&d->log_refused, 1);
        if (n)
            LOGW("refused pid %d (%llu refusal(s) since the last report): %s", (int)peer.pid,
                 (unsigned long long)n, text);
        reply_error(fd, SHOAL_ERR_PERMISSION, text);
        reply_failed_fd = -1;
        /* closing now would reset the connection before the client read the
         * reply (its HELLO still unread here): keep it, read nothing more */
        shutdown(fd, SHUT_WR);
    }
    conn_t *c = calloc(1, sizeof *c);
    if (!c) {
        access_peer_free(&peer);
        close(fd);
        return;
    }
    if (d->conn_count == d->conn_cap) {
        size_t cap = d->conn_cap ? d->conn_cap * 2 : 64;
        conn_t **n = realloc(d->conns, cap * sizeof *n);
        if (!n) {
            access_peer_free(&peer);
            free(c);
            close(fd);
            return;
        }
        d->conns = n;
        d->conn_cap = cap;
    }
    c->fd = fd;
    c->pid = peer.pid;
    c->uid = (uid_t)peer.uid;
    c->peer = peer;
    c->refused = refused;
    snprintf(c->name, sizeof c->name, "pid%d", (int)peer.pid);
    struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP, .data.ptr = c};
    if (epoll_ctl(d->epoll_fd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        access_peer_free(&c->peer);
        free(c);
        close(fd);
        return;
    }
    c->idx = d->conn_count;
    d->conns[d->conn_count++] = c;
    c->deadline_ns = shoal_now_ns() + (refused ? DAEMON_REFUSED_LINGER_MS : DAEMON_HANDSHAKE_TIMEOUT_MS) * 1000000ull;
    unreg_append(d, c);
    if (d->unreg_count > DAEMON_UNREGISTERED_MAX) {
        conn_t *old = d->unreg_head;
        uint64_t n = ratelog_due(&d->log_evicted, 1);
        if (n)
            LOGW("more than %d connections without HELLO (DAEMON_UNREGISTERED_MAX): closing the "
                 "oldest, of pid %d (%llu closed so since the last report); some process opens "
                 "connections and never registers",
                 DAEMON_UNREGISTERED_MAX, (int)old->pid, (unsigned long long)n);
        conn_close(d, old->idx);
    }
}

/* Closes the connections past their deadline: no HELLO within the
 * handshake bound, or refused ones that never hung up. */
static void unreg_sweep(daemon_t *d) {
    uint64_t now = shoal_now_ns(), idle = 0;
    for (conn_t *c = d->unreg_head, *next; c; c = next) {
        next = c->unreg_next;
        if (now < c->deadline_ns) continue;
        if (!c->refused) idle++;
        conn_close(d, c->idx);
    }
    uint64_t n = idle ? ratelog_due(&d->log_idle, idle) : 0;
    if (n)
        LOGW("closed %llu connection(s) that sent no HELLO within %d ms "
             "(DAEMON_HANDSHAKE_TIMEOUT_MS) since the last report",
             (unsigned long long)n, DAEMON_HANDSHAKE_TIMEOUT_MS);
}

/* A refused peer: read and drop what it sends until it hangs up. */
static void refused_event(daemon_t *d, conn_t *c, uint32_t events) {
    for (int i = 0; i < 64; i++) {
        proto_msg_t msg;
        size_t nfds;
        int r = proto_recv(c->fd, &msg, NULL, 0, &nfds);
        if (r == 1 || (r < 0 && errno == EBADMSG)) continue;
        if (r < 0 && errno == EAGAIN && !(events & (EPOLLHUP | EPOLLERR))) return;
        break;
    }
    conn_close(d, c->idx);
}

static void conn_event(daemon_t *d, conn_t *c, uint32_t events) {
    size_t idx = 0;
    while (idx < d->conn_count && d->conns[idx] != c) idx++;
    if (idx == d->conn_count) return;
    if (c->refused) return refused_event(d, c, events);
    if (events & EPOLLIN) {
        proto_msg_t msg;
        int fds[4];
        size_t nfds = 0;
        int r = proto_recv(c->fd, &msg, fds, 4, &nfds);
        for (size_t i = 0; i < nfds; i++) close(fds[i]); /* clients never send fds */
        if (r == 1) {
            reply_failed_fd = -1;
            switch (msg.type) {
            case PROTO_HELLO: handle_hello(d, c, &msg); break;
            case PROTO_PORT_CREATE:
                if (!c->registered) reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, "not registered");
                else handle_port_create(d, c, &msg);
                break;
            case PROTO_PORT_DESTROY:
                if (!c->registered) reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, "not registered");
                else handle_port_destroy(d, c, &msg);
                break;
            default: reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, "unknown request");
            }
            if (reply_failed_fd == c->fd) {
                /* a client waits for each reply before its next request, so a
                 * full socket means a peer that does not read: drop it rather
                 * than wait for it */
                int e = reply_failed_errno;
                reply_failed_fd = -1;
                uint64_t n = e == EAGAIN ? ratelog_due(&d->log_deaf, 1) : 0;
                int sndbuf = 0;
                socklen_t sl = sizeof sndbuf;
                getsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, &sl);
                if (n)
                    LOGW("process '%s' (pid %d) does not read its replies: its socket buffer "
                         "(SO_SNDBUF %d bytes) is full; disconnected, its ports and chunks are "
                         "reclaimed (%llu peer(s) dropped so since the last report)",
                         c->name, (int)c->pid, sndbuf, (unsigned long long)n);
                else if (e != EAGAIN)
                    LOGD("reply to '%s' (pid %d) failed: %s; closing", c->name, (int)c->pid,
                         strerror(e));
                conn_close(d, idx);
            }
            return;
        }
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (r < 0 && errno == EBADMSG) {
            LOGW("malformed message from pid %d; closing its connection", (int)c->pid);
        }
        conn_close(d, idx);
        return;
    }
    if (events & (EPOLLHUP | EPOLLRDHUP | EPOLLERR)) conn_close(d, idx);
}

/* ---- start-up and shutdown ------------------------------------------------------- */

/* Modes of the runtime directory and socket: private without [access];
 * with it, reachable by every uid (the daemon's check decides, and answers
 * with the reason), or only by socket_group's members. */
static mode_t dir_mode(const shoal_config_t *cfg) {
    if (!access_open(cfg)) return 0700;
    return cfg->access.socket_group_line ? 0750 : 0755;
}

static mode_t sock_mode(const shoal_config_t *cfg) {
    if (!access_open(cfg)) return 0700;
    return cfg->access.socket_group_line ? 0660 : 0666;
}

/* A parent that others cannot traverse hides the socket from every user
 * [access] admits: say so at start rather than let them get EACCES. */
static void check_parents(const daemon_t *d) {
    char p[sizeof d->dir];
    const shoal_config_access_t *a = &d->cfg->access;
    snprintf(p, sizeof p, "%s", d->dir);
    for (char *slash = strrchr(p, '/'); slash; slash = strrchr(p, '/')) {
        if (slash == p) slash[1] = '\0';
        else *slash = '\0';
        struct stat st;
        if (stat(p, &st) != 0) break;
        int others = (st.st_mode & S_IXOTH) != 0;
        int group = a->socket_group_line && (st.st_mode & S_IXGRP) && st.st_gid == a->socket_group.id;
        if (!others && !group)
            LOGW("%s (owner uid %d, group %d, mode %04o) cannot be traversed by the users [access] "
                 "admits, so they cannot reach %s: give it o+x (chmod o+x %s) or use a "
                 "--runtime-dir under a directory they can enter (e.g. /run/shoal)",
                 p, (int)st.st_uid, (int)st.st_gid, (unsigned)(st.st_mode & 07777), d->sock_path, p);
        if (slash == p) break;
    }
}

static int make_dir(daemon_t *d) {
    const char *dir = d->dir;
    int open_to_others = access_open(d->cfg);
    mode_t want = dir_mode(d->cfg);
    if (mkdir(dir, want) != 0 && errno != EEXIST) {
        LOGE("cannot create runtime directory %s: %s", dir, strerror(errno));
        return -1;
    }
    /* by descriptor: the checks and changes apply to the same directory */
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0 || !S_ISDIR(st.st_mode)) {
        LOGE("runtime directory %s is not a directory%s%s", dir, fd < 0 ? ": " : "",
             fd < 0 ? strerror(errno) : "");
        if (fd >= 0) close(fd);
        return -1;
    }
    if (st.st_uid != geteuid()) {
        LOGE("runtime directory %s belongs to uid %d, not to us (uid %d); use --runtime-dir",
             dir, (int)st.st_uid, (int)geteuid());
        close(fd);
        return -1;
    }
    if (open_to_others) {
        const shoal_config_access_t *a = &d->cfg->access;
        if (a->socket_group_line && st.st_gid != a->socket_group.id &&
            fchown(fd, (uid_t)-1, (gid_t)a->socket_group.id) != 0) {
            LOGE("cannot give runtime directory %s to group %s (gid %u), [access] socket_group "
                 "of %s:%u: %s (shoald, uid %d, must be root or a member of that group)",
                 dir, a->socket_group.name, a->socket_group.id, d->cfg->source,
                 a->socket_group_line, strerror(errno), (int)geteuid());
            close(fd);
            return -1;
        }
        if ((st.st_mode & 07777) != want && fchmod(fd, want) != 0) {
            LOGE("cannot set mode %04o on runtime directory %s: %s", (unsigned)want, dir,
                 strerror(errno));
            close(fd);
            return -1;
        }
        check_parents(d);
    }
    close(fd);
    return 0;
}

static int create_segments(daemon_t *d) {
    const shoal_config_t *cfg = d->cfg;
    shm_layout_params_t lp;
    /* the same parameters the start-up memory check sized */
    shoal_config_layout_params(cfg, &lp);
    shm_header_t layout;
    if (shm_layout(&lp, &layout) != 0) {
        LOGE("the configured limits and pools overflow the management segment layout");
        return -1;
    }
    char name[96];
    snprintf(name, sizeof name, "shoal-%s-mgmt", d->domain);
    d->mgmt_fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (d->mgmt_fd < 0 || ftruncate(d->mgmt_fd, (off_t)layout.mgmt_size) != 0) {
        LOGE("management segment of %llu bytes: %s", (unsigned long long)layout.mgmt_size,
             strerror(errno));
        return -1;
    }
    void *mg = mmap(NULL, layout.mgmt_size, PROT_READ | PROT_WRITE, MAP_SHARED, d->mgmt_fd, 0);
    if (mg == MAP_FAILED) {
        LOGE("mmap management segment: %s", strerror(errno));
        return -1;
    }
    d->map.mgmt = mg;
    d->map.shared_hdr = mg;
    d->map.mgmt_size = layout.mgmt_size;
    shm_init(&d->map, &layout, &lp);
    shm_header_t *sh = d->map.shared_hdr;
    snprintf(sh->config_source, sizeof sh->config_source, "%.255s", cfg->source);
    snprintf(sh->domain, sizeof sh->domain, "%s", d->domain);
    memcpy(d->map.hdr->config_source, sh->config_source, sizeof sh->config_source);
    memcpy(d->map.hdr->domain, sh->domain, sizeof sh->domain);
    atomic_store(&sh->daemon_pid, (uint32_t)getpid());
    shm_layout_export(&d->map, &d->layout);
    /* nobody may resize a segment under the others (SIGBUS) */
    fcntl(d->mgmt_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
    uint64_t payload_total = 0;
    for (uint32_t i = 0; i < cfg->pool_count; i++) {
        const shm_pool_geom_t *pl = shm_pool_geom(&d->map, i);
        snprintf(name, sizeof name, "shoal-%s-pool%u", d->domain, i);
        d->pool_fds[i] = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
        /* pages are only backed when first touched, so huge pools are cheap */
        if (d->pool_fds[i] < 0 || ftruncate(d->pool_fds[i], (off_t)pl->segment_size) != 0) {
            LOGE("pool #%u (%llu chunks of %llu bytes, %llu bytes): %s", i,
                 (unsigned long long)pl->chunk_count, (unsigned long long)pl->chunk_size,
                 (unsigned long long)pl->segment_size, strerror(errno));
            return -1;
        }
        fcntl(d->pool_fds[i], F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL);
        payload_total += pl->segment_size;
    }
    LOGI("segments ready: management %llu bytes, payload %llu bytes in %u pools",
         (unsigned long long)layout.mgmt_size, (unsigned long long)payload_total, cfg->pool_count);
    return registry_init(d) == 0 && reclaim_init(d) == 0 ? 0 : -1;
}

static int take_lock(daemon_t *d) {
    d->lock_fd = open(d->lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (d->lock_fd < 0) {
        LOGE("cannot open lock file %s: %s", d->lock_path, strerror(errno));
        return EXIT_STARTUP;
    }
    if (flock(d->lock_fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "?";
        ssize_t n = pread(d->lock_fd, pid, sizeof pid - 1, 0);
        if (n > 0) {
            pid[n] = '\0';
            pid[strcspn(pid, "\n")] = '\0';
        }
        LOGE("a shoald (pid %s) is already running on domain '%s' (lock %s); stop it first or "
             "use another --domain",
             pid, d->domain, d->lock_path);
        close(d->lock_fd);
        d->lock_fd = -1;
        return EXIT_ALREADY_RUNNING;
    }
    char buf[32];
    int n = snprintf(buf, sizeof buf, "%d\n", (int)getpid());
    if (ftruncate(d->lock_fd, 0) != 0 || pwrite(d->lock_fd, buf, (size_t)n, 0) != n)
        LOGW("cannot write pid to %s", d->lock_path);
    return 0;
}

static int listen_socket(daemon_t *d) {
    struct stat st;
    if (lstat(d->sock_path, &st) == 0) {
        /* we hold the lock, so this is a dead daemon's socket */
        LOGI("taking over from a previous daemon: removing stale %s", d->sock_path);
        unlink(d->sock_path);
    }
    d->listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(d->sock_path) >= sizeof a.sun_path) {
        LOGE("socket path %s is too long (max %zu); use a shorter --runtime-dir", d->sock_path,
             sizeof a.sun_path - 1);
        return -1;
    }
    strcpy(a.sun_path, d->sock_path);
    mode_t old = umask(0077);
    int rc = bind(d->listen_fd, (struct sockaddr *)&a, sizeof a);
    umask(old);
    if (d->listen_fd < 0 || rc != 0 || listen(d->listen_fd, 128) != 0) {
        LOGE("cannot listen on %s: %s", d->sock_path, strerror(errno));
        return -1;
    }
    if (!access_open(d->cfg)) return 0;
    /* made 0700 by the umask above: widened only now that it is ours */
    const shoal_config_access_t *acc = &d->cfg->access;
    if (acc->socket_group_line && chown(d->sock_path, (uid_t)-1, (gid_t)acc->socket_group.id) != 0) {
        LOGE("cannot give %s to group %s (gid %u), [access] socket_group of %s:%u: %s (shoald, "
             "uid %d, must be root or a member of that group)",
             d->sock_path, acc->socket_group.name, acc->socket_group.id, d->cfg->source,
             acc->socket_group_line, strerror(errno), (int)geteuid());
        return -1;
    }
    if (chmod(d->sock_path, sock_mode(d->cfg)) != 0) {
        LOGE("cannot set mode %04o on %s: %s", (unsigned)sock_mode(d->cfg), d->sock_path,
             strerror(errno));
        return -1;
    }
    return 0;
}

/* Every client costs the daemon an fd: use all the hard limit allows. */
static void raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= rl.rlim_max) return;
    unsigned long long was = (unsigned long long)rl.rlim_cur;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) == 0)
        LOGD("RLIMIT_NOFILE soft limit raised from %llu to the hard limit %llu", was,
             (unsigned long long)rl.rlim_max);
    else
        LOGW("cannot raise the RLIMIT_NOFILE soft limit %llu to the hard limit %llu: %s", was,
             (unsigned long long)rl.rlim_max, strerror(errno));
}

static void cleanup(daemon_t *d) {
    /* every process learns that the daemon is gone before its ports close
     * under it, so its waits report that, not a closed port */
    for (size_t i = 0; i < d->conn_count; i++) shutdown(d->conns[i]->fd, SHUT_RDWR);
    d->accept_paused = 0; /* no re-arming while closing */
    while (d->conn_count) conn_close(d, d->conn_count - 1);
    if (d->reserve_fd >= 0) close(d->reserve_fd);
    if (d->map.mgmt) quarantine_sweep(d, 1);
    free(d->conns);
    if (d->listen_fd >= 0) {
        close(d->listen_fd);
        unlink(d->sock_path);
    }
    if (d->lock_fd >= 0) {
        unlink(d->lock_path);
        close(d->lock_fd);
    }
    if (d->map.mgmt) munmap(d->map.mgmt, d->map.mgmt_size);
    if (d->mgmt_fd >= 0) close(d->mgmt_fd);
    for (uint32_t i = 0; i < SHM_MAX_POOLS; i++)
        if (d->pool_fds[i] >= 0) close(d->pool_fds[i]);
    registry_free(d);
    reclaim_free(d);
    if (d->epoll_fd >= 0) close(d->epoll_fd);
    if (d->signal_fd >= 0) close(d->signal_fd);
    if (d->timer_fd >= 0) close(d->timer_fd);
}

int daemon_run(const shoal_config_t *cfg, const daemon_options_t *opts) {
    daemon_t d;
    memset(&d, 0, sizeof d);
    d.cfg = cfg;
    d.lock_fd = d.listen_fd = d.epoll_fd = d.signal_fd = d.timer_fd = d.mgmt_fd = -1;
    d.reserve_fd = -1;
    for (int i = 0; i < SHM_MAX_POOLS; i++) d.pool_fds[i] = -1;
    d.next_gen = 1;
    snprintf(d.domain, sizeof d.domain, "%s", opts->domain);
    snprintf(d.dir, sizeof d.dir, "%s", opts->runtime_dir);
    snprintf(d.sock_path, sizeof d.sock_path, "%s/%s.sock", d.dir, d.domain);
    snprintf(d.lock_path, sizeof d.lock_path, "%s/%s.lock", d.dir, d.domain);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP); /* not a reload: see the signal handling below */
    sigprocmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    int code = EXIT_STARTUP;
    raise_nofile();
    if (make_dir(&d) != 0) goto out;
    int lr = take_lock(&d);
    if (lr != 0) {
        code = lr;
        goto out;
    }
    if (create_segments(&d) != 0 || listen_socket(&d) != 0) goto out;
    d.signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
    d.timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
    d.epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    d.reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (d.signal_fd < 0 || d.timer_fd < 0 || d.epoll_fd < 0 || d.reserve_fd < 0) goto out;
    struct itimerspec its = {.it_interval = {0, 50000000}, .it_value = {0, 50000000}};
    timerfd_settime(d.timer_fd, 0, &its, NULL);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = &d.listen_fd};
    epoll_ctl(d.epoll_fd, EPOLL_CTL_ADD, d.listen_fd, &ev);
    ev.data.ptr = &d.signal_fd;
    epoll_ctl(d.epoll_fd, EPOLL_CTL_ADD, d.signal_fd, &ev);
    ev.data.ptr = &d.timer_fd;
    epoll_ctl(d.epoll_fd, EPOLL_CTL_ADD, d.timer_fd, &ev);

    LOGI("shoald %s listening on %s (domain '%s', config %s)", shoal_version(), d.sock_path,
         d.domain, cfg->source);
    if (access_open(cfg)) {
        char users[512], groups[512];
        const shoal_config_access_t *a = &cfg->access;
        access_format_ids(a->users.ids, a->users.count, a->users.anyone, 0, users, sizeof users);
        access_format_ids(a->groups.ids, a->groups.count, 0, 0, groups, sizeof groups);
        char self[32] = "";
        if (geteuid() != 0) snprintf(self, sizeof self, "uid %d, ", (int)geteuid());
        LOGI("access: %sroot, users = %s, groups = %s; %s mode %04o, socket mode %04o%s%s; "
             "%u topic/service rule(s)",
             self, a->users.line ? users : "(none)", a->groups.line ? groups : "(none)",
             d.dir, (unsigned)dir_mode(cfg), (unsigned)sock_mode(cfg),
             a->socket_group_line ? ", group " : "", a->socket_group_line ? a->socket_group.name : "",
             a->rule_count);
    }
    if (opts->ready_fd >= 0) {
        ssize_t w = write(opts->ready_fd, "ready\n", 6);
        (void)w;
        close(opts->ready_fd);
    }
    if (notify_enabled()) {
        char state[768]; /* fits the longest domain and socket path */
        snprintf(state, sizeof state, "READY=1\nSTATUS=serving domain '%s' on %s\nMAINPID=%d",
                 d.domain, d.sock_path, (int)getpid());
        if (notify_send(state) != 0)
            LOGW("could not tell the service manager we are ready (NOTIFY_SOCKET): %s",
                 strerror(errno));
    }
    while (!d.stopping) {
        struct epoll_event evs[32];
        int n = epoll_wait(d.epoll_fd, evs, 32, -1);
        if (n < 0) {
            if (errno == EINTR) continue;
            LOGE("epoll_wait: %s", strerror(errno));
            break;
        }
        d.batch = evs;
        d.batch_n = n;
        for (int i = 0; i < n; i++) {
            void *p = evs[i].data.ptr;
            if (!p) continue; /* its connection was closed by an earlier event */
            if (p == &d.listen_fd) {
                accept_conn(&d);
            } else if (p == &d.signal_fd) {
                struct signalfd_siginfo si;
                if (read(d.signal_fd, &si, sizeof si) != sizeof si) continue;
                if (si.ssi_signo == SIGHUP) {
                    /* pools and limits size the live segments: a reload could not
                     * apply them without a restart, so say so instead of pretending */
                    LOGW("SIGHUP: the configuration is not reloaded; the daemon keeps running with "
                         "the one read at start (%s); restart shoald to apply a changed file",
                         cfg->source);
                    notify_send("STATUS=SIGHUP ignored: configuration changes need a restart");
                    continue;
                }
                LOGI("signal %u: stopping", si.ssi_signo);
                notify_send("STOPPING=1");
                d.stopping = 1;
            } else if (p == &d.timer_fd) {
                uint64_t ticks;
                if (read(d.timer_fd, &ticks, sizeof ticks) < 0) {
                }
                reclaim_tick(&d);
                unreg_sweep(&d);
                if (d.accept_paused && shoal_now_ns() >= d.accept_resume_ns) accept_resume(&d);
            } else {
                conn_event(&d, p, evs[i].events);
            }
        }
        d.batch_n = 0;
    }
    code = 0;
out:
    cleanup(&d);
    if (code == 0) LOGI("stopped cleanly");
    return code;
}

#ifdef SHOAL_FUZZING
#include "daemon/daemon_fuzz.inc" /* tests/fuzz: entry points into the handlers */
#endif
