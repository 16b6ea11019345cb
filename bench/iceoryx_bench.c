/*
 * iceoryx_bench.c - Eclipse iceoryx 2.0.3 (Debian's packages), through its C
 * binding, measured exactly like shoal_bench: same harness, same payloads,
 * same waiting modes, same placement.
 *
 *   rr      client loan_request/send, server take_request/loan_response/send,
 *           client take_response/release: full round trip per sample.
 *   pubsub  ping-pong over two topics (A publishes ping, B answers pong);
 *           the row reports one-way latency = round trip / 2.
 *   create  time to create (and then destroy) N servers in one process.
 * Throughput (group "throughput"), as in shoal_bench:
 *   fanout  1 publisher -> 1, 4, 8 subscribers, 32-deep queues that make the
 *           publisher wait (BLOCK_PRODUCER / WAIT_FOR_CONSUMER); a sample is
 *           one delivery, publish -> take.
 *   rr_kK   one client keeps K requests in flight (K = 1, 8, 64).
 *   services, and the scale group (port_create, service_create, sub_match):
 *           rows that say why iceoryx cannot run them (compile-time limits,
 *           read from the library); port_memory_bytes: its management
 *           segment per port slot.
 *
 * busy  = take in a loop (pause between polls; sched_yield when there are more
 *         spinning threads than CPUs, marked "yield" in the note column);
 * block = an iceoryx WaitSet per port, attached to the HAS_RESPONSE /
 *         HAS_REQUEST / HAS_DATA state, then take.
 *
 * Only the first 8 and the last byte of each payload are written and read:
 * the point is zero copy, latency must not depend on the payload size.
 *
 * RouDi must run (bench/run.sh starts it with bench/roudi-bench.toml).
 */
#include "bench_common.h"

#include <iceoryx_binding_c/client.h>
#include <iceoryx_binding_c/config.h>
#include <iceoryx_binding_c/enums.h>
#include <iceoryx_binding_c/log.h>
#include <iceoryx_binding_c/publisher.h>
#include <iceoryx_binding_c/runtime.h>
#include <iceoryx_binding_c/server.h>
#include <iceoryx_binding_c/subscriber.h>
#include <iceoryx_binding_c/wait_set.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define SERVICE "shoalbench"

/* ---- result names ------------------------------------------------------------------ */

static const char *alloc_str(enum iox_AllocationResult r)
{
    switch (r) {
    case AllocationResult_NO_MEMPOOLS_AVAILABLE: return "NO_MEMPOOLS_AVAILABLE";
    case AllocationResult_RUNNING_OUT_OF_CHUNKS: return "RUNNING_OUT_OF_CHUNKS";
    case AllocationResult_TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL:
        return "TOO_MANY_CHUNKS_ALLOCATED_IN_PARALLEL";
    case AllocationResult_INVALID_CHUNK: return "INVALID_CHUNK";
    case AllocationResult_INVALID_PARAMETER_FOR_USER_PAYLOAD_OR_USER_HEADER:
        return "INVALID_PARAMETER_FOR_USER_PAYLOAD_OR_USER_HEADER";
    case AllocationResult_UNDEFINED_ERROR: return "UNDEFINED_ERROR";
    case AllocationResult_INVALID_PARAMETER_FOR_CHUNK: return "INVALID_PARAMETER_FOR_CHUNK";
    case AllocationResult_INVALID_PARAMETER_FOR_REQUEST_HEADER:
        return "INVALID_PARAMETER_FOR_REQUEST_HEADER";
    case AllocationResult_SUCCESS: return "SUCCESS";
    }
    return "?";
}

static const char *recv_str(enum iox_ChunkReceiveResult r)
{
    switch (r) {
    case ChunkReceiveResult_TOO_MANY_CHUNKS_HELD_IN_PARALLEL: return "TOO_MANY_CHUNKS_HELD_IN_PARALLEL";
    case ChunkReceiveResult_NO_CHUNK_AVAILABLE: return "NO_CHUNK_AVAILABLE";
    case ChunkReceiveResult_UNDEFINED_ERROR: return "UNDEFINED_ERROR";
    case ChunkReceiveResult_SUCCESS: return "SUCCESS";
    }
    return "?";
}

enum { RESPONSE_QUEUE_MAX = 16 }; /* MAX_RESPONSE_QUEUE_CAPACITY of iceoryx 2.0.3 */

static const char *g_create_count;

/* 0 if a loan succeeded, else -1 after bench_fail(). */
static inline int loaned(bench_ctl_t *ctl, enum iox_AllocationResult ar, const char *what,
                         uint32_t size)
{
    if (ar == AllocationResult_SUCCESS)
        return 0;
    bench_fail(ctl, "%s(%u bytes): %s", what, size, alloc_str(ar));
    return -1;
}

/* ---- per pair state ---------------------------------------------------------------------- */

typedef struct ice_pair {
    iox_client_storage_t client_storage;
    iox_client_t client;
    iox_server_storage_t server_storage;
    iox_server_t server;
    iox_pub_storage_t pub_storage;
    iox_pub_t pub;
    iox_sub_storage_t sub_storage;
    iox_sub_t sub;
    iox_ws_storage_t ws_storage;
    iox_ws_t ws;
    char inst[64]; /* instance name of the pair's ports */
} ice_pair_t;

static const struct timespec k_slice = {0, 100 * 1000 * 1000};

/* One unsuccessful take: spin, or wait on the WaitSet. */
static inline void idle(const bench_cfg_t *cfg, ice_pair_t *p)
{
    if (cfg->mode == BENCH_BUSY) {
        bench_spin_once(cfg);
    } else {
        iox_notification_info_t info[4];
        uint64_t missed = 0;
        (void)iox_ws_timed_wait(p->ws, k_slice, info, 4, &missed);
    }
}

/* After a take found nothing: 0 to try again, -1 to leave. */
static inline int take_again(const bench_cfg_t *cfg, bench_ctl_t *ctl, ice_pair_t *p,
                             enum iox_ChunkReceiveResult r, const char *what)
{
    if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
        bench_fail(ctl, "%s: %s", what, recv_str(r));
        return -1;
    }
    if (bench_stopping(ctl))
        return -1;
    idle(cfg, p);
    return 0;
}

static int wait_until(bench_ctl_t *ctl, int (*pred)(const void *), ice_pair_t *p,
                      const char *what)
{
    return bench_wait_until(ctl, pred, p, 15, what);
}

static int client_connected(const void *p)
{
    return iox_client_get_connection_state(((const ice_pair_t *)p)->client) ==
           ConnectionState_CONNECTED;
}

static int subscribed(const void *p)
{
    return iox_sub_get_subscription_state(((const ice_pair_t *)p)->sub) ==
           SubscribeState_SUBSCRIBED;
}

static int pubsub_matched(const void *p)
{
    return subscribed(p) && iox_pub_has_subscribers(((const ice_pair_t *)p)->pub);
}

/* ---- process --------------------------------------------------------------------------- */

static void runtime_open(const char *role)
{
    char name[64];
    snprintf(name, sizeof name, "shoalbench-%s-%d", role, (int)getpid());
    iox_set_loglevel(Iceoryx_LogLevel_Warn);
    iox_runtime_init(name);
}

static int ice_proc_init(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    (void)ctl;
    runtime_open(side == 'A' ? "A" : "B");
    return 0;
}

/* No iox_runtime_shutdown() here: with iceoryx 2.0.3, calling it and then
 * leaving the process with exit() hangs the process for good (the runtime's
 * static destructor sends PREPARE_APP_TERMINATION for an application RouDi
 * has already removed, and waits for an answer that never comes). The
 * harness leaves the side processes with exit(), whose static destructors
 * deregister from RouDi cleanly. */
static void ice_proc_fini(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    (void)ctl;
    (void)side;
}

/* A pair's state, named after the configuration and `pair`, with a WaitSet
 * when the mode blocks. */
static ice_pair_t *pair_new(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void **state)
{
    ice_pair_t *p = calloc(1, sizeof *p);
    *state = p;
    if (!p) {
        bench_fail(ctl, "out of memory");
        return NULL;
    }
    snprintf(p->inst, sizeof p->inst, "r%" PRIu64 "p%d", cfg->run_id, pair);
    if (cfg->mode == BENCH_BLOCK)
        p->ws = iox_ws_init(&p->ws_storage);
    return p;
}

static int attached(bench_ctl_t *ctl, enum iox_WaitSetResult r)
{
    if (r == WaitSetResult_SUCCESS)
        return 0;
    bench_fail(ctl, "iceoryx: attaching a port to its WaitSet failed (%d)", (int)r);
    return -1;
}

static void ice_teardown(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
                         void *state)
{
    (void)cfg;
    (void)ctl;
    (void)side;
    (void)pair;
    ice_pair_t *p = state;
    if (!p)
        return;
    if (p->ws)
        iox_ws_deinit(p->ws);
    if (p->client)
        iox_client_deinit(p->client);
    if (p->server)
        iox_server_deinit(p->server);
    if (p->sub)
        iox_sub_deinit(p->sub);
    if (p->pub)
        iox_pub_deinit(p->pub);
    free(p);
}

/* Every pattern: a runtime per side process, its ports per pair. */
#define ICE_OPS(setup, a, b)                                                                     \
    {                                                                                           \
        .proc_init = ice_proc_init, .proc_fini = ice_proc_fini, .pair_setup = (setup),          \
        .pair_teardown = ice_teardown, .run_a = (a), .run_b = (b)                               \
    }

/* ---- request / response ------------------------------------------------------------------ */

/* rr: 16-deep queues; rr_kK (cfg->param = K): the request queue holds K and
 * both sides wait instead of dropping when a queue is full, since the
 * response queue cannot hold more than 16 */
static int rr_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    ice_pair_t *p = pair_new(cfg, ctl, pair, state);
    if (!p)
        return -1;
    const int k = cfg->param;
    if (side == 'B') {
        iox_server_options_t opts;
        iox_server_options_init(&opts);
        opts.requestQueueCapacity = k > 16 ? (uint64_t)k : 16;
        if (k) {
            opts.requestQueueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
            opts.clientTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
        }
        p->server = iox_server_init(&p->server_storage, SERVICE, p->inst, "rr", &opts);
        if (p->ws)
            return attached(ctl, iox_ws_attach_server_state(p->ws, p->server,
                                                            ServerState_HAS_REQUEST, 0, NULL));
        return 0;
    }
    iox_client_options_t opts;
    iox_client_options_init(&opts);
    opts.responseQueueCapacity = RESPONSE_QUEUE_MAX;
    if (k) {
        opts.responseQueueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
        opts.serverTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
        if (k > RESPONSE_QUEUE_MAX)
            bench_note(ctl, "response queue %d (iceoryx's maximum): the server waits",
                       RESPONSE_QUEUE_MAX);
    }
    p->client = iox_client_init(&p->client_storage, SERVICE, p->inst, "rr", &opts);
    if (p->ws && attached(ctl, iox_ws_attach_client_state(p->ws, p->client,
                                                          ClientState_HAS_RESPONSE, 0, NULL)))
        return -1;
    return wait_until(ctl, client_connected, p, "client CONNECTED");
}

static int rr_send(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    ice_pair_t *p = state;
    const uint32_t size = (uint32_t)cfg->payload;
    void *req = NULL;
    if (loaned(ctl, iox_client_loan_request(p->client, &req, size), "iox_client_loan_request",
               size))
        return -1;
    bench_touch_write(req, size, i);
    enum iox_ClientSendResult sr = iox_client_send(p->client, req);
    if (sr != ClientSendResult_SUCCESS) {
        bench_fail(ctl, "iox_client_send: result %d", (int)sr);
        return -1;
    }
    return 0;
}

static int rr_receive(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    ice_pair_t *p = state;
    const void *resp = NULL;
    enum iox_ChunkReceiveResult r;
    while ((r = iox_client_take_response(p->client, &resp)) != ChunkReceiveResult_SUCCESS)
        if (take_again(cfg, ctl, p, r, "iox_client_take_response") != 0)
            return -1;
    int good = bench_touch_check(resp, cfg->payload, i);
    iox_client_release_response(p->client, resp);
    return bench_check_message(ctl, good, "response", i);
}

static int rr_round(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    if (rr_send(cfg, ctl, state, i) != 0)
        return -1;
    return rr_receive(cfg, ctl, state, i);
}

BENCH_TIMED_RUN_A(rr_run_a, rr_round)

static int rrk_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                     uint64_t *samples)
{
    return bench_time_pipeline(cfg, ctl, pair, state, samples, (uint64_t)cfg->param, rr_send,
                               rr_receive);
}

/* Side B: takes the next request and answers it with the request's mark. */
static int rr_answer(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    (void)i;
    ice_pair_t *p = state;
    const uint32_t size = (uint32_t)cfg->payload;
    const void *req = NULL;
    enum iox_ServerRequestResult r;
    while ((r = iox_server_take_request(p->server, &req)) != ServerRequestResult_SUCCESS) {
        if (r != ServerRequestResult_NO_PENDING_REQUESTS) {
            bench_fail(ctl, "iox_server_take_request: result %d", (int)r);
            return -1;
        }
        if (bench_stopping(ctl))
            return -1;
        idle(cfg, p);
    }
    void *resp = NULL;
    if (loaned(ctl, iox_server_loan_response(p->server, req, &resp, size),
               "iox_server_loan_response", size)) {
        iox_server_release_request(p->server, req);
        return -1;
    }
    bench_touch_write(resp, size, bench_touch_read(req));
    enum iox_ServerSendResult sr = iox_server_send(p->server, resp);
    iox_server_release_request(p->server, req);
    if (sr != ServerSendResult_SUCCESS) {
        bench_fail(ctl, "iox_server_send: result %d", (int)sr);
        return -1;
    }
    return 0;
}

BENCH_STEPS_RUN(rr_run_b, rr_answer)

static const bench_ops_t rr_ops = ICE_OPS(rr_setup, rr_run_a, rr_run_b);

static const bench_ops_t rrk_ops = ICE_OPS(rr_setup, rrk_run_a, rr_run_b);

/* ---- publish / subscribe ------------------------------------------------------------------ */

/* A publisher (fanout: it waits for full queues) and a subscriber of topic
 * `event` of the pair's instance; either may be left out (NULL). */
static int ps_open(bench_ctl_t *ctl, ice_pair_t *p,
                   const char *pub_event, const char *sub_event, int fanout)
{
    if (pub_event) {
        iox_pub_options_t po;
        iox_pub_options_init(&po);
        po.historyCapacity = 0;
        if (fanout)
            po.subscriberTooSlowPolicy = ConsumerTooSlowPolicy_WAIT_FOR_CONSUMER;
        p->pub = iox_pub_init(&p->pub_storage, SERVICE, p->inst, pub_event, &po);
    }
    if (!sub_event)
        return 0;
    iox_sub_options_t so;
    iox_sub_options_init(&so);
    so.queueCapacity = fanout ? BENCH_FANOUT_QUEUE : 16;
    so.historyRequest = 0;
    if (fanout)
        so.queueFullPolicy = QueueFullPolicy_BLOCK_PRODUCER;
    p->sub = iox_sub_init(&p->sub_storage, SERVICE, p->inst, sub_event, &so);
    if (!p->ws)
        return 0;
    return attached(ctl, iox_ws_attach_subscriber_state(p->ws, p->sub, SubscriberState_HAS_DATA,
                                                        0, NULL));
}

static int ps_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    ice_pair_t *p = pair_new(cfg, ctl, pair, state);
    if (!p)
        return -1;
    /* A publishes ping and subscribes to pong; B the other way round. */
    if (ps_open(ctl, p, side == 'A' ? "ping" : "pong", side == 'A' ? "pong" : "ping",
                0) != 0)
        return -1;
    if (side == 'A')
        return wait_until(ctl, pubsub_matched, p, "ping/pong subscriptions");
    return 0;
}

/* Loans, marks (sequence, and a time stamp when stamp != 0) and publishes. */
static inline int ps_send(bench_ctl_t *ctl, ice_pair_t *p, uint32_t size, uint64_t seq,
                          uint64_t stamp)
{
    void *chunk = NULL;
    if (loaned(ctl, iox_pub_loan_chunk(p->pub, &chunk, size), "iox_pub_loan_chunk", size))
        return -1;
    bench_touch_write(chunk, size, seq);
    if (stamp)
        bench_stamp_write(chunk, stamp);
    iox_pub_publish_chunk(p->pub, chunk);
    return 0;
}

static inline int ps_recv(const bench_cfg_t *cfg, bench_ctl_t *ctl, ice_pair_t *p,
                          const void **chunk)
{
    enum iox_ChunkReceiveResult r;
    while ((r = iox_sub_take_chunk(p->sub, chunk)) != ChunkReceiveResult_SUCCESS)
        if (take_again(cfg, ctl, p, r, "iox_sub_take_chunk") != 0)
            return -1;
    return 0;
}

/* Checks the marks of message i and releases it: 0, or -1 after bench_fail(). */
static inline int ps_done(bench_ctl_t *ctl, ice_pair_t *p, const void *c, uint64_t size,
                          uint64_t i, const char *what)
{
    int good = bench_touch_check(c, size, i);
    iox_sub_release_chunk(p->sub, c);
    return bench_check_message(ctl, good, what, i);
}

static int ps_round(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    ice_pair_t *p = state;
    const void *pong = NULL;
    if (ps_send(ctl, p, (uint32_t)cfg->payload, i, 0) != 0 || ps_recv(cfg, ctl, p, &pong) != 0)
        return -1;
    return ps_done(ctl, p, pong, cfg->payload, i, "pong");
}

BENCH_TIMED_RUN_A(ps_run_a, ps_round)

/* Side B: takes ping i and answers with a pong of the same mark. */
static int ps_answer(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    (void)i;
    ice_pair_t *p = state;
    const void *ping = NULL;
    if (ps_recv(cfg, ctl, p, &ping) != 0)
        return -1;
    uint64_t seq = bench_touch_read(ping);
    iox_sub_release_chunk(p->sub, ping);
    return ps_send(ctl, p, (uint32_t)cfg->payload, seq, 0);
}

BENCH_STEPS_RUN(ps_run_b, ps_answer)

static const bench_ops_t ps_ops = ICE_OPS(ps_setup, ps_run_a, ps_run_b);

/* ---- fan-out: 1 publisher, cfg->pairs subscribers ---------------------------------------- */

static int fan_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    (void)pair;
    ice_pair_t *p = pair_new(cfg, ctl, 0, state); /* one topic for all */
    if (!p)
        return -1;
    return ps_open(ctl, p, side == 'A' ? "fan" : NULL, side == 'B' ? "fan" : NULL, 1);
}

/* The publisher starts when every subscriber is SUBSCRIBED (it cannot count
 * them itself): they count themselves in ctl->progress. */
typedef struct subs_wait {
    bench_ctl_t *ctl;
    uint64_t want;
} subs_wait_t;

static int all_subscribed(const void *arg)
{
    const subs_wait_t *w = arg;
    return atomic_load(&w->ctl->progress) >= w->want;
}

static int fan_publish(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    subs_wait_t w = {ctl, (uint64_t)cfg->pairs};
    if (i == 0 && bench_wait_until(ctl, all_subscribed, &w, 15, "iceoryx: fan-out subscribers"))
        return -1;
    return ps_send(ctl, state, (uint32_t)cfg->payload, i, bench_now_ns());
}

BENCH_STEPS_RUN(fan_run_a, fan_publish)

static int fan_take(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t n,
                    uint64_t *ns)
{
    ice_pair_t *p = state;
    const void *c = NULL;
    if (ps_recv(cfg, ctl, p, &c) != 0)
        return -1;
    *ns = bench_now_ns() - bench_stamp_read(c);
    return ps_done(ctl, p, c, cfg->payload, n, "message");
}

static int fan_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                     uint64_t *samples)
{
    if (wait_until(ctl, subscribed, state, "fan-out subscription") != 0)
        return -1;
    atomic_fetch_add(&ctl->progress, 1u);
    return bench_time_deliveries(cfg, ctl, pair, state, samples, fan_take);
}

static const bench_ops_t fan_ops = ICE_OPS(fan_setup, fan_run_a, fan_run_b);

/* ---- what iceoryx cannot do: its compile-time limits ---------------------------------------- */

/* IOX_MAX_SERVERS is IOX_MAX_PUBLISHERS and IOX_MAX_CLIENTS is
 * IOX_MAX_SUBSCRIBERS in 2.0.3 (iceoryx_posh_types.hpp); the binding reports
 * the latter two. */
static uint32_t max_servers(void)
{
    return iox_cfg_max_publishers();
}

static uint32_t max_ports(void)
{
    return 2 * (iox_cfg_max_publishers() + iox_cfg_max_subscribers());
}

static int ice_cannot(const bench_cfg_t *cfg, char *why, size_t len)
{
    if (cfg->payload > UINT32_MAX) {
        snprintf(why, len, "iceoryx payload sizes are 8..%u bytes here (uint32_t API)", UINT32_MAX);
        return -1;
    }
    if (!strcmp(cfg->pattern, "services") &&
        ((uint32_t)cfg->param > max_servers() ||
         (uint32_t)cfg->param > iox_cfg_max_number_of_attachments_per_waitset())) {
        snprintf(why, len,
                 "iceoryx 2.0.3 allows %u servers (IOX_MAX_SERVERS = IOX_MAX_PUBLISHERS) and %u "
                 "ports per WaitSet (fixed at compile time): %d services with a server each do "
                 "not fit",
                 max_servers(), iox_cfg_max_number_of_attachments_per_waitset(), cfg->param);
        return -1;
    }
    return 0;
}

/* The scale rows iceoryx cannot have, with the limit that stops each. */
static void limit_row(const char *pattern)
{
    char why[256];
    int pairs = BENCH_SCALE_PORTS;
    if (!strcmp(pattern, "port_create")) {
        snprintf(why, sizeof why,
                 "holds at most %u ports (%u publishers and servers each, %u subscribers and "
                 "clients each): %d do not fit",
                 max_ports(), iox_cfg_max_publishers(), iox_cfg_max_subscribers(), pairs);
    } else if (!strcmp(pattern, "service_create")) {
        pairs = BENCH_SCALE_SERVICES;
        snprintf(why, sizeof why,
                 "allows %u servers (IOX_MAX_SERVERS = IOX_MAX_PUBLISHERS): %d services with a "
                 "server each do not fit",
                 max_servers(), pairs);
    } else {
        pairs = BENCH_MATCH_PUBLISHERS;
        snprintf(why, sizeof why,
                 "allows %u publishers (IOX_MAX_PUBLISHERS) and %u subscribers per publisher: "
                 "%d publishers do not fit",
                 iox_cfg_max_publishers(), iox_cfg_max_subscribers_per_publisher(), pairs);
    }
    bench_print_error_row("iceoryx", pattern, "-", pairs, "iceoryx 2.0.3 %s (fixed at compile time)",
                          why);
}

static void no_port_create(const bench_opts_t *o, uint64_t run_id)
{
    (void)o, (void)run_id, limit_row("port_create");
}

static void no_service_create(const bench_opts_t *o, uint64_t run_id)
{
    (void)o, (void)run_id, limit_row("service_create");
}

static void no_sub_match(const bench_opts_t *o, uint64_t run_id)
{
    (void)o, (void)run_id, limit_row("sub_match");
}

/* ---- creating many servers, memory per port ------------------------------------------------- */

typedef struct create_env {
    iox_server_storage_t *storage;
    iox_server_t *srv;
    char inst[64];
} create_env_t;

typedef struct create_arg {
    uint64_t run_id;
    int count;
} create_arg_t;

static void create_close(void *envp)
{
    create_env_t *e = envp;
    if (!e)
        return;
    free(e->storage);
    free(e->srv);
    free(e);
    /* no iox_runtime_shutdown(): see ice_proc_fini */
}

static int create_open(bench_ctl_t *ctl, const void *argp, void **envp)
{
    const create_arg_t *a = argp;
    create_env_t *e = calloc(1, sizeof *e);
    *envp = e;
    if (e) {
        e->storage = calloc((size_t)a->count, sizeof *e->storage);
        e->srv = calloc((size_t)a->count, sizeof *e->srv);
    }
    if (!e || !e->storage || !e->srv) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    snprintf(e->inst, sizeof e->inst, "create%" PRIu64, a->run_id);
    runtime_open("create");
    return 0;
}

static int create_one(bench_ctl_t *ctl, void *envp, int i)
{
    (void)ctl;
    create_env_t *e = envp;
    char ev[32];
    snprintf(ev, sizeof ev, "s%d", i);
    iox_server_options_t opts;
    iox_server_options_init(&opts);
    e->srv[i] = iox_server_init(&e->storage[i], SERVICE, e->inst, ev, &opts);
    return 0;
}

static void destroy_one(void *envp, int i)
{
    create_env_t *e = envp;
    iox_server_deinit(e->srv[i]);
}

static bench_scale_t servers_scale(const bench_opts_t *o, const create_arg_t *a)
{
    return (bench_scale_t){
        .suite = "iceoryx",
        .create_row = "server_create",
        .destroy_row = "server_destroy",
        .count = a->count,
        .group = 64,
        .cpu = o->cpu_a,
        .timeout_s = o->timeout_s,
        .arg = a,
        .open = create_open,
        .create = create_one,
        .destroy = destroy_one,
        .close = create_close,
    };
}

static void run_create(const bench_opts_t *o, uint64_t run_id)
{
    int count = g_create_count ? atoi(g_create_count) : 512;
    create_arg_t a = {run_id, count < 1 ? 1 : count};
    bench_scale_t s = servers_scale(o, &a);
    bench_scale_free(&s, bench_scale_run(&s));
}

/* iceoryx preallocates every port slot in its management segment when RouDi
 * starts, so the figure is segment size / slots (an upper bound: the
 * segment holds its other tables too); the note adds the resident-set growth
 * of a process per server it creates. */
static void run_memory(const bench_opts_t *o, uint64_t run_id)
{
    create_arg_t a = {run_id, (int)max_servers()};
    bench_scale_t s = servers_scale(o, &a);
    s.create_row = s.destroy_row = NULL;
    bench_ctl_t *ctl = bench_scale_run(&s);
    if (!ctl)
        return;
    struct stat sb;
    uint64_t slots = max_ports();
    uint64_t mgmt = stat("/dev/shm/iceoryx_mgmt", &sb) == 0 ? (uint64_t)sb.st_size : 0;
    bench_stats_t ms;
    memset(&ms, 0, sizeof ms);
    ms.ok = mgmt != 0;
    ms.median_ns = ms.p99_ns = ms.p999_ns = ms.max_ns = (double)mgmt / (double)slots;
    snprintf(ms.note, sizeof ms.note,
             "%supper bound;mgmt_segment_bytes=%" PRIu64 ";port_slots=%" PRIu64
             ";rss_growth_per_port_bytes=%.0f",
             ms.ok ? "" : "error: no /dev/shm/iceoryx_mgmt;", mgmt, slots,
             (double)bench_scale_aux(ctl)[0] / a.count);
    char cpus[64];
    bench_print_raw_row("iceoryx", "port_memory_bytes", "-", 0, a.count, (uint64_t)a.count, &ms,
                        bench_one_cpu_str(o->cpu_a, cpus, sizeof cpus));
    bench_scale_free(&s, ctl);
}

/* ---- is RouDi there? ------------------------------------------------------------------------- */

static int probe_child(bench_ctl_t *ctl, const void *arg)
{
    (void)ctl;
    (void)arg;
    runtime_open("probe");
    return 0; /* deregisters in exit(); see ice_proc_fini */
}

/* services: rr_ops, refused by ice_cannot() with the reason */
static const bench_pattern_t patterns[] = {
    BENCH_IPC_PATTERNS(&rr_ops, &ps_ops, run_create, &fan_ops, &rrk_ops, &rr_ops, no_port_create,
                       no_service_create, no_sub_match, run_memory),
};

static const bench_extra_opt_t extra[] = {
    {"--create-count", &g_create_count},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    const bench_suite_t suite = {
        .name = "iceoryx",
        .usage = "  --create-count N   servers for the create pattern (default 512)\n"
                 "  iceoryx's RouDi must be running (bench/run.sh starts it).\n",
        .defaults = BENCH_DEFAULTS(20000, 2000, "rr,pubsub,create", 3),
        BENCH_PATTERNS(patterns),
        .extra = extra,
        .probe = probe_child,
        .probe_timeout_s = 10.0,
        .probe_error = "cannot register with RouDi within 10 s (is iox-roudi running?) ",
        .cannot = ice_cannot,
    };
    return bench_main(&suite, argc, argv);
}
