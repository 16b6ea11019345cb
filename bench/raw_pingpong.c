/*
 * raw_pingpong.c - the machine's own limit for a cross-process round trip.
 *
 * Two processes (fork) share an anonymous MAP_SHARED mapping and pass a
 * sequence number back and forth through one 32-bit word in its own cache
 * line:
 *   busy  - both sides spin on the word (cache-line ping-pong): the floor for
 *           any busy-polling IPC round trip.
 *   block - both sides sleep in FUTEX_WAIT (non-private: the word is shared
 *           between processes) and wake each other with FUTEX_WAKE: the floor
 *           for any IPC round trip whose receiver sleeps in the kernel.
 * Plus one "clock" row: the cost of the CLOCK_MONOTONIC read every sample
 * pays (included in every latency of every suite).
 *
 * Output: CSV rows (bench_common.h). Default placement: side A on CPU 0,
 * side B on CPU 1.
 */
#include "bench_common.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static long sys_futex(_Atomic uint32_t *addr, int op, uint32_t val, const struct timespec *ts)
{
    return syscall(SYS_futex, (uint32_t *)addr, op, val, ts, NULL, 0);
}

static _Atomic uint32_t *pair_word(bench_ctl_t *ctl, int pair)
{
    return (_Atomic uint32_t *)(void *)(ctl->aux + (size_t)pair * 256);
}

static const struct timespec k_wait_slice = {0, 100 * 1000 * 1000}; /* re-check stop */

/* Wait until *w == want. busy: spin; block: FUTEX_WAIT. */
static int wait_for(const bench_cfg_t *cfg, bench_ctl_t *ctl, _Atomic uint32_t *w, uint32_t want)
{
    uint32_t v;
    if (cfg->mode == BENCH_BUSY) {
        while ((v = atomic_load_explicit(w, memory_order_acquire)) != want) {
            if (bench_stopping(ctl))
                return -1;
            bench_spin_once(cfg);
        }
        return 0;
    }
    while ((v = atomic_load_explicit(w, memory_order_acquire)) != want) {
        if (bench_stopping(ctl))
            return -1;
        long r = sys_futex(w, FUTEX_WAIT, v, &k_wait_slice);
        if (r != 0 && errno != EAGAIN && errno != EINTR && errno != ETIMEDOUT) {
            bench_fail(ctl, "FUTEX_WAIT: %s", strerror(errno));
            return -1;
        }
    }
    return 0;
}

static void post(const bench_cfg_t *cfg, _Atomic uint32_t *w, uint32_t v)
{
    atomic_store_explicit(w, v, memory_order_release);
    if (cfg->mode == BENCH_BLOCK)
        sys_futex(w, FUTEX_WAKE, 1, NULL);
}

static int raw_round(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    _Atomic uint32_t *w = state;
    post(cfg, w, (uint32_t)(2 * i + 1));
    return wait_for(cfg, ctl, w, (uint32_t)(2 * i + 2));
}

BENCH_TIMED_RUN_A(raw_run_a, raw_round)

static int raw_answer(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state, uint64_t i)
{
    if (wait_for(cfg, ctl, state, (uint32_t)(2 * i + 1)) != 0)
        return -1;
    post(cfg, state, (uint32_t)(2 * i + 2));
    return 0;
}

BENCH_STEPS_RUN(raw_run_b, raw_answer)

/* A pair's state is its word in the shared control block. */
static int raw_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    (void)cfg;
    (void)side;
    *state = pair_word(ctl, pair);
    return 0;
}

static const bench_ops_t raw_ops = {
    .pair_setup = raw_setup,
    .run_a = raw_run_a,
    .run_b = raw_run_b,
};

static void clock_row(const bench_opts_t *o, uint64_t run_id)
{
    (void)run_id;
    uint64_t n = o->iters;
    uint64_t *s = malloc(n * sizeof *s);
    if (!s)
        return;
    bench_pin(o->cpu_a);
    for (uint64_t i = 0; i < o->warmup; i++)
        (void)bench_now_ns();
    uint64_t start = bench_now_ns();
    for (uint64_t i = 0; i < n; i++) {
        uint64_t t0 = bench_now_ns();
        uint64_t t1 = bench_now_ns();
        s[i] = t1 - t0;
    }
    uint64_t end = bench_now_ns();
    bench_stats_t st;
    memset(&st, 0, sizeof st);
    bench_compute(s, n, 1.0, &st);
    st.throughput_per_s = (double)n / ((double)(end - start) / 1e9);
    snprintf(st.note, sizeof st.note, "back-to-back CLOCK_MONOTONIC reads");
    char cpus[64];
    bench_print_raw_row("raw", "clock", "-", 0, 1, n, &st, bench_one_cpu_str(o->cpu_a, cpus, sizeof cpus));
    free(s);
    bench_pin(-1);
}

static const uint64_t one_line[] = {64, 0};

static const bench_pattern_t patterns[] = {
    {.name = "clock", .run = clock_row},
    {.name = "pingpong", .ops = &raw_ops, .msgs_per_round = 1.0, .payloads = one_line},
};

int main(int argc, char **argv)
{
    const bench_suite_t suite = {
        .name = "raw",
        .usage = "  Payload is always one cache line (64).\n",
        .defaults = BENCH_DEFAULTS(100000, 10000, "all", 1),
        BENCH_PATTERNS(patterns),
    };
    return bench_main(&suite, argc, argv);
}
