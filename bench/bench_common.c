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

void bench_mark_start(bench_ctl_t *ctl, int pair)
{
    ctl->start_ns[pair] = bench_now_ns();
}

void bench_mark_end(bench_ctl_t *ctl, int pair)
{
    ctl->end_ns[pair] = bench_now_ns();
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

void bench_decide_yield(bench_cfg_t *cfg)
{
    int cpus = bench_online_cpus();
    int spinners = 2 * cfg->pairs;
    int same_cpu = cfg->cpu_a >= 0 && cfg->cpu_a == cfg->cpu_b;
    int pinned_per_cpu = (cfg->cpu_a >= 0 && cfg->cpu_b >= 0) ? (same_cpu ? spinners : cfg->pairs)
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
            "  --patterns LIST    suite patterns to run (or all)\n"
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

void bench_parse_opts(bench_opts_t *o, int argc, char **argv, const char *prog,
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
    if (t->side == 'A')
        t->rc = t->ops->run_a(t->cfg, t->ctl, t->pair, t->state,
                              t->ctl->samples + (size_t)t->pair * t->cfg->iters);
    else
        t->rc = t->ops->run_b(t->cfg, t->ctl, t->pair, t->state);
    if (t->rc != 0 && !atomic_load(&t->ctl->failed))
        bench_fail(t->ctl, "side %c pair %d failed", t->side, t->pair);
    return NULL;
}

static int wait_flag(bench_ctl_t *ctl, _Atomic uint32_t *flag, double timeout_s)
{
    uint64_t deadline = bench_now_ns() + (uint64_t)(timeout_s * 1e9);
    while (!atomic_load(flag)) {
        if (bench_stopping(ctl))
            return -1;
        if (bench_now_ns() > deadline)
            return -2;
        usleep(1000);
    }
    return 0;
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
        int w = wait_flag(ctl, &ctl->b_ready, cfg->timeout_s);
        if (w == -2)
            bench_fail(ctl, "side A: side B not ready within %.0f s", cfg->timeout_s);
        if (w != 0)
            rc = 1;
    }
    for (int p = 0; rc == 0 && p < cfg->pairs; p++) {
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
        pthread_barrier_init(&barrier, NULL, (unsigned)cfg->pairs);
        thread_arg_t args[BENCH_MAX_PAIRS];
        pthread_t th[BENCH_MAX_PAIRS];
        int started = 0;
        for (int p = 0; p < cfg->pairs; p++) {
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
        (void)wait_flag(ctl, &ctl->a_done, cfg->timeout_s);

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
static int run_once(const bench_cfg_t *cfg, const bench_ops_t *ops, uint64_t *samples,
                    uint64_t *span_ns, char *err, size_t errlen)
{
    size_t nsamp = (size_t)cfg->pairs * cfg->iters;
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
        for (int p = 0; p < cfg->pairs; p++) {
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

void bench_run_config(const bench_cfg_t *cfg, const bench_ops_t *ops, int one_way,
                      double msgs_per_round, bench_stats_t *out)
{
    bench_job_t job = {*cfg, ops, one_way, msgs_per_round, {0}};
    bench_sweep(&job, 1, 1);
    *out = job.stats;
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
        acc[i].samples = malloc((size_t)jobs[i].cfg.pairs * jobs[i].cfg.iters * sizeof(uint64_t));
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
            uint64_t *buf = malloc((size_t)c.pairs * mine * sizeof *buf);
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
                memcpy(acc[i].samples + acc[i].count, buf, (size_t)c.pairs * mine * sizeof *buf);
                acc[i].count += (uint64_t)c.pairs * mine;
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
