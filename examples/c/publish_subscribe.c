/*
 * publish_subscribe: one publisher, several subscribers, zero-copy.
 *
 * Every subscriber receives the same chunk (reference counted; the chunk
 * goes back to its pool when the last subscriber releases it). The
 * publisher uses the WAIT queue-full policy with a timeout, so a slow
 * subscriber slows the publisher down instead of losing samples; every wait
 * has a timeout.
 *
 * Needs a running daemon:   shoald --domain demo &
 * Then:                     ./example_publish_subscribe --domain demo
 * (or SHOAL_DOMAIN=demo). Options: --subscribers K --samples M --size BYTES.
 * Exits 0 when every subscriber received every sample, in order.
 */
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shoal.h"

#define TOPIC "example/samples"
#define MAX_SUBSCRIBERS 64

typedef struct sample {
    uint64_t index;
    uint64_t checksum; /* of index, so a torn or wrong chunk shows */
} sample_t;

static shoal_runtime_t *g_rt;
static uint32_t g_subscribers = 3, g_samples = 1000;
static uint64_t g_size = 256;
static atomic_int g_failed;
static atomic_uint g_ready;
static uint64_t g_received[MAX_SUBSCRIBERS];

static uint64_t checksum(uint64_t v)
{
    return v * 0x9E3779B97F4A7C15ull ^ 0xA5A5A5A5u;
}

static void fail(const char *what, shoal_result_t r)
{
    fprintf(stderr, "publish_subscribe: %s: %s (%s)\n", what, shoal_strerror(r),
            shoal_last_error_message());
    atomic_store(&g_failed, 1);
}

static void *subscriber_main(void *arg)
{
    uint32_t id = (uint32_t)(uintptr_t)arg;
    /* A short queue: the publisher's WAIT policy then paces it before the
     * queued samples could use up the pool. */
    shoal_subscriber_options_t opts;
    shoal_subscriber_options_init(&opts, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    opts.queue_capacity = 16;
    shoal_subscriber_t *sub = NULL;
    shoal_result_t r = shoal_subscriber_create(&sub, g_rt, TOPIC, &opts);
    atomic_fetch_add(&g_ready, 1);
    if (r != SHOAL_OK) {
        fail("subscriber_create", r);
        return NULL;
    }
    for (uint64_t expect = 0; expect < g_samples && !atomic_load(&g_failed); expect++) {
        shoal_chunk_t *chunk = NULL;
        r = shoal_subscriber_take(sub, &chunk, 5000000000LL); /* 5 s, never forever */
        if (r != SHOAL_OK) {
            fail("subscriber_take", r);
            break;
        }
        const sample_t *s = shoal_chunk_payload(chunk);
        if (s->index != expect || s->checksum != checksum(s->index)) {
            fprintf(stderr, "publish_subscribe: subscriber %u expected %" PRIu64 ", got %" PRIu64
                    "\n", id, expect, s->index);
            atomic_store(&g_failed, 1);
        }
        g_received[id]++;
        shoal_chunk_release(chunk); /* every take paired with its release */
    }
    shoal_subscriber_destroy(sub);
    return NULL;
}

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s [--domain NAME] [--subscribers K] [--samples M] [--size BYTES]\n"
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
        else if (strcmp(a, "--subscribers") == 0)
            g_subscribers = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--samples") == 0)
            g_samples = (uint32_t)strtoul(v, NULL, 10);
        else if (strcmp(a, "--size") == 0)
            g_size = strtoull(v, NULL, 10);
        else {
            usage(argv[0]);
            return 2;
        }
        i++;
    }
    if (g_subscribers < 1 || g_subscribers > MAX_SUBSCRIBERS || g_size < sizeof(sample_t)) {
        fprintf(stderr, "publish_subscribe: 1..%d subscribers, size >= %zu\n", MAX_SUBSCRIBERS,
                sizeof(sample_t));
        return 2;
    }

    shoal_runtime_options_t opts;
    shoal_runtime_options_init(&opts, SHOAL_RUNTIME_OPTIONS_VERSION);
    opts.domain = domain;
    opts.connect_timeout_ns = 2000000000LL;
    shoal_result_t r = shoal_runtime_create(&g_rt, "example-publish-subscribe", &opts);
    if (r != SHOAL_OK) {
        fprintf(stderr, "publish_subscribe: %s: %s\n", shoal_strerror(r),
                shoal_last_error_message());
        return 1;
    }

    shoal_publisher_options_t popts;
    shoal_publisher_options_init(&popts, SHOAL_PUBLISHER_OPTIONS_VERSION);
    popts.full_policy = SHOAL_FULL_WAIT;   /* back-pressure instead of loss */
    popts.send_timeout_ns = 5000000000LL;  /* ... but never a hang */
    shoal_publisher_t *pub = NULL;
    r = shoal_publisher_create(&pub, g_rt, TOPIC, &popts);
    if (r != SHOAL_OK) {
        fail("publisher_create", r);
        shoal_runtime_destroy(g_rt);
        return 1;
    }

    pthread_t subs[MAX_SUBSCRIBERS];
    for (uint32_t i = 0; i < g_subscribers; i++)
        pthread_create(&subs[i], NULL, subscriber_main, (void *)(uintptr_t)i);
    /* Wait (bounded) until every subscriber is matched. */
    for (int i = 0; i < 500 && shoal_publisher_subscriber_count(pub) < g_subscribers; i++) {
        struct timespec ts = { 0, 10 * 1000000L };
        nanosleep(&ts, NULL);
    }

    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (uint64_t i = 0; i < g_samples && !atomic_load(&g_failed); i++) {
        shoal_chunk_t *chunk = NULL;
        r = shoal_publisher_loan(pub, g_size, &chunk);
        /* The pool is shared with everyone on the domain: if it is empty
         * for a moment, back off briefly (bounded) rather than fail. */
        for (int tries = 0; r == SHOAL_ERR_POOL_EXHAUSTED && tries < 5000; tries++) {
            struct timespec ts = { 0, 1000000L };
            nanosleep(&ts, NULL);
            r = shoal_publisher_loan(pub, g_size, &chunk);
        }
        if (r != SHOAL_OK) {
            fail("publisher_loan", r);
            break;
        }
        sample_t *s = shoal_chunk_payload(chunk);
        s->index = i;
        s->checksum = checksum(i);
        r = shoal_publisher_publish(pub, chunk); /* consumes the chunk */
        if (r != SHOAL_OK) {
            fail("publisher_publish", r);
            break;
        }
    }
    for (uint32_t i = 0; i < g_subscribers; i++)
        pthread_join(subs[i], NULL);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    shoal_publisher_destroy(pub);

    uint64_t total = 0;
    int complete = 1;
    printf("publish_subscribe: domain %s, %u samples of %" PRIu64 " bytes to %u subscribers\n",
           shoal_runtime_domain(g_rt), g_samples, g_size, g_subscribers);
    printf("  received per subscriber:");
    for (uint32_t i = 0; i < g_subscribers; i++) {
        printf(" %" PRIu64, g_received[i]);
        total += g_received[i];
        if (g_received[i] != g_samples)
            complete = 0;
    }
    double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    printf("\n  %" PRIu64 " deliveries in %.3f s\n", total, secs);
    shoal_runtime_destroy(g_rt);
    int ok = complete && !atomic_load(&g_failed);
    printf("publish_subscribe: %s\n", ok ? "OK" : "FAILED");
    return ok ? 0 : 1;
}
