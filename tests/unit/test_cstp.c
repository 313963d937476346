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

static enum cstp_res rw(const char *in, size_t inlen, enum dtls_mode m, unsigned mtu, uint16_t port,
			char *out, size_t *outlen, struct cstp_offer *o)
{
	struct cstp_policy p = { .dtls = m, .mtu = mtu, .dtls_port = port };

	return cstp_rewrite_response((const uint8_t *)in, inlen, &p, (uint8_t *)out, 70000, outlen, o);
}

/* A rewrite must give exactly want, and re-parse in pass mode unchanged. */
static void expect(const char *in, enum dtls_mode m, unsigned mtu, uint16_t port, const char *want,
		   struct cstp_offer *o)
{
	static char out[70000], again[70000];
	size_t n, n2;
	struct cstp_offer o2;

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
	static char out[70000];
	struct cstp_offer o;
	size_t n;

	return rw(in, len, DTLS_BLOCK, 1300, 0, out, &n, &o);
}

static void test_hostile(void)
{
	static char big[80000];
	static char out[70000];
	struct cstp_offer o;
	size_t n, k;

	/* Incomplete: every proper prefix asks for more. */
	for (k = 0; k < strlen(oc_legacy); k++)
		if (rw_block(oc_legacy, k) != CSTP_MORE)
			break;
	CHECK_INT(k, strlen(oc_legacy));

	/* A line over 8 KiB. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-Long: ");
	memset(big + k, 'a', 9000);
	k += 9000;
	CHECK_INT(rw_block(big, k), CSTP_E_LINE);
	k += (size_t)sprintf(big + k, "\r\n\r\n");
	CHECK_INT(rw_block(big, k), CSTP_E_LINE);

	/* 101 headers; 100 are fine. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\n");
	for (int i = 0; i < 99; i++)
		k += (size_t)sprintf(big + k, "X-H%d: v\r\n", i);
	CHECK_INT(rw_block(big, k + (size_t)sprintf(big + k, "\r\n")), CSTP_OK);
	k += (size_t)sprintf(big + k, "X-Last: v\r\n\r\n");
	CHECK_INT(rw_block(big, k), CSTP_E_HEADERS);

	/* 90 headers of 800 bytes: over 64 KiB in all. */
	k = (size_t)sprintf(big, "HTTP/1.1 200 CONNECTED\r\n");
	for (int i = 0; i < 90; i++) {
		k += (size_t)sprintf(big + k, "X-H%02d: ", i);
		memset(big + k, 'b', 790);
		k += 790;
		k += (size_t)sprintf(big + k, "\r\n");
	}
	CHECK_INT(rw_block(big, k), CSTP_E_HEAD);
	k += (size_t)sprintf(big + k, "\r\n");
	CHECK_INT(rw_block(big, k), CSTP_E_HEAD);

	const char nul[] = "HTTP/1.1 200 CONNECTED\r\nX-CSTP-MTU: 1400\r\nX-A: a\0b\r\n\r\n";
	CHECK_INT(rw_block(nul, sizeof(nul) - 1), CSTP_E_SYNTAX);
#define BAD(s, r) CHECK_INT(rw_block(s, strlen(s)), r)
	BAD("HTTP/1.1 200 CONNECTED\r\nX-A: a\rX-DTLS-Port: 443\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("HTTP/1.1\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
	BAD("\r\nX-CSTP-MTU: 1400\r\n\r\n", CSTP_E_SYNTAX);
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

	CHECK_INT(req_rewrite(req, strlen(req), 0, out, sizeof(out), &n, &h), CSTP_OK);
	CHECK_INT(h, strlen(req));
	CHECK(n == strlen(req) && memcmp(out, req, n) == 0);

	CHECK_INT(req_rewrite(req, strlen(req), CSTP_REQ_NO_COMPRESSION, out, sizeof(out), &n, &h),
		  CSTP_OK);
	const char *want = REQ_A REQ_B REQ_DTLS "\r\n";
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
		CHECK_MEM(out, in, strlen(in));
	}
	/* idle_timeout is the floor. */
	o = (struct cstp_offer){ .dpd = 30 };
	CHECK_INT(cstp_quiet_limit(&o, 1000), 1000);
	CHECK_INT(cstp_quiet_limit(&o, 1), 90);
}

int main(void)
{
	test_quiet();
	test_legacy();
	test_psk();
	test_asa();
	test_forms();
	test_hostile();
	test_request();
	test_request_psk();
	test_stream();
	test_stream_bad();
	return t_done("test_cstp");
}
