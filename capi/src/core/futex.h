/* Futex waits on words in shared memory (not FUTEX_PRIVATE: other
 * processes wake us) and monotonic time. */
#ifndef SHOAL_CORE_FUTEX_H
#define SHOAL_CORE_FUTEX_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

uint64_t shoal_now_ns(void);
/* Sleeps while *word == expected, at most timeout_ns (<0 forever).
 * Returns 0 when woken or the value differs, -1 on timeout, 1 when a signal
 * handler ran on this thread (EINTR). */
int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void futex_wake(_Atomic uint32_t *word, int count);

/* futex_wait_for's result when done() held: nothing slept. */
#define FUTEX_DONE 2

/* The sleeper's half of a wake-up word, whose waker changes `word` and
 * calls futex_wake only when `waiters` is non-zero: announce, fence, read
 * the word, re-check done(arg), sleep at most timeout_ns while the word is
 * unchanged (<0 forever, 0 not at all), retire. One round; the caller loops.
 * Returns FUTEX_DONE, or futex_wait's result (-1 also when timeout_ns is 0).
 * Inline so that a hot caller's done() inlines too. */
static inline int futex_wait_for(_Atomic uint32_t *word, _Atomic uint32_t *waiters,
                                 bool (*done)(void *), void *arg, int64_t timeout_ns) {
    atomic_fetch_add(waiters, 1);
    /* pairs with the waker's fence: it sees our count, or we see its change */
    atomic_thread_fence(memory_order_seq_cst);
    uint32_t seen = atomic_load(word);
    int r = done(arg) ? FUTEX_DONE : timeout_ns == 0 ? -1 : futex_wait(word, seen, timeout_ns);
    atomic_fetch_sub(waiters, 1);
    return r;
}

/* Deadline helpers: deadline 0 means poll, UINT64_MAX forever. */
uint64_t shoal_deadline(int64_t timeout_ns);
/* Remaining ns until the deadline (-1 forever, 0 passed). */
int64_t shoal_remaining(uint64_t deadline);

#endif
