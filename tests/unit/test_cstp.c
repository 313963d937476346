/* CONNECT response/request rewriting and the CSTP record stream parser. */
#include <stdlib.h>
#include <string.h>

#include "proxy/cstp.h"
#include "proxy/http.h"
#include "tests/unit/t.h"

#define SID "5f1c3a9be0d24c7a8b16e39f02a4d7c15f1c3a9be0d24c7a8b16e39f02a4d7c1"
#define APPID "a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f60718293a4b5c6d7e8f90"

/* ocserv 1.1.6, dtls-psk = false: the legacy (ASA-like) DTLS offer. */
#define OC_HEAD "HTTP/1.1 200 CONNECTED\r\n" \
	"X-CSTP-Version: 1\r\n" \
	"X-CSTP-Server-Name: ocserv 1.1.6\r\n" \
	"X-CSTP-DPD: 90\r\n" \
	"X-CSTP-Address: 192.0.2.130\r\n" \
	"X-CSTP-Netmask: 255.255.255.192\r\n" \
	"X-CSTP-Split-Include: 198.19.0.0/255.255.0.0\r\n" \
	"X-CSTP-Keepalive: 32400\r\n" \
	"X-CSTP-Idle-Timeout: none\r\n" \
	"X-CSTP-Keep: true\r\n" \
	"X-CSTP-License: accept\r\n"
#define OC_DTLS_A "X-DTLS-Session-ID: " SID "\r\n" \
	"X-DTLS-DPD: 90\r\n"
#define OC_PORT "X-DTLS-Port: 443\r\n"
#define OC_DTLS_B "X-DTLS-Rekey-Time: 172838\r\n" \
	"X-DTLS-Rekey-Method: ssl\r\n" \
	"X-DTLS-Keepalive: 32400\r\n" \
	"X-DTLS12-CipherSuite: AES256-GCM-SHA384\r\n"
#define OC_BASE "X-CSTP-Base-MTU: 1500\r\n"
#define OC_TAIL "X-CSTP-Rekey-Time: 172848\r\n" \
	"X-CSTP-Rekey-Method: ssl\r\n" \
	"\r\n"

static const char oc_legacy[] = OC_HEAD OC_DTLS_A OC_PORT OC_DTLS_B
	"X-DTLS-MTU: 1434\r\n" OC_BASE "X-CSTP-MTU: 1434\r\n" OC_TAIL;

/* ocserv, dtls-psk = true: App-ID and PSK-NEGOTIATE, no X-DTLS-MTU. */
#define PSK_DTLS "X-DTLS-App-ID: " APPID "\r\n" \
	"X-DTLS-Port: 443\r\n" \
	"X-DTLS-DPD: 90\r\n" \
	"X-DTLS-CipherSuite: PSK-NEGOTIATE\r\n"
static const char oc_psk[] = OC_HEAD PSK_DTLS OC_BASE "X-CSTP-MTU: 1434\r\n" OC_TAIL;

/* ASA 9.1 style: unequal MTUs, IPv6 address, DTLS on 444 (CSCuh61321). */
#define ASA_A "HTTP/1.1 200 CONNECTED\r\n" \
	"Date: Fri, 27 Nov 2026 01:00:00 GMT\r\n" \
	"X-CSTP-Version: 1\r\n" \
	"X-CSTP-Address: 192.0.2.140\r\n" \
	"X-CSTP-Netmask: 255.255.255.192\r\n" \
	"X-CSTP-Address-IP6: 2001:db8:0:80::5/64\r\n" \
	"X-CSTP-Keep: true\r\n" \
	"X-CSTP-Lease-Duration: 1209600\r\n" \
	"X-CSTP-Base-MTU: 1500\r\n"
#define ASA_B "X-CSTP-Rekey-Method: new-tunnel\r\n" \
	"X-CSTP-Rekey-Time: 3600\r\n" \
	"X-CSTP-DPD: 30\r\n" \
	"X-CSTP-Keepalive: 20\r\n"
#define ASA_SID "X-DTLS-Session-ID: " SID "\r\n"
#define ASA_C "X-DTLS-Keepalive: 20\r\n" \
	"X-DTLS-DPD: 30\r\n" \
	"X-DTLS-Rekey-Time: 3600\r\n" \
	"X-DTLS-CipherSuite: AES256-SHA\r\n"
#define ASA_D "X-CSTP-Post-Auth-XML: <?xml version=\"1.0\"?><config-auth client=\"vpn\" type=\"complete\"/>\r\n" \
	"\r\n"
static const char asa[] = ASA_A "X-CSTP-MTU: 1380\r\n" ASA_B ASA_SID "X-DTLS-Port: 444\r\n" ASA_C
	"X-DTLS-MTU: 1418\r\n" ASA_D;

#define BIG (HTTP_MAX_HEAD + 65536)

static enum cstp_res rw(const char *in, size_t inlen, enum dtls_mode m, unsigned mtu, uint16_t port,
			char *out, size_t *outlen, struct cstp_offer *o)
{
	struct cstp_policy p = { .dtls = m, .mtu = mtu, .dtls_port = port };

	return cstp_rewrite_response((const uint8_t *)in, inlen, &p, (uint8_t *)out, BIG, outlen, o);
}

/* The order the rewriters write: the lines they may touch (response:
 * X-CSTP-MTU and X-DTLS*; request: X-CSTP-Accept-Encoding and X-DTLS*) move
 * to the end of the head, in the order sent; everything else stays. Written
 * apart from the rewriter, from the same rule. */
static const char *hoist(const char *in, bool response)
{
	static char out[2][8192];
	static int which;
	char *o = out[which ^= 1], held[8192];
	size_t n = 0, h = 0;
	const char *p = in, *blank = NULL;

	for (unsigned line = 0; *p; line++) {
		const char *e = strchr(p, '\n');
		size_t len = e ? (size_t)(e - p) + 1 : strlen(p);
		char name[64] = "";

		if (line > 0 && (len == 1 || (len == 2 && p[0] == '\r'))) {
			blank = p;
			break;
		}
		for (size_t i = 0; line > 0 && i < len && i < 63 && p[i] != ':'; i++) {
			name[i] = (char)(p[i] >= 'A' && p[i] <= 'Z' ? p[i] + 32 : p[i]);
			name[i + 1] = 0;
		}
		if (!strncmp(name, "x-dtls", 6) ||
		    !strcmp(name, response ? "x-cstp-mtu" : "x-cstp-accept-encoding")) {
			memcpy(held + h, p, len);
			h += len;
		} else {
			memcpy(o + n, p, len);
			n += len;
		}
		p += len;
	}
	memcpy(o + n, held, h);
	n += h;
	strcpy(o + n, blank ? blank : "");
	return o;
}

/* A rewrite must give exactly want (in the order hoist() says), and re-parse
 * in pass mode unchanged. */
static void expect(const char *in, enum dtls_mode m, unsigned mtu, uint16_t port, const char *want,
		   struct cstp_offer *o)
{
	static char out[BIG], again[BIG];
	size_t n, n2;
	struct cstp_offer o2;

	want = hoist(want, true);
	CHECK_INT(rw(in, strlen(in), m, mtu, port, out, &n, o), CSTP_OK);
	CHECK_INT(n, strlen(want));
	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);
	if (n != strlen(want) || memcmp(out, want, n))
		fprintf(stderr, "got:\n%.*s\nwant:\n%s\n", (int)n, out, want);
	CHECK_INT(o->head_len, strlen(in));
	CHECK_INT(rw(out, n, DTLS_PASS, 0, 0, again, &n2, &o2), CSTP_OK);
	CHECK(n2 == n && memcmp(again, out, n) == 0);
}

static void test_legacy(void)
{
	struct cstp_offer o;

	expect(oc_legacy, DTLS_PASS, 1380, 0, oc_legacy, &o);
	CHECK_INT(o.cstp_mtu, 1434);
	CHECK_INT(o.dtls_mtu, 1434);
	CHECK_INT(o.sent_mtu, 1434);
	CHECK_INT(o.base_mtu, 1500);
	CHECK_INT(o.dtls_port, 443);
	CHECK(o.dtls_offered && !o.dtls_removed && !o.psk);
	CHECK(o.has_session_id);
	CHECK_INT(o.session_id[0], 0x5f);
	CHECK_INT(o.session_id[31], 0xc1);
	CHECK(o.has_addr4 && !o.has_addr6);
	CHECK_MEM(o.addr4, "\xc0\x00\x02\x82", 4);
	CHECK_INT(o.removed + o.rewritten, 0);

	expect(oc_legacy, DTLS_BLOCK, 1380, 0,
	       OC_HEAD OC_BASE "X-CSTP-MTU: 1380\r\n" OC_TAIL, &o);
	CHECK(o.dtls_offered && o.dtls_removed);
	CHECK_INT(o.removed, 8);
	CHECK_INT(o.sent_mtu, 1380);
	CHECK_INT(o.sent_dtls_mtu, 0);
	CHECK_INT(o.cstp_mtu, 1434);

	expect(oc_legacy, DTLS_RELAY, 1400, 4443,
	       OC_HEAD OC_DTLS_A "X-DTLS-Port: 4443\r\n" OC_DTLS_B "X-DTLS-MTU: 1400\r\n" OC_BASE
	       "X-CSTP-MTU: 1400\r\n" OC_TAIL, &o);
	CHECK_INT(o.sent_mtu, 1400);
	CHECK_INT(o.sent_dtls_mtu, 1400);
	CHECK(o.port_rewritten);
	CHECK_INT(o.dtls_port, 443);
	CHECK_INT(o.rewritten, 3);
	CHECK(o.has_session_id);

	/* The group mtu above both offers: relay changes nothing, port 0 keeps it. */
	expect(oc_legacy, DTLS_RELAY, 1500, 0, oc_legacy, &o);
	CHECK_INT(o.sent_mtu, 1434);
	CHECK(!o.port_rewritten);
	CHECK_INT(o.rewritten, 0);
}

static void test_psk(void)
{
	struct cstp_offer o;

	expect(oc_psk, DTLS_PASS, 1300, 0, oc_psk, &o);
	CHECK(o.psk);
	CHECK_INT(o.app_id_len, 32);
	CHECK_INT(o.app_id[0], 0xa1);
	CHECK_INT(o.app_id[31], 0x90);
	CHECK(!o.has_session_id);
	CHECK_INT(o.dtls_mtu, 0);

	expect(oc_psk, DTLS_BLOCK, 1300, 0, OC_HEAD OC_BASE "X-CSTP-MTU: 1300\r\n" OC_TAIL, &o);
	CHECK_INT(o.removed, 4);
	CHECK_INT(o.sent_mtu, 1300);

	/* No X-DTLS-MTU offered: none is added. */
	expect(oc_psk, DTLS_RELAY, 1300, 443, OC_HEAD PSK_DTLS OC_BASE "X-CSTP-MTU: 1300\r\n" OC_TAIL, &o);
	CHECK_INT(o.sent_mtu, 1300);
	CHECK_INT(o.sent_dtls_mtu, 0);
	CHECK(!o.port_rewritten);
	CHECK_INT(o.app_id_len, 32);
}

static void test_asa(void)
{
	struct cstp_offer o;

	expect(asa, DTLS_PASS, 1380, 0, asa, &o);
	CHECK_INT(o.cstp_mtu, 1380);
	CHECK_INT(o.dtls_mtu, 1418);
	CHECK_INT(o.sent_mtu, 1380);
	CHECK_INT(o.sent_dtls_mtu, 1418);
	CHECK_INT(o.dtls_port, 444);
	CHECK(o.has_addr4 && o.has_addr6);
	CHECK_MEM(o.addr6, "\x20\x01\x0d\xb8\x00\x00\x00\x80\x00\x00\x00\x00\x00\x00\x00\x05", 16);

	CHECK(!o.ipv6_starved);
	/* A group mtu below 1280 with an IPv6 address in the answer: flagged. */
	expect(asa, DTLS_BLOCK, 1200, 0, ASA_A "X-CSTP-MTU: 1200\r\n" ASA_B ASA_D, &o);
	CHECK(o.ipv6_starved);
	expect(oc_legacy, DTLS_BLOCK, 1200, 0, OC_HEAD OC_BASE "X-CSTP-MTU: 1200\r\n" OC_TAIL, &o);
	CHECK(!o.ipv6_starved);	/* IPv4 only */
	expect(asa, DTLS_BLOCK, 1280, 0, ASA_A "X-CSTP-MTU: 1280\r\n" ASA_B ASA_D, &o);
	CHECK(!o.ipv6_starved);

	/* TLS-only group: no DTLS offer, the TLS MTU stays (already below 1400). */
	expect(asa, DTLS_BLOCK, 1400, 0, ASA_A "X-CSTP-MTU: 1380\r\n" ASA_B ASA_D, &o);
	CHECK_INT(o.removed, 7);
	CHECK_INT(o.sent_mtu, 1380);

	/* Remedy 1: both MTUs equal (1380 < 1418), the client told the reachable port. */
	expect(asa, DTLS_RELAY, 1500, 443,
	       ASA_A "X-CSTP-MTU: 1380\r\n" ASA_B ASA_SID "X-DTLS-Port: 443\r\n" ASA_C
	       "X-DTLS-MTU: 1380\r\n" ASA_D, &o);
	CHECK_INT(o.sent_mtu, 1380);
	CHECK_INT(o.sent_dtls_mtu, 1380);
	CHECK(o.port_rewritten);
	CHECK_INT(o.dtls_port, 444);
}

static void test_forms(void)
{
	static char out[70000];
	struct cstp_offer o;
	size_t n;

	/* LF-only lines stay LF; names match whatever their case; separators stay. */
	const char *lf = "HTTP/1.1 200 CONNECTED\n"
			 "x-cstp-mtu:1434  \n"
			 "x-dtls-PORT:   443\r\n"
			 "X-Dtls12-CipherSuite: AES128-SHA\n"
			 "X-CSTP-Address-IP6: 2001:db8::9/64\n"
			 "\n";
	expect(lf, DTLS_BLOCK, 1300, 0, "HTTP/1.1 200 CONNECTED\n"
	       "x-cstp-mtu:1300\n"
	       "X-CSTP-Address-IP6: 2001:db8::9/64\n"
	       "\n", &o);
	CHECK(o.has_addr6 && !o.has_addr4);
	expect(lf, DTLS_RELAY, 1300, 8443, "HTTP/1.1 200 CONNECTED\n"
	       "x-cstp-mtu:1300\n"
	       "x-dtls-PORT:   8443\r\n"
	       "X-Dtls12-CipherSuite: AES128-SHA\n"
	       "X-CSTP-Address-IP6: 2001:db8::9/64\n"
	       "\n", &o);

	/* Every X-DTLS-Port is rewritten (openconnect uses the last one). */
	expect("HTTP/1.1 200 OK\r\nX-DTLS-Port: 443\r\nX-CSTP-MTU: 1400\r\nX-DTLS-Port: 444\r\n\r\n",
	       DTLS_RELAY, 1500, 443,
	       "HTTP/1.1 200 OK\r\nX-DTLS-Port: 443\r\nX-CSTP-MTU: 1400\r\nX-DTLS-Port: 443\r\n\r\n", &o);
	CHECK(o.port_rewritten);
	CHECK_INT(o.dtls_port, 444);

	/* A header hidden behind a bare LF is seen (the client splits there too). */
	expect("HTTP/1.1 200 CONNECTED\r\nX-Note: a\nX-DTLS-Port: 443\r\nX-CSTP-MTU: 1400\r\n\r\n",
	       DTLS_BLOCK, 1380, 0,
	       "HTTP/1.1 200 CONNECTED\r\nX-Note: a\nX-CSTP-MTU: 1380\r\n\r\n", &o);
	CHECK_INT(o.removed, 1);

	/* Tunnel bytes after the head are not part of it. */
	const char *withdata = "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n\r\nSTF\x01\x00\x00\x07\x00";
	CHECK_INT(rw(withdata, strlen(withdata) + 1, DTLS_BLOCK, 1300, 0, out, &n, &o), CSTP_OK);
	CHECK_INT(o.head_len, strlen("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n\r\n"));
	CHECK_INT(n, strlen("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1300\r\n\r\n"));
	CHECK_MEM(out, "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1300\r\n\r\n", n);

	/* Compression confirmed by the headend is reported. */
	const char *ce = "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-CSTP-Content-Encoding: lzs\r\n\r\n";
	CHECK_INT(rw(ce, strlen(ce), DTLS_PASS, 0, 0, out, &n, &o), CSTP_OK);
	CHECK(o.compressed);
	CHECK_INT(rw(oc_legacy, strlen(oc_legacy), DTLS_PASS, 0, 0, out, &n, &o), CSTP_OK);
	CHECK(!o.compressed);
}

static enum cstp_res rw_block(const char *in, size_t len)
{
	static char out[BIG];
	struct cstp_offer o;
	size_t n;

	return rw(in, len, DTLS_BLOCK, 1300, 0, out, &n, &o);
}

static void test_hostile(void)
{
	static char big[BIG];
	static char out[BIG];
	struct cstp_offer o;
	size_t n, k;

	/* Incomplete: every proper prefix asks for more. */
	for (k = 0; k < strlen(oc_legacy); k++)
		if (rw_block(oc_legacy, k) != CSTP_MORE)
			break;
	CHECK_INT(k, strlen(oc_legacy));

	/* A line over 256 KiB. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-Long: ");
	memset(big + k, 'a', HTTP_MAX_LINE);
	k += HTTP_MAX_LINE;
	CHECK_INT(rw_block(big, k), CSTP_E_LINE);
	k += (size_t)sprintf(big + k, "\r\n\r\n");
	CHECK_INT(rw_block(big, k), CSTP_E_LINE);

	/* No header count: 20,000 headers are fine. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n");
	for (int i = 0; i < 20000; i++)
		k += (size_t)sprintf(big + k, "X-H%d: v\r\n", i);
	CHECK_INT(rw_block(big, k + (size_t)sprintf(big + k, "\r\n")), CSTP_OK);

	/* Headers of 800 bytes: over 2 MiB in all. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\n");
	while (k <= HTTP_MAX_HEAD) {
		k += (size_t)sprintf(big + k, "X-H: ");
		memset(big + k, 'b', 790);
		k += 790;
		k += (size_t)sprintf(big + k, "\r\n");
	}
	CHECK_INT(rw_block(big, k), CSTP_E_HEAD);
	k += (size_t)sprintf(big + k, "\r\n");
	CHECK_INT(rw_block(big, k), CSTP_E_HEAD);

	/* Lines to hold over 8 KiB: refused, never passed unrewritten. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n");
	for (int i = 0; i < 100; i++)
		k += (size_t)sprintf(big + k, "X-DTLS-Note%d: %080d\r\n", i, i);
	CHECK_INT(rw_block(big, k + (size_t)sprintf(big + k, "\r\n")), CSTP_E_HOLD);

	const char nul[] = "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-A: a\0b\r\n\r\n";
	CHECK_INT(rw_block(nul, sizeof(nul) - 1), CSTP_E_SYNTAX);
#define BAD(s, r) CHECK_INT(rw_block(s, strlen(s)), r)
	BAD("HTTP/1.1 200 CONNECTED\r\nX-A: a\rX-DTLS-Port: 443\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 200 CONNECTED\r\n:v\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 2000 CONNECTED\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/2 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("SSH-2.0-OpenSSH\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n X-DTLS-Port: 443\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-DTLS-Port : 443\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nNoColon\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-A: \x01\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 13a4\r\n\r\n", CSTP_E_VALUE);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 99999\r\n\r\n", CSTP_E_VALUE);
	/* A block group removes the X-DTLS-* lines anyway: a bad value there is no error. */
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-DTLS-MTU: 0\r\n\r\n", CSTP_OK);
	BAD("HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-DTLS-Port: -1\r\n\r\n", CSTP_OK);
	{
		/* Where a value counts, it is fatal: the relay's DTLS values, the MTU
		 * of relay and block. A pass group's tunnel never dies of one: each
		 * line goes through as sent. */
		static const char *const bad[] = {
			"HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-DTLS-MTU: 0\r\n\r\n",
			"HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-DTLS-Port: 0\r\n\r\n",
			"HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-DTLS-Port: 70000\r\n\r\n",
			"HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 14oo\r\nX-DTLS-Port: 443\r\n\r\n",
		};
		const struct cstp_policy relay = { .dtls = DTLS_RELAY, .mtu = 1400, .dtls_port = 443 };
		const struct cstp_policy pass = { .dtls = DTLS_PASS };
		uint8_t pout[512];
		size_t plen;

		for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
			CHECK_INT(cstp_rewrite_response((const uint8_t *)bad[i], strlen(bad[i]), &relay,
							pout, sizeof(pout), &plen, &o), CSTP_E_VALUE);
			CHECK_INT(cstp_rewrite_response((const uint8_t *)bad[i], strlen(bad[i]), &pass,
							pout, sizeof(pout), &plen, &o), CSTP_OK);
			CHECK_INT(plen, strlen(bad[i]));
			CHECK_MEM(pout, bad[i], plen);
		}
		CHECK_INT(rw_block(bad[3], strlen(bad[3])), CSTP_E_VALUE);
	}
	BAD("HTTP/1.1 200 CONNECTED\r\nX-DTLS-MTU: 1400\r\n\r\n", CSTP_E_NOMTU);
#undef BAD

	/* Not 200: relayed (no tunnel starts), but still with no DTLS offer. */
	const char *r401 = "HTTP/1.1 401 Cookie is not acceptable\r\nX-DTLS-Port: 443\r\nContent-Length: 0\r\n\r\n";
	CHECK_INT(rw(r401, strlen(r401), DTLS_BLOCK, 1300, 0, out, &n, &o), CSTP_REFUSED);
	CHECK_INT(o.status, 401);
	CHECK_INT(n, strlen("HTTP/1.1 401 Cookie is not acceptable\r\nContent-Length: 0\r\n\r\n"));
	CHECK_MEM(out, "HTTP/1.1 401 Cookie is not acceptable\r\nContent-Length: 0\r\n\r\n", n);

	/* The output buffer too small. */
	struct cstp_policy p = { .dtls = DTLS_PASS };
	CHECK_INT(cstp_rewrite_response((const uint8_t *)oc_legacy, strlen(oc_legacy), &p,
					(uint8_t *)out, strlen(oc_legacy) - 1, &n, &o), CSTP_E_SPACE);
	CHECK_INT(cstp_rewrite_response((const uint8_t *)oc_legacy, strlen(oc_legacy), &p,
					(uint8_t *)out, strlen(oc_legacy), &n, &o), CSTP_OK);
	CHECK(strcmp(cstp_res_str(CSTP_E_LINE), "?") != 0);
}

#define REQ_A "CONNECT /CSCOSSLC/tunnel HTTP/1.1\r\n" \
	"Host: 198.18.2.2\r\n" \
	"User-Agent: Open AnyConnect VPN Agent v9.01\r\n" \
	"Cookie: webvpn=ZGVhZGJlZWY=\r\n" \
	"X-CSTP-Version: 1\r\n" \
	"X-CSTP-Hostname: client\r\n"
#define REQ_ENC "X-CSTP-Accept-Encoding: oc-lz4,lzs\r\n"
#define REQ_B "X-CSTP-Base-MTU: 1500\r\n" \
	"X-CSTP-MTU: 1390\r\n" \
	"X-CSTP-Address-Type: IPv6,IPv4\r\n" \
	"X-CSTP-Full-IPv6-Capability: true\r\n"
#define REQ_DTLS "X-DTLS-Master-Secret: " SID "5f1c3a9be0d24c7a8b16e39f02a4d7c1\r\n" \
	"X-DTLS-CipherSuite: PSK-NEGOTIATE:OC-DTLS1_2-AES256-GCM:AES256-SHA:AES128-SHA\r\n" \
	"X-DTLS12-CipherSuite: ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256\r\n"
#define REQ_DENC "X-DTLS-Accept-Encoding: oc-lz4,lzs\r\n"

static enum cstp_res req_rewrite(const char *req, size_t len, unsigned opts, char *out,
				 size_t cap, size_t *n, size_t *h)
{
	return cstp_rewrite_request((const uint8_t *)req, len, opts, (uint8_t *)out, cap, n, h);
}

static void test_request(void)
{
	static const char req[] = REQ_A REQ_ENC REQ_B REQ_DTLS REQ_DENC "\r\n";
	char out[4096];
	size_t n, h;

	const char *want = hoist(req, false);

	CHECK_INT(req_rewrite(req, strlen(req), 0, out, sizeof(out), &n, &h), CSTP_OK);
	CHECK_INT(h, strlen(req));
	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);

	CHECK_INT(req_rewrite(req, strlen(req), CSTP_REQ_NO_COMPRESSION, out, sizeof(out), &n, &h),
		  CSTP_OK);
	want = REQ_A REQ_B REQ_DTLS "\r\n";
	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);

	CHECK_INT(req_rewrite(req, strlen(req), CSTP_REQ_NO_COMPRESSION | CSTP_REQ_NO_DTLS, out,
			      sizeof(out), &n, &h), CSTP_OK);
	want = REQ_A REQ_B "\r\n";
	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);
	/* Block wins over PSK removal: nothing of the DTLS offer is left. */
	CHECK_INT(req_rewrite(req, strlen(req), CSTP_REQ_NO_COMPRESSION | CSTP_REQ_NO_DTLS |
			      CSTP_REQ_NO_PSK, out, sizeof(out), &n, &h), CSTP_OK);
	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);

	CHECK_INT(req_rewrite(req, strlen(req) - 1, CSTP_REQ_NO_COMPRESSION | CSTP_REQ_NO_DTLS, out,
			      sizeof(out), &n, &h), CSTP_MORE);
	CHECK_INT(req_rewrite(req, strlen(req), 0, out, 100, &n, &h), CSTP_E_SPACE);
}

/* openconnect 9.01's DTLS offer, as the lab's --dump-http-traffic shows it. */
#define OC9_SECRET "X-DTLS-Master-Secret: " SID "5f1c3a9be0d24c7a8b16e39f02a4d7c1\r\n"
#define OC9_SUITES "OC-DTLS1_2-AES256-GCM:OC2-DTLS1_2-CHACHA20-POLY1305:OC-DTLS1_2-AES128-GCM:" \
	"DHE-RSA-AES256-SHA:DHE-RSA-AES128-SHA:AES256-SHA:AES128-SHA"
#define OC9_DTLS12 "X-DTLS12-CipherSuite: ECDHE-RSA-AES256-GCM-SHA384:AES128-GCM-SHA256\r\n"

/* Rewrite head with opts and compare with want, byte for byte. */
static void req_expect(const char *in, unsigned opts, const char *want)
{
	char out[4096];
	size_t n = 0, h = 0;

	want = hoist(want, false);
	CHECK_INT(req_rewrite(in, strlen(in), opts, out, sizeof(out), &n, &h), CSTP_OK);
	CHECK_INT(h, strlen(in));
	CHECK_INT(n, strlen(want));
	CHECK(n == strlen(want) && memcmp(out, want, n) == 0);
	if (n != strlen(want) || memcmp(out, want, n))
		fprintf(stderr, "got:\n%.*s\nwant:\n%s\n", (int)n, out, want);
}

static void test_request_psk(void)
{
	const unsigned np = CSTP_REQ_NO_PSK;

	/* openconnect: PSK-NEGOTIATE first, the legacy suites and the
	 * Master-Secret stay, so the headend answers with legacy DTLS. */
	req_expect(REQ_A REQ_B OC9_SECRET "X-DTLS-CipherSuite: PSK-NEGOTIATE:" OC9_SUITES "\r\n"
		   OC9_DTLS12 "\r\n", np,
		   REQ_A REQ_B OC9_SECRET "X-DTLS-CipherSuite: " OC9_SUITES "\r\n" OC9_DTLS12 "\r\n");
	/* With compression removal too, as the proxy asks for a relay group. */
	req_expect(REQ_A REQ_ENC REQ_B OC9_SECRET "X-DTLS-CipherSuite: PSK-NEGOTIATE:" OC9_SUITES
		   "\r\n" OC9_DTLS12 REQ_DENC "\r\n", np | CSTP_REQ_NO_COMPRESSION,
		   REQ_A REQ_B OC9_SECRET "X-DTLS-CipherSuite: " OC9_SUITES "\r\n" OC9_DTLS12 "\r\n");
	/* In the middle, at the end, in lower case, LF only, trailing blanks kept. */
	req_expect(REQ_A "X-DTLS-CipherSuite: AES256-SHA:PSK-NEGOTIATE:AES128-SHA\r\n\r\n", np,
		   REQ_A "X-DTLS-CipherSuite: AES256-SHA:AES128-SHA\r\n\r\n");
	req_expect(REQ_A "x-dtls-ciphersuite:AES128-SHA:psk-negotiate  \n\n", np,
		   REQ_A "x-dtls-ciphersuite:AES128-SHA  \n\n");
	/* Twice, and as part of a token (ocserv searches the whole value). */
	req_expect(REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIATE:AES128-SHA:X-PSK-NEGOTIATE\r\n\r\n", np,
		   REQ_A "X-DTLS-CipherSuite: AES128-SHA\r\n\r\n");
	/* Empty tokens are not ours to clean up. */
	req_expect(REQ_A "X-DTLS-CipherSuite: A::PSK-NEGOTIATE:B\r\n\r\n", np,
		   REQ_A "X-DTLS-CipherSuite: A::B\r\n\r\n");
	/* PSK-NEGOTIATE alone: the header goes; the Master-Secret stays. */
	req_expect(REQ_A OC9_SECRET "X-DTLS-CipherSuite: PSK-NEGOTIATE\r\n" OC9_DTLS12 "\r\n", np,
		   REQ_A OC9_SECRET OC9_DTLS12 "\r\n");
	/* No Master-Secret either: nothing asks for DTLS any more. */
	req_expect(REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIATE\r\n\r\n", np, REQ_A "\r\n");
	/* Other headers are untouched: X-DTLS12-CipherSuite, an empty value, a
	 * look-alike name, and the request without the option. */
	req_expect(REQ_A "X-DTLS12-CipherSuite: PSK-NEGOTIATE\r\n"
		   "X-DTLS-CipherSuite:\r\nX-DTLS-CipherSuites: PSK-NEGOTIATE\r\n\r\n", np,
		   REQ_A "X-DTLS12-CipherSuite: PSK-NEGOTIATE\r\n"
		   "X-DTLS-CipherSuite:\r\nX-DTLS-CipherSuites: PSK-NEGOTIATE\r\n\r\n");
	req_expect(REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIATE:AES128-SHA\r\n\r\n", 0,
		   REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIATE:AES128-SHA\r\n\r\n");
	/* A token merely near the name (PSK-NEGOTIAT) stays. */
	req_expect(REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIAT:AES128-SHA\r\n\r\n", np,
		   REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIAT:AES128-SHA\r\n\r\n");

	/* The output never grows: a buffer the size of the input suffices, one
	 * byte less than the output does not. */
	{
		static const char in[] = REQ_A "X-DTLS-CipherSuite: PSK-NEGOTIATE:AES128-SHA\r\n\r\n";
		static const char want[] = REQ_A "X-DTLS-CipherSuite: AES128-SHA\r\n\r\n";
		char out[sizeof(in)];
		size_t n, h;

		CHECK_INT(req_rewrite(in, strlen(in), np, out, strlen(in), &n, &h), CSTP_OK);
		CHECK_INT(n, strlen(want));
		CHECK_INT(req_rewrite(in, strlen(in), np, out, strlen(want) - 1, &n, &h), CSTP_E_SPACE);
		CHECK_INT(req_rewrite(in, strlen(in) - 1, np, out, sizeof(out), &n, &h), CSTP_MORE);
	}
}

/* ---- record stream ---- */

static size_t put_record(uint8_t *p, uint8_t type, const uint8_t *payload, size_t n)
{
	cstp_write_header(p, (enum cstp_type)type, n);
	if (n)
		memcpy(p + CSTP_HDR_LEN, payload, n);
	return CSTP_HDR_LEN + n;
}

/* IPv4 TCP SYN 198.19.0.10 -> 192.0.2.130 with MSS 1460 (checksums are not
 * the parser's business; the bytes are kept as given). */
static const uint8_t syn4[] = {
	0x45, 0, 0, 44, 0, 1, 0x40, 0, 64, 6, 0, 0, 198, 19, 0, 10, 192, 0, 2, 130,
	0x30, 0x39, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x60, 0x02, 0xff, 0xff, 0, 0, 0, 0,
	2, 4, 0x05, 0xb4,
};
/* IPv4 TCP ACK with 4 payload bytes. */
static const uint8_t ack4[] = {
	0x45, 0, 0, 44, 0, 2, 0x40, 0, 64, 6, 0, 0, 198, 19, 0, 10, 192, 0, 2, 130,
	0x30, 0x39, 0, 80, 0, 0, 0, 2, 0, 0, 0, 9, 0x50, 0x10, 0xff, 0xff, 0, 0, 0, 0,
	'd', 'a', 't', 'a',
};
/* IPv4 UDP. */
static const uint8_t udp4[] = {
	0x45, 0, 0, 32, 0, 3, 0, 0, 64, 17, 0, 0, 198, 19, 0, 10, 192, 0, 2, 130,
	0, 53, 0x30, 0x39, 0, 12, 0, 0, 'a', 'b', 'c', 'd',
};
static uint8_t syn6[60 + 4];	/* IPv6 TCP SYN-ACK with MSS 1440 */

static void build_syn6(void)
{
	uint8_t *p = syn6;

	memset(p, 0, sizeof(syn6));
	p[0] = 0x60;
	p[5] = 24;
	p[6] = 6;
	p[7] = 64;
	memcpy(p + 8, "\x20\x01\x0d\xb8\0\0\0\x80\0\0\0\0\0\0\0\x05", 16);
	memcpy(p + 24, "\x20\x01\x0d\xb8\0\0\0\x01\0\0\0\0\0\0\0\x01", 16);
	p[40] = 0;
	p[41] = 80;
	p[52] = 0x60;
	p[53] = 0x12;		/* SYN|ACK */
	p[60] = 2;
	p[61] = 4;
	p[62] = 0x05;
	p[63] = 0xa0;
}

struct run {
	uint8_t out[4096];
	size_t outlen;
	uint8_t pkts[8][128];
	size_t pktlen[8];
	size_t npkts;
	struct cstp_stream s;
	bool error;
	size_t maxkeep;
};

/* The proxy's loop: bytes arrive in the given pieces; kept bytes wait. */
static void run_stream(struct run *r, const uint8_t *in, size_t len, const size_t *cuts, size_t ncuts)
{
	static uint8_t keep[CSTP_RECORD_MAX];
	size_t kl = 0, pos = 0;

	memset(r, 0, sizeof(*r));
	for (size_t c = 0; c <= ncuts && !r->error; c++) {
		size_t end = c < ncuts ? cuts[c] : len;
		memcpy(keep + kl, in + pos, end - pos);
		kl += end - pos;
		pos = end;
		for (;;) {
			struct cstp_event ev;
			enum cstp_ev e = cstp_stream_next(&r->s, keep, kl, &ev);

			if (e == CSTP_EV_ERROR) {
				r->error = true;
				break;
			}
			if (e == CSTP_EV_NEED) {
				if (kl > r->maxkeep)
					r->maxkeep = kl;
				break;
			}
			if (e == CSTP_EV_PACKET && r->npkts < 8) {
				memcpy(r->pkts[r->npkts], keep + ev.pkt_off, ev.pkt_len);
				r->pktlen[r->npkts++] = ev.pkt_len;
			}
			memcpy(r->out + r->outlen, keep, ev.len);
			r->outlen += ev.len;
			memmove(keep, keep + ev.len, kl - ev.len);
			kl -= ev.len;
		}
	}
}

static bool same_run(const struct run *a, const struct run *b)
{
	if (a->outlen != b->outlen || memcmp(a->out, b->out, a->outlen) || a->npkts != b->npkts ||
	    memcmp(&a->s, &b->s, sizeof(a->s)) || a->error != b->error)
		return false;
	for (size_t i = 0; i < a->npkts; i++)
		if (a->pktlen[i] != b->pktlen[i] || memcmp(a->pkts[i], b->pkts[i], a->pktlen[i]))
			return false;
	return true;
}

static void test_stream(void)
{
	static uint8_t st[2048];
	static struct run whole, part;
	size_t n = 0;
	uint8_t comp[20];

	build_syn6();
	for (size_t i = 0; i < sizeof(comp); i++)
		comp[i] = (uint8_t)(i * 37);
	n += put_record(st + n, CSTP_DATA, syn4, sizeof(syn4));
	n += put_record(st + n, CSTP_DATA, ack4, sizeof(ack4));
	n += put_record(st + n, CSTP_DPD_REQ, NULL, 0);
	n += put_record(st + n, CSTP_KEEPALIVE, NULL, 0);
	n += put_record(st + n, CSTP_DATA, syn6, sizeof(syn6));
	n += put_record(st + n, CSTP_DATA, udp4, sizeof(udp4));
	n += put_record(st + n, CSTP_COMPRESSED, comp, sizeof(comp));
	n += put_record(st + n, CSTP_DPD_RESP, NULL, 0);
	n += put_record(st + n, 0x06, (const uint8_t *)"?", 1);
	n += put_record(st + n, CSTP_DISCONNECT, (const uint8_t *)"\xb0", 1);
	n += put_record(st + n, CSTP_TERMINATE, NULL, 0);

	run_stream(&whole, st, n, NULL, 0);
	CHECK(!whole.error);
	CHECK_INT(whole.outlen, n);
	CHECK_MEM(whole.out, st, n);
	CHECK_INT(whole.npkts, 2);
	CHECK(whole.pktlen[0] == sizeof(syn4) && memcmp(whole.pkts[0], syn4, sizeof(syn4)) == 0);
	CHECK(whole.pktlen[1] == sizeof(syn6) && memcmp(whole.pkts[1], syn6, sizeof(syn6)) == 0);
	CHECK_INT(whole.s.records[CSTP_DATA], 4);
	CHECK_INT(whole.s.records[CSTP_DPD_REQ], 1);
	CHECK_INT(whole.s.records[CSTP_DPD_RESP], 1);
	CHECK_INT(whole.s.records[CSTP_KEEPALIVE], 1);
	CHECK_INT(whole.s.records[CSTP_COMPRESSED], 1);
	CHECK_INT(whole.s.records[CSTP_DISCONNECT], 1);
	CHECK_INT(whole.s.records[CSTP_TERMINATE], 1);
	CHECK_INT(whole.s.other, 1);
	CHECK_INT(whole.s.held, 2);
	CHECK_INT(whole.s.bytes, n);
	CHECK_INT(whole.s.data_bytes, sizeof(syn4) + sizeof(ack4) + sizeof(syn6) + sizeof(udp4));

	/* Split in two at every offset. */
	size_t bad = 0, maxkeep = 0;
	for (size_t cut = 0; cut <= n; cut++) {
		run_stream(&part, st, n, &cut, 1);
		bad += !same_run(&whole, &part);
		if (part.maxkeep > maxkeep)
			maxkeep = part.maxkeep;
	}
	CHECK_INT(bad, 0);
	/* Only a SYN's record is ever held back. */
	CHECK(maxkeep < CSTP_HDR_LEN + sizeof(syn6));

	/* One byte at a time, and random pieces. */
	static size_t cuts[2048];
	for (size_t i = 0; i + 1 < n; i++)
		cuts[i] = i + 1;
	run_stream(&part, st, n, cuts, n - 1);
	CHECK(same_run(&whole, &part));
	srand(7);
	bad = 0;
	for (int trial = 0; trial < 500; trial++) {
		size_t nc = 0, at = 0;
		while (nc < 40) {
			at += (size_t)(rand() % 40);
			if (at > n)
				break;
			cuts[nc++] = at;
		}
		run_stream(&part, st, n, cuts, nc);
		bad += !same_run(&whole, &part);
	}
	CHECK_INT(bad, 0);
}

static void test_stream_bad(void)
{
	struct cstp_stream s;
	struct cstp_event ev;
	uint8_t b[CSTP_HDR_LEN + 64];

	memset(&s, 0, sizeof(s));
	CHECK_INT(cstp_stream_next(&s, (const uint8_t *)"G", 1, &ev), CSTP_EV_ERROR);
	CHECK_INT(cstp_stream_next(&s, (const uint8_t *)"STF\x02", 4, &ev), CSTP_EV_ERROR);
	CHECK_INT(cstp_stream_next(&s, (const uint8_t *)"STF", 3, &ev), CSTP_EV_NEED);
	CHECK_INT(ev.need, 8);
	CHECK_INT(cstp_stream_next(&s, (const uint8_t *)"STF\x01\x00\x00\x07\x01", 8, &ev), CSTP_EV_ERROR);
	CHECK_INT(cstp_stream_next(&s, (const uint8_t *)"", 0, &ev), CSTP_EV_NEED);

	/* A DATA header promising 65535 bytes of SYN: held up to CSTP_RECORD_MAX. */
	cstp_write_header(b, CSTP_DATA, 65535);
	memcpy(b + CSTP_HDR_LEN, syn4, sizeof(syn4));
	CHECK_INT(cstp_stream_next(&s, b, CSTP_HDR_LEN + sizeof(syn4), &ev), CSTP_EV_NEED);
	CHECK_INT(ev.need, CSTP_RECORD_MAX);
	/* The same with its first 20 bytes only: 14 more tell. */
	CHECK_INT(cstp_stream_next(&s, b, CSTP_HDR_LEN + 20, &ev), CSTP_EV_NEED);
	CHECK_INT(ev.need, CSTP_HDR_LEN + 34);
	/* An ACK flows through at once, the rest of its record after it. */
	memcpy(b + CSTP_HDR_LEN, ack4, sizeof(ack4));
	CHECK_INT(cstp_stream_next(&s, b, CSTP_HDR_LEN + sizeof(ack4), &ev), CSTP_EV_FORWARD);
	CHECK_INT(ev.len, CSTP_HDR_LEN + sizeof(ack4));
	CHECK_INT(s.left, 65535 - sizeof(ack4));
	CHECK_INT(cstp_stream_next(&s, b, 10, &ev), CSTP_EV_FORWARD);
	CHECK_INT(ev.len, 10);
	CHECK_INT(s.records[CSTP_DATA], 1);
}

/* The headend's DPD and keepalive, and the idle limit they make. */
/* ---- the streaming head ---- */

struct run_head {
	enum cstp_res res;	/* the finish's result, or the feed's error */
	size_t used;		/* input bytes the head took */
	size_t len;		/* output bytes */
	unsigned removed;	/* request: lines removed or shortened */
	struct cstp_offer o;
};

/* Stream in through a head rewriter: a first piece of cut bytes, then pieces
 * of step bytes (0: the rest at once), then finish; the output of every call
 * is appended to out. */
static void head_run(bool response, const struct cstp_policy *pol, unsigned opts, const uint8_t *in,
		     size_t len, size_t cut, size_t step, uint8_t *out, size_t cap, struct run_head *rh)
{
	static uint8_t hold[CSTP_HOLD_MAX];
	struct cstp_head h;
	size_t pos = 0, n = 0, used, olen;
	enum cstp_res r;

	memset(rh, 0, sizeof(*rh));
	cstp_head_init(&h, response, hold);
	for (bool first = true;; first = false) {
		size_t end = first ? cut : step ? pos + step : len;

		if (end > len)
			end = len;
		r = cstp_head_feed(&h, in + pos, end - pos, &used, out + n, cap - n, &olen);
		n += olen;
		if (r == CSTP_MORE && used != end - pos)
			r = CSTP_E_SPACE;	/* MORE must take everything */
		pos += used;
		if (r != CSTP_MORE || pos == len)
			break;
	}
	rh->used = pos;
	rh->res = r;
	rh->len = n;
	if (r != CSTP_OK)
		return;
	if (response)
		r = cstp_head_finish_response(&h, pol, out + n, cap - n, &olen, &rh->o);
	else
		r = cstp_head_finish_request(&h, opts, out + n, cap - n, &olen, &rh->removed);
	rh->res = r;
	rh->len = n + olen;
}

static bool same_head(const struct run_head *a, const uint8_t *ao, const struct run_head *b,
		     const uint8_t *bo)
{
	return a->res == b->res && a->used == b->used && a->len == b->len &&
	       memcmp(ao, bo, a->len) == 0 && a->removed == b->removed &&
	       a->o.status == b->o.status && a->o.sent_mtu == b->o.sent_mtu &&
	       a->o.sent_dtls_mtu == b->o.sent_dtls_mtu && a->o.cstp_mtu == b->o.cstp_mtu &&
	       a->o.has_addr4 == b->o.has_addr4 && a->o.has_addr6 == b->o.has_addr6 &&
	       memcmp(a->o.addr6, b->o.addr6, 16) == 0 && a->o.removed == b->o.removed &&
	       a->o.rewritten == b->o.rewritten && a->o.head_len == b->o.head_len &&
	       a->o.dtls_port == b->o.dtls_port && a->o.has_session_id == b->o.has_session_id &&
	       a->o.dpd == b->o.dpd && a->o.keepalive == b->o.keepalive;
}

/* Cut at every offset (or every stride-th), and fed byte by byte: the same
 * output and offer as in one piece. */
static void head_splits(bool response, const struct cstp_policy *pol, unsigned opts,
			const char *in, size_t len, size_t stride)
{
	static uint8_t whole_out[BIG], part_out[BIG];
	struct run_head whole, part;
	size_t bad = 0;
	const uint8_t *u = (const uint8_t *)in;

	head_run(response, pol, opts, u, len, len, 0, whole_out, BIG, &whole);
	for (size_t cut = 0; cut <= len; cut += stride) {
		head_run(response, pol, opts, u, len, cut, 0, part_out, BIG, &part);
		bad += !same_head(&whole, whole_out, &part, part_out);
	}
	CHECK_INT(bad, 0);
	head_run(response, pol, opts, u, len, 1, 1, part_out, BIG, &part);
	CHECK(same_head(&whole, whole_out, &part, part_out));
	head_run(response, pol, opts, u, len, 7, 16384, part_out, BIG, &part);
	CHECK(same_head(&whole, whole_out, &part, part_out));
}

static size_t count(const uint8_t *p, size_t n, const char *what)
{
	size_t k = 0, l = strlen(what);

	for (size_t i = 0; i + l <= n; i++)
		k += memcmp(p + i, what, l) == 0;
	return k;
}

static size_t add_routes(char *b, size_t k, int n4, int n6)
{
	for (int i = 0; i < n4; i++)
		k += (size_t)sprintf(b + k, "X-CSTP-Split-Include: 10.%d.%d.0/255.255.255.0\r\n",
				     i / 256, i % 256);
	for (int i = 0; i < n6; i++)
		k += (size_t)sprintf(b + k, "X-CSTP-Split-Include-IP6: 2001:db8:%x::/48\r\n", i);
	return k;
}

static void test_head_stream(void)
{
	static const struct cstp_policy pols[] = {
		{ .dtls = DTLS_RELAY, .mtu = 1400, .dtls_port = 4443 },
		{ .dtls = DTLS_BLOCK, .mtu = 1300 },
		{ .dtls = DTLS_PASS },
	};
	static char in[BIG];
	static uint8_t out[BIG], one[BIG];
	struct run_head rh;
	struct cstp_offer o;
	size_t k, n;

	/* A head of everything at once: an interim 100, 300 routes, a line and
	 * a name longer than CSTP_KEEP, LF-only lines, DTLS lines interleaved,
	 * tunnel bytes behind it. Every split point, each policy. */
	k = (size_t)sprintf(in, "HTTP/1.1 100 Continue\r\nX-DTLS-Port: 1\r\nX-Note: a\r\n\r\n");
	k += (size_t)sprintf(in + k, "%s", OC_HEAD);
	k = add_routes(in, k, 100, 50);
	k += (size_t)sprintf(in + k, "%s", OC_DTLS_A);
	k += (size_t)sprintf(in + k, "X-CSTP-Post-Auth-XML: <config-auth>");
	memset(in + k, 'x', 600);
	k += 600;
	k += (size_t)sprintf(in + k, "</config-auth>\r\nX-");
	memset(in + k, 'N', 300);
	k += 300;
	k += (size_t)sprintf(in + k, ": long name\nx-dtls-port:443\nX-CSTP-Address-IP6: 2001:db8::7/64\n"
			     OC_DTLS_B "X-DTLS-MTU: 1434\r\n" OC_BASE "X-CSTP-MTU: 1434\r\n" OC_TAIL);
	size_t head = k;
	memcpy(in + k, "STF\x01\x00\x00\x07\x00", 8);
	k += 8;
	for (size_t i = 0; i < 3; i++) {
		head_splits(true, &pols[i], 0, in, k, i == 2 ? 5 : 1);
		CHECK_INT(cstp_rewrite_response((const uint8_t *)in, k, &pols[i], one, BIG, &n, &o),
			  CSTP_OK);
		head_run(true, &pols[i], 0, (const uint8_t *)in, k, 100, 3, out, BIG, &rh);
		CHECK_INT(rh.res, CSTP_OK);
		CHECK_INT(rh.used, head);
		CHECK_INT(o.head_len, head);
		CHECK(rh.len == n && memcmp(out, one, n) == 0);
		CHECK_INT(o.status, 200);
		CHECK(o.has_addr4 && o.has_addr6);
		CHECK_INT(count(out, n, "Split-Include"), 151);
		/* The interim answer passes, but for the lines a rewrite may touch. */
		CHECK_MEM(out, "HTTP/1.1 100 Continue\r\nX-Note: a\r\n\r\nHTTP/1.1 200", 47);
		CHECK_INT(count(out, n, "X-DTLS-Port: 1\r\n"), 0);
	}
	CHECK_INT(count(one, n, "X-DTLS"), 7);	/* pass: as sent, but for the interim's */
	head_run(true, &pols[1], 0, (const uint8_t *)in, k, k, 0, out, BIG, &rh);
	CHECK_INT(count(out, rh.len, "X-DTLS"), 0);
	CHECK_INT(count(out, rh.len, "X-CSTP-MTU: 1300\r\n\r\n"), 1);
	head_run(true, &pols[0], 0, (const uint8_t *)in, k, k, 0, out, BIG, &rh);
	CHECK_INT(count(out, rh.len, "x-dtls-port:4443\n"), 1);
	CHECK_INT(count(out, rh.len, "X-DTLS-MTU: 1400\r\nX-CSTP-MTU: 1400\r\n\r\n"), 1);
	CHECK_INT(rh.o.rewritten, 3);

	/* An ASA's worst: 2 x 2,500 routes, a 100 KB X-CSTP-Post-Auth-XML line,
	 * twenty 2,000-byte custom headers; every 997th split, 1-byte pieces. */
	k = (size_t)sprintf(in, "%s", ASA_A);
	k = add_routes(in, k, 2500, 2500);
	k += (size_t)sprintf(in + k, "X-CSTP-Post-Auth-XML: <?xml version=\"1.0\"?><config-auth>");
	memset(in + k, 'p', 100000);
	k += 100000;
	k += (size_t)sprintf(in + k, "</config-auth>\r\n");
	for (int i = 0; i < 20; i++) {
		k += (size_t)sprintf(in + k, "X-CSTP-Custom-%02d: ", i);
		memset(in + k, 'c', 2000);
		k += 2000;
		k += (size_t)sprintf(in + k, "\r\n");
	}
	k += (size_t)sprintf(in + k, "X-CSTP-MTU: 1380\r\n" ASA_B ASA_SID "X-DTLS-Port: 444\r\n" ASA_C
			     "X-DTLS-MTU: 1418\r\n\r\n");
	CHECK(k > 300000);
	for (size_t i = 0; i < 3; i++)
		head_splits(true, &pols[i], 0, in, k, 1999);
	CHECK_INT(cstp_rewrite_response((const uint8_t *)in, k, &pols[1], one, BIG, &n, &o), CSTP_OK);
	CHECK_INT(count(one, n, "Split-Include"), 5000);
	CHECK_INT(count(one, n, "X-DTLS"), 0);
	CHECK_INT(o.sent_mtu, 1300);
	CHECK_INT(n, k - (strlen(ASA_SID) + strlen(ASA_C) + strlen("X-DTLS-Port: 444\r\n") +
			  strlen("X-DTLS-MTU: 1418\r\n")));
	/* Pass: the same bytes, the held lines last. */
	CHECK_INT(cstp_rewrite_response((const uint8_t *)in, k, &pols[2], one, BIG, &n, &o), CSTP_OK);
	CHECK_INT(n, k);
	CHECK_MEM(one, in, strlen(ASA_A) + 5000 * 40);

	/* A request: empty lines before it (RFC 9112), a long cookie, many
	 * X-AnyConnect headers, the DTLS offer. Every split point. */
	k = (size_t)sprintf(in, "\r\n\r\n" REQ_A "Cookie: webvpnc=");
	memset(in + k, 'k', 9000);
	k += 9000;
	k += (size_t)sprintf(in + k, "\r\n" REQ_ENC);
	for (int i = 0; i < 200; i++)
		k += (size_t)sprintf(in + k, "X-AnyConnect-Platform-%d: linux-64\r\n", i);
	k += (size_t)sprintf(in + k, REQ_B REQ_DTLS REQ_DENC "\r\n");
	static const unsigned optsets[] = {
		0, CSTP_REQ_NO_COMPRESSION | CSTP_REQ_NO_PSK, CSTP_REQ_NO_COMPRESSION | CSTP_REQ_NO_DTLS,
	};
	for (size_t i = 0; i < 3; i++)
		head_splits(false, NULL, optsets[i], in, k, 1);
	head_run(false, NULL, optsets[2], (const uint8_t *)in, k, k, 0, out, BIG, &rh);
	CHECK_INT(rh.res, CSTP_OK);
	CHECK_INT(rh.used, k);
	CHECK_INT(rh.removed, 5);
	CHECK_MEM(out, REQ_A, strlen(REQ_A));	/* the empty lines went */
	CHECK_INT(count(out, rh.len, "X-DTLS"), 0);
	CHECK_INT(count(out, rh.len, "Accept-Encoding"), 0);
	CHECK_INT(rh.len, k - 4 - strlen(REQ_ENC REQ_DTLS REQ_DENC));
	head_run(false, NULL, optsets[1], (const uint8_t *)in, k, k, 0, out, BIG, &rh);
	CHECK_INT(rh.removed, 3);
	CHECK_INT(count(out, rh.len, "PSK-NEGOTIATE"), 0);
	CHECK_INT(count(out, rh.len, "X-DTLS-Master-Secret"), 1);

	/* What a streaming caller holds: this struct and CSTP_HOLD_MAX. */
	CHECK(sizeof(struct cstp_head) < 1024);
	/* A head that stops early is incomplete, and says so at the finish. */
	head_run(true, &pols[0], 0, (const uint8_t *)oc_legacy, strlen(oc_legacy) - 1, 5, 0, out,
		 BIG, &rh);
	CHECK_INT(rh.res, CSTP_MORE);
}

static void test_quiet(void)
{
	struct cstp_offer o;
	static const struct {
		const char *lines;
		unsigned dpd, keepalive, limit;	/* limit with idle_timeout 300 */
	} cases[] = {
		{ "X-CSTP-DPD: 90\r\nX-CSTP-Keepalive: 32400\r\n", 90, 32400, 300 },
		{ "X-CSTP-DPD: 1800\r\nX-CSTP-Keepalive: 32400\r\n", 1800, 32400, 5400 },
		{ "x-cstp-keepalive: 200\r\n", 0, 200, 600 },
		{ "X-CSTP-DPD: 30\r\nX-CSTP-Keepalive: 20\r\n", 30, 20, 300 },
		{ "", 0, 0, 0 },
		{ "X-CSTP-DPD: none\r\n", 0, 0, 0 },
		{ "X-CSTP-DPD: 0\r\nX-CSTP-Keepalive: 600\r\n", 0, 600, 1800 },
		{ "X-CSTP-DPD: 86401\r\n", 0, 0, 0 },
		{ "X-CSTP-DPD: 86400\r\n", 86400, 0, 259200 },
		{ "X-CSTP-DPD: 99999999999999999999\r\n", 0, 0, 0 },
		{ "X-DTLS-DPD: 5\r\nX-CSTP-DPD: 40\r\nX-CSTP-DPD: 60\r\n", 60, 0, 300 },
	};
	char in[512];
	uint8_t out[1024];
	size_t outlen;
	const struct cstp_policy pol = { .dtls = DTLS_RELAY, .mtu = 1400 };

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		snprintf(in, sizeof(in), "HTTP/1.1 200 CONNECTED\r\n%sX-CSTP-MTU: 1400\r\n\r\n",
			 cases[i].lines);
		CHECK_INT(cstp_rewrite_response((const uint8_t *)in, strlen(in), &pol, out, sizeof(out),
						&outlen, &o), CSTP_OK);
		CHECK_INT(o.dpd, cases[i].dpd);
		CHECK_INT(o.keepalive, cases[i].keepalive);
		CHECK_INT(cstp_quiet_limit(&o, 300), cases[i].limit);
		/* The headers pass unchanged: a bad value is nobody's error here. */
		CHECK_INT(outlen, strlen(in));
		CHECK_MEM(out, hoist(in, true), strlen(in));
	}
	/* idle_timeout is the floor. */
	o = (struct cstp_offer){ .dpd = 30 };
	CHECK_INT(cstp_quiet_limit(&o, 1000), 1000);
	CHECK_INT(cstp_quiet_limit(&o, 1), 90);
}

/* mode = observe: the group's rewrite is decided and only reported
 * (would_rewrite); with h.observe set before the first byte the answer goes
 * byte for byte, cut anywhere; without it, the held lines move to the end of
 * the head, with their values as sent. */
static void observe_run(const char *in, const struct cstp_policy *pol, size_t step,
			uint8_t *out, size_t *outlen, struct cstp_offer *o, enum cstp_res *res)
{
	static uint8_t hold[CSTP_HOLD_MAX];
	struct cstp_head h;
	size_t len = strlen(in), pos = 0, n = 0, used, olen;
	enum cstp_res r = CSTP_MORE;

	cstp_head_init(&h, true, hold);
	h.observe = true;
	while (r == CSTP_MORE && pos < len) {
		size_t k = step && len - pos > step ? step : len - pos;

		r = cstp_head_feed(&h, (const uint8_t *)in + pos, k, &used, out + n, BIG - n, &olen);
		n += olen;
		pos += used;
	}
	if (r == CSTP_OK)
		r = cstp_head_finish_response(&h, pol, out + n, BIG - n, &olen, o);
	*res = r;
	*outlen = r == CSTP_OK || r == CSTP_REFUSED ? n + olen : 0;
}

static void test_observe(void)
{
	static char out[BIG];
	static const char interim[] = "HTTP/1.1 100 Continue\r\nX-DTLS-MTU: 1\r\n\r\n";
	char both[sizeof(interim) + sizeof(asa)];
	struct cstp_policy relay = { .dtls = DTLS_RELAY, .mtu = 1500, .dtls_port = 443,
				     .observe = true };
	struct cstp_policy pass = { .dtls = DTLS_PASS, .observe = true };
	struct cstp_offer o;
	enum cstp_res r;
	size_t n;

	for (size_t step = 0; step <= 7; step += 7) {
		memset(out, 0, 64);
		observe_run(asa, &relay, step, (uint8_t *)out, &n, &o, &r);
		CHECK_INT(r, CSTP_OK);
		CHECK(n == strlen(asa) && memcmp(out, asa, n) == 0);
		CHECK(o.observed && o.would_rewrite);
		CHECK_INT(o.sent_mtu, 1380);
		CHECK_INT(o.sent_dtls_mtu, 1418);
		CHECK(!o.port_rewritten);
		CHECK_INT(o.head_len, strlen(asa));
	}
	/* An interim answer first: it passes whole too, its X-DTLS line included. */
	snprintf(both, sizeof(both), "%s%s", interim, asa);
	observe_run(both, &relay, 1, (uint8_t *)out, &n, &o, &r);
	CHECK_INT(r, CSTP_OK);
	CHECK(n == strlen(both) && memcmp(out, both, n) == 0);
	CHECK(o.would_rewrite);
	/* A block group would take every X-DTLS line: the same, all kept. */
	relay.dtls = DTLS_BLOCK;
	observe_run(asa, &relay, 0, (uint8_t *)out, &n, &o, &r);
	CHECK(n == strlen(asa) && memcmp(out, asa, n) == 0);
	CHECK(o.would_rewrite && !o.dtls_removed);
	/* Nothing to rewrite: pass, or MTUs equal and inside the group's. */
	observe_run(asa, &pass, 0, (uint8_t *)out, &n, &o, &r);
	CHECK(n == strlen(asa) && o.observed && !o.would_rewrite);
	observe_run(oc_legacy, &pass, 3, (uint8_t *)out, &n, &o, &r);
	CHECK(n == strlen(oc_legacy) && memcmp(out, oc_legacy, n) == 0 && !o.would_rewrite);
	/* Known to observe only at the end: hoisted, values as sent. */
	relay.dtls = DTLS_RELAY;
	CHECK_INT(cstp_rewrite_response((const uint8_t *)asa, strlen(asa), &relay, (uint8_t *)out,
					BIG, &n, &o), CSTP_OK);
	CHECK(n == strlen(asa) && memcmp(out, hoist(asa, true), n) == 0);
	CHECK(o.observed && o.would_rewrite);
	CHECK_INT(o.sent_dtls_mtu, 1418);
	/* A value enforce would refuse is no reason to close an observed tunnel. */
	observe_run("HTTP/1.1 200 OK\r\nX-CSTP-MTU: x\r\n\r\n", &relay, 0, (uint8_t *)out, &n, &o,
		    &r);
	CHECK_INT(r, CSTP_OK);
	CHECK(!o.would_rewrite);
}

int main(void)
{
	test_quiet();
	test_legacy();
	test_psk();
	test_asa();
	test_observe();
	test_forms();
	test_hostile();
	test_request();
	test_request_psk();
	test_stream();
	test_stream_bad();
	test_head_stream();
	return t_done("test_cstp");
}
