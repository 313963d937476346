/* Fuzz pkt_parse + the ICMP builders: whenever something is built, its
 * length, addresses, quote and checksums must be right. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clamp/icmp.h"
#include "clamp/pkt.h"

/* RFC 1071 the slow way, independent of clamp/csum.c. */
static uint32_t naive(const uint8_t *b, size_t n, uint32_t s)
{
	for (size_t i = 0; i < n; i += 2)
		s += (uint32_t)b[i] << 8 | (i + 1 < n ? b[i + 1] : 0);
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return s;
}

static void verify(const struct pkt *p, const uint8_t *src, const uint8_t *o, size_t len)
{
	size_t iph = p->family == AF_INET ? 20 : 40, alen = p->family == AF_INET ? 4 : 16;
	size_t max = p->family == AF_INET ? ICMP4_MAX_LEN : ICMP6_MAX_LEN;

	if (len < iph + 8 || len > max)
		abort();
	if (len - iph - 8 != (p->iplen < max - iph - 8 ? p->iplen : max - iph - 8))
		abort();
	if (memcmp(o + iph + 8, p->buf, len - iph - 8) != 0)
		abort();
	if (p->family == AF_INET) {
		if (naive(o, 20, 0) != 0xffff || naive(o + 20, len - 20, 0) != 0xffff ||
		    memcmp(o + 12, src, alen) || memcmp(o + 16, p->src, alen))
			abort();
	} else {
		uint8_t ph[40] = { 0 };

		memcpy(ph, o + 8, 32);
		ph[34] = (uint8_t)((len - 40) >> 8);
		ph[35] = (uint8_t)(len - 40);
		ph[39] = 58;
		if (naive(o + 40, len - 40, naive(ph, 40, 0)) != 0xffff ||
		    memcmp(o + 8, src, alen) || memcmp(o + 24, p->src, alen))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t src[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };
	static uint8_t out[ICMP6_MAX_LEN];
	struct pkt p;
	size_t len;
	unsigned mtu;

	/* The first two bytes choose the mtu, the rest is the packet. */
	if (size < 2)
		return 0;
	mtu = (unsigned)data[0] << 4 | data[1];
	data += 2;
	size -= 2;
	if (pkt_parse(&p, data, size) != PKT_OK)
		return 0;
	if (icmp_build_too_big(&p, src, mtu, out, sizeof(out), &len) == ICMP_SEND) {
		if (p.iplen <= mtu || (p.family == AF_INET && !p.df) || p.later_frag)
			abort();
		verify(&p, src, out, len);
	} else if (len != 0) {
		abort();
	}
	if (icmp_build_port_unreach(&p, src, out, sizeof(out), &len) == ICMP_SEND)
		verify(&p, src, out, len);
	return 0;
}
