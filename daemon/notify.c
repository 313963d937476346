#include "daemon/notify.h"

#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct notify {
	int fd;
};

int notify_addr(const char *env, struct sockaddr_un *sa, socklen_t *len)
{
	size_t n = env ? strlen(env) : 0;

	if (n < 2 || (env[0] != '/' && env[0] != '@'))
		return -EINVAL;
	if (n > sizeof(sa->sun_path) - (env[0] == '/'))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, env, n);
	if (env[0] == '@')
		sa->sun_path[0] = '\0';	/* abstract: the length says where it ends */
	*len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (env[0] == '/'));
	return 0;
}

static int notify_parse_u64(const char *s, uint64_t *out)
{
	uint64_t v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9' || v > (UINT64_MAX - 9) / 10)
			return -EINVAL;
		v = v * 10 + (uint64_t)(*s - '0');
	}
	*out = v;
	return 0;
}

int notify_watchdog(const char *usec_env, const char *pid_env, pid_t self, uint64_t *usec)
{
	uint64_t u, pid;

	if (!usec_env || !*usec_env)
		return 0;
	if (notify_parse_u64(usec_env, &u) < 0 || u == 0)
		return -EINVAL;
	if (pid_env && *pid_env) {
		if (notify_parse_u64(pid_env, &pid) < 0)
			return -EINVAL;
		if (pid != (uint64_t)self)
			return 0;
	}
	*usec = u;
	return 1;
}

struct notify *notify_open(const char *env)
{
	struct sockaddr_un sa;
	socklen_t len;
	struct notify *n;
	int r;

	errno = 0;
	if (!env || !*env)
		return NULL;
	if ((r = notify_addr(env, &sa, &len)) < 0) {
		errno = -r;
		return NULL;
	}
	if (!(n = calloc(1, sizeof(*n))))
		return NULL;
	n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (n->fd < 0 || connect(n->fd, (struct sockaddr *)&sa, len) < 0) {
		r = errno;
		notify_close(n);
		errno = r;
		return NULL;
	}
	return n;
}

int notify_send(struct notify *n, const char *msg)
{
	if (!n)
		return 0;
	return send(n->fd, msg, strlen(msg), MSG_NOSIGNAL) < 0 ? -errno : 0;
}

void notify_close(struct notify *n)
{
	if (!n)
		return;
	if (n->fd >= 0)
		close(n->fd);
	free(n);
}
