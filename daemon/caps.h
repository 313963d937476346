/* Dropping root: keep only CAP_NET_ADMIN and CAP_NET_RAW. */
#ifndef MTUGATE_DAEMON_CAPS_H
#define MTUGATE_DAEMON_CAPS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* uid and primary gid of a user name: 0, or -ENOENT. */
int caps_lookup_user(const char *name, uid_t *uid, gid_t *gid);
/* Become uid/gid keeping CAP_NET_ADMIN and CAP_NET_RAW (effective, permitted),
 * every other capability gone from all sets and the bounding set. 0, or
 * -errno with what failed in err. */
int caps_drop(uid_t uid, gid_t gid, char *err, size_t errlen);
/* Drop every capability (effective, permitted, inheritable, ambient, and
 * the bounding set where allowed), becoming uid/gid when root and uid is
 * neither -1 nor 0; PR_SET_NO_NEW_PRIVS. 0, or -errno with what failed. */
int caps_drop_all(uid_t uid, gid_t gid, char *err, size_t errlen);
/* Whether this process can bind queues and send raw packets right now
 * (root, or started unprivileged with both capabilities, as systemd does). */
bool caps_have_net(void);

#endif
