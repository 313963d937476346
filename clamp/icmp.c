/* ICMP and ICMPv6 error packets about a parsed packet, into a caller buffer. */
#include "clamp/icmp.h"

#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

#include "clamp/csum.h"
#include "clamp/pkt.h"

/* IPv4 ICMP types Linux (icmp_pointers[]) treats as errors, and its last
 * known type: anything above is assumed an error too. */
#define ICMP4_LAST_TYPE 18

const char *icmp_res_str(enum icmp_res r)
{
	switch (r) {
	case ICMP_SEND: return "send";
	case ICMP_NOT_OVERSIZE: return "not oversize";
	case ICMP_NO_DF: return "no DF";
	case ICMP_LATER_FRAGMENT: return "later fragment";
	case ICMP_ABOUT_ERROR: return "about an ICMP error";
	case ICMP_BAD_SOURCE: return "bad source";
	case ICMP_BAD_DEST: return "bad destination";
	case ICMP_TRUNCATED: return "truncated ICMP";
	case ICMP_NO_ROOM: return "no room";
	}
	return "?";
}

static bool icmp4_is_error(uint8_t type)
{
	return type == 3 || type == 4 || type == 5 || type == 11 || type == 12 ||
	       type > ICMP4_LAST_TYPE;
}

static bool v4_bad_source(const uint8_t *a)
{
	return a[0] == 0 || a[0] == 127 || a[0] >= 224 || (a[0] == 169 && a[1] == 254);
}

static bool v4_bad_dest(const uint8_t *a)
{
	static const uint8_t bcast[4] = { 255, 255, 255, 255 };

	return (a[0] & 0xf0) == 224 || memcmp(a, bcast, 4) == 0;
}

static bool v6_bad_source(const uint8_t *a)
{
	static const uint8_t zero[15];

	if (memcmp(a, zero, 15) == 0 && (a[15] == 0 || a[15] == 1))
		return true;			/* ::, ::1 */
	return a[0] == 0xff || (a[0] == 0xfe && (a[1] & 0xc0) == 0x80);
}

enum icmp_res icmp_may_answer(const struct pkt *p, bool pmtu)
{
	const uint8_t *l4 = p->buf + p->l4off;

	if (p->later_frag)
		return ICMP_LATER_FRAGMENT;
	if (p->family == AF_INET) {
		if (p->proto == IPPROTO_ICMP) {
			if (p->l4len < 1)
				return ICMP_TRUNCATED;
			if (icmp4_is_error(l4[0]))
				return ICMP_ABOUT_ERROR;
		}
		if (v4_bad_source(p->src))
			return ICMP_BAD_SOURCE;
		if (v4_bad_dest(p->dst))
			return ICMP_BAD_DEST;
		return ICMP_SEND;
	}
	if (p->proto == IPPROTO_ICMPV6) {
		if (p->l4len < 1)
			return ICMP_TRUNCATED;
		if (l4[0] < 128)
			return ICMP_ABOUT_ERROR;
	}
	if (v6_bad_source(p->src))
		return ICMP_BAD_SOURCE;
	if (!pmtu && p->dst[0] == 0xff)
		return ICMP_BAD_DEST;
	return ICMP_SEND;
}

static unsigned effective_mtu(int family, unsigned mtu)
{
	if (family == AF_INET)
		return mtu < ICMP4_MIN_MTU ? ICMP4_MIN_MTU : mtu > 65535 ? 65535 : mtu;
	return mtu < ICMP6_MIN_MTU ? ICMP6_MIN_MTU : mtu;
}

enum icmp_res icmp_check(const struct pkt *p, unsigned mtu)
{
	if (p->iplen <= effective_mtu(p->family, mtu))
		return ICMP_NOT_OVERSIZE;
	if (p->family == AF_INET && !p->df)
		return ICMP_NO_DF;
	return icmp_may_answer(p, true);
}

static void put16(uint8_t *b, uint32_t v) { b[0] = (uint8_t)(v >> 8); b[1] = (uint8_t)v; }
static void put32(uint8_t *b, uint32_t v) { put16(b, v >> 16); put16(b + 2, v); }

/* IP header, ICMP header (type, code, second word) and the quote. */
static enum icmp_res build(const struct pkt *p, const uint8_t *src, uint8_t type,
			   uint8_t code, uint32_t word, uint8_t *out, size_t cap, size_t *outlen)
{
	bool v4 = p->family == AF_INET;
	size_t iph = v4 ? 20 : 40, max = v4 ? ICMP4_MAX_LEN : ICMP6_MAX_LEN;
	size_t quote = p->iplen < max - iph - 8 ? p->iplen : max - iph - 8;
	size_t len = iph + 8 + quote;
	uint8_t *icmp = out + iph;
	uint32_t sum;
	uint16_t ck;

	if (cap < len)
		return ICMP_NO_ROOM;
	memset(out, 0, iph + 8);
	if (v4) {
		out[0] = 0x45;
		out[1] = ICMP4_TOS;
		put16(out + 2, (uint32_t)len);
		out[8] = ICMP_TTL;
		out[9] = IPPROTO_ICMP;
		memcpy(out + 12, src, 4);
		memcpy(out + 16, p->src, 4);
		ck = csum_fold(csum_partial(out, 20, 0));
		memcpy(out + 10, &ck, 2);
	} else {
		out[0] = 0x60;
		put16(out + 4, (uint32_t)(len - 40));
		out[6] = IPPROTO_ICMPV6;
		out[7] = ICMP_TTL;
		memcpy(out + 8, src, 16);
		memcpy(out + 24, p->src, 16);
	}
	icmp[0] = type;
	icmp[1] = code;
	put32(icmp + 4, word);
	memcpy(icmp + 8, p->buf, quote);
	/* ICMPv6 covers the pseudo header (RFC 4443 2.3); ICMP does not. */
	sum = v4 ? 0 : csum_pseudo(AF_INET6, out + 8, out + 24, IPPROTO_ICMPV6,
				  (uint32_t)(len - 40));
	ck = csum_fold(csum_partial(icmp, len - iph, sum));
	memcpy(icmp + 2, &ck, 2);
	*outlen = len;
	return ICMP_SEND;
}

enum icmp_res icmp_build_too_big(const struct pkt *p, const uint8_t *src, unsigned mtu,
				 uint8_t *out, size_t cap, size_t *outlen)
{
	enum icmp_res r = icmp_check(p, mtu);

	*outlen = 0;
	if (r != ICMP_SEND)
		return r;
	mtu = effective_mtu(p->family, mtu);
	if (p->family == AF_INET)
		return build(p, src, 3, 4, mtu, out, cap, outlen);
	return build(p, src, 2, 0, mtu, out, cap, outlen);
}

enum icmp_res icmp_build_port_unreach(const struct pkt *p, const uint8_t *src,
				      uint8_t *out, size_t cap, size_t *outlen)
{
	enum icmp_res r = icmp_may_answer(p, false);

	*outlen = 0;
	if (r != ICMP_SEND)
		return r;
	if (p->family == AF_INET)
		return build(p, src, 3, 3, 0, out, cap, outlen);
	return build(p, src, 1, 4, 0, out, cap, outlen);
}
