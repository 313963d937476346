#include "clamp/clamp.h"

#include <string.h>

#include "clamp/csum.h"
#include "clamp/mss.h"
#include "clamp/pkt.h"
#include "policy/policy.h"
#include "proxy/session.h"

/* Replace a partial (offload) TCP checksum with the full one. */
static void clamp_tcp_csum_full(uint8_t *buf, const struct pkt *p)
{
	uint8_t *th = buf + p->l4off;

	th[16] = th[17] = 0;
	uint16_t c = csum_l4(p->family, p->src, p->dst, 6, th, p->l4len);
	memcpy(th + 16, &c, 2);	/* csum.h values are in packet byte order */
}

void clamp_mss(const struct policy *pol, struct session_table *sessions, uint8_t *buf, size_t len,
	       size_t cap, bool csum_unready, struct clamp_mss_out *o)
{
	struct pkt p;

	*o = (struct clamp_mss_out){ .res = CLAMP_PASS, .mss = MSS_SKIP, .len = len };
	if (pkt_parse(&p, buf, len) != PKT_OK) {
		o->res = CLAMP_MALFORMED;
		o->mss = MSS_BAD;
		return;
	}
	const struct group *gs = session_pool_group(sessions, pol, p.family, p.src);
	const struct group *gd = session_pool_group(sessions, pol, p.family, p.dst);
	uint16_t ms = gs ? group_mss(gs, p.family) : 0;
	uint16_t md = gd ? group_mss(gd, p.family) : 0;
	const struct group *g = gs ? gs : gd;
	uint16_t target = ms;

	/* Between two pools the smaller MSS wins; mss = off (0) never wins. */
	if (md && (!ms || md < ms)) {
		g = gd;
		target = md;
	}
	o->group = g;
	if (!target)
		return;
	if (g->mode == MODE_OBSERVE) {
		o->observed = true;
		o->mss = mss_check(buf, len, cap, &p, target);
		if (o->mss == MSS_BAD)
			o->res = CLAMP_MALFORMED;
		return;
	}
	o->mss = mss_clamp(buf, len, cap, &p, target, &o->len);
	if (o->mss == MSS_LOWERED || o->mss == MSS_ADDED) {
		o->res = CLAMP_REWRITTEN;
		if (csum_unready && pkt_parse(&p, buf, o->len) == PKT_OK)
			clamp_tcp_csum_full(buf, &p);
	}
	else if (o->mss == MSS_BAD)
		o->res = CLAMP_MALFORMED;
}

const struct group *clamp_attribute(const struct policy *pol, const uint8_t *buf, size_t len,
				    int *malformed)
{
	struct pkt p;
	const struct group *g;

	*malformed = 0;
	if (pkt_parse(&p, buf, len) != PKT_OK) {
		*malformed = -1;
		return NULL;
	}
	if ((g = policy_by_pool(pol, p.family, p.dst)) || (g = policy_by_pool(pol, p.family, p.src)))
		return g;
	if ((g = policy_by_clients(pol, p.family, p.src)))
		return g;
	return policy_by_clients(pol, p.family, p.dst);
}
