/* No chunk is ever stranded, even in a domain that never goes idle.
 *
 * A long-lived bystander process keeps the domain registered and busy
 * (server, client, publisher and subscriber in traffic) while waves of
 * victim processes run N x N request/response and publish/subscribe against
 * it and each other and are SIGKILLed at random moments, thousands of times.
 * Every CHECKPOINT kills the victims are reaped and the bystander drops what
 * it holds but stays registered (so the daemon's idle recovery never runs):
 * every pool must be full again within 1 s of the last kill; the time it
 * takes is recorded. The figures are printed at the end.
 *
 * SHOAL_STORM_KILLS=<n> sets the number of kills (default 10000),
 * SHOAL_STORM_SECONDS=<s> runs by time instead (the soak script), and
 * SHOAL_STORM_SEED=<n> replays a run. In a timed run the daemon's and the
 * bystander's resident memory must not grow. */
#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const STORM_CONFIG =
    "[limits]\n"
    "processes = 64\n"
    "publishers = 64\n"
    "subscribers = 64\n"
    "servers = 64\n"
    "clients = 64\n"
    "services = 16\n"
    "chunks_per_port = 32\n"
    "queue_capacity = 16\n"
    "history = 2\n"
    "[pools]\n"
    "64 = 512\n"
    "1K = 128\n"
    "64K = 8\n";

enum { WAVE = 4, CHECKPOINT = 500, MAX_CHECKPOINTS = 4096 };

typedef struct storm {
    _Atomic int quiesce;      /* bystander: drop everything and idle while set */
    _Atomic int quiet;        /* bystander: acknowledges quiesce */
    _Atomic int stop;
    _Atomic uint64_t bystander_ops, bystander_errors, victim_ops;
    _Atomic uint64_t corrupt;
    char last_error[256];
} storm_t;

typedef struct ctx {
    th_daemon_t *d;
    storm_t *st;
    uint64_t seed;
} ctx_t;

static uint64_t rng(uint64_t *s)
{
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void child_init(void)
{
    const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static uint64_t pick_size(uint64_t *r)
{
    uint64_t x = rng(r) % 100;
    return x < 60 ? 8 + rng(r) % 56 : x < 95 ? 100 + rng(r) % 900 : 2000 + rng(r) % 60000;
}

/* Payload = its own size repeated: a chunk written by two owners shows. */
static void fill(void *p, uint64_t n)
{
    memset(p, (int)(n & 0xff), n);
}
static int filled(const void *p, uint64_t n)
{
    const uint8_t *b = p;
    for (uint64_t i = 0; i < n; i++)
        if (b[i] != (uint8_t)(n & 0xff))
            return 0;
    return 1;
}

/* ---- victims: every port kind, every operation, until killed ------------ */

static int victim(void *arg)
{
    child_init();
    ctx_t *x = arg;
    uint64_t r = x->seed;
    shoal_runtime_t *rt = NULL;
    if (th_runtime_create(x->d, "victim", &rt) != SHOAL_OK)
        return 1;
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.history = 2;
    po.full_policy = rng(&r) % 2 ? SHOAL_FULL_DROP_OLDEST : SHOAL_FULL_WAIT;
    po.send_timeout_ns = 2 * TH_MS;
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    shoal_client_t *cl = NULL;
    shoal_server_t *sv = NULL;
    if (shoal_publisher_create(&pub, rt, "storm/topic", &po) != SHOAL_OK ||
        shoal_subscriber_create(&sub, rt, "storm/topic", NULL) != SHOAL_OK ||
        shoal_client_create(&cl, rt, "storm/svc", NULL) != SHOAL_OK ||
        shoal_server_create(&sv, rt, "storm/svc", NULL) != SHOAL_OK)
        return 1;
    shoal_chunk_t *kept[4] = { 0 };
    for (;;) {
        shoal_chunk_t *c = NULL;
        uint64_t n = pick_size(&r);
        switch (rng(&r) % 6) {
        case 0:
            if (shoal_publisher_loan(pub, n, &c) == SHOAL_OK) {
                fill(shoal_chunk_payload(c), n);
                shoal_publisher_publish(pub, c);
            }
            break;
        case 1:
            if (shoal_subscriber_take(sub, &c, 1 * TH_MS) == SHOAL_OK) {
                if (!filled(shoal_chunk_payload(c), shoal_chunk_size(c)))
                    atomic_fetch_add(&x->st->corrupt, 1);
                /* keep some: a kill must find chunks held too */
                int k = (int)(rng(&r) % 4);
                if (kept[k])
                    shoal_chunk_release(kept[k]);
                kept[k] = c;
            }
            break;
        case 2:
            if (shoal_client_loan(cl, n, &c) == SHOAL_OK) {
                fill(shoal_chunk_payload(c), n);
                shoal_chunk_t *resp = NULL;
                if (shoal_client_call(cl, c, &resp, 5 * TH_MS) == SHOAL_OK)
                    shoal_chunk_release(resp);
            }
            break;
        case 3:
            if (shoal_server_take(sv, &c, 1 * TH_MS) == SHOAL_OK) {
                shoal_chunk_t *out = NULL;
                uint64_t sz = shoal_chunk_size(c);
                if (sz && shoal_server_loan_response(sv, c, sz, &out) == SHOAL_OK) {
                    memcpy(shoal_chunk_payload(out), shoal_chunk_payload(c), sz);
                    shoal_server_send(sv, out);
                }
                shoal_chunk_release(c);
            }
            break;
        case 4: /* a loan abandoned, released later or never */
            if (shoal_publisher_loan(pub, n, &c) == SHOAL_OK) {
                int k = (int)(rng(&r) % 4);
                if (kept[k])
                    shoal_chunk_release(kept[k]);
                kept[k] = c;
            }
            break;
        default:
            for (int k = 0; k < 4; k++)
                if (kept[k]) {
                    shoal_chunk_release(kept[k]);
                    kept[k] = NULL;
                }
        }
        atomic_fetch_add(&x->st->victim_ops, 1);
    }
}

/* ---- the bystander: registered and busy for the whole test ---------------- */

static int bystander(void *arg)
{
    child_init();
    ctx_t *x = arg;
    storm_t *st = x->st;
    uint64_t r = x->seed ^ 0xb5;
    shoal_runtime_t *rt = NULL;
    if (th_runtime_create(x->d, "bystander", &rt) != SHOAL_OK)
        return 1;
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    shoal_client_t *cl = NULL;
    shoal_server_t *sv = NULL;
    if (shoal_publisher_create(&pub, rt, "storm/topic", NULL) != SHOAL_OK ||
        shoal_subscriber_create(&sub, rt, "storm/topic", NULL) != SHOAL_OK ||
        shoal_client_create(&cl, rt, "storm/svc", NULL) != SHOAL_OK ||
        shoal_server_create(&sv, rt, "storm/svc", NULL) != SHOAL_OK)
        return 2;
    while (!atomic_load(&st->stop)) {
        if (atomic_load(&st->quiesce)) {
            /* drain what the dead left in our queues, hold nothing, stay registered */
            shoal_chunk_t *c = NULL;
            while (shoal_subscriber_take(sub, &c, 0) == SHOAL_OK)
                shoal_chunk_release(c);
            while (shoal_server_take(sv, &c, 0) == SHOAL_OK)
                shoal_chunk_release(c);
            while (shoal_client_take(cl, &c, 0) == SHOAL_OK)
                shoal_chunk_release(c);
            atomic_store(&st->quiet, 1);
            th_sleep_ms(1);
            continue;
        }
        atomic_store(&st->quiet, 0);
        shoal_chunk_t *c = NULL, *out = NULL;
        uint64_t n = pick_size(&r);
        shoal_result_t rc = shoal_publisher_loan(pub, n, &c);
        if (rc == SHOAL_OK) {
            fill(shoal_chunk_payload(c), n);
            rc = shoal_publisher_publish(pub, c);
        }
        while (shoal_subscriber_take(sub, &c, 0) == SHOAL_OK) {
            if (!filled(shoal_chunk_payload(c), shoal_chunk_size(c)))
                atomic_fetch_add(&st->corrupt, 1);
            shoal_chunk_release(c);
        }
        while (shoal_server_take(sv, &c, 0) == SHOAL_OK) {
            uint64_t sz = shoal_chunk_size(c);
            if (sz && shoal_server_loan_response(sv, c, sz, &out) == SHOAL_OK) {
                memcpy(shoal_chunk_payload(out), shoal_chunk_payload(c), sz);
                shoal_server_send(sv, out);
            }
            shoal_chunk_release(c);
        }
        if (shoal_client_loan(cl, n, &c) == SHOAL_OK) {
            fill(shoal_chunk_payload(c), n);
            shoal_chunk_t *resp = NULL;
            if (shoal_client_call(cl, c, &resp, 2 * TH_MS) == SHOAL_OK)
                shoal_chunk_release(resp);
        }
        atomic_fetch_add(&st->bystander_ops, 1);
    }
    shoal_runtime_destroy(rt);
    return 0;
}

/* ---- figures ------------------------------------------------------------ */

static long rss_kb(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    long kb = -1;
    if (!f)
        return -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "RssAnon: %ld kB", &kb) == 1) /* shared pages fill as pools are touched */
            break;
    fclose(f);
    return kb;
}

/* Sums what the daemon's audits reported in its log. */
static void audit_totals(const th_daemon_t *d, long *audits, long *stranded, long *fixed)
{
    *audits = *stranded = *fixed = 0;
    FILE *f = fopen(d->log_path, "r");
    char line[1024];
    if (!f)
        return;
    while (fgets(line, sizeof line, f)) {
        const char *p = strstr(line, "reference audit");
        long a, b;
        if (p && (p = strstr(p, "): ")) && sscanf(p, "): %ld stranded chunk(s) returned to their "
                                                   "pools, %ld reference", &a, &b) == 2) {
            (*audits)++;
            *stranded += a;
            *fixed += b;
        }
    }
    fclose(f);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static void test_storm_never_idle(void **state)
{
    th_fixture_t *fx = *state;
    const char *e = getenv("SHOAL_STORM_KILLS");
    long kills_wanted = e && *e ? atol(e) : 10000;
    e = getenv("SHOAL_STORM_SECONDS");
    long seconds = e && *e ? atol(e) : 0;
    e = getenv("SHOAL_STORM_SEED");
    uint64_t seed = e && *e ? strtoull(e, NULL, 0) : (uint64_t)time(NULL);
    print_message("storm: seed %llu (SHOAL_STORM_SEED replays it)\n", (unsigned long long)seed);

    storm_t *st = th_shared_alloc(sizeof *st);
    assert_non_null(st);
    static ctx_t bx;
    bx = (ctx_t){ &fx->daemon, st, seed };
    pid_t by = th_spawn(bystander, &bx);
    assert_true(by > 0);
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "storm-watch");
    assert_int_equal(th_wait_port_count(rt, 0, by, NULL, 4, 5000), 4);

    static int64_t reclaim_ns[MAX_CHECKPOINTS];
    int checkpoints = 0;
    long kills = 0, rss_daemon0 = -1, rss_by0 = -1;
    uint64_t r = seed;
    int64_t t_start = th_now_ns(), worst = 0;
    pid_t wave[WAVE] = { 0 };
    static ctx_t vx[WAVE];
    for (;;) {
        int timed_out = seconds > 0 && th_now_ns() - t_start > seconds * TH_SEC;
        if ((seconds > 0 && timed_out) || (seconds <= 0 && kills >= kills_wanted))
            break;
        /* a wave: fork, let them run a random while (registration included), kill */
        for (int i = 0; i < WAVE; i++) {
            vx[i] = (ctx_t){ &fx->daemon, st, rng(&r) };
            wave[i] = th_spawn(victim, &vx[i]);
            assert_true(wave[i] > 0);
        }
        int64_t last_kill = 0;
        for (int i = 0; i < WAVE; i++) {
            struct timespec ts = { 0, (long)(rng(&r) % 4000) * 1000L };
            nanosleep(&ts, NULL);
            kill(wave[i], SIGKILL);
            last_kill = th_now_ns();
        }
        for (int i = 0; i < WAVE; i++) {
            int code = th_join(wave[i], 10000);
            /* killed by us, or it could not register in time: never a crash */
            if (code != 128 + SIGKILL && code != 0 && code != 1)
                fail_msg("victim %d ended with %d (not SIGKILL): it crashed", (int)wave[i], code);
        }
        kills += WAVE;
        if (kills % CHECKPOINT != 0)
            continue;
        /* checkpoint: bystander quiet but registered; every pool must refill */
        atomic_store(&st->quiesce, 1);
        int64_t deadline = last_kill + 5 * TH_SEC;
        uint32_t in_use = 1;
        while (th_now_ns() < deadline) {
            if (atomic_load(&st->quiet) && (in_use = th_pools_in_use(rt)) == 0)
                break;
            th_sleep_ms(2);
        }
        int64_t took = th_now_ns() - last_kill;
        if (in_use != 0)
            fail_msg("after %ld kills, %u chunk(s) still in use 5 s after the last kill, with "
                     "the bystander holding nothing (seed %llu)",
                     kills, in_use, (unsigned long long)seed);
        if (checkpoints < MAX_CHECKPOINTS)
            reclaim_ns[checkpoints++] = took;
        if (took > worst)
            worst = took;
        if (rss_daemon0 < 0) {
            rss_daemon0 = rss_kb(fx->daemon.pid);
            rss_by0 = rss_kb(by);
        }
        atomic_store(&st->quiesce, 0);
    }
    long rss_by1 = rss_kb(by);
    atomic_store(&st->stop, 1);
    assert_int_equal(th_join(by, 10000), 0);
    long rss_daemon1 = rss_kb(fx->daemon.pid);
    long audits, stranded, fixed;
    audit_totals(&fx->daemon, &audits, &stranded, &fixed);
    qsort(reclaim_ns, (size_t)checkpoints, sizeof reclaim_ns[0], cmp_i64);
    int64_t p50 = checkpoints ? reclaim_ns[checkpoints / 2] : 0;
    print_message("storm: %ld kills in %.1f s, %d checkpoints; pools full again after the last "
                  "kill: p50 %.1f ms, max %.1f ms; bystander %llu ops, victims %llu ops, %llu "
                  "corrupt payloads; anonymous RSS daemon %ld -> %ld kB, bystander %ld -> %ld kB; %ld audits "
                  "returned %ld stranded "
                  "chunk(s) and corrected %ld reference count(s)\n",
                  kills, (th_now_ns() - t_start) / 1e9, checkpoints, p50 / 1e6, worst / 1e6,
                  (unsigned long long)atomic_load(&st->bystander_ops),
                  (unsigned long long)atomic_load(&st->victim_ops),
                  (unsigned long long)atomic_load(&st->corrupt), rss_daemon0, rss_daemon1, rss_by0,
                  rss_by1, audits,
                  stranded, fixed);
    assert_true(checkpoints > 0);
    assert_true(worst < TH_SEC);
    assert_int_equal(atomic_load(&st->corrupt), 0);
    assert_int_equal(th_pools_in_use(rt), 0);
    if (seconds > 0 && rss_daemon0 > 0) { /* a soak: memory must not grow */
        assert_true(rss_daemon1 <= rss_daemon0 + 1024);
        assert_true(rss_by1 <= rss_by0 + 1024);
    }
    shoal_runtime_destroy(rt);
    th_shared_free(st, sizeof *st);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST_CFG(test_storm_never_idle, STORM_CONFIG),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
