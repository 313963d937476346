/* syngen SEED N SRC4 DST4 SRC6 DST6: send the N random SYNs and SYN-ACKs of
 * tests/tools/synpkt.h through raw sockets (the packets carry their own IP
 * headers), for the kernel-differential MSS test. */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "tests/tools/synpkt.h"

int main(int argc, char **argv)
{
	struct synpkt_addrs a;
	struct sockaddr_in d4 = { .sin_family = AF_INET };
	struct sockaddr_in6 d6 = { .sin6_family = AF_INET6 };
	uint64_t rng;
	unsigned long n, i, sent = 0;
	int s4, s6;

	if (argc != 7 || !synpkt_parse_addrs(&a, argv + 3)) {
		fprintf(stderr, "usage: syngen SEED N SRC4 DST4 SRC6 DST6\n");
		return 2;
	}
	rng = strtoull(argv[1], NULL, 0) | 1;
	n = strtoul(argv[2], NULL, 0);
	memcpy(&d4.sin_addr, a.dst4, 4);
	memcpy(&d6.sin6_addr, a.dst6, 16);
	/* IPPROTO_RAW implies IP_HDRINCL, for IPv6 as well. */
	s4 = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);
	s6 = socket(AF_INET6, SOCK_RAW, IPPROTO_RAW);
	if (s4 < 0 || s6 < 0) {
		perror("syngen: socket");
		return 1;
	}
	for (i = 0; i < n; i++) {
		uint8_t buf[SYNPKT_MAX];
		size_t len = synpkt_make(buf, &rng, (uint32_t)i, &a);
		bool v6 = buf[0] >> 4 == 6;
		ssize_t r;

		do
			r = v6 ? sendto(s6, buf, len, 0, (struct sockaddr *)&d6, sizeof(d6)) :
				 sendto(s4, buf, len, 0, (struct sockaddr *)&d4, sizeof(d4));
		while (r < 0 && (errno == ENOBUFS || errno == EAGAIN || errno == EINTR));
		if (r == (ssize_t)len)
			sent++;
		else
			fprintf(stderr, "syngen: packet %lu: %s\n", i, r < 0 ? strerror(errno) : "short");
	}
	printf("syngen: sent %lu of %lu\n", sent, n);
	close(s4);
	close(s6);
	return sent == n ? 0 : 1;
}
