/* Issue 3: request/response across processes and threads. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

enum { MAX_SERVERS = 8, MAX_CLIENTS = 8, MAX_REQUESTS = 400 };

typedef struct msg {
    uint32_t client;
    uint32_t server;
    uint64_t index;
    uint64_t seq; /* the sequence id the server saw */
    uint64_t magic;
} msg_t;

#define MSG_MAGIC 0x5348304c5348304cull

/* Shared (MAP_SHARED) between the test and its children. */
typedef struct shared {
    atomic_int stop;
    atomic_int servers_ready;
    atomic_uint_fast64_t served[MAX_SERVERS];
    atomic_uint answered[MAX_CLIENTS][MAX_REQUESTS];
    atomic_int failures;
} shared_t;

typedef struct server_ctx {
    th_daemon_t *d;
    shoal_runtime_t *rt; /* NULL: make one (process) */
    shared_t *sh;
    const char *service;
    uint32_t id;
    int die_after_take;   /* take one request, then SIGKILL self */
    th_chan_t *notify;    /* optional: a byte per request taken */
    int rc;
} server_ctx_t;

static int serve(server_ctx_t *x)
{
    shoal_runtime_t *rt = x->rt;
    if (!rt)
        WCHECK_OK(th_runtime_create(x->d, "server", &rt));
    shoal_server_t *sv = NULL;
    WCHECK_OK(shoal_server_create(&sv, rt, x->service, NULL));
    atomic_fetch_add(&x->sh->servers_ready, 1);
    while (!atomic_load(&x->sh->stop)) {
        shoal_chunk_t *req = NULL;
        shoal_result_t r = shoal_server_take(sv, &req, 20 * TH_MS);
        if (r == SHOAL_ERR_TIMEOUT)
            continue;
        WCHECK_OK(r);
        if (x->notify)
            th_chan_send(x->notify, 'q');
        if (x->die_after_take) {
            th_sleep_ms(200);
            raise(SIGKILL);
        }
        WCHECK(shoal_chunk_size(req) == sizeof(msg_t));
        msg_t m;
        memcpy(&m, shoal_chunk_payload(req), sizeof m);
        WCHECK(m.magic == MSG_MAGIC);
        WCHECK(m.client < MAX_CLIENTS && m.index < MAX_REQUESTS);
        atomic_fetch_add(&x->sh->answered[m.client][m.index], 1);
        m.server = x->id;
        m.seq = shoal_chunk_sequence_id(req);
        shoal_chunk_t *resp = NULL;
        r = shoal_server_loan_response(sv, req, sizeof m, &resp);
        if (r == SHOAL_ERR_CLIENT_GONE) {
            WCHECK_OK(shoal_chunk_release(req));
            continue;
        }
        WCHECK_OK(r);
        WCHECK(shoal_chunk_sequence_id(resp) == m.seq);
        memcpy(shoal_chunk_payload(resp), &m, sizeof m);
        r = shoal_server_send(sv, resp);
        WCHECK(r == SHOAL_OK || r == SHOAL_ERR_CLIENT_GONE);
        WCHECK_OK(shoal_chunk_release(req));
        atomic_fetch_add(&x->sh->served[x->id], 1);
    }
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    WCHECK(th_find_port(rt, SHOAL_PORT_SERVER, getpid(), x->service, &pi) == 0);
    shoal_server_destroy(sv);
    if (!x->rt)
        shoal_runtime_destroy(rt);
    return 0;
}

static int server_process(void *arg)
{
    return serve(arg);
}

static void *server_thread(void *arg)
{
    server_ctx_t *x = arg;
    x->rc = serve(x);
    if (x->rc)
        atomic_fetch_add(&x->sh->failures, 1);
    return NULL;
}

static int wait_servers(const shoal_client_t *cl, uint32_t n, int timeout_ms)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    while (shoal_client_server_count(cl) < n) {
        if (th_now_ns() > deadline)
            return -1;
        th_sleep_ms(2);
    }
    return 0;
}

typedef struct client_ctx {
    th_daemon_t *d;
    shoal_runtime_t *rt;
    shared_t *sh;
    const char *service;
    uint32_t id;
    uint32_t requests;
    uint32_t servers;
    int rc;
} client_ctx_t;

/* `requests` calls, each checked for the matching response. */
static int client_calls(client_ctx_t *x)
{
    shoal_runtime_t *rt = x->rt;
    if (!rt)
        WCHECK_OK(th_runtime_create(x->d, "client", &rt));
    shoal_client_t *cl = NULL;
    WCHECK_OK(shoal_client_create(&cl, rt, x->service, NULL));
    WCHECK(wait_servers(cl, x->servers, 5000) == 0);
    for (uint32_t i = 0; i < x->requests; i++) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        WCHECK_OK(shoal_client_loan(cl, sizeof(msg_t), &req));
        msg_t m = { x->id, 0, i, 0, MSG_MAGIC };
        memcpy(shoal_chunk_payload(req), &m, sizeof m);
        WCHECK_OK(shoal_client_call(cl, req, &resp, 5 * TH_SEC));
        msg_t got;
        WCHECK(shoal_chunk_size(resp) == sizeof got);
        memcpy(&got, shoal_chunk_payload(resp), sizeof got);
        WCHECK(got.magic == MSG_MAGIC);
        WCHECK(got.client == x->id);
        WCHECK(got.index == i);
        WCHECK(got.seq == shoal_chunk_sequence_id(resp));
        WCHECK(got.server < x->servers);
        WCHECK_OK(shoal_chunk_release(resp));
    }
    /* no second response to anything */
    shoal_chunk_t *extra = NULL;
    WCHECK_RC(shoal_client_take(cl, &extra, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    WCHECK(th_find_port(rt, SHOAL_PORT_CLIENT, getpid(), x->service, &pi) == 0);
    WCHECK(pi.held == 0);
    WCHECK(pi.stale == 0);
    shoal_client_destroy(cl);
    if (!x->rt)
        shoal_runtime_destroy(rt);
    return 0;
}

static int client_process(void *arg)
{
    return client_calls(arg);
}

static void *client_thread(void *arg)
{
    client_ctx_t *x = arg;
    x->rc = client_calls(x);
    return NULL;
}

static shared_t *new_shared(void)
{
    shared_t *sh = th_shared_alloc(sizeof *sh);
    assert_non_null(sh);
    return sh;
}

static void check_exactly_once(shared_t *sh, uint32_t clients, uint32_t requests,
                               uint32_t servers)
{
    uint64_t total = 0;
    for (uint32_t s = 0; s < servers; s++) {
        uint64_t n = atomic_load(&sh->served[s]);
        if (n == 0)
            print_error("server %u got no request\n", s);
        assert_true(n > 0);
        total += n;
    }
    assert_int_equal(total, (uint64_t)clients * requests);
    for (uint32_t c = 0; c < clients; c++)
        for (uint32_t i = 0; i < requests; i++) {
            unsigned a = atomic_load(&sh->answered[c][i]);
            if (a != 1)
                print_error("request %u of client %u answered %u times\n", i, c, a);
            assert_int_equal(a, 1);
        }
}

/* ---- tests ------------------------------------------------------------------- */

static void test_roundtrip_across_processes(void **state)
{
    th_fixture_t *fx = *state;
    shared_t *sh = new_shared();
    server_ctx_t sctx = { &fx->daemon, NULL, sh, "echo", 0, 0, NULL, 0 };
    pid_t spid = th_spawn(server_process, &sctx);
    assert_true(spid > 0);

    shoal_runtime_t *rt = th_runtime(&fx->daemon, "rr-client");
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "echo", NULL));
    assert_int_equal(wait_servers(cl, 1, 5000), 0);
    assert_int_equal(shoal_client_server_count(cl), 1);

    /* send + take, checking sequence ids increase and are echoed */
    uint64_t prev = 0;
    for (uint32_t i = 0; i < 50; i++) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
        msg_t m = { 0, 0, i, 0, MSG_MAGIC };
        memcpy(shoal_chunk_payload(req), &m, sizeof m);
        uint64_t seq = 0;
        assert_ok(shoal_client_send(cl, req, &seq));
        assert_true(seq > prev);
        prev = seq;
        assert_ok(shoal_client_take(cl, &resp, 5 * TH_SEC));
        assert_int_equal(shoal_chunk_sequence_id(resp), seq);
        msg_t got;
        memcpy(&got, shoal_chunk_payload(resp), sizeof got);
        assert_int_equal(got.seq, seq); /* the server saw the same id */
        assert_int_equal(got.index, i);
        assert_ok(shoal_chunk_release(resp));
    }
    /* several in flight, answered in order */
    uint64_t seqs[5];
    for (uint32_t i = 0; i < 5; i++) {
        shoal_chunk_t *req = NULL;
        assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
        msg_t m = { 0, 0, 100 + i, 0, MSG_MAGIC };
        memcpy(shoal_chunk_payload(req), &m, sizeof m);
        assert_ok(shoal_client_send(cl, req, &seqs[i]));
        if (i)
            assert_true(seqs[i] > seqs[i - 1]);
    }
    for (uint32_t i = 0; i < 5; i++) {
        shoal_chunk_t *resp = NULL;
        assert_ok(shoal_client_take(cl, &resp, 5 * TH_SEC));
        assert_int_equal(shoal_chunk_sequence_id(resp), seqs[i]);
        assert_ok(shoal_chunk_release(resp));
    }
    /* the call helper */
    for (uint32_t i = 0; i < 50; i++) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
        msg_t m = { 0, 0, 200 + i, 0, MSG_MAGIC };
        memcpy(shoal_chunk_payload(req), &m, sizeof m);
        assert_ok(shoal_client_call(cl, req, &resp, 5 * TH_SEC));
        msg_t got;
        memcpy(&got, shoal_chunk_payload(resp), sizeof got);
        assert_int_equal(got.index, 200 + i);
        assert_true(shoal_chunk_sequence_id(resp) > prev);
        assert_ok(shoal_chunk_release(resp));
    }
    atomic_store(&sh->stop, 1);
    assert_int_equal(th_join(spid, 5000), 0);
    assert_int_equal(atomic_load(&sh->served[0]), 105);
    shoal_client_destroy(cl);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
    th_shared_free(sh, sizeof *sh);
}

static void test_n_clients_n_servers_processes(void **state)
{
    th_fixture_t *fx = *state;
    enum { NS = 4, NC = 4, REQ = 200 };
    shared_t *sh = new_shared();
    server_ctx_t sctx[NS];
    client_ctx_t cctx[NC];
    pid_t spids[NS], cpids[NC];
    for (uint32_t s = 0; s < NS; s++) {
        sctx[s] = (server_ctx_t){ &fx->daemon, NULL, sh, "nxn", s, 0, NULL, 0 };
        spids[s] = th_spawn(server_process, &sctx[s]);
        assert_true(spids[s] > 0);
    }
    for (uint32_t c = 0; c < NC; c++) {
        cctx[c] = (client_ctx_t){ &fx->daemon, NULL, sh, "nxn", c, REQ, NS, 0 };
        cpids[c] = th_spawn(client_process, &cctx[c]);
        assert_true(cpids[c] > 0);
    }
    for (uint32_t c = 0; c < NC; c++)
        assert_int_equal(th_join(cpids[c], 60000), 0);
    atomic_store(&sh->stop, 1);
    for (uint32_t s = 0; s < NS; s++)
        assert_int_equal(th_join(spids[s], 5000), 0);
    check_exactly_once(sh, NC, REQ, NS);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "check");
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    assert_int_equal(th_port_count(rt, 0, 0, NULL), 0);
    shoal_runtime_destroy(rt);
    th_shared_free(sh, sizeof *sh);
}

static void test_n_clients_n_servers_threads(void **state)
{
    th_fixture_t *fx = *state;
    enum { NS = 4, NC = 4, REQ = 200 };
    shared_t *sh = new_shared();
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "threads");
    server_ctx_t sctx[NS];
    client_ctx_t cctx[NC];
    pthread_t sth[NS], cth[NC];
    for (uint32_t s = 0; s < NS; s++) {
        sctx[s] = (server_ctx_t){ &fx->daemon, rt, sh, "nxn-threads", s, 0, NULL, 0 };
        assert_int_equal(pthread_create(&sth[s], NULL, server_thread, &sctx[s]), 0);
    }
    for (uint32_t c = 0; c < NC; c++) {
        cctx[c] = (client_ctx_t){ &fx->daemon, rt, sh, "nxn-threads", c, REQ, NS, -1 };
        assert_int_equal(pthread_create(&cth[c], NULL, client_thread, &cctx[c]), 0);
    }
    for (uint32_t c = 0; c < NC; c++) {
        pthread_join(cth[c], NULL);
        assert_int_equal(cctx[c].rc, 0);
    }
    atomic_store(&sh->stop, 1);
    for (uint32_t s = 0; s < NS; s++) {
        pthread_join(sth[s], NULL);
        assert_int_equal(sctx[s].rc, 0);
    }
    check_exactly_once(sh, NC, REQ, NS);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
    th_shared_free(sh, sizeof *sh);
}

static void test_server_killed(void **state)
{
    th_fixture_t *fx = *state;
    shared_t *sh = new_shared();
    server_ctx_t sctx = { &fx->daemon, NULL, sh, "doomed", 0, 1, NULL, 0 };
    pid_t spid = th_spawn(server_process, &sctx);
    assert_true(spid > 0);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "survivor");
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "doomed", NULL));
    assert_int_equal(wait_servers(cl, 1, 5000), 0);

    /* The server takes the request and dies 200 ms later: the call returns
     * an error well before its 5 s timeout. */
    shoal_chunk_t *req = NULL, *resp = NULL;
    assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
    msg_t m = { 0, 0, 0, 0, MSG_MAGIC };
    memcpy(shoal_chunk_payload(req), &m, sizeof m);
    int64_t t0 = th_now_ns();
    shoal_result_t r = shoal_client_call(cl, req, &resp, 5 * TH_SEC);
    int64_t el = th_now_ns() - t0;
    if (r != SHOAL_ERR_SERVER_GONE && r != SHOAL_ERR_NO_SERVER)
        print_error("call returned %s after %lld ms (%s)\n", shoal_strerror(r),
                    (long long)(el / TH_MS), shoal_last_error_message());
    assert_true(r == SHOAL_ERR_SERVER_GONE || r == SHOAL_ERR_NO_SERVER);
    assert_true(el < 3 * TH_SEC);
    assert_true(strlen(shoal_last_error_message()) > 0);
    assert_int_equal(th_join(spid, 5000), 128 + SIGKILL);

    /* Nothing leaked: the request the dead server held is back. */
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    assert_int_equal(th_wait_port_count(rt, SHOAL_PORT_SERVER, 0, "doomed", 0, 2000), 0);
    assert_int_equal(shoal_client_server_count(cl), 0);

    /* With no server at all, send fails at once and consumes the chunk. */
    assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
    assert_rc(shoal_client_send(cl, req, NULL), SHOAL_ERR_NO_SERVER);
    assert_contains(shoal_last_error_message(), "doomed");
    assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
    t0 = th_now_ns();
    assert_rc(shoal_client_call(cl, req, &resp, 5 * TH_SEC), SHOAL_ERR_NO_SERVER);
    assert_true(th_now_ns() - t0 < TH_SEC);
    assert_int_equal(th_pools_in_use(rt), 0);

    /* A blocked take on a client whose only server dies also wakes up. */
    atomic_store(&sh->stop, 0);
    sctx.die_after_take = 1;
    spid = th_spawn(server_process, &sctx);
    assert_int_equal(wait_servers(cl, 1, 5000), 0);
    assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
    memcpy(shoal_chunk_payload(req), &m, sizeof m);
    assert_ok(shoal_client_send(cl, req, NULL));
    t0 = th_now_ns();
    r = shoal_client_take(cl, &resp, 5 * TH_SEC);
    el = th_now_ns() - t0;
    assert_true(r == SHOAL_ERR_SERVER_GONE || r == SHOAL_ERR_NO_SERVER);
    assert_true(el < 3 * TH_SEC);
    assert_int_equal(th_join(spid, 5000), 128 + SIGKILL);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);

    shoal_client_destroy(cl);
    shoal_runtime_destroy(rt);
    th_shared_free(sh, sizeof *sh);
}

typedef struct doomed_client_ctx {
    th_daemon_t *d;
    th_chan_t sent;
    th_chan_t die;
} doomed_client_ctx_t;

static int doomed_client(void *arg)
{
    doomed_client_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "doomed-client", &rt));
    shoal_client_t *cl = NULL;
    WCHECK_OK(shoal_client_create(&cl, rt, "orphan", NULL));
    WCHECK(wait_servers(cl, 1, 5000) == 0);
    shoal_chunk_t *req = NULL;
    WCHECK_OK(shoal_client_loan(cl, sizeof(msg_t), &req));
    msg_t m = { 0, 0, 0, 0, MSG_MAGIC };
    memcpy(shoal_chunk_payload(req), &m, sizeof m);
    WCHECK_OK(shoal_client_send(cl, req, NULL));
    th_chan_send(&x->sent, 's');
    th_chan_recv(&x->die, 10000);
    raise(SIGKILL);
    return 99;
}

static void test_client_gone(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "orphan-server");
    shoal_server_t *sv = NULL;
    assert_ok(shoal_server_create(&sv, rt, "orphan", NULL));

    for (int variant = 0; variant < 2; variant++) {
        doomed_client_ctx_t ctx;
        ctx.d = &fx->daemon;
        th_chan_open(&ctx.sent);
        th_chan_open(&ctx.die);
        pid_t pid = th_spawn(doomed_client, &ctx);
        assert_int_equal(th_chan_recv(&ctx.sent, 10000), 's');
        shoal_chunk_t *req = NULL, *resp = NULL;
        assert_ok(shoal_server_take(sv, &req, 5 * TH_SEC));
        if (variant == 1) {
            /* loan the response while the client lives, then it dies */
            assert_ok(shoal_server_loan_response(sv, req, sizeof(msg_t), &resp));
        }
        th_chan_send(&ctx.die, 'k');
        assert_int_equal(th_join(pid, 5000), 128 + SIGKILL);
        assert_int_equal(th_wait_port_count(rt, SHOAL_PORT_CLIENT, pid, NULL, 0, 2000), 0);
        if (variant == 0) {
            shoal_result_t r = shoal_server_loan_response(sv, req, sizeof(msg_t), &resp);
            if (r == SHOAL_OK)
                assert_rc(shoal_server_send(sv, resp), SHOAL_ERR_CLIENT_GONE);
            else
                assert_int_equal(r, SHOAL_ERR_CLIENT_GONE);
        } else {
            assert_rc(shoal_server_send(sv, resp), SHOAL_ERR_CLIENT_GONE);
        }
        assert_true(strlen(shoal_last_error_message()) > 0);
        assert_ok(shoal_chunk_release(req));
        assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        assert_int_equal(th_find_port(rt, SHOAL_PORT_SERVER, getpid(), "orphan", &pi), 0);
        assert_int_equal(pi.held, 0);
        th_chan_close(&ctx.sent);
        th_chan_close(&ctx.die);
    }
    shoal_server_destroy(sv);
    shoal_runtime_destroy(rt);
}

static void test_call_releases_stale(void **state)
{
    th_fixture_t *fx = *state;
    shared_t *sh = new_shared();
    server_ctx_t sctx = { &fx->daemon, NULL, sh, "stale", 0, 0, NULL, 0 };
    pid_t spid = th_spawn(server_process, &sctx);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "stale-client");
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "stale", NULL));
    assert_int_equal(wait_servers(cl, 1, 5000), 0);

    uint64_t total_stale = 0;
    for (int round = 0; round < 3; round++) {
        uint64_t last = 0;
        for (uint32_t i = 0; i < 3; i++) {
            shoal_chunk_t *req = NULL;
            assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
            msg_t m = { 0, 0, (uint64_t)round * 10 + i, 0, MSG_MAGIC };
            memcpy(shoal_chunk_payload(req), &m, sizeof m);
            assert_ok(shoal_client_send(cl, req, &last));
        }
        /* wait until the three responses are queued */
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        int64_t deadline = th_now_ns() + 5 * TH_SEC;
        do {
            assert_int_equal(th_find_port(rt, SHOAL_PORT_CLIENT, getpid(), "stale", &pi), 0);
            if (pi.queued >= 3)
                break;
            th_sleep_ms(2);
        } while (th_now_ns() < deadline);
        assert_int_equal(pi.queued, 3);
        shoal_chunk_t *req = NULL, *resp = NULL;
        assert_ok(shoal_client_loan(cl, sizeof(msg_t), &req));
        msg_t m = { 0, 0, (uint64_t)round * 10 + 5, 0, MSG_MAGIC };
        memcpy(shoal_chunk_payload(req), &m, sizeof m);
        assert_ok(shoal_client_call(cl, req, &resp, 5 * TH_SEC));
        assert_true(shoal_chunk_sequence_id(resp) > last);
        msg_t got;
        memcpy(&got, shoal_chunk_payload(resp), sizeof got);
        assert_int_equal(got.index, (uint64_t)round * 10 + 5);
        assert_ok(shoal_chunk_release(resp));
        total_stale += 3;
        assert_int_equal(th_find_port(rt, SHOAL_PORT_CLIENT, getpid(), "stale", &pi), 0);
        assert_int_equal(pi.stale, total_stale);
        assert_int_equal(pi.held, 0);
        assert_int_equal(pi.queued, 0);
        assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    }
    atomic_store(&sh->stop, 1);
    assert_int_equal(th_join(spid, 5000), 0);
    shoal_client_destroy(cl);
    shoal_runtime_destroy(rt);
    th_shared_free(sh, sizeof *sh);
}

static void test_call_timeout(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "call-timeout");
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_server_create(&sv, rt, "slow", NULL));
    assert_ok(shoal_client_create(&cl, rt, "slow", NULL));
    assert_int_equal(wait_servers(cl, 1, 5000), 0);
    shoal_chunk_t *req = NULL, *resp = NULL;
    assert_ok(shoal_client_loan(cl, 16, &req));
    int64_t t0 = th_now_ns();
    assert_rc(shoal_client_call(cl, req, &resp, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    int64_t el = th_now_ns() - t0;
    assert_true(el >= 50 * TH_MS);
    assert_true(el < TH_SEC);
    /* the late response is stale for the next call */
    shoal_chunk_t *sreq = NULL;
    assert_ok(shoal_server_take(sv, &sreq, SHOAL_TIMEOUT_POLL));
    assert_ok(shoal_server_loan_response(sv, sreq, 16, &resp));
    assert_ok(shoal_server_send(sv, resp));
    assert_ok(shoal_chunk_release(sreq));
    assert_ok(shoal_client_loan(cl, 16, &req));
    assert_rc(shoal_client_call(cl, req, &resp, 20 * TH_MS), SHOAL_ERR_TIMEOUT);
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_CLIENT, getpid(), "slow", &pi), 0);
    assert_int_equal(pi.stale, 1);
    assert_ok(shoal_server_take(sv, &sreq, SHOAL_TIMEOUT_POLL));
    assert_ok(shoal_chunk_release(sreq));
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    shoal_runtime_destroy(rt);
}

static void test_wrong_port_and_bad_args(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "args");
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL, *cl2 = NULL;
    assert_ok(shoal_server_create(&sv, rt, "args", NULL));
    assert_ok(shoal_client_create(&cl, rt, "args", NULL));
    assert_ok(shoal_client_create(&cl2, rt, "args", NULL));
    shoal_client_t *bad = NULL;
    assert_rc(shoal_client_create(&bad, rt, "", NULL), SHOAL_ERR_INVALID_ARGUMENT);
    assert_rc(shoal_client_create(&bad, NULL, "x", NULL), SHOAL_ERR_INVALID_ARGUMENT);
    assert_null(bad);
    shoal_chunk_t *req = NULL;
    assert_ok(shoal_client_loan(cl, 16, &req));
    /* a chunk loaned by cl sent through cl2 */
    assert_rc(shoal_client_send(cl2, req, NULL), SHOAL_ERR_WRONG_PORT);
    assert_int_equal(th_wait_in_use(rt, 0, 1000), 0); /* consumed */
    assert_rc(shoal_client_send(cl, NULL, NULL), SHOAL_ERR_INVALID_ARGUMENT);
    shoal_chunk_t *out = NULL;
    assert_rc(shoal_server_take(NULL, &out, 0), SHOAL_ERR_INVALID_ARGUMENT);
    shoal_client_destroy(cl);
    shoal_client_destroy(cl2);
    shoal_server_destroy(sv);
    shoal_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_roundtrip_across_processes),
        TH_TEST(test_n_clients_n_servers_processes),
        TH_TEST(test_n_clients_n_servers_threads),
        TH_TEST(test_server_killed),
        TH_TEST(test_client_gone),
        TH_TEST(test_call_releases_stale),
        TH_TEST(test_call_timeout),
        TH_TEST(test_wrong_port_and_bad_args),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
