/* Fuzz the DTLS parser: no crash, and every pointer it returns stays inside
 * the datagram with the lengths the wire gave. */
#include <stdint.h>
#include <stdlib.h>

#include "clamp/dtls.h"

static void inside(const uint8_t *buf, size_t len, const uint8_t *p, size_t n)
{
	if (p && (p < buf || n > len || (size_t)(p - buf) > len - n))
		abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dtls_info in;
	enum dtls_parse r = dtls_parse(&in, data, size);

	switch (r) {
	case DTLS_CLIENT_HELLO:
		if (!in.session_id || in.session_id_len > DTLS_SESSION_ID_MAX || !in.id)
			abort();
		inside(data, size, in.session_id, in.session_id_len);
		inside(data, size, in.app_id, in.app_id_len);
		if (in.app_id && (in.app_id_len == 0 || !in.id_is_app || in.id != in.app_id))
			abort();
		if (!in.app_id && in.id != in.session_id)
			abort();
		/* fall through */
	case DTLS_RECORD:
		if (in.nrecords == 0 || in.length > size - DTLS_RECORD_HEADER)
			abort();
		break;
	case DTLS_NOT:
	case DTLS_MALFORMED:
		if (in.id || in.app_id)
			abort();
		break;
	}
	return 0;
}
