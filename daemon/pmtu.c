/* The PMTU queue: oversize DF packets toward group pools get ICMP
 * fragmentation needed (RFC 1191) or Packet Too Big (RFC 8201) from the
 * gateway itself, because the headend's own answer may be filtered
 * (docs/problem.md, step 7). The rules queue only packets longer than a
 * group's mtu; clamp/icmp.c decides and builds, clamp/rawsend.c sends. */
#include <errno.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <time.h>

#include "clamp/icmp.h"
#include "clamp/nfq.h"
#include "clamp/pkt.h"
#include "conf/conf.h"
#include "clamp/ratelimit.h"
#include "clamp/rawsend.h"
#include "daemon/log.h"
#include "daemon/qhandler.h"
#include "daemon/stats.h"
#include "policy/policy.h"
#include "proxy/session.h"

/* One group's bucket, and the rate it was filled for. */
struct pmtu_bucket {
	struct ratelimit_bucket b;
	unsigned rate;
	bool ready;
};

struct pmtu_state {
	bool mss_clamped;	/* the mss queue runs: SYNs to the pools are clamped */
	struct rawsend *raw;
	struct ratelimit_hosts *hosts;	/* senders, by /24 and /64 */
	struct ratelimit_hosts *dests;	/* the pool addresses, by host */
	struct session_table *sessions;	/* shared pools: the tunnel's group */
	struct pmtu_bucket g[STATS_MAX_GROUPS];	/* by group slot: stable across reloads */
	uint8_t out[ICMP6_MAX_LEN];
};

static uint64_t pmtu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t pmtu_seed(void)
{
	uint64_t seed;

	/* A seed nobody outside can guess spreads senders over the host table;
	 * the clock is only the fallback (the group bucket still holds). */
	if (getrandom(&seed, sizeof(seed), GRND_NONBLOCK) != (ssize_t)sizeof(seed))
		seed = pmtu_now() ^ (uint64_t)(uintptr_t)&seed;
	return seed;
}

struct pmtu_state *pmtu_state_new(const struct conf *c)
{
	struct pmtu_state *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->mss_clamped = c->queues.mss.first >= 0;
	if (!(s->raw = rawsend_open()))
		goto err;
	s->hosts = ratelimit_hosts_new(RATELIMIT_HOST_SLOTS, RATELIMIT_HOST_RATE,
				       RATELIMIT_HOST_BURST, 3, 8, pmtu_seed());
	s->dests = ratelimit_hosts_new(RATELIMIT_HOST_SLOTS, RATELIMIT_DEST_RATE,
				       RATELIMIT_DEST_BURST, 4, 16, pmtu_seed());
	if (!s->hosts || !s->dests) {
		errno = ENOMEM;
		goto err;
	}
	return s;
err:
	err = errno;
	pmtu_state_free(s);
	errno = err;
	return NULL;
}

void pmtu_state_free(struct pmtu_state *s)
{
	if (!s)
		return;
	rawsend_close(s->raw);
	ratelimit_hosts_free(s->hosts);
	ratelimit_hosts_free(s->dests);
	free(s);
}

/* The group's bucket, refilled from scratch when it is new or a reload
 * changed pmtu_rate (burst = rate, as documented for group files). */
static struct ratelimit_bucket *pmtu_bucket(struct pmtu_state *s, const struct group *g,
					    uint64_t now)
{
	struct pmtu_bucket *b = &s->g[g->slot < STATS_MAX_GROUPS ? g->slot : STATS_MAX_GROUPS - 1];

	if (!b->ready || b->rate != g->pmtu_rate) {
		ratelimit_bucket_init(&b->b, g->pmtu_rate, g->pmtu_rate, now);
		b->rate = g->pmtu_rate;
		b->ready = true;
	}
	return &b->b;
}

/* Build and send the answer. false: nothing went out. */
static bool pmtu_answer(struct pmtu_state *s, const struct pkt *p, const struct group *g)
{
	/* The source stays unspecified: rawsend_send() lets the kernel's routing
	 * lookup toward the sender pick the gateway's own address, as for its own
	 * ICMP (a sender may filter others), in the one system call that sends. */
	static const uint8_t src[16];
	size_t len;
	enum icmp_res r;
	int err;

	r = icmp_build_too_big(p, src, g->mtu, s->out, sizeof(s->out), &len);
	if (r != ICMP_SEND) {
		log_limited(log_warnx, "pmtu: no ICMP built: %s", icmp_res_str(r));
		return false;
	}
	if ((err = rawsend_send(s->raw, p->family, s->out, len, p->src)) < 0) {
		errno = -err;
		log_limited(log_warn, "pmtu: sending ICMP to the sender of an oversize packet");
		return false;
	}
	return true;
}

void pmtu_state_set_sessions(struct pmtu_state *s, struct session_table *t)
{
	s->sessions = t;
}

void pmtu_packet(struct pmtu_state *s, const struct policy *pol, struct counters *ctr,
		 const struct nfq_packet *pk, struct nfq_verdict *v)
{
	struct pkt p;
	const struct group *g;
	struct grp_counters *gc;
	enum icmp_res r;
	struct ratelimit_bucket *b[3];
	uint64_t now;

	if (pkt_parse(&p, pk->buf, pk->len) != PKT_OK) {
		/* Includes GSO packets over 64 KiB (BIG TCP, IPv4 length 0). */
		if (!pk->gso) {
			ctr_inc(&ctr->malformed);
			log_limited(log_debug, "pmtu: malformed packet of %zu bytes passed unchanged",
				    pk->len);
		}
		return;
	}
	if (!(g = session_pool_group(s->sessions, pol, p.family, p.dst))) {
		ctr_inc(&ctr->nogroup);
		return;
	}
	gc = &ctr->g[g->slot];
	ctr_inc(&gc->packets);
	if (!g->pmtu)
		return;
	/* A GSO/GRO super-packet of TCP toward a group whose SYNs mtugate
	 * clamps: its segments fit by construction (their MSS is the clamp's),
	 * only the aggregate is long. Answering it would spend the group's ICMP
	 * budget on nothing and starve the senders that need an answer. */
	if (pk->gso && p.proto == IPPROTO_TCP && s->mss_clamped && g->mss_mode != MSS_OFF)
		return;
	r = icmp_check(&p, g->mtu);
	if (r == ICMP_TRUNCATED) {
		ctr_inc(&ctr->malformed);
		return;
	}
	/* Not oversize, no DF (the headend fragments it), or a never-send case
	 * (RFC 1812 4.3.2.7, RFC 4443 2.4(e)): the packet goes on unchanged. */
	if (r != ICMP_SEND)
		return;
	/* Observe: the packet goes on as without mtugate (the kernel may still
	 * drop it at the tunnel, with its own ICMP); no budget is spent. */
	if (g->mode == MODE_OBSERVE) {
		ctr_inc(&gc->would_pmtu_send);
		return;
	}
	/* Three budgets, all spent or none: the sender's (the host the ICMP
	 * goes to, by its /24 or /64: no network is flooded with our ICMP, and
	 * none drains the rest), the destination's (senders from many networks
	 * toward a few tunnels spend those tunnels' budget) and the group's. */
	now = pmtu_now();
	b[0] = ratelimit_hosts_bucket(s->hosts, p.family, p.src, now);
	b[1] = ratelimit_hosts_bucket(s->dests, p.family, p.dst, now);
	b[2] = pmtu_bucket(s, g, now);
	if (!ratelimit_take_all(b, 3, now)) {
		/* Suppressed: drop all the same. The headend cannot carry it
		 * either (it is over the tunnel MTU with DF set), and dropping
		 * here keeps the sender's retransmission as its next chance to
		 * get an ICMP once a token is back. */
		ctr_inc(&gc->pmtu_suppressed);
		if (!pk->gso)
			v->action = NFQ_DROP;
		return;
	}
	/* A GSO/GRO super-packet is longer than the wire packets it stands
	 * for, and NFQUEUE does not tell their size. It is answered all the
	 * same, since the MTU we announce is the tunnel's real one: a sender
	 * whose segments fit loses nothing (TCP lowers its MSS only when it is
	 * larger, and resends only segments over the new one), a sender whose
	 * segments do not learns the MTU. But it passes, because all of it may
	 * fit. Any other answered packet is dropped, even if the send failed. */
	if (!pk->gso)
		v->action = NFQ_DROP;
	if (pmtu_answer(s, &p, g))
		ctr_inc(&gc->pmtu_sent);
}
