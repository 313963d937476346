/* The hot path: pure lookups over the immutable policy. No locks, no allocation. */
#include "policy/policy.h"
#include "policy/internal.h"

#include <string.h>
#include <sys/socket.h>

static uint64_t load_be64(const uint8_t *b)
{
	uint64_t v = 0;

	for (int i = 0; i < 8; i++)
		v = v << 8 | b[i];
	return v;
}

/* key[0] is 0, so the last key <= x always exists: the search needs no
 * "not found" branch and halves the range with one compare per step. */
static int32_t ptable_find_v4(const struct ptable *t, uint32_t x)
{
	const uint32_t *base = t->v4key;
	size_t len = t->n4;

	while (len > 1) {
		size_t half = len / 2;

		if (base[half] <= x)
			base += half;
		len -= half;
	}
	return t->v4grp[base - t->v4key];
}

static int32_t ptable_find_v6(const struct ptable *t, uint64_t hi, uint64_t lo)
{
	const struct u128 *base = t->v6key;
	size_t len = t->n6;

	while (len > 1) {
		size_t half = len / 2;
		const struct u128 *k = &base[half];

		if (k->hi < hi || (k->hi == hi && k->lo <= lo))
			base += half;
		len -= half;
	}
	return t->v6grp[base - t->v6key];
}

static const struct group *ptable_lookup(const struct policy *p, const struct ptable *t,
					 int family, const uint8_t *addr)
{
	int32_t g;

	if (family == AF_INET) {
		uint32_t x = (uint32_t)addr[0] << 24 | (uint32_t)addr[1] << 16 |
			     (uint32_t)addr[2] << 8 | addr[3];

		g = ptable_find_v4(t, x);
	} else if (family == AF_INET6) {
		g = ptable_find_v6(t, load_be64(addr), load_be64(addr + 8));
	} else {
		return NULL;
	}
	return g < 0 ? NULL : &p->groups[g];
}

const struct group *policy_by_pool(const struct policy *p, int family, const uint8_t *addr)
{
	return ptable_lookup(p, &p->pool, family, addr);
}

bool group_has_addr(const struct group *g, int family, const uint8_t *addr)
{
	for (size_t i = 0; i < g->npools; i++)
		if (prefix_contains(&g->pools[i], (uint8_t)family, addr))
			return true;
	return false;
}

const struct group *policy_by_clients(const struct policy *p, int family, const uint8_t *addr)
{
	return ptable_lookup(p, &p->clients, family, addr);
}

/* Byte order, then length: the same order as strcmp() gives the sorted index. */
static int slice_cmp(const char *s, size_t len, const char *name)
{
	size_t nlen = strlen(name);
	int c = memcmp(s, name, len < nlen ? len : nlen);

	if (c)
		return c;
	return (len > nlen) - (len < nlen);
}

static const struct group *index_find(const struct policy *p, const uint32_t *idx, size_t n,
				      const char *key, size_t len, int auth)
{
	size_t lo = 0, hi = n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		const struct group *g = &p->groups[idx[mid]];
		int c = slice_cmp(key, len, auth ? g->auth_group : g->name);

		if (c == 0)
			return g;
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

const struct group *policy_by_auth(const struct policy *p, const char *auth, size_t len)
{
	/* An empty value never names a group (groups without auth_group are not indexed). */
	if (!len)
		return NULL;
	return index_find(p, p->by_auth, p->nauth, auth, len, 1);
}

const struct group *policy_by_name(const struct policy *p, const char *name)
{
	return index_find(p, p->by_name, p->n, name, strlen(name), 0);
}

size_t policy_count(const struct policy *p)
{
	return p->n;
}

const struct group *policy_group(const struct policy *p, size_t i)
{
	return i < p->n ? &p->groups[i] : NULL;
}
