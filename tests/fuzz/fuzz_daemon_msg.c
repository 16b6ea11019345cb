/* libFuzzer harness: the daemon's message handler (capi/src/daemon/daemon.c,
 * registry.c, reclaim.c).
 *
 * One long-lived daemon per configuration (real memfd segments, a real
 * listening socket in the abstract namespace, its real epoll set) is driven
 * through daemon/daemon_fuzz.h: the harness connects up to four clients,
 * sends what the input says, lets the daemon handle its events exactly as
 * its loop does (accept_conn, conn_event -> handle_hello, handle_port_create,
 * handle_port_destroy, conn_close -> process_gone -> registry_port_close ...), and
 * reads every reply. The clients also act on shared memory as the library
 * does (loan, send, take, release, keep history), so closing a port or a
 * connection has chunks to give back; a record can also scribble on shared
 * memory, as a hostile peer would.
 *
 * Input: byte 0 picks the configuration, then records, each an op byte
 * (bits 0-1: the connection, bits 2-7: the action) and its arguments; see
 * enum action below and gen_seeds.c, which writes the seeds.
 *
 * Checked after every record: each reply is the one the request calls for
 * (a WELCOME only to a valid HELLO, with the pool count's fds and a layout
 * that passes shm_validate; a destroy succeeds exactly for a live port of
 * the sender with its generation; a create reply names a slot of the right
 * kind; the daemon closes a connection only after a malformed packet), the
 * ports the clients believe they own are exactly the daemon's active slots,
 * the daemon's own bookkeeping is consistent (daemon_fuzz_check), and
 * unless the input scribbled: every chunk's reference count equals the
 * references found in held tables, queues, spares and history rings, and
 * the free lists hold exactly the rest. After the input: every connection
 * closes (a registered bystander stays, so nothing is rebuilt behind the
 * check) and every port, service and chunk must be back; then the
 * bystander leaves too, and no file descriptor is left open. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/pool.h"
#include "core/port.h"
#include "core/proto.h"
#include "core/queue.h"
#include "core/shm.h"
#include "core/spare.h"
#include "daemon/config.h"
#include "daemon/daemon_fuzz.h"
#include "daemon/log.h"
#include "fuzz_common.h"

#define CHECK(cond, ...) FUZZ_CHECK(cond, __VA_ARGS__)

/* ---- configurations: small, so every limit is reachable ------------------- */

static const char *const config_text[] = {
    "[limits]\nprocesses = 3\npublishers = 3\nsubscribers = 3\nclients = 2\nservers = 2\n"
    "services = 3\nchunks_per_port = 3\nqueue_capacity = 3\nhistory = 2\n"
    "waitsets_per_process = 2\n[pools]\n64 = 6\n1K = 3\n",
    "[limits]\nprocesses = 5\npublishers = 2\nsubscribers = 4\nclients = 3\nservers = 3\n"
    "services = 2\nchunks_per_port = 2\nqueue_capacity = 4\nhistory = 4\n"
    "waitsets_per_process = 1\n[pools]\n32 = 2\n4K = 1\n64K = 3\n",
};
#define NCONFIG (sizeof config_text / sizeof config_text[0])

static shoal_config_t configs[NCONFIG];
static daemon_fuzz_t *daemons[NCONFIG];

/* ---- the clients' view ------------------------------------------------------- */

#define NCONN 4
#define MAX_PORTS 64
#define MAX_PENDING 32

enum expect_what { E_MSG, E_CLOSE };

typedef struct expect {
    int what;
    proto_msg_t msg; /* as the daemon receives it */
} expect_t;

typedef struct client {
    int fd; /* -1: not connected */
    bool registered;
    uint32_t proc;
    int pending_fds; /* attached to the next packet */
    expect_t q[MAX_PENDING];
    unsigned q_head, q_count;
} client_t;

typedef struct tport {
    bool alive;
    int conn;
    uint32_t slot, gen, kind, service, policy, history;
    uint32_t hist_head, hist_count; /* the owner's copies, as in the library */
} tport_t;

static struct {
    daemon_fuzz_t *f;
    shm_map_t *m;
    const shoal_config_t *cfg;
    client_t c[NCONN];
    int bystander;
    tport_t ports[MAX_PORTS];
    unsigned nports;
    bool scribbled;
    bool deferred;
    uint32_t *refs;   /* scratch, chunk_total */
    uint8_t *freem;   /* scratch, chunk_total */
} S;

static int null_fd = -1;
static int fd_low = -1; /* descriptors open below 256 between inputs */

/* ---- names ------------------------------------------------------------------------ */

static void pick_name(fuzz_in_t *in, char *out, size_t field, size_t max, bool process) {
    static const char *const topics[] = {"a", "b", "c/d", "", "tab\there", "del\x7f"};
    static const char *const procs[] = {"p0", "p1", "", "bell\a"};
    uint8_t sel = in_u8(in);
    memset(out, 0, field);
    if (sel < 0x80) {
        unsigned n = process ? sizeof procs / sizeof procs[0] : sizeof topics / sizeof topics[0];
        unsigned i = sel % (n + 2);
        if (i < n) snprintf(out, field, "%s", process ? procs[i] : topics[i]);
        else memset(out, 'n', i == n ? max - 1 : max); /* the longest valid, one too long */
    } else {
        size_t len = sel == 0xff ? field : (size_t)(sel & 0x7f);
        if (len > field) len = field;
        in_bytes(in, out, len); /* anything, unterminated when it fills the field */
    }
}

static bool valid_name(const char *s, size_t max) {
    size_t n = strnlen(s, max);
    if (n == 0 || n >= max) return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) return false;
    return true;
}

/* ---- talking to the daemon ---------------------------------------------------------- */

static void push_expect(client_t *c, int what, const proto_msg_t *m) {
    CHECK(c->q_count < MAX_PENDING, "expectation queue overflow");
    expect_t *e = &c->q[(c->q_head + c->q_count++) % MAX_PENDING];
    e->what = what;
    if (m) {
        e->msg = *m;
        e->msg.name[sizeof e->msg.name - 1] = '\0'; /* what proto_recv does */
        e->msg.text[sizeof e->msg.text - 1] = '\0';
    }
}

static void forget_conn_ports(int conn) {
    for (unsigned i = 0; i < S.nports; i++)
        if (S.ports[i].conn == conn) S.ports[i].alive = false;
}

static void conn_reset(int i) {
    client_t *c = &S.c[i];
    if (c->fd >= 0) close(c->fd);
    c->fd = -1;
    c->registered = false;
    c->pending_fds = 0;
    c->q_head = c->q_count = 0;
    forget_conn_ports(i);
}

static void drain_all(void);

static void sync_daemon(void) {
    daemon_fuzz_pump(S.f);
    drain_all();
}

static client_t *conn(int i) {
    client_t *c = &S.c[i];
    if (c->fd < 0) {
        c->fd = daemon_fuzz_connect(S.f);
        CHECK(c->fd >= 0, "connect: %s", strerror(errno));
    }
    /* replies must not pile up past what a socket buffer holds */
    if (c->q_count >= MAX_PENDING - 1) sync_daemon();
    return &S.c[i];
}

/* Sends `len` bytes as one packet with the connection's pending fds. */
static bool send_packet(client_t *c, const void *buf, size_t len) {
    int fds[8];
    int n = c->pending_fds;
    for (int i = 0; i < n; i++) fds[i] = null_fd;
    c->pending_fds = 0;
    struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (n) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * (size_t)n);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * (size_t)n);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * (size_t)n);
    }
    return sendmsg(c->fd, &mh, MSG_NOSIGNAL | MSG_DONTWAIT) == (ssize_t)len;
}

static void send_msg(int ci, proto_msg_t *m) {
    client_t *c = conn(ci);
    m->magic = PROTO_MAGIC;
    if (send_packet(c, m, sizeof *m)) push_expect(c, E_MSG, m);
}

static tport_t *find_port(int conn_i, uint32_t slot, uint32_t gen) {
    for (unsigned i = 0; i < S.nports; i++) {
        tport_t *t = &S.ports[i];
        if (t->alive && t->conn == conn_i && t->slot == slot && t->gen == gen) return t;
    }
    return NULL;
}

static void on_welcome(client_t *c, const proto_msg_t *r, const int *fds, size_t nfds) {
    const shm_header_t *h = S.m->hdr;
    CHECK(r->result == SHOAL_OK, "welcome with result %u", r->result);
    CHECK(nfds == h->pool_count + 1 && r->fd_count == nfds, "welcome with %zu fds (fd_count %u) for %u pools",
          nfds, r->fd_count, h->pool_count);
    CHECK(r->slot < h->process_limit, "welcome names process slot %u", r->slot);
    /* the layout follows as its own packet, and a client accepts it */
    static shm_layout_msg_t layout;
    CHECK(proto_recv_blob(c->fd, &layout, sizeof layout) == 0, "no layout after the welcome: %s",
          strerror(errno));
    struct stat st;
    CHECK(fstat(fds[0], &st) == 0, "fstat");
    static shm_map_t cm;
    memset(&cm, 0, sizeof cm);
    cm.mgmt_size = (uint64_t)st.st_size;
    CHECK(shm_validate(&cm, &layout) == SHOAL_OK, "the daemon's layout fails the client's check");
    for (uint32_t i = 0; i < h->pool_count; i++)
        CHECK(fstat(fds[1 + i], &st) == 0 && (uint64_t)st.st_size >= cm.pools[i].segment_size,
              "pool %u segment smaller than its layout", i);
    c->registered = true;
    c->proc = r->slot;
}

/* Checks one reply against what its request calls for. */
static void on_reply(int ci, const proto_msg_t *r, int *fds, size_t nfds) {
    client_t *c = &S.c[ci];
    CHECK(c->q_count > 0, "conn %d: a reply nobody asked for (type %u)", ci, r->type);
    expect_t *e = &c->q[c->q_head];
    c->q_head = (c->q_head + 1) % MAX_PENDING;
    c->q_count--;
    CHECK(e->what == E_MSG, "conn %d: a reply to a malformed packet", ci);
    const proto_msg_t *q = &e->msg;
    const shm_header_t *h = S.m->hdr;
    CHECK(r->text[sizeof r->text - 1] == '\0', "unterminated text");
    if (r->type == PROTO_WELCOME) {
        CHECK(q->type == PROTO_HELLO && !c->registered && q->abi == SHOAL_ABI_VERSION &&
                  valid_name(q->name, SHM_PROC_NAME_MAX),
              "conn %d: welcome to a request of type %u (registered %d)", ci, q->type, c->registered);
        on_welcome(c, r, fds, nfds);
        return;
    }
    CHECK(r->type == PROTO_REPLY && nfds == 0, "conn %d: reply of type %u with %zu fds", ci, r->type,
          nfds);
    if (r->result != SHOAL_OK) CHECK(r->text[0] != '\0', "an error reply without a detail text");
    switch (q->type) {
    case PROTO_HELLO:
        if (c->registered) CHECK(r->result == SHOAL_ERR_INVALID_ARGUMENT, "second hello: %u", r->result);
        else if (q->abi != SHOAL_ABI_VERSION)
            CHECK(r->result == SHOAL_ERR_VERSION_MISMATCH, "hello with abi %u: %u", q->abi, r->result);
        else if (!valid_name(q->name, SHM_PROC_NAME_MAX))
            CHECK(r->result == SHOAL_ERR_INVALID_ARGUMENT, "hello with a bad name: %u", r->result);
        else CHECK(r->result == SHOAL_ERR_PROCESS_LIMIT, "valid hello refused with %u", r->result);
        break;
    case PROTO_PORT_CREATE: {
        uint32_t cap = q->capacity ? q->capacity : h->queue_capacity;
        bool bad = !c->registered || q->kind < 1 || q->kind > 4 || !valid_name(q->name, SHM_NAME_MAX) ||
                   cap > h->queue_capacity || q->history > h->history_max || q->policy > SHOAL_FULL_WAIT;
        if (bad) {
            CHECK(r->result == SHOAL_ERR_INVALID_ARGUMENT, "invalid create answered %u", r->result);
            break;
        }
        if (r->result != SHOAL_OK) {
            CHECK(r->result == SHOAL_ERR_PORT_LIMIT || r->result == SHOAL_ERR_SERVICE_LIMIT,
                  "valid create refused with %u: %s", r->result, r->text);
            break;
        }
        CHECK(shm_slot_kind(S.m, r->slot) == q->kind, "create of kind %u got slot %u of kind %u",
              q->kind, r->slot, shm_slot_kind(S.m, r->slot));
        CHECK(r->gen != 0 && r->service < h->service_limit, "create reply gen %u service %u", r->gen,
              r->service);
        /* a new entry, or the oldest one of a port that is gone */
        tport_t *t = NULL;
        if (S.nports < MAX_PORTS) t = &S.ports[S.nports++];
        for (unsigned i = 0; !t && i < S.nports; i++)
            if (!S.ports[i].alive) t = &S.ports[i];
        CHECK(t != NULL, "more than %d live ports", MAX_PORTS);
        memset(t, 0, sizeof *t);
        t->alive = true;
        t->conn = ci;
        t->slot = r->slot;
        t->gen = r->gen;
        t->kind = q->kind;
        t->service = r->service;
        t->policy = q->policy;
        t->history = q->kind == SHOAL_PORT_PUBLISHER ? q->history : 0;
        break;
    }
    case PROTO_PORT_DESTROY: {
        tport_t *t = c->registered ? find_port(ci, q->slot, q->gen) : NULL;
        if (!c->registered)
            CHECK(r->result == SHOAL_ERR_INVALID_ARGUMENT, "destroy unregistered: %u", r->result);
        else if (t) CHECK(r->result == SHOAL_OK, "destroy of own port %u refused: %u", q->slot, r->result);
        else CHECK(r->result == SHOAL_ERR_NOT_FOUND, "destroy of slot %u gen %u: %u", q->slot, q->gen,
                   r->result);
        if (t) t->alive = false;
        break;
    }
    default: CHECK(r->result == SHOAL_ERR_INVALID_ARGUMENT, "unknown type %u answered %u", q->type, r->result);
    }
}

static void drain(int ci) {
    client_t *c = &S.c[ci];
    while (c->fd >= 0) {
        proto_msg_t r;
        int fds[PROTO_MAX_FDS];
        size_t nfds = 0;
        int rc = proto_recv(c->fd, &r, fds, PROTO_MAX_FDS, &nfds);
        if (rc < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
        /* it closed with our requests unread: the kernel says so before the
         * replies still queued, and the end of the stream comes after them */
        if (rc < 0 && errno == ECONNRESET) continue;
        CHECK(rc >= 0, "conn %d: bad packet from the daemon: %s", ci, strerror(errno));
        if (rc == 0) {
            /* only a malformed or empty packet makes the daemon hang up */
            CHECK(c->q_count > 0 && c->q[c->q_head].what == E_CLOSE,
                  "conn %d: the daemon closed a connection that sent nothing malformed", ci);
            conn_reset(ci);
            return;
        }
        on_reply(ci, &r, fds, nfds);
        for (size_t i = 0; i < nfds; i++) close(fds[i]);
    }
}

static void drain_all(void) {
    for (int i = 0; i < NCONN; i++) drain(i);
}

/* ---- what the library does in shared memory -------------------------------------------- */

static tport_t *own_port(int ci, uint8_t sel) {
    unsigned n = 0;
    for (unsigned i = 0; i < S.nports; i++) n += S.ports[i].alive && S.ports[i].conn == ci;
    if (!n) return NULL;
    unsigned k = sel % n;
    for (unsigned i = 0; i < S.nports; i++)
        if (S.ports[i].alive && S.ports[i].conn == ci && k-- == 0) return &S.ports[i];
    return NULL;
}

static int free_held(shm_port_t *p) {
    _Atomic uint64_t *held = shm_port_held(S.m, p);
    for (uint32_t i = 0; i < S.m->hdr->chunks_per_port; i++)
        if (atomic_load(&held[i]) == 0) return (int)i;
    return -1;
}

static void hold(shm_port_t *p, int slot_i, uint32_t ci) {
    atomic_store(&shm_port_held(S.m, p)[slot_i], (uint64_t)ci + 1);
    atomic_fetch_add(&p->held, 1);
}

/* The held entry `sel` (any non-empty one from there on), removed from the
 * table; -1 if the port holds nothing. */
static int64_t unhold(shm_port_t *p, uint8_t sel) {
    _Atomic uint64_t *held = shm_port_held(S.m, p);
    uint32_t n = S.m->hdr->chunks_per_port;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t i = (sel + k) % n;
        uint64_t ref = atomic_load(&held[i]);
        if (!ref) continue;
        atomic_store(&held[i], 0);
        atomic_fetch_sub(&p->held, 1);
        return shm_ref_chunk(S.m, ref);
    }
    return -1;
}

static int64_t loan_chunk(tport_t *t, shm_port_t *p, uint32_t pool, uint32_t flags) {
    int64_t ci = spare_take(S.m, p, pool);
    if (ci < 0) ci = pool_alloc(S.m, pool);
    if (ci < 0) ci = spare_steal(S.m, pool);
    if (ci < 0) return -1;
    shm_chunk_t *h = shm_chunk(S.m, (uint32_t)ci);
    h->size = 1;
    h->sequence_id = 0;
    h->flags = flags;
    h->service = t->service;
    h->origin_slot = t->slot;
    h->origin_gen = t->gen;
    return ci;
}

/* As the library's release (core/spare.h). */
static void release_chunk(const tport_t *t, shm_port_t *p, uint32_t ci) {
    spare_release_ref(S.m, p, t->kind, ci, shm_chunk_pool(S.m, ci));
}

static void history_add(tport_t *t, shm_port_t *p, uint32_t ci) {
    uint32_t hmax = S.m->hdr->history_max, keep = t->history;
    if (!hmax || !keep || keep > hmax) return;
    _Atomic uint64_t *h = shm_port_history(S.m, p);
    chunk_ref(S.m, ci);
    if (spin_lock_bounded(&p->history_lock, 1000000) != 0) spin_lock_force(&p->history_lock);
    if (t->hist_count >= keep) {
        uint32_t oldest = (t->hist_head + hmax - keep) % hmax;
        int64_t old = shm_ref_chunk(S.m, atomic_exchange(&h[oldest], 0));
        if (old >= 0) chunk_unref(S.m, (uint32_t)old);
        t->hist_count = keep - 1;
    }
    uint64_t prev = atomic_exchange(&h[t->hist_head % hmax], (uint64_t)ci + 1);
    int64_t pc = shm_ref_chunk(S.m, prev);
    if (pc >= 0) chunk_unref(S.m, (uint32_t)pc);
    t->hist_head = (t->hist_head + 1) % hmax;
    t->hist_count++;
    p->history_head = t->hist_head;
    p->history_count = t->hist_count;
    spin_unlock(&p->history_lock);
}

static void act_loan(int ci, fuzz_in_t *in) {
    tport_t *t = own_port(ci, in_u8(in));
    uint8_t pool = in_u8(in);
    if (!t) return;
    shm_port_t *p = shm_port(S.m, t->slot);
    int e = free_held(p);
    if (e < 0) return;
    uint32_t flags = t->kind == SHOAL_PORT_CLIENT ? CHUNK_FLAG_REQUEST
                     : t->kind == SHOAL_PORT_SERVER ? CHUNK_FLAG_RESPONSE
                                                    : CHUNK_FLAG_SAMPLE;
    int64_t c = loan_chunk(t, p, pool % S.m->hdr->pool_count, flags);
    if (c >= 0) hold(p, e, (uint32_t)c);
}

static void act_send(int ci, fuzz_in_t *in) {
    tport_t *t = own_port(ci, in_u8(in));
    uint8_t sel = in_u8(in);
    if (!t) return;
    const shm_map_t *m = S.m;
    shm_port_t *p = shm_port(m, t->slot);
    shm_service_t *sv = shm_service(m, t->service);
    int64_t c = unhold(p, sel);
    if (c < 0 || !sv) return;
    uint32_t chunk = (uint32_t)c;
    _Atomic uint32_t *rv = shm_service_receivers(m, sv);
    uint32_t hi = atomic_load(&sv->receiver_hi);
    if (hi > m->hdr->receivers_per_service) hi = m->hdr->receivers_per_service;
    shm_chunk_t *h = shm_chunk(m, chunk);
    switch (t->kind) {
    case SHOAL_PORT_PUBLISHER:
        h->sequence_id = own_add(&p->next_sequence, 1);
        for (uint32_t i = 0; i < hi; i++) {
            uint32_t s = atomic_load(&rv[i]);
            shm_port_t *tp = s ? shm_port(m, s - 1) : NULL;
            if (tp)
                (void)port_deliver(m, p, s - 1, atomic_load(&tp->gen), SHOAL_PORT_SUBSCRIBER,
                                   t->service, chunk, t->policy, 0);
        }
        if (t->history) history_add(t, p, chunk);
        release_chunk(t, p, chunk);
        break;
    case SHOAL_PORT_CLIENT: {
        h->sequence_id = own_add(&p->next_sequence, 1);
        h->flags = CHUNK_FLAG_REQUEST;
        h->origin_slot = t->slot;
        h->origin_gen = t->gen;
        shoal_result_t rc = SHOAL_ERR_NO_SERVER;
        for (uint32_t i = 0; i < hi && rc != SHOAL_OK; i++) {
            uint32_t s = atomic_load(&rv[i]);
            shm_port_t *tp = s ? shm_port(m, s - 1) : NULL;
            if (tp)
                rc = port_deliver(m, p, s - 1, atomic_load(&tp->gen), SHOAL_PORT_SERVER, t->service,
                                  chunk, SHOAL_FULL_REJECT | PORT_DELIVER_TRANSFER, 0);
        }
        if (rc != SHOAL_OK) chunk_unref(m, chunk);
        break;
    }
    case SHOAL_PORT_SERVER:
        if (h->flags & CHUNK_FLAG_REQUEST) {
            /* answer the request: a response to its client, then release it */
            int64_t resp = loan_chunk(t, p, 0, CHUNK_FLAG_RESPONSE);
            if (resp >= 0) {
                shm_chunk_t *rh = shm_chunk(m, (uint32_t)resp);
                rh->sequence_id = h->sequence_id;
                rh->origin_slot = h->origin_slot;
                rh->origin_gen = h->origin_gen;
                shoal_result_t rc =
                    port_deliver(m, p, h->origin_slot, h->origin_gen, SHOAL_PORT_CLIENT, t->service,
                                 (uint32_t)resp, t->policy | PORT_DELIVER_TRANSFER, 0);
                if (rc != SHOAL_OK) chunk_unref(m, (uint32_t)resp);
            }
        }
        release_chunk(t, p, chunk);
        break;
    default: release_chunk(t, p, chunk);
    }
}

static void act_take(int ci, fuzz_in_t *in) {
    tport_t *t = own_port(ci, in_u8(in));
    if (!t || t->kind == SHOAL_PORT_PUBLISHER) return;
    shm_port_t *p = shm_port(S.m, t->slot);
    int e = free_held(p);
    if (e < 0) return;
    uint64_t ref;
    for (int k = 0; k < 4 && queue_pop(S.m, p, &ref); k++) {
        port_space_notify(p);
        if (ref == SHM_REF_SKIP || (ref & SHM_REF_TOMBSTONE)) continue;
        int64_t c = shm_ref_chunk(S.m, ref);
        if (c >= 0) hold(p, e, (uint32_t)c);
        break;
    }
}

static void act_release(int ci, fuzz_in_t *in) {
    tport_t *t = own_port(ci, in_u8(in));
    uint8_t sel = in_u8(in);
    if (!t) return;
    shm_port_t *p = shm_port(S.m, t->slot);
    int64_t c = unhold(p, sel);
    if (c >= 0) release_chunk(t, p, (uint32_t)c);
}

/* A hostile peer: any word of its own port, of a chunk or of a service. */
static void act_scribble(int ci, fuzz_in_t *in) {
    tport_t *t = own_port(ci, in_u8(in));
    uint8_t field = in_u8(in), idx = in_u8(in);
    uint64_t v = in_u64(in);
    const shm_map_t *m = S.m;
    const shm_header_t *h = m->hdr;
    S.scribbled = true;
    shm_chunk_t *ch = shm_chunk(m, idx % h->chunk_total);
    shm_pool_t *pl = shm_pool(m, idx % h->pool_count);
    shm_service_t *sv = shm_service(m, idx % h->service_limit);
    switch (field % 10) { /* words that are not a port's */
    case 0: atomic_store(&ch->refcount, (uint32_t)v); return;
    case 1: atomic_store(&ch->next_free, (uint32_t)v); return;
    case 2:
        ch->flags = (uint32_t)v;
        ch->origin_slot = (uint32_t)(v >> 8);
        ch->origin_gen = (uint32_t)(v >> 40);
        ch->sequence_id = v;
        return;
    case 3: atomic_store(&pl->free_head, v); return;
    case 4: atomic_store(&pl->in_use, (uint32_t)v); return;
    case 5:
        atomic_store(&shm_service_receivers(m, sv)[(v >> 32) % h->receivers_per_service], (uint32_t)v);
        return;
    case 6: atomic_store(&sv->receiver_hi, (uint32_t)v); return;
    case 7: atomic_store(&sv->servers, (uint32_t)v); return;
    default: break;
    }
    if (!t) return;
    shm_port_t *p = shm_port(m, t->slot);
    switch ((field >> 4) % 18) {
    case 0: atomic_store(&shm_port_held(m, p)[idx % h->chunks_per_port], v); break;
    case 1: atomic_store(&p->spare[idx % SHM_PORT_SPARES], v); break;
    case 2: atomic_store(&p->transit, v); break;
    case 3: atomic_store(&shm_port_cells(m, p)[idx % h->queue_cells].value, v); break;
    case 4: atomic_store(&shm_port_cells(m, p)[idx % h->queue_cells].seq, v); break;
    case 5: atomic_store(&p->enq_pos, v); break;
    case 6: atomic_store(&p->deq_pos, v); break;
    case 7: p->queue_mask = (uint32_t)v; break;
    case 8: p->queue_capacity = (uint32_t)v; break;
    case 9: atomic_store(&p->pushers, (uint32_t)v); break;
    case 10: atomic_store(&p->op, (uint32_t)v); break;
    case 11: atomic_store(&p->history_lock, (uint32_t)v); break;
    case 12: p->history_head = (uint32_t)v; break;
    case 13: p->history_count = (uint32_t)v; break;
    case 14: if (h->history_max) atomic_store(&shm_port_history(m, p)[idx % h->history_max], v); break;
    case 15: atomic_store(&p->state, (uint32_t)v); break;
    case 16: atomic_store(&p->gen, (uint32_t)v); break;
    default: atomic_store(&p->waitset, (uint32_t)v); break;
    }
}

/* ---- reference oracle (inputs that did not scribble) ------------------------------------ */

static void count_ref(uint64_t v) {
    if (v == 0 || v == SHM_REF_SKIP || (v & SHM_REF_TOMBSTONE)) return;
    int64_t c = shm_ref_chunk(S.m, v);
    CHECK(c >= 0, "a reference %llu out of range in a clean run", (unsigned long long)v);
    S.refs[c]++;
}

/* Every chunk's reference count is the number of references to it; every
 * chunk without one is on its pool's free list, once; in_use counts the
 * rest. */
static void check_refs(const char *when) {
    const shm_map_t *m = S.m;
    const shm_header_t *h = m->hdr;
    memset(S.refs, 0, h->chunk_total * sizeof *S.refs);
    memset(S.freem, 0, h->chunk_total);
    for (uint32_t s = 0; s < h->port_slots; s++) {
        shm_port_t *p = shm_port(m, s);
        if (atomic_load(&p->state) == PORT_FREE) {
            for (int k = 0; k < SHM_PORT_SPARES; k++)
                CHECK(atomic_load(&p->spare[k]) == 0, "%s: a free slot %u keeps a spare", when, s);
            continue;
        }
        for (uint32_t i = 0; i < h->chunks_per_port; i++) count_ref(atomic_load(&shm_port_held(m, p)[i]));
        for (int k = 0; k < SHM_PORT_SPARES; k++) count_ref(atomic_load(&p->spare[k]));
        for (uint32_t i = 0; i <= (p->queue_mask & (h->queue_cells - 1)); i++)
            count_ref(atomic_load(&shm_port_cells(m, p)[i].value));
        if (shm_slot_kind(m, s) == SHOAL_PORT_PUBLISHER)
            for (uint32_t i = 0; i < h->history_max; i++) count_ref(atomic_load(&shm_port_history(m, p)[i]));
    }
    for (uint32_t pi = 0; pi < h->pool_count; pi++) {
        const shm_pool_geom_t *g = shm_pool_geom(m, pi);
        uint32_t top = (uint32_t)atomic_load(&shm_pool(m, pi)->free_head), n = 0;
        while (top) {
            CHECK(top <= g->chunk_count, "%s: pool %u free list link %u out of range", when, pi, top);
            uint32_t c = g->first_chunk + top - 1;
            CHECK(!S.freem[c], "%s: pool %u free list has a cycle at chunk %u", when, pi, c);
            S.freem[c] = 1;
            n++;
            top = atomic_load(&shm_chunk(m, c)->next_free);
        }
        uint32_t in_use = atomic_load(&shm_pool(m, pi)->in_use);
        CHECK(in_use == g->chunk_count - n, "%s: pool %u in_use %u, but %u of %u chunks are free",
              when, pi, in_use, n, g->chunk_count);
        for (uint32_t c = g->first_chunk; c < g->first_chunk + g->chunk_count; c++) {
            uint32_t rc = atomic_load(&shm_chunk(m, c)->refcount);
            if (S.freem[c])
                CHECK(S.refs[c] == 0 && rc == 0, "%s: free chunk %u has %u references, refcount %u",
                      when, c, S.refs[c], rc);
            else
                CHECK(S.refs[c] == rc && rc > 0, "%s: chunk %u: refcount %u but %u references", when,
                      c, rc, S.refs[c]);
        }
    }
}

/* The clients' ports are exactly the daemon's active slots. */
static void check_ports(void) {
    const shm_header_t *h = S.m->hdr;
    char why[256];
    CHECK(daemon_fuzz_check(S.f, 0, why, sizeof why) == 0, "daemon bookkeeping: %s", why);
    for (uint32_t s = 0; s < h->port_slots; s++) {
        uint32_t gen = 0, proc = 0;
        int st = daemon_fuzz_slot(S.f, s, &gen, &proc);
        tport_t *t = NULL;
        for (unsigned i = 0; i < S.nports; i++)
            if (S.ports[i].alive && S.ports[i].slot == s) {
                CHECK(!t, "two live ports on slot %u", s);
                t = &S.ports[i];
            }
        if (t) {
            CHECK(st == 1 && gen == t->gen && proc == S.c[t->conn].proc,
                  "client owns slot %u gen %u, daemon has state %d gen %u process %u", s, t->gen, st,
                  gen, proc);
        } else {
            CHECK(st != 1, "slot %u active in the daemon, owned by no client", s);
        }
    }
    size_t reg = 0;
    daemon_fuzz_conns(S.f, &reg);
    size_t mine = 1; /* the bystander */
    for (int i = 0; i < NCONN; i++) mine += S.c[i].registered;
    CHECK(reg == mine, "daemon has %zu registered processes, the clients %zu", reg, mine);
}

/* ---- the input ------------------------------------------------------------------------------- */

enum action {
    A_HELLO, A_CREATE, A_DESTROY, A_RAW, A_CLOSE, A_FDS, A_LOAN, A_SEND, A_TAKE, A_RELEASE,
    A_SCRIBBLE, A_TICK, A_DEFER, A_COUNT
};

static uint32_t small_or_big(uint8_t b, uint32_t mod) {
    return b < 0xf0 ? b % mod : UINT32_MAX - (b & 0x0f);
}

static void run_record(fuzz_in_t *in) {
    uint8_t op = in_u8(in);
    int ci = op & 3;
    proto_msg_t msg;
    memset(&msg, 0, sizeof msg);
    switch ((op >> 2) % A_COUNT) {
    case A_HELLO: {
        uint8_t flags = in_u8(in);
        msg.type = PROTO_HELLO;
        msg.abi = flags & 1 ? in_u32(in) : SHOAL_ABI_VERSION;
        msg.pid = (int32_t)in_u32(in);
        pick_name(in, msg.name, sizeof msg.name, SHM_PROC_NAME_MAX, true);
        send_msg(ci, &msg);
        break;
    }
    case A_CREATE:
        msg.type = PROTO_PORT_CREATE;
        msg.kind = small_or_big(in_u8(in), 6);
        msg.policy = small_or_big(in_u8(in), 4);
        msg.capacity = small_or_big(in_u8(in), 6);
        msg.history = small_or_big(in_u8(in), 6);
        msg.timeout_ns = (int64_t)(in_u8(in) * 1000);
        pick_name(in, msg.name, sizeof msg.name, SHM_NAME_MAX, false);
        send_msg(ci, &msg);
        break;
    case A_DESTROY: {
        uint8_t which = in_u8(in), delta = in_u8(in);
        msg.type = PROTO_PORT_DESTROY;
        if (which < 0x80 && S.nports) {
            const tport_t *t = &S.ports[which % S.nports];
            msg.slot = t->slot;
            msg.gen = t->gen + delta;
        } else {
            msg.slot = which == 0xff ? UINT32_MAX : which & 0x7f;
            msg.gen = delta;
        }
        send_msg(ci, &msg);
        break;
    }
    case A_RAW: {
        /* any packet: short, long, bad magic, or a message the harness did
         * not build (its own type, kind, unterminated strings) */
        uint16_t len = in_u16(in);
        bool magic = len & 0x8000;
        len &= 0x7fff;
        static uint8_t buf[sizeof(proto_msg_t) + 64];
        if (len > sizeof buf) len = (uint16_t)(sizeof(proto_msg_t) - (len & 3));
        in_bytes(in, buf, len);
        if (magic && len >= 4) {
            uint32_t mg = PROTO_MAGIC;
            memcpy(buf, &mg, 4);
        }
        client_t *c = conn(ci);
        if (!send_packet(c, buf, len)) break;
        proto_msg_t m;
        memcpy(&m, buf, len < sizeof m ? len : sizeof m);
        if (len == sizeof m && m.magic == PROTO_MAGIC) push_expect(c, E_MSG, &m);
        else push_expect(c, E_CLOSE, NULL);
        break;
    }
    case A_CLOSE:
        /* the daemon sees the hang-up at its next pump, maybe with requests
         * still unread behind it */
        if (S.c[ci].fd >= 0) conn_reset(ci);
        break;
    case A_FDS: conn(ci)->pending_fds = in_u8(in) % 9; break;
    case A_LOAN: act_loan(ci, in); break;
    case A_SEND: act_send(ci, in); break;
    case A_TAKE: act_take(ci, in); break;
    case A_RELEASE: act_release(ci, in); break;
    case A_SCRIBBLE: act_scribble(ci, in); break;
    case A_TICK: daemon_fuzz_tick(S.f); break;
    case A_DEFER: S.deferred = !S.deferred; break;
    }
}

static void setup_daemon(unsigned which) {
    if (!daemons[which]) {
        char err[1024];
        const char *t = config_text[which];
        if (shoal_config_parse(&configs[which], "fuzz", t, strlen(t), err, sizeof err) != 0) {
            fprintf(stderr, "fuzz config %u: %s\n", which, err);
            abort();
        }
        daemons[which] = daemon_fuzz_create(&configs[which]);
        CHECK(daemons[which] != NULL, "cannot start the daemon: %s", strerror(errno));
    }
    S.f = daemons[which];
    S.m = daemon_fuzz_map(S.f);
    S.cfg = &configs[which];
    free(S.refs);
    free(S.freem);
    S.refs = calloc(S.m->hdr->chunk_total, sizeof *S.refs);
    S.freem = calloc(S.m->hdr->chunk_total, 1);
    CHECK(S.refs && S.freem, "out of memory");
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    const char *lvl = getenv("SHOAL_FUZZ_LOG");
    shoal_log_level = lvl ? log_level_parse(lvl) : LOG_OFF;
    if (shoal_log_level < 0) shoal_log_level = LOG_OFF;
    null_fd = eventfd(0, EFD_CLOEXEC);
    for (int i = 0; i < NCONN; i++) S.c[i].fd = -1;
    for (unsigned i = 0; i < NCONFIG; i++) setup_daemon(i);
    fd_low = fuzz_count_low_fds(256);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return -1;
    fuzz_in_t in = {data, size};
    setup_daemon(in_u8(&in) % NCONFIG);
    daemon_fuzz_begin(S.f);
    S.nports = 0;
    S.scribbled = false;
    S.deferred = false;

    /* a registered bystander keeps the domain from going idle, so the
     * daemon rebuilds nothing behind the checks */
    S.bystander = daemon_fuzz_connect(S.f);
    CHECK(S.bystander >= 0, "connect");
    {
        proto_msg_t m;
        memset(&m, 0, sizeof m);
        m.magic = PROTO_MAGIC;
        m.type = PROTO_HELLO;
        m.abi = SHOAL_ABI_VERSION;
        snprintf(m.name, sizeof m.name, "bystander");
        CHECK(proto_send(S.bystander, &m, NULL, 0) == 0, "hello");
        daemon_fuzz_pump(S.f);
        int fds[PROTO_MAX_FDS];
        size_t nfds = 0;
        CHECK(proto_recv(S.bystander, &m, fds, PROTO_MAX_FDS, &nfds) == 1 && m.type == PROTO_WELCOME,
              "bystander not welcomed");
        for (size_t i = 0; i < nfds; i++) close(fds[i]);
        static shm_layout_msg_t layout;
        CHECK(proto_recv_blob(S.bystander, &layout, sizeof layout) == 0, "bystander layout");
    }

    while (in.n) {
        run_record(&in);
        if (S.deferred) continue;
        sync_daemon();
        check_ports();
        if (!S.scribbled) check_refs("after a record");
    }
    sync_daemon();
    check_ports();
    if (!S.scribbled) check_refs("at the end");

    /* everyone but the bystander leaves: everything comes back */
    for (int i = 0; i < NCONN; i++) conn_reset(i);
    daemon_fuzz_pump(S.f);
    char why[256];
    CHECK(daemon_fuzz_check(S.f, !S.scribbled, why, sizeof why) == 0, "after the clients left: %s", why);
    if (!S.scribbled) {
        check_refs("after the clients left");
        for (uint32_t i = 0; i < S.m->hdr->pool_count; i++)
            CHECK(atomic_load(&shm_pool(S.m, i)->in_use) == 0, "pool %u: %u chunks not returned", i,
                  atomic_load(&shm_pool(S.m, i)->in_use));
    }
    size_t reg;
    CHECK(daemon_fuzz_conns(S.f, &reg) == 1 && reg == 1, "connections left behind");

    /* the bystander too: the domain is idle */
    close(S.bystander);
    S.bystander = -1;
    daemon_fuzz_pump(S.f);
    CHECK(daemon_fuzz_conns(S.f, &reg) == 0, "connections left behind");
    CHECK(daemon_fuzz_check(S.f, 1, why, sizeof why) == 0, "idle: %s", why);
    for (uint32_t i = 0; i < S.m->hdr->pool_count; i++)
        CHECK(atomic_load(&shm_pool(S.m, i)->in_use) == 0, "idle pool %u: in_use %u", i, atomic_load(&shm_pool(S.m, i)->in_use));
    daemon_fuzz_restore(S.f);

    /* every descriptor a client passed, every connection, every welcome's
     * segment fds: all closed again (the harness keeps its own below 256) */
    int low = fuzz_count_low_fds(256);
    if (low != fd_low) fuzz_list_fds();
    CHECK(low == fd_low, "%d descriptors open below 256, %d at start-up", low, fd_low);
    return 0;
}
