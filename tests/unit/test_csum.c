/* csum_*: known vectors, every alignment and length against a naive sum, and
 * RFC 1624 updates against full recomputation on random data. */
#include <stdlib.h>
#include <sys/socket.h>

#include "clamp/csum.h"
#include "tests/tools/synpkt.h"
#include "tests/unit/t.h"

/* What csum_fold() yields, as the two bytes stored in a packet. */
static void store(uint8_t out[2], uint32_t sum)
{
	uint16_t v = csum_fold(sum);

	memcpy(out, &v, 2);
}

static uint16_t load(const uint8_t *b)
{
	uint16_t v;

	memcpy(&v, b, 2);
	return v;
}

static void test_vectors(void)
{
	/* RFC 1071 section 3: the sum of these bytes is 0xddf2. */
	static const uint8_t rfc1071[] = { 0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7 };
	/* An IPv4 header whose checksum is 0xb861 (the example in Wikipedia's article). */
	static const uint8_t ip[] = { 0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
				      0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7 };
	uint8_t out[2];

	store(out, csum_partial(rfc1071, sizeof(rfc1071), 0));
	CHECK_MEM(out, "\x22\x0d", 2);
	store(out, csum_partial(ip, sizeof(ip), 0));
	CHECK_MEM(out, "\xb8\x61", 2);
	/* An odd tail byte is the high byte of a zero-padded word. */
	store(out, csum_partial("\x01", 1, 0));
	CHECK_MEM(out, "\xfe\xff", 2);
	store(out, csum_partial("", 0, 0));
	CHECK_MEM(out, "\xff\xff", 2);
	/* RFC 1624 section 4: eqn. 3 gives 0x0000 where eqn. 2 gave 0xffff. */
	CHECK_INT(csum_replace2(load((const uint8_t *)"\xdd\x2f"), load((const uint8_t *)"\x55\x55"),
				load((const uint8_t *)"\x32\x85")), 0);
	/* Folding keeps every carry. */
	store(out, 0xffffffffu);
	CHECK_MEM(out, "\x00\x00", 2);
	store(out, 0x0001fffeu);
	CHECK_MEM(out, "\x00\x00", 2);
}

/* Every length 0..200 at every alignment 0..7, with and without a start sum. */
static void test_alignment(void)
{
	uint8_t data[256], buf[272], out[2];
	uint64_t rng = 1;
	unsigned bad = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)synpkt_rand(&rng);
	for (size_t off = 0; off < 8; off++)
		for (size_t len = 0; len <= 200; len++) {
			/* The start sum is a word as stored: build it from bytes. */
			uint8_t sb[2] = { (uint8_t)(off * 37), (uint8_t)len };
			uint16_t want = synpkt_fold(synpkt_sum(data, len, 0) + synpkt_sum(sb, 2, 0));

			memcpy(buf + off, data, len);
			store(out, csum_partial(buf + off, len, load(sb)));
			if ((uint16_t)(out[0] << 8 | out[1]) != want)
				bad++;
		}
	CHECK_INT(bad, 0);
}

/* Pseudo headers against the naive sum over the RFC 793 / RFC 8200 layout. */
static void test_pseudo(void)
{
	uint8_t src6[16] = { 0x20, 0x01, 0x0d, 0xb8, 1, [15] = 2 };
	uint8_t dst6[16] = { 0x20, 0x01, 0x0d, 0xb8, 0xff, 0xfe, [14] = 0xab, 0xcd };
	uint8_t src4[4] = { 198, 18, 1, 2 }, dst4[4] = { 198, 19, 255, 254 };
	uint8_t ph4[12] = { 0 }, ph6[40] = { 0 }, out[2];
	uint32_t lens[] = { 0, 20, 1480, 65535, 70000 };

	for (size_t i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		uint32_t l = lens[i];

		memcpy(ph4, src4, 4);
		memcpy(ph4 + 4, dst4, 4);
		ph4[9] = 6;
		synpkt_put16(ph4 + 10, l);
		memcpy(ph6, src6, 16);
		memcpy(ph6 + 16, dst6, 16);
		synpkt_put16(ph6 + 32, l >> 16);
		synpkt_put16(ph6 + 34, l);
		ph6[39] = 17;
		if (l <= 0xffff) {
			store(out, csum_pseudo(AF_INET, src4, dst4, 6, l));
			CHECK_INT(out[0] << 8 | out[1], synpkt_fold(synpkt_sum(ph4, 12, 0)));
		}
		store(out, csum_pseudo(AF_INET6, src6, dst6, 17, l));
		CHECK_INT(out[0] << 8 | out[1], synpkt_fold(synpkt_sum(ph6, 40, 0)));
	}
}

/* Random segments with a valid checksum; change one 16-bit word; the updated
 * checksum must equal a full recomputation, bit for bit. */
static void test_replace(void)
{
	uint64_t rng = 99;
	unsigned bad = 0, invalid = 0;

	for (int it = 0; it < 20000; it++) {
		uint8_t seg[64];
		size_t len = 20 + 2 * (synpkt_rand(&rng) % 22), at;
		uint16_t check, old, new_, full;

		for (size_t i = 0; i < len; i++)
			seg[i] = (uint8_t)synpkt_rand(&rng);
		if (it % 7 == 0)
			memset(seg, 0xff, len / 2);	/* sums near the fold edge */
		seg[16] = seg[17] = 0;
		check = csum_fold(csum_partial(seg, len, 0));
		memcpy(seg + 16, &check, 2);
		do
			at = 2 * (synpkt_rand(&rng) % (len / 2));
		while (at == 16);
		old = load(seg + at);
		synpkt_put16(seg + at, synpkt_rand(&rng));
		if (it % 5 == 0)
			memcpy(seg + at, &old, 2);	/* unchanged word */
		new_ = load(seg + at);
		check = csum_replace2(check, old, new_);
		seg[16] = seg[17] = 0;
		full = csum_fold(csum_partial(seg, len, 0));
		if (check != full)
			bad++;
		memcpy(seg + 16, &check, 2);
		if (synpkt_fold(synpkt_sum(seg, len, 0)) != 0)
			invalid++;
	}
	CHECK_INT(bad, 0);
	CHECK_INT(invalid, 0);
}

/* Sums of pieces with even lengths add up to the sum of the whole. */
static void test_pieces(void)
{
	uint8_t data[1500];
	uint64_t rng = 5;
	unsigned bad = 0;

	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (uint8_t)synpkt_rand(&rng);
	for (int it = 0; it < 2000; it++) {
		size_t len = synpkt_rand(&rng) % sizeof(data);
		size_t cut = 2 * (synpkt_rand(&rng) % (len / 2 + 1));
		uint32_t a = csum_partial(data, cut, 0);
		uint32_t b = csum_partial(data + cut, len - cut, a);

		if (csum_fold(b) != csum_fold(csum_partial(data, len, 0)) || b > 0xffff)
			bad++;
	}
	CHECK_INT(bad, 0);
}

int main(void)
{
	test_vectors();
	test_alignment();
	test_pseudo();
	test_replace();
	test_pieces();
	return t_done("test_csum");
}
