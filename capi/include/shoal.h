/*
 * shoal.h - zero-copy inter-process communication over shared memory.
 *
 * The one public header of libshoal. Everything here is the stable C ABI; every
 * other language binds to it.
 *
 * Conventions
 *  - Handles are opaque and created/destroyed by the library.
 *  - Every function that can fail returns a shoal_result_t. shoal_strerror()
 *    names the code; shoal_last_error_message() gives a per-thread detail
 *    message (which limit, which pool, what value, how to change it).
 *  - Versioned structs: every options and info struct starts with a
 *    `version` field naming the layout the caller was compiled against
 *    (SHOAL_*_VERSION of the header it included). The library reads and
 *    writes only the fields of that version, so a program built against an
 *    older shoal.h runs unchanged on a newer libshoal; a struct version newer
 *    than the library knows is refused with SHOAL_ERR_INVALID_ARGUMENT (the
 *    message names both versions). Options: fill them with
 *    shoal_*_options_init(&opts, SHOAL_*_OPTIONS_VERSION) or the
 *    SHOAL_*_OPTIONS_INIT initializer, then set fields; NULL means defaults.
 *    Info structs: set `version` (or use SHOAL_*_INFO_INIT) before the call.
 *  - Results: every function that can fail returns a shoal_result_t and,
 *    unless its comment says otherwise, on failure leaves *out set to NULL
 *    (handles) or untouched (info structs); nothing is allocated or held
 *    after a failure.
 *  - Timeouts are nanoseconds: SHOAL_TIMEOUT_POLL (0) never waits,
 *    SHOAL_TIMEOUT_FOREVER (-1) waits without bound.
 *  - Chunk ownership: a chunk returned by a loan or a take is owned by the
 *    caller until it is sent, published or released. After a successful send
 *    or publish the library owns it and the handle is invalid. After a FAILED
 *    send/publish the library has released the chunk too (nothing to clean up),
 *    so every chunk handle is consumed by exactly one of send/publish/release.
 *
 * Thread safety
 *  - shoal_runtime_*, the create and destroy functions of ports and
 *    waitsets, the introspection calls and shoal_version/strerror: safe from
 *    any thread.
 *  - One port (publisher, subscriber, client, server, waitset) must be used
 *    by one thread at a time; different ports may be used concurrently.
 *    Destroying a port must not overlap other calls on that port.
 *  - A chunk belongs to its port: shoal_chunk_* calls (release above all)
 *    count as uses of that port and must not overlap other calls on it.
 *  - Exception: shoal_subscriber/client/server_wait_ready() may run on any
 *    number of threads at once with every other call on the same port
 *    (take, loan, send, release, ...), but not with its destroy.
 *  - A waitset's attach and detach may overlap a shoal_waitset_wait() of
 *    another thread on the same waitset (not its destroy).
 *  - shoal_last_error_message() is per thread.
 *  - Handles belong to the process that made them: after fork() the child
 *    creates its own runtime and never uses the parent's handles.
 */
#ifndef SHOAL_H
#define SHOAL_H

#include <stddef.h>
#include <stdint.h>

#ifndef SHOAL_API
#if defined(SHOAL_BUILDING_LIBRARY)
#define SHOAL_API __attribute__((visibility("default")))
#else
#define SHOAL_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ---- version --------------------------------------------------------- */

/* The one version source of the project: CMake reads its project version
 * (hence the soname, pkg-config file and CMake package) from these three
 * lines, the Python package reads them too, and shoal_version() reports
 * them. A test checks that Cargo.toml agrees. */
#define SHOAL_VERSION_MAJOR 0
#define SHOAL_VERSION_MINOR 2
#define SHOAL_VERSION_PATCH 0
#define SHOAL_VERSION_STR_(x) #x
#define SHOAL_VERSION_XSTR_(x) SHOAL_VERSION_STR_(x)
/* "0.2.0": the version of the header a program was compiled against. */
#define SHOAL_VERSION_STRING                                                  \
    SHOAL_VERSION_XSTR_(SHOAL_VERSION_MAJOR) "." SHOAL_VERSION_XSTR_(SHOAL_VERSION_MINOR) "." \
    SHOAL_VERSION_XSTR_(SHOAL_VERSION_PATCH)

/* Bumped on any change of the shared-memory layout or daemon protocol; a
 * process and a daemon with different ABI versions refuse each other
 * (SHOAL_ERR_VERSION_MISMATCH). Independent of the struct versions below. */
enum { SHOAL_ABI_VERSION = 1 };

/* The version of the library actually loaded ("0.2.0"); may differ from
 * SHOAL_VERSION_STRING when a program runs against a newer libshoal. Never
 * NULL, static storage. */
SHOAL_API const char *shoal_version(void);
/* SHOAL_ABI_VERSION of the library actually loaded. */
SHOAL_API uint32_t shoal_abi_version(void);

/* ---- results ---------------------------------------------------------- */

typedef enum shoal_result {
    SHOAL_OK = 0,
    SHOAL_ERR_INVALID_ARGUMENT = 1, /* a NULL handle, bad name, bad size ...    */
    SHOAL_ERR_TIMEOUT = 2,          /* nothing arrived within the timeout       */
    SHOAL_ERR_POOL_EXHAUSTED = 3,   /* the fitting pool has no free chunk       */
    SHOAL_ERR_CHUNK_TOO_LARGE = 4,  /* larger than every configured pool        */
    SHOAL_ERR_PORT_LIMIT = 5,       /* publishers/subscribers/... limit reached */
    SHOAL_ERR_HELD_LIMIT = 6,       /* a port holds limits.chunks_per_port      */
    SHOAL_ERR_QUEUE_FULL = 7,       /* receiver queue full, policy REJECT/WAIT  */
    SHOAL_ERR_DAEMON_UNAVAILABLE = 8, /* no shoald for the domain, or it died   */
    SHOAL_ERR_VERSION_MISMATCH = 9, /* daemon and library SHOAL_ABI_VERSION differ */
    SHOAL_ERR_PERMISSION = 10,      /* credentials refused: domain or [access] rule */
    SHOAL_ERR_NO_SERVER = 11,       /* no server offers the service             */
    SHOAL_ERR_SERVER_GONE = 12,     /* the server holding the request died      */
    SHOAL_ERR_CLIENT_GONE = 13,     /* the requesting client no longer exists   */
    SHOAL_ERR_CORRUPT = 14,         /* shared memory failed a bounds check      */
    SHOAL_ERR_NO_MEMORY = 15,       /* local allocation failed                  */
    SHOAL_ERR_SYSTEM = 16,          /* a system call failed (errno in message)  */
    /* 17 was SHOAL_ERR_CONFIG, never returned by the library: retired, not reused */
    SHOAL_ERR_WRONG_PORT = 18,      /* chunk used with a port that does not own it */
    SHOAL_ERR_PROCESS_LIMIT = 19,   /* limits.processes reached                 */
    SHOAL_ERR_SERVICE_LIMIT = 20,   /* limits.services reached                  */
    SHOAL_ERR_ALREADY_EXISTS = 21,  /* e.g. a daemon already runs on the domain */
    SHOAL_ERR_NOT_FOUND = 22,       /* no such entry: a free or out-of-range slot in
                                     * an info call, an unknown waitset tag */
    SHOAL_ERR_BUSY = 23             /* a sliced send stopped waiting; chunk still yours */
} shoal_result_t;

/* Static name and one-line meaning of a result code; never NULL. */
SHOAL_API const char *shoal_strerror(shoal_result_t result);

/* Detail of the last failure on this thread (empty string if none). The
 * pointer stays valid until the next shoal call on this thread. */
SHOAL_API const char *shoal_last_error_message(void);

/* ---- timeouts ---------------------------------------------------------- */

enum { SHOAL_TIMEOUT_POLL = 0, SHOAL_TIMEOUT_FOREVER = -1 };

/* ---- handles ------------------------------------------------------------ */

typedef struct shoal_runtime shoal_runtime_t;
typedef struct shoal_publisher shoal_publisher_t;
typedef struct shoal_subscriber shoal_subscriber_t;
typedef struct shoal_client shoal_client_t;
typedef struct shoal_server shoal_server_t;
typedef struct shoal_waitset shoal_waitset_t;
/* A loaned or taken chunk. Owned by the caller between loan/take and
 * send/publish/release; the memory of the handle belongs to its port. */
typedef struct shoal_chunk shoal_chunk_t;

/* ---- runtime: one per process and domain -------------------------------- */

/* Test-only: -DSHOAL_ABI_TEST_V2 builds the next version of every versioned
 * struct (one extra trailing field, test_v2) for tests/c/test_abi_versions.c:
 * version 2 of the structs still at 1, version 3 of those at 2 (subscriber
 * and client options). */
#ifdef SHOAL_ABI_TEST_V2
#define SHOAL_STRUCT_VERSION_ 2
#define SHOAL_STRUCT_VERSION_2_ 3
#else
#define SHOAL_STRUCT_VERSION_ 1
#define SHOAL_STRUCT_VERSION_2_ 2
#endif

enum { SHOAL_RUNTIME_OPTIONS_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_runtime_options {
    uint32_t version; /* SHOAL_RUNTIME_OPTIONS_VERSION */
    /* Domain name; NULL means $SHOAL_DOMAIN, else "default". */
    const char *domain;
    /* Directory holding the daemon sockets; NULL means $SHOAL_RUNTIME_DIR,
     * else /tmp/shoal-<uid>. */
    const char *runtime_dir;
    /* How long to keep retrying the connection while the daemon starts
     * (0 = one attempt, SHOAL_TIMEOUT_FOREVER = until it is there). A
     * positive value bounds the whole registration, the daemon's answer
     * included; with 0 or FOREVER an attempt that reached a daemon ends
     * after 10 s at most (SHOAL_ERR_TIMEOUT). Default 0. */
    int64_t connect_timeout_ns;
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_runtime_options_t;
#define SHOAL_RUNTIME_OPTIONS_INIT {SHOAL_RUNTIME_OPTIONS_VERSION, NULL, NULL, 0}

/* Fills *opts with the defaults of layout `version` (pass
 * SHOAL_RUNTIME_OPTIONS_VERSION) and writes no byte beyond that layout.
 * SHOAL_ERR_INVALID_ARGUMENT: opts NULL, or version 0 or newer than this
 * library (*opts untouched). The same holds for every *_options_init. */
SHOAL_API shoal_result_t shoal_runtime_options_init(shoal_runtime_options_t *opts,
                                                    uint32_t version);

/* Registers this process with the daemon of the domain. `name` identifies
 * the process in `shoal` listings (1..63 printable characters); opts NULL
 * means defaults. Results: SHOAL_ERR_INVALID_ARGUMENT (name, opts),
 * DAEMON_UNAVAILABLE (no daemon, or it went away while registering; the
 * message says which and how to start one), TIMEOUT (connect_timeout_ns
 * passed), PERMISSION (the daemon refused this uid), VERSION_MISMATCH,
 * PROCESS_LIMIT, CORRUPT (the daemon's layout failed a check), SYSTEM,
 * NO_MEMORY. *out is NULL on failure. */
SHOAL_API shoal_result_t shoal_runtime_create(shoal_runtime_t **out, const char *name,
                                              const shoal_runtime_options_t *opts);
/* Destroys the runtime and every port and waitset still open on it (their
 * chunks are returned; their handles become invalid). NULL is ignored.
 * Must not overlap any other call on the runtime's ports. */
SHOAL_API void shoal_runtime_destroy(shoal_runtime_t *rt);

/* Domain the runtime is registered with (valid while the runtime lives). */
SHOAL_API const char *shoal_runtime_domain(const shoal_runtime_t *rt);

/* ---- introspection (reads shared memory; any thread) --------------------- */

/* Pools, ports and processes are listed the same way: a slot count, then
 * *_info(rt, i, &info) for i in 0..count-1, skipping SHOAL_ERR_NOT_FOUND
 * (a free slot; pools have none). Every *_info call returns
 * SHOAL_ERR_INVALID_ARGUMENT for a NULL argument or an unknown
 * info->version, NOT_FOUND for a free or out-of-range slot, and leaves
 * *info untouched on failure. Figures are a snapshot of counters other
 * processes change concurrently. */

enum { SHOAL_POOL_INFO_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_pool_info {
    uint32_t version;      /* set by the caller: SHOAL_POOL_INFO_VERSION */
    uint32_t chunk_count;
    uint64_t chunk_size;   /* payload bytes per chunk */
    uint32_t in_use;       /* chunks currently allocated */
    uint32_t high_water;   /* most chunks ever in use at once */
    uint64_t alloc_failures;
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_pool_info_t;
#define SHOAL_POOL_INFO_INIT {SHOAL_POOL_INFO_VERSION, 0, 0, 0, 0, 0}

/* Number of pools (fixed for the daemon's life). 0 for NULL. */
SHOAL_API uint32_t shoal_runtime_pool_count(const shoal_runtime_t *rt);
SHOAL_API shoal_result_t shoal_runtime_pool_info(const shoal_runtime_t *rt, uint32_t index,
                                                 shoal_pool_info_t *info);

typedef enum shoal_port_kind {
    SHOAL_PORT_PUBLISHER = 1,
    SHOAL_PORT_SUBSCRIBER = 2,
    SHOAL_PORT_CLIENT = 3,
    SHOAL_PORT_SERVER = 4
} shoal_port_kind_t;

enum { SHOAL_PORT_INFO_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_port_info {
    uint32_t version;       /* set by the caller: SHOAL_PORT_INFO_VERSION */
    shoal_port_kind_t kind;
    uint32_t id;            /* slot index within its kind */
    int32_t pid;            /* owning process */
    uint32_t held;          /* chunks the port's user holds (loaned or taken) */
    uint32_t queued;        /* chunks waiting in its receive queue */
    uint32_t queue_capacity;
    uint32_t reserved;      /* 0 */
    uint64_t sent;          /* chunks sent/published */
    uint64_t received;      /* chunks taken */
    uint64_t dropped;       /* chunks dropped by the queue-full policy */
    uint64_t stale;         /* stale responses released by the call helper */
    char service[128];
    char process[64];
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_port_info_t;
#define SHOAL_PORT_INFO_INIT {SHOAL_PORT_INFO_VERSION, SHOAL_PORT_PUBLISHER, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", ""}

/* Number of port slots of all kinds (live or not). 0 for NULL. */
SHOAL_API uint32_t shoal_runtime_port_slots(const shoal_runtime_t *rt);
SHOAL_API shoal_result_t shoal_runtime_port_info(const shoal_runtime_t *rt, uint32_t slot,
                                                 shoal_port_info_t *info);

enum { SHOAL_PROCESS_INFO_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_process_info {
    uint32_t version;       /* set by the caller: SHOAL_PROCESS_INFO_VERSION */
    int32_t pid;
    uint32_t uid;
    char name[64];
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_process_info_t;
#define SHOAL_PROCESS_INFO_INIT {SHOAL_PROCESS_INFO_VERSION, 0, 0, ""}

/* Number of process slots (limits.processes). 0 for NULL. */
SHOAL_API uint32_t shoal_runtime_process_slots(const shoal_runtime_t *rt);
SHOAL_API shoal_result_t shoal_runtime_process_info(const shoal_runtime_t *rt, uint32_t slot,
                                                    shoal_process_info_t *info);

/* The daemon's limits and where they come from. */
enum { SHOAL_DOMAIN_INFO_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_domain_info {
    uint32_t version;         /* set by the caller: SHOAL_DOMAIN_INFO_VERSION */
    int32_t daemon_pid;
    uint32_t processes;       /* limits.processes */
    uint32_t publishers;      /* limits.publishers */
    uint32_t subscribers;     /* limits.subscribers */
    uint32_t clients;         /* limits.clients */
    uint32_t servers;         /* limits.servers */
    uint32_t services;        /* limits.services */
    uint32_t chunks_per_port; /* limits.chunks_per_port */
    uint32_t queue_capacity;  /* limits.queue_capacity */
    uint32_t history;         /* limits.history */
    uint32_t waitsets_per_process; /* limits.waitsets_per_process */
    uint64_t management_bytes; /* size of the management segment */
    char config_source[256];
    char domain[64];
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_domain_info_t;
#define SHOAL_DOMAIN_INFO_INIT {SHOAL_DOMAIN_INFO_VERSION, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, "", ""}
/* INVALID_ARGUMENT for NULL or an unknown info->version (untouched then). */
SHOAL_API shoal_result_t shoal_runtime_domain_info(const shoal_runtime_t *rt,
                                                   shoal_domain_info_t *info);

/* ---- ports: shared options and rules -------------------------------------- */

typedef enum shoal_full_policy {
    SHOAL_FULL_DROP_OLDEST = 0, /* the oldest queued chunk is released, counted */
    SHOAL_FULL_REJECT = 1,      /* the send fails with SHOAL_ERR_QUEUE_FULL   */
    SHOAL_FULL_WAIT = 2         /* the sender waits up to send_timeout_ns     */
} shoal_full_policy_t;

/* Port creation (every kind): `name` is the topic or service (1..127
 * printable characters). Results: INVALID_ARGUMENT (name, options: the
 * message names the field and its range), PORT_LIMIT / SERVICE_LIMIT (the
 * message names the limit, its value, its config key and who holds the
 * slots), DAEMON_UNAVAILABLE, NO_MEMORY, CORRUPT. *out is NULL on failure.
 *
 * Destroying a port (any kind): every chunk it still holds goes back to its
 * pool and those chunk handles become invalid; a port attached to a waitset
 * is detached first; its slot is free again when this returns. NULL is
 * ignored.
 *
 * Loans (every kind): `size` is 1..the largest pool's chunk size. Results:
 * INVALID_ARGUMENT (size 0, NULL), CHUNK_TOO_LARGE (larger than every pool:
 * the message names the largest), POOL_EXHAUSTED (the fitting pool is
 * empty), HELD_LIMIT (the port holds limits.chunks_per_port chunks),
 * DAEMON_UNAVAILABLE. *out is NULL on failure.
 *
 * Takes (every kind): waits up to timeout_ns for the oldest queued chunk.
 * Results: TIMEOUT (nothing arrived; also for SHOAL_TIMEOUT_POLL on an
 * empty queue), HELD_LIMIT, DAEMON_UNAVAILABLE (the daemon died or stopped
 * during the wait), CORRUPT (a queue entry failed a bounds check; it is
 * skipped). *out is NULL on failure. Release the chunk with
 * shoal_chunk_release().
 *
 * Sends (publish, client send, server send) consume the chunk on success
 * and on failure. Results: INVALID_ARGUMENT (NULL), WRONG_PORT (the chunk
 * belongs to another port or was already consumed and reused by this
 * port), QUEUE_FULL (REJECT), TIMEOUT (WAIT past send_timeout_ns), NO_SERVER,
 * CLIENT_GONE, DAEMON_UNAVAILABLE. */

/* ---- publish / subscribe ------------------------------------------------- */

enum { SHOAL_PUBLISHER_OPTIONS_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_publisher_options {
    uint32_t version; /* SHOAL_PUBLISHER_OPTIONS_VERSION */
    /* Samples kept for subscribers that join later (0..limits.history). Default 0. */
    uint32_t history;
    /* What to do when a subscriber's queue is full. Default DROP_OLDEST. */
    shoal_full_policy_t full_policy;
    int64_t send_timeout_ns; /* for SHOAL_FULL_WAIT; default 1 s */
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_publisher_options_t;
#define SHOAL_PUBLISHER_OPTIONS_INIT \
    {SHOAL_PUBLISHER_OPTIONS_VERSION, 0, SHOAL_FULL_DROP_OLDEST, 1000000000}
SHOAL_API shoal_result_t shoal_publisher_options_init(shoal_publisher_options_t *opts,
                                                      uint32_t version);

enum { SHOAL_SUBSCRIBER_OPTIONS_VERSION = SHOAL_STRUCT_VERSION_2_ };
typedef struct shoal_subscriber_options {
    uint32_t version;        /* SHOAL_SUBSCRIBER_OPTIONS_VERSION */
    uint32_t queue_capacity; /* 0 (default) = limits.queue_capacity from the config */
    uint32_t history;        /* ask for up to this many past samples; default 0 */
    /* Version 2. 1 = samples published by this process's own publishers
     * are skipped at take (never returned, not counted as received): a
     * bridge such as shoal-gateway publishes what it imports and must not
     * export it again. A sample whose publisher (of this process) was
     * closed before the take is no longer recognised. 0 or 1; default 0,
     * and 0 for a caller that passes version 1. */
    uint32_t ignore_own_process;
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_subscriber_options_t;
#define SHOAL_SUBSCRIBER_OPTIONS_INIT {SHOAL_SUBSCRIBER_OPTIONS_VERSION, 0, 0, 0}
SHOAL_API shoal_result_t shoal_subscriber_options_init(shoal_subscriber_options_t *opts,
                                                       uint32_t version);

/* Port creation (publisher, subscriber, client, server) fails with
 * SHOAL_ERR_PERMISSION when an [access.topic]/[access.service] rule of the
 * daemon's config does not allow this process's uid or groups; the message
 * names the rule. */
SHOAL_API shoal_result_t shoal_publisher_create(shoal_publisher_t **out, shoal_runtime_t *rt,
                                                const char *topic,
                                                const shoal_publisher_options_t *opts);
SHOAL_API void shoal_publisher_destroy(shoal_publisher_t *pub);
/* Loans a chunk of at least `size` bytes (see "Loans" above). */
SHOAL_API shoal_result_t shoal_publisher_loan(shoal_publisher_t *pub, uint64_t size,
                                              shoal_chunk_t **out);
/* Delivers the chunk to every subscriber of the topic (zero-copy, reference
 * counted); with no subscriber it is only kept as history, or released.
 * Consumes the chunk, on success and on failure (see "Sends" above). */
SHOAL_API shoal_result_t shoal_publisher_publish(shoal_publisher_t *pub, shoal_chunk_t *chunk);
/* Number of subscribers currently matched (0 for NULL). */
SHOAL_API uint32_t shoal_publisher_subscriber_count(const shoal_publisher_t *pub);

SHOAL_API shoal_result_t shoal_subscriber_create(shoal_subscriber_t **out, shoal_runtime_t *rt,
                                                 const char *topic,
                                                 const shoal_subscriber_options_t *opts);
SHOAL_API void shoal_subscriber_destroy(shoal_subscriber_t *sub);
/* Takes the oldest sample (see "Takes" above). */
SHOAL_API shoal_result_t shoal_subscriber_take(shoal_subscriber_t *sub, shoal_chunk_t **out,
                                               int64_t timeout_ns);

/* ---- request / response -------------------------------------------------- */

enum { SHOAL_CLIENT_OPTIONS_VERSION = SHOAL_STRUCT_VERSION_2_ };
typedef struct shoal_client_options {
    uint32_t version;        /* SHOAL_CLIENT_OPTIONS_VERSION */
    uint32_t queue_capacity; /* responses queued; 0 (default) = limits.queue_capacity */
    shoal_full_policy_t full_policy; /* for the server's request queue; default REJECT */
    int64_t send_timeout_ns; /* for SHOAL_FULL_WAIT; default 1 s */
    /* Version 2. 1 = requests never go to servers of this process, and
     * shoal_client_server_count() does not count them (a bridge offering a
     * proxy server must not send requests to itself); with only such
     * servers a send fails with SHOAL_ERR_NO_SERVER. 0 or 1; default 0, and
     * 0 for a caller that passes version 1. */
    uint32_t ignore_own_process;
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_client_options_t;
#define SHOAL_CLIENT_OPTIONS_INIT \
    {SHOAL_CLIENT_OPTIONS_VERSION, 0, SHOAL_FULL_REJECT, 1000000000, 0}
SHOAL_API shoal_result_t shoal_client_options_init(shoal_client_options_t *opts,
                                                   uint32_t version);

enum { SHOAL_SERVER_OPTIONS_VERSION = SHOAL_STRUCT_VERSION_ };
typedef struct shoal_server_options {
    uint32_t version;        /* SHOAL_SERVER_OPTIONS_VERSION */
    uint32_t queue_capacity; /* requests queued; 0 (default) = limits.queue_capacity */
    shoal_full_policy_t full_policy; /* for the client's response queue; default REJECT */
    int64_t send_timeout_ns; /* for SHOAL_FULL_WAIT; default 1 s */
#ifdef SHOAL_ABI_TEST_V2
    uint32_t test_v2;
#endif
} shoal_server_options_t;
#define SHOAL_SERVER_OPTIONS_INIT \
    {SHOAL_SERVER_OPTIONS_VERSION, 0, SHOAL_FULL_REJECT, 1000000000}
SHOAL_API shoal_result_t shoal_server_options_init(shoal_server_options_t *opts,
                                                   uint32_t version);

SHOAL_API shoal_result_t shoal_client_create(shoal_client_t **out, shoal_runtime_t *rt,
                                             const char *service,
                                             const shoal_client_options_t *opts);
SHOAL_API void shoal_client_destroy(shoal_client_t *client);
/* Loans a request chunk (see "Loans" above); send it with
 * shoal_client_send() or shoal_client_call(), or release it. */
SHOAL_API shoal_result_t shoal_client_loan(shoal_client_t *client, uint64_t size,
                                           shoal_chunk_t **out);
/* Sends a loaned request to exactly one server of the service (round robin
 * over the servers); stamps and returns its sequence id (sequence_id may be
 * NULL; unchanged on failure). Consumes the chunk. NO_SERVER when no server
 * offers the service. */
SHOAL_API shoal_result_t shoal_client_send(shoal_client_t *client, shoal_chunk_t *request,
                                           uint64_t *sequence_id);
/* Takes the oldest response (see "Takes" above); SERVER_GONE when the
 * service lost its last server while waiting. */
SHOAL_API shoal_result_t shoal_client_take(shoal_client_t *client, shoal_chunk_t **out,
                                           int64_t timeout_ns);
/* Sends `request` and waits up to timeout_ns for the response carrying its
 * sequence id; responses with other ids met on the way are released and
 * counted (shoal_port_info_t.stale). Consumes `request`; on success
 * *response must be released by the caller; on failure *response is NULL.
 * Results: those of send and take, SERVER_GONE when the server holding the
 * request died. */
SHOAL_API shoal_result_t shoal_client_call(shoal_client_t *client, shoal_chunk_t *request,
                                           shoal_chunk_t **response, int64_t timeout_ns);
/* Servers currently offering the service (0 for NULL). */
SHOAL_API uint32_t shoal_client_server_count(const shoal_client_t *client);

SHOAL_API shoal_result_t shoal_server_create(shoal_server_t **out, shoal_runtime_t *rt,
                                             const char *service,
                                             const shoal_server_options_t *opts);
SHOAL_API void shoal_server_destroy(shoal_server_t *server);
/* Takes the oldest request (see "Takes" above). */
SHOAL_API shoal_result_t shoal_server_take(shoal_server_t *server, shoal_chunk_t **out,
                                           int64_t timeout_ns);
/* Loans a response for `request` (which stays owned by the caller): it
 * carries the request's sequence id and routes to its client. Results: those
 * of a loan, WRONG_PORT (request not taken by this server), CLIENT_GONE
 * (that client no longer exists). */
SHOAL_API shoal_result_t shoal_server_loan_response(shoal_server_t *server,
                                                    const shoal_chunk_t *request, uint64_t size,
                                                    shoal_chunk_t **out);
/* Sends a loaned response to its client. Consumes the chunk (see "Sends"). */
SHOAL_API shoal_result_t shoal_server_send(shoal_server_t *server, shoal_chunk_t *response);

/* ---- waiting without owning the port -------------------------------------- */

/* Sleep until the port's receive queue has something to take, without
 * taking it, so that a thread can wait on a port while other threads use
 * it: these three calls may overlap any other call on the same port (not
 * its destroy), and each other. Data seen here may be taken by another
 * thread first: follow with a take of timeout 0 and wait again if it finds
 * nothing.
 * Returns SHOAL_OK when data is queued; SHOAL_ERR_TIMEOUT when timeout_ns
 * passed, or EARLIER when a signal handler ran on the calling thread (so
 * that a binding can run its own handlers, e.g. Ctrl-C; the detail message
 * says so, and the caller waits again for the time left);
 * SHOAL_ERR_DAEMON_UNAVAILABLE when the daemon is gone; for a client,
 * SHOAL_ERR_NO_SERVER when no server offers the service any more. */
SHOAL_API shoal_result_t shoal_subscriber_wait_ready(shoal_subscriber_t *sub, int64_t timeout_ns);
SHOAL_API shoal_result_t shoal_client_wait_ready(shoal_client_t *client, int64_t timeout_ns);
SHOAL_API shoal_result_t shoal_server_wait_ready(shoal_server_t *server, int64_t timeout_ns);

/* Sliced sends: a send, publish or response that may stop while it waits
 * for queue space (policy SHOAL_FULL_WAIT) without losing the chunk. The
 * same as shoal_publisher_publish / shoal_client_send / shoal_server_send,
 * except that when a receiver's queue stays full for longer than slice_ns
 * (< 0: no bound but send_timeout_ns; 0: do not sleep), or when a signal
 * handler runs on the calling thread while it sleeps, the call returns
 * SHOAL_ERR_BUSY and the chunk is STILL THE CALLER'S: call the same sliced
 * send again to go on (a publish does not deliver twice to subscribers that
 * already got the sample, a request keeps its sequence id, the port's
 * send_timeout_ns counts from the first wait), or release the chunk to give
 * up (subscribers that got the sample keep it). Every result other than
 * SHOAL_ERR_BUSY consumes the chunk, as the plain calls do. Once a sliced
 * send returned BUSY, the chunk's size can no longer change. Same thread
 * rule as the plain calls. */
SHOAL_API shoal_result_t shoal_publisher_publish_slice(shoal_publisher_t *pub, shoal_chunk_t *chunk,
                                                       int64_t slice_ns);
SHOAL_API shoal_result_t shoal_client_send_slice(shoal_client_t *client, shoal_chunk_t *request,
                                                 uint64_t *sequence_id, int64_t slice_ns);
SHOAL_API shoal_result_t shoal_server_send_slice(shoal_server_t *server, shoal_chunk_t *response,
                                                 int64_t slice_ns);

/* ---- chunks -------------------------------------------------------------- */

/* Writable for loans, read-only by convention for takes; NULL for NULL. */
SHOAL_API void *shoal_chunk_payload(const shoal_chunk_t *chunk);
/* Bytes asked for at loan time (what the receiver sees); 0 for NULL. */
SHOAL_API uint64_t shoal_chunk_size(const shoal_chunk_t *chunk);
/* Shrinks (never grows) the size a receiver will see: 0..loaned size, loans
 * only. INVALID_ARGUMENT otherwise (the size is unchanged). */
SHOAL_API shoal_result_t shoal_chunk_set_size(shoal_chunk_t *chunk, uint64_t size);
/* Request/response: the request's sequence id (0 for pub/sub samples, which
 * carry the publisher's running count instead). */
SHOAL_API uint64_t shoal_chunk_sequence_id(const shoal_chunk_t *chunk);
/* Returns a loaned-and-unsent or taken chunk to its pool (or drops this
 * holder's reference). Consumes the chunk. NULL is ignored (SHOAL_OK).
 * Releasing a handle twice, or after its send, is undefined behaviour: the
 * handle's memory may already describe another chunk of the port. A
 * handle that is not one of the port's is refused with WRONG_PORT. */
SHOAL_API shoal_result_t shoal_chunk_release(shoal_chunk_t *chunk);

/* ---- waitset ------------------------------------------------------------- */

/* A waitset sleeps on many receiving ports at once. At most
 * limits.waitsets_per_process per process: PORT_LIMIT names the limit.
 * Results also: INVALID_ARGUMENT (NULL), NO_MEMORY, DAEMON_UNAVAILABLE.
 * *out is NULL on failure. */
SHOAL_API shoal_result_t shoal_waitset_create(shoal_waitset_t **out, shoal_runtime_t *rt);
/* Detaches every port (they stay open) and frees the waitset and its fd.
 * NULL is ignored. */
SHOAL_API void shoal_waitset_destroy(shoal_waitset_t *ws);
/* Attach a receiving port; `tag` is reported when it has data. A port may be
 * attached to one waitset at a time (INVALID_ARGUMENT otherwise, as for a
 * tag already in use). */
SHOAL_API shoal_result_t shoal_waitset_attach_subscriber(shoal_waitset_t *ws,
                                                         shoal_subscriber_t *sub, uint64_t tag);
SHOAL_API shoal_result_t shoal_waitset_attach_server(shoal_waitset_t *ws, shoal_server_t *server,
                                                     uint64_t tag);
SHOAL_API shoal_result_t shoal_waitset_attach_client(shoal_waitset_t *ws, shoal_client_t *client,
                                                     uint64_t tag);
/* Detach by tag; NOT_FOUND for a tag not attached. */
SHOAL_API shoal_result_t shoal_waitset_detach(shoal_waitset_t *ws, uint64_t tag);
/* Waits until at least one attached port has data or the timeout passes;
 * writes up to `capacity` ready tags and their count (0 on TIMEOUT).
 * Results: TIMEOUT, DAEMON_UNAVAILABLE, INVALID_ARGUMENT. */
SHOAL_API shoal_result_t shoal_waitset_wait(shoal_waitset_t *ws, uint64_t *ready_tags,
                                            size_t capacity, size_t *ready_count,
                                            int64_t timeout_ns);
/* A file descriptor for epoll, select and asyncio: it becomes readable when
 * data arrives at an attached port. Call shoal_waitset_wait() with timeout 0
 * to learn which ports; a wait that finds nothing makes the fd quiet again.
 * Owned by the waitset; do not close or read it. */
SHOAL_API shoal_result_t shoal_waitset_fd(shoal_waitset_t *ws, int *fd);

#ifdef __cplusplus
}
#endif
#endif /* SHOAL_H */
