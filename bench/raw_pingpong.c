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

static int raw_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                     uint64_t *samples)
{
    (void)state;
    _Atomic uint32_t *w = pair_word(ctl, pair);
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (i == cfg->warmup)
            bench_mark_start(ctl, pair);
        uint32_t ping = (uint32_t)(2 * i + 1), pong = (uint32_t)(2 * i + 2);
        uint64_t t0 = bench_now_ns();
        post(cfg, w, ping);
        if (wait_for(cfg, ctl, w, pong) != 0)
            return -1;
        uint64_t t1 = bench_now_ns();
        if (i >= cfg->warmup)
            samples[i - cfg->warmup] = t1 - t0;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

static int raw_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state)
{
    (void)state;
    _Atomic uint32_t *w = pair_word(ctl, pair);
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (wait_for(cfg, ctl, w, (uint32_t)(2 * i + 1)) != 0)
            return -1;
        post(cfg, w, (uint32_t)(2 * i + 2));
    }
    return 0;
}

static const bench_ops_t raw_ops = {
    .run_a = raw_run_a,
    .run_b = raw_run_b,
};

static void clock_row(const bench_opts_t *o)
{
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
    bench_cfg_t c = {.cpu_a = o->cpu_a, .cpu_b = -1};
    char cpus[64];
    bench_cpus_str(&c, cpus, sizeof cpus);
    bench_print_raw_row("raw", "clock", "-", 0, 1, n, &st, cpus);
    free(s);
    bench_pin(-1);
}

int main(int argc, char **argv)
{
    int ncpu = bench_online_cpus();
    bench_opts_t o = {
        .iters = 100000,
        .warmup = 10000,
        .cpu_a = 0,
        .cpu_b = ncpu > 1 ? 1 : 0,
        .pairs = {1, 4},
        .npairs = 2,
        .payloads = {64},
        .npayloads = 1,
        .modes = {BENCH_BUSY, BENCH_BLOCK},
        .nmodes = 2,
        .patterns = "all",
        .header = 1,
        .timeout_s = 120,
        .repeat = 1,
    };
    bench_parse_opts(&o, argc, argv, "raw_pingpong",
                     "  patterns: pingpong, clock. Payload is always one cache line (64).\n");
    if (o.header)
        printf("%s\n", BENCH_CSV_HEADER);
    fprintf(stderr, "raw_pingpong: %d online CPUs; side A on %d, side B on %d\n", ncpu, o.cpu_a,
            o.cpu_b);
    if (bench_pattern_selected(&o, "clock"))
        clock_row(&o);
    if (!bench_pattern_selected(&o, "pingpong"))
        return 0;
    uint64_t run = 0;
    bench_job_t jobs[16];
    int n = 0;
    for (int m = 0; m < o.nmodes; m++) {
        for (int p = 0; p < o.npairs && n < 16; p++) {
            bench_cfg_t cfg = {
                .suite = "raw",
                .pattern = "pingpong",
                .mode = o.modes[m],
                .payload = 64,
                .pairs = o.pairs[p],
                .iters = o.iters,
                .warmup = o.warmup,
                .cpu_a = o.cpu_a,
                .cpu_b = o.cpu_b,
                .timeout_s = o.timeout_s,
                .run_id = ++run,
            };
            bench_decide_yield(&cfg);
            jobs[n++] = (bench_job_t){cfg, &raw_ops, 0, 1.0, {0}};
        }
    }
    bench_sweep(jobs, n, o.repeat);
    for (int i = 0; i < n; i++)
        bench_print_row(&jobs[i].cfg, &jobs[i].stats);
    return 0;
}
