/* proxy/budget.c: per-source counts by masked prefix, eviction order, the
 * close-log rate. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "proxy/budget.h"
#include "t.h"

static const uint8_t v4a[4] = { 198, 18, 1, 2 }, v4b[4] = { 198, 18, 1, 3 };
static const uint8_t v6a[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1 };
/* Same /64 as v6a, another host part. */
static const uint8_t v6b[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 2, 0xaa, 0xbb, 0, 0, 0, 0, 0, 9 };
/* The next /64. */
static const uint8_t v6c[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 1 };

/* A source's share: the third from one address evicts that address's least
 * recently active, not anyone else's. */
static void test_per_source(void)
{
	struct budget *b = budget_new(100, 2, 32, 64, 12345);
	struct budget_node n[4] = { 0 };

	CHECK(b != NULL);
	CHECK(budget_victim(b, AF_INET, v4a) == NULL);
	CHECK_INT(budget_add(b, &n[0], AF_INET, v4a), 0);
	CHECK_INT(budget_add(b, &n[1], AF_INET, v4b), 0);
	CHECK_INT(budget_add(b, &n[2], AF_INET, v4a), 0);
	CHECK_INT(budget_source_count(b, AF_INET, v4a), 2);
	CHECK_INT(budget_source_count(b, AF_INET, v4b), 1);
	CHECK_INT(budget_sources(b), 2);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[0]);
	CHECK(budget_victim(b, AF_INET, v4b) == NULL);
	CHECK_INT(budget_add(b, &n[3], AF_INET, v4a), -ENOSPC);
	/* Activity moves a node to the end of its source's order too. */
	budget_touch(b, &n[0]);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[2]);
	budget_remove(b, &n[2]);
	CHECK(n[2].src == NULL);
	budget_remove(b, &n[2]);	/* twice: a no-op */
	CHECK_INT(budget_count(b), 2);
	CHECK_INT(budget_add(b, &n[3], AF_INET, v4a), 0);
	budget_remove(b, &n[0]);
	budget_remove(b, &n[3]);
	CHECK_INT(budget_source_count(b, AF_INET, v4a), 0);
	CHECK_INT(budget_sources(b), 1);
	budget_remove(b, &n[1]);
	CHECK_INT(budget_count(b), 0);
	CHECK_INT(budget_sources(b), 0);
	budget_free(b);
}

/* IPv6 counts by /64 (a host picks any address in its /64); the prefix
 * lengths are the caller's. */
static void test_prefixes(void)
{
	struct budget *b = budget_new(100, 1, 24, 64, 1);
	struct budget_node n[3] = { 0 };

	CHECK_INT(budget_add(b, &n[0], AF_INET6, v6a), 0);
	CHECK(budget_victim(b, AF_INET6, v6b) == &n[0]);
	CHECK(budget_victim(b, AF_INET6, v6c) == NULL);
	CHECK_INT(budget_add(b, &n[1], AF_INET6, v6c), 0);
	/* v4a and v4b share a /24 here. */
	CHECK_INT(budget_add(b, &n[2], AF_INET, v4a), 0);
	CHECK(budget_victim(b, AF_INET, v4b) == &n[2]);
	/* An IPv4 key never meets an IPv6 one whose bytes look alike. */
	CHECK_INT(budget_source_count(b, AF_INET6, (const uint8_t[16]){ 198, 18, 1 }), 0);
	for (int i = 0; i < 3; i++)
		budget_remove(b, &n[i]);
	budget_free(b);

	/* Odd prefix lengths mask inside a byte: /60 and /23. */
	b = budget_new(100, 1, 23, 60, 1);
	CHECK_INT(budget_add(b, &n[0], AF_INET6, v6a), 0);
	CHECK(budget_victim(b, AF_INET6, v6c) == &n[0]);	/* ..:2 and ..:3 share a /60 */
	CHECK_INT(budget_add(b, &n[1], AF_INET, (const uint8_t[4]){ 198, 18, 0, 9 }), 0);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);	/* 198.18.1.2 in 198.18.0.0/23 */
	CHECK(budget_victim(b, AF_INET, (const uint8_t[4]){ 198, 18, 2, 1 }) == NULL);
	budget_remove(b, &n[0]);
	budget_remove(b, &n[1]);
	budget_free(b);
}

/* The total: a new source evicts the least recently active of all. */
static void test_total(void)
{
	enum { N = 1000 };
	struct budget *b = budget_new(N, 4, 32, 64, 99);
	struct budget_node *n = calloc(N + 1, sizeof(*n));
	uint8_t a[4] = { 10, 0, 0, 0 };

	for (int i = 0; i < N; i++) {
		a[2] = (uint8_t)(i >> 8);
		a[3] = (uint8_t)i;
		CHECK(budget_victim(b, AF_INET, a) == NULL);
		CHECK_INT(budget_add(b, &n[i], AF_INET, a), 0);
	}
	CHECK_INT(budget_count(b), N);
	CHECK_INT(budget_sources(b), N);
	a[2] = 0xff;
	CHECK(budget_victim(b, AF_INET, a) == &n[0]);
	budget_touch(b, &n[0]);
	budget_touch(b, &n[N - 1]);	/* the last already: stays */
	CHECK(budget_victim(b, AF_INET, a) == &n[1]);
	budget_remove(b, &n[1]);
	CHECK(budget_victim(b, AF_INET, a) == NULL);
	CHECK_INT(budget_add(b, &n[N], AF_INET, a), 0);
	/* The order after churn: 2, 3, ..., 998, 0, 999, N. */
	CHECK(budget_victim(b, AF_INET, v4a) == &n[2]);
	for (int i = 0; i <= N; i++)
		budget_remove(b, &n[i]);
	CHECK_INT(budget_count(b), 0);
	CHECK_INT(budget_sources(b), 0);
	free(n);
	budget_free(b);
}

/* A node past its TLS handshake goes only after every node short of it, in
 * the source's share and in the total alike, whatever their activity. */
static void test_classes(void)
{
	struct budget *b = budget_new(4, 3, 32, 64, 7);
	struct budget_node n[6] = { 0 };
	const uint8_t other[4] = { 198, 18, 1, 9 };

	CHECK_INT(budget_add(b, &n[0], AF_INET, v4a), 0);
	CHECK_INT(budget_add(b, &n[1], AF_INET, v4a), 0);
	CHECK_INT(budget_add(b, &n[2], AF_INET, v4a), 0);
	budget_promote(b, &n[0]);
	budget_promote(b, &n[0]);	/* twice: a no-op */
	CHECK(n[0].done);
	/* The source is full: its oldest still in handshake goes first. */
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);
	budget_touch(b, &n[1]);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[2]);
	budget_promote(b, &n[1]);
	budget_promote(b, &n[2]);
	/* All past it: the least recently active of them, n[0] (promoted first). */
	CHECK(budget_victim(b, AF_INET, v4a) == &n[0]);
	budget_touch(b, &n[0]);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);
	/* The total: a newer connection still in handshake goes before them. */
	CHECK_INT(budget_add(b, &n[3], AF_INET, other), 0);
	CHECK(budget_victim(b, AF_INET, v4b) == &n[3]);
	budget_remove(b, &n[3]);
	CHECK(n[3].src == NULL && !n[3].done);
	CHECK_INT(budget_add(b, &n[4], AF_INET, other), 0);
	budget_promote(b, &n[4]);
	CHECK(budget_victim(b, AF_INET, v4b) == &n[1]);
	budget_remove(b, &n[1]);
	CHECK(budget_victim(b, AF_INET, v4b) == NULL);
	for (int i = 0; i < 6; i++)
		budget_remove(b, &n[i]);
	CHECK_INT(budget_count(b), 0);
	CHECK_INT(budget_sources(b), 0);
	budget_free(b);
}

/* A login waiting on the headend's answer (an MFA push) goes only after every
 * login that waits on its client, however much older it is; once answered it
 * is back among them, as just active. */
static void test_waiting(void)
{
	struct budget *b = budget_new(8, 3, 32, 64, 11);
	struct budget_node n[4] = { 0 };

	for (int i = 0; i < 3; i++) {
		CHECK_INT(budget_add(b, &n[i], AF_INET, v4a), 0);
		budget_promote(b, &n[i]);
	}
	budget_wait(b, &n[0], true);
	budget_wait(b, &n[0], true);	/* twice: a no-op */
	CHECK(n[0].waiting);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);
	budget_touch(b, &n[1]);
	budget_touch(b, &n[2]);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);
	budget_touch(b, &n[0]);	/* its client spoke: still waiting */
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);
	budget_wait(b, &n[1], true);
	budget_wait(b, &n[2], true);
	/* All wait: the one waiting longest. */
	CHECK(budget_victim(b, AF_INET, v4a) == &n[0]);
	budget_wait(b, &n[1], false);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[1]);
	budget_remove(b, &n[1]);
	CHECK(!n[1].waiting && !n[1].done);
	/* Only past the handshake: one still in it is never "waiting". */
	CHECK_INT(budget_add(b, &n[3], AF_INET, v4a), 0);
	budget_wait(b, &n[3], true);
	CHECK(!n[3].waiting);
	CHECK(budget_victim(b, AF_INET, v4a) == &n[3]);
	for (int i = 0; i < 4; i++)
		budget_remove(b, &n[i]);
	CHECK_INT(budget_count(b), 0);
	CHECK_INT(budget_sources(b), 0);
	budget_free(b);
}

/* login_timeout counts the client's time only: a 3-minute wait on the
 * headend between two requests, with default deadlines (300 s), does not
 * bring a login that spent 150 s in its client's hands to its end. */
static void test_clock(void)
{
	struct budget_clock k;

	budget_clock_start(&k, 1000);
	CHECK_INT(budget_clock_client(&k, 1100), 100);
	CHECK_INT(budget_clock_headend(&k, 1100), 0);
	budget_clock_wait(&k, true, 1100);
	budget_clock_wait(&k, true, 1150);	/* no change: the wait started at 1100 */
	CHECK_INT(budget_clock_client(&k, 1280), 100);
	CHECK_INT(budget_clock_headend(&k, 1280), 180);
	budget_clock_wait(&k, false, 1280);
	CHECK_INT(budget_clock_headend(&k, 1280), 0);
	CHECK_INT(budget_clock_client(&k, 1330), 150);
	CHECK(budget_clock_client(&k, 1330) < 300);
	budget_clock_wait(&k, false, 1400);	/* no change */
	budget_clock_wait(&k, true, 1400);
	budget_clock_wait(&k, false, 1410);
	CHECK_INT(budget_clock_client(&k, 1410), 220);
	/* A trickling client: every second its own, the deadline comes. */
	budget_clock_start(&k, 0);
	CHECK_INT(budget_clock_client(&k, 300), 300);
}

/* Close-log lines: rate per second pass, the rest come back as one count
 * when the second is over. */
static void test_lograte(void)
{
	struct budget_lograte r = { 0 };
	unsigned sum = 7, passed = 0;

	for (int i = 0; i < 100; i++) {
		passed += budget_log_step(&r, 1000, 10, &sum);
		CHECK_INT(sum, 0);
	}
	CHECK_INT(passed, 10);
	CHECK_INT(budget_log_flush(&r, 1000), 0);	/* the same second: nothing yet */
	CHECK(budget_log_step(&r, 1001, 10, &sum));
	CHECK_INT(sum, 90);
	for (int i = 0; i < 12; i++)
		budget_log_step(&r, 1001, 10, &sum);
	CHECK_INT(budget_log_flush(&r, 1003), 3);
	CHECK_INT(budget_log_flush(&r, 1004), 0);
}

int main(void)
{
	test_per_source();
	test_prefixes();
	test_total();
	test_classes();
	test_waiting();
	test_clock();
	test_lograte();
	return t_done("test_budget");
}
