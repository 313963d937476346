/* Random valid TCP SYN and SYN-ACK packets from a seed, shared by syngen (which
 * sends them) and mssref (which clamps the same ones with mss_clamp), plus a
 * naive byte-at-a-time checksum that tests use to check clamp/csum.c's. */
#ifndef MTUGATE_TESTS_TOOLS_SYNPKT_H
#define MTUGATE_TESTS_TOOLS_SYNPKT_H

#include <arpa/inet.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define SYNPKT_MAX 128
#define SYNPKT_SEQ_BASE 1000000u

struct synpkt_addrs {
	uint8_t src4[4], dst4[4], src6[16], dst6[16];
};

/* The four addresses from argv[0..3]: SRC4 DST4 SRC6 DST6. */
static inline bool synpkt_parse_addrs(struct synpkt_addrs *a, char **argv)
{
	return inet_pton(AF_INET, argv[0], a->src4) == 1 && inet_pton(AF_INET, argv[1], a->dst4) == 1 &&
	       inet_pton(AF_INET6, argv[2], a->src6) == 1 && inet_pton(AF_INET6, argv[3], a->dst6) == 1;
}

/* xorshift64*: the same sequence on every machine for a seed. */
static inline uint32_t synpkt_rand(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return (uint32_t)((*s * 2685821657736338717ull) >> 32);
}

/* Big-endian 16-bit words, one byte at a time: slow and obviously right. */
static inline uint32_t synpkt_sum(const uint8_t *b, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i++)
		s += (i & 1) ? b[i] : (uint32_t)b[i] << 8;
	return s;
}

static inline uint16_t synpkt_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* The TCP checksum the segment at l4off should carry (its own field counts as
 * zero), as a number. */
static inline uint16_t synpkt_tcp_csum(const uint8_t *pkt, size_t l4off, size_t l4len)
{
	bool v6 = (pkt[0] >> 4) == 6;
	uint32_t s = v6 ? synpkt_sum(pkt + 8, 32, 0) : synpkt_sum(pkt + 12, 8, 0);
	const uint8_t *th = pkt + l4off;

	s += 6 + (uint32_t)(l4len >> 16) + (uint32_t)(l4len & 0xffff);
	s = synpkt_sum(th, 16, s);
	s = synpkt_sum(th + 18, l4len - 18, s);
	return synpkt_fold(s);
}

static inline bool synpkt_tcp_ok(const uint8_t *pkt, size_t l4off, size_t l4len)
{
	const uint8_t *th = pkt + l4off;

	return synpkt_tcp_csum(pkt, l4off, l4len) == (uint16_t)(th[16] << 8 | th[17]);
}

static inline bool synpkt_ip4_ok(const uint8_t *pkt)
{
	return synpkt_fold(synpkt_sum(pkt, (size_t)(pkt[0] & 15) * 4, 0)) == 0;
}

/* Hex fixture text to bytes; stops at cap or at the end of the text. */
static inline size_t synpkt_unhex(uint8_t *out, size_t cap, const char *s)
{
	size_t n = 0;

	for (; s[0] && s[1] && n < cap; s += 2) {
		char h[3] = { s[0], s[1], 0 };
		out[n++] = (uint8_t)strtoul(h, NULL, 16);
	}
	return n;
}

static inline void synpkt_put16(uint8_t *b, uint32_t v)
{
	b[0] = (uint8_t)(v >> 8);
	b[1] = (uint8_t)v;
}

/* MSS values near the 1300 the differential test sets, and far from it. */
static inline uint16_t synpkt_mss(uint64_t *r)
{
	switch (synpkt_rand(r) % 8) {
	case 0: return 1300;
	case 1: return 1299;
	case 2: return 1301;
	case 3: return 65535;
	default: return (uint16_t)(200 + synpkt_rand(r) % 9000);
	}
}

/* The options in random order with NOPs between; EOL, if any, only as padding
 * at the end, so that kernel and mtugate see the same options. */
static inline size_t synpkt_opts(uint8_t *o, uint64_t *r)
{
	uint8_t blob[5][12];
	size_t blen[5], nb = 0, n = 0, i;

	if (synpkt_rand(r) % 4) {
		uint16_t m = synpkt_mss(r);
		memcpy(blob[nb], (uint8_t[]){ 2, 4, (uint8_t)(m >> 8), (uint8_t)m }, 4);
		blen[nb++] = 4;
	}
	if (synpkt_rand(r) % 2) {
		memcpy(blob[nb], (uint8_t[]){ 4, 2 }, 2);
		blen[nb++] = 2;
	}
	if (synpkt_rand(r) % 2) {
		blob[nb][0] = 8;
		blob[nb][1] = 10;
		for (i = 2; i < 10; i++)
			blob[nb][i] = (uint8_t)synpkt_rand(r);
		blen[nb++] = 10;
	}
	if (synpkt_rand(r) % 2) {
		memcpy(blob[nb], (uint8_t[]){ 3, 3, (uint8_t)(synpkt_rand(r) % 15) }, 3);
		blen[nb++] = 3;
	}
	if (synpkt_rand(r) % 8 == 0) {
		/* RFC 6994 experimental option: unknown to both. */
		blen[nb] = 4 + synpkt_rand(r) % 5;
		blob[nb][0] = 254;
		blob[nb][1] = (uint8_t)blen[nb];
		for (i = 2; i < blen[nb]; i++)
			blob[nb][i] = (uint8_t)synpkt_rand(r);
		nb++;
	}
	for (i = nb; i > 1; i--) {
		size_t j = synpkt_rand(r) % i;
		uint8_t tb[12];
		size_t tl = blen[i - 1];
		memcpy(tb, blob[i - 1], 12);
		memcpy(blob[i - 1], blob[j], 12);
		blen[i - 1] = blen[j];
		memcpy(blob[j], tb, 12);
		blen[j] = tl;
	}
	for (i = 0; i < nb; i++) {
		size_t nops = synpkt_rand(r) % 3;
		while (nops-- && n + blen[i] < 36)
			o[n++] = 1;
		memcpy(o + n, blob[i], blen[i]);
		n += blen[i];
	}
	if (n % 4) {
		uint8_t pad = synpkt_rand(r) % 2 ? 1 : 0;
		o[n++] = pad;
		while (n % 4)
			o[n++] = pad == 0 ? 0 : 1;
	}
	return n;
}

/* Packet number index of the stream seeded into *r: IPv4 or IPv6, SYN or
 * SYN-ACK, sequence number SYNPKT_SEQ_BASE + index, valid checksums. */
static inline size_t synpkt_make(uint8_t *buf, uint64_t *r, uint32_t index,
				 const struct synpkt_addrs *a)
{
	bool v6 = synpkt_rand(r) % 2;
	bool hbh = v6 && synpkt_rand(r) % 4 == 0;
	size_t ipl = v6 ? 40 + (hbh ? 8 : 0) : 20, optl, payl = 0, l4len, i;
	uint8_t *th = buf + ipl, flags;
	uint16_t c;

	memset(buf, 0, SYNPKT_MAX);
	optl = synpkt_opts(th + 20, r);
	if (synpkt_rand(r) % 8 == 0) {
		payl = 1 + synpkt_rand(r) % 16;
		for (i = 0; i < payl; i++)
			th[20 + optl + i] = (uint8_t)synpkt_rand(r);
	}
	l4len = 20 + optl + payl;
	flags = synpkt_rand(r) % 2 ? 0x12 : 0x02;
	if (synpkt_rand(r) % 4 == 0)
		flags |= flags == 0x02 ? 0xc0 : 0x40;	/* ECN setup: ECE+CWR / ECE */
	synpkt_put16(th, 1024 + synpkt_rand(r) % 60000);
	synpkt_put16(th + 2, synpkt_rand(r) % 2 ? 443 : synpkt_rand(r) % 65536);
	synpkt_put16(th + 4, (SYNPKT_SEQ_BASE + index) >> 16);
	synpkt_put16(th + 6, SYNPKT_SEQ_BASE + index);
	if (flags & 0x10) {
		synpkt_put16(th + 8, synpkt_rand(r));
		synpkt_put16(th + 10, synpkt_rand(r));
	}
	th[12] = (uint8_t)((20 + optl) / 4 << 4);
	th[13] = flags;
	synpkt_put16(th + 14, synpkt_rand(r));
	if (v6) {
		uint32_t fl = synpkt_rand(r) & 0xfffff;
		buf[0] = 0x60;
		buf[1] = (uint8_t)(fl >> 16);
		synpkt_put16(buf + 2, fl);
		synpkt_put16(buf + 4, (uint32_t)(ipl - 40 + l4len));
		buf[6] = hbh ? 0 : 6;
		buf[7] = 64;
		memcpy(buf + 8, a->src6, 16);
		memcpy(buf + 24, a->dst6, 16);
		if (hbh)
			memcpy(buf + 40, (uint8_t[]){ 6, 0, 1, 4, 0, 0, 0, 0 }, 8);
	} else {
		buf[0] = 0x45;
		synpkt_put16(buf + 2, (uint32_t)(ipl + l4len));
		synpkt_put16(buf + 4, synpkt_rand(r) | 1);	/* raw sockets fill a 0 ID */
		buf[6] = synpkt_rand(r) % 2 ? 0x40 : 0;
		buf[8] = 64;
		buf[9] = 6;
		memcpy(buf + 12, a->src4, 4);
		memcpy(buf + 16, a->dst4, 4);
		synpkt_put16(buf + 10, synpkt_fold(synpkt_sum(buf, 20, 0)));
	}
	c = synpkt_tcp_csum(buf, ipl, l4len);
	synpkt_put16(th + 16, c);
	return ipl + l4len;
}

#endif
