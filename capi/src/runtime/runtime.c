/* Runtime: registration with the daemon, mappings, port create/destroy
 * round trips, introspection. Nothing here is on the hot path. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "core/futex.h"
#include "core/port.h"
#include "core/proto.h"
#include "core/queue.h"
#include "core/spare.h"
#include "core/sweep.h"
#include "runtime/abi.h"
#include "runtime/internal.h"

static const size_t rt_opts_extent[] = ABI_EXTENTS(shoal_runtime_options_t, connect_timeout_ns);
static const abi_struct_t rt_opts_abi = {
    "shoal_runtime_options_t",
    "initialise it with shoal_runtime_options_init(&opts, SHOAL_RUNTIME_OPTIONS_VERSION) or "
    "SHOAL_RUNTIME_OPTIONS_INIT",
    SHOAL_RUNTIME_OPTIONS_VERSION, rt_opts_extent};

SHOAL_API shoal_result_t shoal_runtime_options_init(shoal_runtime_options_t *o, uint32_t version) {
    if (!o) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "opts is NULL");
    shoal_runtime_options_t d = SHOAL_RUNTIME_OPTIONS_INIT;
    return abi_write(&rt_opts_abi, o, &d, version);
}

static void unmap_all(shm_map_t *m) {
    for (int i = 0; i < SHM_MAX_POOLS; i++)
        if (m->payload[i]) munmap(m->payload[i], m->payload_size[i]);
    if (m->mgmt) munmap(m->mgmt, m->mgmt_size);
    memset(m, 0, sizeof *m);
}

static shoal_result_t map_segments(shoal_runtime_t *rt, const shm_layout_msg_t *layout,
                                   const int *fds, size_t nfds) {
    shm_map_t *m = &rt->map;
    struct stat st;
    if (nfds < 1 || fstat(fds[0], &st) != 0 || st.st_size < (off_t)sizeof(shm_header_t))
        return shoal_error_set(SHOAL_ERR_CORRUPT, "daemon sent no usable management segment");
    m->mgmt_size = (uint64_t)st.st_size;
    void *p = mmap(NULL, m->mgmt_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[0], 0);
    if (p == MAP_FAILED)
        return shoal_error_set(SHOAL_ERR_SYSTEM, "mmap of the management segment (%llu bytes): %s",
                               (unsigned long long)m->mgmt_size, strerror(errno));
    m->mgmt = p;
    m->shared_hdr = p;
    shoal_result_t vr = shm_validate(m, layout);
    if (vr != SHOAL_OK) return vr;
    if (m->hdr->pool_count + 1 != nfds)
        return shoal_error_set(SHOAL_ERR_CORRUPT, "daemon sent %zu segments for %u pools", nfds,
                               m->hdr->pool_count);
    for (uint32_t i = 0; i < m->hdr->pool_count; i++) {
        const shm_pool_geom_t *pl = shm_pool_geom(m, i);
        if (fstat(fds[1 + i], &st) != 0 || (uint64_t)st.st_size < pl->segment_size)
            return shoal_error_set(SHOAL_ERR_CORRUPT, "pool #%u segment is smaller than its layout", i);
        /* only touched pages cost memory, so mapping huge pools is cheap */
        void *q = mmap(NULL, pl->segment_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[1 + i], 0);
        if (q == MAP_FAILED)
            return shoal_error_set(SHOAL_ERR_SYSTEM, "mmap of pool #%u (%llu bytes): %s", i,
                                   (unsigned long long)pl->segment_size, strerror(errno));
        m->payload[i] = q;
        m->payload_size[i] = pl->segment_size;
    }
    return SHOAL_OK;
}

#define RT_REPLY_TIMEOUT_MS 10000 /* a daemon answers in microseconds; this is a stall */

/* A request without its answer leaves the connection out of step (the late
 * answer would pair with the next request): leave the domain for good. The
 * monitor thread sees the shutdown and wakes every waiter; the daemon sees
 * the close and reclaims what this process held. Called under rt->lock. */
static void give_up_connection(shoal_runtime_t *rt) {
    atomic_store(&rt->map.dead, 1);
    shutdown(rt->sock, SHUT_RDWR);
}

static shoal_result_t roundtrip(shoal_runtime_t *rt, proto_msg_t *msg, int *fds, size_t max_fds,
                                size_t *nfds) {
    if (atomic_load(&rt->map.dead))
        return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                               "the daemon of domain '%s' is gone; destroy this runtime and create "
                               "a new one once shoald runs again",
                               rt->domain);
    msg->magic = PROTO_MAGIC;
    if (proto_send(rt->sock, msg, NULL, 0) != 0) {
        int e = errno;
        give_up_connection(rt);
        return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                               "lost the daemon of domain '%s' (%s): %s; restart shoald --domain %s",
                               rt->domain, rt->sock_path, strerror(e), rt->domain);
    }
    size_t dummy, *got = nfds ? nfds : &dummy;
    int r = proto_recv(rt->sock, msg, fds, max_fds, got);
    if (r != 1) {
        int e = errno;
        give_up_connection(rt);
        if (r < 0 && (e == EAGAIN || e == EWOULDBLOCK))
            return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                                   "the daemon of domain '%s' (%s) did not answer within %d ms "
                                   "(stopped or overloaded); this runtime has left the domain, "
                                   "since a late answer would be taken for the next request's: "
                                   "destroy it and create a new one",
                                   rt->domain, rt->sock_path, RT_REPLY_TIMEOUT_MS);
        return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                               "no answer from the daemon of domain '%s' (%s): %s", rt->domain,
                               rt->sock_path, r == 0 ? "it closed the connection" : strerror(e));
    }
    if (msg->result != SHOAL_OK) {
        /* a refusal hands over nothing: close whatever came with it */
        for (size_t i = 0; i < *got; i++) close(fds[i]);
        *got = 0;
        shoal_error_set_text((shoal_result_t)msg->result, msg->text);
        return (shoal_result_t)msg->result;
    }
    return SHOAL_OK;
}

/* The daemon's death is never silent: the moment its end of our socket
 * closes, every operation of this runtime fails from then on, and every
 * wait wakes to say so. */
static void mark_dead(shoal_runtime_t *rt) {
    atomic_store(&rt->map.dead, 1);
    pthread_mutex_lock(&rt->lock);
    for (port_base_t *b = rt->ports; b; b = b->next) {
        atomic_fetch_add(&b->p->futex_seq, 1);
        futex_wake(&b->p->futex_seq, 1 << 30);
    }
    for (int i = 0; i < SHM_WAITSETS_MAX; i++)
        if (rt->waitsets[i]) waitset_wake_all(rt->waitsets[i]);
    pthread_mutex_unlock(&rt->lock);
}

bool rt_daemon_gone(shoal_runtime_t *rt) {
    if (atomic_load(&rt->map.dead)) return true;
    struct pollfd pf = {.fd = rt->sock, .events = POLLRDHUP};
    if (poll(&pf, 1, 0) == 1 && (pf.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL))) {
        mark_dead(rt);
        return true;
    }
    return false;
}

static void *monitor_main(void *arg) {
    shoal_runtime_t *rt = arg;
    int done_fd = rt->done_fd;
    /* running: create may return (see there) */
    uint64_t one = 1;
    ssize_t wr = write(done_fd, &one, sizeof one);
    (void)wr;
    /* POLLRDHUP only: replies to other threads' requests stay unread */
    struct pollfd pf[2] = {{.fd = rt->sock, .events = POLLRDHUP}, {.fd = rt->stop_fd, .events = POLLIN}};
    for (;;) {
        int n = poll(pf, 2, -1);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 || (pf[1].revents & POLLIN)) break;
        if (pf[0].revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL)) {
            mark_dead(rt);
            /* stay until destroy, so it can always wait for us the same way */
            pf[0].fd = -1;
        }
    }
    /* the last touch: after this write, destroy may free rt */
    ssize_t w = write(done_fd, &one, sizeof one);
    (void)w;
    return NULL;
}

/* With connect_timeout_ns 0 (one attempt) or FOREVER (retry until the
 * daemon is there), an attempt that reached a daemon still ends after this:
 * a daemon that accepts or answers nothing must not hang the caller. */
#define CONNECT_BOUND_NS 10000000000ll

static long long ms_of(int64_t ns) { return (long long)(ns / 1000000); }

/* EACCES on connect: finds the directory we cannot enter (or the socket we
 * may not write) and says whose it is, never "start shoald". */
static shoal_result_t unreachable_error(const shoal_runtime_t *rt, const char *dir) {
    char p[sizeof rt->sock_path];
    snprintf(p, sizeof p, "%s", rt->sock_path);
    for (char *s = p + 1;; s++) {
        if (*s != '/' && *s != '\0') continue;
        char c = *s;
        *s = '\0';
        struct stat st;
        if (stat(p, &st) != 0) break;
        int dir_part = S_ISDIR(st.st_mode);
        if (faccessat(AT_FDCWD, p, dir_part ? X_OK : W_OK, AT_EACCESS) != 0) {
            if (dir_part)
                return shoal_error_set(
                    SHOAL_ERR_PERMISSION,
                    "the runtime directory %s of domain '%s' is not reachable for uid %d: %s "
                    "belongs to uid %d, group %d, and has mode %04o; run as uid %d or root, or "
                    "as a member of group %d if the shoald's [access] socket_group grants it, "
                    "or run a shoald of your own: shoald --domain %s --runtime-dir DIR (a "
                    "directory of yours), and point this process at DIR (SHOAL_RUNTIME_DIR or "
                    "the runtime_dir option)",
                    dir, rt->domain, (int)geteuid(), p, (int)st.st_uid, (int)st.st_gid,
                    (unsigned)(st.st_mode & 07777), (int)st.st_uid, (int)st.st_gid, rt->domain);
            return shoal_error_set(
                SHOAL_ERR_PERMISSION,
                "the socket %s of domain '%s' is not writable for uid %d: it belongs to uid %d, "
                "group %d, and has mode %04o (a shoald serves only its own uid and root unless "
                "its config grants others in [access]; with socket_group only that group's "
                "members reach the socket); run as uid %d or root, or as a member of group %d, "
                "or run a shoald of your own: shoald --domain %s --runtime-dir DIR (a directory "
                "of yours), and point this process at DIR (SHOAL_RUNTIME_DIR or the runtime_dir "
                "option)",
                p, rt->domain, (int)geteuid(), (int)st.st_uid, (int)st.st_gid,
                (unsigned)(st.st_mode & 07777), (int)st.st_uid, (int)st.st_gid, rt->domain);
        }
        *s = c;
        if (!c) break;
    }
    return shoal_error_set(SHOAL_ERR_PERMISSION,
                           "cannot connect to %s of domain '%s' as uid %d: permission denied; "
                           "run as the daemon's uid or root, or run a shoald of your own with "
                           "--runtime-dir",
                           rt->sock_path, rt->domain, (int)geteuid());
}

/* HELLO and WELCOME on the non-blocking socket, waiting until `deadline`.
 * The reply is read even when the send failed: a daemon that refuses us
 * may have answered and closed already. */
static shoal_result_t hello_roundtrip(shoal_runtime_t *rt, proto_msg_t *msg, int *fds,
                                      size_t max_fds, size_t *nfds, uint64_t deadline,
                                      int64_t timeout_ns) {
    msg->magic = PROTO_MAGIC;
    int send_err = proto_send(rt->sock, msg, NULL, 0) != 0 ? errno : 0;
    int resets = 0;
    for (;;) {
        int r = proto_recv(rt->sock, msg, fds, max_fds, nfds);
        if (r == 1) break;
        int e = r == 0 ? 0 : errno;
        /* a reset is reported before the data queued ahead of it */
        if ((e == ECONNRESET && resets++ < 2) || e == EINTR) continue;
        if (e == EAGAIN && !send_err) {
            uint64_t now = shoal_now_ns();
            if (now >= deadline) {
                if (timeout_ns > 0)
                    return shoal_error_set(
                        SHOAL_ERR_TIMEOUT,
                        "the shoald of domain '%s' (%s) took the connection but sent no reply "
                        "within connect_timeout_ns (%lld ms): it is stopped or overloaded (see "
                        "its log); raise connect_timeout_ns or see to the daemon",
                        rt->domain, rt->sock_path, ms_of(timeout_ns));
                return shoal_error_set(
                    SHOAL_ERR_TIMEOUT,
                    "the shoald of domain '%s' (%s) took the connection but sent no reply within "
                    "%lld ms (the bound when connect_timeout_ns is 0 or forever): it is stopped "
                    "or overloaded (see its log); set connect_timeout_ns or see to the daemon",
                    rt->domain, rt->sock_path, ms_of(CONNECT_BOUND_NS));
            }
            struct pollfd p = {.fd = rt->sock, .events = POLLIN};
            poll(&p, 1, (int)((deadline - now + 999999) / 1000000));
            continue;
        }
        if (send_err)
            return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                                   "the shoald of domain '%s' (%s) closed the connection before "
                                   "it could register (%s) and gave no reason; see its log",
                                   rt->domain, rt->sock_path, strerror(send_err));
        return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                               "no answer from the daemon of domain '%s' (%s): %s; see its log",
                               rt->domain, rt->sock_path,
                               e ? strerror(e) : "it closed the connection");
    }
    if (msg->result != SHOAL_OK) {
        for (size_t i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        shoal_error_set_text((shoal_result_t)msg->result, msg->text);
        return (shoal_result_t)msg->result;
    }
    return SHOAL_OK;
}

SHOAL_API shoal_result_t shoal_runtime_create(shoal_runtime_t **out, const char *name,
                                              const shoal_runtime_options_t *opts) {
    shoal_error_clear();
    if (!out) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (!name || !*name || strlen(name) >= SHM_PROC_NAME_MAX)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "runtime name must be 1..%d characters", SHM_PROC_NAME_MAX - 1);
    shoal_runtime_options_t o = SHOAL_RUNTIME_OPTIONS_INIT;
    if (opts) {
        shoal_result_t vrc = abi_read(&rt_opts_abi, &o, opts);
        if (vrc != SHOAL_OK) return vrc;
    }
#ifdef SHOAL_ABI_TEST_V2
    if (o.test_v2 == 0xBAD) /* stays 0 unless the caller is v2 */
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "test_v2 is 0xBAD");
#endif
    const char *domain = o.domain ? o.domain : getenv("SHOAL_DOMAIN");
    if (!domain || !*domain) domain = "default";
    if (!proto_valid_domain(domain))
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "invalid domain '%.80s' (1..63 of A-Z a-z 0-9 _ - .)", domain);
    const char *dir = o.runtime_dir ? o.runtime_dir : getenv("SHOAL_RUNTIME_DIR");
    char dirbuf[256];
    if (!dir || !*dir) {
        snprintf(dirbuf, sizeof dirbuf, "/tmp/shoal-%d", (int)getuid());
        dir = dirbuf;
    }
    shoal_runtime_t *rt = calloc(1, sizeof *rt);
    if (!rt) return shoal_error_set(SHOAL_ERR_NO_MEMORY, "out of memory for the runtime");
    rt->sock = -1;
    rt->stop_fd = rt->done_fd = -1;
    pthread_mutex_init(&rt->lock, NULL);
    snprintf(rt->domain, sizeof rt->domain, "%s", domain);
    snprintf(rt->name, sizeof rt->name, "%s", name);
    snprintf(rt->sock_path, sizeof rt->sock_path, "%.255s/%.63s.sock", dir, domain);

    struct sockaddr_un a = {.sun_family = AF_UNIX};
    shoal_result_t rc;
    if (strlen(rt->sock_path) >= sizeof a.sun_path) {
        rc = shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "socket path %s is too long (max %zu)",
                             rt->sock_path, sizeof a.sun_path - 1);
        goto fail;
    }
    strcpy(a.sun_path, rt->sock_path);
    /* connect_timeout_ns bounds everything up to the welcome: waiting for
     * the daemon to appear, for room in its backlog, and for its answer */
    int64_t tmo = o.connect_timeout_ns;
    uint64_t start = shoal_now_ns();
    uint64_t deadline = tmo > 0 ? start + (uint64_t)tmo
                      : tmo == 0 ? start + (uint64_t)CONNECT_BOUND_NS : UINT64_MAX;
    int nap_ms = 1;
    for (;;) {
        rt->sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        if (rt->sock < 0) {
            rc = shoal_error_set(SHOAL_ERR_SYSTEM,
                                 "socket() for the connection to shoald: %s (this process may "
                                 "be out of file descriptors: see ulimit -n)",
                                 strerror(errno));
            goto fail;
        }
        /* non-blocking: a full backlog fails with EAGAIN instead of blocking */
        if (connect(rt->sock, (struct sockaddr *)&a, sizeof a) == 0) break;
        int e = errno;
        close(rt->sock);
        rt->sock = -1;
        if (e == EINTR) continue;
        if (e == EACCES || e == EPERM) {
            rc = unreachable_error(rt, dir);
            goto fail;
        }
        /* no daemon (yet): retried only with a timeout; a full backlog: a
         * daemon is there, the attempt waits for room */
        int absent = e == ENOENT || e == ECONNREFUSED;
        int retry = e == EAGAIN || (absent && tmo != 0);
        uint64_t now = shoal_now_ns();
        if (retry && now < deadline) {
            uint64_t left_ms = (deadline - now + 999999) / 1000000;
            struct timespec ts = {0, (long)(left_ms < (uint64_t)nap_ms ? left_ms : (uint64_t)nap_ms) * 1000000L};
            nanosleep(&ts, NULL);
            if (nap_ms < 10) nap_ms *= 2;
            continue;
        }
        if (absent) {
            char more[300] = "";
            if (o.runtime_dir || getenv("SHOAL_RUNTIME_DIR"))
                snprintf(more, sizeof more, " --runtime-dir %.255s", dir);
            rc = shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                                 "no shoald for domain '%s': cannot connect to %s (%s); start "
                                 "it with: shoald --domain %s%s",
                                 rt->domain, rt->sock_path, strerror(e), rt->domain, more);
        } else if (e == EAGAIN) {
            rc = shoal_error_set(
                SHOAL_ERR_TIMEOUT,
                "the shoald of domain '%s' (%s) did not take the connection within %lld ms "
                "(%s): its listen backlog is full, it is stopped, overloaded or out of file "
                "descriptors (see its log); %s",
                rt->domain, rt->sock_path, ms_of(tmo > 0 ? tmo : CONNECT_BOUND_NS),
                tmo > 0 ? "connect_timeout_ns" : "the bound when connect_timeout_ns is 0",
                tmo > 0 ? "raise connect_timeout_ns or see to the daemon" : "see to the daemon");
        } else {
            rc = shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                                 "cannot connect to the shoald of domain '%s' at %s: %s",
                                 rt->domain, rt->sock_path, strerror(e));
        }
        goto fail;
    }
    proto_msg_t msg;
    proto_msg_init(&msg, PROTO_HELLO);
    msg.abi = SHOAL_ABI_VERSION;
    msg.pid = getpid();
    snprintf(msg.name, sizeof msg.name, "%s", name);
    int fds[PROTO_MAX_FDS];
    size_t nfds = 0;
    uint64_t welcome_by = tmo > 0 ? deadline : shoal_now_ns() + (uint64_t)CONNECT_BOUND_NS;
    rc = hello_roundtrip(rt, &msg, fds, PROTO_MAX_FDS, &nfds, welcome_by, tmo);
    if (rc != SHOAL_OK) goto fail;
    /* later round trips block, bounded as before */
    fcntl(rt->sock, F_SETFL, fcntl(rt->sock, F_GETFL) & ~O_NONBLOCK);
    struct timeval tv = {.tv_sec = RT_REPLY_TIMEOUT_MS / 1000, .tv_usec = 0};
    setsockopt(rt->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    /* a stalled daemon's full receive queue must not block a request forever */
    setsockopt(rt->sock, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* the layout comes from the daemon, never from the segment's header */
    shm_layout_msg_t *layout = malloc(sizeof *layout);
    if (!layout) {
        rc = shoal_error_set(SHOAL_ERR_NO_MEMORY, "out of memory for the segment layout");
    } else if (proto_recv_blob(rt->sock, layout, sizeof *layout) != 0) {
        rc = shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                             "the daemon of domain '%s' (%s) sent no segment layout: %s",
                             rt->domain, rt->sock_path, strerror(errno));
    } else {
        rc = map_segments(rt, layout, fds, nfds);
    }
    free(layout);
    for (size_t i = 0; i < nfds; i++) close(fds[i]); /* the mappings keep the memory */
    if (rc != SHOAL_OK) goto fail;
    rt->proc_slot = msg.slot;
    rt->proc_gen = msg.gen;
    if (!shm_process(&rt->map, rt->proc_slot)) {
        rc = shoal_error_set(SHOAL_ERR_CORRUPT, "daemon gave an out-of-range process slot");
        goto fail;
    }
    /* the daemon's reference audits need our stores ordered by its barrier */
    if (sweep_register_process() != 0) {
        rc = shoal_error_set(SHOAL_ERR_SYSTEM,
                             "membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) failed: %s; "
                             "shoal needs Linux 4.16 or later",
                             strerror(errno));
        goto fail;
    }
    rt->stop_fd = eventfd(0, EFD_CLOEXEC);
    rt->done_fd = eventfd(0, EFD_CLOEXEC);
    pthread_attr_t attr;
    pthread_t th;
    int perr = rt->stop_fd < 0 || rt->done_fd < 0 ? errno : pthread_attr_init(&attr);
    if (!perr) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        /* the monitor takes no signals, so that a process-directed one (Ctrl-C)
         * interrupts the application's own waits */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        perr = pthread_create(&th, &attr, monitor_main, rt);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        pthread_attr_destroy(&attr);
    }
    if (perr) {
        rc = shoal_error_set(SHOAL_ERR_SYSTEM, "cannot start the daemon monitor thread: %s",
                             strerror(perr));
        goto fail;
    }
    rt->monitor_started = true;
    /* Wait until the thread runs: a caller that forks right after create
     * must not fork while the new thread is still being set up (holding
     * allocator locks the child would inherit taken, as under ASan). */
    uint64_t started;
    while (read(rt->done_fd, &started, sizeof started) < 0 && errno == EINTR) {
    }
    *out = rt;
    return SHOAL_OK;
fail:
    if (rt->stop_fd >= 0) close(rt->stop_fd);
    if (rt->done_fd >= 0) close(rt->done_fd);
    if (rt->sock >= 0) close(rt->sock);
    unmap_all(&rt->map);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
    return rc;
}

SHOAL_API void shoal_runtime_destroy(shoal_runtime_t *rt) {
    if (!rt) return;
    if (rt->monitor_started) {
        uint64_t one = 1, v;
        ssize_t w = write(rt->stop_fd, &one, sizeof one);
        (void)w;
        while (read(rt->done_fd, &v, sizeof v) < 0 && errno == EINTR) {
        }
    }
    if (rt->stop_fd >= 0) close(rt->stop_fd);
    if (rt->done_fd >= 0) close(rt->done_fd);
    /* waitsets first: their fd threads read the mappings */
    for (int i = 0; i < SHM_WAITSETS_MAX; i++) {
        pthread_mutex_lock(&rt->lock);
        shoal_waitset_t *ws = rt->waitsets[i];
        pthread_mutex_unlock(&rt->lock);
        if (ws) shoal_waitset_destroy(ws);
    }
    /* close ports one by one so their chunks are back before we return */
    for (;;) {
        pthread_mutex_lock(&rt->lock);
        port_base_t *b = rt->ports;
        pthread_mutex_unlock(&rt->lock);
        if (!b) break;
        rt_port_close(b);
        free(b);
    }
    close(rt->sock);
    unmap_all(&rt->map);
    pthread_mutex_destroy(&rt->lock);
    free(rt);
}

SHOAL_API const char *shoal_runtime_domain(const shoal_runtime_t *rt) { return rt ? rt->domain : ""; }

shoal_result_t rt_port_open(shoal_runtime_t *rt, port_base_t *b, uint32_t kind, const char *name,
                            uint32_t capacity, uint32_t policy, uint32_t history,
                            int64_t timeout_ns) {
    shm_map_t *m = &rt->map;
    if (!name || !*name || strlen(name) >= SHM_NAME_MAX)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "%s name must be 1..%d characters",
                               kind <= SHOAL_PORT_SUBSCRIBER ? "topic" : "service", SHM_NAME_MAX - 1);
    uint32_t n = m->hdr->chunks_per_port;
    b->chunks = calloc(n, sizeof *b->chunks);
    b->free_stack = calloc(n, sizeof *b->free_stack);
    if (!b->chunks || !b->free_stack) {
        free(b->chunks);
        free(b->free_stack);
        return shoal_error_set(SHOAL_ERR_NO_MEMORY, "out of memory for a port");
    }
    for (uint32_t i = 0; i < n; i++) b->free_stack[i] = n - 1 - i;
    b->free_top = n;
    b->rt = rt;
    b->kind = kind;
    b->policy = policy;
    b->history = kind == SHOAL_PORT_PUBLISHER ? history : 0;
    b->send_timeout_ns = timeout_ns;
    snprintf(b->name, sizeof b->name, "%s", name);
    proto_msg_t msg;
    proto_msg_init(&msg, PROTO_PORT_CREATE);
    msg.kind = kind;
    msg.capacity = capacity;
    msg.policy = policy;
    msg.history = history;
    msg.timeout_ns = timeout_ns;
    snprintf(msg.name, sizeof msg.name, "%s", name);
    pthread_mutex_lock(&rt->lock);
    shoal_result_t rc = roundtrip(rt, &msg, NULL, 0, NULL);
    shm_port_t *p = rc == SHOAL_OK ? shm_port(m, msg.slot) : NULL;
    if (rc == SHOAL_OK && (!p || shm_slot_kind(m, msg.slot) != kind || !shm_service(m, msg.service)))
        rc = shoal_error_set(SHOAL_ERR_CORRUPT, "daemon gave an out-of-range port slot or service");
    if (rc == SHOAL_OK) {
        b->p = p;
        b->slot = msg.slot;
        b->gen = msg.gen;
        b->service = msg.service;
        b->next = rt->ports;
        b->prev = NULL;
        if (rt->ports) rt->ports->prev = b;
        rt->ports = b;
    }
    pthread_mutex_unlock(&rt->lock);
    if (rc != SHOAL_OK) {
        free(b->chunks);
        free(b->free_stack);
        b->chunks = NULL;
        b->free_stack = NULL;
    }
    return rc;
}

void rt_port_close(port_base_t *b) {
    shoal_runtime_t *rt = b->rt;
    if (b->waitset) waitset_forget_port(b);
    pthread_mutex_lock(&rt->lock);
    if (b->prev) b->prev->next = b->next;
    else rt->ports = b->next;
    if (b->next) b->next->prev = b->prev;
    proto_msg_t msg;
    proto_msg_init(&msg, PROTO_PORT_DESTROY);
    /* give our parked spares back ourselves (the daemon would too), as an
     * operation: an audit must not see them half-way to the pool */
    if (b->p && !atomic_load(&rt->map.dead)) {
        op_begin(&rt->map, b->p);
        spare_return_all(&rt->map, b->p);
        op_end(b->p);
    }
    msg.slot = b->slot;
    msg.gen = b->gen;
    /* the daemon returns every chunk the port still holds */
    (void)roundtrip(rt, &msg, NULL, 0, NULL);
    pthread_mutex_unlock(&rt->lock);
    free(b->chunks);
    free(b->free_stack);
    b->chunks = NULL;
    b->free_stack = NULL;
}

/* ---- introspection ---------------------------------------------------------- */

#define INFO_ABI(name, T, last, VER, INIT)                                                \
    static const size_t name##_extent[] = ABI_EXTENTS(T, last);                           \
    static const abi_struct_t name##_abi = {                                              \
        #T, "set info.version = " #VER " before the call (or initialise it with " #INIT ")", \
        VER, name##_extent}
INFO_ABI(pool_info, shoal_pool_info_t, alloc_failures, SHOAL_POOL_INFO_VERSION, SHOAL_POOL_INFO_INIT);
INFO_ABI(port_info, shoal_port_info_t, process, SHOAL_PORT_INFO_VERSION, SHOAL_PORT_INFO_INIT);
INFO_ABI(domain_info, shoal_domain_info_t, domain, SHOAL_DOMAIN_INFO_VERSION, SHOAL_DOMAIN_INFO_INIT);
INFO_ABI(process_info, shoal_process_info_t, name, SHOAL_PROCESS_INFO_VERSION, SHOAL_PROCESS_INFO_INIT);

/* Checks the caller's info version before anything is looked up, so a bad
 * version is reported as such even for a free slot. */
static shoal_result_t info_start(const shoal_runtime_t *rt, const void *info,
                                 const abi_struct_t *abi) {
    if (!rt || !info) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "runtime or info is NULL");
    return abi_check(abi, abi_struct_version(info));
}

SHOAL_API uint32_t shoal_runtime_pool_count(const shoal_runtime_t *rt) {
    return rt ? rt->map.hdr->pool_count : 0;
}

SHOAL_API shoal_result_t shoal_runtime_pool_info(const shoal_runtime_t *rt, uint32_t index,
                                                 shoal_pool_info_t *info) {
    shoal_result_t rc = info_start(rt, info, &pool_info_abi);
    if (rc != SHOAL_OK) return rc;
    shm_pool_t *p = shm_pool(&rt->map, index);
    const shm_pool_geom_t *g = shm_pool_geom(&rt->map, index);
    if (!p || !g)
        return shoal_error_set(SHOAL_ERR_NOT_FOUND, "pool index %u out of range (%u pools)", index,
                               rt->map.hdr->pool_count);
    shoal_pool_info_t out;
    memset(&out, 0, sizeof out);
    out.chunk_size = g->chunk_size;
    out.chunk_count = g->chunk_count;
    /* spares parked in ports are free for any loan: not in use */
    uint32_t used = atomic_load(&p->in_use), spares = spare_count(&rt->map, index);
    out.in_use = used > spares ? used - spares : 0;
    out.high_water = atomic_load(&p->high_water);
    out.alloc_failures = atomic_load(&p->alloc_failures);
#ifdef SHOAL_ABI_TEST_V2
    out.test_v2 = 0x5eed;
#endif
    return abi_write(&pool_info_abi, info, &out, abi_struct_version(info));
}

SHOAL_API uint32_t shoal_runtime_port_slots(const shoal_runtime_t *rt) {
    return rt ? rt->map.hdr->port_slots : 0;
}

SHOAL_API shoal_result_t shoal_runtime_port_info(const shoal_runtime_t *rt, uint32_t slot,
                                                 shoal_port_info_t *info) {
    shoal_result_t rc = info_start(rt, info, &port_info_abi);
    if (rc != SHOAL_OK) return rc;
    const shm_map_t *m = &rt->map;
    shm_port_t *p = shm_port(m, slot);
    if (!p || atomic_load(&p->state) != PORT_ACTIVE)
        return shoal_error_set_literal(SHOAL_ERR_NOT_FOUND, "free or out-of-range port slot");
    shoal_port_info_t out;
    memset(&out, 0, sizeof out);
    uint32_t kind = shm_slot_kind(m, slot);
    out.kind = (shoal_port_kind_t)kind;
    out.id = slot - m->hdr->kind_base[kind];
    out.pid = p->pid;
    out.held = atomic_load(&p->held);
    out.queued = queue_depth(p);
    out.queue_capacity = p->queue_capacity;
    out.sent = atomic_load(&p->sent);
    out.received = atomic_load(&p->received);
    out.dropped = atomic_load(&p->dropped);
    out.stale = atomic_load(&p->stale);
    shm_service_t *s = shm_service(m, p->service);
    if (s) memcpy(out.service, s->name, sizeof out.service - 1);
    shm_process_t *pr = shm_process(m, p->process);
    if (pr) memcpy(out.process, pr->name, sizeof out.process - 1);
#ifdef SHOAL_ABI_TEST_V2
    out.test_v2 = 0x5eed;
#endif
    return abi_write(&port_info_abi, info, &out, abi_struct_version(info));
}

SHOAL_API shoal_result_t shoal_runtime_domain_info(const shoal_runtime_t *rt,
                                                   shoal_domain_info_t *info) {
    shoal_result_t rc = info_start(rt, info, &domain_info_abi);
    if (rc != SHOAL_OK) return rc;
    const shm_header_t *h = rt->map.shared_hdr; /* text fields only from here */
    shoal_domain_info_t out;
    memset(&out, 0, sizeof out);
    out.daemon_pid = (int32_t)atomic_load(&h->daemon_pid);
    h = rt->map.hdr; /* limits from the validated copy */
    out.processes = h->process_limit;
    out.publishers = h->kind_limit[SHOAL_PORT_PUBLISHER];
    out.subscribers = h->kind_limit[SHOAL_PORT_SUBSCRIBER];
    out.clients = h->kind_limit[SHOAL_PORT_CLIENT];
    out.servers = h->kind_limit[SHOAL_PORT_SERVER];
    out.services = h->service_limit;
    out.chunks_per_port = h->chunks_per_port;
    out.queue_capacity = h->queue_capacity;
    out.history = h->history_max;
    out.waitsets_per_process = h->waitsets_per_process;
    out.management_bytes = h->mgmt_size;
    memcpy(out.config_source, h->config_source, sizeof out.config_source - 1);
    memcpy(out.domain, h->domain, sizeof out.domain - 1);
#ifdef SHOAL_ABI_TEST_V2
    out.test_v2 = 0x5eed;
#endif
    return abi_write(&domain_info_abi, info, &out, abi_struct_version(info));
}

SHOAL_API uint32_t shoal_runtime_process_slots(const shoal_runtime_t *rt) {
    return rt ? rt->map.hdr->process_limit : 0;
}

SHOAL_API shoal_result_t shoal_runtime_process_info(const shoal_runtime_t *rt, uint32_t slot,
                                                    shoal_process_info_t *info) {
    shoal_result_t rc = info_start(rt, info, &process_info_abi);
    if (rc != SHOAL_OK) return rc;
    shm_process_t *p = shm_process(&rt->map, slot);
    if (!p || atomic_load(&p->state) != PROC_ACTIVE)
        return shoal_error_set_literal(SHOAL_ERR_NOT_FOUND, "free or out-of-range process slot");
    shoal_process_info_t out;
    memset(&out, 0, sizeof out);
    out.pid = p->pid;
    out.uid = p->uid;
    memcpy(out.name, p->name, sizeof out.name - 1);
#ifdef SHOAL_ABI_TEST_V2
    out.test_v2 = 0x5eed;
#endif
    return abi_write(&process_info_abi, info, &out, abi_struct_version(info));
}
