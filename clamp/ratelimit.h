/* Rate limits for the ICMP mtugate emits: a token bucket per group and a
 * per-host table. Pure: the caller passes the time (CLOCK_MONOTONIC, ns). */
#ifndef MTUGATE_CLAMP_RATELIMIT_H
#define MTUGATE_CLAMP_RATELIMIT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Per-host budget. Linux limits ICMP per destination to about 1/s but exempts
 * PMTU messages (RFC 1191/8201 discovery stalls while the sender waits),
 * keeping only its global limit. One sender may need a message per
 * destination it talks to, and a TCP window of oversize segments triggers a
 * burst: 10 per second with a burst of 10 lets a host learn several
 * destinations at once while no single host can drain a group's bucket. */
#define RATELIMIT_HOST_RATE 10
#define RATELIMIT_HOST_BURST 10
#define RATELIMIT_HOST_SLOTS 4096
/* Per destination (the pool address the oversize packet was for): senders
 * from many networks toward a few destinations spend those destinations'
 * budget, not the group's, and every other tunnel's senders get answers. */
#define RATELIMIT_DEST_RATE 20
#define RATELIMIT_DEST_BURST 20

/* A token bucket: rate tokens per second, at most burst stored. Starts
 * full. rate 0 allows nothing. */
struct ratelimit_bucket {
	uint64_t credit;	/* tokens * 1e9 */
	uint64_t last_ns;
	uint32_t rate;
	uint32_t burst;
};

void ratelimit_bucket_init(struct ratelimit_bucket *b, uint32_t rate, uint32_t burst,
			   uint64_t now_ns);
/* Take one token if there is one. */
bool ratelimit_take(struct ratelimit_bucket *b, uint64_t now_ns);

/* The per-host table: a fixed number of slots allocated once, no allocation
 * afterwards. Not thread-safe: one per packet thread. */
struct ratelimit_hosts;

/* slots is rounded up to a power of two (at least 8). A host is the first
 * v4_bytes of an IPv4 address (4: the host, 3: its /24) or v6_bytes of an
 * IPv6 one (8: its /64, 16: the host), so a network counts as one. seed
 * keys the hash (take it from getrandom()) so senders cannot aim at one
 * slot. NULL when out of memory or a prefix length is out of range. */
struct ratelimit_hosts *ratelimit_hosts_new(size_t slots, uint32_t rate, uint32_t burst,
					    unsigned v4_bytes, unsigned v6_bytes, uint64_t seed);
void ratelimit_hosts_free(struct ratelimit_hosts *h);

/* The bucket of host addr (4 or 16 bytes by family), taking a slot for it
 * if it has none; NULL for another family. Valid until the next lookup. */
struct ratelimit_bucket *ratelimit_hosts_bucket(struct ratelimit_hosts *h, int family,
						const uint8_t *addr, uint64_t now_ns);
/* One token from each of the n buckets, or none taken if any lacks one (a
 * message refused by one limit spends no other's budget). A NULL bucket
 * refuses. */
bool ratelimit_take_all(struct ratelimit_bucket *const *b, size_t n, uint64_t now_ns);
/* Whether one more message to host addr may go now: its bucket and, if
 * also is not NULL (the group's bucket), that one too, both or neither. */
bool ratelimit_hosts_allow(struct ratelimit_hosts *h, int family, const uint8_t *addr,
			   uint64_t now_ns, struct ratelimit_bucket *also);

#endif
