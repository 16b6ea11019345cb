/* Issue 12: ports that ignore their own process (what shoal-gateway needs so
 * that what it imports is never exported again). */
#include "harness.h"

#include <unistd.h>

static void publish_byte(shoal_publisher_t *pub, uint8_t v) {
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, 1, &c));
    *(uint8_t *)shoal_chunk_payload(c) = v;
    assert_ok(shoal_publisher_publish(pub, c));
}

typedef struct peer_ctx {
    th_daemon_t *d;
    th_chan_t go, done;
} peer_ctx_t;

/* Another process publishes 2 and 3 on "t". */
static int other_publisher(void *arg) {
    peer_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "other", &rt));
    shoal_publisher_t *pub = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "t", NULL));
    WCHECK(th_chan_recv(&x->go, 5000) == 'g');
    for (uint8_t v = 2; v <= 3; v++) {
        shoal_chunk_t *c = NULL;
        WCHECK_OK(shoal_publisher_loan(pub, 1, &c));
        *(uint8_t *)shoal_chunk_payload(c) = v;
        WCHECK_OK(shoal_publisher_publish(pub, c));
    }
    th_chan_send(&x->done, 'd');
    WCHECK(th_chan_recv(&x->go, 5000) == 'q');
    shoal_runtime_destroy(rt);
    return 0;
}

static void subscriber_skips_own_publications(void **state) {
    th_fixture_t *f = *state;
    shoal_runtime_t *rt = th_runtime(&f->daemon, "bridge");
    shoal_subscriber_options_t o;
    shoal_subscriber_options_init(&o, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    assert_int_equal(o.version, 2);
    assert_int_equal(o.ignore_own_process, 0);
    o.ignore_own_process = 1;
    shoal_subscriber_t *deaf = NULL, *plain = NULL;
    assert_ok(shoal_subscriber_create(&deaf, rt, "t", &o));
    assert_ok(shoal_subscriber_create(&plain, rt, "t", NULL));
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "t", NULL));
    peer_ctx_t x = {.d = &f->daemon};
    th_chan_open(&x.go);
    th_chan_open(&x.done);
    pid_t child = th_spawn(other_publisher, &x);
    publish_byte(pub, 1);
    th_chan_send(&x.go, 'g');
    assert_int_equal(th_chan_recv(&x.done, 5000), 'd');
    publish_byte(pub, 4);
    /* the plain subscriber sees everything, our own samples included */
    uint8_t want_plain[] = {1, 2, 3, 4}, want_deaf[] = {2, 3};
    for (size_t i = 0; i < sizeof want_plain; i++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_subscriber_take(plain, &c, 2 * TH_SEC));
        assert_int_equal(*(uint8_t *)shoal_chunk_payload(c), want_plain[i]);
        assert_ok(shoal_chunk_release(c));
    }
    for (size_t i = 0; i < sizeof want_deaf; i++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_subscriber_take(deaf, &c, 2 * TH_SEC));
        assert_int_equal(*(uint8_t *)shoal_chunk_payload(c), want_deaf[i]);
        assert_ok(shoal_chunk_release(c));
    }
    shoal_chunk_t *c = NULL;
    assert_rc(shoal_subscriber_take(deaf, &c, 50 * TH_MS), SHOAL_ERR_TIMEOUT);
    /* skipped samples are not counted as received and hold no chunk */
    shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
    assert_int_equal(th_find_port(rt, SHOAL_PORT_SUBSCRIBER, getpid(), "t", &pi), 0);
    th_chan_send(&x.go, 'q');
    assert_int_equal(th_join(child, 5000), 0);
    shoal_subscriber_destroy(plain);
    assert_int_equal(th_find_port(rt, SHOAL_PORT_SUBSCRIBER, getpid(), "t", &pi), 0);
    assert_int_equal(pi.received, 2);
    assert_int_equal(pi.held, 0);
    shoal_subscriber_destroy(deaf);
    shoal_publisher_destroy(pub);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    th_chan_close(&x.go);
    th_chan_close(&x.done);
    shoal_runtime_destroy(rt);
}

/* A version 1 options struct (the old, shorter layout) still works. */
static void version1_options_still_accepted(void **state) {
    th_fixture_t *f = *state;
    shoal_runtime_t *rt = th_runtime(&f->daemon, "old");
    struct { uint32_t version, queue_capacity, history; } v1 = {1, 4, 0};
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "t", (const shoal_subscriber_options_t *)&v1));
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "t", NULL));
    publish_byte(pub, 9);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_subscriber_take(sub, &c, 2 * TH_SEC)); /* own samples are not skipped */
    assert_ok(shoal_chunk_release(c));
    shoal_runtime_destroy(rt);
}

typedef struct srv_ctx {
    th_daemon_t *d;
    th_chan_t ready, quit;
} srv_ctx_t;

/* A server in another process answering with its pid's low byte + 100. */
static int other_server(void *arg) {
    srv_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "server", &rt));
    shoal_server_t *srv = NULL;
    WCHECK_OK(shoal_server_create(&srv, rt, "svc", NULL));
    th_chan_send(&x->ready, 'r');
    while (th_chan_poll(&x->quit) < 0) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        if (shoal_server_take(srv, &req, 20 * TH_MS) != SHOAL_OK) continue;
        WCHECK_OK(shoal_server_loan_response(srv, req, 1, &resp));
        *(uint8_t *)shoal_chunk_payload(resp) = 200;
        WCHECK_OK(shoal_server_send(srv, resp));
        WCHECK_OK(shoal_chunk_release(req));
    }
    shoal_runtime_destroy(rt);
    return 0;
}

static void client_skips_own_servers(void **state) {
    th_fixture_t *f = *state;
    shoal_runtime_t *rt = th_runtime(&f->daemon, "bridge");
    shoal_server_t *own = NULL;
    assert_ok(shoal_server_create(&own, rt, "svc", NULL));
    shoal_client_options_t o;
    shoal_client_options_init(&o, SHOAL_CLIENT_OPTIONS_VERSION);
    assert_int_equal(o.version, 2);
    o.ignore_own_process = 1;
    shoal_client_t *cli = NULL, *plain = NULL;
    assert_ok(shoal_client_create(&cli, rt, "svc", &o));
    assert_ok(shoal_client_create(&plain, rt, "svc", NULL));
    assert_int_equal(shoal_client_server_count(plain), 1);
    assert_int_equal(shoal_client_server_count(cli), 0);
    shoal_chunk_t *req = NULL;
    assert_ok(shoal_client_loan(cli, 1, &req));
    assert_rc(shoal_client_send(cli, req, NULL), SHOAL_ERR_NO_SERVER);
    assert_contains(shoal_last_error_message(), "svc");

    srv_ctx_t x = {.d = &f->daemon};
    th_chan_open(&x.ready);
    th_chan_open(&x.quit);
    pid_t child = th_spawn(other_server, &x);
    assert_int_equal(th_chan_recv(&x.ready, 5000), 'r');
    assert_int_equal(shoal_client_server_count(cli), 1);
    assert_int_equal(shoal_client_server_count(plain), 2);
    /* every request goes to the other process's server, never to ours */
    for (int i = 0; i < 20; i++) {
        shoal_chunk_t *resp = NULL;
        assert_ok(shoal_client_loan(cli, 1, &req));
        assert_ok(shoal_client_call(cli, req, &resp, 2 * TH_SEC));
        assert_int_equal(*(uint8_t *)shoal_chunk_payload(resp), 200);
        assert_ok(shoal_chunk_release(resp));
    }
    assert_rc(shoal_server_take(own, &req, 0), SHOAL_ERR_TIMEOUT);
    th_chan_send(&x.quit, 'q');
    assert_int_equal(th_join(child, 5000), 0);
    shoal_runtime_destroy(rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        TH_TEST(subscriber_skips_own_publications),
        TH_TEST(version1_options_still_accepted),
        TH_TEST(client_skips_own_servers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
