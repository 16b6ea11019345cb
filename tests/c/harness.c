/* Test harness: real shoald processes, child processes, pipes, introspection. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef SHOALD_PATH
#error "SHOALD_PATH must be defined (path of the shoald executable)"
#endif

extern char **environ;

const char *const TH_DEFAULT_CONFIG =
    "# shoal test configuration\n"
    "[limits]\n"
    "processes = 64\n"
    "publishers = 256\n"
    "subscribers = 256\n"
    "servers = 512\n"
    "clients = 256\n"
    "services = 256\n"
    "chunks_per_port = 64\n"
    "queue_capacity = 256\n"
    "history = 16\n"
    "\n"
    "[pools]\n"
    "64 = 512\n"
    "1K = 128\n"
    "64K = 16\n";

static atomic_uint th_counter;

void th_report(const char *file, int line, const char *expr, const char *fmt, ...)
{
    char extra[512] = "";
    if (fmt) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(extra, sizeof extra, fmt, ap);
        va_end(ap);
    }
    fprintf(stderr, "[pid %d] %s:%d: check failed: %s%s%s; last error: %s\n", (int)getpid(), file,
            line, expr, fmt ? ": " : "", extra, shoal_last_error_message());
}

int64_t th_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * TH_SEC + ts.tv_nsec;
}

void th_sleep_ms(int ms)
{
    struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

void th_unique_domain(char *out, size_t len)
{
    unsigned n = atomic_fetch_add(&th_counter, 1);
    snprintf(out, len, "t%d-%u", (int)getpid(), n);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fputs(text, f) >= 0, 1);
    assert_int_equal(fclose(f), 0);
}

static void remove_tree(const char *dir);

/* Temp dirs of this test program, removed at exit even when a test failed
 * before its cleanup. */
static char th_dirs[512][256];
static unsigned th_dir_count;
static pid_t th_owner_pid;

static void th_remove_dirs(void)
{
    if (getpid() != th_owner_pid)
        return;
    for (unsigned i = 0; i < th_dir_count; i++)
        if (th_dirs[i][0])
            remove_tree(th_dirs[i]);
}

static void th_track_dir(const char *dir)
{
    if (th_owner_pid == 0) {
        th_owner_pid = getpid();
        atexit(th_remove_dirs);
    }
    if (th_dir_count < sizeof th_dirs / sizeof th_dirs[0])
        snprintf(th_dirs[th_dir_count++], sizeof th_dirs[0], "%s", dir);
}

static void fill_paths(th_daemon_t *d)
{
    snprintf(d->sock_path, sizeof d->sock_path, "%s/%s.sock", d->runtime_dir, d->domain);
    snprintf(d->lock_path, sizeof d->lock_path, "%s/%s.lock", d->runtime_dir, d->domain);
}

void th_daemon_prepare(th_daemon_t *d, const char *config)
{
    memset(d, 0, sizeof *d);
    th_unique_domain(d->domain, sizeof d->domain);
    snprintf(d->base_dir, sizeof d->base_dir, "/tmp/shoal-test-XXXXXX");
    assert_non_null(mkdtemp(d->base_dir));
    th_track_dir(d->base_dir);
    snprintf(d->runtime_dir, sizeof d->runtime_dir, "%s/run", d->base_dir);
    assert_int_equal(mkdir(d->runtime_dir, 0700), 0);
    snprintf(d->log_path, sizeof d->log_path, "%s/shoald.log", d->base_dir);
    if (config) {
        snprintf(d->config_path, sizeof d->config_path, "%s/shoal.conf", d->base_dir);
        write_file(d->config_path, config);
    }
    fill_paths(d);
}

void th_daemon_prepare_shared(th_daemon_t *d, const th_daemon_t *other, const char *config)
{
    th_daemon_prepare(d, config);
    rmdir(d->runtime_dir);
    snprintf(d->runtime_dir, sizeof d->runtime_dir, "%s", other->runtime_dir);
    d->shares_dir = 1;
    fill_paths(d);
}

void th_daemon_dump_log(const th_daemon_t *d)
{
    FILE *f = fopen(d->log_path, "r");
    if (!f)
        return;
    fprintf(stderr, "---- shoald log (domain %s) ----\n", d->domain);
    char buf[4096];
    size_t n;
    size_t total = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0 && total < 64 * 1024) {
        fwrite(buf, 1, n, stderr);
        total += n;
    }
    fprintf(stderr, "---- end of log ----\n");
    fclose(f);
}

static int wait_exit(pid_t pid, int timeout_ms, int *status)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -2;
        if (th_now_ns() > deadline)
            return -1;
        th_sleep_ms(2);
    }
}

static int status_code(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 128 + WTERMSIG(status);
    return 255;
}

int th_daemon_launch(th_daemon_t *d)
{
    int pfd[2];
    if (pipe2(pfd, O_CLOEXEC) != 0)
        return -1;
    char fdarg[16];
    snprintf(fdarg, sizeof fdarg, "%d", pfd[1]);
    const char *level = getenv("SHOAL_TEST_LOG_LEVEL");
    if (!level || !*level)
        level = "debug";
    const char *argv[16];
    int n = 0;
    argv[n++] = SHOALD_PATH;
    argv[n++] = "--domain";
    argv[n++] = d->domain;
    argv[n++] = "--runtime-dir";
    argv[n++] = d->runtime_dir;
    argv[n++] = "--log-level";
    argv[n++] = level;
    if (d->config_path[0]) {
        argv[n++] = "--config";
        argv[n++] = d->config_path;
    }
    argv[n++] = "--ready-fd";
    argv[n++] = fdarg;
    argv[n] = NULL;

    int logfd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    if (logfd < 0) {
        close(pfd[0]);
        close(pfd[1]);
        return -1;
    }
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0) {
        close(pfd[0]);
        close(pfd[1]);
        close(logfd);
        return -1;
    }
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        fcntl(pfd[1], F_SETFD, 0); /* the ready fd survives exec */
        if (d->nofile_hard) {
            struct rlimit rl = { d->nofile_soft, d->nofile_hard };
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
                _exit(126);
        }
        execv(SHOALD_PATH, (char *const *)argv);
        _exit(127);
    }
    close(pfd[1]);
    close(logfd);
    d->pid = pid;

    /* Wait up to 5 s for "ready\n". */
    char buf[16] = { 0 };
    size_t got = 0;
    int64_t deadline = th_now_ns() + 5 * TH_SEC;
    int ok = 0;
    while (got < sizeof buf - 1) {
        int64_t left = deadline - th_now_ns();
        if (left <= 0)
            break;
        struct pollfd p = { .fd = pfd[0], .events = POLLIN };
        int r = poll(&p, 1, (int)(left / TH_MS) + 1);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            break;
        ssize_t k = read(pfd[0], buf + got, sizeof buf - 1 - got);
        if (k < 0 && errno == EINTR)
            continue;
        if (k <= 0)
            break;
        got += (size_t)k;
        if (strchr(buf, '\n')) {
            ok = strncmp(buf, "ready\n", 6) == 0;
            break;
        }
    }
    close(pfd[0]);
    if (!ok) {
        fprintf(stderr, "shoald (domain %s) did not report ready within 5 s (read \"%s\")\n",
                d->domain, buf);
        int status;
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        fprintf(stderr, "shoald exit status: %d\n", status_code(status));
        th_daemon_dump_log(d);
        d->pid = 0;
        return -1;
    }
    return 0;
}

void th_daemon_start(th_daemon_t *d, const char *config)
{
    th_daemon_prepare(d, config);
    if (th_daemon_launch(d) != 0) {
        th_daemon_cleanup(d);
        fail_msg("could not start shoald");
    }
}

static void remove_tree(const char *dir)
{
    DIR *dp = opendir(dir);
    if (!dp)
        return;
    struct dirent *e;
    char path[1024];
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        struct stat st;
        if (lstat(path, &st) == 0 && S_ISDIR(st.st_mode))
            remove_tree(path);
        else
            unlink(path);
    }
    closedir(dp);
    rmdir(dir);
}

void th_daemon_cleanup(th_daemon_t *d)
{
    if (d->base_dir[0])
        remove_tree(d->base_dir);
    d->base_dir[0] = 0;
}

void th_daemon_kill(th_daemon_t *d)
{
    if (d->pid > 0) {
        int status;
        kill(d->pid, SIGKILL);
        waitpid(d->pid, &status, 0);
    }
    d->pid = 0;
}

/* Lists the files in the runtime dir left by this daemon (all files unless it
 * shares the dir). */
static int leftover_files(const th_daemon_t *d, char *names, size_t len)
{
    names[0] = 0;
    DIR *dp = opendir(d->runtime_dir);
    if (!dp)
        return 0;
    int count = 0;
    struct dirent *e;
    size_t dl = strlen(d->domain);
    while ((e = readdir(dp)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (d->shares_dir && !(strncmp(e->d_name, d->domain, dl) == 0 && e->d_name[dl] == '.'))
            continue;
        count++;
        size_t used = strlen(names);
        snprintf(names + used, len - used, "%s ", e->d_name);
    }
    closedir(dp);
    return count;
}

void th_daemon_stop(th_daemon_t *d)
{
    if (d->pid <= 0) {
        th_daemon_cleanup(d);
        return;
    }
    pid_t pid = d->pid;
    d->pid = 0;
    assert_int_equal(kill(pid, SIGTERM), 0);
    int status = 0;
    int w = wait_exit(pid, 5000, &status);
    if (w != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        th_daemon_dump_log(d);
        th_daemon_cleanup(d);
        fail_msg("shoald (domain %s) did not exit within 5 s of SIGTERM", d->domain);
    }
    int code = status_code(status);
    char names[1024];
    int left = leftover_files(d, names, sizeof names);
    if (code != 0 || left != 0) {
        th_daemon_dump_log(d);
        th_daemon_cleanup(d);
        if (code != 0)
            fail_msg("shoald (domain %s) exit status after SIGTERM: %d (expected 0)", d->domain,
                     code);
        fail_msg("shoald (domain %s) left files in its runtime dir: %s", d->domain, names);
    }
    th_daemon_cleanup(d);
}

void th_daemon_export_env(const th_daemon_t *d)
{
    setenv("SHOAL_DOMAIN", d->domain, 1);
    setenv("SHOAL_RUNTIME_DIR", d->runtime_dir, 1);
}

/* Static storage: the fixtures live as long as the test program. */
static th_fixture_t th_fixtures[256];
static unsigned th_fixture_count;

void *th_fixture(const char *config)
{
    if (th_fixture_count >= sizeof th_fixtures / sizeof th_fixtures[0])
        abort();
    th_fixture_t *fx = &th_fixtures[th_fixture_count++];
    fx->config = config;
    return fx;
}

int th_setup(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_prepare(&fx->daemon, fx->config ? fx->config : TH_DEFAULT_CONFIG);
    if (th_daemon_launch(&fx->daemon) != 0) {
        th_daemon_cleanup(&fx->daemon);
        return -1;
    }
    return 0;
}

int th_teardown(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_stop(&fx->daemon);
    return 0;
}

/* ---- running programs ------------------------------------------------------ */

static void read_back(int fd, char *buf, size_t len)
{
    if (!buf || len == 0)
        return;
    lseek(fd, 0, SEEK_SET);
    size_t got = 0;
    while (got < len - 1) {
        ssize_t k = read(fd, buf + got, len - 1 - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    buf[got] = 0;
}

int th_run_program(const char *path, const char *const *argv, const char *const *extra_env,
                   char *out, size_t outlen, char *err, size_t errlen, int timeout_ms)
{
    char outp[] = "/tmp/shoal-test-out-XXXXXX";
    char errp[] = "/tmp/shoal-test-err-XXXXXX";
    int ofd = mkstemp(outp);
    int efd = mkstemp(errp);
    if (ofd < 0 || efd < 0)
        return -2;
    unlink(outp);
    unlink(errp);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -2;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(ofd, 1);
        dup2(efd, 2);
        for (int i = 0; extra_env && extra_env[i]; i++)
            putenv((char *)extra_env[i]);
        execv(path, (char *const *)argv);
        _exit(127);
    }
    int status = 0;
    int code;
    if (wait_exit(pid, timeout_ms, &status) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        code = -1;
    } else {
        code = status_code(status);
    }
    read_back(ofd, out, outlen);
    read_back(efd, err, errlen);
    close(ofd);
    close(efd);
    return code;
}

int th_run_shoald(const char *const *args, char *out, size_t outlen, char *err, size_t errlen,
                  int timeout_ms)
{
    const char *argv[32];
    int n = 0;
    argv[n++] = SHOALD_PATH;
    for (int i = 0; args && args[i] && n < 31; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    return th_run_program(SHOALD_PATH, argv, NULL, out, outlen, err, errlen, timeout_ms);
}

/* ---- runtime --------------------------------------------------------------- */

shoal_result_t th_runtime_create(const th_daemon_t *d, const char *name, shoal_runtime_t **out)
{
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = d->domain;
    o.runtime_dir = d->runtime_dir;
    o.connect_timeout_ns = 2 * TH_SEC;
    return shoal_runtime_create(out, name, &o);
}

shoal_runtime_t *th_runtime(const th_daemon_t *d, const char *name)
{
    shoal_runtime_t *rt = NULL;
    assert_ok(th_runtime_create(d, name, &rt));
    assert_non_null(rt);
    return rt;
}

/* ---- children ---------------------------------------------------------------- */

pid_t th_spawn(th_child_fn fn, void *arg)
{
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        /* cmocka's handlers would turn a crash in the child into a second
         * copy of the test run: a child crashes like a process */
        static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        int rc = fn(arg);
        if (rc != 0 && (rc & 0xff) == 0)
            rc = 1;
        _exit(rc != 0 ? (rc > 255 || rc < 0 ? 1 : rc) : 0);
    }
    return pid;
}

int th_join(pid_t pid, int timeout_ms)
{
    int status = 0;
    if (wait_exit(pid, timeout_ms, &status) != 0) {
        kill(pid, SIGKILL);
        waitpid(pid, &status, 0);
        return -1;
    }
    return status_code(status);
}

void *th_shared_alloc(size_t size)
{
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void th_shared_free(void *p, size_t size)
{
    if (p)
        munmap(p, size);
}

void th_chan_open(th_chan_t *c)
{
    int fds[2];
    if (pipe(fds) != 0) {
        c->rd = c->wr = -1;
        return;
    }
    c->rd = fds[0];
    c->wr = fds[1];
}

void th_chan_close(th_chan_t *c)
{
    if (c->rd >= 0)
        close(c->rd);
    if (c->wr >= 0)
        close(c->wr);
    c->rd = c->wr = -1;
}

int th_chan_send(th_chan_t *c, char byte)
{
    for (;;) {
        ssize_t k = write(c->wr, &byte, 1);
        if (k == 1)
            return 0;
        if (k < 0 && errno == EINTR)
            continue;
        return -1;
    }
}

int th_chan_recv(th_chan_t *c, int timeout_ms)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        int64_t left = deadline - th_now_ns();
        if (left < 0)
            left = 0;
        struct pollfd p = { .fd = c->rd, .events = POLLIN };
        int r = poll(&p, 1, (int)(left / TH_MS));
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        if (r < 0)
            return -2;
        char b;
        ssize_t k = read(c->rd, &b, 1);
        if (k < 0 && errno == EINTR)
            continue;
        if (k != 1)
            return -2;
        return (unsigned char)b;
    }
}

int th_chan_poll(th_chan_t *c)
{
    return th_chan_recv(c, 0);
}

/* ---- introspection ------------------------------------------------------------ */

uint32_t th_pools_in_use(const shoal_runtime_t *rt)
{
    uint32_t total = 0;
    uint32_t n = shoal_runtime_pool_count(rt);
    for (uint32_t i = 0; i < n; i++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        if (shoal_runtime_pool_info(rt, i, &pi) == SHOAL_OK)
            total += pi.in_use;
    }
    return total;
}

uint32_t th_wait_in_use(const shoal_runtime_t *rt, uint32_t expected, int timeout_ms)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        uint32_t v = th_pools_in_use(rt);
        if (v == expected || th_now_ns() > deadline)
            return v;
        th_sleep_ms(2);
    }
}

static int port_matches(const shoal_port_info_t *pi, int kind, pid_t pid, const char *service)
{
    if (kind && (int)pi->kind != kind)
        return 0;
    if (pid && pi->pid != (int32_t)pid)
        return 0;
    if (service && strcmp(pi->service, service) != 0)
        return 0;
    return 1;
}

uint32_t th_port_count(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service)
{
    uint32_t count = 0;
    uint32_t slots = shoal_runtime_port_slots(rt);
    for (uint32_t s = 0; s < slots; s++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        if (shoal_runtime_port_info(rt, s, &pi) != SHOAL_OK)
            continue;
        if (port_matches(&pi, kind, pid, service))
            count++;
    }
    return count;
}

uint32_t th_wait_port_count(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service,
                            uint32_t expected, int timeout_ms)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        uint32_t v = th_port_count(rt, kind, pid, service);
        if (v == expected || th_now_ns() > deadline)
            return v;
        th_sleep_ms(2);
    }
}

int th_find_port(const shoal_runtime_t *rt, int kind, pid_t pid, const char *service,
                 shoal_port_info_t *out)
{
    uint32_t slots = shoal_runtime_port_slots(rt);
    for (uint32_t s = 0; s < slots; s++) {
        shoal_port_info_t pi = SHOAL_PORT_INFO_INIT;
        if (shoal_runtime_port_info(rt, s, &pi) != SHOAL_OK)
            continue;
        if (port_matches(&pi, kind, pid, service)) {
            if (out)
                *out = pi;
            return 0;
        }
    }
    return -1;
}

int th_pool_index(const shoal_runtime_t *rt, uint64_t chunk_size, shoal_pool_info_t *out)
{
    uint32_t n = shoal_runtime_pool_count(rt);
    for (uint32_t i = 0; i < n; i++) {
        shoal_pool_info_t pi = SHOAL_POOL_INFO_INIT;
        if (shoal_runtime_pool_info(rt, i, &pi) == SHOAL_OK && pi.chunk_size == chunk_size) {
            if (out)
                *out = pi;
            return (int)i;
        }
    }
    return -1;
}
