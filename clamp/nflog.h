/* An NFLOG group: copies of packets the rules log, read without holding
 * them (NFQUEUE holds a packet until its verdict, which would reorder a
 * burst; a copy does not). The socket and the bind, then a pure walk over
 * what the kernel sends, both on libmnl. */
#ifndef MTUGATE_CLAMP_NFLOG_H
#define MTUGATE_CLAMP_NFLOG_H

#include <stddef.h>
#include <stdint.h>

/* Bind group, copying up to snaplen bytes of each packet: a non-blocking
 * socket, or -errno (-EBUSY: another program has the group). */
int nflog_open(uint16_t group, uint16_t snaplen);

/* One logged packet: its first bytes (IPv4 or IPv6 header on), inside the
 * buffer given to nflog_parse(). */
struct nflog_pkt {
	const uint8_t *buf;
	size_t len;
};

/* The packets in one datagram read from the socket (buf aligned as a
 * struct nlmsghdr): up to max into out, how many. Messages that are no
 * packet, or malformed, are skipped; a message longer than what is left
 * ends the walk. */
size_t nflog_parse(const uint8_t *buf, size_t len, struct nflog_pkt *out, size_t max);

#endif
