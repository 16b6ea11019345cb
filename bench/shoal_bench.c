/*
 * shoal_bench.c - shoal measured through its public ABI (capi/include/shoal.h),
 * with the same harness, payloads, modes and placement as iceoryx_bench and
 * raw_pingpong, so that every row has a baseline to be divided by.
 *
 * Latency (the default patterns):
 *   rr       client loan/send, server take/loan_response/send + release of
 *            the request, client take + check + release: one round trip.
 *   pubsub   ping-pong over two topics; one-way latency = round trip / 2.
 *   create   create N servers (N distinct services) in one process, then
 *            destroy them: per-port cost, total, first 64 vs last 64 (does
 *            the cost grow with the number of ports?).
 * Throughput (group "throughput"):
 *   fanout   1 publisher -> 1, 4, 8 subscribers (pairs = subscribers), 64 B
 *            and 1 MiB, back-pressure by the subscribers' 32-deep queues
 *            (WAIT); a sample is one delivery, publish -> take.
 *   rr_kK    one client keeps K requests in flight (K = 1, 8, 64); a sample
 *            is one request, loan -> its response taken (answers in order).
 *   services 1,000 services with 1 client and 1 server each; the client
 *            calls them in turn (round-robin), one round trip per sample.
 * Scale (group "scale"), one process each:
 *   port_create        4,096 ports (1,024 publishers, subscribers, clients,
 *                      servers, in turn, on 1,024 topics and 1,024 services)
 *   service_create     1,000 services, each a server then a client
 *   sub_match          a new subscriber and 1,000 publishers of its topic
 *   port_memory_bytes  bytes of the management segment per port slot
 *
 * busy  = take with SHOAL_TIMEOUT_POLL in a loop (pause between polls,
 *         sched_yield when more spinning threads than CPUs: "yield" in note);
 * block = take with a long timeout (100 ms slices, so that a failure of the
 *         other side is noticed); services: one waitset for all servers.
 *
 * Only the first 8 and the last byte of each payload are written and read.
 * The daemon must run: bench/run.sh starts
 *   shoald --domain benchN --config bench/shoal-bench.conf --ready-fd 3
 * and passes --domain here (or set SHOAL_DOMAIN / SHOAL_RUNTIME_DIR).
 */
#include "bench_common.h"

#include <shoal.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *g_domain;     /* NULL: $SHOAL_DOMAIN, else "default" */
static const char *g_ref_domain; /* a daemon with more port slots (port_memory_bytes) */
static const char *g_create_count;
static const int64_t k_slice_ns = 100 * 1000 * 1000;

#define SHOAL_FAIL(ctl, what, r) \
    bench_fail((ctl), "%s: %s: %s", (what), shoal_strerror(r), shoal_last_error_message())

/* Calls a shoal function; on failure records why and returns -1. */
#define SHOAL_TRY(ctl, what, call)                \
    do {                                          \
        shoal_result_t r_ = (call);               \
        if (r_ != SHOAL_OK) {                     \
            SHOAL_FAIL((ctl), (what), r_);        \
            return -1;                            \
        }                                         \
    } while (0)

/* ---- process ----------------------------------------------------------------------------- */

static shoal_runtime_t *g_rt; /* one per side process */

static shoal_result_t runtime_open(shoal_runtime_t **rt, const char *domain, const char *role)
{
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = domain;
    o.connect_timeout_ns = 5ll * 1000 * 1000 * 1000;
    char name[64];
    snprintf(name, sizeof name, "bench-%s-%d", role, (int)getpid());
    return shoal_runtime_create(rt, name, &o);
}

static int sh_proc_init(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    SHOAL_TRY(ctl, "shoal_runtime_create", runtime_open(&g_rt, g_domain, side == 'A' ? "A" : "B"));
    return 0;
}

static void sh_proc_fini(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    (void)ctl;
    (void)side;
    shoal_runtime_destroy(g_rt);
    g_rt = NULL;
}

/* Every pattern: a runtime per side process, its ports per pair. */
#define SH_OPS(setup, a, b)                                                                      \
    {                                                                                           \
        .proc_init = sh_proc_init, .proc_fini = sh_proc_fini, .pair_setup = (setup),            \
        .pair_teardown = sh_teardown, .run_a = (a), .run_b = (b)                                \
    }

/* One pair's ports, or one side's ports of the services pattern. */
typedef struct sh_pair {
    shoal_client_t *client;
    shoal_server_t *server;
    shoal_publisher_t *pub;
    shoal_subscriber_t *sub;
    int n; /* services: how many of each */
    shoal_client_t **clients;
    shoal_server_t **servers;
    shoal_waitset_t *ws;
    uint64_t *seqs; /* rr_kK: sequence ids of the requests in flight */
} sh_pair_t;

static sh_pair_t *pair_new(bench_ctl_t *ctl, void **state)
{
    sh_pair_t *p = calloc(1, sizeof *p);
    if (!p)
        bench_fail(ctl, "out of memory");
    *state = p;
    return p;
}

static void sh_teardown(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
                        void *state)
{
    (void)cfg;
    (void)ctl;
    (void)side;
    (void)pair;
    sh_pair_t *p = state;
    if (!p)
        return;
    shoal_waitset_destroy(p->ws);
    for (int i = 0; i < p->n; i++) {
        if (p->clients)
            shoal_client_destroy(p->clients[i]);
        if (p->servers)
            shoal_server_destroy(p->servers[i]);
    }
    free(p->clients);
    free(p->servers);
    free(p->seqs);
    shoal_client_destroy(p->client);
    shoal_server_destroy(p->server);
    shoal_subscriber_destroy(p->sub);
    shoal_publisher_destroy(p->pub);
    free(p);
}

static void name_of(const bench_cfg_t *cfg, int pair, const char *what, char *buf, size_t len)
{
    snprintf(buf, len, "bench.r%" PRIu64 ".p%d.%s", cfg->run_id, pair, what);
}

/* Waits until count(port) >= want. */
typedef struct count_wait {
    uint32_t (*count)(const void *);
    const void *port;
    uint32_t want;
} count_wait_t;

static int counted(const void *arg)
{
    const count_wait_t *w = arg;
    return w->count(w->port) >= w->want;
}

static int wait_count(bench_ctl_t *ctl, uint32_t (*count)(const void *), const void *port,
                      uint32_t want, const char *what)
{
    count_wait_t w = {count, port, want};
    return bench_wait_until(ctl, counted, &w, 15, what);
}

static uint32_t servers_of(const void *c)
{
    return shoal_client_server_count(c);
}

static uint32_t subscribers_of(const void *p)
{
    return shoal_publisher_subscriber_count(p);
}

/* timeout for one take: poll, or a long blocking wait */
static inline int64_t take_timeout(const bench_cfg_t *cfg)
{
    return cfg->mode == BENCH_BUSY ? (int64_t)SHOAL_TIMEOUT_POLL : k_slice_ns;
}

/* After a take found nothing: 0 to try again, -1 to leave. */
static inline int take_again(const bench_cfg_t *cfg, bench_ctl_t *ctl, shoal_result_t r,
                             const char *what)
{
    if (r != SHOAL_ERR_TIMEOUT) {
        SHOAL_FAIL(ctl, what, r);
        return -1;
    }
    if (bench_stopping(ctl))
        return -1;
    if (cfg->mode == BENCH_BUSY)
        bench_spin_once(cfg);
    return 0;
}

/* ---- request / response ------------------------------------------------------------------ */

static shoal_result_t server_open(shoal_server_t **srv, const char *svc)
{
    return shoal_server_create(srv, g_rt, svc, NULL);
}

static int client_open(bench_ctl_t *ctl, shoal_client_t **cl, const char *svc)
{
    SHOAL_TRY(ctl, "shoal_client_create", shoal_client_create(cl, g_rt, svc, NULL));
    return wait_count(ctl, servers_of, *cl, 1, "client/server");
}

static int rr_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    sh_pair_t *p = pair_new(ctl, state);
    if (!p)
        return -1;
    char svc[96];
    name_of(cfg, pair, "rr", svc, sizeof svc);
    if (side == 'A')
        return client_open(ctl, &p->client, svc);
    SHOAL_TRY(ctl, "shoal_server_create", server_open(&p->server, svc));
    return 0;
}

/* The client's loan + write + send of request i; *seq is its sequence id. */
static inline int rr_send(bench_ctl_t *ctl, shoal_client_t *client, uint64_t size, uint64_t i,
                          uint64_t *seq)
{
    shoal_chunk_t *req = NULL;
    SHOAL_TRY(ctl, "shoal_client_loan", shoal_client_loan(client, size, &req));
    bench_touch_write(shoal_chunk_payload(req), size, i);
    SHOAL_TRY(ctl, "shoal_client_send", shoal_client_send(client, req, seq));
    return 0;
}

/* Takes the response to request i (sequence id seq), checks and releases it. */
static inline int rr_receive(const bench_cfg_t *cfg, bench_ctl_t *ctl, shoal_client_t *client,
                             uint64_t i, uint64_t seq)
{
    shoal_chunk_t *resp = NULL;
    shoal_result_t r;
    while ((r = shoal_client_take(client, &resp, take_timeout(cfg))) != SHOAL_OK)
        if (take_again(cfg, ctl, r, "shoal_client_take") != 0)
            return -1;
    int good = shoal_chunk_sequence_id(resp) == seq &&
               bench_touch_check(shoal_chunk_payload(resp), cfg->payload, i);
    shoal_chunk_release(resp);
    return bench_check_message(ctl, good, "response (sequence id and payload)", i);
}

static inline int rr_call(const bench_cfg_t *cfg, bench_ctl_t *ctl, shoal_client_t *client,
                          uint64_t i)
{
    uint64_t seq = 0;
    if (rr_send(ctl, client, cfg->payload, i, &seq) != 0)
        return -1;
    return rr_receive(cfg, ctl, client, i, seq);
}

static int rr_round(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    return rr_call(cfg, ctl, ((sh_pair_t *)state)->client, i);
}

BENCH_TIMED_RUN_A(rr_run_a, rr_round)

/* The server's answer to one request: a response with the request's mark. */
static inline int rr_respond(const bench_cfg_t *cfg, bench_ctl_t *ctl, shoal_server_t *server,
                            shoal_chunk_t *req)
{
    shoal_chunk_t *resp = NULL;
    uint64_t seq = bench_touch_read(shoal_chunk_payload(req));
    shoal_result_t r = shoal_server_loan_response(server, req, cfg->payload, &resp);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_server_loan_response", r);
        shoal_chunk_release(req);
        return -1;
    }
    bench_touch_write(shoal_chunk_payload(resp), cfg->payload, seq);
    r = shoal_server_send(server, resp);
    shoal_chunk_release(req);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_server_send", r);
        return -1;
    }
    return 0;
}

/* Side B: takes the next request and answers it. */
static int rr_serve(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    (void)i;
    sh_pair_t *p = state;
    shoal_chunk_t *req = NULL;
    shoal_result_t r;
    while ((r = shoal_server_take(p->server, &req, take_timeout(cfg))) != SHOAL_OK)
        if (take_again(cfg, ctl, r, "shoal_server_take") != 0)
            return -1;
    return rr_respond(cfg, ctl, p->server, req);
}

BENCH_STEPS_RUN(rr_run_b, rr_serve)

static const bench_ops_t rr_ops = SH_OPS(rr_setup, rr_run_a, rr_run_b);

/* ---- k requests in flight ---------------------------------------------------------------- */

/* rr_kK: K requests in flight (bench_time_pipeline); the sequence id of
 * request i waits in seqs[i % K] for its response. */
static int rrk_send(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    sh_pair_t *p = state;
    return rr_send(ctl, p->client, cfg->payload, i, &p->seqs[i % (uint64_t)cfg->param]);
}

static int rrk_receive(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    sh_pair_t *p = state;
    return rr_receive(cfg, ctl, p->client, i, p->seqs[i % (uint64_t)cfg->param]);
}

static int rrk_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                     uint64_t *samples)
{
    sh_pair_t *p = state;
    p->seqs = calloc((size_t)cfg->param, sizeof *p->seqs);
    if (!p->seqs) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    return bench_time_pipeline(cfg, ctl, pair, state, samples, (uint64_t)cfg->param, rrk_send,
                               rrk_receive);
}

static const bench_ops_t rrk_ops = SH_OPS(rr_setup, rrk_run_a, rr_run_b);

/* ---- many services, round-robin ---------------------------------------------------------- */

static int svc_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    sh_pair_t *p = pair_new(ctl, state);
    if (!p)
        return -1;
    p->n = cfg->param;
    if (side == 'A')
        p->clients = calloc((size_t)p->n, sizeof *p->clients);
    else
        p->servers = calloc((size_t)p->n, sizeof *p->servers);
    if (!p->clients && !p->servers) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    if (side == 'B' && cfg->mode == BENCH_BLOCK) {
        SHOAL_TRY(ctl, "shoal_waitset_create", shoal_waitset_create(&p->ws, g_rt));
    }
    for (int i = 0; i < p->n; i++) {
        char svc[96];
        char what[32];
        snprintf(what, sizeof what, "svc%d", i);
        name_of(cfg, pair, what, svc, sizeof svc);
        if (side == 'A') {
            if (client_open(ctl, &p->clients[i], svc) != 0)
                return -1;
            continue;
        }
        shoal_result_t r = server_open(&p->servers[i], svc);
        if (r == SHOAL_OK && p->ws)
            SHOAL_TRY(ctl, "shoal_server_create / attach", shoal_waitset_attach_server(p->ws, p->servers[i], (uint64_t)i));
    }
    return 0;
}

static int svc_round(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    sh_pair_t *p = state;
    return rr_call(cfg, ctl, p->clients[i % (uint64_t)p->n], i);
}

BENCH_TIMED_RUN_A(svc_run_a, svc_round)

/* Answers whatever waits at server i; the count of requests answered, -1 on failure. */
static int svc_drain(const bench_cfg_t *cfg, bench_ctl_t *ctl, sh_pair_t *p, int i)
{
    int n = 0;
    shoal_chunk_t *req = NULL;
    shoal_result_t r;
    while ((r = shoal_server_take(p->servers[i], &req, SHOAL_TIMEOUT_POLL)) == SHOAL_OK) {
        if (rr_respond(cfg, ctl, p->servers[i], req) != 0)
            return -1;
        n++;
    }
    if (r != SHOAL_ERR_TIMEOUT) {
        SHOAL_FAIL(ctl, "shoal_server_take", r);
        return -1;
    }
    return n;
}

/* busy: the server polls the service the round-robin calls next (both sides
 * know the order), so the row measures 1,000 services' footprint, not a
 * scan of them; block: one waitset wakes it for whichever server has work. */
static int svc_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                     uint64_t *samples)
{
    (void)pair;
    (void)samples;
    sh_pair_t *p = state;
    uint64_t total = cfg->warmup + cfg->iters, done = 0;
    uint64_t tags[64];
    while (done < total) {
        if (bench_stopping(ctl))
            return -1;
        if (!p->ws) {
            int n = svc_drain(cfg, ctl, p, (int)(done % (uint64_t)p->n));
            if (n < 0)
                return -1;
            if (n == 0)
                bench_spin_once(cfg);
            done += (uint64_t)n;
            continue;
        }
        size_t ready = 0;
        shoal_result_t r = shoal_waitset_wait(p->ws, tags, 64, &ready, k_slice_ns);
        if (r != SHOAL_OK && r != SHOAL_ERR_TIMEOUT) {
            SHOAL_FAIL(ctl, "shoal_waitset_wait", r);
            return -1;
        }
        for (size_t t = 0; t < ready; t++) {
            int n = svc_drain(cfg, ctl, p, (int)tags[t]);
            if (n < 0)
                return -1;
            done += (uint64_t)n;
        }
    }
    return 0;
}

static const bench_ops_t svc_ops = SH_OPS(svc_setup, svc_run_a, svc_run_b);

/* ---- publish / subscribe ------------------------------------------------------------------- */

static shoal_result_t pub_open(shoal_publisher_t **pub, const char *topic, int wait)
{
    if (!wait)
        return shoal_publisher_create(pub, g_rt, topic, NULL);
    /* fan-out: a full subscriber queue makes the publisher wait (back-pressure) */
    shoal_publisher_options_t o;
    shoal_publisher_options_init(&o, SHOAL_PUBLISHER_OPTIONS_VERSION);
    o.full_policy = SHOAL_FULL_WAIT;
    o.send_timeout_ns = 10ll * 1000 * 1000 * 1000;
    return shoal_publisher_create(pub, g_rt, topic, &o);
}

static shoal_result_t sub_open(shoal_subscriber_t **sub, const char *topic, uint32_t queue)
{
    shoal_subscriber_options_t o;
    shoal_subscriber_options_init(&o, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    o.queue_capacity = queue;
    return shoal_subscriber_create(sub, g_rt, topic, &o);
}

static int ps_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    sh_pair_t *p = pair_new(ctl, state);
    if (!p)
        return -1;
    char out_topic[96], in_topic[96];
    name_of(cfg, pair, side == 'A' ? "ping" : "pong", out_topic, sizeof out_topic);
    name_of(cfg, pair, side == 'A' ? "pong" : "ping", in_topic, sizeof in_topic);
    SHOAL_TRY(ctl, "shoal_publisher_create", pub_open(&p->pub, out_topic, 0));
    SHOAL_TRY(ctl, "shoal_subscriber_create", sub_open(&p->sub, in_topic, 0));
    if (side == 'A')
        return wait_count(ctl, subscribers_of, p->pub, 1, "ping publisher/subscriber");
    return 0;
}

/* Loans, marks (sequence, and a time stamp when stamp != 0) and publishes. */
static inline int ps_send(bench_ctl_t *ctl, shoal_publisher_t *pub, uint64_t size, uint64_t seq,
                          uint64_t stamp)
{
    shoal_chunk_t *c = NULL;
    SHOAL_TRY(ctl, "shoal_publisher_loan", shoal_publisher_loan(pub, size, &c));
    bench_touch_write(shoal_chunk_payload(c), size, seq);
    if (stamp)
        bench_stamp_write(shoal_chunk_payload(c), stamp);
    SHOAL_TRY(ctl, "shoal_publisher_publish", shoal_publisher_publish(pub, c));
    return 0;
}

static inline int ps_recv(const bench_cfg_t *cfg, bench_ctl_t *ctl, shoal_subscriber_t *sub,
                          shoal_chunk_t **c)
{
    shoal_result_t r;
    while ((r = shoal_subscriber_take(sub, c, take_timeout(cfg))) != SHOAL_OK)
        if (take_again(cfg, ctl, r, "shoal_subscriber_take") != 0)
            return -1;
    return 0;
}

/* Checks the marks of message i and releases it: 0, or -1 after bench_fail(). */
static inline int ps_done(const bench_cfg_t *cfg, bench_ctl_t *ctl, shoal_chunk_t *c, uint64_t i,
                          const char *what)
{
    int good = bench_touch_check(shoal_chunk_payload(c), cfg->payload, i);
    shoal_chunk_release(c);
    return bench_check_message(ctl, good, what, i);
}

static int ps_round(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    sh_pair_t *p = state;
    shoal_chunk_t *pong = NULL;
    if (ps_send(ctl, p->pub, cfg->payload, i, 0) != 0 || ps_recv(cfg, ctl, p->sub, &pong) != 0)
        return -1;
    return ps_done(cfg, ctl, pong, i, "pong");
}

BENCH_TIMED_RUN_A(ps_run_a, ps_round)

/* Side B: takes ping i and answers with a pong of the same mark. */
static int ps_answer(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    sh_pair_t *p = state;
    /* side A's pong subscriber is created after our publisher: wait for it */
    if (i == 0 && wait_count(ctl, subscribers_of, p->pub, 1, "pong publisher/subscriber") != 0)
        return -1;
    shoal_chunk_t *ping = NULL;
    if (ps_recv(cfg, ctl, p->sub, &ping) != 0)
        return -1;
    uint64_t seq = bench_touch_read(shoal_chunk_payload(ping));
    shoal_chunk_release(ping);
    return ps_send(ctl, p->pub, cfg->payload, seq, 0);
}

BENCH_STEPS_RUN(ps_run_b, ps_answer)

static const bench_ops_t ps_ops = SH_OPS(ps_setup, ps_run_a, ps_run_b);

/* ---- fan-out: 1 publisher, cfg->pairs subscribers ---------------------------------------- */

static int fan_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    sh_pair_t *p = pair_new(ctl, state);
    if (!p)
        return -1;
    char topic[96];
    name_of(cfg, 0, "fan", topic, sizeof topic);
    (void)pair;
    if (side == 'B') {
        SHOAL_TRY(ctl, "shoal_subscriber_create", sub_open(&p->sub, topic, BENCH_FANOUT_QUEUE));
        return 0;
    }
    SHOAL_TRY(ctl, "shoal_publisher_create", pub_open(&p->pub, topic, 1));
    return wait_count(ctl, subscribers_of, p->pub, (uint32_t)cfg->pairs, "fan-out subscribers");
}

static int fan_publish(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    return ps_send(ctl, ((sh_pair_t *)state)->pub, cfg->payload, i, bench_now_ns());
}

BENCH_STEPS_RUN(fan_run_a, fan_publish)

/* Every subscriber takes every message in order; a sample is one delivery,
 * from the publisher's stamp (taken before its loan) to the take. */
static int fan_take(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t n,
                    uint64_t *ns)
{
    shoal_chunk_t *c = NULL;
    if (ps_recv(cfg, ctl, ((sh_pair_t *)state)->sub, &c) != 0)
        return -1;
    *ns = bench_now_ns() - bench_stamp_read(shoal_chunk_payload(c));
    return ps_done(cfg, ctl, c, n, "message");
}

static int fan_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                     uint64_t *samples)
{
    return bench_time_deliveries(cfg, ctl, pair, state, samples, fan_take);
}

static const bench_ops_t fan_ops = SH_OPS(fan_setup, fan_run_a, fan_run_b);

/* ---- many ports in one process ----------------------------------------------------------- */

typedef struct scale_env {
    shoal_runtime_t *rt;
    uint64_t run_id;
    int kinds; /* 1: servers; 2: server then client per service; 4: all four kinds */
    void **ports;
} scale_env_t;

typedef struct scale_arg {
    uint64_t run_id;
    int kinds;
    int count;
} scale_arg_t;

static int scale_open(bench_ctl_t *ctl, const void *argp, void **envp)
{
    const scale_arg_t *a = argp;
    scale_env_t *e = calloc(1, sizeof *e);
    if (e)
        e->ports = calloc((size_t)a->count, sizeof *e->ports);
    if (!e || !e->ports) {
        bench_fail(ctl, "out of memory");
        free(e);
        return -1;
    }
    e->run_id = a->run_id;
    e->kinds = a->kinds;
    *envp = e;
    SHOAL_TRY(ctl, "shoal_runtime_create", runtime_open(&e->rt, g_domain, "scale"));
    return 0;
}

static shoal_port_kind_t scale_kind(const scale_env_t *e, int i)
{
    static const shoal_port_kind_t four[] = {SHOAL_PORT_PUBLISHER, SHOAL_PORT_SUBSCRIBER,
                                             SHOAL_PORT_CLIENT, SHOAL_PORT_SERVER};
    if (e->kinds == 1)
        return SHOAL_PORT_SERVER;
    if (e->kinds == 2)
        return i % 2 ? SHOAL_PORT_CLIENT : SHOAL_PORT_SERVER;
    return four[i % 4];
}

/* Port i: `kinds` ports share a name, topics and services apart. */
static int scale_create(bench_ctl_t *ctl, void *envp, int i)
{
    scale_env_t *e = envp;
    shoal_port_kind_t kind = scale_kind(e, i);
    int topic = kind == SHOAL_PORT_PUBLISHER || kind == SHOAL_PORT_SUBSCRIBER;
    char name[96];
    snprintf(name, sizeof name, "bench.scale%" PRIu64 ".%c%d", e->run_id, topic ? 't' : 's',
             i / e->kinds);
    shoal_result_t r;
    switch (kind) {
    case SHOAL_PORT_PUBLISHER:
        r = shoal_publisher_create((shoal_publisher_t **)&e->ports[i], e->rt, name, NULL);
        break;
    case SHOAL_PORT_SUBSCRIBER:
        r = shoal_subscriber_create((shoal_subscriber_t **)&e->ports[i], e->rt, name, NULL);
        break;
    case SHOAL_PORT_CLIENT:
        r = shoal_client_create((shoal_client_t **)&e->ports[i], e->rt, name, NULL);
        break;
    default:
        r = shoal_server_create((shoal_server_t **)&e->ports[i], e->rt, name, NULL);
        break;
    }
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "port create", r);
        return -1;
    }
    return 0;
}

static void scale_destroy(void *envp, int i)
{
    scale_env_t *e = envp;
    switch (scale_kind(e, i)) {
    case SHOAL_PORT_PUBLISHER: shoal_publisher_destroy(e->ports[i]); break;
    case SHOAL_PORT_SUBSCRIBER: shoal_subscriber_destroy(e->ports[i]); break;
    case SHOAL_PORT_CLIENT: shoal_client_destroy(e->ports[i]); break;
    default: shoal_server_destroy(e->ports[i]); break;
    }
}

static void scale_close(void *envp)
{
    scale_env_t *e = envp;
    if (!e)
        return;
    shoal_runtime_destroy(e->rt);
    free(e->ports);
    free(e);
}

static bench_scale_t scale_of(const bench_opts_t *o, const scale_arg_t *a, const char *create_row,
                              const char *destroy_row, int group)
{
    return (bench_scale_t){
        .suite = "shoal",
        .create_row = create_row,
        .destroy_row = destroy_row,
        .count = a->count,
        .group = group,
        .cpu = o->cpu_a,
        .timeout_s = o->timeout_s,
        .arg = a,
        .open = scale_open,
        .create = scale_create,
        .destroy = scale_destroy,
        .close = scale_close,
    };
}

static void run_scale(const bench_opts_t *o, const scale_arg_t *a, const char *create_row,
                      const char *destroy_row, int group, int pairs_column)
{
    bench_scale_t s = scale_of(o, a, create_row, destroy_row, group);
    s.pairs_column = pairs_column;
    bench_scale_free(&s, bench_scale_run(&s));
}

static void run_create(const bench_opts_t *o, uint64_t run_id)
{
    int count = g_create_count ? atoi(g_create_count) : 512;
    scale_arg_t a = {run_id, 1, count < 1 ? 1 : count};
    run_scale(o, &a, "server_create", "server_destroy", 64, 0);
}

static void run_port_create(const bench_opts_t *o, uint64_t run_id)
{
    scale_arg_t a = {run_id, 4, BENCH_SCALE_PORTS};
    run_scale(o, &a, "port_create", "port_destroy", BENCH_SCALE_PORTS / 4, 0);
}

static void run_service_create(const bench_opts_t *o, uint64_t run_id)
{
    scale_arg_t a = {run_id, 2, 2 * BENCH_SCALE_SERVICES};
    run_scale(o, &a, "service_create", "service_destroy", BENCH_SCALE_SERVICES / 2, BENCH_SCALE_SERVICES);
}

/* ---- bytes per port slot ------------------------------------------------------------------ */

/* The daemon reports the size of its management segment and its limits; a
 * second daemon that differs only in its publisher and client slots gives
 * the bytes of one port slot (its struct, queue cells, held table and
 * history ring) as the difference, exactly: nothing else in the segment
 * depends on those two limits. */
typedef struct domain_sizes {
    shoal_domain_info_t info;
    uint32_t slots;
    uint32_t pools;
    uint64_t pool_digest; /* of every pool's chunk count and size */
} domain_sizes_t;

static int domain_sizes(bench_ctl_t *ctl, const char *domain, domain_sizes_t *out)
{
    shoal_runtime_t *rt = NULL;
    SHOAL_TRY(ctl, "shoal_runtime_create", runtime_open(&rt, domain, "sizes"));
    memset(out, 0, sizeof *out);
    out->info.version = SHOAL_DOMAIN_INFO_VERSION;
    shoal_result_t r = shoal_runtime_domain_info(rt, &out->info);
    out->slots = shoal_runtime_port_slots(rt);
    out->pools = shoal_runtime_pool_count(rt);
    for (uint32_t i = 0; i < out->pools; i++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        if (shoal_runtime_pool_info(rt, i, &pi) == SHOAL_OK)
            out->pool_digest = out->pool_digest * 31u + pi.chunk_count * 7u + pi.chunk_size;
    }
    shoal_runtime_destroy(rt);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_runtime_domain_info", r);
        return -1;
    }
    return 0;
}

static int same_but_senders(const domain_sizes_t *a, const domain_sizes_t *b)
{
    const shoal_domain_info_t *x = &a->info, *y = &b->info;
    return x->processes == y->processes && x->subscribers == y->subscribers &&
           x->servers == y->servers && x->services == y->services &&
           x->chunks_per_port == y->chunks_per_port && x->queue_capacity == y->queue_capacity &&
           x->history == y->history && x->waitsets_per_process == y->waitsets_per_process &&
           a->pools == b->pools && a->pool_digest == b->pool_digest && a->slots != b->slots;
}

/* aux[1..]: management bytes, slots, exact bytes per slot (0: unknown) */
static void memory_measured(bench_ctl_t *ctl, void *envp)
{
    (void)envp;
    uint64_t *aux = bench_scale_aux(ctl);
    domain_sizes_t main_d, ref_d;
    if (domain_sizes(ctl, g_domain, &main_d) != 0)
        return;
    aux[1] = main_d.info.management_bytes;
    aux[2] = main_d.slots;
    if (!g_ref_domain) {
        bench_note(ctl, "no --ref-domain: median is the whole segment per slot;");
        return;
    }
    if (domain_sizes(ctl, g_ref_domain, &ref_d) != 0)
        return;
    if (!same_but_senders(&main_d, &ref_d)) {
        bench_note(ctl, "--ref-domain differs in more than publishers/clients;");
        return;
    }
    int64_t db = (int64_t)ref_d.info.management_bytes - (int64_t)main_d.info.management_bytes;
    int64_t ds = (int64_t)ref_d.slots - (int64_t)main_d.slots;
    aux[3] = (uint64_t)(db / ds);
    bench_note(ctl, "ref_domain_slots=%u;ref_management_bytes=%" PRIu64 ";", ref_d.slots,
               ref_d.info.management_bytes);
}

static void run_memory(const bench_opts_t *o, uint64_t run_id)
{
    scale_arg_t a = {run_id, 4, BENCH_SCALE_PORTS};
    bench_scale_t s = scale_of(o, &a, NULL, NULL, 1);
    s.measured = memory_measured;
    bench_ctl_t *ctl = bench_scale_run(&s);
    if (!ctl)
        return;
    const uint64_t *aux = bench_scale_aux(ctl);
    bench_stats_t ms;
    memset(&ms, 0, sizeof ms);
    double share = aux[2] ? (double)aux[1] / (double)aux[2] : 0;
    double per_slot = aux[3] ? (double)aux[3] : share;
    /* median column = bytes per port slot (not ns): see docs */
    ms.ok = aux[1] != 0;
    ms.median_ns = ms.p99_ns = ms.p999_ns = ms.max_ns = per_slot;
    snprintf(ms.note, sizeof ms.note,
             "%s;management_bytes=%" PRIu64 ";port_slots=%" PRIu64
             ";segment_per_slot_bytes=%.0f;rss_growth_per_port_bytes=%.0f;%s",
             aux[3] ? "exact slot size" : "upper bound", aux[1], aux[2], share,
             (double)aux[0] / a.count, ms.ok ? ctl->note : "error: no domain info");
    char cpus[64];
    bench_print_raw_row("shoal", "port_memory_bytes", "-", 0, a.count, (uint64_t)a.count, &ms,
                        bench_one_cpu_str(o->cpu_a, cpus, sizeof cpus));
    bench_scale_free(&s, ctl);
}

/* ---- a new subscriber and 1,000 publishers ------------------------------------------------ */

typedef struct match_arg {
    uint64_t run_id;
    int reps;
} match_arg_t;

static int all_see(shoal_publisher_t **pubs, int n, uint32_t want)
{
    for (int i = 0; i < n; i++)
        if (shoal_publisher_subscriber_count(pubs[i]) != want)
            return 0;
    return 1;
}

/* Each sample: from the start of shoal_subscriber_create until every
 * publisher counts the subscriber. Then (not timed) every publisher sends
 * one message, which the subscriber must get, and the subscriber goes. */
static int match_child(bench_ctl_t *ctl, const void *argp)
{
    const match_arg_t *a = argp;
    int rc = 1;
    shoal_runtime_t *rt = NULL;
    shoal_publisher_t **pubs = calloc(BENCH_MATCH_PUBLISHERS, sizeof *pubs);
    if (!pubs) {
        bench_fail(ctl, "out of memory");
        return 1;
    }
    shoal_result_t r = runtime_open(&rt, g_domain, "match");
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_runtime_create", r);
        goto out;
    }
    char topic[96];
    snprintf(topic, sizeof topic, "bench.match%" PRIu64, a->run_id);
    for (int i = 0; i < BENCH_MATCH_PUBLISHERS; i++)
        if ((r = shoal_publisher_create(&pubs[i], rt, topic, NULL)) != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_publisher_create", r);
            goto out;
        }
    uint64_t *create_ns = ctl->samples + a->reps;
    for (int rep = 0; rep < a->reps; rep++) {
        shoal_subscriber_t *sub = NULL;
        uint64_t t0 = bench_now_ns();
        if ((r = shoal_subscriber_create(&sub, rt, topic, NULL)) != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_subscriber_create", r);
            goto out;
        }
        create_ns[rep] = bench_now_ns() - t0;
        while (!all_see(pubs, BENCH_MATCH_PUBLISHERS, 1))
            if (bench_stopping(ctl) || bench_now_ns() - t0 > 10ull * 1000000000ull) {
                bench_fail(ctl, "publishers did not see the subscriber within 10 s");
                shoal_subscriber_destroy(sub);
                goto out;
            }
        ctl->samples[rep] = bench_now_ns() - t0;
        for (int i = 0; i < BENCH_MATCH_PUBLISHERS; i++) {
            shoal_chunk_t *c = NULL;
            int good = ps_send(ctl, pubs[i], 64, (uint64_t)i, 0) == 0 &&
                       shoal_subscriber_take(sub, &c, SHOAL_TIMEOUT_POLL) == SHOAL_OK &&
                       bench_touch_check(shoal_chunk_payload(c), 64, (uint64_t)i);
            shoal_chunk_release(c);
            if (!good) {
                bench_fail(ctl, "publisher %d did not reach the new subscriber", i);
                shoal_subscriber_destroy(sub);
                goto out;
            }
        }
        shoal_subscriber_destroy(sub);
        while (!all_see(pubs, BENCH_MATCH_PUBLISHERS, 0))
            usleep(100);
        atomic_store(&ctl->progress, (uint64_t)rep + 1);
    }
    rc = 0;
out:
    for (int i = 0; i < BENCH_MATCH_PUBLISHERS; i++)
        shoal_publisher_destroy(pubs[i]);
    free(pubs);
    shoal_runtime_destroy(rt);
    return rc;
}

static void run_match(const bench_opts_t *o, uint64_t run_id)
{
    match_arg_t a = {run_id, (int)(o->iters / 100 < 10 ? 10 : o->iters / 100)};
    bench_ctl_t *ctl = NULL;
    size_t nsamp = 2 * (size_t)a.reps;
    int rc = bench_run_in_child(match_child, &a, nsamp, o->timeout_s, &ctl);
    if (!ctl || rc != 0) {
        bench_print_error_row("shoal", "sub_match", "-", BENCH_MATCH_PUBLISHERS,
                              "%s (after %" PRIu64 " of %d)", ctl ? ctl->err : "no control block",
                              ctl ? atomic_load(&ctl->progress) : 0, a.reps);
        bench_ctl_free(ctl, nsamp);
        return;
    }
    bench_stats_t st, cs;
    memset(&st, 0, sizeof st);
    memset(&cs, 0, sizeof cs);
    double sum = 0;
    for (int i = 0; i < a.reps; i++)
        sum += (double)ctl->samples[i];
    bench_compute(ctl->samples, (uint64_t)a.reps, 1.0, &st);
    bench_compute(ctl->samples + a.reps, (uint64_t)a.reps, 1.0, &cs);
    st.throughput_per_s = sum > 0 ? a.reps / (sum / 1e9) : 0;
    snprintf(st.note, sizeof st.note,
             "publishers=%d;create_call_median_us=%.1f;then every publisher counts it",
             BENCH_MATCH_PUBLISHERS, cs.median_ns / 1e3);
    char cpus[64];
    bench_print_raw_row("shoal", "sub_match", "-", 0, BENCH_MATCH_PUBLISHERS, (uint64_t)a.reps, &st,
                        bench_one_cpu_str(o->cpu_a, cpus, sizeof cpus));
    bench_ctl_free(ctl, nsamp);
}

/* ---- is the daemon there? ----------------------------------------------------------------- */

static int probe_child(bench_ctl_t *ctl, const void *arg)
{
    (void)arg;
    shoal_runtime_t *rt = NULL;
    shoal_result_t r = runtime_open(&rt, g_domain, "probe");
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_runtime_create", r);
        return 1;
    }
    bench_note(ctl, "shoal %s abi %u domain %s", shoal_version(), shoal_abi_version(),
               shoal_runtime_domain(rt));
    shoal_runtime_destroy(rt);
    return 0;
}

static const bench_pattern_t patterns[] = {
    BENCH_IPC_PATTERNS(&rr_ops, &ps_ops, run_create, &fan_ops, &rrk_ops, &svc_ops, run_port_create,
                       run_service_create, run_match, run_memory),
};

static const bench_extra_opt_t extra[] = {
    {"--domain", &g_domain},
    {"--ref-domain", &g_ref_domain},
    {"--create-count", &g_create_count},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    const bench_suite_t suite = {
        .name = "shoal",
        .usage = "  --domain NAME      shoald domain (default $SHOAL_DOMAIN, else default)\n"
                 "  --ref-domain NAME  a shoald whose config differs only in more publisher or\n"
                 "                     client slots: port_memory_bytes is then exact\n"
                 "  --create-count N   servers for the create pattern (default 512)\n"
                 "  shoald must be running on the domain (bench/run.sh starts it).\n",
        .defaults = BENCH_DEFAULTS(20000, 2000, "rr,pubsub,create", 3),
        BENCH_PATTERNS(patterns),
        .extra = extra,
        .probe = probe_child,
        .probe_timeout_s = 15.0,
    };
    return bench_main(&suite, argc, argv);
}
