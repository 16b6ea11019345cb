#include "core/shm.h"

#include <string.h>

#include "core/error.h"

static uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

static uint32_t next_pow2(uint32_t v) {
    uint32_t p = 1;
    while (p < v) p <<= 1;
    return p;
}

static int add_region(uint64_t *off, uint64_t count, uint64_t size, uint64_t *out) {
    uint64_t start = align_up(*off, SHM_CACHELINE);
    if (size && count > (UINT64_MAX - start) / size) return -1;
    *out = start;
    *off = start + count * size;
    return 0;
}

int shm_layout(const shm_layout_params_t *p, shm_header_t *h) {
    memset(h, 0, sizeof *h);
    h->magic = SHM_MAGIC;
    h->abi_version = SHOAL_ABI_VERSION;
    h->header_size = sizeof *h;
    h->pool_count = p->pool_count;
    uint64_t chunks = 0;
    for (uint32_t i = 0; i < p->pool_count; i++) chunks += p->chunk_count[i];
    if (chunks >= UINT32_MAX / 2) return -1;
    h->chunk_total = (uint32_t)chunks;
    h->process_limit = p->processes;
    h->service_limit = p->services;
    h->chunks_per_port = p->chunks_per_port;
    h->queue_capacity = p->queue_capacity;
    /* at least 2 cells: in a 1-cell ring a full cell looks like the next
     * position's empty one, and a push would skip a position */
    h->queue_cells = next_pow2(p->queue_capacity < 2 ? 2 : p->queue_capacity);
    h->history_max = p->history_max;
    h->waitsets_per_process = p->waitsets_per_process;
    uint32_t slots = 0, recv = 0;
    for (uint32_t k = 1; k <= 4; k++) {
        h->kind_base[k] = slots;
        h->kind_limit[k] = p->kind_limit[k];
        slots += p->kind_limit[k];
    }
    h->port_slots = slots;
    recv = p->kind_limit[SHOAL_PORT_SUBSCRIBER] > p->kind_limit[SHOAL_PORT_SERVER]
               ? p->kind_limit[SHOAL_PORT_SUBSCRIBER]
               : p->kind_limit[SHOAL_PORT_SERVER];
    h->receivers_per_service = recv;

    uint64_t off = align_up(sizeof *h, SHM_CACHELINE);
    if (add_region(&off, p->pool_count, sizeof(shm_pool_t), &h->pools_off) ||
        add_region(&off, chunks, sizeof(shm_chunk_t), &h->chunks_off) ||
        add_region(&off, p->processes, sizeof(shm_process_t), &h->procs_off) ||
        add_region(&off, (uint64_t)p->processes * p->waitsets_per_process,
                   sizeof(shm_waitset_word_t), &h->waitsets_off))
        return -1;
    h->service_stride = align_up(sizeof(shm_service_t) + (uint64_t)recv * 4, SHM_CACHELINE);
    if (add_region(&off, p->services, h->service_stride, &h->services_off)) return -1;
    /* a port: struct, queue cells, held slots, history ring */
    uint64_t po = align_up(sizeof(shm_port_t), SHM_CACHELINE);
    h->port_cells_off = po;
    po += (uint64_t)h->queue_cells * sizeof(shm_queue_cell_t);
    po = align_up(po, SHM_CACHELINE);
    h->port_held_off = po;
    po += (uint64_t)p->chunks_per_port * 8;
    po = align_up(po, SHM_CACHELINE);
    h->port_history_off = po;
    po += (uint64_t)p->history_max * 8;
    h->port_stride = align_up(po, SHM_CACHELINE);
    if (add_region(&off, slots, h->port_stride, &h->ports_off)) return -1;
    h->mgmt_size = align_up(off, 4096);
    return 0;
}

uint64_t shm_pool_stride(uint64_t chunk_size) { return align_up(chunk_size, SHM_CACHELINE); }

void shm_init(shm_map_t *m, const shm_header_t *layout, const shm_layout_params_t *p) {
    /* the segment is fresh from ftruncate: all zero; only non-zero fields */
    memcpy(m->shared_hdr, layout, sizeof *layout);
    m->hdr_copy = *layout;
    m->hdr = &m->hdr_copy;
    shm_header_t *h = m->hdr;
    uint32_t first = 0;
    for (uint32_t i = 0; i < h->pool_count; i++) {
        shm_pool_geom_t *g = &m->pools[i];
        g->chunk_size = p->chunk_size[i];
        g->stride = shm_pool_stride(p->chunk_size[i]);
        g->chunk_count = p->chunk_count[i];
        g->segment_size = align_up(g->stride * g->chunk_count, 4096);
        g->first_chunk = first;
        first += g->chunk_count;
        shm_pool(m, i)->geom = *g;
        for (uint32_t c = 0; c < g->chunk_count; c++) {
            shm_chunk_t *ch = shm_chunk(m, g->first_chunk + c);
            ch->pool = i;
            ch->index = c;
        }
        shm_pool_reset(m, i);
    }
}

void shm_pool_reset(shm_map_t *m, uint32_t i) {
    shm_pool_t *pl = shm_pool(m, i);
    const shm_pool_geom_t *g = shm_pool_geom(m, i);
    for (uint32_t c = 0; c < g->chunk_count; c++) {
        shm_chunk_t *ch = shm_chunk(m, g->first_chunk + c);
        atomic_store_explicit(&ch->refcount, 0, memory_order_relaxed);
        atomic_store_explicit(&ch->next_free, c + 1 < g->chunk_count ? c + 2 : 0,
                              memory_order_relaxed);
    }
    /* a new tag, so a stale head read before the reset can never be CASed back */
    uint64_t tag = (atomic_load(&pl->free_head) >> 32) + 1;
    atomic_store(&pl->free_head, tag << 32 | (g->chunk_count ? 1u : 0u));
    atomic_store(&pl->in_use, 0);
}

void shm_layout_export(const shm_map_t *m, shm_layout_msg_t *out) {
    memset(out, 0, sizeof *out);
    out->magic = SHM_LAYOUT_MAGIC;
    out->hdr = *m->hdr;
    memcpy(out->pools, m->pools, sizeof out->pools);
}

shoal_result_t shm_validate(shm_map_t *m, const shm_layout_msg_t *layout) {
    if (layout->magic != SHM_LAYOUT_MAGIC)
        return shoal_error_set(SHOAL_ERR_CORRUPT, "the daemon's layout reply has a bad magic number");
    m->hdr_copy = layout->hdr;
    m->hdr = &m->hdr_copy;
    memcpy(m->pools, layout->pools, sizeof m->pools);
    shm_header_t *h = m->hdr;
    /* texts are printed with %s: never trust them to be terminated */
    h->config_source[sizeof h->config_source - 1] = '\0';
    h->domain[sizeof h->domain - 1] = '\0';
    if (h->magic != SHM_MAGIC)
        return shoal_error_set(SHOAL_ERR_CORRUPT, "the daemon's layout has a bad magic number");
    if (h->abi_version != SHOAL_ABI_VERSION)
        return shoal_error_set(SHOAL_ERR_VERSION_MISMATCH,
                               "daemon ABI version %u, library ABI version %u: use a shoald "
                               "built from the same release as this library",
                               h->abi_version, (unsigned)SHOAL_ABI_VERSION);
    if (h->mgmt_size > m->mgmt_size || h->mgmt_size < sizeof *h || h->pool_count > SHM_MAX_POOLS ||
        h->pool_count == 0 || h->queue_cells == 0 || (h->queue_cells & (h->queue_cells - 1)) != 0 ||
        h->queue_capacity > h->queue_cells)
        goto bad;
    /* every region and stride on a cache line, as shm_layout makes them:
     * the atomics inside must be aligned */
    if ((h->pools_off | h->chunks_off | h->procs_off | h->waitsets_off | h->services_off |
         h->service_stride | h->ports_off | h->port_stride | h->port_cells_off | h->port_held_off |
         h->port_history_off) % SHM_CACHELINE)
        goto bad;
    /* the regions follow the header and each other in shm_layout's order:
     * one that overlaps another would let writes to it corrupt the other */
    uint64_t end = h->mgmt_size, at = sizeof *h;
    /* n * size is compared by division: strides come from the message and
     * a product that wraps would pass */
#define REGION(off, n, sz)                                                               \
    if ((off) < at || (off) > end || ((sz) && (uint64_t)(n) > (end - (off)) / (sz))) goto bad; \
    at = (off) + (uint64_t)(n) * (sz)
    REGION(h->pools_off, h->pool_count, sizeof(shm_pool_t));
    REGION(h->chunks_off, h->chunk_total, sizeof(shm_chunk_t));
    REGION(h->procs_off, h->process_limit, sizeof(shm_process_t));
    if (h->waitsets_per_process > SHM_WAITSETS_MAX) goto bad;
    REGION(h->waitsets_off, (uint64_t)h->process_limit * h->waitsets_per_process,
           sizeof(shm_waitset_word_t));
    REGION(h->services_off, h->service_limit, h->service_stride);
    REGION(h->ports_off, h->port_slots, h->port_stride);
#undef REGION
    if (h->service_stride < sizeof(shm_service_t) + (uint64_t)h->receivers_per_service * 4 ||
        /* a port's parts in order within its stride, by difference: an
         * offset near 2^64 must not wrap past the check */
        h->port_cells_off < sizeof(shm_port_t) || h->port_cells_off > h->port_held_off ||
        (uint64_t)h->queue_cells * sizeof(shm_queue_cell_t) > h->port_held_off - h->port_cells_off ||
        h->port_held_off > h->port_history_off ||
        (uint64_t)h->chunks_per_port * 8 > h->port_history_off - h->port_held_off ||
        h->port_history_off > h->port_stride ||
        (uint64_t)h->history_max * 8 > h->port_stride - h->port_history_off)
        goto bad;
    uint64_t slots = 0;
    for (uint32_t k = 1; k <= 4; k++) {
        if (h->kind_base[k] != slots) goto bad;
        slots += h->kind_limit[k];
    }
    if (slots != h->port_slots || h->receivers_per_service < h->kind_limit[SHOAL_PORT_SUBSCRIBER] ||
        h->receivers_per_service < h->kind_limit[SHOAL_PORT_SERVER])
        goto bad;
    uint64_t total = 0;
    for (uint32_t i = 0; i < h->pool_count; i++) {
        const shm_pool_geom_t *g = &m->pools[i];
        if (g->first_chunk != total || g->chunk_size == 0 || g->stride < g->chunk_size ||
            g->chunk_count == 0 || g->stride > UINT64_MAX / g->chunk_count ||
            g->stride * g->chunk_count > g->segment_size ||
            (i && g->chunk_size < m->pools[i - 1].chunk_size))
            goto bad;
        total += g->chunk_count;
    }
    if (total != h->chunk_total) goto bad;
    return SHOAL_OK;
bad:
    return shoal_error_set(SHOAL_ERR_CORRUPT, "the daemon's segment layout failed its bounds check");
}

void *shm_chunk_payload(const shm_map_t *m, uint32_t idx, uint32_t *pool) {
    uint32_t pi = shm_chunk_pool(m, idx);
    *pool = pi;
    const shm_pool_geom_t *pl = pi == UINT32_MAX ? NULL : shm_pool_geom(m, pi);
    if (!pl || !m->payload[pi]) return NULL;
    uint64_t off = (uint64_t)(idx - pl->first_chunk) * pl->stride;
    if (off > m->payload_size[pi] || pl->chunk_size > m->payload_size[pi] - off) return NULL;
    return m->payload[pi] + off;
}

int64_t shm_ref_chunk(const shm_map_t *m, uint64_t ref) {
    /* a range check only: the chunk's pool comes from the pool table */
    if (ref == 0 || (ref & SHM_REF_TOMBSTONE) || ref - 1 >= m->hdr->chunk_total) return -1;
    return (int64_t)(ref - 1);
}

const char *shm_kind_name(uint32_t kind) {
    switch (kind) {
    case SHOAL_PORT_PUBLISHER: return "publisher";
    case SHOAL_PORT_SUBSCRIBER: return "subscriber";
    case SHOAL_PORT_CLIENT: return "client";
    case SHOAL_PORT_SERVER: return "server";
    default: return "port";
    }
}

const char *shm_kind_limit_key(uint32_t kind) {
    switch (kind) {
    case SHOAL_PORT_PUBLISHER: return "limits.publishers";
    case SHOAL_PORT_SUBSCRIBER: return "limits.subscribers";
    case SHOAL_PORT_CLIENT: return "limits.clients";
    case SHOAL_PORT_SERVER: return "limits.servers";
    default: return "limits";
    }
}
