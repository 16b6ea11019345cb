/* Access checks: [access] users/groups at registration, [access.topic] and
 * [access.service] rules at port creation.
 *
 * The peer's identity is what the kernel recorded when it called connect():
 * SO_PEERCRED (pid, uid, gid) and SO_PEERGROUPS (its supplementary groups),
 * taken at the same instant. Neither involves the pid afterwards, so a peer
 * that exits and whose pid is reused cannot lend its groups to another
 * process, as a read of /proc/PID/status after accept() could. */
#include "daemon/access.h"

#include <errno.h>
#include <fnmatch.h>
#include <grp.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shoal.h"

#ifndef SO_PEERGROUPS
#define SO_PEERGROUPS 59 /* Linux 4.13 */
#endif

static int config_names_a_group(const shoal_config_t *cfg) {
    const shoal_config_access_t *a = &cfg->access;
    if (a->groups.count) return 1;
    for (uint32_t i = 0; i < a->rule_count; i++)
        for (int w = 0; w < 2; w++)
            for (uint32_t k = 0; k < a->rules[i].allow[w].count; k++)
                if (a->rules[i].allow[w].ids[k].group) return 1;
    return 0;
}

/* The kernel's list; -1 with ENOPROTOOPT on kernels without it. */
static int groups_from_kernel(int fd, access_peer_t *out) {
    gid_t small[64];
    socklen_t len = sizeof small;
    gid_t *buf = small;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) != 0) {
        if (errno != ERANGE) return -1;
        /* len now says how much the list needs */
        buf = malloc(len ? len : 1);
        if (!buf) return -1;
        if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, buf, &len) != 0) {
            free(buf);
            return -1;
        }
    }
    uint32_t n = (uint32_t)(len / sizeof(gid_t));
    out->groups = n ? malloc(n * sizeof *out->groups) : NULL;
    if (n && !out->groups) {
        if (buf != small) free(buf);
        return errno = ENOMEM, -1;
    }
    for (uint32_t i = 0; i < n; i++) out->groups[i] = (uint32_t)buf[i];
    out->ngroups = n;
    out->groups_source = ACCESS_GROUPS_KERNEL;
    if (buf != small) free(buf);
    return 0;
}

/* Fallback: the memberships the group database gives the uid's user (what
 * login would set up), not the process's own list. */
static int groups_from_database(access_peer_t *out) {
    char *buf = malloc(16384);
    if (!buf) return errno = ENOMEM, -1;
    struct passwd pw, *res = NULL;
    if (getpwuid_r((uid_t)out->uid, &pw, buf, 16384, &res) != 0 || !res) {
        free(buf);
        out->groups_source = ACCESS_GROUPS_DATABASE; /* no user entry: no groups */
        return 0;
    }
    int n = 64;
    gid_t *g = NULL;
    for (int tries = 0; tries < 4; tries++) {
        gid_t *grown = realloc(g, (size_t)n * sizeof *g);
        if (!grown) break;
        g = grown;
        int want = n;
        if (getgrouplist(pw.pw_name, (gid_t)out->gid, g, &want) >= 0) {
            n = want;
            out->groups = malloc((size_t)(n ? n : 1) * sizeof *out->groups);
            if (out->groups) {
                for (int i = 0; i < n; i++) out->groups[i] = (uint32_t)g[i];
                out->ngroups = (uint32_t)n;
            }
            break;
        }
        n = want > n ? want : n * 2;
    }
    free(g);
    free(buf);
    out->groups_source = ACCESS_GROUPS_DATABASE;
    return 0;
}

int access_peer_read(int fd, const shoal_config_t *cfg, access_peer_t *out) {
    memset(out, 0, sizeof *out);
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) return -1;
    out->pid = cred.pid;
    out->uid = (uint32_t)cred.uid;
    out->gid = (uint32_t)cred.gid;
    if (!config_names_a_group(cfg)) return 0;
    if (groups_from_kernel(fd, out) == 0) return 0;
    if (errno != ENOPROTOOPT && errno != EINVAL) return -1;
    return groups_from_database(out);
}

void access_peer_free(access_peer_t *p) {
    free(p->groups);
    p->groups = NULL;
    p->ngroups = 0;
}

int access_open(const shoal_config_t *cfg) {
    const shoal_config_access_t *a = &cfg->access;
    return a->line && (a->users.count || a->users.anyone || a->groups.count);
}

static int in_group(const access_peer_t *p, uint32_t gid) {
    if (p->gid == gid) return 1;
    for (uint32_t i = 0; i < p->ngroups; i++)
        if (p->groups[i] == gid) return 1;
    return 0;
}

/* The entry of `ids` that matches the peer, or NULL. */
static const shoal_access_id_t *match(const access_peer_t *p, const shoal_access_id_t *ids,
                                      uint32_t count) {
    for (uint32_t i = 0; i < count; i++) {
        if (ids[i].group ? in_group(p, ids[i].id) : p->uid == ids[i].id) return &ids[i];
    }
    return NULL;
}

__attribute__((format(printf, 4, 5))) static void append(char *buf, size_t len, size_t *used,
                                                        const char *fmt, ...) {
    if (*used >= len) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *used, len - *used, fmt, ap);
    va_end(ap);
    if (n > 0) *used = *used + (size_t)n < len ? *used + (size_t)n : len;
}

void access_format_ids(const shoal_access_id_t *ids, uint32_t count, uint8_t anyone, int rule,
                       char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    if (anyone) append(buf, len, &used, "*");
    for (uint32_t i = 0; i < count; i++) {
        if (used > len - 48 && i + 1 < count) {
            append(buf, len, &used, ", ... (%u more)", count - i);
            break;
        }
        append(buf, len, &used, "%s%s%s", i || anyone ? ", " : "", rule && ids[i].group ? "@" : "",
               ids[i].name);
        /* names with their ids: what was matched against */
        if (!ids[i].numeric) append(buf, len, &used, " (%s %u)", ids[i].group ? "gid" : "uid", ids[i].id);
    }
}

/* "uid 1002 (gid 1002, supplementary groups 27, 3001)" */
static void format_peer(const access_peer_t *p, char *buf, size_t len) {
    size_t used = 0;
    buf[0] = '\0';
    append(buf, len, &used, "uid %u (gid %u", p->uid, p->gid);
    if (p->groups_source != ACCESS_GROUPS_NONE) {
        append(buf, len, &used, ", supplementary groups%s", p->ngroups ? "" : ": none");
        uint32_t shown = p->ngroups < 12 ? p->ngroups : 12;
        for (uint32_t i = 0; i < shown; i++) append(buf, len, &used, "%s %u", i ? "," : "", p->groups[i]);
        if (p->ngroups > shown) append(buf, len, &used, " and %u more", p->ngroups - shown);
        if (p->groups_source == ACCESS_GROUPS_DATABASE)
            append(buf, len, &used, " (from the group database: the kernel does not report them)");
    }
    append(buf, len, &used, ")");
}

int access_admit(const shoal_config_t *cfg, const access_peer_t *p, uint32_t self,
                 const char *domain, char *text, size_t len) {
    const shoal_config_access_t *a = &cfg->access;
    if (p->uid == self || p->uid == 0) return 1;
    if (a->line) {
        if (a->users.anyone || match(p, a->users.ids, a->users.count) ||
            match(p, a->groups.ids, a->groups.count))
            return 1;
        /* the fix comes last: keep the lists short enough for it to fit */
        char who[256], users[200], groups[200];
        format_peer(p, who, sizeof who);
        access_format_ids(a->users.ids, a->users.count, a->users.anyone, 0, users, sizeof users);
        access_format_ids(a->groups.ids, a->groups.count, 0, 0, groups, sizeof groups);
        size_t used = 0;
        append(text, len, &used, "%s may not use domain '%s': its shoald (pid %d) admits ", who,
               domain, (int)getpid());
        if (self) append(text, len, &used, "its own uid %u, ", self);
        append(text, len, &used, "root (uid 0) and [access] of %s:%u: ", cfg->source, a->line);
        if (a->users.line) append(text, len, &used, "users = %s (line %u)", users, a->users.line);
        else append(text, len, &used, "no users");
        if (a->groups.line) append(text, len, &used, ", groups = %s (line %u)", groups, a->groups.line);
        else append(text, len, &used, ", no groups");
        append(text, len, &used,
               "; add this uid to users, or one of its groups to groups (or this user to a "
               "listed group and log in again), then restart shoald");
        return 0;
    }
    snprintf(text, len,
             "uid %u may not use domain '%s': its shoald (pid %d) runs as uid %u and serves only "
             "uid %u and root (uid 0), because its config (%s) has no [access] section; run this "
             "process as uid %u or root, or grant it in the config ([access] users = ... or "
             "groups = ..., see docs/configuration.md) and restart shoald, or run a shoald of "
             "your own: shoald --domain %s --runtime-dir DIR (a directory of yours), and point "
             "this process at DIR (SHOAL_RUNTIME_DIR or the runtime_dir option)",
             p->uid, domain, (int)getpid(), self, self, cfg->source, self, domain);
    return 0;
}

int access_port_allowed(const shoal_config_t *cfg, const access_peer_t *p, uint32_t self,
                        uint32_t kind, const char *name, char *text, size_t len) {
    const shoal_config_access_t *a = &cfg->access;
    if (!a->rule_count || p->uid == self || p->uid == 0) return 1;
    uint8_t type = kind == SHOAL_PORT_PUBLISHER || kind == SHOAL_PORT_SUBSCRIBER ? SHOAL_RULE_TOPIC
                                                                                 : SHOAL_RULE_SERVICE;
    int which = kind == SHOAL_PORT_PUBLISHER || kind == SHOAL_PORT_SERVER ? SHOAL_RULE_SEND
                                                                          : SHOAL_RULE_RECEIVE;
    /* for each action, the first section (in file order) whose pattern
     * matches and which sets that action's key decides */
    for (uint32_t i = 0; i < a->rule_count; i++) {
        const shoal_access_rule_t *r = &a->rules[i];
        const shoal_access_rule_list_t *l = &r->allow[which];
        if (r->type != type || !l->line || fnmatch(r->pattern, name, 0) != 0) continue;
        if (l->anyone || match(p, l->ids, l->count)) return 1;
        char who[256], ids[300];
        format_peer(p, who, sizeof who);
        access_format_ids(l->ids, l->count, 0, 1, ids, sizeof ids);
        const char *key = shoal_access_key(type, which);
        snprintf(text, len,
                 "%s may not %s %s '%s': rule [access.%s \"%s\"] of %s:%u allows %s = %s (line "
                 "%u) only; add this user, or @GROUP for one of its groups, to that line and "
                 "restart shoald",
                 who, key, type == SHOAL_RULE_TOPIC ? (which ? "to topic" : "on topic") : "service",
                 name, type == SHOAL_RULE_TOPIC ? "topic" : "service", r->pattern, cfg->source,
                 r->line, key, ids, l->line);
        return 0;
    }
    return 1;
}
