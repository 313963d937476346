/* The DTLS queue: the first datagram(s) of each DTLS flow between a client and
 * the headend. The decision goes back as a mark in the verdict; the rules of
 * conf/rules.c make the kernel carry the rest of the flow (issue 6). */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "clamp/dtls.h"
#include "clamp/nfq.h"
#include "clamp/pkt.h"
#include "conf/conf.h"
#include "daemon/log.h"
#include "daemon/qhandler.h"
#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/session.h"

struct dtlsq_state {
	struct ipaddr headend[CONF_MAX_HEADENDS];
	size_t nheadend;
	uint16_t dtls_port, advertised_port;
	struct marks marks;	/* where the decision's bits go */
	/* The proxy's tunnels, for the group of a ClientHello by its session ID
	 * or App-ID. NULL until the daemon hands the table over
	 * (dtlsq_state_set_sessions()); then `clients` alone decides. */
	struct session_table *sessions;
};

/* What one datagram comes to, before any counter is touched. */
enum dtlsq_kind {
	DTLSQ_OTHER,		/* not between a client and a headend DTLS port */
	DTLSQ_BAD_PACKET,	/* IP/UDP does not parse: accepted, counted malformed */
	DTLSQ_BAD_DTLS,		/* on a DTLS port, but no well-formed DTLS */
	DTLSQ_DECIDED,		/* dtls_decide() ran */
};

struct dtlsq_out {
	enum dtlsq_kind kind;
	enum dtls_dir dir;
	const struct group *group;
	bool by_session;	/* group found through the proxy's session table */
	struct dtls_verdict v;
};

struct dtlsq_state *dtlsq_state_new(const struct conf *c)
{
	struct dtlsq_state *s = calloc(1, sizeof(*s));

	if (!s)
		return NULL;
	s->nheadend = c->headend.naddr;
	memcpy(s->headend, c->headend.addr, sizeof(s->headend));
	s->dtls_port = c->headend.dtls_port;
	s->advertised_port = c->headend.advertised_dtls_port;
	s->marks = c->marks;
	return s;
}

void dtlsq_state_free(struct dtlsq_state *s)
{
	free(s);
}

/* Hook for the daemon once the proxy runs: the table outlives the workers. */
void dtlsq_state_set_sessions(struct dtlsq_state *s, struct session_table *t)
{
	s->sessions = t;
}

static bool dtlsq_is_headend(const struct dtlsq_state *s, uint8_t family, const uint8_t *addr)
{
	size_t alen = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < s->nheadend; i++)
		if (s->headend[i].family == family && memcmp(s->headend[i].addr, addr, alen) == 0)
			return true;
	return false;
}

/* interface.md: a proxied session's group first, then `clients`. The
 * session by the ClientHello's ID; a first datagram that is none (the
 * client's NAT gave it a new port, conntrack forgot the flow) by the
 * tunnels from the same client address, when they agree on one group. */
static const struct group *dtlsq_group(const struct dtlsq_state *s, const struct policy *pol,
				       const struct pkt *p, const struct dtls_info *info,
				       bool from_headend, bool *by_session)
{
	char name[SESSION_GROUP_MAX];
	const uint8_t *client = from_headend ? p->dst : p->src;
	const struct group *g;

	*by_session = false;
	if (s->sessions &&
	    (info && info->id_len ?
	     session_group_by_id(s->sessions, info->id, info->id_len, name, sizeof(name)) :
	     session_group_by_client(s->sessions, p->family, client, name, sizeof(name))) &&
	    (g = policy_by_name(pol, name))) {
		*by_session = true;
		return g;
	}
	return policy_by_clients(pol, p->family, client);
}

static void dtlsq_classify(const struct dtlsq_state *s, const struct policy *pol,
			   const uint8_t *buf, size_t len, struct dtlsq_out *o)
{
	struct pkt p;
	struct dtls_info info;
	uint16_t sport, dport;
	bool from_headend;
	enum dtls_parse res;

	memset(o, 0, sizeof(*o));
	if (pkt_parse(&p, buf, len) != PKT_OK || p.proto != 17 || p.later_frag ||
	    pkt_ports(&p, &sport, &dport) < 0 || p.l4len < 8) {
		o->kind = DTLSQ_BAD_PACKET;
		return;
	}
	from_headend = dtlsq_is_headend(s, p.family, p.src);
	if (!from_headend && !dtlsq_is_headend(s, p.family, p.dst))
		return;
	o->dir = dtls_direction(from_headend, sport, dport, s->advertised_port, s->dtls_port);
	if (o->dir == DTLS_DIR_NONE)
		return;
	res = dtls_parse(&info, p.buf + p.l4off + 8, p.l4len - 8);
	o->group = dtlsq_group(s, pol, &p, res == DTLS_CLIENT_HELLO ? &info : NULL, from_headend,
			       &o->by_session);
	/* Not DTLS, or DTLS we cannot read, on a DTLS port: counted malformed,
	 * and decided as any datagram of the flow, since the group's policy
	 * does not rest on the payload: a block group's client is blocked (one
	 * junk datagram first must not open the flow to DTLS), a relay's flow
	 * is normalized, and the kernel carries the rest. */
	o->kind = res == DTLS_NOT || res == DTLS_MALFORMED ? DTLSQ_BAD_DTLS : DTLSQ_DECIDED;
	o->v = dtls_decide(o->group, o->dir, s->dtls_port != s->advertised_port);
}

static void dtlsq_count(struct counters *ctr, const struct dtlsq_out *o)
{
	struct grp_counters *g = o->group ? &ctr->g[o->group->slot] : NULL;

	if (o->kind == DTLSQ_BAD_PACKET || o->kind == DTLSQ_BAD_DTLS)
		ctr_inc(&ctr->malformed);
	if (o->kind == DTLSQ_OTHER || o->kind == DTLSQ_BAD_PACKET)
		return;
	if (!g) {
		ctr_inc(&ctr->nogroup);
		return;
	}
	ctr_inc(&g->packets);
	if (o->v.counters & DTLS_CNT_RELAYED)
		ctr_inc(&g->dtls_relayed);
	if (o->v.counters & DTLS_CNT_BLOCKED)
		ctr_inc(&g->dtls_blocked);
	if (o->v.counters & DTLS_CNT_PORT_REWRITTEN)
		ctr_inc(&g->dtls_port_rewritten);
}

void dtlsq_packet(struct dtlsq_state *s, const struct policy *pol, struct counters *ctr,
		  const struct nfq_packet *pk, struct nfq_verdict *v)
{
	struct dtlsq_out o;

	dtlsq_classify(s, pol, pk->buf, pk->len, &o);
	dtlsq_count(ctr, &o);
	if (o.kind == DTLSQ_BAD_PACKET)
		log_limited(log_debug, "dtls: unparsable datagram of %zu bytes passed unchanged",
			    pk->len);
	else if (o.kind == DTLSQ_BAD_DTLS)
		log_limited(log_debug, "dtls: non-DTLS datagram of %zu bytes on a DTLS port: decided"
			    " as its flow's group has it", pk->len);
	/*
	 * A blocked client datagram is accepted with the BLOCKED mark, and the
	 * printed filter rules drop or reject it. Dropping it here would also
	 * drop its unconfirmed conntrack entry, so nothing could remember the
	 * decision; the filter rule records the flow (address and port) in a
	 * set on the way, which keeps its next datagrams out of this queue.
	 * A headend's datagram in a blocked flow carries no mark: drop it here.
	 */
	v->action = o.v.action != DTLS_ACCEPT && !(o.v.mark & DTLS_MARK_BLOCKED) ?
		NFQ_DROP : NFQ_ACCEPT;
	if (o.v.mark) {
		v->set_mark = true;
		v->mark = marks_dtls_apply(&s->marks, pk->mark, o.v.mark);
	}
}
