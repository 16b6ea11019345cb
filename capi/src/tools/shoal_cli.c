/* shoal: look into a running shoal domain (pools, ports, processes, live view).
 *
 * Uses only the public ABI (shoal.h): it registers as an ordinary process
 * named "shoal-cli" and reads the introspection calls, so what it shows is
 * exactly what any binding could show. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shoal.h"

#define EXIT_USAGE 2

static const char *usage_text =
    "usage: shoal [--domain NAME] [--runtime-dir DIR] COMMAND [OPTIONS]\n"
    "\n"
    "Shows the state of a shoal domain served by shoald.\n"
    "\n"
    "commands:\n"
    "  status                      domain, pools, port counts, processes (default)\n"
    "  pools                       chunk pools: size, in use, high water, failures\n"
    "  ports [--kind K] [--held]   one line per live port; K is publisher, subscriber,\n"
    "                              client or server; --held lists only ports holding\n"
    "                              or queueing chunks, most first (to find leaks and\n"
    "                              receivers that never take)\n"
    "  processes                   ports and held chunks per process\n"
    "  top [--interval S] [--count N]\n"
    "                              live view refreshed every S seconds (default 1)\n"
    "                              until Ctrl-C, or N times\n"
    "\n"
    "options:\n"
    "  --domain NAME       domain to inspect (default $SHOAL_DOMAIN, else 'default')\n"
    "  --runtime-dir DIR   where the daemon sockets live (default $SHOAL_RUNTIME_DIR,\n"
    "                      else /tmp/shoal-<uid>)\n"
    "  -h, --help          this help\n"
    "  -V, --version       versions of this tool and of the loaded libshoal\n"
    "\n"
    "exit status: 0 ok, 1 the domain could not be read (daemon down, ...), 2 bad usage\n";

/* ---- snapshot of the domain --------------------------------------------- */

typedef struct snapshot {
    shoal_pool_info_t *pools;
    uint32_t pool_count;
    shoal_port_info_t *ports; /* live ports only */
    uint32_t port_count;
    uint32_t port_slots;
} snapshot_t;

static void snapshot_free(snapshot_t *s) {
    free(s->pools);
    free(s->ports);
    memset(s, 0, sizeof *s);
}

/* Names come from shared memory: force termination and printable bytes so a
 * corrupt or hostile segment cannot garble the terminal. */
static void sanitize(char *s, size_t cap) {
    s[cap - 1] = '\0';
    for (; *s; s++)
        if (!isprint((unsigned char)*s)) *s = '?';
}

static void report_failure(const char *what, shoal_result_t rc) {
    const char *detail = shoal_last_error_message();
    fprintf(stderr, "shoal: %s: %s\n", what, detail && *detail ? detail : shoal_strerror(rc));
}

static int snapshot_take(const shoal_runtime_t *rt, snapshot_t *s) {
    memset(s, 0, sizeof *s);
    s->pool_count = shoal_runtime_pool_count(rt);
    if (s->pool_count) {
        s->pools = calloc(s->pool_count, sizeof *s->pools);
        if (!s->pools) goto oom;
    }
    for (uint32_t i = 0; i < s->pool_count; i++) {
        s->pools[i].version = SHOAL_POOL_INFO_VERSION;
        shoal_result_t rc = shoal_runtime_pool_info(rt, i, &s->pools[i]);
        if (rc != SHOAL_OK) {
            report_failure("reading pool info", rc);
            snapshot_free(s);
            return -1;
        }
    }
    s->port_slots = shoal_runtime_port_slots(rt);
    uint32_t cap = 0;
    for (uint32_t slot = 0; slot < s->port_slots; slot++) {
        shoal_port_info_t info = SHOAL_PORT_INFO_INIT;
        shoal_result_t rc = shoal_runtime_port_info(rt, slot, &info);
        if (rc == SHOAL_ERR_NOT_FOUND) continue; /* free slot */
        if (rc != SHOAL_OK) {
            report_failure("reading port info", rc);
            snapshot_free(s);
            return -1;
        }
        if (s->port_count == cap) {
            uint32_t ncap = cap ? cap * 2 : 64;
            shoal_port_info_t *n = realloc(s->ports, ncap * sizeof *n);
            if (!n) goto oom;
            s->ports = n;
            cap = ncap;
        }
        sanitize(info.service, sizeof info.service);
        sanitize(info.process, sizeof info.process);
        s->ports[s->port_count++] = info;
    }
    return 0;
oom:
    fprintf(stderr, "shoal: out of memory\n");
    snapshot_free(s);
    return -1;
}

/* ---- formatting helpers --------------------------------------------------- */

static const char *kind_name(shoal_port_kind_t k) {
    switch (k) {
    case SHOAL_PORT_PUBLISHER: return "publisher";
    case SHOAL_PORT_SUBSCRIBER: return "subscriber";
    case SHOAL_PORT_CLIENT: return "client";
    case SHOAL_PORT_SERVER: return "server";
    }
    return "?";
}

static int kind_parse(const char *s) {
    static const struct {
        const char *name;
        shoal_port_kind_t kind;
    } names[] = {
        {"publisher", SHOAL_PORT_PUBLISHER}, {"publishers", SHOAL_PORT_PUBLISHER},
        {"pub", SHOAL_PORT_PUBLISHER},       {"subscriber", SHOAL_PORT_SUBSCRIBER},
        {"subscribers", SHOAL_PORT_SUBSCRIBER}, {"sub", SHOAL_PORT_SUBSCRIBER},
        {"client", SHOAL_PORT_CLIENT},       {"clients", SHOAL_PORT_CLIENT},
        {"server", SHOAL_PORT_SERVER},       {"servers", SHOAL_PORT_SERVER},
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) return (int)names[i].kind;
    return -1;
}

/* "64 B", "16 KiB", "1200 MiB", "1.5 KiB" */
static void fmt_bytes(uint64_t v, char *buf, size_t len) {
    static const char *units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    unsigned u = 0;
    uint64_t whole = v;
    while (whole >= 1024 && whole % 1024 == 0 && u + 1 < sizeof units / sizeof units[0]) {
        whole /= 1024;
        u++;
    }
    if (whole < 10240 || u + 1 == sizeof units / sizeof units[0]) {
        snprintf(buf, len, "%" PRIu64 " %s", whole, units[u]);
        return;
    }
    double d = (double)v;
    for (u = 0; d >= 1024.0 && u + 1 < sizeof units / sizeof units[0]; u++) d /= 1024.0;
    snprintf(buf, len, "%.1f %s", d, units[u]);
}

static unsigned percent(uint64_t part, uint64_t whole) {
    return whole ? (unsigned)(part * 100 / whole) : 0;
}

/* ---- commands --------------------------------------------------------------- */

static void print_pools(const snapshot_t *s) {
    printf("%-4s %12s %10s %10s %6s %10s %10s %14s\n", "POOL", "CHUNK SIZE", "IN USE", "COUNT", "USE%",
           "HIGH WATER", "FAILURES", "PAYLOAD");
    for (uint32_t i = 0; i < s->pool_count; i++) {
        const shoal_pool_info_t *p = &s->pools[i];
        char size[32], total[32];
        fmt_bytes(p->chunk_size, size, sizeof size);
        fmt_bytes(p->chunk_size * (uint64_t)p->chunk_count, total, sizeof total);
        /* a full pool or past failures is what the user came to look for */
        const char *flag = p->in_use >= p->chunk_count ? "  <- exhausted"
                           : p->alloc_failures       ? "  <- had failures"
                                                     : "";
        printf("#%-3u %12s %10u %10u %5u%% %10u %10" PRIu64 " %14s%s\n", i, size, p->in_use,
               p->chunk_count, percent(p->in_use, p->chunk_count), p->high_water, p->alloc_failures,
               total, flag);
    }
    if (!s->pool_count) printf("(no pools)\n");
}

typedef struct proc_summary {
    int32_t pid;
    char name[64];
    uint32_t ports[5]; /* by kind */
    uint64_t held, queued;
} proc_summary_t;

/* Groups ports by pid; returns count, *out malloc'ed (NULL on OOM). */
static uint32_t summarize_processes(const snapshot_t *s, proc_summary_t **out) {
    proc_summary_t *procs = calloc(s->port_count ? s->port_count : 1, sizeof *procs);
    uint32_t n = 0;
    *out = procs;
    if (!procs) return 0;
    for (uint32_t i = 0; i < s->port_count; i++) {
        const shoal_port_info_t *p = &s->ports[i];
        uint32_t j;
        for (j = 0; j < n; j++)
            if (procs[j].pid == p->pid) break;
        if (j == n) {
            procs[n].pid = p->pid;
            snprintf(procs[n].name, sizeof procs[n].name, "%s", p->process);
            n++;
        }
        if (p->kind >= 1 && p->kind <= 4) procs[j].ports[p->kind]++;
        procs[j].held += p->held;
        procs[j].queued += p->queued;
    }
    return n;
}

static int cmp_proc(const void *a, const void *b) {
    const proc_summary_t *x = a, *y = b;
    if (x->held != y->held) return x->held < y->held ? 1 : -1;
    return (x->pid > y->pid) - (x->pid < y->pid);
}

static int print_processes(const snapshot_t *s, uint32_t limit) {
    proc_summary_t *procs;
    uint32_t n = summarize_processes(s, &procs);
    if (!procs) {
        fprintf(stderr, "shoal: out of memory\n");
        return -1;
    }
    qsort(procs, n, sizeof *procs, cmp_proc);
    printf("%-8s %-20s %5s %5s %5s %5s %8s %8s\n", "PID", "PROCESS", "PUB", "SUB", "CLI", "SRV",
           "HELD", "QUEUED");
    for (uint32_t i = 0; i < n && i < limit; i++) {
        const proc_summary_t *p = &procs[i];
        printf("%-8d %-20s %5u %5u %5u %5u %8" PRIu64 " %8" PRIu64 "\n", (int)p->pid, p->name,
               p->ports[SHOAL_PORT_PUBLISHER], p->ports[SHOAL_PORT_SUBSCRIBER],
               p->ports[SHOAL_PORT_CLIENT], p->ports[SHOAL_PORT_SERVER], p->held, p->queued);
    }
    if (n > limit) printf("... %u more\n", n - limit);
    if (!n) printf("(no process has open ports)\n");
    free(procs);
    return 0;
}

static int cmp_port(const void *a, const void *b) {
    const shoal_port_info_t *x = a, *y = b;
    if (x->kind != y->kind) return x->kind < y->kind ? -1 : 1;
    int c = strcmp(x->service, y->service);
    if (c) return c;
    return (x->id > y->id) - (x->id < y->id);
}

/* A queued chunk is as much in use as a held one: it stays out of its pool
 * until the port takes it. */
static uint64_t pinned(const shoal_port_info_t *p) { return (uint64_t)p->held + p->queued; }

static int cmp_port_held(const void *a, const void *b) {
    const shoal_port_info_t *x = a, *y = b;
    if (pinned(x) != pinned(y)) return pinned(x) < pinned(y) ? 1 : -1;
    return cmp_port(a, b);
}

/* Previous snapshot for rates in `top`; matched by kind, id, pid and service. */
static const shoal_port_info_t *find_prev(const snapshot_t *prev, const shoal_port_info_t *p) {
    if (!prev) return NULL;
    for (uint32_t i = 0; i < prev->port_count; i++) {
        const shoal_port_info_t *q = &prev->ports[i];
        if (q->kind == p->kind && q->id == p->id && q->pid == p->pid &&
            strcmp(q->service, p->service) == 0)
            return q;
    }
    return NULL;
}

/* Prints ports (sorted in place). kind 0 = all. With `prev` and `dt` it adds
 * a sent-per-second column. */
static void print_ports(snapshot_t *s, int kind, bool held_only, uint32_t limit,
                        const snapshot_t *prev, double dt) {
    uint32_t shown = 0, matched = 0;
    int svc_w = 7, proc_w = 7;
    /* the live view truncates long names to stay on screen; listings do not */
    int svc_max = limit == UINT32_MAX ? 127 : 40, proc_max = limit == UINT32_MAX ? 95 : 32;
    qsort(s->ports, s->port_count, sizeof *s->ports, held_only ? cmp_port_held : cmp_port);
    for (uint32_t i = 0; i < s->port_count; i++) {
        const shoal_port_info_t *p = &s->ports[i];
        if ((kind && (int)p->kind != kind) || (held_only && !pinned(p))) continue;
        int w = (int)strlen(p->service);
        if (w > svc_w) svc_w = w > svc_max ? svc_max : w;
        char pr[96];
        w = snprintf(pr, sizeof pr, "%s(%d)", p->process, (int)p->pid);
        if (w > proc_w) proc_w = w > proc_max ? proc_max : w;
    }
    printf("%-10s %5s %-*s %-*s %6s %13s %10s %10s %8s %6s", "KIND", "ID", svc_w, "SERVICE", proc_w,
           "PROCESS", "HELD", "QUEUED/CAP", "SENT", "RECEIVED", "DROPPED", "STALE");
    if (prev) printf(" %9s", "SENT/S");
    printf("\n");
    for (uint32_t i = 0; i < s->port_count; i++) {
        const shoal_port_info_t *p = &s->ports[i];
        if ((kind && (int)p->kind != kind) || (held_only && !pinned(p))) continue;
        matched++;
        if (shown >= limit) continue;
        shown++;
        char pr[96], q[32];
        snprintf(pr, sizeof pr, "%s(%d)", p->process, (int)p->pid);
        /* publishers have no receive queue */
        if (p->kind == SHOAL_PORT_PUBLISHER) snprintf(q, sizeof q, "-");
        else snprintf(q, sizeof q, "%u/%u", p->queued, p->queue_capacity);
        printf("%-10s %5u %-*.*s %-*.*s %6u %13s %10" PRIu64 " %10" PRIu64 " %8" PRIu64 " %6" PRIu64,
               kind_name(p->kind), p->id, svc_w, svc_w, p->service, proc_w, proc_w, pr, p->held, q,
               p->sent, p->received, p->dropped, p->stale);
        if (prev) {
            const shoal_port_info_t *o = find_prev(prev, p);
            if (o && dt > 0 && p->sent >= o->sent) printf(" %9.0f", (double)(p->sent - o->sent) / dt);
            else printf(" %9s", "-");
        }
        printf("\n");
    }
    if (matched > shown) printf("... %u more\n", matched - shown);
    if (!matched && held_only) printf("(no port holds or queues chunks)\n");
    else if (!matched && kind) printf("(no live %s ports)\n", kind_name((shoal_port_kind_t)kind));
    else if (!matched) printf("(no live ports)\n");
}

static void print_status(const shoal_runtime_t *rt, const snapshot_t *s) {
    uint32_t per_kind[5] = {0};
    uint64_t held = 0, queued = 0, dropped = 0;
    for (uint32_t i = 0; i < s->port_count; i++) {
        const shoal_port_info_t *p = &s->ports[i];
        if (p->kind >= 1 && p->kind <= 4) per_kind[p->kind]++;
        held += p->held;
        queued += p->queued;
        dropped += p->dropped;
    }
    proc_summary_t *procs;
    uint32_t nproc = summarize_processes(s, &procs);
    free(procs);
    uint64_t chunks = 0, in_use = 0, failures = 0, bytes = 0;
    for (uint32_t i = 0; i < s->pool_count; i++) {
        chunks += s->pools[i].chunk_count;
        in_use += s->pools[i].in_use;
        failures += s->pools[i].alloc_failures;
        bytes += s->pools[i].chunk_size * (uint64_t)s->pools[i].chunk_count;
    }
    char total[32];
    fmt_bytes(bytes, total, sizeof total);
    printf("domain     %s\n", shoal_runtime_domain(rt));
    printf("library    %s (ABI %u)\n", shoal_version(), (unsigned)shoal_abi_version());
    printf("pools      %u pools, %s of payload, %" PRIu64 " of %" PRIu64 " chunks in use (%u%%)",
           s->pool_count, total, in_use, chunks, percent(in_use, chunks));
    if (failures) printf(", %" PRIu64 " failed allocations", failures);
    printf("\n");
    printf("ports      %u live of %u slots: publishers %u, subscribers %u, clients %u, servers %u\n",
           s->port_count, s->port_slots, per_kind[SHOAL_PORT_PUBLISHER],
           per_kind[SHOAL_PORT_SUBSCRIBER], per_kind[SHOAL_PORT_CLIENT], per_kind[SHOAL_PORT_SERVER]);
    printf("chunks     %" PRIu64 " held by users, %" PRIu64 " queued, %" PRIu64 " dropped so far\n", held,
           queued, dropped);
    /* the CLI itself is registered but opens no ports, so it is not counted */
    printf("processes  %u with open ports\n", nproc);
    printf("\n");
    print_pools(s);
}

/* ---- top -------------------------------------------------------------------- */

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig) {
    (void)sig;
    stop_requested = 1;
}

static double now_seconds(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Sleeps `secs`, returning early when Ctrl-C arrives. */
static void sleep_interruptible(double secs) {
    struct timespec ts = {(time_t)secs, (long)((secs - (double)(time_t)secs) * 1e9)};
    while (!stop_requested && nanosleep(&ts, &ts) == -1 && errno == EINTR) {
    }
}

static int run_top(const shoal_runtime_t *rt, double interval, long count) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    bool tty = isatty(STDOUT_FILENO);
    snapshot_t prev = {0}, cur;
    bool have_prev = false;
    double prev_t = 0;
    for (long n = 0; !stop_requested && (count <= 0 || n < count); n++) {
        if (n) sleep_interruptible(interval);
        if (stop_requested) break;
        if (snapshot_take(rt, &cur) != 0) {
            snapshot_free(&prev);
            return 1;
        }
        double t = now_seconds();
        if (tty) printf("\033[H\033[J"); /* home + clear: redraw in place */
        else if (n) printf("\n");
        time_t wall = time(NULL);
        char stamp[32];
        strftime(stamp, sizeof stamp, "%H:%M:%S", localtime(&wall));
        printf("shoal top - %s - every %.1fs, Ctrl-C to quit\n\n", stamp, interval);
        print_status(rt, &cur);
        printf("\n");
        print_processes(&cur, 10);
        printf("\n");
        print_ports(&cur, 0, false, 20, have_prev ? &prev : NULL, t - prev_t);
        fflush(stdout);
        snapshot_free(&prev);
        prev = cur;
        prev_t = t;
        have_prev = true;
    }
    snapshot_free(&prev);
    return 0;
}

/* ---- main -------------------------------------------------------------------- */

__attribute__((format(printf, 1, 2))) static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "shoal: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nrun 'shoal --help' for usage\n");
    return EXIT_USAGE;
}

/* Matches "--name VALUE" or "--name=VALUE"; advances *i past the value. */
static int take_value(int argc, char **argv, int *i, const char *name, const char **value) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0) return 0;
    if (a[n] == '=') {
        *value = a + n + 1;
        return 1;
    }
    if (a[n] != '\0') return 0;
    if (*i + 1 >= argc) return -1;
    *value = argv[++*i];
    return 1;
}

int main(int argc, char **argv) {
    const char *domain = NULL, *runtime_dir = NULL, *command = NULL, *kind_text = NULL;
    bool held_only = false;
    double interval = 1.0;
    long count = 0;

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = NULL;
        int r;
        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0 || strcmp(a, "help") == 0) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (strcmp(a, "-V") == 0 || strcmp(a, "--version") == 0) {
            printf("shoal %d.%d.%d (libshoal %s, ABI %u)\n", SHOAL_VERSION_MAJOR, SHOAL_VERSION_MINOR,
                   SHOAL_VERSION_PATCH, shoal_version(), (unsigned)shoal_abi_version());
            return 0;
        }
        if ((r = take_value(argc, argv, &i, "--domain", &v)) != 0) {
            if (r < 0 || !*v) return usage_error("%s needs a domain name", a);
            domain = v;
        } else if ((r = take_value(argc, argv, &i, "--runtime-dir", &v)) != 0) {
            if (r < 0 || !*v) return usage_error("%s needs a directory", a);
            runtime_dir = v;
        } else if ((r = take_value(argc, argv, &i, "--kind", &v)) != 0) {
            if (r < 0) return usage_error("%s needs publisher, subscriber, client or server", a);
            kind_text = v;
        } else if ((r = take_value(argc, argv, &i, "--interval", &v)) != 0) {
            char *end;
            if (r < 0) return usage_error("%s needs seconds, e.g. --interval 0.5", a);
            errno = 0;
            interval = strtod(v, &end);
            if (errno || end == v || *end || !(interval >= 0.05 && interval <= 86400))
                return usage_error("bad interval '%s' (seconds between 0.05 and 86400)", v);
        } else if ((r = take_value(argc, argv, &i, "--count", &v)) != 0 ||
                   (r = take_value(argc, argv, &i, "-n", &v)) != 0) {
            char *end;
            if (r < 0) return usage_error("%s needs a number of refreshes", a);
            errno = 0;
            count = strtol(v, &end, 10);
            if (errno || end == v || *end || count < 1)
                return usage_error("bad count '%s' (a whole number >= 1)", v);
        } else if (strcmp(a, "--held") == 0) {
            held_only = true;
        } else if (a[0] == '-') {
            return usage_error("unknown option '%s'", a);
        } else if (!command) {
            command = a;
        } else {
            return usage_error("unexpected argument '%s'", a);
        }
    }
    if (!command) command = "status";

    static const char *commands[] = {"status", "pools", "ports", "processes", "top"};
    bool known = false;
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(command, commands[i]) == 0) known = true;
    if (!known)
        return usage_error("unknown command '%s' (known: status, pools, ports, processes, top)", command);
    int kind = 0;
    if (kind_text) {
        if (strcmp(command, "ports") != 0) return usage_error("--kind only applies to 'ports'");
        kind = kind_parse(kind_text);
        if (kind < 0)
            return usage_error("unknown port kind '%s' (publisher, subscriber, client or server)",
                               kind_text);
    }
    if (held_only && strcmp(command, "ports") != 0)
        return usage_error("--held only applies to 'ports'");
    if ((interval != 1.0 || count) && strcmp(command, "top") != 0)
        return usage_error("--interval and --count only apply to 'top'");

    shoal_runtime_options_t opts;
    shoal_runtime_options_init(&opts, SHOAL_RUNTIME_OPTIONS_VERSION);
    opts.domain = domain;
    opts.runtime_dir = runtime_dir;
    shoal_runtime_t *rt = NULL;
    shoal_result_t rc = shoal_runtime_create(&rt, "shoal-cli", &opts);
    if (rc != SHOAL_OK) {
        char what[160];
        snprintf(what, sizeof what, "cannot read domain '%s'",
                 domain ? domain : getenv("SHOAL_DOMAIN") ? getenv("SHOAL_DOMAIN") : "default");
        report_failure(what, rc);
        return 1;
    }

    int status = 0;
    if (strcmp(command, "top") == 0) {
        status = run_top(rt, interval, count);
    } else {
        snapshot_t s;
        if (snapshot_take(rt, &s) != 0) {
            status = 1;
        } else {
            if (strcmp(command, "status") == 0) print_status(rt, &s);
            else if (strcmp(command, "pools") == 0) print_pools(&s);
            else if (strcmp(command, "ports") == 0) print_ports(&s, kind, held_only, UINT32_MAX, NULL, 0);
            else if (print_processes(&s, UINT32_MAX) != 0) status = 1;
            snapshot_free(&s);
        }
    }
    shoal_runtime_destroy(rt);
    if (fflush(stdout) != 0 && status == 0) status = 1;
    return status;
}
