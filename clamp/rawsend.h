/* Sending ICMP built by clamp/icmp.c: raw sockets and the source-address lookup. */
#ifndef MTUGATE_CLAMP_RAWSEND_H
#define MTUGATE_CLAMP_RAWSEND_H

#include <stddef.h>
#include <stdint.h>

struct rawsend;

/* Raw IPv4 and IPv6 sockets with the IP header included (needs CAP_NET_RAW).
 * NULL with errno set. */
struct rawsend *rawsend_open(void);
void rawsend_close(struct rawsend *r);
/* The address this host would send from toward dst (a routing lookup, as the
 * kernel does for its own ICMP). 0, or -errno (e.g. no route). */
int rawsend_source(struct rawsend *r, int family, const uint8_t *dst, uint8_t *src);
/* Send a complete IPv4 or IPv6 packet to dst. 0 or -errno. */
int rawsend_send(struct rawsend *r, int family, const uint8_t *pkt, size_t len,
		 const uint8_t *dst);

#endif
