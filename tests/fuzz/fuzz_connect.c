/* The CONNECT rewriters on arbitrary bytes. Input: 1 byte mode (0 relay,
 * 1 block, 2 pass; bits 2-4: request rewriter options), 2 bytes group mtu,
 * 2 bytes DTLS port, then the head. A rewritten response head must parse
 * again unchanged; under block it must hold no X-DTLS header; its MTU never
 * exceeds the group's. A rewritten request is never longer, parses again,
 * rewrites to itself, and holds no PSK-NEGOTIATE when asked so. Streamed in
 * pieces cut at points drawn from the input's own hash, both rewriters give
 * what they give in one piece, byte for byte. Bit 5 of the mode byte: the
 * response also streams observed (mode = observe), and a head that passes
 * goes byte for byte but for the empty lines before a start line. */
#include <stdlib.h>
#include <string.h>

#include "proxy/cstp.h"
#include "proxy/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define OUT_CAP (1 << 20)
static uint8_t out[OUT_CAP], again[OUT_CAP], piece[OUT_CAP], hold[CSTP_HOLD_MAX];

/* Every header line of a head that parsed (and of the interim answers
 * before it): no X-DTLS, MTUs within mtu. */
static void check_head(const uint8_t *h, size_t n, bool block, unsigned mtu)
{
	size_t off = 0, end, next, nl, voff, vlen;
	unsigned line = 0;

	while (off < n) {
		if (http_find_line(h + off, n - off, &end, &next) != HTTP_DONE)
			abort();
		if (line > 0 && end == 0) {
			line = 0;	/* the next head, if any, starts */
			off += next;
			continue;
		}
		if (line++ > 0) {
			if (!http_split_header(h + off, end, &nl, &voff, &vlen))
				abort();
			if (block && nl >= 6 && http_name_is(h + off, 6, "x-dtls"))
				abort();
			if (mtu && http_name_is(h + off, nl, "x-cstp-mtu")) {
				unsigned v = 0;
				for (size_t i = 0; i < vlen; i++)
					v = v * 10 + (unsigned)(h[off + voff + i] - '0');
				if (v > mtu)
					abort();
			}
		}
		off += next;
	}
}

/* Is PSK-NEGOTIATE (any case) left in an X-DTLS-CipherSuite header? */
static bool psk_left(const uint8_t *h, size_t n)
{
	size_t off = 0, end, next, nl, voff, vlen;
	unsigned line = 0;

	while (off < n && http_find_line(h + off, n - off, &end, &next) == HTTP_DONE) {
		if (line++ > 0 && end > 0 && http_split_header(h + off, end, &nl, &voff, &vlen) &&
		    http_name_is(h + off, nl, "x-dtls-ciphersuite"))
			for (size_t i = 0; i + 13 <= vlen; i++)
				if (http_name_is(h + off + voff + i, 13, "psk-negotiate"))
					return true;
		off += next;
	}
	return false;
}

/* The same head through the streaming API, in pieces whose sizes come from
 * seed: the one-shot result r and output want[0..wlen) again. */
static void check_stream(bool response, const struct cstp_policy *pol, unsigned opts,
			 const uint8_t *in, size_t len, uint32_t seed, enum cstp_res r,
			 const uint8_t *want, size_t wlen)
{
	struct cstp_head h;
	struct cstp_offer o;
	size_t pos = 0, n = 0, used, olen;
	enum cstp_res s = CSTP_MORE;
	unsigned removed;

	cstp_head_init(&h, response, hold);
	while (pos < len && s == CSTP_MORE) {
		size_t k;

		seed = seed * 1103515245u + 12345u;
		k = (seed >> 16) % (seed & 0x100 ? 7 : 300);
		if (k > len - pos)
			k = len - pos;
		s = cstp_head_feed(&h, in + pos, k, &used, piece + n, OUT_CAP - n, &olen);
		if (s == CSTP_MORE && used != k)
			abort();
		pos += used;
		n += olen;
	}
	if (s == CSTP_OK) {
		s = response ? cstp_head_finish_response(&h, pol, piece + n, OUT_CAP - n, &olen, &o)
			     : cstp_head_finish_request(&h, opts, piece + n, OUT_CAP - n, &olen, &removed);
		n += olen;
	}
	if (s != r)
		abort();
	if ((r == CSTP_OK || r == CSTP_REFUSED) && (n != wlen || memcmp(piece, want, n)))
		abort();
}

static uint8_t lines_in[OUT_CAP], lines_out[OUT_CAP];

/* The non-empty lines of h[0..n), with their terminators, into out. */
static size_t non_empty(const uint8_t *h, size_t n, uint8_t *out)
{
	size_t k = 0, off = 0;

	while (off < n) {
		const uint8_t *e = memchr(h + off, '\n', n - off);
		size_t len = e ? (size_t)(e - (h + off)) + 1 : n - off;

		if (!(len == 1 || (len == 2 && h[off] == '\r'))) {
			memcpy(out + k, h + off, len);
			k += len;
		}
		off += len;
	}
	return k;
}

/* Observed from the first byte: never an error pass would not give, and the
 * head as sent, line for line (only empty lines before a start line go),
 * ending with its blank line. */
static void check_observe(const struct cstp_policy *pol, const uint8_t *in, size_t len,
			  uint32_t seed)
{
	struct cstp_policy obs = *pol;
	struct cstp_head h;
	struct cstp_offer o;
	size_t pos = 0, n = 0, used, olen;
	enum cstp_res s = CSTP_MORE;

	obs.observe = true;
	cstp_head_init(&h, true, hold);
	h.observe = true;
	while (pos < len && s == CSTP_MORE) {
		size_t k = (seed = seed * 1103515245u + 12345u) >> 16 & 63;

		k = k > len - pos ? len - pos : k;
		s = cstp_head_feed(&h, in + pos, k, &used, piece + n, OUT_CAP - n, &olen);
		pos += used;
		n += olen;
	}
	if (s == CSTP_OK) {
		s = cstp_head_finish_response(&h, &obs, piece + n, OUT_CAP - n, &olen, &o);
		n += olen;
		if (s != CSTP_OK && s != CSTP_REFUSED)
			abort();	/* no value decides anything for an observed head */
		if (!o.observed || n > o.head_len || n < 2 || piece[n - 1] != '\n')
			abort();
		olen = non_empty(piece, n, lines_out);
		if (non_empty(in, o.head_len, lines_in) != olen || memcmp(lines_in, lines_out, olen))
			abort();
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cstp_policy pol = { 0 };
	struct cstp_offer o, o2;
	size_t n, n2, head;
	enum cstp_res r;
	unsigned opts;
	uint32_t seed = 2166136261u;

	if (size < 5)
		return 0;
	for (size_t i = 0; i < size; i++)
		seed = (seed ^ data[i]) * 16777619u;
	pol.dtls = data[0] % 3 == 0 ? DTLS_RELAY : data[0] % 3 == 1 ? DTLS_BLOCK : DTLS_PASS;
	pol.mtu = (unsigned)data[1] << 8 | data[2];
	pol.dtls_port = (uint16_t)(data[3] << 8 | data[4]);
	data += 5;
	size -= 5;

	r = cstp_rewrite_response(data, size, &pol, out, sizeof(out), &n, &o);
	if (r == CSTP_OK || r == CSTP_REFUSED) {
		struct cstp_policy pass = { .dtls = DTLS_PASS };

		if (o.head_len > size || n > sizeof(out))
			abort();
		if (cstp_rewrite_response(out, n, &pass, again, sizeof(again), &n2, &o2) != r)
			abort();
		if (n2 != n || memcmp(again, out, n) || o2.head_len != n)
			abort();
		check_head(out, n, pol.dtls == DTLS_BLOCK, r == CSTP_OK && pol.dtls != DTLS_PASS ? pol.mtu : 0);
		if (pol.dtls == DTLS_BLOCK && (o2.dtls_offered || o.sent_dtls_mtu))
			abort();
		/* Pass: the same lines, some moved; only empty leading lines and an
		 * interim answer's X-DTLS lines go. */
		if (pol.dtls == DTLS_PASS && n > o.head_len)
			abort();
	} else if (r != CSTP_MORE && r != CSTP_E_LINE && r != CSTP_E_HEAD && r != CSTP_E_HOLD &&
		   r != CSTP_E_SYNTAX && r != CSTP_E_VALUE && r != CSTP_E_NOMTU && r != CSTP_E_SPACE) {
		abort();
	}
	check_stream(true, &pol, 0, data, size, seed, r, out, n);
	if (data[-5] & 0x20)
		check_observe(&pol, data, size, seed);

	opts = (unsigned)(data[-5] >> 2) & 7;
	r = cstp_rewrite_request(data, size, opts, out, sizeof(out), &n, &head);
	if (r == CSTP_OK) {
		if (head > size || n > head)
			abort();
		if (cstp_rewrite_request(out, n, opts, again, sizeof(again), &n2, &head) != CSTP_OK ||
		    n2 != n || head != n || memcmp(again, out, n))
			abort();
		if ((opts & CSTP_REQ_NO_PSK) && psk_left(out, n))
			abort();
	}
	check_stream(false, NULL, opts, data, size, seed, r, out, n);
	return 0;
}
