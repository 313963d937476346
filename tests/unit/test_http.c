/* HTTP framing of the authentication exchange and group-name extraction. */
#include <stdlib.h>
#include <string.h>

#include "proxy/http.h"
#include "tests/unit/t.h"

/* openconnect 9.01's first POST after a group-url, with <group-select>. */
#define INIT_XML "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<config-auth client=\"vpn\" type=\"init\" aggregate-auth-version=\"2\">" \
	"<version who=\"vpn\">v9.01</version><device-id>linux-64</device-id>" \
	"<group-select>tlsonly</group-select>" \
	"<group-access>https://198.18.2.2/</group-access>" \
	"<capabilities><auth-method>single-sign-on-v2</auth-method></capabilities></config-auth>"
#define REQ_HEAD(path, len) "POST " path " HTTP/1.1\r\n" \
	"Host: 198.18.2.2\r\n" \
	"User-Agent: Open AnyConnect VPN Agent v9.01\r\n" \
	"Accept: */*\r\n" \
	"Accept-Encoding: identity\r\n" \
	"X-Transcend-Version: 1\r\n" \
	"X-Aggregate-Auth: 1\r\n" \
	"X-Support-HTTP-Auth: true\r\n" \
	"Content-Type: application/x-www-form-urlencoded\r\n" \
	"Content-Length: " len "\r\n" \
	"\r\n"

/* The later auth-reply: the group only inside the echoed <opaque>. */
#define REPLY_XML "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n" \
	"<config-auth client=\"vpn\" type=\"auth-reply\" aggregate-auth-version=\"2\">" \
	"<version who=\"vpn\">v9.01</version><device-id>linux-64</device-id>" \
	"<session-token/><session-id/>" \
	"<opaque is-for=\"sg\"><tunnel-group>relay&amp;co</tunnel-group><auth-handle>142</auth-handle>" \
	"<config-hash>1595829378234</config-hash></opaque>" \
	"<auth><username>test</username></auth></config-auth>"

/* ocserv's answer with a chunked body (ASA style) and trailers. */
static const char chunked_resp[] = "HTTP/1.1 200 OK\r\n"
	"Content-Type: text/xml\r\n"
	"Transfer-Encoding: chunked\r\n"
	"X-Transcend-Version: 1\r\n"
	"\r\n"
	"1a\r\n<config-auth client=\"vpn\" \r\n"
	"2A;ext=1\r\ntype=\"auth-request\"><opaque><tunnel-group>\r\n"
	"23\r\nasa&#45;ssl</tunnel-group></opaque>\r\n"
	"E\r\n</config-auth>\r\n"
	"0\r\n"
	"X-Trailer: t\r\n"
	"\r\n";
static const char chunked_body[] = "<config-auth client=\"vpn\" type=\"auth-request\"><opaque><tunnel-group>"
	"asa&#45;ssl</tunnel-group></opaque></config-auth>";

struct frame {
	enum http_res res;
	size_t used;		/* bytes of the stream the message took */
	uint8_t cap[8192];
	struct http_capture c;
	struct http_framer f;
};

/* Feed in pieces at the given cuts; stop at the first non-MORE result. */
static void frame(struct frame *fr, enum http_kind kind, const char *in, size_t len,
		  const size_t *cuts, size_t ncuts)
{
	size_t pos = 0;

	memset(fr, 0, sizeof(*fr));
	fr->c.buf = fr->cap;
	fr->c.cap = sizeof(fr->cap);
	http_framer_init(&fr->f, kind, &fr->c);
	for (size_t i = 0; i <= ncuts; i++) {
		size_t end = i < ncuts ? cuts[i] : len, used;

		fr->res = http_feed(&fr->f, (const uint8_t *)in + pos, end - pos, &used);
		fr->used = pos + used;
		if (fr->res != HTTP_MORE)
			return;
		pos = end;
	}
}

static bool same_frame(const struct frame *a, const struct frame *b)
{
	return a->res == b->res && a->used == b->used && a->c.len == b->c.len &&
	       a->c.head_len == b->c.head_len && memcmp(a->cap, b->cap, a->c.len) == 0 &&
	       a->f.status == b->f.status && a->f.connect == b->f.connect &&
	       a->f.body_len == b->f.body_len && strcmp(a->f.method, b->f.method) == 0;
}

/* The whole run, then split at every offset and byte by byte: same result. */
static void check_splits(enum http_kind kind, const char *in, size_t len, const struct frame *whole)
{
	static struct frame part;
	static size_t cuts[8192];
	size_t bad = 0;

	for (size_t cut = 0; cut <= len; cut++) {
		frame(&part, kind, in, len, &cut, 1);
		bad += !same_frame(whole, &part);
	}
	CHECK_INT(bad, 0);
	for (size_t i = 0; i + 1 < len; i++)
		cuts[i] = i + 1;
	frame(&part, kind, in, len, cuts, len ? len - 1 : 0);
	CHECK(same_frame(whole, &part));
}

static void test_request(void)
{
	static struct frame fr;
	static const char msg[] = REQ_HEAD("/tlsonly", "340") INIT_XML;
	const size_t head = strlen(REQ_HEAD("/tlsonly", "340"));
	struct http_groups g;

	CHECK_INT(strlen(INIT_XML), 340);
	frame(&fr, HTTP_REQUEST, msg, strlen(msg), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.used, strlen(msg));
	CHECK_STR(fr.f.method, "POST");
	CHECK(!fr.f.connect && fr.f.has_length && !fr.f.chunked);
	CHECK_INT(fr.f.content_length, 340);
	CHECK_INT(fr.f.head_len, head);
	CHECK_INT(fr.c.head_len, head);
	CHECK_INT(fr.c.len, strlen(msg));
	CHECK_MEM(fr.cap, msg, strlen(msg));
	check_splits(HTTP_REQUEST, msg, strlen(msg), &fr);

	http_extract_groups(fr.cap, fr.c.head_len, fr.cap + fr.c.head_len, fr.c.len - fr.c.head_len, &g);
	CHECK_STR(g.select, "tlsonly");
	CHECK_STR(g.url, "tlsonly");
	CHECK_STR(g.tunnel, "");

	/* Pipelined: the second message is not consumed. */
	static char two[2048];
	size_t n1 = strlen(msg);
	memcpy(two, msg, n1);
	strcpy(two + n1, "GET / HTTP/1.1\r\nHost: h\r\n\r\n");
	frame(&fr, HTTP_REQUEST, two, strlen(two), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.used, n1);
	frame(&fr, HTTP_REQUEST, two + n1, strlen(two + n1), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_STR(fr.f.method, "GET");

	/* The auth-reply POST to "/": only the opaque names the group. */
	static const char reply[] = REQ_HEAD("/", "396") REPLY_XML;
	CHECK_INT(strlen(REPLY_XML), 396);
	frame(&fr, HTTP_REQUEST, reply, strlen(reply), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	http_extract_groups(fr.cap, fr.c.head_len, fr.cap + fr.c.head_len, fr.c.len - fr.c.head_len, &g);
	CHECK_STR(g.select, "");
	CHECK_STR(g.url, "");
	CHECK_STR(g.tunnel, "relay&co");
}

static void test_connect(void)
{
	static struct frame fr;
	static const char req[] = "CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\n"
		"Host: 198.18.2.2\r\n"
		"Cookie: webvpn=ZGVhZGJlZWY=\r\n"
		"X-CSTP-Version: 1\r\n"
		"X-CSTP-MTU: 1390\r\n"
		"\r\n";
	frame(&fr, HTTP_REQUEST, req, strlen(req), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK(fr.f.connect);
	CHECK_STR(fr.f.method, "CONNECT");
	check_splits(HTTP_REQUEST, req, strlen(req), &fr);

	const char *other = "CONNECT /CSCOSSLC/tunnelx HTTP/1.1\r\n\r\n";
	frame(&fr, HTTP_REQUEST, other, strlen(other), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK(!fr.f.connect);

	/* 200 to CONNECT: done at the head, the tunnel bytes are not ours. */
	const char *ok = "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n\r\nSTF\x01";
	frame(&fr, HTTP_RESPONSE_CONNECT, ok, strlen(ok), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK(fr.f.tunnel);
	CHECK_INT(fr.f.status, 200);
	CHECK_INT(fr.used, strlen(ok) - 4);

	/* Refused: a normal response with its body. */
	const char *no = "HTTP/1.1 401 Cookie is not acceptable\r\nContent-Length: 3\r\n\r\nabcSTF";
	frame(&fr, HTTP_RESPONSE_CONNECT, no, strlen(no), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK(!fr.f.tunnel);
	CHECK_INT(fr.used, strlen(no) - 3);
}

static void test_response(void)
{
	static struct frame fr;
	struct http_groups g;

	frame(&fr, HTTP_RESPONSE, chunked_resp, strlen(chunked_resp), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.used, strlen(chunked_resp));
	CHECK(fr.f.chunked);
	CHECK_INT(fr.f.body_len, strlen(chunked_body));
	CHECK_INT(fr.c.len - fr.c.head_len, strlen(chunked_body));
	CHECK_MEM(fr.cap + fr.c.head_len, chunked_body, strlen(chunked_body));
	check_splits(HTTP_RESPONSE, chunked_resp, strlen(chunked_resp), &fr);
	http_extract_groups(fr.cap, fr.c.head_len, fr.cap + fr.c.head_len, fr.c.len - fr.c.head_len, &g);
	CHECK_STR(g.tunnel, "asa-ssl");
	CHECK_STR(g.url, "");

	/* ocserv: Content-Length. */
	const char *cl = "HTTP/1.1 200 OK\r\nConnection: Keep-Alive\r\nContent-Type: text/xml\r\n"
			 "content-length:  5 \r\nX-Transcend-Version: 1\r\n\r\nhello";
	frame(&fr, HTTP_RESPONSE, cl, strlen(cl), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.f.content_length, 5);
	check_splits(HTTP_RESPONSE, cl, strlen(cl), &fr);

	/* No length: until the close. */
	const char *eof = "HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>";
	frame(&fr, HTTP_RESPONSE, eof, strlen(eof), NULL, 0);
	CHECK_INT(fr.res, HTTP_MORE);
	CHECK(fr.f.until_eof);
	CHECK_INT(http_framer_eof(&fr.f), HTTP_DONE);
	CHECK_INT(fr.f.body_len, 6);

	/* 204 and 304 and a HEAD answer have no body despite Content-Length. */
	const char *nb = "HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n";
	frame(&fr, HTTP_RESPONSE, nb, strlen(nb), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	nb = "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n";
	frame(&fr, HTTP_RESPONSE_NOBODY, nb, strlen(nb), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	frame(&fr, HTTP_RESPONSE, nb, strlen(nb), NULL, 0);
	CHECK_INT(fr.res, HTTP_MORE);
	CHECK_INT(http_framer_eof(&fr.f), HTTP_E_EOF);

	/* Bare LF line ends are framed like CRLF. */
	const char *lf = "HTTP/1.1 200 OK\nContent-Length: 2\n\nok";
	frame(&fr, HTTP_RESPONSE, lf, strlen(lf), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.used, strlen(lf));

	/* A small capture is truncated, the framing goes on. */
	static struct frame small;
	memset(&small, 0, sizeof(small));
	small.c.buf = small.cap;
	small.c.cap = 40;
	http_framer_init(&small.f, HTTP_RESPONSE, &small.c);
	size_t used;
	CHECK_INT(http_feed(&small.f, (const uint8_t *)chunked_resp, strlen(chunked_resp), &used), HTTP_DONE);
	CHECK(small.c.truncated);
	CHECK_INT(small.c.len, 40);

	/* EOF with nothing under way is clean. */
	http_framer_init(&small.f, HTTP_RESPONSE, NULL);
	CHECK_INT(http_framer_eof(&small.f), HTTP_MORE);
}

static enum http_res one(enum http_kind k, const char *s, size_t len);

/* A head longer than the capture's share (long cookies) keeps its whole
 * lines and leaves the body its room: the login's group is still read. */
static void test_capture_share(void)
{
	static struct frame fr, part;
	static char msg[16384];
	size_t k, bad = 0;
	struct http_groups g;

	k = (size_t)sprintf(msg, "POST /tlsonly HTTP/1.1\r\nHost: 198.18.2.2\r\nCookie: webvpnc=");
	memset(msg + k, 'k', 6000);
	k += 6000;
	k += (size_t)sprintf(msg + k, "\r\nContent-Length: 340\r\n\r\n%s", INIT_XML);
	frame(&fr, HTTP_REQUEST, msg, k, NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK(fr.c.head_cut && !fr.c.truncated);
	CHECK(fr.c.head_len <= HTTP_CAPTURE_HEAD(sizeof(fr.cap)));
	CHECK_INT(fr.c.head_len, strlen("POST /tlsonly HTTP/1.1\r\nHost: 198.18.2.2\r\n"));
	CHECK_INT(fr.c.len - fr.c.head_len, 340);
	http_extract_groups(fr.cap, fr.c.head_len, fr.cap + fr.c.head_len, fr.c.len - fr.c.head_len, &g);
	CHECK_STR(g.select, "tlsonly");
	CHECK_STR(g.url, "tlsonly");
	for (size_t cut = 0; cut <= k; cut += 7) {
		frame(&part, HTTP_REQUEST, msg, k, &cut, 1);
		bad += !same_frame(&fr, &part) || part.c.head_cut != fr.c.head_cut;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(HTTP_CAPTURE_HEAD(16384), 12288);
}

/* Interim 1xx answers are framed and skipped: the request stays pending. */
static void test_interim(void)
{
	static struct frame fr;
	static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n"
		"HTTP/1.1 102 Processing\r\nX-A: b\r\n\r\n"
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokHTTP/1.1";

	frame(&fr, HTTP_RESPONSE, cont, strlen(cont), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.used, strlen(cont) - 8);
	CHECK_INT(fr.f.status, 200);
	CHECK_INT(fr.f.interim, 2);
	CHECK_INT(fr.f.body_len, 2);
	check_splits(HTTP_RESPONSE, cont, strlen(cont), &fr);

	/* Before the answer to CONNECT: the tunnel starts with the 200. */
	static const char conn[] = "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 CONNECTED\r\n\r\nSTF";
	frame(&fr, HTTP_RESPONSE_CONNECT, conn, strlen(conn), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK(fr.f.tunnel);
	CHECK_INT(fr.used, strlen(conn) - 3);

	/* 101 is final: what follows is no longer HTTP. */
	static const char sw[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\nraw";
	frame(&fr, HTTP_RESPONSE, sw, strlen(sw), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.f.status, 101);
	CHECK_INT(fr.used, strlen(sw) - 3);

	/* Empty lines before a request line are ignored (RFC 9112 2.2), and not
	 * captured: the group-url is still read from the POST line. */
	static const char lead[] = "\r\n\n\r\n" REQ_HEAD("/tlsonly", "340") INIT_XML;
	struct http_groups g;

	frame(&fr, HTTP_REQUEST, lead, strlen(lead), NULL, 0);
	CHECK_INT(fr.res, HTTP_DONE);
	CHECK_INT(fr.used, strlen(lead));
	CHECK_STR(fr.f.method, "POST");
	CHECK_MEM(fr.cap, "POST /tlsonly", 13);
	http_extract_groups(fr.cap, fr.c.head_len, fr.cap + fr.c.head_len, fr.c.len - fr.c.head_len, &g);
	CHECK_STR(g.url, "tlsonly");
	check_splits(HTTP_REQUEST, lead, strlen(lead), &fr);
	CHECK_INT(one(HTTP_REQUEST, "\r\r\nGET / HTTP/1.1\r\n\r\n", 21), HTTP_E_SYNTAX);
}

static enum http_res one(enum http_kind k, const char *s, size_t len)
{
	static struct frame fr;

	frame(&fr, k, s, len, NULL, 0);
	return fr.res;
}

static void test_hostile(void)
{
	static char big[HTTP_MAX_HEAD + 65536];
	size_t k;

	/* A 100 KB line (an ASA's X-CSTP-Post-Auth-XML) passes; one over 256 KiB does not. */
	k = (size_t)sprintf(big, "POST / HTTP/1.1\r\nX-Long: ");
	memset(big + k, 'a', 100000);
	k += 100000;
	CHECK_INT(one(HTTP_REQUEST, big, k + (size_t)sprintf(big + k, "\r\n\r\n")), HTTP_DONE);
	memset(big + k, 'a', HTTP_MAX_LINE);
	k += HTTP_MAX_LINE;
	CHECK_INT(one(HTTP_REQUEST, big, k), HTTP_E_LINE);
	memset(big, 'a', HTTP_MAX_LINE + 1);
	CHECK_INT(one(HTTP_REQUEST, big, HTTP_MAX_LINE + 1), HTTP_E_LINE);

	/* No header count: 2 x 2,500 routes and more. */
	k = (size_t)sprintf(big, "POST / HTTP/1.1\r\n");
	for (int i = 0; i < 20000; i++)
		k += (size_t)sprintf(big + k, "X-H%d: v\r\n", i);
	CHECK_INT(one(HTTP_REQUEST, big, k + (size_t)sprintf(big + k, "\r\n")), HTTP_DONE);

	/* Over 2 MiB in all, in the head or in the trailers. */
	k = (size_t)sprintf(big, "POST / HTTP/1.1\r\n");
	while (k <= HTTP_MAX_HEAD) {
		k += (size_t)sprintf(big + k, "X-H: ");
		memset(big + k, 'b', 790);
		k += 790;
		k += (size_t)sprintf(big + k, "\r\n");
	}
	CHECK_INT(one(HTTP_REQUEST, big, k), HTTP_E_HEAD);
	k = (size_t)sprintf(big, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n");
	while (k <= HTTP_MAX_HEAD + 100) {
		k += (size_t)sprintf(big + k, "X-T: ");
		memset(big + k, 'b', 790);
		k += 790;
		k += (size_t)sprintf(big + k, "\r\n");
	}
	CHECK_INT(one(HTTP_RESPONSE, big, k), HTTP_E_HEAD);

	const char nul[] = "POST / HTTP/1.1\r\nX-A: a\0b\r\n\r\n";
	CHECK_INT(one(HTTP_REQUEST, nul, sizeof(nul) - 1), HTTP_E_SYNTAX);
#define BAD(k, s, r) CHECK_INT(one(k, s, strlen(s)), r)
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nX-A: a\rContent-Length: 5\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length : 5\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nNoColon\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, "POST / HTTP/2.0\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, "POST /\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, " / HTTP/1.1\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_RESPONSE, "HTTP/1.1\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_RESPONSE, "HTTP/1.1 20x OK\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200OK\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_RESPONSE, "ICY 200 OK\r\n\r\n", HTTP_E_SYNTAX);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_E_LENGTH);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", HTTP_E_LENGTH);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length: 5 6\r\n\r\n", HTTP_E_LENGTH);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", HTTP_E_LENGTH);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length:\r\n\r\n", HTTP_E_LENGTH);
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", HTTP_E_LENGTH);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", HTTP_E_UNSUPPORTED);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
	    HTTP_E_UNSUPPORTED);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", HTTP_E_CHUNK);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", HTTP_E_CHUNK);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabX\r\n", HTTP_E_CHUNK);
	BAD(HTTP_RESPONSE, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffff\r\n", HTTP_E_CHUNK);
	/* Same-value repeats are allowed. */
	BAD(HTTP_REQUEST, "POST / HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n", HTTP_DONE);
	/* Leading empty lines before a request are skipped. */
	BAD(HTTP_REQUEST, "\r\nGET / HTTP/1.1\r\n\r\n", HTTP_DONE);
#undef BAD
	CHECK(strcmp(http_res_str(HTTP_E_HEAD), "?") != 0);
}

static void groups_of(const char *head, const char *body, struct http_groups *g)
{
	http_extract_groups((const uint8_t *)head, strlen(head), (const uint8_t *)body, strlen(body), g);
}

static void test_groups(void)
{
	struct http_groups g;

	groups_of("POST https://vpn.example.com/relay/?x=1 HTTP/1.1\r\n\r\n", "", &g);
	CHECK_STR(g.url, "relay");
	groups_of("POST /tls%2Donly HTTP/1.1\r\n\r\n", "", &g);
	CHECK_STR(g.url, "tls-only");
	groups_of("POST / HTTP/1.1\r\n\r\n", "", &g);
	CHECK_STR(g.url, "");
	groups_of("POST /a/b HTTP/1.1\r\n\r\n", "", &g);
	CHECK_STR(g.url, "");
	groups_of("GET /tlsonly HTTP/1.1\r\n\r\n", "", &g);
	CHECK_STR(g.url, "");
	/* <group-access> names the group-url when the POST went to "/". */
	groups_of("POST / HTTP/1.1\r\n\r\n", "<group-access>https://198.18.2.2/relay</group-access>", &g);
	CHECK_STR(g.url, "relay");
	groups_of("POST / HTTP/1.1\r\n\r\n", "<group-select >  spaced\n</group-select>", &g);
	CHECK_STR(g.select, "spaced");
	groups_of("POST / HTTP/1.1\r\n\r\n", "<group-select/><group-select></group-select>", &g);
	CHECK_STR(g.select, "");
	groups_of("POST / HTTP/1.1\r\n\r\n", "<group-selectx>no</group-selectx>", &g);
	CHECK_STR(g.select, "");
	groups_of("POST / HTTP/1.1\r\n\r\n", "<group-select>unterminated", &g);
	CHECK_STR(g.select, "");
	/* Too long for any group: ignored, not truncated into another name. */
	groups_of("POST / HTTP/1.1\r\n\r\n",
		  "<group-select>aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa</group-select>", &g);
	CHECK_STR(g.select, "");
	groups_of("POST / HTTP/1.1\r\n\r\n", "<group-select>a&#1;b</group-select>", &g);
	CHECK_STR(g.select, "");
	groups_of("POST / HTTP/1.1\r\n\r\n",
		  "<group-select>first</group-select><group-select>second</group-select>", &g);
	CHECK_STR(g.select, "second");
	groups_of("POST / HTTP/1.1\r\n\r\n", "username=u&group_list=tls%2Donly+x&password=p", &g);
	CHECK_STR(g.select, "tls-only x");
	groups_of("POST / HTTP/1.1\r\n\r\n", "group_list=relay", &g);
	CHECK_STR(g.select, "relay");
	groups_of("POST / HTTP/1.1\r\n\r\n", "xgroup_list=relay", &g);
	CHECK_STR(g.select, "");
}

/* The username of a login: openconnect's and AnyConnect's XML <auth>, with
 * entities; a legacy form's field; nothing from a password-only reply, and
 * never the password. */
static void test_user(void)
{
	static const char *const head = "POST / HTTP/1.1\r\n\r\n";
	static const struct {
		const char *body, *user;
	} cases[] = {
		{ "<config-auth client=\"vpn\" type=\"auth-reply\"><auth><username>alice</username>"
		  "</auth></config-auth>", "alice" },
		{ "<auth><username> b&amp;b </username><password>secret</password></auth>", "b&b" },
		{ "<auth><password>secret</password></auth>", "" },
		{ "<auth><username/></auth>", "" },
		{ "<auth><username>a\x01b</username></auth>", "" },
		{ "group_list=relay&username=carol+d%40x&password=secret", "carol d@x" },
		{ "xusername=mallory&password=secret", "" },
		{ "<auth><username>" "0123456789012345678901234567890123456789012345678901234567890123"
		  "</username></auth>", "" },
	};
	struct http_groups g;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		http_extract_groups((const uint8_t *)head, strlen(head), (const uint8_t *)cases[i].body,
				    strlen(cases[i].body), &g);
		CHECK_STR(g.user, cases[i].user);
	}
}

int main(void)
{
	test_user();
	test_request();
	test_connect();
	test_response();
	test_hostile();
	test_interim();
	test_capture_share();
	test_groups();
	return t_done("test_http");
}
