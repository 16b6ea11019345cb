/* shoal-gateway: bridges chosen shoal topics and services of one host to
 * Eclipse Cyclone DDS, so that they reach shoal on other hosts.
 *
 * One thread owns every shoal port and every DDS entity. It sleeps in a DDS
 * waitset; a helper thread only polls the shoal waitset's fd and raises a
 * DDS guard condition, then waits for the main thread to drain the ports.
 * Idle, both sleep: the main thread wakes 4 times a second for the port
 * table scan and its liveness checks. The gateway never outlives its
 * shoald (exit status 4), nor, when started with --ready-fd, the process
 * that started it (exit status 5).
 * See docs/gateway.md for the mapping, the types and the limits. */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <dds/dds.h>
#include <dds/version.h>
#include <dds/ddsi/ddsi_serdata.h>

#include "gw_config.h"
#include "shoal.h"
#include "shoal_gateway.h"

/* ---- logging ------------------------------------------------------------- */

enum { L_OFF, L_ERROR, L_WARN, L_INFO, L_DEBUG, L_TRACE };
static const char *const level_names[] = {"off", "error", "warn", "info", "debug", "trace"};
static int log_level = L_INFO;
static char log_id[GW_ID_MAX] = "?";

__attribute__((format(printf, 2, 3))) static void logm(int level, const char *fmt, ...) {
    if (level > log_level) return;
    char line[2048];
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    int n = snprintf(line, sizeof line, "%02d:%02d:%02d.%06ld shoal-gateway[%d] %s %-5s ",
                     tm.tm_hour, tm.tm_min, tm.tm_sec, ts.tv_nsec / 1000, (int)getpid(), log_id,
                     level_names[level]);
    va_list ap;
    va_start(ap, fmt);
    if (n > 0 && (size_t)n < sizeof line) vsnprintf(line + n, sizeof line - (size_t)n, fmt, ap);
    va_end(ap);
    size_t len = strnlen(line, sizeof line - 2);
    line[len++] = '\n';
    ssize_t w = write(STDERR_FILENO, line, len); /* one write: lines never interleave */
    (void)w;
}
#define LOGE(...) logm(L_ERROR, __VA_ARGS__)
#define LOGW(...) logm(L_WARN, __VA_ARGS__)
#define LOGI(...) logm(L_INFO, __VA_ARGS__)
#define LOGD(...) logm(L_DEBUG, __VA_ARGS__)

/* Bounded copy that tolerates overlap and unterminated sources. */
static void copy_str(char *dst, size_t cap, const char *src) {
    size_t n = strnlen(src, cap - 1);
    memmove(dst, src, n);
    dst[n] = '\0';
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- state ----------------------------------------------------------------- */

#define MAX_TOPICS 256
#define MAX_PEERS 64
#define MAX_SERVICES 128
#define MAX_PROXIES 512
#define MAX_CALLS 4096
#define MAX_REASSEMBLY 8
#define PEEK_BYTES 320 /* CDR prefix holding every field before the payload */

enum { TAG_EXPORT = 1, TAG_PROXY = 2, TAG_CLIENT = 3 };
#define TAG(kind, i) (((uint64_t)(kind) << 32) | (uint32_t)(i))

/* DDS waitset attachments */
enum { ATT_GUARD = 1, ATT_IMPORT = 2, ATT_REQUEST = 3, ATT_REPLY = 4, ATT_ANNOUNCE = 5, ATT_PUBS = 6 };
#define ATT(kind, i) ((dds_attach_t)(((int64_t)(kind) << 32) | (uint32_t)(i)))

typedef struct counters {
    uint64_t samples_out, bytes_out, fragments_out;
    uint64_t samples_in, bytes_in, fragments_in;
    uint64_t dropped;        /* samples not delivered (queue full, lost fragments, ...) */
    uint64_t requests_out, replies_in, requests_in, replies_out, calls_lost;
} counters_t;

typedef struct export_topic {
    char name[128];
    gw_rule_t rule;
    shoal_subscriber_t *sub;
    dds_entity_t topic, writer;
    uint64_t sequence;
    shoal_chunk_t *pending;   /* taken, not yet all written (DDS was full) */
    uint32_t pending_frag;
} export_topic_t;

typedef struct reassembly {
    bool used;
    char origin[GW_ID_MAX];
    uint64_t sequence, total, received;
    uint32_t next_fragment, fragments;
    shoal_chunk_t *chunk;
} reassembly_t;

typedef struct import_topic {
    char name[128];
    gw_rule_t rule;
    shoal_publisher_t *pub;
    dds_entity_t topic, reader, cond;
    reassembly_t ra[MAX_REASSEMBLY];
} import_topic_t;

typedef struct offer {
    char name[128];
    uint32_t servers;
} offer_t;

typedef struct peer {
    bool used, alive, ready;
    char id[GW_ID_MAX];
    uint64_t incarnation;
    dds_guid_t participant;
    bool have_participant;
    dds_entity_t pub, req_writer, rep_writer;
    offer_t offers[MAX_SERVICES];
    uint32_t offer_count;
} peer_t;

typedef struct proxy {
    bool used;
    char service[128];
    uint32_t peer;
    shoal_server_t *srv;
    uint32_t calls; /* requests taken and not answered */
} proxy_t;

/* A call this gateway forwarded to a peer (client side) */
typedef struct call {
    bool used;
    uint64_t token;
    uint32_t proxy;
    shoal_chunk_t *request;
} call_t;

/* A request a peer sent here, forwarded to a local server */
typedef struct forward {
    bool used;
    uint64_t since; /* when forwarded: the oldest makes room when all are used */
    uint64_t seq;
    uint64_t token;
    uint32_t peer;
} forward_t;

typedef struct svc_client {
    bool used;
    char name[128];
    shoal_client_t *cli;
    forward_t fw[256];
} svc_client_t;

typedef struct gateway {
    gw_config_t cfg;
    shoal_runtime_t *rt;
    shoal_waitset_t *ws;
    int ws_fd, ack_fd, stop_fd;
    dds_entity_t pp, dws, guard;
    dds_entity_t t_req, t_rep, t_ann, sub_own, req_reader, rep_reader, req_cond, rep_cond;
    dds_entity_t ann_writer, ann_reader, ann_cond, pubs_reader, pubs_cond;
    dds_guid_t own_guid;
    uint64_t incarnation, next_token;
    export_topic_t exports[MAX_TOPICS];
    import_topic_t imports[MAX_TOPICS];
    uint32_t export_count, import_count;
    peer_t peers[MAX_PEERS];
    proxy_t proxies[MAX_PROXIES];
    call_t calls[MAX_CALLS];
    svc_client_t clients[MAX_SERVICES];
    offer_t local_offers[MAX_SERVICES];
    uint32_t local_offer_count;
    bool announced;
    bool offers_changed;  /* announcements or peers changed: proxies to reconcile */
    bool daemon_gone;     /* shoald died or stopped: the gateway exits */
    shoal_waitset_t *probe; /* no ports: its wait only says whether shoald is there */
    pid_t parent;         /* with --ready-fd: the process that started us, else 0 */
    counters_t c;
} gateway_t;

/* Exit statuses beyond usage (1) and start-up (3) failures */
#define EXIT_DAEMON_GONE 4
#define EXIT_PARENT_GONE 5

/* Notes a shoal failure that means the daemon is gone: the loop then ends. */
static void check_daemon(gateway_t *g, shoal_result_t rc) {
    if (rc == SHOAL_ERR_DAEMON_UNAVAILABLE) g->daemon_gone = true;
}

static volatile sig_atomic_t stop_requested, stats_requested;
static int signal_fd = -1; /* written by the handlers: the helper wakes the loop */
static void wake_on_signal(void) {
    uint64_t one = 1;
    if (signal_fd >= 0) {
        ssize_t w = write(signal_fd, &one, sizeof one);
        (void)w;
    }
}
static void on_stop(int sig) { (void)sig; stop_requested = 1; wake_on_signal(); }
static void on_stats(int sig) { (void)sig; stats_requested = 1; wake_on_signal(); }

static void log_counters(const gateway_t *g) {
    uint32_t remote = 0;
    for (uint32_t i = 0; i < MAX_PEERS; i++)
        if (g->peers[i].used && g->peers[i].alive)
            for (uint32_t k = 0; k < g->peers[i].offer_count; k++) remote += g->peers[i].offers[k].servers > 0;
    LOGI("counters: out %llu samples %llu bytes %llu fragments; in %llu samples %llu bytes %llu "
         "fragments; dropped %llu; requests out %llu in %llu; replies out %llu in %llu; calls lost "
         "%llu; remote services %u; topics exported %u imported %u",
         (unsigned long long)g->c.samples_out, (unsigned long long)g->c.bytes_out,
         (unsigned long long)g->c.fragments_out, (unsigned long long)g->c.samples_in,
         (unsigned long long)g->c.bytes_in, (unsigned long long)g->c.fragments_in,
         (unsigned long long)g->c.dropped, (unsigned long long)g->c.requests_out,
         (unsigned long long)g->c.requests_in, (unsigned long long)g->c.replies_out,
         (unsigned long long)g->c.replies_in, (unsigned long long)g->c.calls_lost, remote,
         g->export_count, g->import_count);
}

/* ---- DDS names and QoS ------------------------------------------------------------ */

/* DDS topic names allow fewer characters than shoal's: everything outside
 * [A-Za-z0-9_/] is written as "-XX" (hex), and '-' itself so. */
static int dds_topic_name(const char *shoal_name, char *out, size_t len) {
    size_t o = (size_t)snprintf(out, len, "shoal/");
    for (const char *s = shoal_name; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (o + 4 >= len) return -1;
        if (isalnum(ch) || ch == '_' || ch == '/') out[o++] = (char)ch;
        else o += (size_t)snprintf(out + o, len - o, "-%02X", ch);
    }
    out[o] = '\0';
    return 0;
}

static int shoal_topic_name(const char *dds_name, char *out, size_t len) {
    if (strncmp(dds_name, "shoal/", 6) != 0) return -1;
    size_t o = 0;
    for (const char *s = dds_name + 6; *s; s++) {
        if (o + 1 >= len) return -1;
        if (*s == '-') {
            unsigned v;
            if (!isxdigit((unsigned char)s[1]) || !isxdigit((unsigned char)s[2]) ||
                sscanf(s + 1, "%2x", &v) != 1 || v == 0)
                return -1;
            out[o++] = (char)v;
            s += 2;
        } else {
            out[o++] = *s;
        }
    }
    out[o] = '\0';
    return o ? 0 : -1;
}

static dds_qos_t *topic_qos(const gw_rule_t *r, bool writer) {
    dds_qos_t *q = dds_create_qos();
    dds_duration_t block = r->policy == GW_REJECT ? 0
                         : r->policy == GW_WAIT  ? DDS_MSECS(r->timeout_ms)
                                                 : DDS_MSECS(100);
    if (r->best_effort) dds_qset_reliability(q, DDS_RELIABILITY_BEST_EFFORT, 0);
    else dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, block);
    if (r->history > 0) {
        /* late joiners on other hosts get the last N */
        dds_qset_durability(q, DDS_DURABILITY_TRANSIENT_LOCAL);
        dds_qset_history(q, DDS_HISTORY_KEEP_LAST, (int32_t)r->history);
        /* Cyclone keeps what late joiners get per durability_service (default: 1) */
        dds_qset_durability_service(q, 0, DDS_HISTORY_KEEP_LAST, (int32_t)r->history,
                                    DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED, DDS_LENGTH_UNLIMITED);
    } else if (r->policy == GW_DROP_OLDEST) {
        dds_qset_history(q, DDS_HISTORY_KEEP_LAST, (int32_t)r->depth);
    } else {
        dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
    }
    if (!writer) dds_qset_ignorelocal(q, DDS_IGNORELOCAL_PARTICIPANT);
    return q;
}

/* ---- CDR prefix parsing ------------------------------------------------------------ */

/* A cursor over the CDR prefix of a serialized sample. Only the fields before
 * the payload are read here; every offset is checked against the size. */
typedef struct cdr {
    const unsigned char *b;
    size_t len, pos; /* pos counts from the start of the data (after the 4-byte header) */
    bool swap, bad;
} cdr_t;

static bool cdr_open(cdr_t *c, const unsigned char *buf, size_t len) {
    memset(c, 0, sizeof *c);
    if (len < 4) return false;
    uint16_t id = (uint16_t)(buf[0] << 8 | buf[1]);
    /* plain CDR, XCDR1 or XCDR2: the low bit is little-endian */
    if (id != 0 && id != 1 && id != 6 && id != 7 && id != 0x10 && id != 0x11) return false;
    bool little = id & 1;
    uint16_t probe = 1;
    bool host_little = *(unsigned char *)&probe == 1;
    c->swap = little != host_little;
    c->b = buf + 4;
    c->len = len - 4;
    return true;
}

static void cdr_align(cdr_t *c, size_t a) { c->pos = (c->pos + a - 1) & ~(a - 1); }

static uint64_t cdr_u(cdr_t *c, size_t n) {
    cdr_align(c, n == 8 ? 4 : n); /* fields are laid out so 4 and 8 agree */
    if (c->bad || c->pos + n > c->len) {
        c->bad = true;
        return 0;
    }
    uint64_t v = 0;
    unsigned char t[8];
    memcpy(t, c->b + c->pos, n);
    if (c->swap)
        for (size_t i = 0; i < n / 2; i++) {
            unsigned char x = t[i];
            t[i] = t[n - 1 - i];
            t[n - 1 - i] = x;
        }
    if (n == 8) memcpy(&v, t, 8);
    else {
        uint32_t w;
        memcpy(&w, t, 4);
        v = w;
    }
    c->pos += n;
    return v;
}

static void cdr_string(cdr_t *c, char *out, size_t cap) {
    uint32_t n = (uint32_t)cdr_u(c, 4);
    out[0] = '\0';
    if (c->bad || n == 0 || n > cap || c->pos + n > c->len || c->b[c->pos + n - 1] != '\0') {
        c->bad = true;
        return;
    }
    memcpy(out, c->b + c->pos, n);
    c->pos += n;
}

/* The serialized sample's prefix, up to PEEK_BYTES. */
static size_t peek(struct ddsi_serdata *sd, unsigned char *buf, size_t *total) {
    size_t size = ddsi_serdata_size(sd);
    size_t n = size < PEEK_BYTES ? size : PEEK_BYTES;
    ddsi_serdata_to_ser(sd, 0, n, buf);
    *total = size;
    return n;
}

/* ---- exports: shoal -> DDS ---------------------------------------------------------- */

static export_topic_t *export_find(gateway_t *g, const char *name) {
    for (uint32_t i = 0; i < g->export_count; i++)
        if (!strcmp(g->exports[i].name, name)) return &g->exports[i];
    return NULL;
}

static void export_open(gateway_t *g, const char *name, const gw_rule_t *r) {
    if (g->export_count == MAX_TOPICS) {
        LOGW("cannot export '%s': already %d topics exported (narrow the [export] globs)", name, MAX_TOPICS);
        return;
    }
    char dn[300];
    if (dds_topic_name(name, dn, sizeof dn)) return;
    export_topic_t *e = &g->exports[g->export_count];
    memset(e, 0, sizeof *e);
    snprintf(e->name, sizeof e->name, "%s", name);
    e->rule = *r;
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    so.ignore_own_process = 1; /* never export what we imported */
    so.history = r->history;
    shoal_result_t rc = shoal_subscriber_create(&e->sub, g->rt, name, &so);
    if (rc != SHOAL_OK) {
        LOGW("cannot export '%s': %s (%s)", name, shoal_strerror(rc), shoal_last_error_message());
        return;
    }
    e->topic = dds_create_topic(g->pp, &shoal_gw_Sample_desc, dn, NULL, NULL);
    dds_qos_t *q = topic_qos(r, true);
    e->writer = e->topic > 0 ? dds_create_writer(g->pp, e->topic, q, NULL) : e->topic;
    dds_delete_qos(q);
    if (e->writer < 0) {
        LOGW("cannot export '%s': DDS writer: %s", name, dds_strretcode(e->writer));
        shoal_subscriber_destroy(e->sub);
        return;
    }
    rc = shoal_waitset_attach_subscriber(g->ws, e->sub, TAG(TAG_EXPORT, g->export_count));
    if (rc != SHOAL_OK) LOGW("waitset: %s", shoal_last_error_message());
    g->export_count++;
    LOGI("exporting topic '%s' as DDS topic '%s'", name, dn);
}

/* Writes what remains of e->pending; false when DDS is full (try later). */
static bool export_flush(gateway_t *g, export_topic_t *e) {
    shoal_chunk_t *c = e->pending;
    uint64_t size = shoal_chunk_size(c);
    const unsigned char *p = shoal_chunk_payload(c);
    uint64_t max = g->cfg.max_sample;
    uint32_t frags = size <= max ? 1 : (uint32_t)((size + max - 1) / max);
    shoal_gw_Sample s;
    memset(&s, 0, sizeof s);
    s.serial = e->sequence;
    s.total_size = size;
    s.fragments = frags;
    snprintf(s.origin, sizeof s.origin, "%s", g->cfg.id);
    for (uint32_t f = e->pending_frag; f < frags; f++) {
        uint64_t off = (uint64_t)f * max;
        uint64_t n = size - off < max ? size - off : max;
        s.offset = off;
        s.fragment = f;
        s.payload._buffer = (uint8_t *)(uintptr_t)(p + off); /* serialized straight from the chunk */
        s.payload._length = s.payload._maximum = (uint32_t)n;
        s.payload._release = false;
        dds_return_t r = dds_write(e->writer, &s);
        if (r == DDS_RETCODE_TIMEOUT) {
            if (e->rule.policy == GW_DROP_OLDEST) break; /* counted below */
            e->pending_frag = f;
            return false;
        }
        if (r < 0) {
            LOGW("topic '%s': DDS write failed: %s", e->name, dds_strretcode(r));
            break;
        }
        g->c.fragments_out += frags > 1;
        if (f + 1 == frags) {
            g->c.samples_out++;
            g->c.bytes_out += size;
            shoal_chunk_release(c);
            e->pending = NULL;
            e->pending_frag = 0;
            e->sequence++;
            return true;
        }
    }
    g->c.dropped++;
    shoal_chunk_release(c);
    e->pending = NULL;
    e->pending_frag = 0;
    e->sequence++;
    return true;
}

enum { DRAINED, MORE, BLOCKED };
/* MORE when the subscriber may still have samples, BLOCKED while DDS is full
 * (retried on a timer: its queued samples must not wake us again and again). */
static int export_drain(gateway_t *g, export_topic_t *e) {
    for (int i = 0; i < 64; i++) {
        if (e->pending && !export_flush(g, e)) return BLOCKED;
        shoal_chunk_t *c = NULL;
        shoal_result_t rc = shoal_subscriber_take(e->sub, &c, 0);
        if (rc != SHOAL_OK) {
            check_daemon(g, rc);
            return DRAINED;
        }
        e->pending = c;
        e->pending_frag = 0;
    }
    return MORE;
}

/* ---- imports: DDS -> shoal ------------------------------------------------------------ */

static import_topic_t *import_find(gateway_t *g, const char *name) {
    for (uint32_t i = 0; i < g->import_count; i++)
        if (!strcmp(g->imports[i].name, name)) return &g->imports[i];
    return NULL;
}

static void import_open(gateway_t *g, const char *name, const gw_rule_t *r) {
    if (g->import_count == MAX_TOPICS) {
        LOGW("cannot import '%s': already %d topics imported (narrow the [import] globs)", name, MAX_TOPICS);
        return;
    }
    char dn[300];
    if (dds_topic_name(name, dn, sizeof dn)) return;
    import_topic_t *m = &g->imports[g->import_count];
    memset(m, 0, sizeof *m);
    snprintf(m->name, sizeof m->name, "%s", name);
    m->rule = *r;
    shoal_publisher_options_t po;
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    po.history = r->history;
    po.full_policy = r->policy == GW_REJECT ? SHOAL_FULL_REJECT
                   : r->policy == GW_WAIT   ? SHOAL_FULL_WAIT
                                            : SHOAL_FULL_DROP_OLDEST;
    po.send_timeout_ns = r->timeout_ms * 1000000;
    shoal_result_t rc = shoal_publisher_create(&m->pub, g->rt, name, &po);
    if (rc != SHOAL_OK) {
        LOGW("cannot import '%s': %s (%s)", name, shoal_strerror(rc), shoal_last_error_message());
        return;
    }
    m->topic = dds_create_topic(g->pp, &shoal_gw_Sample_desc, dn, NULL, NULL);
    dds_qos_t *q = topic_qos(r, false);
    m->reader = m->topic > 0 ? dds_create_reader(g->pp, m->topic, q, NULL) : m->topic;
    dds_delete_qos(q);
    if (m->reader < 0) {
        LOGW("cannot import '%s': DDS reader: %s", name, dds_strretcode(m->reader));
        shoal_publisher_destroy(m->pub);
        return;
    }
    m->cond = dds_create_readcondition(m->reader, DDS_ANY_STATE);
    dds_waitset_attach(g->dws, m->cond, ATT(ATT_IMPORT, g->import_count));
    g->import_count++;
    LOGI("importing DDS topic '%s' as topic '%s'", dn, name);
}

static void ra_drop(gateway_t *g, reassembly_t *ra) {
    if (ra->chunk) shoal_chunk_release(ra->chunk);
    memset(ra, 0, sizeof *ra);
    g->c.dropped++;
}

static void import_publish(gateway_t *g, import_topic_t *m, shoal_chunk_t *c, uint64_t size) {
    shoal_result_t rc = shoal_publisher_publish(m->pub, c);
    if (rc == SHOAL_OK || rc == SHOAL_ERR_QUEUE_FULL || rc == SHOAL_ERR_TIMEOUT) {
        g->c.samples_in++;
        g->c.bytes_in += size;
    }
    if (rc != SHOAL_OK) {
        check_daemon(g, rc);
        g->c.dropped++;
        LOGD("topic '%s': %s", m->name, shoal_last_error_message());
    }
}

/* One serialized Sample: its payload goes from the serialized data straight
 * into a loaned chunk (a fragment into its place in the whole). */
static void import_sample(gateway_t *g, import_topic_t *m, struct ddsi_serdata *sd) {
    unsigned char pre[PEEK_BYTES];
    size_t total;
    size_t n = peek(sd, pre, &total);
    cdr_t c;
    if (!cdr_open(&c, pre, n)) goto bad;
    uint64_t seq = cdr_u(&c, 8), size = cdr_u(&c, 8), off = cdr_u(&c, 8);
    uint32_t frag = (uint32_t)cdr_u(&c, 4), frags = (uint32_t)cdr_u(&c, 4);
    char origin[GW_ID_MAX];
    cdr_string(&c, origin, sizeof origin);
    uint32_t len = (uint32_t)cdr_u(&c, 4);
    size_t at = c.pos + 4;
    if (c.bad || at + len > total || frags == 0 || frag >= frags || off > size || len > size - off)
        goto bad;
    if (!strcmp(origin, g->cfg.id)) return; /* our own, seen through another path */
    g->c.fragments_in += frags > 1;
    if (frags == 1) {
        if (len != size) goto bad;
        shoal_chunk_t *ch = NULL;
        shoal_result_t rc = shoal_publisher_loan(m->pub, size ? size : 1, &ch);
        if (rc != SHOAL_OK) {
            check_daemon(g, rc);
            g->c.dropped++;
            LOGW("topic '%s': cannot loan %llu bytes: %s", m->name, (unsigned long long)size,
                 shoal_last_error_message());
            return;
        }
        if (len) ddsi_serdata_to_ser(sd, at, len, shoal_chunk_payload(ch));
        shoal_chunk_set_size(ch, size);
        import_publish(g, m, ch, size);
        return;
    }
    /* fragments of one writer arrive in order (reliable); a gap drops the sample */
    reassembly_t *ra = NULL, *free_ra = NULL;
    for (int i = 0; i < MAX_REASSEMBLY; i++) {
        if (m->ra[i].used && !strcmp(m->ra[i].origin, origin)) ra = &m->ra[i];
        else if (!m->ra[i].used && !free_ra) free_ra = &m->ra[i];
    }
    if (ra && (ra->sequence != seq || ra->next_fragment != frag || ra->total != size ||
               ra->fragments != frags)) {
        LOGD("topic '%s': fragments of sample %llu from '%s' missing; dropped", m->name,
             (unsigned long long)ra->sequence, origin);
        ra_drop(g, ra);
        free_ra = ra;
        ra = NULL;
    }
    if (!ra) {
        if (frag != 0) { /* joined in the middle of a sample */
            g->c.dropped += frag + 1 == frags;
            return;
        }
        if (!free_ra) {
            LOGW("topic '%s': more than %d origins sending fragments at once; sample dropped",
                 m->name, MAX_REASSEMBLY);
            g->c.dropped++;
            return;
        }
        ra = free_ra;
        memset(ra, 0, sizeof *ra);
        shoal_result_t rc = shoal_publisher_loan(m->pub, size, &ra->chunk);
        if (rc != SHOAL_OK) {
            check_daemon(g, rc);
            LOGW("topic '%s': cannot loan %llu bytes: %s", m->name, (unsigned long long)size,
                 shoal_last_error_message());
            g->c.dropped++;
            return;
        }
        ra->used = true;
        snprintf(ra->origin, sizeof ra->origin, "%s", origin);
        ra->sequence = seq;
        ra->total = size;
        ra->fragments = frags;
    }
    ddsi_serdata_to_ser(sd, at, len, (unsigned char *)shoal_chunk_payload(ra->chunk) + off);
    ra->received += len;
    ra->next_fragment++;
    if (ra->next_fragment == frags) {
        shoal_chunk_t *ch = ra->chunk;
        bool whole = ra->received == size;
        ra->chunk = NULL;
        memset(ra, 0, sizeof *ra);
        if (whole) import_publish(g, m, ch, size);
        else {
            shoal_chunk_release(ch);
            g->c.dropped++;
        }
    }
    return;
bad:
    g->c.dropped++;
    LOGW("topic '%s': a malformed sample was dropped", m->name);
}

static void import_drain(gateway_t *g, import_topic_t *m) {
    for (int k = 0; k < 256; k++) {
        struct ddsi_serdata *sd = NULL;
        dds_sample_info_t si;
        dds_return_t n = dds_takecdr(m->reader, &sd, 1, &si, DDS_ANY_STATE);
        if (n <= 0) return;
        if (si.valid_data) import_sample(g, m, sd);
        ddsi_serdata_unref(sd);
    }
}

/* New DDS writers of shoal/<T>: import T when [import] says so. */
static void discover_publications(gateway_t *g) {
    void *samples[16] = {0};
    dds_sample_info_t si[16];
    for (;;) {
        dds_return_t n = dds_take(g->pubs_reader, samples, si, 16, 16);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) {
            if (!si[i].valid_data) continue;
            const dds_builtintopic_endpoint_t *ep = samples[i];
            if (!memcmp(&ep->participant_key, &g->own_guid, sizeof g->own_guid)) continue;
            if (!ep->topic_name || !ep->type_name || strcmp(ep->type_name, "shoal_gw::Sample")) continue;
            char name[128];
            if (shoal_topic_name(ep->topic_name, name, sizeof name)) continue;
            const gw_rule_t *r = gw_rule_match(g->cfg.imports, g->cfg.import_count, name);
            if (r && !import_find(g, name)) import_open(g, name, r);
        }
        dds_return_loan(g->pubs_reader, samples, n);
    }
}

/* Local publishers of topics [export] names: export them. */
static void discover_local(gateway_t *g) {
    /* nothing to export: the (empty) announcement is all there is to do */
    if (!g->cfg.export_count && !g->cfg.service_export_count && g->announced) return;
    uint32_t slots = shoal_runtime_port_slots(g->rt);
    pid_t me = getpid();
    offer_t offers[MAX_SERVICES];
    uint32_t noffers = 0;
    for (uint32_t s = 0; s < slots; s++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        if (shoal_runtime_port_info(g->rt, s, &pi) != SHOAL_OK || pi.pid == me) continue;
        pi.service[sizeof pi.service - 1] = '\0';
        if (pi.kind == SHOAL_PORT_PUBLISHER) {
            const gw_rule_t *r = gw_rule_match(g->cfg.exports, g->cfg.export_count, pi.service);
            if (r && !export_find(g, pi.service)) export_open(g, pi.service, r);
        } else if (pi.kind == SHOAL_PORT_SERVER &&
                   gw_glob_match((char(*)[GW_GLOB_MAX])g->cfg.service_exports, g->cfg.service_export_count, pi.service)) {
            uint32_t k;
            for (k = 0; k < noffers; k++)
                if (!strcmp(offers[k].name, pi.service)) break;
            if (k == noffers && noffers < MAX_SERVICES) {
                snprintf(offers[noffers].name, sizeof offers[0].name, "%s", pi.service);
                offers[noffers++].servers = 0;
            }
            if (k < noffers) offers[k].servers++;
        }
    }
    /* announce when what we offer changed (order-independent compare) */
    bool same = noffers == g->local_offer_count;
    for (uint32_t i = 0; same && i < noffers; i++) {
        bool found = false;
        for (uint32_t k = 0; k < g->local_offer_count && !found; k++)
            found = !strcmp(offers[i].name, g->local_offers[k].name) &&
                    offers[i].servers == g->local_offers[k].servers;
        same = found;
    }
    if (same && g->announced) return;
    memcpy(g->local_offers, offers, sizeof offers[0] * noffers);
    g->local_offer_count = noffers;
    shoal_gw_Announce a;
    memset(&a, 0, sizeof a);
    snprintf(a.gateway, sizeof a.gateway, "%s", g->cfg.id);
    a.incarnation = g->incarnation;
    shoal_gw_ServiceOffer so[MAX_SERVICES];
    for (uint32_t i = 0; i < noffers; i++) {
        copy_str(so[i].name, sizeof so[i].name, offers[i].name);
        so[i].servers = offers[i].servers;
    }
    a.services._buffer = so;
    a.services._length = a.services._maximum = noffers;
    a.services._release = false;
    dds_return_t r = dds_write(g->ann_writer, &a);
    if (r < 0) LOGW("announcing services failed: %s", dds_strretcode(r));
    else {
        g->announced = true;
        LOGD("announced %u service(s)", noffers);
    }
}

/* ---- services ------------------------------------------------------------------------ */

static peer_t *peer_get(gateway_t *g, const char *id, bool create) {
    peer_t *free_p = NULL;
    for (uint32_t i = 0; i < MAX_PEERS; i++) {
        if (g->peers[i].used && !strcmp(g->peers[i].id, id)) return &g->peers[i];
        if (!g->peers[i].used && !free_p) free_p = &g->peers[i];
    }
    if (!create || !free_p || !gw_valid_id(id)) return NULL;
    peer_t *p = free_p;
    memset(p, 0, sizeof *p);
    snprintf(p->id, sizeof p->id, "%s", id);
    /* a publisher in the peer's partition addresses requests and replies to it alone */
    char part[GW_ID_MAX + 16];
    snprintf(part, sizeof part, "shoal-gw-%s", id);
    dds_qos_t *q = dds_create_qos();
    dds_qset_partition1(q, part);
    p->pub = dds_create_publisher(g->pp, q, NULL);
    dds_delete_qos(q);
    q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
    dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
    p->req_writer = dds_create_writer(p->pub, g->t_req, q, NULL);
    p->rep_writer = dds_create_writer(p->pub, g->t_rep, q, NULL);
    dds_delete_qos(q);
    if (p->pub < 0 || p->req_writer < 0 || p->rep_writer < 0) {
        LOGE("cannot create DDS writers for peer '%s'", id);
        if (p->pub > 0) dds_delete(p->pub);
        return NULL;
    }
    p->used = true;
    return p;
}

static void proxy_close(gateway_t *g, uint32_t i, bool lost) {
    proxy_t *x = &g->proxies[i];
    /* calls in flight: closing the server tells their clients SERVER_GONE */
    for (uint32_t k = 0; k < MAX_CALLS; k++)
        if (g->calls[k].used && g->calls[k].proxy == i) {
            g->calls[k].used = false;
            g->c.calls_lost += lost;
        }
    shoal_waitset_detach(g->ws, TAG(TAG_PROXY, i));
    shoal_server_destroy(x->srv); /* releases the requests it holds */
    memset(x, 0, sizeof *x);
    g->offers_changed = true; /* reopened at the next reconcile if still offered */
}

static void proxy_open(gateway_t *g, const char *service, uint32_t peer) {
    for (uint32_t i = 0; i < MAX_PROXIES; i++) {
        if (g->proxies[i].used) continue;
        proxy_t *x = &g->proxies[i];
        shoal_result_t rc = shoal_server_create(&x->srv, g->rt, service, NULL);
        if (rc != SHOAL_OK) {
            check_daemon(g, rc);
            LOGW("cannot offer remote service '%s' of '%s': %s", service, g->peers[peer].id,
                 shoal_last_error_message());
            return;
        }
        x->used = true;
        x->peer = peer;
        copy_str(x->service, sizeof x->service, service);
        shoal_waitset_attach_server(g->ws, x->srv, TAG(TAG_PROXY, i));
        LOGI("offering service '%s' of gateway '%s'", service, g->peers[peer].id);
        return;
    }
    LOGW("cannot offer remote service '%s': %d proxy servers already", service, MAX_PROXIES);
}

static bool participant_matched(gateway_t *g, dds_entity_t reader, const dds_guid_t *pp) {
    dds_instance_handle_t hs[64];
    dds_return_t n = dds_get_matched_publications(reader, hs, 64);
    for (int i = 0; i < n && i < 64; i++) {
        dds_builtintopic_endpoint_t *ep = dds_get_matched_publication_data(reader, hs[i]);
        if (!ep) continue;
        bool same = !memcmp(&ep->participant_key, pp, sizeof *pp);
        dds_builtintopic_free_endpoint(ep);
        if (same) return true;
    }
    (void)g;
    return false;
}

/* Whether a peer announced itself but is not reachable both ways yet: its
 * matching is polled at the fast rate until it is. */
static bool peers_settling(const gateway_t *g) {
    for (uint32_t pi = 0; pi < MAX_PEERS; pi++)
        if (g->peers[pi].used && g->peers[pi].alive && !g->peers[pi].ready) return true;
    return false;
}

/* Proxies follow the announcements: as many local servers per remote
 * service as the remote host has, none once it has none. Only peers still
 * settling are polled; the proxy tables are walked only after a change. */
static void reconcile_proxies(gateway_t *g) {
    for (uint32_t pi = 0; pi < MAX_PEERS; pi++) {
        peer_t *p = &g->peers[pi];
        if (!p->used) continue;
        if (p->alive && !p->ready && p->have_participant) {
            /* requests and replies can flow only once both ways matched */
            dds_publication_matched_status_t st;
            if (dds_get_publication_matched_status(p->req_writer, &st) == 0 && st.current_count > 0 &&
                participant_matched(g, g->rep_reader, &p->participant)) {
                p->ready = true;
                g->offers_changed = true;
                LOGI("peer gateway '%s' is reachable", p->id);
            }
        }
    }
    if (!g->offers_changed) return;
    g->offers_changed = false;
    /* close proxies that lost their remote servers */
    for (uint32_t i = 0; i < MAX_PROXIES; i++) {
        proxy_t *x = &g->proxies[i];
        if (!x->used) continue;
        peer_t *p = &g->peers[x->peer];
        uint32_t want = 0, have = 0;
        if (p->used && p->alive && p->ready)
            for (uint32_t k = 0; k < p->offer_count; k++)
                if (!strcmp(p->offers[k].name, x->service)) want = p->offers[k].servers;
        for (uint32_t j = 0; j <= i; j++)
            have += g->proxies[j].used && g->proxies[j].peer == x->peer && !strcmp(g->proxies[j].service, x->service);
        if (have > want) {
            LOGI("service '%s' of gateway '%s': remote server gone", x->service, p->id);
            proxy_close(g, i, true);
        }
    }
    /* open proxies for remote servers */
    for (uint32_t pi = 0; pi < MAX_PEERS; pi++) {
        peer_t *p = &g->peers[pi];
        if (!p->used || !p->alive || !p->ready) continue;
        for (uint32_t k = 0; k < p->offer_count; k++) {
            const offer_t *o = &p->offers[k];
            if (!gw_glob_match((char(*)[GW_GLOB_MAX])g->cfg.service_imports, g->cfg.service_import_count, o->name))
                continue;
            uint32_t have = 0;
            for (uint32_t i = 0; i < MAX_PROXIES; i++)
                have += g->proxies[i].used && g->proxies[i].peer == pi && !strcmp(g->proxies[i].service, o->name);
            for (; have < o->servers; have++) proxy_open(g, o->name, pi);
        }
    }
}

static void fail_peer_calls(gateway_t *g, uint32_t pi) {
    for (uint32_t i = 0; i < MAX_PROXIES; i++)
        if (g->proxies[i].used && g->proxies[i].peer == pi && g->proxies[i].calls) {
            /* recreated at the next reconcile if the peer still offers it */
            proxy_close(g, i, true);
        }
}

static void take_announcements(gateway_t *g) {
    for (;;) {
        void *samples[8] = {0};
        dds_sample_info_t si[8];
        dds_return_t n = dds_take(g->ann_reader, samples, si, 8, 8);
        if (n <= 0) break;
        for (int i = 0; i < n; i++) {
            const shoal_gw_Announce *a = samples[i];
            if (!strcmp(a->gateway, g->cfg.id)) continue;
            peer_t *p = peer_get(g, a->gateway, si[i].valid_data);
            if (!p) continue;
            uint32_t pi = (uint32_t)(p - g->peers);
            if (!si[i].valid_data) {
                if (si[i].instance_state != DDS_IST_ALIVE && p->alive) {
                    LOGI("peer gateway '%s' is gone", p->id);
                    p->alive = p->ready = false;
                    p->offer_count = 0;
                    fail_peer_calls(g, pi);
                }
                continue;
            }
            if (p->alive && p->incarnation != a->incarnation) {
                LOGI("peer gateway '%s' restarted", p->id);
                fail_peer_calls(g, pi);
                p->ready = false;
            }
            if (!p->alive) p->ready = false;
            p->alive = true;
            p->incarnation = a->incarnation;
            dds_builtintopic_endpoint_t *ep = dds_get_matched_publication_data(g->ann_reader, si[i].publication_handle);
            if (ep) {
                p->participant = ep->participant_key;
                p->have_participant = true;
                dds_builtintopic_free_endpoint(ep);
            }
            p->offer_count = 0;
            for (uint32_t k = 0; k < a->services._length && k < MAX_SERVICES; k++) {
                snprintf(p->offers[k].name, sizeof p->offers[k].name, "%s", a->services._buffer[k].name);
                p->offers[k].servers = a->services._buffer[k].servers;
                p->offer_count++;
            }
        }
        dds_return_loan(g->ann_reader, samples, n);
        g->offers_changed = true;
    }
}

/* A local client took a request from a proxy server: send it to the peer. */
static void proxy_drain(gateway_t *g, uint32_t i) {
    for (int k = 0; k < 64; k++) {
        proxy_t *x = &g->proxies[i];
        if (!x->used) return;
        shoal_chunk_t *req = NULL;
        shoal_result_t trc = shoal_server_take(x->srv, &req, 0);
        if (trc != SHOAL_OK) {
            check_daemon(g, trc);
            return;
        }
        peer_t *p = &g->peers[x->peer];
        uint32_t slot;
        for (slot = 0; slot < MAX_CALLS && g->calls[slot].used; slot++) {}
        uint64_t size = shoal_chunk_size(req);
        if (slot == MAX_CALLS || size > g->cfg.max_sample) {
            LOGW("service '%s': request dropped (%s)", x->service,
                 slot == MAX_CALLS ? "too many calls in flight" : "larger than max_sample");
            shoal_chunk_release(req);
            g->c.dropped++;
            continue;
        }
        shoal_gw_Request r;
        memset(&r, 0, sizeof r);
        r.token = g->next_token++;
        snprintf(r.origin, sizeof r.origin, "%s", g->cfg.id);
        snprintf(r.service, sizeof r.service, "%s", x->service);
        r.payload._buffer = shoal_chunk_payload(req);
        r.payload._length = r.payload._maximum = (uint32_t)size;
        dds_return_t rc = dds_write(p->req_writer, &r);
        if (rc < 0) {
            LOGW("service '%s': request to '%s' failed: %s", x->service, p->id, dds_strretcode(rc));
            shoal_chunk_release(req);
            g->c.dropped++;
            continue;
        }
        g->c.requests_out++;
        g->calls[slot] = (call_t){.used = true, .token = r.token, .proxy = i, .request = req};
        x->calls++;
    }
}

static svc_client_t *client_get(gateway_t *g, const char *service) {
    svc_client_t *free_c = NULL;
    for (uint32_t i = 0; i < MAX_SERVICES; i++) {
        if (g->clients[i].used && !strcmp(g->clients[i].name, service)) return &g->clients[i];
        if (!g->clients[i].used && !free_c) free_c = &g->clients[i];
    }
    if (!free_c) return NULL;
    shoal_client_options_t o;
    shoal_client_options_init(&o, SHOAL_CLIENT_OPTIONS_VERSION);
    o.ignore_own_process = 1; /* never our own proxy servers */
    memset(free_c, 0, sizeof *free_c);
    if (shoal_client_create(&free_c->cli, g->rt, service, &o) != SHOAL_OK) {
        LOGW("service '%s': cannot create a client: %s", service, shoal_last_error_message());
        return NULL;
    }
    free_c->used = true;
    snprintf(free_c->name, sizeof free_c->name, "%s", service);
    shoal_waitset_attach_client(g->ws, free_c->cli, TAG(TAG_CLIENT, free_c - g->clients));
    return free_c;
}

static void send_reply(gateway_t *g, peer_t *p, uint64_t token, int32_t status, const void *data,
                       uint64_t size) {
    shoal_gw_Reply r;
    memset(&r, 0, sizeof r);
    r.token = token;
    r.status = status;
    snprintf(r.origin, sizeof r.origin, "%s", g->cfg.id);
    r.payload._buffer = (uint8_t *)(uintptr_t)data;
    r.payload._length = r.payload._maximum = (uint32_t)size;
    dds_return_t rc = dds_write(p->rep_writer, &r);
    if (rc < 0) LOGW("reply to '%s' failed: %s", p->id, dds_strretcode(rc));
    else g->c.replies_out++;
}

/* A peer's request: hand it to one local server through our client. */
static void take_requests(gateway_t *g) {
    for (int k = 0; k < 256; k++) {
        struct ddsi_serdata *sd = NULL;
        dds_sample_info_t si;
        if (dds_takecdr(g->req_reader, &sd, 1, &si, DDS_ANY_STATE) <= 0) return;
        if (!si.valid_data) {
            ddsi_serdata_unref(sd);
            continue;
        }
        unsigned char pre[PEEK_BYTES];
        size_t total, n = peek(sd, pre, &total);
        cdr_t c;
        char origin[GW_ID_MAX], service[128];
        bool ok = cdr_open(&c, pre, n);
        uint64_t token = cdr_u(&c, 8);
        cdr_string(&c, origin, sizeof origin);
        cdr_string(&c, service, sizeof service);
        uint32_t len = (uint32_t)cdr_u(&c, 4);
        size_t at = c.pos + 4;
        peer_t *p = ok && !c.bad && at + len <= total ? peer_get(g, origin, true) : NULL;
        if (!p) {
            LOGW("a malformed request was dropped");
            ddsi_serdata_unref(sd);
            continue;
        }
        g->c.requests_in++;
        shoal_result_t rc = SHOAL_ERR_NO_SERVER;
        svc_client_t *sc = gw_glob_match((char(*)[GW_GLOB_MAX])g->cfg.service_exports,
                                         g->cfg.service_export_count, service)
                               ? client_get(g, service)
                               : NULL;
        uint32_t f = 0;
        if (sc) {
            for (f = 0; f < 256 && sc->fw[f].used; f++) {}
            if (f == 256) {
                /* a server that never answers must not block the service for
                 * good: the oldest call ends (its client sees a timeout or
                 * SERVER_GONE) and a late answer to it is released as stale */
                uint32_t old = 0;
                for (uint32_t i = 1; i < 256; i++)
                    if (sc->fw[i].since < sc->fw[old].since) old = i;
                LOGW("service '%s': 256 forwarded calls unanswered; the oldest is given up", service);
                send_reply(g, &g->peers[sc->fw[old].peer], sc->fw[old].token, SHOAL_ERR_TIMEOUT, NULL, 0);
                sc->fw[old].used = false;
                f = old;
            }
        }
        if (sc) {
            shoal_chunk_t *req = NULL;
            uint64_t seq = 0;
            rc = shoal_client_loan(sc->cli, len ? len : 1, &req);
            if (rc == SHOAL_OK) {
                if (len) ddsi_serdata_to_ser(sd, at, len, shoal_chunk_payload(req));
                shoal_chunk_set_size(req, len);
                rc = shoal_client_send(sc->cli, req, &seq);
            }
            if (rc == SHOAL_OK)
                sc->fw[f] = (forward_t){.used = true, .since = now_ns(), .seq = seq, .token = token,
                                        .peer = (uint32_t)(p - g->peers)};
        }
        ddsi_serdata_unref(sd);
        if (rc != SHOAL_OK) {
            check_daemon(g, rc);
            LOGD("request for '%s' from '%s': %s", service, origin, shoal_strerror(rc));
            send_reply(g, p, token, (int32_t)rc, NULL, 0);
        }
    }
}

static uint64_t lost_sequence(void) {
    /* the runtime names the lost request's id: "request N on service ..." */
    const char *m = strstr(shoal_last_error_message(), "request ");
    return m ? strtoull(m + 8, NULL, 10) : 0;
}

/* Responses of local servers to requests from peers: back to the peer. */
static void client_drain(gateway_t *g, svc_client_t *sc) {
    for (int k = 0; k < 64; k++) {
        shoal_chunk_t *resp = NULL;
        shoal_result_t rc = shoal_client_take(sc->cli, &resp, 0);
        uint64_t seq;
        if (rc == SHOAL_ERR_SERVER_GONE) seq = lost_sequence();
        else if (rc == SHOAL_OK) seq = shoal_chunk_sequence_id(resp);
        else {
            check_daemon(g, rc);
            return;
        }
        for (uint32_t f = 0; f < 256; f++) {
            forward_t *fw = &sc->fw[f];
            if (!fw->used || fw->seq != seq) continue;
            peer_t *p = &g->peers[fw->peer];
            if (rc == SHOAL_OK) send_reply(g, p, fw->token, 0, shoal_chunk_payload(resp), shoal_chunk_size(resp));
            else send_reply(g, p, fw->token, SHOAL_ERR_SERVER_GONE, NULL, 0);
            fw->used = false;
            break;
        }
        if (resp) shoal_chunk_release(resp); /* an unknown response is stale: released */
    }
}

/* A peer answered one of our calls: answer the local client. */
static void take_replies(gateway_t *g) {
    for (int k = 0; k < 256; k++) {
        struct ddsi_serdata *sd = NULL;
        dds_sample_info_t si;
        if (dds_takecdr(g->rep_reader, &sd, 1, &si, DDS_ANY_STATE) <= 0) return;
        if (!si.valid_data) {
            ddsi_serdata_unref(sd);
            continue;
        }
        unsigned char pre[PEEK_BYTES];
        size_t total, n = peek(sd, pre, &total);
        cdr_t c;
        char origin[GW_ID_MAX];
        bool ok = cdr_open(&c, pre, n);
        uint64_t token = cdr_u(&c, 8);
        int32_t status = (int32_t)cdr_u(&c, 4);
        cdr_string(&c, origin, sizeof origin);
        uint32_t len = (uint32_t)cdr_u(&c, 4);
        size_t at = c.pos + 4;
        call_t *call = NULL;
        for (uint32_t i = 0; ok && !c.bad && at + len <= total && i < MAX_CALLS; i++)
            if (g->calls[i].used && g->calls[i].token == token) call = &g->calls[i];
        if (!call) { /* its proxy was closed meanwhile: the client already knows */
            ddsi_serdata_unref(sd);
            continue;
        }
        g->c.replies_in++;
        uint32_t pi = call->proxy;
        proxy_t *x = &g->proxies[pi];
        if (status == SHOAL_OK) {
            shoal_chunk_t *resp = NULL;
            shoal_result_t rc = shoal_server_loan_response(x->srv, call->request, len ? len : 1, &resp);
            if (rc == SHOAL_OK) {
                if (len) ddsi_serdata_to_ser(sd, at, len, shoal_chunk_payload(resp));
                shoal_chunk_set_size(resp, len);
                rc = shoal_server_send(x->srv, resp);
            }
            if (rc != SHOAL_OK) LOGD("service '%s': response not delivered: %s", x->service, shoal_last_error_message());
            shoal_chunk_release(call->request);
            call->used = false;
            x->calls--;
        } else if (x->calls == 1) {
            /* the remote server is gone with the request: closing this proxy
             * (which holds nothing else) tells the client SERVER_GONE */
            LOGD("service '%s': call failed on '%s': %s", x->service, g->peers[x->peer].id,
                 shoal_strerror((shoal_result_t)status));
            proxy_close(g, pi, true);
        } else {
            /* other calls are in flight on this proxy: the client times out */
            shoal_chunk_release(call->request);
            call->used = false;
            x->calls--;
            g->c.calls_lost++;
        }
        ddsi_serdata_unref(sd);
    }
}

/* ---- the loops ------------------------------------------------------------------------------ */

typedef struct helper_arg {
    gateway_t *g;
} helper_arg_t;

/* Sleeps on the shoal waitset's fd (and the signal fd) and wakes the main
 * thread; then waits until the main thread drained the ports (the fd stays
 * readable till then). No timeout: it sleeps until there is work. */
static void *helper_main(void *arg) {
    gateway_t *g = ((helper_arg_t *)arg)->g;
    for (;;) {
        struct pollfd fds[3] = {{g->ws_fd, POLLIN, 0}, {g->stop_fd, POLLIN, 0}, {signal_fd, POLLIN, 0}};
        if (poll(fds, 3, -1) < 0 && errno != EINTR) break;
        if (fds[1].revents) break;
        if (fds[2].revents) {
            uint64_t v;
            ssize_t r = read(signal_fd, &v, sizeof v);
            (void)r;
        }
        if (!fds[0].revents && !fds[2].revents) continue;
        dds_set_guardcondition(g->guard, true);
        struct pollfd ack[2] = {{g->ack_fd, POLLIN, 0}, {g->stop_fd, POLLIN, 0}};
        while (poll(ack, 2, -1) < 0 && errno == EINTR) {}
        if (ack[1].revents) break;
        uint64_t v;
        ssize_t r = read(g->ack_fd, &v, sizeof v);
        (void)r;
    }
    return NULL;
}

/* Drains every ready shoal port; true when some may still have data. A
 * port whose export is blocked by DDS stays ready in the waitset but does
 * not count: the main loop retries it on a timer. */
static bool shoal_side(gateway_t *g) {
    bool more = false;
    for (int round = 0; round < 8; round++) {
        uint64_t tags[64];
        size_t n = 0, blocked = 0;
        shoal_result_t rc = shoal_waitset_wait(g->ws, tags, 64, &n, 0);
        check_daemon(g, rc);
        if (rc != SHOAL_OK || n == 0) return more;
        more = false;
        for (size_t i = 0; i < n; i++) {
            uint32_t kind = (uint32_t)(tags[i] >> 32), idx = (uint32_t)tags[i];
            if (kind == TAG_EXPORT && idx < g->export_count) {
                int r = export_drain(g, &g->exports[idx]);
                more |= r == MORE;
                blocked += r == BLOCKED;
            } else if (kind == TAG_PROXY && idx < MAX_PROXIES) proxy_drain(g, idx);
            else if (kind == TAG_CLIENT && idx < MAX_SERVICES && g->clients[idx].used) client_drain(g, &g->clients[idx]);
        }
        if (g->daemon_gone) return false;
        if (blocked == n) return more; /* only blocked ports left */
    }
    return true;
}

static int rmem_check(const gw_config_t *cfg) {
    FILE *f = fopen("/proc/sys/net/core/rmem_max", "r");
    unsigned long long v = 0;
    if (!f) return 0; /* not Linux procfs: Cyclone will say */
    int ok = fscanf(f, "%llu", &v) == 1;
    fclose(f);
    if (ok && v < cfg->rcvbuf) {
        fprintf(stderr,
                "shoal-gateway: net.core.rmem_max is %llu bytes, but Cyclone DDS needs socket "
                "receive buffers of %llu bytes ([gateway] rcvbuf in %s); raise the limit with "
                "'sysctl -w net.core.rmem_max=%llu' (and in /etc/sysctl.d to keep it), or lower "
                "rcvbuf (large samples then lose packets and crawl)\n",
                v, (unsigned long long)cfg->rcvbuf, cfg->source, (unsigned long long)cfg->rcvbuf);
        return -1;
    }
    return 0;
}

static int run(gateway_t *g, const char *domain, const char *runtime_dir, int ready_fd) {
    gw_config_t *cfg = &g->cfg;
    /* Cyclone: the user's configuration, then the buffer we insist on */
    char *xml = NULL;
    if (asprintf(&xml, "%s%s<CycloneDDS><Domain id=\"any\"><Internal><SocketReceiveBufferSize "
                       "min=\"%lluB\"/></Internal></Domain></CycloneDDS>",
                 cfg->cyclonedds_uri, cfg->cyclonedds_uri[0] ? "," : "",
                 (unsigned long long)cfg->rcvbuf) < 0)
        return 3;
    dds_entity_t dom = dds_create_domain((dds_domainid_t)cfg->dds_domain, xml);
    free(xml);
    if (dom < 0) {
        fprintf(stderr, "shoal-gateway: Cyclone DDS refused its configuration (cyclonedds_uri in %s, "
                        "or a socket buffer of %llu bytes): %s; Cyclone's own messages above say "
                        "which element\n",
                cfg->source, (unsigned long long)cfg->rcvbuf, dds_strretcode(dom));
        return 3;
    }
    g->pp = dds_create_participant((dds_domainid_t)cfg->dds_domain, NULL, NULL);
    if (g->pp < 0) {
        fprintf(stderr, "shoal-gateway: cannot join DDS domain %u: %s\n", cfg->dds_domain,
                dds_strretcode(g->pp));
        dds_delete(dom);
        return 3;
    }
    dds_get_guid(g->pp, &g->own_guid);

    shoal_runtime_options_t ro;
    shoal_runtime_options_init(&ro, SHOAL_RUNTIME_OPTIONS_VERSION);
    ro.domain = domain;
    ro.runtime_dir = runtime_dir;
    ro.connect_timeout_ns = 5000000000LL;
    char rtname[GW_ID_MAX + 16];
    snprintf(rtname, sizeof rtname, "gateway:%s", cfg->id);
    shoal_result_t rc = shoal_runtime_create(&g->rt, rtname, &ro);
    if (rc != SHOAL_OK) {
        fprintf(stderr, "shoal-gateway: cannot register with shoald: %s\n", shoal_last_error_message());
        dds_delete(dom);
        return 3;
    }
    if (shoal_waitset_create(&g->ws, g->rt) != SHOAL_OK || shoal_waitset_fd(g->ws, &g->ws_fd) != SHOAL_OK) {
        fprintf(stderr, "shoal-gateway: waitset: %s\n", shoal_last_error_message());
        shoal_runtime_destroy(g->rt);
        dds_delete(dom);
        return 3;
    }
    if (shoal_waitset_create(&g->probe, g->rt) != SHOAL_OK) g->probe = NULL; /* a backstop only */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    g->incarnation = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 16);
    g->next_token = g->incarnation;

    /* services: own partition for what is addressed to us */
    g->t_req = dds_create_topic(g->pp, &shoal_gw_Request_desc, "shoal_gw/request", NULL, NULL);
    g->t_rep = dds_create_topic(g->pp, &shoal_gw_Reply_desc, "shoal_gw/reply", NULL, NULL);
    g->t_ann = dds_create_topic(g->pp, &shoal_gw_Announce_desc, "shoal_gw/announce", NULL, NULL);
    char part[GW_ID_MAX + 16];
    snprintf(part, sizeof part, "shoal-gw-%s", cfg->id);
    dds_qos_t *q = dds_create_qos();
    dds_qset_partition1(q, part);
    g->sub_own = dds_create_subscriber(g->pp, q, NULL);
    dds_delete_qos(q);
    q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
    dds_qset_history(q, DDS_HISTORY_KEEP_ALL, 0);
    g->req_reader = dds_create_reader(g->sub_own, g->t_req, q, NULL);
    g->rep_reader = dds_create_reader(g->sub_own, g->t_rep, q, NULL);
    dds_delete_qos(q);
    q = dds_create_qos();
    dds_qset_reliability(q, DDS_RELIABILITY_RELIABLE, DDS_SECS(1));
    dds_qset_durability(q, DDS_DURABILITY_TRANSIENT_LOCAL);
    dds_qset_history(q, DDS_HISTORY_KEEP_LAST, 1);
    /* a killed gateway's offers vanish within 3 s (a restarted one is
     * recognised at once by its new incarnation); shorter leases expire
     * on a merely stalled host */
    dds_qset_liveliness(q, DDS_LIVELINESS_AUTOMATIC, DDS_MSECS(3000));
    dds_qset_writer_data_lifecycle(q, true);
    g->ann_writer = dds_create_writer(g->pp, g->t_ann, q, NULL);
    dds_qset_ignorelocal(q, DDS_IGNORELOCAL_PARTICIPANT);
    g->ann_reader = dds_create_reader(g->pp, g->t_ann, q, NULL);
    dds_delete_qos(q);
    g->pubs_reader = dds_create_reader(g->pp, DDS_BUILTIN_TOPIC_DCPSPUBLICATION, NULL, NULL);
    g->dws = dds_create_waitset(g->pp);
    g->guard = dds_create_guardcondition(g->pp);
    if (g->t_req < 0 || g->t_rep < 0 || g->t_ann < 0 || g->sub_own < 0 || g->req_reader < 0 ||
        g->rep_reader < 0 || g->ann_writer < 0 || g->ann_reader < 0 || g->pubs_reader < 0 ||
        g->dws < 0 || g->guard < 0) {
        fprintf(stderr, "shoal-gateway: cannot create the DDS entities of the gateway\n");
        shoal_runtime_destroy(g->rt);
        dds_delete(dom);
        return 3;
    }
    g->req_cond = dds_create_readcondition(g->req_reader, DDS_ANY_STATE);
    g->rep_cond = dds_create_readcondition(g->rep_reader, DDS_ANY_STATE);
    g->ann_cond = dds_create_readcondition(g->ann_reader, DDS_ANY_STATE);
    g->pubs_cond = dds_create_readcondition(g->pubs_reader, DDS_ANY_STATE);
    dds_waitset_attach(g->dws, g->guard, ATT(ATT_GUARD, 0));
    dds_waitset_attach(g->dws, g->req_cond, ATT(ATT_REQUEST, 0));
    dds_waitset_attach(g->dws, g->rep_cond, ATT(ATT_REPLY, 0));
    dds_waitset_attach(g->dws, g->ann_cond, ATT(ATT_ANNOUNCE, 0));
    dds_waitset_attach(g->dws, g->pubs_cond, ATT(ATT_PUBS, 0));

    g->ack_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    g->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    pthread_t helper;
    helper_arg_t ha = {g};
    if (g->ack_fd < 0 || g->stop_fd < 0 || pthread_create(&helper, NULL, helper_main, &ha) != 0) {
        fprintf(stderr, "shoal-gateway: cannot start the helper thread: %s\n", strerror(errno));
        shoal_runtime_destroy(g->rt);
        dds_delete(dom);
        return 3;
    }
    discover_local(g);
    LOGI("gateway '%s' up: shoal domain '%s', DDS domain %u, max_sample %llu", cfg->id,
         shoal_runtime_domain(g->rt), cfg->dds_domain, (unsigned long long)cfg->max_sample);
    if (ready_fd >= 0) {
        ssize_t w = write(ready_fd, "ready\n", 6);
        (void)w;
        close(ready_fd);
    }
    /* Timers, not polling: idle, the loop sleeps until the next slow tick
     * (scan, liveness checks); the fast tick runs only while a peer's
     * matching settles, the backoff only while DDS holds an export back. */
    const uint64_t slow_tick = 250000000ull, fast_tick = 20000000ull;
    const uint64_t backoff_min = 1000000ull, backoff_max = 32000000ull;
    uint64_t next_tick = 0, next_scan = 0, backoff = backoff_min;
    bool more = false;
    while (!stop_requested && !g->daemon_gone) {
        bool pending = false;
        for (uint32_t i = 0; i < g->export_count; i++) pending |= g->exports[i].pending != NULL;
        uint64_t t = now_ns();
        dds_duration_t wait = 0;
        if (!more) {
            uint64_t until = next_tick > t ? next_tick - t : 0;
            if (pending && backoff < until) until = backoff;
            wait = (dds_duration_t)until;
        }
        dds_attach_t xs[64];
        dds_return_t n = dds_waitset_wait(g->dws, xs, 64, wait);
        bool guard = false;
        for (int i = 0; i < n && i < 64; i++) {
            uint32_t kind = (uint32_t)((int64_t)xs[i] >> 32), idx = (uint32_t)xs[i];
            if (kind == ATT_GUARD) guard = true;
            else if (kind == ATT_IMPORT && idx < g->import_count) import_drain(g, &g->imports[idx]);
            else if (kind == ATT_REQUEST) take_requests(g);
            else if (kind == ATT_REPLY) take_replies(g);
            else if (kind == ATT_ANNOUNCE) take_announcements(g);
            else if (kind == ATT_PUBS) discover_publications(g);
        }
        if (guard || more || pending) {
            uint64_t before = g->c.samples_out + g->c.dropped;
            more = shoal_side(g);
            bool blocked = false;
            for (uint32_t i = 0; i < g->export_count; i++) blocked |= g->exports[i].pending != NULL;
            /* progress resets the backoff; DDS still full doubles it */
            if (!blocked || g->c.samples_out + g->c.dropped != before) backoff = backoff_min;
            else if (backoff < backoff_max) backoff *= 2;
            if (!more && guard) {
                dds_set_guardcondition(g->guard, false);
                if (blocked) {
                    /* its queued samples keep the fd readable: quiet it, so
                     * the helper sleeps until new data (the timer retries) */
                    uint64_t v;
                    ssize_t r = read(g->ws_fd, &v, sizeof v);
                    (void)r;
                }
                uint64_t one = 1;
                ssize_t w = write(g->ack_fd, &one, sizeof one);
                (void)w;
            }
        }
        t = now_ns();
        /* a new announcement or a closed proxy: reconcile now, not at the tick */
        if (g->offers_changed && t < next_tick) {
            reconcile_proxies(g);
            if (peers_settling(g) && next_tick > t + fast_tick) next_tick = t + fast_tick;
        }
        if (t >= next_tick) {
            if (t >= next_scan) {
                next_scan = t + slow_tick;
                discover_local(g);
                /* the daemon's death also wakes the loop through the waitset;
                 * this probe (a waitset with no ports, no fd) is the backstop */
                size_t none = 0;
                if (g->probe) check_daemon(g, shoal_waitset_wait(g->probe, NULL, 0, &none, 0));
                if (g->parent && getppid() != g->parent) {
                    LOGE("the process that started this gateway with --ready-fd (pid %d) has "
                         "exited; exiting with status %d (a gateway started for a test or by a "
                         "supervisor must not outlive it; start it without --ready-fd to keep it "
                         "running on its own)",
                         (int)g->parent, EXIT_PARENT_GONE);
                    break;
                }
            }
            reconcile_proxies(g);
            next_tick = t + (peers_settling(g) ? fast_tick : slow_tick);
            if (next_tick > next_scan) next_tick = next_scan;
        }
        if (stats_requested) {
            stats_requested = 0;
            log_counters(g);
        }
    }
    int status = 0;
    if (g->daemon_gone) {
        status = EXIT_DAEMON_GONE;
        LOGE("shoald of domain '%s' is gone (it died or was stopped); exiting with status %d: "
             "restart shoal-gateway once shoald runs again (a supervisor does that, e.g. "
             "systemd's Restart=on-failure)",
             shoal_runtime_domain(g->rt), EXIT_DAEMON_GONE);
    } else if (!stop_requested) {
        status = EXIT_PARENT_GONE;
    }
    LOGI("stopping");
    log_counters(g);
    uint64_t one = 1;
    ssize_t w = write(g->stop_fd, &one, sizeof one);
    (void)w;
    pthread_join(helper, NULL);
    for (uint32_t i = 0; i < g->export_count; i++)
        if (g->exports[i].pending) shoal_chunk_release(g->exports[i].pending);
    if (g->probe) shoal_waitset_destroy(g->probe);
    shoal_runtime_destroy(g->rt); /* closes every port: proxies report their calls lost */
    dds_delete(dom);
    close(g->ack_fd);
    close(g->stop_fd);
    return status;
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: shoal-gateway --config FILE [options]\n"
            "  --config FILE        gateway configuration (docs/gateway.md)\n"
            "  --domain NAME        shoal domain to bridge (default $SHOAL_DOMAIN, else 'default')\n"
            "  --runtime-dir DIR    shoald socket directory (default $SHOAL_RUNTIME_DIR)\n"
            "  --log-level LEVEL    off|error|warn|info|debug|trace (default info)\n"
            "  --print-config       print the effective configuration and exit\n"
            "  --ready-fd N         write \"ready\\n\" to fd N once bridging; then exit (status 5)\n"
            "                       when the process that started the gateway exits\n"
            "  --version            print the version and exit\n"
            "  --help               this text\n"
            "signals: SIGTERM/SIGINT stop, SIGUSR1 logs the counters\n"
            "exit codes: 0 clean stop, 1 bad usage or config, 3 start-up failure,\n"
            "            4 shoald went away, 5 the starter of a --ready-fd gateway exited\n");
}

int main(int argc, char **argv) {
    pid_t starter = getppid(); /* first thing: it may die any time from now */
    const char *config_path = NULL, *domain = getenv("SHOAL_DOMAIN");
    const char *runtime_dir = getenv("SHOAL_RUNTIME_DIR");
    int print_config = 0, ready_fd = -1;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(a, "--version")) {
            printf("shoal-gateway %s (Cyclone DDS %s)\n", shoal_version(), DDS_VERSION);
            return 0;
        } else if (!strcmp(a, "--print-config")) {
            print_config = 1;
        } else if (v && !strcmp(a, "--config")) {
            config_path = v, i++;
        } else if (v && !strcmp(a, "--domain")) {
            domain = v, i++;
        } else if (v && !strcmp(a, "--runtime-dir")) {
            runtime_dir = v, i++;
        } else if (v && !strcmp(a, "--log-level")) {
            int l = -1;
            for (int k = 0; k <= L_TRACE; k++)
                if (!strcmp(v, level_names[k])) l = k;
            if (l < 0) {
                fprintf(stderr, "shoal-gateway: unknown log level '%s' (use off|error|warn|info|debug|trace)\n", v);
                return 1;
            }
            log_level = l;
            i++;
        } else if (v && !strcmp(a, "--ready-fd")) {
            char *end;
            long fd = strtol(v, &end, 10);
            if (*end || !*v || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) {
                fprintf(stderr, "shoal-gateway: --ready-fd needs an open file descriptor number, got '%s'\n", v);
                return 1;
            }
            ready_fd = (int)fd;
            i++;
        } else {
            fprintf(stderr, "shoal-gateway: unknown or incomplete option '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    if (!config_path) {
        fprintf(stderr, "shoal-gateway: --config FILE is required (it names the gateway id and what "
                        "to bridge; see docs/gateway.md)\n");
        return 1;
    }
    static gateway_t g;
    gw_config_defaults(&g.cfg);
    char err[2048];
    if (gw_config_load(&g.cfg, config_path, err, sizeof err) != 0) {
        fprintf(stderr, "shoal-gateway: %s\n", err);
        return 1;
    }
    if (print_config) {
        gw_config_print(&g.cfg, stdout);
        return 0;
    }
    if (rmem_check(&g.cfg) != 0) return 1;
    snprintf(log_id, sizeof log_id, "%s", g.cfg.id);
    signal_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_stats;
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* a harness or supervisor waiting for "ready" owns the gateway */
    if (ready_fd >= 0) g.parent = starter;
    return run(&g, domain, runtime_dir, ready_fd);
}
