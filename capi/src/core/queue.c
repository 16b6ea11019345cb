#include "core/queue.h"

void queue_init(const shm_map_t *m, shm_port_t *p, uint32_t capacity) {
    uint32_t cells = 2; /* see shm.c: a 1-cell ring cannot tell full from empty */
    while (cells < capacity) cells <<= 1;
    if (cells > m->hdr->queue_cells) cells = m->hdr->queue_cells;
    shm_queue_cell_t *c = shm_port_cells(m, p);
    for (uint32_t i = 0; i < cells; i++) {
        atomic_store_explicit(&c[i].seq, i, memory_order_relaxed);
        atomic_store_explicit(&c[i].value, 0, memory_order_relaxed);
    }
    p->queue_mask = cells - 1;
    p->queue_capacity = capacity;
    atomic_store_explicit(&p->enq_pos, 0, memory_order_relaxed);
    atomic_store_explicit(&p->deq_pos, 0, memory_order_relaxed);
}

/* Contention retries are short; a cell whose sequence never fits (corrupt
 * memory) must not spin forever, so retries are bounded. */
#define QUEUE_MAX_RETRIES 1024

bool queue_push(const shm_map_t *m, shm_port_t *p, uint64_t value) {
    shm_queue_cell_t *cells = shm_port_cells(m, p);
    uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1); /* bounded even if corrupt */
    uint64_t pos = atomic_load_explicit(&p->enq_pos, memory_order_relaxed);
    for (int tries = 0; tries < QUEUE_MAX_RETRIES; tries++) {
        /* the logical capacity may be below the cell count; only then do we
         * read the consumer's position (a cache line it writes) */
        if (p->queue_capacity <= mask) {
            uint64_t deq = atomic_load_explicit(&p->deq_pos, memory_order_acquire);
            if (pos - deq >= p->queue_capacity && pos >= deq) return false;
        }
        shm_queue_cell_t *c = &cells[pos & mask];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - pos);
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&p->enq_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                /* an empty cell holds 0; if the daemon already marked this position
                 * as skipped (it took us for a dead sender), take the next one */
                uint64_t empty = 0;
                if (!atomic_compare_exchange_strong_explicit(&c->value, &empty, value,
                                                             memory_order_relaxed,
                                                             memory_order_relaxed)) {
                    pos = atomic_load_explicit(&p->enq_pos, memory_order_relaxed);
                    continue;
                }
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return true;
            }
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&p->enq_pos, memory_order_relaxed);
        }
    }
    return false;
}

bool queue_pop(const shm_map_t *m, shm_port_t *p, uint64_t *value) {
    shm_queue_cell_t *cells = shm_port_cells(m, p);
    uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1);
    uint64_t pos = atomic_load_explicit(&p->deq_pos, memory_order_relaxed);
    for (int tries = 0; tries < QUEUE_MAX_RETRIES; tries++) {
        shm_queue_cell_t *c = &cells[pos & mask];
        uint64_t seq = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t dif = (int64_t)(seq - (pos + 1));
        if (dif == 0) {
            if (atomic_compare_exchange_weak_explicit(&p->deq_pos, &pos, pos + 1,
                                                      memory_order_relaxed, memory_order_relaxed)) {
                *value = atomic_load_explicit(&c->value, memory_order_relaxed);
                atomic_store_explicit(&c->value, 0, memory_order_relaxed); /* empty again */
                atomic_store_explicit(&c->seq, pos + (uint64_t)mask + 1, memory_order_release);
                return true;
            }
        } else if (dif < 0) {
            return false;
        } else {
            pos = atomic_load_explicit(&p->deq_pos, memory_order_relaxed);
        }
    }
    return false;
}

uint32_t queue_depth(const shm_port_t *p) {
    uint64_t e = atomic_load_explicit(&p->enq_pos, memory_order_relaxed);
    uint64_t d = atomic_load_explicit(&p->deq_pos, memory_order_relaxed);
    return e > d ? (uint32_t)(e - d) : 0;
}

bool queue_head_hole(const shm_map_t *m, shm_port_t *p, uint64_t *pos) {
    uint64_t deq = atomic_load(&p->deq_pos), enq = atomic_load(&p->enq_pos);
    uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1);
    shm_queue_cell_t *cell = &shm_port_cells(m, p)[deq & mask];
    if (enq <= deq || atomic_load(&cell->seq) != deq) return false;
    *pos = deq;
    return true;
}

queue_hole_t queue_fill_hole(const shm_map_t *m, shm_port_t *p, uint64_t pos) {
    uint32_t mask = p->queue_mask & (m->hdr->queue_cells - 1);
    shm_queue_cell_t *cell = &shm_port_cells(m, p)[pos & mask];
    /* whoever fills the empty cell first owns the position */
    uint64_t empty = 0, expect = pos;
    if (atomic_compare_exchange_strong(&cell->value, &empty, SHM_REF_SKIP))
        return atomic_compare_exchange_strong(&cell->seq, &expect, pos + 1) ? QUEUE_HOLE_SKIPPED
                                                                            : QUEUE_HOLE_KEPT;
    /* a live sender would store this same sequence */
    if (atomic_compare_exchange_strong(&cell->seq, &expect, pos + 1)) return QUEUE_HOLE_PUBLISHED;
    return QUEUE_HOLE_KEPT;
}
