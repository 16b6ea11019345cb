/*
 * shoal_bench.c - shoal measured through its public ABI (capi/include/shoal.h),
 * with the same harness, payloads, modes and placement as iceoryx_bench and
 * raw_pingpong, so that every row has a baseline to be divided by.
 *
 *   rr       client loan/send, server take/loan_response/send + release of
 *            the request, client take + check + release: one round trip.
 *   pubsub   ping-pong over two topics; one-way latency = round trip / 2.
 *   create   create N servers (N distinct services) in one process, then
 *            destroy them: per-port cost, total, first 64 vs last 64 (does
 *            the cost grow with the number of ports?).
 *   memory   memory per port: resident-set growth of the creating process
 *            per port, and the size of the daemon's segments mapped.
 *
 * busy  = take with SHOAL_TIMEOUT_POLL in a loop (pause between polls,
 *         sched_yield when more spinning threads than CPUs: "yield" in note);
 * block = take with a long timeout (100 ms slices, so that a failure of the
 *         other side is noticed).
 *
 * Only the first 8 and the last byte of each payload are written and read.
 * The daemon must run: bench/run.sh starts
 *   shoald --domain benchN --config bench/shoal-bench.conf --ready-fd 3
 * and passes --domain here (or set SHOAL_DOMAIN / SHOAL_RUNTIME_DIR).
 */
#include "bench_common.h"

#include <shoal.h>

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *g_domain; /* NULL: $SHOAL_DOMAIN, else "default" */
static const int64_t k_slice_ns = 100 * 1000 * 1000;

#define SHOAL_FAIL(ctl, what, r) \
    bench_fail((ctl), "%s: %s: %s", (what), shoal_strerror(r), shoal_last_error_message())

/* ---- payload touch ------------------------------------------------------------------- */

static inline void touch_write(void *p, uint64_t size, uint64_t seq)
{
    unsigned char *b = p;
    memcpy(b, &seq, sizeof seq);
    b[size - 1] = (unsigned char)(seq * 31u + 7u);
}

static inline int touch_check(const void *p, uint64_t size, uint64_t seq)
{
    const unsigned char *b = p;
    uint64_t got;
    memcpy(&got, b, sizeof got);
    return got == seq && b[size - 1] == (unsigned char)(seq * 31u + 7u);
}

static inline uint64_t touch_read(const void *p)
{
    uint64_t got;
    memcpy(&got, p, sizeof got);
    return got;
}

/* ---- process ----------------------------------------------------------------------------- */

static shoal_runtime_t *g_rt; /* one per side process */

static shoal_result_t runtime_open(shoal_runtime_t **rt, const char *role)
{
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = g_domain;
    o.connect_timeout_ns = 5ll * 1000 * 1000 * 1000;
    char name[64];
    snprintf(name, sizeof name, "bench-%s-%d", role, (int)getpid());
    return shoal_runtime_create(rt, name, &o);
}

static int sh_proc_init(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    shoal_result_t r = runtime_open(&g_rt, side == 'A' ? "A" : "B");
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_runtime_create", r);
        return -1;
    }
    return 0;
}

static void sh_proc_fini(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side)
{
    (void)cfg;
    (void)ctl;
    (void)side;
    shoal_runtime_destroy(g_rt);
    g_rt = NULL;
}

typedef struct sh_pair {
    shoal_client_t *client;
    shoal_server_t *server;
    shoal_publisher_t *pub;
    shoal_subscriber_t *sub;
} sh_pair_t;

static void name_of(const bench_cfg_t *cfg, int pair, const char *what, char *buf, size_t len)
{
    snprintf(buf, len, "bench.r%" PRIu64 ".p%d.%s", cfg->run_id, pair, what);
}

static int wait_count(bench_ctl_t *ctl, uint32_t (*count)(const void *), const void *port,
                      const char *what)
{
    uint64_t deadline = bench_now_ns() + 15ull * 1000000000ull;
    while (count(port) < 1) {
        if (bench_stopping(ctl))
            return -1;
        if (bench_now_ns() > deadline) {
            bench_fail(ctl, "shoal: %s not matched within 15 s", what);
            return -1;
        }
        usleep(1000);
    }
    return 0;
}

static uint32_t servers_of(const void *c)
{
    return shoal_client_server_count(c);
}

static uint32_t subscribers_of(const void *p)
{
    return shoal_publisher_subscriber_count(p);
}

/* timeout for one take: poll, or a long blocking wait */
static inline int64_t take_timeout(const bench_cfg_t *cfg)
{
    return cfg->mode == BENCH_BUSY ? (int64_t)SHOAL_TIMEOUT_POLL : k_slice_ns;
}

/* ---- request / response ------------------------------------------------------------------ */

static int rr_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    sh_pair_t *p = calloc(1, sizeof *p);
    if (!p) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    *state = p;
    char svc[96];
    name_of(cfg, pair, "rr", svc, sizeof svc);
    shoal_result_t r;
    if (side == 'B') {
        r = shoal_server_create(&p->server, g_rt, svc, NULL);
        if (r != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_server_create", r);
            return -1;
        }
        return 0;
    }
    r = shoal_client_create(&p->client, g_rt, svc, NULL);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_client_create", r);
        return -1;
    }
    return wait_count(ctl, servers_of, p->client, "client/server");
}

static void rr_teardown(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
                        void *state)
{
    (void)cfg;
    (void)ctl;
    (void)side;
    (void)pair;
    sh_pair_t *p = state;
    if (!p)
        return;
    shoal_client_destroy(p->client);
    shoal_server_destroy(p->server);
    free(p);
}

static int rr_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                    uint64_t *samples)
{
    sh_pair_t *p = state;
    const uint64_t size = cfg->payload;
    const int64_t tmo = take_timeout(cfg);
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (i == cfg->warmup)
            bench_mark_start(ctl, pair);
        uint64_t t0 = bench_now_ns();
        shoal_chunk_t *req = NULL, *resp = NULL;
        shoal_result_t r = shoal_client_loan(p->client, size, &req);
        if (r != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_client_loan", r);
            return -1;
        }
        touch_write(shoal_chunk_payload(req), size, i);
        uint64_t seq = 0;
        r = shoal_client_send(p->client, req, &seq);
        if (r != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_client_send", r);
            return -1;
        }
        for (;;) {
            r = shoal_client_take(p->client, &resp, tmo);
            if (r == SHOAL_OK)
                break;
            if (r != SHOAL_ERR_TIMEOUT) {
                SHOAL_FAIL(ctl, "shoal_client_take", r);
                return -1;
            }
            if (bench_stopping(ctl))
                return -1;
            if (cfg->mode == BENCH_BUSY)
                bench_spin_once(cfg);
        }
        int good = shoal_chunk_sequence_id(resp) == seq &&
                   touch_check(shoal_chunk_payload(resp), size, i);
        shoal_chunk_release(resp);
        uint64_t t1 = bench_now_ns();
        if (!good) {
            bench_fail(ctl, "response %" PRIu64 " has the wrong sequence id or payload", i);
            return -1;
        }
        if (i >= cfg->warmup)
            samples[i - cfg->warmup] = t1 - t0;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

static int rr_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state)
{
    (void)pair;
    sh_pair_t *p = state;
    const uint64_t size = cfg->payload;
    const int64_t tmo = take_timeout(cfg);
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t n = 0; n < total;) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        shoal_result_t r = shoal_server_take(p->server, &req, tmo);
        if (r != SHOAL_OK) {
            if (r != SHOAL_ERR_TIMEOUT) {
                SHOAL_FAIL(ctl, "shoal_server_take", r);
                return -1;
            }
            if (bench_stopping(ctl))
                return -1;
            if (cfg->mode == BENCH_BUSY)
                bench_spin_once(cfg);
            continue;
        }
        uint64_t seq = touch_read(shoal_chunk_payload(req));
        r = shoal_server_loan_response(p->server, req, size, &resp);
        if (r != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_server_loan_response", r);
            shoal_chunk_release(req);
            return -1;
        }
        touch_write(shoal_chunk_payload(resp), size, seq);
        r = shoal_server_send(p->server, resp);
        shoal_chunk_release(req);
        if (r != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_server_send", r);
            return -1;
        }
        n++;
    }
    return 0;
}

static const bench_ops_t rr_ops = {
    .proc_init = sh_proc_init,
    .proc_fini = sh_proc_fini,
    .pair_setup = rr_setup,
    .pair_teardown = rr_teardown,
    .run_a = rr_run_a,
    .run_b = rr_run_b,
};

/* ---- publish / subscribe ping-pong -------------------------------------------------------- */

static int ps_setup(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair, void **state)
{
    sh_pair_t *p = calloc(1, sizeof *p);
    if (!p) {
        bench_fail(ctl, "out of memory");
        return -1;
    }
    *state = p;
    char out_topic[96], in_topic[96];
    name_of(cfg, pair, side == 'A' ? "ping" : "pong", out_topic, sizeof out_topic);
    name_of(cfg, pair, side == 'A' ? "pong" : "ping", in_topic, sizeof in_topic);
    shoal_result_t r = shoal_publisher_create(&p->pub, g_rt, out_topic, NULL);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_publisher_create", r);
        return -1;
    }
    r = shoal_subscriber_create(&p->sub, g_rt, in_topic, NULL);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_subscriber_create", r);
        return -1;
    }
    if (side == 'A')
        return wait_count(ctl, subscribers_of, p->pub, "ping publisher/subscriber");
    return 0;
}

static void ps_teardown(const bench_cfg_t *cfg, bench_ctl_t *ctl, int side, int pair,
                        void *state)
{
    (void)cfg;
    (void)ctl;
    (void)side;
    (void)pair;
    sh_pair_t *p = state;
    if (!p)
        return;
    shoal_subscriber_destroy(p->sub);
    shoal_publisher_destroy(p->pub);
    free(p);
}

static int ps_send(bench_ctl_t *ctl, sh_pair_t *p, uint64_t size, uint64_t seq)
{
    shoal_chunk_t *c = NULL;
    shoal_result_t r = shoal_publisher_loan(p->pub, size, &c);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_publisher_loan", r);
        return -1;
    }
    touch_write(shoal_chunk_payload(c), size, seq);
    r = shoal_publisher_publish(p->pub, c);
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_publisher_publish", r);
        return -1;
    }
    return 0;
}

static int ps_recv(const bench_cfg_t *cfg, bench_ctl_t *ctl, sh_pair_t *p, shoal_chunk_t **c)
{
    const int64_t tmo = take_timeout(cfg);
    for (;;) {
        shoal_result_t r = shoal_subscriber_take(p->sub, c, tmo);
        if (r == SHOAL_OK)
            return 0;
        if (r != SHOAL_ERR_TIMEOUT) {
            SHOAL_FAIL(ctl, "shoal_subscriber_take", r);
            return -1;
        }
        if (bench_stopping(ctl))
            return -1;
        if (cfg->mode == BENCH_BUSY)
            bench_spin_once(cfg);
    }
}

static int ps_run_a(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state,
                    uint64_t *samples)
{
    sh_pair_t *p = state;
    const uint64_t size = cfg->payload;
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t i = 0; i < total; i++) {
        if (i == cfg->warmup)
            bench_mark_start(ctl, pair);
        uint64_t t0 = bench_now_ns();
        if (ps_send(ctl, p, size, i) != 0)
            return -1;
        shoal_chunk_t *pong = NULL;
        if (ps_recv(cfg, ctl, p, &pong) != 0)
            return -1;
        int good = touch_check(shoal_chunk_payload(pong), size, i);
        shoal_chunk_release(pong);
        uint64_t t1 = bench_now_ns();
        if (!good) {
            bench_fail(ctl, "pong %" PRIu64 " carries the wrong payload", i);
            return -1;
        }
        if (i >= cfg->warmup)
            samples[i - cfg->warmup] = t1 - t0;
    }
    bench_mark_end(ctl, pair);
    return 0;
}

static int ps_run_b(const bench_cfg_t *cfg, bench_ctl_t *ctl, int pair, void *state)
{
    (void)pair;
    sh_pair_t *p = state;
    const uint64_t size = cfg->payload;
    /* side A's pong subscriber is created after our publisher: wait for it */
    if (wait_count(ctl, subscribers_of, p->pub, "pong publisher/subscriber") != 0)
        return -1;
    uint64_t total = cfg->warmup + cfg->iters;
    for (uint64_t n = 0; n < total; n++) {
        shoal_chunk_t *ping = NULL;
        if (ps_recv(cfg, ctl, p, &ping) != 0)
            return -1;
        uint64_t seq = touch_read(shoal_chunk_payload(ping));
        shoal_chunk_release(ping);
        if (ps_send(ctl, p, size, seq) != 0)
            return -1;
    }
    return 0;
}

static const bench_ops_t ps_ops = {
    .proc_init = sh_proc_init,
    .proc_fini = sh_proc_fini,
    .pair_setup = ps_setup,
    .pair_teardown = ps_teardown,
    .run_a = ps_run_a,
    .run_b = ps_run_b,
};

/* ---- creating many servers, memory per port ------------------------------------------------ */

typedef struct create_arg {
    int count;
    uint64_t run_id;
    int cpu;
} create_arg_t;

static long rss_bytes(void)
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

/* Size of the daemon's management segment as mapped here (the memfd named
 * "shoal-<domain>-mgmt": process table, port tables, queues, registry). */
static uint64_t memfd_mapped(int *count)
{
    FILE *f = fopen("/proc/self/maps", "r");
    uint64_t total = 0;
    *count = 0;
    if (!f)
        return 0;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        if (strstr(line, "memfd:shoal-") && strstr(line, "-mgmt") &&
            sscanf(line, "%lx-%lx", &lo, &hi) == 2) {
            total += hi - lo;
            (*count)++;
        }
    }
    fclose(f);
    return total;
}

static int create_child(bench_ctl_t *ctl, const void *argp)
{
    const create_arg_t *a = argp;
    bench_pin(a->cpu);
    shoal_runtime_t *rt = NULL;
    shoal_result_t r = runtime_open(&rt, "create");
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_runtime_create", r);
        return 1;
    }
    shoal_server_t **srv = calloc((size_t)a->count, sizeof *srv);
    if (!srv) {
        bench_fail(ctl, "out of memory");
        return 1;
    }
    uint64_t *create_ns = ctl->samples, *destroy_ns = ctl->samples + a->count;
    long rss0 = rss_bytes();
    uint64_t t_all = bench_now_ns();
    for (int i = 0; i < a->count; i++) {
        char svc[96];
        snprintf(svc, sizeof svc, "bench.create%" PRIu64 ".s%d", a->run_id, i);
        uint64_t t0 = bench_now_ns();
        r = shoal_server_create(&srv[i], rt, svc, NULL);
        create_ns[i] = bench_now_ns() - t0;
        if (r != SHOAL_OK) {
            SHOAL_FAIL(ctl, "shoal_server_create", r);
            shoal_runtime_destroy(rt);
            return 1;
        }
        atomic_store(&ctl->progress, (uint64_t)(i + 1));
    }
    uint64_t create_total = bench_now_ns() - t_all;
    long rss1 = rss_bytes();
    int nmaps = 0;
    uint64_t mapped = memfd_mapped(&nmaps);
    uint32_t slots = shoal_runtime_port_slots(rt);
    t_all = bench_now_ns();
    for (int i = 0; i < a->count; i++) {
        uint64_t t0 = bench_now_ns();
        shoal_server_destroy(srv[i]);
        destroy_ns[i] = bench_now_ns() - t0;
    }
    uint64_t destroy_total = bench_now_ns() - t_all;
    shoal_runtime_destroy(rt);
    free(srv);
    int k = a->count < 64 ? a->count : 64;
    double first = 0, last = 0;
    for (int i = 0; i < k; i++) {
        first += (double)create_ns[i];
        last += (double)create_ns[a->count - k + i];
    }
    bench_note(ctl,
               "create_total_ms=%.2f;destroy_total_ms=%.2f;first%d_mean_us=%.1f;last%d_mean_us=%.1f",
               (double)create_total / 1e6, (double)destroy_total / 1e6, k, first / k / 1e3, k,
               last / k / 1e3);
    /* memory: reported through ctl->aux as numbers (see run_create) */
    uint64_t *mem = (uint64_t *)(void *)ctl->aux;
    mem[0] = (uint64_t)(rss1 > rss0 ? rss1 - rss0 : 0);
    mem[1] = mapped;
    mem[2] = (uint64_t)nmaps;
    mem[3] = slots;
    return 0;
}

static void run_create(const bench_opts_t *o, int count, uint64_t run_id)
{
    create_arg_t a = {count, run_id, o->cpu_a};
    bench_ctl_t *ctl = NULL;
    int rc = bench_run_in_child(create_child, &a, 2 * (size_t)count, o->timeout_s, &ctl);
    bench_cfg_t c = {.cpu_a = o->cpu_a, .cpu_b = -1};
    char cpus[64];
    bench_cpus_str(&c, cpus, sizeof cpus);
    bench_stats_t cs, ds, ms;
    memset(&cs, 0, sizeof cs);
    memset(&ds, 0, sizeof ds);
    memset(&ms, 0, sizeof ms);
    if (!ctl) {
        snprintf(cs.note, sizeof cs.note, "error: cannot map control block");
        bench_print_raw_row("shoal", "server_create", "-", 0, count, (uint64_t)count, &cs, cpus);
        return;
    }
    if (rc != 0) {
        snprintf(cs.note, sizeof cs.note, "error: %s (after %" PRIu64 " of %d servers created)",
                 ctl->err, atomic_load(&ctl->progress), count);
        bench_print_raw_row("shoal", "server_create", "-", 0, count, (uint64_t)count, &cs, cpus);
        bench_ctl_free(ctl, 2 * (size_t)count);
        return;
    }
    bench_compute(ctl->samples, (uint64_t)count, 1.0, &cs);
    bench_compute(ctl->samples + count, (uint64_t)count, 1.0, &ds);
    snprintf(cs.note, sizeof cs.note, "%s", ctl->note);
    snprintf(ds.note, sizeof ds.note, "%s", ctl->note);
    double sum = 0;
    for (int i = 0; i < count; i++)
        sum += (double)ctl->samples[i];
    cs.throughput_per_s = count / (sum / 1e9);
    sum = 0;
    for (int i = 0; i < count; i++)
        sum += (double)ctl->samples[count + i];
    ds.throughput_per_s = count / (sum / 1e9);
    bench_print_raw_row("shoal", "server_create", "-", 0, count, (uint64_t)count, &cs, cpus);
    bench_print_raw_row("shoal", "server_destroy", "-", 0, count, (uint64_t)count, &ds, cpus);

    const uint64_t *mem = (const uint64_t *)(const void *)ctl->aux;
    /* The ABI does not expose the size of one port slot, so memory per port is
     * measured from outside: RSS growth of the creating process per port, and
     * the management segment divided by the port slots (an upper bound). */
    snprintf(ms.note, sizeof ms.note,
             "rss_growth_per_port_bytes=%.0f;mgmt_segment_bytes=%" PRIu64
             ";mgmt_maps=%" PRIu64 ";port_slots=%" PRIu64 ";mgmt_per_slot_bytes=%.0f",
             (double)mem[0] / count, mem[1], mem[2], mem[3],
             mem[3] ? (double)mem[1] / (double)mem[3] : 0.0);
    /* median column = RSS growth per port in bytes (not ns): see docs */
    ms.ok = 1;
    ms.median_ns = ms.p99_ns = ms.p999_ns = ms.max_ns = (double)mem[0] / count;
    bench_print_raw_row("shoal", "port_memory_bytes", "-", 0, count, (uint64_t)count, &ms, cpus);
    bench_ctl_free(ctl, 2 * (size_t)count);
}

/* ---- is the daemon there? ----------------------------------------------------------------- */

static int probe_child(bench_ctl_t *ctl, const void *arg)
{
    (void)arg;
    shoal_runtime_t *rt = NULL;
    shoal_result_t r = runtime_open(&rt, "probe");
    if (r != SHOAL_OK) {
        SHOAL_FAIL(ctl, "shoal_runtime_create", r);
        return 1;
    }
    bench_note(ctl, "shoal %s abi %u domain %s", shoal_version(), shoal_abi_version(),
               shoal_runtime_domain(rt));
    shoal_runtime_destroy(rt);
    return 0;
}

int main(int argc, char **argv)
{
    int ncpu = bench_online_cpus();
    bench_opts_t o = {
        .iters = 20000,
        .warmup = 2000,
        .cpu_a = 0,
        .cpu_b = ncpu > 1 ? 1 : 0,
        .pairs = {1, 4},
        .npairs = 2,
        .payloads = {64, 4096, 1u << 20, 64u << 20, 1u << 30},
        .npayloads = 5,
        .modes = {BENCH_BUSY, BENCH_BLOCK},
        .nmodes = 2,
        .patterns = "rr,pubsub,create",
        .header = 1,
        .timeout_s = 120,
        .repeat = 3,
    };
    int create_count = 512;
    for (int i = 1; i < argc; i++) {
        int two = i + 1 < argc;
        if (two && !strcmp(argv[i], "--create-count"))
            create_count = atoi(argv[i + 1]);
        else if (two && !strcmp(argv[i], "--domain"))
            g_domain = argv[i + 1];
        else
            continue;
        memmove(&argv[i], &argv[i + 2], (size_t)(argc - i - 2) * sizeof *argv);
        argc -= 2;
        i--;
    }
    bench_parse_opts(&o, argc, argv, "shoal_bench",
                     "  --domain NAME      shoald domain (default $SHOAL_DOMAIN, else default)\n"
                     "  --create-count N   servers for the create pattern (default 512)\n"
                     "  patterns: rr, pubsub, create (default all three)\n"
                     "  shoald must be running on the domain (bench/run.sh starts it).\n");
    if (create_count < 1)
        create_count = 1;
    if (o.header)
        printf("%s\n", BENCH_CSV_HEADER);

    bench_ctl_t *pctl = NULL;
    if (bench_run_in_child(probe_child, NULL, 0, 15.0, &pctl) != 0) {
        bench_stats_t st;
        memset(&st, 0, sizeof st);
        snprintf(st.note, sizeof st.note, "error: %s", pctl ? pctl->err : "cannot probe");
        bench_print_raw_row("shoal", "probe", "-", 0, 0, 0, &st, "-");
        return 1;
    }
    fprintf(stderr, "shoal_bench: %s\n", pctl->note);
    bench_ctl_free(pctl, 0);

    uint64_t run = (uint64_t)getpid() * 1000u;
    static const char *patterns[] = {"rr", "pubsub"};
    bench_job_t *jobs = calloc(2u * 2u * 8u * BENCH_MAX_PAYLOADS, sizeof *jobs);
    int n = 0;
    for (size_t pi = 0; jobs && pi < 2; pi++) {
        if (!bench_pattern_selected(&o, patterns[pi]))
            continue;
        int ps = !strcmp(patterns[pi], "pubsub");
        for (int m = 0; m < o.nmodes; m++)
            for (int np = 0; np < o.npairs; np++)
                for (int s = 0; s < o.npayloads; s++) {
                    bench_cfg_t cfg = {
                        .suite = "shoal",
                        .pattern = patterns[pi],
                        .mode = o.modes[m],
                        .payload = o.payloads[s],
                        .pairs = o.pairs[np],
                        .iters = o.iters,
                        .warmup = o.warmup,
                        .cpu_a = o.cpu_a,
                        .cpu_b = o.cpu_b,
                        .timeout_s = o.timeout_s,
                        .run_id = ++run,
                    };
                    bench_decide_yield(&cfg);
                    if (cfg.payload < 8) {
                        bench_stats_t st;
                        memset(&st, 0, sizeof st);
                        snprintf(st.note, sizeof st.note, "error: payloads below 8 bytes not measured");
                        bench_print_row(&cfg, &st);
                        continue;
                    }
                    jobs[n++] = (bench_job_t){cfg, ps ? &ps_ops : &rr_ops, ps, ps ? 2.0 : 1.0, {0}};
                }
    }
    if (jobs) {
        bench_sweep(jobs, n, o.repeat);
        for (int i = 0; i < n; i++)
            bench_print_row(&jobs[i].cfg, &jobs[i].stats);
        free(jobs);
    }
    if (bench_pattern_selected(&o, "create"))
        run_create(&o, create_count, ++run);
    return 0;
}
