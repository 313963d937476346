/* Per-packet decisions of the packet path: pure, policy in, verdict out. */
#ifndef MTUGATE_CLAMP_CLAMP_H
#define MTUGATE_CLAMP_CLAMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct policy;
struct group;
struct session_table;

enum clamp_res { CLAMP_PASS, CLAMP_REWRITTEN, CLAMP_MALFORMED };

struct clamp_mss_out {
	enum clamp_res res;
	int mss;			/* the enum mss_res of mss_clamp() */
	const struct group *group;	/* the group whose MSS applied, or whose pool matched */
	size_t len;			/* packet length after the call */
	bool observed;			/* the group observes: mss is what enforce would
					 * do, and the packet is unchanged (CLAMP_PASS) */
};

/* TCP SYN / SYN-ACK to or from a group pool: lower its MSS to the group's
 * (between two pools the smaller wins; in a shared pool, the group of the
 * tunnel the address was given to, from sessions, which may be NULL). buf holds len bytes with cap bytes of
 * room for an inserted option. csum_unready: the TCP checksum field holds only
 * the pseudo-header sum (checksum offload, NFQA_SKB_CSUMNOTREADY); a rewritten
 * packet then gets a complete checksum, since the kernel takes it as final.
 * The group that applies decides with mode = observe as with enforce, but
 * the packet stays as it came (o->observed). */
void clamp_mss(const struct policy *pol, struct session_table *sessions, uint8_t *buf, size_t len,
	       size_t cap, bool csum_unready, struct clamp_mss_out *o);

/* The group of a packet for counting: destination pool, source pool, then
 * clients by source and destination. NULL: no group. -1 in *malformed when
 * the packet does not parse. */
const struct group *clamp_attribute(const struct policy *pol, const uint8_t *buf, size_t len,
				    int *malformed);

#endif
