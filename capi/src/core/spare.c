#include "core/spare.h"

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
