/* Internet checksum (RFC 1071) and incremental update (RFC 1624). */
#ifndef MTUGATE_CLAMP_CSUM_H
#define MTUGATE_CLAMP_CSUM_H

#include <stddef.h>
#include <stdint.h>

/* One's-complement sum of buf folded into 32 bits, starting at sum. Handles odd
 * lengths and any alignment. */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum);
/* Fold to 16 bits and complement: the value to store in a checksum field. */
uint16_t csum_fold(uint32_t sum);
/* The TCP/UDP/ICMPv6 pseudo-header sum for family, addresses, protocol and
 * transport length. */
uint32_t csum_pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
		     uint32_t l4len);
/* The full TCP/UDP checksum of the segment l4[0..len), whose checksum field
 * the caller has zeroed: pseudo-header plus segment, folded. */
uint16_t csum_l4(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
		 const void *l4, size_t len);
/* RFC 1624 eqn. 3: new checksum after a 16-bit word changed from old to new.
 * All values in network byte order as stored in the packet. */
uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new_);

#endif
