/*
 * design_floor.c - what a busy-poll round trip costs for each piece of a
 * zero-copy design, measured the same way as raw_pingpong, so the gap
 * between the raw cache-line ping-pong and shoal can be attributed.
 *
 * Two processes (fork) share an anonymous mapping and pass a message index
 * through two bounded MPMC rings of sequence-numbered cells (the queue shoal
 * uses), adding one layer per step:
 *   ring          only the ring (the index is the message)
 *   +payload      the sender writes one payload line, the receiver reads it
 *   +header       ... and one separate chunk-header line each way
 * Each step adds roughly one cache line crossing per direction; shoal's
 * request/response path is the "+header" step plus its bookkeeping.
 *
 * Output: CSV rows like raw_pingpong (suite "floor").
 */
#include <inttypes.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CELLS 256
#define LINES 64

typedef struct cell {
    _Atomic uint64_t seq, val;
} cell_t;

typedef struct ring {
    _Alignas(64) _Atomic uint64_t enq;
    _Alignas(64) _Atomic uint64_t deq;
    _Alignas(64) cell_t c[CELLS];
} ring_t;

typedef struct line {
    _Alignas(64) volatile char b[64];
} line_t;

typedef struct shared {
    ring_t to_b, to_a;
    line_t header[LINES];
    line_t payload[LINES];
} shared_t;

static int push(ring_t *q, uint64_t v)
{
    uint64_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
    for (;;) {
        cell_t *c = &q->c[pos & (CELLS - 1)];
        uint64_t s = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t d = (int64_t)(s - pos);
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->enq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                atomic_store_explicit(&c->val, v, memory_order_relaxed);
                atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
                return 1;
            }
        } else if (d < 0) {
            return 0;
        } else {
            pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
        }
    }
}

static int pop(ring_t *q, uint64_t *v)
{
    uint64_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
    for (;;) {
        cell_t *c = &q->c[pos & (CELLS - 1)];
        uint64_t s = atomic_load_explicit(&c->seq, memory_order_acquire);
        int64_t d = (int64_t)(s - (pos + 1));
        if (d == 0) {
            if (atomic_compare_exchange_weak_explicit(&q->deq, &pos, pos + 1, memory_order_relaxed,
                                                      memory_order_relaxed)) {
                *v = atomic_load_explicit(&c->val, memory_order_relaxed);
                atomic_store_explicit(&c->seq, pos + CELLS, memory_order_release);
                return 1;
            }
        } else if (d < 0) {
            return 0;
        } else {
            pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
        }
    }
}

static uint64_t now_ns(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)t.tv_sec * 1000000000ull + (uint64_t)t.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static void pin(int cpu)
{
    if (cpu < 0)
        return;
    cpu_set_t s;
    CPU_ZERO(&s);
    CPU_SET(cpu, &s);
    sched_setaffinity(0, sizeof s, &s);
}

/* write the message's lines (sender) or read them (receiver) */
static void touch(shared_t *m, uint64_t msg, int layers, int write)
{
    if (layers >= 1) {
        if (write)
            m->payload[msg].b[0] = (char)msg;
        else
            (void)m->payload[msg].b[0];
    }
    if (layers >= 2) {
        if (write)
            m->header[msg].b[0] = (char)msg;
        else
            (void)m->header[msg].b[0];
    }
}

static const char *const NAMES[] = { "ring", "+payload", "+header" };

int main(int argc, char **argv)
{
    int iters = 200000, warmup = 2000, cpu_a = 0, cpu_b = 1;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--iters"))
            iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu-a"))
            cpu_a = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu-b"))
            cpu_b = atoi(argv[i + 1]);
        else {
            fprintf(stderr, "usage: design_floor [--iters N] [--cpu-a N] [--cpu-b N]\n");
            return 2;
        }
    }
    if (iters < 100)
        iters = 100;
    printf("suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,"
           "throughput_per_s,cpus,note\n");
    for (int layers = 0; layers <= 2; layers++) {
        shared_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS,
                           -1, 0);
        if (m == MAP_FAILED)
            return 1;
        for (int i = 0; i < CELLS; i++) {
            m->to_b.c[i].seq = (uint64_t)i;
            m->to_a.c[i].seq = (uint64_t)i;
        }
        int total = iters + warmup;
        pid_t pid = fork();
        if (pid == 0) {
            pin(cpu_b);
            for (int i = 0; i < total; i++) {
                uint64_t v;
                while (!pop(&m->to_b, &v))
                    ;
                touch(m, v, layers, 0);
                uint64_t r = (v + 1) % LINES;
                touch(m, r, layers, 1);
                while (!push(&m->to_a, r))
                    ;
            }
            _exit(0);
        }
        pin(cpu_a);
        uint64_t *t = malloc((size_t)iters * sizeof *t);
        uint64_t start = 0;
        for (int i = 0; i < total; i++) {
            if (i == warmup)
                start = now_ns();
            uint64_t t0 = now_ns();
            uint64_t s = (uint64_t)(2 * i) % LINES;
            touch(m, s, layers, 1);
            while (!push(&m->to_b, s))
                ;
            uint64_t v;
            while (!pop(&m->to_a, &v))
                ;
            touch(m, v, layers, 0);
            if (i >= warmup)
                t[i - warmup] = now_ns() - t0;
        }
        uint64_t elapsed = now_ns() - start;
        waitpid(pid, NULL, 0);
        qsort(t, (size_t)iters, sizeof *t, cmp_u64);
        printf("floor,%s,busy,64,1,%d,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%.1f,"
               "a=%d;b=%d,one more cache line each way per step\n",
               NAMES[layers], iters, t[iters / 2], t[(size_t)iters * 99 / 100],
               t[(size_t)iters * 999 / 1000], t[iters - 1], iters * 1e9 / (double)elapsed,
               cpu_a, cpu_b);
        free(t);
        munmap(m, sizeof *m);
    }
    return 0;
}
