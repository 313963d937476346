/* The session table: lookups by DTLS id, bounds, reuse of slots, and the
 * exact "sessions" lines the control socket returns. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/sessview.h"
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
	a.dtls = SESSION_DTLS_OFFERED;
	snprintf(a.user, sizeof(a.user), "alice");
	a.since = 1700000000;
	a.reconnects = 2;
	/* A name with a blank, '=' and '%' and a byte past ASCII stays one value. */
	snprintf(b.user, sizeof(b.user), "b ob=%%\xc3\xa9");
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
		  "session\tuser=alice group=relay client=198.18.1.2:40000"
		  " addresses=192.0.2.5,2001:db8:0:40::5 since=1700000000 mtu_offered=1434/1418"
		  " mtu_sent=1380/1380 dtls=offered reconnects=2 bytes_in=123 bytes_out=4567"
		  " session_id=01fe worker=0\n"
		  "session\tuser=b%20ob%3D%25%C3%A9 group=tlsonly client=[2001:db8:1::102]:50000"
		  " addresses=2001:db8:0:80::9 since=0 mtu_offered=1472/0 mtu_sent=1380/0"
		  " dtls=blocked reconnects=0 bytes_in=0 bytes_out=0 app_id=a5a5a5a5 worker=0\n"
		  "session\tuser= group=- client=198.18.1.9:7 addresses=- since=0 mtu_offered=0/0"
		  " mtu_sent=0/0 dtls=none reconnects=0 bytes_in=0 bytes_out=0 session_id=- worker=0\n");
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
	CHECK(out.buf && strstr(out.buf, "bytes_in=4999 bytes_out=9998"));
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

/* The hello reached the DTLS queue before the proxy announced the tunnel
 * (a busy gateway): the headend's answer binds the flow to the client's one
 * session offered DTLS, never to one of several behind a NAT address. */
static void test_dtls_unbound(void)
{
	struct session_table *t = session_table_new(8);
	struct session_info a = mk("relay", 0x51, 32, "198.18.1.2", 40000);
	struct session_info n1 = mk("relay", 0x52, 32, "198.18.1.5", 40001);
	struct session_info n2 = mk("pass", 0x53, 32, "198.18.1.5", 40002);
	struct session_info off = mk("relay", 0x54, 32, "2001:db8:1::6", 40003);
	uint8_t cl4[4] = { 198, 18, 1, 2 }, nat[4] = { 198, 18, 1, 5 }, id[32];
	uint8_t cl6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 6 };
	char name[64] = "";
	struct session_info got;
	int ha;

	a.dtls = n1.dtls = n2.dtls = SESSION_DTLS_OFFERED;
	off.dtls = SESSION_DTLS_NONE;
	CHECK((ha = session_add(t, &a)) >= 0);
	CHECK(session_add(t, &n1) >= 0);
	CHECK(session_add(t, &n2) >= 0);
	CHECK(session_add(t, &off) >= 0);
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50000, name, sizeof(name)), 1);
	CHECK_STR(name, "relay");
	CHECK(session_get(t, ha, &got));
	CHECK_INT(got.dtls, SESSION_DTLS_ESTABLISHED);
	/* Bound now: the same flow again is no news, another port not this session. */
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50000, name, sizeof(name)), 0);
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50001, name, sizeof(name)), -1);
	/* Two sessions offered behind one address: neither is guessed. */
	CHECK_INT(session_dtls_answer(t, AF_INET, nat, 50000, name, sizeof(name)), -1);
	memset(id, 0x53, sizeof(id));
	CHECK(session_dtls_hello(t, id, 32, AF_INET, nat, 50003, name, sizeof(name)));
	name[0] = 0;
	CHECK_INT(session_dtls_answer(t, AF_INET, nat, 50003, name, sizeof(name)), 1);
	CHECK_STR(name, "pass");
	/* ... and now the other one is the address's only unbound offer. */
	CHECK_INT(session_dtls_answer(t, AF_INET, nat, 50004, name, sizeof(name)), 1);
	CHECK_STR(name, "relay");
	/* Not offered DTLS: nothing to establish. */
	CHECK_INT(session_dtls_answer(t, AF_INET6, cl6, 443, name, sizeof(name)), -1);
	session_table_free(t);
}

/* DTLS: the hello names the flow, the headend's answer in that flow makes
 * the session established; one never answered fails after 30 s, once, and
 * an observed one with a larger adapter MTU is predicted to reconnect. */
static void test_dtls_state(void)
{
	struct session_table *t = session_table_new(8);
	struct session_info a = mk("relay", 0x31, 32, "198.18.1.2", 40000);
	struct session_info b = mk("pass", 0x32, 32, "2001:db8:1::2", 40001);
	struct session_info c = mk("pass", 0x33, 32, "198.18.1.3", 40002);
	struct session_event ev[4];
	uint8_t id[32], cl4[4] = { 198, 18, 1, 2 }, cl6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 2 };
	char name[64] = "";
	int hb;

	a.dtls = b.dtls = c.dtls = SESSION_DTLS_OFFERED;
	a.since = b.since = 1000;
	c.since = 1020;
	b.observed = c.observed = true;
	b.sent_mtu = 1367;
	b.sent_dtls_mtu = 1418;
	c.sent_mtu = c.sent_dtls_mtu = 1367;	/* equal MTUs: no reconnect follows */
	memset(b.key, 0x77, SESSION_KEY_LEN);
	snprintf(b.user, sizeof(b.user), "bob");
	CHECK(session_add(t, &a) >= 0);
	CHECK((hb = session_add(t, &b)) >= 0);
	CHECK(session_add(t, &c) >= 0);
	CHECK_INT(session_adapter_mtu(&b), 1418);
	CHECK(session_will_reconnect(&b));
	CHECK(!session_will_reconnect(&c));
	/* An address with no session: nothing answers (test_dtls_unbound: one with). */
	{
		uint8_t other4[4] = { 198, 18, 1, 9 };

		CHECK_INT(session_dtls_answer(t, AF_INET, other4, 50000, name, sizeof(name)), -1);
	}
	memset(id, 0x31, 32);
	CHECK(session_dtls_hello(t, id, 32, AF_INET, cl4, 50000, name, sizeof(name)));
	CHECK_STR(name, "relay");
	CHECK(!session_dtls_hello(t, id, 31, AF_INET, cl4, 50000, name, sizeof(name)));
	/* Another port (the flow is the address and the port), another family. */
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50001, name, sizeof(name)), -1);
	{
		uint8_t other6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0, 1, [15] = 9 };

		CHECK_INT(session_dtls_answer(t, AF_INET6, other6, 50000, name, sizeof(name)), -1);
	}
	name[0] = 0;
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50000, name, sizeof(name)), 1);
	CHECK_STR(name, "relay");
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50000, name, sizeof(name)), 0);
	/* The client's NAT gave it a new port: the new hello moves the flow. */
	CHECK(session_dtls_hello(t, id, 32, AF_INET, cl4, 50002, name, sizeof(name)));
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50000, name, sizeof(name)), -1);
	CHECK_INT(session_dtls_answer(t, AF_INET, cl4, 50002, name, sizeof(name)), 0);
	/* b's hello over IPv6, never answered. */
	memset(id, 0x32, 32);
	CHECK(session_dtls_hello(t, id, 32, AF_INET6, cl6, 443, name, sizeof(name)));
	CHECK_INT(session_sweep(t, 1029, ev, 4), 0);
	CHECK_INT(session_sweep(t, 1030, ev, 4), 1);
	CHECK_STR(ev[0].s.user, "bob");
	CHECK_INT(ev[0].s.dtls, SESSION_DTLS_FAILED);
	CHECK(ev[0].predicted);
	CHECK_INT(session_sweep(t, 1031, ev, 4), 0);	/* failed once */
	CHECK_INT(session_sweep(t, 1050, ev, 4), 1);	/* c: failed, no prediction */
	CHECK(!ev[0].predicted);
	CHECK_STR(ev[0].s.group, "pass");
	/* A late answer still counts. */
	CHECK_INT(session_dtls_answer(t, AF_INET6, cl6, 443, name, sizeof(name)), 1);
	{
		struct session_info got;

		CHECK(session_get(t, hb, &got));
		CHECK_INT(got.dtls, SESSION_DTLS_ESTABLISHED);
		CHECK(!session_get(t, 7, &got));
	}
	/* The prediction: kept by a reconnect of that session within 120 s, once. */
	{
		uint8_t other[SESSION_KEY_LEN], zero[SESSION_KEY_LEN] = { 0 };

		memset(other, 0x78, sizeof(other));
		CHECK(!session_prediction_kept(t, other, 1040));
		CHECK(!session_prediction_kept(t, zero, 1040));
		CHECK(session_prediction_kept(t, b.key, 1150));
		CHECK(!session_prediction_kept(t, b.key, 1150));
	}
	/* Too late: not kept. */
	b.since = 2000;
	b.dtls = SESSION_DTLS_OFFERED;
	b.id[0] = 0x40;
	CHECK(session_add(t, &b) >= 0);
	CHECK_INT(session_sweep(t, 2030, ev, 4), 1);
	CHECK(ev[0].predicted);
	CHECK(!session_prediction_kept(t, b.key, 2151));
	/* Removing a session takes its flow with it: the flow's answer now finds
	 * the address's other session (b again, failed and bound to no flow). */
	session_remove(t, hb);
	CHECK_INT(session_dtls_answer(t, AF_INET6, cl6, 443, name, sizeof(name)), 1);
	CHECK_INT(session_dtls_answer(t, AF_INET6, cl6, 443, name, sizeof(name)), 0);
	{
		const char *names[3] = { "pass", "relay", "none" };
		uint64_t n[3];

		session_count_groups(t, names, 3, n);
		CHECK_INT(n[0], 2);
		CHECK_INT(n[1], 1);
		CHECK_INT(n[2], 0);
	}
	session_table_free(t);
}

/* What mtugatectl makes of the lines: the JSON object with the keys
 * (user null when unseen, absent MTUs null), the table row, and lines it
 * refuses. */
static void test_view(void)
{
	struct session_info a = mk("relay", 0x01, 32, "198.18.1.2", 40000);
	struct session_info b = mk("", 0, 0, "2001:db8:1::2", 443);
	struct strbuf line = { 0 }, out = { 0 };
	struct sessview v;

	snprintf(a.user, sizeof(a.user), "Ren\xc3\xa9" "e \"x\"\\%%");
	inet_pton(AF_INET, "192.0.2.5", a.addr4);
	a.has_addr4 = true;
	inet_pton(AF_INET6, "2001:db8:0:40::5", a.addr6);
	a.has_addr6 = true;
	a.cstp_mtu = 1367;
	a.dtls_mtu = 1418;
	a.sent_mtu = 1367;
	a.sent_dtls_mtu = 1418;
	a.dtls = SESSION_DTLS_ESTABLISHED;
	a.since = 1700000000;
	a.reconnects = 1;
	a.bytes_up = 10;
	a.bytes_down = 20;
	a.worker = 3;
	session_format_one(&a, &line);
	CHECK(line.buf && !strncmp(line.buf, "session\t", 8));
	line.buf[line.len - 1] = 0;	/* the newline */
	CHECK_INT(sessview_parse(line.buf + 8, &v), 0);
	sessview_json(&v, &out);
	CHECK_STR(out.buf, "{\"user\": \"Ren\xc3\xa9" "e \\\"x\\\"\\\\%\", \"group\": \"relay\","
		  " \"client\": \"198.18.1.2:40000\", \"addresses\": [\"192.0.2.5\", \"2001:db8:0:40::5\"],"
		  " \"since\": 1700000000, \"mtu_offered\": {\"cstp\": 1367, \"dtls\": 1418},"
		  " \"mtu_sent\": {\"cstp\": 1367, \"dtls\": 1418}, \"dtls\": \"established\","
		  " \"reconnects\": 1, \"bytes_in\": 10, \"bytes_out\": 20, \"worker\": 3}");
	strbuf_reset(&out);
	{
		struct sessview two[2];

		two[0] = v;
		CHECK_INT(sessview_parse("user=b group=tlsonly client=[2001:db8:1::102]:50000"
					 " addresses=2001:db8:0:80::1234:5678:9abc since=1700003700"
					 " mtu_offered=1380/0 mtu_sent=1380/0 dtls=blocked reconnects=12"
					 " bytes_in=1 bytes_out=123456789", &two[1]), 0);
		sessview_table(two, 2, 1700003725, &out);
	}
	/* Each column as wide as its widest cell; numbers right-aligned. */
	CHECK_STR(out.buf,
		  "USER         GROUP   CLIENT                  ADDRESSES                        UP"
		  " MTU_OFFERED  MTU_SENT DTLS        RECONNECTS BYTES_IN BYTES_OUT\n"
		  "Ren\xc3\xa9" "e?\"x\"\\% relay   198.18.1.2:40000        192.0.2.5,2001:db8:0:40::5"
		  "    1h02m   1367/1418 1367/1418 established          1       10        20\n"
		  "b            tlsonly [2001:db8:1::102]:50000 2001:db8:0:80::1234:5678:9abc"
		  " 0m25s      1380/-    1380/- blocked             12        1 123456789\n");
	strbuf_reset(&out);
	sessview_table(NULL, 0, 0, &out);
	CHECK(out.buf && !strncmp(out.buf, "USER ", 5) && strstr(out.buf, " BYTES_OUT\n") &&
	      !strchr(strchr(out.buf, '\n') + 1, '\n'));

	/* No user, no group, no address, no MTUs; a name that is no UTF-8. */
	strbuf_reset(&line);
	session_format_one(&b, &line);
	line.buf[line.len - 1] = 0;
	CHECK_INT(sessview_parse(line.buf + 8, &v), 0);
	strbuf_reset(&out);
	sessview_json(&v, &out);
	CHECK_STR(out.buf, "{\"user\": null, \"group\": null, \"client\": \"[2001:db8:1::2]:443\","
		  " \"addresses\": [], \"since\": 0, \"mtu_offered\": {\"cstp\": null, \"dtls\": null},"
		  " \"mtu_sent\": {\"cstp\": null, \"dtls\": null}, \"dtls\": \"none\","
		  " \"reconnects\": 0, \"bytes_in\": 0, \"bytes_out\": 0, \"worker\": 0}");
	CHECK_INT(sessview_parse("user=%e9 group=g client=c dtls=none", &v), 0);
	strbuf_reset(&out);
	sessview_json(&v, &out);
	CHECK(out.buf && strstr(out.buf, "\"user\": \"\\u00e9\""));
	CHECK_INT(sessview_parse("user=%zz group=g client=c dtls=none", &v), -1);
	CHECK_INT(sessview_parse("user=%00 group=g client=c dtls=none", &v), -1);
	CHECK_INT(sessview_parse("user=a%4 group=g client=c dtls=none", &v), -1);
	CHECK_INT(sessview_parse("group=g client=c", &v), -1);
	CHECK_INT(sessview_parse("group=g client=c dtls=none mtu_sent=12", &v), -1);
	CHECK_INT(sessview_parse("group=g client=c dtls=none reconnects=-1", &v), -1);
	CHECK_INT(sessview_parse("group=g client=c dtls=none junk", &v), -1);
	CHECK_INT(sessview_parse("group=g client=c dtls=none future=1", &v), 0);
	strbuf_free(&line);
	strbuf_free(&out);
}

int main(void)
{
	test_view();
	test_dtls_state();
	test_dtls_unbound();
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
