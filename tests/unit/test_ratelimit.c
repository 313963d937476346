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
							RATELIMIT_HOST_BURST, 0x1234);
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
	struct ratelimit_hosts *h = ratelimit_hosts_new(1, 10, 10, 7);
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

int main(void)
{
	test_bucket();
	test_hosts();
	test_eviction();
	return t_done("test_ratelimit");
}
