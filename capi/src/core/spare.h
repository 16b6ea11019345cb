/* Spares: freed chunks a port keeps in its slot for its next loan, so a
 * steady exchange never touches the pool's shared free list. A parked spare
 * keeps refcount 1 and counts as in use by its pool; a loan that finds its
 * pool empty steals other ports' spares, so spares never make a pool run
 * dry, however small. Owner, thieves and daemon take a spare slot by
 * compare-and-swap: exactly one wins it. */
#ifndef SHOAL_CORE_SPARE_H
#define SHOAL_CORE_SPARE_H

#include "core/pool.h"
#include "core/shm.h"

/* Takes a parked spare of `pool` from port `p`; -1 if it has none. The
 * caller owns the chunk as it comes (refcount 1). */
int64_t spare_take(const shm_map_t *m, shm_port_t *p, uint32_t pool);
/* Takes a parked spare of `pool` from any port, refcount 1; -1 if none. */
int64_t spare_steal(const shm_map_t *m, uint32_t pool);
/* Drops the reference the owner of `p` (a port of `kind`) had to `chunk`
 * of `pool`, already gone from its held table: the last reference parks
 * the chunk in p's spares, or returns it to the pool when p has no free
 * spare slot or is a subscriber (it never loans: its spares would sit idle,
 * and four pairs of them held a 16-chunk pool whole, sending every loan
 * through a scan of all port slots to steal them back). Inline: every
 * release of the hot path runs it. */
static inline void spare_release_ref(const shm_map_t *m, shm_port_t *p, uint32_t kind,
                                     uint32_t chunk, uint32_t pool) {
    const shm_pool_geom_t *pl = shm_pool_geom(m, pool);
    int spare = -1;
    if (pl && pl->chunk_count >= SHM_SPARE_MIN_CHUNKS && kind != SHOAL_PORT_SUBSCRIBER)
        for (int k = 0; k < SHM_PORT_SPARES && spare < 0; k++)
            if (atomic_load_explicit(&p->spare[k], memory_order_relaxed) == 0) spare = k;
    shm_chunk_t *h = shm_chunk(m, chunk);
    /* Sole holder (nobody else can add a reference to a chunk they do not
     * hold): park it as is, without a write to its header line, which the
     * sender still has in its cache. */
    if (spare >= 0 && atomic_load_explicit(&h->refcount, memory_order_acquire) == 1) {
        atomic_store_explicit(&p->spare[spare], (uint64_t)chunk + 1, memory_order_release);
        return;
    }
    if (!chunk_unref_last(m, chunk)) return;
    if (spare >= 0) {
        atomic_store_explicit(&h->refcount, 1, memory_order_relaxed);
        atomic_store_explicit(&p->spare[spare], (uint64_t)chunk + 1, memory_order_release);
        return;
    }
    pool_free_chunk(m, chunk);
}

/* Returns a port's spares to their pools (its owner closing it, or the
 * daemon); the count. */
uint32_t spare_return_all(const shm_map_t *m, shm_port_t *p);
/* Chunks of `pool` parked as spares in all ports (approximate under traffic). */
uint32_t spare_count(const shm_map_t *m, uint32_t pool);

#endif
