/* The DTLS queue: the first datagram(s) of each DTLS flow between a client and
 * the headend. The decision goes back as a mark in the verdict; the rules of
 * conf/rules.c make the kernel carry the rest of the flow (issue 6). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "clamp/dtls.h"
#include "clamp/nfq.h"
#include "clamp/pkt.h"
#include "clamp/ratelimit.h"
#include "conf/conf.h"
#include "daemon/log.h"
#include "daemon/qhandler.h"
#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/session.h"

/* The lookup by client address takes the session table's lock, which the
 * proxy holds for its own work: a flood of datagrams from random ports
 * (each a new flow, so each queued) must not make every one of them pay
 * it. Only datagrams that parse as DTLS get the lookup, at most HOST_RATE
 * a second per source (/32, /64) and RATE per packet thread; the others
 * are decided by `clients`, counted in lookups_limited. A real client
 * needs one per new port its NAT gives it. */
#define DTLSQ_LOOKUP_RATE 2000
#define DTLSQ_LOOKUP_HOST_RATE 20
#define DTLSQ_LOOKUP_HOST_SLOTS 1024

#ifndef DTLSQ_NOW_NS
static uint64_t dtlsq_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}
#define DTLSQ_NOW_NS() dtlsq_now_ns()
#endif

struct dtlsq_state {
	struct ipaddr headend[CONF_MAX_HEADENDS];
	/* Where clients send to: a port forward's public address, before its DNAT. */
	struct ipaddr public[CONF_MAX_HEADENDS];
	size_t nheadend;
	uint16_t dtls_port, advertised_port;
	struct marks marks;	/* where the decision's bits go */
	/* The proxy's tunnels, for the group of a ClientHello by its session ID
	 * or App-ID. NULL until the daemon hands the table over
	 * (dtlsq_state_set_sessions()); then `clients` alone decides. */
	struct session_table *sessions;
	struct ratelimit_hosts *lookup_hosts;
	struct ratelimit_bucket lookup_all;
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
	bool limited;		/* the lookup by client address was refused */
	bool undecided;		/* no lookup for this one: only a block by `clients` holds */
	struct dtls_verdict v;
};

struct dtlsq_state *dtlsq_state_new(const struct conf *c)
{
	struct dtlsq_state *s = calloc(1, sizeof(*s));
	uint64_t seed, now = DTLSQ_NOW_NS();

	if (!s)
		return NULL;
	/* The seed spreads sources over the table; the clock is the fallback. */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = now ^ (uint64_t)(uintptr_t)s;
	s->lookup_hosts = ratelimit_hosts_new(DTLSQ_LOOKUP_HOST_SLOTS, DTLSQ_LOOKUP_HOST_RATE,
					      DTLSQ_LOOKUP_HOST_RATE, 4, 8, seed);
	if (!s->lookup_hosts) {
		free(s);
		errno = ENOMEM;
		return NULL;
	}
	ratelimit_bucket_init(&s->lookup_all, DTLSQ_LOOKUP_RATE, DTLSQ_LOOKUP_RATE, now);
	s->nheadend = c->headend.naddr;
	memcpy(s->headend, c->headend.addr, sizeof(s->headend));
	for (size_t i = 0; i < c->headend.naddr; i++)
		s->public[i] = *conf_headend_public(c, i);
	s->dtls_port = c->headend.dtls_port;
	s->advertised_port = c->headend.advertised_dtls_port;
	s->marks = c->marks;
	return s;
}

void dtlsq_state_free(struct dtlsq_state *s)
{
	if (s)
		ratelimit_hosts_free(s->lookup_hosts);
	free(s);
}

/* Hook for the daemon once the proxy runs: the table outlives the workers. */
void dtlsq_state_set_sessions(struct dtlsq_state *s, struct session_table *t)
{
	s->sessions = t;
}

static bool dtlsq_is_in(const struct ipaddr *list, size_t n, uint8_t family, const uint8_t *addr)
{
	size_t alen = family == AF_INET ? 4 : 16;

	for (size_t i = 0; i < n; i++)
		if (list[i].family == family && memcmp(list[i].addr, addr, alen) == 0)
			return true;
	return false;
}

/* interface.md: a proxied session's group first, then `clients`. The
 * session by the ClientHello's ID; a first datagram that is none (the
 * client's NAT gave it a new port, conntrack forgot the flow) by the
 * tunnels from the same client address, when they agree on one group;
 * that lookup only for DTLS, within the rate limits above. */
static const struct group *dtlsq_group(struct dtlsq_state *s, const struct policy *pol,
				       const struct pkt *p, enum dtls_parse res,
				       const struct dtls_info *info, bool from_headend,
				       uint16_t port, uint64_t now_ns, struct dtlsq_out *o)
{
	char name[SESSION_GROUP_MAX];
	const uint8_t *client = from_headend ? p->dst : p->src;
	const struct group *g;
	bool found = false;

	if (!s->sessions)
		;
	else if (res == DTLS_CLIENT_HELLO && info->id_len)
		found = session_dtls_hello(s->sessions, info->id, info->id_len, p->family, client, port,
					   name, sizeof(name));
	else if (res != DTLS_RECORD && res != DTLS_CLIENT_HELLO)
		o->undecided = true;
	else if (!ratelimit_hosts_allow(s->lookup_hosts, p->family, client, now_ns, &s->lookup_all)) {
		o->limited = true;
		o->undecided = res == DTLS_RECORD;
	} else
		found = session_group_by_client(s->sessions, p->family, client, name, sizeof(name));
	if (found && (g = policy_by_name(pol, name))) {
		o->by_session = true;
		return g;
	}
	return policy_by_clients(pol, p->family, client);
}

static void dtlsq_classify(struct dtlsq_state *s, const struct policy *pol,
			   const uint8_t *buf, size_t len, uint64_t now_ns, struct dtlsq_out *o)
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
	/* The headend answers from its own address; clients send to the public one. */
	from_headend = dtlsq_is_in(s->headend, s->nheadend, p.family, p.src);
	if (!from_headend && !dtlsq_is_in(s->public, s->nheadend, p.family, p.dst) &&
	    !dtlsq_is_in(s->headend, s->nheadend, p.family, p.dst))
		return;
	o->dir = dtls_direction(from_headend, sport, dport, s->advertised_port, s->dtls_port);
	if (o->dir == DTLS_DIR_NONE)
		return;
	res = dtls_parse(&info, p.buf + p.l4off + 8, p.l4len - 8);
	o->group = dtlsq_group(s, pol, &p, res, &info, from_headend, from_headend ? dport : sport,
			       now_ns, o);
	/* Not DTLS, or DTLS we cannot read, on a DTLS port: counted malformed,
	 * and decided as any datagram of the flow by `clients` (with the
	 * proxy's tunnels, a block only, below), since the group's policy does
	 * not rest on the payload: a block group's client is blocked (one junk
	 * datagram first must not open the flow to DTLS). */
	o->kind = res == DTLS_NOT || res == DTLS_MALFORMED ? DTLSQ_BAD_DTLS : DTLSQ_DECIDED;
	o->v = dtls_decide(o->group, o->dir, s->dtls_port != s->advertised_port);
	o->v = dtls_repair(o->v, o->group, o->dir, sport, s->dtls_port, s->advertised_port);
	/* Without the tunnels' word a block by `clients` holds (a handshake
	 * cannot start in a blocked flow); anything else passes unmarked, and
	 * the flow's next datagram is asked again. Junk reaching the headend
	 * opens nothing. */
	if (o->undecided && o->v.action == DTLS_ACCEPT && !(o->v.mark & DTLS_MARK_BLOCKED))
		o->v = (struct dtls_verdict){ .action = DTLS_ACCEPT };
	/* Observe: the same decision, counted, and the datagram passes. */
	o->v = dtls_observe(o->v, o->group);
}

static void dtlsq_count(struct counters *ctr, const struct dtlsq_out *o)
{
	struct grp_counters *g = o->group ? &ctr->g[o->group->slot] : NULL;

	if (o->kind == DTLSQ_BAD_PACKET || o->kind == DTLSQ_BAD_DTLS)
		ctr_inc(&ctr->malformed);
	if (o->limited)
		ctr_inc(&ctr->lookups_limited);
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
	if (o->v.counters & DTLS_CNT_REPAIRED)
		ctr_inc(&g->dtls_repaired);
	if (o->v.counters & DTLS_CNT_WOULD_BLOCK)
		ctr_inc(&g->would_dtls_block);
	if (o->v.counters & DTLS_CNT_WOULD_PORT_FIX)
		ctr_inc(&g->would_dtls_port_fix);
	if (o->v.counters & DTLS_CNT_WOULD_REPAIR)
		ctr_inc(&g->would_dtls_repair);
}

void dtlsq_packet(struct dtlsq_state *s, const struct policy *pol, struct counters *ctr,
		  const struct nfq_packet *pk, struct nfq_verdict *v)
{
	struct dtlsq_out o;

	dtlsq_classify(s, pol, pk->buf, pk->len, DTLSQ_NOW_NS(), &o);
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
