/*
 * Test harness for the shoal cmocka tests.
 *
 * Starts a REAL shoald process per test (unique domain, private runtime
 * directory, config written from a string), waits for it with --ready-fd,
 * and stops it with SIGTERM, checking that it exits 0 and leaves no files.
 * Also: helpers to fork child processes running a function, pipes to
 * synchronise with them, shared (MAP_SHARED) memory for results, and
 * introspection helpers over shoal_runtime_pool_info/port_info.
 *
 * cmocka assertions may only be used in the test's own thread of the parent
 * process. Worker threads and child processes use WCHECK(), which prints a
 * message (with shoal_last_error_message()) and returns __LINE__ from the
 * enclosing int function.
 */
#ifndef SHOAL_TEST_HARNESS_H
#define SHOAL_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <setjmp.h>
#include <sys/types.h>

#include <cmocka.h>

#include "shoal.h"

#define TH_MS ((int64_t)1000000)
#define TH_SEC ((int64_t)1000000000)

/* A running (or prepared) shoald. */
typedef struct th_daemon {
    pid_t pid;                 /* 0 when not running */
    char domain[64];
    char base_dir[256];        /* mkdtemp dir: config, log, run/ */
    char runtime_dir[300];     /* base_dir/run (or another daemon's) */
    char config_path[300];     /* "" when started without --config */
    char log_path[300];        /* stdout+stderr of the daemon */
    char sock_path[400];
    char lock_path[400];
    int shares_dir;            /* runtime_dir belongs to another daemon */
    /* RLIMIT_NOFILE set in the child before exec when nofile_hard != 0 */
    unsigned long nofile_soft, nofile_hard;
} th_daemon_t;

/* Default configuration used by most tests: small pools, generous limits. */
extern const char *const TH_DEFAULT_CONFIG;

/* Unique domain name "t<pid>-<counter>". */
void th_unique_domain(char *out, size_t len);

/* Creates dirs, a unique domain and the config file (config may be NULL: no
 * --config). Asserts on failure. */
void th_daemon_prepare(th_daemon_t *d, const char *config);
/* Like prepare, but sharing `other`'s runtime directory. */
void th_daemon_prepare_shared(th_daemon_t *d, const th_daemon_t *other, const char *config);
/* fork/exec shoald with --ready-fd; returns 0 once "ready" was read within 5 s,
 * else -1 (the daemon is killed, the log printed). Does not assert. */
int th_daemon_launch(th_daemon_t *d);
/* prepare + launch, asserting success. */
void th_daemon_start(th_daemon_t *d, const char *config);
/* SIGTERM + waitpid (5 s); asserts exit status 0 and that no files are left in
 * the runtime dir; removes the temp dirs. */
void th_daemon_stop(th_daemon_t *d);
/* SIGKILL + waitpid, leaves files as they are. */
void th_daemon_kill(th_daemon_t *d);
/* Removes the temp dirs (after kill). */
void th_daemon_cleanup(th_daemon_t *d);
/* Prints the daemon's log to stderr. */
void th_daemon_dump_log(const th_daemon_t *d);
/* Sets SHOAL_DOMAIN and SHOAL_RUNTIME_DIR for this process (and children). */
void th_daemon_export_env(const th_daemon_t *d);

/* Runs shoald with the given NULL-terminated args (no argv[0]); captures its
 * stdout and stderr (NUL-terminated, truncated to the buffer sizes; buffers
 * may be NULL). Returns the exit code, 128+signal if killed, -1 if it did not
 * finish within timeout_ms (then it is killed). */
int th_run_shoald(const char *const *args, char *out, size_t outlen, char *err, size_t errlen,
                  int timeout_ms);
/* Same for any program (path, argv[0]..NULL), with extra env "K=V" (NULL-term). */
int th_run_program(const char *path, const char *const *argv, const char *const *extra_env,
                   char *out, size_t outlen, char *err, size_t errlen, int timeout_ms);

/* Registers a runtime with the daemon. */
shoal_result_t th_runtime_create(const th_daemon_t *d, const char *name, shoal_runtime_t **out);
/* Same, asserting success (test thread only). */
shoal_runtime_t *th_runtime(const th_daemon_t *d, const char *name);

/* ---- child processes ---------------------------------------------------- */

typedef int (*th_child_fn)(void *arg);
/* Forks; the child (with PR_SET_PDEATHSIG=SIGKILL) runs fn(arg) and _exit()s
 * with its return value (non-zero values are mapped to 1..255). */
pid_t th_spawn(th_child_fn fn, void *arg);
/* Waits for a child: returns its exit code, 128+signal if killed by a signal,
 * or -1 after timeout_ms (the child is then SIGKILLed and reaped). */
int th_join(pid_t pid, int timeout_ms);

/* Anonymous MAP_SHARED memory (zeroed), visible to children forked later. */
void *th_shared_alloc(size_t size);
void th_shared_free(void *p, size_t size);

/* Pipes used as one-byte signals between processes. */
typedef struct th_chan { int rd, wr; } th_chan_t;
void th_chan_open(th_chan_t *c);
void th_chan_close(th_chan_t *c);
int th_chan_send(th_chan_t *c, char byte);
/* Returns the byte read, -1 on timeout, -2 on EOF/error. */
int th_chan_recv(th_chan_t *c, int timeout_ms);
/* Non-blocking check whether a byte is available (consumes it if so). */
int th_chan_poll(th_chan_t *c);

/* ---- time ---------------------------------------------------------------- */
int64_t th_now_ns(void);
void th_sleep_ms(int ms);

/* ---- introspection ------------------------------------------------------- */
/* Sum of in_use over all pools. */
uint32_t th_pools_in_use(const shoal_runtime_t *rt);
/* Polls until every pool's in_use is 0 (or `expected` total) within
 * timeout_ms; returns the last total seen. */
uint32_t th_wait_in_use(const shoal_runtime_t *rt, uint32_t expected, int timeout_ms);
/* Counts live ports of `kind` (0 = any) owned by `pid` (0 = any) on `service`
 * (NULL = any). */
uint32_t th_port_count(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service);
/* Polls until th_port_count(...) == expected; returns the last count. */
uint32_t th_wait_port_count(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service,
                            uint32_t expected, int timeout_ms);
/* Finds the first live port matching; returns 0 if found. */
int th_find_port(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service,
                 shoal_port_info_t *out);
/* Index of the pool with exactly this chunk size, or -1. */
int th_pool_index(const shoal_runtime_t *rt, uint64_t chunk_size, shoal_pool_info_t *out);

/* ---- checks in threads and children -------------------------------------- */
void th_report(const char *file, int line, const char *expr, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#define WCHECK(cond)                                                               \
    do {                                                                           \
        if (!(cond)) {                                                             \
            th_report(__FILE__, __LINE__, #cond, NULL);                            \
            return __LINE__;                                                       \
        }                                                                          \
    } while (0)
/* Checks a shoal call returns `want`. */
#define WCHECK_RC(call, want)                                                      \
    do {                                                                           \
        shoal_result_t wrc_ = (call);                                              \
        if (wrc_ != (want)) {                                                      \
            th_report(__FILE__, __LINE__, #call, "returned %s, expected %s",       \
                      shoal_strerror(wrc_), shoal_strerror(want));                 \
            return __LINE__;                                                       \
        }                                                                          \
    } while (0)
#define WCHECK_OK(call) WCHECK_RC(call, SHOAL_OK)

/* cmocka-side: asserts a shoal call returns `want`, printing names and the
 * last error message when not. */
#define assert_rc(call, want)                                                      \
    do {                                                                           \
        shoal_result_t arc_ = (call);                                              \
        if (arc_ != (want)) {                                                      \
            print_error("%s:%d: %s returned %s, expected %s; last error: %s\n",    \
                        __FILE__, __LINE__, #call, shoal_strerror(arc_),           \
                        shoal_strerror(want), shoal_last_error_message());         \
            fail();                                                                \
        }                                                                          \
    } while (0)
#define assert_ok(call) assert_rc(call, SHOAL_OK)
/* Asserts `hay` contains `needle`, printing both when not. */
#define assert_contains(hay, needle)                                               \
    do {                                                                           \
        const char *h_ = (hay);                                                    \
        const char *n_ = (needle);                                                 \
        if (h_ == NULL || strstr(h_, n_) == NULL) {                                \
            print_error("%s:%d: expected \"%s\" in: %s\n", __FILE__, __LINE__, n_, \
                        h_ ? h_ : "(null)");                                       \
            fail();                                                                \
        }                                                                          \
    } while (0)

/* Fixture for cmocka_unit_test_prestate_setup_teardown: the prestate is a
 * th_fixture_t with the config text; setup starts the daemon, teardown stops
 * it (asserting a clean exit). */
typedef struct th_fixture {
    const char *config; /* NULL = TH_DEFAULT_CONFIG */
    th_daemon_t daemon;
} th_fixture_t;
int th_setup(void **state);
int th_teardown(void **state);

/* A fixture from static storage (one per test). */
void *th_fixture(const char *config);

#define TH_TEST(fn) \
    cmocka_unit_test_prestate_setup_teardown(fn, th_setup, th_teardown, th_fixture(NULL))
#define TH_TEST_CFG(fn, cfg) \
    cmocka_unit_test_prestate_setup_teardown(fn, th_setup, th_teardown, th_fixture(cfg))

#endif
