/* Daemon configuration: defaults, file parsing, printing. */
#ifndef SHOAL_DAEMON_CONFIG_H
#define SHOAL_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define SHOAL_CONFIG_MAX_POOLS 64

typedef struct shoal_config_pool {
    uint64_t chunk_size; /* bytes, > 0, <= 64 GiB */
    uint32_t chunk_count; /* > 0 */
} shoal_config_pool_t;

typedef struct shoal_config_limits {
    uint32_t processes;        /* limits.processes */
    uint32_t publishers;       /* limits.publishers */
    uint32_t subscribers;      /* limits.subscribers */
    uint32_t servers;          /* limits.servers */
    uint32_t clients;          /* limits.clients */
    uint32_t services;         /* limits.services: distinct topic/service names */
    uint32_t chunks_per_port;  /* limits.chunks_per_port: held at once by one port */
    uint32_t queue_capacity;   /* limits.queue_capacity: default AND max per port */
    uint32_t waitsets_per_process; /* limits.waitsets_per_process (<= 64) */
    uint32_t history;          /* limits.history: max history per publisher */
} shoal_config_limits_t;

typedef struct shoal_config {
    shoal_config_pool_t pools[SHOAL_CONFIG_MAX_POOLS]; /* sorted by chunk_size, unique */
    uint32_t pool_count;
    shoal_config_limits_t limits;
    char source[512]; /* file it came from, or "(built-in defaults)" */
} shoal_config_t;

/* Fills the documented defaults. */
void shoal_config_defaults(shoal_config_t *cfg);

/* Parses `path` on top of defaults. A [pools] section, if present, replaces the
 * default pools. Returns 0, or -1 with a message "FILE:LINE: what is wrong"
 * written to err (size errlen). */
int shoal_config_load(shoal_config_t *cfg, const char *path, char *err, size_t errlen);

/* The same from `len` bytes of `text` (need not be NUL-terminated); `name`
 * stands for the file in messages and in cfg->source. */
int shoal_config_parse(shoal_config_t *cfg, const char *name, const char *text, size_t len,
                       char *err, size_t errlen);

/* Parses "64", "4K", "1M", "1G", "1200M" (powers of 1024). 0 on success. */
int shoal_config_parse_size(const char *text, uint64_t *out);

/* Writes the effective configuration in the file format (parseable again). */
void shoal_config_print(const shoal_config_t *cfg, FILE *out);

#endif
