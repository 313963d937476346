/* The CONNECT rewriters on arbitrary bytes. Input: 1 byte mode (0 relay,
 * 1 block, 2 pass; bits 2-4: request rewriter options), 2 bytes group mtu,
 * 2 bytes DTLS port, then the head. A rewritten response head must parse
 * again unchanged; under block it must hold no X-DTLS header; its MTU never
 * exceeds the group's. A rewritten request is never longer, parses again,
 * rewrites to itself, and holds no PSK-NEGOTIATE when asked so. */
#include <stdlib.h>
#include <string.h>

#include "proxy/cstp.h"
#include "proxy/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t out[HTTP_MAX_HEAD + 4096], again[HTTP_MAX_HEAD + 4096];

/* Every header line of a head that parsed: no X-DTLS, MTUs within mtu. */
static void check_head(const uint8_t *h, size_t n, bool block, unsigned mtu)
{
	size_t off = 0, end, next, nl, voff, vlen;
	unsigned line = 0;

	while (off < n) {
		if (http_find_line(h + off, n - off, &end, &next) != HTTP_DONE)
			abort();
		if (line++ > 0 && end > 0) {
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cstp_policy pol;
	struct cstp_offer o, o2;
	size_t n, n2, head;
	enum cstp_res r;
	unsigned opts;

	if (size < 5)
		return 0;
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
		if (pol.dtls == DTLS_PASS && (n != o.head_len || memcmp(out, data, n)))
			abort();
	} else if (r != CSTP_MORE && r != CSTP_E_LINE && r != CSTP_E_HEADERS && r != CSTP_E_HEAD &&
		   r != CSTP_E_SYNTAX && r != CSTP_E_VALUE && r != CSTP_E_NOMTU && r != CSTP_E_SPACE) {
		abort();
	}

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
	return 0;
}
