/* The DTLS queue handler: packet in, verdict (action, mark) and counters out,
 * for each group mode, both directions, both families, the proxy's session
 * table, and malformed input. */
#include <arpa/inet.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "conf/diag.h"
/* The lookup limits' clock: moved by the tests only. */
static uint64_t fake_ns = 1000000000ull;
#define DTLSQ_NOW_NS() fake_ns
#include "daemon/dtlsq.c"
#include "tests/unit/t.h"

/* openconnect's hellos, shared with the DTLS parser's fuzz corpus: legacy
 * (record version 0x0100, the X-DTLS-Session-ID at offset 60) and
 * PSK-NEGOTIATE (the X-DTLS-App-ID extension's 32 bytes at offset 121). */
static uint8_t legacy_hello[99], psk_hello[157];

static void load(const char *path, uint8_t *buf, size_t len)
{
	uint8_t tmp[4096];
	FILE *f = fopen(path, "rb");
	size_t n = f ? fread(tmp, 1, sizeof(tmp), f) : 0;

	if (f)
		fclose(f);
	memcpy(buf, tmp, n < len ? n : len);
	if (n != len) {
		fprintf(stderr, "%s: %zu bytes, want %zu (run from the repository root)\n", path, n, len);
		exit(1);
	}
}

/* An encrypted DTLS 1.2 application-data record (epoch 1): mid-flow. */
static const uint8_t app_record[29] = {
	0x17, 0xfe, 0xfd, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x07, 0x00, 0x10,
	1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16,
};

static struct counters cnt;

static void push(struct group *g, const char *c4, const char *c6)
{
	g->clients = calloc(2, sizeof(struct prefix));
	if (c4 && prefix_parse(&g->clients[g->nclients++], c4) < 0)
		abort();
	if (c6 && prefix_parse(&g->clients[g->nclients++], c6) < 0)
		abort();
}

enum { G_RELAY, G_DROP, G_REJECT, G_PASS, G_SESS, NGROUPS };

static struct policy *mk_policy(void)
{
	static const char *const names[] = { "relay", "drop", "reject", "pass", "sess" };
	struct group *g = calloc(NGROUPS, sizeof(*g));
	struct diag d = { 0 };
	struct policy *p;

	for (int i = 0; i < NGROUPS; i++) {
		strcpy(g[i].name, names[i]);
		strcpy(g[i].auth_group, names[i]);
		g[i].mtu = 1400;
	}
	push(&g[G_RELAY], "198.18.1.0/26", "2001:db8:1::/120");
	g[G_RELAY].dtls = DTLS_RELAY;
	push(&g[G_DROP], "198.18.1.64/26", NULL);
	g[G_DROP].dtls = DTLS_BLOCK;
	g[G_DROP].dtls_block = DTLS_BLOCK_DROP;
	push(&g[G_REJECT], "198.18.1.128/26", "2001:db8:1::100/120");
	g[G_REJECT].dtls = DTLS_BLOCK;
	g[G_REJECT].dtls_block = DTLS_BLOCK_REJECT;
	push(&g[G_PASS], "198.18.1.192/27", NULL);
	g[G_PASS].dtls = DTLS_PASS;
	/* Found only through the proxy's session table. */
	g[G_SESS].dtls = DTLS_BLOCK;
	p = policy_compile(g, NGROUPS, &d);
	diag_free(&d);
	if (!p)
		abort();
	for (size_t i = 0; i < policy_count(p); i++)
		((struct group *)policy_group(p, i))->slot = (unsigned)(10 + i);
	return p;
}

static unsigned slot(const struct policy *p, const char *name)
{
	return policy_by_name(p, name)->slot;
}

static uint16_t csum_fold(uint32_t s)
{
	while (s >> 16)
		s = (s & 0xffff) + (s >> 16);
	return (uint16_t)~s;
}

/* An IPv4 or IPv6 UDP datagram with payload, into buf; its length. */
static size_t mk_udp(uint8_t *buf, const char *src, const char *dst, uint16_t sport,
		     uint16_t dport, const uint8_t *pl, size_t n)
{
	size_t hl = strchr(src, ':') ? 40 : 20, ul = 8 + n;

	memset(buf, 0, hl + ul);
	if (hl == 20) {
		uint32_t s = 0;

		buf[0] = 0x45;
		buf[2] = (uint8_t)((hl + ul) >> 8);
		buf[3] = (uint8_t)(hl + ul);
		buf[6] = 0x40;
		buf[8] = 64;
		buf[9] = 17;
		inet_pton(AF_INET, src, buf + 12);
		inet_pton(AF_INET, dst, buf + 16);
		for (int i = 0; i < 20; i += 2)
			s += (uint32_t)buf[i] << 8 | buf[i + 1];
		s = csum_fold(s);
		buf[10] = (uint8_t)(s >> 8);
		buf[11] = (uint8_t)s;
	} else {
		buf[0] = 0x60;
		buf[4] = (uint8_t)(ul >> 8);
		buf[5] = (uint8_t)ul;
		buf[6] = 17;
		buf[7] = 64;
		inet_pton(AF_INET6, src, buf + 8);
		inet_pton(AF_INET6, dst, buf + 24);
	}
	buf[hl] = (uint8_t)(sport >> 8);
	buf[hl + 1] = (uint8_t)sport;
	buf[hl + 2] = (uint8_t)(dport >> 8);
	buf[hl + 3] = (uint8_t)dport;
	buf[hl + 4] = (uint8_t)(ul >> 8);
	buf[hl + 5] = (uint8_t)ul;
	memcpy(buf + hl + 8, pl, n);
	return hl + ul;
}

/* Run one datagram through the handler with an incoming packet mark. */
static struct nfq_verdict run(struct dtlsq_state *s, const struct policy *p, uint8_t *buf,
			      size_t len, uint32_t mark)
{
	struct nfq_packet pk = { .buf = buf, .len = len, .mark = mark };
	struct nfq_verdict v = { 0 };

	dtlsq_packet(s, p, &cnt, &pk, &v);
	return v;
}

static struct dtlsq_state *mk_state_marks(uint16_t real, uint16_t adv, uint32_t mark_mask)
{
	struct conf c;
	struct dtlsq_state *s;

	conf_defaults(&c);
	if (mark_mask && marks_from_mask(&c.marks, mark_mask) < 0)
		abort();
	c.headend.naddr = 2;
	if (addr_parse(&c.headend.addr[0], "198.18.2.2") < 0 ||
	    addr_parse(&c.headend.addr[1], "2001:db8:2::2") < 0)
		abort();
	c.headend.dtls_port = real;
	c.headend.advertised_dtls_port = adv;
	s = dtlsq_state_new(&c);
	if (!s)
		abort();
	return s;
}

static struct dtlsq_state *mk_state(uint16_t real, uint16_t adv)
{
	return mk_state_marks(real, adv, 0);
}

#define G(name) (&cnt.g[slot(p, name)])

/* CSCuh61321: told 444, the headend answers on 443. */
static void test_split_ports(struct policy *p)
{
	struct dtlsq_state *s = mk_state(443, 444);
	uint8_t buf[2048];
	size_t n;
	struct nfq_verdict v;

	memset(&cnt, 0, sizeof(cnt));
	/* relay, to the advertised port: normalise (DNAT on the mark), and keep
	 * every mark bit outside DTLS_MARK_MASK (0x130 here). */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40000, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0x130);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(v.set_mark);
	CHECK_INT(v.mark, 0x4d540133);
	CHECK(v.payload == NULL);
	CHECK_INT(G("relay")->packets, 1);
	CHECK_INT(G("relay")->dtls_relayed, 1);
	CHECK_INT(G("relay")->dtls_port_rewritten, 1);

	/* relay, already to the real port: decided, not rewritten. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40001, 443, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("relay")->dtls_relayed, 2);
	CHECK_INT(G("relay")->dtls_port_rewritten, 1);

	/* Mid-flow record (conntrack lost the flow): still normalised. */
	n = mk_udp(buf, "198.18.1.3", "198.18.2.2", 40002, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);
	CHECK_INT(G("relay")->dtls_port_rewritten, 2);

	/* IPv6, PSK-style record to the advertised port. */
	n = mk_udp(buf, "2001:db8:1::2", "2001:db8:2::2", 40003, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0xffffffff);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d54fff3);
	CHECK_INT(G("relay")->dtls_port_rewritten, 3);

	/* block/drop: accepted with BLOCKED; the printed filter rule drops it
	 * and remembers the client. */
	n = mk_udp(buf, "198.18.1.66", "198.18.2.2", 40004, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(v.set_mark);
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(G("drop")->dtls_blocked, 1);
	CHECK_INT(G("drop")->dtls_relayed + G("drop")->dtls_port_rewritten, 0);

	/* block/reject, IPv6 to the real port. */
	n = mk_udp(buf, "2001:db8:1::102", "2001:db8:2::2", 40005, 443, legacy_hello,
		   sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d54000d);
	CHECK_INT(G("reject")->dtls_blocked, 1);

	/* The headend's datagram toward a blocked client: dropped here, no mark. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.130", 443, 40006, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0x7);
	CHECK_INT(v.action, NFQ_DROP);
	CHECK(!v.set_mark);
	CHECK_INT(G("reject")->dtls_blocked, 2);

	/* The headend first from its real port toward a relay client
	 * (conntrack lost the flow): marked for the SNAT back to 444, every
	 * bit outside DTLS_MARK_MASK kept, counted repaired. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.2", 443, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0x130);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(v.set_mark);
	CHECK_INT(v.mark, 0x4d540133);
	CHECK_INT(G("relay")->dtls_relayed, 5);
	CHECK_INT(G("relay")->dtls_repaired, 1);
	CHECK_INT(G("relay")->dtls_port_rewritten, 3);
	n = mk_udp(buf, "2001:db8:2::2", "2001:db8:1::2", 443, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);
	CHECK_INT(G("relay")->dtls_repaired, 2);
	/* From the advertised port it needs nothing: accepted, no mark. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.2", 444, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(!v.set_mark);
	CHECK_INT(G("relay")->dtls_relayed, 7);
	CHECK_INT(G("relay")->dtls_repaired, 2);
	/* Toward a pass group's or no group's client: unchanged (no port fix). */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.200", 443, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	n = mk_udp(buf, "198.18.2.2", "198.18.9.9", 443, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	CHECK_INT(cnt.nogroup, 1);
	CHECK_INT(G("pass")->packets, 1);
	CHECK_INT(G("pass")->dtls_repaired + G("drop")->dtls_repaired + G("reject")->dtls_repaired, 0);

	/* pass: decided, counted as packets only. */
	n = mk_udp(buf, "198.18.1.200", "198.18.2.2", 40007, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("pass")->packets, 2);
	CHECK_INT(G("pass")->dtls_relayed + G("pass")->dtls_blocked + G("pass")->dtls_port_rewritten, 0);

	/* No group: passes unchanged (no DNAT), decided, counted nogroup. */
	n = mk_udp(buf, "198.18.9.9", "198.18.2.2", 40008, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(cnt.nogroup, 2);

	CHECK_INT(cnt.malformed, 0);
	dtlsq_state_free(s);
}

static void test_sessions(struct policy *p)
{
	struct dtlsq_state *s = mk_state(443, 444);
	struct session_table *t = session_table_new(8);
	struct session_info si = { 0 };
	uint8_t buf[2048];
	size_t n;
	struct nfq_verdict v;

	memset(&cnt, 0, sizeof(cnt));
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40000, 444, legacy_hello, sizeof(legacy_hello));
	/* No table yet: the relay group by `clients`. */
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);
	/* The proxied session's group wins over `clients`. */
	memcpy(si.id, legacy_hello + 60, 32);
	si.id_len = 32;
	strcpy(si.group, "sess");
	CHECK(session_add(t, &si) >= 0);
	dtlsq_state_set_sessions(s, t);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(G("sess")->dtls_blocked, 1);
	CHECK_INT(G("relay")->dtls_relayed, 1);
	/* Another session ID: back to `clients`. */
	buf[n - 8] ^= 0xff;
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);
	CHECK_INT(G("relay")->dtls_relayed, 2);
	/* A session whose group no longer exists (reload): `clients` again. */
	strcpy(si.group, "gone");
	memcpy(si.id, legacy_hello + 60, 32);
	session_add(t, &si);
	buf[n - 8] ^= 0xff;
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);
	CHECK_INT(G("sess")->dtls_blocked, 1);

	/* PSK-NEGOTIATE: the App-ID extension is the key, not the session ID. */
	memset(&si, 0, sizeof(si));
	memcpy(si.id, psk_hello + 121, 32);
	si.id_len = 32;
	si.id_is_app = true;
	strcpy(si.group, "sess");
	CHECK(session_add(t, &si) >= 0);
	n = mk_udp(buf, "2001:db8:1::2", "2001:db8:2::2", 40009, 444, psk_hello, sizeof(psk_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(G("sess")->dtls_blocked, 2);
	memset(&si, 0, sizeof(si));
	memcpy(si.id, psk_hello + 60, 32);	/* the hello's session ID: not the key */
	si.id_len = 32;
	strcpy(si.group, "reject");
	session_add(t, &si);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(G("reject")->dtls_blocked, 0);

	/* A first datagram that is no ClientHello (the client's NAT gave it a
	 * new port): the group of the tunnels from its address, not `clients`. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40100, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);		/* no tunnel from there: `clients`, relay */
	memset(&si, 0, sizeof(si));
	si.client.ss_family = AF_INET;
	inet_pton(AF_INET, "198.18.1.2", &((struct sockaddr_in *)(void *)&si.client)->sin_addr);
	strcpy(si.group, "sess");
	CHECK(session_add(t, &si) >= 0);
	unsigned blocked = G("sess")->dtls_blocked;
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540005);		/* its tunnel's group: blocked */
	CHECK_INT(G("sess")->dtls_blocked, blocked + 1);
	/* Two users behind that address in two groups: not known, `clients`. */
	strcpy(si.group, "relay");
	CHECK(session_add(t, &si) >= 0);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540003);
	dtlsq_state_free(s);
	session_table_free(t);
}

/* Issue 17: the lookup by client address only for DTLS, and rate-limited
 * per source and in all; without it only a block by `clients` holds. */
static void test_lookup_limits(struct policy *p)
{
	struct dtlsq_state *s = mk_state(443, 444);
	struct session_table *t = session_table_new(8);
	struct session_info si = { 0 };
	static const uint8_t junk[] = "junk, not DTLS";
	uint8_t buf[2048];
	struct nfq_verdict v;
	size_t n;
	int i, marked = 0, unmarked = 0;
	char src[32];

	memset(&cnt, 0, sizeof(cnt));
	si.client.ss_family = AF_INET;
	inet_pton(AF_INET, "198.18.1.2", &((struct sockaddr_in *)(void *)&si.client)->sin_addr);
	strcpy(si.group, "sess");	/* block; `clients` says relay */
	CHECK(session_add(t, &si) >= 0);
	dtlsq_state_set_sessions(s, t);

	/* Junk from there: no lookup, `clients` says relay, so no decision. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40200, 444, junk, sizeof(junk) - 1);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(!v.set_mark);
	CHECK_INT(cnt.lookups_limited, 0);
	/* Junk from a block group's `clients`: blocked all the same. */
	n = mk_udp(buf, "198.18.1.66", "198.18.2.2", 40201, 444, junk, sizeof(junk) - 1);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540005);

	/* DTLS records from one source: DTLSQ_LOOKUP_HOST_RATE lookups, then
	 * undecided (unmarked), counted; a second later it may look again. */
	for (i = 0; i < DTLSQ_LOOKUP_HOST_RATE + 5; i++) {
		n = mk_udp(buf, "198.18.1.2", "198.18.2.2", (uint16_t)(41000 + i), 444, app_record,
			   sizeof(app_record));
		v = run(s, p, buf, n, 0);
		if (v.set_mark && v.mark == 0x4d540005)
			marked++;
		else if (!v.set_mark && v.action == NFQ_ACCEPT)
			unmarked++;
	}
	CHECK_INT(marked, DTLSQ_LOOKUP_HOST_RATE);
	CHECK_INT(unmarked, 5);
	CHECK_INT(cnt.lookups_limited, 5);
	/* Another source is not held back by that one. */
	n = mk_udp(buf, "198.18.1.3", "198.18.2.2", 42000, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(cnt.lookups_limited, 5);
	/* A ClientHello by its session ID is never limited. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 42001, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(cnt.lookups_limited, 5);
	fake_ns += 1000000000ull;
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 42002, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(cnt.lookups_limited, 5);

	/* The total: many sources (one /24 apart, as a spoofed flood) spend
	 * DTLSQ_LOOKUP_RATE a second in all, then everyone waits. */
	fake_ns += 1000000000ull;
	for (i = 0; i < DTLSQ_LOOKUP_RATE + 10; i++) {
		snprintf(src, sizeof(src), "10.%d.%d.1", (i >> 8) & 255, i & 255);
		n = mk_udp(buf, src, "198.18.2.2", 43000, 444, app_record, sizeof(app_record));
		run(s, p, buf, n, 0);
	}
	CHECK_INT(cnt.lookups_limited, 5 + 10);
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 42003, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	CHECK_INT(cnt.lookups_limited, 5 + 11);
	dtlsq_state_free(s);
	session_table_free(t);
}

static void test_same_ports_and_others(struct policy *p)
{
	struct dtlsq_state *s = mk_state(443, 443);
	uint8_t buf[2048];
	size_t n;
	struct nfq_verdict v;
	static const uint8_t probe[] = "dtls-probe\n";
	uint8_t trunc[sizeof(legacy_hello)];

	memset(&cnt, 0, sizeof(cnt));
	/* Equal ports: relayed, never rewritten. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40000, 443, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("relay")->dtls_relayed, 1);
	CHECK_INT(G("relay")->dtls_port_rewritten, 0);
	/* The headend first: nothing to repair with one port. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.2", 443, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	CHECK_INT(G("relay")->dtls_repaired, 0);

	/* Not DTLS on the DTLS port from a block group's client: counted
	 * malformed, and blocked all the same (the group's policy does not rest
	 * on the payload: one junk datagram first must not open the flow). */
	n = mk_udp(buf, "198.18.1.66", "198.18.2.2", 40001, 443, probe, sizeof(probe) - 1);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);	/* the filter rules drop it, and remember */
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(cnt.malformed, 1);
	CHECK_INT(G("drop")->packets, 1);
	CHECK_INT(G("drop")->dtls_blocked, 1);

	/* A truncated ClientHello (record longer than the datagram) from a
	 * relay group's client: malformed, relayed and decided. */
	memcpy(trunc, legacy_hello, sizeof(trunc));
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40002, 443, trunc, 40);
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(cnt.malformed, 2);
	CHECK_INT(G("relay")->dtls_relayed, 3);

	/* An IP packet that does not parse: accepted unchanged, no mark. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40003, 443, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, 25, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(!v.set_mark);
	CHECK_INT(cnt.malformed, 3);
	buf[9] = 6;		/* TCP */
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	CHECK_INT(cnt.malformed, 4);

	/* Not the headend, or not a DTLS port: untouched and uncounted. */
	n = mk_udp(buf, "198.18.1.2", "198.18.3.2", 40004, 443, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40005, 53, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK(!v.set_mark);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(cnt.malformed, 4);
	CHECK_INT(cnt.nogroup, 0);
	CHECK_INT(G("relay")->packets, 3);
	dtlsq_state_free(s);
}

/* [queues] mark_mask = 0x7f0000 (a firewall whose policy routing owns
 * 0x3f00, as mwan3's does): decided 0x10000, normalize 0x20000, blocked
 * 0x40000, reject 0x80000, tag 0x400000; no bit outside the mask changes. */
static void test_mark_mask(struct policy *p)
{
	struct dtlsq_state *s = mk_state_marks(443, 444, 0x7f0000);
	uint8_t buf[2048];
	size_t n;
	struct nfq_verdict v;

	memset(&cnt, 0, sizeof(cnt));
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40000, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0x3f00);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(v.set_mark);
	CHECK_INT(v.mark, 0x433f00);
	CHECK_INT(G("relay")->dtls_port_rewritten, 1);
	/* Every bit outside the mask kept, the tag's and the flags' replaced. */
	n = mk_udp(buf, "2001:db8:1::2", "2001:db8:2::2", 40003, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0xffffffff);
	CHECK_INT(v.mark, 0xfff3ffff);
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40001, 443, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x410000);
	n = mk_udp(buf, "198.18.1.66", "198.18.2.2", 40004, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x450000);
	CHECK_INT(G("drop")->dtls_blocked, 1);
	n = mk_udp(buf, "2001:db8:1::102", "2001:db8:2::2", 40005, 443, legacy_hello,
		   sizeof(legacy_hello));
	v = run(s, p, buf, n, 0x100);
	CHECK_INT(v.mark, 0x4d0100);
	/* The headend's datagram toward a blocked client: dropped, no mark. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.130", 443, 40006, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0x450000);
	CHECK_INT(v.action, NFQ_DROP);
	CHECK(!v.set_mark);
	dtlsq_state_free(s);
}

static void set_mode(struct policy *p, enum group_mode m)
{
	for (size_t i = 0; i < policy_count(p); i++)
		((struct group *)policy_group(p, i))->mode = m;
}

/* mode = observe: the same datagrams as test_split_ports decide the same,
 * but every one is accepted with DECIDED alone (no DNAT, no block, no SNAT;
 * foreign mark bits kept), and the would_* counters say what enforce would
 * have done. Back in enforce, the next flow is changed again. */
static void test_observe(struct policy *p)
{
	struct dtlsq_state *s = mk_state(443, 444);
	uint8_t buf[2048];
	size_t n;
	struct nfq_verdict v;

	memset(&cnt, 0, sizeof(cnt));
	set_mode(p, MODE_OBSERVE);
	/* relay to the advertised port: no DNAT mark, would_dtls_port_fix. */
	n = mk_udp(buf, "198.18.1.2", "198.18.2.2", 40000, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0x130);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540131);
	CHECK_INT(G("relay")->dtls_relayed, 1);
	CHECK_INT(G("relay")->dtls_port_rewritten, 0);
	CHECK_INT(G("relay")->would_dtls_port_fix, 1);
	n = mk_udp(buf, "2001:db8:1::2", "2001:db8:2::2", 40003, 444, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("relay")->would_dtls_port_fix, 2);
	/* block (drop, reject; IPv4, IPv6): passes, would_dtls_block. */
	n = mk_udp(buf, "198.18.1.66", "198.18.2.2", 40004, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("drop")->dtls_blocked, 0);
	CHECK_INT(G("drop")->would_dtls_block, 1);
	n = mk_udp(buf, "2001:db8:1::102", "2001:db8:2::2", 40005, 443, legacy_hello,
		   sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("reject")->would_dtls_block, 1);
	/* The headend's answer to a blocked client: passes, unmarked. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.130", 443, 40006, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0x7);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK(!v.set_mark);
	CHECK_INT(G("reject")->would_dtls_block, 2);
	/* The headend from its real port: no SNAT mark, would_dtls_repair. */
	n = mk_udp(buf, "198.18.2.2", "198.18.1.2", 443, 40000, app_record, sizeof(app_record));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.action, NFQ_ACCEPT);
	CHECK_INT(v.mark, 0x4d540001);
	CHECK_INT(G("relay")->dtls_repaired, 0);
	CHECK_INT(G("relay")->would_dtls_repair, 1);
	/* Back to enforce (a reload): the same datagram is blocked again. */
	set_mode(p, MODE_ENFORCE);
	n = mk_udp(buf, "198.18.1.66", "198.18.2.2", 40004, 444, legacy_hello, sizeof(legacy_hello));
	v = run(s, p, buf, n, 0);
	CHECK_INT(v.mark, 0x4d540005);
	CHECK_INT(G("drop")->dtls_blocked, 1);
	CHECK_INT(G("drop")->would_dtls_block, 1);
	dtlsq_state_free(s);
}

int main(void)
{
	struct policy *p = mk_policy();

	load("tests/fuzz/corpus/fuzz_dtls/legacy_hello", legacy_hello, sizeof(legacy_hello));
	load("tests/fuzz/corpus/fuzz_dtls/psk_hello", psk_hello, sizeof(psk_hello));

	test_split_ports(p);
	test_sessions(p);
	test_lookup_limits(p);
	test_same_ports_and_others(p);
	test_mark_mask(p);
	test_observe(p);
	policy_free(p);
	return t_done("test_dtlsq");
}
