/* Parsed groups -> the immutable policy: checks across groups, sorted tables. */
#include "policy/policy.h"
#include "policy/internal.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/diag.h"

/* One prefix as a closed range [start, end] of one family. */
struct span {
	struct u128 start, end;
	uint8_t len;
	int32_t grp;
	unsigned rank;			/* among identical prefixes, the lower first */
	const struct prefix *src;	/* for messages */
};

/* An error kept until all are found, so they print in file order. */
struct finding {
	size_t grp;
	int line;
	size_t seq;
	char *msg;
};

struct findings {
	struct finding *v;
	size_t n, cap;
	int oom;
};

/* Boundaries of a flattened table while it is built. */
struct bounds {
	struct u128 *key;
	int32_t *grp;
	size_t n;
};

static int u128_cmp(struct u128 a, struct u128 b)
{
	if (a.hi != b.hi)
		return a.hi < b.hi ? -1 : 1;
	if (a.lo != b.lo)
		return a.lo < b.lo ? -1 : 1;
	return 0;
}

static uint64_t load_be(const uint8_t *b, size_t n)
{
	uint64_t v = 0;

	for (size_t i = 0; i < n; i++)
		v = v << 8 | b[i];
	return v;
}

static struct span span_of(const struct prefix *p, int32_t grp)
{
	struct span s = { .len = p->len, .grp = grp, .src = p };
	uint64_t hmask;

	if (p->family == AF_INET) {
		unsigned len = p->len > 32 ? 32 : p->len;

		hmask = len == 32 ? 0 : 0xffffffffu >> len;
		s.start.lo = load_be(p->addr, 4) & ~hmask & 0xffffffffu;
		s.end.lo = s.start.lo | hmask;
		return s;
	}
	s.start.hi = load_be(p->addr, 8);
	s.start.lo = load_be(p->addr + 8, 8);
	if (p->len < 64) {
		hmask = ~0ULL >> p->len;
		s.start.hi &= ~hmask;
		s.start.lo = 0;
		s.end.hi = s.start.hi | hmask;
		s.end.lo = ~0ULL;
	} else {
		hmask = p->len >= 128 ? 0 : ~0ULL >> (p->len - 64);
		s.start.lo &= ~hmask;
		s.end.hi = s.start.hi;
		s.end.lo = s.start.lo | hmask;
	}
	return s;
}

/* Containers sort before what they contain; identical prefixes by rank,
 * then group. */
static int span_cmp(const void *a, const void *b)
{
	const struct span *x = a, *y = b;
	int c = u128_cmp(x->start, y->start);

	if (c)
		return c;
	if (x->len != y->len)
		return x->len < y->len ? -1 : 1;
	if (x->rank != y->rank)
		return x->rank < y->rank ? -1 : 1;
	return (x->grp > y->grp) - (x->grp < y->grp);
}

/* Every pool (or clients) prefix of one family, sorted. *out NULL when none. */
static int spans_collect(struct span **out, size_t *nout, const struct group *groups, size_t n,
			 int use_clients, int family)
{
	size_t total = 0, k = 0;
	struct span *v;

	for (size_t i = 0; i < n; i++)
		total += use_clients ? groups[i].nclients : groups[i].npools;
	*out = NULL;
	*nout = 0;
	if (total == 0)
		return 0;
	v = malloc(total * sizeof(*v));
	if (!v)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		const struct prefix *ps = use_clients ? groups[i].clients : groups[i].pools;
		size_t np = use_clients ? groups[i].nclients : groups[i].npools;

		for (size_t j = 0; j < np; j++) {
			if (ps[j].family != family)
				continue;
			v[k] = span_of(&ps[j], (int32_t)i);
			/* A shared pool's address no tunnel has claimed goes to the
			 * group with the smallest MTU: its clamp fits every group. */
			v[k++].rank = use_clients ? 0 : groups[i].mtu;
		}
	}
	qsort(v, k, sizeof(*v), span_cmp);
	*out = v;
	*nout = k;
	return 0;
}

/* A boundary at pos: a later one at the same position replaces the earlier,
 * and a boundary that does not change the group is dropped. */
static void bounds_emit(struct bounds *b, struct u128 pos, int32_t grp)
{
	if (b->n && u128_cmp(b->key[b->n - 1], pos) == 0) {
		b->grp[b->n - 1] = grp;
		if (b->n >= 2 && b->grp[b->n - 2] == grp)
			b->n--;
		return;
	}
	if (b->n && b->grp[b->n - 1] == grp)
		return;
	b->key[b->n] = pos;
	b->grp[b->n++] = grp;
}

static struct u128 u128_next(struct u128 a)
{
	a.lo++;
	if (a.lo == 0)
		a.hi++;
	return a;
}

/* A stack sweep over spans sorted by span_cmp: the top of the stack is the
 * longest prefix covering the current position. */
static int bounds_flatten(struct bounds *b, const struct span *v, size_t n, struct u128 max)
{
	const struct span **stack = malloc((n ? n : 1) * sizeof(*stack));
	size_t depth = 0;

	b->key = malloc((2 * n + 1) * sizeof(*b->key));
	b->grp = malloc((2 * n + 1) * sizeof(*b->grp));
	b->n = 0;
	if (!stack || !b->key || !b->grp) {
		free(stack);
		return -ENOMEM;
	}
	bounds_emit(b, (struct u128){ 0, 0 }, -1);
	for (size_t i = 0; i <= n; i++) {
		/* i == n drains the stack. */
		while (depth && (i == n || u128_cmp(stack[depth - 1]->end, v[i].start) < 0)) {
			const struct span *t = stack[--depth];

			if (u128_cmp(t->end, max) != 0)
				bounds_emit(b, u128_next(t->end), depth ? stack[depth - 1]->grp : -1);
		}
		if (i == n)
			break;
		if (depth && stack[depth - 1]->len == v[i].len &&
		    u128_cmp(stack[depth - 1]->start, v[i].start) == 0)
			continue;	/* identical prefix: the first (rank, group) keeps it */
		stack[depth++] = &v[i];
		bounds_emit(b, v[i].start, v[i].grp);
	}
	free(stack);
	return 0;
}

void ptable_free(struct ptable *t)
{
	free(t->v4key);
	free(t->v4grp);
	free(t->v6key);
	free(t->v6grp);
	memset(t, 0, sizeof(*t));
}

int ptable_build(struct ptable *t, const struct group *groups, size_t n, int use_clients)
{
	struct span *v4 = NULL, *v6 = NULL;
	size_t n4 = 0, n6 = 0;
	struct bounds b4 = { 0 }, b6 = { 0 };
	int rc;

	memset(t, 0, sizeof(*t));
	rc = spans_collect(&v4, &n4, groups, n, use_clients, AF_INET);
	if (!rc)
		rc = spans_collect(&v6, &n6, groups, n, use_clients, AF_INET6);
	if (!rc)
		rc = bounds_flatten(&b4, v4, n4, (struct u128){ 0, 0xffffffffu });
	if (!rc)
		rc = bounds_flatten(&b6, v6, n6, (struct u128){ ~0ULL, ~0ULL });
	if (rc)
		goto out;
	/* IPv4 keys shrink to 32 bits: half the cache lines per search. */
	t->v4key = malloc(b4.n * sizeof(*t->v4key));
	if (!t->v4key) {
		rc = -ENOMEM;
		goto out;
	}
	for (size_t i = 0; i < b4.n; i++)
		t->v4key[i] = (uint32_t)b4.key[i].lo;
	t->v4grp = b4.grp;
	t->n4 = b4.n;
	b4.grp = NULL;
	t->v6key = b6.key;
	t->v6grp = b6.grp;
	t->n6 = b6.n;
	b6.key = NULL;
	b6.grp = NULL;
out:
	free(b4.key);
	free(b4.grp);
	free(b6.key);
	free(b6.grp);
	free(v4);
	free(v6);
	if (rc)
		ptable_free(t);
	return rc;
}

static void findings_add(struct findings *f, size_t grp, int line, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

static void findings_add(struct findings *f, size_t grp, int line, const char *fmt, ...)
{
	va_list ap;
	char *msg;

	if (f->n == f->cap) {
		size_t ncap = f->cap ? 2 * f->cap : 16;
		struct finding *nv = realloc(f->v, ncap * sizeof(*nv));

		if (!nv) {
			f->oom = 1;
			return;
		}
		f->v = nv;
		f->cap = ncap;
	}
	va_start(ap, fmt);
	if (vasprintf(&msg, fmt, ap) < 0) {
		f->oom = 1;
		va_end(ap);
		return;
	}
	va_end(ap);
	f->v[f->n] = (struct finding){ grp, line, f->n, msg };
	f->n++;
}

static int finding_cmp(const void *a, const void *b)
{
	const struct finding *x = a, *y = b;

	if (x->grp != y->grp)
		return x->grp < y->grp ? -1 : 1;
	if (x->line != y->line)
		return x->line < y->line ? -1 : 1;
	return (x->seq > y->seq) - (x->seq < y->seq);
}

/* Findings go out in file order, then line order, whatever check found them. */
static size_t findings_flush(struct findings *f, const struct group *groups, struct diag *d)
{
	size_t n = f->n;

	if (f->n)
		qsort(f->v, f->n, sizeof(*f->v), finding_cmp);
	for (size_t i = 0; i < f->n; i++) {
		diag_add(d, groups[f->v[i].grp].file, f->v[i].line, "%s", f->v[i].msg);
		free(f->v[i].msg);
	}
	if (f->oom) {
		diag_add(d, "policy", 0, "out of memory while checking groups");
		n++;
	}
	free(f->v);
	memset(f, 0, sizeof(*f));
	return n;
}

static int group_name_cmp(const void *a, const void *b)
{
	const struct group *x = *(const struct group *const *)a, *y = *(const struct group *const *)b;
	int c = strcmp(x->name, y->name);

	return c ? c : (x > y) - (x < y);
}

static int group_auth_cmp(const void *a, const void *b)
{
	const struct group *x = *(const struct group *const *)a, *y = *(const struct group *const *)b;
	int c = strcmp(x->auth_group, y->auth_group);

	return c ? c : (x > y) - (x < y);
}

/*
 * Sorts the groups by name (or auth_group), writes their indices to idx and
 * reports every repeat against the first group of its run. Groups with an
 * empty auth_group are left out of the auth index. Returns how many went in.
 */
static size_t index_build(uint32_t *idx, const struct group *groups, size_t n, int auth,
			  struct findings *f)
{
	const struct group **v = malloc((n ? n : 1) * sizeof(*v));
	size_t k = 0;

	if (!v) {
		f->oom = 1;
		return 0;
	}
	for (size_t i = 0; i < n; i++)
		if (!auth || groups[i].auth_group[0])
			v[k++] = &groups[i];
	qsort(v, k, sizeof(*v), auth ? group_auth_cmp : group_name_cmp);
	for (size_t i = 0, first = 0; i < k; i++) {
		const char *key = auth ? v[i]->auth_group : v[i]->name;
		const char *fkey = auth ? v[first]->auth_group : v[first]->name;

		idx[i] = (uint32_t)(v[i] - groups);
		if (i == 0 || strcmp(key, fkey) != 0) {
			first = i;
			continue;
		}
		if (auth)
			findings_add(f, idx[i], v[i]->line_name,
				     "duplicate auth_group '%s' (also group '%s' in %s:%d)", key,
				     v[first]->name, v[first]->file, v[first]->line_name);
		else
			findings_add(f, idx[i], v[i]->line_name,
				     "duplicate group name '%s' (first in %s:%d)", key, v[first]->file,
				     v[first]->line_name);
	}
	free(v);
	return k;
}

static void pool_report(struct findings *f, const struct group *groups, const struct span *outer,
			const struct span *inner)
{
	const struct span *later = outer->grp > inner->grp ? outer : inner;
	const struct span *other = later == outer ? inner : outer;
	const struct group *lg = &groups[later->grp], *og = &groups[other->grp];
	char lbuf[64], obuf[64];

	prefix_format(later->src, lbuf, sizeof(lbuf));
	prefix_format(other->src, obuf, sizeof(obuf));
	if (outer->len == inner->len)
		findings_add(f, (size_t)later->grp, lg->line_pool,
			     "pool %s is also claimed by group '%s' (%s:%d); groups may share a pool"
			     " only when each sets its own auth_group", lbuf, og->name, og->file,
			     og->line_pool);
	else
		findings_add(f, (size_t)later->grp, lg->line_pool,
			     "pool %s overlaps pool %s of group '%s' (%s:%d)", lbuf, obuf, og->name,
			     og->file, og->line_pool);
}

/* Two groups may name the very same pool when the auth_groups they set
 * tell them apart: the proxy knows a tunnel's group from its login or session cookie
 * (ASA group-policies sharing one pool, addresses from RADIUS). */
static bool pool_shareable(const struct span *a, const struct span *b, const struct group *groups)
{
	return a->len == b->len && u128_cmp(a->start, b->start) == 0 &&
	       groups[a->grp].line_auth && groups[b->grp].line_auth &&
	       groups[a->grp].auth_group[0] && groups[b->grp].auth_group[0];
}

/*
 * A pool is claimed by two groups when any address lies in pools of both:
 * identical prefixes and nested ones alike. The headend hands out addresses
 * from each group's pool; if pools overlapped, an address of one group could
 * be attributed to the other, so this is an error, not a longest-match rule,
 * unless the pool is shared (pool_shareable()).
 */
static void pools_check(struct findings *f, struct group *groups, size_t n, int family)
{
	struct span *v;
	const struct span **stack;
	size_t nv, depth = 0;

	if (spans_collect(&v, &nv, groups, n, 0, family)) {
		f->oom = 1;
		return;
	}
	stack = malloc((nv ? nv : 1) * sizeof(*stack));
	if (!stack) {
		f->oom = 1;
		free(v);
		return;
	}
	for (size_t i = 0; i < nv; i++) {
		while (depth && u128_cmp(stack[depth - 1]->end, v[i].start) < 0)
			depth--;
		/* Everything left on the stack contains v[i]. */
		for (size_t j = 0; j < depth; j++) {
			if (stack[j]->grp == v[i].grp)
				continue;
			if (pool_shareable(stack[j], &v[i], groups))
				groups[stack[j]->grp].pool_shared = groups[v[i].grp].pool_shared = true;
			else
				pool_report(f, groups, stack[j], &v[i]);
		}
		stack[depth++] = &v[i];
	}
	free(stack);
	free(v);
}

/*
 * proxy = no passes a group's clients by the TLS proxy by source address, so
 * clients of a proxied group inside those prefixes could never reach it: the
 * files contradict each other. (The other way round, a proxy = no prefix
 * inside a proxied group's clients is an exception carved out, and fine.)
 */
static void clients_proxy_check(struct findings *f, const struct group *groups, size_t n)
{
	char abuf[64], bbuf[64];

	for (size_t a = 0; a < n; a++) {
		if (!groups[a].proxy_bypass)
			continue;
		for (size_t i = 0; i < groups[a].nclients; i++) {
			const struct prefix *pa = &groups[a].clients[i];

			for (size_t b = 0; b < n; b++) {
				if (groups[b].proxy_bypass)
					continue;
				for (size_t k = 0; k < groups[b].nclients; k++) {
					const struct prefix *pb = &groups[b].clients[k];

					if (pb->family != pa->family || pb->len < pa->len ||
					    !prefix_contains(pa, pb->family, pb->addr))
						continue;
					findings_add(f, b, groups[b].line_clients,
						     "clients %s lie inside clients %s of group '%s' (%s:%d),"
						     " which has proxy = no: they would never reach the proxy",
						     prefix_format(pb, bbuf, sizeof(bbuf)),
						     prefix_format(pa, abuf, sizeof(abuf)), groups[a].name,
						     groups[a].file, groups[a].line_proxy);
				}
			}
		}
	}
}

void policy_destroy(struct policy *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->n; i++)
		group_release(&p->groups[i]);
	free(p->groups);
	ptable_free(&p->pool);
	ptable_free(&p->clients);
	free(p->by_name);
	free(p->by_auth);
	free(p);
}

struct policy *policy_compile(struct group *groups, size_t n, struct diag *d)
{
	struct findings f = { 0 };
	struct policy *p = calloc(1, sizeof(*p));

	if (!p) {
		diag_add(d, "policy", 0, "out of memory");
		for (size_t i = 0; i < n; i++)
			group_release(&groups[i]);
		free(groups);
		return NULL;
	}
	atomic_init(&p->refs, 1);
	p->groups = groups;
	p->n = n;
	for (size_t i = 0; i < n; i++)
		groups[i].index = (unsigned)i;
	p->by_name = malloc((n ? n : 1) * sizeof(*p->by_name));
	p->by_auth = malloc((n ? n : 1) * sizeof(*p->by_auth));
	if (!p->by_name || !p->by_auth) {
		f.oom = 1;
	} else {
		index_build(p->by_name, groups, n, 0, &f);
		p->nauth = index_build(p->by_auth, groups, n, 1, &f);
	}
	pools_check(&f, groups, n, AF_INET);
	pools_check(&f, groups, n, AF_INET6);
	clients_proxy_check(&f, groups, n);
	if (findings_flush(&f, groups, d)) {
		policy_destroy(p);
		return NULL;
	}
	if (ptable_build(&p->pool, groups, n, 0) || ptable_build(&p->clients, groups, n, 1)) {
		diag_add(d, "policy", 0, "out of memory building lookup tables");
		policy_destroy(p);
		return NULL;
	}
	return p;
}

void policy_assign_slots(struct policy *p, unsigned (*slot_of)(void *arg, const char *name),
			 void *arg)
{
	for (size_t i = 0; i < p->n; i++)
		p->groups[i].slot = slot_of(arg, p->groups[i].name);
}
