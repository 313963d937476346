#include <stdlib.h>

#include "clamp/clamp.h"
#include "clamp/nfq.h"
#include "daemon/qhandler.h"
#include "daemon/stats.h"
#include "policy/policy.h"

struct pmtu_state {
	int unused;
};

struct pmtu_state *pmtu_state_new(const struct conf *c)
{
	(void)c;
	return calloc(1, sizeof(struct pmtu_state));
}

void pmtu_state_free(struct pmtu_state *s)
{
	free(s);
}

void pmtu_packet(struct pmtu_state *s, const struct policy *pol, struct counters *ctr,
		 const struct nfq_packet *pk, struct nfq_verdict *v)
{
	int bad;
	const struct group *g = clamp_attribute(pol, pk->buf, pk->len, &bad);

	(void)s;
	(void)v;
	if (bad)
		ctr_inc(&ctr->malformed);
	else if (g)
		ctr_inc(&ctr->g[g->slot].packets);
	else
		ctr_inc(&ctr->nogroup);
}
