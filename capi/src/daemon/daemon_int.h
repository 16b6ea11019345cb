/* shoald's private state, shared by its three jobs: daemon.c (start-up,
 * connections, event loop), registry.c (processes, services, port create
 * and destroy) and reclaim.c (process death, quarantine, queue holes, idle
 * recovery, audits). Nothing outside shoald includes it. */
#ifndef SHOAL_DAEMON_INT_H
#define SHOAL_DAEMON_INT_H

#include <stdint.h>
#include <sys/epoll.h>
#include <sys/types.h>

#include "core/proto.h"
#include "core/shm.h"
#include "daemon/access.h"
#include "daemon/config.h"

typedef struct conn {
    int fd;
    int registered;
    uint32_t proc;  /* process slot */
    pid_t pid;
    uid_t uid;
    access_peer_t peer;    /* credentials at connect(): [access] decides with them */
    char name[SHM_PROC_NAME_MAX];
    size_t idx;            /* in daemon_t.conns */
    int refused;           /* told it may not connect; kept until it has read that */
    uint64_t deadline_ns;  /* unregistered: closed at this time */
    struct conn *unreg_prev, *unreg_next; /* unregistered ones, oldest first */
} conn_t;

/* Events a peer can repeat at will are logged at most once per interval,
 * with the count of those held back. */
#define LOG_INTERVAL_NS 10000000000ull
typedef struct ratelog {
    uint64_t last_ns;
    uint64_t held;
} ratelog_t;

typedef struct slot_fifo {
    uint32_t *items;
    uint32_t cap, head, count;
} slot_fifo_t;

/* The daemon's own record of a port slot and a service: what it decides
 * with. The segment's copies are output for clients, never read back. */
typedef struct slot_priv {
    uint8_t active;   /* ACTIVE in the daemon's eyes */
    uint8_t closing;  /* closed, waiting in quarantine for its senders */
    uint32_t service;
    uint32_t process;
    uint32_t gen;
    uint32_t history;
    int32_t receiver; /* index in the service's receivers, or -1 */
} slot_priv_t;

typedef struct service_priv {
    int used;
    char name[SHM_NAME_MAX];
    uint32_t count[5]; /* ports by kind */
    uint32_t receiver_hi;
    uint32_t *receivers; /* slot + 1 or 0, receivers_per_service of them */
} service_priv_t;

typedef struct proc_priv {
    int used;
    int32_t pid;
    char name[SHM_PROC_NAME_MAX];
} proc_priv_t;

typedef struct daemon {
    const shoal_config_t *cfg;
    char domain[64];
    char dir[256];
    char sock_path[400];
    char lock_path[400];
    int lock_fd, listen_fd, epoll_fd, signal_fd, timer_fd;
    int mgmt_fd;
    int pool_fds[SHM_MAX_POOLS];
    shm_map_t map;
    shm_layout_msg_t layout; /* sent to every registering process */
    conn_t **conns;
    size_t conn_count, conn_cap;
    slot_fifo_t free_slots[5];
    uint32_t *quarantine;
    uint64_t *quarantine_since; /* ns, per entry */
    uint32_t quarantine_count;
    uint64_t last_death_ns;  /* when a registered process last went away */
    uint64_t *hole_pos;      /* per slot: queue position seen claimed but unwritten, +1 */
    uint64_t *hole_since;
    uint32_t next_gen;
    uint32_t next_proc_gen;
    int stopping;
    slot_priv_t *slots;
    service_priv_t *services;
    proc_priv_t *procs;
    /* reference audits (core/sweep.h) */
    int sweep_ok;           /* the kernel has the barrier it needs */
    int sweep_due;          /* a process died since the last complete audit */
    uint64_t sweep_next_ns; /* backs off while owners stay mid-operation */
    uint64_t sweep_backoff_ns;
    uint64_t sweep_last_ns;  /* last complete audit */
    uint32_t sweep_seq;
    uint8_t *sweep_active;  /* per slot */
    uint32_t *sweep_refs;   /* per chunk */
    uint8_t *sweep_free;    /* per chunk */
    uint32_t *sweep_ops;    /* per slot */
    conn_t *unreg_head, *unreg_tail;
    size_t unreg_count;
    int reserve_fd;          /* spent to refuse clients when out of fds */
    int accept_paused;       /* listen fd out of epoll until accept_resume_ns */
    uint64_t accept_resume_ns;
    struct epoll_event *batch; /* events being handled; closed conns are cleared */
    int batch_n;
    ratelog_t log_accept, log_refused, log_deaf, log_idle, log_evicted, log_denied, log_limit;
    uint64_t refused_no_fd; /* clients refused for want of fds, not yet logged */
} daemon_t;

/* ---- daemon.c: connections -------------------------------------------------- */

/* Adds n events; returns the count to report when a line is due, else 0. */
uint64_t ratelog_due(ratelog_t *r, uint64_t n);
/* Takes a connection off the unregistered list (it said HELLO). */
void unreg_unlink(daemon_t *d, conn_t *c);
/* The answer to a request: a result, the port's slot and generation, and on
 * failure the detail text the client shows as its last error. */
void reply_port(int fd, shoal_result_t rc, uint32_t slot, uint32_t gen, uint32_t service,
                const char *text);
void reply_error(int fd, shoal_result_t rc, const char *text);
/* Notes a reply that could not be sent at once: conn_event drops that peer. */
void reply_failed(int fd, int err);
static inline const char *cfg_src(const daemon_t *d) { return d->cfg->source; }

/* ---- registry.c: processes, services, ports --------------------------------- */

/* The daemon's records of slots, services and processes, and the free
 * slot lists, for the layout in d->map; 0 or -1. */
int registry_init(daemon_t *d);
void registry_free(daemon_t *d);
void fifo_push(slot_fifo_t *f, uint32_t v);
void handle_hello(daemon_t *d, conn_t *c, const proto_msg_t *msg);
void handle_port_create(daemon_t *d, conn_t *c, const proto_msg_t *msg);
void handle_port_destroy(daemon_t *d, conn_t *c, const proto_msg_t *msg);
/* Closes a port: its chunks go back, its slot waits in quarantine while a
 * sender still counts into it. */
void registry_port_close(daemon_t *d, uint32_t slot, const char *why);
/* Drains a closed port and frees its slot (and its service when unused). */
void registry_port_free(daemon_t *d, uint32_t slot);

/* ---- reclaim.c: what the dead leave behind ----------------------------------- */

/* Quarantine, queue-hole and audit bookkeeping for the layout; 0 or -1. */
int reclaim_init(daemon_t *d);
void reclaim_free(daemon_t *d);
/* A connection closed: the process's ports and chunks come back. */
void process_gone(daemon_t *d, conn_t *c);
/* Keeps a closed slot until its senders are out (quarantine_sweep). */
void quarantine_add(daemon_t *d, uint32_t slot);
/* Frees the quarantined slots whose senders left (all with `force`). */
void quarantine_sweep(daemon_t *d, int force);
/* The timer's work: quarantine, queue holes, reference audits. */
void reclaim_tick(daemon_t *d);

#endif
