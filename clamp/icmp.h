/* ICMP errors built by mtugate into a caller buffer: IPv4 fragmentation
 * needed (RFC 1191), ICMPv6 Packet Too Big (RFC 4443/8201), and port
 * unreachable for DTLS rejected by policy. Pure: no I/O, no allocation. */
#ifndef MTUGATE_CLAMP_ICMP_H
#define MTUGATE_CLAMP_ICMP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct pkt;

/* RFC 1812 4.3.2.3: an ICMP error quotes as much as fits in 576 bytes. */
#define ICMP4_MAX_LEN 576
/* RFC 4443 2.4(c): as much as fits in the IPv6 minimum MTU. */
#define ICMP6_MAX_LEN 1280
#define ICMP4_MIN_MTU 68
#define ICMP6_MIN_MTU 1280
/* Values of the built packet's header: TOS "internetwork control" as Linux
 * sets on its own ICMP; a hop limit of 64 (Linux would take the route's). */
#define ICMP4_TOS 0xc0
#define ICMP_TTL 64

enum icmp_res {
	ICMP_SEND,		/* built, or (icmp_check) an answer is due */
	ICMP_NOT_OVERSIZE,	/* not longer than the MTU: nothing to say */
	ICMP_NO_DF,		/* IPv4 without DF: the kernel fragments it */
	ICMP_LATER_FRAGMENT,	/* only the first fragment is answered */
	ICMP_ABOUT_ERROR,	/* never an ICMP error about an ICMP error */
	ICMP_BAD_SOURCE,	/* source is no single reachable host */
	ICMP_BAD_DEST,		/* IPv4 broadcast/multicast destination */
	ICMP_TRUNCATED,		/* an ICMP packet too short to tell its type */
	ICMP_NO_ROOM,		/* the output buffer is too small */
};

const char *icmp_res_str(enum icmp_res r);

/* Whether an ICMP error about p may be sent at all (RFC 1812 4.3.2.7,
 * RFC 4443 2.4(e)): not about an ICMP error (IPv4 types 3, 4, 5, 11, 12
 * and, as Linux, types it does not know, above 18; ICMPv6 types < 128),
 * not about a later fragment, not to a source that is unspecified
 * (0.0.0.0/8, ::), loopback (127/8, ::1), multicast (224/4, ff00::/8),
 * class E or the limited broadcast (240/4; a directed broadcast needs the
 * netmask, which a packet does not carry), or link-local (169.254/16,
 * fe80::/10: routers never forward those, so such a packet cannot be
 * ours to answer); for IPv4 not about a packet sent to a multicast or
 * limited-broadcast destination. ICMPv6 Packet Too Big is the exception
 * RFC 4443 makes for multicast destinations (pmtu set). */
enum icmp_res icmp_may_answer(const struct pkt *p, bool pmtu);

/* The full decision for a packet toward a tunnel of this mtu: oversize
 * (iplen > mtu, the mtu raised to 68 / 1280), DF (IPv4), then
 * icmp_may_answer(). */
enum icmp_res icmp_check(const struct pkt *p, unsigned mtu);

/* Build the fragmentation-needed (IPv4 type 3 code 4, next-hop MTU in the
 * low 16 bits of the second word) or Packet Too Big (ICMPv6 type 2, 32-bit
 * MTU) answer to p, a packet parsed by pkt_parse(), from src (the gateway's
 * address toward p's source: 4 or 16 bytes), into out. The MTU sent is
 * mtu raised to 68 / 1280 (and capped at 65535 for IPv4). The quote is p
 * from its IP header (options and extension headers included) up to its
 * iplen, cut to 576 / 1280 bytes in all. The IPv4 header has no options,
 * no DF and ID 0 (a raw IP_HDRINCL socket on Linux picks an ID when it is
 * 0); both checksums are filled in. ICMP_SEND with *outlen set, or the
 * reason nothing was built. */
enum icmp_res icmp_build_too_big(const struct pkt *p, const uint8_t *src, unsigned mtu,
				 uint8_t *out, size_t cap, size_t *outlen);

/* Port unreachable (IPv4 type 3 code 3, ICMPv6 type 1 code 4) about p,
 * with the same quoting and the icmp_may_answer() checks. */
enum icmp_res icmp_build_port_unreach(const struct pkt *p, const uint8_t *src,
				      uint8_t *out, size_t cap, size_t *outlen);

#endif
