/* Whether mtugate's rules are still in the kernel, read over nf_tables
 * netlink (iptables-nft and nft alike; iptables-legacy is not seen): a
 * firewall reload that flushed them (`systemctl reload nftables` runs
 * `flush ruleset`), an unhooked chain, or rules another configuration
 * printed. Runs on the daemon's main thread. */
#ifndef MTUGATE_DAEMON_RULEWATCH_H
#define MTUGATE_DAEMON_RULEWATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct conf;
struct policy;
struct rulewatch;

enum rulewatch_res {
	RULEWATCH_OK,		/* every chain with its rules, every jump into them */
	RULEWATCH_MISSING,	/* something of it is not there, or differs (why) */
	RULEWATCH_STALE,	/* the configuration changed its rules since the last load */
	RULEWATCH_ERROR,	/* netlink failed (why) */
};

/* A watcher for the rules c and p print (both backends: whichever is loaded
 * counts). NULL with errno set. */
struct rulewatch *rulewatch_new(const struct conf *c, const struct policy *p);
void rulewatch_free(struct rulewatch *w);
/* After a reload: the rules the new configuration prints; changed: they
 * differ from the old ones', so whatever is loaded is stale until the
 * ruleset changes (someone applied them again). 0 or -errno. */
int rulewatch_reset(struct rulewatch *w, const struct conf *c, const struct policy *p,
		    bool changed);
/* Read the kernel's rules now; why gets a reason when not OK. */
enum rulewatch_res rulewatch_poll(struct rulewatch *w, char *why, size_t cap);

#endif
