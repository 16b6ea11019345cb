/* shoal-gateway configuration: shoald's file format (docs/gateway.md). */
#ifndef SHOAL_GW_CONFIG_H
#define SHOAL_GW_CONFIG_H

#include <stdint.h>
#include <stdio.h>

#define GW_MAX_RULES 64
#define GW_ID_MAX 64
#define GW_GLOB_MAX 128

typedef enum gw_policy { GW_DROP_OLDEST = 0, GW_REJECT = 1, GW_WAIT = 2 } gw_policy_t;

/* One `glob = options` line of [export] or [import]. */
typedef struct gw_rule {
    char glob[GW_GLOB_MAX];
    gw_policy_t policy;  /* DDS history/reliability mapping and the local port's policy */
    uint32_t depth;      /* KEEP_LAST depth for drop_oldest; shoal queue capacity */
    uint32_t history;    /* > 0: TRANSIENT_LOCAL keep-last N, local publisher history N */
    int best_effort;     /* reliability=best_effort, only when written */
    int64_t timeout_ms;  /* wait: max_blocking_time / send timeout */
    unsigned line;
} gw_rule_t;

typedef struct gw_config {
    char id[GW_ID_MAX];
    uint32_t dds_domain;
    char cyclonedds_uri[1024]; /* "" = the shipped defaults */
    uint64_t max_sample;       /* larger samples are fragmented */
    uint64_t rcvbuf;           /* socket receive buffer Cyclone must get */
    gw_rule_t exports[GW_MAX_RULES], imports[GW_MAX_RULES];
    uint32_t export_count, import_count;
    char service_exports[GW_MAX_RULES][GW_GLOB_MAX];
    char service_imports[GW_MAX_RULES][GW_GLOB_MAX];
    uint32_t service_export_count, service_import_count;
    char source[512];
} gw_config_t;

void gw_config_defaults(gw_config_t *c);
/* 0, or -1 with "FILE:LINE: what is wrong (what is accepted)" in err. */
int gw_config_load(gw_config_t *c, const char *path, char *err, size_t errlen);
int gw_config_parse(gw_config_t *c, const char *name, const char *text, char *err, size_t errlen);
void gw_config_print(const gw_config_t *c, FILE *out);
/* The rule whose glob matches `name` first, or NULL. */
const gw_rule_t *gw_rule_match(const gw_rule_t *rules, uint32_t n, const char *name);
int gw_glob_match(char (*globs)[GW_GLOB_MAX], uint32_t n, const char *name);
int gw_valid_id(const char *s);

#endif
