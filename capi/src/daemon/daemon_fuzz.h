/* Entry points into the daemon's handlers for the libFuzzer harness
 * (tests/fuzz/fuzz_daemon_msg.c). Compiled into daemon.c only when
 * SHOAL_FUZZING is defined; shoald never has them. */
#ifndef SHOAL_DAEMON_FUZZ_H
#define SHOAL_DAEMON_FUZZ_H

#ifdef SHOAL_FUZZING
#include <stddef.h>
#include <stdint.h>

#include "core/shm.h"
#include "daemon/config.h"

typedef struct daemon_fuzz daemon_fuzz_t;

/* A daemon with real segments (memfds) for `cfg` (kept by pointer), a
 * listening socket in the abstract namespace and an epoll set, but no
 * signal or timer: the harness drives it. NULL on failure. */
daemon_fuzz_t *daemon_fuzz_create(const shoal_config_t *cfg);
void daemon_fuzz_destroy(daemon_fuzz_t *f);
/* A new client socket connected to the daemon (accepted by the next pump),
 * non-blocking; -1 on failure. */
int daemon_fuzz_connect(daemon_fuzz_t *f);
/* Handles every pending event as the event loop does (accept, requests,
 * hang-ups), without blocking. */
void daemon_fuzz_pump(daemon_fuzz_t *f);
/* What the timer does every 50 ms (quarantine, queue holes, audits). */
void daemon_fuzz_tick(daemon_fuzz_t *f);
/* The daemon's mapping (the same memory a client maps). */
shm_map_t *daemon_fuzz_map(daemon_fuzz_t *f);
/* Start of an input: generations from 1, free slots in index order, no
 * recent death. Only with no connection open. */
void daemon_fuzz_begin(daemon_fuzz_t *f);
/* Puts the management segment back as it was after start-up (after an
 * input that scribbled on it). Only with no connection open. */
void daemon_fuzz_restore(daemon_fuzz_t *f);
/* Open connections, registered processes. */
size_t daemon_fuzz_conns(daemon_fuzz_t *f, size_t *registered);
/* The daemon's private view of a port slot: 0 if free, 1 if active (with
 * its generation and process slot), 2 if closing (quarantined). */
int daemon_fuzz_slot(daemon_fuzz_t *f, uint32_t slot, uint32_t *gen, uint32_t *process);
/* Checks the daemon's private bookkeeping against itself: slots, services,
 * receivers, free-slot lists, processes, connections. `quiet`: no port may
 * be open or quarantined (every owner is gone). 0, or -1 with the reason. */
int daemon_fuzz_check(daemon_fuzz_t *f, int quiet, char *why, size_t len);

#endif
#endif
