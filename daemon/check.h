/* `mtugatectl check`: the running deployment held against the configuration.
 * Runs the firewall's own tools (iptables-save, nft, ip) and builds what the
 * configuration prints in a scratch network namespace, so that both sides are
 * in the kernel's canonical form. Root only. */
#ifndef MTUGATE_DAEMON_CHECK_H
#define MTUGATE_DAEMON_CHECK_H

#include <stdbool.h>
#include <stdio.h>

struct conf;
struct policy;

struct check_env {
	const struct conf *conf;
	const struct policy *policy;
	const char *self;	/* this mtugatectl, to print the rules in the scratch namespace */
	bool daemon_answers;	/* the control socket answered */
	/* The daemon's queues and their netlink ports, as it reports them. */
	struct check_queue {
		unsigned num;
		unsigned portid;
	} queues[64];
	size_t nqueues;
	/* Per group of the policy, in its order, from the daemon's counters:
	 * tunnels seen (proxied sessions, DTLS flows decided) and SYNs its pool
	 * sent through the mss queue. NULL when the daemon did not answer. */
	const struct check_use {
		unsigned long long tunnels, syns;
	} *use;
	/* Groups whose headend asked the proxy for a client certificate, from
	 * the daemon's upstream_cert_requested ("": connections of no group). */
	struct check_certreq {
		char group[64];
		unsigned long long n;
	} certreq[16];
	size_t ncertreq;
	FILE *out;
};

/* One line per check: "ok      ..." or "PROBLEM ..." with a "fix: ..." line
 * under it; then "deployment OK" or "N problem(s)". The problem count. */
unsigned check_run(const struct check_env *e);

#endif
