/* pkt_parse / pkt_ports over hand-made IPv4 and IPv6 packets, and every
 * truncation of each (run under ASan: buffers are exact). */
#include <stdlib.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "clamp/pkt.h"
#include "tests/tools/synpkt.h"
#include "tests/unit/t.h"

struct pkt_case {
	const char *name;
	enum pkt_res res;
	int family, proto, iplen, l4off, frag, later_frag, df, sport, dport;
	const char *hex;
};

/* Fixtures built by an independent script; fields are the expected view. */
static const struct pkt_case cases[] = {
	{ "v4_plain", PKT_OK, AF_INET, 6, 44, 20, 0, 0, 1, 49152, 443,
	  "4500002c123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_ipopts", PKT_OK, AF_INET, 6, 52, 28, 0, 0, 1, 49152, 443,
	  "470000341234400040060162c6120102c61202029404000001010100c00001bb"
	  "01020304000000006002faf0484b0000020405b4" },
	{ "v4_trailer", PKT_OK, AF_INET, 6, 44, 20, 0, 0, 1, 49152, 443,
	  "4500002c123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4000000000000" },
	{ "v4_nodf", PKT_OK, AF_INET, 6, 44, 20, 0, 0, 0, 49152, 443,
	  "4500002c123400004006d96fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_first_frag", PKT_OK, AF_INET, 6, 44, 20, 1, 0, 0, 49152, 443,
	  "4500002c123420004006b96fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_later_frag", PKT_OK, AF_INET, 6, 44, 20, 1, 1, 0, -1, -1,
	  "4500002c123400104006d95fc6120102c6120202c00001bb0102030400000000"
	  "6002faf000000000020405b4" },
	{ "v4_last_frag", PKT_OK, AF_INET, 6, 44, 20, 1, 1, 0, -1, -1,
	  "4500002c123400014006d96ec6120102c6120202c00001bb0102030400000000"
	  "6002faf000000000020405b4" },
	{ "v4_udp", PKT_OK, AF_INET, 17, 32, 20, 0, 0, 1, 53, 5353,
	  "450000201234400040119970c6120102c6120202003514e9000c000061626364" },
	{ "v4_udp_short", PKT_OK, AF_INET, 17, 26, 20, 0, 0, 1, -1, -1,
	  "4500001a1234400040119976c6120102c6120202003514e9000c" },
	{ "v4_tcp_short", PKT_OK, AF_INET, 6, 39, 20, 0, 0, 1, -1, -1,
	  "450000271234400040069974c6120102c6120202c00001bb0102030400000000"
	  "6002faf0000000" },
	{ "v4_icmp", PKT_OK, AF_INET, 1, 28, 20, 0, 0, 1, -1, -1,
	  "4500001c1234400040019984c6120102c61202020800000000010001" },
	{ "v4_ihl4", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "4400002c123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_ihl_past", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "4f00002c123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_totlen_past", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "4500002d123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_totlen_short", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "45000013123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_totlen_hdr_only", PKT_OK, AF_INET, 6, 20, 20, 0, 0, 1, -1, -1,
	  "45000014123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "v4_short", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "4500002c123440004006996fc6120102c61202" },
	{ "bad_version", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "5500002c123440004006996fc6120102c6120202c00001bb0102030400000000"
	  "6002faf0484b0000020405b4" },
	{ "empty", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "" },
	{ "v6_plain", PKT_OK, AF_INET6, 6, 64, 40, 0, 0, 1, 49152, 443,
	  "600123450018064020010db800010000000000000000000220010db800020000"
	  "0000000000000002c00001bb01020304000000006002faf07c0f0000020405a0" },
	{ "v6_ext_chain", PKT_OK, AF_INET6, 6, 104, 80, 1, 0, 1, 49152, 443,
	  "600123450040004020010db800010000000000000000000220010db800020000"
	  "00000000000000022b000104000000003c01fd00000000000000000000000000"
	  "2c0001040000000006000000deadbeefc00001bb01020304000000006002faf0"
	  "7c0f0000020405a0" },
	{ "v6_first_frag", PKT_OK, AF_INET6, 6, 72, 48, 1, 0, 1, 49152, 443,
	  "6001234500202c4020010db800010000000000000000000220010db800020000"
	  "000000000000000206000001deadbeefc00001bb01020304000000006002faf0"
	  "7c0f0000020405a0" },
	{ "v6_later_frag", PKT_OK, AF_INET6, 6, 72, 48, 1, 1, 1, -1, -1,
	  "6001234500202c4020010db800010000000000000000000220010db800020000"
	  "000000000000000206000538deadbeefc00001bb01020304000000006002faf0"
	  "00000000020405a0" },
	{ "v6_later_frag_then_dst", PKT_OK, AF_INET6, 60, 72, 48, 1, 1, 1, -1, -1,
	  "6001234500202c4020010db800010000000000000000000220010db800020000"
	  "00000000000000023c00053801020304c00001bb01020304000000006002faf0"
	  "00000000020405a0" },
	{ "v6_udp_dstopts", PKT_OK, AF_INET6, 17, 60, 48, 0, 0, 1, 443, 50000,
	  "6001234500143c4020010db800010000000000000000000220010db800020000"
	  "0000000000000002110001040000000001bbc350000c000064746c73" },
	{ "v6_icmp", PKT_OK, AF_INET6, 58, 48, 40, 0, 0, 1, -1, -1,
	  "6001234500083a4020010db800010000000000000000000220010db800020000"
	  "00000000000000028000000000010001" },
	{ "v6_nonext", PKT_OK, AF_INET6, 59, 40, 40, 0, 0, 1, -1, -1,
	  "6001234500003b4020010db800010000000000000000000220010db800020000"
	  "0000000000000002" },
	{ "v6_ah_stops", PKT_OK, AF_INET6, 51, 76, 40, 0, 0, 1, -1, -1,
	  "600123450024334020010db800010000000000000000000220010db800020000"
	  "0000000000000002060100000000000000000000c00001bb0102030400000000"
	  "6002faf000000000020405a0" },
	{ "v6_ext_past", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "600123450008004020010db800010000000000000000000220010db800020000"
	  "00000000000000020601010400000000" },
	{ "v6_ext_trunc1", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "6001234500013c4020010db800010000000000000000000220010db800020000"
	  "000000000000000206" },
	{ "v6_frag_trunc", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "6001234500072c4020010db800010000000000000000000220010db800020000"
	  "000000000000000206000000010203" },
	{ "v6_plen_past", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "600123450019064020010db800010000000000000000000220010db800020000"
	  "0000000000000002c00001bb01020304000000006002faf07c0f0000020405a0" },
	{ "v6_short", PKT_MALFORMED, 0, 0, 0, 0, 0, 0, 0, -1, -1,
	  "600123450018064020010db800010000000000000000000220010db800020000"
	  "00000000000000" },
	{ "v6_trailer", PKT_OK, AF_INET6, 6, 64, 40, 0, 0, 1, 49152, 443,
	  "600123450018064020010db800010000000000000000000220010db800020000"
	  "0000000000000002c00001bb01020304000000006002faf07c0f0000020405a0"
	  "ffff" },
};

static void run_case(const struct pkt_case *c)
{
	uint8_t tmp[256];
	size_t len = synpkt_unhex(tmp, sizeof(tmp), c->hex);
	uint8_t *buf = malloc(len ? len : 1);
	uint16_t sp = 0, dp = 0;
	struct pkt p;
	enum pkt_res r;
	int ports;

	memcpy(buf, tmp, len);
	r = pkt_parse(&p, buf, len);
	if (r != c->res)
		fprintf(stderr, "case %s: res %d\n", c->name, r);
	CHECK_INT(r, c->res);
	if (r == PKT_OK && c->res == PKT_OK) {
		size_t alen = c->family == AF_INET ? 4 : 16, aoff = c->family == AF_INET ? 12 : 8;

		CHECK_INT(p.family, c->family);
		CHECK_INT(p.proto, c->proto);
		CHECK_INT(p.iplen, c->iplen);
		CHECK_INT(p.l4off, c->l4off);
		CHECK_INT(p.l4len, c->iplen - c->l4off);
		CHECK_INT(p.len, len);
		CHECK_INT(p.frag, c->frag);
		CHECK_INT(p.later_frag, c->later_frag);
		CHECK_INT(p.df, c->df);
		CHECK(p.buf == buf);
		CHECK(p.src == buf + aoff);
		CHECK(p.dst == buf + aoff + alen);
		ports = pkt_ports(&p, &sp, &dp);
		CHECK_INT(ports, c->sport < 0 ? -1 : 0);
		if (c->sport >= 0) {
			CHECK_INT(sp, c->sport);
			CHECK_INT(dp, c->dport);
		}
	}
	free(buf);
}

/* A prefix shorter than the IP length is malformed; no read past it. */
static void run_truncations(const struct pkt_case *c)
{
	uint8_t tmp[256];
	size_t len = synpkt_unhex(tmp, sizeof(tmp), c->hex), k;

	for (k = 0; k < len; k++) {
		uint8_t *buf = malloc(k ? k : 1);
		struct pkt p;

		memcpy(buf, tmp, k);
		if ((int)k < c->iplen)
			CHECK_INT(pkt_parse(&p, buf, k), PKT_MALFORMED);
		else
			CHECK_INT(pkt_parse(&p, buf, k), PKT_OK);
		free(buf);
	}
}

int main(void)
{
	size_t i, n = sizeof(cases) / sizeof(cases[0]);
	struct pkt p;

	for (i = 0; i < n; i++)
		run_case(&cases[i]);
	for (i = 0; i < n; i++)
		if (cases[i].res == PKT_OK)
			run_truncations(&cases[i]);
	CHECK_INT(pkt_parse(&p, NULL, 0), PKT_MALFORMED);
	return t_done("test_pkt");
}
