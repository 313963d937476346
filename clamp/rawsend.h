/* Sending ICMP built by clamp/icmp.c: raw sockets and the source-address lookup. */
#ifndef MTUGATE_CLAMP_RAWSEND_H
#define MTUGATE_CLAMP_RAWSEND_H

#include <stddef.h>
#include <stdint.h>

struct rawsend;

/* A raw IPv4 socket (header included) and a raw ICMPv6 socket (needs
 * CAP_NET_RAW). NULL with errno set. */
struct rawsend *rawsend_open(void);
void rawsend_close(struct rawsend *r);
/* Send an ICMP packet built by clamp/icmp.c to dst, with its source address
 * left unspecified (zero): the kernel's routing lookup toward dst picks it, as
 * for the kernel's own ICMP, in the one system call that sends. IPv4: the
 * whole packet, the kernel fills in the source and the header checksum. IPv6:
 * the ICMPv6 message after the 40-byte header, the kernel builds the header
 * (hop limit 64) and the checksum. 0 or -errno. */
int rawsend_send(struct rawsend *r, int family, const uint8_t *pkt, size_t len,
		 const uint8_t *dst);

#endif
