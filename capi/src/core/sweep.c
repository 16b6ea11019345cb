#include "core/sweep.h"

#include <linux/membarrier.h>
#include <sched.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "core/futex.h"
#include "core/pool.h"

void op_wait_sweep(const shm_map_t *m, shm_port_t *p, uint32_t sw) {
    shm_map_t *mm = (shm_map_t *)m; /* only the private skip word is written */
    if (atomic_load_explicit(&mm->sweep_skip, memory_order_relaxed) == sw) return;
    /* step out of the operation while the audit looks */
    uint32_t v = atomic_load_explicit(&p->op, memory_order_relaxed);
    atomic_store_explicit(&p->op, v + 1, memory_order_release);
    uint64_t start = shoal_now_ns();
    unsigned spins = 0;
    while (atomic_load_explicit(&m->shared_hdr->sweep, memory_order_acquire) == sw &&
           !atomic_load_explicit(&m->dead, memory_order_relaxed)) {
        if (++spins % 64 == 0) {
            if (shoal_now_ns() - start > SWEEP_OWNER_WAIT_NS) {
                /* a word stuck by a dead daemon or a scribbler: never wait
                 * for this value again */
                atomic_store_explicit(&mm->sweep_skip, sw, memory_order_relaxed);
                break;
            }
            sched_yield();
        }
    }
    v = atomic_load_explicit(&p->op, memory_order_relaxed);
    atomic_store_explicit(&p->op, v | 1u, memory_order_relaxed);
    atomic_signal_fence(memory_order_seq_cst);
}

static long membarrier(int cmd) { return syscall(__NR_membarrier, cmd, 0, 0); }

int sweep_register_process(void) {
    return membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED) == 0 ? 0 : -1;
}

bool sweep_supported(void) {
    long q = membarrier(MEMBARRIER_CMD_QUERY);
    return q > 0 && (q & MEMBARRIER_CMD_GLOBAL_EXPEDITED);
}

static void count_ref(const shm_map_t *m, uint32_t *refs, uint64_t v) {
    if (v == SHM_REF_SKIP) return;
    int64_t ci = shm_ref_chunk(m, v);
    if (ci >= 0 && refs[ci] < UINT32_MAX) refs[ci]++;
}

static void count_port(const shm_map_t *m, uint32_t slot, bool live_owner, uint32_t *refs) {
    const shm_header_t *h = m->hdr;
    shm_port_t *p = shm_port(m, slot);
    if (atomic_load_explicit(&p->state, memory_order_acquire) == PORT_FREE) return;
    _Atomic uint64_t *held = shm_port_held(m, p);
    for (uint32_t i = 0; i < h->chunks_per_port; i++)
        count_ref(m, refs, atomic_load_explicit(&held[i], memory_order_relaxed));
    for (int k = 0; k < SHM_PORT_SPARES; k++)
        count_ref(m, refs, atomic_load_explicit(&p->spare[k], memory_order_relaxed));
    /* a dead owner's transit word may be stale (its reference already
     * delivered): only a live, paused owner's counts */
    if (live_owner) count_ref(m, refs, atomic_load_explicit(&p->transit, memory_order_relaxed));
    /* a popped cell is zeroed, so every non-zero cell is a queued entry */
    shm_queue_cell_t *cells = shm_port_cells(m, p);
    uint32_t ncells = (p->queue_mask & (h->queue_cells - 1)) + 1;
    for (uint32_t i = 0; i < ncells; i++) {
        uint64_t v = atomic_load_explicit(&cells[i].value, memory_order_relaxed);
        if (!(v & SHM_REF_TOMBSTONE)) count_ref(m, refs, v);
    }
    if (shm_slot_kind(m, slot) == SHOAL_PORT_PUBLISHER) {
        _Atomic uint64_t *hist = shm_port_history(m, p);
        for (uint32_t i = 0; i < h->history_max; i++)
            count_ref(m, refs, atomic_load_explicit(&hist[i], memory_order_relaxed));
    }
}

/* Marks the chunks on a pool's free list; false if the list is not a
 * simple chain (a cycle or a link out of range: corrupt, left alone). */
static bool mark_free(const shm_map_t *m, uint32_t pi, uint8_t *free_mark, uint32_t *count) {
    const shm_pool_geom_t *g = shm_pool_geom(m, pi);
    uint32_t top = (uint32_t)atomic_load_explicit(&shm_pool(m, pi)->free_head, memory_order_acquire);
    uint32_t n = 0;
    while (top) {
        if (top > g->chunk_count) return false;
        uint32_t ci = g->first_chunk + top - 1;
        if (free_mark[ci]) return false;
        free_mark[ci] = 1;
        n++;
        shm_chunk_t *ch = shm_chunk(m, ci);
        if (!ch) return false;
        top = atomic_load_explicit(&ch->next_free, memory_order_relaxed);
    }
    *count = n;
    return true;
}

void sweep_run(shm_map_t *m, uint32_t seq, const uint8_t *active, uint32_t *refs, uint8_t *free_mark,
               uint32_t *op_snap, uint64_t max_wait_ns, void (*quiet)(void *), void *quiet_arg,
               sweep_result_t *out) {
    const shm_header_t *h = m->hdr;
    memset(out, 0, sizeof *out);
    atomic_store(&m->shared_hdr->sweep, seq);
    if (membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) != 0) goto end;
    uint64_t start = shoal_now_ns();
    for (uint32_t s = 0; s < h->port_slots; s++) {
        if (!active[s]) continue;
        shm_port_t *p = shm_port(m, s);
        for (unsigned spins = 0;; spins++) {
            uint32_t v = atomic_load_explicit(&p->op, memory_order_acquire);
            if (!(v & 1u)) {
                op_snap[s] = v;
                break;
            }
            if (spins % 64 == 63) {
                if (shoal_now_ns() - start > max_wait_ns) goto end;
                sched_yield();
            }
        }
    }
    if (quiet) quiet(quiet_arg);
    memset(refs, 0, (size_t)h->chunk_total * sizeof *refs);
    memset(free_mark, 0, h->chunk_total);
    for (uint32_t s = 0; s < h->port_slots; s++) count_port(m, s, active[s] != 0, refs);
    uint32_t free_count[SHM_MAX_POOLS];
    bool pool_ok[SHM_MAX_POOLS];
    for (uint32_t i = 0; i < h->pool_count; i++)
        pool_ok[i] = mark_free(m, i, free_mark, &free_count[i]);
    /* the picture counts only if nobody moved while we looked */
    for (uint32_t s = 0; s < h->port_slots; s++)
        if (active[s] && atomic_load_explicit(&shm_port(m, s)->op, memory_order_acquire) != op_snap[s])
            goto end;
    for (uint32_t i = 0; i < h->pool_count; i++) {
        if (!pool_ok[i]) continue;
        const shm_pool_geom_t *g = shm_pool_geom(m, i);
        uint32_t reclaimed = 0;
        for (uint32_t c = g->first_chunk; c < g->first_chunk + g->chunk_count; c++) {
            if (free_mark[c]) {
                if (refs[c]) out->inconsistent++;
                continue;
            }
            shm_chunk_t *ch = shm_chunk(m, c);
            if (!ch) continue;
            _Atomic uint32_t *rc = &ch->refcount;
            uint32_t cur = atomic_load(rc);
            /* a CAS, so an owner that stopped waiting for us is never overwritten */
            if (refs[c] == 0) {
                if (atomic_compare_exchange_strong(rc, &cur, 0)) {
                    pool_free_chunk(m, c);
                    reclaimed++;
                }
            } else if (cur != refs[c] && atomic_compare_exchange_strong(rc, &cur, refs[c])) {
                out->refs_fixed++;
            }
        }
        out->reclaimed += reclaimed;
        /* the counter drifts when a process dies between its two steps */
        atomic_store(&shm_pool(m, i)->in_use, g->chunk_count - free_count[i] - reclaimed);
    }
    out->done = 1;
end:
    atomic_store(&m->shared_hdr->sweep, 0);
}
