/* TCP MSS clamp of a SYN or SYN-ACK, in place: pure, no allocation. */
#ifndef MTUGATE_CLAMP_MSS_H
#define MTUGATE_CLAMP_MSS_H

#include <stddef.h>
#include <stdint.h>

struct pkt;

enum mss_res {
	MSS_SKIP,	/* not a TCP SYN or SYN-ACK, RST set, or a later fragment */
	MSS_KEPT,	/* SYN unchanged: MSS already <= target, or none and no room to add one */
	MSS_LOWERED,	/* an MSS option lowered to target, checksum fixed incrementally */
	MSS_ADDED,	/* an MSS option inserted: the packet grew by 4 bytes */
	MSS_BAD,	/* malformed: bad option length, truncated, bad data offset */
};

/* MSS values a peer assumes when a SYN carries none (RFC 879 / RFC 1122 for
 * IPv4, RFC 8200's 1280-byte minimum link MTU less 60 for IPv6). Inserting a
 * larger value would raise the effective MSS. */
#define MSS_DEFAULT_V4 536
#define MSS_DEFAULT_V6 1220

/* Clamp the MSS of the TCP SYN or SYN-ACK in buf[0..len) to target, only
 * downward. p comes from pkt_parse() over the same buf. Every MSS option above
 * target is lowered (a receiver uses the last one it sees); options after EOL
 * are ignored, as receivers ignore them. A SYN without an MSS option, without
 * payload, not fragmented, with data offset <= 14 and cap >= len + 4 gets one
 * inserted right after the fixed TCP header (where the kernel's xt_TCPMSS puts
 * it) with min(target, MSS_DEFAULT_V4/V6); IP length, IPv4 header checksum,
 * data offset and TCP checksum are updated. *newlen is len, or len + 4 after
 * MSS_ADDED. Nothing is written unless the result is MSS_LOWERED or MSS_ADDED. */
enum mss_res mss_clamp(uint8_t *buf, size_t len, size_t cap, const struct pkt *p,
		       uint16_t target, size_t *newlen);

/* What mss_clamp() would return for the same arguments, writing nothing:
 * for mode = observe, which counts the rewrite and lets the SYN pass. */
enum mss_res mss_check(const uint8_t *buf, size_t len, size_t cap, const struct pkt *p,
		       uint16_t target);

#endif
