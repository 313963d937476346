/* conf/rulehold.c: what a draining proxy keeps while the rules unit is stopped. */
#include <stdlib.h>
#include <sys/socket.h>

#include "conf/addr.h"
#include "conf/conf.h"
#include "conf/marks.h"
#include "conf/rulehold.h"
#include "daemon/strbuf.h"
#include "t.h"

static void sample(struct conf *c, const char *addr)
{
	conf_defaults(c);
	c->headend.naddr = 1;
	if (addr_parse(&c->headend.addr[0], addr) < 0)
		abort();
	c->proxy.enable = true;
}

static const char want4[] =
	"# A draining proxy's tunnels (a restart) reach its sockets while the other rules are off\n"
	"*mangle\n:MTUGATE_HOLD - [0:0]\n-F MTUGATE_HOLD\n"
	"-A MTUGATE_HOLD -p tcp -m socket --transparent -j MARK --set-xmark 0x100/0x100\n"
	"-I PREROUTING -j MTUGATE_HOLD\nCOMMIT\n";

static const char want_nft[] =
	"# A draining proxy's tunnels (a restart) reach its sockets while the other rules are off\n"
	"table inet mtugate_hold\ndelete table inet mtugate_hold\n\n"
	"table inet mtugate_hold {\n\tchain prerouting {\n"
	"\t\ttype filter hook prerouting priority mangle; policy accept;\n"
	"\t\tmeta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set meta mark | 0x100000\n"
	"\t}\n}\n";

static void test_iptables(void)
{
	struct conf c;
	struct strbuf s = { 0 };

	sample(&c, "198.18.2.2");
	CHECK_INT(rulehold_iptables(&c, AF_INET, 1, &s), 0);
	CHECK_STR(s.buf, want4);
	strbuf_free(&s);
	/* No IPv6 headend: nothing for ip6tables, no IPv6 hook. */
	CHECK_INT(rulehold_iptables(&c, AF_INET6, 1, &s), 0);
	CHECK_INT(s.len, 0);
	CHECK_INT(rulehold_hooks(&c, &s), 0);
	CHECK_STR(s.buf, "iptables -t mangle -C PREROUTING -j MTUGATE_HOLD 2>/dev/null ||"
		  " iptables -t mangle -I PREROUTING -j MTUGATE_HOLD\n");
	strbuf_free(&s);
	/* Without hooks: the chain alone, for the hook lines. */
	CHECK_INT(rulehold_iptables(&c, AF_INET, 0, &s), 0);
	CHECK(s.buf && !strstr(s.buf, "-I PREROUTING"));
	CHECK(s.buf && strstr(s.buf, "-A MTUGATE_HOLD"));
	strbuf_free(&s);
}

static void test_nothing(void)
{
	struct conf c;
	struct strbuf s = { 0 };

	/* drain_timeout 0: a restart closes the tunnels, nothing to hold. */
	sample(&c, "2001:db8:2::2");
	c.proxy.drain_timeout = 0;
	CHECK_INT(rulehold_iptables(&c, AF_INET6, 1, &s), 0);
	CHECK_INT(rulehold_nft(&c, &s), 0);
	CHECK_INT(rulehold_hooks(&c, &s), 0);
	CHECK_INT(s.len, 0);
	/* No proxy: nothing either. */
	sample(&c, "2001:db8:2::2");
	c.proxy.enable = false;
	CHECK_INT(rulehold_iptables(&c, AF_INET6, 1, &s), 0);
	CHECK_INT(rulehold_nft(&c, &s), 0);
	CHECK_INT(s.len, 0);
	strbuf_free(&s);
}

static void test_nft(void)
{
	struct conf c;
	struct strbuf s = { 0 };

	/* The proxy's mark moves with [queues] mark_mask, as the routes' fwmark does. */
	sample(&c, "2001:db8:2::2");
	CHECK_INT(marks_from_mask(&c.marks, 0x7f0000), 0);
	CHECK_INT(rulehold_nft(&c, &s), 0);
	CHECK_STR(s.buf, want_nft);
	strbuf_free(&s);
	CHECK_INT(rulehold_iptables(&c, AF_INET6, 1, &s), 0);
	CHECK(s.buf && strstr(s.buf, "--set-xmark 0x100000/0x100000\n"));
	strbuf_free(&s);
}

int main(void)
{
	test_iptables();
	test_nothing();
	test_nft();
	return t_done("test_rulehold");
}
