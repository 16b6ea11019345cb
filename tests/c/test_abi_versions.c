/* Versioned structs across library versions (issue: a stable ABI in fact).
 *
 * Built three times (tests/c/CMakeLists.txt):
 *   test_abi_v1_on_v2  frozen v1 header (tests/c/abi/v1), library with v2 structs
 *   test_abi_v2_on_v1  v2 header (-DSHOAL_ABI_TEST_V2), the normal (v1) library
 *   test_abi_v2_on_v2  v2 header, v2 library
 * LIB_V says which library it is linked with. A program built against an
 * older header must run unchanged on a newer library, which reads and writes
 * only the old layout's bytes (guard bytes after the struct prove it); one
 * built against a newer header than the library is refused with a message,
 * its struct untouched. The test field of v2 structs: options with
 * test_v2 == 0xBAD are refused by a v2 library, info calls set it to 0x5eed.
 *
 * "v1"/"v2" name the header and library builds. Subscriber and client
 * options are a version further: version 2 (ignore_own_process) is real, so
 * the v2 header's test field makes them version 3; the frozen header's are
 * version 1. A library refuses ignore_own_process > 1, so a guard word read
 * as that field is caught as well. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "harness.h"

#ifdef SHOAL_ABI_TEST_V2
#define HDR_V 2
#else
#define HDR_V 1
#endif
#ifndef LIB_V
#error "LIB_V must be 1 or 2"
#endif
#define WORKS (HDR_V <= LIB_V)

#define GUARD 0xBADu /* fills what follows a struct: a v2 library reading it as test_v2 refuses */

/* A struct followed by guard words, as a caller's stack would hold it. */
#define GUARDED(T) struct { T s; uint32_t guard[16]; }

static void fill_guard(uint32_t *g) {
    for (int i = 0; i < 16; i++) g[i] = GUARD;
}
static int guard_intact(const uint32_t *g) {
    for (int i = 0; i < 16; i++)
        if (g[i] != GUARD) return 0;
    return 1;
}

static void check_refused(shoal_result_t rc) {
    assert_int_equal(rc, SHOAL_ERR_INVALID_ARGUMENT);
    assert_contains(shoal_last_error_message(), "newer than this libshoal");
}

/* options_init of every kind: defaults written, nothing past the caller's
 * layout; a too new version leaves the struct as it was. */
#define CHECK_INIT(T, fn, VER, INIT, check_defaults)                                  \
    do {                                                                        \
        GUARDED(T) b;                                                           \
        memset(&b.s, 0x5A, sizeof b.s);                                         \
        fill_guard(b.guard);                                                    \
        shoal_result_t rc = fn(&b.s, VER);                                      \
        if (WORKS) {                                                            \
            assert_ok(rc);                                                      \
            assert_int_equal(b.s.version, VER);                                 \
            check_defaults;                                                     \
        } else {                                                                \
            check_refused(rc);                                                  \
            unsigned char x[sizeof b.s];                                        \
            memset(x, 0x5A, sizeof x);                                          \
            assert_memory_equal(&b.s, x, sizeof x);                             \
        }                                                                       \
        assert_true(guard_intact(b.guard));                                     \
        T m = INIT; /* the static initialiser holds the same defaults */        \
        b.s = m;                                                                \
        check_defaults;                                                         \
        assert_rc(fn(&b.s, 0), SHOAL_ERR_INVALID_ARGUMENT);                     \
        assert_contains(shoal_last_error_message(), "version is 0");            \
        assert_rc(fn(NULL, VER), SHOAL_ERR_INVALID_ARGUMENT);                   \
    } while (0)

#if HDR_V >= 2
#define IGNORE_OWN_DEFAULT assert_int_equal(b.s.ignore_own_process, 0)
#else
#define IGNORE_OWN_DEFAULT (void)0
#endif

static void test_options_init(void **state) {
    (void)state;
    CHECK_INIT(shoal_runtime_options_t, shoal_runtime_options_init, SHOAL_RUNTIME_OPTIONS_VERSION, SHOAL_RUNTIME_OPTIONS_INIT, {
        assert_null(b.s.domain);
        assert_null(b.s.runtime_dir);
        assert_int_equal(b.s.connect_timeout_ns, 0);
    });
    CHECK_INIT(shoal_publisher_options_t, shoal_publisher_options_init,
               SHOAL_PUBLISHER_OPTIONS_VERSION, SHOAL_PUBLISHER_OPTIONS_INIT, {
                   assert_int_equal(b.s.history, 0);
                   assert_int_equal(b.s.full_policy, SHOAL_FULL_DROP_OLDEST);
                   assert_int_equal(b.s.send_timeout_ns, 1000000000);
               });
    CHECK_INIT(shoal_subscriber_options_t, shoal_subscriber_options_init,
               SHOAL_SUBSCRIBER_OPTIONS_VERSION, SHOAL_SUBSCRIBER_OPTIONS_INIT, {
                   assert_int_equal(b.s.queue_capacity, 0);
                   assert_int_equal(b.s.history, 0);
                   IGNORE_OWN_DEFAULT;
               });
    CHECK_INIT(shoal_client_options_t, shoal_client_options_init, SHOAL_CLIENT_OPTIONS_VERSION, SHOAL_CLIENT_OPTIONS_INIT, {
        assert_int_equal(b.s.queue_capacity, 0);
        assert_int_equal(b.s.full_policy, SHOAL_FULL_REJECT);
        assert_int_equal(b.s.send_timeout_ns, 1000000000);
        IGNORE_OWN_DEFAULT;
    });
    CHECK_INIT(shoal_server_options_t, shoal_server_options_init, SHOAL_SERVER_OPTIONS_VERSION, SHOAL_SERVER_OPTIONS_INIT, {
        assert_int_equal(b.s.queue_capacity, 0);
        assert_int_equal(b.s.full_policy, SHOAL_FULL_REJECT);
        assert_int_equal(b.s.send_timeout_ns, 1000000000);
    });
}

static shoal_runtime_t *connect_rt(th_daemon_t *d, const char *name) {
    GUARDED(shoal_runtime_options_t) o;
    fill_guard(o.guard);
    shoal_runtime_options_t init = SHOAL_RUNTIME_OPTIONS_INIT;
    o.s = init;
    o.s.domain = d->domain;
    o.s.runtime_dir = d->runtime_dir;
    o.s.connect_timeout_ns = 5000000000LL;
    shoal_runtime_t *rt = NULL;
    shoal_result_t rc = shoal_runtime_create(&rt, name, &o.s);
    if (!WORKS) {
        check_refused(rc);
        assert_null(rt);
        /* the same program, saying it knows only version 1, works */
        o.s.version = 1;
    }
#if HDR_V >= 2
    if (WORKS) {
        o.s.test_v2 = GUARD; /* read by a v2 library */
        assert_rc(shoal_runtime_create(&rt, name, &o.s), SHOAL_ERR_INVALID_ARGUMENT);
        assert_contains(shoal_last_error_message(), "test_v2");
        o.s.test_v2 = 0;
    }
#endif
    assert_ok(shoal_runtime_create(&rt, name, &o.s));
    return rt;
}

/* Port options: a v1 caller's struct is read up to its end only (the guard
 * after it would be refused if read as test_v2); the fields it sets hold. */
static void test_create_with_options(void **state) {
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = connect_rt(&fx->daemon, "abi");

    GUARDED(shoal_subscriber_options_t) so;
    fill_guard(so.guard);
    shoal_subscriber_options_t sinit = SHOAL_SUBSCRIBER_OPTIONS_INIT;
    so.s = sinit;
    so.s.queue_capacity = 3;
    shoal_subscriber_t *sub = NULL;
    shoal_result_t rc = shoal_subscriber_create(&sub, rt, "abi/t", &so.s);
    if (!WORKS) {
        check_refused(rc);
        assert_null(sub);
        so.s.version = 1;
        rc = shoal_subscriber_create(&sub, rt, "abi/t", &so.s);
    }
    assert_ok(rc);

    GUARDED(shoal_publisher_options_t) po;
    fill_guard(po.guard);
    shoal_publisher_options_t pinit = SHOAL_PUBLISHER_OPTIONS_INIT;
    po.s = pinit;
    po.s.version = WORKS ? SHOAL_PUBLISHER_OPTIONS_VERSION : 1;
    po.s.full_policy = SHOAL_FULL_REJECT;
#if HDR_V >= 2
    if (WORKS) {
        shoal_publisher_t *bad = NULL;
        po.s.test_v2 = GUARD;
        assert_rc(shoal_publisher_create(&bad, rt, "abi/t", &po.s), SHOAL_ERR_INVALID_ARGUMENT);
        assert_null(bad);
        po.s.test_v2 = 0;
    }
#endif
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "abi/t", &po.s));

    /* REJECT was read: 3 fill the queue, the 4th is refused */
    for (int i = 0; i < 4; i++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_publisher_loan(pub, 8, &c));
        assert_rc(shoal_publisher_publish(pub, c), i < 3 ? SHOAL_OK : SHOAL_ERR_QUEUE_FULL);
    }

    shoal_client_options_t cinit = SHOAL_CLIENT_OPTIONS_INIT;
    shoal_server_options_t vinit = SHOAL_SERVER_OPTIONS_INIT;
    cinit.version = WORKS ? SHOAL_CLIENT_OPTIONS_VERSION : 1;
    vinit.version = WORKS ? SHOAL_SERVER_OPTIONS_VERSION : 1;
    cinit.queue_capacity = 2;
    vinit.queue_capacity = 5;
    shoal_client_t *cli = NULL;
    shoal_server_t *srv = NULL;
    assert_ok(shoal_client_create(&cli, rt, "abi/s", &cinit));
    assert_ok(shoal_server_create(&srv, rt, "abi/s", &vinit));

    /* what the library read shows in the port table */
    int seen = 0;
    for (uint32_t slot = 0; slot < shoal_runtime_port_slots(rt); slot++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        pi.version = WORKS ? SHOAL_PORT_INFO_VERSION : 1;
        if (shoal_runtime_port_info(rt, slot, &pi) != SHOAL_OK) continue;
        if (pi.kind == SHOAL_PORT_SUBSCRIBER) assert_int_equal(pi.queue_capacity, 3), seen++;
        if (pi.kind == SHOAL_PORT_CLIENT) assert_int_equal(pi.queue_capacity, 2), seen++;
        if (pi.kind == SHOAL_PORT_SERVER) assert_int_equal(pi.queue_capacity, 5), seen++;
    }
    assert_int_equal(seen, 3);
    shoal_runtime_destroy(rt);
}

/* Info calls write only the caller's layout; a v2 caller on a v2 library
 * gets the new field; a too new caller is refused, struct untouched. */
#define CHECK_INFO(T, VER, call, check)                                         \
    do {                                                                        \
        GUARDED(T) b;                                                           \
        memset(&b.s, 0x5A, sizeof b.s);                                         \
        b.s.version = VER;                                                      \
        fill_guard(b.guard);                                                    \
        shoal_result_t rc = call;                                               \
        if (WORKS) {                                                            \
            assert_ok(rc);                                                      \
            assert_int_equal(b.s.version, VER);                                 \
            check;                                                              \
        } else {                                                                \
            check_refused(rc);                                                  \
            assert_int_equal(b.s.version, VER);                                 \
            unsigned char x[sizeof b.s - sizeof(uint32_t)];                     \
            memset(x, 0x5A, sizeof x);                                          \
            assert_memory_equal((char *)&b.s + sizeof(uint32_t), x, sizeof x);  \
        }                                                                       \
        assert_true(guard_intact(b.guard));                                     \
        b.s.version = 0;                                                        \
        assert_rc(call, SHOAL_ERR_INVALID_ARGUMENT);                            \
        assert_contains(shoal_last_error_message(), "version is 0");            \
    } while (0)

#if HDR_V >= 2
#define V2_FIELD_SET assert_int_equal(b.s.test_v2, 0x5eed)
#else
#define V2_FIELD_SET (void)0
#endif

static void test_info(void **state) {
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = connect_rt(&fx->daemon, "abi-info");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "abi/info", NULL));
    uint32_t pslot = 0;
    for (; pslot < shoal_runtime_port_slots(rt); pslot++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        pi.version = 1;
        if (shoal_runtime_port_info(rt, pslot, &pi) == SHOAL_OK) break;
    }
    uint32_t rslot = 0;
    for (; rslot < shoal_runtime_process_slots(rt); rslot++) {
        shoal_process_info_t pr = SHOAL_PROCESS_INFO_INIT;
        pr.version = 1;
        if (shoal_runtime_process_info(rt, rslot, &pr) == SHOAL_OK) break;
    }
    assert_true(rslot < shoal_runtime_process_slots(rt));

    CHECK_INFO(shoal_pool_info_t, SHOAL_POOL_INFO_VERSION, shoal_runtime_pool_info(rt, 0, &b.s), {
        assert_true(b.s.chunk_count > 0);
        assert_true(b.s.chunk_size > 0);
        V2_FIELD_SET;
    });
    CHECK_INFO(shoal_port_info_t, SHOAL_PORT_INFO_VERSION,
               shoal_runtime_port_info(rt, pslot, &b.s), {
                   assert_int_equal(b.s.kind, SHOAL_PORT_PUBLISHER);
                   assert_string_equal(b.s.service, "abi/info");
                   V2_FIELD_SET;
               });
    CHECK_INFO(shoal_domain_info_t, SHOAL_DOMAIN_INFO_VERSION, shoal_runtime_domain_info(rt, &b.s), {
        assert_string_equal(b.s.domain, fx->daemon.domain);
        assert_true(b.s.waitsets_per_process > 0);
        V2_FIELD_SET;
    });
    CHECK_INFO(shoal_process_info_t, SHOAL_PROCESS_INFO_VERSION,
               shoal_runtime_process_info(rt, rslot, &b.s), {
                   assert_string_equal(b.s.name, "abi-info");
                   V2_FIELD_SET;
               });
    /* a free slot is NOT_FOUND, the struct untouched */
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    pi.version = 1;
    pi.chunk_count = 77;
    assert_rc(shoal_runtime_pool_info(rt, 9999, &pi), SHOAL_ERR_NOT_FOUND);
    assert_int_equal(pi.chunk_count, 77);
    shoal_runtime_destroy(rt);
}

static void publish_one(shoal_publisher_t *pub) {
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, 8, &c));
    assert_ok(shoal_publisher_publish(pub, c));
}

/* ignore_own_process, version 2 of subscriber and client options: a caller
 * passing version 1 gets 0 (its own samples and servers count) and nothing
 * past its layout is read or written; one passing version 2 gets what it
 * sets, from either library, and its test field (version 3) is not read. */
static void test_ignore_own_process(void **state) {
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = connect_rt(&fx->daemon, "abi-own");
    shoal_publisher_t *pub = NULL;
    shoal_server_t *srv = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "abi/own", NULL));
    assert_ok(shoal_server_create(&srv, rt, "abi/own", NULL));

    /* version 1, guard words where a later version's fields would be */
    GUARDED(shoal_subscriber_options_t) so;
    memset(&so, 0xFF, sizeof so);
    fill_guard(so.guard);
    so.s.version = 1;
    so.s.queue_capacity = 4;
    so.s.history = 0;
#if HDR_V >= 2
    so.s.ignore_own_process = GUARD;
    so.s.test_v2 = GUARD;
#endif
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "abi/own", &so.s));
    assert_true(guard_intact(so.guard));
    publish_one(pub);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_subscriber_take(sub, &c, 2000000000)); /* its own sample is not skipped */
    assert_ok(shoal_chunk_release(c));

    GUARDED(shoal_client_options_t) co;
    memset(&co, 0xFF, sizeof co);
    fill_guard(co.guard);
    co.s.version = 1;
    co.s.queue_capacity = 0;
    co.s.full_policy = SHOAL_FULL_REJECT;
    co.s.send_timeout_ns = 0;
#if HDR_V >= 2
    co.s.ignore_own_process = GUARD;
    co.s.test_v2 = GUARD;
#endif
    shoal_client_t *cli = NULL;
    assert_ok(shoal_client_create(&cli, rt, "abi/own", &co.s));
    assert_true(guard_intact(co.guard));
    assert_int_equal(shoal_client_server_count(cli), 1); /* its own server counts */

    /* init at version 1 writes no byte of version 2 */
    GUARDED(shoal_subscriber_options_t) si;
    memset(&si.s, 0x5A, sizeof si.s);
    fill_guard(si.guard);
    assert_ok(shoal_subscriber_options_init(&si.s, 1));
    assert_int_equal(si.s.version, 1);
    assert_int_equal(si.s.queue_capacity, 0);
#if HDR_V >= 2
    assert_int_equal(si.s.ignore_own_process, 0x5A5A5A5A);
    /* init at version 2 writes the field, not the test field after it */
    memset(&si.s, 0x5A, sizeof si.s);
    assert_ok(shoal_subscriber_options_init(&si.s, 2));
    assert_int_equal(si.s.version, 2);
    assert_int_equal(si.s.ignore_own_process, 0);
    assert_int_equal(si.s.test_v2, 0x5A5A5A5A);
#endif
    assert_true(guard_intact(si.guard));

#if HDR_V >= 2
    /* version 2 (what a current program passes) on either library */
    shoal_subscriber_options_t s2 = SHOAL_SUBSCRIBER_OPTIONS_INIT;
    s2.version = 2;
    s2.ignore_own_process = 2;
    shoal_subscriber_t *deaf = NULL;
    assert_rc(shoal_subscriber_create(&deaf, rt, "abi/own", &s2), SHOAL_ERR_INVALID_ARGUMENT);
    assert_contains(shoal_last_error_message(), "must be 0 or 1");
    s2.ignore_own_process = 1;
    s2.test_v2 = GUARD; /* version 3's field: a library must not read it here */
    assert_ok(shoal_subscriber_create(&deaf, rt, "abi/own", &s2));
    publish_one(pub);
    assert_rc(shoal_subscriber_take(deaf, &c, 50000000), SHOAL_ERR_TIMEOUT);

    shoal_client_options_t c2 = SHOAL_CLIENT_OPTIONS_INIT;
    c2.version = 2;
    c2.ignore_own_process = 1;
    c2.test_v2 = GUARD;
    shoal_client_t *cli2 = NULL;
    assert_ok(shoal_client_create(&cli2, rt, "abi/own", &c2));
    assert_int_equal(shoal_client_server_count(cli2), 0); /* only its own server */
    shoal_chunk_t *req = NULL;
    assert_ok(shoal_client_loan(cli2, 8, &req));
    assert_rc(shoal_client_send(cli2, req, NULL), SHOAL_ERR_NO_SERVER);
    assert_contains(shoal_last_error_message(), "ignore_own_process");
#endif
    shoal_runtime_destroy(rt);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_options_init),
        TH_TEST(test_create_with_options),
        TH_TEST(test_info),
        TH_TEST(test_ignore_own_process),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
