/* Bulk DTLS-looking UDP for bench-dtls.sh: a ClientHello first (what the
 * DTLS queue decides on), then application-data records as fast as the
 * socket takes them; and a receiver that reports the rate it got.
 *   dtlsblast send SRC SPORT DST DPORT SECONDS [SIZE]
 *   dtlsblast recv ADDR PORT SECONDS      prints "bytes=N seconds=S mbit=R"
 * And a flood for e2e-flood.sh: PPS DTLS application-data records a second
 * (no ClientHello: the daemon's lookup by client address), each from a
 * random source port, so each one is a new flow the DTLS queue gets:
 *   dtlsblast flood SRC DST DPORT SECONDS PPS   prints "sent=N seconds=S pps=R" */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "clamp/dtls.h"

#define BATCH 64
#define MAXSZ 9000

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int sock_for(const char *addr, int port, struct sockaddr_storage *ss, socklen_t *sl)
{
	struct sockaddr_in *a4 = (void *)ss;
	struct sockaddr_in6 *a6 = (void *)ss;

	memset(ss, 0, sizeof(*ss));
	if (inet_pton(AF_INET, addr, &a4->sin_addr) == 1) {
		a4->sin_family = AF_INET;
		a4->sin_port = htons((uint16_t)port);
		*sl = sizeof(*a4);
	} else if (inet_pton(AF_INET6, addr, &a6->sin6_addr) == 1) {
		a6->sin6_family = AF_INET6;
		a6->sin6_port = htons((uint16_t)port);
		*sl = sizeof(*a6);
	} else {
		fprintf(stderr, "dtlsblast: bad address %s\n", addr);
		exit(2);
	}
	return socket(ss->ss_family, SOCK_DGRAM, 0);
}

/* A legacy (record version 0x0100) ClientHello resuming a 32-byte session. */
static size_t hello(uint8_t *b)
{
	static const uint8_t head[] = {
		0x16, 0x01, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0x00, 0x56,	/* record */
		0x01, 0x00, 0x00, 0x4a, 0, 0, 0, 0, 0, 0x00, 0x00, 0x4a,	/* handshake */
		0x01, 0x00 };						/* client_version */
	size_t n = sizeof(head);

	memcpy(b, head, n);
	for (int i = 0; i < 32; i++)
		b[n++] = (uint8_t)(0x40 + i);		/* random */
	b[n++] = 32;
	for (int i = 0; i < 32; i++)
		b[n++] = (uint8_t)(0xa0 + i);		/* session ID */
	memcpy(b + n, "\x00\x00\x02\x00\x2f\x01\x00", 7);	/* cookie, AES128-SHA, null */
	return n + 7;
}

static int blast(int argc, char **argv)
{
	struct sockaddr_storage src, dst;
	socklen_t sl, dl;
	static uint8_t buf[BATCH][MAXSZ];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	size_t size = argc > 7 ? strtoul(argv[7], NULL, 10) : 1200;
	double end;
	unsigned long long sent = 0;
	struct dtls_info info;
	size_t n;
	int fd;

	if (size < 13 || size > MAXSZ)
		size = 1200;
	fd = sock_for(argv[2], atoi(argv[3]), &src, &sl);
	sock_for(argv[4], atoi(argv[5]), &dst, &dl);
	if (fd < 0 || bind(fd, (void *)&src, sl) < 0 || connect(fd, (void *)&dst, dl) < 0) {
		perror("dtlsblast: socket");
		return 1;
	}
	n = hello(buf[0]);
	/* What the daemon will see: a ClientHello, or this bench measures nothing. */
	if (dtls_parse(&info, buf[0], n) != DTLS_CLIENT_HELLO || info.session_id_len != 32) {
		fprintf(stderr, "dtlsblast: the hello does not parse\n");
		return 1;
	}
	if (send(fd, buf[0], n, 0) < 0)
		perror("dtlsblast: hello");
	/* A DTLS client waits for the server's flight too: the hello's verdict
	 * puts the decision on the connection before the bulk starts. */
	usleep(200000);
	for (int i = 0; i < BATCH; i++) {
		uint8_t *r = buf[i];

		memset(r, 0x5a, size);
		r[0] = 0x17;			/* application data, DTLS 1.2, epoch 1 */
		r[1] = 0xfe;
		r[2] = 0xfd;
		r[3] = 0;
		r[4] = 1;
		r[11] = (uint8_t)((size - 13) >> 8);
		r[12] = (uint8_t)(size - 13);
		iov[i].iov_base = r;
		iov[i].iov_len = size;
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	end = now() + atof(argv[6]);
	while (now() < end) {
		int k = sendmmsg(fd, m, BATCH, 0);

		/* ECONNREFUSED: an ICMP error from a previous datagram; go on. */
		if (k < 0 && errno != ENOBUFS && errno != ECONNREFUSED && errno != EAGAIN) {
			perror("dtlsblast: sendmmsg");
			return 1;
		}
		if (k > 0)
			sent += (unsigned long long)k;
	}
	printf("sent=%llu size=%zu\n", sent, size);
	return 0;
}

static int sink(char **argv)
{
	struct sockaddr_storage a;
	socklen_t al;
	static uint8_t buf[BATCH][MAXSZ];
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct timeval tv = { 0, 200000 };
	int fd = sock_for(argv[2], atoi(argv[3]), &a, &al), rcv = 64 << 20;
	double deadline = now() + atof(argv[4]), first = 0, last = 0, idle_end = 0;
	unsigned long long bytes = 0, firstbytes = 0;

	if (fd < 0 || bind(fd, (void *)&a, al) < 0) {
		perror("dtlsblast: bind");
		return 1;
	}
	if (setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof(rcv)) < 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	for (int i = 0; i < BATCH; i++) {
		iov[i].iov_base = buf[i];
		iov[i].iov_len = MAXSZ;
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	/* From the first bulk datagram until one second of silence. */
	while (now() < deadline && (!first || now() < idle_end)) {
		int n = recvmmsg(fd, m, BATCH, 0, NULL);

		for (int i = 0; i < n; i++) {
			if (m[i].msg_len < 200)
				continue;	/* the hello */
			if (!first) {
				first = now();
				firstbytes = m[i].msg_len;
			}
			bytes += m[i].msg_len;
		}
		if (n > 0 && first) {
			last = now();
			idle_end = last + 1.0;
		}
	}
	bytes -= firstbytes;
	printf("bytes=%llu seconds=%.3f mbit=%.1f\n", bytes, last - first,
	       last > first ? (double)bytes * 8 / (last - first) / 1e6 : 0.0);
	return 0;
}

/* IPv4 only, through a raw socket (IP_HDRINCL): one sendmmsg per batch
 * whatever the source port. The kernel fills the IP checksum and ID; the
 * UDP checksum is left 0 (none, RFC 768). */
static int flood(char **argv)
{
	enum { REC = 60, LEN = 20 + 8 + REC };
	static uint8_t buf[BATCH][LEN];
	struct sockaddr_in dst = { .sin_family = AF_INET };
	struct mmsghdr m[BATCH];
	struct iovec iov[BATCH];
	struct in_addr src;
	double secs = atof(argv[5]), pps = atof(argv[6]), t0, t;
	unsigned long long sent = 0, due;
	uint64_t x = (uint64_t)getpid() * 0x9e3779b97f4a7c15ull | 1;
	int fd = socket(AF_INET, SOCK_RAW, IPPROTO_RAW);

	if (fd < 0 || inet_pton(AF_INET, argv[2], &src) != 1 ||
	    inet_pton(AF_INET, argv[3], &dst.sin_addr) != 1 || pps <= 0) {
		fprintf(stderr, "dtlsblast: flood SRC DST DPORT SECONDS PPS (IPv4, root)\n");
		return 2;
	}
	for (int i = 0; i < BATCH; i++) {
		uint8_t *b = buf[i];

		memset(b, 0x5a, LEN);
		b[0] = 0x45;
		b[1] = 0;
		b[2] = LEN >> 8;
		b[3] = LEN & 0xff;
		memset(b + 4, 0, 4);		/* ID, no DF */
		b[8] = 64;
		b[9] = IPPROTO_UDP;
		memset(b + 10, 0, 2);
		memcpy(b + 12, &src, 4);
		memcpy(b + 16, &dst.sin_addr, 4);
		b[22] = (uint8_t)(atoi(argv[4]) >> 8);
		b[23] = (uint8_t)atoi(argv[4]);
		b[24] = 0;
		b[25] = 8 + REC;
		memset(b + 26, 0, 2);
		b[28] = 0x17;			/* application data, DTLS 1.2, epoch 1 */
		b[29] = 0xfe;
		b[30] = 0xfd;
		b[31] = 0;
		b[32] = 1;
		b[39] = 0;
		b[40] = REC - 13;
		iov[i].iov_base = b;
		iov[i].iov_len = LEN;
		memset(&m[i], 0, sizeof(m[i]));
		m[i].msg_hdr.msg_name = &dst;
		m[i].msg_hdr.msg_namelen = sizeof(dst);
		m[i].msg_hdr.msg_iov = &iov[i];
		m[i].msg_hdr.msg_iovlen = 1;
	}
	t0 = now();
	while ((t = now()) < t0 + secs) {
		due = (unsigned long long)((t - t0) * pps);
		if (sent >= due) {
			usleep(1000);
			continue;
		}
		int k = (int)(due - sent < BATCH ? due - sent : BATCH);

		for (int i = 0; i < k; i++) {
			x ^= x << 13;	/* xorshift64: ports 1024-65535 */
			x ^= x >> 7;
			x ^= x << 17;
			uint16_t port = (uint16_t)(1024 + x % 64512);

			buf[i][20] = (uint8_t)(port >> 8);
			buf[i][21] = (uint8_t)port;
		}
		k = sendmmsg(fd, m, (unsigned)k, 0);
		if (k < 0 && errno != ENOBUFS && errno != EAGAIN) {
			perror("dtlsblast: sendmmsg");
			return 1;
		}
		if (k > 0)
			sent += (unsigned long long)k;
	}
	t = now() - t0;
	printf("sent=%llu seconds=%.3f pps=%.0f\n", sent, t, (double)sent / t);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc >= 7 && strcmp(argv[1], "send") == 0)
		return blast(argc, argv);
	if (argc == 5 && strcmp(argv[1], "recv") == 0)
		return sink(argv);
	if (argc == 7 && strcmp(argv[1], "flood") == 0)
		return flood(argv);
	fprintf(stderr, "usage: dtlsblast send SRC SPORT DST DPORT SECONDS [SIZE]\n"
		"       dtlsblast recv ADDR PORT SECONDS\n"
		"       dtlsblast flood SRC DST DPORT SECONDS PPS\n");
	return 2;
}
