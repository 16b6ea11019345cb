#include "core/port.h"

#include <errno.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#include "core/futex.h"
#include "core/pool.h"
#include "core/queue.h"
#include "core/sweep.h"

void port_init(const shm_map_t *m, shm_port_t *p, const port_identity_t *id) {
    atomic_store(&p->gen, id->gen);
    p->kind = id->kind;
    p->service = id->service;
    p->process = id->process;
    p->pid = id->pid;
    p->policy = id->policy;
    p->history = id->history;
    p->send_timeout_ns = id->send_timeout_ns;
    atomic_store(&p->held, 0);
    atomic_store(&p->sent, 0);
    atomic_store(&p->received, 0);
    atomic_store(&p->stale, 0);
    atomic_store(&p->next_sequence, 1);
    atomic_store(&p->rr, 0);
    atomic_store(&p->pushers, 0);
    atomic_store(&p->dropped, 0);
    atomic_store(&p->lost, 0);
    atomic_store(&p->waiters, 0);
    atomic_store(&p->waitset, 0);
    atomic_store(&p->space_waiters, 0);
    p->history_head = p->history_count = 0;
    atomic_store(&p->history_lock, 0);
    /* empty after the last close; anything here was written by a peer, and
     * the next audit settles what it pointed at */
    for (int k = 0; k < SHM_PORT_SPARES; k++) atomic_store(&p->spare[k], 0);
    atomic_store(&p->transit, 0);
    queue_init(m, p, id->queue_capacity);
    atomic_store(&p->state, PORT_ACTIVE);
}

void port_notify_force(const shm_map_t *m, shm_port_t *p) {
    atomic_fetch_add(&p->futex_seq, 1);
    futex_wake(&p->futex_seq, 1 << 30);
    uint32_t ws = atomic_load(&p->waitset);
    shm_waitset_word_t *w = ws ? shm_waitset_word(m, ws - 1) : NULL;
    if (w) {
        atomic_fetch_add(&w->seq, 1);
        futex_wake(&w->seq, 1 << 30);
    }
}

void port_notify(const shm_map_t *m, shm_port_t *p) {
    /* pairs with the fence in the waiter: either it sees our push, or we
     * see its waiter count */
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&p->waiters, memory_order_relaxed)) {
        atomic_fetch_add(&p->futex_seq, 1);
        futex_wake(&p->futex_seq, 1);
    }
    uint32_t ws = atomic_load_explicit(&p->waitset, memory_order_relaxed);
    if (ws) {
        shm_waitset_word_t *w = shm_waitset_word(m, ws - 1);
        if (w && atomic_load_explicit(&w->waiters, memory_order_relaxed)) {
            atomic_fetch_add(&w->seq, 1);
            futex_wake(&w->seq, 1 << 30);
        }
    }
}

void port_space_notify(shm_port_t *p) {
    atomic_thread_fence(memory_order_seq_cst);
    if (atomic_load_explicit(&p->space_waiters, memory_order_relaxed)) {
        atomic_fetch_add(&p->space_seq, 1);
        futex_wake(&p->space_seq, 1 << 30);
    }
}

static void drop_ref(const shm_map_t *m, uint64_t ref) {
    int64_t c = shm_ref_chunk(m, ref);
    if (c >= 0) chunk_unref(m, (uint32_t)c);
}

/* futex_wait_for's re-check for a sender waiting for queue space. */
static bool space_or_closed(void *arg) {
    shm_port_t *t = arg;
    /* both words are peer-writable: a capacity above the cells would make
     * every check say "room" and the WAIT loop spin instead of sleep */
    uint32_t cap = t->queue_capacity, cells = t->queue_mask + 1;
    if (cells && cap > cells) cap = cells;
    return queue_depth(t) < cap || atomic_load(&t->state) != PORT_ACTIVE;
}

shoal_result_t port_deliver(const shm_map_t *m, shm_port_t *sender, uint32_t slot, uint32_t gen, uint32_t expect_kind,
                            uint32_t expect_service, uint32_t chunk, uint32_t policy,
                            int64_t timeout_ns) {
    return port_deliver_ex(m, sender, slot, gen, expect_kind, expect_service, chunk, policy,
                           timeout_ns, NULL, UINT64_MAX);
}

shoal_result_t port_deliver_ex(const shm_map_t *m, shm_port_t *sender, uint32_t slot, uint32_t gen,
                               uint32_t expect_kind, uint32_t expect_service, uint32_t chunk,
                               uint32_t policy, int64_t timeout_ns, uint64_t *wait_deadline,
                               uint64_t slice_deadline) {
    shm_port_t *t = shm_port(m, slot);
    if (!t) return SHOAL_ERR_NOT_FOUND;
    /* announce ourselves so the daemon does not drain under us */
    bool transfer = (policy & PORT_DELIVER_TRANSFER) != 0;
    policy &= ~PORT_DELIVER_TRANSFER;
    atomic_fetch_add(&t->pushers, 1);
    shoal_result_t rc = SHOAL_OK;
    if (atomic_load(&t->state) != PORT_ACTIVE || atomic_load(&t->gen) != gen ||
        shm_slot_kind(m, slot) != expect_kind || t->service != expect_service) {
        rc = SHOAL_ERR_NOT_FOUND;
        goto out;
    }
    if (!transfer) chunk_ref(m, chunk);
    uint64_t deadline = 0;
    bool deadline_set = false;
    int drops = 0;
    while (!queue_push(m, t, (uint64_t)chunk + 1)) {
        /* a queue that is neither pushable nor poppable is broken (a sender
         * died mid-push): give up rather than spin */
        if (policy == SHOAL_FULL_DROP_OLDEST && drops++ < 64) {
            uint64_t old;
            if (queue_pop(m, t, &old)) {
                if (!(old & SHM_REF_TOMBSTONE)) drop_ref(m, old);
                atomic_fetch_add_explicit(&t->dropped, 1, memory_order_relaxed);
            }
            continue;
        }
        if (policy == SHOAL_FULL_WAIT && timeout_ns != 0) {
            if (!deadline_set) {
                deadline = wait_deadline && *wait_deadline ? *wait_deadline : shoal_deadline(timeout_ns);
                if (wait_deadline) *wait_deadline = deadline;
                deadline_set = true;
            }
            int64_t left = shoal_remaining(deadline);
            int64_t slice = shoal_remaining(slice_deadline);
            if (left == 0) {
                rc = SHOAL_ERR_TIMEOUT;
            } else if (slice == 0) {
                rc = SHOAL_ERR_BUSY; /* the caller's slice is over: it calls again */
            } else {
                int64_t nap = left < 0 || left > 10000000 ? 10000000 : left;
                if (slice > 0 && slice < nap) nap = slice;
                /* the reference on its way is ours while we wait */
                if (sender) op_pause(sender, chunk);
                int woke = futex_wait_for(&t->space_seq, &t->space_waiters, space_or_closed, t, nap);
                if (sender) op_resume(m, sender);
                if (atomic_load_explicit(&m->dead, memory_order_relaxed))
                    rc = SHOAL_ERR_DAEMON_UNAVAILABLE;
                else if (atomic_load(&t->state) != PORT_ACTIVE || atomic_load(&t->gen) != gen)
                    rc = SHOAL_ERR_NOT_FOUND;
                else if (woke == 1 && slice_deadline != UINT64_MAX)
                    rc = SHOAL_ERR_BUSY; /* a signal: let the caller's handler run */
                else
                    continue;
            }
        } else {
            rc = SHOAL_ERR_QUEUE_FULL;
        }
        if (!transfer) chunk_unref(m, chunk);
        goto out;
    }
    port_notify(m, t);
out:
    atomic_fetch_sub(&t->pushers, 1);
    return rc;
}

void port_report_lost(const shm_map_t *m, uint32_t slot, uint32_t gen, uint64_t seq) {
    shm_port_t *c = shm_port(m, slot);
    if (!c || shm_slot_kind(m, slot) != SHOAL_PORT_CLIENT) return;
    atomic_fetch_add(&c->pushers, 1);
    if (atomic_load(&c->state) == PORT_ACTIVE && atomic_load(&c->gen) == gen) {
        atomic_fetch_add(&c->lost, 1);
        /* a tombstone carries the lost sequence id to the waiting call */
        (void)queue_push(m, c, SHM_REF_TOMBSTONE | (seq & ~SHM_REF_TOMBSTONE));
        port_notify_force(m, c);
    }
    atomic_fetch_sub(&c->pushers, 1);
}

static void release_ref(const shm_map_t *m, uint64_t ref, bool report_lost) {
    int64_t ci = shm_ref_chunk(m, ref);
    if (ci < 0) return;
    shm_chunk_t *c = shm_chunk(m, (uint32_t)ci);
    if (report_lost && (c->flags & CHUNK_FLAG_REQUEST))
        port_report_lost(m, c->origin_slot, c->origin_gen, c->sequence_id);
    chunk_unref(m, (uint32_t)ci);
}

uint32_t port_drain(const shm_map_t *m, shm_port_t *p, bool report_lost) {
    uint32_t n = 0;
    uint64_t ref;
    /* nobody pushes to a closing port, so a full queue takes `cells` pops;
     * more means a peer keeps rewriting the cells: stop there */
    uint64_t max = 2ull * m->hdr->queue_cells;
    for (uint64_t k = 0; k < max && queue_pop(m, p, &ref); k++) {
        if (!(ref & SHM_REF_TOMBSTONE)) {
            release_ref(m, ref, report_lost);
            n++;
        }
    }
    port_space_notify(p);
    return n;
}

uint32_t port_release_held(const shm_map_t *m, shm_port_t *p, bool report_lost) {
    _Atomic uint64_t *held = shm_port_held(m, p);
    uint32_t n = 0;
    for (uint32_t i = 0; i < m->hdr->chunks_per_port; i++) {
        uint64_t ref = atomic_exchange(&held[i], 0);
        if (ref) {
            release_ref(m, ref, report_lost);
            n++;
        }
    }
    atomic_store(&p->held, 0);
    return n;
}

uint32_t port_release_history(const shm_map_t *m, shm_port_t *p) {
    _Atomic uint64_t *h = shm_port_history(m, p);
    uint32_t n = 0;
    /* Only the daemon calls this, on a port that is no longer ACTIVE: its
     * owner is gone or closed it, so nobody else may hold the lock; a word
     * that says otherwise was scribbled on and is not waited for. */
    for (uint32_t i = 0; i < m->hdr->history_max; i++) {
        uint64_t ref = atomic_exchange(&h[i], 0);
        if (ref) {
            drop_ref(m, ref);
            n++;
        }
    }
    p->history_count = 0;
    p->history_head = 0;
    atomic_store(&p->history_lock, 0);
    return n;
}

/* The lock word holds the owner's pid, so a waiter can break the lock of a
 * process that was killed while holding it; a live holder (or a pid written
 * by a hostile peer) is waited for at most max_ns. */
int spin_lock_bounded(_Atomic uint32_t *l, uint64_t max_ns) {
    uint32_t me = (uint32_t)getpid();
    unsigned spins = 0;
    uint32_t expected = 0;
    uint64_t start = 0;
    while (!atomic_compare_exchange_weak_explicit(l, &expected, me, memory_order_acquire,
                                                  memory_order_relaxed)) {
        if (expected != 0 && ++spins % 1024 == 0) {
            if (kill((pid_t)expected, 0) != 0 && errno == ESRCH &&
                atomic_compare_exchange_strong(l, &expected, me))
                return 0; /* the holder is dead: take the lock over */
            uint64_t now = shoal_now_ns();
            if (!start) start = now;
            else if (now - start > max_ns) return -1;
        }
        expected = 0;
        if (spins > 64) sched_yield();
    }
    return 0;
}

void spin_lock_force(_Atomic uint32_t *l) {
    atomic_store(l, (uint32_t)getpid());
}

void spin_unlock(_Atomic uint32_t *l) { atomic_store_explicit(l, 0, memory_order_release); }
