/*
 * design_floor.c - what a busy-poll round trip costs for each piece of a
 * zero-copy design, measured in the same run as the raw cache-line
 * ping-pong, so the gap between raw_pingpong and shoal can be attributed.
 *
 * Two processes (fork) share an anonymous mapping. Every row is a busy
 * ping-pong of 2 processes pinned like the other suites, and every spin
 * calls `pause` between two polls, as raw_pingpong does (a spin without it
 * is ~30% slower on this VM and would flatter the raw row).
 *
 *   raw               one 32-bit word in one line, as raw_pingpong
 * then, for each ring kind, one layer more per row:
 *   ring              the message is a ring entry (an index) and nothing else
 *   +payload          the sender writes a payload line the index names; the
 *                     receiver reads it and its reply carries what it read
 *                     (a data dependency, as in shoal_bench: the server
 *                     answers with the request's first 8 bytes)
 *   +header           ... and a separate header line each way, read in
 *                     parallel with the payload
 * Ring kinds:
 *   mpmc              shoal's queue (capi/src/core/queue.c): cells with a
 *                     sequence number, positions claimed by CAS, the consumer
 *                     writes the cell back for the producer's next lap
 *   spsc              the cheapest ring there is: one producer, one consumer,
 *                     no locked instruction, the consumer writes only its own
 *                     index and the producer reads it only when the ring looks
 *                     full
 * A zero-copy receiver must read the ring entry before it knows which payload
 * line to read; that dependent second line is what the +payload rows cost.
 *
 * Output: CSV rows like raw_pingpong (suite "floor"); the note column gives
 * the ratio to the raw row of the same run. --repeat R runs every row R
 * times, interleaved, and pools the samples.
 */
#include <inttypes.h>
#include <sched.h>
#include <signal.h>
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
    _Atomic uint64_t deq_seen; /* spsc: the producer's copy of deq */
    _Alignas(64) _Atomic uint64_t deq;
    _Alignas(64) cell_t c[CELLS];
} ring_t;

typedef struct line {
    _Alignas(64) volatile uint64_t w[8];
} line_t;

typedef struct shared {
    _Alignas(64) _Atomic uint32_t word; /* raw */
    ring_t to_b, to_a;
    line_t header[LINES];
    line_t payload[LINES];
} shared_t;

static inline void relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* ---- mpmc: the algorithm of capi/src/core/queue.c ------------------------ */

static int push_mpmc(ring_t *q, uint64_t v)
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

static int pop_mpmc(ring_t *q, uint64_t *v)
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

/* ---- spsc: no locked instruction at all ---------------------------------- */

static int push_spsc(ring_t *q, uint64_t v)
{
    uint64_t pos = atomic_load_explicit(&q->enq, memory_order_relaxed);
    uint64_t deq = atomic_load_explicit(&q->deq_seen, memory_order_relaxed);
    if (pos - deq >= CELLS) {
        deq = atomic_load_explicit(&q->deq, memory_order_acquire);
        atomic_store_explicit(&q->deq_seen, deq, memory_order_relaxed);
        if (pos - deq >= CELLS)
            return 0;
    }
    atomic_store_explicit(&q->enq, pos + 1, memory_order_relaxed);
    cell_t *c = &q->c[pos & (CELLS - 1)];
    atomic_store_explicit(&c->val, v, memory_order_relaxed);
    atomic_store_explicit(&c->seq, pos + 1, memory_order_release);
    return 1;
}

static int pop_spsc(ring_t *q, uint64_t *v)
{
    uint64_t pos = atomic_load_explicit(&q->deq, memory_order_relaxed);
    cell_t *c = &q->c[pos & (CELLS - 1)];
    if (atomic_load_explicit(&c->seq, memory_order_acquire) != pos + 1)
        return 0;
    *v = atomic_load_explicit(&c->val, memory_order_relaxed);
    atomic_store_explicit(&q->deq, pos + 1, memory_order_release);
    return 1;
}

/* ---- one row ---------------------------------------------------------- */

enum { RAW = -1, MPMC = 0, SPSC = 1 };
static const char *const LAYER[] = { "ring", "+payload", "+header" };
static const char *const KIND[] = { "mpmc", "spsc" };

typedef struct row {
    int kind, layers;
    uint64_t *t;
    size_t n;
} row_t;

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

static void send_msg(shared_t *m, ring_t *q, int kind, int layers, uint64_t line, uint64_t data)
{
    if (layers >= 1)
        m->payload[line].w[0] = data;
    if (layers >= 2)
        m->header[line].w[0] = data;
    while (!(kind == SPSC ? push_spsc(q, line) : push_mpmc(q, line)))
        relax();
}

/* returns the data the message carries (the payload's first word) */
static uint64_t recv_msg(shared_t *m, ring_t *q, int kind, int layers, uint64_t *line)
{
    while (!(kind == SPSC ? pop_spsc(q, line) : pop_mpmc(q, line)))
        relax();
    uint64_t data = *line;
    if (layers >= 1)
        data = m->payload[*line].w[0];
    if (layers >= 2)
        (void)m->header[*line].w[0]; /* independent of the payload: read in parallel */
    return data;
}

/* Runs `iters` round trips of one row in two fresh processes and appends
 * the samples (ns per round trip, clock read included as in raw_pingpong). */
static int run_row(row_t *r, int iters, int warmup, int cpu_a, int cpu_b)
{
    shared_t *m = mmap(NULL, sizeof *m, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED)
        return -1;
    for (int i = 0; i < CELLS; i++) {
        uint64_t s = r->kind == MPMC ? (uint64_t)i : 0;
        m->to_b.c[i].seq = s;
        m->to_a.c[i].seq = s;
    }
    int total = iters + warmup;
    pid_t pid = fork();
    if (pid < 0) {
        munmap(m, sizeof *m);
        return -1;
    }
    if (pid == 0) {
        pin(cpu_b);
        for (uint32_t i = 0; i < (uint32_t)total; i++) {
            if (r->kind == RAW) {
                while (atomic_load_explicit(&m->word, memory_order_acquire) != 2 * i + 1)
                    relax();
                atomic_store_explicit(&m->word, 2 * i + 2, memory_order_release);
                continue;
            }
            uint64_t line;
            uint64_t data = recv_msg(m, &m->to_b, r->kind, r->layers, &line);
            send_msg(m, &m->to_a, r->kind, r->layers, (line + 1) % LINES, data);
        }
        _exit(0);
    }
    pin(cpu_a);
    int ok = 1;
    for (uint32_t i = 0; i < (uint32_t)total && ok; i++) {
        uint64_t t0 = now_ns();
        if (r->kind == RAW) {
            atomic_store_explicit(&m->word, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&m->word, memory_order_acquire) != 2 * i + 2)
                relax();
        } else {
            send_msg(m, &m->to_b, r->kind, r->layers, (2 * i) % LINES, i);
            uint64_t line;
            uint64_t data = recv_msg(m, &m->to_a, r->kind, r->layers, &line);
            if (r->layers >= 1 && data != i) {
                fprintf(stderr, "design_floor: reply %u carries %" PRIu64 "\n", i, data);
                ok = 0;
                kill(pid, SIGKILL); /* it waits for a message that will not come */
                break;
            }
        }
        if (i >= (uint32_t)warmup)
            r->t[r->n++] = now_ns() - t0;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    munmap(m, sizeof *m);
    return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
    int iters = 200000, warmup = 2000, cpu_a = 0, cpu_b = 1, repeat = 3;
    for (int i = 1; i < argc; i += 2) {
        if (i + 1 == argc)
            goto usage; /* an option without its value */
        if (!strcmp(argv[i], "--iters"))
            iters = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu-a"))
            cpu_a = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--cpu-b"))
            cpu_b = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--repeat"))
            repeat = atoi(argv[i + 1]);
        else
            goto usage;
    }
    if (repeat < 1)
        repeat = 1;
    if (iters < 100 * repeat)
        iters = 100 * repeat;
    row_t rows[7] = { { RAW, 0, NULL, 0 } };
    int nrows = 1;
    for (int k = MPMC; k <= SPSC; k++)
        for (int l = 0; l <= 2; l++)
            rows[nrows++] = (row_t){ k, l, NULL, 0 };
    for (int i = 0; i < nrows; i++) {
        rows[i].t = malloc((size_t)iters * sizeof *rows[i].t);
        if (!rows[i].t)
            return 1;
    }
    /* interleaved and alternating in direction, so drift of a shared machine
     * lands on every row alike */
    int per = iters / repeat;
    for (int r = 0; r < repeat; r++)
        for (int j = 0; j < nrows; j++) {
            row_t *row = &rows[r % 2 ? nrows - 1 - j : j];
            if (run_row(row, per, warmup, cpu_a, cpu_b) != 0) {
                fprintf(stderr, "design_floor: a side failed\n");
                return 1;
            }
        }
    printf("suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,"
           "throughput_per_s,cpus,note\n");
    uint64_t raw = 0;
    for (int i = 0; i < nrows; i++) {
        row_t *r = &rows[i];
        qsort(r->t, r->n, sizeof *r->t, cmp_u64);
        uint64_t med = r->t[r->n / 2];
        if (r->kind == RAW)
            raw = med;
        char name[32];
        if (r->kind == RAW)
            snprintf(name, sizeof name, "raw");
        else
            snprintf(name, sizeof name, "%s %s", KIND[r->kind], LAYER[r->layers]);
        printf("floor,%s,busy,64,1,%zu,%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",%" PRIu64 ",,"
               "a=%d;b=%d,runs=%d;vs_raw=%.2fx\n",
               name, r->n, med, r->t[r->n * 99 / 100], r->t[r->n * 999 / 1000], r->t[r->n - 1],
               cpu_a, cpu_b, repeat, raw ? (double)med / (double)raw : 0.0);
        free(r->t);
    }
    return 0;
usage:
    fprintf(stderr, "usage: design_floor [--iters N] [--repeat R] [--cpu-a N] [--cpu-b N]\n");
    return 2;
}
