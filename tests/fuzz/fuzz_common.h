/* Small helpers shared by the harnesses: checks that abort (libFuzzer then
 * saves the input), an input reader that yields zeros once exhausted, and a
 * count of this process's open file descriptors. */
#ifndef SHOAL_FUZZ_COMMON_H
#define SHOAL_FUZZ_COMMON_H

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FUZZ_CHECK(cond, ...)                                                            \
    do {                                                                                 \
        if (!(cond)) {                                                                   \
            fprintf(stderr, "%s:%d: check failed: %s: ", __FILE__, __LINE__, #cond);     \
            fprintf(stderr, __VA_ARGS__);                                                \
            fprintf(stderr, "\n");                                                       \
            abort();                                                                     \
        }                                                                                \
    } while (0)

typedef struct fuzz_in {
    const uint8_t *p;
    size_t n;
} fuzz_in_t;

static inline uint8_t in_u8(fuzz_in_t *in) {
    if (!in->n) return 0;
    in->n--;
    return *in->p++;
}
static inline uint16_t in_u16(fuzz_in_t *in) {
    uint16_t lo = in_u8(in);
    return (uint16_t)(lo | (uint16_t)in_u8(in) << 8);
}
static inline uint32_t in_u32(fuzz_in_t *in) {
    uint32_t lo = in_u16(in);
    return lo | (uint32_t)in_u16(in) << 16;
}
static inline uint64_t in_u64(fuzz_in_t *in) {
    uint64_t lo = in_u32(in);
    return lo | (uint64_t)in_u32(in) << 32;
}
/* Copies up to n bytes, zero-filling what the input no longer has. */
static inline void in_bytes(fuzz_in_t *in, void *out, size_t n) {
    size_t k = n < in->n ? n : in->n;
    memcpy(out, in->p, k);
    memset((uint8_t *)out + k, 0, n - k);
    in->p += k;
    in->n -= k;
}

/* Lists the open descriptors on stderr (after a leak was found). */
static inline void fuzz_list_fds(void) {
    DIR *d = opendir("/proc/self/fd");
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (e->d_name[0] == '.') continue;
        char path[300], target[256];
        snprintf(path, sizeof path, "/proc/self/fd/%s", e->d_name);
        ssize_t n = readlink(path, target, sizeof target - 1);
        target[n > 0 ? n : 0] = '\0';
        fprintf(stderr, "  fd %s -> %s\n", e->d_name, target);
    }
    closedir(d);
}

/* Open descriptors below `limit`, pipes aside (libFuzzer talks to its
 * symbolizer through pipes it opens when it first needs one). */
static inline int fuzz_count_low_fds(int limit) {
    int n = 0;
    for (int fd = 0; fd < limit; fd++) {
        struct stat st;
        if (fcntl(fd, F_GETFD) >= 0 && fstat(fd, &st) == 0 && !S_ISFIFO(st.st_mode)) n++;
    }
    return n;
}

#endif
