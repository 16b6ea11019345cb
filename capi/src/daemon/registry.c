/* shoald's registry: processes (HELLO), services (name -> receivers) and
 * ports (create, destroy), each kept in the daemon's own records first and
 * mirrored into the segment for clients. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/port.h"
#include "core/spare.h"
#include "daemon/daemon_int.h"
#include "daemon/log.h"

static int fifo_init(slot_fifo_t *f, uint32_t cap) {
    f->items = calloc(cap ? cap : 1, sizeof *f->items);
    f->cap = cap;
    f->head = f->count = 0;
    return f->items ? 0 : -1;
}
void fifo_push(slot_fifo_t *f, uint32_t v) {
    if (f->count == f->cap) return;
    f->items[(f->head + f->count) % f->cap] = v;
    f->count++;
}
static int fifo_pop(slot_fifo_t *f, uint32_t *v) {
    if (!f->count) return -1;
    *v = f->items[f->head];
    f->head = (f->head + 1) % f->cap;
    f->count--;
    return 0;
}


int registry_init(daemon_t *d) {
    const shm_header_t *h = d->map.hdr;
    for (uint32_t k = 1; k <= 4; k++) {
        if (fifo_init(&d->free_slots[k], h->kind_limit[k]) != 0) return -1;
        for (uint32_t i = 0; i < h->kind_limit[k]; i++) fifo_push(&d->free_slots[k], h->kind_base[k] + i);
    }
    size_t nslots = h->port_slots ? h->port_slots : 1;
    d->slots = calloc(nslots, sizeof *d->slots);
    d->services = calloc(h->service_limit ? h->service_limit : 1, sizeof *d->services);
    d->procs = calloc(h->process_limit ? h->process_limit : 1, sizeof *d->procs);
    for (size_t i = 0; d->slots && i < nslots; i++) d->slots[i].receiver = -1;
    return d->slots && d->services && d->procs ? 0 : -1;
}

void registry_free(daemon_t *d) {
    for (int k = 0; k < 5; k++) free(d->free_slots[k].items);
    if (d->services && d->map.mgmt)
        for (uint32_t i = 0; i < d->map.hdr->service_limit; i++) free(d->services[i].receivers);
    free(d->slots);
    free(d->services);
    free(d->procs);
}

/* ---- services ------------------------------------------------------------- */

static int service_find_or_add(daemon_t *d, const char *name, uint32_t *out) {
    shm_map_t *m = &d->map;
    int free_idx = -1;
    for (uint32_t i = 0; i < m->hdr->service_limit; i++) {
        service_priv_t *sp = &d->services[i];
        if (sp->used) {
            if (strcmp(sp->name, name) == 0) {
                *out = i;
                return 0;
            }
        } else if (free_idx < 0) {
            free_idx = (int)i;
        }
    }
    if (free_idx < 0) return -1;
    service_priv_t *sp = &d->services[free_idx];
    uint32_t *recv = sp->receivers;
    if (!recv && !(recv = calloc(m->hdr->receivers_per_service ? m->hdr->receivers_per_service : 1,
                                 sizeof *recv)))
        return -2;
    memset(recv, 0, m->hdr->receivers_per_service * sizeof *recv);
    memset(sp, 0, sizeof *sp);
    sp->receivers = recv;
    sp->used = 1;
    snprintf(sp->name, sizeof sp->name, "%s", name);
    shm_service_t *s = shm_service(m, (uint32_t)free_idx);
    if (!s) return -1;
    memset(s->name, 0, sizeof s->name);
    memcpy(s->name, sp->name, sizeof s->name - 1);
    s->gen++;
    _Atomic uint32_t *rv = shm_service_receivers(m, s);
    for (uint32_t i = 0; i < m->hdr->receivers_per_service; i++) atomic_store(&rv[i], 0);
    atomic_store(&s->receiver_hi, 0);
    atomic_store(&s->publishers, 0);
    atomic_store(&s->subscribers, 0);
    atomic_store(&s->clients, 0);
    atomic_store(&s->servers, 0);
    atomic_store(&s->state, 1);
    *out = (uint32_t)free_idx;
    return 0;
}

static _Atomic uint32_t *service_counter(shm_service_t *s, uint32_t kind) {
    switch (kind) {
    case SHOAL_PORT_PUBLISHER: return &s->publishers;
    case SHOAL_PORT_SUBSCRIBER: return &s->subscribers;
    case SHOAL_PORT_CLIENT: return &s->clients;
    default: return &s->servers;
    }
}

/* Our count is the truth; the segment's copy is rewritten from it. */
static void service_count(daemon_t *d, uint32_t idx, uint32_t kind, int delta) {
    service_priv_t *sp = &d->services[idx];
    sp->count[kind] = (uint32_t)((int)sp->count[kind] + delta);
    shm_service_t *s = shm_service(&d->map, idx);
    atomic_store(service_counter(s, kind), sp->count[kind]);
}

static void service_maybe_free(daemon_t *d, uint32_t idx) {
    service_priv_t *sp = &d->services[idx];
    if (sp->count[1] || sp->count[2] || sp->count[3] || sp->count[4]) return;
    /* a service slot is reused only when no port refers to it */
    for (uint32_t i = 0; i < d->quarantine_count; i++)
        if (d->slots[d->quarantine[i]].service == idx) return;
    sp->used = 0;
    atomic_store(&shm_service(&d->map, idx)->state, 0);
}

/* ---- ports ------------------------------------------------------------------ */

void registry_port_free(daemon_t *d, uint32_t slot) {
    shm_map_t *m = &d->map;
    shm_port_t *p = shm_port(m, slot);
    uint32_t kind = shm_slot_kind(m, slot);
    uint32_t drained = port_drain(m, p, kind == SHOAL_PORT_SERVER);
    if (drained) LOGD("port %u: %u queued chunks reclaimed", slot, drained);
    atomic_store(&p->waitset, 0);
    atomic_store(&p->state, PORT_FREE);
    d->slots[slot].closing = 0;
    fifo_push(&d->free_slots[kind], slot);
    service_maybe_free(d, d->slots[slot].service);
}

void registry_port_close(daemon_t *d, uint32_t slot, const char *why) {
    shm_map_t *m = &d->map;
    shm_port_t *p = shm_port(m, slot);
    slot_priv_t *sp = &d->slots[slot];
    if (!p || !sp->active) return;
    uint32_t kind = shm_slot_kind(m, slot);
    sp->active = 0;
    sp->closing = 1;
    atomic_store(&p->state, PORT_CLOSING);
    shm_service_t *s = shm_service(m, sp->service);
    if (sp->receiver >= 0) {
        _Atomic uint32_t *rv = shm_service_receivers(m, s);
        atomic_store(&rv[sp->receiver], 0);
        d->services[sp->service].receivers[sp->receiver] = 0;
        sp->receiver = -1;
    }
    service_count(d, sp->service, kind, -1);
    if (kind == SHOAL_PORT_SERVER && d->services[sp->service].count[SHOAL_PORT_SERVER] == 0) {
        /* clients blocked in a call learn at once that no server is left */
        for (uint32_t c = 0; c < m->hdr->kind_limit[SHOAL_PORT_CLIENT]; c++) {
            uint32_t cs = m->hdr->kind_base[SHOAL_PORT_CLIENT] + c;
            if (d->slots[cs].active && d->slots[cs].service == sp->service)
                port_notify_force(m, shm_port(m, cs));
        }
    }
    uint32_t held = port_release_held(m, p, kind == SHOAL_PORT_SERVER);
    uint32_t hist = kind == SHOAL_PORT_PUBLISHER ? port_release_history(m, p) : 0;
    held += spare_return_all(m, p);
    /* a dead owner's transit word may be stale: the next audit settles it */
    atomic_store(&p->transit, 0);
    /* wake our own waiters (a take blocked in another thread) and senders */
    port_notify_force(m, p);
    port_space_notify(p);
    LOGD("%s port %u ('%s', pid %d) destroyed (%s): %u held chunks reclaimed, %u history",
         shm_kind_name(kind), slot, d->services[sp->service].name, p->pid, why, held, hist);
    if (atomic_load(&p->pushers) == 0) registry_port_free(d, slot);
    else quarantine_add(d, slot); /* a sender is mid-delivery: drain once it is out */
}

static void holders_summary(daemon_t *d, uint32_t kind, char *out, size_t len) {
    shm_map_t *m = &d->map;
    uint32_t procs = m->hdr->process_limit;
    uint32_t *count = calloc(procs, sizeof *count);
    out[0] = '\0';
    if (!count) return;
    for (uint32_t i = 0; i < m->hdr->kind_limit[kind]; i++) {
        const slot_priv_t *sp = &d->slots[m->hdr->kind_base[kind] + i];
        if ((sp->active || sp->closing) && sp->process < procs) count[sp->process]++;
    }
    size_t used = 0;
    for (int shown = 0; shown < 5; shown++) {
        uint32_t best = UINT32_MAX, bc = 0;
        for (uint32_t i = 0; i < procs; i++)
            if (count[i] > bc) bc = count[i], best = i;
        if (best == UINT32_MAX) break;
        const proc_priv_t *pr = &d->procs[best];
        int n = snprintf(out + used, len - used, "%s%s(pid %d) %u", shown ? ", " : "", pr->name,
                         pr->pid, bc);
        if (n < 0 || (size_t)n >= len - used) break;
        used += (size_t)n;
        count[best] = 0;
    }
    free(count);
}

static int valid_name(const char *s, size_t max) {
    size_t n = strnlen(s, max);
    if (n == 0 || n >= max) return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] == 0x7f) return 0;
    return 1;
}

/* The daemon never waits on a word peers can write: a publisher's history
 * lock that stays taken longer than this is skipped (and logged). */
#define HISTORY_LOCK_DAEMON_NS 2000000ull

static void deliver_history(daemon_t *d, uint32_t service, uint32_t sub_slot, uint32_t want) {
    shm_map_t *m = &d->map;
    shm_port_t *sp = shm_port(m, sub_slot);
    for (uint32_t i = 0; i < m->hdr->kind_limit[SHOAL_PORT_PUBLISHER]; i++) {
        uint32_t slot = m->hdr->kind_base[SHOAL_PORT_PUBLISHER] + i;
        const slot_priv_t *pp = &d->slots[slot];
        if (!pp->active || pp->service != service || !pp->history) continue;
        shm_port_t *p = shm_port(m, slot);
        _Atomic uint64_t *h = shm_port_history(m, p);
        if (spin_lock_bounded(&p->history_lock, HISTORY_LOCK_DAEMON_NS) != 0) {
            LOGW("publisher port %u: its history lock is held by pid %u; a late joiner of '%s' "
                 "gets no history from it",
                 slot, atomic_load(&p->history_lock), d->services[service].name);
            continue;
        }
        uint32_t hmax = m->hdr->history_max;
        uint32_t have = p->history_count, keep = pp->history;
        if (have > keep) have = keep; /* the slot's count is the owner's word, not ours */
        uint32_t n = have < want ? have : want;
        for (uint32_t k = 0; k < n && hmax; k++) {
            /* oldest first */
            uint32_t idx = (p->history_head % hmax + hmax - n + k) % hmax;
            int64_t ci = shm_ref_chunk(m, atomic_load(&h[idx]));
            if (ci >= 0)
                port_deliver(m, NULL, sub_slot, atomic_load(&sp->gen), SHOAL_PORT_SUBSCRIBER, service,
                             (uint32_t)ci, SHOAL_FULL_DROP_OLDEST, 0);
        }
        spin_unlock(&p->history_lock);
    }
}

void handle_port_create(daemon_t *d, conn_t *c, const proto_msg_t *msg) {
    shm_map_t *m = &d->map;
    char text[PROTO_TEXT_MAX];
    uint32_t kind = msg->kind;
    if (kind < SHOAL_PORT_PUBLISHER || kind > SHOAL_PORT_SERVER)
        return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, "unknown port kind");
    const char *kn = shm_kind_name(kind);
    if (!valid_name(msg->name, SHM_NAME_MAX)) {
        snprintf(text, sizeof text,
                 "invalid %s name: must be 1..%d printable characters", kind == SHOAL_PORT_PUBLISHER || kind == SHOAL_PORT_SUBSCRIBER ? "topic" : "service",
                 SHM_NAME_MAX - 1);
        return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, text);
    }
    if (!access_port_allowed(d->cfg, &c->peer, (uint32_t)geteuid(), kind, msg->name, text,
                             sizeof text)) {
        uint64_t n = ratelog_due(&d->log_denied, 1);
        if (n)
            LOGW("refused a %s port to '%s' (pid %d) (%llu refusal(s) since the last report): %s",
                 kn, c->name, (int)c->pid, (unsigned long long)n, text);
        return reply_error(c->fd, SHOAL_ERR_PERMISSION, text);
    }
    uint32_t cap = msg->capacity ? msg->capacity : m->hdr->queue_capacity;
    if (cap > m->hdr->queue_capacity) {
        snprintf(text, sizeof text,
                 "queue capacity %u exceeds the limit %u (config key limits.queue_capacity in %s)",
                 cap, m->hdr->queue_capacity, cfg_src(d));
        return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, text);
    }
    if (msg->history > m->hdr->history_max) {
        snprintf(text, sizeof text,
                 "history %u exceeds the limit %u (config key limits.history in %s)",
                 msg->history, m->hdr->history_max, cfg_src(d));
        return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, text);
    }
    if (msg->policy > SHOAL_FULL_WAIT)
        return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT,
                           "unknown full-queue policy (use SHOAL_FULL_DROP_OLDEST, _REJECT or _WAIT)");
    uint32_t slot;
    if (fifo_pop(&d->free_slots[kind], &slot) != 0) {
        /* a quarantined slot may be ready by now */
        quarantine_sweep(d, 0);
        if (fifo_pop(&d->free_slots[kind], &slot) != 0) {
            char holders[512];
            holders_summary(d, kind, holders, sizeof holders);
            snprintf(text, sizeof text,
                     "%s limit reached: %u of %u slots in use (config key %s in %s; raise it "
                     "there and restart shoald); holders: %s",
                     kn, m->hdr->kind_limit[kind], m->hdr->kind_limit[kind],
                     shm_kind_limit_key(kind), cfg_src(d), holders);
            /* a peer can retry in a loop: one line per interval, with a count */
            uint64_t n = ratelog_due(&d->log_limit, 1);
            if (n) LOGW("%s (%llu refusal(s) since the last report)", text, (unsigned long long)n);
            return reply_error(c->fd, SHOAL_ERR_PORT_LIMIT, text);
        }
    }
    uint32_t svc;
    int sr = service_find_or_add(d, msg->name, &svc);
    if (sr == -2) {
        fifo_push(&d->free_slots[kind], slot);
        return reply_error(c->fd, SHOAL_ERR_NO_MEMORY, "shoald is out of memory for a service");
    }
    if (sr != 0) {
        fifo_push(&d->free_slots[kind], slot);
        snprintf(text, sizeof text,
                 "service limit reached: %u distinct topic/service names in use (config key "
                 "limits.services in %s)",
                 m->hdr->service_limit, cfg_src(d));
        return reply_error(c->fd, SHOAL_ERR_SERVICE_LIMIT, text);
    }
    shm_service_t *s = shm_service(m, svc);
    service_priv_t *svp = &d->services[svc];
    shm_port_t *p = shm_port(m, slot);
    int ri = -1;
    if (kind == SHOAL_PORT_SUBSCRIBER || kind == SHOAL_PORT_SERVER) {
        for (uint32_t i = 0; i < m->hdr->receivers_per_service; i++)
            if (svp->receivers[i] == 0) {
                ri = (int)i;
                break;
            }
        if (ri < 0) { /* cannot happen: receivers_per_service >= each kind's limit */
            fifo_push(&d->free_slots[kind], slot);
            service_maybe_free(d, svc);
            return reply_error(c->fd, SHOAL_ERR_PORT_LIMIT, "service receiver table full");
        }
    }
    uint32_t gen = d->next_gen++;
    if (d->next_gen == 0) d->next_gen = 1;
    slot_priv_t *me = &d->slots[slot];
    me->service = svc;
    me->process = c->proc;
    me->gen = gen;
    me->history = kind == SHOAL_PORT_PUBLISHER ? msg->history : 0;
    me->receiver = ri;
    me->closing = 0;
    me->active = 1;
    port_identity_t id = {.gen = gen,
                          .kind = kind,
                          .service = svc,
                          .process = c->proc,
                          .pid = c->pid,
                          .policy = msg->policy,
                          .history = me->history,
                          .queue_capacity = cap,
                          .send_timeout_ns = msg->timeout_ns};
    port_init(m, p, &id);
    service_count(d, svc, kind, +1);
    if (ri >= 0) {
        _Atomic uint32_t *rv = shm_service_receivers(m, s);
        svp->receivers[ri] = slot + 1;
        atomic_store(&rv[ri], slot + 1);
        if ((uint32_t)ri + 1 > svp->receiver_hi) svp->receiver_hi = (uint32_t)ri + 1;
        atomic_store(&s->receiver_hi, svp->receiver_hi);
    }
    if (kind == SHOAL_PORT_SUBSCRIBER && msg->history) deliver_history(d, svc, slot, msg->history);
    LOGD("%s port %u created on '%s' for %s (pid %d), queue %u", kn, slot, svp->name, c->name,
         c->pid, cap);
    reply_port(c->fd, SHOAL_OK, slot, gen, svc, NULL);
}

void handle_port_destroy(daemon_t *d, conn_t *c, const proto_msg_t *msg) {
    shm_port_t *p = shm_port(&d->map, msg->slot);
    const slot_priv_t *sp = p ? &d->slots[msg->slot] : NULL;
    if (!sp || !sp->active || sp->gen != msg->gen || sp->process != c->proc)
        return reply_error(c->fd, SHOAL_ERR_NOT_FOUND, "no such port owned by this process");
    registry_port_close(d, msg->slot, "closed by its owner");
    reply_port(c->fd, SHOAL_OK, 0, 0, 0, NULL);
}

/* ---- processes --------------------------------------------------------------- */

void handle_hello(daemon_t *d, conn_t *c, const proto_msg_t *msg) {
    shm_map_t *m = &d->map;
    char text[PROTO_TEXT_MAX];
    if (c->registered) return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT, "already registered");
    if (msg->abi != SHOAL_ABI_VERSION) {
        snprintf(text, sizeof text,
                 "ABI mismatch: the library speaks ABI %u, shoald speaks ABI %u; use a library "
                 "and a shoald from the same release",
                 msg->abi, (unsigned)SHOAL_ABI_VERSION);
        return reply_error(c->fd, SHOAL_ERR_VERSION_MISMATCH, text);
    }
    if (!valid_name(msg->name, SHM_PROC_NAME_MAX))
        return reply_error(c->fd, SHOAL_ERR_INVALID_ARGUMENT,
                           "invalid runtime name: must be 1..63 printable characters");
    uint32_t slot = UINT32_MAX;
    for (uint32_t i = 0; i < m->hdr->process_limit; i++)
        if (!d->procs[i].used) {
            slot = i;
            break;
        }
    if (slot == UINT32_MAX) {
        snprintf(text, sizeof text,
                 "process limit reached: %u processes registered (config key limits.processes "
                 "in %s)",
                 m->hdr->process_limit, cfg_src(d));
        uint64_t n = ratelog_due(&d->log_limit, 1);
        if (n) LOGW("%s (%llu refusal(s) since the last report)", text, (unsigned long long)n);
        return reply_error(c->fd, SHOAL_ERR_PROCESS_LIMIT, text);
    }
    shm_process_t *pr = shm_process(m, slot);
    pr->gen = ++d->next_proc_gen;
    pr->pid = c->pid;
    pr->uid = c->uid;
    memset(pr->name, 0, sizeof pr->name);
    snprintf(pr->name, sizeof pr->name, "%.63s", msg->name);
    atomic_store(&pr->state, PROC_ACTIVE);
    d->procs[slot].used = 1;
    d->procs[slot].pid = c->pid;
    snprintf(d->procs[slot].name, sizeof d->procs[slot].name, "%.63s", msg->name);
    c->registered = 1;
    unreg_unlink(d, c); /* no handshake bound from now on */
    c->proc = slot;
    snprintf(c->name, sizeof c->name, "%.63s", msg->name);
    int fds[PROTO_MAX_FDS];
    fds[0] = d->mgmt_fd;
    for (uint32_t i = 0; i < m->hdr->pool_count; i++) fds[1 + i] = d->pool_fds[i];
    proto_msg_t r;
    proto_msg_init(&r, PROTO_WELCOME);
    r.result = SHOAL_OK;
    r.slot = slot;
    r.gen = pr->gen;
    r.fd_count = 1 + m->hdr->pool_count;
    snprintf(r.name, sizeof r.name, "%s", d->domain);
    /* the layout travels in the reply: a client never trusts the header in
     * the segment, which any registered process can write */
    if (proto_send(c->fd, &r, fds, r.fd_count) != 0 ||
        proto_send_blob(c->fd, &d->layout, sizeof d->layout) != 0) {
        reply_failed(c->fd, errno);
        LOGW("welcome to %s failed: %s", c->name, strerror(errno));
    }
    LOGD("process '%s' (pid %d, uid %d) registered in slot %u", c->name, c->pid, (int)c->uid, slot);
}

