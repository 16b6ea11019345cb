/* Futex waits on words in shared memory (not FUTEX_PRIVATE: other
 * processes wake us) and monotonic time. */
#ifndef SHOAL_CORE_FUTEX_H
#define SHOAL_CORE_FUTEX_H

#include <stdatomic.h>
#include <stdint.h>

uint64_t shoal_now_ns(void);
/* Sleeps while *word == expected, at most timeout_ns (<0 forever).
 * Returns 0 when woken or the value differs, -1 on timeout, 1 when a signal
 * handler ran on this thread (EINTR). */
int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns);
void futex_wake(_Atomic uint32_t *word, int count);

/* Deadline helpers: deadline 0 means poll, UINT64_MAX forever. */
uint64_t shoal_deadline(int64_t timeout_ns);
/* Remaining ns until the deadline (-1 forever, 0 passed). */
int64_t shoal_remaining(uint64_t deadline);

#endif
