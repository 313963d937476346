/*
 * libFuzzer: the proxy -> packet process messages (proxy/sepmsg.h) on
 * arbitrary bytes, as a compromised proxy could send them. A message that
 * decodes must hold only what the decoder promises (strings terminated and
 * printable, counts and indexes in bounds, address families known) and must
 * come back the same through the encoder.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "proxy/sepmsg.h"

static void check_str(const char *s, size_t cap)
{
	size_t n = strnlen(s, cap);

	if (n == cap)
		abort();
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t n)
{
	static struct sepmsg m, again;
	static uint8_t buf[SEPMSG_MAX];
	size_t len;

	if (sepmsg_decode(data, n, &m) < 0)
		return 0;
	if (m.type < SEPMSG_HELLO || m.type >= SEPMSG_TYPE_END || m.n > SEPMSG_BATCH)
		abort();
	check_str(m.group, sizeof(m.group));
	check_str(m.info.group, sizeof(m.info.group));
	check_str(m.info.user, sizeof(m.info.user));
	if (m.info.id_len > SESSION_ID_MAX || m.info.dtls > SESSION_DTLS_LAST || m.info.since < 0)
		abort();
	if (m.info.client.ss_family != 0 && m.info.client.ss_family != AF_INET &&
	    m.info.client.ss_family != AF_INET6)
		abort();
	check_str(m.cookie.group, sizeof(m.cookie.group));
	check_str(m.cookie.user, sizeof(m.cookie.user));
	if (m.type == SEPMSG_COOKIE && (m.cookie.op < COOKIE_OP_BIND || m.cookie.op > COOKIE_OP_LAST ||
					m.cookie.mtu > 65535 || m.cookie.dtls_mtu > 65535))
		abort();
	if (m.type == SEPMSG_COUNTERS)
		for (size_t i = 0; i < m.n; i++)
			if (m.ctr[i].field >= sepmsg_ctr_fields(m.group))
				abort();
	/* Re-encoded and decoded again: the same message. */
	if (m.n > SEPMSG_BATCH || !(len = sepmsg_encode(&m, buf, sizeof(buf))) ||
	    sepmsg_decode(buf, len, &again) < 0 || again.type != m.type || again.n != m.n ||
	    again.handle != m.handle || strcmp(again.group, m.group) ||
	    strcmp(again.info.group, m.info.group) || again.info.id_len != m.info.id_len ||
	    memcmp(again.info.id, m.info.id, m.info.id_len) || again.pid != m.pid ||
	    again.tick != m.tick || memcmp(&again.cookie, &m.cookie, sizeof(m.cookie)))
		abort();
	return 0;
}
