/* The printed rules: the shipped example configuration against its committed
 * outputs (conf/rules/), and constructed configurations for each variant.
 * `test_rules --write` regenerates conf/rules/ from conf/mtugate.conf. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "conf/conf.h"
#include "conf/diag.h"
#include "conf/rules.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"
#include "tests/unit/t.h"

static char *slurp(const char *path)
{
	struct strbuf b = { 0 };
	char buf[4096];
	size_t n;
	FILE *f = fopen(path, "r");

	if (!f)
		return NULL;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		strbuf_append(&b, buf, n);
	fclose(f);
	if (!b.buf)
		strbuf_append(&b, "", 0);
	return b.buf;
}

static int count(const char *hay, const char *needle)
{
	int n = 0;

	for (const char *p = hay; (p = strstr(p, needle)); p += strlen(needle))
		n++;
	return n;
}

/* count() over the first len bytes of hay only. */
static int count_n(const char *hay, size_t len, const char *needle)
{
	char *part = strndup(hay, len);
	int n = part ? count(part, needle) : -1;

	free(part);
	return n;
}

/* The shipped example: conf/mtugate.conf with the groups of case 1 (conf/examples/udp-blocked). */
static void test_shipped(int write)
{
	static const struct { const char *file; int kind; } outs[] = {
		{ "conf/rules/mtugate.iptables", AF_INET },
		{ "conf/rules/mtugate.ip6tables", AF_INET6 },
		{ "conf/rules/mtugate.nft", 0 },
	};
	struct diag d = { 0 };
	struct policy *p;
	struct conf c;

	conf_defaults(&c);
	CHECK_INT(conf_load(&c, "conf/mtugate.conf", &d), 0);
	snprintf(c.daemon.groups_dir, sizeof(c.daemon.groups_dir), "conf/examples/udp-blocked/groups.d");
	p = policy_load_dir(c.daemon.groups_dir, &d);
	CHECK(p != NULL);
	diag_print(&d, stderr);
	diag_free(&d);
	if (!p)
		return;
	for (size_t i = 0; i < sizeof(outs) / sizeof(outs[0]); i++) {
		struct strbuf out = { 0 };
		char *want;

		if (outs[i].kind)
			CHECK_INT(rules_iptables(&c, p, outs[i].kind, 1, &out), 0);
		else
			CHECK_INT(rules_nft(&c, p, &out), 0);
		if (write) {
			FILE *f = fopen(outs[i].file, "w");

			CHECK(f && fwrite(out.buf, 1, out.len, f) == out.len && fclose(f) == 0);
		}
		want = slurp(outs[i].file);
		CHECK(want != NULL);
		if (want && strcmp(want, out.buf)) {
			fprintf(stderr, "%s differs from the printed rules (run test_rules --write"
				" after a deliberate change):\n%s", outs[i].file, out.buf);
			CHECK(0);
		}
		free(want);
		strbuf_free(&out);
	}
	policy_free(p);
}

static struct prefix *prefixes(size_t *n, const char *a, const char *b)
{
	struct prefix *v = calloc(2, sizeof(*v));

	*n = 0;
	if (a && prefix_parse(&v[(*n)++], a) < 0)
		abort();
	if (b && prefix_parse(&v[(*n)++], b) < 0)
		abort();
	return v;
}

/* Three groups: one of each kind the printers must tell apart. */
static struct policy *sample_policy(void)
{
	struct group *g = calloc(3, sizeof(*g));
	struct diag d = { 0 };
	struct policy *p;

	strcpy(g[0].name, "full");
	g[0].pools = prefixes(&g[0].npools, "192.0.2.128/26", "2001:db8:0:80::/64");
	g[0].mtu = 1380;
	g[0].mss_mode = MSS_AUTO;
	g[0].pmtu = true;
	strcpy(g[1].name, "nomss");		/* mss = off, pmtu = no: no rule at all */
	g[1].pools = prefixes(&g[1].npools, "192.0.2.64/26", "2001:db8:0:40::/64");
	g[1].mtu = 1400;
	g[1].mss_mode = MSS_OFF;
	g[1].pmtu = false;
	strcpy(g[2].name, "small");		/* mtu below IPv6's 1280 */
	g[2].pools = prefixes(&g[2].npools, "192.0.2.0/26", "2001:db8:0:c0::/64");
	g[2].mtu = 1000;
	g[2].mss_mode = MSS_FIXED;
	g[2].mss = 900;
	g[2].pmtu = true;
	for (int i = 0; i < 3; i++)
		strcpy(g[i].auth_group, g[i].name);
	p = policy_compile(g, 3, &d);
	diag_print(&d, stderr);
	diag_free(&d);
	if (!p)
		abort();
	return p;
}

static void sample_conf(struct conf *c, int proxy, int ports_differ, int range)
{
	conf_defaults(c);
	c->queues.mss = (struct qrange){ 0, range ? 1 : 0 };
	c->queues.pmtu = (struct qrange){ 2, 2 };
	c->queues.dtls = (struct qrange){ 3, 3 };
	c->headend.naddr = 2;
	if (addr_parse(&c->headend.addr[0], "198.18.2.2") < 0 ||
	    addr_parse(&c->headend.addr[1], "2001:db8:2::2") < 0)
		abort();
	c->headend.tls_port = 443;
	c->headend.dtls_port = ports_differ ? 444 : 443;
	c->headend.advertised_dtls_port = 443;
	c->proxy.enable = proxy;
	c->proxy.listen_port = 8443;
}

static const char want_v4[] =
	"# mtugate: iptables-restore --noflush (mtugatectl rules --iptables)\n"
	"# The MTUGATE_* chains are flushed and refilled each time. The jumps from\n"
	"# the built-in chains (-I lines) must be added once only: re-apply with\n"
	"# `mtugatectl rules --iptables --no-hooks`, or add them by `mtugatectl rules --hooks`.\n"
	"# Mark bits: NF_REPEAT 0x200, proxy 0x100, DTLS decisions 0xffff000f (the default; [queues]"
	" mark_mask moves them)\n"
	"*mangle\n"
	":MTUGATE_PREROUTING - [0:0]\n"
	":MTUGATE_RESUME - [0:0]\n"
	":MTUGATE_PROXY - [0:0]\n"
	":MTUGATE_DTLS - [0:0]\n"
	":MTUGATE_DTLS_NEW - [0:0]\n"
	":MTUGATE_MSS - [0:0]\n"
	"-F MTUGATE_PREROUTING\n"
	"-F MTUGATE_RESUME\n"
	"-F MTUGATE_PROXY\n"
	"-F MTUGATE_DTLS\n"
	"-F MTUGATE_DTLS_NEW\n"
	"-F MTUGATE_MSS\n"
	"# A decided DTLS flow's later packets: nothing more to do here\n"
	"-A MTUGATE_PREROUTING -p udp -m mark --mark 0x0/0x200 -m connmark --mark"
	" 0x4d540001/0xffff0001 -j RETURN\n"
	"# Decided packets come back (NF_REPEAT, mark 0x200): clear it, and on to the next rules\n"
	"-A MTUGATE_RESUME -j MARK --set-xmark 0x0/0x200\n"
	"-A MTUGATE_PREROUTING -m mark --mark 0x200/0x200 -g MTUGATE_RESUME\n"
	"-A MTUGATE_PREROUTING -p udp -j MTUGATE_DTLS\n"
	"-A MTUGATE_PREROUTING -p tcp --tcp-flags SYN,RST SYN -j MTUGATE_MSS\n"
	"# DTLS: the first datagrams of a flow, until the daemon's mark is on the connection\n"
	"-A MTUGATE_DTLS -d 198.18.2.2 -p udp --dport 443 -m conntrack --ctstate NEW -m connmark"
	" --mark 0x0/0xffff000f -j MTUGATE_DTLS_NEW\n"
	"-A MTUGATE_DTLS -s 198.18.2.2 -p udp --sport 443 -m conntrack --ctstate NEW -m connmark"
	" --mark 0x0/0xffff000f -j NFQUEUE --queue-num 3 --queue-bypass\n"
	"# A flow (client address and port) blocked in the last 30 s (ipsets from rules --ipset,"
	" filled by MTUGATE_FILTER) is blocked again in the kernel\n"
	"-A MTUGATE_DTLS_NEW -m set --match-set mtugate_dtls_drop4 src,src -j MARK --set-xmark"
	" 0x4d540004/0xffff000f\n"
	"-A MTUGATE_DTLS_NEW -m mark --mark 0x0/0xffff0000 -m set --match-set mtugate_dtls_reject4"
	" src,src -j MARK --set-xmark 0x4d54000c/0xffff000f\n"
	"-A MTUGATE_DTLS_NEW -m mark --mark 0x0/0xffff0000 -j NFQUEUE --queue-num 3 --queue-bypass\n"
	"# MSS clamp: SYN and SYN-ACK (never RST) to or from each pool\n"
	"-A MTUGATE_MSS -s 192.0.2.128/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"full\" -j CONNMARK --set-xmark 0x4d540000/0xffff000f\n"
	"-A MTUGATE_MSS -s 192.0.2.128/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"full\" -j NFQUEUE --queue-num 0 --queue-bypass\n"
	"-A MTUGATE_MSS -d 192.0.2.128/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"full\" -j CONNMARK --set-xmark 0x4d540000/0xffff000f\n"
	"-A MTUGATE_MSS -d 192.0.2.128/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"full\" -j NFQUEUE --queue-num 0 --queue-bypass\n"
	"-A MTUGATE_MSS -s 192.0.2.0/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"small\" -j CONNMARK --set-xmark 0x4d540000/0xffff000f\n"
	"-A MTUGATE_MSS -s 192.0.2.0/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"small\" -j NFQUEUE --queue-num 0 --queue-bypass\n"
	"-A MTUGATE_MSS -d 192.0.2.0/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"small\" -j CONNMARK --set-xmark 0x4d540000/0xffff000f\n"
	"-A MTUGATE_MSS -d 192.0.2.0/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment"
	" \"small\" -j NFQUEUE --queue-num 0 --queue-bypass\n"
	"-I PREROUTING -j MTUGATE_PREROUTING\n"
	"COMMIT\n"
	"*filter\n"
	":MTUGATE_FORWARD - [0:0]\n"
	":MTUGATE_RESUME - [0:0]\n"
	":MTUGATE_PMTU - [0:0]\n"
	"-F MTUGATE_FORWARD\n"
	"-F MTUGATE_RESUME\n"
	"-F MTUGATE_PMTU\n"
	":MTUGATE_FILTER - [0:0]\n"
	"-F MTUGATE_FILTER\n"
	"# A decided DTLS flow's later packets: nothing more to do here\n"
	"-A MTUGATE_FORWARD -p udp -m mark --mark 0x0/0x200 -m connmark --mark 0x4d540001/0xffff0001"
	" -j RETURN\n"
	"# Decided packets come back (NF_REPEAT, mark 0x200): clear it, and on to the next rules\n"
	"-A MTUGATE_RESUME -j MARK --set-xmark 0x0/0x200\n"
	"-A MTUGATE_FORWARD -m mark --mark 0x200/0x200 -g MTUGATE_RESUME\n"
	"-A MTUGATE_FORWARD -m mark --mark 0x4d540000/0xffff0000 -j CONNMARK --save-mark --nfmask"
	" 0xffff000f --ctmask 0xffff000f\n"
	"-A MTUGATE_FORWARD -m mark --mark 0x4d540000/0xffff0000 -j MTUGATE_FILTER\n"
	"-A MTUGATE_FORWARD -j MTUGATE_PMTU\n"
	"# dtls = block: remember the flow for 30 s, then drop or reject (ICMP port unreachable)\n"
	"-A MTUGATE_FILTER -m mark --mark 0x4d540005/0xffff000d -j SET --add-set mtugate_dtls_drop4"
	" src,src --exist\n"
	"-A MTUGATE_FILTER -m mark --mark 0x4d54000d/0xffff000d -j SET --add-set"
	" mtugate_dtls_reject4 src,src --exist\n"
	"-A MTUGATE_FILTER -m mark --mark 0x4d540004/0xffff000c -j DROP\n"
	"-A MTUGATE_FILTER -m mark --mark 0x4d54000c/0xffff000c -j REJECT --reject-with"
	" icmp-port-unreachable\n"
	"# Path MTU: packets toward a pool larger than the group's mtu (DF set)\n"
	"-A MTUGATE_PMTU -p tcp -m connmark --mark 0x4d540000/0xffff000f -j RETURN\n"
	"-A MTUGATE_PMTU -d 192.0.2.128/26 -m length --length 1381:65535 -m u32 --u32"
	" \"4&0x4000=0x4000\" -m comment --comment \"full\" -j NFQUEUE --queue-num 2 --queue-bypass\n"
	"-A MTUGATE_PMTU -d 192.0.2.0/26 -m length --length 1001:65535 -m u32 --u32"
	" \"4&0x4000=0x4000\" -m comment --comment \"small\" -j NFQUEUE --queue-num 2"
	" --queue-bypass\n"
	"-I FORWARD -j MTUGATE_FORWARD\n"
	"COMMIT\n";

static void test_variants(void)
{
	struct policy *p = sample_policy();
	struct strbuf o = { 0 };
	struct conf c;

	/* Policy order follows names: full, nomss, small. */
	sample_conf(&c, 0, 0, 0);
	CHECK_INT(rules_iptables(&c, p, AF_INET, 1, &o), 0);
	CHECK_STR(o.buf, want_v4);
	if (strcmp(o.buf, want_v4))
		fprintf(stderr, "%s", o.buf);

	/* IPv6: its own addresses only, no DF match, and no PMTU rule under 1280. */
	strbuf_reset(&o);
	CHECK_INT(rules_iptables(&c, p, AF_INET6, 1, &o), 0);
	CHECK_INT(count(o.buf, "198.18.") + count(o.buf, "192.0.2."), 0);
	CHECK_INT(count(o.buf, "-A MTUGATE_MSS -s 2001:db8:0:80::/64 -p tcp --tcp-flags SYN,RST SYN"), 2);
	CHECK_INT(count(o.buf, "-A MTUGATE_MSS -d 2001:db8:0:c0::/64 -p tcp --tcp-flags SYN,RST SYN"), 2);
	/* IPv6: no UDP (fragments the kernel reassembled would look oversize). */
	CHECK_INT(count(o.buf, "-A MTUGATE_PMTU -d 2001:db8:0:80::/64 -m length --length 1381:65535"
			" ! -p udp -m comment --comment \"full\" -j NFQUEUE --queue-num 2 --queue-bypass\n"), 1);
	CHECK_INT(count(o.buf, "# small: mtu 1000 is below the IPv6 minimum 1280: no rule\n"), 1);
	CHECK_INT(count(o.buf, "2001:db8:0:c0::/64 -m length"), 0);
	CHECK_INT(count(o.buf, "u32"), 0);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -d 2001:db8:2::2 -p udp --dport 443 -m conntrack"), 1);
	/* mss = off and pmtu = no: the group's pools appear nowhere. */
	CHECK_INT(count(o.buf, "2001:db8:0:40::"), 0);
	CHECK_INT(count(o.buf, "TPROXY") + count(o.buf, "*nat"), 0);

	/* No hooks: the only difference is the three -I lines. */
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 0, &o);
	CHECK_INT(count(o.buf, "\n-I "), 0);
	CHECK_INT((long long)o.len, (long long)strlen(want_v4) -
		  (long long)strlen("-I PREROUTING -j MTUGATE_PREROUTING\n-I FORWARD -j MTUGATE_FORWARD\n"));

	/* A queue range, the proxy, and CSCuh61321's split ports. */
	sample_conf(&c, 1, 1, 1);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "-j NFQUEUE --queue-balance 0:1 --queue-bypass\n"), 4);
	/* The proxy intake is entered by TCP only; without the proxy (want_v4) not at all. */
	CHECK_INT(count(o.buf, "-A MTUGATE_PREROUTING -p tcp -j MTUGATE_PROXY\n"), 1);
	CHECK_INT(count(want_v4, "-j MTUGATE_PROXY"), 0);
	CHECK_INT(count(o.buf, "--queue-num 0 "), 0);
	/* The drop before the socket match, which takes the loopback listener. */
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -p tcp --dport 8443 -m addrtype --dst-type LOCAL -j DROP\n"
			"-A MTUGATE_PROXY -p tcp -m socket --transparent -j MARK --set-xmark"
			" 0x100/0x100\n-A MTUGATE_PROXY -p tcp -m socket --transparent -j RETURN\n"
			"-A MTUGATE_PROXY -d 198.18.2.2 -p tcp --dport 443 -j TPROXY --on-ip 127.0.0.1"
			" --on-port 8443 --tproxy-mark 0x100/0x100\n"), 1);
	/* The listener is bound to loopback (issue 17): TPROXY names it. */
	CHECK_INT(count(o.buf, "--on-port 8443 "), count(o.buf, "--on-ip 127.0.0.1 --on-port 8443 "));
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -d 198.18.2.2 -p udp -m multiport --dports 443,444"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -s 198.18.2.2 -p udp -m multiport --sports 443,444"), 1);
	/* With the proxy, the headend's first answer in a flow is copied (issue 18), before the
	 * settled flows leave the chain. */
	CHECK_INT(count(o.buf, "-A MTUGATE_PREROUTING -s 198.18.2.2 -p udp -m multiport --sports"
			" 443,444 -m connbytes --connbytes 1:1 --connbytes-dir reply --connbytes-mode"
			" packets -m conntrack --ctstate ESTABLISHED --ctdir REPLY -j NFLOG"
			" --nflog-group 3 --nflog-size 128\n# A decided DTLS flow's later packets"), 1);
	CHECK_INT(count(o.buf, "*nat\n:MTUGATE_DNAT - [0:0]\n:MTUGATE_SNAT - [0:0]\n-F MTUGATE_DNAT\n"
			"-F MTUGATE_SNAT\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DNAT -d 198.18.2.2 -p udp --dport 443 -m mark --mark"
			" 0x4d540002/0xffff0002 -j DNAT --to-destination 198.18.2.2:444\n"), 1);
	/* Its mirror: a flow the headend restarts from 444 leaves from 443. */
	CHECK_INT(count(o.buf, "-A MTUGATE_SNAT -s 198.18.2.2 -p udp --sport 444 -m mark --mark"
			" 0x4d540002/0xffff0002 -j SNAT --to-source 198.18.2.2:443\n"
			"-I PREROUTING -j MTUGATE_DNAT\n-I POSTROUTING -j MTUGATE_SNAT\nCOMMIT\n"), 1);
	CHECK_INT(count(o.buf, "MTUGATE_SNAT"), 4);
	CHECK_INT(count(o.buf, "# A default-drop FORWARD chain sees these flows with destination port"
			" 444: accept udp to 444 (or -m conntrack --ctorigdstport 443)\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS_NEW -m mark --mark 0x0/0xffff0000 -j NFQUEUE"
			" --queue-num 3 --queue-bypass\n"), 1);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET6, 1, &o);
	CHECK_INT(count(o.buf, "-j DNAT --to-destination [2001:db8:2::2]:444\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_SNAT -s 2001:db8:2::2 -p udp --sport 444 -m mark --mark"
			" 0x4d540002/0xffff0002 -j SNAT --to-source [2001:db8:2::2]:443\n"), 1);
	CHECK_INT(count(o.buf, "198.18.2.2"), 0);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -d 2001:db8:2::2 -p udp -m multiport --dports 443,444"
			" -m conntrack --ctstate NEW -m connmark --mark 0x0/0xffff000f -j MTUGATE_DTLS_NEW\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_FILTER -m mark --mark 0x4d54000d/0xffff000d -j SET --add-set"
			" mtugate_dtls_reject6 src,src --exist\n"), 1);
	CHECK_INT(count(o.buf, "-m set --match-set mtugate_dtls_drop6 src,src -j MARK"), 1);
	CHECK_INT(count(o.buf, "dtls_drop4") + count(o.buf, "dtls_reject4"), 0);
	CHECK_INT(count(o.buf, "-j REJECT --reject-with icmp6-port-unreachable\n"), 1);
	CHECK_INT(count(o.buf, "icmp-port-unreachable"), 0);
	CHECK_INT(count(o.buf, "*filter\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -d 2001:db8:2::2 -p tcp --dport 443 -j TPROXY"
			" --on-ip ::1 --on-port 8443 "), 1);
	CHECK_INT(count(o.buf, "127.0.0.1"), 0);

	strbuf_reset(&o);
	CHECK_INT(rules_routes(&c, &o), 0);
	CHECK_STR(o.buf, "ip rule add fwmark 0x100/0x100 lookup 100\n"
		  "ip route add local 0.0.0.0/0 dev lo table 100\n"
		  "ip -6 rule add fwmark 0x100/0x100 lookup 100\n"
		  "ip -6 route add local ::/0 dev lo table 100\n");
	strbuf_reset(&o);
	CHECK_INT(rules_hooks(&c, &o), 0);
	CHECK_INT(count(o.buf, "\n"), 8);
	CHECK_INT(count(o.buf, "ip6tables -t nat -C POSTROUTING -j MTUGATE_SNAT 2>/dev/null ||"
			" ip6tables -t nat -I POSTROUTING -j MTUGATE_SNAT\n"), 1);
	CHECK_INT(count(o.buf, "ip6tables -t filter -C FORWARD -j MTUGATE_FORWARD 2>/dev/null ||"
			" ip6tables -t filter -I FORWARD -j MTUGATE_FORWARD\n"), 1);
	CHECK_INT(count(o.buf, "MTUGATE_FILTER") + count(o.buf, "mangle -C FORWARD"), 0);
	CHECK_INT(count(o.buf, "iptables -t nat -C PREROUTING -j MTUGATE_DNAT 2>/dev/null ||"
			" iptables -t nat -I PREROUTING -j MTUGATE_DNAT\n"), 1);
	/* The sets the iptables files match and fill: per flow, both families. */
	strbuf_reset(&o);
	CHECK_INT(rules_ipset(&c, &o), 0);
	CHECK_STR(o.buf, "create mtugate_dtls_drop4 hash:ip,port family inet timeout 30 maxelem 65536\n"
		  "create mtugate_dtls_reject4 hash:ip,port family inet timeout 30 maxelem 65536\n"
		  "create mtugate_dtls_drop6 hash:ip,port family inet6 timeout 30 maxelem 65536\n"
		  "create mtugate_dtls_reject6 hash:ip,port family inet6 timeout 30 maxelem 65536\n");

	strbuf_reset(&o);
	CHECK_INT(rules_nft(&c, p, &o), 0);
	CHECK_INT(count(o.buf, "table inet mtugate\ndelete table inet mtugate\n"), 1);
	/* A clamped group's SYN marks its connection, and the forward chain lets
	 * such TCP pass the PMTU rules (GSO super-packets, see rules.c). */
	CHECK_INT(count(o.buf, "ip saddr 192.0.2.128/26 tcp flags & (syn | rst) == syn"
			" ct mark set ct mark & 0x0000fff0 | 0x4d540000 queue num 0-1 bypass\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta l4proto tcp ct mark & 0xffff000f == 0x4d540000 return\n"), 1);
	CHECK(strstr(o.buf, "l4proto tcp ct mark") < strstr(o.buf, "meta length"));
	CHECK_INT(count(o.buf, "fanout"), 0);	/* by flow, as iptables --queue-balance */
	CHECK_INT(count(o.buf, "ip daddr 192.0.2.128/26 ip frag-off & 0x4000 != 0 meta length"
			" 1381-65535 queue num 2 bypass\n"), 1);
	CHECK_INT(count(o.buf, "ip6 daddr 2001:db8:0:80::/64 meta l4proto != udp meta length 1381-65535"
			" queue num 2 bypass\n"), 1);
	CHECK_INT(count(o.buf, "2001:db8:0:c0::/64 meta length"), 0);
	CHECK_INT(count(o.buf, "192.0.2.64/26") + count(o.buf, "2001:db8:0:40::"), 0);
	CHECK_INT(count(o.buf, "ip daddr 198.18.2.2 udp dport { 443, 444 } ct state new ct mark &"
			" 0xffff000f == 0x0 jump dtls_new\n"), 1);
	CHECK_INT(count(o.buf, "ip6 saddr 2001:db8:2::2 udp sport { 443, 444 } ct state new ct mark &"
			" 0xffff000f == 0x0 queue num 3 bypass\n"), 1);
	CHECK_INT(count(o.buf, "ip6 saddr 2001:db8:2::2 udp sport { 443, 444 } ct reply packets 1"
			" ct state established ct direction reply log group 3 snaplen 128\n"), 1);
	/* Blocked clients: timeout sets, filled from forward, read before the queue. */
	CHECK_INT(count(o.buf, "\tset dtls_reject6 {\n\t\ttype ipv6_addr . inet_service; flags dynamic,"
			" timeout; timeout 30s; size 65536;\n\t}\n"), 1);
	CHECK_INT(count(o.buf, "\tset dtls_"), 4);
	CHECK_INT(count(o.buf, "\tchain dtls_new {\n"
			"\t\tip saddr . udp sport @dtls_drop4 meta mark set meta mark & 0x0000fff0 | 0x4d540004"
			" return\n"
			"\t\tip6 saddr . udp sport @dtls_drop6 meta mark set meta mark & 0x0000fff0 | 0x4d540004"
			" return\n"
			"\t\tip saddr . udp sport @dtls_reject4 meta mark set meta mark & 0x0000fff0 | 0x4d54000c"
			" return\n"
			"\t\tip6 saddr . udp sport @dtls_reject6 meta mark set meta mark & 0x0000fff0 |"
			" 0x4d54000c return\n"
			"\t\tmeta mark & 0xffff0000 == 0x0 queue num 3 bypass\n\t}\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0xffff000d == 0x4d540005 meta nfproto ipv4 update"
			" @dtls_drop4 { ip saddr . udp sport }\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0xffff000d == 0x4d54000d meta nfproto ipv6 update"
			" @dtls_reject6 { ip6 saddr . udp sport }\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0xffff000c == 0x4d540004 drop\n"
			"\t\tmeta mark & 0xffff000c == 0x4d54000c reject with icmpx type port-unreachable\n"), 1);
	/* The decision's bits onto the connection, and nothing else of the packet's
	 * mark: one rule per decision (no two-register operation in nft 1.0). */
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0xffff000f == 0x4d540003 ct mark set ct mark &"
			" 0x0000fff0 | 0x4d540003\n"), 1);
	CHECK_INT(count(o.buf, " ct mark set ct mark & 0x0000fff0 | 0x4d54") -
		  count(o.buf, " ct mark set ct mark & 0x0000fff0 | 0x4d540000 queue"), 6);
	CHECK_INT(count(o.buf, "ct mark set meta mark"), 0);
	/* The sets are updated after the connmark save and before the pools' rules. */
	CHECK(strstr(o.buf, "ct mark set ct mark") != NULL &&
	      strstr(o.buf, "ct mark set ct mark") < strstr(o.buf, "update @dtls_drop4"));
	CHECK(strstr(o.buf, "reject with icmpx") < strstr(o.buf, "meta length"));
	/* Each base chain that queues lets a settled DTLS flow's packets go first,
	 * then decided packets pass, bit cleared. */
	CHECK_INT(count(o.buf, "\tchain prerouting {\n\t\ttype filter hook prerouting priority mangle;"
			" policy accept;\n\t\tip saddr 198.18.2.2 udp sport { 443, 444 } ct reply packets 1"
			" ct state established ct direction reply log group 3 snaplen 128\n"
			"\t\tip6 saddr 2001:db8:2::2 udp sport { 443, 444 } ct reply packets 1"
			" ct state established ct direction reply log group 3 snaplen 128\n"
			"\t\tmeta l4proto udp meta mark & 0x200 == 0x0 ct mark & 0xffff0001 == 0x4d540001"
			" return\n\t\tmeta mark & 0x200 == 0x200 meta mark set meta mark &"
			" 0xfffffdff return\n"), 1);
	CHECK_INT(count(o.buf, "\tchain forward {\n\t\ttype filter hook forward priority mangle;"
			" policy accept;\n\t\tmeta l4proto udp meta mark & 0x200 == 0x0 ct mark & 0xffff0001 == 0x4d540001"
			" return\n\t\tmeta mark & 0x200 == 0x200 meta mark set meta mark &"
			" 0xfffffdff return\n"), 1);
	/* SYNs are queued in prerouting, after the proxy intake and the DTLS rules. */
	CHECK(strstr(o.buf, "chain prerouting") < strstr(o.buf, "tcp flags"));
	CHECK(strstr(o.buf, "queue num 3 bypass\n\t\tip saddr 192.0.2.128/26 tcp flags") != NULL);
	CHECK(strstr(o.buf, "tcp flags") < strstr(o.buf, "chain forward"));
	CHECK(strstr(strstr(o.buf, "chain forward"), "tcp flags") == NULL);
	CHECK_INT(count(o.buf, "tproxy ip to 127.0.0.1:8443 accept\n"), 1);
	CHECK_INT(count(o.buf, "tproxy ip6 to [::1]:8443 accept\n"), 1);
	CHECK_INT(count(o.buf, " to :8443"), 0);
	CHECK_INT(count(o.buf, "dnat ip6 to [2001:db8:2::2]:444\n"), 1);
	/* The SNAT of a flow the headend restarts, at srcnat, both families. */
	CHECK_INT(count(o.buf, "\tchain nat_postrouting {\n\t\ttype nat hook postrouting priority"
			" srcnat - 1; policy accept;\n\t\tip saddr 198.18.2.2 udp sport 444 meta mark &"
			" 0xffff0002 == 0x4d540002 snat ip to 198.18.2.2:443\n"), 1);
	CHECK_INT(count(o.buf, "\t\tip6 saddr 2001:db8:2::2 udp sport 444 meta mark & 0xffff0002 =="
			" 0x4d540002 snat ip6 to [2001:db8:2::2]:443\n"), 1);
	CHECK_INT(count(o.buf, "{"), count(o.buf, "}"));

	/* Proxy off, ports equal, a queue off: nothing of those. */
	sample_conf(&c, 0, 0, 0);
	c.queues.pmtu.first = c.queues.pmtu.last = -1;
	strbuf_reset(&o);
	rules_routes(&c, &o);
	CHECK_INT((long long)o.len, 0);
	strbuf_reset(&o);
	rules_hooks(&c, &o);
	CHECK_INT(count(o.buf, "MTUGATE_DNAT") + count(o.buf, "MTUGATE_SNAT"), 0);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "-A MTUGATE_PMTU"), 0);
	CHECK_INT(count(o.buf, "-A MTUGATE_MSS"), 4);
	strbuf_reset(&o);
	rules_nft(&c, p, &o);
	CHECK_INT(count(o.buf, "tproxy") + count(o.buf, "socket") + count(o.buf, "meta length") +
		  count(o.buf, "chain nat_prerouting") + count(o.buf, "snat"), 0);

	/* PMTU queue off: FORWARD has no settled-flow exit (nothing after it to
	 * skip but native mark tests) and no jump to the empty MTUGATE_PMTU. */
	{
		struct conf np;

		sample_conf(&np, 0, 0, 0);
		np.queues.pmtu.first = np.queues.pmtu.last = -1;
		strbuf_reset(&o);
		rules_iptables(&np, p, AF_INET, 1, &o);
		CHECK_INT(count(o.buf, "-j MTUGATE_PMTU") + count(o.buf, "-A MTUGATE_FORWARD -p udp"), 0);
		CHECK_INT(count(o.buf, "-A MTUGATE_PREROUTING -p udp -m mark --mark 0x0/0x200 -m connmark"), 1);
		CHECK_INT(count(o.buf, "-A MTUGATE_FORWARD -m mark --mark 0x4d540000/0xffff0000 -j MTUGATE_FILTER\n"), 1);
	}
	/* DTLS queue off: no DTLS rule, no block chain, no sets. */
	c.queues.dtls.first = c.queues.dtls.last = -1;
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS") + count(o.buf, "MTUGATE_FILTER") + count(o.buf, "-m set") +
		  count(o.buf, "CONNMARK"), 0);
	CHECK_INT(count(o.buf, "*filter\n"), 1);
	CHECK_INT(count(o.buf, "-I FORWARD -j MTUGATE_FORWARD\nCOMMIT\n"), 1);
	strbuf_reset(&o);
	CHECK_INT(rules_ipset(&c, &o), 0);
	CHECK_INT(o.len, 0);
	strbuf_reset(&o);
	rules_hooks(&c, &o);
	CHECK_INT(count(o.buf, "MTUGATE_FILTER"), 0);
	strbuf_reset(&o);
	rules_nft(&c, p, &o);
	CHECK_INT(count(o.buf, "dtls_") + count(o.buf, "udp"), 0);
	/* No IPv6 headend: no IPv6 DTLS rules, and no block chain for it. */
	sample_conf(&c, 0, 0, 0);
	c.headend.naddr = 1;
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET6, 1, &o);
	CHECK_INT(count(o.buf, "MTUGATE_FILTER") + count(o.buf, "-A MTUGATE_DTLS"), 0);
	strbuf_reset(&o);
	rules_hooks(&c, &o);
	CHECK_INT(count(o.buf, "MTUGATE_FILTER"), 0);
	CHECK_INT(count(o.buf, "iptables -t filter -C FORWARD -j MTUGATE_FORWARD"), 1);
	CHECK_INT(count(o.buf, "ip6tables -t filter -C FORWARD -j MTUGATE_FORWARD"), 1);

	strbuf_free(&o);
	policy_free(p);
}

/* proxy = no: the group's clients pass the TPROXY intake by address, after the
 * proxy's own sockets and before TPROXY; other groups' clients are taken. */
static void test_proxy_bypass(void)
{
	struct group *g = calloc(2, sizeof(*g));
	struct strbuf o = { 0 };
	struct diag d = { 0 };
	struct policy *p;
	struct conf c;

	strcpy(g[0].name, "certs");
	g[0].pools = prefixes(&g[0].npools, "192.0.2.0/26", "2001:db8:0:40::/64");
	g[0].clients = prefixes(&g[0].nclients, "198.18.5.0/24", "2001:db8:5::/64");
	g[0].mtu = 1400;
	g[0].proxy_bypass = true;
	strcpy(g[1].name, "tlsonly");
	g[1].pools = prefixes(&g[1].npools, "192.0.2.128/26", NULL);
	g[1].clients = prefixes(&g[1].nclients, "198.18.1.0/24", NULL);
	g[1].mtu = 1380;
	for (int i = 0; i < 2; i++)
		strcpy(g[i].auth_group, g[i].name);
	p = policy_compile(g, 2, &d);
	CHECK(p != NULL);
	if (!p)
		return;
	sample_conf(&c, 1, 0, 0);
	rules_iptables(&c, p, AF_INET, 1, &o);
	/* The listener's port on a local address is dropped before anything returns:
	 * only what TPROXY diverts (the headend's address) reaches the proxy. */
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -p tcp --dport 8443 -m addrtype --dst-type LOCAL -j DROP\n"
			"-A MTUGATE_PROXY -p tcp -m socket --transparent -j MARK --set-xmark 0x100/0x100\n"
			"-A MTUGATE_PROXY -p tcp -m socket --transparent -j RETURN\n"
			"-A MTUGATE_PROXY -s 198.18.5.0/24 -m comment --comment \"certs: proxy = no\" -j RETURN\n"
			"-A MTUGATE_PROXY -d 198.18.2.2 -p tcp --dport 443 -j TPROXY"), 1);
	/* Two in the intake; the others are the settled DTLS flows' exits. */
	CHECK_INT(count(o.buf, "-j RETURN\n") - count(o.buf, "0x4d540001/0xffff0001 -j RETURN\n") -
		  count(o.buf, "-m mark --mark 0x0/0xffff0000 -j RETURN\n"), 2);
	CHECK_INT(count(o.buf, "2001:db8:5::/64") + count(o.buf, "-s 198.18.1.0/24"), 0);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET6, 1, &o);
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -s 2001:db8:5::/64 -m comment --comment \"certs: proxy = no\""
			" -j RETURN\n-A MTUGATE_PROXY -d 2001:db8:2::2 -p tcp --dport 443 -j TPROXY"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -p tcp --dport 8443 -m addrtype --dst-type LOCAL -j DROP\n"), 1);
	CHECK_INT(count(o.buf, "198.18.5.0/24"), 0);
	/* nft: the intake is a chain of its own, as MTUGATE_PROXY: its returns go
	 * back to prerouting, whose DTLS and MSS rules follow the jump. The socket
	 * match skips a wildcard listener, as iptables' does; the local port's
	 * drop comes first, as the socket match takes the loopback listener. */
	strbuf_reset(&o);
	rules_nft(&c, p, &o);
	CHECK_INT(count(o.buf, "\tchain proxy {\n\t\tfib daddr type local tcp dport 8443 drop\n"
			"\t\tmeta l4proto tcp socket transparent 1 socket wildcard 0"
			" meta mark set meta mark | 0x100 return\n"
			"\t\tip saddr 198.18.5.0/24 tcp dport 443 return comment \"certs: proxy = no\"\n"
			"\t\tip6 saddr 2001:db8:5::/64 tcp dport 443 return comment \"certs: proxy = no\"\n"
			"\t\tip daddr 198.18.2.2 tcp dport 443 meta mark set"), 1);
	CHECK_INT(count(o.buf, "saddr 198.18.1.0/24"), 0);
	CHECK_INT(count(o.buf, "return comment"), 2);
	{
		/* prerouting: the settled flows' exit, the resume guard, the jump, then
		 * DTLS and MSS; no other return. */
		const char *pre = strstr(o.buf, "\tchain prerouting {");
		const char *end = pre ? strstr(pre, "\n\t}\n") : NULL;
		const char *jump = pre ? strstr(pre, "\t\tjump proxy\n") : NULL;

		CHECK(pre && end && jump && jump < end);
		CHECK(jump && strstr(jump, "udp dport") < end && strstr(jump, "tcp flags") < end);
		CHECK_INT(pre && end ? count_n(pre, (size_t)(end - pre), " return") : -1, 2);
	}
	/* Without the proxy there is no intake to pass. */
	sample_conf(&c, 0, 0, 0);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "198.18.5.0/24"), 0);
	strbuf_reset(&o);
	rules_nft(&c, p, &o);
	CHECK_INT(count(o.buf, "198.18.5.0/24"), 0);
	strbuf_free(&o);
	policy_free(p);
}

/* A reload asks for the rules to be re-applied exactly when they differ. */
static void test_changed(void)
{
	struct policy *a = sample_policy(), *b = sample_policy(), *q;
	struct group *g = calloc(1, sizeof(*g));
	struct diag d = { 0 };
	struct conf c, c2;

	sample_conf(&c, 1, 1, 0);
	c2 = c;
	CHECK_INT(rules_changed(&c, a, &c2, a), 0);
	CHECK_INT(rules_changed(&c, a, &c2, b), 0);	/* compiled twice, the same */
	c2.headend.tls_port = 8443;
	CHECK_INT(rules_changed(&c, a, &c2, b), 1);
	c2 = c;
	c2.proxy.enable = 0;
	CHECK_INT(rules_changed(&c, a, &c2, b), 1);
	c2 = c;
	c2.daemon.log_level = LOG_LEVEL_DEBUG;	/* not in any rule */
	CHECK_INT(rules_changed(&c, a, &c2, b), 0);
	/* One group instead of three. */
	strcpy(g->name, "full");
	strcpy(g->auth_group, "full");
	g->pools = prefixes(&g->npools, "192.0.2.128/26", "2001:db8:0:80::/64");
	g->mtu = 1380;
	g->pmtu = true;
	q = policy_compile(g, 1, &d);
	CHECK(q != NULL);
	CHECK_INT(rules_changed(&c, a, &c, q), 1);
	policy_free(q);
	policy_free(a);
	policy_free(b);
	diag_free(&d);
}

/* Not one mark of the default layout in buf. */
static void no_default_marks(const char *buf)
{
	static const char *const defaults[] = { "0x4d54", "0xffff", "0x200/", "0x100/", "/0x200\n",
						"| 0x100 ", "0xfffffdff", "0x0000fff0" };

	for (size_t i = 0; i < sizeof(defaults) / sizeof(defaults[0]); i++)
		CHECK_INT(count(buf, defaults[i]), 0);
}

/* [queues] mark_mask = 0x7f0000: every mark of every printer moves into the
 * mask (decided 0x10000, normalize 0x20000, blocked 0x40000, reject 0x80000,
 * proxy 0x100000, done 0x200000, tag 0x400000), and no default bit is left. */
static void test_mark_mask(void)
{
	struct policy *p = sample_policy();
	struct strbuf o = { 0 };
	struct conf c, def;

	sample_conf(&def, 1, 1, 0);
	sample_conf(&c, 1, 1, 0);
	CHECK_INT(marks_from_mask(&c.marks, 0x7f0000), 0);
	c.queues.mark_mask = 0x7f0000;

	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "# Mark bits: NF_REPEAT 0x200000, proxy 0x100000, DTLS decisions 0x4f0000"
			" ([queues] mark_mask)\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_RESUME -j MARK --set-xmark 0x0/0x200000\n"
			"-A MTUGATE_PREROUTING -m mark --mark 0x200000/0x200000 -g MTUGATE_RESUME\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_RESUME -j MARK --set-xmark 0x0/0x200000\n"
			"-A MTUGATE_FORWARD -m mark --mark 0x200000/0x200000 -g MTUGATE_RESUME\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -p tcp -m socket --transparent -j MARK --set-xmark"
			" 0x100000/0x100000\n"), 1);
	CHECK_INT(count(o.buf, " --tproxy-mark 0x100000/0x100000\n"), 1);
	CHECK_INT(count(o.buf, "-m conntrack --ctstate NEW -m connmark --mark 0x0/0x4f0000"), 2);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS_NEW -m set --match-set mtugate_dtls_drop4 src,src"
			" -j MARK --set-xmark 0x440000/0x4f0000\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS_NEW -m mark --mark 0x0/0x400000 -m set --match-set"
			" mtugate_dtls_reject4 src,src -j MARK --set-xmark 0x4c0000/0x4f0000\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_FORWARD -m mark --mark 0x400000/0x400000 -j CONNMARK"
			" --save-mark --nfmask 0x4f0000 --ctmask 0x4f0000\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_FILTER -m mark --mark 0x450000/0x4d0000 -j SET --add-set"
			" mtugate_dtls_drop4 src,src --exist\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_FILTER -m mark --mark 0x4c0000/0x4c0000 -j REJECT"), 1);
	CHECK_INT(count(o.buf, "-m mark --mark 0x420000/0x420000 -j DNAT --to-destination"
			" 198.18.2.2:444\n"), 1);
	no_default_marks(o.buf);
	/* The same number of lines as the default layout's: only values moved. */
	{
		struct strbuf d = { 0 };

		rules_iptables(&def, p, AF_INET, 1, &d);
		CHECK_INT(count(o.buf, "\n"), count(d.buf, "\n"));
		CHECK_INT(count(o.buf, "mark"), count(d.buf, "mark"));
		strbuf_reset(&d);
		strbuf_reset(&o);
		rules_iptables(&def, p, AF_INET6, 1, &d);
		rules_iptables(&c, p, AF_INET6, 1, &o);
		CHECK_INT(count(o.buf, "\n"), count(d.buf, "\n"));
		CHECK_INT(count(o.buf, "-A MTUGATE_FILTER -m mark --mark 0x4d0000/0x4d0000 -j SET --add-set"
				" mtugate_dtls_reject6 src,src --exist\n"), 1);
		no_default_marks(o.buf);
		strbuf_free(&d);
	}

	strbuf_reset(&o);
	CHECK_INT(rules_nft(&c, p, &o), 0);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0x200000 == 0x200000 meta mark set meta mark"
			" & 0xffdfffff return\n"), 2);
	CHECK_INT(count(o.buf, "meta l4proto tcp socket transparent 1 socket wildcard 0 meta mark set"
			" meta mark | 0x100000 return\n"), 1);
	CHECK_INT(count(o.buf, "meta mark set meta mark | 0x100000 tproxy"), 2);
	CHECK_INT(count(o.buf, "ct state new ct mark & 0x4f0000 == 0x0"), 4);
	CHECK_INT(count(o.buf, "ip saddr . udp sport @dtls_reject4 meta mark set meta mark & 0xffb0ffff |"
			" 0x4c0000 return\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0x400000 == 0x0 queue num 3 bypass\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0x4f0000 == 0x430000 ct mark set ct mark & 0xffb0ffff"
			" | 0x430000\n"), 1);
	CHECK_INT(count(o.buf, "ct mark set ct mark & 0xffb0ffff | 0x4") -
		  count(o.buf, "ct mark set ct mark & 0xffb0ffff | 0x400000 queue"), 6);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0x4d0000 == 0x450000 meta nfproto ipv6 update"
			" @dtls_drop6 { ip6 saddr . udp sport }\n"), 1);
	CHECK_INT(count(o.buf, "\t\tmeta mark & 0x4c0000 == 0x440000 drop\n"), 1);
	CHECK_INT(count(o.buf, "meta mark & 0x420000 == 0x420000 dnat ip6 to [2001:db8:2::2]:444\n"), 1);
	CHECK_INT(count(o.buf, "meta mark & 0x420000 == 0x420000 snat ip6 to [2001:db8:2::2]:443\n"), 1);
	no_default_marks(o.buf);

	strbuf_reset(&o);
	CHECK_INT(rules_routes(&c, &o), 0);
	CHECK_STR(o.buf, "ip rule add fwmark 0x100000/0x100000 lookup 100\n"
		  "ip route add local 0.0.0.0/0 dev lo table 100\n"
		  "ip -6 rule add fwmark 0x100000/0x100000 lookup 100\n"
		  "ip -6 route add local ::/0 dev lo table 100\n");

	/* A table of the administrator's choosing for TPROXY's routes. */
	c.proxy.route_table = 4242;
	strbuf_reset(&o);
	CHECK_INT(rules_routes(&c, &o), 0);
	CHECK_STR(o.buf, "ip rule add fwmark 0x100000/0x100000 lookup 4242\n"
		  "ip route add local 0.0.0.0/0 dev lo table 4242\n"
		  "ip -6 rule add fwmark 0x100000/0x100000 lookup 4242\n"
		  "ip -6 route add local ::/0 dev lo table 4242\n");
	CHECK_INT(rules_changed(&def, p, &c, p), 1);
	c.proxy.route_table = 100;

	/* A reload that moves the marks needs the rules re-applied. */
	CHECK_INT(rules_changed(&def, p, &c, p), 1);
	strbuf_free(&o);
	policy_free(p);
}

/* conntrackd's Filter for a pair: TCP and UDP, the headend's flows as a
 * commented Accept, the node's own addresses ignored (loopback once, no
 * duplicates, no link-local). */
static void test_conntrackd(void)
{
	static const char *const own[] = { "127.0.0.1", "198.18.5.2", "fe80::1", "2001:db8:5::2",
					   "198.18.5.2", "::1", "198.18.9.1" };
	struct ipaddr ign[7];
	struct strbuf o = { 0 };
	struct conf c;

	for (size_t i = 0; i < 7; i++)
		CHECK_INT(addr_parse(&ign[i], own[i]), 0);
	sample_conf(&c, 0, 1, 0);
	CHECK_INT(rules_conntrackd(&c, ign, 7, &o), 0);
	CHECK_INT(count(o.buf, "Filter From Userspace {\n\tProtocol Accept {\n\t\tTCP\n\t\tUDP\n\t}\n"), 1);
	CHECK_INT(count(o.buf, "# The flows mtugate needs on the other node: UDP to and from the"
			" headend's DTLS ports 444 and 443"), 1);
	CHECK_INT(count(o.buf, "\t# Address Accept {\n\t#\tIPv4_address 198.18.2.2 # headend\n"
			"\t#\tIPv6_address 2001:db8:2::2 # headend\n\t# }\n"), 1);
	CHECK_INT(count(o.buf, "\tAddress Ignore {\n\t\tIPv4_address 127.0.0.1 # loopback\n"
			"\t\tIPv6_address ::1 # loopback\n\t\tIPv4_address 198.18.5.2\n"
			"\t\tIPv6_address 2001:db8:5::2\n\t\tIPv4_address 198.18.9.1\n\t}\n}\n"), 1);
	CHECK_INT(count(o.buf, "fe80"), 0);
	CHECK_INT(count(o.buf, "127.0.0.1"), 1);
	CHECK_INT(count(o.buf, "{"), count(o.buf, "}"));
	/* One DTLS port; nothing of its own but loopback. */
	sample_conf(&c, 0, 0, 0);
	strbuf_reset(&o);
	CHECK_INT(rules_conntrackd(&c, NULL, 0, &o), 0);
	CHECK_INT(count(o.buf, "DTLS port 443 (the mark"), 1);
	CHECK_INT(count(o.buf, "_address"), 4);
	strbuf_free(&o);
}

/* A headend behind the admin's port forward: clients reach 198.18.1.1 and
 * 2001:db8:1::1, the firewall's DNAT takes them to 198.18.2.2 and
 * 2001:db8:2::2. Client-bound matches see the public address (mangle runs
 * before nat), headend-bound ones the private; mtugate's nat comes first. */
static void portfwd_conf(struct conf *c, int proxy, int ports_differ)
{
	sample_conf(c, proxy, ports_differ, 0);
	c->headend.npublic = 2;
	if (addr_parse(&c->headend.public_address[0], "198.18.1.1") < 0 ||
	    addr_parse(&c->headend.public_address[1], "2001:db8:1::1") < 0)
		abort();
}

static void test_portfwd(void)
{
	struct policy *p = sample_policy();
	struct strbuf o = { 0 };
	struct conf c;

	portfwd_conf(&c, 1, 1);
	CHECK(conf_headend_forwarded(&c, 0));
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -d 198.18.1.1 -p tcp --dport 443 -j TPROXY"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -d 198.18.1.1 -p udp -m multiport --dports 443,444"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -s 198.18.2.2 -p udp -m multiport --sports 443,444"), 1);
	/* The headend's first answer in a flow comes from its own address (NFLOG). */
	CHECK_INT(count(o.buf, "-A MTUGATE_PREROUTING -s 198.18.2.2 -p udp -m multiport --sports 443,444"
			" -m connbytes --connbytes 1:1"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DNAT -d 198.18.1.1 -p tcp --dport 443 -m mark --mark 0x100/0x100"
			" -j DNAT --to-destination 198.18.1.1\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DNAT -d 198.18.1.1 -p udp --dport 443 -m mark --mark"
			" 0x4d540002/0xffff0002 -j DNAT --to-destination 198.18.2.2:444\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_SNAT -s 198.18.2.2 -p udp --sport 444 -m mark --mark"
			" 0x4d540002/0xffff0002 -j SNAT --to-source 198.18.1.1:443\n"), 1);
	/* The proxy's login first: its DNAT must win over the DTLS one's port only by address. */
	CHECK(strstr(o.buf, "-p tcp --dport 443 -m mark --mark 0x100") < strstr(o.buf, "-p udp --dport 443 -m mark"));
	CHECK_INT(count(o.buf, "-I PREROUTING -j MTUGATE_DNAT\n"), 1);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET6, 1, &o);
	CHECK_INT(count(o.buf, "-A MTUGATE_PROXY -d 2001:db8:1::1 -p tcp --dport 443 -j TPROXY"), 1);
	CHECK_INT(count(o.buf, "-j DNAT --to-destination 2001:db8:1::1\n"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_DNAT -d 2001:db8:1::1 -p udp --dport 443 -m mark --mark"
			" 0x4d540002/0xffff0002 -j DNAT --to-destination [2001:db8:2::2]:444\n"), 1);
	CHECK_INT(count(o.buf, "-j SNAT --to-source [2001:db8:1::1]:443\n"), 1);
	strbuf_reset(&o);
	rules_nft(&c, p, &o);
	CHECK_INT(count(o.buf, "ip daddr 198.18.1.1 tcp dport 443 meta mark set meta mark | 0x100 tproxy"), 1);
	CHECK_INT(count(o.buf, "ip daddr 198.18.1.1 udp dport { 443, 444 } ct state new"), 1);
	CHECK_INT(count(o.buf, "ip saddr 198.18.2.2 udp sport { 443, 444 } ct state new"), 1);
	CHECK_INT(count(o.buf, "type nat hook prerouting priority dstnat - 1;"), 1);
	CHECK_INT(count(o.buf, "ip daddr 198.18.1.1 tcp dport 443 meta mark & 0x100 == 0x100"
			" dnat ip to 198.18.1.1\n"), 1);
	CHECK_INT(count(o.buf, "ip6 daddr 2001:db8:1::1 udp dport 443 meta mark & 0xffff0002 =="
			" 0x4d540002 dnat ip6 to [2001:db8:2::2]:444\n"), 1);
	CHECK_INT(count(o.buf, "snat ip to 198.18.1.1:443\n"), 1);
	CHECK_INT(count(o.buf, "{"), count(o.buf, "}"));

	/* Equal ports: the nat chains hold only the proxy's DNAT, and are hooked. */
	portfwd_conf(&c, 1, 0);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "-A MTUGATE_DNAT"), 1);
	CHECK_INT(count(o.buf, "-A MTUGATE_SNAT"), 0);
	CHECK_INT(count(o.buf, "-I POSTROUTING -j MTUGATE_SNAT\n"), 1);
	strbuf_reset(&o);
	rules_hooks(&c, &o);
	CHECK_INT(count(o.buf, "nat -I PREROUTING -j MTUGATE_DNAT"), 2);
	/* No proxy, equal ports: the admin's DNAT does it all, mtugate has no nat. */
	portfwd_conf(&c, 0, 0);
	strbuf_reset(&o);
	rules_iptables(&c, p, AF_INET, 1, &o);
	CHECK_INT(count(o.buf, "*nat"), 0);
	CHECK_INT(count(o.buf, "-A MTUGATE_DTLS -d 198.18.1.1 -p udp --dport 443"), 1);
	strbuf_reset(&o);
	rules_nft(&c, p, &o);
	CHECK_INT(count(o.buf, "type nat"), 0);
	/* A headend whose public address is its own is not forwarded. */
	c.headend.public_address[1] = c.headend.addr[1];
	CHECK(!conf_headend_forwarded(&c, 1));
	strbuf_free(&o);
	policy_free(p);
}

/* The clamp's connection mark (rules.c, rules_clamp_marks()): only for an
 * enforcing group whose SYNs the mss queue takes and whose oversize packets
 * the pmtu queue takes; the PMTU exemption only when some group has it. */
static void test_clamp_marks(void)
{
	struct group *g = calloc(2, sizeof(*g));
	static const char mark[] = "-j CONNMARK --set-xmark 0x4d540000/0xffff000f\n";
	static const char pass[] = "-A MTUGATE_PMTU -p tcp -m connmark --mark 0x4d540000/0xffff000f -j RETURN\n";
	struct strbuf o = { 0 };
	struct diag d = { 0 };
	struct policy *p;
	struct conf c;

	strcpy(g[0].name, "enf");
	g[0].pools = prefixes(&g[0].npools, "192.0.2.128/26", "2001:db8:0:80::/64");
	strcpy(g[1].name, "obs");
	g[1].pools = prefixes(&g[1].npools, "192.0.2.0/26", "2001:db8:0:c0::/64");
	g[1].mode = MODE_OBSERVE;
	for (int i = 0; i < 2; i++) {
		g[i].mtu = 1380;
		g[i].mss_mode = MSS_AUTO;
		g[i].pmtu = true;
		strcpy(g[i].auth_group, g[i].name);
	}
	if (!(p = policy_compile(g, 2, &d)))
		abort();
	diag_free(&d);
	sample_conf(&c, 0, 0, 0);
	CHECK_INT(rules_iptables(&c, p, AF_INET, 0, &o), 0);
	/* SYN and SYN-ACK of the enforcing group's pool, not the observed one's. */
	CHECK_INT(count(o.buf, mark), 2);
	CHECK_INT(count(o.buf, "-s 192.0.2.128/26 -p tcp --tcp-flags SYN,RST SYN -m comment --comment \"enf\" -j CONNMARK"), 1);
	CHECK_INT(count(o.buf, "\"obs\" -j CONNMARK"), 0);
	CHECK_INT(count(o.buf, pass), 1);
	/* The mark comes before the queue, the exemption before any PMTU queue. */
	CHECK(strstr(o.buf, mark) < strstr(o.buf, "\"enf\" -j NFQUEUE --queue-num 0"));
	CHECK(strstr(o.buf, pass) < strstr(o.buf, "-A MTUGATE_PMTU -d"));
	strbuf_reset(&o);
	CHECK_INT(rules_iptables(&c, p, AF_INET6, 0, &o), 0);
	CHECK_INT(count(o.buf, mark), 2);
	CHECK_INT(count(o.buf, pass), 1);
	/* Without the pmtu queue there is nothing to exempt from. */
	c.queues.pmtu = (struct qrange){ -1, -1 };
	strbuf_reset(&o);
	CHECK_INT(rules_iptables(&c, p, AF_INET, 0, &o), 0);
	CHECK_INT(count(o.buf, "CONNMARK --set-xmark") + count(o.buf, "MTUGATE_PMTU -p tcp"), 0);
	strbuf_reset(&o);
	CHECK_INT(rules_nft(&c, p, &o), 0);
	CHECK_INT(count(o.buf, "| 0x4d540000 queue") + count(o.buf, "l4proto tcp ct mark"), 0);
	strbuf_free(&o);
	policy_free(p);
}

int main(int argc, char **argv)
{
	test_shipped(argc > 1 && strcmp(argv[1], "--write") == 0);
	test_variants();
	test_proxy_bypass();
	test_changed();
	test_mark_mask();
	test_conntrackd();
	test_portfwd();
	test_clamp_marks();
	return t_done("test_rules");
}
