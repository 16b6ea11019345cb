/* shoald's reclaim: whatever a dead process leaves behind comes back. Its
 * ports close at once (process_gone); a closed port waits in quarantine
 * while a sender still counts into it; a queue position a dead sender
 * claimed is filled; an idle domain gets its pools rebuilt; and reference
 * audits (core/sweep.h) return chunks stranded mid-operation. */
#include <stdlib.h>
#include <string.h>

#include "core/futex.h"
#include "core/port.h"
#include "core/queue.h"
#include "core/sweep.h"
#include "daemon/daemon_int.h"
#include "daemon/log.h"

/* A sender that was killed inside port_deliver never lowers `pushers`. Live
 * senders leave within microseconds (a WAIT sender re-checks the state every
 * 10 ms), so after this grace period the slot is drained regardless. */
#define QUARANTINE_GRACE_NS 500000000ull

void quarantine_add(daemon_t *d, uint32_t slot) {
    d->quarantine_since[d->quarantine_count] = shoal_now_ns();
    d->quarantine[d->quarantine_count++] = slot;
}

void quarantine_sweep(daemon_t *d, int force) {
    uint64_t now = shoal_now_ns();
    for (uint32_t i = 0; i < d->quarantine_count;) {
        uint32_t slot = d->quarantine[i];
        uint64_t since = d->quarantine_since[i];
        shm_port_t *p = shm_port(&d->map, slot);
        int stale = now - since > QUARANTINE_GRACE_NS;
        if (atomic_load(&p->pushers) == 0 || force || stale) {
            if (stale && atomic_load(&p->pushers))
                LOGD("port %u: %u sender(s) died mid-delivery; draining it anyway", slot,
                     atomic_load(&p->pushers));
            atomic_store(&p->pushers, 0);
            /* off the list before it is finished: a service is freed only
             * when no quarantined slot refers to it, this one included */
            uint32_t rest = --d->quarantine_count - i;
            memmove(&d->quarantine[i], &d->quarantine[i + 1], rest * sizeof *d->quarantine);
            memmove(&d->quarantine_since[i], &d->quarantine_since[i + 1],
                    rest * sizeof *d->quarantine_since);
            registry_port_free(d, slot);
        } else {
            i++;
        }
    }
}

/* A sender killed between claiming a queue position and writing it leaves
 * a hole that stops the receiver at that position for good. Only a dead
 * process can leave one, so after a death the daemon watches the head of
 * every receive queue; a hole that stays put for HOLE_GRACE_NS is filled
 * with an empty entry, which receivers skip. */
#define HOLE_GRACE_NS 300000000ull
#define HOLE_WATCH_NS 10000000000ull

static void repair_queue_holes(daemon_t *d, int now_quiet) {
    shm_map_t *m = &d->map;
    uint64_t now = shoal_now_ns();
    if (!now_quiet && (!d->last_death_ns || now - d->last_death_ns > HOLE_WATCH_NS)) return;
    for (uint32_t slot = 0; slot < m->hdr->port_slots; slot++) {
        shm_port_t *p = shm_port(m, slot);
        if (!d->slots[slot].active || shm_slot_kind(m, slot) == SHOAL_PORT_PUBLISHER) {
            d->hole_pos[slot] = 0;
            continue;
        }
        uint64_t deq;
        if (!queue_head_hole(m, p, &deq)) {
            d->hole_pos[slot] = 0;
            continue;
        }
        /* during an audit no live sender is mid-push: a hole is a dead one's */
        if (!now_quiet) {
            if (d->hole_pos[slot] != deq + 1) {
                d->hole_pos[slot] = deq + 1;
                d->hole_since[slot] = now;
                continue;
            }
            if (now - d->hole_since[slot] < HOLE_GRACE_NS) continue;
        }
        queue_hole_t r = queue_fill_hole(m, p, deq);
        if (r == QUEUE_HOLE_SKIPPED)
            LOGD("port %u: filled the queue position %llu a dead sender had claimed", slot,
                 (unsigned long long)deq);
        else if (r == QUEUE_HOLE_PUBLISHED)
            LOGD("port %u: published the entry a dead sender left at position %llu", slot,
                 (unsigned long long)deq);
        if (r != QUEUE_HOLE_KEPT) port_notify_force(m, p);
        d->hole_pos[slot] = 0;
    }
}

/* A process killed between two steps of a release can strand one chunk
 * (never free it twice). When no process is registered nobody can be
 * mid-operation, so the pools are rebuilt from scratch and such strays
 * come back. */
static void recover_if_idle(daemon_t *d) {
    shm_map_t *m = &d->map;
    for (uint32_t i = 0; i < m->hdr->process_limit; i++)
        if (d->procs[i].used) return;
    quarantine_sweep(d, 1);
    /* any pool that is off counts, even if the sum of the counters wraps to 0 */
    uint32_t stray = 0, off = 0;
    for (uint32_t i = 0; i < m->hdr->pool_count; i++) {
        uint32_t u = atomic_load(&shm_pool(m, i)->in_use);
        stray += u;
        off += u != 0;
    }
    if (!off) return;
    for (uint32_t i = 0; i < m->hdr->pool_count; i++) shm_pool_reset(m, i);
    LOGW("no process is registered: recovered %u chunk(s) stranded by processes killed "
         "mid-operation; pools rebuilt",
         stray);
}

void process_gone(daemon_t *d, conn_t *c) {
    if (!c->registered) return;
    shm_map_t *m = &d->map;
    uint32_t ports = 0;
    uint32_t before = 0, after = 0;
    for (uint32_t i = 0; i < m->hdr->pool_count; i++) before += atomic_load(&shm_pool(m, i)->in_use);
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) {
        if (d->slots[s].active && d->slots[s].process == c->proc) {
            registry_port_close(d, s, "its process exited");
            ports++;
        }
    }
    for (uint32_t i = 0; i < m->hdr->pool_count; i++) after += atomic_load(&shm_pool(m, i)->in_use);
    /* waitset words of the process */
    for (uint32_t w = 0; w < m->hdr->waitsets_per_process; w++) {
        shm_waitset_word_t *ww = shm_waitset_word(m, c->proc * m->hdr->waitsets_per_process + w);
        if (ww) atomic_store(&ww->in_use, 0);
    }
    shm_process_t *pr = shm_process(m, c->proc);
    atomic_store(&pr->state, PROC_FREE);
    d->procs[c->proc].used = 0;
    d->last_death_ns = shoal_now_ns();
    d->sweep_due = 1; /* it may have died moving a chunk */
    recover_if_idle(d);
    LOGD("process '%s' (pid %d) exited: %u ports removed, %u chunks returned to the pools", c->name,
         c->pid, ports, before > after ? before - after : 0);
    c->registered = 0;
}

/* After a death, audit every reference (core/sweep.h) until one audit
 * completes: whatever the dead process was moving comes back. */
#define SWEEP_MAX_WAIT_NS 2000000ull

/* While an audit holds every live owner still, whatever is half-done was
 * left by the dead: finish it now instead of after the grace periods. */
static void audit_quiet(void *arg) {
    daemon_t *d = arg;
    if (d->quarantine_count) quarantine_sweep(d, 1);
    repair_queue_holes(d, 1);
}

/* An audit also runs every few seconds while processes are registered:
 * insurance against a stranding no death announced (a window nobody has
 * found yet); it costs owners a wait of about a millisecond. */
#define SWEEP_PERIOD_NS 5000000000ull

static void sweep_if_due(daemon_t *d) {
    if (!d->sweep_ok) return;
    uint64_t now = shoal_now_ns();
    if (!d->sweep_due && now - d->sweep_last_ns > SWEEP_PERIOD_NS) {
        for (uint32_t i = 0; i < d->map.hdr->process_limit; i++)
            if (d->procs[i].used) {
                d->sweep_due = 1;
                break;
            }
        if (!d->sweep_due) d->sweep_last_ns = now;
    }
    if (!d->sweep_due) return;
    if (now < d->sweep_next_ns) return;
    shm_map_t *m = &d->map;
    for (uint32_t s = 0; s < m->hdr->port_slots; s++) d->sweep_active[s] = d->slots[s].active;
    if (++d->sweep_seq == 0) d->sweep_seq = 1;
    uint64_t t0 = shoal_now_ns();
    sweep_result_t r;
    sweep_run(m, d->sweep_seq, d->sweep_active, d->sweep_refs, d->sweep_free, d->sweep_ops,
              SWEEP_MAX_WAIT_NS, audit_quiet, d, &r);
    if (!r.done) {
        /* someone stayed mid-operation (stopped in a debugger, or a peer
         * keeping its word odd): try again later, less often each time */
        d->sweep_backoff_ns = d->sweep_backoff_ns ? d->sweep_backoff_ns * 2 : 50000000ull;
        if (d->sweep_backoff_ns > 200000000ull) d->sweep_backoff_ns = 200000000ull;
        d->sweep_next_ns = now + d->sweep_backoff_ns;
        return;
    }
    d->sweep_backoff_ns = 0;
    d->sweep_due = 0;
    d->sweep_last_ns = now;
    if (r.reclaimed || r.refs_fixed || r.inconsistent)
        LOGI("reference audit (%.2f ms): %u stranded chunk(s) returned to their pools, %u "
             "reference count(s) corrected, %u chunk(s) both free and referenced left alone",
             (double)(shoal_now_ns() - t0) / 1e6, r.reclaimed, r.refs_fixed, r.inconsistent);
}

void reclaim_tick(daemon_t *d) {
    if (d->quarantine_count) quarantine_sweep(d, 0);
    repair_queue_holes(d, 0);
    sweep_if_due(d);
}

int reclaim_init(daemon_t *d) {
    const shm_header_t *h = d->map.hdr;
    size_t nslots = h->port_slots ? h->port_slots : 1, nchunks = h->chunk_total ? h->chunk_total : 1;
    d->quarantine = calloc(nslots, sizeof *d->quarantine);
    d->quarantine_since = calloc(nslots, sizeof *d->quarantine_since);
    d->hole_pos = calloc(nslots, sizeof *d->hole_pos);
    d->hole_since = calloc(nslots, sizeof *d->hole_since);
    d->sweep_active = calloc(nslots, 1);
    d->sweep_ops = calloc(nslots, sizeof *d->sweep_ops);
    d->sweep_refs = calloc(nchunks, sizeof *d->sweep_refs);
    d->sweep_free = calloc(nchunks, 1);
    d->sweep_ok = sweep_supported();
    if (!d->sweep_ok)
        LOGW("membarrier(GLOBAL_EXPEDITED) is not available: chunks stranded by killed processes "
             "come back only when the domain is idle");
    return d->quarantine && d->quarantine_since && d->hole_pos && d->hole_since &&
                   d->sweep_active && d->sweep_ops && d->sweep_refs && d->sweep_free
               ? 0
               : -1;
}

void reclaim_free(daemon_t *d) {
    free(d->quarantine);
    free(d->quarantine_since);
    free(d->hole_pos);
    free(d->hole_since);
    free(d->sweep_active);
    free(d->sweep_ops);
    free(d->sweep_refs);
    free(d->sweep_free);
}
