/* The HTTP framer and group extraction. Input: 1 byte (kind, split seed),
 * then a stream of messages, framed one after another as the proxy would. */
#include <stdlib.h>
#include <string.h>

#include "proxy/http.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint8_t capbuf[16384];

static void check_name(const char *s)
{
	size_t n = strnlen(s, HTTP_GROUP_MAX);

	if (n >= HTTP_GROUP_MAX)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const enum http_kind kinds[4] = {
		HTTP_REQUEST, HTTP_RESPONSE, HTTP_RESPONSE_NOBODY, HTTP_RESPONSE_CONNECT,
	};
	struct http_capture cap = { .buf = capbuf, .cap = 1 + (size * 7) % sizeof(capbuf) };
	struct http_framer f;
	struct http_groups g;
	unsigned seed;
	size_t pos = 1;

	if (size < 1)
		return 0;
	seed = data[0] | 1u;
	http_framer_init(&f, kinds[data[0] & 3], &cap);
	while (pos < size) {
		size_t piece = 1 + (seed = seed * 1103515245u + 12345u) % 61, used;
		enum http_res r;

		if (piece > size - pos)
			piece = size - pos;
		r = http_feed(&f, data + pos, piece, &used);
		if (used > piece || (r == HTTP_MORE && used != piece))
			abort();
		pos += used;
		if (r == HTTP_MORE)
			continue;
		if (r != HTTP_DONE)
			return 0;
		if (cap.len > cap.cap || cap.head_len > cap.len || f.head_len > HTTP_MAX_HEAD)
			abort();
		http_extract_groups(cap.buf, cap.head_len, cap.buf + cap.head_len, cap.len - cap.head_len, &g);
		check_name(g.select);
		check_name(g.url);
		check_name(g.tunnel);
		if (f.tunnel)
			return 0;
		http_framer_init(&f, kinds[data[0] & 3], &cap);
	}
	(void)http_framer_eof(&f);
	return 0;
}
