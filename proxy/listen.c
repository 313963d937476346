#include "proxy/listen.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

static socklen_t listen_salen(int family)
{
	return family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

/* IP_TRANSPARENT lets a socket own an address that is not local: the
 * listener receives what TPROXY diverts, the upstream socket binds the
 * client's address. Needs CAP_NET_ADMIN (kept after dropping root). */
static int listen_transparent(int fd, int family)
{
	int one = 1;

	if (family == AF_INET6)
		return setsockopt(fd, SOL_IPV6, IPV6_TRANSPARENT, &one, sizeof(one));
	return setsockopt(fd, SOL_IP, IP_TRANSPARENT, &one, sizeof(one));
}

int listen_open(int family, uint16_t port)
{
	struct sockaddr_storage ss = { 0 };
	int fd, one = 1, err;

	if ((fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)) < 0)
		return -errno;
	/* SO_REUSEPORT: each proxy worker has a listener of its own on the
	 * port, and the kernel spreads connections over them (TPROXY's
	 * listener lookup picks within the group as a local connect does). */
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one)) < 0 ||
	    listen_transparent(fd, family) < 0)
		goto err;
	/* Loopback, not the wildcard: TPROXY --on-ip hands it what it diverts
	 * (the accepted socket still has the headend's address), and nothing
	 * from outside can connect to it (tests/netns/e2e-tproxy.sh): 127/8 is
	 * martian on other devices, ::1 is never accepted there. */
	if (family == AF_INET6) {
		struct sockaddr_in6 *s6 = (void *)&ss;

		if (setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one)) < 0)
			goto err;
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		s6->sin6_addr = in6addr_loopback;
	} else {
		struct sockaddr_in *s4 = (void *)&ss;

		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		s4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	}
	if (bind(fd, (struct sockaddr *)&ss, listen_salen(family)) < 0 || listen(fd, 1024) < 0)
		goto err;
	return fd;
err:
	err = -errno;
	close(fd);
	return err;
}

int listen_accept(int lfd, struct sockaddr_storage *client, struct sockaddr_storage *dst)
{
	socklen_t cl = sizeof(*client), dl = sizeof(*dst);
	int fd = accept4(lfd, (struct sockaddr *)client, &cl, SOCK_NONBLOCK | SOCK_CLOEXEC);
	int one = 1, err;

	if (fd < 0)
		return -errno;
	if (getsockname(fd, (struct sockaddr *)dst, &dl) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	/* CSTP records are small and interactive: do not let Nagle delay them. */
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	return fd;
}

bool listen_is_local(const struct sockaddr_storage *addr)
{
	struct sockaddr_storage a = *addr, src;
	socklen_t sl = sizeof(src);
	int fd, family = addr->ss_family;
	bool local;

	if (family == AF_INET && (ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr) >> 24) == 127)
		return true;
	if (family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a)->sin6_addr))
		return true;
	/* The kernel's route to a local address leaves from that very address
	 * (a bind test would pass any address under ip_nonlocal_bind). A UDP
	 * connect sends nothing. */
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&a)->sin6_port = htons(9);
	else
		((struct sockaddr_in *)&a)->sin_port = htons(9);
	if ((fd = socket(family, SOCK_DGRAM | SOCK_CLOEXEC, 0)) < 0)
		return false;
	local = connect(fd, (struct sockaddr *)&a, listen_salen(family)) == 0 &&
		getsockname(fd, (struct sockaddr *)&src, &sl) == 0 &&
		(family == AF_INET6 ?
		 !memcmp(&((struct sockaddr_in6 *)&src)->sin6_addr,
			 &((struct sockaddr_in6 *)&a)->sin6_addr, 16) :
		 ((struct sockaddr_in *)&src)->sin_addr.s_addr ==
		 ((struct sockaddr_in *)&a)->sin_addr.s_addr);
	close(fd);
	return local;
}

int listen_transparent_socket(int family)
{
	int fd = socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), err;

	if (fd < 0)
		return -errno;
	if (listen_transparent(fd, family) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

int listen_upstream(const struct listen_supply *sup, const struct sockaddr_storage *client,
		    const struct sockaddr_storage *dst)
{
	struct sockaddr_storage src = *client;
	int family = dst->ss_family, fd, one = 1, err;

	if (client->ss_family != family)
		return -EAFNOSUPPORT;
	/* Port 0: the client's own port would give this connection the same
	 * conntrack tuple as the diverted one. */
	if (family == AF_INET6)
		((struct sockaddr_in6 *)&src)->sin6_port = 0;
	else
		((struct sockaddr_in *)&src)->sin_port = 0;
	fd = sup ? sup->socket(sup->arg, family) : listen_transparent_socket(family);
	if (fd < 0)
		return fd;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0 ||
	    bind(fd, (struct sockaddr *)&src, listen_salen(family)) < 0)
		goto err;
	if (connect(fd, (const struct sockaddr *)dst, listen_salen(family)) < 0 && errno != EINPROGRESS)
		goto err;
	return fd;
err:
	err = -errno;
	close(fd);
	return err;
}

int listen_connected(int fd)
{
	int e = 0;
	socklen_t l = sizeof(e);

	if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &e, &l) < 0)
		return -errno;
	return -e;
}

int listen_keepalive(int fd, unsigned idle)
{
	int on = 1, intvl = 30, cnt = 4, after = idle > 0 && idle < 32767 ? (int)idle : 32767;

	if (setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof(on)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &after, sizeof(after)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &intvl, sizeof(intvl)) < 0 ||
	    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &cnt, sizeof(cnt)) < 0)
		return -errno;
	return 0;
}
