/* MSS rewrite (RFC 879, RFC 6691): walk the options once, then patch. */
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clamp/csum.h"
#include "clamp/mss.h"
#include "clamp/pkt.h"

#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCPOPT_EOL 0
#define TCPOPT_NOP 1
#define TCPOPT_MSS 2
#define TCPOLEN_MSS 4
/* At most ten 4-byte MSS options fit in 40 option bytes. */
#define MSS_MAX_OPTS 10

static uint16_t mss_load(const uint8_t *b)
{
	uint16_t v;

	memcpy(&v, b, 2);
	return v;
}

/* Rewrite one option's value and fix the checksum for it. At an odd offset
 * from the TCP header the value straddles two checksum words; its bytes then
 * count swapped in the sum, so the swapped values go into RFC 1624. */
static void mss_patch(uint8_t *th, size_t at, uint16_t target)
{
	uint8_t *v = th + at + 2;
	uint8_t nv[2] = { (uint8_t)(target >> 8), (uint8_t)target };
	uint16_t check = mss_load(th + 16), old, new_;

	if ((at & 1) == 0) {
		old = mss_load(v);
		new_ = mss_load(nv);
	} else {
		uint8_t ov[2] = { v[1], v[0] }, sv[2] = { nv[1], nv[0] };
		old = mss_load(ov);
		new_ = mss_load(sv);
	}
	check = csum_replace2(check, old, new_);
	memcpy(th + 16, &check, 2);
	v[0] = nv[0];
	v[1] = nv[1];
}

/* Insert an MSS option after the fixed header; the SYN has no payload, so
 * only the options (and bytes past iplen) move. Rare: the TCP checksum is
 * recomputed in full. */
static void mss_insert(uint8_t *buf, size_t len, const struct pkt *p, uint16_t target)
{
	uint8_t *th = buf + p->l4off;
	size_t l4len = p->l4len + TCPOLEN_MSS;
	uint16_t mss = p->family == AF_INET ? MSS_DEFAULT_V4 : MSS_DEFAULT_V6;
	uint16_t check;

	if (target < mss)
		mss = target;
	memmove(th + 24, th + 20, len - p->l4off - 20);
	th[20] = TCPOPT_MSS;
	th[21] = TCPOLEN_MSS;
	th[22] = (uint8_t)(mss >> 8);
	th[23] = (uint8_t)mss;
	th[12] = (uint8_t)(th[12] + 0x10);
	if (p->family == AF_INET) {
		uint16_t old = mss_load(buf + 2), new_;
		uint16_t tot = (uint16_t)(p->iplen + TCPOLEN_MSS);
		uint8_t nb[2] = { (uint8_t)(tot >> 8), (uint8_t)tot };

		new_ = mss_load(nb);
		check = csum_replace2(mss_load(buf + 10), old, new_);
		memcpy(buf + 2, nb, 2);
		memcpy(buf + 10, &check, 2);
	} else {
		size_t plen = p->iplen - 40 + TCPOLEN_MSS;

		buf[4] = (uint8_t)(plen >> 8);
		buf[5] = (uint8_t)plen;
	}
	th[16] = th[17] = 0;
	check = csum_l4(p->family, p->src, p->dst, IPPROTO_TCP, th, l4len);
	memcpy(th + 16, &check, 2);
}

/* The decision, read-only: the offsets of the MSS options in at[] (*n of
 * them), and the result mss_clamp() would have. */
static enum mss_res mss_decide(const uint8_t *buf, size_t len, size_t cap, const struct pkt *p,
			       uint16_t target, uint8_t at[MSS_MAX_OPTS], size_t *n)
{
	const uint8_t *th;
	size_t doff, i, lower = 0;

	*n = 0;
	if (p->proto != IPPROTO_TCP || p->later_frag)
		return MSS_SKIP;
	if (p->l4len < 20)
		return MSS_BAD;
	th = buf + p->l4off;
	if ((th[13] & (TCP_SYN | TCP_RST)) != TCP_SYN)
		return MSS_SKIP;
	doff = (size_t)(th[12] >> 4) * 4;
	if (doff < 20 || doff > p->l4len)
		return MSS_BAD;

	/* Validate everything before writing anything: a malformed option after
	 * the MSS must leave the packet untouched. */
	for (i = 20; i < doff;) {
		uint8_t kind = th[i], olen;

		if (kind == TCPOPT_EOL)
			break;
		if (kind == TCPOPT_NOP) {
			i++;
			continue;
		}
		if (i + 1 >= doff)
			return MSS_BAD;
		olen = th[i + 1];
		if (olen < 2 || olen > doff - i)
			return MSS_BAD;
		if (kind == TCPOPT_MSS) {
			if (olen != TCPOLEN_MSS)
				return MSS_BAD;
			if ((uint16_t)(th[i + 2] << 8 | th[i + 3]) > target)
				lower++;
			at[(*n)++] = (uint8_t)i;
		}
		i += olen;
	}
	if (lower)
		return MSS_LOWERED;
	if (*n || p->frag || p->l4len != doff || doff > 56 || cap < len || cap - len < TCPOLEN_MSS)
		return MSS_KEPT;
	return MSS_ADDED;
}

enum mss_res mss_check(const uint8_t *buf, size_t len, size_t cap, const struct pkt *p,
		       uint16_t target)
{
	uint8_t at[MSS_MAX_OPTS];
	size_t n;

	return mss_decide(buf, len, cap, p, target, at, &n);
}

enum mss_res mss_clamp(uint8_t *buf, size_t len, size_t cap, const struct pkt *p,
		       uint16_t target, size_t *newlen)
{
	uint8_t at[MSS_MAX_OPTS];
	size_t n;
	enum mss_res r = mss_decide(buf, len, cap, p, target, at, &n);
	uint8_t *th = buf + p->l4off;

	*newlen = len;
	if (r == MSS_LOWERED) {
		for (size_t i = 0; i < n; i++)
			if ((uint16_t)(th[at[i] + 2] << 8 | th[at[i] + 3]) > target)
				mss_patch(th, at[i], target);
	} else if (r == MSS_ADDED) {
		mss_insert(buf, len, p, target);
		*newlen = len + TCPOLEN_MSS;
	}
	return r;
}
