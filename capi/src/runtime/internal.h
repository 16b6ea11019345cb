/* Client-side structures behind the opaque handles. */
#ifndef SHOAL_RUNTIME_INTERNAL_H
#define SHOAL_RUNTIME_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>

#include "core/error.h"
#include "core/shm.h"
#include "shoal.h"

enum { CHUNK_IDLE = 0, CHUNK_LOANED = 1, CHUNK_TAKEN = 2 };

typedef struct port_base port_base_t;

struct shoal_chunk {
    port_base_t *owner;
    shm_chunk_t *hdr;
    void *payload;
    uint64_t loaned;    /* loans: the size asked for, caps set_size */
    uint32_t chunk;     /* global chunk index */
    uint32_t held_slot; /* index in the port's held table */
    uint32_t state;
    uint32_t pool;
    /* a sliced send in progress (shoal_*_send_slice): where it resumes */
    uint32_t send_started;   /* the sequence id is stamped; 0 after held_add */
    uint32_t send_next;      /* publish: the next receiver index */
    uint32_t send_failed, send_cap;
    shoal_result_t send_first;
    uint32_t send_gone;
    uint64_t send_wait;      /* end of the WAIT for space that a slice started */
};

struct port_base {
    shoal_runtime_t *rt;
    shm_port_t *p;
    uint32_t slot, gen, kind, service;
    uint32_t policy;
    uint32_t history;   /* publishers: samples kept (our copy, not the slot's) */
    uint32_t history_head, history_count; /* ours; the slot's copy is for the daemon */
    int64_t send_timeout_ns;
    bool ignore_own;    /* subscribers/clients: skip this process's publishers/servers */
    char name[SHM_NAME_MAX]; /* topic or service, for messages */
    struct shoal_chunk *chunks; /* one per held slot */
    uint32_t *free_stack;
    uint32_t free_top;
    uint32_t held_count;
    struct shoal_waitset *waitset;
    uint32_t ws_index; /* its entry in that waitset */
    port_base_t *next, *prev;
};

struct shoal_publisher { port_base_t b; };
struct shoal_subscriber { port_base_t b; };
struct shoal_client { port_base_t b; };
struct shoal_server { port_base_t b; };

struct shoal_runtime {
    shm_map_t map;
    int sock;
    pthread_mutex_t lock; /* the daemon socket, the port list, waitset words */
    uint32_t proc_slot, proc_gen;
    char domain[64];
    char name[64];
    char sock_path[400];
    port_base_t *ports;
    uint64_t waitset_words_used; /* bitmap over this process's words */
    int stop_fd;                 /* eventfd: stops the monitor thread */
    int done_fd;                 /* eventfd: the monitor thread has stopped */
    bool monitor_started;        /* a detached thread: a process may exit without destroy */
    struct shoal_waitset *waitsets[SHM_WAITSETS_MAX]; /* live ones, by bit */
};

/* runtime.c */
shoal_result_t rt_port_open(shoal_runtime_t *rt, port_base_t *b, uint32_t kind, const char *name,
                            uint32_t capacity, uint32_t policy, uint32_t history,
                            int64_t timeout_ns);
void rt_port_close(port_base_t *b);
/* Whether the daemon is gone, asking the socket itself (the monitor thread
 * may not have run yet); marks the runtime dead if so. */
bool rt_daemon_gone(shoal_runtime_t *rt);

/* waitset.c */
void waitset_forget_port(port_base_t *b);
/* Wakes every wait of the waitset (the daemon died). */
void waitset_wake_all(struct shoal_waitset *ws);

#endif
