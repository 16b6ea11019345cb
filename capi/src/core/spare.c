#include "core/spare.h"

#include "core/pool.h"

int64_t spare_take(const shm_map_t *m, shm_port_t *p, uint32_t pool) {
    for (int k = 0; k < SHM_PORT_SPARES; k++) {
        uint64_t v = atomic_load_explicit(&p->spare[k], memory_order_relaxed);
        int64_t ci = shm_ref_chunk(m, v);
        if (ci < 0 || shm_chunk_pool(m, (uint32_t)ci) != pool) continue;
        if (atomic_compare_exchange_strong(&p->spare[k], &v, 0)) return ci;
    }
    return -1;
}

int64_t spare_steal(const shm_map_t *m, uint32_t pool) {
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        int64_t ci = spare_take(m, shm_port(m, s), pool);
        if (ci >= 0) return ci;
    }
    return -1;
}

void spare_release_ref(const shm_map_t *m, shm_port_t *p, uint32_t kind, uint32_t chunk,
                       uint32_t pool) {
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

uint32_t spare_return_all(const shm_map_t *m, shm_port_t *p) {
    uint32_t n = 0;
    for (int k = 0; k < SHM_PORT_SPARES; k++) {
        int64_t ci = shm_ref_chunk(m, atomic_exchange(&p->spare[k], 0));
        if (ci >= 0) {
            pool_free_chunk(m, (uint32_t)ci);
            n++;
        }
    }
    return n;
}

uint32_t spare_count(const shm_map_t *m, uint32_t pool) {
    uint32_t n = 0;
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        shm_port_t *p = shm_port(m, s);
        for (int k = 0; k < SHM_PORT_SPARES; k++) {
            int64_t ci = shm_ref_chunk(m, atomic_load_explicit(&p->spare[k], memory_order_relaxed));
            if (ci >= 0 && shm_chunk_pool(m, (uint32_t)ci) == pool) n++;
        }
    }
    return n;
}
