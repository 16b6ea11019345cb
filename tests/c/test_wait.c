/* Issue 3: timeouts, wake-ups across processes, waitsets and their fd. */
#include "harness.h"

#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

static void publish_u64(shoal_publisher_t *pub, uint64_t v)
{
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, sizeof v, &c));
    memcpy(shoal_chunk_payload(c), &v, sizeof v);
    assert_ok(shoal_publisher_publish(pub, c));
}

static void take_expect(shoal_subscriber_t *sub, uint64_t want)
{
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_subscriber_take(sub, &c, TH_SEC));
    uint64_t v;
    memcpy(&v, shoal_chunk_payload(c), sizeof v);
    assert_int_equal(v, want);
    assert_ok(shoal_chunk_release(c));
}

static void test_take_timeouts(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "timeouts");
    shoal_subscriber_t *sub = NULL;
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "quiet", NULL));
    assert_ok(shoal_server_create(&sv, rt, "quiet", NULL));
    assert_ok(shoal_client_create(&cl, rt, "quiet", NULL));
    shoal_chunk_t *c = NULL;

    /* 0: returns at once */
    int64_t t0 = th_now_ns();
    assert_rc(shoal_subscriber_take(sub, &c, SHOAL_TIMEOUT_POLL), SHOAL_ERR_TIMEOUT);
    assert_rc(shoal_server_take(sv, &c, SHOAL_TIMEOUT_POLL), SHOAL_ERR_TIMEOUT);
    assert_rc(shoal_client_take(cl, &c, SHOAL_TIMEOUT_POLL), SHOAL_ERR_TIMEOUT);
    assert_true(th_now_ns() - t0 < 10 * TH_MS);
    for (int i = 0; i < 1000; i++)
        assert_rc(shoal_subscriber_take(sub, &c, SHOAL_TIMEOUT_POLL), SHOAL_ERR_TIMEOUT);

    /* 50 ms: at least 50 ms, not much more */
    t0 = th_now_ns();
    assert_rc(shoal_subscriber_take(sub, &c, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    int64_t el = th_now_ns() - t0;
    assert_true(el >= 50 * TH_MS);
    assert_true(el < 500 * TH_MS);
    t0 = th_now_ns();
    assert_rc(shoal_server_take(sv, &c, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    el = th_now_ns() - t0;
    assert_true(el >= 50 * TH_MS && el < 500 * TH_MS);
    t0 = th_now_ns();
    assert_rc(shoal_client_take(cl, &c, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    el = th_now_ns() - t0;
    assert_true(el >= 50 * TH_MS && el < 500 * TH_MS);
    assert_rc(shoal_subscriber_take(sub, &c, 1), SHOAL_ERR_TIMEOUT);

    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
}

typedef struct sender_ctx {
    th_daemon_t *d;
    const char *topic;
    int delay_ms;
    th_chan_t ready;
    th_chan_t go;
    int request; /* send a request to service `topic` instead of publishing */
} sender_ctx_t;

static int delayed_sender(void *arg)
{
    sender_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "sender", &rt));
    shoal_publisher_t *pub = NULL;
    shoal_client_t *cl = NULL;
    if (x->request)
        WCHECK_OK(shoal_client_create(&cl, rt, x->topic, NULL));
    else
        WCHECK_OK(shoal_publisher_create(&pub, rt, x->topic, NULL));
    th_chan_send(&x->ready, 'r');
    WCHECK(th_chan_recv(&x->go, 10000) == 'g');
    th_sleep_ms(x->delay_ms);
    shoal_chunk_t *c = NULL;
    uint64_t v = 4242;
    if (x->request) {
        WCHECK_OK(shoal_client_loan(cl, sizeof v, &c));
        memcpy(shoal_chunk_payload(c), &v, sizeof v);
        WCHECK_OK(shoal_client_send(cl, c, NULL));
    } else {
        WCHECK_OK(shoal_publisher_loan(pub, sizeof v, &c));
        memcpy(shoal_chunk_payload(c), &v, sizeof v);
        WCHECK_OK(shoal_publisher_publish(pub, c));
    }
    /* stay until the parent has taken it */
    WCHECK(th_chan_recv(&x->go, 10000) == 'x');
    shoal_client_destroy(cl);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
    return 0;
}

static pid_t start_sender(sender_ctx_t *x, th_daemon_t *d, const char *topic, int delay_ms,
                          int request)
{
    x->d = d;
    x->topic = topic;
    x->delay_ms = delay_ms;
    x->request = request;
    th_chan_open(&x->ready);
    th_chan_open(&x->go);
    pid_t pid = th_spawn(delayed_sender, x);
    assert_true(pid > 0);
    assert_int_equal(th_chan_recv(&x->ready, 5000), 'r');
    return pid;
}

static void finish_sender(sender_ctx_t *x, pid_t pid)
{
    th_chan_send(&x->go, 'x');
    assert_int_equal(th_join(pid, 5000), 0);
    th_chan_close(&x->ready);
    th_chan_close(&x->go);
}

static void test_blocked_take_woken_by_other_process(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "sleeper");
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "wake", NULL));
    for (int variant = 0; variant < 2; variant++) {
        sender_ctx_t x;
        pid_t pid = start_sender(&x, &fx->daemon, "wake", 100, 0);
        th_chan_send(&x.go, 'g');
        int64_t t0 = th_now_ns();
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_subscriber_take(sub, &c, variant == 0 ? SHOAL_TIMEOUT_FOREVER
                                                               : 10 * TH_SEC));
        int64_t el = th_now_ns() - t0;
        assert_true(el >= 90 * TH_MS);
        assert_true(el < 2 * TH_SEC);
        uint64_t v;
        memcpy(&v, shoal_chunk_payload(c), sizeof v);
        assert_int_equal(v, 4242);
        assert_ok(shoal_chunk_release(c));
        finish_sender(&x, pid);
    }
    /* and a server blocked in take is woken by a client's request */
    shoal_server_t *sv = NULL;
    assert_ok(shoal_server_create(&sv, rt, "wake-svc", NULL));
    sender_ctx_t x;
    pid_t pid = start_sender(&x, &fx->daemon, "wake-svc", 100, 1);
    th_chan_send(&x.go, 'g');
    int64_t t0 = th_now_ns();
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_server_take(sv, &c, 10 * TH_SEC));
    assert_true(th_now_ns() - t0 < 2 * TH_SEC);
    assert_ok(shoal_chunk_release(c));
    finish_sender(&x, pid);
    shoal_server_destroy(sv);
    shoal_subscriber_destroy(sub);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
}

static int ready_has(const uint64_t *tags, size_t n, uint64_t tag)
{
    for (size_t i = 0; i < n; i++)
        if (tags[i] == tag)
            return 1;
    return 0;
}

static void test_waitset_several_ports(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "waitset");
    shoal_subscriber_t *sa = NULL, *sb = NULL;
    shoal_server_t *sv = NULL;
    shoal_client_t *cl = NULL;
    shoal_publisher_t *pa = NULL, *pb = NULL;
    assert_ok(shoal_subscriber_create(&sa, rt, "ws-a", NULL));
    assert_ok(shoal_subscriber_create(&sb, rt, "ws-b", NULL));
    assert_ok(shoal_server_create(&sv, rt, "ws-svc", NULL));
    assert_ok(shoal_client_create(&cl, rt, "ws-svc", NULL));
    assert_ok(shoal_publisher_create(&pa, rt, "ws-a", NULL));
    assert_ok(shoal_publisher_create(&pb, rt, "ws-b", NULL));

    shoal_waitset_t *ws = NULL;
    assert_ok(shoal_waitset_create(&ws, rt));
    assert_ok(shoal_waitset_attach_subscriber(ws, sa, 1));
    assert_ok(shoal_waitset_attach_subscriber(ws, sb, 2));
    assert_ok(shoal_waitset_attach_server(ws, sv, 3));
    assert_ok(shoal_waitset_attach_client(ws, cl, 4));
    /* a port on one waitset at a time; tags unique */
    shoal_waitset_t *ws2 = NULL;
    assert_ok(shoal_waitset_create(&ws2, rt));
    assert_true(shoal_waitset_attach_subscriber(ws2, sa, 9) != SHOAL_OK);
    shoal_waitset_destroy(ws2);

    uint64_t tags[8];
    size_t n = 99;
    assert_rc(shoal_waitset_wait(ws, tags, 8, &n, SHOAL_TIMEOUT_POLL), SHOAL_ERR_TIMEOUT);
    int64_t t0 = th_now_ns();
    assert_rc(shoal_waitset_wait(ws, tags, 8, &n, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    int64_t el = th_now_ns() - t0;
    assert_true(el >= 50 * TH_MS && el < 500 * TH_MS);

    publish_u64(pb, 7);
    assert_ok(shoal_waitset_wait(ws, tags, 8, &n, TH_SEC));
    assert_int_equal(n, 1);
    assert_int_equal(tags[0], 2);
    /* still ready until taken (level-triggered) */
    assert_ok(shoal_waitset_wait(ws, tags, 8, &n, 0));
    assert_int_equal(n, 1);
    take_expect(sb, 7);
    assert_rc(shoal_waitset_wait(ws, tags, 8, &n, 0), SHOAL_ERR_TIMEOUT);

    /* two at once, then request and response */
    publish_u64(pa, 1);
    publish_u64(pb, 2);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_client_loan(cl, 8, &c));
    assert_ok(shoal_client_send(cl, c, NULL));
    assert_ok(shoal_waitset_wait(ws, tags, 8, &n, TH_SEC));
    assert_int_equal(n, 3);
    assert_true(ready_has(tags, n, 1) && ready_has(tags, n, 2) && ready_has(tags, n, 3));
    /* capacity smaller than ready ports */
    assert_ok(shoal_waitset_wait(ws, tags, 1, &n, 0));
    assert_int_equal(n, 1);
    take_expect(sa, 1);
    take_expect(sb, 2);
    shoal_chunk_t *req = NULL, *resp = NULL;
    assert_ok(shoal_server_take(sv, &req, 0));
    assert_ok(shoal_server_loan_response(sv, req, 8, &resp));
    assert_ok(shoal_server_send(sv, resp));
    assert_ok(shoal_chunk_release(req));
    assert_ok(shoal_waitset_wait(ws, tags, 8, &n, TH_SEC));
    assert_int_equal(n, 1);
    assert_int_equal(tags[0], 4);
    assert_ok(shoal_client_take(cl, &resp, 0));
    assert_ok(shoal_chunk_release(resp));

    /* detach: no longer reported */
    assert_ok(shoal_waitset_detach(ws, 1));
    assert_true(shoal_waitset_detach(ws, 1) != SHOAL_OK);
    publish_u64(pa, 3);
    assert_rc(shoal_waitset_wait(ws, tags, 8, &n, 20 * TH_MS), SHOAL_ERR_TIMEOUT);
    take_expect(sa, 3);

    shoal_waitset_destroy(ws);
    shoal_publisher_destroy(pa);
    shoal_publisher_destroy(pb);
    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    shoal_subscriber_destroy(sa);
    shoal_subscriber_destroy(sb);
    assert_int_equal(th_pools_in_use(rt), 0);
    shoal_runtime_destroy(rt);
}

static void test_waitset_woken_by_other_process(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "ws-sleeper");
    shoal_subscriber_t *sa = NULL, *sb = NULL;
    assert_ok(shoal_subscriber_create(&sa, rt, "wsx-a", NULL));
    assert_ok(shoal_subscriber_create(&sb, rt, "wsx-b", NULL));
    shoal_waitset_t *ws = NULL;
    assert_ok(shoal_waitset_create(&ws, rt));
    assert_ok(shoal_waitset_attach_subscriber(ws, sa, 10));
    assert_ok(shoal_waitset_attach_subscriber(ws, sb, 20));
    sender_ctx_t x;
    pid_t pid = start_sender(&x, &fx->daemon, "wsx-b", 100, 0);
    th_chan_send(&x.go, 'g');
    uint64_t tags[4];
    size_t n = 0;
    int64_t t0 = th_now_ns();
    assert_ok(shoal_waitset_wait(ws, tags, 4, &n, SHOAL_TIMEOUT_FOREVER));
    int64_t el = th_now_ns() - t0;
    assert_true(el >= 90 * TH_MS && el < 2 * TH_SEC);
    assert_int_equal(n, 1);
    assert_int_equal(tags[0], 20);
    take_expect(sb, 4242);
    finish_sender(&x, pid);
    shoal_waitset_destroy(ws);
    shoal_subscriber_destroy(sa);
    shoal_subscriber_destroy(sb);
    shoal_runtime_destroy(rt);
}

static int fd_readable(int fd, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    int r = poll(&p, 1, timeout_ms);
    return r > 0 && (p.revents & POLLIN);
}

static void test_waitset_fd(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "fd");
    shoal_subscriber_t *sub = NULL;
    shoal_server_t *sv = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "fd-topic", NULL));
    assert_ok(shoal_server_create(&sv, rt, "fd-svc", NULL));
    shoal_waitset_t *ws = NULL;
    assert_ok(shoal_waitset_create(&ws, rt));
    assert_ok(shoal_waitset_attach_subscriber(ws, sub, 5));
    assert_ok(shoal_waitset_attach_server(ws, sv, 6));
    int fd = -1;
    assert_ok(shoal_waitset_fd(ws, &fd));
    assert_true(fd >= 0);
    int fd2 = -1;
    assert_ok(shoal_waitset_fd(ws, &fd2));
    assert_int_equal(fd, fd2);
    assert_false(fd_readable(fd, 0));
    assert_false(fd_readable(fd, 30));

    for (int round = 0; round < 3; round++) {
        sender_ctx_t x;
        int request = round == 1;
        pid_t pid = start_sender(&x, &fx->daemon, request ? "fd-svc" : "fd-topic", 50,
                                 request);
        th_chan_send(&x.go, 'g');
        int64_t t0 = th_now_ns();
        assert_true(fd_readable(fd, 3000));
        assert_true(th_now_ns() - t0 < 2 * TH_SEC);
        uint64_t tags[4];
        size_t n = 0;
        assert_ok(shoal_waitset_wait(ws, tags, 4, &n, 0));
        assert_int_equal(n, 1);
        assert_int_equal(tags[0], request ? 6 : 5);
        shoal_chunk_t *c = NULL;
        if (request)
            assert_ok(shoal_server_take(sv, &c, 0));
        else
            assert_ok(shoal_subscriber_take(sub, &c, 0));
        assert_ok(shoal_chunk_release(c));
        /* all taken: after a wait that finds nothing, the fd is quiet */
        assert_rc(shoal_waitset_wait(ws, tags, 4, &n, 0), SHOAL_ERR_TIMEOUT);
        assert_false(fd_readable(fd, 0));
        finish_sender(&x, pid);
    }
    /* data already there when polled: readable at once */
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "fd-topic", NULL));
    publish_u64(pub, 1);
    assert_true(fd_readable(fd, 1000));
    take_expect(sub, 1);
    shoal_publisher_destroy(pub);
    shoal_waitset_destroy(ws);
    shoal_server_destroy(sv);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
}

static int64_t thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * TH_SEC + ts.tv_nsec;
}

/* Waits sleep in the kernel: a 300 ms take or waitset wait costs (almost) no
 * CPU time of the waiting thread. */
/* A runtime destroyed with a waitset (and its fd thread) still alive takes the
 * waitset down first: no thread is left reading unmapped memory (ASan run). */
static void test_runtime_destroy_takes_waitsets_along(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "ws-left");
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "ws-left", NULL));
    shoal_waitset_t *ws = NULL;
    assert_ok(shoal_waitset_create(&ws, rt));
    assert_ok(shoal_waitset_attach_subscriber(ws, sub, 1));
    int fd = -1;
    assert_ok(shoal_waitset_fd(ws, &fd));
    th_sleep_ms(20);
    shoal_runtime_destroy(rt); /* ws and sub are gone with it */
    shoal_runtime_t *check = th_runtime(&fx->daemon, "ws-check");
    assert_int_equal(th_port_count(check, 0, 0, NULL), 0);
    shoal_runtime_destroy(check);
}

static void test_waits_do_not_spin(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "sleepy");
    shoal_subscriber_t *sub = NULL;
    shoal_client_t *cl = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "idle", NULL));
    shoal_server_t *sv = NULL; /* a client with no server at all gets NO_SERVER */
    assert_ok(shoal_server_create(&sv, rt, "idle", NULL));
    assert_ok(shoal_client_create(&cl, rt, "idle", NULL));
    shoal_chunk_t *c = NULL;
    int64_t cpu0 = thread_cpu_ns();
    assert_rc(shoal_subscriber_take(sub, &c, 300 * TH_MS), SHOAL_ERR_TIMEOUT);
    int64_t cpu = thread_cpu_ns() - cpu0;
    if (cpu > 50 * TH_MS)
        print_error("take used %lld ms of CPU in 300 ms\n", (long long)(cpu / TH_MS));
    assert_true(cpu <= 50 * TH_MS);
    cpu0 = thread_cpu_ns();
    assert_rc(shoal_client_take(cl, &c, 300 * TH_MS), SHOAL_ERR_TIMEOUT);
    assert_true(thread_cpu_ns() - cpu0 <= 50 * TH_MS);
    shoal_waitset_t *ws = NULL;
    assert_ok(shoal_waitset_create(&ws, rt));
    assert_ok(shoal_waitset_attach_subscriber(ws, sub, 1));
    uint64_t tags[2];
    size_t n;
    cpu0 = thread_cpu_ns();
    assert_rc(shoal_waitset_wait(ws, tags, 2, &n, 300 * TH_MS), SHOAL_ERR_TIMEOUT);
    assert_true(thread_cpu_ns() - cpu0 <= 50 * TH_MS);
    shoal_waitset_destroy(ws);
    shoal_client_destroy(cl);
    shoal_server_destroy(sv);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_take_timeouts),
        TH_TEST(test_blocked_take_woken_by_other_process),
        TH_TEST(test_waitset_several_ports),
        TH_TEST(test_waitset_woken_by_other_process),
        TH_TEST(test_waitset_fd),
        TH_TEST(test_waits_do_not_spin),
        TH_TEST(test_runtime_destroy_takes_waitsets_along),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
