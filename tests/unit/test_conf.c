/* conf/: diagnostics, addresses and prefixes, the INI reader, mtugate.conf. */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "conf/addr.h"
#include "conf/conf.h"
#include "conf/diag.h"
#include "conf/ini.h"
#include "tests/unit/t.h"

static char tmpdir[] = "/tmp/test_conf.XXXXXX";

/* A file with this text in the scratch folder; returns its path (static). */
static const char *write_file(const char *name, const char *text)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
	f = fopen(path, "w");
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_diag(void)
{
	struct diag d = { 0 };

	diag_add(&d, "a.conf", 3, "bad %s", "thing");
	diag_add(&d, "a.conf", 0, "whole file");
	for (int i = 0; i < 20; i++)
		diag_add(&d, "b", i + 1, "n%d", i);
	CHECK_INT(diag_count(&d), 22);
	CHECK_STR(d.msgs[0], "a.conf:3: bad thing");
	CHECK_STR(d.msgs[1], "a.conf: whole file");
	CHECK_STR(d.msgs[21], "b:20: n19");
	diag_free(&d);
	CHECK_INT(diag_count(&d), 0);
}

static void test_addr(void)
{
	struct ipaddr a;
	struct prefix p;
	char buf[64];
	const uint8_t v4[4] = { 192, 0, 2, 200 }, v4out[4] = { 192, 0, 3, 0 };
	uint8_t v6[16];

	CHECK_INT(addr_parse(&a, "192.0.2.1"), 0);
	CHECK_INT(a.family, AF_INET);
	CHECK_MEM(a.addr, "\xc0\x00\x02\x01", 4);
	CHECK_STR(addr_format(&a, buf, sizeof(buf)), "192.0.2.1");
	CHECK_INT(addr_parse(&a, "2001:db8::1"), 0);
	CHECK_INT(a.family, AF_INET6);
	CHECK_STR(addr_format(&a, buf, sizeof(buf)), "2001:db8::1");
	CHECK_INT(addr_parse(&a, "192.0.2.256"), -EINVAL);
	CHECK_INT(addr_parse(&a, " 192.0.2.1"), -EINVAL);
	CHECK_INT(addr_parse(&a, ""), -EINVAL);

	CHECK_INT(prefix_parse(&p, "192.0.2.128/25"), 0);
	CHECK_INT(p.len, 25);
	CHECK_STR(prefix_format(&p, buf, sizeof(buf)), "192.0.2.128/25");
	CHECK(prefix_contains(&p, AF_INET, v4));
	CHECK(!prefix_contains(&p, AF_INET, v4out));
	CHECK(!prefix_contains(&p, AF_INET6, v4));
	CHECK_INT(prefix_parse(&p, "192.0.2.1"), 0);
	CHECK_INT(p.len, 32);
	CHECK_INT(prefix_parse(&p, "2001:db8::"), 0);
	CHECK_INT(p.len, 128);
	CHECK_INT(prefix_parse(&p, "2001:db8:0:80::/57"), 0);
	CHECK_STR(prefix_format(&p, buf, sizeof(buf)), "2001:db8:0:80::/57");
	inet_pton(AF_INET6, "2001:db8:0:ff::1", v6);
	CHECK(prefix_contains(&p, AF_INET6, v6));
	inet_pton(AF_INET6, "2001:db8:0:100::1", v6);
	CHECK(!prefix_contains(&p, AF_INET6, v6));
	CHECK_INT(prefix_parse(&p, "0.0.0.0/0"), 0);
	CHECK(prefix_contains(&p, AF_INET, v4));
	/* Host bits, lengths out of range, garbage. */
	CHECK_INT(prefix_parse(&p, "192.0.2.1/24"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "2001:db8::1/64"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "192.0.2.0/33"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "2001:db8::/129"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "192.0.2.0/"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "192.0.2.0/-1"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "192.0.2.0/024"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "/24"), -EINVAL);
	CHECK_INT(prefix_parse(&p, "192.0.2.0/24/1"), -EINVAL);
}

static void test_ini_values(void)
{
	struct diag d = { 0 };
	int line;
	const char *path = write_file("v.ini",
		"; comment\n"
		"# comment\n"
		"[Sec]\n"
		"A = 1 ; trailing\n"
		"quoted = \"x ; y\" ; z\n"
		"single = 'q # r'\n"
		"empty =\n"
		"emptyq = \"\"\n"
		"hash = abc#def\n"
		"cont = a \\\n"
		"  b\n"
		"  spaced   =   v w   \n"
		"[other]\n"
		"a = 2\n");
	struct ini *ini = ini_open(path, &d);

	CHECK(ini != NULL);
	CHECK_INT(diag_count(&d), 0);
	/* Values as iniparser stores them; keys and sections lowercased. */
	CHECK_STR(ini_get(ini, "sec", "a", &line), "1");
	CHECK_INT(line, 4);
	CHECK_STR(ini_get(ini, "sec", "quoted", NULL), "x ; y");
	CHECK_STR(ini_get(ini, "sec", "single", NULL), "q # r");
	CHECK_STR(ini_get(ini, "sec", "empty", NULL), "");
	CHECK_STR(ini_get(ini, "sec", "emptyq", NULL), "");
	CHECK_STR(ini_get(ini, "sec", "hash", NULL), "abc");
	CHECK_STR(ini_get(ini, "sec", "cont", &line), "a   b");
	CHECK_INT(line, 10);
	CHECK_STR(ini_get(ini, "sec", "spaced", &line), "v w");
	CHECK_INT(line, 12);
	CHECK_STR(ini_get(ini, "other", "a", NULL), "2");
	CHECK(ini_get(ini, "sec", "missing", &line) == NULL);
	CHECK_INT(line, 0);
	CHECK_INT(ini_section_line(ini, "other"), 13);
	CHECK_INT(ini_section_line(ini, "nope"), 0);
	CHECK_INT(ini_count(ini), 9);
	CHECK_STR(ini_key_at(ini, 8)->section, "other");
	CHECK(ini_key_at(ini, 9) == NULL);
	ini_close(ini);
	diag_free(&d);
}

/* With a syntax error iniparser refuses the file; our scan still gives the
 * other lines' values, the same ones, so their errors can be reported too. */
static void test_ini_broken(void)
{
	struct diag d = { 0 };
	const char *path = write_file("b.ini",
		"[s]\n"
		"quoted = \"x ; y\" ; z\n"
		"no equals here\n"
		"hash = abc#def\n"
		"k = 1\n"
		"K = 2\n"
		"[s]\n"
		"[a:b]\n"
		"c:d = 1\n"
		"[t]\n"
		"x:y = 1\n");
	struct ini *ini = ini_open(path, &d);
	char want[256];

	CHECK(ini != NULL);
	CHECK_STR(ini_get(ini, "s", "quoted", NULL), "x ; y");
	CHECK_STR(ini_get(ini, "s", "hash", NULL), "abc");
	CHECK_STR(ini_get(ini, "s", "k", NULL), "1");
	CHECK_INT(diag_count(&d), 5);
	snprintf(want, sizeof(want), "%s:3: syntax error: expected '[section]' or 'key = value'", path);
	CHECK_STR(d.msgs[0], want);
	snprintf(want, sizeof(want), "%s:6: duplicate key 'k' in [s] (first at line 5)", path);
	CHECK_STR(d.msgs[1], want);
	snprintf(want, sizeof(want), "%s:7: duplicate section [s] (first at line 1)", path);
	CHECK_STR(d.msgs[2], want);
	snprintf(want, sizeof(want), "%s:8: ':' is not allowed in a section name ('a:b')", path);
	CHECK_STR(d.msgs[3], want);
	/* Keys under a rejected section are not reported again (line 9). */
	snprintf(want, sizeof(want), "%s:11: ':' is not allowed in a key name ('x:y')", path);
	CHECK_STR(d.msgs[4], want);
	ini_close(ini);
	diag_free(&d);

	CHECK(ini_open("/nonexistent/x.ini", &d) == NULL);
	CHECK_STR(d.msgs[0], "/nonexistent/x.ini: cannot open: No such file or directory");
	diag_free(&d);
}

static void test_ini_schema(void)
{
	static const char *const a[] = { "alpha", "beta", "timeout", NULL };
	static const char *const b[] = { "gamma", "listen_port", NULL };
	static const struct ini_schema schema[] = { { "one", a }, { "two", b } };
	struct diag d = { 0 };
	const char *path = write_file("s.ini",
		"[one]\nalpha = 1\nbta = 2\ngamma = 3\nlisten_prt = 4\nzzz = 5\nab = 6\n"
		"[tow]\nq = 1\n[three]\n");
	struct ini *ini = ini_open(path, &d);
	char want[256];

	CHECK_INT(ini_check_schema(ini, schema, 2, &d), 7);
	snprintf(want, sizeof(want), "%s:3: unknown key 'bta' in [one]; did you mean 'beta'?", path);
	CHECK_STR(d.msgs[0], want);
	snprintf(want, sizeof(want), "%s:4: unknown key 'gamma' in [one]; it belongs in [two]", path);
	CHECK_STR(d.msgs[1], want);
	snprintf(want, sizeof(want),
		 "%s:5: unknown key 'listen_prt' in [one]; did you mean 'listen_port' in [two]?", path);
	CHECK_STR(d.msgs[2], want);
	snprintf(want, sizeof(want), "%s:6: unknown key 'zzz' in [one]", path);
	CHECK_STR(d.msgs[3], want);
	/* Two letters are too short for a two-edit guess. */
	snprintf(want, sizeof(want), "%s:7: unknown key 'ab' in [one]", path);
	CHECK_STR(d.msgs[4], want);
	snprintf(want, sizeof(want), "%s:8: unknown section [tow]; did you mean [two]?", path);
	CHECK_STR(d.msgs[5], want);
	snprintf(want, sizeof(want), "%s:10: unknown section [three]; expected [one] or [two]", path);
	CHECK_STR(d.msgs[6], want);
	ini_close(ini);
	diag_free(&d);
}

static void test_ini_helpers(void)
{
	struct diag from = { 0 }, d = { 0 };
	const char *cur;
	char buf[16];
	unsigned u = 7;
	bool b = false;

	CHECK_INT(ini_distance("fail_open", "fail_open", 2), 0);
	CHECK_INT(ini_distance("fail_opn", "fail_open", 2), 1);
	CHECK_INT(ini_distance("mut", "mtu", 2), 1);	/* a transposition is one edit */
	CHECK_INT(ini_distance("mss", "mtu", 2), 2);
	CHECK_INT(ini_distance("abc", "xyzabc", 2), 3);	/* capped at cap + 1 */
	CHECK_INT(ini_distance("", "ab", 5), 2);

	CHECK_INT(ini_parse_uint("0", 0, 10, &u), 0);
	CHECK_INT(u, 0);
	CHECK_INT(ini_parse_uint("65535", 1, 65535, &u), 0);
	CHECK_INT(u, 65535);
	CHECK_INT(ini_parse_uint("65536", 1, 65535, &u), -ERANGE);
	CHECK_INT(ini_parse_uint("99999999999999999999", 1, 65535, &u), -ERANGE);
	CHECK_INT(ini_parse_uint("", 0, 1, &u), -EINVAL);
	CHECK_INT(ini_parse_uint("-1", 0, 1, &u), -EINVAL);
	CHECK_INT(ini_parse_uint("1 ", 0, 1, &u), -EINVAL);
	CHECK_INT(ini_parse_uint("0x10", 0, 100, &u), -EINVAL);
	CHECK_INT(u, 65535);
	CHECK_INT(ini_parse_bool("YES", &b), 0);
	CHECK(b);
	CHECK_INT(ini_parse_bool("off", &b), 0);
	CHECK(!b);
	CHECK_INT(ini_parse_bool("1", &b), 0);
	CHECK(b);
	CHECK_INT(ini_parse_bool("y", &b), -EINVAL);
	CHECK_INT(ini_parse_choice("Block", (const char *const[]){ "relay", "block", NULL }), 1);
	CHECK_INT(ini_parse_choice("blocks", (const char *const[]){ "relay", "block", NULL }), -1);

	cur = " a ,b,, c";
	CHECK_INT(ini_list_next(&cur, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "a");
	CHECK_INT(ini_list_next(&cur, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "b");
	CHECK_INT(ini_list_next(&cur, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "");
	CHECK_INT(ini_list_next(&cur, buf, sizeof(buf)), 1);
	CHECK_STR(buf, "c");
	CHECK_INT(ini_list_next(&cur, buf, sizeof(buf)), 0);
	cur = "0123456789abcdefXYZ";
	CHECK_INT(ini_list_next(&cur, buf, sizeof(buf)), -ENAMETOOLONG);

	/* Errors found by different passes come out in line order. */
	diag_add(&from, "f:x", 9, "nine");
	diag_add(&from, "f:x", 0, "whole");
	diag_add(&from, "f:x", 2, "two");
	diag_add(&from, "f:x", 9, "nine again");
	diag_add(&from, "f:x", 10, "ten");
	ini_diag_move(&d, &from, "f:x");
	CHECK_INT(diag_count(&from), 0);
	CHECK_INT(diag_count(&d), 5);
	CHECK_STR(d.msgs[0], "f:x:2: two");
	CHECK_STR(d.msgs[1], "f:x:9: nine");
	CHECK_STR(d.msgs[2], "f:x:9: nine again");
	CHECK_STR(d.msgs[3], "f:x:10: ten");
	CHECK_STR(d.msgs[4], "f:x: whole");
	diag_free(&d);
}

static void test_conf_defaults(void)
{
	struct conf c;
	struct diag d = { 0 };

	conf_defaults(&c);
	CHECK_STR(c.daemon.user, "mtugate");
	CHECK_STR(c.daemon.control_socket, "/run/mtugate/mtugate.sock");
	CHECK_STR(c.daemon.groups_dir, "/etc/mtugate/groups.d");
	CHECK_INT(c.daemon.log_level, LOG_LEVEL_INFO);
	CHECK_INT(c.daemon.log_users, LOG_USERS_YES);
	/* Clear of queue 0, which Suricata and other IPS engines take by default. */
	CHECK_INT(c.queues.mss.first, 40000);
	CHECK_INT(c.queues.mss.last, 40000);
	CHECK_INT(c.queues.pmtu.first, 40002);
	CHECK_INT(c.queues.dtls.first, 40003);
	CHECK_INT(c.queues.dtls.last, 40003);
	CHECK_INT(c.queues.max_len, 8192);
	CHECK(c.queues.fail_open);
	CHECK_INT(c.headend.naddr, 0);
	CHECK_INT(c.headend.tls_port, 443);
	CHECK_INT(c.headend.advertised_dtls_port, 443);
	CHECK(!c.proxy.enable);
	CHECK_INT(c.proxy.listen_port, 8443);
	CHECK_STR(c.proxy.upstream_ca, "/etc/ssl/certs/ca-certificates.crt");
	CHECK_INT(c.proxy.max_sessions, 10000);
	CHECK_INT(c.proxy.handshake_timeout, 30);
	CHECK_INT(c.proxy.idle_timeout, 300);
	CHECK_INT(c.proxy.route_table, 100);
	CHECK_INT(c.proxy.workers, 0);
	CHECK(!c.proxy.insecure_upstream);
	CHECK_STR(c.proxy.upstream_name, "");

	/* The shipped example says exactly the defaults (plus one headend). */
	CHECK_INT(conf_load(&c, "conf/mtugate.conf", &d), 0);
	CHECK_STR(c.path, "conf/mtugate.conf");
	CHECK_INT(c.headend.naddr, 1);
	c.headend.naddr = 0;
	memset(&c.headend.addr[0], 0, sizeof(c.headend.addr[0]));
	memset(c.path, 0, sizeof(c.path));
	{
		struct conf def;

		conf_defaults(&def);
		CHECK_MEM(&c, &def, sizeof(c));
	}
	diag_free(&d);
}

static void test_conf_full(void)
{
	struct conf c;
	struct diag d = { 0 };
	char buf[64];

	CHECK_INT(conf_load(&c, "tests/conf/daemon/good-full.conf", &d), 0);
	CHECK_INT(diag_count(&d), 0);
	CHECK_STR(c.daemon.user, "nobody");
	CHECK_STR(c.daemon.control_socket, "/run/mtugate-test/ctl.sock");
	/* Relative: from the config file's folder. */
	CHECK_STR(c.daemon.groups_dir, "tests/conf/daemon/groups");
	CHECK_INT(c.daemon.log_level, LOG_LEVEL_DEBUG);
	CHECK_INT(c.daemon.log_users, LOG_USERS_HASH);
	CHECK_INT(c.queues.mss.first, 0);
	CHECK_INT(c.queues.mss.last, 1);
	CHECK_INT(c.queues.max_len, 1048576);
	CHECK(!c.queues.fail_open);
	CHECK_INT(c.queues.mark_mask, 0x7f0000);
	CHECK_INT(c.marks.decided, 0x10000);
	CHECK_INT(c.marks.proxy, 0x100000);
	CHECK_INT(c.marks.done, 0x200000);
	CHECK_INT(c.marks.tag, 0x400000);
	CHECK_INT(c.headend.naddr, 2);
	CHECK_STR(addr_format(&c.headend.addr[0], buf, sizeof(buf)), "198.18.2.2");
	CHECK_STR(addr_format(&c.headend.addr[1], buf, sizeof(buf)), "2001:db8::2");
	CHECK_INT(c.headend.dtls_port, 444);
	CHECK_INT(c.headend.advertised_dtls_port, 443);
	CHECK(c.proxy.enable);
	CHECK_STR(c.proxy.upstream_name, "vpn.example.net");
	CHECK_INT(c.proxy.max_sessions, 1);
	CHECK_INT(c.proxy.handshake_timeout, 3600);
	CHECK_INT(c.proxy.idle_timeout, 86400);
	CHECK_INT(c.proxy.route_table, 4242);
	CHECK_INT(c.proxy.workers, 64);

	CHECK_INT(conf_load(&c, "tests/conf/daemon/good-quirks.conf", &d), 0);
	CHECK_STR(c.daemon.user, "");
	CHECK_INT(c.daemon.log_level, LOG_LEVEL_WARNING);
	CHECK_STR(c.daemon.groups_dir, "/srv/mtugate groups");
	CHECK_INT(c.queues.mss.first, 7);
	CHECK_INT(c.queues.pmtu.first, -1);
	CHECK_INT(c.queues.dtls.first, -1);
	CHECK_INT(diag_count(&d), 0);
	diag_free(&d);
}

/* [queues] mark_mask: hex or decimal; empty or 0 is the default layout. */
static void test_conf_mark_mask(void)
{
	static const struct {
		const char *v;
		uint32_t mask, done;	/* done 0: refused */
	} cases[] = {
		{ "0x7f0000", 0x7f0000, 0x200000 },
		{ "0X7F0000", 0x7f0000, 0x200000 },
		{ "8323072", 0x7f0000, 0x200000 },
		{ "0xfe000000", 0xfe000000u, 0x40000000u },
		{ "", 0, 0x200 },
		{ "0", 0, 0x200 },
		{ "0x0", 0, 0x200 },
		{ "0x", 0, 0 },
		{ "0x1ffffffff", 0, 0 },
		{ "4294967296", 0, 0 },
		{ "12ab", 0, 0 },
		{ "-1", 0, 0 },
		{ "0x3f00", 0, 0 },
		{ "0x7f0000 0x1", 0, 0 },
	};
	char text[128];

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct conf c;
		struct diag d = { 0 };
		const char *path;
		int r;

		snprintf(text, sizeof(text), "[queues]\nmark_mask = %s\n[headend]\naddress = 198.18.2.2\n",
			 cases[i].v);
		path = write_file("m.conf", text);
		r = conf_load(&c, path, &d);
		if (cases[i].done) {
			CHECK_INT(r, 0);
			CHECK_INT(c.queues.mark_mask, cases[i].mask);
			CHECK_INT(c.marks.done, cases[i].done);
		} else {
			CHECK_INT(r, -1);
			CHECK_INT(diag_count(&d), 1);
			CHECK(d.n && strstr(d.msgs[0], ":2: invalid mark_mask '") != NULL);
			/* Refused: the default layout, as if the line were not there. */
			CHECK_INT(c.marks.done, 0x200);
		}
		diag_free(&d);
	}
}

/* Each [proxy] key, changed alone, makes the sections differ; the same text
 * loaded twice does not. */
static void test_conf_proxy_same(void)
{
	static const char *const keys[] = {
		"enable = yes", "listen_port = 9443", "certificate = /c", "private_key = /k",
		"upstream_ca = /ca", "upstream_name = vpn.example", "insecure_upstream = yes",
		"upstream_resume = no", "max_sessions = 7", "handshake_timeout = 3",
		"idle_timeout = 99", "route_table = 4242",
	};
	const char *base = "[headend]\naddress = 198.18.2.2\n[proxy]\n";
	struct conf a, b;
	struct diag d = { 0 };
	char text[256];

	CHECK_INT(conf_load(&a, write_file("p0.conf", base), &d), 0);
	for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		snprintf(text, sizeof(text), "%s%s\n", base, keys[i]);
		CHECK_INT(conf_load(&b, write_file("p1.conf", text), &d), 0);
		CHECK_INT(conf_proxy_same(&a, &b), false);
		CHECK_INT(conf_proxy_same(&b, &b), true);
		struct conf again;
		CHECK_INT(conf_load(&again, write_file("p2.conf", text), &d), 0);
		CHECK_INT(conf_proxy_same(&b, &again), true);
	}
	/* Other sections do not count. */
	snprintf(text, sizeof(text), "[queues]\nmax_len = 99\n%s", base);
	CHECK_INT(conf_load(&b, write_file("p1.conf", text), &d), 0);
	CHECK_INT(conf_proxy_same(&a, &b), true);
	CHECK_INT(diag_count(&d), 0);
	diag_free(&d);
}

static int put_bytes(const char *path, const void *b, size_t n)
{
	FILE *f = fopen(path, "w");
	bool ok = f && fwrite(b, 1, n, f) == n;

	return f && fclose(f) == 0 && ok ? 0 : -1;
}

/* [proxy] ticket_key_file: empty is none; a missing, short or too long file
 * is an error at its line; with the proxy off nothing is read. */
static void test_conf_ticket_key(void)
{
	static const char *const base = "[headend]\naddress = 198.18.2.2\n[proxy]\nenable = yes\n";
	char text[512], keys[160], kp[256];
	struct conf c;
	struct diag d = { 0 };

	memset(keys, 'k', sizeof(keys));
	keys[80] = 'j';		/* another name */
	snprintf(text, sizeof(text), "%sticket_key_file =\n", base);
	CHECK_INT(conf_load(&c, write_file("t0.conf", text), &d), 0);
	CHECK_STR(c.proxy.ticket_key_file, "");

	snprintf(kp, sizeof(kp), "%s", write_file("ticket.key", ""));
	snprintf(text, sizeof(text), "%sticket_key_file = %s\n", base, kp);
	CHECK_INT(conf_load(&c, write_file("t1.conf", text), &d), -1);
	CHECK(d.n == 1 && strstr(d.msgs[0], "t1.conf:5: invalid ticket_key_file ") &&
	      strstr(d.msgs[0], "empty"));
	diag_free(&d);

	CHECK(put_bytes(kp, keys, 100) == 0);
	CHECK_INT(conf_load(&c, write_file("t1.conf", text), &d), -1);
	CHECK(d.n == 1 && strstr(d.msgs[0], ":5: invalid ticket_key_file ") &&
	      strstr(d.msgs[0], "100 bytes"));
	diag_free(&d);
	CHECK(put_bytes(kp, keys, 160) == 0);
	CHECK_INT(conf_load(&c, write_file("t1.conf", text), &d), 0);
	CHECK_STR(c.proxy.ticket_key_file, kp);
	/* Not part of what only a restart changes: a reload re-reads it. */
	{
		struct conf none;

		snprintf(text, sizeof(text), "%s", base);
		CHECK_INT(conf_load(&none, write_file("t2.conf", text), &d), 0);
		CHECK(conf_proxy_same(&c, &none));
	}
	snprintf(text, sizeof(text), "%sticket_key_file = %s.missing\n", base, kp);
	CHECK_INT(conf_load(&c, write_file("t3.conf", text), &d), -1);
	CHECK(d.n == 1 && strstr(d.msgs[0], "t3.conf:5: invalid ticket_key_file ") &&
	      strstr(d.msgs[0], "No such file"));
	diag_free(&d);
	/* The proxy off: the key is kept, the file not read. */
	snprintf(text, sizeof(text), "[headend]\naddress = 198.18.2.2\n[proxy]\n"
		 "ticket_key_file = %s.missing\n", kp);
	CHECK_INT(conf_load(&c, write_file("t4.conf", text), &d), 0);
	diag_free(&d);
}

/* A config with errors still names its group folder, unless that is what is wrong. */
static void test_conf_groups_dir_on_error(void)
{
	struct conf c;
	struct diag d = { 0 };

	CHECK_INT(conf_load(&c, write_file("g1.conf", "[daemon]\ngroups_dir = /srv/g\n[queues]\n"
					   "max_len = 0\n[headend]\naddress = 198.18.2.2\n"), &d), -1);
	CHECK_STR(c.daemon.groups_dir, "/srv/g");
	CHECK_INT(conf_load(&c, write_file("g2.conf", "[daemon]\ngroups_dir =\n[headend]\n"
					   "address = 198.18.2.2\n"), &d), -1);
	CHECK_STR(c.daemon.groups_dir, "");
	CHECK_INT(conf_load(&c, write_file("g3.conf", "[daemon\n"), &d), -1);
	CHECK_STR(c.daemon.groups_dir, "");
	CHECK(diag_count(&d) >= 3);	/* one per file at least */
	diag_free(&d);
}

static void test_conf_errors(void)
{
	struct conf c;
	struct diag d = { 0 };
	char want[256], cwd[4096];
	const char *path;

	CHECK_INT(conf_load(&c, "/nonexistent/mtugate.conf", &d), -1);
	CHECK_INT(diag_count(&d), 1);
	CHECK_STR(d.msgs[0], "/nonexistent/mtugate.conf: cannot open: No such file or directory");
	diag_free(&d);

	/* A bare file name: groups_dir stays relative to the working folder. */
	CHECK(getcwd(cwd, sizeof(cwd)) != NULL);
	CHECK_INT(chdir(tmpdir), 0);
	write_file("bare.conf", "[daemon]\ngroups_dir = g\n[queues]\ndtls = off\n");
	CHECK_INT(conf_load(&c, "bare.conf", &d), 0);
	CHECK_STR(c.daemon.groups_dir, "g");
	CHECK_INT(chdir(cwd), 0);

	path = write_file("q.conf", "[queues]\nmss = 40003\n[headend]\naddress = 192.0.2.1\n");
	CHECK_INT(conf_load(&c, path, &d), -1);
	snprintf(want, sizeof(want),
		 "%s:2: queue mss 40003 overlaps queue dtls 40003 (the default): each queue has one job", path);
	CHECK_STR(d.msgs[0], want);
	diag_free(&d);

	path = write_file("r.conf", "[queues]\nmss = 0-63\npmtu = 64-127\ndtls = 128-192\n"
				    "[headend]\naddress = 192.0.2.1\n");
	CHECK_INT(conf_load(&c, path, &d), -1);
	CHECK_INT(diag_count(&d), 1);
	snprintf(want, sizeof(want),
		 "%s:4: invalid dtls '128-192': at most 64 queues in a range (one thread each)", path);
	CHECK_STR(d.msgs[0], want);
	diag_free(&d);
}

/* Upgrades: the old default key path is kept only while the new one is missing. */
static void test_conf_key_compat(void)
{
	struct conf c;
	char old[300], missing[300];

	snprintf(old, sizeof(old), "%s", write_file("old.key", "k"));
	snprintf(missing, sizeof(missing), "%s/nowhere/new.key", tmpdir);
	conf_defaults(&c);
	snprintf(c.proxy.private_key, sizeof(c.proxy.private_key), "%s", missing);
	CHECK(conf_key_compat(&c, old));
	CHECK_STR(c.proxy.private_key, old);
	/* The new place exists: it wins. */
	snprintf(c.proxy.private_key, sizeof(c.proxy.private_key), "%s", write_file("new.key", "k"));
	CHECK(!conf_key_compat(&c, old));
	CHECK(strstr(c.proxy.private_key, "new.key") != NULL);
	/* Neither exists: the new default stays, so the error names it. */
	snprintf(c.proxy.private_key, sizeof(c.proxy.private_key), "%s", missing);
	CHECK(!conf_key_compat(&c, missing));
	CHECK_STR(c.proxy.private_key, missing);
}

int main(void)
{
	CHECK(mkdtemp(tmpdir) != NULL);
	test_diag();
	test_addr();
	test_ini_values();
	test_ini_broken();
	test_ini_schema();
	test_ini_helpers();
	test_conf_defaults();
	test_conf_full();
	test_conf_mark_mask();
	test_conf_proxy_same();
	test_conf_ticket_key();
	test_conf_groups_dir_on_error();
	test_conf_errors();
	test_conf_key_compat();
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
		CHECK_INT(system(cmd), 0);
	}
	return t_done("test_conf");
}
