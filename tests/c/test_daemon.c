/* Issue 2: shoald lifecycle, runtime registration, result codes, options. */
#include "harness.h"

#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* ---- command line -------------------------------------------------------- */

static void test_version(void **state)
{
    (void)state;
    char out[4096], err[4096];
    const char *args[] = { "--version", NULL };
    assert_int_equal(th_run_shoald(args, out, sizeof out, err, sizeof err, 5000), 0);
    assert_contains(out, SHOAL_VERSION_STRING);
}

static void test_help(void **state)
{
    (void)state;
    char out[8192], err[4096];
    const char *args[] = { "--help", NULL };
    assert_int_equal(th_run_shoald(args, out, sizeof out, err, sizeof err, 5000), 0);
    const char *opts[] = { "--domain", "--config", "--runtime-dir", "--log-level",
                           "--print-config", "--ready-fd", "--version" };
    for (size_t i = 0; i < sizeof opts / sizeof opts[0]; i++)
        assert_contains(out, opts[i]);
}

static void test_bad_usage(void **state)
{
    (void)state;
    char err[4096];
    const char *args[] = { "--no-such-option", NULL };
    assert_int_equal(th_run_shoald(args, NULL, 0, err, sizeof err, 5000), 1);
    assert_true(strlen(err) > 0);
    const char *args2[] = { "--log-level", "loud", "--print-config", NULL };
    assert_int_equal(th_run_shoald(args2, NULL, 0, err, sizeof err, 5000), 1);
    const char *args3[] = { "--domain", "bad/domain", "--print-config", NULL };
    assert_int_equal(th_run_shoald(args3, NULL, 0, err, sizeof err, 5000), 1);
}

static void test_print_config_defaults(void **state)
{
    (void)state;
    static char out[16384];
    char err[4096];
    const char *args[] = { "--print-config", NULL };
    assert_int_equal(th_run_shoald(args, out, sizeof out, err, sizeof err, 5000), 0);
    assert_contains(out, "[limits]");
    assert_contains(out, "[pools]");
    const char *keys[] = { "processes", "publishers", "subscribers", "servers", "clients",
                           "chunks_per_port", "queue_capacity" };
    for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++)
        assert_contains(out, keys[i]);
    /* at least 512 servers by default */
    const char *s = strstr(out, "servers");
    assert_non_null(s);
    s = strchr(s, '=');
    assert_non_null(s);
    assert_true(strtol(s + 1, NULL, 10) >= 512);
}

static void test_print_config_roundtrip(void **state)
{
    (void)state;
    th_daemon_t d;
    th_daemon_prepare(&d, "[limits]\n"
                          "servers = 777   # odd value to find again\n"
                          "chunks_per_port = 33\n"
                          "[pools]\n"
                          "128 = 10\n"
                          "2M = 3\n"
                          "1200M = 2\n");
    static char out[16384];
    char err[4096];
    const char *args[] = { "--config", d.config_path, "--print-config", NULL };
    int rc = th_run_shoald(args, out, sizeof out, err, sizeof err, 5000);
    if (rc != 0)
        print_error("stderr: %s\n", err);
    assert_int_equal(rc, 0);
    assert_contains(out, "777");
    assert_contains(out, "33");
    /* The printed config is parseable again and prints the same. */
    th_daemon_t d2;
    th_daemon_prepare(&d2, out);
    static char out2[16384];
    const char *args2[] = { "--config", d2.config_path, "--print-config", NULL };
    rc = th_run_shoald(args2, out2, sizeof out2, err, sizeof err, 5000);
    if (rc != 0)
        print_error("stderr: %s\n", err);
    assert_int_equal(rc, 0);
    /* the same, apart from the comment naming the source file */
    assert_non_null(strstr(out, "[limits]"));
    assert_non_null(strstr(out2, "[limits]"));
    assert_string_equal(strstr(out, "[limits]"), strstr(out2, "[limits]"));
    th_daemon_cleanup(&d);
    th_daemon_cleanup(&d2);
}

static void check_bad_config(const char *text, int bad_line, const char *needle)
{
    th_daemon_t d;
    th_daemon_prepare(&d, text);
    char err[4096];
    char want[400];
    snprintf(want, sizeof want, "shoal.conf:%d", bad_line);
    /* Both with --print-config and when starting for real. */
    const char *args[] = { "--config", d.config_path, "--print-config", NULL };
    int rc = th_run_shoald(args, NULL, 0, err, sizeof err, 5000);
    assert_int_equal(rc, 1);
    assert_contains(err, want);
    if (needle)
        assert_contains(err, needle);
    const char *args2[] = { "--config", d.config_path, "--domain", d.domain, "--runtime-dir",
                            d.runtime_dir, NULL };
    rc = th_run_shoald(args2, NULL, 0, err, sizeof err, 5000);
    assert_int_equal(rc, 1);
    assert_contains(err, want);
    assert_false(file_exists(d.sock_path));
    th_daemon_cleanup(&d);
}

static void test_bad_config(void **state)
{
    (void)state;
    check_bad_config("[limits]\n"
                     "# comment\n"
                     "servers = 600\n"
                     "servrs = 5\n",
                     4, "servrs");
    check_bad_config("[limits]\nservers = lots\n", 2, "servers");
    check_bad_config("[pools]\n64 = 10\n1X = 4\n", 3, NULL);
    check_bad_config("[limits]\nprocesses = 4\n[nonsense]\n", 3, "nonsense");
    check_bad_config("[limits]\nclients 12\n", 2, NULL);
    check_bad_config("[pools]\n64 = 0\n", 2, NULL);
    /* a missing config file is also exit 1 */
    char err[4096];
    const char *args[] = { "--config", "/nonexistent/shoal.conf", "--print-config", NULL };
    assert_int_equal(th_run_shoald(args, NULL, 0, err, sizeof err, 5000), 1);
    assert_contains(err, "/nonexistent/shoal.conf");
}

/* The config, 64 pools of 16M chunks: 64 GiB of chunk headers would be
 * written at start (an OOM kill), and 16 EiB of payload cannot be mapped. shoald
 * must refuse at once, naming the line and the figures, before any segment. */
static void test_config_exceeds_machine(void **state)
{
    (void)state;
    char text[4096] = "# 64 pools of 16M chunks\n[pools]\n";
    for (int i = 1; i <= 64; i++) {
        char l[32];
        snprintf(l, sizeof l, "%dG = 16777216\n", i);
        strcat(text, l);
    }
    th_daemon_t d;
    th_daemon_prepare(&d, text);
    static char err[8192];
    const char *args[] = { "--config", d.config_path, "--domain", d.domain, "--runtime-dir",
                           d.runtime_dir, NULL };
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    /* if the check ever regresses, the 64 GiB management mapping fails on this
     * limit instead of the OOM killer picking a victim (sanitizers reserve
     * terabytes of shadow, so not under them) */
    struct rlimit old, lim;
    assert_int_equal(getrlimit(RLIMIT_AS, &old), 0);
    lim = old;
    if (lim.rlim_cur == RLIM_INFINITY || lim.rlim_cur > (32ull << 30))
        lim.rlim_cur = 32ull << 30;
    assert_int_equal(setrlimit(RLIMIT_AS, &lim), 0);
#endif
    int64_t t0 = th_now_ns();
    int rc = th_run_shoald(args, NULL, 0, err, sizeof err, 10000);
    int64_t elapsed = th_now_ns() - t0;
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
    assert_int_equal(setrlimit(RLIMIT_AS, &old), 0);
#endif
    if (rc != 1)
        print_error("exit %d after %lld ms, stderr: %s\n", rc, (long long)(elapsed / TH_MS), err);
    assert_int_equal(rc, 1);
    assert_true(elapsed < 3 * TH_SEC);
    uint64_t phys = (uint64_t)sysconf(_SC_PHYS_PAGES) * (uint64_t)sysconf(_SC_PAGESIZE);
    if (phys / 2 < (64ull << 30)) {
        /* the memory check: blames the first pool line, with the figures */
        assert_contains(err, "shoal.conf:3: ");
        assert_contains(err, "management segment needs 64.0 GiB");
        assert_contains(err, "of physical memory allows");
        assert_contains(err, "64 bytes for each of 1073741824 chunks");
        assert_contains(err, "lower the chunk counts in [pools]");
        assert_contains(err, "raise limits.memory_share");
    } else {
        /* a machine that has the memory still lacks the address space */
        assert_contains(err, "shoal.conf:66: ");
        assert_contains(err, "more than 16 EiB");
    }
    assert_false(file_exists(d.sock_path));
    assert_false(file_exists(d.lock_path));
    /* --print-config refuses it the same way */
    const char *args2[] = { "--config", d.config_path, "--print-config", NULL };
    assert_int_equal(th_run_shoald(args2, NULL, 0, err, sizeof err, 10000), 1);
    assert_contains(err, "shoal.conf:");
    th_daemon_cleanup(&d);
}

/* ---- lifecycle -------------------------------------------------------------- */

static void test_start_stop_leaves_no_files(void **state)
{
    (void)state;
    th_daemon_t d;
    th_daemon_start(&d, TH_DEFAULT_CONFIG);
    assert_true(file_exists(d.sock_path));
    assert_true(file_exists(d.lock_path));
    struct stat st;
    assert_int_equal(stat(d.sock_path, &st), 0);
    assert_true(S_ISSOCK(st.st_mode));
    shoal_runtime_t *rt = th_runtime(&d, "lifecycle");
    assert_string_equal(shoal_runtime_domain(rt), d.domain);
    shoal_runtime_destroy(rt);
    th_daemon_stop(&d); /* asserts exit 0 and an empty runtime dir */
}

static void test_sigint_stops_cleanly(void **state)
{
    (void)state;
    th_daemon_t d;
    th_daemon_start(&d, NULL); /* built-in defaults */
    shoal_runtime_t *rt = th_runtime(&d, "sigint");
    assert_true(shoal_runtime_pool_count(rt) > 0);
    shoal_runtime_destroy(rt);
    assert_int_equal(kill(d.pid, SIGINT), 0);
    int rc = th_join(d.pid, 5000);
    d.pid = 0;
    assert_int_equal(rc, 0);
    assert_false(file_exists(d.sock_path));
    assert_false(file_exists(d.lock_path));
    th_daemon_cleanup(&d);
}

static void test_stop_with_live_client(void **state)
{
    (void)state;
    /* A daemon stopped while a process is registered still exits 0 and
     * removes its files; the runtime then reports the daemon gone. */
    th_daemon_t d;
    th_daemon_start(&d, TH_DEFAULT_CONFIG);
    shoal_runtime_t *rt = th_runtime(&d, "live");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "topic", NULL));
    th_daemon_stop(&d);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

static void test_second_daemon_refused(void **state)
{
    (void)state;
    th_daemon_t d;
    th_daemon_start(&d, TH_DEFAULT_CONFIG);
    char err[4096];
    const char *args[] = { "--domain", d.domain, "--runtime-dir", d.runtime_dir,
                           "--config", d.config_path, NULL };
    int rc = th_run_shoald(args, NULL, 0, err, sizeof err, 5000);
    assert_int_equal(rc, 2);
    assert_contains(err, d.domain);
    /* The first daemon is unharmed. */
    assert_true(file_exists(d.sock_path));
    shoal_runtime_t *rt = th_runtime(&d, "still-there");
    shoal_runtime_destroy(rt);
    th_daemon_stop(&d);
}

static void test_takeover_after_sigkill(void **state)
{
    (void)state;
    th_daemon_t d;
    th_daemon_start(&d, TH_DEFAULT_CONFIG);
    shoal_runtime_t *rt = th_runtime(&d, "before-crash");
    th_daemon_kill(&d);
    /* The leftovers are there. */
    assert_true(file_exists(d.sock_path));
    assert_true(file_exists(d.lock_path));
    shoal_runtime_destroy(rt);
    /* A new daemon on the same domain and dir takes over. */
    assert_int_equal(th_daemon_launch(&d), 0);
    rt = th_runtime(&d, "after-crash");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "topic", NULL));
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pub, 16, &c));
    assert_ok(shoal_chunk_release(c));
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
    th_daemon_stop(&d);
}

static void test_domains_side_by_side(void **state)
{
    (void)state;
    th_daemon_t a, b;
    th_daemon_start(&a, TH_DEFAULT_CONFIG);
    th_daemon_prepare_shared(&b, &a, "[pools]\n128 = 7\n");
    assert_int_equal(th_daemon_launch(&b), 0);
    shoal_runtime_t *ra = th_runtime(&a, "in-a");
    shoal_runtime_t *rb = th_runtime(&b, "in-b");
    assert_string_equal(shoal_runtime_domain(ra), a.domain);
    assert_string_equal(shoal_runtime_domain(rb), b.domain);
    /* Different configs: the domains are separate. */
    assert_int_equal(shoal_runtime_pool_count(rb), 1);
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    assert_ok(shoal_runtime_pool_info(rb, 0, &pi));
    assert_int_equal(pi.chunk_size, 128);
    assert_int_equal(pi.chunk_count, 7);
    assert_int_equal(shoal_runtime_pool_count(ra), 3);
    /* A topic of the same name in both does not cross. */
    shoal_publisher_t *pa = NULL;
    shoal_subscriber_t *sb = NULL;
    assert_ok(shoal_publisher_create(&pa, ra, "same", NULL));
    assert_ok(shoal_subscriber_create(&sb, rb, "same", NULL));
    assert_int_equal(shoal_publisher_subscriber_count(pa), 0);
    shoal_chunk_t *c = NULL;
    assert_ok(shoal_publisher_loan(pa, 8, &c));
    assert_ok(shoal_publisher_publish(pa, c));
    assert_rc(shoal_subscriber_take(sb, &c, 20 * TH_MS), SHOAL_ERR_TIMEOUT);
    shoal_subscriber_destroy(sb);
    shoal_publisher_destroy(pa);
    shoal_runtime_destroy(ra);
    shoal_runtime_destroy(rb);
    th_daemon_stop(&b); /* only b's files must be gone */
    th_daemon_stop(&a); /* now the dir must be empty */
}

/* ---- runtime ------------------------------------------------------------------ */

static void test_runtime_create_destroy(void **state)
{
    th_fixture_t *fx = *state;
    for (int i = 0; i < 20; i++) {
        shoal_runtime_t *rt = th_runtime(&fx->daemon, "cycle");
        assert_string_equal(shoal_runtime_domain(rt), fx->daemon.domain);
        assert_int_equal(shoal_runtime_pool_count(rt), 3);
        shoal_runtime_destroy(rt);
    }
    shoal_runtime_destroy(NULL); /* ignored */
    /* Two runtimes in one process at once. */
    shoal_runtime_t *a = th_runtime(&fx->daemon, "one");
    shoal_runtime_t *b = th_runtime(&fx->daemon, "two");
    shoal_runtime_destroy(a);
    shoal_runtime_destroy(b);
}

static void test_runtime_env_defaults(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_export_env(&fx->daemon);
    shoal_runtime_t *rt = NULL;
    assert_ok(shoal_runtime_create(&rt, "from-env", NULL));
    assert_string_equal(shoal_runtime_domain(rt), fx->daemon.domain);
    shoal_runtime_destroy(rt);
    unsetenv("SHOAL_DOMAIN");
    unsetenv("SHOAL_RUNTIME_DIR");
}

static void test_runtime_bad_arguments(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_t *rt = NULL;
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = fx->daemon.domain;
    o.runtime_dir = fx->daemon.runtime_dir;
    assert_rc(shoal_runtime_create(NULL, "x", &o), SHOAL_ERR_INVALID_ARGUMENT);
    assert_rc(shoal_runtime_create(&rt, NULL, &o), SHOAL_ERR_INVALID_ARGUMENT);
    assert_rc(shoal_runtime_create(&rt, "", &o), SHOAL_ERR_INVALID_ARGUMENT);
    char longname[100];
    memset(longname, 'n', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    assert_rc(shoal_runtime_create(&rt, longname, &o), SHOAL_ERR_INVALID_ARGUMENT);
    assert_true(strlen(shoal_last_error_message()) > 0);
    o.domain = "bad/domain";
    assert_rc(shoal_runtime_create(&rt, "x", &o), SHOAL_ERR_INVALID_ARGUMENT);
}

static void test_daemon_unavailable(void **state)
{
    (void)state;
    th_daemon_t d;
    th_daemon_prepare(&d, NULL); /* never launched */
    shoal_runtime_t *rt = NULL;
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = d.domain;
    o.runtime_dir = d.runtime_dir;
    int64_t t0 = th_now_ns();
    assert_rc(shoal_runtime_create(&rt, "lonely", &o), SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_true(th_now_ns() - t0 < TH_SEC); /* connect_timeout_ns 0: one attempt */
    const char *msg = shoal_last_error_message();
    assert_contains(msg, d.sock_path);
    assert_contains(msg, "shoald");
    assert_contains(msg, d.domain);
    /* With a connect timeout it waits about that long, then gives up. */
    o.connect_timeout_ns = 300 * TH_MS;
    t0 = th_now_ns();
    assert_rc(shoal_runtime_create(&rt, "lonely", &o), SHOAL_ERR_DAEMON_UNAVAILABLE);
    int64_t el = th_now_ns() - t0;
    assert_true(el >= 250 * TH_MS);
    assert_true(el < 3 * TH_SEC);
    th_daemon_cleanup(&d);
}

static void test_connect_timeout_waits_for_daemon(void **state)
{
    (void)state;
    /* A child creates a runtime with a 5 s connect timeout before the daemon
     * exists; the daemon is started 300 ms later; the create succeeds. */
    th_daemon_t d;
    th_daemon_prepare(&d, TH_DEFAULT_CONFIG);
    th_chan_t res;
    th_chan_open(&res);
    pid_t waiter = fork();
    assert_true(waiter >= 0);
    if (waiter == 0) {
        shoal_runtime_t *rt = NULL;
        shoal_runtime_options_t o;
        shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
        o.domain = d.domain;
        o.runtime_dir = d.runtime_dir;
        o.connect_timeout_ns = 5 * TH_SEC;
        shoal_result_t r = shoal_runtime_create(&rt, "patient", &o);
        if (r == SHOAL_OK)
            shoal_runtime_destroy(rt);
        else
            fprintf(stderr, "patient create: %s: %s\n", shoal_strerror(r),
                    shoal_last_error_message());
        th_chan_send(&res, r == SHOAL_OK ? 'y' : 'n');
        _exit(0);
    }
    th_sleep_ms(300);
    assert_int_equal(th_daemon_launch(&d), 0);
    assert_int_equal(th_chan_recv(&res, 6000), 'y');
    assert_int_equal(th_join(waiter, 5000), 0);
    th_chan_close(&res);
    th_daemon_stop(&d);
}

static void test_options_version(void **state)
{
    th_fixture_t *fx = *state;
    shoal_runtime_options_t o;
    memset(&o, 0xab, sizeof o);
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    assert_int_equal(o.version, SHOAL_RUNTIME_OPTIONS_VERSION);
    assert_null(o.domain);
    assert_null(o.runtime_dir);
    assert_int_equal(o.connect_timeout_ns, 0);

    shoal_publisher_options_t po;
    memset(&po, 0xab, sizeof po);
    shoal_publisher_options_init(&po, SHOAL_PUBLISHER_OPTIONS_VERSION);
    assert_int_equal(po.version, SHOAL_PUBLISHER_OPTIONS_VERSION);
    assert_int_equal(po.history, 0);
    shoal_subscriber_options_t so;
    shoal_subscriber_options_init(&so, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    assert_int_equal(so.version, SHOAL_SUBSCRIBER_OPTIONS_VERSION);
    assert_int_equal(so.queue_capacity, 0);
    shoal_client_options_t co;
    shoal_client_options_init(&co, SHOAL_CLIENT_OPTIONS_VERSION);
    assert_int_equal(co.version, SHOAL_CLIENT_OPTIONS_VERSION);
    shoal_server_options_t sv;
    shoal_server_options_init(&sv, SHOAL_SERVER_OPTIONS_VERSION);
    assert_int_equal(sv.version, SHOAL_SERVER_OPTIONS_VERSION);

    /* A struct that was never initialised (version 0) is refused. */
    shoal_runtime_t *rt = NULL;
    o.domain = fx->daemon.domain;
    o.runtime_dir = fx->daemon.runtime_dir;
    o.version = 0;
    assert_rc(shoal_runtime_create(&rt, "v0", &o), SHOAL_ERR_INVALID_ARGUMENT);
    assert_true(strlen(shoal_last_error_message()) > 0);
    /* A version from a newer header than this library knows is refused, not
     * misread. */
    o.version = SHOAL_RUNTIME_OPTIONS_VERSION + 1000;
    assert_true(shoal_runtime_create(&rt, "vfuture", &o) != SHOAL_OK);
    assert_true(strlen(shoal_last_error_message()) > 0);
    o.version = SHOAL_RUNTIME_OPTIONS_VERSION;
    assert_ok(shoal_runtime_create(&rt, "v1", &o));

    /* Same for port options. */
    shoal_publisher_t *pub = NULL;
    po.version = 0;
    assert_rc(shoal_publisher_create(&pub, rt, "t", &po), SHOAL_ERR_INVALID_ARGUMENT);
    shoal_runtime_destroy(rt);
}

static void test_strerror_and_versions(void **state)
{
    (void)state;
    assert_string_equal(shoal_version(), SHOAL_VERSION_STRING);
    assert_int_equal(shoal_abi_version(), SHOAL_ABI_VERSION);
    for (int r = 0; r <= SHOAL_ERR_NOT_FOUND; r++) {
        const char *s = shoal_strerror((shoal_result_t)r);
        assert_non_null(s);
        assert_true(strlen(s) > 0);
    }
    assert_non_null(shoal_strerror((shoal_result_t)9999));
    assert_non_null(shoal_last_error_message());
    /* Distinct names for distinct codes. */
    assert_string_not_equal(shoal_strerror(SHOAL_ERR_POOL_EXHAUSTED),
                            shoal_strerror(SHOAL_ERR_HELD_LIMIT));
}

/* ---- debug log ------------------------------------------------------------------ */

/* Whether one line of the file contains all of a, b, c (NULL = don't care). */
static int log_has_line(const char *path, const char *a, const char *b, const char *c)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    char line[2048];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = (!a || strstr(line, a)) && (!b || strstr(line, b)) && (!c || strstr(line, c));
    fclose(f);
    return found;
}

static int wait_log_line(const char *path, const char *a, const char *b, const char *c)
{
    int64_t deadline = th_now_ns() + 2 * TH_SEC;
    while (!log_has_line(path, a, b, c)) {
        if (th_now_ns() > deadline) {
            print_error("no log line with \"%s\", \"%s\", \"%s\" in %s\n", a, b ? b : "",
                        c ? c : "", path);
            return 0;
        }
        th_sleep_ms(10);
    }
    return 1;
}

typedef struct log_child_ctx {
    th_daemon_t *d;
    th_chan_t ready;
} log_child_ctx_t;

static int log_child(void *arg)
{
    log_child_ctx_t *x = arg;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "logged-crasher", &rt));
    shoal_publisher_t *pub = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "logged-topic", NULL));
    shoal_chunk_t *c = NULL;
    for (int i = 0; i < 5; i++)
        WCHECK_OK(shoal_publisher_loan(pub, 100, &c));
    th_chan_send(&x->ready, 'k');
    raise(SIGKILL);
    return 99;
}

static void test_debug_log(void **state)
{
    th_fixture_t *fx = *state;
    if (getenv("SHOAL_TEST_LOG_LEVEL") && strcmp(getenv("SHOAL_TEST_LOG_LEVEL"), "debug") != 0)
        skip();
    const char *log = fx->daemon.log_path;
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "logged-proc");
    char pid[32];
    snprintf(pid, sizeof pid, "%d", (int)getpid());
    assert_true(wait_log_line(log, "logged-proc", pid, "regist"));
    shoal_server_t *sv = NULL;
    assert_ok(shoal_server_create(&sv, rt, "logged-service", NULL));
    assert_true(wait_log_line(log, "logged-service", "creat", NULL));
    shoal_server_destroy(sv);
    assert_true(wait_log_line(log, "logged-service", "destroy", NULL));

    log_child_ctx_t ctx = { &fx->daemon, { -1, -1 } };
    th_chan_open(&ctx.ready);
    pid_t child = th_spawn(log_child, &ctx);
    assert_int_equal(th_chan_recv(&ctx.ready, 5000), 'k');
    assert_int_equal(th_join(child, 5000), 128 + SIGKILL);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    char cpid[32];
    snprintf(cpid, sizeof cpid, "%d", (int)child);
    /* the exit is logged, and the reclaim with its count */
    assert_true(wait_log_line(log, cpid, "logged-crasher", NULL));
    assert_true(wait_log_line(log, cpid, "5 ", "reclaim") ||
                wait_log_line(log, cpid, "5 ", "return"));
    th_chan_close(&ctx.ready);
    shoal_runtime_destroy(rt);
    assert_true(wait_log_line(log, "logged-proc", pid, NULL));
}

/* ---- credentials ------------------------------------------------------------------ */

static void test_other_user_refused(void **state)
{
    th_fixture_t *fx = *state;
    if (geteuid() != 0)
        skip(); /* needs to switch to another uid */
    /* Let another user reach the socket through the directories (the
     * socket itself stays 0700, so connect() is what refuses it); either
     * way the answer is PERMISSION, never "no daemon". */
    assert_int_equal(chmod(fx->daemon.base_dir, 0711), 0);
    assert_int_equal(chmod(fx->daemon.runtime_dir, 0711), 0);
    th_chan_t res;
    th_chan_open(&res);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(3);
        shoal_runtime_t *rt = NULL;
        shoal_result_t r = th_runtime_create(&fx->daemon, "intruder", &rt);
        char b = (char)r;
        ssize_t w = write(res.wr, &b, 1);
        (void)w;
        _exit(0);
    }
    int got = th_chan_recv(&res, 5000);
    assert_int_equal(th_join(pid, 5000), 0);
    if (got != SHOAL_ERR_PERMISSION)
        print_error("another uid got %s\n", got >= 0 ? shoal_strerror((shoal_result_t)got) : "?");
    assert_int_equal(got, SHOAL_ERR_PERMISSION);
    th_chan_close(&res);
    /* the daemon is fine */
    shoal_runtime_t *rt = th_runtime(&fx->daemon, "owner");
    shoal_runtime_destroy(rt);
    assert_int_equal(chmod(fx->daemon.runtime_dir, 0700), 0);
}

static void test_unusable_runtime_dir(void **state)
{
    (void)state;
    char err[4096];
    char domain[64];
    th_unique_domain(domain, sizeof domain);
    /* a runtime dir below a regular file cannot be created */
    const char *args[] = { "--domain", domain, "--runtime-dir", "/dev/null/shoal", NULL };
    int rc = th_run_shoald(args, NULL, 0, err, sizeof err, 5000);
    assert_int_equal(rc, 3);
    assert_contains(err, "/dev/null/shoal");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_version),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_bad_usage),
        cmocka_unit_test(test_print_config_defaults),
        cmocka_unit_test(test_print_config_roundtrip),
        cmocka_unit_test(test_bad_config),
        cmocka_unit_test(test_config_exceeds_machine),
        cmocka_unit_test(test_start_stop_leaves_no_files),
        cmocka_unit_test(test_sigint_stops_cleanly),
        cmocka_unit_test(test_stop_with_live_client),
        cmocka_unit_test(test_second_daemon_refused),
        cmocka_unit_test(test_unusable_runtime_dir),
        cmocka_unit_test(test_takeover_after_sigkill),
        cmocka_unit_test(test_domains_side_by_side),
        TH_TEST(test_runtime_create_destroy),
        TH_TEST(test_runtime_env_defaults),
        TH_TEST(test_runtime_bad_arguments),
        cmocka_unit_test(test_daemon_unavailable),
        cmocka_unit_test(test_connect_timeout_waits_for_daemon),
        TH_TEST(test_options_version),
        cmocka_unit_test(test_strerror_and_versions),
        TH_TEST(test_debug_log),
        TH_TEST(test_other_user_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
