/* Issue 3: publish/subscribe, history, queue-full policies. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <unistd.h>

typedef struct sample {
    uint64_t index;
    uint64_t magic;
    char text[48];
} sample_t;
#define SAMPLE_MAGIC 0x7075627375620000ull

static void publish_sample(shoal_publisher_t *pub, uint64_t index)
{
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, sizeof(sample_t), &c));
    sample_t s = { index, SAMPLE_MAGIC, { 0 } };
    snprintf(s.text, sizeof s.text, "sample %llu", (unsigned long long)index);
    memcpy(shoal_chunk_payload(c), &s, sizeof s);
    assert_ok(shoal_publisher_publish(pub, c));
}

/* ---- several subscribers in several processes -------------------------- */

typedef struct sub_ctx {
    th_daemon_t *d;
    const char *topic;
    uint32_t expect;  /* samples to receive, indices 0..expect-1 in order */
    uint32_t history; /* subscriber history option */
    uint64_t first;   /* first expected index */
    th_chan_t ready;
} sub_ctx_t;

static int subscriber_process(void *arg)
{
    sub_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "subscriber", &rt));
    shoal_subscriber_options_t o;
    shoal_subscriber_options_init(&o, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    o.history = x->history;
    shoal_subscriber_t *sub = NULL;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, x->topic, &o));
    th_chan_send(&x->ready, 'r');
    for (uint32_t i = 0; i < x->expect; i++) {
        shoal_chunk_t *c = NULL;
        WCHECK_OK(shoal_subscriber_take(sub, &c, 5 * TH_SEC));
        WCHECK(shoal_chunk_size(c) == sizeof(sample_t));
        sample_t s;
        memcpy(&s, shoal_chunk_payload(c), sizeof s);
        WCHECK(s.magic == SAMPLE_MAGIC);
        if (s.index != x->first + i)
            fprintf(stderr, "got index %llu, want %llu\n", (unsigned long long)s.index,
                    (unsigned long long)(x->first + i));
        WCHECK(s.index == x->first + i);
        char want[48];
        snprintf(want, sizeof want, "sample %llu", (unsigned long long)s.index);
        WCHECK(strcmp(s.text, want) == 0);
        WCHECK_OK(shoal_chunk_release(c));
    }
    shoal_chunk_t *c = NULL;
    WCHECK_RC(shoal_subscriber_take(sub, &c, 30 * TH_MS), SHOAL_ERR_TIMEOUT);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
    return 0;
}

static void test_several_subscribers(void **state)
{
    th_fixture_t *fx = *state;
    enum { NSUB = 4, N = 100 };
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "publisher");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "fanout", NULL));
    sub_ctx_t ctx[NSUB];
    pid_t pids[NSUB];
    for (int i = 0; i < NSUB; i++) {
        ctx[i] = (sub_ctx_t){ &fx->daemon, "fanout", N, 0, 0, { -1, -1 } };
        th_chan_open(&ctx[i].ready);
        pids[i] = th_spawn(subscriber_process, &ctx[i]);
    }
    for (int i = 0; i < NSUB; i++)
        assert_int_equal(th_chan_recv(&ctx[i].ready, 5000), 'r');
    assert_int_equal(shoal_publisher_subscriber_count(pub), NSUB);
    for (uint64_t i = 0; i < N; i++)
        publish_sample(pub, i);
    for (int i = 0; i < NSUB; i++) {
        assert_int_equal(th_join(pids[i], 20000), 0);
        th_chan_close(&ctx[i].ready);
    }
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_PUBLISHER, getpid(), "fanout", &pi), 0);
    assert_int_equal(pi.sent, N);
    assert_int_equal(shoal_publisher_subscriber_count(pub), 0);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_publish_without_subscribers(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "alone");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "nobody", NULL));
    for (uint64_t i = 0; i < 1000; i++)
        publish_sample(pub, i);
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_history_for_late_subscriber(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "historian");
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.history = 4;
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "history", &po));
    for (uint64_t i = 0; i < 10; i++)
        publish_sample(pub, i);
    /* the publisher keeps 4 samples */
    assert_int_equal(th_pools_in_use(rt), 4);

    /* a late subscriber in another process asking for 3 gets 7, 8, 9, then
     * the live samples 10, 11 */
    sub_ctx_t ctx = { &fx->daemon, "history", 5, 3, 7, { -1, -1 } };
    th_chan_open(&ctx.ready);
    pid_t pid = th_spawn(subscriber_process, &ctx);
    assert_int_equal(th_chan_recv(&ctx.ready, 5000), 'r');
    publish_sample(pub, 10);
    publish_sample(pub, 11);
    assert_int_equal(th_join(pid, 10000), 0);
    th_chan_close(&ctx.ready);

    /* asking for more than is kept gives what is kept */
    sub_ctx_t ctx2 = { &fx->daemon, "history", 4, 16, 8, { -1, -1 } };
    th_chan_open(&ctx2.ready);
    pid = th_spawn(subscriber_process, &ctx2);
    assert_int_equal(th_chan_recv(&ctx2.ready, 5000), 'r');
    assert_int_equal(th_join(pid, 10000), 0);
    th_chan_close(&ctx2.ready);

    /* a subscriber without history gets nothing old */
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "history", NULL));
    shoal_chunk_t *c = NULL;
    assert_rc(shoal_subscriber_take(sub, &c, 20 * TH_MS), SHOAL_ERR_TIMEOUT);
    shoal_subscriber_destroy(sub);

    /* history above limits.history is refused with the key named */
    po.history = 17;
    shoal_publisher_t *pub2 = NULL;
    assert_rc(shoal_publisher_create(&pub2, rt, "history2", &po), SHOAL_ERR_INVALID_ARGUMENT);
    assert_contains(shoal_last_error_message(), "limits.history");

    shoal_publisher_destroy(pub);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
}

/* ---- queue-full policies ---------------------------------------------------- */

static shoal_subscriber_t *small_subscriber(shoal_runtime_t *rt, const char *topic, uint32_t cap)
{
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.queue_capacity = cap;
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, topic, &so));
    return sub;
}

static shoal_publisher_t *policy_publisher(shoal_runtime_t *rt, const char *topic,
                                           shoal_full_policy_t policy, int64_t timeout)
{
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.full_policy = policy;
    po.send_timeout_ns = timeout;
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, topic, &po));
    return pub;
}

static void test_drop_oldest(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "dropper");
    shoal_subscriber_t *sub = small_subscriber(rt, "drop", 4);
    shoal_publisher_t *pub = policy_publisher(rt, "drop", SHOAL_FULL_DROP_OLDEST, 0);
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_SUBSCRIBER, getpid(), "drop", &pi), 0);
    assert_int_equal(pi.queue_capacity, 4);
    uint64_t next = 0;
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 10; i++)
            publish_sample(pub, next++);
        assert_int_equal(th_pools_in_use(rt), 4); /* dropped chunks went back */
        for (int i = 0; i < 4; i++) {
            shoal_chunk_t *c = NULL;
            assert_ok(shoal_subscriber_take(sub, &c, 0));
            sample_t s;
            memcpy(&s, shoal_chunk_payload(c), sizeof s);
            assert_int_equal(s.index, next - 4 + (uint64_t)i); /* the newest four */
            assert_ok(shoal_chunk_release(c));
        }
        shoal_chunk_t *c = NULL;
        assert_rc(shoal_subscriber_take(sub, &c, 0), SHOAL_ERR_TIMEOUT);
    }
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_port_info_t sp = SHOAL_PORT_INFO_INIT, pp = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_SUBSCRIBER, getpid(), "drop", &sp), 0);
    assert_int_equal(th_find_port(rt, SHOAL_PORT_PUBLISHER, getpid(), "drop", &pp), 0);
    /* the drops are counted (on the subscriber's port, or the publisher's) */
    if (sp.dropped != 300 && pp.dropped != 300)
        print_error("dropped: subscriber %llu, publisher %llu, expected 300\n",
                    (unsigned long long)sp.dropped, (unsigned long long)pp.dropped);
    assert_true(sp.dropped == 300 || pp.dropped == 300);
    assert_int_equal(sp.received, 200);
    shoal_publisher_destroy(pub);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
}

static void test_reject(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "rejecter");
    shoal_subscriber_t *sub = small_subscriber(rt, "reject", 4);
    shoal_publisher_t *pub = policy_publisher(rt, "reject", SHOAL_FULL_REJECT, 0);
    for (int i = 0; i < 4; i++)
        publish_sample(pub, (uint64_t)i);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, sizeof(sample_t), &c));
    int64_t t0 = th_now_ns();
    assert_rc(shoal_publisher_publish(pub, c), SHOAL_ERR_QUEUE_FULL);
    assert_true(th_now_ns() - t0 < 100 * TH_MS);
    assert_true(strlen(shoal_last_error_message()) > 0);
    assert_int_equal(th_pools_in_use(rt), 4); /* the rejected chunk was released */
    assert_ok(shoal_subscriber_take(sub, &c, 0));
    assert_ok(shoal_chunk_release(c));
    publish_sample(pub, 4);
    for (int i = 1; i <= 4; i++) {
        assert_ok(shoal_subscriber_take(sub, &c, 0));
        sample_t s;
        memcpy(&s, shoal_chunk_payload(c), sizeof s);
        assert_int_equal(s.index, (uint64_t)i);
        assert_ok(shoal_chunk_release(c));
    }
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_publisher_destroy(pub);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
}

typedef struct slow_ctx {
    th_daemon_t *d;
    th_chan_t ready;
    th_chan_t go;
} slow_ctx_t;

static int slow_taker(void *arg)
{
    slow_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "slow", &rt));
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.queue_capacity = 2;
    shoal_subscriber_t *sub = NULL;
    WCHECK_OK(shoal_subscriber_create(&sub, rt, "wait-proc", &so));
    th_chan_send(&x->ready, 'r');
    WCHECK(th_chan_recv(&x->go, 10000) == 'f'); /* the queue is full */
    th_sleep_ms(150);
    for (int i = 0; i < 3; i++) {
        shoal_chunk_t *c = NULL;
        WCHECK_OK(shoal_subscriber_take(sub, &c, 5 * TH_SEC));
        WCHECK_OK(shoal_chunk_release(c));
    }
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
    return 0;
}

static void test_wait_policy(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "waiter");
    shoal_subscriber_t *sub = small_subscriber(rt, "wait", 2);
    shoal_publisher_t *pub = policy_publisher(rt, "wait", SHOAL_FULL_WAIT, 50 * TH_MS);
    publish_sample(pub, 0);
    publish_sample(pub, 1);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, sizeof(sample_t), &c));
    int64_t t0 = th_now_ns();
    shoal_result_t r = shoal_publisher_publish(pub, c);
    int64_t el = th_now_ns() - t0;
    if (r != SHOAL_ERR_QUEUE_FULL && r != SHOAL_ERR_TIMEOUT)
        print_error("WAIT publish returned %s\n", shoal_strerror(r));
    assert_true(r == SHOAL_ERR_QUEUE_FULL || r == SHOAL_ERR_TIMEOUT);
    assert_true(el >= 50 * TH_MS);
    assert_true(el < TH_SEC);
    assert_int_equal(th_pools_in_use(rt), 2);
    for (int i = 0; i < 2; i++) {
        assert_ok(shoal_subscriber_take(sub, &c, 0));
        assert_ok(shoal_chunk_release(c));
    }
    shoal_subscriber_destroy(sub);
    shoal_publisher_destroy(pub);

    /* The publisher waits until a subscriber in another process makes room. */
    pub = policy_publisher(rt, "wait-proc", SHOAL_FULL_WAIT, 5 * TH_SEC);
    slow_ctx_t ctx = { &fx->daemon, { -1, -1 }, { -1, -1 } };
    th_chan_open(&ctx.ready);
    th_chan_open(&ctx.go);
    pid_t pid = th_spawn(slow_taker, &ctx);
    assert_int_equal(th_chan_recv(&ctx.ready, 5000), 'r');
    assert_int_equal(shoal_publisher_subscriber_count(pub), 1);
    publish_sample(pub, 0);
    publish_sample(pub, 1);
    th_chan_send(&ctx.go, 'f');
    t0 = th_now_ns();
    publish_sample(pub, 2); /* waits for the taker */
    el = th_now_ns() - t0;
    assert_true(el >= 100 * TH_MS);
    assert_true(el < 4 * TH_SEC);
    assert_int_equal(th_join(pid, 10000), 0);
    th_chan_close(&ctx.ready);
    th_chan_close(&ctx.go);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_request_queue_reject(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "reqfull");
    shoal_server_options_t so;
    shoal_server_options_init(&so, SHOAL_SERVER_OPTIONS_VERSION);
    so.queue_capacity = 2;
    shoal_server_t *sv = NULL;
    assert_ok(shoal_server_create(&sv, rt, "full", &so));
    shoal_client_options_t co;
    shoal_client_options_init(&co, SHOAL_CLIENT_OPTIONS_VERSION);
    co.full_policy = SHOAL_FULL_REJECT;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_client_create(&cl, rt, "full", &co));
    shoal_chunk_t *c = NULL;
    for (int i = 0; i < 2; i++) {
        assert_ok(shoal_client_loan(cl, 16, &c));
        assert_ok(shoal_client_send(cl, c, NULL));
    }
    assert_ok(shoal_client_loan(cl, 16, &c));
    assert_rc(shoal_client_send(cl, c, NULL), SHOAL_ERR_QUEUE_FULL);
    assert_int_equal(th_pools_in_use(rt), 2);
    for (int i = 0; i < 2; i++) {
        assert_ok(shoal_server_take(sv, &c, 0));
        assert_ok(shoal_chunk_release(c));
    }
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    shoal_runtime_destroy(rt);
}

static void test_queue_capacity_limit(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "caps");
    shoal_subscriber_t *sub = NULL;
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    assert_ok(shoal_subscriber_create(&sub, rt, "cap-default", NULL));
    assert_int_equal(th_find_port(rt, SHOAL_PORT_SUBSCRIBER, getpid(), "cap-default", &pi), 0);
    assert_int_equal(pi.queue_capacity, 256); /* limits.queue_capacity */
    shoal_subscriber_destroy(sub);
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.queue_capacity = 257;
    assert_rc(shoal_subscriber_create(&sub, rt, "cap-big", &so), SHOAL_ERR_INVALID_ARGUMENT);
    assert_contains(shoal_last_error_message(), "limits.queue_capacity");
    shoal_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_several_subscribers),
        TH_TEST(test_publish_without_subscribers),
        TH_TEST(test_history_for_late_subscriber),
        TH_TEST(test_drop_oldest),
        TH_TEST(test_reject),
        TH_TEST(test_wait_policy),
        TH_TEST(test_request_queue_reject),
        TH_TEST(test_queue_capacity_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
