#include "proxy/budget.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

/* A source: one masked address and the nodes counted for it. */
struct budget_src {
	struct budget_src *hnext;
	struct budget_node *head[3], *tail[3];	/* by class (budget_class) */
	unsigned count;
	uint8_t key[17];	/* family byte, then the masked address */
};

struct budget {
	unsigned total, per_source, v4, v6;
	uint64_t seed;
	struct budget_node *head[3], *tail[3];
	unsigned count, nsrc;
	size_t nbuckets;	/* a power of two */
	struct budget_src **buckets;
};

struct budget *budget_new(unsigned total, unsigned per_source, unsigned v4_prefix,
			  unsigned v6_prefix, uint64_t seed)
{
	struct budget *b = calloc(1, sizeof(*b));
	struct budget_src **buckets;
	size_t n = 64;

	/* Every source holds a node: there are never more sources than total. */
	while (n < total && n < ((size_t)1 << 20))
		n <<= 1;
	if (!b || !(buckets = calloc(n, sizeof(*buckets)))) {
		free(b);
		return NULL;
	}
	*b = (struct budget){ .total = total, .per_source = per_source,
			      .v4 = v4_prefix > 32 ? 32 : v4_prefix,
			      .v6 = v6_prefix > 128 ? 128 : v6_prefix, .seed = seed,
			      .nbuckets = n, .buckets = buckets };
	return b;
}

void budget_free(struct budget *b)
{
	if (!b)
		return;
	for (size_t i = 0; i < b->nbuckets; i++)
		while (b->buckets[i]) {
			struct budget_src *s = b->buckets[i];

			b->buckets[i] = s->hnext;
			free(s);
		}
	free(b->buckets);
	free(b);
}

static void budget_key(const struct budget *b, int family, const uint8_t *addr, uint8_t key[17])
{
	unsigned len = family == AF_INET6 ? 16 : 4, bits = family == AF_INET6 ? b->v6 : b->v4;

	memset(key, 0, 17);
	key[0] = family == AF_INET6 ? 6 : 4;
	memcpy(key + 1, addr, bits / 8);
	if (bits % 8 && bits / 8 < len)
		key[1 + bits / 8] = addr[bits / 8] & (uint8_t)(0xff00u >> (bits % 8));
}

/* Keyed by a random seed: an attacker picking addresses cannot aim at one
 * chain (a chain is bounded by total anyway). */
static size_t budget_hash(const struct budget *b, const uint8_t key[17])
{
	uint64_t h = b->seed ^ key[0];

	for (int i = 0; i < 2; i++) {
		uint64_t w;

		memcpy(&w, key + 1 + 8 * i, 8);
		h = (h ^ w) * 0x9e3779b97f4a7c15ull;
		h ^= h >> 29;
	}
	return (size_t)(h & (b->nbuckets - 1));
}

static struct budget_src *budget_find(const struct budget *b, const uint8_t key[17])
{
	struct budget_src *s = b->buckets[budget_hash(b, key)];

	while (s && memcmp(s->key, key, 17))
		s = s->hnext;
	return s;
}

/* The eviction order: in handshake, then waiting on the client, then
 * waiting on the headend. */
static int budget_class(const struct budget_node *n)
{
	return !n->done ? 0 : n->waiting ? 2 : 1;
}

static struct budget_node *budget_first(struct budget_node *const head[3])
{
	return head[0] ? head[0] : head[1] ? head[1] : head[2];
}

struct budget_node *budget_victim(const struct budget *b, int family, const uint8_t *addr)
{
	uint8_t key[17];
	struct budget_src *s;

	budget_key(b, family, addr, key);
	if ((s = budget_find(b, key)) && s->count >= b->per_source)
		return budget_first(s->head);
	if (b->count < b->total)
		return NULL;
	return budget_first(b->head);
}

/* Append n to the end of both lists of its class (most recently active). */
static void budget_link(struct budget *b, struct budget_node *n)
{
	struct budget_src *s = n->src;
	int k = budget_class(n);

	n->next = NULL;
	n->prev = b->tail[k];
	if (b->tail[k])
		b->tail[k]->next = n;
	else
		b->head[k] = n;
	b->tail[k] = n;
	n->snext = NULL;
	n->sprev = s->tail[k];
	if (s->tail[k])
		s->tail[k]->snext = n;
	else
		s->head[k] = n;
	s->tail[k] = n;
}

static void budget_unlink(struct budget *b, struct budget_node *n)
{
	struct budget_src *s = n->src;
	int k = budget_class(n);

	if (n->prev)
		n->prev->next = n->next;
	else
		b->head[k] = n->next;
	if (n->next)
		n->next->prev = n->prev;
	else
		b->tail[k] = n->prev;
	if (n->sprev)
		n->sprev->snext = n->snext;
	else
		s->head[k] = n->snext;
	if (n->snext)
		n->snext->sprev = n->sprev;
	else
		s->tail[k] = n->sprev;
}

int budget_add(struct budget *b, struct budget_node *n, int family, const uint8_t *addr)
{
	uint8_t key[17];
	struct budget_src *s;

	if (budget_victim(b, family, addr))
		return -ENOSPC;
	budget_key(b, family, addr, key);
	if (!(s = budget_find(b, key))) {
		size_t h = budget_hash(b, key);

		if (!(s = calloc(1, sizeof(*s))))
			return -ENOMEM;
		memcpy(s->key, key, 17);
		s->hnext = b->buckets[h];
		b->buckets[h] = s;
		b->nsrc++;
	}
	*n = (struct budget_node){ .src = s };
	budget_link(b, n);
	s->count++;
	b->count++;
	return 0;
}

void budget_touch(struct budget *b, struct budget_node *n)
{
	if (!n->src || b->tail[budget_class(n)] == n)
		return;
	budget_unlink(b, n);
	budget_link(b, n);
}

void budget_promote(struct budget *b, struct budget_node *n)
{
	if (!n->src || n->done)
		return;
	budget_unlink(b, n);
	n->done = true;
	budget_link(b, n);
}

void budget_wait(struct budget *b, struct budget_node *n, bool waiting)
{
	if (!n->src || !n->done || n->waiting == waiting)
		return;
	budget_unlink(b, n);
	n->waiting = waiting;
	budget_link(b, n);
}

void budget_remove(struct budget *b, struct budget_node *n)
{
	struct budget_src *s = n->src;

	if (!s)
		return;
	budget_unlink(b, n);
	b->count--;
	if (!--s->count) {
		struct budget_src **p = &b->buckets[budget_hash(b, s->key)];

		while (*p != s)
			p = &(*p)->hnext;
		*p = s->hnext;
		free(s);
		b->nsrc--;
	}
	*n = (struct budget_node){ 0 };
}

unsigned budget_count(const struct budget *b)
{
	return b->count;
}

unsigned budget_source_count(const struct budget *b, int family, const uint8_t *addr)
{
	uint8_t key[17];
	const struct budget_src *s;

	budget_key(b, family, addr, key);
	s = budget_find(b, key);
	return s ? s->count : 0;
}

unsigned budget_sources(const struct budget *b)
{
	return b->nsrc;
}

bool budget_log_step(struct budget_lograte *r, time_t now, unsigned rate, unsigned *summary)
{
	*summary = budget_log_flush(r, now);
	if (r->n < rate) {
		r->n++;
		return true;
	}
	r->held++;
	return false;
}

unsigned budget_log_flush(struct budget_lograte *r, time_t now)
{
	unsigned held = 0;

	if (now != r->sec) {
		held = r->held;
		r->sec = now;
		r->n = 0;
		r->held = 0;
	}
	return held;
}

void budget_clock_start(struct budget_clock *k, time_t now)
{
	*k = (struct budget_clock){ .started = now };
}

void budget_clock_wait(struct budget_clock *k, bool waiting, time_t now)
{
	if (waiting == k->waiting)
		return;
	if (waiting)
		k->wait_since = now;
	else
		k->waited += now - k->wait_since;
	k->waiting = waiting;
}

time_t budget_clock_client(const struct budget_clock *k, time_t now)
{
	return now - k->started - k->waited - budget_clock_headend(k, now);
}

time_t budget_clock_headend(const struct budget_clock *k, time_t now)
{
	return k->waiting ? now - k->wait_since : 0;
}
