/* Fault injection, SQLite style, where the fault is a process killed at any
 * point (SIGKILL), a hostile process scribbling on the management segment,
 * or the daemon itself killed.
 *
 *  1. Kill storm: victims run every operation of every port kind against
 *     long-lived peers in other processes and are SIGKILLed after a random
 *     delay (seeded PRNG; SHOAL_FAULTS_SEED=<n> replays, SHOAL_FAULTS_ITERS=<n>
 *     changes the count). After each batch the peers pause and drain, and the
 *     pools must come back: chunks lost to the documented crash windows are
 *     counted and reported (not failed on), but double frees, corruption,
 *     crashes and hangs fail the test.
 *  2. Hostile shared memory: garbage in queue cells, held slots and chunk
 *     headers of the test's own ports and of a peer's receive queue; the peer
 *     gets errors or skips the entries and the daemon survives and cleans up.
 *  3. Daemon killed: clients get SHOAL_ERR_DAEMON_UNAVAILABLE, takes with
 *     timeouts return, a new daemon starts on the same domain.
 *
 * Tests named known_* reproduce crash windows deterministically (by leaving
 * shared memory exactly as a process killed at that instruction would): the
 * bugs they first showed are fixed, and they guard the fixes. Set
 * SHOAL_FAULTS_KNOWN_BUGS=0 to skip them.
 *
 * The test reaches the mapping through the library internals (core/shm.h,
 * runtime/internal.h); it only reads and writes shared memory with the
 * header's inline resolvers, it links no library code besides libshoal.
 */
#include "harness.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/futex.h>

#include "core/shm.h"
#include "runtime/internal.h"

/* ---- small helpers --------------------------------------------------------- */

static const shm_map_t *map_of(const shoal_runtime_t *rt)
{
    return &((const struct shoal_runtime *)rt)->map;
}

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: good enough, and the seed alone replays a run */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Children inherit cmocka's handlers for SIGSEGV and friends, which would
 * longjmp back into the test runner inside the child; a crash in a child
 * must look like a crash to th_join(). */
static void child_init(void)
{
    const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

static int known_bugs_enabled(void)
{
    return env_int("SHOAL_FAULTS_KNOWN_BUGS", 1) != 0;
}

/* Global slot of a live port (kind, pid, service), or UINT32_MAX. */
static uint32_t port_slot(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service)
{
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    if (th_find_port(rt, kind, pid, service, &pi) != 0)
        return UINT32_MAX;
    return map_of(rt)->hdr->kind_base[pi.kind] + pi.id;
}

/* Payload stamp: a header and a byte pattern derived from (pid, seq). A
 * receiver that sees anything else saw a chunk written by two owners. */
#define STAMP_MAGIC 0x5354414dU
typedef struct stamp {
    uint32_t magic;
    uint32_t pid;
    uint64_t seq;
    uint64_t len;
} stamp_t;

static void stamp_write(void *payload, uint64_t len, uint64_t seq)
{
    stamp_t s = { STAMP_MAGIC, (uint32_t)getpid(), seq, len };
    memcpy(payload, &s, sizeof s);
    uint8_t *b = payload;
    uint8_t k = (uint8_t)(s.pid * 31u + seq * 7u);
    for (uint64_t i = sizeof s; i < len; i++)
        b[i] = (uint8_t)(k + i);
}

static int stamp_ok(const void *payload, uint64_t len)
{
    stamp_t s;
    if (!payload || len < sizeof s)
        return 0;
    memcpy(&s, payload, sizeof s);
    if (s.magic != STAMP_MAGIC || s.len != len)
        return 0;
    const uint8_t *b = payload;
    uint8_t k = (uint8_t)(s.pid * 31u + s.seq * 7u);
    for (uint64_t i = sizeof s; i < len; i++)
        if (b[i] != (uint8_t)(k + i))
            return 0;
    return 1;
}

/* ---- pool audit (quiescent moments only) ------------------------------------ */

typedef struct pool_audit {
    uint32_t count;
    uint32_t raw_in_use;    /* pool counter, spares included */
    uint32_t reported;      /* shoal_runtime_pool_info in_use */
    uint32_t free_len;      /* chunks on the free list */
    uint32_t spares;        /* parked in ports */
    uint32_t held_nonfree;  /* not free, not spare: someone holds a reference (or it leaked) */
    uint32_t zero_ref_lost; /* not free, not spare, refcount 0: lost in the free step */
    int cycle;              /* the free list loops: a double free */
    int bad_link;           /* a free-list link out of range */
    uint32_t free_with_refs; /* on the free list but referenced: a double free */
} pool_audit_t;

static void audit_pool(const shoal_runtime_t *rt, uint32_t pi, pool_audit_t *a)
{
    const shm_map_t *m = map_of(rt);
    memset(a, 0, sizeof *a);
    shm_pool_t *p = shm_pool(m, pi);
    a->count = m->pools[pi].chunk_count;
    a->raw_in_use = atomic_load(&p->in_use);
    shoal_pool_info_t info = SHOAL_POOL_INFO_INIT;
    if (shoal_runtime_pool_info(rt, pi, &info) == SHOAL_OK)
        a->reported = info.in_use;
    uint8_t *state = calloc(a->count, 1); /* 1 free, 2 spare */
    if (!state)
        return;
    uint32_t top = (uint32_t)atomic_load(&p->free_head);
    for (uint32_t steps = 0; top != 0; steps++) {
        if (top > a->count) {
            a->bad_link = 1;
            break;
        }
        if (state[top - 1] || steps > a->count) {
            a->cycle = 1;
            break;
        }
        state[top - 1] = 1;
        a->free_len++;
        shm_chunk_t *c = shm_chunk(m, m->pools[pi].first_chunk + top - 1);
        if (atomic_load(&c->refcount) != 0)
            a->free_with_refs++;
        top = atomic_load(&c->next_free);
    }
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        shm_port_t *port = shm_port(m, s);
        for (int k = 0; k < SHM_PORT_SPARES; k++) {
            uint64_t v = atomic_load(&port->spare[k]);
            if (v == 0 || v - 1 < m->pools[pi].first_chunk || v - 1 >= m->pools[pi].first_chunk + a->count)
                continue;
            uint32_t idx = (uint32_t)(v - 1 - m->pools[pi].first_chunk);
            if (state[idx] == 0) {
                state[idx] = 2;
                a->spares++;
            }
        }
    }
    for (uint32_t i = 0; i < a->count; i++) {
        if (state[i])
            continue;
        shm_chunk_t *c = shm_chunk(m, m->pools[pi].first_chunk + i);
        if (atomic_load(&c->refcount) == 0)
            a->zero_ref_lost++;
        else
            a->held_nonfree++;
    }
    free(state);
}

/* Diagnosis of lost chunks: for every chunk that is neither free nor a
 * spare, counts the references that can be found (held tables, queues,
 * history rings of live ports) against its refcount and prints the chunks
 * with fewer references found than counted. */
static void explain_lost(const shoal_runtime_t *rt)
{
    const shm_map_t *m = map_of(rt);
    uint32_t total = m->hdr->chunk_total;
    uint32_t *found = calloc(total, sizeof *found);
    uint8_t *free_or_spare = calloc(total, 1);
    if (!found || !free_or_spare)
        goto out;
    for (uint32_t pi = 0; pi < m->hdr->pool_count; pi++) {
        shm_pool_t *p = shm_pool(m, pi);
        uint32_t top = (uint32_t)atomic_load(&p->free_head);
        for (uint32_t steps = 0; top && top <= m->pools[pi].chunk_count && steps <= m->pools[pi].chunk_count; steps++) {
            free_or_spare[m->pools[pi].first_chunk + top - 1] = 1;
            top = atomic_load(&shm_chunk(m, m->pools[pi].first_chunk + top - 1)->next_free);
        }
    }
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        shm_port_t *p = shm_port(m, s);
        for (int k = 0; k < SHM_PORT_SPARES; k++) {
            uint64_t v = atomic_load(&p->spare[k]);
            if (v && v - 1 < total)
                free_or_spare[v - 1] = 1;
        }
        if (atomic_load(&p->state) == PORT_FREE)
            continue;
        _Atomic uint64_t *held = shm_port_held(m, p);
        for (uint32_t i = 0; i < m->hdr->chunks_per_port; i++) {
            uint64_t v = atomic_load(&held[i]);
            if (v && !(v & SHM_REF_TOMBSTONE) && v - 1 < total)
                found[v - 1]++;
        }
        _Atomic uint64_t *hist = shm_port_history(m, p);
        for (uint32_t i = 0; i < m->hdr->history_max; i++) {
            uint64_t v = atomic_load(&hist[i]);
            if (v && v - 1 < total)
                found[v - 1]++;
        }
        shm_queue_cell_t *cells = shm_port_cells(m, p);
        uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1);
        for (uint64_t q = atomic_load(&p->deq_pos); q < atomic_load(&p->enq_pos); q++) {
            uint64_t v = atomic_load(&cells[q & mask].value);
            if (v && !(v & SHM_REF_TOMBSTONE) && v - 1 < total)
                found[v - 1]++;
        }
    }
    for (uint32_t i = 0; i < total; i++) {
        if (free_or_spare[i])
            continue;
        shm_chunk_t *c = shm_chunk(m, i);
        uint32_t rc = atomic_load(&c->refcount);
        if (found[i] < rc || rc == 0)
            print_message("  lost chunk %u (pool #%u index %u): refcount %u, %u reference(s) "
                          "found; flags %s%s%s, size %llu, origin slot %u\n",
                          i, c->pool, c->index, rc, found[i],
                          c->flags & CHUNK_FLAG_REQUEST ? "request" : "",
                          c->flags & CHUNK_FLAG_RESPONSE ? "response" : "",
                          c->flags & CHUNK_FLAG_SAMPLE ? "sample" : "",
                          (unsigned long long)c->size, c->origin_slot);
    }
out:
    free(found);
    free(free_or_spare);
}

/* Ports whose slot is not FREE (ACTIVE or stuck CLOSING); prints the
 * CLOSING ones when `verbose`. */
static uint32_t slots_not_free_ex(const shoal_runtime_t *rt, uint32_t *closing, int verbose)
{
    const shm_map_t *m = map_of(rt);
    uint32_t n = 0;
    *closing = 0;
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        shm_port_t *p = shm_port(m, s);
        uint32_t st = atomic_load(&p->state);
        if (st != PORT_FREE)
            n++;
        if (st == PORT_CLOSING) {
            (*closing)++;
            if (verbose) {
                shm_service_t *sv = shm_service(m, p->service);
                print_message("  slot %u stuck CLOSING: kind %u '%s' (pid %d), pushers %u, "
                              "queued %llu\n",
                              s, p->kind, sv ? sv->name : "?", p->pid, atomic_load(&p->pushers),
                              (unsigned long long)(atomic_load(&p->enq_pos) -
                                                   atomic_load(&p->deq_pos)));
            }
        }
    }
    return n;
}

static uint32_t slots_not_free(const shoal_runtime_t *rt, uint32_t *closing)
{
    return slots_not_free_ex(rt, closing, 0);
}

/* ===========================================================================
 * 1. Kill storm
 * =========================================================================== */

static const char *const STORM_CONFIG =
    "[limits]\n"
    "processes = 64\n"
    "publishers = 128\n"
    "subscribers = 128\n"
    "servers = 512\n"
    "clients = 128\n"
    "services = 64\n"
    "chunks_per_port = 64\n"
    "queue_capacity = 64\n"
    "history = 4\n"
    "[pools]\n"
    "64 = 1024\n"
    "1K = 256\n"
    "64K = 16\n";

enum { PEER_SUB, PEER_PUB, PEER_SRV, PEER_CLI, NPEERS };
enum { MAX_VICTIMS = 6, MSG_LEN = 240 };

static const char *const PEER_NAMES[NPEERS] = { "peer-sub", "peer-pub", "peer-srv", "peer-cli" };

typedef struct storm_shared {
    _Atomic int pause_epoch; /* peers quiesce and ack when it grows */
    _Atomic int run_epoch;   /* peers resume once it reaches their ack */
    _Atomic int stop;
    _Atomic int acked[NPEERS];
    _Atomic int peer_ready[NPEERS];
    _Atomic uint32_t peer_wedged[NPEERS]; /* queued entries a drain could not take */
    _Atomic int victim_ready[MAX_VICTIMS];
    _Atomic uint64_t corrupt;     /* stamp mismatches */
    _Atomic uint64_t unexpected;  /* unexpected result codes */
    _Atomic uint64_t victim_ops;
    _Atomic uint64_t peer_ops;
    _Atomic uint64_t peer_received;
    _Atomic uint32_t msg_lock;
    char msg[MSG_LEN];
} storm_shared_t;

typedef struct storm_ctx {
    th_daemon_t *d;
    storm_shared_t *sh;
    int index;
    uint64_t seed;
    int history; /* victim publisher keeps history */
} storm_ctx_t;

static void note(storm_shared_t *sh, _Atomic uint64_t *counter, const char *what,
                 shoal_result_t rc)
{
    atomic_fetch_add(counter, 1);
    uint32_t z = 0;
    if (atomic_compare_exchange_strong(&sh->msg_lock, &z, 1)) {
        if (sh->msg[0] == 0)
            snprintf(sh->msg, sizeof sh->msg, "[pid %d] %s: %s: %s", (int)getpid(), what,
                     shoal_strerror(rc), shoal_last_error_message());
        atomic_store(&sh->msg_lock, 0);
    }
}

/* rc must be one of the listed acceptable results. */
static int accept_rc(storm_shared_t *sh, const char *what, shoal_result_t rc, int n, ...)
{
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        if ((shoal_result_t)va_arg(ap, int) == rc) {
            va_end(ap);
            return 1;
        }
    va_end(ap);
    note(sh, &sh->unexpected, what, rc);
    return 0;
}

static void check_chunk_stamp(storm_shared_t *sh, shoal_chunk_t *c, const char *what)
{
    if (!stamp_ok(shoal_chunk_payload(c), shoal_chunk_size(c)))
        note(sh, &sh->corrupt, what, SHOAL_ERR_CORRUPT);
}

static uint64_t pick_size(uint64_t *r)
{
    uint64_t x = rng_next(r) % 100;
    if (x < 60)
        return 32 + rng_next(r) % 33; /* 64 B pool */
    if (x < 95)
        return 100 + rng_next(r) % 900; /* 1 KiB pool */
    return 2000 + rng_next(r) % 60000; /* 64 KiB pool: scarce */
}

/* ---- victims: every operation of every port kind, until killed ------------ */

enum { VICTIM_HOLD = 4 };

static int victim_main(void *arg)
{
    child_init();
    storm_ctx_t *x = arg;
    storm_shared_t *sh = x->sh;
    uint64_t r = x->seed;
    shoal_runtime_t *rt = NULL;
    shoal_result_t rc = th_runtime_create(x->d, "victim", &rt);
    if (rc != SHOAL_OK) {
        note(sh, &sh->unexpected, "victim runtime_create", rc);
        return 1;
    }
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    shoal_client_t *cl = NULL;
    shoal_server_t *sv = NULL;
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.history = x->history ? 2 : 0;
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.history = x->history ? 2 : 0;
    if ((rc = shoal_publisher_create(&pub, rt, "storm", &po)) != SHOAL_OK ||
        (rc = shoal_subscriber_create(&sub, rt, "storm2", &so)) != SHOAL_OK ||
        (rc = shoal_client_create(&cl, rt, "svc", NULL)) != SHOAL_OK ||
        (rc = shoal_server_create(&sv, rt, "svc2", NULL)) != SHOAL_OK) {
        note(sh, &sh->unexpected, "victim port create", rc);
        return 1;
    }
    atomic_store(&sh->victim_ready[x->index], 1);
    shoal_chunk_t *hold[VICTIM_HOLD] = { 0 };
    uint64_t seq = 0;
    for (;;) {
        shoal_chunk_t *c = NULL, *resp = NULL;
        uint64_t op = rng_next(&r) % 10;
        uint64_t size = pick_size(&r);
        switch (op) {
        case 0:
        case 1: /* publisher: loan, write, publish */
            rc = shoal_publisher_loan(pub, size, &c);
            if (rc == SHOAL_OK) {
                stamp_write(shoal_chunk_payload(c), size, ++seq);
                rc = shoal_publisher_publish(pub, c);
                /* a queue wedged by a killed sender's hole refuses until the
                 * daemon fills the hole (300 ms, or the next audit) */
                accept_rc(sh, "victim publish", rc, 2, SHOAL_OK, SHOAL_ERR_QUEUE_FULL);
            } else {
                accept_rc(sh, "victim loan", rc, 1, SHOAL_ERR_POOL_EXHAUSTED);
            }
            break;
        case 2:
        case 3: /* subscriber: take, check, release (or keep a few) */
            rc = shoal_subscriber_take(sub, &c, SHOAL_TIMEOUT_POLL);
            if (rc == SHOAL_OK) {
                check_chunk_stamp(sh, c, "victim take sample");
                int k = (int)(rng_next(&r) % (VICTIM_HOLD * 2));
                if (k < VICTIM_HOLD && !hold[k]) {
                    hold[k] = c;
                } else {
                    accept_rc(sh, "victim release", shoal_chunk_release(c), 1, SHOAL_OK);
                }
            } else {
                accept_rc(sh, "victim sub take", rc, 1, SHOAL_ERR_TIMEOUT);
            }
            break;
        case 4: /* client: loan, write, send */
            rc = shoal_client_loan(cl, size, &c);
            if (rc == SHOAL_OK) {
                stamp_write(shoal_chunk_payload(c), size, ++seq);
                rc = shoal_client_send(cl, c, NULL);
                accept_rc(sh, "victim client send", rc, 3, SHOAL_OK, SHOAL_ERR_QUEUE_FULL,
                          SHOAL_ERR_NO_SERVER);
            } else {
                accept_rc(sh, "victim client loan", rc, 1, SHOAL_ERR_POOL_EXHAUSTED);
            }
            break;
        case 5: /* client: take responses, release */
            rc = shoal_client_take(cl, &c, SHOAL_TIMEOUT_POLL);
            if (rc == SHOAL_OK) {
                check_chunk_stamp(sh, c, "victim take response");
                accept_rc(sh, "victim release", shoal_chunk_release(c), 1, SHOAL_OK);
            } else {
                accept_rc(sh, "victim client take", rc, 2, SHOAL_ERR_TIMEOUT,
                          SHOAL_ERR_SERVER_GONE);
            }
            break;
        case 6: /* client: call */
            rc = shoal_client_loan(cl, size, &c);
            if (rc == SHOAL_OK) {
                stamp_write(shoal_chunk_payload(c), size, ++seq);
                rc = shoal_client_call(cl, c, &resp, 2 * TH_MS);
                if (rc == SHOAL_OK) {
                    check_chunk_stamp(sh, resp, "victim call response");
                    accept_rc(sh, "victim release", shoal_chunk_release(resp), 1, SHOAL_OK);
                } else {
                    accept_rc(sh, "victim call", rc, 5, SHOAL_ERR_TIMEOUT, SHOAL_ERR_QUEUE_FULL,
                              SHOAL_ERR_NO_SERVER, SHOAL_ERR_SERVER_GONE, SHOAL_ERR_HELD_LIMIT);
                }
            } else {
                accept_rc(sh, "victim client loan", rc, 1, SHOAL_ERR_POOL_EXHAUSTED);
            }
            break;
        case 7:
        case 8: /* server: take, loan_response, write, send, release */
            rc = shoal_server_take(sv, &c, SHOAL_TIMEOUT_POLL);
            if (rc == SHOAL_OK) {
                check_chunk_stamp(sh, c, "victim take request");
                rc = shoal_server_loan_response(sv, c, size, &resp);
                if (rc == SHOAL_OK) {
                    stamp_write(shoal_chunk_payload(resp), size, ++seq);
                    rc = shoal_server_send(sv, resp);
                    accept_rc(sh, "victim server send", rc, 3, SHOAL_OK, SHOAL_ERR_CLIENT_GONE,
                              SHOAL_ERR_QUEUE_FULL);
                } else {
                    accept_rc(sh, "victim loan_response", rc, 2, SHOAL_ERR_CLIENT_GONE,
                              SHOAL_ERR_POOL_EXHAUSTED);
                }
                accept_rc(sh, "victim release", shoal_chunk_release(c), 1, SHOAL_OK);
            } else {
                accept_rc(sh, "victim server take", rc, 1, SHOAL_ERR_TIMEOUT);
            }
            break;
        default: /* loan and keep, or release what is kept */
        {
            int k = (int)(rng_next(&r) % VICTIM_HOLD);
            if (hold[k]) {
                accept_rc(sh, "victim release held", shoal_chunk_release(hold[k]), 1, SHOAL_OK);
                hold[k] = NULL;
            } else {
                rc = shoal_publisher_loan(pub, size, &hold[k]);
                if (rc != SHOAL_OK) {
                    hold[k] = NULL;
                    accept_rc(sh, "victim loan", rc, 1, SHOAL_ERR_POOL_EXHAUSTED);
                } else {
                    stamp_write(shoal_chunk_payload(hold[k]), size, ++seq);
                }
            }
            break;
        }
        }
        atomic_fetch_add_explicit(&sh->victim_ops, 1, memory_order_relaxed);
    }
    return 0;
}

/* ---- long-lived peers -------------------------------------------------------- */

typedef struct peer {
    storm_ctx_t *x;
    shoal_runtime_t *rt;
    shoal_publisher_t *pub;
    shoal_subscriber_t *sub;
    shoal_client_t *cl;
    shoal_server_t *sv;
    shoal_chunk_t *hold[3];
    uint64_t seq;
} peer_t;

static void peer_release_all(peer_t *p)
{
    for (int k = 0; k < 3; k++)
        if (p->hold[k]) {
            accept_rc(p->x->sh, "peer release held", shoal_chunk_release(p->hold[k]), 1,
                      SHOAL_OK);
            p->hold[k] = NULL;
        }
}

/* Releases what the peer holds and drains its receive queue; returns the
 * entries left queued that could not be taken (a wedged queue). */
static uint32_t peer_quiesce(peer_t *p)
{
    storm_shared_t *sh = p->x->sh;
    peer_release_all(p);
    int kind = p->sub ? SHOAL_PORT_SUBSCRIBER
                      : p->sv ? SHOAL_PORT_SERVER : p->cl ? SHOAL_PORT_CLIENT : 0;
    if (!kind)
        return 0;
    for (int guard = 0; guard < 100000; guard++) {
        shoal_chunk_t *c = NULL;
        shoal_result_t rc;
        if (p->sub)
            rc = shoal_subscriber_take(p->sub, &c, SHOAL_TIMEOUT_POLL);
        else if (p->sv)
            rc = shoal_server_take(p->sv, &c, SHOAL_TIMEOUT_POLL);
        else
            rc = shoal_client_take(p->cl, &c, SHOAL_TIMEOUT_POLL);
        if (rc == SHOAL_ERR_SERVER_GONE)
            continue;
        if (rc != SHOAL_OK)
            break;
        accept_rc(sh, "peer drain release", shoal_chunk_release(c), 1, SHOAL_OK);
    }
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    if (th_find_port(p->rt, kind, getpid(), NULL, &pi) == 0)
        return pi.queued;
    return 0;
}

static void peer_keep_or_release(peer_t *p, shoal_chunk_t *c, uint64_t *r)
{
    int k = (int)(rng_next(r) % 12);
    if (k < 3 && !p->hold[k]) {
        p->hold[k] = c;
        return;
    }
    if (k < 3) {
        accept_rc(p->x->sh, "peer release", shoal_chunk_release(p->hold[k]), 1, SHOAL_OK);
        p->hold[k] = c;
        return;
    }
    accept_rc(p->x->sh, "peer release", shoal_chunk_release(c), 1, SHOAL_OK);
}

static void peer_op(peer_t *p, uint64_t *r)
{
    storm_shared_t *sh = p->x->sh;
    shoal_chunk_t *c = NULL, *resp = NULL;
    shoal_result_t rc;
    uint64_t size = pick_size(r);
    switch (p->x->index) {
    case PEER_SUB:
        rc = shoal_subscriber_take(p->sub, &c, 1 * TH_MS);
        if (rc == SHOAL_OK) {
            atomic_fetch_add(&sh->peer_received, 1);
            check_chunk_stamp(sh, c, "peer take sample");
            peer_keep_or_release(p, c, r);
        } else {
            accept_rc(sh, "peer sub take", rc, 1, SHOAL_ERR_TIMEOUT);
        }
        break;
    case PEER_PUB:
        rc = shoal_publisher_loan(p->pub, size, &c);
        if (rc == SHOAL_OK) {
            stamp_write(shoal_chunk_payload(c), size, ++p->seq);
            accept_rc(sh, "peer publish", shoal_publisher_publish(p->pub, c), 1, SHOAL_OK);
        } else {
            accept_rc(sh, "peer loan", rc, 1, SHOAL_ERR_POOL_EXHAUSTED);
        }
        sleep_us(100);
        break;
    case PEER_SRV:
        rc = shoal_server_take(p->sv, &c, 1 * TH_MS);
        if (rc == SHOAL_OK) {
            atomic_fetch_add(&sh->peer_received, 1);
            check_chunk_stamp(sh, c, "peer take request");
            rc = shoal_server_loan_response(p->sv, c, size, &resp);
            if (rc == SHOAL_OK) {
                stamp_write(shoal_chunk_payload(resp), size, ++p->seq);
                accept_rc(sh, "peer server send", shoal_server_send(p->sv, resp), 3, SHOAL_OK,
                          SHOAL_ERR_CLIENT_GONE, SHOAL_ERR_QUEUE_FULL);
            } else {
                accept_rc(sh, "peer loan_response", rc, 2, SHOAL_ERR_CLIENT_GONE,
                          SHOAL_ERR_POOL_EXHAUSTED);
            }
            peer_keep_or_release(p, c, r);
        } else {
            accept_rc(sh, "peer server take", rc, 1, SHOAL_ERR_TIMEOUT);
        }
        break;
    case PEER_CLI:
        rc = shoal_client_loan(p->cl, size, &c);
        if (rc != SHOAL_OK) {
            accept_rc(sh, "peer client loan", rc, 1, SHOAL_ERR_POOL_EXHAUSTED);
            sleep_us(200);
            break;
        }
        stamp_write(shoal_chunk_payload(c), size, ++p->seq);
        if (rng_next(r) % 2) {
            rc = shoal_client_call(p->cl, c, &resp, 2 * TH_MS);
            if (rc == SHOAL_OK) {
                atomic_fetch_add(&sh->peer_received, 1);
                check_chunk_stamp(sh, resp, "peer call response");
                peer_keep_or_release(p, resp, r);
            } else {
                accept_rc(sh, "peer call", rc, 5, SHOAL_ERR_TIMEOUT, SHOAL_ERR_QUEUE_FULL,
                          SHOAL_ERR_NO_SERVER, SHOAL_ERR_SERVER_GONE, SHOAL_ERR_HELD_LIMIT);
                if (rc == SHOAL_ERR_NO_SERVER)
                    sleep_us(200);
            }
        } else {
            rc = shoal_client_send(p->cl, c, NULL);
            accept_rc(sh, "peer client send", rc, 3, SHOAL_OK, SHOAL_ERR_QUEUE_FULL,
                      SHOAL_ERR_NO_SERVER);
            rc = shoal_client_take(p->cl, &resp, 1 * TH_MS);
            if (rc == SHOAL_OK) {
                atomic_fetch_add(&sh->peer_received, 1);
                check_chunk_stamp(sh, resp, "peer take response");
                peer_keep_or_release(p, resp, r);
            } else {
                accept_rc(sh, "peer client take", rc, 3, SHOAL_ERR_TIMEOUT, SHOAL_ERR_SERVER_GONE,
                          SHOAL_ERR_NO_SERVER);
            }
        }
        break;
    default:
        break;
    }
    atomic_fetch_add_explicit(&sh->peer_ops, 1, memory_order_relaxed);
}

static int peer_main(void *arg)
{
    child_init();
    storm_ctx_t *x = arg;
    storm_shared_t *sh = x->sh;
    uint64_t r = x->seed;
    peer_t p = { .x = x };
    WCHECK_OK(th_runtime_create(x->d, PEER_NAMES[x->index], &p.rt));
    switch (x->index) {
    case PEER_SUB: WCHECK_OK(shoal_subscriber_create(&p.sub, p.rt, "storm", NULL)); break;
    case PEER_PUB: WCHECK_OK(shoal_publisher_create(&p.pub, p.rt, "storm2", NULL)); break;
    case PEER_SRV: WCHECK_OK(shoal_server_create(&p.sv, p.rt, "svc", NULL)); break;
    default: WCHECK_OK(shoal_client_create(&p.cl, p.rt, "svc2", NULL)); break;
    }
    atomic_store(&sh->peer_ready[x->index], 1);
    int acked = 0;
    while (!atomic_load(&sh->stop)) {
        int pe = atomic_load(&sh->pause_epoch);
        if (pe > acked) {
            atomic_store(&sh->peer_wedged[x->index], peer_quiesce(&p));
            acked = pe;
            atomic_store(&sh->acked[x->index], pe);
            while (atomic_load(&sh->run_epoch) < pe && !atomic_load(&sh->stop))
                sleep_us(200);
            continue;
        }
        peer_op(&p, &r);
    }
    peer_quiesce(&p);
    shoal_publisher_destroy(p.pub);
    shoal_subscriber_destroy(p.sub);
    shoal_client_destroy(p.cl);
    shoal_server_destroy(p.sv);
    shoal_runtime_destroy(p.rt);
    return 0;
}

/* ---- the storm ------------------------------------------------------------------ */

typedef struct storm_totals {
    uint32_t leaked[SHM_MAX_POOLS];      /* chunks lost for good, per pool */
    uint32_t leak_events;                /* batches that lost at least one chunk */
    uint32_t zero_ref_lost[SHM_MAX_POOLS];
    uint32_t wedged_batches;             /* batches where a peer queue could not drain */
    uint32_t kills;
    uint32_t kills_before_ready;
    uint32_t victim_exits;               /* victims that exited by themselves */
    int32_t drift[SHM_MAX_POOLS];        /* count - free - raw in_use */
} storm_totals_t;

static uint64_t storm_seed(void)
{
    const char *v = getenv("SHOAL_FAULTS_SEED");
    if (v && *v)
        return strtoull(v, NULL, 0);
    return (uint64_t)th_now_ns() ^ ((uint64_t)getpid() << 32);
}

static void dump_storm_state(const shoal_runtime_t *rt, const storm_shared_t *sh)
{
    fprintf(stderr, "storm state: corrupt=%llu unexpected=%llu first: %s\n",
            (unsigned long long)sh->corrupt, (unsigned long long)sh->unexpected, sh->msg);
    for (uint32_t i = 0; i < shoal_runtime_pool_count(rt); i++) {
        pool_audit_t a;
        audit_pool(rt, i, &a);
        fprintf(stderr,
                "  pool #%u: count %u raw_in_use %u reported %u free %u spares %u held %u "
                "zero_ref_lost %u cycle %d bad_link %d free_with_refs %u\n",
                i, a.count, a.raw_in_use, a.reported, a.free_len, a.spares, a.held_nonfree,
                a.zero_ref_lost, a.cycle, a.bad_link, a.free_with_refs);
    }
    uint32_t slots = shoal_runtime_port_slots(rt);
    for (uint32_t s = 0; s < slots; s++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        if (shoal_runtime_port_info(rt, s, &pi) == SHOAL_OK)
            fprintf(stderr, "  port %u: kind %d '%s' pid %d held %u queued %u\n", s,
                    (int)pi.kind, pi.service, pi.pid, pi.held, pi.queued);
    }
}

/* The allocator invariants that must hold whatever was killed: no chunk on
 * the free list twice, no referenced chunk on it, counters in range. */
static void assert_allocator_sane(const shoal_runtime_t *rt, const storm_shared_t *sh, int it)
{
    for (uint32_t i = 0; i < shoal_runtime_pool_count(rt); i++) {
        pool_audit_t a;
        audit_pool(rt, i, &a);
        /* free_len + raw_in_use > count alone is counter drift (a process
         * killed in pool_free between its CAS and the in_use decrement), not a
         * double free: it is reported by the caller, the capacity check at the
         * end measures what is really loanable */
        if (a.cycle || a.bad_link || a.free_with_refs || a.raw_in_use > a.count ||
            a.free_len > a.count) {
            fprintf(stderr, "iteration %d: allocator invariant broken in pool #%u\n", it, i);
            dump_storm_state(rt, sh);
            fail_msg("double free or corrupt free list in pool #%u (see above)", i);
        }
    }
}

static void test_kill_storm(void **state)
{
    th_fixture_t *fx = *state;
    uint64_t seed = storm_seed();
    int iters = env_int("SHOAL_FAULTS_ITERS", 200);
    print_message("kill storm: seed %llu (replay with SHOAL_FAULTS_SEED=%llu), %d iterations\n",
                  (unsigned long long)seed, (unsigned long long)seed, iters);
    uint64_t rng = seed;
    int history_victims = known_bugs_enabled();
    storm_shared_t *sh = th_shared_alloc(sizeof *sh);
    assert_non_null(sh);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "storm-observer");
    uint32_t npools = shoal_runtime_pool_count(rt);

    static storm_ctx_t peers[NPEERS];
    pid_t peer_pid[NPEERS];
    for (int i = 0; i < NPEERS; i++) {
        peers[i] = (storm_ctx_t){ &fx->daemon, sh, i, rng_next(&rng), 0 };
        peer_pid[i] = th_spawn(peer_main, &peers[i]);
        assert_true(peer_pid[i] > 0);
    }
    int64_t t0 = th_now_ns();
    for (int i = 0; i < NPEERS; i++)
        while (!atomic_load(&sh->peer_ready[i])) {
            assert_true(th_now_ns() - t0 < 5 * TH_SEC);
            sleep_us(500);
        }

    storm_totals_t tot;
    memset(&tot, 0, sizeof tot);
    uint32_t baseline[SHM_MAX_POOLS] = { 0 }; /* chunks known lost so far */
    int64_t start = th_now_ns();
    int it;
    for (it = 0; it < iters; it++) {
        /* a batch of victims, each killed 0..3 ms after it was ready (or, one in
         * four, after it was forked: registration and port creation) */
        static storm_ctx_t vctx[MAX_VICTIMS];
        pid_t vpid[MAX_VICTIMS];
        int64_t fork_at[MAX_VICTIMS], kill_at[MAX_VICTIMS];
        int64_t delay[MAX_VICTIMS];
        int from_fork[MAX_VICTIMS], killed[MAX_VICTIMS];
        int nv = 2 + (int)(rng_next(&rng) % 3);
        for (int v = 0; v < nv; v++) {
            atomic_store(&sh->victim_ready[v], 0);
            /* publishers with history too: the history lock records its
             * owner, so a publisher killed inside it cannot hang the daemon
             * (test_known_killed_in_history_lock_hangs_daemon) */
            int hist = (int)(rng_next(&rng) % 2) && history_victims;
            vctx[v] = (storm_ctx_t){ &fx->daemon, sh, v, rng_next(&rng), hist };
            delay[v] = (int64_t)(rng_next(&rng) % 3001) * 1000; /* ns */
            from_fork[v] = rng_next(&rng) % 4 == 0;
            killed[v] = 0;
            fork_at[v] = th_now_ns();
            vpid[v] = th_spawn(victim_main, &vctx[v]);
            assert_true(vpid[v] > 0);
            kill_at[v] = from_fork[v] ? fork_at[v] + delay[v] : 0;
        }
        for (int left = nv; left > 0;) {
            int64_t now = th_now_ns();
            for (int v = 0; v < nv; v++) {
                if (killed[v])
                    continue;
                if (kill_at[v] == 0 && atomic_load(&sh->victim_ready[v]))
                    kill_at[v] = now + delay[v];
                if (kill_at[v] != 0 && now >= kill_at[v]) {
                    if (!atomic_load(&sh->victim_ready[v]))
                        tot.kills_before_ready++;
                    kill(vpid[v], SIGKILL);
                    killed[v] = 1;
                    left--;
                } else if (now - fork_at[v] > 5 * TH_SEC) {
                    dump_storm_state(rt, sh);
                    fail_msg("iteration %d: victim %d (pid %d) not ready after 5 s", it, v,
                             (int)vpid[v]);
                }
            }
            if (left)
                sleep_us(50);
        }
        for (int v = 0; v < nv; v++) {
            int code = th_join(vpid[v], 5000);
            if (code == 128 + SIGKILL)
                tot.kills++;
            else
                tot.victim_exits++;
            assert_true(code >= 0); /* reaped */
        }
        /* the daemon removes the ports of the dead */
        for (int v = 0; v < nv; v++) {
            uint32_t n = th_wait_port_count(rt, 0, vpid[v], NULL, 0, 2000);
            if (n != 0) {
                dump_storm_state(rt, sh);
                const shm_map_t *m = map_of(rt);
                for (uint32_t sl = 0; sl < m->hdr->port_slots; sl++) {
                    shm_port_t *pp = shm_port(m, sl);
                    if (pp->pid == vpid[v] && atomic_load(&pp->state) != PORT_FREE)
                        fprintf(stderr, "  victim slot %u: state %u kind %u history_lock %u "
                                        "pushers %u enq %llu deq %llu\n", sl,
                                atomic_load(&pp->state), pp->kind, atomic_load(&pp->history_lock),
                                atomic_load(&pp->pushers),
                                (unsigned long long)atomic_load(&pp->enq_pos),
                                (unsigned long long)atomic_load(&pp->deq_pos));
                }
                char path[64], buf[512] = "";
                snprintf(path, sizeof path, "/proc/%d/stat", (int)fx->daemon.pid);
                FILE *f = fopen(path, "r");
                if (f) {
                    if (!fgets(buf, sizeof buf, f))
                        buf[0] = 0;
                    fclose(f);
                }
                fprintf(stderr, "  daemon /proc stat: %s\n", buf);
                if (getenv("SHOAL_FAULTS_GDB")) {
                    char cmd[128];
                    snprintf(cmd, sizeof cmd, "gdb -p %d -batch -ex bt 2>&1 | tail -15",
                             (int)fx->daemon.pid);
                    if (system(cmd) != 0)
                        fprintf(stderr, "  (gdb failed)\n");
                }
                fail_msg("iteration %d: %u ports of killed pid %d still listed after 2 s", it, n,
                         (int)vpid[v]);
            }
        }
        /* the peers survive, pause, release and drain */
        for (int i = 0; i < NPEERS; i++) {
            int status;
            if (waitpid(peer_pid[i], &status, WNOHANG) == peer_pid[i]) {
                dump_storm_state(rt, sh);
                fail_msg("iteration %d: long-lived %s died (status 0x%x)", it, PEER_NAMES[i],
                         status);
            }
        }
        atomic_store(&sh->pause_epoch, it + 1);
        int64_t pause_at = th_now_ns();
        for (int i = 0; i < NPEERS; i++)
            while (atomic_load(&sh->acked[i]) < it + 1) {
                if (th_now_ns() - pause_at > 3 * TH_SEC) {
                    dump_storm_state(rt, sh);
                    fail_msg("iteration %d: long-lived %s (pid %d) did not pause within 3 s: "
                             "hung in a shoal call (seed %llu)",
                             it, PEER_NAMES[i], (int)peer_pid[i], (unsigned long long)seed);
                }
                sleep_us(100);
            }
        uint32_t wedged = 0;
        for (int i = 0; i < NPEERS; i++)
            wedged += atomic_load(&sh->peer_wedged[i]);
        if (wedged) {
            tot.wedged_batches++;
            print_message("iteration %d: %u entries left in a long-lived peer's queue after its "
                          "drain (tombstones the daemon pushed late, or a wedged queue)\n",
                          it, wedged);
        }
        /* everything comes back, except what the crash windows lose */
        uint32_t want = 0, have = 0;
        for (uint32_t p = 0; p < npools; p++)
            want += baseline[p];
        have = th_wait_in_use(rt, want, 2000);
        assert_allocator_sane(rt, sh, it);
        if (have != want) {
            uint32_t lost = 0;
            char where[256] = "";
            size_t used = 0;
            for (uint32_t p = 0; p < npools; p++) {
                shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
                assert_ok(shoal_runtime_pool_info(rt, p, &pi));
                assert_true(pi.in_use <= pi.chunk_count);
                if (pi.in_use > baseline[p]) {
                    uint32_t n = pi.in_use - baseline[p];
                    lost += n;
                    tot.leaked[p] += n;
                    int k = snprintf(where + used, sizeof where - used, "%spool #%u (%llu B): %u",
                                     used ? ", " : "", p, (unsigned long long)pi.chunk_size, n);
                    if (k > 0 && (size_t)k < sizeof where - used)
                        used += (size_t)k;
                    baseline[p] = pi.in_use;
                } else if (pi.in_use < baseline[p]) {
                    baseline[p] = pi.in_use; /* a stuck queue drained after all */
                }
            }
            if (lost) {
                tot.leak_events++;
                print_message("iteration %d: %u chunk(s) not returned within 2 s: %s\n", it, lost,
                              where);
                explain_lost(rt);
            }
        }
        for (uint32_t p = 0; p < npools; p++) {
            pool_audit_t a;
            audit_pool(rt, p, &a);
            /* popped from the free list by a process killed before it counted
             * it (pool_alloc), or pushed back by one killed before it
             * uncounted it (pool_free) */
            int32_t drift = (int32_t)(a.count - a.free_len - a.raw_in_use);
            if (drift != tot.drift[p]) {
                print_message("iteration %d: pool #%u: in_use counter off by %d (chunks neither "
                              "free nor counted: %d)\n",
                              it, p, -drift, drift);
                tot.drift[p] = drift;
            }
            tot.zero_ref_lost[p] = a.zero_ref_lost;
        }
        atomic_store(&sh->run_epoch, it + 1);
        if (th_now_ns() - start > 28 * TH_SEC) {
            print_message("kill storm: stopping after %d iterations (28 s budget)\n", it + 1);
            it++;
            break;
        }
    }
    int64_t elapsed = th_now_ns() - start;

    /* the end: peers stop and destroy everything */
    atomic_store(&sh->stop, 1);
    for (int i = 0; i < NPEERS; i++) {
        /* generous: under sanitizers on a loaded machine a peer's drain and
         * destroy round trips can take seconds; a hang still shows */
        int code = th_join(peer_pid[i], 20000);
        if (code != 0) {
            dump_storm_state(rt, sh);
            fail_msg("long-lived %s exited with %d (-1: hung)", PEER_NAMES[i], code);
        }
    }
    assert_int_equal(th_wait_port_count(rt, 0, 0, NULL, 0, 2000), 0);
    shoal_runtime_destroy(rt);
    rt = th_runtime(&fx->daemon, "storm-check");
    assert_int_equal(th_port_count(rt, 0, 0, NULL), 0);
    uint32_t closing = 0;
    uint32_t not_free = slots_not_free_ex(rt, &closing, 1);
    uint32_t want = 0;
    for (uint32_t p = 0; p < npools; p++)
        want += baseline[p];
    /* no process was registered between the old runtime and this one, so
     * the daemon rebuilt the pools: chunks stranded by kills came back */
    uint32_t in_use = th_wait_in_use(rt, 0, 2000);
    print_message("kill storm: %u chunk(s) stranded during the storm, %u in use after the "
                  "daemon's idle recovery\n", want, in_use);
    assert_int_equal(in_use, 0);
    assert_allocator_sane(rt, sh, it);

    /* How much of each pool can still be loaned: the real capacity left. */
    uint32_t total_lost = 0, total_count = 0;
    char summary[1024] = "";
    size_t used = 0;
    for (uint32_t p = 0; p < npools; p++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        assert_ok(shoal_runtime_pool_info(rt, p, &pi));
        pool_audit_t a;
        audit_pool(rt, p, &a);
        enum { PUBS = 32 };
        shoal_publisher_t *pubs[PUBS] = { 0 };
        uint32_t loaned = 0;
        int exhausted = 0;
        for (int k = 0; k < PUBS && !exhausted; k++) {
            char topic[32];
            snprintf(topic, sizeof topic, "capacity-%u-%d", p, k);
            assert_ok(shoal_publisher_create(&pubs[k], rt, topic, NULL));
            for (int j = 0; j < 64; j++) {
                shoal_chunk_t *c = NULL;
                shoal_result_t rc = shoal_publisher_loan(pubs[k], pi.chunk_size, &c);
                if (rc == SHOAL_ERR_POOL_EXHAUSTED) {
                    exhausted = 1;
                    break;
                }
                assert_ok(rc);
                loaned++;
            }
        }
        for (int k = 0; k < PUBS; k++)
            shoal_publisher_destroy(pubs[k]);
        uint32_t lost = pi.chunk_count - loaned;
        total_lost += lost;
        total_count += pi.chunk_count;
        int k = snprintf(summary + used, sizeof summary - used,
                         "pool #%u (%llu B x %u): %u lost (%u counted in_use, %u with refcount 0)"
                         "; ",
                         p, (unsigned long long)pi.chunk_size, pi.chunk_count, lost, pi.in_use,
                         a.zero_ref_lost);
        if (k > 0 && (size_t)k < sizeof summary - used)
            used += (size_t)k;
        /* the system keeps working: most of every pool is usable */
        assert_true(loaned >= pi.chunk_count / 2);
    }
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    print_message("kill storm summary (seed %llu): %d iterations in %.1f s, %u victims killed "
                  "(%u before their ports were ready), %u exited by themselves; victim ops %llu, "
                  "peer ops %llu (received %llu)\n",
                  (unsigned long long)seed, it, (double)elapsed / 1e9, tot.kills,
                  tot.kills_before_ready, tot.victim_exits, (unsigned long long)sh->victim_ops,
                  (unsigned long long)sh->peer_ops, (unsigned long long)sh->peer_received);
    print_message("kill storm leaks: %u chunk(s) lost of %u (%.3f per kill), %u batch(es) with a "
                  "leak, %u batch(es) with entries left after a peer's drain, %u port slot(s) not free after "
                  "everything closed (%u stuck CLOSING), in_use at the end %u: %s\n",
                  total_lost, total_count, tot.kills ? (double)total_lost / tot.kills : 0.0,
                  tot.leak_events, tot.wedged_batches, not_free, closing, in_use, summary);
    if (sh->corrupt || sh->unexpected)
        dump_storm_state(rt, sh);
    assert_int_equal(sh->corrupt, 0);
    assert_int_equal(sh->unexpected, 0);
    /* A sender killed inside port_deliver never gives its `pushers` count
     * back; the daemon frees such a slot after a grace period anyway. */
    if (known_bugs_enabled())
        assert_int_equal(closing, 0);
    shoal_runtime_destroy(rt);
    th_shared_free(sh, sizeof *sh);
}

/* ===========================================================================
 * 2. Hostile shared memory
 * =========================================================================== */

/* What a hostile process does to a queue: appends `value` like a producer. */
static int raw_push(const shm_map_t *m, shm_port_t *p, uint64_t value)
{
    shm_queue_cell_t *cells = shm_port_cells(m, p);
    uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1);
    uint64_t pos = atomic_load(&p->enq_pos);
    shm_queue_cell_t *c = &cells[pos & mask];
    if (atomic_load(&c->seq) != pos)
        return -1;
    atomic_store(&p->enq_pos, pos + 1);
    atomic_store(&c->value, value);
    atomic_store(&c->seq, pos + 1);
    atomic_fetch_add(&p->futex_seq, 1);
    syscall(SYS_futex, (uint32_t *)&p->futex_seq, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
    return 0;
}

typedef struct hostile_result {
    _Atomic uint32_t valid;      /* samples with an intact stamp */
    _Atomic uint32_t bad_stamp;  /* taken, size within bounds, stamp not intact */
    _Atomic uint32_t zero_size;  /* taken with size 0 (a corrupt size is capped) */
    _Atomic uint32_t errors;     /* takes that returned an error other than TIMEOUT */
    _Atomic uint32_t oversize;   /* size larger than the chunk: must stay 0 */
    _Atomic uint32_t done;
    char last_error[200];
} hostile_result_t;

typedef struct hostile_ctx {
    th_daemon_t *d;
    hostile_result_t *res;
    th_chan_t to_child, to_parent;
    uint32_t expect_valid;
} hostile_ctx_t;

static int hostile_peer(void *arg)
{
    child_init();
    hostile_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "hostile-peer", &rt));
    shoal_subscriber_t *sub = NULL;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "hostile", NULL));
    th_chan_send(&x->to_parent, 'r');
    WCHECK(th_chan_recv(&x->to_child, 10000) == 'g');
    /* hold two chunks so the parent can scribble next to them */
    shoal_chunk_t *keep[2] = { NULL, NULL };
    int timeouts = 0;
    while (timeouts < 3) {
        shoal_chunk_t *c = NULL;
        int enough = atomic_load(&x->res->valid) >= x->expect_valid;
        shoal_result_t rc = shoal_subscriber_take(sub, &c, enough ? 50 * TH_MS : 300 * TH_MS);
        if (rc == SHOAL_ERR_TIMEOUT) {
            timeouts = enough ? 3 : timeouts + 1;
            continue;
        }
        if (rc != SHOAL_OK) {
            atomic_fetch_add(&x->res->errors, 1);
            snprintf(x->res->last_error, sizeof x->res->last_error, "%s: %s",
                     shoal_strerror(rc), shoal_last_error_message());
            continue;
        }
        uint64_t size = shoal_chunk_size(c);
        const shm_map_t *m = map_of(rt);
        const shm_pool_geom_t *pl = shm_pool_geom(m, c->pool);
        if (pl && size > pl->chunk_size)
            atomic_fetch_add(&x->res->oversize, 1);
        if (size == 0)
            atomic_fetch_add(&x->res->zero_size, 1);
        else if (stamp_ok(shoal_chunk_payload(c), size))
            atomic_fetch_add(&x->res->valid, 1);
        else
            atomic_fetch_add(&x->res->bad_stamp, 1);
        if (!keep[0])
            keep[0] = c;
        else if (!keep[1])
            keep[1] = c;
        else
            WCHECK_OK(shoal_chunk_release(c));
    }
    atomic_store(&x->res->done, 1);
    th_chan_send(&x->to_parent, 'd');
    /* the parent scribbles into our held table, then kills us */
    (void)th_chan_recv(&x->to_child, 10000);
    return 0;
}

static void test_hostile_shared_memory(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "hostile");
    const shm_map_t *m = map_of(rt);
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "hostile", NULL));
    uint32_t total = m->hdr->chunk_total;

    hostile_result_t *res = th_shared_alloc(sizeof *res);
    assert_non_null(res);
    static hostile_ctx_t ctx;
    ctx = (hostile_ctx_t){ &fx->daemon, res, { -1, -1 }, { -1, -1 }, 0 };
    th_chan_open(&ctx.to_child);
    th_chan_open(&ctx.to_parent);
    const uint64_t garbage[] = {
        (uint64_t)total + 1,          /* one past the last chunk */
        (uint64_t)total + 12345,
        0x7fffffffffffffffULL,        /* huge, no tombstone bit */
        0x00000000ffffffffULL,
        0x4000000000000000ULL,
        SHM_REF_TOMBSTONE | 77,       /* a tombstone to a subscriber */
        0xffffffffffffffffULL,
    };
    enum { NGARBAGE = sizeof garbage / sizeof garbage[0], NVALID = 10 };
    /* + the chunk whose header lies about its pool: receivers take the pool
     * from the pool table, so it still arrives intact */
    ctx.expect_valid = NVALID + 1;
    pid_t pid = th_spawn(hostile_peer, &ctx);
    assert_true(pid > 0);
    assert_int_equal(th_chan_recv(&ctx.to_parent, 10000), 'r');
    uint32_t slot = port_slot(rt, SHOAL_PORT_SUBSCRIBER, pid, "hostile");
    assert_true(slot != UINT32_MAX);
    shm_port_t *peer = shm_port(m, slot);
    assert_non_null(peer);

    /* valid samples interleaved with garbage references in the peer's queue */
    for (int i = 0; i < NVALID; i++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_publisher_loan(pub, 200, &c));
        stamp_write(shoal_chunk_payload(c), 200, (uint64_t)i + 1);
        assert_ok(shoal_publisher_publish(pub, c));
        if (i < NGARBAGE)
            assert_int_equal(raw_push(m, peer, garbage[i]), 0);
    }
    /* a chunk whose header claims a size far beyond its chunk */
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, 200, &c));
    stamp_write(shoal_chunk_payload(c), 200, 1000);
    c->hdr->size = 1ULL << 40;
    assert_ok(shoal_publisher_publish(pub, c));
    /* a chunk whose header names a pool and index that do not exist: the
     * receiver must skip it (its reference is lost with it) */
    assert_ok(shoal_publisher_loan(pub, 200, &c));
    stamp_write(shoal_chunk_payload(c), 200, 1001);
    shm_chunk_t *bad_hdr = c->hdr;
    uint32_t saved_pool = bad_hdr->pool, saved_index = bad_hdr->index;
    bad_hdr->pool = 0xdeadbeefu;
    bad_hdr->index = 0xfeedfaceu;
    assert_ok(shoal_publisher_publish(pub, c));
    /* go */
    assert_int_equal(th_chan_send(&ctx.to_child, 'g'), 0);
    int got = th_chan_recv(&ctx.to_parent, 15000);
    if (got != 'd') {
        int code = th_join(pid, 1000);
        fail_msg("hostile peer did not finish its takes (got %d, exit %d: %s)", got, code,
                 code == 128 + SIGSEGV ? "SIGSEGV" : code == -1 ? "hung" : "exited");
    }
    print_message("hostile queue: peer took %u valid, %u zero-size, %u bad stamp, %u errors "
                  "(last: %s), %u oversize\n",
                  res->valid, res->zero_size, res->bad_stamp, res->errors, res->last_error,
                  res->oversize);
    assert_int_equal(res->valid, NVALID + 1);
    assert_int_equal(res->oversize, 0);
    assert_int_equal(res->bad_stamp, 0);
    assert_int_equal(res->zero_size, 1); /* the oversize header, capped */
    assert_true(res->errors <= 2);       /* only the two tombstones may surface */

    /* the broken-header chunk: restore it so that only its lost reference
     * remains; nobody can free a chunk whose header does not name it */
    bad_hdr->pool = saved_pool;
    bad_hdr->index = saved_index;
    uint32_t orphaned = atomic_load(&bad_hdr->refcount) ? 1 : 0;

    /* the peer holds two chunks; garbage goes into its other held slots,
     * then it is killed: the daemon must clean up around the garbage */
    _Atomic uint64_t *held = shm_port_held(m, peer);
    uint32_t scribbled = 0;
    for (uint32_t i = 0; i < m->hdr->chunks_per_port && scribbled < NGARBAGE; i++)
        if (atomic_load(&held[i]) == 0)
            atomic_store(&held[i], garbage[scribbled++]);
    /* and garbage left queued in its receive queue */
    for (uint32_t i = 0; i < NGARBAGE; i++)
        raw_push(m, peer, garbage[i]);
    kill(pid, SIGKILL);
    assert_int_equal(th_join(pid, 5000), 128 + SIGKILL);
    assert_int_equal(th_wait_port_count(rt, 0, pid, NULL, 0, 2000), 0);
    assert_int_equal(th_wait_in_use(rt, orphaned, 2000), orphaned);

    /* our own publisher: two loans, garbage (and a free chunk's valid
     * reference, which must not be freed twice) in the other held slots */
    shoal_chunk_t *a = NULL, *b = NULL;
    assert_ok(shoal_publisher_loan(pub, 500, &a));
    assert_ok(shoal_publisher_loan(pub, 500, &b));
    shm_port_t *own = shm_port(m, port_slot(rt, SHOAL_PORT_PUBLISHER, getpid(), "hostile"));
    assert_non_null(own);
    _Atomic uint64_t *oh = shm_port_held(m, own);
    int free_ref = -1;
    const shm_pool_geom_t *big = shm_pool_geom(m, m->hdr->pool_count - 1);
    for (uint32_t i = 0; i < big->chunk_count && free_ref < 0; i++)
        if (atomic_load(&shm_chunk(m, big->first_chunk + i)->refcount) == 0)
            free_ref = (int)(big->first_chunk + i);
    assert_true(free_ref >= 0);
    scribbled = 0;
    for (uint32_t i = 0; i < m->hdr->chunks_per_port && scribbled <= NGARBAGE; i++)
        if (atomic_load(&oh[i]) == 0) {
            atomic_store(&oh[i], scribbled < NGARBAGE ? garbage[scribbled] : (uint64_t)free_ref + 1);
            scribbled++;
        }
    /* our own queue-less port cannot be fed; our own subscriber can */
    shoal_subscriber_t *self = NULL;
    assert_ok(shoal_subscriber_create(&self, rt, "hostile-self", NULL));
    shm_port_t *selfp = shm_port(m, port_slot(rt, SHOAL_PORT_SUBSCRIBER, getpid(), "hostile-self"));
    assert_non_null(selfp);
    for (uint32_t i = 0; i < NGARBAGE; i++)
        assert_int_equal(raw_push(m, selfp, garbage[i]), 0);
    int errors = 0;
    for (uint32_t i = 0; i < NGARBAGE + 1; i++) {
        shoal_chunk_t *t = NULL;
        shoal_result_t rc = shoal_subscriber_take(self, &t, SHOAL_TIMEOUT_POLL);
        if (rc == SHOAL_ERR_TIMEOUT)
            break;
        assert_int_equal(rc, SHOAL_ERR_SERVER_GONE); /* only tombstones surface */
        errors++;
    }
    assert_true(errors <= 2);
    shoal_subscriber_destroy(self);
    shoal_publisher_destroy(pub); /* the daemon releases a, b and walks the garbage */
    assert_int_equal(th_wait_in_use(rt, orphaned, 2000), orphaned);

    /* the allocator is intact and the daemon still serves */
    for (uint32_t p = 0; p < shoal_runtime_pool_count(rt); p++) {
        pool_audit_t au;
        audit_pool(rt, p, &au);
        assert_int_equal(au.cycle, 0);
        assert_int_equal(au.free_with_refs, 0);
        assert_true(au.free_len + au.raw_in_use == au.count);
    }
    shoal_runtime_t *rt2 = th_runtime(&fx->daemon, "after-hostile");
    shoal_publisher_t *p2 = NULL;
    assert_ok(shoal_publisher_create(&p2, rt2, "after", NULL));
    shoal_chunk_t *cs[16];
    for (int i = 0; i < 16; i++)
        assert_ok(shoal_publisher_loan(p2, 64, &cs[i]));
    for (int i = 0; i < 16; i++)
        assert_ok(shoal_chunk_release(cs[i]));
    shoal_publisher_destroy(p2);
    shoal_runtime_destroy(rt2);
    print_message("hostile: daemon survived; %u chunk(s) orphaned by the broken header\n",
                  orphaned);
    th_chan_close(&ctx.to_child);
    th_chan_close(&ctx.to_parent);
    th_shared_free(res, sizeof *res);
    shoal_runtime_destroy(rt);
}

/* ===========================================================================
 * 3. The daemon killed while clients run
 * =========================================================================== */

typedef struct dk_result {
    _Atomic int step;
    _Atomic int64_t killed_at;     /* CLOCK_MONOTONIC, set by the parent */
    _Atomic int64_t woke_at[3];    /* take(FOREVER), waitset wait, WAIT send */
    int woke_rc[3];
    int after_rc[6];               /* loan, take, publish, call, server take, port create */
    int new_rt_rc, new_ok;
    char msg[300];
} dk_result_t;

typedef struct dk_ctx {
    th_daemon_t *d;
    dk_result_t *res;
    th_chan_t to_child, to_parent;
} dk_ctx_t;

typedef struct dk_waiter {
    dk_result_t *r;
    int which;
    shoal_subscriber_t *sub;
    shoal_waitset_t *ws;
    shoal_publisher_t *pub;
} dk_waiter_t;

/* Blocks forever in one kind of wait; the daemon's death must end it. */
static void *dk_wait_thread(void *arg)
{
    dk_waiter_t *w = arg;
    shoal_result_t rc;
    if (w->which == 0) {
        shoal_chunk_t *c = NULL;
        rc = shoal_subscriber_take(w->sub, &c, SHOAL_TIMEOUT_FOREVER);
        if (c)
            shoal_chunk_release(c);
    } else if (w->which == 1) {
        uint64_t tag;
        size_t n;
        rc = shoal_waitset_wait(w->ws, &tag, 1, &n, SHOAL_TIMEOUT_FOREVER);
    } else {
        /* WAIT policy into a full queue nobody drains: sleeps up to 60 s */
        do {
            shoal_chunk_t *c = NULL;
            rc = shoal_publisher_loan(w->pub, 64, &c);
            if (rc == SHOAL_OK)
                rc = shoal_publisher_publish(w->pub, c);
        } while (rc == SHOAL_OK);
    }
    w->r->woke_rc[w->which] = rc;
    atomic_store(&w->r->woke_at[w->which], th_now_ns());
    return NULL;
}

static int dk_child(void *arg)
{
    child_init();
    dk_ctx_t *x = arg;
    dk_result_t *r = x->res;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "dk-client", &rt));
    shoal_subscriber_t *sub = NULL, *full_sub = NULL, *ws_sub = NULL;
    shoal_publisher_t *pub = NULL, *wait_pub = NULL;
    shoal_client_t *cl = NULL;
    shoal_server_t *sv = NULL;
    shoal_waitset_t *ws = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "dk", NULL));
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "dk", NULL));
    WCHECK_OK(shoal_subscriber_create(&ws_sub, rt, "dk-ws", NULL));
    WCHECK_OK(shoal_client_create(&cl, rt, "dk-svc", NULL));
    WCHECK_OK(shoal_server_create(&sv, rt, "dk-svc", NULL));
    WCHECK_OK(shoal_waitset_create(&ws, rt));
    WCHECK_OK(shoal_waitset_attach_subscriber(ws, ws_sub, 7));
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.full_policy = SHOAL_FULL_WAIT;
    po.send_timeout_ns = 60 * TH_SEC;
    WCHECK_OK(shoal_publisher_create(&wait_pub, rt, "dk-full", &po));
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.queue_capacity = 1;
    WCHECK_OK(shoal_subscriber_create(&full_sub, rt, "dk-full", &so));
    shoal_chunk_t *held = NULL;
    WCHECK_OK(shoal_publisher_loan(pub, 100, &held));
    dk_waiter_t w[3] = { { r, 0, sub, NULL, NULL }, { r, 1, NULL, ws, NULL },
                         { r, 2, NULL, NULL, wait_pub } };
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        WCHECK(pthread_create(&th[i], NULL, dk_wait_thread, &w[i]) == 0);
    th_sleep_ms(100); /* all three asleep */
    th_chan_send(&x->to_parent, 'r');
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    /* every later call on the old runtime fails the same way, at once */
    shoal_chunk_t *c = NULL;
    r->after_rc[0] = shoal_publisher_loan(pub, 64, &c);
    r->after_rc[1] = shoal_subscriber_take(sub, &c, 0);
    r->after_rc[2] = shoal_publisher_publish(pub, held); /* consumes `held` */
    shoal_chunk_t *req = NULL;
    r->after_rc[3] = shoal_client_loan(cl, 64, &req);
    r->after_rc[4] = shoal_server_take(sv, &c, 200 * TH_MS);
    shoal_publisher_t *p2 = NULL;
    r->after_rc[5] = shoal_publisher_create(&p2, rt, "dk-new", NULL);
    snprintf(r->msg, sizeof r->msg, "%s", shoal_last_error_message());
    shoal_runtime_destroy(rt);
    atomic_store(&r->step, 1);
    th_chan_send(&x->to_parent, 'a');
    WCHECK(th_chan_recv(&x->to_child, 10000) == 'n');
    /* the recovery pattern: a new runtime once a daemon runs again */
    shoal_runtime_t *rt2 = NULL;
    r->new_rt_rc = th_runtime_create(x->d, "dk-again", &rt2);
    if (r->new_rt_rc != SHOAL_OK)
        return 2;
    WCHECK_OK(shoal_publisher_create(&pub, rt2, "dk", NULL));
    WCHECK_OK(shoal_subscriber_create(&sub, rt2, "dk", NULL));
    WCHECK_OK(shoal_publisher_loan(pub, 100, &c));
    stamp_write(shoal_chunk_payload(c), 100, 1);
    WCHECK_OK(shoal_publisher_publish(pub, c));
    WCHECK_OK(shoal_subscriber_take(sub, &c, TH_SEC));
    WCHECK(stamp_ok(shoal_chunk_payload(c), shoal_chunk_size(c)));
    WCHECK_OK(shoal_chunk_release(c));
    r->new_ok = 1;
    shoal_runtime_destroy(rt2);
    return 0;
}

/* The daemon's death is never silent: blocked waits wake within 100 ms with
 * SHOAL_ERR_DAEMON_UNAVAILABLE, later calls fail with it, and nothing keeps
 * running on the old segments next to a new daemon. */
static void test_daemon_killed(void **state)
{
    th_fixture_t *fx = *state;
    dk_result_t *r = th_shared_alloc(sizeof *r);
    assert_non_null(r);
    static dk_ctx_t ctx;
    ctx = (dk_ctx_t){ &fx->daemon, r, { -1, -1 }, { -1, -1 } };
    th_chan_open(&ctx.to_child);
    th_chan_open(&ctx.to_parent);
    pid_t pid = th_spawn(dk_child, &ctx);
    assert_true(pid > 0);
    assert_int_equal(th_chan_recv(&ctx.to_parent, 10000), 'r');
    atomic_store(&r->killed_at, th_now_ns());
    th_daemon_kill(&fx->daemon);
    /* a new runtime in this process: the daemon is gone */
    shoal_runtime_t *rt = NULL;
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = fx->daemon.domain;
    o.runtime_dir = fx->daemon.runtime_dir;
    int64_t t = th_now_ns();
    assert_rc(shoal_runtime_create(&rt, "late", &o), SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_true(th_now_ns() - t < TH_SEC);
    int got = th_chan_recv(&ctx.to_parent, 10000);
    if (got != 'a') {
        int code = th_join(pid, 1000);
        fail_msg("client did not finish after the daemon died (got %d, exit %d)", got, code);
    }
    const char *what[3] = { "take(FOREVER)", "waitset wait(FOREVER)", "WAIT-policy publish" };
    for (int i = 0; i < 3; i++) {
        double ms = (atomic_load(&r->woke_at[i]) - atomic_load(&r->killed_at)) / 1e6;
        print_message("daemon killed: %s woke after %.1f ms with %s\n", what[i], ms,
                      shoal_strerror(r->woke_rc[i]));
        assert_int_equal(r->woke_rc[i], SHOAL_ERR_DAEMON_UNAVAILABLE);
        assert_true(ms < 100.0);
    }
    for (int i = 0; i < 6; i++)
        assert_int_equal(r->after_rc[i], SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_contains(r->msg, "gone");
    /* a new daemon on the same domain takes over the leftovers */
    if (th_daemon_launch(&fx->daemon) != 0)
        fail_msg("a new shoald could not start on domain %s after SIGKILL", fx->daemon.domain);
    assert_int_equal(th_chan_send(&ctx.to_child, 'n'), 0);
    assert_int_equal(th_join(pid, 10000), 0);
    assert_int_equal(r->new_ok, 1);
    shoal_runtime_t *rt2 = th_runtime(&fx->daemon, "after-restart");
    assert_int_equal(th_pools_in_use(rt2), 0);
    assert_int_equal(th_port_count(rt2, 0, 0, NULL), 0);
    shoal_runtime_destroy(rt2);
    th_chan_close(&ctx.to_child);
    th_chan_close(&ctx.to_parent);
    th_shared_free(r, sizeof *r);
}

/* ===========================================================================
 * Crash windows reproduced deterministically (regressions of fixed bugs)
 * =========================================================================== */

typedef struct kb_ctx {
    th_daemon_t *d;
    th_chan_t to_child, to_parent;
    int mode;
} kb_ctx_t;

/* Subscriber process: takes with a 200 ms timeout until told to stop. */
static int kb_subscriber(void *arg)
{
    child_init();
    kb_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "kb-sub", &rt));
    shoal_subscriber_t *sub = NULL;
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.queue_capacity = 8;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "kb", &so));
    th_chan_send(&x->to_parent, 'r');
    WCHECK(th_chan_recv(&x->to_child, 10000) == 'g');
    int got = 0;
    for (int i = 0; i < 10 && got < 3; i++) {
        shoal_chunk_t *c = NULL;
        shoal_result_t rc = shoal_subscriber_take(sub, &c, 200 * TH_MS);
        if (rc == SHOAL_OK) {
            got++;
            shoal_chunk_release(c);
        }
    }
    th_chan_send(&x->to_parent, (char)('0' + got));
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
    return 0;
}

/* A registered process that only waits to be killed: the dead sender. */
static int kb_idle(void *arg)
{
    child_init();
    kb_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "kb-victim", &rt));
    th_chan_send(&x->to_parent, 'v');
    for (;;)
        pause();
    return 0;
}

/* A producer killed between claiming a queue cell (enq_pos CAS) and
 * publishing it (seq store) leaves a hole; after its death the daemon fills
 * it and the consumer goes on. */
static void test_known_producer_killed_mid_push(void **state)
{
    if (!known_bugs_enabled())
        skip();
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "kb-pub");
    const shm_map_t *m = map_of(rt);
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "kb", NULL));
    static kb_ctx_t ctx;
    ctx = (kb_ctx_t){ &fx->daemon, { -1, -1 }, { -1, -1 }, 0 };
    th_chan_open(&ctx.to_child);
    th_chan_open(&ctx.to_parent);
    pid_t pid = th_spawn(kb_subscriber, &ctx);
    assert_int_equal(th_chan_recv(&ctx.to_parent, 10000), 'r');
    shm_port_t *sp = shm_port(m, port_slot(rt, SHOAL_PORT_SUBSCRIBER, pid, "kb"));
    assert_non_null(sp);
    /* exactly what a publisher killed after its enq_pos CAS leaves behind */
    static kb_ctx_t vctx;
    vctx = (kb_ctx_t){ &fx->daemon, { -1, -1 }, { -1, -1 }, 0 };
    th_chan_open(&vctx.to_child);
    th_chan_open(&vctx.to_parent);
    pid_t victim = th_spawn(kb_idle, &vctx);
    assert_int_equal(th_chan_recv(&vctx.to_parent, 10000), 'v');
    atomic_fetch_add(&sp->pushers, 1);
    atomic_fetch_add(&sp->enq_pos, 1);
    kill(victim, SIGKILL);
    assert_int_equal(th_join(victim, 5000), 128 + SIGKILL);
    th_chan_close(&vctx.to_child);
    th_chan_close(&vctx.to_parent);
    for (int i = 0; i < 3; i++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_publisher_loan(pub, 64, &c));
        assert_ok(shoal_publisher_publish(pub, c));
    }
    assert_int_equal(th_chan_send(&ctx.to_child, 'g'), 0);
    int got = th_chan_recv(&ctx.to_parent, 5000);
    print_message("producer killed mid-push: the subscriber took %d of 3 samples published "
                  "after the hole\n",
                  got - '0');
    assert_int_equal(th_join(pid, 5000), 0);
    uint32_t closing = 0;
    /* the dead sender never lowers `pushers`: the daemon waits out a grace
     * period, then frees the slot anyway */
    int64_t until = th_now_ns() + 2000 * TH_MS;
    do {
        closing = 0;
        slots_not_free(rt, &closing);
        if (closing)
            th_sleep_ms(20);
    } while (closing && th_now_ns() < until);
    print_message("after the subscriber closed: %u port slot(s) stuck CLOSING, in_use %u\n",
                  closing, th_pools_in_use(rt));
    th_chan_close(&ctx.to_child);
    th_chan_close(&ctx.to_parent);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
    assert_int_equal(got, '3');
    assert_int_equal(closing, 0);
}

/* A hostile (or torn) cell sequence number makes the consumer spin inside
 * queue_pop: a take with a timeout never returns. */
static void test_known_corrupt_cell_seq_hangs_take(void **state)
{
    if (!known_bugs_enabled())
        skip();
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "kb-hostile");
    const shm_map_t *m = map_of(rt);
    static kb_ctx_t ctx;
    ctx = (kb_ctx_t){ &fx->daemon, { -1, -1 }, { -1, -1 }, 1 };
    th_chan_open(&ctx.to_child);
    th_chan_open(&ctx.to_parent);
    pid_t pid = th_spawn(kb_subscriber, &ctx);
    assert_int_equal(th_chan_recv(&ctx.to_parent, 10000), 'r');
    shm_port_t *sp = shm_port(m, port_slot(rt, SHOAL_PORT_SUBSCRIBER, pid, "kb"));
    assert_non_null(sp);
    shm_queue_cell_t *cells = shm_port_cells(m, sp);
    uint64_t pos = atomic_load(&sp->deq_pos);
    atomic_store(&cells[pos & sp->queue_mask].seq, pos + 1000);
    assert_int_equal(th_chan_send(&ctx.to_child, 'g'), 0);
    int got = th_chan_recv(&ctx.to_parent, 3000);
    /* undo the damage so that the subscriber (and the daemon's drain of its
     * queue, which spins the same way) can finish */
    atomic_store(&cells[pos & sp->queue_mask].seq, pos);
    if (got < 0)
        got = th_chan_recv(&ctx.to_parent, 3000) >= 0 ? -3 : -1;
    int code = th_join(pid, 5000);
    print_message("corrupt cell seq: subscriber %s (5 takes of 200 ms each)\n",
                  got >= '0'  ? "returned"
                  : got == -3 ? "hung for 3 s, until the cell was repaired"
                              : "hung");
    th_chan_close(&ctx.to_child);
    th_chan_close(&ctx.to_parent);
    shoal_runtime_destroy(rt);
    assert_true(got >= '0');
    assert_int_equal(code, 0);
}

/* A hostile header field (chunk_total) is trusted after the one validation
 * at map time: every resolver then indexes past the mapping. */
static int kb_header_peer(void *arg)
{
    child_init();
    kb_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "kb-hdr", &rt));
    shoal_subscriber_t *sub = NULL;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "kb", NULL));
    th_chan_send(&x->to_parent, 'r');
    WCHECK(th_chan_recv(&x->to_child, 10000) == 'g');
    shoal_chunk_t *c = NULL;
    shoal_result_t rc = shoal_subscriber_take(sub, &c, 200 * TH_MS);
    if (rc == SHOAL_OK)
        shoal_chunk_release(c);
    (void)shoal_runtime_pool_info(rt, 0, &(shoal_pool_info_t)SHOAL_POOL_INFO_INIT);
    th_chan_send(&x->to_parent, 'd');
    shoal_runtime_destroy(rt);
    return 0;
}

static void test_known_corrupt_header_crashes_peer(void **state)
{
    if (!known_bugs_enabled())
        skip();
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "kb-hdr-writer");
    const shm_map_t *m = map_of(rt);
    static kb_ctx_t ctx;
    ctx = (kb_ctx_t){ &fx->daemon, { -1, -1 }, { -1, -1 }, 2 };
    th_chan_open(&ctx.to_child);
    th_chan_open(&ctx.to_parent);
    pid_t pid = th_spawn(kb_header_peer, &ctx);
    assert_int_equal(th_chan_recv(&ctx.to_parent, 10000), 'r');
    shm_port_t *sp = shm_port(m, port_slot(rt, SHOAL_PORT_SUBSCRIBER, pid, "kb"));
    assert_non_null(sp);
    /* a reference far beyond the real chunk table, made "valid" by a
     * hostile chunk_total */
    uint32_t saved = m->hdr->chunk_total;
    assert_int_equal(raw_push(m, sp, (uint64_t)1 << 31), 0);
    m->hdr->chunk_total = UINT32_MAX;
    assert_int_equal(th_chan_send(&ctx.to_child, 'g'), 0);
    int got = th_chan_recv(&ctx.to_parent, 3000);
    int code = th_join(pid, 3000);
    m->hdr->chunk_total = saved;
    print_message("corrupt header: peer %s (exit %d)\n",
                  got == 'd' ? "survived" : code == 128 + SIGSEGV ? "crashed with SIGSEGV"
                                                                  : "failed",
                  code);
    th_chan_close(&ctx.to_child);
    th_chan_close(&ctx.to_parent);
    shoal_runtime_destroy(rt);
    assert_int_equal(code, 0);
}

/* A publisher killed inside history_add() leaves its history lock taken;
 * the daemon closing the dead port spins on it for ever. */
static int kb_history_pub(void *arg)
{
    child_init();
    kb_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "kb-hist", &rt));
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.history = 2;
    shoal_publisher_t *pub = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "kb-hist", &po));
    for (int i = 0; i < 2; i++) {
        shoal_chunk_t *c = NULL;
        WCHECK_OK(shoal_publisher_loan(pub, 64, &c));
        WCHECK_OK(shoal_publisher_publish(pub, c));
    }
    th_chan_send(&x->to_parent, 'r');
    (void)th_chan_recv(&x->to_child, 10000);
    return 0;
}

static void test_known_killed_in_history_lock_hangs_daemon(void **state)
{
    if (!known_bugs_enabled())
        skip();
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "kb-hist-observer");
    const shm_map_t *m = map_of(rt);
    static kb_ctx_t ctx;
    ctx = (kb_ctx_t){ &fx->daemon, { -1, -1 }, { -1, -1 }, 3 };
    th_chan_open(&ctx.to_child);
    th_chan_open(&ctx.to_parent);
    pid_t pid = th_spawn(kb_history_pub, &ctx);
    assert_int_equal(th_chan_recv(&ctx.to_parent, 10000), 'r');
    shm_port_t *pp = shm_port(m, port_slot(rt, SHOAL_PORT_PUBLISHER, pid, "kb-hist"));
    assert_non_null(pp);
    /* exactly what SIGKILL inside history_add()'s critical section leaves:
     * the lock word holds its owner's pid */
    atomic_store(&pp->history_lock, (uint32_t)pid);
    kill(pid, SIGKILL);
    assert_int_equal(th_join(pid, 5000), 128 + SIGKILL);
    /* the daemon frees the slot once the port is closed */
    int64_t until = th_now_ns() + 1500 * TH_MS;
    while (atomic_load(&pp->state) != PORT_FREE && th_now_ns() < until)
        th_sleep_ms(5);
    uint32_t left = atomic_load(&pp->state) != PORT_FREE;
    print_message("publisher killed holding its history lock: slot %s 1.5 s later%s\n",
                  left ? "still not free" : "free",
                  left ? " (the daemon spins in port_release_history)" : "");
    atomic_store(&pp->history_lock, 0); /* let the daemon go on */
    until = th_now_ns() + 2000 * TH_MS;
    while (atomic_load(&pp->state) != PORT_FREE && th_now_ns() < until)
        th_sleep_ms(5);
    assert_int_equal(atomic_load(&pp->state), PORT_FREE);
    th_chan_close(&ctx.to_child);
    th_chan_close(&ctx.to_parent);
    shoal_runtime_destroy(rt);
    assert_int_equal(left, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST_CFG(test_kill_storm, STORM_CONFIG),
        TH_TEST(test_hostile_shared_memory),
        TH_TEST(test_daemon_killed),
        TH_TEST(test_known_producer_killed_mid_push),
        TH_TEST(test_known_corrupt_cell_seq_hangs_take),
        TH_TEST(test_known_corrupt_header_crashes_peer),
        TH_TEST(test_known_killed_in_history_lock_hangs_daemon),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
