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
 * free chunk and must park it or give it to pool_free_chunk(). */
bool chunk_unref_last(const shm_map_t *m, uint32_t chunk);
void pool_free_chunk(const shm_map_t *m, uint32_t chunk);
/* Chunks of `pool` parked as spares in ports (approximate under traffic). */
uint32_t pool_spares(const shm_map_t *m, uint32_t pool);
/* Takes a parked spare of `pool` from port `p`; -1 if it has none. Spares
 * keep refcount 1, so the caller owns the chunk as it comes. */
int64_t port_take_spare(const shm_map_t *m, shm_port_t *p, uint32_t pool);
/* Takes a parked spare of `pool` from any port, refcount 1; -1 if none. */
int64_t pool_steal_spare(const shm_map_t *m, uint32_t pool);
/* Returns a port's spares to their pools (port closing). */
uint32_t port_release_spares(const shm_map_t *m, shm_port_t *p);

#endif
