/* Issue 11: waits that do not own the port (shoal_*_wait_ready), sliced
 * WAIT-policy sends that keep the chunk when cut short, and waitsets with
 * thousands of ports. */
#include "harness.h"

#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static const char *const MANY_CONFIG =
    "[limits]\n"
    "subscribers = 1100\n"
    "publishers = 8\n"
    "[pools]\n"
    "64 = 256\n";

static void publish_byte(shoal_publisher_t *pub, unsigned char v)
{
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, 1, &c));
    *(unsigned char *)shoal_chunk_payload(c) = v;
    assert_ok(shoal_publisher_publish(pub, c));
}

/* ---- readiness waits ----------------------------------------------------------- */

typedef struct waiter {
    shoal_client_t *client;
    int64_t timeout_ns;
    _Atomic int started;
    shoal_result_t rc;
    int64_t took_ns;
    char detail[256];
} waiter_t;

static void *wait_thread(void *arg)
{
    waiter_t *w = arg;
    atomic_store(&w->started, 1);
    int64_t t0 = th_now_ns();
    w->rc = shoal_client_wait_ready(w->client, w->timeout_ns);
    w->took_ns = th_now_ns() - t0;
    snprintf(w->detail, sizeof w->detail, "%s", shoal_last_error_message());
    return NULL;
}

static void on_usr1(int sig) { (void)sig; }

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

/* A thread sleeps in wait_ready on a client while the main thread loans and
 * releases requests of the same client: no lock is shared, each of those
 * calls takes microseconds. A response wakes the waiter, which takes
 * nothing (the main thread's take gets it). */
static void test_wait_ready_overlaps_other_calls(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "ready");
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_server_create(&sv, rt, "ready", NULL));
    assert_ok(shoal_client_create(&cl, rt, "ready", NULL));
    shoal_chunk_t *c = NULL;

    /* empty: poll and a short timeout */
    assert_rc(shoal_client_wait_ready(cl, 0), SHOAL_ERR_TIMEOUT);
    int64_t t0 = th_now_ns();
    assert_rc(shoal_client_wait_ready(cl, 30 * TH_MS), SHOAL_ERR_TIMEOUT);
    assert_true(th_now_ns() - t0 >= 30 * TH_MS);

    waiter_t w = {.client = cl, .timeout_ns = 5 * TH_SEC};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w), 0);
    while (!atomic_load(&w.started)) th_sleep_ms(1);
    th_sleep_ms(20);
    int64_t lat[200];
    for (int i = 0; i < 200; i++) {
        int64_t s = th_now_ns();
        assert_ok(shoal_client_loan(cl, 8, &c));
        assert_ok(shoal_chunk_release(c));
        lat[i] = th_now_ns() - s;
    }
    qsort(lat, 200, sizeof lat[0], cmp_i64);
    print_message("loan+release while another thread waits: median %lld ns, max %lld ns\n",
                  (long long)lat[100], (long long)lat[199]);
    assert_true(lat[100] < 5 * TH_MS);

    /* a response wakes it; it does not take it */
    assert_ok(shoal_client_loan(cl, 4, &c));
    uint64_t seq = 0;
    assert_ok(shoal_client_send(cl, c, &seq));
    shoal_chunk_t *req = NULL, *resp = NULL;
    assert_ok(shoal_server_take(sv, &req, TH_SEC));
    assert_ok(shoal_server_loan_response(sv, req, 4, &resp));
    assert_ok(shoal_server_send(sv, resp));
    assert_ok(shoal_chunk_release(req));
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(w.rc, SHOAL_OK);
    assert_true(w.took_ns < 2 * TH_SEC);
    assert_ok(shoal_client_wait_ready(cl, 0)); /* still there */
    assert_ok(shoal_client_take(cl, &c, 0));
    assert_int_equal(shoal_chunk_sequence_id(c), seq);
    assert_ok(shoal_chunk_release(c));

    /* a signal handler that runs on the waiting thread cuts the wait short */
    struct sigaction sa, old;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_usr1; /* no SA_RESTART, as Python installs its handlers */
    sigemptyset(&sa.sa_mask);
    assert_int_equal(sigaction(SIGUSR1, &sa, &old), 0);
    waiter_t w2 = {.client = cl, .timeout_ns = 10 * TH_SEC};
    assert_int_equal(pthread_create(&th, NULL, wait_thread, &w2), 0);
    while (!atomic_load(&w2.started)) th_sleep_ms(1);
    th_sleep_ms(50);
    pthread_kill(th, SIGUSR1);
    assert_int_equal(pthread_join(th, NULL), 0);
    sigaction(SIGUSR1, &old, NULL);
    assert_int_equal(w2.rc, SHOAL_ERR_TIMEOUT);
    assert_true(w2.took_ns < 2 * TH_SEC);
    assert_contains(w2.detail, "signal");

    /* no server any more: a client's wait says so at once */
    shoal_server_destroy(sv);
    assert_rc(shoal_client_wait_ready(cl, 5 * TH_SEC), SHOAL_ERR_NO_SERVER);
    assert_rc(shoal_client_wait_ready(NULL, 0), SHOAL_ERR_INVALID_ARGUMENT);
    shoal_client_destroy(cl);
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_runtime_destroy(rt);
}

/* A subscriber's and a server's readiness, and the daemon's death. */
static void test_wait_ready_subscriber_server_and_death(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "ready2");
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    shoal_server_t *sv = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "ready2", NULL));
    assert_ok(shoal_subscriber_create(&sub, rt, "ready2", NULL));
    assert_ok(shoal_server_create(&sv, rt, "ready2", NULL));
    assert_rc(shoal_subscriber_wait_ready(sub, 0), SHOAL_ERR_TIMEOUT);
    assert_rc(shoal_server_wait_ready(sv, 10 * TH_MS), SHOAL_ERR_TIMEOUT);
    publish_byte(pub, 7);
    assert_ok(shoal_subscriber_wait_ready(sub, TH_SEC));
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_subscriber_take(sub, &c, 0));
    assert_ok(shoal_chunk_release(c));
    int64_t t0 = th_now_ns();
    th_daemon_kill(&fx->daemon);
    assert_rc(shoal_subscriber_wait_ready(sub, 10 * TH_SEC), SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_rc(shoal_server_wait_ready(sv, 10 * TH_SEC), SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_true(th_now_ns() - t0 < 2 * TH_SEC);
    shoal_runtime_destroy(rt);
    /* th_teardown stops a daemon; this one is gone: restart one for it */
    th_daemon_cleanup(&fx->daemon);
    th_daemon_start(&fx->daemon, NULL);
}

/* ---- sliced sends -------------------------------------------------------------- */

static void test_sliced_publish_keeps_the_chunk(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "slice");
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.full_policy = SHOAL_FULL_WAIT;
    po.send_timeout_ns = 10 * TH_SEC;
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *slow = NULL, *fast = NULL;
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.queue_capacity = 1;
    assert_ok(shoal_subscriber_create(&fast, rt, "slice", &so));
    assert_ok(shoal_subscriber_create(&slow, rt, "slice", &so));
    assert_ok(shoal_publisher_create(&pub, rt, "slice", &po));
    publish_byte(pub, 1);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_subscriber_take(fast, &c, 0)); /* fast has room, slow is full */
    assert_ok(shoal_chunk_release(c));

    shoal_chunk_t *loan = NULL;
    assert_ok(shoal_publisher_loan(pub, 1, &loan));
    *(unsigned char *)shoal_chunk_payload(loan) = 2;
    int64_t t0 = th_now_ns();
    assert_rc(shoal_publisher_publish_slice(pub, loan, 30 * TH_MS), SHOAL_ERR_BUSY);
    int64_t el = th_now_ns() - t0;
    assert_true(el >= 25 * TH_MS && el < 2 * TH_SEC);
    assert_contains(shoal_last_error_message(), "still the caller's");
    /* still ours: its payload and size are there */
    assert_int_equal(shoal_chunk_size(loan), 1);
    assert_rc(shoal_chunk_set_size(loan, 1), SHOAL_ERR_INVALID_ARGUMENT);
    assert_rc(shoal_publisher_publish_slice(pub, loan, 0), SHOAL_ERR_BUSY);
    /* the slow one makes room: the next slice finishes, and nobody got it twice */
    assert_ok(shoal_subscriber_take(slow, &c, 0));
    assert_int_equal(*(unsigned char *)shoal_chunk_payload(c), 1);
    assert_ok(shoal_chunk_release(c));
    assert_ok(shoal_publisher_publish_slice(pub, loan, 30 * TH_MS));
    assert_ok(shoal_subscriber_take(fast, &c, 0));
    assert_int_equal(*(unsigned char *)shoal_chunk_payload(c), 2);
    assert_ok(shoal_chunk_release(c));
    assert_rc(shoal_subscriber_take(fast, &c, 0), SHOAL_ERR_TIMEOUT);
    assert_ok(shoal_subscriber_take(slow, &c, 0));
    assert_int_equal(*(unsigned char *)shoal_chunk_payload(c), 2);
    assert_ok(shoal_chunk_release(c));

    /* giving up: a release after BUSY; the subscribers served keep theirs */
    publish_byte(pub, 3);                       /* both queues: 1 of 1 */
    assert_ok(shoal_subscriber_take(fast, &c, 0));
    assert_ok(shoal_chunk_release(c));
    assert_ok(shoal_publisher_loan(pub, 1, &loan));
    *(unsigned char *)shoal_chunk_payload(loan) = 4;
    assert_rc(shoal_publisher_publish_slice(pub, loan, 5 * TH_MS), SHOAL_ERR_BUSY);
    assert_ok(shoal_chunk_release(loan));
    if (shoal_subscriber_take(fast, &c, 0) == SHOAL_OK) { /* served before the slow one */
        assert_int_equal(*(unsigned char *)shoal_chunk_payload(c), 4);
        assert_ok(shoal_chunk_release(c));
    }
    assert_ok(shoal_subscriber_take(slow, &c, 0));
    assert_int_equal(*(unsigned char *)shoal_chunk_payload(c), 3);
    assert_ok(shoal_chunk_release(c));

    /* a slice < 0 is the plain publish: the send timeout bounds it */
    shoal_publisher_destroy(pub);
    po.send_timeout_ns = 50 * TH_MS;
    assert_ok(shoal_publisher_create(&pub, rt, "slice", &po));
    publish_byte(pub, 5);
    assert_ok(shoal_publisher_loan(pub, 1, &loan));
    assert_rc(shoal_publisher_publish_slice(pub, loan, -1), SHOAL_ERR_TIMEOUT);
    for (int i = 0; i < 2; i++) {
        shoal_subscriber_t *s = i ? slow : fast;
        assert_ok(shoal_subscriber_take(s, &c, 0));
        assert_ok(shoal_chunk_release(c));
    }
    shoal_publisher_destroy(pub);
    shoal_subscriber_destroy(slow);
    shoal_subscriber_destroy(fast);
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_runtime_destroy(rt);
}

static void test_sliced_request_and_response(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "slice-rr");
    shoal_client_options_t co;
    shoal_client_options_init(&co, SHOAL_CLIENT_OPTIONS_VERSION);
    co.full_policy = SHOAL_FULL_WAIT;
    co.send_timeout_ns = 10 * TH_SEC;
    co.queue_capacity = 1;
    shoal_server_options_t so;
    shoal_server_options_init(&so, SHOAL_SERVER_OPTIONS_VERSION);
    so.full_policy = SHOAL_FULL_WAIT;
    so.send_timeout_ns = 10 * TH_SEC;
    so.queue_capacity = 1;
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_server_create(&sv, rt, "slice-rr", &so));
    assert_ok(shoal_client_create(&cl, rt, "slice-rr", &co));
    shoal_chunk_t *c = NULL, *req = NULL;
    uint64_t seq1 = 0, seq2 = 0, again = 0;
    assert_ok(shoal_client_loan(cl, 1, &c));
    assert_ok(shoal_client_send_slice(cl, c, &seq1, 20 * TH_MS)); /* room: sent at once */
    assert_ok(shoal_client_loan(cl, 1, &c));
    assert_rc(shoal_client_send_slice(cl, c, &seq2, 20 * TH_MS), SHOAL_ERR_BUSY);
    assert_rc(shoal_client_send_slice(cl, c, &seq2, 0), SHOAL_ERR_BUSY);
    assert_ok(shoal_server_take(sv, &req, 0));
    assert_int_equal(shoal_chunk_sequence_id(req), seq1);
    assert_ok(shoal_client_send_slice(cl, c, &again, 20 * TH_MS));
    assert_int_equal(again, seq1 + 1); /* one sequence id, however many slices */

    /* the response side: the client's queue (1) is full with the first answer */
    shoal_chunk_t *resp = NULL, *req2 = NULL;
    assert_ok(shoal_server_loan_response(sv, req, 1, &resp));
    assert_ok(shoal_server_send_slice(sv, resp, 20 * TH_MS));
    assert_ok(shoal_chunk_release(req));
    assert_ok(shoal_server_take(sv, &req2, 0));
    assert_ok(shoal_server_loan_response(sv, req2, 1, &resp));
    assert_rc(shoal_server_send_slice(sv, resp, 20 * TH_MS), SHOAL_ERR_BUSY);
    assert_ok(shoal_client_take(cl, &c, 0));
    assert_int_equal(shoal_chunk_sequence_id(c), seq1);
    assert_ok(shoal_chunk_release(c));
    assert_ok(shoal_server_send_slice(sv, resp, 20 * TH_MS));
    assert_ok(shoal_client_take(cl, &c, 0));
    assert_int_equal(shoal_chunk_sequence_id(c), again);
    assert_ok(shoal_chunk_release(c));
    assert_ok(shoal_chunk_release(req2));
    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_runtime_destroy(rt);
}

/* ---- waitsets with many ports -------------------------------------------------- */

#define MANY 1000

static void test_waitset_with_a_thousand_ports(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "many");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "many/7", NULL));
    static shoal_subscriber_t *subs[MANY];
    char topic[32];
    for (int i = 0; i < MANY; i++) {
        snprintf(topic, sizeof topic, "many/%d", i);
        assert_ok(shoal_subscriber_create(&subs[i], rt, topic, NULL));
    }
    shoal_waitset_t *ws = NULL;
    assert_ok(shoal_waitset_create(&ws, rt));
    int64_t t0 = th_now_ns();
    for (int round = 0; round < 10; round++) {
        for (int i = 0; i < MANY; i++)
            assert_ok(shoal_waitset_attach_subscriber(ws, subs[i], (uint64_t)i * 7919 + 1));
        for (int i = 0; i < MANY; i += 2) /* every other one, in an order unlike attach's */
            assert_ok(shoal_waitset_detach(ws, (uint64_t)((i * 37) % MANY) * 7919 + 1));
        for (int i = 0; i < MANY; i++) {
            shoal_result_t rc = shoal_waitset_detach(ws, (uint64_t)i * 7919 + 1);
            assert_true(rc == SHOAL_OK || rc == SHOAL_ERR_NOT_FOUND);
        }
    }
    int64_t el = th_now_ns() - t0;
    print_message("10 x (attach %d, detach %d): %lld us\n", MANY, MANY, (long long)(el / 1000));
    assert_true(el < 5 * TH_SEC);
    for (int i = 0; i < MANY; i++)
        assert_ok(shoal_waitset_attach_subscriber(ws, subs[i], (uint64_t)i + 100));
    assert_rc(shoal_waitset_attach_subscriber(ws, subs[3], 103), SHOAL_ERR_INVALID_ARGUMENT);
    /* the tag lookup after many removals still finds each one */
    for (int i = 0; i < MANY; i += 3) assert_ok(shoal_waitset_detach(ws, (uint64_t)i + 100));
    assert_rc(shoal_waitset_detach(ws, 100), SHOAL_ERR_NOT_FOUND);
    publish_byte(pub, 1); /* to many/7: 7 % 3 != 0, still attached */
    uint64_t tags[4];
    size_t n = 0;
    assert_ok(shoal_waitset_wait(ws, tags, 4, &n, TH_SEC));
    assert_int_equal(n, 1);
    assert_int_equal(tags[0], 107);
    /* a closed port leaves its waitset at once, whatever its place */
    shoal_subscriber_destroy(subs[7]);
    subs[7] = NULL;
    assert_rc(shoal_waitset_detach(ws, 107), SHOAL_ERR_NOT_FOUND);
    assert_rc(shoal_waitset_wait(ws, tags, 4, &n, 0), SHOAL_ERR_TIMEOUT);
    t0 = th_now_ns();
    for (int i = 0; i < MANY; i++) shoal_subscriber_destroy(subs[i]);
    shoal_waitset_destroy(ws);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_wait_ready_overlaps_other_calls),
        TH_TEST(test_wait_ready_subscriber_server_and_death),
        TH_TEST(test_sliced_publish_keeps_the_chunk),
        TH_TEST(test_sliced_request_and_response),
        TH_TEST_CFG(test_waitset_with_a_thousand_ports, MANY_CONFIG),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
