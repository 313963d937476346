#include "clamp/rawsend.h"

#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct rawsend {
	int raw4, raw6;		/* IPPROTO_RAW: we give the whole packet */
	int udp4, udp6;		/* connected only to ask the kernel for a source */
};

struct rawsend *rawsend_open(void)
{
	struct rawsend *r = calloc(1, sizeof(*r));
	int err;

	if (!r)
		return NULL;
	r->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	r->raw6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	r->udp4 = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	r->udp6 = socket(AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (r->raw4 < 0 || r->raw6 < 0 || r->udp4 < 0 || r->udp6 < 0) {
		err = errno;
		rawsend_close(r);
		errno = err;
		return NULL;
	}
	return r;
}

void rawsend_close(struct rawsend *r)
{
	if (!r)
		return;
	int fds[] = { r->raw4, r->raw6, r->udp4, r->udp6 };
	for (size_t i = 0; i < sizeof(fds) / sizeof(fds[0]); i++)
		if (fds[i] >= 0)
			close(fds[i]);
	free(r);
}

static socklen_t rawsend_sa(struct sockaddr_storage *ss, int family, const uint8_t *addr,
			    uint16_t port)
{
	memset(ss, 0, sizeof(*ss));
	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		memcpy(&s4->sin_addr, addr, 4);
		return sizeof(*s4);
	}
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
	s6->sin6_family = AF_INET6;
	s6->sin6_port = htons(port);
	memcpy(&s6->sin6_addr, addr, 16);
	return sizeof(*s6);
}

int rawsend_source(struct rawsend *r, int family, const uint8_t *dst, uint8_t *src)
{
	struct sockaddr_storage ss;
	socklen_t sl = rawsend_sa(&ss, family, dst, 9);	/* any port: nothing is sent */
	int fd = family == AF_INET ? r->udp4 : r->udp6;

	if (connect(fd, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	sl = sizeof(ss);
	if (getsockname(fd, (struct sockaddr *)&ss, &sl) < 0)
		return -errno;
	if (family == AF_INET)
		memcpy(src, &((struct sockaddr_in *)&ss)->sin_addr, 4);
	else
		memcpy(src, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
	return 0;
}

int rawsend_send(struct rawsend *r, int family, const uint8_t *pkt, size_t len,
		 const uint8_t *dst)
{
	struct sockaddr_storage ss;
	socklen_t sl = rawsend_sa(&ss, family, dst, 0);
	int fd = family == AF_INET ? r->raw4 : r->raw6;

	if (sendto(fd, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	return 0;
}
