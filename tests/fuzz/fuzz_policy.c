/*
 * libFuzzer: random groups (names, auth_group values, pool and clients
 * prefixes of both families) compiled into a policy, then every lookup
 * compared with a brute-force scan of the same prefixes: longest prefix wins,
 * the earlier group among identical ones (a shared pool: the smallest mtu
 * first). The compile must fail exactly when two groups claim overlapping
 * pools (other than one prefix named by two auth_groups) or share a name or
 * auth_group.
 * policy_by_auth also gets the raw tail of the input as a key.
 *
 * Input: n-1, then per group: name id, auth length + bytes, pool count +
 * prefixes, clients count + prefixes (a prefix: family/length byte, then 4 or
 * 16 address bytes); the rest is probe addresses, then an auth key.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/addr.h"
#include "conf/diag.h"
#include "policy/policy.h"

#define MAX_GROUPS 8
#define MAX_PREFIXES 5

struct reader {
	const uint8_t *p;
	size_t left;
};

static uint8_t rd_byte(struct reader *r)
{
	if (!r->left)
		return 0;
	r->left--;
	return *r->p++;
}

static void rd_bytes(struct reader *r, uint8_t *out, size_t n)
{
	for (size_t i = 0; i < n; i++)
		out[i] = rd_byte(r);
}

/* Clears the bits past len, as prefix_parse guarantees. */
static void bits_mask(uint8_t *addr, unsigned nbytes, unsigned len)
{
	for (unsigned i = 0; i < nbytes; i++) {
		unsigned keep = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;

		addr[i] &= (uint8_t)(0xff00u >> keep);
	}
}

/* Whether the first len bits of a and b agree (the brute force's own test). */
static bool bits_equal(const uint8_t *a, const uint8_t *b, unsigned len)
{
	for (unsigned i = 0; i < len; i++) {
		unsigned sh = 7 - i % 8;

		if (((a[i / 8] >> sh) & 1) != ((b[i / 8] >> sh) & 1))
			return false;
	}
	return true;
}

static void rd_prefix(struct reader *r, struct prefix *p)
{
	uint8_t b = rd_byte(r);

	memset(p, 0, sizeof(*p));
	if (b & 0x80) {
		p->family = AF_INET6;
		p->len = (uint8_t)((b & 0x7f) % 129);
		rd_bytes(r, p->addr, 16);
		bits_mask(p->addr, 16, p->len);
	} else {
		p->family = AF_INET;
		p->len = (uint8_t)(b % 33);
		rd_bytes(r, p->addr, 4);
		bits_mask(p->addr, 4, p->len);
	}
}

static struct prefix *rd_prefixes(struct reader *r, size_t *n)
{
	struct prefix *v;

	*n = rd_byte(r) % (MAX_PREFIXES + 1);
	v = calloc(*n ? *n : 1, sizeof(*v));
	if (!v)
		abort();
	for (size_t i = 0; i < *n; i++)
		rd_prefix(r, &v[i]);
	return v;
}

/* The group whose prefixes match addr longest; on a tie of pools (a shared
 * one) the smallest mtu, then the earliest; of clients the earliest. */
static int brute_lookup(const struct group *g, size_t n, bool clients, int family,
			const uint8_t *addr)
{
	int best = -1, best_len = -1;

	for (size_t i = 0; i < n; i++) {
		const struct prefix *ps = clients ? g[i].clients : g[i].pools;
		size_t np = clients ? g[i].nclients : g[i].npools;

		for (size_t j = 0; j < np; j++)
			if (ps[j].family == family && bits_equal(ps[j].addr, addr, ps[j].len) &&
			    (ps[j].len > best_len || (!clients && ps[j].len == best_len &&
						       g[i].mtu < g[best].mtu))) {
				best = (int)i;
				best_len = ps[j].len;
			}
	}
	return best;
}

static bool brute_conflict(const struct group *g, size_t n)
{
	for (size_t i = 0; i < n; i++)
		for (size_t k = i + 1; k < n; k++) {
			if (!strcmp(g[i].name, g[k].name))
				return true;
			if (g[i].auth_group[0] && !strcmp(g[i].auth_group, g[k].auth_group))
				return true;
			for (size_t a = 0; a < g[i].npools; a++)
				for (size_t b = 0; b < g[k].npools; b++) {
					const struct prefix *x = &g[i].pools[a], *y = &g[k].pools[b];

					/* the same prefix may be shared by two auth_groups */
					if (x->family == y->family && x->len == y->len &&
					    g[i].auth_group[0] && g[k].auth_group[0] &&
					    bits_equal(x->addr, y->addr, x->len))
						continue;
					if (x->family == y->family &&
					    bits_equal(x->addr, y->addr, x->len < y->len ? x->len : y->len))
						return true;
				}
		}
	return false;
}

static void check_addr(const struct policy *p, const struct group *g, size_t n, int family,
		       const uint8_t *addr)
{
	const struct group *got = policy_by_pool(p, family, addr);
	int want = brute_lookup(g, n, false, family, addr);

	if (want < 0 ? got != NULL : !got || strcmp(got->name, g[want].name))
		abort();
	got = policy_by_clients(p, family, addr);
	want = brute_lookup(g, n, true, family, addr);
	if (want < 0 ? got != NULL : !got || strcmp(got->name, g[want].name))
		abort();
}

/* addr + delta (-1 or +1) within the family's width, wrapping. */
static void addr_step(uint8_t *addr, unsigned nbytes, int delta)
{
	for (unsigned i = nbytes; i-- > 0;) {
		uint8_t old = addr[i];

		addr[i] = (uint8_t)(old + delta);
		if ((delta > 0 && addr[i] != 0) || (delta < 0 && old != 0))
			break;
	}
}

/* A prefix's first and last addresses and their neighbours: every boundary. */
static void check_edges(const struct policy *p, const struct group *g, size_t n,
			const struct prefix *px)
{
	unsigned nb = px->family == AF_INET ? 4 : 16;
	uint8_t a[16];

	memcpy(a, px->addr, 16);
	check_addr(p, g, n, px->family, a);
	addr_step(a, nb, -1);
	check_addr(p, g, n, px->family, a);
	memcpy(a, px->addr, 16);
	for (unsigned i = px->len; i < 8 * nb; i++)
		a[i / 8] |= (uint8_t)(1u << (7 - i % 8));
	check_addr(p, g, n, px->family, a);
	addr_step(a, nb, 1);
	check_addr(p, g, n, px->family, a);
}

static void check_auth(const struct policy *p, const struct group *g, size_t n, const char *key,
		       size_t len)
{
	const struct group *got = policy_by_auth(p, key, len);
	const struct group *want = NULL;

	for (size_t i = 0; i < n; i++)
		if (len && strlen(g[i].auth_group) == len && !memcmp(g[i].auth_group, key, len))
			want = &g[i];
	if (want ? !got || strcmp(got->name, want->name) : got != NULL)
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t len)
{
	struct reader r = { data, len };
	size_t n = 1 + rd_byte(&r) % MAX_GROUPS;
	struct group *groups = calloc(n, sizeof(*groups));
	struct group shadow[MAX_GROUPS];
	struct diag d = { 0 };
	struct policy *p;
	bool conflict;

	if (!groups)
		return 0;
	for (size_t i = 0; i < n; i++) {
		struct group *g = &groups[i];
		uint8_t alen;

		snprintf(g->name, sizeof(g->name), "g%u", rd_byte(&r) % 16u);
		alen = rd_byte(&r) % 9;
		rd_bytes(&r, (uint8_t *)g->auth_group, alen);	/* an embedded NUL shortens it */
		g->line_auth = alen ? 3 : 0;
		snprintf(g->file, sizeof(g->file), "fuzz-%zu.conf", i);
		g->line_name = 2;
		g->line_pool = 3;
		g->line_clients = 4;
		g->mtu = 1300;
		g->pools = rd_prefixes(&r, &g->npools);
		g->clients = rd_prefixes(&r, &g->nclients);
	}
	/* policy_compile owns groups[] from here on; keep a copy to compare with. */
	memcpy(shadow, groups, n * sizeof(*groups));
	for (size_t i = 0; i < n; i++) {
		shadow[i].pools = malloc((shadow[i].npools + 1) * sizeof(struct prefix));
		shadow[i].clients = malloc((shadow[i].nclients + 1) * sizeof(struct prefix));
		if (!shadow[i].pools || !shadow[i].clients)
			abort();
		memcpy(shadow[i].pools, groups[i].pools, shadow[i].npools * sizeof(struct prefix));
		memcpy(shadow[i].clients, groups[i].clients,
		       shadow[i].nclients * sizeof(struct prefix));
	}
	conflict = brute_conflict(shadow, n);
	p = policy_compile(groups, n, &d);
	if (!p) {
		/* A refusal always says why, and only for a real conflict. */
		if (!conflict || diag_count(&d) == 0)
			abort();
		goto out;
	}
	if (conflict || policy_count(p) != n)
		abort();
	for (size_t i = 0; i < n; i++) {
		const struct group *pg = policy_group(p, i);

		if (!pg || strcmp(pg->name, shadow[i].name) || policy_by_name(p, shadow[i].name) != pg)
			abort();
		for (size_t j = 0; j < shadow[i].npools; j++)
			check_edges(p, shadow, n, &shadow[i].pools[j]);
		for (size_t j = 0; j < shadow[i].nclients; j++)
			check_edges(p, shadow, n, &shadow[i].clients[j]);
		/* Exact, one byte short, one byte long: only the exact key matches. */
		size_t al = strlen(shadow[i].auth_group);
		char key[16];

		memcpy(key, shadow[i].auth_group, al);
		key[al] = 'x';
		check_auth(p, shadow, n, key, al);
		check_auth(p, shadow, n, key, al ? al - 1 : 0);
		check_auth(p, shadow, n, key, al + 1);
	}
	/* Probe addresses from the input, then the rest as a raw auth key. */
	while (r.left >= 5) {
		uint8_t fam = rd_byte(&r), a[16] = { 0 };

		if (fam & 1) {
			if (r.left < 16)
				break;
			rd_bytes(&r, a, 16);
			check_addr(p, shadow, n, AF_INET6, a);
		} else {
			rd_bytes(&r, a, 4);
			check_addr(p, shadow, n, AF_INET, a);
		}
		if (fam & 2)
			break;
	}
	check_auth(p, shadow, n, (const char *)r.p, r.left);
	if (policy_by_pool(p, AF_UNIX, (const uint8_t *)"\0\0\0\0") ||
	    policy_by_clients(p, AF_UNIX, (const uint8_t *)"\0\0\0\0"))
		abort();
	policy_free(p);
out:
	for (size_t i = 0; i < n; i++)
		group_release(&shadow[i]);
	diag_free(&d);
	return 0;
}
