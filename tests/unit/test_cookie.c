/* Session cookies: Set-Cookie and Cookie as ocserv, ASA and openconnect
 * write them, the table's binding, expiry and BYE, and the state file's
 * round trip and corrupt content. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "daemon/strbuf.h"
#include "proxy/cookie.h"
#include "proxy/cookiefile.h"
#include "tests/unit/t.h"

static bool set_cookie(const char *v, const char *want)
{
	size_t off, len;

	if (!cookie_from_set_cookie((const uint8_t *)v, strlen(v), &off, &len))
		return want == NULL;
	return want && len == strlen(want) && !memcmp(v + off, want, len);
}

static bool cookie(const char *v, const char *want)
{
	size_t off, len;

	if (!cookie_from_cookie((const uint8_t *)v, strlen(v), &off, &len))
		return want == NULL;
	return want && len == strlen(want) && !memcmp(v + off, want, len);
}

static void test_values(void)
{
	/* ocserv's answer to a successful login */
	CHECK(set_cookie("webvpn=Zm9vYmFy/+x=; Secure", "Zm9vYmFy/+x="));
	/* ASA */
	CHECK(set_cookie("webvpn=5E0B1A@12288@FB06@1C8E6A3BB2A5F; path=/; secure",
			 "5E0B1A@12288@FB06@1C8E6A3BB2A5F"));
	CHECK(set_cookie("  webvpn = tok ;path=/", "tok"));
	/* cleared or deleted: nothing to bind */
	CHECK(set_cookie("webvpn=; expires=Thu, 01 Jan 1970 22:00:00 GMT; path=/; secure", NULL));
	CHECK(set_cookie("webvpn=tok; Max-Age=0", NULL));
	CHECK(set_cookie("webvpn=tok; max-age=-1", NULL));
	CHECK(set_cookie("webvpn=tok; Max-Age=300", "tok"));
	/* other cookies of both headends */
	CHECK(set_cookie("webvpncontext=abc; Secure", NULL));
	CHECK(set_cookie("webvpnc=bu:/&p:t&iu:1/&sh:AB; path=/", NULL));
	CHECK(set_cookie("WEBVPN=tok", NULL));
	CHECK(set_cookie("webvpn", NULL));
	CHECK(set_cookie("webvpn=\"quoted\"", NULL));
	CHECK(set_cookie("", NULL));
	/* what openconnect sends back */
	CHECK(cookie("webvpn=tok", "tok"));
	CHECK(cookie("webvpnc=x; webvpn=tok; webvpnlogin=1", "tok"));
	CHECK(cookie("webvpncontext=x", NULL));
	CHECK(cookie("webvpn=; webvpn=second", "second"));
	CHECK(cookie(";;; webvpn=t2 ;", "t2"));
	CHECK(cookie("", NULL));
}

static bool in_head(bool response, const char *h, const char *want)
{
	size_t off, len;
	bool ok = response ? cookie_in_response((const uint8_t *)h, strlen(h), &off, &len) :
			     cookie_in_request((const uint8_t *)h, strlen(h), &off, &len);

	if (!ok)
		return want == NULL;
	return want && len == strlen(want) && !memcmp(h + off, want, len);
}

static void test_heads(void)
{
	CHECK(in_head(true, "HTTP/1.1 200 OK\r\nSet-Cookie: webvpncontext=ctx; Secure\r\n"
		      "Set-Cookie: webvpn=TOKEN1; Secure\r\nContent-Length: 0\r\n\r\n", "TOKEN1"));
	/* ASA clears the old one first, then sets the new */
	CHECK(in_head(true, "HTTP/1.1 200 OK\r\nSet-Cookie: webvpn=; expires=Thu, 01 Jan 1970 22:00:00 GMT\r\n"
		      "set-cookie: webvpn=NEW; path=/; secure\r\n\r\n", "NEW"));
	CHECK(in_head(true, "HTTP/1.1 200 OK\nSet-Cookie: webvpn=lf\n\n", "lf"));
	CHECK(in_head(true, "HTTP/1.1 200 OK\r\nSet-Cookie: webvpnc=x\r\n\r\n", NULL));
	/* the start line is no header, the body is not read */
	CHECK(in_head(true, "Set-Cookie: webvpn=x\r\n\r\n", NULL));
	CHECK(in_head(true, "HTTP/1.1 200 OK\r\n\r\nSet-Cookie: webvpn=body\r\n", NULL));
	CHECK(in_head(false, "CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nHost: vpn\r\nCookie: webvpn=ABC\r\n"
		      "X-CSTP-Version: 1\r\n\r\n", "ABC"));
	CHECK(in_head(false, "CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nCookie: webvpnc=1\r\n"
		      "Cookie: a=b; webvpn=SECOND\r\n\r\n", "SECOND"));
	CHECK(in_head(false, "CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\nX-Cookie: webvpn=ABC\r\n\r\n", NULL));
	/* a head cut short still yields the lines that are whole */
	CHECK(in_head(false, "CONNECT / HTTP/1.1\r\nCookie: webvpn=ABC\r\nX-CSTP", "ABC"));
	CHECK(in_head(false, "CONNECT / HTTP/1.1\r\nCookie: webvpn=AB", NULL));
	CHECK(cookie_is_logout((const uint8_t *)"GET /+webvpn+/webvpn_logout.html HTTP/1.1\r\n", 44));
	CHECK(cookie_is_logout((const uint8_t *)"POST /logout HTTP/1.1\r\n", 23));
	CHECK(!cookie_is_logout((const uint8_t *)"POST / HTTP/1.1\r\n", 17));
	CHECK(!cookie_is_logout((const uint8_t *)"GET /?next=logout HTTP/1.1\r\n", 28));
	CHECK(!cookie_is_logout((const uint8_t *)"CONNECT /logout HTTP/1.1\r\n", 26));
	CHECK(!cookie_is_logout((const uint8_t *)"GET /logout", 11));
}

static void hash_of(uint8_t h[COOKIE_HASH_LEN], int n)
{
	memset(h, 0, COOKIE_HASH_LEN);
	h[0] = (uint8_t)n;
	h[31] = (uint8_t)(n >> 8);
}

static void test_table(void)
{
	struct cookie_table *t = cookie_table_new(3);
	uint8_t a[32], b[32], c[32], d[32];
	struct cookie_entry *e;
	time_t now = 1000000;

	hash_of(a, 1);
	hash_of(b, 2);
	hash_of(c, 3);
	hash_of(d, 4);
	CHECK(t != NULL);
	if (!t)
		return;
	CHECK(cookie_find(t, a, now) == NULL);
	cookie_bind(t, a, "blocked", now);
	CHECK((e = cookie_find(t, a, now)) && !strcmp(e->group, "blocked") && !e->mtu);
	/* the first CONNECT records its MTUs, a tunnel holds it */
	e->mtu = 1460;
	cookie_hold(e);
	/* a tunnel keeps it past the TTL; closing starts the TTL */
	CHECK(cookie_find(t, a, now + COOKIE_TTL + 5) != NULL);
	cookie_release(t, a, now + COOKIE_TTL + 5);
	CHECK((e = cookie_find(t, a, now + 2 * COOKIE_TTL)) && e->mtu == 1460 && !e->tunnels);
	CHECK(cookie_find(t, a, now + 2 * COOKIE_TTL + 5) == NULL);
	CHECK_INT(cookie_count(t), 0);
	/* a new login with the same token starts afresh */
	cookie_bind(t, a, "blocked", now);
	cookie_find(t, a, now)->mtu = 1400;
	cookie_bind(t, a, "relay", now);
	CHECK((e = cookie_find(t, a, now)) && !strcmp(e->group, "relay") && !e->mtu);
	/* BYE */
	CHECK(cookie_end(t, a));
	CHECK(!cookie_end(t, a));
	CHECK(cookie_find(t, a, now) == NULL);
	/* full: the earliest expiry without tunnels goes */
	cookie_bind(t, a, "g1", now);
	cookie_hold(cookie_find(t, a, now));
	cookie_bind(t, b, "g2", now + 1);
	cookie_bind(t, c, "g3", now + 2);
	cookie_bind(t, d, "g4", now + 3);
	CHECK_INT(cookie_count(t), 3);
	CHECK(cookie_find(t, a, now) != NULL);
	CHECK(cookie_find(t, b, now) == NULL);
	CHECK(cookie_find(t, c, now) && cookie_find(t, d, now));
	CHECK_INT(cookie_expire(t, now + COOKIE_TTL + 3), 2);
	CHECK_INT(cookie_count(t), 1);
	cookie_table_free(t);
}

/* Another worker's changes, applied: the same group, user and first MTUs
 * as where they happened; a tunnel elsewhere counts a reconnect here and
 * holds nothing; an end drops it. */
static void test_apply(void)
{
	struct cookie_table *t = cookie_table_new(4);
	struct cookie_event ev = { .op = COOKIE_OP_BIND };
	struct cookie_entry *e;
	time_t now = 2000000;

	CHECK(t != NULL);
	if (!t)
		return;
	hash_of(ev.hash, 9);
	strcpy(ev.group, "relay");
	strcpy(ev.user, "alice");
	cookie_apply(t, &ev, now);
	CHECK((e = cookie_find(t, ev.hash, now)) && !strcmp(e->group, "relay") &&
	      !strcmp(e->user, "alice") && !e->mtu && !e->tunnels);
	ev.op = COOKIE_OP_TUNNEL;
	ev.mtu = 1380;
	ev.dtls_mtu = 1418;
	cookie_apply(t, &ev, now + 10);
	CHECK((e = cookie_find(t, ev.hash, now)) && e->mtu == 1380 && e->dtls_mtu == 1418 &&
	      !e->reconnects && !e->tunnels && e->expires == now + 10 + COOKIE_TTL);
	/* A second tunnel of the session: a reconnect; its MTUs stay the first's. */
	ev.mtu = 1300;
	cookie_apply(t, &ev, now + 20);
	CHECK((e = cookie_find(t, ev.hash, now)) && e->mtu == 1380 && e->reconnects == 1);
	/* A tunnel in another group (its login went by another way): bound anew. */
	strcpy(ev.group, "tlsonly");
	cookie_apply(t, &ev, now + 30);
	CHECK((e = cookie_find(t, ev.hash, now)) && !strcmp(e->group, "tlsonly") &&
	      e->mtu == 1300 && !e->reconnects);
	/* A tunnel of a session this worker never heard of: known from here. */
	hash_of(ev.hash, 10);
	cookie_apply(t, &ev, now);
	CHECK((e = cookie_find(t, ev.hash, now)) && e->mtu == 1300 && !strcmp(e->user, "alice"));
	ev.op = COOKIE_OP_END;
	cookie_apply(t, &ev, now);
	CHECK(cookie_find(t, ev.hash, now) == NULL);
	CHECK_INT(cookie_count(t), 1);
	cookie_apply(t, &ev, now);	/* unknown: nothing */
	CHECK_INT(cookie_count(t), 1);
	cookie_table_free(t);
}

static void test_file(void)
{
	struct cookie_table *t = cookie_table_new(8), *u = cookie_table_new(8), *v = cookie_table_new(1);
	struct strbuf sb = { 0 };
	uint8_t a[32], b[32], c[32];
	struct cookie_entry *e;
	time_t now = 2000000;
	size_t bad = 9;

	hash_of(a, 0x1ff);
	hash_of(b, 2);
	hash_of(c, 3);
	if (!t || !u || !v)
		return;
	cookie_bind(t, a, "blocked", now - 100);
	e = cookie_find(t, a, now);
	e->mtu = 1460;
	cookie_hold(e);
	cookie_bind(t, b, "relay", now - COOKIE_TTL + 10);
	cookie_find(t, b, now)->dtls_mtu = 1400;
	cookie_format(t, now, &sb);
	CHECK(sb.len > 0 && !strncmp(sb.buf, "mtugate-cookies 1\n", 18));
	CHECK_INT(cookie_parse(u, sb.buf, sb.len, now, &bad), 2);
	CHECK_INT(bad, 0);
	/* a held entry comes back with the TTL from the save, no tunnels */
	CHECK((e = cookie_find(u, a, now)) && !strcmp(e->group, "blocked") && e->mtu == 1460 &&
	      !e->tunnels && e->expires == now + COOKIE_TTL);
	CHECK((e = cookie_find(u, b, now)) && e->dtls_mtu == 1400 && e->expires == now + 10);
	/* loaded later, the one past its expiry stays out */
	cookie_table_free(u);
	u = cookie_table_new(8);
	CHECK_INT(cookie_parse(u, sb.buf, sb.len, now + 20, &bad), 1);
	CHECK(cookie_find(u, b, now + 20) == NULL);
	/* a table smaller than the file keeps what fits */
	CHECK(cookie_parse(v, sb.buf, sb.len, now, &bad) >= 1);
	CHECK_INT(cookie_count(v), 1);
	/* corrupt content: bad lines skipped and counted, good ones kept */
	{
		const char *text = "mtugate-cookies 1\n"
			"zz00000000000000000000000000000000000000000000000000000000000000 99999999 0 0 g\n"
			"0300000000000000000000000000000000000000000000000000000000000000 99999999 0 0 g\n"
			"0300000000000000000000000000000000000000000000000000000000000000 x 0 0 g\n"
			"0300000000000000000000000000000000000000000000000000000000000000 99999999 0 70000 g\n"
			"0300000000000000000000000000000000000000000000000000000000000000 99999999 0 0 \n"
			"0300000000000000000000000000000000000000000000000000000000000000 99999999 0 0 a b\n"
			"short\n\n";
		struct cookie_table *w = cookie_table_new(8);
		uint8_t h3[32] = { 3 };

		CHECK_INT(cookie_parse(w, text, strlen(text), 1000, &bad), 1);
		CHECK_INT(bad, 7);
		CHECK((e = cookie_find(w, h3, 1000)) && !strcmp(e->group, "g"));
		CHECK_INT(cookie_parse(w, "mtugate-cookies 2\n", 18, 1000, &bad), -1);
		CHECK_INT(cookie_parse(w, "", 0, 1000, &bad), -1);
		CHECK_INT(cookie_parse(w, "\x01\xff garbage", 10, 1000, &bad), -1);
		cookie_table_free(w);
	}
	(void)c;
	strbuf_free(&sb);
	cookie_table_free(t);
	cookie_table_free(u);
	cookie_table_free(v);
}

/* The state file: written 0600 through a rename, read back; missing is
 * empty, corrupt lines are counted, a symlink in its place is not followed. */
static void test_statefile(void)
{
	char dir[] = "/tmp/test_cookie.XXXXXX", path[128], tmp[140], other[128];
	struct cookie_table *t = cookie_table_new(8), *u = cookie_table_new(8);
	uint8_t a[32];
	struct stat st;
	size_t bad = 9;
	FILE *f;

	if (!mkdtemp(dir) || !t || !u)
		return;
	cookiefile_path("/run/mtugate/mtugate.sock", path, sizeof(path));
	CHECK_STR(path, "/run/mtugate/cookies");
	cookiefile_path("mtugate.sock", path, sizeof(path));
	CHECK_STR(path, "./cookies");
	snprintf(path, sizeof(path), "%s/cookies", dir);
	snprintf(tmp, sizeof(tmp), "%s/cookies.tmp", dir);
	snprintf(other, sizeof(other), "%s/other", dir);
	CHECK_INT(cookiefile_load(path, u, 1000, &bad), 0);
	hash_of(a, 7);
	cookie_bind(t, a, "blocked", 1000);
	CHECK_INT(cookiefile_save(path, t, 1000), 0);
	CHECK(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	CHECK(access(tmp, F_OK) != 0);
	CHECK_INT(cookiefile_load(path, u, 1000, &bad), 1);
	CHECK(cookie_find(u, a, 1000) != NULL);
	/* corrupt: a bad line is skipped, a wrong first line loads nothing */
	if ((f = fopen(path, "a"))) {
		fputs("garbage line\n", f);
		fclose(f);
	}
	CHECK_INT(cookiefile_load(path, u, 1000, &bad), 0);	/* already known */
	CHECK_INT(bad, 1);
	if ((f = fopen(path, "w"))) {
		fputs("\x7f" "ELF not ours\n", f);
		fclose(f);
	}
	CHECK_INT(cookiefile_load(path, u, 1000, &bad), -EINVAL);
	/* a symlink planted in its place is neither read nor written through */
	unlink(path);
	if ((f = fopen(other, "w"))) {
		fputs("mtugate-cookies 1\n", f);
		fclose(f);
	}
	CHECK(symlink(other, path) == 0);
	CHECK_INT(cookiefile_load(path, u, 1000, &bad), -ELOOP);
	CHECK_INT(cookiefile_save(path, t, 1000), 0);	/* the rename replaces the link */
	CHECK(lstat(path, &st) == 0 && S_ISREG(st.st_mode));
	CHECK(stat(other, &st) == 0 && st.st_size == 18);
	/* a planted temporary symlink is not followed either */
	CHECK(symlink(other, tmp) == 0);
	CHECK_INT(cookiefile_save(path, t, 1000), 0);
	CHECK(stat(other, &st) == 0 && st.st_size == 18);
	unlink(path);
	unlink(tmp);
	unlink(other);
	rmdir(dir);
	cookie_table_free(t);
	cookie_table_free(u);
}

int main(void)
{
	test_values();
	test_heads();
	test_table();
	test_apply();
	test_file();
	test_statefile();
	return t_done("test_cookie");
}
