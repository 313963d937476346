/* The netfilter rules and policy routes a configuration needs, printed for
 * iptables-restore --noflush, ip6tables-restore --noflush, nft -f and sh.
 * Pure: text into a strbuf, no kernel calls. */
#ifndef MTUGATE_CONF_RULES_H
#define MTUGATE_CONF_RULES_H

#include <stddef.h>

struct conf;
struct policy;
struct strbuf;

/* TPROXY intake: the packet mark (value and mask) that sends a packet to the
 * local routing table, by default (conf/marks.h: `[queues] mark_mask` moves
 * it). Kept clear of clamp/dtls.h's DTLS_MARK_MASK. */
#define RULES_PROXY_MARK 0x100u

/* Where TPROXY sends a diverted login (--on-ip): the proxy's listeners are
 * bound to loopback (proxy/listen.c), which nothing outside can reach. */
#define RULES_PROXY_ON4 "127.0.0.1"
#define RULES_PROXY_ON6 "::1"

/* One restore file for family (AF_INET: iptables, AF_INET6: ip6tables):
 * MTUGATE_* chains in the mangle (and, for DTLS port normalization, nat)
 * table, flushed before they are filled, so re-applying replaces them; the
 * jumps from the built-in chains are included unless hooks is 0 (the jumps
 * are the only lines a second application would add again).
 * 0, or -ENOMEM when out ran out of memory. */
int rules_iptables(const struct conf *c, const struct policy *p, int family, int hooks,
		   struct strbuf *out);
/* The ipsets the iptables and ip6tables files match and fill (DTLS flows
 * blocked in the last 30 s, by address and port), for `ipset restore
 * -exist` before those files are applied. 0 or -ENOMEM. */
int rules_ipset(const struct conf *c, struct strbuf *out);
/* The same for both families as one `table inet mtugate` for nft -f; the
 * table is replaced as a whole, so re-applying is idempotent. */
int rules_nft(const struct conf *c, const struct policy *p, struct strbuf *out);
/* The `ip rule` / `ip route` commands TPROXY needs, one per line for sh;
 * nothing when [proxy] enable = no. */
int rules_routes(const struct conf *c, struct strbuf *out);
/* Shell lines adding the jumps from the built-in chains once each
 * (`-C || -I`), for rule files applied with hooks = 0. */
int rules_hooks(const struct conf *c, struct strbuf *out);
/* The `Filter` stanza of conntrackd.conf's General section for a pair of
 * gateways (docs/ha.md): TCP and UDP (the DTLS decision is the connection's
 * mark, the port rewrite its NAT binding: both move only with the flow), the
 * headend's addresses and ports as comments, and the addresses to ignore
 * (ignore: the node's own, loopback first; duplicates and IPv6 link-local
 * ones are left out). 0 or -ENOMEM. */
struct ipaddr;
int rules_conntrackd(const struct conf *c, const struct ipaddr *ignore, size_t nignore,
		     struct strbuf *out);
/* Whether anything the printers above print differs between two configurations
 * (a reload that needs the rules re-applied): 1 or 0, -ENOMEM. */
int rules_changed(const struct conf *a, const struct policy *pa, const struct conf *b,
		  const struct policy *pb);

#endif
