/* Hostile and unlucky clients against a real shoald: messages full of fds,
 * a daemon out of fds, peers that never read their replies, thousands of
 * connections that never say HELLO, a stopped daemon, other uids. The raw
 * clients speak the protocol of capi/src/core/proto.h by hand. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "core/proto.h"
#include "daemon/daemon.h"

#define MAX_FDS_PER_MSG 253 /* SCM_MAX_FD */

/* ---- /proc ------------------------------------------------------------------ */

static int proc_fd_count(pid_t pid)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
    DIR *dp = opendir(path);
    if (!dp)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(dp)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(dp);
    return n;
}

/* Polls until the fd count is <= want; returns the last count seen. */
static int wait_fd_count_at_most(pid_t pid, int want, int timeout_ms)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        int n = proc_fd_count(pid);
        if (n <= want || th_now_ns() > deadline)
            return n;
        th_sleep_ms(10);
    }
}

/* utime + stime in ms. */
static long proc_cpu_ms(pid_t pid)
{
    char path[64], buf[2048];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p)
        return -1;
    unsigned long ut = 0, st = 0;
    /* after ") ": fields 3..; utime and stime are fields 14 and 15 */
    if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st) != 2)
        return -1;
    return (long)((ut + st) * 1000 / (unsigned long)sysconf(_SC_CLK_TCK));
}

static long proc_nofile_soft(pid_t pid)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/limits", (int)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    long soft = -1;
    while (fgets(line, sizeof line, f))
        if (strncmp(line, "Max open files", 14) == 0)
            soft = strtol(line + 14, NULL, 10);
    fclose(f);
    return soft;
}

static long file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (long)st.st_size : -1;
}

static int log_contains(const th_daemon_t *d, const char *needle)
{
    FILE *f = fopen(d->log_path, "r");
    if (!f)
        return 0;
    char line[4096];
    int found = 0;
    while (!found && fgets(line, sizeof line, f))
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

/* Raises this process's RLIMIT_NOFILE to at least `want`; 0 or -1. */
static int raise_own_nofile(rlim_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return -1;
    if (rl.rlim_cur >= want)
        return 0;
    if (rl.rlim_max < want)
        rl.rlim_max = want; /* only root may */
    rl.rlim_cur = want;
    return setrlimit(RLIMIT_NOFILE, &rl);
}

/* ---- the protocol by hand ------------------------------------------------------- */

static int raw_connect(const th_daemon_t *d, int flags)
{
    int s = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | flags, 0);
    if (s < 0)
        return -1;
    struct sockaddr_un a = { .sun_family = AF_UNIX };
    if (strlen(d->sock_path) >= sizeof a.sun_path) {
        close(s);
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(a.sun_path, d->sock_path, strlen(d->sock_path) + 1);
    if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
        int e = errno;
        close(s);
        errno = e;
        return -1;
    }
    return s;
}

static void msg_init(proto_msg_t *m, uint32_t type)
{
    memset(m, 0, sizeof *m);
    m->magic = PROTO_MAGIC;
    m->type = type;
    m->abi = SHOAL_ABI_VERSION;
    m->pid = getpid();
}

/* Sends `len` bytes of m with n1 fds in a first SCM_RIGHTS cmsg and n2 in a
 * second one. */
static int raw_send(int s, const proto_msg_t *m, size_t len, const int *fds, size_t n1, size_t n2)
{
    struct iovec iov = { .iov_base = (void *)m, .iov_len = len };
    union {
        char buf[2 * CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MSG)];
        struct cmsghdr align;
    } u;
    struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
    memset(&u, 0, sizeof u);
    if (n1) {
        mh.msg_control = u.buf;
        mh.msg_controllen = CMSG_SPACE(sizeof(int) * n1) + (n2 ? CMSG_SPACE(sizeof(int) * n2) : 0);
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int) * n1);
        memcpy(CMSG_DATA(c), fds, sizeof(int) * n1);
        if (n2) {
            c = CMSG_NXTHDR(&mh, c);
            c->cmsg_level = SOL_SOCKET;
            c->cmsg_type = SCM_RIGHTS;
            c->cmsg_len = CMSG_LEN(sizeof(int) * n2);
            memcpy(CMSG_DATA(c), fds + n1, sizeof(int) * n2);
        }
    }
    ssize_t k;
    do {
        k = sendmsg(s, &mh, MSG_NOSIGNAL);
    } while (k < 0 && errno == EINTR);
    return k == (ssize_t)len ? 0 : -1;
}

/* Receives one message (closing any fds in it): 1 message, 0 peer closed,
 * -1 nothing within timeout_ms, -2 error. */
static int raw_recv(int s, proto_msg_t *m, int timeout_ms)
{
    int64_t deadline = th_now_ns() + (int64_t)timeout_ms * TH_MS;
    for (;;) {
        int64_t left = deadline - th_now_ns();
        struct pollfd p = { .fd = s, .events = POLLIN };
        int r = poll(&p, 1, left > 0 ? (int)(left / TH_MS) : 0);
        if (r < 0 && errno == EINTR)
            continue;
        if (r == 0)
            return -1;
        if (r < 0)
            return -2;
        struct iovec iov = { .iov_base = m, .iov_len = sizeof *m };
        union {
            char buf[CMSG_SPACE(sizeof(int) * MAX_FDS_PER_MSG)];
            struct cmsghdr align;
        } u;
        struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
                             .msg_controllen = sizeof u.buf };
        ssize_t k = recvmsg(s, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
        if (k < 0 && (errno == EINTR || errno == EAGAIN))
            continue;
        /* a reset reported before the data queued ahead of it: read on */
        if (k < 0 && errno == ECONNRESET)
            continue;
        if (k < 0)
            return -2;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&mh); c; c = CMSG_NXTHDR(&mh, c)) {
            if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
                continue;
            size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
            for (size_t i = 0; i < n; i++) {
                int fd;
                memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof fd);
                close(fd);
            }
        }
        if (k == 0)
            return 0;
        m->text[sizeof m->text - 1] = 0;
        return k == (ssize_t)sizeof *m ? 1 : -2;
    }
}

static int raw_hello(int s, const char *name)
{
    proto_msg_t m;
    msg_init(&m, PROTO_HELLO);
    snprintf(m.name, sizeof m.name, "%s", name);
    return raw_send(s, &m, sizeof m, NULL, 0, 0);
}

/* HELLO and WELCOME; 0 when registered. */
static int raw_register(int s, const char *name)
{
    proto_msg_t m;
    if (raw_hello(s, name) != 0 || raw_recv(s, &m, 5000) != 1)
        return -1;
    return m.type == PROTO_WELCOME && m.result == SHOAL_OK ? 0 : -1;
}

/* Registration latency of a well-behaved client, in ns (-1 on failure). */
static int64_t timed_register(const th_daemon_t *d)
{
    shoal_runtime_t *rt = NULL;
    int64_t t0 = th_now_ns();
    shoal_result_t rc = th_runtime_create(d, "well-behaved", &rt);
    int64_t el = th_now_ns() - t0;
    if (rc != SHOAL_OK) {
        print_error("registration failed: %s: %s\n", shoal_strerror(rc), shoal_last_error_message());
        return -1;
    }
    shoal_runtime_destroy(rt);
    return el;
}

/* Registers `n` times; asserts each under 50 ms; prints the figures. */
static void assert_fast_registrations(const th_daemon_t *d, int n, const char *under)
{
    int64_t max = 0, sum = 0;
    for (int i = 0; i < n; i++) {
        int64_t el = timed_register(d);
        assert_true(el >= 0);
        sum += el;
        if (el > max)
            max = el;
    }
    print_message("registration under %s: mean %.2f ms, max %.2f ms (%d runs)\n", under,
                  (double)sum / n / 1e6, (double)max / 1e6, n);
    assert_true(max < 50 * TH_MS);
}

/* ---- 1: messages carrying many fds ------------------------------------------------ */

static void test_fd_flood_no_leak(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    int s = raw_connect(d, 0);
    assert_true(s >= 0);
    proto_msg_t m;
    msg_init(&m, 99);
    /* one round trip first, so the daemon has accepted us */
    assert_int_equal(raw_send(s, &m, sizeof m, NULL, 0, 0), 0);
    assert_int_equal(raw_recv(s, &m, 2000), 1);
    int before = proc_fd_count(d->pid);
    assert_true(before > 0);

    int nul = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(nul >= 0);
    int fds[MAX_FDS_PER_MSG];
    for (int i = 0; i < MAX_FDS_PER_MSG; i++)
        fds[i] = nul;
    /* around the old clip (65), the padding case (66), the kernel's maximum */
    static const size_t counts[] = { 1, 64, 65, 66, 67, 100, 252, 253 };
    for (size_t c = 0; c < sizeof counts / sizeof counts[0]; c++) {
        for (int i = 0; i < 20; i++) {
            msg_init(&m, 99);
            assert_int_equal(raw_send(s, &m, sizeof m, fds, counts[c], 0), 0);
            int r = raw_recv(s, &m, 2000);
            if (r != 1)
                print_error("no reply to a message with %zu fds (%d)\n", counts[c], r);
            assert_int_equal(r, 1);
            assert_int_equal(m.result, SHOAL_ERR_INVALID_ARGUMENT);
        }
    }
    /* two SCM_RIGHTS cmsgs in one message */
    for (int i = 0; i < 20; i++) {
        msg_init(&m, 99);
        assert_int_equal(raw_send(s, &m, sizeof m, fds, 100, 153), 0);
        assert_int_equal(raw_recv(s, &m, 2000), 1);
    }
    /* malformed messages with fds: the daemon drops the connection and the fds */
    for (int i = 0; i < 20; i++) {
        int t = raw_connect(d, 0);
        assert_true(t >= 0);
        msg_init(&m, 99);
        assert_int_equal(raw_send(t, &m, 16, fds, i % 2 ? 253 : 66, 0), 0);
        assert_int_equal(raw_recv(t, &m, 2000), 0);
        close(t);
    }
    close(nul);
    int after = wait_fd_count_at_most(d->pid, before, 2000);
    print_message("daemon fds: %d before, %d after 200 messages of 1..253 fds\n", before, after);
    assert_int_equal(after, before);
    close(s);
}

/* ---- 2: the daemon out of fds ---------------------------------------------------- */

typedef struct timed_result {
    int rc;
    int64_t elapsed_ns;
    char msg[1024];
} timed_result_t;

typedef struct timed_arg {
    const th_daemon_t *d;
    int64_t timeout_ns;
    timed_result_t *res;
} timed_arg_t;

/* A child: one shoal_runtime_create with the given connect timeout. */
static int timed_client(void *arg)
{
    timed_arg_t *a = arg;
    shoal_runtime_options_t o;
    shoal_runtime_options_init(&o, SHOAL_RUNTIME_OPTIONS_VERSION);
    o.domain = a->d->domain;
    o.runtime_dir = a->d->runtime_dir;
    o.connect_timeout_ns = a->timeout_ns;
    shoal_runtime_t *rt = NULL;
    int64_t t0 = th_now_ns();
    shoal_result_t rc = shoal_runtime_create(&rt, "timed", &o);
    a->res->elapsed_ns = th_now_ns() - t0;
    a->res->rc = (int)rc;
    snprintf(a->res->msg, sizeof a->res->msg, "%s", shoal_last_error_message());
    if (rc == SHOAL_OK)
        shoal_runtime_destroy(rt);
    return 0;
}

static void test_fd_exhaustion_backs_off(void **state)
{
    (void)state;
    assert_int_equal(raise_own_nofile(4096), 0);
    th_daemon_t d;
    th_daemon_prepare(&d, TH_DEFAULT_CONFIG);
    d.nofile_soft = d.nofile_hard = 64;
    assert_int_equal(th_daemon_launch(&d), 0);
    int base = proc_fd_count(d.pid);
    assert_true(base > 0 && base < 40);

    /* more clients than the daemon has fds: each says HELLO */
    enum { N = 80, PENDING = 10 };
    int socks[N + PENDING];
    for (int i = 0; i < N; i++) {
        socks[i] = raw_connect(&d, 0);
        assert_true(socks[i] >= 0);
        assert_int_equal(raw_hello(socks[i], "filler"), 0);
    }
    int welcomed = 0, refused = 0, silent = 0;
    char refusal[PROTO_TEXT_MAX] = "";
    int64_t deadline = th_now_ns() + 3 * TH_SEC;
    for (int i = 0; i < N; i++) {
        proto_msg_t m;
        int64_t left = deadline - th_now_ns();
        int r = raw_recv(socks[i], &m, left > 0 ? (int)(left / TH_MS) : 0);
        if (r == 1 && m.type == PROTO_WELCOME) {
            welcomed++;
        } else if (r == 1 && m.result == SHOAL_ERR_DAEMON_UNAVAILABLE) {
            if (!refused++)
                snprintf(refusal, sizeof refusal, "%s", m.text);
        } else {
            silent++;
        }
    }
    print_message("RLIMIT_NOFILE 64: %d clients registered, %d refused at once, %d unanswered\n",
                  welcomed, refused, silent);
    print_message("refusal: %s\n", refusal);
    assert_true(welcomed > 0);
    assert_int_equal(silent, 0);
    assert_contains(refusal, "RLIMIT_NOFILE");

    /* with the daemon's fds full: no spinning, no log flood, a client fails
     * within its connect timeout */
    long cpu0 = proc_cpu_ms(d.pid), log0 = file_size(d.log_path);
    timed_result_t *res = th_shared_alloc(sizeof *res);
    assert_non_null(res);
    timed_arg_t ta = { &d, 500 * TH_MS, res };
    pid_t child = th_spawn(timed_client, &ta);
    for (int i = 0; i < PENDING; i++)
        socks[N + i] = raw_connect(&d, SOCK_NONBLOCK);
    th_sleep_ms(1000);
    long cpu1 = proc_cpu_ms(d.pid), log1 = file_size(d.log_path);
    assert_int_equal(th_join(child, 15000), 0);
    print_message("over 1 s with fds exhausted: %ld ms CPU, %ld log bytes; a client with a 500 ms "
                  "connect timeout: %s after %.1f ms: %s\n",
                  cpu1 - cpu0, log1 - log0, shoal_strerror((shoal_result_t)res->rc),
                  (double)res->elapsed_ns / 1e6, res->msg);
    assert_true(res->rc != SHOAL_OK);
    assert_true(res->elapsed_ns < 800 * TH_MS);
    assert_true(cpu1 - cpu0 < 150);
    assert_true(log1 - log0 < 4096);
    th_shared_free(res, sizeof *res);

    /* once the flood is gone, clients register normally */
    for (int i = 0; i < N + PENDING; i++)
        if (socks[i] >= 0)
            close(socks[i]);
    assert_true(wait_fd_count_at_most(d.pid, base, 3000) <= base);
    shoal_runtime_t *rt = th_runtime(&d, "after-the-flood");
    shoal_runtime_destroy(rt);
    th_daemon_stop(&d);
}

static void test_nofile_soft_limit_raised(void **state)
{
    (void)state;
    struct rlimit own;
    assert_int_equal(getrlimit(RLIMIT_NOFILE, &own), 0);
    rlim_t hard = own.rlim_max < 1000 ? own.rlim_max : 1000;
    if (hard <= 64)
        skip();
    th_daemon_t d;
    th_daemon_prepare(&d, TH_DEFAULT_CONFIG);
    d.nofile_soft = 64;
    d.nofile_hard = hard;
    assert_int_equal(th_daemon_launch(&d), 0);
    assert_int_equal(proc_nofile_soft(d.pid), (long)hard);
    th_daemon_stop(&d);
}

/* ---- 3: peers that never read their replies ---------------------------------------- */

typedef struct flood_ctl {
    atomic_int stop;
    atomic_int registered;
    atomic_int disconnected;
} flood_ctl_t;

typedef struct flood_arg {
    const th_daemon_t *d;
    flood_ctl_t *ctl;
} flood_arg_t;

/* Registers, then sends requests without ever reading a reply; again and
 * again when the daemon drops it. */
static int flooder(void *arg)
{
    flood_arg_t *a = arg;
    proto_msg_t m;
    msg_init(&m, PROTO_PORT_DESTROY);
    m.slot = 0xffffffffu; /* a cheap request with a reply */
    while (!atomic_load(&a->ctl->stop)) {
        int s = raw_connect(a->d, 0);
        if (s < 0 || raw_register(s, "flooder") != 0) {
            if (s >= 0)
                close(s);
            th_sleep_ms(5);
            continue;
        }
        atomic_fetch_add(&a->ctl->registered, 1);
        while (!atomic_load(&a->ctl->stop) && raw_send(s, &m, sizeof m, NULL, 0, 0) == 0) {
        }
        if (!atomic_load(&a->ctl->stop))
            atomic_fetch_add(&a->ctl->disconnected, 1);
        close(s);
    }
    return 0;
}

static void test_peers_that_never_read(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    enum { FLOODERS = 10 };
    flood_ctl_t *ctl = th_shared_alloc(sizeof *ctl);
    assert_non_null(ctl);
    flood_arg_t fa = { d, ctl };
    pid_t kids[FLOODERS];
    for (int i = 0; i < FLOODERS; i++)
        kids[i] = th_spawn(flooder, &fa);
    int64_t deadline = th_now_ns() + 3 * TH_SEC;
    while (atomic_load(&ctl->registered) < FLOODERS && th_now_ns() < deadline)
        th_sleep_ms(5);
    th_sleep_ms(200); /* let their socket buffers fill */
    assert_true(atomic_load(&ctl->registered) >= FLOODERS);
    assert_fast_registrations(d, 20, "10 peers flooding requests without reading");
    atomic_store(&ctl->stop, 1);
    for (int i = 0; i < FLOODERS; i++) {
        kill(kids[i], SIGKILL);
        th_join(kids[i], 5000);
    }
    print_message("flooders: %d registrations, %d dropped by the daemon\n",
                  atomic_load(&ctl->registered), atomic_load(&ctl->disconnected));
    assert_true(atomic_load(&ctl->disconnected) > 0);
    assert_true(log_contains(d, "does not read its replies"));
    th_shared_free(ctl, sizeof *ctl);
    /* the daemon is fine */
    shoal_runtime_t *rt = th_runtime(d, "after-flood");
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, rt, "still-works", NULL));
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
}

/* ---- 4: connections that never say HELLO --------------------------------------------- */

static void test_idle_connections_bounded(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    enum { IDLE = 3000 };
    if (raise_own_nofile(IDLE + 256) != 0)
        skip();
    /* a registered process is never timed out */
    shoal_runtime_t *keep = th_runtime(d, "registered-early");
    int base = proc_fd_count(d->pid);
    int *socks = calloc(IDLE, sizeof *socks);
    assert_non_null(socks);
    int64_t t0 = th_now_ns();
    for (int i = 0; i < IDLE; i++) {
        socks[i] = raw_connect(d, 0);
        assert_true(socks[i] >= 0);
    }
    int64_t opened = th_now_ns() - t0;
    assert_fast_registrations(d, 10, "3000 idle connections");
    int peak = proc_fd_count(d->pid);
    print_message("%d idle connections opened in %.0f ms; daemon fds %d (base %d)\n", IDLE,
                  (double)opened / 1e6, peak, base);
    assert_true(peak <= base + DAEMON_UNREGISTERED_MAX + 8);
    /* all closed by the daemon after the handshake bound */
    int after = wait_fd_count_at_most(d->pid, base, DAEMON_HANDSHAKE_TIMEOUT_MS + 2000);
    int64_t gone = th_now_ns() - t0;
    print_message("daemon fds back to %d after %.0f ms\n", after, (double)gone / 1e6);
    assert_int_equal(after, base);
    int closed = 0;
    for (int i = 0; i < IDLE; i++) {
        proto_msg_t m;
        if (raw_recv(socks[i], &m, 0) == 0)
            closed++;
        close(socks[i]);
    }
    free(socks);
    assert_int_equal(closed, IDLE);
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, keep, "still-registered", NULL));
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(keep);
}

/* ---- 5: connect_timeout_ns bounds the whole connect ----------------------------------- */

static void test_connect_timeout_bounds_everything(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    timed_result_t *res = th_shared_alloc(sizeof *res);
    assert_non_null(res);
    timed_arg_t ta = { d, 300 * TH_MS, res };
    assert_int_equal(kill(d->pid, SIGSTOP), 0);

    /* a daemon that accepts nothing and answers nothing */
    pid_t child = th_spawn(timed_client, &ta);
    assert_int_equal(th_join(child, 15000), 0);
    print_message("stopped daemon, 300 ms timeout: %s after %.1f ms: %s\n",
                  shoal_strerror((shoal_result_t)res->rc), (double)res->elapsed_ns / 1e6, res->msg);
    assert_int_equal(res->rc, SHOAL_ERR_TIMEOUT);
    assert_true(res->elapsed_ns >= 250 * TH_MS && res->elapsed_ns < 500 * TH_MS);
    assert_contains(res->msg, "300 ms");
    assert_null(strstr(res->msg, "start it with"));

    /* and a full listen backlog, where connect() itself would block */
    int socks[4096];
    int n = 0;
    while (n < 4096) {
        int s = raw_connect(d, SOCK_NONBLOCK);
        if (s < 0)
            break;
        socks[n++] = s;
    }
    assert_true(n < 4096);
    child = th_spawn(timed_client, &ta);
    assert_int_equal(th_join(child, 5000), 0);
    print_message("full backlog (%d connections), 300 ms timeout: %s after %.1f ms: %s\n", n,
                  shoal_strerror((shoal_result_t)res->rc), (double)res->elapsed_ns / 1e6, res->msg);
    assert_int_equal(res->rc, SHOAL_ERR_TIMEOUT);
    assert_true(res->elapsed_ns >= 250 * TH_MS && res->elapsed_ns < 500 * TH_MS);
    assert_contains(res->msg, "300 ms");

    assert_int_equal(kill(d->pid, SIGCONT), 0);
    for (int i = 0; i < n; i++)
        close(socks[i]);
    th_shared_free(res, sizeof *res);
    shoal_runtime_t *rt = th_runtime(d, "after-the-stop");
    shoal_runtime_destroy(rt);
}

/* Resumes a daemon a failed assertion left stopped, then stops it. */
static int cont_teardown(void **state)
{
    th_fixture_t *fx = *state;
    if (fx->daemon.pid > 0)
        kill(fx->daemon.pid, SIGCONT);
    return th_teardown(state);
}

/* ---- 6: other uids ---------------------------------------------------------------------- */

#define NOBODY 65534
enum { PERM_TRIES = 50 };

typedef struct perm_result {
    int tries, permission;
    int other_rc;
    char other_msg[1024];
    char msg[1024];
} perm_result_t;

typedef struct perm_arg {
    const th_daemon_t *d;
    int tries;
    perm_result_t *res;
} perm_arg_t;

static int as_nobody(void *arg)
{
    perm_arg_t *a = arg;
    if (setgroups(0, NULL) != 0 || setgid(NOBODY) != 0 || setuid(NOBODY) != 0)
        return 3;
    for (int i = 0; i < a->tries; i++) {
        shoal_runtime_t *rt = NULL;
        shoal_result_t rc = th_runtime_create(a->d, "intruder", &rt);
        a->res->tries++;
        if (rc == SHOAL_ERR_PERMISSION) {
            a->res->permission++;
            snprintf(a->res->msg, sizeof a->res->msg, "%s", shoal_last_error_message());
        } else if (!a->res->other_rc) {
            a->res->other_rc = (int)rc;
            snprintf(a->res->other_msg, sizeof a->res->other_msg, "%s",
                     shoal_last_error_message());
        }
        if (rc == SHOAL_OK)
            shoal_runtime_destroy(rt);
    }
    return 0;
}

static perm_result_t *run_as_nobody(const th_daemon_t *d, int tries)
{
    perm_result_t *res = th_shared_alloc(sizeof *res);
    assert_non_null(res);
    perm_arg_t pa = { d, tries, res };
    pid_t child = th_spawn(as_nobody, &pa);
    assert_int_equal(th_join(child, 30000), 0);
    if (res->other_rc)
        print_error("uid %d also got %s: %s\n", NOBODY, shoal_strerror((shoal_result_t)res->other_rc),
                    res->other_msg);
    return res;
}

static void test_other_uid_always_permission(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    if (geteuid() != 0) {
        print_message("skipped: needs root to run a client as uid %d\n", NOBODY);
        skip();
    }
    /* reachable and writable for everybody: the daemon's check decides */
    assert_int_equal(chmod(d->base_dir, 0711), 0);
    assert_int_equal(chmod(d->runtime_dir, 0711), 0);
    assert_int_equal(chmod(d->sock_path, 0777), 0);
    int base = proc_fd_count(d->pid);
    perm_result_t *res = run_as_nobody(d, PERM_TRIES);
    print_message("uid %d: %d of %d attempts got SHOAL_ERR_PERMISSION: %s\n", NOBODY,
                  res->permission, res->tries, res->msg);
    assert_int_equal(res->tries, PERM_TRIES);
    assert_int_equal(res->permission, PERM_TRIES);
    assert_contains(res->msg, "uid 65534");
    assert_contains(res->msg, "uid 0");
    assert_contains(res->msg, "--runtime-dir");
    th_shared_free(res, sizeof *res);
    /* the refused connections are all gone */
    assert_true(wait_fd_count_at_most(d->pid, base, DAEMON_REFUSED_LINGER_MS + 1000) <= base);
    shoal_runtime_t *rt = th_runtime(d, "owner");
    shoal_runtime_destroy(rt);
    chmod(d->sock_path, 0700);
}

static void test_unreachable_runtime_dir(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    if (geteuid() != 0) {
        print_message("skipped: needs root to run a client as uid %d\n", NOBODY);
        skip();
    }
    char mode[16];
    /* the runtime dir is root's and 0700 */
    assert_int_equal(chmod(d->base_dir, 0711), 0);
    assert_int_equal(chmod(d->runtime_dir, 0700), 0);
    perm_result_t *res = run_as_nobody(d, 1);
    print_message("0700 runtime dir: %s\n", res->msg);
    assert_int_equal(res->permission, 1);
    assert_contains(res->msg, d->runtime_dir);
    assert_contains(res->msg, "not reachable");
    assert_contains(res->msg, "uid 0");
    snprintf(mode, sizeof mode, "%04o", 0700);
    assert_contains(res->msg, mode);
    assert_null(strstr(res->msg, "start it with"));
    th_shared_free(res, sizeof *res);

    /* the dir is open, the socket (0700 as the daemon made it) is not */
    assert_int_equal(chmod(d->runtime_dir, 0711), 0);
    res = run_as_nobody(d, 1);
    print_message("0700 socket: %s\n", res->msg);
    assert_int_equal(res->permission, 1);
    assert_contains(res->msg, d->sock_path);
    assert_contains(res->msg, "uid 0");
    assert_contains(res->msg, mode);
    assert_null(strstr(res->msg, "start it with"));
    th_shared_free(res, sizeof *res);
    assert_int_equal(chmod(d->runtime_dir, 0700), 0);
}

/* ---- 6: a request the daemon did not answer in time ------------------------------------ */

/* The late answer must never pair with the next request (it would hand this
 * process another port's slot): the runtime leaves the domain instead, every
 * later call fails at once, and the daemon reclaims what the process held. */
static void test_unanswered_request_leaves_the_domain(void **state)
{
    th_fixture_t *fx = *state;
    th_daemon_t *d = &fx->daemon;
    shoal_runtime_t *rt = th_runtime(d, "stalled");
    shoal_publisher_t *keep = NULL, *late = NULL, *next = NULL;
    assert_ok(shoal_publisher_create(&keep, rt, "stall/keep", NULL));
    shoal_chunk_t *held = NULL;
    assert_ok(shoal_publisher_loan(keep, 64, &held));
    assert_int_equal(kill(d->pid, SIGSTOP), 0);
    int64_t t0 = th_now_ns();
    shoal_result_t rc = shoal_publisher_create(&late, rt, "stall/late", NULL);
    int64_t waited = th_now_ns() - t0;
    char msg[512];
    snprintf(msg, sizeof msg, "%s", shoal_last_error_message());
    assert_int_equal(kill(d->pid, SIGCONT), 0);
    print_message("stopped daemon: create failed after %.1f s: %s\n", (double)waited / 1e9, msg);
    assert_int_equal(rc, SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_null(late);
    assert_contains(msg, "did not answer within 10000 ms");
    assert_contains(msg, "create a new one");
    /* the daemon's late answer is never read as this one's */
    t0 = th_now_ns();
    assert_rc(shoal_publisher_create(&next, rt, "stall/next", NULL), SHOAL_ERR_DAEMON_UNAVAILABLE);
    assert_null(next);
    assert_true(th_now_ns() - t0 < 1000 * TH_MS);
    assert_rc(shoal_publisher_publish(keep, held), SHOAL_ERR_DAEMON_UNAVAILABLE);
    t0 = th_now_ns();
    shoal_publisher_destroy(keep);
    shoal_runtime_destroy(rt);
    assert_true(th_now_ns() - t0 < 2000 * TH_MS); /* no 10 s per port on the way out */
    /* a new runtime works, and the old one's chunk went back to its pool */
    shoal_runtime_t *fresh = th_runtime(d, "fresh");
    int64_t until = th_now_ns() + 3000 * TH_MS;
    while (th_pools_in_use(fresh) != 0 && th_now_ns() < until)
        th_sleep_ms(10);
    assert_int_equal(th_pools_in_use(fresh), 0);
    shoal_publisher_t *pub = NULL;
    assert_ok(shoal_publisher_create(&pub, fresh, "stall/late", NULL));
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(fresh);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        TH_TEST(test_fd_flood_no_leak),
        cmocka_unit_test(test_fd_exhaustion_backs_off),
        cmocka_unit_test(test_nofile_soft_limit_raised),
        TH_TEST(test_peers_that_never_read),
        TH_TEST(test_idle_connections_bounded),
        cmocka_unit_test_prestate_setup_teardown(test_connect_timeout_bounds_everything, th_setup,
                                                 cont_teardown, th_fixture(NULL)),
        cmocka_unit_test_prestate_setup_teardown(test_unanswered_request_leaves_the_domain,
                                                 th_setup, cont_teardown, th_fixture(NULL)),
        TH_TEST(test_other_uid_always_permission),
        TH_TEST(test_unreachable_runtime_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
