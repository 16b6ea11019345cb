/*
 * request_response: N clients and N servers on one service, zero-copy.
 *
 * The seed scenario, done right: every client thread sends requests with
 * shoal_client_call(), which stamps a sequence id, waits (with a timeout!)
 * for the response carrying that id, and releases any stale response it
 * meets on the way, so a late or unexpected response can never drain the
 * pool. Every taken chunk is released exactly once.
 *
 * Needs a running daemon:   shoald --domain demo &
 * Then:                     ./example_request_response --domain demo
 * (or SHOAL_DOMAIN=demo). Options: --clients N --servers N --requests M
 * --size BYTES --timeout-ms T. Exits 0 when every request was answered.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal.h"

#define SERVICE "example/echo"
#define MAX_THREADS 64

typedef struct header {
    uint32_t client;
    uint32_t server; /* filled in by the server */
    uint64_t index;
} header_t;

static shoal_runtime_t *g_rt;
static atomic_int g_stop;
static atomic_int g_failed;
static atomic_uint_fast64_t g_served[MAX_THREADS];
static uint32_t g_servers = 4, g_clients = 4, g_requests = 1000;
static uint64_t g_size = 64;
static int64_t g_timeout_ns = 1000000000;

static void fail(const char *what, shoal_result_t r)
{
    fprintf(stderr, "request_response: %s: %s (%s)\n", what, shoal_strerror(r),
            shoal_last_error_message());
    atomic_store(&g_failed, 1);
}

static void *server_main(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    shoal_server_t *server = NULL;
    shoal_result_t r = shoal_server_create(&server, g_rt, SERVICE, NULL);
    if (r != SHOAL_OK) {
        fail("server_create", r);
        return NULL;
    }
    while (!atomic_load(&g_stop) && !atomic_load(&g_failed)) {
        shoal_chunk_t *request = NULL;
        /* Wait with a bound, so the loop can notice g_stop. */
        r = shoal_server_take(server, &request, 50 * 1000000LL);
        if (r == SHOAL_ERR_TIMEOUT)
            continue;
        if (r != SHOAL_OK) {
            fail("server_take", r);
            break;
        }
        shoal_chunk_t *response = NULL;
        r = shoal_server_loan_response(server, request, shoal_chunk_size(request), &response);
        if (r == SHOAL_OK) {
            /* Echo the payload and sign the header. */
            memcpy(shoal_chunk_payload(response), shoal_chunk_payload(request),
                   shoal_chunk_size(request));
            header_t *h = shoal_chunk_payload(response);
            h->server = id;
            r = shoal_server_send(server, response); /* consumes response */
            if (r != SHOAL_OK && r != SHOAL_ERR_CLIENT_GONE)
                fail("server_send", r);
        } else if (r != SHOAL_ERR_CLIENT_GONE) {
            fail("server_loan_response", r);
        }
        shoal_chunk_release(request); /* the request is ours until released */
        atomic_fetch_add(&g_served[id], 1);
    }
    shoal_server_destroy(server);
    return NULL;
}

static void *client_main(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    shoal_client_t *client = NULL;
    shoal_result_t r = shoal_client_create(&client, g_rt, SERVICE, NULL);
    if (r != SHOAL_OK) {
        fail("client_create", r);
        return NULL;
    }
    for (int i = 0; i < 500 && shoal_client_server_count(client) < g_servers; i++) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }
    for (uint32_t i = 0; i < g_requests && !atomic_load(&g_failed); i++) {
        shoal_chunk_t *request = NULL, *response = NULL;
        r = shoal_client_loan(client, g_size, &request);
        if (r != SHOAL_OK) {
            fail("client_loan", r);
            break;
        }
        header_t *h = shoal_chunk_payload(request);
        h->client = id;
        h->server = UINT32_MAX;
        h->index = i;
        /* Send and wait for THE response to this request. */
        r = shoal_client_call(client, request, &response, g_timeout_ns);
        if (r != SHOAL_OK) {
            fail("client_call", r);
            break;
        }
        const header_t *rh = shoal_chunk_payload(response);
        if (rh->client != id || rh->index != i || rh->server >= g_servers ||
            shoal_chunk_size(response) != g_size) {
            fprintf(stderr, "request_response: client %u got a wrong response\n", id);
            atomic_store(&g_failed, 1);
        }
        shoal_chunk_release(response); /* always paired with the take */
    }
    shoal_client_destroy(client);
    return NULL;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--domain NAME] [--clients N] [--servers N] [--requests M]\n"
            "          [--size BYTES] [--timeout-ms T]\n"
            "Connects to the shoald of the domain (default $SHOAL_DOMAIN, else 'default').\n",
            argv0);
}

int main(int argc, char **argv)
{
    const char *domain = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            usage(argv[0]);
            return 0;
        }
        if (!v) {
            usage(argv[0]);
            return 2;
        }
        if (strcmp(a, "--domain") == 0)
            domain = v;
        else if (strcmp(a, "--clients") == 0)
            g_clients = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--servers") == 0)
            g_servers = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--requests") == 0)
            g_requests = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--size") == 0)
            g_size = strtoull(v, NULL, 10);
        else if (strcmp(a, "--timeout-ms") == 0)
            g_timeout_ns = (int64_t)strtoll(v, NULL, 10) * 1000000LL;
        else {
            usage(argv[0]);
            return 2;
        }
        i++;
    }
    if (g_clients < 1 || g_clients > MAX_THREADS || g_servers < 1 || g_servers > MAX_THREADS ||
        g_size < sizeof(header_t)) {
        fprintf(stderr, "request_response: 1..%d clients and servers, size >= %zu\n",
                MAX_THREADS, sizeof(header_t));
        return 2;
    }

    shoal_runtime_options_t opts;
    shoal_runtime_options_init(&opts, SHOAL_RUNTIME_OPTIONS_VERSION);
    opts.domain = domain;
    opts.connect_timeout_ns = 2000000000LL;
    shoal_result_t r = shoal_runtime_create(&g_rt, "example-request-response", &opts);
    if (r != SHOAL_OK) {
        fprintf(stderr, "request_response: %s: %s\n", shoal_strerror(r),
                shoal_last_error_message());
        return 1;
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pthread_t servers[MAX_THREADS], clients[MAX_THREADS];
    for (uint32_t i = 0; i < g_servers; i++)
        pthread_create(&servers[i], NULL, server_main, (void *)(uintptr_t)i);
    for (uint32_t i = 0; i < g_clients; i++)
        pthread_create(&clients[i], NULL, client_main, (void *)(uintptr_t)i);
    for (uint32_t i = 0; i < g_clients; i++)
        pthread_join(clients[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);

    atomic_store(&g_stop, 1);
    for (uint32_t i = 0; i < g_servers; i++)
        pthread_join(servers[i], NULL);

    uint64_t total = 0;
    printf("request_response: domain %s, %u clients x %u servers, %u requests each of %" PRIu64
           " bytes\n",
           shoal_runtime_domain(g_rt), g_clients, g_servers, g_requests, g_size);
    printf("  answered per server:");
    for (uint32_t i = 0; i < g_servers; i++) {
        uint64_t n = atomic_load(&g_served[i]);
        total += n;
        printf(" %" PRIu64, n);
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("\n  total %" PRIu64 " round trips in %.3f s (%.0f/s)\n", total, secs,
           secs > 0 ? (double)total / secs : 0.0);
    uint32_t in_use = 0;
    for (uint32_t p = 0; p < shoal_runtime_pool_count(g_rt); p++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        if (shoal_runtime_pool_info(g_rt, p, &pi) == SHOAL_OK)
            in_use += pi.in_use;
    }
    printf("  chunks still in use: %u\n", in_use);
    shoal_runtime_destroy(g_rt);

    int ok = !atomic_load(&g_failed) && total == (uint64_t)g_clients * g_requests;
    printf("request_response: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
