/* pkt_parse + mss_clamp on arbitrary bytes. Input: 2 bytes target, 1 byte of
 * flags (bit 0: make the TCP checksum valid first), then the packet. The
 * buffer is exactly len + 4 bytes, so ASan sees any write past the room. */
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clamp/mss.h"
#include "clamp/pkt.h"
#include "tests/tools/synpkt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void fuzz_fix_tcp(uint8_t *buf, const struct pkt *p)
{
	if (p->proto != IPPROTO_TCP || p->later_frag || p->l4len < 20)
		return;
	synpkt_put16(buf + p->l4off + 16, synpkt_tcp_csum(buf, p->l4off, p->l4len));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint16_t target, sp, dp;
	size_t len, newlen;
	uint8_t *buf, *orig;
	bool tcp_ok, ip_ok;
	struct pkt p;
	enum mss_res r;

	if (size < 3)
		return 0;
	target = (uint16_t)(data[0] << 8 | data[1]);
	len = size - 3;
	buf = malloc(len + 4);
	orig = malloc(len ? len : 1);
	memcpy(buf, data + 3, len);
	if (pkt_parse(&p, buf, len) != PKT_OK)
		goto out;
	(void)pkt_ports(&p, &sp, &dp);
	if (data[2] & 1)
		fuzz_fix_tcp(buf, &p);
	tcp_ok = p.proto == IPPROTO_TCP && !p.later_frag && p.l4len >= 20 &&
		 synpkt_tcp_ok(buf, p.l4off, p.l4len);
	ip_ok = p.family == AF_INET6 || synpkt_ip4_ok(buf);
	memcpy(orig, buf, len);

	r = mss_clamp(buf, len, len + (data[2] & 2 ? 4 : 3), &p, target, &newlen);
	if (r != MSS_LOWERED && r != MSS_ADDED) {
		if (newlen != len || memcmp(buf, orig, len))
			abort();	/* nothing may change unless rewritten */
		goto out;
	}
	if (newlen != len + (r == MSS_ADDED ? 4 : 0))
		abort();
	if (pkt_parse(&p, buf, newlen) != PKT_OK)
		abort();
	if (tcp_ok && !synpkt_tcp_ok(buf, p.l4off, p.l4len))
		abort();
	if (ip_ok && p.family == AF_INET && !synpkt_ip4_ok(buf))
		abort();
	/* A second pass finds nothing left above target. */
	if (mss_clamp(buf, newlen, newlen, &p, target, &len) == MSS_LOWERED)
		abort();
out:
	free(orig);
	free(buf);
	return 0;
}
