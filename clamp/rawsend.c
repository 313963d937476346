#include "clamp/rawsend.h"

#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

struct rawsend {
	int raw4;	/* IPPROTO_RAW: we give the whole IPv4 packet */
	int icmp6;	/* IPPROTO_ICMPV6: the kernel adds header and checksum */
};

struct rawsend *rawsend_open(void)
{
	struct rawsend *r = calloc(1, sizeof(*r));
	int hops = 64, err;

	if (!r)
		return NULL;
	r->raw4 = socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_RAW);
	r->icmp6 = socket(AF_INET6, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMPV6);
	if (r->raw4 < 0 || r->icmp6 < 0 ||
	    setsockopt(r->icmp6, IPPROTO_IPV6, IPV6_UNICAST_HOPS, &hops, sizeof(hops)) < 0) {
		err = errno;
		rawsend_close(r);
		errno = err;
		return NULL;
	}
	/* Only sending: a receive queue of every ICMPv6 message would fill up. */
	struct icmp6_filter f;
	ICMP6_FILTER_SETBLOCKALL(&f);
	setsockopt(r->icmp6, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
	shutdown(r->icmp6, SHUT_RD);
	return r;
}

void rawsend_close(struct rawsend *r)
{
	if (!r)
		return;
	if (r->raw4 >= 0)
		close(r->raw4);
	if (r->icmp6 >= 0)
		close(r->icmp6);
	free(r);
}

int rawsend_send(struct rawsend *r, int family, const uint8_t *pkt, size_t len,
		 const uint8_t *dst)
{
	struct sockaddr_storage ss = { 0 };
	socklen_t sl;
	int fd;

	if (family == AF_INET) {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, dst, 4);
		sl = sizeof(*s4);
		fd = r->raw4;
	} else {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, dst, 16);
		sl = sizeof(*s6);
		fd = r->icmp6;
		if (len < 40)
			return -EINVAL;
		pkt += 40;
		len -= 40;
	}
	if (sendto(fd, pkt, len, MSG_DONTWAIT, (struct sockaddr *)&ss, sl) < 0)
		return -errno;
	return 0;
}
