/* DTLS record/ClientHello parser and the relay/block/pass decision table. */
#include <stdint.h>
#include <string.h>

#include "clamp/dtls.h"
#include "policy/policy.h"
#include "tests/unit/t.h"

/* openconnect legacy (Cisco DTLS 0.9) hello: record and hello version 0x0100,
 * resuming the X-DTLS-Session-ID 3f1a6c0b...3c4d, one cipher AES128-SHA,
 * null compression, no extensions. */
static const uint8_t legacy_hello[99] = {
	0x16, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x56, 0x01, 0x00, 0x00, 0x4a, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x4a, 0x01, 0x00, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
	0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54,
	0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x20,
	0x3f, 0x1a, 0x6c, 0x0b, 0x9e, 0x2d, 0x47, 0xa5, 0x8c, 0x13, 0xf0, 0xe6,
	0xd2, 0xb4, 0xa7, 0x91, 0x5e, 0x08, 0xc3, 0xd6, 0xf1, 0xa2, 0xb4, 0xc5,
	0xd6, 0xe7, 0xf8, 0x09, 0x1a, 0x2b, 0x3c, 0x4d, 0x00, 0x00, 0x02, 0x00,
	0x2f, 0x01, 0x00,
};

/* openconnect PSK-NEGOTIATE hello: DTLS 1.0 record, client_version DTLS 1.2,
 * a fake session ID, four PSK suites, and extensions renegotiation_info,
 * extended_master_secret, App-ID (48018: 32 bytes 9c4e1b7a...f8e1),
 * encrypt_then_mac. */
static const uint8_t psk_hello[157] = {
	0x16, 0xfe, 0xff, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x90, 0x01, 0x00, 0x00, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
	0x84, 0xfe, 0xfd, 0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47, 0x48,
	0x49, 0x4a, 0x4b, 0x4c, 0x4d, 0x4e, 0x4f, 0x50, 0x51, 0x52, 0x53, 0x54,
	0x55, 0x56, 0x57, 0x58, 0x59, 0x5a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f, 0x20,
	0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99, 0xaa, 0xbb,
	0xcc, 0xdd, 0xee, 0xff, 0x00, 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77,
	0x88, 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x00, 0x00, 0x08, 0x00,
	0xa8, 0x00, 0xa9, 0x00, 0xae, 0x00, 0xaf, 0x01, 0x00, 0x00, 0x32, 0xff,
	0x01, 0x00, 0x01, 0x00, 0x00, 0x17, 0x00, 0x00, 0xbb, 0x92, 0x00, 0x21,
	0x20, 0x9c, 0x4e, 0x1b, 0x7a, 0x20, 0xd3, 0x5f, 0x8e, 0x61, 0xc0, 0xa4,
	0xb2, 0xd9, 0xe7, 0xf3, 0x01, 0x58, 0xa6, 0xc2, 0xe4, 0xb0, 0xd9, 0xf7,
	0x1a, 0x3c, 0x5e, 0x70, 0x92, 0xb4, 0xd6, 0xf8, 0xe1, 0x00, 0x16, 0x00,
	0x00,
};

static const uint8_t legacy_sid[32] = {
	0x3f, 0x1a, 0x6c, 0x0b, 0x9e, 0x2d, 0x47, 0xa5, 0x8c, 0x13, 0xf0, 0xe6, 0xd2, 0xb4, 0xa7, 0x91,
	0x5e, 0x08, 0xc3, 0xd6, 0xf1, 0xa2, 0xb4, 0xc5, 0xd6, 0xe7, 0xf8, 0x09, 0x1a, 0x2b, 0x3c, 0x4d,
};
static const uint8_t app_id[32] = {
	0x9c, 0x4e, 0x1b, 0x7a, 0x20, 0xd3, 0x5f, 0x8e, 0x61, 0xc0, 0xa4, 0xb2, 0xd9, 0xe7, 0xf3, 0x01,
	0x58, 0xa6, 0xc2, 0xe4, 0xb0, 0xd9, 0xf7, 0x1a, 0x3c, 0x5e, 0x70, 0x92, 0xb4, 0xd6, 0xf8, 0xe1,
};

static void put16(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 8); p[1] = (uint8_t)v; }
static void put24(uint8_t *p, unsigned v) { p[0] = (uint8_t)(v >> 16); put16(p + 1, v); }

/* An independent ClientHello writer: record + handshake header around a body
 * of version, random 0x40.., session ID, empty cookie, suites, null
 * compression and an optional extensions block (ext == NULL: none). */
static size_t mk_hello(uint8_t *out, unsigned recver, unsigned hellover, const uint8_t *sid,
		       size_t sidlen, const uint8_t *suites, size_t nsuites,
		       const uint8_t *ext, size_t extlen)
{
	size_t n = 25, body;

	put16(out + n, hellover);
	for (int i = 0; i < 32; i++)
		out[n + 2 + i] = (uint8_t)(0x40 + i);
	n += 34;
	out[n++] = (uint8_t)sidlen;
	memcpy(out + n, sid, sidlen);
	n += sidlen;
	out[n++] = 0;				/* cookie */
	put16(out + n, (unsigned)nsuites);
	memcpy(out + n + 2, suites, nsuites);
	n += 2 + nsuites;
	out[n++] = 1;
	out[n++] = 0;
	if (ext) {
		put16(out + n, (unsigned)extlen);
		memcpy(out + n + 2, ext, extlen);
		n += 2 + extlen;
	}
	body = n - 25;
	out[0] = 22;
	put16(out + 1, recver);
	memset(out + 3, 0, 8);
	put16(out + 11, (unsigned)(n - 13));
	out[13] = 1;
	put24(out + 14, (unsigned)body);
	put16(out + 17, 0);
	put24(out + 19, 0);
	put24(out + 22, (unsigned)body);
	return n;
}

static void test_fixtures(void)
{
	uint8_t buf[512];
	struct dtls_info in;
	static const uint8_t aes128sha[] = { 0x00, 0x2f };

	/* The hex fixtures agree with the independent writer. */
	CHECK_INT(mk_hello(buf, 0x0100, 0x0100, legacy_sid, 32, aes128sha, 2, NULL, 0),
		  sizeof(legacy_hello));
	CHECK_MEM(buf, legacy_hello, sizeof(legacy_hello));

	CHECK_INT(dtls_parse(&in, legacy_hello, sizeof(legacy_hello)), DTLS_CLIENT_HELLO);
	CHECK_INT(in.type, 22);
	CHECK_INT(in.version, DTLS_VERSION_CISCO);
	CHECK_INT(in.hello_version, DTLS_VERSION_CISCO);
	CHECK_INT(in.length, 86);
	CHECK_INT(in.nrecords, 1);
	CHECK_INT(in.session_id_len, 32);
	CHECK(in.session_id == legacy_hello + 60);
	CHECK_MEM(in.session_id, legacy_sid, 32);
	CHECK(in.app_id == NULL);
	CHECK(!in.id_is_app);
	CHECK(!in.hello_partial);
	CHECK_INT(in.id_len, 32);
	CHECK_MEM(in.id, legacy_sid, 32);

	CHECK_INT(dtls_parse(&in, psk_hello, sizeof(psk_hello)), DTLS_CLIENT_HELLO);
	CHECK_INT(in.version, DTLS_VERSION_1_0);
	CHECK_INT(in.hello_version, DTLS_VERSION_1_2);
	CHECK_INT(in.session_id_len, 32);
	CHECK(in.session_id == psk_hello + 60);
	CHECK_INT(in.app_id_len, 32);
	CHECK(in.app_id == psk_hello + 121);
	CHECK_MEM(in.app_id, app_id, 32);
	CHECK(in.id_is_app);
	CHECK(in.id == in.app_id);
	CHECK_INT(in.id_len, 32);
}

static void test_record_versions(void)
{
	static const unsigned versions[] = { 0x0100, 0xfeff, 0xfefd };
	uint8_t rec[13 + 40];
	struct dtls_info in;

	for (size_t i = 0; i < 3; i++) {
		/* application data, epoch 1, seq 0x0000_0102_0304_0506 */
		rec[0] = 23;
		put16(rec + 1, versions[i]);
		put16(rec + 3, 1);
		rec[5] = 0x01; rec[6] = 0x02; rec[7] = 0x03; rec[8] = 0x04; rec[9] = 0x05; rec[10] = 0x06;
		put16(rec + 11, 40);
		memset(rec + 13, 0xa5, 40);
		CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_RECORD);
		CHECK_INT(in.version, versions[i]);
		CHECK_INT(in.type, 23);
		CHECK_INT(in.epoch, 1);
		CHECK(in.seq == 0x010203040506ull);
		CHECK_INT(in.length, 40);
		CHECK(in.id == NULL);
		/* Trailing garbage shorter than a header: malformed. */
		CHECK_INT(dtls_parse(&in, rec, sizeof(rec) - 1), DTLS_MALFORMED);
	}
	/* TLS 1.2 record version, and a byte that is no content type. */
	put16(rec + 1, 0x0303);
	CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_NOT);
	put16(rec + 1, 0xfefd);
	rec[0] = 0x45;				/* an IPv4 header, say */
	CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_NOT);
	rec[0] = 19;
	CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_NOT);
	rec[0] = 26;
	CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_NOT);
	/* Change cipher spec, alert: records. */
	rec[0] = 20;
	CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_RECORD);
	rec[0] = 21;
	CHECK_INT(dtls_parse(&in, rec, sizeof(rec)), DTLS_RECORD);
	CHECK_INT(dtls_parse(&in, rec, 0), DTLS_NOT);
	/* Two bytes: plausible DTLS version start or not. */
	rec[1] = 0x03;
	CHECK_INT(dtls_parse(&in, rec, 2), DTLS_NOT);
	rec[1] = 0xfe;
	CHECK_INT(dtls_parse(&in, rec, 2), DTLS_MALFORMED);
}

static void test_truncation(void)
{
	struct dtls_info in;

	/* Every cut of a one-record datagram leaves the record length pointing
	 * past the end (or the header incomplete). */
	for (size_t n = 1; n < sizeof(legacy_hello); n++)
		CHECK_INT(dtls_parse(&in, legacy_hello, n), DTLS_MALFORMED);
	for (size_t n = 1; n < sizeof(psk_hello); n++)
		CHECK_INT(dtls_parse(&in, psk_hello, n), DTLS_MALFORMED);
	CHECK_INT(dtls_parse(&in, legacy_hello, 0), DTLS_NOT);
}

/* A copy of a fixture with one byte changed. */
static enum dtls_parse with_byte(const uint8_t *fix, size_t len, size_t off, uint8_t v,
				 struct dtls_info *in)
{
	uint8_t buf[512];

	memcpy(buf, fix, len);
	buf[off] = v;
	return dtls_parse(in, buf, len);
}

static void test_malformed(void)
{
	struct dtls_info in;
	uint8_t buf[512];
	size_t L = sizeof(legacy_hello), P = sizeof(psk_hello);

	/* Record length larger than the datagram, or than RFC 6347 allows. */
	CHECK_INT(with_byte(legacy_hello, L, 12, 0x57, &in), DTLS_MALFORMED);
	CHECK_INT(with_byte(legacy_hello, L, 11, 0xff, &in), DTLS_MALFORMED);
	memset(buf, 0, sizeof(buf));
	buf[0] = 23; put16(buf + 1, 0xfefd); put16(buf + 11, 0);
	CHECK_INT(dtls_parse(&in, buf, 13), DTLS_RECORD);	/* empty app data record */
	/* Handshake: fragment length beyond the record, offset+length beyond
	 * the message, record too short for a handshake header. */
	CHECK_INT(with_byte(legacy_hello, L, 24, 0x4b, &in), DTLS_MALFORMED);
	CHECK_INT(with_byte(legacy_hello, L, 16, 0x49, &in), DTLS_MALFORMED);
	memcpy(buf, legacy_hello, 24);
	put16(buf + 11, 11);
	CHECK_INT(dtls_parse(&in, buf, 24), DTLS_MALFORMED);
	/* Hello version unknown. */
	CHECK_INT(with_byte(legacy_hello, L, 25, 0x03, &in), DTLS_MALFORMED);
	/* Session ID length 33 (with the bytes there) and beyond the message. */
	CHECK_INT(with_byte(legacy_hello, L, 59, 33, &in), DTLS_MALFORMED);
	/* Cookie length runs past the end. */
	CHECK_INT(with_byte(legacy_hello, L, 92, 0x10, &in), DTLS_MALFORMED);
	/* Cipher suites: odd length, zero length. */
	CHECK_INT(dtls_parse(&in, buf, mk_hello(buf, 0xfefd, 0xfefd, legacy_sid, 32,
						legacy_sid, 3, NULL, 0)), DTLS_MALFORMED);
	CHECK_INT(dtls_parse(&in, buf, mk_hello(buf, 0xfefd, 0xfefd, legacy_sid, 32,
						legacy_sid, 0, NULL, 0)), DTLS_MALFORMED);
	CHECK_INT(dtls_parse(&in, buf, mk_hello(buf, 0xfefd, 0xfefd, legacy_sid, 32,
						legacy_sid, 4, NULL, 0)), DTLS_CLIENT_HELLO);
	/* No compression methods. */
	CHECK_INT(with_byte(legacy_hello, L, 97, 0, &in), DTLS_MALFORMED);
	/* Extensions: total length too long, an entry running past the block,
	 * an empty App-ID, an App-ID with bytes after it. */
	CHECK_INT(with_byte(psk_hello, P, 106, 0x33, &in), DTLS_MALFORMED);
	CHECK_INT(with_byte(psk_hello, P, 106, 0x31, &in), DTLS_MALFORMED);
	CHECK_INT(with_byte(psk_hello, P, 156, 0x01, &in), DTLS_MALFORMED);
	CHECK_INT(with_byte(psk_hello, P, 120, 0x00, &in), DTLS_MALFORMED);
	CHECK(in.id == NULL && in.session_id == NULL && in.app_id == NULL);
	CHECK_INT(with_byte(psk_hello, P, 120, 0x1f, &in), DTLS_MALFORMED);
	CHECK_INT(with_byte(psk_hello, P, 120, 0x21, &in), DTLS_MALFORMED);
	/* The App-ID extension under another type number is just skipped. */
	CHECK_INT(with_byte(psk_hello, P, 117, 0x93, &in), DTLS_CLIENT_HELLO);
	CHECK(in.app_id == NULL);
	CHECK(!in.id_is_app);
	CHECK(in.id == in.session_id);
	/* Bytes after the extensions block: grow the record and message by 1. */
	memcpy(buf, psk_hello, P);
	buf[P] = 0;
	put16(buf + 11, 0x91);
	put24(buf + 14, 0x85);
	put24(buf + 22, 0x85);
	CHECK_INT(dtls_parse(&in, buf, P + 1), DTLS_MALFORMED);
	/* A second record cut short, and a second record of another version. */
	memcpy(buf, legacy_hello, L);
	memcpy(buf + L, legacy_hello, 13);
	CHECK_INT(dtls_parse(&in, buf, L + 12), DTLS_MALFORMED);
	put16(buf + L + 11, 0);
	CHECK_INT(dtls_parse(&in, buf, L + 13), DTLS_CLIENT_HELLO);
	CHECK_INT(in.nrecords, 2);
	put16(buf + L + 1, 0x0303);
	CHECK_INT(dtls_parse(&in, buf, L + 13), DTLS_MALFORMED);
}

static void test_session_ids(void)
{
	uint8_t buf[512], sid[40];
	struct dtls_info in;
	static const uint8_t suites[] = { 0x00, 0x2f, 0x00, 0x35 };
	size_t n;

	for (int i = 0; i < 40; i++)
		sid[i] = (uint8_t)(0xc0 + i);
	n = mk_hello(buf, 0xfefd, 0xfefd, sid, 0, suites, 4, NULL, 0);
	CHECK_INT(dtls_parse(&in, buf, n), DTLS_CLIENT_HELLO);
	CHECK_INT(in.session_id_len, 0);
	CHECK_INT(in.id_len, 0);
	CHECK_INT(in.version, DTLS_VERSION_1_2);

	n = mk_hello(buf, 0xfefd, 0xfeff, sid, 32, suites, 4, NULL, 0);
	CHECK_INT(dtls_parse(&in, buf, n), DTLS_CLIENT_HELLO);
	CHECK_INT(in.hello_version, DTLS_VERSION_1_0);
	CHECK_INT(in.session_id_len, 32);
	CHECK_MEM(in.session_id, sid, 32);

	n = mk_hello(buf, 0xfefd, 0xfefd, sid, 33, suites, 4, NULL, 0);
	CHECK_INT(dtls_parse(&in, buf, n), DTLS_MALFORMED);

	/* An empty extensions block is fine. */
	n = mk_hello(buf, 0xfeff, 0xfefd, sid, 16, suites, 4, sid, 0);
	CHECK_INT(dtls_parse(&in, buf, n), DTLS_CLIENT_HELLO);
	CHECK_INT(in.session_id_len, 16);
}

static void test_not_hello(void)
{
	uint8_t buf[512];
	struct dtls_info in;
	size_t L = sizeof(legacy_hello);

	/* HelloVerifyRequest (3), a later fragment, an encrypted epoch. */
	CHECK_INT(with_byte(legacy_hello, L, 13, 3, &in), DTLS_RECORD);
	CHECK(in.id == NULL);
	memcpy(buf, legacy_hello, L);
	put24(buf + 14, 0x4a + 0x10);		/* message longer than this fragment */
	put24(buf + 19, 0x10);			/* at offset 16 */
	CHECK_INT(dtls_parse(&in, buf, L), DTLS_RECORD);
	CHECK_INT(with_byte(legacy_hello, L, 4, 1, &in), DTLS_RECORD);
	CHECK_INT(in.epoch, 1);
	/* Encrypted, its bytes are no handshake header: a record all the same
	 * (a renegotiation after a port change), never malformed. */
	memcpy(buf, legacy_hello, 13);
	buf[4] = 1;
	put16(buf + 11, 5);
	memcpy(buf + 13, "\x99\xff\xff\xff\x01", 5);
	CHECK_INT(dtls_parse(&in, buf, 18), DTLS_RECORD);
	buf[4] = 0;				/* the same bytes in epoch 0: malformed */
	CHECK_INT(dtls_parse(&in, buf, 18), DTLS_MALFORMED);

	/* A first fragment cut after the session ID still gives the ID. */
	memcpy(buf, legacy_hello, 92);
	put16(buf + 11, 92 - 13);
	put24(buf + 22, 92 - 25);
	CHECK_INT(dtls_parse(&in, buf, 92), DTLS_CLIENT_HELLO);
	CHECK(in.hello_partial);
	CHECK_INT(in.session_id_len, 32);
	CHECK_MEM(in.id, legacy_sid, 32);
	/* ... but not when cut inside the session ID. */
	put16(buf + 11, 80 - 13);
	put24(buf + 22, 80 - 25);
	CHECK_INT(dtls_parse(&in, buf, 80), DTLS_MALFORMED);
	/* A PSK first fragment cut inside the extensions: no App-ID yet. */
	memcpy(buf, psk_hello, 130);
	put16(buf + 11, 130 - 13);
	put24(buf + 22, 130 - 25);
	CHECK_INT(dtls_parse(&in, buf, 130), DTLS_CLIENT_HELLO);
	CHECK(in.hello_partial);
	CHECK(in.app_id == NULL);
	CHECK(in.id == in.session_id);
}

static void test_direction(void)
{
	CHECK_INT(dtls_direction(false, 50000, 443, 443, 444), DTLS_DIR_TO_ADVERTISED);
	CHECK_INT(dtls_direction(false, 50000, 444, 443, 444), DTLS_DIR_TO_REAL);
	CHECK_INT(dtls_direction(false, 50000, 53, 443, 444), DTLS_DIR_NONE);
	CHECK_INT(dtls_direction(true, 443, 50000, 443, 444), DTLS_DIR_FROM_HEADEND);
	CHECK_INT(dtls_direction(true, 444, 50000, 443, 444), DTLS_DIR_FROM_HEADEND);
	CHECK_INT(dtls_direction(true, 53, 50000, 443, 444), DTLS_DIR_NONE);
	CHECK_INT(dtls_direction(false, 50000, 443, 443, 443), DTLS_DIR_TO_ADVERTISED);
}

struct row {
	int mode;			/* -1: no group */
	enum dtls_block blk;
	enum dtls_dir dir;
	bool differ;
	enum dtls_action action;
	uint32_t mark;
	unsigned counters;
};

#define T DTLS_MARK_TAG
#define D DTLS_MARK_DECIDED
#define N DTLS_MARK_NORMALIZE
#define B DTLS_MARK_BLOCKED
#define R DTLS_MARK_REJECT

static const struct row table[] = {
	{ -1, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, true, DTLS_ACCEPT, T | D, DTLS_CNT_NOGROUP },
	{ -1, DTLS_BLOCK_DROP, DTLS_DIR_TO_REAL, true, DTLS_ACCEPT, T | D, DTLS_CNT_NOGROUP },
	{ -1, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, false, DTLS_ACCEPT, T | D, DTLS_CNT_NOGROUP },
	{ -1, DTLS_BLOCK_DROP, DTLS_DIR_FROM_HEADEND, true, DTLS_ACCEPT, 0, DTLS_CNT_NOGROUP },
	{ -1, DTLS_BLOCK_DROP, DTLS_DIR_NONE, true, DTLS_ACCEPT, 0, 0 },
	{ DTLS_RELAY, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, true, DTLS_ACCEPT, T | D | N,
	  DTLS_CNT_RELAYED | DTLS_CNT_PORT_REWRITTEN },
	{ DTLS_RELAY, DTLS_BLOCK_REJECT, DTLS_DIR_TO_ADVERTISED, true, DTLS_ACCEPT, T | D | N,
	  DTLS_CNT_RELAYED | DTLS_CNT_PORT_REWRITTEN },
	{ DTLS_RELAY, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, false, DTLS_ACCEPT, T | D,
	  DTLS_CNT_RELAYED },
	{ DTLS_RELAY, DTLS_BLOCK_DROP, DTLS_DIR_TO_REAL, true, DTLS_ACCEPT, T | D, DTLS_CNT_RELAYED },
	{ DTLS_RELAY, DTLS_BLOCK_DROP, DTLS_DIR_FROM_HEADEND, true, DTLS_ACCEPT, 0, DTLS_CNT_RELAYED },
	{ DTLS_RELAY, DTLS_BLOCK_DROP, DTLS_DIR_FROM_HEADEND, false, DTLS_ACCEPT, 0, DTLS_CNT_RELAYED },
	{ DTLS_RELAY, DTLS_BLOCK_DROP, DTLS_DIR_NONE, true, DTLS_ACCEPT, 0, 0 },
	{ DTLS_PASS, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, true, DTLS_ACCEPT, T | D, DTLS_CNT_PASSED },
	{ DTLS_PASS, DTLS_BLOCK_REJECT, DTLS_DIR_TO_ADVERTISED, false, DTLS_ACCEPT, T | D,
	  DTLS_CNT_PASSED },
	{ DTLS_PASS, DTLS_BLOCK_DROP, DTLS_DIR_TO_REAL, true, DTLS_ACCEPT, T | D, DTLS_CNT_PASSED },
	{ DTLS_PASS, DTLS_BLOCK_DROP, DTLS_DIR_FROM_HEADEND, true, DTLS_ACCEPT, 0, DTLS_CNT_PASSED },
	{ DTLS_BLOCK, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, true, DTLS_DROP, T | D | B,
	  DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_DROP, DTLS_DIR_TO_ADVERTISED, false, DTLS_DROP, T | D | B,
	  DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_DROP, DTLS_DIR_TO_REAL, true, DTLS_DROP, T | D | B, DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_REJECT, DTLS_DIR_TO_ADVERTISED, true, DTLS_REJECT, T | D | B | R,
	  DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_REJECT, DTLS_DIR_TO_ADVERTISED, false, DTLS_REJECT, T | D | B | R,
	  DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_REJECT, DTLS_DIR_TO_REAL, true, DTLS_REJECT, T | D | B | R,
	  DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_DROP, DTLS_DIR_FROM_HEADEND, true, DTLS_DROP, 0, DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_REJECT, DTLS_DIR_FROM_HEADEND, true, DTLS_DROP, 0, DTLS_CNT_BLOCKED },
	{ DTLS_BLOCK, DTLS_BLOCK_REJECT, DTLS_DIR_NONE, true, DTLS_ACCEPT, 0, 0 },
};

static void test_decide(void)
{
	struct group g;

	for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
		const struct row *r = &table[i];
		struct dtls_verdict v;

		memset(&g, 0, sizeof(g));
		g.dtls = r->mode < 0 ? DTLS_RELAY : (enum dtls_mode)r->mode;
		g.dtls_block = r->blk;
		v = dtls_decide(r->mode < 0 ? NULL : &g, r->dir, r->differ);
		if (v.action != r->action || v.mark != r->mark || v.counters != r->counters)
			fprintf(stderr, "decision row %zu: action %d mark %#x counters %#x\n", i,
				v.action, v.mark, v.counters);
		CHECK_INT(v.action, r->action);
		CHECK_INT(v.mark, r->mark);
		CHECK_INT(v.counters, r->counters);
		/* Every mark we hand out is inside our mask and tagged. */
		CHECK((v.mark & ~DTLS_MARK_MASK) == 0);
		CHECK(v.mark == 0 || (v.mark & DTLS_MARK_TAG_MASK) == DTLS_MARK_TAG);
	}
}

int main(void)
{
	test_fixtures();
	test_record_versions();
	test_truncation();
	test_malformed();
	test_session_ids();
	test_not_hello();
	test_direction();
	test_decide();
	return t_done("test_dtls");
}
