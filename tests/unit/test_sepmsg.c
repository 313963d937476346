/* The proxy <-> packet process messages: every type comes back as sent, and
 * the decoder refuses what a hostile proxy could send out of bounds. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "conf/diag.h"
#include "daemon/stats.h"
#include "daemon/strbuf.h"
#include "policy/policy.h"
#include "proxy/sepmsg.h"
#include "proxy/sepstate.h"
#include "tests/unit/t.h"

static uint8_t buf[SEPMSG_MAX];

static struct session_info full_info(int family)
{
	struct session_info s = { 0 };

	memset(s.id, 0xab, 32);
	s.id_len = 32;
	s.id_is_app = true;
	snprintf(s.group, sizeof(s.group), "relay");
	if (family == AF_INET6) {
		struct sockaddr_in6 *c6 = (void *)&s.client;

		c6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, "2001:db8:1::2", &c6->sin6_addr);
		c6->sin6_port = htons(40000);
	} else {
		struct sockaddr_in *c4 = (void *)&s.client;

		c4->sin_family = AF_INET;
		inet_pton(AF_INET, "198.18.1.2", &c4->sin_addr);
		c4->sin_port = htons(40000);
	}
	inet_pton(AF_INET, "198.19.0.7", s.addr4);
	inet_pton(AF_INET6, "2001:db8:99::7", s.addr6);
	s.has_addr4 = s.has_addr6 = true;
	s.cstp_mtu = 1380;
	s.dtls_mtu = 1418;
	s.sent_mtu = 1380;
	s.sent_dtls_mtu = 1380;
	s.dtls = SESSION_DTLS_ESTABLISHED;
	snprintf(s.user, sizeof(s.user), "Ren\xc3\xa9" "e");
	s.since = 1796670000;
	s.reconnects = 3;
	memset(s.key, 0x5a, sizeof(s.key));
	s.bytes_up = 1ull << 40;
	s.bytes_down = 12345;
	s.observed = s.would_rewrite = true;
	return s;
}

static bool same_info(const struct session_info *a, const struct session_info *b)
{
	return a->id_len == b->id_len && !memcmp(a->id, b->id, a->id_len) &&
	       a->id_is_app == b->id_is_app && !strcmp(a->group, b->group) &&
	       a->client.ss_family == b->client.ss_family &&
	       !memcmp(&a->client, &b->client, a->client.ss_family == AF_INET6 ?
		       sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)) &&
	       !memcmp(a->addr4, b->addr4, 4) && !memcmp(a->addr6, b->addr6, 16) &&
	       a->has_addr4 == b->has_addr4 && a->has_addr6 == b->has_addr6 &&
	       a->cstp_mtu == b->cstp_mtu && a->dtls_mtu == b->dtls_mtu &&
	       a->sent_mtu == b->sent_mtu && a->sent_dtls_mtu == b->sent_dtls_mtu &&
	       a->dtls == b->dtls && a->bytes_up == b->bytes_up && a->bytes_down == b->bytes_down &&
	       a->observed == b->observed && a->would_rewrite == b->would_rewrite &&
	       !strcmp(a->user, b->user) && a->since == b->since && a->reconnects == b->reconnects &&
	       !memcmp(a->key, b->key, sizeof(a->key));
}

static void test_session_roundtrip(void)
{
	static struct sepmsg m, out;

	for (int fam = 0; fam < 2; fam++) {
		memset(&m, 0, sizeof(m));
		m.type = SEPMSG_SESSION_ADD;
		m.handle = 7;
		m.info = full_info(fam ? AF_INET6 : AF_INET);
		size_t n = sepmsg_encode(&m, buf, sizeof(buf));

		CHECK(n > 0);
		CHECK_INT(sepmsg_decode(buf, n, &out), 0);
		CHECK_INT(out.type, SEPMSG_SESSION_ADD);
		CHECK_INT(out.handle, 7);
		CHECK(same_info(&m.info, &out.info));
		/* Cut anywhere inside: refused (a field half there, or a header). */
		bool all_refused = true;
		for (size_t cut = 1; cut < n; cut++)
			if (sepmsg_decode(buf, cut, &out) == 0 && cut < 8)
				all_refused = false;
		CHECK(all_refused);
		CHECK_INT(sepmsg_decode(buf, n - 1, &out), -EINVAL);
	}
	/* A field left out arrives zero: an empty session is valid. */
	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_SESSION_ADD;
	CHECK_INT(sepmsg_decode(buf, 8, &out), 0);
	CHECK_INT(out.info.id_len, 0);
	CHECK_STR(out.info.group, "");
}

/* A session cookie's change travels whole; anything out of bounds is refused. */
static void test_cookie_msg(void)
{
	static struct sepmsg m, out;
	size_t n;

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_COOKIE;
	m.cookie.op = COOKIE_OP_TUNNEL;
	memset(m.cookie.hash, 0xa5, sizeof(m.cookie.hash));
	strcpy(m.cookie.group, "relay");
	strcpy(m.cookie.user, "h:0123abcd");
	m.cookie.mtu = 1380;
	m.cookie.dtls_mtu = 1418;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) > 0);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_INT(out.type, SEPMSG_COOKIE);
	CHECK_INT(out.cookie.op, COOKIE_OP_TUNNEL);
	CHECK_MEM(out.cookie.hash, m.cookie.hash, sizeof(m.cookie.hash));
	CHECK_STR(out.cookie.group, "relay");
	CHECK_STR(out.cookie.user, "h:0123abcd");
	CHECK_INT(out.cookie.mtu, 1380);
	CHECK_INT(out.cookie.dtls_mtu, 1418);
	for (size_t cut = 0; cut < n; cut++)
		CHECK_INT(sepmsg_decode(buf, cut, &out), -EINVAL);
	/* An unknown op, a control character in the group: refused. */
	buf[4] = 9;
	CHECK_INT(sepmsg_decode(buf, n, &out), -EINVAL);
	buf[4] = COOKIE_OP_END;
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	buf[4 + 1 + 32 + 1] = '\n';
	CHECK_INT(sepmsg_decode(buf, n, &out), -EINVAL);
	m.cookie.op = 0;
	CHECK_INT(sepmsg_encode(&m, buf, sizeof(buf)), 0);
	m.cookie.op = COOKIE_OP_BIND;
	m.cookie.mtu = 70000;
	CHECK_INT(sepmsg_encode(&m, buf, sizeof(buf)), 0);
	CHECK_STR(sepmsg_type_str(SEPMSG_COOKIE), "cookie");
}

static void test_other_types(void)
{
	static struct sepmsg m, out;
	size_t n;

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_BYTES;
	m.n = SEPMSG_BATCH;
	for (size_t i = 0; i < m.n; i++)
		m.bytes[i] = (struct sepmsg_bytes){ .handle = (uint32_t)i, .up = i * 1000, .down = ~i };
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) > 0);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_INT(out.n, SEPMSG_BATCH);
	CHECK_INT(out.bytes[SEPMSG_BATCH - 1].handle, SEPMSG_BATCH - 1);
	CHECK(out.bytes[3].down == ~(uint64_t)3 && out.bytes[3].up == 3000);
	m.n = SEPMSG_BATCH + 1;
	CHECK_INT(sepmsg_encode(&m, buf, sizeof(buf)), 0);

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_COUNTERS;
	snprintf(m.group, sizeof(m.group), "tlsonly");
	m.n = 2;
	m.ctr[0] = (struct sepmsg_ctr){ .field = 0, .delta = 5 };
	m.ctr[1] = (struct sepmsg_ctr){ .field = (uint16_t)(sepmsg_ctr_fields("x") - 1), .delta = 1 };
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) > 0);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_STR(out.group, "tlsonly");
	CHECK_INT(out.ctr[1].field, sepmsg_ctr_fields("x") - 1);
	CHECK_INT(out.ctr[0].delta, 5);
	/* A field past the group's counters: refused. */
	m.ctr[1].field = (uint16_t)sepmsg_ctr_fields("x");
	n = sepmsg_encode(&m, buf, sizeof(buf));
	CHECK_INT(sepmsg_decode(buf, n, &out), -EINVAL);
	/* The proxy-wide part: its own bound. */
	m.group[0] = '\0';
	m.ctr[1].field = (uint16_t)(sepmsg_ctr_fields("") - 1);
	n = sepmsg_encode(&m, buf, sizeof(buf));
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_INT(sepmsg_ctr_fields(""), offsetof(struct counters, g) / sizeof(ctr));

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_GONE;
	m.pid = 4242;
	m.status = 9;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) == 12);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK(out.pid == 4242 && out.status == 9);
	m.type = SEPMSG_HELLO;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) == 8);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_INT(out.pid, 4242);
	m.type = SEPMSG_TICK;
	m.tick = 99;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) == 12);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_INT(out.tick, 99);
	m.type = SEPMSG_RELOAD;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) == 4);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK_INT(out.type, SEPMSG_RELOAD);
	m.type = SEPMSG_DTLS;
	m.handle = 9;
	m.info.dtls = SESSION_DTLS_ESTABLISHED;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) == 9);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK(out.handle == 9 && out.info.dtls == SESSION_DTLS_ESTABLISHED);
	buf[8] = SESSION_DTLS_LAST + 1;	/* a state past the enum */
	CHECK_INT(sepmsg_decode(buf, n, &out), -EINVAL);
	m.type = SEPMSG_DRAIN;
	m.pid = 4243;
	m.status = 100;
	CHECK((n = sepmsg_encode(&m, buf, sizeof(buf))) == 12);
	CHECK_INT(sepmsg_decode(buf, n, &out), 0);
	CHECK(out.type == SEPMSG_DRAIN && out.pid == 4243 && out.status == 100);
	CHECK_STR(sepmsg_type_str(SEPMSG_DRAIN), "drain");
	buf[11] = 0x80;	/* a negative count of tunnels */
	CHECK_INT(sepmsg_decode(buf, n, &out), -EINVAL);
	CHECK_INT(sepmsg_decode(buf, n - 1, &out), -EINVAL);
	m.type = SEPMSG_TYPE_END;
	CHECK_INT(sepmsg_encode(&m, buf, sizeof(buf)), 0);
	/* Too small a buffer: 0, never a partial message. */
	m.type = SEPMSG_GONE;
	CHECK_INT(sepmsg_encode(&m, buf, 11), 0);
}

/* A SESSION_ADD with one hand-made field: what the decoder makes of it. */
static int one_field(uint16_t tag, const void *v, uint16_t len, struct sepmsg *out)
{
	uint8_t b[512] = { SEPMSG_SESSION_ADD, 0, 0, 0, 1, 0, 0, 0 };

	b[8] = (uint8_t)tag;
	b[9] = (uint8_t)(tag >> 8);
	b[10] = (uint8_t)len;
	b[11] = (uint8_t)(len >> 8);
	memcpy(b + 12, v, len);
	return sepmsg_decode(b, 12u + len, out);
}

static void test_hostile(void)
{
	static struct sepmsg out;
	uint8_t v[300];
	uint64_t x;

	/* The header: unknown type, reserved bits, too short. */
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x00\x00\x00\x00", 4, &out), -EINVAL);
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x09\x00\x00\x00", 4, &out), -EINVAL);
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x08\x00\x01\x00", 4, &out), -EINVAL);
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x08\x00", 2, &out), -EINVAL);
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x08\x00\x00\x00\x00", 5, &out), -EINVAL);
	/* HELLO and GONE need a real pid. */
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x01\x00\x00\x00\x00\x00\x00\x00", 8, &out), -EINVAL);
	CHECK_INT(sepmsg_decode((const uint8_t *)"\x01\x00\x00\x00\xff\xff\xff\xff", 8, &out), -EINVAL);

	/* Strings: printable, shorter than the field, NUL-terminated on arrival. */
	CHECK_INT(one_field(3, "relay", 5, &out), 0);
	CHECK_STR(out.info.group, "relay");
	CHECK_INT(one_field(3, "re\tlay", 6, &out), -EINVAL);
	CHECK_INT(one_field(3, "re\nlay", 6, &out), -EINVAL);
	CHECK_INT(one_field(3, "re\0ay", 5, &out), -EINVAL);
	memset(v, 'a', sizeof(v));
	CHECK_INT(one_field(3, v, SESSION_GROUP_MAX - 1, &out), 0);
	CHECK_INT(strlen(out.info.group), SESSION_GROUP_MAX - 1);
	CHECK_INT(one_field(3, v, SESSION_GROUP_MAX, &out), -EINVAL);
	/* The DTLS id: at most SESSION_ID_MAX bytes, its length set with it. */
	CHECK_INT(one_field(1, v, SESSION_ID_MAX, &out), 0);
	CHECK_INT(out.info.id_len, SESSION_ID_MAX);
	CHECK_INT(one_field(1, v, SESSION_ID_MAX + 1, &out), -EINVAL);
	/* Enums and MTUs in range, booleans 0 or 1. */
	x = SESSION_DTLS_LAST;
	CHECK_INT(one_field(13, &x, 8, &out), 0);
	x = SESSION_DTLS_LAST + 1;
	CHECK_INT(one_field(13, &x, 8, &out), -EINVAL);
	/* The user: a login's bytes, printable (UTF-8 passes), no control character. */
	CHECK_INT(one_field(18, "Ren\xc3\xa9" "e", 6, &out), 0);
	CHECK_STR(out.info.user, "Ren\xc3\xa9" "e");
	CHECK_INT(one_field(18, "a\x1b[2J", 6, &out), -EINVAL);
	CHECK_INT(one_field(18, v, SESSION_USER_MAX, &out), -EINVAL);
	/* since, reconnects in range; the cookie key exactly its size. */
	x = (uint64_t)INT64_MAX + 1;
	CHECK_INT(one_field(19, &x, 8, &out), -EINVAL);
	x = (uint64_t)UINT32_MAX + 1;
	CHECK_INT(one_field(20, &x, 8, &out), -EINVAL);
	CHECK_INT(one_field(21, v, SESSION_KEY_LEN - 1, &out), -EINVAL);
	CHECK_INT(one_field(21, v, SESSION_KEY_LEN, &out), 0);
	x = 65536;
	CHECK_INT(one_field(9, &x, 8, &out), -EINVAL);
	CHECK_INT(one_field(9, &x, 4, &out), -EINVAL);
	CHECK_INT(one_field(2, "\x02", 1, &out), -EINVAL);
	CHECK_INT(one_field(2, "\x01", 1, &out), 0);
	CHECK(out.info.id_is_app);
	/* Fixed-size addresses: exactly their size. */
	CHECK_INT(one_field(5, v, 3, &out), -EINVAL);
	CHECK_INT(one_field(6, v, 16, &out), 0);
	/* Socket addresses: AF_INET or AF_INET6, the length that goes with it. */
	uint8_t sa[20] = { AF_INET, 0, 0x01, 0xbb, 198, 18, 1, 2 };
	CHECK_INT(one_field(4, sa, 8, &out), 0);
	CHECK_INT(out.info.client.ss_family, AF_INET);
	CHECK_INT(ntohs(((struct sockaddr_in *)&out.info.client)->sin_port), 443);
	CHECK_INT(one_field(4, sa, 20, &out), -EINVAL);
	sa[0] = AF_INET6;
	CHECK_INT(one_field(4, sa, 20, &out), 0);
	CHECK_INT(one_field(4, sa, 8, &out), -EINVAL);
	sa[0] = AF_UNIX;
	CHECK_INT(one_field(4, sa, 8, &out), -EINVAL);
	sa[0] = AF_NETLINK;
	CHECK_INT(one_field(4, sa, 20, &out), -EINVAL);
	CHECK_INT(one_field(4, sa, 1, &out), -EINVAL);
	/* Unknown tags; the same tag twice. */
	CHECK_INT(one_field(99, v, 1, &out), -EINVAL);
	CHECK_INT(one_field(0, v, 0, &out), -EINVAL);
	{
		uint8_t b[32] = { SEPMSG_SESSION_ADD, 0, 0, 0, 1, 0, 0, 0,
				  3, 0, 1, 0, 'a', 3, 0, 1, 0, 'b' };

		CHECK_INT(sepmsg_decode(b, 18, &out), -EINVAL);
		CHECK_INT(sepmsg_decode(b, 13, &out), 0);
		/* A field's length past the end of the datagram. */
		b[10] = 200;
		CHECK_INT(sepmsg_decode(b, 18, &out), -EINVAL);
	}
	/* Batches: a count over SEPMSG_BATCH, or more entries than bytes. */
	{
		uint8_t b[16] = { SEPMSG_BYTES, 0, 0, 0, (uint8_t)(SEPMSG_BATCH + 1), 0 };

		CHECK_INT(sepmsg_decode(b, 6, &out), -EINVAL);
		b[4] = 1;
		CHECK_INT(sepmsg_decode(b, 6, &out), -EINVAL);
		b[4] = 0;
		CHECK_INT(sepmsg_decode(b, 6, &out), 0);
	}
	/* COUNTERS: the group name's length past the field. */
	{
		uint8_t b[128] = { SEPMSG_COUNTERS, 0, 0, 0, SESSION_GROUP_MAX };

		memset(b + 5, 'g', SESSION_GROUP_MAX);
		CHECK_INT(sepmsg_decode(b, 5 + SESSION_GROUP_MAX + 2, &out), -EINVAL);
		b[4] = 1;
		b[6] = 0;
		b[7] = 0;
		CHECK_INT(sepmsg_decode(b, 8, &out), 0);
		CHECK_STR(out.group, "g");
	}
	CHECK_STR(sepmsg_type_str(SEPMSG_GONE), "gone");
	CHECK_STR(sepmsg_type_str((enum sepmsg_type)77), "?");
}

static struct policy_box *one_group_box(const char *name, unsigned slot)
{
	struct group *g = calloc(1, sizeof(*g));
	struct diag d = { 0 };
	struct policy *p;

	strcpy(g->name, name);
	strcpy(g->auth_group, name);
	g->mtu = 1400;
	if (!(p = policy_compile(g, 1, &d)))
		abort();
	((struct group *)policy_group(p, 0))->slot = slot;
	diag_free(&d);
	return policy_box_new(p);
}

/* The packet process's copy: sessions by the proxy's handles, bounded; the
 * counters only where they belong; a dead worker's sessions all gone. */
static void test_state(void)
{
	static struct sepmsg m;
	static struct counters c;
	struct session_table *t = session_table_new(4);
	struct policy_box *box = one_group_box("relay", 5);
	struct sepstate *st = sepstate_new(t, 4, 1, &c, box);
	struct strbuf out = { 0 };
	char name[64] = "";
	unsigned w = 9;

	CHECK(st != NULL);
	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_SESSION_ADD;
	m.info = full_info(AF_INET);
	m.handle = 3;
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	CHECK(session_group_by_id(t, m.info.id, 32, name, sizeof(name)));
	CHECK_INT(sepstate_proxy_handle(st, 0, &w), 3);	/* our first slot is the proxy's 3 */
	CHECK_INT(w, 0);
	CHECK_INT(sepstate_proxy_handle(st, 1, &w), -1);
	CHECK_STR(name, "relay");
	/* The same handle again: the older entry goes, one session stays. */
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	CHECK_INT(session_count(t), 1);
	CHECK_INT(sepstate_sessions(st, SEPSTATE_ALL), 1);
	m.handle = 4;	/* past the proxy's table */
	CHECK_INT(sepstate_apply(st, 0, &m), -EINVAL);
	CHECK_INT(session_count(t), 1);

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_BYTES;
	m.n = 3;
	m.bytes[0] = (struct sepmsg_bytes){ .handle = 3, .up = 111, .down = 222 };
	m.bytes[1] = (struct sepmsg_bytes){ .handle = 2, .up = 1, .down = 1 };	/* none */
	m.bytes[2] = (struct sepmsg_bytes){ .handle = 99999, .up = 1, .down = 1 };
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	session_format(t, &out);
	CHECK(out.buf && strstr(out.buf, "bytes_in=111 bytes_out=222"));
	strbuf_free(&out);

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_COUNTERS;
	m.n = 1;
	m.ctr[0] = (struct sepmsg_ctr){ .field = 0, .delta = 7 };
	strcpy(m.group, "relay");
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	CHECK_INT(ctr_get(&c.g[5].packets), 7);
	strcpy(m.group, "nosuch");	/* no slot taken, nothing counted */
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	m.group[0] = '\0';
	m.ctr[0].field = (uint16_t)(offsetof(struct counters, not_diverted) / sizeof(ctr));
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	CHECK_INT(ctr_get(&c.not_diverted), 14);
	CHECK_INT(ctr_get(&c.g[5].packets), 7);

	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_TICK;
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	CHECK_INT(sepstate_progress(st, 0), 1);
	m.type = SEPMSG_GONE;
	m.pid = 77;
	CHECK_INT(sepstate_apply(st, 0, &m), 1);
	CHECK_INT(session_count(t), 0);
	CHECK(!session_group_by_id(t, full_info(AF_INET).id, 32, name, sizeof(name)));
	m.type = SEPMSG_SESSION_DEL;
	m.handle = 3;	/* already gone: nothing */
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	m.type = SEPMSG_RELOAD;	/* never from the proxy */
	CHECK_INT(sepstate_apply(st, 0, &m), -EINVAL);

	/* A reconnect predicted here (DTLS failed, adapter MTU over the TLS MTU):
	 * the session's next tunnel confirms it, in its group's counter. */
	{
		struct session_event ev[2];

		memset(&m, 0, sizeof(m));
		m.type = SEPMSG_SESSION_ADD;
		m.info = full_info(AF_INET);
		m.info.dtls = SESSION_DTLS_OFFERED;
		m.info.observed = true;
		m.info.sent_dtls_mtu = 1418;
		m.info.since = 1000;
		m.info.reconnects = 0;
		m.handle = 1;
		CHECK_INT(sepstate_apply(st, 0, &m), 0);
		CHECK_INT(session_sweep(t, 1030, ev, 2), 1);
		CHECK(ev[0].predicted);
		m.handle = 2;
		m.info.reconnects = 1;
		m.info.since = 1060;
		CHECK_INT(sepstate_apply(st, 0, &m), 1);	/* 1: as predicted (logged) */
		CHECK_INT(ctr_get(&c.g[5].reconnects_as_predicted), 1);
		m.handle = 0;	/* once per prediction */
		CHECK_INT(sepstate_apply(st, 0, &m), 0);
		CHECK_INT(ctr_get(&c.g[5].reconnects_as_predicted), 1);
	}
	sepstate_free(st);
	session_table_free(t);
	policy_box_free(box);
}

/* Two workers: the same handle from each is two sessions; a worker's death
 * forgets its own only; ticks are counted per worker (the watchdog wants
 * every one to turn); both workers' counters add up in one set. */
static void test_state_workers(void)
{
	static struct sepmsg m;
	static struct counters c;
	struct session_table *t = session_table_new(8);
	struct policy_box *box = one_group_box("relay", 2);
	struct sepstate *st = sepstate_new(t, 4, 2, &c, box);
	struct session_info a = full_info(AF_INET), b = full_info(AF_INET6);
	char name[64];
	unsigned w = 9;

	CHECK(st != NULL);
	b.id[0] ^= 0xff;	/* another tunnel */
	b.worker = 7;		/* never trusted: the channel says */
	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_SESSION_ADD;
	m.handle = 1;
	m.info = a;
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	m.info = b;
	CHECK_INT(sepstate_apply(st, 1, &m), 0);
	CHECK_INT(session_count(t), 2);
	CHECK_INT(sepstate_sessions(st, 0), 1);
	CHECK_INT(sepstate_sessions(st, 1), 1);
	CHECK_INT(sepstate_sessions(st, SEPSTATE_ALL), 2);
	CHECK_INT(sepstate_apply(st, 2, &m), -EINVAL);	/* no third worker */
	{
		/* The worker in sessions is the channel's, whatever the message says. */
		struct strbuf out = { 0 };

		session_format(t, &out);
		CHECK(out.buf && strstr(out.buf, " worker=0\n") && strstr(out.buf, " worker=1\n"));
		strbuf_free(&out);
	}
	CHECK_INT(sepstate_sessions(st, 2), 0);
	/* Our handles lead back to the worker and its handle. */
	CHECK_INT(sepstate_proxy_handle(st, 1, &w), 1);
	CHECK_INT(w, 1);
	CHECK_INT(sepstate_proxy_handle(st, 0, &w), 1);
	CHECK_INT(w, 0);
	/* Worker 1 ends handle 1: worker 0's handle 1 stays. */
	m.type = SEPMSG_SESSION_DEL;
	CHECK_INT(sepstate_apply(st, 1, &m), 0);
	CHECK_INT(session_count(t), 1);
	CHECK(session_group_by_id(t, a.id, 32, name, sizeof(name)));
	m.type = SEPMSG_SESSION_ADD;
	CHECK_INT(sepstate_apply(st, 1, &m), 0);
	/* Counters: increments from both add up. */
	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_COUNTERS;
	m.n = 1;
	m.ctr[0] = (struct sepmsg_ctr){ .field = 0, .delta = 3 };
	strcpy(m.group, "relay");
	CHECK_INT(sepstate_apply(st, 0, &m), 0);
	m.ctr[0].delta = 4;
	CHECK_INT(sepstate_apply(st, 1, &m), 0);
	CHECK_INT(ctr_get(&c.g[2].packets), 7);
	/* Ticks per worker. */
	memset(&m, 0, sizeof(m));
	m.type = SEPMSG_TICK;
	CHECK_INT(sepstate_apply(st, 1, &m), 0);
	CHECK_INT(sepstate_apply(st, 1, &m), 0);
	CHECK_INT(sepstate_progress(st, 0), 0);
	CHECK_INT(sepstate_progress(st, 1), 2);
	CHECK_INT(sepstate_progress(st, 7), 0);
	/* Worker 0 dies: its one session goes, worker 1's stays. */
	m.type = SEPMSG_GONE;
	m.pid = 42;
	CHECK_INT(sepstate_apply(st, 0, &m), 1);
	CHECK_INT(session_count(t), 1);
	CHECK(!session_group_by_id(t, a.id, 32, name, sizeof(name)));
	CHECK(session_group_by_id(t, b.id, 32, name, sizeof(name)));
	CHECK_INT(sepstate_sessions(st, SEPSTATE_ALL), 1);
	CHECK_INT(sepstate_apply(st, 1, &m), 1);
	CHECK_INT(session_count(t), 0);
	sepstate_free(st);
	session_table_free(t);
	policy_box_free(box);
}

/* The proxy process's table tells every change, as stored. */
static int hk_added = -1, hk_removed = -1;
static size_t hk_bytes;
static char hk_group[64];

static void hk_add(void *arg, int h, const struct session_info *s)
{
	(void)arg;
	hk_added = h;
	snprintf(hk_group, sizeof(hk_group), "%s", s->group);
}

static void hk_rm(void *arg, int h)
{
	(void)arg;
	hk_removed = h;
}

static void hk_by(void *arg, const struct session_bytes *v, size_t n)
{
	(void)arg;
	hk_bytes += n && v[0].up == 5 ? n : 0;
}

static void test_hooks(void)
{
	struct session_table *t = session_table_new(4);
	const struct session_hooks hooks = { .added = hk_add, .removed = hk_rm, .bytes = hk_by };
	struct session_info s = full_info(AF_INET6);
	struct session_bytes b;
	int h;

	session_table_hooks(t, &hooks);
	h = session_add(t, &s);
	CHECK(h >= 0);
	CHECK_INT(hk_added, h);
	CHECK_STR(hk_group, "relay");
	b = (struct session_bytes){ .handle = h, .up = 5, .down = 6 };
	session_set_bytes_many(t, &b, 1);
	CHECK_INT(hk_bytes, 1);
	session_remove(t, h);
	CHECK_INT(hk_removed, h);
	hk_removed = -1;
	session_remove(t, h);	/* gone already: not told twice */
	CHECK_INT(hk_removed, -1);
	session_add(t, &s);
	session_clear(t);
	CHECK_INT(session_count(t), 0);
	session_table_free(t);
}

int main(void)
{
	test_hooks();
	test_cookie_msg();
	test_state();
	test_state_workers();
	test_session_roundtrip();
	test_other_types();
	test_hostile();
	return t_done("test_sepmsg");
}
