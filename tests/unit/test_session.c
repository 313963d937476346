/* The session table: lookups by DTLS id, bounds, reuse of slots, and the
 * exact "sessions" lines the control socket returns. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/strbuf.h"
#include "proxy/session.h"
#include "tests/unit/t.h"

static struct session_info mk(const char *group, uint8_t idbyte, size_t idlen, const char *client,
			      uint16_t port)
{
	struct session_info s = { 0 };
	struct sockaddr_in *c4 = (void *)&s.client;
	struct sockaddr_in6 *c6 = (void *)&s.client;

	snprintf(s.group, sizeof(s.group), "%s", group);
	memset(s.id, idbyte, idlen);
	s.id_len = idlen;
	if (strchr(client, ':')) {
		c6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, client, &c6->sin6_addr);
		c6->sin6_port = htons(port);
	} else {
		c4->sin_family = AF_INET;
		inet_pton(AF_INET, client, &c4->sin_addr);
		c4->sin_port = htons(port);
	}
	return s;
}

static void test_lookup(void)
{
	struct session_table *t = session_table_new(8);
	struct session_info a = mk("relay", 0xab, 32, "198.18.1.2", 40000);
	struct session_info b = mk("tlsonly", 0xcd, 16, "198.18.1.66", 40001);
	uint8_t id[64];
	char name[64] = "";
	int ha, hb;

	b.id_is_app = true;
	CHECK((ha = session_add(t, &a)) >= 0);
	CHECK((hb = session_add(t, &b)) >= 0);
	CHECK(ha != hb);
	CHECK_INT(session_count(t), 2);
	memset(id, 0xab, 32);
	CHECK(session_group_by_id(t, id, 32, name, sizeof(name)));
	CHECK_STR(name, "relay");
	/* Same bytes, other length: another id. */
	CHECK(!session_group_by_id(t, id, 31, name, sizeof(name)));
	memset(id, 0xcd, 16);
	CHECK(session_group_by_id(t, id, 16, name, sizeof(name)));
	CHECK_STR(name, "tlsonly");
	CHECK(!session_group_by_id(t, id, 0, name, sizeof(name)));
	CHECK(!session_group_by_id(t, id, 65, name, sizeof(name)));
	/* A short output buffer gets a truncated, terminated name. */
	CHECK(session_group_by_id(t, id, 16, name, 4));
	CHECK_STR(name, "tls");

	session_remove(t, hb);
	CHECK(!session_group_by_id(t, id, 16, name, sizeof(name)));
	CHECK_INT(session_count(t), 1);
	session_remove(t, hb);	/* twice: nothing happens */
	CHECK_INT(session_count(t), 1);
	session_remove(t, -1);
	session_remove(t, 1000);
	CHECK_INT(session_count(t), 1);
	session_table_free(t);
}

/* A reconnect presents the same id: the newer session answers, and removing
 * the older one later does not take the id away from it. */
/* The group of the tunnels from one client address, whatever their ports. */
static void test_by_client(void)
{
	struct session_table *t = session_table_new(8);
	struct session_info a = mk("relay", 0x01, 32, "198.18.1.2", 40000);
	struct session_info b = mk("relay", 0x02, 32, "198.18.1.2", 40001);
	struct session_info c = mk("tlsonly", 0x03, 32, "2001:db8:1::66", 40002);
	struct session_info d = mk("tlsonly", 0x04, 32, "198.18.1.2", 40003);
	uint8_t a4[4], a6[16], other[4];
	char name[64] = "";
	int hd;

	inet_pton(AF_INET, "198.18.1.2", a4);
	inet_pton(AF_INET6, "2001:db8:1::66", a6);
	inet_pton(AF_INET, "198.18.1.3", other);
	CHECK(!session_group_by_client(t, AF_INET, a4, name, sizeof(name)));
	CHECK(session_add(t, &a) >= 0 && session_add(t, &b) >= 0 && session_add(t, &c) >= 0);
	CHECK(session_group_by_client(t, AF_INET, a4, name, sizeof(name)));
	CHECK_STR(name, "relay");
	CHECK(session_group_by_client(t, AF_INET6, a6, name, sizeof(name)));
	CHECK_STR(name, "tlsonly");
	CHECK(!session_group_by_client(t, AF_INET, other, name, sizeof(name)));
	{
		uint8_t as6[16] = { 0 };

		memcpy(as6, a4, 4);
		CHECK(!session_group_by_client(t, AF_INET6, as6, name, sizeof(name)) ||
		      strcmp(name, "relay"));
	}
	/* Another user behind the same address, in another group: not known. */
	CHECK((hd = session_add(t, &d)) >= 0);
	CHECK(!session_group_by_client(t, AF_INET, a4, name, sizeof(name)));
	session_remove(t, hd);
	CHECK(session_group_by_client(t, AF_INET, a4, name, sizeof(name)));
	CHECK_STR(name, "relay");
	session_table_free(t);
}

static void test_same_id(void)
{
	struct session_table *t = session_table_new(8);
	struct session_info a = mk("relay", 0x11, 32, "198.18.1.2", 1);
	struct session_info b = mk("other", 0x11, 32, "198.18.1.2", 2);
	uint8_t id[32];
	char name[64];
	int ha, hb;

	memset(id, 0x11, 32);
	ha = session_add(t, &a);
	hb = session_add(t, &b);
	CHECK(session_group_by_id(t, id, 32, name, sizeof(name)));
	CHECK_STR(name, "other");
	session_remove(t, ha);
	CHECK(session_group_by_id(t, id, 32, name, sizeof(name)));
	CHECK_STR(name, "other");
	CHECK_INT(session_count(t), 1);
	session_remove(t, hb);
	CHECK(!session_group_by_id(t, id, 32, name, sizeof(name)));
	CHECK_INT(session_count(t), 0);
	session_table_free(t);
}

static void test_bounds(void)
{
	struct session_table *t = session_table_new(3);
	struct session_info s = mk("g", 0, 0, "198.18.1.2", 1);
	int h[4];

	for (int i = 0; i < 3; i++)
		CHECK((h[i] = session_add(t, &s)) >= 0);
	CHECK_INT(session_add(t, &s), -1);
	session_remove(t, h[1]);
	/* The freed slot is reused, and the bound still holds. */
	CHECK_INT(session_add(t, &s), h[1]);
	CHECK_INT(session_add(t, &s), -1);
	CHECK_INT(session_count(t), 3);
	/* An id longer than the table keeps is stored without it. */
	session_remove(t, h[0]);
	s.id_len = SESSION_ID_MAX + 1;
	CHECK((h[3] = session_add(t, &s)) >= 0);
	session_table_free(t);
}

/* Many sessions share buckets: every one stays reachable, removals in any order. */
static void test_many(void)
{
	enum { N = 5000 };
	struct session_table *t = session_table_new(N);
	static int h[N];
	uint8_t id[32];
	char name[64], want[64];
	int found = 0, gone = 0;

	for (int i = 0; i < N; i++) {
		struct session_info s = mk("", 0, 32, "2001:db8:1::2", (uint16_t)i);

		memcpy(s.id, &i, sizeof(i));
		snprintf(s.group, sizeof(s.group), "g%d", i);
		h[i] = session_add(t, &s);
	}
	CHECK_INT(session_count(t), N);
	for (int i = 0; i < N; i += 2)
		session_remove(t, h[i]);
	for (int i = 0; i < N; i++) {
		memset(id, 0, sizeof(id));
		memcpy(id, &i, sizeof(i));
		bool ok = session_group_by_id(t, id, 32, name, sizeof(name));
		snprintf(want, sizeof(want), "g%d", i);
		if (i % 2 == 0)
			gone += !ok;
		else
			found += ok && strcmp(name, want) == 0;
	}
	CHECK_INT(found, N / 2);
	CHECK_INT(gone, N / 2);
	session_table_free(t);
}

static void test_format(void)
{
	struct session_table *t = session_table_new(4);
	struct session_info a = mk("relay", 0, 0, "198.18.1.2", 40000);
	struct session_info b = mk("tlsonly", 0xa5, 4, "2001:db8:1::102", 50000);
	struct session_info c = mk("", 0, 0, "198.18.1.9", 7);
	struct strbuf out = { 0 };
	int ha;

	a.id_len = 2;
	a.id[0] = 0x01;
	a.id[1] = 0xfe;
	inet_pton(AF_INET, "192.0.2.5", a.addr4);
	a.has_addr4 = true;
	inet_pton(AF_INET6, "2001:db8:0:40::5", a.addr6);
	a.has_addr6 = true;
	a.cstp_mtu = 1434;
	a.dtls_mtu = 1418;
	a.sent_mtu = 1380;
	a.sent_dtls_mtu = 1380;
	a.dtls = SESSION_DTLS_RELAYED;
	b.id_is_app = true;
	inet_pton(AF_INET6, "2001:db8:0:80::9", b.addr6);
	b.has_addr6 = true;
	b.cstp_mtu = 1472;
	b.sent_mtu = 1380;
	b.dtls = SESSION_DTLS_BLOCKED;
	ha = session_add(t, &a);
	session_add(t, &b);
	session_add(t, &c);
	session_set_bytes(t, ha, 123, 4567);
	session_format(t, &out);
	CHECK_STR(out.buf,
		  "session\tclient=198.18.1.2:40000 group=relay address=192.0.2.5,2001:db8:0:40::5"
		  " mtu_offered=1434/1418 mtu_sent=1380/1380 dtls=relayed bytes_up=123"
		  " bytes_down=4567 session_id=01fe\n"
		  "session\tclient=[2001:db8:1::102]:50000 group=tlsonly address=2001:db8:0:80::9"
		  " mtu_offered=1472/0 mtu_sent=1380/0 dtls=blocked bytes_up=0 bytes_down=0"
		  " app_id=a5a5a5a5\n"
		  "session\tclient=198.18.1.9:7 group=- address=- mtu_offered=0/0 mtu_sent=0/0"
		  " dtls=none bytes_up=0 bytes_down=0 session_id=-\n");
	strbuf_free(&out);
	session_table_free(t);
}

/* The packet path in a shared pool: the tunnel given an inner address names
 * its group; a reassigned address belongs to the newest tunnel. */
static void test_by_addr(void)
{
	struct session_table *t = session_table_new(8);
	struct session_info a = mk("relay", 0x21, 32, "198.18.1.2", 1);
	struct session_info b = mk("block", 0x22, 32, "198.18.1.2", 2);
	uint8_t in4[4] = { 192, 0, 2, 70 }, in6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0xc0, [15] = 5 };
	char name[64] = "";
	int ha, hb;

	memcpy(a.addr4, in4, 4);
	a.has_addr4 = true;
	memcpy(b.addr6, in6, 16);
	b.has_addr6 = true;
	CHECK(!session_group_by_addr(t, AF_INET, in4, name, sizeof(name)));
	CHECK((ha = session_add(t, &a)) >= 0 && (hb = session_add(t, &b)) >= 0);
	CHECK(session_group_by_addr(t, AF_INET, in4, name, sizeof(name)));
	CHECK_STR(name, "relay");
	CHECK(session_group_by_addr(t, AF_INET6, in6, name, sizeof(name)));
	CHECK_STR(name, "block");
	/* The IPv4 bytes are no IPv6 address, and b has no IPv4 one. */
	in6[15] = 6;
	CHECK(!session_group_by_addr(t, AF_INET6, in6, name, sizeof(name)));
	/* The headend gave the address to another tunnel: the newest wins,
	 * and the older one's removal leaves it. */
	memcpy(b.addr4, in4, 4);
	b.has_addr4 = true;
	b.id[0] = 0x23;
	CHECK((hb = session_add(t, &b)) >= 0);
	CHECK(session_group_by_addr(t, AF_INET, in4, name, sizeof(name)));
	CHECK_STR(name, "block");
	session_remove(t, ha);
	CHECK(session_group_by_addr(t, AF_INET, in4, name, sizeof(name)));
	CHECK_STR(name, "block");
	session_remove(t, hb);
	CHECK(!session_group_by_addr(t, AF_INET, in4, name, sizeof(name)));
	session_table_free(t);
}

/* 5,000 tunnels: every lookup the packet path makes finds its own entry
 * (each is a hash chain now, no table scan), and byte counts go in batches. */
static void test_indexed(void)
{
	enum { N = 5000 };
	struct session_table *t = session_table_new(N);
	struct session_bytes *bytes = calloc(N, sizeof(*bytes));
	struct strbuf out = { 0 };
	char name[64], want[64], addr[32];
	int ok_client = 0, ok_addr = 0, ok_id = 0;

	if (!t || !bytes)
		return;
	for (int i = 0; i < N; i++) {
		struct session_info s;

		snprintf(name, sizeof(name), "g%d", i % 7);
		snprintf(addr, sizeof(addr), "198.18.%d.%d", i / 250, i % 250 + 1);
		s = mk(name, 0, 32, addr, (uint16_t)(1000 + i));
		memcpy(s.id, &i, sizeof(i));
		s.addr4[0] = 10;
		s.addr4[1] = (uint8_t)(i >> 16);
		s.addr4[2] = (uint8_t)(i >> 8);
		s.addr4[3] = (uint8_t)i;
		s.has_addr4 = true;
		bytes[i].handle = session_add(t, &s);
		bytes[i].up = (uint64_t)i;
		bytes[i].down = 2 * (uint64_t)i;
	}
	CHECK_INT(session_count(t), N);
	for (int i = 0; i < N; i++) {
		uint8_t id[32] = { 0 }, c4[4], i4[4] = { 10, (uint8_t)(i >> 16), (uint8_t)(i >> 8), (uint8_t)i };

		snprintf(want, sizeof(want), "g%d", i % 7);
		snprintf(addr, sizeof(addr), "198.18.%d.%d", i / 250, i % 250 + 1);
		inet_pton(AF_INET, addr, c4);
		memcpy(id, &i, sizeof(i));
		ok_client += session_group_by_client(t, AF_INET, c4, name, sizeof(name)) && !strcmp(name, want);
		ok_addr += session_group_by_addr(t, AF_INET, i4, name, sizeof(name)) && !strcmp(name, want);
		ok_id += session_group_by_id(t, id, 32, name, sizeof(name)) && !strcmp(name, want);
	}
	CHECK_INT(ok_client, N);
	CHECK_INT(ok_addr, N);
	CHECK_INT(ok_id, N);
	session_set_bytes_many(t, bytes, N);
	session_format(t, &out);
	CHECK(out.buf && strstr(out.buf, "bytes_up=4999 bytes_down=9998"));
	for (int i = 0; i < N; i += 2)
		session_remove(t, bytes[i].handle);
	CHECK_INT(session_count(t), N / 2);
	{
		uint8_t i4[4] = { 10, 0, 0, 2 }, i5[4] = { 10, 0, 0, 3 };

		CHECK(!session_group_by_addr(t, AF_INET, i4, name, sizeof(name)));
		CHECK(session_group_by_addr(t, AF_INET, i5, name, sizeof(name)));
	}
	strbuf_free(&out);
	free(bytes);
	session_table_free(t);
}

int main(void)
{
	test_lookup();
	test_by_addr();
	test_indexed();
	test_by_client();
	test_same_id();
	test_bounds();
	test_many();
	test_format();
	return t_done("test_session");
}
