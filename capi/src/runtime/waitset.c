/* Waitset: one futex word in shared memory that every attached port bumps
 * when data arrives and someone waits; plus an eventfd fed by a helper
 * thread for event loops. */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "core/futex.h"
#include "core/queue.h"
#include "runtime/internal.h"

typedef struct ws_entry {
    port_base_t *port;
    uint64_t tag;
} ws_entry_t;

struct shoal_waitset {
    shoal_runtime_t *rt;
    uint32_t word;      /* global index */
    uint32_t local_bit; /* index within the process */
    shm_waitset_word_t *w;
    pthread_mutex_t lock; /* entries vs. the fd thread */
    ws_entry_t *entries;
    size_t count, cap;
    /* tag -> entry index + 1 (open addressing, linear probing): attach,
     * detach and a port's close stay O(1) with thousands of ports */
    uint32_t *index;
    size_t index_cap; /* a power of two, > 2 * count; 0 before the first attach */
    int efd;
    pthread_t thread;
    int thread_started;
    _Atomic int stop;
};

SHOAL_API shoal_result_t shoal_waitset_create(shoal_waitset_t **out, shoal_runtime_t *rt) {
    if (!out || !rt) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "NULL argument");
    *out = NULL;
    shoal_waitset_t *ws = calloc(1, sizeof *ws);
    if (!ws) return shoal_error_set(SHOAL_ERR_NO_MEMORY, "out of memory for a waitset");
    pthread_mutex_lock(&rt->lock);
    int bit = -1;
    uint32_t per = rt->map.hdr->waitsets_per_process;
    for (int i = 0; i < (int)per; i++)
        if (!(rt->waitset_words_used & (1ull << i))) {
            bit = i;
            break;
        }
    if (bit >= 0) rt->waitset_words_used |= 1ull << bit; /* listed once it is whole */
    pthread_mutex_unlock(&rt->lock);
    if (bit < 0) {
        free(ws);
        return shoal_error_set(SHOAL_ERR_PORT_LIMIT,
                               "waitset limit reached: this process has %u waitsets, the limit "
                               "(config key limits.waitsets_per_process in %s, at most %d)",
                               per, rt->map.hdr->config_source, SHM_WAITSETS_MAX);
    }
    ws->rt = rt;
    ws->local_bit = (uint32_t)bit;
    ws->word = rt->proc_slot * per + (uint32_t)bit;
    ws->w = shm_waitset_word(&rt->map, ws->word);
    if (!ws->w) {
        pthread_mutex_lock(&rt->lock);
        rt->waitset_words_used &= ~(1ull << bit);
        pthread_mutex_unlock(&rt->lock);
        free(ws);
        return shoal_error_set(SHOAL_ERR_CORRUPT, "waitset word out of range");
    }
    atomic_store(&ws->w->waiters, 0);
    atomic_store(&ws->w->in_use, 1);
    ws->efd = -1;
    pthread_mutex_init(&ws->lock, NULL);
    /* the runtime's monitor wakes listed waitsets: list it only now */
    pthread_mutex_lock(&rt->lock);
    rt->waitsets[bit] = ws;
    pthread_mutex_unlock(&rt->lock);
    *out = ws;
    return SHOAL_OK;
}

static size_t tag_hash(uint64_t tag, size_t cap) {
    tag ^= tag >> 33;
    tag *= 0xff51afd7ed558ccdull;
    tag ^= tag >> 33;
    return (size_t)tag & (cap - 1);
}

/* The index slot holding `tag`, or the empty slot where it would go. */
static size_t tag_slot(const shoal_waitset_t *ws, uint64_t tag) {
    size_t i = tag_hash(tag, ws->index_cap);
    while (ws->index[i] && ws->entries[ws->index[i] - 1].tag != tag) i = (i + 1) & (ws->index_cap - 1);
    return i;
}

static bool tag_find(const shoal_waitset_t *ws, uint64_t tag, size_t *entry) {
    if (!ws->index_cap) return false;
    size_t i = tag_slot(ws, tag);
    if (!ws->index[i]) return false;
    *entry = ws->index[i] - 1;
    return true;
}

/* Room for one more entry in both tables; false when out of memory. */
static bool reserve_one(shoal_waitset_t *ws) {
    if (ws->count == ws->cap) {
        size_t cap = ws->cap ? ws->cap * 2 : 8;
        ws_entry_t *n = realloc(ws->entries, cap * sizeof *n);
        if (!n) return false;
        ws->entries = n;
        ws->cap = cap;
    }
    if ((ws->count + 1) * 2 < ws->index_cap) return true;
    size_t cap = ws->index_cap ? ws->index_cap * 2 : 16;
    uint32_t *idx = calloc(cap, sizeof *idx);
    if (!idx) return false;
    free(ws->index);
    ws->index = idx;
    ws->index_cap = cap;
    for (size_t e = 0; e < ws->count; e++) ws->index[tag_slot(ws, ws->entries[e].tag)] = (uint32_t)e + 1;
    return true;
}

/* Empties index slot `i`, moving later entries of its probe run back
 * (backward-shift deletion keeps lookups free of tombstones). */
static void index_remove(shoal_waitset_t *ws, size_t i) {
    size_t mask = ws->index_cap - 1, j = i;
    ws->index[i] = 0;
    for (;;) {
        j = (j + 1) & mask;
        if (!ws->index[j]) return;
        size_t home = tag_hash(ws->entries[ws->index[j] - 1].tag, ws->index_cap);
        /* move j back to i unless its home lies cyclically in (i, j] */
        if (i <= j ? (home > i && home <= j) : (home > i || home <= j)) continue;
        ws->index[i] = ws->index[j];
        ws->index[j] = 0;
        i = j;
    }
}

static void detach_at(shoal_waitset_t *ws, size_t i) {
    port_base_t *b = ws->entries[i].port;
    atomic_store(&b->p->waitset, 0);
    b->waitset = NULL;
    index_remove(ws, tag_slot(ws, ws->entries[i].tag));
    size_t last = --ws->count;
    if (i != last) { /* the last entry fills the hole: repoint its index slot */
        ws->entries[i] = ws->entries[last];
        ws->index[tag_slot(ws, ws->entries[i].tag)] = (uint32_t)i + 1;
        ws->entries[i].port->ws_index = (uint32_t)i;
    }
}

SHOAL_API void shoal_waitset_destroy(shoal_waitset_t *ws) {
    if (!ws) return;
    if (ws->thread_started) {
        atomic_store(&ws->stop, 1);
        atomic_fetch_add(&ws->w->seq, 1);
        futex_wake(&ws->w->seq, 1 << 30);
        pthread_join(ws->thread, NULL);
    }
    pthread_mutex_lock(&ws->lock);
    while (ws->count) detach_at(ws, ws->count - 1);
    pthread_mutex_unlock(&ws->lock);
    atomic_store(&ws->w->in_use, 0);
    pthread_mutex_lock(&ws->rt->lock);
    ws->rt->waitset_words_used &= ~(1ull << ws->local_bit);
    ws->rt->waitsets[ws->local_bit] = NULL;
    pthread_mutex_unlock(&ws->rt->lock);
    if (ws->efd >= 0) close(ws->efd);
    pthread_mutex_destroy(&ws->lock);
    free(ws->index);
    free(ws->entries);
    free(ws);
}

void waitset_forget_port(port_base_t *b) {
    shoal_waitset_t *ws = b->waitset;
    if (!ws) return;
    pthread_mutex_lock(&ws->lock);
    if (b->ws_index < ws->count && ws->entries[b->ws_index].port == b) detach_at(ws, b->ws_index);
    pthread_mutex_unlock(&ws->lock);
}

static shoal_result_t attach(shoal_waitset_t *ws, port_base_t *b, uint64_t tag) {
    if (!ws || !b) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "NULL argument");
    if (b->rt != ws->rt)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "port and waitset belong to different runtimes");
    if (b->waitset)
        return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT,
                               "the port is already attached to a waitset; detach it first");
    pthread_mutex_lock(&ws->lock);
    size_t found;
    if (tag_find(ws, tag, &found)) {
        pthread_mutex_unlock(&ws->lock);
        return shoal_error_set(SHOAL_ERR_ALREADY_EXISTS, "tag %llu is already used in this waitset",
                               (unsigned long long)tag);
    }
    if (ws->count >= UINT32_MAX - 1 || !reserve_one(ws)) {
        pthread_mutex_unlock(&ws->lock);
        return shoal_error_set(SHOAL_ERR_NO_MEMORY, "out of memory for a waitset entry");
    }
    ws->entries[ws->count].port = b;
    ws->entries[ws->count].tag = tag;
    ws->index[tag_slot(ws, tag)] = (uint32_t)ws->count + 1;
    b->ws_index = (uint32_t)ws->count;
    ws->count++;
    b->waitset = ws;
    atomic_store(&b->p->waitset, ws->word + 1);
    pthread_mutex_unlock(&ws->lock);
    /* data that arrived before attaching must not be missed by the fd thread */
    atomic_fetch_add(&ws->w->seq, 1);
    futex_wake(&ws->w->seq, 1 << 30);
    return SHOAL_OK;
}

SHOAL_API shoal_result_t shoal_waitset_attach_subscriber(shoal_waitset_t *ws, shoal_subscriber_t *s,
                                                         uint64_t tag) {
    return attach(ws, s ? &s->b : NULL, tag);
}
SHOAL_API shoal_result_t shoal_waitset_attach_server(shoal_waitset_t *ws, shoal_server_t *s,
                                                     uint64_t tag) {
    return attach(ws, s ? &s->b : NULL, tag);
}
SHOAL_API shoal_result_t shoal_waitset_attach_client(shoal_waitset_t *ws, shoal_client_t *c,
                                                     uint64_t tag) {
    return attach(ws, c ? &c->b : NULL, tag);
}

SHOAL_API shoal_result_t shoal_waitset_detach(shoal_waitset_t *ws, uint64_t tag) {
    if (!ws) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "waitset is NULL");
    pthread_mutex_lock(&ws->lock);
    size_t i;
    if (tag_find(ws, tag, &i)) {
        detach_at(ws, i);
        pthread_mutex_unlock(&ws->lock);
        return SHOAL_OK;
    }
    pthread_mutex_unlock(&ws->lock);
    return shoal_error_set(SHOAL_ERR_NOT_FOUND, "no port with tag %llu in this waitset",
                           (unsigned long long)tag);
}

static size_t collect(shoal_waitset_t *ws, uint64_t *tags, size_t cap) {
    size_t n = 0;
    pthread_mutex_lock(&ws->lock);
    for (size_t i = 0; i < ws->count; i++)
        if (queue_depth(ws->entries[i].port->p) > 0) {
            if (tags && n < cap) tags[n] = ws->entries[i].tag;
            n++;
        }
    pthread_mutex_unlock(&ws->lock);
    return n;
}

void waitset_wake_all(shoal_waitset_t *ws) {
    atomic_fetch_add(&ws->w->seq, 1);
    futex_wake(&ws->w->seq, 1 << 30);
    pthread_mutex_lock(&ws->lock);
    if (ws->efd >= 0) { /* event loops wake and learn it from the next wait */
        uint64_t one = 1;
        ssize_t w = write(ws->efd, &one, sizeof one);
        (void)w;
    }
    pthread_mutex_unlock(&ws->lock);
}

static shoal_result_t ws_gone(const shoal_waitset_t *ws) {
    return shoal_error_set(SHOAL_ERR_DAEMON_UNAVAILABLE,
                           "the daemon of domain '%s' is gone; destroy this runtime and create a "
                           "new one once shoald runs again",
                           ws->rt->domain);
}

typedef struct ws_wait {
    shoal_waitset_t *ws;
    uint64_t *tags;
    size_t cap, n;
} ws_wait_t;

/* futex_wait_for's re-check for a wait: which attached ports have data. */
static bool ws_ready(void *arg) {
    ws_wait_t *w = arg;
    w->n = collect(w->ws, w->tags, w->cap);
    if (w->n) return true;
    if (w->ws->efd >= 0) {
        /* nothing ready: the event-loop fd goes quiet until new data */
        uint64_t v;
        ssize_t r = read(w->ws->efd, &v, sizeof v);
        (void)r;
    }
    return false;
}

SHOAL_API shoal_result_t shoal_waitset_wait(shoal_waitset_t *ws, uint64_t *tags, size_t cap,
                                            size_t *count, int64_t timeout_ns) {
    if (!ws) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "waitset is NULL");
    if (count) *count = 0;
    uint64_t deadline = shoal_deadline(timeout_ns);
    for (;;) {
        if (atomic_load(&ws->rt->map.dead)) return ws_gone(ws);
        ws_wait_t w = {ws, tags, cap, 0};
        int64_t left = shoal_remaining(deadline);
        if (futex_wait_for(&ws->w->seq, &ws->w->waiters, ws_ready, &w, left) == FUTEX_DONE) {
            if (count) *count = w.n < cap ? w.n : cap;
            return SHOAL_OK;
        }
        if (left == 0)
            return shoal_error_set(SHOAL_ERR_TIMEOUT, "no attached port had data within %lld ns",
                                   (long long)timeout_ns);
    }
}

/* futex_wait_for's re-check for the fd thread: readiness becomes an
 * eventfd signal; it sleeps on until something changes, or stops. */
static bool fd_signal(void *arg) {
    shoal_waitset_t *ws = arg;
    if (collect(ws, NULL, 0)) {
        struct pollfd pf = {.fd = ws->efd, .events = POLLIN};
        if (poll(&pf, 1, 0) == 0) {
            uint64_t one = 1;
            ssize_t w = write(ws->efd, &one, sizeof one);
            (void)w;
        }
    }
    return atomic_load(&ws->stop) != 0;
}

/* Turns futex wake-ups into eventfd readiness for poll/epoll users. */
static void *fd_thread(void *arg) {
    shoal_waitset_t *ws = arg;
    while (!atomic_load(&ws->stop) && !atomic_load(&ws->rt->map.dead))
        futex_wait_for(&ws->w->seq, &ws->w->waiters, fd_signal, ws, 100000000);
    return NULL;
}

SHOAL_API shoal_result_t shoal_waitset_fd(shoal_waitset_t *ws, int *fd) {
    if (!ws || !fd) return shoal_error_set(SHOAL_ERR_INVALID_ARGUMENT, "NULL argument");
    pthread_mutex_lock(&ws->lock); /* the monitor reads efd when the daemon dies */
    if (ws->efd < 0) {
        int efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
        if (efd < 0) {
            pthread_mutex_unlock(&ws->lock);
            return shoal_error_set(SHOAL_ERR_SYSTEM, "eventfd: %s", strerror(errno));
        }
        ws->efd = efd;
        /* the helper takes no signals: they belong to the application's threads */
        sigset_t all, old;
        sigfillset(&all);
        pthread_sigmask(SIG_SETMASK, &all, &old);
        int perr = pthread_create(&ws->thread, NULL, fd_thread, ws);
        pthread_sigmask(SIG_SETMASK, &old, NULL);
        if (perr != 0) {
            close(ws->efd);
            ws->efd = -1;
            pthread_mutex_unlock(&ws->lock);
            return shoal_error_set(SHOAL_ERR_SYSTEM, "cannot start the waitset fd thread");
        }
        ws->thread_started = 1;
    }
    *fd = ws->efd;
    pthread_mutex_unlock(&ws->lock);
    return SHOAL_OK;
}
