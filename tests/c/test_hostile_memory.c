/* Hostile shared memory: a registered peer writes hostile values into the
 * management segment while victim processes of every port kind exchange
 * real traffic.
 *
 * The promise under test (DESIGN.md "Trust", docs/internals.md "Trust
 * model"): shared memory is input, never truth. A peer that scribbles on the
 * management segment may cost the ports it touched an error (typically
 * SHOAL_ERR_CORRUPT), but
 *  - no victim process dies by a signal, and none hangs: every call returns
 *    within a bound and every victim exits on its own by its deadline;
 *  - the daemon neither dies nor hangs: afterwards a new client registers
 *    and creates ports, and the daemon stops cleanly on SIGTERM.
 *
 * Victims (child processes, one per kind): a publisher, a publisher with
 * history, a subscriber (asking for history), a server, a client (calls with
 * a timeout), a waitset user (subscriber + client behind a waitset with its
 * event fd) and a registrar (registers, creates a port, leaves, again and
 * again). They loop until a deadline read from a shared monotonic clock
 * value, count every result by code (errors are allowed), recreate their
 * ports every few hundred ms (so that the daemon closes ports whose fields
 * were scribbled) and read the introspection calls now and then.
 *
 * The attacker is one more registered process that reaches the mapping
 * through the library internals (core/shm.h, runtime/internal.h), like
 * test_faults.c does. All of its pointer arithmetic uses its own validated
 * copy of the header, and bounds it snapshotted before it started.
 *
 *  - One test per class of shared fields (port slots, queue cells, held
 *    tables, history ring and lock, pool table, free lists, chunk headers,
 *    service table, process table, waitset words, segment header): the
 *    attacker cycles through the fields of the class, writing hostile values
 *    (0, 1, max, max-1, random, the live value +-1, values around each bound
 *    taken from the private header, and per-field specials: tombstones,
 *    references to chunks others hold, live and dead pids, ...) to every
 *    target for a few ms, then restores them or leaves them; at the end every
 *    field of the class is left hostile.
 *  - Regressions from the issue: (a) a port's own `kind` made huge before it
 *    is closed; (b) a history lock word set to a live pid (the publisher's own
 *    lock, then exit; a well-behaved publisher's lock set by another process;
 *    the own pid, then destroy); (c) the pool table scribbled under loans;
 *    (d) every header field scribbled, then a new client registers.
 *  - A random scribbler: random bytes at random offsets of the whole segment,
 *    a few thousand writes per second, under several seeds.
 *
 * Every test then checks: every victim exited 0 by itself (a signal is a
 * crash, no exit by deadline + margin is a hang, and no single call took
 * longer than the bound); the daemon is alive, a new client registers and
 * creates a publisher and a subscriber (and, informationally, exchanges a
 * sample); the daemon exits 0 within 4 s of SIGTERM (its runtime dir is not
 * checked, unlike th_daemon_stop()). Failures name the
 * process, the signal or the call it hangs in, the crash site (victims'
 * frames are symbolized with addr2line), the attacker's last writes before
 * the event, and the seed.
 *
 * Environment:
 *   SHOAL_HOSTILE_SECONDS  attack time of each class test and seed (default 2.5)
 *   SHOAL_HOSTILE_SEED     seed of the class and regression attackers (default 24301)
 *   SHOAL_HOSTILE_SEEDS    random scribbler seeds, comma separated (default 1,2,3)
 *   SHOAL_HOSTILE_RATE     random scribbler writes per second (default 3000)
 *   SHOAL_HOSTILE_GDB=1    attach gdb to the daemon (backtrace of a crash or a
 *                          hang) and to hung processes
 *   SHOAL_HOSTILE_FILTER   run only the tests matching this cmocka pattern
 */
#include "harness.h"

#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <execinfo.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/futex.h>

#include "core/shm.h"
#include "runtime/internal.h"

/* ===========================================================================
 * Configuration and knobs
 * =========================================================================== */

static const char *const HOSTILE_CONFIG =
    "[limits]\n"
    "processes = 32\n"
    "publishers = 32\n"
    "subscribers = 32\n"
    "servers = 32\n"
    "clients = 32\n"
    "services = 32\n"
    "chunks_per_port = 16\n"
    "queue_capacity = 16\n"
    "history = 8\n"
    "waitsets_per_process = 4\n"
    "[pools]\n"
    "64 = 256\n"
    "1K = 64\n"
    "64K = 8\n";

#define TOPIC "hostile-topic"
#define SERVICE "hostile-svc"

enum {
    MAX_VICTIMS = 8,
    RC_SLOTS = 32,          /* result codes counted; the last one is "other" */
    SLOW_LOG = 8,
    JOURNAL_LEN = 65536,
    HEADER_ROWS = 160,
    HANG_MARGIN_MS = 2500,  /* after the deadline, before a victim counts as hung */
    PROBE_TIMEOUT_MS = 3000,
    STOP_TIMEOUT_MS = 4000, /* SIGTERM to exit */
    READY_TIMEOUT_MS = 5000,
};

#if defined(__SANITIZE_ADDRESS__)
#define BACKTRACE_HINT "" /* the sanitizer's report is in the daemon log */
#else
#define BACKTRACE_HINT " (backtrace: SHOAL_HOSTILE_GDB=1, or the sanitizer build)"
#endif

#define CALL_BOUND_NS (2 * TH_SEC) /* no single call may take longer */
#define SLOW_NOTE_NS (200 * TH_MS) /* calls logged for the report */
#define TAIL_NS (300 * TH_MS)      /* victims go on after the attack */

static int env_int(const char *name, int def)
{
    const char *v = getenv(name);
    return v && *v ? atoi(v) : def;
}

static int attack_ms(void)
{
    const char *v = getenv("SHOAL_HOSTILE_SECONDS");
    double s = v && *v ? atof(v) : 2.5;
    if (s < 0.2)
        s = 0.2;
    return (int)(s * 1000);
}

static uint64_t base_seed(void)
{
    const char *v = getenv("SHOAL_HOSTILE_SEED");
    return v && *v ? strtoull(v, NULL, 0) : 24301;
}

static int gdb_wanted(void)
{
    return env_int("SHOAL_HOSTILE_GDB", 0) != 0 && access("/usr/bin/gdb", X_OK) == 0;
}

/* ===========================================================================
 * Small helpers
 * =========================================================================== */

static uint64_t rng_next(uint64_t *s)
{
    /* splitmix64: the seed alone replays a run's choices */
    uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static void sleep_us(long us)
{
    struct timespec ts = { us / 1000000, (us % 1000000) * 1000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

static double secs(int64_t ns)
{
    return (double)ns / 1e9;
}

/* Children inherit cmocka's handlers for SIGSEGV and friends: a crash in a
 * child must be a crash. */
static void child_init(void)
{
    const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        signal(sigs[i], SIG_DFL);
}

static const char *sig_name(int sig)
{
    switch (sig) {
    case SIGSEGV: return "SIGSEGV";
    case SIGBUS: return "SIGBUS";
    case SIGILL: return "SIGILL";
    case SIGFPE: return "SIGFPE";
    case SIGABRT: return "SIGABRT";
    case SIGKILL: return "SIGKILL";
    case SIGTERM: return "SIGTERM";
    case SIGPIPE: return "SIGPIPE";
    default: return "signal";
    }
}

/* Payload stamp: a header and a byte pattern derived from (pid, seq). */
#define STAMP_MAGIC 0x484f5354U
typedef struct stamp {
    uint32_t magic;
    uint32_t pid;
    uint64_t seq;
    uint64_t len;
} stamp_t;

static void stamp_write(void *payload, uint64_t len, uint64_t seq)
{
    if (!payload || len < sizeof(stamp_t))
        return;
    stamp_t s = { STAMP_MAGIC, (uint32_t)getpid(), seq, len };
    memcpy(payload, &s, sizeof s);
    uint8_t *b = payload;
    uint8_t k = (uint8_t)(s.pid * 31u + seq * 7u);
    for (uint64_t i = sizeof s; i < len; i++)
        b[i] = (uint8_t)(k + i);
}

/* Reads all `len` bytes, as a receiver would. */
static int stamp_ok(const void *payload, uint64_t len)
{
    stamp_t s;
    if (!payload || len < sizeof s)
        return 0;
    memcpy(&s, payload, sizeof s);
    const uint8_t *b = payload;
    uint8_t k = (uint8_t)(s.pid * 31u + s.seq * 7u);
    int ok = s.magic == STAMP_MAGIC && s.len == len;
    for (uint64_t i = sizeof s; i < len; i++)
        ok &= b[i] == (uint8_t)(k + i);
    return ok;
}

/* ===========================================================================
 * The shared fields, by class
 * =========================================================================== */

/* Which structure a field lives in (how its targets are found). */
typedef enum elem {
    E_NONE,
    E_SEGMENT,   /* anywhere: target is the offset */
    E_HEADER,
    E_POOL,      /* target: pool index */
    E_CHUNK,     /* target: chunk index */
    E_FREECHUNK, /* a chunk on (or near) a free list */
    E_PROC,      /* target: process slot */
    E_WSWORD,    /* target: waitset word */
    E_SERVICE,   /* target: service index */
    E_RECV,      /* target: service << 16 | receiver index */
    E_PORT,      /* target: port slot */
    E_CELL,      /* target: slot << 16 | cell */
    E_HELD,      /* target: slot << 16 | held index */
    E_HIST,      /* target: slot << 16 | ring index */
} elem_t;

typedef enum fclass {
    FC_NONE,
    FC_PORT,
    FC_CELL,
    FC_HELD,
    FC_HISTORY,
    FC_POOL,
    FC_FREELIST,
    FC_CHUNK,
    FC_SERVICE,
    FC_PROCESS,
    FC_WAITSET,
    FC_HEADER,
} fclass_t;

/* What a field's value is bounded by (values around the bound are tried). */
typedef enum bound {
    B_NONE,
    B_KIND,       /* port kinds 1..4 */
    B_SERVICE,    /* service index */
    B_PROCESS,    /* process slot */
    B_CELLS,      /* queue mask */
    B_QCAP,       /* queue capacity */
    B_POLICY,
    B_HISTORY,    /* history_max */
    B_HELD,       /* chunks_per_port */
    B_SLOT,       /* port slot */
    B_SLOTREF,    /* port slot + 1 */
    B_CHUNKREF,   /* chunk index + 1, tombstones, skips */
    B_CHUNK,      /* chunk index */
    B_WSREF,      /* waitset word + 1 */
    B_POS,        /* queue position */
    B_PID,
    B_POOLIDX,    /* pool index */
    B_POOLCOUNT,  /* chunk count (of the target's pool) */
    B_FIRST,      /* first chunk of a pool */
    B_CHUNKSIZE,
    B_SEGSIZE,
    B_FREEHEAD,
    B_NEXTFREE,
    B_SIZE,       /* a chunk's size */
    B_RECV,       /* receivers_per_service */
    B_MGMT,       /* offsets and sizes within the segment */
    B_FLAGS,
} bound_t;

typedef struct field {
    fclass_t cls;
    elem_t elem;
    const char *name;
    uint32_t off;
    uint8_t width; /* 1, 2, 4 or 8 bytes; 0: a byte string of `len` */
    uint16_t len;
    bound_t bound;
} field_t;

/* Journal-only entries first, in this order. */
enum {
    FX_RANDOM,
    FX_INJECT,
    FX_SQUAT_SERVICES,
    FX_SQUAT_PROCESSES,
    FX_DESTROY_OWN,
    FX_EXIT,
    FX_PROBE,
    FX_COUNT
};

#define FLD(cls, elem, type, member, bound)                                                \
    { cls, elem, #member, (uint32_t)offsetof(type, member),                                \
      (uint8_t)sizeof(((type *)0)->member), 0, bound }
#define STR(cls, elem, type, member)                                                       \
    { cls, elem, #member, (uint32_t)offsetof(type, member), 0,                             \
      (uint16_t)sizeof(((type *)0)->member), B_NONE }
#define ARR(cls, elem, name, bound) { cls, elem, name, 0, 8, 0, bound }
/* the pool table's informational copy of the geometry */
#define GEOM(member, bound)                                                                \
    { FC_POOL, E_POOL, #member, (uint32_t)offsetof(shm_pool_t, geom.member),               \
      (uint8_t)sizeof(((shm_pool_t *)0)->geom.member), 0, bound }

static const field_t FIELDS[] = {
    [FX_RANDOM] = { FC_NONE, E_SEGMENT, "random write", 0, 0, 0, B_NONE },
    [FX_INJECT] = { FC_NONE, E_PORT, "injected queue entry", 0, 0, 0, B_NONE },
    [FX_SQUAT_SERVICES] = { FC_NONE, E_NONE, "every free service slot marked used", 0, 0, 0,
                            B_NONE },
    [FX_SQUAT_PROCESSES] = { FC_NONE, E_NONE, "every free process slot marked active", 0, 0,
                             0, B_NONE },
    [FX_DESTROY_OWN] = { FC_NONE, E_PORT, "attacker destroys its own port", 0, 0, 0, B_NONE },
    [FX_EXIT] = { FC_NONE, E_NONE, "attacker exits without closing its ports", 0, 0, 0,
                  B_NONE },
    [FX_PROBE] = { FC_NONE, E_NONE, "new client probe", 0, 0, 0, B_NONE },

    /* port slots */
    FLD(FC_PORT, E_PORT, shm_port_t, state, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, gen, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, kind, B_KIND),
    FLD(FC_PORT, E_PORT, shm_port_t, service, B_SERVICE),
    FLD(FC_PORT, E_PORT, shm_port_t, process, B_PROCESS),
    FLD(FC_PORT, E_PORT, shm_port_t, pid, B_PID),
    FLD(FC_PORT, E_PORT, shm_port_t, queue_mask, B_CELLS),
    FLD(FC_PORT, E_PORT, shm_port_t, queue_capacity, B_QCAP),
    FLD(FC_PORT, E_PORT, shm_port_t, policy, B_POLICY),
    FLD(FC_PORT, E_PORT, shm_port_t, history, B_HISTORY),
    FLD(FC_PORT, E_PORT, shm_port_t, send_timeout_ns, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, held, B_HELD),
    FLD(FC_PORT, E_PORT, shm_port_t, sent, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, received, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, stale, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, next_sequence, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, rr, B_RECV),
    FLD(FC_PORT, E_PORT, shm_port_t, pushers, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, dropped, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, lost, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, futex_seq, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, waiters, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, waitset, B_WSREF),
    FLD(FC_PORT, E_PORT, shm_port_t, space_waiters, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, space_seq, B_NONE),
    FLD(FC_PORT, E_PORT, shm_port_t, enq_pos, B_POS),
    FLD(FC_PORT, E_PORT, shm_port_t, deq_pos, B_POS),
    FLD(FC_PORT, E_PORT, shm_port_t, spare[0], B_CHUNKREF),
    FLD(FC_PORT, E_PORT, shm_port_t, spare[1], B_CHUNKREF),

    /* queue cells of receive queues */
    FLD(FC_CELL, E_CELL, shm_queue_cell_t, seq, B_POS),
    FLD(FC_CELL, E_CELL, shm_queue_cell_t, value, B_CHUNKREF),

    /* held tables */
    ARR(FC_HELD, E_HELD, "", B_CHUNKREF),

    /* history ring and its lock word (publishers with history) */
    FLD(FC_HISTORY, E_PORT, shm_port_t, history_lock, B_PID),
    FLD(FC_HISTORY, E_PORT, shm_port_t, history_head, B_HISTORY),
    FLD(FC_HISTORY, E_PORT, shm_port_t, history_count, B_HISTORY),
    ARR(FC_HISTORY, E_HIST, "", B_CHUNKREF),

    /* pool table */
    GEOM(chunk_size, B_CHUNKSIZE),
    GEOM(stride, B_CHUNKSIZE),
    GEOM(segment_size, B_SEGSIZE),
    GEOM(chunk_count, B_POOLCOUNT),
    GEOM(first_chunk, B_FIRST),
    FLD(FC_POOL, E_POOL, shm_pool_t, free_head, B_FREEHEAD),
    FLD(FC_POOL, E_POOL, shm_pool_t, in_use, B_POOLCOUNT),
    FLD(FC_POOL, E_POOL, shm_pool_t, high_water, B_POOLCOUNT),
    FLD(FC_POOL, E_POOL, shm_pool_t, alloc_failures, B_NONE),

    /* free lists: links of free chunks, and heads pointing at held chunks */
    FLD(FC_FREELIST, E_FREECHUNK, shm_chunk_t, next_free, B_NEXTFREE),
    FLD(FC_FREELIST, E_POOL, shm_pool_t, free_head, B_FREEHEAD),

    /* chunk headers */
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, refcount, B_NONE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, next_free, B_NEXTFREE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, pool, B_POOLIDX),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, index, B_POOLCOUNT),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, size, B_SIZE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, sequence_id, B_NONE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, origin_slot, B_SLOT),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, origin_gen, B_NONE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, service, B_SERVICE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, flags, B_FLAGS),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, loaned_size_lo, B_SIZE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, loaned_size_hi, B_NONE),
    FLD(FC_CHUNK, E_CHUNK, shm_chunk_t, reserved, B_NONE),

    /* service table */
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, state, B_NONE),
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, gen, B_NONE),
    STR(FC_SERVICE, E_SERVICE, shm_service_t, name),
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, receiver_hi, B_RECV),
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, publishers, B_NONE),
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, subscribers, B_NONE),
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, clients, B_NONE),
    FLD(FC_SERVICE, E_SERVICE, shm_service_t, servers, B_NONE),
    { FC_SERVICE, E_RECV, "", 0, 4, 0, B_SLOTREF },

    /* process table */
    FLD(FC_PROCESS, E_PROC, shm_process_t, state, B_NONE),
    FLD(FC_PROCESS, E_PROC, shm_process_t, gen, B_NONE),
    FLD(FC_PROCESS, E_PROC, shm_process_t, pid, B_PID),
    FLD(FC_PROCESS, E_PROC, shm_process_t, uid, B_NONE),
    STR(FC_PROCESS, E_PROC, shm_process_t, name),

    /* waitset words, and the ports' links to them */
    FLD(FC_WAITSET, E_WSWORD, shm_waitset_word_t, seq, B_NONE),
    FLD(FC_WAITSET, E_WSWORD, shm_waitset_word_t, waiters, B_NONE),
    FLD(FC_WAITSET, E_WSWORD, shm_waitset_word_t, in_use, B_NONE),
    FLD(FC_WAITSET, E_WSWORD, shm_waitset_word_t, pad, B_NONE),
    FLD(FC_WAITSET, E_PORT, shm_port_t, waitset, B_WSREF),

    /* segment header: every field */
    FLD(FC_HEADER, E_HEADER, shm_header_t, magic, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, abi_version, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, header_size, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, mgmt_size, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, pool_count, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, chunk_total, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, process_limit, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, service_limit, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, port_slots, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, chunks_per_port, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, queue_capacity, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, queue_cells, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, history_max, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, waitsets_per_process, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, receivers_per_service, B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_base[0], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_base[1], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_base[2], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_base[3], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_base[4], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_limit[0], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_limit[1], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_limit[2], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_limit[3], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, kind_limit[4], B_NONE),
    FLD(FC_HEADER, E_HEADER, shm_header_t, pools_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, chunks_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, procs_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, waitsets_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, services_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, service_stride, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, ports_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, port_stride, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, port_cells_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, port_held_off, B_MGMT),
    FLD(FC_HEADER, E_HEADER, shm_header_t, port_history_off, B_MGMT),
    STR(FC_HEADER, E_HEADER, shm_header_t, config_source),
    STR(FC_HEADER, E_HEADER, shm_header_t, domain),
    FLD(FC_HEADER, E_HEADER, shm_header_t, daemon_pid, B_PID),
};
enum { NFIELDS = sizeof FIELDS / sizeof FIELDS[0] };

static int class_fields(fclass_t cls, int *out, int max)
{
    int n = 0;
    for (int i = 0; i < NFIELDS && n < max; i++)
        if (FIELDS[i].cls == cls)
            out[n++] = i;
    return n;
}

static int find_field(fclass_t cls, const char *name)
{
    for (int i = 0; i < NFIELDS; i++)
        if (FIELDS[i].cls == cls && strcmp(FIELDS[i].name, name) == 0)
            return i;
    return -1;
}

/* ===========================================================================
 * What the processes share with the test (MAP_SHARED)
 * =========================================================================== */

enum victim_kind {
    VK_PUB,
    VK_PUB_HIST,
    VK_SUB,
    VK_SRV,
    VK_CLI,
    VK_WAITSET,
    VK_REGISTRAR,
    VK_COUNT
};
static const char *const VK_NAMES[VK_COUNT] = { "publisher",  "publisher+history", "subscriber",
                                               "server",     "client",            "waitset",
                                               "registrar" };

enum op {
    OP_IDLE,
    OP_RUNTIME_CREATE,
    OP_RUNTIME_DESTROY,
    OP_PORT_CREATE,
    OP_PORT_DESTROY,
    OP_LOAN,
    OP_SET_SIZE,
    OP_PUBLISH,
    OP_TAKE,
    OP_RELEASE,
    OP_CALL,
    OP_SEND,
    OP_LOAN_RESPONSE,
    OP_WAITSET_SETUP,
    OP_WAITSET_WAIT,
    OP_INTROSPECT,
    OP_COUNT
};
static const char *const OP_NAMES[OP_COUNT] = {
    "nothing (between calls)", "shoal_runtime_create", "shoal_runtime_destroy", "port create",
    "port destroy", "loan", "shoal_chunk_set_size", "publish", "take", "shoal_chunk_release",
    "shoal_client_call", "send", "shoal_server_loan_response", "waitset create/attach",
    "shoal_waitset_wait", "introspection (pool/port/process/domain info)"
};

typedef struct slow_call {
    int op;
    int64_t start, ns;
} slow_call_t;

/* One process's figures: written by it, read by the test. */
typedef struct vstat {
    int kind; /* enum victim_kind, or -1 */
    _Atomic int pid;
    _Atomic int ready;
    _Atomic int setup_rc; /* a failure before the attack: the process could not start */
    _Atomic uint64_t calls;
    _Atomic uint64_t by_rc[RC_SLOTS];
    _Atomic uint64_t bad_payload; /* taken with a broken stamp (tolerated: peers may write) */
    _Atomic uint64_t churns;
    _Atomic uint32_t slots[2]; /* global slots of its live ports, UINT32_MAX if none */
    _Atomic uint32_t proc_slot;
    _Atomic int op; /* the call it is in */
    _Atomic int64_t op_since;
    _Atomic uint32_t nslow;
    slow_call_t slow[SLOW_LOG];
    int64_t longest_ns;
    int longest_op;
    /* written by its crash handler */
    _Atomic int crash_sig;
    int crash_frames;
    void *crash_pc[24];
    char first_error[200];
} vstat_t;

typedef struct jentry {
    int64_t t;
    uint16_t field;
    uint16_t flags; /* J_RESTORE | width << 8 | (owning victim + 1) << 12 */
    uint32_t target;
    uint64_t value;
} jentry_t;
enum { J_RESTORE = 1, J_OWNER_SHIFT = 12 };

/* The outcome of a new-client probe. */
enum {
    PS_OK,
    PS_REGISTER,
    PS_PUBLISHER,
    PS_SUBSCRIBER,
    PS_LOAN,
    PS_PUBLISH,
    PS_TAKE,
    PS_PAYLOAD,
    PS_COUNT
};
static const char *const PROBE_STEPS[PS_COUNT] = {
    "ok", "shoal_runtime_create", "shoal_publisher_create", "shoal_subscriber_create",
    "shoal_publisher_loan", "shoal_publisher_publish", "shoal_subscriber_take", "payload check"
};

typedef struct probe_res {
    vstat_t st;
    _Atomic int step; /* first failed step, PS_OK, -1 while running */
    _Atomic int rc;
    int code;         /* exit code (128+sig crashed, -1 hung) */
    char msg[240];
} probe_res_t;

typedef struct header_row {
    int field;
    uint64_t value;
    int wrote_through; /* the new client changed the pool table: it used the hostile layout */
    probe_res_t probe;
} header_row_t;

typedef struct arena {
    int64_t t0; /* attack start */
    _Atomic int64_t deadline;
    _Atomic int attack_started, attack_done;
    _Atomic int64_t attack_done_at;
    int nvictims;
    int daemon_pid;
    vstat_t v[MAX_VICTIMS];
    vstat_t attacker;
    char attacker_phase[128];
    _Atomic uint64_t writes, restores, steps;
    _Atomic uint32_t jhead;
    jentry_t journal[JOURNAL_LEN];
    shm_header_t hdr; /* the attacker's validated copy, for the report */
    _Atomic int hdr_valid;
    /* probes the attacker asks for, run by the test */
    _Atomic uint32_t probe_req, probe_done;
    probe_res_t probe;
    /* scenario figures */
    _Atomic int64_t measure_ns[4];
    char measure_what[4][96];
    int nrows;
    header_row_t rows[HEADER_ROWS];
} arena_t;

/* ===========================================================================
 * Crash capture in child processes
 * =========================================================================== */

static vstat_t *crash_stat;

static void crash_handler(int sig)
{
    if (crash_stat) {
        crash_stat->crash_frames = backtrace(crash_stat->crash_pc, 24);
        atomic_store(&crash_stat->crash_sig, sig);
    }
    signal(sig, SIG_DFL);
    raise(sig); /* dies by the signal once this handler returns */
}

/* Records the frames of a crash in `st`, then dies by the signal as before. */
static void install_crash_handler(vstat_t *st)
{
    static char altstack[64 * 1024];
    crash_stat = st;
    void *warm[2];
    backtrace(warm, 2); /* loads libgcc now, not in the handler */
    stack_t ss = { .ss_sp = altstack, .ss_size = sizeof altstack, .ss_flags = 0 };
    sigaltstack(&ss, NULL);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = crash_handler;
    sa.sa_flags = SA_ONSTACK | SA_RESETHAND;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
    for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
        sigaction(sigs[i], &sa, NULL);
}

/* A child's stderr goes to <base_dir>/<what>-<pid>.err, so that a sanitizer
 * report lands in the failure that names the process. */
static void redirect_stderr(const th_daemon_t *d, const char *what)
{
    char path[400];
    snprintf(path, sizeof path, "%s/%s-%d.err", d->base_dir, what, (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd >= 0) {
        dup2(fd, 2);
        close(fd);
    }
}

/* The interesting lines of that file: sanitizer reports, failed checks. */
static void stderr_excerpt(const th_daemon_t *d, const char *what, int pid, char *out,
                           size_t len)
{
    out[0] = 0;
    char path[400], line[300];
    snprintf(path, sizeof path, "%s/%s-%d.err", d->base_dir, what, pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    size_t used = 0;
    int lines = 0, frames = 0;
    while (fgets(line, sizeof line, f) && lines < 14) {
        line[strcspn(line, "\n")] = 0;
        const char *t = line + strspn(line, " ");
        int frame = t[0] == '#' && t[1] >= '0' && t[1] <= '9';
        if (frame && ++frames > 6)
            continue;
        if (!frame && !strstr(line, "ERROR") && !strstr(line, "runtime error") &&
            !strstr(line, "SUMMARY") && !strstr(line, "check failed"))
            continue;
        int w = snprintf(out + used, len - used, "\n        %.220s", t);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        lines++;
    }
    fclose(f);
}

/* ===========================================================================
 * Victims
 * =========================================================================== */

typedef struct victim_ctx {
    arena_t *a;
    const th_daemon_t *d;
    int index;
    uint64_t seed;
} victim_ctx_t;

typedef struct victim {
    arena_t *a;
    vstat_t *v;
    const th_daemon_t *d;
    uint64_t rng;
    int64_t t0; /* start of the current call */
    shoal_runtime_t *rt;
    shoal_publisher_t *pub;
    shoal_subscriber_t *sub;
    shoal_client_t *cl;
    shoal_server_t *srv;
    shoal_waitset_t *ws;
    shoal_chunk_t *hold[2];
    uint64_t seq;
    uint64_t steps;
    int64_t next_churn, next_reopen;
} victim_t;

static void op_begin(victim_t *w, int op)
{
    w->t0 = th_now_ns();
    atomic_store(&w->v->op_since, w->t0);
    atomic_store(&w->v->op, op);
}

static shoal_result_t op_end(victim_t *w, int op, shoal_result_t rc)
{
    vstat_t *v = w->v;
    int64_t ns = th_now_ns() - w->t0;
    atomic_store(&v->op, OP_IDLE);
    atomic_fetch_add_explicit(&v->calls, 1, memory_order_relaxed);
    unsigned k = (unsigned)rc < RC_SLOTS - 1 ? (unsigned)rc : RC_SLOTS - 1;
    atomic_fetch_add_explicit(&v->by_rc[k], 1, memory_order_relaxed);
    if (ns > v->longest_ns) {
        v->longest_ns = ns;
        v->longest_op = op;
    }
    if (ns > SLOW_NOTE_NS) {
        uint32_t i = atomic_fetch_add(&v->nslow, 1);
        if (i < SLOW_LOG)
            v->slow[i] = (slow_call_t){ .op = op, .start = w->t0, .ns = ns };
    }
    if (rc != SHOAL_OK && rc != SHOAL_ERR_TIMEOUT && !v->first_error[0])
        snprintf(v->first_error, sizeof v->first_error, "%s: %s: %s", OP_NAMES[op],
                 shoal_strerror(rc), shoal_last_error_message());
    return rc;
}

/* A timed, counted call: `call` runs after the clock is read. */
#define VCALL(w, op, call) (op_begin((w), (op)), op_end((w), (op), (call)))
#define VCALL_VOID(w, op, stmt)                                                    \
    do {                                                                           \
        op_begin((w), (op));                                                       \
        stmt;                                                                      \
        op_end((w), (op), SHOAL_OK);                                               \
    } while (0)

static void publish_slots(victim_t *w)
{
    uint32_t s0 = UINT32_MAX, s1 = UINT32_MAX;
    if (w->pub)
        s0 = w->pub->b.slot;
    else if (w->sub)
        s0 = w->sub->b.slot;
    else if (w->srv)
        s0 = w->srv->b.slot;
    else if (w->cl && w->v->kind == VK_CLI)
        s0 = w->cl->b.slot;
    if (w->v->kind == VK_WAITSET && w->cl)
        s1 = w->cl->b.slot;
    atomic_store(&w->v->slots[0], s0);
    atomic_store(&w->v->slots[1], s1);
}

/* Creates the ports the victim lacks; returns the result of the first that
 * failed (SHOAL_OK when it has them all). */
static shoal_result_t victim_open(victim_t *w)
{
    shoal_result_t first = SHOAL_OK, rc;
    int kind = w->v->kind;
    if ((kind == VK_PUB || kind == VK_PUB_HIST) && !w->pub) {
        shoal_publisher_options_t o;
        shoal_publisher_options_init(&o, SHOAL_PUBLISHER_OPTIONS_VERSION);
        if (kind == VK_PUB_HIST) {
            o.history = 4;
            o.full_policy = SHOAL_FULL_WAIT;
            o.send_timeout_ns = 20 * TH_MS;
        }
        rc = VCALL(w, OP_PORT_CREATE, shoal_publisher_create(&w->pub, w->rt, TOPIC, &o));
        if (rc != SHOAL_OK)
            w->pub = NULL, first = rc;
    }
    if ((kind == VK_SUB || kind == VK_WAITSET) && !w->sub) {
        shoal_subscriber_options_t o;
        shoal_subscriber_options_init(&o, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
        o.queue_capacity = 8;
        o.history = kind == VK_SUB ? 4 : 0; /* the daemon delivers history */
        rc = VCALL(w, OP_PORT_CREATE, shoal_subscriber_create(&w->sub, w->rt, TOPIC, &o));
        if (rc != SHOAL_OK)
            w->sub = NULL, first = first ? first : rc;
        else if (w->ws)
            (void)VCALL(w, OP_WAITSET_SETUP, shoal_waitset_attach_subscriber(w->ws, w->sub, 1));
    }
    if ((kind == VK_CLI || kind == VK_WAITSET) && !w->cl) {
        shoal_client_options_t o;
        shoal_client_options_init(&o, SHOAL_CLIENT_OPTIONS_VERSION);
        o.queue_capacity = 8;
        rc = VCALL(w, OP_PORT_CREATE, shoal_client_create(&w->cl, w->rt, SERVICE, &o));
        if (rc != SHOAL_OK)
            w->cl = NULL, first = first ? first : rc;
        else if (w->ws)
            (void)VCALL(w, OP_WAITSET_SETUP, shoal_waitset_attach_client(w->ws, w->cl, 2));
    }
    if (kind == VK_SRV && !w->srv) {
        shoal_server_options_t o;
        shoal_server_options_init(&o, SHOAL_SERVER_OPTIONS_VERSION);
        o.queue_capacity = 8;
        rc = VCALL(w, OP_PORT_CREATE, shoal_server_create(&w->srv, w->rt, SERVICE, &o));
        if (rc != SHOAL_OK)
            w->srv = NULL, first = first ? first : rc;
    }
    publish_slots(w);
    return first;
}

static void victim_close(victim_t *w)
{
    for (int k = 0; k < 2; k++)
        if (w->hold[k]) {
            (void)VCALL(w, OP_RELEASE, shoal_chunk_release(w->hold[k]));
            w->hold[k] = NULL;
        }
    atomic_store(&w->v->slots[0], UINT32_MAX);
    atomic_store(&w->v->slots[1], UINT32_MAX);
    if (w->pub)
        VCALL_VOID(w, OP_PORT_DESTROY, shoal_publisher_destroy(w->pub));
    if (w->sub)
        VCALL_VOID(w, OP_PORT_DESTROY, shoal_subscriber_destroy(w->sub));
    if (w->cl)
        VCALL_VOID(w, OP_PORT_DESTROY, shoal_client_destroy(w->cl));
    if (w->srv)
        VCALL_VOID(w, OP_PORT_DESTROY, shoal_server_destroy(w->srv));
    w->pub = NULL;
    w->sub = NULL;
    w->cl = NULL;
    w->srv = NULL;
}

static int victim_has_ports(const victim_t *w)
{
    switch (w->v->kind) {
    case VK_PUB:
    case VK_PUB_HIST: return w->pub != NULL;
    case VK_SUB: return w->sub != NULL;
    case VK_SRV: return w->srv != NULL;
    case VK_CLI: return w->cl != NULL;
    case VK_WAITSET: return w->sub && w->cl;
    default: return 1;
    }
}

static uint64_t pick_size(victim_t *w)
{
    uint64_t x = rng_next(&w->rng) % 100;
    if (x < 70)
        return 24 + rng_next(&w->rng) % 41; /* 64 B pool */
    if (x < 97)
        return 100 + rng_next(&w->rng) % 900; /* 1 KiB pool */
    return 2000 + rng_next(&w->rng) % 30000;  /* 64 KiB pool: scarce */
}

/* A taken chunk: every byte is read, as a receiver would. */
static void consume(victim_t *w, shoal_chunk_t *c)
{
    if (!stamp_ok(shoal_chunk_payload(c), shoal_chunk_size(c)))
        atomic_fetch_add_explicit(&w->v->bad_payload, 1, memory_order_relaxed);
    (void)shoal_chunk_sequence_id(c);
}

/* Keeps the chunk for a while (one hold slot in two), or releases it. */
static void keep_or_release(victim_t *w, shoal_chunk_t *c)
{
    int k = (int)(rng_next(&w->rng) % 4);
    if (k < 2) {
        if (w->hold[k])
            (void)VCALL(w, OP_RELEASE, shoal_chunk_release(w->hold[k]));
        w->hold[k] = c;
        return;
    }
    (void)VCALL(w, OP_RELEASE, shoal_chunk_release(c));
}

static void step_publisher(victim_t *w)
{
    if (!w->pub)
        return;
    shoal_chunk_t *c = NULL;
    uint64_t size = pick_size(w);
    if (VCALL(w, OP_LOAN, shoal_publisher_loan(w->pub, size, &c)) != SHOAL_OK)
        return;
    stamp_write(shoal_chunk_payload(c), shoal_chunk_size(c), ++w->seq);
    if (rng_next(&w->rng) % 8 == 0) {
        (void)VCALL(w, OP_SET_SIZE, shoal_chunk_set_size(c, size / 2));
        (void)VCALL(w, OP_RELEASE, shoal_chunk_release(c));
        return;
    }
    (void)VCALL(w, OP_PUBLISH, shoal_publisher_publish(w->pub, c));
}

static void step_subscriber(victim_t *w)
{
    if (!w->sub)
        return;
    shoal_chunk_t *c = NULL;
    if (VCALL(w, OP_TAKE, shoal_subscriber_take(w->sub, &c, 10 * TH_MS)) != SHOAL_OK)
        return;
    consume(w, c);
    keep_or_release(w, c);
}

static void step_server(victim_t *w)
{
    if (!w->srv)
        return;
    shoal_chunk_t *req = NULL, *resp = NULL;
    if (VCALL(w, OP_TAKE, shoal_server_take(w->srv, &req, 10 * TH_MS)) != SHOAL_OK)
        return;
    consume(w, req);
    uint64_t size = pick_size(w);
    if (VCALL(w, OP_LOAN_RESPONSE, shoal_server_loan_response(w->srv, req, size, &resp)) ==
        SHOAL_OK) {
        stamp_write(shoal_chunk_payload(resp), shoal_chunk_size(resp), ++w->seq);
        (void)VCALL(w, OP_SEND, shoal_server_send(w->srv, resp));
    }
    (void)VCALL(w, OP_RELEASE, shoal_chunk_release(req));
}

static void step_client(victim_t *w)
{
    if (!w->cl)
        return;
    shoal_chunk_t *req = NULL, *resp = NULL;
    uint64_t size = pick_size(w);
    if (VCALL(w, OP_LOAN, shoal_client_loan(w->cl, size, &req)) != SHOAL_OK)
        return;
    stamp_write(shoal_chunk_payload(req), shoal_chunk_size(req), ++w->seq);
    if (rng_next(&w->rng) % 4) {
        if (VCALL(w, OP_CALL, shoal_client_call(w->cl, req, &resp, 30 * TH_MS)) == SHOAL_OK) {
            consume(w, resp);
            (void)VCALL(w, OP_RELEASE, shoal_chunk_release(resp));
        }
        return;
    }
    (void)VCALL(w, OP_SEND, shoal_client_send(w->cl, req, NULL));
    if (VCALL(w, OP_TAKE, shoal_client_take(w->cl, &resp, 5 * TH_MS)) == SHOAL_OK) {
        consume(w, resp);
        (void)VCALL(w, OP_RELEASE, shoal_chunk_release(resp));
    }
}

static void step_waitset(victim_t *w)
{
    uint64_t tags[4];
    size_t n = 0;
    if (w->ws && VCALL(w, OP_WAITSET_WAIT, shoal_waitset_wait(w->ws, tags, 4, &n, 10 * TH_MS)) ==
                     SHOAL_OK) {
        for (size_t i = 0; i < n && i < 4; i++) {
            shoal_chunk_t *c = NULL;
            shoal_result_t rc = SHOAL_ERR_NOT_FOUND;
            if (tags[i] == 1 && w->sub)
                rc = VCALL(w, OP_TAKE, shoal_subscriber_take(w->sub, &c, SHOAL_TIMEOUT_POLL));
            else if (tags[i] == 2 && w->cl)
                rc = VCALL(w, OP_TAKE, shoal_client_take(w->cl, &c, SHOAL_TIMEOUT_POLL));
            if (rc == SHOAL_OK) {
                consume(w, c);
                (void)VCALL(w, OP_RELEASE, shoal_chunk_release(c));
            }
        }
    }
    if (w->cl && rng_next(&w->rng) % 4 == 0) {
        shoal_chunk_t *req = NULL;
        if (VCALL(w, OP_LOAN, shoal_client_loan(w->cl, 48, &req)) == SHOAL_OK) {
            stamp_write(shoal_chunk_payload(req), shoal_chunk_size(req), ++w->seq);
            (void)VCALL(w, OP_SEND, shoal_client_send(w->cl, req, NULL));
        }
    }
}

/* Registers, creates one port, leaves: a new client, again and again. */
static void step_registrar(victim_t *w)
{
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = w->d->domain;
    o.runtime_dir = w->d->runtime_dir;
    o.connect_timeout_ns = 500 * TH_MS;
    shoal_runtime_t *rt = NULL;
    if (VCALL(w, OP_RUNTIME_CREATE, shoal_runtime_create(&rt, "hostile-registrar", &o)) ==
        SHOAL_OK) {
        atomic_store(&w->v->proc_slot, rt->proc_slot);
        if (w->steps % 2) {
            shoal_subscriber_options_t so;
            shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
            so.history = 2;
            shoal_subscriber_t *sub = NULL;
            if (VCALL(w, OP_PORT_CREATE, shoal_subscriber_create(&sub, rt, TOPIC, &so)) ==
                SHOAL_OK) {
                shoal_chunk_t *c = NULL;
                if (VCALL(w, OP_TAKE, shoal_subscriber_take(sub, &c, 2 * TH_MS)) == SHOAL_OK) {
                    consume(w, c);
                    (void)VCALL(w, OP_RELEASE, shoal_chunk_release(c));
                }
                VCALL_VOID(w, OP_PORT_DESTROY, shoal_subscriber_destroy(sub));
            }
        } else {
            shoal_client_t *cl = NULL;
            if (VCALL(w, OP_PORT_CREATE, shoal_client_create(&cl, rt, SERVICE, NULL)) ==
                SHOAL_OK) {
                shoal_chunk_t *req = NULL, *resp = NULL;
                if (VCALL(w, OP_LOAN, shoal_client_loan(cl, 40, &req)) == SHOAL_OK) {
                    stamp_write(shoal_chunk_payload(req), shoal_chunk_size(req), ++w->seq);
                    if (VCALL(w, OP_CALL, shoal_client_call(cl, req, &resp, 20 * TH_MS)) ==
                        SHOAL_OK) {
                        consume(w, resp);
                        (void)VCALL(w, OP_RELEASE, shoal_chunk_release(resp));
                    }
                }
                VCALL_VOID(w, OP_PORT_DESTROY, shoal_client_destroy(cl));
            }
        }
        VCALL_VOID(w, OP_RUNTIME_DESTROY, shoal_runtime_destroy(rt));
    }
    w->steps++;
    sleep_us(15000);
}

/* What `shoal status` does: reads every table through the public calls. */
static shoal_result_t introspect(shoal_runtime_t *rt)
{
    uint32_t n = shoal_runtime_pool_count(rt);
    for (uint32_t i = 0; i < n; i++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        (void)shoal_runtime_pool_info(rt, i, &pi);
    }
    uint32_t slots = shoal_runtime_port_slots(rt);
    for (uint32_t s = 0; s < slots; s++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        (void)shoal_runtime_port_info(rt, s, &pi);
    }
    shoal_domain_info_t di = SHOAL_DOMAIN_INFO_INIT;
    shoal_result_t rc = shoal_runtime_domain_info(rt, &di);
    if (rc != SHOAL_OK)
        return rc;
    for (uint32_t p = 0; p < di.processes && p < 4096; p++) {
        shoal_process_info_t pi = SHOAL_PROCESS_INFO_INIT;
        (void)shoal_runtime_process_info(rt, p, &pi);
    }
    return SHOAL_OK;
}

static int victim_main(void *arg)
{
    child_init();
    victim_ctx_t *c = arg;
    victim_t w;
    memset(&w, 0, sizeof w);
    w.a = c->a;
    w.v = &c->a->v[c->index];
    w.d = c->d;
    w.rng = c->seed;
    vstat_t *v = w.v;
    redirect_stderr(c->d, "victim");
    install_crash_handler(v);
    atomic_store(&v->pid, (int)getpid());
    atomic_store(&v->slots[0], UINT32_MAX);
    atomic_store(&v->slots[1], UINT32_MAX);
    atomic_store(&v->proc_slot, UINT32_MAX);
    if (v->kind != VK_REGISTRAR) {
        shoal_result_t rc =
            VCALL(&w, OP_RUNTIME_CREATE, th_runtime_create(c->d, VK_NAMES[v->kind], &w.rt));
        if (rc != SHOAL_OK) {
            atomic_store(&v->setup_rc, (int)rc);
            return 2;
        }
        atomic_store(&v->proc_slot, w.rt->proc_slot);
        if (v->kind == VK_WAITSET) {
            int fd = -1;
            if (VCALL(&w, OP_WAITSET_SETUP, shoal_waitset_create(&w.ws, w.rt)) == SHOAL_OK)
                (void)VCALL(&w, OP_WAITSET_SETUP, shoal_waitset_fd(w.ws, &fd)); /* its thread */
        }
        rc = victim_open(&w);
        if (rc != SHOAL_OK) {
            atomic_store(&v->setup_rc, (int)rc);
            return 2;
        }
    }
    atomic_store(&v->ready, 1);
    w.next_churn = th_now_ns() + (int64_t)(100 + rng_next(&w.rng) % 200) * TH_MS;
    while (th_now_ns() < atomic_load(&w.a->deadline)) {
        switch (v->kind) {
        case VK_PUB:
        case VK_PUB_HIST: step_publisher(&w); break;
        case VK_SUB: step_subscriber(&w); break;
        case VK_SRV: step_server(&w); break;
        case VK_CLI: step_client(&w); break;
        case VK_WAITSET: step_waitset(&w); break;
        default: step_registrar(&w); continue;
        }
        int64_t now = th_now_ns();
        if (++w.steps % 64 == 0)
            (void)VCALL(&w, OP_INTROSPECT, introspect(w.rt));
        if (now >= w.next_churn) {
            /* the daemon closes ports whose fields were scribbled */
            victim_close(&w);
            (void)victim_open(&w);
            atomic_fetch_add(&v->churns, 1);
            w.next_churn = now + (int64_t)(100 + rng_next(&w.rng) % 200) * TH_MS;
        } else if (!victim_has_ports(&w) && now >= w.next_reopen) {
            (void)victim_open(&w);
            w.next_reopen = now + 5 * TH_MS;
        }
        sleep_us(100 + (long)(rng_next(&w.rng) % 300));
    }
    victim_close(&w);
    if (w.rt)
        VCALL_VOID(&w, OP_RUNTIME_DESTROY, shoal_runtime_destroy(w.rt));
    return 0;
}

/* ===========================================================================
 * New-client probe: registers, creates ports, exchanges a sample
 * =========================================================================== */

typedef struct probe_ctx {
    const th_daemon_t *d;
    probe_res_t *r;
} probe_ctx_t;

static int probe_fail(probe_res_t *r, int step, shoal_result_t rc)
{
    if (atomic_load(&r->step) <= 0 || atomic_load(&r->step) > step) {
        snprintf(r->msg, sizeof r->msg, "%s", shoal_last_error_message());
        atomic_store(&r->rc, (int)rc);
        atomic_store(&r->step, step);
    }
    return step;
}

static int probe_main(void *arg)
{
    child_init();
    probe_ctx_t *c = arg;
    probe_res_t *r = c->r;
    redirect_stderr(c->d, "probe");
    install_crash_handler(&r->st);
    atomic_store(&r->st.pid, (int)getpid());
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = c->d->domain;
    o.runtime_dir = c->d->runtime_dir;
    o.connect_timeout_ns = TH_SEC;
    shoal_runtime_t *rt = NULL;
    atomic_store(&r->st.op, OP_RUNTIME_CREATE);
    shoal_result_t rc = shoal_runtime_create(&rt, "hostile-probe", &o);
    if (rc != SHOAL_OK)
        return 10 + probe_fail(r, PS_REGISTER, rc);
    shoal_publisher_t *pub = NULL;
    shoal_subscriber_t *sub = NULL;
    atomic_store(&r->st.op, OP_PORT_CREATE);
    if ((rc = shoal_publisher_create(&pub, rt, "hostile-probe-topic", NULL)) != SHOAL_OK)
        probe_fail(r, PS_PUBLISHER, rc);
    else if ((rc = shoal_subscriber_create(&sub, rt, "hostile-probe-topic", NULL)) != SHOAL_OK)
        probe_fail(r, PS_SUBSCRIBER, rc);
    if (pub && sub) {
        /* the exchange is reported, not required: pools may be damaged */
        shoal_chunk_t *ch = NULL;
        atomic_store(&r->st.op, OP_LOAN);
        if ((rc = shoal_publisher_loan(pub, 100, &ch)) != SHOAL_OK) {
            probe_fail(r, PS_LOAN, rc);
        } else {
            stamp_write(shoal_chunk_payload(ch), shoal_chunk_size(ch), 1);
            atomic_store(&r->st.op, OP_PUBLISH);
            if ((rc = shoal_publisher_publish(pub, ch)) != SHOAL_OK) {
                probe_fail(r, PS_PUBLISH, rc);
            } else {
                atomic_store(&r->st.op, OP_TAKE);
                if ((rc = shoal_subscriber_take(sub, &ch, 500 * TH_MS)) != SHOAL_OK) {
                    probe_fail(r, PS_TAKE, rc);
                } else {
                    if (!stamp_ok(shoal_chunk_payload(ch), shoal_chunk_size(ch)))
                        probe_fail(r, PS_PAYLOAD, SHOAL_ERR_CORRUPT);
                    shoal_chunk_release(ch);
                }
            }
        }
    }
    atomic_store(&r->st.op, OP_PORT_DESTROY);
    shoal_subscriber_destroy(sub);
    shoal_publisher_destroy(pub);
    atomic_store(&r->st.op, OP_RUNTIME_DESTROY);
    shoal_runtime_destroy(rt);
    atomic_store(&r->st.op, OP_IDLE);
    if (atomic_load(&r->step) < 0)
        atomic_store(&r->step, PS_OK);
    int step = atomic_load(&r->step);
    return step >= PS_REGISTER && step <= PS_SUBSCRIBER ? 10 + step : 0;
}

/* Runs a probe in a fresh process; fills r (code: exit, 128+sig, -1 hung). */
static void run_probe(const th_daemon_t *d, probe_res_t *r)
{
    memset(r, 0, sizeof *r);
    r->st.kind = -1;
    atomic_store(&r->step, -1);
    probe_ctx_t ctx = { d, r };
    pid_t pid = th_spawn(probe_main, &ctx);
    r->code = pid > 0 ? th_join(pid, PROBE_TIMEOUT_MS) : -2;
}

/* Did the new client register and create its ports? */
static int probe_passed(const probe_res_t *r)
{
    int step = atomic_load(&r->step);
    return r->code == 0 && (step == PS_OK || step > PS_SUBSCRIBER);
}

static void probe_describe(const probe_res_t *r, char *out, size_t len)
{
    int step = atomic_load(&r->step);
    if (r->code == -1)
        snprintf(out, len, "hung in %s for %d ms (the daemon does not answer)",
                 OP_NAMES[atomic_load(&r->st.op)], PROBE_TIMEOUT_MS);
    else if (r->code > 128)
        snprintf(out, len, "killed by %s in %s", sig_name(r->code - 128),
                 OP_NAMES[atomic_load(&r->st.op)]);
    else if (step == PS_OK)
        snprintf(out, len, "registered, created ports, exchanged a sample");
    else if (step > 0)
        snprintf(out, len, "%s%s returned %s: %s", step > PS_SUBSCRIBER ? "ports created; " : "",
                 PROBE_STEPS[step], shoal_strerror((shoal_result_t)atomic_load(&r->rc)), r->msg);
    else
        snprintf(out, len, "exited with %d in %s%s", r->code, OP_NAMES[atomic_load(&r->st.op)],
                 r->code == 1 ? " (a sanitizer report or an abort)" : "");
}

/* ===========================================================================
 * The attacker
 * =========================================================================== */

typedef struct pool_snap {
    uint64_t chunk_size, stride, segment_size;
    uint32_t chunk_count, first_chunk;
} pool_snap_t;

typedef struct attack_ctx attack_ctx_t;
typedef struct scenario scenario_t;
typedef struct report report_t;

struct attack_ctx {
    arena_t *a;
    const th_daemon_t *d;
    const scenario_t *sc;
    shoal_runtime_t *rt;
    shm_map_t *m;
    const shm_header_t *h; /* the attacker's validated private copy */
    pool_snap_t pool[SHM_MAX_POOLS];
    shm_header_t shared_hdr_at_start; /* what the shared header held before the attack */
    uint64_t rng;
    int64_t until;
    void (*while_probing)(attack_ctx_t *x); /* kept up while a probe runs */
    uint32_t held_hint;  /* a chunk some victim holds, or UINT32_MAX */
    uint32_t free_hint;  /* a chunk on a free list, or UINT32_MAX */
    uint32_t svc[2];     /* the victims' topic and service, UINT32_MAX unknown */
    int dead_pid;
    int exit_without_destroy;
};

struct scenario {
    const char *name;
    void (*attack)(attack_ctx_t *x);
    fclass_t cls;         /* for attack_class */
    int attack_ms;
    uint64_t seed;
    int64_t call_bound_ns; /* 0: CALL_BOUND_NS */
    /* scenario-specific checks, after the processes ended, before the probe */
    void (*check)(arena_t *a, const th_daemon_t *d, report_t *r);
};

static void set_phase(arena_t *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_phase(arena_t *a, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->attacker_phase, sizeof a->attacker_phase, fmt, ap);
    va_end(ap);
}

static uint64_t width_max(int w)
{
    return w >= 8 ? UINT64_MAX : (1ULL << (8 * w)) - 1;
}

static uint64_t peek(const void *p, int width)
{
    switch (width) {
    case 1: return __atomic_load_n((const uint8_t *)p, __ATOMIC_RELAXED);
    case 2: return __atomic_load_n((const uint16_t *)p, __ATOMIC_RELAXED);
    case 4: return __atomic_load_n((const uint32_t *)p, __ATOMIC_RELAXED);
    default: return __atomic_load_n((const uint64_t *)p, __ATOMIC_RELAXED);
    }
}

static void store(void *p, int width, uint64_t v)
{
    switch (width) {
    case 1: __atomic_store_n((uint8_t *)p, (uint8_t)v, __ATOMIC_SEQ_CST); break;
    case 2: __atomic_store_n((uint16_t *)p, (uint16_t)v, __ATOMIC_SEQ_CST); break;
    case 4: __atomic_store_n((uint32_t *)p, (uint32_t)v, __ATOMIC_SEQ_CST); break;
    default: __atomic_store_n((uint64_t *)p, v, __ATOMIC_SEQ_CST); break;
    }
}

/* Which victim owns a port slot now (-1: none). */
static int slot_owner(const arena_t *a, uint32_t slot)
{
    for (int i = 0; i < a->nvictims; i++)
        for (int k = 0; k < 2; k++)
            if (atomic_load(&a->v[i].slots[k]) == slot)
                return i;
    return -1;
}

static void journal(arena_t *a, int field, uint32_t target, uint64_t value, int flags)
{
    elem_t e = FIELDS[field].elem;
    if (e == E_PORT || e == E_CELL || e == E_HELD || e == E_HIST) {
        int owner = slot_owner(a, e == E_PORT ? target : target >> 16);
        if (owner >= 0 && owner < 15)
            flags |= (owner + 1) << J_OWNER_SHIFT;
    }
    uint32_t i = atomic_fetch_add(&a->jhead, 1) % JOURNAL_LEN;
    a->journal[i] = (jentry_t){ .t = th_now_ns(),
                                .field = (uint16_t)field,
                                .flags = (uint16_t)flags,
                                .target = target,
                                .value = value };
}

static void poke(attack_ctx_t *x, void *p, int width, uint64_t v, int field, uint32_t target)
{
    store(p, width, v);
    journal(x->a, field, target, v, width << 8);
    atomic_fetch_add_explicit(&x->a->writes, 1, memory_order_relaxed);
}

/* ---- locating things, with the attacker's own bounds ----------------------- */

static int pool_of_chunk(const attack_ctx_t *x, uint32_t chunk)
{
    for (uint32_t i = 0; i < x->h->pool_count; i++)
        if (chunk - x->pool[i].first_chunk < x->pool[i].chunk_count)
            return (int)i;
    return -1;
}

static int receiver_slot(int kind)
{
    return kind != VK_PUB && kind != VK_PUB_HIST;
}

enum { ONLY_ALL, ONLY_RECEIVERS, ONLY_HISTORY };

/* Live victim port slots (owner victim in *owner). */
static int victim_ports(const attack_ctx_t *x, int only, uint32_t *slots, int *owner, int max)
{
    int n = 0;
    for (int i = 0; i < x->a->nvictims && n < max; i++) {
        const vstat_t *v = &x->a->v[i];
        for (int k = 0; k < 2 && n < max; k++) {
            uint32_t s = atomic_load(&v->slots[k]);
            if (s >= x->h->port_slots)
                continue;
            if (only == ONLY_RECEIVERS && !receiver_slot(v->kind))
                continue;
            if (only == ONLY_HISTORY && v->kind != VK_PUB_HIST)
                continue;
            if (owner)
                owner[n] = i;
            slots[n++] = s;
        }
    }
    return n;
}

static uint32_t victim_slot_of_kind(const attack_ctx_t *x, int kind)
{
    for (int i = 0; i < x->a->nvictims; i++)
        if (x->a->v[i].kind == kind) {
            uint32_t s = atomic_load(&x->a->v[i].slots[0]);
            if (s < x->h->port_slots)
                return s;
        }
    return 0;
}

static int victim_pid_of_slot(const attack_ctx_t *x, uint32_t slot)
{
    for (int i = 0; i < x->a->nvictims; i++)
        for (int k = 0; k < 2; k++)
            if (atomic_load(&x->a->v[i].slots[k]) == slot)
                return atomic_load(&x->a->v[i].pid);
    return 0;
}

/* Chunks referenced from the victims' held tables. */
static int victim_held_chunks(attack_ctx_t *x, uint32_t *out, int max)
{
    uint32_t slots[16];
    int ns = victim_ports(x, ONLY_ALL, slots, NULL, 16), n = 0;
    for (int i = 0; i < ns && n < max; i++) {
        _Atomic uint64_t *held = shm_port_held(x->m, shm_port(x->m, slots[i]));
        for (uint32_t k = 0; k < x->h->chunks_per_port && n < max; k++) {
            uint64_t v = atomic_load(&held[k]);
            if (v && !(v & SHM_REF_TOMBSTONE) && v - 1 < x->h->chunk_total)
                out[n++] = (uint32_t)(v - 1);
        }
    }
    if (n)
        x->held_hint = out[rng_next(&x->rng) % (uint64_t)n];
    return n;
}

/* A few chunks from the head of each free list (links checked against the
 * snapshot). */
static int free_chunks(attack_ctx_t *x, uint32_t *out, int max)
{
    int n = 0;
    for (uint32_t pi = 0; pi < x->h->pool_count && n < max; pi++) {
        const pool_snap_t *s = &x->pool[pi];
        uint32_t top = (uint32_t)atomic_load(&shm_pool(x->m, pi)->free_head);
        for (int k = 0; k < 3 && n < max && top && top <= s->chunk_count; k++) {
            uint32_t ci = s->first_chunk + top - 1;
            out[n++] = ci;
            top = atomic_load(&shm_chunk(x->m, ci)->next_free);
        }
    }
    if (n)
        x->free_hint = out[rng_next(&x->rng) % (uint64_t)n];
    return n;
}

/* ---- hostile values --------------------------------------------------------- */

enum { MAXVALS = 48 };

static int hostile_values(attack_ctx_t *x, const field_t *f, uint32_t target, uint64_t cur,
                          uint64_t *v)
{
    const shm_header_t *h = x->h;
    const uint64_t mx = width_max(f->width);
    uint64_t edge[6], sp[12];
    int ne = 0, ns = 0;
    int pi = f->elem == E_POOL ? (int)target
             : f->elem == E_CHUNK || f->elem == E_FREECHUNK ? pool_of_chunk(x, target)
                                                            : -1;
    const pool_snap_t *ps = pi >= 0 && pi < (int)h->pool_count ? &x->pool[pi] : &x->pool[0];
    uint32_t local = f->elem == E_CHUNK || f->elem == E_FREECHUNK ? target - ps->first_chunk : 0;
    switch (f->bound) {
    case B_NONE: break;
    case B_KIND:
        edge[ne++] = 5;
        for (uint32_t k = 1; k <= 4; k++)
            sp[ns++] = k; /* another valid kind */
        break;
    case B_SERVICE: edge[ne++] = h->service_limit; break;
    case B_PROCESS: edge[ne++] = h->process_limit; break;
    case B_CELLS:
        edge[ne++] = h->queue_cells;
        sp[ns++] = 0x7fffffff;
        break;
    case B_QCAP:
        edge[ne++] = h->queue_capacity;
        edge[ne++] = h->queue_cells;
        break;
    case B_POLICY:
        edge[ne++] = 3;
        sp[ns++] = SHOAL_FULL_WAIT;
        sp[ns++] = SHOAL_FULL_REJECT;
        break;
    case B_HISTORY: edge[ne++] = h->history_max; break;
    case B_HELD: edge[ne++] = h->chunks_per_port; break;
    case B_SLOT:
        edge[ne++] = h->port_slots;
        sp[ns++] = victim_slot_of_kind(x, VK_PUB);
        sp[ns++] = victim_slot_of_kind(x, VK_CLI);
        sp[ns++] = victim_slot_of_kind(x, VK_SRV);
        break;
    case B_SLOTREF:
        edge[ne++] = h->port_slots + 1ULL;
        sp[ns++] = victim_slot_of_kind(x, VK_PUB) + 1ULL; /* a port of the wrong kind */
        sp[ns++] = victim_slot_of_kind(x, VK_CLI) + 1ULL;
        sp[ns++] = victim_slot_of_kind(x, VK_SUB) + 1ULL;
        sp[ns++] = h->port_slots; /* the last slot, probably free */
        break;
    case B_CHUNKREF:
        edge[ne++] = h->chunk_total + 1ULL;
        sp[ns++] = SHM_REF_TOMBSTONE | 1;
        sp[ns++] = SHM_REF_TOMBSTONE;
        sp[ns++] = SHM_REF_SKIP;
        sp[ns++] = (1ULL << 32) | 1; /* high bits over a valid reference */
        if (x->held_hint != UINT32_MAX)
            sp[ns++] = x->held_hint + 1ULL; /* a chunk another process holds */
        if (x->free_hint != UINT32_MAX)
            sp[ns++] = x->free_hint + 1ULL; /* a free chunk */
        break;
    case B_CHUNK: edge[ne++] = h->chunk_total; break;
    case B_WSREF: edge[ne++] = (uint64_t)h->process_limit * h->waitsets_per_process + 1; break;
    case B_POS:
        sp[ns++] = cur + h->queue_cells;
        sp[ns++] = cur - h->queue_cells;
        sp[ns++] = cur + 1000;
        sp[ns++] = cur ^ (1ULL << 63);
        break;
    case B_PID: {
        int owner = f->elem == E_PORT ? victim_pid_of_slot(x, target) : 0;
        sp[ns++] = 1; /* init: alive, and not ours */
        if (owner)
            sp[ns++] = (uint64_t)owner; /* the port's own owner */
        sp[ns++] = (uint64_t)x->a->daemon_pid;
        sp[ns++] = (uint64_t)x->dead_pid;
        sp[ns++] = (uint64_t)getpid();
        sp[ns++] = 0x7fffffff;
        break;
    }
    case B_POOLIDX: edge[ne++] = h->pool_count; break;
    case B_POOLCOUNT:
        edge[ne++] = ps->chunk_count;
        edge[ne++] = h->chunk_total;
        break;
    case B_FIRST:
        edge[ne++] = h->chunk_total;
        edge[ne++] = (uint64_t)ps->first_chunk + ps->chunk_count;
        sp[ns++] = x->pool[(pi + 1) % (int)h->pool_count].first_chunk;
        sp[ns++] = 0x7fffffff;
        break;
    case B_CHUNKSIZE:
        edge[ne++] = ps->chunk_size;
        edge[ne++] = ps->stride;
        edge[ne++] = ps->segment_size;
        sp[ns++] = 1ULL << 40;
        sp[ns++] = x->pool[h->pool_count - 1].chunk_size;
        break;
    case B_SEGSIZE:
        edge[ne++] = ps->segment_size;
        sp[ns++] = 1ULL << 40;
        break;
    case B_FREEHEAD: {
        uint64_t tag = ((cur >> 32) + 1) << 32;
        sp[ns++] = tag | (ps->chunk_count + 1ULL);
        sp[ns++] = tag; /* an empty list */
        sp[ns++] = tag | ps->chunk_count;
        sp[ns++] = tag | 0xffffffffULL;
        sp[ns++] = cur & 0xffffffffULL; /* the same head under tag 0 */
        if (x->held_hint != UINT32_MAX && pool_of_chunk(x, x->held_hint) == pi)
            sp[ns++] = tag | (x->held_hint - ps->first_chunk + 1ULL); /* a held chunk */
        break;
    }
    case B_NEXTFREE:
        edge[ne++] = ps->chunk_count + 1ULL;
        sp[ns++] = local + 1ULL; /* a cycle onto itself */
        sp[ns++] = ps->chunk_count;
        if (x->held_hint != UINT32_MAX && pool_of_chunk(x, x->held_hint) == pi)
            sp[ns++] = x->held_hint - ps->first_chunk + 1ULL;
        break;
    case B_SIZE:
        edge[ne++] = ps->chunk_size;
        sp[ns++] = ps->stride;
        sp[ns++] = ps->segment_size;
        sp[ns++] = 1ULL << 40;
        break;
    case B_RECV: edge[ne++] = h->receivers_per_service; break;
    case B_MGMT: edge[ne++] = h->mgmt_size; break;
    case B_FLAGS:
        sp[ns++] = CHUNK_FLAG_REQUEST;
        sp[ns++] = CHUNK_FLAG_RESPONSE;
        sp[ns++] = CHUNK_FLAG_SAMPLE;
        sp[ns++] = 7;
        break;
    }
    int n = 0;
    v[n++] = 0;
    v[n++] = 1;
    v[n++] = mx;
    v[n++] = mx - 1;
    v[n++] = rng_next(&x->rng) & mx;
    v[n++] = (cur + 1) & mx;
    v[n++] = (cur - 1) & mx;
    for (int i = 0; i < ne; i++) {
        v[n++] = (edge[i] - 1) & mx;
        v[n++] = edge[i] & mx;
        v[n++] = (edge[i] + 1) & mx;
    }
    for (int i = 0; i < ns && n < MAXVALS; i++)
        v[n++] = sp[i] & mx;
    return n;
}

/* ---- targets ------------------------------------------------------------------- */

typedef struct tgt {
    uint8_t *base; /* the element; the field is at base + off */
    uint32_t id;
} tgt_t;

enum { MAXTGT = 40 };

static int add_tgt(tgt_t *t, int n, void *base, uint32_t id)
{
    if (base && n < MAXTGT) {
        t[n].base = base;
        t[n].id = id;
        n++;
    }
    return n;
}

static int targets(attack_ctx_t *x, const field_t *f, tgt_t *t)
{
    const shm_header_t *h = x->h;
    shm_map_t *m = x->m;
    uint32_t slots[16], chunks[32];
    int n = 0, ns;
    switch (f->elem) {
    case E_PORT:
        ns = victim_ports(x, f->cls == FC_HISTORY ? ONLY_HISTORY : ONLY_ALL, slots, NULL, 16);
        for (int i = 0; i < ns; i++)
            n = add_tgt(t, n, shm_port(m, slots[i]), slots[i]);
        if (f->cls == FC_PORT) { /* and some other slot, probably free */
            uint32_t s = (uint32_t)(rng_next(&x->rng) % h->port_slots);
            n = add_tgt(t, n, shm_port(m, s), s);
        }
        break;
    case E_CELL:
        ns = victim_ports(x, ONLY_RECEIVERS, slots, NULL, 16);
        for (int i = 0; i < ns; i++) {
            shm_port_t *p = shm_port(m, slots[i]);
            shm_queue_cell_t *cells = shm_port_cells(m, p);
            uint32_t head = (uint32_t)(atomic_load(&p->deq_pos) & (h->queue_cells - 1));
            uint32_t any = (uint32_t)(rng_next(&x->rng) % h->queue_cells);
            n = add_tgt(t, n, &cells[head], slots[i] << 16 | head);
            n = add_tgt(t, n, &cells[any], slots[i] << 16 | any);
        }
        victim_held_chunks(x, chunks, 32);
        free_chunks(x, chunks, 32);
        break;
    case E_HELD:
        victim_held_chunks(x, chunks, 32);
        free_chunks(x, chunks, 32);
        ns = victim_ports(x, ONLY_ALL, slots, NULL, 16);
        for (int i = 0; i < ns; i++) {
            _Atomic uint64_t *held = shm_port_held(m, shm_port(m, slots[i]));
            uint32_t k = (uint32_t)(rng_next(&x->rng) % h->chunks_per_port);
            n = add_tgt(t, n, (void *)&held[k], slots[i] << 16 | k);
            for (uint32_t j = 0; j < h->chunks_per_port; j++)
                if (atomic_load(&held[j]) && j != k) { /* one the victim uses */
                    n = add_tgt(t, n, (void *)&held[j], slots[i] << 16 | j);
                    break;
                }
        }
        break;
    case E_HIST:
        victim_held_chunks(x, chunks, 32);
        free_chunks(x, chunks, 32);
        ns = victim_ports(x, ONLY_HISTORY, slots, NULL, 16);
        for (int i = 0; i < ns && h->history_max; i++) {
            _Atomic uint64_t *ring = shm_port_history(m, shm_port(m, slots[i]));
            for (int k = 0; k < 2; k++) {
                uint32_t j = (uint32_t)(rng_next(&x->rng) % h->history_max);
                n = add_tgt(t, n, (void *)&ring[j], slots[i] << 16 | j);
            }
        }
        break;
    case E_POOL:
        victim_held_chunks(x, chunks, 32);
        for (uint32_t i = 0; i < h->pool_count; i++)
            n = add_tgt(t, n, shm_pool(m, i), i);
        break;
    case E_FREECHUNK:
        victim_held_chunks(x, chunks, 32);
        ns = free_chunks(x, chunks, 32);
        for (int i = 0; i < ns; i++)
            n = add_tgt(t, n, shm_chunk(m, chunks[i]), chunks[i]);
        for (int k = 0; k < 2; k++) {
            uint32_t c = (uint32_t)(rng_next(&x->rng) % h->chunk_total);
            n = add_tgt(t, n, shm_chunk(m, c), c);
        }
        break;
    case E_CHUNK:
        free_chunks(x, chunks, 32);
        ns = victim_held_chunks(x, chunks, 32);
        for (int i = 0; i < ns && i < 12; i++)
            n = add_tgt(t, n, shm_chunk(m, chunks[i]), chunks[i]);
        for (int k = 0; k < 3; k++) {
            uint32_t c = (uint32_t)(rng_next(&x->rng) % h->chunk_total);
            n = add_tgt(t, n, shm_chunk(m, c), c);
        }
        break;
    case E_SERVICE:
        for (int k = 0; k < 2; k++)
            if (x->svc[k] != UINT32_MAX)
                n = add_tgt(t, n, shm_service(m, x->svc[k]), x->svc[k]);
        {
            uint32_t s = (uint32_t)(rng_next(&x->rng) % h->service_limit);
            n = add_tgt(t, n, shm_service(m, s), s);
        }
        break;
    case E_RECV:
        for (int k = 0; k < 2; k++) {
            shm_service_t *s = x->svc[k] != UINT32_MAX ? shm_service(m, x->svc[k]) : NULL;
            if (!s || !h->receivers_per_service)
                continue;
            _Atomic uint32_t *rv = shm_service_receivers(m, s);
            uint32_t near = (uint32_t)(rng_next(&x->rng) % 4) % h->receivers_per_service;
            uint32_t any = (uint32_t)(rng_next(&x->rng) % h->receivers_per_service);
            n = add_tgt(t, n, (void *)&rv[near], x->svc[k] << 16 | near);
            n = add_tgt(t, n, (void *)&rv[any], x->svc[k] << 16 | any);
        }
        break;
    case E_PROC:
        for (int i = 0; i < x->a->nvictims; i++) {
            uint32_t p = atomic_load(&x->a->v[i].proc_slot);
            if (p < h->process_limit)
                n = add_tgt(t, n, shm_process(m, p), p);
        }
        {
            uint32_t p = (uint32_t)(rng_next(&x->rng) % h->process_limit);
            n = add_tgt(t, n, shm_process(m, p), p);
        }
        break;
    case E_WSWORD:
        for (int i = 0; i < x->a->nvictims; i++) {
            uint32_t p = atomic_load(&x->a->v[i].proc_slot);
            if (x->a->v[i].kind != VK_WAITSET || p >= h->process_limit)
                continue;
            for (uint32_t k = 0; k < h->waitsets_per_process; k++) {
                uint32_t wi = p * h->waitsets_per_process + k;
                n = add_tgt(t, n, shm_waitset_word(m, wi), wi);
            }
        }
        {
            uint32_t wi = (uint32_t)(rng_next(&x->rng) %
                                     ((uint64_t)h->process_limit * h->waitsets_per_process));
            n = add_tgt(t, n, shm_waitset_word(m, wi), wi);
        }
        break;
    case E_HEADER: n = add_tgt(t, n, x->m->shared_hdr, 0); break;
    default: break;
    }
    return n;
}

/* ---- one hostile write, and its undo ----------------------------------------- */

typedef struct saved {
    uint64_t value;
    uint8_t bytes[256];
} saved_t;

static void hit(attack_ctx_t *x, int fi, const tgt_t *t, saved_t *save)
{
    const field_t *f = &FIELDS[fi];
    uint8_t *p = t->base + f->off;
    if (f->width == 0) { /* a name: no NUL, all ones, empty, or a prefix of a real one */
        uint16_t len = f->len < sizeof save->bytes ? f->len : (uint16_t)sizeof save->bytes;
        memcpy(save->bytes, p, len);
        uint64_t mode = rng_next(&x->rng) % 4;
        if (mode == 0)
            memset(p, 'A', len);
        else if (mode == 1)
            memset(p, 0xff, len);
        else if (mode == 2)
            memset(p, 0, len);
        else {
            memset(p, 'x', len);
            memcpy(p, TOPIC, sizeof TOPIC - 1);
        }
        journal(x->a, fi, t->id, mode, 0);
        atomic_fetch_add_explicit(&x->a->writes, 1, memory_order_relaxed);
        return;
    }
    uint64_t cur = peek(p, f->width), vals[MAXVALS];
    int nv = hostile_values(x, f, t->id, cur, vals);
    save->value = cur;
    poke(x, p, f->width, vals[rng_next(&x->rng) % (uint64_t)nv], fi, t->id);
}

static void undo(attack_ctx_t *x, int fi, const tgt_t *t, const saved_t *save)
{
    const field_t *f = &FIELDS[fi];
    uint8_t *p = t->base + f->off;
    if (f->width == 0)
        memcpy(p, save->bytes, f->len < sizeof save->bytes ? f->len : sizeof save->bytes);
    else
        store(p, f->width, save->value);
    journal(x->a, fi, t->id, f->width ? save->value : 0, J_RESTORE | f->width << 8);
    atomic_fetch_add_explicit(&x->a->restores, 1, memory_order_relaxed);
}

/* What a hostile producer does: appends `value` to a receive queue. */
static void inject(attack_ctx_t *x, uint32_t slot, uint64_t value)
{
    shm_port_t *p = shm_port(x->m, slot);
    if (!p)
        return;
    shm_queue_cell_t *cells = shm_port_cells(x->m, p);
    uint32_t mask = p->queue_mask & (x->h->queue_cells - 1);
    uint64_t pos = atomic_load(&p->enq_pos);
    shm_queue_cell_t *c = &cells[pos & mask];
    if (atomic_load(&c->seq) != pos || !atomic_compare_exchange_strong(&p->enq_pos, &pos, pos + 1))
        return;
    atomic_store(&c->value, value);
    atomic_store(&c->seq, pos + 1);
    atomic_fetch_add(&p->futex_seq, 1);
    syscall(SYS_futex, (uint32_t *)&p->futex_seq, FUTEX_WAKE, 1 << 30, NULL, NULL, 0);
    journal(x->a, FX_INJECT, slot, value, 8 << 8);
    atomic_fetch_add_explicit(&x->a->writes, 1, memory_order_relaxed);
}

static void inject_round(attack_ctx_t *x)
{
    uint32_t slots[16];
    int ns = victim_ports(x, ONLY_RECEIVERS, slots, NULL, 16);
    const field_t *ref = &FIELDS[find_field(FC_CELL, "value")];
    uint64_t vals[MAXVALS];
    for (int i = 0; i < ns; i++) {
        int nv = hostile_values(x, ref, slots[i], 0, vals);
        inject(x, slots[i], vals[rng_next(&x->rng) % (uint64_t)nv]);
    }
}

/* Every free service slot taken by a name nobody uses (and kept so while
 * a probe runs: slots the victims free are taken again). */
static void squat_services(attack_ctx_t *x)
{
    for (uint32_t i = 0; i < x->h->service_limit; i++) {
        shm_service_t *s = shm_service(x->m, i);
        if (atomic_load(&s->state))
            continue;
        snprintf(s->name, sizeof s->name, "squatted-%u", i);
        atomic_store(&s->state, 1);
    }
}

/* Every free process slot marked active (pid 1), kept so the same way: the
 * registrar victim frees its slot every few ms. */
static void squat_processes(attack_ctx_t *x)
{
    for (uint32_t i = 0; i < x->h->process_limit; i++) {
        shm_process_t *p = shm_process(x->m, i);
        if (atomic_load(&p->state) != PROC_FREE)
            continue;
        p->pid = 1;
        atomic_store(&p->state, PROC_ACTIVE);
    }
}

/* ---- the class attack ------------------------------------------------------- */

static void probe_row(attack_ctx_t *x, int field, uint64_t value);

/* Cycles through the class's fields: each step writes a hostile value to
 * every target of one field, waits a few ms, and restores them (or not).
 * At the end every field of the class is left hostile. */
static void attack_class(attack_ctx_t *x)
{
    fclass_t cls = x->sc->cls;
    int fi[64];
    int nf = class_fields(cls, fi, 64);
    static tgt_t t[MAXTGT];
    static saved_t save[MAXTGT];
    set_phase(x->a, "writing the %d fields of the class", nf);
    while (th_now_ns() < x->until) {
        for (int k = 0; k < nf && th_now_ns() < x->until; k++) {
            int nt = targets(x, &FIELDS[fi[k]], t);
            for (int j = 0; j < nt; j++)
                hit(x, fi[k], &t[j], &save[j]);
            if (cls == FC_CELL)
                inject_round(x);
            atomic_fetch_add(&x->a->steps, 1);
            sleep_us(300 + (long)(rng_next(&x->rng) % 2500));
            if (rng_next(&x->rng) % 2)
                for (int j = 0; j < nt; j++)
                    undo(x, fi[k], &t[j], &save[j]);
        }
    }
    set_phase(x->a, "leaving every field of the class hostile");
    for (int k = 0; k < nf; k++) {
        int nt = targets(x, &FIELDS[fi[k]], t);
        for (int j = 0; j < nt; j++)
            hit(x, fi[k], &t[j], &save[j]);
    }
    if (cls == FC_SERVICE) {
        squat_services(x);
        journal(x->a, FX_SQUAT_SERVICES, 0, 1, 0);
        x->while_probing = squat_services;
    }
    if (cls == FC_PROCESS) {
        squat_processes(x);
        journal(x->a, FX_SQUAT_PROCESSES, 0, 1, 0);
        x->while_probing = squat_processes;
    }
    /* a new client, while the class is hostile and the victims still run */
    set_phase(x->a, "every field of the class hostile: a new client registers");
    probe_row(x, FX_PROBE, 0);
}

/* ---- the random scribbler ---------------------------------------------------- */

static void attack_random(attack_ctx_t *x)
{
    const shm_header_t *h = x->h;
    const struct {
        uint64_t off, len;
    } region[] = {
        { 0, sizeof *h },
        { h->pools_off, (uint64_t)h->pool_count * sizeof(shm_pool_t) },
        { h->chunks_off, (uint64_t)h->chunk_total * sizeof(shm_chunk_t) },
        { h->procs_off, (uint64_t)h->process_limit * sizeof(shm_process_t) },
        { h->waitsets_off, (uint64_t)h->process_limit * h->waitsets_per_process *
                               sizeof(shm_waitset_word_t) },
        { h->services_off, (uint64_t)h->service_limit * h->service_stride },
        { h->ports_off, (uint64_t)h->port_slots * h->port_stride },
    };
    const int nregion = sizeof region / sizeof region[0];
    uint64_t rate = (uint64_t)env_int("SHOAL_HOSTILE_RATE", 3000);
    int64_t start = th_now_ns();
    uint64_t done = 0;
    set_phase(x->a, "random writes, %llu per second", (unsigned long long)rate);
    while (th_now_ns() < x->until) {
        uint64_t due = (uint64_t)(th_now_ns() - start) * rate / (uint64_t)TH_SEC;
        for (; done < due; done++) {
            /* half uniform over the segment, half spread over its tables */
            uint64_t off;
            if (rng_next(&x->rng) % 2) {
                off = rng_next(&x->rng) % h->mgmt_size;
            } else {
                int r = (int)(rng_next(&x->rng) % (uint64_t)nregion);
                if (!region[r].len)
                    continue;
                off = region[r].off + rng_next(&x->rng) % region[r].len;
            }
            int width = 1 << (rng_next(&x->rng) % 4);
            off &= ~(uint64_t)(width - 1);
            if (off + (uint64_t)width > h->mgmt_size)
                continue;
            uint8_t *p = x->m->mgmt + off;
            uint64_t cur = peek(p, width), mx = width_max(width);
            const uint64_t choice[] = { 0,
                                        1,
                                        mx,
                                        mx - 1,
                                        rng_next(&x->rng),
                                        rng_next(&x->rng) % 16,
                                        cur + 1,
                                        cur - 1,
                                        h->chunk_total + 1ULL,
                                        h->port_slots,
                                        SHM_REF_TOMBSTONE | 3,
                                        1 };
            uint64_t v = choice[rng_next(&x->rng) % (sizeof choice / sizeof choice[0])] & mx;
            store(p, width, v);
            journal(x->a, FX_RANDOM, (uint32_t)off, v, width << 8);
            atomic_fetch_add_explicit(&x->a->writes, 1, memory_order_relaxed);
        }
        sleep_us(500);
    }
}

/* ---- regressions ---------------------------------------------------------------- */

static const char *const KIND_NAMES[] = { "?", "publisher", "subscriber", "client", "server" };

static port_base_t *own_port(attack_ctx_t *x, int kind, const char *name, void **handle)
{
    shoal_result_t rc = SHOAL_ERR_INVALID_ARGUMENT;
    *handle = NULL;
    switch (kind) {
    case SHOAL_PORT_PUBLISHER:
        rc = shoal_publisher_create((shoal_publisher_t **)handle, x->rt, name, NULL);
        break;
    case SHOAL_PORT_SUBSCRIBER:
        rc = shoal_subscriber_create((shoal_subscriber_t **)handle, x->rt, name, NULL);
        break;
    case SHOAL_PORT_CLIENT:
        rc = shoal_client_create((shoal_client_t **)handle, x->rt, name, NULL);
        break;
    default: rc = shoal_server_create((shoal_server_t **)handle, x->rt, name, NULL); break;
    }
    /* every handle struct starts with its port_base_t */
    return rc == SHOAL_OK ? (port_base_t *)*handle : NULL;
}

static void own_destroy(int kind, void *handle)
{
    switch (kind) {
    case SHOAL_PORT_PUBLISHER: shoal_publisher_destroy(handle); break;
    case SHOAL_PORT_SUBSCRIBER: shoal_subscriber_destroy(handle); break;
    case SHOAL_PORT_CLIENT: shoal_client_destroy(handle); break;
    default: shoal_server_destroy(handle); break;
    }
}

static void measure_max(arena_t *a, int i, int64_t ns, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void measure_max(arena_t *a, int i, int64_t ns, const char *fmt, ...)
{
    if (ns <= atomic_load(&a->measure_ns[i]))
        return;
    atomic_store(&a->measure_ns[i], ns);
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(a->measure_what[i], sizeof a->measure_what[i], fmt, ap);
    va_end(ap);
}

/* (a) A process sets its own port's `kind` to a hostile value and closes the
 * port (the daemon indexed free_slots[kind]); then the same for ports the
 * daemon closes because their process went away. */
static void attack_kind_on_close(attack_ctx_t *x)
{
    const uint32_t hostile[] = { UINT32_MAX, 5, 0x80000000u, 0, 6, 1000000 };
    const size_t nh = sizeof hostile / sizeof hostile[0];
    const int kind_field = find_field(FC_PORT, "kind");
    for (size_t i = 0; i <= nh; i++) { /* the last round: another valid kind */
        for (int kind = SHOAL_PORT_PUBLISHER; kind <= SHOAL_PORT_SERVER; kind++) {
            void *h = NULL;
            const char *name = kind <= SHOAL_PORT_SUBSCRIBER ? TOPIC : SERVICE;
            port_base_t *b = own_port(x, kind, name, &h);
            if (!b)
                continue;
            uint32_t k = i < nh ? hostile[i] : (uint32_t)(kind % 4 + 1);
            set_phase(x->a, "destroying its own %s port (slot %u) with kind %#x",
                      KIND_NAMES[kind], b->slot, k);
            poke(x, &b->p->kind, 4, k, kind_field, b->slot);
            journal(x->a, FX_DESTROY_OWN, b->slot, (uint64_t)kind, 0);
            int64_t t = th_now_ns();
            own_destroy(kind, h);
            measure_max(x->a, 0, th_now_ns() - t, "destroying its own %s port with kind %#x",
                        KIND_NAMES[kind], k);
            sleep_us(20000);
        }
    }
    /* closed by the daemon when the process goes away */
    for (int kind = SHOAL_PORT_PUBLISHER; kind <= SHOAL_PORT_SERVER; kind++) {
        void *h = NULL;
        port_base_t *b = own_port(x, kind, kind <= SHOAL_PORT_SUBSCRIBER ? TOPIC : SERVICE, &h);
        if (b)
            poke(x, &b->p->kind, 4, UINT32_MAX, kind_field, b->slot);
    }
    journal(x->a, FX_EXIT, 0, 0, 0);
    set_phase(x->a, "exiting with 4 ports whose kind is 0xffffffff");
    x->exit_without_destroy = 1;
}

static port_base_t *history_publisher(attack_ctx_t *x, shoal_publisher_t **pub)
{
    shoal_publisher_options_t o;
    shoal_publisher_options_init(&o, SHOAL_PUBLISHER_OPTIONS_VERSION);
    o.history = 4;
    if (shoal_publisher_create(pub, x->rt, TOPIC, &o) != SHOAL_OK)
        return NULL;
    for (int i = 0; i < 3; i++) {
        shoal_chunk_t *c = NULL;
        if (shoal_publisher_loan(*pub, 64, &c) == SHOAL_OK) {
            stamp_write(shoal_chunk_payload(c), shoal_chunk_size(c), (uint64_t)i + 1);
            (void)shoal_publisher_publish(*pub, c);
        }
    }
    return &(*pub)->b;
}

/* (b) A publisher with history sets its own history lock to 1 (a live pid
 * that is not its own) and exits: the daemon closing the port must not spin
 * on the lock. */
static void attack_history_lock_exit(attack_ctx_t *x)
{
    shoal_publisher_t *pub = NULL;
    port_base_t *b = history_publisher(x, &pub);
    if (!b) {
        set_phase(x->a, "could not create its publisher with history");
        return;
    }
    poke(x, &b->p->history_lock, 4, 1, find_field(FC_HISTORY, "history_lock"), b->slot);
    journal(x->a, FX_EXIT, b->slot, 0, 0);
    set_phase(x->a, "exiting with its history lock held by pid 1");
    x->exit_without_destroy = 1;
}

/* (b) A well-behaved publisher with history whose lock word another process
 * sets to a live pid (1, its own, the daemon's): its next publish must return
 * within the bound (1 s). Each value is held for 1.5 s, following the
 * publisher to a new slot when it recreates its port. */
static void attack_history_lock_publish(attack_ctx_t *x)
{
    const int lock_field = find_field(FC_HISTORY, "history_lock");
    int victim = -1;
    for (int i = 0; i < x->a->nvictims; i++)
        if (x->a->v[i].kind == VK_PUB_HIST)
            victim = i;
    if (victim < 0)
        return;
    const uint64_t values[] = { 1, (uint64_t)atomic_load(&x->a->v[victim].pid),
                                (uint64_t)x->a->daemon_pid };
    const char *what[] = { "1 (init)", "the publisher's own pid", "the daemon's pid" };
    int64_t hold = (x->until - th_now_ns()) / 3;
    for (int i = 0; i < 3; i++) {
        set_phase(x->a, "holding the publisher's history lock as %s", what[i]);
        int64_t end = th_now_ns() + hold;
        uint32_t last = UINT32_MAX;
        while (th_now_ns() < end) {
            uint32_t s = atomic_load(&x->a->v[victim].slots[0]);
            shm_port_t *p = shm_port(x->m, s);
            if (p && (s != last || atomic_load(&p->history_lock) == 0)) {
                poke(x, &p->history_lock, 4, values[i], lock_field, s);
                last = s;
            }
            sleep_us(2000);
        }
        shm_port_t *p = shm_port(x->m, last);
        if (p) {
            atomic_store(&p->history_lock, 0);
            journal(x->a, lock_field, last, 0, J_RESTORE | 4 << 8);
        }
        sleep_us(100000);
    }
}

/* A publisher sets its own history lock to its own (live) pid and destroys
 * the port; then does it again and exits. */
static void attack_history_lock_destroy(attack_ctx_t *x)
{
    const int lock_field = find_field(FC_HISTORY, "history_lock");
    shoal_publisher_t *pub = NULL;
    port_base_t *b = history_publisher(x, &pub);
    if (b) {
        set_phase(x->a, "destroying its publisher with its own pid in the history lock");
        poke(x, &b->p->history_lock, 4, (uint64_t)getpid(), lock_field, b->slot);
        journal(x->a, FX_DESTROY_OWN, b->slot, SHOAL_PORT_PUBLISHER, 0);
        int64_t t = th_now_ns();
        shoal_publisher_destroy(pub);
        measure_max(x->a, 0, th_now_ns() - t,
                    "destroying a publisher whose history lock holds the caller's pid");
    }
    b = history_publisher(x, &pub);
    if (b) {
        poke(x, &b->p->history_lock, 4, (uint64_t)getpid(), lock_field, b->slot);
        journal(x->a, FX_EXIT, b->slot, 0, 0);
        set_phase(x->a, "exiting with its own pid in its history lock");
        x->exit_without_destroy = 1;
    }
}

/* (c) The pool table scribbled (first_chunk, chunk_size, chunk_count,
 * stride, free_head) while victims loan: each value is held for a while on
 * every pool, then the table is restored. */
static void attack_pool_loan(attack_ctx_t *x)
{
    const shm_header_t *h = x->h;
    const struct {
        const char *name;
        int kind; /* 0 absolute, 1 first+count, 2 next pool's size, 3 stride+1 */
        uint64_t value;
    } plan[] = {
        { "first_chunk", 0, UINT32_MAX },      { "first_chunk", 0, h->chunk_total },
        { "first_chunk", 1, 0 },               { "first_chunk", 0, 0x7fffffff },
        { "chunk_size", 0, 0 },                { "chunk_size", 0, UINT64_MAX },
        { "chunk_size", 0, 1ULL << 40 },       { "chunk_size", 2, 0 },
        { "chunk_size", 3, 0 },                { "chunk_count", 0, UINT32_MAX },
        { "chunk_count", 0, h->chunk_total + 5ULL }, { "chunk_count", 1, 0 },
        { "stride", 0, 0 },                    { "stride", 0, 1ULL << 40 },
        { "segment_size", 0, UINT64_MAX },
    };
    const int nplan = sizeof plan / sizeof plan[0];
    int64_t each = (x->until - th_now_ns()) / nplan;
    if (each < 20 * TH_MS)
        each = 20 * TH_MS;
    for (int i = 0; i < nplan; i++) {
        int fi = find_field(FC_POOL, plan[i].name);
        const field_t *f = &FIELDS[fi];
        uint64_t saved[SHM_MAX_POOLS];
        set_phase(x->a, "pool table: %s", plan[i].name);
        for (uint32_t pi = 0; pi < h->pool_count; pi++) {
            const pool_snap_t *s = &x->pool[pi];
            uint8_t *p = (uint8_t *)shm_pool(x->m, pi) + f->off;
            uint64_t v = plan[i].value;
            if (plan[i].kind == 1)
                v = strcmp(plan[i].name, "first_chunk") == 0 ? s->first_chunk + s->chunk_count
                                                            : s->chunk_count + 1ULL;
            else if (plan[i].kind == 2)
                v = x->pool[(pi + 1) % h->pool_count].chunk_size;
            else if (plan[i].kind == 3)
                v = s->stride + 1;
            saved[pi] = peek(p, f->width);
            poke(x, p, f->width, v & width_max(f->width), fi, pi);
        }
        sleep_us((long)(each / 1000));
        for (uint32_t pi = 0; pi < h->pool_count; pi++) {
            store((uint8_t *)shm_pool(x->m, pi) + f->off, f->width, saved[pi]);
            journal(x->a, fi, pi, saved[pi], J_RESTORE | f->width << 8);
        }
    }
}

/* Asks the test for a new-client probe and waits for its outcome. */
static int request_probe(attack_ctx_t *x, probe_res_t *out)
{
    uint32_t want = atomic_fetch_add(&x->a->probe_req, 1) + 1;
    int64_t end = th_now_ns() + (PROBE_TIMEOUT_MS + 3000) * TH_MS;
    while (atomic_load(&x->a->probe_done) < want) {
        if (th_now_ns() > end)
            return -1;
        if (x->while_probing)
            x->while_probing(x);
        sleep_us(x->while_probing ? 50 : 1000);
    }
    *out = x->a->probe;
    return 0;
}

/* One row of the probe table: a new client after `field` got `value`. */
static void probe_row(attack_ctx_t *x, int field, uint64_t value)
{
    if (x->a->nrows >= HEADER_ROWS)
        return;
    header_row_t *row = &x->a->rows[x->a->nrows];
    row->field = field;
    row->value = value;
    if (request_probe(x, &row->probe) != 0)
        row->probe.code = -3;
    x->a->nrows++;
}

/* Did a client that believed a hostile header write through it? (A chunk
 * table at offset 0 overlays the pool table, for one.) */
static int pool_table_changed(const attack_ctx_t *x)
{
    for (uint32_t i = 0; i < x->h->pool_count; i++) {
        const shm_pool_t *p = shm_pool(x->m, i);
        const pool_snap_t *s = &x->pool[i];
        if (p->geom.chunk_size != s->chunk_size || p->geom.stride != s->stride ||
            p->geom.segment_size != s->segment_size || p->geom.chunk_count != s->chunk_count ||
            p->geom.first_chunk != s->first_chunk)
            return 1;
    }
    return 0;
}

/* The next row starts from the layout as it was, so that each row tests one
 * field. */
static void restore_layout(attack_ctx_t *x)
{
    memcpy(x->m->shared_hdr, &x->shared_hdr_at_start, sizeof x->shared_hdr_at_start);
    for (uint32_t i = 0; i < x->h->pool_count; i++) {
        shm_pool_t *p = shm_pool(x->m, i);
        p->geom.chunk_size = x->pool[i].chunk_size;
        p->geom.stride = x->pool[i].stride;
        p->geom.segment_size = x->pool[i].segment_size;
        p->geom.chunk_count = x->pool[i].chunk_count;
        p->geom.first_chunk = x->pool[i].first_chunk;
    }
}

/* (d) Every header field scribbled (0, max, and its live value + 1), one at
 * a time, each followed by a new client; then all of them at once. */
static void attack_header_probe(attack_ctx_t *x)
{
    int fi[64];
    int nf = class_fields(FC_HEADER, fi, 64);
    uint8_t *hdr = (uint8_t *)x->m->shared_hdr;
    for (int k = 0; k < nf && x->a->nrows + 2 < HEADER_ROWS; k++) {
        const field_t *f = &FIELDS[fi[k]];
        for (int pass = 0; pass < 3 && x->a->nrows + 1 < HEADER_ROWS; pass++) {
            uint8_t *p = hdr + f->off;
            uint8_t saved[256];
            uint64_t v;
            if (f->width == 0 && pass == 2)
                break;
            if (f->width == 0) {
                memcpy(saved, p, f->len);
                memset(p, pass ? 0xff : 'A', f->len); /* no NUL */
                v = (uint64_t)pass; /* the journal's fill modes: 0 'A', 1 0xff */
                journal(x->a, fi[k], 0, v, 0);
            } else {
                memcpy(saved, p, f->width);
                v = pass == 0 ? 0 : pass == 1 ? width_max(f->width)
                                              : (peek(p, f->width) + 1) & width_max(f->width);
                poke(x, p, f->width, v, fi[k], 0);
            }
            set_phase(x->a, "header.%s = %#llx: a new client registers", f->name,
                      (unsigned long long)v);
            probe_row(x, fi[k], v);
            memcpy(p, saved, f->width ? f->width : f->len);
            x->a->rows[x->a->nrows - 1].wrote_through = pool_table_changed(x);
            restore_layout(x);
            /* a daemon that stopped answering (or died) answers no more probes */
            if (x->a->rows[x->a->nrows - 1].probe.code < 0 || kill(x->a->daemon_pid, 0) != 0 ||
                th_now_ns() > x->until)
                return;
        }
    }
    /* everything at once, left in place */
    static tgt_t t[MAXTGT];
    static saved_t save[MAXTGT];
    for (int k = 0; k < nf; k++)
        if (targets(x, &FIELDS[fi[k]], t) == 1)
            hit(x, fi[k], &t[0], &save[0]);
    set_phase(x->a, "every header field hostile: a new client registers");
    probe_row(x, FX_PROBE, 0);
}

typedef struct attacker_ctx {
    arena_t *a;
    const th_daemon_t *d;
    const scenario_t *sc;
} attacker_ctx_t;

static int attacker_main(void *arg)
{
    child_init();
    attacker_ctx_t *c = arg;
    arena_t *a = c->a;
    redirect_stderr(c->d, "attacker");
    install_crash_handler(&a->attacker);
    atomic_store(&a->attacker.pid, (int)getpid());
    attack_ctx_t x;
    memset(&x, 0, sizeof x);
    x.a = a;
    x.d = c->d;
    x.sc = c->sc;
    x.rng = c->sc->seed * 0x2545f4914f6cdd1dULL + 1;
    x.held_hint = x.free_hint = UINT32_MAX;
    set_phase(a, "registering");
    shoal_result_t rc = th_runtime_create(c->d, "hostile-attacker", &x.rt);
    if (rc != SHOAL_OK) {
        atomic_store(&a->attacker.setup_rc, (int)rc);
        snprintf(a->attacker.first_error, sizeof a->attacker.first_error, "%s: %s",
                 shoal_strerror(rc), shoal_last_error_message());
        return 2;
    }
    x.m = &x.rt->map;
    x.h = x.m->hdr;
    a->hdr = *x.h;
    atomic_store(&a->hdr_valid, 1);
    memcpy(&x.shared_hdr_at_start, x.m->shared_hdr, sizeof x.shared_hdr_at_start);
    for (uint32_t i = 0; i < x.h->pool_count; i++) {
        const shm_pool_geom_t *p = shm_pool_geom(x.m, i); /* the truth, as the daemon sent it */
        x.pool[i] = (pool_snap_t){ p->chunk_size, p->stride, p->segment_size, p->chunk_count,
                                   p->first_chunk };
    }
    /* a pid that is surely dead */
    pid_t k = fork();
    if (k == 0)
        _exit(0);
    if (k > 0)
        waitpid(k, NULL, 0);
    x.dead_pid = k > 0 ? k : 999999;
    /* the victims' topic and service, read before anything is scribbled */
    x.svc[0] = x.svc[1] = UINT32_MAX;
    for (int i = 0; i < a->nvictims; i++) {
        int kind = a->v[i].kind;
        for (int k = 0; k < 2; k++) {
            shm_port_t *p = shm_port(x.m, atomic_load(&a->v[i].slots[k]));
            /* slot 1 is only the waitset victim's client */
            int svc = kind == VK_SRV || kind == VK_CLI || k == 1;
            if (p && p->service < x.h->service_limit)
                x.svc[svc] = p->service;
        }
    }
    x.until = th_now_ns() + (int64_t)c->sc->attack_ms * TH_MS;
    atomic_store(&a->attack_started, 1);
    c->sc->attack(&x);
    atomic_store(&a->attack_done_at, th_now_ns());
    atomic_store(&a->attack_done, 1);
    if (x.exit_without_destroy)
        _exit(0); /* the daemon closes what we leave */
    set_phase(a, "shoal_runtime_destroy");
    shoal_runtime_destroy(x.rt);
    set_phase(a, "done");
    return 0;
}

/* ===========================================================================
 * The test side: monitoring, diagnostics, checks
 * =========================================================================== */

struct report {
    char text[32768];
    size_t used;
    int failures;
    char summary[1024];
};

static void report_add(report_t *r, int failure, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void report_add(report_t *r, int failure, const char *fmt, ...)
{
    static char line[16384];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    if (failure) {
        r->failures++;
        size_t s = strlen(r->summary);
        if (r->failures <= 2) {
            char first[160];
            snprintf(first, sizeof first, "%.159s", line);
            char *nl = strchr(first, '\n');
            if (nl)
                *nl = 0;
            snprintf(r->summary + s, sizeof r->summary - s, "%s%s", s ? "; " : "", first);
        }
    }
    int n = snprintf(r->text + r->used, sizeof r->text - r->used, "%s%s\n",
                     failure ? "  FAIL: " : "  ", line);
    if (n > 0)
        r->used = r->used + (size_t)n < sizeof r->text ? r->used + (size_t)n : sizeof r->text - 1;
}

/* ---- naming offsets and journal entries ------------------------------------ */

static const field_t *field_at(elem_t elem, uint64_t rem, uint64_t *inside)
{
    for (int i = FX_COUNT; i < NFIELDS; i++) {
        const field_t *f = &FIELDS[i];
        uint64_t size = f->width ? f->width : f->len;
        if (f->elem == elem && rem >= f->off && rem < f->off + size) {
            *inside = rem - f->off;
            return f;
        }
    }
    return NULL;
}

static void name_in(char *out, size_t len, const char *prefix, elem_t elem, uint64_t rem)
{
    uint64_t inside = 0;
    const field_t *f = field_at(elem, rem, &inside);
    if (f && inside)
        snprintf(out, len, "%s.%s+%llu", prefix, f->name, (unsigned long long)inside);
    else if (f)
        snprintf(out, len, "%s.%s", prefix, f->name);
    else
        snprintf(out, len, "%s+%#llx (padding)", prefix, (unsigned long long)rem);
}

/* "port[17].kind", "chunk[3].refcount", ... for an offset in the segment. */
static void describe_offset(const shm_header_t *h, uint64_t off, char *out, size_t len)
{
    char prefix[64];
#define IN(start, count, size) (off >= (start) && off - (start) < (uint64_t)(count) * (size))
    if (off < sizeof *h) {
        name_in(out, len, "header", E_HEADER, off);
    } else if (IN(h->pools_off, h->pool_count, sizeof(shm_pool_t))) {
        uint64_t i = (off - h->pools_off) / sizeof(shm_pool_t);
        snprintf(prefix, sizeof prefix, "pool[%llu]", (unsigned long long)i);
        name_in(out, len, prefix, E_POOL, off - h->pools_off - i * sizeof(shm_pool_t));
    } else if (IN(h->chunks_off, h->chunk_total, sizeof(shm_chunk_t))) {
        uint64_t i = (off - h->chunks_off) / sizeof(shm_chunk_t);
        snprintf(prefix, sizeof prefix, "chunk[%llu]", (unsigned long long)i);
        name_in(out, len, prefix, E_CHUNK, off - h->chunks_off - i * sizeof(shm_chunk_t));
    } else if (IN(h->procs_off, h->process_limit, sizeof(shm_process_t))) {
        uint64_t i = (off - h->procs_off) / sizeof(shm_process_t);
        snprintf(prefix, sizeof prefix, "process[%llu]", (unsigned long long)i);
        name_in(out, len, prefix, E_PROC, off - h->procs_off - i * sizeof(shm_process_t));
    } else if (IN(h->waitsets_off, (uint64_t)h->process_limit * h->waitsets_per_process,
                  sizeof(shm_waitset_word_t))) {
        uint64_t i = (off - h->waitsets_off) / sizeof(shm_waitset_word_t);
        snprintf(prefix, sizeof prefix, "waitset_word[%llu]", (unsigned long long)i);
        name_in(out, len, prefix, E_WSWORD,
                off - h->waitsets_off - i * sizeof(shm_waitset_word_t));
    } else if (IN(h->services_off, h->service_limit, h->service_stride)) {
        uint64_t i = (off - h->services_off) / h->service_stride;
        uint64_t rem = off - h->services_off - i * h->service_stride;
        snprintf(prefix, sizeof prefix, "service[%llu]", (unsigned long long)i);
        if (rem < sizeof(shm_service_t))
            name_in(out, len, prefix, E_SERVICE, rem);
        else
            snprintf(out, len, "%s.receivers[%llu]", prefix,
                     (unsigned long long)((rem - sizeof(shm_service_t)) / 4));
    } else if (IN(h->ports_off, h->port_slots, h->port_stride)) {
        uint64_t s = (off - h->ports_off) / h->port_stride;
        uint64_t rem = off - h->ports_off - s * h->port_stride;
        snprintf(prefix, sizeof prefix, "port[%llu]", (unsigned long long)s);
        if (rem < sizeof(shm_port_t))
            name_in(out, len, prefix, E_PORT, rem);
        else if (rem >= h->port_cells_off && rem < h->port_held_off)
            snprintf(out, len, "%s.cells[%llu].%s", prefix,
                     (unsigned long long)((rem - h->port_cells_off) / 16),
                     (rem - h->port_cells_off) % 16 < 8 ? "seq" : "value");
        else if (rem >= h->port_held_off && rem < h->port_history_off)
            snprintf(out, len, "%s.held[%llu]", prefix,
                     (unsigned long long)((rem - h->port_held_off) / 8));
        else if (rem >= h->port_history_off)
            snprintf(out, len, "%s.history[%llu]", prefix,
                     (unsigned long long)((rem - h->port_history_off) / 8));
        else
            snprintf(out, len, "%s+%#llx (padding)", prefix, (unsigned long long)rem);
    } else {
        snprintf(out, len, "offset %#llx (padding)", (unsigned long long)off);
    }
#undef IN
}

static void format_entry(const arena_t *a, const jentry_t *e, char *out, size_t len)
{
    const field_t *f = &FIELDS[e->field < NFIELDS ? e->field : FX_RANDOM];
    char where[160];
    uint32_t hi = e->target >> 16, lo = e->target & 0xffff;
    switch (f->elem) {
    case E_SEGMENT:
        if (atomic_load(&a->hdr_valid))
            describe_offset(&a->hdr, e->target, where, sizeof where);
        else
            snprintf(where, sizeof where, "offset %#x", e->target);
        break;
    case E_HEADER: snprintf(where, sizeof where, "header.%s", f->name); break;
    case E_POOL: snprintf(where, sizeof where, "pool[%u].%s", e->target, f->name); break;
    case E_CHUNK:
    case E_FREECHUNK:
        snprintf(where, sizeof where, "chunk[%u].%s", e->target, f->name);
        break;
    case E_PROC: snprintf(where, sizeof where, "process[%u].%s", e->target, f->name); break;
    case E_WSWORD:
        snprintf(where, sizeof where, "waitset_word[%u].%s", e->target, f->name);
        break;
    case E_SERVICE: snprintf(where, sizeof where, "service[%u].%s", e->target, f->name); break;
    case E_RECV: snprintf(where, sizeof where, "service[%u].receivers[%u]", hi, lo); break;
    case E_PORT:
        if (f->cls == FC_NONE)
            snprintf(where, sizeof where, "%s, port[%u]", f->name, e->target);
        else
            snprintf(where, sizeof where, "port[%u].%s", e->target, f->name);
        break;
    case E_CELL: snprintf(where, sizeof where, "port[%u].cells[%u].%s", hi, lo, f->name); break;
    case E_HELD: snprintf(where, sizeof where, "port[%u].held[%u]", hi, lo); break;
    case E_HIST: snprintf(where, sizeof where, "port[%u].history[%u]", hi, lo); break;
    default: snprintf(where, sizeof where, "%s", f->name); break;
    }
    int owner = (e->flags >> J_OWNER_SHIFT) - 1;
    if (owner >= 0 && owner < a->nvictims) {
        size_t n = strlen(where);
        snprintf(where + n, sizeof where - n, " (the %s's)", VK_NAMES[a->v[owner].kind]);
    }
    double t = secs(e->t - a->t0);
    if (f->cls == FC_NONE && f->elem != E_SEGMENT && e->field != FX_INJECT)
        snprintf(out, len, "%+.3fs %s", t, where);
    else if (f->width == 0 && f->cls != FC_NONE)
        snprintf(out, len, "%+.3fs %s %s", t, where,
                 e->flags & J_RESTORE ? "restored"
                 : e->value == 0      ? "filled with 'A', no NUL"
                 : e->value == 1      ? "filled with 0xff"
                 : e->value == 2      ? "emptied"
                                      : "a real name followed by 'x', no NUL");
    else if (f->elem == E_SEGMENT)
        snprintf(out, len, "%+.3fs %s = %#llx (%d-byte write)", t, where,
                 (unsigned long long)e->value, (e->flags >> 8) & 0xf);
    else
        snprintf(out, len, "%+.3fs %s = %#llx%s", t, where, (unsigned long long)e->value,
                 e->flags & J_RESTORE ? " (restored)" : "");
}

/* The attacker's last `n` writes at or before `t` (and one just after). */
static void journal_before(const arena_t *a, int64_t t, int n, char *out, size_t len)
{
    out[0] = 0;
    uint32_t head = atomic_load(&a->jhead);
    uint32_t count = head < JOURNAL_LEN ? head : JOURNAL_LEN;
    int found = 0;
    uint32_t idx[16];
    for (uint32_t k = 0; k < count && found < n && found < 16; k++) {
        const jentry_t *e = &a->journal[(head - 1 - k) % JOURNAL_LEN];
        if (e->t <= t)
            idx[found++] = (head - 1 - k) % JOURNAL_LEN;
    }
    size_t used = 0;
    for (int i = found - 1; i >= 0; i--) {
        char line[256];
        format_entry(a, &a->journal[idx[i]], line, sizeof line);
        int w = snprintf(out + used, len - used, "\n        %s", line);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    if (!found)
        snprintf(out, len, " (none: before the attacker's first write)");
}

/* ---- processes: symbols, /proc, gdb ----------------------------------------------- */

static void symbolize(void *pc, int is_return, char *out, size_t len)
{
    uintptr_t a = (uintptr_t)pc - (is_return ? 1 : 0);
    Dl_info di;
    if (!dladdr((void *)a, &di) || !di.dli_fname || !di.dli_fbase) {
        snprintf(out, len, "%p", pc);
        return;
    }
    const Elf64_Ehdr *eh = di.dli_fbase;
    uintptr_t rel = eh->e_type == ET_EXEC ? a : a - (uintptr_t)di.dli_fbase;
    char cmd[700];
    snprintf(cmd, sizeof cmd, "addr2line -f -i -C -e '%s' %#lx 2>/dev/null", di.dli_fname,
             (unsigned long)rel);
    FILE *p = popen(cmd, "r");
    char fn[256] = "", loc[512] = "";
    if (p) {
        if (!fgets(fn, sizeof fn, p) || !fgets(loc, sizeof loc, p))
            fn[0] = loc[0] = 0;
        pclose(p);
    }
    fn[strcspn(fn, "\n")] = 0;
    loc[strcspn(loc, "\n")] = 0;
    const char *base = strrchr(di.dli_fname, '/');
    const char *file = strstr(loc, "/capi/") ? strstr(loc, "/capi/") + 1
                       : strrchr(loc, '/')    ? strrchr(loc, '/') + 1
                                              : loc;
    if (fn[0] && strcmp(fn, "??") != 0)
        snprintf(out, len, "%s (%s)", fn, file);
    else
        snprintf(out, len, "%s+%#lx", base ? base + 1 : di.dli_fname, (unsigned long)rel);
}

static void crash_site(const vstat_t *st, char *out, size_t len)
{
    out[0] = 0;
    size_t used = 0;
    /* frames 0 and 1: the handler and the signal trampoline */
    for (int i = 2; i < st->crash_frames && i < 9; i++) {
        char sym[600];
        symbolize(st->crash_pc[i], i > 2, sym, sizeof sym);
        if (strncmp(sym, "th_spawn", 8) == 0)
            break; /* below: the test that forked it */
        int w = snprintf(out + used, len - used, "\n        #%d %s", i - 2, sym);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
    if (!used)
        snprintf(out, len, " (no frames recorded: a sanitizer or the kernel ended it)");
}

static void proc_state(pid_t pid, char *out, size_t len)
{
    char path[64], stat[512] = "", wchan[64] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (f) {
        if (!fgets(stat, sizeof stat, f))
            stat[0] = 0;
        fclose(f);
    }
    snprintf(path, sizeof path, "/proc/%d/wchan", (int)pid);
    f = fopen(path, "r");
    if (f) {
        if (!fgets(wchan, sizeof wchan, f))
            wchan[0] = 0;
        fclose(f);
    }
    const char *rp = strrchr(stat, ')');
    char state = rp && rp[1] == ' ' ? rp[2] : '?';
    snprintf(out, len, "state %c%s, wchan %s", state,
             state == 'R' ? " (spinning)" : state == 'S' ? " (sleeping)" : "",
             wchan[0] && strcmp(wchan, "0") != 0 ? wchan : "-");
}

static double proc_cpu_seconds(pid_t pid)
{
    char path[64], buf[1024] = "";
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    if (!fgets(buf, sizeof buf, f))
        buf[0] = 0;
    fclose(f);
    const char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long long utime = 0, stime = 0;
    /* after ')': state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime stime */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) !=
        2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

/* Backtrace of a live process with gdb (SHOAL_HOSTILE_GDB=1). */
static void gdb_backtrace(pid_t pid, char *out, size_t len)
{
    out[0] = 0;
    if (!gdb_wanted())
        return;
    char pidarg[16], raw[16384];
    snprintf(pidarg, sizeof pidarg, "%d", (int)pid);
    const char *argv[] = { "/usr/bin/gdb", "-q", "-nx", "-batch", "-p", pidarg,
                           "-ex", "thread apply all bt 12", NULL };
    if (th_run_program("/usr/bin/gdb", argv, NULL, raw, sizeof raw, NULL, 0, 30000) < 0)
        return;
    /* per thread, the frames down to the first one in the test's own code */
    size_t used = 0;
    int lines = 0, skip = 0;
    for (char *line = strtok(raw, "\n"); line && lines < 12; line = strtok(NULL, "\n")) {
        if (strncmp(line, "Thread", 6) == 0) {
            skip = 0;
            continue;
        }
        if (line[0] != '#' || skip)
            continue;
        skip = strstr(line, "/tests/c/") != NULL;
        int w = snprintf(out + used, len - used, "\n        %.200s", line);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
        lines++;
    }
}

/* gdb attached to the daemon for the whole test: prints the backtrace of
 * the signal that stops it (a crash, or SIGSTOP that we send on a hang). */
typedef struct gdb_catch {
    pid_t gdb, target;
    int exited; /* gdb is gone: the daemon stopped on a signal (or exited) */
    char out[320];
} gdb_catch_t;

/* Has gdb finished? It does when the daemon gets a signal; the daemon then
 * dies as soon as gdb lets it go. */
static int gdb_catch_poll(gdb_catch_t *g)
{
    if (g->gdb && !g->exited && waitpid(g->gdb, NULL, WNOHANG) == g->gdb)
        g->exited = 1;
    return g->exited;
}

static void gdb_catch_start(gdb_catch_t *g, pid_t target, const char *dir)
{
    memset(g, 0, sizeof *g);
    if (!gdb_wanted())
        return;
    snprintf(g->out, sizeof g->out, "%s/gdb-%d.txt", dir, (int)target);
    char pidarg[16];
    snprintf(pidarg, sizeof pidarg, "%d", (int)target);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int fd = open(g->out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        execl("/usr/bin/gdb", "gdb", "-q", "-nx", "-batch", "-p", pidarg, "-ex",
              "set pagination off", "-ex", "handle SIGPIPE nostop noprint pass", "-ex",
              "continue", "-ex", "bt 20", NULL);
        _exit(127);
    }
    g->gdb = pid;
    g->target = target;
    /* wait until it is attached */
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/status", (int)target);
    for (int i = 0; i < 1000; i++) {
        char line[256];
        int traced = 0;
        FILE *f = fopen(path, "r");
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "TracerPid:", 10) == 0 && atoi(line + 10) != 0)
                traced = 1;
        if (f)
            fclose(f);
        if (traced)
            break;
        th_sleep_ms(10);
    }
    th_sleep_ms(200); /* past "continue" */
}

/* The frames gdb printed (after a crash, or after `stop` sends SIGSTOP). */
static void gdb_catch_finish(gdb_catch_t *g, int stop, char *out, size_t len)
{
    if (out)
        out[0] = 0;
    if (!g->gdb)
        return;
    if (stop && !g->exited)
        kill(g->target, SIGSTOP);
    if (!g->exited && th_join(g->gdb, 10000) < 0)
        fprintf(stderr, "gdb did not finish\n");
    g->gdb = 0;
    FILE *f = fopen(g->out, "r");
    if (!f || !out)
        goto done;
    char line[512];
    size_t used = 0;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (line[0] != '#' && !strstr(line, "received signal"))
            continue;
        int w = snprintf(out + used, len - used, "\n        %s", line);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
done:
    if (f)
        fclose(f);
    unlink(g->out);
}

/* The daemon log: its last lines, and any sanitizer report in it. */
static void log_excerpt(const th_daemon_t *d, char *out, size_t len)
{
    out[0] = 0;
    FILE *f = fopen(d->log_path, "r");
    if (!f)
        return;
    enum { TAIL = 12 };
    static char tail[TAIL][300];
    int nt = 0;
    char san[4096] = "";
    size_t san_used = 0;
    int in_san = 0;
    char line[300];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "runtime error:") ||
            strstr(line, "ERROR: LeakSanitizer"))
            in_san = 1;
        if (in_san && in_san < 40 && san_used < sizeof san - 200) {
            int w = snprintf(san + san_used, sizeof san - san_used, "\n        %s", line);
            if (w > 0)
                san_used += (size_t)w;
            in_san++;
        }
        snprintf(tail[nt % TAIL], sizeof tail[0], "%s", line);
        nt++;
    }
    fclose(f);
    size_t used = 0;
    int w;
    if (san_used) {
        w = snprintf(out, len, "\n      sanitizer report in the daemon log:%s", san);
        used = w > 0 ? (size_t)w : 0;
    }
    if (used < len) {
        w = snprintf(out + used, len - used, "\n      last lines of the daemon log:");
        used += w > 0 ? (size_t)w : 0;
    }
    for (int i = nt > TAIL ? nt - TAIL : 0; i < nt && used < len; i++) {
        w = snprintf(out + used, len - used, "\n        %s", tail[i % TAIL]);
        used += w > 0 ? (size_t)w : 0;
    }
}

static int reap_within(pid_t pid, int timeout_ms, int *status)
{
    int64_t end = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -2;
        if (th_now_ns() > end)
            return -1;
        th_sleep_ms(2);
    }
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

/* SIGTERM: the daemon must exit 0 within STOP_TIMEOUT_MS, however corrupt
 * the segment is. Unlike th_daemon_stop(), files left in its runtime dir are
 * not checked: a daemon that cannot trust the segment must still stop. */
static void daemon_stop_checked(th_daemon_t *d, gdb_catch_t *g, report_t *r)
{
    pid_t pid = d->pid;
    d->pid = 0;
    kill(pid, SIGTERM);
    int status = 0;
    if (reap_within(pid, STOP_TIMEOUT_MS, &status) != 0) {
        char state[128], bt[4096] = "";
        proc_state(pid, state, sizeof state);
        if (g->gdb)
            gdb_catch_finish(g, 1, bt, sizeof bt);
        else
            gdb_backtrace(pid, bt, sizeof bt);
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        report_add(r, 1, "daemon did not exit within %d ms of SIGTERM (%s)%s%s", STOP_TIMEOUT_MS,
                   state, bt[0] ? "; gdb:" : "", bt);
        return;
    }
    char bt[4096];
    gdb_catch_finish(g, 0, bt, sizeof bt);
    int code = status_code(status);
    if (code > 128)
        report_add(r, 1, "daemon killed by %s while stopping on SIGTERM%s%s",
                   sig_name(code - 128), bt[0] ? "; gdb:" : "", bt);
    else if (code != 0) {
        char logx[8192];
        log_excerpt(d, logx, sizeof logx);
        report_add(r, 1, "daemon exit status %d after SIGTERM (expected 0)%s", code, logx);
    }
    else
        report_add(r, 0, "daemon stopped cleanly on SIGTERM");
}

/* ---- one scenario: daemon, victims, attacker, checks ---------------------------- */

typedef struct watch {
    pid_t pid;
    vstat_t *st;
    const char *tag; /* of its stderr file */
    char name[48];
    int done;
    int code;
    int64_t end;
} watch_t;

static void format_counts(const vstat_t *v, char *out, size_t len)
{
    size_t used = 0;
    out[0] = 0;
    for (int k = 0; k < RC_SLOTS; k++) {
        uint64_t n = atomic_load(&v->by_rc[k]);
        if (!n)
            continue;
        const char *name = k < RC_SLOTS - 1 ? shoal_strerror((shoal_result_t)k) : "other";
        int w = snprintf(out + used, len - used, "%s%.*s %llu", used ? ", " : "",
                         (int)strcspn(name, ":"), name, (unsigned long long)n);
        if (w < 0 || (size_t)w >= len - used)
            break;
        used += (size_t)w;
    }
}

/* A victim, the attacker or a probe: how it ended. */
static void judge_process(const arena_t *a, const th_daemon_t *d, const watch_t *wt,
                          int64_t bound_ns, report_t *r)
{
    const vstat_t *v = wt->st;
    char site[2048], writes[2048], err[4096];
    stderr_excerpt(d, wt->tag, (int)wt->pid, err, sizeof err);
    if (wt->code > 128) {
        int64_t t = wt->end;
        crash_site(v, site, sizeof site);
        journal_before(a, t, 5, writes, sizeof writes);
        report_add(r, 1,
                   "%s (pid %d) killed by %s at %+.3fs, in %s; crash site:%s%s%s\n"
                   "      attacker's last writes before:%s",
                   wt->name, (int)wt->pid, sig_name(wt->code - 128), secs(t - a->t0),
                   OP_NAMES[atomic_load(&v->op)], site, err[0] ? "\n      its stderr:" : "",
                   err, writes);
    } else if (wt->code == -1 && v == &a->attacker) {
        report_add(r, 1, "attacker (pid %d) hung: not exited %d ms after the deadline, while %s",
                   (int)wt->pid, HANG_MARGIN_MS, a->attacker_phase);
    } else if (wt->code == -1 && atomic_load(&v->op) == OP_IDLE) {
        report_add(r, 1, "%s (pid %d) hung: not exited %d ms after its deadline (between calls: "
                   "see its long calls)", wt->name, (int)wt->pid, HANG_MARGIN_MS);
    } else if (wt->code == -1) {
        int64_t since = atomic_load(&v->op_since);
        journal_before(a, since + 2 * TH_MS, 5, writes, sizeof writes);
        report_add(r, 1,
                   "%s (pid %d) hung: not exited %d ms after its deadline; in %s since %+.3fs\n"
                   "      attacker's last writes before that call:%s",
                   wt->name, (int)wt->pid, HANG_MARGIN_MS, OP_NAMES[atomic_load(&v->op)],
                   secs(since - a->t0), writes);
    } else if (wt->code == 2 && atomic_load(&v->setup_rc)) {
        report_add(r, 1, "%s (pid %d) could not start: %s (%s)", wt->name, (int)wt->pid,
                   shoal_strerror((shoal_result_t)atomic_load(&v->setup_rc)), v->first_error);
    } else if (wt->code != 0) {
        int64_t since = atomic_load(&v->op_since);
        journal_before(a, wt->end, 4, writes, sizeof writes);
        report_add(r, 1, "%s (pid %d) exited with %d at %+.3fs, in %s (since %+.3fs)%s%s\n"
                   "      attacker's last writes before:%s",
                   wt->name, (int)wt->pid, wt->code, secs(wt->end - a->t0),
                   OP_NAMES[atomic_load(&v->op)], secs(since - a->t0),
                   err[0] ? "; its stderr:" : "", err, writes);
    }
    /* calls over the bound, one line per kind of call: the first, and how many */
    uint32_t nslow = atomic_load(&v->nslow);
    if (nslow > SLOW_LOG)
        nslow = SLOW_LOG;
    for (uint32_t i = 0; i < nslow; i++) {
        const slow_call_t *s = &v->slow[i];
        int first = s->ns > bound_ns, count = 0;
        int64_t longest = 0;
        for (uint32_t k = 0; k < nslow && first; k++) {
            if (v->slow[k].op != s->op || v->slow[k].ns <= bound_ns)
                continue;
            if (k < i)
                first = 0;
            count++;
            longest = v->slow[k].ns > longest ? v->slow[k].ns : longest;
        }
        if (!first)
            continue;
        journal_before(a, s->start + 2 * TH_MS, 3, writes, sizeof writes);
        report_add(r, 1,
                   "%s (pid %d): %s took %.2f s (bound %.2f s) from %+.3fs; %d such call(s), "
                   "the longest %.2f s\n      attacker's last writes before the first:%s",
                   wt->name, (int)wt->pid, OP_NAMES[s->op], secs(s->ns), secs(bound_ns),
                   secs(s->start - a->t0), count, secs(longest), writes);
    }
}

/* The new clients the attacker asked for during the attack. */
static void check_probe_rows(arena_t *a, const th_daemon_t *d, int daemon_dead, report_t *r)
{
    int failed = 0;
    for (int i = 0; i < a->nrows; i++) {
        const header_row_t *row = &a->rows[i];
        if (probe_passed(&row->probe) && !row->wrote_through)
            continue;
        char what[512], field[160], err[4096];
        probe_describe(&row->probe, what, sizeof what);
        stderr_excerpt(d, "probe", atomic_load(&row->probe.st.pid), err, sizeof err);
        if (row->probe.code == -3)
            snprintf(what, sizeof what, "no probe result");
        else if (probe_passed(&row->probe))
            snprintf(what, sizeof what, "registered, but wrote through the hostile layout: the "
                                        "pool table changed under it");
        const field_t *f = &FIELDS[row->field];
        if (row->field == FX_PROBE)
            snprintf(field, sizeof field, "with every field of the class hostile, victims running");
        else if (f->width == 0)
            snprintf(field, sizeof field, "header.%s %s", f->name,
                     row->value ? "filled with 0xff" : "filled with 'A', no NUL");
        else
            snprintf(field, sizeof field, "header.%s = %#llx", f->name,
                     (unsigned long long)row->value);
        /* once the daemon is dead, that is the failure */
        int consequence = daemon_dead && atomic_load(&row->probe.rc) == SHOAL_ERR_DAEMON_UNAVAILABLE;
        report_add(r, !consequence, "%s: new client %s%s%s", field, what,
                   consequence ? " (the daemon had died)" : "", err);
        failed++;
    }
    if (a->nrows > 1)
        report_add(r, 0, "%d of %d new clients during the attack failed", failed, a->nrows);
}

/* One scenario's run: its daemon, its processes, what became of them. */
typedef struct run {
    const scenario_t *sc;
    report_t *r;
    arena_t *a;
    th_daemon_t d;
    gdb_catch_t g;
    victim_ctx_t vctx[MAX_VICTIMS];
    attacker_ctx_t actx;
    watch_t w[MAX_VICTIMS + 1]; /* the victims, then the attacker */
    int nw;
    int daemon_code; /* how the daemon ended during the test; -1 alive */
    int64_t daemon_end;
    int64_t bound; /* of any single call */
} run_t;

static void note_exit(watch_t *w, int status, int64_t when)
{
    w->done = 1;
    w->code = status_code(status);
    w->end = when;
}

/* Victims first (until they are ready), then the attacker. */
static void start_processes(run_t *x)
{
    arena_t *a = x->a;
    a->nvictims = VK_COUNT;
    atomic_store(&a->deadline, th_now_ns() + 60 * TH_SEC); /* until the attack is set */
    for (int i = 0; i < a->nvictims; i++) {
        watch_t *w = &x->w[i];
        a->v[i].kind = i;
        x->vctx[i] = (victim_ctx_t){ a, &x->d, i,
                                     x->sc->seed ^ (0x9e3779b97f4a7c15ULL * (uint64_t)(i + 1)) };
        w->pid = th_spawn(victim_main, &x->vctx[i]);
        w->st = &a->v[i];
        w->tag = "victim";
        snprintf(w->name, sizeof w->name, "victim %s", VK_NAMES[i]);
        assert_true(w->pid > 0);
    }
    int64_t t_ready = th_now_ns() + (int64_t)READY_TIMEOUT_MS * TH_MS;
    for (int i = 0; i < a->nvictims; i++)
        while (!atomic_load(&a->v[i].ready) && !x->w[i].done && th_now_ns() < t_ready) {
            int st;
            if (waitpid(x->w[i].pid, &st, WNOHANG) == x->w[i].pid)
                note_exit(&x->w[i], st, th_now_ns());
            th_sleep_ms(2);
        }

    a->attacker.kind = -1;
    a->t0 = th_now_ns();
    atomic_store(&a->deadline, a->t0 + (int64_t)x->sc->attack_ms * TH_MS + TAIL_NS);
    x->actx = (attacker_ctx_t){ a, &x->d, x->sc };
    watch_t *w = &x->w[a->nvictims];
    w->pid = th_spawn(attacker_main, &x->actx);
    w->st = &a->attacker;
    w->tag = "attacker";
    snprintf(w->name, sizeof w->name, "attacker");
    assert_true(w->pid > 0);
    x->nw = a->nvictims + 1;
}

/* Until every process has exited (or the deadline + margin has passed):
 * reaps them and the daemon, runs the probes the attacker asks for, moves
 * the victims' deadline up once the attack is over. Then the hung ones are
 * described and killed. */
static void watch_processes(run_t *x)
{
    arena_t *a = x->a;
    int64_t probe_ns = 0; /* the attacker waits for its probes: so does the margin */
    for (;;) {
        int64_t now = th_now_ns();
        int running = 0;
        for (int i = 0; i < x->nw; i++) {
            int st;
            if (x->w[i].done)
                continue;
            if (waitpid(x->w[i].pid, &st, WNOHANG) == x->w[i].pid)
                note_exit(&x->w[i], st, now);
            else
                running++;
        }
        if (x->d.pid > 0) {
            int st;
            /* under gdb, a crashed daemon dies only once gdb has printed it */
            if ((gdb_catch_poll(&x->g) && reap_within(x->d.pid, 5000, &st) == 0) ||
                waitpid(x->d.pid, &st, WNOHANG) == x->d.pid) {
                x->daemon_code = status_code(st);
                x->daemon_end = now;
                x->d.pid = 0;
            }
        }
        if (atomic_load(&a->probe_req) > atomic_load(&a->probe_done)) {
            run_probe(&x->d, &a->probe);
            atomic_fetch_add(&a->probe_done, 1);
            probe_ns += th_now_ns() - now;
        }
        if (atomic_load(&a->attack_done)) {
            int64_t dl = atomic_load(&a->attack_done_at) + TAIL_NS;
            if (dl < atomic_load(&a->deadline))
                atomic_store(&a->deadline, dl);
        }
        if (!running ||
            now > atomic_load(&a->deadline) + (int64_t)HANG_MARGIN_MS * TH_MS + probe_ns)
            break;
        th_sleep_ms(2);
    }
    for (int i = 0; i < x->nw; i++) {
        watch_t *w = &x->w[i];
        if (w->done)
            continue;
        char state[128], bt[4096];
        proc_state(w->pid, state, sizeof state);
        gdb_backtrace(w->pid, bt, sizeof bt);
        kill(w->pid, SIGKILL);
        waitpid(w->pid, NULL, 0);
        w->done = 1;
        w->code = -1;
        report_add(x->r, 0, "%s hung: %s%s%s", w->name, state, bt[0] ? "; gdb:" : "", bt);
    }
}

/* Writes done, and every victim's calls by result code. */
static void print_figures(const run_t *x)
{
    const arena_t *a = x->a;
    const int done = strcmp(a->attacker_phase, "done") == 0;
    print_message("%s: seed %llu, attack %d ms: %llu hostile writes (%llu restored) in %llu "
                  "steps%s%s\n",
                  x->sc->name, (unsigned long long)x->sc->seed, x->sc->attack_ms,
                  (unsigned long long)atomic_load(&a->writes),
                  (unsigned long long)atomic_load(&a->restores),
                  (unsigned long long)atomic_load(&a->steps),
                  done ? "" : "; attacker's last phase: ", done ? "" : a->attacker_phase);
    for (int i = 0; i < a->nvictims; i++) {
        const vstat_t *v = &a->v[i];
        char counts[1024];
        format_counts(v, counts, sizeof counts);
        print_message("  %-26s pid %-7d exit %-4d calls %-7llu [%s] bad payloads %llu, port "
                      "churns %llu, longest %s %.1f ms\n",
                      x->w[i].name, (int)x->w[i].pid, x->w[i].code,
                      (unsigned long long)atomic_load(&v->calls), counts,
                      (unsigned long long)atomic_load(&v->bad_payload),
                      (unsigned long long)atomic_load(&v->churns), OP_NAMES[v->longest_op],
                      (double)v->longest_ns / 1e6);
        if (v->first_error[0])
            print_message("  %-26s first error: %.180s\n", "", v->first_error);
    }
}

/* The daemon died during the test: how, when, after which writes, where. */
static void check_daemon_death(run_t *x)
{
    if (x->daemon_code < 0)
        return;
    char writes[2048], logx[8192], bt[4096] = "", how[64];
    journal_before(x->a, x->daemon_end, 6, writes, sizeof writes);
    log_excerpt(&x->d, logx, sizeof logx);
    gdb_catch_finish(&x->g, 0, bt, sizeof bt);
    if (x->daemon_code > 128)
        snprintf(how, sizeof how, "killed by %s", sig_name(x->daemon_code - 128));
    else
        snprintf(how, sizeof how, "exited with %d", x->daemon_code);
    report_add(x->r, 1, "daemon %s at %+.3fs%s%s\n      attacker's last writes before:%s%s", how,
               secs(x->daemon_end - x->a->t0),
               bt[0] ? "; gdb:" : gdb_wanted() ? "" : BACKTRACE_HINT,
               bt, writes, logx);
}

/* After it all, a new client registers and creates ports, and SIGTERM
 * stops the daemon. */
static void check_new_client_and_stop(run_t *x)
{
    if (x->d.pid <= 0) {
        gdb_catch_finish(&x->g, 0, NULL, 0);
        return;
    }
    probe_res_t *pr = &x->a->probe;
    char what[512], err[4096];
    run_probe(&x->d, pr);
    probe_describe(pr, what, sizeof what);
    stderr_excerpt(&x->d, "probe", atomic_load(&pr->st.pid), err, sizeof err);
    /* a daemon that died as the last victims left (or under the probe) */
    int st;
    if (waitpid(x->d.pid, &st, WNOHANG) == x->d.pid ||
        (atomic_load(&pr->rc) == SHOAL_ERR_DAEMON_UNAVAILABLE &&
         reap_within(x->d.pid, 1000, &st) == 0)) {
        x->daemon_code = status_code(st);
        x->daemon_end = th_now_ns();
        x->d.pid = 0;
        check_daemon_death(x);
        report_add(x->r, 0, "new client: %s (the daemon had died)", what);
        return;
    }
    if (pr->code > 128) {
        char site[2048];
        crash_site(&pr->st, site, sizeof site);
        report_add(x->r, 1, "new client %s; crash site:%s", what, site);
    } else {
        report_add(x->r, !probe_passed(pr), "new client: %s%s", what, err);
    }
    if (pr->code == -1) {
        char state[128], logx[4096];
        proc_state(x->d.pid, state, sizeof state);
        log_excerpt(&x->d, logx, sizeof logx);
        report_add(x->r, 0, "daemon: %s%s", state, logx);
    }
    daemon_stop_checked(&x->d, &x->g, x->r);
}

static int run_scenario(const scenario_t *sc, report_t *r)
{
    const int64_t t_start = th_now_ns();
    static run_t x;
    memset(&x, 0, sizeof x);
    x.sc = sc;
    x.r = r;
    x.daemon_code = -1;
    x.bound = sc->call_bound_ns ? sc->call_bound_ns : CALL_BOUND_NS;
    x.a = th_shared_alloc(sizeof *x.a);
    assert_non_null(x.a);
    th_daemon_prepare(&x.d, HOSTILE_CONFIG);
    if (th_daemon_launch(&x.d) != 0) {
        th_daemon_cleanup(&x.d);
        th_shared_free(x.a, sizeof *x.a);
        report_add(r, 1, "shoald did not start");
        return r->failures;
    }
    x.a->daemon_pid = x.d.pid;
    gdb_catch_start(&x.g, x.d.pid, x.d.base_dir);

    start_processes(&x);
    watch_processes(&x);
    print_figures(&x);

    /* the daemon first: when it dies or hangs, the victims' failures follow */
    check_daemon_death(&x);
    check_probe_rows(x.a, &x.d, x.daemon_code >= 0, r);
    if (sc->check)
        sc->check(x.a, &x.d, r);
    for (int i = 0; i < 4; i++)
        if (atomic_load(&x.a->measure_ns[i]) > x.bound)
            report_add(r, 1, "%s took %.2f s (bound %.2f s)", x.a->measure_what[i],
                       secs(atomic_load(&x.a->measure_ns[i])), secs(x.bound));
    check_new_client_and_stop(&x);
    /* every victim (and the attacker) exited on its own, and no call was too long */
    for (int i = 0; i < x.nw; i++)
        judge_process(x.a, &x.d, &x.w[i], x.bound, r);

    th_daemon_cleanup(&x.d);
    fputs(r->text, stdout); /* print_message() truncates */
    print_message("  (%s: %.1f s, %d failure(s))\n", sc->name, secs(th_now_ns() - t_start),
                  r->failures);
    fflush(stdout);
    th_shared_free(x.a, sizeof *x.a);
    return r->failures;
}

/* ===========================================================================
 * Tests
 * =========================================================================== */

static void check_failures(const scenario_t *sc, const report_t *r)
{
    fflush(stdout);
    if (r->failures)
        fail_msg("%s (seed %llu): %d failure(s), first: %s", sc->name,
                 (unsigned long long)sc->seed, r->failures, r->summary);
}

static void run_one(scenario_t sc)
{
    static report_t r;
    memset(&r, 0, sizeof r);
    if (!sc.seed)
        sc.seed = base_seed();
    if (!sc.attack_ms)
        sc.attack_ms = attack_ms();
    run_scenario(&sc, &r);
    check_failures(&sc, &r);
}

#define CLASS_TEST(fn, cls_, label)                                                   \
    static void fn(void **state)                                                      \
    {                                                                                 \
        (void)state;                                                                  \
        run_one((scenario_t){ .name = label, .attack = attack_class, .cls = cls_ }); \
    }

CLASS_TEST(test_port_slot_fields, FC_PORT, "port slot fields")
CLASS_TEST(test_queue_cells, FC_CELL, "queue cells")
CLASS_TEST(test_held_tables, FC_HELD, "held tables")
CLASS_TEST(test_history_ring_and_lock, FC_HISTORY, "history ring and lock word")
CLASS_TEST(test_pool_table, FC_POOL, "pool table")
CLASS_TEST(test_free_lists, FC_FREELIST, "free lists")
CLASS_TEST(test_chunk_headers, FC_CHUNK, "chunk headers")
CLASS_TEST(test_service_table, FC_SERVICE, "service table")
CLASS_TEST(test_process_table, FC_PROCESS, "process table")
CLASS_TEST(test_waitset_words, FC_WAITSET, "waitset words")
CLASS_TEST(test_segment_header, FC_HEADER, "segment header")

/* (a) */
static void test_regression_kind_on_close(void **state)
{
    (void)state;
    run_one((scenario_t){ .name = "regression (a): own port kind hostile, then closed",
                          .attack = attack_kind_on_close,
                          .attack_ms = 10000 });
}

/* (b) the daemon must not spin on a lock its owner left held by pid 1 */
static void check_daemon_cpu(arena_t *a, const th_daemon_t *d, report_t *r)
{
    (void)a;
    if (d->pid <= 0)
        return;
    double c0 = proc_cpu_seconds(d->pid);
    th_sleep_ms(1000);
    double c1 = proc_cpu_seconds(d->pid);
    if (c0 < 0 || c1 < 0)
        return;
    report_add(r, c1 - c0 > 0.5, "daemon used %.2f s of CPU in the 1 s after the publisher "
               "exited%s", c1 - c0, c1 - c0 > 0.5 ? ": it spins" : "");
}

static void test_regression_history_lock_exit(void **state)
{
    (void)state;
    run_one((scenario_t){ .name = "regression (b): own history lock set to pid 1, then exit",
                          .attack = attack_history_lock_exit,
                          .attack_ms = 1500,
                          .check = check_daemon_cpu });
}

static void test_regression_history_lock_publish(void **state)
{
    (void)state;
    run_one((scenario_t){ .name = "regression (b): a publisher's history lock set by another "
                                  "process",
                          .attack = attack_history_lock_publish,
                          .attack_ms = 4500,
                          .call_bound_ns = TH_SEC });
}

static void test_regression_history_lock_destroy(void **state)
{
    (void)state;
    run_one((scenario_t){ .name = "regression (b): own pid in own history lock, then destroy",
                          .attack = attack_history_lock_destroy,
                          .attack_ms = 1500 });
}

/* (c) */
static void test_regression_pool_table_loan(void **state)
{
    (void)state;
    run_one((scenario_t){ .name = "regression (c): pool table scribbled under loans",
                          .attack = attack_pool_loan,
                          .attack_ms = 2400 });
}

static void test_regression_header_new_client(void **state)
{
    (void)state;
    run_one((scenario_t){ .name = "regression (d): header scribbled, new clients register",
                          .attack = attack_header_probe,
                          .attack_ms = 30000 });
}

/* The random scribbler, one fresh daemon per seed. */
static void test_random_scribbler(void **state)
{
    (void)state;
    const char *env = getenv("SHOAL_HOSTILE_SEEDS");
    char list[256];
    snprintf(list, sizeof list, "%s", env && *env ? env : "1,2,3");
    static report_t r;
    char failed[1024] = "";
    int nfail = 0;
    for (char *tok = strtok(list, ","); tok; tok = strtok(NULL, ",")) {
        scenario_t sc = { .name = "random scribbler",
                          .attack = attack_random,
                          .attack_ms = attack_ms(),
                          .seed = strtoull(tok, NULL, 0) };
        print_message("random scribbler: seed %llu (replay with SHOAL_HOSTILE_SEEDS=%llu)\n",
                      (unsigned long long)sc.seed, (unsigned long long)sc.seed);
        memset(&r, 0, sizeof r);
        if (run_scenario(&sc, &r)) {
            nfail++;
            size_t u = strlen(failed);
            snprintf(failed + u, sizeof failed - u, "%sseed %llu: %.200s", u ? " | " : "",
                     (unsigned long long)sc.seed, r.summary);
        }
    }
    fflush(stdout);
    if (nfail)
        fail_msg("random scribbler: %d seed(s) failed: %s", nfail, failed);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_port_slot_fields),
        cmocka_unit_test(test_queue_cells),
        cmocka_unit_test(test_held_tables),
        cmocka_unit_test(test_history_ring_and_lock),
        cmocka_unit_test(test_pool_table),
        cmocka_unit_test(test_free_lists),
        cmocka_unit_test(test_chunk_headers),
        cmocka_unit_test(test_service_table),
        cmocka_unit_test(test_process_table),
        cmocka_unit_test(test_waitset_words),
        cmocka_unit_test(test_segment_header),
        cmocka_unit_test(test_regression_kind_on_close),
        cmocka_unit_test(test_regression_history_lock_exit),
        cmocka_unit_test(test_regression_history_lock_publish),
        cmocka_unit_test(test_regression_history_lock_destroy),
        cmocka_unit_test(test_regression_pool_table_loan),
        cmocka_unit_test(test_regression_header_new_client),
        cmocka_unit_test(test_random_scribbler),
    };
    const char *filter = getenv("SHOAL_HOSTILE_FILTER");
    if (filter && *filter)
        cmocka_set_test_filter(filter);
    return cmocka_run_group_tests_name("hostile shared memory", tests, NULL, NULL);
}
