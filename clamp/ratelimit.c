/* Token buckets in integer nanosecond arithmetic, and the per-host table. */
#include "clamp/ratelimit.h"

#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#define NS 1000000000ull
/* Slots looked at per lookup: a short linear probe keeps the cost fixed. */
#define PROBE 8

struct host {
	uint8_t addr[16];
	uint8_t family;		/* 0: free */
	uint64_t used_ns;	/* last lookup, for eviction */
	struct ratelimit_bucket b;
};

struct ratelimit_hosts {
	size_t mask;
	uint64_t seed;
	uint32_t rate, burst;
	unsigned v4_bytes, v6_bytes;	/* how much of an address is the key */
	struct host slot[];
};

void ratelimit_bucket_init(struct ratelimit_bucket *b, uint32_t rate, uint32_t burst,
			   uint64_t now_ns)
{
	b->rate = rate;
	b->burst = burst;
	b->credit = (uint64_t)burst * NS;
	b->last_ns = now_ns;
}

/* Add what the time since last_ns earned, capped at burst. A clock that
 * went backwards earns nothing (and last_ns stays, so nothing is earned
 * twice). The cap is reached before elapsed * rate could overflow:
 * burst * 1e9 < 2^63 for any 32-bit burst. */
static void refill(struct ratelimit_bucket *b, uint64_t now_ns)
{
	uint64_t cap = (uint64_t)b->burst * NS, elapsed, need;

	if (now_ns <= b->last_ns)
		return;
	elapsed = now_ns - b->last_ns;
	b->last_ns = now_ns;
	if (b->credit >= cap || b->rate == 0) {
		if (b->credit > cap)
			b->credit = cap;
		return;
	}
	need = cap - b->credit;
	if (elapsed >= need / b->rate + 1)
		b->credit = cap;
	else
		b->credit += elapsed * b->rate;
	if (b->credit > cap)
		b->credit = cap;
}

static bool has_token(struct ratelimit_bucket *b, uint64_t now_ns)
{
	refill(b, now_ns);
	return b->credit >= NS;
}

bool ratelimit_take(struct ratelimit_bucket *b, uint64_t now_ns)
{
	if (!has_token(b, now_ns))
		return false;
	b->credit -= NS;
	return true;
}

struct ratelimit_hosts *ratelimit_hosts_new(size_t slots, uint32_t rate, uint32_t burst,
					    unsigned v4_bytes, unsigned v6_bytes, uint64_t seed)
{
	struct ratelimit_hosts *h;
	size_t n = PROBE;

	if (v4_bytes < 1 || v4_bytes > 4 || v6_bytes < 1 || v6_bytes > 16)
		return NULL;

	while (n < slots && n < ((size_t)1 << 24))
		n <<= 1;
	h = calloc(1, sizeof(*h) + n * sizeof(h->slot[0]));
	if (!h)
		return NULL;
	h->mask = n - 1;
	h->seed = seed;
	h->rate = rate;
	h->burst = burst;
	h->v4_bytes = v4_bytes;
	h->v6_bytes = v6_bytes;
	return h;
}

void ratelimit_hosts_free(struct ratelimit_hosts *h)
{
	free(h);
}

/* Keyed mixing (splitmix64 finalizer over the address words). Not a MAC:
 * the seed only spreads addresses an outsider cannot predict; the group
 * bucket bounds whatever a collision costs. */
static uint64_t mix(uint64_t x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ull;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebull;
	return x ^ (x >> 31);
}

static size_t hash(const struct ratelimit_hosts *h, const uint8_t *key, uint8_t family)
{
	uint64_t w[2], x = h->seed ^ family;

	memcpy(w, key, 16);
	x = mix(x ^ w[0]);
	x = mix(x ^ w[1]);
	return (size_t)x & h->mask;
}

/* How good a slot is to reuse: free, else full again (forgetting it changes
 * nothing), else in use. */
static int reuse_rank(struct host *s, uint64_t now_ns)
{
	if (s->family == 0)
		return 0;
	refill(&s->b, now_ns);
	return s->b.credit >= (uint64_t)s->b.burst * NS ? 1 : 2;
}

/* The host's slot, or a new one in the best slot to reuse; among slots in
 * use the least recently used goes (that host gets a fresh burst, and the
 * group bucket still holds). */
static struct host *lookup(struct ratelimit_hosts *h, uint8_t family, const uint8_t *key,
			   uint64_t now_ns)
{
	size_t i = hash(h, key, family);
	struct host *victim = NULL, *s;
	int vrank = 3, rank;

	for (size_t n = 0; n < PROBE; n++, i = (i + 1) & h->mask) {
		s = &h->slot[i];
		if (s->family == family && memcmp(s->addr, key, 16) == 0) {
			s->used_ns = now_ns;
			return s;
		}
		rank = reuse_rank(s, now_ns);
		if (rank < vrank || (rank == vrank && s->used_ns < victim->used_ns)) {
			victim = s;
			vrank = rank;
		}
	}
	victim->family = family;
	memcpy(victim->addr, key, 16);
	victim->used_ns = now_ns;
	ratelimit_bucket_init(&victim->b, h->rate, h->burst, now_ns);
	return victim;
}

struct ratelimit_bucket *ratelimit_hosts_bucket(struct ratelimit_hosts *h, int family,
						const uint8_t *addr, uint64_t now_ns)
{
	uint8_t key[16] = { 0 };

	/* By prefix: one host (or site) may take any address of its network,
	 * and would get a fresh burst with each one. */
	if (family == AF_INET)
		memcpy(key, addr, h->v4_bytes);
	else if (family == AF_INET6)
		memcpy(key, addr, h->v6_bytes);
	else
		return NULL;
	return &lookup(h, (uint8_t)family, key, now_ns)->b;
}

bool ratelimit_take_all(struct ratelimit_bucket *const *b, size_t n, uint64_t now_ns)
{
	for (size_t i = 0; i < n; i++)
		if (!b[i] || !has_token(b[i], now_ns))
			return false;
	for (size_t i = 0; i < n; i++)
		b[i]->credit -= NS;
	return true;
}

bool ratelimit_hosts_allow(struct ratelimit_hosts *h, int family, const uint8_t *addr,
			   uint64_t now_ns, struct ratelimit_bucket *also)
{
	struct ratelimit_bucket *b[2] = { ratelimit_hosts_bucket(h, family, addr, now_ns), also };

	return ratelimit_take_all(b, also ? 2 : 1, now_ns);
}
