#include "core/futex.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

uint64_t shoal_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int futex_wait(_Atomic uint32_t *word, uint32_t expected, int64_t timeout_ns) {
    struct timespec ts, *tp = NULL;
    if (timeout_ns >= 0) {
        ts.tv_sec = timeout_ns / 1000000000;
        ts.tv_nsec = timeout_ns % 1000000000;
        tp = &ts;
    }
    long r = syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT, expected, tp, NULL, 0);
    if (r == -1 && errno == ETIMEDOUT) return -1;
    if (r == -1 && errno == EINTR) return 1;
    return 0;
}

void futex_wake(_Atomic uint32_t *word, int count) {
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE, count, NULL, NULL, 0);
}

uint64_t shoal_deadline(int64_t timeout_ns) {
    if (timeout_ns < 0) return UINT64_MAX;
    if (timeout_ns == 0) return 0;
    return shoal_now_ns() + (uint64_t)timeout_ns;
}

int64_t shoal_remaining(uint64_t deadline) {
    if (deadline == UINT64_MAX) return -1;
    if (deadline == 0) return 0; /* a poll never reads the clock */
    uint64_t now = shoal_now_ns();
    return now >= deadline ? 0 : (int64_t)(deadline - now);
}
