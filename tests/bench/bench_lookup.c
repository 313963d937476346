/* Pool lookup cost with 10 to 10,000 pools (half IPv4, half IPv6): it must grow
 * no faster than the logarithm of the number of pools. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "conf/diag.h"
#include "policy/policy.h"

#define NADDR (1 << 14)
#define ROUNDS 7

struct probe {
	int family;
	uint8_t addr[16];
};

static uint64_t rng_next(uint64_t *s)
{
	*s ^= *s >> 12;
	*s ^= *s << 25;
	*s ^= *s >> 27;
	return *s * 0x2545F4914F6CDD1DULL;
}

static void store_be(uint8_t *b, uint64_t v, int n)
{
	for (int i = n - 1; i >= 0; i--, v >>= 8)
		b[i] = (uint8_t)v;
}

/* The next aligned block of a /len after *cur (bits: 32, or 64 for the upper
 * half of IPv6), past a random gap of up to two blocks. */
static uint64_t pool_place(uint64_t *cur, unsigned len, unsigned bits, uint64_t *rng)
{
	uint64_t size = 1ULL << (bits - len), at;

	at = (*cur + size - 1) / size * size + size * (rng_next(rng) % 3);
	*cur = at + size;
	return at;
}

/* Disjoint pools laid out with random sizes and gaps, so the tables hold
 * about two ranges per pool, as real configurations do. */
static struct policy *policy_make(size_t npools, uint64_t *rng, uint64_t *v4end, uint64_t *v6end)
{
	struct group *groups = calloc(npools, sizeof(*groups));
	uint64_t cur4 = 0, cur6 = 0x20010db800000000ULL;
	struct diag d = { 0 };
	struct policy *p;

	if (!groups)
		abort();
	for (size_t i = 0; i < npools; i++) {
		struct group *g = &groups[i];
		struct prefix *pf = calloc(1, sizeof(*pf));

		if (!pf)
			abort();
		snprintf(g->name, sizeof(g->name), "g%05zu", i);
		snprintf(g->auth_group, sizeof(g->auth_group), "auth%05zu", i);
		snprintf(g->file, sizeof(g->file), "groups.d/g%05zu.conf", i);
		g->mtu = 1400;
		g->pools = pf;
		g->npools = 1;
		if (i % 2 == 0) {
			pf->family = AF_INET;
			pf->len = (uint8_t)(20 + rng_next(rng) % 11);
			store_be(pf->addr, pool_place(&cur4, pf->len, 32, rng), 4);
		} else {
			pf->family = AF_INET6;
			pf->len = (uint8_t)(48 + rng_next(rng) % 17);
			store_be(pf->addr, pool_place(&cur6, pf->len, 64, rng), 8);
		}
	}
	*v4end = cur4;
	*v6end = cur6;
	p = policy_compile(groups, npools, &d);
	if (!p) {
		diag_print(&d, stderr);
		exit(1);
	}
	diag_free(&d);
	return p;
}

/* log2 without libm (the Makefile links none): halve to [1,2), then the
 * series ln x = 2 atanh((x-1)/(x+1)). */
static double log2_of(double x)
{
	double e = 0, y, y2, term, sum = 0;

	while (x >= 2) {
		x /= 2;
		e += 1;
	}
	y = (x - 1) / (x + 1);
	y2 = y * y;
	term = y;
	for (int k = 1; k < 40; k += 2) {
		sum += term / k;
		term *= y2;
	}
	return e + 2 * sum / 0.69314718055994530942;
}

static double now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Best of ROUNDS passes: the least disturbed by the other core's load. */
static double lookup_cost(size_t npools, uint64_t *rng, size_t *hits)
{
	uint64_t v4end, v6end;
	struct policy *p = policy_make(npools, rng, &v4end, &v6end);
	struct probe *pr = malloc(NADDR * sizeof(*pr));
	size_t iters = 4000000;
	double best = 1e18;
	uintptr_t sink = 0;

	if (!pr)
		abort();
	/* Uniform over the span the pools occupy: hits and misses alike. */
	for (size_t i = 0; i < NADDR; i++) {
		memset(pr[i].addr, 0, sizeof(pr[i].addr));
		if (i % 2 == 0) {
			pr[i].family = AF_INET;
			store_be(pr[i].addr, rng_next(rng) % v4end, 4);
		} else {
			uint64_t lo6 = 0x20010db800000000ULL;

			pr[i].family = AF_INET6;
			store_be(pr[i].addr, lo6 + rng_next(rng) % (v6end - lo6), 8);
			store_be(pr[i].addr + 8, rng_next(rng), 8);
		}
	}
	*hits = 0;
	for (size_t i = 0; i < NADDR; i++)
		*hits += policy_by_pool(p, pr[i].family, pr[i].addr) != NULL;
	for (int r = 0; r < ROUNDS; r++) {
		double t0 = now_ns(), t;

		for (size_t i = 0; i < iters; i++) {
			const struct probe *q = &pr[i & (NADDR - 1)];

			sink += (uintptr_t)policy_by_pool(p, q->family, q->addr);
		}
		t = (now_ns() - t0) / (double)iters;
		if (t < best)
			best = t;
	}
	/* Keeps the loop from being optimised away. */
	if (sink == 1)
		puts("");
	free(pr);
	policy_free(p);
	return best;
}

int main(void)
{
	static const size_t sizes[] = { 10, 100, 1000, 10000 };
	double cost[4];
	uint64_t rng = 0x626e6368ULL;
	double ratio, logratio, bound;

	size_t hits;

	/* A discarded first pass: the clock and the caches warm up on it. */
	lookup_cost(sizes[0], &rng, &hits);
	for (size_t i = 0; i < 4; i++) {

		cost[i] = lookup_cost(sizes[i], &rng, &hits);
		printf("measure policy_lookup_%zu: value=%.1f unit=ns\n", sizes[i], cost[i]);
		printf("  (%zu pools, %.0f%% of probes in a pool)\n", sizes[i],
		       100.0 * (double)hits / NADDR);
	}
	ratio = cost[3] / cost[0];
	logratio = log2_of((double)sizes[3]) / log2_of((double)sizes[0]);
	/* A linear scan would scale by 1000; a binary search by the log ratio,
	 * plus cache misses once the table leaves L1: allow twice the log ratio. */
	bound = 2.0 * logratio;
	printf("measure policy_lookup_ratio_10000_10: value=%.2f unit=x\n", ratio);
	printf("lookup scaling: cost(10000)/cost(10) = %.2f, log2(10000)/log2(10) = %.2f, bound %.2f: %s\n",
	       ratio, logratio, bound, ratio <= bound ? "logarithmic" : "TOO STEEP");
	return ratio <= bound ? 0 : 1;
}
