/* synblast: send TCP SYNs through raw sockets, as fast as the kernel takes
 * them or at a given rate, for the MSS benchmark and the end-to-end test.
 *   synblast [-n COUNT] [-r RATE] [-k NSRC] [-p DPORT] [-m MSS] [-q SEQ] SRC DST
 * Packet i has sequence number SEQ + i, source port 1024 + i % 60000, source
 * address SRC + i % NSRC (last byte; the kernel's --queue-balance hashes
 * addresses only, so several sources spread the SYNs over the queues), an MSS
 * option of MSS (-m 0: none) and a timestamp option whose TSval is the send
 * time in microseconds (CLOCK_REALTIME, low 32 bits), which synsink turns
 * into a one-way latency. SRC and DST: both IPv4 or both IPv6. */
#include <errno.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "tests/tools/synpkt.h"

#define BLAST_BATCH 32

struct blast {
	int family;
	uint8_t src[16], dst[16];
	unsigned long count, rate, nsrc, seq;
	uint16_t dport, mss;
};

static uint64_t blast_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* SYN number i into buf; returns its length. */
static size_t blast_make(uint8_t *buf, const struct blast *b, unsigned long i, uint32_t tsval)
{
	bool v6 = b->family == AF_INET6;
	size_t ipl = v6 ? 40 : 20, optl = 0, l4len;
	uint8_t *th = buf + ipl, *o = th + 20;
	uint32_t seq = (uint32_t)(b->seq + i);

	memset(buf, 0, 80);
	if (b->mss) {
		memcpy(o, (uint8_t[]){ 2, 4, (uint8_t)(b->mss >> 8), (uint8_t)b->mss }, 4);
		optl = 4;
	}
	memcpy(o + optl, (uint8_t[]){ 1, 1, 8, 10 }, 4);
	synpkt_put16(o + optl + 4, tsval >> 16);
	synpkt_put16(o + optl + 6, tsval);
	optl += 12;	/* TSecr stays 0 in a SYN */
	l4len = 20 + optl;
	synpkt_put16(th, 1024 + i % 60000);
	synpkt_put16(th + 2, b->dport);
	synpkt_put16(th + 4, seq >> 16);
	synpkt_put16(th + 6, seq);
	th[12] = (uint8_t)(l4len / 4 << 4);
	th[13] = 0x02;
	synpkt_put16(th + 14, 64240);
	if (v6) {
		buf[0] = 0x60;
		synpkt_put16(buf + 4, (uint32_t)l4len);
		buf[6] = 6;
		buf[7] = 64;
		memcpy(buf + 8, b->src, 16);
		buf[23] = (uint8_t)(buf[23] + i % b->nsrc);
		memcpy(buf + 24, b->dst, 16);
	} else {
		buf[0] = 0x45;
		synpkt_put16(buf + 2, (uint32_t)(ipl + l4len));
		synpkt_put16(buf + 4, (uint32_t)(i | 1));	/* raw sockets fill a 0 ID */
		buf[6] = 0x40;
		buf[8] = 64;
		buf[9] = 6;
		memcpy(buf + 12, b->src, 4);
		buf[15] = (uint8_t)(buf[15] + i % b->nsrc);
		memcpy(buf + 16, b->dst, 4);
		synpkt_put16(buf + 10, synpkt_fold(synpkt_sum(buf, 20, 0)));
	}
	synpkt_put16(th + 16, synpkt_tcp_csum(buf, ipl, l4len));
	return ipl + l4len;
}

/* Send msgs[0..n), retrying what the device queue pushed back. */
static unsigned blast_send(int s, struct mmsghdr *msgs, unsigned n)
{
	unsigned done = 0;

	while (done < n) {
		int r = sendmmsg(s, msgs + done, n - done, 0);

		if (r > 0)
			done += (unsigned)r;
		else if (r < 0 && errno != ENOBUFS && errno != EAGAIN && errno != EINTR)
			break;
	}
	return done;
}

static bool blast_parse(struct blast *b, int argc, char **argv)
{
	int c;

	*b = (struct blast){ .count = 1, .nsrc = 1, .seq = SYNPKT_SEQ_BASE, .dport = 9, .mss = 1460 };
	while ((c = getopt(argc, argv, "n:r:k:p:m:q:")) != -1) {
		switch (c) {
		case 'n': b->count = strtoul(optarg, NULL, 0); break;
		case 'r': b->rate = strtoul(optarg, NULL, 0); break;
		case 'k': b->nsrc = strtoul(optarg, NULL, 0); break;
		case 'p': b->dport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'm': b->mss = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'q': b->seq = strtoul(optarg, NULL, 0); break;
		default: return false;
		}
	}
	if (argc - optind != 2 || b->nsrc < 1 || b->nsrc > 256)
		return false;
	b->family = strchr(argv[optind], ':') ? AF_INET6 : AF_INET;
	return inet_pton(b->family, argv[optind], b->src) == 1 &&
	       inet_pton(b->family, argv[optind + 1], b->dst) == 1;
}

int main(int argc, char **argv)
{
	static uint8_t bufs[BLAST_BATCH][80];
	struct mmsghdr msgs[BLAST_BATCH];
	struct iovec iov[BLAST_BATCH];
	struct sockaddr_in d4 = { .sin_family = AF_INET };
	struct sockaddr_in6 d6 = { .sin6_family = AF_INET6 };
	struct blast b;
	unsigned long i = 0, sent = 0;
	uint64_t start, end;
	int s;

	if (!blast_parse(&b, argc, argv)) {
		fprintf(stderr, "usage: synblast [-n COUNT] [-r RATE] [-k NSRC] [-p DPORT] [-m MSS] "
				"[-q SEQ] SRC DST\n");
		return 2;
	}
	memcpy(&d4.sin_addr, b.dst, 4);
	memcpy(&d6.sin6_addr, b.dst, 16);
	/* IPPROTO_RAW implies IP_HDRINCL, for IPv6 as well. */
	if ((s = socket(b.family, SOCK_RAW, IPPROTO_RAW)) < 0) {
		perror("synblast: socket");
		return 1;
	}
	memset(msgs, 0, sizeof(msgs));
	for (unsigned j = 0; j < BLAST_BATCH; j++) {
		iov[j] = (struct iovec){ .iov_base = bufs[j] };
		msgs[j].msg_hdr.msg_iov = &iov[j];
		msgs[j].msg_hdr.msg_iovlen = 1;
		msgs[j].msg_hdr.msg_name = b.family == AF_INET6 ? (void *)&d6 : (void *)&d4;
		msgs[j].msg_hdr.msg_namelen = b.family == AF_INET6 ? sizeof(d6) : sizeof(d4);
	}
	start = blast_now_ns();
	while (i < b.count) {
		/* Paced: one SYN at a time, each stamped when it leaves. */
		unsigned n = b.rate ? 1 : BLAST_BATCH;
		uint64_t now = blast_now_ns();

		if (b.rate) {
			/* Sleep, never spin: a spinning sender would take a core from
			 * the gateway on a small machine. Each SYN is stamped after. */
			uint64_t due = start + (uint64_t)(i * 1000000000.0 / (double)b.rate);
			struct timespec ts = { (time_t)(due / 1000000000u), (long)(due % 1000000000u) };
			if (due > now)
				clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
			now = blast_now_ns();
		}
		if (n > b.count - i)
			n = (unsigned)(b.count - i);
		for (unsigned j = 0; j < n; j++)
			iov[j].iov_len = blast_make(bufs[j], &b, i + j, (uint32_t)(now / 1000));
		sent += blast_send(s, msgs, n);
		i += n;
	}
	end = blast_now_ns();
	close(s);
	/* CPU time includes the softirq work done in this context: on veth, the
	 * gateway's forwarding of each SYN that no queue holds back. */
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	printf("synblast: sent=%lu of %lu seconds=%.6f rate=%.0f cpu_s=%.3f\n", sent, b.count,
	       (double)(end - start) / 1e9, (double)sent * 1e9 / (double)(end - start + 1),
	       (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e6);
	return sent == b.count ? 0 : 1;
}
