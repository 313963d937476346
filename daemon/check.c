#include "daemon/check.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "conf/conf.h"
#include "conf/deploy.h"
#include "daemon/nfqproc.h"
#include "daemon/sandbox.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"
#include "proxy/tls.h"

#define CHECK_CONNECT_MS 3000
#define CHECK_SHOW_MAX 5	/* lines shown of a long finding */

struct check {
	const struct check_env *e;
	unsigned problems;
	char ns[64];		/* the scratch namespace, once made */
	bool scratch;		/* and this configuration's rules are in it */
	bool nft;		/* the rules are nft's table, not iptables' chains */
};

static void check_ok(struct check *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check_ok(struct check *k, const char *fmt, ...)
{
	va_list ap;

	fputs("ok       ", k->e->out);
	va_start(ap, fmt);
	vfprintf(k->e->out, fmt, ap);
	va_end(ap);
	fputc('\n', k->e->out);
}

/* Not a fault of the running deployment, but one an administrator will
 * meet: a warning and its fix, not counted as a problem. */
static void check_warn(struct check *k, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check_warn(struct check *k, const char *fix, const char *fmt, ...)
{
	va_list ap;

	fputs("warning  ", k->e->out);
	va_start(ap, fmt);
	vfprintf(k->e->out, fmt, ap);
	va_end(ap);
	fprintf(k->e->out, "\n         fix: %s\n", fix);
}

/* A problem and, on the next line, its fix. */
static void check_bad(struct check *k, const char *fix, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void check_bad(struct check *k, const char *fix, const char *fmt, ...)
{
	va_list ap;

	k->problems++;
	fputs("PROBLEM  ", k->e->out);
	va_start(ap, fmt);
	vfprintf(k->e->out, fmt, ap);
	va_end(ap);
	fprintf(k->e->out, "\n         fix: %s\n", fix);
}

/* Up to CHECK_SHOW_MAX lines of text, indented, and how many more. */
static void check_show(struct check *k, const char *text)
{
	unsigned n = 0;

	for (const char *p = text; p && *p; n++) {
		const char *e = strchr(p, '\n');
		size_t l = e ? (size_t)(e - p) : strlen(p);

		if (n < CHECK_SHOW_MAX)
			fprintf(k->e->out, "           %.*s\n", (int)l, p);
		p = e ? e + 1 : p + l;
	}
	if (n > CHECK_SHOW_MAX)
		fprintf(k->e->out, "           (%u more)\n", n - CHECK_SHOW_MAX);
}

/* sh -c cmd, its standard output into out (stderr discarded): the exit
 * status, or -1 when it could not run. */
static int check_sh(const char *cmd, struct strbuf *out)
{
	struct strbuf full = { 0 };
	char buf[8192];
	size_t n;
	FILE *f;
	int st;

	strbuf_printf(&full, "( %s ) 2>/dev/null", cmd);
	f = full.buf ? popen(full.buf, "r") : NULL;
	strbuf_free(&full);
	if (!f)
		return -1;
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		if (out)
			strbuf_append(out, buf, n);
	if (out && !out->buf)
		strbuf_append(out, "", 0);
	st = pclose(f);
	return st < 0 ? -1 : WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int check_file_int(const char *path)
{
	char buf[32] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -1;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	return n > 0 ? atoi(buf) : -1;
}

static bool check_uses_v6(const struct check_env *e)
{
	for (size_t i = 0; i < e->conf->headend.naddr; i++)
		if (e->conf->headend.addr[i].family == AF_INET6)
			return true;
	for (size_t i = 0; e->policy && i < policy_count(e->policy); i++) {
		const struct group *g = policy_group(e->policy, i);

		for (size_t j = 0; j < g->npools; j++)
			if (g->pools[j].family == AF_INET6)
				return true;
	}
	return false;
}

static void check_kernel(struct check *k)
{
	if (check_file_int("/proc/sys/net/ipv4/ip_forward") == 1)
		check_ok(k, "net.ipv4.ip_forward = 1");
	else
		check_bad(k, "sysctl -w net.ipv4.ip_forward=1, and set it in /etc/sysctl.d/",
			  "net.ipv4.ip_forward is not 1: the firewall forwards no IPv4, tunnels included");
	if (check_uses_v6(k->e)) {
		if (check_file_int("/proc/sys/net/ipv6/conf/all/forwarding") == 1)
			check_ok(k, "net.ipv6.conf.all.forwarding = 1");
		else
			check_bad(k, "sysctl -w net.ipv6.conf.all.forwarding=1, and set it in /etc/sysctl.d/",
				  "net.ipv6.conf.all.forwarding is not 1, and the configuration has IPv6"
				  " addresses");
	}
	if (access("/proc/sys/net/netfilter/nf_conntrack_max", F_OK) == 0)
		check_ok(k, "conntrack is loaded");
	else
		check_bad(k, "modprobe nf_conntrack (and list it in /etc/modules-load.d/)",
			  "conntrack is not loaded: the DTLS decisions and the rules' state matches need it");
}

/* The queue the answering daemon reports as num, or NULL. */
static const struct check_queue *check_ours(const struct check_env *e, unsigned num)
{
	for (size_t i = 0; i < e->nqueues; i++)
		if (e->queues[i].num == num)
			return &e->queues[i];
	return NULL;
}

static void check_queue(struct check *k, const struct nfqproc_row *rows, size_t n,
			const struct qrange *q, const char *kind)
{
	for (int num = q->first; q->first >= 0 && num <= q->last; num++) {
		const struct nfqproc_row *row = nfqproc_find(rows, n, (uint32_t)num);
		const struct check_queue *ours = check_ours(k->e, (unsigned)num);

		if (!row) {
			check_bad(k, "start mtugated with this configuration (systemctl start mtugate);"
				     " see `journalctl -u mtugate -p warning`",
				  "NFQUEUE %d (%s) has no listener: its packets pass unqueued (fail-open),"
				  " unclamped", num, kind);
			return;
		}
		if (k->e->daemon_answers && (!ours || ours->portid != row->portid)) {
			char fix[160];

			snprintf(fix, sizeof(fix), "choose queue numbers nobody else uses in [queues] (or"
				 " stop the other program), then restart mtugate and its rules");
			check_bad(k, fix, "NFQUEUE %d (%s) is bound by another program (netlink port %u%s%u):"
				  " it gets the packets mtugate's rules queue there", num, kind,
				  row->portid, ours ? "; mtugated's is " : "; the running mtugated has no"
				  " queue ", ours ? ours->portid : (unsigned)num);
			return;
		}
	}
	if (q->first >= 0)
		check_ok(k, "NFQUEUE %d%s%.0d (%s) is bound", q->first, q->last > q->first ? "-" : "",
			 q->last > q->first ? q->last : 0, kind);
}

/*
 * Fail-open: a packet that finds its queue full, or no program bound, passes
 * unqueued, and the kernel counts it nowhere (nfnetlink_queue's dropped
 * counters are for queues without fail-open). The NFQUEUE rules' packet
 * counters say what was sent to the queues, the kernel's id sequence what it
 * handed to the bound program since it bound: the rest went by mtugated.
 * Both restart together under the units (the rules unit follows the
 * daemon), and a re-apply of the rules starts their count again.
 */
static void check_bypass(struct check *k, const struct nfqproc_row *rows, size_t n,
			 const struct qrange *q, const char *kind)
{
	struct strbuf save = { 0 };
	uint64_t sent, got = 0;

	if (q->first < 0 || k->nft ||
	    check_sh("iptables-save -c -t mangle; ip6tables-save -c -t mangle", &save) != 0 || !save.buf) {
		strbuf_free(&save);
		return;
	}
	sent = deploy_queue_packets(save.buf, q->first, q->last);
	strbuf_free(&save);
	for (int num = q->first; num <= q->last; num++) {
		const struct nfqproc_row *row = nfqproc_find(rows, n, (uint32_t)num);

		if (!row)
			return;	/* unbound: check_queue() said so */
		got += row->id_sequence;
	}
	if (sent <= got)
		check_ok(k, "NFQUEUE %d%s%.0d (%s): none of the %llu packets its rules sent passed"
			 " without mtugated", q->first, q->last > q->first ? "-" : "",
			 q->last > q->first ? q->last : 0, kind, (unsigned long long)sent);
	else
		check_bad(k, "raise [queues] max_len, or spread the queue over a range (mss ="
			     " 40000-40003), then restart mtugate; a daemon restarted without its rules"
			     " unit also shows here: systemctl restart mtugate-rules starts the count again",
			  "NFQUEUE %d%s%.0d (%s): %llu of the %llu packets its rules sent passed without"
			  " mtugated (the queue full, or nothing bound): unclamped, undecided",
			  q->first, q->last > q->first ? "-" : "", q->last > q->first ? q->last : 0,
			  kind, (unsigned long long)(sent - got), (unsigned long long)sent);
}

static void check_daemon(struct check *k)
{
	const struct conf *c = k->e->conf;
	struct nfqproc_row rows[256];
	int fd;
	size_t n = 0;

	if (k->e->daemon_answers)
		check_ok(k, "mtugated answers on %s", c->daemon.control_socket);
	else
		check_bad(k, "systemctl start mtugate; `journalctl -u mtugate -p warning` says why it"
			     " stopped", "mtugated does not answer on %s", c->daemon.control_socket);
	if ((fd = nfqproc_open(NFQPROC_PATH)) >= 0) {
		int r = nfqproc_read(fd, rows, sizeof(rows) / sizeof(rows[0]));

		n = r > 0 ? (size_t)r : 0;
		close(fd);
	}
	check_queue(k, rows, n, &c->queues.mss, "mss");
	check_queue(k, rows, n, &c->queues.pmtu, "pmtu");
	check_queue(k, rows, n, &c->queues.dtls, "dtls");
	check_bypass(k, rows, n, &c->queues.mss, "mss");
	check_bypass(k, rows, n, &c->queues.pmtu, "pmtu");
	check_bypass(k, rows, n, &c->queues.dtls, "dtls");
}

/* The scratch namespace with this configuration's rules and routes in it,
 * applied as the rules unit applies them. */
static bool check_scratch(struct check *k)
{
	struct strbuf cmd = { 0 };
	const char *self = k->e->self, *conf = k->e->conf->path;
	int rc;

	snprintf(k->ns, sizeof(k->ns), "mtugate-check-%ld", (long)getpid());
	if (k->nft)
		strbuf_printf(&cmd, "ip netns add %s && ip netns exec %s sh -ec 'ip link set lo up;"
			      " \"%s\" -c \"%s\" rules --nft | nft -f -; \"%s\" -c \"%s\" rules --routes | sh'",
			      k->ns, k->ns, self, conf, self, conf);
	else
		strbuf_printf(&cmd, "ip netns add %s && ip netns exec %s sh -ec 'ip link set lo up;"
			      " (\"%s\" -c \"%s\" rules --ipset | ipset restore -exist) || true;"
			      " \"%s\" -c \"%s\" rules --iptables | iptables-restore --noflush;"
			      " \"%s\" -c \"%s\" rules --ip6tables | ip6tables-restore --noflush;"
			      " \"%s\" -c \"%s\" rules --hold --iptables | iptables-restore --noflush;"
			      " \"%s\" -c \"%s\" rules --hold --ip6tables | ip6tables-restore --noflush;"
			      " \"%s\" -c \"%s\" rules --routes | sh'",
			      k->ns, k->ns, self, conf, self, conf, self, conf, self, conf, self, conf, self,
			      conf);
	rc = cmd.buf ? check_sh(cmd.buf, NULL) : -1;
	strbuf_free(&cmd);
	if (rc != 0)
		fprintf(k->e->out, "note     the rules could not be built for comparison in a scratch"
			" namespace (%s): rules not compared\n", k->ns);
	k->scratch = rc == 0;
	return k->scratch;
}

static void check_scratch_free(struct check *k)
{
	char cmd[128];

	if (!k->ns[0])
		return;
	snprintf(cmd, sizeof(cmd), "ip netns del %s", k->ns);
	check_sh(cmd, NULL);
}

/* cmd's output here and in the scratch namespace, each through filter. */
static void check_both(struct check *k, const char *cmd, void (*filter)(const char *, struct strbuf *),
		       struct strbuf *live, struct strbuf *want)
{
	struct strbuf a = { 0 }, b = { 0 };
	char in_ns[512];

	check_sh(cmd, &a);
	snprintf(in_ns, sizeof(in_ns), "ip netns exec %s %s", k->ns, cmd);
	check_sh(in_ns, &b);
	if (filter) {
		filter(a.buf ? a.buf : "", live);
		filter(b.buf ? b.buf : "", want);
	} else {
		strbuf_append(live, a.buf ? a.buf : "", a.len);
		strbuf_append(want, b.buf ? b.buf : "", b.len);
	}
	strbuf_free(&a);
	strbuf_free(&b);
}

static void check_compare(struct check *k, const char *what, const char *live, const char *want,
			  const char *fix)
{
	struct strbuf miss = { 0 }, extra = { 0 };
	size_t m = deploy_missing(want, live, &miss), x = deploy_missing(live, want, &extra);

	if (!m && !x)
		check_ok(k, "%s: as this configuration prints them", what);
	if (m) {
		check_bad(k, fix, "%s: %zu line(s) of this configuration are not loaded:", what, m);
		check_show(k, miss.buf);
	}
	if (x) {
		check_bad(k, fix, "%s: %zu loaded line(s) are not this configuration's (stale):", what, x);
		check_show(k, extra.buf);
	}
	strbuf_free(&miss);
	strbuf_free(&extra);
}

static void check_rules(struct check *k)
{
	static const char fix_ipt[] = "systemctl restart mtugate-rules (or: mtugatectl rules --iptables"
		" | iptables-restore --noflush, the same for --ip6tables)";
	static const char fix_nft[] = "systemctl restart mtugate-rules with MTUGATE_BACKEND=nft (or:"
		" mtugatectl rules --nft | nft -f -)";
	struct strbuf live = { 0 }, want = { 0 };

	if (!check_scratch(k))
		return;
	if (k->nft) {
		check_both(k, "nft list table inet mtugate", deploy_nft_lines, &live, &want);
		check_compare(k, "nft table inet mtugate", live.buf ? live.buf : "",
			      want.buf ? want.buf : "", fix_nft);
	} else {
		check_both(k, "iptables-save", deploy_ipt_lines, &live, &want);
		check_compare(k, "iptables rules", live.buf ? live.buf : "", want.buf ? want.buf : "",
			      fix_ipt);
		strbuf_reset(&live);
		strbuf_reset(&want);
		check_both(k, "ip6tables-save", deploy_ipt_lines, &live, &want);
		check_compare(k, "ip6tables rules", live.buf ? live.buf : "", want.buf ? want.buf : "",
			      fix_ipt);
	}
	strbuf_free(&live);
	strbuf_free(&want);
}

static void check_routes(struct check *k, const char *fam)
{
	const struct conf *c = k->e->conf;
	struct strbuf live = { 0 }, want = { 0 }, foreign = { 0 }, miss = { 0 };
	char cmd[128], what[64];

	snprintf(what, sizeof(what), "ip %s rule", fam);
	/* -N: the table by number, named in rt_tables.d or not. */
	snprintf(cmd, sizeof(cmd), "ip -N %s rule show | grep -w 'lookup %u'", fam, c->proxy.route_table);
	check_both(k, cmd, NULL, &live, &want);
	if (deploy_missing(want.buf ? want.buf : "", live.buf ? live.buf : "", &miss)) {
		check_bad(k, "systemctl restart mtugate-rules (or: mtugatectl rules --routes | sh)",
			  "%s: the TPROXY rule is missing: the proxy sees no login", what);
		check_show(k, miss.buf);
	} else {
		check_ok(k, "%s: TPROXY's fwmark rule is in place", what);
	}
	strbuf_reset(&live);
	strbuf_reset(&want);
	strbuf_reset(&miss);
	snprintf(cmd, sizeof(cmd), "ip -N %s route show table %u", fam, c->proxy.route_table);
	check_both(k, cmd, NULL, &live, &want);
	if (deploy_missing(want.buf ? want.buf : "", live.buf ? live.buf : "", &miss)) {
		check_bad(k, "systemctl restart mtugate-rules (or: mtugatectl rules --routes | sh)",
			  "ip %s route table %u: TPROXY's local route is missing", fam, c->proxy.route_table);
		check_show(k, miss.buf);
	} else if (deploy_foreign_routes(live.buf ? live.buf : "", want.buf ? want.buf : "",
					 &foreign)) {
		check_bad(k, "choose a free table for [proxy] route_table (see /etc/iproute2/rt_tables*)",
			  "ip %s route table %u also holds routes that are not mtugate's:", fam,
			  c->proxy.route_table);
		check_show(k, foreign.buf);
	} else {
		check_ok(k, "ip %s route table %u: mtugate's alone", fam, c->proxy.route_table);
	}
	strbuf_free(&live);
	strbuf_free(&want);
	strbuf_free(&foreign);
	strbuf_free(&miss);
}

/* TPROXY delivers the headend's TLS to this host: the filter table's INPUT
 * sees it. A default-drop INPUT with nothing for the proxy drops every login. */
static void check_input(struct check *k, const char *tool)
{
	const struct conf *c = k->e->conf;
	struct strbuf save = { 0 };
	char pol[16], cmd[64], mark[32];
	bool drop;

	snprintf(cmd, sizeof(cmd), "%s-save -t filter", tool);
	if (check_sh(cmd, &save) != 0 || !save.buf) {
		strbuf_free(&save);
		return;
	}
	deploy_ipt_policy(save.buf, "filter", "INPUT", pol, sizeof(pol));
	drop = !strcmp(pol, "DROP") || strstr(save.buf, "-A INPUT -j DROP") ||
	       strstr(save.buf, "-A INPUT -j REJECT");
	snprintf(mark, sizeof(mark), "--mark 0x%x/0x%x", c->marks.proxy, c->marks.proxy);
	if (!drop)
		check_ok(k, "%s INPUT (policy %s) lets the proxy's connections in", tool,
			 pol[0] ? pol : "ACCEPT");
	else if (strstr(save.buf, mark) || strstr(save.buf, "-A INPUT -m socket") ||
		 strstr(save.buf, "-A INPUT -j MTUGATE"))
		check_ok(k, "%s INPUT drops by default and accepts the proxy's marked connections", tool);
	else {
		char fix[160];

		snprintf(fix, sizeof(fix), "%s -I INPUT -m mark %s -j ACCEPT (TPROXY's mark), and keep it"
			 " with the firewall's own rules", tool, mark);
		check_bad(k, fix, "%s INPUT drops by default and nothing accepts what TPROXY delivers to"
			  " the proxy: every login is dropped", tool);
	}
	strbuf_free(&save);
}

/* The printed rules drop a connection to the listener's port on a local
 * address before INPUT sees it (only TPROXY's diverted logins reach the
 * proxy): without that rule INPUT decides, and an open INPUT lets anyone
 * who reaches this host talk to the proxy directly. */
static void check_listener(struct check *k)
{
	const unsigned port = k->e->conf->proxy.listen_port;
	struct strbuf save = { 0 }, input = { 0 };
	char pol[16] = "";

	if (check_sh(k->nft ? "nft list table inet mtugate" : "iptables-save -t mangle", &save) != 0 ||
	    !save.buf) {
		strbuf_free(&save);
		return;
	}
	if (deploy_listener_dropped(save.buf, port, k->nft)) {
		check_ok(k, "direct connections to the proxy's port %u are dropped before INPUT", port);
	} else {
		check_sh("iptables-save -t filter", &input);
		deploy_ipt_policy(input.buf ? input.buf : "", "filter", "INPUT", pol, sizeof(pol));
		check_bad(k, "systemctl restart mtugate-rules (its proxy chain drops them); INPUT should"
			     " accept the proxy's mark only",
			  "nothing drops direct connections to the proxy's port %u: INPUT (policy %s)"
			  " decides, and the proxy is reached without TPROXY", port,
			  pol[0] ? pol : "ACCEPT");
	}
	strbuf_free(&save);
	strbuf_free(&input);
}

/* The proxy listens on loopback (proxy/listen.c): only TPROXY's --on-ip
 * reaches it. A listener on its port bound elsewhere (a daemon from before,
 * another program) takes connections from anyone who routes to this host;
 * route_localnet lets 127/8 in from other devices, where a DNAT to
 * loopback could then reach it. */
static void check_bound(struct check *k)
{
	const unsigned port = k->e->conf->proxy.listen_port;
	struct strbuf proc = { 0 }, lnet = { 0 };
	char addr[64] = "";

	if (check_sh("cat /proc/net/tcp /proc/net/tcp6", &proc) < 0 || !proc.buf) {
		strbuf_free(&proc);
		return;
	}
	if (deploy_listener_open(proc.buf, port, addr, sizeof(addr)))
		check_bad(k, "restart mtugated (its listeners are on 127.0.0.1 and ::1) and its rules"
			     " (TPROXY --on-ip); or stop the program that listens there",
			  "a listener on %s%s%s port %u is reachable from outside, not only through TPROXY",
			  strchr(addr, ':') ? "[" : "", addr, strchr(addr, ':') ? "]" : "", port);
	else
		check_ok(k, "the proxy's port %u listens on loopback only", port);
	if (check_sh("grep -l '^1' /proc/sys/net/ipv4/conf/*/route_localnet", &lnet) == 0 &&
	    lnet.buf && lnet.buf[0]) {
		char *nl = strchr(lnet.buf, '\n');

		if (nl)
			*nl = '\0';
		fprintf(k->e->out, "note     route_localnet is on (%s): packets to 127/8 are taken from"
			" other devices; a DNAT to 127.0.0.1:%u would reach the proxy (which closes it)\n",
			lnet.buf, port);
	}
	strbuf_free(&proc);
	strbuf_free(&lnet);
}

/* A group with tunnels whose pool never sent a SYN through the mss queue:
 * its inner traffic does not cross this firewall with the pool's addresses
 * (the headend's inside leg elsewhere, or a u-turn NAT behind it). */
static void check_flow(struct check *k)
{
	const struct check_env *e = k->e;

	if (!e->use || !e->policy || e->conf->queues.mss.first < 0)
		return;
	for (size_t i = 0; i < policy_count(e->policy); i++) {
		const struct group *g = policy_group(e->policy, i);

		if (g->mss_mode == MSS_OFF || !e->use[i].tunnels)
			continue;
		if (e->use[i].syns)
			check_ok(k, "group %s: %llu tunnel(s), its pool's SYNs reach the mss queue (%llu)",
				 g->name, e->use[i].tunnels, e->use[i].syns);
		else
			check_bad(k, "route the headend's inside leg (the pool's traffic) through this"
				     " firewall, with no NAT of the pool before it; or fix the group's pool"
				     " (`mtugatectl groups`)",
				  "group %s has %llu tunnel(s) but no SYN of its pool reached the mss queue:"
				  " the inner traffic does not cross this firewall with the pool's"
				  " addresses, so no clamp and no Path MTU answer reach it", g->name,
				  e->use[i].tunnels);
	}
}

/* The egress MTU toward dst (a prefix, or NULL: the default route) for
 * family: the route's own mtu, else its device's; 0 when unknown. */
static unsigned check_egress_mtu(int family, const struct prefix *dst, char *dev, size_t cap)
{
	struct strbuf out = { 0 };
	char cmd[160], path[96], txt[64];
	unsigned mtu = 0;
	int fam = family == AF_INET6 ? 6 : 4;

	if (dst && dst->len) {
		struct ipaddr a = { .family = dst->family };

		memcpy(a.addr, dst->addr, sizeof(a.addr));
		/* The main table only: `route get` would find the prefix's own
		 * address local or anycast here. */
		snprintf(cmd, sizeof(cmd), "ip -o -%d route show match %s", fam,
			 addr_format(&a, txt, sizeof(txt)));
	} else {
		snprintf(cmd, sizeof(cmd), "ip -o -%d route show default", fam);
	}
	if (check_sh(cmd, &out) == 0 && out.buf && deploy_route_dev(out.buf, dev, cap, &mtu) == 0 &&
	    !mtu) {
		int m;

		snprintf(path, sizeof(path), "/sys/class/net/%s/mtu", dev);
		mtu = (m = check_file_int(path)) > 0 ? (unsigned)m : 0;
	}
	strbuf_free(&out);
	return mtu;
}

/* The headend sizes its DTLS MTU for a 1500-byte path; this firewall's own
 * uplink may be smaller (PPPoE 1492, DS-Lite 1460): a relay group's DTLS
 * datagrams then do not fit toward its clients. */
static void check_uplink(struct check *k)
{
	const struct check_env *e = k->e;

	for (size_t i = 0; e->policy && i < policy_count(e->policy); i++) {
		const struct group *g = policy_group(e->policy, i);

		if (g->dtls != DTLS_RELAY)
			continue;
		for (int fam = 0; fam < 2; fam++) {
			const int family = fam ? AF_INET6 : AF_INET;
			const struct prefix *dst = NULL;
			char dev[64] = "", fix[320];
			unsigned egress, fit;
			bool any = !g->nclients;

			for (size_t c = 0; c < g->nclients; c++)
				if (g->clients[c].family == family) {
					any = true;
					dst = dst ? dst : &g->clients[c];
				}
			if (!any || (fam && !check_uses_v6(e)))
				continue;
			if (!(egress = check_egress_mtu(family, dst, dev, sizeof(dev))))
				continue;
			fit = deploy_dtls_mtu_fit(g->mtu, egress, fam);
			if (!fit) {
				check_ok(k, "group %s: mtu %u plus DTLS over IPv%c fits %s's MTU %u", g->name,
					 g->mtu, fam ? '6' : '4', dev, egress);
				continue;
			}
			snprintf(fix, sizeof(fix), "set mtu = %u in %.160s (the proxy offers it; without"
				 " the proxy set the headend's DTLS MTU too: ASA `anyconnect mtu %u`)", fit,
				 g->file, fit);
			check_bad(k, fix, "group %s: mtu %u plus %u bytes of DTLS over IPv%c is more than"
				  " %s's MTU %u toward its clients: its large DTLS datagrams are fragmented"
				  " or dropped", g->name, g->mtu, fam ? DEPLOY_DTLS_OVERHEAD6 :
				  DEPLOY_DTLS_OVERHEAD4, fam ? '6' : '4', dev, egress);
		}
	}
}

/* The headend's address a on tls_port. */
static socklen_t check_sockaddr(const struct conf *c, const struct ipaddr *a,
				struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (a->family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;

		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(c->headend.tls_port);
		memcpy(&s6->sin6_addr, a->addr, 16);
		return sizeof(*s6);
	}
	struct sockaddr_in *s4 = (struct sockaddr_in *)ss;

	s4->sin_family = AF_INET;
	s4->sin_port = htons(c->headend.tls_port);
	memcpy(&s4->sin_addr, a->addr, 4);
	return sizeof(*s4);
}

/* AnyConnect compares the tunnel's certificate with the <server-cert-hash>
 * of the headend's XML: the proxy must present the headend's own. */
static void check_certificate(struct check *k)
{
	const struct conf *c = k->e->conf;
	char err[256], ours[TLS_FINGERPRINT_LEN], theirs[TLS_FINGERPRINT_LEN], txt[64];
	struct tls_ctx *x = tls_ctx_new(c, err, sizeof(err));

	if (!x) {
		check_bad(k, "see [proxy] certificate, private_key, upstream_ca in mtugate.conf(5)",
			  "[proxy] certificate or key: %s", err);
		return;
	}
	tls_ctx_fingerprint(x, ours, sizeof(ours));
	tls_ctx_free(x);
	for (size_t i = 0; i < c->headend.naddr; i++) {
		struct sockaddr_storage ss;

		check_sockaddr(c, &c->headend.addr[i], &ss);
		addr_format(&c->headend.addr[i], txt, sizeof(txt));
		if (tls_fetch_leaf(&ss, c->proxy.upstream_name[0] ? c->proxy.upstream_name : NULL,
				   CHECK_CONNECT_MS / 1000, theirs, sizeof(theirs), err, sizeof(err)) < 0) {
			fprintf(k->e->out, "note     the certificate of headend %s not read: %s\n", txt, err);
			continue;
		}
		if (strcmp(ours, theirs) == 0) {
			check_ok(k, "[proxy] certificate is headend %s's own", txt);
			continue;
		}
		check_bad(k, "give [proxy] certificate and private_key the headend's own (export them"
			     " from the ASA or ocserv), then restart mtugate",
			  "[proxy] certificate is not headend %s's own: SHA-256 %s, the headend's %s;"
			  " AnyConnect compares it with <server-cert-hash> and may refuse the tunnel",
			  txt, ours, theirs);
	}
}

/* The packet process cannot read the key (Landlock, allow-list by
 * hierarchy): each folder on the key's path is allowed entry by entry, so
 * mtugate.conf or a group file replaced there by a rename is hidden from a
 * reload too. */
static void check_keyfolder(struct check *k)
{
	const struct conf *c = k->e->conf;
	char key[PATH_MAX], file[PATH_MAX], groups[PATH_MAX], group_file[PATH_MAX + 8];
	const char *hit = NULL;

	if (!realpath(c->proxy.private_key, key))
		return;	/* check_certificate() says why */
	if (realpath(c->path, file) && sandbox_rename_hidden(key, file))
		hit = file;
	if (!hit && c->daemon.groups_dir[0] && realpath(c->daemon.groups_dir, groups)) {
		snprintf(group_file, sizeof(group_file), "%s/x.conf", groups);
		if (sandbox_rename_hidden(key, group_file))
			hit = groups;
	}
	if (!hit) {
		check_ok(k, "[proxy] private_key is off the configuration's folders: edits reload");
		return;
	}
	check_warn(k, "move the key to a folder of its own, off the configuration's (for example"
		   " /etc/ssl/private/mtugate-headend.key, group ssl-cert: mtugate.conf(5),"
		   " private_key), set private_key, restart mtugate",
		   "[proxy] private_key %s lies on the way to %s: the packet process may not read"
		   " that folder's new files (Landlock), so after an edit that replaces a file"
		   " there (sed -i, most editors) a reload fails and only a restart reads it",
		   key, hit);
}

static void check_headend(struct check *k)
{
	const struct conf *c = k->e->conf;

	for (size_t i = 0; i < c->headend.naddr; i++) {
		const struct ipaddr *a = &c->headend.addr[i];
		struct sockaddr_storage ss;
		socklen_t len = check_sockaddr(c, a, &ss);
		char txt[64];
		int fd, err = ETIMEDOUT;

		fd = socket(a->family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
		if (fd >= 0 && connect(fd, (struct sockaddr *)&ss, len) < 0 && errno == EINPROGRESS) {
			struct pollfd p = { .fd = fd, .events = POLLOUT };
			socklen_t el = sizeof(err);

			if (poll(&p, 1, CHECK_CONNECT_MS) == 1)
				getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &el);
		} else if (fd >= 0) {
			err = 0;
		}
		if (fd >= 0)
			close(fd);
		addr_format(a, txt, sizeof(txt));
		if (!err)
			check_ok(k, "headend %s answers on TCP port %u", txt, c->headend.tls_port);
		else
			check_bad(k, "check [headend] address and tls_port, and the route to the headend",
				  "headend %s does not answer on TCP port %u: %s", txt, c->headend.tls_port,
				  strerror(err));
	}
}

static void check_marks(struct check *k)
{
	uint32_t mask = marks_all(&k->e->conf->marks);
	struct strbuf listing = { 0 }, found = { 0 };

	check_sh("iptables-save; ip6tables-save; nft list ruleset", &listing);
	if (deploy_mark_users(listing.buf ? listing.buf : "", mask, &found)) {
		char fix[128];

		snprintf(fix, sizeof(fix), "give mtugate bits nobody else uses: [queues] mark_mask"
			 " (now 0x%08x)", mask);
		check_bad(k, fix, "other rules set or test the mark bits mtugate uses (0x%08x):", mask);
		check_show(k, found.buf);
	} else {
		check_ok(k, "no other rule uses mtugate's mark bits (0x%08x)", mask);
	}
	strbuf_free(&listing);
	strbuf_free(&found);
}

/* Users who log in with a certificate cannot go through the proxy: it
 * terminates their TLS and has no certificate to show the headend. */
static void check_certreq(struct check *k)
{
	const struct check_env *e = k->e;
	char fix[PATH_MAX + 160];

	if (!e->daemon_answers)
		return;
	if (!e->ncertreq) {
		check_ok(k, "the headend never asked the proxy for a client certificate");
		return;
	}
	for (size_t i = 0; i < e->ncertreq; i++) {
		const struct group *g = e->certreq[i].group[0] ?
					policy_by_name(e->policy, e->certreq[i].group) : NULL;

		snprintf(fix, sizeof(fix), "for users who log in with a certificate: proxy = no in %s,"
			 " or [proxy] enable = no", g ? g->file : "a group whose clients are theirs");
		check_bad(k, fix, "group %s: the headend asked the proxy for a client certificate %llu"
			  " time(s) (upstream_cert_requested): the proxy cannot pass one on",
			  e->certreq[i].group[0] ? e->certreq[i].group : "(none)", e->certreq[i].n);
	}
}

unsigned check_run(const struct check_env *e)
{
	struct check k = { .e = e };

	check_kernel(&k);
	k.nft = check_sh("nft list table inet mtugate >/dev/null", NULL) == 0;
	check_daemon(&k);
	fprintf(e->out, "note     rules backend: %s\n", k.nft ? "nft (table inet mtugate)" :
		"iptables (MTUGATE_* chains)");
	check_rules(&k);
	if (e->conf->proxy.enable && k.scratch) {
		check_routes(&k, "-4");
		if (check_uses_v6(e))
			check_routes(&k, "-6");
	}
	if (e->conf->proxy.enable && !k.nft) {
		check_input(&k, "iptables");
		if (check_uses_v6(e))
			check_input(&k, "ip6tables");
	}
	if (e->conf->proxy.enable) {
		check_listener(&k);
		check_bound(&k);
	}
	check_flow(&k);
	check_uplink(&k);
	check_headend(&k);
	if (e->conf->proxy.enable) {
		check_certificate(&k);
		check_keyfolder(&k);
		check_certreq(&k);
	}
	check_marks(&k);
	check_scratch_free(&k);
	if (k.problems)
		fprintf(e->out, "%u problem(s)\n", k.problems);
	else
		fprintf(e->out, "deployment OK\n");
	return k.problems;
}
