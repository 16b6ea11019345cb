/* Issue 14.2: shoald under a service manager. The sd_notify protocol is
 * checked with a real datagram socket (path and abstract), as systemd's
 * Type=notify uses it; journal-format logging with a real $JOURNAL_STREAM;
 * SIGHUP reloads nothing and says so. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

/* A bound SOCK_DGRAM socket standing in for the service manager's. `name`
 * starting with '@' is abstract; *env gets the NOTIFY_SOCKET value. */
static int notify_listen(const char *name, char *env, size_t envlen)
{
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    assert_true(fd >= 0);
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    size_t n = strlen(name);
    assert_true(n < sizeof a.sun_path);
    memcpy(a.sun_path, name, n);
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    if (name[0] == '@')
        a.sun_path[0] = '\0';
    else
        len++;
    assert_int_equal(bind(fd, (struct sockaddr *)&a, len), 0);
    snprintf(env, envlen, "%s", name);
    return fd;
}

/* Next datagram within timeout_ms into buf (NUL-terminated); 0 if none. */
static size_t notify_recv(int fd, char *buf, size_t len, int timeout_ms)
{
    struct pollfd p = { .fd = fd, .events = POLLIN };
    if (poll(&p, 1, timeout_ms) != 1)
        return 0;
    ssize_t r = recv(fd, buf, len - 1, 0);
    if (r <= 0)
        return 0;
    buf[r] = '\0';
    return (size_t)r;
}

/* Starts shoald like a service manager does: no --ready-fd, only the
 * environment; stdout+stderr to the daemon's log file. */
static void launch_plain(th_daemon_t *d)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        int logfd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND, 0600);
        if (logfd < 0)
            _exit(126);
        dup2(logfd, 1);
        dup2(logfd, 2);
        const char *argv[] = { SHOALD_PATH, "--domain", d->domain, "--runtime-dir",
                               d->runtime_dir, "--config", d->config_path, "--log-level", "info",
                               NULL };
        execv(SHOALD_PATH, (char *const *)argv);
        _exit(127);
    }
    d->pid = pid;
}

static char *read_log(const th_daemon_t *d)
{
    static char buf[65536];
    buf[0] = '\0';
    FILE *f = fopen(d->log_path, "r");
    if (!f)
        return buf;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static const char *POOLS_A = "[pools]\n64 = 32\n";
static const char *POOLS_B = "[pools]\n128 = 8\n";

/* READY=1 comes once the socket accepts: a runtime registers at once. */
static void check_notify(const char *notify_name)
{
    th_daemon_t d;
    th_daemon_prepare(&d, POOLS_A);
    char name[300], env[300];
    if (notify_name)
        snprintf(name, sizeof name, "%s", notify_name);
    else
        snprintf(name, sizeof name, "%s/notify.sock", d.base_dir);
    int fd = notify_listen(name, env, sizeof env);
    setenv("NOTIFY_SOCKET", env, 1);
    launch_plain(&d);
    unsetenv("NOTIFY_SOCKET");

    char msg[1024];
    size_t n = notify_recv(fd, msg, sizeof msg, 10000);
    if (n == 0)
        th_daemon_dump_log(&d);
    assert_true(n > 0);
    assert_contains(msg, "READY=1");
    char pidline[64];
    snprintf(pidline, sizeof pidline, "MAINPID=%d", (int)d.pid);
    assert_contains(msg, pidline);
    assert_contains(msg, d.domain);

    shoal_runtime_t *rt = NULL;
    assert_int_equal(th_runtime_create(&d, "after-ready", &rt), SHOAL_OK);
    shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
    assert_true(th_pool_index(rt, 64, &pi) >= 0);

    /* a changed file and SIGHUP: nothing is reloaded, the daemon says so and
     * keeps serving with what it read at start */
    FILE *f = fopen(d.config_path, "w");
    assert_non_null(f);
    fputs(POOLS_B, f);
    fclose(f);
    assert_int_equal(kill(d.pid, SIGHUP), 0);
    n = notify_recv(fd, msg, sizeof msg, 10000);
    assert_true(n > 0);
    assert_contains(msg, "STATUS=");
    assert_contains(msg, "restart");
    assert_int_equal(waitpid(d.pid, NULL, WNOHANG), 0); /* still running */
    shoal_runtime_t *rt2 = NULL;
    assert_int_equal(th_runtime_create(&d, "after-hup", &rt2), SHOAL_OK);
    assert_true(th_pool_index(rt2, 64, &pi) >= 0);
    assert_true(th_pool_index(rt2, 128, &pi) < 0 || pi.chunk_size != 128);
    shoal_runtime_destroy(rt2);
    shoal_runtime_destroy(rt);
    const char *log = read_log(&d);
    assert_contains(log, "not reloaded");
    assert_contains(log, d.config_path);

    th_daemon_stop(&d); /* SIGTERM, exit 0, no files left */
    n = notify_recv(fd, msg, sizeof msg, 1000);
    assert_true(n > 0);
    assert_contains(msg, "STOPPING=1");
    close(fd);
}

static void test_notify_path_socket(void **state)
{
    (void)state;
    check_notify(NULL);
}

static void test_notify_abstract_socket(void **state)
{
    (void)state;
    char name[64];
    snprintf(name, sizeof name, "@shoal-test-notify-%d", (int)getpid());
    check_notify(name);
}

static void test_notify_bad_socket(void **state)
{
    (void)state;
    char out[1024], err[4096];
    const char *args[] = { "--domain", "notifybad", "--runtime-dir", "/nonexistent", NULL };
    setenv("NOTIFY_SOCKET", "relative/notify.sock", 1);
    int code = th_run_shoald(args, out, sizeof out, err, sizeof err, 5000);
    unsetenv("NOTIFY_SOCKET");
    assert_int_equal(code, 1);
    assert_contains(err, "NOTIFY_SOCKET");
    assert_contains(err, "absolute");
}

/* Logs with <N> priority prefixes when stderr is the stream that
 * $JOURNAL_STREAM names, plain timestamped lines when it is not (another
 * inode: stderr was redirected after systemd set the variable). */
static char journal_log[65536];

static void test_journal_format(void **state)
{
    (void)state;
    for (int matching = 1; matching >= 0; matching--) {
        th_daemon_t d;
        th_daemon_prepare(&d, POOLS_A);
        int fd = open(d.log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        struct stat st;
        assert_int_equal(fstat(fd, &st), 0);
        close(fd);
        char env[64];
        snprintf(env, sizeof env, "%llu:%llu", (unsigned long long)st.st_dev,
                 (unsigned long long)st.st_ino + (matching ? 0 : 1));
        setenv("JOURNAL_STREAM", env, 1);
        int rc = th_daemon_launch(&d);
        unsetenv("JOURNAL_STREAM");
        assert_int_equal(rc, 0);
        assert_int_equal(kill(d.pid, SIGHUP), 0);
        for (int i = 0; i < 400 && !strstr(read_log(&d), "SIGHUP"); i++)
            th_sleep_ms(25);
        snprintf(journal_log, sizeof journal_log, "%s", read_log(&d));
        th_daemon_stop(&d);

        assert_contains(journal_log, "SIGHUP");
        if (matching) {
            /* every line carries a priority; info and warning where expected */
            for (char *line = journal_log; *line;) {
                char *end = strchr(line, '\n');
                assert_non_null(end);
                if (!(line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>')) {
                    fprintf(stderr, "unprefixed line: %.*s\n", (int)(end - line), line);
                    fail();
                }
                line = end + 1;
            }
            assert_contains(journal_log, "<6>shoald ");   /* "shoald X listening on" */
            assert_contains(journal_log, "<4>SIGHUP");
        } else {
            assert_null(strstr(journal_log, "<6>"));
            assert_contains(journal_log, "shoald[");
            assert_contains(journal_log, " warn  SIGHUP");
        }
    }
}

/* --log-format journal forces it; an unknown format is refused with the list. */
static void test_log_format_option(void **state)
{
    (void)state;
    char out[1024], err[4096];
    const char *bad[] = { "--log-format", "json", NULL };
    assert_int_equal(th_run_shoald(bad, out, sizeof out, err, sizeof err, 5000), 1);
    assert_contains(err, "json");
    assert_contains(err, "auto|plain|journal");
    const char *forced[] = { "--log-format", "journal", "--domain", "bad domain!", NULL };
    assert_int_equal(th_run_shoald(forced, out, sizeof out, err, sizeof err, 5000), 1);
    assert_true(strncmp(err, "<3>shoald: invalid domain", 25) == 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_notify_path_socket),
        cmocka_unit_test(test_notify_abstract_socket),
        cmocka_unit_test(test_notify_bad_socket),
        cmocka_unit_test(test_journal_format),
        cmocka_unit_test(test_log_format_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
