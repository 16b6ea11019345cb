/* Who may use a domain and its names: the peer's credentials as the kernel
 * saw them at connect(), checked against [access] and its rules. */
#ifndef SHOAL_DAEMON_ACCESS_H
#define SHOAL_DAEMON_ACCESS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "daemon/config.h"

typedef struct access_peer {
    int32_t pid;
    uint32_t uid, gid;  /* effective ids at connect() (SO_PEERCRED) */
    uint32_t ngroups;   /* supplementary groups */
    uint32_t *groups;   /* malloc'd, or NULL */
    int groups_source;  /* ACCESS_GROUPS_* */
} access_peer_t;

enum {
    ACCESS_GROUPS_NONE = 0,  /* not read: the config names no group */
    ACCESS_GROUPS_KERNEL,    /* SO_PEERGROUPS: the process's own list at connect() */
    ACCESS_GROUPS_DATABASE,  /* getgrouplist(3) of the uid: kernels before 4.13 */
};

/* Reads the credentials of the peer on `fd`. The supplementary groups are
 * read only when `cfg` names a group somewhere. 0, or -1 (errno). */
int access_peer_read(int fd, const shoal_config_t *cfg, access_peer_t *out);
void access_peer_free(access_peer_t *p);

/* Does [access] admit anyone besides shoald's own uid and root? */
int access_open(const shoal_config_t *cfg);

/* 1 if the peer may register with the domain; else 0 with the reason and
 * the fix in `text`. `self` is shoald's effective uid. */
int access_admit(const shoal_config_t *cfg, const access_peer_t *p, uint32_t self,
                 const char *domain, char *text, size_t len);

/* 1 if the peer may create a port of `kind` (SHOAL_PORT_*) on `name`; else
 * 0 with the rule that refuses it (FILE:LINE, section, key, entries) in
 * `text`. shoald's own uid and root are never restricted. */
int access_port_allowed(const shoal_config_t *cfg, const access_peer_t *p, uint32_t self,
                        uint32_t kind, const char *name, char *text, size_t len);

/* Writes "alice, @video, 1001" (entries as written) into buf. */
void access_format_ids(const shoal_access_id_t *ids, uint32_t count, uint8_t anyone, int rule,
                       char *buf, size_t len);

#endif
