/* Ports and chunks: the hot path, in the order data moves: loan, send
 * (publish, request, response), take, call. All of it touches only shared
 * memory (no daemon, no lock); waits sleep on futex words. Port creation
 * is port_create.c's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/futex.h"
#include "core/pool.h"
#include "core/port.h"
#include "core/queue.h"
#include "core/spare.h"
#include "core/sweep.h"
#include "runtime/internal.h"

/* Our own copy of the name: the service table is peers' to scribble on. */
static const char *svc_name(const port_base_t *b) { return b->name; }

static bool daemon_gone(const port_base_t *b) {
    return atomic_load_explicit(&b->rt->map.dead, memory_order_relaxed) != 0;
}

static shoal_result_t gone_error(const port_base_t *b) {
    return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                           "the daemon of domain '%s' is gone: this runtime's ports and chunks "
                           "are dead; destroy the runtime and create a new one once shoald "
                           "runs again",
                           b->rt->domain);
}

/* ---- holders, for exhaustion messages ------------------------------------ */

#define HOLDERS_TOP 3 /* ports named per list; the message stays bounded */

typedef struct port_top {
    uint32_t slot[HOLDERS_TOP], n[HOLDERS_TOP];
    uint32_t ports; /* all ports with n > 0 */
} port_top_t;

static void top_add(port_top_t *t, uint32_t slot, uint32_t n) {
    if (!n) return;
    t->ports++;
    for (int k = 0; k < HOLDERS_TOP; k++)
        if (n > t->n[k]) {
            for (int j = HOLDERS_TOP - 1; j > k; j--) t->n[j] = t->n[j - 1], t->slot[j] = t->slot[j - 1];
            t->n[k] = n;
            t->slot[k] = slot;
            return;
        }
}

/* Chunks of `pool` waiting in a port's receive queue. Only the cells between
 * its dequeue and enqueue positions, at most the cell count of the private
 * header: positions and mask come from shared memory. */
static uint32_t queued_in_pool(const shm_map_t *m, shm_port_t *p, uint32_t pool) {
    uint64_t deq = atomic_load_explicit(&p->deq_pos, memory_order_acquire);
    uint64_t enq = atomic_load_explicit(&p->enq_pos, memory_order_acquire);
    if (enq <= deq) return 0;
    uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1);
    uint64_t depth = enq - deq < (uint64_t)mask + 1 ? enq - deq : (uint64_t)mask + 1;
    shm_queue_cell_t *cells = shm_port_cells(m, p);
    uint32_t n = 0;
    for (uint64_t i = 0; i < depth; i++) {
        uint64_t ref = atomic_load_explicit(&cells[(deq + i) & mask].value, memory_order_relaxed);
        int64_t ci = shm_ref_chunk(m, ref); /* empty, skipped and tombstones are not chunks */
        if (ci >= 0 && shm_chunk_pool(m, (uint32_t)ci) == pool) n++;
    }
    return n;
}

/* A name from shared memory: bounded (maybe not NUL-terminated), printable. */
static void shm_name(char *out, size_t len, const char *name, size_t cap) {
    size_t n = name ? strnlen(name, cap) : 0;
    if (n > len - 1) n = len - 1;
    for (size_t i = 0; i < n; i++)
        out[i] = name[i] >= 0x20 && name[i] < 0x7f ? name[i] : '?';
    out[n] = '\0';
}

/* "subscriber 'topic' of app(pid 42) 4 queued, ..." */
static size_t list_ports(const shm_map_t *m, const port_top_t *t, bool queue, char *out,
                         size_t len, size_t used) {
    int k;
    for (k = 0; k < HOLDERS_TOP && t->n[k]; k++) {
        shm_port_t *p = shm_port(m, t->slot[k]);
        shm_service_t *sv = shm_service(m, p->service);
        shm_process_t *pr = shm_process(m, p->process);
        char svc[49], proc[33];
        shm_name(svc, sizeof svc, sv ? sv->name : "?", sv ? sizeof sv->name : 1);
        shm_name(proc, sizeof proc, pr ? pr->name : "?", pr ? sizeof pr->name : 1);
        int n = snprintf(out + used, len - used, "%s%s '%s' of %s(pid %d) %s%u%s", k ? ", " : "",
                         shm_kind_name(p->kind), svc, proc, (int)p->pid,
                         queue ? "" : "holds ", t->n[k], queue ? " queued" : "");
        if (n < 0 || (size_t)n >= len - used) {
            out[used] = '\0';
            break;
        }
        used += (size_t)n;
    }
    if (t->ports > (uint32_t)k) {
        int n = snprintf(out + used, len - used, " and %u more", t->ports - (uint32_t)k);
        if (n > 0 && (size_t)n < len - used) used += (size_t)n;
        else out[used] = '\0';
    }
    return used;
}

/* Who has the chunks of `pool`: the ports holding them (held tables) and
 * the ports whose receive queues pin them, most first. */
static void pool_holders(const shm_map_t *m, uint32_t pool, char *out, size_t len) {
    port_top_t held = {{0}, {0}, 0}, queued = {{0}, {0}, 0};
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        shm_port_t *p = shm_port(m, s);
        if (atomic_load(&p->state) != PORT_ACTIVE) continue;
        if (atomic_load(&p->held)) {
            _Atomic uint64_t *ht = shm_port_held(m, p);
            uint32_t n = 0;
            for (uint32_t i = 0; i < m->hdr->chunks_per_port; i++) {
                int64_t ci = shm_ref_chunk(m, atomic_load(&ht[i]));
                if (ci >= 0 && shm_chunk_pool(m, (uint32_t)ci) == pool) n++;
            }
            top_add(&held, s, n);
        }
        top_add(&queued, s, queued_in_pool(m, p, pool));
    }
    /* each list gets half the room, so a long one cannot hide the other */
    size_t half = len / 2, used = 0;
    out[0] = '\0';
    if (held.ports) {
        used = (size_t)snprintf(out, half, "holders: ");
        used = list_ports(m, &held, false, out, half, used);
    }
    if (queued.ports) {
        int n = snprintf(out + used, len - used, "%sin receive queues: ", used ? "; " : "");
        if (n > 0 && (size_t)n < len - used) list_ports(m, &queued, true, out, len, used + (size_t)n);
    }
    if (!held.ports && !queued.ports)
        snprintf(out, len, "no port holds or queues them (publishers' history may keep some)");
}

/* ---- held table ---------------------------------------------------------------- */

static shoal_result_t held_add(port_base_t *b, uint32_t chunk, uint32_t state, shoal_chunk_t **out) {
    if (b->free_top == 0)
        return shoal_error_set(
            SHOAL_ERR_HELD_LIMIT,
            "%s '%s' already holds %u chunks, the per-port limit (config key "
            "limits.chunks_per_port in %s); release taken or loaned chunks with "
            "shoal_chunk_release()",
            shm_kind_name(b->kind), svc_name(b), b->rt->map.hdr->chunks_per_port,
            b->rt->map.hdr->config_source);
    const shm_map_t *m = &b->rt->map;
    uint32_t pool;
    void *payload = shm_chunk_payload(m, chunk, &pool);
    if (!payload)
        return shoal_error_set(SHOAL_ERR_CORRUPT,
                               "chunk %u lies outside its pool's mapping: shared memory is corrupt",
                               chunk);
    uint32_t hs = b->free_stack[--b->free_top];
    atomic_store_explicit(&shm_port_held(m, b->p)[hs], (uint64_t)chunk + 1, memory_order_relaxed);
    atomic_store_explicit(&b->p->held, ++b->held_count, memory_order_relaxed);
    shoal_chunk_t *c = &b->chunks[hs];
    c->owner = b;
    c->hdr = shm_chunk(m, chunk);
    c->payload = payload;
    c->pool = pool;
    /* fetch header and payload lines in parallel, not one miss after another */
    __builtin_prefetch(c->hdr, 1);
    __builtin_prefetch(c->payload, 0);
    c->chunk = chunk;
    c->held_slot = hs;
    c->state = state;
    c->send_started = 0;
    *out = c;
    return SHOAL_OK;
}

/* Forgets the chunk locally; the caller owns the reference afterwards. */
static void held_remove(shoal_chunk_t *c) {
    port_base_t *b = c->owner;
    /* leak-safe order: a crash between the two steps can lose one
     * reference but never free a chunk twice */
    atomic_store_explicit(&shm_port_held(&b->rt->map, b->p)[c->held_slot], 0, memory_order_relaxed);
    atomic_store_explicit(&b->p->held, --b->held_count, memory_order_relaxed);
    b->free_stack[b->free_top++] = c->held_slot;
    c->state = CHUNK_IDLE;
}

/* Undoes the held_remove() just made by a send that stopped short (a sliced
 * send's BUSY): nothing ran on the port in between, so the slot it freed is
 * on top of the free stack. */
static void held_restore(shoal_chunk_t *c) {
    port_base_t *b = c->owner;
    b->free_top--;
    atomic_store_explicit(&shm_port_held(&b->rt->map, b->p)[c->held_slot], (uint64_t)c->chunk + 1,
                          memory_order_relaxed);
    atomic_store_explicit(&b->p->held, ++b->held_count, memory_order_relaxed);
    c->state = CHUNK_LOANED;
}

/* ---- loan ------------------------------------------------------------------------ */

/* Why no pool holds `size` bytes. */
static __attribute__((noinline, cold)) shoal_result_t too_large_error(const shm_map_t *m,
                                                                       uint64_t size) {
    const shm_pool_geom_t *big = shm_pool_geom(m, m->hdr->pool_count - 1);
    unsigned long long largest = big ? (unsigned long long)big->chunk_size : 0ULL;
    if (size > (64ull << 30)) /* the config's own limit: no pool can be added for it */
        return shoal_error_set(SHOAL_ERR_CHUNK_TOO_LARGE,
                               "no pool holds %llu bytes: the largest chunk size is %llu bytes "
                               "(pool #%u), and a pool's chunks are at most 64G; split the data "
                               "into several messages of at most 64G",
                               (unsigned long long)size, largest, m->hdr->pool_count - 1);
    char where[sizeof m->hdr->config_source + 80];
    if (m->hdr->config_source[0] == '(') /* "(built-in defaults)": no file to edit yet */
        snprintf(where, sizeof where, "a config file and restart shoald with --config FILE");
    else
        snprintf(where, sizeof where, "%.*s", (int)strnlen(m->hdr->config_source,
                                                               sizeof m->hdr->config_source),
                 m->hdr->config_source);
    return shoal_error_set(
        SHOAL_ERR_CHUNK_TOO_LARGE,
        "no pool holds %llu bytes: the largest chunk size is %llu bytes (pool #%u); add a "
        "pool to the [pools] section of %s, e.g. '%llu%s = 2'",
        (unsigned long long)size, largest, m->hdr->pool_count - 1, where,
        size > (1ull << 30) ? (unsigned long long)((size + (1ull << 30) - 1) >> 30)
                            : (unsigned long long)((size + (1u << 20) - 1) >> 20),
        size > (1ull << 30) ? "G" : "M");
}

/* Pool `pi` has nothing to loan: counted, and who holds its chunks. */
static __attribute__((noinline, cold)) shoal_result_t exhausted_error(const shm_map_t *m, int pi,
                                                                       uint64_t size) {
    const shm_pool_geom_t *p = shm_pool_geom(m, (uint32_t)pi);
    atomic_fetch_add_explicit(&shm_pool(m, (uint32_t)pi)->alloc_failures, 1, memory_order_relaxed);
    char holders[600];
    pool_holders(m, (uint32_t)pi, holders, sizeof holders);
    return shoal_error_set(SHOAL_ERR_POOL_EXHAUSTED,
                           "pool exhausted: pool #%d (chunk size %llu, %u chunks) has no free "
                           "chunk for %llu bytes; %s. Release chunks (a queued chunk is "
                           "released when its port takes it or closes), or raise the count "
                           "in [pools] of %.*s",
                           pi, (unsigned long long)p->chunk_size, p->chunk_count,
                           (unsigned long long)size, holders,
                           (int)strnlen(m->hdr->config_source, sizeof m->hdr->config_source),
                           m->hdr->config_source);
}

/* Where a response goes: its request's sequence id and client. */
typedef struct chunk_origin {
    uint64_t seq;
    uint32_t slot, gen;
} chunk_origin_t;

/* A loan writes the chunk's header once: its size, its kind (`flags`) and
 * where it comes from: this port, or for a response (`to`) the request's
 * sequence id and client. Inline, so each caller's constants fold. */
static inline __attribute__((always_inline)) shoal_result_t
loan(port_base_t *b, uint64_t size, uint32_t flags, const chunk_origin_t *to, shoal_chunk_t **out) {
    if (!out) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    const shm_map_t *m = &b->rt->map;
    if (size == 0) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "loan size must be > 0");
    if (daemon_gone(b)) return gone_error(b);
    int pi = pool_find(m, size);
    if (pi < 0) return too_large_error(m, size);
    if (b->free_top == 0) return held_add(b, 0, 0, out); /* names the limit */
    op_begin(m, b->p);
    int64_t ci = spare_take(m, b->p, (uint32_t)pi);
    if (ci < 0) ci = pool_alloc(m, (uint32_t)pi);
    if (ci < 0) ci = spare_steal(m, (uint32_t)pi);
    if (ci < 0) {
        op_end(b->p);
        return exhausted_error(m, pi, size);
    }
    shm_chunk_t *h = shm_chunk(m, (uint32_t)ci);
    h->size = size;
    h->loaned_size_lo = (uint32_t)size;
    h->loaned_size_hi = (uint32_t)(size >> 32);
    h->sequence_id = to ? to->seq : 0;
    h->flags = flags;
    h->service = b->service;
    h->origin_slot = to ? to->slot : b->slot;
    h->origin_gen = to ? to->gen : b->gen;
    shoal_result_t rc = held_add(b, (uint32_t)ci, CHUNK_LOANED, out);
    if (rc != SHOAL_OK) chunk_unref(m, (uint32_t)ci);
    else (*out)->loaned = size;
    op_end(b->p);
    return rc;
}

SHOAL_API shoal_result_t shoal_publisher_loan(shoal_publisher_t *pub, uint64_t size,
                                              shoal_chunk_t **out) {
    if (!pub) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "publisher is NULL");
    return loan(&pub->b, size, CHUNK_FLAG_SAMPLE, NULL, out);
}

SHOAL_API shoal_result_t shoal_client_loan(shoal_client_t *client, uint64_t size,
                                           shoal_chunk_t **out) {
    if (!client) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "client is NULL");
    return loan(&client->b, size, CHUNK_FLAG_REQUEST, NULL, out);
}

static shoal_result_t check_chunk(const port_base_t *b, const shoal_chunk_t *c, uint32_t state) {
    if (!c) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "chunk is NULL");
    if (c->state == CHUNK_IDLE)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "chunk was already sent or released (a chunk handle is consumed "
                               "by exactly one send, publish or release)");
    if (b && c->owner != b)
        return shoal_error_set(SHOAL_ERR_WRONG_PORT,
                               "chunk belongs to %s '%s', not to this %s '%s'",
                               shm_kind_name(c->owner->kind), svc_name(c->owner),
                               shm_kind_name(b->kind), svc_name(b));
    if (state && c->state != state)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               state == CHUNK_LOANED ? "chunk is a taken one; only loans can be sent"
                                                     : "chunk is a loan, not a taken chunk");
    return SHOAL_OK;
}

static int client_alive(const shm_map_t *m, uint32_t slot, uint32_t gen, uint32_t service) {
    shm_port_t *t = shm_port(m, slot);
    return t && atomic_load(&t->state) == PORT_ACTIVE && atomic_load(&t->gen) == gen &&
           shm_slot_kind(m, slot) == SHOAL_PORT_CLIENT && t->service == service;
}

SHOAL_API shoal_result_t shoal_server_loan_response(shoal_server_t *server,
                                                    const shoal_chunk_t *request, uint64_t size,
                                                    shoal_chunk_t **out) {
    if (!server || !out) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "server or out is NULL");
    *out = NULL;
    port_base_t *b = &server->b;
    shoal_result_t rc = check_chunk(b, request, CHUNK_TAKEN);
    if (rc != SHOAL_OK) return rc;
    /* read once: what is checked is what the response records */
    chunk_origin_t to = {request->hdr->sequence_id, request->hdr->origin_slot,
                         request->hdr->origin_gen};
    if (!client_alive(&b->rt->map, to.slot, to.gen, b->service))
        return shoal_error_set(SHOAL_ERR_CLIENT_GONE,
                               "the client that sent request %llu on service '%s' is gone; "
                               "release the request",
                               (unsigned long long)to.seq, svc_name(b));
    return loan(b, size, CHUNK_FLAG_RESPONSE, &to, out);
}

/* ---- chunks: access and release ----------------------------------------------------- */

/* Drops the caller's reference to a chunk it held. */
static void release_held(shoal_chunk_t *c) {
    port_base_t *b = c->owner;
    held_remove(c);
    spare_release_ref(&b->rt->map, b->p, b->kind, c->chunk, c->pool);
}

/* Releases a chunk as one operation of its port (see core/sweep.h). */
static void release_op(shoal_chunk_t *c) {
    port_base_t *o = c->owner;
    if (daemon_gone(o)) {
        held_remove(c); /* the segments are dead: only forget the handle */
        return;
    }
    op_begin(&o->rt->map, o->p);
    release_held(c);
    op_end(o->p);
}

SHOAL_API shoal_result_t shoal_chunk_release(shoal_chunk_t *c) {
    if (!c) return SHOAL_OK;
    shoal_result_t rc = check_chunk(NULL, c, 0);
    if (rc != SHOAL_OK) return rc;
    release_op(c);
    return SHOAL_OK;
}

SHOAL_API void *shoal_chunk_payload(const shoal_chunk_t *c) {
    return c && c->state != CHUNK_IDLE ? c->payload : NULL;
}

SHOAL_API uint64_t shoal_chunk_size(const shoal_chunk_t *c) {
    if (!c || c->state == CHUNK_IDLE) return 0;
    uint64_t s = c->hdr->size;
    const shm_pool_geom_t *p = shm_pool_geom(&c->owner->rt->map, c->pool);
    /* a size from shared memory never exceeds its chunk */
    return p && s <= p->chunk_size ? s : 0;
}

SHOAL_API shoal_result_t shoal_chunk_set_size(shoal_chunk_t *c, uint64_t size) {
    shoal_result_t rc = check_chunk(NULL, c, CHUNK_LOANED);
    if (rc != SHOAL_OK) return rc;
    if (c->send_started)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "a send of this chunk is in progress (a sliced send stopped short); "
                               "its size can no longer change");
    uint64_t loaned = c->loaned;
    if (size > loaned)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "size %llu is larger than the loan (%llu bytes); loan a larger chunk",
                               (unsigned long long)size, (unsigned long long)loaned);
    c->hdr->size = size;
    return SHOAL_OK;
}

SHOAL_API uint64_t shoal_chunk_sequence_id(const shoal_chunk_t *c) {
    return c && c->state != CHUNK_IDLE ? c->hdr->sequence_id : 0;
}

/* ---- send: one path for publish, request and response ------------------------------ */

/* A send that cannot start consumes its chunk all the same: after any send
 * call the handle is spent. */
static inline shoal_result_t check_send(const port_base_t *b, uint32_t kind, shoal_chunk_t *c) {
    shoal_result_t rc = check_chunk(b, c, CHUNK_LOANED);
    if (rc == SHOAL_OK) {
        if (daemon_gone(b)) rc = gone_error(b);
        else if (kind == SHOAL_PORT_SERVER && !(c->hdr->flags & CHUNK_FLAG_RESPONSE))
            rc = shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                                 "a server sends responses loaned with shoal_server_loan_response()");
        else
            return SHOAL_OK;
    }
    if (c && c->state != CHUNK_IDLE) release_op(c);
    return rc;
}

static shoal_result_t busy_error(const port_base_t *b) {
    return shoal_error_set(SHOAL_ERR_BUSY,
                           "the %s's send to '%s' still waits for queue space (policy WAIT); the "
                           "chunk is still the caller's: call the sliced send again",
                           shm_kind_name(b->kind), svc_name(b));
}

/* The end of a sliced send's slice (UINT64_MAX: none). */
static uint64_t slice_end(int64_t slice_ns) {
    return slice_ns < 0 ? UINT64_MAX : shoal_now_ns() + (uint64_t)slice_ns;
}

/* Stamps a send once: a sliced send that resumes keeps its sequence id and
 * where it stopped. A response keeps its request's id. */
static inline void send_start(port_base_t *b, uint32_t kind, shoal_chunk_t *c) {
    if (kind != SHOAL_PORT_SERVER) c->hdr->sequence_id = own_add(&b->p->next_sequence, 1);
    c->send_started = 1;
    c->send_wait = 0;
    if (kind != SHOAL_PORT_PUBLISHER) return;
    c->send_next = 0;
    c->send_first = SHOAL_OK;
    c->send_failed = c->send_cap = c->send_gone = 0;
}

/* Our service's receivers (slot + 1 or 0 each), at most *hi of them. */
static _Atomic uint32_t *receivers(const shm_map_t *m, shm_service_t *sv, uint32_t *hi) {
    *hi = atomic_load_explicit(&sv->receiver_hi, memory_order_acquire);
    if (*hi > m->hdr->receivers_per_service) *hi = m->hdr->receivers_per_service;
    return shm_service_receivers(m, sv);
}

/* Receiver i's port, its slot and generation; NULL if there is none. */
static shm_port_t *receiver_at(const shm_map_t *m, _Atomic uint32_t *rv, uint32_t i, uint32_t *slot,
                               uint32_t *gen) {
    uint32_t s = atomic_load_explicit(&rv[i], memory_order_acquire);
    shm_port_t *t = s ? shm_port(m, s - 1) : NULL;
    if (t) {
        *slot = s - 1;
        *gen = atomic_load(&t->gen);
    }
    return t;
}

/* A sample: every subscriber's queue gets a reference of its own. A slice
 * that must wait longer for one returns BUSY, and the next call goes on
 * from that subscriber (those before it are not sent the sample twice).
 * DAEMON_UNAVAILABLE, else the first failure (counted in c), else OK. */
static shoal_result_t deliver_sample(port_base_t *b, shoal_chunk_t *c, uint64_t slice_deadline) {
    const shm_map_t *m = &b->rt->map;
    shm_service_t *sv = shm_service(m, b->service);
    if (sv) {
        uint32_t hi, slot, gen;
        _Atomic uint32_t *rv = receivers(m, sv, &hi);
        for (uint32_t i = c->send_next; i < hi; i++) {
            shm_port_t *t = receiver_at(m, rv, i, &slot, &gen);
            if (!t) continue;
            shoal_result_t r = port_deliver_ex(m, b->p, slot, gen, SHOAL_PORT_SUBSCRIBER, b->service,
                                               c->chunk, b->policy, b->send_timeout_ns, &c->send_wait,
                                               slice_deadline);
            if (r == SHOAL_ERR_BUSY) {
                c->send_next = i;
                return r;
            }
            c->send_wait = 0;
            if (r == SHOAL_ERR_QUEUE_FULL || r == SHOAL_ERR_TIMEOUT) {
                if (c->send_first == SHOAL_OK) c->send_first = r, c->send_cap = t->queue_capacity;
                c->send_failed++;
            }
            if (r == SHOAL_ERR_DAEMON_UNAVAILABLE) c->send_gone = 1;
        }
    }
    return c->send_gone ? SHOAL_ERR_DAEMON_UNAVAILABLE : c->send_first;
}

/* A request: exactly one server gets it, the first with room from a
 * round-robin start; when all are full, the port's policy applies at the
 * first full one. Our reference travels with it. */
static shoal_result_t deliver_request(port_base_t *b, shoal_chunk_t *c, uint64_t slice_deadline) {
    const shm_map_t *m = &b->rt->map;
    shm_service_t *sv = shm_service(m, b->service);
    shoal_result_t rc = SHOAL_ERR_NO_SERVER;
    if (!sv || !atomic_load(&sv->servers)) return rc;
    uint32_t hi, slot, gen;
    _Atomic uint32_t *rv = receivers(m, sv, &hi);
    uint32_t start = atomic_load_explicit(&b->p->rr, memory_order_relaxed);
    atomic_store_explicit(&b->p->rr, start + 1, memory_order_relaxed);
    uint32_t fallback = UINT32_MAX, fallback_gen = 0;
    /* first pass never blocks: any server with room takes it */
    for (uint32_t k = 0; k < hi && rc != SHOAL_OK; k++) {
        shm_port_t *t = receiver_at(m, rv, (start + k) % hi, &slot, &gen);
        if (!t) continue;
        /* the slot's process is only a hint here: a wrong one misroutes
         * this process's own request, nobody else's */
        if (b->ignore_own && t->process == b->rt->proc_slot) continue;
        shoal_result_t r = port_deliver(m, b->p, slot, gen, SHOAL_PORT_SERVER, b->service, c->chunk,
                                        SHOAL_FULL_REJECT | PORT_DELIVER_TRANSFER, 0);
        if (r == SHOAL_OK) rc = SHOAL_OK;
        else if (r == SHOAL_ERR_QUEUE_FULL) {
            rc = r;
            if (fallback == UINT32_MAX) fallback = slot, fallback_gen = gen;
        }
    }
    if (rc == SHOAL_ERR_QUEUE_FULL && b->policy != SHOAL_FULL_REJECT) {
        rc = port_deliver_ex(m, b->p, fallback, fallback_gen, SHOAL_PORT_SERVER, b->service, c->chunk,
                             b->policy | PORT_DELIVER_TRANSFER, b->send_timeout_ns, &c->send_wait,
                             slice_deadline);
        if (rc == SHOAL_ERR_NOT_FOUND) rc = SHOAL_ERR_QUEUE_FULL;
    }
    return rc;
}

/* A response: to the client its request came from. Our reference travels. */
static shoal_result_t deliver_response(port_base_t *b, shoal_chunk_t *c, uint64_t slice_deadline) {
    return port_deliver_ex(&b->rt->map, b->p, c->hdr->origin_slot, c->hdr->origin_gen,
                           SHOAL_PORT_CLIENT, b->service, c->chunk, b->policy | PORT_DELIVER_TRANSFER,
                           b->send_timeout_ns, &c->send_wait, slice_deadline);
}

/* Longest a publisher waits for its history lock. Its only other user is
 * the daemon, which holds it for microseconds, so a word held longer was
 * written by a peer (or a pid reused): take it over rather than hang. */
#define HISTORY_LOCK_MAX_NS 200000000ull

static void history_add(port_base_t *b, uint32_t ci) {
    const shm_map_t *m = &b->rt->map;
    shm_port_t *p = b->p;
    uint32_t hmax = m->hdr->history_max, keep = b->history;
    if (!hmax || !keep || keep > hmax) return;
    _Atomic uint64_t *h = shm_port_history(m, p);
    chunk_ref(m, ci);
    if (spin_lock_bounded(&p->history_lock, HISTORY_LOCK_MAX_NS) != 0) spin_lock_force(&p->history_lock);
    /* head and count are ours; the slot's copies are for the daemon */
    if (b->history_count >= keep) {
        uint32_t oldest = (b->history_head + hmax - keep) % hmax;
        int64_t old = shm_ref_chunk(m, atomic_exchange(&h[oldest], 0));
        if (old >= 0) chunk_unref(m, (uint32_t)old);
        b->history_count = keep - 1;
    }
    uint64_t prev = atomic_exchange(&h[b->history_head % hmax], (uint64_t)ci + 1);
    if (prev) { /* only a scribbler leaves one here: do not leak it */
        int64_t pc = shm_ref_chunk(m, prev);
        if (pc >= 0) chunk_unref(m, (uint32_t)pc);
    }
    b->history_head = (b->history_head + 1) % hmax;
    b->history_count++;
    p->history_head = b->history_head;
    p->history_count = b->history_count;
    spin_unlock(&p->history_lock);
}

/* Why a send delivered nothing (a publish: not to every subscriber). */
static shoal_result_t send_error(const port_base_t *b, shoal_result_t rc, uint64_t seq,
                                 uint32_t failed, uint32_t cap) {
    if (rc == SHOAL_ERR_DAEMON_UNAVAILABLE) return gone_error(b);
    if (b->kind == SHOAL_PORT_PUBLISHER)
        return shoal_error_set(rc,
                               "%u subscriber(s) of topic '%s' did not get the sample: queue full "
                               "(capacity %u) under policy %s; the others got it",
                               failed, svc_name(b), cap,
                               b->policy == SHOAL_FULL_WAIT     ? "WAIT (timed out)"
                               : b->policy == SHOAL_FULL_REJECT ? "REJECT"
                                                                : "DROP_OLDEST (nothing could be dropped)");
    if (b->kind == SHOAL_PORT_CLIENT) {
        if (rc == SHOAL_ERR_NO_SERVER)
            return shoal_error_set(rc, "no server offers service '%s'%s; start one (or check the name)",
                                   svc_name(b),
                                   b->ignore_own ? " (this client ignores its own process's servers: "
                                                   "ignore_own_process)" : "");
        return shoal_error_set(rc,
                               "every server of service '%s' has a full request queue; the "
                               "request was released (retry, raise queue_capacity, or use "
                               "SHOAL_FULL_WAIT)",
                               svc_name(b));
    }
    if (rc == SHOAL_ERR_NOT_FOUND)
        return shoal_error_set(SHOAL_ERR_CLIENT_GONE,
                               "the client of request %llu on service '%s' is gone; the response "
                               "was released",
                               (unsigned long long)seq, svc_name(b));
    return shoal_error_set(rc,
                           "the client's response queue on service '%s' is full; response %llu "
                           "was released",
                           svc_name(b), (unsigned long long)seq);
}

/* Every send: publish, request and response, whole or sliced. The chunk is
 * consumed whatever happens, except by a slice that stopped short (BUSY):
 * the caller still holds it and calls again to resume. Inline with a
 * constant `kind` (the instances below), so the hot path has no kind
 * branches. */
static inline __attribute__((always_inline)) shoal_result_t
send_chunk(port_base_t *b, uint32_t kind, shoal_chunk_t *c, uint64_t slice_deadline,
           uint64_t *seq_out) {
    shoal_result_t rc = check_send(b, kind, c);
    if (rc != SHOAL_OK) return rc;
    const shm_map_t *m = &b->rt->map;
    op_begin(m, b->p);
    if (!c->send_started) send_start(b, kind, c);
    uint64_t seq = c->hdr->sequence_id;
    uint32_t ci = c->chunk, failed = 0, cap = 0;
    if (kind == SHOAL_PORT_PUBLISHER) {
        rc = deliver_sample(b, c, slice_deadline);
        if (rc == SHOAL_ERR_BUSY) goto busy;
        failed = c->send_failed;
        cap = c->send_cap;
        if (b->history) history_add(b, ci);
        own_add(&b->p->sent, 1);
        release_held(c); /* each subscriber has a reference of its own */
    } else {
        /* one receiver: our reference travels with the chunk. Forget it
         * first, so a crash in between can only leak it, never free it twice. */
        held_remove(c);
        rc = kind == SHOAL_PORT_CLIENT ? deliver_request(b, c, slice_deadline)
                                       : deliver_response(b, c, slice_deadline);
        if (rc == SHOAL_ERR_BUSY) {
            held_restore(c);
            goto busy;
        }
        if (rc != SHOAL_OK) chunk_unref(m, ci);
    }
    op_end(b->p);
    if (rc != SHOAL_OK) return send_error(b, rc, seq, failed, cap);
    if (kind != SHOAL_PORT_PUBLISHER) own_add(&b->p->sent, 1);
    if (seq_out) *seq_out = seq;
    return SHOAL_OK;
busy:
    op_end(b->p);
    return busy_error(b);
}

static shoal_result_t send_sample(port_base_t *b, shoal_chunk_t *c, uint64_t slice_deadline) {
    return send_chunk(b, SHOAL_PORT_PUBLISHER, c, slice_deadline, NULL);
}
static shoal_result_t send_request(port_base_t *b, shoal_chunk_t *c, uint64_t slice_deadline,
                                   uint64_t *seq_out) {
    return send_chunk(b, SHOAL_PORT_CLIENT, c, slice_deadline, seq_out);
}
static shoal_result_t send_response(port_base_t *b, shoal_chunk_t *c, uint64_t slice_deadline) {
    return send_chunk(b, SHOAL_PORT_SERVER, c, slice_deadline, NULL);
}

/* A NULL port is the caller's error. */
static shoal_result_t null_port(uint32_t kind) {
    return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "%s is NULL", shm_kind_name(kind));
}

SHOAL_API shoal_result_t shoal_publisher_publish(shoal_publisher_t *pub, shoal_chunk_t *c) {
    return pub ? send_sample(&pub->b, c, UINT64_MAX) : null_port(SHOAL_PORT_PUBLISHER);
}

SHOAL_API shoal_result_t shoal_publisher_publish_slice(shoal_publisher_t *pub, shoal_chunk_t *c,
                                                       int64_t slice_ns) {
    return pub ? send_sample(&pub->b, c, slice_end(slice_ns)) : null_port(SHOAL_PORT_PUBLISHER);
}

SHOAL_API shoal_result_t shoal_client_send(shoal_client_t *client, shoal_chunk_t *c,
                                           uint64_t *sequence_id) {
    return client ? send_request(&client->b, c, UINT64_MAX, sequence_id)
                  : null_port(SHOAL_PORT_CLIENT);
}

SHOAL_API shoal_result_t shoal_client_send_slice(shoal_client_t *client, shoal_chunk_t *c,
                                                 uint64_t *sequence_id, int64_t slice_ns) {
    return client ? send_request(&client->b, c, slice_end(slice_ns), sequence_id)
                  : null_port(SHOAL_PORT_CLIENT);
}

SHOAL_API shoal_result_t shoal_server_send(shoal_server_t *server, shoal_chunk_t *c) {
    return server ? send_response(&server->b, c, UINT64_MAX) : null_port(SHOAL_PORT_SERVER);
}

SHOAL_API shoal_result_t shoal_server_send_slice(shoal_server_t *server, shoal_chunk_t *c,
                                                 int64_t slice_ns) {
    return server ? send_response(&server->b, c, slice_end(slice_ns)) : null_port(SHOAL_PORT_SERVER);
}

/* ---- take ------------------------------------------------------------------------ */

/* One pop attempt as an operation: on success the operation stays open
 * for the caller to put the reference in the held table. */
static bool pop_op(port_base_t *b, uint64_t *ref) {
    /* an empty queue moves nothing: busy polls skip the bracket */
    if (!queue_ready(&b->rt->map, b->p)) return false;
    op_begin(&b->rt->map, b->p);
    if (queue_pop(&b->rt->map, b->p, ref)) return true;
    op_end(b->p);
    return false;
}

typedef struct port_wait {
    port_base_t *b;
    uint64_t *ref; /* a take pops into it; NULL: a readiness wait only looks */
    shoal_result_t rc;
} port_wait_t;

/* Whether a wait on a port ends (futex_wait_for's re-check): data (popped
 * by a take, its operation left open), or an error in w->rc: the daemon
 * gone, the port closed, a client's last server gone. */
static bool port_wait_done(void *arg) {
    port_wait_t *w = arg;
    port_base_t *b = w->b;
    const shm_map_t *m = &b->rt->map;
    w->rc = SHOAL_OK;
    if (w->ref && pop_op(b, w->ref)) return true;
    if (daemon_gone(b)) {
        w->rc = gone_error(b);
        return true;
    }
    if (!w->ref && queue_ready(m, b->p)) return true;
    if (atomic_load(&b->p->state) != PORT_ACTIVE) {
        /* only a stopping daemon closes a port under its owner; its
         * hang-up may not have reached the monitor thread yet */
        w->rc = rt_daemon_gone(b->rt) ? gone_error(b)
                : w->ref ? shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                                           "the daemon closed this port while waiting (it is stopping)")
                         : shoal_error_set(SHOAL_ERR_NOT_FOUND, "the port was closed while waiting");
        return true;
    }
    if (b->kind == SHOAL_PORT_CLIENT) {
        shm_service_t *sv = shm_service(m, b->service);
        if (sv && atomic_load(&sv->servers) == 0) {
            w->rc = shoal_error_set(SHOAL_ERR_NO_SERVER,
                                    "no server offers service '%s' any more; no response can come",
                                    svc_name(b));
            return true;
        }
    }
    return false;
}

static shoal_result_t pop_wait(port_base_t *b, uint64_t *ref, int64_t timeout_ns) {
    shm_port_t *p = b->p;
    if (daemon_gone(b)) return gone_error(b);
    if (pop_op(b, ref)) goto got;
    if (timeout_ns == 0) return SHOAL_ERR_TIMEOUT;
    uint64_t deadline = shoal_deadline(timeout_ns);
    for (;;) {
        port_wait_t w = {b, ref, SHOAL_OK};
        int64_t left = shoal_remaining(deadline);
        if (futex_wait_for(&p->futex_seq, &p->waiters, port_wait_done, &w, left) == FUTEX_DONE) {
            if (w.rc != SHOAL_OK) return w.rc;
            goto got;
        }
        if (left == 0) return SHOAL_ERR_TIMEOUT;
    }
got:
    if (atomic_load_explicit(&p->space_waiters, memory_order_relaxed)) port_space_notify(p);
    return SHOAL_OK;
}

static shoal_result_t timeout_error(port_base_t *b, int64_t timeout_ns) {
    /* busy-poll loops land here constantly: keep it cheap */
    if (timeout_ns == 0) return shoal_error_set_literal(SHOAL_ERR_TIMEOUT, "nothing to take (poll)");
    return shoal_error_set(SHOAL_ERR_TIMEOUT, "nothing arrived at %s '%s' within %lld ns",
                           shm_kind_name(b->kind), svc_name(b), (long long)timeout_ns);
}

/* Whether a sample came from a publisher of this process: its origin is
 * matched against our private port list, never trusted from the segment. */
static bool own_publication(port_base_t *b, const shm_chunk_t *h) {
    uint32_t slot = h->origin_slot, gen = h->origin_gen;
    bool own = false;
    pthread_mutex_lock(&b->rt->lock);
    for (port_base_t *o = b->rt->ports; o && !own; o = o->next)
        own = o->kind == SHOAL_PORT_PUBLISHER && o->slot == slot && o->gen == gen;
    pthread_mutex_unlock(&b->rt->lock);
    return own;
}

/* Servers of this process offering the client's service (private list). */
static uint32_t own_servers(const port_base_t *b) {
    uint32_t n = 0;
    pthread_mutex_lock(&b->rt->lock);
    for (port_base_t *o = b->rt->ports; o; o = o->next)
        n += o->kind == SHOAL_PORT_SERVER && o->service == b->service;
    pthread_mutex_unlock(&b->rt->lock);
    return n;
}

/* Takes one chunk reference into the held table. A tombstone (a request
 * lost with its server) ends the take with SERVER_GONE and its id. */
static shoal_result_t take_ex(port_base_t *b, shoal_chunk_t **out, int64_t timeout_ns,
                              uint64_t *lost_seq) {
    if (!out) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "out is NULL");
    *out = NULL;
    if (b->free_top == 0) return held_add(b, 0, 0, out); /* names the limit */
    const shm_map_t *m = &b->rt->map;
    uint64_t deadline = shoal_deadline(timeout_ns);
    for (;;) {
        uint64_t ref;
        shoal_result_t rc = pop_wait(b, &ref, shoal_remaining(deadline));
        if (rc == SHOAL_ERR_TIMEOUT) return timeout_error(b, timeout_ns);
        if (rc != SHOAL_OK) return rc;
        /* the pop's operation is open until the reference has a home */
        if (ref == SHM_REF_SKIP) { /* filled by the daemon for a dead sender */
            op_end(b->p);
            continue;
        }
        if (ref & SHM_REF_TOMBSTONE) {
            op_end(b->p);
            if (lost_seq) *lost_seq = ref & ~SHM_REF_TOMBSTONE;
            return shoal_error_set(SHOAL_ERR_SERVER_GONE,
                                   "request %llu on service '%s' was lost: its server exited "
                                   "before answering",
                                   (unsigned long long)(ref & ~SHM_REF_TOMBSTONE), svc_name(b));
        }
        int64_t ci = shm_ref_chunk(m, ref);
        if (ci < 0) { /* corrupt entry: skip it rather than crash */
            op_end(b->p);
            continue;
        }
        if (b->ignore_own && own_publication(b, shm_chunk(m, (uint32_t)ci))) {
            chunk_unref(m, (uint32_t)ci);
            op_end(b->p);
            continue;
        }
        own_add(&b->p->received, 1);
        rc = held_add(b, (uint32_t)ci, CHUNK_TAKEN, out);
        if (rc != SHOAL_OK) chunk_unref(m, (uint32_t)ci);
        op_end(b->p);
        return rc;
    }
}

static shoal_result_t take(port_base_t *b, shoal_chunk_t **out, int64_t timeout_ns) {
    return take_ex(b, out, timeout_ns, NULL);
}

SHOAL_API shoal_result_t shoal_subscriber_take(shoal_subscriber_t *sub, shoal_chunk_t **out,
                                               int64_t timeout_ns) {
    if (!sub) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "subscriber is NULL");
    return take(&sub->b, out, timeout_ns);
}

SHOAL_API shoal_result_t shoal_client_take(shoal_client_t *client, shoal_chunk_t **out,
                                           int64_t timeout_ns) {
    if (!client) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "client is NULL");
    return take(&client->b, out, timeout_ns);
}

SHOAL_API shoal_result_t shoal_server_take(shoal_server_t *server, shoal_chunk_t **out,
                                           int64_t timeout_ns) {
    if (!server) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "server is NULL");
    return take(&server->b, out, timeout_ns);
}

/* ---- call: send and take the matching response ------------------------------------- */

SHOAL_API shoal_result_t shoal_client_call(shoal_client_t *client, shoal_chunk_t *request,
                                           shoal_chunk_t **response, int64_t timeout_ns) {
    if (!client) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "client is NULL");
    port_base_t *b = &client->b;
    if (!response) {
        if (request && request->owner == b && request->state == CHUNK_LOANED) release_op(request);
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "response is NULL");
    }
    *response = NULL;
    uint64_t seq = 0;
    shoal_result_t rc = send_request(b, request, UINT64_MAX, &seq);
    if (rc != SHOAL_OK) return rc;
    uint64_t deadline = shoal_deadline(timeout_ns);
    for (;;) {
        shoal_chunk_t *c;
        uint64_t lost = 0;
        rc = take_ex(b, &c, shoal_remaining(deadline), &lost);
        if (rc == SHOAL_ERR_SERVER_GONE) {
            if (lost == seq) return rc; /* only our own lost request ends the call */
            continue;
        }
        if (rc == SHOAL_ERR_TIMEOUT)
            return shoal_error_set(rc, "no response to request %llu on service '%s' within %lld ns",
                                   (unsigned long long)seq, svc_name(b), (long long)timeout_ns);
        if (rc != SHOAL_OK) return rc;
        if (c->hdr->sequence_id == seq) {
            *response = c;
            return SHOAL_OK;
        }
        /* a stale answer to an earlier request: release it, never leak it */
        own_add(&b->p->stale, 1);
        release_op(c);
    }
}

/* ---- waiting without taking (any thread, see shoal.h) ---------------------------- */

/* Sleeps until the queue has data, without popping (shoal_*_wait_ready):
 * reads shared words only, so other threads may use the port meanwhile. */
static shoal_result_t ready_wait(port_base_t *b, int64_t timeout_ns) {
    uint64_t deadline = shoal_deadline(timeout_ns);
    for (;;) {
        port_wait_t w = {b, NULL, SHOAL_OK};
        int woke = futex_wait_for(&b->p->futex_seq, &b->p->waiters, port_wait_done, &w,
                                  shoal_remaining(deadline));
        if (woke == FUTEX_DONE) return w.rc;
        if (woke == -1 || woke == 1)
            return shoal_error_set(SHOAL_ERR_TIMEOUT, "nothing arrived at %s '%s' within %lld ns%s",
                                   shm_kind_name(b->kind), svc_name(b), (long long)timeout_ns,
                                   woke == 1 ? " (a signal cut the wait short)" : "");
    }
}

SHOAL_API shoal_result_t shoal_subscriber_wait_ready(shoal_subscriber_t *sub, int64_t timeout_ns) {
    if (!sub) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "subscriber is NULL");
    return ready_wait(&sub->b, timeout_ns);
}
SHOAL_API shoal_result_t shoal_client_wait_ready(shoal_client_t *client, int64_t timeout_ns) {
    if (!client) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "client is NULL");
    return ready_wait(&client->b, timeout_ns);
}
SHOAL_API shoal_result_t shoal_server_wait_ready(shoal_server_t *server, int64_t timeout_ns) {
    if (!server) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "server is NULL");
    return ready_wait(&server->b, timeout_ns);
}

/* ---- who is on the other side ------------------------------------------------------ */

SHOAL_API uint32_t shoal_publisher_subscriber_count(const shoal_publisher_t *pub) {
    if (!pub) return 0;
    shm_service_t *sv = shm_service(&pub->b.rt->map, pub->b.service);
    return sv ? atomic_load(&sv->subscribers) : 0;
}

SHOAL_API uint32_t shoal_client_server_count(const shoal_client_t *client) {
    if (!client) return 0;
    shm_service_t *sv = shm_service(&client->b.rt->map, client->b.service);
    uint32_t n = sv ? atomic_load(&sv->servers) : 0;
    if (client->b.ignore_own) {
        uint32_t own = own_servers(&client->b);
        n = n > own ? n - own : 0;
    }
    return n;
}
