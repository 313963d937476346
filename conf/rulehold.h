/* The part of the proxy's rules that a draining proxy still needs after the
 * rest is unhooked (a restart: daemon/privsep.h): packets of its transparent
 * sockets (established tunnels, both legs) get the TPROXY mark, so that the
 * policy route delivers them locally rather than forwarding them on to the
 * headend. It never diverts anything new: with no transparent socket on the
 * host it matches nothing. A chain (a table) of its own, so that the rules
 * unit can leave it while it unhooks the others. Pure: text into a strbuf. */
#ifndef MTUGATE_CONF_RULEHOLD_H
#define MTUGATE_CONF_RULEHOLD_H

struct conf;
struct strbuf;

/* MTUGATE_HOLD in the mangle table for family (AF_INET: iptables-restore
 * --noflush, AF_INET6: ip6tables-restore), its jump from PREROUTING
 * included unless hooks is 0; nothing when the proxy is off for that
 * family or [proxy] drain_timeout is 0. 0 or -ENOMEM. */
int rulehold_iptables(const struct conf *c, int family, int hooks, struct strbuf *out);
/* The same as `table inet mtugate_hold` for nft -f, replaced as a whole. */
int rulehold_nft(const struct conf *c, struct strbuf *out);
/* Shell lines adding the jumps once each (`-C || -I`), for files printed
 * with hooks = 0. */
int rulehold_hooks(const struct conf *c, struct strbuf *out);

#endif
