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

/* ---- payload touch ------------------------------------------------------------------- */

static inline void touch_write(void *p, uint64_t size, uint64_t seq)
{
    unsigned char *b = p;
    memcpy(b, &seq, sizeof seq);
    b[size - 1] = (unsigned char)(seq * 31u + 7u);
}

static inline int touch_check(const void *p, uint64_t size, uint64_t seq)
{
    const unsigned char *b = p;
    uint64_t got;
    memcpy(&got, b, sizeof got);
    return got == seq && b[size - 1] == (unsigned char)(seq * 31u + 7u);
}

static inline uint64_t touch_read(const void *p)
{
    uint64_t got;
    memcpy(&got, p, sizeof got);
    return got;
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

static int wait_until(bench_ctl_t *ctl, int (*pred)(ice_pair_t *), ice_pair_t *p,
                      const char *what)
{
    uint64_t deadline = bench_now_ns() + 15ull * 1000000000ull;
    while (!pred(p)) {
        if (bench_stopping(ctl))
            return -1;
        if (bench_now_ns() > deadline) {
            bench_fail(ctl, "iceoryx: %s not reached within 15 s", what);
            return -1;
        }
        usleep(1000);
    }
    return 0;
}

static int client_connected(ice_pair_t *p)
{
    return iox_client_get_connection_state(p->client) == ConnectionState_CONNECTED;
}

static int pubsub_matched(ice_pair_t *p)
{
    return iox_sub_get_subscription_state(p->sub) == SubscribeState_SUBSCRIBED &&
           iox_pub_has_subscribers(p->pub);
}

/* ---- process --------------------------------------------------------------------------- */

static int ice_proc_init(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    (void)ctl;
    char name[64];
    snprintf(name, sizeof name, "shoalbench-%c-%d", side, (int)getpid());
    iox_set_loglevel(Iceoryx_LogLevel_Warn);
    iox_runtime_init(name);
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

static void instance_name(const bench_cfg_t *cfg, int pair, char *buf, size_t len)
{
    snprintf(buf, len, "r%" PRIu64 "p%d", cfg->run_id, pair);
}

/* ---- request / response ------------------------------------------------------------------ */

static int rr_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    ice_pair_t *p = calloc(1, sizeof *p);
    if (!p) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    *state = p;
    char inst[64];
    instance_name(cfg, pair, inst, sizeof inst);
    if (side == 'B') {
        iox_server_options_t opts;
        iox_server_options_init(&opts);
        opts.requestQueueCapacity = 16;
        p->server = iox_server_init(&p->server_storage, SERVICE, inst, "rr", &opts);
        if (cfg->mode == BENCH_BLOCK) {
            p->ws = iox_ws_init(&p->ws_storage);
            if (iox_ws_attach_server_state(p->ws, p->server, ServerState_HAS_REQUEST, 0, NULL) !=
                WaitSetResult_SUCCESS) {
                bench_fail(ctl, "iox_ws_attach_server_state failed");
                return -1;
            }
        }
        return 0;
    }
    iox_client_options_t opts;
    iox_client_options_init(&opts);
    opts.responseQueueCapacity = 16;
    p->client = iox_client_init(&p->client_storage, SERVICE, inst, "rr", &opts);
    if (cfg->mode == BENCH_BLOCK) {
        p->ws = iox_ws_init(&p->ws_storage);
        if (iox_ws_attach_client_state(p->ws, p->client, ClientState_HAS_RESPONSE, 0, NULL) !=
            WaitSetResult_SUCCESS) {
            bench_fail(ctl, "iox_ws_attach_client_state failed");
            return -1;
        }
    }
    return wait_until(ctl, client_connected, p, "client CONNECTED");
}

static void rr_teardown(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
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
    free(p);
}

static int rr_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                    uint64_t *samples)
{
    ice_pair_t *p = state;
    const uint32_t size = (uint32_t)cfg->payload;
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (i == cfg->warmup)
            bench_mark_start(ctl, pair);
        uint64_t t0 = bench_now_ns();
        void *req = NULL;
        enum iox_AllocationResult ar = iox_client_loan_request(p->client, &req, size);
        if (ar != AllocationResult_SUCCESS) {
            bench_fail(ctl, "iox_client_loan_request(%u bytes): %s", size, alloc_str(ar));
            return -1;
        }
        touch_write(req, size, i);
        enum iox_ClientSendResult sr = iox_client_send(p->client, req);
        if (sr != ClientSendResult_SUCCESS) {
            bench_fail(ctl, "iox_client_send: result %d", (int)sr);
            return -1;
        }
        const void *resp = NULL;
        for (;;) {
            enum iox_ChunkReceiveResult r = iox_client_take_response(p->client, &resp);
            if (r == ChunkReceiveResult_SUCCESS)
                break;
            if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
                bench_fail(ctl, "iox_client_take_response: %s", recv_str(r));
                return -1;
            }
            if (bench_stopping(ctl))
                return -1;
            idle(cfg, p);
        }
        int good = touch_check(resp, size, i);
        iox_client_release_response(p->client, resp);
        uint64_t t1 = bench_now_ns();
        if (!good) {
            bench_fail(ctl, "response %" PRIu64 " carries the wrong payload", i);
            return -1;
        }
        if (i >= cfg->warmup)
            samples[i - cfg->warmup] = t1 - t0;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

static int rr_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state)
{
    (void)pair;
    ice_pair_t *p = state;
    const uint32_t size = (uint32_t)cfg->payload;
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t n = 0; n < total;) {
        const void *req = NULL;
        enum iox_ServerRequestResult r = iox_server_take_request(p->server, &req);
        if (r != ServerRequestResult_SUCCESS) {
            if (r != ServerRequestResult_NO_PENDING_REQUESTS) {
                bench_fail(ctl, "iox_server_take_request: result %d", (int)r);
                return -1;
            }
            if (bench_stopping(ctl))
                return -1;
            idle(cfg, p);
            continue;
        }
        uint64_t seq = touch_read(req);
        void *resp = NULL;
        enum iox_AllocationResult ar = iox_server_loan_response(p->server, req, &resp, size);
        if (ar != AllocationResult_SUCCESS) {
            iox_server_release_request(p->server, req);
            bench_fail(ctl, "iox_server_loan_response(%u bytes): %s", size, alloc_str(ar));
            return -1;
        }
        touch_write(resp, size, seq);
        enum iox_ServerSendResult sr = iox_server_send(p->server, resp);
        iox_server_release_request(p->server, req);
        if (sr != ServerSendResult_SUCCESS) {
            bench_fail(ctl, "iox_server_send: result %d", (int)sr);
            return -1;
        }
        n++;
    }
    return 0;
}

static const bench_ops_t rr_ops = {
    .proc_init = ice_proc_init,
    .proc_fini = ice_proc_fini,
    .pair_setup = rr_setup,
    .pair_teardown = rr_teardown,
    .run_a = rr_run_a,
    .run_b = rr_run_b,
};

/* ---- publish / subscribe ping-pong -------------------------------------------------------- */

static int ps_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    ice_pair_t *p = calloc(1, sizeof *p);
    if (!p) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    *state = p;
    char inst[64];
    instance_name(cfg, pair, inst, sizeof inst);
    iox_pub_options_t po;
    iox_pub_options_init(&po);
    po.historyCapacity = 0;
    iox_sub_options_t so;
    iox_sub_options_init(&so);
    so.queueCapacity = 16;
    so.historyRequest = 0;
    /* A publishes ping and subscribes to pong; B the other way round. */
    p->pub = iox_pub_init(&p->pub_storage, SERVICE, inst, side == 'A' ? "ping" : "pong", &po);
    p->sub = iox_sub_init(&p->sub_storage, SERVICE, inst, side == 'A' ? "pong" : "ping", &so);
    if (cfg->mode == BENCH_BLOCK) {
        p->ws = iox_ws_init(&p->ws_storage);
        if (iox_ws_attach_subscriber_state(p->ws, p->sub, SubscriberState_HAS_DATA, 0, NULL) !=
            WaitSetResult_SUCCESS) {
            bench_fail(ctl, "iox_ws_attach_subscriber_state failed");
            return -1;
        }
    }
    if (side == 'A')
        return wait_until(ctl, pubsub_matched, p, "ping/pong subscriptions");
    return 0;
}

static void ps_teardown(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
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
    if (p->sub)
        iox_sub_deinit(p->sub);
    if (p->pub)
        iox_pub_deinit(p->pub);
    free(p);
}

static int ps_send(bench_ctl_t *ctl, ice_pair_t *p, uint32_t size, uint64_t seq)
{
    void *chunk = NULL;
    enum iox_AllocationResult ar = iox_pub_loan_chunk(p->pub, &chunk, size);
    if (ar != AllocationResult_SUCCESS) {
        bench_fail(ctl, "iox_pub_loan_chunk(%u bytes): %s", size, alloc_str(ar));
        return -1;
    }
    touch_write(chunk, size, seq);
    iox_pub_publish_chunk(p->pub, chunk);
    return 0;
}

static int ps_recv(const bench_cfg_t *cfg, bench_ctl_t *ctl, ice_pair_t *p, const void **chunk)
{
    for (;;) {
        enum iox_ChunkReceiveResult r = iox_sub_take_chunk(p->sub, chunk);
        if (r == ChunkReceiveResult_SUCCESS)
            return 0;
        if (r != ChunkReceiveResult_NO_CHUNK_AVAILABLE) {
            bench_fail(ctl, "iox_sub_take_chunk: %s", recv_str(r));
            return -1;
        }
        if (bench_stopping(ctl))
            return -1;
        idle(cfg, p);
    }
}

static int ps_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                    uint64_t *samples)
{
    ice_pair_t *p = state;
    const uint32_t size = (uint32_t)cfg->payload;
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (i == cfg->warmup)
            bench_mark_start(ctl, pair);
        uint64_t t0 = bench_now_ns();
        if (ps_send(ctl, p, size, i) != 0)
            return -1;
        const void *pong = NULL;
        if (ps_recv(cfg, ctl, p, &pong) != 0)
            return -1;
        int good = touch_check(pong, size, i);
        iox_sub_release_chunk(p->sub, pong);
        uint64_t t1 = bench_now_ns();
        if (!good) {
            bench_fail(ctl, "pong %" PRIu64 " carries the wrong payload", i);
            return -1;
        }
        if (i >= cfg->warmup)
            samples[i - cfg->warmup] = t1 - t0;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

static int ps_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state)
{
    (void)pair;
    ice_pair_t *p = state;
    const uint32_t size = (uint32_t)cfg->payload;
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t n = 0; n < total; n++) {
        const void *ping = NULL;
        if (ps_recv(cfg, ctl, p, &ping) != 0)
            return -1;
        uint64_t seq = touch_read(ping);
        iox_sub_release_chunk(p->sub, ping);
        if (ps_send(ctl, p, size, seq) != 0)
            return -1;
    }
    return 0;
}

static const bench_ops_t ps_ops = {
    .proc_init = ice_proc_init,
    .proc_fini = ice_proc_fini,
    .pair_setup = ps_setup,
    .pair_teardown = ps_teardown,
    .run_a = ps_run_a,
    .run_b = ps_run_b,
};

/* ---- creating many servers ----------------------------------------------------------------- */

static long rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

typedef struct create_arg {
    int count;
    uint64_t run_id;
    int cpu;
} create_arg_t;

static int create_child(bench_ctl_t *ctl, const void *argp)
{
    const create_arg_t *a = argp;
    bench_pin(a->cpu);
    char name[64];
    snprintf(name, sizeof name, "shoalbench-create-%d", (int)getpid());
    iox_set_loglevel(Iceoryx_LogLevel_Warn);
    iox_runtime_init(name);
    iox_server_storage_t *st = calloc((size_t)a->count, sizeof *st);
    iox_server_t *srv = calloc((size_t)a->count, sizeof *srv);
    if (!st || !srv) {
        bench_fail(ctl, "out of memory");
        return 1;
    }
    char inst[64];
    snprintf(inst, sizeof inst, "create%" PRIu64, a->run_id);
    iox_server_options_t opts;
    iox_server_options_init(&opts);
    uint64_t *create_ns = ctl->samples, *destroy_ns = ctl->samples + a->count;
    long rss0 = rss_bytes();
    uint64_t t_all = bench_now_ns();
    for (int i = 0; i < a->count; i++) {
        char ev[32];
        snprintf(ev, sizeof ev, "s%d", i);
        uint64_t t0 = bench_now_ns();
        srv[i] = iox_server_init(&st[i], SERVICE, inst, ev, &opts);
        create_ns[i] = bench_now_ns() - t0;
        atomic_store(&ctl->progress, (uint64_t)(i + 1));
    }
    uint64_t create_total = bench_now_ns() - t_all;
    long rss1 = rss_bytes();
    uint64_t *mem = (uint64_t *)(void *)ctl->aux;
    mem[0] = (uint64_t)(rss1 > rss0 ? rss1 - rss0 : 0);
    t_all = bench_now_ns();
    for (int i = 0; i < a->count; i++) {
        uint64_t t0 = bench_now_ns();
        iox_server_deinit(srv[i]);
        destroy_ns[i] = bench_now_ns() - t0;
    }
    uint64_t destroy_total = bench_now_ns() - t_all;
    /* no iox_runtime_shutdown(): see ice_proc_fini */
    int k = a->count < 64 ? a->count : 64;
    double first = 0, last = 0;
    for (int i = 0; i < k; i++) {
        first += (double)create_ns[i];
        last += (double)create_ns[a->count - k + i];
    }
    bench_note(ctl, "create_total_ms=%.2f;destroy_total_ms=%.2f;first%d_mean_us=%.1f;last%d_mean_us=%.1f",
               (double)create_total / 1e6, (double)destroy_total / 1e6, k, first / k / 1e3, k,
               last / k / 1e3);
    return 0;
}

static void run_create(const bench_opts_t *o, int count, uint64_t run_id)
{
    create_arg_t a = {count, run_id, o->cpu_a};
    bench_ctl_t *ctl = NULL;
    int rc = bench_run_in_child(create_child, &a, 2 * (size_t)count, o->timeout_s, &ctl);
    bench_cfg_t c = {.cpu_a = o->cpu_a, .cpu_b = -1};
    char cpus[64];
    bench_cpus_str(&c, cpus, sizeof cpus);
    bench_stats_t cs, ds;
    memset(&cs, 0, sizeof cs);
    memset(&ds, 0, sizeof ds);
    if (!ctl) {
        snprintf(cs.note, sizeof cs.note, "error: cannot map control block");
        bench_print_raw_row("iceoryx", "server_create", "-", 0, count, (uint64_t)count, &cs, cpus);
        return;
    }
    if (rc != 0) {
        snprintf(cs.note, sizeof cs.note, "error: %s (after %" PRIu64 " of %d servers created)",
                 ctl->err, atomic_load(&ctl->progress), count);
        bench_print_raw_row("iceoryx", "server_create", "-", 0, count, (uint64_t)count, &cs, cpus);
    } else {
        bench_compute(ctl->samples, (uint64_t)count, 1.0, &cs);
        bench_compute(ctl->samples + count, (uint64_t)count, 1.0, &ds);
        snprintf(cs.note, sizeof cs.note, "%s", ctl->note);
        snprintf(ds.note, sizeof ds.note, "%s", ctl->note);
        double sum = 0;
        for (int i = 0; i < count; i++)
            sum += (double)ctl->samples[i];
        cs.throughput_per_s = count / (sum / 1e9);
        sum = 0;
        for (int i = 0; i < count; i++)
            sum += (double)ctl->samples[count + i];
        ds.throughput_per_s = count / (sum / 1e9);
        bench_print_raw_row("iceoryx", "server_create", "-", 0, count, (uint64_t)count, &cs, cpus);
        bench_print_raw_row("iceoryx", "server_destroy", "-", 0, count, (uint64_t)count, &ds, cpus);
        /* memory per port: iceoryx preallocates every port slot in its
         * management segment when RouDi starts, so the honest figure is
         * segment size / slots (publishers + subscribers + servers + clients;
         * in 2.0.3 MAX_SERVERS = MAX_PUBLISHERS, MAX_CLIENTS = MAX_SUBSCRIBERS). */
        struct stat sb;
        uint64_t slots = 2ull * ((uint64_t)iox_cfg_max_publishers() + iox_cfg_max_subscribers());
        uint64_t mgmt = stat("/dev/shm/iceoryx_mgmt", &sb) == 0 ? (uint64_t)sb.st_size : 0;
        const uint64_t *mem = (const uint64_t *)(const void *)ctl->aux;
        bench_stats_t ms;
        memset(&ms, 0, sizeof ms);
        ms.ok = 1;
        ms.median_ns = ms.p99_ns = ms.p999_ns = ms.max_ns = (double)mem[0] / count;
        snprintf(ms.note, sizeof ms.note,
                 "rss_growth_per_port_bytes=%.0f;mgmt_segment_bytes=%" PRIu64 ";port_slots=%" PRIu64
                 ";mgmt_per_slot_bytes=%.0f",
                 (double)mem[0] / count, mgmt, slots, slots ? (double)mgmt / (double)slots : 0.0);
        bench_print_raw_row("iceoryx", "port_memory_bytes", "-", 0, count, (uint64_t)count, &ms, cpus);
    }
    bench_ctl_free(ctl, 2 * (size_t)count);
}

/* ---- is RouDi there? ------------------------------------------------------------------------- */

static int probe_child(bench_ctl_t *ctl, const void *arg)
{
    (void)ctl;
    (void)arg;
    char name[64];
    snprintf(name, sizeof name, "shoalbench-probe-%d", (int)getpid());
    iox_set_loglevel(Iceoryx_LogLevel_Error);
    iox_runtime_init(name);
    return 0; /* deregisters in exit(); see ice_proc_fini */
}

int main(int argc, char **argv)
{
    int ncpu = bench_online_cpus();
    bench_opts_t o = {
        .iters = 20000,
        .warmup = 2000,
        .cpu_a = 0,
        .cpu_b = ncpu > 1 ? 1 : 0,
        .pairs = {1, 4},
        .npairs = 2,
        .payloads = {64, 4096, 1u << 20, 64u << 20, 1u << 30},
        .npayloads = 5,
        .modes = {BENCH_BUSY, BENCH_BLOCK},
        .nmodes = 2,
        .patterns = "rr,pubsub,create",
        .header = 1,
        .timeout_s = 120,
        .repeat = 3,
    };
    int create_count = 512;
    /* strip our own option before the common parser sees it */
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--create-count") && i + 1 < argc) {
            create_count = atoi(argv[i + 1]);
            memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof *argv);
            argc -= 2;
            i--;
        }
    }
    bench_parse_opts(&o, argc, argv, "iceoryx_bench",
                     "  --create-count N   servers for the create pattern (default 512)\n"
                     "  patterns: rr, pubsub, create (default all three)\n"
                     "  iceoryx's RouDi must be running (bench/run.sh starts it).\n");
    if (o.header)
        printf("%s\n", BENCH_CSV_HEADER);

    bench_ctl_t *pctl = NULL;
    if (bench_run_in_child(probe_child, NULL, 0, 10.0, &pctl) != 0) {
        bench_stats_t st;
        memset(&st, 0, sizeof st);
        snprintf(st.note, sizeof st.note,
                 "error: cannot register with RouDi within 10 s (is iox-roudi running?) %s",
                 pctl ? pctl->err : "");
        bench_print_raw_row("iceoryx", "probe", "-", 0, 0, 0, &st, "-");
        return 1;
    }
    bench_ctl_free(pctl, 0);

    uint64_t run = (uint64_t)getpid() * 1000u;
    static const char *patterns[] = {"rr", "pubsub"};
    bench_job_t *jobs = calloc(2u * 2u * 8u * BENCH_MAX_PAYLOADS, sizeof *jobs);
    int n = 0;
    for (size_t pi = 0; jobs && pi < 2; pi++) {
        if (!bench_pattern_selected(&o, patterns[pi]))
            continue;
        int ps = !strcmp(patterns[pi], "pubsub");
        for (int m = 0; m < o.nmodes; m++)
            for (int np = 0; np < o.npairs; np++)
                for (int s = 0; s < o.npayloads; s++) {
                    bench_cfg_t cfg = {
                        .suite = "iceoryx",
                        .pattern = patterns[pi],
                        .mode = o.modes[m],
                        .payload = o.payloads[s],
                        .pairs = o.pairs[np],
                        .iters = o.iters,
                        .warmup = o.warmup,
                        .cpu_a = o.cpu_a,
                        .cpu_b = o.cpu_b,
                        .timeout_s = o.timeout_s,
                        .run_id = ++run,
                    };
                    bench_decide_yield(&cfg);
                    if (cfg.payload < 8 || cfg.payload > UINT32_MAX) {
                        bench_stats_t st;
                        memset(&st, 0, sizeof st);
                        snprintf(st.note, sizeof st.note, "error: iceoryx payload sizes are 8..%u bytes here (uint32_t API)", UINT32_MAX);
                        bench_print_row(&cfg, &st);
                        continue;
                    }
                    jobs[n++] = (bench_job_t){cfg, ps ? &ps_ops : &rr_ops, ps, ps ? 2.0 : 1.0, {0}};
                }
    }
    if (jobs) {
        bench_sweep(jobs, n, o.repeat);
        for (int i = 0; i < n; i++)
            bench_print_row(&jobs[i].cfg, &jobs[i].stats);
        free(jobs);
    }
    if (bench_pattern_selected(&o, "create"))
        run_create(&o, create_count, ++run);
    return 0;
}
