#include <stdlib.h>

#include "clamp/clamp.h"
#include "clamp/nfq.h"
#include "daemon/qhandler.h"
#include "daemon/stats.h"
#include "policy/policy.h"

struct dtlsq_state {
	int unused;
};

struct dtlsq_state *dtlsq_state_new(const struct conf *c)
{
	(void)c;
	return calloc(1, sizeof(struct dtlsq_state));
}

void dtlsq_state_free(struct dtlsq_state *s)
{
	free(s);
}

void dtlsq_packet(struct dtlsq_state *s, const struct policy *pol, struct counters *ctr,
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
