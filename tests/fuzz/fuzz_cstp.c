/* The CSTP record stream parser fed in pieces. Input: 1 byte split seed, then
 * the stream. The pieces' run must match the whole run: same forwarded bytes
 * (a prefix of the input), same packets, same counters. */
#include <stdlib.h>
#include <string.h>

#include "proxy/cstp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct run {
	size_t fwd;		/* bytes forwarded (they are the input's prefix) */
	size_t pkts, pktsum;
	struct cstp_stream s;
	int error;
};

static uint8_t keep[CSTP_RECORD_MAX];

static void run(struct run *r, const uint8_t *in, size_t len, unsigned seed)
{
	size_t kl = 0, pos = 0;

	memset(r, 0, sizeof(*r));
	while (pos < len && !r->error) {
		size_t piece = seed ? 1 + (seed = seed * 1103515245u + 12345u) % 97 : len;
		if (piece > len - pos)
			piece = len - pos;
		if (kl + piece > sizeof(keep))
			abort();	/* NEED asked for more than CSTP_RECORD_MAX */
		memcpy(keep + kl, in + pos, piece);
		kl += piece;
		pos += piece;
		for (;;) {
			struct cstp_event ev;
			enum cstp_ev e = cstp_stream_next(&r->s, keep, kl, &ev);

			if (e == CSTP_EV_ERROR) {
				r->error = 1;
				break;
			}
			if (e == CSTP_EV_NEED) {
				if (ev.need <= kl || ev.need > CSTP_RECORD_MAX)
					abort();
				break;
			}
			if (ev.len == 0 || ev.len > kl)
				abort();
			if (memcmp(keep, in + r->fwd, ev.len))
				abort();
			if (e == CSTP_EV_PACKET) {
				if (ev.pkt_off != CSTP_HDR_LEN || ev.pkt_off + ev.pkt_len != ev.len)
					abort();
				r->pkts++;
				r->pktsum += ev.pkt_len;
			}
			r->fwd += ev.len;
			memmove(keep, keep + ev.len, kl - ev.len);
			kl -= ev.len;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct run a, b;

	if (size < 1)
		return 0;
	run(&a, data + 1, size - 1, 0);
	run(&b, data + 1, size - 1, data[0] | 1u);
	if (a.fwd != b.fwd || a.pkts != b.pkts || a.pktsum != b.pktsum || a.error != b.error ||
	    memcmp(&a.s, &b.s, sizeof(a.s)))
		abort();
	return 0;
}
