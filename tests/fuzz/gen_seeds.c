/* Writes the seed corpus of the three harnesses:
 *     gen_seeds DIR   ->  DIR/fuzz_config/seed-*, DIR/fuzz_daemon_msg/seed-*,
 *                         DIR/fuzz_client_reply/seed-*
 * (tests/fuzz/run.sh --seeds regenerates tests/fuzz/corpus with it). Small
 * valid and near-valid inputs; the input formats are described at the top
 * of each harness. Regression inputs (regress-*) are committed by hand next
 * to these. */
#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/proto.h"

static const char *outdir;

typedef struct buf {
    uint8_t b[8192];
    size_t n;
} buf_t;

static void put(buf_t *b, const void *p, size_t n) {
    if (b->n + n > sizeof b->b) abort();
    memcpy(b->b + b->n, p, n);
    b->n += n;
}
static void u8(buf_t *b, unsigned v) {
    uint8_t x = (uint8_t)v;
    put(b, &x, 1);
}
static void u16(buf_t *b, unsigned v) {
    u8(b, v & 0xff);
    u8(b, v >> 8);
}
static void u32(buf_t *b, uint32_t v) {
    u16(b, v & 0xffff);
    u16(b, v >> 16);
}
static void u64(buf_t *b, uint64_t v) {
    u32(b, (uint32_t)v);
    u32(b, (uint32_t)(v >> 32));
}

static void write_seed(const char *harness, const char *name, const void *data, size_t n) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", outdir, harness);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "%s/%s/seed-%s", outdir, harness, name);
    FILE *f = fopen(path, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

/* ---- fuzz_config: files from docs/configuration.md and tests/c/test_config.c -------- */

static const struct {
    const char *name, *text;
} configs[] = {
    {"defaults",
     "# shoal daemon configuration (source: (built-in defaults))\n"
     "# comments start with '#'; sizes take K, M, G suffixes (powers of 1024)\n\n"
     "[limits]\n"
     "processes = 128            # registered processes at once\n"
     "publishers = 1024          # publisher ports at once\n"
     "subscribers = 1024         # subscriber ports at once\n"
     "servers = 1024             # server ports at once\n"
     "clients = 1024             # client ports at once\n"
     "services = 1024            # distinct topic/service names\n"
     "chunks_per_port = 64       # chunks one port may hold (loaned or taken, not released)\n"
     "waitsets_per_process = 64  # waitsets one process may have at once\n"
     "queue_capacity = 256       # default and maximum receive-queue capacity per port\n"
     "history = 16               # max history a publisher may keep (<= queue_capacity)\n\n"
     "[pools]\n"
     "# chunk size = number of chunks\n"
     "64 = 4096                  # 256 KiB of payload\n"
     "1K = 1024                  # 1 MiB of payload\n"
     "16K = 256                  # 4 MiB of payload\n"
     "256K = 64                  # 16 MiB of payload\n"
     "1M = 32                    # 32 MiB of payload\n"
     "16M = 8                    # 128 MiB of payload\n"
     "# total payload: 181.2 MiB\n"},
    {"large-chunks", "[pools]\n64 = 1024\n1200M = 2\n"},
    {"full",
     "# a full file\n\n[limits]\nprocesses = 4096\npublishers=1\n"
     "\tsubscribers\t=\t65536   # trailing comment\n   servers = 2048\nclients = 3\nservices = 5\n"
     "chunks_per_port = 65536\nqueue_capacity = 100\nhistory = 100\n\n"
     "  [pools]   # comment after a header\n# sizes in any order; sorted on load\n"
     "4G = 1\n1200M = 2\n64 = 16777216\n1KiB = 10\n16k = 3\n"},
    {"limits-only", "[limits]\nservers = 4000\n"},
    {"pools-crlf", "[pools]\n1G = 2\r\n"},
    {"empty", ""},
    {"comments", "# nothing\n   # more nothing\n\n"},
    {"history-zero", "[limits]\nqueue_capacity = 1\nhistory = 0"},
    {"extremes",
     "[limits]\nprocesses = 1\nqueue_capacity = 65536\nhistory = 65536\n"
     "[pools]\n1 = 1\n1536 = 3\n1200M = 2\n64G = 1\n1025K = 16777216\n"},
    {"bom", "\xEF\xBB\xBF[limits]\nclients = 9\n"},
    {"bad-section", "[limits]\n[poools]\n"},
    {"bad-unclosed", "\n[limits\nservers = 1\n"},
    {"bad-after-header", "[limits] x\n"},
    {"bad-twice", "[limits]\nservers = 1\n[limits]\n"},
    {"bad-outside", "servers = 1\n"},
    {"bad-empty-pools", "[limits]\nservers = 5\n[pools] # empty\n# nothing\n"},
    {"bad-typo", "[limits]\nservrs = 10\n"},
    {"bad-duplicate", "[limits]\nservers = 10\n\nservers = 11\n"},
    {"bad-no-equals", "[limits]\nservers 10\n"},
    {"bad-empty-value", "[limits]\nservers =   # nothing\n"},
    {"bad-no-key", "[limits]\n = 10\n"},
    {"bad-trailing", "[limits]\nservers = 10 x\n"},
    {"bad-suffix", "[limits]\nservers = 10K\n"},
    {"bad-two-equals", "[limits]\nservers = 1 = 2\n"},
    {"bad-negative", "[limits]\nservers = -1\n"},
    {"bad-overflow", "[limits]\nservers = 99999999999999999999999\n"},
    {"bad-range", "[limits]\nservers = 65537\n"},
    {"bad-history", "[limits]\nhistory = 20\nqueue_capacity = 10\n"},
    {"bad-pool-dup", "[pools]\n1M = 1\n1MiB = 1\n"},
    {"bad-pool-size", "[pools]\n1.5K = 5\n"},
    {"bad-pool-kb", "[pools]\n1KB = 5\n"},
    {"bad-pool-zero", "[pools]\n0 = 5\n"},
    {"bad-pool-big", "[pools]\n65G = 1\n"},
    {"bad-pool-count", "[pools]\n1K = 16777217\n"},
    {"bad-nul", "[limits]\nser\0vers = 1\n"},
    {"access",
     "[access]\nusers = alice, 1001, _svc$\ngroups = video, 2000\nsocket_group = shoal\n"
     "[access.topic \"cam/#*\"]  # comment\npublish = alice, @video\nsubscribe = *\n"
     "[access.service \"say \\\"hi\\\\\"]\ncall = @0\nserve = bob\n"},
    {"access-users-any", "[access]\nusers = *\n[access.topic \"*\"]\nsubscribe = @1\n"},
    {"bad-access-empty", "[access]\n"},
    {"bad-access-rule-key", "[access.service \"a\"]\npublish = 0\n"},
};

static void gen_config(void) {
    for (size_t i = 0; i < sizeof configs / sizeof configs[0]; i++) {
        size_t n = strlen(configs[i].text);
        if (strcmp(configs[i].name, "bad-nul") == 0) n = 22;
        write_seed("fuzz_config", configs[i].name, configs[i].text, n);
    }
    /* 65 pools: one too many */
    char text[2048] = "[pools]\n";
    for (int i = 1; i <= 65; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dK = 1\n", i);
        strcat(text, l);
    }
    write_seed("fuzz_config", "bad-65-pools", text, strlen(text));
}

/* ---- fuzz_daemon_msg: records (see the harness) --------------------------------------- */

enum { A_HELLO, A_CREATE, A_DESTROY, A_RAW, A_CLOSE, A_FDS, A_LOAN, A_SEND, A_TAKE, A_RELEASE,
       A_SCRIBBLE, A_TICK, A_DEFER };
enum { PUB = 1, SUB = 2, CLI = 3, SRV = 4 };
/* topic name selectors: 0 "a", 1 "b", 2 "c/d", 3 "", 4 control char, 5 DEL,
 * 6 the longest, 7 one too long; process names: 0 "p0", 1 "p1", 2 "", ... */

static void op(buf_t *b, unsigned conn, unsigned action) { u8(b, action << 2 | conn); }
static void hello(buf_t *b, unsigned conn, unsigned name) {
    op(b, conn, A_HELLO);
    u8(b, 0);      /* flags: the right ABI */
    u32(b, 1234);  /* pid (the daemon takes SO_PEERCRED's) */
    u8(b, name);
}
static void create(buf_t *b, unsigned conn, unsigned kind, unsigned name, unsigned policy,
                   unsigned cap, unsigned history) {
    op(b, conn, A_CREATE);
    u8(b, kind);
    u8(b, policy);
    u8(b, cap);
    u8(b, history);
    u8(b, 0);
    u8(b, name);
}
static void destroy(buf_t *b, unsigned conn, unsigned which) {
    op(b, conn, A_DESTROY);
    u8(b, which);
    u8(b, 0);
}
static void act2(buf_t *b, unsigned conn, unsigned action, unsigned port, unsigned arg) {
    op(b, conn, action);
    u8(b, port);
    if (action != A_TAKE) u8(b, arg);
}

/* The field byte of a SCRIBBLE that hits word `w` of the sender's own port
 * (field % 10 in 8..9 selects the port, field >> 4 the word). */
static unsigned port_word(unsigned w) {
    unsigned f = w << 4;
    while (f % 10 < 8) f++;
    return f;
}

static void dseed(const char *name, buf_t *b) { write_seed("fuzz_daemon_msg", name, b->b, b->n); }

static void gen_daemon(void) {
    buf_t b;

    /* publish / subscribe, one process */
    memset(&b, 0, sizeof b);
    u8(&b, 0);
    hello(&b, 0, 0);
    create(&b, 0, PUB, 0, 0, 0, 0);
    create(&b, 0, SUB, 0, 0, 0, 0);
    act2(&b, 0, A_LOAN, 0, 0);
    act2(&b, 0, A_SEND, 0, 0);
    act2(&b, 0, A_TAKE, 1, 0);
    act2(&b, 0, A_RELEASE, 1, 0);
    destroy(&b, 0, 1);
    destroy(&b, 0, 0);
    dseed("pubsub", &b);

    /* request / response across two processes, the server leaves first */
    memset(&b, 0, sizeof b);
    u8(&b, 1);
    hello(&b, 0, 0);
    hello(&b, 1, 1);
    create(&b, 0, SRV, 2, 1, 0, 0);
    create(&b, 1, CLI, 2, 1, 0, 0);
    act2(&b, 1, A_LOAN, 0, 0);
    act2(&b, 1, A_SEND, 0, 0);
    act2(&b, 1, A_LOAN, 0, 1);
    act2(&b, 1, A_SEND, 0, 0);
    act2(&b, 0, A_TAKE, 0, 0);
    act2(&b, 0, A_SEND, 0, 0); /* answers the request */
    act2(&b, 1, A_TAKE, 0, 0);
    op(&b, 0, A_CLOSE);        /* the second request is lost: a tombstone */
    act2(&b, 1, A_TAKE, 0, 0);
    act2(&b, 1, A_RELEASE, 0, 0);
    dseed("reqres", &b);

    /* late joiner with history */
    memset(&b, 0, sizeof b);
    u8(&b, 0);
    hello(&b, 2, 0);
    create(&b, 2, PUB, 1, 0, 0, 2);
    for (int i = 0; i < 3; i++) {
        act2(&b, 2, A_LOAN, 0, (unsigned)i);
        act2(&b, 2, A_SEND, 0, 0);
    }
    create(&b, 2, SUB, 1, 0, 1, 2);
    act2(&b, 2, A_TAKE, 1, 0);
    dseed("history", &b);

    /* every limit: processes, ports, services */
    memset(&b, 0, sizeof b);
    u8(&b, 0);
    for (unsigned c = 0; c < 4; c++) hello(&b, c, c & 1);
    for (unsigned n = 0; n < 4; n++) create(&b, 0, PUB, n % 3, 0, 0, 0);
    for (unsigned n = 0; n < 3; n++) create(&b, 1, SRV, n, 2, 0, 0);
    create(&b, 0, SUB, 0, 0, 5, 0);   /* capacity above the limit */
    create(&b, 0, SUB, 0, 0, 0, 5);   /* history above the limit */
    create(&b, 0, SUB, 0, 3, 0, 0);   /* unknown policy */
    create(&b, 0, 0, 0, 0, 0, 0);     /* unknown kind */
    create(&b, 0, SUB, 7, 0, 0, 0);   /* name too long */
    create(&b, 0, SUB, 4, 0, 0, 0);   /* control character */
    dseed("limits", &b);

    /* requests before registering, twice registered, bad ABI, bad names */
    memset(&b, 0, sizeof b);
    u8(&b, 1);
    create(&b, 0, PUB, 0, 0, 0, 0);
    destroy(&b, 0, 0x80);
    hello(&b, 0, 2);
    hello(&b, 0, 5);
    op(&b, 0, A_HELLO);
    u8(&b, 1);
    u32(&b, 99);
    u32(&b, 0);
    u8(&b, 0);
    hello(&b, 0, 0);
    hello(&b, 0, 0);
    destroy(&b, 0, 0xff);
    destroy(&b, 0, 0x85);
    dseed("protocol-errors", &b);

    /* malformed packets: short, bad magic, unknown type, fds, empty, too long */
    memset(&b, 0, sizeof b);
    u8(&b, 0);
    op(&b, 0, A_RAW);
    u16(&b, 8);
    u64(&b, 0x1122334455667788ull);
    op(&b, 1, A_RAW);
    u16(&b, 0x8000 | (unsigned)sizeof(proto_msg_t));
    u32(&b, 0);
    u32(&b, 77); /* unknown type */
    op(&b, 2, A_FDS);
    u8(&b, 3);
    hello(&b, 2, 0);
    op(&b, 3, A_FDS);
    u8(&b, 1);
    op(&b, 3, A_RAW);
    u16(&b, 0);
    op(&b, 0, A_RAW);
    u16(&b, 0x8000 | ((unsigned)sizeof(proto_msg_t) + 64));
    dseed("malformed", &b);

    /* requests queued behind a hang-up */
    memset(&b, 0, sizeof b);
    u8(&b, 1);
    op(&b, 0, A_DEFER);
    hello(&b, 0, 0);
    create(&b, 0, SUB, 0, 0, 0, 0);
    create(&b, 0, PUB, 0, 0, 0, 0);
    hello(&b, 1, 1);
    op(&b, 0, A_CLOSE);
    create(&b, 1, SUB, 0, 0, 0, 0);
    op(&b, 0, A_DEFER);
    dseed("close-midway", &b);

    /* a sender stuck mid-delivery: quarantine, audits, idle recovery */
    memset(&b, 0, sizeof b);
    u8(&b, 0);
    hello(&b, 0, 0);
    hello(&b, 1, 1);
    create(&b, 0, SUB, 0, 0, 0, 0);
    create(&b, 1, PUB, 0, 0, 0, 0);
    act2(&b, 1, A_LOAN, 0, 0);
    act2(&b, 1, A_SEND, 0, 0);
    op(&b, 0, A_SCRIBBLE);
    u8(&b, 0);
    u8(&b, port_word(9)); /* pushers */
    u8(&b, 0);
    u64(&b, 1);
    op(&b, 0, A_CLOSE);
    op(&b, 1, A_TICK);
    create(&b, 1, SUB, 1, 0, 0, 0);
    dseed("quarantine", &b);

    /* a hostile peer: garbage in its held table and queue, then it dies */
    memset(&b, 0, sizeof b);
    u8(&b, 1);
    hello(&b, 0, 0);
    create(&b, 0, SRV, 0, 0, 0, 0);
    const uint64_t junk[] = {0, 1, 3, 0x8000000000000001ull, UINT64_MAX, 1ull << 40};
    for (unsigned i = 0; i < 6; i++) {
        op(&b, 0, A_SCRIBBLE);
        u8(&b, 0);
        /* held entry, queue cell value, spare, history entry */
        u8(&b, port_word(i % 4 == 0 ? 0 : i % 4 == 1 ? 3 : i % 4 == 2 ? 1 : 14));
        u8(&b, i);
        u64(&b, junk[i]);
    }
    op(&b, 0, A_TICK);
    op(&b, 0, A_CLOSE);
    op(&b, 1, A_TICK);
    dseed("hostile", &b);
}

/* ---- fuzz_client_reply: the three modes ------------------------------------------------ */

static void cseed(const char *name, buf_t *b) { write_seed("fuzz_client_reply", name, b->b, b->n); }

/* pick_params' 13 bytes: pools, sizes and counts, limits */
static void params(buf_t *b, unsigned pools) {
    u8(b, pools - 1);
    for (unsigned i = 0; i < pools; i++) {
        u8(b, i * 8);
        u8(b, 3);
    }
    const uint8_t lim[] = {2, 2, 2, 3, 2, 1, 1, 1, 1, 1};
    put(b, lim, sizeof lim);
}

static void gen_client(void) {
    buf_t b;
    proto_msg_t m;

    /* PROTO: a good reply, with and without fds; bad magic; short; blob */
    memset(&m, 0, sizeof m);
    m.magic = PROTO_MAGIC;
    m.type = PROTO_REPLY;
    snprintf(m.text, sizeof m.text, "detail");
    for (unsigned v = 0; v < 4; v++) {
        memset(&b, 0, sizeof b);
        u8(&b, 0);
        u8(&b, v == 1 ? 3 : v == 3 ? 9 : 0); /* fds attached */
        u8(&b, v == 3 ? 2 : 4);              /* max_fds */
        u8(&b, v == 2 ? 0 : 1);              /* flags: magic */
        m.type = v == 1 ? PROTO_WELCOME : PROTO_REPLY;
        put(&b, &m, v == 2 ? 20 : sizeof m);
        char name[32];
        snprintf(name, sizeof name, "proto-%u", v);
        cseed(name, &b);
    }
    memset(&b, 0, sizeof b);
    u8(&b, 0);
    u8(&b, 1);
    u8(&b, 0);
    u8(&b, 4 | 8); /* blob of the layout's size */
    for (int i = 0; i < 64; i++) u8(&b, i);
    cseed("proto-blob", &b);

    /* LAYOUT: valid layouts (empty delta), mapping sizes, a claimed size */
    for (unsigned v = 0; v < 4; v++) {
        memset(&b, 0, sizeof b);
        u8(&b, 1);
        params(&b, 1 + v);
        u8(&b, v);  /* size selector */
        u16(&b, v == 2 ? 0xfff8 : 64);
        if (v == 3) {
            /* a delta that touches the chunk table's offset */
            for (int i = 0; i < 8 + 40; i++) u8(&b, 0);
            u64(&b, 64);
        }
        char name[32];
        snprintf(name, sizeof name, "layout-%u", v);
        cseed(name, &b);
    }

    /* HANDSHAKE: plans of ports against a well-behaved daemon, and refusals */
    const struct {
        const char *name;
        uint8_t plan, kinds, seg_flags;
    } hs[] = {
        {"handshake-pubsub", 2 | 0x40, 0x04, 0},      /* publisher, subscriber, history 1 */
        {"handshake-reqres", 4 | 16 | 32, 0xe4, 0},   /* all four kinds, a waitset, a call */
        {"handshake-waitset", 4 | 16 | 64, 0xe4, 0},  /* the waitset destroyed first */
        {"handshake-short-mgmt", 1, 0, 1},            /* a segment smaller than its layout */
        {"handshake-short-pool", 1, 0, 2},            /* a pool segment one byte short */
        {"handshake-fd-count", 1, 0, 4},              /* wrong number of fds */
        {"handshake-welcome-xor", 1, 0, 8},           /* welcome fields changed */
        {"handshake-blob", 1, 0, 16},                 /* a cut or changed layout */
        {"handshake-scribbles", 4 | 8, 0xe4, 3 << 5}, /* hostile writes to the segment */
    };
    for (size_t i = 0; i < sizeof hs / sizeof hs[0]; i++) {
        memset(&b, 0, sizeof b);
        u8(&b, 2);
        u8(&b, hs[i].plan);
        u8(&b, hs[i].kinds);
        u8(&b, 16); /* loan size */
        params(&b, 2);
        u8(&b, hs[i].seg_flags);
        if (hs[i].seg_flags & 1) u8(&b, 1);
        for (unsigned k = 0; k < (unsigned)(hs[i].seg_flags >> 5); k++) {
            u16(&b, 40 + k * 9);
            u64(&b, 0xffffffffu);
        }
        if (hs[i].seg_flags & 4) u8(&b, 1);
        u8(&b, 0); /* process slot */
        if (hs[i].seg_flags & 8) {
            /* 64 bytes XORed into the welcome: result 3, an error that
             * still carries the segments */
            u32(&b, 0);
            u32(&b, 0);
            u32(&b, 3);
            for (int k = 12; k < 64; k++) u8(&b, 0);
        }
        if (hs[i].seg_flags & 16) {
            u8(&b, 1);
            u8(&b, 0);
        }
        /* replies: valid, an error with text, a wrong slot, a hang-up; the
         * data-flow seeds end here (an exhausted script answers validly) */
        if (strncmp(hs[i].name, "handshake-pubsub", 16) == 0 ||
            strncmp(hs[i].name, "handshake-reqres", 16) == 0 ||
            strncmp(hs[i].name, "handshake-waitset", 17) == 0) {
            cseed(hs[i].name, &b);
            continue;
        }
        u8(&b, 0);
        u8(&b, 1);
        u8(&b, 5);
        u8(&b, 6);
        put(&b, "refused", 6);
        u8(&b, 2);
        u32(&b, 9999);
        u8(&b, 0xff);
        cseed(hs[i].name, &b);
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: gen_seeds DIR\n");
        return 2;
    }
    outdir = argv[1];
    if (mkdir(outdir, 0755) != 0 && errno != EEXIST) {
        perror(outdir);
        return 1;
    }
    gen_config();
    gen_daemon();
    gen_client();
    return 0;
}
