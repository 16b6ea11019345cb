/* Issue 3: port limits, slot churn, held-chunk limit, the seed's leak,
 * large chunks. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <unistd.h>

/* ---- an echo server in a child process ------------------------------------ */

typedef struct echo_ctx {
    th_daemon_t *d;
    const char *service;
    atomic_int *stop; /* shared memory */
    int verify_large; /* check first/last byte, answer with a same-size chunk */
} echo_ctx_t;

static int echo_server(void *arg)
{
    echo_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "echo", &rt));
    shoal_server_t *sv = NULL;
    WCHECK_OK(shoal_server_create(&sv, rt, x->service, NULL));
    while (!atomic_load(x->stop)) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        shoal_result_t r = shoal_server_take(sv, &req, 20 * TH_MS);
        if (r == SHOAL_ERR_TIMEOUT)
            continue;
        WCHECK_OK(r);
        uint64_t size = shoal_chunk_size(req);
        const unsigned char *in = shoal_chunk_payload(req);
        if (x->verify_large) {
            WCHECK(in[0] == 0xA1);
            WCHECK(in[size - 1] == 0xB2);
        }
        WCHECK_OK(shoal_server_loan_response(sv, req, size, &resp));
        unsigned char *out = shoal_chunk_payload(resp);
        if (x->verify_large) {
            out[0] = 0xC3;
            out[size - 1] = 0xD4;
        } else {
            memcpy(out, in, size);
        }
        WCHECK_OK(shoal_server_send(sv, resp));
        WCHECK_OK(shoal_chunk_release(req));
    }
    shoal_server_destroy(sv);
    shoal_runtime_destroy(rt);
    return 0;
}

typedef struct echo_proc {
    echo_ctx_t ctx;
    atomic_int *stop;
    pid_t pid;
} echo_proc_t;

static void echo_start(echo_proc_t *e, th_daemon_t *d, const char *service, int verify_large)
{
    e->stop = th_shared_alloc(sizeof *e->stop);
    assert_non_null(e->stop);
    e->ctx = (echo_ctx_t){ d, service, e->stop, verify_large };
    e->pid = th_spawn(echo_server, &e->ctx);
    assert_true(e->pid > 0);
}

static void echo_stop(echo_proc_t *e)
{
    atomic_store(e->stop, 1);
    assert_int_equal(th_join(e->pid, 5000), 0);
    th_shared_free(e->stop, sizeof *e->stop);
}

static void wait_servers(shoal_client_t *cl, uint32_t n)
{
    int64_t deadline = th_now_ns() + 5 * TH_SEC;
    while (shoal_client_server_count(cl) < n && th_now_ns() < deadline)
        th_sleep_ms(2);
    assert_true(shoal_client_server_count(cl) >= n);
}

/* ---- port limits ------------------------------------------------------------- */

static const char *const LIMIT8_CONFIG =
    "[limits]\n"
    "servers = 8\n"
    "publishers = 4\n"
    "[pools]\n"
    "64 = 64\n";

typedef struct holder_ctx {
    th_daemon_t *d;
    th_chan_t ready;
    th_chan_t done;
} holder_ctx_t;

static int slot_holder(void *arg)
{
    holder_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "slot-holder", &rt));
    shoal_server_t *sv[3];
    for (int i = 0; i < 3; i++)
        WCHECK_OK(shoal_server_create(&sv[i], rt, "held", NULL));
    th_chan_send(&x->ready, 'r');
    th_chan_recv(&x->done, 20000);
    raise(SIGKILL); /* slots come back through crash cleanup */
    return 99;
}

static void test_port_limit_servers(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "limiter");
    holder_ctx_t h = { &fx->daemon, { -1, -1 }, { -1, -1 } };
    th_chan_open(&h.ready);
    th_chan_open(&h.done);
    pid_t pid = th_spawn(slot_holder, &h);
    assert_int_equal(th_chan_recv(&h.ready, 5000), 'r');

    shoal_server_t *sv[8] = { 0 };
    for (int i = 0; i < 5; i++) {
        char name[32];
        snprintf(name, sizeof name, "svc%d", i);
        assert_ok(shoal_server_create(&sv[i], rt, name, NULL));
    }
    shoal_server_t *extra = NULL;
    assert_rc(shoal_server_create(&extra, rt, "one-too-many", NULL), SHOAL_ERR_PORT_LIMIT);
    const char *msg = shoal_last_error_message();
    assert_contains(msg, "limits.servers");
    assert_contains(msg, "8");
    assert_contains(msg, fx->daemon.config_path); /* where to raise it */
    assert_contains(msg, "limiter");              /* who holds the slots */
    assert_contains(msg, "slot-holder");
    assert_null(extra);

    /* other kinds are not affected */
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "svc0", NULL));
    shoal_client_destroy(cl);

    /* destroying one frees its slot */
    shoal_server_destroy(sv[4]);
    assert_ok(shoal_server_create(&sv[4], rt, "svc4", NULL));
    assert_rc(shoal_server_create(&extra, rt, "again", NULL), SHOAL_ERR_PORT_LIMIT);

    /* the holder dies: its 3 slots come back */
    th_chan_send(&h.done, 'x');
    assert_int_equal(th_join(pid, 5000), 128 + SIGKILL);
    assert_int_equal(th_wait_port_count(rt, SHOAL_PORT_SERVER, pid, NULL, 0, 2000), 0);
    for (int i = 5; i < 8; i++)
        assert_ok(shoal_server_create(&sv[i], rt, "after", NULL));
    assert_rc(shoal_server_create(&extra, rt, "full", NULL), SHOAL_ERR_PORT_LIMIT);
    for (int i = 0; i < 8; i++)
        shoal_server_destroy(sv[i]);
    assert_int_equal(th_port_count(rt, SHOAL_PORT_SERVER, 0, NULL), 0);

    /* publishers have their own limit and key */
    shoal_publisher_t *pubs[4];
    for (int i = 0; i < 4; i++)
        assert_ok(shoal_publisher_create(&pubs[i], rt, "p", NULL));
    shoal_publisher_t *p5 = NULL;
    assert_rc(shoal_publisher_create(&p5, rt, "p", NULL), SHOAL_ERR_PORT_LIMIT);
    assert_contains(shoal_last_error_message(), "limits.publishers");
    assert_contains(shoal_last_error_message(), "4");
    for (int i = 0; i < 4; i++)
        shoal_publisher_destroy(pubs[i]);

    th_chan_close(&h.ready);
    th_chan_close(&h.done);
    shoal_runtime_destroy(rt);
}

/* 512 servers (limits.servers = 512 in the default test config) created and
 * destroyed by 16 threads at once, 5 times; every round must get all 512
 * slots, so a single leaked slot fails the next round. */
enum { CHURN_THREADS = 16, CHURN_PER_THREAD = 32, CHURN_ROUNDS = 5 };

typedef struct churn_ctx {
    shoal_runtime_t *rt;
    pthread_barrier_t *barrier;
    atomic_uint *live;
    int id;
    int rc;
} churn_ctx_t;

static int churn_body(churn_ctx_t *x)
{
    shoal_server_t *sv[CHURN_PER_THREAD];
    for (int round = 0; round < CHURN_ROUNDS; round++) {
        pthread_barrier_wait(x->barrier);
        for (int i = 0; i < CHURN_PER_THREAD; i++) {
            char name[48];
            snprintf(name, sizeof name, "churn-%d-%d", x->id, i % 4);
            WCHECK_OK(shoal_server_create(&sv[i], x->rt, name, NULL));
            atomic_fetch_add(x->live, 1);
        }
        pthread_barrier_wait(x->barrier); /* all 512 live here */
        pthread_barrier_wait(x->barrier); /* the main thread counted */
        for (int i = 0; i < CHURN_PER_THREAD; i++) {
            shoal_server_destroy(sv[i]);
            atomic_fetch_sub(x->live, 1);
        }
        pthread_barrier_wait(x->barrier); /* all destroyed */
        pthread_barrier_wait(x->barrier); /* the main thread counted */
    }
    return 0;
}

static void *churn_thread(void *arg)
{
    churn_ctx_t *x = arg;
    x->rc = churn_body(x);
    if (x->rc) {
        /* keep the barrier protocol from hanging the others: give up the
         * process, the failure is already printed */
        fprintf(stderr, "churn thread %d failed\n", x->id);
        _exit(3);
    }
    return NULL;
}

static void test_server_slot_churn(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "churn");
    pthread_barrier_t barrier;
    pthread_barrier_init(&barrier, NULL, CHURN_THREADS + 1);
    atomic_uint live = 0;
    pthread_t th[CHURN_THREADS];
    churn_ctx_t ctx[CHURN_THREADS];
    for (int i = 0; i < CHURN_THREADS; i++) {
        ctx[i] = (churn_ctx_t){ rt, &barrier, &live, i, -1 };
        assert_int_equal(pthread_create(&th[i], NULL, churn_thread, &ctx[i]), 0);
    }
    for (int round = 0; round < CHURN_ROUNDS; round++) {
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier);
        uint32_t n = th_port_count(rt, SHOAL_PORT_SERVER, getpid(), NULL);
        uint32_t l = atomic_load(&live);
        pthread_barrier_wait(&barrier);
        if (n != 512)
            print_error("round %d: %u servers visible, %u created\n", round, n, l);
        assert_int_equal(l, 512);
        assert_int_equal(n, 512);
        pthread_barrier_wait(&barrier);
        n = th_port_count(rt, 0, 0, NULL);
        pthread_barrier_wait(&barrier);
        assert_int_equal(n, 0);
    }
    for (int i = 0; i < CHURN_THREADS; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ctx[i].rc, 0);
    }
    pthread_barrier_destroy(&barrier);
    assert_int_equal(th_port_count(rt, 0, 0, NULL), 0);
    shoal_runtime_destroy(rt);
}

/* ---- held-chunk limit ---------------------------------------------------------- */

static const char *const HELD_CONFIG =
    "[limits]\n"
    "chunks_per_port = 8\n"
    "[pools]\n"
    "64 = 64\n";

static void test_held_limit(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "hoarder");
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_server_create(&sv, rt, "hoard", NULL));
    assert_ok(shoal_client_create(&cl, rt, "hoard", NULL));
    shoal_chunk_t *kept[16];
    int held = 0;
    shoal_result_t hit = SHOAL_OK;
    char msg[1024] = "";
    for (int i = 0; i < 16; i++) {
        shoal_chunk_t *req = NULL, *sreq = NULL, *resp = NULL;
        shoal_result_t r = shoal_client_loan(cl, 16, &req);
        if (r != SHOAL_OK) {
            hit = r;
            snprintf(msg, sizeof msg, "%s", shoal_last_error_message());
            break;
        }
        assert_ok(shoal_client_send(cl, req, NULL));
        assert_ok(shoal_server_take(sv, &sreq, TH_SEC));
        assert_ok(shoal_server_loan_response(sv, sreq, 16, &resp));
        assert_ok(shoal_server_send(sv, resp));
        assert_ok(shoal_chunk_release(sreq));
        r = shoal_client_take(cl, &kept[held], TH_SEC);
        if (r != SHOAL_OK) {
            hit = r;
            snprintf(msg, sizeof msg, "%s", shoal_last_error_message());
            break;
        }
        held++;
    }
    if (hit != SHOAL_ERR_HELD_LIMIT)
        print_error("expected HELD_LIMIT, got %s after %d held\n", shoal_strerror(hit), held);
    assert_int_equal(hit, SHOAL_ERR_HELD_LIMIT);
    assert_int_equal(held, 8);
    assert_contains(msg, "limits.chunks_per_port");
    assert_contains(msg, "8");
    /* the pool still had free chunks: the port limit came first */
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    assert_ok(shoal_runtime_pool_info(rt, 0, &pi));
    assert_true(pi.in_use < pi.chunk_count);
    assert_int_equal(pi.alloc_failures, 0);
    shoal_port_info_t info = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_CLIENT, getpid(), "hoard", &info), 0);
    assert_int_equal(info.held, 8);
    /* other ports are unaffected */
    shoal_publisher_t *pub = NULL;
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "other", NULL));
    assert_ok(shoal_publisher_loan(pub, 16, &c));
    assert_ok(shoal_chunk_release(c));
    shoal_publisher_destroy(pub);
    /* releasing makes room again */
    for (int i = 0; i < held; i++)
        assert_ok(shoal_chunk_release(kept[i]));
    while (shoal_client_take(cl, &c, 0) == SHOAL_OK)
        assert_ok(shoal_chunk_release(c));
    assert_int_equal(th_pools_in_use(rt), 0);
    assert_ok(shoal_client_loan(cl, 16, &c));
    assert_ok(shoal_chunk_release(c));
    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    shoal_runtime_destroy(rt);
}

/* ---- the seed's leak ------------------------------------------------------------- */

static const char *const SEED_CONFIG =
    "[limits]\n"
    "chunks_per_port = 16\n"
    "[pools]\n"
    "64 = 32\n";

static void test_seed_leak_unexpected_ids(void **state)
{
    th_fixture_t *fx = *state;
    echo_proc_t echo;
    echo_start(&echo, &fx->daemon, "seed", 0);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "seed-client");
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "seed", NULL));
    wait_servers(cl, 1);
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    assert_ok(shoal_runtime_pool_info(rt, 0, &pi));
    const uint32_t iterations = 10 * pi.chunk_count;

    /* Manual take: two requests in flight, expecting the second; the first
     * response has an unexpected sequence id and is released properly. */
    uint64_t unexpected = 0;
    for (uint32_t i = 0; i < iterations; i++) {
        uint64_t seq_a = 0, seq_b = 0;
        shoal_chunk_t *req = NULL;
        assert_ok(shoal_client_loan(cl, 16, &req));
        memcpy(shoal_chunk_payload(req), &i, sizeof i);
        assert_ok(shoal_client_send(cl, req, &seq_a));
        assert_ok(shoal_client_loan(cl, 16, &req));
        memcpy(shoal_chunk_payload(req), &i, sizeof i);
        assert_ok(shoal_client_send(cl, req, &seq_b));
        for (;;) {
            shoal_chunk_t *resp = NULL;
            assert_ok(shoal_client_take(cl, &resp, 5 * TH_SEC));
            uint64_t seq = shoal_chunk_sequence_id(resp);
            assert_ok(shoal_chunk_release(resp));
            if (seq == seq_b)
                break;
            assert_int_equal(seq, seq_a);
            unexpected++;
        }
    }
    assert_int_equal(unexpected, iterations);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);

    /* The call helper, with a stale response waiting each time. */
    for (uint32_t i = 0; i < iterations; i++) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        assert_ok(shoal_client_loan(cl, 16, &req));
        assert_ok(shoal_client_send(cl, req, NULL));
        assert_ok(shoal_client_loan(cl, 16, &req));
        assert_ok(shoal_client_call(cl, req, &resp, 5 * TH_SEC));
        assert_ok(shoal_chunk_release(resp));
    }
    shoal_port_info_t info = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_CLIENT, getpid(), "seed", &info), 0);
    assert_int_equal(info.stale, iterations);
    assert_int_equal(info.held, 0);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    assert_ok(shoal_runtime_pool_info(rt, 0, &pi));
    assert_int_equal(pi.alloc_failures, 0);
    assert_true(pi.high_water <= 8);
    echo_stop(&echo);
    shoal_client_destroy(cl);
    shoal_runtime_destroy(rt);
}

/* ---- large chunks ----------------------------------------------------------------- */

static const char *const LARGE_CONFIG =
    "[pools]\n"
    "64 = 64\n"
    "1200M = 2\n";

static void test_large_chunks(void **state)
{
    th_fixture_t *fx = *state;
    const uint64_t big = 1200ull * 1024 * 1024;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "large");
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    int idx = th_pool_index(rt, big, &pi);
    assert_true(idx >= 0);
    assert_int_equal(pi.chunk_count, 2);
    echo_proc_t echo;
    echo_start(&echo, &fx->daemon, "large", 1);
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "large", NULL));
    wait_servers(cl, 1);

    shoal_chunk_t *a = NULL, *b = NULL, *c = NULL;
    assert_ok(shoal_client_loan(cl, big, &a));
    assert_ok(shoal_client_loan(cl, big, &b));
    assert_int_equal(shoal_chunk_size(a), big);
    unsigned char *pa = shoal_chunk_payload(a);
    unsigned char *pb = shoal_chunk_payload(b);
    assert_true(pa != pb);
    pa[0] = 0xA1;
    pa[big - 1] = 0xB2;
    pb[0] = 0x11;
    pb[big - 1] = 0x22;
    assert_int_equal(pa[0], 0xA1);
    assert_int_equal(pb[big - 1], 0x22);
    assert_rc(shoal_client_loan(cl, big, &c), SHOAL_ERR_POOL_EXHAUSTED);
    assert_rc(shoal_client_loan(cl, big + 1, &c), SHOAL_ERR_CHUNK_TOO_LARGE);
    assert_non_null(strstr(shoal_last_error_message(), "e.g. '2G = 2'"));
    /* past the config's own limit, no pool line can help: it says so */
    assert_rc(shoal_client_loan(cl, 100ull << 30, &c), SHOAL_ERR_CHUNK_TOO_LARGE);
    assert_non_null(strstr(shoal_last_error_message(), "at most 64G"));
    assert_null(strstr(shoal_last_error_message(), "e.g."));
    assert_ok(shoal_chunk_release(b));

    /* one round trip with 1200M request and response */
    shoal_chunk_t *resp = NULL;
    assert_ok(shoal_client_call(cl, a, &resp, 10 * TH_SEC));
    assert_int_equal(shoal_chunk_size(resp), big);
    const unsigned char *pr = shoal_chunk_payload(resp);
    assert_int_equal(pr[0], 0xC3);
    assert_int_equal(pr[big - 1], 0xD4);
    assert_ok(shoal_chunk_release(resp));
    echo_stop(&echo);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_client_destroy(cl);
    shoal_runtime_destroy(rt);
}

static const char *const HUGE_CONFIG =
    "[pools]\n"
    "4G = 1\n";

static void test_4g_chunk(void **state)
{
    th_fixture_t *fx = *state;
    const uint64_t size = 4ull << 30;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "huge");
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "huge", NULL));
    assert_ok(shoal_subscriber_create(&sub, rt, "huge", NULL));
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, size, &c));
    unsigned char *p = shoal_chunk_payload(c);
    p[0] = 1;
    p[size - 1] = 2;
    assert_ok(shoal_publisher_publish(pub, c));
    assert_ok(shoal_subscriber_take(sub, &c, TH_SEC));
    assert_int_equal(shoal_chunk_size(c), size);
    p = shoal_chunk_payload(c);
    assert_int_equal(p[0], 1);
    assert_int_equal(p[size - 1], 2);
    assert_ok(shoal_chunk_release(c));
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_subscriber_destroy(sub);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

/* ---- process and service limits ------------------------------------------------- */

static const char *const SMALL_LIMITS_CONFIG =
    "[limits]\n"
    "processes = 2\n"
    "services = 3\n"
    "waitsets_per_process = 2\n"
    "[pools]\n"
    "64 = 16\n";

static void test_process_and_service_limits(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *a = th_runtime(&fx->daemon, "first");
    /* waitsets are a configured limit too; a destroyed one frees its place */
    shoal_waitset_t *w1 = NULL, *w2 = NULL, *w3 = NULL;
    assert_ok(shoal_waitset_create(&w1, a));
    assert_ok(shoal_waitset_create(&w2, a));
    assert_rc(shoal_waitset_create(&w3, a), SHOAL_ERR_PORT_LIMIT);
    assert_null(w3);
    assert_contains(shoal_last_error_message(), "limits.waitsets_per_process");
    shoal_waitset_destroy(w2);
    assert_ok(shoal_waitset_create(&w3, a));
    shoal_waitset_destroy(w1);
    shoal_waitset_destroy(w3);
    shoal_runtime_t *b = th_runtime(&fx->daemon, "second");
    shoal_runtime_t *c = NULL;
    assert_rc(th_runtime_create(&fx->daemon, "third", &c), SHOAL_ERR_PROCESS_LIMIT);
    assert_contains(shoal_last_error_message(), "limits.processes");
    assert_contains(shoal_last_error_message(), "2");
    shoal_runtime_destroy(b);
    /* the slot comes back (the daemon may notice the close a moment later) */
    shoal_result_t r = SHOAL_ERR_PROCESS_LIMIT;
    for (int i = 0; i < 200 && r == SHOAL_ERR_PROCESS_LIMIT; i++) {
        r = th_runtime_create(&fx->daemon, "third", &c);
        if (r == SHOAL_ERR_PROCESS_LIMIT)
            th_sleep_ms(10);
    }
    assert_int_equal(r, SHOAL_OK);
    shoal_runtime_destroy(c);

    /* three distinct names; ports on a known name still work */
    shoal_publisher_t *p1 = NULL, *p2 = NULL, *p3 = NULL, *p4 = NULL;
    shoal_subscriber_t *s1 = NULL;
    assert_ok(shoal_publisher_create(&p1, a, "n1", NULL));
    assert_ok(shoal_publisher_create(&p2, a, "n2", NULL));
    assert_ok(shoal_publisher_create(&p3, a, "n3", NULL));
    assert_ok(shoal_subscriber_create(&s1, a, "n1", NULL));
    assert_rc(shoal_publisher_create(&p4, a, "n4", NULL), SHOAL_ERR_SERVICE_LIMIT);
    assert_contains(shoal_last_error_message(), "limits.services");
    shoal_publisher_destroy(p3);
    /* a name without ports is forgotten, so a new one fits */
    assert_ok(shoal_publisher_create(&p4, a, "n4", NULL));
    shoal_publisher_destroy(p4);
    shoal_subscriber_destroy(s1);
    shoal_publisher_destroy(p2);
    shoal_publisher_destroy(p1);
    shoal_runtime_destroy(a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST_CFG(test_port_limit_servers, LIMIT8_CONFIG),
        TH_TEST(test_server_slot_churn),
        TH_TEST_CFG(test_held_limit, HELD_CONFIG),
        TH_TEST_CFG(test_seed_leak_unexpected_ids, SEED_CONFIG),
        TH_TEST_CFG(test_large_chunks, LARGE_CONFIG),
        TH_TEST_CFG(test_4g_chunk, HUGE_CONFIG),
        TH_TEST_CFG(test_process_and_service_limits, SMALL_LIMITS_CONFIG),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
