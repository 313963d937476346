/* Printers for the rules a configuration needs. The packet path only ever
 * sees what these rules queue, so each rule is as narrow as the decision it
 * feeds (docs/protocol.md, NFQUEUE). */
#include "conf/rules.h"

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/addr.h"
#include "conf/conf.h"
#include "conf/marks.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"

/* How long a blocked client stays blocked in the kernel after the daemon's
 * last decision about it: longer than openconnect's 12 s handshake with its
 * retransmissions, shorter than its 60 s retry, so each retry is decided
 * afresh (a reload takes effect) at the cost of one queued datagram. */
#define RULES_DTLS_REMEMBER 30
/* The headend's first DTLS answer goes to NFLOG group [queues] dtls (its
 * first number): its IP and UDP headers are all the daemon reads. */
#define RULES_NFLOG_SIZE 128
/* Flows, not addresses, are remembered (ipset hash:ip,port, "4"/"6" per
 * family): a relay user behind the NAT address of a blocked one is not
 * blocked with it. A full set only costs queued datagrams. */
#define RULES_SET_DROP "mtugate_dtls_drop"
#define RULES_SET_REJECT "mtugate_dtls_reject"
#define RULES_SET_MAX 65536

struct rules_out {
	const struct conf *c;
	const struct policy *p;
	int family;
	struct strbuf *out;
};

static const char *rules_prefix(const struct prefix *pf, char *buf, size_t len)
{
	return prefix_format(pf, buf, len);
}

static const char *rules_addr(const struct ipaddr *a, char *buf, size_t len)
{
	return addr_format(a, buf, len);
}

/* An address as NAT targets take it: IPv6 in brackets, for a port after it. */
static const char *rules_nat_addr(const struct ipaddr *a, char *buf, size_t len)
{
	char txt[64];

	addr_format(a, txt, sizeof(txt));
	snprintf(buf, len, a->family == AF_INET6 ? "[%s]" : "%s", txt);
	return buf;
}

/* rules_pmtu6_why: IPv6 UDP toward a pool is not queued for PMTU. With
 * conntrack in use (mtugate's DTLS rules, any stateful ruleset), the kernel
 * reassembles fragments before FORWARD: a fragmented datagram whose every
 * fragment fits the tunnel then looks like one oversize packet, and answering
 * it with Packet Too Big would black-hole it for good (the sender's fragments
 * already fit; it cannot go below 1280). Fragmented IPv6 is UDP in practice;
 * TCP never is, ICMPv6 seldom. */

static bool rules_qon(const struct qrange *q)
{
	return q->first >= 0;
}

static size_t rules_nheadends(const struct conf *c, int family)
{
	size_t i, n = 0;

	for (i = 0; i < c->headend.naddr; i++)
		n += c->headend.addr[i].family == family;
	return n;
}

/* DNAT to dtls_port is needed only where CSCuh61321 splits the ports. */
static bool rules_need_nat(const struct conf *c, int family)
{
	return rules_qon(&c->queues.dtls) && c->headend.dtls_port != c->headend.advertised_dtls_port &&
	       rules_nheadends(c, family) > 0;
}

static bool rules_need_proxy(const struct conf *c, int family);

/* A proxied login to a headend behind the admin's port forward keeps its
 * public address (the proxy dials the private one itself): an identity DNAT
 * ahead of the admin's own DNAT leaves the connection as it came. */
static bool rules_need_keep(const struct conf *c, int family)
{
	for (size_t i = 0; i < c->headend.naddr; i++)
		if (c->headend.addr[i].family == family && conf_headend_forwarded(c, i))
			return rules_need_proxy(c, family);
	return false;
}

/* MTUGATE_DNAT and MTUGATE_SNAT exist (and are hooked) for either job. */
static bool rules_need_natchains(const struct conf *c, int family)
{
	return rules_need_nat(c, family) || rules_need_keep(c, family);
}

static bool rules_need_dtls(const struct conf *c, int family)
{
	return rules_qon(&c->queues.dtls) && rules_nheadends(c, family) > 0;
}

static bool rules_need_proxy(const struct conf *c, int family)
{
	return c->proxy.enable && rules_nheadends(c, family) > 0;
}

static void rules_ipt_queue(struct strbuf *out, const struct qrange *q)
{
	if (q->first == q->last)
		strbuf_printf(out, " -j NFQUEUE --queue-num %d --queue-bypass\n", q->first);
	else
		strbuf_printf(out, " -j NFQUEUE --queue-balance %d:%d --queue-bypass\n", q->first, q->last);
}

/*
 * A TCP connection whose SYN the clamp queued carries the DTLS tag with no
 * flag in its connection mark (DTLS marks always carry one), and the PMTU
 * rules let it pass: its segments fit by construction, and a GSO/GRO
 * super-packet of it (up to 64 KiB, all a length match sees) would otherwise
 * make a queue round trip each, which daemon/pmtu.c then passes unanswered
 * (bench forward_bulk: thousands a second per stream). Set before the SYN is
 * queued: a SYN the queue bypasses (no daemon, overflow) is marked all the
 * same, and its connection then gets no Path MTU answer either. Not in
 * observe mode: its SYNs keep their MSS, and the PMTU path counts what it
 * would answer.
 */
static bool rules_clamp_marks(const struct conf *c, const struct group *g)
{
	return rules_qon(&c->queues.mss) && rules_qon(&c->queues.pmtu) && g->mss_mode != MSS_OFF &&
	       g->mode == MODE_ENFORCE && g->pmtu && g->mtu < 65535;
}

static bool rules_any_clamp_marks(const struct conf *c, const struct policy *p)
{
	for (size_t i = 0; i < policy_count(p); i++)
		if (rules_clamp_marks(c, policy_group(p, i)))
			return true;
	return false;
}

static void rules_ipt_mss(const struct rules_out *r)
{
	static const char *const dir[] = { "-s", "-d" };
	char buf[64];
	size_t i, k, d;

	if (!rules_qon(&r->c->queues.mss))
		return;
	strbuf_printf(r->out, "# MSS clamp: SYN and SYN-ACK (never RST) to or from each pool\n");
	for (i = 0; i < policy_count(r->p); i++) {
		const struct group *g = policy_group(r->p, i);

		if (g->mss_mode == MSS_OFF)
			continue;
		for (k = 0; k < g->npools; k++) {
			if (g->pools[k].family != r->family)
				continue;
			for (d = 0; d < 2; d++) {
				if (rules_clamp_marks(r->c, g))
					strbuf_printf(r->out, "-A MTUGATE_MSS %s %s -p tcp --tcp-flags SYN,RST SYN"
						      " -m comment --comment \"%s\" -j CONNMARK --set-xmark 0x%x/0x%x\n",
						      dir[d], rules_prefix(&g->pools[k], buf, sizeof(buf)), g->name,
						      r->c->marks.tag, marks_dtls_mask(&r->c->marks));
				strbuf_printf(r->out, "-A MTUGATE_MSS %s %s -p tcp --tcp-flags SYN,RST SYN"
					      " -m comment --comment \"%s\"", dir[d],
					      rules_prefix(&g->pools[k], buf, sizeof(buf)), g->name);
				rules_ipt_queue(r->out, &r->c->queues.mss);
			}
		}
	}
}

/* Whether the PMTU rules of this family queue anything: pools of groups with
 * pmtu on and an mtu below 65535 (IPv6: 1280 at least, RFC 8201). */
static bool rules_ipt_pmtu_any(const struct rules_out *r)
{
	if (!rules_qon(&r->c->queues.pmtu))
		return false;
	for (size_t i = 0; i < policy_count(r->p); i++) {
		const struct group *g = policy_group(r->p, i);

		for (size_t k = 0; g->pmtu && g->mtu < 65535 && k < g->npools; k++)
			if (g->pools[k].family == r->family && (r->family == AF_INET || g->mtu >= 1280))
				return true;
	}
	return false;
}

static void rules_ipt_pmtu(const struct rules_out *r)
{
	char buf[64];
	size_t i, k;

	if (!rules_qon(&r->c->queues.pmtu))
		return;
	strbuf_printf(r->out, "# Path MTU: packets toward a pool larger than the group's mtu%s\n",
		      r->family == AF_INET ? " (DF set)" : "");
	if (rules_any_clamp_marks(r->c, r->p))
		strbuf_printf(r->out, "-A MTUGATE_PMTU -p tcp -m connmark --mark 0x%x/0x%x -j RETURN\n",
			      r->c->marks.tag, marks_dtls_mask(&r->c->marks));
	for (i = 0; i < policy_count(r->p); i++) {
		const struct group *g = policy_group(r->p, i);

		if (!g->pmtu || g->mtu >= 65535)
			continue;
		for (k = 0; k < g->npools; k++) {
			if (g->pools[k].family != r->family)
				continue;
			/* RFC 8201: no IPv6 link is smaller than 1280. */
			if (r->family == AF_INET6 && g->mtu < 1280) {
				strbuf_printf(r->out, "# %s: mtu %u is below the IPv6 minimum 1280: no rule\n",
					      g->name, g->mtu);
				continue;
			}
			strbuf_printf(r->out, "-A MTUGATE_PMTU -d %s -m length --length %u:65535",
				      rules_prefix(&g->pools[k], buf, sizeof(buf)), g->mtu + 1);
			/* Only DF packets get frag-needed (RFC 1191); the others the
			 * headend fragments, so they need no decision. IPv6: no UDP,
			 * see rules_pmtu6_why. */
			if (r->family == AF_INET)
				strbuf_printf(r->out, " -m u32 --u32 \"4&0x4000=0x4000\"");
			else
				strbuf_printf(r->out, " ! -p udp");
			strbuf_printf(r->out, " -m comment --comment \"%s\"", g->name);
			rules_ipt_queue(r->out, &r->c->queues.pmtu);
		}
	}
}

static void rules_ports(struct strbuf *out, const struct conf *c, const char *single,
			const char *multi)
{
	if (c->headend.dtls_port == c->headend.advertised_dtls_port)
		strbuf_printf(out, " %s %u", single, c->headend.dtls_port);
	else
		strbuf_printf(out, " -m multiport %s %u,%u", multi, c->headend.advertised_dtls_port,
			      c->headend.dtls_port);
}

static void rules_ipt_dtls(const struct rules_out *r)
{
	const struct marks *mk = &r->c->marks;
	const struct conf *c = r->c;
	const char fam = r->family == AF_INET6 ? '6' : '4';
	char buf[64];
	size_t i;

	if (!rules_need_dtls(c, r->family))
		return;
	/* A UDP flow stays NEW until the headend answers (CSCuh61321: never), so
	 * the decision kept in the connection mark ends the queueing. */
	strbuf_printf(r->out, "# DTLS: the first datagrams of a flow, until the daemon's mark is on"
		      " the connection\n");
	for (i = 0; i < c->headend.naddr; i++) {
		char pub[64];
		const char *h;

		if (c->headend.addr[i].family != r->family)
			continue;
		h = rules_addr(&c->headend.addr[i], buf, sizeof(buf));
		/* Before nat PREROUTING: a port forward's flows still show its public address. */
		rules_addr(conf_headend_public(c, i), pub, sizeof(pub));
		strbuf_printf(r->out, "-A MTUGATE_DTLS -d %s -p udp", pub);
		rules_ports(r->out, c, "--dport", "--dports");
		strbuf_printf(r->out, " -m conntrack --ctstate NEW -m connmark --mark 0x0/0x%x -j MTUGATE_DTLS_NEW\n",
			      marks_dtls_mask(mk));
		strbuf_printf(r->out, "-A MTUGATE_DTLS -s %s -p udp", h);
		rules_ports(r->out, c, "--sport", "--sports");
		strbuf_printf(r->out, " -m conntrack --ctstate NEW -m connmark --mark 0x0/0x%x", marks_dtls_mask(mk));
		rules_ipt_queue(r->out, &c->queues.dtls);
	}
	/* A blocked flow cannot keep its mark: dropping its first datagram
	 * drops the unconfirmed conntrack entry too. MTUGATE_FILTER remembers
	 * the flow in an ipset instead, and its next datagrams are blocked
	 * here without a round trip to the daemon. */
	strbuf_printf(r->out, "# A flow (client address and port) blocked in the last %d s (ipsets"
		      " from rules --ipset, filled by MTUGATE_FILTER) is blocked again in the kernel\n",
		      RULES_DTLS_REMEMBER);
	strbuf_printf(r->out, "-A MTUGATE_DTLS_NEW -m set --match-set %s%c src,src"
		      " -j MARK --set-xmark 0x%x/0x%x\n", RULES_SET_DROP, fam,
		      mk->tag | mk->blocked, marks_dtls_mask(mk));
	strbuf_printf(r->out, "-A MTUGATE_DTLS_NEW -m mark --mark 0x0/0x%x -m set --match-set %s%c"
		      " src,src -j MARK --set-xmark 0x%x/0x%x\n", mk->tag_mask, RULES_SET_REJECT, fam,
		      mk->tag | mk->blocked | mk->reject, marks_dtls_mask(mk));
	strbuf_printf(r->out, "-A MTUGATE_DTLS_NEW -m mark --mark 0x0/0x%x", mk->tag_mask);
	rules_ipt_queue(r->out, &c->queues.dtls);
}

/*
 * dtls = block. The daemon accepts a blocked datagram with the BLOCKED mark
 * rather than dropping it, so that this rule sees it: it records the flow
 * (ipset hash:ip,port, src,src) and drops it, or rejects it with ICMP port
 * unreachable so that the client gives up DTLS at once (lab-notes: 0.7 s
 * instead of a 12 s handshake timeout). REJECT exists in the filter table
 * only, hence this chain, entered from MTUGATE_FORWARD (filter, inserted
 * first in FORWARD) by packets with mtugate's tag only, so that a stateful
 * ruleset's accepts for the VPN ports come after it. Only the
 * daemon's own decisions (DECIDED) renew an entry: a client is asked about
 * again RULES_DTLS_REMEMBER seconds after its last decision, which bounds
 * both the queue load (one datagram per flow per period) and the time a
 * reload takes to unblock it. A full set (RULES_SET_MAX flows) adds
 * nothing: a flow not remembered costs one more queued datagram, nothing
 * else.
 */
static void rules_ipt_filter(const struct rules_out *r)
{
	const struct marks *mk = &r->c->marks;
	const char *rej = r->family == AF_INET6 ? "icmp6-port-unreachable" : "icmp-port-unreachable";
	const unsigned m = mk->tag | mk->blocked, rm = m | mk->reject;
	const unsigned mask = mk->tag_mask | mk->blocked | mk->reject;
	const char fam = r->family == AF_INET6 ? '6' : '4';

	if (!rules_need_dtls(r->c, r->family))
		return;
	strbuf_printf(r->out, "# dtls = block: remember the flow for %d s, then drop or reject"
		      " (ICMP port unreachable)\n", RULES_DTLS_REMEMBER);
	strbuf_printf(r->out, "-A MTUGATE_FILTER -m mark --mark 0x%x/0x%x -j SET --add-set %s%c src,src"
		      " --exist\n", m | mk->decided, mask | mk->decided, RULES_SET_DROP, fam);
	strbuf_printf(r->out, "-A MTUGATE_FILTER -m mark --mark 0x%x/0x%x -j SET --add-set %s%c src,src"
		      " --exist\n", rm | mk->decided, mask | mk->decided, RULES_SET_REJECT, fam);
	strbuf_printf(r->out, "-A MTUGATE_FILTER -m mark --mark 0x%x/0x%x -j DROP\n", m, mask);
	strbuf_printf(r->out, "-A MTUGATE_FILTER -m mark --mark 0x%x/0x%x -j REJECT --reject-with %s\n",
		      rm, mask, rej);
}

int rules_ipset(const struct conf *c, struct strbuf *out)
{
	static const char *const sets[] = { RULES_SET_DROP, RULES_SET_REJECT };
	static const int fams[] = { AF_INET, AF_INET6 };

	for (size_t f = 0; f < 2; f++) {
		if (!rules_need_dtls(c, fams[f]))
			continue;
		for (size_t l = 0; l < 2; l++)
			strbuf_printf(out, "create %s%c hash:ip,port family inet%s timeout %d maxelem %d\n",
				      sets[l], f ? '6' : '4', f ? "6" : "", RULES_DTLS_REMEMBER,
				      RULES_SET_MAX);
	}
	return out->oom ? -ENOMEM : 0;
}

static void rules_ipt_proxy(const struct rules_out *r)
{
	const struct marks *mk = &r->c->marks;
	const struct conf *c = r->c;
	char buf[64];
	size_t i;

	if (!rules_need_proxy(c, r->family))
		return;
	strbuf_printf(r->out, "# TLS proxy intake: direct connections to the listener dropped, the proxy's"
		      " own sockets, then TPROXY\n");
	/* What TPROXY diverts keeps the headend's address: a packet to the listener's
	 * port on a local address came directly, and would have the proxy connect
	 * to itself. The loopback listener already keeps other hosts out: this
	 * drop stays, in depth (an old wildcard listener, a DNAT to loopback).
	 * Before the socket match, which takes the loopback listener (it skips
	 * only wildcard ones) for a packet to 127.0.0.1:listen_port. */
	strbuf_printf(r->out, "-A MTUGATE_PROXY -p tcp --dport %u -m addrtype --dst-type LOCAL -j DROP\n",
		      c->proxy.listen_port);
	strbuf_printf(r->out, "-A MTUGATE_PROXY -p tcp -m socket --transparent -j MARK --set-xmark 0x%x/0x%x\n",
		      mk->proxy, mk->proxy);
	strbuf_printf(r->out, "-A MTUGATE_PROXY -p tcp -m socket --transparent -j RETURN\n");
	for (i = 0; i < policy_count(r->p); i++) {
		const struct group *g = policy_group(r->p, i);
		size_t k;

		if (!g->proxy_bypass)
			continue;
		for (k = 0; k < g->nclients; k++)
			if (g->clients[k].family == r->family)
				strbuf_printf(r->out, "-A MTUGATE_PROXY -s %s -m comment --comment \"%s: proxy = no\""
					      " -j RETURN\n", rules_prefix(&g->clients[k], buf, sizeof(buf)),
					      g->name);
	}
	for (i = 0; i < c->headend.naddr; i++) {
		if (c->headend.addr[i].family != r->family)
			continue;
		strbuf_printf(r->out, "-A MTUGATE_PROXY -d %s -p tcp --dport %u -j TPROXY --on-ip %s"
			      " --on-port %u --tproxy-mark 0x%x/0x%x\n",
			      rules_addr(conf_headend_public(c, i), buf, sizeof(buf)), c->headend.tls_port,
			      r->family == AF_INET6 ? RULES_PROXY_ON6 : RULES_PROXY_ON4,
			      c->proxy.listen_port, mk->proxy, mk->proxy);
	}
}

/* The mirror of the DNAT: the headend speaks first in a flow conntrack does
 * not know (flushed, a reboot, a failover whose sync left UDP out), and the
 * daemon marks that datagram (dtls_repair()). Its source becomes the
 * advertised port, so the client's connected socket takes it and its next
 * datagrams are this entry's replies, DNATed back by conntrack. */
static void rules_ipt_snat(const struct rules_out *r)
{
	const struct marks *mk = &r->c->marks;
	const struct conf *c = r->c;
	char buf[64], pub[64];
	size_t i;

	strbuf_printf(r->out, "# A flow conntrack lost, restarted by the headend from port %u: its"
		      " source becomes port %u again\n", c->headend.dtls_port,
		      c->headend.advertised_dtls_port);
	for (i = 0; i < c->headend.naddr; i++) {
		if (c->headend.addr[i].family != r->family)
			continue;
		strbuf_printf(r->out, "-A MTUGATE_SNAT -s %s -p udp --sport %u -m mark --mark 0x%x/0x%x"
			      " -j SNAT --to-source %s:%u\n",
			      rules_addr(&c->headend.addr[i], buf, sizeof(buf)), c->headend.dtls_port,
			      mk->tag | mk->normalize, mk->tag_mask | mk->normalize,
			      rules_nat_addr(conf_headend_public(c, i), pub, sizeof(pub)),
			      c->headend.advertised_dtls_port);
	}
}

/* The proxy's identity DNAT (rules_need_keep()): the TPROXY mark says the
 * login is the proxy's, and a DNAT to its own destination ends nat
 * PREROUTING for it in iptables and, once bound, in every nft table too. */
static void rules_ipt_keep(const struct rules_out *r)
{
	const struct conf *c = r->c;
	char pub[64];

	if (!rules_need_keep(c, r->family))
		return;
	strbuf_printf(r->out, "# Port forward: a login the proxy took keeps the public address (the"
		      " proxy dials the headend's own); your DNAT still takes everything else\n");
	for (size_t i = 0; i < c->headend.naddr; i++) {
		if (c->headend.addr[i].family != r->family || !conf_headend_forwarded(c, i))
			continue;
		rules_addr(conf_headend_public(c, i), pub, sizeof(pub));
		strbuf_printf(r->out, "-A MTUGATE_DNAT -d %s -p tcp --dport %u -m mark --mark 0x%x/0x%x"
			      " -j DNAT --to-destination %s\n", pub, c->headend.tls_port, c->marks.proxy,
			      c->marks.proxy, pub);
	}
}

static void rules_ipt_nat(const struct rules_out *r, int hooks)
{
	const struct marks *mk = &r->c->marks;
	const struct conf *c = r->c;
	char buf[64], to[64];
	size_t i;

	if (!rules_need_natchains(c, r->family))
		return;
	strbuf_printf(r->out, "*nat\n:MTUGATE_DNAT - [0:0]\n:MTUGATE_SNAT - [0:0]\n-F MTUGATE_DNAT\n"
		      "-F MTUGATE_SNAT\n");
	rules_ipt_keep(r);
	if (rules_need_nat(c, r->family)) {
		strbuf_printf(r->out, "# CSCuh61321: DTLS to the advertised port reaches the port the headend"
			      " listens on; conntrack maps the replies back\n");
		/* DNAT comes before the filter table: a stateful ruleset sees the real port. */
		strbuf_printf(r->out, "# A default-drop FORWARD chain sees these flows with destination port %u:"
			      " accept udp to %u (or -m conntrack --ctorigdstport %u)\n", c->headend.dtls_port,
			      c->headend.dtls_port, c->headend.advertised_dtls_port);
		/* Inserted before a port forward's own DNAT, and to the same private
		 * address: only the flows the daemon marked change their port. */
		for (i = 0; i < c->headend.naddr; i++) {
			if (c->headend.addr[i].family != r->family)
				continue;
			strbuf_printf(r->out, "-A MTUGATE_DNAT -d %s -p udp --dport %u -m mark --mark 0x%x/0x%x"
				      " -j DNAT --to-destination %s:%u\n",
				      rules_addr(conf_headend_public(c, i), buf, sizeof(buf)),
				      c->headend.advertised_dtls_port, mk->tag | mk->normalize,
				      mk->tag_mask | mk->normalize,
				      rules_nat_addr(&c->headend.addr[i], to, sizeof(to)), c->headend.dtls_port);
		}
		rules_ipt_snat(r);
	}
	if (hooks)
		strbuf_printf(r->out, "-I PREROUTING -j MTUGATE_DNAT\n-I POSTROUTING -j MTUGATE_SNAT\n");
	strbuf_printf(r->out, "COMMIT\n");
}

/* Which mark bits the rules below use: what an administrator checks against
 * the marks of their own ruleset ([queues] mark_mask moves them). */
static void rules_marks_comment(const struct conf *c, struct strbuf *out)
{
	const struct marks *mk = &c->marks;

	strbuf_printf(out, "# Mark bits: NF_REPEAT 0x%x, proxy 0x%x, DTLS decisions 0x%x (%s)\n",
		      mk->done, mk->proxy, marks_dtls_mask(mk),
		      c->queues.mark_mask ? "[queues] mark_mask" : "the default; [queues] mark_mask moves them");
}

/* A flow whose DTLS decision is final: its connection mark carries the tag
 * and the decided flag. Every later packet of it leaves mtugate's chains at
 * their first rule (bench-dtls: the rule walks were most of what kept relayed
 * DTLS below plain kernel DNAT). A packet back from the queue (done bit) is
 * not one of them: the resume guard after this rule clears its bit. A bit
 * that must also be set before the rules stop looking at a flow joins here. */
static void rules_settled(const struct marks *mk, uint32_t *mark, uint32_t *mask)
{
	*mark = mk->tag | mk->decided;
	*mask = mk->tag_mask | mk->decided;
}

/* With the proxy, the headend's first answer in each DTLS flow, once, is
 * copied to the daemon (NFLOG: a queued packet would reach the client after
 * the rest of its flight): the proxied tunnel's DTLS is established. Before
 * the settled flows leave: the answer's flow is one. */
static void rules_ipt_answer(const struct rules_out *r)
{
	const struct conf *c = r->c;
	char buf[64];

	if (!rules_need_dtls(c, r->family) || !c->proxy.enable)
		return;
	strbuf_printf(r->out, "# The headend's first DTLS answer in a flow, copied (NFLOG): the"
		      " session's DTLS is established\n");
	for (size_t i = 0; i < c->headend.naddr; i++) {
		if (c->headend.addr[i].family != r->family)
			continue;
		strbuf_printf(r->out, "-A MTUGATE_PREROUTING -s %s -p udp",
			      rules_addr(&c->headend.addr[i], buf, sizeof(buf)));
		rules_ports(r->out, c, "--sport", "--sports");
		/* connbytes first: the flow's later answers fail there, at once. */
		strbuf_printf(r->out, " -m connbytes --connbytes 1:1 --connbytes-dir reply"
			      " --connbytes-mode packets -m conntrack --ctstate ESTABLISHED --ctdir REPLY"
			      " -j NFLOG --nflog-group %d --nflog-size %d\n", c->queues.dtls.first,
			      RULES_NFLOG_SIZE);
	}
}

static void rules_ipt_settled(const struct rules_out *r, const char *chain)
{
	uint32_t m, mask;

	if (!rules_need_dtls(r->c, r->family))
		return;
	strbuf_printf(r->out, "# A decided DTLS flow's later packets: nothing more to do here\n");
	rules_settled(&r->c->marks, &m, &mask);
	/* UDP first: other traffic (TCP, most of it) fails at that native test
	 * and skips the connmark match, which iptables-nft runs through the
	 * xtables compatibility layer (bench forward_bulk). */
	strbuf_printf(r->out, "-A %s -p udp -m mark --mark 0x0/0x%x -m connmark --mark 0x%x/0x%x -j RETURN\n",
		      chain, r->c->marks.done, m, mask);
}

/* mangle, then filter. Both have a MTUGATE_RESUME: chains belong to a table. */
static const char *const rules_chains_mangle[] = {
	"MTUGATE_PREROUTING", "MTUGATE_RESUME", "MTUGATE_PROXY", "MTUGATE_DTLS", "MTUGATE_DTLS_NEW",
	"MTUGATE_MSS", NULL,
};
static const char *const rules_chains_filter[] = {
	"MTUGATE_FORWARD", "MTUGATE_RESUME", "MTUGATE_PMTU", NULL,
};

/* Declare and flush: declaring a chain flushes it under --noflush with
 * legacy iptables only. */
static void rules_ipt_chains(struct strbuf *out, const char *table, const char *const *chains)
{
	const char *const *ch;

	strbuf_printf(out, "*%s\n", table);
	for (ch = chains; *ch; ch++)
		strbuf_printf(out, ":%s - [0:0]\n", *ch);
	for (ch = chains; *ch; ch++)
		strbuf_printf(out, "-F %s\n", *ch);
}

/* mtugated's accept re-runs the hook (NF_REPEAT) with the done mark: such a
 * packet skips our chains, the bit is cleared, and the rules after our jump
 * see it (a goto returns past the jump that led here). */
static void rules_ipt_resume(struct strbuf *out, const struct marks *mk, const char *chain)
{
	strbuf_printf(out, "# Decided packets come back (NF_REPEAT, mark 0x%x): clear it, and on to the next rules\n"
		      "-A MTUGATE_RESUME -j MARK --set-xmark 0x0/0x%x\n", mk->done, mk->done);
	strbuf_printf(out, "-A %s -m mark --mark 0x%x/0x%x -g MTUGATE_RESUME\n", chain, mk->done, mk->done);
}

/*
 * Everything mtugate does in FORWARD, in the filter table: one hook in all
 * (mangle FORWARD would be a second, and each hook iptables-nft runs costs a
 * jump and a counter per packet: bench dtls_bulk), and a firewall's own
 * FORWARD chain, which is filter's, is one hook with ours. The PMTU queue and
 * the DTLS block come first there, before the ruleset's accepts. MARK,
 * CONNMARK and NFQUEUE work in any table; REJECT needs filter.
 */
static void rules_ipt_forward(const struct rules_out *r, int hooks)
{
	const struct marks *mk = &r->c->marks;

	const bool pmtu = rules_ipt_pmtu_any(r);

	rules_ipt_chains(r->out, "filter", rules_chains_filter);
	if (rules_need_dtls(r->c, r->family))
		strbuf_printf(r->out, ":MTUGATE_FILTER - [0:0]\n-F MTUGATE_FILTER\n");
	/* The settled flows' exit saves them the PMTU rules' walk. Without PMTU
	 * rules what is left are three native mark tests, cheaper than the
	 * exit's connmark match (bench dtls_bulk, perf: 1 point of the CPU). */
	if (pmtu)
		rules_ipt_settled(r, "MTUGATE_FORWARD");
	rules_ipt_resume(r->out, mk, "MTUGATE_FORWARD");
	if (rules_need_dtls(r->c, r->family)) {
		/* Marks the DTLS path sets (clamp/dtls.h): the verdict's mark goes
		 * onto the connection, so later datagrams stay in the kernel. */
		strbuf_printf(r->out, "-A MTUGATE_FORWARD -m mark --mark 0x%x/0x%x -j CONNMARK --save-mark"
			      " --nfmask 0x%x --ctmask 0x%x\n", mk->tag, mk->tag_mask,
			      marks_dtls_mask(mk), marks_dtls_mask(mk));
		strbuf_printf(r->out, "-A MTUGATE_FORWARD -m mark --mark 0x%x/0x%x -j MTUGATE_FILTER\n",
			      mk->tag, mk->tag_mask);
	}
	if (pmtu)
		strbuf_printf(r->out, "-A MTUGATE_FORWARD -j MTUGATE_PMTU\n");
	rules_ipt_filter(r);
	rules_ipt_pmtu(r);
	if (hooks)
		strbuf_printf(r->out, "-I FORWARD -j MTUGATE_FORWARD\n");
	strbuf_printf(r->out, "COMMIT\n");
}

int rules_iptables(const struct conf *c, const struct policy *p, int family, int hooks,
		   struct strbuf *out)
{
	struct rules_out r = { c, p, family, out };
	const char *tool = family == AF_INET6 ? "ip6tables" : "iptables";

	strbuf_printf(out, "# mtugate: %s-restore --noflush (mtugatectl rules --%s)\n", tool, tool);
	strbuf_printf(out, "# The MTUGATE_* chains are flushed and refilled each time. The jumps from\n"
		      "# the built-in chains (-I lines) must be added once only: re-apply with\n"
		      "# `mtugatectl rules --%s --no-hooks`, or add them by `mtugatectl rules --hooks`.\n",
		      tool);
	rules_marks_comment(c, out);
	rules_ipt_chains(out, "mangle", rules_chains_mangle);
	rules_ipt_answer(&r);
	rules_ipt_settled(&r, "MTUGATE_PREROUTING");
	rules_ipt_resume(out, &c->marks, "MTUGATE_PREROUTING");
	/* SYNs are queued before the routing decision: the kernel then routes a
	 * queued SYN once, after the verdict, on the daemon's CPU, and the
	 * enqueue holds no route (measured: bench-mss, README "Deployment"). */
	/* Each chain is entered by what its rules can match only, and only
	 * when it has rules: all other forwarded traffic (TCP data, most of it)
	 * passes each at one native test, with no jump (a jump and a counter
	 * per packet in iptables-nft). */
	if (rules_need_proxy(c, family))
		strbuf_printf(out, "-A MTUGATE_PREROUTING -p tcp -j MTUGATE_PROXY\n");
	if (rules_need_dtls(c, family))
		strbuf_printf(out, "-A MTUGATE_PREROUTING -p udp -j MTUGATE_DTLS\n");
	if (rules_qon(&c->queues.mss))
		strbuf_printf(out, "-A MTUGATE_PREROUTING -p tcp --tcp-flags SYN,RST SYN -j MTUGATE_MSS\n");
	rules_ipt_proxy(&r);
	rules_ipt_dtls(&r);
	rules_ipt_mss(&r);
	if (hooks)
		strbuf_printf(out, "-I PREROUTING -j MTUGATE_PREROUTING\n");
	strbuf_printf(out, "COMMIT\n");
	rules_ipt_forward(&r, hooks);
	rules_ipt_nat(&r, hooks);
	return out->oom ? -ENOMEM : 0;
}

int rules_hooks(const struct conf *c, struct strbuf *out)
{
	static const int fams[] = { AF_INET, AF_INET6 };
	static const char *const hooks[][2] = {
		{ "mangle -C PREROUTING -j MTUGATE_PREROUTING", "mangle -I PREROUTING -j MTUGATE_PREROUTING" },
		{ "filter -C FORWARD -j MTUGATE_FORWARD", "filter -I FORWARD -j MTUGATE_FORWARD" },
		{ "nat -C PREROUTING -j MTUGATE_DNAT", "nat -I PREROUTING -j MTUGATE_DNAT" },
		{ "nat -C POSTROUTING -j MTUGATE_SNAT", "nat -I POSTROUTING -j MTUGATE_SNAT" },
	};
	size_t f, i;

	for (f = 0; f < 2; f++) {
		const char *tool = fams[f] == AF_INET6 ? "ip6tables" : "iptables";

		for (i = 0; i < sizeof(hooks) / sizeof(hooks[0]); i++) {
			if (i >= 2 && !rules_need_natchains(c, fams[f]))
				continue;
			strbuf_printf(out, "%s -t %s 2>/dev/null || %s -t %s\n", tool, hooks[i][0], tool,
				      hooks[i][1]);
		}
	}
	return out->oom ? -ENOMEM : 0;
}

int rules_routes(const struct conf *c, struct strbuf *out)
{
	const struct marks *mk = &c->marks;

	if (rules_need_proxy(c, AF_INET))
		strbuf_printf(out, "ip rule add fwmark 0x%x/0x%x lookup %u\n"
			      "ip route add local 0.0.0.0/0 dev lo table %u\n",
			      mk->proxy, mk->proxy, c->proxy.route_table, c->proxy.route_table);
	if (rules_need_proxy(c, AF_INET6))
		strbuf_printf(out, "ip -6 rule add fwmark 0x%x/0x%x lookup %u\n"
			      "ip -6 route add local ::/0 dev lo table %u\n",
			      mk->proxy, mk->proxy, c->proxy.route_table, c->proxy.route_table);
	return out->oom ? -ENOMEM : 0;
}

/* A range is spread by a hash of the addresses, as iptables --queue-balance
 * does: every packet between two hosts, both ways, meets the same thread and
 * its per-host state (PMTU rate limits). "fanout" would spread by CPU instead. */
static void rules_nft_queue(struct strbuf *out, const struct qrange *q)
{
	if (q->first == q->last)
		strbuf_printf(out, " queue num %d bypass\n", q->first);
	else
		strbuf_printf(out, " queue num %d-%d bypass\n", q->first, q->last);
}

static const char *rules_nft_ip(int family)
{
	return family == AF_INET6 ? "ip6" : "ip";
}

/* A packet mtugated decided comes back (NF_REPEAT): clear the bit, skip the chain. */
static void rules_nft_resume(const struct marks *mk, struct strbuf *out)
{
	strbuf_printf(out, "\t\tmeta mark & 0x%x == 0x%x meta mark set meta mark & 0x%08x return\n",
		      mk->done, mk->done, ~mk->done);
}

/* SYN and SYN-ACK to and from the pools, before routing (see rules_iptables()). */
/* nft's form of rules_ipt_answer(). */
static void rules_nft_answer(const struct conf *c, struct strbuf *out)
{
	char buf[64];

	if (!rules_qon(&c->queues.dtls) || !c->proxy.enable)
		return;
	for (size_t i = 0; i < c->headend.naddr; i++) {
		strbuf_printf(out, "\t\t%s saddr %s udp sport { %u",
			      rules_nft_ip(c->headend.addr[i].family),
			      rules_addr(&c->headend.addr[i], buf, sizeof(buf)),
			      c->headend.advertised_dtls_port);
		if (c->headend.dtls_port != c->headend.advertised_dtls_port)
			strbuf_printf(out, ", %u", c->headend.dtls_port);
		strbuf_printf(out, " } ct reply packets 1 ct state established ct direction reply"
			      " log group %d snaplen %d\n", c->queues.dtls.first, RULES_NFLOG_SIZE);
	}
}

/* nft's form of rules_ipt_settled(). */
static void rules_nft_settled(const struct conf *c, struct strbuf *out)
{
	uint32_t m, mask;

	if (!rules_qon(&c->queues.dtls) || !c->headend.naddr)
		return;
	rules_settled(&c->marks, &m, &mask);
	strbuf_printf(out, "\t\tmeta l4proto udp meta mark & 0x%x == 0x0 ct mark & 0x%x == 0x%x return\n",
		      c->marks.done, mask, m);
}

static void rules_nft_mss(const struct conf *c, const struct policy *p, struct strbuf *out)
{
	static const char *const dir[] = { "saddr", "daddr" };
	char buf[64];
	size_t i, k, d;

	if (!rules_qon(&c->queues.mss))
		return;
	for (i = 0; i < policy_count(p); i++) {
		const struct group *g = policy_group(p, i);

		for (k = 0; g->mss_mode != MSS_OFF && k < g->npools; k++) {
			rules_prefix(&g->pools[k], buf, sizeof(buf));
			for (d = 0; d < 2; d++) {
				strbuf_printf(out, "\t\t%s %s %s tcp flags & (syn | rst) == syn",
					      rules_nft_ip(g->pools[k].family), dir[d], buf);
				/* See rules_clamp_marks(). */
				if (rules_clamp_marks(c, g))
					strbuf_printf(out, " ct mark set ct mark & 0x%08x | 0x%x",
						      ~marks_dtls_mask(&c->marks), c->marks.tag);
				rules_nft_queue(out, &c->queues.mss);
			}
		}
	}
}

/* The TLS proxy intake, a chain of its own as iptables' MTUGATE_PROXY: its
 * returns go back to prerouting, whose DTLS and MSS rules still see the packet
 * (a return in the base chain would end it, unclamped). */
static void rules_nft_proxy(const struct conf *c, const struct policy *p, struct strbuf *out)
{
	const struct marks *mk = &c->marks;
	char buf[64];
	size_t i, k;

	if (!c->proxy.enable || !c->headend.naddr)
		return;
	strbuf_printf(out, "\tchain proxy {\n");
	/* The listener's port on a local address: reached directly, not diverted.
	 * First: the socket rule below takes the loopback listener. */
	strbuf_printf(out, "\t\tfib daddr type local tcp dport %u drop\n", c->proxy.listen_port);
	/* The proxy's own connections, as iptables' socket match does: not a
	 * wildcard listener, which would take any forwarded TCP to its port. */
	strbuf_printf(out, "\t\tmeta l4proto tcp socket transparent 1 socket wildcard 0"
		      " meta mark set meta mark | 0x%x return\n", mk->proxy);
	/* Only what TPROXY would take: prerouting's other rules see every client. */
	for (i = 0; i < policy_count(p); i++) {
		const struct group *g = policy_group(p, i);

		for (k = 0; g->proxy_bypass && k < g->nclients; k++)
			strbuf_printf(out, "\t\t%s saddr %s tcp dport %u return comment"
				      " \"%s: proxy = no\"\n",
				      rules_nft_ip(g->clients[k].family),
				      rules_prefix(&g->clients[k], buf, sizeof(buf)),
				      c->headend.tls_port, g->name);
	}
	for (i = 0; i < c->headend.naddr; i++) {
		const char *ip = rules_nft_ip(c->headend.addr[i].family);

		strbuf_printf(out, "\t\t%s daddr %s tcp dport %u meta mark set meta mark | 0x%x"
			      " tproxy %s to %s:%u accept\n", ip,
			      rules_addr(conf_headend_public(c, i), buf, sizeof(buf)),
			      c->headend.tls_port, mk->proxy, ip,
			      c->headend.addr[i].family == AF_INET6 ? "[" RULES_PROXY_ON6 "]" :
			      RULES_PROXY_ON4, c->proxy.listen_port);
	}
	strbuf_printf(out, "\t}\n");
}

static void rules_nft_prerouting(const struct conf *c, const struct policy *p, struct strbuf *out)
{
	const struct marks *mk = &c->marks;
	char buf[64];
	size_t i;

	strbuf_printf(out, "\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle;"
		      " policy accept;\n");
	rules_nft_answer(c, out);
	rules_nft_settled(c, out);
	rules_nft_resume(mk, out);
	if (c->proxy.enable && c->headend.naddr)
		strbuf_printf(out, "\t\tjump proxy\n");
	if (rules_qon(&c->queues.dtls)) {
		for (i = 0; i < c->headend.naddr; i++) {
			const char *ip = rules_nft_ip(c->headend.addr[i].family);
			static const char *const dir[][2] = { { "daddr", "dport" }, { "saddr", "sport" } };
			size_t d;

			for (d = 0; d < 2; d++) {
				/* Toward the headend its public address (before nat), back its own. */
				rules_addr(d ? &c->headend.addr[i] : conf_headend_public(c, i), buf,
					   sizeof(buf));
				strbuf_printf(out, "\t\t%s %s %s udp %s { %u", ip, dir[d][0], buf, dir[d][1],
					      c->headend.advertised_dtls_port);
				if (c->headend.dtls_port != c->headend.advertised_dtls_port)
					strbuf_printf(out, ", %u", c->headend.dtls_port);
				strbuf_printf(out, " } ct state new ct mark & 0x%x == 0x0", marks_dtls_mask(mk));
				if (d == 0)
					strbuf_printf(out, " jump dtls_new\n");
				else
					rules_nft_queue(out, &c->queues.dtls);
			}

		}
	}
	rules_nft_mss(c, p, out);
	strbuf_printf(out, "\t}\n");
}

static bool rules_nft_dtls(const struct conf *c)
{
	return rules_qon(&c->queues.dtls) && c->headend.naddr;
}

/* The nft form of the ipsets (see rules_ipt_filter()): one timeout set of
 * (address, port) per list and family, filled from the forward chain. */
static void rules_nft_dtls_sets(const struct conf *c, struct strbuf *out)
{
	static const char *const lists[] = { "drop", "reject" };
	size_t l, f;

	if (!rules_nft_dtls(c))
		return;
	for (l = 0; l < 2; l++)
		for (f = 0; f < 2; f++)
			strbuf_printf(out, "\tset dtls_%s%c {\n\t\ttype ipv%c_addr . inet_service;"
				      " flags dynamic, timeout; timeout %ds; size %d;\n\t}\n", lists[l],
				      f ? '6' : '4', f ? '6' : '4', RULES_DTLS_REMEMBER, RULES_SET_MAX);
}

/* A flow remembered as blocked gets the blocked mark without a decision. */
static void rules_nft_dtls_new(const struct conf *c, struct strbuf *out)
{
	const struct marks *mk = &c->marks;
	static const char *const lists[] = { "drop", "reject" };
	const unsigned keep = ~(unsigned)marks_dtls_mask(mk);
	size_t l, f;

	if (!rules_nft_dtls(c))
		return;
	strbuf_printf(out, "\tchain dtls_new {\n");
	for (l = 0; l < 2; l++)
		for (f = 0; f < 2; f++)
			strbuf_printf(out, "\t\t%s saddr . udp sport @dtls_%s%c meta mark set meta mark"
				      " & 0x%08x | 0x%x return\n", f ? "ip6" : "ip", lists[l], f ? '6' : '4', keep,
				      mk->tag | mk->blocked | (l ? mk->reject : 0));
	strbuf_printf(out, "\t\tmeta mark & 0x%x == 0x0", mk->tag_mask);
	rules_nft_queue(out, &c->queues.dtls);
	strbuf_printf(out, "\t}\n");
}

/* Our forward chain runs at mangle priority, before any filter chain, and
 * drop is final in nft: no ordering against a stateful ruleset needed. */
static void rules_nft_dtls_block(const struct conf *c, struct strbuf *out)
{
	const struct marks *mk = &c->marks;
	static const char *const lists[] = { "drop", "reject" };
	const unsigned m = mk->tag | mk->blocked;
	const unsigned mask = mk->tag_mask | mk->blocked | mk->reject;
	size_t l, f;

	if (!rules_nft_dtls(c))
		return;
	for (l = 0; l < 2; l++)
		for (f = 0; f < 2; f++)
			strbuf_printf(out, "\t\tmeta mark & 0x%x == 0x%x meta nfproto ipv%c update @dtls_%s%c"
				      " { %s saddr . udp sport }\n", mask | mk->decided,
				      m | mk->decided | (l ? mk->reject : 0), f ? '6' : '4',
				      lists[l], f ? '6' : '4', f ? "ip6" : "ip");
	strbuf_printf(out, "\t\tmeta mark & 0x%x == 0x%x drop\n", mask, m);
	strbuf_printf(out, "\t\tmeta mark & 0x%x == 0x%x reject with icmpx type port-unreachable\n",
		      mask, m | mk->reject);
}

static void rules_nft_forward(const struct conf *c, const struct policy *p, struct strbuf *out)
{
	const struct marks *mk = &c->marks;
	char buf[64];
	size_t i, k;

	strbuf_printf(out, "\tchain forward {\n\t\ttype filter hook forward priority mangle;"
		      " policy accept;\n");
	rules_nft_settled(c, out);
	rules_nft_resume(mk, out);
	/* The decision onto the connection, its bits only (iptables: CONNMARK
	 * --save-mark with masks). nft 1.0 cannot merge two registers, so one
	 * rule per decision the daemon or the remembered lists can make. */
	if (rules_qon(&c->queues.dtls) && c->headend.naddr) {
		const uint32_t m = marks_dtls_mask(mk), t = mk->tag;
		const uint32_t v[] = { t | mk->decided, t | mk->decided | mk->normalize,
				       t | mk->decided | mk->blocked,
				       t | mk->decided | mk->blocked | mk->reject, t | mk->blocked,
				       t | mk->blocked | mk->reject };

		for (size_t d = 0; d < sizeof(v) / sizeof(v[0]); d++)
			strbuf_printf(out, "\t\tmeta mark & 0x%x == 0x%x ct mark set ct mark & 0x%08x | 0x%x\n",
				      m, v[d], ~m, v[d]);
	}
	rules_nft_dtls_block(c, out);
	/* Clamped TCP (rules_clamp_marks()): nothing after this is for it. */
	if (rules_any_clamp_marks(c, p))
		strbuf_printf(out, "\t\tmeta l4proto tcp ct mark & 0x%x == 0x%x return\n",
			      marks_dtls_mask(mk), mk->tag);
	for (i = 0; i < policy_count(p); i++) {
		const struct group *g = policy_group(p, i);

		for (k = 0; k < g->npools; k++) {
			const struct prefix *pf = &g->pools[k];
			const char *ip = rules_nft_ip(pf->family);

			rules_prefix(pf, buf, sizeof(buf));
			if (!rules_qon(&c->queues.pmtu) || !g->pmtu || g->mtu >= 65535 ||
			    (pf->family == AF_INET6 && g->mtu < 1280))
				continue;
			strbuf_printf(out, "\t\t%s daddr %s%s meta length %u-65535", ip, buf,
				      pf->family == AF_INET ? " ip frag-off & 0x4000 != 0" :
				      " meta l4proto != udp", g->mtu + 1);
			rules_nft_queue(out, &c->queues.pmtu);
		}
	}
	strbuf_printf(out, "\t}\n");
}

/* CSCuh61321 in nft: the DNAT to dtls_port, and its mirror, the SNAT back to
 * the advertised port of a flow the headend restarted (see rules_ipt_snat());
 * with a port forward, the proxy's identity DNAT (rules_ipt_keep()). One
 * below the usual priorities: ahead of the admin's own nat chains, as
 * iptables' -I puts MTUGATE_DNAT first. */
static void rules_nft_dnat(const struct conf *c, struct strbuf *out)
{
	const struct marks *mk = &c->marks;
	const unsigned nm = mk->tag_mask | mk->normalize, nv = mk->tag | mk->normalize;
	char pub[64], priv[64], to[64];
	size_t i;

	if (!rules_need_natchains(c, AF_INET) && !rules_need_natchains(c, AF_INET6))
		return;
	strbuf_printf(out, "\tchain nat_prerouting {\n\t\ttype nat hook prerouting priority dstnat - 1;"
		      " policy accept;\n");
	for (i = 0; i < c->headend.naddr; i++) {
		const char *ip = rules_nft_ip(c->headend.addr[i].family);

		rules_addr(conf_headend_public(c, i), pub, sizeof(pub));
		if (rules_need_keep(c, c->headend.addr[i].family) && conf_headend_forwarded(c, i))
			strbuf_printf(out, "\t\t%s daddr %s tcp dport %u meta mark & 0x%x == 0x%x dnat %s to %s\n",
				      ip, pub, c->headend.tls_port, mk->proxy, mk->proxy, ip, pub);
		if (rules_need_nat(c, c->headend.addr[i].family))
			strbuf_printf(out, "\t\t%s daddr %s udp dport %u meta mark & 0x%x == 0x%x dnat %s to %s:%u\n",
				      ip, pub, c->headend.advertised_dtls_port, nm, nv, ip,
				      rules_nat_addr(&c->headend.addr[i], to, sizeof(to)), c->headend.dtls_port);
	}
	strbuf_printf(out, "\t}\n\tchain nat_postrouting {\n\t\ttype nat hook postrouting priority srcnat - 1;"
		      " policy accept;\n");
	for (i = 0; i < c->headend.naddr; i++) {
		const char *ip = rules_nft_ip(c->headend.addr[i].family);

		if (!rules_need_nat(c, c->headend.addr[i].family))
			continue;
		strbuf_printf(out, "\t\t%s saddr %s udp sport %u meta mark & 0x%x == 0x%x snat %s to %s:%u\n",
			      ip, rules_addr(&c->headend.addr[i], priv, sizeof(priv)), c->headend.dtls_port,
			      nm, nv, ip, rules_nat_addr(conf_headend_public(c, i), to, sizeof(to)),
			      c->headend.advertised_dtls_port);
	}
	strbuf_printf(out, "\t}\n");
}

int rules_nft(const struct conf *c, const struct policy *p, struct strbuf *out)
{
	strbuf_printf(out, "#!/usr/sbin/nft -f\n"
		      "# mtugate: nft -f (mtugatectl rules --nft). The table is replaced as a whole.\n");
	rules_marks_comment(c, out);
	strbuf_printf(out, "table inet mtugate\ndelete table inet mtugate\n\ntable inet mtugate {\n");
	rules_nft_dtls_sets(c, out);
	rules_nft_prerouting(c, p, out);
	rules_nft_proxy(c, p, out);
	rules_nft_dtls_new(c, out);
	rules_nft_forward(c, p, out);
	rules_nft_dnat(c, out);
	strbuf_printf(out, "}\n");
	return out->oom ? -ENOMEM : 0;
}

static bool rules_ct_skip(const struct ipaddr *ign, size_t i)
{
	/* fe80::/10: the same on every link, never a flow's address here. */
	if (ign[i].family == AF_INET6 && ign[i].addr[0] == 0xfe && (ign[i].addr[1] & 0xc0) == 0x80)
		return true;
	for (size_t k = 0; k < i; k++)
		if (ign[k].family == ign[i].family && !memcmp(ign[k].addr, ign[i].addr, 16))
			return true;
	return false;
}

/*
 * conntrackd keeps one address list per filter, Accept or Ignore, whichever
 * block comes last: the conntrackd manual's way (ignore the node's own
 * traffic, sync the rest) is printed, with the narrower Accept of the
 * headend's addresses as a comment. conntrackd's FTFW sample leaves UDP out;
 * without it a failover loses every DTLS decision and port rewrite (the
 * new node then repairs the flows the headend restarts, dtls_repaired).
 */
int rules_conntrackd(const struct conf *c, const struct ipaddr *ignore, size_t nignore,
		     struct strbuf *out)
{
	static const uint8_t lo4[4] = { 127, 0, 0, 1 }, lo6[16] = { [15] = 1 };
	const bool split = c->headend.dtls_port != c->headend.advertised_dtls_port;
	char buf[64];
	size_t i;

	strbuf_printf(out, "# mtugate: the Filter of conntrackd.conf's General section"
		      " (mtugatectl rules --conntrackd),\n# the same on both nodes but for the"
		      " addresses to ignore. See docs/ha.md.\n");
	strbuf_printf(out, "# The flows mtugate needs on the other node: UDP to and from the"
		      " headend's DTLS port%s %u", split ? "s" : "", c->headend.dtls_port);
	if (split)
		strbuf_printf(out, " and %u", c->headend.advertised_dtls_port);
	strbuf_printf(out, " (the mark, the NAT binding),\n# TCP to its tls_port %u (the MSS"
		      " clamp is in the SYN only; a stateful ruleset needs the entry).\n",
		      c->headend.tls_port);
	strbuf_printf(out, "Filter From Userspace {\n\tProtocol Accept {\n\t\tTCP\n\t\tUDP\n\t}\n");
	strbuf_printf(out, "\t# Only the headend's flows instead (one list per filter in"
		      " conntrackd: Accept or Ignore, not both):\n\t# Address Accept {\n");
	for (i = 0; i < c->headend.naddr; i++)
		strbuf_printf(out, "\t#\t%s_address %s # headend\n",
			      c->headend.addr[i].family == AF_INET6 ? "IPv6" : "IPv4",
			      rules_addr(&c->headend.addr[i], buf, sizeof(buf)));
	strbuf_printf(out, "\t# }\n\tAddress Ignore {\n\t\tIPv4_address 127.0.0.1 # loopback\n"
		      "\t\tIPv6_address ::1 # loopback\n");
	for (i = 0; i < nignore; i++) {
		const struct ipaddr *a = &ignore[i];

		if (rules_ct_skip(ignore, i) ||
		    (a->family == AF_INET && !memcmp(a->addr, lo4, 4)) ||
		    (a->family == AF_INET6 && !memcmp(a->addr, lo6, 16)))
			continue;
		strbuf_printf(out, "\t\t%s_address %s\n", a->family == AF_INET6 ? "IPv6" : "IPv4",
			      rules_addr(a, buf, sizeof(buf)));
	}
	strbuf_printf(out, "\t}\n}\n");
	return out->oom ? -ENOMEM : 0;
}

/* Everything `mtugatectl rules` can print for one configuration, in one buffer. */
static int rules_all(const struct conf *c, const struct policy *p, struct strbuf *out)
{
	int r = rules_iptables(c, p, AF_INET, 1, out);

	if (!r)
		r = rules_iptables(c, p, AF_INET6, 1, out);
	if (!r)
		r = rules_nft(c, p, out);
	if (!r)
		r = rules_routes(c, out);
	return r;
}

int rules_changed(const struct conf *a, const struct policy *pa, const struct conf *b,
		  const struct policy *pb)
{
	struct strbuf x = { 0 }, y = { 0 };
	int r = -ENOMEM;

	if (rules_all(a, pa, &x) == 0 && rules_all(b, pb, &y) == 0)
		r = x.len != y.len || (x.len && memcmp(x.buf, y.buf, x.len) != 0);
	strbuf_free(&x);
	strbuf_free(&y);
	return r;
}
