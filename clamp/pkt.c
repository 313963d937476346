/* IPv4/IPv6 header walk with every read bounds-checked against the length the
 * IP header claims. */
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clamp/pkt.h"

static uint16_t pkt_get16(const uint8_t *b)
{
	return (uint16_t)(b[0] << 8 | b[1]);
}

static enum pkt_res pkt_parse_v4(struct pkt *p, const uint8_t *buf, size_t len)
{
	size_t ihl, tot;
	uint16_t frag;

	if (len < 20)
		return PKT_MALFORMED;
	ihl = (size_t)(buf[0] & 0x0f) * 4;
	tot = pkt_get16(buf + 2);
	if (ihl < 20 || tot < ihl || tot > len)
		return PKT_MALFORMED;
	frag = pkt_get16(buf + 6);
	p->iplen = tot;
	p->proto = buf[9];
	p->df = frag & 0x4000;
	p->frag = frag & 0x3fff;
	p->later_frag = frag & 0x1fff;
	p->l4off = ihl;
	p->src = buf + 12;
	p->dst = buf + 16;
	return PKT_OK;
}

/* Extension headers that only carry options are skipped. AH is not: a rewrite
 * behind it would break its integrity check, so it counts as "other". */
static enum pkt_res pkt_parse_v6(struct pkt *p, const uint8_t *buf, size_t len)
{
	size_t off = 40, end;
	uint8_t nh;

	if (len < 40)
		return PKT_MALFORMED;
	end = 40 + (size_t)pkt_get16(buf + 4);
	if (end > len)
		return PKT_MALFORMED;
	p->iplen = end;
	p->df = true;
	p->src = buf + 8;
	p->dst = buf + 24;
	nh = buf[6];
	for (;;) {
		if (nh == IPPROTO_HOPOPTS || nh == IPPROTO_ROUTING || nh == IPPROTO_DSTOPTS) {
			size_t hlen;

			if (end - off < 2)
				return PKT_MALFORMED;
			hlen = ((size_t)buf[off + 1] + 1) * 8;
			if (end - off < hlen)
				return PKT_MALFORMED;
			nh = buf[off];
			off += hlen;
		} else if (nh == IPPROTO_FRAGMENT) {
			if (end - off < 8)
				return PKT_MALFORMED;
			p->frag = true;
			nh = buf[off];
			if (pkt_get16(buf + off + 2) & 0xfff8)
				p->later_frag = true;
			off += 8;
			/* A later fragment's data is not a header of any kind. */
			if (p->later_frag)
				break;
		} else {
			break;
		}
	}
	p->proto = nh;
	p->l4off = off;
	return PKT_OK;
}

enum pkt_res pkt_parse(struct pkt *p, const uint8_t *buf, size_t len)
{
	enum pkt_res r;

	memset(p, 0, sizeof(*p));
	p->buf = buf;
	p->len = len;
	if (!buf || len < 1)
		return PKT_MALFORMED;
	switch (buf[0] >> 4) {
	case 4:
		p->family = AF_INET;
		r = pkt_parse_v4(p, buf, len);
		break;
	case 6:
		p->family = AF_INET6;
		r = pkt_parse_v6(p, buf, len);
		break;
	default:
		r = PKT_MALFORMED;
	}
	if (r == PKT_OK)
		p->l4len = p->iplen - p->l4off;
	return r;
}

int pkt_ports(const struct pkt *p, uint16_t *sport, uint16_t *dport)
{
	const uint8_t *l4;

	if (p->later_frag)
		return -1;
	/* The whole minimal header must be there, not just the ports. */
	if (p->proto == IPPROTO_TCP ? p->l4len < 20 :
	    p->proto == IPPROTO_UDP ? p->l4len < 8 : 1)
		return -1;
	l4 = p->buf + p->l4off;
	*sport = pkt_get16(l4);
	*dport = pkt_get16(l4 + 2);
	return 0;
}
