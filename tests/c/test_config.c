/* Tests for the daemon config parser: good files, every class of bad file
 * (message must name FILE:LINE and the offending key), defaults, sizes and
 * the print -> load round trip. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"

#define KIB 1024ULL
#define MIB (1024ULL * KIB)
#define GIB (1024ULL * MIB)

static char tmpdir[256];
static char path[512];
static char err[1024];

static int setup(void **state) {
    (void)state;
    snprintf(tmpdir, sizeof tmpdir, "/tmp/shoal-test-config-XXXXXX");
    if (!mkdtemp(tmpdir)) return -1;
    snprintf(path, sizeof path, "%s/shoal.conf", tmpdir);
    return 0;
}

static int teardown(void **state) {
    (void)state;
    unlink(path);
    return rmdir(tmpdir);
}

static void write_file(const char *text) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

/* Writes `text`, loads it, expects success. */
static void load_ok(shoal_config_t *cfg, const char *text) {
    write_file(text);
    err[0] = '\0';
    int rc = shoal_config_load(cfg, path, err, sizeof err);
    if (rc != 0) print_error("unexpected failure: %s\n", err);
    assert_int_equal(rc, 0);
    assert_string_equal(err, "");
}

/* Writes `text`, expects failure whose message starts with "path:line: " and
 * contains every non-NULL needle. */
static void load_bad(const char *text, unsigned line, const char *needle1, const char *needle2) {
    shoal_config_t cfg;
    shoal_config_defaults(&cfg);
    cfg.limits.processes = 7; /* sentinel: a failed load must not touch cfg */
    write_file(text);
    err[0] = '\0';
    int rc = shoal_config_load(&cfg, path, err, sizeof err);
    if (rc == 0) print_error("expected failure for:\n%s\n", text);
    assert_int_equal(rc, -1);
    assert_int_equal(cfg.limits.processes, 7);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:%u: ", path, line);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        print_error("message '%s' does not start with '%s'\n", err, prefix);
    assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
    if (needle1 && !strstr(err, needle1)) print_error("'%s' not in '%s'\n", needle1, err);
    if (needle1) assert_non_null(strstr(err, needle1));
    if (needle2 && !strstr(err, needle2)) print_error("'%s' not in '%s'\n", needle2, err);
    if (needle2) assert_non_null(strstr(err, needle2));
    /* every message says how to fix it, in parentheses */
    assert_non_null(strchr(err, '('));
}

/* ---- defaults -------------------------------------------------------------- */

static void test_defaults(void **state) {
    (void)state;
    shoal_config_t cfg;
    memset(&cfg, 0xAB, sizeof cfg);
    shoal_config_defaults(&cfg);
    assert_int_equal(cfg.limits.processes, 128);
    assert_int_equal(cfg.limits.publishers, 1024);
    assert_int_equal(cfg.limits.subscribers, 1024);
    assert_int_equal(cfg.limits.servers, 1024);
    assert_int_equal(cfg.limits.clients, 1024);
    assert_int_equal(cfg.limits.services, 1024);
    assert_int_equal(cfg.limits.chunks_per_port, 64);
    assert_int_equal(cfg.limits.queue_capacity, 256);
    assert_int_equal(cfg.limits.history, 16);
    static const uint64_t sizes[] = {64, KIB, 16 * KIB, 256 * KIB, MIB, 16 * MIB};
    static const uint32_t counts[] = {4096, 1024, 256, 64, 32, 8};
    assert_int_equal(cfg.pool_count, 6);
    for (unsigned i = 0; i < 6; i++) {
        assert_int_equal(cfg.pools[i].chunk_size, sizes[i]);
        assert_int_equal(cfg.pools[i].chunk_count, counts[i]);
    }
    assert_string_equal(cfg.source, "(built-in defaults)");
}

/* ---- sizes -------------------------------------------------------------------- */

static void test_parse_size(void **state) {
    (void)state;
    static const struct {
        const char *text;
        uint64_t value;
    } good[] = {
        {"0", 0},           {"64", 64},         {"4K", 4 * KIB},     {"4k", 4 * KIB},
        {"1M", MIB},        {"1m", MIB},        {"1G", GIB},         {"4G", 4 * GIB},
        {"1200M", 1200 * MIB}, {"64G", 64 * GIB}, {"1KiB", KIB},   {"2MiB", 2 * MIB},
        {"3GiB", 3 * GIB},  {"1kib", KIB},      {"1 M", MIB},        {" 16K ", 16 * KIB},
    };
    for (unsigned i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t v = 12345;
        if (shoal_config_parse_size(good[i].text, &v) != 0) print_error("rejected '%s'\n", good[i].text);
        assert_int_equal(shoal_config_parse_size(good[i].text, &v), 0);
        assert_int_equal(v, good[i].value);
    }
    uint64_t v;
    assert_int_equal(shoal_config_parse_size("18446744073709551615", &v), 0);
    assert_true(v == UINT64_MAX);
    static const char *bad[] = {
        "", "   ", "K", "-1", "+1", "1.5M", "1T", "1KB", "1MB", "0x10", "1 2", "1Ki", "1Kib5",
        "18446744073709551616", "17179869184G", "16777216T", "99999999999999999999999",
    };
    for (unsigned i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        v = 777;
        if (shoal_config_parse_size(bad[i], &v) == 0) print_error("accepted '%s'\n", bad[i]);
        assert_int_equal(shoal_config_parse_size(bad[i], &v), -1);
        assert_int_equal(v, 777); /* untouched on failure */
    }
    assert_int_equal(shoal_config_parse_size(NULL, &v), -1);
    assert_int_equal(shoal_config_parse_size("1", NULL), -1);
}

/* ---- good files ------------------------------------------------------------------ */

static void test_good_full(void **state) {
    (void)state;
    shoal_config_t cfg;
    load_ok(&cfg,
            "# a full file\n"
            "\n"
            "[limits]\n"
            "processes = 4096\n"
            "publishers=1\n"
            "\tsubscribers\t=\t65536   # trailing comment\n"
            "   servers = 2048\n"
            "clients = 3\n"
            "services = 5\n"
            "chunks_per_port = 65536\n"
            "queue_capacity = 100\n"
            "history = 100\n"
            "\n"
            "  [pools]   # comment after a header\n"
            "# sizes in any order; sorted on load\n"
            "4G = 1\n"
            "1200M = 2\n"
            "64 = 16777216\n"
            "1KiB = 10\n"
            "16k = 3\n");
    assert_int_equal(cfg.limits.processes, 4096);
    assert_int_equal(cfg.limits.publishers, 1);
    assert_int_equal(cfg.limits.subscribers, 65536);
    assert_int_equal(cfg.limits.servers, 2048);
    assert_int_equal(cfg.limits.clients, 3);
    assert_int_equal(cfg.limits.services, 5);
    assert_int_equal(cfg.limits.chunks_per_port, 65536);
    assert_int_equal(cfg.limits.queue_capacity, 100);
    assert_int_equal(cfg.limits.history, 100);
    assert_int_equal(cfg.pool_count, 5);
    assert_int_equal(cfg.pools[0].chunk_size, 64);
    assert_int_equal(cfg.pools[0].chunk_count, 16777216);
    assert_int_equal(cfg.pools[1].chunk_size, KIB);
    assert_int_equal(cfg.pools[2].chunk_size, 16 * KIB);
    assert_int_equal(cfg.pools[3].chunk_size, 1200 * MIB);
    assert_int_equal(cfg.pools[3].chunk_count, 2);
    assert_int_equal(cfg.pools[4].chunk_size, 4 * GIB);
    assert_int_equal(cfg.pools[4].chunk_count, 1);
    assert_string_equal(cfg.source, path);
}

static void test_good_partial_keeps_defaults(void **state) {
    (void)state;
    shoal_config_t cfg, def;
    shoal_config_defaults(&def);
    /* only limits: default pools stay */
    load_ok(&cfg, "[limits]\nservers = 4000\n");
    assert_int_equal(cfg.limits.servers, 4000);
    assert_int_equal(cfg.limits.clients, def.limits.clients);
    assert_int_equal(cfg.pool_count, def.pool_count);
    assert_memory_equal(cfg.pools, def.pools, sizeof def.pools);
    /* only pools: they replace the defaults */
    load_ok(&cfg, "[pools]\n1G = 2\r\n");
    assert_int_equal(cfg.pool_count, 1);
    assert_int_equal(cfg.pools[0].chunk_size, GIB);
    assert_int_equal(cfg.pools[0].chunk_count, 2);
    assert_memory_equal(&cfg.limits, &def.limits, sizeof def.limits);
    /* empty file and comments only: all defaults */
    load_ok(&cfg, "");
    assert_memory_equal(&cfg.limits, &def.limits, sizeof def.limits);
    assert_int_equal(cfg.pool_count, def.pool_count);
    load_ok(&cfg, "# nothing\n   # more nothing\n\n");
    assert_int_equal(cfg.pool_count, def.pool_count);
    /* history may equal queue_capacity and be 0; no final newline */
    load_ok(&cfg, "[limits]\nqueue_capacity = 1\nhistory = 0");
    assert_int_equal(cfg.limits.queue_capacity, 1);
    assert_int_equal(cfg.limits.history, 0);
    /* 64 pools is the maximum */
    char text[4096] = "[pools]\n";
    for (int i = 1; i <= SHOAL_CONFIG_MAX_POOLS; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dK = 1\n", i);
        strcat(text, l);
    }
    load_ok(&cfg, text);
    assert_int_equal(cfg.pool_count, SHOAL_CONFIG_MAX_POOLS);
    assert_int_equal(cfg.pools[63].chunk_size, 64 * KIB);
}

/* ---- bad files --------------------------------------------------------------------- */

static void test_bad_sections(void **state) {
    (void)state;
    load_bad("[limits]\n[poools]\n", 2, "[poools]", "[pools]");
    load_bad("\n[limits\nservers = 1\n", 2, "[limits", "]");
    load_bad("[limits] x\n", 1, "'x'", "[limits]");
    load_bad("[limits]\nservers = 1\n[limits]\n", 3, "[limits]", "line 1");
    load_bad("servers = 1\n", 1, "'servers'", "[limits]");
    /* a [pools] section with no pools, even with comments in it */
    load_bad("[limits]\n\n[pools]\n# none\n[limits2]\n", 5, "[limits2]", NULL);
    load_bad("[limits]\nservers = 5\n[pools] # empty\n# nothing\n", 3, "[pools]", "no pools");
}

static void test_bad_limits(void **state) {
    (void)state;
    load_bad("[limits]\nservrs = 10\n", 2, "'servrs'", "servers");
    load_bad("[limits]\nfoo = 10\n", 2, "'foo'", "processes");
    /* duplicated key: names both lines */
    load_bad("[limits]\nservers = 10\n\nservers = 11\n", 4, "'servers'", "line 2");
    /* missing '=' */
    load_bad("[limits]\nservers 10\n", 2, "servers 10", "=");
    /* empty value */
    load_bad("[limits]\nservers =   # nothing\n", 2, "'servers'", "empty");
    load_bad("[limits]\n = 10\n", 2, "missing key", NULL);
    /* trailing garbage */
    load_bad("[limits]\nservers = 10 x\n", 2, "servers", "10 x");
    load_bad("[limits]\nservers = 10K\n", 2, "servers", "whole number");
    load_bad("[limits]\nservers = 1 = 2\n", 2, "servers", "'='");
    load_bad("[limits]\nservers = -1\n", 2, "servers", "1..65536");
    load_bad("[limits]\nservers = 0x10\n", 2, "servers", NULL);
    /* overflow and ranges */
    load_bad("[limits]\nservers = 99999999999999999999999\n", 2, "servers", "1..65536");
    load_bad("[limits]\nservers = 4294967297\n", 2, "servers", "1..65536");
    load_bad("[limits]\nservers = 0\n", 2, "limits.servers", "1..65536");
    load_bad("[limits]\nservers = 65537\n", 2, "limits.servers", "1..65536");
    load_bad("[limits]\npublishers = 0\n", 2, "limits.publishers", NULL);
    load_bad("[limits]\nsubscribers = 70000\n", 2, "limits.subscribers", NULL);
    load_bad("[limits]\nclients = 0\n", 2, "limits.clients", NULL);
    load_bad("[limits]\nservices = 65537\n", 2, "limits.services", NULL);
    load_bad("[limits]\nprocesses = 4097\n", 2, "limits.processes", "1..4096");
    load_bad("[limits]\nprocesses = 0\n", 2, "limits.processes", "1..4096");
    load_bad("[limits]\nchunks_per_port = 0\n", 2, "limits.chunks_per_port", NULL);
    load_bad("[limits]\nqueue_capacity = 65537\n", 2, "limits.queue_capacity", NULL);
    /* history against queue_capacity, in either order */
    load_bad("[limits]\nhistory = 300\n", 2, "limits.history", "queue_capacity");
    load_bad("[limits]\nhistory = 20\nqueue_capacity = 10\n", 2, "limits.history", "0..10");
    load_bad("[limits]\nqueue_capacity = 8\n", 2, "limits.history", "queue_capacity");
}

static void test_bad_pools(void **state) {
    (void)state;
    /* duplicated sizes, also when spelled differently */
    load_bad("[pools]\n1K = 1\n2K = 1\n1024 = 5\n", 4, "'1024'", "line 2");
    load_bad("[pools]\n1M = 1\n1MiB = 1\n", 3, "'1MiB'", "line 2");
    load_bad("[pools]\n1K 5\n", 2, "1K 5", "=");
    load_bad("[pools]\n1K =\n", 2, "'1K'", "empty");
    load_bad("[pools]\n1K = 5 5\n", 2, "1K", "5 5");
    load_bad("[pools]\n1.5K = 5\n", 2, "'1.5K'", "K, M or G");
    load_bad("[pools]\n1KB = 5\n", 2, "'1KB'", NULL);
    load_bad("[pools]\nbig = 5\n", 2, "'big'", "not a number");
    load_bad("[pools]\n0 = 5\n", 2, "chunk size", "1..64G");
    load_bad("[pools]\n65G = 1\n", 2, "'65G'", "1..64G");
    load_bad("[pools]\n99999999999999999999 = 1\n", 2, "'99999999999999999999'", "1..64G");
    load_bad("[pools]\n17179869184G = 1\n", 2, "'17179869184G'", "1..64G");
    load_bad("[pools]\n1K = 0\n", 2, "1K", "1..16777216");
    load_bad("[pools]\n1K = 16777217\n", 2, "1K", "1..16777216");
    load_bad("[pools]\n1K = 99999999999999999999999\n", 2, "1K", "1..16777216");
    load_bad("[pools]\n1K = 1M\n", 2, "1K", "1..16777216");
    char text[4096] = "[pools]\n";
    for (int i = 1; i <= SHOAL_CONFIG_MAX_POOLS + 1; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dK = 1\n", i);
        strcat(text, l);
    }
    load_bad(text, SHOAL_CONFIG_MAX_POOLS + 2, "too many pools", "64");
}

static void test_bad_binary_and_missing(void **state) {
    (void)state;
    /* a NUL byte in a line */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fwrite("[limits]\nser\0vers = 1\n", 1, 22, f);
    fclose(f);
    shoal_config_t cfg;
    assert_int_equal(shoal_config_load(&cfg, path, err, sizeof err), -1);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:2: ", path);
    assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);

    /* missing file names the path and the reason */
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope.conf", tmpdir);
    assert_int_equal(shoal_config_load(&cfg, missing, err, sizeof err), -1);
    assert_non_null(strstr(err, missing));
    assert_non_null(strstr(err, "No such file"));

    /* a tiny error buffer is still terminated */
    char small[8];
    write_file("[bogus]\n");
    assert_int_equal(shoal_config_load(&cfg, path, small, sizeof small), -1);
    assert_int_equal(strlen(small), 7);
    assert_int_equal(shoal_config_load(&cfg, path, NULL, 0), -1);
}

/* ---- the buffer entry point (fuzzing, tools): same results as a file ---- */

static void test_parse_buffer(void **state) {
    (void)state;
    shoal_config_t a, b;
    /* not NUL-terminated: the length decides, a later byte is never read */
    const char text[] = "[limits]\nservers = 7\n[pools]\n1K = 3X";
    assert_int_equal(shoal_config_parse(&a, "mem", text, sizeof text - 2, err, sizeof err), 0);
    assert_string_equal(err, "");
    assert_int_equal(a.limits.servers, 7);
    assert_int_equal(a.pool_count, 1);
    assert_int_equal(a.pools[0].chunk_count, 3);
    assert_string_equal(a.source, "mem");
    load_ok(&b, "[limits]\nservers = 7\n[pools]\n1K = 3");
    assert_memory_equal(&a.limits, &b.limits, sizeof a.limits);
    assert_memory_equal(a.pools, b.pools, sizeof a.pools);
    /* errors name the buffer and the line, a NUL byte included */
    shoal_config_defaults(&a);
    assert_int_equal(shoal_config_parse(&a, "mem", "[limits]\nser\0vers = 1\n", 22, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "mem:2: ", 7), 0);
    assert_int_equal(shoal_config_parse(&a, NULL, "[x]\n", 4, err, sizeof err), -1);
    assert_int_equal(strncmp(err, "(config):1: ", 12), 0);
    assert_int_equal(a.limits.servers, 1024); /* untouched by failures */
    /* empty input: the defaults */
    assert_int_equal(shoal_config_parse(&a, "mem", NULL, 0, err, sizeof err), 0);
    shoal_config_defaults(&b);
    assert_memory_equal(&a.limits, &b.limits, sizeof a.limits);
}

/* ---- print -> load round trip --------------------------------------------------------- */

static void round_trip(const shoal_config_t *in) {
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    shoal_config_print(in, f);
    assert_int_equal(fclose(f), 0);
    shoal_config_t out;
    int rc = shoal_config_load(&out, path, err, sizeof err);
    if (rc != 0) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    assert_memory_equal(&out.limits, &in->limits, sizeof in->limits);
    assert_int_equal(out.pool_count, in->pool_count);
    assert_memory_equal(out.pools, in->pools, sizeof(in->pools[0]) * in->pool_count);
}

static void test_round_trip(void **state) {
    (void)state;
    shoal_config_t cfg;
    shoal_config_defaults(&cfg);
    round_trip(&cfg);

    /* the printed defaults use suffixes where exact */
    FILE *f = fopen(path, "w");
    shoal_config_print(&cfg, f);
    fclose(f);
    f = fopen(path, "r");
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "[limits]"));
    assert_non_null(strstr(text, "[pools]"));
    assert_non_null(strstr(text, "\n1M = 32"));
    assert_non_null(strstr(text, "\n16M = 8"));
    assert_non_null(strstr(text, "\n64 = 4096"));
    assert_non_null(strstr(text, "(built-in defaults)"));

    /* odd sizes and extreme limits */
    load_ok(&cfg, "[limits]\nprocesses = 1\nqueue_capacity = 65536\nhistory = 65536\n"
                  "[pools]\n1 = 1\n1536 = 3\n1200M = 2\n64G = 1\n1025K = 16777216\n");
    round_trip(&cfg);

    /* a source path with a newline must not break the printed comment */
    snprintf(cfg.source, sizeof cfg.source, "evil\n[bogus]\n");
    round_trip(&cfg);
}

/* ---- limits.memory_share and the machine check ------------------------------------ */

static void test_memory_share_key(void **state) {
    (void)state;
    shoal_config_t cfg;
    shoal_config_defaults(&cfg);
    assert_int_equal(cfg.limits.memory_share, 50);
    load_ok(&cfg, "[limits]\nmemory_share = 25%\n");
    assert_int_equal(cfg.limits.memory_share, 25);
    assert_int_equal(cfg.limit_line.memory_share, 2);
    load_ok(&cfg, "[limits]\n\nmemory_share = 100 %  # all of it\n");
    assert_int_equal(cfg.limits.memory_share, 100);
    assert_int_equal(cfg.limit_line.memory_share, 3);
    load_ok(&cfg, "[limits]\nmemory_share = 1\n");
    assert_int_equal(cfg.limits.memory_share, 1);
    load_bad("[limits]\nmemory_share = 0%\n", 2, "limits.memory_share", "1..100%");
    load_bad("[limits]\nmemory_share = 101%\n", 2, "limits.memory_share", "1..100%");
    load_bad("[limits]\nmemory_share = half\n", 2, "memory_share", "1..100%");
    load_bad("[limits]\nmemory_share = 50%%\n", 2, "memory_share", NULL);
    load_bad("[limits]\nmemory_shar = 50%\n", 2, "'memory_shar'", "memory_share");
    /* printed with its '%', and parsed back */
    load_ok(&cfg, "[limits]\nmemory_share = 75%\n");
    round_trip(&cfg);
    FILE *f = fopen(path, "w");
    shoal_config_print(&cfg, f);
    fclose(f);
    f = fopen(path, "r");
    char text[8192];
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    assert_non_null(strstr(text, "\nmemory_share = 75%"));
    assert_non_null(strstr(text, "# management segment: "));
    assert_non_null(strstr(text, "64 bytes per chunk"));
}

/* Lines survive the sort by chunk size. */
static void test_lines_kept(void **state) {
    (void)state;
    shoal_config_t cfg;
    load_ok(&cfg, "[limits]\nservers = 8\n\n[pools]\n16K = 2\n64 = 3\n1K = 4\n");
    assert_int_equal(cfg.limit_line.servers, 2);
    assert_int_equal(cfg.limit_line.clients, 0);
    assert_int_equal(cfg.pools[0].chunk_size, 64);
    assert_int_equal(cfg.pool_line[0], 6);
    assert_int_equal(cfg.pools[1].chunk_size, KIB);
    assert_int_equal(cfg.pool_line[1], 7);
    assert_int_equal(cfg.pools[2].chunk_size, 16 * KIB);
    assert_int_equal(cfg.pool_line[2], 5);
}

/* The cost is the layout the daemon creates: 64 bytes per chunk header in the
 * management segment, payload segments page-rounded. */
static void test_cost(void **state) {
    (void)state;
    shoal_config_t cfg;
    shoal_config_defaults(&cfg);
    shoal_config_cost_t c;
    assert_int_equal(shoal_config_cost(&cfg, &c), 0);
    shm_layout_params_t lp;
    shm_header_t h;
    shoal_config_layout_params(&cfg, &lp);
    assert_int_equal(shm_layout(&lp, &h), 0);
    assert_int_equal(c.mgmt_bytes, h.mgmt_size);
    assert_int_equal(sizeof(shm_chunk_t), 64);
    assert_int_equal(c.chunk_total, 4096 + 1024 + 256 + 64 + 32 + 8);
    assert_int_equal(c.chunk_headers, c.chunk_total * 64);
    assert_int_equal(c.port_slots, 4 * 1024);
    assert_int_equal(c.port_bytes, (uint64_t)c.port_slots * h.port_stride);
    /* a port: its struct, 256 queue cells of 16 bytes, 64 held slots, 16 history slots */
    assert_true(c.port_stride >= 256 * 16 + 64 * 8 + 16 * 8 + sizeof(shm_port_t));
    assert_true(c.port_stride < 256 * 16 + 64 * 8 + 16 * 8 + sizeof(shm_port_t) + 4 * 64);
    assert_true(c.mgmt_bytes > c.chunk_headers + c.port_bytes);
    assert_int_equal(c.payload_bytes, 256 * KIB + MIB + 4 * MIB + 16 * MIB + 32 * MIB + 128 * MIB);
    /* each chunk costs its header: 64 more chunks, one more page */
    load_ok(&cfg, "[pools]\n64 = 4096\n");
    shoal_config_cost_t c1, c2;
    assert_int_equal(shoal_config_cost(&cfg, &c1), 0);
    load_ok(&cfg, "[pools]\n64 = 4160\n");
    assert_int_equal(shoal_config_cost(&cfg, &c2), 0);
    assert_int_equal(c2.mgmt_bytes - c1.mgmt_bytes, 64 * 64);
    assert_int_equal(c2.payload_bytes - c1.payload_bytes, 64 * 64);
    /* odd chunk sizes are strided to 64 bytes, segments rounded to pages */
    load_ok(&cfg, "[pools]\n100 = 3\n");
    assert_int_equal(shoal_config_cost(&cfg, &c), 0);
    assert_int_equal(c.pool_bytes[0], 4096);
    /* 16 EiB and more: flagged, not wrapped */
    char text[4096] = "[pools]\n";
    for (int i = 1; i <= SHOAL_CONFIG_MAX_POOLS; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dG = 16777216\n", i);
        strcat(text, l);
    }
    load_ok(&cfg, text);
    assert_int_equal(shoal_config_cost(&cfg, &c), -1);
    assert_true(c.overflow);
    assert_true(c.payload_bytes == UINT64_MAX);
    assert_true(c.mgmt_bytes == 64 * GIB + (c.mgmt_bytes - c.chunk_headers));
    assert_int_equal(c.chunk_total, 64ULL * 16777216);
}

/* Expects the machine check to refuse with "path:line: " and the needles. */
static void check_refused(const shoal_config_t *cfg, const shoal_machine_t *m, unsigned line,
                          const char *const *needles) {
    err[0] = '\0';
    int rc = shoal_config_check_machine(cfg, m, err, sizeof err);
    if (rc == 0) print_error("expected the machine check to refuse\n");
    assert_int_equal(rc, -1);
    char prefix[600];
    if (line) snprintf(prefix, sizeof prefix, "%s:%u: ", path, line);
    else snprintf(prefix, sizeof prefix, "%s: ", cfg->source);
    if (strncmp(err, prefix, strlen(prefix)) != 0)
        print_error("message '%s' does not start with '%s'\n", err, prefix);
    assert_int_equal(strncmp(err, prefix, strlen(prefix)), 0);
    for (int i = 0; needles[i]; i++) {
        if (!strstr(err, needles[i])) print_error("'%s' not in '%s'\n", needles[i], err);
        assert_non_null(strstr(err, needles[i]));
    }
    assert_true(strlen(err) < sizeof err - 1); /* not truncated */
}

static const shoal_machine_t MACHINE_16G = {16 * GIB, 1ULL << 47, UINT64_MAX};

static void test_machine_memory(void **state) {
    (void)state;
    shoal_config_t cfg;
    char want[64];
    /* the defaults fit a small machine, and this one */
    shoal_config_defaults(&cfg);
    shoal_machine_t small = {256 * MIB, 1ULL << 47, UINT64_MAX};
    assert_int_equal(shoal_config_check_machine(&cfg, &small, err, sizeof err), 0);
    assert_string_equal(err, "");
    shoal_machine_t here;
    shoal_machine_probe(&here);
    assert_true(here.phys_bytes > 0);
    assert_true(here.addr_bytes == 1ULL << 47);
    assert_int_equal(shoal_config_check_machine(&cfg, &here, err, sizeof err), 0);
    /* ... but not a tiny one: no line to blame, the source names the defaults */
    shoal_machine_t tiny = {32 * MIB, 1ULL << 47, UINT64_MAX};
    static const char *const tiny_needles[] = {"(built-in defaults): ", "32 MiB of physical memory",
                                               "limits.memory_share = 50%", "16 MiB (16777216 bytes)",
                                               "raise limits.memory_share", NULL};
    check_refused(&cfg, &tiny, 0, tiny_needles);

    /* the config: 64 pools of 16M chunks, 64 GiB of chunk headers */
    char text[4096] = "# the issue\n[pools]\n";
    for (int i = 1; i <= SHOAL_CONFIG_MAX_POOLS; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dG = 16777216\n", i);
        strcat(text, l);
    }
    load_ok(&cfg, text);
    shoal_config_cost_t c;
    shoal_config_cost(&cfg, &c);
    char needed[64];
    snprintf(needed, sizeof needed, "(%llu bytes)", (unsigned long long)c.mgmt_bytes);
    const char *const needles[] = {"management segment needs 64.0 GiB", needed,
                                   "50% of the 16 GiB of physical memory allows: 8 GiB (8589934592 bytes)",
                                   "64 bytes for each of 1073741824 chunks",
                                   "'1G = 16777216' (line 3, 1 GiB)", "and 61 more [pools] lines",
                                   "lower the chunk counts in [pools]", "raise limits.memory_share",
                                   "payload segments, more than 16 EiB", NULL};
    check_refused(&cfg, &MACHINE_16G, 3, needles);
    /* raising the share is not enough on 16 GiB; on 256 GiB it is, for memory */
    load_ok(&cfg, "[pools]\n64 = 16777216\n1K = 16777216\n");
    shoal_machine_t big = {256 * GIB, 1ULL << 47, UINT64_MAX};
    assert_int_equal(shoal_config_check_machine(&cfg, &big, err, sizeof err), 0);
    assert_int_equal(shoal_config_check_machine(&cfg, &MACHINE_16G, err, sizeof err), 0);
    shoal_machine_t m4 = {4 * GIB, 1ULL << 47, UINT64_MAX};
    load_ok(&cfg, "[limits]\nmemory_share = 40%\n[pools]\n64 = 16777216\n1K = 16777216\n4K = 1\n");
    static const char *const share_needles[] = {"limits.memory_share = 40%", "'64 = 16777216' (line 4, 1 GiB)",
                                                "'1K = 16777216' (line 5, 1 GiB)", "'4K = 1' (line 6, 64 bytes)", NULL};
    check_refused(&cfg, &m4, 4, share_needles);
    load_ok(&cfg, "[limits]\nmemory_share = 100%\n[pools]\n64 = 16777216\n1K = 16777216\n4K = 1\n");
    assert_int_equal(shoal_config_check_machine(&cfg, &m4, err, sizeof err), 0);

    /* the pool with the most chunks is blamed, wherever it is */
    load_ok(&cfg, "[pools]\n64 = 100\n1K = 100\n\n16K = 16777216\n");
    snprintf(want, sizeof want, "'16K = 16777216' (line 5, 1 GiB)");
    const char *const most_needles[] = {want, "'64 = 100' (line 2", NULL};
    shoal_machine_t m1 = {GIB, 1ULL << 47, UINT64_MAX};
    check_refused(&cfg, &m1, 5, most_needles);

    /* a limits line that dominates: 68608 ports of 1 MiB (65536 queue cells) */
    load_ok(&cfg, "[limits]\nsubscribers = 65536\nqueue_capacity = 65536\n");
    static const char *const q_needles[] = {"limits.queue_capacity = 65536 (set here)",
                                            "68608 port slots of 1.0 MiB each",
                                            "lower limits.queue_capacity", "raise limits.memory_share", NULL};
    check_refused(&cfg, &MACHINE_16G, 3, q_needles);
    /* many services times many receivers: the service table */
    load_ok(&cfg, "[limits]\nservices = 65536\n# many\nsubscribers = 65536\nqueue_capacity = 1\n"
                  "history = 0\nchunks_per_port = 1\n");
    static const char *const s_needles[] = {"limits.subscribers = 65536 (set here)",
                                            "names keeps room for 65536 receivers", NULL};
    shoal_machine_t m8 = {8 * GIB, 1ULL << 47, UINT64_MAX};
    check_refused(&cfg, &m8, 4, s_needles);
    /* a default that dominates has no line to name */
    load_ok(&cfg, "[limits]\nprocesses = 1\n");
    static const char *const d_needles[] = {"limits.queue_capacity = 256 (the default)", NULL};
    shoal_machine_t m16m = {16 * MIB, 1ULL << 47, UINT64_MAX};
    check_refused(&cfg, &m16m, 0, d_needles);
    /* unknown physical memory: no memory check */
    shoal_machine_t unknown = {0, 1ULL << 47, UINT64_MAX};
    assert_int_equal(shoal_config_check_machine(&cfg, &unknown, err, sizeof err), 0);
}

static void test_machine_address_space(void **state) {
    (void)state;
    shoal_config_t cfg;
    shoal_machine_t huge = {1ULL << 50, 1ULL << 47, UINT64_MAX};
    /* 96 TiB usable: 64G x 1536 (96 TiB) plus management is too much, x 1000 fits */
    load_ok(&cfg, "[pools]\n64 = 16\n64G = 1000\n");
    assert_int_equal(shoal_config_check_machine(&cfg, &huge, err, sizeof err), 0);
    load_ok(&cfg, "[pools]\n64 = 16\n64G = 1536\n");
    static const char *const needles[] = {"segments need 96.0 TiB (", "24.9 MiB management segment",
                                          "more than the 96 TiB (105553116266496 bytes)",
                                          "3/4 of the user address space, 128 TiB",
                                          "'64G = 1536' (line 3, 96 TiB)",
                                          "lower the chunk counts or chunk sizes in [pools])", NULL};
    check_refused(&cfg, &huge, 3, needles);
    /* RLIMIT_AS, when lower, is the bound, and raising it is a fix */
    load_ok(&cfg, "[pools]\n64 = 16\n1200M = 6\n");
    shoal_machine_t lim = {1ULL << 50, 1ULL << 47, 8 * GIB};
    static const char *const rl_needles[] = {"more than the 6 GiB (6442450944 bytes)", "3/4 of RLIMIT_AS, 8 GiB",
                                             "'1200M = 6' (line 3, 7.0 GiB)", "ulimit -v", NULL};
    check_refused(&cfg, &lim, 3, rl_needles);
    load_ok(&cfg, "[pools]\n64 = 16\n1200M = 4\n");
    assert_int_equal(shoal_config_check_machine(&cfg, &lim, err, sizeof err), 0);
    /* sums past 2^64 are refused as such, never wrapped into something small */
    char text[4096] = "[limits]\nmemory_share = 100%\n[pools]\n";
    for (int i = 1; i <= SHOAL_CONFIG_MAX_POOLS; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dG = 16777216\n", SHOAL_CONFIG_MAX_POOLS + 1 - i);
        strcat(text, l);
    }
    load_ok(&cfg, text);
    static const char *const ov_needles[] = {"segments need more than 16 EiB (the sum overflows 64 bits)",
                                             "'64G = 16777216' (line 4, 1 EiB)", NULL};
    check_refused(&cfg, &huge, 4, ov_needles);
}


/* ---- [access] ---------------------------------------------------------------------- */

static void test_access_good(void **state) {
    (void)state;
    shoal_config_t cfg;
    load_ok(&cfg, "[access]\n"
                  "users = alice, 1001 , _svc$\n"
                  "groups = video,2000\n"
                  "socket_group = shoal\n"
                  "[access.topic \"cam/#*\"]   # a '#' inside the quotes is part of the pattern\n"
                  "publish = alice, @video\n"
                  "subscribe = *\n"
                  "[access.service \"say \\\"hi\\\\\"]\n"
                  "call = @0\n");
    const shoal_config_access_t *a = &cfg.access;
    assert_int_equal(a->line, 1);
    assert_int_equal(a->users.count, 3);
    assert_string_equal(a->users.ids[0].name, "alice");
    assert_int_equal(a->users.ids[0].numeric, 0);
    assert_int_equal(a->users.ids[1].numeric, 1);
    assert_int_equal(a->users.ids[1].id, 1001);
    assert_int_equal(a->users.ids[1].group, 0);
    assert_string_equal(a->users.ids[2].name, "_svc$");
    assert_int_equal(a->users.line, 2);
    assert_int_equal(a->groups.count, 2);
    assert_int_equal(a->groups.ids[0].group, 1);
    assert_int_equal(a->groups.ids[1].id, 2000);
    assert_string_equal(a->socket_group.name, "shoal");
    assert_int_equal(a->socket_group_line, 4);
    assert_int_equal(a->rule_count, 2);
    assert_int_equal(a->rules[0].type, SHOAL_RULE_TOPIC);
    assert_string_equal(a->rules[0].pattern, "cam/#*");
    assert_int_equal(a->rules[0].line, 5);
    assert_int_equal(a->rules[0].allow[0].count, 2);
    assert_int_equal(a->rules[0].allow[0].ids[0].group, 0);
    assert_int_equal(a->rules[0].allow[0].ids[1].group, 1);
    assert_string_equal(a->rules[0].allow[0].ids[1].name, "video");
    assert_int_equal(a->rules[0].allow[1].anyone, 1);
    assert_int_equal(a->rules[1].type, SHOAL_RULE_SERVICE);
    assert_string_equal(a->rules[1].pattern, "say \"hi\\");
    assert_int_equal(a->rules[1].allow[0].line, 0);
    assert_int_equal(a->rules[1].allow[1].ids[0].group, 1);
    assert_int_equal(a->rules[1].allow[1].ids[0].id, 0);

    /* printed and parsed back: the same lists and patterns */
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    shoal_config_print(&cfg, f);
    assert_int_equal(fclose(f), 0);
    shoal_config_t again;
    int rc = shoal_config_load(&again, path, err, sizeof err);
    if (rc) print_error("%s\n", err);
    assert_int_equal(rc, 0);
    const shoal_config_access_t *b = &again.access;
    assert_int_equal(b->users.count, a->users.count);
    assert_memory_equal(b->users.ids, a->users.ids, sizeof a->users.ids);
    assert_memory_equal(b->groups.ids, a->groups.ids, sizeof a->groups.ids);
    assert_memory_equal(&b->socket_group, &a->socket_group, sizeof a->socket_group);
    assert_int_equal(b->rule_count, a->rule_count);
    for (uint32_t i = 0; i < a->rule_count; i++) {
        assert_string_equal(b->rules[i].pattern, a->rules[i].pattern);
        assert_int_equal(b->rules[i].type, a->rules[i].type);
        for (int w = 0; w < 2; w++) {
            assert_int_equal(!b->rules[i].allow[w].line, !a->rules[i].allow[w].line);
            assert_int_equal(b->rules[i].allow[w].anyone, a->rules[i].allow[w].anyone);
            assert_int_equal(b->rules[i].allow[w].count, a->rules[i].allow[w].count);
            assert_memory_equal(b->rules[i].allow[w].ids, a->rules[i].allow[w].ids,
                                sizeof a->rules[i].allow[w].ids);
        }
    }

    /* numbers need no lookup; names are looked up (root and its group exist everywhere) */
    load_ok(&cfg, "[access]\nusers = root, 4294967294\ngroups = root\n"
                  "[access.topic \"*\"]\nsubscribe = @root, root\n");
    assert_int_equal(shoal_config_resolve_access(&cfg, err, sizeof err), 0);
    assert_int_equal(cfg.access.users.ids[0].id, 0);
    assert_int_equal(cfg.access.users.ids[1].id, 4294967294u);
    assert_int_equal(cfg.access.resolved, 1);
    /* users = * admits every uid */
    load_ok(&cfg, "[access]\nusers = *\n");
    assert_int_equal(cfg.access.users.anyone, 1);
}

static void test_access_bad(void **state) {
    (void)state;
    load_bad("[access]\n", 1, "admits nobody", "users =");
    load_bad("[access]\nsocket_group = x\n", 1, "admits nobody", NULL);
    load_bad("[access]\nusers = a\n[access]\n", 3, "[access]", "line 1");
    load_bad("[access]\nusrs = a\n", 2, "'usrs'", "did you mean 'users'");
    load_bad("[access]\nusers = a\npublish = b\n", 3, "'publish'", "[access.topic");
    load_bad("[access]\nusers =\n", 2, "empty value", "'*'");
    load_bad("[access]\nusers = a,,b\n", 2, "empty entry", "extra ','");
    /* a number keeps its value however it is written (leading zeros past the
     * name field once printed back as another id) */
    static shoal_config_t num;
    load_ok(&num, "[access]\ngroups = 0000000000000000000000000000000000000000001, 007\n");
    assert_int_equal(num.access.groups.ids[0].id, 1);
    assert_string_equal(num.access.groups.ids[0].name, "1");
    assert_string_equal(num.access.groups.ids[1].name, "7");
    load_bad("[access]\nusers = 1, 01\n", 2, "'01' appears twice", NULL);
    load_bad("[access]\nusers = a, a\n", 2, "'a' appears twice", NULL);
    load_bad("[access]\nusers = *, a\n", 2, "'*'", "everyone");
    load_bad("[access]\nusers = @video\n", 2, "groups = video", NULL);
    load_bad("[access]\ngroups = @video\n", 2, "without '@'", NULL);
    load_bad("[access]\ngroups = *\n", 2, "'*'", "users = *");
    load_bad("[access]\nusers = alice bob\n", 2, "'alice bob'", "separate entries with ','");
    load_bad("[access]\nusers = -x\n", 2, "'-x'", "user name");
    load_bad("[access]\nusers = 4294967295\n", 2, "uid 4294967295", "0..4294967294");
    load_bad("[access]\nusers = 12ab\n", 2, "'12ab'", "numeric uid");
    load_bad("[access]\nusers = aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n", 2, "not a valid user name", "32");
    load_bad("[access]\nusers = a\nusers = b\n", 3, "duplicate key 'users'", "line 2");
    load_bad("[access]\nusers = a\nsocket_group = a, b\n", 3, "more than one group", NULL);
    char many[2048] = "[access]\nusers = u0";
    for (int i = 1; i <= SHOAL_ACCESS_MAX_IDS; i++) {
        char e[16];
        snprintf(e, sizeof e, ", u%d", i);
        strcat(many, e);
    }
    strcat(many, "\n");
    load_bad(many, 2, "more than 64 entries", "group");
    /* rule sections */
    load_bad("[access.topic]\n", 1, "quoted pattern", NULL);
    load_bad("[access.topic \"x]\n", 1, "no closing '\"'", NULL);
    load_bad("[access.topic \"\"]\n", 1, "empty", "\"*\"");
    load_bad("[access.topic \"x\" y]\n", 1, "expected ']'", NULL);
    load_bad("[access.topic \"x\"] y\n", 1, "'y'", NULL);
    load_bad("[access.topics \"x\"]\n", 1, "[access.topic", NULL);
    load_bad("[access.topic \"x\"]\npublish = a\n[access.topic \"x\"]\n", 3, "appears twice",
             "line 1");
    load_bad("[access.topic \"x\"]\n# nothing\n", 1, "sets neither publish nor subscribe", NULL);
    load_bad("[access.service \"x\"]\npublish = a\n", 2, "serve and call", "[access.topic");
    load_bad("[access.topic \"x\"]\nserve = a\n", 2, "publish and subscribe", "[access.service");
    load_bad("[access.topic \"x\"]\nread = a\n", 2, "unknown key 'read'", "publish, subscribe");
    load_bad("[access.topic \"x\"]\npublish = @a b\n", 2, "'a b'", "@name");
    load_bad("[access.topic \"x\"]\npublish = a\npublish = b\n", 3, "duplicate key 'publish'",
             "line 2");
    char longpat[256] = "[access.topic \"";
    for (int i = 0; i < SHOAL_ACCESS_PATTERN_MAX; i++) strcat(longpat, "a");
    strcat(longpat, "\"]\npublish = a\n");
    load_bad(longpat, 1, "longer than 127", NULL);
    char rules[8192] = "";
    for (int i = 0; i <= SHOAL_ACCESS_MAX_RULES; i++) {
        char r[64];
        snprintf(r, sizeof r, "[access.topic \"t%d\"]\npublish = a\n", i);
        strcat(rules, r);
    }
    load_bad(rules, 2 * SHOAL_ACCESS_MAX_RULES + 1, "too many", "at most 32");
    /* unknown names are found at resolve time, with their line */
    shoal_config_t cfg;
    load_ok(&cfg, "[access]\nusers = root\n\n[access.service \"s\"]\ncall = root, @no-such-group-x\n");
    assert_int_equal(shoal_config_resolve_access(&cfg, err, sizeof err), -1);
    char prefix[600];
    snprintf(prefix, sizeof prefix, "%s:5: unknown group 'no-such-group-x' in call of "
                                    "[access.service \"s\"]", path);
    assert_string_equal(strstr(err, prefix) == err ? prefix : err, prefix);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_parse_size),
        cmocka_unit_test_setup_teardown(test_good_full, setup, teardown),
        cmocka_unit_test_setup_teardown(test_good_partial_keeps_defaults, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_sections, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_limits, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_pools, setup, teardown),
        cmocka_unit_test_setup_teardown(test_bad_binary_and_missing, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_buffer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_round_trip, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memory_share_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_lines_kept, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cost, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_memory, setup, teardown),
        cmocka_unit_test_setup_teardown(test_machine_address_space, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_good, setup, teardown),
        cmocka_unit_test_setup_teardown(test_access_bad, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
