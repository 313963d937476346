/* synsink: count the SYNs of synblast in a receiver's capture (a pcap file,
 * micro- or nanosecond, Ethernet or Linux cooked) and print one line:
 *   synsink: syns=N unique=U dup=D clamped=C unclamped=X nomss=M lost=L
 *            span_s=S rate=R lat_p50_us=A lat_p99_us=B
 *   synsink [-n COUNT] [-q SEQ] [-p DPORT] [-e EVERY] -M MAXMSS FILE
 * A SYN counts when its destination port is DPORT; "clamped" means its last
 * MSS option is at most MAXMSS; "lost" are the sequence numbers SEQ ..
 * SEQ+COUNT-1 never seen; rate is clamped SYNs per second between the first
 * and the last arrival; latency is the capture time less synblast's TSval.
 * With -e, the capture holds only every EVERY-th SYN (a filter on the
 * sequence number, so capturing costs the receiver little at full rate):
 * "lost" counts the sampled ones, and rate is the SYNs sent between the
 * first and the last captured one (their sequence numbers) per second. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "clamp/pkt.h"
#include "tests/tools/synpkt.h"

#define SINK_SNAP 65536

struct sink {
	unsigned long count, seq, maxmss, every;
	unsigned long first_k, last_k;
	uint16_t dport;
	unsigned long syns, unique, dup, clamped, unclamped, nomss;
	uint64_t first_ns, last_ns;
	uint8_t *seen;		/* one bit per expected sequence number */
	int32_t *lat;		/* microseconds, one per SYN with a timestamp */
	size_t nlat, caplat;
};

/* The last MSS option's value and TSval of the TCP header at th: -1 when absent. */
static void sink_opts(const uint8_t *th, size_t l4len, long *mss, int64_t *tsval)
{
	size_t doff = (size_t)(th[12] >> 4) * 4, i = 20;

	*mss = -1;
	*tsval = -1;
	if (doff > l4len)
		return;
	while (i < doff && th[i] != 0) {
		if (th[i] == 1) {
			i++;
			continue;
		}
		if (i + 1 >= doff || th[i + 1] < 2 || i + th[i + 1] > doff)
			return;
		if (th[i] == 2 && th[i + 1] == 4)
			*mss = th[i + 2] << 8 | th[i + 3];
		if (th[i] == 8 && th[i + 1] == 10)
			*tsval = (int64_t)((uint32_t)th[i + 2] << 24 | (uint32_t)th[i + 3] << 16 |
					   (uint32_t)th[i + 4] << 8 | th[i + 5]);
		i += th[i + 1];
	}
}

static void sink_packet(struct sink *s, const uint8_t *ip, size_t len, uint64_t ts_ns)
{
	struct pkt p;
	uint16_t sport, dport;
	long mss;
	int64_t tsval;

	if (pkt_parse(&p, ip, len) != PKT_OK || p.proto != IPPROTO_TCP ||
	    pkt_ports(&p, &sport, &dport) != 0 || dport != s->dport || p.l4len < 20)
		return;
	const uint8_t *th = ip + p.l4off;
	if ((th[13] & 0x16) != 0x02)	/* SYN, neither ACK nor RST */
		return;
	uint32_t seq = (uint32_t)th[4] << 24 | (uint32_t)th[5] << 16 | (uint32_t)th[6] << 8 | th[7];
	unsigned long k = (uint32_t)(seq - (uint32_t)s->seq);

	s->syns++;
	if (k < s->count) {
		if (s->seen[k / 8] & (1u << (k % 8))) {
			s->dup++;
			return;
		}
		s->seen[k / 8] |= (uint8_t)(1u << (k % 8));
		s->unique++;
	}
	sink_opts(th, p.l4len, &mss, &tsval);
	if (mss < 0)
		s->nomss++;
	else if ((unsigned long)mss <= s->maxmss)
		s->clamped++;
	else
		s->unclamped++;
	if (!s->first_ns) {
		s->first_ns = ts_ns;
		s->first_k = k;
	}
	s->last_ns = ts_ns;
	s->last_k = k;
	if (tsval >= 0) {
		if (s->nlat == s->caplat) {
			s->caplat = s->caplat ? 2 * s->caplat : 4096;
			s->lat = realloc(s->lat, s->caplat * sizeof(*s->lat));
			if (!s->lat)
				exit(1);
		}
		/* Both clocks are CLOCK_REALTIME in microseconds, modulo 2^32. */
		s->lat[s->nlat++] = (int32_t)((uint32_t)(ts_ns / 1000) - (uint32_t)tsval);
	}
}

static int sink_cmp(const void *a, const void *b)
{
	int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;

	return (x > y) - (x < y);
}

/* Walk the records of a pcap file; 0, or -1 when it is not one. */
static int sink_read(struct sink *s, FILE *f)
{
	static uint8_t rec[SINK_SNAP];
	uint32_t gh[6], rh[4];
	uint64_t frac_ns;
	size_t l2;

	if (fread(gh, sizeof(gh), 1, f) != 1)
		return -1;
	if (gh[0] == 0xa1b2c3d4)
		frac_ns = 1000;
	else if (gh[0] == 0xa1b23c4d)
		frac_ns = 1;
	else
		return -1;
	switch (gh[5] & 0xffff) {
	case 1: l2 = 14; break;		/* Ethernet */
	case 113: l2 = 16; break;	/* Linux cooked (SLL) */
	case 276: l2 = 20; break;	/* Linux cooked v2 */
	case 101: l2 = 0; break;	/* raw IP */
	default: return -1;
	}
	while (fread(rh, sizeof(rh), 1, f) == 1) {
		if (rh[2] > sizeof(rec) || fread(rec, rh[2], 1, f) != 1)
			break;
		if (rh[2] > l2)
			sink_packet(s, rec + l2, rh[2] - l2,
				    (uint64_t)rh[0] * 1000000000u + (uint64_t)rh[1] * frac_ns);
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct sink s = { .count = 0, .seq = SYNPKT_SEQ_BASE, .dport = 9, .every = 1 };
	unsigned long expect;
	double span, p50 = 0, p99 = 0;
	FILE *f;
	int c;

	while ((c = getopt(argc, argv, "n:q:p:e:M:")) != -1) {
		switch (c) {
		case 'n': s.count = strtoul(optarg, NULL, 0); break;
		case 'q': s.seq = strtoul(optarg, NULL, 0); break;
		case 'p': s.dport = (uint16_t)strtoul(optarg, NULL, 0); break;
		case 'e': s.every = strtoul(optarg, NULL, 0); break;
		case 'M': s.maxmss = strtoul(optarg, NULL, 0); break;
		default: goto usage;
		}
	}
	if (argc - optind != 1 || !s.maxmss || !s.every)
		goto usage;
	if (!(s.seen = calloc(s.count / 8 + 1, 1)))
		return 1;
	if (!(f = fopen(argv[optind], "rb")) || sink_read(&s, f) < 0) {
		fprintf(stderr, "synsink: %s: not a readable pcap file\n", argv[optind]);
		return 1;
	}
	fclose(f);
	if (s.nlat) {
		qsort(s.lat, s.nlat, sizeof(*s.lat), sink_cmp);
		p50 = s.lat[s.nlat / 2];
		p99 = s.lat[s.nlat * 99 / 100];
	}
	span = (double)(s.last_ns - s.first_ns) / 1e9;
	expect = (s.count + s.every - 1) / s.every;
	/* Sampled: what was sent between the two captured SYNs, not what was captured. */
	double sent = s.every > 1 ? (double)(s.last_k - s.first_k) : (double)s.clamped;
	printf("synsink: syns=%lu unique=%lu dup=%lu clamped=%lu unclamped=%lu nomss=%lu lost=%lu "
	       "span_s=%.6f rate=%.0f lat_p50_us=%.0f lat_p99_us=%.0f\n",
	       s.syns, s.unique, s.dup, s.clamped, s.unclamped, s.nomss, expect - s.unique, span,
	       span > 0 ? sent / span : 0, p50, p99);
	free(s.seen);
	free(s.lat);
	return 0;
usage:
	fprintf(stderr, "usage: synsink [-n COUNT] [-q SEQ] [-p DPORT] [-e EVERY] -M MAXMSS FILE\n");
	return 2;
}
