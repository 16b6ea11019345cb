/* Issue 2: the chunk allocator through the ABI, across threads and processes,
 * and crash cleanup. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

/* One pool of 24 chunks of 4 KiB, and a port may hold more than that, so
 * the pool runs out before the per-port limit. */
static const char *const SMALL_POOL_CONFIG =
    "[limits]\n"
    "chunks_per_port = 64\n"
    "[pools]\n"
    "4K = 24\n";

static const char *const TWO_POOLS_CONFIG =
    "[limits]\n"
    "chunks_per_port = 64\n"
    "queue_capacity = 256\n"
    "[pools]\n"
    "64 = 64\n"
    "1K = 16\n";

static void test_pool_info(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "info");
    assert_int_equal(shoal_runtime_pool_count(rt), 2);
    shoal_pool_info_t a = SHOAL_POOL_INFO_INIT, b = SHOAL_POOL_INFO_INIT;
    assert_ok(shoal_runtime_pool_info(rt, 0, &a));
    assert_ok(shoal_runtime_pool_info(rt, 1, &b));
    assert_int_equal(a.chunk_size, 64);
    assert_int_equal(a.chunk_count, 64);
    assert_int_equal(b.chunk_size, 1024);
    assert_int_equal(b.chunk_count, 16);
    assert_int_equal(a.in_use, 0);
    assert_int_equal(b.in_use, 0);
    assert_rc(shoal_runtime_pool_info(rt, 2, &a), SHOAL_ERR_NOT_FOUND);
    shoal_runtime_destroy(rt);
}

static void test_loan_picks_fitting_pool(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "fit");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "fit", NULL));
    shoal_chunk_t *small = NULL, *big = NULL, *exact = NULL;
    assert_ok(shoal_publisher_loan(pub, 10, &small));
    assert_ok(shoal_publisher_loan(pub, 65, &big));
    assert_ok(shoal_publisher_loan(pub, 64, &exact));
    assert_int_equal(shoal_chunk_size(small), 10);
    assert_int_equal(shoal_chunk_size(big), 65);
    assert_non_null(shoal_chunk_payload(small));
    memset(shoal_chunk_payload(big), 0x5a, 65);
    memset(shoal_chunk_payload(exact), 0x5a, 64);
    shoal_pool_info_t a = SHOAL_POOL_INFO_INIT, b = SHOAL_POOL_INFO_INIT;
    assert_ok(shoal_runtime_pool_info(rt, 0, &a));
    assert_ok(shoal_runtime_pool_info(rt, 1, &b));
    assert_int_equal(a.in_use, 2);
    assert_int_equal(b.in_use, 1);
    assert_ok(shoal_chunk_set_size(big, 30));
    assert_int_equal(shoal_chunk_size(big), 30);
    assert_rc(shoal_chunk_set_size(big, 66), SHOAL_ERR_INVALID_ARGUMENT);
    /* size 0 is invalid */
    shoal_chunk_t *zero = NULL;
    assert_rc(shoal_publisher_loan(pub, 0, &zero), SHOAL_ERR_INVALID_ARGUMENT);
    assert_ok(shoal_chunk_release(small));
    assert_ok(shoal_chunk_release(big));
    assert_ok(shoal_chunk_release(exact));
    assert_ok(shoal_chunk_release(NULL));
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_exhaustion_names_pool(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "exhaust");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "exhaust", NULL));
    shoal_chunk_t *c[24];
    for (int i = 0; i < 24; i++)
        assert_ok(shoal_publisher_loan(pub, 100, &c[i]));
    shoal_chunk_t *extra = NULL;
    assert_rc(shoal_publisher_loan(pub, 100, &extra), SHOAL_ERR_POOL_EXHAUSTED);
    const char *msg = shoal_last_error_message();
    assert_true(strstr(msg, "4096") != NULL || strstr(msg, "4K") != NULL);
    assert_contains(msg, "24");
    /* holders can be listed: the message names this process */
    assert_contains(msg, "exhaust");
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    assert_ok(shoal_runtime_pool_info(rt, 0, &pi));
    assert_int_equal(pi.in_use, 24);
    assert_int_equal(pi.high_water, 24);
    assert_true(pi.alloc_failures >= 1);
    /* release refills: one released, one loanable again, and again */
    for (int round = 0; round < 3; round++) {
        assert_ok(shoal_chunk_release(c[round]));
        assert_ok(shoal_publisher_loan(pub, 100, &c[round]));
        assert_rc(shoal_publisher_loan(pub, 100, &extra), SHOAL_ERR_POOL_EXHAUSTED);
    }
    for (int i = 0; i < 24; i++)
        assert_ok(shoal_chunk_release(c[i]));
    assert_ok(shoal_runtime_pool_info(rt, 0, &pi));
    assert_int_equal(pi.in_use, 0);
    /* all 24 loanable again */
    for (int i = 0; i < 24; i++)
        assert_ok(shoal_publisher_loan(pub, 4096, &c[i]));
    for (int i = 0; i < 24; i++)
        assert_ok(shoal_chunk_release(c[i]));
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_chunk_too_large(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "toolarge");
    shoal_publisher_t *pub = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "big", NULL));
    assert_ok(shoal_client_create(&cl, rt, "bigsvc", NULL));
    shoal_chunk_t *c = NULL;
    assert_rc(shoal_publisher_loan(pub, 4097, &c), SHOAL_ERR_CHUNK_TOO_LARGE);
    const char *msg = shoal_last_error_message();
    assert_contains(msg, "4097");
    assert_rc(shoal_client_loan(cl, (uint64_t)1 << 40, &c), SHOAL_ERR_CHUNK_TOO_LARGE);
    assert_true(strlen(shoal_last_error_message()) > 0);
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_client_destroy(cl);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_destroy_returns_chunks(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "destroy");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "d", NULL));
    shoal_chunk_t *c = NULL;
    for (int i = 0; i < 5; i++)
        assert_ok(shoal_publisher_loan(pub, 100, &c));
    assert_int_equal(th_pools_in_use(rt), 5);
    shoal_publisher_destroy(pub); /* returns the port's chunks */
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    /* runtime destroy returns everything of its ports too */
    shoal_runtime_t *rt2 = th_runtime(&fx->daemon, "destroy2");
    assert_ok(shoal_publisher_create(&pub, rt2, "d", NULL));
    for (int i = 0; i < 7; i++)
        assert_ok(shoal_publisher_loan(pub, 100, &c));
    assert_int_equal(th_pools_in_use(rt), 7);
    shoal_runtime_destroy(rt2);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    assert_int_equal(th_port_count(rt, 0, 0, NULL), 0);
    shoal_runtime_destroy(rt);
}

/* ---- reference counts: one publish to 3 subscriber processes ------------- */

typedef struct refcount_ctx {
    th_daemon_t *d;
    int index;
    th_chan_t to_child;
    th_chan_t to_parent;
} refcount_ctx_t;

static int refcount_child(void *arg)
{
    refcount_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "refsub", &rt));
    shoal_subscriber_t *sub = NULL;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "refcount", NULL));
    th_chan_send(&x->to_parent, 'r'); /* subscribed */
    shoal_chunk_t *c = NULL;
    WCHECK_OK(shoal_subscriber_take(sub, &c, 5 * TH_SEC));
    WCHECK(shoal_chunk_size(c) == 32);
    const char *p = shoal_chunk_payload(c);
    WCHECK(strcmp(p, "shared by three") == 0);
    th_chan_send(&x->to_parent, 't'); /* taken */
    WCHECK(th_chan_recv(&x->to_child, 10000) == 'R');
    WCHECK_OK(shoal_chunk_release(c));
    th_chan_send(&x->to_parent, 'd'); /* released */
    WCHECK(th_chan_recv(&x->to_child, 10000) == 'X');
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
    return 0;
}

static void test_refcount_three_subscribers(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "refpub");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "refcount", NULL));
    refcount_ctx_t ctx[3];
    pid_t pids[3];
    for (int i = 0; i < 3; i++) {
        ctx[i].d = &fx->daemon;
        ctx[i].index = i;
        th_chan_open(&ctx[i].to_child);
        th_chan_open(&ctx[i].to_parent);
        pids[i] = th_spawn(refcount_child, &ctx[i]);
        assert_true(pids[i] > 0);
    }
    for (int i = 0; i < 3; i++)
        assert_int_equal(th_chan_recv(&ctx[i].to_parent, 5000), 'r');
    assert_int_equal(shoal_publisher_subscriber_count(pub), 3);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, 32, &c));
    memset(shoal_chunk_payload(c), 0, 32);
    strcpy(shoal_chunk_payload(c), "shared by three");
    assert_ok(shoal_publisher_publish(pub, c));
    assert_int_equal(th_pools_in_use(rt), 1); /* one chunk, three references */
    for (int i = 0; i < 3; i++)
        assert_int_equal(th_chan_recv(&ctx[i].to_parent, 5000), 't');
    assert_int_equal(th_pools_in_use(rt), 1);
    for (int i = 0; i < 3; i++) {
        assert_int_equal(th_chan_send(&ctx[i].to_child, 'R'), 0);
        assert_int_equal(th_chan_recv(&ctx[i].to_parent, 5000), 'd');
        assert_int_equal(th_pools_in_use(rt), i < 2 ? 1 : 0);
    }
    for (int i = 0; i < 3; i++) {
        th_chan_send(&ctx[i].to_child, 'X');
        assert_int_equal(th_join(pids[i], 5000), 0);
        th_chan_close(&ctx[i].to_child);
        th_chan_close(&ctx[i].to_parent);
    }
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

/* ---- concurrency --------------------------------------------------------------- */

enum { STRESS_ITERS = 3000, STRESS_HOLD = 6 };

typedef struct stress_ctx {
    th_daemon_t *d;
    shoal_runtime_t *rt; /* threads share the parent's runtime; processes make their own */
    int id;
    int rc;
} stress_ctx_t;

/* Loans up to STRESS_HOLD chunks, stamps them with (id, counter), checks the
 * stamps are intact (no chunk handed out twice), releases them. Pool
 * exhaustion is tolerated (other workers hold chunks). */
static int stress_body(shoal_runtime_t *rt, int id)
{
    char topic[32];
    snprintf(topic, sizeof topic, "stress%d", id);
    shoal_publisher_t *pub = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, topic, NULL));
    unsigned seed = (unsigned)id * 7919u + 1;
    shoal_chunk_t *held[STRESS_HOLD];
    uint64_t stamp[STRESS_HOLD];
    uint64_t counter = 0;
    for (int it = 0; it < STRESS_ITERS; it++) {
        int want = 1 + (int)(rand_r(&seed) % STRESS_HOLD);
        int n = 0;
        for (; n < want; n++) {
            uint64_t size = (rand_r(&seed) % 2) ? 48 : 900;
            shoal_result_t r = shoal_publisher_loan(pub, size, &held[n]);
            if (r == SHOAL_ERR_POOL_EXHAUSTED)
                break;
            WCHECK_OK(r);
            stamp[n] = ((uint64_t)id << 48) | ++counter;
            memcpy(shoal_chunk_payload(held[n]), &stamp[n], sizeof stamp[n]);
            ((char *)shoal_chunk_payload(held[n]))[size - 1] = (char)id;
        }
        for (int k = 0; k < n; k++) {
            uint64_t v;
            memcpy(&v, shoal_chunk_payload(held[k]), sizeof v);
            WCHECK(v == stamp[k]);
            uint64_t size = shoal_chunk_size(held[k]);
            WCHECK(((char *)shoal_chunk_payload(held[k]))[size - 1] == (char)id);
            WCHECK_OK(shoal_chunk_release(held[k]));
        }
    }
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    WCHECK(th_find_port(rt, SHOAL_PORT_PUBLISHER, getpid(), topic, &pi) == 0);
    WCHECK(pi.held == 0);
    shoal_publisher_destroy(pub);
    return 0;
}

static void *stress_thread(void *arg)
{
    stress_ctx_t *x = arg;
    x->rc = stress_body(x->rt, x->id);
    return NULL;
}

static void test_concurrent_threads(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "threads");
    pthread_t th[8];
    stress_ctx_t ctx[8];
    for (int i = 0; i < 8; i++) {
        ctx[i] = (stress_ctx_t){ &fx->daemon, rt, i, -1 };
        assert_int_equal(pthread_create(&th[i], NULL, stress_thread, &ctx[i]), 0);
    }
    for (int i = 0; i < 8; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(ctx[i].rc, 0);
    }
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    for (uint32_t p = 0; p < shoal_runtime_pool_count(rt); p++) {
        assert_ok(shoal_runtime_pool_info(rt, p, &pi));
        assert_true(pi.high_water <= pi.chunk_count);
        assert_true(pi.high_water > 0);
    }
    shoal_runtime_destroy(rt);
}

static int stress_process(void *arg)
{
    stress_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "stressproc", &rt));
    int rc = stress_body(rt, x->id);
    shoal_runtime_destroy(rt);
    return rc;
}

static void test_concurrent_processes(void **state)
{
    th_fixture_t *fx = *state;
    pid_t pids[4];
    stress_ctx_t ctx[4];
    for (int i = 0; i < 4; i++) {
        ctx[i] = (stress_ctx_t){ &fx->daemon, NULL, i + 100, -1 };
        pids[i] = th_spawn(stress_process, &ctx[i]);
        assert_true(pids[i] > 0);
    }
    for (int i = 0; i < 4; i++)
        assert_int_equal(th_join(pids[i], 60000), 0);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "check");
    assert_int_equal(th_pools_in_use(rt), 0);
    assert_int_equal(th_port_count(rt, 0, 0, NULL), 0);
    shoal_runtime_destroy(rt);
}

/* ---- crash cleanup ---------------------------------------------------------------- */

typedef struct crash_ctx {
    th_daemon_t *d;
    th_chan_t ready;
} crash_ctx_t;

static int crash_child(void *arg)
{
    crash_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "crasher", &rt));
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    shoal_client_t *cl = NULL;
    shoal_server_t *sv = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "crash-topic", NULL));
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "crash-topic", NULL));
    WCHECK_OK(shoal_client_create(&cl, rt, "crash-svc", NULL));
    WCHECK_OK(shoal_server_create(&sv, rt, "crash-svc", NULL));
    shoal_chunk_t *c = NULL;
    /* published and taken (held by the subscriber) */
    for (int i = 0; i < 3; i++) {
        WCHECK_OK(shoal_publisher_loan(pub, 100, &c));
        WCHECK_OK(shoal_publisher_publish(pub, c));
        WCHECK_OK(shoal_subscriber_take(sub, &c, TH_SEC));
    }
    /* published and left in the subscriber's queue */
    for (int i = 0; i < 2; i++) {
        WCHECK_OK(shoal_publisher_loan(pub, 100, &c));
        WCHECK_OK(shoal_publisher_publish(pub, c));
    }
    /* loaned and never sent */
    for (int i = 0; i < 4; i++)
        WCHECK_OK(shoal_publisher_loan(pub, 2000, &c));
    /* a request taken by the server, and one more in its queue */
    WCHECK_OK(shoal_client_loan(cl, 64, &c));
    WCHECK_OK(shoal_client_send(cl, c, NULL));
    WCHECK_OK(shoal_server_take(sv, &c, TH_SEC));
    WCHECK_OK(shoal_client_loan(cl, 64, &c));
    WCHECK_OK(shoal_client_send(cl, c, NULL));
    /* a request loaned, not sent */
    WCHECK_OK(shoal_client_loan(cl, 64, &c));
    th_chan_send(&x->ready, 'k');
    raise(SIGKILL);
    return 99;
}

static void test_crash_cleanup(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "observer");
    for (int round = 0; round < 3; round++) {
        crash_ctx_t ctx = { &fx->daemon, { -1, -1 } };
        th_chan_open(&ctx.ready);
        pid_t pid = th_spawn(crash_child, &ctx);
        assert_true(pid > 0);
        assert_int_equal(th_chan_recv(&ctx.ready, 10000), 'k');
        int code = th_join(pid, 5000);
        assert_int_equal(code, 128 + SIGKILL);
        int64_t t0 = th_now_ns();
        uint32_t left = th_wait_in_use(rt, 0, 2000);
        if (left != 0)
            print_error("round %d: %u chunks still in use 2 s after SIGKILL\n", round, left);
        assert_int_equal(left, 0);
        assert_int_equal(th_wait_port_count(rt, 0, pid, NULL, 0, 2000), 0);
        int64_t el = th_now_ns() - t0;
        assert_true(el < 2 * TH_SEC);
        th_chan_close(&ctx.ready);
    }
    /* The whole pool is usable again. */
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "after", NULL));
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    int idx = th_pool_index(rt, 64, &pi);
    assert_true(idx >= 0);
    shoal_chunk_t *cs[64];
    for (uint32_t i = 0; i < pi.chunk_count && i < 64; i++)
        assert_ok(shoal_publisher_loan(pub, 64, &cs[i]));
    for (uint32_t i = 0; i < pi.chunk_count && i < 64; i++)
        assert_ok(shoal_chunk_release(cs[i]));
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static int quiet_child(void *arg)
{
    crash_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "quitter", &rt));
    shoal_publisher_t *pub = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "exit-topic", NULL));
    shoal_chunk_t *c = NULL;
    for (int i = 0; i < 5; i++)
        WCHECK_OK(shoal_publisher_loan(pub, 100, &c));
    th_chan_send(&x->ready, 'e');
    _exit(0); /* exits without destroying anything */
}

static void test_exit_without_cleanup(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "observer2");
    crash_ctx_t ctx = { &fx->daemon, { -1, -1 } };
    th_chan_open(&ctx.ready);
    pid_t pid = th_spawn(quiet_child, &ctx);
    assert_int_equal(th_chan_recv(&ctx.ready, 10000), 'e');
    assert_int_equal(th_join(pid, 5000), 0);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    assert_int_equal(th_wait_port_count(rt, 0, pid, NULL, 0, 2000), 0);
    th_chan_close(&ctx.ready);
    shoal_runtime_destroy(rt);
}

/* ---- a subscriber that never takes --------------------------------------------- */

/* Five chunks: the subscriber's queue pins four, the publisher holds one. */
static const char *const PINNED_CONFIG =
    "[limits]\n"
    "chunks_per_port = 64\n"
    "queue_capacity = 16\n"
    "history = 0\n"
    "[pools]\n"
    "4K = 5\n";

typedef struct pinned_ctx {
    th_daemon_t *d;
    th_chan_t to_child, to_parent;
    pid_t pid;
    shoal_runtime_t *rt;
    shoal_publisher_t *pub;
    shoal_chunk_t *held;
} pinned_ctx_t;

/* Subscribes and never takes, until told to exit. */
static int pinned_child(void *arg)
{
    pinned_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "never-takes", &rt));
    shoal_subscriber_t *sub = NULL;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "pinned-topic", NULL));
    WCHECK(th_chan_send(&x->to_parent, 'r') == 0);
    WCHECK(th_chan_recv(&x->to_child, 60000) == 'X');
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
    return 0;
}

/* The subscriber in a child process; four chunks published into its queue,
 * a fifth loaned and kept: the pool is empty. */
static void pinned_start(th_fixture_t *fx, pinned_ctx_t *x)
{
    memset(x, 0, sizeof *x);
    x->d = &fx->daemon;
    th_chan_open(&x->to_child);
    th_chan_open(&x->to_parent);
    x->pid = th_spawn(pinned_child, x);
    assert_true(x->pid > 0);
    assert_int_equal(th_chan_recv(&x->to_parent, 5000), 'r');
    x->rt = th_runtime(&fx->daemon, "pinned-pub");
    assert_ok(shoal_publisher_create(&x->pub, x->rt, "pinned-topic", NULL));
    assert_int_equal(shoal_publisher_subscriber_count(x->pub), 1);
    for (int i = 0; i < 4; i++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_publisher_loan(x->pub, 100, &c));
        assert_ok(shoal_publisher_publish(x->pub, c));
    }
    assert_ok(shoal_publisher_loan(x->pub, 100, &x->held));
    assert_int_equal(th_pools_in_use(x->rt), 5);
}

static void pinned_stop(pinned_ctx_t *x)
{
    assert_int_equal(th_chan_send(&x->to_child, 'X'), 0);
    assert_int_equal(th_join(x->pid, 5000), 0);
    th_chan_close(&x->to_child);
    th_chan_close(&x->to_parent);
    /* the queue went back with its port; only the held loan remains */
    assert_int_equal(th_wait_in_use(x->rt, 1, 2000), 1);
    assert_ok(shoal_chunk_release(x->held));
    assert_int_equal(th_pools_in_use(x->rt), 0);
    shoal_publisher_destroy(x->pub);
    shoal_runtime_destroy(x->rt);
}

static void test_exhaustion_names_queues(void **state)
{
    th_fixture_t *fx = *state;
    pinned_ctx_t x;
    pinned_start(fx, &x);
    shoal_chunk_t *extra = NULL;
    assert_rc(shoal_publisher_loan(x.pub, 100, &extra), SHOAL_ERR_POOL_EXHAUSTED);
    const char *msg = shoal_last_error_message();
    char want[160];
    /* the queue that pins them: kind, topic, process, pid, count */
    snprintf(want, sizeof want, "in receive queues: subscriber 'pinned-topic' of never-takes(pid %d) 4 queued",
             (int)x.pid);
    assert_contains(msg, want);
    /* and the port that holds one, next to it */
    snprintf(want, sizeof want, "holders: publisher 'pinned-topic' of pinned-pub(pid %d) holds 1",
             (int)getpid());
    assert_contains(msg, want);
    assert_contains(msg, "chunk size 4096, 5 chunks");
    pinned_stop(&x);
}

/* The first line of `text` that starts with `prefix` (copied into line). */
static int find_line(const char *text, const char *prefix, char *line, size_t len)
{
    for (const char *l = text; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        if (strncmp(l, prefix, strlen(prefix)) != 0)
            continue;
        size_t n = strcspn(l, "\n");
        snprintf(line, len, "%.*s", (int)n, l);
        return 0;
    }
    return -1;
}

/* `shoal ports --held` lists the queue that pins chunks, not only holders. */
static void test_cli_held_shows_queues(void **state)
{
#ifndef SHOAL_CLI_PATH
    (void)state;
    skip();
#else
    th_fixture_t *fx = *state;
    pinned_ctx_t x;
    pinned_start(fx, &x);
    static char out[16384];
    char err[4096];
    const char *argv[] = { SHOAL_CLI_PATH, "--domain", fx->daemon.domain, "--runtime-dir",
                           fx->daemon.runtime_dir, "ports", "--held", NULL };
    int rc = th_run_program(SHOAL_CLI_PATH, argv, NULL, out, sizeof out, err, sizeof err, 10000);
    if (rc != 0)
        print_error("shoal exited %d: %s\n", rc, err);
    assert_int_equal(rc, 0);
    char line[512], want[64];
    if (find_line(out, "subscriber", line, sizeof line) != 0)
        print_error("no subscriber line in:\n%s\n", out);
    assert_int_equal(find_line(out, "subscriber", line, sizeof line), 0);
    assert_contains(line, "pinned-topic");
    snprintf(want, sizeof want, "never-takes(%d)", (int)x.pid);
    assert_contains(line, want);
    assert_contains(line, " 0 "); /* holds none */
    assert_contains(line, " 4/16 "); /* queues four */
    assert_int_equal(find_line(out, "publisher", line, sizeof line), 0);
    snprintf(want, sizeof want, "pinned-pub(%d)", (int)getpid());
    assert_contains(line, want);
    /* most pinned first: the queue before the holder */
    assert_true(strstr(out, "subscriber") < strstr(out, "\npublisher"));
    pinned_stop(&x);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST_CFG(test_pool_info, TWO_POOLS_CONFIG),
        TH_TEST_CFG(test_loan_picks_fitting_pool, TWO_POOLS_CONFIG),
        TH_TEST_CFG(test_exhaustion_names_pool, SMALL_POOL_CONFIG),
        TH_TEST_CFG(test_chunk_too_large, SMALL_POOL_CONFIG),
        TH_TEST_CFG(test_destroy_returns_chunks, TWO_POOLS_CONFIG),
        TH_TEST_CFG(test_refcount_three_subscribers, TWO_POOLS_CONFIG),
        TH_TEST_CFG(test_concurrent_threads, TWO_POOLS_CONFIG),
        TH_TEST_CFG(test_concurrent_processes, TWO_POOLS_CONFIG),
        TH_TEST(test_crash_cleanup),
        TH_TEST(test_exit_without_cleanup),
        TH_TEST_CFG(test_exhaustion_names_queues, PINNED_CONFIG),
        TH_TEST_CFG(test_cli_held_shows_queues, PINNED_CONFIG),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
