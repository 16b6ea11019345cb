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
 * times, interleaved, and pools the samples. The rows are not the harness's
 * two-sided sweep (one fork per row and run, nothing else in the processes),
 * but the options, clock, statistics and CSV are bench_common's.
 */
#include "bench_common.h"

#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
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

static void send_msg(shared_t *m, ring_t *q, int kind, int layers, uint64_t line, uint64_t data)
{
    if (layers >= 1)
        m->payload[line].w[0] = data;
    if (layers >= 2)
        m->header[line].w[0] = data;
    while (!(kind == SPSC ? push_spsc(q, line) : push_mpmc(q, line)))
        bench_cpu_relax();
}

/* returns the data the message carries (the payload's first word) */
static uint64_t recv_msg(shared_t *m, ring_t *q, int kind, int layers, uint64_t *line)
{
    while (!(kind == SPSC ? pop_spsc(q, line) : pop_mpmc(q, line)))
        bench_cpu_relax();
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
        bench_pin(cpu_b);
        for (uint32_t i = 0; i < (uint32_t)total; i++) {
            if (r->kind == RAW) {
                while (atomic_load_explicit(&m->word, memory_order_acquire) != 2 * i + 1)
                    bench_cpu_relax();
                atomic_store_explicit(&m->word, 2 * i + 2, memory_order_release);
                continue;
            }
            uint64_t line;
            uint64_t data = recv_msg(m, &m->to_b, r->kind, r->layers, &line);
            send_msg(m, &m->to_a, r->kind, r->layers, (line + 1) % LINES, data);
        }
        _exit(0);
    }
    bench_pin(cpu_a);
    int ok = 1;
    for (uint32_t i = 0; i < (uint32_t)total && ok; i++) {
        uint64_t t0 = bench_now_ns();
        if (r->kind == RAW) {
            atomic_store_explicit(&m->word, 2 * i + 1, memory_order_release);
            while (atomic_load_explicit(&m->word, memory_order_acquire) != 2 * i + 2)
                bench_cpu_relax();
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
            r->t[r->n++] = bench_now_ns() - t0;
    }
    int st = 0;
    waitpid(pid, &st, 0);
    munmap(m, sizeof *m);
    return ok && WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -1;
}

static void floor_rows(const bench_opts_t *o, uint64_t run_id)
{
    (void)run_id;
    int repeat = o->repeat < 1 ? 1 : o->repeat;
    int iters = (int)o->iters, warmup = (int)o->warmup;
    if (iters < 100 * repeat)
        iters = 100 * repeat;
    row_t rows[7] = { { RAW, 0, NULL, 0 } };
    int nrows = 1;
    for (int k = MPMC; k <= SPSC; k++)
        for (int l = 0; l <= 2; l++)
            rows[nrows++] = (row_t){ k, l, NULL, 0 };
    for (int i = 0; i < nrows; i++) {
        rows[i].t = malloc((size_t)iters * sizeof *rows[i].t);
        if (!rows[i].t) {
            bench_print_error_row("floor", "raw", "busy", 1, "out of memory");
            goto out;
        }
    }
    /* interleaved and alternating in direction, so drift of a shared machine
     * lands on every row alike */
    int per = iters / repeat;
    for (int r = 0; r < repeat; r++)
        for (int j = 0; j < nrows; j++) {
            row_t *row = &rows[r % 2 ? nrows - 1 - j : j];
            if (run_row(row, per, warmup, o->cpu_a, o->cpu_b) != 0) {
                bench_print_error_row("floor", "raw", "busy", 1, "a side failed");
                goto out;
            }
        }
    bench_cfg_t place = {.cpu_a = o->cpu_a, .cpu_b = o->cpu_b};
    char cpus[64];
    bench_cpus_str(&place, cpus, sizeof cpus);
    double raw = 0;
    for (int i = 0; i < nrows; i++) {
        row_t *r = &rows[i];
        double sum = 0;
        for (size_t k = 0; k < r->n; k++)
            sum += (double)r->t[k];
        bench_stats_t st;
        memset(&st, 0, sizeof st);
        bench_compute(r->t, r->n, 1.0, &st);
        st.throughput_per_s = sum > 0 ? (double)r->n * 1e9 / sum : 0;
        if (r->kind == RAW)
            raw = st.median_ns;
        snprintf(st.note, sizeof st.note, "runs=%d;vs_raw=%.2fx", repeat,
                 raw > 0 ? st.median_ns / raw : 0.0);
        char name[32];
        if (r->kind == RAW)
            snprintf(name, sizeof name, "raw");
        else
            snprintf(name, sizeof name, "%s %s", KIND[r->kind], LAYER[r->layers]);
        bench_print_raw_row("floor", name, "busy", 64, 1, r->n, &st, cpus);
    }
out:
    for (int i = 0; i < nrows; i++)
        free(rows[i].t);
}

static const bench_pattern_t patterns[] = {
    {.name = "floor", .run = floor_rows},
};

int main(int argc, char **argv)
{
    const bench_suite_t suite = {
        .name = "floor",
        .usage = "  rows: raw, then mpmc and spsc ring, +payload, +header (busy, 64 B, 1 pair)\n",
        .defaults = BENCH_DEFAULTS(200000, 2000, "all", 3),
        BENCH_PATTERNS(patterns),
    };
    return bench_main(&suite, argc, argv);
}
