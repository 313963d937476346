/* pmtublast SRC/BITS DST SIZE SECONDS [PPS]: send oversize packets (IPv4: UDP
 * with DF; IPv6: TCP) toward DST, each from the next address of SRC/BITS, for SECONDS as
 * fast as it can (or SECONDS * PPS of them, evenly spaced), and count the fragmentation-needed or
 * Packet Too Big messages that come back about them. Sources rotate so that a
 * per-host ICMP limit does not cap the rate: the namespace needs a local route
 * for SRC/BITS to receive the answers. Prints one line:
 *   pmtublast: sent=N icmp=M mtu=X seconds=S
 * mtu is the MTU the last answer announced. For the PMTU benchmark and the
 * rate-limit test. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/icmp6.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/synpkt.h"

#define BATCH 32
#define MAXSZ 9000
#define DRAIN_NS 300000000ull	/* answers still in flight after the last send */

struct blast {
	int family;
	uint8_t base[16], dst[16];
	unsigned bits;
	uint64_t next;		/* host part of the next source */
	size_t size;
	int tx, rx;
	uint64_t sent, icmp;
	unsigned mtu;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static unsigned get16(const uint8_t *b)
{
	return (unsigned)b[0] << 8 | b[1];
}

/* The source for packet n: base with the low (alen*8 - bits) bits replaced,
 * skipping the all-zero and all-one host parts. */
static void blast_source(struct blast *b, uint8_t *src)
{
	size_t alen = b->family == AF_INET ? 4 : 16;

	/* IPv6 from a /48 or wider: one address (::1) in each next /64, since
	 * mtugated counts an IPv6 sender by its /64. */
	if (b->family == AF_INET6 && b->bits <= 48) {
		unsigned sub = 1 + (unsigned)(b->next++ % 65534);

		memcpy(src, b->base, 16);
		src[6] = (uint8_t)(sub >> 8);
		src[7] = (uint8_t)sub;
		memset(src + 8, 0, 8);
		src[15] = 1;
		return;
	}
	unsigned hostbits = (unsigned)alen * 8 - b->bits;
	uint64_t span = hostbits >= 63 ? UINT64_MAX : (1ull << hostbits);
	uint64_t h = span <= 2 ? 0 : 1 + b->next++ % (span - 2);

	memcpy(src, b->base, alen);
	for (size_t i = alen; i-- > 0 && hostbits > 0;) {
		unsigned take = hostbits < 8 ? hostbits : 8;
		uint8_t mask = (uint8_t)((1u << take) - 1);

		src[i] = (uint8_t)((src[i] & ~mask) | (h & mask));
		h >>= take;
		hostbits -= take;
	}
}

/* b->size bytes in all: for IPv4 a UDP datagram with DF set (checksum 0);
 * for IPv6 a TCP segment (ACK and data, checksum filled), since mtugate
 * queues no IPv6 UDP for PMTU (conf/rules.c, rules_pmtu6_why). */
static size_t blast_packet(struct blast *b, uint8_t *pkt, unsigned sport)
{
	bool v4 = b->family == AF_INET;
	size_t ipl = v4 ? 20 : 40, ulen = b->size - ipl;
	uint8_t *u = pkt + ipl;

	if (!v4) {
		memset(pkt, 0, b->size);
		pkt[0] = 0x60;
		synpkt_put16(pkt + 4, (unsigned)ulen);
		pkt[6] = IPPROTO_TCP;
		pkt[7] = 64;
		blast_source(b, pkt + 8);
		memcpy(pkt + 24, b->dst, 16);
		synpkt_put16(u, sport);
		synpkt_put16(u + 2, 9);		/* discard */
		u[12] = 5 << 4;			/* data offset: 20 bytes */
		u[13] = 0x10;			/* ACK */
		synpkt_put16(u + 14, 65535);	/* window */
		uint32_t s6 = synpkt_sum(pkt + 8, 32, (uint32_t)ulen + IPPROTO_TCP);
		synpkt_put16(u + 16, synpkt_fold(synpkt_sum(u, ulen, s6)));
		return b->size;
	}

	memset(pkt, 0, b->size);
	pkt[0] = 0x45;
	synpkt_put16(pkt + 2, (unsigned)b->size);
	pkt[6] = 0x40;	/* DF */
	pkt[8] = 64;
	pkt[9] = IPPROTO_UDP;
	blast_source(b, pkt + 12);
	memcpy(pkt + 16, b->dst, 4);
	synpkt_put16(u, sport);
	synpkt_put16(u + 2, 9);	/* discard */
	synpkt_put16(u + 4, (unsigned)ulen);
	return b->size;
}

/* Count the answers waiting: ICMP type 3 code 4 or ICMPv6 type 2 that quote
 * a packet sent to dst. */
static void blast_drain(struct blast *b)
{
	uint8_t buf[2048];
	ssize_t n;

	while ((n = recv(b->rx, buf, sizeof(buf), MSG_DONTWAIT)) > 0) {
		const uint8_t *ic = buf, *q;
		size_t len = (size_t)n;

		if (b->family == AF_INET) {
			size_t ihl = (size_t)(buf[0] & 15) * 4;

			if (len < ihl + 8 + 20)
				continue;
			ic = buf + ihl;
			len -= ihl;
			q = ic + 8;
			if (ic[0] != 3 || ic[1] != 4 || memcmp(q + 16, b->dst, 4) != 0)
				continue;
			b->mtu = get16(ic + 6);
		} else {
			if (len < 8 + 40)
				continue;
			q = ic + 8;
			if (ic[0] != ICMP6_PACKET_TOO_BIG || memcmp(q + 24, b->dst, 16) != 0)
				continue;
			b->mtu = (unsigned)get16(ic + 4) << 16 | get16(ic + 6);
		}
		b->icmp++;
	}
}

static int blast_open(struct blast *b)
{
	int big = 8 << 20;

	b->tx = socket(b->family, SOCK_RAW, IPPROTO_RAW);	/* header included */
	b->rx = socket(b->family, SOCK_RAW, b->family == AF_INET ? IPPROTO_ICMP : IPPROTO_ICMPV6);
	if (b->tx < 0 || b->rx < 0)
		return -1;
	if (b->family == AF_INET6) {
		struct icmp6_filter f;

		ICMP6_FILTER_SETBLOCKALL(&f);
		ICMP6_FILTER_SETPASS(ICMP6_PACKET_TOO_BIG, &f);
		setsockopt(b->rx, IPPROTO_ICMPV6, ICMP6_FILTER, &f, sizeof(f));
	}
	/* Answers arrive in bursts while we send: keep them all to count. */
	setsockopt(b->rx, SOL_SOCKET, SO_RCVBUFFORCE, &big, sizeof(big));
	setsockopt(b->tx, SOL_SOCKET, SO_SNDBUFFORCE, &big, sizeof(big));
	return 0;
}

static bool parse_args(struct blast *b, char **argv, double *secs, double *pps)
{
	char pfx[64], *slash;

	snprintf(pfx, sizeof(pfx), "%s", argv[1]);
	slash = strchr(pfx, '/');
	b->bits = slash ? (unsigned)atoi(slash + 1) : 128;
	if (slash)
		*slash = 0;
	b->family = strchr(pfx, ':') ? AF_INET6 : AF_INET;
	if (b->family == AF_INET && b->bits > 32)
		b->bits = 32;
	if (inet_pton(b->family, pfx, b->base) != 1 || inet_pton(b->family, argv[2], b->dst) != 1)
		return false;
	b->size = strtoul(argv[3], NULL, 0);
	*secs = atof(argv[4]);
	*pps = argv[5] ? atof(argv[5]) : 0;
	return b->size >= (b->family == AF_INET ? 28u : 48u) && b->size <= MAXSZ && *secs > 0;
}

int main(int argc, char **argv)
{
	static uint8_t pkts[BATCH][MAXSZ];
	struct blast b = { 0 };
	struct sockaddr_storage ss = { 0 };
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	double secs, pps, total;
	uint64_t start, end, t;
	unsigned sport = 1024;

	if ((argc != 5 && argc != 6) || !parse_args(&b, argv, &secs, &pps)) {
		fprintf(stderr, "usage: pmtublast SRC/BITS DST SIZE SECONDS [PPS]\n");
		return 2;
	}
	if (blast_open(&b) < 0) {
		perror("pmtublast: socket");
		return 1;
	}
	ss.ss_family = (sa_family_t)b.family;
	if (b.family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, b.dst, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, b.dst, 16);
	memset(m, 0, sizeof(m));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = pkts[i];
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
		m[i].msg_hdr.msg_name = &ss;
		m[i].msg_hdr.msg_namelen = b.family == AF_INET ? sizeof(struct sockaddr_in) :
								 sizeof(struct sockaddr_in6);
	}
	start = now_ns();
	end = start + (uint64_t)(secs * 1e9);
	/* Paced: exactly SECONDS * PPS packets, late ones allowed one second more. */
	total = (double)(uint64_t)(secs * pps + 0.5);
	if (pps > 0)
		end += 1000000000ull;
	while ((t = now_ns()) < end && (pps <= 0 || (double)b.sent < total)) {
		unsigned n = BATCH;
		int r;

		if (pps > 0) {
			/* Paced: packet i leaves at i / PPS, the first at once. */
			double due = (double)(t - start) / 1e9 * pps + 1 - (double)b.sent;

			if (due < 1) {
				blast_drain(&b);
				continue;
			}
			if (due > total - (double)b.sent)
				due = total - (double)b.sent;
			n = due < BATCH ? (unsigned)due : BATCH;
		}
		for (unsigned i = 0; i < n; i++) {
			iov[i].iov_len = blast_packet(&b, pkts[i], sport);
			sport = sport == 65535 ? 1024 : sport + 1;
		}
		r = sendmmsg(b.tx, m, n, 0);
		if (r > 0)
			b.sent += (uint64_t)r;
		else if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR) {
			perror("pmtublast: sendmmsg");
			return 1;
		}
		blast_drain(&b);
	}
	for (t = now_ns(); now_ns() - t < DRAIN_NS;)
		blast_drain(&b);
	printf("pmtublast: sent=%llu icmp=%llu mtu=%u seconds=%.3f\n", (unsigned long long)b.sent,
	       (unsigned long long)b.icmp, b.mtu, secs);
	return 0;
}
