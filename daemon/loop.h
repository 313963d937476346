/* One epoll loop per thread; nothing global (keepalived's scheduler, conntrackd's register_fd). */
#ifndef MTUGATE_DAEMON_LOOP_H
#define MTUGATE_DAEMON_LOOP_H

#include <stdint.h>

struct loop;
typedef void (*loop_cb)(struct loop *l, int fd, uint32_t events, void *arg);

struct loop *loop_new(void);
void loop_free(struct loop *l);	/* does not close the fds */
int loop_add(struct loop *l, int fd, uint32_t events, loop_cb cb, void *arg);
int loop_mod(struct loop *l, int fd, uint32_t events);
int loop_del(struct loop *l, int fd);
/* A periodic callback (timerfd), every ms milliseconds. */
int loop_every(struct loop *l, unsigned ms, loop_cb cb, void *arg);
/* Dispatch until loop_stop(); 0, or -errno when epoll fails. */
int loop_run(struct loop *l);
void loop_stop(struct loop *l);	/* safe from another thread */

#endif
