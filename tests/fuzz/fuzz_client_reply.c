/* libFuzzer harness: the client's side of the daemon protocol.
 *
 * Byte 0 picks one of three modes:
 *
 * 0 PROTO: one packet (any size, any bytes, up to 9 descriptors attached)
 *   over a socketpair into proto_recv (any max_fds), or into
 *   proto_recv_blob (any size). A message is accepted only if it has the
 *   exact size and the magic, comes back terminated, with at most max_fds
 *   descriptors; everything else is EBADMSG or end of stream; no
 *   descriptor is ever leaked.
 *
 * 1 LAYOUT: a layout blob (shm_layout_msg_t) into shm_validate against a
 *   real memfd mapping whose size the input chooses (at most 4 MiB, with a
 *   PROT_NONE guard page after it). The blob is a valid layout computed by
 *   shm_layout for parameters from the input, XORed with the rest of the
 *   input, so an empty delta is a layout the check must accept. Once it
 *   accepts, every resolver (shm_pool, shm_chunk, shm_process,
 *   shm_waitset_word, shm_service and its receivers, shm_port and its
 *   cells, held table and history, shm_slot_kind, shm_chunk_pool,
 *   shm_chunk_payload, shm_ref_chunk) is asked for the first, last and
 *   first-out-of-range index and more, and whatever it returns must lie
 *   wholly inside its mapping (and is touched); then queues and free lists
 *   are run on the first and last port and every pool.
 *
 * 2 HANDSHAKE: the real shoal_runtime_create (runtime.c) against a scripted
 *   daemon thread on a real socket: the WELCOME (fields, fd count, segment
 *   sizes), the layout blob, the replies to port creation and destruction
 *   and the segment's content all come from the input. Whatever the
 *   runtime accepts is then checked as in LAYOUT on its own mappings, and
 *   its ports, info calls, loans, sends, takes, releases, a call and a
 *   waitset run on it. The scripted daemon sets created ports up in the
 *   segment as shoald does, so samples, requests and responses flow.
 *   Plan byte: bits 0-2 ports to create, 3 destroy the publisher first,
 *   4 a waitset, 5 a call, 6 destroy the waitset first, 6-7 history. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
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

#include "core/pool.h"
#include "core/proto.h"
#include "core/queue.h"
#include "core/shm.h"
#include "fuzz_common.h"
#include "runtime/internal.h"

#define CHECK(cond, ...) FUZZ_CHECK(cond, __VA_ARGS__)

static int ev_fd = -1; /* what the packets carry */

/* ---- layouts --------------------------------------------------------------------- */

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/* Small, valid parameters from the input. */
static void pick_params(fuzz_in_t *in, shm_layout_params_t *lp) {
    memset(lp, 0, sizeof *lp);
    lp->pool_count = 1 + in_u8(in) % 4;
    uint64_t size = 0;
    for (uint32_t i = 0; i < lp->pool_count; i++) {
        size += 1 + (uint64_t)in_u8(in) * 8;
        lp->chunk_size[i] = size;
        lp->chunk_count[i] = 1 + in_u8(in) % 8;
    }
    lp->processes = 1 + in_u8(in) % 4;
    lp->services = 1 + in_u8(in) % 4;
    lp->chunks_per_port = 1 + in_u8(in) % 4;
    lp->queue_capacity = 1 + in_u8(in) % 8;
    lp->history_max = in_u8(in) % (lp->queue_capacity + 1);
    lp->waitsets_per_process = 1 + in_u8(in) % 4;
    for (uint32_t k = 1; k <= 4; k++) lp->kind_limit[k] = 1 + in_u8(in) % 3;
}

/* The layout the daemon would send for `lp` (as shm_init computes it). */
static void make_layout(const shm_layout_params_t *lp, shm_layout_msg_t *out) {
    memset(out, 0, sizeof *out);
    out->magic = SHM_LAYOUT_MAGIC;
    CHECK(shm_layout(lp, &out->hdr) == 0, "shm_layout refused small parameters");
    uint32_t first = 0;
    for (uint32_t i = 0; i < lp->pool_count; i++) {
        shm_pool_geom_t *g = &out->pools[i];
        g->chunk_size = lp->chunk_size[i];
        g->stride = shm_pool_stride(lp->chunk_size[i]);
        g->chunk_count = lp->chunk_count[i];
        g->segment_size = align_up(g->stride * g->chunk_count, 4096);
        g->first_chunk = first;
        first += g->chunk_count;
    }
}

/* XORs the next bytes of the input into `buf`; true if any bit changed. */
static bool xor_in(fuzz_in_t *in, void *buf, size_t len) {
    uint8_t *b = buf;
    bool changed = false;
    size_t n = in->n < len ? in->n : len;
    for (size_t i = 0; i < n; i++) {
        changed |= in->p[i] != 0;
        b[i] ^= in->p[i];
    }
    in->p += n;
    in->n -= n;
    return changed;
}

/* ---- "nothing maps outside" ------------------------------------------------------------ */

static void touch(const void *p, size_t len) {
    volatile const uint8_t *b = p;
    if (!len) return;
    (void)b[0];
    (void)b[len - 1];
}

/* [p, p + len) within [base, base + size), compared as integers. */
static void inside(const char *what, uint32_t i, const void *p, uint64_t len, const void *base,
                   uint64_t size) {
    uintptr_t a = (uintptr_t)p, lo = (uintptr_t)base;
    CHECK(a >= lo && a - lo <= size && len <= size - (a - lo),
          "%s %u: [%#lx, +%llu) is outside the mapping [%#lx, +%llu)", what, i, (unsigned long)a,
          (unsigned long long)len, (unsigned long)lo, (unsigned long long)size);
}

static void indices(uint32_t limit, uint32_t out[8]) {
    out[0] = 0;
    out[1] = 1;
    out[2] = limit - 1;
    out[3] = limit;
    out[4] = limit + 1;
    out[5] = UINT32_MAX;
    out[6] = UINT32_MAX - limit;
    out[7] = limit / 2;
}

/* Every resolver at its bounds: NULL, or wholly inside the mapping. With
 * `touch_payload` the payload mappings are real and are touched too. */
static void check_map(shm_map_t *m, bool touch_payload) {
    const shm_header_t *h = m->hdr;
    uint8_t *mg = m->mgmt;
    uint64_t ms = m->mgmt_size;
    uint32_t ix[8];

    indices(h->pool_count, ix);
    for (int k = 0; k < 8; k++) {
        shm_pool_t *p = shm_pool(m, ix[k]);
        CHECK((p != NULL) == (ix[k] < h->pool_count), "shm_pool(%u) with %u pools", ix[k], h->pool_count);
        if (p) {
            inside("pool", ix[k], p, sizeof *p, mg, ms);
            touch(p, sizeof *p);
        }
    }
    indices(h->chunk_total, ix);
    for (int k = 0; k < 8; k++) {
        shm_chunk_t *c = shm_chunk(m, ix[k]);
        CHECK((c != NULL) == (ix[k] < h->chunk_total), "shm_chunk(%u) of %u", ix[k], h->chunk_total);
        if (c) {
            inside("chunk", ix[k], c, sizeof *c, mg, ms);
            touch(c, sizeof *c);
        }
        uint32_t pool = 0;
        uint32_t cp = shm_chunk_pool(m, ix[k]);
        void *pl = shm_chunk_payload(m, ix[k], &pool);
        CHECK(pool == cp, "shm_chunk_payload and shm_chunk_pool disagree on chunk %u", ix[k]);
        CHECK(cp == UINT32_MAX || (cp < h->pool_count && ix[k] < h->chunk_total),
              "chunk %u in pool %u", ix[k], cp);
        if (pl) {
            const shm_pool_geom_t *g = shm_pool_geom(m, cp);
            CHECK(g != NULL, "payload without a pool");
            inside("payload of chunk", ix[k], pl, g->chunk_size, m->payload[cp], m->payload_size[cp]);
            if (touch_payload) touch(pl, g->chunk_size);
        }
    }
    for (uint32_t i = 0; i < h->pool_count; i++) {
        const shm_pool_geom_t *g = shm_pool_geom(m, i);
        uint32_t ends[2] = {g->first_chunk, g->first_chunk + g->chunk_count - 1};
        for (int k = 0; k < 2; k++) {
            uint32_t pool = 0;
            void *pl = shm_chunk_payload(m, ends[k], &pool);
            CHECK(pool == i, "chunk %u of pool %u said to be in pool %u", ends[k], i, pool);
            if (pl) {
                inside("payload of chunk", ends[k], pl, g->chunk_size, m->payload[i], m->payload_size[i]);
                if (touch_payload) touch(pl, g->chunk_size);
            }
        }
    }
    indices(h->process_limit, ix);
    for (int k = 0; k < 8; k++) {
        shm_process_t *p = shm_process(m, ix[k]);
        if (p) inside("process", ix[k], p, sizeof *p, mg, ms), touch(p, sizeof *p);
    }
    uint32_t words = h->process_limit * h->waitsets_per_process;
    indices(words, ix);
    for (int k = 0; k < 8; k++) {
        shm_waitset_word_t *w = shm_waitset_word(m, ix[k]);
        if (w) inside("waitset word", ix[k], w, sizeof *w, mg, ms), touch(w, sizeof *w);
    }
    indices(h->service_limit, ix);
    for (int k = 0; k < 8; k++) {
        shm_service_t *s = shm_service(m, ix[k]);
        CHECK((s != NULL) == (ix[k] < h->service_limit), "shm_service(%u)", ix[k]);
        if (!s) continue;
        uint64_t len = sizeof *s + (uint64_t)h->receivers_per_service * 4;
        inside("service", ix[k], s, len, mg, ms);
        inside("service and receivers", ix[k], s, len, s, h->service_stride);
        touch(s, len);
        CHECK((uint8_t *)shm_service_receivers(m, s) == (uint8_t *)s + sizeof *s, "receivers");
    }
    indices(h->port_slots, ix);
    for (int k = 0; k < 8; k++) {
        shm_port_t *p = shm_port(m, ix[k]);
        uint32_t kind = shm_slot_kind(m, ix[k]);
        CHECK((p != NULL) == (ix[k] < h->port_slots), "shm_port(%u)", ix[k]);
        CHECK((kind != 0) == (ix[k] < h->port_slots), "slot %u of %u has kind %u", ix[k], h->port_slots, kind);
        if (kind) CHECK(ix[k] - h->kind_base[kind] < h->kind_limit[kind], "slot %u kind %u", ix[k], kind);
        if (!p) continue;
        inside("port", ix[k], p, sizeof *p, mg, ms);
        touch(p, sizeof *p);
        /* a port's parts lie within its own stride, not only within the mapping */
        shm_queue_cell_t *cells = shm_port_cells(m, p);
        inside("port cells", ix[k], cells, (uint64_t)h->queue_cells * sizeof *cells, p, h->port_stride);
        inside("port", ix[k], p, sizeof *p, p, h->port_stride);
        touch(cells, (size_t)h->queue_cells * sizeof *cells);
        _Atomic uint64_t *held = shm_port_held(m, p);
        inside("port held table", ix[k], held, (uint64_t)h->chunks_per_port * 8, p, h->port_stride);
        touch(held, (size_t)h->chunks_per_port * 8);
        _Atomic uint64_t *hist = shm_port_history(m, p);
        inside("port history", ix[k], hist, (uint64_t)h->history_max * 8, p, h->port_stride);
        touch(hist, (size_t)h->history_max * 8);
    }
    static const uint64_t refs[] = {0, 1, SHM_REF_TOMBSTONE | 1, SHM_REF_SKIP, 1ULL << 32, (1ULL << 32) + 1};
    for (size_t k = 0; k < sizeof refs / sizeof refs[0] + 3; k++) {
        uint64_t r = k < 6 ? refs[k] : (uint64_t)h->chunk_total + k - 6; /* total, +1, +2 */
        int64_t c = shm_ref_chunk(m, r);
        CHECK(c == -1 || (c >= 0 && (uint64_t)c < h->chunk_total && (uint64_t)c + 1 == r),
              "shm_ref_chunk(%llu) = %lld with %u chunks", (unsigned long long)r, (long long)c,
              h->chunk_total);
    }
}

static void dump_layout(const shm_map_t *m) {
    const shm_header_t *h = m->hdr;
    fprintf(stderr,
            "layout: mgmt %llu pools %u@%llu chunks %u@%llu procs %u@%llu waitsets %u*%u@%llu "
            "services %u@%llu stride %llu ports %u@%llu stride %llu (cells %llu held %llu hist %llu)\n",
            (unsigned long long)h->mgmt_size, h->pool_count, (unsigned long long)h->pools_off,
            h->chunk_total, (unsigned long long)h->chunks_off, h->process_limit,
            (unsigned long long)h->procs_off, h->process_limit, h->waitsets_per_process,
            (unsigned long long)h->waitsets_off, h->service_limit, (unsigned long long)h->services_off,
            (unsigned long long)h->service_stride, h->port_slots, (unsigned long long)h->ports_off,
            (unsigned long long)h->port_stride, (unsigned long long)h->port_cells_off,
            (unsigned long long)h->port_held_off, (unsigned long long)h->port_history_off);
    for (uint32_t i = 0; i < h->pool_count; i++)
        fprintf(stderr, "  pool %u: size %llu stride %llu count %u first %u segment %llu\n", i,
                (unsigned long long)m->pools[i].chunk_size, (unsigned long long)m->pools[i].stride,
                m->pools[i].chunk_count, m->pools[i].first_chunk,
                (unsigned long long)m->pools[i].segment_size);
}

/* Queues on the first and last port and every pool's free list, as the
 * daemon and the library run them: all of it inside the mapping. */
static void exercise(shm_map_t *m) {
    const shm_header_t *h = m->hdr;
    uint32_t ends[2] = {0, h->port_slots - 1};
    for (int k = 0; k < (h->port_slots ? 2 : 0); k++) {
        shm_port_t *p = shm_port(m, ends[k]);
        queue_init(m, p, h->queue_capacity);
        uint32_t pushed = 0;
        for (uint32_t i = 0; i <= h->queue_cells; i++) pushed += queue_push(m, p, i + 1);
        CHECK(pushed == h->queue_capacity, "queue took %u of capacity %u", pushed, h->queue_capacity);
        uint64_t v;
        uint32_t popped = 0;
        while (queue_pop(m, p, &v)) CHECK(v == ++popped, "queue order");
        CHECK(popped == pushed, "popped %u of %u", popped, pushed);
    }
    for (uint32_t i = 0; i < h->pool_count; i++) {
        shm_pool_reset(m, i);
        int64_t got[3];
        int n = 0;
        for (; n < 3; n++) {
            got[n] = pool_alloc(m, i);
            if (got[n] < 0) break;
            CHECK(shm_chunk_pool(m, (uint32_t)got[n]) == i, "pool %u gave chunk %lld", i, (long long)got[n]);
        }
        while (n--) chunk_unref(m, (uint32_t)got[n]);
        if (atomic_load(&shm_pool(m, i)->in_use) != 0) dump_layout(m);
        CHECK(atomic_load(&shm_pool(m, i)->in_use) == 0, "pool %u in use after frees", i);
    }
}

/* ---- mode 0: proto_recv ------------------------------------------------------------------ */

static void mode_proto(fuzz_in_t *in) {
    int sv[2];
    CHECK(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv) == 0, "socketpair");
    uint8_t nfds = in_u8(in) % 10, max_fds = in_u8(in) % 8, flags = in_u8(in);
    static uint8_t buf[sizeof(proto_msg_t) + 512];
    size_t len = in->n < sizeof buf ? in->n : sizeof buf;
    if (flags & 2) len = sizeof(proto_msg_t); /* the right size, zero-padded */
    in_bytes(in, buf, len);
    if ((flags & 1) && len >= 4) {
        uint32_t mg = PROTO_MAGIC;
        memcpy(buf, &mg, 4);
    }
    int fds[9];
    for (int i = 0; i < nfds; i++) fds[i] = ev_fd;
    struct iovec iov = {.iov_base = buf, .iov_len = len};
    union {
        char b[CMSG_SPACE(sizeof fds)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds) {
        memset(&u, 0, sizeof u);
        mh.msg_control = u.b;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
        struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
        cm->cmsg_level = SOL_SOCKET;
        cm->cmsg_type = SCM_RIGHTS;
        cm->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
        memcpy(CMSG_DATA(cm), fds, sizeof(int) * nfds);
    }
    CHECK(sendmsg(sv[0], &mh, MSG_NOSIGNAL) == (ssize_t)len, "sendmsg: %s", strerror(errno));

    if (flags & 4) {
        /* the layout's path: exactly `want` bytes or an error */
        size_t want = (flags & 8) ? sizeof(shm_layout_msg_t) : (size_t)(flags >> 4) * 97;
        uint8_t *blob = malloc(want ? want : 1);
        CHECK(blob != NULL, "malloc");
        int r = proto_recv_blob(sv[1], blob, want);
        CHECK((r == 0) == (len == want), "proto_recv_blob(%zu) of a %zu-byte packet: %d", want,
              len, r);
        if (r == 0) CHECK(memcmp(blob, buf, len) == 0, "blob altered");
        else CHECK(errno == EBADMSG || errno == ECONNRESET, "proto_recv_blob errno %d", errno);
        free(blob);
        /* the blob path never takes descriptors: the kernel drops them
         * with the packet */
    } else {
        proto_msg_t msg;
        int got[PROTO_MAX_FDS];
        size_t n = 99;
        int r = proto_recv(sv[1], &msg, got, max_fds, &n);
        proto_msg_t sent;
        memcpy(&sent, buf, sizeof sent);
        bool good = len == sizeof(proto_msg_t) && sent.magic == PROTO_MAGIC;
        if (r == 1) {
            CHECK(good, "accepted a %zu-byte packet", len);
            CHECK(msg.name[sizeof msg.name - 1] == '\0' && msg.text[sizeof msg.text - 1] == '\0',
                  "unterminated strings");
            CHECK(memcmp(&msg, &sent, offsetof(proto_msg_t, name)) == 0, "fields altered");
            CHECK(n == (nfds < max_fds ? nfds : max_fds), "%zu fds returned of %u sent, max %u", n,
                  nfds, max_fds);
            for (size_t i = 0; i < n; i++) {
                int fl = fcntl(got[i], F_GETFD);
                CHECK(fl >= 0 && (fl & FD_CLOEXEC), "returned fd %d not open or not close-on-exec", got[i]);
                close(got[i]);
            }
        } else if (r == 0) {
            CHECK(len == 0 && n == 0, "end of stream for a %zu-byte packet, %zu fds", len, n);
        } else {
            CHECK(!good, "refused a good %zu-byte message with %u fds", len, nfds);
            CHECK(errno == EBADMSG && n == 0, "errno %d, %zu fds", errno, n);
        }
    }
    close(sv[0]);
    close(sv[1]);
}

/* ---- mode 1: the layout ------------------------------------------------------------------ */

#define MAP_MAX (4u << 20)
static int memfd = -1;        /* the management segment of the layout mode */
static uint8_t *payload_base; /* reserved address space, never touched */
#define PAYLOAD_RESERVE (1ULL << 30)

static void mode_layout(fuzz_in_t *in) {
    shm_layout_params_t lp;
    pick_params(in, &lp);
    static shm_layout_msg_t tmpl, blob;
    make_layout(&lp, &tmpl);
    uint8_t sel = in_u8(in);
    int16_t delta = (int16_t)in_u16(in);
    blob = tmpl;
    bool changed = xor_in(in, &blob, sizeof blob);
    uint64_t size;
    switch (sel % 4) {
    case 0: size = tmpl.hdr.mgmt_size; break;
    case 1: size = blob.hdr.mgmt_size; break; /* the size the blob claims */
    case 2: size = tmpl.hdr.mgmt_size + (int64_t)delta * 8; break;
    default: size = (uint16_t)delta; break;
    }
    if (size == 0) size = 1;
    if (size > MAP_MAX) size = MAP_MAX;

    CHECK(memfd >= 0 && ftruncate(memfd, 0) == 0 && ftruncate(memfd, (off_t)size) == 0, "memfd");
    /* the mapping, then a PROT_NONE page: a read past it faults */
    uint64_t span = align_up(size, 4096);
    uint8_t *base = mmap(NULL, span + 4096, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(base != MAP_FAILED, "mmap reserve");
    CHECK(mmap(base, span, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, memfd, 0) == base, "mmap");

    static shm_map_t m;
    memset(&m, 0, sizeof m);
    m.mgmt = base;
    m.shared_hdr = (shm_header_t *)base;
    m.mgmt_size = size;
    shoal_result_t rc = shm_validate(&m, &blob);
    if (!changed && sel % 4 == 0)
        CHECK(rc == SHOAL_OK, "the daemon's own layout refused: %s", shoal_last_error_message());
    if (rc == SHOAL_OK) {
        CHECK(m.hdr->mgmt_size <= size, "layout larger than the mapping");
        /* payload segments: the runtime maps segment_size bytes of each
         * pool, or fails when it cannot */
        for (uint32_t i = 0; i < m.hdr->pool_count; i++) {
            if (m.pools[i].segment_size > PAYLOAD_RESERVE) continue;
            m.payload[i] = payload_base;
            m.payload_size[i] = m.pools[i].segment_size;
        }
        check_map(&m, false);
        exercise(&m);
    } else {
        CHECK(rc == SHOAL_ERR_CORRUPT || rc == SHOAL_ERR_VERSION_MISMATCH, "shm_validate returned %d", rc);
    }
    munmap(base, span + 4096);
}

/* ---- mode 2: the runtime against a scripted daemon ------------------------------------------- */

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    const uint8_t *script;
    size_t len;
    bool done;
    int listen_fd;
    char dir[64];
} H = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER, .listen_fd = -1};

static void reply(int fd, proto_msg_t *r) {
    r->magic = PROTO_MAGIC;
    (void)proto_send(fd, r, NULL, 0);
}

/* One session, as the script says. */
static void serve(int fd, fuzz_in_t *in) {
    proto_msg_t req;
    int rfds[4];
    size_t rn = 0;
    if (proto_recv(fd, &req, rfds, 4, &rn) != 1) return;
    for (size_t i = 0; i < rn; i++) close(rfds[i]);
    CHECK(req.type == PROTO_HELLO && req.abi == SHOAL_ABI_VERSION && strcmp(req.name, "fuzz") == 0,
          "the runtime's hello: type %u abi %u name '%s'", req.type, req.abi, req.name);

    /* the segments, as a daemon makes them, then what the script changes */
    shm_layout_params_t lp;
    pick_params(in, &lp);
    static shm_layout_msg_t layout;
    make_layout(&lp, &layout);
    uint8_t seg_flags = in_u8(in);
    uint64_t mgmt_size = layout.hdr.mgmt_size;
    if (seg_flags & 1) mgmt_size -= 1 + in_u8(in) % 64 * 64; /* smaller than the layout says */
    int mfd = memfd_create("fuzz-mgmt", MFD_CLOEXEC);
    CHECK(mfd >= 0 && ftruncate(mfd, (off_t)mgmt_size) == 0, "memfd");
    const uint64_t map_len = layout.hdr.mgmt_size; /* the layout is changed below */
    uint8_t *mg = mmap(NULL, map_len, PROT_READ | PROT_WRITE, MAP_SHARED, mfd, 0);
    CHECK(mg != MAP_FAILED, "mmap");
    static shm_map_t dm; /* the daemon's view: the template, whatever the blob says */
    static shm_layout_msg_t own;
    own = layout;
    memset(&dm, 0, sizeof dm);
    bool live = !(seg_flags & 1); /* a segment the daemon set up */
    if (live) {
        dm.mgmt = mg;
        dm.shared_hdr = (shm_header_t *)mg;
        dm.mgmt_size = mgmt_size;
        shm_init(&dm, &layout.hdr, &lp);
        /* a hostile peer's writes: any 8 bytes of the segment */
        unsigned writes = seg_flags >> 5;
        for (unsigned k = 0; k < writes; k++) {
            uint64_t off = (uint64_t)in_u16(in) * 8 % (mgmt_size - 7);
            uint64_t v = in_u64(in);
            memcpy(mg + off, &v, 8);
        }
    }
    int fds[SHM_MAX_POOLS + 3];
    uint32_t nfd = 0;
    fds[nfd++] = mfd;
    for (uint32_t i = 0; i < lp.pool_count; i++) {
        int pfd = memfd_create("fuzz-pool", MFD_CLOEXEC);
        uint64_t psize = layout.pools[i].segment_size;
        if ((seg_flags & 2) && i == lp.pool_count - 1) psize -= 1; /* one byte short */
        CHECK(pfd >= 0 && ftruncate(pfd, (off_t)psize) == 0, "pool memfd");
        fds[nfd++] = pfd;
    }
    uint32_t send_fds = nfd;
    if (seg_flags & 4) send_fds = in_u8(in) % (nfd + 3); /* too few, or (dups) too many */
    for (uint32_t i = nfd; i < send_fds; i++) fds[i] = mfd;

    proto_msg_t w;
    memset(&w, 0, sizeof w);
    w.magic = PROTO_MAGIC;
    w.type = PROTO_WELCOME;
    w.slot = in_u8(in) % (lp.processes + 1); /* may be out of range */
    w.gen = 1;
    w.fd_count = nfd;
    snprintf(w.name, sizeof w.name, "fz");
    if (seg_flags & 8) xor_in(in, &w, 64); /* type, result, slot ... */
    w.magic = PROTO_MAGIC;
    (void)proto_send(fd, &w, fds, send_fds);
    if (seg_flags & 16) {
        /* a blob of the wrong size, or the layout with changes */
        uint8_t cut = in_u8(in);
        if (cut & 1) {
            (void)proto_send_blob(fd, &layout, sizeof layout - 1 - cut);
        } else {
            uint16_t n = in_u16(in);
            xor_in(in, &layout, n < sizeof layout ? n : sizeof layout);
            (void)proto_send_blob(fd, &layout, sizeof layout);
        }
    } else {
        (void)proto_send_blob(fd, &layout, sizeof layout);
    }
    for (uint32_t i = 0; i < nfd; i++) close(fds[i]);

    /* requests: a valid answer unless the script says otherwise; a created
     * port is set up in the segment as shoald does it (identity, queue,
     * service receivers and counts), so samples and requests flow */
    const shm_header_t *oh = &own.hdr;
    uint32_t next[5] = {0}, next_recv[2] = {0}, gen = 7;
    while (proto_recv(fd, &req, rfds, 4, &rn) == 1) {
        for (size_t i = 0; i < rn; i++) close(rfds[i]);
        proto_msg_t r;
        memset(&r, 0, sizeof r);
        r.type = PROTO_REPLY;
        uint8_t rf = in_u8(in);
        if (rf == 0xff) break; /* hang up instead */
        if (req.type == PROTO_PORT_CREATE && req.kind >= 1 && req.kind <= 4) {
            uint32_t k = req.kind, svc = (k >= SHOAL_PORT_CLIENT) % oh->service_limit;
            r.slot = oh->kind_base[k] + next[k]++ % oh->kind_limit[k];
            r.gen = ++gen;
            r.service = svc;
            shm_port_t *p = live ? shm_port(&dm, r.slot) : NULL;
            shm_service_t *sv = live ? shm_service(&dm, svc) : NULL;
            if (p && sv) {
                atomic_store(&p->state, PORT_FREE);
                atomic_store(&p->gen, r.gen);
                p->kind = k;
                p->service = svc;
                p->process = w.slot;
                p->pid = (int32_t)getpid();
                p->policy = req.policy;
                p->history = k == SHOAL_PORT_PUBLISHER ? req.history : 0;
                atomic_store(&p->next_sequence, 1);
                uint32_t cap = req.capacity && req.capacity <= oh->queue_capacity ? req.capacity : oh->queue_capacity;
                queue_init(&dm, p, cap);
                atomic_store(&p->state, PORT_ACTIVE);
                atomic_store(&sv->state, 1);
                snprintf(sv->name, sizeof sv->name, "%s", req.name);
                if (k == SHOAL_PORT_SUBSCRIBER || k == SHOAL_PORT_SERVER) {
                    uint32_t *nr = &next_recv[svc & 1];
                    if (*nr < oh->receivers_per_service) {
                        atomic_store(&shm_service_receivers(&dm, sv)[*nr], r.slot + 1);
                        atomic_store(&sv->receiver_hi, ++*nr);
                    }
                }
                if (k == SHOAL_PORT_SERVER) atomic_fetch_add(&sv->servers, 1);
                if (k == SHOAL_PORT_SUBSCRIBER) atomic_fetch_add(&sv->subscribers, 1);
            }
        } else if (req.type == PROTO_PORT_DESTROY) {
            shm_port_t *p = live ? shm_port(&dm, req.slot) : NULL;
            if (p) atomic_store(&p->state, PORT_FREE);
        } else {
            r.result = SHOAL_ERR_INVALID_ARGUMENT;
        }
        if (rf & 1) {
            r.result = in_u8(in) % 25;
            in_bytes(in, r.text, in_u8(in) % 48);
            if (rf & 32) memset(r.text, 'x', sizeof r.text); /* unterminated */
        }
        if (rf & 2) r.slot = in_u32(in);
        if (rf & 4) r.service = in_u32(in);
        if (rf & 8) r.type = in_u8(in);
        if (rf & 16) {
            proto_msg_t extra = r; /* an answer nobody asked for, first */
            reply(fd, &extra);
        }
        reply(fd, &r);
    }
    munmap(mg, map_len);
}

static void *daemon_main(void *arg) {
    (void)arg;
    for (;;) {
        int fd = accept4(H.listen_fd, NULL, NULL, SOCK_CLOEXEC);
        if (fd < 0) continue;
        pthread_mutex_lock(&H.mu);
        fuzz_in_t in = {H.script, H.len};
        pthread_mutex_unlock(&H.mu);
        struct timeval tv = {.tv_sec = 2};
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        serve(fd, &in);
        close(fd);
        pthread_mutex_lock(&H.mu);
        H.done = true;
        pthread_cond_signal(&H.cv);
        pthread_mutex_unlock(&H.mu);
    }
    return NULL;
}

static void start_daemon(void) {
    snprintf(H.dir, sizeof H.dir, "/tmp/shoal-fuzz-%d", (int)getpid());
    CHECK(mkdir(H.dir, 0700) == 0 || errno == EEXIST, "mkdir %s", H.dir);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    snprintf(a.sun_path, sizeof a.sun_path, "%s/fz.sock", H.dir);
    unlink(a.sun_path);
    H.listen_fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    CHECK(H.listen_fd >= 0 && bind(H.listen_fd, (struct sockaddr *)&a, sizeof a) == 0 &&
              listen(H.listen_fd, 4) == 0,
          "listen on %s: %s", a.sun_path, strerror(errno));
    pthread_t t;
    CHECK(pthread_create(&t, NULL, daemon_main, NULL) == 0, "daemon thread");
    pthread_detach(t);
}

static void cleanup_dir(void) {
    char p[128];
    snprintf(p, sizeof p, "%s/fz.sock", H.dir);
    unlink(p);
    rmdir(H.dir);
}

static void check_runtime(shoal_runtime_t *rt) {
    shm_map_t *m = &rt->map;
    check_map(m, true);
    uint32_t np = shoal_runtime_pool_count(rt);
    CHECK(np == m->hdr->pool_count, "pool count");
    for (uint32_t i = 0; i <= np; i++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        shoal_result_t r = shoal_runtime_pool_info(rt, i, &pi);
        CHECK((r == SHOAL_OK) == (i < np), "pool_info(%u) = %d", i, r);
    }
    for (uint32_t s = 0; s <= shoal_runtime_port_slots(rt); s++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        if (shoal_runtime_port_info(rt, s, &pi) == SHOAL_OK)
            CHECK(memchr(pi.service, 0, sizeof pi.service) && memchr(pi.process, 0, sizeof pi.process),
                  "unterminated port info");
    }
    shoal_domain_info_t di = SHOAL_DOMAIN_INFO_INIT;
    CHECK(shoal_runtime_domain_info(rt, &di) == SHOAL_OK, "domain_info");
    CHECK(memchr(di.config_source, 0, sizeof di.config_source) && memchr(di.domain, 0, sizeof di.domain),
          "unterminated domain info");
    for (uint32_t s = 0; s <= m->hdr->process_limit; s++) {
        shoal_process_info_t pi = SHOAL_PROCESS_INFO_INIT;
        if (shoal_runtime_process_info(rt, s, &pi) == SHOAL_OK)
            CHECK(memchr(pi.name, 0, sizeof pi.name), "unterminated process name");
    }
}

static void check_port(shoal_runtime_t *rt, const port_base_t *b, uint32_t kind) {
    const shm_map_t *m = &rt->map;
    CHECK(shm_slot_kind(m, b->slot) == kind && b->p == shm_port(m, b->slot), "port slot %u", b->slot);
    inside("port", b->slot, b->p, sizeof *b->p, m->mgmt, m->mgmt_size);
    CHECK(shm_service(m, b->service) != NULL, "port service %u", b->service);
}

static void check_error_text(void) {
    const char *e = shoal_last_error_message();
    CHECK(e != NULL && strnlen(e, 4096) < 4096, "last error message");
}

static void mode_handshake(fuzz_in_t *in) {
    uint8_t plan = in_u8(in);
    uint8_t kinds = in_u8(in), sizes = in_u8(in);
    pthread_mutex_lock(&H.mu);
    H.script = in->p;
    H.len = in->n;
    H.done = false;
    pthread_mutex_unlock(&H.mu);

    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = "fz";
    o.runtime_dir = H.dir;
    shoal_runtime_t *rt = NULL;
    shoal_result_t rc = shoal_runtime_create(&rt, "fuzz", &o);
    if (rc == SHOAL_OK) {
        check_runtime(rt);
        shoal_publisher_t *pub = NULL;
        shoal_subscriber_t *sub = NULL;
        shoal_client_t *cli = NULL;
        shoal_server_t *srv = NULL;
        for (unsigned i = 0; i < (plan & 7u); i++) {
            uint32_t kind = 1 + (kinds >> (2 * (i % 4))) % 4;
            shoal_result_t r;
            switch (kind) {
            case SHOAL_PORT_PUBLISHER: {
                shoal_publisher_options_t po;
                shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
                po.history = plan >> 6;
                po.full_policy = SHOAL_FULL_DROP_OLDEST;
                shoal_publisher_t *p = NULL;
                r = shoal_publisher_create(&p, rt, "t", &po);
                if (r == SHOAL_OK) check_port(rt, &p->b, kind), pub = p;
                break;
            }
            case SHOAL_PORT_SUBSCRIBER: {
                shoal_subscriber_options_t so;
                shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
                so.history = plan >> 6;
                shoal_subscriber_t *s = NULL;
                r = shoal_subscriber_create(&s, rt, "t", &so);
                if (r == SHOAL_OK) check_port(rt, &s->b, kind), sub = s;
                break;
            }
            case SHOAL_PORT_CLIENT: {
                shoal_client_options_t co;
                shoal_client_options_init(&co, SHOAL_CLIENT_OPTIONS_VERSION);
                co.full_policy = SHOAL_FULL_REJECT;
                co.send_timeout_ns = 0;
                shoal_client_t *c = NULL;
                r = shoal_client_create(&c, rt, "s", &co);
                if (r == SHOAL_OK) check_port(rt, &c->b, kind), cli = c;
                break;
            }
            default: {
                shoal_server_options_t so;
                shoal_server_options_init(&so, SHOAL_SERVER_OPTIONS_VERSION);
                so.full_policy = SHOAL_FULL_REJECT;
                so.send_timeout_ns = 0;
                shoal_server_t *s = NULL;
                r = shoal_server_create(&s, rt, "s", &so);
                if (r == SHOAL_OK) check_port(rt, &s->b, kind), srv = s;
                break;
            }
            }
            if (r != SHOAL_OK) check_error_text();
        }
        /* the hot path on whatever the segment holds */
        shoal_chunk_t *c = NULL;
        uint64_t size = 1 + (uint64_t)sizes * 3;
        shoal_waitset_t *ws = NULL;
        if ((plan & 16) && shoal_waitset_create(&ws, rt) == SHOAL_OK) {
            if (sub) (void)shoal_waitset_attach_subscriber(ws, sub, 1);
            if (srv) (void)shoal_waitset_attach_server(ws, srv, 2);
            if (cli) (void)shoal_waitset_attach_client(ws, cli, 3);
        }
        if (pub && shoal_publisher_loan(pub, size, &c) == SHOAL_OK) {
            memset(shoal_chunk_payload(c), 0xa5, (size_t)shoal_chunk_size(c));
            (void)shoal_chunk_set_size(c, size / 2 + 1);
            (void)shoal_publisher_publish(pub, c);
            (void)shoal_publisher_subscriber_count(pub);
        }
        if (cli && shoal_client_loan(cli, size, &c) == SHOAL_OK) (void)shoal_client_send(cli, c, NULL);
        if (ws) {
            uint64_t tags[4];
            size_t n = 0;
            (void)shoal_waitset_wait(ws, tags, 4, &n, 0);
            CHECK(n <= 4, "waitset returned %zu tags", n);
        }
        if (sub && shoal_subscriber_take(sub, &c, 0) == SHOAL_OK) {
            touch(shoal_chunk_payload(c), (size_t)shoal_chunk_size(c));
            (void)shoal_chunk_sequence_id(c);
            shoal_chunk_release(c);
        }
        if (srv && shoal_server_take(srv, &c, 0) == SHOAL_OK) {
            shoal_chunk_t *resp = NULL;
            if (shoal_server_loan_response(srv, c, size, &resp) == SHOAL_OK) (void)shoal_server_send(srv, resp);
            shoal_chunk_release(c);
        }
        if (cli && shoal_client_take(cli, &c, 0) == SHOAL_OK) shoal_chunk_release(c);
        if (cli && (plan & 32) && shoal_client_loan(cli, size, &c) == SHOAL_OK) {
            shoal_chunk_t *resp = NULL;
            if (shoal_client_call(cli, c, &resp, 0) == SHOAL_OK) shoal_chunk_release(resp);
            (void)shoal_client_server_count(cli);
        }
        if (ws && (plan & 64)) shoal_waitset_destroy(ws); /* else the runtime destroys it */
        if (plan & 8) shoal_publisher_destroy(pub); /* a port destroyed before the runtime */
        shoal_runtime_destroy(rt);
    } else {
        CHECK(rt == NULL, "failed create left a runtime");
        check_error_text();
    }
    /* the scripted daemon is done with this input before the next one */
    struct timespec dl;
    clock_gettime(CLOCK_REALTIME, &dl);
    dl.tv_sec += 20;
    pthread_mutex_lock(&H.mu);
    while (!H.done)
        CHECK(pthread_cond_timedwait(&H.cv, &H.mu, &dl) != ETIMEDOUT, "scripted daemon stuck");
    pthread_mutex_unlock(&H.mu);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    ev_fd = eventfd(0, EFD_CLOEXEC);
    payload_base = mmap(NULL, PAYLOAD_RESERVE, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    CHECK(ev_fd >= 0 && payload_base != MAP_FAILED, "setup");
    start_daemon();
    atexit(cleanup_dir);
    memfd = memfd_create("fuzz-layout", MFD_CLOEXEC);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 8192) return -1;
    fuzz_in_t in = {data, size};
    uint8_t mode = in_u8(&in) % 3;
    int before = fuzz_count_low_fds(256);
    switch (mode) {
    case 0: mode_proto(&in); break;
    case 1: mode_layout(&in); break;
    default: mode_handshake(&in); break;
    }
    int after = fuzz_count_low_fds(256);
    if (after != before) fuzz_list_fds();
    CHECK(after == before, "mode %u: %d descriptors open before, %d after", mode, before, after);
    return 0;
}
