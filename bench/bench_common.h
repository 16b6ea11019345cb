/*
 * bench_common.h - the harness shared by the shoal benchmarks.
 *
 * Every benchmark binary (raw_pingpong, design_floor, iceoryx_bench,
 * shoal_bench) is a suite descriptor handed to bench_main(): its patterns,
 * its defaults and how to check that the IPC under test is there. Most
 * patterns run the same two-sided experiment: side A (the client / pinger /
 * publisher) and side B (the server / ponger / subscribers) are two processes
 * forked from a parent that never touches the IPC system under test. Each
 * side runs its threads (by default `pairs`, one per client/server pair);
 * the sampling side (A unless a pattern says B) times every round trip or
 * delivery with CLOCK_MONOTONIC and stores the samples in an anonymous
 * MAP_SHARED area; the parent computes the statistics and prints one CSV row
 * per configuration.
 *
 * CSV columns (the same for every suite, see docs/performance.md):
 *   suite,pattern,mode,payload,pairs,iters,median_ns,p99_ns,p999_ns,max_ns,
 *   throughput_per_s,cpus,note
 */
#ifndef SHOAL_BENCH_COMMON_H
#define SHOAL_BENCH_COMMON_H

#include <inttypes.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
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
    /* Threads per side (0: `pairs`) and which side stores samples ('A' or
     * 'B'; 0: 'A'): a fan-out has 1 publisher and `pairs` subscribers, and
     * the subscribers time the deliveries. Each sampling thread stores
     * `iters` samples. */
    int threads_a, threads_b;
    int sample_side;
    int param; /* pattern specific: requests in flight, services, ... */
} bench_cfg_t;

/* Threads of one side, and samples of a whole configuration. */
int bench_threads(const bench_cfg_t *cfg, int side);
static inline int bench_sample_side(const bench_cfg_t *cfg)
{
    return cfg->sample_side ? cfg->sample_side : 'A';
}

/* Control block shared by the parent and both sides (MAP_SHARED). */
typedef struct bench_ctl {
    _Atomic uint32_t b_ready; /* side B has set up all its pairs */
    _Atomic uint32_t a_done;  /* side A finished measuring (or failed) */
    _Atomic uint32_t stop;    /* somebody failed: everyone leave */
    _Atomic uint32_t failed;
    _Atomic uint64_t progress; /* suite specific counter, reported on failure */
    char err[512];
    uint64_t start_ns[BENCH_MAX_PAIRS]; /* measured phase, per sampling thread */
    uint64_t end_ns[BENCH_MAX_PAIRS];
    /* Suite-specific shared scratch (raw uses it for its cache lines). */
    _Alignas(4096) unsigned char aux[BENCH_MAX_PAIRS * 256];
    /* Extra numbers a suite wants in its note column. */
    char note[512];
    _Alignas(64) uint64_t samples[]; /* sampling threads * iters, thread-major */
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
    /* Per thread of each side. The sampling side (samples != NULL) stores
     * iters samples (ns) after a warmup, calling bench_mark_start() after the
     * warmup and bench_mark_end() after the last sample (bench_time_rounds()
     * does all of it); the other side gets NULL and serves exactly
     * warmup + iters rounds. */
    int (*run_a)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                 uint64_t *samples);
    int (*run_b)(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                 uint64_t *samples);
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
    const char *patterns; /* comma list of patterns or groups, or "all" */
    int header;           /* print the CSV header first */
    double timeout_s;
    int repeat; /* --repeat: runs per configuration, samples pooled */
} bench_opts_t;

/* ---- a suite binary ------------------------------------------------------- */

/* One pattern of a suite. A sweep pattern (ops set) is one two-sided
 * configuration per mode x pairs x payload, all of a run of consecutive sweep
 * patterns measured together by bench_sweep(); a one-off pattern (run set)
 * prints its own rows. */
typedef struct bench_pattern {
    const char *name;  /* --patterns name and CSV pattern column */
    const char *group; /* also selected by this name ("throughput", "scale") */
    const bench_ops_t *ops;
    int one_way;            /* samples are a ping-pong: report half */
    double msgs_per_round;  /* messages per sample, for the throughput column */
    const int *pairs;       /* its own list (0-terminated) instead of --pairs */
    const uint64_t *payloads; /* its own list (0-terminated) instead of --payloads */
    int threads_a, threads_b, sample_side, param; /* copied into bench_cfg_t */
    void (*run)(const bench_opts_t *o, uint64_t run_id);
} bench_pattern_t;

/* Defaults of every binary but the counts that differ: side A on CPU 0,
 * side B on CPU 1 (bench_main() moves it to CPU 0 on a 1-CPU machine),
 * pairs 1 and 4, payloads 64 B to 1 GiB, both modes. */
#define BENCH_DEFAULTS(iters_, warmup_, patterns_, repeat_)                                   \
    {                                                                                       \
        .iters = (iters_), .warmup = (warmup_), .cpu_a = 0, .cpu_b = 1, .pairs = {1, 4},    \
        .npairs = 2, .payloads = {64, 4096, 1u << 20, 64u << 20, 1u << 30}, .npayloads = 5, \
        .modes = {BENCH_BUSY, BENCH_BLOCK}, .nmodes = 2, .patterns = (patterns_),           \
        .header = 1, .timeout_s = 120, .repeat = (repeat_)                                  \
    }

/* The rows iceoryx_bench and shoal_bench share (docs/performance.md). */
enum {
    BENCH_FANOUT_QUEUE = 32,      /* each fan-out subscriber's queue: the publisher waits */
    BENCH_MANY_SERVICES = 1000,   /* services: 1 client and 1 server each */
    BENCH_SCALE_PORTS = 4096,     /* port_create: 1,024 of each kind */
    BENCH_SCALE_SERVICES = 1000,  /* service_create: a server and a client each */
    BENCH_MATCH_PUBLISHERS = 1000 /* sub_match */
};
extern const int bench_fanout_subscribers[];    /* 1, 4, 8 */
extern const uint64_t bench_fanout_payloads[];  /* 64 B, 1 MiB */
extern const int bench_one_pair[];              /* 1 */
extern const int bench_many_services[];         /* BENCH_MANY_SERVICES */
extern const uint64_t bench_small_payload[];    /* 64 B */

/* The pattern table of an IPC suite, from its ops and one-off functions;
 * services and the scale rows of an IPC that cannot have them are one-offs
 * or ops refused by its `cannot`, and say why. */
#define BENCH_IPC_PATTERNS(rr, pubsub, create, fanout, rr_k, services, port_create,             \
                           service_create, sub_match, memory)                                  \
    {.name = "rr", .ops = (rr), .msgs_per_round = 1.0},                                          \
    {.name = "pubsub", .ops = (pubsub), .one_way = 1, .msgs_per_round = 2.0},                    \
    {.name = "create", .run = (create)},                                                         \
    {.name = "fanout", .group = "throughput", .ops = (fanout), .msgs_per_round = 1.0,            \
     .pairs = bench_fanout_subscribers, .payloads = bench_fanout_payloads, .threads_a = 1,       \
     .sample_side = 'B'},                                                                        \
    BENCH_RR_K(rr_k, 1), BENCH_RR_K(rr_k, 8), BENCH_RR_K(rr_k, 64),                              \
    {.name = "services", .group = "throughput", .ops = (services), .msgs_per_round = 1.0,        \
     .pairs = bench_many_services, .payloads = bench_small_payload, .threads_a = 1,              \
     .threads_b = 1, .param = BENCH_MANY_SERVICES},                                              \
    {.name = "port_create", .group = "scale", .run = (port_create)},                             \
    {.name = "service_create", .group = "scale", .run = (service_create)},                       \
    {.name = "sub_match", .group = "scale", .run = (sub_match)},                                 \
    {.name = "port_memory_bytes", .group = "scale", .run = (memory)}
#define BENCH_RR_K(ops_, k_)                                                                    \
    {.name = "rr_k" #k_, .group = "throughput", .ops = (ops_), .msgs_per_round = 1.0,          \
     .pairs = bench_one_pair, .payloads = bench_small_payload, .param = (k_)}

/* A suite-specific option with a value (--domain NAME): stored in *value. */
typedef struct bench_extra_opt {
    const char *name;
    const char **value;
} bench_extra_opt_t;

typedef struct bench_suite {
    const char *name;  /* CSV suite column and program name */
    const char *usage; /* extra --help lines */
    bench_opts_t defaults;
    const bench_pattern_t *patterns;
    int npatterns;
    const bench_extra_opt_t *extra; /* NULL-name terminated, may be NULL */
    /* Is the IPC there? Run in a child first; a failure is a "probe" row
     * whose note starts with probe_error. A note it leaves goes to stderr. */
    int (*probe)(bench_ctl_t *ctl, const void *arg);
    double probe_timeout_s;
    const char *probe_error;
    /* A configuration this IPC cannot run: 0, or -1 with the reason. */
    int (*cannot)(const bench_cfg_t *cfg, char *why, size_t len);
} bench_suite_t;

/* .patterns and .npatterns of a bench_suite_t from a static array. */
#define BENCH_PATTERNS(array) .patterns = (array), .npatterns = (int)(sizeof(array) / sizeof((array)[0]))

/* Parses the options (the suite's defaults, its extras, the common ones),
 * prints the header, probes, then runs every selected pattern in order.
 * Exits on --help or a bad option. Returns the process exit code. */
int bench_main(const bench_suite_t *suite, int argc, char **argv);
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
/* Sampling side: call after the warmup, and bench_mark_end() after the last sample. */
void bench_mark_start(bench_ctl_t *ctl, int pair);
void bench_mark_end(bench_ctl_t *ctl, int pair);

/* One round of a sampling thread (i counts from 0, warmup included):
 * 0, or -1 after bench_fail(). */
typedef int (*bench_round_fn)(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state,
                              uint64_t i);

/* warmup + iters timed rounds, storing the last iters. Inlined, so that the
 * round is a direct call the compiler can inline too: the loop is the hot
 * path of every latency row. */
static inline __attribute__((always_inline)) int
bench_time_rounds(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                  uint64_t *samples, bench_round_fn round)
{
    const uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (i == cfg->warmup)
            bench_mark_start(ctl, pair);
        uint64_t t0 = bench_now_ns();
        if (round(cfg, ctl, state, i) != 0)
            return -1;
        uint64_t t1 = bench_now_ns();
        if (i >= cfg->warmup)
            samples[i - cfg->warmup] = t1 - t0;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

/* A sampling thread with k requests in flight: send(i) until k are
 * outstanding, then receive(oldest) (answers come in order) and send the
 * next. A sample is one request, from just before its send step to the end
 * of its receive step. */
static inline __attribute__((always_inline)) int
bench_time_pipeline(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                    uint64_t *samples, uint64_t k, bench_round_fn send, bench_round_fn receive)
{
    const uint64_t total = cfg->warmup + cfg->iters;
    uint64_t *sent_ns = calloc(k, sizeof *sent_ns);
    if (!sent_ns) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    for (uint64_t sent = 0, got = 0; got < total; got++) {
        for (; sent < total && sent - got < k; sent++) {
            sent_ns[sent % k] = bench_now_ns();
            if (send(cfg, ctl, state, sent) != 0)
                goto fail;
        }
        if (got == cfg->warmup)
            bench_mark_start(ctl, pair);
        if (receive(cfg, ctl, state, got) != 0)
            goto fail;
        if (got >= cfg->warmup)
            samples[got - cfg->warmup] = bench_now_ns() - sent_ns[got % k];
    }
    bench_mark_end(ctl, pair);
    free(sent_ns);
    return 0;
fail:
    free(sent_ns);
    return -1;
}

/* One delivery of a fan-out: take message n, check it, release it and
 * store the time from its publisher's stamp to the take in *ns. */
typedef int (*bench_delivery_fn)(const bench_cfg_t *cfg, bench_ctl_t *ctl, void *state,
                                 uint64_t n, uint64_t *ns);

/* A subscriber of a fan-out: warmup + iters deliveries, the last iters timed. */
static inline __attribute__((always_inline)) int
bench_time_deliveries(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                      uint64_t *samples, bench_delivery_fn take)
{
    const uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t n = 0; n < total; n++) {
        uint64_t ns = 0;
        if (take(cfg, ctl, state, n, &ns) != 0)
            return -1;
        if (n == cfg->warmup)
            bench_mark_start(ctl, pair);
        if (n >= cfg->warmup)
            samples[n - cfg->warmup] = ns;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

/* Defines run_a `name` as timed rounds of `round` (inlined into it). */
#define BENCH_TIMED_RUN_A(name, round)                                                          \
    static int name(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,          \
                    uint64_t *samples)                                                        \
    {                                                                                         \
        return bench_time_rounds(cfg, ctl, pair, state, samples, (round));                    \
    }

/* Defines run function `name` of the side that does not sample:
 * warmup + iters calls of `step` (i counts from 0), each answering or
 * sending one message. */
#define BENCH_STEPS_RUN(name, step)                                                             \
    static int name(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,          \
                    uint64_t *samples)                                                        \
    {                                                                                         \
        (void)pair;                                                                           \
        (void)samples;                                                                        \
        const uint64_t total = cfg->warmup + cfg->iters;                                      \
        for (uint64_t i = 0; i < total; i++)                                                  \
            if ((step)(cfg, ctl, state, i) != 0)                                              \
                return -1;                                                                    \
        return 0;                                                                             \
    }

/* Polls ready(arg) every millisecond until it is true: 0; -1 when the run
 * stops or after timeout_s (then bench_fail() names `what`). */
int bench_wait_until(bench_ctl_t *ctl, int (*ready)(const void *arg), const void *arg,
                     double timeout_s, const char *what);

/* Payload marks: only the first 8 bytes (a sequence number) and the last
 * byte are written and read, so that cost does not depend on the size. */
static inline void bench_touch_write(void *p, uint64_t size, uint64_t seq)
{
    unsigned char *b = p;
    memcpy(b, &seq, sizeof seq);
    b[size - 1] = (unsigned char)(seq * 31u + 7u);
}

static inline int bench_touch_check(const void *p, uint64_t size, uint64_t seq)
{
    const unsigned char *b = p;
    uint64_t got;
    memcpy(&got, b, sizeof got);
    return got == seq && b[size - 1] == (unsigned char)(seq * 31u + 7u);
}

/* 0 if the received message i was good, else -1 after bench_fail(). */
static inline int bench_check_message(bench_ctl_t *ctl, int good, const char *what, uint64_t i)
{
    if (good)
        return 0;
    bench_fail(ctl, "%s %" PRIu64 " lost, out of order or with the wrong payload", what, i);
    return -1;
}

static inline uint64_t bench_touch_read(const void *p)
{
    uint64_t got;
    memcpy(&got, p, sizeof got);
    return got;
}

/* The second 8 bytes of a fan-out message: when its publisher stamped it. */
static inline void bench_stamp_write(void *p, uint64_t ns)
{
    memcpy((unsigned char *)p + 8, &ns, sizeof ns);
}

static inline uint64_t bench_stamp_read(const void *p)
{
    uint64_t ns;
    memcpy(&ns, (const unsigned char *)p + 8, sizeof ns);
    return ns;
}

/* Append to ctl->note ("key=value;" pairs). */
void bench_note(bench_ctl_t *ctl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Pins the calling thread (and what it creates later) to `cpu`; -1 = no-op. */
int bench_pin(int cpu);
int bench_online_cpus(void);
/* Resident set of this process in bytes, -1 if unknown. */
long bench_rss_bytes(void);

/* Parses "64", "4K", "1M", "64M", "1G" (powers of 1024). 0 on error. */
uint64_t bench_parse_size(const char *s);
/* "64", "4K", "1M", ... */
const char *bench_size_name(uint64_t bytes, char *buf, size_t len);

/* Fills in cfg->yield from the placement and thread counts. */
void bench_decide_yield(bench_cfg_t *cfg);
/* "a=0;b=1" */
const char *bench_cpus_str(const bench_cfg_t *cfg, char *buf, size_t len);

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
/* A row this IPC cannot run: empty figures, the note says why. */
void bench_print_error_row(const char *suite, const char *pattern, const char *mode,
                           int pairs, const char *fmt, ...) __attribute__((format(printf, 5, 6)));
/* "a=0;b=any;ncpu=2": the placement of a one-process row on `cpu`. */
const char *bench_one_cpu_str(int cpu, char *buf, size_t len);

/* Runs `fn` in a forked child with a shared control block and waits for it
 * (timeout_s, then SIGKILL by pid). Returns 0 if the child exited 0. */
int bench_run_in_child(int (*fn)(bench_ctl_t *ctl, const void *arg), const void *arg,
                       size_t samples, double timeout_s, bench_ctl_t **ctl_out);
void bench_ctl_free(bench_ctl_t *ctl, size_t samples);

/* ---- creating and destroying many ports in one process --------------------- */

/* The child creates `count` ports one at a time, then destroys them in the
 * same order, timing each call. */
typedef struct bench_scale {
    const char *suite, *create_row, *destroy_row; /* NULL rows: not printed */
    int count;
    int pairs_column; /* what the pairs column shows (0: count) */
    int group;        /* ports in each of the first/last means of the note */
    int cpu;
    double timeout_s;
    const void *arg;
    int (*open)(bench_ctl_t *ctl, const void *arg, void **env);
    int (*create)(bench_ctl_t *ctl, void *env, int i);
    void (*destroy)(void *env, int i);
    /* all created: store sizes in bench_scale_aux(ctl)[1..] (may be NULL) */
    void (*measured)(bench_ctl_t *ctl, void *env);
    void (*close)(void *env);
} bench_scale_t;

/* Runs it in a child and prints the create and destroy rows (or an error
 * row). Returns the control block for more rows (aux[0]: resident-set growth
 * of the child over the creations, in bytes), or NULL after a failure; free
 * it with bench_scale_free(). */
bench_ctl_t *bench_scale_run(const bench_scale_t *s);
void bench_scale_free(const bench_scale_t *s, bench_ctl_t *ctl);
static inline uint64_t *bench_scale_aux(bench_ctl_t *ctl)
{
    return (uint64_t *)(void *)ctl->aux;
}

#endif
