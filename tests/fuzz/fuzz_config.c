/* libFuzzer harness: the daemon's config parser (capi/src/daemon/config.c).
 *
 * Each input is a config file. Checked on every input:
 *  - the buffer parser and the file parser (the same bytes in a memfd, read
 *    through /proc/self/fd) agree: same result, same message, same config;
 *  - a failure leaves the caller's config untouched and says where and how
 *    ("NAME:LINE: ... (...)" or "NAME: ... (...)");
 *  - a success obeys every documented bound (pools sorted, unique, sizes
 *    1..64G, counts 1..16M, each limit in its range, history <= capacity);
 *  - print -> parse gives the same configuration back;
 *  - shoal_config_parse_size() on the input as a string (when short). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "daemon/config.h"

#define CHECK(cond)                                                                          \
    do {                                                                                     \
        if (!(cond)) {                                                                       \
            fprintf(stderr, "fuzz_config: check failed at %s:%d: %s\n", __FILE__, __LINE__, \
                    #cond);                                                                  \
            abort();                                                                         \
        }                                                                                    \
    } while (0)

static int memfd = -1;
static char memfd_path[64];

static void check_bounds(const shoal_config_t *c) {
    CHECK(c->pool_count >= 1 && c->pool_count <= SHOAL_CONFIG_MAX_POOLS);
    for (uint32_t i = 0; i < c->pool_count; i++) {
        CHECK(c->pools[i].chunk_size >= 1 && c->pools[i].chunk_size <= (64ULL << 30));
        CHECK(c->pools[i].chunk_count >= 1 && c->pools[i].chunk_count <= 16777216u);
        if (i) CHECK(c->pools[i].chunk_size > c->pools[i - 1].chunk_size);
    }
    for (uint32_t i = c->pool_count; i < SHOAL_CONFIG_MAX_POOLS; i++)
        CHECK(c->pools[i].chunk_size == 0 && c->pools[i].chunk_count == 0);
    const shoal_config_limits_t *l = &c->limits;
    CHECK(l->processes >= 1 && l->processes <= 4096);
    CHECK(l->publishers >= 1 && l->publishers <= 65536);
    CHECK(l->subscribers >= 1 && l->subscribers <= 65536);
    CHECK(l->servers >= 1 && l->servers <= 65536);
    CHECK(l->clients >= 1 && l->clients <= 65536);
    CHECK(l->services >= 1 && l->services <= 65536);
    CHECK(l->chunks_per_port >= 1 && l->chunks_per_port <= 65536);
    CHECK(l->queue_capacity >= 1 && l->queue_capacity <= 65536);
    CHECK(l->waitsets_per_process >= 1 && l->waitsets_per_process <= 64);
    CHECK(l->history <= l->queue_capacity);
}

static void check_message(const char *err, const char *name) {
    size_t n = strlen(name);
    CHECK(strlen(err) < 1024);
    CHECK(strncmp(err, name, n) == 0 && err[n] == ':');
    CHECK(strchr(err + n, '(') != NULL); /* every message says how to fix it */
}

static void round_trip(const shoal_config_t *in) {
    char *text = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);
    CHECK(f != NULL);
    shoal_config_print(in, f);
    CHECK(fclose(f) == 0);
    static shoal_config_t out;
    char err[1024];
    int rc = shoal_config_parse(&out, "printed", text, len, err, sizeof err);
    if (rc != 0) fprintf(stderr, "re-parse failed: %s\n--- printed ---\n%s\n", err, text);
    CHECK(rc == 0);
    CHECK(memcmp(&out.limits, &in->limits, sizeof in->limits) == 0);
    CHECK(out.pool_count == in->pool_count);
    CHECK(memcmp(out.pools, in->pools, sizeof out.pools) == 0);
    /* [access]: the same entries and patterns (lines differ) */
    const shoal_config_access_t *a = &in->access, *b = &out.access;
    CHECK(!a->line == !b->line);
    CHECK(a->users.count == b->users.count && a->users.anyone == b->users.anyone);
    CHECK(memcmp(a->users.ids, b->users.ids, sizeof a->users.ids) == 0);
    CHECK(a->groups.count == b->groups.count);
    CHECK(memcmp(a->groups.ids, b->groups.ids, sizeof a->groups.ids) == 0);
    CHECK(!a->socket_group_line == !b->socket_group_line);
    CHECK(memcmp(&a->socket_group, &b->socket_group, sizeof a->socket_group) == 0);
    CHECK(a->rule_count == b->rule_count);
    for (uint32_t i = 0; i < a->rule_count; i++) {
        CHECK(a->rules[i].type == b->rules[i].type);
        CHECK(strcmp(a->rules[i].pattern, b->rules[i].pattern) == 0);
        for (int w = 0; w < 2; w++) {
            const shoal_access_rule_list_t *x = &a->rules[i].allow[w], *y = &b->rules[i].allow[w];
            CHECK(!x->line == !y->line && x->anyone == y->anyone && x->count == y->count);
            CHECK(memcmp(x->ids, y->ids, sizeof x->ids) == 0);
        }
    }
    free(text);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
    (void)argc;
    (void)argv;
    memfd = memfd_create("fuzz-config", MFD_CLOEXEC);
    if (memfd < 0) {
        perror("memfd_create");
        exit(1);
    }
    snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static shoal_config_t a, b, sentinel;
    char err_a[1024], err_b[1024];
    if (size > 1 << 16) return -1; /* long files only slow the search down */

    memset(&sentinel, 0x5a, sizeof sentinel);
    memcpy(&a, &sentinel, sizeof a);
    memcpy(&b, &sentinel, sizeof b);
    int ra = shoal_config_parse(&a, memfd_path, (const char *)data, size, err_a, sizeof err_a);

    /* the same bytes as a file */
    CHECK(ftruncate(memfd, 0) == 0);
    CHECK(size == 0 || pwrite(memfd, data, size, 0) == (ssize_t)size);
    int rb = shoal_config_load(&b, memfd_path, err_b, sizeof err_b);
    if (ra != rb || strcmp(err_a, err_b) != 0)
        fprintf(stderr, "buffer: %d '%s'\nfile:   %d '%s'\n", ra, err_a, rb, err_b);
    CHECK(ra == rb);
    CHECK(strcmp(err_a, err_b) == 0);
    CHECK(memcmp(&a, &b, sizeof a) == 0);

    if (ra != 0) {
        CHECK(ra == -1);
        CHECK(memcmp(&a, &sentinel, sizeof a) == 0); /* a failed load touches nothing */
        check_message(err_a, memfd_path);
    } else {
        CHECK(err_a[0] == '\0');
        CHECK(strcmp(a.source, memfd_path) == 0);
        check_bounds(&a);
        round_trip(&a);
    }

    /* sizes: accepted values are what the digits and the suffix say */
    if (size < 48) {
        char s[48];
        memcpy(s, data, size);
        s[size] = '\0';
        uint64_t v = 0x1234;
        if (shoal_config_parse_size(s, &v) != 0) CHECK(v == 0x1234);
    }
    return 0;
}
