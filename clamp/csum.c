/* Internet checksum over bytes in memory order.
 *
 * Every 16-bit value here is what a memcpy() from the packet yields, so sums
 * and results are stored back with memcpy() and never byte-swapped: the
 * one's-complement sum is byte-order independent (RFC 1071 section 2(B)). */
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>

#include "clamp/csum.h"

static uint32_t csum_fold32(uint64_t sum)
{
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffffffu) + (sum >> 32);
	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint32_t)sum;
}

/* The result is folded to 16 bits so callers may add a few sums without
 * losing a carry. An odd length is only right for the last piece. */
uint32_t csum_partial(const void *buf, size_t len, uint32_t sum)
{
	const uint8_t *p = buf;
	uint64_t acc = sum;
	uint32_t w32;
	uint16_t w16;

	/* 32-bit loads into a 64-bit accumulator: no carry is lost below 16 GiB. */
	while (len >= 16) {
		uint32_t a, b, c, d;
		memcpy(&a, p, 4);
		memcpy(&b, p + 4, 4);
		memcpy(&c, p + 8, 4);
		memcpy(&d, p + 12, 4);
		acc += (uint64_t)a + b + c + d;
		p += 16;
		len -= 16;
	}
	while (len >= 4) {
		memcpy(&w32, p, 4);
		acc += w32;
		p += 4;
		len -= 4;
	}
	if (len >= 2) {
		memcpy(&w16, p, 2);
		acc += w16;
		p += 2;
		len -= 2;
	}
	if (len) {
		/* The odd byte is the first of a word padded with zero. */
		uint8_t last[2] = { p[0], 0 };
		memcpy(&w16, last, 2);
		acc += w16;
	}
	return csum_fold32(acc);
}

uint16_t csum_fold(uint32_t sum)
{
	return (uint16_t)~csum_fold32(sum);
}

uint32_t csum_pseudo(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
		     uint32_t l4len)
{
	size_t alen = family == AF_INET6 ? 16 : 4;
	uint32_t len_be = htonl(l4len);
	uint64_t acc = csum_partial(src, alen, 0);

	acc += csum_partial(dst, alen, 0);
	acc += htons(proto);
	acc += (len_be >> 16) + (len_be & 0xffffu);
	return csum_fold32(acc);
}

uint16_t csum_replace2(uint16_t check, uint16_t old, uint16_t new_)
{
	uint32_t sum = (uint32_t)(uint16_t)~check + (uint16_t)~old + new_;

	sum = (sum & 0xffffu) + (sum >> 16);
	sum = (sum & 0xffffu) + (sum >> 16);
	return (uint16_t)~sum;
}

uint16_t csum_l4(int family, const uint8_t *src, const uint8_t *dst, uint8_t proto,
		 const void *l4, size_t len)
{
	return csum_fold(csum_partial(l4, len, csum_pseudo(family, src, dst, proto, (uint32_t)len)));
}
