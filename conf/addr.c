#include "conf/addr.h"

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

int addr_parse(struct ipaddr *a, const char *s)
{
	memset(a, 0, sizeof(*a));
	if (!s)
		return -EINVAL;
	if (inet_pton(AF_INET, s, a->addr) == 1) {
		a->family = AF_INET;
		return 0;
	}
	if (inet_pton(AF_INET6, s, a->addr) == 1) {
		a->family = AF_INET6;
		return 0;
	}
	memset(a, 0, sizeof(*a));
	return -EINVAL;
}

/* Strict decimal 0..max: no sign, no spaces, no leading zeros beyond "0". */
static int addr_parse_len(const char *s, unsigned max, unsigned *out)
{
	unsigned v = 0;

	if (!*s || (s[0] == '0' && s[1]))
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned)(*s - '0');
		if (v > max)
			return -EINVAL;
	}
	*out = v;
	return 0;
}

static bool addr_host_bits_zero(const uint8_t *addr, unsigned len, unsigned bits)
{
	for (unsigned i = len; i < bits; i++)
		if (addr[i / 8] & (0x80u >> (i % 8)))
			return false;
	return true;
}

int prefix_parse(struct prefix *p, const char *s)
{
	char buf[INET6_ADDRSTRLEN + 8];
	struct ipaddr a;
	const char *slash;
	unsigned bits, len;
	size_t alen;

	memset(p, 0, sizeof(*p));
	if (!s)
		return -EINVAL;
	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(buf))
		return -EINVAL;
	memcpy(buf, s, alen);
	buf[alen] = '\0';
	if (addr_parse(&a, buf) < 0)
		return -EINVAL;
	bits = a.family == AF_INET ? 32 : 128;
	len = bits;
	if (slash && addr_parse_len(slash + 1, bits, &len) < 0)
		return -EINVAL;
	if (!addr_host_bits_zero(a.addr, len, bits))
		return -EINVAL;
	p->family = a.family;
	p->len = (uint8_t)len;
	memcpy(p->addr, a.addr, sizeof(p->addr));
	return 0;
}

const char *addr_format(const struct ipaddr *a, char *buf, size_t len)
{
	if (!len)
		return buf;
	if (!inet_ntop(a->family == AF_INET ? AF_INET : AF_INET6, a->addr, buf, (socklen_t)len))
		snprintf(buf, len, "?");
	return buf;
}

const char *prefix_format(const struct prefix *p, char *buf, size_t len)
{
	char ab[INET6_ADDRSTRLEN];

	if (!inet_ntop(p->family == AF_INET ? AF_INET : AF_INET6, p->addr, ab, sizeof(ab)))
		snprintf(ab, sizeof(ab), "?");
	if (len)
		snprintf(buf, len, "%s/%u", ab, p->len);
	return buf;
}

bool prefix_contains(const struct prefix *p, uint8_t family, const uint8_t *addr)
{
	unsigned full = p->len / 8, rest = p->len % 8;

	if (p->family != family)
		return false;
	if (memcmp(p->addr, addr, full) != 0)
		return false;
	if (rest) {
		uint8_t mask = (uint8_t)(0xffu << (8 - rest));

		if ((addr[full] & mask) != p->addr[full])
			return false;
	}
	return true;
}
