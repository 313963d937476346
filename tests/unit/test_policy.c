/* The compiled policy: prefix tables against a brute-force reference, name and
 * auth lookups, cross-group errors with exact messages, publication under threads. */
#include <arpa/inet.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conf/addr.h"
#include "conf/diag.h"
#include "policy/policy.h"
#include "tests/unit/t.h"

struct gset {
	struct group *g;
	size_t n, cap;
};

static uint64_t rng_next(uint64_t *s)
{
	/* xorshift64*: reproducible from the printed seed. */
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static unsigned rng_below(uint64_t *s, unsigned n)
{
	return (unsigned)(rng_next(s) % n);
}

static size_t gset_add(struct gset *s, const char *name, const char *auth, const char *file)
{
	struct group *g;

	if (s->n == s->cap) {
		s->cap = s->cap ? 2 * s->cap : 8;
		s->g = realloc(s->g, s->cap * sizeof(*s->g));
		if (!s->g)
			abort();
	}
	g = &s->g[s->n];
	memset(g, 0, sizeof(*g));
	snprintf(g->name, sizeof(g->name), "%s", name);
	snprintf(g->auth_group, sizeof(g->auth_group), "%s", auth);
	snprintf(g->file, sizeof(g->file), "%s", file);
	g->line_name = 2;
	g->line_pool = 4;
	g->line_clients = 5;
	g->mtu = 1400;
	return s->n++;
}

static void group_push(struct group *g, int clients, const struct prefix *p)
{
	struct prefix **v = clients ? &g->clients : &g->pools;
	size_t *n = clients ? &g->nclients : &g->npools;

	*v = realloc(*v, (*n + 1) * sizeof(**v));
	if (!*v)
		abort();
	(*v)[(*n)++] = *p;
}

static void group_push_text(struct group *g, int clients, const char *text)
{
	struct prefix p;

	if (prefix_parse(&p, text) != 0) {
		fprintf(stderr, "bad fixture prefix %s\n", text);
		abort();
	}
	group_push(g, clients, &p);
}

static int alen(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* Bit by bit, on purpose unlike the code under test. */
static bool ref_contains(const struct prefix *p, int family, const uint8_t *a)
{
	if (p->family != family)
		return false;
	for (unsigned i = 0; i < p->len; i++) {
		unsigned byte = i / 8, bit = 7 - i % 8;

		if (((p->addr[byte] >> bit) & 1) != ((a[byte] >> bit) & 1))
			return false;
	}
	return true;
}

/* Longest prefix wins; on a tie the earlier group, as "first group that matches". */
static const struct group *ref_lookup(const struct policy *p, int clients, int family,
				      const uint8_t *a)
{
	const struct group *best = NULL;
	int bestlen = -1;

	for (size_t i = 0; i < policy_count(p); i++) {
		const struct group *g = policy_group(p, i);
		const struct prefix *v = clients ? g->clients : g->pools;
		size_t n = clients ? g->nclients : g->npools;

		for (size_t j = 0; j < n; j++)
			if (ref_contains(&v[j], family, a) && (int)v[j].len > bestlen) {
				best = g;
				bestlen = v[j].len;
			}
	}
	return best;
}

static void prefix_mask(struct prefix *p)
{
	int bits = alen(p->family) * 8;

	for (int i = p->len; i < bits; i++)
		p->addr[i / 8] &= (uint8_t)~(1u << (7 - i % 8));
}

static void rand_prefix(struct prefix *p, uint64_t *rng)
{
	unsigned r = rng_below(rng, 16);

	memset(p, 0, sizeof(*p));
	p->family = rng_below(rng, 2) ? AF_INET : AF_INET6;
	for (int i = 0; i < 16; i++)
		p->addr[i] = (uint8_t)rng_next(rng);
	if (r == 0) {
		memset(p->addr, 0xff, sizeof(p->addr));	/* the top of the space */
	} else if (r == 1) {
		memset(p->addr, 0, sizeof(p->addr));
	} else if (r > 3 && p->family == AF_INET) {
		p->addr[0] = 198;
		p->addr[1] = 18 | (p->addr[1] & 1);
	} else if (r > 3) {
		memcpy(p->addr, "\x20\x01\x0d\xb8", 4);
		p->addr[4] = 0;
		p->addr[5] &= 3;
	}
	if (p->family == AF_INET)
		p->len = (uint8_t)(rng_below(rng, 8) == 0 ? rng_below(rng, 33) : 15 + rng_below(rng, 18));
	else
		p->len = (uint8_t)(rng_below(rng, 8) == 0 ? rng_below(rng, 129) : 32 + rng_below(rng, 97));
	prefix_mask(p);
}

/* A longer prefix inside parent (or parent itself at full length). */
static void rand_child(struct prefix *c, const struct prefix *parent, uint64_t *rng)
{
	int bits = alen(parent->family) * 8;

	*c = *parent;
	if (parent->len < bits)
		c->len = (uint8_t)(parent->len + 1 + rng_below(rng, (unsigned)(bits - parent->len)));
	for (int i = parent->len; i < c->len; i++)
		if (rng_below(rng, 2))
			c->addr[i / 8] |= (uint8_t)(1u << (7 - i % 8));
	prefix_mask(c);
}

static bool prefix_overlap(const struct prefix *a, const struct prefix *b)
{
	struct prefix s;

	if (a->family != b->family)
		return false;
	s = a->len < b->len ? *a : *b;
	return ref_contains(&s, a->family, a->len < b->len ? b->addr : a->addr);
}

/* Adds d (+1 or -1) to a big-endian address; false when it wraps. */
static bool addr_step(uint8_t *a, int n, int d)
{
	for (int i = n - 1; i >= 0; i--) {
		if (d > 0 && a[i]++ != 0xff)
			return true;
		if (d < 0 && a[i]-- != 0)
			return true;
	}
	return false;
}

/* The first and last address of p, and one outside on either side. */
static int prefix_edges(const struct prefix *p, uint8_t out[4][16])
{
	int n = alen(p->family), k = 0;
	uint8_t first[16], last[16];

	memcpy(first, p->addr, 16);
	memcpy(last, p->addr, 16);
	for (int i = p->len; i < n * 8; i++)
		last[i / 8] |= (uint8_t)(1u << (7 - i % 8));
	memcpy(out[k++], first, 16);
	memcpy(out[k++], last, 16);
	memcpy(out[k], first, 16);
	if (addr_step(out[k], n, -1))
		k++;
	memcpy(out[k], last, 16);
	if (addr_step(out[k], n, +1))
		k++;
	return k;
}

static int lookup_compare(const struct policy *p, int clients, int family, const uint8_t *a,
			  size_t *mismatches)
{
	const struct group *got = clients ? policy_by_clients(p, family, a)
					  : policy_by_pool(p, family, a);
	const struct group *want = ref_lookup(p, clients, family, a);

	if (got != want) {
		char buf[INET6_ADDRSTRLEN];

		if (*mismatches < 5)
			fprintf(stderr, "%s %s: got %s, want %s\n", clients ? "clients" : "pool",
				inet_ntop(family, a, buf, sizeof(buf)), got ? got->name : "-",
				want ? want->name : "-");
		(*mismatches)++;
	}
	return want != NULL;
}

/* Random groups: clients nest freely across groups (and repeat), pools nest
 * only inside one group since overlap across groups is a compile error. */
static void test_random_tables(uint64_t seed)
{
	uint64_t rng = seed;
	size_t addrs = 0, hits = 0;

	for (int round = 0; round < 60; round++) {
		struct gset s = { 0 };
		struct diag d = { 0 };
		size_t ngroups = 1 + rng_below(&rng, 40), nprefix = 1 + rng_below(&rng, 250);
		size_t mism[2] = { 0, 0 };
		struct prefix *all[2];
		size_t nall[2] = { 0, 0 };
		struct policy *p;

		for (size_t i = 0; i < ngroups; i++) {
			char name[32];

			snprintf(name, sizeof(name), "g%02zu", i);
			gset_add(&s, name, name, "groups.d/x.conf");
		}
		all[0] = calloc(nprefix, sizeof(struct prefix));
		all[1] = calloc(nprefix, sizeof(struct prefix));
		for (int clients = 0; clients < 2; clients++) {
			size_t *owner = calloc(nprefix, sizeof(*owner));

			for (size_t k = 0; k < nprefix; k++) {
				struct prefix c;
				size_t gi = rng_below(&rng, (unsigned)ngroups);
				unsigned how = nall[clients] ? rng_below(&rng, 10) : 9;
				bool clash = false;

				if (how < 4) {
					size_t par = rng_below(&rng, (unsigned)nall[clients]);

					rand_child(&c, &all[clients][par], &rng);
					if (!clients)
						gi = owner[par];
				} else if (how == 4 && clients) {
					c = all[clients][rng_below(&rng, (unsigned)nall[clients])];
				} else {
					rand_prefix(&c, &rng);
				}
				for (size_t j = 0; !clients && j < nall[0]; j++)
					if (owner[j] != gi && prefix_overlap(&c, &all[0][j]))
						clash = true;
				if (clash)
					continue;
				owner[nall[clients]] = gi;
				all[clients][nall[clients]++] = c;
				group_push(&s.g[gi], clients, &c);
			}
			free(owner);
		}
		p = policy_compile(s.g, s.n, &d);
		CHECK(p != NULL);
		CHECK_INT(diag_count(&d), 0);
		if (diag_count(&d))
			diag_print(&d, stderr);
		diag_free(&d);
		if (!p)
			continue;
		for (int clients = 0; clients < 2; clients++) {
			for (size_t k = 0; k < nall[clients]; k++) {
				uint8_t edge[4][16];
				int ne = prefix_edges(&all[clients][k], edge);

				for (int e = 0; e < ne; e++) {
					hits += lookup_compare(p, clients, all[clients][k].family, edge[e],
							       &mism[clients]);
					addrs++;
				}
			}
			for (int k = 0; k < 3000; k++) {
				uint8_t a[16];
				int family = rng_below(&rng, 2) ? AF_INET : AF_INET6;
				unsigned how = rng_below(&rng, 3);

				for (int i = 0; i < 16; i++)
					a[i] = (uint8_t)rng_next(&rng);
				if (how == 0 && family == AF_INET) {
					a[0] = 198;
					a[1] = 18 | (a[1] & 1);
				} else if (how == 0) {
					memcpy(a, "\x20\x01\x0d\xb8\x00", 5);
					a[5] &= 3;
				} else if (how == 1 && nall[clients]) {
					/* Inside a random prefix of the table, same family. */
					const struct prefix *q = &all[clients][rng_below(&rng,
										(unsigned)nall[clients])];

					family = q->family;
					for (int i = 0; i < q->len; i++) {
						uint8_t m = (uint8_t)(1u << (7 - i % 8));

						a[i / 8] = (uint8_t)((a[i / 8] & ~m) | (q->addr[i / 8] & m));
					}
				}
				hits += lookup_compare(p, clients, family, a, &mism[clients]);
				addrs++;
			}
		}
		CHECK_INT(mism[0], 0);
		CHECK_INT(mism[1], 0);
		free(all[0]);
		free(all[1]);
		policy_free(p);
	}
	printf("random tables: %zu addresses compared with the reference, %zu matched a group\n",
	       addrs, hits);
	CHECK(hits > addrs / 4);	/* the addresses really exercise the tables */
}

static struct policy *compile_ok(struct gset *s)
{
	struct diag d = { 0 };
	struct policy *p = policy_compile(s->g, s->n, &d);

	CHECK(p != NULL);
	CHECK_INT(diag_count(&d), 0);
	diag_print(&d, stderr);
	diag_free(&d);
	return p;
}

static const char *lookup_name(const struct group *g)
{
	return g ? g->name : "(none)";
}

static const struct group *pool_text(const struct policy *p, int clients, const char *text)
{
	struct ipaddr a;

	if (addr_parse(&a, text) != 0)
		abort();
	return clients ? policy_by_clients(p, a.family, a.addr) : policy_by_pool(p, a.family, a.addr);
}

static unsigned slot_by_length(void *arg, const char *name)
{
	return (unsigned)strlen(name) + *(unsigned *)arg;
}

static void test_fixed_tables(void)
{
	struct gset s = { 0 };
	struct policy *p;
	unsigned base = 100;
	static const uint8_t v4[4] = { 192, 0, 2, 1 };

	/* Files come in name order; group names need not follow it. */
	gset_add(&s, "tlsonly", "TLS-Only", "groups.d/10-tls.conf");
	group_push_text(&s.g[0], 0, "192.0.2.128/26");
	group_push_text(&s.g[0], 0, "2001:db8:0:80::/64");
	group_push_text(&s.g[0], 1, "198.18.1.0/24");
	gset_add(&s, "dtls", "dtls-group", "groups.d/20-dtls.conf");
	group_push_text(&s.g[1], 0, "192.0.2.0/25");
	group_push_text(&s.g[1], 0, "192.0.2.0/26");	/* nested in its own group: fine */
	group_push_text(&s.g[1], 0, "255.255.255.255/32");
	group_push_text(&s.g[1], 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128");
	group_push_text(&s.g[1], 1, "198.18.0.0/15");
	group_push_text(&s.g[1], 1, "0.0.0.0/0");
	gset_add(&s, "noauth", "", "groups.d/30-noauth.conf");
	group_push_text(&s.g[2], 0, "0.0.0.0/32");
	group_push_text(&s.g[2], 0, "::/128");
	group_push_text(&s.g[2], 1, "198.18.1.0/24");	/* same as tlsonly: the first group wins */
	group_push_text(&s.g[2], 1, "2001:db8::/32");
	p = compile_ok(&s);
	if (!p)
		return;

	CHECK_INT(policy_count(p), 3);
	CHECK_STR(policy_group(p, 1)->name, "dtls");
	CHECK(policy_group(p, 3) == NULL);
	for (unsigned i = 0; i < 3; i++)
		CHECK_INT(policy_group(p, i)->index, i);
	policy_assign_slots(p, slot_by_length, &base);
	CHECK_INT(policy_group(p, 0)->slot, 107);
	CHECK_INT(policy_group(p, 2)->slot, 106);

	CHECK_STR(lookup_name(pool_text(p, 0, "192.0.2.127")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 0, "192.0.2.128")), "tlsonly");
	CHECK_STR(lookup_name(pool_text(p, 0, "192.0.2.191")), "tlsonly");
	CHECK_STR(lookup_name(pool_text(p, 0, "192.0.2.192")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "192.0.2.0")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 0, "192.0.1.255")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "255.255.255.255")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 0, "255.255.255.254")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "0.0.0.0")), "noauth");
	CHECK_STR(lookup_name(pool_text(p, 0, "0.0.0.1")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "2001:db8:0:80::")), "tlsonly");
	CHECK_STR(lookup_name(pool_text(p, 0, "2001:db8:0:80:ffff:ffff:ffff:ffff")), "tlsonly");
	CHECK_STR(lookup_name(pool_text(p, 0, "2001:db8:0:81::")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "2001:db8:0:7f:ffff:ffff:ffff:ffff")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 0, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe")), "(none)");
	CHECK_STR(lookup_name(pool_text(p, 0, "::")), "noauth");
	CHECK_STR(lookup_name(pool_text(p, 0, "::1")), "(none)");

	CHECK_STR(lookup_name(pool_text(p, 1, "198.18.1.7")), "tlsonly");
	CHECK_STR(lookup_name(pool_text(p, 1, "198.18.2.7")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 1, "198.19.255.255")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 1, "203.0.113.9")), "dtls");
	CHECK_STR(lookup_name(pool_text(p, 1, "2001:db8:ffff::1")), "noauth");
	CHECK_STR(lookup_name(pool_text(p, 1, "2001:db9::1")), "(none)");
	CHECK(policy_by_pool(p, AF_UNIX, v4) == NULL);

	/* The proxy passes a slice of its buffer, not a C string. */
	{
		const char *xml = "<group-select>TLS-Only</group-select>";

		CHECK_STR(lookup_name(policy_by_auth(p, xml + 14, 8)), "tlsonly");
		CHECK(policy_by_auth(p, xml + 14, 7) == NULL);
		CHECK(policy_by_auth(p, xml + 14, 9) == NULL);
		CHECK(policy_by_auth(p, xml + 14, 0) == NULL);
		CHECK(policy_by_auth(p, "tls-only", 8) == NULL);
		CHECK_STR(lookup_name(policy_by_auth(p, "dtls-group", 10)), "dtls");
		CHECK(policy_by_auth(p, "noauth", 6) == NULL);
		CHECK(policy_by_auth(p, "dtls", 4) == NULL);
	}
	CHECK_STR(lookup_name(policy_by_name(p, "noauth")), "noauth");
	CHECK_STR(lookup_name(policy_by_name(p, "tlsonly")), "tlsonly");
	CHECK_STR(lookup_name(policy_by_name(p, "dtls")), "dtls");
	CHECK(policy_by_name(p, "dtl") == NULL);
	CHECK(policy_by_name(p, "") == NULL);
	CHECK(policy_by_name(p, "zzz") == NULL);
	policy_free(p);

	/* An empty policy is valid: nothing matches. */
	{
		struct diag d = { 0 };

		p = policy_compile(NULL, 0, &d);
		CHECK(p != NULL);
		CHECK_INT(diag_count(&d), 0);
		if (p) {
			CHECK(policy_by_pool(p, AF_INET, v4) == NULL);
			CHECK(policy_by_clients(p, AF_INET, v4) == NULL);
			CHECK(policy_by_name(p, "x") == NULL);
			CHECK(policy_by_auth(p, "x", 1) == NULL);
			CHECK_INT(policy_count(p), 0);
		}
		policy_free(p);
		diag_free(&d);
	}
}

static void test_errors(void)
{
	struct gset s = { 0 };
	struct diag d = { 0 };
	struct policy *p;
	static const char *want[] = {
		"groups.d/c.conf:2: duplicate group name 'alpha' (first in groups.d/a.conf:2)",
		"groups.d/d.conf:3: duplicate auth_group 'beta' (also group 'beta' in groups.d/b.conf:2)",
		"groups.d/d.conf:6: pool 2001:db8:1:80::/64 overlaps pool 2001:db8:1::/48 of group 'alpha' (groups.d/a.conf:4)",
		"groups.d/e.conf:4: pool 192.0.2.128/26 overlaps pool 192.0.2.0/24 of group 'alpha' (groups.d/a.conf:4)",
		"groups.d/e.conf:4: pool 192.0.2.128/26 overlaps pool 192.0.2.0/24 of group 'beta' (groups.d/b.conf:4)",
		"groups.d/e.conf:4: pool 198.18.0.0/16 overlaps pool 198.18.5.0/24 of group 'alpha' (groups.d/c.conf:4)",
		"groups.d/g.conf:4: pool 192.0.2.0/24 is also claimed by group 'alpha' (groups.d/a.conf:4);"
		" groups may share a pool only when each sets its own auth_group",
		"groups.d/g.conf:4: pool 192.0.2.0/24 is also claimed by group 'beta' (groups.d/b.conf:4);"
		" groups may share a pool only when each sets its own auth_group",
		"groups.d/g.conf:4: pool 192.0.2.0/24 overlaps pool 192.0.2.128/26 of group 'epsilon' (groups.d/e.conf:4)",
	};
	size_t nwant = sizeof(want) / sizeof(want[0]);

	gset_add(&s, "alpha", "alpha", "groups.d/a.conf");
	group_push_text(&s.g[0], 0, "192.0.2.0/24");
	group_push_text(&s.g[0], 0, "2001:db8:1::/48");
	group_push_text(&s.g[0], 1, "198.18.1.0/24");
	gset_add(&s, "beta", "beta", "groups.d/b.conf");
	s.g[0].line_auth = s.g[1].line_auth = 3;
	group_push_text(&s.g[1], 0, "192.0.2.0/24");	/* shared by two auth_groups: no error */
	group_push_text(&s.g[1], 1, "198.18.1.0/24");	/* shared clients are no error */
	gset_add(&s, "alpha", "gamma", "groups.d/c.conf");
	group_push_text(&s.g[2], 0, "198.18.5.0/24");
	gset_add(&s, "delta", "beta", "groups.d/d.conf");
	s.g[3].line_name = 3;
	s.g[3].line_pool = 6;
	group_push_text(&s.g[3], 0, "2001:db8:1:80::/64");
	gset_add(&s, "epsilon", "", "groups.d/e.conf");
	group_push_text(&s.g[4], 0, "192.0.2.128/26");
	group_push_text(&s.g[4], 0, "198.18.0.0/16");
	gset_add(&s, "zeta", "", "groups.d/f.conf");	/* two groups without auth_group: fine */
	group_push_text(&s.g[5], 0, "198.19.0.0/16");
	group_push_text(&s.g[5], 0, "198.19.1.0/24");
	group_push_text(&s.g[5], 0, "198.19.1.0/24");
	gset_add(&s, "eta", "eta", "groups.d/g.conf");	/* auth_group not set: it may not share */
	group_push_text(&s.g[6], 0, "192.0.2.0/24");

	p = policy_compile(s.g, s.n, &d);
	CHECK(p == NULL);
	CHECK_INT(diag_count(&d), nwant);
	for (size_t i = 0; i < nwant && i < diag_count(&d); i++)
		CHECK_STR(d.msgs[i], want[i]);
	if (diag_count(&d) != nwant)
		diag_print(&d, stderr);
	diag_free(&d);
	policy_free(p);
}

/* Groups told apart by auth_group share a pool: an address no tunnel
 * claimed goes to the smallest MTU among them (then the earlier group);
 * nested pools, and groups without auth_group, are still errors. */
static void test_shared_pool(void)
{
	struct gset s = { 0 };
	struct diag d = { 0 };
	struct policy *p;
	const struct group *relay, *block, *other;
	uint8_t in[4] = { 192, 0, 2, 77 }, out[4] = { 192, 0, 3, 1 }, six[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 9 };

	gset_add(&s, "relay", "Relay-Users", "groups.d/10-relay.conf");
	s.g[0].mtu = 1460;
	group_push_text(&s.g[0], 0, "192.0.2.0/24");
	group_push_text(&s.g[0], 0, "2001:db8:9::/48");
	gset_add(&s, "block", "TLS-Only", "groups.d/20-block.conf");
	s.g[1].mtu = 1380;
	group_push_text(&s.g[1], 0, "192.0.2.0/24");
	gset_add(&s, "other", "Other", "groups.d/30-other.conf");
	s.g[2].mtu = 1300;
	group_push_text(&s.g[2], 0, "192.0.3.0/24");
	s.g[0].line_auth = s.g[1].line_auth = s.g[2].line_auth = 3;
	p = policy_compile(s.g, s.n, &d);
	CHECK(p != NULL);
	CHECK_INT(diag_count(&d), 0);
	diag_free(&d);
	if (!p)
		return;
	relay = policy_by_name(p, "relay");
	block = policy_by_name(p, "block");
	other = policy_by_name(p, "other");
	CHECK(relay && block && other);
	CHECK(relay->pool_shared && block->pool_shared && !other->pool_shared);
	CHECK(policy_by_pool(p, AF_INET, in) == block);
	CHECK(policy_by_pool(p, AF_INET, out) == other);
	CHECK(policy_by_pool(p, AF_INET6, six) == relay);
	CHECK(group_has_addr(relay, AF_INET, in) && group_has_addr(block, AF_INET, in));
	CHECK(!group_has_addr(other, AF_INET, in) && group_has_addr(relay, AF_INET6, six));
	CHECK(!group_has_addr(block, AF_INET6, six));
	policy_free(p);
}

static void file_write(const char *dir, const char *name, const char *text)
{
	char path[512];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	if (!f)
		abort();
	fputs(text, f);
	fclose(f);
}

static void file_remove(const char *dir, const char *name)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
}

/* Through the real group-file parser: the message names files and lines as
 * the user wrote them, and the later file in name order carries the error. */
static void test_load_dir(void)
{
	char dir[] = "/tmp/test_policy.XXXXXX";
	static const char *names[] = { "10-alpha.conf", "20-beta.conf", "30-gamma.conf" };
	char want[3][1024];
	struct diag d = { 0 };
	struct policy *p;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	file_write(dir, names[0], "[group]\nname = alpha\nmtu = 1400\n"
				  "pool = 192.0.2.0/25, 2001:db8:1::/48\n");
	file_write(dir, names[1], "; overlaps alpha twice\n[group]\nname = beta\n"
				  "auth_group = alpha\nmtu = 1400\n\n"
				  "pool = 192.0.2.64/26, 2001:db8::/32\n");
	file_write(dir, names[2], "[group]\nname = alpha\nmtu = 1400\npool = 198.18.9.0/24\n");
	/* struct group keeps no auth_group line: the name line stands for it. */
	snprintf(want[0], sizeof(want[0]),
		 "%s/20-beta.conf:3: duplicate auth_group 'alpha' (also group 'alpha' in %s/10-alpha.conf:2)",
		 dir, dir);
	snprintf(want[1], sizeof(want[1]),
		 "%s/20-beta.conf:7: pool 192.0.2.64/26 overlaps pool 192.0.2.0/25 of group 'alpha' (%s/10-alpha.conf:4)",
		 dir, dir);
	snprintf(want[2], sizeof(want[2]),
		 "%s/20-beta.conf:7: pool 2001:db8::/32 overlaps pool 2001:db8:1::/48 of group 'alpha' (%s/10-alpha.conf:4)",
		 dir, dir);
	p = policy_load_dir(dir, &d);
	CHECK(p == NULL);
	/* The duplicate name (gamma's file) and gamma's auth_group defaulting to it. */
	CHECK_INT(diag_count(&d), 5);
	for (size_t i = 0; i < 3 && i < diag_count(&d); i++)
		CHECK_STR(d.msgs[i], want[i]);
	if (diag_count(&d) == 5) {
		char w[1024];

		snprintf(w, sizeof(w),
			 "%s/30-gamma.conf:2: duplicate group name 'alpha' (first in %s/10-alpha.conf:2)",
			 dir, dir);
		CHECK_STR(d.msgs[3], w);
		snprintf(w, sizeof(w),
			 "%s/30-gamma.conf:2: duplicate auth_group 'alpha' (also group 'alpha' in %s/10-alpha.conf:2)",
			 dir, dir);
		CHECK_STR(d.msgs[4], w);
	} else {
		diag_print(&d, stderr);
	}
	diag_free(&d);
	policy_free(p);

	/* Fixed, the same directory compiles and answers. */
	file_write(dir, names[1], "[group]\nname = beta\nmtu = 1400\n"
				  "pool = 192.0.2.128/26, 2001:db8:2::/48\n");
	file_write(dir, names[2], "[group]\nname = gamma\nmtu = 1400\npool = 198.18.9.0/24\n"
				  "clients = 198.18.0.0/15\n");
	p = policy_load_dir(dir, &d);
	CHECK(p != NULL);
	CHECK_INT(diag_count(&d), 0);
	diag_print(&d, stderr);
	if (p) {
		CHECK_STR(lookup_name(pool_text(p, 0, "192.0.2.130")), "beta");
		CHECK_STR(lookup_name(pool_text(p, 0, "2001:db8:1::9")), "alpha");
		CHECK_STR(lookup_name(pool_text(p, 1, "198.19.0.1")), "gamma");
		CHECK_STR(lookup_name(policy_by_auth(p, "beta", 4)), "beta");
	}
	policy_free(p);
	diag_free(&d);
	for (int i = 0; i < 3; i++) {
		char path[512];

		snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
		unlink(path);
	}
	rmdir(dir);
}

#define READERS 3
#define SWAPS 10000

struct box_run {
	struct policy_box *box;
	atomic_int stop;
	atomic_int ready;	/* readers through their first hold */
	long holds[READERS];
	long bad[READERS];
	unsigned seen[READERS];
};

struct reader_arg {
	struct box_run *run;
	int id;
};

static struct policy *policy_gen(unsigned gen)
{
	struct gset s = { 0 };
	struct diag d = { 0 };
	struct policy *p;

	gset_add(&s, "g", "g", "groups.d/g.conf");
	s.g[0].mtu = gen;
	group_push_text(&s.g[0], 0, "192.0.2.0/24");
	p = policy_compile(s.g, s.n, &d);
	diag_free(&d);
	return p;
}

/* One hold per batch of lookups, as a packet thread does; the generation a
 * reader sees never goes backwards. */
static void *reader(void *v)
{
	struct reader_arg *a = v;
	struct box_run *r = a->run;
	static const uint8_t addr[4] = { 192, 0, 2, 77 };
	unsigned last = 0;

	while (!atomic_load(&r->stop)) {
		struct policy *p = policy_hold(r->box);

		for (int k = 0; k < 8; k++) {
			const struct group *g = policy_by_pool(p, AF_INET, addr);

			if (!g || g != policy_group(p, 0) || g->mtu < last)
				r->bad[a->id]++;
			if (g && g->mtu > last) {
				last = g->mtu;
				r->seen[a->id]++;
			}
		}
		policy_release(p);
		if (r->holds[a->id]++ == 0)
			atomic_fetch_add(&r->ready, 1);
	}
	return NULL;
}

static void test_box_threads(void)
{
	struct box_run r = { 0 };
	struct reader_arg args[READERS];
	pthread_t th[READERS];
	int bad_swaps = 0;

	r.box = policy_box_new(policy_gen(1));
	CHECK(r.box != NULL);
	if (!r.box)
		return;
	for (int i = 0; i < READERS; i++) {
		args[i] = (struct reader_arg){ &r, i };
		pthread_create(&th[i], NULL, reader, &args[i]);
	}
	/* The swaps start once every reader reads: on a loaded machine a thread
	 * may otherwise first run after the last swap (10 s at most). */
	for (int spin = 0; atomic_load(&r.ready) < READERS && spin < 10000; spin++)
		usleep(1000);
	for (unsigned gen = 2; gen <= SWAPS + 1; gen++) {
		struct policy *np = policy_gen(gen);

		if (!np) {
			bad_swaps++;
			continue;
		}
		policy_box_swap(r.box, np);
	}
	atomic_store(&r.stop, 1);
	for (int i = 0; i < READERS; i++)
		pthread_join(th[i], NULL);
	CHECK_INT(bad_swaps, 0);
	for (int i = 0; i < READERS; i++) {
		CHECK(r.holds[i] > 0);
		CHECK_INT(r.bad[i], 0);
		printf("box reader %d: %ld holds, %u generations seen\n", i, r.holds[i], r.seen[i]);
	}
	{
		struct policy *p = policy_hold(r.box);

		CHECK_INT(policy_group(p, 0)->mtu, SWAPS + 1);
		policy_release(p);
	}
	policy_box_free(r.box);
}

/* mode = enforce | observe: enforce by default, a bad value named at its line,
 * and the mode carried into the compiled policy. */
static void test_mode(void)
{
	char dir[] = "/tmp/test_policy.XXXXXX";
	char want[1024];
	struct diag d = { 0 };
	struct policy *p;

	if (!mkdtemp(dir)) {
		CHECK(0);
		return;
	}
	file_write(dir, "a.conf", "[group]\nname = a\nmtu = 1400\npool = 192.0.2.0/25\n");
	file_write(dir, "b.conf", "[group]\nname = b\nmtu = 1400\npool = 192.0.2.128/25\n"
				  "mode = Observe\n");
	p = policy_load_dir(dir, &d);
	CHECK(p != NULL);
	if (p) {
		CHECK_INT(policy_by_name(p, "a")->mode, MODE_ENFORCE);
		CHECK_INT(policy_by_name(p, "b")->mode, MODE_OBSERVE);
		policy_free(p);
	}
	file_write(dir, "b.conf", "[group]\nname = b\nmtu = 1400\npool = 192.0.2.128/25\n"
				  "mode = dryrun\n");
	p = policy_load_dir(dir, &d);
	CHECK(p == NULL);
	snprintf(want, sizeof(want), "%s/b.conf:5: invalid mode 'dryrun': expected enforce or observe",
		 dir);
	CHECK_INT(diag_count(&d), 1);
	if (diag_count(&d) == 1)
		CHECK_STR(d.msgs[0], want);
	diag_free(&d);
	file_remove(dir, "a.conf");
	file_remove(dir, "b.conf");
	rmdir(dir);
}

int main(int argc, char **argv)
{
	uint64_t seed = argc > 1 ? strtoull(argv[1], NULL, 0) : 0x6d7475676174ULL;

	printf("seed 0x%llx\n", (unsigned long long)seed);
	test_fixed_tables();
	test_errors();
	test_shared_pool();
	test_load_dir();
	test_mode();
	test_random_tables(seed ? seed : 1);
	test_box_threads();
	return t_done("test_policy");
}
