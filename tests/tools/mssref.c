/* mssref SEED N TARGET SRC4 DST4 SRC6 DST6: clamp the packets syngen sends
 * (same seed, same generator) with mss_clamp, as a router would forward them
 * (TTL / hop limit one less), and print one line per packet:
 *   FAMILY SEQ MSS ODD HEX
 * FAMILY is 4 or 6, MSS the first MSS option's value or "none", ODD "odd"
 * when an MSS value was lowered at an odd offset from the TCP header (else
 * "-"), HEX the whole IP packet: what the receiver must capture if the kernel
 * agrees.
 * mssref -c reads such lines and appends CKOFF VALID: the offset of the TCP
 * checksum in HEX (in hex digits) and "ok" or "bad" for that checksum. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "clamp/mss.h"
#include "clamp/pkt.h"
#include "tests/tools/synpkt.h"

static void mssref_print(const uint8_t *buf, size_t len, const struct pkt *p, uint32_t seq,
			 bool odd)
{
	const uint8_t *th = buf + p->l4off;
	size_t doff = (size_t)(th[12] >> 4) * 4, i = 20;
	int mss = -1;

	while (i < doff && th[i] != 0 && mss < 0) {
		if (th[i] == 2)
			mss = th[i + 2] << 8 | th[i + 3];
		i += th[i] == 1 ? 1 : th[i + 1];
	}
	printf("%d %u ", p->family == AF_INET ? 4 : 6, seq);
	if (mss < 0)
		printf("none ");
	else
		printf("%d ", mss);
	printf("%s ", odd ? "odd" : "-");
	for (i = 0; i < len; i++)
		printf("%02x", buf[i]);
	putchar('\n');
}

/* Append the TCP checksum's offset and validity to each line of stdin. */
static int mssref_check(void)
{
	char line[1024], hex[600];
	uint8_t buf[SYNPKT_MAX + 4];

	while (fgets(line, sizeof(line), stdin)) {
		struct pkt p;
		size_t len;

		if (sscanf(line, "%*s %*s %*s %*s %599s", hex) != 1)
			continue;
		line[strcspn(line, "\n")] = 0;
		len = synpkt_unhex(buf, sizeof(buf), hex);
		if (pkt_parse(&p, buf, len) != PKT_OK || p.proto != IPPROTO_TCP || p.l4len < 20) {
			printf("%s 0 bad\n", line);
			continue;
		}
		printf("%s %zu %s\n", line, 2 * (p.l4off + 16),
		       synpkt_tcp_ok(buf, p.l4off, p.l4len) ? "ok" : "bad");
	}
	return 0;
}

/* Whether mss_clamp lowers an MSS value that sits at an odd offset. */
static bool mssref_odd(const uint8_t *buf, const struct pkt *p, uint16_t target)
{
	const uint8_t *th = buf + p->l4off;
	size_t doff = (size_t)(th[12] >> 4) * 4, i = 20;

	while (i < doff && th[i] != 0) {
		if (th[i] == 2 && (th[i + 2] << 8 | th[i + 3]) > target && (i & 1))
			return true;
		i += th[i] == 1 ? 1 : th[i + 1];
	}
	return false;
}

int main(int argc, char **argv)
{
	struct synpkt_addrs a;
	uint64_t rng;
	unsigned long n, i;
	uint16_t target;

	if (argc == 2 && strcmp(argv[1], "-c") == 0)
		return mssref_check();
	if (argc != 8 || !synpkt_parse_addrs(&a, argv + 4)) {
		fprintf(stderr, "usage: mssref SEED N TARGET SRC4 DST4 SRC6 DST6\n");
		return 2;
	}
	rng = strtoull(argv[1], NULL, 0) | 1;
	n = strtoul(argv[2], NULL, 0);
	target = (uint16_t)strtoul(argv[3], NULL, 0);
	for (i = 0; i < n; i++) {
		uint8_t buf[SYNPKT_MAX + 4];
		size_t len = synpkt_make(buf, &rng, (uint32_t)i, &a), newlen;
		struct pkt p;
		bool odd;

		if (pkt_parse(&p, buf, len) != PKT_OK) {
			fprintf(stderr, "mssref: packet %lu does not parse\n", i);
			return 1;
		}
		odd = mssref_odd(buf, &p, target);
		if (mss_clamp(buf, len, sizeof(buf), &p, target, &newlen) == MSS_BAD) {
			fprintf(stderr, "mssref: packet %lu is malformed\n", i);
			return 1;
		}
		pkt_parse(&p, buf, newlen);
		if (p.family == AF_INET) {
			buf[8]--;
			buf[10] = buf[11] = 0;
			synpkt_put16(buf + 10, synpkt_fold(synpkt_sum(buf, 20, 0)));
		} else {
			buf[7]--;
		}
		mssref_print(buf, newlen, &p, SYNPKT_SEQ_BASE + (uint32_t)i, odd);
	}
	return 0;
}
