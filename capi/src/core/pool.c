#include "core/pool.h"

int pool_find(const shm_map_t *m, uint64_t size) {
    for (uint32_t i = 0; i < m->hdr->pool_count; i++)
        if (m->pools[i].chunk_size >= size) return (int)i;
    return -1;
}

/* A CAS loop on a word peers can scribble on must end: honest contention
 * settles in a few rounds, so many more means the word is being fought over
 * by a hostile writer, and the caller gets "nothing" instead. */
#define POOL_MAX_RETRIES 100000

int64_t pool_alloc(const shm_map_t *m, uint32_t pi) {
    shm_pool_t *p = shm_pool(m, pi);
    const shm_pool_geom_t *g = shm_pool_geom(m, pi);
    if (!p) return -1;
    uint64_t head = atomic_load_explicit(&p->free_head, memory_order_acquire);
    for (int tries = 0; tries < POOL_MAX_RETRIES; tries++) {
        uint32_t top = (uint32_t)head;
        if (top == 0 || top > g->chunk_count) return -1; /* the caller counts failures */
        shm_chunk_t *c = shm_chunk(m, g->first_chunk + top - 1);
        uint32_t next = atomic_load_explicit(&c->next_free, memory_order_relaxed);
        if (next > g->chunk_count) next = 0; /* torn read under ABA, or scribbled */
        uint64_t want = ((head >> 32) + 1) << 32 | next;
        if (atomic_compare_exchange_weak_explicit(&p->free_head, &head, want,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            atomic_store_explicit(&c->refcount, 1, memory_order_relaxed);
            uint32_t used = atomic_fetch_add_explicit(&p->in_use, 1, memory_order_relaxed) + 1;
            uint32_t hw = atomic_load_explicit(&p->high_water, memory_order_relaxed);
            while (used > hw && !atomic_compare_exchange_weak_explicit(
                                    &p->high_water, &hw, used, memory_order_relaxed,
                                    memory_order_relaxed)) {
            }
            return g->first_chunk + top - 1;
        }
    }
    return -1;
}

static void pool_free(const shm_map_t *m, shm_chunk_t *c) {
    uint32_t idx = (uint32_t)(c - shm_chunk(m, 0));
    uint32_t pi = shm_chunk_pool(m, idx);
    shm_pool_t *p = pi == UINT32_MAX ? NULL : shm_pool(m, pi);
    if (!p) return;
    uint32_t index = idx - m->pools[pi].first_chunk;
    /* count it free before it is poppable, so in_use never exceeds the count */
    atomic_fetch_sub_explicit(&p->in_use, 1, memory_order_relaxed);
    uint64_t head = atomic_load_explicit(&p->free_head, memory_order_relaxed);
    for (int tries = 0; tries < POOL_MAX_RETRIES; tries++) {
        atomic_store_explicit(&c->next_free, (uint32_t)head, memory_order_relaxed);
        uint64_t want = ((head >> 32) + 1) << 32 | (index + 1);
        if (atomic_compare_exchange_weak_explicit(&p->free_head, &head, want,
                                                  memory_order_release, memory_order_relaxed))
            break;
    }
}

void chunk_ref(const shm_map_t *m, uint32_t i) {
    shm_chunk_t *c = shm_chunk(m, i);
    if (c) atomic_fetch_add_explicit(&c->refcount, 1, memory_order_relaxed);
}

bool chunk_unref_last(const shm_map_t *m, uint32_t i) {
    shm_chunk_t *c = shm_chunk(m, i);
    if (!c) return false;
    uint32_t cur = atomic_load_explicit(&c->refcount, memory_order_relaxed);
    for (;;) {
        if (cur == 0) return false; /* already free: a double release must not free twice */
        if (atomic_compare_exchange_weak_explicit(&c->refcount, &cur, cur - 1,
                                                  memory_order_acq_rel, memory_order_relaxed))
            return cur == 1;
    }
}

void pool_free_chunk(const shm_map_t *m, uint32_t i) {
    shm_chunk_t *c = shm_chunk(m, i);
    if (!c) return;
    atomic_store_explicit(&c->refcount, 0, memory_order_relaxed); /* spares keep 1 */
    pool_free(m, c);
}

void chunk_unref(const shm_map_t *m, uint32_t i) {
    if (chunk_unref_last(m, i)) pool_free(m, shm_chunk(m, i));
}
