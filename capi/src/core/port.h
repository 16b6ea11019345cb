/* Operations on ports in shared memory shared by the daemon and clients:
 * delivering a chunk reference to a receiving port (with its full-queue
 * policy and wake-up), and giving back everything a port holds. */
#ifndef SHOAL_CORE_PORT_H
#define SHOAL_CORE_PORT_H

#include <stdbool.h>

#include "core/shm.h"

/* Who a new port is: what the daemon decided at PORT_CREATE. */
typedef struct port_identity {
    uint32_t gen, kind, service, process;
    int32_t pid;
    uint32_t policy;         /* full-queue policy of its sends */
    uint32_t history;        /* publishers: samples kept, else 0 */
    uint32_t queue_capacity;
    int64_t send_timeout_ns;
} port_identity_t;

/* Resets a free slot for its new owner and opens it: identity, counters,
 * spares and queue first, ACTIVE last (senders check the state, then trust
 * the rest). Daemon only, on a slot that is not ACTIVE. */
void port_init(const shm_map_t *m, shm_port_t *p, const port_identity_t *id);

/* Wakes whoever sleeps on the port or on its waitset (cheap when nobody). */
void port_notify(const shm_map_t *m, shm_port_t *p);
/* Same, unconditionally (daemon-side state changes). */
void port_notify_force(const shm_map_t *m, shm_port_t *p);

/* OR into `policy`: hand over the caller's own reference instead of taking
 * a new one (one receiver); on failure the caller still owns it. */
#define PORT_DELIVER_TRANSFER 0x100u

/* Delivers a chunk reference to `target` (expected ACTIVE with `gen`).
 * Takes a new reference on the chunk for the queue. On a full queue applies
 * `policy`. Returns SHOAL_OK, SHOAL_ERR_QUEUE_FULL, SHOAL_ERR_TIMEOUT (WAIT
 * policy), SHOAL_ERR_NOT_FOUND (the target is gone: nothing delivered) or
 * SHOAL_ERR_DAEMON_UNAVAILABLE (woken by the daemon's death). `sender` is
 * the caller's own port, inside an operation (core/sweep.h) that a WAIT
 * pauses; NULL for the daemon. */
shoal_result_t port_deliver(const shm_map_t *m, shm_port_t *sender, uint32_t target_slot, uint32_t gen,
                            uint32_t expect_kind, uint32_t expect_service, uint32_t chunk,
                            uint32_t policy, int64_t timeout_ns);

/* port_deliver with a bounded stay, for sends a binding must be able to cut
 * short (sliced sends): a WAIT for space that outlasts `slice_deadline` (an
 * absolute shoal_now_ns() time, UINT64_MAX for none) or is interrupted by a
 * signal handler returns SHOAL_ERR_BUSY with nothing delivered (a transfer's
 * reference is still the caller's). `wait_deadline` (in/out, may be NULL)
 * carries the end of the WAIT across slices: 0 until a wait starts. */
shoal_result_t port_deliver_ex(const shm_map_t *m, shm_port_t *sender, uint32_t target_slot,
                               uint32_t gen, uint32_t expect_kind, uint32_t expect_service,
                               uint32_t chunk, uint32_t policy, int64_t timeout_ns,
                               uint64_t *wait_deadline, uint64_t slice_deadline);

/* Pops every queued entry and drops its reference. Requests of a closing
 * server are reported to their clients as lost. Returns the count. */
uint32_t port_drain(const shm_map_t *m, shm_port_t *p, bool report_lost);
/* Drops every held reference (a dead or closing port). Returns the count. */
uint32_t port_release_held(const shm_map_t *m, shm_port_t *p, bool report_lost);
/* Drops the publisher's history ring. */
uint32_t port_release_history(const shm_map_t *m, shm_port_t *p);
/* Tells a client its request `seq` was lost with a dead server. */
void port_report_lost(const shm_map_t *m, uint32_t client_slot, uint32_t client_gen, uint64_t seq);

/* Wakes senders waiting for queue space (after a pop). */
void port_space_notify(shm_port_t *p);

/* Takes a pid lock word; 0, or -1 when a live holder kept it past max_ns. */
int spin_lock_bounded(_Atomic uint32_t *l, uint64_t max_ns);
/* Takes the lock regardless of its holder (after spin_lock_bounded failed
 * where the only legitimate holders are known to hold it briefly). */
void spin_lock_force(_Atomic uint32_t *l);
void spin_unlock(_Atomic uint32_t *l);

#endif
