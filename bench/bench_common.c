/*
 * bench_common.c - the two-sided benchmark harness (see bench_common.h).
 */
#include "bench_common.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

/* ---- small helpers --------------------------------------------------------- */

void bench_spin_once(const bench_cfg_t *cfg)
{
    if (cfg->yield)
        sched_yield();
    else
        bench_cpu_relax();
}

void bench_fail(bench_ctl_t *ctl, const char *fmt, ...)
{
    uint32_t expected = 0;
    if (atomic_compare_exchange_strong(&ctl->failed, &expected, 1u)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ctl->err, sizeof ctl->err, fmt, ap);
        va_end(ap);
    }
    atomic_store(&ctl->stop, 1u);
}

void bench_note(bench_ctl_t *ctl, const char *fmt, ...)
{
    size_t used = strlen(ctl->note);
    if (used >= sizeof ctl->note - 1)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(ctl->note + used, sizeof ctl->note - used, fmt, ap);
    va_end(ap);
}

int bench_wait_until(bench_ctl_t *ctl, int (*ready)(const void *arg), const void *arg,
                     double timeout_s, const char *what)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    while (!ready(arg)) {
        if (bench_stopping(ctl))
            return -1;
        if (bench_now_ns() > deadline) {
            bench_fail(ctl, "%s not reached within %.0f s", what, timeout_s);
            return -1;
        }
        usleep(1000);
    }
    return 0;
}

void bench_mark_start(bench_ctl_t *ctl, int pair)
{
    ctl->start_ns[pair] = bench_now_ns();
}

void bench_mark_end(bench_ctl_t *ctl, int pair)
{
    ctl->end_ns[pair] = bench_now_ns();
}

long bench_rss_bytes(void)
{
    FILE *f = fopen("/proc/self/statm", "r");
    long pages = 0, resident = 0;
    if (!f)
        return -1;
    if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
        resident = -1;
    fclose(f);
    return resident < 0 ? -1 : resident * sysconf(_SC_PAGESIZE);
}

int bench_online_cpus(void)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

int bench_pin(int cpu)
{
    if (cpu < 0)
        return 0;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    if (sched_setaffinity(0, sizeof set, &set) != 0) {
        fprintf(stderr, "bench: sched_setaffinity(cpu %d): %s\n", cpu, strerror(errno));
        return -1;
    }
    return 0;
}

uint64_t bench_parse_size(const char *s)
{
    char *end = NULL;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || end == s)
        return 0;
    uint64_t mult = 1;
    switch (*end) {
    case '\0': break;
    case 'k': case 'K': mult = 1024ull; end++; break;
    case 'm': case 'M': mult = 1024ull * 1024; end++; break;
    case 'g': case 'G': mult = 1024ull * 1024 * 1024; end++; break;
    default: return 0;
    }
    if (*end == 'i' || *end == 'B')
        end++;
    if (*end == 'B')
        end++;
    if (*end != '\0')
        return 0;
    return (uint64_t)v * mult;
}

const char *bench_size_name(uint64_t b, char *buf, size_t len)
{
    if (b >= (1ull << 30) && b % (1ull << 30) == 0)
        snprintf(buf, len, "%" PRIu64 "G", b >> 30);
    else if (b >= (1ull << 20) && b % (1ull << 20) == 0)
        snprintf(buf, len, "%" PRIu64 "M", b >> 20);
    else if (b >= 1024 && b % 1024 == 0)
        snprintf(buf, len, "%" PRIu64 "K", b >> 10);
    else
        snprintf(buf, len, "%" PRIu64, b);
    return buf;
}

int bench_threads(const bench_cfg_t *cfg, int side)
{
    int t = side == 'A' ? cfg->threads_a : cfg->threads_b;
    return t > 0 ? t : cfg->pairs;
}

void bench_decide_yield(bench_cfg_t *cfg)
{
    int cpus = bench_online_cpus();
    int a = bench_threads(cfg, 'A'), b = bench_threads(cfg, 'B');
    int spinners = a + b;
    int same_cpu = cfg->cpu_a >= 0 && cfg->cpu_a == cfg->cpu_b;
    int pinned_per_cpu = (cfg->cpu_a >= 0 && cfg->cpu_b >= 0) ? (same_cpu ? spinners : a > b ? a : b)
                                                                : 0;
    cfg->yield = (cfg->mode == BENCH_BUSY) &&
                 (spinners > cpus || same_cpu || pinned_per_cpu > 1);
}

const char *bench_cpus_str(const bench_cfg_t *cfg, char *buf, size_t len)
{
    char a[16], b[16];
    if (cfg->cpu_a >= 0)
        snprintf(a, sizeof a, "%d", cfg->cpu_a);
    else
        snprintf(a, sizeof a, "any");
    if (cfg->cpu_b >= 0)
        snprintf(b, sizeof b, "%d", cfg->cpu_b);
    else
        snprintf(b, sizeof b, "any");
    snprintf(buf, len, "a=%s;b=%s;ncpu=%d", a, b, bench_online_cpus());
    return buf;
}

const char *bench_one_cpu_str(int cpu, char *buf, size_t len)
{
    bench_cfg_t c = {.cpu_a = cpu, .cpu_b = -1};
    return bench_cpus_str(&c, buf, len);
}

/* ---- options ------------------------------------------------------------------ */

static void usage(const char *prog, const char *extra, int code)
{
    FILE *f = code ? stderr : stdout;
    fprintf(f,
            "usage: %s [options]\n"
            "  --iters N          measured round trips per pair\n"
            "  --warmup N         unmeasured round trips per pair first\n"
            "  --cpu-a N          pin side A (client / pinger) to CPU N (-1: no pinning)\n"
            "  --cpu-b N          pin side B (server / ponger) to CPU N (-1: no pinning)\n"
            "  --pairs LIST       e.g. 1,4\n"
            "  --payloads LIST    e.g. 64,4K,1M,64M,1G\n"
            "  --modes LIST       busy,block\n"
            "  --patterns LIST    patterns or groups of patterns to run (or all)\n"
            "  --repeat R         run every configuration R times (fresh processes, alternating\n"
            "                     order over the sweep), --iters split over them, samples pooled\n"
            "  --timeout S        per configuration, then the sides are killed\n"
            "  --no-header        do not print the CSV header\n"
            "%s",
            prog, extra ? extra : "");
    exit(code);
}

static int parse_int_list(const char *s, int *out, int cap)
{
    int n = 0;
    char *copy = strdup(s), *save = NULL;
    for (char *t = strtok_r(copy, ",", &save); t && n < cap; t = strtok_r(NULL, ",", &save)) {
        char *end;
        long v = strtol(t, &end, 10);
        if (*end || v <= 0 || v > BENCH_MAX_PAIRS) {
            free(copy);
            return -1;
        }
        out[n++] = (int)v;
    }
    free(copy);
    return n;
}

static void parse_opts(bench_opts_t *o, int argc, char **argv, const char *prog,
                       const char *usage_extra)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = (i + 1 < argc) ? argv[i + 1] : NULL;
#define NEED()                                                      \
    do {                                                            \
        if (!v) {                                                   \
            fprintf(stderr, "%s: %s needs a value\n", prog, a);     \
            usage(prog, usage_extra, 2);                            \
        }                                                           \
        i++;                                                        \
    } while (0)
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(prog, usage_extra, 0);
        } else if (!strcmp(a, "--iters")) {
            NEED();
            o->iters = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--warmup")) {
            NEED();
            o->warmup = strtoull(v, NULL, 10);
        } else if (!strcmp(a, "--cpu-a")) {
            NEED();
            o->cpu_a = atoi(v);
        } else if (!strcmp(a, "--cpu-b")) {
            NEED();
            o->cpu_b = atoi(v);
        } else if (!strcmp(a, "--pairs")) {
            NEED();
            o->npairs = parse_int_list(v, o->pairs, 8);
            if (o->npairs <= 0) {
                fprintf(stderr, "%s: bad --pairs '%s' (1..%d)\n", prog, v, BENCH_MAX_PAIRS);
                exit(2);
            }
        } else if (!strcmp(a, "--payloads")) {
            NEED();
            o->npayloads = 0;
            char *copy = strdup(v), *save = NULL;
            for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                uint64_t s = bench_parse_size(t);
                if (!s || o->npayloads >= BENCH_MAX_PAYLOADS) {
                    fprintf(stderr, "%s: bad payload '%s'\n", prog, t);
                    exit(2);
                }
                o->payloads[o->npayloads++] = s;
            }
            free(copy);
        } else if (!strcmp(a, "--modes")) {
            NEED();
            o->nmodes = 0;
            if (strstr(v, "busy"))
                o->modes[o->nmodes++] = BENCH_BUSY;
            if (strstr(v, "block"))
                o->modes[o->nmodes++] = BENCH_BLOCK;
            if (!o->nmodes) {
                fprintf(stderr, "%s: bad --modes '%s' (busy,block)\n", prog, v);
                exit(2);
            }
        } else if (!strcmp(a, "--patterns")) {
            NEED();
            o->patterns = v;
        } else if (!strcmp(a, "--repeat")) {
            NEED();
            o->repeat = atoi(v);
            if (o->repeat < 1 || o->repeat > 64) {
                fprintf(stderr, "%s: --repeat must be 1..64\n", prog);
                exit(2);
            }
        } else if (!strcmp(a, "--timeout")) {
            NEED();
            o->timeout_s = atof(v);
        } else if (!strcmp(a, "--no-header")) {
            o->header = 0;
        } else {
            fprintf(stderr, "%s: unknown option '%s'\n", prog, a);
            usage(prog, usage_extra, 2);
        }
#undef NEED
    }
    if (o->iters == 0) {
        fprintf(stderr, "%s: --iters must be > 0\n", prog);
        exit(2);
    }
}

int bench_pattern_selected(const bench_opts_t *o, const char *pattern)
{
    if (!o->patterns || !strcmp(o->patterns, "all"))
        return 1;
    size_t n = strlen(pattern);
    for (const char *p = o->patterns; (p = strstr(p, pattern)) != NULL; p += n) {
        int starts = (p == o->patterns) || p[-1] == ',';
        int ends = p[n] == '\0' || p[n] == ',';
        if (starts && ends)
            return 1;
    }
    return 0;
}

/* ---- statistics and output ------------------------------------------------- */

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

static double pct(const uint64_t *s, uint64_t n, double q)
{
    /* nearest-rank percentile */
    uint64_t rank = (uint64_t)(q * (double)n + 0.999999);
    if (rank < 1)
        rank = 1;
    if (rank > n)
        rank = n;
    return (double)s[rank - 1];
}

void bench_compute(uint64_t *s, uint64_t n, double scale, bench_stats_t *out)
{
    out->n = n;
    if (n == 0) {
        out->ok = 0;
        snprintf(out->note, sizeof out->note, "error: no samples");
        return;
    }
    qsort(s, n, sizeof *s, cmp_u64);
    double med = (n % 2) ? (double)s[n / 2] : ((double)s[n / 2 - 1] + (double)s[n / 2]) / 2.0;
    out->median_ns = med * scale;
    out->p99_ns = pct(s, n, 0.99) * scale;
    out->p999_ns = pct(s, n, 0.999) * scale;
    out->max_ns = (double)s[n - 1] * scale;
    out->ok = 1;
}

static void csv_clean(char *s)
{
    for (; *s; s++)
        if (*s == ',' || *s == '\n' || *s == '\r' || *s == '"')
            *s = (*s == ',') ? ';' : ' ';
}

void bench_print_raw_row(const char *suite, const char *pattern, const char *mode,
                         uint64_t payload, int pairs, uint64_t iters, const bench_stats_t *st,
                         const char *cpus)
{
    char note[sizeof st->note];
    snprintf(note, sizeof note, "%s", st->note);
    csv_clean(note);
    if (st->ok)
        printf("%s,%s,%s,%" PRIu64 ",%d,%" PRIu64 ",%.1f,%.1f,%.1f,%.1f,%.1f,%s,%s\n", suite,
               pattern, mode, payload, pairs, iters, st->median_ns, st->p99_ns, st->p999_ns,
               st->max_ns, st->throughput_per_s, cpus, note);
    else
        printf("%s,%s,%s,%" PRIu64 ",%d,%" PRIu64 ",,,,,,%s,%s\n", suite, pattern, mode, payload,
               pairs, iters, cpus, note);
    fflush(stdout);
}

void bench_print_row(const bench_cfg_t *cfg, const bench_stats_t *st)
{
    char cpus[64];
    bench_cpus_str(cfg, cpus, sizeof cpus);
    bench_print_raw_row(cfg->suite, cfg->pattern, cfg->mode == BENCH_BUSY ? "busy" : "block",
                        cfg->payload, cfg->pairs, cfg->iters, st, cpus);
}

void bench_print_error_row(const char *suite, const char *pattern, const char *mode, int pairs,
                           const char *fmt, ...)
{
    bench_stats_t st;
    memset(&st, 0, sizeof st);
    int n = snprintf(st.note, sizeof st.note, "error: ");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(st.note + n, sizeof st.note - (size_t)n, fmt, ap);
    va_end(ap);
    bench_print_raw_row(suite, pattern, mode, 0, pairs, 0, &st, "-");
}

/* ---- the two sides -------------------------------------------------------------- */

typedef struct thread_arg {
    const bench_cfg_t *cfg;
    const bench_ops_t *ops;
    bench_ctl_t *ctl;
    int side;
    int pair;
    void *state;
    pthread_barrier_t *barrier;
    int rc;
} thread_arg_t;

static void *pair_thread(void *p)
{
    thread_arg_t *t = p;
    pthread_barrier_wait(t->barrier);
    /* the sampling side's threads each own iters samples */
    uint64_t *samples = t->side == bench_sample_side(t->cfg)
                            ? t->ctl->samples + (size_t)t->pair * t->cfg->iters
                            : NULL;
    if (t->side == 'A')
        t->rc = t->ops->run_a(t->cfg, t->ctl, t->pair, t->state, samples);
    else
        t->rc = t->ops->run_b(t->cfg, t->ctl, t->pair, t->state, samples);
    if (t->rc != 0 && !atomic_load(&t->ctl->failed))
        bench_fail(t->ctl, "side %c pair %d failed", t->side, t->pair);
    return NULL;
}

static int flag_set(const void *flag)
{
    return atomic_load((_Atomic uint32_t *)flag) != 0;
}

static int side_main(const bench_cfg_t *cfg, const bench_ops_t *ops, bench_ctl_t *ctl, int side)
{
    if (bench_pin(side == 'A' ? cfg->cpu_a : cfg->cpu_b) != 0) {
        bench_fail(ctl, "side %c: cannot pin to cpu %d", side, side == 'A' ? cfg->cpu_a : cfg->cpu_b);
        return 1;
    }
    if (ops->proc_init && ops->proc_init(cfg, ctl, side) != 0) {
        bench_fail(ctl, "side %c: process init failed", side);
        return 1;
    }
    void *states[BENCH_MAX_PAIRS] = {0};
    int set_up = 0;
    int rc = 0;
    if (side == 'A') {
        if (bench_wait_until(ctl, flag_set, &ctl->b_ready, cfg->timeout_s, "side A: side B ready"))
            rc = 1;
    }
    const int threads = bench_threads(cfg, side);
    for (int p = 0; rc == 0 && p < threads; p++) {
        if (ops->pair_setup && ops->pair_setup(cfg, ctl, side, p, &states[p]) != 0) {
            if (!atomic_load(&ctl->failed))
                bench_fail(ctl, "side %c: setup of pair %d failed", side, p);
            rc = 1;
            break;
        }
        set_up = p + 1;
    }
    if (rc == 0 && side == 'B')
        atomic_store(&ctl->b_ready, 1u);

    if (rc == 0) {
        pthread_barrier_t barrier;
        pthread_barrier_init(&barrier, NULL, (unsigned)threads);
        thread_arg_t args[BENCH_MAX_PAIRS];
        pthread_t th[BENCH_MAX_PAIRS];
        int started = 0;
        for (int p = 0; p < threads; p++) {
            args[p] = (thread_arg_t){cfg, ops, ctl, side, p, states[p], &barrier, 0};
            if (pthread_create(&th[p], NULL, pair_thread, &args[p]) != 0) {
                bench_fail(ctl, "side %c: pthread_create failed", side);
                /* the barrier would never open: leave the process */
                _exit(1);
            }
            started++;
        }
        for (int p = 0; p < started; p++) {
            pthread_join(th[p], NULL);
            if (args[p].rc != 0)
                rc = 1;
        }
        pthread_barrier_destroy(&barrier);
    }

    if (side == 'A')
        atomic_store(&ctl->a_done, 1u);
    else
        (void)bench_wait_until(ctl, flag_set, &ctl->a_done, cfg->timeout_s, "side B: side A done");

    for (int p = set_up - 1; p >= 0; p--)
        if (ops->pair_teardown)
            ops->pair_teardown(cfg, ctl, side, p, states[p]);
    if (ops->proc_fini)
        ops->proc_fini(cfg, ctl, side);
    return rc;
}

static bench_ctl_t *ctl_alloc(size_t samples)
{
    size_t len = sizeof(bench_ctl_t) + samples * sizeof(uint64_t);
    void *p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED)
        return NULL;
    return p; /* zero-filled */
}

void bench_ctl_free(bench_ctl_t *ctl, size_t samples)
{
    if (ctl)
        munmap(ctl, sizeof(bench_ctl_t) + samples * sizeof(uint64_t));
}

/* Waits for the given children until the deadline; kills survivors by pid.
 * Returns a description of the first abnormal end in `why` (empty if none). */
static void reap(pid_t *pids, int n, bench_ctl_t *ctl, double timeout_s, char *why, size_t len)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    int alive = n;
    why[0] = '\0';
    while (alive > 0) {
        int any = 0;
        for (int i = 0; i < n; i++) {
            if (pids[i] <= 0)
                continue;
            int status;
            pid_t r = waitpid(pids[i], &status, WNOHANG);
            if (r == pids[i]) {
                any = 1;
                alive--;
                int bad = !(WIFEXITED(status) && WEXITSTATUS(status) == 0);
                if (bad) {
                    /* let the other side leave its loops */
                    atomic_store(&ctl->stop, 1u);
                    if (!why[0]) {
                        if (WIFSIGNALED(status))
                            snprintf(why, len, "child %d killed by signal %d (%s)", (int)pids[i],
                                     WTERMSIG(status), strsignal(WTERMSIG(status)));
                        else
                            snprintf(why, len, "child %d exited %d", (int)pids[i],
                                     WEXITSTATUS(status));
                    }
                }
                pids[i] = 0;
            } else if (r < 0 && errno != EINTR) {
                pids[i] = 0;
                alive--;
            }
        }
        if (alive == 0)
            break;
        if (bench_now_ns() > deadline) {
            atomic_store(&ctl->stop, 1u);
            /* give them a moment to leave by themselves, then kill by pid */
            usleep(200000);
            for (int i = 0; i < n; i++) {
                if (pids[i] > 0 && waitpid(pids[i], NULL, WNOHANG) == 0) {
                    kill(pids[i], SIGKILL);
                    waitpid(pids[i], NULL, 0);
                } else if (pids[i] > 0) {
                    /* reaped just now */
                }
                pids[i] = 0;
            }
            if (!why[0])
                snprintf(why, len, "timeout after %.0f s", timeout_s);
            break;
        }
        if (!any)
            usleep(2000);
    }
}

/* Runs one configuration once. On success copies the pairs*iters samples to
 * `samples` (caller's buffer) and returns the measured span in *span_ns;
 * returns -1 with the error in err otherwise. */
static size_t samplers(const bench_cfg_t *cfg)
{
    return (size_t)bench_threads(cfg, bench_sample_side(cfg));
}

static int run_once(const bench_cfg_t *cfg, const bench_ops_t *ops, uint64_t *samples,
                    uint64_t *span_ns, char *err, size_t errlen)
{
    size_t nsamp = samplers(cfg) * cfg->iters;
    bench_ctl_t *ctl = ctl_alloc(nsamp);
    if (!ctl) {
        snprintf(err, errlen, "cannot map %zu samples", nsamp);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    /* The children leave with exit(), not _exit(): C++ libraries under test
     * (iceoryx) deregister from their daemon in static destructors. */
    pid_t pids[2];
    pids[0] = fork();
    if (pids[0] == 0)
        exit(side_main(cfg, ops, ctl, 'B'));
    pids[1] = pids[0] > 0 ? fork() : -1;
    if (pids[1] == 0)
        exit(side_main(cfg, ops, ctl, 'A'));
    if (pids[0] < 0 || pids[1] < 0) {
        snprintf(err, errlen, "fork: %s", strerror(errno));
        if (pids[0] > 0) {
            atomic_store(&ctl->stop, 1u);
            kill(pids[0], SIGKILL);
            waitpid(pids[0], NULL, 0);
        }
        bench_ctl_free(ctl, nsamp);
        return -1;
    }
    char why[256];
    reap(pids, 2, ctl, cfg->timeout_s, why, sizeof why);
    int rc = 0;
    if (atomic_load(&ctl->failed) || why[0]) {
        snprintf(err, errlen, "%s%s%s", ctl->err[0] ? ctl->err : "",
                 (ctl->err[0] && why[0]) ? " / " : "", why);
        rc = -1;
    } else {
        memcpy(samples, ctl->samples, nsamp * sizeof *samples);
        uint64_t t0 = UINT64_MAX, t1 = 0;
        for (size_t p = 0; p < samplers(cfg); p++) {
            if (ctl->start_ns[p] && ctl->start_ns[p] < t0)
                t0 = ctl->start_ns[p];
            if (ctl->end_ns[p] > t1)
                t1 = ctl->end_ns[p];
        }
        *span_ns = (t1 > t0 && t0 != UINT64_MAX) ? t1 - t0 : 0;
        snprintf(err, errlen, "%s", ctl->note); /* suite notes, if any */
    }
    bench_ctl_free(ctl, nsamp);
    return rc;
}

void bench_sweep(bench_job_t *jobs, int n, int repeat)
{
    if (repeat < 1)
        repeat = 1;
    typedef struct acc {
        uint64_t *samples;
        uint64_t count;
        uint64_t span_ns;
        int failed;
        char err[800];
    } acc_t;
    acc_t *acc = calloc((size_t)n, sizeof *acc);
    if (!acc)
        return;
    for (int i = 0; i < n; i++) {
        acc[i].samples = malloc(samplers(&jobs[i].cfg) * jobs[i].cfg.iters * sizeof(uint64_t));
        if (!acc[i].samples) {
            acc[i].failed = 1;
            snprintf(acc[i].err, sizeof acc[i].err, "out of memory for samples");
        }
    }
    for (int rep = 0; rep < repeat; rep++) {
        for (int k = 0; k < n; k++) {
            /* alternate the order, so that slow drift of the machine is
             * spread over all configurations */
            int i = (rep % 2) ? n - 1 - k : k;
            bench_job_t *j = &jobs[i];
            if (acc[i].failed)
                continue;
            uint64_t total = j->cfg.iters;
            uint64_t per = total / (uint64_t)repeat;
            uint64_t mine = (rep == repeat - 1) ? total - per * (uint64_t)(repeat - 1) : per;
            if (mine == 0)
                continue;
            bench_cfg_t c = j->cfg;
            c.iters = mine;
            c.run_id = j->cfg.run_id * 64u + (uint64_t)rep;
            const size_t nsamp = samplers(&c) * mine;
            uint64_t *buf = malloc(nsamp * sizeof *buf);
            uint64_t span = 0;
            char err[800];
            if (!buf) {
                acc[i].failed = 1;
                snprintf(acc[i].err, sizeof acc[i].err, "out of memory");
                continue;
            }
            if (run_once(&c, j->ops, buf, &span, err, sizeof err) != 0) {
                acc[i].failed = 1;
                snprintf(acc[i].err, sizeof acc[i].err, "%s", err);
            } else {
                memcpy(acc[i].samples + acc[i].count, buf, nsamp * sizeof *buf);
                acc[i].count += nsamp;
                acc[i].span_ns += span;
                if (err[0] && !acc[i].err[0])
                    snprintf(acc[i].err, sizeof acc[i].err, "%s", err);
            }
            free(buf);
        }
    }
    for (int i = 0; i < n; i++) {
        bench_stats_t *out = &jobs[i].stats;
        memset(out, 0, sizeof *out);
        if (acc[i].failed) {
            snprintf(out->note, sizeof out->note, "error: %s", acc[i].err);
        } else {
            bench_compute(acc[i].samples, acc[i].count, jobs[i].one_way ? 0.5 : 1.0, out);
            if (acc[i].span_ns)
                out->throughput_per_s = (double)acc[i].count * jobs[i].msgs_per_round /
                                        ((double)acc[i].span_ns / 1e9);
            snprintf(out->note, sizeof out->note, "%s%s%s", jobs[i].cfg.yield ? "yield;" : "",
                     acc[i].err, acc[i].err[0] ? ";" : "");
            if (repeat > 1) {
                size_t used = strlen(out->note);
                snprintf(out->note + used, sizeof out->note - used, "runs=%d", repeat);
            }
        }
        free(acc[i].samples);
    }
    free(acc);
}

int bench_run_in_child(int (*fn)(bench_ctl_t *ctl, const void *arg), const void *arg,
                       size_t samples, double timeout_s, bench_ctl_t **ctl_out)
{
    bench_ctl_t *ctl = ctl_alloc(samples);
    *ctl_out = ctl;
    if (!ctl)
        return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0)
        exit(fn(ctl, arg) == 0 ? 0 : 1);
    if (pid < 0) {
        bench_fail(ctl, "fork: %s", strerror(errno));
        return -1;
    }
    char why[256];
    reap(&pid, 1, ctl, timeout_s, why, sizeof why);
    if (why[0]) {
        size_t used = strlen(ctl->err);
        snprintf(ctl->err + used, sizeof ctl->err - used, "%s%s", used ? " / " : "", why);
        atomic_store(&ctl->failed, 1u);
    }
    return atomic_load(&ctl->failed) ? -1 : 0;
}

/* ---- creating and destroying many ports -------------------------------------- */

static int scale_child(bench_ctl_t *ctl, const void *argp)
{
    const bench_scale_t *s = argp;
    bench_pin(s->cpu);
    void *env = NULL;
    if (s->open(ctl, s->arg, &env) != 0)
        return 1;
    uint64_t *create_ns = ctl->samples, *destroy_ns = ctl->samples + s->count;
    long rss0 = bench_rss_bytes();
    int made = 0, rc = 0;
    uint64_t t_all = bench_now_ns();
    for (; made < s->count; made++) {
        uint64_t t0 = bench_now_ns();
        int r = s->create(ctl, env, made);
        create_ns[made] = bench_now_ns() - t0;
        if (r != 0) {
            rc = 1;
            break;
        }
        atomic_store(&ctl->progress, (uint64_t)made + 1);
    }
    uint64_t create_total = bench_now_ns() - t_all;
    long rss1 = bench_rss_bytes();
    if (rc == 0 && s->measured)
        s->measured(ctl, env);
    t_all = bench_now_ns();
    for (int i = 0; i < made; i++) { /* also after a failure: leave nothing behind */
        uint64_t t0 = bench_now_ns();
        s->destroy(env, i);
        destroy_ns[i] = bench_now_ns() - t0;
    }
    uint64_t destroy_total = bench_now_ns() - t_all;
    if (s->close)
        s->close(env);
    bench_scale_aux(ctl)[0] = (uint64_t)(rss1 > rss0 ? rss1 - rss0 : 0);
    bench_note(ctl, "create_total_ms=%.2f;destroy_total_ms=%.2f", (double)create_total / 1e6,
               (double)destroy_total / 1e6);
    return rc;
}

/* One row of per-port times: first and last `group` means in the note
 * (computed before bench_compute sorts the samples). */
static void scale_row(const bench_scale_t *s, const char *pattern, uint64_t *x,
                      const char *child_note, const char *cpus)
{
    if (!pattern)
        return;
    int k = s->group < 1 ? 1 : s->group > s->count ? s->count : s->group;
    double first = 0, last = 0, sum = 0;
    for (int i = 0; i < s->count; i++)
        sum += (double)x[i];
    for (int i = 0; i < k; i++) {
        first += (double)x[i];
        last += (double)x[s->count - k + i];
    }
    bench_stats_t st;
    memset(&st, 0, sizeof st);
    bench_compute(x, (uint64_t)s->count, 1.0, &st);
    st.throughput_per_s = sum > 0 ? s->count / (sum / 1e9) : 0;
    snprintf(st.note, sizeof st.note, "first%d_mean_us=%.1f;last%d_mean_us=%.1f;%s", k,
             first / k / 1e3, k, last / k / 1e3, child_note);
    bench_print_raw_row(s->suite, pattern, "-", 0, s->pairs_column ? s->pairs_column : s->count,
                        (uint64_t)s->count, &st, cpus);
}

bench_ctl_t *bench_scale_run(const bench_scale_t *s)
{
    bench_ctl_t *ctl = NULL;
    int rc = bench_run_in_child(scale_child, s, 2 * (size_t)s->count, s->timeout_s, &ctl);
    char cpus[64];
    bench_one_cpu_str(s->cpu, cpus, sizeof cpus);
    /* without rows of its own the run serves the memory row */
    const char *row = s->create_row ? s->create_row : "port_memory_bytes";
    if (!ctl) {
        bench_print_error_row(s->suite, row, "-", s->count, "cannot map control block");
        return NULL;
    }
    if (rc != 0) {
        bench_print_error_row(s->suite, row, "-", s->count,
                              "%s (after %" PRIu64 " of %d ports created)", ctl->err,
                              atomic_load(&ctl->progress), s->count);
        bench_scale_free(s, ctl);
        return NULL;
    }
    scale_row(s, s->create_row, ctl->samples, ctl->note, cpus);
    scale_row(s, s->destroy_row, ctl->samples + s->count, ctl->note, cpus);
    return ctl;
}

void bench_scale_free(const bench_scale_t *s, bench_ctl_t *ctl)
{
    bench_ctl_free(ctl, 2 * (size_t)s->count);
}

/* ---- bench_main ------------------------------------------------------------------ */

const int bench_fanout_subscribers[] = {1, 4, 8, 0};
const uint64_t bench_fanout_payloads[] = {64, 1u << 20, 0};
const int bench_one_pair[] = {1, 0};
const int bench_many_services[] = {BENCH_MANY_SERVICES, 0};
const uint64_t bench_small_payload[] = {64, 0};

static int pattern_wanted(const bench_opts_t *o, const bench_pattern_t *p)
{
    return bench_pattern_selected(o, p->name) || (p->group && bench_pattern_selected(o, p->group));
}

static int list_len_int(const int *v)
{
    int n = 0;
    while (v[n])
        n++;
    return n;
}

static int list_len_u64(const uint64_t *v)
{
    int n = 0;
    while (v[n])
        n++;
    return n;
}

/* Why a configuration is not run (empty: it is). */
static void cannot_run(const bench_suite_t *s, const bench_cfg_t *cfg, char *why, size_t len)
{
    why[0] = '\0';
    if (bench_threads(cfg, 'A') > BENCH_MAX_PAIRS || bench_threads(cfg, 'B') > BENCH_MAX_PAIRS)
        snprintf(why, len, "more than %d threads per side", BENCH_MAX_PAIRS);
    else if (cfg->payload < 16)
        snprintf(why, len, "payloads below 16 bytes not measured"); /* sequence, stamp */
    else if (s->cannot && s->cannot(cfg, why, len) != 0 && !why[0])
        snprintf(why, len, "not supported");
}

/* One sweep over the consecutive sweep patterns pats[0..n). */
static void run_sweeps(const bench_suite_t *s, const bench_opts_t *o, const bench_pattern_t *pats,
                       int n, uint64_t *run)
{
    size_t cap = 0;
    for (int i = 0; i < n; i++)
        cap += (size_t)o->nmodes *
               (size_t)(pats[i].pairs ? list_len_int(pats[i].pairs) : o->npairs) *
               (size_t)(pats[i].payloads ? list_len_u64(pats[i].payloads) : o->npayloads);
    bench_job_t *jobs = calloc(cap ? cap : 1, sizeof *jobs);
    if (!jobs)
        return;
    int nj = 0;
    for (int i = 0; i < n; i++) {
        const bench_pattern_t *p = &pats[i];
        if (!pattern_wanted(o, p))
            continue;
        int np = p->pairs ? list_len_int(p->pairs) : o->npairs;
        int ns = p->payloads ? list_len_u64(p->payloads) : o->npayloads;
        for (int m = 0; m < o->nmodes; m++)
            for (int a = 0; a < np; a++)
                for (int b = 0; b < ns; b++) {
                    bench_cfg_t cfg = {
                        .suite = s->name,
                        .pattern = p->name,
                        .mode = o->modes[m],
                        .payload = p->payloads ? p->payloads[b] : o->payloads[b],
                        .pairs = p->pairs ? p->pairs[a] : o->pairs[a],
                        .iters = o->iters,
                        .warmup = o->warmup,
                        .cpu_a = o->cpu_a,
                        .cpu_b = o->cpu_b,
                        .timeout_s = o->timeout_s,
                        .run_id = ++*run,
                        .threads_a = p->threads_a,
                        .threads_b = p->threads_b,
                        .sample_side = p->sample_side,
                        .param = p->param,
                    };
                    bench_decide_yield(&cfg);
                    char why[256];
                    cannot_run(s, &cfg, why, sizeof why);
                    if (why[0]) {
                        bench_stats_t st;
                        memset(&st, 0, sizeof st);
                        snprintf(st.note, sizeof st.note, "error: %s", why);
                        bench_print_row(&cfg, &st);
                        continue;
                    }
                    jobs[nj++] = (bench_job_t){cfg, p->ops, p->one_way, p->msgs_per_round, {0}};
                }
    }
    bench_sweep(jobs, nj, o->repeat);
    for (int i = 0; i < nj; i++)
        bench_print_row(&jobs[i].cfg, &jobs[i].stats);
    free(jobs);
}

int bench_main(const bench_suite_t *s, int argc, char **argv)
{
    bench_opts_t o = s->defaults;
    if (o.cpu_b >= bench_online_cpus())
        o.cpu_b = o.cpu_a;
    /* the suite's own options first; the common parser refuses unknown ones */
    for (int i = 1; s->extra && i + 1 < argc; i++) {
        const bench_extra_opt_t *e = s->extra;
        while (e->name && strcmp(e->name, argv[i]) != 0)
            e++;
        if (!e->name)
            continue;
        *e->value = argv[i + 1];
        memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof *argv);
        argc -= 2;
        i--;
    }
    char usage[2048];
    int used = snprintf(usage, sizeof usage, "%s  patterns:", s->usage ? s->usage : "");
    for (int i = 0; i < s->npatterns && used > 0 && (size_t)used < sizeof usage; i++)
        used += snprintf(usage + used, sizeof usage - (size_t)used, " %s%s%s%s",
                         s->patterns[i].name, s->patterns[i].group ? " (" : "",
                         s->patterns[i].group ? s->patterns[i].group : "",
                         s->patterns[i].group ? ")" : "");
    if (used > 0 && (size_t)used < sizeof usage)
        snprintf(usage + used, sizeof usage - (size_t)used, "\n  default: --patterns %s\n",
                 s->defaults.patterns);
    parse_opts(&o, argc, argv, s->name, usage);
    if (o.header)
        printf("%s\n", BENCH_CSV_HEADER);
    fprintf(stderr, "%s: %d online CPUs; side A on %d, side B on %d\n", s->name,
            bench_online_cpus(), o.cpu_a, o.cpu_b);

    if (s->probe) {
        bench_ctl_t *pctl = NULL;
        if (bench_run_in_child(s->probe, NULL, 0, s->probe_timeout_s, &pctl) != 0) {
            bench_print_error_row(s->name, "probe", "-", 0, "%s%s",
                                  s->probe_error ? s->probe_error : "",
                                  pctl ? pctl->err : "cannot probe");
            bench_ctl_free(pctl, 0);
            return 1;
        }
        if (pctl->note[0])
            fprintf(stderr, "%s: %s\n", s->name, pctl->note);
        bench_ctl_free(pctl, 0);
    }

    uint64_t run = (uint64_t)getpid() * 1000u;
    for (int i = 0; i < s->npatterns;) {
        const bench_pattern_t *p = &s->patterns[i];
        if (p->run) {
            if (pattern_wanted(&o, p))
                p->run(&o, ++run);
            i++;
            continue;
        }
        int j = i;
        while (j < s->npatterns && !s->patterns[j].run)
            j++;
        run_sweeps(s, &o, p, j - i, &run);
        i = j;
    }
    return 0;
}
