/* A bounds-checked view over an IPv4 or IPv6 packet: no allocation, no copy. */
#ifndef MTUGATE_CLAMP_PKT_H
#define MTUGATE_CLAMP_PKT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pkt_res {
	PKT_OK,
	PKT_MALFORMED,		/* truncated, bad lengths or header fields */
};

struct pkt {
	const uint8_t *buf;
	size_t len;		/* bytes given; trailing bytes past iplen are ignored */
	size_t iplen;		/* length the IP header claims (<= len) */
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t proto;		/* transport protocol after any IPv6 extension headers */
	bool frag;		/* a fragment (IPv4 MF/offset, or an IPv6 fragment header) */
	bool later_frag;	/* a fragment with offset != 0: carries no transport header */
	bool df;		/* IPv4 DF bit; always true for IPv6 (routers never fragment) */
	size_t l4off;		/* offset of the transport header */
	size_t l4len;		/* iplen - l4off */
	const uint8_t *src, *dst;	/* 4 or 16 bytes inside buf */
};

/* Parse the IP layer. IPv4 with options, IPv6 walking hop-by-hop, routing,
 * destination-options and fragment headers. */
enum pkt_res pkt_parse(struct pkt *p, const uint8_t *buf, size_t len);

/* Transport ports of a TCP or UDP packet that carries its header (not a later
 * fragment). 0, or -1 when absent or truncated. */
int pkt_ports(const struct pkt *p, uint16_t *sport, uint16_t *dport);

#endif
