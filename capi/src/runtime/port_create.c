/* Port creation and destruction: the options structs as the caller's
 * version has them, then the daemon's PORT_CREATE (runtime.c). */
#include <stdlib.h>

#include "runtime/abi.h"
#include "runtime/internal.h"

/* Options: the caller's layout version decides what is read and written
 * (runtime/abi.h); fields beyond it keep the defaults of *_OPTIONS_INIT. */
#define OPTIONS_ABI(name, T, EXTENTS, VER, INIT, init_fn)                                   \
    static const size_t name##_extent[] = EXTENTS;                                        \
    _Static_assert(sizeof name##_extent / sizeof name##_extent[0] == (VER) + 1,           \
                   #T ": one extent per version");                                       \
    static const abi_struct_t name##_abi = {                                              \
        #T, "initialise it with " #init_fn "(&opts, " #VER ") or " #INIT, VER,             \
        name##_extent};                                                                   \
    SHOAL_API shoal_result_t init_fn(T *o, uint32_t version) {                            \
        if (!o) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "opts is NULL");       \
        T d = INIT;                                                                       \
        return abi_write(&name##_abi, o, &d, version);                                    \
    }                                                                                     \
    static shoal_result_t name##_read(T *o, const T *opts) {                              \
        T d = INIT;                                                                       \
        *o = d;                                                                           \
        return opts ? abi_read(&name##_abi, o, opts) : SHOAL_OK;                          \
    }

OPTIONS_ABI(pub_opts, shoal_publisher_options_t, ABI_EXTENTS(shoal_publisher_options_t, send_timeout_ns),
            SHOAL_PUBLISHER_OPTIONS_VERSION, SHOAL_PUBLISHER_OPTIONS_INIT, shoal_publisher_options_init)
OPTIONS_ABI(sub_opts, shoal_subscriber_options_t,
            ABI_EXTENTS2(shoal_subscriber_options_t, history, ignore_own_process),
            SHOAL_SUBSCRIBER_OPTIONS_VERSION, SHOAL_SUBSCRIBER_OPTIONS_INIT,
            shoal_subscriber_options_init)
OPTIONS_ABI(cli_opts, shoal_client_options_t,
            ABI_EXTENTS2(shoal_client_options_t, send_timeout_ns, ignore_own_process),
            SHOAL_CLIENT_OPTIONS_VERSION, SHOAL_CLIENT_OPTIONS_INIT, shoal_client_options_init)
OPTIONS_ABI(srv_opts, shoal_server_options_t, ABI_EXTENTS(shoal_server_options_t, send_timeout_ns),
            SHOAL_SERVER_OPTIONS_VERSION, SHOAL_SERVER_OPTIONS_INIT, shoal_server_options_init)

/* ignore_own_process is a flag: other values stay free for later meanings
 * (and a caller's garbage there is caught, not taken as "on"). */
#define CHECK_IGNORE_OWN(o, type)                                                             \
    if ((o).ignore_own_process > 1)                                                           \
    return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,                                        \
                           type ".ignore_own_process is %u: it must be 0 or 1 (initialise "  \
                           "the struct with its _init() or INIT macro, then set 0 or 1)",    \
                           (o).ignore_own_process)

#ifdef SHOAL_ABI_TEST_V2
/* the test field of version 2 is read: 0xBAD is refused (tests/c/test_abi_versions.c) */
#define CHECK_TEST_V2(o)                                                                      \
    if ((o).test_v2 == 0xBAD) /* stays 0 unless the caller is v2 */                       \
    return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "test_v2 is 0xBAD")
#else
#define CHECK_TEST_V2(o) (void)0
#endif

#define CREATE_PORT(T, kind, cap, policy, hist, tmo, ign)                                     \
    do {                                                                                      \
        if (!out || !rt) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "NULL argument"); \
        *out = NULL;                                                                          \
        T *h = calloc(1, sizeof *h);                                                          \
        if (!h) return shoal_error_set(SHOAL_ERR_NO_MEMORY, "out of memory for a port");     \
        shoal_result_t rc = rt_port_open(rt, &h->b, kind, name, cap, policy, hist, tmo);    \
        if (rc != SHOAL_OK) {                                                                 \
            free(h);                                                                          \
            return rc;                                                                        \
        }                                                                                     \
        h->b.ignore_own = (ign) != 0;                                                         \
        *out = h;                                                                             \
        return SHOAL_OK;                                                                      \
    } while (0)

#define READ_OPTIONS(name, o)                                                                 \
    do {                                                                                      \
        if (out) *out = NULL;                                                                 \
        shoal_result_t orc = name##_read(&o, opts);                                           \
        if (orc != SHOAL_OK) return orc;                                                      \
        CHECK_TEST_V2(o);                                                                     \
    } while (0)

SHOAL_API shoal_result_t shoal_publisher_create(shoal_publisher_t **out, shoal_runtime_t *rt,
                                                const char *name,
                                                const shoal_publisher_options_t *opts) {
    shoal_publisher_options_t o;
    READ_OPTIONS(pub_opts, o);
    CREATE_PORT(shoal_publisher_t, SHOAL_PORT_PUBLISHER, 1, o.full_policy, o.history, o.send_timeout_ns, 0);
}

SHOAL_API shoal_result_t shoal_subscriber_create(shoal_subscriber_t **out, shoal_runtime_t *rt,
                                                 const char *name,
                                                 const shoal_subscriber_options_t *opts) {
    shoal_subscriber_options_t o;
    READ_OPTIONS(sub_opts, o);
    CHECK_IGNORE_OWN(o, "shoal_subscriber_options_t");
    CREATE_PORT(shoal_subscriber_t, SHOAL_PORT_SUBSCRIBER, o.queue_capacity, 0, o.history, 0, o.ignore_own_process);
}

SHOAL_API shoal_result_t shoal_client_create(shoal_client_t **out, shoal_runtime_t *rt,
                                             const char *name, const shoal_client_options_t *opts) {
    shoal_client_options_t o;
    READ_OPTIONS(cli_opts, o);
    CHECK_IGNORE_OWN(o, "shoal_client_options_t");
    CREATE_PORT(shoal_client_t, SHOAL_PORT_CLIENT, o.queue_capacity, o.full_policy, 0, o.send_timeout_ns, o.ignore_own_process);
}

SHOAL_API shoal_result_t shoal_server_create(shoal_server_t **out, shoal_runtime_t *rt,
                                             const char *name, const shoal_server_options_t *opts) {
    shoal_server_options_t o;
    READ_OPTIONS(srv_opts, o);
    CREATE_PORT(shoal_server_t, SHOAL_PORT_SERVER, o.queue_capacity, o.full_policy, 0, o.send_timeout_ns, 0);
}

static void destroy_port(port_base_t *b) {
    if (!b) return;
    rt_port_close(b);
    free(b);
}
SHOAL_API void shoal_publisher_destroy(shoal_publisher_t *p) { if (p) destroy_port(&p->b); }
SHOAL_API void shoal_subscriber_destroy(shoal_subscriber_t *p) { if (p) destroy_port(&p->b); }
SHOAL_API void shoal_client_destroy(shoal_client_t *p) { if (p) destroy_port(&p->b); }
SHOAL_API void shoal_server_destroy(shoal_server_t *p) { if (p) destroy_port(&p->b); }
