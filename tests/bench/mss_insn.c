/* mss_insn N: parse and clamp N SYNs (Linux-style options; IPv4 and IPv6;
 * MSS aligned and at an odd offset) for tests/bench/mss_insn.sh, which counts
 * the instructions inside mss_clamp and pkt_parse under callgrind. */
#include <stdio.h>
#include <stdlib.h>

#include "clamp/mss.h"
#include "clamp/pkt.h"
#include "tests/tools/synpkt.h"

static const char *const syns[] = {
	/* IPv4 SYN: MSS 1460, SACK-permitted, timestamps, NOP, window scale 7 */
	"4500003c123440004006996fc6120102c6120202c00001bb0102030400000000"
	"a002faf000000000020405b40402080a1122334400000000 01030307",
	/* IPv6 SYN-ACK, the same options, MSS 1440 */
	"6001234500280640" "20010db8000100000000000000000002" "20010db8000200000000000000000002"
	"c00001bb0102030405060708a012faf000000000020405a00402080a1122334400000000 01030307",
	/* IPv4 SYN, MSS at an odd offset (after one NOP) */
	"4500003c123440004006996fc6120102c6120202c00001bb0102030400000000"
	"a002faf000000000" "01020405b4" "080a11223344000000000103030700",
	/* IPv4 SYN, MSS already below target */
	"4500002c123440004006996fc6120102c6120202c00001bb0102030400000000"
	"6002faf000000000020404b0",
};
#define NSYN (sizeof(syns) / sizeof(syns[0]))

int main(int argc, char **argv)
{
	uint8_t tmpl[NSYN][SYNPKT_MAX], buf[SYNPKT_MAX + 4];
	size_t len[NSYN], i, k, newlen, n = argc > 1 ? strtoul(argv[1], NULL, 0) : 1000;
	unsigned long lowered = 0;

	for (k = 0; k < NSYN; k++) {
		char hex[2 * SYNPKT_MAX + 1];
		const char *s = syns[k];
		size_t h = 0;

		for (; *s && h < sizeof(hex) - 1; s++)
			if (*s != ' ')
				hex[h++] = *s;
		hex[h] = 0;
		len[k] = synpkt_unhex(tmpl[k], SYNPKT_MAX, hex);
	}
	for (i = 0; i < n; i++) {
		struct pkt p;

		k = i % NSYN;
		memcpy(buf, tmpl[k], len[k]);
		if (pkt_parse(&p, buf, len[k]) != PKT_OK)
			return 1;
		if (mss_clamp(buf, len[k], sizeof(buf), &p, 1300, &newlen) == MSS_LOWERED)
			lowered++;
	}
	printf("mss_insn: %zu SYNs, %lu lowered\n", n, lowered);
	/* Every fourth SYN is already below target. */
	return lowered == n - n / NSYN ? 0 : 1;
}
