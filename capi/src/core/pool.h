/* Chunk allocator: fixed-size pools with a lock-free free list (tagged
 * Treiber stack) and a reference count per chunk. */
#ifndef SHOAL_CORE_POOL_H
#define SHOAL_CORE_POOL_H

#include <stdbool.h>

#include "core/shm.h"

/* Smallest pool whose chunks hold `size` bytes, or -1. */
int pool_find(const shm_map_t *m, uint64_t size);
/* Pops a free chunk of the pool, refcount 1. Returns its index or -1. */
int64_t pool_alloc(const shm_map_t *m, uint32_t pool);
/* Adds a reference. */
void chunk_ref(const shm_map_t *m, uint32_t chunk);
/* Drops a reference; the last one returns the chunk to its pool. */
void chunk_unref(const shm_map_t *m, uint32_t chunk);
/* Drops a reference; true if it was the last one: the caller then owns the
 * free chunk and must park it (core/spare.h) or give it to pool_free_chunk(). */
bool chunk_unref_last(const shm_map_t *m, uint32_t chunk);
/* Returns a chunk the caller owns whole to its pool. */
void pool_free_chunk(const shm_map_t *m, uint32_t chunk);

#endif
