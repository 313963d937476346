/* policy/parse.c: group files into struct group, groups.d into a policy. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "conf/diag.h"
#include "policy/policy.h"
#include "tests/unit/t.h"

#define G "tests/conf/groups/"

static void check_prefix(const struct prefix *p, const char *want)
{
	char buf[64];

	CHECK_STR(prefix_format(p, buf, sizeof(buf)), want);
}

/* The shipped example of the UDP-blocked case (conf/examples). */
#define EXAMPLE_TLSONLY "conf/examples/udp-blocked/groups.d/tlsonly.conf"

static void test_example_tlsonly(void)
{
	struct group g;
	struct diag d = { 0 };

	CHECK_INT(group_parse_file(&g, EXAMPLE_TLSONLY, &d), 0);
	CHECK_INT(diag_count(&d), 0);
	CHECK_STR(g.name, "tlsonly");
	CHECK_STR(g.auth_group, "tlsonly");
	CHECK_STR(g.file, EXAMPLE_TLSONLY);
	CHECK_INT(g.line_name, 5);
	CHECK_INT(g.line_auth, 7);
	CHECK_INT(g.line_pool, 9);
	CHECK_INT(g.line_clients, 0);
	CHECK_INT(g.npools, 2);
	if (g.npools == 2) {
		check_prefix(&g.pools[0], "198.51.100.128/26");
		check_prefix(&g.pools[1], "2001:db8:b:80::/64");
	}
	CHECK_INT(g.nclients, 0);
	CHECK_INT(g.mtu, 1380);
	CHECK_INT(g.dtls, DTLS_BLOCK);
	CHECK_INT(g.dtls_block, DTLS_BLOCK_REJECT);
	CHECK_INT(g.mss_mode, MSS_AUTO);
	CHECK(g.pmtu);
	CHECK_INT(g.pmtu_rate, 100);
	CHECK(!g.proxy_bypass);
	/* auto: the MTU minus 40 (IPv4 + TCP) or 60 (IPv6 + TCP). */
	CHECK_INT(group_mss(&g, AF_INET), 1340);
	CHECK_INT(group_mss(&g, AF_INET6), 1320);
	group_release(&g);
	CHECK(g.pools == NULL);
	CHECK_INT(g.npools, 0);
}

static void test_defaults_and_fixed(void)
{
	struct group g;
	struct diag d = { 0 };

	/* Only pool and mtu: the name is the file's, everything else default. */
	CHECK_INT(group_parse_file(&g, G "good-minimal.conf", &d), 0);
	CHECK_STR(g.name, "good-minimal");
	CHECK_STR(g.auth_group, "good-minimal");
	CHECK_INT(g.line_name, 2);	/* the [group] line stands in for the name */
	CHECK_INT(g.line_clients, 0);
	CHECK_INT(g.nclients, 0);
	CHECK(g.clients == NULL);
	CHECK_INT(g.dtls, DTLS_RELAY);
	CHECK_INT(g.dtls_block, DTLS_BLOCK_DROP);
	CHECK_INT(g.mss_mode, MSS_AUTO);
	CHECK(g.pmtu);
	CHECK_INT(g.pmtu_rate, 100);
	CHECK_INT(g.mtu, 576);
	CHECK(!g.proxy_bypass);
	CHECK_INT(g.line_proxy, 0);
	CHECK_INT(group_mss(&g, AF_INET), 536);	/* RFC 879's default MSS */
	group_release(&g);

	CHECK_INT(group_parse_file(&g, G "good-v6.conf", &d), 0);
	CHECK_STR(g.name, "v6.only-group_1");
	CHECK_STR(g.auth_group, "VPN Users (v6)");
	check_prefix(&g.pools[1], "2001:db8:2::1/128");
	CHECK_INT(g.nclients, 0);	/* "clients =" */
	CHECK_INT(g.line_clients, 5);
	CHECK_INT(g.dtls, DTLS_PASS);
	CHECK(!g.pmtu);
	CHECK_INT(g.pmtu_rate, 100000);
	CHECK_INT(g.mss_mode, MSS_FIXED);
	CHECK_INT(g.mss, 1200);
	CHECK_INT(group_mss(&g, AF_INET), 1200);
	CHECK_INT(group_mss(&g, AF_INET6), 1200);
	group_release(&g);

	/* A fixed MSS that fits IPv4 exactly is capped by 20 bytes for IPv6. */
	CHECK_INT(group_parse_file(&g, G "good-fixed-mss.conf", &d), 0);
	CHECK_INT(g.mss, 8960);
	CHECK_INT(group_mss(&g, AF_INET), 8960);
	CHECK_INT(group_mss(&g, AF_INET6), 8940);
	CHECK_INT(g.nclients, 3);
	check_prefix(&g.clients[2], "2001:db8:ffff::/48");
	CHECK(g.proxy_bypass);	/* "proxy = off", with clients to pass by */
	CHECK_INT(g.line_proxy, 7);
	group_release(&g);
	CHECK_INT(diag_count(&d), 0);

	memset(&g, 0, sizeof(g));
	g.mtu = 1400;
	g.mss_mode = MSS_OFF;
	CHECK_INT(group_mss(&g, AF_INET), 0);
	CHECK_INT(group_mss(&g, AF_INET6), 0);
	diag_free(&d);
}

static void test_errors(void)
{
	struct group g;
	struct diag d = { 0 };

	/* Failure leaves nothing to free but still frees cleanly. */
	CHECK_INT(group_parse_file(&g, G "bad-values.conf", &d), -1);
	CHECK_INT(diag_count(&d), 6);
	CHECK_STR(d.msgs[0], G "bad-values.conf:5: invalid mtu 'big': expected a number");
	CHECK_STR(d.msgs[5], G "bad-values.conf:10: invalid pmtu_rate '0': expected 1..100000 ICMP messages per second");
	group_release(&g);
	diag_free(&d);

	CHECK_INT(group_parse_file(&g, "/nonexistent/x.conf", &d), -1);
	CHECK_STR(d.msgs[0], "/nonexistent/x.conf: cannot open: No such file or directory");
	group_release(&g);
	diag_free(&d);
}

static void test_load_dir(void)
{
	struct diag d = { 0 };
	struct policy *p = policy_load_dir("tests/conf/groupdirs/good-two/", &d);
	const struct group *g;
	uint8_t a4[4], a6[16];

	CHECK(p != NULL);
	CHECK_INT(diag_count(&d), 0);
	if (!p)
		return;
	/* Name order; README and the dot file are not groups. */
	CHECK_INT(policy_count(p), 2);
	CHECK_STR(policy_group(p, 0)->name, "relay");
	CHECK_STR(policy_group(p, 1)->name, "tlsonly");
	/* The trailing slash of the folder does not double in the file name. */
	CHECK_STR(policy_group(p, 1)->file, "tests/conf/groupdirs/good-two/b-tlsonly.conf");
	inet_pton(AF_INET, "192.0.2.130", a4);
	g = policy_by_pool(p, AF_INET, a4);
	CHECK(g && !strcmp(g->name, "tlsonly"));
	inet_pton(AF_INET6, "2001:db8:0:40::9", a6);
	g = policy_by_pool(p, AF_INET6, a6);
	CHECK(g && !strcmp(g->name, "relay"));
	inet_pton(AF_INET, "198.18.1.7", a4);
	g = policy_by_clients(p, AF_INET, a4);
	CHECK(g && !strcmp(g->name, "tlsonly"));
	g = policy_by_auth(p, "relay", 5);
	CHECK(g && !strcmp(g->name, "relay"));
	policy_free(p);

	CHECK(policy_load_dir("/nonexistent/groups.d", &d) == NULL);
	CHECK_STR(d.msgs[0], "/nonexistent/groups.d: cannot open: No such file or directory");
	diag_free(&d);

	/* Errors of every file, and across files, together. */
	CHECK(policy_load_dir("tests/conf/groupdirs/bad-mixed", &d) == NULL);
	CHECK_INT(diag_count(&d), 4);
	diag_free(&d);
}

/* Two files set their own auth_group and name one pool: it is shared, and an
 * address no tunnel claimed goes to the smaller MTU. */
static void test_shared_pool_dir(void)
{
	struct diag d = { 0 };
	struct policy *p = policy_load_dir("tests/conf/groupdirs/good-shared-pool", &d);
	const struct group *g;
	uint8_t a4[4];

	CHECK(p != NULL);
	CHECK_INT(diag_count(&d), 0);
	if (!p)
		return;
	CHECK(policy_group(p, 0)->pool_shared && policy_group(p, 1)->pool_shared);
	CHECK_INT(policy_group(p, 0)->line_auth, 3);
	inet_pton(AF_INET, "192.0.2.9", a4);
	g = policy_by_pool(p, AF_INET, a4);
	CHECK(g && !strcmp(g->name, "tlsonly"));
	CHECK(group_has_addr(policy_group(p, 0), AF_INET, a4));
	policy_free(p);
}

int main(void)
{
	test_example_tlsonly();
	test_shared_pool_dir();
	test_defaults_and_fixed();
	test_errors();
	test_load_dir();
	return t_done("test_group");
}
