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

#endif
