/* systemd's service notification protocol (sd_notify(3)), without libsystemd:
 * READY=1 once the queues are bound, WATCHDOG=1 while every thread turns,
 * STOPPING=1 on the way out. Nothing happens without $NOTIFY_SOCKET. */
#ifndef MTUGATE_DAEMON_NOTIFY_H
#define MTUGATE_DAEMON_NOTIFY_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

/* $NOTIFY_SOCKET: "/path" or "@abstract". 0, -EINVAL (neither), -ENAMETOOLONG. */
int notify_addr(const char *env, struct sockaddr_un *sa, socklen_t *len);
/* $WATCHDOG_USEC and $WATCHDOG_PID: 1 with *usec set when the watchdog is on
 * for process self, 0 when it is off (unset, or meant for another pid),
 * -EINVAL when a value does not parse. */
int notify_watchdog(const char *usec_env, const char *pid_env, pid_t self, uint64_t *usec);

struct notify;
/* A socket connected to env (call while still root: the connect checks the
 * permission once). NULL and errno 0 when env is NULL or empty. */
struct notify *notify_open(const char *env);
/* One message ("READY=1", ...): 0, or -errno. n may be NULL (a no-op). */
int notify_send(struct notify *n, const char *msg);
void notify_close(struct notify *n);

#endif
