/*
 * bench_common.h - the harness shared by the shoal benchmarks.
 *
 * Every benchmark binary (raw_pingpong, iceoryx_bench, shoal_bench) runs the
 * same two-sided experiment: side A (the client / pinger) and side B (the
 * server / ponger) are two processes forked from a parent that never touches
 * the IPC system under test. Each side runs `pairs` threads, one per
 * client/server pair. Side A times every round trip with CLOCK_MONOTONIC and
 * stores the samples in an anonymous MAP_SHARED area; the parent computes the
 * statistics and prints one CSV row per configuration.
 *
 * CSV columns (the same for every suite, see docs/performance.md):
 *   suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,
 *   throughput_per_s,cpus,note
 */
#ifndef SHOAL_BENCH_COMMON_H
#define SHOAL_BENCH_COMMON_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define BENCH_CSV_HEADER                                                                       \
    "suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,throughput_per_s," \
    "cpus,note"

#define BENCH_MAX_PAIRS 64
#define BENCH_MAX_PAYLOADS 16

enum bench_mode { BENCH_BUSY = 0, BENCH_BLOCK = 1 };

/* One configuration (one CSV row). */
typedef struct bench_cfg {
    const char *suite;   /* "raw", "iceoryx", "shoal" */
    const char *pattern; /* "pingpong", "rr", "pubsub" */
    int mode;            /* enum bench_mode */
    uint64_t payload;    /* bytes per message */
    int pairs;
    uint64_t iters;  /* measured round trips per pair */
    uint64_t warmup; /* unmeasured round trips per pair before */
    int cpu_a, cpu_b; /* -1: not pinned */
    int yield;        /* busy loops call sched_yield (more spinners than CPUs) */
    double timeout_s; /* whole configuration, enforced by the parent */
    uint64_t run_id;  /* unique per configuration (names of services) */
    const void *user; /* suite specific, read only */
} bench_cfg_t;

/* Control block shared by the parent and both sides (MAP_SHARED). */
typedef struct bench_ctl {
    _Atomic uint32_t b_ready; /* side B has set up all its pairs */
    _Atomic uint32_t a_done;  /* side A finished measuring (or failed) */
    _Atomic uint32_t stop;    /* somebody failed: everyone leave */
    _Atomic uint32_t failed;
    _Atomic uint64_t progress; /* suite specific counter, reported on failure */
    char err[512];
    uint64_t start_ns[BENCH_MAX_PAIRS]; /* measured phase, per pair (side A) */
    uint64_t end_ns[BENCH_MAX_PAIRS];
    /* Suite-specific shared scratch (raw uses it for its cache lines). */
    _Alignas(4096) unsigned char aux[BENCH_MAX_PAIRS * 256];
    /* Extra numbers a suite wants in its note column. */
    char note[512];
    _Alignas(64) uint64_t samples[]; /* pairs * iters, pair-major */
} bench_ctl_t;

/* Per-side operations of a suite. Any may be NULL. Return 0 on success; on
 * failure call bench_fail() and return -1. */
typedef struct bench_ops {
    /* Once per side process, before any pair. side is 'A' or 'B'. */
    int (*proc_init)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side);
    void (*proc_fini)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side);
    /* Per pair, sequentially in the main thread. On side A it is called
     * after side B is ready and should wait until the pair is connected. */
    int (*pair_setup)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
                      void **state);
    void (*pair_teardown)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
                          void *state);
    /* Per pair, in its own thread. Side A performs warmup + iters round
     * trips, storing iters samples (ns, full round trip) in samples[] and
     * calling bench_mark_start() after the warmup; side B answers exactly
     * warmup + iters round trips. */
    int (*run_a)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                 uint64_t *samples);
    int (*run_b)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state);
} bench_ops_t;

/* Result of one configuration. */
typedef struct bench_stats {
    int ok;
    uint64_t n;
    double median_ns, p99_ns, p999_ns, max_ns;
    double throughput_per_s;
    char note[1024];
} bench_stats_t;

/* ---- options common to all binaries -------------------------------------- */

typedef struct bench_opts {
    uint64_t iters;
    uint64_t warmup;
    int cpu_a, cpu_b;
    int pairs[8];
    int npairs;
    uint64_t payloads[BENCH_MAX_PAYLOADS];
    int npayloads;
    int modes[2];
    int nmodes;
    const char *patterns; /* comma list or "all" */
    int header;           /* print the CSV header first */
    double timeout_s;
    const char *extra; /* suite-specific selector (e.g. "create") */
    int repeat;        /* --repeat: runs per configuration, samples pooled */
} bench_opts_t;

/* Parses the common options; unknown options are an error. `defaults`
 * holds what the binary wants when an option is absent. Exits on --help or on
 * a bad option, printing `usage_extra` too. */
void bench_parse_opts(bench_opts_t *o, int argc, char **argv, const char *prog,
                      const char *usage_extra);
int bench_pattern_selected(const bench_opts_t *o, const char *pattern);

/* ---- helpers --------------------------------------------------------------- */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static inline void bench_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

/* One failed poll in a busy loop: pause, or give the CPU away when there are
 * more spinning threads than CPUs (cfg->yield). */
void bench_spin_once(const bench_cfg_t *cfg);

/* Record a failure (first one wins) and ask everyone to stop. printf-like. */
void bench_fail(bench_ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static inline int bench_stopping(bench_ctl_t *ctl)
{
    return atomic_load_explicit(&ctl->stop, memory_order_relaxed) != 0;
}
/* Side A: call after the warmup, and bench_mark_end() after the last sample. */
void bench_mark_start(bench_ctl_t *ctl, int pair);
void bench_mark_end(bench_ctl_t *ctl, int pair);

/* Append to ctl->note ("key=value;" pairs). */
void bench_note(bench_ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Pins the calling thread (and what it creates later) to `cpu`; -1 = no-op. */
int bench_pin(int cpu);
int bench_online_cpus(void);

/* Parses "64", "4K", "1M", "64M", "1G" (powers of 1024). 0 on error. */
uint64_t bench_parse_size(const char *s);
/* "64", "4K", "1M", ... */
const char *bench_size_name(uint64_t bytes, char *buf, size_t len);

/* Fills in cfg->yield from the placement and pair count. */
void bench_decide_yield(bench_cfg_t *cfg);
/* "a=0;b=1" */
const char *bench_cpus_str(const bench_cfg_t *cfg, char *buf, size_t len);

/* Runs one configuration: forks side B and side A, waits for both (killing
 * them by pid after cfg->timeout_s), computes statistics. `one_way` halves
 * latency samples (pub/sub ping-pong reports one-way latency);
 * `msgs_per_round` scales the throughput column. */
void bench_run_config(const bench_cfg_t *cfg, const bench_ops_t *ops, int one_way,
                      double msgs_per_round, bench_stats_t *out);

/* A configuration to run, and its result. */
typedef struct bench_job {
    bench_cfg_t cfg;
    const bench_ops_t *ops;
    int one_way;
    double msgs_per_round;
    bench_stats_t stats; /* out */
} bench_job_t;

/* Runs every job `repeat` times (fresh processes each time), cfg.iters split
 * over the repetitions, in alternating order (forward, backward, ...) so that
 * slow drift of a shared machine spreads over all configurations; the samples
 * of the repetitions are pooled. A failed repetition fails the job. */
void bench_sweep(bench_job_t *jobs, int n, int repeat);

/* Statistics of n samples (sorted in place), scaled by `scale`. */
void bench_compute(uint64_t *samples, uint64_t n, double scale, bench_stats_t *out);

/* Prints one CSV row (to stdout, flushed). For !st->ok, the latency columns
 * are empty and the note carries the error. */
void bench_print_row(const bench_cfg_t *cfg, const bench_stats_t *st);
/* A row that is not a two-sided latency (port creation, memory). */
void bench_print_raw_row(const char *suite, const char *pattern, const char *mode,
                         uint64_t payload, int pairs, uint64_t iters, const bench_stats_t *st,
                         const char *cpus);

/* Runs `fn` in a forked child with a shared control block and waits for it
 * (timeout_s, then SIGKILL by pid). Returns 0 if the child exited 0. */
int bench_run_in_child(int (*fn)(bench_ctl_t *ctl, const void *arg), const void *arg,
                       size_t samples, double timeout_s, bench_ctl_t **ctl_out);
void bench_ctl_free(bench_ctl_t *ctl, size_t samples);

#endif
