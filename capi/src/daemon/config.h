/* Daemon configuration: defaults, file parsing, printing. */
#ifndef SHOAL_DAEMON_CONFIG_H
#define SHOAL_DAEMON_CONFIG_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "core/shm.h"

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
    uint32_t memory_share;     /* limits.memory_share: % of physical memory the segments may commit */
} shoal_config_limits_t;

/* ---- [access]: who may use the domain, and per-name rules ---- */

#define SHOAL_ACCESS_MAX_IDS 64    /* entries of [access] users, and of groups */
#define SHOAL_ACCESS_RULE_IDS 16   /* entries of one rule key */
#define SHOAL_ACCESS_MAX_RULES 32  /* [access.topic "..."] and [access.service "..."] sections */
#define SHOAL_ACCESS_NAME_MAX 33   /* user or group name, NUL included (Linux allows 32) */
#define SHOAL_ACCESS_PATTERN_MAX 128 /* = SHM_NAME_MAX: a pattern may be a whole name */

typedef struct shoal_access_id {
    uint8_t group;   /* a gid (an [access] groups entry, or "@name" in a rule) */
    uint8_t numeric; /* written as a number: used as is, never looked up */
    uint32_t id;     /* uid or gid; for names set by shoal_config_resolve_access */
    char name[SHOAL_ACCESS_NAME_MAX]; /* as written, without '@' */
} shoal_access_id_t;

typedef struct shoal_access_list {
    unsigned line;   /* where written; 0 = not written */
    uint8_t anyone;  /* '*' */
    uint32_t count;
    shoal_access_id_t ids[SHOAL_ACCESS_MAX_IDS];
} shoal_access_list_t;

typedef struct shoal_access_rule_list {
    unsigned line;
    uint8_t anyone;
    uint32_t count;
    shoal_access_id_t ids[SHOAL_ACCESS_RULE_IDS];
} shoal_access_rule_list_t;

enum { SHOAL_RULE_TOPIC = 0, SHOAL_RULE_SERVICE = 1 };
/* which list of a rule applies to a port kind */
enum { SHOAL_RULE_SEND = 0, SHOAL_RULE_RECEIVE = 1 }; /* publish|serve, subscribe|call */

typedef struct shoal_access_rule {
    uint8_t type;     /* SHOAL_RULE_TOPIC or SHOAL_RULE_SERVICE */
    unsigned line;    /* of the section header */
    char pattern[SHOAL_ACCESS_PATTERN_MAX]; /* fnmatch(3) pattern, flags 0 */
    /* topic: [0] publish, [1] subscribe; service: [0] serve, [1] call */
    shoal_access_rule_list_t allow[2];
} shoal_access_rule_t;

typedef struct shoal_config_access {
    unsigned line;              /* of [access]; 0 = no such section */
    uint8_t resolved;           /* names looked up (shoal_config_resolve_access) */
    shoal_access_list_t users;  /* uids admitted besides shoald's own and root */
    shoal_access_list_t groups; /* gids whose members (primary or supplementary) are admitted */
    shoal_access_id_t socket_group; /* group of the runtime dir and socket */
    unsigned socket_group_line;     /* 0 = not set */
    uint32_t rule_count;
    shoal_access_rule_t rules[SHOAL_ACCESS_MAX_RULES]; /* in file order */
} shoal_config_access_t;

typedef struct shoal_config {
    shoal_config_pool_t pools[SHOAL_CONFIG_MAX_POOLS]; /* sorted by chunk_size, unique */
    uint32_t pool_count;
    shoal_config_limits_t limits;
    char source[512]; /* file it came from, or "(built-in defaults)" */
    /* where each value was written in `source` (0 = default), so checks made
     * after loading can still name FILE:LINE */
    unsigned pool_line[SHOAL_CONFIG_MAX_POOLS];
    shoal_config_limits_t limit_line;
    shoal_config_access_t access;
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

/* Looks up every user and group name of [access] and its rules (passwd and
 * group databases, through NSS) and stores the ids. Numeric entries are
 * kept as written. Returns 0, or -1 with "FILE:LINE: unknown user ..." in
 * err. shoald calls it once at start; a renamed user needs a restart. */
int shoal_config_resolve_access(shoal_config_t *cfg, char *err, size_t errlen);

/* The key name of a rule list: "publish", "subscribe", "serve", "call". */
const char *shoal_access_key(uint8_t type, int which);

/* Writes the effective configuration in the file format (parseable again). */
void shoal_config_print(const shoal_config_t *cfg, FILE *out);

/* The segment layout parameters of a config (what the daemon creates). */
void shoal_config_layout_params(const shoal_config_t *cfg, shm_layout_params_t *lp);

/* What a config costs, from the same layout the daemon creates. The
 * management segment is memory (chunk headers are written at start, port and
 * process slots as they are used); payload segments are address space, backed
 * only where chunks are written, but mapped whole by every process. */
typedef struct shoal_config_cost {
    int overflow;           /* a total does not fit 64 bits (or the layout) */
    uint64_t mgmt_bytes;    /* management segment, page-rounded */
    uint64_t chunk_headers; /* sizeof(shm_chunk_t) per chunk, written at start */
    uint64_t port_bytes;    /* port_slots * port_stride */
    uint64_t port_stride;   /* one port: struct, queue cells, held table, history */
    uint32_t port_slots;
    uint64_t chunk_total;
    uint64_t pool_bytes[SHOAL_CONFIG_MAX_POOLS]; /* each payload segment */
    uint64_t payload_bytes; /* all payload segments */
} shoal_config_cost_t;
/* 0, or -1 with out->overflow set. */
int shoal_config_cost(const shoal_config_t *cfg, shoal_config_cost_t *out);

/* The machine a config must fit. */
typedef struct shoal_machine {
    uint64_t phys_bytes; /* physical memory; 0 = unknown (no memory check) */
    uint64_t addr_bytes; /* user address space of a process (2^47 on x86-64, arm64) */
    uint64_t rlimit_as;  /* RLIMIT_AS soft limit; UINT64_MAX = none */
} shoal_machine_t;
void shoal_machine_probe(shoal_machine_t *m);

/* Refuses a config whose management segment exceeds limits.memory_share of
 * physical memory, or whose segments exceed the address space a process may
 * map (3/4 of min(addr_bytes, rlimit_as)). Returns 0, or -1 with
 * "FILE:LINE: ..." (the dominating entry) and the figures in err. */
int shoal_config_check_machine(const shoal_config_t *cfg, const shoal_machine_t *m, char *err,
                               size_t errlen);

#endif
