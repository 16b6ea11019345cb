/*
 * Several users, one domain: [access] users, groups and socket_group, and the
 * [access.topic]/[access.service] rules, against a real shoald.
 *
 * As root, the group setup creates two users and two groups with unique names
 * (useradd/groupadd; removed in the group teardown, whatever happened):
 *   A: own primary group, supplementary member of G1
 *   B: own primary group, supplementary member of G2
 * Clients are child processes that drop to such credentials (setgroups,
 * setgid, setuid after fork) and then register, create ports and exchange
 * data through the daemon's shared memory. Allowed and refused cases are
 * shown for users by name and number, primary groups, supplementary groups
 * (as the process has them, not as the group database says), the runtime
 * directory and socket modes, and per-topic and per-service rules.
 *
 * Without root every test that needs the users skips with a message; the
 * start-up checks (unknown names) run as any user.
 */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <pwd.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int have_root;
static char user_a[33], user_b[33], group_1[33], group_2[33];
static uid_t uid_a, uid_b;
static gid_t gid_a, gid_b, gid_1, gid_2; /* primary groups of A and B; G1; G2 */
static int made[4];                      /* which of A, B, G1, G2 exist */

#define SKIP_UNLESS_ROOT()                                                                  \
    do {                                                                                    \
        if (!have_root) {                                                                   \
            print_message("skipped: needs root to create users and run clients as them\n"); \
            skip();                                                                         \
        }                                                                                   \
    } while (0)

static int run(const char *path, const char *const *argv)
{
    char out[1024], err[2048];
    int rc = th_run_program(path, argv, NULL, out, sizeof out, err, sizeof err, 30000);
    if (rc != 0)
        print_error("%s %s %s: exit %d: %s%s\n", argv[0], argv[1] ? argv[1] : "",
                    argv[2] ? argv[2] : "", rc, out, err);
    return rc;
}

static const char *tool(const char *name)
{
    static char buf[4][64];
    static int n;
    char *b = buf[n++ % 4];
    const char *dirs[] = { "/usr/sbin", "/sbin", "/usr/bin", "/bin" };
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        snprintf(b, 64, "%s/%s", dirs[i], name);
        if (access(b, X_OK) == 0)
            return b;
    }
    return NULL;
}

static int group_teardown(void **state)
{
    (void)state;
    const char *userdel = tool("userdel"), *groupdel = tool("groupdel");
    if (made[0] && userdel)
        run(userdel, (const char *const[]){ "userdel", user_a, NULL });
    if (made[1] && userdel)
        run(userdel, (const char *const[]){ "userdel", user_b, NULL });
    /* the users' own groups go with them where USERGROUPS_ENAB is on */
    if (made[0] && groupdel && getgrnam(user_a))
        run(groupdel, (const char *const[]){ "groupdel", user_a, NULL });
    if (made[1] && groupdel && getgrnam(user_b))
        run(groupdel, (const char *const[]){ "groupdel", user_b, NULL });
    if (made[2] && groupdel)
        run(groupdel, (const char *const[]){ "groupdel", group_1, NULL });
    if (made[3] && groupdel)
        run(groupdel, (const char *const[]){ "groupdel", group_2, NULL });
    memset(made, 0, sizeof made);
    return 0;
}

static int group_setup(void **state)
{
    have_root = geteuid() == 0;
    if (!have_root) {
        print_message("not root: the tests that need two extra users skip\n");
        return 0;
    }
    const char *useradd = tool("useradd"), *groupadd = tool("groupadd");
    if (!useradd || !groupadd || !tool("userdel") || !tool("groupdel")) {
        print_error("useradd/groupadd/userdel/groupdel not found (Debian: apt-get install passwd)\n");
        return -1;
    }
    int pid = (int)getpid();
    snprintf(user_a, sizeof user_a, "shac%da", pid);
    snprintf(user_b, sizeof user_b, "shac%db", pid);
    snprintf(group_1, sizeof group_1, "shac%dg1", pid);
    snprintf(group_2, sizeof group_2, "shac%dg2", pid);
    if (run(groupadd, (const char *const[]){ "groupadd", group_1, NULL }) != 0)
        goto fail;
    made[2] = 1;
    if (run(groupadd, (const char *const[]){ "groupadd", group_2, NULL }) != 0)
        goto fail;
    made[3] = 1;
    if (run(useradd, (const char *const[]){ "useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-G",
                                            group_1, user_a, NULL }) != 0)
        goto fail;
    made[0] = 1;
    if (run(useradd, (const char *const[]){ "useradd", "-M", "-U", "-s", "/usr/sbin/nologin", "-G",
                                            group_2, user_b, NULL }) != 0)
        goto fail;
    made[1] = 1;
    struct passwd *pa = getpwnam(user_a);
    if (!pa)
        goto fail;
    uid_a = pa->pw_uid;
    gid_a = pa->pw_gid;
    struct passwd *pb = getpwnam(user_b);
    if (!pb)
        goto fail;
    uid_b = pb->pw_uid;
    gid_b = pb->pw_gid;
    struct group *g1 = getgrnam(group_1);
    if (!g1)
        goto fail;
    gid_1 = g1->gr_gid;
    struct group *g2 = getgrnam(group_2);
    if (!g2)
        goto fail;
    gid_2 = g2->gr_gid;
    print_message("users %s (uid %d, gid %d, +%s %d) and %s (uid %d, gid %d, +%s %d)\n", user_a,
                  (int)uid_a, (int)gid_a, group_1, (int)gid_1, user_b, (int)uid_b, (int)gid_b,
                  group_2, (int)gid_2);
    return 0;
fail:
    print_error("could not create the test users and groups\n");
    group_teardown(state);
    return -1;
}

/* ---- clients as other users ------------------------------------------------------------ */

typedef struct cred {
    uid_t uid;
    gid_t gid;
    int ngroups;
    gid_t groups[4];
} cred_t;

/* What login gives the user: its primary group and its memberships. */
static cred_t login_of(uid_t uid, gid_t gid, gid_t extra)
{
    cred_t c = { uid, gid, 2, { gid, extra, 0, 0 } };
    return c;
}

enum { MAX_STEPS = 8 };

typedef struct attempt {
    const th_daemon_t *d;
    cred_t who;
    int steps;
    int kind[MAX_STEPS];
    char name[MAX_STEPS][64];
    /* results, in shared memory */
    int became;
    int reg_rc;
    char reg_msg[1100];
    int rc[MAX_STEPS];
    char msg[MAX_STEPS][1100];
} attempt_t;

static int become(const cred_t *c)
{
    if (setgroups((size_t)c->ngroups, c->groups) != 0 || setgid(c->gid) != 0 || setuid(c->uid) != 0)
        return -1;
    /* no way back: this really is that user now */
    if (getuid() != c->uid || geteuid() != c->uid || getegid() != c->gid || setuid(0) == 0)
        return -1;
    return 0;
}

static shoal_result_t create_port(shoal_runtime_t *rt, int kind, const char *name, void **port)
{
    switch (kind) {
    case SHOAL_PORT_PUBLISHER:
        return shoal_publisher_create((shoal_publisher_t **)port, rt, name, NULL);
    case SHOAL_PORT_SUBSCRIBER:
        return shoal_subscriber_create((shoal_subscriber_t **)port, rt, name, NULL);
    case SHOAL_PORT_SERVER:
        return shoal_server_create((shoal_server_t **)port, rt, name, NULL);
    default:
        return shoal_client_create((shoal_client_t **)port, rt, name, NULL);
    }
}

static void destroy_port(int kind, void *port)
{
    switch (kind) {
    case SHOAL_PORT_PUBLISHER: shoal_publisher_destroy(port); break;
    case SHOAL_PORT_SUBSCRIBER: shoal_subscriber_destroy(port); break;
    case SHOAL_PORT_SERVER: shoal_server_destroy(port); break;
    default: shoal_client_destroy(port); break;
    }
}

static int attempt_child(void *arg)
{
    attempt_t *a = arg;
    WCHECK(become(&a->who) == 0);
    a->became = 1;
    shoal_runtime_t *rt = NULL;
    a->reg_rc = (int)th_runtime_create(a->d, "access-client", &rt);
    snprintf(a->reg_msg, sizeof a->reg_msg, "%s", shoal_last_error_message());
    if (a->reg_rc != SHOAL_OK)
        return 0;
    /* one runtime: a refused port leaves it usable for the next one */
    for (int i = 0; i < a->steps; i++) {
        void *port = NULL;
        a->rc[i] = (int)create_port(rt, a->kind[i], a->name[i], &port);
        snprintf(a->msg[i], sizeof a->msg[i], "%s", a->rc[i] ? shoal_last_error_message() : "");
        if (a->rc[i] == SHOAL_OK)
            destroy_port(a->kind[i], port);
    }
    shoal_runtime_destroy(rt);
    return 0;
}

/* Runs the steps "KIND:name" (P, S, V(server), C) as `who`; the result
 * lives in shared memory (th_shared_free it). */
static attempt_t *attempt(const th_daemon_t *d, cred_t who, const char *const *steps)
{
    attempt_t *a = th_shared_alloc(sizeof *a);
    assert_non_null(a);
    a->d = d;
    a->who = who;
    for (; steps && steps[a->steps] && a->steps < MAX_STEPS; a->steps++) {
        const char *s = steps[a->steps];
        a->kind[a->steps] = s[0] == 'P'   ? SHOAL_PORT_PUBLISHER
                            : s[0] == 'S' ? SHOAL_PORT_SUBSCRIBER
                            : s[0] == 'V' ? SHOAL_PORT_SERVER
                                          : SHOAL_PORT_CLIENT;
        snprintf(a->name[a->steps], sizeof a->name[0], "%s", s + 2);
    }
    pid_t child = th_spawn(attempt_child, a);
    assert_true(child > 0);
    assert_int_equal(th_join(child, 30000), 0);
    assert_int_equal(a->became, 1);
    return a;
}

static void expect_admitted(const th_daemon_t *d, cred_t who, const char *label)
{
    attempt_t *a = attempt(d, who, NULL);
    if (a->reg_rc != SHOAL_OK)
        print_error("%s (uid %d) was refused: %s\n", label, (int)who.uid, a->reg_msg);
    assert_int_equal(a->reg_rc, SHOAL_OK);
    th_shared_free(a, sizeof *a);
}

/* Returns the refusal message (static). */
static const char *expect_refused(const th_daemon_t *d, cred_t who, const char *label)
{
    static char msg[1100];
    attempt_t *a = attempt(d, who, NULL);
    if (a->reg_rc != SHOAL_ERR_PERMISSION)
        print_error("%s (uid %d) got %s, not SHOAL_ERR_PERMISSION: %s\n", label, (int)who.uid,
                    shoal_strerror((shoal_result_t)a->reg_rc), a->reg_msg);
    assert_int_equal(a->reg_rc, SHOAL_ERR_PERMISSION);
    snprintf(msg, sizeof msg, "%s", a->reg_msg);
    print_message("%s refused: %s\n", label, msg);
    th_shared_free(a, sizeof *a);
    return msg;
}

static char config_text[4096];

/* The harness's limits and pools plus `access`; starts the daemon and lets
 * other users through the test's private base directory (the runtime
 * directory and the socket are shoald's business). */
static void start(th_daemon_t *d, const char *access)
{
    snprintf(config_text, sizeof config_text, "%s\n%s", TH_DEFAULT_CONFIG, access);
    th_daemon_start(d, config_text);
    assert_int_equal(chmod(d->base_dir, 0711), 0);
}

/* Line of the config (as started) on which `needle` first appears. */
static unsigned line_of(const char *needle)
{
    const char *at = strstr(config_text, needle);
    assert_non_null(at);
    unsigned line = 1;
    for (const char *c = config_text; c < at; c++)
        line += *c == '\n';
    return line;
}

static void assert_mode(const char *path, mode_t mode, gid_t gid)
{
    struct stat st;
    assert_int_equal(stat(path, &st), 0);
    if ((st.st_mode & 07777) != mode || st.st_gid != gid)
        print_error("%s: mode %04o group %d, expected %04o group %d\n", path,
                    (unsigned)(st.st_mode & 07777), (int)st.st_gid, (unsigned)mode, (int)gid);
    assert_int_equal(st.st_mode & 07777, mode);
    assert_int_equal(st.st_gid, gid);
}


/* The daemon's log so far (static buffer). */
static const char *daemon_log(const th_daemon_t *d)
{
    static char buf[1 << 20];
    size_t used = 0;
    int fd = open(d->log_path, O_RDONLY | O_CLOEXEC);
    ssize_t n;
    while (fd >= 0 && used < sizeof buf - 1 && (n = read(fd, buf + used, sizeof buf - 1 - used)) > 0)
        used += (size_t)n;
    buf[used] = '\0';
    if (fd >= 0)
        close(fd);
    return buf;
}

/* ---- [access] users ------------------------------------------------------------------------ */

static void test_users_by_name_and_number(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    th_daemon_t d;
    char access[256];
    snprintf(access, sizeof access, "[access]\nusers = %s\n", user_a);
    start(&d, access);
    /* reachable for every uid; the daemon's check decides and says why */
    assert_mode(d.runtime_dir, 0755, 0);
    assert_mode(d.sock_path, 0666, 0);
    expect_admitted(&d, login_of(uid_a, gid_a, gid_1), "A");
    const char *msg = expect_refused(&d, login_of(uid_b, gid_b, gid_2), "B");
    char want[512];
    /* no group is named anywhere, so none are read */
    snprintf(want, sizeof want, "uid %d (gid %d) may not use domain '%s'", (int)uid_b, (int)gid_b,
             d.domain);
    assert_contains(msg, want);
    snprintf(want, sizeof want, "%s:%u", d.config_path, line_of("[access]"));
    assert_contains(msg, want);
    snprintf(want, sizeof want, "users = %s (uid %d) (line %u)", user_a, (int)uid_a,
             line_of("users ="));
    assert_contains(msg, want);
    assert_contains(msg, "restart shoald");
    /* the owner and root are admitted as before */
    shoal_runtime_t *rt = th_runtime(&d, "root");
    shoal_runtime_destroy(rt);
    /* the refusal is logged; so is the private base directory (0700 when
     * shoald started) that would have hidden the socket from A */
    const char *log = daemon_log(&d);
    snprintf(want, sizeof want, "uid %d (gid %d) may not use domain", (int)uid_b, (int)gid_b);
    assert_contains(log, want);
    snprintf(want, sizeof want, "%s (owner uid 0, group 0, mode 0700) cannot be traversed",
             d.base_dir);
    assert_contains(log, want);
    th_daemon_stop(&d);

    /* a numeric uid needs no passwd entry; nobody else gets in */
    snprintf(access, sizeof access, "[access]\nusers = %d, 4000000000\n", (int)uid_b);
    start(&d, access);
    expect_admitted(&d, login_of(uid_b, gid_b, gid_2), "B by number");
    msg = expect_refused(&d, login_of(uid_a, gid_a, gid_1), "A");
    snprintf(want, sizeof want, "users = %d, 4000000000 (line", (int)uid_b);
    assert_contains(msg, want);
    th_daemon_stop(&d);

    /* users = * admits every uid */
    start(&d, "[access]\nusers = *\n");
    expect_admitted(&d, login_of(uid_a, gid_a, gid_1), "A under users = *");
    cred_t b_bare = { uid_b, gid_b, 0, { 0 } };
    expect_admitted(&d, b_bare, "B under users = *");
    th_daemon_stop(&d);
}

/* ---- [access] groups ----------------------------------------------------------------------- */

static void test_groups_primary_and_supplementary(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    th_daemon_t d;
    char access[256], want[256];
    snprintf(access, sizeof access, "[access]\ngroups = %s\n", group_1);
    start(&d, access);
    /* A is a member of G1 by the group database, and its process has it */
    expect_admitted(&d, login_of(uid_a, gid_a, gid_1), "A with its login groups");
    /* the same uid without the group: the process's own groups decide */
    cred_t a_dropped = { uid_a, gid_a, 0, { 0 } };
    const char *msg = expect_refused(&d, a_dropped, "A without supplementary groups");
    assert_contains(msg, "supplementary groups: none");
    snprintf(want, sizeof want, "groups = %s (gid %d) (line %u)", group_1, (int)gid_1,
             line_of("groups ="));
    assert_contains(msg, want);
    /* B is no member of G1 in the group database, but its process is */
    cred_t b_given = { uid_b, gid_b, 2, { gid_b, gid_1, 0, 0 } };
    expect_admitted(&d, b_given, "B given G1 as a supplementary group");
    /* G1 as the primary group counts too */
    cred_t b_primary = { uid_b, gid_1, 0, { 0 } };
    expect_admitted(&d, b_primary, "B with G1 as its primary group");
    msg = expect_refused(&d, login_of(uid_b, gid_b, gid_2), "B with its login groups");
    /* the kernel keeps a process's groups sorted */
    gid_t lo = gid_b < gid_2 ? gid_b : gid_2, hi = gid_b < gid_2 ? gid_2 : gid_b;
    snprintf(want, sizeof want, "supplementary groups %d, %d)", (int)lo, (int)hi);
    assert_contains(msg, want);
    assert_contains(msg, "no users");
    th_daemon_stop(&d);
}

/* ---- socket_group ------------------------------------------------------------------------- */

static void test_socket_group_modes(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    th_daemon_t d;
    char access[256], want[256];
    snprintf(access, sizeof access, "[access]\ngroups = %s\nsocket_group = %s\n", group_1,
             group_1);
    start(&d, access);
    assert_mode(d.runtime_dir, 0750, gid_1);
    assert_mode(d.sock_path, 0660, gid_1);
    expect_admitted(&d, login_of(uid_a, gid_a, gid_1), "A (member of the socket group)");
    /* the kernel refuses B before the daemon sees it; the library says whose
     * directory it is and which group reaches it */
    const char *msg = expect_refused(&d, login_of(uid_b, gid_b, gid_2), "B (not a member)");
    assert_contains(msg, d.runtime_dir);
    assert_contains(msg, "not reachable");
    snprintf(want, sizeof want, "group %d", (int)gid_1);
    assert_contains(msg, want);
    assert_contains(msg, "0750");
    cred_t b_given = { uid_b, gid_b, 2, { gid_b, gid_1, 0, 0 } };
    expect_admitted(&d, b_given, "B given G1");
    th_daemon_stop(&d);
}

/* ---- data between users --------------------------------------------------------------------- */

enum { SAMPLES = 12, SAMPLE_BYTES = 60000 }; /* the 64K pool has 16 chunks */

typedef struct exchange {
    const th_daemon_t *d;
    cred_t who;
    th_chan_t ready;
    int became;
    int sent, answered, calls_ok;
} exchange_t;

static unsigned char pattern_byte(int sample, size_t i)
{
    return (unsigned char)(sample * 31 + i * 7);
}

/* As A: publishes SAMPLES large samples (written into the shared payload
 * segment), then serves "acc/calc" until it answered B's calls. */
static int publisher_server(void *arg)
{
    exchange_t *x = arg;
    WCHECK(become(&x->who) == 0);
    x->became = 1;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "user-a", &rt));
    shoal_publisher_t *pub = NULL;
    shoal_server_t *srv = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "acc/data", NULL));
    WCHECK_OK(shoal_server_create(&srv, rt, "acc/calc", NULL));
    int64_t until = th_now_ns() + 10 * TH_SEC;
    while (shoal_publisher_subscriber_count(pub) < 1 && th_now_ns() < until)
        th_sleep_ms(2);
    WCHECK(shoal_publisher_subscriber_count(pub) == 1);
    for (int s = 0; s < SAMPLES; s++) {
        shoal_chunk_t *c = NULL;
        WCHECK_OK(shoal_publisher_loan(pub, SAMPLE_BYTES, &c));
        unsigned char *p = shoal_chunk_payload(c);
        for (size_t i = 0; i < SAMPLE_BYTES; i++)
            p[i] = pattern_byte(s, i);
        WCHECK_OK(shoal_publisher_publish(pub, c));
        x->sent++;
    }
    th_chan_send(&x->ready, 'r');
    while (x->answered < 5 && th_now_ns() < until) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        shoal_result_t rc = shoal_server_take(srv, &req, 100 * TH_MS);
        if (rc == SHOAL_ERR_TIMEOUT)
            continue;
        WCHECK_OK(rc);
        uint32_t v;
        memcpy(&v, shoal_chunk_payload(req), sizeof v);
        WCHECK_OK(shoal_server_loan_response(srv, req, sizeof v, &resp));
        v = v * 2 + 1;
        memcpy(shoal_chunk_payload(resp), &v, sizeof v);
        WCHECK_OK(shoal_chunk_release(req));
        WCHECK_OK(shoal_server_send(srv, resp));
        x->answered++;
    }
    shoal_server_destroy(srv);
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
    return 0;
}

/* As B: calls A's service five times. */
static int caller(void *arg)
{
    exchange_t *x = arg;
    WCHECK(become(&x->who) == 0);
    x->became = 1;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "user-b", &rt));
    shoal_client_t *cl = NULL;
    WCHECK_OK(shoal_client_create(&cl, rt, "acc/calc", NULL));
    int64_t until = th_now_ns() + 10 * TH_SEC;
    while (shoal_client_server_count(cl) < 1 && th_now_ns() < until)
        th_sleep_ms(2);
    for (uint32_t i = 0; i < 5; i++) {
        shoal_chunk_t *req = NULL, *resp = NULL;
        WCHECK_OK(shoal_client_loan(cl, sizeof i, &req));
        memcpy(shoal_chunk_payload(req), &i, sizeof i);
        WCHECK_OK(shoal_client_call(cl, req, &resp, 5 * TH_SEC));
        uint32_t v;
        memcpy(&v, shoal_chunk_payload(resp), sizeof v);
        WCHECK(v == i * 2 + 1);
        WCHECK_OK(shoal_chunk_release(resp));
        x->calls_ok++;
    }
    shoal_client_destroy(cl);
    shoal_runtime_destroy(rt);
    return 0;
}

static void test_data_between_users(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    th_daemon_t d;
    char access[256];
    snprintf(access, sizeof access, "[access]\nusers = %s\ngroups = %s\n", user_a, group_2);
    start(&d, access);
    shoal_runtime_t *rt = th_runtime(&d, "root-subscriber");
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "acc/data", NULL));
    exchange_t *xa = th_shared_alloc(sizeof *xa), *xb = th_shared_alloc(sizeof *xb);
    assert_true(xa && xb);
    xa->d = xb->d = &d;
    xa->who = login_of(uid_a, gid_a, gid_1);
    xb->who = login_of(uid_b, gid_b, gid_2); /* admitted through G2 */
    th_chan_open(&xa->ready);
    pid_t pa = th_spawn(publisher_server, xa);
    /* the samples A wrote into shared memory reach root intact */
    for (int s = 0; s < SAMPLES; s++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_subscriber_take(sub, &c, 10 * TH_SEC));
        assert_int_equal(shoal_chunk_size(c), SAMPLE_BYTES);
        const unsigned char *p = shoal_chunk_payload(c);
        size_t bad = 0;
        for (size_t i = 0; i < SAMPLE_BYTES; i++)
            bad += p[i] != pattern_byte(s, i);
        assert_int_equal(bad, 0);
        assert_ok(shoal_chunk_release(c));
    }
    assert_int_equal(th_chan_recv(&xa->ready, 10000), 'r');
    /* and B, another user, calls the service A serves */
    pid_t pb = th_spawn(caller, xb);
    assert_int_equal(th_join(pb, 30000), 0);
    assert_int_equal(th_join(pa, 30000), 0);
    assert_int_equal(xa->became && xb->became, 1);
    assert_int_equal(xa->sent, SAMPLES);
    assert_int_equal(xb->calls_ok, 5);
    assert_int_equal(xa->answered, 5);
    print_message("uid %d published %d samples of %d bytes to root; uid %d made %d calls to it\n",
                  (int)uid_a, xa->sent, SAMPLE_BYTES, (int)uid_b, xb->calls_ok);
    shoal_subscriber_destroy(sub);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
    th_chan_close(&xa->ready);
    th_shared_free(xa, sizeof *xa);
    th_shared_free(xb, sizeof *xb);
    th_daemon_stop(&d);
}

/* ---- rules per topic and service ---------------------------------------------------------- */

static void expect_step(const attempt_t *a, int i, shoal_result_t want, const char *label)
{
    if (a->rc[i] != (int)want)
        print_error("%s: %s '%s' got %s, expected %s: %s\n", label,
                    a->kind[i] == SHOAL_PORT_PUBLISHER    ? "publisher"
                    : a->kind[i] == SHOAL_PORT_SUBSCRIBER ? "subscriber"
                    : a->kind[i] == SHOAL_PORT_SERVER     ? "server"
                                                          : "client",
                    a->name[i], shoal_strerror((shoal_result_t)a->rc[i]), shoal_strerror(want),
                    a->msg[i]);
    assert_int_equal(a->rc[i], want);
}

static void test_topic_and_service_rules(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    th_daemon_t d;
    char access[1024], want[512];
    snprintf(access, sizeof access,
             "[access]\n"
             "users = %s, %s\n"
             "\n"
             "[access.topic \"cam/*\"]\n"
             "publish = %s\n"
             "subscribe = @%s\n"
             "\n"
             "[access.topic \"*\"]\n"
             "subscribe = %s   # reached only for names the first section does not cover\n"
             "\n"
             "[access.service \"calc*\"]\n"
             "serve = @%s\n"
             "call = *\n",
             user_a, user_b, user_a, group_2, user_b, group_1);
    start(&d, access);
    cred_t a = login_of(uid_a, gid_a, gid_1), b = login_of(uid_b, gid_b, gid_2);

    attempt_t *r = attempt(&d, a,
                           (const char *const[]){ "P:cam/front", "S:cam/front", "S:other/x",
                                                  "V:calc", "C:calc", "P:other/x", NULL });
    assert_int_equal(r->reg_rc, SHOAL_OK);
    expect_step(r, 0, SHOAL_OK, "A publish cam/front (publish = A)");
    expect_step(r, 1, SHOAL_ERR_PERMISSION, "A subscribe cam/front (subscribe = @G2)");
    print_message("A subscribe cam/front: %s\n", r->msg[1]);
    snprintf(want, sizeof want, "uid %d (gid %d, supplementary groups", (int)uid_a, (int)gid_a);
    assert_contains(r->msg[1], want);
    assert_contains(r->msg[1], "may not subscribe to topic 'cam/front'");
    snprintf(want, sizeof want, "rule [access.topic \"cam/*\"] of %s:%u", d.config_path,
             line_of("[access.topic \"cam/*\"]"));
    assert_contains(r->msg[1], want);
    snprintf(want, sizeof want, "subscribe = @%s (gid %d) (line %u)", group_2, (int)gid_2,
             line_of("subscribe = @"));
    assert_contains(r->msg[1], want);
    /* for other names the second section decides subscribe */
    expect_step(r, 2, SHOAL_ERR_PERMISSION, "A subscribe other/x (subscribe = B)");
    snprintf(want, sizeof want, "rule [access.topic \"*\"] of %s:%u", d.config_path,
             line_of("[access.topic \"*\"]"));
    assert_contains(r->msg[2], want);
    expect_step(r, 3, SHOAL_OK, "A serve calc (serve = @G1, A's supplementary group)");
    expect_step(r, 4, SHOAL_OK, "A call calc (call = *)");
    expect_step(r, 5, SHOAL_OK, "A publish other/x (no section sets publish for it)");
    th_shared_free(r, sizeof *r);

    r = attempt(&d, b,
                (const char *const[]){ "P:cam/front", "S:cam/front", "S:other/x", "V:calc2",
                                       "C:calc2", NULL });
    assert_int_equal(r->reg_rc, SHOAL_OK);
    expect_step(r, 0, SHOAL_ERR_PERMISSION, "B publish cam/front (publish = A)");
    print_message("B publish cam/front: %s\n", r->msg[0]);
    assert_contains(r->msg[0], "may not publish on topic 'cam/front'");
    snprintf(want, sizeof want, "publish = %s (uid %d) (line %u)", user_a, (int)uid_a,
             line_of("publish ="));
    assert_contains(r->msg[0], want);
    expect_step(r, 1, SHOAL_OK, "B subscribe cam/front (subscribe = @G2, B's supplementary group)");
    expect_step(r, 2, SHOAL_OK, "B subscribe other/x (subscribe = B)");
    expect_step(r, 3, SHOAL_ERR_PERMISSION, "B serve calc2 (serve = @G1)");
    print_message("B serve calc2: %s\n", r->msg[3]);
    assert_contains(r->msg[3], "may not serve service 'calc2'");
    snprintf(want, sizeof want, "rule [access.service \"calc*\"] of %s:%u", d.config_path,
             line_of("[access.service"));
    assert_contains(r->msg[3], want);
    expect_step(r, 4, SHOAL_OK, "B call calc2 (call = *)");
    th_shared_free(r, sizeof *r);

    /* B with G1 given by root may serve; rules read the process's groups */
    cred_t b_given = { uid_b, gid_b, 2, { gid_b, gid_1, 0, 0 } };
    r = attempt(&d, b_given, (const char *const[]){ "V:calc", "S:cam/front", NULL });
    expect_step(r, 0, SHOAL_OK, "B given G1 serve calc");
    expect_step(r, 1, SHOAL_ERR_PERMISSION, "B given G1 but not G2: subscribe cam/front");
    th_shared_free(r, sizeof *r);

    /* refusals are logged with the rule (the first one at once, the rest
     * counted into one line per 10 s) */
    assert_contains(daemon_log(&d), "refused a subscriber port to 'access-client'");
    assert_contains(daemon_log(&d), "may not subscribe to topic 'cam/front'");

    /* root (and shoald's own uid) are not restricted by rules */
    shoal_runtime_t *rt = th_runtime(&d, "root");
    shoal_subscriber_t *sub = NULL;
    shoal_server_t *srv = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "cam/front", NULL));
    assert_ok(shoal_server_create(&srv, rt, "calc", NULL));
    shoal_server_destroy(srv);
    shoal_subscriber_destroy(sub);
    shoal_runtime_destroy(rt);
    th_daemon_stop(&d);
}


/* ---- shoald as an unprivileged user ----------------------------------------------------- */

/* Starts a copy of shoald (the build tree may be out of the user's reach)
 * as `who`; returns its pid once ready, or the exit code (> 0) of a daemon
 * that stopped at start as -code. */
static pid_t launch_as(th_daemon_t *d, cred_t who)
{
    char copy[400];
    snprintf(copy, sizeof copy, "%s/shoald", d->base_dir);
    int in = open(SHOALD_PATH, O_RDONLY | O_CLOEXEC);
    int out = open(copy, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0755);
    assert_true(in >= 0 && out >= 0);
    char buf[65536];
    ssize_t n;
    while ((n = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)n), n);
    close(in);
    assert_int_equal(close(out), 0);
    assert_int_equal(chmod(copy, 0755), 0);
    int pfd[2];
    assert_int_equal(pipe2(pfd, O_CLOEXEC), 0);
    int logfd = open(d->log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
    assert_true(logfd >= 0);
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int w = dup(pfd[1]); /* without O_CLOEXEC: shoald writes "ready" to it */
        char fdarg[16];
        snprintf(fdarg, sizeof fdarg, "%d", w);
        dup2(logfd, 1);
        dup2(logfd, 2);
        if (become(&who) != 0)
            _exit(120);
        execl(copy, copy, "--domain", d->domain, "--runtime-dir", d->runtime_dir, "--config",
              d->config_path, "--log-level", "debug", "--ready-fd", fdarg, (char *)NULL);
        _exit(121);
    }
    close(pfd[1]);
    close(logfd);
    struct pollfd p = { .fd = pfd[0], .events = POLLIN };
    char r[8] = "";
    if (poll(&p, 1, 10000) == 1)
        n = read(pfd[0], r, sizeof r - 1);
    close(pfd[0]);
    if (strncmp(r, "ready", 5) == 0) {
        d->pid = pid;
        return pid;
    }
    int code = th_join(pid, 5000);
    return code > 0 ? -code : -255;
}

static void stop_as(th_daemon_t *d)
{
    assert_int_equal(kill(d->pid, SIGTERM), 0);
    assert_int_equal(th_join(d->pid, 10000), 0);
    d->pid = 0;
    th_daemon_cleanup(d);
}

/* Prepares a daemon whose runtime directory and config user A can use. */
static void prepare_for_a(th_daemon_t *d, const char *access)
{
    snprintf(config_text, sizeof config_text, "%s\n%s", TH_DEFAULT_CONFIG, access);
    th_daemon_prepare(d, config_text);
    assert_int_equal(chmod(d->base_dir, 0711), 0);
    assert_int_equal(chmod(d->config_path, 0644), 0);
    assert_int_equal(chown(d->runtime_dir, uid_a, gid_a), 0);
    /* the log is written by root's descriptor: A needs nothing there */
}

static int publish_as(void *arg)
{
    exchange_t *x = arg;
    WCHECK(become(&x->who) == 0);
    x->became = 1;
    shoal_runtime_t *rt = NULL;
    WCHECK_OK(th_runtime_create(x->d, "user-b", &rt));
    shoal_publisher_t *pub = NULL;
    WCHECK_OK(shoal_publisher_create(&pub, rt, "acc/data", NULL));
    int64_t until = th_now_ns() + 10 * TH_SEC;
    while (shoal_publisher_subscriber_count(pub) < 1 && th_now_ns() < until)
        th_sleep_ms(2);
    for (int s = 0; s < SAMPLES; s++) {
        shoal_chunk_t *c = NULL;
        WCHECK_OK(shoal_publisher_loan(pub, SAMPLE_BYTES, &c));
        unsigned char *p = shoal_chunk_payload(c);
        for (size_t i = 0; i < SAMPLE_BYTES; i++)
            p[i] = pattern_byte(s, i);
        WCHECK_OK(shoal_publisher_publish(pub, c));
        x->sent++;
    }
    /* stay until root has taken them all */
    WCHECK(th_chan_recv(&x->ready, 10000) == 'd');
    shoal_publisher_destroy(pub);
    shoal_runtime_destroy(rt);
    return 0;
}

static void test_unprivileged_daemon(void **state)
{
    (void)state;
    SKIP_UNLESS_ROOT();
    th_daemon_t d;
    char access[256], want[512];
    cred_t a = login_of(uid_a, gid_a, gid_1);

    /* A may not give its socket to a group it is not in: refused at start */
    snprintf(access, sizeof access, "[access]\nusers = %s\nsocket_group = %s\n", user_b, group_2);
    prepare_for_a(&d, access);
    pid_t pid = launch_as(&d, a);
    assert_int_equal(pid, -3);
    const char *log = daemon_log(&d);
    print_message("socket_group A is not in: %s", strstr(log, "cannot give") ? strstr(log, "cannot give") : log);
    snprintf(want, sizeof want, "to group %s (gid %d), [access] socket_group of %s:%u", group_2,
             (int)gid_2, d.config_path, line_of("socket_group"));
    assert_contains(log, want);
    assert_contains(log, "must be root or a member of that group");
    th_daemon_cleanup(&d);

    /* shoald as A, socket group G1 (A is a member), admitting B through
     * users: B and root exchange data through A's segments */
    snprintf(access, sizeof access, "[access]\nusers = %s\nsocket_group = %s\n", user_b, group_1);
    prepare_for_a(&d, access);
    assert_true(launch_as(&d, a) > 0);
    assert_mode(d.runtime_dir, 0750, gid_1);
    assert_mode(d.sock_path, 0660, gid_1);
    struct stat st;
    assert_int_equal(stat(d.sock_path, &st), 0);
    assert_int_equal(st.st_uid, uid_a);
    /* B reaches the socket only with G1; then the daemon admits it by uid */
    expect_refused(&d, login_of(uid_b, gid_b, gid_2), "B outside the socket group");
    cred_t b_g1 = { uid_b, gid_b, 2, { gid_b, gid_1, 0, 0 } };
    shoal_runtime_t *rt = th_runtime(&d, "root-subscriber");
    shoal_subscriber_t *sub = NULL;
    assert_ok(shoal_subscriber_create(&sub, rt, "acc/data", NULL));
    exchange_t *x = th_shared_alloc(sizeof *x);
    assert_non_null(x);
    x->d = &d;
    x->who = b_g1;
    th_chan_open(&x->ready);
    pid_t child = th_spawn(publish_as, x);
    for (int s = 0; s < SAMPLES; s++) {
        shoal_chunk_t *c = NULL;
        assert_ok(shoal_subscriber_take(sub, &c, 10 * TH_SEC));
        const unsigned char *p = shoal_chunk_payload(c);
        size_t bad = 0;
        for (size_t i = 0; i < SAMPLE_BYTES; i++)
            bad += p[i] != pattern_byte(s, i);
        assert_int_equal(bad, 0);
        assert_ok(shoal_chunk_release(c));
    }
    th_chan_send(&x->ready, 'd');
    assert_int_equal(th_join(child, 30000), 0);
    assert_int_equal(x->sent, SAMPLES);
    print_message("shoald as uid %d: uid %d published %d samples to root\n", (int)uid_a,
                  (int)uid_b, x->sent);
    th_chan_close(&x->ready);
    th_shared_free(x, sizeof *x);
    shoal_subscriber_destroy(sub);
    assert_int_equal(th_wait_in_use(rt, 0, 2000), 0);
    shoal_runtime_destroy(rt);
    stop_as(&d);
}

/* ---- start-up checks (any user) ------------------------------------------------------------ */

static void expect_start_refused(const char *config, const char *n1, const char *n2)
{
    th_daemon_t d;
    th_daemon_prepare(&d, config);
    const char *args[] = { "--domain", d.domain, "--runtime-dir", d.runtime_dir, "--config",
                           d.config_path, NULL };
    char err[2048];
    int rc = th_run_shoald(args, NULL, 0, err, sizeof err, 10000);
    print_message("refused: %s", err);
    assert_int_equal(rc, 1);
    assert_contains(err, d.config_path);
    assert_contains(err, n1);
    if (n2)
        assert_contains(err, n2);
    th_daemon_cleanup(&d);
}

static void test_unknown_names_refused_at_start(void **state)
{
    (void)state;
    expect_start_refused("[access]\nusers = root\ngroups = nosuchgroup-shoal\n",
                         ":3: unknown group 'nosuchgroup-shoal' in [access] groups",
                         "numeric gid");
    expect_start_refused("[access]\nusers = nosuchuser-shoal\n",
                         ":2: unknown user 'nosuchuser-shoal' in [access] users", "numeric uid");
    expect_start_refused("[access]\nusers = 0\n[access.topic \"a\"]\npublish = @no-such-grp\n",
                         ":4: unknown group 'no-such-grp' in publish of [access.topic \"a\"]",
                         NULL);
    expect_start_refused("[access]\nusers = 0\nsocket_group = no-such-grp\n",
                         ":3: unknown group 'no-such-grp' in [access] socket_group", NULL);
    /* well formed but wrong for its place */
    expect_start_refused("[access.service \"a\"]\npublish = 0\n",
                         ":2: 'publish' in [access.service \"a\"]", "[access.topic");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_users_by_name_and_number),
        cmocka_unit_test(test_groups_primary_and_supplementary),
        cmocka_unit_test(test_socket_group_modes),
        cmocka_unit_test(test_data_between_users),
        cmocka_unit_test(test_topic_and_service_rules),
        cmocka_unit_test(test_unprivileged_daemon),
        cmocka_unit_test(test_unknown_names_refused_at_start),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
