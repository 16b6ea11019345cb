/* Reference audit ("sweep"): how the daemon finds chunks stranded by a
 * process killed in the middle of moving one, in a domain that never goes
 * idle.
 *
 * Owners bracket every step that moves chunk references (loan, take,
 * release, send, publish) with op_begin/op_end, which make the port's `op`
 * word odd for the duration. The daemon raises the header's `sweep` word,
 * issues membarrier(GLOBAL_EXPEDITED) (so the owners' plain stores need no
 * fence on the hot path), waits until every live port's `op` is even, and
 * then sees a still picture: every reference sits in a held table, a queue,
 * a spare slot, a history ring or a `transit` word. It counts them, walks
 * the free lists, frees the chunks nobody references and corrects reference
 * counts, and lowers `sweep`. An owner that finds `sweep` raised waits for
 * it (bounded) before it starts; if it gives up waiting, its `op` changes
 * and the daemon discards that audit. */
#ifndef SHOAL_CORE_SWEEP_H
#define SHOAL_CORE_SWEEP_H

#include <stdbool.h>

#include "core/shm.h"

/* How long an owner waits for an audit to end before it goes on anyway. */
#define SWEEP_OWNER_WAIT_NS 20000000ull

void op_wait_sweep(const shm_map_t *m, shm_port_t *p, uint32_t sweep);

static inline void op_begin(const shm_map_t *m, shm_port_t *p) {
    uint32_t v = atomic_load_explicit(&p->op, memory_order_relaxed);
    atomic_store_explicit(&p->op, v | 1u, memory_order_relaxed);
    /* the daemon's membarrier supplies the store-load fence */
    atomic_signal_fence(memory_order_seq_cst);
    uint32_t sw = atomic_load_explicit(&m->shared_hdr->sweep, memory_order_relaxed);
    if (__builtin_expect(sw != 0, 0)) op_wait_sweep(m, p, sw);
    atomic_signal_fence(memory_order_seq_cst);
}

static inline void op_end(shm_port_t *p) {
    atomic_signal_fence(memory_order_seq_cst);
    uint32_t v = atomic_load_explicit(&p->op, memory_order_relaxed);
    atomic_store_explicit(&p->op, (v | 1u) + 1u, memory_order_release);
}

/* A chunk reference the owner keeps outside its tables while it sleeps
 * inside an operation (a WAIT-policy send): the audit counts it. */
static inline void op_pause(shm_port_t *p, uint32_t chunk) {
    atomic_store_explicit(&p->transit, (uint64_t)chunk + 1, memory_order_relaxed);
    op_end(p);
}
static inline void op_resume(const shm_map_t *m, shm_port_t *p) {
    op_begin(m, p);
    atomic_store_explicit(&p->transit, 0, memory_order_relaxed);
}

/* Registers this process for the daemon's expedited barrier; 0 or -1. */
int sweep_register_process(void);
/* Daemon: whether the kernel offers the barrier the audit needs. */
bool sweep_supported(void);

typedef struct sweep_result {
    int done;           /* 0: aborted (an owner did not quiesce in time) */
    uint32_t reclaimed; /* stranded chunks returned to their pools */
    uint32_t refs_fixed;
    uint32_t inconsistent; /* chunks both free and referenced: left alone */
} sweep_result_t;

/* Daemon: one audit. `active[slot]` says which slots belong to live
 * processes (their `op` is waited for); scratch arrays sized chunk_total.
 * Bounded by max_wait_ns of waiting for owners. Once no live owner is
 * mid-operation, `quiet(quiet_arg)` runs before the count: what is still
 * half-done then was left by the dead (claimed queue cells, senders
 * counted into closing ports). */
void sweep_run(shm_map_t *m, uint32_t seq, const uint8_t *active, uint32_t *refs, uint8_t *free_mark,
               uint32_t *op_snap, uint64_t max_wait_ns, void (*quiet)(void *), void *quiet_arg,
               sweep_result_t *out);

#endif
