/* What `mtugatectl check` reads out of the firewall's own listings
 * (iptables-save, nft list, ip rule, ip route): pure text in, findings out.
 * The I/O (running those commands, a scratch namespace) is daemon/check.c. */
#ifndef MTUGATE_CONF_DEPLOY_H
#define MTUGATE_CONF_DEPLOY_H

#include <stddef.h>
#include <stdint.h>

struct strbuf;

/* The lines of an iptables-save listing that are mtugate's: rules in a
 * MTUGATE_* chain and the jumps into one, as "TABLE: -A CHAIN ...". */
void deploy_ipt_lines(const char *save, struct strbuf *out);

/* The lines of `nft list table inet mtugate` that say what the table does:
 * whitespace trimmed, counters and the elements of dynamic sets (blocked
 * flows, which change by the second) left out. */
void deploy_nft_lines(const char *list, struct strbuf *out);

/* Lines of want (one per line, as the two functions above make them) that
 * have lacks lacks, each appended to out with a newline: how many. */
size_t deploy_missing(const char *want, const char *have, struct strbuf *out);

/* Rules outside mtugate's own chains and table that write packet or
 * connection mark bits inside mask (iptables-save lines: MARK, CONNMARK;
 * nft lines: meta mark set, ct mark set): appended to out, one per line; how
 * many. A rule that writes the whole mark counts with its value's bits
 * (--set-mark 0x100 counts as 0x100); copying one mark to the other with no
 * mask, as every bit. Tests of bits (-m mark) take nothing away: not counted. */
size_t deploy_mark_users(const char *listing, uint32_t mask, struct strbuf *out);

/* Lines of `ip route show table N` that are not in mine (the routes mtugate
 * put there): another tool's routes sharing the table. Appended; how many. */
size_t deploy_foreign_routes(const char *table, const char *mine, struct strbuf *out);

/* The policy of a built-in chain in an iptables-save listing ("DROP",
 * "ACCEPT") copied into buf; "" when the chain is not listed. */
const char *deploy_ipt_policy(const char *save, const char *table, const char *chain, char *buf,
			      size_t cap);

/* The device of the most specific route in `ip -o route show` output
 * (`match ADDR`, `default`), copied into dev, and that route's own "mtu N"
 * (0 when it has none): 0, or -1 when no route names a "dev". */
int deploy_route_dev(const char *route, char *dev, size_t cap, unsigned *mtu);

/* What DTLS adds around a tunnel packet on the wire, toward a client over
 * IPv4 or IPv6 (outer IP and UDP headers, DTLS record, IV, MAC and padding):
 * the ASA's 1418-byte DTLS MTU on a 1500-byte path, plus 20 for IPv6. */
#define DEPLOY_DTLS_OVERHEAD4 82u
#define DEPLOY_DTLS_OVERHEAD6 102u
/* A relay group's tunnel mtu against the egress MTU toward its clients: the
 * largest mtu whose DTLS datagrams fit (egress - overhead) when mtu does not
 * fit, else 0. ipv6: the clients reach this firewall over IPv6. */
unsigned deploy_dtls_mtu_fit(unsigned mtu, unsigned egress, int ipv6);

/* Whether an iptables-save listing of the mangle table holds mtugate's drop
 * of direct connections to the proxy's listener port, hooked into
 * PREROUTING; nft: `nft list table inet mtugate`'s fib rule. */
int deploy_listener_dropped(const char *listing, unsigned port, int nft);

/* A listening TCP socket on port bound to anything but loopback (the
 * wildcard included), in /proc/net/tcp and /proc/net/tcp6 text (addresses
 * as the kernel prints them: 32-bit words in this host's byte order): 1
 * with its address's text form in addr, else 0. The proxy's listeners are
 * on 127.0.0.1 and ::1 (proxy/listen.c); any other reaches it from outside. */
int deploy_listener_open(const char *proc, unsigned port, char *addr, size_t cap);

/* The packets the NFQUEUE rules of an `iptables-save -c` listing sent to the
 * queues first..last (a --queue-num inside the range, or a --queue-balance
 * of exactly that range): what the kernel queued or, fail-open, let by. */
uint64_t deploy_queue_packets(const char *save, int first, int last);

/* What the daemon watches (daemon/rulewatch.c): the number of rules in each
 * of mtugate's chains, and the jumps into them from the built-in chains, as
 * nf_tables holds them (iptables-nft's tables and nft's alike). */
#define DEPLOY_MAX_CHAINS 48
#define DEPLOY_NAME_MAX 32

struct deploy_chain {
	uint8_t family;			/* NFPROTO_IPV4, NFPROTO_IPV6, NFPROTO_INET */
	char table[DEPLOY_NAME_MAX];
	char chain[DEPLOY_NAME_MAX];
	char target[DEPLOY_NAME_MAX];	/* a hook: chain jumps to target; "" otherwise */
	unsigned rules;			/* not a hook: its rules */
};

struct deploy_expect {
	struct deploy_chain c[DEPLOY_MAX_CHAINS];
	size_t n;
};

/* Add what an iptables-restore file (mtugatectl rules --iptables or
 * --ip6tables, with hooks) loads for family: each MTUGATE_* chain with its
 * rule count, each jump from a built-in chain. -ENOSPC past DEPLOY_MAX_CHAINS. */
int deploy_expect_ipt(struct deploy_expect *e, const char *printed, uint8_t family);
/* The same for the nft file (mtugatectl rules --nft): table inet mtugate's
 * chains and their rule counts. */
int deploy_expect_nft(struct deploy_expect *e, const char *printed);

struct conf;
struct policy;
/* Both backends' expectations for c and p (iptables' for IPv4 and IPv6 with
 * their hooks; nft's table), and the FNV-1a digest of all that `mtugatectl
 * rules` prints for them (--iptables, --ip6tables, --ipset, --nft, --routes):
 * what `mtugatectl rules --digest` prints and the rules unit records. 0 or
 * -ENOMEM, -ENOSPC. */
int deploy_expect_conf(struct deploy_expect *ipt, struct deploy_expect *nft, uint64_t *digest,
		       const struct conf *c, const struct policy *p);

/* The entry of e for (family, table, chain, target), or NULL. */
struct deploy_chain *deploy_find(struct deploy_expect *e, uint8_t family, const char *table,
				 const char *chain, const char *target);

/* live holds what the kernel has of want's entries (rule counts, hooks found
 * with rules = 1): 0 when all of want is there, else -1 with the first
 * difference in why ("mangle MTUGATE_MSS: 0 rules, the configuration has 4"). */
int deploy_compare(const struct deploy_expect *want, const struct deploy_expect *live, char *why,
		   size_t cap);

#endif
