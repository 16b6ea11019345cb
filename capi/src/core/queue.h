/* Bounded multi-producer multi-consumer queue of chunk references living in
 * a port (sequence-numbered cells). Producers are senders; the consumer is
 * the port's owner, and senders also pop when they drop the oldest. */
#ifndef SHOAL_CORE_QUEUE_H
#define SHOAL_CORE_QUEUE_H

#include <stdbool.h>

#include "core/shm.h"

/* Sets up cells for `capacity` entries (daemon, port not ACTIVE). */
void queue_init(const shm_map_t *m, shm_port_t *p, uint32_t capacity);
/* false if full (capacity entries queued). */
bool queue_push(const shm_map_t *m, shm_port_t *p, uint64_t value);
/* false if empty. */
bool queue_pop(const shm_map_t *m, shm_port_t *p, uint64_t *value);
uint32_t queue_depth(const shm_port_t *p);

/* A sender killed between claiming a position and publishing it leaves a
 * hole that stops the receiver there for good. True when the head of the
 * queue is such a claimed, unpublished position (in *pos); a live sender's
 * push in progress looks the same, so the caller decides by time. */
bool queue_head_hole(const shm_map_t *m, shm_port_t *p, uint64_t *pos);

typedef enum {
    QUEUE_HOLE_KEPT,      /* the sender was alive after all: its push stands */
    QUEUE_HOLE_SKIPPED,   /* empty cell: a skip entry (SHM_REF_SKIP) fills it */
    QUEUE_HOLE_PUBLISHED, /* written but unpublished: published as the sender would */
} queue_hole_t;
/* Fills the hole at `pos` for its dead sender (daemon). The cell's value
 * word arbitrates by compare-and-swap, so a sender that was only slow and
 * the caller never both own the position. */
queue_hole_t queue_fill_hole(const shm_map_t *m, shm_port_t *p, uint64_t pos);
/* False only when a pop would find the queue empty (a cheap look before a
 * pop); a cell already reused by a concurrent pop (a sender dropping the
 * oldest) says "maybe", and queue_pop sorts it out with a fresh position. */
static inline bool queue_ready(const shm_map_t *m, shm_port_t *p) {
    uint64_t pos = atomic_load_explicit(&p->deq_pos, memory_order_relaxed);
    shm_queue_cell_t *c = &shm_port_cells(m, p)[pos & p->queue_mask & (m->hdr->queue_cells - 1)];
    return (int64_t)(atomic_load_explicit(&c->seq, memory_order_acquire) - (pos + 1)) >= 0;
}

#endif
