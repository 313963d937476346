/* Fuzz the NFLOG walk: no crash, and every packet it returns lies inside
 * the datagram. libFuzzer's copy of the input is malloc'd, so aligned as a
 * datagram read from the socket. */
#include <stdint.h>
#include <stdlib.h>

#include "clamp/nflog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct nflog_pkt pk[8];
	size_t n = nflog_parse(data, size, pk, 8);

	if (n > 8)
		abort();
	for (size_t i = 0; i < n; i++)
		if (pk[i].buf < data || pk[i].len > size || (size_t)(pk[i].buf - data) > size - pk[i].len)
			abort();
	return 0;
}
