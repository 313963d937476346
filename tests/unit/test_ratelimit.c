/* Token bucket and per-host limiter, driven by a fake clock. */
#include <stdint.h>
#include <sys/socket.h>

#include "clamp/ratelimit.h"
#include "tests/unit/t.h"

#define MS 1000000ull
#define SEC 1000000000ull

/* How many takes succeed at one instant. */
static int drain(struct ratelimit_bucket *b, uint64_t now)
{
	int n = 0;

	while (n < 1000000 && ratelimit_take(b, now))
		n++;
	return n;
}

static void test_bucket(void)
{
	struct ratelimit_bucket b;
	uint64_t t = 5 * SEC;

	ratelimit_bucket_init(&b, 100, 100, t);
	CHECK_INT(drain(&b, t), 100);			/* starts full: the burst */
	CHECK(!ratelimit_take(&b, t));
	CHECK(!ratelimit_take(&b, t + 9 * MS));		/* 0.9 token */
	CHECK(ratelimit_take(&b, t + 10 * MS));		/* 1.0 */
	CHECK(!ratelimit_take(&b, t + 15 * MS));
	CHECK(ratelimit_take(&b, t + 20 * MS));
	CHECK_INT(drain(&b, t + 520 * MS), 50);		/* 500 ms earn 50 */
	CHECK_INT(drain(&b, t + 3600 * SEC), 100);	/* an hour idle: capped at burst */

	/* A rate of 3/s: one token every 333,333,333.3 ns. */
	ratelimit_bucket_init(&b, 3, 1, 0);
	CHECK(ratelimit_take(&b, 0));
	CHECK(!ratelimit_take(&b, 333333333));
	CHECK(ratelimit_take(&b, 333333334));

	/* rate 0 or burst 0: nothing, ever. */
	ratelimit_bucket_init(&b, 0, 5, 0);
	CHECK_INT(drain(&b, 0), 5);
	CHECK_INT(drain(&b, 100 * SEC), 0);
	ratelimit_bucket_init(&b, 100, 0, 0);
	CHECK_INT(drain(&b, 100 * SEC), 0);

	/* The clock going backwards earns nothing, and nothing twice. */
	ratelimit_bucket_init(&b, 10, 10, 10 * SEC);
	CHECK_INT(drain(&b, 10 * SEC), 10);
	CHECK_INT(drain(&b, 9 * SEC), 0);
	CHECK_INT(drain(&b, 10 * SEC + 100 * MS), 1);
	CHECK_INT(drain(&b, 10 * SEC + 50 * MS), 0);
	CHECK_INT(drain(&b, 10 * SEC + 300 * MS), 2);

	/* Extremes do not overflow: the largest rate and burst. */
	ratelimit_bucket_init(&b, UINT32_MAX, UINT32_MAX, 0);
	CHECK(ratelimit_take(&b, 0));
	CHECK(b.credit == (uint64_t)UINT32_MAX * SEC - SEC);
	CHECK(ratelimit_take(&b, UINT64_MAX));
	CHECK(b.credit == (uint64_t)UINT32_MAX * SEC - SEC);
	ratelimit_bucket_init(&b, UINT32_MAX, 1, 0);
	CHECK(ratelimit_take(&b, 0));
	CHECK(!ratelimit_take(&b, 0));
	CHECK(ratelimit_take(&b, 1));			/* 1 ns earns 4.29 tokens, capped at 1 */
	CHECK(!ratelimit_take(&b, 1));
}

static void test_hosts(void)
{
	struct ratelimit_hosts *h = ratelimit_hosts_new(64, RATELIMIT_HOST_RATE,
							RATELIMIT_HOST_BURST, 4, 8, 0x1234);
	struct ratelimit_bucket group;
	static const uint8_t a4[4] = { 198, 18, 3, 10 }, b4[4] = { 198, 18, 3, 11 };
	static const uint8_t a6[16] = { 198, 18, 3, 10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0 };
	uint64_t t = 100 * SEC;
	int n;

	CHECK(h != NULL);
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, a4, t, NULL); n++)
		;
	CHECK_INT(n, 10);
	/* Another host, and an IPv6 address with the same first bytes, have
	 * their own budgets. */
	CHECK(ratelimit_hosts_allow(h, AF_INET, b4, t, NULL));
	CHECK(ratelimit_hosts_allow(h, AF_INET6, a6, t, NULL));
	CHECK(!ratelimit_hosts_allow(h, AF_INET, a4, t + 99 * MS, NULL));
	CHECK(ratelimit_hosts_allow(h, AF_INET, a4, t + 100 * MS, NULL));
	CHECK(!ratelimit_hosts_allow(h, AF_INET, a4, t + 100 * MS, NULL));
	CHECK(!ratelimit_hosts_allow(h, AF_UNIX, a4, t, NULL));
	{
		/* IPv6 by its /64: another address of the same prefix shares the
		 * budget (a host rotating its addresses gets no fresh burst); the
		 * next /64 has its own. */
		uint8_t x6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1 };

		for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET6, x6, t, NULL); n++)
			x6[15]++;
		CHECK_INT(n, 10);
		x6[7] = 1;
		CHECK(ratelimit_hosts_allow(h, AF_INET6, x6, t, NULL));
	}

	/* With the group bucket: both or neither are spent. */
	t += 10 * SEC;
	ratelimit_bucket_init(&group, 100, 100, t);
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, a4, t, &group); n++)
		;
	CHECK_INT(n, 10);
	CHECK(group.credit == 90 * SEC);		/* the host's refusal cost the group nothing */
	ratelimit_bucket_init(&group, 1, 3, t);
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, b4, t, &group); n++)
		;
	CHECK_INT(n, 3);
	/* b4 kept 7 of its 10: the group's refusal cost the host nothing. */
	t += SEC;	/* the group earns 1, b4 earns 10 (capped) */
	CHECK(ratelimit_hosts_allow(h, AF_INET, b4, t, &group));
	CHECK(!ratelimit_hosts_allow(h, AF_INET, b4, t, &group));
	ratelimit_bucket_init(&group, 100, 100, t);
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, b4, t, &group); n++)
		;
	CHECK_INT(n, 9);
	ratelimit_hosts_free(h);
}

static void test_eviction(void)
{
	/* 8 slots, all inside one probe window: every host competes. */
	struct ratelimit_hosts *h = ratelimit_hosts_new(1, 10, 10, 4, 8, 7);
	uint8_t a[4] = { 192, 0, 2, 0 };
	uint64_t t = SEC;
	int n;

	CHECK(h != NULL);
	for (int i = 1; i <= 7; i++) {		/* hosts .1-.7 send one each */
		a[3] = (uint8_t)i;
		CHECK(ratelimit_hosts_allow(h, AF_INET, a, t, NULL));
	}
	a[3] = 100;				/* .100 drains its budget, later */
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, a, t + MS, NULL); n++)
		;
	CHECK_INT(n, 10);
	a[3] = 200;				/* a ninth host evicts the oldest, not .100 */
	CHECK(ratelimit_hosts_allow(h, AF_INET, a, t + 2 * MS, NULL));
	a[3] = 100;
	CHECK(!ratelimit_hosts_allow(h, AF_INET, a, t + 2 * MS, NULL));
	/* Later, hosts .2-.7 are full again: a new host takes one of those. */
	t += 2 * SEC;
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, a, t, NULL); n++)
		;
	CHECK_INT(n, 10);
	for (int i = 201; i <= 206; i++) {
		a[3] = (uint8_t)i;
		CHECK(ratelimit_hosts_allow(h, AF_INET, a, t + MS, NULL));
	}
	a[3] = 100;
	CHECK(!ratelimit_hosts_allow(h, AF_INET, a, t + MS, NULL));

	/* A full slot goes before the least recently used one: .100 drains
	 * first, seven others send once just after and are full again 100 ms
	 * later, while .100 has earned only one token back. */
	t += 10 * SEC;
	for (n = 0; n < 20 && ratelimit_hosts_allow(h, AF_INET, a, t, NULL); n++)
		;
	CHECK_INT(n, 10);
	for (int i = 1; i <= 7; i++) {
		a[3] = (uint8_t)(10 + i);
		CHECK(ratelimit_hosts_allow(h, AF_INET, a, t + MS, NULL));
	}
	a[3] = 99;
	CHECK(ratelimit_hosts_allow(h, AF_INET, a, t + 150 * MS, NULL));
	a[3] = 100;
	CHECK(ratelimit_hosts_allow(h, AF_INET, a, t + 150 * MS, NULL));
	CHECK(!ratelimit_hosts_allow(h, AF_INET, a, t + 150 * MS, NULL));
	ratelimit_hosts_free(h);
}

/* Issue 17: PMTU budgets as daemon/pmtu.c spends them, senders by /24 and
 * /64, destinations by host, and the group: ten senders of one /24, or a
 * /48's many /64s, toward one tunnel, do not drain the group's budget for
 * a sender elsewhere talking to another tunnel. */
static void test_pmtu_budgets(void)
{
	struct ratelimit_hosts *snd = ratelimit_hosts_new(4096, RATELIMIT_HOST_RATE,
							  RATELIMIT_HOST_BURST, 3, 8, 99);
	struct ratelimit_hosts *dst = ratelimit_hosts_new(4096, RATELIMIT_DEST_RATE,
							  RATELIMIT_DEST_BURST, 4, 16, 98);
	struct ratelimit_bucket group, *b[3];
	uint8_t s4[4] = { 203, 0, 113, 0 }, d4[4] = { 192, 0, 2, 130 };
	static const uint8_t legit[4] = { 198, 51, 100, 7 }, other[4] = { 192, 0, 2, 131 };
	uint8_t s6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xbe, 0xef }, d6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0x80 };
	uint64_t t = 50 * SEC;
	int n = 0, i;

	CHECK(ratelimit_hosts_new(8, 1, 1, 5, 8, 1) == NULL);
	CHECK(ratelimit_hosts_new(8, 1, 1, 4, 0, 1) == NULL);
	ratelimit_bucket_init(&group, 100, 100, t);
#define SPEND(sa, da, fam) (b[0] = ratelimit_hosts_bucket(snd, fam, sa, t), \
			    b[1] = ratelimit_hosts_bucket(dst, fam, da, t), b[2] = &group, \
			    ratelimit_take_all(b, 3, t))
	/* Ten senders of one /24, 20 oversize packets each, toward one tunnel:
	 * one sender's budget (10) in all. */
	for (i = 1; i <= 10; i++) {
		s4[3] = (uint8_t)i;
		for (int k = 0; k < 20; k++)
			n += SPEND(s4, d4, AF_INET);
	}
	CHECK_INT(n, RATELIMIT_HOST_BURST);
	/* Senders from 50 /24s toward that tunnel: its budget (20) in all. */
	n = 0;
	for (i = 0; i < 50; i++) {
		s4[2] = (uint8_t)i;
		for (int k = 0; k < 5; k++)
			n += SPEND(s4, d4, AF_INET);
	}
	CHECK_INT(n, RATELIMIT_DEST_BURST - RATELIMIT_HOST_BURST);
	/* A /48's 1000 /64s toward one IPv6 tunnel: that tunnel's 20. */
	n = 0;
	for (i = 0; i < 1000; i++) {
		s6[6] = (uint8_t)(i >> 8);
		s6[7] = (uint8_t)i;
		n += SPEND(s6, d6, AF_INET6);
	}
	CHECK_INT(n, RATELIMIT_DEST_BURST);
	/* The group kept the rest for everyone else: a sender elsewhere
	 * toward another tunnel gets its whole budget. */
	CHECK(group.credit == (100 - 2 * RATELIMIT_DEST_BURST) * SEC);
	for (n = 0; n < 20 && SPEND(legit, other, AF_INET); n++)
		;
	CHECK_INT(n, RATELIMIT_HOST_BURST);
	/* A refusal by the tunnel's budget spent neither sender nor group. */
	s4[2] = 200;
	CHECK(!SPEND(s4, d4, AF_INET));
	CHECK(ratelimit_hosts_bucket(snd, AF_INET, s4, t)->credit == RATELIMIT_HOST_BURST * SEC);
	CHECK(ratelimit_take_all((struct ratelimit_bucket *const[]){ NULL }, 1, t) == false);
#undef SPEND
	ratelimit_hosts_free(snd);
	ratelimit_hosts_free(dst);
}

int main(void)
{
	test_bucket();
	test_hosts();
	test_eviction();
	test_pmtu_budgets();
	return t_done("test_ratelimit");
}
