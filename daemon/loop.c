#include "daemon/loop.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/timerfd.h>
#include <unistd.h>

struct loop_ev {
	int fd;
	loop_cb cb;
	void *arg;
	bool timer;	/* a timerfd we own and close */
};

struct loop {
	int epfd;
	int wakefd;		/* eventfd: loop_stop from another thread */
	_Atomic bool stop;
	struct loop_ev **evs;	/* indexed by fd */
	size_t nevs;
	struct loop_ev **dead;	/* removed during a round, freed after it */
	size_t ndead, capdead;
};

struct loop *loop_new(void)
{
	struct loop *l = calloc(1, sizeof(*l));

	if (!l)
		return NULL;
	l->epfd = epoll_create1(EPOLL_CLOEXEC);
	l->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (l->epfd < 0 || l->wakefd < 0)
		goto err;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = NULL };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, l->wakefd, &ev) < 0)
		goto err;
	return l;
err:
	loop_free(l);
	return NULL;
}

void loop_free(struct loop *l)
{
	if (!l)
		return;
	for (size_t i = 0; i < l->nevs; i++) {
		if (l->evs[i] && l->evs[i]->timer)
			close(l->evs[i]->fd);
		free(l->evs[i]);
	}
	free(l->evs);
	for (size_t k = 0; k < l->ndead; k++)
		free(l->dead[k]);
	free(l->dead);
	if (l->epfd >= 0)
		close(l->epfd);
	if (l->wakefd >= 0)
		close(l->wakefd);
	free(l);
}

int loop_add(struct loop *l, int fd, uint32_t events, loop_cb cb, void *arg)
{
	struct loop_ev *e;

	if (fd < 0)
		return -EBADF;
	if ((size_t)fd >= l->nevs) {
		size_t n = (size_t)fd * 2 + 16;
		struct loop_ev **evs = realloc(l->evs, n * sizeof(*evs));

		if (!evs)
			return -ENOMEM;
		memset(evs + l->nevs, 0, (n - l->nevs) * sizeof(*evs));
		l->evs = evs;
		l->nevs = n;
	}
	if (l->evs[fd])
		return -EEXIST;
	if (!(e = calloc(1, sizeof(*e))))
		return -ENOMEM;
	*e = (struct loop_ev){ .fd = fd, .cb = cb, .arg = arg };
	struct epoll_event ev = { .events = events, .data.ptr = e };
	if (epoll_ctl(l->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
		int err = -errno;

		free(e);
		return err;
	}
	l->evs[fd] = e;
	return 0;
}

int loop_mod(struct loop *l, int fd, uint32_t events)
{
	if (fd < 0 || (size_t)fd >= l->nevs || !l->evs[fd])
		return -ENOENT;
	struct epoll_event ev = { .events = events, .data.ptr = l->evs[fd] };
	return epoll_ctl(l->epfd, EPOLL_CTL_MOD, fd, &ev) < 0 ? -errno : 0;
}

int loop_del(struct loop *l, int fd)
{
	if (fd < 0 || (size_t)fd >= l->nevs || !l->evs[fd])
		return -ENOENT;
	struct loop_ev *e = l->evs[fd];

	epoll_ctl(l->epfd, EPOLL_CTL_DEL, fd, NULL);
	l->evs[fd] = NULL;
	/* Events of this round may still point at e: free it after the round. */
	e->fd = -1;
	if (l->ndead == l->capdead) {
		size_t n = l->capdead * 2 + 8;
		struct loop_ev **d = realloc(l->dead, n * sizeof(*d));

		if (!d) {
			e->cb = NULL;	/* leak rather than risk a use after free */
			return 0;
		}
		l->dead = d;
		l->capdead = n;
	}
	l->dead[l->ndead++] = e;
	return 0;
}

int loop_every(struct loop *l, unsigned ms, loop_cb cb, void *arg)
{
	int fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	struct itimerspec its = {
		.it_interval = { .tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000 },
	};
	int err;

	if (fd < 0)
		return -errno;
	its.it_value = its.it_interval;
	if (timerfd_settime(fd, 0, &its, NULL) < 0 || (err = loop_add(l, fd, EPOLLIN, cb, arg)) < 0) {
		err = -errno;
		close(fd);
		return err ? err : -EINVAL;
	}
	l->evs[fd]->timer = true;
	return fd;
}

int loop_run(struct loop *l)
{
	struct epoll_event evs[64];

	while (!l->stop) {
		int n = epoll_wait(l->epfd, evs, 64, -1);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		for (int i = 0; i < n && !l->stop; i++) {
			struct loop_ev *e = evs[i].data.ptr;

			if (!e || e->fd < 0 || !e->cb)
				continue;	/* the wake eventfd, or removed this round */
			int fd = e->fd;
			if (e->timer) {
				uint64_t ticks;
				if (read(fd, &ticks, sizeof(ticks)) < 0 && errno == EAGAIN)
					continue;
			}
			e->cb(l, fd, evs[i].events, e->arg);
		}
		for (size_t k = 0; k < l->ndead; k++)
			free(l->dead[k]);
		l->ndead = 0;
	}
	return 0;
}

void loop_stop(struct loop *l)
{
	uint64_t one = 1;

	l->stop = true;
	if (write(l->wakefd, &one, sizeof(one)) < 0) {
		/* The flag alone stops the loop at its next wake-up. */
	}
}
