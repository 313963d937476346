/* IPv4/IPv6 addresses and prefixes as plain values, and their text forms. */
#ifndef MTUGATE_CONF_ADDR_H
#define MTUGATE_CONF_ADDR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct ipaddr {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t addr[16];	/* IPv4 uses the first 4 bytes, network order */
};

struct prefix {
	uint8_t family;		/* AF_INET or AF_INET6 */
	uint8_t len;		/* 0..32 or 0..128 */
	uint8_t addr[16];	/* host bits are zero */
};

/* "192.0.2.1" or "2001:db8::1". 0 or -EINVAL. */
int addr_parse(struct ipaddr *a, const char *s);
/* "192.0.2.0/24", "2001:db8::/64", or a bare address (/32, /128).
 * Host bits set is -EINVAL (a typo a firewall engineer wants to hear about). */
int prefix_parse(struct prefix *p, const char *s);
/* Text form into buf (INET6_ADDRSTRLEN + 4 is enough); returns buf. */
const char *prefix_format(const struct prefix *p, char *buf, size_t len);
const char *addr_format(const struct ipaddr *a, char *buf, size_t len);
bool prefix_contains(const struct prefix *p, uint8_t family, const uint8_t *addr);

#endif
