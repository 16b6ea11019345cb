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
 *  - Options structs start with a `version` field. Initialise them with
 *    shoal_*_options_init() before setting fields; NULL means defaults.
 *  - Timeouts are nanoseconds: SHOAL_TIMEOUT_POLL (0) never waits,
 *    SHOAL_TIMEOUT_FOREVER (-1) waits without bound.
 *  - Chunk ownership: a chunk returned by a loan or a take is owned by the
 *    caller until it is sent, published or released. After a successful send
 *    or publish the library owns it and the handle is invalid. After a FAILED
 *    send/publish the library has released the chunk too (nothing to clean up),
 *    so every chunk handle is consumed by exactly one of send/publish/release.
 *
 * Thread safety
 *  - shoal_runtime_*, port create and destroy functions: safe from any thread.
 *  - One port (publisher, subscriber, client, server, waitset) must be used
 *    by one thread at a time; different ports may be used concurrently.
 *  - A chunk belongs to its port: shoal_chunk_* calls (release above all)
 *    count as uses of that port and must not overlap other calls on it.
 *  - shoal_last_error_message() is per thread.
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

enum {
    SHOAL_VERSION_MAJOR = 0,
    SHOAL_VERSION_MINOR = 1,
    SHOAL_VERSION_PATCH = 0,
    /* Bumped on any change of the shared-memory layout or daemon protocol;
     * a process and a daemon with different ABI versions refuse each other. */
    SHOAL_ABI_VERSION = 1
};

/* "0.1.0" for the library actually loaded. */
SHOAL_API const char *shoal_version(void);
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
    SHOAL_ERR_VERSION_MISMATCH = 9, /* daemon and library ABI differ            */
    SHOAL_ERR_PERMISSION = 10,      /* peer credentials refused                 */
    SHOAL_ERR_NO_SERVER = 11,       /* no server offers the service             */
    SHOAL_ERR_SERVER_GONE = 12,     /* the server holding the request died      */
    SHOAL_ERR_CLIENT_GONE = 13,     /* the requesting client no longer exists   */
    SHOAL_ERR_CORRUPT = 14,         /* shared memory failed a bounds check      */
    SHOAL_ERR_NO_MEMORY = 15,       /* local allocation failed                  */
    SHOAL_ERR_SYSTEM = 16,          /* a system call failed (errno in message)  */
    SHOAL_ERR_CONFIG = 17,          /* bad configuration (file:line in message) */
    SHOAL_ERR_WRONG_PORT = 18,      /* chunk used with a port that does not own it */
    SHOAL_ERR_PROCESS_LIMIT = 19,   /* limits.processes reached                 */
    SHOAL_ERR_SERVICE_LIMIT = 20,   /* limits.services reached                  */
    SHOAL_ERR_ALREADY_EXISTS = 21,  /* e.g. a daemon already runs on the domain */
    SHOAL_ERR_NOT_FOUND = 22,       /* index out of range in an info call       */
    SHOAL_ERR_BUSY = 23             /* reserved */
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

enum { SHOAL_RUNTIME_OPTIONS_VERSION = 1 };
typedef struct shoal_runtime_options {
    uint32_t version;
    /* Domain name; NULL means $SHOAL_DOMAIN, else "default". */
    const char *domain;
    /* Directory holding the daemon sockets; NULL means $SHOAL_RUNTIME_DIR,
     * else /tmp/shoal-<uid>. */
    const char *runtime_dir;
    /* How long to keep retrying the connection while the daemon starts
     * (0 = one attempt, SHOAL_TIMEOUT_FOREVER = until it is there). A
     * positive value bounds the whole registration, the daemon's answer
     * included; with 0 or FOREVER an attempt that reached a daemon ends
     * after 10 s at most (SHOAL_ERR_TIMEOUT). */
    int64_t connect_timeout_ns;
} shoal_runtime_options_t;

SHOAL_API void shoal_runtime_options_init(shoal_runtime_options_t *opts);

/* Registers this process with the daemon of the domain. `name` identifies
 * the process in `shoal` listings (1..63 printable characters). */
SHOAL_API shoal_result_t shoal_runtime_create(shoal_runtime_t **out, const char *name,
                                              const shoal_runtime_options_t *opts);
/* Destroys the runtime and every port and waitset still open on it (their
 * chunks are returned; their handles become invalid). NULL is ignored.
 * Handles are per process: a child made by fork() creates its own runtime
 * and must not use the parent's handles. */
SHOAL_API void shoal_runtime_destroy(shoal_runtime_t *rt);

/* Domain the runtime is registered with. */
SHOAL_API const char *shoal_runtime_domain(const shoal_runtime_t *rt);

/* ---- introspection (reads shared memory; any thread) --------------------- */

typedef struct shoal_pool_info {
    uint64_t chunk_size;   /* payload bytes per chunk */
    uint32_t chunk_count;
    uint32_t in_use;       /* chunks currently allocated */
    uint32_t high_water;   /* most chunks ever in use at once */
    uint64_t alloc_failures;
} shoal_pool_info_t;

SHOAL_API uint32_t shoal_runtime_pool_count(const shoal_runtime_t *rt);
SHOAL_API shoal_result_t shoal_runtime_pool_info(const shoal_runtime_t *rt, uint32_t index,
                                                 shoal_pool_info_t *out);

typedef enum shoal_port_kind {
    SHOAL_PORT_PUBLISHER = 1,
    SHOAL_PORT_SUBSCRIBER = 2,
    SHOAL_PORT_CLIENT = 3,
    SHOAL_PORT_SERVER = 4
} shoal_port_kind_t;

typedef struct shoal_port_info {
    shoal_port_kind_t kind;
    uint32_t id;            /* slot index within its kind */
    int32_t pid;            /* owning process */
    uint32_t held;          /* chunks the port's user holds (loaned or taken) */
    uint32_t queued;        /* chunks waiting in its receive queue */
    uint32_t queue_capacity;
    uint64_t sent;          /* chunks sent/published */
    uint64_t received;      /* chunks taken */
    uint64_t dropped;       /* chunks dropped by the queue-full policy */
    uint64_t stale;         /* stale responses released by the call helper */
    char service[128];
    char process[64];
} shoal_port_info_t;

/* Number of port slots of all kinds (live or not); iterate 0..count-1 and
 * skip SHOAL_ERR_NOT_FOUND (a free slot). */
SHOAL_API uint32_t shoal_runtime_port_slots(const shoal_runtime_t *rt);
SHOAL_API shoal_result_t shoal_runtime_port_info(const shoal_runtime_t *rt, uint32_t slot,
                                                 shoal_port_info_t *out);

/* The daemon's limits and where they come from. */
typedef struct shoal_domain_info {
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
    uint64_t management_bytes; /* size of the management segment */
    char config_source[256];
    char domain[64];
    uint32_t waitsets_per_process; /* limits.waitsets_per_process */
} shoal_domain_info_t;
SHOAL_API shoal_result_t shoal_runtime_domain_info(const shoal_runtime_t *rt,
                                                   shoal_domain_info_t *out);

typedef struct shoal_process_info {
    int32_t pid;
    uint32_t uid;
    char name[64];
} shoal_process_info_t;
/* Registered processes: iterate 0..limits.processes-1, skipping
 * SHOAL_ERR_NOT_FOUND (a free slot). */
SHOAL_API shoal_result_t shoal_runtime_process_info(const shoal_runtime_t *rt, uint32_t slot,
                                                    shoal_process_info_t *out);

/* ---- ports: shared options ---------------------------------------------- */

typedef enum shoal_full_policy {
    SHOAL_FULL_DROP_OLDEST = 0, /* the oldest queued chunk is released, counted */
    SHOAL_FULL_REJECT = 1,      /* the send fails with SHOAL_ERR_QUEUE_FULL   */
    SHOAL_FULL_WAIT = 2         /* the sender waits up to send_timeout_ns     */
} shoal_full_policy_t;

/* ---- publish / subscribe ------------------------------------------------- */

enum { SHOAL_PUBLISHER_OPTIONS_VERSION = 1 };
typedef struct shoal_publisher_options {
    uint32_t version;
    /* Samples kept for subscribers that join later (0..queue capacity). */
    uint32_t history;
    /* What to do when a subscriber's queue is full. */
    shoal_full_policy_t full_policy;
    int64_t send_timeout_ns; /* for SHOAL_FULL_WAIT */
} shoal_publisher_options_t;
SHOAL_API void shoal_publisher_options_init(shoal_publisher_options_t *opts);

enum { SHOAL_SUBSCRIBER_OPTIONS_VERSION = 2 };
typedef struct shoal_subscriber_options {
    uint32_t version;
    uint32_t queue_capacity; /* 0 = limits.queue_capacity from the config */
    uint32_t history;        /* ask for up to this many past samples */
    /* Version 2: nonzero = samples published by this process's own
     * publishers are skipped at take (never returned, not counted as
     * received). For bridges such as shoal-gateway, which publish what they
     * import and must not export it again. A sample of a publisher of this
     * process that was closed before the take is no longer recognised. */
    uint32_t ignore_own_process;
} shoal_subscriber_options_t;
SHOAL_API void shoal_subscriber_options_init(shoal_subscriber_options_t *opts);

SHOAL_API shoal_result_t shoal_publisher_create(shoal_publisher_t **out, shoal_runtime_t *rt,
                                                const char *topic,
                                                const shoal_publisher_options_t *opts);
/* Destroying a port (any kind): every chunk it still holds goes back to
 * its pool and those chunk handles become invalid; a port attached to a
 * waitset is detached first; its slot is free again when this returns.
 * NULL is ignored. */
SHOAL_API void shoal_publisher_destroy(shoal_publisher_t *pub);
/* Loans a chunk of at least `size` bytes (0 < size). */
SHOAL_API shoal_result_t shoal_publisher_loan(shoal_publisher_t *pub, uint64_t size,
                                              shoal_chunk_t **out);
/* Delivers the chunk to every subscriber of the topic (zero-copy, reference
 * counted). Consumes the chunk, on success and on failure. */
SHOAL_API shoal_result_t shoal_publisher_publish(shoal_publisher_t *pub, shoal_chunk_t *chunk);
/* Number of subscribers currently matched. */
SHOAL_API uint32_t shoal_publisher_subscriber_count(const shoal_publisher_t *pub);

SHOAL_API shoal_result_t shoal_subscriber_create(shoal_subscriber_t **out, shoal_runtime_t *rt,
                                                 const char *topic,
                                                 const shoal_subscriber_options_t *opts);
SHOAL_API void shoal_subscriber_destroy(shoal_subscriber_t *sub);
/* Takes the oldest sample, waiting up to timeout_ns. Release it with
 * shoal_chunk_release(). */
SHOAL_API shoal_result_t shoal_subscriber_take(shoal_subscriber_t *sub, shoal_chunk_t **out,
                                               int64_t timeout_ns);

/* ---- request / response -------------------------------------------------- */

enum { SHOAL_CLIENT_OPTIONS_VERSION = 2 };
typedef struct shoal_client_options {
    uint32_t version;
    uint32_t queue_capacity; /* responses queued; 0 = limits.queue_capacity */
    shoal_full_policy_t full_policy; /* applied to the server's request queue */
    int64_t send_timeout_ns;
    /* Version 2: nonzero = requests never go to servers of this process,
     * and shoal_client_server_count() does not count them (a bridge that
     * offers a proxy server must not send requests to itself). With only
     * such servers, a send fails with SHOAL_ERR_NO_SERVER. */
    uint32_t ignore_own_process;
} shoal_client_options_t;
SHOAL_API void shoal_client_options_init(shoal_client_options_t *opts);

enum { SHOAL_SERVER_OPTIONS_VERSION = 1 };
typedef struct shoal_server_options {
    uint32_t version;
    uint32_t queue_capacity; /* requests queued; 0 = limits.queue_capacity */
    shoal_full_policy_t full_policy; /* applied to the client's response queue */
    int64_t send_timeout_ns;
} shoal_server_options_t;
SHOAL_API void shoal_server_options_init(shoal_server_options_t *opts);

SHOAL_API shoal_result_t shoal_client_create(shoal_client_t **out, shoal_runtime_t *rt,
                                             const char *service,
                                             const shoal_client_options_t *opts);
SHOAL_API void shoal_client_destroy(shoal_client_t *client);
SHOAL_API shoal_result_t shoal_client_loan(shoal_client_t *client, uint64_t size,
                                           shoal_chunk_t **out);
/* Sends a loaned request to exactly one server of the service; stamps and
 * returns its sequence id (may be NULL). Consumes the chunk. */
SHOAL_API shoal_result_t shoal_client_send(shoal_client_t *client, shoal_chunk_t *request,
                                           uint64_t *sequence_id);
/* Takes the oldest response, waiting up to timeout_ns. */
SHOAL_API shoal_result_t shoal_client_take(shoal_client_t *client, shoal_chunk_t **out,
                                           int64_t timeout_ns);
/* Sends `request` and waits up to timeout_ns for the response carrying its
 * sequence id; responses with other ids met on the way are released and
 * counted (shoal_port_info_t.stale). Consumes `request`; on success *response
 * must be released by the caller. */
SHOAL_API shoal_result_t shoal_client_call(shoal_client_t *client, shoal_chunk_t *request,
                                           shoal_chunk_t **response, int64_t timeout_ns);
/* Servers currently offering the service. */
SHOAL_API uint32_t shoal_client_server_count(const shoal_client_t *client);

SHOAL_API shoal_result_t shoal_server_create(shoal_server_t **out, shoal_runtime_t *rt,
                                             const char *service,
                                             const shoal_server_options_t *opts);
SHOAL_API void shoal_server_destroy(shoal_server_t *server);
/* Takes the oldest request, waiting up to timeout_ns. */
SHOAL_API shoal_result_t shoal_server_take(shoal_server_t *server, shoal_chunk_t **out,
                                           int64_t timeout_ns);
/* Loans a response for `request` (which stays owned by the caller): it
 * carries the request's sequence id and routes to its client. Fails with
 * SHOAL_ERR_CLIENT_GONE if that client no longer exists. */
SHOAL_API shoal_result_t shoal_server_loan_response(shoal_server_t *server,
                                                    const shoal_chunk_t *request, uint64_t size,
                                                    shoal_chunk_t **out);
/* Sends a loaned response to its client. Consumes the chunk. */
SHOAL_API shoal_result_t shoal_server_send(shoal_server_t *server, shoal_chunk_t *response);

/* ---- chunks -------------------------------------------------------------- */

/* Writable for loans, read-only by convention for takes. */
SHOAL_API void *shoal_chunk_payload(const shoal_chunk_t *chunk);
/* Bytes asked for at loan time (what the receiver sees). */
SHOAL_API uint64_t shoal_chunk_size(const shoal_chunk_t *chunk);
/* Shrinks (never grows) the size a receiver will see; <= loaned size. */
SHOAL_API shoal_result_t shoal_chunk_set_size(shoal_chunk_t *chunk, uint64_t size);
/* Request/response: the request's sequence id (0 for pub/sub samples, which
 * carry the publisher's running count instead). */
SHOAL_API uint64_t shoal_chunk_sequence_id(const shoal_chunk_t *chunk);
/* Returns a loaned-and-unsent or taken chunk to its pool (or drops this
 * holder's reference). Consumes the chunk. NULL is ignored. */
SHOAL_API shoal_result_t shoal_chunk_release(shoal_chunk_t *chunk);

/* ---- waitset ------------------------------------------------------------- */

SHOAL_API shoal_result_t shoal_waitset_create(shoal_waitset_t **out, shoal_runtime_t *rt);
/* Detaches everything; the ports stay open. NULL is ignored. */
SHOAL_API void shoal_waitset_destroy(shoal_waitset_t *ws);
/* Attach a receiving port; `tag` is reported when it has data. A port may be
 * attached to one waitset at a time. */
SHOAL_API shoal_result_t shoal_waitset_attach_subscriber(shoal_waitset_t *ws,
                                                         shoal_subscriber_t *sub, uint64_t tag);
SHOAL_API shoal_result_t shoal_waitset_attach_server(shoal_waitset_t *ws, shoal_server_t *server,
                                                     uint64_t tag);
SHOAL_API shoal_result_t shoal_waitset_attach_client(shoal_waitset_t *ws, shoal_client_t *client,
                                                     uint64_t tag);
/* Detach by tag. */
SHOAL_API shoal_result_t shoal_waitset_detach(shoal_waitset_t *ws, uint64_t tag);
/* Waits until at least one attached port has data or the timeout passes;
 * writes up to `capacity` ready tags and their count. */
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
