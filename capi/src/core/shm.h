/* Shared-memory layout. Everything here lives in the management segment,
 * which every registered process maps; nothing holds a raw pointer, only
 * indexes and offsets that are bounds-checked by the resolvers below. */
#ifndef SHOAL_CORE_SHM_H
#define SHOAL_CORE_SHM_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "shoal.h"

#define SHM_MAGIC 0x314d47484c414f53ULL /* "SOALHGM1" */
#define SHM_CACHELINE 64
#define SHM_NAME_MAX 128
#define SHM_PROC_NAME_MAX 64
#define SHM_WAITSETS_MAX 64 /* per process: a 64-bit bitmap in the runtime */
#define SHM_MAX_POOLS 64
/* Freed chunks a port keeps for its next loan, so a steady exchange never
 * touches the pool's shared free list; a loan that finds its pool empty
 * steals them, so spares never make a pool run dry, however small. */
#define SHM_PORT_SPARES 2
#define SHM_SPARE_MIN_CHUNKS 1

/* Queue entries and held slots: 0 is empty, otherwise chunk index + 1.
 * Tombstones tell a client its request was lost with a dead server. */
#define SHM_REF_TOMBSTONE (1ULL << 63)
/* A position the daemon filled because its sender died before writing it:
 * receivers skip it. */
#define SHM_REF_SKIP UINT64_MAX

enum { PORT_FREE = 0, PORT_ACTIVE = 1, PORT_CLOSING = 2 };
enum { PROC_FREE = 0, PROC_ACTIVE = 1 };
enum { CHUNK_FLAG_REQUEST = 1u, CHUNK_FLAG_RESPONSE = 2u, CHUNK_FLAG_SAMPLE = 4u };

/* A pool's geometry. Every process keeps a private, validated copy (the
 * daemon from its config, clients from the daemon's reply); the copy in
 * the segment is informational and never read back. */
typedef struct shm_pool_geom {
    uint64_t chunk_size;  /* payload bytes */
    uint64_t stride;      /* bytes between chunks in the payload segment */
    uint64_t segment_size;
    uint32_t chunk_count;
    uint32_t first_chunk; /* index of its first header in the chunk table */
} shm_pool_geom_t;

typedef struct shm_pool {
    shm_pool_geom_t geom; /* informational only (see above) */
    _Alignas(SHM_CACHELINE) _Atomic uint64_t free_head; /* tag<<32 | (index+1) */
    _Alignas(SHM_CACHELINE) _Atomic uint32_t in_use;
    _Atomic uint32_t high_water;
    _Atomic uint64_t alloc_failures;
} shm_pool_t;

typedef struct shm_chunk {
    _Atomic uint32_t refcount;
    _Atomic uint32_t next_free; /* index within pool + 1 */
    uint32_t pool;
    uint32_t index;             /* within pool */
    uint64_t size;              /* bytes the receiver sees */
    uint64_t sequence_id;
    uint32_t origin_slot;       /* requests: client port; responses: server port */
    uint32_t origin_gen;
    uint32_t service;
    uint32_t flags;
    uint32_t loaned_size_lo;    /* loaned size, to cap set_size */
    uint32_t loaned_size_hi;
    uint64_t reserved;
} shm_chunk_t;

typedef struct shm_process {
    _Atomic uint32_t state;
    uint32_t gen;
    int32_t pid;
    uint32_t uid;
    char name[SHM_PROC_NAME_MAX];
} shm_process_t;

typedef struct shm_waitset_word {
    _Atomic uint32_t seq;
    _Atomic uint32_t waiters;
    _Atomic uint32_t in_use;
    uint32_t pad;
} shm_waitset_word_t;

typedef struct shm_service {
    _Atomic uint32_t state; /* 0 free, 1 used */
    uint32_t gen;
    char name[SHM_NAME_MAX];
    _Atomic uint32_t receiver_hi; /* scan bound of receivers[] */
    _Atomic uint32_t publishers, subscribers, clients, servers;
    /* followed in the segment by receivers[receivers_per_service]: slot+1 or 0 */
} shm_service_t;

typedef struct shm_queue_cell {
    _Atomic uint64_t seq;
    _Atomic uint64_t value;
} shm_queue_cell_t;

typedef struct shm_port {
    /* identity, written by the daemon while the port is not ACTIVE */
    _Atomic uint32_t state;
    _Atomic uint32_t gen;
    uint32_t kind;
    uint32_t service;
    uint32_t process;
    int32_t pid;
    uint32_t queue_mask;     /* cells - 1 (power of two) */
    uint32_t queue_capacity; /* as asked for */
    uint32_t policy;         /* shoal_full_policy_t, applied when this port SENDS */
    uint32_t history;        /* publishers: samples kept */
    int64_t send_timeout_ns;
    /* owner-written counters */
    _Alignas(SHM_CACHELINE) _Atomic uint32_t held;
    /* odd while the owner moves chunks (see shm_header_t.sweep) */
    _Atomic uint32_t op;
    /* a reference the owner holds outside its tables: chunk + 1 or 0 */
    _Atomic uint64_t transit;
    _Atomic uint64_t sent;
    _Atomic uint64_t received;
    _Atomic uint64_t stale;
    _Atomic uint64_t next_sequence;
    _Atomic uint32_t rr;     /* client: round-robin cursor over servers */
    /* written by senders */
    _Alignas(SHM_CACHELINE) _Atomic uint32_t pushers;
    _Atomic uint64_t dropped;
    _Atomic uint64_t lost;   /* client: requests lost with a dead server */
    /* wake-up word: senders bump seq only when someone waits */
    _Alignas(SHM_CACHELINE) _Atomic uint32_t futex_seq;
    _Atomic uint32_t waiters;
    _Atomic uint32_t waitset; /* global waitset word index + 1, or 0 */
    _Atomic uint32_t space_waiters; /* senders waiting for queue space */
    _Atomic uint32_t space_seq;
    /* queue positions on their own lines */
    _Alignas(SHM_CACHELINE) _Atomic uint64_t enq_pos;
    _Alignas(SHM_CACHELINE) _Atomic uint64_t deq_pos;
    /* owner-parked free chunks (refcount 1, counted as in_use by the pool) */
    _Alignas(SHM_CACHELINE) _Atomic uint64_t spare[SHM_PORT_SPARES];
    /* publisher history ring, guarded by a spinlock (only used with history) */
    _Alignas(SHM_CACHELINE) _Atomic uint32_t history_lock;
    uint32_t history_head;
    uint32_t history_count;
    /* followed by: cells[queue_cells], held[chunks_per_port], history[history_max] */
} shm_port_t;

typedef struct shm_header {
    uint64_t magic;
    uint32_t abi_version;
    uint32_t header_size;
    uint64_t mgmt_size;
    uint32_t pool_count;
    uint32_t chunk_total;
    uint32_t process_limit;
    uint32_t service_limit;
    uint32_t port_slots;
    uint32_t chunks_per_port;
    uint32_t queue_capacity; /* default and max */
    uint32_t queue_cells;    /* power of two >= queue_capacity */
    uint32_t history_max;
    uint32_t waitsets_per_process;
    uint32_t receivers_per_service;
    uint32_t kind_base[5];   /* first slot of each kind (index by shoal_port_kind_t) */
    uint32_t kind_limit[5];
    uint64_t pools_off, chunks_off, procs_off, waitsets_off, services_off, service_stride;
    uint64_t ports_off, port_stride;
    uint64_t port_cells_off, port_held_off, port_history_off; /* within a port */
    char config_source[256];
    char domain[64];
    _Atomic uint32_t daemon_pid;
    /* non-zero while the daemon audits the chunk references; owners do not
     * start moving chunks then (bounded wait), see core/sweep.h */
    _Alignas(SHM_CACHELINE) _Atomic uint32_t sweep;
} shm_header_t;

/* The layout as the daemon sends it to a registering process: what a
 * process trusts, never the header in the segment. */
#define SHM_LAYOUT_MAGIC 0x54554f59414c4853ULL /* "SHLAYOUT" */
typedef struct shm_layout_msg {
    uint64_t magic;
    shm_header_t hdr;
    shm_pool_geom_t pools[SHM_MAX_POOLS];
} shm_layout_msg_t;

/* A process's view of the domain: the mappings. */
typedef struct shm_map {
    /* a private copy of the validated header: every bounds check uses it,
     * so a process scribbling on the shared header cannot widen them */
    shm_header_t *hdr;
    shm_header_t hdr_copy;
    shm_header_t *shared_hdr;
    shm_pool_geom_t pools[SHM_MAX_POOLS]; /* private, validated */
    /* set once the daemon is gone: every operation fails from then on */
    _Atomic uint32_t dead;
    _Atomic uint32_t sweep_skip; /* an audit word this process stopped waiting for */
    uint8_t *mgmt;
    uint64_t mgmt_size;
    uint8_t *payload[SHM_MAX_POOLS];
    uint64_t payload_size[SHM_MAX_POOLS];
} shm_map_t;

/* Layout computation (daemon) */
typedef struct shm_layout_params {
    uint32_t pool_count;
    uint64_t chunk_size[SHM_MAX_POOLS];
    uint32_t chunk_count[SHM_MAX_POOLS];
    uint32_t processes, services, chunks_per_port, queue_capacity, history_max;
    uint32_t waitsets_per_process;
    uint32_t kind_limit[5];
} shm_layout_params_t;

/* Fills a header with offsets and sizes; returns 0 or -1 if it overflows. */
int shm_layout(const shm_layout_params_t *p, shm_header_t *out);
uint64_t shm_pool_stride(uint64_t chunk_size);
/* Puts every chunk of pool `i` on its free list (0 -> 1 -> ... -> n-1) with
 * refcount 0 and in_use 0. Only while no process can touch the pool. */
void shm_pool_reset(shm_map_t *m, uint32_t i);
/* Initialises a zeroed segment from a computed header (daemon). */
void shm_init(shm_map_t *m, const shm_header_t *layout, const shm_layout_params_t *p);
/* The daemon's private layout as sent to a registering process. */
void shm_layout_export(const shm_map_t *m, shm_layout_msg_t *out);
/* Adopts the layout the daemon sent (client): magic, version, every offset
 * and size checked against the mapping; the reason in the thread's error.
 * The shared header is never read. */
shoal_result_t shm_validate(shm_map_t *m, const shm_layout_msg_t *layout);

/* Resolvers: the only place an index becomes a pointer. NULL if out of range. */
static inline shm_pool_t *shm_pool(const shm_map_t *m, uint32_t i) {
    if (i >= m->hdr->pool_count) return NULL;
    return (shm_pool_t *)(m->mgmt + m->hdr->pools_off) + i;
}
/* A pool's private geometry; NULL if out of range. */
static inline const shm_pool_geom_t *shm_pool_geom(const shm_map_t *m, uint32_t i) {
    if (i >= m->hdr->pool_count) return NULL;
    return &m->pools[i];
}
static inline shm_chunk_t *shm_chunk(const shm_map_t *m, uint32_t i) {
    if (i >= m->hdr->chunk_total) return NULL;
    return (shm_chunk_t *)(m->mgmt + m->hdr->chunks_off) + i;
}
static inline shm_process_t *shm_process(const shm_map_t *m, uint32_t i) {
    if (i >= m->hdr->process_limit) return NULL;
    return (shm_process_t *)(m->mgmt + m->hdr->procs_off) + i;
}
static inline shm_waitset_word_t *shm_waitset_word(const shm_map_t *m, uint32_t i) {
    if (i >= m->hdr->process_limit * m->hdr->waitsets_per_process) return NULL;
    return (shm_waitset_word_t *)(m->mgmt + m->hdr->waitsets_off) + i;
}
static inline shm_service_t *shm_service(const shm_map_t *m, uint32_t i) {
    if (i >= m->hdr->service_limit) return NULL;
    return (shm_service_t *)(m->mgmt + m->hdr->services_off + (uint64_t)i * m->hdr->service_stride);
}
static inline _Atomic uint32_t *shm_service_receivers(const shm_map_t *m, shm_service_t *s) {
    (void)m;
    return (_Atomic uint32_t *)((uint8_t *)s + sizeof(shm_service_t));
}
static inline shm_port_t *shm_port(const shm_map_t *m, uint32_t slot) {
    if (slot >= m->hdr->port_slots) return NULL;
    return (shm_port_t *)(m->mgmt + m->hdr->ports_off + (uint64_t)slot * m->hdr->port_stride);
}
/* Kind of a port slot, from the private layout (slots are grouped by kind);
 * 0 if out of range. Never read a port's kind from the segment. */
static inline uint32_t shm_slot_kind(const shm_map_t *m, uint32_t slot) {
    for (uint32_t k = 1; k <= 4; k++)
        if (slot - m->hdr->kind_base[k] < m->hdr->kind_limit[k]) return k;
    return 0;
}
static inline shm_queue_cell_t *shm_port_cells(const shm_map_t *m, shm_port_t *p) {
    return (shm_queue_cell_t *)((uint8_t *)p + m->hdr->port_cells_off);
}
static inline _Atomic uint64_t *shm_port_held(const shm_map_t *m, shm_port_t *p) {
    return (_Atomic uint64_t *)((uint8_t *)p + m->hdr->port_held_off);
}
static inline _Atomic uint64_t *shm_port_history(const shm_map_t *m, shm_port_t *p) {
    return (_Atomic uint64_t *)((uint8_t *)p + m->hdr->port_history_off);
}
/* Pool of a chunk index, from the private pool geometry rather than the
 * chunk's own header (which is written by every holder); UINT32_MAX if none. */
static inline uint32_t shm_chunk_pool(const shm_map_t *m, uint32_t idx) {
    const shm_pool_geom_t *p = m->pools;
    for (uint32_t i = 0; i < m->hdr->pool_count; i++)
        if (idx - p[i].first_chunk < p[i].chunk_count) return i;
    return UINT32_MAX;
}
/* Payload of a chunk index (and its pool in *pool); NULL if it falls outside
 * its pool's mapping. */
void *shm_chunk_payload(const shm_map_t *m, uint32_t idx, uint32_t *pool);
/* Validates a queue/held reference and returns the chunk index, or -1. */
int64_t shm_ref_chunk(const shm_map_t *m, uint64_t ref);

/* Counters only a port's owner writes (one thread at a time, see shoal.h):
 * a plain load and store, because a locked read-modify-write costs ~7 ns
 * and the hot path has several. Returns the old value. */
static inline uint64_t own_add(_Atomic uint64_t *c, uint64_t n) {
    uint64_t v = atomic_load_explicit(c, memory_order_relaxed);
    atomic_store_explicit(c, v + n, memory_order_relaxed);
    return v;
}

const char *shm_kind_name(uint32_t kind);
const char *shm_kind_limit_key(uint32_t kind);

#endif
