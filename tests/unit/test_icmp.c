/* ICMP fragmentation-needed / Packet Too Big / port unreachable builder:
 * byte-exact output, checksums recomputed naively, every never-send case. */
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>

#include "clamp/icmp.h"
#include "clamp/pkt.h"
#include "tests/unit/t.h"

/* Expected bytes below were computed by an independent script (Python
 * struct + its own RFC 1071 sum); packets are a header fixture followed by
 * payload bytes equal to (offset & 0xff). */

/* IPv4, IHL 6 with a Router Alert option, DF, TCP, 198.18.3.10 ->
 * 192.0.2.130, total length 1420. */
static const uint8_t v4opt_hdr[44] = {
	0x46, 0x00, 0x05, 0x8c, 0x1c, 0x46, 0x40, 0x00, 0x3f, 0x06, 0xf9, 0x82,
	0xc6, 0x12, 0x03, 0x0a, 0xc0, 0x00, 0x02, 0x82, 0x94, 0x04, 0x00, 0x00,
	0xd4, 0x31, 0x00, 0x50, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x50, 0x10, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
};

/* Its answer for mtu 1380 from 198.18.2.1: 576 bytes, this header, then the
 * first 548 bytes of the packet. */
static const uint8_t v4opt_out_head[28] = {
	0x45, 0xc0, 0x02, 0x40, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0xe6, 0xcd,
	0xc6, 0x12, 0x02, 0x01, 0xc6, 0x12, 0x03, 0x0a, 0x03, 0x04, 0xf4, 0x34,
	0x00, 0x00, 0x05, 0x64,
};

/* IPv4 UDP with DF, 198.19.7.7 -> 192.0.2.140, 100 bytes. */
static const uint8_t v4small_hdr[28] = {
	0x45, 0x00, 0x00, 0x64, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0xaa, 0xe1,
	0xc6, 0x13, 0x07, 0x07, 0xc0, 0x00, 0x02, 0x8c, 0x9c, 0x40, 0x01, 0xbb,
	0x00, 0x50, 0x00, 0x00,
};

/* Its answer for mtu 40 (raised to 68), whole packet quoted. */
static const uint8_t v4small_out[128] = {
	0x45, 0xc0, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0xe4, 0x8f,
	0xc6, 0x12, 0x02, 0x01, 0xc6, 0x13, 0x07, 0x07, 0x03, 0x04, 0x79, 0x63,
	0x00, 0x00, 0x00, 0x44, 0x45, 0x00, 0x00, 0x64, 0x00, 0x01, 0x40, 0x00,
	0x40, 0x11, 0xaa, 0xe1, 0xc6, 0x13, 0x07, 0x07, 0xc0, 0x00, 0x02, 0x8c,
	0x9c, 0x40, 0x01, 0xbb, 0x00, 0x50, 0x00, 0x00, 0x1c, 0x1d, 0x1e, 0x1f,
	0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b,
	0x2c, 0x2d, 0x2e, 0x2f, 0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37,
	0x38, 0x39, 0x3a, 0x3b, 0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x41, 0x42, 0x43,
	0x44, 0x45, 0x46, 0x47, 0x48, 0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f,
	0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b,
	0x5c, 0x5d, 0x5e, 0x5f, 0x60, 0x61, 0x62, 0x63,
};

/* Port unreachable about the same packet (header; the whole packet follows). */
static const uint8_t v4unreach_head[28] = {
	0x45, 0xc0, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x40, 0x01, 0xe4, 0x8f,
	0xc6, 0x12, 0x02, 0x01, 0xc6, 0x13, 0x07, 0x07, 0x03, 0x03, 0x79, 0xa8,
	0x00, 0x00, 0x00, 0x00,
};

/* IPv6 2001:db8:0:1::10 -> 2001:db8:0:80::5, hop-by-hop, destination
 * options, fragment header (first fragment, M set), TCP: 1400 bytes. */
static const uint8_t v6ext_hdr[84] = {
	0x60, 0x00, 0x00, 0x00, 0x05, 0x50, 0x00, 0x39, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x05, 0x3c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00,
	0x2c, 0x00, 0x01, 0x04, 0x00, 0x00, 0x00, 0x00, 0x06, 0x00, 0x00, 0x01,
	0xa1, 0xb2, 0xc3, 0xd4, 0x01, 0xbb, 0xc3, 0x50, 0x00, 0x00, 0x00, 0x01,
	0x00, 0x00, 0x00, 0x00, 0x50, 0x10, 0xfa, 0xf0, 0x00, 0x00, 0x00, 0x00,
};

/* Its Packet Too Big for mtu 1300 from 2001:db8:0:1::1: 1280 bytes, this
 * header, then the first 1232 bytes of the packet. */
static const uint8_t v6ext_out_head[48] = {
	0x60, 0x00, 0x00, 0x00, 0x04, 0xd8, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x10, 0x02, 0x00, 0xae, 0xa5, 0x00, 0x00, 0x05, 0x14,
};

/* Port unreachable (type 1 code 4) about the same packet. */
static const uint8_t v6unreach_head[48] = {
	0x60, 0x00, 0x00, 0x00, 0x04, 0xd8, 0x3a, 0x40, 0x20, 0x01, 0x0d, 0xb8,
	0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01,
	0x20, 0x01, 0x0d, 0xb8, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00,
	0x00, 0x00, 0x00, 0x10, 0x01, 0x04, 0xb4, 0xb5, 0x00, 0x00, 0x00, 0x00,
};

static const uint8_t gw4[4] = { 198, 18, 2, 1 };
static const uint8_t gw6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1 };

static uint8_t in[9000], out[2048];

static size_t mkpkt(const uint8_t *hdr, size_t hlen, size_t total)
{
	memcpy(in, hdr, hlen);
	for (size_t i = hlen; i < total; i++)
		in[i] = (uint8_t)i;
	return total;
}

/* RFC 1071 the slow way: big-endian 16-bit words, end-around carry. */
static uint32_t naive(const uint8_t *b, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i += 2)
		s += (uint32_t)b[i] << 8 | (i + 1 < n ? b[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

/* Both checksums of a built packet verify. */
static void check_sums(const uint8_t *o, size_t len)
{
	if (o[0] >> 4 == 4) {
		CHECK_INT(naive(o, 20, 0), 0xffff);
		CHECK_INT(naive(o + 20, len - 20, 0), 0xffff);
		CHECK_INT((o[2] << 8 | o[3]), len);
	} else {
		uint8_t ph[40] = { 0 };

		memcpy(ph, o + 8, 32);
		ph[34] = (uint8_t)((len - 40) >> 8);
		ph[35] = (uint8_t)(len - 40);
		ph[39] = 58;
		CHECK_INT(naive(o + 40, len - 40, naive(ph, 40, 0)), 0xffff);
		CHECK_INT((o[4] << 8 | o[5]), len - 40);
	}
}

static enum icmp_res build(size_t n, unsigned mtu, size_t *len)
{
	struct pkt p;

	*len = 12345;
	if (pkt_parse(&p, in, n) != PKT_OK)
		return (enum icmp_res)-1;
	return icmp_build_too_big(&p, p.family == AF_INET ? gw4 : gw6, mtu, out, sizeof(out), len);
}

static void test_v4_options(void)
{
	size_t n = mkpkt(v4opt_hdr, sizeof(v4opt_hdr), 1420), len;

	CHECK_INT(build(n, 1380, &len), ICMP_SEND);
	CHECK_INT(len, 576);
	CHECK_MEM(out, v4opt_out_head, 28);
	CHECK_MEM(out + 28, in, 548);		/* IP header with options, TCP, data */
	check_sums(out, len);
	CHECK_INT(out[6] & 0x40, 0);		/* no DF on the ICMP */
	CHECK_INT(out[24] << 8 | out[25], 0);	/* unused half of the second word */
	CHECK_INT(out[26] << 8 | out[27], 1380);

	/* A jumbo 9000-byte packet: same 576-byte cut. Trailing bytes past
	 * the IP total length are never quoted. */
	n = mkpkt(v4opt_hdr, sizeof(v4opt_hdr), 9000);
	in[2] = 9000 >> 8;
	in[3] = 9000 & 0xff;
	CHECK_INT(build(n, 1500, &len), ICMP_SEND);
	CHECK_INT(len, 576);
	CHECK_MEM(out + 28, in, 548);
	CHECK_INT(out[26] << 8 | out[27], 1500);
	check_sums(out, len);
	/* mtu above 65535 is capped to what the field holds. */
	CHECK_INT(build(n, 70000, &len), ICMP_NOT_OVERSIZE);
	CHECK_INT(len, 0);
}

static void test_v4_small(void)
{
	size_t n = mkpkt(v4small_hdr, sizeof(v4small_hdr), 100), len;
	struct pkt p;

	/* Trailing garbage after the 100 bytes the header claims. */
	memset(in + 100, 0xee, 50);
	CHECK_INT(build(n + 50, 40, &len), ICMP_SEND);
	CHECK_INT(len, sizeof(v4small_out));
	CHECK_MEM(out, v4small_out, sizeof(v4small_out));
	check_sums(out, len);
	CHECK_INT(out[26] << 8 | out[27], ICMP4_MIN_MTU);
	CHECK_INT(out[1], ICMP4_TOS);
	CHECK_INT(out[8], ICMP_TTL);

	CHECK_INT(pkt_parse(&p, in, n), PKT_OK);
	CHECK_INT(icmp_build_port_unreach(&p, gw4, out, sizeof(out), &len), ICMP_SEND);
	CHECK_INT(len, 128);
	CHECK_MEM(out, v4unreach_head, 28);
	CHECK_MEM(out + 28, in, 100);
	check_sums(out, len);

	/* The buffer must hold it all. */
	CHECK_INT(icmp_build_too_big(&p, gw4, 68, out, 127, &len), ICMP_NO_ROOM);
	CHECK_INT(icmp_build_too_big(&p, gw4, 68, out, 128, &len), ICMP_SEND);
}

static void test_v6_ext(void)
{
	size_t n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1400), len;
	struct pkt p;

	CHECK_INT(build(n, 1300, &len), ICMP_SEND);
	CHECK_INT(len, ICMP6_MAX_LEN);
	CHECK_MEM(out, v6ext_out_head, 48);
	CHECK_MEM(out + 48, in, 1232);
	check_sums(out, len);
	CHECK_INT(out[7], ICMP_TTL);
	CHECK_INT((uint32_t)out[44] << 24 | out[45] << 16 | out[46] << 8 | out[47], 1300);

	/* An mtu below the IPv6 minimum is announced as 1280. */
	CHECK_INT(build(n, 1000, &len), ICMP_SEND);
	CHECK_INT((uint32_t)out[44] << 24 | out[45] << 16 | out[46] << 8 | out[47], 1280);
	check_sums(out, len);
	/* A 1280-byte packet never needs it. */
	n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1280);
	in[4] = (1240 >> 8); in[5] = 1240 & 0xff;
	CHECK_INT(build(n, 1000, &len), ICMP_NOT_OVERSIZE);
	in[5]++;
	n++;
	CHECK_INT(build(n, 1000, &len), ICMP_SEND);

	n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1400);
	CHECK_INT(pkt_parse(&p, in, n), PKT_OK);
	CHECK_INT(icmp_build_port_unreach(&p, gw6, out, sizeof(out), &len), ICMP_SEND);
	CHECK_INT(len, 1280);
	CHECK_MEM(out, v6unreach_head, 48);
	check_sums(out, len);
	CHECK_INT(icmp_build_too_big(&p, gw6, 1300, out, 1279, &len), ICMP_NO_ROOM);
}

static enum icmp_res check4(const uint8_t *src, const uint8_t *dst, uint8_t proto,
			    uint16_t frag, size_t total, unsigned mtu)
{
	struct pkt p;
	size_t n = mkpkt(v4small_hdr, sizeof(v4small_hdr), total);

	in[2] = (uint8_t)(total >> 8);
	in[3] = (uint8_t)total;
	in[6] = (uint8_t)(frag >> 8);
	in[7] = (uint8_t)frag;
	in[9] = proto;
	if (src)
		memcpy(in + 12, src, 4);
	if (dst)
		memcpy(in + 16, dst, 4);
	if (pkt_parse(&p, in, n) != PKT_OK)
		return (enum icmp_res)-1;
	return icmp_check(&p, mtu);
}

static void test_v4_never(void)
{
	static const uint8_t bad_src[][4] = {
		{ 0, 0, 0, 0 }, { 0, 1, 2, 3 }, { 127, 0, 0, 1 }, { 127, 255, 0, 9 },
		{ 224, 0, 0, 1 }, { 239, 1, 2, 3 }, { 240, 0, 0, 1 }, { 255, 255, 255, 255 },
		{ 169, 254, 7, 7 },
	};
	static const uint8_t good_src[][4] = {
		{ 198, 18, 3, 10 }, { 1, 0, 0, 1 }, { 126, 255, 255, 255 }, { 223, 255, 255, 254 },
		{ 169, 253, 1, 1 }, { 128, 0, 0, 1 },
	};
	static const uint8_t bad_dst[][4] = {
		{ 224, 0, 0, 5 }, { 239, 255, 255, 250 }, { 255, 255, 255, 255 },
	};
	CHECK_INT(check4(NULL, NULL, 17, 0x4000, 100, 68), ICMP_SEND);
	CHECK_INT(check4(NULL, NULL, 17, 0x4000, 100, 100), ICMP_NOT_OVERSIZE);
	CHECK_INT(check4(NULL, NULL, 17, 0x4000, 101, 100), ICMP_SEND);
	CHECK_INT(check4(NULL, NULL, 17, 0x4000, 68, 20), ICMP_NOT_OVERSIZE);
	CHECK_INT(check4(NULL, NULL, 17, 0x0000, 100, 68), ICMP_NO_DF);
	/* Later fragment (offset 185*8, MF); the first fragment is answered. */
	CHECK_INT(check4(NULL, NULL, 17, 0x60b9, 100, 68), ICMP_LATER_FRAGMENT);
	CHECK_INT(check4(NULL, NULL, 17, 0x6000, 100, 68), ICMP_SEND);
	for (size_t i = 0; i < sizeof(bad_src) / 4; i++)
		CHECK_INT(check4(bad_src[i], NULL, 17, 0x4000, 100, 68), ICMP_BAD_SOURCE);
	for (size_t i = 0; i < sizeof(good_src) / 4; i++)
		CHECK_INT(check4(good_src[i], NULL, 17, 0x4000, 100, 68), ICMP_SEND);
	for (size_t i = 0; i < sizeof(bad_dst) / 4; i++)
		CHECK_INT(check4(NULL, bad_dst[i], 17, 0x4000, 100, 68), ICMP_BAD_DEST);

	/* ICMP: errors and unknown types are never answered, queries are. */
	for (unsigned t = 0; t < 256; t++) {
		bool err = t == 3 || t == 4 || t == 5 || t == 11 || t == 12 || t > 18;

		struct pkt p;

		mkpkt(v4small_hdr, 20, 100);
		in[9] = 1;
		in[20] = (uint8_t)t;
		CHECK_INT(pkt_parse(&p, in, 100), PKT_OK);
		CHECK_INT(icmp_check(&p, 68), err ? ICMP_ABOUT_ERROR : ICMP_SEND);
	}
	/* An ICMP header cut to nothing: total length 20. */
	{
		struct pkt p;
		size_t len;

		mkpkt(v4small_hdr, 20, 20);
		in[2] = 0; in[3] = 20; in[9] = 1;
		CHECK_INT(pkt_parse(&p, in, 20), PKT_OK);
		CHECK_INT(icmp_may_answer(&p, true), ICMP_TRUNCATED);
		CHECK_INT(icmp_build_port_unreach(&p, gw4, out, sizeof(out), &len), ICMP_TRUNCATED);
		CHECK_INT(len, 0);
	}
}

static enum icmp_res check6(const uint8_t *src, const uint8_t *dst, bool pmtu)
{
	struct pkt p;
	size_t n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1400), len;

	if (src)
		memcpy(in + 8, src, 16);
	if (dst)
		memcpy(in + 24, dst, 16);
	if (pkt_parse(&p, in, n) != PKT_OK)
		return (enum icmp_res)-1;
	if (pmtu)
		return icmp_build_too_big(&p, gw6, 1300, out, sizeof(out), &len);
	return icmp_build_port_unreach(&p, gw6, out, sizeof(out), &len);
}

static void test_v6_never(void)
{
	static const uint8_t bad_src[][16] = {
		{ 0 },
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0xff, 0x02, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10 },
		{ 0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0xfe, 0xbf, 0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
	};
	static const uint8_t good_src[][16] = {
		{ 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2 },
		{ 0xfe, 0xc0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 },
		{ 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 },
	};
	static const uint8_t mcast_dst[16] = { 0xff, 0x0e, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 5 };
	struct pkt p;
	size_t n, len;

	for (size_t i = 0; i < sizeof(bad_src) / 16; i++) {
		CHECK_INT(check6(bad_src[i], NULL, true), ICMP_BAD_SOURCE);
		CHECK_INT(check6(bad_src[i], NULL, false), ICMP_BAD_SOURCE);
	}
	for (size_t i = 0; i < sizeof(good_src) / 16; i++)
		CHECK_INT(check6(good_src[i], NULL, true), ICMP_SEND);
	/* RFC 4443 2.4(e.3): Packet Too Big even to a multicast destination,
	 * but no port unreachable. */
	CHECK_INT(check6(NULL, mcast_dst, true), ICMP_SEND);
	CHECK_INT(check6(NULL, mcast_dst, false), ICMP_BAD_DEST);

	/* A later fragment: offset 1232, M set. */
	n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1400);
	in[58] = 0x04; in[59] = 0xd1;
	CHECK_INT(pkt_parse(&p, in, n), PKT_OK);
	CHECK_INT(icmp_check(&p, 1300), ICMP_LATER_FRAGMENT);
	CHECK_INT(icmp_build_too_big(&p, gw6, 1300, out, sizeof(out), &len), ICMP_LATER_FRAGMENT);
	CHECK_INT(len, 0);

	/* ICMPv6 behind the extension headers: errors (< 128) never answered. */
	for (unsigned t = 0; t < 256; t++) {
		n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1400);
		in[56] = 58;			/* fragment header's next header */
		in[64] = (uint8_t)t;
		CHECK_INT(pkt_parse(&p, in, n), PKT_OK);
		CHECK_INT(icmp_check(&p, 1300), t < 128 ? ICMP_ABOUT_ERROR : ICMP_SEND);
	}
	/* Not oversize for its mtu. */
	n = mkpkt(v6ext_hdr, sizeof(v6ext_hdr), 1400);
	CHECK_INT(pkt_parse(&p, in, n), PKT_OK);
	CHECK_INT(icmp_check(&p, 1400), ICMP_NOT_OVERSIZE);
	CHECK_INT(icmp_check(&p, 1399), ICMP_SEND);
	CHECK_STR(icmp_res_str(ICMP_LATER_FRAGMENT), "later fragment");
	CHECK_STR(icmp_res_str(ICMP_SEND), "send");
}

int main(void)
{
	test_v4_options();
	test_v4_small();
	test_v6_ext();
	test_v4_never();
	test_v6_never();
	return t_done("test_icmp");
}
